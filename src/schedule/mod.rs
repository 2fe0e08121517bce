//! The minion's scheduler, as Salt's `schedule` option: jobs that run an execution function
//! every so often (`seconds`, `minutes`, `hours`, `days`, summed), at given times (`when`), on a
//! cron expression (`cron`) or once (`once`), within bounds (`range`, `skip_during_range`,
//! `until`, `after`), spread out (`splay`), their returns handed to returners (`returner`) and
//! to the master (`return_job`).
//!
//! This module reads the configuration ([`read`]), says when each job is due ([`Job::first_due`],
//! [`Job::next_due`]) and whether it may run then ([`Job::gate`]), and keeps the schedule that
//! `schedule.*` functions change ([`manage`]). The minion's service that runs the jobs lives
//! with the minion, above the execution functions it calls.
//!
//! Salt reads times in the minion's local time, without a time zone: so does halite. A job whose
//! configuration is wrong is refused with its name, the key and what is expected
//! ([`Problem`]); the others run.

pub mod cron;
pub mod manage;

use std::time::Duration;

use jiff::civil::DateTime;
use jiff::tz::TimeZone;
use jiff::{SignedDuration, Timestamp};

use crate::event::{Value, map_get};
use crate::py::dateutil::{self as when, Moment};
use crate::py::value::{py_str, repr};

/// The keys of the `schedule` map that are settings of the whole schedule, not jobs (Salt's).
pub const SETTINGS: [&str; 4] = ["enabled", "splay", "skip_during_range", "skip_function"];

/// The keys a job may have, as Salt's scheduler reads them (keys starting with `_` are the
/// scheduler's own, and ignored).
const JOB_KEYS: &[&str] = &[
    "function",
    "func",
    "fun",
    "args",
    "kwargs",
    "seconds",
    "minutes",
    "hours",
    "days",
    "when",
    "cron",
    "once",
    "once_fmt",
    "splay",
    "range",
    "skip_during_range",
    "until",
    "after",
    "maxrunning",
    "run_on_start",
    "enabled",
    "jid_include",
    "returner",
    "return_job",
    "return_config",
    "return_kwargs",
    "name",
    "dry_run",
];

/// Keys of Salt's scheduler that halite does not have: a job that has one is refused rather
/// than run otherwise than it says.
const UNSUPPORTED: &[&str] = &[
    "metadata",
    "run_explicit",
    "skip_explicit",
    "run_after_skip_range",
];

/// The default format of `once` (Salt's `once_fmt`).
const ONCE_FORMAT: &str = "%Y-%m-%dT%H:%M:%S";

/// The `schedule` option, read.
#[derive(Debug, Clone)]
pub struct Configured {
    /// False when `enabled: False` turns the whole schedule off.
    pub enabled: bool,
    /// The schedule's `splay`, for jobs without their own.
    pub splay: Option<Splay>,
    /// The schedule's `skip_during_range`, for jobs without their own.
    pub skip_during_range: Option<Range>,
    /// Each job in the order configured, or what is wrong with it.
    pub jobs: Vec<Result<Job, Problem>>,
}

/// One scheduled job.
#[derive(Debug, Clone)]
pub struct Job {
    /// Its key under `schedule`.
    pub key: String,
    /// Its `name`, else its key: the `schedule` of its returns, and what `maxrunning` counts.
    pub name: String,
    /// The execution function it runs.
    pub function: String,
    /// The function's positional arguments.
    pub args: Vec<Value>,
    /// The function's keyword arguments, when `kwargs` is given.
    pub kwargs: Option<Vec<(Value, Value)>>,
    /// When it runs.
    pub timing: Timing,
    /// Its own `splay`.
    pub splay: Option<Splay>,
    /// Runs only within (or, inverted, outside) this range.
    pub range: Option<Range>,
    /// Its own `skip_during_range`.
    pub skip_during_range: Option<Range>,
    /// Runs only before this.
    pub until: Option<Moment>,
    /// Runs only after this.
    pub after: Option<Moment>,
    /// How many runs of it (by [`Job::name`]) may be under way at once.
    pub maxrunning: u64,
    /// Runs as soon as the scheduler has it, then on its schedule.
    pub run_on_start: bool,
    /// False when it is configured but turned off.
    pub enabled: bool,
    /// Registered with the minion's running jobs (`saltutil.running` sees it, `maxrunning`
    /// counts it).
    pub jid_include: bool,
    /// Never run: only said (Salt's `dry_run`).
    pub dry_run: bool,
    /// The returners its return goes to.
    pub returners: Vec<String>,
    /// Whether its return goes to the master.
    pub return_job: ReturnJob,
    /// The returners' `ret_config` profile.
    pub return_config: Option<String>,
    /// The returners' `ret_kwargs`.
    pub return_kwargs: Option<Value>,
    /// The configuration as given, to tell a changed job from an unchanged one.
    pub given: Value,
}

