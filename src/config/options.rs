//! Every option a configuration may hold: the ones halite reads, each with the kind of value it
//! takes, and the rest of Salt 3007.8's (`salt/config` VALID_OPTS and its default option maps),
//! which halite accepts and ignores. A name in neither is a typo until shown otherwise.
//!
//! A kind takes what Salt's type check (`_validate_opts`) lets through for the option's type, and
//! converts it to that type: Salt's check tries the type's constructor, so a quoted number passes
//! for a number and a number for a string (Salt keeps the value as written; halite converts it
//! once, on loading). halite then also checks ranges Salt does not (a negative count or
//! duration, a port past 65535).

use super::{Config, ConfigError, bad_value};
use crate::event::Value;
use crate::py::{number, value::py_str};

/// The kind of value an option halite reads takes, checked once at start. `null` means the
/// default for a string, and is refused for a number or a boolean, as Salt's check refuses it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A string; a number or a boolean becomes its Python `str()` (`5`, `2.5`, `True`).
    Str,
    /// A string as written: paths Salt joins to `root_dir`, and `hash_type`, which it lowercases;
    /// Salt fails on a number there.
    StrOnly,
    /// The minion id: anything but `null` becomes its Python `str()`, as Salt converts it on
    /// reading each file.
    Id,
    /// True or False (not `yes` in quotes, not 1).
    Bool,
    /// An integer (Salt's `int`: a quoted integer passes, `2.5` does not), read by its own parser.
    Int,
    /// A non-negative integer (sizes, counts).
    Count,
    /// A number of seconds (Salt's `float`: integer, float or a quoted one).
    Seconds,
    /// A whole number of seconds (Salt's `int`).
    WholeSeconds,
    /// A number of milliseconds (Salt's `float`).
    Millis,
    /// A TCP port (Salt's `int`).
    Port,
    /// A map or list read by its own parser (`reactor`, `file_roots`, `rest_cherrypy`, …).
    Structured,
}

impl Kind {
    /// `value` as this kind, when Salt takes it for the type but it is written as another.
    fn coerce(self, value: &Value) -> Option<Value> {
        match (self, value) {
            (Kind::Str, Value::Boolean(_) | Value::Integer(_) | Value::F32(_) | Value::F64(_)) => {
                Some(Value::from(py_str(value).into_owned()))
            }
            (Kind::Id, Value::String(_) | Value::Nil) => None,
            (Kind::Id, _) => Some(Value::from(py_str(value).into_owned())),
            (Kind::Int | Kind::Count | Kind::WholeSeconds | Kind::Port, Value::String(text)) => {
                let n = number::int(text.as_str()?)?;
                i64::try_from(n)
                    .map(Value::from)
                    .or_else(|_| u64::try_from(n).map(Value::from))
                    .ok()
            }
            (Kind::Seconds | Kind::Millis, Value::String(text)) => {
                number::float(text.as_str()?).map(Value::F64)
            }
            _ => None,
        }
    }

    /// Whether `null` is refused: Salt's check refuses it for every type but a string.
    fn refuses_null(self) -> bool {
        !matches!(
            self,
            Kind::Str | Kind::StrOnly | Kind::Id | Kind::Structured
        )
    }

    fn expected(self) -> &'static str {
        match self {
            Kind::Str | Kind::StrOnly | Kind::Id => "expected a string",
            Kind::Bool => "expected True or False",
            Kind::Int => "expected an integer",
            Kind::Count => "expected a non-negative integer",
            Kind::Seconds => "expected a number of seconds",
            Kind::WholeSeconds => "expected a whole number of seconds",
            Kind::Millis => "expected a number of milliseconds",
            Kind::Port => "expected a TCP port number up to 65535",
            Kind::Structured => "expected a value",
        }
    }

    /// Checks `key`'s value in `config` as the code reading it will.
    fn check(self, config: &Config, key: &str) -> Result<(), ConfigError> {
        let value = config.get(key);
        if self.refuses_null() && value.is_some_and(Value::is_nil) {
            return Err(bad_value(key, &Value::Nil, self.expected()));
        }
        // Salt's `int` is not `float`: 2.5 and 2048.0 are refused.
        let integer = |value: Option<&Value>| match value {
            Some(value) if value.as_i64().is_none() && value.as_u64().is_none() => {
                Err(bad_value(key, value, self.expected()))
            }
            _ => Ok(()),
        };
        match self {
            Kind::Str | Kind::StrOnly | Kind::Id => config.get_str(key).map(drop),
            Kind::Bool => config.get_bool(key, false).map(drop),
            Kind::Int => integer(value),
            Kind::Count => config.get_u64(key, 0).map(drop),
            Kind::Seconds => config.get_seconds(key, 0.0).map(drop),
            Kind::WholeSeconds => {
                integer(value)?;
                config.get_seconds(key, 0.0).map(drop)
            }
            Kind::Millis => config.get_millis(key, 0).map(drop),
            Kind::Port => config.get_port(key, 0).map(drop),
            Kind::Structured => Ok(()),
        }
    }
}

