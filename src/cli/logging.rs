//! Logging in Salt's formats: `[WARNING ] message` on the console, and timestamped lines with
//! the module and process id in a daemon's log file.
//!
//! A daemon's console lines go through a [`LineQueue`]: a stderr that nobody reads (a full
//! pipe) then costs console lines, counted and told, never the daemon's threads.
//!
//! A daemon's log file is a [`LogFile`] that [`reopen`] opens again by its path: after logrotate
//! renamed it (no `copytruncate`, as Salt's logrotate file), SIGHUP makes the daemon write to a
//! new file instead of the rotated one. When `log_file` is a syslog URL, the same lines go to
//! syslog through a queue of their own (see [`super::syslog`]).

use std::collections::VecDeque;
use std::fmt;
use std::path::{Path, PathBuf};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::Duration;

use anyhow::{Context, bail};
use tracing::level_filters::LevelFilter;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{Layer, Registry};

use super::syslog::{LogTarget, Sender, Syslog};

/// Salt's log level names, mapped to the nearest tracing level.
pub(crate) fn level(name: &str) -> anyhow::Result<LevelFilter> {
    Ok(match name.to_ascii_lowercase().as_str() {
        "quiet" => LevelFilter::OFF,
        "critical" | "error" => LevelFilter::ERROR,
        "warning" | "warn" => LevelFilter::WARN,
        "info" => LevelFilter::INFO,
        "profile" | "debug" => LevelFilter::DEBUG,
        "trace" | "garbage" | "all" => LevelFilter::TRACE,
        other => bail!(
            "unknown log level {other:?}; use one of quiet, critical, error, warning, info, debug, trace, garbage, all"
        ),
    })
}

fn salt_level_name(level: &Level) -> &'static str {
    match *level {
        Level::ERROR => "ERROR",
        Level::WARN => "WARNING",
        Level::INFO => "INFO",
        Level::DEBUG => "DEBUG",
        Level::TRACE => "TRACE",
    }
}

/// The fields of the spans an event is in, as `[minion=sw-7] `: a swarm runs each of its minions
/// in a span naming it, so that their lines say whose they are.
fn write_spans<S, N>(ctx: &FmtContext<'_, S, N>, writer: &mut Writer<'_>) -> fmt::Result
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    let Some(scope) = ctx.event_scope() else {
        return Ok(());
    };
    for span in scope.from_root() {
        let extensions = span.extensions();
        if let Some(fields) = extensions.get::<FormattedFields<N>>()
            && !fields.is_empty()
        {
            write!(writer, "[{fields}] ")?;
        }
    }
    Ok(())
}

struct Console;

impl<S, N> FormatEvent<S, N> for Console
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        write!(
            writer,
            "[{:<8}] ",
            salt_level_name(event.metadata().level())
        )?;
        write_spans(ctx, &mut writer)?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// A log file's line; sent to syslog, it starts with the syslog priority of its level.
struct FileLine {
    syslog: Option<Syslog>,
}

impl<S, N> FormatEvent<S, N> for FileLine
where
    S: Subscriber + for<'a> LookupSpan<'a>,
    N: for<'a> FormatFields<'a> + 'static,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, N>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let now = jiff::ZonedDateTime::now();
        if let Some(syslog) = &self.syslog {
            write!(writer, "<{}>", syslog.priority(event.metadata().level()))?;
        }
        write!(
            writer,
            "{} [{:<17}][{:<8}][{}] ",
            now.strftime("%Y-%m-%d %H:%M:%S,%3f"),
            event.metadata().target(),
            salt_level_name(event.metadata().level()),
            std::process::id()
        )?;
        write_spans(ctx, &mut writer)?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// Sets up console logging at `console` for a command, written as it happens.
pub(crate) fn init(console: LevelFilter) -> anyhow::Result<()> {
    install(std::io::stderr, console, None, false)
}

