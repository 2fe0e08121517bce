//! `load`: fires `{"1m", "5m", "15m"}` (the load averages) when one of the configured averages
//! is outside its `[low, high]` range.
//!
//! Options as Salt's: `averages` (required: `1m`, `5m` and/or `15m`, each `[low, high]`),
//! `onchangeonly` (default False: fire at every check while outside; True: fire only when an
//! average crosses out of its range, above `high` or below `low`, since the previous check) and
//! `emitatstartup` (default True; with `onchangeonly`, whether the first check fires when an
//! average is already outside). The previous check is this beacon's own (Salt keeps one for
//! every `load` beacon of the minion), and `emitatstartup` does what Salt documents: Salt's
//! first check compares the averages with themselves and never fires.

use super::{Beacon, Host, Invalid, Module, Options};
use crate::event::Value;
use crate::py::value::{py_str, repr};

pub(super) const MODULE: Module = Module {
    name: "load",
    build,
    closes: false,
};

/// Salt's names of the averages, in `/proc/loadavg`'s order.
const AVERAGES: [&str; 3] = ["1m", "5m", "15m"];

fn build(options: &Options) -> Result<Box<dyn Beacon>, Invalid> {
    options.only(&["averages", "onchangeonly", "emitatstartup"])?;
    Ok(Box::new(Load {
        ranges: ranges(options.get("averages"))?,
        onchangeonly: options.flag("onchangeonly", false)?,
        emitatstartup: options.flag("emitatstartup", true)?,
        last: None,
        host: options.host.clone(),
    }))
}

/// `[low, high]` for each average, `None` for those not watched.
type Ranges = [Option<(f64, f64)>; 3];

struct Load {
    ranges: Ranges,
    onchangeonly: bool,
    emitatstartup: bool,
    /// The averages at the previous check, kept with `onchangeonly`.
    last: Option<[f64; 3]>,
    host: Host,
}

impl Beacon for Load {
    fn check(&mut self) -> Result<Vec<Value>, String> {
        let now = self.host.load_averages()?;
        let fire = match (self.onchangeonly, self.last) {
            (false, _) => outside(&self.ranges, now),
            (true, None) => self.emitatstartup && outside(&self.ranges, now),
            (true, Some(last)) => crossed(&self.ranges, last, now),
        };
        if self.onchangeonly {
            self.last = Some(now);
        }
        Ok(if fire {
            let averages = AVERAGES.iter().zip(now);
            vec![Value::Map(
                averages
                    .map(|(name, average)| ((*name).into(), Value::F64(average)))
                    .collect(),
            )]
        } else {
            Vec::new()
        })
    }
}

/// Whether a watched average is below its low or above its high (the bounds are inside).
fn outside(ranges: &Ranges, now: [f64; 3]) -> bool {
    ranges
        .iter()
        .zip(now)
        .any(|(range, now)| range.is_some_and(|(low, high)| now < low || now > high))
}

/// Whether a watched average went above its high from below it, or below its low from above it.
fn crossed(ranges: &Ranges, last: [f64; 3], now: [f64; 3]) -> bool {
    ranges
        .iter()
        .zip(last.iter().zip(now))
        .any(|(range, (&last, now))| {
            range
                .is_some_and(|(low, high)| (now > high && last < high) || (now < low && last > low))
        })
}

fn ranges(averages: Option<&Value>) -> Result<Ranges, Invalid> {
    let entries = match averages {
        Some(Value::Map(entries)) if !entries.is_empty() => entries,
        Some(other) => {
            return Err(Invalid::new(
                "averages",
                format!(
                    "a map of 1m, 5m and/or 15m to [low, high], not {}",
                    repr(other)
                ),
            ));
        }
        None => {
            return Err(Invalid::new(
                "averages",
                "a map of 1m, 5m and/or 15m to [low, high] (it is required)",
            ));
        }
    };
    let mut ranges = [None; 3];
    for (name, range) in entries {
        let name = py_str(name);
        let key = format!("averages:{name}");
        let index = AVERAGES
            .iter()
            .position(|average| *average == name)
            .ok_or_else(|| Invalid::new(&key, "one of 1m, 5m and 15m"))?;
        let bounds = match range {
            Value::Array(items) if items.len() == 2 => {
                items.iter().map(number).collect::<Option<Vec<f64>>>()
            }
            _ => None,
        }
        .ok_or_else(|| {
            Invalid::new(
                &key,
                format!("[low, high], two numbers, not {}", repr(range)),
            )
        })?;
        ranges[index] = Some((bounds[0], bounds[1]));
    }
    Ok(ranges)
}

