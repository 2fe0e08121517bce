//! The event-bus server a master or minion owns: subscribers connect to the publish socket,
//! senders connect to the pull socket, and every accepted event goes to every subscriber.
//!
//! Each event is framed once and the same bytes are queued for every subscriber in its own
//! [`outbox`](Outbox), bounded in bytes. A subscriber that falls behind a burst makes the senders
//! wait for it to catch up, for at most [`BusOptions::slow_wait`] a burst; one that stops reading
//! never slows the senders or the other subscribers for longer, and never grows the daemon beyond
//! its outbox: when the outbox is full, the [`SlowPolicy`] applies (drop its oldest events, or
//! disconnect it). Drops are counted
//! per subscriber, logged, told to the subscriber itself as a [`LOST_TAG`] event, and announced
//! on the bus as a [`SLOW_SUBSCRIBER_TAG`] event, at most once a second per subscriber.

mod configured;
mod outbox;

use std::fmt;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt, BufWriter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
// tokio's clock, which tests of the slow-subscriber reports can pause.
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::event::{Event, Value};
use crate::ipc::BusAddress;
use crate::ipc::{Listener, Peer, Stream};
use crate::wire::{self, Chunk, FrameCodec, Framing};

pub use configured::{ConfiguredBus, DaemonError};
use outbox::{Outbox, Pressure};
pub use outbox::{SlowPolicy, TagFilter};

/// How many bytes of events may wait for one subscriber before the [`SlowPolicy`] applies.
pub const DEFAULT_SUBSCRIBER_BUFFER: usize = 32 * 1024 * 1024;

/// How long senders wait, at most, for a subscriber whose buffer is over half full to catch up.
pub const DEFAULT_SLOW_WAIT: Duration = Duration::from_millis(250);

/// Connections accepted at once per socket; further clients wait in the listen backlog.
pub const MAX_CONNECTIONS: usize = 4096;

/// The event a subscriber receives, in its own stream, after it lost events:
/// `{"lost": <since the last notice>, "total": <since it connected>}`.
pub const LOST_TAG: &str = "halite/bus/lost";

/// The event announced on the bus when a subscriber loses events or is disconnected:
/// `{"peer", "lost", "total", "policy", "disconnected"}`.
pub const SLOW_SUBSCRIBER_TAG: &str = "halite/bus/slow_subscriber";

/// How long shutdown waits for subscribers to take the events already accepted.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(5);

/// How often a slow subscriber is reported, at most.
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// What kind of bus this is, which decides how strictly senders are checked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Node {
    /// A master bus: bodies that do not decode as events are dropped, as Salt's master does.
    Master,
    /// A minion bus: bodies are relayed as received, as Salt's minion does.
    Minion,
}

/// How to run a bus.
#[derive(Debug, Clone)]
pub struct BusOptions {
    /// Where to listen.
    pub address: BusAddress,
    /// Master or minion rules.
    pub node: Node,
    /// The framing written to subscribers.
    pub publish_framing: Framing,
    /// The largest frame accepted from a sender.
    pub max_frame: usize,
    /// How many bytes may wait for one subscriber.
    pub subscriber_buffer: usize,
    /// What happens to a subscriber whose buffer is full.
    pub slow_policy: SlowPolicy,
    /// How long senders wait, at most, for a subscriber whose buffer is over half full to catch
    /// up; zero: never.
    pub slow_wait: Duration,
}

impl BusOptions {
    /// Options with halite's defaults for everything but where and what.
    pub fn new(address: BusAddress, node: Node) -> Self {
        Self {
            address,
            node,
            publish_framing: Framing::Bare,
            max_frame: crate::wire::DEFAULT_MAX_FRAME,
            subscriber_buffer: DEFAULT_SUBSCRIBER_BUFFER,
            slow_policy: SlowPolicy::DropOldest,
            slow_wait: DEFAULT_SLOW_WAIT,
        }
    }

    /// Salt's socket modes: a master's publish socket is group-readable (0660); every other bus
    /// socket is private to the owner (0600).
    fn modes(&self) -> (u32, u32) {
        match self.node {
            Node::Master => (0o660, 0o600),
            Node::Minion => (0o600, 0o600),
        }
    }
}

/// Failure to start a bus.
#[derive(Debug, thiserror::Error)]
#[error("cannot listen on {endpoint}: {source}")]
pub struct BusError {
    endpoint: String,
    source: std::io::Error,
}

/// What every part of a running bus shares.
#[derive(Debug)]
struct Shared {
    subscribers: RwLock<Vec<Arc<Outbox>>>,
    subscriber_buffer: usize,
    slow_policy: SlowPolicy,
    pressure: Arc<Pressure>,
    published: AtomicU64,
    lost: AtomicU64,
    closed: CancellationToken,
}

