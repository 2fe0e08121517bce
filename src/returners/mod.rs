//! Where jobs, their returns and events are kept: Salt's returners. The master keeps every job in
//! [`local_cache`], Salt's default job cache; the other returners are named by the
//! `master_job_cache`, `event_return`, `--return`, `salt-call --return` and a schedule's
//! `returner:`, and found in [`MODULES`].
//!
//! A returner is reached through the [`Returner`] trait, Salt's returner functions: `returner`,
//! `event_return`, `save_load` and the `get_*` queries the `ret.*` and `jobs.*` runners ask. A
//! returner that cannot answer a query says so ([`ReturnerError::Unsupported`]), as Salt's
//! loader does for a function a returner lacks.

mod command;
mod deliver;
mod local;
pub mod local_cache;
mod mysql;
mod pgjsonb;
mod rawfile_json;
mod spool;
mod sql;
mod sqlite3;
pub(crate) mod syslog;

pub use deliver::{Deliveries, Item, LOST_TAG};

use std::future::Future;
use std::pin::Pin;

use crate::config::Config;
use crate::event::{Event, Value, map_get};

/// A job's publish load and the minions it targets: what `save_load` stores.
#[derive(Debug, Clone)]
pub struct JobLoad {
    /// The jid.
    pub jid: String,
    /// The load.
    pub load: Value,
    /// The minions targeted.
    pub minions: Vec<String>,
}

/// What a returner's call resolves to.
pub type Pending<'a, T> = Pin<Box<dyn Future<Output = Result<T, ReturnerError>> + Send + 'a>>;

/// Why a returner could not do what it was asked.
#[derive(Debug, thiserror::Error)]
pub enum ReturnerError {
    /// No returner has this name.
    #[error("no returner named {name}; the returners are: {}", names().join(", "))]
    Unknown {
        /// The name asked for.
        name: String,
    },
    /// The returner has no such function (Salt's loader: "'syslog.get_jid' is not available").
    #[error("'{returner}.{function}' is not available: the {returner} returner cannot {what}")]
    Unsupported {
        /// The returner.
        returner: &'static str,
        /// Salt's function name.
        function: &'static str,
        /// What it cannot do.
        what: &'static str,
    },
    /// An option the returner reads is invalid.
    #[error("returner {returner}: option {option}: {problem}")]
    Option {
        /// The returner.
        returner: &'static str,
        /// The option as the configuration spells it, e.g. `mysql.port`.
        option: String,
        /// What is wrong and what is expected.
        problem: String,
    },
    /// Where the returner stores could not be reached or refused the write; worth retrying.
    #[error("returner {returner}: {problem}")]
    Unavailable {
        /// The returner.
        returner: &'static str,
        /// What failed, naming the server or file.
        problem: String,
    },
    /// What was given cannot be stored, now or later (retrying would not help).
    #[error("returner {returner}: {problem}")]
    Rejected {
        /// The returner.
        returner: &'static str,
        /// Why.
        problem: String,
    },
}

impl ReturnerError {
    /// Whether trying again later may succeed (the store was away), rather than never.
    pub fn retryable(&self) -> bool {
        matches!(self, ReturnerError::Unavailable { .. })
    }
}

/// One of Salt's returners, as a trait object: each function may be called from any task.
///
/// Returns are Salt's return dicts (`id`, `jid`, `fun`, `fun_args`, `return`, `retcode`,
/// `success`, …) as the minion or `salt-call` produced them; events are the master bus's.
pub trait Returner: Send + Sync + std::fmt::Debug {
    /// The returner's name, as configured.
    fn name(&self) -> &'static str;

    /// Stores job returns, in order (Salt's `returner(ret)`, one call per return; here a batch).
    fn returns<'a>(&'a self, returns: &'a [Value]) -> Pending<'a, ()> {
        let _ = returns;
        unsupported(self.name(), "returner", "store job returns")
    }

