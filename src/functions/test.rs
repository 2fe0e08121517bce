//! The `test` module: functions for checking that jobs reach minions and come back.

use super::{Call, Context, FunctionError, Outcome, bind};
use crate::event::Value;
use crate::py::value::py_str;
use crate::signature::Signature;

pub(super) const ARG: Signature = Signature {
    name: "test.arg",
    summary: "What arrived: the positional and keyword arguments, with the job's __pub_* keys",
    params: &[],
    required: 0,
    kwargs: true,
    usage: "test.arg [ARG ...] [key=value ...]",
};

pub(super) const ECHO: Signature = Signature {
    name: "test.echo",
    summary: "The text back",
    params: &["text"],
    required: 1,
    kwargs: false,
    usage: "test.echo TEXT",
};

pub(super) const FALSE: Signature = Signature {
    name: "test.false",
    summary: "False",
    params: &[],
    required: 0,
    kwargs: false,
    usage: "test.false",
};

pub(super) const PING: Signature = Signature {
    name: "test.ping",
    summary: "True: the minion is there and runs jobs",
    params: &[],
    required: 0,
    kwargs: false,
    usage: "test.ping",
};

pub(super) const RETCODE: Signature = Signature {
    name: "test.retcode",
    summary: "True, with the given return code (0 by default)",
    params: &["code"],
    required: 0,
    kwargs: false,
    usage: "test.retcode [CODE]",
};

pub(super) const SLEEP: Signature = Signature {
    name: "test.sleep",
    summary: "Waits LENGTH seconds, then True",
    params: &["length"],
    required: 1,
    kwargs: false,
    usage: "test.sleep LENGTH",
};

pub(super) const TRUE: Signature = Signature {
    name: "test.true",
    summary: "True",
    params: &[],
    required: 0,
    kwargs: false,
    usage: "test.true",
};

pub(super) const VERSION: Signature = Signature {
    name: "test.version",
    summary: "halite's version",
    params: &[],
    required: 0,
    kwargs: false,
    usage: "test.version",
};

/// `test.echo text`: the text back.
pub(super) fn echo(call: &Call) -> Result<Outcome, FunctionError> {
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
pub(super) async fn sleep(call: &Call) -> Result<Outcome, FunctionError> {
    let bound = bind(call, &SLEEP)?;
    let length = bound.get("length").cloned().unwrap_or(Value::Nil);
    let seconds = py_str(&length)
        .trim()
        .parse::<f64>()
        .map(Value::F64)
        .unwrap_or(length.clone());
    let duration = crate::config::seconds(&seconds).ok_or_else(|| {
        FunctionError::Invalid(format!(
            "test.sleep: length must be a number of seconds up to 100 years, not {}",
            crate::output::clip(&crate::py::value::repr(&length), 64)
        ))
    })?;
    tokio::time::sleep(duration).await;
    Ok(Outcome::ok(true))
}

/// `test.retcode code=0`: `True`, with `code` as the job's return code.
pub(super) fn retcode(call: &Call) -> Result<Outcome, FunctionError> {
    let bound = bind(call, &RETCODE)?;
    let code = match bound.get("code") {
        None => 0,
        Some(code) => code
            .as_i64()
            .or_else(|| py_str(code).trim().parse().ok())
            .ok_or_else(|| {
                FunctionError::Invalid(format!("test.retcode: code must be an integer, not {code}"))
            })?,
    };
    Ok(Outcome::with_retcode(true, code))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::salt_yaml::CliArgs;

    /// `test.sleep 1.0e+300` printed the length as a 300-digit number.
    #[tokio::test]
    async fn a_length_past_a_century_is_refused_in_pythons_words() {
        let call = Call {
            fun: "test.sleep".into(),
            args: CliArgs {
                args: vec![Value::F64(1e300)],
                ..CliArgs::default()
            },
        };
        let message = sleep(&call).await.unwrap_err().to_string();
        assert_eq!(
            message,
            "test.sleep: length must be a number of seconds up to 100 years, not 1e+300"
        );
    }
}
