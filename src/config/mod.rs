//! Salt-compatible configuration: `<config_dir>/master` or `<config_dir>/minion` plus the files
//! it includes (`default_include`, by default `master.d/*.conf` / `minion.d/*.conf`, and
//! `include`), Salt's defaults, and the paths derived from them.
//!
//! Options are kept as the YAML map Salt would load (so later features read new keys without a
//! schema change), with the values Salt takes for another type converted to it (a quoted number
//! for a number option, a number for a string option), behind typed accessors for the keys halite
//! uses.

mod address;
pub(crate) mod dictupdate;
mod include;
mod options;
mod paths;

use std::path::{Path, PathBuf};

use crate::event::{Value, map_get, map_set};
use crate::ipc::{BusAddress, Endpoint};
use crate::salt_yaml;
use crate::wire::Framing;

pub use address::parse_host_port;
pub use include::Unmatched;
pub use options::Unknown;
pub use paths::{
    canonical_name, create_dir_all, file_hexdigest, file_in_the_way, hexdigest, open_plain_file,
    user_runtime_dir,
};

/// Salt's configuration directory when `-c` is not given.
pub const DEFAULT_CONFIG_DIR: &str = "/etc/salt";

/// Salt's default `max_event_size`, for master and minion alike.
pub const DEFAULT_MAX_EVENT_SIZE: u64 = 1_048_576;

/// Which daemon a configuration belongs to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Role {
    /// `salt-master`, `salt-run`.
    Master,
    /// `salt-minion`, `salt-call`.
    Minion,
}

impl Role {
    /// The config file's name, also the default `sock_dir` leaf.
    pub fn name(self) -> &'static str {
        match self {
            Role::Master => "master",
            Role::Minion => "minion",
        }
    }
}

/// What went wrong reading configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// A config file exists but could not be read.
    #[error("cannot read config file {path}: {source}")]
    Read {
        /// The file.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A config file is not valid YAML.
    #[error("invalid YAML in config file {path}: {source}")]
    Yaml {
        /// The file.
        path: PathBuf,
        /// The parser's message, with line and column.
        source: salt_yaml::YamlError,
    },
    /// An option has a value of the wrong kind, found checking the configuration at start.
    #[error("option {key} {place}: {expected}, got {value}")]
    Invalid {
        /// The option.
        key: String,
        /// Where it is set: `in <file>` or `from the command line`.
        place: String,
        /// The value found.
        value: String,
        /// What it should be.
        expected: &'static str,
    },
    /// A config file's top level is not a map.
    #[error("config file {0} must hold a YAML map of options")]
    NotAMap(PathBuf),
    /// An included file includes, through its own includes, a file whose includes are being
    /// read: Salt would read them forever.
    #[error(
        "config file {from} includes {file}, whose include is already being read (an include \
         loop); remove one of the includes"
    )]
    IncludeLoop {
        /// The file included again.
        file: PathBuf,
        /// The file including it.
        from: PathBuf,
    },
    /// Includes name more files than a configuration may read.
    #[error(
        "config file {file} includes more files than the {limit} a configuration may read; \
         include fewer or narrower globs"
    )]
    TooManyFiles {
        /// The file whose include went past the limit.
        file: PathBuf,
        /// The limit.
        limit: usize,
    },
    /// An option has a value of the wrong kind.
    #[error("option {key}: {expected}, got {value}")]
    BadValue {
        /// The option.
        key: String,
        /// The value found.
        value: String,
        /// What it should be.
        expected: &'static str,
    },
    /// A socket in `sock_dir` would have a path longer than a Unix socket's can be.
    #[error(
        "socket path {path} is {len} bytes, over the {max} a Unix socket path can have; set a shorter sock_dir",
        max = crate::ipc::MAX_SOCKET_PATH
    )]
    SocketPathTooLong {
        /// The socket's path.
        path: PathBuf,
        /// Its length in bytes.
        len: usize,
    },
    /// The per-user runtime directory is not this user's alone.
    #[error("runtime directory {path} {problem}; {fix}")]
    RuntimeDir {
        /// The directory.
        path: PathBuf,
        /// What is wrong with it.
        problem: String,
        /// What to do.
        fix: &'static str,
    },
    /// The per-user runtime directory cannot be created, inspected or made private.
    #[error("cannot set up runtime directory {path}: {source}")]
    RuntimeDirIo {
        /// The directory.
        path: PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A directory option is unset, Salt's default needs root and this user has no private
    /// place for it.
    #[error(
        "{key} is not set and this user has no private place for it (HOME {home} is not \
         writable, neither {variable} nor XDG_RUNTIME_DIR is set); set {key} in the config"
    )]
    NoUserDir {
        /// The option.
        key: &'static str,
        /// HOME, or `unset`.
        home: String,
        /// The XDG variable that would have named a place.
        variable: &'static str,
    },
}

