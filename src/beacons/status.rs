//! `status`: at every check, fires the minion's health as Salt's `status` execution functions
//! report it, under a tag ending with the time (`salt/beacon/<id>/status/2026-11-24T08:37:26.039090`,
//! Salt's `datetime.utcnow().isoformat()`) and with `{"data": {function: result, …}}`.
//!
//! Each option is a function and what to return of it: `all`, or some of its keys
//! (`loadavg: [1-min, 5-min]`), or `0`/`all` for one that returns a single value. Without
//! options: `loadavg`, `cpustats`, `meminfo`, `vmstats` and `time`, all of each, as Salt's.
//! The functions are read from `/proc` with Salt's key names and value types (numbers where
//! Salt's `_number` makes numbers, `meminfo` values as strings). Salt's `w`, `procs`, `pid`,
//! `diskusage`, `custom` and `master` are not offered: they run commands or need arguments.
//! Where Salt's reading is wrong halite reads right: `netdev` of an interface whose received
//! bytes touch its colon (`eth0:123456789`), `netstats`' last column (Salt drops it), and
//! `0` for a single value (Salt returns its first character). `uptime` has no `users` (Salt
//! counts the lines of `who -s`).

use super::{Beacon, Host, Invalid, Module, Options};
use crate::event::{Value, map_set};
use crate::py::value::{py_str, repr};

pub(super) const MODULE: Module = Module {
    name: "status",
    build,
    closes: false,
};

/// The functions a status beacon reports without options.
const DEFAULTS: [&str; 5] = ["loadavg", "cpustats", "meminfo", "vmstats", "time"];

/// One status function: what it reads of the system.
type Read = fn(&Host) -> Value;

/// The status functions halite reads, by Salt's name.
const FUNCTIONS: [(&str, Read); 12] = [
    ("cpuinfo", cpuinfo),
    ("cpustats", cpustats),
    ("diskstats", diskstats),
    ("loadavg", loadavg),
    ("meminfo", meminfo),
    ("netdev", netdev),
    ("netstats", netstats),
    ("nproc", nproc),
    ("time", time),
    ("uptime", uptime),
    ("version", version),
    ("vmstats", vmstats),
];

/// One function to report and what of it.
struct Report {
    name: String,
    read: Read,
    /// `all`, or the keys (or indexes) to pick, as configured.
    items: Vec<Value>,
}

fn build(options: &Options) -> Result<Box<dyn Beacon>, Invalid> {
    let function = |name: &str| {
        FUNCTIONS
            .iter()
            .find(|(known, _)| *known == name)
            .map(|(_, read)| *read)
    };
    let mut reports = Vec::new();
    for (name, items) in options.entries() {
        let name = py_str(name);
        if name.starts_with('_') {
            continue;
        }
        let read = function(&name).ok_or_else(|| {
            let names: Vec<_> = FUNCTIONS.iter().map(|(name, _)| *name).collect();
            Invalid::new(
                name.as_ref(),
                format!("one of the status functions {}", names.join(", ")),
            )
        })?;
        let items = match items {
            Value::Array(items) if !items.is_empty() => items.clone(),
            Value::String(_) | Value::Integer(_) => vec![items.clone()],
            _ => Vec::new(),
        };
        if items.is_empty() || !items.iter().all(|item| item.is_str() || item.is_i64()) {
            return Err(Invalid::new(
                name.as_ref(),
                format!("all, or the keys of {name} to return, such as [all]"),
            ));
        }
        reports.push(Report {
            name: name.into_owned(),
            read,
            items,
        });
    }
    if reports.is_empty() {
        reports = DEFAULTS
            .iter()
            .map(|name| Report {
                name: (*name).to_owned(),
                read: function(name).expect("the defaults are status functions"),
                items: vec!["all".into()],
            })
            .collect();
    }
    Ok(Box::new(Status {
        reports,
        host: options.host.clone(),
    }))
}

struct Status {
    reports: Vec<Report>,
    host: Host,
}

