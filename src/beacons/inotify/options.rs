//! The `inotify` beacon's options, read and checked once when the beacon is built: the
//! watched paths with their masks, recursion and exclusions, and `coalesce`.

use std::path::{Component, Path, PathBuf};

use crate::beacons::config::describe;
use crate::beacons::{Invalid, Options};
use crate::event::Value;
use crate::py::fnmatch::FnmatchPattern;
use crate::py::re::{Anchoring, Regex};
use crate::py::value::py_str;

/// Salt's mask names, the kernel's bits, and the names of the events (flags have none).
const MASKS: [(&str, u32, &str); 17] = [
    ("access", libc::IN_ACCESS, "IN_ACCESS"),
    ("modify", libc::IN_MODIFY, "IN_MODIFY"),
    ("attrib", libc::IN_ATTRIB, "IN_ATTRIB"),
    ("close_write", libc::IN_CLOSE_WRITE, "IN_CLOSE_WRITE"),
    ("close_nowrite", libc::IN_CLOSE_NOWRITE, "IN_CLOSE_NOWRITE"),
    ("open", libc::IN_OPEN, "IN_OPEN"),
    ("moved_from", libc::IN_MOVED_FROM, "IN_MOVED_FROM"),
    ("moved_to", libc::IN_MOVED_TO, "IN_MOVED_TO"),
    ("create", libc::IN_CREATE, "IN_CREATE"),
    ("delete", libc::IN_DELETE, "IN_DELETE"),
    ("delete_self", libc::IN_DELETE_SELF, "IN_DELETE_SELF"),
    ("move_self", libc::IN_MOVE_SELF, "IN_MOVE_SELF"),
    ("unmount", libc::IN_UNMOUNT, "IN_UNMOUNT"),
    ("ignored", libc::IN_IGNORED, "IN_IGNORED"),
    ("excl_unlink", libc::IN_EXCL_UNLINK, ""),
    ("oneshot", libc::IN_ONESHOT, ""),
    ("onlydir", libc::IN_ONLYDIR, ""),
];

/// Salt's default mask.
const DEFAULT_MASK: u32 = libc::IN_CREATE | libc::IN_DELETE | libc::IN_MODIFY;
/// Mask names that are flags, not events.
const FLAGS: u32 = libc::IN_EXCL_UNLINK | libc::IN_ONESHOT | libc::IN_ONLYDIR;
/// Events the kernel sends whatever the mask, and Salt reports.
const ALWAYS: u32 = libc::IN_IGNORED | libc::IN_UNMOUNT;

/// The beacon's options.
#[derive(Debug)]
pub(super) struct Config {
    /// The watched paths, in the order configured.
    pub(super) specs: Vec<Spec>,
    /// Duplicate events of one check are dropped.
    pub(super) coalesce: bool,
}

impl Config {
    /// Reads Salt's `files:` form and the tutorial's paths-as-keys form alike.
    pub(super) fn read(options: &Options) -> Result<Self, Invalid> {
        let mut specs: Vec<Spec> = Vec::new();
        let mut coalesce = false;
        let mut add = |spec: Spec| {
            if specs.iter().any(|other| other.path == spec.path) {
                return Err(Invalid::new(
                    spec.key,
                    "a path configured once (it is given twice)",
                ));
            }
            specs.push(spec);
            Ok(())
        };
        for (key, value) in options.config.as_map().into_iter().flatten() {
            let key = py_str(key);
            match key.as_ref() {
                "files" => {
                    for (path, conf) in files(value)? {
                        let path = py_str(path);
                        add(Spec::read(&format!("files:{path}"), &path, conf)?)?;
                    }
                }
                "coalesce" => {
                    coalesce = value.as_bool().ok_or_else(|| {
                        Invalid::new(
                            "coalesce",
                            format!("True or False, not {}", describe(value)),
                        )
                    })?;
                }
                path if path.starts_with('/') => add(Spec::read(path, path, value)?)?,
                other => {
                    return Err(Invalid::new(
                        other,
                        "files, coalesce, or a path to watch (absolute: /etc/hosts)",
                    ));
                }
            }
        }
        if specs.is_empty() {
            return Err(Invalid::new(
                "files",
                "at least one path to watch, as `files: {/etc/hosts: {mask: [modify]}}` or `/etc/hosts: {mask: [modify]}`",
            ));
        }
        Ok(Self { specs, coalesce })
    }
}

