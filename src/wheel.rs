//! Wheel functions: the master managing itself. halite has Salt's `key` wheel, with Salt's
//! arguments and returns, for `wheel.*` reactions.
//!
//! [`WHEELS`] is the one list of them, entries of the same shape as the runners'.

use crate::config::Config;
use crate::event::Value;
use crate::keys::{KeyChange, KeyState, KeyStore, fingerprint};
use crate::runners::{EventSink, MasterFunction, RunnerError, done, failed, key_store as store};
use crate::salt_yaml::CliArgs;
use crate::signature::{Signature, text, truthy};

/// Every wheel function halite has, sorted.
pub static WHEELS: &[MasterFunction] = &[
    MasterFunction {
        signature: ACCEPT,
        run: |config, sink, args| Box::pin(change(config, sink, args, KeyChange::Accept)),
    },
    MasterFunction {
        signature: DELETE,
        run: |config, sink, args| Box::pin(change(config, sink, args, KeyChange::Delete)),
    },
    MasterFunction {
        signature: FINGER,
        run: |config, _, args| done(finger(config, args)),
    },
    MasterFunction {
        signature: LIST,
        run: |config, _, args| done(list(config, args)),
    },
    MasterFunction {
        signature: LIST_ALL,
        run: |config, _, args| done(list_all(config, args)),
    },
    MasterFunction {
        signature: REJECT,
        run: |config, sink, args| Box::pin(change(config, sink, args, KeyChange::Reject)),
    },
];

/// The master's own key files, which `key.list_all` and `key.finger` report as `local`.
const LOCAL_KEYS: [&str; 2] = ["master.pem", "master.pub"];

const ACCEPT: Signature = Signature {
    name: "key.accept",
    summary: "Accepts the pending keys matching the globs",
    params: &["match", "include_rejected", "include_denied"],
    required: 1,
    kwargs: false,
    usage: "wheel.key.accept: [{match: GLOB}, {include_rejected: False}, {include_denied: False}]",
};

const REJECT: Signature = Signature {
    name: "key.reject",
    summary: "Rejects the pending keys matching the globs",
    params: &["match", "include_accepted", "include_denied"],
    required: 1,
    kwargs: false,
    usage: "wheel.key.reject: [{match: GLOB}, {include_accepted: False}, {include_denied: False}]",
};

const DELETE: Signature = Signature {
    name: "key.delete",
    summary: "Deletes the keys matching the globs, in any state",
    params: &["match"],
    required: 1,
    kwargs: false,
    usage: "wheel.key.delete: [{match: GLOB}]",
};

const LIST: Signature = Signature {
    name: "key.list",
    summary: "The keys in one state (acc, pre, rej, den) or all",
    params: &["match"],
    required: 1,
    kwargs: false,
    usage: "wheel.key.list: [{match: acc|pre|rej|den|all}]",
};

const LIST_ALL: Signature = Signature {
    name: "key.list_all",
    summary: "Every key, by state, and the master's own key files",
    params: &[],
    required: 0,
    kwargs: false,
    usage: "wheel.key.list_all",
};

const FINGER: Signature = Signature {
    name: "key.finger",
    summary: "The fingerprints of the keys matching the globs",
    params: &["match", "hash_type"],
    required: 1,
    kwargs: false,
    usage: "wheel.key.finger: [{match: GLOB}, {hash_type: sha256}]",
};

/// Calls wheel `function`; the `salt/key` events of the keys it changes go to `sink`.
pub async fn call(
    config: &Config,
    sink: &mut EventSink,
    function: &str,
    args: &CliArgs,
) -> Result<Value, RunnerError> {
    let wheel = crate::runners::find(WHEELS, function)
        .ok_or_else(|| RunnerError::unavailable(function, "wheel functions", WHEELS))?;
    (wheel.run)(config, sink, args).await
}

/// `key.accept`, `key.reject` and `key.delete`: changes the matching keys, firing `salt/key`
/// for each, and returns the matching keys as they are now.
async fn change(
    config: &Config,
    sink: &mut EventSink,
    args: &CliArgs,
    change: KeyChange,
) -> Result<Value, RunnerError> {
    let store = store(config)?;
    let (signature, extra) = match change {
        KeyChange::Accept => (ACCEPT, "include_rejected"),
        KeyChange::Reject => (REJECT, "include_accepted"),
        KeyChange::Delete => (DELETE, ""),
    };
    let bound = signature.bind(args)?;
    let globs = globs(bound.get("match"));
    let flag = |name: &str| bound.get(name).is_some_and(truthy);
    let states = match change {
        KeyChange::Delete => KeyState::ALL.to_vec(),
        _ => {
            let mut states = vec![KeyState::Pending];
            if flag(extra) {
                states.push(match change {
                    KeyChange::Accept => KeyState::Rejected,
                    _ => KeyState::Accepted,
                });
            }
            if flag("include_denied") {
                states.push(KeyState::Denied);
            }
            states
        }
    };
    let cachedir = config.cachedir().ok();
    for (state, ids) in matching(&store, &globs, &states)? {
        for id in ids {
            let event = change
                .apply(&store, cachedir.as_deref(), &id, state)
                .map_err(|err| failed(&err))?;
            sink.fire(event).await?;
        }
    }
    Ok(grouped(matching(&store, &globs, &KeyState::ALL)?))
}

