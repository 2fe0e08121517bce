//! A long-running command that a beacon reads lines from (`journalctl --follow`, a `script`'s
//! command): started without a shell in a process group of its own, its output read by two
//! threads into one bounded queue that each check drains, started again with a growing delay
//! when it ends, and killed with its whole group when the beacon is dropped.

use std::io::{BufRead, BufReader, Read};
use std::os::unix::process::CommandExt;
use std::process::{Command, Stdio};
use std::sync::mpsc::{Receiver, SyncSender, TryRecvError, sync_channel};
use std::time::{Duration, Instant};

use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;

use crate::event::Value;

/// Lines waiting for a check. When full, the reading threads wait, and so does the command
/// once its pipe is full: nothing is dropped.
const QUEUE: usize = 1024;
/// The first delay before a command that ended is started again; it doubles each time.
const BACKOFF_MIN: Duration = Duration::from_secs(1);
/// The longest delay; a command that ran this long starts the next one at [`BACKOFF_MIN`].
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// Lines of standard error kept to say why a command ended.
const STDERR_KEPT: usize = 3;

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

/// A command, kept running.
pub(super) struct Supervised {
    /// The command's name, for messages.
    program: String,
    line_max: usize,
    running: Option<Running>,
    /// The delay before the next start after an end.
    backoff: Duration,
    /// When the command may start again.
    not_before: Option<Instant>,
    /// The last problem said, not said again until the command has run.
    said: Option<String>,
    /// The last lines of standard error.
    stderr: Vec<String>,
}

struct Running {
    child: std::process::Child,
    lines: Receiver<Piped>,
    started: Instant,
}

enum Piped {
    Out(Output),
    Err(String),
}

impl Supervised {
    /// A command named `program` whose lines are cut at `line_max` bytes; not started yet.
    pub(super) fn new(program: impl Into<String>, line_max: usize) -> Self {
        Self {
            program: program.into(),
            line_max,
            running: None,
            backoff: BACKOFF_MIN,
            not_before: None,
            said: None,
            stderr: Vec::new(),
        }
    }

    /// What the command wrote since the last call, at most `max` lines, starting it (built by
    /// `command`) if it is not running and its delay has passed.
    pub(super) fn poll(&mut self, max: usize, command: impl FnOnce() -> Command) -> Vec<Output> {
        let mut found = Vec::new();
        if self.running.is_none() {
            if self.not_before.is_some_and(|at| Instant::now() < at) {
                return found;
            }
            match self.start(command()) {
                Ok(running) => self.running = Some(running),
                Err(err) => {
                    self.ended(Instant::now());
                    let message = format!("cannot run {}: {err}", self.program);
                    self.say(message, &mut found);
                    return found;
                }
            }
        }
        let Some(running) = &mut self.running else {
            return found;
        };
        let mut closed = false;
        while found.len() < max {
            match running.lines.try_recv() {
                Ok(Piped::Out(output)) => {
                    self.said = None;
                    found.push(output);
                }
                Ok(Piped::Err(line)) => {
                    tracing::warn!("{}: {line}", self.program);
                    if self.stderr.len() == STDERR_KEPT {
                        self.stderr.remove(0);
                    }
                    self.stderr.push(line);
                }
                Err(TryRecvError::Empty) => break,
                Err(TryRecvError::Disconnected) => {
                    closed = true;
                    break;
                }
            }
        }
        if closed && let Some(running) = self.running.take() {
            let status = stop(running.child);
            self.ended(running.started);
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
        let mut child = command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .process_group(0)
            .spawn()?;
        let (send, lines) = sync_channel(QUEUE);
        let line_max = self.line_max;
        if let Some(stdout) = child.stdout.take() {
            let send = send.clone();
            spawn_reader(&self.program, move || {
                read_lines(stdout, line_max, &send, Piped::Out)
            })?;
        }
        if let Some(stderr) = child.stderr.take() {
            spawn_reader(&self.program, move || {
                read_lines(stderr, line_max, &send, |output| match output {
                    Output::Line(line) | Output::TooLong(line) | Output::Problem(line) => {
                        Piped::Err(line)
                    }
                })
            })?;
        }
        self.stderr.clear();
        Ok(Running {
            child,
            lines,
            started: Instant::now(),
        })
    }

    /// Schedules the next start after a run that began at `started`.
    fn ended(&mut self, started: Instant) {
        if started.elapsed() >= BACKOFF_MAX {
            self.backoff = BACKOFF_MIN;
        }
        self.not_before = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
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
            stop(running.child);
        }
    }
}

/// Kills the command's process group (what the command started with it: their ends of the
/// pipes close, so the reading threads end) and reaps the command; says how it ended. Until it
/// is reaped its pid, and so its group's, cannot be taken by another process.
fn stop(mut child: std::process::Child) -> String {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
    match child.wait() {
        Ok(status) => status.to_string(),
        Err(err) => format!("not reaped: {err}"),
    }
}

fn spawn_reader(program: &str, read: impl FnOnce() + Send + 'static) -> std::io::Result<()> {
    // Ends when the pipe closes; `stop` sees to it.
    std::thread::Builder::new()
        .name(format!("beacon {program}"))
        .spawn(read)
        .map(drop)
}

/// Sends each line of `pipe` (the last one even without its newline), each cut at `line_max`
/// bytes, until the pipe closes or nobody listens.
fn read_lines(
    pipe: impl Read,
    line_max: usize,
    send: &SyncSender<Piped>,
    wrap: impl Fn(Output) -> Piped,
) {
    let mut reader = BufReader::new(pipe);
    let mut line = Vec::new();
    let mut too_long = false;
    loop {
        let buffer = match reader.fill_buf() {
            Ok(buffer) => buffer,
            Err(err) if err.kind() == std::io::ErrorKind::Interrupted => continue,
            Err(_) => break,
        };
        let (piece, used, complete) = match memchr::memchr(b'\n', buffer) {
            Some(end) => (&buffer[..end], end + 1, true),
            None if buffer.is_empty() => (buffer, 0, !line.is_empty() || too_long),
            None => (buffer, buffer.len(), false),
        };
        let room = line_max.saturating_sub(line.len());
        too_long |= piece.len() > room;
        line.extend_from_slice(&piece[..piece.len().min(room)]);
        let eof = buffer.is_empty();
        reader.consume(used);
        if complete {
            let text =
                String::from_utf8_lossy(line.strip_suffix(b"\r").unwrap_or(&line)).into_owned();
            let output = if std::mem::take(&mut too_long) {
                Output::TooLong(text)
            } else {
                Output::Line(text)
            };
            line.clear();
            if send.send(wrap(output)).is_err() {
                break;
            }
        }
        if eof {
            break;
        }
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

    fn lines(input: &[u8], line_max: usize) -> Vec<Output> {
        let (send, receive) = sync_channel(16);
        read_lines(input, line_max, &send, Piped::Out);
        drop(send);
        receive
            .iter()
            .map(|piped| match piped {
                Piped::Out(output) => output,
                Piped::Err(line) => Output::Problem(line),
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
            // Gone, or a zombie of its (also killed) parent that nobody reaps here.
            let gone = || {
                let state =
                    std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
                state.is_empty() || state.contains(") Z ")
            };
            let deadline = Instant::now() + Duration::from_secs(5);
            while !gone() && Instant::now() < deadline {
                std::thread::sleep(Duration::from_millis(20));
            }
            assert!(gone(), "{pid} still runs");
        }
    }
}
