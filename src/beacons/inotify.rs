//! `inotify`: one event for each change the kernel reports on watched files and directories,
//! as Salt's `inotify` beacon fires them, and watches that survive what loses Salt's.
//!
//! # Configuration
//!
//! Salt's list form, with the paths under `files`:
//!
//! ```yaml
//! beacons:
//!   inotify:
//!     - files:
//!         /etc/important_file:
//!           mask: [modify]
//!         /srv/data:
//!           mask: [create, delete, close_write]
//!           recurse: True
//!           auto_add: True
//!           exclude:
//!             - /srv/data/tmp
//!             - /srv/data/*.swp
//!             - '/srv/data/cache-[0-9]+$':
//!                 regex: True
//!     - coalesce: True
//!     - disable_during_state_run: True
//! ```
//!
//! or the paths as keys of the beacon themselves, the form of Salt's tutorial (map or list;
//! Salt 3007's own validation refuses it, so that the tutorial's beacon does not run there):
//!
//! ```yaml
//! beacons:
//!   inotify:
//!     /etc/important_file:
//!       mask: [modify]
//! ```
//!
//! The two cannot be confused: a watched path is absolute, so a key that starts with `/` is a
//! path, and `files` and `coalesce` are the only other keys (with the generic `interval`,
//! `enabled`, `run_once`, `disable_during_state_run` and `beacon_module`). Both forms may be
//! mixed; a path given twice is refused. `files` may also be a list of one-path maps.
//!
//! Options of each path (all optional; an empty or null map watches with the default mask):
//!
//! - `mask`: a list of Salt's names of what to report; default `[create, delete, modify]`.
//!   Events: `access`, `attrib`, `close_nowrite`, `close_write`, `create`, `delete`,
//!   `delete_self`, `modify`, `moved_from`, `moved_to`, `move_self`, `open`; `ignored` and
//!   `unmount` are accepted and change nothing: those events are always reported, as Salt's
//!   are. Flags: `excl_unlink` (the kernel's: no events for children once they are unlinked),
//!   `onlydir` (the path must be a directory, else an error event), `oneshot` (at most one
//!   event of the path per check: Salt's watch is removed after its first event and added
//!   again at its next check).
//! - `recurse`: `True` watches the directories below a watched directory too.
//! - `auto_add`: `True` watches directories created or moved in below a watched directory
//!   (with `recurse` or not, as Salt's), reports the entries they already hold as created,
//!   and, as Salt's, reports creations whatever the mask.
//! - `exclude`: paths whose events are not reported and directories not watched: a string
//!   with `*` is a shell glob matched against the full path (Python's `fnmatch`: `*` crosses
//!   `/`); another string is an absolute path, excluded with everything below it;
//!   `{pattern: {regex: True}}` is a Python regular expression searched for in the full path.
//!
//! `coalesce: True` (for the whole beacon, as Salt's) drops the duplicates among the events of
//! one check: same watch, same change, same name.
//!
//! An unknown key, mask name or option value is refused: the error names the key
//! (`files:/etc/hosts:mask`) and what is expected.
//!
//! # Events
//!
//! One per change: `{"path": the full path changed, "change": the kernel's event name
//! (IN_MODIFY, IN_CREATE|IN_ISDIR, ...)}` and the minion's `id`, tagged
//! `salt/beacon/<id>/inotify/<watch>`, where `<watch>` is the watched path (so the tag holds
//! `//`): the configured path, or for an event in a directory below it under `recurse` or
//! `auto_add`, that directory.
//!
//! # Beyond Salt's
//!
//! - Save-by-rename (vim, `sed -i`, visudo), a file deleted and written again, a directory
//!   removed and made again: the watched path is watched by name, from its directory, so the
//!   new file is watched at once and the change is reported as the path's: `IN_MODIFY` (or
//!   `IN_CLOSE_WRITE`, or `IN_CREATE`, the first of them the mask has). Salt reports
//!   `IN_IGNORED` and watches nothing until its next check.
//! - A path that does not exist yet is watched from its directory and its creation reported:
//!   `IN_CREATE` (or `IN_MODIFY`, or `IN_CLOSE_WRITE`, the first the mask has;
//!   `IN_CREATE|IN_ISDIR` for a directory). Salt waits silently. When the directory does not
//!   exist either, the beacon says so once as an error event
//!   (`salt/beacon/<id>/inotify/error`) and looks again at every check.
//! - A watched path deleted or moved away reports `IN_DELETE_SELF` or `IN_MOVE_SELF` when the
//!   mask has it, then `IN_IGNORED` (Salt's own report of a lost watch). Salt keeps watching
//!   a moved file under its old name, or under `<path>-unknown-path`.
//! - Directories moved within a watched tree keep being watched under their new names
//!   whatever the mask (Salt's only when it has `moved_from`, `moved_to` and `move_self`, and
//!   otherwise reports their events under their old names); a directory moved out of the tree
//!   is no longer watched.
//! - Each beacon has its own inotify instance, released when the beacon stops (on reload,
//!   delete, refresh, or while states run under `disable_during_state_run`). Salt's inotify
//!   beacons share one queue of events.
//! - Without an `interval`, the kernel wakes the beacon: an event is on the bus within
//!   milliseconds (after a [`SETTLE`] pause that gathers an editor's save into one check),
//!   not at the next interval; so `coalesce` sees the events that arrive together rather than
//!   a second's worth. Identical events in a row are one, as the kernel merges them while
//!   they wait to be read (`echo > file` truncates and writes: one `IN_MODIFY`, as Salt's).
//! - Overflow of the kernel's queue of events (changes were lost) is an error event; Salt's
//!   beacon fails on it.
//! - Watched paths must be absolute (Salt's would be relative to the minion's working
//!   directory), and unknown keys are refused (Salt's ignores them).
//! - Exclusions mean the same for events and for directories to watch. Salt's plain excluded
//!   path excludes every path that merely starts with the same characters (`/srv/tmp`
//!   excludes `/srv/tmpfile`), `{pattern: {regex: False}}` excludes no event, and every
//!   excluded string is also taken as a regular expression when its watches are added. An
//!   invalid regular expression is refused when the beacon starts (Salt's logs it at each
//!   event).
//!
//! The paths are the real ones: this beacon does not read through [`super::Host`].

