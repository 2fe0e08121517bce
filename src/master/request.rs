//! The master's local request socket: how `salt`, `salt-run` and other local clients ask the
//! master to publish jobs. It is a socket file only its owner can use (mode 0600), the way
//! Salt's local clients prove themselves with the master's root key file. Requests and replies
//! are length-prefixed msgpack maps.

use std::sync::Arc;

use futures_util::{SinkExt, StreamExt};
use tokio_util::codec::{Framed, LengthDelimitedCodec};
use tokio_util::sync::CancellationToken;

use super::Shared;
use super::publish::{PublishRequest, publish};
use crate::config::{Config, ConfigError};
use crate::event::Value;
use crate::ipc::{Endpoint, Listener, Stream};
use crate::link::{MAX_MESSAGE, command};

/// The request socket's file name in the master's `sock_dir`.
pub const REQUEST_SOCKET: &str = "master_request.ipc";

/// Where the master takes requests: `<sock_dir>/master_request.ipc`, or with `ipc_mode: tcp`
/// the loopback port `tcp_master_workers` (4515).
pub fn endpoint(config: &Config) -> Result<Endpoint, ConfigError> {
    if config.tcp_mode()? {
        return Ok(Endpoint::Tcp(config.get_port("tcp_master_workers", 4515)?));
    }
    Ok(Endpoint::Unix(config.sock_dir()?.join(REQUEST_SOCKET)))
}

/// The framing of the request socket.
pub fn codec() -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .max_frame_length(MAX_MESSAGE)
        .new_codec()
}

pub(super) async fn serve(shared: Arc<Shared>, listener: Listener, stop: CancellationToken) {
    loop {
        let accepted = tokio::select! {
            _ = stop.cancelled() => return,
            accepted = listener.accept() => accepted,
        };
        match accepted {
            Ok((stream, _peer)) => {
                tokio::spawn(connection(shared.clone(), stream));
            }
            Err(err) => {
                tracing::warn!("cannot accept a request connection: {err}");
                tokio::time::sleep(std::time::Duration::from_millis(100)).await;
            }
        }
    }
}

async fn connection(shared: Arc<Shared>, stream: Stream) {
    let mut framed = Framed::new(stream, codec());
    while let Some(Ok(frame)) = framed.next().await {
        let reply = match rmpv::decode::read_value(&mut &frame[..]) {
            Ok(request) => answer(&shared, &request).await,
            Err(err) => Err(format!("the request is not msgpack: {err}")),
        };
        let reply = reply
            .unwrap_or_else(|error| Value::Map(vec![(Value::from("error"), Value::from(error))]));
        let mut bytes = Vec::new();
        if rmpv::encode::write_value(&mut bytes, &reply).is_err()
            || framed.send(bytes::Bytes::from(bytes)).await.is_err()
        {
            return;
        }
    }
}

async fn answer(shared: &Shared, request: &Value) -> Result<Value, String> {
    match command(request) {
        Some("publish") => {
            let publish_request =
                PublishRequest::from_value(request).ok_or("a publish request needs tgt and fun")?;
            publish(shared, publish_request).await
        }
        Some("connected") => Ok(Value::Map(vec![(
            Value::from("connected"),
            Value::Array(
                shared
                    .sessions
                    .connected()
                    .into_iter()
                    .map(Value::from)
                    .collect(),
            ),
        )])),
        other => Err(format!("unknown request {other:?}")),
    }
}
