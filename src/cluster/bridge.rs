//! The bridge between a master's bus and the cluster's stream: every event of this master's bus
//! goes into the stream, numbered, and every other master's event comes out of it onto this bus,
//! in the order its master fired it and once.
//!
//! Going out, publishes are pipelined and each one is retried, under the same message id, until
//! the stream acknowledges it, so a NATS server that dies loses nothing and the stream drops the
//! copies. Coming in, an ordered consumer reads the stream from where this master started (it is
//! recreated past the last event read when its server dies), and [`Origins`] restores each
//! master's order and drops what was fired already.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use async_nats::HeaderMap;
use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use async_nats::jetstream::context::{PublishAckFuture, PublishError, PublishErrorKind};
use async_nats::jetstream::message::PublishMessage;
use async_nats::jetstream::{self, stream};
use bytes::Bytes;
use futures_util::StreamExt;
use futures_util::stream::FuturesUnordered;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Cluster;
use super::order::{Numbered, Origins};
use crate::bus::BusSubscription;
use crate::event::subject::{LONG_TAG_TOKEN, MAX_TAG_TOKENS, header_tag, tag_tokens};
use crate::proto::tags;
use crate::wire;

/// Publishes awaiting the stream's acknowledgement, at most.
const IN_FLIGHT: usize = 1024;

/// The headers a master sets on what it publishes: its id, its run (a random number drawn at
/// start, so that a restarted master counts afresh), the event's number in that run, the
/// number up to which the stream had stored every event of the run when it was sent (see
/// [`Origins`]) and the tag, readable by NATS tools.
const ORIGIN: &str = "Halite-Origin";
const RUN: &str = "Halite-Run";
const SEQ: &str = "Halite-Seq";
const STORED: &str = "Halite-Stored";
const TAG: &str = "Halite-Tag";

/// How often gaps are checked for having waited too long.
const EXPIRE_EVERY: Duration = Duration::from_secs(1);

/// Shares a master's bus with the other masters of its cluster.
#[derive(Debug)]
pub struct Bridge {
    cluster: Cluster,
    /// Where the other masters' job returns go besides the bus: this master's job cache.
    returns: Option<mpsc::Sender<Bytes>>,
}

/// One event on its way into the stream.
struct Outgoing {
    seq: u64,
    subject: String,
    headers: HeaderMap,
    body: Bytes,
    id: String,
}

/// An event being stored: its number once the stream has it.
type Stored = Pin<Box<dyn Future<Output = u64> + Send>>;

impl Bridge {
    /// A bridge for the master of `cluster`.
    pub fn new(cluster: Cluster) -> Self {
        Self {
            cluster,
            returns: None,
        }
    }

    /// Hands the job returns other masters fire to `returns` as well, as their bodies; when it
    /// is full they are on the bus only.
    pub fn with_returns(self, returns: mpsc::Sender<Bytes>) -> Self {
        Self {
            returns: Some(returns),
            ..self
        }
    }

    /// Shares the bus `events` subscribes to (subscribed before the bus took its first event)
    /// until the bus closes, having published everything it held; what other masters fire is
    /// fired on it until `stop`.
    pub async fn run(self, events: BusSubscription, stop: CancellationToken) {
        let others = events.publisher_past();
        let js = &self.cluster.js;
        let connections = self.cluster.connections.clone();
        tokio::join!(
            self.publish(js, events),
            self.fire_others(js, others, connections, stop)
        );
    }

    /// Publishes every event of this master's bus, in order, until the bus closes.
    async fn publish(&self, js: &jetstream::Context, mut events: BusSubscription) {
        let mut stored = FuturesUnordered::<Stored>::new();
        let mut unacked = std::collections::BTreeSet::new();
        let failing = Arc::new(AtomicBool::new(false));
        let mut seq = 0u64;
        let mut open = true;
        while open || !stored.is_empty() {
            let (storing, room) = (!stored.is_empty(), stored.len() < IN_FLIGHT);
            tokio::select! {
                Some(seq) = stored.next(), if storing => {
                    unacked.remove(&seq);
                }
                body = events.next_body(), if open && room => match body {
                    None => open = false,
                    Some(body) => {
                        seq += 1;
                        let mark = unacked.first().map_or(seq - 1, |first| first - 1);
                        unacked.insert(seq);
                        let out = self.outgoing(seq, mark, body);
                        let storing = send(js, out, failing.clone()).await;
                        stored.push(storing);
                    }
                },
            }
        }
    }

    fn outgoing(&self, seq: u64, stored: u64, body: Bytes) -> Outgoing {
        let tag = wire::body_tag(&body).unwrap_or_default();
        let tokens = tag_tokens(tag);
        let mut headers = HeaderMap::new();
        headers.insert(ORIGIN, self.cluster.master.as_str());
        headers.insert(RUN, self.cluster.run.as_str());
        headers.insert(SEQ, seq.to_string().as_str());
        headers.insert(STORED, stored.to_string().as_str());
        // NATS limits a message's headers (64 KiB): a longer tag is in the body alone.
        let shown = header_tag(tag);
        if shown.len() <= MAX_TAG_TOKENS {
            headers.insert(TAG, shown.as_ref());
        }
        Outgoing {
            seq,
            subject: self
                .cluster
                .settings
                .subject(tokens.as_deref().unwrap_or(LONG_TAG_TOKEN)),
            headers,
            body,
            id: format!("{}/{seq}", self.cluster.origin()),
        }
    }

