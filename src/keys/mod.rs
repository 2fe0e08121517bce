//! Key pairs and the master's key store, in Salt's layout.
//!
//! Every master and minion has a key pair in its `pki_dir` (`master.pem`/`master.pub`,
//! `minion.pem`/`minion.pub`), created on first start. halite's keys are Ed25519 (Salt's are
//! RSA); public keys are written as PEM `PUBLIC KEY` blocks, as Salt writes its own, so events and
//! fingerprints have Salt's shape. The master files each minion's public key under the state of
//! that key: `minions` (accepted), `minions_pre` (pending), `minions_rejected`,
//! `minions_denied`.

mod change;
mod store;

use std::io::{Read, Write};
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::sync::Arc;

use ring::signature::{Ed25519KeyPair, KeyPair as _};
use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use rustls::sign::CertifiedKey;

pub use change::KeyChange;
pub use store::{
    Admission, AdmissionPolicy, KeyState, KeyStore, id_problem, read_autosign, valid_id,
};

/// What went wrong with a key file.
#[derive(Debug, thiserror::Error)]
pub enum KeyError {
    /// A key file or directory could not be read or written.
    #[error("{action} {path}: {source}; {}", io_fix(.source))]
    Io {
        /// What was being done.
        action: &'static str,
        /// The file.
        path: PathBuf,
        /// Why it failed.
        source: std::io::Error,
    },
    /// A key file or the directory holding it is open to other users.
    #[error("{path} {problem}; {fix}")]
    Exposed {
        /// The file or directory.
        path: PathBuf,
        /// Who can do what to it.
        problem: String,
        /// What to do.
        fix: &'static str,
    },
    /// A key file holds something that is not a usable key.
    #[error("{path} is not a valid key file ({reason}); move it away to have a new key created")]
    Invalid {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A name that cannot be a minion id's key file (empty, `..`, a `/` in it).
    #[error("{0:?} is not a minion id: a key file cannot be named so")]
    InvalidId(String),
    /// Accepting a key would replace the id's accepted one, locking its minion out.
    #[error(
        "cannot accept {path}: minion {id} already has another accepted key; delete that one first (salt-key -d {id}) if this key is the right one"
    )]
    AcceptedExists {
        /// The key that was to be accepted.
        path: PathBuf,
        /// Its minion.
        id: String,
    },
}

/// What to do about a key file or directory that could not be read or written, by why.
fn io_fix(err: &std::io::Error) -> &'static str {
    use std::io::ErrorKind;
    match err.kind() {
        ErrorKind::PermissionDenied => {
            "run as a user allowed to (the daemon's user, or root), or check -c"
        }
        ErrorKind::NotFound => "check that pki_dir is the right directory, or check -c",
        ErrorKind::NotADirectory => "move that file away, or set pki_dir to a directory",
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded => "free space on its file system",
        ErrorKind::ReadOnlyFilesystem => "make its file system writable",
        // open_plain_file's refusals: a link, a directory, a hard-linked file.
        _ => "make it a regular file with one name, or move it away",
    }
}

fn io(action: &'static str, path: &Path) -> impl FnOnce(std::io::Error) -> KeyError {
    let path = path.to_path_buf();
    move |source| KeyError::Io {
        action,
        path,
        source,
    }
}

/// A node's own key pair, loaded from `<dir>/<name>.pem` and `<name>.pub`.
#[derive(Clone)]
pub struct KeyPair {
    certified: Arc<CertifiedKey>,
    public_pem: String,
}

impl std::fmt::Debug for KeyPair {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("KeyPair")
            .field("public_pem", &self.public_pem)
            .finish_non_exhaustive()
    }
}

impl KeyPair {
    /// Loads the pair, creating it (private key mode 0400, public 0644, directory 0700) when
    /// `<name>.pem` does not exist yet. A directory others can write, or a private key others
    /// can read or write, is refused; a directory others can only read is made 0700, as Salt
    /// does.
    pub fn load_or_create(dir: &Path, name: &str) -> Result<Self, KeyError> {
        create_dir(dir, 0o700)?;
        check_key_dir(dir)?;
        Self::load_or_generate(dir, name).map(|(pair, _)| pair)
    }

