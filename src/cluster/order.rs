//! Each master's events in the order it fired them, each once. A master numbers what it
//! publishes; a publish retried after a NATS server died can land after later ones, or twice
//! when the stream forgot its id, so the receiving master holds an event that comes early until
//! the ones before it arrive, and drops one it already fired.
//!
//! Each event also carries its master's *stored* mark: the number up to which the stream had
//! acknowledged every event when this one was sent. Those events are in the stream before this
//! one, so a receiver that has not seen one of them by now never will (it was stored before the
//! receiver started reading): it waits only for the events past the mark, which are still on
//! their way.

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use bytes::Bytes;
use tokio::time::Instant;

/// How long an early event waits for the ones before it. A live master retries every publish
/// until it is stored, through a NATS server's failover; only a master that died with
/// publishes in flight leaves a gap for good.
pub(super) const GAP_WAIT: Duration = Duration::from_secs(30);

/// The most bytes of early events held, over all masters; past it the oldest gap is skipped.
const HELD_BYTES: usize = 64 * 1024 * 1024;

/// What holding one event costs besides its body, counted against [`HELD_BYTES`].
const HELD_OVERHEAD: usize = 64;

/// The most masters' runs remembered; past it the one silent longest is forgotten.
const MAX_ORIGINS: usize = 4096;

/// How long a master (one run of it) that sent nothing is remembered.
const FORGET_AFTER: Duration = Duration::from_secs(3600);

#[derive(Debug)]
struct Origin {
    next: u64,
    held: BTreeMap<u64, Bytes>,
    /// Since when the first gap has been waited for.
    waiting_since: Option<Instant>,
    last_seen: Instant,
}

/// One event as its master numbered it.
#[derive(Debug)]
pub(super) struct Numbered {
    /// Its number in its master's run.
    pub seq: u64,
    /// Every event of that run up to this number was stored when it was sent.
    pub stored: u64,
    /// The event; empty for one its master could not publish, which only keeps the count.
    pub body: Bytes,
}

/// The receiving side's order per origin (a master's id and run).
#[derive(Debug, Default)]
pub(super) struct Origins {
    origins: HashMap<String, Origin>,
    held_bytes: usize,
    /// Events dropped as already fired.
    pub duplicates: u64,
    /// Events never received: stored before this master started reading, or skipped after
    /// [`GAP_WAIT`] or for room.
    pub skipped: u64,
}

impl Origins {
    /// Takes an event of `origin` and appends to `due` every body now in order.
    pub fn accept(&mut self, origin: &str, event: Numbered, now: Instant, due: &mut Vec<Bytes>) {
        let Numbered { seq, stored, body } = event;
        let state = self.origins.entry(origin.to_owned()).or_insert(Origin {
            next: stored.saturating_add(1).min(seq),
            held: BTreeMap::new(),
            waiting_since: None,
            last_seen: now,
        });
        state.last_seen = now;
        if stored >= state.next {
            let (skipped, released) = pass(state, stored.min(seq.saturating_sub(1)), due);
            self.skipped = self.skipped.saturating_add(skipped);
            self.held_bytes -= released;
        }
        if seq < state.next || state.held.contains_key(&seq) {
            self.duplicates += 1;
        } else {
            self.held_bytes += weight(&body);
            state.held.insert(seq, body);
        }
        self.held_bytes -= release(state, due, now);
        if self.held_bytes > HELD_BYTES {
            self.make_room(due, now);
        }
    }

    /// Gives up on gaps waited for longer than [`GAP_WAIT`], appending what follows them to
    /// `due`, and forgets origins long silent.
    pub fn expire(&mut self, now: Instant, due: &mut Vec<Bytes>) {
        for state in self.origins.values_mut() {
            if state
                .waiting_since
                .is_some_and(|since| now.duration_since(since) >= GAP_WAIT)
            {
                self.skipped = self.skipped.saturating_add(skip_gap(state));
                self.held_bytes -= release(state, due, now);
            }
        }
        self.origins.retain(|_, state| {
            !state.held.is_empty() || now.duration_since(state.last_seen) < FORGET_AFTER
        });
        if self.origins.len() > MAX_ORIGINS {
            // Those silent longest go, in one pass: a flood of runs must not cost a scan each.
            let mut silent: Vec<(Instant, String)> = self
                .origins
                .iter()
                .filter(|(_, state)| state.held.is_empty())
                .map(|(origin, state)| (state.last_seen, origin.clone()))
                .collect();
            silent.sort_unstable();
            let excess = self.origins.len() - MAX_ORIGINS;
            for (_, origin) in silent.into_iter().take(excess) {
                self.origins.remove(&origin);
            }
        }
    }

