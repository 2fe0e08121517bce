//! `journald`: fires one event for each new journal entry whose fields match a configured
//! filter, the filter's name as the tag suffix and the entry's fields as the data, as Salt's
//! module does.
//!
//! ```yaml
//! beacons:
//!   journald:
//!     - services:
//!         sshd:
//!           SYSLOG_IDENTIFIER: sshd
//!           PRIORITY: 6
//!     - directory: /var/log/journal/remote
//! ```
//!
//! An entry matches a filter when it has every field listed with that value (compared as text,
//! so `PRIORITY: 6` and `PRIORITY: "6"` both match, where Salt's needs the number; a field with
//! several values matches when one of them does); an empty filter matches every entry. One
//! entry matching two filters is two events.
//!
//! Salt reads the journal through python-systemd; halite through `journalctl --output=json
//! --follow`, a child the beacon owns (killed when the beacon stops, started again with a
//! growing delay if it ends, resuming after the last entry read). `directory:` (halite's) reads
//! the journal files of that directory (`journalctl --directory`) instead of the system's. The
//! first check notes where the journal ends: entries from then on are reported. Without
//! `journalctl` the beacon says so once, as an error event.
//!
//! The data holds journalctl's fields: text, with the fields python-systemd turns into numbers
//! (`PRIORITY`, `_PID`, `_UID`, `SYSLOG_FACILITY`, …) as numbers; timestamps stay journalctl's
//! microseconds (Salt's hold the `repr` of a Python datetime), ids stay hex text (Salt's the
//! `repr` of a UUID), and a value that is not UTF-8 is text with its bad bytes replaced.

use std::path::PathBuf;
use std::process::Command;

use super::child::{Output, Supervised, error_event};
use super::config::describe;
use super::options::{map, only, text};
use super::{Beacon, Invalid, Module, Options};
use crate::event::Value;
use crate::py::value::py_str;

pub(super) const MODULE: Module = Module {
    name: "journald",
    build,
    closes: false,
};

/// Entries taken at one check; the rest wait in the queue.
const ENTRIES_MAX: usize = 1000;
/// The longest entry read; a longer one is dropped with an error event.
const ENTRY_MAX: usize = 4 << 20;

/// The fields python-systemd's reader gives as integers.
const INTEGER_FIELDS: [&str; 23] = [
    "PRIORITY",
    "LEADER",
    "SESSION_ID",
    "USERSPACE_USEC",
    "INITRD_USEC",
    "KERNEL_USEC",
    "_UID",
    "_GID",
    "_PID",
    "SYSLOG_FACILITY",
    "SYSLOG_PID",
    "_AUDIT_SESSION",
    "_AUDIT_LOGINUID",
    "_SYSTEMD_SESSION",
    "_SYSTEMD_OWNER_UID",
    "CODE_LINE",
    "ERRNO",
    "EXIT_STATUS",
    "COREDUMP_PID",
    "COREDUMP_UID",
    "COREDUMP_GID",
    "COREDUMP_SESSION",
    "COREDUMP_SIGNAL",
];

fn build(options: &Options) -> Result<Box<dyn Beacon>, Invalid> {
    only(options, &["services", "directory"])?;
    let mut filters = Vec::new();
    if let Some(services) = options.get("services") {
        for (name, fields) in map(services, "services")? {
            let name = py_str(name).into_owned();
            let path = format!("services:{name}");
            let mut wanted = Vec::new();
            for (field, value) in map(fields, &path)? {
                let field = py_str(field).into_owned();
                let value = match value {
                    Value::String(_) | Value::Integer(_) | Value::Boolean(_) => {
                        py_str(value).into_owned()
                    }
                    other => {
                        return Err(Invalid::new(
                            format!("{path}:{field}"),
                            format!("the value of the field, not {}", describe(other)),
                        ));
                    }
                };
                wanted.push((field, value));
            }
            filters.push((name, wanted));
        }
    }
    let directory = options
        .get("directory")
        .map(|directory| text(directory, "directory", "the path of a journal directory"))
        .transpose()?
        .map(|directory| options.host.path(directory));
    Ok(Box::new(Journald {
        filters,
        directory,
        program: JOURNALCTL,
        position: Position::Unknown,
        follow: Supervised::new(JOURNALCTL, ENTRY_MAX),
    }))
}

