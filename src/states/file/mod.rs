//! The `file` states: files, directories and symlinks brought to a declared shape, with Salt's
//! comments, changes and diffs.
//!
//! What the states share lives here: the result being built ([`Ret`], Salt's `ret` dict with
//! its keys in the order they were set), permission checks and changes (Salt's `check_perms`),
//! file modes as Salt normalises them, diffs as Salt shows them, and writes that replace a file
//! whole, keeping its owner and mode, with Salt's minion-side backups.

mod directory;
mod line;
mod managed;
mod recurse;
mod source;
mod symlink;
mod text;

use std::io::Write;
use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};

use super::{StateCall, StateContext, StateFunction, StateResult};
use crate::event::Value;
use crate::py::value::py_str;

pub(super) const ABSENT: StateFunction = StateFunction {
    name: "file.absent",
    required: &[],
    run: |call, ctx| Box::pin(directory::absent(call, ctx)),
    mod_watch: None,
};

pub(super) const APPEND: StateFunction = StateFunction {
    name: "file.append",
    required: &[],
    run: |call, ctx| Box::pin(text::append(call, ctx)),
    mod_watch: None,
};

pub(super) const DIRECTORY: StateFunction = StateFunction {
    name: "file.directory",
    required: &[],
    run: |call, ctx| Box::pin(directory::directory(call, ctx)),
    mod_watch: None,
};

pub(super) const LINE: StateFunction = StateFunction {
    name: "file.line",
    required: &[],
    run: |call, ctx| Box::pin(line::line(call, ctx)),
    mod_watch: None,
};

pub(super) const MANAGED: StateFunction = StateFunction {
    name: "file.managed",
    required: &[],
    run: |call, ctx| Box::pin(managed::managed(call, ctx)),
    mod_watch: None,
};

pub(super) const RECURSE: StateFunction = StateFunction {
    name: "file.recurse",
    required: &["source"],
    run: |call, ctx| Box::pin(recurse::recurse(call, ctx)),
    mod_watch: None,
};

pub(super) const SYMLINK: StateFunction = StateFunction {
    name: "file.symlink",
    required: &["target"],
    run: |call, ctx| Box::pin(symlink::symlink(call, ctx)),
    mod_watch: None,
};

/// Salt's `ret` dict while a state builds it: changes keep the order they were made in.
#[derive(Debug)]
struct Ret {
    name: String,
    result: Option<bool>,
    comment: String,
    changes: Vec<(String, Value)>,
    warnings: Vec<String>,
}

