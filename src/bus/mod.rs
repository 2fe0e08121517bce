//! The event-bus server a master or minion owns: subscribers connect to the publish socket,
//! senders connect to the pull socket, and every accepted event goes to every subscriber.
//!
//! Each event is framed once and the same bytes are queued for every subscriber in its own
//! [`outbox`](Outbox), bounded in bytes. A subscriber that stops reading never slows the senders
//! or the other subscribers, and never grows the daemon beyond its outbox: when the outbox is
//! full, the [`SlowPolicy`] applies (drop its oldest events, or disconnect it). Drops are counted
//! per subscriber, logged, told to the subscriber itself as a [`LOST_TAG`] event, and announced
//! on the bus as a [`SLOW_SUBSCRIBER_TAG`] event, at most once a second per subscriber.

mod configured;
mod outbox;

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use futures_util::{FutureExt, StreamExt};
use tokio::io::{AsyncReadExt, AsyncWriteExt, BufWriter};
use tokio::sync::{OwnedSemaphorePermit, Semaphore};
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use crate::event::{Event, Value};
use crate::ipc::BusAddress;
use crate::ipc::{Listener, Peer, Stream};
use crate::wire::{self, FrameCodec, Framing};

pub use configured::DaemonError;
use outbox::Outbox;
pub use outbox::SlowPolicy;

/// How many bytes of events may wait for one subscriber before the [`SlowPolicy`] applies.
pub const DEFAULT_SUBSCRIBER_BUFFER: usize = 32 * 1024 * 1024;

/// Connections accepted at once per socket; further clients wait in the listen backlog.
pub const MAX_CONNECTIONS: usize = 4096;

/// Frames published together when a sender's connection already holds several.
const PUBLISH_BATCH: usize = 256;

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
    /// Queues canonical bare frames, in order, for every subscriber.
    fn publish_frames(&self, frames: &[Bytes]) {
        self.shared
            .published
            .fetch_add(frames.len() as u64, Ordering::Relaxed);
        let subscribers = self
            .shared
            .subscribers
            .read()
            .expect("subscriber list lock");
        for outbox in subscribers.iter() {
            outbox.push(frames);
        }
    }

    /// Stamps and publishes an event the daemon itself fires.
    pub fn fire(&self, event: Event) {
        self.publish_frames(&[event_frame(event)]);
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
        self.publish_frames(&[bare_frame(&body)]);
        Ok(())
    }

    /// Stamps and queues an event only for subscribers with room for it: for the bus's reports
    /// about slow subscribers, which must not make anyone lose an event.
    fn offer(&self, event: Event) {
        let frame = event_frame(event);
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

    fn register(&self) -> Arc<Outbox> {
        let outbox = Arc::new(Outbox::new(
            self.shared.subscriber_buffer,
            self.shared.slow_policy,
        ));
        self.shared
            .subscribers
            .write()
            .expect("subscriber list lock")
            .push(outbox.clone());
        outbox
    }

    fn unregister(&self, outbox: &Arc<Outbox>) {
        self.shared
            .subscribers
            .write()
            .expect("subscriber list lock")
            .retain(|o| !Arc::ptr_eq(o, outbox));
    }

    /// A new in-process subscription, seeing events published from now on.
    pub fn subscribe(&self) -> BusSubscription {
        BusSubscription {
            outbox: self.register(),
            handle: self.clone(),
            pending: Default::default(),
        }
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
                    if batch.frames.is_empty() {
                        return None;
                    }
                    batch
                }
            };
            if batch.lost > 0 {
                tracing::warn!(
                    "in-process subscriber fell behind and lost {} events",
                    batch.lost
                );
            }
            self.pending = batch.frames;
        }
    }
}

impl BusSubscription {
    /// The next event body already queued for this subscriber, without waiting.
    pub fn try_next_body(&mut self) -> Option<Bytes> {
        if self.pending.is_empty() {
            self.pending = self.outbox.take_now().frames;
        }
        self.pending
            .pop_front()
            .map(|frame| wire::canonical_body(&frame))
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
        let handle = BusHandle {
            shared: Arc::new(Shared {
                subscribers: RwLock::default(),
                subscriber_buffer: options.subscriber_buffer,
                slow_policy: options.slow_policy,
                published: AtomicU64::default(),
                lost: AtomicU64::default(),
                closed: CancellationToken::new(),
            }),
        };
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
            let outbox = handle.register();
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

/// Reads frames from one sender until it disconnects, sends garbage, or the bus shuts down.
/// Frames already waiting on the connection are published together.
async fn serve_sender(
    stream: Stream,
    peer: &Peer,
    options: &BusOptions,
    handle: &BusHandle,
    shutdown: CancellationToken,
) {
    let mut frames = FramedRead::new(stream, FrameCodec::new(options.max_frame));
    let mut batch: Vec<Bytes> = Vec::with_capacity(PUBLISH_BATCH);
    loop {
        let first = tokio::select! {
            frame = frames.next() => frame,
            () = shutdown.cancelled() => {
                // Frames already read off the socket were accepted: publish them, then stop.
                while let Some(Some(Ok(Ok(frame)))) = frames.next().now_or_never() {
                    accept_frame(frame, peer, options, &mut batch);
                    if batch.len() >= PUBLISH_BATCH {
                        break;
                    }
                }
                handle.publish_frames(&batch);
                return;
            }
        };
        let mut next = first;
        let ended = loop {
            match next {
                None => break true,
                Some(Ok(Ok(frame))) => accept_frame(frame, peer, options, &mut batch),
                Some(Ok(Err(ignored))) => {
                    tracing::warn!("ignored a frame from {peer} on the pull socket: {ignored}");
                }
                Some(Err(err)) => {
                    tracing::error!("closed the pull connection from {peer}: {err}");
                    break true;
                }
            }
            if batch.len() >= PUBLISH_BATCH {
                break false;
            }
            match frames.next().now_or_never() {
                Some(frame) => next = frame,
                None => break false,
            }
        };
        if !batch.is_empty() {
            handle.publish_frames(&batch);
            batch.clear();
        }
        if ended {
            return;
        }
    }
}

/// Queues a sender's frame for publishing, unless a master must drop it as Salt's does.
fn accept_frame(frame: wire::Frame, peer: &Peer, options: &BusOptions, batch: &mut Vec<Bytes>) {
    if options.node == Node::Master
        && let Err(err) = wire::validate_body(&frame.body())
    {
        tracing::warn!("dropped an event from {peer} on the pull socket: {err}");
        return;
    }
    batch.push(frame.into_canonical());
}

/// Writes a subscriber's outbox to it until it disconnects or the bus has drained, applying
/// and reporting the slow-subscriber policy.
async fn serve_subscriber(
    stream: Stream,
    peer: &Peer,
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
    loop {
        let (batch, last) = tokio::select! {
            biased;
            batch = outbox.take() => (batch, false),
            read = reader.read(&mut discard) => match read {
                Ok(0) | Err(_) => break,
                Ok(_) => continue,
            },
            () = drained.cancelled() => (outbox.take_now(), true),
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
    for frame in &batch.frames {
        write_frame(writer, frame, framing).await?;
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
    peer: &'a Peer,
    handle: &'a BusHandle,
    /// Losses counted so far, and how many of them were reported.
    total: u64,
    reported: u64,
    last: Option<Instant>,
}

impl<'a> SlowReport<'a> {
    fn new(peer: &'a Peer, handle: &'a BusHandle) -> Self {
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
