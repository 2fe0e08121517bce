//! The file server: the files under `file_roots` (and `pillar_roots`), per environment, named by
//! `salt://` URLs, and the seam through which a minion reads them.
//!
//! [`Roots`] looks files up as Salt's `roots` backend does: each directory of the environment in
//! turn, the first that holds the path wins. A [`FileSource`] is where a minion's file cache
//! reads from: the roots themselves (`salt-call --local`) or the master over the link. Every
//! path is checked by [`clean_path`] before it touches a disk, and a found file must lie inside
//! its root once symlinks are resolved: Salt shipped path traversal in its file server more than
//! once (CVE-2020-11652, CVE-2024-22232).

use std::collections::HashMap;
use std::future::Future;
use std::path::{Path, PathBuf};
use std::pin::Pin;
use std::sync::{Arc, Mutex};

use crate::config::{Config, ConfigError, file_hexdigest};
use crate::event::Value;

/// What a [`FileSource`] call returns, later.
pub type Fetching<'a, T> = Pin<Box<dyn Future<Output = Result<T, FileError>> + Send + 'a>>;

/// Why a file could not be served.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FileError {
    /// A path that would leave its root: `..`, absolute, a NUL byte, or a symlink pointing out.
    #[error(
        "{path} leaves the file roots: a salt:// path is relative to its environment's roots and may not hold '..', start with '/' or lead through a symlink outside them"
    )]
    Traversal {
        /// The path as asked for.
        path: String,
    },
    /// No root of the environment holds the path.
    #[error("file {path} not found in saltenv {saltenv}")]
    NotFound {
        /// The path as asked for.
        path: String,
        /// The environment searched.
        saltenv: String,
    },
    /// The environment is not configured.
    #[error("saltenv {0} is not configured in file_roots")]
    UnknownEnv(String),
    /// A URL that is not `salt://path[?saltenv=env]`.
    #[error("{url} is not a salt:// URL: use salt://path or salt://path?saltenv=env")]
    BadUrl {
        /// The URL.
        url: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {reason}")]
    Io {
        /// The file.
        path: String,
        /// The system's complaint.
        reason: String,
    },
    /// The master could not be asked (no link, or it did not answer).
    #[error("the master did not serve {what}: {reason}")]
    Unreachable {
        /// What was asked for.
        what: String,
        /// Why not.
        reason: String,
    },
}

/// A file's hash as Salt's file server reports it (`hsum`, `hash_type`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileHash {
    /// Hex digest.
    pub hsum: String,
    /// `hash_type` it was made with (`sha256` by default).
    pub hash_type: String,
}

/// One piece of a served file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Chunk {
    /// The bytes from the asked offset, at most the asked length; empty at the end.
    pub data: Vec<u8>,
    /// The file's hash, so the reader can verify what it put together.
    pub hash: FileHash,
    /// The file's permission bits, which `file.managed` keeps with `mode: keep`.
    pub mode: u32,
}

/// Where a minion's file cache reads master files from.
pub trait FileSource: Send + Sync {
    /// `len` bytes of `path` in `saltenv` from `offset`.
    fn read<'a>(
        &'a self,
        saltenv: &'a str,
        path: &'a str,
        offset: u64,
        len: u64,
    ) -> Fetching<'a, Chunk>;
    /// The hash of `path` in `saltenv`.
    fn hash<'a>(&'a self, saltenv: &'a str, path: &'a str) -> Fetching<'a, FileHash>;
    /// Every file of `saltenv`, relative, sorted (`cp.list_master`).
    fn list_files<'a>(&'a self, saltenv: &'a str) -> Fetching<'a, Vec<String>>;
    /// Every directory of `saltenv`, relative, sorted (`cp.list_master_dirs`).
    fn list_dirs<'a>(&'a self, saltenv: &'a str) -> Fetching<'a, Vec<String>>;
    /// The environments, `base` first.
    fn envs(&self) -> Fetching<'_, Vec<String>>;
}

/// A `salt://` URL taken apart.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SaltUrl {
    /// The path, cleaned by [`clean_path`].
    pub path: String,
    /// `?saltenv=` when given.
    pub saltenv: Option<String>,
}

