//! Where beacons read the system: `/proc`, `/sys`, `/var/log/wtmp` and the rest, under one root
//! that is `/` on a minion and a directory of made-up files in tests.

use std::path::{Path, PathBuf};

/// The system beacons look at.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Host {
    root: PathBuf,
}

impl Default for Host {
    fn default() -> Self {
        Self::real()
    }
}

impl Host {
    /// This machine.
    pub fn real() -> Self {
        Self { root: "/".into() }
    }

    /// A system laid out under `root` (`root/proc/meminfo`, …).
    pub fn at(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    /// The file the system has at the absolute path `path` (`/proc/loadavg`).
    pub fn path(&self, path: impl AsRef<Path>) -> PathBuf {
        let path = path.as_ref();
        self.root.join(path.strip_prefix("/").unwrap_or(path))
    }

    /// The text of the system file at `path`, or an error naming it.
    pub fn read(&self, path: impl AsRef<Path>) -> Result<String, String> {
        let file = self.path(path);
        std::fs::read_to_string(&file)
            .map_err(|err| format!("cannot read {}: {err}", file.display()))
    }
}
