//! The `beacons` option as Salt reads it: a map from beacon name to its configuration, which is
//! a list of maps (merged into one, Salt's usual form) or a map. `enabled: False` at the top
//! turns every beacon off. In each beacon's configuration the generic keys are read here and
//! the rest goes to the module.

use std::time::Duration;

use super::{Invalid, Module};
use crate::event::Value;
use crate::py::value::py_str;

/// The keys every beacon takes, whatever its module.
pub const GENERIC_KEYS: [&str; 5] = [
    "interval",
    "enabled",
    "run_once",
    "disable_during_state_run",
    "beacon_module",
];

/// The `beacons` option, read.
#[derive(Debug, Clone)]
pub struct Configured {
    /// False when `beacons: {enabled: False}` turns them all off.
    pub enabled: bool,
    /// Each beacon in the order configured, or what is wrong with its configuration.
    pub entries: Vec<Result<Entry, Problem>>,
}

/// One beacon, its generic keys read.
#[derive(Debug, Clone, PartialEq)]
pub struct Entry {
    /// Its name: the tag segment, and the key under `beacons`.
    pub name: String,
    /// The module it runs: the name, or `beacon_module`.
    pub module: &'static Module,
    /// Seconds between checks; `None` is Salt's default, every second from the start.
    pub interval: Option<Duration>,
    /// False when the beacon is configured but turned off.
    pub enabled: bool,
    /// Turned off after its first check.
    pub run_once: bool,
    /// Not checked while a `state.*` job runs.
    pub disable_during_state_run: bool,
    /// The module's options: one map, generic keys removed.
    pub options: Value,
    /// The configuration as given, to tell a changed beacon from an unchanged one.
    pub given: Value,
}

impl PartialEq for Module {
    fn eq(&self, other: &Self) -> bool {
        self.name == other.name
    }
}

/// A beacon whose configuration is refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("beacon {name}{}: {invalid}", module.as_ref().map(|m| format!(" ({m})")).unwrap_or_default())]
pub struct Problem {
    /// The beacon's name.
    pub name: String,
    /// The module it would run, when that much is known.
    pub module: Option<String>,
    /// The key at fault and what it should be.
    pub invalid: Invalid,
}

/// Reads the `beacons` option (absent: no beacons).
pub fn read(beacons: Option<&Value>) -> Configured {
    let entries = match beacons {
        None | Some(Value::Nil) => &Vec::new(),
        Some(Value::Map(entries)) => entries,
        Some(other) => {
            return Configured {
                enabled: true,
                entries: vec![Err(Problem {
                    name: "beacons".into(),
                    module: None,
                    invalid: Invalid::new(
                        "beacons",
                        format!(
                            "a map of beacon names to their configuration, not {}",
                            describe(other)
                        ),
                    ),
                })],
            };
        }
    };
    let mut configured = Configured {
        enabled: true,
        entries: Vec::new(),
    };
    for (name, config) in entries {
        let name = py_str(name).into_owned();
        if name == "enabled" {
            match config {
                Value::Boolean(enabled) => configured.enabled = *enabled,
                other => configured.entries.push(Err(Problem {
                    name: "beacons".into(),
                    module: None,
                    invalid: Invalid::new(
                        "enabled",
                        format!("True or False, not {}", describe(other)),
                    ),
                })),
            }
            continue;
        }
        configured.entries.push(entry(&name, config));
    }
    configured
}

/// Why `name` cannot name a beacon, if it cannot: it is a segment of every tag the beacon
/// fires, and `enabled` is the switch for all.
pub fn name_problem(name: &str) -> Option<&'static str> {
    if name.is_empty() {
        Some("a beacon name, not nothing")
    } else if name == "enabled" {
        Some("a beacon name other than enabled (the switch for all beacons)")
    } else if name.chars().any(char::is_control) {
        Some("a beacon name without control characters (it is part of the beacon's tags)")
    } else {
        None
    }
}