/// The `files` option: a map of paths to their options, or Salt's documented list of
/// one-path maps.
fn files(value: &Value) -> Result<Vec<(&Value, &Value)>, Invalid> {
    let expected = || {
        Invalid::new(
            "files",
            format!(
                "a map of paths to their options ({{/etc/hosts: {{mask: [modify]}}}}), not {}",
                describe(value)
            ),
        )
    };
    match value {
        Value::Map(entries) => Ok(entries.iter().map(|(k, v)| (k, v)).collect()),
        Value::Array(items) => items
            .iter()
            .map(|item| item.as_map().ok_or_else(expected))
            .try_fold(Vec::new(), |mut all, entries| {
                all.extend(entries?.iter().map(|(k, v)| (k, v)));
                Ok(all)
            }),
        _ => Err(expected()),
    }
}

/// One watched path as configured.
#[derive(Debug)]
pub(super) struct Spec {
    /// How its options are named in errors: `files:/etc/hosts` or `/etc/hosts`.
    pub(super) key: String,
    /// Absolute and normalised as Python's `os.path.normpath` does: the events' tag.
    pub(super) path: PathBuf,
    /// The events asked for.
    pub(super) events: u32,
    pub(super) excl_unlink: bool,
    pub(super) oneshot: bool,
    pub(super) onlydir: bool,
    pub(super) recurse: bool,
    pub(super) auto_add: bool,
    pub(super) exclude: Vec<Exclude>,
}

/// One `exclude` entry.
#[derive(Debug)]
pub(super) enum Exclude {
    /// A string with `*`: Python's `fnmatch` on the full path.
    Glob(FnmatchPattern),
    /// Another string: the path and everything below it.
    Under(PathBuf),
    /// `{pattern: {regex: True}}`: searched for in the full path.
    Regex(Regex),
}

impl Spec {
    fn read(key: &str, path: &str, conf: &Value) -> Result<Self, Invalid> {
        if !path.starts_with('/') {
            return Err(Invalid::new(
                key,
                format!("an absolute path to watch, not {path:?}"),
            ));
        }
        let mut spec = Spec {
            key: key.to_owned(),
            path: normalise(path),
            events: DEFAULT_MASK,
            excl_unlink: false,
            oneshot: false,
            onlydir: false,
            recurse: false,
            auto_add: false,
            exclude: Vec::new(),
        };
        let entries = match conf {
            Value::Nil => return Ok(spec),
            Value::Map(entries) => entries,
            other => {
                return Err(Invalid::new(
                    key,
                    format!(
                        "a map of mask, recurse, auto_add and exclude (or nothing), not {}",
                        describe(other)
                    ),
                ));
            }
        };
        for (option, value) in entries {
            let option = py_str(option);
            let key = format!("{key}:{option}");
            let flag = || {
                value.as_bool().ok_or_else(|| {
                    Invalid::new(&key, format!("True or False, not {}", describe(value)))
                })
            };
            match option.as_ref() {
                "mask" => {
                    let mask = mask(&key, value)?;
                    spec.events = mask & !FLAGS;
                    spec.excl_unlink = mask & libc::IN_EXCL_UNLINK != 0;
                    spec.oneshot = mask & libc::IN_ONESHOT != 0;
                    spec.onlydir = mask & libc::IN_ONLYDIR != 0;
                }
                "recurse" => spec.recurse = flag()?,
                "auto_add" => spec.auto_add = flag()?,
                "exclude" => spec.exclude = excludes(&key, value)?,
                _ => {
                    return Err(Invalid::new(
                        key,
                        "one of mask, recurse, auto_add, exclude (the options of a watched path)",
                    ));
                }
            }
        }
        Ok(spec)
    }

    /// The events reported: those asked for, those the kernel always sends, and with
    /// `auto_add` creations (Salt's watches add them to the mask).
    pub(super) fn reported(&self) -> u32 {
        let created = if self.auto_add { libc::IN_CREATE } else { 0 };
        self.events | ALWAYS | created
    }

