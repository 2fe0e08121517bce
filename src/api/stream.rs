//! The master's events for every event stream of the API (`/events`, `/ws`): ONE subscriber to
//! the master's bus per process, however many clients watch.
//!
//! Each event is numbered (an id unique across restarts of the API: `<start>-<seq>`, the
//! process's start in Unix milliseconds and a counter), rendered once as Salt's streams send it,
//! and kept in a replay ring bounded in events (`events_replay_size`), bytes
//! (`events_replay_bytes`) and age (`events_replay_seconds`). The ring is also the fan-out: every client reads it from a
//! [`Cursor`] of its own, so a client that stops reading holds nothing but its place, never
//! slows the bus or the other clients, and costs no memory beyond the ring. A client whose place
//! fell out of the ring (too slow, or resuming from too old an id) is told how many events it
//! lost with a [`LOST_TAG`] event, as the bus tells its own slow subscribers, and goes on from
//! the oldest event kept.

use std::collections::VecDeque;
use std::sync::{Arc, RwLock};
use std::time::{Duration, Instant};

use bytes::Bytes;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::config::bad;
use crate::client::{ListenNotice, Listener};
use crate::config::{self, Config, ConfigError};
use crate::event::{Event, Value, map_get};
use crate::ipc::Endpoint;
use crate::py::json::{self, Format};

/// Events kept for replay by default (`events_replay_size`); also how far a client may fall
/// behind before it loses events.
const REPLAY_SIZE: u64 = 10_000;
/// How long an event is kept for replay by default (`events_replay_seconds`).
const REPLAY_SECONDS: f64 = 300.0;
/// The bytes of the events kept for replay by default (`events_replay_bytes`): 64 MiB.
const REPLAY_BYTES: u64 = 64 << 20;
/// Events handed to a client at once, at most: one write per batch.
const BATCH: usize = 256;
/// The bytes of the events handed to a client at once, at most (a larger event goes alone), so
/// that a batch held for a slow client keeps little of the ring alive once it moved on.
const BATCH_BYTES: usize = 256 << 10;
/// How long to wait before listening again when the bus refuses this user.
const REFUSED_PAUSE: Duration = Duration::from_secs(5);

/// The event a client receives in its own stream after it lost events:
/// `{"lost": <events, or null when unknown>, "total": <lost since it connected>}`. It has no id,
/// so a client resuming later still resumes from the last event it got.
pub(crate) const LOST_TAG: &str = "halite/api/lost";

/// One event as the streams send it.
#[derive(Debug)]
pub(crate) struct Item {
    seq: u64,
    /// The tag, for filters.
    pub tag: Box<str>,
    received: Instant,
    /// `id: …\ntag: …\ndata: …\n\n`, the SSE frame.
    frame: Bytes,
    /// Where `data: ` starts in the frame: the rest is the websocket frame.
    data_at: usize,
}

impl Item {
    /// The event as `/events` sends it.
    pub fn sse(&self) -> &Bytes {
        &self.frame
    }

    /// The event as `/ws` sends it: `data: <json>\n\n`.
    pub fn ws(&self) -> Bytes {
        self.frame.slice(self.data_at..)
    }
}

/// The events of the master's bus, shared by every stream.
#[derive(Debug, Clone)]
pub(crate) struct Events {
    inner: Arc<Inner>,
}

#[derive(Debug)]
struct Inner {
    /// The first part of every id: when this process started, Unix milliseconds.
    run: u64,
    size: usize,
    /// The most bytes of frames kept (the newest event is kept even when larger).
    bytes: usize,
    age: Duration,
    ring: RwLock<Ring>,
    /// The newest event's number (0 before the first).
    newest: watch::Sender<u64>,
    /// Cancelled when the API stops: every stream ends.
    closed: CancellationToken,
    publish: Endpoint,
}