    /// `salt-key --gen-keys`: writes a new pair as `<dir>/<name>.pem` (mode 0400) and
    /// `<name>.pub` (0644), unless `<name>.pem` exists, which is kept and loaded, as Salt keeps
    /// it (a missing `<name>.pub` is written from it); true when the pair is new. `dir` is the
    /// operator's (the current directory, say): its mode is left alone.
    pub fn load_or_generate(dir: &Path, name: &str) -> Result<(Self, bool), KeyError> {
        let private_path = dir.join(format!("{name}.pem"));
        let public_path = dir.join(format!("{name}.pub"));
        let created = !private_path.exists();
        if created {
            let pkcs8 =
                Ed25519KeyPair::generate_pkcs8(&ring::rand::SystemRandom::new()).map_err(|_| {
                    KeyError::Invalid {
                        path: private_path.clone(),
                        reason: "the system's random source failed".to_owned(),
                    }
                })?;
            let generated =
                Ed25519KeyPair::from_pkcs8(pkcs8.as_ref()).map_err(|err| KeyError::Invalid {
                    path: private_path.clone(),
                    reason: err.to_string(),
                })?;
            let block = pem::Pem::new("PRIVATE KEY", pkcs8.as_ref());
            write_new(&private_path, pem_text(&block).as_bytes(), 0o400)?;
            write_public(
                dir,
                &public_path,
                &(public_pem(&ed25519_spki(&generated)) + "\n"),
            )?;
        }
        let pair = Self::read(&private_path)?;
        // The private key decides: a public key file that is missing or holds another key
        // (copied over by mistake) is written from it.
        let on_file = std::fs::read_to_string(&public_path).ok();
        if on_file.as_deref().and_then(public_der) != public_der(&pair.public_pem) {
            write_public(dir, &public_path, &(pair.public_pem.clone() + "\n"))?;
        }
        Ok((pair, created))
    }

    /// Checks, changing nothing, that `<dir>/<name>.pem`, where there is one, is a private key
    /// a start loads (`--check-config`).
    pub fn check(dir: &Path, name: &str) -> Result<(), KeyError> {
        let path = dir.join(format!("{name}.pem"));
        if std::fs::symlink_metadata(&path).is_err() {
            return Ok(());
        }
        Self::read(&path).map(drop)
    }

    /// Reads the private key at `private_path`.
    fn read(private_path: &Path) -> Result<Self, KeyError> {
        let text = read_private(private_path)?;
        let invalid = |reason: String| KeyError::Invalid {
            path: private_path.to_owned(),
            reason,
        };
        let der = pem::parse(&text)
            .map_err(|_| invalid("no PEM block".to_owned()))?
            .into_contents();
        // PKCS#8 v1 (OpenSSL's) or v2 (with the public key, as written here).
        let pair = Ed25519KeyPair::from_pkcs8_maybe_unchecked(&der)
            .map_err(|err| invalid(format!("not an Ed25519 private key: {err}")))?;
        let spki = ed25519_spki(&pair);
        let der = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(der));
        let signing = rustls::crypto::ring::sign::any_supported_type(&der)
            .map_err(|err| invalid(err.to_string()))?;
        let certified = CertifiedKey::new(vec![CertificateDer::from(spki.clone())], signing);
        Ok(Self {
            certified: Arc::new(certified),
            public_pem: public_pem(&spki),
        })
    }

    /// The public key as a PEM block, without a trailing newline (as in `salt/auth` events).
    pub fn public_pem(&self) -> &str {
        &self.public_pem
    }

    /// The pair as TLS presents it: the raw public key and its signer.
    pub fn certified(&self) -> Arc<CertifiedKey> {
        Arc::clone(&self.certified)
    }
}

