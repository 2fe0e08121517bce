//! The `cmd` states: `cmd.run` (a command, through a shell), `cmd.wait` (the same, only when a
//! watched state changed), `cmd.script` (a `salt://` script). The commands run through the
//! execution function `cmd.run_all`, as Salt's states call `__salt__["cmd.run_all"]`; the
//! changes are its return (`pid`, `retcode`, `stdout`, `stderr`). With `stateful`, the command
//! reports its own changes and comment on stdout (a JSON object, or a last line of
//! `name=value` pairs), which Salt's `_reinterpreted_state` reads.

use super::{Applying, StateCall, StateContext, StateError, StateFunction, StateResult};
use crate::event::Value;
use crate::py::value::py_str;

/// `cmd.run`.
pub(super) const RUN: StateFunction = StateFunction {
    name: "cmd.run",
    required: &[],
    run: |call, ctx| Box::pin(run(call, ctx)),
    mod_watch: Some(mod_watch),
};

/// `cmd.wait`: nothing, unless a watched state changed.
pub(super) const WAIT: StateFunction = StateFunction {
    name: "cmd.wait",
    required: &[],
    run: |call, _| {
        Box::pin(std::future::ready(Ok(StateResult::new(
            call,
            Some(true),
            "",
        ))))
    },
    mod_watch: Some(mod_watch),
};

/// `cmd.script`.
pub(super) const SCRIPT: StateFunction = StateFunction {
    name: "cmd.script",
    required: &[],
    run: |call, ctx| Box::pin(script(call, ctx)),
    mod_watch: Some(mod_watch),
};

/// The `cmd` module's `mod_watch`: runs the command (or script) of the watching state.
fn mod_watch<'a>(call: &'a StateCall, ctx: &'a StateContext) -> Applying<'a> {
    Box::pin(async move {
        match call.fun.as_str() {
            "cmd.run" | "cmd.wait" => run(call, ctx).await,
            "cmd.script" => script(call, ctx).await,
            other => Ok(StateResult::new(
                call,
                Some(false),
                format!(
                    "cmd.{} does not work with the watch requisite, please use cmd.wait or cmd.wait_script",
                    other.trim_start_matches("cmd.")
                ),
            )),
        }
    })
}

/// The state's `env` as `cmd.run_all` takes it.
fn env(call: &StateCall) -> Result<Option<Value>, String> {
    env_map(call.arg("env"))
}

/// An `env` argument as a map: Salt also takes a list of one-key maps; `Err` with Salt's
/// comment for anything else.
pub(super) fn env_map(env: Option<&Value>) -> Result<Option<Value>, String> {
    match env {
        None | Some(Value::Nil) => Ok(None),
        Some(map @ Value::Map(_)) => Ok(Some(map.clone())),
        Some(Value::Array(items)) => Ok(Some(Value::Map(
            items
                .iter()
                .flat_map(|item| item.as_map().cloned().unwrap_or_default())
                .collect(),
        ))),
        Some(_) => Err("Invalidly-formatted 'env' parameter. See documentation.".to_owned()),
    }
}

/// The keyword arguments a `cmd` state passes on to the execution function: the options the
/// command shares with the state, and the state's other arguments.
fn command_kwargs(
    call: &StateCall,
    ctx: &StateContext,
    env: Option<Value>,
) -> Vec<(String, Value)> {
    const OWN: &[&str] = &[
        "stateful",
        "ignore_timeout",
        "source",
        "args",
        "env",
        "shell",
    ];
    let mut kwargs: Vec<(String, Value)> = call
        .args
        .iter()
        .filter(|(key, _)| !OWN.contains(&key.as_str()))
        .cloned()
        .collect();
    kwargs.push(("python_shell".to_owned(), Value::Boolean(true)));
    let shell = call
        .arg("shell")
        .filter(|shell| !shell.is_nil())
        .or_else(|| crate::event::map_get(&ctx.grains, "shell"));
    if let Some(shell) = shell {
        kwargs.push(("shell".to_owned(), shell.clone()));
    }
    if let Some(env) = env {
        kwargs.push(("env".to_owned(), env));
    }
    kwargs
}

/// Fails with Salt's comment when `cwd` is given and is not a directory.
fn missing_cwd(call: &StateCall) -> Option<StateResult> {
    let cwd = call.arg_str("cwd").filter(|cwd| !cwd.is_empty())?;
    (!std::path::Path::new(&cwd).is_dir()).then(|| {
        StateResult::new(
            call,
            Some(false),
            format!("Desired working directory \"{cwd}\" is not available"),
        )
    })
}

/// The result of a command run: its `cmd.run_all` return as the changes, True on exit 0 (or
/// with `ignore_timeout`, on a timeout).
fn ran(call: &StateCall, comment: String, all: Value) -> StateResult {
    let mut all = all;
    let timed_out = retcode(&all) == Some(1)
        && crate::event::map_get(&all, "stdout")
            .is_some_and(|out| py_str(out).contains("Timed out after"));
    if call.arg_bool("ignore_timeout", false)
        && timed_out
        && let Value::Map(entries) = &mut all
    {
        crate::event::map_set(entries, Value::from("retcode"), Value::from(0));
    }
    let ok = retcode(&all) == Some(0);
    StateResult::new(call, Some(ok), comment).with_changes(all)
}

