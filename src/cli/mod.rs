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
mod daemon;
mod logging;
mod notify;
mod state_event;
mod stdin_events;
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
    let mut stdout = std::io::stdout().lock();
    stdout.write_all(text.as_ref())?;
    stdout.flush()
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
/// message before it ends with (library errors often name their cause last in their message).
fn describe(err: &anyhow::Error) -> String {
    let mut line = String::new();
    for cause in err.chain() {
        let text = cause.to_string();
        if line.is_empty() {
            line = text;
        } else if !line.ends_with(&text) {
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
        Generate::Man => clap_mangen::Man::new(command).render(&mut out),
        Generate::Bash => {
            clap_complete::generate(clap_complete::Shell::Bash, &mut command, name, &mut out);
            Ok(())
        }
        Generate::Zsh => {
            clap_complete::generate(clap_complete::Shell::Zsh, &mut command, name, &mut out);
            Ok(())
        }
        Generate::Fish => {
            clap_complete::generate(clap_complete::Shell::Fish, &mut command, &name, &mut out);
            fish_first_argument(&command, &name, &mut out)
        }
    };
    match written.and_then(|()| std::io::stdout().write_all(&out)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(err) => report(err.into()),
    }
}

/// Offers the possible values of the first positional (`salt-run`'s and `salt-call`'s FUNCTION)
/// as the first argument, with their help: clap's fish script completes no positional's values.
fn fish_first_argument(
    command: &clap::Command,
    name: &str,
    out: &mut Vec<u8>,
) -> std::io::Result<()> {
    let quote = |text: &str| format!("'{}'", text.replace('\\', "\\\\").replace('\'', "\\'"));
    let values = command
        .get_positionals()
        .next()
        .map(clap::Arg::get_possible_values)
        .unwrap_or_default();
    for value in values.iter().filter(|value| !value.is_hide_set()) {
        write!(
            out,
            "complete -c {name} -n __fish_is_first_arg -f -a {}",
            quote(value.get_name())
        )?;
        if let Some(help) = value.get_help() {
            write!(out, " -d {}", quote(&help.to_string()))?;
        }
        writeln!(out)?;
    }
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
