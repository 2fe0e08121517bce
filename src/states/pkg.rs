//! The `pkg` states: `pkg.installed`, `pkg.latest`, `pkg.removed` and `pkg.purged`, deciding
//! from the `pkg.*` execution functions' listings what to install or remove, with Salt's
//! comments and `{name: {old, new}}` changes. `refresh` refreshes only when asked (Salt also
//! refreshes on a minion's first package state).

use super::{StateCall, StateContext, StateError, StateFunction, StateResult};
use crate::event::{Value, map_get};
use crate::py::value::py_str;

/// `pkg.installed`.
pub(super) const INSTALLED: StateFunction = StateFunction {
    name: "pkg.installed",
    required: &[],
    run: |call, ctx| Box::pin(installed(call, ctx)),
    mod_watch: None,
};

/// `pkg.latest`.
pub(super) const LATEST: StateFunction = StateFunction {
    name: "pkg.latest",
    required: &[],
    run: |call, ctx| Box::pin(latest(call, ctx)),
    mod_watch: None,
};

/// `pkg.removed`.
pub(super) const REMOVED: StateFunction = StateFunction {
    name: "pkg.removed",
    required: &[],
    run: |call, ctx| Box::pin(uninstall(call, ctx, "remove")),
    mod_watch: None,
};

/// `pkg.purged`.
pub(super) const PURGED: StateFunction = StateFunction {
    name: "pkg.purged",
    required: &[],
    run: |call, ctx| Box::pin(uninstall(call, ctx, "purge")),
    mod_watch: None,
};

/// The packages a state names with the version wanted: `pkgs` (names and `{name: version}`
/// maps), else `name` with `version`.
fn desired(call: &StateCall) -> Vec<(String, Option<String>)> {
    match call.arg("pkgs") {
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::Map(entries) if !entries.is_empty() => (
                    py_str(&entries[0].0).into_owned(),
                    Some(&entries[0].1)
                        .filter(|v| !v.is_nil())
                        .map(|v| py_str(v).into_owned()),
                ),
                other => (py_str(other).into_owned(), None),
            })
            .collect(),
        _ => vec![(call.name.clone(), call.arg_str("version"))],
    }
}

/// `name` or `name=version` as Salt names a wanted package in its comments.
fn shown(name: &str, version: Option<&str>) -> String {
    match version {
        None | Some("") => name.to_owned(),
        Some(v) if v.starts_with(['<', '>', '=']) => format!("{name}{v}"),
        Some(v) => format!("{name}={v}"),
    }
}

/// The installed versions of each package (`pkg.list_pkgs versions_as_list=True`).
async fn installed_versions(
    ctx: &StateContext,
    removed: bool,
) -> Result<Vec<(String, Vec<String>)>, StateError> {
    let mut kwargs = vec![("versions_as_list".to_owned(), Value::Boolean(true))];
    if removed {
        kwargs.push(("removed".to_owned(), Value::Boolean(true)));
    }
    let listed = ctx.call("pkg.list_pkgs", Vec::new(), kwargs).await?.ret;
    Ok(listed
        .as_map()
        .map(|entries| {
            entries
                .iter()
                .map(|(name, versions)| {
                    let versions = versions
                        .as_array()
                        .map(|vs| vs.iter().map(|v| py_str(v).into_owned()).collect())
                        .unwrap_or_default();
                    (py_str(name).into_owned(), versions)
                })
                .collect()
        })
        .unwrap_or_default())
}

fn versions_of<'a>(listing: &'a [(String, Vec<String>)], name: &str) -> &'a [String] {
    listing
        .iter()
        .find(|(n, _)| n == name)
        .map_or(&[], |(_, v)| v.as_slice())
}

/// Whether an installed version satisfies the one wanted (exactly, `=` prefixes aside, or as
/// a glob).
fn fulfills(installed: &[String], wanted: &str) -> bool {
    let wanted = wanted.trim_start_matches('=');
    installed
        .iter()
        .any(|v| v == wanted || (wanted.contains('*') && crate::py::fnmatch::fnmatch(v, wanted)))
}

