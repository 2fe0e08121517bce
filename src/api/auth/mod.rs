//! Who is calling: Salt's eauth tokens, kept where Salt's master keeps them (`token_dir`, one
//! msgpack file per token, Salt's `localfs` format) so that they survive a restart of the API,
//! and the [`Authenticated`] extractor every endpoint that needs a caller takes.
//!
//! A token comes in the `X-Auth-Token` header or the `session_id` cookie (Salt's session id is
//! the token); in the query (`?token=`) only with `rest_cherrypy: token_in_query: True`, since
//! query strings end up in access logs.
//!
//! `/login` ([`login`]) checks credentials with an eauth backend ([`eauth`]) and mints a token
//! here; what a token's user may do is [`Shared::permitted`], on Salt's rules ([`super::acl`]).

mod eauth;
mod file;
mod login;
mod pam;

pub(crate) use login::routes;

use std::io::Write;
use std::os::unix::fs::{OpenOptionsExt, PermissionsExt};
use std::path::PathBuf;
use std::sync::Arc;

use axum::extract::{FromRequestParts, Query};
use axum::http::request::Parts;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};

use super::Shared;
use super::acl::{self, Args};
use super::reply::Reply;
use crate::config::{Config, ConfigError};
use crate::event::{Value, map_get};
use crate::keys::{KeyState, KeyStore};
use crate::proto::minion_data::MinionData;
use crate::target::nodegroup::NodeGroups;
use crate::target::{Facts, Target};
use eauth::{FailureTime, Identity};

/// Salt's `token_expire` default: 12 hours.
const TOKEN_EXPIRE: f64 = 43_200.0;

/// Salt's answer to a request without a valid token.
pub(crate) const UNAUTHORIZED: &str = "No permission -- see authorization schemes";

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
    /// The user's groups, as the backend told them at login (`group%` entries).
    pub groups: Vec<String>,
}

/// The tokens in `token_dir`.
#[derive(Debug, Clone)]
pub(crate) struct Tokens {
    dir: PathBuf,
    hash_type: String,
    expire: f64,
    /// The slowest failed login, for the delay of the next failure.
    failures: Arc<FailureTime>,
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
            failures: Arc::default(),
        })
    }

    /// A new token for `identity`, valid `expire` seconds (the master's `token_expire` when
    /// `None`), written as Salt's `localfs` writes one: named by the `hash_type` digest of 512
    /// random bytes, mode 0600, through a temporary file renamed into place.
    fn mint(&self, identity: &Identity, expire: Option<f64>) -> std::io::Result<Session> {
        if !self.dir.is_dir() {
            std::fs::create_dir_all(&self.dir)?;
            std::fs::set_permissions(&self.dir, std::fs::Permissions::from_mode(0o700))?;
        }
        let (token, path) = loop {
            let mut seed = [0u8; 512];
            getrandom::fill(&mut seed).map_err(std::io::Error::other)?;
            let token = crate::config::hexdigest(&seed, &self.hash_type)
                .or_else(|| crate::config::hexdigest(&seed, "sha256"))
                .unwrap_or_default();
            let path = self.dir.join(&token);
            if !path.exists() {
                break (token, path);
            }
        };
        let start = now();
        let session = Session {
            token,
            user: identity.name.clone(),
            eauth: identity.eauth.clone(),
            start,
            expire: start + expire.unwrap_or(self.expire),
            groups: identity.groups.clone(),
        };
        let mut data = vec![
            (Value::from("start"), Value::F64(session.start)),
            (Value::from("expire"), Value::F64(session.expire)),
            (Value::from("name"), Value::from(session.user.as_str())),
            (Value::from("eauth"), Value::from(session.eauth.as_str())),
        ];
        if !session.groups.is_empty() {
            let groups = session.groups.iter().map(|g| Value::from(g.as_str()));
            data.push((Value::from("groups"), Value::Array(groups.collect())));
        }
        data.push((Value::from("token"), Value::from(session.token.as_str())));
        let mut bytes = Vec::new();
        rmpv::encode::write_value(&mut bytes, &Value::Map(data)).map_err(std::io::Error::other)?;
        let temporary = path.with_extension("tmp");
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(0o600)
            .open(&temporary)?;
        file.write_all(&bytes)?;
        drop(file);
        std::fs::rename(&temporary, &path)?;
        Ok(session)
    }

    /// Removes a token (`/logout`).
    fn remove(&self, token: &str) {
        if token.bytes().all(|byte| byte.is_ascii_hexdigit()) && !token.is_empty() {
            let _ = std::fs::remove_file(self.dir.join(token));
        }
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
            groups: map_get(&data, "groups")
                .and_then(Value::as_array)
                .into_iter()
                .flatten()
                .filter_map(|group| group.as_str().map(str::to_owned))
                .collect(),
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

/// Whether the request's token is its `session_id` cookie's: a token the browser sends by
/// itself, whatever page made the request.
pub(crate) fn by_cookie(headers: &HeaderMap) -> bool {
    !headers.contains_key("x-auth-token") && cookie(headers, "session_id").is_some()
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
                Reply::error(StatusCode::UNAUTHORIZED, UNAUTHORIZED)
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
        /// The target, its node groups written out.
        target: &'a Target,
        /// The function.
        fun: &'a str,
        /// Its arguments.
        args: Args<'a>,
    },
    /// A runner function (`@runner`; `@jobs` for the `jobs` runner) and its arguments.
    Runner(&'a str, Args<'a>),
    /// A wheel function (`@wheel`) and its arguments.
    Wheel(&'a str, Args<'a>),
}

