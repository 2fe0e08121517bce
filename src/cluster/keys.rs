//! Keys across the cluster: every master keeps its minion keys in its `pki_dir`, as Salt's does,
//! and a JetStream key-value bucket, `HALITE_<cluster_id>_KEYS`, holds the cluster's: a key
//! filed, moved or removed on one master (`salt-key -a`, a minion presenting a new key) is put
//! in the bucket, and every other master files it alike. So `salt-key -a` on any master admits
//! the minion on all, and a minion can fail over to any of them.
//!
//! An entry is one key file: `<state directory>.<escaped id>` holding the PEM text. Deleting the
//! file deletes the entry; the deletion stays in the bucket, so a master that was away when a
//! key was removed removes it too when it comes back instead of bringing it back.

use std::collections::{BTreeMap, HashMap};
use std::sync::Arc;
use std::time::Duration;

use async_nats::jetstream::kv;
use bytes::Bytes;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::Cluster;
use super::bridge::{RETRY, until_ok};
use super::bucket::{BucketWatch, Change, escape_id, last_revision, unescape_id};
use crate::keys::{KeyState, KeyStore};

/// How often the key files are compared with what the cluster has, besides when this master
/// says they changed: a key an operator moves by hand goes out within this.
const SCAN_EVERY: Duration = Duration::from_secs(10);

/// How long a change waits for more before the key files are read: a reconnecting fleet
/// presents thousands of keys at once.
const GATHER: Duration = Duration::from_millis(100);

/// One key file: its state and minion id.
type KeyFile = (KeyState, String);

/// Keeps a master's key files and its cluster's bucket alike.
#[derive(Debug)]
pub struct KeySync {
    cluster: Cluster,
    store: KeyStore,
}

impl Cluster {
    /// The keys of `store` kept alike with the cluster's.
    pub fn key_sync(&self, store: KeyStore) -> KeySync {
        KeySync {
            cluster: self.clone(),
            store,
        }
    }
}

impl KeySync {
    /// Keeps the keys alike until `stop`. This master's key files are read on `changed` (and
    /// every [`SCAN_EVERY`]) and what changed is put in the bucket; the other masters' changes
    /// are filed here, and `refiled` is told the id of each, to end a session whose key went.
    pub async fn run(self, changed: Arc<Notify>, refiled: impl Fn(&str), stop: CancellationToken) {
        let bucket = self.cluster.bucket("KEYS", "the minion keys");
        let Some(kv) = stop.run_until_cancelled(bucket).await else {
            return;
        };
        let mut mirror = BTreeMap::new();
        let mut changes = BucketWatch::latest(&self.cluster, &kv);
        let joined = self.join(&kv, &mut changes, &mut mirror, &refiled);
        if stop.run_until_cancelled(joined).await.is_none() {
            return;
        }
        let mut scan = tokio::time::interval(SCAN_EVERY);
        let mut failing = false;
        loop {
            tokio::select! {
                () = stop.cancelled() => return,
                () = changed.notified() => tokio::time::sleep(GATHER).await,
                _ = scan.tick() => {}
                change = changes.next() => {
                    self.apply(change, &mut mirror, &refiled).await;
                    continue;
                }
            }
            // What did not go is tried again soon, not at the next scan.
            match self.push(&kv, &mut mirror).await {
                Ok(()) if failing => {
                    failing = false;
                    tracing::info!("the cluster has this master's keys again");
                }
                Ok(()) => {}
                Err(problem) => {
                    if !std::mem::replace(&mut failing, true) {
                        tracing::warn!("the cluster's keys: {problem}; retrying");
                    }
                    scan.reset_after(RETRY);
                }
            }
        }
    }

    /// Brings this master in line with the bucket as it joins: the cluster's keys and removals
    /// are filed here (this master's keys the cluster has never seen go to it with the first
    /// push).
    async fn join(
        &self,
        kv: &kv::Store,
        changes: &mut BucketWatch,
        mirror: &mut BTreeMap<KeyFile, String>,
        refiled: &impl Fn(&str),
    ) {
        let cluster = self.read_bucket(kv, changes).await;
        let local = self.local().await;
        for ((state, id), pem) in cluster {
            let same = local.get(&(state, id.clone())) == pem.as_ref();
            // A key that could not be filed stays out of the mirror: the first push would
            // otherwise take it for one deleted here.
            if (same || self.file(state, &id, pem.as_deref(), refiled).await)
                && let Some(pem) = pem
            {
                mirror.insert((state, id), pem);
            }
        }
    }

    /// Every entry of the bucket (`None` for a removed key), read up to its last revision when
    /// this master joined.
    async fn read_bucket(
        &self,
        kv: &kv::Store,
        changes: &mut BucketWatch,
    ) -> HashMap<KeyFile, Option<String>> {
        let last = until_ok(|| async {
            last_revision(kv)
                .await
                .map_err(|err| format!("cannot read the cluster's keys: {err}"))
        })
        .await;
        let mut entries = HashMap::new();
        let mut read = 0;
        while read < last {
            let change = changes.next().await;
            read = change.revision;
            if let Some(file) = key_file(&change.key) {
                let pem = change
                    .value
                    .map(|value| String::from_utf8_lossy(&value).into_owned());
                entries.insert(file, pem);
            }
        }
        entries
    }

