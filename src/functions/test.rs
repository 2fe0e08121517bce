//! The `test` module: functions for checking that jobs reach minions and come back.

use super::signature::Signature;
use super::{Call, Context, Outcome, bind};
use crate::event::Value;
use crate::py::value::py_str;

const ECHO: Signature = Signature {
    name: "test.echo",
    params: &["text"],
    required: 1,
    kwargs: false,
    usage: "test.echo TEXT",
};

const SLEEP: Signature = Signature {
    name: "test.sleep",
    params: &["length"],
    required: 1,
    kwargs: false,
    usage: "test.sleep LENGTH",
};

const RETCODE: Signature = Signature {
    name: "test.retcode",
    params: &["code"],
    required: 0,
    kwargs: false,
    usage: "test.retcode [CODE]",
};

/// `test.echo text`: the text back.
pub(super) fn echo(call: &Call, _ctx: &Context) -> anyhow::Result<Outcome> {
    let bound = bind(call, &ECHO)?;
    Ok(Outcome::ok(
        bound.get("text").cloned().unwrap_or(Value::Nil),
    ))
}

/// `test.arg *args **kwargs`: what arrived, with the job's `__pub_*` keys among the kwargs.
pub(super) fn arg(call: &Call, ctx: &Context) -> Outcome {
    let mut kwargs = crate::event::map_entries(&call.args.kwargs);
    kwargs.extend(super::pub_kwargs(ctx.job.as_ref(), &call.fun));
    Outcome::ok(Value::Map(vec![
        (Value::from("args"), Value::Array(call.args.args.clone())),
        (Value::from("kwargs"), Value::Map(kwargs)),
    ]))
}

/// `test.sleep length`: waits, then `True`.
pub(super) async fn sleep(call: &Call) -> anyhow::Result<Outcome> {
    let bound = bind(call, &SLEEP)?;
    let length = bound.get("length").cloned().unwrap_or(Value::Nil);
    let seconds = py_str(&length)
        .trim()
        .parse::<f64>()
        .map(Value::F64)
        .unwrap_or(length.clone());
    let duration = crate::config::seconds(&seconds).ok_or_else(|| {
        anyhow::anyhow!("test.sleep: length must be a number of seconds, not {length}")
    })?;
    tokio::time::sleep(duration).await;
    Ok(Outcome::ok(true))
}

/// `test.retcode code=0`: `True`, with `code` as the job's return code.
pub(super) fn retcode(call: &Call) -> anyhow::Result<Outcome> {
    let bound = bind(call, &RETCODE)?;
    let code = match bound.get("code") {
        None => 0,
        Some(code) => code
            .as_i64()
            .or_else(|| py_str(code).trim().parse().ok())
            .ok_or_else(|| anyhow::anyhow!("test.retcode: code must be an integer, not {code}"))?,
    };
    Ok(Outcome::with_retcode(true, code))
}
