//! The `pkg` module on Debian, as Salt's `aptpkg`: `dpkg-query` says what is installed,
//! `apt-get` installs, removes and refreshes, `apt-cache policy` names the candidates; every
//! tool runs with the environment Salt gives dpkg (no questions, old configuration kept).
//! Returns are Salt's: `{name: version}` listings and `{name: {old, new}}` changes; a failing
//! `apt-get` is Salt's "Problem encountered …" error with the changes and apt's errors.

use std::cmp::Ordering;
use std::collections::BTreeMap;

use super::cmd::run_words;
use super::{Call, Context, FunctionError, Outcome, bind};
use crate::event::Value;
use crate::signature::{Signature, text, truthy};

/// The environment Salt's `aptpkg` sets for every tool it runs.
const DPKG_ENV: &[(&str, &str)] = &[
    ("APT_LISTBUGS_FRONTEND", "none"),
    ("APT_LISTCHANGES_FRONTEND", "none"),
    ("DEBIAN_FRONTEND", "noninteractive"),
    ("UCF_FORCE_CONFFOLD", "1"),
];

/// Where apt keeps its package lists, whose age `cache_valid_time` is measured by.
const APT_LISTS: &str = "/var/lib/apt/lists";

pub(super) const INSTALL: Signature = Signature {
    name: "pkg.install",
    summary: "Installs packages with apt-get; what changed, {name: {old, new}}",
    params: &["name", "refresh", "pkgs", "version"],
    required: 0,
    kwargs: true,
    usage: "pkg.install NAME [version=VERSION] [refresh=True] | pkg.install pkgs='[NAME, {NAME: VERSION}]'",
};

pub(super) const REMOVE: Signature = Signature {
    name: "pkg.remove",
    summary: "Removes packages with apt-get, keeping their configuration; what changed",
    params: &["name", "pkgs"],
    required: 0,
    kwargs: true,
    usage: "pkg.remove NAME[,NAME…] | pkg.remove pkgs='[NAME, …]'",
};

pub(super) const PURGE: Signature = Signature {
    name: "pkg.purge",
    summary: "Removes packages with their configuration; what changed, removed and installed",
    usage: "pkg.purge NAME[,NAME…] | pkg.purge pkgs='[NAME, …]'",
    ..REMOVE
};

pub(super) const VERSION: Signature = Signature {
    name: "pkg.version",
    summary: "The installed version of a package ('' if absent); a map for several",
    params: &[],
    required: 0,
    kwargs: true,
    usage: "pkg.version NAME [NAME …]",
};

pub(super) const LATEST_VERSION: Signature = Signature {
    name: "pkg.latest_version",
    summary: "The version apt would install or upgrade to ('' if up to date); a map for several",
    params: &[],
    required: 0,
    kwargs: true,
    usage: "pkg.latest_version NAME [NAME …] [refresh=True]",
};

pub(super) const LIST_PKGS: Signature = Signature {
    name: "pkg.list_pkgs",
    summary: "The installed packages, {name: version}",
    params: &["versions_as_list", "removed", "purge_desired"],
    required: 0,
    kwargs: true,
    usage: "pkg.list_pkgs [versions_as_list=False] [removed=False] [purge_desired=False]",
};

pub(super) const REFRESH_DB: Signature = Signature {
    name: "pkg.refresh_db",
    summary: "Updates apt's package lists; each source: True (got), None (unchanged), False (failed)",
    params: &["cache_valid_time", "failhard"],
    required: 0,
    kwargs: true,
    usage: "pkg.refresh_db [cache_valid_time=SECONDS] [failhard=False]",
};

/// Packages by dpkg's selection and status, each name with its versions, sorted.
#[derive(Debug, Default, Clone, PartialEq)]
pub(super) struct Packages {
    /// Wanted (or held) and installed.
    pub installed: BTreeMap<String, Vec<String>>,
    /// Removed with their configuration left.
    pub removed: BTreeMap<String, Vec<String>>,
    /// Marked for purging but installed still (another package needs them).
    pub purge_desired: BTreeMap<String, Vec<String>>,
}

