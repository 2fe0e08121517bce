//! The master's store of minion public keys: one file per minion id in the directory of its
//! key's state.

use std::path::{Path, PathBuf};

use super::{KeyError, create_dir, io};
use crate::event::matching::ExprMatcher;
use crate::py::fnmatch::fnmatch;

/// The state of a minion's key: the directory its file lives in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum KeyState {
    /// `minions`: the minion may connect.
    Accepted,
    /// `minions_denied`: a key that arrived for an id that already has a different one.
    Denied,
    /// `minions_pre`: waiting for an operator.
    Pending,
    /// `minions_rejected`: refused by an operator.
    Rejected,
}

impl KeyState {
    /// Every state, in the order Salt lists them.
    pub const ALL: [KeyState; 4] = [
        KeyState::Accepted,
        KeyState::Denied,
        KeyState::Pending,
        KeyState::Rejected,
    ];

    /// The directory under `pki_dir`, also the key of `salt-key --out json`.
    pub fn dir_name(self) -> &'static str {
        match self {
            KeyState::Accepted => "minions",
            KeyState::Denied => "minions_denied",
            KeyState::Pending => "minions_pre",
            KeyState::Rejected => "minions_rejected",
        }
    }

    /// The heading `salt-key` prints above the keys in this state.
    pub fn heading(self) -> &'static str {
        match self {
            KeyState::Accepted => "Accepted Keys:",
            KeyState::Denied => "Denied Keys:",
            KeyState::Pending => "Unaccepted Keys:",
            KeyState::Rejected => "Rejected Keys:",
        }
    }
}

/// What the master decides when a minion presents its key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Admission {
    /// The key is accepted (it was, or `auto_accept`/the autosign list accepted it now).
    Accept,
    /// The key waits in `minions_pre`.
    Pend,
    /// The id's key was rejected by an operator.
    Reject,
    /// A different key is already known for this id; the new one is filed as denied.
    Deny,
    /// A different key arrived for a pending id that autosigning would have accepted; it is
    /// filed as denied (Salt's event for this case has no `act`).
    DenyAutosigned,
    /// A new key, but `max_pending_keys` keys already wait: not filed (Salt's `full`).
    Full,
}

impl Admission {
    /// Whether the minion may connect.
    pub fn accepted(self) -> bool {
        self == Admission::Accept
    }
}

/// How the master admits keys it has not seen.
#[derive(Debug, Clone, Default)]
pub struct AdmissionPolicy {
    /// `auto_accept`: accept every new key.
    pub auto_accept: bool,
    /// Entries of `autosign_file`: ids accepted on sight.
    pub autosign: Vec<AutosignEntry>,
    /// `max_pending_keys`: new keys beyond this many pending are not filed (0: no limit).
    pub max_pending: usize,
}

/// The keys under a master's `pki_dir`.
#[derive(Debug, Clone)]
pub struct KeyStore {
    pki_dir: PathBuf,
    /// One admission at a time: counting the pending keys and filing a new one is one step.
    admitting: std::sync::Arc<std::sync::Mutex<()>>,
}

impl KeyStore {
    /// The store in `pki_dir`; missing directories are created (`pki_dir` 0700, the state
    /// directories 0755, as Salt's).
    pub fn open(pki_dir: &Path) -> Result<Self, KeyError> {
        create_dir(pki_dir, 0o700)?;
        for state in KeyState::ALL {
            create_dir(&pki_dir.join(state.dir_name()), 0o755)?;
        }
        Ok(Self {
            pki_dir: pki_dir.to_path_buf(),
            admitting: std::sync::Arc::default(),
        })
    }

    /// The master's `pki_dir`.
    pub fn pki_dir(&self) -> &Path {
        &self.pki_dir
    }

    /// Where `id`'s key in `state` is filed.
    pub fn path(&self, state: KeyState, id: &str) -> PathBuf {
        self.pki_dir.join(state.dir_name()).join(id)
    }

    /// The ids with a key in `state`, sorted.
    pub fn ids(&self, state: KeyState) -> Result<Vec<String>, KeyError> {
        let dir = self.pki_dir.join(state.dir_name());
        let entries = std::fs::read_dir(&dir).map_err(io("cannot list", &dir))?;
        let entries = entries
            .collect::<Result<Vec<_>, _>>()
            .map_err(io("cannot list", &dir))?;
        let mut ids: Vec<String> = entries
            .into_iter()
            .filter(|entry| entry.file_type().is_ok_and(|kind| kind.is_file()))
            .filter_map(|entry| entry.file_name().into_string().ok())
            .filter(|name| !name.starts_with('.'))
            .collect();
        ids.sort();
        Ok(ids)
    }