/// `ipc_framing`: which framing to write to bus sockets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FramingChoice {
    /// Publishers write bare frames; pull-socket clients find out what the daemon accepts.
    Auto,
    /// Always this framing.
    Fixed(Framing),
}

/// A number of seconds (integer or float, not negative, not absurdly large) as a duration.
pub fn seconds(value: &Value) -> Option<std::time::Duration> {
    let seconds = value
        .as_f64()
        .or_else(|| value.as_i64().map(|n| n as f64))
        .or_else(|| value.as_u64().map(|n| n as f64))?;
    // Callers double and triple these (backoffs, keepalives): past a century is no duration.
    (0.0..=MAX_SECONDS)
        .contains(&seconds)
        .then(|| std::time::Duration::try_from_secs_f64(seconds).ok())
        .flatten()
}

/// The longest duration [`seconds`] takes: a hundred years.
const MAX_SECONDS: f64 = 100.0 * 365.25 * 86_400.0;

/// Something a daemon warns about at start and `--check-config` counts as a problem: the
/// configuration works, most likely not as meant.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Warning {
    /// An `include` that matches no file.
    Unmatched(Unmatched),
    /// An option neither Salt nor halite knows.
    Unknown(Unknown),
    /// A minion's saved schedule that is not valid YAML: read as empty, as Salt reads it, and
    /// set aside by the start ([`Config::set_aside_broken_schedules`]).
    BrokenSchedule {
        /// The file.
        path: PathBuf,
        /// The parser's message.
        problem: String,
    },
}

impl std::fmt::Display for Warning {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Warning::Unmatched(unmatched) => unmatched.fmt(f),
            Warning::Unknown(unknown) => unknown.fmt(f),
            Warning::BrokenSchedule { path, problem } => write!(
                f,
                "invalid YAML in the saved schedule {}: {problem}; the minion starts without it and renames it {}",
                path.display(),
                set_aside(path).display()
            ),
        }
    }
}

/// A loaded configuration.
#[derive(Debug, Clone)]
pub struct Config {
    role: Role,
    config_dir: PathBuf,
    opts: Vec<(Value, Value)>,
    /// The file each option was last set in (none: set on the command line).
    origins: Vec<(String, Option<PathBuf>)>,
    /// The `include`s that matched no file.
    unmatched: Vec<Unmatched>,
    /// Saved schedules read as empty for their bad YAML, with the parser's message.
    broken_schedules: Vec<(PathBuf, String)>,
}

impl Config {
    /// Loads `<config_dir>/<role>` and the files it includes, as Salt merges them (see
    /// [`include`]), and converts the values Salt takes for another type. A missing file means
    /// Salt's defaults, as with Salt.
    pub fn load(role: Role, config_dir: Option<&Path>) -> Result<Self, ConfigError> {
        let config_dir = config_dir.unwrap_or(Path::new(DEFAULT_CONFIG_DIR));
        // Absolute as Salt makes it: a daemon changes to `/` and reloads it later.
        let config_dir = from_start_dir(config_dir);
        let mut config = Self {
            role,
            config_dir,
            opts: Vec::new(),
            origins: Vec::new(),
            unmatched: Vec::new(),
            broken_schedules: Vec::new(),
        };
        include::read(&mut config)?;
        options::coerce(&mut config.opts);
        Ok(config)
    }

    /// What a daemon warns about at start: includes that match nothing, then unknown options.
    pub fn warnings(&self) -> Vec<Warning> {
        let unmatched = self.unmatched.iter().cloned().map(Warning::Unmatched);
        let broken = self
            .broken_schedules
            .iter()
            .map(|(path, problem)| Warning::BrokenSchedule {
                path: path.clone(),
                problem: problem.clone(),
            });
        unmatched
            .chain(broken)
            .chain(self.unknown_options().into_iter().map(Warning::Unknown))
            .collect()
    }

