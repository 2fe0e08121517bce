//! The on-disk queue that keeps what a returner could not store yet (its database was down),
//! until it can.
//!
//! A spool is a directory of segment files, `<seq>.spool`, each a run of records framed as a
//! 4-byte big-endian length and a msgpack value, appended in order; `head` says how far the
//! oldest segment was delivered. Every operation takes an exclusive lock on the directory, so a
//! daemon and a one-shot command (`salt-call --return`) may share one spool. The spool is bounded:
//! past `max_bytes` its oldest segments are removed and their records counted as dropped.

use std::fs::{File, OpenOptions};
use std::io::{Read, Write};
use std::os::unix::fs::DirBuilderExt;
use std::path::{Path, PathBuf};

use crate::event::Value;

/// How large a segment grows before the next one starts (a quarter of the spool when that is
/// less): what dropping the oldest loses at once.
const SEGMENT_BYTES: u64 = 1024 * 1024;
/// A record larger than this is not a record (a damaged length).
const MAX_RECORD: u32 = 256 * 1024 * 1024;

/// A returner's spool directory.
#[derive(Debug, Clone)]
pub struct Spool {
    dir: PathBuf,
    max_bytes: u64,
}

/// Where delivery stands: the segment and the byte offset in it of the next record.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Default)]
pub struct Cursor {
    segment: u64,
    offset: u64,
}