impl Beacon for Status {
    fn check(&mut self) -> Result<Vec<Value>, String> {
        let stamp = crate::event::jid::stamp_now();
        let mut data = Vec::new();
        for report in &self.reports {
            let result = pick((report.read)(&self.host), &report.items);
            map_set(&mut data, report.name.as_str().into(), result);
        }
        Ok(vec![Value::Map(vec![
            ("tag".into(), stamp.into()),
            ("data".into(), Value::Map(data)),
        ])])
    }
}

/// What of a function's result is reported: all of it, or the items picked (by key, or by
/// index in a list), or Salt's message naming the first item it does not have.
fn pick(result: Value, items: &[Value]) -> Value {
    let mut picked = Vec::new();
    for item in items {
        if item.as_str() == Some("all") {
            return result;
        }
        let found = match &result {
            Value::Map(entries) => entries
                .iter()
                .find(|(key, _)| py_str(key) == py_str(item))
                .map(|(_, value)| value.clone()),
            Value::Array(values) => index(item).and_then(|at| values.get(at).cloned()),
            single => (index(item) == Some(0)).then(|| single.clone()),
        };
        match found {
            Some(value) if !matches!(result, Value::Map(_) | Value::Array(_)) => return value,
            Some(value) => map_set(&mut picked, item.clone(), value),
            None => {
                return format!("Status beacon is incorrectly configured: {}", repr(item)).into();
            }
        }
    }
    Value::Map(picked)
}

fn index(item: &Value) -> Option<usize> {
    match item {
        Value::Integer(n) => n.as_u64().and_then(|n| usize::try_from(n).ok()),
        Value::String(text) => text.as_str()?.trim().parse().ok(),
        _ => None,
    }
}

/// Salt's `_number`: an integer for digits, a float for what Python's `float` takes, else the
/// text.
fn number(text: &str) -> Value {
    if !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && let Ok(n) = text.parse::<u64>()
    {
        return n.into();
    }
    match text.trim().parse::<f64>() {
        Ok(f) => Value::F64(f),
        Err(_) => text.into(),
    }
}

fn map(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(entries.into_iter().map(|(k, v)| (k.into(), v)).collect())
}

/// The lines of a system file split into fields; nothing when it cannot be read (Salt's
/// functions then return `{}`).
fn rows(host: &Host, path: &str) -> Vec<Vec<String>> {
    host.read(path)
        .unwrap_or_default()
        .lines()
        .map(|line| {
            line.split_whitespace()
                .map(str::to_owned)
                .collect::<Vec<_>>()
        })
        .filter(|fields| !fields.is_empty())
        .collect()
}

fn loadavg(host: &Host) -> Value {
    match host.load_averages() {
        Ok([one, five, fifteen]) => map(vec![
            ("1-min", Value::F64(one)),
            ("5-min", Value::F64(five)),
            ("15-min", Value::F64(fifteen)),
        ]),
        Err(_) => map(vec![]),
    }
}

fn cpustats(host: &Host) -> Value {
    let mut stats = Vec::new();
    for fields in rows(host, "/proc/stat") {
        let field = |at: usize| fields.get(at).map_or(Value::Nil, |f| number(f));
        let rest = || Value::Array(fields[2..].iter().map(|f| number(f)).collect());
        let value = match fields[0].as_str() {
            _ if fields.len() < 2 => continue,
            "cpu" => map(vec![
                ("idle", field(4)),
                ("iowait", field(5)),
                ("irq", field(6)),
                ("nice", field(2)),
                ("softirq", field(7)),
                ("steal", field(8)),
                ("system", field(3)),
                ("user", field(1)),
            ]),
            "intr" => map(vec![("total", field(1)), ("irqs", rest())]),
            "softirq" => map(vec![("total", field(1)), ("softirqs", rest())]),
            // `cpu0` and the like: their first field, as Salt.
            _ => field(1),
        };
        map_set(&mut stats, fields[0].as_str().into(), value);
    }
    Value::Map(stats)
}