/// Sets up a daemon's logging: console lines at `console` through a queue, and file (or syslog)
/// logging at `file_level`. A log file that cannot be opened is reported on the console and
/// skipped, so a daemon started without root still runs; unless the file is `required` (a
/// daemon in the background has no console), then that is the error.
pub(crate) fn init_daemon(
    console: LevelFilter,
    file: (&LogTarget, LevelFilter),
    required: bool,
) -> anyhow::Result<()> {
    let queued = QUEUED_CONSOLE
        .get_or_init(|| {
            let mut stderr = std::io::stderr();
            // A console that went away leaves the log file; nothing to report it on.
            LineQueue::start("console-log", console_notice, move |line| {
                let _ = std::io::Write::write_all(&mut stderr, line);
                true
            })
        })
        .clone();
    install(queued, console, Some(file), required)
}

fn install<W>(
    console_writer: W,
    console: LevelFilter,
    file: Option<(&LogTarget, LevelFilter)>,
    required: bool,
) -> anyhow::Result<()>
where
    W: for<'w> tracing_subscriber::fmt::MakeWriter<'w> + Send + Sync + 'static,
{
    // Plain fields on every layer: the fields of a span are formatted once, by whichever layer
    // comes first, for all of them; a log file must not get the console's colour codes.
    let console_layer = tracing_subscriber::fmt::layer()
        .with_writer(console_writer)
        .with_ansi(false)
        .event_format(Console)
        .with_filter(console);
    let mut file_note = None;
    let created_dir = match file {
        Some((LogTarget::File(path), _)) => path
            .parent()
            .filter(|dir| !dir.exists())
            .map(Path::to_owned),
        _ => None,
    };
    let file_layer = match file {
        Some((LogTarget::File(path), level)) if level != LevelFilter::OFF => match open_log(path) {
            Ok((handle, note)) => {
                file_note = note;
                let log_file = Arc::new(LogFile {
                    path: path.to_owned(),
                    file: Mutex::new(handle),
                    created_dir: created_dir.clone(),
                });
                let _ = LOG_FILE.set(log_file.clone());
                Some(
                    tracing_subscriber::fmt::layer()
                        .with_writer(log_file)
                        .with_ansi(false)
                        .event_format(FileLine { syslog: None })
                        .with_filter(level)
                        .boxed(),
                )
            }
            Err(err) if required => {
                anyhow::bail!("{err:#}; a daemon in the background (-d) logs only to its log file");
            }
            Err(err) => {
                file_note = Some(format!("{err:#}; logging to the console only"));
                None
            }
        },
        Some((LogTarget::Syslog(syslog), level)) if level != LevelFilter::OFF => {
            let queue = SYSLOG
                .get_or_init(|| {
                    let notice_syslog = syslog.clone();
                    let mut sender = Sender::new(syslog.clone());
                    LineQueue::start(
                        "syslog",
                        move |count| syslog_notice(&notice_syslog, count),
                        move |line| sender.send(line),
                    )
                })
                .clone();
            Some(
                tracing_subscriber::fmt::layer()
                    .with_writer(queue)
                    .with_ansi(false)
                    .event_format(FileLine {
                        syslog: Some(syslog.clone()),
                    })
                    .with_filter(level)
                    .boxed(),
            )
        }
        _ => None,
    };
    // A database driver logs every statement at debug, and the NATS client every message and
    // (re)connection: a line per stored batch or bridged event would drown the daemon's own
    // lines in a debug log file, and the bridge says itself when NATS comes and goes.
    let libraries = tracing_subscriber::filter::filter_fn(|meta| {
        let chatty = ["sqlx", "async_nats"]
            .iter()
            .any(|library| meta.target().starts_with(library));
        !chatty || *meta.level() <= tracing::Level::WARN
    });
    let subscriber = Registry::default()
        .with(console_layer)
        .with(file_layer)
        .with(libraries);
    tracing::subscriber::set_global_default(subscriber).context("cannot set up logging")?;
    if let Some(note) = file_note {
        tracing::warn!("{note}");
    }
    Ok(())
}

/// The daemon's log file, once [`init_daemon`] opened it.
static LOG_FILE: OnceLock<Arc<LogFile>> = OnceLock::new();

