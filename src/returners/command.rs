//! halite's `command` returner (Salt has none like it): a returner in any language. The
//! program `command.cmd` names (a command line, split as a shell would, run without one) is
//! started at the first return and kept running; each return is written to its stdin as one
//! line of JSON (Python's `json.dumps` of the return dict), each event as one line
//! `{"tag": …, "data": …}` (as `state.event` prints them). What it prints on stdout is logged at
//! debug level, on stderr at warning level.
//!
//! A program that ends is started again after 1 s, then 2 s, 4 s… up to a minute; meanwhile
//! returns are answered as unavailable, so that they are kept and retried. Lines it had not read
//! when it ended are written first to the next run: they were accepted, so nothing is lost as
//! long as the program handles each line it reads before it reads on (a line read ahead into its
//! own buffer and not handled when it ends is lost; one read in part is not written again). A
//! program that reads nothing for `command.timeout` seconds (default 10) while a batch waits is
//! deemed hung: it is killed and started again, and the batch is answered as unavailable. The
//! program is killed, with what it started, when the returner is dropped or halite dies.

use std::collections::VecDeque;
use std::io::{ErrorKind, PipeReader, Read};
use std::os::fd::OwnedFd;
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

use nix::fcntl::{FcntlArg, fcntl};
use tokio::io::{AsyncBufRead, AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::unix::pipe;
use tokio::sync::Mutex;
use tokio::task::JoinSet;
use tokio_util::task::AbortOnDropHandle;

use super::{Options, Pending, Returner, ReturnerError};
use crate::children::{self, Restarts};
use crate::event::{Event, Value};
use crate::py::json::{self as pyjson, Format};

/// `command.timeout`: how long a batch waits for the program to read it.
const DEFAULT_TIMEOUT: Duration = Duration::from_secs(10);
/// How often the program is looked at, to notice its end and start it again when due.
const WATCH_EVERY: Duration = Duration::from_millis(100);
/// The longest line of the program's output logged; the rest of a line is dropped.
const LOG_LINE_MAX: usize = 4096;
/// How long the last lines an ended program printed are waited for, to be logged.
const LOG_DRAIN: Duration = Duration::from_secs(1);

/// The `command` returner.
#[derive(Debug)]
pub struct CommandReturner {
    shared: Arc<Shared>,
    /// Started with the program: notices its end and starts it again when due, so that the
    /// lines it left unread go on without waiting for another return.
    supervisor: OnceLock<AbortOnDropHandle<()>>,
}

#[derive(Debug)]
struct Shared {
    /// The program and its arguments.
    argv: Vec<String>,
    timeout: Duration,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    running: Option<Running>,
    restarts: Restarts,
    /// Whole lines the last run left unread, written first to the next.
    carry: Vec<u8>,
}

/// The program, running.
#[derive(Debug)]
struct Running {
    child: Child,
    stdin: pipe::Sender,
    /// A read end of the program's stdin of our own: what the program did not read is read
    /// back from it once it has ended. (It also means that writing to a program that ended does
    /// not fail: its end is noticed by its exit.)
    unread: PipeReader,
    /// Bytes written to this run.
    written: u64,
    /// Where the lines that may still be in the pipe start, as counts of bytes written.
    starts: VecDeque<u64>,
    /// What the pipe holds at most: lines written longer ago are read.
    capacity: u64,
    started: Instant,
    /// The tasks logging its stdout and stderr.
    logging: JoinSet<()>,
}

/// Builds it from `command.cmd` and `command.timeout`; the program starts at the first return.
pub(super) fn build(options: &Options) -> Result<Arc<dyn Returner>, ReturnerError> {
    let expected = "expected the command line of a program that reads JSON lines on stdin, \
                    e.g. `/usr/local/bin/store-returns --db /srv/jobs`";
    let Some(given) = options.get("cmd") else {
        return Err(ReturnerError::Option {
            returner: "command",
            option: "command.cmd".to_owned(),
            problem: format!("{expected}; it is not set"),
        });
    };
    let argv = match &given {
        Value::String(line) => line.as_str().and_then(shlex::split),
        Value::Array(words) => words
            .iter()
            .map(|word| word.as_str().map(str::to_owned))
            .collect(),
        _ => None,
    };
    let argv = match argv {
        Some(argv) if !argv.is_empty() => argv,
        _ => return Err(options.invalid("cmd", expected, &given)),
    };
    let timeout = match options.get("timeout") {
        None => DEFAULT_TIMEOUT,
        Some(value) => crate::config::seconds(&value)
            .filter(|timeout| !timeout.is_zero())
            .ok_or_else(|| options.invalid("timeout", "expected a number of seconds", &value))?,
    };
    let state = State {
        running: None,
        restarts: Restarts::new(),
        carry: Vec::new(),
    };
    Ok(Arc::new(CommandReturner {
        shared: Arc::new(Shared {
            argv,
            timeout,
            state: Mutex::new(state),
        }),
        supervisor: OnceLock::new(),
    }))
}

impl Returner for CommandReturner {
    fn name(&self) -> &'static str {
        "command"
    }

    fn returns<'a>(&'a self, returns: &'a [Value]) -> Pending<'a, ()> {
        let mut lines = Vec::new();
        for ret in returns {
            pyjson::write(&mut lines, ret, Format::COMPACT);
            lines.push(b'\n');
        }
        Box::pin(self.deliver(lines))
    }

    fn events<'a>(&'a self, events: &'a [Event]) -> Pending<'a, ()> {
        let mut lines = Vec::new();
        for event in events {
            pyjson::write_envelope(&mut lines, &event.tag, &event.data, None, false);
            lines.push(b'\n');
        }
        Box::pin(self.deliver(lines))
    }
}

