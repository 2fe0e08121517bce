//! The `test` runners: see what arguments arrive, and take a while doing nothing.

use std::time::Duration;

use super::RunnerError;
use crate::event::Value;
use crate::salt_yaml::CliArgs;
use crate::signature::Signature;

pub(super) const ARG: Signature = Signature {
    name: "test.arg",
    summary: "What the runner was given: its positional and keyword arguments",
    params: &[],
    required: 0,
    kwargs: true,
    usage: "salt-run test.arg [ARG ...] [key=value ...]",
};

/// `test.arg`: `{"args": [...], "kwargs": {...}}`, what the runner was given.
pub(super) fn arg(args: &CliArgs) -> Value {
    Value::Map(vec![
        (Value::from("args"), Value::Array(args.args.clone())),
        (
            Value::from("kwargs"),
            Value::Map(crate::event::map_entries(&args.kwargs)),
        ),
    ])
}

pub(super) const SLEEP: Signature = Signature {
    name: "test.sleep",
    summary: "Sleeps s_time seconds (10 by default), then True",
    params: &["s_time"],
    required: 0,
    kwargs: false,
    usage: "salt-run test.sleep [s_time=10]",
};

/// `test.sleep`: sleeps `s_time` seconds (10 by default), then returns True.
pub(super) async fn sleep(args: &CliArgs) -> Result<Value, RunnerError> {
    let bound = SLEEP.bind(args)?;
    let seconds = match bound.get("s_time") {
        None => Duration::from_secs(10),
        Some(value) => crate::config::seconds(value).ok_or_else(|| {
            RunnerError::Arguments(format!(
                "test.sleep: s_time must be a non-negative number of seconds, not {value}"
            ))
        })?,
    };
    tokio::time::sleep(seconds).await;
    Ok(Value::Boolean(true))
}
