//! The `beacons` module: lists and changes the running minion's beacons, as Salt's does — a
//! `manage_beacons` request on the minion's bus, then the completion event the minion's
//! beacons service fires (`/salt/minion/minion_beacon…_complete`). The same requests work from
//! `salt-call`, from a job the master sent, and from Salt's own `beacons` module.

use std::time::Duration;

use super::manage::{Request, yaml};
use super::{Call, Context, FunctionError, Outcome};
use crate::event::{Value, map_get};
use crate::proto::manage::BEACONS;
use crate::py::value::py_str;
use crate::signature::{Signature, text, truthy};

/// How long a request waits for the minion's answer unless `timeout=` says otherwise (Salt's).
const DEFAULT_WAIT: Duration = Duration::from_secs(60);

macro_rules! signature {
    ($const:ident, $name:literal, $summary:literal, [$($param:literal),*], $required:literal, $usage:literal) => {
        pub(super) const $const: Signature = Signature {
            name: $name,
            summary: $summary,
            params: &[$($param),*],
            required: $required,
            kwargs: true,
            usage: $usage,
        };
    };
}

signature!(
    LIST,
    "beacons.list",
    "The beacons the running minion has, as YAML (return_yaml=False: a map)",
    ["return_yaml", "include_pillar", "include_opts"],
    0,
    "beacons.list [return_yaml=True] [timeout=60]"
);
signature!(
    LIST_AVAILABLE,
    "beacons.list_available",
    "The beacon modules the minion can run",
    ["return_yaml"],
    0,
    "beacons.list_available [return_yaml=True] [timeout=60]"
);
signature!(
    ADD,
    "beacons.add",
    "Adds a beacon to the running minion, its configuration checked first",
    ["name", "beacon_data"],
    2,
    "beacons.add NAME '[{percent: 80%}, {interval: 10}]' [test=True] [timeout=60]"
);
signature!(
    MODIFY,
    "beacons.modify",
    "Changes a beacon's configuration on the running minion",
    ["name", "beacon_data"],
    2,
    "beacons.modify NAME '[{percent: 90%}]' [test=True] [timeout=60]"
);
signature!(
    DELETE,
    "beacons.delete",
    "Removes a beacon from the running minion",
    ["name"],
    1,
    "beacons.delete NAME [test=True] [timeout=60]"
);
signature!(
    SAVE,
    "beacons.save",
    "Writes the minion's beacons to minion.d/beacons.conf",
    [],
    0,
    "beacons.save [timeout=60]"
);
signature!(
    ENABLE,
    "beacons.enable",
    "Turns every beacon on",
    [],
    0,
    "beacons.enable [test=True] [timeout=60]"
);
signature!(
    DISABLE,
    "beacons.disable",
    "Turns every beacon off",
    [],
    0,
    "beacons.disable [test=True] [timeout=60]"
);
signature!(
    ENABLE_BEACON,
    "beacons.enable_beacon",
    "Turns one beacon on",
    ["name"],
    1,
    "beacons.enable_beacon NAME [test=True] [timeout=60]"
);
signature!(
    DISABLE_BEACON,
    "beacons.disable_beacon",
    "Turns one beacon off",
    ["name"],
    1,
    "beacons.disable_beacon NAME [test=True] [timeout=60]"
);
signature!(
    RESET,
    "beacons.reset",
    "Forgets every beacon the running minion has (until it restarts)",
    [],
    0,
    "beacons.reset [test=True] [timeout=60]"
);