impl CommandReturner {
    /// Writes `batch` (whole lines) to the program, starting it if need be.
    async fn deliver(&self, batch: Vec<u8>) -> Result<(), ReturnerError> {
        if batch.is_empty() {
            return Ok(());
        }
        self.supervisor.get_or_init(|| {
            AbortOnDropHandle::new(tokio::spawn(supervise(Arc::clone(&self.shared))))
        });
        let mut state = self.shared.state.lock().await;
        let unavailable = |problem| ReturnerError::Unavailable {
            returner: "command",
            problem,
        };
        if let Some(problem) = state.notice_end(&self.shared).await {
            return Err(unavailable(problem));
        }
        state.write(&self.shared, &batch).await.map_err(unavailable)
    }
}

impl Drop for CommandReturner {
    fn drop(&mut self) {
        // Now, rather than when the runtime drops the aborted supervisor, which shares the state.
        if let Ok(mut state) = self.shared.state.try_lock() {
            state.stop();
        }
    }
}

/// Notices the program's end and starts it again when due, until aborted.
async fn supervise(shared: Arc<Shared>) {
    loop {
        tokio::time::sleep(WATCH_EVERY).await;
        let mut state = shared.state.lock().await;
        state.notice_end(&shared).await;
        if state.running.is_none() && state.restarts.wait().is_zero() {
            // Failures are logged; the next return hears of them.
            let _ = state.write(&shared, &[]).await;
        }
    }
}

impl Shared {
    /// The program's name, for messages.
    fn program(&self) -> &str {
        &self.argv[0]
    }

    fn spawn(&self) -> std::io::Result<Running> {
        let (reader, writer) = std::io::pipe()?;
        let mut command = Command::new(&self.argv[0]);
        command
            .args(&self.argv[1..])
            .stdin(reader.try_clone()?)
            .stdout(Stdio::piped())
            .stderr(Stdio::piped());
        let mut child = children::spawn(command)?;
        let mut logging = JoinSet::new();
        let mut watch = |pipe: Option<OwnedFd>, stderr: bool| -> std::io::Result<()> {
            let pipe = pipe.ok_or_else(|| std::io::Error::other("no pipe"))?;
            let pipe = pipe::Receiver::from_owned_fd(pipe)?;
            logging.spawn(log_lines(pipe, self.program().to_owned(), stderr));
            Ok(())
        };
        let started = watch(child.stdout.take().map(OwnedFd::from), false)
            .and_then(|()| watch(child.stderr.take().map(OwnedFd::from), true))
            .and_then(|()| pipe::Sender::from_owned_fd(OwnedFd::from(writer)));
        let stdin = match started {
            Ok(stdin) => stdin,
            Err(err) => {
                children::kill(&child);
                children::reap(child);
                return Err(err);
            }
        };
        let capacity = fcntl(&stdin, FcntlArg::F_GETPIPE_SZ)
            .ok()
            .and_then(|size| u64::try_from(size).ok())
            .unwrap_or(65536);
        tracing::info!("returner command: started {}", self.program());
        Ok(Running {
            child,
            stdin,
            unread: reader,
            written: 0,
            starts: VecDeque::new(),
            capacity,
            started: Instant::now(),
            logging,
        })
    }
}