fn retcode(all: &Value) -> Option<i64> {
    crate::event::map_get(all, "retcode").and_then(Value::as_i64)
}

/// The last steps of a command that ran: its own report read when `stateful`, and in test
/// mode (a `test_name` command) a successful run with changes is only what would change.
fn finish(result: StateResult, stateful: &Stateful, test: bool) -> StateResult {
    let code = retcode(&result.changes);
    let mut result = if stateful.on {
        reinterpreted(result)
    } else {
        result
    };
    if test && code == Some(0) && result.changed() {
        result.result = None;
    }
    result
}

/// The `stateful` argument as Salt reads it: on only when `True`, or a list whose first item
/// may name the `test_name` command to run in test mode instead.
struct Stateful {
    on: bool,
    test_name: Option<String>,
}

impl Stateful {
    fn of(call: &StateCall) -> Self {
        match call.arg("stateful") {
            Some(Value::Array(items)) => Stateful {
                on: !items.is_empty(),
                test_name: items
                    .first()
                    .and_then(|first| crate::event::map_get(first, "test_name"))
                    .map(|name| py_str(name).into_owned()),
            },
            Some(Value::Boolean(true)) => Stateful {
                on: true,
                test_name: None,
            },
            _ => Stateful {
                on: false,
                test_name: None,
            },
        }
    }

    /// The command to run: the `test_name` one in test mode.
    fn command(&self, call: &StateCall) -> String {
        match &self.test_name {
            Some(name) if call.test => name.clone(),
            _ => call.name.clone(),
        }
    }
}

/// A stateful command's result read from its own report on stdout, as Salt's
/// `_reinterpreted_state` reads it: `changed` says whether its other pairs (with the command's
/// return) are the changes, `comment` is the comment.
fn reinterpreted(mut result: StateResult) -> StateResult {
    let ran = std::mem::replace(&mut result.changes, Value::Map(Vec::new()));
    result.comment = String::new();
    let field = |key: &str| crate::event::map_get(&ran, key).map(|v| py_str(v).into_owned());
    let out = field("stdout").unwrap_or_default();
    if out.is_empty() {
        if let Some(stderr) = field("stderr").filter(|e| !e.is_empty()) {
            result.comment = stderr;
        }
        return result;
    }
    let failed = |mut result: StateResult, comment: &str| {
        result.comment = comment.to_owned();
        result.result = Some(false);
        result
    };
    // Python's `str.rfind` on the stripped output: -1 when there is one line, which Salt
    // then also uses to cut the `stdout` it reports.
    let last_newline = out.trim_end().rfind('\n');
    let cut_at = last_newline.map(|i| out[..i].chars().count());
    let (mut data, is_json) = match serde_json::from_str::<Value>(&out) {
        Ok(Value::Map(data)) => (data, true),
        Ok(_) => {
            return failed(
                result,
                "script JSON output must be a JSON object (e.g., {})!",
            );
        }
        Err(_) => {
            let line = last_newline.map_or(out.as_str(), |i| &out[i + 1..]);
            let pairs = shlex::split(line).and_then(|words| {
                words
                    .iter()
                    .map(|word| match word.split('=').collect::<Vec<_>>()[..] {
                        [key, value] => Some((Value::from(key), Value::from(value))),
                        _ => None,
                    })
                    .collect::<Option<Vec<_>>>()
            });
            match pairs {
                Some(pairs) => (pairs, false),
                None => {
                    let mut result = failed(
                        result,
                        "Failed parsing script output! Stdout must be JSON or a line of name=value pairs.",
                    );
                    result.changes = ran;
                    return result;
                }
            }
        }
    };
    let take = |data: &mut Vec<(Value, Value)>, key: &str| {
        let at = data.iter().position(|(k, _)| k.as_str() == Some(key))?;
        Some(data.remove(at).1)
    };
    let changed = match data.iter().find(|(k, _)| k.as_str() == Some("changed")) {
        None => false,
        Some((_, value)) => match py_str(value).to_lowercase().as_str() {
            "true" | "yes" | "1" if crate::py::value::truthy(value) => true,
            "false" | "no" | "0" => false,
            _ => {
                let comment = format!("Failed parsing boolean value: {}", py_str(value));
                return failed(result, &comment);
            }
        },
    };
    if let Some(comment) = take(&mut data, "comment") {
        result.comment = py_str(&comment).into_owned();
    }
    if changed {
        for (key, value) in ran.as_map().into_iter().flatten() {
            if !data.iter().any(|(k, _)| k == key) {
                data.push((key.clone(), value.clone()));
            }
        }
        let stdout = if is_json {
            String::new()
        } else {
            let reported = data
                .iter()
                .find(|(k, _)| k.as_str() == Some("stdout"))
                .map(|(_, v)| py_str(v).into_owned())
                .unwrap_or_default();
            python_cut(&reported, cut_at)
        };
        crate::event::map_set(&mut data, Value::from("stdout"), Value::from(stdout));
        result.changes = Value::Map(data);
    }
    result
}

