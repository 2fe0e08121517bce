//! A long-running command that a beacon reads lines from (`journalctl --follow`, a `script`'s
//! command), kept by [`crate::children`]: its pipes are read without waiting at each check (no
//! thread reads them), it is noticed when it ends, started again with a growing delay, and killed
//! with its whole group when the beacon is dropped.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::os::fd::OwnedFd;
use std::process::{Child, Command, Stdio};
use std::time::Instant;

use nix::fcntl::{FcntlArg, OFlag, fcntl};

use crate::children::{self, Restarts};
use crate::event::Value;

/// Lines of standard error kept to say why a command ended.
const STDERR_KEPT: usize = 3;
/// Lines of the command's stderr logged at one check, so that a chatty command cannot fill the
/// minion's log (the rest are counted).
const STDERR_LOGGED: usize = 10;

/// What a check finds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(super) enum Output {
    /// A line of standard output, without its newline.
    Line(String),
    /// The start of a line longer than the limit; the rest of it is dropped.
    TooLong(String),
    /// The command could not start, or it ended; said once until it runs again.
    Problem(String),
}

/// A command, kept running. What it writes waits in its pipes (the command waits when they are
/// full: nothing is dropped) until a check reads it.
pub(super) struct Supervised {
    /// The command's name, for messages.
    program: String,
    line_max: usize,
    running: Option<Running>,
    restarts: Restarts,
    /// The last problem said, not said again until the command has run.
    said: Option<String>,
    /// The last lines of standard error.
    stderr: Vec<String>,
}

struct Running {
    child: Child,
    stdout: Pipe<File>,
    stderr: Pipe<File>,
    started: Instant,
}

impl Supervised {
    /// A command named `program` whose lines are cut at `line_max` bytes; not started yet.
    pub(super) fn new(program: impl Into<String>, line_max: usize) -> Self {
        Self {
            program: program.into(),
            line_max,
            running: None,
            restarts: Restarts::new(),
            said: None,
            stderr: Vec::new(),
        }
    }

    /// What the command wrote since the last call, at most `max` lines, starting it (built by
    /// `command`) if it is not running and its delay has passed.
    pub(super) fn poll(&mut self, max: usize, command: impl FnOnce() -> Command) -> Vec<Output> {
        let mut found = Vec::new();
        if self.running.is_none() {
            if !self.restarts.wait().is_zero() {
                return found;
            }
            match self.start(command()) {
                Ok(running) => self.running = Some(running),
                Err(err) => {
                    self.restarts.ended(Instant::now());
                    let message = format!("cannot run {}: {err}", self.program);
                    self.say(message, &mut found);
                    return found;
                }
            }
        }
        let Some(running) = &mut self.running else {
            return found;
        };
        // Looked at before the pipes: what it wrote before it exited is in them then.
        let exited = children::exited(&running.child);
        let mut unlogged = 0;
        for read in 0..max {
            let Next::Line(Output::Line(line) | Output::TooLong(line) | Output::Problem(line)) =
                running.stderr.next()
            else {
                break;
            };
            if read < STDERR_LOGGED {
                tracing::warn!("{}: {line}", self.program);
            } else {
                unlogged += 1;
            }
            if self.stderr.len() == STDERR_KEPT {
                self.stderr.remove(0);
            }
            self.stderr.push(line);
        }
        if unlogged > 0 {
            tracing::warn!(
                "{}: and {unlogged} more lines on stderr, not logged",
                self.program
            );
        }
        let ended = loop {
            if found.len() >= max {
                break false;
            }
            match running.stdout.next() {
                Next::Line(output) => {
                    self.said = None;
                    found.push(output);
                }
                // What a process it left behind still writes is not waited for.
                Next::Empty => break exited,
                Next::Closed => break true,
            }
        };
        if ended && let Some(running) = self.running.take() {
            let started = running.started;
            let status = running.stop();
            self.restarts.ended(started);
            let said = if self.stderr.is_empty() {
                String::new()
            } else {
                format!(": {}", self.stderr.join(" / "))
            };
            let message = format!("{} ended ({status}){said}", self.program);
            self.say(message, &mut found);
        }
        found
    }