/// Publishes into a running bus and subscribes to it from inside the daemon.
#[derive(Debug, Clone)]
pub struct BusHandle {
    shared: Arc<Shared>,
}

impl BusHandle {
    fn new(subscriber_buffer: usize, slow_policy: SlowPolicy, slow_wait: Duration) -> Self {
        Self {
            shared: Arc::new(Shared {
                subscribers: RwLock::default(),
                subscriber_buffer,
                slow_policy,
                pressure: Arc::new(Pressure::new(slow_wait)),
                published: AtomicU64::default(),
                lost: AtomicU64::default(),
                closed: CancellationToken::new(),
            }),
        }
    }

    /// Queues chunks of canonical bare frames, in order, for every subscriber.
    fn publish(&self, chunks: &[Chunk]) {
        self.publish_except(chunks, None);
    }

    /// Queues chunks for every subscriber but `except`.
    fn publish_except(&self, chunks: &[Chunk], except: Option<&Arc<Outbox>>) {
        let events: u64 = chunks.iter().map(|chunk| u64::from(chunk.events)).sum();
        self.shared.published.fetch_add(events, Ordering::Relaxed);
        let subscribers = self
            .shared
            .subscribers
            .read()
            .expect("subscriber list lock");
        let published = outbox::Published::new(chunks);
        for outbox in subscribers.iter() {
            if !except.is_some_and(|except| Arc::ptr_eq(outbox, except)) {
                outbox.push(&published);
            }
        }
    }

    /// Stamps and publishes an event the daemon itself fires.
    pub fn fire(&self, event: Event) {
        self.publish(&[Chunk::one(event_frame(event))]);
    }

    /// Fires an event the daemon itself raises, its data the given fields in order.
    pub fn fire_fields(&self, tag: &str, fields: Vec<(&str, Value)>) {
        let data = Value::Map(
            fields
                .into_iter()
                .map(|(key, value)| (key.into(), value))
                .collect(),
        );
        match Event::new(tag, data) {
            Ok(event) => self.fire(event),
            Err(err) => tracing::warn!("cannot fire {tag}: {err}"),
        }
    }

    /// Stamps and publishes an event whose body (tag and packed data) is at most `limit`
    /// bytes; a larger one comes back, with its size, unpublished.
    pub fn fire_within(&self, mut event: Event, limit: u64) -> Result<(), (Event, usize)> {
        event.stamp();
        let body = event_body(&event);
        if body.len() as u64 > limit {
            return Err((event, body.len()));
        }
        self.publish(&[Chunk::one(bare_frame(&body))]);
        Ok(())
    }

    /// Stamps and queues an event only for subscribers with room for it: for the bus's reports
    /// about slow subscribers, which must not make anyone lose an event.
    fn offer(&self, event: Event) {
        let frame = Chunk::one(event_frame(event));
        self.shared.published.fetch_add(1, Ordering::Relaxed);
        for outbox in self
            .shared
            .subscribers
            .read()
            .expect("subscriber list lock")
            .iter()
        {
            outbox.offer(&frame);
        }
    }

    fn register(&self, filter: Option<TagFilter>) -> Arc<Outbox> {
        let outbox = Arc::new(Outbox::new(
            self.shared.subscriber_buffer,
            self.shared.slow_policy,
            filter,
            self.shared.pressure.clone(),
        ));
        self.shared
            .subscribers
            .write()
            .expect("subscriber list lock")
            .push(outbox.clone());
        outbox
    }

    fn unregister(&self, outbox: &Arc<Outbox>) {
        outbox.close();
        self.shared
            .subscribers
            .write()
            .expect("subscriber list lock")
            .retain(|o| !Arc::ptr_eq(o, outbox));
    }

    /// A new in-process subscription, seeing events published from now on.
    pub fn subscribe(&self) -> BusSubscription {
        self.subscription(None)
    }

    /// A new in-process subscription to the events whose tag `filter` accepts.
    pub fn subscribe_filtered(&self, filter: TagFilter) -> BusSubscription {
        self.subscription(Some(filter))
    }

    fn subscription(&self, filter: Option<TagFilter>) -> BusSubscription {
        BusSubscription {
            outbox: self.register(filter),
            handle: self.clone(),
            pending: Default::default(),
            name: "in-process subscriber",
        }
    }

    /// Waits while a subscriber that falls behind catches up, as its outbox allows.
    async fn caught_up(&self) {
        self.shared.pressure.eased(&self.shared.subscribers).await;
    }

    /// How many events have been published since the bus started.
    pub fn published(&self) -> u64 {
        self.shared.published.load(Ordering::Relaxed)
    }

    /// How many events subscribers have lost, in all, since the bus started.
    pub fn lost(&self) -> u64 {
        self.shared.lost.load(Ordering::Relaxed)
    }
}

