//! `onlyif`, `unless` and `creates`, checked before a state runs, as Salt 3007's
//! `State._run_check` does: shell commands through `cmd.retcode` (with the state's `cwd`,
//! `runas`, `env`… and a shell), or `{fun: mod.fun, args: […]}` execution functions.

use super::StateContext;
use super::high::Chunk;
use crate::event::{Value, map_get};
use crate::py::value::{py_str, truthy};

/// The arguments of a `cmd` state that its checks' commands share.
const CMD_OPTS: &[&str] = &[
    "cwd",
    "root",
    "runas",
    "env",
    "prepend_path",
    "umask",
    "timeout",
    "success_retcodes",
];

/// What the checks decided.
#[derive(Debug, Clone, PartialEq)]
pub(super) struct Check {
    /// True: the state is not to run (its result is then True).
    pub result: bool,
    /// Each check's comment, a line each.
    pub comment: String,
    /// Set when a check decided: a skipped state does not fire its `mod_watch`.
    pub skip_watch: Option<bool>,
}

/// One kind of check's verdict.
struct Verdict {
    result: bool,
    comment: String,
    skip_watch: Option<bool>,
}

/// Runs the chunk's `onlyif`, `unless` and `creates`, in that order.
pub(super) async fn run_check(ctx: &StateContext, low: &Chunk) -> Check {
    let exclude: Vec<String> = match low.get("cmd_opts_exclude") {
        Some(Value::Array(list)) => list.iter().map(|v| py_str(v).into_owned()).collect(),
        Some(one) => vec![py_str(one).into_owned()],
        None => Vec::new(),
    };
    let mut opts: Vec<(String, Value)> = CMD_OPTS
        .iter()
        .filter(|key| !exclude.iter().any(|e| e == *key))
        .map(|key| {
            let value = low.get(key).cloned().unwrap_or(Value::Nil);
            // `cmd.retcode` takes the environment as a map; a state may give a list of maps.
            let value = match *key {
                "env" => super::cmd::env_map(Some(&value))
                    .ok()
                    .flatten()
                    .unwrap_or(Value::Nil),
                _ => value,
            };
            ((*key).to_owned(), value)
        })
        .collect();
    match low
        .get("shell")
        .filter(|_| !exclude.iter().any(|e| e == "shell"))
    {
        Some(shell) => opts.push(("shell".to_owned(), shell.clone())),
        None => {
            if let Some(shell) = map_get(&ctx.grains, "shell") {
                opts.push(("shell".to_owned(), shell.clone()));
            }
        }
    }
    let mut check = Check {
        result: false,
        comment: String::new(),
        skip_watch: None,
    };
    let mut comments = Vec::new();
    if let Some(onlyif) = low.get("onlyif") {
        let verdict = onlyif_check(ctx, onlyif, &opts).await;
        check.result = verdict.result;
        comments.push(verdict.comment);
        check.skip_watch = verdict.skip_watch;
    }
    for (key, runs) in [("unless", true), ("creates", false)] {
        let Some(value) = low.get(key) else { continue };
        let verdict = if runs {
            unless_check(ctx, value, &opts).await
        } else {
            creates_check(value)
        };
        check.result = verdict.result || check.result;
        comments.push(verdict.comment);
        if let Some(skip) = verdict.skip_watch {
            check.skip_watch = Some(skip || check.skip_watch.unwrap_or(false));
        }
    }
    check.comment = comments.join("\n");
    check
}

/// A check's entries: one or a list.
fn entries(value: &Value) -> Vec<Value> {
    match value {
        Value::Array(list) => list.clone(),
        one => vec![one.clone()],
    }
}

/// The exit status of a shell command run as a check; `failed` when it cannot run.
async fn retcode(ctx: &StateContext, command: &str, opts: &[(String, Value)], failed: i64) -> i64 {
    let mut kwargs = vec![
        ("ignore_retcode".to_owned(), Value::Boolean(true)),
        ("python_shell".to_owned(), Value::Boolean(true)),
    ];
    kwargs.extend(opts.iter().cloned());
    match ctx
        .call("cmd.retcode", vec![Value::from(command)], kwargs)
        .await
    {
        Ok(executed) => executed.ret.as_i64().unwrap_or(failed),
        Err(_) => failed,
    }
}

