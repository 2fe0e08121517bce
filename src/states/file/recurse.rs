//! `file.recurse`: a `salt://` directory copied below a local one, each file through
//! `file.managed` and each directory through `file.directory`, their results folded into one
//! as Salt's state folds them (changes by path, comments by path under `#### path ####`), and
//! with `clean` whatever the source does not hold removed.
//!
//! Not supported (the state fails saying so): `keep_symlinks`, `force_symlinks`, `sym_mode`.
//! Files kept by `clean` because a required state manages them are not looked up: only what
//! the source holds is kept.

use std::collections::BTreeSet;
use std::path::Path;

use super::{Owner, Ret, check_owners, is_absolute, normalize_mode, target_name};
use crate::event::Value;
use crate::fileserver::SaltUrl;
use crate::py::value::{py_str, truthy};
use crate::states::{StateCall, StateContext, StateError, StateResult};

/// The arguments `file.recurse` takes for itself; the others go on to `file.managed`.
const OWN: &[&str] = &[
    "source",
    "keep_source",
    "clean",
    "require",
    "user",
    "group",
    "dir_mode",
    "file_mode",
    "sym_mode",
    "template",
    "context",
    "replace",
    "defaults",
    "include_empty",
    "backup",
    "include_pat",
    "exclude_pat",
    "maxdepth",
    "keep_symlinks",
    "force_symlinks",
    "win_owner",
    "win_perms",
    "win_deny_perms",
    "win_inheritance",
    "env",
    "mode",
    "makedirs",
];

pub(super) async fn recurse(
    call: &StateCall,
    ctx: &StateContext,
) -> Result<StateResult, StateError> {
    Ok(run(call, ctx).await?.done())
}

/// The result being folded: Salt's `ret` with its comments kept by path until the end.
struct Folded {
    ret: Ret,
    comments: Vec<(String, Vec<String>)>,
}

impl Folded {
    fn comment(&mut self, path: &str, comment: impl IntoIterator<Item = String>) {
        match self.comments.iter_mut().find(|(p, _)| p == path) {
            Some((_, list)) => list.extend(comment),
            None => self
                .comments
                .push((path.to_owned(), comment.into_iter().collect())),
        }
    }

    /// Salt's `merge_ret`: a failure (or, while all went well, anything) sets the result; what
    /// did not go well is commented; changes are kept under the path.
    fn merge(&mut self, path: &str, result: Ret) {
        if result.result == Some(false) || self.ret.result == Some(true) {
            self.ret.result = result.result;
        }
        if result.result != Some(true) && !result.comment.is_empty() {
            self.comment(path, [result.comment.clone()]);
        }
        if result.changed() {
            self.ret.change(path, result.done().changes);
        }
    }
}

