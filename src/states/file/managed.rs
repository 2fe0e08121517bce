//! `file.managed`: a file's contents from a source (`salt://`, a local path, HTTP(S), a list of
//! them), a template or inline `contents`, with its owner and mode, as Salt's state and its
//! `file.check_managed_changes` (test mode) and `file.manage_file` do it.

use std::os::unix::fs::OpenOptionsExt;
use std::path::Path;

use super::source::{self, Fetched, Sum};
use super::{
    DiffStyle, Owner, Ret, backup_mode, cachedir, check_owners, check_perms, default_file_mode,
    diff, is_absolute, make_parents, normalize_mode, replace_file, stats, target_name,
};
use crate::event::Value;
use crate::py::value::{py_str, truthy};
use crate::states::{StateCall, StateContext, StateError, StateResult};

/// What the test-mode comment adds when changes are pending.
const TEST_NOTE: &str =
    "\nNote: No changes made, actual changes may\nbe different due to other states.";

pub(super) async fn managed(
    call: &StateCall,
    ctx: &StateContext,
) -> Result<StateResult, StateError> {
    Ok(run(call, ctx).await?.done())
}

/// The declared arguments, read once.
struct Declared<'a> {
    name: String,
    source: Option<&'a Value>,
    source_hash: Option<String>,
    user: Option<Owner>,
    group: Option<Owner>,
    mode: Option<String>,
    template: Option<String>,
    skip_verify: bool,
    follow_symlinks: bool,
    style: DiffStyle,
}