    /// Fires every other master's event on this master's bus, past the bridge's own
    /// subscription, until `stop`.
    async fn fire_others(
        &self,
        js: &jetstream::Context,
        bus: crate::bus::PublisherPast,
        mut connections: tokio::sync::watch::Receiver<u64>,
        stop: CancellationToken,
    ) {
        let Some(stream) = stop.run_until_cancelled(self.open_stream(js)).await else {
            return;
        };
        let own = self.cluster.origin();
        let mut origins = Origins::default();
        let mut due = Vec::new();
        let mut expire = tokio::time::interval(EXPIRE_EVERY);
        let (mut reported_skipped, mut reported_duplicates) = (0, 0);
        let mut returns_lost = false;
        let mut reading = false;
        // From when this master began, however long the stream took to open (its clock against
        // the servers' stamps): what other masters fired before it joined is not its bus's.
        let mut start = match async_nats::datetime::from_nanos(self.cluster.began.as_nanosecond()) {
            Ok(start_time) => DeliverPolicy::ByStartTime { start_time },
            Err(_) => DeliverPolicy::ByStartSequence {
                start_sequence: stream.cached_info().state.last_sequence + 1,
            },
        };
        loop {
            connections.borrow_and_update();
            let Some(mut messages) = stop.run_until_cancelled(self.consume(&stream, start)).await
            else {
                return;
            };
            if !reading {
                reading = true;
                tracing::info!("the other masters' events reach this master's bus");
            }
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    // The consumer may have died with the server: recreated past the last
                    // event read, it loses nothing and repeats nothing.
                    Ok(()) = connections.changed() => break,
                    _ = expire.tick() => {
                        origins.expire(tokio::time::Instant::now(), &mut due);
                        if origins.duplicates > reported_duplicates {
                            tracing::debug!(
                                "dropped {} events of other masters already fired",
                                origins.duplicates - reported_duplicates
                            );
                            reported_duplicates = origins.duplicates;
                        }
                        if origins.skipped > reported_skipped {
                            tracing::warn!(
                                "{} events of other masters never reached this one (a master died with events unsent, or the stream's limits dropped them); went on without them",
                                origins.skipped - reported_skipped
                            );
                            reported_skipped = origins.skipped;
                        }
                    }
                    message = messages.next() => match message {
                        Some(Ok(message)) => {
                            if let Ok(info) = message.info() {
                                start = DeliverPolicy::ByStartSequence {
                                    start_sequence: info.stream_sequence + 1,
                                };
                            }
                            self.take(message, &own, &mut origins, &mut due);
                        }
                        Some(Err(err)) => {
                            tracing::debug!("reading the cluster's stream: {err}");
                        }
                        // Recreated past the last event read.
                        None => break,
                    },
                }
                for body in due.drain(..) {
                    bus.publish(&body);
                    self.hand_return(body, &mut returns_lost);
                }
            }
        }
    }

    /// Hands `body` to [`Bridge::with_returns`]'s channel if it is a job return.
    fn hand_return(&self, body: Bytes, lost: &mut bool) {
        let Some(returns) = &self.returns else {
            return;
        };
        let is_return =
            wire::body_tag(&body).is_ok_and(|tag| tags::parse_job_return(tag).is_some());
        if !is_return {
            return;
        }
        match returns.try_send(body) {
            Ok(()) => *lost = false,
            Err(_) if !std::mem::replace(lost, true) => tracing::warn!(
                "the job cache falls behind the other masters' returns; those it misses are on the bus only"
            ),
            Err(_) => {}
        }
    }

    /// Takes one event of the stream: another master's, in its order; one published by
    /// something else, as it is; this master's own, not at all.
    fn take(
        &self,
        message: jetstream::Message,
        own: &str,
        origins: &mut Origins,
        due: &mut Vec<Bytes>,
    ) {
        let header = |name: &str| {
            message
                .headers
                .as_ref()
                .and_then(|headers| headers.get(name))
                .map(|value| value.as_str().to_owned())
        };
        let body = message.payload.clone();
        if !body.is_empty()
            && let Err(err) = wire::validate_body(&body)
        {
            tracing::warn!(
                "dropped a message on {} of the cluster's stream: {err}",
                message.subject
            );
            return;
        }
        let (Some(master), Some(run), Some(seq), Some(stored)) =
            (header(ORIGIN), header(RUN), header(SEQ), header(STORED))
        else {
            if !body.is_empty() {
                due.push(body);
            }
            return;
        };
        let origin = format!("{master}/{run}");
        if origin == own {
            return;
        }
        match (seq.parse::<u64>(), stored.parse()) {
            // The last number is left free, so that "after it" is a number too.
            (Ok(seq), Ok(stored)) if stored < seq && seq < u64::MAX => {
                let event = Numbered { seq, stored, body };
                origins.accept(&origin, event, tokio::time::Instant::now(), due);
            }
            _ => tracing::warn!("dropped an event of {master} numbered {seq:?} after {stored:?}"),
        }
    }

    /// The bus's stream, created when missing; retried until NATS has it.
    async fn open_stream(&self, js: &jetstream::Context) -> stream::Stream {
        until_ok(|| self.cluster.settings.open_stream(js)).await
    }

    /// An ordered consumer of the bus's stream from `start`; retried until NATS has it.
    async fn consume(&self, stream: &stream::Stream, start: DeliverPolicy) -> pull::Ordered {
        until_ok(|| async move {
            let consumer = stream
                .create_consumer(self.cluster.settings.consumer(start))
                .await;
            match consumer {
                Ok(consumer) => consumer.messages().await.map_err(|err| err.to_string()),
                Err(err) => Err(err.to_string()),
            }
            .map_err(|err| format!("cannot read the cluster's stream: {err}"))
        })
        .await
    }
}