/// Runs a `{fun: …, args: […], get_return: key, …kwargs}` check: its return code when it set
/// one, else its return's truth.
async fn function_check(ctx: &StateContext, entry: &Value) -> Result<(i64, bool), String> {
    let mut fun = None;
    let mut args = Vec::new();
    let mut get_return = None;
    let mut kwargs = Vec::new();
    for (key, value) in entry.as_map().into_iter().flatten() {
        match py_str(key).as_ref() {
            "fun" => fun = Some(py_str(value).into_owned()),
            "args" => args = entries(value),
            "get_return" => get_return = Some(py_str(value).into_owned()),
            other => kwargs.push((other.to_owned(), value.clone())),
        }
    }
    let fun = fun.ok_or_else(|| py_str(entry).into_owned())?;
    let executed = ctx
        .call(&fun, args, kwargs)
        .await
        .map_err(|err| err.to_string())?;
    let mut ret = executed.ret;
    if let Some(path) = get_return {
        for key in path.split(':') {
            ret = match &ret {
                Value::Array(items) => key
                    .parse::<usize>()
                    .ok()
                    .and_then(|i| items.get(i).cloned())
                    .unwrap_or(Value::Nil),
                other => map_get(other, key).cloned().unwrap_or(Value::Nil),
            };
        }
    }
    Ok((executed.retcode, truthy(&ret)))
}

async fn onlyif_check(ctx: &StateContext, value: &Value, opts: &[(String, Value)]) -> Verdict {
    let skip = || Verdict {
        result: true,
        comment: "onlyif condition is false".to_owned(),
        skip_watch: Some(true),
    };
    let mut verdict = Verdict {
        result: false,
        comment: String::new(),
        skip_watch: None,
    };
    for entry in entries(value) {
        let passed = match &entry {
            Value::String(_) => retcode(ctx, &py_str(&entry), opts, 100).await == 0,
            Value::Map(_) if map_get(&entry, "fun").is_none() => {
                verdict.comment = format!("no `fun` argument in onlyif: {}", py_str(&entry));
                return verdict;
            }
            Value::Map(_) => match function_check(ctx, &entry).await {
                Ok((0, truth)) => truth,
                Ok((_, _)) | Err(_) => false,
            },
            _ => {
                verdict.comment = "onlyif execution failed, bad type passed".to_owned();
                return verdict;
            }
        };
        if !passed {
            return skip();
        }
        verdict.comment = "onlyif condition is true".to_owned();
    }
    verdict
}

async fn unless_check(ctx: &StateContext, value: &Value, opts: &[(String, Value)]) -> Verdict {
    let mut verdict = Verdict {
        result: false,
        comment: String::new(),
        skip_watch: None,
    };
    for entry in entries(value) {
        let holds = match &entry {
            Value::String(_) => retcode(ctx, &py_str(&entry), opts, 0).await == 0,
            Value::Map(_) if map_get(&entry, "fun").is_none() => {
                verdict.comment = format!("no `fun` argument in unless: {}", py_str(&entry));
                return verdict;
            }
            Value::Map(_) => match function_check(ctx, &entry).await {
                Ok((0, truth)) => truth,
                Ok((_, _)) => false,
                Err(_) => true,
            },
            _ => {
                verdict.comment = "unless condition is false, bad type passed".to_owned();
                verdict.result = false;
                continue;
            }
        };
        if !holds {
            return Verdict {
                result: false,
                comment: "unless condition is false".to_owned(),
                skip_watch: None,
            };
        }
        verdict = Verdict {
            result: true,
            comment: "unless condition is true".to_owned(),
            skip_watch: Some(true),
        };
    }
    verdict
}

fn creates_check(value: &Value) -> Verdict {
    let exists = |path: &Value| std::path::Path::new(py_str(path).as_ref()).exists();
    match value {
        Value::String(_) if exists(value) => Verdict {
            result: true,
            comment: format!("{} exists", py_str(value)),
            skip_watch: Some(true),
        },
        Value::Array(paths) if paths.iter().all(exists) => Verdict {
            result: true,
            comment: "All files in creates exist".to_owned(),
            skip_watch: Some(true),
        },
        _ => Verdict {
            result: false,
            comment: "Creates files not found".to_owned(),
            skip_watch: None,
        },
    }
}

/// `check_cmd`, run after the state: its verdict on the state's result from the exit codes of
/// its commands, and the comment saying so (none for an empty list). A string is taken one
/// character at a time, as Salt iterates it.
pub(super) async fn check_cmd(ctx: &StateContext, commands: &Value) -> (bool, Option<String>) {
    let commands: Vec<String> = match commands {
        Value::Array(list) => list.iter().map(|c| py_str(c).into_owned()).collect(),
        other => py_str(other).chars().map(String::from).collect(),
    };
    let opts: Vec<(String, Value)> = map_get(&ctx.grains, "shell")
        .map(|shell| ("shell".to_owned(), shell.clone()))
        .into_iter()
        .collect();
    let mut verdict = (false, None);
    for command in commands {
        if retcode(ctx, &command, &opts, 1).await != 0 {
            return (
                false,
                Some("check_cmd determined the state failed".to_owned()),
            );
        }
        verdict = (
            true,
            Some("check_cmd determined the state succeeded".to_owned()),
        );
    }
    verdict
}
