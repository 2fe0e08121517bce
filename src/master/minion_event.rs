//! The master's side of `_minion_event`: how a minion's event load becomes master-bus events.
//!
//! A load ([`crate::proto::MinionEventLoad`], read here as the minion sent it) is
//! `{"id", "cmd": "_minion_event", "pretag", ...}` with either `events` (a list of
//! `{"tag", "data"}` items) or one `tag` and `data`. One event becomes the whole load fired under
//! its tag (so the user's data sits under `data`, beside the sender's `id`); listed events are
//! fired one by one, plus a copy under `<pretag>/<tag>` when `pretag` is set.
//!
//! The master's own namespaces are closed to minions: reactors trust `salt/auth`, `salt/key`,
//! `salt/minion/<id>/start` and the job events to come from the master. Salt only refuses a short
//! list of tags, so a minion can forge `salt/auth` for another id. A minion may fire any tag
//! outside `salt/` and `halite/` (other than a bare jid), and inside `salt/` only its own start
//! (`salt/minion/<its id>/start`, with the legacy `minion_start`), its own beacons
//! (`salt/beacon/<its id>/…`) and its own state progress (`salt/job/<jid>/prog/<its id>/<n>`).
//! An event's data must be a map, and an `id` in it must be the sender's authenticated id (the
//! master adds it under `salt/`), so that reactors can trust `data['id']`. No tag from a minion
//! may hold a control, format or line separator character.

use std::sync::LazyLock;

use crate::event::jid::is_jid;
use crate::event::tag::{has_unprintable, printable, tagify};
use crate::event::{Event, Value, map_get};
use crate::output::clip;

/// Keys of the request channel that never reach the bus.
const TRANSPORT_KEYS: &[&str] = &["tok", "nonce"];

/// What a load produced besides its events: how many were refused, and why the last one was.
#[derive(Debug, Default)]
pub struct Refused {
    /// Events left out.
    pub count: u64,
    /// The last one left out and why, for a log line.
    pub last: Option<String>,
}

impl Refused {
    /// Counts one more refused event.
    pub fn note(&mut self, what: String) {
        self.count += 1;
        self.last = Some(what);
    }
}

/// Reports one minion's refused events in the log at most once a second, with a count: a
/// minion that sends refused events as fast as it can must not fill the master's disk.
#[derive(Debug, Default)]
pub struct RefusalLog {
    pending: Refused,
    last_logged: Option<std::time::Instant>,
}

impl RefusalLog {
    /// Counts what `refused` left out, logging when a second has passed since the last line.
    pub fn add(&mut self, sender: &str, refused: Refused) {
        if refused.count == 0 {
            return;
        }
        self.pending.count += refused.count;
        self.pending.last = refused.last;
        if self
            .last_logged
            .is_some_and(|at| at.elapsed() < std::time::Duration::from_secs(1))
        {
            return;
        }
        let pending = std::mem::take(&mut self.pending);
        tracing::warn!(
            "refused {} event(s) or message(s) from minion {} since the last report; the latest: {}",
            pending.count,
            printable(sender),
            pending.last.unwrap_or_default()
        );
        self.last_logged = Some(std::time::Instant::now());
    }
}

/// The events a `_minion_event` load from minion `sender` (its authenticated id) produces, in
/// order, and what was left out: refused tags, items without a tag, data that is not a map or
/// names another minion as its `id`.
pub fn events_from_load(load: Value, sender: &str) -> (Vec<Event>, Refused) {
    let mut refused = Refused::default();
    let mut events = Vec::new();
    let Value::Map(mut entries) = load else {
        refused.note("a load that is not a map".to_owned());
        return (events, refused);
    };
    entries.retain(|(key, _)| {
        !key.as_str()
            .is_some_and(|key| TRANSPORT_KEYS.contains(&key))
    });
    let load = Value::Map(entries);
    let mut push = |tag: String, data: Value, refused: &mut Refused| match admit(&tag, data, sender)
    {
        Ok(data) => events.push(Event { tag, data }),
        Err(why) => refused.note(format!("{}: {why}", printable(&clip(&tag, 200)))),
    };
    if let Some(Value::Array(items)) = map_get(&load, "events") {
        let pretag = map_get(&load, "pretag").and_then(Value::as_str);
        for item in items {
            let Some(tag) = map_get(item, "tag").and_then(Value::as_str) else {
                refused.note("a listed event without a tag".to_owned());
                continue;
            };
            let data = map_get(item, "data").unwrap_or(item).clone();
            if let Some(pretag) = pretag {
                push(tagify(&[tag], "", pretag), data.clone(), &mut refused);
            }
            push(tag.to_owned(), data, &mut refused);
        }
    } else {
        match map_get(&load, "tag").and_then(Value::as_str) {
            Some(tag) if map_get(&load, "data").is_some() => {
                push(tag.to_owned(), load.clone(), &mut refused)
            }
            _ => refused.note("a load without tag and data".to_owned()),
        }
    }
    (events, refused)
}