/// What `attempt` gives once it succeeds, asking again every [`RETRY`]; the first failure is
/// logged, not every one.
pub(super) async fn until_ok<T, E, F>(mut attempt: impl FnMut() -> F) -> T
where
    E: std::fmt::Display,
    F: Future<Output = Result<T, E>>,
{
    let mut warned = false;
    loop {
        match attempt().await {
            Ok(done) => return done,
            Err(err) if !std::mem::replace(&mut warned, true) => {
                tracing::warn!("{err}; retrying")
            }
            Err(_) => {}
        }
        tokio::time::sleep(RETRY).await;
    }
}

/// How long to wait before asking NATS again.
pub(super) const RETRY: Duration = Duration::from_secs(1);

/// Sends one event now, so that events go out in order, and returns what stores it: the
/// acknowledgement awaited, and the send retried with a growing delay (under the same message
/// id, which the stream drops if it stored the first) until the stream acknowledges it. An
/// event too large for NATS is replaced by an empty one under the same number, so the other
/// masters know not to wait for it.
async fn send(js: &jetstream::Context, mut out: Outgoing, failing: Arc<AtomicBool>) -> Stored {
    let js = js.clone();
    let mut ack = out.try_send(&js).await;
    Box::pin(async move {
        let mut attempts = 0u32;
        loop {
            let error = match ack {
                Ok(pending) => match pending.await {
                    Ok(_) => break,
                    Err(err) => err,
                },
                Err(err) => err,
            };
            if refused(&error) {
                if out.body.is_empty() {
                    tracing::warn!(
                        "the cluster's stream refused an event of this master ({error}); the other masters go on without it"
                    );
                    break;
                }
                tracing::warn!(
                    "the cluster's stream refused an event of this master ({error}); the other masters do not get it"
                );
                out.body = Bytes::new();
                ack = out.try_send(&js).await;
                continue;
            }
            if !failing.swap(true, Ordering::Relaxed) {
                tracing::warn!(
                    "the cluster's stream did not store an event of this master ({error}); retrying until it does"
                );
            }
            attempts += 1;
            let backoff = Duration::from_millis(100) * 2u32.pow(attempts.min(5));
            tokio::time::sleep(backoff.min(Duration::from_secs(2))).await;
            ack = out.try_send(&js).await;
        }
        if attempts > 0 && failing.swap(false, Ordering::Relaxed) {
            tracing::info!("the cluster's stream stores this master's events again");
        }
        out.seq
    })
}

/// Whether the stream refused a publish for good (a JetStream error of the 400s: too large,
/// headers too long), as opposed to failing now (a leader election, a lost connection).
fn refused(error: &PublishError) -> bool {
    std::error::Error::source(error)
        .and_then(|source| source.downcast_ref::<jetstream::Error>())
        .is_some_and(|error| (400..500).contains(&error.code()))
}

impl Outgoing {
    /// One send of the event; its acknowledgement, to await.
    async fn try_send(
        &mut self,
        js: &jetstream::Context,
    ) -> Result<PublishAckFuture, PublishError> {
        match js.send_publish(self.subject.clone(), self.message()).await {
            Err(err) if err.kind() == PublishErrorKind::MaxPayloadExceeded => {
                tracing::warn!(
                    "an event of {} bytes is larger than the cluster's NATS servers take ({err}); the other masters do not get it: raise max_payload in nats-server's configuration",
                    self.body.len()
                );
                self.body = Bytes::new();
                js.send_publish(self.subject.clone(), self.message()).await
            }
            sent => sent,
        }
    }

    fn message(&self) -> PublishMessage {
        PublishMessage::build()
            .payload(self.body.clone())
            .headers(self.headers.clone())
            .message_id(&self.id)
    }
}