async fn run(call: &StateCall, ctx: &StateContext) -> Result<Ret, StateError> {
    let name = target_name(call);
    let ret = Ret::new(&name);
    if call.arg("mode").is_some() {
        return Ok(ret.error(
            "'mode' is not allowed in 'file.recurse'. Please use 'file_mode' and 'dir_mode'.",
        ));
    }
    for unsupported in ["keep_symlinks", "force_symlinks", "sym_mode"] {
        if call.arg(unsupported).is_some_and(truthy) {
            return Ok(ret.error(format!(
                "halite's file.recurse does not support '{unsupported}'"
            )));
        }
    }
    let dir_mode = normalize_mode(call.arg("dir_mode"));
    let keep_mode = call
        .arg("file_mode")
        .and_then(Value::as_str)
        .is_some_and(|mode| mode.eq_ignore_ascii_case("keep"));
    let file_mode = if keep_mode {
        None
    } else {
        normalize_mode(call.arg("file_mode"))
    };
    let user = Owner::from_arg(call, "user");
    let group = Owner::from_arg(call, "group");
    if let Some(err) = check_owners(user.as_ref(), group.as_ref(), call.test) {
        return Ok(ret.error(err));
    }
    if !is_absolute(&name) {
        return Ok(ret.error(format!("Specified file {name} is not an absolute path")));
    }
    let sources: Vec<String> = match call.arg("source") {
        Some(Value::Array(items)) => items.iter().map(|i| py_str(i).into_owned()).collect(),
        Some(one) => vec![py_str(one).into_owned()],
        None => Vec::new(),
    }
    .into_iter()
    .map(|source| source.trim_end_matches('/').to_owned())
    .collect();
    if let Some(bad) = sources.iter().find(|s| !s.starts_with("salt://")) {
        return Ok(ret.error(format!("Invalid source '{bad}' (must be a salt:// URI)")));
    }
    let Some(files) = &ctx.files else {
        return Ok(ret.error("Recurse failed: no file server to copy from"));
    };
    // Salt's `file.source_list`: the first source the file server holds, as a file or a
    // directory, in its own environment.
    let mut picked = None;
    for source in &sources {
        let url = SaltUrl::parse(source).map_err(StateError::from)?;
        let saltenv = url.saltenv.clone().unwrap_or_else(|| call.saltenv.clone());
        let listed = Listed::of(files, &saltenv).await?;
        if listed.files.contains(&url.path) || listed.dirs.contains(&url.path) {
            picked = Some((url.path, saltenv, listed));
            break;
        }
    }
    let Some((srcpath, saltenv, listed)) = picked else {
        return Ok(ret.error("Recurse failed: none of the specified sources were found"));
    };
    if !listed.dirs.contains(&srcpath) {
        return Ok(ret.error(format!(
            "The directory '{srcpath}' does not exist on the salt fileserver in saltenv '{saltenv}'"
        )));
    }
    let path = Path::new(&name);
    if !path.is_dir() {
        if path.exists() {
            return Ok(ret.error(format!("The path {name} exists and is not a directory")));
        }
        if !call.test {
            // Salt's `file.makedirs_perms`: the directory and its parents, each with the owner
            // and mode declared.
            let (user, group, mode) = (user.as_ref(), group.as_ref(), dir_mode.as_deref());
            let made = super::make_parents(path, user, group, mode)
                .and_then(|()| super::make_dir(path, user, group, mode));
            if let Err(err) = made {
                return Ok(ret.error(err));
            }
        }
    }
    let filter = Filter::of(call)?;
    let prefix = format!("{srcpath}/");
    let below = |listed: &BTreeSet<String>| -> Vec<String> {
        listed
            .iter()
            .filter_map(|p| p.strip_prefix(&prefix))
            .filter(|rel| !rel.trim().is_empty() && filter.takes(rel))
            .map(str::to_owned)
            .collect()
    };
    let mut keep = BTreeSet::new();
    let mut dirs = BTreeSet::new();
    let mut managed = Vec::new();
    for rel in below(&listed.files) {
        let dest = format!("{name}/{rel}");
        keep.insert(dest.clone());
        dirs.insert(match dest.rsplit_once('/') {
            Some((dir, _)) => dir.to_owned(),
            None => name.clone(),
        });
        managed.push((dest, format!("{prefix}{rel}")));
    }
    if call.arg_bool("include_empty", false) {
        // The source directory itself is among them, as `<name>/.`, as in Salt.
        let own = listed.dirs.contains(&srcpath).then(|| ".".to_owned());
        for rel in own.into_iter().chain(below(&listed.dirs)) {
            let dest = format!("{name}/{rel}");
            keep.insert(dest.clone());
            dirs.insert(dest);
        }
    }
    let mut folded = Folded {
        ret,
        comments: Vec::new(),
    };
    let clean = call.arg_bool("clean", false);
    for dir in &dirs {
        if clean && Path::new(dir).exists() && !Path::new(dir).is_dir() {
            let mut replaced = Ret::new(&name);
            if call.test {
                replaced.comment = format!("Replacing {dir} with a directory");
                replaced.result = None;
                folded.merge(dir, replaced);
                continue;
            }
            let _ = std::fs::remove_file(dir);
            replaced.change("diff", "Replaced file with a directory");
            folded.merge(dir, replaced);
        }
        let mut args = vec![
            ("recurse".to_owned(), Value::Array(Vec::new())),
            ("makedirs".to_owned(), Value::Boolean(true)),
            ("clean".to_owned(), Value::Boolean(false)),
        ];
        args.extend(pass(call, &["user", "group"]));
        if let Some(mode) = &dir_mode {
            args.push(("dir_mode".to_owned(), Value::from(mode.as_str())));
        }
        let sub = sub_call(call, dir, &saltenv, args);
        folded.merge(dir, super::directory::ensure(&sub));
    }
    let replace = call.arg_bool("replace", true);
    for (dest, src) in &managed {
        if clean && replace && Path::new(dest).is_dir() {
            let mut replaced = Ret::new(&name);
            if call.test {
                replaced.comment = format!("Replacing directory {dest} with a file");
                replaced.result = None;
                folded.merge(dest, replaced);
                continue;
            }
            let _ = std::fs::remove_dir_all(dest);
            replaced.change("diff", "Replaced directory with a new file");
            folded.merge(dest, replaced);
        }
        let mode = match (keep_mode, &file_mode) {
            (true, _) => Value::from("keep"),
            (false, Some(mode)) => Value::from(mode.as_str()),
            (false, None) => Value::Nil,
        };
        let mut args = vec![
            ("source".to_owned(), Value::from(format!("salt://{src}"))),
            ("mode".to_owned(), mode),
            ("makedirs".to_owned(), Value::Boolean(true)),
            ("replace".to_owned(), Value::Boolean(replace)),
        ];
        args.extend(pass(
            call,
            &[
                "keep_source",
                "user",
                "group",
                "template",
                "context",
                "defaults",
                "backup",
            ],
        ));
        args.extend(
            call.args
                .iter()
                .filter(|(key, _)| !OWN.contains(&key.as_str()))
                .cloned(),
        );
        let sub = sub_call(call, dest, &saltenv, args);
        let result = super::managed::run(&sub, ctx).await?;
        folded.merge(dest, result);
    }
    if clean {
        let removed = clean_dir(Path::new(&name), &keep, &filter, call.test);
        if !removed.is_empty() {
            let removed: Vec<Value> = removed.into_iter().map(Value::from).collect();
            if call.test {
                if folded.ret.result == Some(true) {
                    folded.ret.result = None;
                }
                let shown = removed.iter().map(|r| py_str(r).into_owned());
                folded.comment("removed", shown);
            } else {
                folded.ret.change("removed", Value::Array(removed));
            }
        }
    }
    let Folded { mut ret, comments } = folded;
    ret.comment = comments
        .iter()
        .map(|(path, list)| format!("\n#### {path} ####\n{}", list.join("\n")))
        .collect::<Vec<_>>()
        .join("\n")
        .trim()
        .to_owned();
    if ret.comment.is_empty() {
        ret.comment = format!("Recursively updated {name}");
    }
    if !ret.changed() && ret.result == Some(true) {
        ret.comment = format!("The directory {name} is in the correct state");
    }
    Ok(ret)
}

