//! The `event.send` state: fires an event to the master through the execution function
//! `event.send`; the changes show the tag and data unless `show_changed` is False.

use super::{StateCall, StateContext, StateError, StateFunction, StateResult};
use crate::event::Value;

/// `event.send`.
pub(super) const SEND: StateFunction = StateFunction {
    name: "event.send",
    required: &[],
    run: |call, ctx| Box::pin(send(call, ctx)),
    mod_watch: None,
};

/// The event's result is whether it was sent: as Salt's, an event that could not be delivered
/// (no minion daemon, as with `salt-call --local`) makes a failed state, not an error.
async fn send(call: &StateCall, ctx: &StateContext) -> Result<StateResult, StateError> {
    let data = call.arg("data").cloned().unwrap_or(Value::Nil);
    let mut ret = StateResult::new(call, Some(false), "");
    if call.arg_bool("show_changed", true) {
        ret.changes = Value::Map(vec![
            (Value::from("tag"), Value::from(call.name.as_str())),
            (Value::from("data"), data.clone()),
        ]);
    }
    if call.test {
        ret.result = None;
        ret.comment = "Event would have been fired".to_owned();
        return Ok(ret);
    }
    let kwargs = call
        .args
        .iter()
        .filter(|(key, _)| key != "show_changed")
        .cloned()
        .collect();
    let sent = ctx
        .call("event.send", vec![Value::from(call.name.as_str())], kwargs)
        .await;
    ret.result = Some(match sent {
        Ok(sent) => crate::py::value::truthy(&sent.ret),
        Err(err) => {
            tracing::warn!("the event {} was not sent: {err}", call.name);
            false
        }
    });
    ret.comment = "Event fired".to_owned();
    Ok(ret)
}
