//! `network_info`: fires `{"interface", "network_info": {counters}}` when an interface's
//! counters meet the values configured for it.
//!
//! Options as Salt's: `interfaces`, a map of interface name to its counters (`bytes_sent`,
//! `bytes_recv`, `packets_sent`, `packets_recv`, `errin`, `errout`, `dropin`, `dropout`) with
//! a value each, and `type`: `equal` (the default: fire when a counter equals its value) or
//! `greater` (fire when one is above it). The event carries all eight counters, read from
//! `/proc/net/dev` as psutil (which Salt's module reads) reads them. An interface the system
//! does not have is skipped until it has it.

use super::{Beacon, Host, Invalid, Module, Options};
use crate::event::Value;
use crate::py::value::{py_str, repr};

pub(super) const MODULE: Module = Module {
    name: "network_info",
    build,
    closes: false,
};

/// psutil's names of the counters, in the order of its `snetio` (and of the event).
const COUNTERS: [&str; 8] = [
    "bytes_sent",
    "bytes_recv",
    "packets_sent",
    "packets_recv",
    "errin",
    "errout",
    "dropin",
    "dropout",
];

fn build(options: &Options) -> Result<Box<dyn Beacon>, Invalid> {
    options.only(&["interfaces"])?;
    let entries = match options.get("interfaces") {
        Some(Value::Map(entries)) if !entries.is_empty() => entries,
        other => {
            return Err(Invalid::new(
                "interfaces",
                format!(
                    "a map of interface names to counters and their values, such as \
                     {{eth0: {{type: greater, errin: 100}}}}{}",
                    other.map_or(" (it is required)".into(), |v| format!(", not {}", repr(v)))
                ),
            ));
        }
    };
    let interfaces = entries
        .iter()
        .map(|(name, watch)| watched(&py_str(name), watch))
        .collect::<Result<_, _>>()?;
    Ok(Box::new(NetworkInfo {
        interfaces,
        host: options.host.clone(),
    }))
}

struct Watched {
    interface: String,
    greater: bool,
    /// The value given for each counter watched, by its index in [`COUNTERS`].
    values: Vec<(usize, u64)>,
}

fn watched(interface: &str, watch: &Value) -> Result<Watched, Invalid> {
    let key = |name: &str| format!("interfaces:{interface}:{name}");
    let Value::Map(entries) = watch else {
        return Err(Invalid::new(
            format!("interfaces:{interface}"),
            format!("a map of counters to values, not {}", repr(watch)),
        ));
    };
    let mut greater = false;
    let mut values = Vec::new();
    for (name, value) in entries {
        let name = py_str(name);
        if name == "type" {
            greater = match value.as_str() {
                Some("equal") => false,
                Some("greater") => true,
                _ => {
                    return Err(Invalid::new(
                        key("type"),
                        format!("equal or greater, not {}", repr(value)),
                    ));
                }
            };
            continue;
        }
        let index = COUNTERS.iter().position(|c| *c == name).ok_or_else(|| {
            Invalid::new(
                key(&name),
                format!("type or a counter: {}", COUNTERS.join(", ")),
            )
        })?;
        let threshold = match value {
            Value::Integer(n) => n.as_u64(),
            Value::String(text) => text.as_str().and_then(|t| t.trim().parse().ok()),
            _ => None,
        }
        .ok_or_else(|| Invalid::new(key(&name), format!("a whole number, not {}", repr(value))))?;
        values.push((index, threshold));
    }
    if values.is_empty() {
        return Err(Invalid::new(
            format!("interfaces:{interface}"),
            format!("at least one counter: {}", COUNTERS.join(", ")),
        ));
    }
    Ok(Watched {
        interface: interface.to_owned(),
        greater,
        values,
    })
}

struct NetworkInfo {
    interfaces: Vec<Watched>,
    host: Host,
}

impl Beacon for NetworkInfo {
    fn check(&mut self) -> Result<Vec<Value>, String> {
        let dev = self.host.read("/proc/net/dev")?;
        let counters = counters(&dev)?;
        let mut fired = Vec::new();
        for watched in &self.interfaces {
            let Some((_, now)) = counters.iter().find(|(name, _)| *name == watched.interface)
            else {
                continue;
            };
            let met = watched
                .values
                .iter()
                .any(|&(index, value)| match watched.greater {
                    true => now[index] > value,
                    false => now[index] == value,
                });
            if met {
                let info = COUNTERS
                    .iter()
                    .zip(now)
                    .map(|(name, count)| ((*name).into(), Value::from(*count)))
                    .collect();
                fired.push(Value::Map(vec![
                    ("interface".into(), watched.interface.as_str().into()),
                    ("network_info".into(), Value::Map(info)),
                ]));
            }
        }
        Ok(fired)
    }
}

