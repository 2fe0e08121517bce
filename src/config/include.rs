//! Salt's `default_include` and `include`: the files a configuration reads besides its main
//! file, merged in Salt's order.
//!
//! Both options are read from the main file alone, as Salt reads them. Each is a path or glob,
//! or a list of them, relative to the including file's directory, with `~` expanded.
//! `default_include` (`master.d/*.conf` / `minion.d/*.conf`; empty: none) is read first, then
//! `include`. The files one option names are merged into each other in name order (maps merged,
//! lists extended; a `schedule` job set again is replaced whole), a file's own `include` replaces
//! that file's keys, and the result replaces the main file's keys: what `include` brings wins
//! over `default_include`. An `include` that matches no file is warned about, a
//! `default_include` that matches none is not. Where Salt recurses until Python gives up, an
//! include loop is an error here, and so is reading more than [`MAX_FILES`] files.

use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

use super::{Config, ConfigError, dictupdate, invalid_in, read_map};
use crate::event::{Value, map_set};
use crate::py::os_path::expanduser;
use crate::py::value::truthy;

/// The most files one configuration reads, main file and includes: far more than any layout
/// needs, few enough that a glob over a huge directory, or includes that multiply, stop the start
/// at once instead of stalling it.
pub(super) const MAX_FILES: usize = 1024;

/// An `include` that matches no file: Salt warns, and most likely the path is mistyped.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unmatched {
    /// The path or glob, joined to the including file's directory.
    pub pattern: PathBuf,
    /// The file that names it.
    pub file: PathBuf,
}

impl std::fmt::Display for Unmatched {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "include {} in {} matches no files",
            self.pattern.display(),
            self.file.display()
        )
    }
}

/// Reads `config`'s main file and every file it includes, noting where each option is set and
/// which includes match nothing.
pub(super) fn read(config: &mut Config) -> Result<(), ConfigError> {
    let main = config.file();
    let mut reader = Reader {
        config,
        read: 1,
        open: Vec::new(),
    };
    let mut options = read_map(&main)?;
    reader.config.note_origins(&options, &main);
    let default_include = match entry(&options, "default_include") {
        Some(value) => value.clone(),
        None => Value::from(format!("{}.d/*.conf", reader.config.role.name())),
    };
    let include = entry(&options, "include").cloned().unwrap_or(Value::Nil);
    let defaults = patterns(&default_include, "default_include", &main)?;
    let included = reader.merge(&defaults, &main, false)?;
    replace_keys(&mut options, included);
    let patterns = patterns(&include, "include", &main)?;
    reader.open.push(canonical(&main));
    let included = reader.merge(&patterns, &main, true)?;
    replace_keys(&mut options, included);
    reader.config.opts = options;
    Ok(())
}

/// The reading under way.
struct Reader<'a> {
    config: &'a mut Config,
    /// Files read so far.
    read: usize,
    /// The files whose `include` is being read, outermost first, as the system resolves them: one
    /// of them included again with its `include` would be read forever.
    open: Vec<PathBuf>,
}

