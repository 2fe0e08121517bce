//! A subscriber's outbox: the frames waiting to be written to it, bounded in bytes, and what
//! happens when it is full. Frames are queued in [`Chunk`]s as they arrived together; the
//! oldest chunk goes first when room is needed.
//!
//! Before it is full, an outbox over half its budget makes the bus's senders wait (see
//! [`Pressure`]) until its subscriber has taken [`EASE_BY`] (or a quarter of the budget, if
//! less): a subscriber that reads, only slower than a burst comes in, then gets every event.
//! One that has not taken that much within the bus's wait, or took nothing for a fifth of it
//! (it stopped reading: a client that connects and never reads costs the senders no more), is
//! given up on until it has taken everything queued, and the [`SlowPolicy`] alone applies to it.

use std::collections::VecDeque;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use bytes::Bytes;
use tokio::sync::Notify;
// tokio's clock, which the bus's tests pause.
use tokio::time::Instant;

use crate::wire::Chunk;

/// What the bus does with a subscriber whose outbox is full.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SlowPolicy {
    /// Drop the oldest queued events to make room, count them, and tell the subscriber.
    DropOldest,
    /// Close the subscriber's connection.
    Disconnect,
}

impl SlowPolicy {
    /// The name used in configuration (`slow_subscriber_policy`) and reports.
    pub fn name(self) -> &'static str {
        match self {
            SlowPolicy::DropOldest => "drop_oldest",
            SlowPolicy::Disconnect => "disconnect",
        }
    }
}

/// The most a writer takes at once: a writer stuck on a subscriber that does not read holds its
/// last batch, so batches are kept small next to the budget.
const TAKE_BYTES: usize = 256 * 1024;

/// Bookkeeping cost charged per queued chunk on top of its bytes, so that a flood of tiny
/// events is bounded by real memory, not just payload.
const CHUNK_OVERHEAD: usize = 64;

/// How much a subscriber that holds the senders back must take for them to go on.
const EASE_BY: usize = 1024 * 1024;

/// What a queued chunk counts against the budget.
fn cost(chunk: &Chunk) -> usize {
    chunk.bytes.len() + CHUNK_OVERHEAD
}

/// The outboxes of one bus that are filling faster than they drain, for its senders to wait on.
#[derive(Debug)]
pub(crate) struct Pressure {
    /// How long senders wait for one outbox to drain before it is given up on; zero: never.
    wait: Duration,
    /// Outboxes over half full and not given up on.
    pressing: AtomicUsize,
    /// Woken when the last of them has eased (its subscriber took enough) or was given up on.
    eased: Notify,
}

impl Pressure {
    pub fn new(wait: Duration) -> Self {
        Self {
            wait,
            pressing: AtomicUsize::new(0),
            eased: Notify::new(),
        }
    }

    /// Waits until no outbox of the bus's `subscribers` presses, giving up on those that press
    /// longer than the wait.
    pub async fn eased(&self, subscribers: &RwLock<Vec<Arc<Outbox>>>) {
        loop {
            // The usual case, without registering with the notifier.
            if self.pressing.load(Ordering::SeqCst) == 0 {
                return;
            }
            let eased = self.eased.notified();
            tokio::pin!(eased);
            eased.as_mut().enable();
            if self.pressing.load(Ordering::SeqCst) == 0 {
                return;
            }
            let now = Instant::now();
            let deadline = subscribers
                .read()
                .expect("subscriber list lock")
                .iter()
                .filter_map(|outbox| outbox.pressing_until(now))
                .min();
            match deadline {
                Some(deadline) => {
                    tokio::select! {
                        () = eased => {}
                        () = tokio::time::sleep_until(deadline) => {}
                    }
                }
                // One is about to ease: it left the bus, or was given up on by another sender.
                None => tokio::task::yield_now().await,
            }
        }
    }

    fn press(&self) {
        self.pressing.fetch_add(1, Ordering::SeqCst);
    }