impl State {
    /// Ends the run if the program exited, keeping what it left unread for the next; says so.
    async fn notice_end(&mut self, shared: &Shared) -> Option<String> {
        let running = self
            .running
            .take_if(|running| children::exited(&running.child))?;
        let started = running.started;
        let (status, carry) = running.end(u64::MAX, &[]).await;
        self.carry = carry;
        self.restarts.ended(started);
        let problem = format!(
            "{} ended ({status}); {}",
            shared.program(),
            again(self.restarts.wait())
        );
        tracing::error!("returner command: {problem}");
        Some(problem)
    }

    /// Writes `batch` to the program, after what the last run left unread, starting the
    /// program if it is due; or says why not.
    async fn write(&mut self, shared: &Shared, batch: &[u8]) -> Result<(), String> {
        let running = match &mut self.running {
            Some(running) => running,
            None => {
                let wait = self.restarts.wait();
                if !wait.is_zero() {
                    return Err(format!(
                        "{} is not running; {}",
                        shared.program(),
                        again(wait)
                    ));
                }
                match shared.spawn() {
                    Ok(running) => self.running.insert(running),
                    Err(err) => {
                        self.restarts.ended(Instant::now());
                        let problem = format!("cannot run {}: {err}", shared.program());
                        tracing::error!("returner command: {problem}");
                        return Err(problem);
                    }
                }
            }
        };
        // What the last run left unread goes first: it was accepted before this batch.
        let mut lines = std::mem::take(&mut self.carry);
        let carried = lines.len();
        let base = running.written;
        lines.extend_from_slice(batch);
        let Err(err) = running.write(&lines, shared.timeout).await else {
            return Ok(());
        };
        let running = self.running.take().expect("the program was running");
        let started = running.started;
        let sent = usize::try_from(running.written - base).unwrap_or(usize::MAX);
        let unsent = &lines[sent.min(carried)..carried];
        let (_, carry) = running.end(base + carried as u64, unsent).await;
        self.carry = carry;
        self.restarts.ended(started);
        let problem = format!(
            "{} {err}: killed; {}",
            shared.program(),
            again(self.restarts.wait())
        );
        tracing::error!("returner command: {problem}");
        Err(problem)
    }

    /// Kills the program, if it runs.
    fn stop(&mut self) {
        if let Some(running) = self.running.take() {
            children::kill(&running.child);
            children::reap(running.child);
        }
    }
}

impl Drop for State {
    fn drop(&mut self) {
        self.stop();
    }
}

impl Running {
    /// Writes `lines` in one go, waiting at most `timeout` for the program to make room.
    async fn write(&mut self, lines: &[u8], timeout: Duration) -> Result<(), String> {
        if lines.is_empty() {
            return Ok(());
        }
        let base = self.written;
        self.starts.push_back(base);
        self.starts.extend(
            memchr::memchr_iter(b'\n', lines)
                .map(|end| base + end as u64 + 1)
                .filter(|start| *start < base + lines.len() as u64),
        );
        let deadline = tokio::time::Instant::now() + timeout;
        let mut done = 0;
        while done < lines.len() {
            match tokio::time::timeout_at(deadline, self.stdin.write(&lines[done..])).await {
                Ok(Ok(written)) => {
                    done += written;
                    self.written += written as u64;
                }
                Ok(Err(err)) if err.kind() == ErrorKind::Interrupted => {}
                Ok(Err(err)) => return Err(format!("cannot be written to: {err}")),
                Err(_) => return Err(format!("read nothing for {timeout:?}")),
            }
        }
        // Lines further back than the pipe holds were read.
        let read = self.written.saturating_sub(self.capacity);
        while self.starts.front().is_some_and(|start| *start < read) {
            self.starts.pop_front();
        }
        Ok(())
    }

