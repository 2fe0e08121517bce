//! The `cmd` states: `cmd.run` (a command, through a shell), `cmd.wait` (the same, only when a
//! watched state changed), `cmd.script` (a `salt://` script). The commands run through the
//! execution function `cmd.run_all`, as Salt's states call `__salt__["cmd.run_all"]`; the
//! changes are its return (`pid`, `retcode`, `stdout`, `stderr`). `stateful` is not
//! supported: such a command is reported as an ordinary one.

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
    let retcode = |all: &Value| crate::event::map_get(all, "retcode").and_then(Value::as_i64);
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
    let mut result = StateResult::new(call, Some(ok), comment).with_changes(all);
    if call.test && ok && result.changed() {
        result.result = None;
    }
    result
}

async fn run(call: &StateCall, ctx: &StateContext) -> Result<StateResult, StateError> {
    let env = match env(call) {
        Ok(env) => env,
        Err(comment) => return Ok(StateResult::new(call, Some(false), comment)),
    };
    if call.test {
        return Ok(StateResult::new(
            call,
            None,
            format!("Command \"{}\" would have been executed", call.name),
        )
        .with_changes(Value::Map(vec![(
            Value::from("cmd"),
            Value::from(call.name.as_str()),
        )])));
    }
    if let Some(failed) = missing_cwd(call) {
        return Ok(failed);
    }
    let mut kwargs = vec![("cmd".to_owned(), Value::from(call.name.as_str()))];
    kwargs.extend(command_kwargs(call, ctx, env));
    match ctx.call("cmd.run_all", Vec::new(), kwargs).await {
        Ok(executed) => Ok(ran(
            call,
            format!("Command \"{}\" run", call.name),
            executed.ret,
        )),
        Err(err) => Ok(StateResult::new(call, Some(false), err.0)),
    }
}

async fn script(call: &StateCall, ctx: &StateContext) -> Result<StateResult, StateError> {
    let env = match env(call) {
        Ok(env) => env,
        Err(comment) => return Ok(StateResult::new(call, Some(false), comment)),
    };
    if call.test {
        return Ok(StateResult::new(
            call,
            None,
            format!("Command '{}' would have been executed", call.name),
        ));
    }
    if let Some(failed) = missing_cwd(call) {
        return Ok(failed);
    }
    // As Salt 3007.8 does: the whole name is the source when none is given. Its arguments
    // (the name's words after the first, or `args`) never reach the script: Salt hands
    // `[script, args]` to `sh -c`, which takes them as its own `$0…`.
    let source = call.arg_str("source").unwrap_or_else(|| call.name.clone());
    let cannot_cache = || {
        StateResult::new(
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
        ]))
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
        Ok(executed) => Ok(ran(
            call,
            format!("Command '{}' run", call.name),
            executed.ret,
        )),
        Err(err) => Ok(StateResult::new(call, Some(false), err.0)),
    }
}