    /// The public key filed for `id` in `state`.
    pub fn key(&self, state: KeyState, id: &str) -> Option<String> {
        if !valid_id(id) {
            return None;
        }
        std::fs::read_to_string(self.path(state, id)).ok()
    }

    /// The ids matching any of `globs` (shell globs, `*` for all), state by state in the order
    /// of `states`, each state's ids sorted; states without a match are left out. A state
    /// directory that cannot be read is an error naming it, not an empty list.
    pub fn matching(
        &self,
        globs: &[&str],
        states: &[KeyState],
    ) -> Result<Vec<(KeyState, Vec<String>)>, KeyError> {
        let mut found = Vec::new();
        for &state in states {
            let ids: Vec<String> = self
                .ids(state)?
                .into_iter()
                .filter(|id| globs.iter().any(|glob| fnmatch(id, glob)))
                .collect();
            if !ids.is_empty() {
                found.push((state, ids));
            }
        }
        Ok(found)
    }

    /// Moves `id`'s key from `from` to `to`. Accepting never replaces another accepted key: the
    /// minion holding it would be locked out by whoever presented this one (an impostor's key
    /// waits as denied); the operator deletes the accepted key first.
    pub fn change(&self, id: &str, from: KeyState, to: KeyState) -> Result<(), KeyError> {
        let source = self.path(from, id);
        let target = self.path(to, id);
        if to != KeyState::Accepted || from == KeyState::Accepted {
            return std::fs::rename(&source, &target).map_err(io("cannot move", &source));
        }
        // A hard link is made only where no file is: no window for replacing one.
        match std::fs::hard_link(&source, &target) {
            Ok(()) => std::fs::remove_file(&source).map_err(io("cannot move", &source)),
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(KeyError::AcceptedExists {
                    path: source,
                    id: id.to_owned(),
                })
            }
            Err(err) => Err(io("cannot move", &source)(err)),
        }
    }

    /// Deletes `id`'s key in `state`.
    pub fn delete(&self, id: &str, state: KeyState) -> Result<(), KeyError> {
        let path = self.path(state, id);
        std::fs::remove_file(&path).map_err(io("cannot delete", &path))
    }

    fn file(&self, state: KeyState, id: &str, pem_text: &str) -> Result<(), KeyError> {
        let path = self.path(state, id);
        // Salt files the key exactly as the minion sent it, without a final newline.
        std::fs::write(&path, pem_text.trim_end()).map_err(io("cannot write", &path))
    }

    /// Every key filed, by state and id: what the cluster's masters keep alike. A key moved
    /// once while this reads is in at least one of its places (the states are read in one
    /// order, then in the other), never in none, which would make it look removed. A file that is
    /// there but cannot be read as text is there with no key.
    pub fn all(&self) -> Result<std::collections::BTreeMap<(KeyState, String), String>, KeyError> {
        let mut all = std::collections::BTreeMap::new();
        for state in KeyState::ALL
            .into_iter()
            .chain(KeyState::ALL.into_iter().rev())
        {
            for id in self.ids(state)? {
                let path = self.path(state, &id);
                let text = match std::fs::read(&path) {
                    Ok(bytes) => String::from_utf8(bytes).unwrap_or_default(),
                    // Gone since it was listed: it is not filed.
                    Err(err) if err.kind() == std::io::ErrorKind::NotFound => continue,
                    Err(err) => {
                        tracing::warn!("cannot read {}: {err}", path.display());
                        String::new()
                    }
                };
                all.insert((state, id), text);
            }
        }
        Ok(all)
    }

    /// Files `pem_text` as `id`'s key in `state`, replacing the one there (the cluster decided):
    /// written aside and renamed, so that no reader sees half a key.
    pub fn replace(&self, state: KeyState, id: &str, pem_text: &str) -> Result<(), KeyError> {
        if !valid_id(id) {
            return Err(KeyError::InvalidId(id.to_owned()));
        }
        use std::io::Write;
        let path = self.path(state, id);
        let dir = self.pki_dir.join(state.dir_name());
        // A name of its own, short whatever the id's length.
        let mut aside = tempfile::Builder::new()
            .prefix(".")
            .suffix(".new")
            .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o644))
            .tempfile_in(&dir)
            .map_err(io("cannot write in", &dir))?;
        aside
            .write_all(pem_text.trim_end().as_bytes())
            .map_err(io("cannot write in", &dir))?;
        aside
            .persist(&path)
            .map_err(|err| io("cannot write", &path)(err.error))?;
        Ok(())
    }

    /// Removes `id`'s key in `state` if one is filed.
    pub fn remove(&self, state: KeyState, id: &str) -> Result<(), KeyError> {
        if !valid_id(id) {
            return Err(KeyError::InvalidId(id.to_owned()));
        }
        let path = self.path(state, id);
        match std::fs::remove_file(&path) {
            Err(err) if err.kind() != std::io::ErrorKind::NotFound => {
                Err(io("cannot delete", &path)(err))
            }
            _ => Ok(()),
        }
    }

    /// Files a key for an id that has none in `state`; false when one appeared meanwhile (two
    /// peers presenting the same id at once: the first one's key stays).
    fn file_new(&self, state: KeyState, id: &str, pem_text: &str) -> Result<bool, KeyError> {
        use std::io::Write;
        let path = self.path(state, id);
        let file = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&path);
        match file {
            Ok(mut file) => {
                file.write_all(pem_text.trim_end().as_bytes())
                    .map_err(io("cannot write", &path))?;
                Ok(true)
            }
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => Ok(false),
            Err(err) => Err(io("cannot write", &path)(err)),
        }
    }

    /// Whether the key filed for `id` in `state` is `pem_text`'s, or `None` if none is filed.
    pub fn holds(&self, state: KeyState, id: &str, pem_text: &str) -> Option<bool> {
        self.key(state, id)
            .map(|filed| super::public_der(&filed) == super::public_der(pem_text))
    }

    /// Decides what happens to a minion presenting `pem_text` as `id`, filing the key as Salt's
    /// master does: a known key passes as it is; a different key for a known id is filed under
    /// `minions_denied`; a new key is accepted by policy or left pending.
    ///
    /// Unlike Salt, a key presented for an id never displaces the key already filed for it: the
    /// accepted key is checked before the rejected one, so rejecting an impostor's key (filed as
    /// denied) does not lock out the minion whose key is accepted, and of two peers presenting a
    /// new id at once, the second is denied instead of overwriting the first one's key.
    pub fn admit(
        &self,
        id: &str,
        pem_text: &str,
        policy: &AdmissionPolicy,
    ) -> Result<Admission, KeyError> {
        let _one_at_a_time = self.admitting.lock().unwrap_or_else(|e| e.into_inner());
        let same = |state| self.holds(state, id, pem_text);
        let accepted = same(KeyState::Accepted);
        if accepted == Some(true) {
            return Ok(Admission::Accept);
        }
        if same(KeyState::Rejected).is_some() {
            return Ok(Admission::Reject);
        }
        if accepted == Some(false) {
            self.file(KeyState::Denied, id, pem_text)?;
            return Ok(Admission::Deny);
        }
        let autosigned =
            policy.auto_accept || policy.autosign.iter().any(|entry| entry.matches(id));
        match same(KeyState::Pending) {
            Some(false) if autosigned => {
                self.file(KeyState::Denied, id, pem_text)?;
                Ok(Admission::DenyAutosigned)
            }
            Some(false) => {
                self.file(KeyState::Denied, id, pem_text)?;
                Ok(Admission::Deny)
            }
            Some(true) if autosigned => {
                self.change(id, KeyState::Pending, KeyState::Accepted)?;
                Ok(Admission::Accept)
            }
            Some(true) => Ok(Admission::Pend),
            None if autosigned => {
                if self.file_new(KeyState::Accepted, id, pem_text)? {
                    Ok(Admission::Accept)
                } else {
                    self.admit(id, pem_text, policy)
                }
            }
            None => {
                if policy.max_pending > 0
                    && self.ids(KeyState::Pending)?.len() >= policy.max_pending
                {
                    return Ok(Admission::Full);
                }
                if self.file_new(KeyState::Pending, id, pem_text)? {
                    Ok(Admission::Pend)
                } else {
                    self.admit(id, pem_text, policy)
                }
            }
        }
    }
}

