//! Every option a configuration may hold: the ones halite reads, each with the kind of value it
//! takes, and the rest of Salt 3007.8's (`salt/config` VALID_OPTS and its default option maps),
//! which halite accepts and ignores. A name in neither is a typo until shown otherwise.

use super::{Config, ConfigError};

/// The kind of value an option halite reads takes, checked once at start.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// A string (names, modes, paths).
    Str,
    /// True or False.
    Bool,
    /// A non-negative integer (sizes, counts).
    Count,
    /// A number of seconds, integer or float.
    Seconds,
    /// A TCP port.
    Port,
    /// A map or list read by its own parser (`reactor`, `file_roots`, `rest_cherrypy`, …).
    Structured,
}

/// The options halite reads, one entry each.
const HALITE: &[(&str, Kind)] = &[
    ("acceptance_wait_time", Kind::Seconds),
    ("acceptance_wait_time_max", Kind::Seconds),
    ("api_logfile", Kind::Str),
    ("api_pidfile", Kind::Str),
    ("auth_events", Kind::Bool),
    ("auto_accept", Kind::Bool),
    ("autosign_file", Kind::Str),
    ("backup_mode", Kind::Structured),
    ("beacons", Kind::Structured),
    ("cachedir", Kind::Str),
    ("cmd_safe", Kind::Bool),
    ("color", Kind::Bool),
    ("default_top", Kind::Str),
    ("enable_fqdns_grains", Kind::Bool),
    ("enable_legacy_startup_events", Kind::Bool),
    ("event_return", Kind::Structured),
    ("event_return_blacklist", Kind::Structured),
    ("event_return_queue", Kind::Count),
    ("event_return_queue_max_seconds", Kind::Seconds),
    ("event_return_whitelist", Kind::Structured),
    ("ext_job_cache", Kind::Structured),
    ("external_auth", Kind::Structured),
    ("failhard", Kind::Bool),
    ("fibre_channel_grains", Kind::Bool),
    ("file_client", Kind::Str),
    ("file_roots", Kind::Structured),
    ("gather_job_timeout", Kind::Seconds),
    ("grains", Kind::Structured),
    ("hash_id", Kind::Str),
    ("hash_type", Kind::Str),
    ("http_connect_timeout", Kind::Structured),
    ("http_request_timeout", Kind::Structured),
    ("id", Kind::Str),
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
    ("log_file", Kind::Str),
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
    ("pidfile", Kind::Str),
    ("pillar_includes_override_sls", Kind::Bool),
    ("pillar_merge_lists", Kind::Bool),
    ("pillar_roots", Kind::Structured),
    ("pillar_safe_render_error", Kind::Bool),
    ("pillar_source_merging_strategy", Kind::Str),
    ("pillarenv", Kind::Str),
    ("pki_dir", Kind::Str),
    ("presence_events", Kind::Bool),
    ("process_count_max", Kind::Structured),
    ("reactor", Kind::Structured),
    ("reactor_refresh_interval", Kind::Seconds),
    ("reactor_timeout", Kind::Seconds),
    ("reactor_worker_hwm", Kind::Count),
    ("reactor_worker_threads", Kind::Count),
    ("recon_default", Kind::Count),
    ("recon_max", Kind::Count),
    ("rejected_retry", Kind::Bool),
    ("rest_cherrypy", Kind::Structured),
    ("rest_timeout", Kind::Seconds),
    ("ret_port", Kind::Port),
    ("return_quota_bytes", Kind::Count),
    ("return_quota_window", Kind::Seconds),
    ("returner_queue_size", Kind::Count),
    ("returner_spool_max_bytes", Kind::Count),
    ("root_dir", Kind::Str),
    ("saltenv", Kind::Str),
    ("schedule", Kind::Structured),
    ("schedule_returner", Kind::Structured),
    ("slow_subscriber_policy", Kind::Str),
    ("sock_dir", Kind::Str),
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
    ("token_dir", Kind::Str),
    ("token_expire", Kind::Seconds),
    ("token_expire_user_override", Kind::Structured),
    ("top_file_merging_strategy", Kind::Str),
    ("use_master_when_local", Kind::Bool),
    ("user", Kind::Str),
];

/// Salt 3007.8's option names, one a line; halite ignores those it does not read.
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
            let checked = match kind {
                Kind::Str => self.get_str(key).map(drop),
                Kind::Bool => self.get_bool(key, false).map(drop),
                Kind::Count => self.get_u64(key, 0).map(drop),
                Kind::Seconds => self.get_seconds(key, 0.0).map(drop),
                Kind::Port => self.get_port(key, 0).map(drop),
                Kind::Structured => Ok(()),
            };
            checked.map_err(|err| self.locate(key, err))?;
        }
        // Options whose strings must be one of a few words.
        self.framing()
            .map_err(|err| self.locate("ipc_framing", err))?;
        self.minion_hash()
            .map_err(|err| self.locate("hash_type", err))?;
        Ok(())
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