    /// Kills the program (and what it started), reaps it and says how it ended; with the whole
    /// lines of what was accepted (the bytes before `accepted`, then `unsent`, accepted but not
    /// written yet) that it did not read.
    async fn end(mut self, accepted: u64, unsent: &[u8]) -> (String, Vec<u8>) {
        children::kill(&self.child);
        // With our write end closed, reading the rest ends where the pipe is empty.
        drop(self.stdin);
        let mut unread = Vec::new();
        if let Err(err) = self.unread.read_to_end(&mut unread) {
            tracing::warn!("returner command: the lines not read are lost: {err}");
            unread.clear();
        }
        let first = self.written.saturating_sub(unread.len() as u64);
        // Past `accepted` is the batch that failed, to be retried whole.
        unread.truncate(usize::try_from(accepted.saturating_sub(first)).unwrap_or(usize::MAX));
        unread.extend_from_slice(unsent);
        if !unread.is_empty() && !self.starts.contains(&first) {
            // The program read the start of this line: it cannot be written again whole.
            let next = self.starts.iter().find(|start| **start > first);
            let skip = next.map_or(unread.len(), |next| (next - first) as usize);
            unread.drain(..skip.min(unread.len()));
        }
        let status = match self.child.try_wait() {
            Ok(Some(status)) => status.to_string(),
            _ => {
                children::reap(self.child);
                "killed".to_owned()
            }
        };
        // Its last words, logged before it is said to have ended.
        let _ = tokio::time::timeout(LOG_DRAIN, async {
            while self.logging.join_next().await.is_some() {}
        })
        .await;
        (status, unread)
    }
}

/// When the program starts again, in whole seconds.
fn again(wait: Duration) -> String {
    format!("it starts again in {}s", wait.as_secs_f64().ceil())
}

/// Logs the lines of the program's stdout (debug) or stderr (warning) until it closes them.
async fn log_lines(pipe: pipe::Receiver, program: String, stderr: bool) {
    let mut reader = BufReader::new(pipe);
    let mut line = Vec::new();
    while let Ok(true) = next_line(&mut reader, &mut line).await {
        let text = String::from_utf8_lossy(line.strip_suffix(b"\r").unwrap_or(&line));
        if stderr {
            tracing::warn!("returner command: {program}: {text}");
        } else {
            tracing::debug!("returner command: {program}: {text}");
        }
    }
}

/// Reads the next line into `line` without its newline, at most [`LOG_LINE_MAX`] bytes of it;
/// false at the end.
async fn next_line<R: AsyncBufRead + Unpin>(
    reader: &mut R,
    line: &mut Vec<u8>,
) -> std::io::Result<bool> {
    line.clear();
    let mut any = false;
    loop {
        let buffer = reader.fill_buf().await?;
        if buffer.is_empty() {
            return Ok(any);
        }
        any = true;
        let (piece, used, complete) = match memchr::memchr(b'\n', buffer) {
            Some(end) => (&buffer[..end], end + 1, true),
            None => (buffer, buffer.len(), false),
        };
        let room = LOG_LINE_MAX.saturating_sub(line.len());
        line.extend_from_slice(&piece[..piece.len().min(room)]);
        reader.consume(used);
        if complete {
            return Ok(true);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn lines_are_cut_at_the_limit_and_the_last_needs_no_newline() {
        let long = "x".repeat(LOG_LINE_MAX + 10);
        let input = format!("one\r\n{long}\nlast");
        let mut reader = input.as_bytes();
        let mut line = Vec::new();
        let mut lines = Vec::new();
        while next_line(&mut reader, &mut line).await.unwrap() {
            lines.push(line.len());
        }
        assert_eq!(lines, [4, LOG_LINE_MAX, 4]);
    }
}
