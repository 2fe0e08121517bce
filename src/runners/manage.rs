//! The `manage` runners: which minions are up (they answer a ping), which are present (they are
//! connected now), and which halite version each runs.
//!
//! Salt guesses presence from the TCP connections on its publish port and the addresses in the
//! minions' cached grains; halite's master knows its sessions, so presence is exact: a minion
//! that went away is not present, and one connecting through NAT is.

use std::collections::BTreeMap;

use super::{EventSink, RunnerError, failed, key_store, unreachable};
use crate::client::ClientError;
use crate::client::local::{LocalClient, Outcome, Pinged};
use crate::config::Config;
use crate::event::Value;
use crate::keys::{KeyChange, KeyState};
use crate::proto::PublishRequest;
use crate::salt_yaml::CliArgs;
use crate::signature::{Bound, Signature, text, truthy};

pub(super) const STATUS: Signature = Signature {
    name: "manage.status",
    summary: "Pings the targeted minions: those that answered (up) and those that did not (down)",
    params: &["output", "tgt", "tgt_type", "timeout", "gather_job_timeout"],
    required: 0,
    kwargs: false,
    usage: "salt-run manage.status [tgt=TARGET] [tgt_type=glob|pcre|list|grain|grain_pcre|pillar|pillar_pcre|ipcidr|compound|nodegroup] [timeout=SECONDS] [gather_job_timeout=SECONDS]",
};

pub(super) const UP: Signature = Signature {
    name: "manage.up",
    summary: "The targeted minions that answer a ping",
    params: &["tgt", "tgt_type", "timeout", "gather_job_timeout"],
    usage: "salt-run manage.up [tgt=TARGET] [tgt_type=TYPE] [timeout=SECONDS] [gather_job_timeout=SECONDS]",
    ..STATUS
};

pub(super) const DOWN: Signature = Signature {
    name: "manage.down",
    summary: "The targeted minions that do not answer a ping; removekeys=True deletes their keys",
    params: &[
        "removekeys",
        "tgt",
        "tgt_type",
        "timeout",
        "gather_job_timeout",
    ],
    usage: "salt-run manage.down [removekeys=True] [tgt=TARGET] [tgt_type=TYPE] [timeout=SECONDS] [gather_job_timeout=SECONDS]",
    ..STATUS
};

pub(super) const VERSIONS: Signature = Signature {
    name: "manage.versions",
    summary: "Each minion's version against the master's: up to date, older, newer or offline",
    params: &[],
    usage: "salt-run manage.versions",
    ..STATUS
};

/// One presence runner's signature and side; a macro so that each usage line names its own
/// runner (`concat!` joins literals only).
macro_rules! presence {
    ($name:literal, Connected) => {
        presence!(
            $name,
            Connected,
            "The minions connected to the master now (no job is sent); show_ip=True adds each one's address",
            " [subset=[ID, …]] [show_ip=True]"
        )
    };
    ($name:literal, NotConnected) => {
        presence!(
            $name,
            NotConnected,
            "The accepted minions not connected to the master now (no job is sent)",
            " [subset=[ID, …]]"
        )
    };
    ($name:literal, $side:ident, $summary:literal, $params:literal) => {
        (
            Signature {
                name: $name,
                summary: $summary,
                params: &["subset", "show_ip"],
                required: 0,
                kwargs: false,
                usage: concat!("salt-run ", $name, $params),
            },
            Presence::$side,
        )
    };
}

/// The presence runners: Salt's names, which all ask the same question, and whether each lists
/// the minions connected now or the accepted ones that are not.
pub(super) const PRESENCE: [(Signature, Presence); 12] = [
    presence!("manage.alived", Connected),
    presence!("manage.allowed", Connected),
    presence!("manage.joined", Connected),
    presence!("manage.list_not_state", NotConnected),
    presence!("manage.list_state", Connected),
    presence!("manage.not_alived", NotConnected),
    presence!("manage.not_allowed", NotConnected),
    presence!("manage.not_joined", NotConnected),
    presence!("manage.not_present", NotConnected),
    presence!("manage.not_reaped", NotConnected),
    presence!("manage.present", Connected),
    presence!("manage.reaped", Connected),
];