/// The file server's files and directories of one environment.
struct Listed {
    files: BTreeSet<String>,
    dirs: BTreeSet<String>,
}

impl Listed {
    async fn of(files: &crate::fileserver::Cache, saltenv: &str) -> Result<Self, StateError> {
        let source = files.source();
        Ok(Self {
            files: source.list_files(saltenv).await?.into_iter().collect(),
            dirs: source.list_dirs(saltenv).await?.into_iter().collect(),
        })
    }
}

/// The declared arguments among `keys`, as they were declared.
fn pass(call: &StateCall, keys: &[&str]) -> Vec<(String, Value)> {
    call.args
        .iter()
        .filter(|(key, _)| keys.contains(&key.as_str()))
        .cloned()
        .collect()
}

/// The call of a state `file.recurse` runs for one path.
fn sub_call(call: &StateCall, name: &str, saltenv: &str, args: Vec<(String, Value)>) -> StateCall {
    StateCall {
        name: name.to_owned(),
        saltenv: saltenv.to_owned(),
        args,
        watch_changes: Vec::new(),
        ..call.clone()
    }
}

/// Salt's `include_pat`, `exclude_pat` (globs, or regular expressions after `E@`) and
/// `maxdepth`, on a path relative to the source.
struct Filter {
    include: Vec<String>,
    exclude: Vec<String>,
    maxdepth: Option<usize>,
}

