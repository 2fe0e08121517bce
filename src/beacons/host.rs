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

    /// The 1, 5 and 15 minute load averages. On this machine they are the kernel's own values
    /// (what Python's `os.getloadavg`, and so Salt, reads; `/proc/loadavg` rounds them to two
    /// decimals); on a made-up system, its `/proc/loadavg`.
    pub fn load_averages(&self) -> Result<[f64; 3], String> {
        if self.root == Path::new("/") {
            let info = nix::sys::sysinfo::sysinfo()
                .map_err(|err| format!("cannot read the load averages: {err}"))?;
            let (one, five, fifteen) = info.load_average();
            return Ok([one, five, fifteen]);
        }
        parse_loadavg(&self.read("/proc/loadavg")?)
    }

    /// The text of the system file at `path`, or an error naming it.
    pub fn read(&self, path: impl AsRef<Path>) -> Result<String, String> {
        let file = self.path(path);
        std::fs::read_to_string(&file)
            .map_err(|err| format!("cannot read {}: {err}", file.display()))
    }
}

/// The three averages that begin `/proc/loadavg` (`0.52 0.58 0.59 1/467 12345`).
fn parse_loadavg(text: &str) -> Result<[f64; 3], String> {
    let mut fields = text.split_whitespace().map(str::parse::<f64>);
    let mut next = || match fields.next() {
        Some(Ok(average)) => Ok(average),
        _ => Err(format!(
            "/proc/loadavg does not begin with three averages: {text:?}"
        )),
    };
    Ok([next()?, next()?, next()?])
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn load_averages_are_the_first_three_fields_of_proc_loadavg() {
        assert_eq!(
            parse_loadavg("0.52 1.50 12.00 1/467 12345\n"),
            Ok([0.52, 1.5, 12.0])
        );
        assert!(parse_loadavg("0.52 x").is_err());
        assert!(Host::real().load_averages().is_ok());
    }
}