/// The options halite reads, one entry each.
const HALITE: &[(&str, Kind)] = &[
    ("acceptance_wait_time", Kind::Seconds),
    ("acceptance_wait_time_max", Kind::Seconds),
    ("api_logfile", Kind::StrOnly),
    ("api_pidfile", Kind::StrOnly),
    ("auth_events", Kind::Bool),
    ("auto_accept", Kind::Bool),
    ("autosign_file", Kind::StrOnly),
    ("backup_mode", Kind::Str),
    ("beacons", Kind::Structured),
    ("cachedir", Kind::StrOnly),
    ("cluster_bus_max_age", Kind::Seconds),
    ("cluster_bus_max_bytes", Kind::Count),
    ("cluster_bus_replicas", Kind::Count),
    ("cluster_id", Kind::Str),
    ("cluster_nats", Kind::Structured),
    ("cmd_safe", Kind::Bool),
    ("color", Kind::Bool),
    ("default_include", Kind::Structured),
    ("default_top", Kind::Str),
    ("enable_fqdns_grains", Kind::Bool),
    ("enable_legacy_startup_events", Kind::Bool),
    ("event_return", Kind::Structured),
    ("event_return_blacklist", Kind::Structured),
    ("event_return_queue", Kind::Count),
    ("event_return_queue_max_seconds", Kind::WholeSeconds),
    ("event_return_whitelist", Kind::Structured),
    ("ext_job_cache", Kind::Structured),
    ("external_auth", Kind::Structured),
    ("failhard", Kind::Bool),
    ("fibre_channel_grains", Kind::Bool),
    ("file_client", Kind::Str),
    ("file_roots", Kind::Structured),
    ("gather_job_timeout", Kind::WholeSeconds),
    ("grains", Kind::Structured),
    ("hash_id", Kind::Str),
    ("hash_type", Kind::StrOnly),
    ("http_connect_timeout", Kind::Seconds),
    ("http_request_timeout", Kind::Seconds),
    ("id", Kind::Id),
    ("include", Kind::Structured),
    ("interface", Kind::Str),
    ("ipc_framing", Kind::Str),
    ("ipc_mode", Kind::Str),
    ("iscsi_grains", Kind::Bool),
    ("job_cache_max_bytes", Kind::Count),
    ("keep_jobs", Kind::Count),
    ("keep_jobs_seconds", Kind::Count),
    ("link_keepalive", Kind::Seconds),
    ("link_unadmitted_max", Kind::Count),
    ("link_unadmitted_per_address", Kind::Count),
    ("log_file", Kind::StrOnly),
    ("log_level", Kind::Str),
    ("log_level_logfile", Kind::Str),
    ("loop_interval", Kind::Seconds),
    ("master", Kind::Structured),
    ("master_finger", Kind::Str),
    ("master_job_cache", Kind::Structured),
    ("master_port", Kind::Port),
    ("master_type", Kind::Str),
    ("max_event_size", Kind::Count),
    ("max_pending_keys", Kind::Count),
    ("netapi_enable_clients", Kind::Structured),
    ("nodegroups", Kind::Structured),
    ("nvme_grains", Kind::Bool),
    ("output_indent", Kind::Structured),
    ("permissive_acl", Kind::Bool),
    ("pidfile", Kind::StrOnly),
    ("pillar_includes_override_sls", Kind::Bool),
    ("pillar_merge_lists", Kind::Bool),
    ("pillar_roots", Kind::Structured),
    ("pillar_safe_render_error", Kind::Bool),
    ("pillar_source_merging_strategy", Kind::Str),
    ("pillarenv", Kind::Str),
    ("pki_dir", Kind::StrOnly),
    ("presence_events", Kind::Bool),
    ("process_count_max", Kind::Int),
    ("reactor", Kind::Structured),
    ("reactor_refresh_interval", Kind::WholeSeconds),
    ("reactor_timeout", Kind::Seconds),
    ("reactor_worker_hwm", Kind::Count),
    ("reactor_worker_threads", Kind::Count),
    ("recon_default", Kind::Millis),
    ("recon_max", Kind::Millis),
    ("recon_randomize", Kind::Bool),
    ("rejected_retry", Kind::Bool),
    ("rest_cherrypy", Kind::Structured),
    ("rest_timeout", Kind::WholeSeconds),
    ("ret_port", Kind::Port),
    ("return_quota_bytes", Kind::Count),
    ("return_quota_window", Kind::Seconds),
    ("returner_queue_size", Kind::Count),
    ("returner_spool_max_bytes", Kind::Count),
    ("root_dir", Kind::StrOnly),
    ("saltenv", Kind::Str),
    ("schedule", Kind::Structured),
    ("schedule_returner", Kind::Structured),
    ("slow_subscriber_policy", Kind::Str),
    ("slow_subscriber_wait", Kind::Seconds),
    ("sock_dir", Kind::StrOnly),
    ("source_address", Kind::Str),
    ("state_auto_order", Kind::Bool),
    ("state_events", Kind::Bool),
    ("state_output", Kind::Str),
    ("state_output_diff", Kind::Bool),
    ("state_output_profile", Kind::Bool),
    ("state_top", Kind::Str),
    ("state_verbose", Kind::Bool),
    ("subscriber_buffer_size", Kind::Count),
    ("tcp_master_pub_port", Kind::Port),
    ("tcp_master_pull_port", Kind::Port),
    ("tcp_master_workers", Kind::Port),
    ("tcp_pub_port", Kind::Port),
    ("tcp_pull_port", Kind::Port),
    ("test", Kind::Bool),
    ("timeout", Kind::Seconds),
    ("token_dir", Kind::StrOnly),
    ("token_expire", Kind::WholeSeconds),
    ("token_expire_user_override", Kind::Structured),
    ("top_file_merging_strategy", Kind::Str),
    ("use_master_when_local", Kind::Bool),
    ("user", Kind::Str),
];

