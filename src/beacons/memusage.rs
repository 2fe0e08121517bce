//! `memusage`: fires `{"memusage": percent}` when the memory in use reaches `percent`.
//!
//! In use is what psutil (which Salt's module reads) counts: `MemTotal - MemAvailable` of
//! `/proc/meminfo`, as a percent rounded to one decimal.

use super::usage::{meminfo_kib, percent_of, percent_option};
use super::{Beacon, Host, Invalid, Module, Options};
use crate::event::Value;

pub(super) const MODULE: Module = Module {
    name: "memusage",
    build,
    closes: false,
};

fn build(options: &Options) -> Result<Box<dyn Beacon>, Invalid> {
    options.only(&["percent"])?;
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
