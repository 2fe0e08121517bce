//! A minion's `_minion_event` load: events it forwards to its master's bus, from a `fire_master`
//! request on its own bus, or its start events. Shaped as Salt's minion shapes it: `id, cmd,
//! pretag`, then `events`, or `data` and `tag`, then what the request preloaded; one preloaded
//! event (a state's progress) as Salt's `fire_master` sends it itself: `id, tag, data, cmd`, then
//! the preload. The master reads it where it admits the events (`master::minion_event`).

use super::{Fields, ProtoError, entry};
use crate::event::Value;

/// Events for the master's bus.
#[derive(Debug, Clone, PartialEq)]
pub struct MinionEventLoad {
    /// The minion.
    pub id: String,
    /// A prefix under which the master fires a copy of each listed event.
    pub pretag: Option<String>,
    /// What to fire.
    pub fired: Fired,
    /// Further fields for the load (`salt-call`'s `preload`); they never replace the fields
    /// above, nor an earlier one of their own.
    pub preload: Vec<(Value, Value)>,
}

/// What a load fires.
#[derive(Debug, Clone, PartialEq)]
pub enum Fired {
    /// Several events, each `{"tag", "data"}`.
    Events(Vec<Value>),
    /// One event: the master fires the whole load under `tag`.
    One {
        /// The event's data.
        data: Value,
        /// Its tag.
        tag: String,
    },
}

impl MinionEventLoad {
    /// The load for a `fire_master` request (`data`, `tag`, `events`, `pretag`, `preload`) on
    /// minion `id`'s bus: a non-empty `events` list wins over `tag`, and `data` defaults to `{}`.
    pub fn from_fire_master(id: &str, request: &Value) -> Result<Self, ProtoError> {
        let fields = Fields::of("fire_master request", request)?;
        let events = fields
            .optional("events")
            .and_then(Value::as_array)
            .filter(|events| !events.is_empty());
        let tag = match events {
            // The list wins: the tag is not read at all.
            Some(_) => None,
            None => fields.opt_str("tag")?,
        };
        let fired = match (events, tag) {
            (Some(events), _) => Fired::Events(events.clone()),
            (None, Some(tag)) => Fired::One {
                data: fields
                    .optional("data")
                    .cloned()
                    .unwrap_or_else(|| Value::Map(Vec::new())),
                tag: tag.to_owned(),
            },
            (None, None) => {
                return Err(ProtoError::Missing {
                    payload: "fire_master request",
                    field: "tag",
                });
            }
        };
        Ok(Self {
            id: id.to_owned(),
            pretag: fields.opt_str("pretag")?.map(str::to_owned),
            fired,
            preload: match fields.optional("preload") {
                Some(Value::Map(preload)) => preload.clone(),
                _ => Vec::new(),
            },
        })
    }

