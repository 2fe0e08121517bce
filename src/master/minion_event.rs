//! The master's side of `_minion_event`: how a minion's event load becomes master-bus events.
//!
//! A load is `{"id", "cmd": "_minion_event", "pretag", ...}` with either `events` (a list of
//! `{"tag", "data"}` items) or one `tag` and `data`. One event becomes the whole load fired under
//! its tag (so the user's data sits under `data`, beside the sender's `id`); listed events are
//! fired one by one, plus a copy under `<pretag>/<tag>` when `pretag` is set.
//!
//! The master's own namespaces are closed to minions: reactors trust `salt/auth`, `salt/key`,
//! `salt/minion/<id>/start` and the job events to come from the master. Salt only refuses a short
//! list of tags, so a minion can forge `salt/auth` for another id. A minion may fire any tag
//! outside `salt/` and `halite/` (other than a bare jid), and inside `salt/` only its own start
//! (`salt/minion/<its id>/start`, with the legacy `minion_start`), its own beacons
//! (`salt/beacon/<its id>/…`) and its own state progress (`salt/job/<jid>/prog/<its id>/…`).
//! The data of each carries its sender's authenticated `id`. No tag from a minion may hold a
//! control character.

use crate::event::jid::is_jid;
use crate::event::tag::{has_control, printable, tagify};
use crate::event::{Event, Value, map_get};
use crate::output::clip;

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
    if let Some(why) = refusal(&tag, sender) {
        tracing::warn!(
            "refused event {} from minion {}: {why}",
            clip(&printable(&tag), 200),
            printable(sender)
        );
        return;
    }
    events.push(Event { tag, data });
}

/// Why minion `sender` may not fire `tag` onto the master bus, if it may not.
fn refusal(tag: &str, sender: &str) -> Option<&'static str> {
    if has_control(tag) {
        return Some("a tag from a minion may not hold control characters");
    }
    let own = |prefix: &str| {
        tag.strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix(sender))
            .is_some_and(|rest| rest.starts_with('/'))
    };
    let own_progress = || {
        tag.strip_prefix("salt/job/")
            .and_then(|rest| rest.split_once("/prog/"))
            .is_some_and(|(jid, rest)| {
                !jid.contains('/')
                    && rest
                        .strip_prefix(sender)
                        .is_some_and(|rest| rest.starts_with('/'))
            })
    };
    let own_start = || {
        tag.strip_prefix("salt/minion/")
            .and_then(|rest| rest.strip_prefix(sender))
            == Some("/start")
    };
    if tag.starts_with("salt/") {
        return (!own_start() && !own("salt/beacon/") && !own_progress())
            .then_some("salt/ is the master's; a minion may fire only its own salt/minion/<id>/start, salt/beacon/<id>/... and salt/job/<jid>/prog/<id>/... there");
    }
    if tag.starts_with("halite/") || is_jid(tag) {
        return Some("that tag is the master's own");
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn minions_keep_out_of_the_masters_namespaces() {
        for tag in [
            "salt/auth",
            "salt/key",
            "salt/minion/other/start",
            "salt/minion/web1/stop",
            "salt/minion/web10/start",
            "salt/presence/change",
            "salt/job/20261202000000000000/ret/web1",
            "salt/job/20261202000000000000/new",
            "salt/run/1/new",
            "salt/reactor/error/x",
            "salt/beacon/web10/inotify/",
            "salt/beacon/other/load/",
            "salt/job/1/prog/other/0",
            "salt/job/1/x/prog/web1/0",
            "halite/bus/lost",
            "20261202000000000000",
            "my/tag\n\nsalt/key",
            "my/tag\u{1b}[2J",
            "my/tag\u{9b}",
        ] {
            assert!(refusal(tag, "web1").is_some(), "{tag:?} is refused");
        }
        for tag in [
            "my/custom/event/tag",
            "minion_start",
            "salt/minion/web1/start",
            "salt/beacon/web1/inotify//etc/hosts",
            "salt/job/20261202000000000000/prog/web1/0",
            "saltless/x",
            "build/failed",
        ] {
            assert_eq!(refusal(tag, "web1"), None, "{tag:?} is allowed");
        }
    }
}
