//! Running a job on a few minions at a time, as Salt's `salt --batch` does: the target's
//! minions are pinged first, then the job goes out to `size` of them at once (a count or a
//! percentage of those that answered), each returning minion's place taken by the next one,
//! `wait` seconds after it returned.

use std::collections::VecDeque;
use std::ops::ControlFlow;
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio::time::Instant;

use super::ClientError;
use super::local::{LocalClient, Outcome, Pinged};
use crate::event::Value;
use crate::proto::PublishRequest;

/// How many minions run the job at once.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum BatchSize {
    /// This many.
    Count(usize),
    /// This share of the minions that answered the ping, at least one.
    Percent(f64),
}

/// A `--batch` value that is not a count or a percentage.
#[derive(Debug, thiserror::Error)]
#[error(
    "invalid batch size {0:?}: give a number of minions above 0, such as 10, or a percentage, such as 10%"
)]
pub struct BadBatchSize(String);

impl std::str::FromStr for BatchSize {
    type Err = BadBatchSize;

    /// `10`, `10%` or Salt's `%10`.
    fn from_str(text: &str) -> Result<Self, Self::Err> {
        let bad = || BadBatchSize(text.to_owned());
        let trimmed = text.trim();
        if trimmed.contains('%') {
            let percent: f64 = trimmed.trim_matches('%').parse().map_err(|_| bad())?;
            return (percent.is_finite() && percent > 0.0)
                .then_some(BatchSize::Percent(percent))
                .ok_or_else(bad);
        }
        match trimmed.parse::<usize>() {
            Ok(count) if count > 0 => Ok(BatchSize::Count(count)),
            _ => Err(bad()),
        }
    }
}

impl BatchSize {
    /// How many of `minions` run at once: a percentage rounds down, but never below one.
    pub fn of(self, minions: usize) -> usize {
        match self {
            BatchSize::Count(count) => count,
            BatchSize::Percent(percent) => {
                let share = percent / 100.0 * minions as f64;
                if share < 1.0 {
                    share.ceil() as usize
                } else {
                    share as usize
                }
            }
        }
        .max(1)
    }
}

/// How a batch run goes, as it goes.
#[derive(Debug)]
pub enum Progress {
    /// The minions the target selects that did not answer the ping: no job goes to them.
    NotResponding(String),
    /// The job goes out to these minions (sorted), as one job.
    Started(Vec<String>),
    /// A minion's outcome of the job `jid`.
    Finished {
        /// The job the outcome belongs to.
        jid: String,
        /// The outcome.
        outcome: Outcome,
    },
}

/// A batch run: how many at once, and how long a returning minion's place stays empty.
#[derive(Debug, Clone, Copy)]
pub struct Batch {
    /// How many minions run the job at once.
    pub size: BatchSize,
    /// How long after a minion returned its place is given to the next one.
    pub wait: Duration,
    /// Stop at the first minion that returns a non-zero retcode or fails to respond to its
    /// job (`--failhard`), as Salt does.
    pub failhard: bool,
}