impl Ret {
    fn new(name: &str) -> Self {
        Self {
            name: name.to_owned(),
            result: Some(true),
            comment: String::new(),
            changes: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// Salt's `_error`: failed, with `comment`; changes made so far stay.
    fn error(mut self, comment: impl Into<String>) -> Self {
        self.result = Some(false);
        self.comment = comment.into();
        self
    }

    /// `ret["changes"][key] = value`.
    fn change(&mut self, key: &str, value: impl Into<Value>) {
        let value = value.into();
        match self.changes.iter_mut().find(|(k, _)| k == key) {
            Some((_, slot)) => *slot = value,
            None => self.changes.push((key.to_owned(), value)),
        }
    }

    fn has_change(&self, key: &str) -> bool {
        self.changes.iter().any(|(k, _)| k == key)
    }

    fn remove_change(&mut self, key: &str) {
        self.changes.retain(|(k, _)| k != key);
    }

    fn changed(&self) -> bool {
        !self.changes.is_empty()
    }

    fn done(self) -> StateResult {
        StateResult {
            name: self.name,
            result: self.result,
            comment: self.comment,
            changes: Value::Map(
                self.changes
                    .into_iter()
                    .map(|(k, v)| (Value::from(k), v))
                    .collect(),
            ),
            warnings: self.warnings,
        }
    }
}

/// The state's `name`, with `~` expanded as Salt's `os.path.expanduser` does.
fn target_name(call: &StateCall) -> String {
    crate::py::os_path::expanduser(&call.name)
}

/// Salt's `normalize_mode`: `644`, `"0644"`, `"0o644"` → `"0644"`; None stays None.
fn normalize_mode(mode: Option<&Value>) -> Option<String> {
    let mode = mode.filter(|m| !m.is_nil())?;
    let text = py_str(mode).replace("0o", "0");
    let text = text
        .trim_matches('"')
        .trim_matches('\'')
        .trim_start_matches('0');
    Some(format!("{text:0>4}"))
}

/// A normalised mode as bits, when it is octal.
fn mode_bits(mode: &str) -> Option<u32> {
    u32::from_str_radix(mode, 8)
        .ok()
        .filter(|bits| *bits <= 0o7777)
}

/// An owner as declared: a name, or a number (which matches the id only, as in Salt).
#[derive(Debug, Clone, PartialEq)]
enum Owner {
    Name(String),
    Id(u32),
}

impl Owner {
    /// The `user`/`group` argument, when declared, not null and not empty.
    fn from_arg(call: &StateCall, key: &str) -> Option<Self> {
        match call.arg(key)? {
            Value::Nil => None,
            Value::Integer(id) => id
                .as_u64()
                .and_then(|id| u32::try_from(id).ok())
                .map(Self::Id),
            other => Some(Self::Name(py_str(other).into_owned()))
                .filter(|o| *o != Self::Name(String::new())),
        }
    }

    fn shown(&self) -> String {
        match self {
            Self::Name(name) => name.clone(),
            Self::Id(id) => id.to_string(),
        }
    }

    /// Whether a file owned by (`name`, `id`) is owned as declared.
    fn is(&self, name: &str, id: u32) -> bool {
        match self {
            Self::Name(wanted) => wanted == name,
            Self::Id(wanted) => *wanted == id,
        }
    }

    fn uid(&self) -> Option<u32> {
        match self {
            Self::Id(id) => Some(*id),
            Self::Name(name) => nix::unistd::User::from_name(name)
                .ok()
                .flatten()
                .map(|u| u.uid.as_raw()),
        }
    }

    fn gid(&self) -> Option<u32> {
        match self {
            Self::Id(id) => Some(*id),
            Self::Name(name) => nix::unistd::Group::from_name(name)
                .ok()
                .flatten()
                .map(|g| g.gid.as_raw()),
        }
    }
}

/// Salt's `_check_user`: the declared user and group must exist (only a warning in test mode).
fn check_owners(user: Option<&Owner>, group: Option<&Owner>, test: bool) -> Option<String> {
    let mut err = String::new();
    if let Some(user) = user.filter(|u| u.uid().is_none()) {
        err.push_str(&format!("User {} is not available ", user.shown()));
    }
    if let Some(group) = group.filter(|g| g.gid().is_none()) {
        err.push_str(&format!("Group {} is not available", group.shown()));
    }
    (!err.is_empty() && !test).then_some(err)
}

/// What Salt's `file.stats` reports of a path that the checks use.
#[derive(Debug, Clone)]
struct Stats {
    uid: u32,
    gid: u32,
    user: String,
    group: String,
    /// Normalised, as `"0644"`.
    mode: String,
}

/// The stats of `path` (of the link itself unless `follow`), None when it does not exist.
fn stats(path: &Path, follow: bool) -> Option<Stats> {
    let meta = if follow {
        std::fs::metadata(path)
    } else {
        std::fs::symlink_metadata(path)
    }
    .ok()?;
    let (uid, gid) = (meta.uid(), meta.gid());
    Some(Stats {
        uid,
        gid,
        user: nix::unistd::User::from_uid(uid.into())
            .ok()
            .flatten()
            .map_or_else(|| uid.to_string(), |u| u.name),
        group: nix::unistd::Group::from_gid(gid.into())
            .ok()
            .flatten()
            .map_or_else(|| gid.to_string(), |g| g.name),
        mode: format!("{:04o}", meta.permissions().mode() & 0o7777),
    })
}

/// Salt's `check_perms`: brings `path`'s owner, group and mode to the declared ones (only
/// reports them in test mode), recording each change, and folds the failures into the comment
/// after what it already said (joined by "; "). Returns the mode the path had.
fn check_perms(
    ret: &mut Ret,
    path: &Path,
    user: Option<&Owner>,
    group: Option<&Owner>,
    mode: Option<&str>,
    follow: bool,
    test: bool,
) -> Option<String> {
    let mut comments = Vec::new();
    if !ret.comment.is_empty() {
        comments.push(std::mem::take(&mut ret.comment));
    }
    let Some(cur) = stats(path, follow) else {
        ret.result = Some(false);
        comments.push(format!("{}: File not found", path.display()));
        ret.comment = comments.join("; ");
        return None;
    };
    let is_link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    let chown_user = user.filter(|u| !u.is(&cur.user, cur.uid));
    let chown_group = group.filter(|g| !g.is(&cur.group, cur.gid));
    if (chown_user.is_some() || chown_group.is_some()) && !test {
        let uid = user.and_then(Owner::uid).unwrap_or(cur.uid);
        let gid = group.and_then(Owner::gid).unwrap_or(cur.gid);
        let owned = if is_link && !follow {
            std::os::unix::fs::lchown(path, Some(uid), Some(gid))
        } else {
            std::os::unix::fs::chown(path, Some(uid), Some(gid))
        };
        match owned {
            // chown clears setuid and setgid: the mode is put back, changes come after.
            Ok(()) if !is_link => {
                if let Some(bits) = mode_bits(&cur.mode) {
                    let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(bits));
                }
            }
            Ok(()) => {}
            Err(_) => ret.result = Some(false),
        }
    }
    let mut mode_changed = false;
    let skip_mode = is_link && !follow;
    if let Some(mode) = mode
        && !test
        && !skip_mode
        && mode != cur.mode
    {
        mode_changed = true;
        if let Some(bits) = mode_bits(mode) {
            let _ = std::fs::set_permissions(path, std::fs::Permissions::from_mode(bits));
        }
    }
    let post = stats(path, follow).unwrap_or_else(|| cur.clone());
    if let Some(user) = user {
        if !user.is(&post.user, post.uid) {
            if test {
                ret.change("user", owner_value(user));
            } else {
                ret.result = Some(false);
                comments.push(format!("Failed to change user to {}", user.shown()));
            }
        } else if chown_user.is_some() {
            ret.change("user", owner_value(user));
        }
    }
    if let Some(group) = group {
        if !group.is(&post.group, post.gid) {
            if test {
                ret.change("group", owner_value(group));
            } else {
                ret.result = Some(false);
                comments.push(format!("Failed to change group to {}", group.shown()));
            }
        } else if chown_group.is_some() {
            ret.change("group", owner_value(group));
        }
    }
    if let Some(mode) = mode
        && !skip_mode
    {
        if mode != post.mode {
            if test {
                ret.change("mode", mode);
            } else {
                ret.result = Some(false);
                comments.push(format!("Failed to change mode to {mode}"));
            }
        } else if mode_changed {
            ret.change("mode", mode);
        }
    }
    ret.comment = comments.join("; ");
    if test && ret.changed() {
        ret.result = None;
    }
    Some(cur.mode)
}

fn owner_value(owner: &Owner) -> Value {
    match owner {
        Owner::Name(name) => Value::from(name.as_str()),
        Owner::Id(id) => Value::from(*id),
    }
}

/// The process's umask, read without changing it (changing it would race other threads).
fn umask() -> u32 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|status| {
            status
                .lines()
                .find_map(|line| line.strip_prefix("Umask:"))
                .and_then(|mask| u32::from_str_radix(mask.trim(), 8).ok())
        })
        .unwrap_or(0o022)
}

