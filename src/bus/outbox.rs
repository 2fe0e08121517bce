//! A subscriber's outbox: the frames waiting to be written to it, bounded in bytes, and what
//! happens when it is full.

use std::collections::VecDeque;
use std::sync::Mutex;

use bytes::Bytes;
use tokio::sync::Notify;

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

/// Bookkeeping cost charged per queued frame on top of its bytes, so that a flood of tiny
/// events is bounded by real memory, not just payload.
const FRAME_OVERHEAD: usize = 64;

/// Frames for one subscriber.
#[derive(Debug)]
pub(crate) struct Outbox {
    state: Mutex<State>,
    ready: Notify,
    budget: usize,
    policy: SlowPolicy,
}

#[derive(Debug, Default)]
struct State {
    frames: VecDeque<Bytes>,
    charged: usize,
    lost_unreported: u64,
    lost_total: u64,
    overflowed: bool,
}

/// What [`Outbox::take`] hands the writer.
#[derive(Debug, Default)]
pub(crate) struct Batch {
    /// Frames to write, oldest first.
    pub frames: VecDeque<Bytes>,
    /// Events dropped since the last batch.
    pub lost: u64,
    /// Events dropped since the subscriber connected.
    pub lost_total: u64,
    /// The outbox overflowed under [`SlowPolicy::Disconnect`]: close the connection.
    pub disconnect: bool,
}

impl Outbox {
    /// An empty outbox holding at most `budget` bytes.
    pub fn new(budget: usize, policy: SlowPolicy) -> Self {
        Self {
            state: Mutex::default(),
            ready: Notify::new(),
            budget,
            policy,
        }
    }

    /// Queues frames, oldest first, and wakes the writer.
    pub fn push(&self, frames: &[Bytes]) {
        {
            let mut state = self.state.lock().expect("outbox lock");
            if state.overflowed {
                return;
            }
            for frame in frames {
                let cost = frame.len() + FRAME_OVERHEAD;
                while state.charged + cost > self.budget && !state.frames.is_empty() {
                    if self.policy == SlowPolicy::Disconnect {
                        state.overflowed = true;
                        state.frames.clear();
                        state.charged = 0;
                        break;
                    }
                    let dropped = state.frames.pop_front().expect("not empty");
                    state.charged -= dropped.len() + FRAME_OVERHEAD;
                    state.lost_unreported += 1;
                    state.lost_total += 1;
                }
                if state.overflowed {
                    break;
                }
                // A single frame larger than the whole budget still goes through, alone.
                state.charged += cost;
                state.frames.push_back(frame.clone());
            }
        }
        self.ready.notify_one();
    }

    /// Queues a frame only if it fits without dropping anything, and wakes the writer. The bus's
    /// own reports go this way: a report that evicted an event would itself be a loss to report.
    pub fn offer(&self, frame: &Bytes) {
        {
            let mut state = self.state.lock().expect("outbox lock");
            let cost = frame.len() + FRAME_OVERHEAD;
            if state.overflowed || state.charged + cost > self.budget {
                return;
            }
            state.charged += cost;
            state.frames.push_back(frame.clone());
        }
        self.ready.notify_one();
    }

    /// Waits for frames (or a reason to disconnect) and takes all of them.
    pub async fn take(&self) -> Batch {
        loop {
            let notified = self.ready.notified();
            {
                let mut state = self.state.lock().expect("outbox lock");
                if !state.frames.is_empty() || state.lost_unreported > 0 || state.overflowed {
                    return Self::drain(&mut state);
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
        Self::drain(&mut self.state.lock().expect("outbox lock"))
    }

    fn drain(state: &mut State) -> Batch {
        let mut frames = VecDeque::new();
        let mut taken = 0;
        while taken < TAKE_BYTES {
            let Some(frame) = state.frames.pop_front() else {
                break;
            };
            let cost = frame.len() + FRAME_OVERHEAD;
            state.charged -= cost;
            taken += cost;
            frames.push_back(frame);
        }
        Batch {
            frames,
            lost: std::mem::take(&mut state.lost_unreported),
            lost_total: state.lost_total,
            disconnect: state.overflowed,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn frames(n: usize, size: usize) -> Vec<Bytes> {
        (0..n).map(|i| Bytes::from(vec![i as u8; size])).collect()
    }

    #[test]
    fn drop_oldest_keeps_the_newest_within_budget_and_counts_the_rest() {
        let outbox = Outbox::new(10 * (100 + FRAME_OVERHEAD), SlowPolicy::DropOldest);
        const { assert!(10 * (100 + FRAME_OVERHEAD) < TAKE_BYTES) };
        outbox.push(&frames(25, 100));
        let batch = outbox.take_now();
        assert_eq!(batch.frames.len(), 10);
        assert_eq!(batch.frames[0][0], 15, "the oldest were dropped");
        assert_eq!((batch.lost, batch.lost_total), (15, 15));
        outbox.push(&frames(1, 100));
        let batch = outbox.take_now();
        assert_eq!(
            (batch.frames.len(), batch.lost, batch.lost_total),
            (1, 0, 15)
        );
    }

    #[test]
    fn disconnect_policy_empties_the_outbox_and_asks_to_close() {
        let outbox = Outbox::new(3 * (100 + FRAME_OVERHEAD), SlowPolicy::Disconnect);
        outbox.push(&frames(5, 100));
        let batch = outbox.take_now();
        assert!(batch.disconnect);
        assert!(batch.frames.is_empty());
    }

    #[test]
    fn an_offer_never_evicts() {
        let outbox = Outbox::new(2 * (100 + FRAME_OVERHEAD), SlowPolicy::DropOldest);
        outbox.push(&frames(2, 100));
        outbox.offer(&Bytes::from(vec![9; 100]));
        let batch = outbox.take_now();
        assert_eq!((batch.frames.len(), batch.lost), (2, 0));
        assert_ne!(batch.frames[1][0], 9);
        outbox.offer(&Bytes::from(vec![9; 100]));
        assert_eq!(outbox.take_now().frames.len(), 1);
    }

    #[test]
    fn a_batch_is_capped_and_the_rest_waits() {
        let outbox = Outbox::new(usize::MAX, SlowPolicy::DropOldest);
        outbox.push(&frames(1000, 1000));
        let first = outbox.take_now();
        assert!(first.frames.len() < 1000 && first.frames.len() * 1064 >= TAKE_BYTES);
        let mut taken = first.frames.len();
        while taken < 1000 {
            let next = outbox.take_now();
            assert!(!next.frames.is_empty());
            taken += next.frames.len();
        }
        assert_eq!(taken, 1000);
    }

    #[test]
    fn a_frame_larger_than_the_budget_still_goes_alone() {
        let outbox = Outbox::new(100, SlowPolicy::DropOldest);
        outbox.push(&frames(2, 1000));
        let batch = outbox.take_now();
        assert_eq!((batch.frames.len(), batch.lost), (1, 1));
    }
}
