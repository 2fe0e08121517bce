//! The `service` states: `service.running`, `service.dead`, `service.enabled` and
//! `service.disabled` through the `service.*` execution functions, with Salt's comments and
//! `{name: True|False}` changes; `mod_watch` restarts (or, with `reload: True`, reloads) a
//! running service whose watched state changed and starts a stopped one.

use super::{Applying, StateCall, StateContext, StateError, StateFunction, StateResult};
use crate::event::Value;
use crate::py::value::truthy;

/// `service.running`.
pub(super) const RUNNING: StateFunction = StateFunction {
    name: "service.running",
    required: &[],
    run: |call, ctx| Box::pin(running(call, ctx)),
    mod_watch: Some(mod_watch),
};

/// `service.dead`.
pub(super) const DEAD: StateFunction = StateFunction {
    name: "service.dead",
    required: &[],
    run: |call, ctx| Box::pin(dead(call, ctx)),
    mod_watch: Some(mod_watch),
};

/// `service.enabled`.
pub(super) const ENABLED: StateFunction = StateFunction {
    name: "service.enabled",
    required: &[],
    run: |call, ctx| Box::pin(enabled(call, ctx)),
    mod_watch: Some(mod_watch),
};

/// `service.disabled`.
pub(super) const DISABLED: StateFunction = StateFunction {
    name: "service.disabled",
    required: &[],
    run: |call, ctx| Box::pin(toggle(call, ctx, false, Started::Unknown, true)),
    mod_watch: Some(mod_watch),
};

/// Asks `service.FUN NAME`: Salt's truthiness of the answer.
async fn ask(ctx: &StateContext, fun: &str, name: &str) -> Result<bool, StateError> {
    let answer = ctx
        .call(
            &format!("service.{fun}"),
            vec![Value::from(name)],
            Vec::new(),
        )
        .await?;
    Ok(truthy(&answer.ret))
}

/// What is known of the service when its boot setting is changed: Salt's `started` (True,
/// None, False), which picks the comment's ending.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Started {
    Running,
    Unknown,
    Dead,
}

impl Started {
    fn from(running: bool) -> Self {
        if running {
            Started::Running
        } else {
            Started::Dead
        }
    }
}

/// The `enable` argument: True, False, or not given.
fn enable_arg(call: &StateCall) -> Option<bool> {
    call.arg("enable").filter(|v| !v.is_nil()).map(truthy)
}

/// Salt's `_enable` (`enable` true) and `_disable`: the boot setting made to match, with the
/// comment saying what the service is otherwise; `result` is the result when nothing fails.
async fn toggle(
    call: &StateCall,
    ctx: &StateContext,
    enable: bool,
    started: Started,
    result: bool,
) -> Result<StateResult, StateError> {
    let name = &call.name;
    let mut ret = StateResult::new(call, Some(result), "");
    match ctx
        .call(
            "service.available",
            vec![Value::from(name.as_str())],
            Vec::new(),
        )
        .await
    {
        Err(err) => return Ok(StateResult::new(call, Some(false), err.0)),
        Ok(answer) if !truthy(&answer.ret) => {
            ret.comment = format!("The named service {name} is not available");
            ret.result = Some(!enable);
            return Ok(ret);
        }
        Ok(_) => {}
    }
    let (word, boot) = if enable {
        ("enabled", "enabled")
    } else {
        ("disabled", "disabled")
    };
    let tail = |done: &str| match started {
        Started::Running => format!("Service {name} {done}, and is running"),
        Started::Unknown => format!("Service {name} {done}, and is in the desired state"),
        Started::Dead => format!("Service {name} {done}, and is dead"),
    };
    if ask(ctx, boot, name).await? {
        ret.comment = tail(&format!("is already {word}"));
        return Ok(ret);
    }
    if call.test {
        ret.result = None;
        ret.comment = format!("Service {name} set to be {word}");
        return Ok(ret);
    }
    let verb = if enable { "enable" } else { "disable" };
    let (done, error) = match act(ctx, verb, name).await {
        Ok(answer) => (truthy(&answer.ret), None),
        Err(err) => (false, Some(err.0)),
    };
    if done {
        if ask(ctx, boot, name).await? {
            ret.changes = Value::Map(vec![(Value::from(name.as_str()), Value::Boolean(true))]);
        }
        ret.comment = tail(&format!("has been {word}"));
        return Ok(ret);
    }
    ret.result = Some(false);
    let at_boot = if enable {
        "to start at boot"
    } else {
        "to not start at boot"
    };
    ret.comment = match (started, enable) {
        (Started::Running, true) => {
            format!("Failed when setting service {name} {at_boot}, but the service is running")
        }
        (Started::Running, false) => {
            format!("Failed when setting service {name} {at_boot}, and is running")
        }
        (Started::Unknown, _) => format!(
            "Failed when setting service {name} {at_boot}, but the service was already running"
        ),
        (Started::Dead, _) => {
            format!("Failed when setting service {name} {at_boot}, and the service is dead")
        }
    };
    if let Some(error) = error {
        ret.comment
            .push_str(&format!(". Additional information follows:\n\n{error}"));
    }
    Ok(ret)
}

