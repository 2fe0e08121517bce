//! Salt's `rawfile_json` returner: each return, and each event as `{"data": …, "tag": …}`, as
//! one line of Python's `json.dumps` (`ensure_ascii=False`) appended to `rawfile_json.filename`
//! (default `/var/log/salt/events`), under an exclusive `flock` as Salt's `flopen` takes it, so
//! that the lines of writers sharing the file (a Salt master among them) do not interleave.
//!
//! A batch is one write, and all or nothing: a write that fails (a full disk) is cut back, still
//! under the lock, to where the file ended, so that a retry leaves neither half a line nor a
//! line twice. Salt's writes line after line and leaves what it wrote. Neither creates the
//! file's directory: a missing one is a mistake to report, not to paper over.

use std::fs::{File, OpenOptions};
use std::io::{ErrorKind, Write};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{Flock, FlockArg};

use super::{Options, Pending, Returner, ReturnerError};
use crate::event::{Event, Value};
use crate::py::json::{self as pyjson, Format};

/// Where Salt writes by default.
const DEFAULT_FILENAME: &str = "/var/log/salt/events";
/// How long a write waits for another writer's lock before the batch is left for a retry.
const LOCK_WAIT: Duration = Duration::from_secs(10);
/// How often a held lock is tried again.
const LOCK_POLL: Duration = Duration::from_millis(10);

/// The `rawfile_json` returner.
#[derive(Debug)]
pub struct RawfileJson {
    file: JsonLines,
}

/// Builds it from `rawfile_json.filename`.
pub(super) fn build(options: &Options) -> Result<Arc<dyn Returner>, ReturnerError> {
    let path = options.text("filename", DEFAULT_FILENAME)?;
    Ok(Arc::new(RawfileJson {
        file: JsonLines::new("rawfile_json", "filename", path.into()),
    }))
}

impl Returner for RawfileJson {
    fn name(&self) -> &'static str {
        "rawfile_json"
    }

    fn returns<'a>(&'a self, returns: &'a [Value]) -> Pending<'a, ()> {
        self.file.append(return_lines(returns))
    }

    fn events<'a>(&'a self, events: &'a [Event]) -> Pending<'a, ()> {
        self.file.append(event_lines(events))
    }
}

/// Each return as a line of `json.dumps(ret)`, as Salt's `returner` writes it.
pub(super) fn return_lines(returns: &[Value]) -> Vec<u8> {
    let mut lines = Vec::new();
    for ret in returns {
        pyjson::write(&mut lines, ret, Format::COMPACT);
        lines.push(b'\n');
    }
    lines
}

/// Each event as a line of `json.dumps({"data": data, "tag": tag})`, the items Salt's
/// `event_return` is handed.
pub(super) fn event_lines(events: &[Event]) -> Vec<u8> {
    let mut lines = Vec::new();
    for event in events {
        lines.extend_from_slice(b"{\"data\": ");
        pyjson::write(&mut lines, &event.data, Format::COMPACT);
        lines.extend_from_slice(b", \"tag\": ");
        pyjson::write(
            &mut lines,
            &Value::from(event.tag.as_str()),
            Format::COMPACT,
        );
        lines.extend_from_slice(b"}\n");
    }
    lines
}

/// A file that batches of lines are appended to, each batch under the lock and at once.
#[derive(Debug, Clone)]
pub(super) struct JsonLines {
    returner: &'static str,
    /// The option naming the file, for the fix a failure suggests.
    option: &'static str,
    path: PathBuf,
}

impl JsonLines {
    /// The file at `path`, which `<returner>.<option>` names.
    pub(super) fn new(returner: &'static str, option: &'static str, path: PathBuf) -> Self {
        Self {
            returner,
            option,
            path,
        }
    }