/// The state's result, before it is handed back (`file.recurse` and `file.line` fold it into
/// their own).
pub(super) async fn run(call: &StateCall, ctx: &StateContext) -> Result<Ret, StateError> {
    let name = target_name(call);
    let ret = Ret::new(&name);
    if name.is_empty() {
        return Ok(ret.error("Destination file name is required"));
    }
    let mode_arg = call.arg("mode");
    let keep_mode =
        mode_arg.is_some_and(|m| m.as_str().is_some_and(|m| m.eq_ignore_ascii_case("keep")));
    let declared = Declared {
        source: call.arg("source").filter(|s| truthy(s)),
        source_hash: call.arg_str("source_hash").filter(|h| !h.is_empty()),
        user: Owner::from_arg(call, "user"),
        group: Owner::from_arg(call, "group"),
        mode: if keep_mode {
            None
        } else {
            normalize_mode(mode_arg)
        },
        template: call.arg_str("template").filter(|t| !t.is_empty()),
        skip_verify: call.arg_bool("skip_verify", false),
        follow_symlinks: call.arg_bool("follow_symlinks", true),
        style: DiffStyle::of(call, ctx),
        name,
    };
    let declared_contents: Vec<&str> = ["contents", "contents_pillar", "contents_grains"]
        .into_iter()
        .filter(|key| call.arg(key).is_some_and(|v| !v.is_nil()))
        .collect();
    if declared.source.is_some() && !declared_contents.is_empty() {
        return Ok(ret.error(
            "'source' cannot be used in combination with 'contents', 'contents_pillar', or 'contents_grains'",
        ));
    }
    if keep_mode && !declared_contents.is_empty() {
        return Ok(ret.error(
            "Mode preservation cannot be used in combination with 'contents', 'contents_pillar', or 'contents_grains'",
        ));
    }
    if declared_contents.len() > 1 {
        return Ok(ret.error(
            "Only one of 'contents', 'contents_pillar', and 'contents_grains' is permitted",
        ));
    }
    // Without anything to write, the file is not read, only its metadata managed.
    let mut replace = call.arg_bool("replace", true)
        && (declared.source.is_some() || !declared_contents.is_empty());
    let mut ret = ret;
    if call.arg("file_mode").is_some() {
        ret.warnings.push(
            "The 'file_mode' argument will be ignored.  Please use 'mode' instead to set file permissions."
                .to_owned(),
        );
    }
    let contents = match declared_contents.first() {
        None => None,
        Some(key) => match contents(call, ctx, key, &declared).await? {
            Ok(contents) => Some(contents),
            Err(comment) => return Ok(ret.error(comment)),
        },
    };
    let name = declared.name.as_str();
    let path = Path::new(name);
    if !call.arg_bool("create", true) && !path.is_file() {
        ret.comment = format!("File {name} is not present and is not set for creation");
        return Ok(ret);
    }
    if let Some(err) = check_owners(declared.user.as_ref(), declared.group.as_ref(), call.test) {
        return Ok(ret.error(err));
    }
    if !is_absolute(name) {
        return Ok(ret.error(format!("Specified file {name} is not an absolute path")));
    }
    if path.is_dir() {
        return Ok(ret.error(format!("Specified target {name} is a directory")));
    }
    for key in ["context", "defaults"] {
        if call.arg(key).is_some_and(|v| truthy(v) && !v.is_map()) {
            let what = if key == "context" {
                "Context"
            } else {
                "Defaults"
            };
            return Ok(ret.error(format!("{what} must be formed as a dict")));
        }
    }
    if contents.is_none()
        && declared.template.is_none()
        && !declared.skip_verify
        && replace
        && path.exists()
        && let Some(source) = declared.source
        && unchanged_download(ctx, call, &declared, source).await
    {
        replace = false;
    }
    if !replace && path.exists() {
        let lmode = check_perms(
            &mut ret,
            path,
            declared.user.as_ref(),
            declared.group.as_ref(),
            declared.mode.as_deref(),
            declared.follow_symlinks,
            call.test,
        );
        if call.test {
            ret.comment = match (&declared.mode, lmode) {
                (Some(mode), Some(lmode)) if *mode != lmode => format!(
                    "File {name} will be updated with permissions {mode} from its current state of {lmode}"
                ),
                _ => format!("File {name} not updated"),
            };
        } else if !ret.changed() && ret.result == Some(true) {
            ret.comment = format!("File {name} exists with proper permissions. No changes made.");
        }
        return Ok(ret);
    }
    let picked = match declared.source {
        None => None,
        Some(source) => {
            match source::pick(ctx, source, declared.source_hash.clone(), &call.saltenv).await {
                Ok(picked) => Some(picked),
                Err(err) => return Ok(ret.error(format!("Unable to manage file: {err}"))),
            }
        }
    };
    let fetched = match &picked {
        Some((source, hash)) if contents.is_none() => {
            match get_managed(call, ctx, &declared, source, hash.as_deref()).await? {
                Ok(fetched) => Some(fetched),
                Err(comment) => return Ok(ret.error(comment)),
            }
        }
        _ => None,
    };
    let source = picked.as_ref().map(|(source, _)| source.as_str());
    if call.test {
        let changes = pending_changes(&declared, contents.as_deref(), fetched.as_ref());
        ret.changes = changes;
        if ret.changed() {
            ret.result = None;
            ret.comment = format!("The file {name} is set to be changed{TEST_NOTE}");
            if ret.has_change("diff") && !declared.style.show_changes {
                ret.change("diff", "<show_changes=False>");
            }
        } else {
            ret.result = Some(true);
            ret.comment = format!("The file {name} is in the correct state");
        }
        return Ok(ret);
    }
    Ok(manage_file(
        call, ctx, &declared, ret, source, fetched, contents,
    ))
}