    fn ease(&self) {
        if self.pressing.fetch_sub(1, Ordering::SeqCst) == 1 {
            self.eased.notify_waiters();
        }
    }
}

/// Frames for one subscriber.
#[derive(Debug)]
pub(crate) struct Outbox {
    state: Mutex<State>,
    ready: Notify,
    budget: usize,
    policy: SlowPolicy,
    pressure: Arc<Pressure>,
}

#[derive(Default)]
struct State {
    /// Which events this subscriber wants, by tag; all when `None`.
    filter: Option<TagFilter>,
    chunks: VecDeque<Chunk>,
    charged: usize,
    lost_unreported: u64,
    lost_total: u64,
    overflowed: bool,
    /// Since when senders wait for this outbox to drain.
    pressing_since: Option<Instant>,
    /// When the subscriber last took a batch, and whether that batch was at most [`EASE_BY`]:
    /// writing one larger event may take longer than a fifth of the wait.
    took: Option<(Instant, bool)>,
    /// It did not drain in time: senders do not wait for it until it has taken everything.
    given_up: bool,
    /// The subscriber left: its outbox no longer presses.
    closed: bool,
}

/// Which events an in-process subscriber wants, told by tag when they are published, so that
/// the bus neither queues nor wakes it for the others.
#[derive(Clone)]
pub enum TagFilter {
    /// None for now.
    Nothing,
    /// Those with exactly this tag: told from the body's first bytes.
    Exact(String),
    /// Those whose tag the function accepts.
    Matching(Arc<dyn Fn(&str) -> bool + Send + Sync>),
}

impl TagFilter {
    /// The frames of `published` this filter takes, each its own chunk: copied, so that a
    /// subscriber's budget counts all the memory its events hold.
    fn take(&self, published: &Published<'_>) -> Vec<Chunk> {
        match self {
            TagFilter::Nothing => Vec::new(),
            TagFilter::Exact(tag) => published
                .chunks
                .iter()
                .flat_map(|chunk| {
                    chunk
                        .frames_with_tag(tag)
                        .map(|frame| Chunk::one(Bytes::copy_from_slice(&chunk.bytes[frame])))
                })
                .collect(),
            TagFilter::Matching(accepts) => published
                .tagged()
                .iter()
                .filter(|(tag, ..)| tag.is_some_and(|tag| accepts(tag)))
                .map(|(_, chunk, frame)| {
                    Chunk::one(Bytes::copy_from_slice(&chunk.bytes[frame.clone()]))
                })
                .collect(),
        }
    }
}

impl std::fmt::Debug for State {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("State")
            .field("filtered", &self.filter.is_some())
            .field("chunks", &self.chunks.len())
            .field("charged", &self.charged)
            .field("lost_total", &self.lost_total)
            .finish_non_exhaustive()
    }
}

/// What one publish hands every outbox: the chunks, and their frames' tags, read once for all
/// the filtered subscribers when the first of them asks.
pub(crate) struct Published<'a> {
    chunks: &'a [Chunk],
    tagged: std::cell::OnceCell<Vec<Tagged<'a>>>,
}

/// One frame of a publish: its tag, its chunk and where it lies in the chunk.
type Tagged<'a> = (Option<&'a str>, &'a Chunk, std::ops::Range<usize>);

impl<'a> Published<'a> {
    pub fn new(chunks: &'a [Chunk]) -> Self {
        Self {
            chunks,
            tagged: std::cell::OnceCell::new(),
        }
    }

    fn tagged(&self) -> &[Tagged<'a>] {
        self.tagged.get_or_init(|| {
            self.chunks
                .iter()
                .flat_map(|chunk| {
                    chunk
                        .tagged_frames()
                        .map(move |(tag, frame)| (tag, chunk, frame))
                })
                .collect()
        })
    }
}