    /// Renames each saved schedule that is not valid YAML to `<file>YAMLError`, as Salt's minion
    /// does, so that the schedule it saves next starts afresh; a rename that fails is returned.
    pub fn set_aside_broken_schedules(&self) -> Vec<String> {
        self.broken_schedules
            .iter()
            .filter_map(|(path, _)| {
                std::fs::rename(path, set_aside(path)).err().map(|err| {
                    format!(
                        "cannot rename {} to {}: {err}",
                        path.display(),
                        set_aside(path).display()
                    )
                })
            })
            .collect()
    }

    /// Whether the main file exists (without it, the configuration is Salt's defaults and
    /// whatever `master.d`/`minion.d` holds).
    pub fn file_exists(&self) -> bool {
        self.file().exists()
    }

    /// The directory of `default_include`'s files (`<config_dir>/minion.d` by default), where a
    /// minion saves its schedule and beacons, as Salt does.
    pub fn include_dir(&self) -> PathBuf {
        let default = format!("{}.d/*.conf", self.role.name());
        // A list's first pattern, as the file a minion reads back first.
        let pattern = match self.get("default_include") {
            Some(Value::Array(patterns)) => patterns.first().and_then(Value::as_str),
            Some(pattern) => pattern.as_str(),
            None => None,
        }
        .unwrap_or(&default);
        match Path::new(pattern).parent() {
            Some(dir) if !dir.as_os_str().is_empty() => self.config_dir.join(dir),
            _ => self.config_dir.clone(),
        }
    }

    /// Loads the configuration of the other daemon that shares this one's config dir (a
    /// co-located minion reads the master's to find its sockets).
    pub fn sibling(&self, role: Role) -> Result<Self, ConfigError> {
        Self::load(role, Some(&self.config_dir))
    }

    /// Sets an option, as a command-line flag overriding the file does.
    pub fn set(&mut self, key: &str, value: impl Into<Value>) {
        map_set(&mut self.opts, Value::from(key), value.into());
        self.origins.retain(|(known, _)| known != key);
        self.origins.push((key.to_owned(), None));
    }

    /// Records `file` as where each of `options` is set, replacing earlier files.
    fn note_origins(&mut self, options: &[(Value, Value)], file: &Path) {
        for key in options.iter().filter_map(|(key, _)| key.as_str()) {
            self.origins.retain(|(known, _)| known != key);
            self.origins.push((key.to_owned(), Some(file.to_owned())));
        }
    }

    /// The file that sets `key` (the main file when none is recorded).
    fn origin(&self, key: &str) -> PathBuf {
        self.origins
            .iter()
            .find(|(known, _)| known == key)
            .and_then(|(_, file)| file.clone())
            .unwrap_or_else(|| self.file())
    }

    /// `err` about `key`, naming where `key` is set.
    pub(crate) fn locate(&self, key: &str, err: ConfigError) -> ConfigError {
        let ConfigError::BadValue {
            value, expected, ..
        } = err
        else {
            return err;
        };
        ConfigError::Invalid {
            key: key.to_owned(),
            place: self.place(key),
            value,
            expected,
        }
    }

    /// Where option `key` is set, for errors: `in FILE` or `from the command line`.
    pub(crate) fn place(&self, key: &str) -> String {
        match self.origins.iter().find(|(known, _)| known == key) {
            Some((_, None)) => "from the command line".to_owned(),
            _ => format!("in {}", self.origin(key).display()),
        }
    }

    /// The raw value of an option, if set in a file or by [`Config::set`].
    pub fn get(&self, key: &str) -> Option<&Value> {
        self.opts
            .iter()
            .find(|(k, _)| k.as_str() == Some(key))
            .map(|(_, v)| v)
    }

    /// Every option as one map, Salt's `opts` dict.
    pub fn as_value(&self) -> Value {
        Value::Map(self.opts.clone())
    }

    /// Which daemon this configuration is for.
    pub fn role(&self) -> Role {
        self.role
    }

    /// The directory the configuration was read from.
    pub fn config_dir(&self) -> &Path {
        &self.config_dir
    }

    /// The main configuration file, `<config_dir>/<role>` (Salt's `conf_file`).
    pub fn file(&self) -> PathBuf {
        self.config_dir.join(self.role.name())
    }