impl Shared {
    /// A session for one call whose credentials (`username`, `password`, `eauth`) came with it
    /// (`POST /run`): checked by their backend, with the failure delay of `/login`, and no token
    /// minted.
    pub(crate) async fn credentials(&self, creds: &Value) -> Option<Session> {
        let identity = eauth::authenticate(&self.config, &self.tokens.failures, creds).await?;
        let start = now();
        Some(Session {
            token: String::new(),
            user: identity.name,
            eauth: identity.eauth,
            start,
            expire: start + self.tokens.expire,
            groups: identity.groups,
        })
    }

    /// Whether `external_auth` lets the session's user do `call`, by Salt's rules
    /// ([`acl`]): its `auth_check` for execution functions, its `spec_check` for runner and
    /// wheel functions (the `jobs` runner's also by `@jobs`).
    pub(crate) fn permitted(&self, session: &Session, call: &Call<'_>) -> bool {
        let list = self.auth_list(session);
        match *call {
            Call::Local { target, fun, args } => {
                // The minions targeted are only looked for, once, when a `{target: …}` entry
                // asks: plain function entries need no scan of the keys and the grains. Node
                // groups, in the target and in entries, are written out from the configuration
                // the job is published with; an entry that cannot be read allows nothing. A
                // minion counts as targeted unless it certainly is not (the API knows no
                // pillar), and as allowed only when it certainly is.
                let groups = NodeGroups::configured(&self.config);
                let targeted = std::cell::OnceCell::new();
                let targeted = || {
                    targeted.get_or_init(|| {
                        let mut fleet = self.fleet()?;
                        fleet.retain(|(id, grains)| {
                            target.matches(id, Facts::grains(grains.as_ref()))
                        });
                        Some(fleet)
                    })
                };
                acl::local_allowed(&list, fun, args, |valid| {
                    let Some(minions) = targeted() else {
                        return false;
                    };
                    let Ok(valid) = groups.target(&Value::from(valid), "compound") else {
                        return false;
                    };
                    minions.iter().all(|(id, grains)| {
                        valid.certainly_matches(id, Facts::grains(grains.as_ref()))
                    })
                })
            }
            Call::Runner(fun, args) => acl::special_allowed(&list, "runner", fun, args),
            Call::Wheel(fun, args) => acl::special_allowed(&list, "wheel", fun, args),
        }
    }

    /// The session's entries of `external_auth` (Salt's `fill_auth_list`).
    fn auth_list(&self, session: &Session) -> Vec<Value> {
        let Some(eauth) = self.eauth_block(&session.eauth) else {
            return Vec::new();
        };
        let permissive = self
            .config
            .get_bool("permissive_acl", false)
            .unwrap_or(false);
        acl::auth_list(eauth, &session.user, &session.groups, permissive)
    }

    /// The `perms` `/login` answers with.
    pub(crate) fn perms(&self, session: &Session) -> Value {
        match self.eauth_block(&session.eauth) {
            Some(eauth) => acl::login_perms(eauth, &session.user, &session.groups),
            None => Value::Map(Vec::new()),
        }
    }

    fn eauth_block(&self, eauth: &str) -> Option<&Value> {
        self.config
            .get("external_auth")
            .and_then(|all| map_get(all, eauth))
    }

    /// The accepted minions, each with its cached grains, that Salt's `check_minions` looks
    /// through for `validate_tgt`; read once per call however many entries ask. `None` when the
    /// keys cannot be read (no minion list to check against, so nothing is allowed).
    fn fleet(&self) -> Option<Vec<(String, Option<Value>)>> {
        let store = KeyStore::open(&self.config.pki_dir().ok()?).ok()?;
        let cachedir = self.config.cachedir().ok();
        let grains =
            |id: &str| Some(MinionData::read(&MinionData::path(cachedir.as_ref()?, id))?.grains);
        let accepted = store.ids(KeyState::Accepted).ok()?;
        Some(
            accepted
                .into_iter()
                .map(|id| {
                    let grains = grains(&id);
                    (id, grains)
                })
                .collect(),
        )
    }
}