/// Reads `dpkg-query -W --showformat '${Status} ${Package} ${Version} ${Architecture}\n'` as
/// Salt does: a package of a foreign architecture is `name:arch`; lines that do not fit are
/// skipped.
pub(super) fn parse_dpkg_query(output: &str, native_arch: &str) -> Packages {
    let mut packages = Packages::default();
    for line in output.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let [want, _, status, name, version, arch, ..] = cols[..] else {
            continue;
        };
        let name = if arch != "all" && !native_arch.is_empty() && arch != native_arch {
            format!("{name}:{arch}")
        } else {
            name.to_owned()
        };
        // Salt's tests, in Salt's order: "deinstall" contains "install".
        let list = if (want.contains("install") || want.contains("hold"))
            && status.contains("installed")
        {
            &mut packages.installed
        } else if want.contains("deinstall") {
            &mut packages.removed
        } else if want.contains("purge") && status == "installed" {
            &mut packages.purge_desired
        } else {
            continue;
        };
        let versions = list.entry(name).or_default();
        if !versions.iter().any(|v| v == version) {
            versions.push(version.to_owned());
            versions.sort();
        }
    }
    packages
}

/// The packages dpkg knows, as [`parse_dpkg_query`] reads them.
pub(super) async fn packages() -> Result<Packages, FunctionError> {
    let arch = run_words(&["dpkg", "--print-architecture"], DPKG_ENV).await?;
    let listed = run_words(
        &[
            "dpkg-query",
            "--showformat",
            "${Status} ${Package} ${Version} ${Architecture}\n",
            "-W",
        ],
        DPKG_ENV,
    )
    .await?;
    Ok(parse_dpkg_query(&listed.stdout, arch.stdout.trim()))
}

/// A listing as Salt returns it: versions as a list, or joined by commas.
fn listing(packages: &BTreeMap<String, Vec<String>>, versions_as_list: bool) -> Value {
    Value::Map(
        packages
            .iter()
            .map(|(name, versions)| {
                let versions = if versions_as_list {
                    Value::Array(versions.iter().map(|v| Value::from(v.as_str())).collect())
                } else {
                    Value::from(versions.join(","))
                };
                (Value::from(name.as_str()), versions)
            })
            .collect(),
    )
}

/// Installed packages (and those whose purge waits), one version string each.
fn flat(packages: &Packages) -> BTreeMap<String, String> {
    packages
        .purge_desired
        .iter()
        .chain(&packages.installed)
        .map(|(name, versions)| (name.clone(), versions.join(",")))
        .collect()
}

/// Salt's `compare_dicts`: `{name: {old, new}}` for each name added, removed or changed, a
/// removed one with `new` first as Salt's dict has it.
pub(super) fn compare(old: &BTreeMap<String, String>, new: &BTreeMap<String, String>) -> Value {
    let mut names: Vec<&String> = old.keys().chain(new.keys()).collect();
    names.sort();
    names.dedup();
    let pair = |first: (&str, &str), second: (&str, &str)| {
        Value::Map(vec![
            (Value::from(first.0), Value::from(first.1)),
            (Value::from(second.0), Value::from(second.1)),
        ])
    };
    Value::Map(
        names
            .into_iter()
            .filter_map(|name| {
                let change = match (old.get(name), new.get(name)) {
                    (None, Some(new)) => pair(("old", ""), ("new", new)),
                    (Some(old), None) => pair(("new", ""), ("old", old)),
                    (Some(old), Some(new)) if old != new => pair(("old", old), ("new", new)),
                    _ => return None,
                };
                Some((Value::from(name.as_str()), change))
            })
            .collect(),
    )
}

/// Salt's `CommandExecutionError` with `info`: the message, then the info as the nested
/// outputter shows it.
fn problem(message: &str, errors: Vec<String>, changes: Value) -> FunctionError {
    let info = Value::Map(vec![
        (
            Value::from("errors"),
            Value::Array(errors.into_iter().map(Value::from).collect()),
        ),
        (Value::from("changes"), changes),
    ]);
    let shown = crate::output::outputter::Outputter::Nested.render(&info, false);
    FunctionError::Invalid(format!(
        "{message}. Additional info follows:\n\n{}",
        shown.trim_end()
    ))
}