impl Events {
    /// The master's publish socket from `config`; `events_replay_size`, `events_replay_bytes`
    /// and `events_replay_seconds` from the `rest_cherrypy` block.
    pub fn new(config: &Config, block: &Value) -> Result<Self, ConfigError> {
        let size = positive(block, "events_replay_size", REPLAY_SIZE)?;
        let bytes = positive(block, "events_replay_bytes", REPLAY_BYTES)?;
        let age = match option(block, "events_replay_seconds") {
            None => Duration::from_secs(REPLAY_SECONDS as u64),
            Some(value) => config::seconds(value)
                .ok_or_else(|| bad("events_replay_seconds", value, "a number of seconds"))?,
        };
        let run = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0, |since| since.as_millis() as u64);
        Ok(Events {
            inner: Arc::new(Inner {
                run,
                size: usize::try_from(size).unwrap_or(usize::MAX),
                bytes: usize::try_from(bytes).unwrap_or(usize::MAX),
                age,
                ring: RwLock::new(Ring::default()),
                newest: watch::channel(0).0,
                closed: CancellationToken::new(),
                publish: config.bus()?.publish,
            }),
        })
    }

    /// Listens on the master's bus until `shutdown`, reconnecting as needed; then ends every
    /// stream.
    pub async fn run(self, shutdown: CancellationToken) {
        let mut listener =
            Listener::new(self.inner.publish.clone()).on_notice(|notice| match notice {
                ListenNotice::Waiting { endpoint, reason } => {
                    tracing::warn!("waiting for the master's bus at {endpoint}: {reason}")
                }
                ListenNotice::Attached(endpoint) => {
                    tracing::info!("attached to the master's bus at {endpoint}")
                }
                ListenNotice::Lost { endpoint, reason } => {
                    tracing::warn!("lost the master's bus at {endpoint}: {reason}; reconnecting")
                }
            });
        loop {
            let event = tokio::select! {
                _ = shutdown.cancelled() => break,
                event = listener.next_event() => event,
            };
            match event {
                Ok(event) => self.push(&event),
                Err(err) => {
                    tracing::error!("cannot listen to the master's bus: {err}");
                    tokio::select! {
                        _ = shutdown.cancelled() => break,
                        _ = tokio::time::sleep(REFUSED_PAUSE) => {}
                    }
                }
            }
        }
        self.inner.closed.cancel();
    }

    /// Numbers, renders and keeps one event, and wakes the streams.
    fn push(&self, event: &Event) {
        let inner = &self.inner;
        let seq = *inner.newest.borrow() + 1;
        let id = format!("{}-{seq}", inner.run);
        let (frame, data_at) = render(Some(&id), event);
        let item = Arc::new(Item {
            seq,
            tag: event.tag.as_str().into(),
            received: Instant::now(),
            frame,
            data_at,
        });
        {
            let mut ring = inner
                .ring
                .write()
                .unwrap_or_else(|poison| poison.into_inner());
            while ring.items.len() >= inner.size
                || (!ring.items.is_empty() && ring.bytes + item.frame.len() > inner.bytes)
                || ring
                    .items
                    .front()
                    .is_some_and(|oldest| oldest.received.elapsed() > inner.age)
            {
                ring.pop_front();
            }
            ring.push_back(item);
        }
        inner.newest.send_replace(seq);
    }

    /// A place in the stream: after the event `last_event_id` names when it is still kept
    /// (events after it are replayed), at the oldest event kept when it is older or from another
    /// run of the API (the client is told it lost events), or at the next event without one.
    pub fn cursor(&self, last_event_id: Option<&str>) -> Cursor {
        let newest = self.inner.newest.subscribe();
        let now = *newest.borrow();
        let (next, unknown) = match last_event_id.map(str::trim) {
            None | Some("") => (now + 1, false),
            Some(id) => match id.split_once('-') {
                Some((run, seq))
                    if run.parse() == Ok(self.inner.run)
                        && seq.parse::<u64>().is_ok_and(|seq| seq <= now) =>
                {
                    (seq.parse::<u64>().unwrap_or(now) + 1, false)
                }
                // From another run, or not an id of ours: all that is kept, and the gap is
                // of unknown size.
                _ => (1, true),
            },
        };
        Cursor {
            events: self.clone(),
            next,
            unknown,
            newest,
            total: 0,
        }
    }
}

/// The events kept for replay, oldest first, and the bytes of their frames.
#[derive(Debug, Default)]
struct Ring {
    items: VecDeque<Arc<Item>>,
    bytes: usize,
}

impl Ring {
    fn pop_front(&mut self) {
        if let Some(item) = self.items.pop_front() {
            self.bytes -= item.frame.len();
        }
    }

