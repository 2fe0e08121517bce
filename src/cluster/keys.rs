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
use super::bucket::{BucketWatch, Change, escape_id, stream_state, unescape_id};
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

/// What the bucket holds of each key file as this master knows it. Its revisions are saved in
/// the `pki_dir` (`cluster_keys.json`), so that a restarted master tells a key changed here
/// while it was stopped (`salt-key` needs no master) from one the cluster changed meanwhile.
#[derive(Debug, Default)]
struct Mirror {
    files: BTreeMap<KeyFile, String>,
    /// The bucket's revision of each entry as this master last put, removed or filed it: a
    /// change at or below it is one this master has (its own, coming back) or has overtaken.
    revisions: HashMap<String, u64>,
    /// Changed since it was last saved.
    dirty: bool,
}

impl Mirror {
    /// Whether `change` is newer than what this master has of its entry.
    fn is_news(&self, change: &Change) -> bool {
        change.revision > self.revisions.get(&change.key).copied().unwrap_or_default()
    }

    /// The bucket holds `pem` (`None`: removed) for `file` as of `revision`, and so does this
    /// master's key file.
    fn holds(&mut self, file: &KeyFile, pem: Option<&String>, revision: u64) {
        match pem {
            Some(pem) => self.files.insert(file.clone(), pem.clone()),
            None => self.files.remove(file),
        };
        self.revisions.insert(entry_key(file), revision);
        self.dirty = true;
    }

    /// What the bucket holds of `file` is unknown: a publish failed, perhaps after it was
    /// stored. The next push publishes this master's state of it, whatever that is (no key
    /// file equals the empty text), and so outranks what may have been stored.
    fn unsure(&mut self, file: &KeyFile) {
        self.files.insert(file.clone(), String::new());
    }
}

/// How often the mirror is saved at most.
const SAVE_EVERY: Duration = Duration::from_secs(1);