mod options;
mod watcher;

use std::time::Duration;

use options::Config;
use watcher::{Batch, Watcher};

use super::{Beacon, Invalid, Module, Options, Wake};
use crate::event::Value;

/// Events held back for the next check at most: what one check may fire.
const PENDING_MAX: usize = 10_000;

pub(super) const MODULE: Module = Module {
    name: "inotify",
    build,
    closes: true,
};

/// How long the beacon waits, once the kernel has an event, before it reads: the steps of an
/// editor's save (rename, create, write) are then read and reported together.
const SETTLE: Duration = Duration::from_millis(10);

fn build(options: &Options) -> Result<Box<dyn Beacon>, Invalid> {
    Ok(Box::new(Watching {
        watcher: None,
        config: Config::read(options)?,
        pending: Vec::new(),
    }))
}

/// The running beacon.
struct Watching {
    /// The inotify instance and its watches, made at the first check; dropping it closes
    /// the instance.
    watcher: Option<Watcher>,
    config: Config,
    /// Events held back by a check that had a problem to say first (at most [`PENDING_MAX`]).
    pending: Vec<Value>,
}

impl Beacon for Watching {
    fn check(&mut self) -> Result<Vec<Value>, String> {
        let watcher = match &mut self.watcher {
            Some(watcher) => watcher,
            None => self.watcher.insert(Watcher::new(self.config.specs.len())?),
        };
        let mut batch = Batch::new(std::mem::take(&mut self.pending));
        watcher.check(&self.config, &mut batch);
        let (out, problems) = batch.into_parts();
        if problems.is_empty() {
            Ok(out)
        } else {
            // Said first; the events follow at once (`wake`), as many as a check may fire.
            let mut said = problems.join("; ");
            if out.len() > PENDING_MAX {
                said.push_str(&format!(
                    "; {} events over the {PENDING_MAX} kept were dropped",
                    out.len() - PENDING_MAX
                ));
            }
            self.pending = out;
            self.pending.truncate(PENDING_MAX);
            Err(said)
        }
    }

    fn wake(&mut self) -> Option<Wake<'_>> {
        let watcher = self.watcher.as_mut()?;
        if !self.pending.is_empty() || watcher.has_news() {
            return Some(Box::pin(std::future::ready(())));
        }
        Some(Box::pin(watcher.wait(SETTLE)))
    }
}
