//! `service`: whether services run, one event per service with the service's name as the tag
//! suffix and Salt's data, `{"<name>": {"running": bool[, "uncleanshutdown": bool]},
//! "service_name": "<name>"}`.
//!
//! ```yaml
//! beacons:
//!   service:
//!     - services:
//!         nginx:
//!           onchangeonly: True
//!           delay: 30
//!           emitatstartup: False
//!           uncleanshutdown: /run/nginx.pid
//!         salt-master: {}
//! ```
//!
//! Per service, as Salt's module: without `onchangeonly` every check fires; with it, a check
//! fires when the state differs from the last one seen (and at the first check, unless
//! `emitatstartup: False`); with a `delay` of N seconds as well, it fires at the first check
//! whose distance from the change, rounded to whole seconds, is more than N (a change back
//! within the delay starts it again). `uncleanshutdown` names a pid file: a service that does
//! not run gets `uncleanshutdown: True` when the file is still there, False when not.
//!
//! Running means: where systemd runs the machine (`/run/systemd/system` exists), what
//! `systemctl is-active` answers for the unit (active or reloading); for a name systemd does
//! not know, and on machines without systemd, whether a process has that name, psutil's (see
//! [`super::procs`]) or its first argument's file name. Salt's `service.status` without systemd
//! searches `ps` lines for the name as a regular expression; halite wants the name whole, so an
//! editor open on `nginx.conf` is not nginx running. A script run by an interpreter has the
//! interpreter's name; give its unit where systemd runs it.
//!
//! Salt keeps the last states in one table for every `service` beacon of the minion; halite
//! keeps them per beacon, so two beacons watching one service do not steal each other's
//! changes.

use std::collections::HashMap;
use std::process::Command;
use std::time::{Duration, Instant};

use super::options::{flag, known, map, only, seconds, text};
use super::procs::processes;
use super::{Beacon, Host, Invalid, Module, Options};
use crate::event::{Value, map_get};
use crate::py::value::py_str;

pub(super) const MODULE: Module = Module {
    name: "service",
    build,
    closes: false,
};

/// Exists when systemd is PID 1 (`sd_booted`).
const SYSTEMD_BOOTED: &str = "/run/systemd/system";

const SERVICE_KEYS: [&str; 4] = ["onchangeonly", "delay", "emitatstartup", "uncleanshutdown"];

/// One service and how it is reported.
#[derive(Debug, Clone, PartialEq)]
struct Watched {
    name: String,
    onchangeonly: bool,
    delay: Duration,
    emitatstartup: bool,
    uncleanshutdown: Option<String>,
}

fn build(options: &Options) -> Result<Box<dyn Beacon>, Invalid> {
    only(options, &["services"])?;
    let services = options.get("services").ok_or_else(|| {
        Invalid::new(
            "services",
            "a map of service names to their options ({} for none)",
        )
    })?;
    let mut watched = Vec::new();
    for (name, given) in map(services, "services")? {
        let name = py_str(name).into_owned();
        let path = format!("services:{name}");
        let entries = map(given, &path)?;
        known(entries, &path, &SERVICE_KEYS)?;
        let get = |key: &str| map_get(given, key);
        let key = |key: &str| format!("{path}:{key}");
        watched.push(Watched {
            onchangeonly: flag(get("onchangeonly"), &key("onchangeonly"), false)?,
            delay: get("delay")
                .map(|delay| seconds(delay, &key("delay")))
                .transpose()?
                .unwrap_or_default(),
            emitatstartup: flag(get("emitatstartup"), &key("emitatstartup"), true)?,
            uncleanshutdown: get("uncleanshutdown")
                .map(|file| text(file, &key("uncleanshutdown"), "the path of a pid file"))
                .transpose()?,
            name,
        });
    }
    Ok(Box::new(Service {
        watched,
        last: HashMap::new(),
        host: options.host.clone(),
    }))
}

struct Service {
    watched: Vec<Watched>,
    /// The state last reported (or held back) per service, and since when a delayed change
    /// waits.
    last: HashMap<String, Last>,
    host: Host,
}

