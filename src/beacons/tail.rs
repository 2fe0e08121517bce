//! Following a file that grows, as `tail -F` does, for the beacons that report what is appended
//! to a log (`log`, `wtmp`, `btmp`).
//!
//! The first look only notes where the file ends (Salt's modules start there too); each later
//! one returns what was appended since. A file truncated in place is read again from its start
//! (noticed by its size, or, when it grew past the old end again, by the bytes before that end);
//! a file renamed away (rotated) is read to its end, then the new file at the path from its
//! start. A file that is missing at the first look, or that goes away, is an error until it
//! appears, and is then read from its start: all of it is new. A path that is not a regular file
//! (a FIFO, a device, a socket, a directory) is an error too, and is not opened: opening a FIFO
//! waits for a writer, and reading a device may never end.

use std::fs::{File, Metadata, OpenOptions};
use std::os::unix::fs::{FileExt, FileTypeExt, MetadataExt, OpenOptionsExt};
use std::path::{Path, PathBuf};

use nix::fcntl::OFlag;

/// Bytes before the read position kept to recognise the file: when they change, the file was
/// truncated and written again.
const MARK: u64 = 64;

/// A file followed.
#[derive(Debug)]
pub(super) struct Tail {
    path: PathBuf,
    open: Option<Open>,
    /// False until the first look: only then does reading start at the end.
    started: bool,
}

#[derive(Debug)]
struct Open {
    file: File,
    /// Device and inode: another pair at the path means the file was rotated.
    id: (u64, u64),
    /// Where the next read starts.
    pos: u64,
    /// Bytes given back by the last [`Tail::unread`]: an incomplete line or record.
    held: u64,
    /// The [`MARK`] bytes before `pos`, as they were read.
    mark: Vec<u8>,
}

impl Open {
    fn at(file: File, id: (u64, u64), pos: u64) -> std::io::Result<Self> {
        let mut open = Self {
            file,
            id,
            pos,
            held: 0,
            mark: Vec::new(),
        };
        open.mark = open.before()?;
        Ok(open)
    }

    fn read(&mut self, max: usize) -> std::io::Result<Vec<u8>> {
        let left = self.file.metadata()?.len().saturating_sub(self.pos);
        let max = usize::try_from(left).map_or(max, |left| left.min(max));
        let mut bytes = vec![0; max];
        let mut len = 0;
        while len < max {
            match self.file.read_at(&mut bytes[len..], self.pos + len as u64) {
                Ok(0) => break,
                Ok(read) => len += read,
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => {}
                Err(err) => return Err(err),
            }
        }
        bytes.truncate(len);
        self.pos += len as u64;
        self.held = 0;
        self.mark = self.before()?;
        Ok(bytes)
    }

    /// The bytes before `pos` now.
    fn before(&self) -> std::io::Result<Vec<u8>> {
        let len = self.pos.min(MARK);
        let mut bytes = vec![0; len as usize];
        self.file.read_exact_at(&mut bytes, self.pos - len)?;
        Ok(bytes)
    }

    /// Whether the file was truncated since the last read.
    fn truncated(&self, len: u64) -> bool {
        len < self.pos || self.before().map_or(true, |bytes| bytes != self.mark)
    }
}

impl Tail {
    /// Follows the file at `path` (on the system it is read from).
    pub(super) fn new(path: PathBuf) -> Self {
        Self {
            path,
            open: None,
            started: false,
        }
    }

    /// What was appended since the last read, at most `max` bytes (the rest comes next time).
    pub(super) fn read(&mut self, max: usize) -> Result<Vec<u8>, String> {
        let first = !std::mem::replace(&mut self.started, true);
        let error = |err: std::io::Error| format!("cannot read {}: {err}", self.path.display());
        let now = std::fs::metadata(&self.path);
        if let Some(open) = &mut self.open {
            match &now {
                Ok(meta) if (meta.dev(), meta.ino()) == open.id => {
                    if open.truncated(meta.len()) {
                        open.pos = 0;
                    }
                    return open.read(max).map_err(error);
                }
                _ => {
                    // Rotated or removed: what the old file got before is still to be read.
                    // An incomplete line left at its end will not be completed.
                    let left = open.file.metadata().map_err(error)?.len();
                    if left.saturating_sub(open.pos) > open.held {
                        return open.read(max).map_err(error);
                    }
                    self.open = None;
                }
            }
        }
        let meta = now.map_err(error)?;
        regular(&meta, &self.path)?;
        // Never waits, should the path have become a FIFO since.
        let file = OpenOptions::new()
            .read(true)
            .custom_flags(OFlag::O_NONBLOCK.bits())
            .open(&self.path)
            .map_err(error)?;
        let meta = file.metadata().map_err(error)?;
        regular(&meta, &self.path)?;
        let pos = if first { meta.len() } else { 0 };
        let open = self
            .open
            .insert(Open::at(file, (meta.dev(), meta.ino()), pos).map_err(error)?);
        if first {
            return Ok(Vec::new());
        }
        open.read(max).map_err(error)
    }

    /// Gives back the last `count` bytes of the last read, an incomplete line or record, to be
    /// read again with what follows (left behind if the file is rotated first).
    pub(super) fn unread(&mut self, count: usize) {
        self.give_back(count, true);
    }

    /// Leaves the last `count` bytes of the last read, not looked at yet, to the next read,
    /// even from a file rotated since.
    pub(super) fn defer(&mut self, count: usize) {
        self.give_back(count, false);
    }

