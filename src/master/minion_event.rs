//! The master's side of `_minion_event`: how a minion's event load becomes master-bus events.
//!
//! A load is `{"id", "cmd": "_minion_event", "pretag", ...}` with either `events` (a list of
//! `{"tag", "data"}` items) or one `tag` and `data`. One event becomes the whole load fired under
//! its tag (so the user's data sits under `data`, beside the sender's `id`); listed events are
//! fired one by one, plus a copy under `<pretag>/<tag>` when `pretag` is set. Tags the master
//! reserves for itself are refused, as Salt refuses them.

use crate::event::matching::fnmatch;
use crate::event::tag::tagify;
use crate::event::{Event, Value, map_get};

/// Tags a minion may not fire onto the master bus (Salt's list; `*` crosses `/`).
pub const BLACKLISTED_TAGS: &[&str] = &[
    "salt/job/*/publish",
    "salt/job/*/new",
    "salt/job/*/return",
    "salt/key",
    "salt/cloud/*",
    "salt/run/*",
    "salt/cluster/*",
    "salt/wheel/*/new",
    "salt/wheel/*/return",
];

/// Keys of the request channel that never reach the bus.
const TRANSPORT_KEYS: &[&str] = &["tok", "nonce"];

/// The events a `_minion_event` load produces, in order. Refused and malformed parts are logged
/// and left out.
pub fn events_from_load(load: Value) -> Vec<Event> {
    let Value::Map(mut entries) = load else {
        tracing::warn!("dropped a minion event load that is not a map");
        return Vec::new();
    };
    entries.retain(|(key, _)| {
        !key.as_str()
            .is_some_and(|key| TRANSPORT_KEYS.contains(&key))
    });
    let load = Value::Map(entries);
    let sender = map_get(&load, "id")
        .and_then(Value::as_str)
        .unwrap_or("?")
        .to_owned();
    let mut events = Vec::new();
    if let Some(Value::Array(items)) = map_get(&load, "events") {
        let pretag = map_get(&load, "pretag").and_then(Value::as_str);
        for item in items {
            let Some(tag) = map_get(item, "tag").and_then(Value::as_str) else {
                tracing::warn!("dropped an event from minion {sender} without a tag");
                continue;
            };
            let data = map_get(item, "data").unwrap_or(item).clone();
            if let Some(pretag) = pretag {
                push_allowed(
                    &mut events,
                    &sender,
                    tagify(&[tag], "", pretag),
                    data.clone(),
                );
            }
            push_allowed(&mut events, &sender, tag.to_owned(), data);
        }
        return events;
    }
    match map_get(&load, "tag").and_then(Value::as_str) {
        Some(tag) if map_get(&load, "data").is_some() => {
            let tag = tag.to_owned();
            push_allowed(&mut events, &sender, tag, load);
        }
        _ => tracing::warn!("dropped an event load from minion {sender} without tag and data"),
    }
    events
}

fn push_allowed(events: &mut Vec<Event>, sender: &str, tag: String, data: Value) {
    if BLACKLISTED_TAGS
        .iter()
        .any(|pattern| fnmatch(&tag, pattern))
    {
        tracing::warn!("Filtering blacklisted event tag {tag} from minion {sender}");
        return;
    }
    events.push(Event { tag, data });
}