/// When a job runs.
#[derive(Debug, Clone)]
pub enum Timing {
    /// Every so long (`seconds` + `minutes` + `hours` + `days`), the first time so long after
    /// the start.
    Every(Duration),
    /// At each of these times.
    When(Vec<Moment>),
    /// When the cron expression matches.
    Cron(Box<cron::Cron>),
    /// Once, at this time (if it is still to come).
    Once(DateTime),
    /// Only when asked (`schedule.run_job`): no time is given.
    Asked,
}

/// `splay`: a random delay added to each run.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Splay {
    /// 1 to this many seconds.
    UpTo(u64),
    /// `start` to `end` seconds.
    Between(u64, u64),
}

/// `range` or `skip_during_range`: a time span read on the day it is looked at.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Range {
    /// Its start.
    pub start: Moment,
    /// Its end.
    pub end: Moment,
    /// `invert`: the job runs outside the range instead.
    pub invert: bool,
}

/// `return_job`: whether a return goes to the master.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReturnJob {
    /// It does (Salt's default when `return_job` is not given).
    Yes,
    /// It does not.
    No,
    /// It does, for the bus only: the master does not keep it (`return_job: nocache`).
    NoCache,
}

/// A job whose configuration is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("schedule job {job}: {key}: {wrong}")]
pub struct Problem {
    /// The job's key under `schedule` (`schedule` for the option as a whole).
    pub job: String,
    /// The key at fault.
    pub key: String,
    /// What is wrong with it: most often what it should be (`expected …`) and what it was.
    pub wrong: String,
}

/// Why a due job does not run now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Skip {
    /// Outside its `range` (Salt's `not_in_range`) or inside an inverted one.
    Range,
    /// Inside a `skip_during_range` (Salt's `in_skip_range`).
    SkipRange,
    /// Its `until` has passed (`until_passed`).
    Until,
    /// Its `after` has not come (`after_not_passed`).
    After,
}

impl Skip {
    /// Salt's `_skip_reason`.
    pub fn reason(self) -> &'static str {
        match self {
            Skip::Range => "not_in_range",
            Skip::SkipRange => "in_skip_range",
            Skip::Until => "until_passed",
            Skip::After => "after_not_passed",
        }
    }
}

/// Reads the `schedule` option (absent: no jobs).
pub fn read(schedule: Option<&Value>) -> Configured {
    let mut configured = Configured {
        enabled: true,
        splay: None,
        skip_during_range: None,
        jobs: Vec::new(),
    };
    let entries = match schedule {
        None | Some(Value::Nil) => return configured,
        Some(Value::Map(entries)) => entries,
        Some(other) => {
            configured.jobs.push(Err(problem(
                "schedule",
                "schedule",
                format!(
                    "a map of job names to their configuration, not {}",
                    repr(other)
                ),
            )));
            return configured;
        }
    };
    let setting = |key: &str, expected: String| Err(problem("schedule", key, expected));
    for (name, value) in entries {
        let name = py_str(name).into_owned();
        match name.as_str() {
            "enabled" => match value {
                Value::Boolean(enabled) => configured.enabled = *enabled,
                other => configured.jobs.push(setting(
                    "enabled",
                    format!("True or False, not {}", repr(other)),
                )),
            },
            "splay" => match splay(value) {
                Ok(splay) => configured.splay = splay,
                Err(expected) => configured.jobs.push(setting("splay", expected)),
            },
            "skip_during_range" => match range(value, false) {
                Ok(range) => configured.skip_during_range = range,
                Err((key, expected)) => configured.jobs.push(setting(&key, expected)),
            },
            "skip_function" => configured.jobs.push(setting(
                "skip_function",
                "no skip_function: halite's scheduler skips a job outside its range".to_owned(),
            )),
            _ => configured.jobs.push(job(&name, value)),
        }
    }
    configured
}

fn problem(job: &str, key: &str, expected: impl Into<String>) -> Problem {
    Problem {
        job: crate::event::tag::printable(job).into_owned(),
        key: key.to_owned(),
        wrong: format!("expected {}", expected.into()),
    }
}

/// Why `name` cannot name a job, if it cannot.
pub fn name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("a job name, not nothing")
    } else if SETTINGS.contains(&name) {
        Some(
            "a job name other than enabled, splay, skip_during_range and skip_function (settings of the whole schedule)",
        )
    } else if name.chars().any(char::is_control) {
        Some("a job name without control characters")
    } else {
        None
    }
}