    fn give_back(&mut self, count: usize, incomplete: bool) {
        if let Some(open) = &mut self.open {
            let count = (count as u64).min(open.pos);
            open.pos -= count;
            open.held = if incomplete { count } else { 0 };
            // Unreadable now: the next read finds the file changed and starts again.
            open.mark = open.before().unwrap_or_default();
        }
    }
}

/// Refuses what is not a regular file, saying what it is.
fn regular(meta: &Metadata, path: &Path) -> Result<(), String> {
    let kind = meta.file_type();
    let what = if kind.is_file() {
        return Ok(());
    } else if kind.is_dir() {
        "a directory"
    } else if kind.is_fifo() {
        "a FIFO"
    } else if kind.is_socket() {
        "a socket"
    } else if kind.is_block_device() || kind.is_char_device() {
        "a device"
    } else {
        "of another kind"
    };
    Err(format!(
        "cannot read {}: it is {what}, not a regular file",
        path.display()
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;
    use std::path::Path;

    fn append(path: &Path, text: &str) {
        std::fs::OpenOptions::new()
            .append(true)
            .create(true)
            .open(path)
            .unwrap()
            .write_all(text.as_bytes())
            .unwrap();
    }

    fn read(tail: &mut Tail) -> String {
        String::from_utf8(tail.read(1 << 20).unwrap()).unwrap()
    }

    #[test]
    fn starts_at_the_end_then_reads_what_is_appended() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        append(&path, "old\n");
        let mut tail = Tail::new(path.clone());
        assert_eq!(read(&mut tail), "");
        append(&path, "one\ntw");
        assert_eq!(read(&mut tail), "one\ntw");
        tail.unread(2);
        append(&path, "o\n");
        assert_eq!(read(&mut tail), "two\n");
        assert_eq!(read(&mut tail), "");
    }

    #[test]
    fn truncation_and_rotation_lose_nothing() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        append(&path, "old\n");
        let mut tail = Tail::new(path.clone());
        read(&mut tail);
        std::fs::write(&path, "").unwrap();
        append(&path, "after truncation\n");
        assert_eq!(read(&mut tail), "after truncation\n");
        append(&path, "before rotation\n");
        std::fs::rename(&path, dir.path().join("log.1")).unwrap();
        append(&path, "new file\n");
        assert_eq!(read(&mut tail), "before rotation\n");
        assert_eq!(read(&mut tail), "new file\n");
        std::fs::remove_file(&path).unwrap();
        assert!(tail.read(100).unwrap_err().contains("cannot read"));
        append(&path, "recreated\n");
        assert_eq!(read(&mut tail), "recreated\n");
    }

    #[test]
    fn a_file_missing_at_the_start_is_read_whole_when_it_appears() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("btmp");
        let mut tail = Tail::new(path.clone());
        assert!(tail.read(100).is_err());
        append(&path, "first\n");
        assert_eq!(read(&mut tail), "first\n");
    }

    #[test]
    fn an_incomplete_end_of_a_rotated_file_is_left_behind() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        append(&path, "");
        let mut tail = Tail::new(path.clone());
        read(&mut tail);
        append(&path, "cut");
        assert_eq!(read(&mut tail), "cut");
        tail.unread(3);
        std::fs::rename(&path, dir.path().join("log.1")).unwrap();
        append(&path, "next\n");
        assert_eq!(read(&mut tail), "next\n");
    }

    #[test]
    fn what_is_not_a_regular_file_is_refused_without_waiting() {
        let dir = tempfile::tempdir().unwrap();
        let fifo = dir.path().join("fifo");
        nix::unistd::mkfifo(&fifo, nix::sys::stat::Mode::S_IRWXU).unwrap();
        let (done, result) = std::sync::mpsc::channel();
        let path = fifo.clone();
        std::thread::spawn(move || {
            let mut tail = Tail::new(path);
            let _ = done.send((tail.read(100), tail.read(100)));
        });
        let Ok((first, again)) = result.recv_timeout(std::time::Duration::from_secs(5)) else {
            // A writer lets the blocked open return.
            let _ = std::fs::OpenOptions::new().write(true).open(&fifo);
            panic!("reading a FIFO waited for a writer");
        };
        for result in [first, again] {
            assert_eq!(
                result.unwrap_err(),
                format!(
                    "cannot read {}: it is a FIFO, not a regular file",
                    fifo.display()
                )
            );
        }
        let error = Tail::new("/dev/zero".into()).read(100).unwrap_err();
        assert!(
            error.ends_with("it is a device, not a regular file"),
            "{error}"
        );
        let error = Tail::new(dir.path().into()).read(100).unwrap_err();
        assert!(
            error.ends_with("it is a directory, not a regular file"),
            "{error}"
        );
    }

    #[test]
    fn deferred_bytes_are_read_again_even_after_a_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("log");
        append(&path, "");
        let mut tail = Tail::new(path.clone());
        read(&mut tail);
        append(&path, "one\ntwo\nthree\n");
        assert_eq!(read(&mut tail), "one\ntwo\nthree\n");
        tail.defer(10);
        std::fs::rename(&path, dir.path().join("log.1")).unwrap();
        append(&path, "new\n");
        assert_eq!(read(&mut tail), "two\nthree\n");
        assert_eq!(read(&mut tail), "new\n");
    }
}