fn meminfo(host: &Host) -> Value {
    let mut info = Vec::new();
    for fields in rows(host, "/proc/meminfo") {
        let Some(value) = fields.get(1) else { continue };
        let mut entry = vec![("value", value.as_str().into())];
        if let Some(unit) = fields.get(2) {
            entry.push(("unit", unit.as_str().into()));
        }
        map_set(&mut info, fields[0].replace(':', "").into(), map(entry));
    }
    Value::Map(info)
}

fn vmstats(host: &Host) -> Value {
    let mut stats = Vec::new();
    for fields in rows(host, "/proc/vmstat") {
        if let Some(value) = fields.get(1) {
            map_set(&mut stats, fields[0].as_str().into(), number(value));
        }
    }
    Value::Map(stats)
}

/// Salt's default format of `status.time`: local time, `Monday, 27. July 2015 07:55AM`.
fn time(_: &Host) -> Value {
    jiff::ZonedDateTime::now()
        .strftime("%A, %d. %B %Y %I:%M%p")
        .to_string()
        .into()
}

fn cpuinfo(host: &Host) -> Value {
    let mut info = Vec::new();
    for line in host.read("/proc/cpuinfo").unwrap_or_default().lines() {
        let mut parts = line.split(':');
        let (Some(key), Some(value)) = (parts.next(), parts.next()) else {
            continue;
        };
        let key = key.trim();
        let value = match key {
            "flags" => Value::Array(value.split_whitespace().map(Value::from).collect()),
            _ => value.trim().into(),
        };
        map_set(&mut info, key.into(), value);
    }
    Value::Map(info)
}

fn diskstats(host: &Host) -> Value {
    const FIELDS: [&str; 14] = [
        "major",
        "minor",
        "device",
        "reads_issued",
        "reads_merged",
        "sectors_read",
        "ms_spent_reading",
        "writes_completed",
        "writes_merged",
        "sectors_written",
        "ms_spent_writing",
        "io_in_progress",
        "ms_spent_in_io",
        "weighted_ms_spent_in_io",
    ];
    let mut stats = Vec::new();
    for fields in rows(host, "/proc/diskstats") {
        if fields.len() < FIELDS.len() {
            continue;
        }
        let disk = FIELDS
            .iter()
            .zip(&fields)
            .map(|(name, f)| (*name, number(f)));
        map_set(&mut stats, fields[2].as_str().into(), map(disk.collect()));
    }
    Value::Map(stats)
}

fn netdev(host: &Host) -> Value {
    // Salt's keys, in its order, and the field of the line after the colon each is.
    const FIELDS: [(&str, usize); 16] = [
        ("rx_bytes", 0),
        ("rx_compressed", 6),
        ("rx_drop", 3),
        ("rx_errs", 2),
        ("rx_fifo", 4),
        ("rx_frame", 5),
        ("rx_multicast", 7),
        ("rx_packets", 1),
        ("tx_bytes", 8),
        ("tx_carrier", 14),
        ("tx_colls", 13),
        ("tx_compressed", 15),
        ("tx_drop", 11),
        ("tx_errs", 10),
        ("tx_fifo", 12),
        ("tx_packets", 9),
    ];
    let mut devices = Vec::new();
    for line in host.read("/proc/net/dev").unwrap_or_default().lines() {
        let Some((name, counts)) = line.split_once(':') else {
            continue;
        };
        let counts: Vec<&str> = counts.split_whitespace().collect();
        if counts.len() < 16 {
            continue;
        }
        let name = name.trim();
        let mut device = vec![("iface", Value::from(name))];
        device.extend(FIELDS.iter().map(|(key, at)| (*key, number(counts[*at]))));
        map_set(&mut devices, name.into(), map(device));
    }
    Value::Map(devices)
}

