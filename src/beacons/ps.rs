//! `ps`: fires, at each check, `{"<name>": "Running"}` for each process configured `running`
//! that runs, and `{"<name>": "Stopped"}` for each configured `stopped` that does not (Salt's
//! shape; the tag has no suffix).
//!
//! ```yaml
//! beacons:
//!   ps:
//!     - processes:
//!         salt-master: running
//!         mysql: stopped
//! ```
//!
//! Names are psutil's, as Salt's module reads them ([`super::procs`]). Salt fires
//! `{"<name>": False}` for a process configured with any other word while it does not run;
//! halite refuses such a word, naming the process.

use super::options::{map, only};
use super::procs::names;
use super::{Beacon, Host, Invalid, Module, Options};
use crate::event::Value;
use crate::py::value::py_str;

pub(super) const MODULE: Module = Module {
    name: "ps",
    build,
    closes: false,
};

fn build(options: &Options) -> Result<Box<dyn Beacon>, Invalid> {
    only(options, &["processes"])?;
    let processes = options
        .get("processes")
        .ok_or_else(|| Invalid::new("processes", "a map of process names to running or stopped"))?;
    let mut wanted = Vec::new();
    for (name, state) in map(processes, "processes")? {
        let name = py_str(name).into_owned();
        let running = match state.as_str() {
            Some("running") => true,
            Some("stopped") => false,
            _ => {
                return Err(Invalid::new(
                    format!("processes:{name}"),
                    format!("running or stopped, not {}", super::config::describe(state)),
                ));
            }
        };
        wanted.push((name, running));
    }
    Ok(Box::new(Ps {
        wanted,
        host: options.host.clone(),
    }))
}

struct Ps {
    /// Each process, and whether it is wanted running (or stopped).
    wanted: Vec<(String, bool)>,
    host: Host,
}

impl Beacon for Ps {
    fn check(&mut self) -> Result<Vec<Value>, String> {
        let running = names(&self.host)?;
        Ok(self
            .wanted
            .iter()
            .filter(|(name, wanted)| running.contains(name) == *wanted)
            .map(|(name, wanted)| {
                let word = if *wanted { "Running" } else { "Stopped" };
                Value::Map(vec![(name.as_str().into(), word.into())])
            })
            .collect())
    }
}