impl SaltUrl {
    /// Parses `salt://path[?saltenv=env]`, refusing a path that leaves its root.
    pub fn parse(url: &str) -> Result<Self, FileError> {
        let bad = || FileError::BadUrl {
            url: url.to_owned(),
        };
        let rest = url.strip_prefix("salt://").ok_or_else(bad)?;
        let (path, query) = match rest.split_once('?') {
            Some((path, query)) => (path, Some(query)),
            None => (rest, None),
        };
        let saltenv = match query {
            None => None,
            Some(query) => Some(
                query
                    .split('&')
                    .find_map(|pair| pair.strip_prefix("saltenv="))
                    .filter(|env| !env.is_empty())
                    .ok_or_else(bad)?
                    .to_owned(),
            ),
        };
        Ok(Self {
            path: clean_path(path)?,
            saltenv,
        })
    }
}

/// `path` made relative and normal (`a//b/./c` → `a/b/c`), or [`FileError::Traversal`] when
/// it is absolute, holds `..` or a NUL byte: such a path is refused, not repaired.
pub fn clean_path(path: &str) -> Result<String, FileError> {
    let refused = || FileError::Traversal {
        path: path.to_owned(),
    };
    if path.starts_with('/') || path.contains('\0') || path.contains('\\') {
        return Err(refused());
    }
    let mut parts = Vec::new();
    for part in path.split('/') {
        match part {
            "" | "." => {}
            ".." => return Err(refused()),
            part => parts.push(part),
        }
    }
    if parts.is_empty() {
        return Err(refused());
    }
    Ok(parts.join("/"))
}

/// The directories of each environment, `base` first, then as configured.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Roots {
    envs: Vec<(String, Vec<PathBuf>)>,
}

impl Roots {
    /// Roots from `(environment, directories)` pairs; `base` is moved first.
    pub fn new(mut envs: Vec<(String, Vec<PathBuf>)>) -> Self {
        envs.sort_by_key(|(env, _)| env != "base");
        Self { envs }
    }

    /// `file_roots`, Salt's default `base: [/srv/salt, /srv/spm/salt]`.
    pub fn file_roots(config: &Config) -> Result<Self, ConfigError> {
        Self::from_config(
            config,
            "file_roots",
            &[("base", &["/srv/salt", "/srv/spm/salt"])],
        )
    }

    /// The directories of `saltenv`.
    pub fn dirs(&self, saltenv: &str) -> Result<&[PathBuf], FileError> {
        self.envs
            .iter()
            .find(|(env, _)| env == saltenv)
            .map(|(_, dirs)| dirs.as_slice())
            .ok_or_else(|| FileError::UnknownEnv(saltenv.to_owned()))
    }

    /// The environments, `base` first.
    pub fn envs(&self) -> impl Iterator<Item = &str> {
        self.envs.iter().map(|(env, _)| env.as_str())
    }

    /// The file `path` names in `saltenv`: under the first root that has it as a regular file
    /// (after symlinks), which must still be inside that root once resolved.
    pub fn find(&self, saltenv: &str, path: &str) -> Result<PathBuf, FileError> {
        let relative = clean_path(path)?;
        for root in self.dirs(saltenv)? {
            let candidate = root.join(&relative);
            if !candidate.is_file() {
                continue;
            }
            let inside = match (candidate.canonicalize(), root.canonicalize()) {
                (Ok(file), Ok(root)) => file.starts_with(root),
                _ => false,
            };
            if !inside {
                return Err(FileError::Traversal {
                    path: path.to_owned(),
                });
            }
            return Ok(candidate);
        }
        Err(FileError::NotFound {
            path: relative,
            saltenv: saltenv.to_owned(),
        })
    }

    /// The roots configured under `key` (`file_roots`, `pillar_roots`): a map of environments
    /// to lists of directories; `default` when unset.
    pub fn from_config(
        config: &Config,
        key: &str,
        default: &[(&str, &[&str])],
    ) -> Result<Self, ConfigError> {
        let bad = |value: &Value| ConfigError::BadValue {
            key: key.to_owned(),
            value: value.to_string(),
            expected: "expected a map of environments to lists of directories",
        };
        let envs = match config.get(key) {
            None | Some(Value::Nil) => default
                .iter()
                .map(|(env, dirs)| ((*env).to_owned(), dirs.iter().map(PathBuf::from).collect()))
                .collect(),
            Some(Value::Map(entries)) => entries
                .iter()
                .map(|(env, dirs)| {
                    let env = env.as_str().ok_or_else(|| bad(env))?.to_owned();
                    let dirs = match dirs {
                        Value::Array(dirs) => dirs
                            .iter()
                            .map(|dir| dir.as_str().map(PathBuf::from).ok_or_else(|| bad(dir)))
                            .collect::<Result<Vec<_>, _>>()?,
                        other => return Err(bad(other)),
                    };
                    Ok((env, dirs))
                })
                .collect::<Result<Vec<_>, _>>()?,
            Some(other) => return Err(bad(other)),
        };
        Ok(Self::new(envs))
    }
}