/// The boot setting after a start or stop, merged over `ret` as Salt's `ret.update` does.
async fn merge_toggle(
    ret: &mut StateResult,
    call: &StateCall,
    ctx: &StateContext,
    started: Started,
    result: bool,
) -> Result<(), StateError> {
    if let Some(enable) = enable_arg(call) {
        let toggled = toggle(call, ctx, enable, started, result).await?;
        if toggled.changed() {
            ret.changes = toggled.changes;
        }
        ret.result = toggled.result;
        ret.comment = toggled.comment;
    }
    Ok(())
}

/// Salt's `service.running` and `service.dead` share their shape; `start` says which.
async fn converge(
    call: &StateCall,
    ctx: &StateContext,
    start: bool,
) -> Result<StateResult, StateError> {
    let name = &call.name;
    if call.arg("enabled").is_some() {
        return Ok(StateResult::new(
            call,
            Some(false),
            format!(
                "Service {name} uses non-existent option \"enabled\".  Perhaps \"enable\" option was intended?"
            ),
        ));
    }
    match ctx
        .call(
            "service.available",
            vec![Value::from(name.as_str())],
            Vec::new(),
        )
        .await
    {
        Err(err) => return Ok(StateResult::new(call, Some(false), err.0)),
        Ok(answer) if !truthy(&answer.ret) => {
            let verb = if start { "started" } else { "stopped" };
            return Ok(if call.test {
                StateResult::new(
                    call,
                    None,
                    format!(
                        "Service {name} not present; if created in this state run, it would have been {verb}"
                    ),
                )
            } else {
                StateResult::new(
                    call,
                    Some(!start),
                    format!("The named service {name} is not available"),
                )
            });
        }
        Ok(_) => {}
    }
    let before = ask(ctx, "status", name).await?;
    let before_enabled = ask(ctx, "enabled", name).await?;
    let enable = enable_arg(call);
    if before == start {
        let mut ret = StateResult::new(
            call,
            Some(true),
            if start {
                format!("The service {name} is already running")
            } else {
                format!("The service {name} is already dead")
            },
        );
        if enable.is_some_and(|e| e != before_enabled) {
            merge_toggle(&mut ret, call, ctx, Started::Unknown, true).await?;
        }
        return Ok(ret);
    }
    if call.test {
        let comment = if start {
            format!("Service {name} is set to start")
        } else {
            format!("Service {name} is set to be killed")
        };
        return Ok(StateResult::new(call, None, comment));
    }
    let verb = if start { "start" } else { "stop" };
    let done = match act(ctx, verb, name).await {
        Ok(answer) => truthy(&answer.ret),
        Err(err) => return Ok(StateResult::new(call, Some(false), err.0)),
    };
    let failed_comment = if start {
        format!("Service {name} failed to start")
    } else {
        format!("Service {name} failed to die")
    };
    if !done {
        let mut ret = StateResult::new(call, Some(false), failed_comment);
        merge_toggle(&mut ret, call, ctx, Started::from(!start), false).await?;
        return Ok(ret);
    }
    let after = ask(ctx, "status", name).await?;
    let after_enabled = ask(ctx, "enabled", name).await?;
    let mut ret = StateResult::new(call, Some(after == start), "");
    if before_enabled != after_enabled || before != after {
        ret.changes = Value::Map(vec![(Value::from(name.as_str()), Value::Boolean(after))]);
    }
    ret.comment = match (start, after) {
        (true, true) => format!("Started service {name}"),
        (false, false) => format!("Service {name} was killed"),
        _ => failed_comment,
    };
    merge_toggle(&mut ret, call, ctx, Started::from(after), after == start).await?;
    Ok(ret)
}