fn change(old: &str, new: &str) -> Value {
    Value::Map(vec![
        (Value::from("new"), Value::from(new)),
        (Value::from("old"), Value::from(old)),
    ])
}

fn text_list(names: &[String]) -> Value {
    Value::Array(names.iter().map(|n| Value::from(n.as_str())).collect())
}

/// `pkg.latest_version` of `names` as one map.
async fn latest_versions(
    ctx: &StateContext,
    names: &[String],
    refresh: Option<bool>,
) -> Result<Vec<(String, String)>, StateError> {
    if names.is_empty() {
        return Ok(Vec::new());
    }
    let kwargs = refresh
        .map(|r| vec![("refresh".to_owned(), Value::Boolean(r))])
        .unwrap_or_default();
    let answer = ctx
        .call(
            "pkg.latest_version",
            text_list(names).as_array().cloned().unwrap_or_default(),
            kwargs,
        )
        .await?
        .ret;
    Ok(match &answer {
        Value::Map(_) => names
            .iter()
            .map(|n| {
                (
                    n.clone(),
                    map_get(&answer, n)
                        .map(|v| py_str(v).into_owned())
                        .unwrap_or_default(),
                )
            })
            .collect(),
        single => vec![(names[0].clone(), py_str(single).into_owned())],
    })
}

async fn installed(call: &StateCall, ctx: &StateContext) -> Result<StateResult, StateError> {
    if matches!(call.arg("pkgs"), Some(Value::Array(items)) if items.is_empty()) {
        return Ok(StateResult::new(
            call,
            Some(true),
            "No packages to install provided",
        ));
    }
    let refresh = call.arg_bool("refresh", false);
    let mut desired = desired(call);
    let current = match installed_versions(ctx, false).await {
        Ok(current) => current,
        Err(err) => return Ok(StateResult::new(call, Some(false), err.to_string())),
    };
    // "latest" means the candidate, or what is installed when nothing is newer.
    let wants_latest: Vec<String> = desired
        .iter()
        .filter(|(_, v)| v.as_deref() == Some("latest"))
        .map(|(n, _)| n.clone())
        .collect();
    for (name, latest) in latest_versions(ctx, &wants_latest, Some(refresh)).await? {
        let resolved = if latest.is_empty() {
            versions_of(&current, &name).last().cloned()
        } else {
            Some(latest)
        };
        if let Some(slot) = desired.iter_mut().find(|(n, _)| *n == name) {
            slot.1 = resolved;
        }
    }
    let mut targets = Vec::new();
    let mut version_spec = false;
    for (name, version) in &desired {
        let have = versions_of(&current, name);
        match version {
            _ if have.is_empty() => targets.push((name.clone(), version.clone())),
            None => {}
            Some(wanted) => {
                version_spec = true;
                if !fulfills(have, wanted) {
                    targets.push((name.clone(), version.clone()));
                }
            }
        }
    }
    if targets.is_empty() {
        let comment = if version_spec {
            "All specified packages are already installed and are at the desired version"
        } else {
            "All specified packages are already installed"
        };
        return Ok(StateResult::new(call, Some(true), comment));
    }
    let names: Vec<String> = targets.iter().map(|(n, _)| n.clone()).collect();
    if call.test {
        let unversioned: Vec<String> = targets
            .iter()
            .filter(|(_, v)| v.is_none())
            .map(|(n, _)| n.clone())
            .collect();
        let available = latest_versions(ctx, &unversioned, None).await?;
        let changes = targets
            .iter()
            .map(|(name, version)| {
                let new = available
                    .iter()
                    .find(|(n, _)| n == name)
                    .map(|(_, v)| v.clone())
                    .or_else(|| version.clone())
                    .filter(|v| !v.is_empty())
                    .unwrap_or_else(|| "installed".to_owned());
                (Value::from(name.as_str()), change("", &new))
            })
            .collect();
        return Ok(StateResult::new(
            call,
            None,
            format!(
                "The following packages would be installed/updated: {}",
                names.join(", ")
            ),
        )
        .with_changes(Value::Map(changes)));
    }
    let pkgs = Value::Array(
        targets
            .iter()
            .map(|(name, version)| {
                Value::Map(vec![(
                    Value::from(name.as_str()),
                    version.as_deref().map_or(Value::Nil, Value::from),
                )])
            })
            .collect(),
    );
    let installed = ctx
        .call(
            "pkg.install",
            Vec::new(),
            vec![
                ("pkgs".to_owned(), pkgs),
                ("refresh".to_owned(), Value::Boolean(refresh)),
            ],
        )
        .await;
    let changes = match installed {
        Ok(done) => done.ret,
        Err(err) => {
            return Ok(StateResult::new(call, Some(false), without_changes(&err.0)));
        }
    };
    let after = installed_versions(ctx, false).await?;
    let mut comment = Vec::new();
    let (mut modified, mut not_modified, mut failed) = (Vec::new(), Vec::new(), Vec::new());
    for (name, version) in &desired {
        let have = versions_of(&after, name);
        let ok = !have.is_empty() && version.as_deref().is_none_or(|v| fulfills(have, v));
        let targeted = names.contains(name);
        let entry = shown(name, version.as_deref());
        match (ok, targeted) {
            (true, true) => modified.push(entry),
            (true, false) => not_modified.push(entry),
            (false, true) => failed.push(entry),
            (false, false) => {}
        }
    }
    if !modified.is_empty() {
        let summary = modified.join(", ");
        comment.push(if summary.len() < 20 {
            format!("The following packages were installed/updated: {summary}")
        } else if modified.len() > 1 {
            format!(
                "{} targeted packages were installed/updated.",
                modified.len()
            )
        } else {
            "1 targeted package was installed/updated.".to_owned()
        });
    }
    if !not_modified.is_empty() {
        comment.push(if not_modified.len() <= 20 {
            format!(
                "The following packages were already installed: {}",
                not_modified.join(", ")
            )
        } else {
            format!(
                "{} targeted packages were already installed",
                not_modified.len()
            )
        });
    }
    let mut result = true;
    if !failed.is_empty() {
        comment.insert(
            0,
            format!(
                "The following packages failed to install/update: {}",
                failed.join(", ")
            ),
        );
        result = false;
    }
    Ok(StateResult::new(call, Some(result), comment.join("\n")).with_changes(changes))
}