/// An in-process subscriber of a running bus.
#[derive(Debug)]
pub struct BusSubscription {
    outbox: Arc<Outbox>,
    handle: BusHandle,
    pending: std::collections::VecDeque<Bytes>,
    /// Who it is, for the warning when it loses events.
    name: &'static str,
}

impl BusSubscription {
    /// The next event body, or `None` once the bus has shut down and everything queued was
    /// taken. Events lost because this subscriber fell behind are logged and skipped.
    pub async fn next_body(&mut self) -> Option<Bytes> {
        loop {
            if let Some(frame) = self.pending.pop_front() {
                return Some(wire::canonical_body(&frame));
            }
            let batch = tokio::select! {
                batch = self.outbox.take() => batch,
                () = self.handle.shared.closed.cancelled() => {
                    let batch = self.outbox.take_now();
                    if batch.chunks.is_empty() {
                        return None;
                    }
                    batch
                }
            };
            if batch.lost > 0 {
                tracing::warn!("{} fell behind and lost {} events", self.name, batch.lost);
            }
            self.pending = frames_of(batch);
        }
    }
}

/// The frames of a batch, one by one.
fn frames_of(batch: outbox::Batch) -> std::collections::VecDeque<Bytes> {
    batch.chunks.iter().flat_map(Chunk::frames).collect()
}

impl BusSubscription {
    /// The subscription named `name` in its warnings: "`name` fell behind and lost N events".
    pub fn named(mut self, name: &'static str) -> Self {
        self.name = name;
        self
    }

    /// From now on, only the events whose tag `filter` accepts.
    pub fn set_filter(&self, filter: TagFilter) {
        self.outbox.set_filter(filter);
    }

    /// Publishes to every subscriber but this one: for a bridge that shares the bus with
    /// another, so that what it brings in is not sent back out.
    pub fn publisher_past(&self) -> PublisherPast {
        PublisherPast {
            handle: self.handle.clone(),
            past: self.outbox.clone(),
        }
    }

    /// The next event body already queued for this subscriber, without waiting.
    pub fn try_next_body(&mut self) -> Option<Bytes> {
        if self.pending.is_empty() {
            self.pending = frames_of(self.outbox.take_now());
        }
        self.pending
            .pop_front()
            .map(|frame| wire::canonical_body(&frame))
    }
}

/// Publishes into a running bus for every subscriber but one.
#[derive(Debug, Clone)]
pub struct PublisherPast {
    handle: BusHandle,
    past: Arc<Outbox>,
}

impl PublisherPast {
    /// Publishes an event body as it is.
    pub fn publish(&self, body: &[u8]) {
        self.handle
            .publish_except(&[Chunk::one(bare_frame(body))], Some(&self.past));
    }
}

impl Drop for BusSubscription {
    fn drop(&mut self) {
        self.handle.unregister(&self.outbox);
    }
}

/// A bound, not yet running bus.
#[derive(Debug)]
pub struct Bus {
    options: BusOptions,
    publish: Listener,
    pull: Listener,
    handle: BusHandle,
}

impl Bus {
    /// Binds both sockets with Salt's permissions. The publish socket is bound first so that
    /// nothing a sender manages to fire can precede the first possible subscriber.
    pub async fn bind(options: BusOptions) -> Result<Self, BusError> {
        let (publish_mode, pull_mode) = options.modes();
        let bind = |endpoint: &crate::ipc::Endpoint, mode| {
            let endpoint = endpoint.clone();
            async move {
                endpoint.bind(mode).await.map_err(|source| BusError {
                    endpoint: endpoint.to_string(),
                    source,
                })
            }
        };
        let publish = bind(&options.address.publish, publish_mode).await?;
        let pull = bind(&options.address.pull, pull_mode).await?;
        let handle = BusHandle::new(
            options.subscriber_buffer,
            options.slow_policy,
            options.slow_wait,
        );
        Ok(Self {
            options,
            publish,
            pull,
            handle,
        })
    }

    /// A handle to publish and subscribe from inside the daemon.
    pub fn handle(&self) -> BusHandle {
        self.handle.clone()
    }

