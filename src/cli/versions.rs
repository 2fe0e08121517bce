//! `-V` / `--versions-report`: Salt's versions report, in its layout, saying what is true of
//! halite and the host.
//!
//! Salt prints sections (`Salt Version:`, `Python Version:`, `Dependency Versions:`, …), each
//! a heading, one `name: version` line per entry right-aligned to one column for the whole
//! report, and a line holding one space. halite has no Python and no Python dependencies, so
//! its report has two sections: `Salt Version:` naming halite's version, and `System
//! Versions:` with the same entries Salt's has, read from the same places.

use crate::minion::grains::os_release;

/// Salt's placeholder for a missing version; the column is at least this wide.
const NOT_INSTALLED: &str = "Not Installed";

/// The whole report, ending with a newline.
pub(super) fn report() -> String {
    let sections = [
        (
            "Salt Version",
            vec![("halite".to_owned(), env!("CARGO_PKG_VERSION").to_owned())],
        ),
        ("System Versions", system()),
    ];
    let width = sections
        .iter()
        .flat_map(|(_, entries)| entries.iter().map(|(name, _)| name.len()))
        .chain([NOT_INSTALLED.len()])
        .max()
        .unwrap_or_default()
        + 1;
    let mut lines = Vec::new();
    for (heading, mut entries) in sections {
        lines.push(format!("{heading}:"));
        entries.sort_by_key(|(name, _)| name.to_lowercase());
        for (name, version) in entries {
            let version = if version.is_empty() {
                NOT_INSTALLED
            } else {
                &version
            };
            lines.push(format!("{name:>width$}: {version}"));
        }
        lines.push(" ".to_owned());
    }
    lines.join("\n") + "\n"
}

/// Salt's `System Versions`: the kernel's name, release and machine, the distribution as
/// `id version codename` (`dist`) and `name version codename` (`version`), and the encoding.
fn system() -> Vec<(String, String)> {
    let uname = nix::sys::utsname::uname().ok();
    let field = |get: fn(&nix::sys::utsname::UtsName) -> &std::ffi::OsStr| {
        uname
            .as_ref()
            .map(|uname| get(uname).to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    let release = os_release().unwrap_or_default();
    // Later lines win, as the specification's defaults come first.
    let get = |key: &str| {
        release
            .iter()
            .rev()
            .find(|(k, _)| k == key)
            .map(|(_, v)| v.clone())
            .unwrap_or_default()
    };
    let id = get("ID");
    let version = best_version(&id, get("VERSION_ID"));
    let codename = [get("VERSION_CODENAME"), get("UBUNTU_CODENAME")]
        .into_iter()
        .find(|name| !name.is_empty())
        .unwrap_or_default();
    let name = get("NAME");
    let described = if name.is_empty() {
        String::new()
    } else {
        format!("{name} {version} {codename}")
    };
    vec![
        ("system".to_owned(), field(|u| u.sysname())),
        ("dist".to_owned(), format!("{id} {version} {codename}")),
        ("release".to_owned(), field(|u| u.release())),
        ("machine".to_owned(), field(|u| u.machine())),
        ("version".to_owned(), described),
        // halite reads and writes text as UTF-8 whatever the locale says.
        ("locale".to_owned(), "utf-8".to_owned()),
    ]
}

/// The most precise version of the distribution, as the `distro` package Salt uses picks it:
/// os-release's `VERSION_ID`, or the version in `/etc/<id>_version` or `/etc/<id>-release`
/// when that has more dot-separated parts (Debian's `12.11` against os-release's `12`).
fn best_version(id: &str, from_os_release: String) -> String {
    let mut best = from_os_release;
    if id.is_empty() || id.contains('/') {
        return best;
    }
    for file in [format!("/etc/{id}_version"), format!("/etc/{id}-release")] {
        let Ok(text) = std::fs::read_to_string(&file) else {
            continue;
        };
        let found = text
            .lines()
            .next()
            .unwrap_or_default()
            .split_whitespace()
            .rev()
            .find(|word| {
                word.starts_with(|c: char| c.is_ascii_digit())
                    && word.chars().all(|c| c.is_ascii_digit() || c == '.')
            });
        if let Some(found) = found
            && (best.is_empty() || found.matches('.').count() > best.matches('.').count())
        {
            best = found.to_owned();
        }
    }
    best
}