async fn running(call: &StateCall, ctx: &StateContext) -> Result<StateResult, StateError> {
    converge(call, ctx, true).await
}

async fn dead(call: &StateCall, ctx: &StateContext) -> Result<StateResult, StateError> {
    converge(call, ctx, false).await
}

async fn enabled(call: &StateCall, ctx: &StateContext) -> Result<StateResult, StateError> {
    let mut ret = toggle(call, ctx, true, Started::Unknown, true).await?;
    if call.test && ret.comment == format!("The named service {} is not available", call.name) {
        ret.result = None;
        ret.comment = format!(
            "Service {} not present; if created in this state run, it would have been enabled",
            call.name
        );
    }
    Ok(ret)
}

/// The `service` module's `mod_watch`: a running service restarts (reloads with `reload:
/// True`), a stopped one starts; under `service.dead` a running one stops.
fn mod_watch<'a>(call: &'a StateCall, ctx: &'a StateContext) -> Applying<'a> {
    Box::pin(async move {
        let name = &call.name;
        let sfun = call.fun.trim_start_matches("service.");
        let status = || ask(ctx, "status", name);
        let (verb, past) = match sfun {
            "dead" if status().await? => ("stop", "stopped"),
            "dead" => {
                return Ok(StateResult::new(
                    call,
                    Some(true),
                    "Service is already stopped",
                ));
            }
            "running" if status().await? => {
                if call.arg_bool("reload", false) {
                    ("reload", "reloaded")
                } else {
                    ("restart", "restarted")
                }
            }
            "running" => ("start", "started"),
            other => {
                return Ok(StateResult::new(
                    call,
                    Some(false),
                    format!("Unable to trigger watch for service.{other}"),
                ));
            }
        };
        if call.test {
            return Ok(StateResult::new(
                call,
                None,
                format!("Service is set to be {past}"),
            ));
        }
        if verb == "start" {
            ctx.call("service.stop", vec![Value::from(name.as_str())], Vec::new())
                .await?;
        }
        let result = match act(ctx, verb, name).await {
            Ok(answer) => truthy(&answer.ret),
            Err(err) => return Ok(StateResult::new(call, Some(false), err.0)),
        };
        let comment = if result {
            format!("Service {past}")
        } else {
            format!("Failed to {verb} the service")
        };
        Ok(
            StateResult::new(call, Some(result), comment).with_changes(Value::Map(vec![(
                Value::from(name.as_str()),
                Value::Boolean(result),
            )])),
        )
    })
}
/// `service.<verb>` on the service `name` (start, stop, restart, reload, enable, disable).
async fn act(
    ctx: &StateContext,
    verb: &str,
    name: &str,
) -> Result<super::Executed, super::ExecutionError> {
    ctx.call(
        &format!("service.{verb}"),
        vec![Value::from(name)],
        Vec::new(),
    )
    .await
}
