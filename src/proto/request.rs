//! The master's local request socket as its clients see it: where it is, the secret a client
//! proves itself with, the framing (length-prefixed msgpack maps, each with a `cmd`) and the
//! master's replies other than a publish's ([`super::publish::PublishReply`]).

use tokio_util::codec::LengthDelimitedCodec;

use super::{MAX_MESSAGE, entry};
use crate::config::{Config, ConfigError};
use crate::event::Value;
use crate::ipc::Endpoint;

/// The request socket's file name in the master's `sock_dir`.
pub const REQUEST_SOCKET: &str = "master_request.ipc";

/// Where the master takes requests: `<sock_dir>/master_request.ipc`, or with `ipc_mode: tcp`
/// the loopback port `tcp_master_workers` (4515).
pub fn endpoint(config: &Config) -> Result<Endpoint, ConfigError> {
    if config.tcp_mode()? {
        return Ok(Endpoint::Tcp(config.get_port("tcp_master_workers", 4515)?));
    }
    crate::config::socket_in(&config.sock_dir()?, REQUEST_SOCKET)
}

/// The file holding the secret local clients send with each request.
pub fn root_key_path(config: &Config) -> Result<std::path::PathBuf, ConfigError> {
    Ok(config.cachedir()?.join(".root_key"))
}

/// The framing of the request socket.
pub fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .max_frame_length(MAX_MESSAGE)
        .new_codec()
}

/// The master's reply to a request.
#[derive(Debug, Clone, PartialEq)]
pub enum Reply {
    /// The request failed: `{"error": why}`.
    Failed(String),
    /// `reactors`: the reactor's configuration, `{"reactors": [...]}`.
    Reactors(Value),
    /// `connected`: the minions connected now and the address each connects from,
    /// `{"connected": {id: address}}`.
    Connected(Vec<(String, String)>),
    /// `returners`: what each returner stored, spooled and dropped, `{"returners": {...}}`.
    Returners(Value),
}

impl Reply {
    /// The reply as sent.
    pub fn to_value(&self) -> Value {
        Value::Map(vec![match self {
            Reply::Failed(why) => entry("error", why.as_str()),
            Reply::Reactors(listing) => entry("reactors", listing.clone()),
            Reply::Connected(minions) => entry(
                "connected",
                Value::Map(
                    minions
                        .iter()
                        .map(|(id, address)| {
                            (Value::from(id.as_str()), Value::from(address.as_str()))
                        })
                        .collect(),
                ),
            ),
            Reply::Returners(counters) => entry("returners", counters.clone()),
        }])
    }
}