/// The mode a new file gets from the umask, normalised.
fn default_file_mode() -> String {
    format!("{:04o}", 0o666 & !umask())
}

/// Salt's `files.is_text` on a file's first 512 bytes.
fn is_text(data: &[u8]) -> bool {
    let block = &data[..data.len().min(512)];
    if block.contains(&0) {
        return false;
    }
    if block.is_empty() || std::str::from_utf8(block).is_ok() {
        return true;
    }
    let text = |b: &u8| (32..127).contains(b) || b"\n\r\t\x0c\x08".contains(b);
    let nontext = block.iter().filter(|b| !text(b)).count();
    nontext as f64 / block.len() as f64 <= 0.30
}

/// How a diff is shown, from the state's arguments and the minion's options.
#[derive(Debug, Clone, Copy)]
struct DiffStyle {
    show_changes: bool,
    /// `obfuscate_templates`: the diff is hidden.
    obfuscate: bool,
}

impl DiffStyle {
    fn of(call: &StateCall, ctx: &StateContext) -> Self {
        Self {
            show_changes: call.arg_bool("show_changes", true),
            obfuscate: ctx
                .config
                .get("obfuscate_templates")
                .is_some_and(crate::py::value::truthy),
        }
    }
}

/// Salt's `get_diff` of two files' bytes: empty when their lines are equal; otherwise the
/// unified diff, or what Salt says instead of one (binary files, hidden changes).
fn diff(old: &[u8], new: &[u8], style: DiffStyle) -> String {
    let (old_lines, new_lines) = (byte_lines(old), byte_lines(new));
    if old_lines == new_lines {
        return String::new();
    }
    if style.obfuscate {
        return "<Obfuscated Template>".to_owned();
    }
    if !style.show_changes {
        return "<show_changes=False>".to_owned();
    }
    match (is_text(old), is_text(new)) {
        (false, false) => return "Replace binary file".to_owned(),
        (false, true) => return "Replace binary file with text file".to_owned(),
        (true, false) => return "Replace text file with binary file".to_owned(),
        (true, true) => {}
    }
    let decode = |lines: Vec<&[u8]>| -> Vec<String> {
        lines
            .into_iter()
            .map(|line| match std::str::from_utf8(line) {
                Ok(text) => text.to_owned(),
                // Salt's fallback decoding: latin-1, one char per byte.
                Err(_) => line.iter().map(|&b| char::from(b)).collect(),
            })
            .collect()
    };
    crate::py::difflib::unified_diff(&decode(old_lines), &decode(new_lines))
}