impl Request<'_> {
    /// Sends `fields` (with `func`) to the minion's beacons service and waits for its answer:
    /// its data, or `None` when it did not come in time.
    async fn ask(
        &self,
        func: &str,
        fields: Vec<(&str, Value)>,
    ) -> Result<Option<Value>, FunctionError> {
        self.service().ask(func, fields).await
    }

    /// The minion's beacons (`list` with `return_yaml=False`), those of its pillar with
    /// `include_pillar`.
    async fn beacons(&self, include_pillar: bool) -> Result<Value, FunctionError> {
        let answer = self
            .ask(
                "list",
                vec![
                    ("include_pillar", include_pillar.into()),
                    ("include_opts", self.flag("include_opts", true).into()),
                ],
            )
            .await?;
        Ok(answer
            .filter(|data| map_get(data, "complete").is_some_and(truthy))
            .and_then(|data| map_get(&data, "beacons").cloned())
            .unwrap_or(Value::Nil))
    }

    fn no_answer(&self, what: &str) -> String {
        format!(
            "Did not receive the beacon {what} complete event before the timeout of {}s",
            self.timeout().as_secs()
        )
    }
}

fn has(beacons: &Value, name: &str) -> bool {
    beacons
        .as_map()
        .is_some_and(|entries| entries.iter().any(|(key, _)| py_str(key) == name))
}

fn result(result: bool, comment: impl Into<Value>) -> Value {
    Value::Map(vec![
        ("comment".into(), comment.into()),
        ("result".into(), result.into()),
    ])
}

/// The return of a change the minion answered: `done` with its beacons when it completed it,
/// its comment when it refused, `no_answer` when it did not answer.
fn settle(answer: Option<Value>, no_answer: String, done: impl FnOnce(&Value) -> Value) -> Value {
    match answer {
        Some(data) if map_get(&data, "complete").is_some_and(truthy) => {
            done(map_get(&data, "beacons").unwrap_or(&Value::Nil))
        }
        Some(data) => result(
            false,
            map_get(&data, "comment").map(text).unwrap_or_default(),
        ),
        None => result(false, no_answer),
    }
}

fn ok(value: Value) -> Result<Outcome, FunctionError> {
    Ok(Outcome::ok(value))
}

pub(super) async fn list(call: &Call, ctx: &Context) -> Result<Outcome, FunctionError> {
    let request = Request::new(call, ctx, &LIST, &BEACONS, DEFAULT_WAIT)?;
    let beacons = request
        .beacons(request.flag("include_pillar", true))
        .await?;
    ok(if request.flag("return_yaml", true) {
        yaml("beacons", beacons).into()
    } else {
        beacons
    })
}

pub(super) async fn list_available(call: &Call, ctx: &Context) -> Result<Outcome, FunctionError> {
    let request = Request::new(call, ctx, &LIST_AVAILABLE, &BEACONS, DEFAULT_WAIT)?;
    let answer = request.ask("list_available", Vec::new()).await?;
    let names = answer.and_then(|data| map_get(&data, "beacons").cloned());
    ok(match names {
        Some(names) if request.flag("return_yaml", true) => yaml("beacons", names).into(),
        Some(names) => names,
        None => Value::Map(vec![("beacons".into(), Value::Map(Vec::new()))]),
    })
}