/// The bytes `contents`, `contents_pillar` or `contents_grains` declare, one line ending added
/// to each line (none after the last with `contents_newline: False`), rendered when a template
/// is declared. The error is the state's comment.
async fn contents(
    call: &StateCall,
    ctx: &StateContext,
    key: &str,
    declared: &Declared<'_>,
) -> Result<Result<Vec<u8>, String>, StateError> {
    let delimiter = call
        .arg_str("contents_delimiter")
        .unwrap_or_else(|| ":".to_owned());
    let lookup = |what: &str, data: &Value| -> Result<Value, String> {
        let keys: Vec<String> = match call.arg(key) {
            Some(Value::Array(items)) => items.iter().map(|k| py_str(k).into_owned()).collect(),
            Some(one) => vec![py_str(one).into_owned()],
            None => Vec::new(),
        };
        let mut found = Vec::new();
        for k in &keys {
            let value = crate::event::traverse(data, k, &delimiter)
                .ok_or_else(|| format!("{what} {k} does not exist"))?;
            found.push(py_str(value).into_owned());
        }
        Ok(match call.arg(key) {
            Some(Value::Array(_)) => Value::from(found.join("\n")),
            _ => crate::event::traverse(data, &keys[0], &delimiter)
                .cloned()
                .unwrap_or(Value::Nil),
        })
    };
    let value = match key {
        "contents_pillar" => lookup("Pillar", &ctx.pillar),
        "contents_grains" => lookup("Grain", &ctx.grains),
        _ => Ok(call.arg(key).cloned().unwrap_or(Value::Nil)),
    };
    let value = match value {
        Ok(value) => value,
        Err(comment) => return Ok(Err(comment)),
    };
    if !call.arg_bool("allow_empty", true) && !truthy(&value) {
        let id = match key {
            "contents" => "'contents'".to_owned(),
            other => format!("{other} {}", call.arg_str(other).unwrap_or_default()),
        };
        return Ok(Err(format!(
            "{id} value would result in empty contents. Set allow_empty to True to allow the managed file to be empty."
        )));
    }
    let parts: Vec<String> = match &value {
        Value::Binary(bytes) => match std::str::from_utf8(bytes) {
            Ok(text) => vec![text.to_owned()],
            Err(_) if declared.template.is_some() => {
                return Ok(Err("Contents specified by contents/contents_pillar/contents_grains appears to be binary data, and as will not be able to be treated as a Jinja template.".to_owned()));
            }
            // Binary data is written as it is.
            Err(_) => return Ok(Ok(bytes.clone())),
        },
        Value::Array(items) => items.iter().map(|i| py_str(i).into_owned()).collect(),
        other => vec![py_str(other).into_owned()],
    };
    let mut text = String::new();
    for part in &parts {
        for line in crate::py::value::splitlines(part) {
            text.push_str(line.trim_end_matches('\n').trim_end_matches('\r'));
            text.push('\n');
        }
    }
    if !call.arg_bool("contents_newline", true) {
        text = text
            .trim_end_matches('\n')
            .trim_end_matches('\r')
            .to_owned();
    }
    if let Some(template) = &declared.template {
        if template != "jinja" {
            return Ok(Err(format!(
                "Specified template format {template} is not supported"
            )));
        }
        let vars = template_vars(call, ctx, declared, None);
        text = render(ctx, &declared.name, text, vars).await?;
    }
    Ok(Ok(text.into_bytes()))
}

/// The variables of a file template: Salt's, the file's own (`name`, `source`, `user`,
/// `group`, `mode`, `attrs`), then `defaults` updated with `context`.
fn template_vars(
    call: &StateCall,
    ctx: &StateContext,
    declared: &Declared<'_>,
    source: Option<&str>,
) -> crate::render::Vars {
    let owner = |o: &Option<Owner>| o.as_ref().map_or(Value::Nil, super::owner_value);
    let mut extra = vec![
        ("name".to_owned(), Value::from(declared.name.as_str())),
        ("source".to_owned(), source.map_or(Value::Nil, Value::from)),
        ("user".to_owned(), owner(&declared.user)),
        ("group".to_owned(), owner(&declared.group)),
        (
            "mode".to_owned(),
            declared.mode.as_deref().map_or(Value::Nil, Value::from),
        ),
        (
            "attrs".to_owned(),
            call.arg("attrs").cloned().unwrap_or(Value::Nil),
        ),
    ];
    for key in ["defaults", "context"] {
        if let Some(Value::Map(entries)) = call.arg(key) {
            extra.extend(
                entries
                    .iter()
                    .map(|(k, v)| (py_str(k).into_owned(), v.clone())),
            );
        }
    }
    ctx.template_vars(&call.saltenv, &call.sls, extra)
}