    /// Serves until `shutdown` is cancelled, then stops accepting, finishes delivering every
    /// event already accepted to the subscribers still connected, and returns.
    pub async fn run(self, shutdown: CancellationToken) {
        let Bus {
            options,
            publish,
            pull,
            handle,
        } = self;
        let pullers = TaskTracker::new();
        let subscribers = TaskTracker::new();
        // Cancelled once every sender is done: subscribers then write out what they hold and stop.
        let drained = handle.shared.closed.clone();
        // One accept loop per socket: an accept future that loses a `select!` race may have
        // taken a connection off the queue already, so accepts are never raced against each
        // other, only against shutdown.
        let accept_senders = accept_loop(&pull, &shutdown, |stream, peer, slot| {
            let (handle, options, shutdown) = (handle.clone(), options.clone(), shutdown.clone());
            pullers.spawn(async move {
                serve_sender(stream, &peer, &options, &handle, shutdown).await;
                drop(slot);
            });
        });
        let accept_subscribers = accept_loop(&publish, &shutdown, |stream, peer, slot| {
            let (handle, drained, framing) =
                (handle.clone(), drained.clone(), options.publish_framing);
            // Registered before the task runs, so no event published after the accept is missed.
            let outbox = handle.register(None);
            subscribers.spawn(async move {
                serve_subscriber(stream, &peer, &outbox, framing, &handle, drained).await;
                handle.unregister(&outbox);
                drop(slot);
            });
        });
        tokio::join!(accept_senders, accept_subscribers);
        drop((publish, pull));
        pullers.close();
        pullers.wait().await;
        // Everything accepted is now queued; the subscribers write out what they hold and stop.
        drained.cancel();
        subscribers.close();
        // A subscriber that stopped reading would hold shutdown forever; the others get this long.
        if tokio::time::timeout(DRAIN_TIMEOUT, subscribers.wait())
            .await
            .is_err()
        {
            tracing::warn!(
                "gave up on {} subscribers that did not read their last events within {DRAIN_TIMEOUT:?}",
                subscribers.len()
            );
        }
    }
}

/// Accepts connections until shutdown, at most [`MAX_CONNECTIONS`] served at once.
async fn accept_loop<F>(listener: &Listener, shutdown: &CancellationToken, mut serve: F)
where
    F: FnMut(Stream, Peer, OwnedSemaphorePermit),
{
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
    loop {
        let accepted = tokio::select! {
            () = shutdown.cancelled() => return,
            accepted = accept(listener, &slots) => accepted,
        };
        if let Some((stream, peer, slot)) = accepted {
            serve(stream, peer, slot);
        }
    }
}

async fn accept(
    listener: &Listener,
    slots: &Arc<Semaphore>,
) -> Option<(Stream, Peer, OwnedSemaphorePermit)> {
    let permit = slots.clone().acquire_owned().await.ok()?;
    match listener.accept().await {
        Ok((stream, peer)) => Some((stream, peer, permit)),
        Err(err) => {
            tracing::warn!("accepting a bus connection failed: {err}");
            // Out of file descriptors and similar errors persist for a moment; don't spin.
            tokio::time::sleep(std::time::Duration::from_millis(50)).await;
            None
        }
    }
}

/// How much a read from a sender takes when the last one emptied the socket: what a sender that
/// sends now and then needs, and all an idle sender holds while it waits.
const QUIET_READ: usize = 8 * 1024;

/// How much a read takes when the last one filled its buffer, so more is surely waiting: a busy
/// sender's backlog in a few system calls.
const BUSY_READ: usize = 64 * 1024;

/// Reads frames from one sender until it disconnects, sends garbage, or the bus shuts down.
/// Everything one read brings is published together, runs of canonical frames as they came.
async fn serve_sender(
    mut stream: Stream,
    peer: &Peer,
    options: &BusOptions,
    handle: &BusHandle,
    shutdown: CancellationToken,
) {
    let mut codec = FrameCodec::new(options.max_frame);
    let mut buf = BytesMut::new();
    // The largest the buffer has been since it was last made anew: after a frame is consumed,
    // `capacity()` no longer shows the part of the allocation before what is left.
    let mut allocated = 0;
    let mut busy = false;
    let mut chunks: Vec<Chunk> = Vec::new();
    // Made once: a fresh one per read would register with the token every time.
    let stopping = shutdown.cancelled();
    tokio::pin!(stopping);
    loop {
        let read_size = if busy { BUSY_READ } else { QUIET_READ };
        if buf.capacity() - buf.len() < read_size / 2 {
            buf.reserve(read_size);
        }
        allocated = allocated.max(buf.capacity());
        // Grown for a burst or a large frame that has gone out: kept while the sender goes on,
        // not while it waits. (A frame being read grows it by doubling, to at most twice what
        // it needs: not oversized.)
        let oversized = allocated > 4 * (buf.len() + read_size);
        let room = buf.capacity() - buf.len();
        let read = tokio::select! {
            biased;
            read = async {
                if oversized {
                    match stream.try_read_buf(&mut buf) {
                        Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => {
                            let mut fresh = BytesMut::with_capacity(buf.len() + read_size);
                            fresh.extend_from_slice(&buf);
                            buf = fresh;
                            allocated = buf.capacity();
                        }
                        read => return read,
                    }
                }
                stream.read_buf(&mut buf).await
            } => read,
            // Frames already read off the socket were accepted: they are published below.
            () = &mut stopping => Ok(0),
        };
        let ended = match read {
            Ok(0) => true,
            Ok(n) => {
                busy = n == room;
                // A sender that never pauses still stops at shutdown, after this read.
                shutdown.is_cancelled()
            }
            Err(err) => {
                tracing::error!("closed the pull connection from {peer}: {err}");
                true
            }
        };
        let decoded = codec.decode_chunks(
            &mut buf,
            |body| publishable(body, peer, options),
            &mut chunks,
        );
        // The frame being read may have grown it.
        allocated = allocated.max(buf.capacity());
        if !chunks.is_empty() {
            // After the read, not before: a read that was already waiting when a subscriber
            // fell behind holds its frames here until it caught up (or shutdown publishes them).
            tokio::select! {
                biased;
                () = handle.caught_up() => {}
                () = shutdown.cancelled() => {}
            }
            handle.publish(&chunks);
            chunks.clear();
        }
        if let Err(err) = decoded {
            tracing::error!("closed the pull connection from {peer}: {err}");
            return;
        }
        if ended {
            if !buf.is_empty() && !shutdown.is_cancelled() {
                let err = wire::FrameError::Truncated(buf.len());
                tracing::error!("closed the pull connection from {peer}: {err}");
            }
            return;
        }
    }
}

