//! `log` (Salt's `log_beacon`): follows a file and fires one event for each new line that a
//! tag's regular expression matches at its start (Python's `re.match`), the tag name as the tag
//! suffix and Salt's data, `{"match": "yes", "raw": "<line>", "error": ""}`.
//!
//! ```yaml
//! beacons:
//!   log:
//!     - file: /var/log/messages
//!     - tags:
//!         goodbye/world:
//!           regex: .*good-bye.*
//! ```
//!
//! The file is read from its end at the start, then followed across truncation and rotation
//! ([`super::tail`]). Where Salt's module differs: a line is reported once it is complete (its
//! newline written), so a line written in two pieces is one line; after a truncation the file is
//! read from its start (Salt reads on from the old length, losing lines); a file empty at the
//! start is followed from its start (Salt skips what is first written to it); a regex Python
//! cannot compile, or a tag without one, is refused when the beacon starts (Salt fires a
//! `bad regex` event at each check, or skips the tag). Bytes that are not UTF-8 are replaced
//! (Salt's check fails on them). A line longer than 64 KiB is matched on its first 64 KiB.
//! One check reads at most 10,000 lines (and 4 MiB): a file that grew by more is read on at the
//! next checks, from the line after the last one read, so memory stays bounded and nothing is
//! lost.

use super::options::{known, map, only, text};
use super::tail::Tail;
use super::{Beacon, Invalid, Module, Options};
use crate::event::{Value, map_get};
use crate::py::re::{Anchoring, Regex};
use crate::py::value::py_str;

pub(super) const MODULE: Module = Module {
    name: "log",
    build,
    closes: false,
};

/// The most read from the file at one check; the rest is read at the next.
const READ_MAX: usize = 4 << 20;
/// The most lines read at one check; the rest are read at the next.
const LINES_MAX: usize = 10_000;
/// The longest line matched whole: a longer one is matched on its first `LINE_MAX` bytes.
const LINE_MAX: usize = 64 << 10;

fn build(options: &Options) -> Result<Box<dyn Beacon>, Invalid> {
    only(options, &["file", "tags"])?;
    let file = options
        .get("file")
        .ok_or_else(|| Invalid::new("file", "the path of the file to follow (it is required)"))
        .and_then(|file| text(file, "file", "the path of the file to follow"))?;
    let mut tags = Vec::new();
    if let Some(given) = options.get("tags") {
        for (name, tag) in map(given, "tags")? {
            let name = py_str(name).into_owned();
            let path = format!("tags:{name}");
            known(map(tag, &path)?, &path, &["regex"])?;
            let key = format!("{path}:regex");
            let pattern = map_get(tag, "regex")
                .ok_or_else(|| Invalid::new(&key, "a regular expression (it is required)"))
                .and_then(|pattern| text(pattern, &key, "a regular expression"))?;
            let regex = Regex::new(&pattern, Anchoring::Match, &pattern)
                .map_err(|err| Invalid::new(&key, format!("a regular expression: {err}")))?;
            tags.push((name, regex));
        }
    }
    Ok(Box::new(Log {
        tail: Tail::new(options.host.path(&file)),
        tags,
        skipping: false,
    }))
}

struct Log {
    tail: Tail,
    tags: Vec<(String, Regex)>,
    /// Inside a line longer than [`LINE_MAX`], whose start was matched already.
    skipping: bool,
}

impl Beacon for Log {
    fn check(&mut self) -> Result<Vec<Value>, String> {
        let bytes = self.tail.read(READ_MAX)?;
        let mut events = Vec::new();
        let mut rest = bytes.as_slice();
        let mut lines = 0;
        let limited = loop {
            if lines == LINES_MAX {
                break true;
            }
            lines += 1;
            let (line, after, complete) = match rest.iter().position(|&b| b == b'\n') {
                Some(end) => (&rest[..end], &rest[end + 1..], true),
                None if rest.len() >= LINE_MAX => (rest, &rest[rest.len()..], false),
                None => break false,
            };
            if !std::mem::replace(&mut self.skipping, !complete) {
                let line = &line[..line.len().min(LINE_MAX)];
                let line = String::from_utf8_lossy(line.strip_suffix(b"\r").unwrap_or(line));
                self.matches(&line, &mut events);
            }
            rest = after;
        };
        if limited {
            self.tail.defer(rest.len());
        } else {
            self.tail.unread(rest.len());
        }
        Ok(events)
    }
}

