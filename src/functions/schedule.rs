//! The `schedule` module: lists and changes the running minion's schedule, as Salt's does — a
//! `manage_schedule` request on the minion's bus, then the completion event the minion's
//! scheduler fires (`/salt/minion/minion_schedule_…_complete`). Each function returns what
//! Salt's returns, `{"comment", "result", "changes"}` in Salt's order and words.

use std::time::Duration;

use super::manage::{Request, yaml};
use super::{Call, Context, FunctionError, Outcome};
use crate::event::{Value, map_get};
use crate::proto::manage::SCHEDULE;
use crate::py::value::py_str;
use crate::signature::{Signature, text, truthy};

/// How long a request waits for the minion's answer unless `timeout=` says otherwise (Salt's).
const DEFAULT_WAIT: Duration = Duration::from_secs(30);

/// The keys `schedule.list` shows of a job (Salt's `SCHEDULE_CONF`).
const LISTED: &[&str] = &[
    "name",
    "maxrunning",
    "function",
    "splay",
    "range",
    "when",
    "once",
    "once_fmt",
    "returner",
    "jid_include",
    "args",
    "kwargs",
    "seconds",
    "minutes",
    "hours",
    "days",
    "enabled",
    "return_job",
    "metadata",
    "cron",
    "until",
    "after",
    "return_config",
    "return_kwargs",
    "run_on_start",
    "skip_during_range",
    "run_after_skip_range",
];

/// The settings of the whole schedule, which `schedule.list` shows as they are.
const HIDDEN: &[&str] = &["enabled", "skip_function", "skip_during_range"];

/// The time keys, which Salt's `add` and `modify` refuse beside `when` and `cron`.
const TIME_KEYS: [&str; 4] = ["seconds", "minutes", "hours", "days"];

/// What `add` and `modify` copy from their arguments after the fixed keys (Salt's order).
const COPIED: &[&str] = &[
    "range",
    "when",
    "once",
    "once_fmt",
    "cron",
    "returner",
    "after",
    "return_config",
    "return_kwargs",
    "until",
    "run_on_start",
    "skip_during_range",
];

macro_rules! signature {
    ($const:ident, $name:literal, $summary:literal, [$($param:literal),*], $required:literal, $kwargs:literal, $usage:literal) => {
        pub(super) const $const: Signature = Signature {
            name: $name,
            summary: $summary,
            params: &[$($param),*],
            required: $required,
            kwargs: $kwargs,
            usage: $usage,
        };
    };
}

signature!(
    LIST,
    "schedule.list",
    "The jobs scheduled on the running minion, as YAML (return_yaml=False: a map)",
    ["show_all", "show_disabled", "where", "return_yaml"],
    0,
    true,
    "schedule.list [show_all=False] [show_disabled=True] [where=pillar|opts] [return_yaml=True] [timeout=30]"
);
signature!(
    ADD,
    "schedule.add",
    "Adds a job to the running minion's schedule (saved to minion.d/_schedule.conf)",
    ["name"],
    1,
    true,
    "schedule.add NAME function=test.ping seconds=3600 [job_args='[...]'] [job_kwargs='{...}'] [persist=True] [test=True]"
);
signature!(
    MODIFY,
    "schedule.modify",
    "Replaces a job of the running minion's schedule with the settings given",
    ["name"],
    1,
    true,
    "schedule.modify NAME [function=test.ping] seconds=60 [persist=True] [test=True]"
);
signature!(
    DELETE,
    "schedule.delete",
    "Removes a job from the running minion's schedule",
    ["name"],
    1,
    true,
    "schedule.delete NAME [persist=True] [test=True]"
);
signature!(
    ENABLE,
    "schedule.enable",
    "Turns the whole schedule on",
    [],
    0,
    true,
    "schedule.enable [persist=True] [test=True]"
);
signature!(
    DISABLE,
    "schedule.disable",
    "Turns the whole schedule off",
    [],
    0,
    true,
    "schedule.disable [persist=True] [test=True]"
);
signature!(
    ENABLE_JOB,
    "schedule.enable_job",
    "Turns one job of the schedule on",
    ["name"],
    1,
    true,
    "schedule.enable_job NAME [persist=True] [test=True]"
);
signature!(
    DISABLE_JOB,
    "schedule.disable_job",
    "Turns one job of the schedule off",
    ["name"],
    1,
    true,
    "schedule.disable_job NAME [persist=True] [test=True]"
);
signature!(
    RUN_JOB,
    "schedule.run_job",
    "Runs a scheduled job now (force=True: even when it is disabled)",
    ["name", "force"],
    1,
    false,
    "schedule.run_job NAME [force=True]"
);
signature!(
    SAVE,
    "schedule.save",
    "Writes the minion's schedule (not the pillar's) to minion.d/_schedule.conf",
    [],
    0,
    true,
    "schedule.save [test=True]"
);
signature!(
    SHOW_NEXT_FIRE_TIME,
    "schedule.show_next_fire_time",
    "When a scheduled job runs next",
    ["name"],
    1,
    true,
    "schedule.show_next_fire_time NAME"
);

