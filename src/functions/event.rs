//! The `event` module: `event.send` and `event.fire_master` ask the minion to forward an event
//! to the master (a `fire_master` request on the minion bus); `event.fire` fires on the
//! minion's own bus.

use super::{Call, Context, FunctionError, Outcome, bind};
use crate::bus::BusHandle;
use crate::config::Config;
use crate::event::{Event, EventError, Value, map_set};
use crate::proto::MinionEventLoad;
use crate::signature::{Bound, Signature, text, truthy};

/// Tag prefix of events that ask the minion to forward them to its master (Salt dispatches
/// minion-bus tags by prefix, so `fire_master…` anything counts).
pub const FIRE_MASTER: &str = "fire_master";

/// `event.send`'s parameters.
pub(crate) const SEND: Signature = Signature {
    name: "event.send",
    summary: "Fires an event to the master, with Salt's envelope and __pub_* fields",
    params: &[
        "tag",
        "data",
        "preload",
        "with_env",
        "with_grains",
        "with_pillar",
        "with_env_opts",
    ],
    required: 1,
    kwargs: true,
    usage: "event.send TAG [DATA] [with_env=…] [with_grains=…] [with_env_opts=…] [key=value ...]   (salt-call: TAG - reads events from stdin)",
};

/// `event.fire`'s parameters.
pub(crate) const FIRE: Signature = Signature {
    name: "event.fire",
    summary: "Fires an event on the minion's own bus",
    params: &["data", "tag"],
    required: 2,
    kwargs: false,
    usage: "event.fire DATA TAG   (salt-call: DATA - reads events from stdin)",
};

/// `event.fire_master`'s parameters.
pub(crate) const FIRE_MASTER_SIGNATURE: Signature = Signature {
    name: "event.fire_master",
    summary: "Fires an event to the master with the data untouched",
    params: &["data", "tag", "preload"],
    required: 2,
    kwargs: false,
    usage: "event.fire_master DATA TAG",
};

/// The `fire_master` request that makes the minion forward `event` to its master.
pub fn fire_master_request(event: Event, preload: Option<&Value>) -> Result<Event, EventError> {
    let mut request = vec![
        (Value::from("data"), event.data),
        (Value::from("tag"), Value::from(event.tag)),
        (Value::from("events"), Value::Nil),
        (Value::from("pretag"), Value::Nil),
    ];
    if let Some(preload) = preload.filter(|p| p.is_map()) {
        request.push((Value::from("preload"), preload.clone()));
    }
    Event::new(FIRE_MASTER, Value::Map(request))
}

/// The data `event.send` fires, assembled as Salt's execution module does: `environ`, `grains`,
/// `pillar`, env opts, the extra keyword arguments, the loader's `__pub_*` keys (`pub_keys`),
/// then `data` on top. `grains` is called only for `with_grains`: outside the daemon, reading
/// them was most of a `salt-call event.send`.
pub(crate) fn send_data(
    config: &Config,
    grains: impl FnOnce() -> Value,
    bound: &Bound,
    pub_keys: Vec<(Value, Value)>,
) -> Result<Value, FunctionError> {
    let mut data: Vec<(Value, Value)> = Vec::new();
    if let Some(with_env) = bound.get("with_env").filter(|v| truthy(v)) {
        let environ: Vec<(Value, Value)> = match with_env.as_array() {
            Some(names) => names
                .iter()
                .filter_map(|name| {
                    let name = text(name);
                    std::env::var(&name)
                        .ok()
                        .map(|value| (Value::from(name), Value::from(value)))
                })
                .collect(),
            None => std::env::vars()
                .map(|(k, v)| (Value::from(k), Value::from(v)))
                .collect(),
        };
        data.push((Value::from("environ"), Value::Map(environ)));
    }
    if let Some(with_grains) = bound.get("with_grains").filter(|v| truthy(v)) {
        let all = match grains() {
            Value::Map(all) => all,
            _ => Vec::new(),
        };
        let selected = match with_grains.as_array() {
            Some(names) => all
                .into_iter()
                .filter(|(k, _)| names.iter().any(|n| n.as_str() == k.as_str()))
                .collect(),
            None => all,
        };
        data.push((Value::from("grains"), Value::Map(selected)));
    }
    if bound.get("with_pillar").is_some_and(truthy) {
        // halite has no pillar: the key is there, empty, so consumers see what they expect.
        data.push((Value::from("pillar"), Value::Map(Vec::new())));
    }
    if bound.get("with_env_opts").is_some_and(truthy) {
        for key in ["saltenv", "pillarenv"] {
            data.push((
                Value::from(key),
                config.get(key).cloned().unwrap_or(Value::Nil),
            ));
        }
    }
    for (key, value) in &bound.extra {
        map_set(&mut data, Value::from(key.as_str()), value.clone());
    }
    for (key, value) in pub_keys {
        map_set(&mut data, key, value);
    }
    match bound.get("data") {
        None | Some(Value::Nil) => {}
        Some(Value::Map(entries)) => {
            for (key, value) in entries {
                map_set(&mut data, key.clone(), value.clone());
            }
        }
        Some(other) => {
            return Err(FunctionError::Invalid(format!(
                "event.send: data must be a dict (a YAML or JSON map such as '{{foo: Foo}}'), not {other}"
            )));
        }
    }
    Ok(Value::Map(data))
}

