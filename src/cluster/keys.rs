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

use async_nats::jetstream::{kv, stream};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;

use super::bridge::until_ok;
use super::{Cluster, ClusterError};
use crate::keys::{KeyState, KeyStore, id_problem};

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

    fn keys_bucket(&self) -> String {
        format!("HALITE_{}_KEYS", self.settings.id)
    }
}

impl KeySync {
    /// Keeps the keys alike until `stop`. This master's key files are read on `changed` (and
    /// every [`SCAN_EVERY`]) and what changed is put in the bucket; the other masters' changes
    /// are filed here, and `refiled` is told the id of each, to end a session whose key went.
    pub async fn run(self, changed: Arc<Notify>, refiled: impl Fn(&str), stop: CancellationToken) {
        let Some(kv) = stop.run_until_cancelled(self.bucket()).await else {
            return;
        };
        let mut connections = self.cluster.connections.clone();
        let mut mirror = BTreeMap::new();
        let mut revision = match stop
            .run_until_cancelled(self.join(&kv, &mut mirror, &refiled))
            .await
        {
            Some(revision) => revision,
            None => return,
        };
        let mut scan = tokio::time::interval(SCAN_EVERY);
        loop {
            connections.borrow_and_update();
            let Some(mut watch) = stop
                .run_until_cancelled(until_ok(|| async {
                    kv.watch_all_from_revision(revision + 1)
                        .await
                        .map_err(|err| format!("cannot watch the cluster's keys: {err}"))
                }))
                .await
            else {
                return;
            };
            loop {
                tokio::select! {
                    () = stop.cancelled() => return,
                    // The watch may have died with its server: taken up past the last entry.
                    Ok(()) = connections.changed() => break,
                    () = changed.notified() => {
                        tokio::time::sleep(GATHER).await;
                        self.push(&kv, &mut mirror).await;
                    }
                    _ = scan.tick() => self.push(&kv, &mut mirror).await,
                    entry = watch.next() => match entry {
                        Some(Ok(entry)) => {
                            revision = entry.revision;
                            self.apply(&entry, &mut mirror, &refiled).await;
                        }
                        Some(Err(err)) => {
                            tracing::debug!("watching the cluster's keys: {err}");
                            break;
                        }
                        None => break,
                    },
                }
            }
        }
    }

    /// The cluster's bucket of keys, created when missing; retried until NATS has it.
    async fn bucket(&self) -> kv::Store {
        let js = &self.cluster.js;
        let name = self.cluster.keys_bucket();
        let failed = |reason: &dyn std::fmt::Display| {
            ClusterError::Stream {
                stream: format!("KV_{name}"),
                reason: reason.to_string(),
            }
            .to_string()
        };
        until_ok(|| async {
            if let Ok(store) = js.get_key_value(&name).await {
                return Ok(store);
            }
            // The bucket's stream made here, as a key-value bucket's is: the client's own way
            // asks the account's limits in a form that Debian's nats-server (2.9) does not
            // answer in.
            js.get_or_create_stream(stream::Config {
                name: format!("KV_{name}"),
                description: Some(format!(
                    "the minion keys of halite cluster {}",
                    self.cluster.settings.id
                )),
                subjects: vec![format!("$KV.{name}.>")],
                max_messages_per_subject: 1,
                allow_rollup: true,
                deny_delete: true,
                allow_direct: true,
                discard: stream::DiscardPolicy::New,
                storage: stream::StorageType::File,
                num_replicas: self.cluster.settings.replicas,
                ..Default::default()
            })
            .await
            .map_err(|err| failed(&err))?;
            js.get_key_value(&name).await.map_err(|err| failed(&err))
        })
        .await
    }

    /// Brings this master in line with the bucket as it joins: the cluster's keys and removals
    /// are filed here, then this master's keys the cluster has never seen go to it. Returns the
    /// bucket's revision read up to.
    async fn join(
        &self,
        kv: &kv::Store,
        mirror: &mut BTreeMap<KeyFile, String>,
        refiled: &impl Fn(&str),
    ) -> u64 {
        let (cluster, revision) = until_ok(|| self.read_bucket(kv)).await;
        let local = self.local().await;
        for ((state, id), pem) in &cluster {
            let here = local.get(&(*state, id.clone()));
            if here != pem.as_ref() {
                self.file(*state, id, pem.as_deref(), refiled).await;
            }
            if let Some(pem) = pem {
                mirror.insert((*state, id.clone()), pem.clone());
            }
        }
        let unseen: BTreeMap<KeyFile, String> = local
            .into_iter()
            .filter(|(file, _)| !cluster.contains_key(file))
            .collect();
        for (file, pem) in unseen {
            if put(kv, &file, &pem).await {
                mirror.insert(file, pem);
            }
        }
        revision
    }

