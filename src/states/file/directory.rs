//! `file.directory` (a directory with its owner and mode, made with its parents on request)
//! and `file.absent` (no file, link or directory by that name).

use std::path::Path;

use super::{
    Owner, Ret, check_owners, check_perms, is_absolute, make_dir, make_parents, normalize_mode,
    stats, target_name,
};
use crate::event::Value;
use crate::py::value::py_str;
use crate::states::{StateCall, StateContext, StateError, StateResult};

pub(super) async fn absent(call: &StateCall, _: &StateContext) -> Result<StateResult, StateError> {
    Ok(remove(call).done())
}

fn remove(call: &StateCall) -> Ret {
    let name = target_name(call);
    let mut ret = Ret::new(&name);
    if name.is_empty() {
        return ret.error("Must provide name to file.absent");
    }
    if !is_absolute(&name) {
        return ret.error(format!("Specified file {name} is not an absolute path"));
    }
    if name == "/" {
        return ret.error("Refusing to make \"/\" absent");
    }
    let path = Path::new(&name);
    let is_link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    let what = if path.is_file() || is_link {
        "File"
    } else if path.is_dir() {
        "Directory"
    } else {
        ret.comment = format!("File {name} is not present");
        return ret;
    };
    if call.test {
        ret.result = None;
        ret.change("removed", name.as_str());
        ret.comment = format!("{what} {name} is set for removal");
        return ret;
    }
    let removed = if what == "File" {
        std::fs::remove_file(path)
    } else {
        std::fs::remove_dir_all(path)
    };
    match removed {
        Ok(()) => {
            ret.comment = format!("Removed {} {name}", what.to_lowercase());
            ret.change("removed", name.as_str());
            ret
        }
        Err(_) if what == "Directory" => ret.error(format!("Failed to remove directory {name}")),
        Err(err) => ret.error(format!(
            "Could not remove '{name}': {}",
            super::os_error(&err, path)
        )),
    }
}

pub(super) async fn directory(
    call: &StateCall,
    _: &StateContext,
) -> Result<StateResult, StateError> {
    Ok(ensure(call).done())
}

/// The state's result, before it is handed back (`file.recurse` folds it into its own).
pub(super) fn ensure(call: &StateCall) -> Ret {
    let mut name = target_name(call);
    let mut ret = Ret::new(&name);
    if name.is_empty() {
        return ret.error("Must provide name to file.directory");
    }
    if name.len() > 1 && name.ends_with('/') {
        name.pop();
    }
    let user = Owner::from_arg(call, "user");
    let group = Owner::from_arg(call, "group");
    let dir_mode = normalize_mode(
        call.arg("dir_mode")
            .filter(|m| crate::py::value::truthy(m))
            .or_else(|| call.arg("mode")),
    );
    if let Some(err) = check_owners(user.as_ref(), group.as_ref(), call.test) {
        return ret.error(err);
    }
    if !is_absolute(&name) {
        return ret.error(format!("Specified file {name} is not an absolute path"));
    }
    let path = Path::new(&name);
    let is_link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    let force = call.arg_bool("force", false);
    let allow_symlink = call.arg_bool("allow_symlink", true);
    if path.is_file() || (!allow_symlink && is_link) || (force && is_link) {
        if !force {
            let what = if path.is_file() {
                "a file"
            } else {
                "a symlink"
            };
            return ret.error(format!("Specified location {name} exists and is {what}"));
        }
        let what = if path.is_file() {
            "File"
        } else if is_link {
            "Symlink"
        } else {
            "Directory"
        };
        if call.test {
            ret.change("forced", format!("{what} would be forcibly replaced"));
        } else {
            let _ = std::fs::remove_file(path);
            ret.change("forced", format!("{what} was forcibly replaced"));
        }
    }
    let pending = pending(
        path,
        &name,
        user.as_ref(),
        group.as_ref(),
        dir_mode.as_deref(),
    );
    ret.changes.extend(pending.iter().cloned());
    let (tresult, tcomment) = if pending.is_empty() {
        (
            Some(true),
            format!("The directory {name} is in the correct state"),
        )
    } else {
        let mut comment = "The following files will be changed:\n".to_owned();
        for (file, changes) in &pending {
            for (key, value) in changes.as_map().map(Vec::as_slice).unwrap_or_default() {
                comment.push_str(&format!("{file}: {} - {}\n", py_str(key), py_str(value)));
            }
        }
        (None, comment)
    };
    if call.test || !ret.changed() {
        ret.result = tresult;
        ret.comment = tcomment;
        return ret;
    }
    if !path.is_dir() {
        if !path.parent().is_some_and(Path::is_dir) {
            if !call.arg_bool("makedirs", false) {
                return ret.error(format!("No directory to create {name} in"));
            }
            if let Err(err) = make_parents(path, user.as_ref(), group.as_ref(), dir_mode.as_deref())
            {
                return ret.error(err);
            }
        }
        if let Err(err) = make_dir(path, user.as_ref(), group.as_ref(), dir_mode.as_deref()) {
            return ret.error(err);
        }
        if !path.is_dir() {
            return ret.error(format!("Failed to create directory {name}"));
        }
        ret.change(&name, new_directory());
        return ret;
    }
    check_perms(
        &mut ret,
        path,
        user.as_ref(),
        group.as_ref(),
        dir_mode.as_deref(),
        false,
        false,
    );
    if ret.comment.is_empty() && ret.changed() {
        ret.comment = format!("Directory {name} updated");
    }
    if !ret.changed() && ret.result == Some(true) {
        ret.comment = format!("Directory {name} is in the correct state");
    }
    ret
}

fn new_directory() -> Value {
    Value::Map(vec![(Value::from("directory"), Value::from("new"))])
}

/// Salt's `_check_directory` without recursion: what would change of the directory itself,
/// keyed by its path.
fn pending(
    path: &Path,
    name: &str,
    user: Option<&Owner>,
    group: Option<&Owner>,
    mode: Option<&str>,
) -> Vec<(String, Value)> {
    let Some(current) = stats(path, false).filter(|_| path.is_dir()) else {
        return vec![(name.to_owned(), new_directory())];
    };
    let mut changes = Vec::new();
    if let Some(user) = user.filter(|u| !u.is(&current.user, current.uid)) {
        changes.push((Value::from("user"), super::owner_value(user)));
    }
    if let Some(group) = group.filter(|g| !g.is(&current.group, current.gid)) {
        changes.push((Value::from("group"), super::owner_value(group)));
    }
    if let Some(mode) = mode.filter(|m| *m != current.mode) {
        changes.push((Value::from("mode"), Value::from(mode)));
    }
    if changes.is_empty() {
        Vec::new()
    } else {
        vec![(name.to_owned(), Value::Map(changes))]
    }
}