/// The minion daemon's own bus, which the `event` functions fire on.
fn bus<'a>(call: &Call, ctx: &'a Context) -> Result<&'a BusHandle, FunctionError> {
    ctx.bus
        .as_ref()
        .ok_or_else(|| FunctionError::NoBus(call.fun.clone()))
}

/// `event.send` inside the minion daemon: asks it to forward the event to the master.
pub(super) async fn send(call: &Call, ctx: &Context) -> Result<Outcome, FunctionError> {
    bus(call, ctx)?;
    let bound = bind(call, &SEND)?;
    let tag = bound.get("tag").map(text).unwrap_or_default();
    let data = send_data(
        &ctx.config,
        || ctx.grains.clone(),
        &bound,
        super::pub_kwargs(ctx.job.as_ref(), &call.fun),
    )?;
    forward(call, ctx, Event::new(tag, data)?, bound.get("preload")).await?;
    Ok(Outcome::ok(true))
}

/// `event.fire_master` inside the minion daemon: the data as given, forwarded to the master.
pub(super) async fn fire_master(call: &Call, ctx: &Context) -> Result<Outcome, FunctionError> {
    bus(call, ctx)?;
    let bound = bind(call, &FIRE_MASTER_SIGNATURE)?;
    forward(call, ctx, data_event(&bound)?, bound.get("preload")).await?;
    Ok(Outcome::ok(true))
}

/// Forwards `event` to the master: with a `preload`, straight on the minion's queue for its
/// master (in order with the job's return, as Salt sends it on its own request channel);
/// otherwise as a `fire_master` request on the minion's bus, which the minion relays.
async fn forward(
    call: &Call,
    ctx: &Context,
    event: Event,
    preload: Option<&Value>,
) -> Result<(), FunctionError> {
    let request = fire_master_request(event, preload)?;
    let preloaded = preload
        .and_then(Value::as_map)
        .is_some_and(|p| !p.is_empty());
    match &ctx.to_master {
        Some(queue) if preloaded => {
            let load = MinionEventLoad::from_fire_master(&ctx.config.id()?, &request.data)
                .map_err(|err| FunctionError::Invalid(err.to_string()))?;
            queue.send(load.to_value()).await.map_err(|_| {
                FunctionError::Invalid(format!(
                    "the event {} was not sent: the minion is stopping",
                    load_tag(&request.data)
                ))
            })
        }
        _ => {
            bus(call, ctx)?.fire(request);
            Ok(())
        }
    }
}

/// The tag of a `fire_master` request, for messages.
fn load_tag(request: &Value) -> String {
    crate::event::map_get(request, "tag")
        .map(text)
        .unwrap_or_default()
}

/// `event.fire` inside the minion daemon: the data as given, on the daemon's own bus.
pub(super) fn fire(call: &Call, ctx: &Context) -> Result<Outcome, FunctionError> {
    let bus = bus(call, ctx)?;
    bus.fire(data_event(&bind(call, &FIRE)?)?);
    Ok(Outcome::ok(true))
}

/// The event of `event.fire`/`event.fire_master`: `data` (a map) under `tag`.
fn data_event(bound: &Bound) -> Result<Event, FunctionError> {
    let data = bound.get("data").cloned().unwrap_or(Value::Nil);
    if !data.is_map() {
        return Err(FunctionError::Invalid(format!(
            "data must be a dict (a YAML or JSON map such as '{{x: 1}}'), not {data}"
        )));
    }
    let tag = bound.get("tag").map(text).unwrap_or_default();
    Ok(Event::new(tag, data)?)
}