/// `beacons.add` and `beacons.modify`: the configuration checked by the minion, then set.
pub(super) async fn add(
    call: &Call,
    ctx: &Context,
    modify: bool,
) -> Result<Outcome, FunctionError> {
    let request = Request::new(
        call,
        ctx,
        if modify { &MODIFY } else { &ADD },
        &BEACONS,
        DEFAULT_WAIT,
    )?;
    let name = request.name();
    let beacon_data = request
        .bound
        .get("beacon_data")
        .cloned()
        .unwrap_or(Value::Nil);
    if let Some(expected) = crate::beacons::config::name_problem(&name) {
        return ok(result(
            false,
            format!("Beacon name {name:?} cannot be used: expected {expected}."),
        ));
    }
    let current = request
        .beacons(request.flag("include_pillar", true))
        .await?;
    let configured = has(&current, &name);
    if !modify && configured {
        return ok(result(
            true,
            format!("Beacon {name} is already configured."),
        ));
    }
    if modify && !configured {
        return ok(result(true, format!("Beacon {name} is not configured.")));
    }
    let module = crate::beacons::config::merge(&beacon_data)
        .ok()
        .and_then(|merged| map_get(&merged, "beacon_module").map(text))
        .unwrap_or_else(|| name.clone());
    if !modify && crate::beacons::module(&module).is_none() {
        return ok(result(
            false,
            format!("Beacon \"{module}\" is not available."),
        ));
    }
    let (verb, doing) = if modify {
        ("modify", "modifying")
    } else {
        ("add", "adding")
    };
    if request.test() {
        let would = if modify { "modified" } else { "added" };
        return ok(result(true, format!("Beacon: {name} would be {would}.")));
    }
    let validation = request
        .ask(
            "validate_beacon",
            vec![
                ("name", name.as_str().into()),
                ("beacon_data", beacon_data.clone()),
            ],
        )
        .await?;
    let Some(validation) = validation else {
        return ok(result(false, request.no_answer("validation")));
    };
    if !map_get(&validation, "valid").is_some_and(truthy) {
        let comment = map_get(&validation, "vcomment")
            .map(text)
            .unwrap_or_default();
        return ok(result(
            false,
            format!("Beacon {name} configuration invalid, not {doing}.\n{comment}"),
        ));
    }
    let mut changes = None;
    if modify {
        let old = crate::event::map_get(&current, &name)
            .cloned()
            .unwrap_or(Value::Nil);
        if old == beacon_data {
            return ok(result(true, format!("Job {name} in correct state")));
        }
        changes = Some(crate::py::difflib::unified_diff(
            &diff_lines(&old),
            &diff_lines(&beacon_data),
        ));
    }
    let answer = request
        .ask(
            verb,
            vec![
                ("name", name.as_str().into()),
                ("beacon_data", beacon_data.clone()),
            ],
        )
        .await?;
    let mut ret = settle(answer, request.no_answer(verb), |beacons| {
        if map_get(beacons, &name) == Some(&beacon_data) {
            let done = if modify { "Modified" } else { "Added" };
            result(true, format!("{done} beacon: {name}."))
        } else {
            result(false, format!("Failed to {verb} beacon {name}."))
        }
    });
    if let (Some(diff), Value::Map(entries)) = (changes, &mut ret) {
        entries.push((
            "changes".into(),
            Value::Map(vec![("diff".into(), diff.into())]),
        ));
    }
    ok(ret)
}

/// A beacon's configuration as the lines Salt's `modify` diffs: `key:value` per list item.
fn diff_lines(config: &Value) -> Vec<String> {
    let items: Vec<&Value> = match config {
        Value::Array(items) => items.iter().collect(),
        other => vec![other],
    };
    items
        .into_iter()
        .filter_map(Value::as_map)
        .flatten()
        .map(|(key, value)| format!("{}:{}\n", py_str(key), py_str(value)))
        .collect()
}

pub(super) async fn delete(call: &Call, ctx: &Context) -> Result<Outcome, FunctionError> {
    let request = Request::new(call, ctx, &DELETE, &BEACONS, DEFAULT_WAIT)?;
    let name = request.name();
    if request.test() {
        return ok(result(true, format!("Beacon: {name} would be deleted.")));
    }
    let answer = request
        .ask("delete", vec![("name", name.as_str().into())])
        .await?;
    ok(settle(answer, request.no_answer("delete"), |beacons| {
        if has(beacons, &name) {
            result(false, format!("Failed to delete beacon {name}."))
        } else {
            result(true, format!("Deleted beacon: {name}."))
        }
    }))
}