    fn push_back(&mut self, item: Arc<Item>) {
        self.bytes += item.frame.len();
        self.items.push_back(item);
    }
}

/// One client's place in the stream.
#[derive(Debug)]
pub(crate) struct Cursor {
    events: Events,
    /// The number of the next event to hand out.
    next: u64,
    /// Whether the client resumes from an id this run does not know.
    unknown: bool,
    newest: watch::Receiver<u64>,
    /// Events lost since the client connected.
    total: u64,
}

/// What a client gets next: a notice of lost events, if any, then events.
#[derive(Debug)]
pub(crate) struct Batch {
    /// The [`LOST_TAG`] event as an SSE frame, when events were lost before these.
    pub lost: Option<Lost>,
    /// The events, oldest first.
    pub items: Vec<Arc<Item>>,
}

/// A rendered [`LOST_TAG`] event.
#[derive(Debug)]
pub(crate) struct Lost {
    frame: Bytes,
    data_at: usize,
}

impl Lost {
    /// As `/events` sends it (no id line).
    pub fn sse(&self) -> &Bytes {
        &self.frame
    }

    /// As `/ws` sends it.
    pub fn ws(&self) -> Bytes {
        self.frame.slice(self.data_at..)
    }
}

impl Cursor {
    /// The next events, waiting for them; `None` once the API stops. Cancel-safe: the place
    /// moves only when events are returned.
    pub async fn next(&mut self) -> Option<Batch> {
        loop {
            self.newest.borrow_and_update();
            if let Some(batch) = self.take() {
                return Some(batch);
            }
            tokio::select! {
                _ = self.events.inner.closed.cancelled() => return None,
                changed = self.newest.changed() => changed.ok()?,
            }
        }
    }

    /// The events after the place, if any, moving past them.
    fn take(&mut self) -> Option<Batch> {
        let inner = &self.events.inner;
        let ring = inner
            .ring
            .read()
            .unwrap_or_else(|poison| poison.into_inner());
        // Events past their age count as gone even before a newer one pushes them out.
        let kept = ring
            .items
            .partition_point(|item| item.received.elapsed() > inner.age);
        let first = ring
            .items
            .get(kept)
            .map_or(*self.newest.borrow() + 1, |item| item.seq);
        let mut lost = None;
        if self.next < first || self.unknown {
            let count = first.saturating_sub(self.next);
            self.total += count;
            lost = Some((!self.unknown).then_some(count));
            self.unknown = false;
            self.next = self.next.max(first);
        }
        let front = ring.items.front().map_or(first, |item| item.seq);
        let start = usize::try_from(self.next - front).unwrap_or(usize::MAX);
        let mut bytes = 0;
        let items: Vec<Arc<Item>> = ring
            .items
            .iter()
            .skip(start)
            .take(BATCH)
            .take_while(|item| {
                let under = bytes < BATCH_BYTES;
                bytes += item.frame.len();
                under
            })
            .cloned()
            .collect();
        drop(ring);
        if let Some(last) = items.last() {
            self.next = last.seq + 1;
        }
        let lost = lost.map(|count| lost_notice(count, self.total));
        (lost.is_some() || !items.is_empty()).then_some(Batch { lost, items })
    }
}

/// The [`LOST_TAG`] event, stamped as the bus stamps its own.
fn lost_notice(lost: Option<u64>, total: u64) -> Lost {
    let mut event = Event {
        tag: LOST_TAG.to_owned(),
        data: Value::Map(vec![
            (Value::from("lost"), lost.map_or(Value::Nil, Value::from)),
            (Value::from("total"), Value::from(total)),
        ]),
    };
    event.stamp();
    let (frame, data_at) = render(None, &event);
    Lost { frame, data_at }
}

