//! The command-line front ends, one module per binary, and what they share: common flags,
//! logging in Salt's format, signal handling, exit codes, and the one place errors are reported.

pub mod api;
pub mod call;
pub mod key;
pub mod master;
pub mod minion;
pub mod multicall;
pub mod run;
pub mod salt;

mod args;
mod completion;
mod daemon;
mod logging;
mod notify;
mod state_event;
mod stdin_events;
mod syslog;
mod versions;

use std::io::Write;
use std::process::ExitCode;

use clap::{CommandFactory, ValueEnum};

pub use args::{CommonArgs, DaemonArgs, OutputArgs};

/// How a command ended, as its exit status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Exit {
    /// Everything worked.
    Success,
    /// The command failed; the message says why.
    Failure,
    /// Salt's status for an unknown function (`sys.exit(-1)`).
    NotAvailable,
    /// Stopped by SIGINT.
    Interrupted,
    /// Stopped by SIGTERM.
    Terminated,
    /// `salt`: no minion matched the target (Salt's 2).
    NoMinionMatched,
    /// A minion whose key the master rejected or denied (Salt's 77, `EX_NOPERM`).
    KeyRefused,
    /// A minion whose master's key is not the configured `master_finger` (Salt's 42).
    WrongMaster,
    /// A return code passed through (`salt-call --retcode-passthrough`).
    Code(u8),
}

impl Exit {
    /// The process exit code.
    pub(crate) fn code(self) -> u8 {
        match self {
            Exit::Success => 0,
            Exit::Failure => 1,
            Exit::NotAvailable => 255,
            Exit::Interrupted => 130,
            Exit::Terminated => 143,
            Exit::NoMinionMatched => 2,
            Exit::KeyRefused => 77,
            Exit::WrongMaster => 42,
            Exit::Code(code) => code,
        }
    }
}

impl From<Exit> for ExitCode {
    fn from(exit: Exit) -> Self {
        ExitCode::from(exit.code())
    }
}

/// Which tokio runtime a command runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Runtime {
    /// One thread: a client starts fast and stays small.
    SingleThread,
    /// A worker per core: the daemons, and load generation.
    MultiThread,
}

/// Runs a command body on a fresh tokio runtime and turns its outcome into an exit status. This
/// is the one place errors reach the user: `error: ` and the whole cause chain on one line.
pub(crate) fn execute<F, Fut>(runtime: Runtime, body: F) -> ExitCode
where
    F: FnOnce() -> Fut,
    Fut: std::future::Future<Output = anyhow::Result<Exit>>,
{
    let mut builder = match runtime {
        Runtime::SingleThread => tokio::runtime::Builder::new_current_thread(),
        Runtime::MultiThread => {
            let mut builder = tokio::runtime::Builder::new_multi_thread();
            // State runs nest a call per requisite; the main thread has this much already.
            builder.thread_stack_size(crate::states::STATE_STACK);
            builder
        }
    };
    let runtime = match builder.enable_all().build() {
        Ok(runtime) => runtime,
        Err(err) => {
            return report(anyhow::Error::new(err).context("cannot start the async runtime"));
        }
    };
    let outcome = runtime.block_on(body());
    // Blocking stdin readers must not keep the process alive once the command is done.
    runtime.shutdown_background();
    match outcome {
        Ok(exit) => exit.into(),
        Err(err) => report(err),
    }
}

/// Writes `text` to stdout. Errors go up to the one place they are reported, where a closed
/// pipe (`| head`) ends the command quietly instead of panicking as `print!` does.
pub(crate) fn print(text: impl AsRef<[u8]>) -> std::io::Result<()> {
    let mut stdout = stdout();
    stdout.write_all(text.as_ref())?;
    stdout.flush()
}

/// Standard output, locked, whose write errors name where it goes.
pub(crate) struct Stdout(std::io::StdoutLock<'static>);

/// Locks standard output for writing (see [`Stdout`]).
pub(crate) fn stdout() -> Stdout {
    Stdout(std::io::stdout().lock())
}

impl Write for Stdout {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.write(buf).map_err(stdout_error)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.0.flush().map_err(stdout_error)
    }
}

