//! Who is calling: Salt's eauth tokens, kept where Salt's master keeps them (`token_dir`, one
//! msgpack file per token, Salt's `localfs` format) so that they survive a restart of the API,
//! and the [`Authenticated`] extractor every endpoint that needs a caller takes.
//!
//! A token comes in the `X-Auth-Token` header or the `session_id` cookie (Salt's session id is
//! the token); in the query (`?token=`) only with `rest_cherrypy: token_in_query: True`, since
//! query strings end up in access logs.

use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::Shared;
use super::reply::Reply;
use crate::config::{Config, ConfigError};
use crate::event::{Value, map_get};

/// Salt's `token_expire` default: 12 hours.
const TOKEN_EXPIRE: f64 = 43_200.0;

/// A logged-in caller.
#[derive(Debug, Clone)]
pub(crate) struct Session {
    /// The token.
    pub token: String,
    /// The user name.
    pub user: String,
    /// The eauth backend that admitted it.
    pub eauth: String,
    /// When it was made, Unix seconds.
    pub start: f64,
    /// When it expires, Unix seconds.
    pub expire: f64,
}

/// The tokens in `token_dir`.
#[derive(Debug, Clone)]
pub(crate) struct Tokens {
    dir: PathBuf,
    hash_type: String,
    expire: f64,
}

impl Tokens {
    /// `token_dir` (Salt's default `<cachedir>/tokens`), `hash_type` and `token_expire` of the
    /// master config.
    pub fn new(config: &Config) -> Result<Self, ConfigError> {
        let dir = match config.get_str("token_dir")? {
            Some(_) => config.path("token_dir", "")?,
            None => config.cachedir()?.join("tokens"),
        };
        Ok(Tokens {
            dir,
            hash_type: config.hash_type()?.to_owned(),
            expire: config
                .get_seconds("token_expire", TOKEN_EXPIRE)?
                .as_secs_f64(),
        })
    }

    /// The session of `token` when it exists and has not expired; an expired one is removed.
    pub fn get(&self, token: &str) -> Option<Session> {
        // A token names a file: only hex names are looked up, nothing that leaves the dir.
        if token.is_empty() || !token.bytes().all(|byte| byte.is_ascii_hexdigit()) {
            return None;
        }
        let path = self.dir.join(token);
        let bytes = std::fs::read(&path).ok()?;
        let data = rmpv::decode::read_value(&mut bytes.as_slice()).ok()?;
        let text = |key: &str| {
            map_get(&data, key)
                .and_then(Value::as_str)
                .map(str::to_owned)
        };
        let number = |key: &str| map_get(&data, key).and_then(as_f64);
        let session = Session {
            token: token.to_owned(),
            user: text("name")?,
            eauth: text("eauth")?,
            start: number("start")?,
            expire: number("expire")?,
        };
        if session.expire <= now() {
            let _ = std::fs::remove_file(path);
            return None;
        }
        Some(session)
    }
}

fn as_f64(value: &Value) -> Option<f64> {
    value
        .as_f64()
        .or_else(|| value.as_i64().map(|n| n as f64))
        .or_else(|| value.as_u64().map(|n| n as f64))
}

fn now() -> f64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map_or(0.0, |elapsed| elapsed.as_secs_f64())
}

/// The token a request carries, from where it may carry one.
pub(crate) fn request_token(shared: &Shared, parts: &Parts) -> Option<String> {
    if let Some(token) = parts
        .headers
        .get("x-auth-token")
        .and_then(|value| value.to_str().ok())
    {
        return Some(token.trim().to_owned());
    }
    if let Some(token) = cookie(&parts.headers, "session_id") {
        return Some(token);
    }
    if shared.options.token_in_query {
        let Query(query) = Query::<Vec<(String, String)>>::try_from_uri(&parts.uri).ok()?;
        return query
            .into_iter()
            .find_map(|(key, value)| (key == "token").then_some(value));
    }
    None
}

/// A cookie's value.
fn cookie(headers: &HeaderMap, name: &str) -> Option<String> {
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|value| value.to_str().ok())
        .flat_map(|line| line.split(';'))
        .find_map(|pair| {
            let (key, value) = pair.trim().split_once('=')?;
            (key == name).then(|| value.to_owned())
        })
}

/// A request from a logged-in caller; any other is answered `401 Unauthorized`.
#[derive(Debug)]
pub(crate) struct Authenticated(pub Session);

impl FromRequestParts<Arc<Shared>> for Authenticated {
    type Rejection = Response;

    async fn from_request_parts(
        parts: &mut Parts,
        shared: &Arc<Shared>,
    ) -> Result<Self, Self::Rejection> {
        request_token(shared, parts)
            .and_then(|token| shared.tokens.get(&token))
            .map(Authenticated)
            .ok_or_else(|| {
                Reply::error(
                    StatusCode::UNAUTHORIZED,
                    "No permission -- see authorization schemes",
                )
                .render(&parts.headers)
                .into_response()
            })
    }
}

/// What a caller asks to do, for the `external_auth` check.
#[derive(Debug)]
pub(crate) enum Call<'a> {
    /// An execution function on the minions a target matches.
    Local {
        /// The target.
        tgt: &'a Value,
        /// Its type (`glob`, `list`, …).
        tgt_type: &'a str,
        /// The function.
        fun: &'a str,
    },
    /// A runner function (`@runner`).
    Runner(&'a str),
    /// A wheel function (`@wheel`).
    Wheel(&'a str),
    /// The job cache (`@jobs`).
    Jobs,
}

impl Shared {
    /// Whether `external_auth` lets the session's user do `call`.
    pub(crate) fn permitted(&self, session: &Session, call: &Call<'_>) -> bool {
        let perms = self.perms(session);
        let matches = |pattern: &str, name: &str| {
            regex::Regex::new(&format!("^(?:{pattern})$")).is_ok_and(|re| re.is_match(name))
        };
        perms.iter().any(|perm| match (perm, call) {
            (Value::String(pattern), Call::Local { fun, .. }) => pattern
                .as_str()
                .is_some_and(|pattern| !pattern.starts_with('@') && matches(pattern, fun)),
            (Value::String(pattern), Call::Runner(_)) => pattern.as_str() == Some("@runner"),
            (Value::String(pattern), Call::Wheel(_)) => pattern.as_str() == Some("@wheel"),
            (Value::String(pattern), Call::Jobs) => pattern.as_str() == Some("@jobs"),
            _ => false,
        })
    }

    /// The user's entries of `external_auth[eauth]`, then those of `*`.
    pub(crate) fn perms(&self, session: &Session) -> Vec<Value> {
        let Some(eauth) = self
            .config
            .get("external_auth")
            .and_then(|all| map_get(all, &session.eauth))
        else {
            return Vec::new();
        };
        [session.user.as_str(), "*"]
            .iter()
            .filter_map(|user| map_get(eauth, user).and_then(Value::as_array))
            .flatten()
            .cloned()
            .collect()
    }
}