/// Every file (or directory, `dirs`) under the roots of `saltenv`, relative, sorted, without
/// duplicates; symlinks are followed only while they stay inside their root.
fn walk(roots: &Roots, saltenv: &str, dirs: bool) -> Result<Vec<String>, FileError> {
    let mut found = std::collections::BTreeSet::new();
    for root in roots.dirs(saltenv)? {
        let Ok(real_root) = root.canonicalize() else {
            continue;
        };
        // Each directory with the real paths of those above it: a symlink back to one of them
        // (`.`, a parent) is a loop, not entered; another alias of a directory is walked as Salt
        // walks it.
        let mut pending = vec![(PathBuf::new(), vec![real_root.clone()])];
        while let Some((relative, above)) = pending.pop() {
            let Ok(entries) = std::fs::read_dir(root.join(&relative)) else {
                continue;
            };
            for entry in entries.flatten() {
                let path = relative.join(entry.file_name());
                let full = root.join(&path);
                let Some(real) = full
                    .canonicalize()
                    .ok()
                    .filter(|real| real.starts_with(&real_root))
                else {
                    continue;
                };
                let name = path.to_string_lossy().into_owned();
                if full.is_dir() {
                    if dirs {
                        found.insert(name);
                    }
                    if !above.contains(&real) {
                        let mut above = above.clone();
                        above.push(real);
                        pending.push((path, above));
                    }
                } else if !dirs && full.is_file() {
                    found.insert(name);
                }
            }
        }
    }
    Ok(found.into_iter().collect())
}

/// The roots on this host: what `salt-call --local` reads and what a master serves. Disk work
/// runs on tokio's blocking pool, so a master serving files never stalls its sessions.
#[derive(Debug, Clone)]
pub struct LocalFiles {
    inner: Arc<Local>,
}

#[derive(Debug)]
struct Local {
    roots: Roots,
    hash_type: String,
    /// Hashes of files read lately, by path, valid while the file's size, mtime and inode stay:
    /// a file read in chunks is hashed once, not once per chunk.
    hashes: Mutex<HashMap<PathBuf, (Stamp, FileHash)>>,
}

/// What says a file is unchanged since it was hashed.
type Stamp = (u64, Option<std::time::SystemTime>, u64);

/// Hashes kept; when full the memo starts over (only a cost, never a wrong hash).
const HASHES_KEPT: usize = 4096;

impl LocalFiles {
    /// `roots`, hashed with `hash_type`.
    pub fn new(roots: Roots, hash_type: &str) -> Self {
        Self {
            inner: Arc::new(Local {
                roots,
                hash_type: hash_type.to_owned(),
                hashes: Mutex::new(HashMap::new()),
            }),
        }
    }

    /// Runs `work` on the blocking pool with a handle on these roots.
    async fn blocking<T: Send + 'static>(
        &self,
        what: &str,
        work: impl FnOnce(&Local) -> Result<T, FileError> + Send + 'static,
    ) -> Result<T, FileError> {
        let inner = Arc::clone(&self.inner);
        tokio::task::spawn_blocking(move || work(&inner))
            .await
            .unwrap_or_else(|err| {
                Err(FileError::Io {
                    path: what.to_owned(),
                    reason: err.to_string(),
                })
            })
    }
}