    /// What the path, and the directories below it, are watched for.
    pub(super) fn watch_mask(&self) -> u32 {
        let mut mask = self.events & !ALWAYS;
        if self.recurse || self.auto_add {
            // Directories moved within the tree keep their watches under their new names.
            mask |= libc::IN_MOVED_FROM | libc::IN_MOVED_TO;
        }
        if self.auto_add {
            mask |= libc::IN_CREATE;
        }
        if self.excl_unlink {
            mask |= libc::IN_EXCL_UNLINK;
        }
        mask
    }

    pub(super) fn excluded(&self, path: &Path) -> bool {
        let text = path.to_string_lossy();
        self.exclude.iter().any(|exclude| match exclude {
            Exclude::Glob(glob) => glob.matches(&text),
            Exclude::Under(under) => path.starts_with(under),
            Exclude::Regex(regex) => regex.is_match(&text),
        })
    }

    /// The change reported when the path comes to name a new file: the first of `changes`
    /// the mask has (a directory is only ever reported created).
    pub(super) fn news(&self, is_dir: bool, changes: [u32; 3]) -> Option<String> {
        if is_dir {
            return (self.reported() & libc::IN_CREATE != 0)
                .then(|| change_name(libc::IN_CREATE | libc::IN_ISDIR));
        }
        changes
            .into_iter()
            .find(|bit| self.reported() & bit != 0)
            .map(change_name)
    }
}

/// A `mask` list: the kernel bits of its names.
fn mask(key: &str, value: &Value) -> Result<u32, Invalid> {
    let names = || {
        MASKS
            .iter()
            .map(|(name, _, _)| *name)
            .collect::<Vec<_>>()
            .join(", ")
    };
    let Value::Array(items) = value else {
        return Err(Invalid::new(
            key,
            format!(
                "a list of mask names such as [modify], not {}",
                describe(value)
            ),
        ));
    };
    let mut mask = 0;
    for item in items {
        let bit = item
            .as_str()
            .and_then(|name| MASKS.iter().find(|(known, _, _)| *known == name))
            .map(|(_, bit, _)| *bit)
            .ok_or_else(|| {
                Invalid::new(
                    key,
                    format!("Salt's mask names ({}), not {}", names(), describe(item)),
                )
            })?;
        mask |= bit;
    }
    if mask & !(FLAGS | ALWAYS) == 0 {
        return Err(Invalid::new(
            key,
            format!(
                "at least one event to report (such as modify), not {}",
                describe(value)
            ),
        ));
    }
    Ok(mask)
}

/// An `exclude` list.
fn excludes(key: &str, value: &Value) -> Result<Vec<Exclude>, Invalid> {
    let expected = |got: &Value| {
        Invalid::new(
            key,
            format!(
                "a list of paths, globs and {{pattern: {{regex: True}}}} maps, not {}",
                describe(got)
            ),
        )
    };
    let Value::Array(items) = value else {
        return Err(expected(value));
    };
    let mut all = Vec::new();
    for item in items {
        match item {
            Value::String(_) => all.push(plain(key, &py_str(item))?),
            Value::Map(entries) => {
                for (pattern, options) in entries {
                    let pattern = py_str(pattern);
                    let regex = match options {
                        Value::Nil => false,
                        Value::Map(_) => {
                            for (option, _) in options.as_map().into_iter().flatten() {
                                if option.as_str() != Some("regex") {
                                    return Err(Invalid::new(
                                        key,
                                        format!(
                                            "regex as the only option of an excluded pattern, not {}",
                                            describe(option)
                                        ),
                                    ));
                                }
                            }
                            match crate::event::map_get(options, "regex") {
                                None => false,
                                Some(flag) => flag.as_bool().ok_or_else(|| {
                                    Invalid::new(
                                        key,
                                        format!("regex: True or False, not {}", describe(flag)),
                                    )
                                })?,
                            }
                        }
                        other => return Err(expected(other)),
                    };
                    all.push(if regex {
                        Exclude::Regex(
                            Regex::new(
                                &format!("(?s:.*?)(?:{pattern})"),
                                Anchoring::Match,
                                &pattern,
                            )
                            .map_err(|err| {
                                Invalid::new(
                                    key,
                                    format!("a regular expression Python accepts: {err}"),
                                )
                            })?,
                        )
                    } else {
                        plain(key, &pattern)?
                    });
                }
            }
            other => return Err(expected(other)),
        }
    }
    Ok(all)
}