impl Reader<'_> {
    /// The files `patterns` (written in `from`) name, merged into each other; an empty match is
    /// noted when `warn`.
    fn merge(
        &mut self,
        patterns: &[String],
        from: &Path,
        warn: bool,
    ) -> Result<Vec<(Value, Value)>, ConfigError> {
        let mut merged = Value::Map(Vec::new());
        for pattern in patterns {
            let (shown, glob) = joined(pattern, from);
            let files = self.matching(&shown, &glob, from)?;
            if files.is_empty() && warn {
                self.config.unmatched.push(Unmatched {
                    pattern: shown,
                    file: from.to_owned(),
                });
            }
            for file in files {
                let options = self.file(&file, from, warn)?;
                replace_schedule_jobs(&mut merged, &options);
                dictupdate::update(&mut merged, &Value::Map(options), true);
            }
        }
        match merged {
            Value::Map(entries) => Ok(entries),
            _ => Ok(Vec::new()),
        }
    }

    /// The options of one file that `from` includes, its own `include` applied.
    fn file(
        &mut self,
        file: &Path,
        from: &Path,
        warn: bool,
    ) -> Result<Vec<(Value, Value)>, ConfigError> {
        let mut options = match read_map(file) {
            // A minion writes this file itself: as Salt's, one it cannot read keeps no one down.
            Err(ConfigError::Yaml { path, source })
                if path.file_name() == Some(std::ffi::OsStr::new("_schedule.conf")) =>
            {
                self.config
                    .broken_schedules
                    .push((path, source.to_string()));
                Vec::new()
            }
            read => read?,
        };
        self.config.note_origins(&options, file);
        let Some(include) = entry(&options, "include") else {
            return Ok(options);
        };
        let patterns = patterns(include, "include", file)?;
        if patterns.is_empty() {
            return Ok(options);
        }
        let resolved = canonical(file);
        if self.open.contains(&resolved) {
            return Err(ConfigError::IncludeLoop {
                file: file.to_owned(),
                from: from.to_owned(),
            });
        }
        self.open.push(resolved);
        let included = self.merge(&patterns, file, warn);
        self.open.pop();
        replace_keys(&mut options, included?);
        Ok(options)
    }

    /// The files a glob matches, in Salt's order (sorted as strings), counted against
    /// [`MAX_FILES`].
    fn matching(
        &mut self,
        shown: &Path,
        glob: &str,
        from: &Path,
    ) -> Result<Vec<PathBuf>, ConfigError> {
        // Python's glob: `*` matches neither `/` nor a leading dot, and `**` is `*` (no
        // recursion, so no walk of a whole tree).
        let options = glob::MatchOptions {
            case_sensitive: true,
            require_literal_separator: true,
            require_literal_leading_dot: true,
        };
        let left = MAX_FILES - self.read;
        let mut files: Vec<PathBuf> = match glob::glob_with(&glob.replace("**", "*"), options) {
            Ok(paths) => paths.filter_map(Result::ok).take(left + 1).collect(),
            // Not a glob the crate reads (an unclosed `[`): Python takes it literally.
            Err(_) => [shown.to_owned()]
                .into_iter()
                .filter(|path| path.exists())
                .collect(),
        };
        if files.len() > left {
            return Err(ConfigError::TooManyFiles {
                file: from.to_owned(),
                limit: MAX_FILES,
            });
        }
        self.read += files.len();
        files.sort_by(|a, b| a.as_os_str().as_bytes().cmp(b.as_os_str().as_bytes()));
        Ok(files)
    }
}

/// The value of `key` among a file's options.
fn entry<'a>(options: &'a [(Value, Value)], key: &str) -> Option<&'a Value> {
    options
        .iter()
        .find(|(k, _)| k.as_str() == Some(key))
        .map(|(_, v)| v)
}

/// What an include option names: nothing when it is empty (Salt's falsy), a path or glob, or a
/// list of them; anything else is refused, where Salt fails on it.
fn patterns(value: &Value, option: &str, file: &Path) -> Result<Vec<String>, ConfigError> {
    if !truthy(value) {
        return Ok(Vec::new());
    }
    let listed = match value {
        Value::String(path) => path.as_str().map(|path| vec![path.to_owned()]),
        Value::Array(items) => items
            .iter()
            .map(|item| item.as_str().map(str::to_owned))
            .collect(),
        _ => None,
    };
    listed.ok_or_else(|| {
        invalid_in(
            option,
            value,
            "expected a path or glob, or a list of them",
            file,
        )
    })
}

/// `pattern` with `~` expanded and, when relative, joined to the directory of `from`: as shown,
/// and as a glob (the directory's own glob characters escaped, taken literally).
fn joined(pattern: &str, from: &Path) -> (PathBuf, String) {
    let pattern = expanduser(pattern);
    let dir = from.parent().filter(|dir| !dir.as_os_str().is_empty());
    match dir {
        Some(dir) if !Path::new(&pattern).is_absolute() => {
            let glob = format!(
                "{}/{pattern}",
                glob::Pattern::escape(&dir.to_string_lossy())
            );
            (dir.join(&pattern), glob)
        }
        _ => (PathBuf::from(&pattern), pattern),
    }
}

/// The file as the system resolves it, so that a loop through links is seen as one.
fn canonical(file: &Path) -> PathBuf {
    file.canonicalize().unwrap_or_else(|_| file.to_owned())
}

/// `options`' keys replaced by those of `included` (Salt's `dict.update`).
fn replace_keys(options: &mut Vec<(Value, Value)>, included: Vec<(Value, Value)>) {
    for (key, value) in included {
        map_set(options, key, value);
    }
}