/// The top-level names Salt 3007.8 takes in its configuration, one a line: its options with
/// defaults, the names its code reads from its options (`mine_functions`, `peer_run`), and its
/// modules' names, under which a module's settings live (`mysql: {host: db1}`). halite ignores
/// those it does not read.
const SALT: &str = include_str!("salt_options.txt");

/// An option no one knows, and the known option it most resembles.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unknown {
    /// The option as written.
    pub key: String,
    /// The file that sets it.
    pub file: std::path::PathBuf,
    /// The closest known option, when one is close.
    pub suggestion: Option<&'static str>,
}

impl std::fmt::Display for Unknown {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "unknown option {} in {}", self.key, self.file.display())?;
        match self.suggestion {
            Some(known) => write!(f, ": did you mean {known}?"),
            None => Ok(()),
        }
    }
}

fn known() -> impl Iterator<Item = &'static str> {
    HALITE.iter().map(|(name, _)| *name).chain(SALT.lines())
}

/// Whether Salt or halite knows `key`. Dotted keys (`mysql.host`, `returner.sqlite3.database`)
/// configure modules, which take any name, as in Salt.
fn is_known(key: &str) -> bool {
    key.contains('.') || known().any(|name| name == key)
}

/// The known option closest to `key`, if it is close enough to be a likely typo.
fn suggest(key: &str) -> Option<&'static str> {
    known()
        .map(|name| (strsim::jaro_winkler(key, name), name))
        .filter(|(score, _)| *score >= 0.85)
        .max_by(|a, b| a.0.total_cmp(&b.0))
        .map(|(_, name)| name)
}

impl Config {
    /// The options set in the files that neither Salt nor halite knows, in file order.
    pub fn unknown_options(&self) -> Vec<Unknown> {
        self.opts
            .iter()
            .filter_map(|(key, _)| key.as_str())
            .filter(|key| !is_known(key))
            .map(|key| Unknown {
                key: key.to_owned(),
                file: self.origin(key),
                suggestion: suggest(key),
            })
            .collect()
    }

    /// Checks the value of every option halite reads, so a daemon refuses a wrong one at start
    /// with the option's name and file instead of failing or falling back at first use.
    pub fn validate(&self) -> Result<(), ConfigError> {
        for (key, kind) in HALITE {
            kind.check(self, key).map_err(|err| self.locate(key, err))?;
        }
        // Options whose strings must be one of a few words.
        self.framing()
            .map_err(|err| self.locate("ipc_framing", err))?;
        self.minion_hash()
            .map_err(|err| self.locate("hash_type", err))?;
        Ok(())
    }
}

/// Converts the values of the options halite reads that Salt takes for their type but are
/// written as another (see [`Kind`]); the rest are left for [`Config::validate`] to refuse.
pub(super) fn coerce(opts: &mut [(Value, Value)]) {
    for (key, value) in opts.iter_mut() {
        let kind = HALITE
            .iter()
            .find(|(name, _)| key.as_str() == Some(name))
            .map(|(_, kind)| *kind);
        if let Some(converted) = kind.and_then(|kind| kind.coerce(value)) {
            *value = converted;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typos_get_the_nearest_option_and_salts_options_are_known() {
        assert_eq!(suggest("reactr"), Some("reactor"));
        assert_eq!(suggest("file_root"), Some("file_roots"));
        assert!(is_known("worker_threads"));
        assert!(is_known("mysql.host"));
        assert!(!is_known("reactr"));
        assert_eq!(suggest("zzzzzz"), None);
        let mut names: Vec<&str> = HALITE.iter().map(|(name, _)| *name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), HALITE.len(), "one entry per option");
    }
}
