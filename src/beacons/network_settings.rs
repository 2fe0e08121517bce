//! `network_settings`: fires when a watched setting of a network interface changes,
//! `{"interface", "change": {setting: new value}}` tagged with the interface's name, or one
//! `{"changes": {interface: {setting: new value}}}` tagged `result` with `coalesce: True`.
//!
//! Options as Salt's: `interfaces`, a map of interface names to the settings watched on each,
//! by pyroute2's names ([`ATTRS`]: `ipaddr`, `operstate`, `mtu`, `address`, `broadcast`,
//! `promiscuity`, …), each empty (any change) or `{onvalue: value}` (a change to that value);
//! and `coalesce`. A name that is not an interface of the system is a Python regular
//! expression searched for in the names (`eth` and `eth*` watch `eth0`, `eth1` and `veth0`),
//! and its settings then apply to those it finds, as Salt's. The first check reads the
//! settings, the next ones tell what changed since the one before; an interface that appears
//! later is first read, then watched. The settings are the kernel's (rtnetlink), shaped as
//! pyroute2's IPDB view, which Salt's module reads, shows them; `ports` are the indexes of the
//! interfaces whose controller this one is (pyroute2's view gives an interface's own index),
//! and `onvalue: 0` waits for 0 (Salt takes a false `onvalue` for none).

use std::collections::HashMap;

use super::netlink::{Link, Needs, links};
use super::{Beacon, Invalid, Module, Options};
use crate::event::{Value, map_set};
use crate::py::re::{Anchoring, Regex};
use crate::py::value::{py_str, repr};

pub(super) const MODULE: Module = Module {
    name: "network_settings",
    build,
    closes: false,
};

/// The settings that can be watched, by pyroute2's names (Salt's list).
pub(super) const ATTRS: [&str; 24] = [
    "family",
    "txqlen",
    "ipdb_scope",
    "index",
    "operstate",
    "group",
    "carrier_changes",
    "ipaddr",
    "neighbours",
    "ifname",
    "promiscuity",
    "linkmode",
    "broadcast",
    "address",
    "num_tx_queues",
    "ipdb_priority",
    "kind",
    "qdisc",
    "mtu",
    "num_rx_queues",
    "carrier",
    "flags",
    "ifi_type",
    "ports",
];

/// Where the interfaces are read: the kernel on a minion, made-up snapshots in tests.
type Read = Box<dyn FnMut(Needs) -> Result<Vec<Link>, String> + Send>;

fn build(options: &Options) -> Result<Box<dyn Beacon>, Invalid> {
    Ok(Box::new(settings_beacon(options, Box::new(links))?))
}

fn settings_beacon(options: &Options, read: Read) -> Result<NetworkSettings, Invalid> {
    options.only(&["interfaces", "coalesce"])?;
    let entries = match options.get("interfaces") {
        Some(Value::Map(entries)) if !entries.is_empty() => entries,
        other => {
            return Err(Invalid::new(
                "interfaces",
                format!(
                    "a map of interface names to the settings watched, such as \
                     {{eth0: {{ipaddr: null, promiscuity: {{onvalue: 1}}}}}}{}",
                    other.map_or(" (it is required)".into(), |v| format!(", not {}", repr(v)))
                ),
            ));
        }
    };
    let watched = entries
        .iter()
        .map(|(name, settings)| watched(&py_str(name), settings))
        .collect::<Result<Vec<_>, _>>()?;
    let needs = Needs {
        addresses: watched
            .iter()
            .any(|w| w.settings.iter().any(|(s, _)| *s == "ipaddr")),
        neighbours: watched
            .iter()
            .any(|w| w.settings.iter().any(|(s, _)| *s == "neighbours")),
    };
    Ok(NetworkSettings {
        watched,
        coalesce: options.flag("coalesce", false)?,
        needs,
        last: None,
        read,
    })
}

