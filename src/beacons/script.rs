//! `script` (halite's): runs a command that watches something and writes one JSON object per
//! line; each object is one event (its `tag`, if any, is the tag suffix).
//!
//! ```yaml
//! beacons:
//!   script:
//!     - command: [/usr/local/bin/watch-usb, --json]
//! ```
//!
//! The command is run as given, without a shell, once, and kept running: a command that ends
//! (even while a process it left behind still holds its output) is said to have ended (an event
//! tagged `error`) and started again after 1 s, then 2, 4, … up to 60 s between starts (back to
//! 1 s after a run of a minute or more). A line that is not a JSON object is an `error` event
//! quoting it; blank lines are skipped; lines are cut at 64 KiB, and a longer one is an `error`
//! event too. The lines wait in the command's pipe until a check reads them, 1000 at most (the
//! command waits while the pipe is full). Its standard error goes to the minion's log, ten
//! lines a check at most (the rest counted).
//!
//! The command and the processes it started are killed when the beacon stops; the command is
//! killed by the kernel when the minion dies, even by SIGKILL. A process the command moved to a
//! session of its own (`setsid`, a daemon) is not killed, nor, when the minion is killed, one it
//! started: stopping those is the command's own business.
//!
//! Instead of Salt's `sh` beacon, which halite does not offer: that one runs `strace` on every
//! shell process, which needs strace and root and slows the shells it traces, and it sees
//! commands no `/proc` scan could (a command that starts and ends between two checks). A
//! `script` running a tool of your choice (an audit log reader, `bpftrace`) gives the same
//! events, shaped as you want them.

use std::process::Command;

use super::child::{Output, Supervised, error_event};
use super::options::{only, text};
use super::{Beacon, Invalid, Module, Options};
use crate::event::Value;

pub(super) const MODULE: Module = Module {
    name: "script",
    build,
    closes: false,
};

/// The longest line read; a longer one is an error event.
const LINE_MAX: usize = 64 << 10;
/// Lines taken at one check; the rest wait in the pipe.
const LINES_MAX: usize = 1000;
/// How much of a bad line an error event quotes.
const QUOTED: usize = 200;

fn build(options: &Options) -> Result<Box<dyn Beacon>, Invalid> {
    only(options, &["command"])?;
    let expected = "the command as a list of words, such as [/usr/local/bin/watch, --json] (it runs without a shell)";
    let command = match options.get("command") {
        Some(Value::Array(words)) if !words.is_empty() => words
            .iter()
            .enumerate()
            .map(|(index, word)| text(word, &format!("command:{index}"), "a word"))
            .collect::<Result<Vec<_>, _>>()?,
        Some(other) => {
            return Err(Invalid::new(
                "command",
                format!("{expected}, not {}", super::config::describe(other)),
            ));
        }
        None => {
            return Err(Invalid::new(
                "command",
                format!("{expected}; it is required"),
            ));
        }
    };
    Ok(Box::new(Script {
        follow: Supervised::new(command[0].clone(), LINE_MAX),
        command,
    }))
}

struct Script {
    command: Vec<String>,
    follow: Supervised,
}

impl Beacon for Script {
    fn check(&mut self) -> Result<Vec<Value>, String> {
        let command = &self.command;
        let outputs = self.follow.poll(LINES_MAX, || {
            let mut built = Command::new(&command[0]);
            built.args(&command[1..]);
            built
        });
        Ok(outputs.into_iter().filter_map(event).collect())
    }
}

/// The event a line of output (or a problem) gives, if any.
fn event(output: Output) -> Option<Value> {
    let quote = |line: &str| {
        let mut quoted: String = line.chars().take(QUOTED).collect();
        if quoted.len() < line.len() {
            quoted.push('…');
        }
        quoted
    };
    Some(match output {
        Output::Line(line) if line.trim().is_empty() => return None,
        Output::Line(line) => match serde_json::from_str::<Value>(&line) {
            Ok(object @ Value::Map(_)) => object,
            Ok(_) | Err(_) => error_event(
                MODULE.name,
                format!(
                    "the command wrote a line that is not a JSON object: {}",
                    quote(&line)
                ),
            ),
        },
        Output::TooLong(start) => error_event(
            MODULE.name,
            format!(
                "the command wrote a line longer than {LINE_MAX} bytes: {}",
                quote(&start)
            ),
        ),
        Output::Problem(problem) => error_event(MODULE.name, problem),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::beacons::Host;
    use crate::event::map_get;

    #[test]
    fn json_objects_are_events_and_other_lines_errors() {
        let object = event(Output::Line(r#"{"tag": "usb", "device": "sdb"}"#.into())).unwrap();
        assert_eq!(map_get(&object, "device"), Some(&Value::from("sdb")));
        assert_eq!(event(Output::Line("  ".into())), None);
        for line in ["[1, 2]", "not json", "{\"open\": "] {
            let error = event(Output::Line(line.into())).unwrap();
            assert_eq!(map_get(&error, "tag"), Some(&Value::from("error")));
            let message = map_get(&error, "error")
                .unwrap()
                .as_str()
                .unwrap()
                .to_owned();
            assert!(message.ends_with(line), "{message}");
        }
        let long = event(Output::TooLong("x".repeat(LINE_MAX))).unwrap();
        let message = map_get(&long, "error")
            .unwrap()
            .as_str()
            .unwrap()
            .to_owned();
        assert!(message.ends_with('…') && message.len() < 400, "{message}");
    }

    #[test]
    fn commands_are_lists_of_words() {
        let host = Host::real();
        let key = |yaml: &str| {
            let config = crate::salt_yaml::load(yaml).unwrap();
            build(&Options {
                name: "script",
                config: &config,
                host: &host,
            })
            .err()
            .unwrap()
            .key
        };
        assert_eq!(key("{}"), "command");
        assert_eq!(key("{command: 'watch --json'}"), "command");
        assert_eq!(key("{command: []}"), "command");
        assert_eq!(key("{command: [watch, [x]]}"), "command:1");
        assert_eq!(key("{command: [watch], shell: True}"), "shell");
    }
}