/// Salt's SSE frame for an event, with an `id:` line first when it has one:
/// `id: <id>\ntag: <tag>\ndata: {"data": <data>, "tag": <tag>}\n\n`, the JSON as Python's
/// `json.dumps` writes it. A line break in a tag would end the `tag:` line early and let the
/// rest pass for fields of its own: there it is written `\r`/`\n` (the data has the tag
/// exactly).
fn render(id: Option<&str>, event: &Event) -> (Bytes, usize) {
    let mut out = Vec::with_capacity(event.tag.len() * 2 + 128);
    if let Some(id) = id {
        out.extend_from_slice(b"id: ");
        out.extend_from_slice(id.as_bytes());
        out.push(b'\n');
    }
    out.extend_from_slice(b"tag: ");
    for byte in event.tag.bytes() {
        match byte {
            b'\n' => out.extend_from_slice(b"\\n"),
            b'\r' => out.extend_from_slice(b"\\r"),
            byte => out.push(byte),
        }
    }
    out.push(b'\n');
    let data_at = out.len();
    out.extend_from_slice(b"data: {\"data\": ");
    json::write(&mut out, &event.data, Format::COMPACT);
    out.extend_from_slice(b", \"tag\": ");
    json::write(&mut out, &Value::from(event.tag.as_str()), Format::COMPACT);
    out.extend_from_slice(b"}\n\n");
    (Bytes::from(out), data_at)
}

/// The positive integer `key` of the block, or `default`.
fn positive(block: &Value, key: &str, default: u64) -> Result<u64, ConfigError> {
    match option(block, key) {
        None => Ok(default),
        Some(value) => value
            .as_u64()
            .filter(|number| *number > 0)
            .ok_or_else(|| bad(key, value, "a positive integer")),
    }
}