    /// Stores events, in order (Salt's `event_return(events)`).
    fn events<'a>(&'a self, events: &'a [Event]) -> Pending<'a, ()> {
        let _ = events;
        unsupported(self.name(), "event_return", "store events")
    }

    /// Stores a job's publish load and the minions it targets (Salt's `save_load`); a jid already
    /// stored is left as it is (`pgjsonb` replaces its load, as Salt's does).
    fn save_load<'a>(
        &'a self,
        jid: &'a str,
        load: &'a Value,
        minions: &'a [String],
    ) -> Pending<'a, ()> {
        let _ = (jid, load, minions);
        unsupported(self.name(), "save_load", "store jobs")
    }

    /// Stores several jobs' loads, in order: `save_load` for each, or fewer round trips where
    /// the store can take them at once.
    fn save_loads<'a>(&'a self, loads: &'a [JobLoad]) -> Pending<'a, ()> {
        Box::pin(async move {
            for job in loads {
                self.save_load(&job.jid, &job.load, &job.minions).await?;
            }
            Ok(())
        })
    }

    /// A job's publish load, `{}` when unknown (Salt's `get_load`).
    fn get_load<'a>(&'a self, jid: &'a str) -> Pending<'a, Value> {
        let _ = jid;
        unsupported(self.name(), "get_load", "read jobs back")
    }

    /// `{minion: return dict}` for a job (Salt's `get_jid`).
    fn get_jid<'a>(&'a self, jid: &'a str) -> Pending<'a, Value> {
        let _ = jid;
        unsupported(self.name(), "get_jid", "read returns back")
    }

    /// `{minion: return dict}` of each minion's latest run of `fun` (Salt's `get_fun`).
    fn get_fun<'a>(&'a self, fun: &'a str) -> Pending<'a, Value> {
        let _ = fun;
        unsupported(self.name(), "get_fun", "read returns back")
    }

    /// Every job stored, by jid (Salt's `get_jids`): each job's [`jid_instance`], as Salt's
    /// returners answer.
    fn get_jids(&self) -> Pending<'_, Value> {
        unsupported(self.name(), "get_jids", "read jobs back")
    }

    /// The ids of the minions with returns stored (Salt's `get_minions`).
    fn get_minions(&self) -> Pending<'_, Vec<String>> {
        unsupported(self.name(), "get_minions", "read returns back")
    }
}

/// The answer of a returner function the returner lacks.
fn unsupported<T: Send + 'static>(
    returner: &'static str,
    function: &'static str,
    what: &'static str,
) -> Pending<'static, T> {
    let err = ReturnerError::Unsupported {
        returner,
        function,
        what,
    };
    Box::pin(std::future::ready(Err(err)))
}

/// Where a returner reads its options, as Salt's `get_returner_options` does: `<name>.<option>`
/// (or `<name>: {<option>: …}`) in the configuration; with a `ret_config` profile
/// (`--return_config`), `<profile>.<name>.<option>` first; `ret_kwargs` (`--return_kwargs`)
/// over all of them.
#[derive(Debug, Clone)]
pub struct Options {
    name: &'static str,
    config: Config,
    profile: Option<String>,
    kwargs: Vec<(Value, Value)>,
}

impl Options {
    /// The options of returner `name` in `config`.
    pub fn new(name: &'static str, config: &Config) -> Self {
        Self {
            name,
            config: config.clone(),
            profile: None,
            kwargs: Vec::new(),
        }
    }

    /// With the `ret_config` profile and `ret_kwargs` a return or a command names.
    pub fn with(mut self, profile: Option<&str>, kwargs: Option<&Value>) -> Self {
        self.profile = profile.filter(|p| !p.is_empty()).map(str::to_owned);
        if let Some(Value::Map(entries)) = kwargs {
            self.kwargs = entries.clone();
        }
        self
    }