struct Watched {
    /// The name as configured: an interface's, or a pattern.
    name: String,
    /// The name searched for in the interfaces' names.
    pattern: Regex,
    /// Each setting watched, and the value it must change to when `onvalue` is given.
    settings: Vec<(&'static str, Option<Value>)>,
}

fn watched(name: &str, settings: &Value) -> Result<Watched, Invalid> {
    let key = format!("interfaces:{name}");
    let pattern = Regex::new(&format!("(?s:.*?)(?:{name})"), Anchoring::Match, name)
        .map_err(|err| Invalid::new(&key, format!("an interface name or a pattern: {err}")))?;
    let Value::Map(entries) = settings else {
        return Err(Invalid::new(
            &key,
            format!(
                "a map of the settings watched ({}), not {}",
                ATTRS.join(", "),
                repr(settings)
            ),
        ));
    };
    let settings = entries
        .iter()
        .map(|(setting, watch)| {
            let setting = py_str(setting);
            let key = format!("{key}:{setting}");
            let setting = ATTRS
                .iter()
                .find(|attr| **attr == setting)
                .ok_or_else(|| Invalid::new(&key, format!("one of {}", ATTRS.join(", "))))?;
            let onvalue = match watch {
                Value::Nil => None,
                Value::Map(entries) if entries.len() == 1 => Some(
                    crate::event::map_get(watch, "onvalue")
                        .cloned()
                        .ok_or_else(|| {
                            Invalid::new(&key, "empty, or {onvalue: the value to fire on}")
                        })?,
                ),
                other => {
                    return Err(Invalid::new(
                        &key,
                        format!(
                            "empty, or {{onvalue: the value to fire on}}, not {}",
                            repr(other)
                        ),
                    ));
                }
            };
            Ok((*setting, onvalue))
        })
        .collect::<Result<Vec<_>, Invalid>>()?;
    Ok(Watched {
        name: name.to_owned(),
        pattern,
        settings,
    })
}

struct NetworkSettings {
    watched: Vec<Watched>,
    coalesce: bool,
    needs: Needs,
    /// Each interface's settings at the check before, from the first check on.
    last: Option<HashMap<String, Vec<(&'static str, Value)>>>,
    read: Read,
}

impl Beacon for NetworkSettings {
    fn check(&mut self) -> Result<Vec<Value>, String> {
        let now = (self.read)(self.needs)?;
        let Some(last) = self.last.as_mut() else {
            self.last = Some(now.into_iter().map(|l| (l.name, l.settings)).collect());
            return Ok(Vec::new());
        };
        let mut changes = Vec::new();
        for (link, watched) in watching(&self.watched, &now) {
            let Some(before) = last.get_mut(&link.name) else {
                last.insert(link.name.clone(), link.settings.clone());
                continue;
            };
            let mut change = Vec::new();
            for (setting, onvalue) in &watched.settings {
                let value = setting_of(&link.settings, setting);
                if setting_of(before, setting) == value {
                    continue;
                }
                let value = value.cloned().unwrap_or(Value::Nil);
                if onvalue.as_ref().is_none_or(|onvalue| *onvalue == value) {
                    map_set(&mut change, (*setting).into(), value);
                }
            }
            *before = link.settings.clone();
            if !change.is_empty() {
                changes.push((link.name.as_str(), Value::Map(change)));
            }
        }
        Ok(match self.coalesce {
            true if changes.is_empty() => Vec::new(),
            true => vec![Value::Map(vec![
                ("tag".into(), "result".into()),
                (
                    "changes".into(),
                    Value::Map(changes.into_iter().map(|(n, c)| (n.into(), c)).collect()),
                ),
            ])],
            false => changes
                .into_iter()
                .map(|(name, change)| {
                    Value::Map(vec![
                        ("tag".into(), name.into()),
                        ("interface".into(), name.into()),
                        ("change".into(), change),
                    ])
                })
                .collect(),
        })
    }
}

fn setting_of<'a>(settings: &'a [(&'static str, Value)], name: &str) -> Option<&'a Value> {
    settings
        .iter()
        .find(|(setting, _)| *setting == name)
        .map(|(_, value)| value)
}

/// The interfaces watched, in Salt's order (as configured; those a pattern finds in the
/// system's order), each with its settings: a pattern's override a name's, a later
/// pattern's an earlier one's.
fn watching<'a>(watched: &'a [Watched], now: &'a [Link]) -> Vec<(&'a Link, &'a Watched)> {
    let mut order: Vec<&Link> = Vec::new();
    let mut named: HashMap<&str, &Watched> = HashMap::new();
    let mut found: HashMap<&str, &Watched> = HashMap::new();
    for watch in watched {
        let exact: Vec<&Link> = now.iter().filter(|link| link.name == watch.name).collect();
        let links = match exact.is_empty() {
            false => {
                named.insert(&watch.name, watch);
                exact
            }
            true => {
                let links: Vec<&Link> = now
                    .iter()
                    .filter(|link| watch.pattern.is_match(&link.name))
                    .collect();
                for link in &links {
                    found.insert(&link.name, watch);
                }
                links
            }
        };
        for link in links {
            if !order.iter().any(|seen| seen.name == link.name) {
                order.push(link);
            }
        }
    }
    order
        .into_iter()
        .filter_map(|link| {
            let watch = found
                .get(link.name.as_str())
                .or(named.get(link.name.as_str()))?;
            Some((link, *watch))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;
    use crate::beacons::Host;
    use crate::py::json::{Format, to_string};

    fn link(name: &str, index: u32, mtu: u32, ipaddr: &[(&str, u8)], promiscuity: u32) -> Link {
        let pairs = ipaddr
            .iter()
            .map(|(ip, len)| Value::Array(vec![(*ip).into(), (*len).into()]))
            .collect();
        Link {
            name: name.to_owned(),
            settings: vec![
                ("index", index.into()),
                ("ifname", name.into()),
                ("mtu", mtu.into()),
                ("ipaddr", Value::Array(pairs)),
                ("promiscuity", promiscuity.into()),
                ("operstate", "UP".into()),
            ],
        }
    }

    /// A beacon reading `snapshots` one per check, and the events of each check as JSON.
    fn run(config: &str, snapshots: Vec<Vec<Link>>) -> Vec<String> {
        let config = crate::salt_yaml::load(config).expect("yaml");
        let host = Host::real();
        let checks = snapshots.len();
        let snapshots = Arc::new(Mutex::new(snapshots.into_iter()));
        let read: Read = Box::new(move |_| Ok(snapshots.lock().unwrap().next().unwrap()));
        let mut beacon = settings_beacon(
            &Options {
                name: "network_settings",
                config: &config,
                host: &host,
            },
            read,
        )
        .unwrap();
        (0..checks)
            .map(|_| {
                let events = beacon.check().unwrap();
                events
                    .iter()
                    .map(|event| to_string(event, Format::COMPACT))
                    .collect::<Vec<_>>()
                    .join("\n")
            })
            .collect()
    }

    #[test]
    fn changes_of_watched_settings_fire_tagged_with_the_interface() {
        let events = run(
            "interfaces: {eth0: {ipaddr: null, promiscuity: {onvalue: 1}}}",
            vec![
                vec![link("eth0", 2, 1500, &[], 0)],
                vec![link("eth0", 2, 9000, &[], 0)],
                vec![link("eth0", 2, 9000, &[("10.0.0.2", 24)], 2)],
                vec![link("eth0", 2, 9000, &[("10.0.0.2", 24)], 1)],
                vec![link("eth0", 2, 9000, &[("10.0.0.2", 24)], 1)],
            ],
        );
        assert_eq!(
            events,
            [
                "",
                "",
                r#"{"tag": "eth0", "interface": "eth0", "change": {"ipaddr": [["10.0.0.2", 24]]}}"#,
                r#"{"tag": "eth0", "interface": "eth0", "change": {"promiscuity": 1}}"#,
                "",
            ]
        );
    }

    #[test]
    fn patterns_find_interfaces_and_coalesce_makes_one_event() {
        let events = run(
            "coalesce: True\ninterfaces: {'eth*': {mtu: null}, lo: {mtu: {onvalue: 0}}}",
            vec![
                vec![link("lo", 1, 65536, &[], 0), link("eth0", 2, 1500, &[], 0)],
                vec![
                    link("lo", 1, 0, &[], 0),
                    link("eth0", 2, 1400, &[], 0),
                    link("eth1", 3, 1500, &[], 0),
                ],
                vec![
                    link("lo", 1, 0, &[], 0),
                    link("eth0", 2, 1400, &[], 0),
                    link("eth1", 3, 1280, &[], 0),
                ],
            ],
        );
        assert_eq!(
            events,
            [
                "",
                r#"{"tag": "result", "changes": {"eth0": {"mtu": 1400}, "lo": {"mtu": 0}}}"#,
                r#"{"tag": "result", "changes": {"eth1": {"mtu": 1280}}}"#,
            ]
        );
    }

    #[test]
    fn bad_settings_are_named() {
        let key = |config: &str| {
            let config = crate::salt_yaml::load(config).expect("yaml");
            let host = Host::real();
            let options = Options {
                name: "network_settings",
                config: &config,
                host: &host,
            };
            settings_beacon(&options, Box::new(|_| Ok(Vec::new())))
                .err()
                .map(|err| err.key)
        };
        assert_eq!(key("{}").as_deref(), Some("interfaces"));
        assert_eq!(key("interfaces: [eth0]").as_deref(), Some("interfaces"));
        assert_eq!(
            key("interfaces: {eth0: null}").as_deref(),
            Some("interfaces:eth0")
        );
        assert_eq!(
            key("interfaces: {eth0: {ip: null}}").as_deref(),
            Some("interfaces:eth0:ip")
        );
        assert_eq!(
            key("interfaces: {eth0: {mtu: {above: 3}}}").as_deref(),
            Some("interfaces:eth0:mtu")
        );
        assert_eq!(
            key("interfaces: {'eth[': {mtu: null}}").as_deref(),
            Some("interfaces:eth[")
        );
        assert_eq!(
            key("interfaces: {eth0: {mtu: null}}\ncoalesce: often").as_deref(),
            Some("coalesce")
        );
        assert_eq!(
            key("interfaces: {eth0: {mtu: null}}\nwhat: 1").as_deref(),
            Some("what")
        );
    }
}