#[derive(Debug, Clone, Copy)]
struct Last {
    running: bool,
    changed: Option<Instant>,
}

impl Beacon for Service {
    fn check(&mut self) -> Result<Vec<Value>, String> {
        let running = running(&self.host, &self.watched)?;
        let now = Instant::now();
        let mut events = Vec::new();
        for (service, running) in self.watched.iter().zip(running) {
            if fires(&mut self.last, service, running, now) {
                events.push(self.event(service, running));
            }
        }
        Ok(events)
    }
}

impl Service {
    fn event(&self, service: &Watched, running: bool) -> Value {
        let mut state = vec![("running".into(), running.into())];
        if let (Some(file), false) = (&service.uncleanshutdown, running) {
            state.push((
                "uncleanshutdown".into(),
                self.host.path(file).exists().into(),
            ));
        }
        Value::Map(vec![
            (service.name.as_str().into(), Value::Map(state)),
            ("service_name".into(), service.name.as_str().into()),
            ("tag".into(), service.name.as_str().into()),
        ])
    }
}

/// Whether this check reports `service`, by Salt's rules for `onchangeonly`, `emitatstartup`
/// and `delay`.
fn fires(last: &mut HashMap<String, Last>, service: &Watched, running: bool, now: Instant) -> bool {
    if !service.onchangeonly {
        return true;
    }
    let delayed = !service.delay.is_zero();
    let mut fire = false;
    let seen = match last.get_mut(&service.name) {
        Some(seen) => seen,
        None => {
            let seen = last.entry(service.name.clone()).or_insert(Last {
                running,
                changed: None,
            });
            if !service.emitatstartup {
                return false;
            }
            if delayed {
                seen.changed = Some(now);
            } else {
                fire = true;
            }
            seen
        }
    };
    if seen.running != running {
        *seen = Last {
            running,
            changed: delayed.then_some(now),
        };
        fire |= !delayed;
    }
    if let Some(changed) = seen.changed {
        // Salt compares whole seconds, rounded half to even as Python's round().
        let elapsed = now.duration_since(changed).as_secs_f64().round_ties_even();
        if elapsed > service.delay.as_secs_f64() {
            seen.changed = None;
            fire = true;
        }
    }
    fire
}

/// Whether each service runs.
fn running(host: &Host, watched: &[Watched]) -> Result<Vec<bool>, String> {
    let mut states: Vec<Option<bool>> = if host.path(SYSTEMD_BOOTED).is_dir() && !watched.is_empty()
    {
        systemd_states(watched)?
    } else {
        vec![None; watched.len()]
    };
    if states.iter().any(Option::is_none) {
        let running = processes(host)?;
        for (state, service) in states.iter_mut().zip(watched) {
            if state.is_none() {
                *state = Some(running.iter().any(|process| {
                    process.name == service.name
                        || process.program.as_deref() == Some(service.name.as_str())
                }));
            }
        }
    }
    Ok(states
        .into_iter()
        .map(|state| state == Some(true))
        .collect())
}

/// What systemd says of each service (one `systemctl show` for all): active or not, or `None`
/// for a name it has no unit for.
fn systemd_states(watched: &[Watched]) -> Result<Vec<Option<bool>>, String> {
    let out = Command::new("systemctl")
        .args(["show", "--property=LoadState,ActiveState", "--"])
        .args(watched.iter().map(|service| service.name.as_str()))
        .output()
        .map_err(|err| format!("cannot run systemctl: {err}"))?;
    if !out.status.success() {
        return Err(format!(
            "systemctl show failed ({}): {}",
            out.status,
            String::from_utf8_lossy(&out.stderr).trim()
        ));
    }
    let states = unit_states(&String::from_utf8_lossy(&out.stdout));
    if states.len() != watched.len() {
        return Err(format!(
            "systemctl show described {} units for {} services",
            states.len(),
            watched.len()
        ));
    }
    Ok(states)
}