/// Reads one job's configuration.
pub fn job(key: &str, given: &Value) -> Result<Job, Problem> {
    let refuse = |at: &str, expected: String| problem(key, at, expected);
    if let Some(expected) = name_problem(key) {
        return Err(refuse("name", expected.to_owned()));
    }
    let Value::Map(entries) = given else {
        return Err(refuse(
            key,
            format!(
                "a map of the job's settings (function:, seconds:, …), not {}",
                repr(given)
            ),
        ));
    };
    for (name, _) in entries {
        let name = py_str(name);
        if name.starts_with('_') || JOB_KEYS.contains(&name.as_ref()) {
            continue;
        }
        let expected = if UNSUPPORTED.contains(&name.as_ref()) {
            format!(
                "none of {}: halite's scheduler does not have them",
                UNSUPPORTED.join(", ")
            )
        } else {
            format!("one of the keys {}", JOB_KEYS.join(", "))
        };
        return Err(refuse(&name, expected));
    }
    let get = |name: &str| map_get(given, name).filter(|value| !value.is_nil());
    let text = |name: &str| -> Result<Option<String>, Problem> {
        match get(name) {
            None => Ok(None),
            Some(Value::String(text)) if text.as_str().is_some_and(|t| !t.is_empty()) => {
                Ok(Some(text.as_str().unwrap_or_default().to_owned()))
            }
            Some(other) => Err(refuse(name, format!("text, not {}", repr(other)))),
        }
    };
    let flag = |name: &str, default: bool| match get(name) {
        None => Ok(default),
        Some(Value::Boolean(flag)) => Ok(*flag),
        Some(other) => Err(refuse(name, format!("True or False, not {}", repr(other)))),
    };
    let function = match (text("function")?, text("func")?, text("fun")?) {
        (Some(function), _, _) | (None, Some(function), _) | (None, None, Some(function)) => {
            function
        }
        (None, None, None) => {
            return Err(refuse(
                "function",
                "the execution function to run, such as test.ping".to_owned(),
            ));
        }
    };
    let args = match get("args") {
        None => Vec::new(),
        Some(Value::Array(args)) => args.clone(),
        Some(other) => {
            return Err(refuse(
                "args",
                format!("a list of arguments, not {}", repr(other)),
            ));
        }
    };
    let kwargs = match get("kwargs") {
        None => None,
        Some(Value::Map(kwargs)) => Some(kwargs.clone()),
        Some(other) => {
            return Err(refuse(
                "kwargs",
                format!("a map of keyword arguments, not {}", repr(other)),
            ));
        }
    };
    let timing = timing(key, given)?;
    let maxrunning = match get("maxrunning") {
        None => 1,
        Some(value) => value.as_u64().filter(|max| *max >= 1).ok_or_else(|| {
            refuse(
                "maxrunning",
                format!("a whole number from 1, not {}", repr(value)),
            )
        })?,
    };
    let returners = match get("returner") {
        None => Vec::new(),
        Some(value) => returner_names(value).ok_or_else(|| {
            refuse(
                "returner",
                format!("a returner's name or a list of them, not {}", repr(value)),
            )
        })?,
    };
    let return_job = match get("return_job") {
        None | Some(Value::Boolean(true)) => ReturnJob::Yes,
        Some(Value::Boolean(false)) => ReturnJob::No,
        Some(value) if value.as_str() == Some("nocache") => ReturnJob::NoCache,
        Some(other) => {
            return Err(refuse(
                "return_job",
                format!("True, False or nocache, not {}", repr(other)),
            ));
        }
    };
    let return_kwargs = match get("return_kwargs") {
        None => None,
        Some(map @ Value::Map(_)) => Some(map.clone()),
        Some(other) => {
            return Err(refuse(
                "return_kwargs",
                format!("a map, not {}", repr(other)),
            ));
        }
    };
    let moment = |name: &str| -> Result<Option<Moment>, Problem> {
        text(name)?
            .map(|text| when::parse(&text).map_err(|expected| refuse(name, expected)))
            .transpose()
    };
    let ranged = |name: &str| match get(name) {
        None => Ok(None),
        Some(value) => range(value, name == "range")
            .map_err(|(at, expected)| refuse(&format!("{name}:{at}"), expected)),
    };
    Ok(Job {
        key: key.to_owned(),
        name: text("name")?.unwrap_or_else(|| key.to_owned()),
        function,
        args,
        kwargs,
        timing,
        splay: match get("splay") {
            None => None,
            Some(value) => splay(value).map_err(|expected| refuse("splay", expected))?,
        },
        range: ranged("range")?,
        skip_during_range: ranged("skip_during_range")?,
        until: moment("until")?,
        after: moment("after")?,
        maxrunning,
        run_on_start: flag("run_on_start", false)?,
        enabled: flag("enabled", true)?,
        jid_include: flag("jid_include", true)?,
        dry_run: flag("dry_run", false)?,
        returners,
        return_job,
        return_config: text("return_config")?,
        return_kwargs,
        given: given.clone(),
    })
}

