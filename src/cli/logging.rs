//! Logging in Salt's formats: `[WARNING ] message` on the console, and timestamped lines with
//! the module and process id in a daemon's log file.

use std::fmt;
use std::path::Path;

use anyhow::{Context, bail};
use tracing::level_filters::LevelFilter;
use tracing::{Event, Level, Subscriber};
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields};
use tracing_subscriber::layer::SubscriberExt;
use tracing_subscriber::registry::LookupSpan;
use tracing_subscriber::{Layer, Registry};

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
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

struct LogFile;

impl<S, N> FormatEvent<S, N> for LogFile
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
        write!(
            writer,
            "{} [{:<17}][{:<8}][{}] ",
            now.strftime("%Y-%m-%d %H:%M:%S,%3f"),
            event.metadata().target(),
            salt_level_name(event.metadata().level()),
            std::process::id()
        )?;
        ctx.field_format().format_fields(writer.by_ref(), event)?;
        writeln!(writer)
    }
}

/// Sets up console logging at `console` and, when given, file logging at `file_level`. A log
/// file that cannot be opened is reported on the console and skipped, so a daemon started
/// without root still runs.
pub(crate) fn init(console: LevelFilter, file: Option<(&Path, LevelFilter)>) -> anyhow::Result<()> {
    let console_layer = tracing_subscriber::fmt::layer()
        .with_writer(std::io::stderr)
        .event_format(Console)
        .with_filter(console);
    let mut file_note = None;
    let file_layer = match file {
        Some((path, level)) if level != LevelFilter::OFF => match open_log(path) {
            Ok((handle, note)) => {
                file_note = note;
                Some(
                    tracing_subscriber::fmt::layer()
                        .with_writer(std::sync::Mutex::new(handle))
                        .with_ansi(false)
                        .event_format(LogFile)
                        .with_filter(level),
                )
            }
            Err(err) => {
                file_note = Some(format!("{err:#}; logging to the console only"));
                None
            }
        },
        _ => None,
    };
    // A database driver logs every statement at debug: one line per stored batch would drown
    // the daemon's own lines in a debug log file.
    let libraries = tracing_subscriber::filter::filter_fn(|meta| {
        !meta.target().starts_with("sqlx") || *meta.level() <= tracing::Level::WARN
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

/// Opens the log file for appending. As Salt (umask 027): a new file is 0640 and a new
/// directory 0750, since logs hold job arguments and output; a file of this user that others
/// could read or group members write (as earlier releases made it) is tightened to that.
fn open_log(path: &Path) -> anyhow::Result<(std::fs::File, Option<String>)> {
    use std::os::unix::fs::{DirBuilderExt, MetadataExt, OpenOptionsExt, PermissionsExt};
    if let Some(dir) = path.parent() {
        std::fs::DirBuilder::new()
            .recursive(true)
            .mode(0o750)
            .create(dir)
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
