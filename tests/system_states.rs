//! The `user`, `group` and `pkg` states on the real system against real Salt 3007.8: the same
//! `state.single` calls with halite's `salt-call --local` and Salt's, each side on accounts of
//! its own (temporary names and ids, set aside before comparing), or one side after the other
//! on a tiny Debian package. Root only; whatever a test creates is removed when it ends, even
//! when it fails.

use std::cell::Cell;
use std::path::Path;
use std::process::{Command, Stdio};

use serde_json::Value as Json;

use crate::conformance::venv;
use crate::state_runs::{call, differences};
use crate::support::{bin, running_as_root};

/// A `--local` minion configuration under `dir`.
fn minion(dir: &Path) {
    let d = dir.display();
    std::fs::write(
        dir.join("minion"),
        format!(
            "id: m1\nfile_client: local\nroot_dir: {d}/root\ncachedir: {d}/root/cache\npki_dir: {d}/root/pki\nsock_dir: {d}/root/sock\nlog_file: {d}/root/log\n"
        ),
    )
    .unwrap();
}

/// Whether `command` exits 0, its output set aside.
fn quietly(command: &mut Command) -> bool {
    command
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .status()
        .is_ok_and(|status| status.success())
}

fn getent(database: &str, key: &str) -> bool {
    quietly(Command::new("getent").args([database, key]))
}

/// One side's temporary accounts: a user, a group, an id for both, and the gid useradd gave
/// the user's own group. Dropping it deletes them, their homes and the user's own group.
struct Accounts {
    user: String,
    group: String,
    id: u32,
    own_gid: Cell<Option<u64>>,
}

impl Accounts {
    /// Accounts named `hlt<side>u<pid>` and `hlt<side>g<pid>`, with the first id from `from`
    /// on that is free as a uid and as a gid.
    fn new(side: char, from: u32) -> Self {
        let pid = std::process::id();
        let id = (from..from + 1000)
            .find(|id| !getent("passwd", &id.to_string()) && !getent("group", &id.to_string()))
            .expect("no free ids");
        let accounts = Self {
            user: format!("hlt{side}u{pid}"),
            group: format!("hlt{side}g{pid}"),
            id,
            own_gid: Cell::new(None),
        };
        accounts.remove();
        accounts
    }

    /// `arg` with `@U`, `@G` and `@N` standing for the user, the group and the id.
    fn fill(&self, arg: &str) -> String {
        arg.replace("@U", &self.user)
            .replace("@G", &self.group)
            .replace("@N", &self.id.to_string())
    }

    /// Notes the gid of the user's own group, when it has one.
    fn observe(&self) {
        let entry = Command::new("getent")
            .args(["group", &self.user])
            .output()
            .unwrap();
        let line = String::from_utf8_lossy(&entry.stdout).into_owned();
        if let Some(gid) = line.split(':').nth(2).and_then(|g| g.parse().ok()) {
            self.own_gid.set(Some(gid));
        }
    }

    /// The return with the names and ids written as placeholders again.
    fn placed(&self, value: Json) -> Json {
        match value {
            Json::String(text) => Json::String(
                text.replace(&self.user, "@U")
                    .replace(&self.group, "@G")
                    .replace(&self.id.to_string(), "@N"),
            ),
            Json::Number(n) if n.as_u64() == Some(u64::from(self.id)) => Json::from("@N"),
            Json::Number(n) if n.as_u64().is_some() && n.as_u64() == self.own_gid.get() => {
                Json::from("@UG")
            }
            Json::Array(items) => Json::Array(items.into_iter().map(|i| self.placed(i)).collect()),
            Json::Object(entries) => Json::Object(
                entries
                    .into_iter()
                    .map(|(k, v)| (self.placed(Json::String(k)), self.placed(v)))
                    .map(|(k, v)| (k.as_str().unwrap().to_owned(), v))
                    .collect(),
            ),
            other => other,
        }
    }