/// Python's `readlines()` on a binary file: lines ending after each `\n`.
fn byte_lines(data: &[u8]) -> Vec<&[u8]> {
    data.split_inclusive(|b| *b == b'\n').collect()
}

/// An I/O failure in Salt's words (`[Errno 2] No such file or directory: '/x'`).
fn os_error(err: &std::io::Error, path: &Path) -> String {
    let code = err.raw_os_error().unwrap_or(0);
    let text = nix::errno::Errno::from_raw(code).desc();
    format!("[Errno {code}] {text}: '{}'", path.display())
}

/// Salt's `copyfile`: replaces `dest` with `data` through a temporary file beside it, so a
/// reader never sees half; an existing file keeps its owner and mode (a new one is 0600 until
/// its mode is set) and is first backed up when `backup` is `minion` or `both`.
fn replace_file(dest: &Path, data: &[u8], backup: &str, cachedir: &Path) -> Result<(), String> {
    let parent = dest.parent().unwrap_or(Path::new("/"));
    if !parent.is_dir() {
        return Err(format!(
            "[Errno 2] No such file or directory: '{}'",
            dest.display()
        ));
    }
    let prefix = dest
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let mut temp = tempfile::Builder::new()
        .prefix(&prefix)
        .tempfile_in(parent)
        .map_err(|err| os_error(&err, parent))?;
    temp.write_all(data)
        .map_err(|err| os_error(&err, temp.path()))?;
    let existing = std::fs::metadata(dest).ok();
    if existing.is_some() && matches!(backup, "minion" | "both") {
        backup_minion(dest, &cachedir.join("file_backup")).map_err(|err| os_error(&err, dest))?;
    }
    let temp = temp.into_temp_path();
    if let Some(meta) = &existing {
        let _ = std::os::unix::fs::chown(&temp, Some(meta.uid()), Some(meta.gid()));
        std::fs::set_permissions(&temp, std::fs::Permissions::from_mode(meta.mode() & 0o7777))
            .map_err(|err| os_error(&err, dest))?;
    }
    temp.persist(dest)
        .map_err(|err| os_error(&err.error, dest))?;
    Ok(())
}

