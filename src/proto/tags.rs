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

/// The jid and minion id of a return's tag, `salt/job/<jid>/ret/<id>`.
pub fn parse_job_return(tag: &str) -> Option<(&str, &str)> {
    let (jid, id) = tag.strip_prefix("salt/job/")?.split_once("/ret/")?;
    (!jid.contains('/') && !id.is_empty() && !id.contains('/')).then_some((jid, id))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_return_tag_gives_its_jid_and_minion() {
        let tag = job_return("20261204000000000000", "web1.example");
        assert_eq!(
            parse_job_return(&tag),
            Some(("20261204000000000000", "web1.example"))
        );
        for other in [
            "salt/job/1/new",
            "salt/job/1/ret/",
            "salt/job/1/prog/m/ret/m",
            "salt/job/1/ret/a/b",
            "salt/auth",
        ] {
            assert_eq!(parse_job_return(other), None, "{other}");
        }
    }
}