/// A write error of standard output naming the file it goes to, when it goes to one (as
/// `> file` sends it). A closed pipe stays as it is: [`report`] treats it as the reader's choice.
fn stdout_error(err: std::io::Error) -> std::io::Error {
    use std::io::ErrorKind;
    if matches!(err.kind(), ErrorKind::BrokenPipe | ErrorKind::Interrupted) {
        return err;
    }
    let target = match std::fs::read_link("/proc/self/fd/1") {
        Ok(path) if path.is_absolute() => format!("standard output ({})", path.display()),
        _ => "standard output".to_owned(),
    };
    output_error(&target, &err)
}

/// A failure to open or write `target`, where the output goes, as one line naming it and the
/// fix; of the same kind, so that callers still tell kinds apart.
pub(crate) fn output_error(target: &str, err: &std::io::Error) -> std::io::Error {
    use std::io::ErrorKind;
    let fix = match err.kind() {
        ErrorKind::NotFound => "create its directory or give another path",
        ErrorKind::PermissionDenied => "give a path you may write, or run as a user who may",
        ErrorKind::IsADirectory => "give a file's path, not a directory's",
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded | ErrorKind::FileTooLarge => {
            "free space there, or write the output to another file system"
        }
        _ => "write the output somewhere that can be written",
    };
    std::io::Error::new(
        err.kind(),
        format!("cannot write the output to {target}: {err}; {fix}"),
    )
}

/// Writes a line to stderr. `eprintln!` panics when stderr is closed; this returns the error.
pub(crate) fn print_err(line: &str) -> std::io::Result<()> {
    writeln!(std::io::stderr().lock(), "{line}")
}

/// A function this binary does not have; Salt exits 255 for it.
#[derive(Debug, thiserror::Error)]
#[error("'{0}' is not available.")]
pub(crate) struct NotAvailable(pub String);

fn report(err: anyhow::Error) -> ExitCode {
    // A closed stdout (`| head`) is the reader's choice, not a failure.
    if err.chain().any(|cause| {
        cause
            .downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    }) {
        return ExitCode::SUCCESS;
    }
    // A daemon's console lines logged before the error come before it.
    logging::flush();
    let _ = print_err(&format!("error: {}", describe(&err)));
    if err.is::<NotAvailable>() {
        Exit::NotAvailable.into()
    } else {
        Exit::Failure.into()
    }
}

/// The error and its causes, joined as `{:#}` joins them, leaving out a cause whose text the
/// message before it already holds (library errors often name their cause in their message,
/// before the fix).
fn describe(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if line.is_empty() {
            line = text;
        } else if !line.contains(&text) {
            line.push_str(": ");
            line.push_str(&text);
        }
    }
    line
}

/// What `--generate` writes: a man page or a shell completion script.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Generate {
    /// A roff man page.
    Man,
    /// Bash completion.
    Bash,
    /// Zsh completion.
    Zsh,
    /// Fish completion.
    Fish,
}

/// What binary `C` does instead of its work when asked: write `--generate`'s file, or print
/// the `-V` versions report.
pub(crate) fn preempt<C: CommandFactory>(
    what: Option<Generate>,
    versions_report: bool,
) -> Option<ExitCode> {
    if let Some(what) = what {
        return Some(generate::<C>(what));
    }
    versions_report.then(|| match print(versions::report()) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => report(err.into()),
    })
}

/// Writes the man page or completion script of binary `C` to stdout.
pub(crate) fn generate<C: CommandFactory>(what: Generate) -> ExitCode {
    let mut command = C::command();
    let name = command.get_name().to_owned();
    let mut out = Vec::new();
    let written = match what {
        Generate::Man => man_page(command, &mut out),
        Generate::Bash => {
            clap_complete::generate(clap_complete::Shell::Bash, &mut command, name, &mut out);
            completion::bash_minion_ids(&command, &mut out)
        }
        Generate::Zsh => {
            clap_complete::generate(clap_complete::Shell::Zsh, &mut command, name, &mut out);
            completion::zsh_minion_ids(&command, &mut out)
        }
        Generate::Fish => {
            clap_complete::generate(clap_complete::Shell::Fish, &mut command, &name, &mut out);
            completion::fish_positional(&command, &name, &mut out)
                .and_then(|()| completion::fish_minion_ids(&command, &name, &mut out))
        }
    };
    match written.and_then(|()| stdout().write_all(&out)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => report(err.into()),
    }
}