impl Local {
    fn io(path: &str) -> impl FnOnce(std::io::Error) -> FileError + '_ {
        move |err| FileError::Io {
            path: path.to_owned(),
            reason: err.to_string(),
        }
    }

    /// The hash of the file at `found` (`path` as asked), from the memo while it is unchanged.
    fn hash_of(
        &self,
        path: &str,
        found: &Path,
        meta: &std::fs::Metadata,
    ) -> Result<FileHash, FileError> {
        let stamp = (
            meta.len(),
            meta.modified().ok(),
            std::os::unix::fs::MetadataExt::ino(meta),
        );
        let mut hashes = self.hashes.lock().expect("not poisoned");
        if let Some((known, hash)) = hashes.get(found)
            && *known == stamp
        {
            return Ok(hash.clone());
        }
        drop(hashes);
        let hash = FileHash {
            hsum: file_hexdigest(found, &self.hash_type)
                .map_err(Self::io(path))?
                .ok_or_else(|| FileError::Io {
                    path: path.to_owned(),
                    reason: format!("unknown hash_type {}", self.hash_type),
                })?,
            hash_type: self.hash_type.clone(),
        };
        hashes = self.hashes.lock().expect("not poisoned");
        if hashes.len() >= HASHES_KEPT {
            hashes.clear();
        }
        hashes.insert(found.to_path_buf(), (stamp, hash.clone()));
        Ok(hash)
    }

    fn hash(&self, saltenv: &str, path: &str) -> Result<FileHash, FileError> {
        let found = self.roots.find(saltenv, path)?;
        let meta = std::fs::metadata(&found).map_err(Self::io(path))?;
        self.hash_of(path, &found, &meta)
    }

    /// The bytes of the range only: the file is opened, sought and read, never read whole.
    fn read(&self, saltenv: &str, path: &str, offset: u64, len: u64) -> Result<Chunk, FileError> {
        use std::io::{Read, Seek};
        let found = self.roots.find(saltenv, path)?;
        let mut file = std::fs::File::open(&found).map_err(Self::io(path))?;
        let meta = file.metadata().map_err(Self::io(path))?;
        let hash = self.hash_of(path, &found, &meta)?;
        file.seek(std::io::SeekFrom::Start(offset))
            .map_err(Self::io(path))?;
        let mut data = Vec::new();
        file.take(len)
            .read_to_end(&mut data)
            .map_err(Self::io(path))?;
        Ok(Chunk {
            data,
            hash,
            mode: std::os::unix::fs::PermissionsExt::mode(&meta.permissions()) & 0o7777,
        })
    }
}

impl FileSource for LocalFiles {
    fn read<'a>(
        &'a self,
        saltenv: &'a str,
        path: &'a str,
        offset: u64,
        len: u64,
    ) -> Fetching<'a, Chunk> {
        let (env, file) = (saltenv.to_owned(), path.to_owned());
        Box::pin(self.blocking(path, move |local| local.read(&env, &file, offset, len)))
    }

    fn hash<'a>(&'a self, saltenv: &'a str, path: &'a str) -> Fetching<'a, FileHash> {
        let (env, file) = (saltenv.to_owned(), path.to_owned());
        Box::pin(self.blocking(path, move |local| local.hash(&env, &file)))
    }

    fn list_files<'a>(&'a self, saltenv: &'a str) -> Fetching<'a, Vec<String>> {
        let env = saltenv.to_owned();
        Box::pin(self.blocking(saltenv, move |local| walk(&local.roots, &env, false)))
    }

    fn list_dirs<'a>(&'a self, saltenv: &'a str) -> Fetching<'a, Vec<String>> {
        let env = saltenv.to_owned();
        Box::pin(self.blocking(saltenv, move |local| walk(&local.roots, &env, true)))
    }

    fn envs(&self) -> Fetching<'_, Vec<String>> {
        let envs = self.inner.roots.envs().map(str::to_owned).collect();
        Box::pin(std::future::ready(Ok(envs)))
    }
}

/// Bytes asked of a [`FileSource`] at a time (Salt's `file_buffer_size`).
pub const CHUNK: u64 = 256 * 1024;

/// A minion's copies of master files, under `cachedir/files/<saltenv>/<path>`, fetched from a
/// [`FileSource`] and fetched again only when the master's hash differs.
#[derive(Clone)]
pub struct Cache {
    source: Arc<dyn FileSource>,
    /// `cachedir/files`.
    dir: PathBuf,
}

impl std::fmt::Debug for Cache {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Cache").field("dir", &self.dir).finish()
    }
}

impl Cache {
    /// A cache under `cachedir/files` reading from `source`.
    pub fn new(source: Arc<dyn FileSource>, cachedir: &Path) -> Self {
        Self {
            source,
            dir: cachedir.join("files"),
        }
    }

    /// Where the files come from.
    pub fn source(&self) -> &dyn FileSource {
        self.source.as_ref()
    }

