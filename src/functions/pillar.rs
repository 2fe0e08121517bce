//! The `pillar` module and `saltutil.refresh_pillar`: the minion's pillar.
//!
//! As in Salt, `pillar.get`, `pillar.item`, `pillar.keys` and `pillar.raw` read the minion's
//! in-memory pillar ([`Context::pillar`]); `pillar.items` and `pillar.ls` compile a fresh one,
//! whose templates see the in-memory one as `pillar` (a minion fed by its master returns the
//! in-memory pillar: asking the master for a fresh one is not there yet).

use std::sync::Arc;

use super::{Call, Context, FunctionError, Outcome, bind};
use crate::config::dictupdate::update;
use crate::event::traverse;
use crate::event::{Event, Value, map_get};
use crate::pillar::{Request, compile};
use crate::signature::{Signature, text, truthy};

pub(super) const GET: Signature = Signature {
    name: "pillar.get",
    summary: "One pillar value, nested keys joined by ':', or the default",
    params: &[
        "key",
        "default",
        "merge",
        "merge_nested_lists",
        "delimiter",
        "pillarenv",
        "saltenv",
    ],
    required: 1,
    kwargs: false,
    usage: "pillar.get KEY [DEFAULT] [merge=False] [merge_nested_lists=…] [delimiter=:] [pillarenv=ENV]",
};

pub(super) const ITEM: Signature = Signature {
    name: "pillar.item",
    summary: "The pillar values named, as {key: value}",
    params: &[],
    required: 0,
    kwargs: true,
    usage: "pillar.item KEY ... [default=''] [delimiter=:] [pillarenv=ENV]",
};

pub(super) const ITEMS: Signature = Signature {
    name: "pillar.items",
    summary: "The minion's whole pillar, compiled afresh",
    params: &[],
    required: 0,
    kwargs: true,
    usage: "pillar.items [KEY ...] [pillar={…}] [pillarenv=ENV]",
};

pub(super) const KEYS: Signature = Signature {
    name: "pillar.keys",
    summary: "The keys of the pillar map at KEY",
    params: &["key", "delimiter"],
    required: 1,
    kwargs: false,
    usage: "pillar.keys KEY [delimiter=:]",
};

pub(super) const LS: Signature = Signature {
    name: "pillar.ls",
    summary: "The top-level keys of the pillar, compiled afresh",
    params: &[],
    required: 0,
    kwargs: true,
    usage: "pillar.ls [pillar={…}] [pillarenv=ENV]",
};

pub(super) const RAW: Signature = Signature {
    name: "pillar.raw",
    summary: "The minion's in-memory pillar, or its top-level KEY",
    params: &["key"],
    required: 0,
    kwargs: false,
    usage: "pillar.raw [key=KEY]",
};

pub(super) const REFRESH_PILLAR: Signature = Signature {
    name: "saltutil.refresh_pillar",
    summary: "Has the minion compile (or fetch) its pillar again; True when it was told",
    params: &["wait", "timeout", "clean_cache"],
    required: 0,
    kwargs: false,
    usage: "saltutil.refresh_pillar [wait=False] [timeout=30] [clean_cache=True]",
};

use crate::proto::events::PILLAR_REFRESH;

/// How long `saltutil.refresh_pillar` waits for the pillar by default (Salt's `timeout`).
const REFRESH_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(30);

/// The minion's in-memory pillar, shared with it.
fn in_memory(ctx: &Context) -> Result<Arc<Value>, FunctionError> {
    Ok(ctx.pillar.get(&ctx.config, &ctx.grains)?)
}

/// A fresh pillar (only `pillarenv`'s when given, `overrides` merged over it), or the
/// in-memory one on a minion whose pillar comes from the master.
fn fresh(
    ctx: &Context,
    pillarenv: Option<&Value>,
    overrides: Option<&Value>,
) -> Result<Value, FunctionError> {
    let current = Arc::unwrap_or_clone(in_memory(ctx)?);
    if !ctx.pillar.is_local() {
        return Ok(current);
    }
    let mut request = Request::new(ctx.config.id()?, ctx.grains.clone());
    request.current = current;
    request.pillarenv = pillarenv.filter(|env| !env.is_nil()).map(text);
    request.overrides = overrides.filter(|o| o.is_map()).cloned();
    Ok(compile(&ctx.config, &request)?.pillar)
}

