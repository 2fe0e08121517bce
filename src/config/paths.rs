//! Path rules Salt applies to its options, and where halite goes when Salt's defaults need root.

use std::path::{Component, Path, PathBuf};

use md5::Md5;
use sha2::Digest;

use super::ConfigError;

/// Salt's `prepend_root_dir`: an absolute path already under `root_dir` (itself absolute) stays;
/// any other path is moved under `root_dir`, so a relative one becomes absolute.
pub(super) fn prepend_root_dir(root_dir: &Path, path: &Path) -> PathBuf {
    if path.starts_with(root_dir) {
        return path.to_path_buf();
    }
    let relative: PathBuf = path
        .components()
        .filter(|c| !matches!(c, Component::RootDir | Component::Prefix(_)))
        .collect();
    root_dir.join(relative)
}

/// Whether this process can create sockets in `dir`: it is writable, or it does not exist yet
/// and its nearest existing ancestor is writable.
pub(super) fn usable_dir(dir: &Path) -> bool {
    let mut candidate = Some(dir);
    while let Some(dir) = candidate {
        if dir.exists() {
            return nix::unistd::access(
                dir,
                nix::unistd::AccessFlags::W_OK | nix::unistd::AccessFlags::X_OK,
            )
            .is_ok();
        }
        candidate = dir.parent();
    }
    false
}

/// The per-user directory used when Salt's default socket directory needs root, and for the
/// clients' framing cache: `$XDG_RUNTIME_DIR/halite`, else `/tmp/halite-<uid>`. It is created
/// 0700 and refused when anyone else could have put something in it first: a predictable
/// `/tmp` name can be created by any user before this one.
pub fn user_runtime_dir() -> Result<PathBuf, ConfigError> {
    let dir = match xdg_runtime_dir() {
        Some(dir) => dir.join("halite"),
        None => PathBuf::from(format!("/tmp/halite-{}", nix::unistd::getuid())),
    };
    private_dir(&dir)?;
    Ok(dir)
}

/// `$XDG_RUNTIME_DIR`, when it is a directory of this user that no one else can write (a value
/// kept across `su` may name another user's).
fn xdg_runtime_dir() -> Option<PathBuf> {
    use std::os::unix::fs::MetadataExt;
    std::env::var_os("XDG_RUNTIME_DIR")
        .filter(|dir| !dir.is_empty())
        .map(PathBuf::from)
        .filter(|dir| {
            std::fs::symlink_metadata(dir).is_ok_and(|meta| {
                meta.is_dir()
                    && meta.uid() == nix::unistd::geteuid().as_raw()
                    && meta.mode() & 0o022 == 0
            })
        })
}

/// The first existing path of `dir` and its parents that is not a directory: creating `dir`
/// fails on it with "File exists" or "Not a directory", which name neither it nor the fix.
pub fn file_in_the_way(dir: &Path) -> Option<PathBuf> {
    dir.ancestors()
        .filter(|path| !path.as_os_str().is_empty())
        .find(|path| path.exists())
        .filter(|path| !path.is_dir())
        .map(Path::to_owned)
}

/// Creates `dir` as `builder` does, a file in its way told as such.
pub fn create_dir_all(builder: &std::fs::DirBuilder, dir: &Path) -> std::io::Result<()> {
    builder
        .create(dir)
        .map_err(|err| match file_in_the_way(dir) {
            Some(file) => std::io::Error::new(
                std::io::ErrorKind::NotADirectory,
                format!("{} is a file, not a directory", file.display()),
            ),
            None => err,
        })
}

/// Opens an existing or new file as `options` say, without following a link, and refuses what is
/// not a regular file with a single name: where another user can write the directory, a link,
/// a hard link or a FIFO would otherwise point a privileged process at a file of their choosing.
pub fn open_plain_file(
    path: &Path,
    options: &mut std::fs::OpenOptions,
) -> std::io::Result<std::fs::File> {
    use std::os::unix::fs::{MetadataExt, OpenOptionsExt};
    let file = options
        .custom_flags(libc::O_NOFOLLOW | libc::O_NONBLOCK | libc::O_CLOEXEC)
        .open(path)
        .map_err(|err| match err.raw_os_error() {
            Some(libc::ELOOP) => std::io::Error::other("it is a symbolic link"),
            _ => err,
        })?;
    let meta = file.metadata()?;
    if !meta.is_file() {
        return Err(std::io::Error::other("it is not a regular file"));
    }
    if meta.nlink() > 1 {
        return Err(std::io::Error::other(
            "it has other names (hard links) and may be someone else's file",
        ));
    }
    Ok(file)
}

