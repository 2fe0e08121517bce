//! The minions of the jobs this master published lately, so that a return is checked against
//! its job without reading the job's target list from the cache: a job to 10,000 minions would
//! otherwise have that list read 10,000 times.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Arc, Mutex};

/// How many minion ids the recent jobs keep in all; the oldest jobs are forgotten first (their
/// returns are then checked against the cache).
const KEPT_IDS: usize = 200_000;

/// How many recent jobs are kept, whatever their size.
const KEPT_JOBS: usize = 10_000;

/// The target lists of recent jobs, newest last.
#[derive(Debug, Default)]
pub(super) struct RecentTargets {
    jobs: Mutex<Recent>,
}

#[derive(Debug, Default)]
struct Recent {
    /// The jids, oldest first.
    order: VecDeque<String>,
    targets: HashMap<String, Arc<HashSet<String>>>,
    ids: usize,
}

impl RecentTargets {
    /// Remembers that `jid` was published to `minions`.
    pub fn remember(&self, jid: &str, minions: &[String]) {
        let targets: Arc<HashSet<String>> = Arc::new(minions.iter().cloned().collect());
        let mut recent = self.jobs.lock().expect("recent targets lock");
        recent.ids += targets.len();
        if let Some(replaced) = recent.targets.insert(jid.to_owned(), targets) {
            recent.ids -= replaced.len();
            recent.order.retain(|kept| kept != jid);
        }
        recent.order.push_back(jid.to_owned());
        // Also bounded in jobs: each costs its jid and its set beside its ids.
        while (recent.ids > KEPT_IDS || recent.order.len() > KEPT_JOBS) && recent.order.len() > 1 {
            let oldest = recent.order.pop_front().expect("more than one");
            if let Some(forgotten) = recent.targets.remove(&oldest) {
                recent.ids -= forgotten.len();
            }
        }
    }

    /// The minions `jid` was published to, if it is a recent job of this master.
    pub fn of(&self, jid: &str) -> Option<Arc<HashSet<String>>> {
        let recent = self.jobs.lock().expect("recent targets lock");
        recent.targets.get(jid).map(Arc::clone)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_oldest_jobs_are_forgotten_past_the_id_budget_but_the_newest_is_kept() {
        let recent = RecentTargets::default();
        let ids = |n: usize, prefix: &str| -> Vec<String> {
            (0..n).map(|i| format!("{prefix}{i}")).collect()
        };
        recent.remember("1", &ids(KEPT_IDS / 2, "a"));
        recent.remember("2", &ids(KEPT_IDS / 2, "b"));
        assert!(recent.of("1").is_some_and(|t| t.contains("a0")));
        recent.remember("3", &ids(10, "c"));
        assert!(recent.of("1").is_none(), "over the budget");
        assert!(recent.of("2").is_some_and(|t| !t.contains("a0")));
        recent.remember("4", &ids(KEPT_IDS * 2, "d"));
        assert!(recent.of("4").is_some(), "the newest, however large");
        assert!(recent.of("3").is_none());
    }

    #[test]
    fn small_jobs_are_bounded_in_number() {
        let recent = RecentTargets::default();
        for jid in 0..KEPT_JOBS + 10 {
            recent.remember(&jid.to_string(), &["m".to_owned()]);
        }
        assert!(recent.of("9").is_none());
        assert!(recent.of("10").is_some());
        assert!(recent.of(&(KEPT_JOBS + 9).to_string()).is_some());
    }
}