/// A daemon's log file, written by its path's file of the moment.
#[derive(Debug)]
struct LogFile {
    path: PathBuf,
    file: Mutex<std::fs::File>,
    /// The directory the start created for it, if it did.
    created_dir: Option<PathBuf>,
}

impl std::io::Write for &LogFile {
    // The formatter writes each event whole, in one call: lines never interleave.
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        let mut file = self.file.lock().unwrap_or_else(|p| p.into_inner());
        std::io::Write::write_all(&mut *file, line)?;
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Opens the daemon's log file again by its path (creating it, as at start), so that lines go
/// to the new file once logrotate moved the old one away. The old file stays in use when the
/// new one cannot be opened, and a warning says why.
pub(crate) fn reopen() {
    let Some(log_file) = LOG_FILE.get() else {
        return;
    };
    match open_log(&log_file.path) {
        Ok((handle, note)) => {
            *log_file.file.lock().unwrap_or_else(|p| p.into_inner()) = handle;
            tracing::info!("reopened log file {}", log_file.path.display());
            if let Some(note) = note {
                tracing::warn!("{note}");
            }
        }
        Err(err) => tracing::warn!("{err:#}; still writing to the file it had open"),
    }
}

/// Hands the log file to the user a root daemon becomes (`uid`, `gid`), and the directory the
/// start created for it, so that the daemon can open a new file there after a rotation, as
/// Salt's daemons own theirs. A directory that was there before is left as it is.
pub(crate) fn hand_log_to(uid: nix::unistd::Uid, gid: nix::unistd::Gid) -> anyhow::Result<()> {
    let Some(log_file) = LOG_FILE.get() else {
        return Ok(());
    };
    let file = log_file.file.lock().unwrap_or_else(|p| p.into_inner());
    nix::unistd::fchown(&*file, Some(uid), Some(gid))
        .with_context(|| format!("cannot hand log file {} over", log_file.path.display()))?;
    if let Some(dir) = &log_file.created_dir {
        nix::unistd::chown(dir, Some(uid), Some(gid))
            .with_context(|| format!("cannot hand log directory {} over", dir.display()))?;
    }
    Ok(())
}

/// The daemon's queued console, once [`init_daemon`] started it.
static QUEUED_CONSOLE: OnceLock<Arc<LineQueue>> = OnceLock::new();

/// The daemon's queue of lines for syslog, when its log goes there.
static SYSLOG: OnceLock<Arc<LineQueue>> = OnceLock::new();

/// Bytes of log lines that may wait for their writer; beyond them, lines are dropped.
const QUEUE_BUDGET: usize = 1024 * 1024;

/// How long a stopping daemon waits for each queue's lines to be written.
const QUEUE_FLUSH: Duration = Duration::from_secs(2);

/// Lines queued for a writer that may block (stderr a full pipe, a syslog away): they queue
/// here, bounded in bytes, and a thread of its own writes them. A blocked writer blocks that
/// thread only; lines that do not fit meanwhile, or that the writer gives up, are dropped, and a
/// notice says how many where they went missing.
struct LineQueue {
    state: Mutex<QueueState>,
    /// Lines (or a stop) are waiting for the writer.
    ready: Condvar,
    /// The writer wrote all it had.
    written: Condvar,
    /// The notice of so many lines dropped.
    notice: Box<dyn Fn(u64) -> Vec<u8> + Send + Sync>,
}

#[derive(Debug, Default)]
struct QueueState {
    lines: VecDeque<Queued>,
    bytes: usize,
    /// Lines dropped since the last notice.
    dropped: u64,
    /// The writer holds lines it has not written yet.
    writing: bool,
}

#[derive(Debug)]
enum Queued {
    Line(Vec<u8>),
    /// The notice of so many lines dropped, made when written.
    Dropped(u64),
}

/// The console's notice of dropped lines.
fn console_notice(count: u64) -> Vec<u8> {
    format!(
        "[{:<8}] dropped {count} console log lines: stderr was not read in time (the log file has them)\n",
        salt_level_name(&Level::WARN),
    )
    .into_bytes()
}

/// Syslog's notice of dropped lines, a line of the daemon's log as the others.
fn syslog_notice(syslog: &Syslog, count: u64) -> Vec<u8> {
    format!(
        "<{}>{} [{:<17}][{:<8}][{}] dropped {count} log lines: syslog at {} did not take them in time\n",
        syslog.priority(&Level::WARN),
        jiff::ZonedDateTime::now().strftime("%Y-%m-%d %H:%M:%S,%3f"),
        module_path!(),
        salt_level_name(&Level::WARN),
        std::process::id(),
        syslog.url(),
    )
    .into_bytes()
}

impl LineQueue {
    fn new(notice: impl Fn(u64) -> Vec<u8> + Send + Sync + 'static) -> Self {
        Self {
            state: Mutex::default(),
            ready: Condvar::new(),
            written: Condvar::new(),
            notice: Box::new(notice),
        }
    }