impl Spool {
    /// Opens (creating, private to the daemon's user) the spool in `dir`, holding at most
    /// `max_bytes`; a record cut short by a crash at the end of the last segment is removed.
    pub fn open(dir: &Path, max_bytes: u64) -> std::io::Result<Self> {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o700)
            .create(dir)?;
        let spool = Self {
            dir: dir.to_owned(),
            max_bytes,
        };
        let _lock = spool.lock()?;
        if let Some(&last) = spool.segments()?.last() {
            let path = spool.segment(last);
            let whole = whole_length(&std::fs::read(&path)?);
            OpenOptions::new().write(true).open(&path)?.set_len(whole)?;
        }
        Ok(spool)
    }

    /// The directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Appends `records` in order, durably; returns how many of the oldest records were
    /// dropped to stay within the spool's size.
    pub fn push(&self, records: &[Value]) -> std::io::Result<u64> {
        let mut frames = Vec::new();
        for record in records {
            let start = frames.len();
            frames.extend_from_slice(&[0; 4]);
            rmpv::encode::write_value(&mut frames, record)?;
            let length = u32::try_from(frames.len() - start - 4).unwrap_or(u32::MAX);
            frames[start..start + 4].copy_from_slice(&length.to_be_bytes());
        }
        let _lock = self.lock()?;
        let segments = self.segments()?;
        let segment_bytes = SEGMENT_BYTES.min(self.max_bytes / 4).max(1);
        let seq = match segments.last() {
            Some(&last) if self.size(last) + frames.len() as u64 <= segment_bytes => last,
            Some(&last) if self.size(last) == 0 => last,
            Some(&last) => last + 1,
            // Past the head: a head left by segments removed since must not point into a new one.
            None => self.head()?.segment + 1,
        };
        let path = self.segment(seq);
        let mut file = OpenOptions::new().create(true).append(true).open(&path)?;
        let length = file.metadata()?.len();
        if let Err(err) = file.write_all(&frames).and_then(|()| file.sync_data()) {
            // A frame half written (a full disk) would garble everything appended after it.
            let _ = file.set_len(length);
            return Err(err);
        }
        self.trim()
    }

    /// Up to `max` of the oldest records, and the cursor past them for [`Spool::commit`].
    pub fn peek(&self, max: usize) -> std::io::Result<(Vec<Value>, Cursor)> {
        let _lock = self.lock()?;
        let mut cursor = self.head()?;
        let mut records = Vec::new();
        for seq in self.segments()? {
            if seq < cursor.segment {
                continue;
            }
            if seq > cursor.segment {
                cursor = Cursor {
                    segment: seq,
                    offset: 0,
                };
            }
            let bytes = std::fs::read(self.segment(seq))?;
            let mut at = usize::try_from(cursor.offset).unwrap_or(usize::MAX);
            while records.len() < max {
                let Some((record, next)) = frame_at(&bytes, at) else {
                    break;
                };
                at = next;
                match rmpv::decode::read_value(&mut &*record) {
                    Ok(value) => records.push(value),
                    Err(err) => tracing::warn!(
                        "skipped a damaged record in the returner spool {}: {err}",
                        self.dir.display()
                    ),
                }
            }
            if records.len() < max && at < bytes.len() {
                // A damaged length: what follows in this segment cannot be framed.
                tracing::warn!(
                    "skipped {} damaged bytes at the end of {} in the returner spool",
                    bytes.len() - at,
                    self.segment(seq).display()
                );
                at = bytes.len();
            }
            cursor.offset = at as u64;
            if records.len() >= max {
                break;
            }
        }
        Ok((records, cursor))
    }

    /// Marks everything before `cursor` delivered, removing the segments wholly delivered.
    pub fn commit(&self, cursor: Cursor) -> std::io::Result<()> {
        let _lock = self.lock()?;
        for seq in self.segments()? {
            if seq < cursor.segment {
                std::fs::remove_file(self.segment(seq))?;
            }
        }
        let partial = self.dir.join("head.tmp");
        std::fs::write(&partial, format!("{} {}\n", cursor.segment, cursor.offset))?;
        std::fs::rename(partial, self.dir.join("head"))
    }

    /// The bytes waiting to be delivered, as the files say now: read without the lock, so that
    /// asking never waits for a writer.
    pub fn pending_bytes(&self) -> u64 {
        let head = self.head().unwrap_or_default();
        self.segments()
            .unwrap_or_default()
            .into_iter()
            .filter(|&seq| seq >= head.segment)
            .map(|seq| {
                let size = self.size(seq);
                if seq == head.segment {
                    size.saturating_sub(head.offset)
                } else {
                    size
                }
            })
            .sum()
    }

    /// Removes the oldest segments while the spool is over its size (never the newest: one
    /// batch always fits); returns how many undelivered records went with them.
    fn trim(&self) -> std::io::Result<u64> {
        let head = self.head()?;
        let mut segments = self.segments()?;
        let mut dropped = 0;
        while segments.len() > 1 {
            let total: u64 = segments.iter().map(|&seq| self.size(seq)).sum();
            if total <= self.max_bytes {
                break;
            }
            let oldest = segments.remove(0);
            let path = self.segment(oldest);
            let bytes = std::fs::read(&path)?;
            let from = if oldest == head.segment {
                head.offset
            } else {
                0
            };
            dropped += count_frames(&bytes, usize::try_from(from).unwrap_or(usize::MAX));
            std::fs::remove_file(path)?;
        }
        Ok(dropped)
    }

    fn lock(&self) -> std::io::Result<nix::fcntl::Flock<File>> {
        let file = OpenOptions::new()
            .create(true)
            .truncate(false)
            .write(true)
            .open(self.dir.join("lock"))?;
        nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusive)
            .map_err(|(_, errno)| std::io::Error::from(errno))
    }

    /// Where delivery stands; a head naming a segment dropped since starts at the next one.
    fn head(&self) -> std::io::Result<Cursor> {
        let mut text = String::new();
        match File::open(self.dir.join("head")) {
            Ok(mut file) => {
                file.read_to_string(&mut text)?;
            }
            Err(err) if err.kind() == std::io::ErrorKind::NotFound => {}
            Err(err) => return Err(err),
        }
        let mut fields = text.split_whitespace().map(|field| field.parse().ok());
        let head = match (fields.next().flatten(), fields.next().flatten()) {
            (Some(segment), Some(offset)) => Cursor { segment, offset },
            _ => Cursor::default(),
        };
        let segments = self.segments()?;
        if segments.contains(&head.segment) {
            return Ok(head);
        }
        // Its segment is gone (dropped, or removed by hand): on from the next one there is.
        let next = segments
            .into_iter()
            .find(|&seq| seq > head.segment)
            .unwrap_or(head.segment);
        Ok(Cursor {
            segment: next,
            offset: 0,
        })
    }

    fn segments(&self) -> std::io::Result<Vec<u64>> {
        let mut found: Vec<u64> = std::fs::read_dir(&self.dir)?
            .filter_map(Result::ok)
            .filter_map(|entry| {
                entry
                    .file_name()
                    .to_str()?
                    .strip_suffix(".spool")?
                    .parse()
                    .ok()
            })
            .collect();
        found.sort_unstable();
        Ok(found)
    }

    fn segment(&self, seq: u64) -> PathBuf {
        self.dir.join(format!("{seq:016}.spool"))
    }

    fn size(&self, seq: u64) -> u64 {
        std::fs::metadata(self.segment(seq)).map_or(0, |meta| meta.len())
    }
}