/// `systemctl show`'s blocks, one per unit in the order asked, separated by blank lines.
fn unit_states(out: &str) -> Vec<Option<bool>> {
    out.split("\n\n")
        .filter(|block| !block.trim().is_empty())
        .map(|block| {
            let property = |name: &str| {
                block.lines().find_map(|line| {
                    line.strip_prefix(name)
                        .and_then(|rest| rest.strip_prefix('='))
                })
            };
            match property("LoadState") {
                Some("not-found") => None,
                _ => Some(matches!(
                    property("ActiveState"),
                    Some("active" | "reloading")
                )),
            }
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn watched(onchangeonly: bool, delay: u64, emitatstartup: bool) -> Watched {
        Watched {
            name: "nginx".into(),
            onchangeonly,
            delay: Duration::from_secs(delay),
            emitatstartup,
            uncleanshutdown: None,
        }
    }

    /// Runs the checks `(seconds from start, running)` and returns the seconds of those that
    /// fire.
    fn run(service: &Watched, checks: &[(f64, bool)]) -> Vec<f64> {
        let start = Instant::now();
        let mut last = HashMap::new();
        checks
            .iter()
            .filter(|(at, running)| {
                fires(
                    &mut last,
                    service,
                    *running,
                    start + Duration::from_millis((at * 1000.0) as u64),
                )
            })
            .map(|(at, _)| *at)
            .collect()
    }

    #[test]
    fn without_onchangeonly_every_check_fires() {
        let checks = [(0.0, true), (1.0, true), (2.0, false)];
        assert_eq!(run(&watched(false, 5, false), &checks), [0.0, 1.0, 2.0]);
    }

    #[test]
    fn onchangeonly_fires_at_startup_and_on_changes() {
        let checks = [
            (0.0, true),
            (1.0, true),
            (2.0, false),
            (3.0, false),
            (4.0, true),
        ];
        assert_eq!(run(&watched(true, 0, true), &checks), [0.0, 2.0, 4.0]);
        assert_eq!(run(&watched(true, 0, false), &checks), [2.0, 4.0]);
    }

    #[test]
    fn delay_fires_once_the_rounded_seconds_since_the_change_exceed_it() {
        // Startup counts as a change; 1.4 s rounds to 1, which is not more than 1.
        let checks = [
            (0.0, true),
            (1.0, true),
            (1.4, true),
            (1.6, true),
            (3.0, true),
        ];
        assert_eq!(run(&watched(true, 1, true), &checks), [1.6]);
        // A change back within the delay starts it again; the state reported is the last one.
        let checks = [
            (0.0, true),
            (2.0, true),
            (3.0, false),
            (3.5, true),
            (4.0, true),
            (5.6, true),
            (6.0, false),
            (7.0, false),
            (8.0, false),
        ];
        assert_eq!(run(&watched(true, 1, false), &checks), [5.6, 8.0]);
    }

    #[test]
    fn systemctl_show_blocks_read_in_order() {
        let out = "LoadState=loaded\nActiveState=active\n\nLoadState=not-found\nActiveState=inactive\n\nActiveState=failed\nLoadState=loaded\n";
        assert_eq!(unit_states(out), [Some(true), None, Some(false)]);
    }

    #[test]
    fn bad_options_name_the_service_and_key() {
        let host = Host::real();
        let invalid = |yaml: &str| {
            let config = crate::salt_yaml::load(yaml).unwrap();
            build(&Options {
                name: "service",
                config: &config,
                host: &host,
            })
            .err()
            .unwrap()
        };
        assert_eq!(invalid("{}").key, "services");
        assert_eq!(invalid("{services: [nginx]}").key, "services");
        assert_eq!(invalid("{services: {nginx: 5}}").key, "services:nginx");
        assert_eq!(
            invalid("{services: {nginx: {delay: soon}}}").key,
            "services:nginx:delay"
        );
        assert_eq!(
            invalid("{services: {nginx: {onchangeonly: 1}}}").key,
            "services:nginx:onchangeonly"
        );
        assert_eq!(
            invalid("{services: {nginx: {uncleanshutdown: ''}}}").key,
            "services:nginx:uncleanshutdown"
        );
        assert_eq!(
            invalid("{services: {nginx: {onchange: True}}}").key,
            "services:nginx:onchange"
        );
        assert_eq!(invalid("{services: {}, extra: 1}").key, "extra");
    }
}