/// Python's `text[:idx]` for a character `idx` from `rfind`: -1 (not found) drops the last
/// character.
fn python_cut(text: &str, idx: Option<usize>) -> String {
    match idx {
        Some(i) => text.chars().take(i).collect(),
        None => {
            let mut chars = text.chars();
            chars.next_back();
            chars.as_str().to_owned()
        }
    }
}

async fn run(call: &StateCall, ctx: &StateContext) -> Result<StateResult, StateError> {
    let stateful = Stateful::of(call);
    let env = match env(call) {
        Ok(env) => env,
        Err(comment) => return Ok(StateResult::new(call, Some(false), comment)),
    };
    if call.test && stateful.test_name.is_none() {
        let result = StateResult::new(
            call,
            None,
            format!("Command \"{}\" would have been executed", call.name),
        )
        .with_changes(Value::Map(vec![(
            Value::from("cmd"),
            Value::from(call.name.as_str()),
        )]));
        return Ok(if stateful.on {
            reinterpreted(result)
        } else {
            result
        });
    }
    if let Some(failed) = missing_cwd(call) {
        return Ok(failed);
    }
    let command = stateful.command(call);
    let mut kwargs = vec![("cmd".to_owned(), Value::from(command.as_str()))];
    kwargs.extend(command_kwargs(call, ctx, env));
    match ctx.call("cmd.run_all", Vec::new(), kwargs).await {
        Ok(executed) => Ok(finish(
            ran(call, format!("Command \"{command}\" run"), executed.ret),
            &stateful,
            call.test,
        )),
        Err(err) => Ok(StateResult::new(call, Some(false), err.0)),
    }
}

async fn script(call: &StateCall, ctx: &StateContext) -> Result<StateResult, StateError> {
    let stateful = Stateful::of(call);
    let env = match env(call) {
        Ok(env) => env,
        Err(comment) => return Ok(StateResult::new(call, Some(false), comment)),
    };
    // Salt's script state takes the `test_name` command as its name, in its return too.
    let name = stateful.command(call);
    let named = |mut result: StateResult| {
        result.name = name.clone();
        result
    };
    if call.test && stateful.test_name.is_none() {
        let result = StateResult::new(
            call,
            None,
            format!("Command '{name}' would have been executed"),
        );
        return Ok(if stateful.on {
            reinterpreted(result)
        } else {
            result
        });
    }
    if let Some(failed) = missing_cwd(call) {
        return Ok(failed);
    }
    // As Salt 3007.8 does: the whole name is the source when none is given. Its arguments
    // (the name's words after the first, or `args`) never reach the script: Salt hands
    // `[script, args]` to `sh -c`, which takes them as its own `$0…`.
    let source = call.arg_str("source").unwrap_or_else(|| name.clone());
    let cannot_cache = || {
        let result = StateResult::new(
            call,
            Some(false),
            format!(
                "Unable to cache script {source} from saltenv '{}'",
                call.saltenv
            ),
        )
        .with_changes(Value::Map(vec![
            (Value::from("pid"), Value::from(0)),
            (Value::from("retcode"), Value::from(1)),
            (Value::from("stdout"), Value::from("")),
            (Value::from("stderr"), Value::from("")),
            (Value::from("cache_error"), Value::Boolean(true)),
        ]));
        named(finish(result, &stateful, call.test))
    };
    let cached = match (&ctx.files, source.starts_with("salt://")) {
        (Some(files), true) => match files.cache_file(&source, &call.saltenv).await {
            Ok(path) => path,
            Err(_) => return Ok(cannot_cache()),
        },
        (_, false) if std::path::Path::new(&source).is_file() => source.clone().into(),
        _ => return Ok(cannot_cache()),
    };
    // The script runs from a private executable copy, as Salt's `cmd.script` runs it.
    let dir = tempfile::tempdir().map_err(|err| StateError::Invalid(err.to_string()))?;
    let path = dir.path().join(
        cached
            .file_name()
            .map_or_else(|| "script".into(), |name| name.to_owned()),
    );
    std::fs::copy(&cached, &path).map_err(|err| StateError::Invalid(err.to_string()))?;
    std::fs::set_permissions(&path, std::os::unix::fs::PermissionsExt::from_mode(0o700))
        .map_err(|err| StateError::Invalid(err.to_string()))?;
    let command = format!("'{}'", path.display().to_string().replace('\'', "'\\''"));
    let mut kwargs = vec![("cmd".to_owned(), Value::from(command))];
    kwargs.extend(command_kwargs(call, ctx, env));
    match ctx.call("cmd.run_all", Vec::new(), kwargs).await {
        Ok(executed) => Ok(named(finish(
            ran(call, format!("Command '{name}' run"), executed.ret),
            &stateful,
            call.test,
        ))),
        Err(err) => Ok(named(StateResult::new(call, Some(false), err.0))),
    }
}
