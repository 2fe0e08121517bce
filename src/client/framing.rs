//! Finding out which framing a pull socket accepts.
//!
//! Real Salt accepts exactly one framing on its pull sockets and silently drops the other
//! (3007.8 wants bare frames, 3006.30 and 3007.17 length-prefixed ones), and a pull socket never
//! answers. So the first event is the probe: it is sent bare on a fresh connection while
//! listening on the publish socket; if it does not come back, it is sent length-prefixed on
//! another. Bare goes first because a bare frame can never be half-understood by a
//! length-prefixed reader (it reads as a length of gigabytes and waits, and closing the
//! connection discards it), whereas a short length prefix reads as harmless integers to a bare
//! reader. The answer is cached per socket file (device, inode and mtime, so a restarted daemon
//! is probed again) in the per-user runtime directory, and not at all when that directory
//! is not this user's alone.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use futures_util::StreamExt;
use sha2::Digest;
use tokio::io::AsyncWriteExt;
use tokio_util::codec::FramedRead;

use super::{ClientError, connect};
use crate::config::user_runtime_dir;
use crate::ipc::{BusAddress, Endpoint, Stream};
use crate::wire::{self, FrameCodec, Framing};

/// How long a probe event may take to come back on the publish socket.
const PROBE_TIMEOUT: Duration = Duration::from_secs(1);

/// Time for the daemon to register the probing subscriber before the probe is sent; a
/// subscriber registered late would miss the probe and a framing that works would be rejected.
const SUBSCRIBE_SETTLE: Duration = Duration::from_millis(30);

/// The framing last found for this pull socket, if the socket has not changed since.
pub(super) fn cached(pull: &Endpoint) -> Option<Framing> {
    read_cache(cache_dir()?, pull)
}

fn store(pull: &Endpoint, framing: Framing) {
    if let Some(dir) = cache_dir() {
        write_cache(dir, pull, framing);
    }
}

/// The cache's directory in the per-user runtime directory, or `None` (said once) when that
/// directory cannot be trusted: a probe per command costs less than a cache someone else
/// controls.
fn cache_dir() -> Option<&'static Path> {
    static DIR: OnceLock<Option<PathBuf>> = OnceLock::new();
    DIR.get_or_init(|| match user_runtime_dir() {
        Ok(dir) => Some(dir.join("framing")),
        Err(err) => {
            tracing::warn!("not remembering which framing sockets accept: {err}");
            None
        }
    })
    .as_deref()
}

fn read_cache(dir: &Path, pull: &Endpoint) -> Option<Framing> {
    let text = std::fs::read_to_string(cache_file(dir, pull)).ok()?;
    let (framing, identity) = text.split_once(' ')?;
    if identity != socket_identity(pull)? {
        return None;
    }
    match framing {
        "bare" => Some(Framing::Bare),
        "length_prefixed" => Some(Framing::LengthPrefixed),
        _ => None,
    }
}

/// Writes the entry through a fresh temporary file (created exclusively, so never through a
/// link someone left there) renamed over the old one. A cache that cannot be written only costs
/// a probe next time.
fn write_cache(dir: &Path, pull: &Endpoint, framing: Framing) {
    use std::os::unix::fs::DirBuilderExt;
    let Some(identity) = socket_identity(pull) else {
        return;
    };
    match std::fs::DirBuilder::new().mode(0o700).create(dir) {
        Err(err) if err.kind() != std::io::ErrorKind::AlreadyExists => return,
        _ => {}
    }
    let Ok(mut temporary) = tempfile::NamedTempFile::new_in(dir) else {
        return;
    };
    if temporary
        .write_all(format!("{} {identity}", framing.name()).as_bytes())
        .is_ok()
    {
        let _ = temporary.persist(cache_file(dir, pull));
    }
}

/// One cache file per socket path, so the cache never grows past the sockets in use.
fn cache_file(dir: &Path, pull: &Endpoint) -> PathBuf {
    let digest = sha2::Sha256::digest(pull.to_string().as_bytes());
    let name: String = digest.iter().take(12).map(|b| format!("{b:02x}")).collect();
    dir.join(name)
}

/// What changes when a daemon re-creates its socket: device, inode and modification time.
fn socket_identity(pull: &Endpoint) -> Option<String> {
    use std::os::unix::fs::MetadataExt;
    match pull {
        Endpoint::Unix(path) => {
            let meta = std::fs::metadata(path).ok()?;
            Some(format!(
                "{}:{}:{}.{}",
                meta.dev(),
                meta.ino(),
                meta.mtime(),
                meta.mtime_nsec()
            ))
        }
        // A TCP port has no identity to compare; a restarted daemon on it is simply trusted.
        Endpoint::Tcp(_) => Some("tcp".to_owned()),
    }
}

