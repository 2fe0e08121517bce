//! `memusage`: fires `{"memusage": percent}` when the memory in use reaches `percent`.
//!
//! In use is what psutil (which Salt's module reads) counts: `MemTotal - MemAvailable` of
//! `/proc/meminfo`, as a percent rounded to one decimal.

use super::{Beacon, Host, Invalid, Module, Options};
use crate::event::Value;

pub(super) const MODULE: Module = Module {
    name: "memusage",
    summary: "Memory in use at or over a percent",
    build,
    closes: false,
};

fn build(options: &Options) -> Result<Box<dyn Beacon>, Invalid> {
    Ok(Box::new(MemUsage {
        threshold: percent_option(options, "percent")?,
        host: options.host.clone(),
    }))
}

struct MemUsage {
    threshold: f64,
    host: Host,
}

impl Beacon for MemUsage {
    fn check(&mut self) -> Result<Vec<Value>, String> {
        let meminfo = self.host.read("/proc/meminfo")?;
        let total = meminfo_kib(&meminfo, "MemTotal")?;
        let available = meminfo_kib(&meminfo, "MemAvailable")?;
        let used = percent_of(total.saturating_sub(available), total);
        Ok(if used >= self.threshold {
            vec![Value::Map(vec![("memusage".into(), Value::F64(used))])]
        } else {
            Vec::new()
        })
    }
}

/// A field of `/proc/meminfo`, in KiB.
pub(super) fn meminfo_kib(meminfo: &str, field: &str) -> Result<u64, String> {
    meminfo
        .lines()
        .find_map(|line| {
            let rest = line.strip_prefix(field)?.strip_prefix(':')?;
            rest.split_whitespace().next()?.parse().ok()
        })
        .ok_or_else(|| format!("/proc/meminfo has no {field} line"))
}

/// `part` of `whole` in percent, rounded to one decimal as psutil rounds it (0 of nothing).
pub(super) fn percent_of(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    (part as f64 / whole as f64 * 1000.0).round() / 10.0
}

/// A required threshold in percent: `63%`, `"63"` or `63`, as Salt's modules take it.
pub(super) fn percent_option(options: &Options, key: &str) -> Result<f64, Invalid> {
    let expected = |got: &str| {
        Invalid::new(
            key,
            format!("a percent such as 63% or 63.5 (0 to 100), not {got}"),
        )
    };
    let value = options.get(key).ok_or_else(|| {
        Invalid::new(key, "a percent such as 63%, the threshold (it is required)")
    })?;
    let percent = match value {
        Value::String(text) => {
            let text = text.as_str().unwrap_or_default();
            text.trim()
                .trim_end_matches('%')
                .trim()
                .parse::<f64>()
                .map_err(|_| expected(&format!("{text:?}")))?
        }
        Value::Integer(n) => n.as_f64().unwrap_or(f64::NAN),
        Value::F64(f) => *f,
        Value::F32(f) => f64::from(*f),
        other => return Err(expected(&other.to_string())),
    };
    if !(0.0..=100.0).contains(&percent) {
        return Err(expected(&percent.to_string()));
    }
    Ok(percent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn used_memory_is_total_less_available_rounded_to_one_decimal() {
        let meminfo = "MemTotal:        4000000 kB\nMemFree:  1 kB\nMemAvailable:    2987654 kB\n";
        let used = 4_000_000 - meminfo_kib(meminfo, "MemAvailable").unwrap();
        assert_eq!(
            percent_of(used, meminfo_kib(meminfo, "MemTotal").unwrap()),
            25.3
        );
        assert!(meminfo_kib(meminfo, "SwapTotal").is_err());
    }

    #[test]
    fn thresholds_read_as_salt_reads_them_and_nonsense_is_named() {
        let host = Host::real();
        let read = |value: Value| {
            let config = Value::Map(vec![("percent".into(), value)]);
            percent_option(
                &Options {
                    name: "memusage",
                    config: &config,
                    host: &host,
                },
                "percent",
            )
        };
        assert_eq!(read("63%".into()), Ok(63.0));
        assert_eq!(read(Value::from(50)), Ok(50.0));
        assert_eq!(read(Value::F64(12.5)), Ok(12.5));
        let err = read("lots".into()).unwrap_err();
        assert_eq!(err.key, "percent");
        assert!(err.expected.contains("\"lots\""), "{err}");
        assert!(read(Value::from(101)).is_err());
    }
}