/// A `returner` (or the minion's `schedule_returner`): a name, or a list of names (no commas,
/// as Salt's scheduler has none), each once (a name listed twice would get each return twice);
/// `None` when it is neither.
pub fn returner_names(value: &Value) -> Option<Vec<String>> {
    let names: Option<Vec<String>> = match value {
        Value::String(_) => value.as_str().map(|name| vec![name.to_owned()]),
        Value::Array(items) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned))
            .collect(),
        _ => None,
    };
    let mut names =
        names.filter(|names| !names.is_empty() && names.iter().all(|name| !name.is_empty()))?;
    let mut seen = std::collections::HashSet::new();
    names.retain(|name| seen.insert(name.clone()));
    Some(names)
}

/// The time keys, which add up to one interval.
const INTERVAL_KEYS: [(&str, u64); 4] = [
    ("seconds", 1),
    ("minutes", 60),
    ("hours", 3600),
    ("days", 86_400),
];

/// The longest interval: ten years (a longer one is a mistake, and would overflow a timer).
const MAX_INTERVAL: u64 = 10 * 366 * 86_400;

/// `seconds`/`minutes`/`hours`/`days`, `when`, `cron` or `once`; Salt refuses two of them
/// together, and so does halite.
fn timing(key: &str, given: &Value) -> Result<Timing, Problem> {
    let refuse = |at: &str, expected: String| problem(key, at, expected);
    let has = |name: &str| map_get(given, name).is_some();
    let interval_given: Vec<&str> = INTERVAL_KEYS
        .iter()
        .map(|(k, _)| *k)
        .filter(|k| has(k))
        .collect();
    let scheduling: Vec<&str> = ["when", "cron", "once"]
        .into_iter()
        .filter(|k| has(k))
        .collect();
    if scheduling.len() > 1 || (!scheduling.is_empty() && !interval_given.is_empty()) {
        let mut given_keys = interval_given.clone();
        given_keys.extend(&scheduling);
        return Err(refuse(
            &given_keys.join("/"),
            "one way to say when the job runs: seconds/minutes/hours/days (added up), when, cron or once".to_owned(),
        ));
    }
    if !interval_given.is_empty() {
        let mut total: u64 = 0;
        for (name, unit) in INTERVAL_KEYS {
            let Some(value) = map_get(given, name) else {
                continue;
            };
            // Salt takes `int()` of each: whole numbers, their text, and floats cut down.
            let count = match value {
                Value::Integer(n) => n.as_u64(),
                Value::F64(f) if *f >= 0.0 && f.is_finite() => Some(f.trunc() as u64),
                Value::String(text) => text.as_str().and_then(|t| t.trim().parse::<u64>().ok()),
                _ => None,
            };
            let count = count.ok_or_else(|| {
                refuse(
                    name,
                    format!("a whole number of {name}, not {}", repr(value)),
                )
            })?;
            total = total.saturating_add(count.saturating_mul(unit));
        }
        if total == 0 || total > MAX_INTERVAL {
            return Err(refuse(
                &interval_given.join("/"),
                format!("an interval from 1 second to 10 years in all, not {total} seconds"),
            ));
        }
        return Ok(Timing::Every(Duration::from_secs(total)));
    }
    let text_of = |name: &str, value: &Value| -> Result<String, Problem> {
        value
            .as_str()
            .map(str::to_owned)
            .ok_or_else(|| refuse(name, format!("text, not {}", repr(value))))
    };
    if let Some(value) = map_get(given, "when") {
        let items: Vec<&Value> = match value {
            Value::Array(items) if !items.is_empty() => items.iter().collect(),
            Value::Array(_) => {
                return Err(refuse(
                    "when",
                    format!("{}, or a list of them, not []", when::EXPECTED),
                ));
            }
            one => vec![one],
        };
        let mut moments = Vec::new();
        for item in items {
            let text = text_of("when", item)?;
            moments.push(when::parse(&text).map_err(|expected| refuse("when", expected))?);
        }
        return Ok(Timing::When(moments));
    }
    if let Some(value) = map_get(given, "cron") {
        let text = text_of("cron", value)?;
        return cron::parse(&text)
            .map(|cron| Timing::Cron(Box::new(cron)))
            .map_err(|expected| refuse("cron", expected));
    }
    if let Some(value) = map_get(given, "once") {
        let text = text_of("once", value)?;
        let format = match map_get(given, "once_fmt") {
            None | Some(Value::Nil) => ONCE_FORMAT.to_owned(),
            Some(format) => text_of("once_fmt", format)?,
        };
        return DateTime::strptime(&format, &text)
            .map(Timing::Once)
            .map_err(|_| {
                refuse(
                    "once",
                    format!("a date and time in the format {format} (once_fmt), not {text:?}"),
                )
            });
    }
    Ok(Timing::Asked)
}