/// A template rendered as Salt's Jinja renders files: Jinja drops the source's final newline
/// before it reads the template (so a closing `-%}` strips nothing after it), and Salt then
/// appends that newline to whatever was rendered.
async fn render(
    ctx: &StateContext,
    name: &str,
    text: String,
    vars: crate::render::Vars,
) -> Result<String, StateError> {
    let newline = text.ends_with('\n');
    let mut rendered = ctx.render_text(name, text, vars).await?;
    if newline {
        rendered.push('\n');
    }
    Ok(rendered)
}

/// Salt's early check for a remote source with a `source_hash`: the existing file already has
/// the hash, so the download is skipped. Any failure just means "not known to be unchanged".
async fn unchanged_download(
    ctx: &StateContext,
    call: &StateCall,
    declared: &Declared<'_>,
    source: &Value,
) -> bool {
    let Ok((source, Some(hash))) =
        source::pick(ctx, source, declared.source_hash.clone(), &call.saltenv).await
    else {
        return false;
    };
    if matches!(source::scheme(&source), "salt" | "file") || source.starts_with('/') {
        return false;
    }
    let Ok(sum) = source::source_sum(ctx, &declared.name, &source, &hash, &call.saltenv).await
    else {
        return false;
    };
    source::file_hash(Path::new(&declared.name), &sum.hash_type).as_ref() == Some(&sum.hsum)
}

/// Salt's `get_managed`: the local copy of `source` and the hash it must have, rendered when a
/// template is declared. The error is the state's comment.
async fn get_managed(
    call: &StateCall,
    ctx: &StateContext,
    declared: &Declared<'_>,
    source: &str,
    source_hash: Option<&str>,
) -> Result<Result<(Fetched, Option<Sum>), String>, StateError> {
    let saltenv = call.saltenv.as_str();
    let scheme = source::scheme(source);
    let remote = matches!(scheme, "http" | "https");
    let mut sum = None;
    if (remote || (source_hash.is_some() && scheme != "salt")) && !declared.skip_verify {
        let Some(hash) = source_hash else {
            return Ok(Err(format!(
                "Unable to verify upstream hash of source file {source}, please set source_hash or set skip_verify to True"
            )));
        };
        match source::source_sum(ctx, &declared.name, source, hash, saltenv).await {
            Ok(found) => sum = Some(found),
            Err(comment) => return Ok(Err(comment)),
        }
    }
    let fetched = match source::fetch(ctx, source, saltenv).await {
        Ok(fetched) => fetched,
        Err(comment) => return Ok(Err(comment)),
    };
    if fetched.path == Path::new(&declared.name) {
        return Ok(Err(
            "Unable to manage file: Source file cannot be the same as destination".to_owned(),
        ));
    }
    if sum.is_none() && !(remote && declared.skip_verify) {
        let hash_type = if scheme == "salt" {
            ctx.config.hash_type().unwrap_or("sha256").to_owned()
        } else {
            "sha256".to_owned()
        };
        sum = source::file_hash(&fetched.path, &hash_type).map(|hsum| Sum { hash_type, hsum });
    }
    let Some(template) = &declared.template else {
        return Ok(Ok((fetched, sum)));
    };
    if template != "jinja" {
        return Ok(Err(format!(
            "Specified template format {template} is not supported"
        )));
    }
    let text = match std::fs::read(&fetched.path) {
        Ok(bytes) => String::from_utf8_lossy(&bytes).into_owned(),
        Err(_) => return Ok(Err(format!("Source file '{source}' not found"))),
    };
    let vars = template_vars(call, ctx, declared, Some(source));
    let rendered = render(ctx, source, text, vars).await?;
    let hsum = crate::config::hexdigest(rendered.as_bytes(), "sha256").unwrap_or_default();
    Ok(source::temporary(rendered.as_bytes()).map(|fetched| {
        (
            fetched,
            Some(Sum {
                hash_type: "sha256".to_owned(),
                hsum,
            }),
        )
    }))
}