/// The packages a call names, each with the version wanted: `pkgs` (names and one-key
/// `{name: version}` maps) or else `name` (names separated by commas), to which `version`
/// applies when it names one package.
pub(super) fn targets(
    name: Option<&Value>,
    pkgs: Option<&Value>,
    version: Option<&Value>,
) -> Result<Vec<(String, Option<String>)>, FunctionError> {
    let version_text = |value: Option<&Value>| value.filter(|v| !v.is_nil()).map(text);
    match pkgs.filter(|v| !v.is_nil()) {
        Some(Value::Array(items)) => items
            .iter()
            .map(|item| match item {
                Value::Map(entries) if entries.len() == 1 => {
                    Ok((text(&entries[0].0), version_text(Some(&entries[0].1))))
                }
                Value::Map(_) | Value::Array(_) => Err(FunctionError::Invalid(
                    "pkgs must be a list of package names and {name: version} maps".to_owned(),
                )),
                other => Ok((text(other), None)),
            })
            .collect(),
        Some(_) => Err(FunctionError::Invalid(
            "pkgs must be a list of package names and {name: version} maps".to_owned(),
        )),
        None => {
            let names: Vec<String> = name
                .filter(|v| !v.is_nil())
                .map(text)
                .unwrap_or_default()
                .split(',')
                .map(str::trim)
                .filter(|n| !n.is_empty())
                .map(str::to_owned)
                .collect();
            let version = version_text(version).filter(|_| names.len() == 1);
            Ok(names.into_iter().map(|n| (n, version.clone())).collect())
        }
    }
}

/// `apt-get -q -y` with Salt's dpkg options: keep changed configuration files, take the
/// default for the others.
fn apt_get(action: &str) -> Vec<String> {
    [
        "apt-get",
        "-q",
        "-y",
        "-o",
        "DPkg::Options::=--force-confold",
        "-o",
        "DPkg::Options::=--force-confdef",
        action,
    ]
    .map(str::to_owned)
    .to_vec()
}

/// `pkg.install`.
pub(super) async fn install(call: &Call, _: &Context) -> Result<Outcome, FunctionError> {
    let bound = bind(call, &INSTALL)?;
    let wanted = targets(
        bound.get("name"),
        bound.get("pkgs"),
        bound.get("version").or_else(|| {
            bound
                .extra
                .iter()
                .find(|(k, _)| k == "version")
                .map(|(_, v)| v)
        }),
    )?;
    if wanted.is_empty() {
        return Ok(Outcome::ok(Value::Map(Vec::new())));
    }
    let old = flat(&packages().await?);
    let mut install = apt_get("install");
    let mut downgrade = install.clone();
    // Downgrading needs --force-yes, before the action as Salt puts it.
    downgrade.insert(downgrade.len() - 1, "--force-yes".to_owned());
    for (name, version) in wanted {
        match version {
            None => install.push(name),
            Some(version) => {
                let version = version.trim_start_matches('=');
                if version.starts_with(['<', '>']) {
                    return Err(FunctionError::Invalid(format!(
                        "version comparisons such as '{version}' are not supported; name the version"
                    )));
                }
                let older = old
                    .get(&name)
                    .is_some_and(|cur| compare_versions(version, cur) == Ordering::Less);
                let target = if older { &mut downgrade } else { &mut install };
                target.push(format!("{name}={version}"));
            }
        }
    }
    if bound.get("refresh").is_some_and(truthy) {
        refresh(0, false).await?;
    }
    let mut errors = Vec::new();
    for command in [install, downgrade] {
        if command.last().is_some_and(|word| word == "install") {
            continue;
        }
        let words: Vec<&str> = command.iter().map(String::as_str).collect();
        let ran = run_words(&words, DPKG_ENV).await?;
        if ran.retcode != 0 && !ran.stderr.is_empty() {
            errors.push(ran.stderr);
        }
    }
    let changes = compare(&old, &flat(&packages().await?));
    if !errors.is_empty() {
        return Err(problem(
            "Problem encountered installing package(s)",
            errors,
            changes,
        ));
    }
    Ok(Outcome::ok(changes))
}