/// Sends the event bare, then (if it did not come back) length-prefixed as `second()`, each on a
/// fresh connection, and returns a connection in the framing that worked. A late echo of the
/// bare attempt still counts as bare.
pub(super) async fn probe(
    address: &BusAddress,
    first: &[u8],
    second: impl FnOnce() -> Vec<u8>,
) -> Result<(Stream, Framing), ClientError> {
    let mut watch = match connect(&address.publish).await {
        Ok(stream) => FramedRead::new(stream, FrameCodec::new(crate::wire::DEFAULT_MAX_FRAME)),
        Err(err) => {
            // Without the publish socket nothing can be verified; bare is what most releases read.
            tracing::debug!(
                "cannot watch {} to detect framing ({err}); sending bare",
                address.publish
            );
            return send(&address.pull, first, Framing::Bare).await;
        }
    };
    tokio::time::sleep(SUBSCRIBE_SETTLE).await;
    let (bare, _) = send(&address.pull, first, Framing::Bare).await?;
    let framing = match echo(&mut watch, first, None).await {
        Some(framing) => Some(framing),
        None => {
            // A bare frame the daemon did not take is discarded when its connection closes.
            drop(bare);
            let second = second();
            let (prefixed, _) = send(&address.pull, &second, Framing::LengthPrefixed).await?;
            let seen = echo(&mut watch, first, Some(&second)).await;
            drop(prefixed);
            seen
        }
    };
    let Some(framing) = framing else {
        let fix = match address.pull {
            Endpoint::Tcp(_) => {
                "with ipc_mode: tcp the daemon takes events only from root and its own user; run as one of them"
            }
            Endpoint::Unix(_) => "set ipc_framing to bare or length_prefixed in the config",
        };
        return Err(ClientError::NotDelivered(format!(
            "{} accepted the connection but the event did not appear on {} in either framing; {fix}",
            address.pull, address.publish
        )));
    };
    tracing::debug!("{} accepts {} frames", address.pull, framing.name());
    store(&address.pull, framing);
    Ok((connect(&address.pull).await?, framing))
}

/// Waits for one of the probe bodies on the publish socket: `bare` proves bare framing,
/// `prefixed` length-prefixed.
async fn echo(
    watch: &mut FramedRead<Stream, FrameCodec>,
    bare: &[u8],
    prefixed: Option<&[u8]>,
) -> Option<Framing> {
    tokio::time::timeout(PROBE_TIMEOUT, async {
        while let Some(frame) = watch.next().await {
            let Ok(Ok(published)) = frame else { continue };
            let body = published.body();
            if body == bare {
                return Some(Framing::Bare);
            }
            if prefixed.is_some_and(|prefixed| body == prefixed) {
                return Some(Framing::LengthPrefixed);
            }
        }
        None
    })
    .await
    .ok()
    .flatten()
}

async fn send(
    pull: &Endpoint,
    body: &[u8],
    framing: Framing,
) -> Result<(Stream, Framing), ClientError> {
    let mut stream = connect(pull).await?;
    let mut frame = Vec::with_capacity(body.len() + 16);
    wire::encode_frame(body, framing, &mut frame);
    stream
        .write_all(&frame)
        .await
        .map_err(|source| ClientError::Io {
            endpoint: pull.clone(),
            source,
        })?;
    stream.flush().await.map_err(|source| ClientError::Io {
        endpoint: pull.clone(),
        source,
    })?;
    Ok((stream, framing))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_link_planted_at_the_old_temporary_name_is_not_written_through() {
        let dir = tempfile::tempdir().unwrap();
        let victim = dir.path().join("victim");
        std::fs::write(&victim, "precious").unwrap();
        let pull = Endpoint::Tcp(4513);
        // Earlier releases wrote `<cache file>.tmp<pid>`, a name anyone could predict.
        let cache = cache_file(dir.path(), &pull);
        let predicted = cache.with_extension(format!("tmp{}", std::process::id()));
        std::os::unix::fs::symlink(&victim, &predicted).unwrap();
        write_cache(dir.path(), &pull, Framing::LengthPrefixed);
        assert_eq!(std::fs::read_to_string(&victim).unwrap(), "precious");
        assert_eq!(read_cache(dir.path(), &pull), Some(Framing::LengthPrefixed));
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&cache).unwrap().permissions().mode();
        assert_eq!(mode & 0o077, 0, "the cache file is private");
    }
}