    /// Appends `lines` (nothing when empty: the file is not even opened, as in Salt), on the
    /// blocking pool.
    pub(super) fn append(&self, lines: Vec<u8>) -> Pending<'static, ()> {
        let file = self.clone();
        Box::pin(async move {
            if lines.is_empty() {
                return Ok(());
            }
            let returner = file.returner;
            tokio::task::spawn_blocking(move || file.write(&lines))
                .await
                .map_err(|err| ReturnerError::Unavailable {
                    returner,
                    problem: err.to_string(),
                })?
        })
    }

    fn write(&self, lines: &[u8]) -> Result<(), ReturnerError> {
        let file = OpenOptions::new()
            .append(true)
            .create(true)
            .open(&self.path)
            .map_err(|err| self.unavailable(&err))?;
        let mut locked = lock(file, &self.path).map_err(|problem| ReturnerError::Unavailable {
            returner: self.returner,
            problem,
        })?;
        let end = locked
            .metadata()
            .map_err(|err| self.unavailable(&err))?
            .len();
        locked.write_all(lines).map_err(|err| {
            // Half a batch would be written again whole by the retry.
            let _ = locked.set_len(end);
            self.unavailable(&err)
        })
        // The lock goes with the file.
    }

    /// The error for a file that cannot be written, with what would fix it.
    fn unavailable(&self, err: &std::io::Error) -> ReturnerError {
        let path = self.path.display();
        let option = format!("{}.{}", self.returner, self.option);
        let problem = match err.kind() {
            ErrorKind::NotFound => {
                let dir = self.path.parent().unwrap_or(Path::new("."));
                format!(
                    "cannot write {path}: the directory {} does not exist; create it or set {option}",
                    dir.display()
                )
            }
            ErrorKind::PermissionDenied => format!(
                "cannot write {path}: permission denied; let the user halite runs as write it, or set {option}"
            ),
            _ => format!("cannot write {path}: {err}"),
        };
        ReturnerError::Unavailable {
            returner: self.returner,
            problem,
        }
    }
}

/// Takes the file's exclusive lock, waiting at most [`LOCK_WAIT`] for another writer's.
fn lock(mut file: File, path: &Path) -> Result<Flock<File>, String> {
    let deadline = Instant::now() + LOCK_WAIT;
    loop {
        match Flock::lock(file, FlockArg::LockExclusiveNonblock) {
            Ok(locked) => return Ok(locked),
            Err((unlocked, Errno::EWOULDBLOCK | Errno::EINTR)) if Instant::now() < deadline => {
                file = unlocked;
                std::thread::sleep(LOCK_POLL);
            }
            Err((_, Errno::EWOULDBLOCK)) => {
                return Err(format!(
                    "{} stayed locked by another writer for {LOCK_WAIT:?}",
                    path.display()
                ));
            }
            Err((_, err)) => return Err(format!("cannot lock {}: {err}", path.display())),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn event(tag: &str, data: &str) -> Event {
        Event::new(tag, crate::salt_yaml::load(data).unwrap()).unwrap()
    }

    #[test]
    fn events_are_lines_of_data_then_tag() {
        let lines = event_lines(&[
            event("salt/auth", "{act: accept, 'ü': [1, 2.5, null]}"),
            event("a\"b", "{}"),
        ]);
        assert_eq!(
            String::from_utf8(lines).unwrap(),
            "{\"data\": {\"act\": \"accept\", \"ü\": [1, 2.5, null]}, \"tag\": \"salt/auth\"}\n\
             {\"data\": {}, \"tag\": \"a\\\"b\"}\n"
        );
    }

    #[tokio::test]
    async fn a_batch_is_appended_under_the_lock_once_the_other_writer_lets_go() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("events");
        std::fs::write(&path, "earlier\n").unwrap();
        let other = Flock::lock(File::open(&path).unwrap(), FlockArg::LockExclusive).unwrap();
        let file = JsonLines::new("rawfile_json", "filename", path.clone());
        let appended = tokio::spawn(file.append(b"one\ntwo\n".to_vec()));
        tokio::time::sleep(Duration::from_millis(100)).await;
        assert_eq!(std::fs::read_to_string(&path).unwrap(), "earlier\n");
        drop(other);
        appended.await.unwrap().unwrap();
        assert_eq!(
            std::fs::read_to_string(&path).unwrap(),
            "earlier\none\ntwo\n"
        );
    }

    #[tokio::test]
    async fn a_missing_directory_names_the_file_and_the_fix() {
        let file = JsonLines::new("rawfile_json", "filename", "/nonexistent/dir/events".into());
        let err = file.append(b"x\n".to_vec()).await.unwrap_err();
        assert!(err.retryable());
        assert_eq!(
            err.to_string(),
            "returner rawfile_json: cannot write /nonexistent/dir/events: the directory \
             /nonexistent/dir does not exist; create it or set rawfile_json.filename"
        );
    }
}