/// `pkg.remove` (`purge` false) and `pkg.purge`.
pub(super) async fn remove(call: &Call, purge: bool) -> Result<Outcome, FunctionError> {
    let bound = bind(call, if purge { &PURGE } else { &REMOVE })?;
    let wanted = targets(bound.get("name"), bound.get("pkgs"), None)?;
    let before = packages().await?;
    let old = flat(&before);
    let mut chosen: Vec<String> = wanted
        .iter()
        .map(|(name, _)| name)
        .filter(|name| old.contains_key(*name))
        .cloned()
        .collect();
    if purge {
        chosen.extend(
            wanted
                .iter()
                .map(|(name, _)| name)
                .filter(|name| before.removed.contains_key(*name))
                .cloned(),
        );
    }
    if chosen.is_empty() {
        return Ok(Outcome::ok(Value::Map(Vec::new())));
    }
    let mut words = vec![
        "apt-get",
        "-q",
        "-y",
        if purge { "purge" } else { "remove" },
    ];
    words.extend(chosen.iter().map(String::as_str));
    let ran = run_words(&words, DPKG_ENV).await?;
    let after = packages().await?;
    let mut changes = compare(&old, &flat(&after));
    if purge {
        let removed = |p: &Packages| -> BTreeMap<String, String> {
            p.removed
                .iter()
                .map(|(name, versions)| (name.clone(), versions.join(",")))
                .collect()
        };
        changes = Value::Map(vec![
            (
                Value::from("removed"),
                compare(&removed(&before), &removed(&after)),
            ),
            (Value::from("installed"), changes),
        ]);
    }
    if ran.retcode != 0 && !ran.stderr.is_empty() {
        return Err(problem(
            "Problem encountered removing package(s)",
            vec![ran.stderr],
            changes,
        ));
    }
    Ok(Outcome::ok(changes))
}

/// The names of a `*names` function: its positional arguments as text.
fn names(call: &Call) -> Vec<String> {
    call.args.args.iter().map(text).collect()
}

/// One value for one name, a map for several, as Salt's `*names` functions answer.
fn one_or_map(mut pairs: Vec<(String, String)>) -> Value {
    if pairs.len() == 1 {
        return Value::from(pairs.remove(0).1);
    }
    Value::Map(
        pairs
            .into_iter()
            .map(|(k, v)| (Value::from(k), Value::from(v)))
            .collect(),
    )
}

/// A keyword argument of a `*names` function.
fn kwarg<'a>(call: &'a Call, key: &str) -> Option<&'a Value> {
    call.args
        .kwargs
        .iter()
        .find(|(k, _)| k == key)
        .map(|(_, v)| v)
}

/// `pkg.version`.
pub(super) async fn version(call: &Call) -> Result<Outcome, FunctionError> {
    let names = names(call);
    if names.is_empty() {
        return Ok(Outcome::ok(""));
    }
    let installed = flat(&packages().await?);
    Ok(Outcome::ok(one_or_map(
        names
            .into_iter()
            .map(|name| {
                let version = installed.get(&name).cloned().unwrap_or_default();
                (name, version)
            })
            .collect(),
    )))
}

/// Candidates from `apt-cache policy`: each package's `Candidate:` (`(none)` is '').
pub(super) fn parse_policy(output: &str, names: &[String]) -> BTreeMap<String, String> {
    let mut candidates = BTreeMap::new();
    let mut current: Option<String> = None;
    for line in output.lines().map(str::trim) {
        if let Some(package) = line.strip_suffix(':')
            && !line.starts_with("Version table")
        {
            if names.iter().any(|n| n == package) {
                current = Some(package.to_owned());
            }
        } else if line.starts_with("Candidate")
            && let Some(package) = &current
        {
            let candidate = line
                .split_whitespace()
                .nth(1)
                .filter(|c| !c.eq_ignore_ascii_case("(none)"))
                .unwrap_or_default();
            candidates.insert(package.clone(), candidate.to_owned());
        }
    }
    candidates
}

