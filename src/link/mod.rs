//! The master–minion link: authenticated, encrypted sessions that carry msgpack messages.
//!
//! The master and minion logic see only [`Session`]s: a peer, the peer's verified public key,
//! and a pair of bounded channels of messages (msgpack maps with a `cmd`, read and built as
//! [`crate::proto::link`]'s types). A transport turns connections into sessions: [`tls`] is TCP
//! with TLS 1.3 and raw public keys (RFC 7250), each side pinning the other's key. Another transport (a message broker, say) only has to implement
//! [`Acceptor`] and [`Connector`].
//!
//! Liveness is the transport's job: an idle session sends a `ping` every keepalive interval, the
//! peer answers `pong`, and a session silent for three intervals, or whose peer takes nothing for
//! that long, is closed. Neither surfaces.
//!
//! Whoever reaches the master's port gets a connection before anyone knows who it is: those
//! connections wait at a [`Gate`], bounded per address and in total, the oldest giving way to a
//! new one, so that idle peers cannot keep a real minion out.

mod gate;
pub mod requests;
pub mod tls;

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use futures_util::{SinkExt, StreamExt};
use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::mpsc;
// tokio's clock, which tests of the keepalive can pause.
use tokio::time::Instant;
use tokio_util::codec::{Decoder, FramedRead, FramedWrite, LengthDelimitedCodec};
use tokio_util::sync::CancellationToken;

use crate::event::Value;
use crate::proto::link::Keepalive;
use crate::proto::{MAX_MESSAGE, command};
pub use gate::{Gate, Ticket};

/// `link_keepalive`: how often an idle session is pinged (10 s); three silent intervals close
/// it. Zero would ping without pause, so it is refused.
pub fn keepalive(config: &crate::config::Config) -> Result<Duration, crate::config::ConfigError> {
    let keepalive = config.get_seconds("link_keepalive", 10.0)?;
    if keepalive.is_zero() {
        return Err(crate::config::ConfigError::BadValue {
            key: "link_keepalive".into(),
            value: "0".into(),
            expected: "expected a positive number of seconds",
        });
    }
    Ok(keepalive)
}