/// Salt's `backup_minion`: a copy under `bkroot/<dir>/<name>_<Day_Mon_DD_HH:MM:SS_micros_YYYY>`
/// with the file's owner and mode.
fn backup_minion(path: &Path, bkroot: &Path) -> std::io::Result<()> {
    let now = jiff::Timestamp::now();
    // Salt stamps in local time; halite in UTC, which is what servers mostly run in.
    let local = jiff::tz::Offset::UTC.to_datetime(now);
    let stamp = local.strftime("%a_%b_%d_%H:%M:%S").to_string();
    let micros = now.as_microsecond().rem_euclid(1_000_000);
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    let dir = path
        .parent()
        .map(|d| d.strip_prefix("/").unwrap_or(d).to_path_buf())
        .unwrap_or_default();
    let backup = bkroot
        .join(dir)
        .join(format!("{name}_{stamp}_{micros:06}_{}", local.year()));
    std::fs::create_dir_all(backup.parent().unwrap_or(bkroot))?;
    std::fs::copy(path, &backup)?;
    let meta = std::fs::metadata(path)?;
    let _ = std::os::unix::fs::chown(&backup, Some(meta.uid()), Some(meta.gid()));
    std::fs::set_permissions(
        &backup,
        std::fs::Permissions::from_mode(meta.mode() & 0o7777),
    )
}

/// Salt's `config.backup_mode`: the state's `backup`, else the minion's `backup_mode`.
fn backup_mode(call: &StateCall, ctx: &StateContext) -> String {
    call.arg_str("backup")
        .filter(|b| !b.is_empty())
        .or_else(|| {
            ctx.config
                .get("backup_mode")
                .map(|b| py_str(b).into_owned())
        })
        .unwrap_or_default()
}

fn cachedir(ctx: &StateContext) -> PathBuf {
    ctx.config
        .cachedir()
        .unwrap_or_else(|_| PathBuf::from("/var/cache/salt/minion"))
}

/// Salt's `makedirs_`: creates the missing directories above `path` (not `path` itself), each
/// with the declared owner and mode.
fn make_parents(
    path: &Path,
    user: Option<&Owner>,
    group: Option<&Owner>,
    mode: Option<&str>,
) -> Result<(), String> {
    let Some(parent) = path.parent() else {
        return Ok(());
    };
    let mut missing = Vec::new();
    let mut dir = parent;
    while !dir.is_dir() {
        if dir.exists() {
            return Err(format!(
                "The path '{}' already exists and is not a directory",
                dir.display()
            ));
        }
        missing.push(dir);
        match dir.parent() {
            Some(up) => dir = up,
            None => break,
        }
    }
    for dir in missing.into_iter().rev() {
        make_dir(dir, user, group, mode)?;
    }
    Ok(())
}

/// Salt's `mkdir`: one directory, then its owner and mode when declared.
fn make_dir(
    dir: &Path,
    user: Option<&Owner>,
    group: Option<&Owner>,
    mode: Option<&str>,
) -> Result<(), String> {
    if dir.is_dir() {
        return Ok(());
    }
    std::fs::create_dir(dir).map_err(|err| os_error(&err, dir))?;
    let mut scratch = Ret::new("");
    check_perms(&mut scratch, dir, user, group, mode, true, false);
    Ok(())
}

/// Python's `os.path.isabs`.
fn is_absolute(name: &str) -> bool {
    name.starts_with('/')
}

#[cfg(test)]
mod tests;