/// The data minion `sender` may fire under `tag`, or why it may not: the tag must be allowed
/// ([`refusal`]), and the data a map whose `id`, if any, is the sender's (always, under `salt/`).
fn admit(tag: &str, data: Value, sender: &str) -> Result<Value, &'static str> {
    if let Some(why) = refusal(tag, sender) {
        return Err(why);
    }
    let Value::Map(mut entries) = data else {
        return Err("event data must be a map");
    };
    let ids: Vec<Option<&str>> = entries
        .iter()
        .filter(|(key, _)| key.as_str() == Some("id"))
        .map(|(_, value)| value.as_str())
        .collect();
    if ids.iter().any(|id| *id != Some(sender)) {
        return Err("its data names another minion as its id");
    }
    if tag.starts_with("salt/") && ids.is_empty() {
        entries.push((Value::from("id"), Value::from(sender)));
    }
    Ok(Value::Map(entries))
}

/// Why minion `sender` may not fire `tag` onto the master bus, if it may not.
fn refusal(tag: &str, sender: &str) -> Option<&'static str> {
    if has_unprintable(tag) {
        return Some(
            "a tag from a minion may not hold control, format or line separator characters",
        );
    }
    let own = |prefix: &str| {
        tag.strip_prefix(prefix)
            .and_then(|rest| rest.strip_prefix(sender))
            .is_some_and(|rest| rest.starts_with('/'))
    };
    let own_start = || {
        tag.strip_prefix("salt/minion/")
            .and_then(|rest| rest.strip_prefix(sender))
            == Some("/start")
    };
    // Salt's progress tag: salt/job/<jid>/prog/<id>/<run number>.
    static PROGRESS: LazyLock<regex::Regex> = LazyLock::new(|| {
        regex::Regex::new(r"\Asalt/job/([^/]+)/prog/(.+)/[0-9]+\z").expect("static regex is valid")
    });
    let own_progress = || {
        PROGRESS
            .captures(tag)
            .is_some_and(|parts| is_jid(&parts[1]) && &parts[2] == sender)
    };
    // A state's `fire_event`: salt/state_result/<jid>/<id>/<name or custom tag>.
    let own_state_result = || {
        tag.strip_prefix("salt/state_result/")
            .and_then(|rest| rest.split_once('/'))
            .is_some_and(|(jid, rest)| {
                is_jid(jid)
                    && rest
                        .strip_prefix(sender)
                        .is_some_and(|rest| rest.starts_with('/'))
            })
    };
    if tag.starts_with("salt/") {
        return (!own_start() && !own("salt/beacon/") && !own_progress() && !own_state_result())
            .then_some("salt/ is the master's; a minion may fire only its own salt/minion/<id>/start, salt/beacon/<id>/..., salt/job/<jid>/prog/<id>/<n> and salt/state_result/<jid>/<id>/... there");
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
            "salt/job/20261202000000000000/prog/web1/ret/web2",
            "salt/job/20261202000000000000/prog/web1/x",
            "salt/job/notajid/prog/web1/0",
            "salt/state_result/20261202000000000000/other/x",
            "salt/state_result/notajid/web1/x",
            "salt/state_result/20261202000000000000/web10/x",
            "salt\u{200b}/auth",
            "my/tag\u{202e}",
            "my/tag\u{2028}x",
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
            "salt/job/20261202000000000000/prog/web1/12",
            "salt/state_result/20261202000000000000/web1/x",
            "salt/state_result/20261202000000000000/web1/my/custom",
            "saltless/x",
            "café/événement",
            "build/failed",
        ] {
            assert_eq!(refusal(tag, "web1"), None, "{tag:?} is allowed");
        }
    }

    fn load(entries: &[(&str, Value)]) -> Value {
        Value::Map(
            entries
                .iter()
                .map(|(k, v)| (Value::from(*k), v.clone()))
                .collect(),
        )
    }

    #[test]
    fn event_data_names_only_its_sender() {
        let listed = |tag: &str, data: Value| {
            load(&[
                ("id", Value::from("web1")),
                ("cmd", Value::from("_minion_event")),
                (
                    "events",
                    Value::Array(vec![load(&[("tag", Value::from(tag)), ("data", data)])]),
                ),
            ])
        };
        // Another minion's id in the data of an allowed tag, or of a custom one: refused.
        for tag in ["salt/minion/web1/start", "my/tag"] {
            let (events, refused) =
                events_from_load(listed(tag, load(&[("id", Value::from("?*"))])), "web1");
            assert!(events.is_empty(), "{tag}");
            assert_eq!(refused.count, 1);
        }
        // Under salt/, the sender's id is added; elsewhere data is left as it is.
        let (events, _) = events_from_load(
            listed("salt/beacon/web1/load/", load(&[("1m", Value::from(0.5))])),
            "web1",
        );
        assert_eq!(events[0].data.to_string(), r#"{"1m": 0.5, "id": "web1"}"#);
        let (events, _) =
            events_from_load(listed("my/tag", load(&[("x", Value::from(1))])), "web1");
        assert_eq!(events[0].data.to_string(), r#"{"x": 1}"#);
        // Data that is not a map, and a single event whose load repeats id: refused.
        let (events, refused) = events_from_load(listed("my/tag", Value::from(1)), "web1");
        assert!(events.is_empty());
        assert_eq!(refused.count, 1);
        let twice = load(&[
            ("id", Value::from("web1")),
            ("cmd", Value::from("_minion_event")),
            ("tag", Value::from("my/tag")),
            ("data", Value::Map(vec![])),
            ("id", Value::from("web2")),
        ]);
        let (events, refused) = events_from_load(twice, "web1");
        assert!(events.is_empty());
        assert_eq!(refused.count, 1);
    }
}