/// Each interface of `/proc/net/dev` and its counters in [`COUNTERS`]' order.
fn counters(dev: &str) -> Result<Vec<(&str, [u64; 8])>, String> {
    dev.lines()
        .skip(2)
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let bad = || format!("/proc/net/dev has a line it should not: {line:?}");
            let (name, fields) = line.rsplit_once(':').ok_or_else(bad)?;
            let fields = fields
                .split_whitespace()
                .map(str::parse::<u64>)
                .collect::<Result<Vec<_>, _>>()
                .map_err(|_| bad())?;
            if fields.len() != 16 {
                return Err(bad());
            }
            // Received: bytes packets errs drop …; transmitted from the ninth field on.
            let [recv, sent] = [&fields[..8], &fields[8..]];
            Ok((
                name.trim(),
                [
                    sent[0], recv[0], sent[1], recv[1], recv[2], sent[2], recv[3], sent[3],
                ],
            ))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    const DEV: &str = "\
Inter-|   Receive                                                |  Transmit
 face |bytes    packets errs drop fifo frame compressed multicast|bytes    packets errs drop fifo colls carrier compressed
    lo: 5442109331 16443744    0 148174    0     0          0         0 5442109331 16443744    0    0    0     0       0          0
  eth0:265351800   24350    7    3    0     0          0         0  1594795   20462    1    2    0     0       0          0
";

    fn network_info(config: &str, root: &std::path::Path) -> Result<Box<dyn Beacon>, Invalid> {
        let config = crate::salt_yaml::load(config).expect("yaml");
        build(&Options {
            name: "network_info",
            config: &config,
            host: &Host::at(root),
        })
    }

    #[test]
    fn counters_are_psutils_in_its_order() {
        let counters = counters(DEV).unwrap();
        assert_eq!(counters[0].0, "lo");
        assert_eq!(
            counters[1],
            ("eth0", [1594795, 265351800, 20462, 24350, 7, 1, 3, 2])
        );
        assert!(super::counters("a\nb\n  x: 1 2\n").is_err());
    }

    #[test]
    fn fires_when_a_counter_is_equal_or_greater_with_every_counter() {
        let root = tempfile::tempdir().unwrap();
        std::fs::create_dir_all(root.path().join("proc/net")).unwrap();
        std::fs::write(root.path().join("proc/net/dev"), DEV).unwrap();
        let fired = |config: &str| network_info(config, root.path()).unwrap().check().unwrap();
        assert_eq!(fired("interfaces: {eth0: {errin: 6}}"), vec![]);
        let equal = fired("interfaces: {eth0: {errin: 7, dropout: 0}, wlan9: {errin: 7}}");
        assert_eq!(equal.len(), 1);
        assert_eq!(
            crate::py::json::to_string(&equal[0], crate::py::json::Format::COMPACT),
            r#"{"interface": "eth0", "network_info": {"bytes_sent": 1594795, "bytes_recv": 265351800, "packets_sent": 20462, "packets_recv": 24350, "errin": 7, "errout": 1, "dropin": 3, "dropout": 2}}"#
        );
        assert_eq!(
            fired("interfaces: {eth0: {type: greater, errin: 6}}").len(),
            1
        );
        assert_eq!(
            fired("interfaces: {eth0: {type: greater, errin: 7}}"),
            vec![]
        );
        assert_eq!(
            fired("interfaces: {lo: {type: greater, bytes_recv: '1'}, eth0: {dropin: 3}}").len(),
            2
        );
    }

    #[test]
    fn bad_interfaces_are_named() {
        let root = tempfile::tempdir().unwrap();
        let key = |config: &str| network_info(config, root.path()).err().map(|err| err.key);
        assert_eq!(key("{}").as_deref(), Some("interfaces"));
        assert_eq!(key("interfaces: [eth0]").as_deref(), Some("interfaces"));
        assert_eq!(
            key("interfaces: {eth0: 5}").as_deref(),
            Some("interfaces:eth0")
        );
        assert_eq!(
            key("interfaces: {eth0: {type: equal}}").as_deref(),
            Some("interfaces:eth0")
        );
        assert_eq!(
            key("interfaces: {eth0: {bytes: 5}}").as_deref(),
            Some("interfaces:eth0:bytes")
        );
        assert_eq!(
            key("interfaces: {eth0: {type: less, errin: 5}}").as_deref(),
            Some("interfaces:eth0:type")
        );
        assert_eq!(
            key("interfaces: {eth0: {errin: lots}}").as_deref(),
            Some("interfaces:eth0:errin")
        );
        assert_eq!(
            key("interfaces: {eth0: {errin: 1}}\ncoalesce: True").as_deref(),
            Some("coalesce")
        );
    }
}