/// Creates `dir` and its parents; a directory created here gets `mode`.
pub fn create_dir(dir: &Path, mode: u32) -> Result<(), KeyError> {
    if dir.is_dir() {
        return Ok(());
    }
    let mut builder = std::fs::DirBuilder::new();
    crate::config::create_dir_all(builder.recursive(true), dir)
        .map_err(io("cannot create directory", dir))?;
    std::fs::set_permissions(dir, std::fs::Permissions::from_mode(mode))
        .map_err(io("cannot set the mode of", dir))
}

fn write_new(path: &Path, contents: &[u8], mode: u32) -> Result<(), KeyError> {
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create_new(true)
        .mode(mode)
        .open(path)
        .map_err(io("cannot create", path))?;
    file.write_all(contents).map_err(io("cannot write", path))
}

/// Writes a public key through a fresh temporary file renamed over `path`, so a link left at
/// `path` is replaced, never written through.
fn write_public(dir: &Path, path: &Path, text: &str) -> Result<(), KeyError> {
    public_temp(dir, path, text)?
        .persist(path)
        .map_err(|err| io("cannot write", path)(err.error))?;
    Ok(())
}

/// Saves a public key at `path` unless something is there already, through a temporary file
/// linked into place: a process reading `path` meanwhile finds nothing or the whole key, never
/// a part of it, and of two processes saving at once the first one's key stays. A link at
/// `path` that leads nowhere is an error: nothing could be read from it.
pub fn save_public_once(path: &Path, text: &str) -> Result<(), KeyError> {
    let dir = path.parent().unwrap_or(Path::new("."));
    let file = public_temp(dir, path, text)?;
    // On disk before it is in place: an empty key after a crash would refuse every master.
    file.as_file()
        .sync_all()
        .map_err(io("cannot write", path))?;
    match file.persist_noclobber(path) {
        Ok(_) => Ok(()),
        Err(err) if err.error.kind() == std::io::ErrorKind::AlreadyExists => {
            std::fs::metadata(path).map_err(io("cannot read", path))?;
            Ok(())
        }
        Err(err) => Err(io("cannot write", path)(err.error)),
    }
}

/// A temporary file in `dir` holding `text`, readable by all, to be put in place at `path`.
fn public_temp(dir: &Path, path: &Path, text: &str) -> Result<tempfile::NamedTempFile, KeyError> {
    let mut file =
        tempfile::NamedTempFile::new_in(dir).map_err(io("cannot create a file in", dir))?;
    file.write_all(text.as_bytes())
        .map_err(io("cannot write", path))?;
    file.as_file()
        .set_permissions(std::fs::Permissions::from_mode(0o644))
        .map_err(io("cannot set the mode of", path))?;
    Ok(file)
}

/// Salt's rule for a `pki_dir` (`verify_env`): 0700, or 0750 for software that reads public
/// keys. One that others can only read is set to 0700, as Salt does; one that others can write
/// is refused, since keys may have been put in it.
fn check_key_dir(dir: &Path) -> Result<(), KeyError> {
    let mode = std::fs::metadata(dir)
        .map_err(io("cannot read", dir))?
        .permissions()
        .mode()
        & 0o7777;
    if mode & 0o022 != 0 {
        return Err(KeyError::Exposed {
            path: dir.to_owned(),
            problem: format!(
                "is writable by other users (mode {mode:04o}), who may have put keys in it"
            ),
            fix: "check the keys in it, then chmod 700 it",
        });
    }
    if mode & 0o007 != 0 {
        match std::fs::set_permissions(dir, std::fs::Permissions::from_mode(0o700)) {
            Ok(()) => tracing::warn!("{} had mode {mode:04o}; set it to 0700", dir.display()),
            Err(err) => tracing::error!(
                "{} has mode {mode:04o} and cannot be set to 0700: {err}",
                dir.display()
            ),
        }
    }
    Ok(())
}