/// Messages queued per direction of a session.
pub const SESSION_QUEUE: usize = 1024;

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
    /// The master presented a key other than the pinned one.
    #[error("the master at {peer} presented a key that is not the pinned one")]
    UnpinnedMaster {
        /// The peer's address.
        peer: String,
    },
    /// The TLS handshake failed: a tampered stream, not a halite peer.
    #[error("handshake with {peer} failed: {source}")]
    Handshake {
        /// The peer's address.
        peer: String,
        /// Why.
        source: std::io::Error,
    },
    /// The peer closed the session.
    #[error("the master at {peer} closed the connection {what}")]
    Closed {
        /// The peer's address.
        peer: String,
        /// When.
        what: &'static str,
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
    pub tx: mpsc::Sender<Outgoing>,
    /// Messages from the peer; `None` once the session has ended.
    pub rx: mpsc::Receiver<Value>,
    limit: Arc<AtomicUsize>,
    /// The place this session holds at the gate until it is trusted.
    ticket: Option<Ticket>,
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

/// The largest message a peer may send before its key is accepted: a hello with grains, not
/// a memory bomb from anyone who can reach the port.
pub const MAX_UNTRUSTED_MESSAGE: usize = 256 * 1024;

/// How much a session trusts its peer, which decides how big its messages may be.
#[derive(Debug)]
pub enum Trust {
    /// Not yet authorized: messages up to [`MAX_UNTRUSTED_MESSAGE`], and the session closes
    /// when the gate evicts its ticket.
    Untrusted(Ticket),
    /// Authorized: messages up to [`MAX_MESSAGE`].
    Trusted,
}

impl Session {
    /// Runs a session over any byte stream that already authenticated the peer: messages are
    /// length-prefixed msgpack maps. A reader and a writer run apart, so a peer that stops
    /// reading cannot stop the keepalive from noticing, and a slow consumer cannot stall writes.
    pub fn over<S>(
        stream: S,
        peer: String,
        peer_key: String,
        keepalive: Duration,
        trust: Trust,
    ) -> Self
    where
        S: AsyncRead + AsyncWrite + Send + 'static,
    {
        let (tx, outgoing) = mpsc::channel(SESSION_QUEUE);
        let (incoming, rx) = mpsc::channel(SESSION_QUEUE);
        let (limit, closed, ticket) = match trust {
            // An evicted ticket closes the session.
            Trust::Untrusted(ticket) => (MAX_UNTRUSTED_MESSAGE, ticket.evicted(), Some(ticket)),
            Trust::Trusted => (MAX_MESSAGE, CancellationToken::new(), None),
        };
        let limit = Arc::new(AtomicUsize::new(limit));
        let (read_half, write_half) = tokio::io::split(stream);
        let shared = Arc::new(Liveness {
            last_heard: std::sync::Mutex::new(Instant::now()),
            delivering: AtomicBool::new(false),
            closed,
        });
        let (pong_tx, pong_rx) = mpsc::channel(4);
        tokio::spawn(read(
            FramedRead::new(
                read_half,
                Limited {
                    codec: codec(MAX_MESSAGE),
                    limit: limit.clone(),
                },
            ),
            incoming,
            pong_tx,
            shared.clone(),
            peer.clone(),
        ));
        tokio::spawn(write(
            FramedWrite::new(write_half, codec(MAX_MESSAGE)),
            outgoing,
            pong_rx,
            shared,
            peer.clone(),
            keepalive,
        ));
        Self {
            peer,
            peer_key,
            tx,
            rx,
            limit,
            ticket,
        }
    }

    /// Lets the peer send messages up to [`MAX_MESSAGE`] and leaves the gate, once it is
    /// authorized. Call it before telling the peer: its next message may be a big one.
    pub fn trust(&mut self) {
        self.limit.store(MAX_MESSAGE, Ordering::Relaxed);
        self.ticket = None;
    }
}

fn codec(max: usize) -> LengthDelimitedCodec {
    LengthDelimitedCodec::builder()
        .max_frame_length(max)
        .new_codec()
}

/// Length-prefixed frames whose size limit is the session's trust when a frame's length is read,
/// not when the reader last looked: the message right after [`Session::trust`] may be big.
struct Limited {
    codec: LengthDelimitedCodec,
    limit: Arc<AtomicUsize>,
}

impl Decoder for Limited {
    type Item = BytesMut;
    type Error = std::io::Error;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<BytesMut>, std::io::Error> {
        // The codec checks the limit once, as it reads a frame's length.
        self.codec
            .set_max_frame_length(self.limit.load(Ordering::Relaxed));
        self.codec.decode(src)
    }
}

/// What the reader and writer of one session share.
#[derive(Debug)]
struct Liveness {
    last_heard: std::sync::Mutex<Instant>,
    /// The reader waits for the logic to take a message: the peer is not silent, we are busy.
    delivering: AtomicBool,
    closed: CancellationToken,
}

impl Liveness {
    fn heard(&self) {
        *self.last_heard.lock().expect("not poisoned") = Instant::now();
    }

    fn silent_for(&self) -> Duration {
        if self.delivering.load(Ordering::Relaxed) {
            return Duration::ZERO;
        }
        self.last_heard.lock().expect("not poisoned").elapsed()
    }
}

/// A message for the peer: as a value, packed by the session's writer; or packed already, so
/// that a job published to 10,000 minions is packed once and its bytes shared by their queues
/// (each writer still copies them into its own buffer as it writes).
#[derive(Debug, Clone)]
pub enum Outgoing {
    /// To be packed by the writer.
    Message(Value),
    /// Packed by [`Outgoing::packed`].
    Packed(Bytes),
}

impl From<Value> for Outgoing {
    fn from(message: Value) -> Self {
        Outgoing::Message(message)
    }
}

impl Outgoing {
    /// `message` packed once for any number of sessions; `None` when it is larger than the
    /// link carries.
    pub fn packed(message: &Value, what: &str) -> Option<Outgoing> {
        encode(message, what).map(Outgoing::Packed)
    }
}

/// Encodes a message; `None` (logged) when it is larger than the link carries.
fn encode(message: &Value, peer: &str) -> Option<Bytes> {
    let out = to_msgpack(message);
    if out.len() > MAX_MESSAGE {
        tracing::warn!(
            "dropped a {} message of {} bytes for {peer}: over the link's {MAX_MESSAGE}-byte limit",
            command(message).unwrap_or("?"),
            out.len()
        );
        return None;
    }
    Some(Bytes::from(out))
}

/// The packed size of a message, to check it against [`MAX_MESSAGE`] before queueing it.
pub fn packed_size(message: &Value) -> usize {
    to_msgpack(message).len()
}

fn to_msgpack(message: &Value) -> Vec<u8> {
    let mut out = Vec::new();
    rmpv::encode::write_value(&mut out, message).expect("writing to a Vec cannot fail");
    out
}

fn decode(frame: &BytesMut) -> Option<Value> {
    let mut slice: &[u8] = frame;
    let value = rmpv::decode::read_value(&mut slice).ok()?;
    (slice.is_empty() && value.is_map()).then_some(value)
}

async fn read<R>(
    mut frames: FramedRead<R, Limited>,
    incoming: mpsc::Sender<Value>,
    pongs: mpsc::Sender<()>,
    liveness: Arc<Liveness>,
    peer: String,
) where
    R: AsyncRead + Send + Unpin,
{
    loop {
        let frame = tokio::select! {
            _ = liveness.closed.cancelled() => return,
            frame = frames.next() => frame,
        };
        liveness.heard();
        let frame = match frame {
            Some(Ok(frame)) => frame,
            Some(Err(err)) => {
                // A peer hanging up without TLS's goodbye is ordinary (and anyone can do it).
                if matches!(
                    err.kind(),
                    std::io::ErrorKind::UnexpectedEof | std::io::ErrorKind::ConnectionReset
                ) {
                    tracing::debug!("link to {peer} closed: {err}");
                } else {
                    tracing::warn!("link to {peer} refused a message and closed: {err}");
                }
                liveness.closed.cancel();
                return;
            }
            None => {
                liveness.closed.cancel();
                return;
            }
        };
        let Some(message) = decode(&frame) else {
            tracing::warn!("link to {peer} closed: a message is not a msgpack map");
            liveness.closed.cancel();
            return;
        };
        match Keepalive::of(&message) {
            Some(Keepalive::Ping) => {
                let _ = pongs.try_send(());
            }
            Some(Keepalive::Pong) => {}
            None => {
                liveness.delivering.store(true, Ordering::Relaxed);
                let delivered = tokio::select! {
                    _ = liveness.closed.cancelled() => false,
                    sent = incoming.send(message) => sent.is_ok(),
                };
                liveness.delivering.store(false, Ordering::Relaxed);
                liveness.heard();
                if !delivered {
                    // The logic is gone: the writer flushes what it queued and closes.
                    return;
                }
            }
        }
    }
}

async fn write<W>(
    mut frames: FramedWrite<W, LengthDelimitedCodec>,
    mut outgoing: mpsc::Receiver<Outgoing>,
    mut pongs: mpsc::Receiver<()>,
    liveness: Arc<Liveness>,
    peer: String,
    keepalive: Duration,
) where
    W: AsyncWrite + Send + Unpin,
{
    let mut ticker = tokio::time::interval(keepalive);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    ticker.tick().await;
    // A write that takes longer than the silence limit means the peer stopped reading.
    let limit = keepalive * 3;
    // A peer that took nothing would not take the close either: it is given up on at once.
    let mut stuck = false;
    loop {
        let frame = tokio::select! {
            _ = liveness.closed.cancelled() => break,
            next = outgoing.recv() => match next {
                Some(Outgoing::Packed(frame)) => frame,
                Some(Outgoing::Message(message)) => match encode(&message, &peer) {
                    Some(frame) => frame,
                    None => continue,
                },
                None => break,
            },
            Some(()) = pongs.recv() => encode(&Keepalive::Pong.to_value(), &peer).expect("small"),
            _ = ticker.tick() => {
                if liveness.silent_for() >= limit {
                    tracing::warn!("link to {peer} is silent for {limit:?}, closing it");
                    break;
                }
                encode(&Keepalive::Ping.to_value(), &peer).expect("small")
            }
        };
        match tokio::time::timeout(limit, frames.send(frame)).await {
            Ok(Ok(())) => {}
            Ok(Err(err)) => {
                tracing::info!("link to {peer} closed while sending: {err}");
                break;
            }
            Err(_) => {
                tracing::warn!("link to {peer} takes nothing for {limit:?}, closing it");
                stuck = true;
                break;
            }
        }
    }
    if !stuck {
        let _ = tokio::time::timeout(limit, SinkExt::<Bytes>::close(&mut frames)).await;
    }
    liveness.closed.cancel();
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::proto::message;
    use tokio::io::DuplexStream;
    use tokio_util::codec::Framed;

    const KEEPALIVE: Duration = Duration::from_secs(10);

    type Peer = Framed<DuplexStream, LengthDelimitedCodec>;

    /// A trusted session over an in-memory stream holding `capacity` bytes, and the peer's end.
    fn session(capacity: usize) -> (Session, Peer) {
        let (ours, theirs) = tokio::io::duplex(capacity);
        let session = Session::over(
            ours,
            "peer".into(),
            String::new(),
            KEEPALIVE,
            Trust::Trusted,
        );
        (session, Framed::new(theirs, codec(MAX_MESSAGE)))
    }

    /// The command of the next message the peer receives, `None` once the session closed; and
    /// when.
    async fn receive(peer: &mut Peer) -> (Option<String>, Instant) {
        let cmd = peer.next().await.map(|frame| {
            let message = decode(&frame.expect("a frame")).expect("a message");
            command(&message).expect("a command").to_owned()
        });
        (cmd, Instant::now())
    }

    async fn say(peer: &mut Peer, cmd: &str) {
        let frame = Bytes::from(to_msgpack(&message(cmd, Vec::new())));
        peer.send(frame).await.expect("the session reads");
    }

    fn ping_at(at: Instant) -> (Option<String>, Instant) {
        (Some("ping".into()), at)
    }

    #[tokio::test(start_paused = true)]
    async fn a_silent_peer_is_pinged_every_interval_and_closed_after_three() {
        let (mut session, mut peer) = session(64 * 1024);
        let start = Instant::now();
        assert_eq!(receive(&mut peer).await, ping_at(start + KEEPALIVE));
        assert_eq!(receive(&mut peer).await, ping_at(start + KEEPALIVE * 2));
        assert_eq!(receive(&mut peer).await, (None, start + KEEPALIVE * 3));
        assert!(session.rx.recv().await.is_none(), "the logic is told");
        assert_eq!(Instant::now(), start + KEEPALIVE * 3);
    }

    #[tokio::test(start_paused = true)]
    async fn a_peer_that_answers_stays_and_its_pings_are_answered_at_once() {
        let (mut session, mut peer) = session(64 * 1024);
        let start = Instant::now();
        say(&mut peer, "ping").await;
        assert_eq!(receive(&mut peer).await, (Some("pong".into()), start));
        for n in 1..=10 {
            assert_eq!(receive(&mut peer).await, ping_at(start + KEEPALIVE * n));
            say(&mut peer, "pong").await;
        }
        session
            .tx
            .send(message("hello", Vec::new()).into())
            .await
            .unwrap();
        assert_eq!(
            receive(&mut peer).await,
            (Some("hello".into()), start + KEEPALIVE * 10)
        );
        say(&mut peer, "job").await;
        let first = session.rx.recv().await.expect("a message");
        assert_eq!(command(&first), Some("job"), "pings and pongs stay inside");
    }

    #[tokio::test(start_paused = true)]
    async fn a_message_packed_once_goes_out_as_it_would_have_been_packed() {
        let (session, mut peer) = session(64 * 1024);
        let start = Instant::now();
        let job = message("publish", vec![("fun".into(), "test.ping".into())]);
        let packed = Outgoing::packed(&job, "a test").expect("small");
        session.tx.send(packed.clone()).await.unwrap();
        session.tx.send(job.into()).await.unwrap();
        for _ in 0..2 {
            assert_eq!(receive(&mut peer).await, (Some("publish".into()), start));
        }
    }

    /// A peer whose messages wait for the logic is not silent: the logic is busy.
    #[tokio::test(start_paused = true)]
    async fn a_busy_logic_is_not_taken_for_a_silent_peer() {
        let (mut session, mut peer) = session(1 << 20);
        let start = Instant::now();
        for _ in 0..=SESSION_QUEUE {
            say(&mut peer, "job").await;
        }
        let watching = tokio::spawn(async move {
            let mut pings = Vec::new();
            loop {
                match receive(&mut peer).await {
                    (Some(cmd), at) => pings.push((cmd, at)),
                    (None, at) => return (pings, at),
                }
            }
        });
        tokio::time::sleep(KEEPALIVE * 10).await;
        for _ in 0..=SESSION_QUEUE {
            assert!(session.rx.recv().await.is_some());
        }
        let taken = Instant::now();
        let (pings, closed) = watching.await.unwrap();
        assert_eq!(
            closed,
            taken + KEEPALIVE * 3,
            "silent from when the logic took the last message"
        );
        let expected: Vec<_> = (1..=12)
            .map(|n| ping_at(start + KEEPALIVE * n))
            .map(|(cmd, at)| (cmd.unwrap(), at))
            .collect();
        assert_eq!(pings, expected);
    }

    /// A peer that stops reading leaves the writer inside a write, where silence is not
    /// checked: the write is given up after three intervals, and closing then waits as long for
    /// the peer to take what is queued before the logic is told.
    #[tokio::test(start_paused = true)]
    async fn a_peer_that_takes_nothing_is_given_up_on() {
        let (mut session, _peer) = session(1024);
        let start = Instant::now();
        let big = message("job", vec![("pad".into(), Value::Binary(vec![0; 4096]))]);
        session.tx.send(big.into()).await.unwrap();
        assert!(session.rx.recv().await.is_none());
        // Three intervals, as for a silent peer; it once took six (a clean close was tried too).
        assert_eq!(Instant::now(), start + KEEPALIVE * 3);
    }
}