/// Reads one beacon's configuration.
pub fn entry(name: &str, given: &Value) -> Result<Entry, Problem> {
    let problem = |module: Option<&str>, invalid| Problem {
        name: crate::event::tag::printable(name).into_owned(),
        module: module.map(str::to_owned),
        invalid,
    };
    if let Some(expected) = name_problem(name) {
        return Err(problem(None, Invalid::new("name", expected)));
    }
    let merged = merge(given).map_err(|invalid| problem(None, invalid))?;
    let module_name = match map_value(&merged, "beacon_module") {
        None => name.to_owned(),
        Some(Value::String(module)) if module.as_str().is_some() => {
            module.as_str().unwrap_or_default().to_owned()
        }
        Some(other) => {
            return Err(problem(
                None,
                Invalid::new(
                    "beacon_module",
                    format!("the name of a beacon module, not {}", describe(other)),
                ),
            ));
        }
    };
    let Some(module) = super::module(&module_name) else {
        let key = if module_name == name {
            name
        } else {
            "beacon_module"
        };
        return Err(problem(
            None,
            Invalid::new(
                key,
                format!(
                    "one of the beacon modules {}, not {module_name:?} (or set beacon_module: to run one under this name)",
                    super::MODULES
                        .iter()
                        .map(|m| m.name)
                        .collect::<Vec<_>>()
                        .join(", ")
                ),
            ),
        ));
    };
    let generic = |invalid| problem(Some(module.name), invalid);
    let interval = match map_value(&merged, "interval") {
        None | Some(Value::Nil) => None,
        Some(value) => Some(interval(value).map_err(generic)?),
    };
    let flag = |key: &str, default: bool| {
        super::options::flag(map_value(&merged, key), key, default).map_err(generic)
    };
    let options = Value::Map(
        merged
            .as_map()
            .into_iter()
            .flatten()
            .filter(|(key, _)| {
                let key = key.as_str().unwrap_or_default();
                !GENERIC_KEYS.contains(&key) && !key.starts_with('_')
            })
            .cloned()
            .collect(),
    );
    Ok(Entry {
        name: name.to_owned(),
        module,
        interval,
        enabled: flag("enabled", true)?,
        run_once: flag("run_once", false)?,
        disable_during_state_run: flag("disable_during_state_run", false)?,
        options,
        given: given.clone(),
    })
}

/// The list form merged into one map (later items win, as Salt's `dict.update`), or the map.
pub fn merge(given: &Value) -> Result<Value, Invalid> {
    match given {
        Value::Map(_) => Ok(given.clone()),
        Value::Array(items) => {
            let mut merged = Vec::new();
            for (index, item) in items.iter().enumerate() {
                let Value::Map(entries) = item else {
                    return Err(Invalid::new(
                        format!("item {}", index + 1),
                        format!(
                            "a map such as `- interval: 5` (the list form is a list of maps), not {}",
                            describe(item)
                        ),
                    ));
                };
                for (key, value) in entries {
                    crate::event::map_set(&mut merged, key.clone(), value.clone());
                }
            }
            Ok(Value::Map(merged))
        }
        Value::Nil => Ok(Value::Map(Vec::new())),
        other => Err(Invalid::new(
            "configuration",
            format!(
                "a list of maps (`- interval: 5`) or a map, not {}",
                describe(other)
            ),
        )),
    }
}

fn map_value<'a>(map: &'a Value, key: &str) -> Option<&'a Value> {
    crate::event::map_get(map, key)
}

/// The shortest and the longest `interval`: a timer of less than a millisecond would spin, one
/// of more than a year is a mistake.
const INTERVALS: std::ops::RangeInclusive<f64> = 0.001..=31_536_000.0;