/// Reads a private key, refusing one that others can read or write: it may have been copied
/// or replaced, and using it as if nothing happened would hide that.
fn read_private(path: &Path) -> Result<String, KeyError> {
    let mut file = crate::config::open_plain_file(path, std::fs::OpenOptions::new().read(true))
        .map_err(io("cannot read", path))?;
    let mode = file
        .metadata()
        .map_err(io("cannot read", path))?
        .permissions()
        .mode()
        & 0o777;
    if mode & 0o077 != 0 {
        return Err(KeyError::Exposed {
            path: path.to_owned(),
            problem: format!("is open to other users (mode {mode:04o}) and may have been copied"),
            fix: "if it is still secret, chmod 400 it; otherwise move it away to have a new key created",
        });
    }
    let mut text = String::new();
    file.read_to_string(&mut text)
        .map_err(io("cannot read", path))?;
    Ok(text)
}

/// A DER `SubjectPublicKeyInfo` as a PEM `PUBLIC KEY` block with LF line ends and no final
/// newline.
pub fn public_pem(spki: &[u8]) -> String {
    pem_text(&pem::Pem::new("PUBLIC KEY", spki.to_vec()))
        .trim_end()
        .to_owned()
}

fn pem_text(block: &pem::Pem) -> String {
    pem::encode_config(
        block,
        pem::EncodeConfig::new().set_line_ending(pem::LineEnding::LF),
    )
}

/// An Ed25519 public key as a DER `SubjectPublicKeyInfo` (RFC 8410): the fixed header for the
/// algorithm `id-Ed25519`, then the 32 bytes of the key.
fn ed25519_spki(pair: &Ed25519KeyPair) -> Vec<u8> {
    const HEADER: [u8; 12] = [
        0x30, 0x2a, 0x30, 0x05, 0x06, 0x03, 0x2b, 0x65, 0x70, 0x03, 0x21, 0x00,
    ];
    [&HEADER[..], pair.public_key().as_ref()].concat()
}

/// The DER inside a PEM `PUBLIC KEY` block, if `text` holds one.
pub fn public_der(text: &str) -> Option<Vec<u8>> {
    pem::parse(text)
        .ok()
        .filter(|block| block.tag() == "PUBLIC KEY")
        .map(|block| block.into_contents())
}