/// Whether a sender's frame is published: a master drops bodies that do not decode, as Salt's
/// does; frames that are not events are ignored on every bus.
fn publishable(body: Result<&[u8], wire::IgnoredFrame>, peer: &Peer, options: &BusOptions) -> bool {
    match body {
        Err(ignored) => {
            tracing::warn!("ignored a frame from {peer} on the pull socket: {ignored}");
            false
        }
        Ok(body) if options.node == Node::Master => match wire::validate_body(body) {
            Ok(()) => true,
            Err(err) => {
                tracing::warn!("dropped an event from {peer} on the pull socket: {err}");
                false
            }
        },
        Ok(_) => true,
    }
}

/// Writes a subscriber's outbox to it until it disconnects or the bus has drained, applying
/// and reporting the slow-subscriber policy. Any stream will do, so that tests can stall an
/// in-memory subscriber.
async fn serve_subscriber<S: AsyncRead + AsyncWrite>(
    stream: S,
    peer: &(dyn fmt::Display + Sync),
    outbox: &Outbox,
    framing: Framing,
    handle: &BusHandle,
    drained: CancellationToken,
) {
    let (mut reader, writer) = tokio::io::split(stream);
    let mut writer = BufWriter::with_capacity(64 * 1024, writer);
    // Subscribers never send anything meaningful; reading only tells us when they leave.
    let mut discard = [0u8; 512];
    let mut report = SlowReport::new(peer, handle);
    // A subscriber that stops reading leaves its writer waiting inside a write; the ticker lets
    // the writer report losses and apply the policy meanwhile.
    let mut ticker = tokio::time::interval(CHECK_EVERY);
    ticker.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let drained = drained.cancelled();
    tokio::pin!(drained);
    loop {
        let (batch, last) = tokio::select! {
            biased;
            batch = outbox.take() => (batch, false),
            read = reader.read(&mut discard) => match read {
                Ok(0) | Err(_) => break,
                Ok(_) => continue,
            },
            () = &mut drained => (outbox.take_now(), true),
        };
        if batch.disconnect {
            report.disconnected(batch.lost_total);
            return;
        }
        let written = write_batch(&mut writer, &batch, framing);
        tokio::pin!(written);
        let outcome = loop {
            tokio::select! {
                outcome = &mut written => break outcome,
                _ = ticker.tick() => {
                    let (lost_total, overflowed) = outbox.health();
                    if overflowed {
                        report.disconnected(lost_total);
                        return;
                    }
                    report.lost_so_far(lost_total);
                }
            }
        };
        report.lost_so_far(batch.lost_total);
        if outcome.is_err() || last {
            break;
        }
    }
    report.flush();
    let _ = writer.flush().await;
    let _ = writer.shutdown().await;
}

/// How often a writer waiting on its subscriber checks for losses and overflow.
const CHECK_EVERY: Duration = Duration::from_millis(100);

/// Writes one batch, preceded by a loss notice when events were dropped, and flushes.
async fn write_batch<W: tokio::io::AsyncWrite + Unpin>(
    writer: &mut W,
    batch: &outbox::Batch,
    framing: Framing,
) -> std::io::Result<()> {
    if batch.lost > 0 {
        write_frame(writer, &lost_notice(batch.lost, batch.lost_total), framing).await?;
    }
    for chunk in &batch.chunks {
        match framing {
            Framing::Bare => writer.write_all(&chunk.bytes).await?,
            Framing::LengthPrefixed => {
                for frame in chunk.frames() {
                    write_frame(writer, &frame, framing).await?;
                }
            }
        }
    }
    writer.flush().await
}

async fn write_frame<W: tokio::io::AsyncWrite + Unpin>(
    writer: &mut W,
    frame: &Bytes,
    framing: Framing,
) -> std::io::Result<()> {
    if framing == Framing::LengthPrefixed {
        writer
            .write_all(&(frame.len() as u32).to_be_bytes())
            .await?;
    }
    writer.write_all(frame).await
}