fn netstats(host: &Host) -> Value {
    let mut stats = Vec::new();
    let mut headers: Vec<String> = Vec::new();
    for fields in rows(host, "/proc/net/netstat") {
        if headers.first() == Some(&fields[0]) {
            let row = headers[1..]
                .iter()
                .zip(&fields[1..])
                .map(|(name, value)| (Value::from(name.as_str()), number(value)))
                .collect();
            map_set(
                &mut stats,
                headers[0].replace(':', "").into(),
                Value::Map(row),
            );
        } else {
            headers = fields;
        }
    }
    Value::Map(stats)
}

/// The processing units this process may run on (what the `nproc` command Salt runs counts).
fn nproc(host: &Host) -> Value {
    let status = host.read("/proc/self/status").unwrap_or_default();
    let allowed = status
        .lines()
        .find_map(|line| line.strip_prefix("Cpus_allowed_list:"))
        .unwrap_or_default();
    let count = allowed
        .trim()
        .split(',')
        .filter_map(|range| match range.split_once('-') {
            Some((low, high)) => Some(high.parse::<u64>().ok()? + 1 - low.parse::<u64>().ok()?),
            None => range.parse::<u64>().ok().map(|_| 1),
        })
        .sum::<u64>();
    count.into()
}

fn uptime(host: &Host) -> Value {
    let Some(seconds) = host
        .read("/proc/uptime")
        .ok()
        .and_then(|text| text.split_whitespace().next()?.parse::<f64>().ok())
    else {
        return map(vec![]);
    };
    let seconds = seconds as i64;
    let now = jiff::Timestamp::now();
    let boot = now - jiff::SignedDuration::from_secs(seconds);
    let day = seconds % 86_400;
    map(vec![
        ("seconds", seconds.into()),
        ("since_iso", crate::event::jid::stamp(boot).into()),
        ("since_t", boot.as_second().into()),
        ("days", (seconds / 86_400).into()),
        ("time", format!("{}:{}", day / 3600, day % 3600 / 60).into()),
    ])
}

