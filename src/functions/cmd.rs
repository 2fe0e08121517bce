//! The `cmd` module: run a command, through a shell (`python_shell`) or split into words and
//! executed directly, with Salt's parameters and defaults.

use std::os::unix::process::CommandExt;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;

use super::{Call, Context, FunctionError, Outcome, bind};
use crate::event::Value;
use crate::py::value::py_str;
use crate::signature::{Bound, Signature, truthy};

/// What the caller wants back.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Shape {
    /// `cmd.run`: the output (stderr merged into stdout).
    Output,
    /// `cmd.run_all`: `pid`, `retcode`, `stdout`, `stderr`.
    All,
    /// `cmd.retcode`: the exit status.
    Retcode,
}

const PARAMS: &[&str] = &[
    "cmd",
    "cwd",
    "stdin",
    "runas",
    "shell",
    "python_shell",
    "env",
    "clean_env",
    "rstrip",
    "timeout",
    "ignore_retcode",
    "hide_output",
    "success_retcodes",
    "redirect_stderr",
];

/// A `cmd` function's usage line: the same parameters after its own name (`concat!` joins
/// literals only, hence a macro).
macro_rules! usage {
    ($name:literal) => {
        concat!(
            $name,
            " CMD [cwd=DIR] [env={K: V}] [timeout=SECONDS] [runas=USER] [python_shell=True|False] [shell=PATH]"
        )
    };
}

/// `cmd.run`'s signature. Salt's cmd functions take **kwargs and ignore what they do not know.
pub(super) const RUN: Signature = Signature {
    name: "cmd.run",
    summary: "Runs a command; its output (stderr merged in)",
    params: PARAMS,
    required: 1,
    kwargs: true,
    usage: usage!("cmd.run"),
};

/// `cmd.run_all`'s signature.
pub(super) const RUN_ALL: Signature = Signature {
    name: "cmd.run_all",
    summary: "Runs a command; its pid, retcode, stdout and stderr",
    usage: usage!("cmd.run_all"),
    ..RUN
};

/// `cmd.retcode`'s signature.
pub(super) const RETCODE: Signature = Signature {
    name: "cmd.retcode",
    summary: "Runs a command; its exit status",
    usage: usage!("cmd.retcode"),
    ..RUN
};

/// Why a command could not run at all.
#[derive(Debug, thiserror::Error)]
pub enum CommandError {
    /// `runas` names no user.
    #[error("ERROR: User '{0}' is not available")]
    NoUser(String),
    /// `runas` another user without root.
    #[error("runas={0} needs the minion to run as root")]
    NotRoot(String),
    /// No pipe for the command's output.
    #[error("cannot create a pipe: {0}")]
    Pipe(std::io::Error),
    /// The program did not start, in Python's words.
    #[error("[Errno {errno}] {text}: '{program}'")]
    Spawn {
        /// The OS error number.
        errno: i32,
        /// Its description.
        text: &'static str,
        /// The program.
        program: String,
    },
    /// Waiting for the command failed.
    #[error("{0}")]
    Wait(std::io::Error),
}

/// The exit status Salt reports when a command cannot run at all or times out.
const FAILED_TO_RUN: i64 = 1;