/// `splay`: a whole number of seconds from 1, or `{start, end}` with `end` not before `start`.
fn splay(value: &Value) -> Result<Option<Splay>, String> {
    let expected = || {
        format!(
            "a whole number of seconds from 1, or {{start: SECONDS, end: SECONDS}} with end not before start, not {}",
            repr(value)
        )
    };
    match value {
        Value::Nil => Ok(None),
        Value::Map(_) => {
            let bound = |key| map_get(value, key).and_then(Value::as_u64);
            match (bound("start"), bound("end")) {
                (Some(start), Some(end)) if end >= start && end <= MAX_INTERVAL => {
                    Ok(Some(Splay::Between(start, end)))
                }
                _ => Err(expected()),
            }
        }
        other => match other.as_u64() {
            Some(up_to) if (1..=MAX_INTERVAL).contains(&up_to) => Ok(Some(Splay::UpTo(up_to))),
            _ => Err(expected()),
        },
    }
}

/// `range` (which may be inverted) or `skip_during_range`: `{start, end}`; the key at fault
/// within it on error.
fn range(value: &Value, invertible: bool) -> Result<Option<Range>, (String, String)> {
    let Value::Map(entries) = value else {
        return Err((
            String::new(),
            format!("a map {{start: TIME, end: TIME}}, not {}", repr(value)),
        ));
    };
    let known: &[&str] = if invertible {
        &["start", "end", "invert"]
    } else {
        &["start", "end"]
    };
    if let Some((key, _)) = entries
        .iter()
        .find(|(key, _)| !known.contains(&py_str(key).as_ref()))
    {
        return Err((
            py_str(key).into_owned(),
            format!("one of the keys {}", known.join(", ")),
        ));
    }
    let moment = |key: &str| -> Result<Moment, (String, String)> {
        match map_get(value, key) {
            Some(Value::String(text)) => {
                when::parse(text.as_str().unwrap_or_default()).map_err(|e| (key.to_owned(), e))
            }
            Some(other) => Err((
                key.to_owned(),
                format!("{}, not {}", when::EXPECTED, repr(other)),
            )),
            None => Err((key.to_owned(), when::EXPECTED.to_owned())),
        }
    };
    let (start, end) = (moment("start")?, moment("end")?);
    let invert = match map_get(value, "invert") {
        None | Some(Value::Nil) => false,
        Some(Value::Boolean(invert)) => *invert,
        Some(other) => {
            return Err((
                "invert".to_owned(),
                format!("True or False, not {}", repr(other)),
            ));
        }
    };
    // Salt refuses a range whose end is not after its start; both are read on the same day,
    // so a weekday in either makes the answer depend on the day: those are checked as they run.
    if start.weekday().is_none() && end.weekday().is_none() {
        let today = jiff::ZonedDateTime::now().date();
        if let (Some(start), Some(end)) = (start.on(today), end.on(today))
            && end <= start
        {
            return Err(("end".to_owned(), "a time after the start".to_owned()));
        }
    }
    Ok(Some(Range { start, end, invert }))
}

impl Timing {
    /// The first time the job is due, counted from `now`.
    fn first(&self, now: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        let wall = wall(now, tz);
        match self {
            Timing::Every(every) => now.checked_add(*every).ok(),
            Timing::When(moments) => earliest(moments, wall, tz),
            Timing::Cron(cron) => cron.next_after(wall).map(|next| instant(next, tz)),
            // As Salt: a `once` a second or so past is still run; one longer past is not.
            Timing::Once(once) => {
                (*once >= wall - SignedDuration::from_secs(1)).then(|| instant(*once, tz))
            }
            Timing::Asked => None,
        }
    }

    /// The next time the job is due after it came due at `due`, it being `now`.
    fn after(&self, due: Timestamp, now: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        match self {
            // Counted from when it was due, so that runs do not drift; a run missed entirely
            // (the minion was stopped, the clock jumped) is not caught up more than once.
            Timing::Every(every) => {
                let next = due.checked_add(*every).ok()?;
                if next > now {
                    Some(next)
                } else {
                    now.checked_add(*every).ok()
                }
            }
            Timing::When(moments) => earliest(
                moments,
                wall(due.max(now), tz) + SignedDuration::from_secs(1),
                tz,
            ),
            Timing::Cron(cron) => cron
                .next_after(wall(due.max(now), tz))
                .map(|next| instant(next, tz)),
            Timing::Once(_) | Timing::Asked => None,
        }
    }
}

/// The first of `moments` at or after `from`.
fn earliest(moments: &[Moment], from: DateTime, tz: &TimeZone) -> Option<Timestamp> {
    moments
        .iter()
        .filter_map(|moment| moment.next(from))
        .min()
        .map(|next| instant(next, tz))
}

/// A wall clock time in whole seconds, as Salt's scheduler compares them.
fn wall(at: Timestamp, tz: &TimeZone) -> DateTime {
    let wall = tz.to_datetime(at);
    wall.with().subsec_nanosecond(0).build().unwrap_or(wall)
}