    /// A string option, or `None` when unset or null.
    pub fn get_str(&self, key: &str) -> Result<Option<&str>, ConfigError> {
        match self.get(key) {
            None | Some(Value::Nil) => Ok(None),
            Some(Value::String(s)) if s.as_str().is_some() => Ok(s.as_str()),
            Some(other) => Err(bad_value(key, other, "expected a string")),
        }
    }

    /// An unsigned integer option with a default.
    pub fn get_u64(&self, key: &str, default: u64) -> Result<u64, ConfigError> {
        match self.get(key) {
            None | Some(Value::Nil) => Ok(default),
            Some(value) => value
                .as_u64()
                .ok_or_else(|| bad_value(key, value, "expected a non-negative integer")),
        }
    }

    /// A boolean option with a default.
    pub fn get_bool(&self, key: &str, default: bool) -> Result<bool, ConfigError> {
        match self.get(key) {
            None | Some(Value::Nil) => Ok(default),
            Some(value) => value
                .as_bool()
                .ok_or_else(|| bad_value(key, value, "expected True or False")),
        }
    }

    /// `root_dir`: prefixed to Salt's path options that are not already under it.
    pub fn root_dir(&self) -> Result<PathBuf, ConfigError> {
        // As Salt's, a relative root_dir is taken from where the command starts, so that a
        // daemon in the background (in `/`) uses the same files.
        Ok(from_start_dir(Path::new(
            self.get_str("root_dir")?.unwrap_or("/"),
        )))
    }

    /// A path option resolved as Salt resolves it against `root_dir`.
    pub fn path(&self, key: &str, default: &str) -> Result<PathBuf, ConfigError> {
        let raw = self.get_str(key)?.unwrap_or(default);
        Ok(paths::prepend_root_dir(&self.root_dir()?, Path::new(raw)))
    }

    /// `sock_dir`. When neither `sock_dir` nor `root_dir` is configured and Salt's default
    /// (`/var/run/salt/<role>`) cannot be used by this user, a per-user runtime directory is used
    /// instead, so a bus works out of the box without root. Every halite command applies the same
    /// rule, so daemons and clients agree.
    pub fn sock_dir(&self) -> Result<PathBuf, ConfigError> {
        let default = format!("/var/run/salt/{}", self.role.name());
        let publish = self.publish_file_name()?;
        self.dir_or_user_fallback("sock_dir", &default, Some(&publish), || {
            Ok(user_runtime_dir()?.join(self.role.name()))
        })
    }

    /// `pki_dir` (Salt's `/etc/salt/pki/<role>`), with the same per-user fallback as
    /// [`Config::sock_dir`]: `$XDG_DATA_HOME/halite/<role>/pki` (or `~/.local/share/…`, or the
    /// runtime directory when it is `$XDG_RUNTIME_DIR`'s; never `/tmp`).
    pub fn pki_dir(&self) -> Result<PathBuf, ConfigError> {
        let default = format!("/etc/salt/pki/{}", self.role.name());
        self.dir_or_user_fallback("pki_dir", &default, None, || {
            Ok(paths::user_data_dir("pki_dir")?
                .join(self.role.name())
                .join("pki"))
        })
    }

    /// `cachedir` (Salt's `/var/cache/salt/<role>`), with the same per-user fallback as
    /// [`Config::sock_dir`]: `$XDG_CACHE_HOME/halite/<role>` (or `~/.cache/…`, or the runtime
    /// directory when it is `$XDG_RUNTIME_DIR`'s; never `/tmp`).
    pub fn cachedir(&self) -> Result<PathBuf, ConfigError> {
        let default = format!("/var/cache/salt/{}", self.role.name());
        self.dir_or_user_fallback("cachedir", &default, None, || {
            Ok(paths::user_cache_dir("cachedir")?.join(self.role.name()))
        })
    }

    /// A directory option: as configured (under `root_dir`), else Salt's default when this user
    /// can use it (or `marker` already exists there), else `fallback()`.
    fn dir_or_user_fallback(
        &self,
        key: &str,
        default: &str,
        marker: Option<&str>,
        fallback: impl FnOnce() -> Result<PathBuf, ConfigError>,
    ) -> Result<PathBuf, ConfigError> {
        let configured = self.get_str(key)?.is_some() || self.get_str("root_dir")?.is_some();
        let dir = self.path(key, default)?;
        if configured
            || paths::usable_dir(&dir)
            || marker.is_some_and(|marker| dir.join(marker).exists())
        {
            return Ok(dir);
        }
        fallback()
    }

