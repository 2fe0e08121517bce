//! The tags of the events halite's master and minion fire, as Salt spells them, in one place.

/// A minion's key was judged as it connected.
pub const AUTH: &str = "salt/auth";

/// The master refused a minion for its link protocol (halite's own).
pub const LINK_MISMATCH: &str = "halite/link/mismatch";

/// An operator accepted, rejected or deleted a key.
pub const KEY: &str = "salt/key";

/// Minions arrived or left (`presence_events`).
pub const PRESENCE_CHANGE: &str = "salt/presence/change";

/// The minions connected now (`presence_events`).
pub const PRESENCE_PRESENT: &str = "salt/presence/present";

/// A minion started: Salt's legacy tag, beside [`minion_start`].
pub const LEGACY_MINION_START: &str = "minion_start";

/// On a minion's own bus: the session with its master is up.
pub const MASTER_CONNECTED: &str = "__master_connected";

/// On a minion's own bus: the session with its master is down.
pub const MASTER_DISCONNECTED: &str = "__master_disconnected";

/// A minion started: `salt/minion/<id>/start`.
pub fn minion_start(id: &str) -> String {
    format!("salt/minion/{id}/start")
}

/// A job was published: `salt/job/<jid>/new`.
pub fn job_new(jid: &str) -> String {
    format!("salt/job/{jid}/new")
}

/// The load of a published job: `salt/job/<jid>/publish`.
pub fn job_publish(jid: &str) -> String {
    format!("salt/job/{jid}/publish")
}

/// A minion's return for a job: `salt/job/<jid>/ret/<id>`.
pub fn job_return(jid: &str, id: &str) -> String {
    format!("salt/job/{jid}/ret/{id}")
}