/// A bound as Salt reads it, with `float()`: a number or a numeric string.
fn number(value: &Value) -> Option<f64> {
    match value {
        Value::Integer(n) => n.as_f64(),
        Value::F64(f) => Some(*f),
        Value::F32(f) => Some(f64::from(*f)),
        Value::String(text) => text.as_str()?.trim().parse().ok(),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(config: &str, root: &std::path::Path) -> Result<Box<dyn Beacon>, Invalid> {
        let config = crate::salt_yaml::load(config).expect("yaml");
        build(&Options {
            name: "load",
            config: &config,
            host: &Host::at(root),
        })
    }

    fn averages(root: &std::path::Path, text: &str) {
        std::fs::create_dir_all(root.join("proc")).unwrap();
        std::fs::write(root.join("proc/loadavg"), text).unwrap();
    }

    const RANGES: &str = "averages: {1m: [0.5, 2.0], 15m: [0.1, 1.0]}";

    #[test]
    fn fires_every_check_outside_a_range_with_all_three_averages() {
        let root = tempfile::tempdir().unwrap();
        let mut beacon = load(RANGES, root.path()).unwrap();
        averages(root.path(), "1.00 9.00 0.50 1/1 1\n");
        assert_eq!(beacon.check(), Ok(vec![]), "5m is not watched");
        averages(root.path(), "2.50 0.10 0.50 1/1 1\n");
        let fired = beacon.check().unwrap();
        assert_eq!(fired.len(), 1);
        assert_eq!(
            fired[0],
            Value::Map(vec![
                ("1m".into(), Value::F64(2.5)),
                ("5m".into(), Value::F64(0.1)),
                ("15m".into(), Value::F64(0.5)),
            ])
        );
        assert_eq!(beacon.check().unwrap().len(), 1, "and again");
        averages(root.path(), "2.00 0.10 0.10 1/1 1\n");
        assert_eq!(beacon.check(), Ok(vec![]), "the bounds are inside");
    }

    #[test]
    fn onchangeonly_fires_when_an_average_crosses_out() {
        let root = tempfile::tempdir().unwrap();
        let config = format!("{RANGES}\nonchangeonly: True");
        let mut beacon = load(&config, root.path()).unwrap();
        averages(root.path(), "3.00 0 0.5 1/1 1\n");
        assert_eq!(beacon.check().unwrap().len(), 1, "emitatstartup");
        assert_eq!(beacon.check(), Ok(vec![]), "still above: no change");
        averages(root.path(), "1.00 0 0.5 1/1 1\n");
        assert_eq!(beacon.check(), Ok(vec![]), "back inside");
        averages(root.path(), "2.10 0 0.5 1/1 1\n");
        assert_eq!(beacon.check().unwrap().len(), 1, "above again");
        averages(root.path(), "1.00 0 0.05 1/1 1\n");
        assert_eq!(beacon.check().unwrap().len(), 1, "15m below its low");

        let mut quiet = load(&format!("{config}\nemitatstartup: False"), root.path()).unwrap();
        averages(root.path(), "3.00 0 0.5 1/1 1\n");
        assert_eq!(quiet.check(), Ok(vec![]));
        assert_eq!(quiet.check(), Ok(vec![]));
    }

    #[test]
    fn bad_averages_are_named() {
        let root = tempfile::tempdir().unwrap();
        let key = |config: &str| load(config, root.path()).err().map(|err| err.key);
        assert_eq!(key("onchangeonly: True").as_deref(), Some("averages"));
        assert_eq!(key("averages: {}").as_deref(), Some("averages"));
        assert_eq!(
            key("averages: {2m: [0, 1]}").as_deref(),
            Some("averages:2m")
        );
        assert_eq!(key("averages: {1m: [0]}").as_deref(), Some("averages:1m"));
        assert_eq!(
            key("averages: {1m: [0, x]}").as_deref(),
            Some("averages:1m")
        );
        assert_eq!(
            key("averages: {1m: [0, 1]}\nonchangeonly: yes please").as_deref(),
            Some("onchangeonly")
        );
        assert_eq!(
            key("averages: {1m: [0, 1]}\nonchangonly: True").as_deref(),
            Some("onchangonly")
        );
        assert!(load("averages: {1m: ['0.5', 2]}", root.path()).is_ok());
    }
}