const JOURNALCTL: &str = "journalctl";

/// Where reading resumes.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Position {
    /// Not looked yet.
    Unknown,
    /// The journal was empty: all of it is new.
    Start,
    /// After this entry.
    After(String),
}

struct Journald {
    filters: Vec<(String, Vec<(String, String)>)>,
    directory: Option<PathBuf>,
    program: &'static str,
    position: Position,
    follow: Supervised,
}

impl Beacon for Journald {
    fn check(&mut self) -> Result<Vec<Value>, String> {
        if self.position == Position::Unknown {
            self.position = self.end()?;
        }
        let (program, directory, position) = (self.program, &self.directory, &self.position);
        let outputs = self.follow.poll(ENTRIES_MAX, || {
            follow(journalctl(program, directory.as_deref()), position)
        });
        let mut events = Vec::new();
        for output in outputs {
            match output {
                Output::Line(line) => self.entry(&line, &mut events),
                Output::TooLong(start) => events.push(error_event(
                    MODULE.name,
                    format!(
                        "a journal entry longer than {ENTRY_MAX} bytes was left out: {}…",
                        start.chars().take(200).collect::<String>()
                    ),
                )),
                Output::Problem(problem) => events.push(error_event(MODULE.name, problem)),
            }
        }
        Ok(events)
    }
}

/// `journalctl` writing JSON, on `directory`'s journal or the system's.
fn journalctl(program: &str, directory: Option<&std::path::Path>) -> Command {
    let mut command = Command::new(program);
    command.args(["--output=json", "--no-pager"]);
    if let Some(directory) = directory {
        command.arg("--directory").arg(directory);
    }
    command
}

/// `journalctl --follow` from where reading resumes.
fn follow(mut command: Command, position: &Position) -> Command {
    command.arg("--follow");
    match position {
        Position::After(cursor) => command.arg(format!("--after-cursor={cursor}")),
        Position::Start | Position::Unknown => command.arg("--no-tail"),
    };
    command
}

impl Journald {
    /// Where the journal ends now.
    fn end(&self) -> Result<Position, String> {
        let out = journalctl(self.program, self.directory.as_deref())
            .arg("--lines=1")
            .output()
            .map_err(|err| {
                format!(
                    "cannot run {}: {err} (the journald beacon reads the journal through it)",
                    self.program
                )
            })?;
        let last = String::from_utf8_lossy(&out.stdout);
        let cursor = last
            .lines()
            .find_map(|line| match serde_json::from_str(line) {
                Ok(Value::Map(fields)) => cursor(&fields),
                _ => None,
            });
        Ok(cursor.map_or(Position::Start, Position::After))
    }

    fn entry(&mut self, line: &str, events: &mut Vec<Value>) {
        let Ok(Value::Map(fields)) = serde_json::from_str::<Value>(line) else {
            tracing::warn!("journald beacon: journalctl wrote a line that is not an entry: {line}");
            return;
        };
        if let Some(cursor) = cursor(&fields) {
            self.position = Position::After(cursor);
        }
        let text_of = |field: &str| {
            fields
                .iter()
                .find(|(key, _)| key.as_str() == Some(field))
                .map(|(_, value)| value)
        };
        let mut data = None;
        for (name, wanted) in &self.filters {
            let matches = wanted.iter().all(|(field, value)| {
                text_of(field).is_some_and(|given| match given {
                    Value::Array(values) => values.iter().any(|v| field_text(v) == *value),
                    given => field_text(given) == *value,
                })
            });
            if matches {
                let mut event = data.get_or_insert_with(|| converted(&fields)).clone();
                event.push(("tag".into(), name.as_str().into()));
                events.push(Value::Map(event));
            }
        }
    }
}

/// An entry's `__CURSOR`.
fn cursor(fields: &[(Value, Value)]) -> Option<String> {
    fields
        .iter()
        .find(|(key, _)| key.as_str() == Some("__CURSOR"))
        .and_then(|(_, value)| value.as_str().map(str::to_owned))
}

/// A field's value as text: journalctl writes a value that is not UTF-8 as a list of bytes.
fn field_text(value: &Value) -> String {
    match value {
        Value::Array(bytes) if bytes.iter().all(|b| b.as_u64().is_some_and(|b| b <= 255)) => {
            let bytes: Vec<u8> = bytes
                .iter()
                .filter_map(|b| b.as_u64().and_then(|b| u8::try_from(b).ok()))
                .collect();
            String::from_utf8_lossy(&bytes).into_owned()
        }
        other => py_str(other).into_owned(),
    }
}