/// Which side of presence a runner lists.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(super) enum Presence {
    /// Minions connected now.
    Connected,
    /// Accepted minions not connected now.
    NotConnected,
}

/// Pings the minions `bound`'s `tgt`/`tgt_type` select (all by default), waiting `timeout`
/// and `gather_job_timeout` (the master's options by default), as Salt's `manage` does.
async fn ping(config: &Config, bound: &Bound) -> Result<Pinged, RunnerError> {
    let mut client = LocalClient::new(config).map_err(|err| failed(&err))?;
    for param in ["timeout", "gather_job_timeout"] {
        // Salt falls back on the option for any false value: None, 0, "".
        let Some(value) = bound.get(param).filter(|value| truthy(value)) else {
            continue;
        };
        let seconds = crate::config::seconds(value).ok_or_else(|| {
            RunnerError::Arguments(format!(
                "{param}={}: give a number of seconds, such as 5",
                text(value)
            ))
        })?;
        client = match param {
            "timeout" => client.with_timeout(seconds),
            _ => client.with_gather_job_timeout(seconds),
        };
    }
    let tgt = bound.get("tgt").cloned().unwrap_or(Value::from("*"));
    let tgt_type = bound
        .get("tgt_type")
        .map_or_else(|| "glob".to_owned(), text);
    match client.ping(tgt, &tgt_type, &super::salt_user()).await {
        Ok(pinged) => Ok(pinged.unwrap_or_default()),
        Err(err @ (ClientError::Target(_) | ClientError::Refused(_))) => {
            Err(RunnerError::Arguments(err.to_string()))
        }
        Err(err) => Err(unreachable(err)),
    }
}

fn ids(ids: Vec<String>) -> Value {
    Value::Array(ids.into_iter().map(Value::from).collect())
}

/// `manage.status`: `{"up": [...], "down": [...]}`.
pub(super) async fn status(config: &Config, args: &CliArgs) -> Result<Value, RunnerError> {
    let pinged = ping(config, &STATUS.bind(args)?).await?;
    Ok(Value::Map(vec![
        (Value::from("up"), ids(pinged.up)),
        (Value::from("down"), ids(pinged.down)),
    ]))
}

/// `manage.up`: the minions that answered.
pub(super) async fn up(config: &Config, args: &CliArgs) -> Result<Value, RunnerError> {
    Ok(ids(ping(config, &UP.bind(args)?).await?.up))
}

/// `manage.down`: the minions that did not answer; with `removekeys`, their keys are deleted
/// (each deletion announced on `salt/key`, as `wheel.key.delete` does).
pub(super) async fn down(
    config: &Config,
    sink: &mut EventSink,
    args: &CliArgs,
) -> Result<Value, RunnerError> {
    let bound = DOWN.bind(args)?;
    let down = ping(config, &bound).await?.down;
    if bound.get("removekeys").is_some_and(truthy) {
        let store = key_store(config)?;
        let cachedir = config.cachedir().ok();
        for id in &down {
            for state in KeyState::ALL {
                if store.key(state, id).is_none() {
                    continue;
                }
                let event = KeyChange::Delete
                    .apply(&store, cachedir.as_deref(), id, state)
                    .map_err(|err| failed(&err))?;
                sink.fire(event).await?;
            }
        }
    }
    Ok(ids(down))
}

/// A presence runner: the connected minions (`{id: address}` with `show_ip`), or the accepted
/// ones not connected; within `subset` when given.
pub(super) async fn present(
    config: &Config,
    args: &CliArgs,
    which: usize,
) -> Result<Value, RunnerError> {
    let (signature, side) = &PRESENCE[which];
    let bound = signature.bind(args)?;
    let subset: Option<Vec<String>> = bound
        .get("subset")
        .filter(|subset| !matches!(subset, Value::Nil))
        .map(|subset| match subset {
            Value::Array(items) => items.iter().map(text).collect(),
            // A comma-separated string, as `-L` reads one.
            other => text(other)
                .split(',')
                .map(str::trim)
                .filter(|id| !id.is_empty())
                .map(str::to_owned)
                .collect(),
        });
    let wanted = |id: &str| {
        subset
            .as_ref()
            .is_none_or(|ids| ids.iter().any(|s| s == id))
    };
    let client = LocalClient::new(config).map_err(|err| failed(&err))?;
    let connected = client.connected().await.map_err(unreachable)?;
    match *side {
        Presence::Connected => {
            let connected = connected.into_iter().filter(|(id, _)| wanted(id));
            Ok(if bound.get("show_ip").is_some_and(truthy) {
                Value::Map(
                    connected
                        .map(|(id, address)| (Value::from(id), Value::from(address)))
                        .collect(),
                )
            } else {
                ids(connected.map(|(id, _)| id).collect())
            })
        }
        Presence::NotConnected => {
            let store = key_store(config)?;
            let accepted = store.ids(KeyState::Accepted).map_err(|err| failed(&err))?;
            Ok(ids(accepted
                .into_iter()
                .filter(|id| wanted(id) && !connected.iter().any(|(c, _)| c == id))
                .collect()))
        }
    }
}