impl Request<'_> {
    fn persist(&self) -> bool {
        self.extra("persist").is_none_or(truthy)
    }

    /// The answer to `func` when the minion completed it.
    async fn completed(
        &self,
        func: &str,
        fields: Vec<(&str, Value)>,
    ) -> Result<Option<Value>, FunctionError> {
        let answer = self.service().ask(func, fields).await?;
        Ok(answer.filter(|data| map_get(data, "complete").is_some_and(truthy)))
    }

    /// The minion's schedule as it keeps it (`where`: `pillar`, `opts` or both); empty when it
    /// did not answer.
    async fn schedule(&self, where_: Option<&str>) -> Result<Value, FunctionError> {
        let answer = self
            .completed(
                "list",
                vec![("where", where_.map_or(Value::Nil, Value::from))],
            )
            .await?;
        Ok(answer
            .and_then(|data| map_get(&data, "schedule").cloned())
            .filter(Value::is_map)
            .unwrap_or(Value::Map(Vec::new())))
    }

    /// Salt's `offline=True` works on the saved file without a minion: halite's does not.
    fn offline(&self) -> Option<Value> {
        self.extra("offline").is_some_and(truthy).then(|| {
            result(
                false,
                format!(
                    "{}: offline=True is not supported; start the minion and call it without",
                    self.fun
                ),
            )
        })
    }
}

fn has(schedule: &Value, name: &str) -> bool {
    schedule
        .as_map()
        .is_some_and(|entries| entries.iter().any(|(key, _)| py_str(key) == name))
}

fn result(result: bool, comment: impl Into<Value>) -> Value {
    Value::Map(vec![
        ("comment".into(), comment.into()),
        ("result".into(), result.into()),
    ])
}

/// Salt's `{"comment", "result", "changes"}`.
fn changed(ok: bool, comment: impl Into<Value>, changes: Vec<(Value, Value)>) -> Value {
    Value::Map(vec![
        ("comment".into(), comment.into()),
        ("result".into(), ok.into()),
        ("changes".into(), Value::Map(changes)),
    ])
}

fn ok(value: Value) -> Result<Outcome, FunctionError> {
    Ok(Outcome::ok(value))
}

