//! `swapusage`: fires `{"swapusage": percent}` when the swap in use reaches `percent`.
//!
//! In use is what psutil (which Salt's module reads) counts: `SwapTotal - SwapFree` of
//! `/proc/meminfo`, as a percent rounded to one decimal (0 without swap).

use super::usage::{meminfo_kib, percent_of, percent_option};
use super::{Beacon, Host, Invalid, Module, Options};
use crate::event::Value;

pub(super) const MODULE: Module = Module {
    name: "swapusage",
    build,
    closes: false,
};

fn build(options: &Options) -> Result<Box<dyn Beacon>, Invalid> {
    options.only(&["percent"])?;
    Ok(Box::new(SwapUsage {
        threshold: percent_option(options, "percent")?,
        host: options.host.clone(),
    }))
}

struct SwapUsage {
    threshold: f64,
    host: Host,
}

impl Beacon for SwapUsage {
    fn check(&mut self) -> Result<Vec<Value>, String> {
        let used = swap_percent(&self.host.read("/proc/meminfo")?)?;
        Ok(if used >= self.threshold {
            vec![Value::Map(vec![("swapusage".into(), Value::F64(used))])]
        } else {
            Vec::new()
        })
    }
}

/// The swap in use, in percent of the swap there is.
fn swap_percent(meminfo: &str) -> Result<f64, String> {
    let total = meminfo_kib(meminfo, "SwapTotal")?;
    let free = meminfo_kib(meminfo, "SwapFree")?;
    Ok(percent_of(total.saturating_sub(free), total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn swap_in_use_is_total_less_free_and_no_swap_is_zero() {
        let meminfo = "MemTotal: 100 kB\nSwapTotal:  2097148 kB\nSwapFree:   1572860 kB\n";
        assert_eq!(swap_percent(meminfo), Ok(25.0));
        assert_eq!(swap_percent("SwapTotal: 0 kB\nSwapFree: 0 kB\n"), Ok(0.0));
        assert!(swap_percent("MemTotal: 1 kB\n").is_err());
    }
}