/// Salt's comment for a failed `pkg.install`: the error with the changes left out of its
/// details (the listing after the failure says what changed), or the error as it is.
fn without_changes(message: &str) -> String {
    const DETAILS: &str = "Additional info follows:\n\n";
    match (message.split_once(DETAILS), message.find("\nerrors:\n")) {
        (Some((head, _)), Some(errors)) => format!("{head}{DETAILS}{}", &message[errors + 1..]),
        _ => format!("An error was encountered while installing package(s): {message}"),
    }
}

async fn latest(call: &StateCall, ctx: &StateContext) -> Result<StateResult, StateError> {
    let names: Vec<String> = desired(call).into_iter().map(|(n, _)| n).collect();
    let from_pkgs = call.arg("pkgs").is_some();
    let refresh = call.arg_bool("refresh", false);
    let current = ctx
        .call(
            "pkg.version",
            text_list(&names).as_array().cloned().unwrap_or_default(),
            Vec::new(),
        )
        .await?
        .ret;
    let current_of = |name: &str| match &current {
        Value::Map(_) => map_get(&current, name)
            .map(|v| py_str(v).into_owned())
            .unwrap_or_default(),
        single => py_str(single).into_owned(),
    };
    let available = latest_versions(ctx, &names, Some(refresh)).await?;
    let mut targets = Vec::new();
    let mut problems = Vec::new();
    for (name, avail) in &available {
        if !avail.is_empty() {
            targets.push((name.clone(), avail.clone()));
        } else if current_of(name).is_empty() {
            problems.push(format!("No information found for '{name}'."));
        }
    }
    if !problems.is_empty() {
        return Ok(StateResult::new(call, Some(false), problems.join(" ")));
    }
    if targets.is_empty() {
        let mut sorted = names.clone();
        sorted.sort();
        let comment = match names.len() {
            1 => format!("Package {} is already up-to-date", names[0]),
            n if n > 10 => format!("All {n} packages are up-to-date."),
            _ => format!("All packages are up-to-date ({}).", sorted.join(", ")),
        };
        return Ok(StateResult::new(call, Some(true), comment));
    }
    targets.sort();
    let target_names: Vec<String> = targets.iter().map(|(n, _)| n.clone()).collect();
    let mut up_to_date: Vec<String> = if from_pkgs {
        names
            .iter()
            .filter(|n| !target_names.contains(n))
            .cloned()
            .collect()
    } else {
        Vec::new()
    };
    up_to_date.sort();
    if call.test {
        let mut comment = vec![format!(
            "The following packages would be installed/upgraded: {}",
            target_names.join(", ")
        )];
        if !up_to_date.is_empty() {
            comment.push(if up_to_date.len() <= 10 {
                format!(
                    "The following packages are already up-to-date: {}",
                    up_to_date
                        .iter()
                        .map(|n| format!("{n} ({})", current_of(n)))
                        .collect::<Vec<_>>()
                        .join(", ")
                )
            } else {
                format!("{} packages are already up-to-date", up_to_date.len())
            });
        }
        let changes = targets
            .iter()
            .map(|(name, avail)| (Value::from(name.as_str()), change(&current_of(name), avail)))
            .collect();
        return Ok(
            StateResult::new(call, None, comment.join("\n")).with_changes(Value::Map(changes))
        );
    }
    let installed = ctx
        .call(
            "pkg.install",
            Vec::new(),
            vec![
                ("pkgs".to_owned(), text_list(&target_names)),
                ("refresh".to_owned(), Value::Boolean(false)),
            ],
        )
        .await;
    let changes = match installed {
        Ok(done) => done.ret,
        Err(err) => {
            return Ok(StateResult::new(
                call,
                Some(false),
                format!(
                    "An error was encountered while installing package(s): {}",
                    err.0
                ),
            ));
        }
    };
    let already = |comment: &mut String, sep: &str| {
        if !up_to_date.is_empty() {
            comment.push_str(sep);
            comment.push_str(&if up_to_date.len() <= 10 {
                format!(
                    "The following packages were already up-to-date: {}",
                    up_to_date.join(", ")
                )
            } else {
                format!("{} packages were already up-to-date ", up_to_date.len())
            });
        }
    };
    if !crate::py::value::truthy(&changes) {
        let mut comment = match targets.len() {
            1 => format!("Package {} failed to update.", target_names[0]),
            n if n > 10 => {
                format!("{n} targeted packages failed to update. See debug log for details.")
            }
            _ => format!(
                "The following targeted packages failed to update. See debug log for details: ({}).",
                target_names.join(", ")
            ),
        };
        already(&mut comment, " ");
        return Ok(StateResult::new(call, Some(false), comment).with_changes(changes));
    }
    let (mut failed, mut successful) = (Vec::new(), Vec::new());
    for (name, avail) in &targets {
        let new = map_get(&changes, name)
            .and_then(|c| map_get(c, "new"))
            .map(|v| py_str(v).into_owned());
        match new {
            Some(new) if new.split(',').any(|v| v == avail) => successful.push(name.clone()),
            _ => failed.push(name.clone()),
        }
    }
    let mut comment = Vec::new();
    if !failed.is_empty() {
        comment.push(format!(
            "The following packages failed to update: {}",
            failed.join(", ")
        ));
    }
    if !successful.is_empty() {
        comment.push(format!(
            "The following packages were successfully installed/upgraded: {}",
            successful.join(", ")
        ));
    }
    let mut comment = comment.join(" ");
    let separator = if comment.is_empty() { "" } else { " " };
    already(&mut comment, separator);
    Ok(StateResult::new(call, Some(failed.is_empty()), comment).with_changes(changes))
}