/// What a binary's man page says beyond its options, in the sections man pages have.
struct Manual {
    /// 8 for the daemons, 1 for the commands.
    section: &'static str,
    /// Exit statuses and what they mean.
    exit_status: &'static [(&'static str, &'static str)],
    /// Files it reads or writes.
    files: &'static [(&'static str, &'static str)],
    /// Environment variables it reads.
    environment: &'static [(&'static str, &'static str)],
}

const CONFIG_FILES: [(&str, &str); 2] = [
    (
        "/etc/salt/master, /etc/salt/master.d/*.conf",
        "The master's configuration (another directory with -c or SALT_CONFIG_DIR)",
    ),
    (
        "/etc/salt/minion, /etc/salt/minion.d/*.conf",
        "The minion's configuration",
    ),
];
const PKI: (&str, &str) = (
    "/etc/salt/pki/master, /etc/salt/pki/minion",
    "Key pairs and the key store (pki_dir)",
);
const SOCKETS: (&str, &str) = (
    "/var/run/salt/master, /var/run/salt/minion",
    "The event bus sockets (sock_dir); a per-user runtime directory when these cannot be used",
);
const CACHE: (&str, &str) = (
    "/var/cache/salt/master, /var/cache/salt/minion",
    "The job cache and the minion's copies of the master's files (cachedir)",
);
const CONFIG_DIR_ENV: (&str, &str) = (
    "SALT_CONFIG_DIR",
    "The configuration directory when -c is not given",
);
const NO_COLOR_ENV: (&str, &str) = (
    "NO_COLOR",
    "Set to anything: no colour unless --force-color",
);
const NO_PARSE_ENV: (&str, &str) = (
    "SALT_NO_PARSE",
    "Argument names whose values stay strings (as --no-parse)",
);
const DAEMON_EXIT: &[(&str, &str)] = &[
    ("0", "Stopped by SIGTERM or SIGINT, after draining its work"),
    (
        "1",
        "The configuration or a service could not start; the message says why",
    ),
];
const MINION_EXIT: &[(&str, &str)] = &[
    ("0", "Stopped by SIGTERM or SIGINT, after draining its work"),
    (
        "1",
        "The configuration or a service could not start; the message says why",
    ),
    ("42", "The master's key is not the configured master_finger"),
    ("77", "The master rejected or denied this minion's key"),
];
const CLIENT_ENV: &[(&str, &str)] = &[CONFIG_DIR_ENV, NO_COLOR_ENV, NO_PARSE_ENV];

/// The man page sections of binary `name` beyond its options.
fn manual(name: &str) -> Manual {
    let daemon = |exit_status, files| Manual {
        section: "8",
        exit_status,
        files,
        environment: &[CONFIG_DIR_ENV],
    };
    match name {
        "salt-master" => daemon(DAEMON_EXIT, &[CONFIG_FILES[0], PKI, SOCKETS, CACHE]),
        "salt-minion" => daemon(MINION_EXIT, &[CONFIG_FILES[1], PKI, SOCKETS, CACHE]),
        "salt-api" => daemon(DAEMON_EXIT, &[CONFIG_FILES[0], SOCKETS]),
        "salt" => Manual {
            section: "1",
            exit_status: &[
                ("0", "Every minion targeted returned, with return code 0"),
                (
                    "1",
                    "A minion did not return, or the command failed; the message says why",
                ),
                (
                    "N",
                    "The highest non-zero return code of the minions' returns",
                ),
                ("2", "No minion matched the target"),
                ("130", "Interrupted"),
            ],
            files: &[CONFIG_FILES[0], PKI, SOCKETS],
            environment: CLIENT_ENV,
        },
        "salt-call" => Manual {
            section: "1",
            exit_status: &[
                ("0", "The function succeeded"),
                ("1", "The function failed or the command could not run"),
                ("42", "The master's key is not the configured master_finger"),
                ("77", "The master rejected or denied this minion's key"),
                ("255", "No such function"),
            ],
            files: &[CONFIG_FILES[1], PKI, CACHE],
            environment: CLIENT_ENV,
        },
        "salt-run" => Manual {
            section: "1",
            exit_status: &[
                ("0", "The runner succeeded"),
                ("1", "The runner failed or the command could not run"),
                ("130", "Interrupted (state.event)"),
            ],
            files: &[CONFIG_FILES[0], SOCKETS, CACHE],
            environment: CLIENT_ENV,
        },
        _ => Manual {
            section: "1",
            exit_status: &[
                ("0", "Done"),
                (
                    "1",
                    "The keys could not be read or changed; the message says why",
                ),
            ],
            files: &[CONFIG_FILES[0], PKI],
            environment: &[CONFIG_DIR_ENV, NO_COLOR_ENV],
        },
    }
}