fn option<'a>(block: &'a Value, key: &str) -> Option<&'a Value> {
    map_get(block, key).filter(|value| !value.is_nil())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn events(size: usize) -> Events {
        events_of(size, usize::MAX)
    }

    fn events_of(size: usize, bytes: usize) -> Events {
        Events {
            inner: Arc::new(Inner {
                run: 7,
                size,
                bytes,
                age: Duration::from_secs(300),
                ring: RwLock::new(Ring::default()),
                newest: watch::channel(0).0,
                closed: CancellationToken::new(),
                publish: Endpoint::Unix("/nonexistent".into()),
            }),
        }
    }

    fn fire(events: &Events, tag: &str) {
        let data = Value::Map(vec![(Value::from("u"), Value::from("ü"))]);
        events.push(&Event {
            tag: tag.to_owned(),
            data,
        });
    }

    fn tags(batch: &Batch) -> Vec<&str> {
        batch.items.iter().map(|item| &*item.tag).collect()
    }

    #[test]
    fn frames_are_salts_with_an_id_first() {
        let events = events(10);
        let mut cursor = events.cursor(None);
        fire(&events, "sse/test");
        let batch = cursor.take().unwrap();
        assert_eq!(
            std::str::from_utf8(batch.items[0].sse()).unwrap(),
            "id: 7-1\ntag: sse/test\ndata: {\"data\": {\"u\": \"ü\"}, \"tag\": \"sse/test\"}\n\n"
        );
        assert_eq!(
            &batch.items[0].ws()[..],
            b"data: {\"data\": {\"u\": \"\xc3\xbc\"}, \"tag\": \"sse/test\"}\n\n"
        );
    }

    #[test]
    fn a_line_break_in_a_tag_cannot_forge_fields() {
        let events = events(10);
        let mut cursor = events.cursor(None);
        fire(&events, "a\ndata: forged\r\n");
        let frame = cursor.take().unwrap().items[0].sse().clone();
        let text = std::str::from_utf8(&frame).unwrap();
        assert!(
            text.starts_with("id: 7-1\ntag: a\\ndata: forged\\r\\n\ndata: {"),
            "{text}"
        );
        assert_eq!(text.matches('\n').count(), 4, "{text}");
    }

    #[test]
    fn a_cursor_resumes_after_its_id_and_reports_what_fell_out() {
        let events = events(3);
        for n in 1..=2 {
            fire(&events, &format!("t/{n}"));
        }
        let mut live = events.cursor(None);
        assert!(live.take().is_none());
        let mut resumed = events.cursor(Some("7-1"));
        let batch = resumed.take().unwrap();
        assert!(batch.lost.is_none());
        assert_eq!(tags(&batch), ["t/2"]);
        for n in 3..=6 {
            fire(&events, &format!("t/{n}"));
        }
        // Kept: 4, 5, 6. The resumed cursor wanted 3.
        let batch = resumed.take().unwrap();
        assert_eq!(tags(&batch), ["t/4", "t/5", "t/6"]);
        let lost = std::str::from_utf8(batch.lost.as_ref().unwrap().sse()).unwrap();
        assert!(
            lost.starts_with("tag: halite/api/lost\ndata: {\"data\": {\"lost\": 1, \"total\": 1,"),
            "{lost}"
        );
        assert!(resumed.take().is_none());
    }

    #[test]
    fn an_id_of_another_run_replays_all_kept_with_an_unknown_loss() {
        let events = events(3);
        fire(&events, "t/1");
        for stale in ["6-1", "7-9", "garbage"] {
            let batch = events.cursor(Some(stale)).take().unwrap();
            assert_eq!(tags(&batch), ["t/1"], "{stale}");
            let lost = std::str::from_utf8(batch.lost.as_ref().unwrap().sse()).unwrap();
            assert!(lost.contains("{\"lost\": null, \"total\": 0,"), "{lost}");
        }
    }

    #[test]
    fn replay_options_are_read_and_checked() {
        let dir = tempfile::tempdir().unwrap();
        let config = Config::load(config::Role::Master, Some(dir.path())).unwrap();
        let block = |text: &str| crate::salt_yaml::load(text).unwrap();
        let events = Events::new(
            &config,
            &block(
                "events_replay_size: 5\nevents_replay_seconds: 1.5\nevents_replay_bytes: 1000\n",
            ),
        )
        .unwrap();
        assert_eq!(events.inner.size, 5);
        assert_eq!(events.inner.bytes, 1000);
        let defaults = Events::new(&config, &block("{}\n")).unwrap();
        assert_eq!(defaults.inner.bytes, 64 << 20);
        let err = Events::new(&config, &block("events_replay_bytes: -1\n")).unwrap_err();
        assert!(
            err.to_string()
                .contains("rest_cherrypy.events_replay_bytes"),
            "{err}"
        );
        assert_eq!(events.inner.age, Duration::from_millis(1500));
        let err = Events::new(&config, &block("events_replay_size: 0\n")).unwrap_err();
        assert!(
            err.to_string().contains("rest_cherrypy.events_replay_size"),
            "{err}"
        );
    }

    fn fire_bytes(events: &Events, n: usize, len: usize) {
        let data = Value::Map(vec![(Value::from("pad"), Value::from("x".repeat(len)))]);
        events.push(&Event {
            tag: format!("t/{n}"),
            data,
        });
    }

    #[test]
    fn the_ring_is_bounded_in_bytes_too() {
        // Frames of a little over 1,000 bytes: three fit in 4,000.
        let events = events_of(100, 4000);
        let mut cursor = events.cursor(Some("7-0"));
        for n in 1..=10 {
            fire_bytes(&events, n, 1000);
        }
        {
            let ring = events.inner.ring.read().unwrap();
            assert_eq!(ring.items.len(), 3);
            assert_eq!(
                ring.bytes,
                ring.items
                    .iter()
                    .map(|item| item.frame.len())
                    .sum::<usize>()
            );
            assert!(ring.bytes <= 4000, "{}", ring.bytes);
        }
        let batch = cursor.take().unwrap();
        assert_eq!(tags(&batch), ["t/8", "t/9", "t/10"]);
        assert!(batch.lost.is_some());
        // An event larger than the limit is still kept, alone.
        fire_bytes(&events, 11, 10_000);
        let ring = events.inner.ring.read().unwrap();
        assert_eq!(ring.items.len(), 1);
        assert_eq!(&*ring.items[0].tag, "t/11");
    }

    #[test]
    fn a_batch_is_bounded_in_bytes() {
        let events = events(100);
        let mut cursor = events.cursor(None);
        for n in 1..=5 {
            fire_bytes(&events, n, 100 << 10);
        }
        // 100 KiB events: the third reaches 256 KiB.
        assert_eq!(tags(&cursor.take().unwrap()), ["t/1", "t/2", "t/3"]);
        assert_eq!(tags(&cursor.take().unwrap()), ["t/4", "t/5"]);
        // A single event above the cap still goes.
        fire_bytes(&events, 6, 1 << 20);
        assert_eq!(tags(&cursor.take().unwrap()), ["t/6"]);
    }
}