    /// The environment a URL names (`?saltenv=` wins over `saltenv`) and its path.
    pub fn locate(url: &str, saltenv: &str) -> Result<(String, String), FileError> {
        let url = SaltUrl::parse(url)?;
        Ok((url.saltenv.unwrap_or_else(|| saltenv.to_owned()), url.path))
    }

    /// Where the copy of `path` in `saltenv` is kept: `cachedir/files/<saltenv>/<path>`.
    pub fn cached_path(&self, saltenv: &str, path: &str) -> Result<PathBuf, FileError> {
        Ok(self.dir.join(clean_path(saltenv)?).join(clean_path(path)?))
    }

    /// The local copy of the file `url` names, fetched when missing or changed on the master.
    pub async fn cache_file(&self, url: &str, saltenv: &str) -> Result<PathBuf, FileError> {
        let (saltenv, path) = Self::locate(url, saltenv)?;
        let hash = self.source.hash(&saltenv, &path).await?;
        let dest = self.cached_path(&saltenv, &path)?;
        self.fetch_to(&saltenv, &path, &hash, &dest).await?;
        Ok(dest)
    }

    /// Puts `path` of `saltenv`, whose hash on the master is `hash`, at `dest` (whose directory
    /// is made), unless `dest` has that hash already. The chunks go to a temporary file beside
    /// `dest`, which replaces it only once the whole file has the master's hash.
    pub async fn fetch_to(
        &self,
        saltenv: &str,
        path: &str,
        hash: &FileHash,
        dest: &Path,
    ) -> Result<(), FileError> {
        let io = |err: std::io::Error| FileError::Io {
            path: dest.display().to_string(),
            reason: err.to_string(),
        };
        let wanted = hash.clone();
        let target = dest.to_path_buf();
        let current = blocking(move || Ok(local_hash(&target, &wanted.hash_type)))
            .await
            .map_err(io)?;
        if current.as_ref() == Some(&hash.hsum) {
            return Ok(());
        }
        let parent = dest.parent().unwrap_or(Path::new(".")).to_path_buf();
        // Created as any new file is (0666 less the umask), as Salt's copies are.
        let mut temp = blocking(move || {
            std::fs::create_dir_all(&parent)?;
            tempfile::Builder::new()
                .permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666))
                .tempfile_in(&parent)
        })
        .await
        .map_err(io)?;
        let mut offset = 0;
        loop {
            let chunk = self.source.read(saltenv, path, offset, CHUNK).await?;
            if chunk.data.is_empty() {
                break;
            }
            offset += chunk.data.len() as u64;
            temp = blocking(move || {
                std::io::Write::write_all(&mut temp, &chunk.data)?;
                Ok(temp)
            })
            .await
            .map_err(io)?;
        }
        let (wanted, target) = (hash.clone(), dest.to_path_buf());
        let stored = blocking(move || {
            if local_hash(temp.path(), &wanted.hash_type).as_ref() != Some(&wanted.hsum) {
                return Ok(false);
            }
            // A file that was there keeps its mode, as when Salt writes over it.
            if let Ok(meta) = std::fs::metadata(&target) {
                temp.as_file().set_permissions(meta.permissions())?;
            }
            temp.persist(&target).map_err(|err| err.error)?;
            Ok(true)
        })
        .await
        .map_err(io)?;
        if !stored {
            return Err(FileError::Unreachable {
                what: format!("salt://{path}?saltenv={saltenv}"),
                reason: "the file changed while it was fetched; try again".to_owned(),
            });
        }
        Ok(())
    }
}

/// `work` on tokio's blocking pool: disk work never stalls the runtime's workers.
async fn blocking<T: Send + 'static>(
    work: impl FnOnce() -> std::io::Result<T> + Send + 'static,
) -> std::io::Result<T> {
    tokio::task::spawn_blocking(work)
        .await
        .unwrap_or_else(|err| Err(std::io::Error::other(err)))
}

