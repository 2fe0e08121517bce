//! The `rest_cherrypy` block of the master config: where `salt-api` listens and how.
//!
//! Salt refuses to start without `port`, and serves TLS unless `disable_ssl` is set. With no
//! block at all, halite serves plain HTTP on `127.0.0.1:8000`, so that a first try needs no
//! certificate and reaches no one but this machine.

use std::net::{IpAddr, Ipv4Addr, SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

use crate::config::{Config, ConfigError};
use crate::event::{Value, map_get};

/// The block of the master config `salt-api` reads.
pub const BLOCK: &str = "rest_cherrypy";

/// Salt's `max_request_body_size` default: 1 MiB.
const MAX_REQUEST_BODY: u64 = 1 << 20;

/// Options Salt's `rest_cherrypy` has that do not apply here: named in one log line at start.
const IGNORED: &[&str] = &[
    "collect_stats",
    "debug",
    "expire_responses",
    "thread_pool",
    "socket_queue_size",
    "queue_size",
    "log_access_file",
    "log_error_file",
    "favicon",
    "static",
    "static_path",
    "stats_disable_auth",
    "root_prefix",
    "app",
    "app_path",
];

/// How `salt-api` serves.
#[derive(Debug, Clone)]
pub struct ApiOptions {
    /// Where to listen.
    pub address: SocketAddr,
    /// The certificate and key to serve TLS with; `None` serves plain HTTP.
    pub tls: Option<TlsFiles>,
    /// The path webhooks are posted under (Salt's `webhook_url`, `/hook`).
    pub webhook_url: String,
    /// Whether webhooks need no token (Salt's `webhook_disable_auth`).
    pub webhook_disable_auth: bool,
    /// The largest request body taken, in bytes (Salt's `max_request_body_size`).
    pub max_request_body_size: u64,
    /// Whether a token may come in the query string (`token_in_query`, beyond Salt: off by
    /// default, since query strings end up in logs).
    pub token_in_query: bool,
    /// The options of the block that do not apply here.
    pub ignored: Vec<String>,
    /// The block itself, for the options each endpoint reads.
    pub block: Value,
}

/// A certificate chain and its private key, PEM files.
#[derive(Debug, Clone)]
pub struct TlsFiles {
    /// `ssl_crt`.
    pub cert: PathBuf,
    /// `ssl_key`.
    pub key: PathBuf,
    /// `ssl_chain`: intermediate certificates served after `ssl_crt`'s.
    pub chain: Option<PathBuf>,
}

impl ApiOptions {
    /// Reads the block; a value of the wrong kind or TLS without its files names the option.
    pub fn from_config(config: &Config) -> Result<Self, ConfigError> {
        match config.get("netapi_enable_clients") {
            None | Some(Value::Nil) => {}
            Some(Value::Array(names)) if names.iter().all(Value::is_str) => {}
            Some(other) => {
                return Err(ConfigError::BadValue {
                    key: "netapi_enable_clients".to_owned(),
                    value: other.to_string(),
                    expected: "a list of client names (local, runner, wheel, …)",
                });
            }
        }
        let Some(block) = config.get(BLOCK).filter(|value| !value.is_nil()) else {
            return Ok(ApiOptions {
                address: SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 8000),
                tls: None,
                webhook_url: "/hook".to_owned(),
                webhook_disable_auth: false,
                max_request_body_size: MAX_REQUEST_BODY,
                token_in_query: false,
                ignored: Vec::new(),
                block: Value::Map(Vec::new()),
            });
        };
        if block.as_map().is_none() {
            return Err(bad(BLOCK, block, "expected a map of options"));
        }
        let option = Block(block);
        let host = option.string("host")?.unwrap_or("0.0.0.0");
        let port = option.u64("port", 8000)?;
        let port = u16::try_from(port)
            .map_err(|_| bad("port", &Value::from(port), "expected a port number"))?;
        // As CherryPy, a host name (`localhost`) binds the first address it resolves to.
        let address = match host.parse::<IpAddr>() {
            Ok(ip) => SocketAddr::new(ip, port),
            Err(_) => (host, port)
                .to_socket_addrs()
                .ok()
                .and_then(|mut addresses| addresses.next())
                .ok_or_else(|| {
                    bad(
                        "host",
                        &Value::from(host),
                        "expected an IP address or a host name this machine resolves",
                    )
                })?,
        };
        let tls =
            match option.bool("disable_ssl", false)? {
                true => None,
                false => {
                    let file =
                        |key: &'static str| -> Result<PathBuf, ConfigError> {
                            option.string(key)?.map(PathBuf::from).ok_or(ConfigError::BadValue {
                        key: format!("{BLOCK}.{key}"),
                        value: "unset".to_owned(),
                        expected: "a PEM file, or `disable_ssl: True` to serve plain HTTP",
                    })
                        };
                    Some(TlsFiles {
                        cert: file("ssl_crt")?,
                        key: file("ssl_key")?,
                        chain: option.string("ssl_chain")?.map(PathBuf::from),
                    })
                }
            };
        let mut webhook_url = option.string("webhook_url")?.unwrap_or("/hook").to_owned();
        if !webhook_url.starts_with('/') {
            webhook_url.insert(0, '/');
        }
        if !webhook_url_usable(&webhook_url) {
            return Err(bad(
                "webhook_url",
                &Value::from(webhook_url),
                "a path of its own, such as /hook: not /, none of the API's paths (/login, /logout, \
                 /run, /minions, /jobs, /keys, /events, /ws, /app, /stats) or below them, and no {, } or *",
            ));
        }
        Ok(ApiOptions {
            address,
            tls,
            webhook_url,
            webhook_disable_auth: option.bool("webhook_disable_auth", false)?,
            max_request_body_size: option.u64("max_request_body_size", MAX_REQUEST_BODY)?,
            token_in_query: option.bool("token_in_query", false)?,
            ignored: IGNORED
                .iter()
                .filter(|key| map_get(block, key).is_some())
                .map(|key| (*key).to_owned())
                .collect(),
            block: block.clone(),
        })
    }
}