/// `pkg.removed` (`action` "remove") and `pkg.purged` ("purge").
async fn uninstall(
    call: &StateCall,
    ctx: &StateContext,
    action: &str,
) -> Result<StateResult, StateError> {
    let wanted = desired(call);
    let current = installed_versions(ctx, false).await?;
    let mut targets: Vec<String> = wanted
        .iter()
        .filter(|(name, version)| {
            let have = versions_of(&current, name);
            !have.is_empty() && version.as_deref().is_none_or(|v| fulfills(have, v))
        })
        .map(|(name, _)| name.clone())
        .collect();
    let purge = action == "purge";
    if targets.is_empty() && !purge {
        let versioned = wanted.iter().any(|(_, v)| v.is_some());
        return Ok(StateResult::new(
            call,
            Some(true),
            format!(
                "All specified packages{} are already absent",
                if versioned { " (versions)" } else { "" }
            ),
        ));
    }
    if purge {
        let removed = installed_versions(ctx, true).await?;
        targets.extend(
            wanted
                .iter()
                .filter(|(name, _)| !versions_of(&removed, name).is_empty())
                .map(|(name, _)| name.clone()),
        );
    }
    targets.sort();
    if targets.is_empty() {
        return Ok(StateResult::new(
            call,
            Some(true),
            "None of the targeted packages are installed or partially installed",
        ));
    }
    if call.test {
        let changes = targets
            .iter()
            .map(|name| {
                (
                    Value::from(name.as_str()),
                    change("", &format!("{action}d")),
                )
            })
            .collect();
        return Ok(StateResult::new(
            call,
            None,
            format!(
                "The following packages will be {action}d: {}.",
                targets.join(", ")
            ),
        )
        .with_changes(Value::Map(changes)));
    }
    let mut kwargs = Vec::new();
    let mut args = Vec::new();
    match call.arg("pkgs") {
        Some(pkgs) => kwargs.push(("pkgs".to_owned(), pkgs.clone())),
        None => args.push(Value::from(call.name.as_str())),
    }
    let changes = ctx.call(&format!("pkg.{action}"), args, kwargs).await?.ret;
    let after = installed_versions(ctx, false).await?;
    let mut failed: Vec<String> = wanted
        .iter()
        .filter(|(name, _)| !versions_of(&after, name).is_empty())
        .map(|(name, _)| name.clone())
        .collect();
    if purge {
        let removed = installed_versions(ctx, true).await?;
        failed.extend(
            wanted
                .iter()
                .filter(|(name, _)| !versions_of(&removed, name).is_empty())
                .map(|(name, _)| name.clone()),
        );
    }
    failed.sort();
    if !failed.is_empty() {
        return Ok(StateResult::new(
            call,
            Some(false),
            format!(
                "The following packages failed to {action}: {}.",
                failed.join(", ")
            ),
        )
        .with_changes(changes));
    }
    let mut not_installed: Vec<String> = wanted
        .iter()
        .map(|(n, _)| n.clone())
        .filter(|n| !targets.contains(n))
        .collect();
    not_installed.sort();
    let comment = if not_installed.is_empty() {
        format!("All targeted packages were {action}d.")
    } else {
        format!(
            "The following packages were not installed: {} The following packages were {action}d: {}.",
            not_installed.join(", "),
            targets.join(", ")
        )
    };
    Ok(StateResult::new(call, Some(true), comment).with_changes(changes))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_failed_install_reports_apts_errors_without_the_changes() {
        let message = "Problem encountered installing package(s). Additional info follows:\n\nchanges:\n    ----------\nerrors:\n    - E: Unable to locate package nope";
        assert_eq!(
            without_changes(message),
            "Problem encountered installing package(s). Additional info follows:\n\nerrors:\n    - E: Unable to locate package nope"
        );
        assert_eq!(
            without_changes("boom"),
            "An error was encountered while installing package(s): boom"
        );
    }

    #[test]
    fn wanted_packages_are_shown_with_their_versions() {
        assert_eq!(shown("sl", None), "sl");
        assert_eq!(shown("sl", Some("5.02")), "sl=5.02");
        assert_eq!(shown("sl", Some(">=5")), "sl>=5");
        assert!(fulfills(&["5.02-1".into()], "=5.02-1"));
        assert!(fulfills(&["5.02-1".into()], "5.02*"));
        assert!(!fulfills(&["5.02-1".into()], "5.03"));
    }
}