/// Creates `dir` 0700 if missing, then checks what is there without following a link: a
/// directory of this user that no one else can write. A directory of this user that others can
/// only read (as earlier releases made it) is tightened to 0700, as nothing can have been
/// planted in it.
fn private_dir(dir: &Path) -> Result<(), ConfigError> {
    use nix::fcntl::OFlag;
    use nix::sys::stat::Mode;
    use std::os::unix::fs::DirBuilderExt;

    let refuse = |problem: String, fix: &'static str| ConfigError::RuntimeDir {
        path: dir.to_owned(),
        problem,
        fix,
    };
    const NOT_MINE: &str = "remove it (it is re-created private) or set XDG_RUNTIME_DIR to a \
                            directory of this user";
    match std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o700)
        .create(dir)
    {
        Ok(()) => {}
        Err(source) if source.kind() != std::io::ErrorKind::AlreadyExists => {
            return Err(ConfigError::RuntimeDirIo {
                path: dir.to_owned(),
                source,
            });
        }
        Err(_) => {}
    }
    let flags = OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC;
    let fd = match nix::fcntl::open(dir, flags, Mode::empty()) {
        Ok(fd) => fd,
        Err(nix::errno::Errno::ELOOP | nix::errno::Errno::ENOTDIR) => {
            let what = match std::fs::symlink_metadata(dir) {
                Ok(meta) if meta.file_type().is_symlink() => "is a symbolic link",
                _ => "is not a directory",
            };
            return Err(refuse(what.to_owned(), NOT_MINE));
        }
        Err(errno) => {
            return Err(ConfigError::RuntimeDirIo {
                path: dir.to_owned(),
                source: errno.into(),
            });
        }
    };
    let stat = nix::sys::stat::fstat(&fd).map_err(|errno| ConfigError::RuntimeDirIo {
        path: dir.to_owned(),
        source: errno.into(),
    })?;
    let me = nix::unistd::geteuid();
    if stat.st_uid != me.as_raw() {
        return Err(refuse(
            format!(
                "belongs to uid {}, not to this user (uid {me})",
                stat.st_uid
            ),
            NOT_MINE,
        ));
    }
    let mode = stat.st_mode & 0o7777;
    if mode & 0o022 != 0 {
        return Err(refuse(
            format!("is writable by other users (mode {mode:04o})"),
            "check what is in it, then chmod 700 it",
        ));
    }
    if mode & 0o077 != 0 {
        nix::sys::stat::fchmod(&fd, Mode::from_bits_truncate(0o700)).map_err(|errno| {
            ConfigError::RuntimeDirIo {
                path: dir.to_owned(),
                source: errno.into(),
            }
        })?;
    }
    Ok(())
}

/// Where a user's halite keeps data when Salt's system directories need root:
/// `$XDG_DATA_HOME/halite`, else `~/.local/share/halite`.
pub(super) fn user_data_dir(key: &'static str) -> Result<PathBuf, ConfigError> {
    xdg_dir("XDG_DATA_HOME", ".local/share", key)
}

/// Where a user's halite keeps caches: `$XDG_CACHE_HOME/halite`, else `~/.cache/halite`.
pub(super) fn user_cache_dir(key: &'static str) -> Result<PathBuf, ConfigError> {
    xdg_dir("XDG_CACHE_HOME", ".cache", key)
}

/// The directory for option `key` under `$<variable>`, else under HOME, else under
/// `$XDG_RUNTIME_DIR/halite`. Never under `/tmp`: keys or a job cache there would be at the mercy
/// of whoever created the directory first.
fn xdg_dir(
    variable: &'static str,
    under_home: &str,
    key: &'static str,
) -> Result<PathBuf, ConfigError> {
    if let Some(dir) = std::env::var_os(variable).filter(|dir| !dir.is_empty()) {
        return Ok(PathBuf::from(dir).join("halite"));
    }
    // A HOME this user cannot write (kept across a user switch) is no place for state.
    let home = std::env::var_os("HOME").filter(|home| !home.is_empty());
    if let Some(dir) = home
        .as_ref()
        .map(|home| PathBuf::from(home).join(under_home).join("halite"))
        .filter(|dir| usable_dir(dir))
    {
        return Ok(dir);
    }
    if xdg_runtime_dir().is_some() {
        return Ok(user_runtime_dir()?.join(under_home.trim_start_matches('.')));
    }
    Err(ConfigError::NoUserDir {
        key,
        home: home.map_or_else(
            || "unset".to_owned(),
            |home| PathBuf::from(home).display().to_string(),
        ),
        variable,
    })
}

