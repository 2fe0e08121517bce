//! Grains across the cluster: the grains a minion reports to its master go into a JetStream
//! key-value bucket, `HALITE_<cluster_id>_GRAINS`, and every other master learns them, so that
//! `salt -G` on any master targets the minions connected to all.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};

use async_nats::jetstream::kv;
use bytes::Bytes;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use super::Cluster;
use super::bridge::RETRY;
use super::bucket::{BucketWatch, escape_id, unescape_id};
use crate::event::{Value, map_get};

/// Grains waiting to go into the bucket, at most (a reconnecting fleet reports them all at once);
/// past it, a minion's grains go with its next connection.
const WAITING: usize = 20_000;

/// Where a master hands the grains its minions report.
#[derive(Debug, Clone)]
pub struct ClusterGrains {
    reported: mpsc::Sender<(String, Value)>,
}

/// Puts the grains this master's minions report in the bucket, and learns the others'.
#[derive(Debug)]
pub struct GrainsSync {
    cluster: Cluster,
    reported: mpsc::Receiver<(String, Value)>,
}

impl Cluster {
    /// Where this master's minions' grains go, and what shares them.
    pub fn grains(&self) -> (ClusterGrains, GrainsSync) {
        let (tx, rx) = mpsc::channel(WAITING);
        let sync = GrainsSync {
            cluster: self.clone(),
            reported: rx,
        };
        (ClusterGrains { reported: tx }, sync)
    }
}

impl ClusterGrains {
    /// Shares the grains minion `id` reported to this master.
    pub fn share(&self, id: &str, grains: &Value) {
        if self
            .reported
            .try_send((id.to_owned(), grains.clone()))
            .is_err()
        {
            tracing::debug!("the grains of {id} wait for its next connection to reach the cluster");
        }
    }
}

impl GrainsSync {
    /// Shares grains until `stop`; `learned` is told each minion's grains another master put.
    pub async fn run(mut self, learned: impl Fn(String, Value), stop: CancellationToken) {
        let bucket = self.cluster.bucket("GRAINS", "the minion grains");
        let Some(kv) = stop.run_until_cancelled(bucket).await else {
            return;
        };
        let own = self.cluster.origin();
        // What the bucket holds for each minion (a hash of it), so that a minion reconnecting
        // with the grains it had is not written again.
        let mut held: HashMap<String, u64> = HashMap::new();
        // Reported and not in the bucket yet (NATS is down, or the bucket not ready): tried
        // again every second, the latest grains of each minion.
        let mut unsent: HashMap<String, Value> = HashMap::new();
        let mut retry = tokio::time::interval(RETRY);
        let mut failing = false;
        let mut changes = BucketWatch::latest(&self.cluster, &kv);
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                Some((id, grains)) = self.reported.recv() => {
                    if held.get(&id) != Some(&digest(&grains)) {
                        unsent.insert(id, grains);
                    }
                }
                _ = retry.tick(), if !unsent.is_empty() => {}
                change = changes.next() => {
                    let Some(id) = unescape_id(&change.key) else {
                        continue;
                    };
                    let Some(value) = change.value else {
                        held.remove(&id);
                        continue;
                    };
                    let Some((origin, grains)) = decode(&value) else {
                        tracing::warn!("ignored the cluster's grains of {id}: not grains");
                        continue;
                    };
                    held.insert(id.clone(), digest(&grains));
                    if origin != own {
                        learned(id, grains);
                    }
                    continue;
                }
            }
            // Until the first that does not go: NATS is away, the rest wait with it.
            let mut problem = None;
            let ids: Vec<String> = unsent.keys().cloned().collect();
            for id in ids {
                let Some(grains) = unsent.get(&id) else {
                    continue;
                };
                let Some(put) = stop.run_until_cancelled(put(&kv, &own, &id, grains)).await else {
                    return;
                };
                if let Err(err) = put {
                    problem = Some(err);
                    break;
                }
                if let Some(grains) = unsent.remove(&id) {
                    held.insert(id, digest(&grains));
                }
            }
            match problem {
                Some(problem) if !std::mem::replace(&mut failing, true) => tracing::warn!(
                    "{problem}; retrying (the other masters target by the grains they knew)"
                ),
                None if std::mem::replace(&mut failing, false) => {
                    tracing::info!("the cluster has this master's grains again")
                }
                _ => {}
            }
        }
    }
}

/// Puts minion `id`'s grains in the bucket as reported to master `origin`.
async fn put(kv: &kv::Store, origin: &str, id: &str, grains: &Value) -> Result<(), String> {
    let entry = Value::Map(vec![
        (Value::from("origin"), Value::from(origin)),
        (Value::from("grains"), grains.clone()),
    ]);
    let mut bytes = Vec::new();
    rmpv::encode::write_value(&mut bytes, &entry).map_err(|err| err.to_string())?;
    let size = bytes.len();
    kv.put(escape_id(id), Bytes::from(bytes))
        .await
        .map(drop)
        .map_err(|err| format!("cannot give the cluster the grains of {id} ({size} bytes): {err}"))
}

fn decode(value: &[u8]) -> Option<(String, Value)> {
    let entry = rmpv::decode::read_value(&mut &value[..]).ok()?;
    let origin = map_get(&entry, "origin")?.as_str()?.to_owned();
    let grains = map_get(&entry, "grains")?.clone();
    Some((origin, grains))
}

fn digest(grains: &Value) -> u64 {
    let mut bytes = Vec::new();
    let _ = rmpv::encode::write_value(&mut bytes, grains);
    let mut hasher = std::collections::hash_map::DefaultHasher::new();
    bytes.hash(&mut hasher);
    hasher.finish()
}