/// `key.list`: the keys in the states `match` names.
fn list(config: &Config, args: &CliArgs) -> Result<Value, RunnerError> {
    let store = store(config)?;
    let bound = LIST.bind(args)?;
    let which = bound.get("match").map(text).unwrap_or_default();
    if which.starts_with("all") {
        return all_keys(&store);
    }
    let states = KeyState::for_list(&which).ok_or_else(|| {
        RunnerError::Arguments(format!(
            "key.list: '{which}' is not a key status; use acc, pre, rej, den or all"
        ))
    })?;
    Ok(grouped(matching(&store, &["*".to_owned()], &states)?))
}

/// `key.list_all`.
fn list_all(config: &Config, args: &CliArgs) -> Result<Value, RunnerError> {
    let store = store(config)?;
    LIST_ALL.bind(args)?;
    all_keys(&store)
}

/// `key.finger`: the fingerprints of the matching keys, the master's own as `local`.
fn finger(config: &Config, args: &CliArgs) -> Result<Value, RunnerError> {
    let store = store(config)?;
    let bound = FINGER.bind(args)?;
    let globs = globs(bound.get("match"));
    let hash_type = match bound.get("hash_type") {
        Some(value) => text(value),
        None => config.hash_type().map_err(|err| failed(&err))?.to_owned(),
    };
    let mut fingers: Vec<(Value, Value)> = Vec::new();
    let local: Vec<(Value, Value)> = LOCAL_KEYS
        .into_iter()
        .filter(|name| globs.iter().any(|g| crate::py::fnmatch::fnmatch(name, g)))
        .filter_map(|name| {
            let text = std::fs::read_to_string(store.pki_dir().join(name)).ok()?;
            Some((
                Value::from(name),
                Value::from(fingerprint(&text, &hash_type)?),
            ))
        })
        .collect();
    if !local.is_empty() {
        fingers.push((Value::from("local"), Value::Map(local)));
    }
    for (state, ids) in matching(&store, &globs, &KeyState::ALL)? {
        let keys = ids
            .into_iter()
            .filter_map(|id| {
                let finger = fingerprint(&store.key(state, &id)?, &hash_type)?;
                Some((Value::from(id), Value::from(finger)))
            })
            .collect();
        fingers.push((Value::from(state.dir_name()), Value::Map(keys)));
    }
    Ok(Value::Map(fingers))
}

/// `match` as Salt reads it: a list of globs, or one string of comma-separated globs.
fn globs(value: Option<&Value>) -> Vec<String> {
    match value {
        Some(Value::Array(items)) => items.iter().map(text).collect(),
        Some(value) => text(value).split(',').map(str::to_owned).collect(),
        None => Vec::new(),
    }
}

/// The ids in `states` matching any of `globs`, per state in Salt's order, empty states left
/// out.
fn matching(
    store: &KeyStore,
    globs: &[String],
    states: &[KeyState],
) -> Result<Vec<(KeyState, Vec<String>)>, RunnerError> {
    let globs: Vec<&str> = globs.iter().map(String::as_str).collect();
    let states: Vec<KeyState> = KeyState::SALT_ORDER
        .into_iter()
        .filter(|state| states.contains(state))
        .collect();
    store.matching(&globs, &states).map_err(|err| failed(&err))
}

fn grouped(states: Vec<(KeyState, Vec<String>)>) -> Value {
    Value::Map(
        states
            .into_iter()
            .map(|(state, ids)| {
                (
                    Value::from(state.dir_name()),
                    Value::Array(ids.into_iter().map(Value::from).collect()),
                )
            })
            .collect(),
    )
}

/// Every state (empty ones too) and the master's own key files, as `key.list_all` shows them.
fn all_keys(store: &KeyStore) -> Result<Value, RunnerError> {
    let mut all: Vec<(Value, Value)> = KeyState::SALT_ORDER
        .into_iter()
        .map(|state| {
            let ids = store.ids(state).map_err(|err| failed(&err))?;
            Ok((
                Value::from(state.dir_name()),
                Value::Array(ids.into_iter().map(Value::from).collect()),
            ))
        })
        .collect::<Result<_, RunnerError>>()?;
    let local = LOCAL_KEYS
        .into_iter()
        .filter(|name| store.pki_dir().join(name).exists())
        .map(Value::from)
        .collect();
    all.push((Value::from("local"), Value::Array(local)));
    Ok(Value::Map(all))
}