    /// Skips the gaps waited for longest until the events held take a quarter less than
    /// [`HELD_BYTES`]: one sort for many events' room, however many masters hold some.
    fn make_room(&mut self, due: &mut Vec<Bytes>, now: Instant) {
        let mut waiting: Vec<(Option<Instant>, String)> = self
            .origins
            .iter()
            .filter(|(_, state)| !state.held.is_empty())
            .map(|(origin, state)| (state.waiting_since, origin.clone()))
            .collect();
        waiting.sort_unstable();
        for (_, origin) in waiting {
            if self.held_bytes <= HELD_BYTES / 4 * 3 {
                break;
            }
            if let Some(state) = self.origins.get_mut(&origin) {
                self.skipped = self.skipped.saturating_add(skip_gap(state));
                self.held_bytes -= release(state, due, now);
            }
        }
    }
}

fn push(due: &mut Vec<Bytes>, body: Bytes) {
    if !body.is_empty() {
        due.push(body);
    }
}

/// Moves `next` past `through`, appending the events held up to there in order: those not
/// held never come. How many it skipped, and the bytes it released. Its work is the events
/// held, whatever the numbers.
fn pass(state: &mut Origin, through: u64, due: &mut Vec<Bytes>) -> (u64, usize) {
    if through < state.next {
        return (0, 0);
    }
    let later = match through.checked_add(1) {
        Some(after) => state.held.split_off(&after),
        None => BTreeMap::new(),
    };
    let passed = std::mem::replace(&mut state.held, later);
    let skipped = (through - state.next).saturating_add(1) - passed.len() as u64;
    let mut released = 0;
    for body in passed.into_values() {
        released += weight(&body);
        push(due, body);
    }
    state.next = through.saturating_add(1);
    (skipped, released)
}

fn weight(body: &Bytes) -> usize {
    body.len() + HELD_OVERHEAD
}

/// Moves `next` past the first gap; how many events it skipped.
fn skip_gap(state: &mut Origin) -> u64 {
    let first_held = state.held.keys().next().copied().unwrap_or(state.next);
    let skipped = first_held - state.next;
    state.next = first_held;
    skipped
}

/// Appends the held events that are now in order; how many bytes it released. The wait for
/// a gap starts when it is first seen, and again when events before it were released.
fn release(state: &mut Origin, due: &mut Vec<Bytes>, now: Instant) -> usize {
    let (before, mut released) = (state.next, 0);
    while let Some(body) = state.held.remove(&state.next) {
        released += weight(&body);
        push(due, body);
        state.next = state.next.saturating_add(1);
    }
    state.waiting_since = match state.waiting_since {
        _ if state.held.is_empty() => None,
        Some(since) if state.next == before => Some(since),
        _ => Some(now),
    };
    released
}

#[cfg(test)]
mod tests {
    use super::*;

    fn body(n: u64) -> Bytes {
        Bytes::from(format!("e{n}"))
    }

    /// Takes events given as (number, stored mark).
    fn take(
        origins: &mut Origins,
        origin: &str,
        events: &[(u64, u64)],
        now: Instant,
    ) -> Vec<Bytes> {
        let mut due = Vec::new();
        for &(seq, stored) in events {
            let event = Numbered {
                seq,
                stored,
                body: body(seq),
            };
            origins.accept(origin, event, now, &mut due);
        }
        due
    }

    #[test]
    fn early_events_wait_and_repeats_are_dropped() {
        let now = Instant::now();
        let mut origins = Origins::default();
        let events = [
            (5, 4),
            (6, 4),
            (8, 4),
            (9, 4),
            (6, 4),
            (7, 4),
            (10, 9),
            (9, 9),
        ];
        assert_eq!(
            take(&mut origins, "a", &events, now),
            [5, 6, 7, 8, 9, 10].map(body)
        );
        assert_eq!(origins.duplicates, 2);
        assert_eq!(origins.held_bytes, 0);
        // Another origin's numbers are its own.
        assert_eq!(
            take(&mut origins, "b", &[(1, 0), (2, 0)], now),
            [1, 2].map(body)
        );
    }

