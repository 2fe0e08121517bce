//! The events halite's master and minion raise themselves, each with Salt's tag and Salt's
//! fields in Salt's order: a key judged (`salt/auth`) or changed (`salt/key`), minions present
//! (`salt/presence/*`), and on a minion's own bus, its master connected or not. The job events
//! live with the job load in [`super::job`]. A minion refused for its link protocol
//! (`halite/link/mismatch`) has no Salt counterpart.

use super::link::{Mismatch, Verdict};
use super::{Fields, ProtoError, entry, strings, tags};
use crate::event::{Event, Value};

/// The tag Salt's `saltutil.refresh_pillar` fires on the minion's bus (what reads the pillar
/// reads it again).
pub const PILLAR_REFRESH: &str = "pillar_refresh";

/// An event halite fires: its tag and its data.
pub trait SaltEvent {
    /// The tag.
    fn tag(&self) -> String;

    /// The data, in Salt's field order.
    fn to_value(&self) -> Value;

    /// The event, ready to fire (its tag is never empty, its data always a map).
    fn to_event(&self) -> Event {
        Event {
            tag: self.tag(),
            data: self.to_value(),
        }
    }
}

/// `salt/auth`: the master's verdict on the key a minion presented.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Auth<'a> {
    /// The minion.
    pub id: &'a str,
    /// The key it presented (PEM).
    pub public_key: &'a str,
    /// What the master decided.
    pub verdict: Verdict,
}

impl SaltEvent for Auth<'_> {
    fn tag(&self) -> String {
        tags::AUTH.to_owned()
    }

    /// Salt's fields, and their order, differ with the verdict; a rejected key, and one denied
    /// where autosigning would have accepted it, get no `act`.
    fn to_value(&self) -> Value {
        let result = entry(
            "result",
            matches!(self.verdict, Verdict::Accept | Verdict::Pend),
        );
        let (id, key) = (entry("id", self.id), entry("pub", self.public_key));
        let act = entry("act", self.verdict.act());
        Value::Map(match self.verdict {
            Verdict::Accept | Verdict::Pend | Verdict::Full => vec![result, act, id, key],
            Verdict::Denied => vec![result, id, act, key],
            Verdict::Reject | Verdict::DenyAutosigned => vec![result, id, key],
        })
    }
}

/// `salt/key`: an operator accepted, rejected or deleted a minion's key.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KeyEvent {
    /// `accept`, `reject` or `delete`.
    pub act: String,
    /// The minion.
    pub id: String,
}

impl SaltEvent for KeyEvent {
    fn tag(&self) -> String {
        tags::KEY.to_owned()
    }

    /// `result` is always true: only a change that happened is announced.
    fn to_value(&self) -> Value {
        Value::Map(vec![
            entry("result", true),
            entry("act", self.act.as_str()),
            entry("id", self.id.as_str()),
        ])
    }
}

impl KeyEvent {
    /// Reads the data of a `salt/key` event (its `result` is not needed).
    pub fn from_value(value: &Value) -> Result<Self, ProtoError> {
        let fields = Fields::of("salt/key event", value)?;
        Ok(Self {
            act: fields.str("act")?.to_owned(),
            id: fields.str("id")?.to_owned(),
        })
    }
}

/// `salt/presence/change`: the minions that connected and those that left.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresenceChange<'a> {
    /// Connected since the last event.
    pub new: &'a [String],
    /// Gone since the last event.
    pub lost: &'a [String],
}

impl SaltEvent for PresenceChange<'_> {
    fn tag(&self) -> String {
        tags::PRESENCE_CHANGE.to_owned()
    }

    fn to_value(&self) -> Value {
        Value::Map(vec![
            entry("new", strings(self.new)),
            entry("lost", strings(self.lost)),
        ])
    }
}

/// `salt/presence/present`: the minions connected now.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PresencePresent<'a> {
    /// Their ids.
    pub present: &'a [String],
}

impl SaltEvent for PresencePresent<'_> {
    fn tag(&self) -> String {
        tags::PRESENCE_PRESENT.to_owned()
    }

    fn to_value(&self) -> Value {
        Value::Map(vec![entry("present", strings(self.present))])
    }
}

/// `__master_connected` or `__master_disconnected` on a minion's own bus.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct MasterConnection<'a> {
    /// Whether the session is up.
    pub connected: bool,
    /// The master, as the minion addresses it.
    pub master: &'a str,
}

impl SaltEvent for MasterConnection<'_> {
    fn tag(&self) -> String {
        let tag = if self.connected {
            tags::MASTER_CONNECTED
        } else {
            tags::MASTER_DISCONNECTED
        };
        tag.to_owned()
    }

    fn to_value(&self) -> Value {
        Value::Map(vec![entry("master", self.master)])
    }
}