impl Log {
    fn matches(&self, line: &str, events: &mut Vec<Value>) {
        for (tag, regex) in &self.tags {
            if regex.is_match(line) {
                events.push(Value::Map(vec![
                    ("tag".into(), tag.as_str().into()),
                    ("match".into(), "yes".into()),
                    ("raw".into(), line.into()),
                    ("error".into(), "".into()),
                ]));
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::beacons::Host;

    fn build_with(yaml: &str) -> Result<Box<dyn Beacon>, Invalid> {
        let config = crate::salt_yaml::load(yaml).unwrap();
        build(&Options {
            name: "log",
            config: &config,
            host: &Host::real(),
        })
    }

    #[test]
    fn bad_options_name_the_key() {
        let key = |yaml: &str| build_with(yaml).err().unwrap().key;
        assert_eq!(key("{tags: {}}"), "file");
        assert_eq!(key("{file: 5}"), "file");
        assert_eq!(key("{file: /x, tags: [a]}"), "tags");
        assert_eq!(key("{file: /x, tags: {a: {}}}"), "tags:a:regex");
        assert_eq!(key("{file: /x, tags: {a: {regex: '('}}}"), "tags:a:regex");
        assert_eq!(
            key("{file: /x, tags: {a: {regex: x, flags: 1}}}"),
            "tags:a:flags"
        );
        assert_eq!(key("{file: /x, tag: {}}"), "tag");
    }

    #[test]
    fn long_lines_are_matched_on_their_start_and_the_rest_is_skipped() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("log");
        std::fs::write(&file, "").unwrap();
        let mut beacon = build_with(&format!(
            "{{file: {}, tags: {{long: {{regex: 'x+$'}}, any: {{regex: '.*'}}}}}}",
            file.display()
        ))
        .unwrap();
        assert!(beacon.check().unwrap().is_empty());
        let mut checked = |text: &str| {
            let mut log = std::fs::OpenOptions::new()
                .append(true)
                .open(&file)
                .unwrap();
            std::io::Write::write_all(&mut log, text.as_bytes()).unwrap();
            let events = beacon.check().unwrap();
            events
                .iter()
                .map(|event| {
                    let tag = py_str(map_get(event, "tag").unwrap()).into_owned();
                    (tag, py_str(map_get(event, "raw").unwrap()).len())
                })
                .collect::<Vec<_>>()
        };
        let seen = |tag: &str, len| (tag.to_owned(), len);
        let long = "x".repeat(LINE_MAX + 10);
        assert_eq!(
            checked(&format!("{long}\nshort\r\n")),
            [
                seen("long", LINE_MAX),
                seen("any", LINE_MAX),
                seen("any", 5)
            ]
        );
        // A long line still being written: its start now, nothing of the rest.
        assert_eq!(
            checked(&long),
            [seen("long", LINE_MAX), seen("any", LINE_MAX)]
        );
        assert_eq!(checked("yyy\nz\n"), [seen("any", 1)]);
    }

    #[test]
    fn a_check_reads_at_most_its_lines_and_the_next_reads_on_even_after_a_rotation() {
        let dir = tempfile::tempdir().unwrap();
        let file = dir.path().join("log");
        std::fs::write(&file, "").unwrap();
        let mut beacon = build_with(&format!(
            "{{file: {}, tags: {{any: {{regex: '.*'}}}}}}",
            file.display()
        ))
        .unwrap();
        assert!(beacon.check().unwrap().is_empty());
        let lines: String = (0..LINES_MAX * 5 / 2).map(|n| format!("{n}\n")).collect();
        std::fs::write(&file, lines).unwrap();
        let mut raw = || {
            let events = beacon.check().unwrap();
            let raw = |event: &Value| py_str(map_get(event, "raw").unwrap()).into_owned();
            let first = events.first().map(raw);
            (events.len(), first, events.last().map(raw))
        };
        let seen =
            |len, first: usize, last: usize| (len, Some(first.to_string()), Some(last.to_string()));
        assert_eq!(raw(), seen(LINES_MAX, 0, LINES_MAX - 1));
        std::fs::rename(&file, dir.path().join("log.1")).unwrap();
        std::fs::write(&file, "new\n").unwrap();
        assert_eq!(raw(), seen(LINES_MAX, LINES_MAX, 2 * LINES_MAX - 1));
        assert_eq!(
            raw(),
            seen(LINES_MAX / 2, 2 * LINES_MAX, LINES_MAX * 5 / 2 - 1)
        );
        assert_eq!(raw(), (1, Some("new".into()), Some("new".into())));
        assert_eq!(raw(), (0, None, None));
    }
}