    /// Every entry of the bucket (`None` for a removed key) and the revision they are as of.
    async fn read_bucket(
        &self,
        kv: &kv::Store,
    ) -> Result<(HashMap<KeyFile, Option<String>>, u64), String> {
        let failed = |err: &dyn std::fmt::Display| format!("cannot read the cluster's keys: {err}");
        let stream = format!("KV_{}", self.cluster.keys_bucket());
        let mut info = self
            .cluster
            .js
            .get_stream(&stream)
            .await
            .map_err(|err| failed(&err))?;
        let last = info
            .info()
            .await
            .map_err(|err| failed(&err))?
            .state
            .last_sequence;
        let mut entries = HashMap::new();
        if last == 0 {
            return Ok((entries, 0));
        }
        let mut watch = kv.watch_all().await.map_err(|err| failed(&err))?;
        while let Some(entry) = watch.next().await {
            let entry = entry.map_err(|err| failed(&err))?;
            if let Some(file) = key_file(&entry.key) {
                let pem = (entry.operation == kv::Operation::Put)
                    .then(|| String::from_utf8_lossy(&entry.value).into_owned());
                entries.insert(file, pem);
            }
            if entry.revision >= last {
                return Ok((entries, entry.revision));
            }
        }
        Err(failed(&"the watch ended"))
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

    /// Puts in the bucket what changed in this master's key files since `mirror`.
    async fn push(&self, kv: &kv::Store, mirror: &mut BTreeMap<KeyFile, String>) {
        let local = self.local().await;
        let gone: Vec<KeyFile> = mirror
            .keys()
            .filter(|file| !local.contains_key(*file))
            .cloned()
            .collect();
        for file in gone {
            match kv.delete(entry_key(&file)).await {
                Ok(()) => {
                    mirror.remove(&file);
                }
                Err(err) => tracing::warn!(
                    "cannot remove the key of {} from the cluster: {err}; retrying",
                    file.1
                ),
            }
        }
        for (file, pem) in local {
            if mirror.get(&file) != Some(&pem) && put(kv, &file, &pem).await {
                mirror.insert(file, pem);
            }
        }
    }

    /// Files another master's change here.
    async fn apply(
        &self,
        entry: &kv::Entry,
        mirror: &mut BTreeMap<KeyFile, String>,
        refiled: &impl Fn(&str),
    ) {
        let Some(file) = key_file(&entry.key) else {
            tracing::warn!(
                "ignored {:?} in the cluster's keys: not a key file",
                entry.key
            );
            return;
        };
        let pem = (entry.operation == kv::Operation::Put)
            .then(|| String::from_utf8_lossy(&entry.value).into_owned());
        if mirror.get(&file) == pem.as_ref() {
            return;
        }
        let (state, id) = &file;
        self.file(*state, id, pem.as_deref(), refiled).await;
        match pem {
            Some(pem) => mirror.insert(file, pem),
            None => mirror.remove(&file),
        };
    }

    /// Files `pem` as `id`'s key in `state`, or removes it (`None`).
    async fn file(&self, state: KeyState, id: &str, pem: Option<&str>, refiled: &impl Fn(&str)) {
        let (store, owned_id, pem) = (self.store.clone(), id.to_owned(), pem.map(str::to_owned));
        let filed = tokio::task::spawn_blocking(move || match pem {
            Some(pem) => store.replace(state, &owned_id, &pem),
            None => store.remove(state, &owned_id),
        })
        .await;
        match filed {
            Ok(Ok(())) => refiled(id),
            Ok(Err(err)) => tracing::error!("cannot file the cluster's key of {id}: {err}"),
            Err(err) => tracing::error!("cannot file the cluster's key of {id}: {err}"),
        }
    }
}

/// Puts one key file in the bucket; whether it is there.
async fn put(kv: &kv::Store, file: &KeyFile, pem: &str) -> bool {
    match kv.put(entry_key(file), Bytes::from(pem.to_owned())).await {
        Ok(_) => true,
        Err(err) => {
            tracing::warn!(
                "cannot give the cluster the key of {}: {err}; retrying",
                file.1
            );
            false
        }
    }
}

/// The bucket's key for a key file: `<state directory>.<id>`, the id's bytes other than ASCII
/// letters, digits, `-` and `_` written `=XX` (a bucket key takes few characters, and `.`
/// separates its parts).
fn entry_key((state, id): &KeyFile) -> String {
    let mut key = format!("{}.", state.dir_name());
    for byte in id.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' {
            key.push(char::from(byte));
        } else {
            key.push_str(&format!("={byte:02X}"));
        }
    }
    key
}

/// The key file a bucket key names, if it names one.
fn key_file(key: &str) -> Option<KeyFile> {
    let (dir, escaped) = key.split_once('.')?;
    let state = KeyState::ALL
        .into_iter()
        .find(|state| state.dir_name() == dir)?;
    let mut bytes = Vec::with_capacity(escaped.len());
    let mut rest = escaped.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        if byte == b'=' {
            let hex = std::str::from_utf8(tail.get(..2)?).ok()?;
            bytes.push(u8::from_str_radix(hex, 16).ok()?);
            rest = &tail[2..];
        } else {
            bytes.push(byte);
            rest = tail;
        }
    }
    let id = String::from_utf8(bytes).ok()?;
    id_problem(&id).is_none().then_some((state, id))
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
            "minions.",
        ] {
            assert_eq!(key_file(key), None, "{key}");
        }
    }
}