impl Batch {
    /// Runs `request` (its target selects the minions) in batches, calling `each` as things
    /// happen, and sending no further job once it says to stop (its output failed, say);
    /// `Ok(false)` when the target selects no minion.
    pub async fn run(
        &self,
        client: &LocalClient,
        request: &PublishRequest,
        mut each: impl FnMut(Progress) -> ControlFlow<()>,
    ) -> Result<bool, ClientError> {
        let Some(Pinged { up, down }) = client
            .ping(request.tgt.clone(), &request.tgt_type, &request.user)
            .await?
        else {
            return Ok(false);
        };
        for id in down {
            if each(Progress::NotResponding(id)).is_break() {
                return Ok(true);
            }
        }
        let size = self.size.of(up.len());
        let total = up.len();
        let mut to_run: VecDeque<String> = up.into();
        // One outcome per minion and one start per job, so this never fills.
        let (tx, mut rx) = mpsc::channel::<(String, Outcome)>(total.max(1));
        let mut jobs: JoinSet<Result<(), ClientError>> = JoinSet::new();
        let mut active = 0;
        let mut finished = 0;
        let mut waits: VecDeque<Instant> = VecDeque::new();
        while finished < total {
            let now = Instant::now();
            while waits.front().is_some_and(|until| *until <= now) {
                waits.pop_front();
            }
            let free = size.saturating_sub(active + waits.len()).min(to_run.len());
            if free > 0 {
                let mut minions: Vec<String> = to_run.drain(..free).collect();
                minions.sort();
                active += minions.len();
                if each(Progress::Started(minions.clone())).is_break() {
                    return Ok(true);
                }
                let job = PublishRequest {
                    tgt: Value::Array(minions.iter().map(|id| Value::from(id.as_str())).collect()),
                    tgt_type: "list".to_owned(),
                    ..request.clone()
                };
                let (client, tx) = (client.clone(), tx.clone());
                jobs.spawn(async move { one_job(&client, &job, &minions, &tx).await });
            }
            let next_place = waits.front().copied().filter(|_| !to_run.is_empty());
            tokio::select! {
                Some((jid, outcome)) = rx.recv() => {
                    active -= 1;
                    finished += 1;
                    if !self.wait.is_zero() {
                        waits.push_back(Instant::now() + self.wait);
                    }
                    let failed = match &outcome {
                        Outcome::Returned(ret) => ret.retcode() != 0,
                        Outcome::NoResponse(_) | Outcome::NotConnected(_) => true,
                    };
                    if each(Progress::Finished { jid, outcome }).is_break()
                        || (failed && self.failhard)
                    {
                        return Ok(true);
                    }
                }
                Some(done) = jobs.join_next() => {
                    done.map_err(|err| ClientError::NotDelivered(format!("a batch job failed: {err}")))??;
                }
                () = sleep_until(next_place) => {}
            }
        }
        Ok(true)
    }
}

/// Sleeps until `when`; forever without one.
async fn sleep_until(when: Option<Instant>) {
    match when {
        Some(when) => tokio::time::sleep_until(when).await,
        None => std::future::pending().await,
    }
}

/// Publishes one batch's job to `minions` and sends each one's outcome, with the job's jid,
/// to `tx`; a minion whose key went away since the ping is not connected.
async fn one_job(
    client: &LocalClient,
    job: &PublishRequest,
    minions: &[String],
    tx: &mpsc::Sender<(String, Outcome)>,
) -> Result<(), ClientError> {
    let mut listener = client.listen().await?;
    let published = client.publish(job).await?;
    let jid = published.jid.clone();
    for id in minions.iter().filter(|id| !published.minions.contains(id)) {
        let _ = tx.try_send((jid.clone(), Outcome::NotConnected(id.clone())));
    }
    if jid.is_empty() {
        return Ok(());
    }
    client
        .gather(&mut listener, &published, &job.user, |outcome| {
            // Room for every outcome was made when the channel was created.
            let _ = tx.try_send((jid.clone(), outcome));
        })
        .await
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_counts_or_shares_of_the_minions_as_salts_are() {
        let size = |text: &str| text.parse::<BatchSize>().unwrap();
        assert_eq!(size("2").of(3), 2);
        assert_eq!(size("10").of(3), 10);
        assert_eq!(size("50%").of(3), 1);
        assert_eq!(size("%50").of(4), 2);
        assert_eq!(size("10%").of(3), 1);
        assert_eq!(size("66%").of(10), 6);
        for bad in ["0", "x", "-1", "0%", "%", "1.5", "nan%"] {
            assert!(bad.parse::<BatchSize>().is_err(), "{bad}");
        }
        assert_eq!(
            "x".parse::<BatchSize>().unwrap_err().to_string(),
            "invalid batch size \"x\": give a number of minions above 0, such as 10, or a percentage, such as 10%"
        );
    }
}