    /// The load, in Salt's field order: one event with a `preload` is what Salt sends on its
    /// own request channel (`id, tag, data, cmd`, then the preloaded fields); otherwise what
    /// its minion forwards from its bus (`id, cmd, pretag`, then `events` or `data, tag`).
    pub fn to_value(&self) -> Value {
        let mut load = match &self.fired {
            Fired::One { data, tag } if !self.preload.is_empty() => vec![
                entry("id", self.id.as_str()),
                entry("tag", tag.as_str()),
                entry("data", data.clone()),
                entry("cmd", "_minion_event"),
            ],
            fired => {
                let mut load = vec![
                    entry("id", self.id.as_str()),
                    entry("cmd", "_minion_event"),
                    entry(
                        "pretag",
                        self.pretag.as_deref().map_or(Value::Nil, Value::from),
                    ),
                ];
                match fired {
                    Fired::Events(events) => {
                        load.push(entry("events", Value::Array(events.clone())))
                    }
                    Fired::One { data, tag } => {
                        load.push(entry("data", data.clone()));
                        load.push(entry("tag", tag.as_str()));
                    }
                }
                load
            }
        };
        for (key, value) in &self.preload {
            if !load.iter().any(|(existing, _)| existing == key) {
                load.push((key.clone(), value.clone()));
            }
        }
        Value::Map(load)
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::golden;
    use super::*;

    fn request(fields: Vec<(Value, Value)>) -> Value {
        Value::Map(fields)
    }

    #[test]
    fn a_forwarded_event_is_the_load_salts_master_received() {
        // `event.fire_master '{"x": 2}' golden/fire_master/daemon`, as the master fired it
        // (with the time it arrived).
        let captured = golden(|tag| tag == "golden/fire_master/daemon").remove(0);
        let load = MinionEventLoad::from_fire_master(
            "minion1",
            &request(vec![
                entry("data", Value::Map(vec![entry("x", 2)])),
                entry("tag", "golden/fire_master/daemon"),
                entry("events", Value::Nil),
                entry("pretag", Value::Nil),
            ]),
        )
        .unwrap();
        let Value::Map(mut sent) = load.to_value() else {
            panic!("a map")
        };
        sent.push(entry(
            "ts",
            crate::event::map_get(&captured, "ts").unwrap().clone(),
        ));
        assert_eq!(Value::Map(sent), captured);
    }

    #[test]
    fn listed_events_win_and_preload_never_replaces_a_field() {
        let events = Value::Array(vec![Value::Map(vec![entry("tag", "a")])]);
        let load = MinionEventLoad::from_fire_master(
            "m1",
            &request(vec![
                entry("events", events.clone()),
                entry("tag", "ignored"),
                entry("pretag", "beacons"),
                entry(
                    "preload",
                    Value::Map(vec![
                        entry("id", "other"),
                        entry("extra", 1),
                        entry("extra", 2),
                    ]),
                ),
            ]),
        )
        .unwrap();
        assert_eq!(
            load.to_value().to_string(),
            r#"{"id": "m1", "cmd": "_minion_event", "pretag": "beacons", "events": [{"tag": "a"}], "extra": 1}"#
        );
        // With a list, the tag is not read: a mistyped one does not refuse the events.
        let load = MinionEventLoad::from_fire_master(
            "m1",
            &request(vec![entry("events", events.clone()), entry("tag", 1)]),
        );
        assert!(load.is_ok(), "{load:?}");
        // An empty list is no list: the tag is fired, with empty data.
        let load = MinionEventLoad::from_fire_master(
            "m1",
            &request(vec![
                entry("events", Value::Array(Vec::new())),
                entry("tag", "t"),
            ]),
        )
        .unwrap();
        assert_eq!(
            load.to_value().to_string(),
            r#"{"id": "m1", "cmd": "_minion_event", "pretag": nil, "data": {}, "tag": "t"}"#
        );
    }

    #[test]
    fn a_preloaded_event_is_the_load_salt_sends_on_its_request_channel() {
        // A state's progress event, as Salt's minion sends it (`preload={"jid": …}`); the
        // golden's, less what the master adds.
        let data = Value::Map(vec![entry("ret", Value::Map(Vec::new())), entry("len", 3)]);
        let load = MinionEventLoad::from_fire_master(
            "minion2",
            &request(vec![
                entry("data", data),
                entry("tag", "salt/job/20261124084003991394/prog/minion2/0"),
                entry("events", Value::Nil),
                entry("pretag", Value::Nil),
                entry(
                    "preload",
                    Value::Map(vec![entry("jid", "20261124084003991394"), entry("id", "x")]),
                ),
            ]),
        )
        .unwrap();
        assert_eq!(
            load.to_value().to_string(),
            r#"{"id": "minion2", "tag": "salt/job/20261124084003991394/prog/minion2/0", "data": {"ret": {}, "len": 3}, "cmd": "_minion_event", "jid": "20261124084003991394"}"#
        );
    }

    #[test]
    fn requests_without_a_tag_or_with_a_mistyped_one_are_refused() {
        let refused = |fields| {
            MinionEventLoad::from_fire_master("m1", &request(fields))
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            refused(vec![entry("data", Value::Map(Vec::new()))]),
            "fire_master request has no tag"
        );
        assert_eq!(
            refused(vec![entry("tag", 1)]),
            "fire_master request's tag is not a string"
        );
        assert_eq!(
            refused(vec![entry("tag", "t"), entry("pretag", 1)]),
            "fire_master request's pretag is not a string"
        );
    }
}