fn version(host: &Host) -> Value {
    match host.read("/proc/version") {
        Ok(text) => text.trim().into(),
        Err(_) => map(vec![]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::py::json::{Format, to_string};

    fn root(files: &[(&str, &str)]) -> tempfile::TempDir {
        let root = tempfile::tempdir().unwrap();
        for (path, text) in files {
            let file = root.path().join(path);
            std::fs::create_dir_all(file.parent().unwrap()).unwrap();
            std::fs::write(file, text).unwrap();
        }
        root
    }

    fn json(value: &Value) -> String {
        to_string(value, Format::COMPACT)
    }

    fn status(config: &str, root: &std::path::Path) -> Result<Box<dyn Beacon>, Invalid> {
        let config = crate::salt_yaml::load(config).expect("yaml");
        build(&Options {
            name: "status",
            config: &config,
            host: &Host::at(root),
        })
    }

    #[test]
    fn cpustats_has_salts_keys_and_numbers() {
        let root = root(&[(
            "proc/stat",
            "cpu  10 20 30 40 50 60 70 80 0 0\ncpu0 5 1 1 1 1 1 1 1 0 0\n\
             intr 100 1 2 3\nctxt 999\nsoftirq 7 1 2\n",
        )]);
        assert_eq!(
            json(&cpustats(&Host::at(root.path()))),
            r#"{"cpu": {"idle": 40, "iowait": 50, "irq": 60, "nice": 20, "softirq": 70, "steal": 80, "system": 30, "user": 10}, "cpu0": 5, "intr": {"total": 100, "irqs": [1, 2, 3]}, "ctxt": 999, "softirq": {"total": 7, "softirqs": [1, 2]}}"#
        );
    }

    #[test]
    fn meminfo_values_stay_strings_with_their_units() {
        let root = root(&[(
            "proc/meminfo",
            "MemTotal:  4000 kB\nHugePages_Total:       0\n",
        )]);
        assert_eq!(
            json(&meminfo(&Host::at(root.path()))),
            r#"{"MemTotal": {"value": "4000", "unit": "kB"}, "HugePages_Total": {"value": "0"}}"#
        );
    }

    #[test]
    fn netdev_reads_counters_glued_to_the_colon() {
        let root = root(&[(
            "proc/net/dev",
            "Inter-|   Receive\n face |bytes\n\
             eth0:123456789 5 0 0 0 0 0 0 77 6 0 0 0 0 0 0\n",
        )]);
        let dev = netdev(&Host::at(root.path()));
        let eth0 = crate::event::map_get(&dev, "eth0").unwrap();
        assert_eq!(
            json(crate::event::map_get(eth0, "rx_bytes").unwrap()),
            "123456789"
        );
        assert_eq!(
            json(crate::event::map_get(eth0, "rx_packets").unwrap()),
            "5"
        );
        assert_eq!(
            json(crate::event::map_get(eth0, "tx_packets").unwrap()),
            "6"
        );
    }

    #[test]
    fn netstats_keeps_every_column_and_numbers_parse_as_salts() {
        let root = root(&[(
            "proc/net/netstat",
            "TcpExt: SyncookiesSent Last\nTcpExt: 1 2\nIpExt: InOctets\nIpExt: 3.5\n",
        )]);
        assert_eq!(
            json(&netstats(&Host::at(root.path()))),
            r#"{"TcpExt": {"SyncookiesSent": 1, "Last": 2}, "IpExt": {"InOctets": 3.5}}"#
        );
        assert_eq!(number("sda"), Value::from("sda"));
        assert_eq!(
            number("-1"),
            Value::F64(-1.0),
            "Python's isdigit refuses the sign"
        );
    }

    #[test]
    fn nproc_counts_the_cpus_allowed() {
        let root = root(&[(
            "proc/self/status",
            "Name: x\nCpus_allowed_list:\t0-3,6,8-9\n",
        )]);
        assert_eq!(nproc(&Host::at(root.path())), Value::from(7));
    }

    #[test]
    fn checks_fire_one_event_tagged_with_the_time_and_picked_items() {
        let root = root(&[
            ("proc/loadavg", "0.5 1.5 2.5 1/1 1\n"),
            ("proc/version", "Linux version 6\n"),
        ]);
        let mut beacon = status(
            "loadavg: [1-min, 15-min]\nversion: 0\ncpuinfo: [nope]",
            root.path(),
        )
        .unwrap();
        let fired = beacon.check().unwrap();
        assert_eq!(fired.len(), 1);
        let tag = crate::event::map_get(&fired[0], "tag")
            .unwrap()
            .as_str()
            .unwrap();
        assert!(tag.len() >= 19 && tag.as_bytes()[10] == b'T', "{tag}");
        assert_eq!(
            json(crate::event::map_get(&fired[0], "data").unwrap()),
            r#"{"loadavg": {"1-min": 0.5, "15-min": 2.5}, "version": "Linux version 6", "cpuinfo": "Status beacon is incorrectly configured: 'nope'"}"#
        );
        let defaults = status("[]", root.path()).unwrap().check().unwrap();
        let data = crate::event::map_get(&defaults[0], "data").unwrap();
        let keys: Vec<_> = data
            .as_map()
            .unwrap()
            .iter()
            .map(|(k, _)| py_str(k))
            .collect();
        assert_eq!(keys, DEFAULTS);
        assert_eq!(json(crate::event::map_get(data, "meminfo").unwrap()), "{}");
    }

    #[test]
    fn unknown_functions_and_bad_items_are_named() {
        let root = tempfile::tempdir().unwrap();
        let key = |config: &str| status(config, root.path()).err().map(|err| err.key);
        assert_eq!(key("w: all").as_deref(), Some("w"));
        assert_eq!(key("loadavg: {a: 1}").as_deref(), Some("loadavg"));
        assert_eq!(key("loadavg: []").as_deref(), Some("loadavg"));
        assert_eq!(key("loadavg:").as_deref(), Some("loadavg"));
        assert!(status("_hidden: x\ntime: all", root.path()).is_ok());
    }
}