/// How long the bucket's entries may keep this master waiting as it joins.
const JOIN_QUIET: Duration = Duration::from_secs(10);

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
        let mut changes = BucketWatch::latest(&self.cluster, &kv);
        let joined = self.join(&kv, &mut changes, &refiled);
        let Some(mut mirror) = stop.run_until_cancelled(joined).await else {
            return;
        };
        let mut scan = tokio::time::interval(SCAN_EVERY);
        let mut save = tokio::time::interval(SAVE_EVERY);
        // At most one save a second, however long the mirror stayed clean.
        save.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        // Saving failed last time: said once, and again when it works.
        let mut save_failing = false;
        let mut failing = false;
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                () = changed.notified() => tokio::time::sleep(GATHER).await,
                _ = scan.tick() => {}
                _ = save.tick(), if mirror.dirty => {
                    self.save(&mut mirror, &mut save_failing).await;
                    continue;
                }
                change = changes.next() => {
                    self.apply(change, &mut mirror, &refiled).await;
                    continue;
                }
            }
            // What did not go is tried again soon, not at the next scan.
            let Some(pushed) = stop.run_until_cancelled(self.push(&kv, &mut mirror)).await else {
                break;
            };
            match pushed {
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
        self.save(&mut mirror, &mut save_failing).await;
    }

    /// Brings this master in line with the bucket as it joins. A key file whose entry the
    /// bucket does not have, or has as it was when this master last saved its mirror (so any
    /// difference was made here while it was stopped), stays as it is and goes to the cluster
    /// with the first push; the others follow the cluster, removals included.
    async fn join(
        &self,
        kv: &kv::Store,
        changes: &mut BucketWatch,
        refiled: &impl Fn(&str),
    ) -> Mirror {
        let cluster = self.read_bucket(kv, changes).await;
        let local = until_ok(|| self.local()).await;
        let saved = self.saved();
        let mut mirror = Mirror::default();
        for (file, (theirs, revision)) in &cluster {
            let here = local.get(file);
            let changed_here = saved.get(&entry_key(file)) == Some(revision);
            if changed_here || here == theirs.as_ref() {
                mirror.holds(file, theirs.as_ref(), *revision);
                continue;
            }
            let (state, id) = file;
            if self.file(*state, id, theirs.as_deref(), refiled).await {
                mirror.holds(file, theirs.as_ref(), *revision);
            } else {
                // Not filed: the first push must not give the cluster what is here instead.
                mirror.holds(file, here, 0);
            }
        }
        mirror
    }

    /// Every key file the bucket has an entry for as this master joins: its key (`None`:
    /// removed) and the entry's revision. Read to the end, however long NATS takes: a key the
    /// bucket says was removed must not come back from this master's files for want of
    /// reading it.
    async fn read_bucket(
        &self,
        kv: &kv::Store,
        changes: &mut BucketWatch,
    ) -> HashMap<KeyFile, (Option<String>, u64)> {
        let read_state = || {
            until_ok(|| async {
                stream_state(kv)
                    .await
                    .map_err(|err| format!("cannot read the cluster's keys: {err}"))
            })
        };
        let mut entries = HashMap::new();
        let waiting = std::time::Instant::now();
        let mut state = read_state().await;
        // Up to the last entry there was when this began (the one numbered last_sequence, or
        // a later one should a change have overtaken it), or none pending.
        while state.messages > 0 {
            match tokio::time::timeout(JOIN_QUIET, changes.next()).await {
                Ok(change) => {
                    if let Some((file, pem)) = cluster_key(&change) {
                        entries.insert(file, (pem, change.revision));
                    }
                    if change.pending == 0 || change.revision >= state.last_sequence {
                        break;
                    }
                }
                Err(_) => {
                    tracing::warn!(
                        "{} of the cluster's keys have come in {} s, more are due; this master takes them before it shares its own",
                        entries.len(),
                        waiting.elapsed().as_secs()
                    );
                    state = read_state().await;
                }
            }
        }
        entries
    }

    /// This master's key files.
    async fn local(&self) -> Result<BTreeMap<KeyFile, String>, String> {
        let store = self.store.clone();
        match tokio::task::spawn_blocking(move || store.all()).await {
            Ok(Ok(all)) => Ok(all),
            Ok(Err(err)) => Err(err.to_string()),
            Err(err) => Err(format!("reading the key files failed: {err}")),
        }
    }

    /// Puts in the bucket what changed in this master's key files since `mirror`, or says what
    /// did not go (and stops there: NATS is away). A key file that cannot be read as a key
    /// neither goes nor counts as removed.
    async fn push(&self, kv: &kv::Store, mirror: &mut Mirror) -> Result<(), String> {
        let local = self.local().await?;
        // Puts first: a key moved (accepted) is in its new place on the other masters before
        // it leaves its old one, so a minion asking meanwhile is never taken for a new one.
        for (file, pem) in &local {
            let unchanged = mirror.files.get(file) == Some(pem);
            if unchanged || !is_key(pem) || crate::keys::id_problem(&file.1).is_some() {
                continue;
            }
            match kv.put(entry_key(file), Bytes::from(pem.clone())).await {
                Ok(revision) => mirror.holds(file, Some(pem), revision),
                Err(err) => {
                    mirror.unsure(file);
                    return Err(format!("cannot give it the key of {}: {err}", file.1));
                }
            }
        }
        let gone: Vec<KeyFile> = mirror
            .files
            .keys()
            .filter(|file| !local.contains_key(*file))
            .cloned()
            .collect();
        for file in gone {
            match self.cluster.remove_entry(kv, &entry_key(&file)).await {
                Ok(revision) => mirror.holds(&file, None, revision),
                Err(err) => {
                    mirror.unsure(&file);
                    return Err(format!("cannot remove the key of {}: {err}", file.1));
                }
            }
        }
        Ok(())
    }

    /// Files another master's change here.
    async fn apply(&self, change: Change, mirror: &mut Mirror, refiled: &impl Fn(&str)) {
        if !mirror.is_news(&change) {
            return;
        }
        let Some((file, pem)) = cluster_key(&change) else {
            return;
        };
        let (state, id) = &file;
        // Not filed, the revision stays unknown: the next start takes the cluster's key.
        if mirror.files.get(&file) == pem.as_ref()
            || self.file(*state, id, pem.as_deref(), refiled).await
        {
            mirror.holds(&file, pem.as_ref(), change.revision);
        }
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
        let problem = match filed {
            Ok(Ok(())) => {
                refiled(id);
                return true;
            }
            Ok(Err(err)) => err.to_string(),
            Err(err) => err.to_string(),
        };
        tracing::error!("cannot file the cluster's key of {id}: {problem}");
        false
    }

    fn mirror_path(&self) -> std::path::PathBuf {
        self.store.pki_dir().join("cluster_keys.json")
    }

    /// The revisions saved when this master last ran in the cluster (none if it never did).
    fn saved(&self) -> HashMap<String, u64> {
        std::fs::read(self.mirror_path())
            .ok()
            .and_then(|text| serde_json::from_slice(&text).ok())
            .unwrap_or_default()
    }

    /// Saves the revisions of `mirror` (on the blocking pool). A mirror that cannot be saved is
    /// removed, so that the next start takes the cluster's keys over this master's rather than
    /// an old mirror's idea of what changed here.
    async fn save(&self, mirror: &mut Mirror, failing: &mut bool) {
        let revisions = mirror.revisions.clone();
        let path = self.mirror_path();
        let target = path.clone();
        let written = tokio::task::spawn_blocking(move || {
            let aside = target.with_extension("json.new");
            let written = serde_json::to_vec(&revisions)
                .map_err(std::io::Error::other)
                .and_then(|text| std::fs::write(&aside, text))
                .and_then(|()| std::fs::rename(&aside, &target));
            if written.is_err() {
                let _ = std::fs::remove_file(&target);
            }
            written
        })
        .await
        .unwrap_or_else(|err| Err(std::io::Error::other(err)));
        mirror.dirty = false;
        match written {
            Ok(()) if std::mem::take(failing) => {
                tracing::info!(
                    "saved what the cluster's keys are in {} again",
                    path.display()
                )
            }
            Ok(()) => {}
            Err(err) if !std::mem::replace(failing, true) => tracing::warn!(
                "cannot save what the cluster's keys are in {}: {err}; until it can, key changes made here while this master is stopped give way to the cluster's",
                path.display()
            ),
            Err(_) => {}
        }
    }
}