/// Salt replaces a `schedule` job that a later file sets again whole, before merging the rest.
fn replace_schedule_jobs(merged: &mut Value, options: &[(Value, Value)]) {
    let Some(Value::Map(jobs)) = entry(options, "schedule") else {
        return;
    };
    let Value::Map(so_far) = merged else {
        return;
    };
    if let Some((_, Value::Map(schedule))) = so_far
        .iter_mut()
        .find(|(key, _)| key.as_str() == Some("schedule"))
    {
        for (job, definition) in jobs {
            map_set(schedule, job.clone(), definition.clone());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::super::Role;
    use super::*;
    use crate::salt_yaml;

    /// A config dir holding `files` (path, text).
    fn dir(files: &[(&str, &str)]) -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        for (name, text) in files {
            let path = dir.path().join(name);
            std::fs::create_dir_all(path.parent().unwrap()).unwrap();
            std::fs::write(path, text).unwrap();
        }
        dir
    }

    fn load(role: Role, dir: &tempfile::TempDir) -> Result<Config, ConfigError> {
        Config::load(role, Some(dir.path()))
    }

    fn yaml(text: &str) -> Value {
        salt_yaml::load(text).unwrap()
    }

    /// The warnings about includes (the options these tests set are no one's).
    fn unmatched(config: &Config) -> Vec<String> {
        config
            .warnings()
            .iter()
            .filter(|warning| matches!(warning, super::super::Warning::Unmatched(_)))
            .map(ToString::to_string)
            .collect()
    }

    /// The values are those Salt 3007.8's `master_config` gives for the same files.
    #[test]
    fn includes_merge_in_salts_order_and_unmatched_includes_are_noted() {
        let dir = dir(&[
            (
                "master",
                "a: 1\nm: {x: 1}\nl: [1]\ninclude: [inc/*.conf, missing.conf, nomatch/*.conf]\n",
            ),
            ("master.d/x.conf", "a: 2\nm: {y: 2}\nl: [2]\nb: 2\n"),
            ("master.d/y.conf", "m: {z: 3}\nl: [3]\n"),
            ("master.d/.hidden.conf", "a: hidden\n"),
            ("inc/i.conf", "a: 3\nb: 3\ninclude: sub/n.conf\n"),
            ("inc/sub/n.conf", "c: 4\nb: 4\n"),
        ]);
        let config = load(Role::Master, &dir).unwrap();
        for (key, value) in [
            ("a", "3"),
            ("m", "{y: 2, z: 3}"),
            ("l", "[2, 3]"),
            ("b", "4"),
            ("c", "4"),
        ] {
            assert_eq!(config.get(key), Some(&yaml(value)), "{key}");
        }
        assert_eq!(config.origin("m"), dir.path().join("master.d/y.conf"));
        assert_eq!(config.origin("b"), dir.path().join("inc/sub/n.conf"));
        let shown: Vec<String> = unmatched(&config);
        let main = dir.path().join("master");
        assert_eq!(
            shown,
            [
                format!(
                    "include {} in {} matches no files",
                    dir.path().join("missing.conf").display(),
                    main.display()
                ),
                format!(
                    "include {} in {} matches no files",
                    dir.path().join("nomatch/*.conf").display(),
                    main.display()
                ),
            ]
        );
    }

    #[test]
    fn default_include_names_other_files_or_none() {
        let files = [
            ("master.d/a.conf", "a: 1\n"),
            ("other/x.cfg", "a: 2\n"),
            ("x.conf", "a: [3]\n"),
        ];
        let with = |main: &str| {
            let mut files = files.to_vec();
            files.push(("master", main));
            load(Role::Master, &dir(&files)).unwrap().get("a").cloned()
        };
        assert_eq!(with("{}\n"), Some(yaml("1")));
        assert_eq!(with("default_include: other/*.cfg\n"), Some(yaml("2")));
        assert_eq!(with("default_include:\n"), None);
        // `include` wins over `default_include`, a string is one path.
        assert_eq!(with("include: x.conf\na: 0\n"), Some(yaml("[3]")));
        // Without a main file, master.d is still read, and nothing is warned.
        let config = load(Role::Master, &dir(&files)).unwrap();
        assert_eq!(config.get("a"), Some(&yaml("1")));
        assert!(unmatched(&config).is_empty());
    }

    #[test]
    fn a_schedule_job_set_again_is_replaced_whole() {
        let dir = dir(&[
            ("minion", "id: m\n"),
            (
                "minion.d/a.conf",
                "schedule: {job1: {function: test.ping, seconds: 10, args: [1]}}\n",
            ),
            (
                "minion.d/b.conf",
                "schedule: {job1: {function: test.arg, args: [2]}, job2: {function: x}}\n",
            ),
        ]);
        let config = load(Role::Minion, &dir).unwrap();
        assert_eq!(
            config.get("schedule"),
            Some(&yaml(
                "{job1: {function: test.arg, args: [2]}, job2: {function: x}}"
            ))
        );
    }

    #[test]
    fn include_loops_are_refused_and_a_file_included_twice_is_not_a_loop() {
        // Salt recurses until Python's recursion limit on these.
        let looped = dir(&[
            ("master", "include: a.conf\n"),
            ("a.conf", "include: b.conf\n"),
            ("b.conf", "include: a.conf\n"),
        ]);
        let err = load(Role::Master, &looped).unwrap_err().to_string();
        assert_eq!(
            err,
            format!(
                "config file {} includes {}, whose include is already being read (an include \
                 loop); remove one of the includes",
                looped.path().join("b.conf").display(),
                looped.path().join("a.conf").display()
            )
        );
        let itself = dir(&[("master", "include: '*'\n")]);
        assert!(matches!(
            load(Role::Master, &itself),
            Err(ConfigError::IncludeLoop { .. })
        ));
        // The main file matched by default_include is read again, as Salt does, without a loop.
        let twice = dir(&[
            (
                "master",
                "default_include: '*'\ninclude: [a.conf, b.conf]\nx: 1\n",
            ),
            ("a.conf", "include: c.conf\n"),
            ("b.conf", "include: c.conf\n"),
            ("c.conf", "c: [1]\n"),
        ]);
        let config = load(Role::Master, &twice).unwrap();
        assert_eq!(config.get("c"), Some(&yaml("[1]")));
        assert_eq!(config.get("x"), Some(&yaml("1")));
    }

    #[test]
    fn includes_past_the_limit_stop_the_load_at_once() {
        let many = dir(&[("master", "include: 'many/*.conf'\n")]);
        std::fs::create_dir(many.path().join("many")).unwrap();
        for n in 0..MAX_FILES {
            std::fs::write(many.path().join(format!("many/{n}.conf")), "").unwrap();
        }
        assert!(matches!(
            load(Role::Master, &many),
            Err(ConfigError::TooManyFiles {
                limit: MAX_FILES,
                ..
            })
        ));
        // Ten files each including the next ten times over: 10^10 reads, refused after 1024.
        let mut files = vec![("master".to_owned(), "include: [f0.conf]\n".to_owned())];
        for n in 0..10 {
            let next = format!("f{}.conf", n + 1);
            let list = vec![next; 10].join(", ");
            files.push((format!("f{n}.conf"), format!("include: [{list}]\n")));
        }
        let files: Vec<(&str, &str)> = files
            .iter()
            .map(|(a, b)| (a.as_str(), b.as_str()))
            .collect();
        assert!(matches!(
            load(Role::Master, &dir(&files)),
            Err(ConfigError::TooManyFiles { .. })
        ));
    }

    #[test]
    fn an_include_that_is_not_paths_is_refused_naming_its_file() {
        let dir = dir(&[
            ("master", "include: a.conf\n"),
            ("a.conf", "include: {x: 1}\n"),
        ]);
        assert_eq!(
            load(Role::Master, &dir).unwrap_err().to_string(),
            format!(
                "option include in {}: expected a path or glob, or a list of them, got {{'x': 1}}",
                dir.path().join("a.conf").display()
            )
        );
    }

    #[test]
    fn saved_schedules_and_beacons_go_where_default_include_reads() {
        let plain = dir(&[]);
        let config = load(Role::Minion, &plain).unwrap();
        assert_eq!(config.include_dir(), plain.path().join("minion.d"));
        let custom = dir(&[("minion", "default_include: conf/*.yml\n")]);
        let config = load(Role::Minion, &custom).unwrap();
        assert_eq!(config.include_dir(), custom.path().join("conf"));
        let listed = dir(&[("minion", "default_include: [a/*.conf, b/*.conf]\n")]);
        let config = load(Role::Minion, &listed).unwrap();
        config.validate().unwrap();
        assert_eq!(config.include_dir(), listed.path().join("a"));
    }
}