/// Salt's key fingerprint (`pem_finger`): the hash (`hash_type`, default sha256) of the PEM
/// text between its armor lines, line ends included, in hex pairs joined by `:`. As Salt, a
/// damaged file is fingerprinted as it is (no body hashes as empty); `None` only for an
/// unknown `hash_type`.
pub fn fingerprint(pem_text: &str, hash_type: &str) -> Option<String> {
    let lines: Vec<&str> = pem_text
        .split_inclusive('\n')
        .filter(|line| !line.trim().is_empty())
        .collect();
    let body: String = lines
        .get(1..lines.len().saturating_sub(1))
        .unwrap_or_default()
        .concat();
    let body = body.replace("\r\n", "\n");
    let hex = crate::config::hexdigest(body.as_bytes(), hash_type)?;
    let pairs: Vec<&str> = hex
        .as_bytes()
        .chunks(2)
        .map(|pair| std::str::from_utf8(pair).unwrap_or_default())
        .collect();
    Some(pairs.join(":"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_saved_public_key_is_whole_and_the_first_one_stays() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("minion_master.pub");
        let first = "A".repeat(100_000);
        std::thread::scope(|scope| {
            let reader = scope.spawn(|| {
                while !path.exists() {}
                std::fs::read_to_string(&path).unwrap()
            });
            save_public_once(&path, &first).unwrap();
            assert_eq!(reader.join().unwrap(), first);
        });
        save_public_once(&path, "another").unwrap();
        assert_eq!(std::fs::read_to_string(&path).unwrap(), first);
        let leftovers = std::fs::read_dir(dir.path()).unwrap().count();
        assert_eq!(leftovers, 1, "no temporary file is left");

        let dangling = dir.path().join("dangling.pub");
        std::os::unix::fs::symlink(dir.path().join("nowhere"), &dangling).unwrap();
        let err = save_public_once(&dangling, "key").unwrap_err().to_string();
        assert!(err.contains("dangling.pub"), "{err}");
    }

    #[test]
    fn a_new_pair_is_created_once_with_salts_modes() {
        let dir = tempfile::tempdir().unwrap();
        let pki = dir.path().join("pki/minion");
        let first = KeyPair::load_or_create(&pki, "minion").unwrap();
        let again = KeyPair::load_or_create(&pki, "minion").unwrap();
        assert_eq!(first.public_pem(), again.public_pem());
        assert!(
            first
                .public_pem()
                .starts_with("-----BEGIN PUBLIC KEY-----\n")
        );
        assert!(first.public_pem().ends_with("\n-----END PUBLIC KEY-----"));
        let mode = |p: &str| std::fs::metadata(pki.join(p)).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode("minion.pem"), 0o400);
        assert_eq!(mode("minion.pub"), 0o644);
        let on_disk = std::fs::read_to_string(pki.join("minion.pub")).unwrap();
        assert_eq!(on_disk.trim_end(), first.public_pem());
        assert_eq!(
            public_der(&on_disk).map(|der| public_pem(&der)),
            Some(first.public_pem().to_owned())
        );
    }

    #[test]
    fn an_ed25519_key_made_by_openssl_loads_with_its_public_key() {
        // `openssl genpkey -algorithm ed25519` (PKCS#8 v1, no public key inside) and its
        // `openssl pkey -pubout`.
        let dir = tempfile::tempdir().unwrap();
        let write_key = |name: &str, text: &str| {
            let path = dir.path().join(name);
            std::fs::write(&path, text).unwrap();
            std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o400)).unwrap();
        };
        write_key(
            "master.pem",
            "-----BEGIN PRIVATE KEY-----\nMC4CAQAwBQYDK2VwBCIEIIm6bnjc6+y69OLuXV86Ai5MhI7MmKwnqtVUAhETHnXG\n-----END PRIVATE KEY-----\n",
        );
        let (pair, created) = KeyPair::load_or_generate(dir.path(), "master").unwrap();
        assert!(!created);
        assert_eq!(
            pair.public_pem(),
            "-----BEGIN PUBLIC KEY-----\nMCowBQYDK2VwAyEALUR7bnYc+ctN68+FzRhKjze8kT8DnYlHyn9i1GtrXrU=\n-----END PUBLIC KEY-----"
        );
        // Not a key at all: refused with the file named.
        write_key(
            "bad.pem",
            "-----BEGIN PRIVATE KEY-----\nYWJj\n-----END PRIVATE KEY-----\n",
        );
        let err = KeyPair::load_or_generate(dir.path(), "bad").unwrap_err();
        assert!(
            err.to_string().contains("bad.pem is not a valid key file"),
            "{err}"
        );
    }

    #[test]
    fn fingerprints_hash_the_base64_lines_as_salt_does() {
        // The body line "YWJj\n" (base64 of "abc"): sha256("YWJj\n").
        let pem_text = public_pem(b"abc");
        assert_eq!(pem_text.lines().nth(1), Some("YWJj"));
        let expected = crate::config::hexdigest(b"YWJj\n", "sha256").unwrap();
        let finger = fingerprint(&pem_text, "sha256").unwrap();
        assert_eq!(finger.replace(':', ""), expected);
        assert_eq!(finger.len(), 95);
        assert_eq!(
            fingerprint(&format!("{pem_text}\n"), "sha256").unwrap(),
            finger
        );
        // Salt's fingerprint of a file with no body: sha256 of nothing.
        assert!(
            fingerprint("not a key", "sha256")
                .unwrap()
                .starts_with("e3:b0:c4:42")
        );
    }
}
