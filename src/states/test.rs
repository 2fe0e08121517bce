//! The `test` states: fixed outcomes for trying requisites, ordering and output, with Salt's
//! comments and changes.

use super::{Applying, StateCall, StateContext, StateError, StateFunction, StateResult};
use crate::event::Value;
use crate::py::value::py_str;

/// The changes the `test` states pretend to make.
fn pretended_changes() -> Value {
    Value::Map(vec![(
        Value::from("testing"),
        Value::Map(vec![
            (Value::from("old"), Value::from("Unchanged")),
            (
                Value::from("new"),
                Value::from("Something pretended to change"),
            ),
        ]),
    )])
}

/// A fixed outcome: `result` with `comment` (the `comment` argument wins), pretended changes
/// when `changes`; in test mode `test_comment`, and a result of None when there are changes.
fn fixed(
    call: &StateCall,
    result: bool,
    changes: bool,
    comment: &str,
    test_comment: &str,
) -> StateResult {
    let comment = call
        .arg_str("comment")
        .unwrap_or_else(|| comment.to_owned());
    let mut ret = StateResult::new(call, Some(result), comment);
    if changes {
        ret.changes = pretended_changes();
    }
    if call.test {
        ret.comment = test_comment.to_owned();
        if changes {
            ret.result = None;
        }
    }
    ret
}

fn ready<'a>(result: Result<StateResult, StateError>) -> Applying<'a> {
    Box::pin(std::future::ready(result))
}

/// `test.nop`: succeeds, changing nothing (Salt's `succeed_without_changes(name)`).
pub(super) const NOP: StateFunction = StateFunction {
    name: "test.nop",
    required: &[],
    run: |call, _| ready(Ok(StateResult::new(call, Some(true), "Success!"))),
    mod_watch: Some(mod_watch),
};

/// `test.succeed_without_changes`.
pub(super) const SUCCEED_WITHOUT_CHANGES: StateFunction = StateFunction {
    name: "test.succeed_without_changes",
    required: &[],
    run: |call, _| {
        let comment = call.arg_str("comment").unwrap_or_else(|| "Success!".into());
        ready(Ok(StateResult::new(call, Some(true), comment)))
    },
    mod_watch: Some(mod_watch),
};

/// `test.fail_without_changes`.
pub(super) const FAIL_WITHOUT_CHANGES: StateFunction = StateFunction {
    name: "test.fail_without_changes",
    required: &[],
    run: |call, _| {
        ready(Ok(fixed(
            call,
            false,
            false,
            "Failure!",
            "If we weren't testing, this would be a failure!",
        )))
    },
    mod_watch: Some(mod_watch),
};

/// `test.succeed_with_changes`.
pub(super) const SUCCEED_WITH_CHANGES: StateFunction = StateFunction {
    name: "test.succeed_with_changes",
    required: &[],
    run: |call, _| {
        ready(Ok(fixed(
            call,
            true,
            true,
            "Success!",
            "If we weren't testing, this would be successful with changes",
        )))
    },
    mod_watch: Some(mod_watch),
};

/// `test.fail_with_changes`.
pub(super) const FAIL_WITH_CHANGES: StateFunction = StateFunction {
    name: "test.fail_with_changes",
    required: &[],
    run: |call, _| {
        ready(Ok(fixed(
            call,
            false,
            true,
            "Failure!",
            "If we weren't testing, this would be failed with changes",
        )))
    },
    mod_watch: Some(mod_watch),
};

/// `test.configurable_test_state`: `changes`, `result` (True, False or "Random"), `comment`,
/// `warnings` and `allow_test_mode_failure` as given.
pub(super) const CONFIGURABLE_TEST_STATE: StateFunction = StateFunction {
    name: "test.configurable_test_state",
    required: &[],
    run: |call, _| ready(configurable(call)),
    mod_watch: Some(mod_watch),
};

/// True, False, or a coin toss for "Random" (any case); `what` names the argument in the
/// refusal.
fn tri_state(value: Option<&Value>, what: &str) -> Result<bool, StateError> {
    match value {
        None => Ok(true),
        Some(Value::Boolean(b)) => Ok(*b),
        Some(other) if py_str(other).eq_ignore_ascii_case("random") => {
            Ok(std::time::SystemTime::now()
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.subsec_nanos())
                .is_multiple_of(2))
        }
        Some(_) if what == "changes" => Err(StateError::Invalid(
            "You have specified the state option 'changes' with invalid arguments. It must be either True, False, or 'Random'".to_owned(),
        )),
        Some(_) => Err(StateError::Invalid(
            "You have specified the state option 'result' with invalid arguments. It must be either True, False, or 'Random'".to_owned(),
        )),
    }
}

fn configurable(call: &StateCall) -> Result<StateResult, StateError> {
    let comment = call.arg_str("comment").unwrap_or_default();
    let changes = tri_state(call.arg("changes"), "changes")?;
    let result = tri_state(call.arg("result"), "result")?;
    let mut ret = StateResult::new(call, Some(result), comment.clone());
    if changes {
        ret.changes = pretended_changes();
    }
    ret.warnings = match call.arg("warnings") {
        None | Some(Value::Nil) => Vec::new(),
        Some(Value::String(text)) => vec![text.as_str().unwrap_or_default().to_owned()],
        Some(Value::Array(items)) => items.iter().map(|w| py_str(w).into_owned()).collect(),
        Some(_) => {
            return Err(StateError::Invalid(
                "You have specified the state option 'warnings' with invalid arguments. It must be a string or a list of strings".to_owned(),
            ));
        }
    };
    if call.test {
        let declared_false = call.arg("result") == Some(&Value::Boolean(false));
        ret.result = if call.arg_bool("allow_test_mode_failure", false) && declared_false {
            Some(false)
        } else if call.arg("changes") == Some(&Value::Boolean(false)) {
            Some(true)
        } else {
            None
        };
        if comment.is_empty() {
            ret.comment = "This is a test".to_owned();
        }
    }
    Ok(ret)
}

/// The `test` module's `mod_watch`: succeeds listing the watched states that changed;
/// `result`, `comment` and `changes` arguments override.
fn mod_watch<'a>(call: &'a StateCall, _: &'a StateContext) -> Applying<'a> {
    let changes = call.arg("changes").cloned().unwrap_or_else(|| {
        Value::Map(vec![(
            Value::from("Requisites with changes"),
            Value::Array(
                call.watch_changes
                    .iter()
                    .map(|r| Value::from(r.as_str()))
                    .collect(),
            ),
        )])
    });
    let result = match call.arg("result") {
        None => Some(true),
        Some(Value::Nil) => None,
        Some(value) => Some(crate::py::value::truthy(value)),
    };
    let comment = call
        .arg_str("comment")
        .unwrap_or_else(|| "Watch statement fired.".to_owned());
    ready(Ok(
        StateResult::new(call, result, comment).with_changes(changes)
    ))
}
