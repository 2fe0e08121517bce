//! A long-running command that a beacon reads lines from (`journalctl --follow`, a `script`'s
//! command): started without a shell in a process group of its own, its pipes read without
//! waiting at each check (no thread reads them), noticed when it ends (by its exit, even while a
//! process it left behind holds its pipes), started again with a growing delay, and killed with
//! its whole group when the beacon is dropped.
//!
//! The kernel kills the command when the minion dies, even by SIGKILL (a parent-death signal).
//! That signal follows the thread that started the command, and the blocking pool's threads come
//! and go: so one thread, living as long as the process, starts every command. What the command
//! starts itself is not killed that way (only by the group kill of an orderly stop), and what it
//! moves to a session of its own (`setsid`) escapes the group kill too: that is its own business.

use std::fs::File;
use std::io::{BufRead, BufReader, Read};
use std::os::fd::OwnedFd;
use std::os::unix::process::CommandExt;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::fcntl::{FcntlArg, OFlag, fcntl};
use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
use nix::unistd::{Pid, getpid, getppid};

use crate::event::Value;

/// The first delay before a command that ended is started again; it doubles each time.
const BACKOFF_MIN: Duration = Duration::from_secs(1);
/// The longest delay; a command that ran this long starts the next one at [`BACKOFF_MIN`].
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// Lines of standard error kept to say why a command ended.
const STDERR_KEPT: usize = 3;
/// Lines of the command's stderr logged at one check, so that a chatty command cannot fill the
/// minion's log (the rest are counted).
const STDERR_LOGGED: usize = 10;
/// Commands waiting for the thread that starts them.
const SPAWNS: usize = 16;

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
        // Looked at before the pipes: what it wrote before it exited is in them then.
        let exited = running.exited();
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
            self.ended(started);
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
            .stderr(Stdio::piped())
            .process_group(0);
        dies_with_us(&mut command);
        let mut child = spawn(command)?;
        let pipes = match (child.stdout.take(), child.stderr.take()) {
            (Some(stdout), Some(stderr)) => Pipe::new(stdout.into(), self.line_max)
                .and_then(|stdout| Ok((stdout, Pipe::new(stderr.into(), self.line_max)?))),
            _ => Err(std::io::Error::other("no pipes")),
        };
        let (stdout, stderr) = match pipes {
            Ok(pipes) => pipes,
            Err(err) => {
                kill(&child);
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
            kill(&running.child);
            // Our ends of the pipes close here.
            reap(running.child);
        }
    }
}

impl Running {
    /// Whether the command exited (not reaped yet: until then its pid, and so its group's,
    /// cannot be taken by another process).
    fn exited(&self) -> bool {
        let Ok(pid) = i32::try_from(self.child.id()) else {
            return false;
        };
        let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
        match waitid(Id::Pid(Pid::from_raw(pid)), flags) {
            Ok(status) => status != WaitStatus::StillAlive,
            Err(err) => err == Errno::ECHILD,
        }
    }

    /// Kills the group and reaps the command, which has ended or is killed; says how it ended.
    fn stop(mut self) -> String {
        kill(&self.child);
        match self.child.wait() {
            Ok(status) => status.to_string(),
            Err(err) => format!("not reaped: {err}"),
        }
    }
}

/// Kills the command's process group: the command and what it started with it.
fn kill(child: &Child) {
    if let Ok(pid) = i32::try_from(child.id()) {
        let _ = killpg(Pid::from_raw(pid), Signal::SIGKILL);
    }
}

/// Reaps a killed command without holding up the thread that drops it (a runtime's thread must
/// not wait): on the blocking pool when there is a runtime.
fn reap(mut child: Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    match tokio::runtime::Handle::try_current() {
        // Ends as soon as the killed command is gone; the runtime waits for it at its end.
        Ok(runtime) => drop(runtime.spawn_blocking(move || child.wait())),
        Err(_) => {
            let _ = child.wait();
        }
    }
}

/// Has the kernel kill the command when its parent dies: the thread of [`spawn`], so the
/// process that started it, however it dies.
#[allow(unsafe_code)]
fn dies_with_us(command: &mut Command) {
    let parent = getpid();
    // SAFETY: between fork and exec, the closure only makes two system calls (prctl, getppid),
    // which are async-signal-safe, and allocates nothing.
    unsafe {
        command.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
            // The parent died before the signal was asked for.
            if getppid() != parent {
                return Err(Errno::ESRCH.into());
            }
            Ok(())
        });
    }
}

type Spawn = (Command, SyncSender<std::io::Result<Child>>);

/// The queue of the thread that starts every command (see the module's documentation).
static SPAWNER: Mutex<Option<SyncSender<Spawn>>> = Mutex::new(None);

/// Starts `command` on the thread that starts every command, starting that thread if need be.
fn spawn(command: Command) -> std::io::Result<Child> {
    let gone = || std::io::Error::other("the thread that starts commands is gone");
    let spawner = {
        let mut spawner = SPAWNER.lock().unwrap_or_else(PoisonError::into_inner);
        match &*spawner {
            Some(spawner) => spawner.clone(),
            None => {
                let (send, requests) = sync_channel::<Spawn>(SPAWNS);
                // Never ends: [`SPAWNER`] keeps its queue open.
                std::thread::Builder::new()
                    .name("beacon spawner".into())
                    .spawn(move || {
                        for (mut command, reply) in requests {
                            let _ = reply.send(command.spawn());
                        }
                    })?;
                spawner.insert(send).clone()
            }
        }
    };
    let (reply, answer) = sync_channel(1);
    spawner.send((command, reply)).map_err(|_| gone())?;
    answer.recv().map_err(|_| gone())?
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
