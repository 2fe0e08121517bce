//! What an operator does to keys — accept, reject, delete — done the same way by `salt-key` and
//! by `wheel.key.*` reactions, each change announced with Salt's `salt/key` event.

use std::path::Path;

use super::{KeyError, KeyState, KeyStore};
use crate::event::Event;
use crate::proto::SaltEvent;
use crate::proto::events::KeyEvent;

/// A change to one minion's key.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum KeyChange {
    /// Move to `minions`.
    Accept,
    /// Move to `minions_rejected`.
    Reject,
    /// Remove.
    Delete,
}

impl KeyChange {
    /// The past participle `salt-key` prints ("Key for minion m1 accepted.").
    pub fn verb(self) -> &'static str {
        match self {
            KeyChange::Accept => "accepted",
            KeyChange::Reject => "rejected",
            KeyChange::Delete => "deleted",
        }
    }

    /// The `act` of the `salt/key` event.
    pub fn act(self) -> &'static str {
        match self {
            KeyChange::Accept => "accept",
            KeyChange::Reject => "reject",
            KeyChange::Delete => "delete",
        }
    }

    /// Applies the change to `id`'s key, found in state `from`, and returns the `salt/key`
    /// event that announces it. A minion left without any key also loses its cached data
    /// under `cachedir`, as with Salt.
    pub fn apply(
        self,
        store: &KeyStore,
        cachedir: Option<&Path>,
        id: &str,
        from: KeyState,
    ) -> Result<Event, KeyError> {
        match self {
            KeyChange::Accept => store.change(id, from, KeyState::Accepted)?,
            KeyChange::Reject => store.change(id, from, KeyState::Rejected)?,
            KeyChange::Delete => store.delete(id, from)?,
        }
        if self != KeyChange::Accept
            && let Some(cachedir) = cachedir
            && KeyState::ALL
                .iter()
                .all(|state| store.key(*state, id).is_none())
        {
            let _ = std::fs::remove_dir_all(cachedir.join("minions").join(id));
        }
        Ok(KeyEvent {
            act: self.act().to_owned(),
            id: id.to_owned(),
        }
        .to_event())
    }
}

impl KeyState {
    /// The order Salt lists states in its returns and `--out json`: minions, minions_pre,
    /// minions_rejected, minions_denied.
    pub const SALT_ORDER: [KeyState; 4] = [
        KeyState::Accepted,
        KeyState::Pending,
        KeyState::Rejected,
        KeyState::Denied,
    ];

    /// The words [`Self::for_list`] is usually given, for completions.
    pub const LIST_NAMES: [&str; 10] = [
        "acc",
        "accepted",
        "pre",
        "un",
        "unaccepted",
        "rej",
        "rejected",
        "den",
        "denied",
        "all",
    ];

    /// The states `salt-key -l` and `wheel.key.list` name with `acc`, `pre`/`un`, `rej`, `den`
    /// or `all` (and any longer word starting so).
    pub fn for_list(arg: &str) -> Option<Vec<KeyState>> {
        Some(if arg.starts_with("acc") {
            vec![KeyState::Accepted]
        } else if arg.starts_with("pre") || arg.starts_with("un") {
            vec![KeyState::Pending]
        } else if arg.starts_with("rej") {
            vec![KeyState::Rejected]
        } else if arg.starts_with("den") {
            vec![KeyState::Denied]
        } else if arg.starts_with("all") {
            KeyState::ALL.to_vec()
        } else {
            return None;
        })
    }
}