/// The hash of a local file, `None` when it cannot be read.
pub fn local_hash(path: &Path, hash_type: &str) -> Option<String> {
    file_hexdigest(path, hash_type).ok().flatten()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::hexdigest;

    #[test]
    fn urls_are_taken_apart_and_cleaned() {
        let url = SaltUrl::parse("salt://a//b/./c.sls?saltenv=dev").unwrap();
        assert_eq!(url.path, "a/b/c.sls");
        assert_eq!(url.saltenv.as_deref(), Some("dev"));
        assert_eq!(SaltUrl::parse("salt://x").unwrap().saltenv, None);
        assert!(matches!(
            SaltUrl::parse("/etc/passwd"),
            Err(FileError::BadUrl { .. })
        ));
    }

    #[test]
    fn traversal_is_refused_in_every_form() {
        for path in [
            "../../etc/shadow",
            "a/../../etc/shadow",
            "a/..",
            "/etc/shadow",
            "a\0b",
            "..\\etc",
            "",
            ".",
        ] {
            assert!(
                matches!(clean_path(path), Err(FileError::Traversal { .. })),
                "{path:?} was let through"
            );
        }
    }

    #[test]
    fn the_first_root_holding_a_file_wins_and_symlinks_out_are_refused() {
        let dir = tempfile::tempdir().unwrap();
        let (one, two, outside) = (
            dir.path().join("one"),
            dir.path().join("two"),
            dir.path().join("outside"),
        );
        for d in [&one, &two, &outside] {
            std::fs::create_dir(d).unwrap();
        }
        std::fs::write(two.join("f"), "two").unwrap();
        std::fs::write(one.join("g"), "one").unwrap();
        std::fs::write(two.join("g"), "two").unwrap();
        std::fs::write(outside.join("secret"), "x").unwrap();
        std::os::unix::fs::symlink(outside.join("secret"), one.join("link")).unwrap();
        let roots = Roots::new(vec![
            ("dev".to_owned(), vec![]),
            ("base".to_owned(), vec![one.clone(), two.clone()]),
        ]);
        assert_eq!(roots.envs().collect::<Vec<_>>(), ["base", "dev"]);
        assert_eq!(roots.find("base", "f").unwrap(), two.join("f"));
        assert_eq!(roots.find("base", "g").unwrap(), one.join("g"));
        assert!(matches!(
            roots.find("base", "link"),
            Err(FileError::Traversal { .. })
        ));
        assert!(matches!(
            roots.find("dev", "f"),
            Err(FileError::NotFound { .. })
        ));
        assert!(matches!(
            roots.find("prod", "f"),
            Err(FileError::UnknownEnv(_))
        ));
    }

    /// A master holding one file in memory that counts the reads it serves.
    struct Counted {
        data: Mutex<Vec<u8>>,
        reads: std::sync::atomic::AtomicUsize,
    }

    impl Counted {
        fn hash(&self) -> FileHash {
            FileHash {
                hsum: hexdigest(&self.data.lock().unwrap(), "sha256").unwrap(),
                hash_type: "sha256".into(),
            }
        }
    }

    impl FileSource for Counted {
        fn read<'a>(
            &'a self,
            _: &'a str,
            path: &'a str,
            offset: u64,
            len: u64,
        ) -> Fetching<'a, Chunk> {
            self.reads
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
            let hash = self.hash();
            let data = self.data.lock().unwrap();
            let start = (offset as usize).min(data.len());
            let end = (start + len as usize).min(data.len());
            let chunk = Chunk {
                data: data[start..end].to_vec(),
                hash,
                mode: 0o644,
            };
            let found = if path == "f" {
                Ok(chunk)
            } else {
                Err(FileError::NotFound {
                    path: path.into(),
                    saltenv: "base".into(),
                })
            };
            Box::pin(std::future::ready(found))
        }
        fn hash<'a>(&'a self, _: &'a str, path: &'a str) -> Fetching<'a, FileHash> {
            let found = if path == "f" {
                Ok(self.hash())
            } else {
                Err(FileError::NotFound {
                    path: path.into(),
                    saltenv: "base".into(),
                })
            };
            Box::pin(std::future::ready(found))
        }
        fn list_files<'a>(&'a self, _: &'a str) -> Fetching<'a, Vec<String>> {
            Box::pin(std::future::ready(Ok(vec!["f".into()])))
        }
        fn list_dirs<'a>(&'a self, _: &'a str) -> Fetching<'a, Vec<String>> {
            Box::pin(std::future::ready(Ok(Vec::new())))
        }
        fn envs(&self) -> Fetching<'_, Vec<String>> {
            Box::pin(std::future::ready(Ok(vec!["base".into()])))
        }
    }

    #[tokio::test]
    async fn the_cache_fetches_again_only_when_the_masters_hash_changes() {
        let dir = tempfile::tempdir().unwrap();
        let big: Vec<u8> = (0..CHUNK * 2 + 10).map(|n| (n % 251) as u8).collect();
        let master = Arc::new(Counted {
            data: Mutex::new(big.clone()),
            reads: Default::default(),
        });
        let cache = Cache::new(master.clone(), dir.path());
        let reads = || master.reads.load(std::sync::atomic::Ordering::Relaxed);
        let path = cache.cache_file("salt://f", "base").await.unwrap();
        assert_eq!(path, dir.path().join("files/base/f"));
        assert_eq!(std::fs::read(&path).unwrap(), big);
        assert_eq!(reads(), 4, "three chunks and the empty end");
        cache
            .cache_file("salt://f?saltenv=base", "dev")
            .await
            .unwrap();
        assert_eq!(reads(), 4, "unchanged on the master: not read again");
        *master.data.lock().unwrap() = b"changed".to_vec();
        cache.cache_file("salt://f", "base").await.unwrap();
        assert_eq!(reads(), 6);
        assert_eq!(std::fs::read(&path).unwrap(), b"changed");
        assert!(matches!(
            cache.cache_file("salt://missing", "base").await,
            Err(FileError::NotFound { .. })
        ));
        assert!(matches!(
            cache.cache_file("salt://../f", "base").await,
            Err(FileError::Traversal { .. })
        ));
        assert_eq!(reads(), 6, "nothing asked for a missing or refused path");
        // Made as any new file is (0666 less the umask), not private as a temporary file.
        let plain = dir.path().join("plain");
        std::fs::write(&plain, "").unwrap();
        let mode = |path: &Path| {
            std::os::unix::fs::PermissionsExt::mode(&std::fs::metadata(path).unwrap().permissions())
        };
        assert_eq!(mode(&path), mode(&plain));
        // Written over, a file keeps the mode it had.
        std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o600))
            .unwrap();
        *master.data.lock().unwrap() = b"again".to_vec();
        cache.cache_file("salt://f", "base").await.unwrap();
        assert_eq!(std::fs::read(&path).unwrap(), b"again");
        assert_eq!(mode(&path) & 0o777, 0o600);
    }

    /// Symlinks to `.` and to a parent inside the roots are listed once, not walked forever;
    /// another name for a directory is walked as the directory is.
    #[tokio::test]
    async fn symlink_loops_in_the_roots_end_the_listing() {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("root");
        std::fs::create_dir_all(root.join("sub")).unwrap();
        std::fs::write(root.join("sub/f"), "f").unwrap();
        std::os::unix::fs::symlink(".", root.join("l1")).unwrap();
        std::os::unix::fs::symlink(".", root.join("l2")).unwrap();
        std::os::unix::fs::symlink("..", root.join("sub/up")).unwrap();
        std::os::unix::fs::symlink("sub", root.join("alias")).unwrap();
        let files = LocalFiles::new(Roots::new(vec![("base".into(), vec![root])]), "sha256");
        assert_eq!(
            files.list_files("base").await.unwrap(),
            ["alias/f", "sub/f"]
        );
        assert_eq!(
            files.list_dirs("base").await.unwrap(),
            ["alias", "alias/up", "l1", "l2", "sub", "sub/up"]
        );
    }

    #[tokio::test]
    async fn local_reads_serve_the_asked_range_with_the_whole_files_hash() {
        let dir = tempfile::tempdir().unwrap();
        let data: Vec<u8> = (0..1000u32).map(|n| (n % 256) as u8).collect();
        std::fs::write(dir.path().join("f"), &data).unwrap();
        let files = LocalFiles::new(
            Roots::new(vec![("base".into(), vec![dir.path().to_path_buf()])]),
            "sha256",
        );
        let chunk = files.read("base", "f", 990, 100).await.unwrap();
        assert_eq!(chunk.data, &data[990..]);
        assert_eq!(chunk.hash.hsum, hexdigest(&data, "sha256").unwrap());
        assert!(
            files
                .read("base", "f", 5000, 100)
                .await
                .unwrap()
                .data
                .is_empty()
        );
        // A rewritten file is hashed again.
        std::fs::write(dir.path().join("f"), b"new").unwrap();
        assert_eq!(
            files.hash("base", "f").await.unwrap().hsum,
            hexdigest(b"new", "sha256").unwrap()
        );
    }
}