/// The frame telling one subscriber how many events it lost.
fn lost_notice(lost: u64, total: u64) -> Bytes {
    let data = Value::Map(vec![
        (Value::from("lost"), Value::from(lost)),
        (Value::from("total"), Value::from(total)),
    ]);
    event_frame(Event {
        tag: LOST_TAG.to_owned(),
        data,
    })
}

/// An event the bus itself fires, stamped and framed as Salt frames it.
fn event_frame(mut event: Event) -> Bytes {
    event.stamp();
    bare_frame(&event_body(&event))
}

fn event_body(event: &Event) -> Vec<u8> {
    let mut body = Vec::new();
    wire::encode_body(&event.tag, &event.data, &mut body);
    body
}

fn bare_frame(body: &[u8]) -> Bytes {
    let mut frame = Vec::with_capacity(body.len() + 20);
    wire::encode_frame(body, Framing::Bare, &mut frame);
    Bytes::from(frame)
}

/// Logs and announces a slow subscriber's losses, at most once per [`REPORT_EVERY`].
struct SlowReport<'a> {
    peer: &'a (dyn fmt::Display + Sync),
    handle: &'a BusHandle,
    /// Losses counted so far, and how many of them were reported.
    total: u64,
    reported: u64,
    last: Option<Instant>,
}

impl<'a> SlowReport<'a> {
    fn new(peer: &'a (dyn fmt::Display + Sync), handle: &'a BusHandle) -> Self {
        Self {
            peer,
            handle,
            total: 0,
            reported: 0,
            last: None,
        }
    }

    /// Takes note of the subscriber's loss count, reporting when due.
    fn lost_so_far(&mut self, total: u64) {
        if total > self.total {
            self.handle
                .shared
                .lost
                .fetch_add(total - self.total, Ordering::Relaxed);
            self.total = total;
        }
        if self.total > self.reported && self.last.is_none_or(|last| last.elapsed() >= REPORT_EVERY)
        {
            self.flush();
        }
    }

    fn flush(&mut self) {
        let unreported = self.total - self.reported;
        if unreported == 0 {
            return;
        }
        let policy = self.handle.shared.slow_policy.name();
        tracing::warn!(
            "subscriber {} is too slow: dropped its {unreported} oldest events ({} in all; policy {policy})",
            self.peer,
            self.total
        );
        self.announce(unreported, false);
        self.reported = self.total;
        self.last = Some(Instant::now());
    }

    fn disconnected(&mut self, total: u64) {
        self.lost_so_far(total);
        tracing::warn!(
            "subscriber {} is too slow: disconnected it (policy {}, buffer {} bytes)",
            self.peer,
            self.handle.shared.slow_policy.name(),
            self.handle.shared.subscriber_buffer
        );
        self.announce(self.total - self.reported, true);
    }