/// `schedule.list`: Salt's listing of the minion's schedule.
pub(super) async fn list(call: &Call, ctx: &Context) -> Result<Outcome, FunctionError> {
    let request = Request::new(call, ctx, &LIST, &SCHEDULE, DEFAULT_WAIT)?;
    if let Some(refused) = request.offline() {
        return ok(refused);
    }
    let where_ = request.bound.get("where").map(text);
    let schedule = request.schedule(where_.as_deref()).await?;
    let listed = listing(
        schedule,
        request.flag("show_all", false),
        request.flag("show_disabled", true),
    );
    if !request.flag("return_yaml", true) {
        return ok(listed);
    }
    let saved = saved(ctx);
    let Value::Map(mut jobs) = listed else {
        return ok(yaml("schedule", listed).into());
    };
    // Whether each job is in the saved file.
    for (name, job) in &mut jobs {
        if let Value::Map(entries) = job {
            entries.push(("saved".into(), has(&saved, &py_str(name)).into()));
        }
    }
    ok(yaml("schedule", Value::Map(jobs)).into())
}

/// The jobs of the saved file (`minion.d/_schedule.conf`), `{}` when there are none.
fn saved(ctx: &Context) -> Value {
    let file = ctx
        .config
        .include_dir()
        .join(crate::schedule::manage::SAVED);
    std::fs::read_to_string(file)
        .ok()
        .and_then(|text| crate::salt_yaml::load(&text).ok())
        .and_then(|saved| map_get(&saved, "schedule").cloned())
        .unwrap_or(Value::Map(Vec::new()))
}

/// The minion's schedule as Salt's `schedule.list` shows it: jobs starting `__` only with
/// `show_all`; each with its name and `enabled` (as Salt's scheduler sets them), only the keys
/// Salt lists, no empty ones, `"true"`/`"false"` as booleans; disabled jobs hidden unless
/// `show_disabled`.
fn listing(schedule: Value, show_all: bool, show_disabled: bool) -> Value {
    let Value::Map(entries) = schedule else {
        return Value::Map(Vec::new());
    };
    let mut listed = Vec::new();
    for (key, job) in entries {
        let name = py_str(&key).into_owned();
        if HIDDEN.contains(&name.as_str()) {
            listed.push((key, job));
            continue;
        }
        if name.starts_with("__") && !show_all {
            continue;
        }
        let Value::Map(settings) = job else {
            listed.push((key, job));
            continue;
        };
        let mut shown: Vec<(Value, Value)> = settings
            .into_iter()
            .filter(|(setting, value)| {
                LISTED.contains(&py_str(setting).as_ref()) && !value.is_nil()
            })
            .map(|(setting, value)| {
                let value = match value.as_str() {
                    Some("true") => Value::Boolean(true),
                    Some("false") => Value::Boolean(false),
                    _ => value,
                };
                (setting, value)
            })
            .collect();
        for (setting, default) in [("name", key.clone()), ("enabled", true.into())] {
            if !shown.iter().any(|(k, _)| k.as_str() == Some(setting)) {
                shown.push((setting.into(), default));
            }
        }
        let enabled = map_get(&Value::Map(shown.clone()), "enabled").is_none_or(truthy);
        if !show_disabled && !enabled {
            continue;
        }
        listed.push((key, Value::Map(shown)));
    }
    Value::Map(listed)
}