/// `manage.versions`: asks every minion `test.version` and sorts the answers under Salt's
/// labels against the master's own version.
pub(super) async fn versions(config: &Config, args: &CliArgs) -> Result<Value, RunnerError> {
    VERSIONS.bind(args)?;
    let client = LocalClient::new(config).map_err(|err| failed(&err))?;
    let request = PublishRequest {
        tgt: Value::from("*"),
        tgt_type: "glob".to_owned(),
        fun: "test.version".to_owned(),
        arg: Value::Array(Vec::new()),
        ret: String::new(),
        user: super::salt_user(),
        jid: None,
        ret_config: None,
        ret_kwargs: None,
    };
    let mut listener = client.listen().await.map_err(unreachable)?;
    let published = client.publish(&request).await.map_err(unreachable)?;
    let master = env!("CARGO_PKG_VERSION");
    let mut labelled: BTreeMap<&'static str, Vec<(Value, Value)>> = BTreeMap::new();
    if !published.jid.is_empty() {
        client
            .gather(&mut listener, &published, &request.user, |outcome| {
                let (id, version) = match outcome {
                    Outcome::Returned(ret) if ret.retcode() == 0 => {
                        (ret.id.clone(), Some(text(&ret.value())))
                    }
                    Outcome::Returned(ret) => (ret.id, None),
                    Outcome::NoResponse(id) | Outcome::NotConnected(id) => (id, None),
                };
                let label = match &version {
                    None => "Minion offline",
                    Some(version) => match version_key(version).cmp(&version_key(master)) {
                        std::cmp::Ordering::Less => "Minion requires update",
                        std::cmp::Ordering::Equal => "Up to date",
                        std::cmp::Ordering::Greater => "Minion newer than master",
                    },
                };
                labelled.entry(label).or_default().push((
                    Value::from(id),
                    version.map_or(Value::Boolean(false), Value::from),
                ));
            })
            .await
            .map_err(unreachable)?;
    }
    labelled.insert("Master", Vec::new());
    Ok(Value::Map(
        labelled
            .into_iter()
            .map(|(label, mut minions)| {
                let value = if label == "Master" {
                    Value::from(master)
                } else {
                    minions.sort_by_key(|(id, _)| text(id));
                    Value::Map(minions)
                };
                (Value::from(label), value)
            })
            .collect(),
    ))
}

/// A version's numbers, compared in order (`0.10.2` after `0.9.7`).
fn version_key(version: &str) -> Vec<u64> {
    version
        .split(['.', '-', '+'])
        .map_while(|part| {
            let digits: String = part.chars().take_while(char::is_ascii_digit).collect();
            digits.parse().ok()
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_compare_by_their_numbers() {
        assert!(version_key("0.10.2") > version_key("0.9.7"));
        assert_eq!(version_key("1.2.3"), version_key("1.2.3"));
        assert!(version_key("1.2.3-rc1") < version_key("1.2.4"));
        assert!(version_key("3007.8") > version_key("3006.30"));
    }

    #[test]
    fn every_presence_runner_has_one_entry() {
        let mut names: Vec<&str> = PRESENCE.iter().map(|(s, _)| s.name).collect();
        names.sort_unstable();
        names.dedup();
        assert_eq!(names.len(), PRESENCE.len());
        assert!(names.is_sorted());
    }
}