/// The entry's fields as the event's data.
fn converted(fields: &[(Value, Value)]) -> Vec<(Value, Value)> {
    let one = |key: &str, value: &Value| {
        let text = field_text(value);
        match text.parse::<i64>() {
            Ok(number) if INTEGER_FIELDS.contains(&key) => Value::from(number),
            _ => text.into(),
        }
    };
    fields
        .iter()
        .map(|(key, value)| {
            let name = key.as_str().unwrap_or_default();
            let value = match value {
                Value::Nil => Value::Nil,
                Value::Array(values) if values.iter().any(|v| !v.is_u64()) => {
                    Value::Array(values.iter().map(|v| one(name, v)).collect())
                }
                value => one(name, value),
            };
            (key.clone(), value)
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::beacons::Host;

    #[test]
    fn fields_convert_as_python_systemd_converts_them() {
        let Ok(Value::Map(fields)) = serde_json::from_str::<Value>(
            r#"{"PRIORITY":"6","_PID":"42","MESSAGE":"hi","BIN":[104,255],"MULTI":["a","b"],"TOO_BIG":null}"#,
        ) else {
            panic!()
        };
        let data = Value::Map(converted(&fields));
        let get = |key| crate::event::map_get(&data, key).cloned().unwrap();
        assert_eq!(get("PRIORITY"), Value::from(6));
        assert_eq!(get("_PID"), Value::from(42));
        assert_eq!(get("MESSAGE"), Value::from("hi"));
        assert_eq!(get("BIN"), Value::from("h\u{fffd}"));
        assert_eq!(get("MULTI"), Value::Array(vec!["a".into(), "b".into()]));
        assert_eq!(get("TOO_BIG"), Value::Nil);
    }

    #[test]
    fn filters_compare_as_text_and_bad_values_are_named() {
        let config = crate::salt_yaml::load(
            "{services: {sshd: {SYSLOG_IDENTIFIER: sshd, PRIORITY: 6}, all: {}}}",
        )
        .unwrap();
        let host = Host::real();
        let options = Options {
            name: "journald",
            config: &config,
            host: &host,
        };
        build(&options).unwrap();
        let mut journald = Journald {
            filters: vec![
                (
                    "sshd".into(),
                    vec![
                        ("SYSLOG_IDENTIFIER".into(), "sshd".into()),
                        ("PRIORITY".into(), "6".into()),
                    ],
                ),
                ("all".into(), vec![]),
            ],
            directory: None,
            program: JOURNALCTL,
            position: Position::Start,
            follow: Supervised::new(JOURNALCTL, ENTRY_MAX),
        };
        let mut events = Vec::new();
        journald.entry(
            r#"{"__CURSOR":"c1","SYSLOG_IDENTIFIER":"sshd","PRIORITY":"6"}"#,
            &mut events,
        );
        journald.entry(
            r#"{"__CURSOR":"c2","SYSLOG_IDENTIFIER":"sshd","PRIORITY":"5"}"#,
            &mut events,
        );
        let tags: Vec<_> = events
            .iter()
            .map(|e| py_str(crate::event::map_get(e, "tag").unwrap()).into_owned())
            .collect();
        assert_eq!(tags, ["sshd", "all", "all"]);
        assert_eq!(journald.position, Position::After("c2".into()));
        let bad = crate::salt_yaml::load("{services: {sshd: {PRIORITY: [6]}}}").unwrap();
        let err = build(&Options {
            config: &bad,
            ..options
        })
        .err()
        .unwrap();
        assert_eq!(err.key, "services:sshd:PRIORITY");
    }

    #[test]
    fn without_journalctl_the_check_says_so() {
        let mut journald = Journald {
            filters: Vec::new(),
            directory: None,
            program: "/nonexistent/journalctl",
            position: Position::Unknown,
            follow: Supervised::new("journalctl", ENTRY_MAX),
        };
        let err = journald.check().unwrap_err();
        assert!(
            err.starts_with("cannot run /nonexistent/journalctl: "),
            "{err}"
        );
        assert!(err.contains("reads the journal through it"), "{err}");
    }
}