    /// The configuration the options come from (for options that are not the returner's own,
    /// such as the master's `id`).
    pub fn config(&self) -> &Config {
        &self.config
    }

    /// The value of `option`, or `None` when unset (or set empty, as Salt skips falsy values).
    pub fn get(&self, option: &str) -> Option<Value> {
        if let Some((_, value)) = self
            .kwargs
            .iter()
            .find(|(key, _)| key.as_str() == Some(option))
        {
            return Some(value.clone());
        }
        let profile = self.profile.as_ref().and_then(|profile| {
            self.lookup(&format!("{profile}.{}", self.name), option)
                // Salt skips an option set to a false value (`""`, `0`, `False`) and reads on.
                .filter(crate::py::value::truthy)
        });
        profile
            .or_else(|| self.lookup(self.name, option))
            .filter(crate::py::value::truthy)
    }

    /// `<prefix>.<option>` as one key, or `option` in the map under `<prefix>`; and the same
    /// under `returner.`, the spelling Salt's documentation also gives.
    fn lookup(&self, prefix: &str, option: &str) -> Option<Value> {
        [prefix.to_owned(), format!("returner.{prefix}")]
            .iter()
            .find_map(|prefix| {
                self.config
                    .get(prefix)
                    .and_then(|nested| map_get(nested, option))
                    .or_else(|| self.config.get(&format!("{prefix}.{option}")))
                    .cloned()
            })
    }

    /// `option` as text, or `default`.
    pub fn text(&self, option: &str, default: &str) -> Result<String, ReturnerError> {
        match self.get(option) {
            None => Ok(default.to_owned()),
            Some(Value::String(text)) => Ok(text.into_str().unwrap_or_default()),
            Some(value @ (Value::Integer(_) | Value::F64(_) | Value::Boolean(_))) => {
                Ok(crate::py::value::py_str(&value).into_owned())
            }
            Some(other) => Err(self.invalid(option, "expected text", &other)),
        }
    }

    /// `option` as a whole number within `range`, or `default`.
    pub fn number(
        &self,
        option: &str,
        default: u64,
        range: std::ops::RangeInclusive<u64>,
    ) -> Result<u64, ReturnerError> {
        let Some(value) = self.get(option) else {
            return Ok(default);
        };
        let number = value
            .as_u64()
            .or_else(|| value.as_str().and_then(|text| text.trim().parse().ok()));
        match number {
            Some(number) if range.contains(&number) => Ok(number),
            _ => Err(self.invalid(
                option,
                &format!(
                    "expected a whole number from {} to {}",
                    range.start(),
                    range.end()
                ),
                &value,
            )),
        }
    }

    /// The error for an option whose value is not what the returner expects.
    pub fn invalid(&self, option: &str, expected: &str, value: &Value) -> ReturnerError {
        ReturnerError::Option {
            returner: self.name,
            option: format!("{}.{option}", self.name),
            problem: format!("{expected}, not {value}"),
        }
    }
}

/// One returner of the registry.
#[derive(Debug, Clone, Copy)]
pub struct Module {
    /// Its name, as `--return` and the configuration give it.
    pub name: &'static str,
    /// One line on what it stores where, for help and lists.
    pub summary: &'static str,
    /// Builds it from its options; connects lazily, so that a store that is away at start is
    /// retried later rather than failing the daemon.
    pub build: fn(&Options) -> Result<std::sync::Arc<dyn Returner>, ReturnerError>,
}