/// The host's fully qualified name, as Salt derives a default minion id.
pub(super) fn fqdn() -> String {
    let host = nix::unistd::gethostname()
        .map(|h| h.to_string_lossy().into_owned())
        .unwrap_or_else(|_| "localhost".into());
    canonical_name(&host)
        .filter(|name| name != "localhost")
        .unwrap_or(host)
}

/// The canonical name the resolver gives `name` (getaddrinfo's `AI_CANONNAME`), if any.
pub fn canonical_name(name: &str) -> Option<String> {
    let hints = dns_lookup::AddrInfoHints {
        flags: libc::AI_CANONNAME,
        ..Default::default()
    };
    dns_lookup::getaddrinfo(Some(name), None, Some(hints))
        .ok()
        .and_then(|mut infos| infos.find_map(|info| info.ok().and_then(|info| info.canonname)))
        .filter(|name| !name.is_empty())
}

/// `hashlib.<hash_type>(id).hexdigest()[:10]`.
pub(super) fn id_hash(id: &str, hash_type: &str) -> Option<String> {
    let mut digest = hexdigest(id.as_bytes(), hash_type)?;
    digest.truncate(10);
    Some(digest)
}

/// `hashlib.<hash_type>(bytes).hexdigest()` for the hash types Salt's `hash_type` accepts.
pub fn hexdigest(bytes: &[u8], hash_type: &str) -> Option<String> {
    fn hex<D: Digest>(bytes: &[u8]) -> String {
        D::digest(bytes)
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect()
    }
    Some(match hash_type {
        "md5" => hex::<Md5>(bytes),
        "sha1" => hex::<sha1::Sha1>(bytes),
        "sha224" => hex::<sha2::Sha224>(bytes),
        "sha256" => hex::<sha2::Sha256>(bytes),
        "sha384" => hex::<sha2::Sha384>(bytes),
        "sha512" => hex::<sha2::Sha512>(bytes),
        _ => return None,
    })
}

/// [`hexdigest`] of a file's contents, read a piece at a time so a large file never sits in
/// memory whole; `Ok(None)` for an unknown `hash_type`.
pub fn file_hexdigest(path: &Path, hash_type: &str) -> std::io::Result<Option<String>> {
    fn stream<D: Digest>(mut file: std::fs::File) -> std::io::Result<String> {
        let mut digest = D::new();
        let mut buffer = vec![0; 64 * 1024];
        loop {
            let read = std::io::Read::read(&mut file, &mut buffer)?;
            if read == 0 {
                break;
            }
            digest.update(&buffer[..read]);
        }
        Ok(digest
            .finalize()
            .iter()
            .map(|b| format!("{b:02x}"))
            .collect())
    }
    let file = std::fs::File::open(path)?;
    Ok(Some(match hash_type {
        "md5" => stream::<Md5>(file)?,
        "sha1" => stream::<sha1::Sha1>(file)?,
        "sha224" => stream::<sha2::Sha224>(file)?,
        "sha256" => stream::<sha2::Sha256>(file)?,
        "sha384" => stream::<sha2::Sha384>(file)?,
        "sha512" => stream::<sha2::Sha512>(file)?,
        _ => return Ok(None),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minion_socket_hash_matches_salt_for_known_ids() {
        assert_eq!(id_hash("minion1", "sha256").unwrap(), "1e9498c860");
        assert_eq!(id_hash("minion2", "sha256").unwrap(), "7d2b8c44fc");
        assert_eq!(id_hash("minion3", "sha256").unwrap(), "6a40226d8b");
        assert_eq!(id_hash("minion1", "nope"), None);
    }

    #[test]
    fn prepend_root_dir_keeps_paths_already_under_root() {
        let root = Path::new("/srv/lab");
        assert_eq!(
            prepend_root_dir(root, Path::new("/var/run/salt/master")),
            Path::new("/srv/lab/var/run/salt/master")
        );
        assert_eq!(
            prepend_root_dir(root, Path::new("/srv/lab/sock")),
            Path::new("/srv/lab/sock")
        );
        assert_eq!(
            prepend_root_dir(Path::new("/"), Path::new("/var/run")),
            Path::new("/var/run")
        );
        assert_eq!(
            prepend_root_dir(root, Path::new("run")),
            Path::new("/srv/lab/run")
        );
        assert_eq!(
            prepend_root_dir(Path::new("/"), Path::new("logs/master")),
            Path::new("/logs/master")
        );
    }
}