/// The record framed at `at`, and where the next one starts; `None` at the end or at a record
/// cut short.
fn frame_at(bytes: &[u8], at: usize) -> Option<(&[u8], usize)> {
    let header: [u8; 4] = bytes.get(at..at.checked_add(4)?)?.try_into().ok()?;
    let length = u32::from_be_bytes(header);
    if length > MAX_RECORD {
        return None;
    }
    let end = at + 4 + length as usize;
    Some((bytes.get(at + 4..end)?, end))
}

fn count_frames(bytes: &[u8], mut at: usize) -> u64 {
    let mut count = 0;
    while let Some((_, next)) = frame_at(bytes, at) {
        count += 1;
        at = next;
    }
    count
}

/// The length of the whole records at the start of a segment.
fn whole_length(bytes: &[u8]) -> u64 {
    let mut at = 0;
    while let Some((_, next)) = frame_at(bytes, at) {
        at = next;
    }
    at as u64
}

#[cfg(test)]
mod tests {
    use super::*;

    fn records(range: std::ops::Range<i64>) -> Vec<Value> {
        range.map(Value::from).collect()
    }

    #[test]
    fn records_come_back_in_order_once_across_segments_and_reopening() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), u64::MAX).unwrap();
        let big = Value::from("x".repeat(300_000));
        spool.push(&records(0..3)).unwrap();
        for _ in 0..4 {
            spool.push(std::slice::from_ref(&big)).unwrap();
        }
        spool.push(&records(3..5)).unwrap();
        assert!(spool.segments().unwrap().len() > 1);

        let (first, cursor) = spool.peek(2).unwrap();
        assert_eq!(first, records(0..2));
        // Not committed: the same records again.
        assert_eq!(spool.peek(2).unwrap().0, first);
        spool.commit(cursor).unwrap();

        let spool = Spool::open(dir.path(), u64::MAX).unwrap();
        let (rest, cursor) = spool.peek(100).unwrap();
        assert_eq!(rest.len(), 1 + 4 + 2);
        assert_eq!(rest[0], Value::from(2));
        assert_eq!(rest[5..], records(3..5));
        spool.commit(cursor).unwrap();
        assert!(spool.peek(10).unwrap().0.is_empty());
        assert_eq!(spool.pending_bytes(), 0);
        assert_eq!(spool.segments().unwrap().len(), 1);
    }

    #[test]
    fn a_full_spool_drops_its_oldest_records_and_counts_them() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), 2 * SEGMENT_BYTES).unwrap();
        let record = |n: i64| Value::Array(vec![Value::from(n), Value::from("y".repeat(100_000))]);
        let mut dropped = 0;
        for n in 0..40 {
            dropped += spool.push(&[record(n)]).unwrap();
        }
        let (kept, _) = spool.peek(100).unwrap();
        assert_eq!(dropped + kept.len() as u64, 40);
        assert!(dropped > 0 && kept.len() < 40);
        // What is kept is the newest, in order.
        assert_eq!(kept.last(), Some(&record(39)));
        assert_eq!(kept[0], record(dropped as i64));
    }

    #[test]
    fn a_record_cut_short_by_a_crash_is_removed_on_open() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), u64::MAX).unwrap();
        spool.push(&records(0..2)).unwrap();
        let segment = spool.segment(spool.segments().unwrap()[0]);
        let mut file = OpenOptions::new().append(true).open(&segment).unwrap();
        file.write_all(&[0, 0, 0, 9, 1]).unwrap();
        let spool = Spool::open(dir.path(), u64::MAX).unwrap();
        spool.push(&records(2..3)).unwrap();
        assert_eq!(spool.peek(10).unwrap().0, records(0..3));
    }

    #[test]
    fn a_spool_whose_segments_were_removed_delivers_what_comes_next() {
        let dir = tempfile::tempdir().unwrap();
        let spool = Spool::open(dir.path(), u64::MAX).unwrap();
        spool.push(&records(0..3)).unwrap();
        let (_, cursor) = spool.peek(2).unwrap();
        spool.commit(cursor).unwrap();
        for seq in spool.segments().unwrap() {
            std::fs::remove_file(spool.segment(seq)).unwrap();
        }
        spool.push(&records(3..5)).unwrap();
        assert_eq!(spool.peek(10).unwrap().0, records(3..5));
    }
}