/// The key file a change of the bucket names and its key (`None`: removed), unless the change
/// names no key file or holds no key.
fn cluster_key(change: &Change) -> Option<(KeyFile, Option<String>)> {
    let Some(file) = key_file(&change.key) else {
        tracing::warn!(
            "ignored {:?} in the cluster's keys: not a key file",
            change.key
        );
        return None;
    };
    let pem = match &change.value {
        None => None,
        Some(value) => match std::str::from_utf8(value) {
            Ok(pem) if is_key(pem) => Some(pem.to_owned()),
            _ => {
                tracing::warn!("ignored the cluster's key of {}: not a public key", file.1);
                return None;
            }
        },
    };
    Some((file, pem))
}

fn is_key(pem: &str) -> bool {
    crate::keys::public_der(pem).is_some()
}

fn state_named(dir: &str) -> Option<KeyState> {
    KeyState::ALL
        .into_iter()
        .find(|state| state.dir_name() == dir)
}

/// The bucket's key for a key file: `<state directory>.<escaped id>`.
fn entry_key((state, id): &KeyFile) -> String {
    format!("{}.{}", state.dir_name(), escape_id(id))
}

/// The key file a bucket key names, if it names one.
fn key_file(key: &str) -> Option<KeyFile> {
    let (dir, escaped) = key.split_once('.')?;
    Some((state_named(dir)?, unescape_id(escaped)?))
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
    fn a_change_this_master_has_overtaken_is_no_news() {
        let change = |key: &str, revision| Change {
            key: key.to_owned(),
            value: None,
            revision,
            pending: 0,
        };
        let mut mirror = Mirror::default();
        // This master put minions.web1 as revision 7: its echo, and anything older, is not news.
        let web1 = (KeyState::Accepted, "web1".to_owned());
        mirror.holds(&web1, Some(&"pem".to_owned()), 7);
        assert!(!mirror.is_news(&change("minions.web1", 5)));
        assert!(!mirror.is_news(&change("minions.web1", 7)));
        assert!(mirror.is_news(&change("minions.web1", 9)));
        assert!(mirror.is_news(&change("minions_pre.web1", 1)));
        // Removed as revision 9: what came between is overtaken.
        mirror.holds(&web1, None, 9);
        assert!(!mirror.is_news(&change("minions.web1", 8)));
        assert!(mirror.files.is_empty());
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