    /// This master's key files.
    async fn local(&self) -> BTreeMap<KeyFile, String> {
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || store.all()).await {
            Ok(Ok(all)) => all,
            Ok(Err(err)) => {
                tracing::error!("{err}; the cluster does not get this master's keys");
                BTreeMap::new()
            }
            Err(err) => {
                tracing::error!("reading the key files failed: {err}");
                BTreeMap::new()
            }
        }
    }

    /// Puts in the bucket what changed in this master's key files since `mirror`, or says what
    /// did not go.
    async fn push(
        &self,
        kv: &kv::Store,
        mirror: &mut BTreeMap<KeyFile, String>,
    ) -> Result<(), String> {
        let local = self.local().await;
        let gone: Vec<KeyFile> = mirror
            .keys()
            .filter(|file| !local.contains_key(*file))
            .cloned()
            .collect();
        let mut failed = None;
        for file in gone {
            match kv.delete(entry_key(&file)).await {
                Ok(()) => {
                    mirror.remove(&file);
                }
                Err(err) => failed = Some(format!("cannot remove the key of {}: {err}", file.1)),
            }
        }
        for (file, pem) in local {
            if mirror.get(&file) == Some(&pem) {
                continue;
            }
            match kv.put(entry_key(&file), Bytes::from(pem.clone())).await {
                Ok(_) => {
                    mirror.insert(file, pem);
                }
                Err(err) => failed = Some(format!("cannot give it the key of {}: {err}", file.1)),
            }
        }
        failed.map_or(Ok(()), Err)
    }

    /// Files another master's change here.
    async fn apply(
        &self,
        change: Change,
        mirror: &mut BTreeMap<KeyFile, String>,
        refiled: &impl Fn(&str),
    ) {
        let Some(file) = key_file(&change.key) else {
            tracing::warn!(
                "ignored {:?} in the cluster's keys: not a key file",
                change.key
            );
            return;
        };
        let pem = change
            .value
            .map(|value| String::from_utf8_lossy(&value).into_owned());
        if mirror.get(&file) == pem.as_ref() {
            return;
        }
        let (state, id) = &file;
        if !self.file(*state, id, pem.as_deref(), refiled).await {
            return;
        }
        match pem {
            Some(pem) => mirror.insert(file, pem),
            None => mirror.remove(&file),
        };
    }

    /// Files `pem` as `id`'s key in `state`, or removes it (`None`); whether it did.
    async fn file(
        &self,
        state: KeyState,
        id: &str,
        pem: Option<&str>,
        refiled: &impl Fn(&str),
    ) -> bool {
        let (store, owned_id, pem) = (self.store.clone(), id.to_owned(), pem.map(str::to_owned));
        let filed = tokio::task::spawn_blocking(move || match pem {
            Some(pem) => store.replace(state, &owned_id, &pem),
            None => store.remove(state, &owned_id),
        })
        .await;
        match filed {
            Ok(Ok(())) => {
                refiled(id);
                true
            }
            Ok(Err(err)) => {
                tracing::error!("cannot file the cluster's key of {id}: {err}");
                false
            }
            Err(err) => {
                tracing::error!("cannot file the cluster's key of {id}: {err}");
                false
            }
        }
    }
}

/// The bucket's key for a key file: `<state directory>.<escaped id>`.
fn entry_key((state, id): &KeyFile) -> String {
    format!("{}.{}", state.dir_name(), escape_id(id))
}

/// The key file a bucket key names, if it names one.
fn key_file(key: &str) -> Option<KeyFile> {
    let (dir, escaped) = key.split_once('.')?;
    let state = KeyState::ALL
        .into_iter()
        .find(|state| state.dir_name() == dir)?;
    Some((state, unescape_id(escaped)?))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_minion_id_round_trips_through_a_bucket_key() {
        for id in [
            "web1",
            "web1.example.com",
            "a=b",
            "über-minion",
            "with space",
            "-lead_",
            "x.",
        ] {
            for state in KeyState::ALL {
                let file = (state, id.to_owned());
                let key = entry_key(&file);
                assert!(
                    key.bytes()
                        .all(|b| b.is_ascii_alphanumeric() || b"-_=.".contains(&b)),
                    "{key}"
                );
                assert_eq!(key.matches('.').count(), 1, "{key}");
                assert_eq!(key_file(&key), Some(file));
            }
        }
    }

    #[test]
    fn a_bucket_key_that_names_no_key_file_is_refused() {
        for key in [
            "minions",
            "keys.web1",
            "minions.=2E=2E",
            "minions.a=2Fb",
            "minions.=4",
            "minions.=ZZ",
            "minions.=+1",
            "minions.",
        ] {
            assert_eq!(key_file(key), None, "{key}");
        }
    }
}