/// Why `id` cannot be a minion id, if it cannot: it must name a key file, and must not read as a
/// pattern where `salt-key`, `wheel.key.*` and targets take globs.
pub fn id_problem(id: &str) -> Option<&'static str> {
    if !valid_id(id) {
        return Some(
            "an id may not be empty, '.' or '..', or contain '/', '\\' or control characters",
        );
    }
    if id.len() > MAX_ID_BYTES {
        return Some("an id may be at most 255 bytes long");
    }
    if id.starts_with('.') {
        return Some("an id may not start with '.', which hides its key file from salt-key");
    }
    if crate::event::tag::has_unprintable(id) {
        return Some(
            "an id may not contain format or separator characters (zero-width, bidirectional), which make one id look like another",
        );
    }
    if id.contains(['*', '?', '[', ']']) {
        return Some(
            "an id may not contain '*', '?', '[' or ']', which salt-key and targets read as a pattern matching other minions",
        );
    }
    None
}

/// The longest id: a key file's name.
const MAX_ID_BYTES: usize = 255;

/// Whether `id` can name a key file: not empty, no path separators, not `.` or `..`, no
/// control characters.
pub fn valid_id(id: &str) -> bool {
    !id.is_empty()
        && id != "."
        && id != ".."
        && !id.contains(['/', '\\'])
        && !id.chars().any(char::is_control)
}

