//! The `reactor` option: which SLS files react to which tags, read as Salt reads it, and where
//! those files are.

use std::path::{Path, PathBuf};

use crate::config::Config;
use crate::event::Value;
use crate::fileserver::{FileError, Roots, SaltUrl};
use crate::py::fnmatch::FnmatchPattern;
use crate::py::value::py_str;

/// One entry of the `reactor` list: a tag glob and the SLS paths it runs.
#[derive(Debug, Clone)]
pub struct Rule {
    /// The glob, as written.
    pub glob: String,
    pattern: FnmatchPattern,
    /// The paths, as written: absolute, globbed, or `salt://` in `file_roots`.
    pub paths: Vec<String>,
}

impl Rule {
    /// Whether this entry's glob matches `tag`.
    pub fn matches(&self, tag: &str) -> bool {
        self.pattern.matches(tag)
    }
}

/// The reactor's configuration: its rules in order, and what was wrong with the option.
#[derive(Debug, Clone)]
pub struct Rules {
    /// The usable entries.
    pub rules: Vec<Rule>,
    /// One line per entry that was skipped, saying why.
    pub problems: Vec<String>,
    file_roots: Roots,
}

impl Rules {
    /// No rules.
    pub fn empty() -> Self {
        Rules {
            rules: Vec::new(),
            problems: Vec::new(),
            file_roots: Roots::new(Vec::new()),
        }
    }

    /// Reads the `reactor` option of `config`: a list of `{glob: path or [paths]}`, or the path
    /// of a YAML file holding that list. Entries that are not single-key maps of strings are
    /// skipped and described in [`Rules::problems`].
    pub fn from_config(config: &Config) -> Self {
        let mut rules = Rules::empty();
        match Roots::file_roots(config) {
            Ok(roots) => rules.file_roots = roots,
            Err(err) => rules.problems.push(format!("reactor: {err}")),
        }
        let list = match config.get("reactor").unwrap_or(&Value::Nil) {
            Value::Nil => return rules,
            Value::String(path) => {
                let path = path.as_str().unwrap_or_default().to_owned();
                match std::fs::read_to_string(&path)
                    .map_err(|err| err.to_string())
                    .and_then(|text| crate::salt_yaml::load(&text).map_err(|err| err.to_string()))
                {
                    Ok(list) => list,
                    Err(err) => {
                        rules.problems.push(format!(
                            "reactor: cannot read the reactor list {path}: {err}"
                        ));
                        return rules;
                    }
                }
            }
            other => other.clone(),
        };
        let Some(entries) = list.as_array() else {
            rules.problems.push(format!(
                "reactor: the option must be a list of {{tag glob: [sls paths]}}, not {list}"
            ));
            return rules;
        };
        for (index, entry) in entries.iter().enumerate() {
            match rule(entry) {
                Ok(rule) => rules.rules.push(rule),
                Err(why) => rules.problems.push(format!(
                    "reactor: entry {} ({entry}) skipped: {why}",
                    index + 1
                )),
            }
        }
        rules
    }

    /// Whether `other` has the same entries, problems and `file_roots`: a reload that reads
    /// these changes nothing.
    pub fn same_as(&self, other: &Rules) -> bool {
        let entries = |rules: &Rules| {
            rules
                .rules
                .iter()
                .map(|rule| (rule.glob.clone(), rule.paths.clone()))
                .collect::<Vec<_>>()
        };
        entries(self) == entries(other)
            && self.problems == other.problems
            && self.file_roots == other.file_roots
    }

    /// One line per configured path that names no file now (checked by `--check-config`; at
    /// run time such a path is skipped with an error, as Salt skips it).
    pub fn missing_files(&self) -> Vec<String> {
        self.rules
            .iter()
            .flat_map(|rule| rule.paths.iter().map(move |path| (rule, path)))
            .filter(|(_, path)| self.resolve(path).is_empty())
            .map(|(rule, path)| format!("reactor: {path} (for {}) names no file", rule.glob))
            .collect()
    }

