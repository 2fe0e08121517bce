//! `diskusage`: fires `{"diskusage": percent, "mount": mount point}` for each mounted
//! filesystem whose use reaches the percent configured for it.
//!
//! Each option is a mount point and its threshold (`/: 63%`). The mount point is a Python
//! regular expression, as Salt reads it: matched from the start of each mount point of the
//! mount table, with a `$` added at its end unless it has one, so `/` is the root alone and
//! `^/(?!home).*` (look-around cannot be matched in linear time: refused) or `/mnt/.*` match
//! several. The use is psutil's, which Salt's module reads: the space in use over the space in
//! use and available to users (blocks reserved for root left out), in percent rounded to one
//! decimal. Options beginning with `_` are ignored, as Salt's hidden options.

use super::usage::{percent, percent_of};
use super::{Beacon, Host, Invalid, Module, Options};
use crate::event::Value;
use crate::py::re::{Anchoring, Regex};
use crate::py::value::py_str;

pub(super) const MODULE: Module = Module {
    name: "diskusage",
    build,
    closes: false,
};

fn build(options: &Options) -> Result<Box<dyn Beacon>, Invalid> {
    let mut watched = Vec::new();
    for (key, value) in options.entries() {
        let mount = py_str(key);
        if mount.starts_with('_') {
            continue;
        }
        let threshold = percent(&mount, value)?;
        let source = match mount.ends_with('$') {
            true => mount.to_string(),
            false => format!("{mount}$"),
        };
        let regex = Regex::new(&source, Anchoring::Match, &mount).map_err(|err| {
            Invalid::new(
                mount.as_ref(),
                format!("a mount point or a regular expression matching mount points: {err}"),
            )
        })?;
        watched.push(Watched { regex, threshold });
    }
    if watched.is_empty() {
        return Err(Invalid::new(
            "diskusage",
            "mount points with their thresholds, such as `- /: 63%`",
        ));
    }
    Ok(Box::new(DiskUsage {
        watched,
        host: options.host.clone(),
    }))
}

struct Watched {
    regex: Regex,
    threshold: f64,
}

struct DiskUsage {
    watched: Vec<Watched>,
    host: Host,
}

impl Beacon for DiskUsage {
    fn check(&mut self) -> Result<Vec<Value>, String> {
        let mounts = mount_points(&self.host.read("/proc/mounts")?);
        let mut fired = Vec::new();
        for watched in &self.watched {
            for mount in mounts.iter().filter(|mount| watched.regex.is_match(mount)) {
                let used = match used_percent(&self.host, mount) {
                    Ok(used) => used,
                    Err(err) => {
                        tracing::warn!("diskusage: {mount} is not a valid mount point: {err}");
                        continue;
                    }
                };
                if used >= watched.threshold {
                    fired.push(Value::Map(vec![
                        ("diskusage".into(), Value::F64(used)),
                        ("mount".into(), mount.as_str().into()),
                    ]));
                }
            }
        }
        Ok(fired)
    }
}

/// The mount points of a mount table (`/proc/mounts`), in its order, with the octal escapes
/// the kernel writes for spaces, tabs, newlines and backslashes undone (as `getmntent` does).
fn mount_points(table: &str) -> Vec<String> {
    table
        .lines()
        .filter_map(|line| line.split_whitespace().nth(1))
        .map(unescape)
        .collect()
}

fn unescape(field: &str) -> String {
    let mut out = String::with_capacity(field.len());
    let mut rest = field;
    while let Some(at) = rest.find('\\') {
        out.push_str(&rest[..at]);
        let escape = &rest[at..];
        let (decoded, len) = match escape.get(..4) {
            Some("\\040") => (' ', 4),
            Some("\\011") => ('\t', 4),
            Some("\\012") => ('\n', 4),
            Some("\\134") => ('\\', 4),
            _ if escape.starts_with("\\\\") => ('\\', 2),
            _ => ('\\', 1),
        };
        out.push(decoded);
        rest = &escape[len..];
    }
    out.push_str(rest);
    out
}

