//! What every command uses to talk to a bus: fire events into its pull socket and listen on its
//! publish socket, against halite's daemons and real Salt's alike.
//!
//! Connect from Salt's configuration (`/etc/salt/master`, or `-c`'s directory):
//!
//! ```no_run
//! # async fn demo() -> Result<(), halite::client::ClientError> {
//! use halite::client::Publisher;
//! use halite::config::{Config, Role};
//! use halite::event::{Event, Value};
//!
//! let config = Config::load(Role::Master, None)?;
//! let mut publisher = Publisher::connect(&config.bus()?, config.framing()?).await?;
//! let data = Value::Map(vec![("build".into(), 42.into())]);
//! publisher.fire(Event::new("myco/build/done", data)?).await?;
//! publisher.close().await
//! # }
//! ```
//!
//! A whole round trip, with a bus of its own in a temporary directory: listen, fire, and wait
//! for the event with `state.event`'s tag matching.
//!
//! ```
//! # #[tokio::main(flavor = "current_thread")]
//! # async fn main() -> Result<(), Box<dyn std::error::Error>> {
//! use std::time::Duration;
//!
//! use halite::bus::{Bus, BusOptions, Node};
//! use halite::client::{Listener, Publisher};
//! use halite::config::FramingChoice;
//! use halite::ipc::BusAddress;
//! use halite::event::matching::ExprMatcher;
//! use halite::event::{Event, Value};
//! use halite::ipc::Endpoint;
//! use halite::wire::Framing;
//!
//! let dir = tempfile::tempdir()?;
//! let address = BusAddress {
//!     publish: Endpoint::Unix(dir.path().join("master_event_pub.ipc")),
//!     pull: Endpoint::Unix(dir.path().join("master_event_pull.ipc")),
//! };
//! let bus = Bus::bind(BusOptions::new(address.clone(), Node::Master)).await?;
//! let shutdown = tokio_util::sync::CancellationToken::new();
//! let server = tokio::spawn(bus.run(shutdown.clone()));
//!
//! let mut listener = Listener::new(address.publish.clone());
//! listener.connect().await?;
//! tokio::time::sleep(Duration::from_millis(50)).await; // let the bus register the subscriber
//!
//! let mut publisher = Publisher::connect(&address, FramingChoice::Fixed(Framing::Bare)).await?;
//! let data = Value::Map(vec![("status".into(), "ok".into())]);
//! publisher.fire(Event::new("myco/build/42/done", data)?).await?;
//!
//! let done = ExprMatcher::whole("myco/build/*/done");
//! let event = listener.wait_for(|event| done.matches(&event.tag), Duration::from_secs(5)).await?;
//! assert_eq!(event.get("status").and_then(Value::as_str), Some("ok"));
//! assert!(event.get("_stamp").is_some(), "fire stamps events as Salt does");
//!
//! shutdown.cancel();
//! server.await?;
//! # Ok(())
//! # }
//! ```

pub mod batch;
mod framing;
mod listen;
pub mod local;

use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::config::{ConfigError, FramingChoice};
use crate::event::{Event, EventError};
use crate::ipc::{BusAddress, Endpoint, Stream};
use crate::wire::{self, Framing};

pub use listen::{ListenNotice, Listener};

/// How long to wait for a bus socket to accept a connection, as Salt's clients do.
pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(1);

/// What can go wrong talking to a bus.
#[derive(Debug, thiserror::Error)]
pub enum ClientError {
    /// Nothing listens on the socket.
    #[error(
        "cannot connect to {endpoint}: {reason}; is the daemon running, and is this its sock_dir?"
    )]
    Connect {
        /// The socket tried.
        endpoint: Endpoint,
        /// Why it failed.
        reason: String,
    },
    /// The socket exists but this user may not use it.
    #[error(
        "permission denied on {0}: run as the daemon's user (or a member of its group for the master's publish socket); a tcp port is used only when root, this user or the configured user holds it"
    )]
    PermissionDenied(Endpoint),
    /// Writing or reading failed after connecting.
    #[error("lost the connection to {endpoint}: {source}")]
    Io {
        /// The socket.
        endpoint: Endpoint,
        /// The error.
        source: std::io::Error,
    },
    /// The daemon accepted the connection but the event never appeared on its bus.
    #[error("{0}")]
    NotDelivered(String),
    /// No event arrived in time.
    #[error("no matching event arrived on {endpoint} within {waited:?}")]
    Timeout {
        /// The socket listened on.
        endpoint: Endpoint,
        /// How long.
        waited: Duration,
    },
    /// The event itself is not valid.
    #[error(transparent)]
    Event(#[from] EventError),
    /// The daemon answered, and refused the request (a target it cannot use, say).
    #[error("the master refused the request: {0}")]
    Refused(String),
    /// The job's target cannot be used (an unknown node group).
    #[error(transparent)]
    Target(#[from] crate::target::TargetError),
    /// The request is larger than the master takes.
    #[error(
        "the request is {size} bytes packed, over the {limit} bytes the master takes; target fewer minions or send less data"
    )]
    RequestTooLarge {
        /// Its packed size.
        size: usize,
        /// The limit.
        limit: usize,
    },
    /// The event is larger than the configured `max_event_size`.
    #[error(
        "event {tag} is {size} bytes packed, over max_event_size ({limit}); send less data or raise max_event_size"
    )]
    TooLarge {
        /// Its tag.
        tag: String,
        /// Its packed size.
        size: usize,
        /// The limit.
        limit: u64,
    },
    /// Configuration could not be read.
    #[error(transparent)]
    Config(#[from] ConfigError),
}