    fn start(&mut self, mut command: Command) -> std::io::Result<Running> {
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = children::spawn(command)?;
        let pipes = match (child.stdout.take(), child.stderr.take()) {
            (Some(stdout), Some(stderr)) => Pipe::new(stdout.into(), self.line_max)
                .and_then(|stdout| Ok((stdout, Pipe::new(stderr.into(), self.line_max)?))),
            _ => Err(std::io::Error::other("no pipes")),
        };
        let (stdout, stderr) = match pipes {
            Ok(pipes) => pipes,
            Err(err) => {
                children::kill(&child);
                let _ = child.wait();
                return Err(err);
            }
        };
        self.stderr.clear();
        Ok(Running {
            child,
            stdout,
            stderr,
            started: Instant::now(),
        })
    }

    fn say(&mut self, message: String, found: &mut Vec<Output>) {
        if self.said.as_ref() != Some(&message) {
            tracing::error!("{message}");
            found.push(Output::Problem(message.clone()));
            self.said = Some(message);
        }
    }
}

impl Drop for Supervised {
    fn drop(&mut self) {
        if let Some(running) = self.running.take() {
            children::kill(&running.child);
            // Our ends of the pipes close here.
            children::reap(running.child);
        }
    }
}

impl Running {
    /// Kills the group and reaps the command, which has ended or is killed; says how it ended.
    fn stop(mut self) -> String {
        children::kill(&self.child);
        match self.child.wait() {
            Ok(status) => status.to_string(),
            Err(err) => format!("not reaped: {err}"),
        }
    }
}

/// A pipe read a line at a time, without waiting.
struct Pipe<R> {
    reader: BufReader<R>,
    line_max: usize,
    /// The line read so far, at most `line_max` bytes of it.
    line: Vec<u8>,
    too_long: bool,
    closed: bool,
}

enum Next {
    Line(Output),
    /// Nothing more for now.
    Empty,
    Closed,
}

impl Pipe<File> {
    fn new(pipe: OwnedFd, line_max: usize) -> std::io::Result<Self> {
        fcntl(&pipe, FcntlArg::F_SETFL(OFlag::O_NONBLOCK))?;
        Ok(Self::reading(File::from(pipe), line_max))
    }
}

impl<R: Read> Pipe<R> {
    fn reading(pipe: R, line_max: usize) -> Self {
        Self {
            reader: BufReader::new(pipe),
            line_max,
            line: Vec::new(),
            too_long: false,
            closed: false,
        }
    }

    /// The next line (the last one even without its newline), cut at `line_max` bytes.
    fn next(&mut self) -> Next {
        while !self.closed {
            let buffer = match self.reader.fill_buf() {
                Ok(buffer) => buffer,
                Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
                Err(err) if err.kind() == std::io::ErrorKind::WouldBlock => return Next::Empty,
                Err(_) => &[],
            };
            let (piece, used, complete) = match memchr::memchr(b'\n', buffer) {
                Some(end) => (&buffer[..end], end + 1, true),
                None if buffer.is_empty() => (buffer, 0, !self.line.is_empty() || self.too_long),
                None => (buffer, buffer.len(), false),
            };
            let room = self.line_max.saturating_sub(self.line.len());
            self.too_long |= piece.len() > room;
            self.line.extend_from_slice(&piece[..piece.len().min(room)]);
            self.closed = buffer.is_empty();
            self.reader.consume(used);
            if complete {
                let line = &self.line;
                let text =
                    String::from_utf8_lossy(line.strip_suffix(b"\r").unwrap_or(line)).into_owned();
                self.line.clear();
                return Next::Line(if std::mem::take(&mut self.too_long) {
                    Output::TooLong(text)
                } else {
                    Output::Line(text)
                });
            }
        }
        Next::Closed
    }
}

/// The data of an error event from a beacon that reads a command: tag suffix `error`, as the
/// minion's own error events.
pub(super) fn error_event(module: &str, message: String) -> Value {
    Value::Map(vec![
        ("tag".into(), "error".into()),
        ("error".into(), message.into()),
        ("beacon_module".into(), module.into()),
    ])
}

#[cfg(test)]
mod tests {
    use super::*;
    use nix::sys::signal::Signal;
    use nix::unistd::Pid;
    use std::time::Duration;

    fn lines(input: &[u8], line_max: usize) -> Vec<Output> {
        let mut pipe = Pipe::reading(input, line_max);
        std::iter::from_fn(|| match pipe.next() {
            Next::Line(output) => Some(output),
            Next::Empty | Next::Closed => None,
        })
        .collect()
    }