/// `pkg.latest_version`: refreshes first unless `refresh=False`.
pub(super) async fn latest_version(call: &Call) -> Result<Outcome, FunctionError> {
    let names = names(call);
    if names.is_empty() {
        return Ok(Outcome::ok(""));
    }
    let installed = packages().await?;
    if kwarg(call, "refresh").is_none_or(truthy) {
        refresh(0, false).await?;
    }
    let mut words = vec!["apt-cache", "-q", "policy"];
    words.extend(names.iter().map(String::as_str));
    let ran = run_words(&words, DPKG_ENV).await?;
    let candidates = parse_policy(&ran.stdout, &names);
    Ok(Outcome::ok(one_or_map(
        names
            .into_iter()
            .map(|name| {
                let candidate = candidates.get(&name).cloned().unwrap_or_default();
                let current = installed.installed.get(&name);
                // An installed version at or above the candidate: nothing newer.
                let newer = match current {
                    None => candidate,
                    Some(versions)
                        if versions
                            .iter()
                            .all(|v| compare_versions(v, &candidate) == Ordering::Less) =>
                    {
                        candidate
                    }
                    Some(_) => String::new(),
                };
                (name, newer)
            })
            .collect(),
    )))
}

/// What `apt-get update` said of each source: fetched (True), failed or ignored (False),
/// unchanged (None), in the order it said it.
pub(super) fn parse_update(output: &str) -> Vec<(String, Option<bool>)> {
    let mut sources: Vec<(String, Option<bool>)> = Vec::new();
    for line in output.lines() {
        let cols: Vec<&str> = line.split_whitespace().collect();
        let Some(first) = cols.first() else {
            continue;
        };
        let mut ident = cols[1..].join(" ");
        let outcome = if first.contains("Get") {
            // The size at the end: " [151 kB]".
            if ident.ends_with("B]")
                && let Some(start) = ident.rfind(" [")
            {
                ident.truncate(start);
            }
            Some(true)
        } else if first.contains("Ign") || first.contains("Err") {
            Some(false)
        } else if first.contains("Hit") {
            None
        } else {
            continue;
        };
        match sources.iter_mut().find(|(known, _)| *known == ident) {
            Some((_, slot)) => *slot = outcome,
            None => sources.push((ident, outcome)),
        }
    }
    sources
}

/// Runs `apt-get -q update` unless the lists are younger than `cache_valid_time` seconds.
async fn refresh(
    cache_valid_time: u64,
    failhard: bool,
) -> Result<Vec<(String, Option<bool>)>, FunctionError> {
    if cache_valid_time > 0
        && let Ok(modified) = std::fs::metadata(APT_LISTS).and_then(|m| m.modified())
        && modified
            .elapsed()
            .is_ok_and(|age| age.as_secs() < cache_valid_time)
    {
        return Ok(Vec::new());
    }
    let ran = run_words(&["apt-get", "-q", "update"], DPKG_ENV).await?;
    if ran.retcode != 0 {
        return Err(FunctionError::Invalid(ran.stderr));
    }
    let sources = parse_update(&ran.stdout);
    let failed: Vec<&str> = ran
        .stdout
        .lines()
        .filter(|line| line.starts_with("Err"))
        .filter_map(|line| line.split_once(' ').map(|(_, rest)| rest))
        .collect();
    if failhard && !failed.is_empty() {
        return Err(FunctionError::Invalid(format!(
            "Error getting repos: {}",
            failed.join(", ")
        )));
    }
    Ok(sources)
}

/// `pkg.refresh_db`.
pub(super) async fn refresh_db(call: &Call) -> Result<Outcome, FunctionError> {
    let bound = bind(call, &REFRESH_DB)?;
    let cache_valid_time = match bound.get("cache_valid_time").filter(|v| !v.is_nil()) {
        None => 0,
        Some(value) => value
            .as_u64()
            .or_else(|| text(value).parse().ok())
            .ok_or_else(|| {
                FunctionError::Invalid(format!(
                    "cache_valid_time must be a number of seconds, not {}",
                    text(value)
                ))
            })?,
    };
    let sources = refresh(cache_valid_time, bound.get("failhard").is_some_and(truthy)).await?;
    Ok(Outcome::ok(Value::Map(
        sources
            .into_iter()
            .map(|(ident, outcome)| (Value::from(ident), outcome.map_or(Value::Nil, Value::from)))
            .collect(),
    )))
}