    /// A queue whose thread `name` writes each line with `write`, which says whether it did.
    fn start(
        name: &str,
        notice: impl Fn(u64) -> Vec<u8> + Send + Sync + 'static,
        write: impl FnMut(&[u8]) -> bool + Send + 'static,
    ) -> Arc<Self> {
        let queue = Arc::new(Self::new(notice));
        let writer = queue.clone();
        // Lives as long as the process; `flush` waits for what it holds.
        std::thread::Builder::new()
            .name(name.into())
            .spawn(move || writer.write_out(write))
            .expect("cannot start a log thread");
        queue
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, QueueState> {
        self.state
            .lock()
            .unwrap_or_else(|poisoned| poisoned.into_inner())
    }

    /// Queues a line unless it does not fit; a line larger than the budget still goes alone.
    fn push(&self, line: &[u8]) {
        let mut state = self.lock();
        if !state.lines.is_empty() && state.bytes + line.len() > QUEUE_BUDGET {
            state.dropped += 1;
            return;
        }
        Self::note_dropped(&mut state);
        state.bytes += line.len();
        state.lines.push_back(Queued::Line(line.to_vec()));
        drop(state);
        self.ready.notify_one();
    }

    /// Queues the notice of lines dropped since the last one, where they went missing. It is
    /// small and at most one per line queued, so it need not fit the budget.
    fn note_dropped(state: &mut QueueState) {
        if state.dropped > 0 {
            let count = std::mem::take(&mut state.dropped);
            state.lines.push_back(Queued::Dropped(count));
        }
    }

    /// The writer thread: writes what is queued, oldest first. Lines it could not write count as
    /// dropped; a notice it could not write is counted again.
    fn write_out(&self, mut write: impl FnMut(&[u8]) -> bool) {
        loop {
            let lines = {
                let mut state = self.lock();
                state.writing = false;
                self.written.notify_all();
                while state.lines.is_empty() {
                    state = self.ready.wait(state).unwrap_or_else(|p| p.into_inner());
                }
                state.writing = true;
                state.bytes = 0;
                std::mem::take(&mut state.lines)
            };
            let mut lost = 0;
            for queued in lines {
                match queued {
                    Queued::Line(line) => lost += u64::from(!write(&line)),
                    Queued::Dropped(count) => {
                        if !write(&(self.notice)(count)) {
                            lost += count;
                        }
                    }
                }
            }
            if lost > 0 {
                self.lock().dropped += lost;
            }
        }
    }

    /// Waits, at most [`QUEUE_FLUSH`], for the lines queued so far to be written.
    fn flush(&self) {
        let mut state = self.lock();
        Self::note_dropped(&mut state);
        self.ready.notify_one();
        let _ = self
            .written
            .wait_timeout_while(state, QUEUE_FLUSH, |state| {
                state.writing || !state.lines.is_empty()
            });
    }
}

impl std::io::Write for &LineQueue {
    // The formatter writes each event whole, in one call.
    fn write(&mut self, line: &[u8]) -> std::io::Result<usize> {
        self.push(line);
        Ok(line.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Writes out a daemon's queued log lines before it exits (waiting a moment at most).
pub(crate) fn flush() {
    for queue in [&SYSLOG, &QUEUED_CONSOLE] {
        if let Some(queue) = queue.get() {
            queue.flush();
        }
    }
}

/// Opens the log file for appending. As Salt (umask 027): a new file is 0640 and a new
/// directory 0750, since logs hold job arguments and output; a file of this user that others
/// could read or group members write (as earlier releases made it) is tightened to that.
fn open_log(path: &Path) -> anyhow::Result<(std::fs::File, Option<String>)> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
    if let Some(dir) = path.parent() {
        crate::config::create_dir_all(std::fs::DirBuilder::new().recursive(true).mode(0o750), dir)
            .with_context(|| format!("cannot create log directory {}", dir.display()))?;
    }
    let file = crate::config::open_plain_file(
        path,
        std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .mode(0o640),
    )
    .with_context(|| format!("cannot open log file {}", path.display()))?;
    let meta = file
        .metadata()
        .with_context(|| format!("cannot inspect log file {}", path.display()))?;
    let mode = meta.mode() & 0o7777;
    let mut note = None;
    if meta.is_file() && meta.uid() == nix::unistd::geteuid().as_raw() && mode & 0o027 != 0 {
        let tightened = mode & !0o027;
        file.set_permissions(std::fs::Permissions::from_mode(tightened))
            .with_context(|| format!("cannot set the mode of log file {}", path.display()))?;
        note = Some(format!(
            "log file {} had mode {mode:04o}; set it to {tightened:04o}",
            path.display()
        ));
    }
    Ok((file, note))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn queued(console: &LineQueue) -> Vec<String> {
        let state = console.lock();
        state
            .lines
            .iter()
            .map(|queued| match queued {
                Queued::Line(line) => String::from_utf8_lossy(line).into_owned(),
                Queued::Dropped(count) => {
                    String::from_utf8_lossy(&(console.notice)(*count)).into_owned()
                }
            })
            .collect()
    }

    /// No writer takes the lines here, as none does from a full pipe.
    #[test]
    fn lines_that_do_not_fit_are_dropped_and_told_where_they_went_missing() {
        let console = LineQueue::new(console_notice);
        let line = vec![b'x'; QUEUE_BUDGET / 4];
        for _ in 0..10 {
            std::io::Write::write_all(&mut &console, &line).unwrap();
        }
        assert_eq!(queued(&console).len(), 4);
        console.lock().lines.pop_front();
        console.lock().bytes -= line.len();
        std::io::Write::write_all(&mut &console, b"after\n").unwrap();
        let lines = queued(&console);
        assert_eq!(lines.len(), 5);
        assert_eq!(
            lines[3..],
            [
                "[WARNING ] dropped 6 console log lines: stderr was not read in time (the log file has them)\n",
                "after\n"
            ]
        );
    }

    /// Lines a writer gives up (a syslog away) are counted, and told once it takes lines again.
    #[test]
    fn lines_the_writer_gave_up_are_counted_and_told() {
        let written = Arc::new(Mutex::new(Vec::new()));
        let up = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let queue = {
            let (written, up) = (written.clone(), up.clone());
            LineQueue::start("test-log", console_notice, move |line| {
                let taken = up.load(std::sync::atomic::Ordering::SeqCst);
                if taken {
                    written
                        .lock()
                        .unwrap()
                        .push(String::from_utf8_lossy(line).into_owned());
                }
                taken
            })
        };
        queue.push(b"lost 1\n");
        queue.push(b"lost 2\n");
        queue.flush();
        up.store(true, std::sync::atomic::Ordering::SeqCst);
        queue.push(b"after\n");
        queue.flush();
        assert_eq!(
            *written.lock().unwrap(),
            [
                "[WARNING ] dropped 2 console log lines: stderr was not read in time (the log file has them)\n",
                "after\n"
            ]
        );
    }

    #[test]
    fn a_line_larger_than_the_budget_still_goes_alone() {
        let console = LineQueue::new(console_notice);
        let line = vec![b'x'; QUEUE_BUDGET + 1];
        std::io::Write::write_all(&mut &console, &line).unwrap();
        std::io::Write::write_all(&mut &console, b"next\n").unwrap();
        assert_eq!(queued(&console).len(), 1);
        assert_eq!(console.lock().dropped, 1);
    }
}