/// psutil's `disk_usage(mount).percent`.
fn used_percent(host: &Host, mount: &str) -> Result<f64, nix::Error> {
    let stats = nix::sys::statvfs::statvfs(&host.path(mount))?;
    Ok(psutil_percent(
        stats.blocks() as u64,
        stats.blocks_free() as u64,
        stats.blocks_available() as u64,
        stats.fragment_size() as u64,
    ))
}

/// In use, over in use plus available to users: the blocks free to root alone are left out.
fn psutil_percent(blocks: u64, free: u64, available: u64, fragment: u64) -> f64 {
    let bytes = |blocks: u64| blocks.saturating_mul(fragment);
    let used = bytes(blocks).saturating_sub(bytes(free));
    percent_of(used, used.saturating_add(bytes(available)))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn diskusage(config: &str, root: &std::path::Path) -> Result<Box<dyn Beacon>, Invalid> {
        let config = crate::salt_yaml::load(config).expect("yaml");
        build(&Options {
            name: "diskusage",
            config: &config,
            host: &Host::at(root),
        })
    }

    #[test]
    fn mount_table_escapes_are_undone() {
        let table = "/dev/vda / ext4 rw 0 0\n\
                     tmpfs /mnt/my\\040disk tmpfs rw 0 0\n\
                     x /a\\134b\\011c x rw 0 0\n";
        assert_eq!(mount_points(table), ["/", "/mnt/my disk", "/a\\b\tc"]);
    }

    #[test]
    fn mount_points_are_anchored_regexes_and_every_match_over_the_threshold_fires() {
        let root = tempfile::tempdir().unwrap();
        for dir in ["proc", "data", "data/one", "home"] {
            std::fs::create_dir_all(root.path().join(dir)).unwrap();
        }
        std::fs::write(
            root.path().join("proc/mounts"),
            "r / ext4 rw 0 0\nd /data ext4 rw 0 0\nd /data/one ext4 rw 0 0\n\
             h /home ext4 rw 0 0\ngone /gone ext4 rw 0 0\n",
        )
        .unwrap();
        let mounts = |config: &str| -> Vec<String> {
            let mut beacon = diskusage(config, root.path()).unwrap();
            let fired = beacon.check().unwrap();
            fired
                .iter()
                .map(|data| {
                    assert_eq!(
                        crate::py::value::py_str(&data.as_map().unwrap()[0].0),
                        "diskusage"
                    );
                    crate::event::map_get(data, "mount")
                        .unwrap()
                        .as_str()
                        .unwrap()
                        .to_owned()
                })
                .collect()
        };
        assert_eq!(mounts("/: 0%"), ["/"], "a $ is added: / alone");
        assert_eq!(mounts("/data: 0%"), ["/data"]);
        assert_eq!(mounts("/data.*: 0"), ["/data", "/data/one"]);
        assert_eq!(
            mounts("ata: 0"),
            Vec::<String>::new(),
            "matched from the start"
        );
        assert_eq!(mounts("/(data|home)$: 0%"), ["/data", "/home"]);
        assert_eq!(
            mounts("/gone: 0%"),
            Vec::<String>::new(),
            "cannot be read: skipped"
        );
        assert_eq!(mounts("/: 100%\n_hidden: x"), Vec::<String>::new());
    }

    #[test]
    fn percent_is_used_over_used_and_available_to_users() {
        // 1000 blocks, 300 free of which 100 reserved for root: 700 / (700 + 200).
        assert_eq!(psutil_percent(1000, 300, 200, 4096), 77.8);
        assert_eq!(psutil_percent(0, 0, 0, 4096), 0.0);
    }

    #[test]
    fn bad_mount_points_and_thresholds_are_named() {
        let root = tempfile::tempdir().unwrap();
        let key = |config: &str| diskusage(config, root.path()).err().map(|err| err.key);
        assert_eq!(key("'/data[': 50%").as_deref(), Some("/data["));
        assert_eq!(key("/: lots").as_deref(), Some("/"));
        assert_eq!(key("/: 150%").as_deref(), Some("/"));
        assert_eq!(key("{}").as_deref(), Some("diskusage"));
        let lookahead = diskusage("'^/(?!home).*$': 90%", root.path())
            .err()
            .unwrap();
        assert!(lookahead.expected.contains("look"), "{lookahead}");
    }
}