/// What [`Outbox::take`] hands the writer.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    /// Frames to write, oldest first.
    pub chunks: VecDeque<Chunk>,
    /// Events dropped since the last batch.
    pub lost: u64,
    /// Events dropped since the subscriber connected.
    pub lost_total: u64,
    /// The outbox overflowed under [`SlowPolicy::Disconnect`]: close the connection.
    pub disconnect: bool,
}

impl Outbox {
    /// An empty outbox holding at most `budget` bytes, of the events `filter` takes (all
    /// without one), that makes the senders of `pressure` wait when over half full.
    pub fn new(
        budget: usize,
        policy: SlowPolicy,
        filter: Option<TagFilter>,
        pressure: Arc<Pressure>,
    ) -> Self {
        Self {
            state: Mutex::new(State {
                filter,
                ..State::default()
            }),
            ready: Notify::new(),
            budget,
            policy,
            pressure,
        }
    }

    /// When senders stop waiting for this outbox if it is still pressing; `None` if it is not
    /// (any more: it is given up on when that time is past).
    fn pressing_until(&self, now: Instant) -> Option<Instant> {
        let mut state = self.state.lock().expect("outbox lock");
        let since = state.pressing_since?;
        let mut deadline = since + self.pressure.wait;
        match state.took {
            Some((took, true)) => deadline = deadline.min(took.max(since) + self.pressure.wait / 5),
            Some((_, false)) => {}
            None => deadline = deadline.min(since + self.pressure.wait / 5),
        }
        if now < deadline {
            return Some(deadline);
        }
        self.ease(&mut state);
        state.given_up = true;
        None
    }

    /// The subscriber left: senders no longer wait for it.
    pub fn close(&self) {
        let mut state = self.state.lock().expect("outbox lock");
        state.closed = true;
        self.ease(&mut state);
    }

    fn ease(&self, state: &mut State) {
        if state.pressing_since.take().is_some() {
            self.pressure.ease();
        }
    }

    /// Only the events whose tag `filter` accepts are queued from now on.
    pub fn set_filter(&self, filter: TagFilter) {
        self.state.lock().expect("outbox lock").filter = Some(filter);
    }

    /// Queues chunks, oldest first, and wakes the writer (unless its filter took none of them).
    pub fn push(&self, published: &Published<'_>) {
        {
            let mut state = self.state.lock().expect("outbox lock");
            if state.overflowed {
                return;
            }
            let wanted: Vec<Chunk>;
            let chunks = match &state.filter {
                None => published.chunks,
                Some(filter) => {
                    wanted = filter.take(published);
                    if wanted.is_empty() {
                        return;
                    }
                    &wanted
                }
            };
            for chunk in chunks {
                let cost = cost(chunk);
                while state.charged + cost > self.budget && !state.chunks.is_empty() {
                    if self.policy == SlowPolicy::Disconnect {
                        state.overflowed = true;
                        state.chunks.clear();
                        state.charged = 0;
                        self.ease(&mut state);
                        break;
                    }
                    let dropped = state.chunks.pop_front().expect("not empty");
                    state.charged -= self::cost(&dropped);
                    state.lost_unreported += u64::from(dropped.events);
                    state.lost_total += u64::from(dropped.events);
                }
                if state.overflowed {
                    break;
                }
                // A single chunk larger than the whole budget still goes through, alone.
                state.charged += cost;
                state.chunks.push_back(chunk.clone());
            }
            if state.charged > self.budget / 2
                && state.pressing_since.is_none()
                && !(state.given_up || state.closed || state.overflowed)
                && !self.pressure.wait.is_zero()
            {
                state.pressing_since = Some(Instant::now());
                self.pressure.press();
            }
        }
        self.ready.notify_one();
    }

    /// Queues a frame only if it fits without dropping anything, and wakes the writer. The bus's
    /// own reports go this way: a report that evicted an event would itself be a loss to report.
    pub fn offer(&self, chunk: &Chunk) {
        {
            let mut state = self.state.lock().expect("outbox lock");
            let wanted = match &state.filter {
                None => Some(chunk.clone()),
                Some(filter) => filter
                    .take(&Published::new(std::slice::from_ref(chunk)))
                    .pop(),
            };
            let Some(chunk) = wanted else {
                return;
            };
            let cost = cost(&chunk);
            if state.overflowed || state.charged + cost > self.budget {
                return;
            }
            state.charged += cost;
            state.chunks.push_back(chunk);
        }
        self.ready.notify_one();
    }