/// `beacons.save`: the beacons configured on the minion (not those from pillar), written where
/// Salt writes them, `beacons.conf` in the directory of `default_include` (`minion.d`).
pub(super) async fn save(call: &Call, ctx: &Context) -> Result<Outcome, FunctionError> {
    let request = Request::new(call, ctx, &SAVE, &BEACONS, DEFAULT_WAIT)?;
    let beacons = request.beacons(false).await?;
    let file = ctx.config.include_dir().join("beacons.conf");
    let text = match &beacons {
        Value::Map(entries) if !entries.is_empty() => yaml("beacons", beacons),
        _ => String::new(),
    };
    let written = async {
        if let Some(dir) = file.parent() {
            tokio::fs::create_dir_all(dir).await?;
        }
        tokio::fs::write(&file, text).await
    }
    .await;
    ok(match written {
        Ok(()) => result(true, format!("Beacons saved to {}.", file.display())),
        Err(err) => {
            tracing::warn!("cannot write {}: {err}", file.display());
            result(
                false,
                format!(
                    "Unable to write to beacons file at {}. Check permissions.",
                    file.display()
                ),
            )
        }
    })
}

/// `beacons.enable` and `beacons.disable`: every beacon at once.
pub(super) async fn switch_all(
    call: &Call,
    ctx: &Context,
    on: bool,
) -> Result<Outcome, FunctionError> {
    let request = Request::new(
        call,
        ctx,
        if on { &ENABLE } else { &DISABLE },
        &BEACONS,
        DEFAULT_WAIT,
    )?;
    let (verb, past) = if on {
        ("enable", "Enabled")
    } else {
        ("disable", "Disabled")
    };
    if request.test() {
        return ok(result(true, format!("Beacons would be {verb}d.")));
    }
    let answer = request.ask(verb, Vec::new()).await?;
    ok(match answer {
        Some(data) if map_get(&data, "complete").is_some_and(truthy) => {
            let enabled = map_get(&data, "beacons")
                .and_then(|b| map_get(b, "enabled"))
                .map(truthy);
            if enabled == Some(on) {
                result(true, format!("{past} beacons on minion."))
            } else {
                result(false, format!("Failed to {verb} beacons on minion."))
            }
        }
        _ => result(false, request.no_answer(&format!("{verb}d"))),
    })
}

/// `beacons.enable_beacon` and `beacons.disable_beacon`.
pub(super) async fn switch_one(
    call: &Call,
    ctx: &Context,
    on: bool,
) -> Result<Outcome, FunctionError> {
    let request = Request::new(
        call,
        ctx,
        if on { &ENABLE_BEACON } else { &DISABLE_BEACON },
        &BEACONS,
        DEFAULT_WAIT,
    )?;
    let name = request.name();
    let verb = if on { "enable" } else { "disable" };
    if name.is_empty() {
        return ok(result(false, "Beacon name is required."));
    }
    if request.test() {
        return ok(result(true, format!("Beacon {name} would be {verb}d.")));
    }
    if !has(
        &request
            .beacons(request.flag("include_pillar", true))
            .await?,
        &name,
    ) {
        return ok(result(
            false,
            format!("Beacon {name} is not currently configured."),
        ));
    }
    let answer = request
        .ask(
            &format!("{verb}_beacon"),
            vec![("name", name.as_str().into())],
        )
        .await?;
    ok(settle(
        answer,
        request.no_answer(&format!("{verb}d")),
        |beacons| {
            let enabled = map_get(beacons, &name)
                .and_then(|config| crate::beacons::config::merge(config).ok())
                .map(|merged| map_get(&merged, "enabled").is_none_or(truthy));
            if enabled == Some(on) {
                let past = if on { "Enabled" } else { "Disabled" };
                result(true, format!("{past} beacon {name} on minion."))
            } else {
                result(false, format!("Failed to {verb} beacon {name} on minion."))
            }
        },
    ))
}

pub(super) async fn reset(call: &Call, ctx: &Context) -> Result<Outcome, FunctionError> {
    let request = Request::new(call, ctx, &RESET, &BEACONS, DEFAULT_WAIT)?;
    if request.test() {
        return ok(result(true, "Beacons would be reset."));
    }
    let answer = request.ask("reset", Vec::new()).await?;
    ok(match answer {
        Some(data) if map_get(&data, "complete").is_some_and(truthy) => {
            result(true, "Beacon configuration reset.")
        }
        _ => result(false, request.no_answer("reset")),
    })
}