/// `halite/link/mismatch`: the master refused a minion whose link protocol it does not serve,
/// or which does not accept the master's. Not `salt/auth`: no key was judged, and reactors that
/// act on `salt/auth` results must not take it for a rejected key.
#[derive(Debug, Clone, Copy)]
pub struct LinkMismatch<'a> {
    /// The id the minion gave: anyone may claim any id, so it is the minion's only if `key`
    /// is [`PresentedKey::Accepted`].
    pub id: &'a str,
    /// Its address.
    pub peer: &'a str,
    /// The fingerprint of the key it presented, as `salt-key -f` prints it.
    pub fingerprint: &'a str,
    /// How that key stands for `id` on the master.
    pub key: PresentedKey,
    /// Both sides' link versions.
    pub mismatch: &'a Mismatch,
}

/// How the key a peer presented stands for the id it claimed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum PresentedKey {
    /// It is the id's accepted key: the peer is that minion.
    Accepted,
    /// It waits for an operator under the id.
    Pending,
    /// It is rejected under the id.
    Rejected,
    /// The id has an accepted key and this is another one.
    Differs,
    /// None of those: the key is not on file for the id.
    Unknown,
}

impl PresentedKey {
    /// The name events carry.
    pub fn as_str(self) -> &'static str {
        match self {
            PresentedKey::Accepted => "accepted",
            PresentedKey::Pending => "pending",
            PresentedKey::Rejected => "rejected",
            PresentedKey::Differs => "differs",
            PresentedKey::Unknown => "unknown",
        }
    }
}

impl SaltEvent for LinkMismatch<'_> {
    fn tag(&self) -> String {
        tags::LINK_MISMATCH.to_owned()
    }

    fn to_value(&self) -> Value {
        Value::Map(vec![
            entry("result", false),
            entry("id", self.id),
            entry("peer", self.peer),
            entry("fingerprint", self.fingerprint),
            entry("key", self.key.as_str()),
            entry("minion", self.mismatch.minion.to_value()),
            entry("master", self.mismatch.master.to_value()),
            entry("upgrade", self.mismatch.upgrade().as_str()),
            entry("message", self.mismatch.to_string()),
        ])
    }
}

#[cfg(test)]
mod tests {
    use super::super::testutil::golden;
    use super::*;

    #[test]
    fn auth_events_keep_salts_fields_in_salts_order_for_each_verdict() {
        let keys = |verdict| {
            let data = Auth {
                id: "m1",
                public_key: "PEM",
                verdict,
            }
            .to_value();
            let keys: Vec<String> = data
                .as_map()
                .unwrap()
                .iter()
                .map(|(key, _)| key.as_str().unwrap().to_owned())
                .collect();
            keys.join(" ")
        };
        assert_eq!(keys(Verdict::Accept), "result act id pub");
        assert_eq!(keys(Verdict::Pend), "result act id pub");
        assert_eq!(keys(Verdict::Full), "result act id pub");
        assert_eq!(keys(Verdict::Denied), "result id act pub");
        assert_eq!(keys(Verdict::Reject), "result id pub");
        assert_eq!(keys(Verdict::DenyAutosigned), "result id pub");
        // An accepted key, as Salt's master announced it.
        for captured in golden(|tag| tag == tags::AUTH) {
            let field = |key| {
                crate::event::map_get(&captured, key)
                    .unwrap()
                    .as_str()
                    .unwrap()
            };
            let auth = Auth {
                id: field("id"),
                public_key: field("pub"),
                verdict: Verdict::Accept,
            };
            assert_eq!(auth.to_value(), captured);
        }
    }

    #[test]
    fn key_events_round_trip_and_name_a_missing_or_mistyped_field() {
        let event = KeyEvent {
            act: "delete".into(),
            id: "m1".into(),
        };
        assert_eq!(
            event.to_event().data.to_string(),
            r#"{"result": true, "act": "delete", "id": "m1"}"#
        );
        assert_eq!(KeyEvent::from_value(&event.to_value()), Ok(event));
        let err = KeyEvent::from_value(&Value::Map(vec![entry("act", "accept")])).unwrap_err();
        assert_eq!(err.to_string(), "salt/key event has no id");
        let err = KeyEvent::from_value(&Value::Map(vec![entry("act", 1), entry("id", "m1")]))
            .unwrap_err();
        assert_eq!(err.to_string(), "salt/key event's act is not a string");
    }

    #[test]
    fn presence_and_master_connection_events_carry_salts_fields() {
        let ids = ["m1".to_owned()];
        let change = PresenceChange {
            new: &ids,
            lost: &[],
        };
        assert_eq!(change.tag(), "salt/presence/change");
        assert_eq!(
            change.to_value().to_string(),
            r#"{"new": ["m1"], "lost": []}"#
        );
        let present = PresencePresent { present: &ids };
        assert_eq!(present.to_value().to_string(), r#"{"present": ["m1"]}"#);
        let down = MasterConnection {
            connected: false,
            master: "salt",
        };
        assert_eq!(down.tag(), "__master_disconnected");
        assert_eq!(down.to_value().to_string(), r#"{"master": "salt"}"#);
    }
}