/// Salt's `build_schedule_item`: the job `add` and `modify` send, from their arguments, or the
/// return that refuses them (the callers have refused conflicting times already).
fn build_item(request: &Request<'_>, name: &str, function: Option<Value>) -> Result<Value, Value> {
    let given = |key: &str| request.extra(key).cloned();
    let refuse = |comment: &str| Err(result(false, comment));
    let function = function.or_else(|| given("function")).ok_or_else(|| {
        result(
            false,
            format!("Job {name} needs function= (the execution function it runs)."),
        )
    })?;
    let mut item: Vec<(Value, Value)> = vec![("function".into(), function)];
    let mut put = |key: &str, value: Value| item.push((key.into(), value));
    for key in TIME_KEYS {
        if let Some(value) = given(key) {
            put(key, value);
        }
    }
    if let Some(value) = given("return_job") {
        put("return_job", value);
    }
    if let Some(value) = given("metadata") {
        put("metadata", value);
    }
    match given("job_args") {
        None => {}
        Some(args @ Value::Array(_)) => put("args", args),
        Some(_) => return refuse("job_args is not a list. please correct and try again."),
    }
    match given("job_kwargs") {
        None => {}
        Some(kwargs @ Value::Map(_)) => put("kwargs", kwargs),
        Some(_) => return refuse("job_kwargs is not a dict. please correct and try again."),
    }
    put("maxrunning", given("maxrunning").unwrap_or(Value::from(1)));
    put("name", Value::from(name));
    put("enabled", given("enabled").unwrap_or(Value::Boolean(true)));
    put(
        "jid_include",
        given("jid_include").unwrap_or(Value::Boolean(true)),
    );
    if let Some(splay) = given("splay") {
        let splay = match &splay {
            Value::Map(_) => Value::Map(vec![
                (
                    "start".into(),
                    map_get(&splay, "start").cloned().unwrap_or(Value::Nil),
                ),
                (
                    "end".into(),
                    map_get(&splay, "end").cloned().unwrap_or(Value::Nil),
                ),
            ]),
            _ => splay,
        };
        put("splay", splay);
    }
    if let Some(when) = given("when") {
        let items = match &when {
            Value::Array(items) => items.clone(),
            one => vec![one.clone()],
        };
        for item in items {
            if crate::py::dateutil::parse(&text(&item)).is_err() {
                return refuse(&format!(
                    "Schedule item {} for \"when\" in invalid.",
                    text(&item)
                ));
            }
        }
    }
    for key in COPIED {
        if let Some(value) = given(key) {
            put(key, value);
        }
    }
    Ok(Value::Map(item))
}

/// halite's check of a job before it is sent: what the minion would refuse, said now.
fn problem(name: &str, job: &Value) -> Option<String> {
    match crate::schedule::job(name, job) {
        Err(problem) => Some(problem.to_string()),
        Ok(job) if !super::exists(&job.function) => Some(format!(
            "schedule job {name}: function: expected an execution function this minion has (sys.list_functions), not {:?}",
            job.function
        )),
        Ok(_) => None,
    }
}

pub(super) async fn add(call: &Call, ctx: &Context) -> Result<Outcome, FunctionError> {
    let request = Request::new(call, ctx, &ADD, &SCHEDULE, DEFAULT_WAIT)?;
    if let Some(refused) = request.offline() {
        return ok(refused);
    }
    let name = request.name();
    let failed = || {
        changed(
            false,
            format!("Failed to add job {name} to schedule."),
            Vec::new(),
        )
    };
    if has(&request.schedule(None).await?, &name) {
        return ok(changed(
            false,
            format!("Job {name} already exists in schedule."),
            Vec::new(),
        ));
    }
    let has_key = |key: &str| request.extra(key).is_some();
    if TIME_KEYS.iter().any(|key| has_key(key)) && (has_key("when") || has_key("cron")) {
        return ok(changed(
            false,
            "Error: Unable to use \"seconds\", \"minutes\", \"hours\", or \"days\" with \"when\" or \"cron\" options.",
            Vec::new(),
        ));
    }
    if has_key("when") && has_key("cron") {
        return ok(changed(
            false,
            "Unable to use \"when\" and \"cron\" options together.  Ignoring.",
            Vec::new(),
        ));
    }
    let item = match build_item(&request, &name, None) {
        Ok(item) => item,
        Err(refused) => return ok(refused),
    };
    if request.test() {
        return ok(changed(
            true,
            format!("Job: {name} would be added to schedule."),
            Vec::new(),
        ));
    }
    if let Some(problem) = problem(&name, &item) {
        return ok(changed(false, problem, Vec::new()));
    }
    let answer = request
        .completed(
            "add",
            vec![
                ("name", name.as_str().into()),
                ("schedule", Value::Map(vec![(name.as_str().into(), item)])),
                ("persist", request.persist().into()),
            ],
        )
        .await?;
    ok(
        match answer.and_then(|data| map_get(&data, "schedule").cloned()) {
            Some(schedule) if has(&schedule, &name) => changed(
                true,
                format!("Added job: {name} to schedule."),
                vec![(name.as_str().into(), "added".into())],
            ),
            _ => failed(),
        },
    )
}