/// `interval`: seconds, within [`INTERVALS`].
fn interval(value: &Value) -> Result<Duration, Invalid> {
    let seconds = match value {
        Value::Integer(n) => n.as_f64(),
        Value::F64(f) => Some(*f),
        Value::F32(f) => Some(f64::from(*f)),
        _ => None,
    };
    seconds
        .filter(|s| INTERVALS.contains(s))
        .and_then(|s| Duration::try_from_secs_f64(s).ok())
        .ok_or_else(|| {
            Invalid::new(
                "interval",
                format!(
                    "a number of seconds from 0.001 to 31536000 (a year), not {}",
                    describe(value)
                ),
            )
        })
}

/// A value as a message shows it: its Python `repr`.
pub(super) fn describe(value: &Value) -> String {
    crate::py::value::repr(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn yaml(text: &str) -> Value {
        crate::salt_yaml::load(text).unwrap()
    }

    #[test]
    fn list_and_map_forms_read_the_same_and_generic_keys_are_taken_out() {
        let listed = read(Some(&yaml(
            "memusage:\n  - percent: 63%\n  - interval: 10\n  - run_once: True\n",
        )));
        let mapped = read(Some(&yaml(
            "memusage: {percent: 63%, interval: 10, run_once: True}",
        )));
        let (Ok(listed), Ok(mapped)) = (&listed.entries[0], &mapped.entries[0]) else {
            panic!("{listed:?} {mapped:?}");
        };
        assert_eq!(listed.interval, Some(Duration::from_secs(10)));
        assert!(listed.run_once && listed.enabled && !listed.disable_during_state_run);
        assert_eq!(listed.options, yaml("{percent: 63%}"));
        assert_eq!(listed.options, mapped.options);
        assert_eq!(listed.interval, mapped.interval);
    }

    #[test]
    fn beacon_module_runs_one_module_under_several_names() {
        let configured = read(Some(&yaml(
            "mem_a: [{beacon_module: memusage}, {percent: 10}]\nmem_b: {beacon_module: memusage, percent: 90}\nenabled: False\n",
        )));
        assert!(!configured.enabled);
        let names: Vec<_> = configured
            .entries
            .iter()
            .map(|e| {
                let e = e.as_ref().unwrap();
                (e.name.as_str(), e.module.name)
            })
            .collect();
        assert_eq!(names, [("mem_a", "memusage"), ("mem_b", "memusage")]);
    }

    #[test]
    fn every_bad_shape_names_the_beacon_the_key_and_what_is_expected() {
        let problem = |text: &str| {
            read(Some(&yaml(text))).entries[0]
                .clone()
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            problem("memusage: [{interval: 0}]"),
            "beacon memusage (memusage): interval: expected a number of seconds from 0.001 to 31536000 (a year), not 0"
        );
        assert!(problem("memusage: [{interval: -1}]").contains("not -1"));
        assert!(problem("memusage: [{interval: 1.0e-10}]").contains("interval: expected"));
        assert!(problem("memusage: [{interval: 1.0e+19}]").contains("interval: expected"));
        assert!(
            problem("enabled: 'no'").starts_with("beacon beacons: enabled: expected True or False")
        );
        assert!(problem("memusage: [{interval: soon}]").contains("not 'soon'"));
        assert!(
            problem("memusage: [{enabled: maybe}]").contains("enabled: expected True or False")
        );
        assert!(
            problem("nosuch: []")
                .starts_with("beacon nosuch: nosuch: expected one of the beacon modules")
        );
        assert!(problem("x: [{beacon_module: nosuch}]").contains("beacon_module: expected one of"));
        assert!(problem("memusage: [percent]").contains("item 1: expected a map"));
        assert!(problem("memusage: 5").contains("configuration: expected a list of maps"));
        assert!(
            problem("'': [{beacon_module: memusage}]").contains("name: expected a beacon name")
        );
        assert!(
            problem("\"a\\tb\": [{beacon_module: memusage}]")
                .contains("without control characters")
        );
        assert_eq!(
            read(Some(&yaml("[memusage]"))).entries[0]
                .clone()
                .unwrap_err()
                .invalid
                .key,
            "beacons"
        );
    }
}