    #[test]
    fn what_was_stored_before_reading_started_is_not_waited_for() {
        let now = Instant::now();
        let mut origins = Origins::default();
        // 1 to 6 were stored before this master read; 7 is on its way, 9 comes early.
        assert!(take(&mut origins, "a", &[(8, 6), (9, 6)], now).is_empty());
        assert_eq!(take(&mut origins, "a", &[(7, 6)], now), [7, 8, 9].map(body));
        assert_eq!(origins.skipped, 0);
        // 10 was stored before 12 was sent, so before it: the stream lost it (its limits).
        assert_eq!(
            take(&mut origins, "a", &[(11, 9), (12, 10)], now),
            [11, 12].map(body)
        );
        assert_eq!(origins.skipped, 1);
    }

    #[test]
    fn a_gap_never_filled_is_skipped_after_the_wait() {
        let now = Instant::now();
        let mut origins = Origins::default();
        assert_eq!(
            take(&mut origins, "a", &[(1, 0), (3, 1), (4, 1)], now),
            [body(1)]
        );
        let mut due = Vec::new();
        origins.expire(now + GAP_WAIT / 2, &mut due);
        assert!(due.is_empty());
        origins.expire(now + GAP_WAIT, &mut due);
        assert_eq!(due, [3, 4].map(body));
        assert_eq!(origins.skipped, 1);
        // The lost one arriving late is not fired out of order.
        assert!(take(&mut origins, "a", &[(2, 1)], now + GAP_WAIT).is_empty());
    }

    #[test]
    fn a_placeholder_keeps_the_count_and_fires_nothing() {
        let now = Instant::now();
        let mut origins = Origins::default();
        let mut due = Vec::new();
        let mut accept = |seq, body| {
            let event = Numbered {
                seq,
                stored: 0,
                body,
            };
            origins.accept("a", event, now, &mut due);
        };
        accept(1, body(1));
        accept(3, body(3));
        accept(2, Bytes::new());
        assert_eq!(due, [1, 3].map(body));
    }

    #[test]
    fn a_huge_jump_in_numbers_costs_no_more_than_the_events_held() {
        let now = Instant::now();
        let mut origins = Origins::default();
        let huge = 1_000_000_000_000_000_000;
        let last = u64::MAX - 1;
        let events = [
            (1, 0),
            (3, 1),
            (huge + 1, huge),
            (last, last - 1),
            (last, 0),
        ];
        let due = take(&mut origins, "a", &events, now);
        assert_eq!(due, [1, 3, huge + 1, last].map(body));
        assert_eq!(origins.held_bytes, 0);
        assert_eq!(origins.duplicates, 1);
    }

    #[test]
    fn past_the_room_for_early_events_the_longest_gaps_are_skipped() {
        let now = Instant::now();
        let mut origins = Origins::default();
        let big = |n: u8| Bytes::from(vec![n; 20 << 20]);
        let mut due = Vec::new();
        for (n, origin) in ["a", "b", "c", "d"].iter().enumerate() {
            let event = Numbered {
                seq: 3,
                stored: 0,
                body: big(n as u8),
            };
            origins.accept(origin, event, now + Duration::from_secs(n as u64), &mut due);
        }
        // 80 MiB held: the two gaps waited for longest went, a's and b's.
        assert_eq!(due, [big(0), big(1)]);
        assert_eq!(origins.skipped, 4);
        assert!(origins.held_bytes <= HELD_BYTES / 4 * 3);
    }

    #[test]
    fn silent_origins_are_forgotten() {
        let now = Instant::now();
        let mut origins = Origins::default();
        take(&mut origins, "a", &[(1, 0)], now);
        origins.expire(now + FORGET_AFTER, &mut Vec::new());
        assert!(origins.origins.is_empty());
        for n in 0..MAX_ORIGINS + 10 {
            take(
                &mut origins,
                &n.to_string(),
                &[(1, 0)],
                now + Duration::from_millis(n as u64),
            );
        }
        origins.expire(now, &mut Vec::new());
        assert_eq!(origins.origins.len(), MAX_ORIGINS);
        assert!(!origins.origins.contains_key("0"));
    }
}