/// Two maps with the same entries, in any order (Python's `dict` equality).
fn same(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Map(a), Value::Map(b)) => {
            a.len() == b.len()
                && a.iter().all(|(key, value)| {
                    b.iter()
                        .any(|(other, theirs)| other == key && same(value, theirs))
                })
        }
        _ => a == b,
    }
}

pub(super) async fn modify(call: &Call, ctx: &Context) -> Result<Outcome, FunctionError> {
    let request = Request::new(call, ctx, &MODIFY, &SCHEDULE, DEFAULT_WAIT)?;
    if let Some(refused) = request.offline() {
        return ok(refused);
    }
    let name = request.name();
    // Salt's order here: comment, changes, result.
    let answer = |ok: bool, comment: String, changes: Vec<(Value, Value)>| {
        Value::Map(vec![
            ("comment".into(), comment.into()),
            ("changes".into(), Value::Map(changes)),
            ("result".into(), ok.into()),
        ])
    };
    let has_key = |key: &str| request.extra(key).is_some();
    if TIME_KEYS.iter().any(|key| has_key(key)) && (has_key("when") || has_key("cron")) {
        return ok(answer(
            false,
            "Error: Unable to use \"seconds\", \"minutes\", \"hours\", or \"days\" with \"when\" option.".to_owned(),
            Vec::new(),
        ));
    }
    if has_key("when") && has_key("cron") {
        return ok(answer(
            false,
            "Unable to use \"when\" and \"cron\" options together.  Ignoring.".to_owned(),
            Vec::new(),
        ));
    }
    let current = listing(request.schedule(None).await?, true, true);
    let Some(old) = map_get(&current, &name).cloned() else {
        return ok(answer(
            false,
            format!("Job {name} does not exist in schedule."),
            Vec::new(),
        ));
    };
    let function = request
        .extra("function")
        .cloned()
        .or_else(|| map_get(&old, "function").cloned());
    let new = match build_item(&request, &name, function) {
        Ok(item) => item,
        Err(refused) => return ok(refused),
    };
    if same(&new, &old) {
        return ok(answer(
            true,
            format!("Job {name} in correct state"),
            Vec::new(),
        ));
    }
    let changes = vec![(
        name.as_str().into(),
        Value::Map(vec![("old".into(), old), ("new".into(), new.clone())]),
    )];
    if request.test() {
        return ok(answer(
            true,
            format!("Job: {name} would be modified in schedule."),
            changes,
        ));
    }
    if let Some(problem) = problem(&name, &new) {
        return ok(answer(false, problem, Vec::new()));
    }
    let mut fields = vec![("name", name.as_str().into()), ("schedule", new)];
    if has(&request.schedule(Some("opts")).await?, &name) {
        fields.push(("persist", request.persist().into()));
    } else {
        fields.push(("where", "pillar".into()));
        fields.push(("persist", false.into()));
    }
    request.service().tell("modify", fields).await?;
    ok(answer(
        true,
        format!("Modified job: {name} in schedule."),
        changes,
    ))
}