/// Salt's `check_file_meta`: what applying would change (test mode).
fn pending_changes(
    declared: &Declared<'_>,
    contents: Option<&[u8]>,
    fetched: Option<&(Fetched, Option<Sum>)>,
) -> Vec<(String, Value)> {
    let mut ret = Ret::new(&declared.name);
    let path = Path::new(&declared.name);
    let Some(current) = stats(path, declared.follow_symlinks) else {
        ret.change("newfile", declared.name.as_str());
        return ret.changes;
    };
    let old = std::fs::read(path).unwrap_or_default();
    let style = DiffStyle {
        show_changes: true,
        ..declared.style
    };
    if let Some((fetched, Some(sum))) = fetched
        && crate::config::hexdigest(&old, &sum.hash_type).as_ref() != Some(&sum.hsum)
    {
        let new = std::fs::read(&fetched.path).unwrap_or_default();
        ret.change("diff", diff(&old, &new, style));
    }
    if let Some(contents) = contents {
        let differences = diff(&old, contents, style);
        if !differences.is_empty() {
            ret.change("diff", differences);
        }
    }
    if let Some(user) = &declared.user
        && !user.is(&current.user, current.uid)
    {
        ret.change("user", super::owner_value(user));
    }
    if let Some(group) = &declared.group
        && !group.is(&current.group, current.gid)
    {
        ret.change("group", super::owner_value(group));
    }
    if let Some(mode) = &declared.mode
        && *mode != current.mode
    {
        ret.change("mode", mode.as_str());
    }
    ret.changes
}