    /// Whether no rule can ever match.
    pub fn is_empty(&self) -> bool {
        self.rules.is_empty()
    }

    /// The paths of every rule whose glob matches `tag`, rule by rule, in order.
    pub fn paths_for(&self, tag: &str) -> Vec<String> {
        self.rules
            .iter()
            .filter(|rule| rule.matches(tag))
            .flat_map(|rule| rule.paths.iter().cloned())
            .collect()
    }

    /// The configuration as Salt's `reactor.list` returns it: `[{glob: [paths]}]`.
    pub fn to_value(&self) -> Value {
        Value::Array(
            self.rules
                .iter()
                .map(|rule| {
                    Value::Map(vec![(
                        Value::from(rule.glob.as_str()),
                        Value::Array(rule.paths.iter().map(|p| Value::from(p.as_str())).collect()),
                    )])
                })
                .collect(),
        )
    }

    /// The files a configured path names, sorted: a `salt://` path is the file server's file
    /// of its environment (`?saltenv=`, else `base`), as Salt caches it; any other path is
    /// expanded as a glob. Empty when none exists.
    pub fn resolve(&self, path: &str) -> Vec<PathBuf> {
        if path.starts_with("salt://") {
            let found = SaltUrl::parse(path).and_then(|url| {
                let saltenv = url.saltenv.as_deref().unwrap_or("base");
                self.file_roots.find(saltenv, &url.path)
            });
            return match found {
                Ok(found) => vec![found],
                Err(err @ FileError::Traversal { .. }) => {
                    tracing::warn!("reactor: {err}");
                    Vec::new()
                }
                Err(_) => Vec::new(),
            };
        }
        expand(Path::new(path))
    }
}

fn expand(path: &Path) -> Vec<PathBuf> {
    let pattern = path.to_string_lossy();
    let mut found: Vec<PathBuf> = match glob::glob(&pattern) {
        Ok(paths) => paths
            .filter_map(Result::ok)
            .filter(|p| p.is_file())
            .collect(),
        // Not a valid glob: the path itself, if it exists.
        Err(_) => [path.to_path_buf()]
            .into_iter()
            .filter(|p| p.is_file())
            .collect(),
    };
    found.sort();
    found
}