/// Runs `cmd.run`, `cmd.run_all` or `cmd.retcode`.
pub(super) async fn run(
    call: &Call,
    ctx: &Context,
    shape: Shape,
) -> Result<Outcome, FunctionError> {
    let signature = match shape {
        Shape::Output => RUN,
        Shape::All => RUN_ALL,
        Shape::Retcode => RETCODE,
    };
    let bound = bind(call, &signature)?;
    let command = bound
        .get("cmd")
        .map(|c| py_str(c).into_owned())
        .unwrap_or_default();
    // Salt 3007's rule: no shell unless asked for (python_shell=True), implied by naming a
    // shell, or allowed for everything by `cmd_safe: False`.
    let python_shell = match bound.get("python_shell") {
        Some(Value::Nil) | None => {
            bound.get("shell").is_some_and(|v| !v.is_nil())
                || !ctx.config.get_bool("cmd_safe", true)?
        }
        Some(value) => truthy(value),
    };
    let redirect_stderr = match (shape, bound.get("redirect_stderr")) {
        (Shape::Output, None) => true,
        (_, Some(value)) => truthy(value),
        (_, None) => false,
    };
    let spec = Spec {
        words: words(&command, python_shell, &bound)?,
        cwd: bound
            .get("cwd")
            .filter(|v| !v.is_nil())
            .map(|v| PathBuf::from(py_str(v).as_ref())),
        runas: bound
            .get("runas")
            .filter(|v| !v.is_nil())
            .map(|v| py_str(v).into_owned()),
        env: env_pairs(bound.get("env"))?,
        clean_env: bound.get("clean_env").is_some_and(truthy),
        stdin: bound
            .get("stdin")
            .filter(|v| !v.is_nil())
            .map(|v| py_str(v).into_owned()),
        timeout: match bound.get("timeout").filter(|v| !v.is_nil()) {
            None => None,
            Some(value) => Some(seconds(value)?),
        },
        redirect_stderr,
    };
    if let Some(cwd) = &spec.cwd
        && (!cwd.is_absolute() || !cwd.is_dir())
    {
        return Err(FunctionError::Invalid(format!(
            "ERROR: Specified cwd '{}' either not absolute or does not exist",
            cwd.display()
        )));
    }
    let argv = crate::py::value::repr(&Value::Array(
        spec.words.iter().map(|w| Value::from(w.as_str())).collect(),
    ));
    let shown_command = if python_shell {
        command.clone()
    } else {
        argv.clone()
    };
    let ran = execute(spec, &shown_command)
        .await
        .map_err(|reason| FunctionError::CannotRun { argv, reason })?;
    let rstrip = bound.get("rstrip").is_none_or(truthy);
    let clean = |text: String| {
        if rstrip {
            text.trim_end().to_owned()
        } else {
            text
        }
    };
    let stdout = clean(ran.stdout);
    let stderr = clean(ran.stderr);
    let success_codes: Vec<i64> = bound
        .get("success_retcodes")
        .and_then(Value::as_array)
        .map(|codes| codes.iter().filter_map(Value::as_i64).collect())
        .unwrap_or_default();
    let retcode = if success_codes.contains(&ran.retcode) {
        0
    } else {
        ran.retcode
    };
    let job_retcode = if bound.get("ignore_retcode").is_some_and(truthy) {
        0
    } else {
        retcode
    };
    let hide = bound.get("hide_output").is_some_and(truthy);
    let shown = |text: String| if hide { String::new() } else { text };
    Ok(match shape {
        Shape::Output => Outcome::with_retcode(shown(stdout), job_retcode),
        Shape::All => Outcome::with_retcode(
            Value::Map(vec![
                (Value::from("pid"), Value::from(ran.pid)),
                (Value::from("retcode"), Value::from(retcode)),
                (Value::from("stdout"), Value::from(shown(stdout))),
                (Value::from("stderr"), Value::from(shown(stderr))),
            ]),
            job_retcode,
        ),
        Shape::Retcode => Outcome::with_retcode(retcode, job_retcode),
    })
}

/// The argv: `[shell, "-c", cmd]` with `python_shell`, else the command split as a POSIX shell
/// would split words (no expansion, no redirection).
fn words(command: &str, python_shell: bool, bound: &Bound) -> Result<Vec<String>, FunctionError> {
    if command.trim().is_empty() {
        return Err(FunctionError::Invalid(
            "cmd must be a non-empty command".to_owned(),
        ));
    }
    if python_shell {
        let shell = bound
            .get("shell")
            .filter(|v| !v.is_nil())
            .map(|v| py_str(v).into_owned())
            .unwrap_or_else(default_shell);
        return Ok(vec![shell, "-c".to_owned(), command.to_owned()]);
    }
    shlex::split(command)
        .filter(|w| !w.is_empty())
        .ok_or_else(|| {
            FunctionError::Invalid(format!(
                "cannot split {command:?} into words: unbalanced quotes"
            ))
        })
}