/// Salt's `manage_file`: writes what differs, then owner and mode.
fn manage_file(
    call: &StateCall,
    ctx: &StateContext,
    declared: &Declared<'_>,
    mut ret: Ret,
    source: Option<&str>,
    fetched: Option<(Fetched, Option<Sum>)>,
    contents: Option<Vec<u8>>,
) -> Ret {
    let name = declared.name.as_str();
    let path = Path::new(name);
    let backup = backup_mode(call, ctx);
    let cachedir = cachedir(ctx);
    // A download is checked against its declared hash before it is used.
    let check_download =
        source.is_some_and(|s| source::scheme(s) != "salt") && !declared.skip_verify;
    let mismatch = |fetched: &Fetched, sum: &Option<Sum>| -> Option<(Sum, String)> {
        let sum = sum.as_ref()?;
        let actual = source::file_hash(&fetched.path, &sum.hash_type).unwrap_or_default();
        (check_download && actual != sum.hsum).then(|| (sum.clone(), actual))
    };
    let is_link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    if path.is_file() || is_link {
        let real = if is_link && declared.follow_symlinks {
            std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf())
        } else {
            path.to_path_buf()
        };
        let old = std::fs::read(&real).unwrap_or_default();
        if let (Some(source), Some((fetched, sum))) = (source, &fetched) {
            let same = sum.as_ref().is_some_and(|sum| {
                crate::config::hexdigest(&old, &sum.hash_type).as_ref() == Some(&sum.hsum)
            });
            if !same {
                if let Some((sum, actual)) = mismatch(fetched, sum) {
                    ret.result = Some(false);
                    ret.comment = format!(
                        "Specified {} checksum for {source} ({}) does not match actual checksum ({actual}). If the 'source_hash' value refers to a remote file with multiple possible matches, then it may be necessary to set 'source_hash_name'.",
                        sum.hash_type, sum.hsum
                    );
                    return ret;
                }
                let new = std::fs::read(&fetched.path).unwrap_or_default();
                let differences = diff(&old, &new, declared.style);
                if !differences.is_empty() {
                    ret.change("diff", differences);
                }
                if let Err(err) = replace_file(&real, &new, &backup, &cachedir) {
                    return ret.error(format!("Failed to commit change: {err}"));
                }
            }
        }
        if let Some(contents) = &contents {
            let differences = diff(&old, contents, declared.style);
            if !differences.is_empty() {
                ret.change("diff", differences);
                if let Err(err) = replace_file(&real, contents, &backup, &cachedir) {
                    return ret.error(format!("Failed to commit change: {err}"));
                }
            }
        }
        check_perms(
            &mut ret,
            path,
            declared.user.as_ref(),
            declared.group.as_ref(),
            declared.mode.as_deref(),
            declared.follow_symlinks,
            false,
        );
        if ret.changed() {
            ret.comment = format!("File {name} updated");
        } else if ret.result == Some(true) {
            ret.comment = format!("File {name} is in the correct state");
        }
        return ret;
    }
    let makedirs = call.arg_bool("makedirs", false);
    let parent_missing = !path.parent().is_some_and(Path::is_dir);
    let make_parent_dirs = |ret: Ret| -> Result<Ret, Ret> {
        if !parent_missing {
            return Ok(ret);
        }
        if !makedirs {
            let mut ret = ret;
            ret.remove_change("diff");
            return Err(ret.error("Parent directory not present"));
        }
        // Without a dir_mode, directories get the file's mode with search bits added.
        let dir_mode = normalize_mode(call.arg("dir_mode")).or_else(|| {
            declared.mode.as_ref().map(|mode| {
                let digits: String = mode
                    .chars()
                    .skip(mode.len().saturating_sub(3))
                    .map(|d| match d.to_digit(8) {
                        Some(0) | None => d,
                        Some(bits) => char::from_digit(bits | 1, 8).unwrap_or(d),
                    })
                    .collect();
                format!("{digits:0>4}")
            })
        });
        match make_parents(
            path,
            declared.user.as_ref(),
            declared.group.as_ref(),
            dir_mode.as_deref(),
        ) {
            Ok(()) => Ok(ret),
            Err(err) => Err(ret.error(format!("Unable to manage file: {err}"))),
        }
    };
    if let (Some(_), Some((fetched, sum))) = (source, &fetched) {
        if let Some((sum, actual)) = mismatch(fetched, sum) {
            ret.result = Some(false);
            ret.comment = format!(
                "Specified {} checksum for {name} ({}) does not match actual checksum ({actual})",
                sum.hash_type, sum.hsum
            );
            return ret;
        }
        ret.change("diff", "New file");
        ret = match make_parent_dirs(ret) {
            Ok(ret) => ret,
            Err(ret) => return ret,
        };
    } else {
        ret = match make_parent_dirs(ret) {
            Ok(ret) => ret,
            Err(ret) => return ret,
        };
        // With a mode to set, the file is private until it is set.
        let created = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(false)
            .mode(if declared.mode.is_some() {
                0o600
            } else {
                0o666
            })
            .open(path);
        if created.is_err() {
            return match &contents {
                None => ret.error(format!("Empty file {name} not created")),
                Some(_) => ret.error(format!("File {name} not created")),
            };
        }
        if contents.is_none() {
            ret.change("new", format!("file {name} created"));
            ret.comment = "Empty file".to_owned();
        } else {
            ret.change("diff", "New file");
        }
    }
    let written = match (&contents, &fetched) {
        (Some(contents), _) => replace_file(path, contents, &backup, &cachedir),
        (None, Some((fetched, _))) => std::fs::read(&fetched.path)
            .map_err(|err| super::os_error(&err, &fetched.path))
            .and_then(|data| replace_file(path, &data, &backup, &cachedir)),
        (None, None) => Ok(()),
    };
    if let Err(err) = written {
        ret.changes.clear();
        return ret.error(format!("Unable to manage file: {err}"));
    }
    let mode = declared.mode.clone().unwrap_or_else(default_file_mode);
    check_perms(
        &mut ret,
        path,
        declared.user.as_ref(),
        declared.group.as_ref(),
        Some(&mode),
        false,
        false,
    );
    if ret.comment.is_empty() {
        ret.comment = format!("File {name} updated");
    }
    if !ret.changed() && ret.result == Some(true) {
        ret.comment = format!("File {name} is in the correct state");
    }
    ret
}