/// The API's own paths: a webhook URL may be none of them nor below them.
const OWN_PATHS: [&str; 10] = [
    "/login", "/logout", "/run", "/minions", "/jobs", "/keys", "/events", "/ws", "/app", "/stats",
];

/// Whether webhooks can be served under `url` (which starts with `/`) beside the API's own
/// paths: two routes for one path would stop the server.
fn webhook_url_usable(url: &str) -> bool {
    let base = url.trim_end_matches('/');
    !base.is_empty()
        && !base.contains(['{', '}', '*'])
        && !OWN_PATHS.iter().any(|own| {
            base.strip_prefix(own)
                .is_some_and(|rest| rest.is_empty() || rest.starts_with('/'))
        })
}

/// The block's options, read with the block's name in errors.
struct Block<'a>(&'a Value);

impl Block<'_> {
    fn get(&self, key: &str) -> Option<&Value> {
        map_get(self.0, key).filter(|value| !value.is_nil())
    }

    fn string(&self, key: &'static str) -> Result<Option<&str>, ConfigError> {
        match self.get(key) {
            None => Ok(None),
            Some(value) => value
                .as_str()
                .map(Some)
                .ok_or_else(|| bad(key, value, "expected a string")),
        }
    }

    fn u64(&self, key: &'static str, default: u64) -> Result<u64, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            Some(value) => value
                .as_u64()
                .ok_or_else(|| bad(key, value, "expected a non-negative integer")),
        }
    }

    fn bool(&self, key: &'static str, default: bool) -> Result<bool, ConfigError> {
        match self.get(key) {
            None => Ok(default),
            Some(value) => value
                .as_bool()
                .ok_or_else(|| bad(key, value, "expected True or False")),
        }
    }
}

/// A bad value of the block's option `key`, named `rest_cherrypy.<key>`.
pub(super) fn bad(key: &str, value: &Value, expected: &'static str) -> ConfigError {
    let key = match key {
        BLOCK => BLOCK.to_owned(),
        key => format!("{BLOCK}.{key}"),
    };
    ConfigError::BadValue {
        key,
        value: value.to_string(),
        expected,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::Role;

    fn options(text: &str) -> Result<ApiOptions, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("master"), text).unwrap();
        ApiOptions::from_config(&Config::load(Role::Master, Some(dir.path())).unwrap())
    }

    #[test]
    fn no_block_serves_plain_http_on_loopback() {
        let options = options("").unwrap();
        assert_eq!(options.address.to_string(), "127.0.0.1:8000");
        assert!(options.tls.is_none());
        assert_eq!(options.webhook_url, "/hook");
    }

    #[test]
    fn a_block_is_read_as_salt_reads_it() {
        let read = options(
            "rest_cherrypy:\n  port: 8123\n  disable_ssl: True\n  webhook_url: h\n  \
             collect_stats: True\n",
        )
        .unwrap();
        assert_eq!(read.address.to_string(), "0.0.0.0:8123");
        assert!(read.tls.is_none());
        assert_eq!(read.webhook_url, "/h");
        assert_eq!(read.ignored, ["collect_stats"]);
        let named =
            options("rest_cherrypy:\n  host: localhost\n  port: 8123\n  disable_ssl: True\n")
                .unwrap();
        assert!(named.address.ip().is_loopback(), "{}", named.address);
        assert_eq!(named.address.port(), 8123);
    }

    #[test]
    fn tls_without_its_files_and_bad_values_name_the_option() {
        let err = options("rest_cherrypy:\n  port: 8000\n").unwrap_err();
        assert!(err.to_string().contains("rest_cherrypy.ssl_crt"), "{err}");
        let err = options("rest_cherrypy:\n  port: 80000\n  disable_ssl: True\n").unwrap_err();
        assert!(err.to_string().contains("rest_cherrypy.port"), "{err}");
        for url in ["/", "//", "/login", "/minions/", "/jobs/x", "/h/{x}", "/h*"] {
            let err = options(&format!(
                "rest_cherrypy:\n  disable_ssl: True\n  webhook_url: '{url}'\n"
            ))
            .unwrap_err();
            assert!(
                err.to_string().contains("rest_cherrypy.webhook_url"),
                "{err}"
            );
        }
        for url in ["/hook/", "/loginhook", "/a/login"] {
            options(&format!(
                "rest_cherrypy:\n  disable_ssl: True\n  webhook_url: '{url}'\n"
            ))
            .unwrap();
        }
        let err = options("rest_cherrypy:\n  host: no.such.host.invalid\n  disable_ssl: True\n")
            .unwrap_err();
        assert!(err.to_string().contains("rest_cherrypy.host"), "{err}");
        let err = options("rest_cherrypy: 8000\n").unwrap_err();
        assert!(err.to_string().contains("expected a map"), "{err}");
    }
}