/// `pkg.list_pkgs`.
pub(super) async fn list_pkgs(call: &Call) -> Result<Outcome, FunctionError> {
    let bound = bind(call, &LIST_PKGS)?;
    let flag = |key| bound.get(key).is_some_and(truthy);
    let packages = packages().await?;
    let chosen = if flag("removed") {
        packages.removed
    } else if flag("purge_desired") {
        packages.purge_desired
    } else {
        let mut all = packages.purge_desired;
        all.extend(packages.installed);
        all
    };
    Ok(Outcome::ok(listing(&chosen, flag("versions_as_list"))))
}

/// dpkg's ordering of versions (`dpkg --compare-versions`): epoch, then the upstream
/// version, then the Debian revision, each compared by dpkg's rules (`~` before anything,
/// even the end; letters before other characters; digit runs as numbers).
pub(crate) fn compare_versions(a: &str, b: &str) -> Ordering {
    fn split(version: &str) -> (u64, &str, &str) {
        let (epoch, rest) = match version.split_once(':') {
            Some((epoch, rest)) if epoch.bytes().all(|b| b.is_ascii_digit()) => {
                (epoch.parse().unwrap_or(0), rest)
            }
            _ => (0, version),
        };
        match rest.rsplit_once('-') {
            Some((upstream, revision)) => (epoch, upstream, revision),
            None => (epoch, rest, ""),
        }
    }
    fn order(c: Option<u8>) -> i32 {
        match c {
            None => 0,
            Some(c) if c.is_ascii_digit() => 0,
            Some(c) if c.is_ascii_alphabetic() => i32::from(c),
            Some(b'~') => -1,
            Some(c) => i32::from(c) + 256,
        }
    }
    /// A run of digits without its leading zeros: the rest from there, and the run's length.
    fn digits(s: &[u8]) -> (&[u8], usize) {
        let s = &s[s.iter().take_while(|c| **c == b'0').count()..];
        let n = s.iter().take_while(|c| c.is_ascii_digit()).count();
        (s, n)
    }
    fn part(a: &str, b: &str) -> Ordering {
        let (mut a, mut b) = (a.as_bytes(), b.as_bytes());
        while !a.is_empty() || !b.is_empty() {
            while a.first().is_some_and(|c| !c.is_ascii_digit())
                || b.first().is_some_and(|c| !c.is_ascii_digit())
            {
                let (ac, bc) = (order(a.first().copied()), order(b.first().copied()));
                if ac != bc {
                    return ac.cmp(&bc);
                }
                a = a.get(1..).unwrap_or_default();
                b = b.get(1..).unwrap_or_default();
            }
            let ((a_rest, a_len), (b_rest, b_len)) = (digits(a), digits(b));
            let by_number = a_len
                .cmp(&b_len)
                .then_with(|| a_rest[..a_len].cmp(&b_rest[..b_len]));
            if by_number != Ordering::Equal {
                return by_number;
            }
            a = &a_rest[a_len..];
            b = &b_rest[b_len..];
        }
        Ordering::Equal
    }
    let (ea, ua, ra) = split(a);
    let (eb, ub, rb) = split(b);
    ea.cmp(&eb)
        .then_with(|| part(ua, ub))
        .then_with(|| part(ra, rb))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dpkg_query_lines_sort_into_installed_removed_and_purge_desired() {
        let output = "install ok installed sl 5.02-1+b1 amd64\n\
                      deinstall ok config-files cowsay 3.03 all\n\
                      install ok installed libc6 2.36-9 i386\n\
                      hold ok installed vim 2:9.0 amd64\n\
                      purge ok installed libfoo 1.0 amd64\n\
                      unknown ok not-installed gone 1 amd64\n\
                      garbage\n";
        let packages = parse_dpkg_query(output, "amd64");
        let names = |m: &BTreeMap<String, Vec<String>>| m.keys().cloned().collect::<Vec<_>>();
        assert_eq!(names(&packages.installed), ["libc6:i386", "sl", "vim"]);
        assert_eq!(packages.installed["vim"], ["2:9.0"]);
        assert_eq!(names(&packages.removed), ["cowsay"]);
        assert_eq!(names(&packages.purge_desired), ["libfoo"]);
    }

    #[test]
    fn changes_are_salts_compare_dicts() {
        let map = |pairs: &[(&str, &str)]| -> BTreeMap<String, String> {
            pairs
                .iter()
                .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
                .collect()
        };
        let changes = compare(
            &map(&[("gone", "1"), ("same", "2"), ("up", "1")]),
            &map(&[("new", "3"), ("same", "2"), ("up", "2")]),
        );
        assert_eq!(
            crate::py::value::repr(&changes),
            "{'gone': {'new': '', 'old': '1'}, 'new': {'old': '', 'new': '3'}, 'up': {'old': '1', 'new': '2'}}"
        );
    }

    #[test]
    fn policy_candidates_and_none() {
        let output = "sl:\n  Installed: (none)\n  Candidate: 5.02-1+b1\n  Version table:\n     5.02-1+b1 500\n\
                      nothere:\n  Installed: (none)\n  Candidate: (none)\n";
        let names = vec!["sl".to_owned(), "nothere".to_owned()];
        let candidates = parse_policy(output, &names);
        assert_eq!(candidates["sl"], "5.02-1+b1");
        assert_eq!(candidates["nothere"], "");
    }

    #[test]
    fn apt_update_lines_say_got_unchanged_or_failed() {
        let output = "Hit:1 http://deb.debian.org/debian bookworm InRelease\n\
                      Get:2 http://deb.debian.org/debian bookworm-updates InRelease [55.4 kB]\n\
                      Err:3 http://example.invalid/debian stable InRelease\n\
                      Reading package lists...\n";
        let sources = parse_update(output);
        assert_eq!(
            sources,
            [
                (
                    "http://deb.debian.org/debian bookworm InRelease".to_owned(),
                    None
                ),
                (
                    "http://deb.debian.org/debian bookworm-updates InRelease".to_owned(),
                    Some(true)
                ),
                (
                    "http://example.invalid/debian stable InRelease".to_owned(),
                    Some(false)
                ),
            ]
        );
    }

    #[test]
    fn versions_compare_as_dpkg_compares_them() {
        use Ordering::*;
        for (a, b, expected) in [
            ("1.0", "1.0", Equal),
            ("1.0", "1.1", Less),
            ("1.10", "1.9", Greater),
            ("1.0~rc1", "1.0", Less),
            ("1.0", "1.0+b1", Less),
            ("1:0.1", "2.0", Greater),
            ("5.02-1+b1", "5.02-1", Greater),
            ("1.0-1", "1.0-10", Less),
            ("1.0a", "1.0+", Less),
            ("01", "1", Equal),
        ] {
            assert_eq!(compare_versions(a, b), expected, "{a} vs {b}");
        }
    }

    #[test]
    fn targets_come_from_pkgs_or_comma_separated_names() {
        let pkgs = crate::salt_yaml::load("[sl, {cowsay: '3.03'}]").unwrap();
        assert_eq!(
            targets(None, Some(&pkgs), None).unwrap(),
            [
                ("sl".to_owned(), None),
                ("cowsay".to_owned(), Some("3.03".to_owned()))
            ]
        );
        assert_eq!(
            targets(Some(&Value::from("sl")), None, Some(&Value::from("5.02"))).unwrap(),
            [("sl".to_owned(), Some("5.02".to_owned()))]
        );
        assert_eq!(
            targets(Some(&Value::from("a,b")), None, Some(&Value::from("1"))).unwrap(),
            [("a".to_owned(), None), ("b".to_owned(), None)]
        );
    }
}