    fn announce(&self, lost: u64, disconnected: bool) {
        let data = Value::Map(vec![
            (Value::from("peer"), Value::from(self.peer.to_string())),
            (Value::from("lost"), Value::from(lost)),
            (Value::from("total"), Value::from(self.total)),
            (
                Value::from("policy"),
                Value::from(self.handle.shared.slow_policy.name()),
            ),
            (Value::from("disconnected"), Value::from(disconnected)),
        ]);
        self.handle.offer(Event {
            tag: SLOW_SUBSCRIBER_TAG.to_owned(),
            data,
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures_util::StreamExt;
    use tokio_util::codec::FramedRead;

    const MS: Duration = Duration::from_millis(1);

    /// The slow-subscriber reports queued for `watcher` so far: `(lost, total, disconnected)`.
    fn reports(watcher: &mut BusSubscription) -> Vec<(u64, u64, bool)> {
        std::iter::from_fn(|| watcher.try_next_body())
            .filter_map(|body| slow_report(&body))
            .collect()
    }

    fn slow_report(body: &[u8]) -> Option<(u64, u64, bool)> {
        let event = wire::decode_body(body).expect("an event");
        let count = |key| event.get(key).and_then(Value::as_u64).expect("a count");
        (event.tag == SLOW_SUBSCRIBER_TAG).then(|| {
            (
                count("lost"),
                count("total"),
                event.get("disconnected") == Some(&Value::Boolean(true)),
            )
        })
    }

    /// The next slow-subscriber report `watcher` receives, and when.
    async fn next_report(watcher: &mut BusSubscription) -> ((u64, u64, bool), Instant) {
        loop {
            let body = watcher.next_body().await.expect("the bus is up");
            if let Some(report) = slow_report(&body) {
                return (report, Instant::now());
            }
        }
    }

    /// A bus under `policy` whose one socket subscriber reads nothing (its writer task already
    /// holding a first batch of 40 events), and a watcher of the bus's own reports.
    struct Stalled {
        handle: BusHandle,
        watcher: BusSubscription,
        stalled: tokio::io::DuplexStream,
        outbox: Arc<Outbox>,
        start: Instant,
        writer: tokio::task::JoinHandle<()>,
    }

    fn stalled(policy: SlowPolicy) -> Stalled {
        let handle = BusHandle::new(16 * 1024, policy, Duration::ZERO);
        let mut watcher = handle.subscribe();
        let (stalled, ours) = tokio::io::duplex(4096);
        let outbox = handle.register(None);
        let start = Instant::now();
        load(&handle, &mut watcher, 40);
        let writer = tokio::spawn({
            let (handle, outbox) = (handle.clone(), outbox.clone());
            async move {
                let drained = CancellationToken::new();
                serve_subscriber(ours, &"stalled", &outbox, Framing::Bare, &handle, drained).await;
            }
        });
        Stalled {
            handle,
            watcher,
            stalled,
            outbox,
            start,
            writer,
        }
    }

    /// Publishes `count` events of about 200 bytes, in handfuls that `watcher` takes as they go,
    /// so that only subscribers that do not read lose any.
    fn load(handle: &BusHandle, watcher: &mut BusSubscription, count: usize) {
        for n in 0..count {
            handle.fire_fields(
                "load/n",
                vec![("n", Value::from(n)), ("pad", Value::Binary(vec![0; 160]))],
            );
            if n % 8 == 0 {
                while watcher.try_next_body().is_some() {}
            }
        }
        while watcher.try_next_body().is_some() {}
    }

    #[tokio::test(start_paused = true)]
    async fn slow_reports_go_out_at_once_then_at_most_once_per_interval() {
        let handle = BusHandle::new(
            DEFAULT_SUBSCRIBER_BUFFER,
            SlowPolicy::DropOldest,
            DEFAULT_SLOW_WAIT,
        );
        let mut watcher = handle.subscribe();
        let mut report = SlowReport::new(&"stalled", &handle);
        report.lost_so_far(0);
        assert_eq!(reports(&mut watcher), [], "no loss, no report");
        report.lost_so_far(3);
        assert_eq!(reports(&mut watcher), [(3, 3, false)], "the first at once");
        tokio::time::advance(REPORT_EVERY - MS).await;
        report.lost_so_far(5);
        assert_eq!(reports(&mut watcher), [], "not before the interval");
        tokio::time::advance(MS).await;
        report.lost_so_far(5);
        assert_eq!(reports(&mut watcher), [(2, 5, false)], "at the interval");
        tokio::time::advance(REPORT_EVERY * 10).await;
        report.lost_so_far(5);
        assert_eq!(reports(&mut watcher), [], "nothing new, nothing said");
        report.lost_so_far(6);
        assert_eq!(
            reports(&mut watcher),
            [(1, 6, false)],
            "after a quiet spell"
        );
        report.lost_so_far(7);
        report.flush();
        assert_eq!(
            reports(&mut watcher),
            [(1, 7, false)],
            "a flush does not wait"
        );
        report.lost_so_far(9);
        report.disconnected(9);
        assert_eq!(reports(&mut watcher), [(2, 9, true)], "nor a disconnect");
        assert_eq!(handle.lost(), 9);
    }

    /// A subscriber that stops reading leaves its writer inside a write: the writer's ticker
    /// reports the losses meanwhile, at its first check after them and then once per
    /// interval; and the reports themselves cost the stalled subscriber nothing, so they stop
    /// with the load (they once evicted an event each, and so reported themselves forever).
    #[tokio::test(start_paused = true)]
    async fn a_stalled_subscriber_is_reported_while_its_writer_waits_until_the_load_stops() {
        let Stalled {
            handle,
            mut watcher,
            stalled,
            outbox,
            start,
            writer,
        } = stalled(SlowPolicy::DropOldest);
        tokio::task::yield_now().await;
        assert_eq!(outbox.health(), (0, false), "the writer holds a batch");
        load(&handle, &mut watcher, 200);
        let (first_lost, _) = outbox.health();
        assert!(first_lost > 0);
        assert_eq!(
            next_report(&mut watcher).await,
            ((first_lost, first_lost, false), start + CHECK_EVERY),
            "reported at the writer's next check"
        );
        load(&handle, &mut watcher, 200);
        let (total, _) = outbox.health();
        assert!(total > first_lost);
        assert_eq!(
            next_report(&mut watcher).await,
            (
                (total - first_lost, total, false),
                start + CHECK_EVERY + REPORT_EVERY
            ),
            "reported again one interval later, not before"
        );
        assert!(
            tokio::time::timeout(REPORT_EVERY * 30, next_report(&mut watcher))
                .await
                .is_err(),
            "the reports died down with the load"
        );
        assert_eq!((outbox.health(), handle.lost()), ((total, false), total));

        // Once it reads again, the subscriber is told what it lost, and has everything else.
        let mut stalled = FramedRead::new(stalled, FrameCodec::new(1 << 20));
        let mut received = Vec::new();
        while received.len() < 440 - total as usize {
            let frame = stalled.next().await.expect("open").expect("a frame");
            let event = wire::decode_body(&frame.expect("a frame").body()).expect("an event");
            if event.tag == LOST_TAG {
                assert_eq!(event.get("total").and_then(Value::as_u64), Some(total));
            } else {
                received.push(event.get("n").and_then(Value::as_u64).expect("n"));
            }
        }
        assert!(
            received.is_sorted(),
            "in order, the oldest dropped: {received:?}"
        );
        drop(stalled);
        handle.shared.closed.cancel();
        writer.await.unwrap();
    }

    /// When a sender waiting in [`BusHandle::caught_up`] goes on.
    fn resumed(handle: &BusHandle) -> tokio::task::JoinHandle<Instant> {
        let handle = handle.clone();
        tokio::spawn(async move {
            handle.caught_up().await;
            Instant::now()
        })
    }

    /// Senders wait for a subscriber over half its budget until it has taken enough; for one
    /// that takes nothing, a fifth of `slow_wait`, and not again until it has taken everything.
    #[tokio::test(start_paused = true)]
    async fn senders_wait_for_a_subscriber_to_catch_up_but_not_for_one_that_stopped_reading() {
        let wait = 250 * MS;
        let handle = BusHandle::new(16 * 1024, SlowPolicy::DropOldest, wait);
        let reader = handle.register(None);
        let stalled = handle.register(None);
        let burst = |handle: &BusHandle| {
            for n in 0..50 {
                handle.fire_fields("load/n", vec![("pad", Value::Binary(vec![n; 160]))]);
            }
        };
        let start = Instant::now();
        burst(&handle);
        let sender = resumed(&handle);
        tokio::time::sleep(10 * MS).await;
        assert!(!sender.is_finished(), "both subscribers are behind");
        assert_eq!(reader.take_now().chunks.len(), 50);
        assert_eq!(
            sender.await.unwrap(),
            start + wait / 5,
            "the reader caught up; the stalled one, taking nothing, was given up on"
        );

        burst(&handle);
        let sender = resumed(&handle);
        tokio::time::sleep(10 * MS).await;
        assert!(!sender.is_finished(), "the reader is behind again");
        reader.take_now();
        assert_eq!(
            sender.await.unwrap(),
            start + wait / 5 + 10 * MS,
            "no waiting for the one given up on"
        );
        assert!(stalled.health().0 > 0, "it lost its oldest events instead");

        while !stalled.take_now().chunks.is_empty() {}
        reader.take_now();
        burst(&handle);
        let sender = resumed(&handle);
        tokio::time::sleep(10 * MS).await;
        reader.take_now();
        assert!(
            !sender.is_finished(),
            "once it took everything, it is waited for again"
        );
        handle.unregister(&stalled);
        assert_eq!(
            sender.await.unwrap(),
            start + wait / 5 + 20 * MS,
            "until it left"
        );
    }

    /// A subscriber that keeps taking, but too little for the senders to go on, holds them back
    /// no longer than `slow_wait`.
    #[tokio::test(start_paused = true)]
    async fn senders_wait_no_longer_than_the_wait_for_a_subscriber_that_takes_too_little() {
        let wait = 250 * MS;
        let handle = BusHandle::new(4 << 20, SlowPolicy::DropOldest, wait);
        let slow = handle.register(None);
        // 2.5 MiB: over half the budget; each take is a 256 KiB batch.
        handle.publish(&vec![Chunk::one(Bytes::from(vec![0; 256 * 1024])); 10]);
        let start = Instant::now();
        let sender = resumed(&handle);
        for _ in 0..5 {
            tokio::time::sleep(45 * MS).await;
            assert!(!sender.is_finished());
            assert_eq!(slow.take_now().chunks.len(), 1);
        }
        assert_eq!(sender.await.unwrap(), start + wait);
    }

    #[tokio::test(start_paused = true)]
    async fn the_disconnect_policy_closes_a_stalled_subscriber_at_the_next_check() {
        let Stalled {
            handle,
            mut watcher,
            mut stalled,
            outbox,
            start,
            writer,
        } = stalled(SlowPolicy::Disconnect);
        tokio::task::yield_now().await;
        load(&handle, &mut watcher, 200);
        assert_eq!(outbox.health(), (0, true));
        assert_eq!(
            next_report(&mut watcher).await,
            ((0, 0, true), start + CHECK_EVERY)
        );
        writer.await.unwrap();
        let mut rest = Vec::new();
        stalled.read_to_end(&mut rest).await.unwrap();
        assert!(rest.len() <= 4096, "closed after what it had taken");
    }
}