/// An excluded string: a glob with `*` (Salt's test), else an absolute path.
fn plain(key: &str, pattern: &str) -> Result<Exclude, Invalid> {
    if pattern.contains('*') {
        Ok(Exclude::Glob(FnmatchPattern::new(pattern)))
    } else if pattern.starts_with('/') {
        Ok(Exclude::Under(normalise(pattern)))
    } else {
        Err(Invalid::new(
            key,
            format!("an absolute path or a glob with * to exclude, not {pattern:?}"),
        ))
    }
}

/// An absolute path as Python's `os.path.normpath` writes it: no `.`, `..`, repeated or
/// trailing `/`.
fn normalise(path: &str) -> PathBuf {
    let mut normal = PathBuf::from("/");
    for component in Path::new(path).components() {
        match component {
            Component::Normal(name) => normal.push(name),
            Component::ParentDir => {
                normal.pop();
            }
            Component::RootDir | Component::CurDir | Component::Prefix(_) => {}
        }
    }
    normal
}

/// The name Salt (pyinotify) gives an event's mask: `IN_MODIFY`, `IN_CREATE|IN_ISDIR`.
pub(super) fn change_name(mask: u32) -> String {
    let mut names: Vec<&str> = MASKS
        .iter()
        .filter(|(_, bit, event)| mask & bit != 0 && !event.is_empty())
        .map(|(_, _, event)| *event)
        .collect();
    if mask & libc::IN_ISDIR != 0 {
        names.push("IN_ISDIR");
    }
    names.join("|")
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::beacons::Host;

    fn read(yaml: &str) -> Result<Config, Invalid> {
        let config = crate::salt_yaml::load(yaml).unwrap();
        Config::read(&Options {
            name: "inotify",
            config: &config,
            host: &Host::real(),
        })
    }

    fn specs(yaml: &str) -> Vec<(String, u32, bool, bool)> {
        let config = read(yaml).unwrap();
        config
            .specs
            .iter()
            .map(|spec| {
                let path = spec.path.display().to_string();
                (path, spec.events, spec.recurse, spec.auto_add)
            })
            .collect()
    }

    #[test]
    fn salt_files_form_and_tutorial_path_keys_read_the_same() {
        let salt = specs(
            "files: {/etc/hosts: {mask: [modify]}, /srv//data/: {recurse: True, auto_add: True}}",
        );
        let tutorial =
            specs("/etc/hosts: {mask: [modify]}\n/srv//data/: {recurse: True, auto_add: True}");
        assert_eq!(salt, tutorial);
        assert_eq!(
            salt,
            [
                ("/etc/hosts".to_owned(), libc::IN_MODIFY, false, false),
                ("/srv/data".to_owned(), DEFAULT_MASK, true, true),
            ]
        );
        // Salt's documented list of one-path maps under files, and a null path map.
        assert_eq!(
            specs("files: [{/etc/hosts: {mask: [modify]}}, {/srv/data/../data: }]")[1],
            ("/srv/data".to_owned(), DEFAULT_MASK, false, false)
        );
        assert!(
            read("files: {/etc/hosts: {mask: [modify]}}\ncoalesce: True")
                .unwrap()
                .coalesce
        );
        assert!(!read("/etc/hosts: {mask: [modify]}").unwrap().coalesce);
    }

    #[test]
    fn every_bad_option_names_its_key() {
        let invalid = |yaml: &str| read(yaml).expect_err(yaml);
        let err = invalid("/etc/hosts: {mask: [modify, modfy]}");
        assert_eq!(err.key, "/etc/hosts:mask");
        assert!(
            err.expected.contains("not 'modfy'") && err.expected.contains("close_write"),
            "{err}"
        );
        assert_eq!(
            invalid("files: {/etc/hosts: {mask: modify}}").key,
            "files:/etc/hosts:mask"
        );
        assert!(
            invalid("/etc/hosts: {mask: [oneshot]}")
                .expected
                .contains("at least one event")
        );
        assert_eq!(
            invalid("/etc/hosts: {recurse: yes please}").key,
            "/etc/hosts:recurse"
        );
        assert_eq!(
            invalid("/etc/hosts: {exlude: [/tmp]}").key,
            "/etc/hosts:exlude"
        );
        assert_eq!(invalid("files: {etc/hosts: {}}").key, "files:etc/hosts");
        assert_eq!(invalid("etc/hosts: {mask: [modify]}").key, "etc/hosts");
        assert_eq!(invalid("coalese: True\n/etc/hosts: {}").key, "coalese");
        assert_eq!(invalid("coalesce: 1\n/etc/hosts: {}").key, "coalesce");
        assert_eq!(invalid("files: [/etc/hosts]").key, "files");
        assert_eq!(invalid("/etc/hosts: [modify]").key, "/etc/hosts");
        assert_eq!(invalid("coalesce: True").key, "files");
        assert!(
            invalid("/etc/hosts: {}\nfiles: {/etc//hosts/: {}}")
                .expected
                .contains("twice")
        );
        let err = invalid("/srv: {exclude: [{'a(': {regex: True}}]}");
        assert_eq!(err.key, "/srv:exclude");
        assert!(err.expected.contains("regular expression"), "{err}");
        assert_eq!(invalid("/srv: {exclude: [relative]}").key, "/srv:exclude");
        assert_eq!(
            invalid("/srv: {exclude: [{/a: {regx: True}}]}").key,
            "/srv:exclude"
        );
    }

    #[test]
    fn excludes_are_globs_paths_with_what_is_below_and_searched_regexes() {
        let config = crate::salt_yaml::load(
            "exclude: [/srv/tmp, '/srv/*.log', {'cache-[0-9]+$': {regex: True}}, {/srv/plain: {regex: False}}]",
        )
        .unwrap();
        let spec = Spec::read("/srv", "/srv", &config).unwrap();
        for (path, excluded) in [
            ("/srv/tmp", true),
            ("/srv/tmp/a/b", true),
            ("/srv/tmpfile", false),
            ("/srv/a.log", true),
            ("/srv/deep/a.log", true),
            ("/srv/a.logs", false),
            ("/srv/x/cache-12", true),
            ("/srv/x/cache-12a", false),
            ("/srv/plain/x", true),
            ("/srv/other", false),
        ] {
            assert_eq!(spec.excluded(Path::new(path)), excluded, "{path}");
        }
    }

    #[test]
    fn change_names_are_pyinotifys() {
        assert_eq!(change_name(libc::IN_MODIFY), "IN_MODIFY");
        assert_eq!(
            change_name(libc::IN_CREATE | libc::IN_ISDIR),
            "IN_CREATE|IN_ISDIR"
        );
        assert_eq!(change_name(libc::IN_CLOSE_NOWRITE), "IN_CLOSE_NOWRITE");
        assert_eq!(change_name(libc::IN_IGNORED), "IN_IGNORED");
        assert_eq!(change_name(libc::IN_MOVE_SELF), "IN_MOVE_SELF");
    }

    #[test]
    fn paths_are_normalised_as_python_normpath() {
        assert_eq!(normalise("/a//b/./c/"), Path::new("/a/b/c"));
        assert_eq!(normalise("/a/b/../c"), Path::new("/a/c"));
        assert_eq!(normalise("/.."), Path::new("/"));
    }

    #[test]
    fn news_of_a_path_is_the_first_change_its_mask_has() {
        let spec =
            |yaml: &str| Spec::read("/f", "/f", &crate::salt_yaml::load(yaml).unwrap()).unwrap();
        let replaced = [libc::IN_MODIFY, libc::IN_CLOSE_WRITE, libc::IN_CREATE];
        let created = [libc::IN_CREATE, libc::IN_MODIFY, libc::IN_CLOSE_WRITE];
        assert_eq!(
            spec("{}").news(false, replaced).as_deref(),
            Some("IN_MODIFY")
        );
        assert_eq!(
            spec("{}").news(false, created).as_deref(),
            Some("IN_CREATE")
        );
        assert_eq!(
            spec("{mask: [modify]}").news(false, created).as_deref(),
            Some("IN_MODIFY")
        );
        assert_eq!(
            spec("{mask: [close_write]}")
                .news(false, replaced)
                .as_deref(),
            Some("IN_CLOSE_WRITE")
        );
        assert_eq!(spec("{mask: [attrib]}").news(false, replaced), None);
        assert_eq!(
            spec("{}").news(true, replaced).as_deref(),
            Some("IN_CREATE|IN_ISDIR")
        );
        assert_eq!(
            spec("{mask: [modify], auto_add: True}")
                .news(true, created)
                .as_deref(),
            Some("IN_CREATE|IN_ISDIR")
        );
    }
}