    /// `hash_type`, default sha256.
    pub fn hash_type(&self) -> Result<&str, ConfigError> {
        Ok(self.get_str("hash_type")?.unwrap_or("sha256"))
    }

    /// A duration option given in seconds (integer or float), with a default; both go through
    /// the one checked conversion, [`seconds`].
    pub fn get_seconds(&self, key: &str, default: f64) -> Result<std::time::Duration, ConfigError> {
        let default = Value::F64(default);
        let value = match self.get(key) {
            None | Some(Value::Nil) => &default,
            Some(value) => value,
        };
        seconds(value).ok_or_else(|| bad_value(key, value, "expected a number of seconds"))
    }

    /// A duration option given in milliseconds (integer or float), with a default in
    /// milliseconds; checked as [`seconds`] checks seconds.
    pub fn get_millis(&self, key: &str, default: u64) -> Result<std::time::Duration, ConfigError> {
        let value = match self.get(key) {
            None | Some(Value::Nil) => return Ok(std::time::Duration::from_millis(default)),
            Some(value) => value,
        };
        let millis = value
            .as_f64()
            .or_else(|| value.as_i64().map(|n| n as f64))
            .or_else(|| value.as_u64().map(|n| n as f64));
        millis
            .and_then(|millis| seconds(&Value::F64(millis / 1000.0)))
            .ok_or_else(|| bad_value(key, value, "expected a number of milliseconds"))
    }

    /// A port option with a default.
    pub fn get_port(&self, key: &str, default: u16) -> Result<u16, ConfigError> {
        port(self.get_u64(key, u64::from(default))?)
    }

    fn publish_file_name(&self) -> Result<String, ConfigError> {
        Ok(match self.role {
            Role::Master => "master_event_pub.ipc".to_owned(),
            Role::Minion => format!("minion_event_{}_pub.ipc", self.minion_hash()?),
        })
    }

    /// `ipc_mode: tcp` puts the bus on loopback ports instead of socket files.
    pub fn tcp_mode(&self) -> Result<bool, ConfigError> {
        Ok(self.get_str("ipc_mode")?.is_some_and(|mode| mode == "tcp"))
    }

    /// `max_event_size`.
    pub fn max_event_size(&self) -> Result<u64, ConfigError> {
        self.get_u64("max_event_size", DEFAULT_MAX_EVENT_SIZE)
    }

    /// `ipc_framing`: `auto` (default), `bare` or `length_prefixed`.
    pub fn framing(&self) -> Result<FramingChoice, ConfigError> {
        match self.get_str("ipc_framing")? {
            None | Some("auto") => Ok(FramingChoice::Auto),
            Some("bare") => Ok(FramingChoice::Fixed(Framing::Bare)),
            Some("length_prefixed") => Ok(FramingChoice::Fixed(Framing::LengthPrefixed)),
            Some(other) => Err(ConfigError::BadValue {
                key: "ipc_framing".into(),
                value: other.into(),
                expected: "expected auto, bare or length_prefixed",
            }),
        }
    }

    /// The minion id: `id` from the config, else `<config_dir>/minion_id`, else the host's fully
    /// qualified name, as Salt chooses it. On a master this is `<host>_master`, like Salt's.
    pub fn id(&self) -> Result<String, ConfigError> {
        if let Some(id) = self.get_str("id")? {
            return Ok(id.to_owned());
        }
        match self.role {
            Role::Master => Ok(format!("{}_master", paths::fqdn())),
            Role::Minion => {
                let cached = std::fs::read_to_string(self.config_dir.join("minion_id")).ok();
                Ok(cached
                    .map(|id| id.trim().to_owned())
                    .filter(|id| !id.is_empty())
                    .unwrap_or_else(paths::fqdn))
            }
        }
    }

    /// The first ten hex digits of the id's hash, which name a minion's socket files
    /// (`hash_type`, default sha256; `hash_id` wins over `id` when set).
    pub fn minion_hash(&self) -> Result<String, ConfigError> {
        let id = match self.get_str("hash_id")? {
            Some(hash_id) => hash_id.to_owned(),
            None => self.id()?,
        };
        let hash_type = self.get_str("hash_type")?.unwrap_or("sha256");
        paths::id_hash(&id, hash_type).ok_or_else(|| ConfigError::BadValue {
            key: "hash_type".into(),
            value: hash_type.into(),
            expected: "expected one of md5, sha1, sha224, sha256, sha384, sha512",
        })
    }

