//! The master–minion link: authenticated, encrypted sessions that carry msgpack messages.
//!
//! The master and minion logic see only [`Session`]s: a peer, the peer's verified public key,
//! and a pair of bounded channels of messages (msgpack maps with a `cmd`). A transport turns
//! connections into sessions: [`tls`] is TCP with TLS 1.3 and raw public keys (RFC 7250), each
//! side pinning the other's key. Another transport (a message broker, say) only has to implement
//! [`Acceptor`] and [`Connector`].
//!
//! Liveness is the transport's job: an idle session sends a `ping` every keepalive interval, the
//! peer answers `pong`, and a session silent for three intervals is closed. Neither surfaces.

pub mod tls;

use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
use tokio_util::codec::{Framed, LengthDelimitedCodec};

use crate::event::{Value, map_get};

/// Messages queued per direction of a session.
pub const SESSION_QUEUE: usize = 1024;

/// The largest message a link carries (a job return can be big).
pub const MAX_MESSAGE: usize = 64 * 1024 * 1024;

/// The `cmd` of a message.
pub fn command(message: &Value) -> Option<&str> {
    map_get(message, "cmd").and_then(Value::as_str)
}

/// A message `{"cmd": cmd, ...fields}`.
pub fn message(cmd: &str, fields: Vec<(Value, Value)>) -> Value {
    let mut entries = vec![(Value::from("cmd"), Value::from(cmd))];
    entries.extend(fields);
    Value::Map(entries)
}

/// What went wrong on a link.
#[derive(Debug, thiserror::Error)]
pub enum LinkError {
    /// The TCP connection failed.
    #[error("cannot connect to the master at {address}: {source}")]
    Connect {
        /// `host:port`.
        address: String,
        /// Why.
        source: std::io::Error,
    },
    /// The master's name did not resolve.
    #[error("cannot resolve the master's address {address}: {source}")]
    Resolve {
        /// `host:port`.
        address: String,
        /// Why.
        source: std::io::Error,
    },
    /// The TLS handshake failed: a key mismatch, a tampered stream, not a halite peer.
    #[error("handshake with {peer} failed: {source}")]
    Handshake {
        /// The peer's address.
        peer: String,
        /// Why.
        source: std::io::Error,
    },
    /// Nothing answered in time.
    #[error("{what} timed out after {after:?}")]
    Timeout {
        /// What was awaited.
        what: String,
        /// How long.
        after: Duration,
    },
}

/// One authenticated session with a peer.
#[derive(Debug)]
pub struct Session {
    /// The peer's address, for logs.
    pub peer: String,
    /// The peer's public key (PEM), verified by the transport.
    pub peer_key: String,
    /// Messages to the peer. Dropping it closes the session once queued messages are sent.
    pub tx: mpsc::Sender<Value>,
    /// Messages from the peer; `None` once the session has ended.
    pub rx: mpsc::Receiver<Value>,
}

/// The master's side of a transport: authenticated sessions as minions connect.
pub trait Acceptor: Send + 'static {
    /// The next session; errors are for the acceptor itself, not one failed peer.
    fn accept(&mut self) -> impl Future<Output = std::io::Result<Session>> + Send;
}

/// The minion's side of a transport: a session with the master.
pub trait Connector: Send + Sync + 'static {
    /// Connects and authenticates.
    fn connect(&self) -> impl Future<Output = Result<Session, LinkError>> + Send;
}

impl Session {
    /// Runs a session over any byte stream that already authenticated the peer: messages are
    /// length-prefixed msgpack maps.
    pub fn over<S>(stream: S, peer: String, peer_key: String, keepalive: Duration) -> Self
    where
        S: AsyncRead + AsyncWrite + Send + Unpin + 'static,
    {
        let (tx, outgoing) = mpsc::channel(SESSION_QUEUE);
        let (incoming, rx) = mpsc::channel(SESSION_QUEUE);
        let codec = LengthDelimitedCodec::builder()
            .max_frame_length(MAX_MESSAGE)
            .new_codec();
        let framed = Framed::new(stream, codec);
        tokio::spawn(pump(framed, outgoing, incoming, peer.clone(), keepalive));
        Self {
            peer,
            peer_key,
            tx,
            rx,
        }
    }
}

fn encode(message: &Value) -> Bytes {
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, message).expect("writing to a Vec cannot fail");
    Bytes::from(out)
}

fn decode(frame: &BytesMut) -> Option<Value> {
    let mut slice: &[u8] = frame;
    let value = rmpv::decode::read_value(&mut slice).ok()?;
    (slice.is_empty() && value.is_map()).then_some(value)
}

async fn pump<S>(
    mut framed: Framed<S, LengthDelimitedCodec>,
    mut outgoing: mpsc::Receiver<Value>,
    incoming: mpsc::Sender<Value>,
    peer: String,
    keepalive: Duration,
) where
    S: AsyncRead + AsyncWrite + Send + Unpin,
{
    let mut ticker = tokio::time::interval(keepalive);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    let mut silent_ticks = 0u32;
    loop {
        tokio::select! {
            next = outgoing.recv() => match next {
                Some(message) => {
                    if let Err(err) = framed.send(encode(&message)).await {
                        tracing::info!("link to {peer} closed while sending: {err}");
                        return;
                    }
                }
                None => {
                    let _ = SinkExt::<Bytes>::close(&mut framed).await;
                    return;
                }
            },
            frame = framed.next() => {
                silent_ticks = 0;
                let frame = match frame {
                    Some(Ok(frame)) => frame,
                    Some(Err(err)) => {
                        tracing::warn!("link to {peer} refused a message and closed: {err}");
                        return;
                    }
                    None => return,
                };
                let Some(message) = decode(&frame) else {
                    tracing::warn!("link to {peer} closed: a message is not a msgpack map");
                    return;
                };
                match command(&message) {
                    Some("ping") => {
                        if framed.send(encode(&self::message("pong", Vec::new()))).await.is_err() {
                            return;
                        }
                    }
                    Some("pong") => {}
                    _ => {
                        if incoming.send(message).await.is_err() {
                            // The logic is gone; flush what it queued and close.
                            let _ = SinkExt::<Bytes>::close(&mut framed).await;
                            return;
                        }
                    }
                }
            }
            _ = ticker.tick() => {
                silent_ticks += 1;
                if silent_ticks >= 3 {
                    tracing::warn!("link to {peer} is silent for {:?}, closing it", keepalive * 3);
                    return;
                }
                if framed.send(encode(&message("ping", Vec::new()))).await.is_err() {
                    return;
                }
            }
        }
    }
}
