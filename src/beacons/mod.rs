//! Beacons: a minion watches what is not Salt (files, load, memory, disks, services, logins,
//! logs) and fires an event on its bus and its master's when something happens.
//!
//! A beacon is configured under `beacons:` in the minion config, as Salt reads it ([`config`]):
//! a name, the module it runs (the name, or `beacon_module`), the generic keys (`interval`,
//! `enabled`, `run_once`, `disable_during_state_run`) and the module's own options, which the
//! module checks when it builds its [`Beacon`]. Every module is one entry of [`MODULES`].
//!
//! [`run`] is the minion service: each beacon is one task, checked at its own interval (or woken
//! by the kernel, for `inotify`), and what the checks return goes out in batches, as Salt's
//! `__beacons_return` on the minion bus and one `_minion_event` load to the master. A beacon
//! that cannot be built or whose check fails says so, in the log and as an event
//! ([`error_tag`]); the others go on.

mod btmp;
mod child;
pub mod config;
mod diskusage;
mod host;
mod inotify;
mod journald;
mod load;
mod log;
mod memusage;
pub(crate) mod netlink;
mod network_info;
mod network_settings;
mod options;
mod procs;
mod ps;
pub mod run;
mod script;
mod service;
mod status;
mod swapusage;
mod tail;
mod usage;
mod utmp;
mod wtmp;

use std::future::Future;
use std::pin::Pin;

pub use config::{Configured, Entry, Problem};
pub use host::Host;

use crate::event::Value;

/// One beacon module: Salt's name, and how it builds a running beacon from its options.
#[derive(Debug, Clone, Copy)]
pub struct Module {
    /// Salt's name for the module (`inotify`, `load`, …).
    pub name: &'static str,
    /// Checks the options (the beacon's map, generic keys removed) and builds the beacon.
    pub build: fn(&Options) -> Result<Box<dyn Beacon>, Invalid>,
    /// Released while a state runs under `disable_during_state_run` (Salt calls such a module's
    /// `close`), and built again afterwards.
    pub closes: bool,
}

/// What a module builds a beacon from.
#[derive(Debug, Clone)]
pub struct Options<'a> {
    /// The beacon's name as configured (its tag segment).
    pub name: &'a str,
    /// The module's options: a map, the list form merged and the generic keys removed.
    pub config: &'a Value,
    /// Where the system's state is read.
    pub host: &'a Host,
}

impl Options<'_> {
    /// The option `key`, if given.
    pub fn get(&self, key: &str) -> Option<&Value> {
        crate::event::map_get(self.config, key)
    }

    /// The options in the order given.
    pub fn entries(&self) -> &[(Value, Value)] {
        match self.config {
            Value::Map(entries) => entries,
            _ => &[],
        }
    }

    /// Refuses an option the module does not take: Salt ignores one, so a misspelt option
    /// would silently do nothing.
    pub fn only(&self, known: &[&str]) -> Result<(), Invalid> {
        options::only(self, known)
    }

    /// The boolean option `key` (`True` or `False`, as Salt checks), `default` when absent.
    pub fn flag(&self, key: &str, default: bool) -> Result<bool, Invalid> {
        options::flag(self.get(key), key, default)
    }
}

/// A beacon's options are not what its module expects.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{key}: expected {expected}")]
pub struct Invalid {
    /// The option at fault (`mask`, `averages:1m`, …), or the module name for the whole map.
    pub key: String,
    /// What it should be, and what it was.
    pub expected: String,
}

impl Invalid {
    /// `key` should be `expected`.
    pub fn new(key: impl Into<String>, expected: impl Into<String>) -> Self {
        Self {
            key: key.into(),
            expected: expected.into(),
        }
    }
}

/// Wakes a beacon between intervals: resolves when [`Beacon::check`] has something to report.
pub type Wake<'a> = Pin<Box<dyn Future<Output = ()> + Send + 'a>>;

/// A running beacon.
pub trait Beacon: Send + 'static {
    /// One look at the system: the data of each event to fire, maps that may carry a `tag` key
    /// (appended to the beacon's tag, and removed from the data). Runs on the blocking pool.
    fn check(&mut self) -> Result<Vec<Value>, String>;

    /// For beacons the kernel tells of changes (`inotify`): a future that resolves when there
    /// is something to check. The others are checked at their interval only.
    fn wake(&mut self) -> Option<Wake<'_>> {
        None
    }
}

/// Every beacon module, by name.
pub static MODULES: &[Module] = &[
    btmp::MODULE,
    diskusage::MODULE,
    inotify::MODULE,
    journald::MODULE,
    load::MODULE,
    log::MODULE,
    memusage::MODULE,
    network_info::MODULE,
    network_settings::MODULE,
    ps::MODULE,
    script::MODULE,
    service::MODULE,
    status::MODULE,
    swapusage::MODULE,
    wtmp::MODULE,
];

/// The module named `name`.
pub fn module(name: &str) -> Option<&'static Module> {
    MODULES.iter().find(|module| module.name == name)
}

/// The tag of the events a beacon fires: `salt/beacon/<id>/<name>/` and the event's own suffix.
pub fn tag(id: &str, name: &str, suffix: &str) -> String {
    format!("salt/beacon/{id}/{name}/{suffix}")
}

/// The tag of the event a beacon fires when its configuration is refused or its check fails:
/// `salt/beacon/<id>/<name>/error`, with `{"error": message, "beacon_module", "id"}`.
pub fn error_tag(id: &str, name: &str) -> String {
    tag(id, name, "error")
}