    /// Waits for frames (or a reason to disconnect) and takes all of them.
    pub async fn take(&self) -> Batch {
        loop {
            let notified = self.ready.notified();
            {
                let mut state = self.state.lock().expect("outbox lock");
                if !state.chunks.is_empty() || state.lost_unreported > 0 || state.overflowed {
                    return self.drain(&mut state);
                }
            }
            notified.await;
        }
    }

    /// Events dropped since the subscriber connected, and whether the outbox overflowed under
    /// [`SlowPolicy::Disconnect`]; for a writer stuck on a subscriber that does not read.
    pub fn health(&self) -> (u64, bool) {
        let state = self.state.lock().expect("outbox lock");
        (state.lost_total, state.overflowed)
    }

    /// Takes whatever is queued now, without waiting.
    pub fn take_now(&self) -> Batch {
        self.drain(&mut self.state.lock().expect("outbox lock"))
    }

    fn drain(&self, state: &mut State) -> Batch {
        let chunks = if state.charged <= TAKE_BYTES {
            // The usual case for a subscriber that keeps up: everything, without copying.
            state.charged = 0;
            std::mem::take(&mut state.chunks)
        } else {
            let mut chunks = VecDeque::new();
            let mut taken = 0;
            while taken < TAKE_BYTES {
                let Some(chunk) = state.chunks.pop_front() else {
                    break;
                };
                let cost = cost(&chunk);
                state.charged -= cost;
                taken += cost;
                chunks.push_back(chunk);
            }
            chunks
        };
        if !chunks.is_empty() {
            let bytes: usize = chunks.iter().map(|chunk| chunk.bytes.len()).sum();
            state.took = Some((Instant::now(), bytes <= EASE_BY));
        }
        if state.charged <= self.budget / 2 - EASE_BY.min(self.budget / 4) {
            self.ease(state);
        }
        if state.chunks.is_empty() {
            state.given_up = false;
        }
        Batch {
            chunks,
            lost: std::mem::take(&mut state.lost_unreported),
            lost_total: state.lost_total,
            disconnect: state.overflowed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn unpressed() -> Arc<Pressure> {
        Arc::new(Pressure::new(Duration::ZERO))
    }

    fn frames(n: usize, size: usize) -> Vec<Chunk> {
        (0..n).map(|i| one(vec![i as u8; size])).collect()
    }

    fn one(bytes: Vec<u8>) -> Chunk {
        Chunk::one(Bytes::from(bytes))
    }

    #[test]
    fn drop_oldest_keeps_the_newest_within_budget_and_counts_the_rest() {
        let outbox = Outbox::new(
            10 * (100 + CHUNK_OVERHEAD),
            SlowPolicy::DropOldest,
            None,
            unpressed(),
        );
        const { assert!(10 * (100 + CHUNK_OVERHEAD) < TAKE_BYTES) };
        outbox.push(&Published::new(&frames(25, 100)));
        let batch = outbox.take_now();
        assert_eq!(batch.chunks.len(), 10);
        assert_eq!(batch.chunks[0].bytes[0], 15, "the oldest were dropped");
        assert_eq!((batch.lost, batch.lost_total), (15, 15));
        outbox.push(&Published::new(&frames(1, 100)));
        let batch = outbox.take_now();
        assert_eq!(
            (batch.chunks.len(), batch.lost, batch.lost_total),
            (1, 0, 15)
        );
    }

    fn event_frames(tags: &[&str]) -> Chunk {
        let mut bytes = Vec::new();
        for tag in tags {
            let mut body = Vec::new();
            crate::wire::encode_body(tag, &crate::event::Value::Nil, &mut body);
            crate::wire::encode_frame(&body, crate::wire::Framing::Bare, &mut bytes);
        }
        Chunk {
            bytes: bytes.into(),
            events: tags.len() as u32,
        }
    }

    #[test]
    fn a_dropped_chunk_counts_every_event_in_it() {
        let chunk = event_frames(&["a", "b", "c"]);
        let outbox = Outbox::new(cost(&chunk) + 10, SlowPolicy::DropOldest, None, unpressed());
        outbox.push(&Published::new(&[chunk.clone(), chunk]));
        let batch = outbox.take_now();
        assert_eq!(
            (batch.chunks.len(), batch.lost, batch.lost_total),
            (1, 3, 3)
        );
    }

    #[test]
    fn a_filtered_outbox_queues_only_the_tags_it_wants() {
        let published = [event_frames(&["x/1", "salt/key", "salt/keys", "x/2"])];
        let tags = |filter: TagFilter| {
            let outbox = Outbox::new(usize::MAX, SlowPolicy::DropOldest, None, unpressed());
            outbox.set_filter(filter);
            outbox.push(&Published::new(&published));
            let batch = outbox.take_now();
            assert!(batch.chunks.iter().all(|chunk| chunk.events == 1));
            batch
                .chunks
                .iter()
                .flat_map(|chunk| {
                    chunk
                        .tagged_frames()
                        .map(|(tag, _)| tag.unwrap().to_owned())
                })
                .collect::<Vec<_>>()
        };
        assert_eq!(tags(TagFilter::Exact("salt/key".into())), ["salt/key"]);
        assert_eq!(
            tags(TagFilter::Matching(Arc::new(
                |tag| tag.starts_with("salt/key")
            ))),
            ["salt/key", "salt/keys"]
        );
        assert!(tags(TagFilter::Nothing).is_empty());
    }

    #[test]
    fn disconnect_policy_empties_the_outbox_and_asks_to_close() {
        let outbox = Outbox::new(
            3 * (100 + CHUNK_OVERHEAD),
            SlowPolicy::Disconnect,
            None,
            unpressed(),
        );
        outbox.push(&Published::new(&frames(5, 100)));
        let batch = outbox.take_now();
        assert!(batch.disconnect);
        assert!(batch.chunks.is_empty());
    }

    #[test]
    fn an_offer_never_evicts() {
        let outbox = Outbox::new(
            2 * (100 + CHUNK_OVERHEAD),
            SlowPolicy::DropOldest,
            None,
            unpressed(),
        );
        outbox.push(&Published::new(&frames(2, 100)));
        outbox.offer(&one(vec![9; 100]));
        let batch = outbox.take_now();
        assert_eq!((batch.chunks.len(), batch.lost), (2, 0));
        assert_ne!(batch.chunks[1].bytes[0], 9);
        outbox.offer(&one(vec![9; 100]));
        assert_eq!(outbox.take_now().chunks.len(), 1);
    }

    #[test]
    fn a_batch_is_capped_and_the_rest_waits() {
        let outbox = Outbox::new(usize::MAX, SlowPolicy::DropOldest, None, unpressed());
        outbox.push(&Published::new(&frames(1000, 1000)));
        let first = outbox.take_now();
        assert!(first.chunks.len() < 1000 && first.chunks.len() * 1064 >= TAKE_BYTES);
        let mut taken = first.chunks.len();
        while taken < 1000 {
            let next = outbox.take_now();
            assert!(!next.chunks.is_empty());
            taken += next.chunks.len();
        }
        assert_eq!(taken, 1000);
    }

    #[test]
    fn a_frame_larger_than_the_budget_still_goes_alone() {
        let outbox = Outbox::new(100, SlowPolicy::DropOldest, None, unpressed());
        outbox.push(&Published::new(&frames(2, 1000)));
        let batch = outbox.take_now();
        assert_eq!((batch.chunks.len(), batch.lost), (1, 1));
    }
}