/// Salt's default shell: `$SHELL`, else `/bin/sh`.
fn default_shell() -> String {
    std::env::var("SHELL")
        .ok()
        .filter(|shell| !shell.is_empty())
        .unwrap_or_else(|| "/bin/sh".to_owned())
}

fn env_pairs(env: Option<&Value>) -> Result<Vec<(String, String)>, FunctionError> {
    match env {
        None | Some(Value::Nil) => Ok(Vec::new()),
        Some(Value::Map(entries)) => Ok(entries
            .iter()
            .map(|(k, v)| (py_str(k).into_owned(), py_str(v).into_owned()))
            .collect()),
        Some(other) => Err(FunctionError::Invalid(format!(
            "env must be a dict such as '{{LANG: C}}', not {other}"
        ))),
    }
}

/// A `timeout=` argument: a positive number of seconds.
pub(super) fn seconds(value: &Value) -> Result<Duration, FunctionError> {
    value
        .as_f64()
        .or_else(|| value.as_i64().map(|n| n as f64))
        .or_else(|| py_str(value).trim().parse().ok())
        .filter(|s: &f64| *s > 0.0)
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| {
            FunctionError::Invalid(format!(
                "timeout must be a positive number of seconds, not {value}"
            ))
        })
}

struct Spec {
    words: Vec<String>,
    cwd: Option<PathBuf>,
    runas: Option<String>,
    env: Vec<(String, String)>,
    clean_env: bool,
    stdin: Option<String>,
    timeout: Option<Duration>,
    redirect_stderr: bool,
}

/// What a finished command left.
pub(super) struct Ran {
    pid: u32,
    /// Its exit status (minus the signal that ended it).
    pub retcode: i64,
    /// Its output.
    pub stdout: String,
    /// Its error output.
    pub stderr: String,
}

/// Runs `words` as Salt's modules run their tools (`cmd.run_all` with `python_shell=False`):
/// no shell, `env` on top of the minion's environment, output and errors apart, trailing
/// whitespace stripped. A command that cannot start is Salt's "Unable to run command" error.
pub(super) async fn run_words(words: &[&str], env: &[(&str, &str)]) -> Result<Ran, FunctionError> {
    let spec = Spec {
        words: words.iter().map(|w| (*w).to_owned()).collect(),
        cwd: None,
        runas: None,
        env: env
            .iter()
            .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
            .collect(),
        clean_env: false,
        stdin: None,
        timeout: None,
        redirect_stderr: false,
    };
    let argv = crate::py::value::repr(&Value::Array(
        words.iter().map(|w| Value::from(*w)).collect(),
    ));
    let ran = execute(spec, &argv)
        .await
        .map_err(|reason| FunctionError::CannotRun { argv, reason })?;
    Ok(Ran {
        stdout: ran.stdout.trim_end().to_owned(),
        stderr: ran.stderr.trim_end().to_owned(),
        ..ran
    })
}

/// Reads a pipe to its end without holding a thread: dropped with a timeout, it stops.
async fn read_all(reader: Option<std::io::PipeReader>) -> String {
    use tokio::io::AsyncReadExt;
    let Some(reader) = reader else {
        return String::new();
    };
    let mut bytes = Vec::new();
    if let Ok(mut pipe) =
        tokio::net::unix::pipe::Receiver::from_owned_fd(std::os::fd::OwnedFd::from(reader))
    {
        let _ = pipe.read_to_end(&mut bytes).await;
    }
    String::from_utf8_lossy(&bytes).into_owned()
}

