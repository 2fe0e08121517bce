//! `file.symlink`: a symbolic link to a target, owned as declared (the minion's user by
//! default), replacing what is in its way only with `force`.

use std::path::Path;

use super::{Owner, Ret, is_absolute, make_parents, normalize_mode, target_name};
use crate::py::value::py_str;
use crate::states::{StateCall, StateContext, StateError, StateResult};

pub(super) async fn symlink(
    call: &StateCall,
    ctx: &StateContext,
) -> Result<StateResult, StateError> {
    Ok(ensure(call, ctx).done())
}

/// The owner of the link itself, by name.
fn link_owner(path: &Path) -> Option<(String, String)> {
    let stats = super::stats(path, false)?;
    Some((stats.user, stats.group))
}

fn ensure(call: &StateCall, ctx: &StateContext) -> Ret {
    let name = target_name(call);
    let mut ret = Ret::new(&name);
    if name.is_empty() {
        return ret.error("Must provide name to file.symlink");
    }
    let target = call.arg_str("target").unwrap_or_default();
    let path = Path::new(&name);
    let is_link = std::fs::symlink_metadata(path).is_ok_and(|m| m.file_type().is_symlink());
    let mut user = Owner::from_arg(call, "user").map(|u| u.shown());
    let mut group = Owner::from_arg(call, "group").map(|g| g.shown());
    if call.arg_bool("inherit_user_and_group", false)
        && (user.is_none() || group.is_none())
        && is_link
        && let Some((cur_user, cur_group)) = link_owner(path)
    {
        user.get_or_insert(cur_user);
        group.get_or_insert(cur_group);
    }
    let user = user.unwrap_or_else(|| {
        let configured = ctx
            .config
            .get("user")
            .map_or_else(|| "root".to_owned(), |u| py_str(u).into_owned());
        if Owner::Name(configured.clone()).uid().is_some() {
            configured
        } else {
            nix::unistd::User::from_uid(nix::unistd::geteuid())
                .ok()
                .flatten()
                .map_or_else(String::new, |u| u.name)
        }
    });
    let group = group.unwrap_or_else(|| {
        nix::unistd::User::from_name(&user)
            .ok()
            .flatten()
            .and_then(|u| nix::unistd::Group::from_gid(u.gid).ok().flatten())
            .map_or_else(|| user.clone(), |g| g.name)
    });
    let (owner, owner_group) = (Owner::Name(user.clone()), Owner::Name(group.clone()));
    let mut errors = Vec::new();
    let (Some(uid), gid) = (owner.uid(), owner_group.gid()) else {
        errors.push(format!("User {user} does not exist"));
        return preflight(ret, errors, owner_group.gid().is_none(), &group, &name);
    };
    let Some(gid) = gid else {
        return preflight(ret, errors, true, &group, &name);
    };
    if !is_absolute(&name) {
        return preflight(ret, errors, false, &group, &name);
    }
    let owned = |path: &Path| link_owner(path).is_some_and(|(u, g)| u == user && g == group);
    let force = call.arg_bool("force", false);
    let exists = std::fs::symlink_metadata(path).is_ok();
    let current = std::fs::read_link(path)
        .ok()
        .map(|t| t.display().to_string());
    let (tresult, mut tcomment, tchanges) = if !exists {
        (
            None,
            format!("Symlink {name} to {target} is set for creation"),
            vec![("new", name.clone())],
        )
    } else if let Some(current) = &current {
        if *current != target {
            (
                None,
                format!("Link {name} target is set to be changed to {target}"),
                vec![("change", name.clone())],
            )
        } else if owned(path) {
            (
                Some(true),
                format!("The symlink {name} is present"),
                Vec::new(),
            )
        } else {
            let (cu, cg) = link_owner(path).unwrap_or_default();
            (
                None,
                format!(
                    "The symlink {name} is present, but the ownership of the symlink would be changed from {cu}:{cg} to {user}:{group}"
                ),
                vec![("ownership", format!("{cu}:{cg}"))],
            )
        }
    } else if force {
        (
            None,
            format!(
                "The file or directory {name} is set for removal to make way for a new symlink targeting {target}"
            ),
            Vec::new(),
        )
    } else {
        (
            Some(false),
            format!(
                "File or directory exists where the symlink {name} should be. Did you mean to use force?"
            ),
            Vec::new(),
        )
    };
    let parent = path.parent().unwrap_or(Path::new("/"));
    if !parent.is_dir() {
        if call.arg_bool("makedirs", false) {
            if call.test {
                tcomment.push_str(&format!("\n{} will be created", parent.display()));
            } else {
                let mode = normalize_mode(call.arg("mode"));
                if let Err(err) =
                    make_parents(path, Some(&owner), Some(&owner_group), mode.as_deref())
                {
                    return ret.error(err);
                }
            }
        } else if call.test {
            tcomment.push_str(&format!(
                "\nDirectory {} for symlink is not present",
                parent.display()
            ));
        } else {
            return ret.error(format!(
                "Directory {} for symlink is not present",
                parent.display()
            ));
        }
    }
    if call.test {
        ret.result = tresult;
        ret.comment = tcomment;
        for (key, value) in tchanges {
            ret.change(key, value);
        }
        return ret;
    }
    let lchown =
        |path: &Path| std::os::unix::fs::lchown(path, Some(uid), Some(gid)).is_ok() && owned(path);
    if let Some(current) = &current {
        if Path::new(current) != Path::new(&target) {
            let _ = std::fs::remove_file(path);
        } else {
            if owned(path) {
                ret.comment = format!("Symlink {name} is present and owned by {user}:{group}");
            } else if lchown(path) {
                ret.comment = format!("Set ownership of symlink {name} to {user}:{group}");
                ret.change("ownership", format!("{user}:{group}"));
            } else {
                ret.result = Some(false);
                ret.comment =
                    format!("Failed to set ownership of symlink {name} to {user}:{group}");
            }
            return ret;
        }
    } else if exists {
        if !force {
            let what = if path.is_file() {
                "File"
            } else if path.is_dir() {
                "Directory"
            } else {
                "File system entry"
            };
            return ret.error(format!("{what} exists where the symlink {name} should be"));
        }
        let removed = if path.is_dir() {
            std::fs::remove_dir_all(path)
        } else {
            std::fs::remove_file(path)
        };
        if let Err(err) = removed {
            return ret.error(format!(
                "Unable to create new symlink {name} -> {target}: {}",
                super::os_error(&err, path)
            ));
        }
    }
    if let Err(err) = std::os::unix::fs::symlink(&target, path) {
        return ret.error(format!(
            "Unable to create new symlink {name} -> {target}: {}",
            super::os_error(&err, path)
        ));
    }
    ret.comment = format!("Created new symlink {name} -> {target}");
    ret.change("new", name.as_str());
    if !owned(path) && !lchown(path) {
        ret.result = Some(false);
        ret.comment.push_str(&format!(
            ", but was unable to set ownership to {user}:{group}"
        ));
    }
    ret
}

/// Salt's preflight failure: the errors joined, with a final period when there are several.
fn preflight(ret: Ret, mut errors: Vec<String>, no_group: bool, group: &str, name: &str) -> Ret {
    if no_group {
        errors.push(format!("Group {group} does not exist"));
    }
    if !is_absolute(name) {
        errors.push(format!("Specified file {name} is not an absolute path"));
    }
    let mut message = errors.join(". ");
    if errors.len() > 1 {
        message.push('.');
    }
    ret.error(message)
}