    /// This configuration's own bus: the master's, or the minion's.
    pub fn bus(&self) -> Result<BusAddress, ConfigError> {
        self.bus_for(self.role)
    }

    /// The bus of `node` (`master` or `minion`) as seen with these options, the way
    /// `state.event node=…` resolves it.
    pub fn bus_for(&self, node: Role) -> Result<BusAddress, ConfigError> {
        self.bus_in(node, &self.sock_dir()?)
    }

    /// The bus of `node` in an explicit socket directory.
    pub fn bus_in(&self, node: Role, sock_dir: &Path) -> Result<BusAddress, ConfigError> {
        if self.tcp_mode()? {
            let (publish, pull) = match node {
                Role::Master => (
                    self.get_u64("tcp_master_pub_port", 4512)?,
                    self.get_u64("tcp_master_pull_port", 4513)?,
                ),
                Role::Minion => (
                    self.get_u64("tcp_pub_port", 4510)?,
                    self.get_u64("tcp_pull_port", 4511)?,
                ),
            };
            return Ok(BusAddress {
                publish: Endpoint::Tcp(port(publish)?),
                pull: Endpoint::Tcp(port(pull)?),
            });
        }
        let stem = match node {
            Role::Master => "master_event".to_owned(),
            Role::Minion => format!("minion_event_{}", self.minion_hash()?),
        };
        Ok(BusAddress {
            publish: socket_in(sock_dir, &format!("{stem}_pub.ipc"))?,
            pull: socket_in(sock_dir, &format!("{stem}_pull.ipc"))?,
        })
    }
}

/// The Unix socket `name` in `sock_dir`, refused when its path is too long to bind or reach,
/// so that every daemon and client says so in the same words before trying.
pub fn socket_in(sock_dir: &Path, name: &str) -> Result<Endpoint, ConfigError> {
    let path = sock_dir.join(name);
    let len = path.as_os_str().len();
    if len > crate::ipc::MAX_SOCKET_PATH {
        return Err(ConfigError::SocketPathTooLong { path, len });
    }
    Ok(Endpoint::Unix(path))
}

fn port(value: u64) -> Result<u16, ConfigError> {
    u16::try_from(value).map_err(|_| ConfigError::BadValue {
        key: "port".into(),
        value: value.to_string(),
        expected: "expected a TCP port number up to 65535",
    })
}

pub(crate) fn bad_value(key: &str, value: &Value, expected: &'static str) -> ConfigError {
    ConfigError::BadValue {
        key: key.to_owned(),
        value: shown(value),
        expected,
    }
}

/// `bad_value` for an option of `file` that cannot wait for [`Config::validate`].
fn invalid_in(key: &str, value: &Value, expected: &'static str, file: &Path) -> ConfigError {
    ConfigError::Invalid {
        key: key.to_owned(),
        place: format!("in {}", file.display()),
        value: shown(value),
        expected,
    }
}

/// A value in an error: a string quoted, so that `got "soon"` cannot be mistaken for part of the
/// sentence; anything else as Python shows it (`None`, `True`, `[1]`).
fn shown(value: &Value) -> String {
    match value.as_str() {
        Some(text) => format!("{text:?}"),
        None => crate::py::value::repr(value),
    }
}

/// The options of one config file (none when it does not exist).
fn read_map(path: &Path) -> Result<Vec<(Value, Value)>, ConfigError> {
    let text = match read_config_text(path) {
        Ok(text) => text,
        Err(err) if err.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(source) => {
            return Err(ConfigError::Read {
                path: path.to_owned(),
                source,
            });
        }
    };
    let value = salt_yaml::load(&text).map_err(|source| ConfigError::Yaml {
        path: path.to_owned(),
        source,
    })?;
    match value {
        Value::Nil => Ok(Vec::new()),
        Value::Map(entries) => Ok(entries),
        _ => Err(ConfigError::NotAMap(path.to_owned())),
    }
}

/// The working directory the process started in, read once: a daemon in the background works
/// in `/` and must still find the files its relative paths named.
static START_DIR: std::sync::OnceLock<Option<PathBuf>> = std::sync::OnceLock::new();