/// The pillar `pillar.get` and `pillar.item` read: the in-memory one, or a fresh one when a
/// `pillarenv` or `saltenv` is given.
fn pillar_for(
    ctx: &Context,
    pillarenv: Option<&Value>,
    saltenv: Option<&Value>,
) -> Result<Arc<Value>, FunctionError> {
    let given = |value: Option<&Value>| value.is_some_and(|v| !v.is_nil());
    if given(pillarenv) || given(saltenv) {
        fresh(ctx, pillarenv, None).map(Arc::new)
    } else {
        in_memory(ctx)
    }
}

/// A keyword argument of a `**kwargs` signature.
fn kwarg<'a>(call: &'a Call, name: &str) -> Option<&'a Value> {
    call.args
        .kwargs
        .iter()
        .find(|(key, _)| key == name)
        .map(|(_, value)| value)
}

/// `pillar.get key default='' merge=False delimiter=':'`: the value at `key`; with `merge`, a
/// map (or list) default with the value merged into it.
pub(super) fn get(call: &Call, ctx: &Context) -> Result<Outcome, FunctionError> {
    let bound = bind(call, &GET)?;
    let key = bound.get("key").map(text).unwrap_or_default();
    let default = bound
        .get("default")
        .cloned()
        .unwrap_or_else(|| Value::from(""));
    let delimiter = bound
        .get("delimiter")
        .map(text)
        .unwrap_or_else(|| ":".to_owned());
    let merge_lists = match bound.get("merge_nested_lists").filter(|v| !v.is_nil()) {
        Some(given) => truthy(given),
        None => ctx.config.get_bool("pillar_merge_lists", false)?,
    };
    let pillar = pillar_for(ctx, bound.get("pillarenv"), bound.get("saltenv"))?;
    let found = traverse(&pillar, &key, &delimiter);
    if bound.get("merge").is_some_and(truthy) {
        match (&default, found) {
            (Value::Map(_), None) => return Ok(Outcome::ok(default)),
            (Value::Map(_), Some(value @ Value::Map(_))) => {
                let mut merged = default.clone();
                update(&mut merged, value, merge_lists);
                return Ok(Outcome::ok(merged));
            }
            (Value::Array(_), None) => return Ok(Outcome::ok(default)),
            (Value::Array(items), Some(Value::Array(values))) => {
                let mut merged = items.clone();
                for value in values {
                    if !merged.contains(value) {
                        merged.push(value.clone());
                    }
                }
                return Ok(Outcome::ok(Value::Array(merged)));
            }
            (default, found) => tracing::error!(
                "pillar.get: cannot merge {found:?} into the default {default}: merge skipped"
            ),
        }
    }
    Ok(Outcome::ok(found.cloned().unwrap_or(default)))
}

/// `pillar.item *keys default='' delimiter=':'`: `{key: value}` in the order asked.
pub(super) fn item(call: &Call, ctx: &Context) -> Result<Outcome, FunctionError> {
    let default = kwarg(call, "default")
        .filter(|d| !d.is_nil())
        .cloned()
        .unwrap_or_else(|| Value::from(""));
    let delimiter = kwarg(call, "delimiter")
        .filter(|d| !d.is_nil())
        .map(text)
        .unwrap_or_else(|| ":".to_owned());
    let pillar = pillar_for(ctx, kwarg(call, "pillarenv"), kwarg(call, "saltenv"))?;
    let entries = call
        .args
        .args
        .iter()
        .map(|key| {
            let key = text(key);
            let value = traverse(&pillar, &key, &delimiter)
                .cloned()
                .unwrap_or_else(|| default.clone());
            (Value::from(key), value)
        })
        .collect();
    Ok(Outcome::ok(Value::Map(entries)))
}

/// `pillar.items`: the pillar compiled afresh; with keys, `pillar.item` of them.
pub(super) fn items(call: &Call, ctx: &Context) -> Result<Outcome, FunctionError> {
    if !call.args.args.is_empty() {
        return item(call, ctx);
    }
    fresh(ctx, kwarg(call, "pillarenv"), kwarg(call, "pillar")).map(Outcome::ok)
}

