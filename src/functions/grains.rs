//! The `grains` module: the minion's facts.

use super::{Call, Context, FunctionError, Outcome, bind};
use crate::event::{Value, traverse};
use crate::py::value::py_str;
use crate::signature::Signature;

pub(super) const GET: Signature = Signature {
    name: "grains.get",
    summary: "One grain, nested keys joined by ':', or the default",
    params: &["key", "default", "delimiter", "ordered"],
    required: 1,
    kwargs: false,
    usage: "grains.get KEY [DEFAULT] [delimiter=:]",
};

pub(super) const ITEM: Signature = Signature {
    name: "grains.item",
    summary: "The grains named, as {key: value}",
    params: &[],
    required: 0,
    kwargs: true,
    usage: "grains.item KEY ... [default=''] [delimiter=:]",
};

pub(super) const ITEMS: Signature = Signature {
    name: "grains.items",
    summary: "All the minion's grains",
    params: &[],
    required: 0,
    kwargs: false,
    usage: "grains.items",
};

/// `grains.get key default='' delimiter=':'`: a grain, nested keys joined by the delimiter;
/// list elements are reached by index.
pub(super) fn get(call: &Call, ctx: &Context) -> Result<Outcome, FunctionError> {
    let bound = bind(call, &GET)?;
    let key = bound
        .get("key")
        .map(|k| py_str(k).into_owned())
        .unwrap_or_default();
    let delimiter = bound
        .get("delimiter")
        .map(|d| py_str(d).into_owned())
        .unwrap_or_else(|| ":".to_owned());
    let default = bound
        .get("default")
        .cloned()
        .unwrap_or_else(|| Value::from(""));
    Ok(Outcome::ok(
        traverse(&ctx.grains, &key, &delimiter)
            .cloned()
            .unwrap_or(default),
    ))
}

/// `grains.item *keys [default=''] [delimiter=':']`: `{key: value}` in the order asked, the
/// default for keys the minion does not have.
pub(super) fn item(call: &Call, ctx: &Context) -> Outcome {
    let kwarg = |name: &str| {
        call.args
            .kwargs
            .iter()
            .find(|(k, _)| k == name)
            .map(|(_, v)| v)
    };
    let default = kwarg("default").cloned().unwrap_or_else(|| Value::from(""));
    let delimiter = kwarg("delimiter")
        .map(|d| py_str(d).into_owned())
        .unwrap_or_else(|| ":".to_owned());
    let entries = call
        .args
        .args
        .iter()
        .map(|key| {
            let key = py_str(key).into_owned();
            let value = traverse(&ctx.grains, &key, &delimiter)
                .cloned()
                .unwrap_or_else(|| default.clone());
            (Value::from(key), value)
        })
        .collect();
    Outcome::ok(Value::Map(entries))
}