/// `path` made absolute from the directory the process started in ([`START_DIR`]); as it is
/// when that cannot be read.
pub(crate) fn from_start_dir(path: &Path) -> PathBuf {
    if path.is_absolute() {
        return path.to_owned();
    }
    match START_DIR.get_or_init(|| std::env::current_dir().ok()) {
        Some(start) => start.join(path),
        None => path.to_owned(),
    }
}

/// The largest config file read: far past any real one, and short of what a device or a
/// runaway file (an include of `/dev/zero`) would take.
const MAX_CONFIG_FILE: u64 = 64 * 1024 * 1024;

/// The text of a config file: a regular file (a link to one is fine), not a FIFO or device
/// that could block or never end, and at most [`MAX_CONFIG_FILE`] bytes.
fn read_config_text(path: &Path) -> std::io::Result<String> {
    use std::io::Read;
    use std::os::unix::fs::OpenOptionsExt;
    // Not blocking on a FIFO without a writer; a regular file reads the same either way.
    let file = std::fs::OpenOptions::new()
        .read(true)
        .custom_flags(nix::fcntl::OFlag::O_NONBLOCK.bits())
        .open(path)?;
    if !file.metadata()?.is_file() {
        return Err(std::io::Error::other("not a regular file"));
    }
    let mut text = String::new();
    file.take(MAX_CONFIG_FILE + 1).read_to_string(&mut text)?;
    if text.len() as u64 > MAX_CONFIG_FILE {
        return Err(std::io::Error::other(format!(
            "over {} MiB, more than a config file holds",
            MAX_CONFIG_FILE >> 20
        )));
    }
    Ok(text)
}

/// Where a saved schedule with bad YAML is set aside.
fn set_aside(path: &Path) -> PathBuf {
    let mut name = path.as_os_str().to_owned();
    name.push("YAMLError");
    PathBuf::from(name)
}

/// Reads a string entry of a map value.
pub fn str_entry<'a>(map: &'a Value, key: &str) -> Option<&'a str> {
    map_get(map, key).and_then(Value::as_str)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn included_files_merge_into_each_other_and_replace_the_main_files_keys_as_salts_do() {
        let dir = tempfile::tempdir().unwrap();
        let write = |name: &str, text: &str| std::fs::write(dir.path().join(name), text).unwrap();
        std::fs::create_dir(dir.path().join("minion.d")).unwrap();
        write("minion", "beacons: {load: []}\nid: main\nmaster: [a]\n");
        write(
            "minion.d/a.conf",
            "beacons: {memusage: [{percent: 1}]}\nmaster: [b]\n",
        );
        write(
            "minion.d/beacons.conf",
            "beacons: {diskusage: []}\nmaster: [b, c]\n",
        );
        let config = Config::load(Role::Minion, Some(dir.path())).unwrap();
        let yaml = |text| salt_yaml::load(text).unwrap();
        assert_eq!(
            config.get("beacons"),
            Some(&yaml("{memusage: [{percent: 1}], diskusage: []}"))
        );
        assert_eq!(config.get("master"), Some(&yaml("[b, c]")));
        assert_eq!(config.get("id"), Some(&Value::from("main")));
    }

    #[test]
    fn an_include_of_a_device_or_fifo_is_refused_without_reading_it() {
        let dir = tempfile::tempdir().unwrap();
        nix::unistd::mkfifo(&dir.path().join("fifo"), nix::sys::stat::Mode::S_IRWXU).unwrap();
        for include in ["/dev/zero", "fifo"] {
            std::fs::write(dir.path().join("master"), format!("include: [{include}]\n")).unwrap();
            let err = Config::load(Role::Master, Some(dir.path())).unwrap_err();
            assert!(err.to_string().ends_with(": not a regular file"), "{err}");
        }
    }

    #[test]
    fn a_relative_root_dir_is_from_where_the_command_runs_as_salts() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("master"),
            "root_dir: relroot\nlog_file: logs/m\n",
        )
        .unwrap();
        let config = Config::load(Role::Master, Some(dir.path())).unwrap();
        let root = std::env::current_dir().unwrap().join("relroot");
        assert_eq!(config.root_dir().unwrap(), root);
        assert_eq!(config.path("log_file", "").unwrap(), root.join("logs/m"));
        assert_eq!(config.pki_dir().unwrap(), root.join("etc/salt/pki/master"));
    }
}