/// Connects to a bus socket, with errors that say what to do.
pub async fn connect(endpoint: &Endpoint) -> Result<Stream, ClientError> {
    endpoint
        .connect(CONNECT_TIMEOUT)
        .await
        .map_err(|err| match err.kind() {
            std::io::ErrorKind::PermissionDenied => ClientError::PermissionDenied(endpoint.clone()),
            _ => ClientError::Connect {
                endpoint: endpoint.clone(),
                reason: match err.kind() {
                    std::io::ErrorKind::NotFound => "no such socket".to_owned(),
                    std::io::ErrorKind::ConnectionRefused => "connection refused".to_owned(),
                    _ => err.to_string(),
                },
            },
        })
}

/// A connection to a bus's pull socket that fires events.
#[derive(Debug)]
pub struct Publisher {
    address: BusAddress,
    /// The connection and its framing, once the framing is known.
    link: Option<(Stream, Framing)>,
    max_event_size: Option<u64>,
    buffer: Vec<u8>,
}

impl Publisher {
    /// Connects to `address`'s pull socket. With [`FramingChoice::Auto`] the framing the daemon
    /// accepts is looked up in a per-socket cache, or found out with the first event fired.
    pub async fn connect(address: &BusAddress, choice: FramingChoice) -> Result<Self, ClientError> {
        let framing = match choice {
            FramingChoice::Fixed(framing) => Some(framing),
            FramingChoice::Auto => framing::cached(&address.pull),
        };
        let link = match framing {
            Some(framing) => Some((connect(&address.pull).await?, framing)),
            None => {
                // Fail early and clearly when nothing listens, before any probing (a loopback
                // port in tcp mode says so at the probe's own connection).
                if let Endpoint::Unix(_) = address.pull {
                    drop(connect(&address.pull).await?);
                }
                None
            }
        };
        Ok(Self {
            address: address.clone(),
            link,
            max_event_size: None,
            buffer: Vec::new(),
        })
    }

    /// Refuses events whose packed data exceeds `limit` bytes.
    pub fn with_max_event_size(mut self, limit: u64) -> Self {
        self.max_event_size = Some(limit);
        self
    }

    /// The framing in use, once known.
    pub fn framing(&self) -> Option<Framing> {
        self.link.as_ref().map(|(_, framing)| *framing)
    }

    /// Stamps `event` with `_stamp` and fires it.
    pub async fn fire(&mut self, mut event: Event) -> Result<(), ClientError> {
        event.stamp();
        self.send(&event, true).await
    }

    /// Fires `event` exactly as given (a relayed event keeps its `_stamp`).
    pub async fn fire_stamped(&mut self, event: &Event) -> Result<(), ClientError> {
        self.send(event, false).await
    }

    async fn send(&mut self, event: &Event, restamp: bool) -> Result<(), ClientError> {
        let mut body = std::mem::take(&mut self.buffer);
        body.clear();
        wire::encode_body(&event.tag, &event.data, &mut body);
        if let Some(limit) = self.max_event_size
            && body.len() as u64 > limit
        {
            return Err(ClientError::TooLarge {
                tag: event.tag.clone(),
                size: body.len(),
                limit,
            });
        }
        let result = match self.link.as_mut() {
            Some((writer, framing)) => {
                // One write per frame, unbuffered: an event is on its way when `fire` returns.
                let mut frame = Vec::with_capacity(body.len() + 16);
                wire::encode_frame(&body, *framing, &mut frame);
                writer
                    .write_all(&frame)
                    .await
                    .map_err(|source| ClientError::Io {
                        endpoint: self.address.pull.clone(),
                        source,
                    })
            }
            None => {
                // The second attempt carries a fresh `_stamp`, so a late echo of the first
                // cannot be taken for it.
                let again = || {
                    let mut event = event.clone();
                    if restamp {
                        event.stamp();
                    }
                    let mut body = Vec::new();
                    wire::encode_body(&event.tag, &event.data, &mut body);
                    body
                };
                framing::probe(&self.address, &body, again)
                    .await
                    .map(|link| self.link = Some(link))
            }
        };
        self.buffer = body;
        result
    }

    /// Flushes everything fired and closes the connection.
    pub async fn close(mut self) -> Result<(), ClientError> {
        if let Some((mut writer, _)) = self.link.take() {
            let endpoint = self.address.pull.clone();
            let io = |source| ClientError::Io {
                endpoint: endpoint.clone(),
                source,
            };
            writer.flush().await.map_err(io)?;
            writer.shutdown().await.map_err(io)?;
            // A daemon in tcp mode tells who sent the events by the sender's live socket: stay
            // connected until it has read everything and closed its side.
            if let Stream::Tcp(_) = writer {
                let mut rest = [0u8; 64];
                tokio::time::timeout(LINGER, async {
                    while matches!(writer.read(&mut rest).await, Ok(n) if n > 0) {}
                })
                .await
                .map_err(|_| {
                    ClientError::NotDelivered(format!(
                        "{endpoint} did not finish reading the events within {LINGER:?}; they may be lost"
                    ))
                })?;
            }
        }
        Ok(())
    }
}

/// How long closing waits for the daemon to finish reading.
const LINGER: Duration = Duration::from_secs(5);

/// Fires one event on a bus and closes the connection: the whole of `event.fire`.
pub async fn fire_once(
    address: &BusAddress,
    choice: FramingChoice,
    event: Event,
) -> Result<(), ClientError> {
    let mut publisher = Publisher::connect(address, choice).await?;
    publisher.fire(event).await?;
    publisher.close().await
}