fn rule(entry: &Value) -> Result<Rule, String> {
    let Some([(glob, paths)]) = entry.as_map().map(Vec::as_slice) else {
        return Err("each entry must be a map of one tag glob to its SLS files".to_owned());
    };
    let Some(glob) = glob.as_str() else {
        return Err("the tag glob must be a string".to_owned());
    };
    let paths: Vec<String> = match paths {
        Value::String(_) => vec![py_str(paths).into_owned()],
        Value::Array(items) if items.iter().all(Value::is_str) => {
            items.iter().map(|p| py_str(p).into_owned()).collect()
        }
        _ => return Err("the SLS files must be a path or a list of paths".to_owned()),
    };
    if paths.is_empty() {
        return Err("no SLS files listed".to_owned());
    }
    for path in paths.iter().filter(|path| path.starts_with("salt://")) {
        match SaltUrl::parse(path) {
            Ok(_) => {}
            Err(FileError::Traversal { .. }) => {
                return Err(format!(
                    "{path} leaves file_roots: a salt:// path is relative to file_roots and may not hold '..' or start with '/'"
                ));
            }
            Err(err) => return Err(err.to_string()),
        }
    }
    Ok(Rule {
        glob: glob.to_owned(),
        pattern: FnmatchPattern::new(glob),
        paths,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules(yaml: &str) -> Rules {
        let mut config = Config::load(
            crate::config::Role::Master,
            Some(Path::new("/nonexistent/halite")),
        )
        .unwrap();
        config.set("reactor", crate::salt_yaml::load(yaml).unwrap());
        Rules::from_config(&config)
    }

    #[test]
    fn salt_paths_stay_inside_file_roots() {
        let rules = rules(
            "- 'a/*': ['salt://../../etc/shadow', salt://ok.sls]\n- 'b/*': 'salt:///etc/shadow'\n- 'c/*': salt://x/../../y.sls?saltenv=base\n- 'd/*': [salt://reactor/ok..sls, /srv/abs/../x.sls]\n",
        );
        assert_eq!(rules.rules.len(), 1, "{:?}", rules.problems);
        assert_eq!(rules.rules[0].glob, "d/*");
        assert_eq!(rules.problems.len(), 3, "{:?}", rules.problems);
        assert!(
            rules
                .problems
                .iter()
                .all(|p| p.contains("leaves file_roots")),
            "{:?}",
            rules.problems
        );
    }

    /// `?saltenv=` was cut off and `base` searched; a symlink out of the roots was followed.
    #[test]
    fn salt_paths_are_found_in_their_environment_and_never_through_a_link_out() {
        let dir = tempfile::tempdir().unwrap();
        let (base, dev) = (dir.path().join("base"), dir.path().join("dev"));
        for root in [&base, &dev] {
            std::fs::create_dir(root).unwrap();
        }
        std::fs::write(dev.join("r.sls"), "{}").unwrap();
        std::fs::write(dir.path().join("outside.sls"), "{}").unwrap();
        std::os::unix::fs::symlink(dir.path().join("outside.sls"), base.join("out.sls")).unwrap();
        let mut config = Config::load(
            crate::config::Role::Master,
            Some(Path::new("/nonexistent/halite")),
        )
        .unwrap();
        let roots = format!("{{base: [{}], dev: [{}]}}", base.display(), dev.display());
        config.set("file_roots", crate::salt_yaml::load(&roots).unwrap());
        let rules = Rules::from_config(&config);
        assert_eq!(
            rules.resolve("salt://r.sls?saltenv=dev"),
            [dev.join("r.sls")]
        );
        assert!(rules.resolve("salt://r.sls").is_empty());
        assert!(rules.resolve("salt://out.sls").is_empty());
    }

    #[test]
    fn every_matching_entry_contributes_in_order() {
        let rules = rules(
            "- 'salt/minion/*/start': [/a.sls, /b.sls]\n- 'salt/*': /c.sls\n- 'other': [/d.sls]\n",
        );
        assert_eq!(
            rules.paths_for("salt/minion/m1/start"),
            ["/a.sls", "/b.sls", "/c.sls"]
        );
        assert!(rules.paths_for("nothing").is_empty());
        assert!(rules.problems.is_empty());
    }

    #[test]
    fn invalid_entries_are_skipped_and_described() {
        let rules =
            rules("- 'a': /a.sls\n- just a string\n- {b: /b.sls, c: /c.sls}\n- 'd': {x: 1}\n");
        assert_eq!(rules.rules.len(), 1);
        assert_eq!(rules.problems.len(), 3, "{:?}", rules.problems);
        assert!(
            rules.problems[0].contains("entry 2"),
            "{:?}",
            rules.problems
        );
    }

    #[test]
    fn a_reload_sees_a_changed_list_file() {
        let dir = tempfile::tempdir().unwrap();
        let list = dir.path().join("list.yaml");
        std::fs::write(&list, "- 'a/*': /a.sls\n").unwrap();
        let before = rules(&format!("{}", list.display()));
        std::fs::write(&list, "- 'b/*': /a.sls\n").unwrap();
        let after = rules(&format!("{}", list.display()));
        assert_eq!(after.paths_for("b/1"), ["/a.sls"]);
        assert!(!before.same_as(&after));
        assert!(after.same_as(&rules(&format!("{}", list.display()))));
    }

    #[test]
    fn tags_match_with_pythons_fnmatch() {
        let rules = rules("- 'build/[0-9]*/fail?d': /x.sls\n");
        assert_eq!(rules.paths_for("build/42/failed"), ["/x.sls"]);
        assert!(rules.paths_for("build/x/failed").is_empty());
    }
}