/// The instant a wall clock time stands for (the earlier one when the clock goes back, the
/// later when it skips ahead).
fn instant(wall: DateTime, tz: &TimeZone) -> Timestamp {
    tz.to_ambiguous_timestamp(wall)
        .compatible()
        .unwrap_or_else(|_| Timestamp::now())
}

impl Job {
    /// When the job is first due (before its splay), counted from `now`; `None` when it has no
    /// time to run at (it runs only when asked, or its `once` has passed).
    pub fn first_due(&self, now: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        self.timing.first(now, tz)
    }

    /// When the job is next due (before its splay), after it came due at `due`.
    pub fn next_due(&self, due: Timestamp, now: Timestamp, tz: &TimeZone) -> Option<Timestamp> {
        self.timing.after(due, now, tz)
    }

    /// Whether the job runs at `now` by its `range`, its `skip_during_range` (or the
    /// schedule's) and its `until` and `after`, each read on `now`'s day.
    pub fn gate(
        &self,
        now: Timestamp,
        tz: &TimeZone,
        schedule_skip: Option<&Range>,
    ) -> Result<(), Skip> {
        let now = wall(now, tz);
        let today = now.date();
        if let Some(range) = &self.range {
            let inside = range.contains(now);
            if inside == Some(range.invert) || inside.is_none() {
                return Err(Skip::Range);
            }
        }
        if let Some(range) = self.skip_during_range.as_ref().or(schedule_skip)
            && range.contains(now) == Some(true)
        {
            return Err(Skip::SkipRange);
        }
        if let Some(until) = self.until.and_then(|until| until.on(today))
            && until <= now
        {
            return Err(Skip::Until);
        }
        if let Some(after) = self.after.and_then(|after| after.on(today))
            && after >= now
        {
            return Err(Skip::After);
        }
        Ok(())
    }

    /// The splay this job's runs get: its own, else the schedule's.
    pub fn splay<'a>(&'a self, schedule: Option<&'a Splay>) -> Option<&'a Splay> {
        self.splay.as_ref().or(schedule)
    }

    /// The job's `fun_args` as Salt's scheduler reports them: the arguments, then the keyword
    /// arguments' map when `kwargs` is given.
    pub fn fun_args(&self) -> Value {
        let mut args = self.args.clone();
        if let Some(kwargs) = &self.kwargs {
            args.push(Value::Map(kwargs.clone()));
        }
        Value::Array(args)
    }
}

impl Range {
    /// Whether `now` is within the range read on its day (ends included); `None` when the range
    /// makes no sense that day (a date that does not exist, an end not after the start).
    fn contains(&self, now: DateTime) -> Option<bool> {
        let (start, end) = (self.start.on(now.date())?, self.end.on(now.date())?);
        (end > start).then_some(start <= now && now <= end)
    }
}

impl Splay {
    /// A delay drawn at random: 1 to N seconds, or start to end.
    pub fn draw(&self) -> Duration {
        let (low, high) = match *self {
            Splay::UpTo(high) => (1, high),
            Splay::Between(low, high) => (low, high),
        };
        Duration::from_secs(low + random() % (high - low + 1))
    }
}

/// A random number, good enough to spread jobs out (not for secrets).
fn random() -> u64 {
    use std::hash::{BuildHasher, Hasher};
    let mut hasher = std::collections::hash_map::RandomState::new().build_hasher();
    hasher.write_u128(Timestamp::now().as_nanosecond().unsigned_abs());
    hasher.finish()
}