    fn remove(&self) {
        quietly(Command::new("userdel").args(["-r", "-f", &self.user]));
        for group in [&self.user, &self.group] {
            quietly(Command::new("groupdel").arg(group));
        }
        for home in [
            format!("/home/{}", self.user),
            format!("/home/{}x", self.user),
        ] {
            let _ = std::fs::remove_dir_all(home);
        }
    }
}

impl Drop for Accounts {
    fn drop(&mut self) {
        self.remove();
    }
}

/// The calls, in order: groups and users created, left alone, changed and removed, in test
/// mode and for real.
const ACCOUNT_CALLS: &[&[&str]] = &[
    &["group.present", "name=@G", "gid=@N", "test=True"],
    &["group.present", "name=@G", "gid=@N"],
    &["group.present", "name=@G", "gid=@N"],
    &["user.present", "name=@U", "test=True"],
    &["user.present", "name=@U", "uid=@N"],
    &["user.present", "name=@U", "uid=@N"],
    &["user.present", "name=@U", "shell=/bin/bash", "test=True"],
    &["user.present", "name=@U", "shell=/bin/bash"],
    &["user.present", "name=@U", "home=/home/@Ux", "test=True"],
    &["user.present", "name=@U", "home=/home/@Ux"],
    &["user.present", "name=@U", "groups=[@G]", "test=True"],
    &["user.present", "name=@U", "groups=[@G]"],
    &["user.present", "name=@U", "groups=[@G]"],
    &["user.present", "name=@U", "groups=[]"],
    &["user.present", "name=@U", "uid=1"],
    &["user.present", "name=@U", "groups=[nosuch@G]"],
    &["user.present", "name=@U", "fullname=Hal", "test=True"],
    &["user.present", "name=@U", "fullname=Hal"],
    &["user.present", "name=@U", "fullname=Hal"],
    &["user.present", "name=@U", "fullname=a,b"],
    &["user.present", "name=@U", "optional_groups=[nosuch@G, @G]"],
    &[
        "user.present",
        "name=@U",
        "gid=@G",
        "allow_gid_change=True",
        "test=True",
    ],
    &["user.present", "name=@U", "gid=@G", "allow_gid_change=True"],
    &["group.present", "name=@G", "addusers=[@U]", "test=True"],
    &["group.present", "name=@G", "addusers=[@U]"],
    &["group.present", "name=@G", "delusers=[@U]"],
    &["group.present", "name=@G", "members=[@U]"],
    &["group.present", "name=@G", "members=[]"],
    &["group.present", "name=@G", "members=[@U]", "addusers=[x]"],
    &["group.present", "name=@G", "gid=abc"],
    &["user.absent", "name=@U", "test=True"],
    &["user.absent", "name=@U", "purge=True"],
    &["user.absent", "name=@U"],
    &["group.absent", "name=@G", "test=True"],
    &["group.absent", "name=@G"],
    &["group.absent", "name=@G"],
    &["user.present", "name=@U", "uid=@N", "createhome=False"],
    &["user.absent", "name=@U"],
];