pub(super) async fn delete(call: &Call, ctx: &Context) -> Result<Outcome, FunctionError> {
    let request = Request::new(call, ctx, &DELETE, &SCHEDULE, DEFAULT_WAIT)?;
    if let Some(refused) = request.offline() {
        return ok(refused);
    }
    let name = request.name();
    let failed = || {
        changed(
            false,
            format!("Failed to delete job {name} from schedule."),
            Vec::new(),
        )
    };
    if request.test() {
        return ok(changed(
            true,
            format!("Job: {name} would be deleted from schedule."),
            Vec::new(),
        ));
    }
    let mut fields = vec![("name", Value::from(name.as_str()))];
    if has(&request.schedule(Some("opts")).await?, &name) {
        fields.push(("persist", request.persist().into()));
    } else if has(&request.schedule(Some("pillar")).await?, &name) {
        fields.push(("where", "pillar".into()));
        fields.push(("persist", false.into()));
    } else {
        return ok(changed(
            false,
            format!("Job {name} does not exist."),
            Vec::new(),
        ));
    }
    let answer = request.completed("delete", fields).await?;
    ok(
        match answer.and_then(|data| map_get(&data, "schedule").cloned()) {
            Some(schedule) if !has(&schedule, &name) => changed(
                true,
                format!("Deleted Job {name} from schedule."),
                vec![(name.as_str().into(), "removed".into())],
            ),
            _ => failed(),
        },
    )
}

/// `schedule.enable` and `schedule.disable`: the whole schedule.
pub(super) async fn switch_all(
    call: &Call,
    ctx: &Context,
    on: bool,
) -> Result<Outcome, FunctionError> {
    let request = Request::new(
        call,
        ctx,
        if on { &ENABLE } else { &DISABLE },
        &SCHEDULE,
        DEFAULT_WAIT,
    )?;
    let (verb, past) = if on {
        ("enable", "Enabled")
    } else {
        ("disable", "Disabled")
    };
    // Salt's order here: comment, changes, result.
    let answer = |ok: bool, comment: String, changes: Vec<(Value, Value)>| {
        Value::Map(vec![
            ("comment".into(), comment.into()),
            ("changes".into(), Value::Map(changes)),
            ("result".into(), ok.into()),
        ])
    };
    if request.test() {
        return ok(answer(
            true,
            format!("Schedule would be {verb}d."),
            Vec::new(),
        ));
    }
    let done = request
        .completed(verb, vec![("persist", request.persist().into())])
        .await?;
    let enabled = done
        .as_ref()
        .and_then(|data| map_get(data, "schedule"))
        .and_then(|schedule| map_get(schedule, "enabled"))
        .map(truthy);
    ok(if enabled == Some(on) {
        answer(
            true,
            format!("{past} schedule on minion."),
            vec![("schedule".into(), format!("{verb}d").into())],
        )
    } else {
        answer(
            false,
            format!("Failed to {verb} schedule on minion."),
            Vec::new(),
        )
    })
}

/// `schedule.enable_job` and `schedule.disable_job`.
pub(super) async fn switch_one(
    call: &Call,
    ctx: &Context,
    on: bool,
) -> Result<Outcome, FunctionError> {
    let request = Request::new(
        call,
        ctx,
        if on { &ENABLE_JOB } else { &DISABLE_JOB },
        &SCHEDULE,
        DEFAULT_WAIT,
    )?;
    let name = request.name();
    let (verb, past) = if on {
        ("enable", "Enabled")
    } else {
        ("disable", "Disabled")
    };
    if request.test() {
        return ok(changed(
            true,
            format!("Job: {name} would be {verb}d in schedule."),
            Vec::new(),
        ));
    }
    let mut fields = vec![("name", Value::from(name.as_str()))];
    if has(&request.schedule(Some("opts")).await?, &name) {
        fields.push(("persist", request.persist().into()));
    } else if has(&request.schedule(Some("pillar")).await?, &name) {
        fields.push(("where", "pillar".into()));
        fields.push(("persist", false.into()));
    } else {
        return ok(changed(
            false,
            format!("Job {name} does not exist."),
            Vec::new(),
        ));
    }
    let answer = request.completed(&format!("{verb}_job"), fields).await?;
    let enabled = answer
        .as_ref()
        .and_then(|data| map_get(data, "schedule"))
        .and_then(|schedule| map_get(schedule, &name))
        .map(|job| map_get(job, "enabled").is_none_or(truthy));
    ok(if enabled == Some(on) {
        changed(
            true,
            format!("{past} Job {name} in schedule."),
            vec![(name.as_str().into(), format!("{verb}d").into())],
        )
    } else {
        changed(
            false,
            format!("Failed to {verb} job {name} in schedule."),
            Vec::new(),
        )
    })
}

