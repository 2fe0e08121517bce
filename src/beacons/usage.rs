//! What the usage beacons (`memusage`, `swapusage`, `diskusage`) share: thresholds in percent
//! as Salt's modules take them, fields of `/proc/meminfo`, and psutil's percent.

use super::{Invalid, Options};
use crate::event::Value;
use crate::py::value::round;

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

/// `part` of `whole` in percent as psutil's `usage_percent` gives it: `part / whole * 100`,
/// rounded to one decimal as Python rounds (0 of nothing).
pub(super) fn percent_of(part: u64, whole: u64) -> f64 {
    if whole == 0 {
        return 0.0;
    }
    round(part as f64 / whole as f64 * 100.0, 1)
}

/// A required threshold in percent: `63%`, `"63"` or `63`, as Salt's modules take it.
pub(super) fn percent_option(options: &Options, key: &str) -> Result<f64, Invalid> {
    let value = options.get(key).ok_or_else(|| {
        Invalid::new(key, "a percent such as 63%, the threshold (it is required)")
    })?;
    percent(key, value)
}

/// The percent `value` given for `key`.
pub(super) fn percent(key: &str, value: &Value) -> Result<f64, Invalid> {
    let expected = |got: &str| {
        Invalid::new(
            key,
            format!("a percent such as 63% or 63.5 (0 to 100), not {got}"),
        )
    };
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
        other => return Err(expected(&crate::py::value::repr(other))),
    };
    if !(0.0..=100.0).contains(&percent) {
        return Err(expected(&crate::py::value::float_repr(percent)));
    }
    Ok(percent)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::beacons::Host;

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
    fn percents_round_half_to_even_as_psutil_does() {
        // psutil: round(49 / 400 * 100, 1) == 12.2; rounding 122.5 up gave 12.3.
        assert_eq!(percent_of(49, 400), 12.2);
        assert_eq!(percent_of(0, 0), 0.0);
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