async fn execute(spec: Spec, shown_command: &str) -> Result<Ran, CommandError> {
    let mut command = std::process::Command::new(&spec.words[0]);
    command.args(&spec.words[1..]);
    if spec.clean_env {
        command.env_clear();
    }
    let mut home = nix::unistd::User::from_uid(nix::unistd::geteuid())
        .ok()
        .flatten()
        .map(|user| user.dir);
    if let Some(name) = &spec.runas {
        let user = nix::unistd::User::from_name(name)
            .ok()
            .flatten()
            .ok_or_else(|| CommandError::NoUser(name.clone()))?;
        if !nix::unistd::geteuid().is_root() && user.uid != nix::unistd::geteuid() {
            return Err(CommandError::NotRoot(name.clone()));
        }
        command.uid(user.uid.as_raw()).gid(user.gid.as_raw());
        command
            .env("HOME", &user.dir)
            .env("USER", &user.name)
            .env("LOGNAME", &user.name);
        home = Some(user.dir);
    }
    command.envs(spec.env.iter().map(|(k, v)| (k, v)));
    match spec.cwd.or(home) {
        Some(dir) => {
            command.current_dir(dir);
        }
        None => {
            command.current_dir("/");
        }
    }
    // A process group of its own, so a timeout stops the command's children too.
    command.process_group(0);
    command.stdin(if spec.stdin.is_some() {
        Stdio::piped()
    } else {
        Stdio::null()
    });
    let (out_reader, out_writer) = std::io::pipe().map_err(CommandError::Pipe)?;
    let err_pipe = if spec.redirect_stderr {
        command.stderr(out_writer.try_clone().map_err(CommandError::Pipe)?);
        None
    } else {
        let (reader, writer) = std::io::pipe().map_err(CommandError::Pipe)?;
        command.stderr(writer);
        Some(reader)
    };
    command.stdout(out_writer);
    let mut command = tokio::process::Command::from(command);
    let mut child = command.spawn().map_err(|err| {
        let errno = err.raw_os_error().unwrap_or_default();
        CommandError::Spawn {
            errno,
            text: nix::errno::Errno::from_raw(errno).desc(),
            program: spec.words[0].clone(),
        }
    })?;
    // The parent's copies of the write ends must go, or the readers never see end of file.
    drop(command);
    let pid = child.id().unwrap_or_default();
    // The job holds the command's group while it runs: `saltutil.*_job` signal it, and a job
    // that stops (signalled, or the minion stopping) kills it.
    let group = super::jobs::CommandGroup::hold(pid);
    if let (Some(text), Some(mut stdin)) = (spec.stdin, child.stdin.take()) {
        tokio::spawn(async move {
            use tokio::io::AsyncWriteExt;
            let _ = stdin.write_all(text.as_bytes()).await;
        });
    }
    // The timeout covers the output too: a command that leaves a child holding its output
    // open must not hold the job.
    let finished = async {
        let (status, stdout, stderr) =
            tokio::join!(child.wait(), read_all(Some(out_reader)), read_all(err_pipe));
        status.map(|status| (status, stdout, stderr))
    };
    let (status, stdout, stderr) = match spec.timeout {
        None => finished.await.map_err(CommandError::Wait)?,
        Some(limit) => match tokio::time::timeout(limit, finished).await {
            Ok(finished) => finished.map_err(CommandError::Wait)?,
            Err(_) => {
                group.kill();
                let _ = child.wait().await;
                group.ended();
                return Ok(Ran {
                    pid,
                    retcode: FAILED_TO_RUN,
                    stdout: format!(
                        "{shown_command} : Timed out after {} seconds",
                        crate::py::value::float_repr(limit.as_secs_f64()).trim_end_matches(".0")
                    ),
                    stderr: String::new(),
                });
            }
        },
    };
    group.ended();
    use std::os::unix::process::ExitStatusExt;
    let retcode = status
        .code()
        .map(i64::from)
        .or_else(|| status.signal().map(|signal| -i64::from(signal)))
        .unwrap_or(FAILED_TO_RUN);
    Ok(Ran {
        pid,
        retcode,
        stdout,
        stderr,
    })
}