/// One line of an `autosign_file`: it matches an id as a shell glob or as a Python regular
/// expression spanning the whole id, as Salt tries both (Salt anchors only the last of `|`
/// alternatives at the end; here every one must span the id).
#[derive(Debug, Clone)]
pub struct AutosignEntry(ExprMatcher);

impl AutosignEntry {
    /// An entry for `line`.
    pub fn new(line: &str) -> Self {
        Self(ExprMatcher::whole(line))
    }

    /// Whether `id` is allowed by this entry.
    pub fn matches(&self, id: &str) -> bool {
        self.0.matches(id)
    }
}

/// Reads an `autosign_file`: one entry per line; blank lines and `#` comments are skipped. A
/// file anyone may write is ignored with a warning, as Salt ignores it.
pub fn read_autosign(path: &Path) -> Vec<AutosignEntry> {
    use std::os::unix::fs::PermissionsExt;
    let Ok(metadata) = std::fs::metadata(path) else {
        return Vec::new();
    };
    if metadata.permissions().mode() & 0o002 != 0 {
        tracing::warn!("Wrong permissions for {}, ignoring content", path.display());
        return Vec::new();
    }
    std::fs::read_to_string(path)
        .map(|text| {
            text.lines()
                .map(str::trim)
                .filter(|line| !line.is_empty() && !line.starts_with('#'))
                .map(AutosignEntry::new)
                .collect()
        })
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key(n: u8) -> String {
        super::super::public_pem(&[n; 44])
    }

    #[test]
    fn admission_follows_salts_rules() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::open(dir.path()).unwrap();
        let manual = AdmissionPolicy::default();
        assert_eq!(
            store.admit("web1", &key(1), &manual).unwrap(),
            Admission::Pend
        );
        assert_eq!(store.ids(KeyState::Pending).unwrap(), ["web1"]);
        assert_eq!(
            store.admit("web1", &key(1), &manual).unwrap(),
            Admission::Pend
        );
        assert_eq!(
            store.admit("web1", &key(2), &manual).unwrap(),
            Admission::Deny
        );
        store
            .change("web1", KeyState::Pending, KeyState::Accepted)
            .unwrap();
        assert_eq!(
            store.admit("web1", &key(1), &manual).unwrap(),
            Admission::Accept
        );
        assert_eq!(
            store.admit("web1", &key(3), &manual).unwrap(),
            Admission::Deny
        );
        store
            .change("web1", KeyState::Accepted, KeyState::Rejected)
            .unwrap();
        assert_eq!(
            store.admit("web1", &key(1), &manual).unwrap(),
            Admission::Reject
        );
        let autosign = AdmissionPolicy {
            auto_accept: false,
            autosign: vec![AutosignEntry::new("db*"), AutosignEntry::new("cache[0-9]+")],
            max_pending: 0,
        };
        assert_eq!(
            store.admit("db7", &key(4), &autosign).unwrap(),
            Admission::Accept
        );
        assert_eq!(
            store.admit("app1", &key(5), &autosign).unwrap(),
            Admission::Pend
        );
        assert_eq!(
            store.admit("cache12", &key(6), &autosign).unwrap(),
            Admission::Accept
        );
        let ids = |ids: &[&str]| ids.iter().map(|id| id.to_string()).collect::<Vec<_>>();
        assert_eq!(
            store.matching(&["*"], &KeyState::ALL).unwrap(),
            [
                (KeyState::Accepted, ids(&["cache12", "db7"])),
                (KeyState::Denied, ids(&["web1"])),
                (KeyState::Pending, ids(&["app1"])),
                (KeyState::Rejected, ids(&["web1"])),
            ]
        );
        assert_eq!(
            store
                .matching(&["db*", "c*", "*7"], &[KeyState::Accepted])
                .unwrap(),
            [(KeyState::Accepted, ids(&["cache12", "db7"]))]
        );
        assert!(!valid_id("../etc"));
        assert!(store.key(KeyState::Accepted, "../x").is_none());
        assert!(id_problem("web*").is_some_and(|why| why.contains("'*'")));
        assert!(id_problem("web[1]").is_some());
        assert_eq!(id_problem("web-1.example.com"), None);
    }

    #[test]
    fn every_key_is_listed_and_a_file_that_is_no_text_has_none() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::open(dir.path()).unwrap();
        let long = "x".repeat(250);
        store.replace(KeyState::Accepted, "web1", &key(1)).unwrap();
        store.replace(KeyState::Pending, &long, &key(2)).unwrap();
        std::fs::write(dir.path().join("minions_rejected/odd"), [0xff, 0xfe]).unwrap();
        let filed =
            |state, id: &str, pem: &str| ((state, id.to_owned()), pem.trim_end().to_owned());
        let wanted = std::collections::BTreeMap::from([
            filed(KeyState::Accepted, "web1", &key(1)),
            filed(KeyState::Pending, &long, &key(2)),
            filed(KeyState::Rejected, "odd", ""),
        ]);
        assert_eq!(store.all().unwrap(), wanted);
        // Removing what is not there is done already.
        store.remove(KeyState::Accepted, "web1").unwrap();
        store.remove(KeyState::Accepted, "web1").unwrap();
        assert_eq!(store.all().unwrap().len(), 2);
        std::fs::remove_dir(dir.path().join("minions_denied")).unwrap();
        assert!(
            store.all().is_err(),
            "a state that cannot be listed is no empty state"
        );
    }

    #[test]
    fn an_impostors_key_never_displaces_the_filed_one() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::open(dir.path()).unwrap();
        let manual = AdmissionPolicy::default();
        store.admit("db1", &key(1), &manual).unwrap();
        store
            .change("db1", KeyState::Pending, KeyState::Accepted)
            .unwrap();
        assert_eq!(
            store.admit("db1", &key(2), &manual).unwrap(),
            Admission::Deny
        );
        // Accepting the impostor's key does not replace the accepted one.
        let err = store
            .change("db1", KeyState::Denied, KeyState::Accepted)
            .unwrap_err();
        assert!(
            err.to_string().contains("already has another accepted key"),
            "{err}"
        );
        assert_eq!(store.key(KeyState::Accepted, "db1"), Some(key(1)));
        // The operator rejects the impostor's (denied) key: the real minion still gets in.
        store
            .change("db1", KeyState::Denied, KeyState::Rejected)
            .unwrap();
        assert_eq!(
            store.admit("db1", &key(1), &manual).unwrap(),
            Admission::Accept
        );
        assert_eq!(
            store.admit("db1", &key(2), &manual).unwrap(),
            Admission::Reject
        );
        assert!(!store.file_new(KeyState::Accepted, "db1", &key(3)).unwrap());
        assert_eq!(store.key(KeyState::Accepted, "db1"), Some(key(1)));
    }

    #[test]
    fn new_keys_beyond_max_pending_keys_are_not_filed() {
        let dir = tempfile::tempdir().unwrap();
        let store = KeyStore::open(dir.path()).unwrap();
        let policy = AdmissionPolicy {
            max_pending: 2,
            ..AdmissionPolicy::default()
        };
        assert_eq!(store.admit("a", &key(1), &policy).unwrap(), Admission::Pend);
        assert_eq!(store.admit("b", &key(2), &policy).unwrap(), Admission::Pend);
        assert_eq!(store.admit("c", &key(3), &policy).unwrap(), Admission::Full);
        assert_eq!(store.admit("a", &key(1), &policy).unwrap(), Admission::Pend);
        assert_eq!(store.ids(KeyState::Pending).unwrap(), ["a", "b"]);
    }
}