/// Every returner, sorted by name.
pub const MODULES: &[Module] = &[
    Module {
        name: "command",
        summary: "Each return and event as a JSON line on the stdin of a program of yours \
                  (command.cmd), kept running",
        build: command::build,
    },
    Module {
        name: "local",
        summary: "Each return printed on stdout as Salt's does, or appended as a JSON line to \
                  local.filename",
        build: local::build,
    },
    Module {
        name: "local_cache",
        summary: "The master's job cache under cachedir/jobs, Salt's default master_job_cache",
        build: local_cache::build,
    },
    Module {
        name: "mysql",
        summary: "Jobs, returns and events in MySQL or MariaDB tables, Salt's schema",
        build: mysql::build,
    },
    Module {
        name: "pgjsonb",
        summary: "Jobs, returns and events in PostgreSQL jsonb columns, Salt's schema",
        build: pgjsonb::build,
    },
    Module {
        name: "rawfile_json",
        summary: "Each return and event as a JSON line appended to rawfile_json.filename \
                  (/var/log/salt/events)",
        build: rawfile_json::build,
    },
    Module {
        name: "sqlite3",
        summary: "Jobs and returns in an SQLite database file, Salt's schema",
        build: sqlite3::build,
    },
    Module {
        name: "syslog",
        summary: "Each return as JSON in a message to the local syslog (/dev/log)",
        build: syslog::build,
    },
];

/// The names of the returners, sorted.
pub fn names() -> Vec<&'static str> {
    MODULES.iter().map(|module| module.name).collect()
}

/// The returner named `name` (Salt's spelling, e.g. `mysql`), or why there is none.
pub fn module(name: &str) -> Result<&'static Module, ReturnerError> {
    MODULES
        .iter()
        .find(|module| module.name == name)
        .ok_or_else(|| ReturnerError::Unknown {
            name: crate::event::tag::printable(&crate::output::clip(name, 64)).into_owned(),
        })
}

/// Builds returner `name` with its options from `config`, the `ret_config` profile and
/// `ret_kwargs`.
pub fn build(
    name: &str,
    config: &Config,
    profile: Option<&str>,
    kwargs: Option<&Value>,
) -> Result<std::sync::Arc<dyn Returner>, ReturnerError> {
    let module = module(name)?;
    (module.build)(&Options::new(module.name, config).with(profile, kwargs))
}

/// A job as Salt's `get_jids` lists it (`format_jid_instance`): `Function`, `Arguments`,
/// `Target`, `Target-type`, `User`, the `Metadata` of the load (or of its `kwargs`) when it has
/// some, and `StartTime` read from the jid.
pub fn jid_instance(jid: &str, load: &Value) -> Value {
    let field = |key, default: &str| {
        map_get(load, key)
            .cloned()
            .unwrap_or_else(|| Value::from(default))
    };
    // Python's `list(load.get("arg", []))`.
    let arguments = match map_get(load, "arg") {
        Some(Value::Array(items)) => items.clone(),
        Some(Value::Map(entries)) => entries.iter().map(|(key, _)| key.clone()).collect(),
        Some(Value::String(text)) => text
            .as_str()
            .unwrap_or_default()
            .chars()
            .map(|c| Value::from(c.to_string()))
            .collect(),
        _ => Vec::new(),
    };
    let mut instance = vec![
        (Value::from("Function"), field("fun", "unknown-function")),
        (Value::from("Arguments"), Value::Array(arguments)),
        (Value::from("Target"), field("tgt", "unknown-target")),
        (Value::from("Target-type"), field("tgt_type", "list")),
        (Value::from("User"), field("user", "root")),
    ];
    let metadata = map_get(load, "metadata")
        .or_else(|| map_get(load, "kwargs").and_then(|kwargs| map_get(kwargs, "metadata")));
    if let Some(metadata) = metadata {
        instance.push((Value::from("Metadata"), metadata.clone()));
    }
    instance.push((
        Value::from("StartTime"),
        Value::from(crate::event::jid::jid_to_time(jid)),
    ));
    Value::Map(instance)
}