pub(super) async fn run_job(call: &Call, ctx: &Context) -> Result<Outcome, FunctionError> {
    let request = Request::new(call, ctx, &RUN_JOB, &SCHEDULE, DEFAULT_WAIT)?;
    let name = request.name();
    let schedule = request.schedule(None).await?;
    let Some(job) = map_get(&schedule, &name) else {
        return ok(result(false, format!("Job {name} does not exist.")));
    };
    let enabled = map_get(job, "enabled").is_none_or(truthy);
    if !enabled && !request.flag("force", false) {
        return ok(result(true, format!("Job {name} is disabled.")));
    }
    request
        .service()
        .tell("run_job", vec![("name", name.as_str().into())])
        .await?;
    ok(result(true, format!("Scheduling Job {name} on minion.")))
}

pub(super) async fn save(call: &Call, ctx: &Context) -> Result<Outcome, FunctionError> {
    let request = Request::new(call, ctx, &SAVE, &SCHEDULE, DEFAULT_WAIT)?;
    if request.test() {
        return ok(result(true, "Schedule would be saved."));
    }
    ok(
        match request.completed("save_schedule", Vec::new()).await? {
            Some(_) => result(true, "Schedule (non-pillar items) saved."),
            None => result(false, "Failed to save schedule."),
        },
    )
}

pub(super) async fn show_next_fire_time(
    call: &Call,
    ctx: &Context,
) -> Result<Outcome, FunctionError> {
    let request = Request::new(call, ctx, &SHOW_NEXT_FIRE_TIME, &SCHEDULE, DEFAULT_WAIT)?;
    let name = request.name();
    let answer = request
        .completed("get_next_fire_time", vec![("name", name.as_str().into())])
        .await?;
    let mut ret = vec![(Value::from("result"), Value::Boolean(true))];
    match answer.and_then(|data| map_get(&data, "next_fire_time").cloned()) {
        Some(next) => ret.push(("next_fire_time".into(), next)),
        None => ret.push(("comment".into(), "next fire time not available.".into())),
    }
    ok(Value::Map(ret))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Value {
        crate::salt_yaml::load(text).unwrap()
    }

    /// Salt's listing: hidden `__` jobs, only its keys, `name` and `enabled` filled in,
    /// `"true"` read as True, disabled jobs on request.
    #[test]
    fn the_listing_shows_what_salts_shows() {
        let schedule = yaml(
            "{enabled: true, job1: {function: test.ping, seconds: 10, _next_fire_time: x, func: y, splay: null, jid_include: 'true'}, idle: {function: test.ping, minutes: 1, enabled: false}, __internal: {function: test.ping, seconds: 1}}",
        );
        let listed = listing(schedule.clone(), false, true);
        assert_eq!(
            listed,
            yaml(
                "{enabled: true, job1: {function: test.ping, seconds: 10, jid_include: true, name: job1, enabled: true}, idle: {function: test.ping, minutes: 1, enabled: false, name: idle}}"
            )
        );
        let shown = listing(schedule, true, false);
        assert!(map_get(&shown, "__internal").is_some());
        assert!(map_get(&shown, "idle").is_none());
    }

    #[test]
    fn dict_equality_ignores_order() {
        assert!(same(
            &yaml("{a: 1, b: {c: 2, d: 3}}"),
            &yaml("{b: {d: 3, c: 2}, a: 1}")
        ));
        assert!(!same(&yaml("{a: 1}"), &yaml("{a: 1, b: 2}")));
    }
}
