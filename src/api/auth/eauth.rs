//! Salt's eauth: who may log in, by the backend named in `eauth`, which must be a key of the
//! master's `external_auth` (any other is refused, as Salt's):
//!
//! * `auto`: Salt's test backend, which admits every name with any password;
//! * `file`: a password file ([`file`](super::file));
//! * `pam`: the system's accounts ([`pam`](super::pam)), groups from the system.
//!
//! A failed login takes as long as the slowest failure seen so far (at least a second), within
//! a quarter either way at random, as Salt's `time_auth`: a refusal tells nothing by its timing.

use std::sync::Mutex;
use std::time::{Duration, Instant};

use crate::config::Config;
use crate::event::{Value, map_get};

use super::{file, pam};

/// Salt's `auth.pam.service` default.
const PAM_SERVICE: &str = "login";

/// Who logged in.
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Identity {
    /// The user name.
    pub name: String,
    /// The backend.
    pub eauth: String,
    /// The user's groups, for `group%` entries (the `pam` backend's only).
    pub groups: Vec<String>,
}

/// The slowest failed login so far, in seconds (Salt's `max_fail`, from 1).
#[derive(Debug)]
pub(crate) struct FailureTime(Mutex<f64>);

impl Default for FailureTime {
    fn default() -> Self {
        FailureTime(Mutex::new(1.0))
    }
}

/// The credentials of `creds` (`username`, `password`, `eauth`) checked by their backend;
/// `None` after the failure delay when they do not pass.
pub(crate) async fn authenticate(
    config: &Config,
    failures: &FailureTime,
    creds: &Value,
) -> Option<Identity> {
    let started = Instant::now();
    let identity = check(config, creds).await;
    if identity.is_none() {
        let elapsed = started.elapsed().as_secs_f64();
        let slowest = {
            let mut slowest = failures
                .0
                .lock()
                .unwrap_or_else(|poison| poison.into_inner());
            *slowest = slowest.max(elapsed);
            *slowest
        };
        let wait = slowest * (0.75 + 0.5 * random_fraction());
        tokio::time::sleep_until((started + Duration::from_millis((wait * 1000.0) as u64)).into())
            .await;
    }
    identity
}

/// A uniform number in [0, 1).
fn random_fraction() -> f64 {
    let mut bytes = [0u8; 4];
    let _ = getrandom::fill(&mut bytes);
    f64::from(u32::from_le_bytes(bytes)) / (f64::from(u32::MAX) + 1.0)
}

async fn check(config: &Config, creds: &Value) -> Option<Identity> {
    let text = |key: &str| {
        map_get(creds, key)
            .and_then(Value::as_str)
            .map(str::to_owned)
    };
    let eauth = text("eauth")?;
    let block = config
        .get("external_auth")
        .and_then(|all| map_get(all, &eauth))
        .cloned();
    let Some(block) = block else {
        tracing::warn!("the eauth system {eauth:?} is not enabled: add it to external_auth");
        return None;
    };
    let (user, password) = (text("username")?, text("password")?);
    let identity = |groups| Identity {
        name: user.clone(),
        eauth: eauth.clone(),
        groups,
    };
    match eauth.as_str() {
        "auto" => Some(identity(Vec::new())),
        "file" => {
            let (name, secret) = (user.clone(), password);
            let passed =
                tokio::task::spawn_blocking(move || file::authenticate(&block, &name, &secret))
                    .await
                    .unwrap_or(false);
            passed.then(|| identity(Vec::new()))
        }
        "pam" => {
            let service = config
                .get("auth.pam.service")
                .and_then(Value::as_str)
                .unwrap_or(PAM_SERVICE)
                .to_owned();
            let name = user.clone();
            let groups = tokio::task::spawn_blocking(move || {
                pam::authenticate(&service, &name, &password).then(|| pam::groups(&name))
            })
            .await
            .ok()??;
            Some(identity(groups))
        }
        other => {
            tracing::warn!(
                "the eauth system {other:?} is not one halite has: use auto, file or pam"
            );
            None
        }
    }
}