impl Filter {
    fn of(call: &StateCall) -> Result<Self, StateError> {
        let patterns = |key: &str| -> Vec<String> {
            match call.arg(key) {
                None | Some(Value::Nil) => Vec::new(),
                Some(Value::Array(items)) => items.iter().map(|i| py_str(i).into_owned()).collect(),
                Some(one) if !truthy(one) => Vec::new(),
                Some(one) => vec![py_str(one).into_owned()],
            }
        };
        let maxdepth = match call.arg("maxdepth") {
            None | Some(Value::Nil) => None,
            Some(depth) => Some(
                depth
                    .as_u64()
                    .and_then(|d| usize::try_from(d).ok())
                    .ok_or_else(|| StateError::Invalid("maxdepth must be a number".to_owned()))?,
            ),
        };
        Ok(Self {
            include: patterns("include_pat"),
            exclude: patterns("exclude_pat"),
            maxdepth,
        })
    }

    /// Whether a relative path is copied: no `..` in it, not deeper than `maxdepth`, and
    /// passing `include_pat`/`exclude_pat`.
    fn takes(&self, rel: &str) -> bool {
        if format!("/{rel}/").contains("/../") {
            return false;
        }
        if self
            .maxdepth
            .is_some_and(|depth| rel.trim_matches('/').matches('/').count() > depth)
        {
            return false;
        }
        self.passes(rel, true)
    }

    /// Salt's `check_include_exclude` (with `include` false: the exclusions only).
    fn passes(&self, rel: &str, include: bool) -> bool {
        let included =
            !include || self.include.is_empty() || self.include.iter().any(|pat| matches(rel, pat));
        let excluded = self.exclude.iter().any(|pat| matches(rel, pat));
        included && !excluded
    }
}

/// One pattern of `check_include_exclude`: `E@` a regular expression searched for, else a glob.
fn matches(path: &str, pattern: &str) -> bool {
    match pattern.strip_prefix("E@") {
        Some(re) => crate::py::re::Regex::new(
            &format!("(?s:.*?)(?:{re})"),
            crate::py::re::Anchoring::Match,
            re,
        )
        .is_ok_and(|re| re.is_match(path)),
        None => crate::py::fnmatch::fnmatch(path, pattern),
    }
}

/// Salt's `_clean_dir`: every path below `root` that is not kept (nor above something kept)
/// and not excluded is removed (only listed in test mode). The paths, sorted.
fn clean_dir(root: &Path, keep: &BTreeSet<String>, filter: &Filter, test: bool) -> Vec<String> {
    let root_text = root.to_string_lossy().into_owned();
    let mut kept: BTreeSet<String> = BTreeSet::from([root_text.clone()]);
    for path in keep {
        let mut at = Path::new(path);
        kept.insert(path.clone());
        while let Some(parent) = at.parent() {
            kept.insert(parent.to_string_lossy().into_owned());
            at = parent;
        }
    }
    let mut removed = Vec::new();
    let mut pending = vec![root.to_path_buf()];
    while let Some(dir) = pending.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        let mut entries: Vec<_> = entries.flatten().map(|e| e.path()).collect();
        entries.sort();
        for path in entries {
            let text = path.to_string_lossy().into_owned();
            let is_dir = std::fs::symlink_metadata(&path).is_ok_and(|m| m.is_dir());
            let rel = text
                .strip_prefix(&root_text)
                .unwrap_or(&text)
                .trim_start_matches('/');
            if kept.contains(&text) || !filter.passes(rel, false) {
                if is_dir {
                    pending.push(path);
                }
                continue;
            }
            if !test {
                let _ = if is_dir {
                    std::fs::remove_dir_all(&path)
                } else {
                    std::fs::remove_file(&path)
                };
            } else if is_dir {
                pending.push(path);
            }
            removed.push(text);
        }
    }
    removed.sort();
    removed
}