#[test]
fn user_and_group_states_change_the_system_as_salt_3007_8_does() {
    if !running_as_root() {
        eprintln!("SKIPPED: creating users and groups needs root");
        return;
    }
    let salt_call = venv("3007.8").join("bin/salt-call");
    let (ours_dir, theirs_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    minion(ours_dir.path());
    minion(theirs_dir.path());
    let theirs = Accounts::new('s', 47300);
    let ours = Accounts::new('h', theirs.id + 2);
    for args in ACCOUNT_CALLS {
        let run = |program: &Path, dir: &Path, accounts: &Accounts| {
            let filled: Vec<String> = std::iter::once("state.single".to_owned())
                .chain(args.iter().map(|a| accounts.fill(a)))
                .collect();
            let filled: Vec<&str> = filled.iter().map(String::as_str).collect();
            let (status, ret) = call(program, dir, &filled);
            accounts.observe();
            (status, accounts.placed(ret))
        };
        let salt = run(&salt_call, theirs_dir.path(), &theirs);
        let halite = run(&bin("salt-call"), ours_dir.path(), &ours);
        assert_eq!(halite.0, salt.0, "{args:?}: exit status");
        assert_eq!(
            differences(&halite.1, &salt.1),
            Vec::<String>::new(),
            "{args:?}: halite's return differs from Salt's"
        );
    }
}

/// The package the `pkg` test installs and removes: tiny, with no dependencies.
const PACKAGE: &str = "sl";

fn installed(package: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f", "${Status}", package])
        .output()
        .is_ok_and(|out| String::from_utf8_lossy(&out.stdout).contains("install ok installed"))
}

/// Removes the package at the end, whether or not the test got that far.
struct Uninstall(&'static str);

impl Drop for Uninstall {
    fn drop(&mut self) {
        if installed(self.0) {
            quietly(
                Command::new("apt-get")
                    .args(["remove", "--yes", "--quiet", self.0])
                    .env("DEBIAN_FRONTEND", "noninteractive"),
            );
        }
    }
}

const PKG_CALLS: &[(&[&str], Option<bool>)] = &[
    (&["pkg.installed", "name=sl", "test=True"], Some(false)),
    (&["pkg.installed", "name=sl"], Some(true)),
    (&["pkg.installed", "name=sl"], Some(true)),
    (&["pkg.removed", "name=sl", "test=True"], Some(true)),
    (&["pkg.removed", "name=sl"], Some(false)),
    (&["pkg.removed", "name=sl"], None),
];

/// The returns of the `pkg` calls through `program`, each checked against dpkg: the package
/// is installed afterwards or not, as the call says. `None` when apt could not download it.
fn pkg_run(program: &Path, dir: &Path) -> Option<Vec<(Option<i32>, Json)>> {
    let _uninstall = Uninstall(PACKAGE);
    let mut returns = Vec::new();
    for (args, after) in PKG_CALLS {
        let mut full = vec!["state.single"];
        full.extend_from_slice(args);
        let ret = call(program, dir, &full);
        let text = ret.1.to_string();
        if [
            "Failed to fetch",
            "Temporary failure resolving",
            "Could not resolve",
        ]
        .iter()
        .any(|offline| text.contains(offline))
        {
            eprintln!("SKIPPED: apt cannot reach its archive: {text}");
            return None;
        }
        if let Some(after) = after {
            assert_eq!(
                installed(PACKAGE),
                *after,
                "{program:?} {args:?}: dpkg says {PACKAGE} is installed: {text}"
            );
        }
        returns.push(ret);
    }
    Some(returns)
}

#[test]
fn pkg_installed_and_removed_install_and_remove_as_salt_3007_8_does() {
    if !running_as_root() {
        eprintln!("SKIPPED: installing packages needs root");
        return;
    }
    if installed(PACKAGE) {
        eprintln!("SKIPPED: {PACKAGE} is installed already, and this test would remove it");
        return;
    }
    let simulated = Command::new("apt-get")
        .args(["install", "--simulate", PACKAGE])
        .output();
    if !simulated.as_ref().is_ok_and(|out| out.status.success()) {
        eprintln!("SKIPPED: apt-get cannot install {PACKAGE}: {simulated:?}");
        return;
    }
    let (ours_dir, theirs_dir) = (tempfile::tempdir().unwrap(), tempfile::tempdir().unwrap());
    minion(ours_dir.path());
    minion(theirs_dir.path());
    let Some(ours) = pkg_run(&bin("salt-call"), ours_dir.path()) else {
        return;
    };
    let Some(theirs) = pkg_run(&venv("3007.8").join("bin/salt-call"), theirs_dir.path()) else {
        return;
    };
    for (((args, _), halite), salt) in PKG_CALLS.iter().zip(ours).zip(theirs) {
        assert_eq!(halite.0, salt.0, "{args:?}: exit status");
        assert_eq!(
            differences(&halite.1, &salt.1),
            Vec::<String>::new(),
            "{args:?}: halite's return differs from Salt's"
        );
    }
}