/// The man page: clap_mangen's title, name, synopsis, description and options, then EXIT
/// STATUS, FILES, ENVIRONMENT and EXAMPLES (the help's examples), then the version.
fn man_page(command: clap::Command, out: &mut Vec<u8>) -> std::io::Result<()> {
    use roff::{Roff, bold, roman};
    let manual = manual(command.get_name());
    let examples = command
        .get_after_help()
        .map(|help| help.to_string())
        .unwrap_or_default();
    let man = clap_mangen::Man::new(command.after_help(None::<&str>)).section(manual.section);
    man.render_title(out)?;
    let preamble = Roff::new().render();
    let mut piece = Vec::new();
    // Each piece starts with roff's preamble; the title already wrote it.
    let append = |piece: &mut Vec<u8>, out: &mut Vec<u8>| {
        out.extend_from_slice(piece.strip_prefix(preamble.as_bytes()).unwrap_or(piece));
        piece.clear();
    };
    for render in [
        clap_mangen::Man::render_name_section,
        clap_mangen::Man::render_synopsis_section,
        clap_mangen::Man::render_description_section,
        clap_mangen::Man::render_options_section,
    ] {
        render(&man, &mut piece)?;
        append(&mut piece, out);
    }
    let mut roff = Roff::new();
    let mut list = |title: &str, items: &[(&str, &str)]| {
        roff.control("SH", [title]);
        for (term, meaning) in items {
            roff.control("TP", []);
            roff.text([bold(*term)]);
            roff.text([roman(*meaning)]);
        }
    };
    list("EXIT STATUS", manual.exit_status);
    list("FILES", manual.files);
    list("ENVIRONMENT", manual.environment);
    let examples: Vec<&str> = examples
        .lines()
        .skip(1)
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .collect();
    if !examples.is_empty() {
        roff.control("SH", ["EXAMPLES"]);
        for example in examples {
            roff.control("TP", []);
            roff.text([bold(example)]);
        }
    }
    roff.to_writer(&mut piece)?;
    append(&mut piece, out);
    man.render_version_section(&mut piece)?;
    append(&mut piece, out);
    Ok(())
}

/// Resolves when SIGINT or SIGTERM arrives, telling which.
pub(crate) async fn stop_signal() -> Exit {
    use tokio::signal::unix::{SignalKind, signal};
    let (Ok(mut interrupt), Ok(mut terminate)) = (
        signal(SignalKind::interrupt()),
        signal(SignalKind::terminate()),
    ) else {
        // Without signal handlers the default action (exit) still applies.
        return std::future::pending().await;
    };
    tokio::select! {
        _ = interrupt.recv() => Exit::Interrupted,
        _ = terminate.recv() => Exit::Terminated,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// `cannot connect to the master at …: Connection refused: Connection refused` printed its
    /// cause twice, once from the library's message and once from the chain.
    #[test]
    fn a_cause_the_message_already_names_is_printed_once() {
        let io = std::io::Error::from(std::io::ErrorKind::ConnectionRefused);
        let err = anyhow::Error::new(crate::link::LinkError::Connect {
            address: "m:4506".into(),
            source: io,
        });
        let line = describe(&err);
        assert_eq!(line.matches("refused").count(), 1, "{line}");
        let err = anyhow::anyhow!("inner").context("outer");
        assert_eq!(describe(&err), "outer: inner");
    }
}