/// Returner names as Salt accepts them where one or several may be given (`--return a,b`,
/// `event_return: [a, b]`, `returner: a`): a comma-separated string or a list.
pub fn listed(value: &Value) -> Vec<String> {
    match value {
        Value::String(text) => text
            .as_str()
            .unwrap_or_default()
            .split(',')
            .map(str::trim)
            .filter(|name| !name.is_empty())
            .map(str::to_owned)
            .collect(),
        Value::Array(items) => items.iter().flat_map(listed).collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn master_config(yaml: &str) -> Config {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("master"), yaml).unwrap();
        Config::load(crate::config::Role::Master, Some(dir.path())).unwrap()
    }

    #[test]
    fn options_are_read_where_salt_reads_them() {
        let config = master_config(
            "mysql.host: flat\nmysql.port: 3307\nreturner.mysql.user: prefixed\n\
             mysql:\n  db: nested\nalt.mysql.host: profiled\nalt.mysql.db: ''\n",
        );
        let options = Options::new("mysql", &config);
        assert_eq!(options.text("host", "localhost").unwrap(), "flat");
        assert_eq!(options.number("port", 3306, 1..=65535).unwrap(), 3307);
        assert_eq!(options.text("user", "salt").unwrap(), "prefixed");
        assert_eq!(options.text("db", "salt").unwrap(), "nested");
        assert_eq!(options.text("pass", "salt").unwrap(), "salt");

        let kwargs = Value::Map(vec![(Value::from("port"), Value::from(4000))]);
        let profiled = options.clone().with(Some("alt"), Some(&kwargs));
        assert_eq!(profiled.text("host", "localhost").unwrap(), "profiled");
        // An empty profile value falls back to the returner's own, as in Salt.
        assert_eq!(profiled.text("db", "salt").unwrap(), "nested");
        assert_eq!(profiled.number("port", 3306, 1..=65535).unwrap(), 4000);

        let err = Options::new("mysql", &master_config("mysql.port: many\n"))
            .number("port", 3306, 1..=65535)
            .unwrap_err()
            .to_string();
        assert!(err.contains("mysql.port") && err.contains("many"), "{err}");
    }

    /// Salt 3007.8's `salt.utils.jid.format_jid_instance` on the same loads.
    #[test]
    fn jobs_are_listed_as_salts_format_jid_instance_lists_them() {
        let json = |text: &str| serde_json::from_str::<Value>(text).unwrap();
        for (jid, load, want) in [
            (
                "20261203052611503387",
                r#"{"fun": "test.arg", "arg": "ab", "tgt": "web*", "tgt_type": "glob",
                    "user": "sudo_ops", "kwargs": {"metadata": {"x": 1}}}"#,
                r#"{"Function": "test.arg", "Arguments": ["a", "b"], "Target": "web*",
                    "Target-type": "glob", "User": "sudo_ops", "Metadata": {"x": 1},
                    "StartTime": "2026, Dec 03 05:26:11.503387"}"#,
            ),
            (
                "req",
                r#"{"metadata": {"y": 2}, "arg": {"k": "v"}}"#,
                r#"{"Function": "unknown-function", "Arguments": ["k"],
                    "Target": "unknown-target", "Target-type": "list", "User": "root",
                    "Metadata": {"y": 2}, "StartTime": ""}"#,
            ),
            (
                "20261203052611503387_42",
                "{}",
                r#"{"Function": "unknown-function", "Arguments": [], "Target": "unknown-target",
                    "Target-type": "list", "User": "root",
                    "StartTime": "2026, Dec 03 05:26:11.503387"}"#,
            ),
        ] {
            assert_eq!(jid_instance(jid, &json(load)), json(want), "{load}");
        }
    }

    #[test]
    fn names_are_listed_as_salt_accepts_them() {
        assert_eq!(listed(&Value::from("mysql, syslog")), ["mysql", "syslog"]);
        let list = Value::Array(vec![Value::from("a"), Value::from("b,c")]);
        assert_eq!(listed(&list), ["a", "b", "c"]);
        let err = module("nosuch").unwrap_err().to_string();
        assert!(
            err.contains("nosuch") && err.contains("local_cache"),
            "{err}"
        );
    }
}