    #[test]
    fn lines_are_cut_at_the_limit_and_the_last_needs_no_newline() {
        let line = |text: &str| Output::Line(text.into());
        assert_eq!(
            lines(b"one\r\ntwo\n\nlast", 8),
            [line("one"), line("two"), line(""), line("last")]
        );
        assert_eq!(
            lines(b"0123456789\nok\n0123456789", 4),
            [
                Output::TooLong("0123".into()),
                line("ok"),
                Output::TooLong("0123".into())
            ]
        );
    }

    fn wait_for(supervised: &mut Supervised, command: &[&str], want: usize) -> Vec<Output> {
        let mut found = Vec::new();
        let deadline = Instant::now() + Duration::from_secs(10);
        while found.len() < want && Instant::now() < deadline {
            found.extend(supervised.poll(100, || {
                let mut built = Command::new(command[0]);
                built.args(&command[1..]);
                built
            }));
            std::thread::sleep(Duration::from_millis(20));
        }
        found
    }

    #[test]
    fn an_ended_command_is_said_once_and_started_again_after_a_delay() {
        let mut supervised = Supervised::new("sh", 100);
        let found = wait_for(
            &mut supervised,
            &["sh", "-c", "echo hi; echo oops >&2; exit 3"],
            2,
        );
        assert_eq!(found[0], Output::Line("hi".into()));
        assert_eq!(
            found[1],
            Output::Problem("sh ended (exit status: 3): oops".into())
        );
        // Not before the delay.
        assert!(supervised.poll(100, || Command::new("true")).is_empty());
        let mut missing = Supervised::new("nosuch", 100);
        let found = wait_for(&mut missing, &["/nonexistent/nosuch"], 1);
        assert!(
            matches!(&found[..], [Output::Problem(p)] if p.starts_with("cannot run nosuch: ")),
            "{found:?}"
        );
    }

    /// A zombie (of a killed parent that nobody reaps here) counts as gone.
    fn gone(pid: &str) -> bool {
        let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        state.is_empty() || state.contains(") Z ")
    }

    #[test]
    fn the_command_outlives_the_thread_that_started_it() {
        let mut supervised = Supervised::new("sh", 100);
        let (supervised, found) = std::thread::spawn(move || {
            let found = wait_for(&mut supervised, &["sh", "-c", "echo $$; exec sleep 300"], 1);
            (supervised, found)
        })
        .join()
        .unwrap();
        let [Output::Line(pid)] = &found[..] else {
            panic!("{found:?}");
        };
        // The parent-death signal would come now if it followed the thread above.
        std::thread::sleep(Duration::from_millis(300));
        assert!(!gone(pid), "killed with the thread that started it");
        drop(supervised);
        assert!(gone(pid));
    }

    #[test]
    fn an_exit_is_noticed_while_a_process_left_behind_holds_the_pipes() {
        let mut supervised = Supervised::new("sh", 100);
        let found = wait_for(
            &mut supervised,
            &[
                "sh",
                "-c",
                // Said once in its own session: before, it is killed with the command's group.
                "setsid sleep 300 &
                until [ \"$(cut -d' ' -f6 /proc/$!/stat)\" = $! ]; do sleep 0.01; done
                echo $!; exit 3",
            ],
            2,
        );
        let [Output::Line(orphan), Output::Problem(ended)] = &found[..] else {
            panic!("{found:?}");
        };
        let _ = nix::sys::signal::kill(Pid::from_raw(orphan.parse().unwrap()), Signal::SIGKILL);
        assert_eq!(ended, "sh ended (exit status: 3)");
    }

    #[test]
    fn dropping_kills_the_command_and_its_children() {
        let dir = tempfile::tempdir().unwrap();
        let pids = dir.path().join("pids");
        let script = format!(
            "sleep 300 & echo $! > {0}; echo $$ >> {0}; echo up; wait",
            pids.display()
        );
        let mut supervised = Supervised::new("sh", 100);
        assert_eq!(
            wait_for(&mut supervised, &["sh", "-c", &script], 1),
            [Output::Line("up".into())]
        );
        drop(supervised);
        for pid in std::fs::read_to_string(&pids).unwrap().split_whitespace() {
            let deadline = Instant::now() + Duration::from_secs(5);
            while !gone(pid) && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            assert!(gone(pid), "{pid} still runs");
        }
    }
}