/// The tag of the event a minion fires when a job's configuration is refused:
/// `salt/schedule/<id>/<job>/error`, with `{"error": message, "schedule": job, "id"}` (halite's,
/// as the beacons' `salt/beacon/<id>/<name>/error`).
pub fn error_tag(id: &str, job: &str) -> String {
    format!("salt/schedule/{id}/{job}/error")
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::civil::date;

    fn yaml(text: &str) -> Value {
        crate::salt_yaml::load(text).unwrap()
    }

    fn job_of(text: &str) -> Job {
        job("j", &yaml(text)).unwrap_or_else(|problem| panic!("{text}: {problem}"))
    }

    fn refused(text: &str) -> String {
        job("j", &yaml(text)).unwrap_err().to_string()
    }

    /// Wall clock times in UTC, so that the tests read the same everywhere.
    fn at(wall: DateTime) -> Timestamp {
        instant(wall, &TimeZone::UTC)
    }

    #[test]
    fn time_keys_add_up_and_runs_keep_their_beat() {
        let job = job_of("{function: test.ping, seconds: 30, minutes: '1', hours: 0.9}");
        let Timing::Every(every) = job.timing else {
            panic!("{:?}", job.timing)
        };
        assert_eq!(every, Duration::from_secs(90));
        let tz = TimeZone::UTC;
        let start = at(date(2026, 12, 3).at(10, 0, 0, 0));
        let due = job.first_due(start, &tz).unwrap();
        assert_eq!(due, at(date(2026, 12, 3).at(10, 1, 30, 0)));
        // Ran a little late: the next run is counted from when it was due.
        let late = due.checked_add(SignedDuration::from_millis(300)).unwrap();
        assert_eq!(
            job.next_due(due, late, &tz),
            Some(at(date(2026, 12, 3).at(10, 3, 0, 0)))
        );
        // Missed by more than a run: once now, then on from there.
        let asleep = due.checked_add(SignedDuration::from_secs(1000)).unwrap();
        assert_eq!(
            job.next_due(due, asleep, &tz),
            asleep.checked_add(SignedDuration::from_secs(90)).ok()
        );
    }

    #[test]
    fn when_cron_and_once_come_due_as_salts_do() {
        let tz = TimeZone::UTC;
        let now = at(date(2026, 12, 3).at(23, 30, 0, 0));
        let when = job_of("{function: test.ping, when: ['11:00pm', '11:45pm']}");
        let first = when.first_due(now, &tz).unwrap();
        assert_eq!(first, at(date(2026, 12, 3).at(23, 45, 0, 0)));
        assert_eq!(
            when.next_due(first, first, &tz),
            Some(at(date(2026, 12, 4).at(23, 0, 0, 0)))
        );
        let cron = job_of("{function: test.ping, cron: '*/15 * * * *'}");
        let first = cron.first_due(now, &tz).unwrap();
        assert_eq!(first, at(date(2026, 12, 3).at(23, 45, 0, 0)));
        assert_eq!(
            cron.next_due(first, first, &tz),
            Some(at(date(2026, 12, 4).at(0, 0, 0, 0)))
        );
        let once = job_of("{function: test.ping, once: '2026-12-04T08:00:00'}");
        assert_eq!(
            once.first_due(now, &tz),
            Some(at(date(2026, 12, 4).at(8, 0, 0, 0)))
        );
        assert_eq!(once.next_due(now, now, &tz), None);
        let past =
            job_of("{function: test.ping, once: '03/12/2026 10:00', once_fmt: '%d/%m/%Y %H:%M'}");
        assert_eq!(
            past.first_due(now, &tz),
            None,
            "a once that has passed never runs"
        );
        let asked = job_of("{function: test.ping}");
        assert_eq!(asked.first_due(now, &tz), None);
    }

    #[test]
    fn range_until_and_after_decide_whether_a_due_job_runs() {
        let tz = TimeZone::UTC;
        let office =
            job_of("{function: test.ping, seconds: 1, range: {start: '8:00am', end: '5:00pm'}}");
        let ten = at(date(2026, 12, 3).at(10, 0, 0, 0));
        let six = at(date(2026, 12, 3).at(18, 0, 0, 0));
        assert_eq!(office.gate(ten, &tz, None), Ok(()));
        assert_eq!(office.gate(six, &tz, None), Err(Skip::Range));
        let inverted = job_of(
            "{function: test.ping, seconds: 1, range: {start: '8:00am', end: '5:00pm', invert: True}}",
        );
        assert_eq!(inverted.gate(ten, &tz, None), Err(Skip::Range));
        assert_eq!(inverted.gate(six, &tz, None), Ok(()));
        let quiet = Range {
            start: when::parse("9am").unwrap(),
            end: when::parse("11am").unwrap(),
            invert: false,
        };
        let plain = job_of("{function: test.ping, seconds: 1}");
        assert_eq!(plain.gate(ten, &tz, Some(&quiet)), Err(Skip::SkipRange));
        assert_eq!(plain.gate(six, &tz, Some(&quiet)), Ok(()));
        let bounded =
            job_of("{function: test.ping, seconds: 1, after: '9am', until: '2026-12-03 12:00'}");
        assert_eq!(bounded.gate(ten, &tz, None), Ok(()));
        assert_eq!(bounded.gate(six, &tz, None), Err(Skip::Until));
        assert_eq!(
            bounded.gate(at(date(2026, 12, 3).at(8, 0, 0, 0)), &tz, None),
            Err(Skip::After)
        );
    }

    #[test]
    fn splay_draws_within_its_bounds() {
        for _ in 0..200 {
            let up_to = Splay::UpTo(3).draw().as_secs();
            assert!((1..=3).contains(&up_to), "{up_to}");
            let between = Splay::Between(5, 6).draw().as_secs();
            assert!((5..=6).contains(&between), "{between}");
        }
        assert_eq!(Splay::Between(4, 4).draw(), Duration::from_secs(4));
    }

    #[test]
    fn defaults_and_salts_spellings_are_read() {
        let job = job_of(
            "{fun: test.arg, args: [1], kwargs: {a: b}, seconds: 5, returner: [local_cache], return_job: nocache, name: shown}",
        );
        assert_eq!(job.function, "test.arg");
        assert_eq!(job.name, "shown");
        assert_eq!(
            (job.maxrunning, job.enabled, job.jid_include),
            (1, true, true)
        );
        assert_eq!(job.returners, ["local_cache"]);
        let twice =
            job_of("{function: test.ping, seconds: 5, returner: [local_cache, x, local_cache, x]}");
        assert_eq!(twice.returners, ["local_cache", "x"], "each returner once");
        assert_eq!(job.return_job, ReturnJob::NoCache);
        assert_eq!(job.fun_args(), yaml("[1, {a: b}]"));
        assert_eq!(
            job_of("{function: test.ping, minutes: 1}").return_job,
            ReturnJob::Yes
        );
        let configured = read(Some(&yaml(
            "{enabled: False, splay: {start: 1, end: 2}, one: {function: test.ping, seconds: 1}}",
        )));
        assert!(!configured.enabled);
        assert_eq!(configured.splay, Some(Splay::Between(1, 2)));
        assert_eq!(configured.jobs.len(), 1);
    }

    #[test]
    fn every_refusal_names_the_job_the_key_and_what_is_expected() {
        for (given, says) in [
            (
                "{seconds: 5}",
                "schedule job j: function: expected the execution function to run",
            ),
            (
                "{function: test.ping, seconds: -1}",
                "schedule job j: seconds: expected a whole number of seconds, not -1",
            ),
            (
                "{function: test.ping, seconds: 0}",
                "schedule job j: seconds: expected an interval from 1 second",
            ),
            (
                "{function: test.ping, seconds: 1, when: 11pm}",
                "schedule job j: seconds/when: expected one way to say when",
            ),
            (
                "{function: test.ping, cron: '* * * * *', once: '2026-12-03T10:00:00'}",
                "schedule job j: cron/once: expected one way",
            ),
            (
                "{function: test.ping, when: soonish}",
                "schedule job j: when: expected a time or date",
            ),
            (
                "{function: test.ping, cron: '99 * * * *'}",
                "schedule job j: cron: expected a cron expression",
            ),
            (
                "{function: test.ping, once: tomorrow}",
                "schedule job j: once: expected a date and time in the format %Y-%m-%dT%H:%M:%S",
            ),
            (
                "{function: test.ping, seconds: 1, splay: 0}",
                "schedule job j: splay: expected a whole number of seconds from 1",
            ),
            (
                "{function: test.ping, seconds: 1, splay: {start: 5, end: 2}}",
                "schedule job j: splay: expected",
            ),
            (
                "{function: test.ping, seconds: 1, range: {start: 5pm, end: 8am}}",
                "schedule job j: range:end: expected a time after the start",
            ),
            (
                "{function: test.ping, seconds: 1, range: {start: 8am}}",
                "schedule job j: range:end: expected a time or date",
            ),
            (
                "{function: test.ping, seconds: 1, range: {start: 8am, end: 5pm, every: day}}",
                "schedule job j: range:every: expected one of the keys start, end, invert",
            ),
            (
                "{function: test.ping, seconds: 1, maxrunning: 0}",
                "schedule job j: maxrunning: expected a whole number from 1, not 0",
            ),
            (
                "{function: test.ping, seconds: 1, enabled: 'yes'}",
                "schedule job j: enabled: expected True or False, not 'yes'",
            ),
            (
                "{function: test.ping, seconds: 1, returner: 5}",
                "schedule job j: returner: expected a returner's name or a list of them, not 5",
            ),
            (
                "{function: test.ping, seconds: 1, return_job: maybe}",
                "schedule job j: return_job: expected True, False or nocache, not 'maybe'",
            ),
            (
                "{function: test.ping, seconds: 1, args: hello}",
                "schedule job j: args: expected a list of arguments, not 'hello'",
            ),
            (
                "{function: test.ping, seconds: 1, minute: 5}",
                "schedule job j: minute: expected one of the keys function",
            ),
            (
                "{function: test.ping, seconds: 1, metadata: {a: 1}}",
                "schedule job j: metadata: expected none of metadata",
            ),
            (
                "[test.ping]",
                "schedule job j: j: expected a map of the job's settings",
            ),
        ] {
            let said = refused(given);
            assert!(said.starts_with(says), "{given}: {said}");
        }
        let configured = read(Some(&yaml("{enabled: maybe, skip_function: test.ping}")));
        let problems: Vec<String> = configured
            .jobs
            .iter()
            .map(|job| job.as_ref().unwrap_err().to_string())
            .collect();
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].starts_with("schedule job schedule: enabled: expected True or False"));
        assert!(
            problems[1]
                .starts_with("schedule job schedule: skip_function: expected no skip_function")
        );
    }
}