/// `pillar.ls`: the top-level keys of a fresh pillar.
pub(super) fn ls(call: &Call, ctx: &Context) -> Result<Outcome, FunctionError> {
    let pillar = fresh(ctx, kwarg(call, "pillarenv"), kwarg(call, "pillar"))?;
    let keys = pillar
        .as_map()
        .map(|entries| entries.iter().map(|(key, _)| key.clone()).collect())
        .unwrap_or_default();
    Ok(Outcome::ok(Value::Array(keys)))
}

/// `pillar.keys key`: the keys of the map at `key`, an error when missing or not a map.
pub(super) fn keys(call: &Call, ctx: &Context) -> Result<Outcome, FunctionError> {
    let bound = bind(call, &KEYS)?;
    let key = bound.get("key").map(text).unwrap_or_default();
    let delimiter = bound
        .get("delimiter")
        .map(text)
        .unwrap_or_else(|| ":".to_owned());
    let pillar = in_memory(ctx)?;
    match traverse(&pillar, &key, &delimiter) {
        None => Err(FunctionError::Invalid(format!(
            "KeyError: 'Pillar key not found: {key}'"
        ))),
        Some(Value::Map(entries)) => Ok(Outcome::ok(Value::Array(
            entries.iter().map(|(key, _)| key.clone()).collect(),
        ))),
        Some(_) => Err(FunctionError::Invalid(format!(
            "ValueError: Pillar value in key {key} is not a dict"
        ))),
    }
}

/// `pillar.raw [key]`: the in-memory pillar, or its top-level `key` (`{}` when missing).
pub(super) fn raw(call: &Call, ctx: &Context) -> Result<Outcome, FunctionError> {
    let bound = bind(call, &RAW)?;
    let pillar = in_memory(ctx)?;
    Ok(Outcome::ok(match bound.get("key").filter(|k| truthy(k)) {
        Some(key) => map_get(&pillar, &text(key))
            .cloned()
            .unwrap_or_else(|| Value::Map(Vec::new())),
        None => Arc::unwrap_or_clone(pillar),
    }))
}

/// `saltutil.refresh_pillar`: has the minion take its pillar afresh and, as Salt's, fires
/// `pillar_refresh` with `clean_cache` on the minion's bus (so what reads its part of the pillar,
/// the beacons and the schedule, reads it again); True when it was fired (False without a minion
/// daemon, as `salt-call --local` says). A minion fed by its master fetches the pillar before it
/// answers, `timeout` seconds at most, whatever `wait` says: the master then knows the new
/// pillar, so a pillar target published after the answer matches it. A fetch that fails keeps
/// the pillar there was, as Salt's minion keeps it, and is logged.
pub(super) async fn refresh_pillar(call: &Call, ctx: &Context) -> Result<Outcome, FunctionError> {
    let bound = bind(call, &REFRESH_PILLAR)?;
    let timeout = match bound.get("timeout").filter(|v| !v.is_nil()) {
        Some(given) => super::cmd::seconds(given)?,
        None => REFRESH_TIMEOUT,
    };
    let Some(bus) = &ctx.bus else {
        ctx.pillar.refresh();
        return Ok(Outcome::ok(false));
    };
    if ctx.pillar.is_local() {
        ctx.pillar.refresh();
    }
    let clean_cache = bound.get("clean_cache").is_none_or(truthy);
    // Fired first: the services it wakes join the fetch below instead of asking again.
    bus.fire(Event::new(
        PILLAR_REFRESH,
        Value::Map(vec![(
            Value::from("clean_cache"),
            Value::Boolean(clean_cache),
        )]),
    )?);
    match tokio::time::timeout(timeout, ctx.pillar.fetch()).await {
        Ok(Ok(())) => {}
        Ok(Err(err)) => tracing::warn!("Pillar data could not be refreshed: {err}"),
        Err(_) => tracing::warn!("Pillar refresh did not complete within timeout {timeout:?}"),
    }
    Ok(Outcome::ok(true))
}
