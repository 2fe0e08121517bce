//! Attacks from the security sweep, each refused: files, directories and privileges.
//!
//! Tests that act as another local user need root. The ones about `/tmp/halite-<uid>` each run as
//! a uid of their own that no account and no other test uses, so tests running in parallel never
//! share such a directory, and each removes it before and after.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::time::Duration;

use crate::support::{Lab, bin, connectable, running_as_root, stderr, wait_output, wait_until};

const NOBODY: u32 = 65534;

/// One of our binaries run as `uid` (and its group), with no supplementary groups, no
/// `XDG_*` variables and `home` as HOME.
fn as_uid(uid: u32, name: &str, home: &Path) -> Command {
    let mut command = Command::new("setpriv");
    command
        .arg(format!("--reuid={uid}"))
        .arg(format!("--regid={uid}"))
        .arg("--clear-groups")
        .arg(bin(name))
        .env("HOME", home)
        .env_remove("XDG_RUNTIME_DIR")
        .env_remove("XDG_DATA_HOME")
        .env_remove("XDG_CACHE_HOME")
        .env_remove("SALT_CONFIG_DIR")
        .stdin(Stdio::null());
    command
}

fn chown(path: &Path, uid: u32) {
    nix::unistd::chown(
        path,
        Some(nix::unistd::Uid::from_raw(uid)),
        Some(nix::unistd::Gid::from_raw(uid)),
    )
    .unwrap();
}

fn chown_tree(path: &Path, uid: u32) {
    let status = Command::new("chown")
        .arg("-R")
        .arg(format!("{uid}:{uid}"))
        .arg(path)
        .status()
        .unwrap();
    assert!(status.success());
}

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).unwrap();
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().mode() & 0o7777
}

fn uid_of(path: &Path) -> u32 {
    std::fs::symlink_metadata(path).unwrap().uid()
}

fn is_empty(dir: &Path) -> bool {
    std::fs::read_dir(dir).unwrap().next().is_none()
}

/// `/tmp/halite-<uid>`, the runtime directory `uid` falls back to without `XDG_RUNTIME_DIR`:
/// removed when made and when dropped.
struct RuntimeDir(PathBuf);

impl RuntimeDir {
    fn of(uid: u32) -> Self {
        let dir = Self(PathBuf::from(format!("/tmp/halite-{uid}")));
        dir.remove();
        dir
    }

    fn path(&self) -> &Path {
        &self.0
    }

    fn remove(&self) {
        match std::fs::symlink_metadata(&self.0) {
            Ok(meta) if meta.is_dir() => std::fs::remove_dir_all(&self.0).unwrap(),
            Ok(_) => std::fs::remove_file(&self.0).unwrap(),
            Err(_) => {}
        }
    }
}

impl Drop for RuntimeDir {
    fn drop(&mut self) {
        self.remove();
    }
}

/// Kills a child when dropped, even if the test fails.
struct KillOnDrop(Option<Child>);

impl KillOnDrop {
    fn spawn(command: &mut Command) -> Self {
        Self(Some(
            command
                .stdout(Stdio::null())
                .stderr(Stdio::piped())
                .spawn()
                .unwrap(),
        ))
    }

    fn pid(&self) -> u32 {
        self.0.as_ref().unwrap().id()
    }

    /// Waits (up to `timeout`, then kills it) for it to exit and returns what it printed.
    fn output(mut self, timeout: Duration) -> Output {
        wait_output(self.0.take().unwrap(), timeout)
    }
}

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        if let Some(mut child) = self.0.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

/// A line of `/proc/<pid>/status`, without its label.
fn proc_status(pid: u32, label: &str) -> Option<String> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    status
        .lines()
        .find_map(|line| line.strip_prefix(label))
        .map(|rest| rest.trim().to_owned())
}

fn runs_as(pid: u32, uid: u32) -> bool {
    proc_status(pid, "Uid:").is_some_and(|ids| {
        ids.split_whitespace()
            .all(|id| id.parse::<u32>() == Ok(uid))
    })
}

/// A lab whose master runs as root with `user: nobody`, and whose `pki_dir` and `cachedir`
/// already belong to nobody, as after an earlier run.
fn lab_for_nobody() -> Lab {
    let lab = Lab::with_config("user: nobody\n", "");
    chmod(lab.path(), 0o755);
    for dir in ["cache/master", "pki/master"] {
        let dir = lab.path().join(dir);
        std::fs::create_dir_all(&dir).unwrap();
        chmod(&dir, 0o700);
        chown(&dir, NOBODY);
    }
    lab
}

#[test]
fn links_planted_by_the_service_user_in_its_trees_do_not_hand_it_root_files() {
    if !running_as_root() {
        eprintln!("skipped: needs root to start a daemon that switches to nobody");
        return;
    }
    let mut lab = lab_for_nobody();
    let cache = lab.path().join("cache/master");
    let pki = lab.path().join("pki/master");
    // Root's files, outside the trees.
    let secret = lab.path().join("shadow");
    std::fs::write(&secret, "root:secret\n").unwrap();
    chmod(&secret, 0o600);
    let secret_dir = lab.path().join("root-only");
    std::fs::create_dir(&secret_dir).unwrap();
    std::fs::write(secret_dir.join("inside"), "x").unwrap();
    // What the service user planted in the trees it owns.
    std::os::unix::fs::symlink(&secret, cache.join("link")).unwrap();
    std::os::unix::fs::symlink(&secret_dir, cache.join("dir-link")).unwrap();
    std::os::unix::fs::symlink(&secret, pki.join("link")).unwrap();
    // A hard link, as the user could make where fs.protected_hardlinks is off.
    std::fs::hard_link(&secret, cache.join("hard")).unwrap();
    // What an earlier run as root left, which the user must get.
    std::fs::create_dir(cache.join("jobs")).unwrap();
    std::fs::write(cache.join("jobs/left-by-root"), "").unwrap();

    let pid = lab.start_master().pid();
    assert!(
        wait_until(Duration::from_secs(5), || runs_as(pid, NOBODY)),
        "the daemon switches to nobody; log:\n{}",
        lab.log("master")
    );
    for root_file in [&secret, &secret_dir, &secret_dir.join("inside")] {
        assert_eq!(
            uid_of(root_file),
            0,
            "{} was handed to the service user",
            root_file.display()
        );
    }
    assert_eq!(uid_of(&cache.join("jobs")), NOBODY);
    assert_eq!(uid_of(&cache.join("jobs/left-by-root")), NOBODY);
    assert!(
        lab.log("master").contains("not handing"),
        "the hard link is reported; log:\n{}",
        lab.log("master")
    );
}

#[test]
fn a_cachedir_that_is_a_link_is_not_handed_to_the_service_user() {
    if !running_as_root() {
        eprintln!("skipped: needs root to start a daemon that switches to nobody");
        return;
    }
    let lab = lab_for_nobody();
    let cache = lab.path().join("cache/master");
    std::fs::remove_dir(&cache).unwrap();
    let elsewhere = lab.path().join("root-dir");
    std::fs::create_dir(&elsewhere).unwrap();
    std::os::unix::fs::symlink(&elsewhere, &cache).unwrap();
    let output = wait_output(
        lab.spawn_daemon("salt-master", &[]).into_child(),
        Duration::from_secs(10),
    );
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains("cachedir") && err.contains("is a symbolic link"),
        "{err}"
    );
    assert_eq!(uid_of(&elsewhere), 0);
}

#[test]
fn the_service_user_does_not_keep_roots_supplementary_groups() {
    if !running_as_root() {
        eprintln!("skipped: needs root to start a daemon that switches to nobody");
        return;
    }
    let lab = lab_for_nobody();
    // Root's groups as an admin's shell may have them: root and shadow (42 on Debian).
    let master = KillOnDrop::spawn(
        Command::new("setpriv")
            .args(["--groups=0,42"])
            .arg(bin("salt-master"))
            .arg("-c")
            .arg(lab.etc()),
    );
    let pid = master.pid();
    assert!(
        wait_until(Duration::from_secs(10), || runs_as(pid, NOBODY)),
        "the daemon switches to nobody; log:\n{}",
        lab.log("master")
    );
    let groups = proc_status(pid, "Groups:").unwrap();
    let name = std::ffi::CString::new("nobody").unwrap();
    let allowed = nix::unistd::getgrouplist(&name, nix::unistd::Gid::from_raw(NOBODY)).unwrap();
    for group in groups.split_whitespace() {
        let group: u32 = group.parse().unwrap();
        assert!(
            allowed.iter().any(|gid| gid.as_raw() == group),
            "the daemon kept group {group}: Groups: {groups}"
        );
    }
    assert_eq!(
        proc_status(pid, "Gid:").unwrap(),
        "65534\t65534\t65534\t65534"
    );
}

#[test]
fn a_runtime_dir_another_user_made_first_is_refused_and_nothing_goes_through_its_links() {
    const UID: u32 = 61001;
    if !running_as_root() {
        eprintln!("skipped: needs root to act as two users");
        return;
    }
    let lab = Lab::new();
    chmod(lab.path(), 0o755);
    let home = lab.path().join("home");
    std::fs::create_dir(&home).unwrap();
    chown(&home, UID);
    // The other user (root here) makes the victim's runtime dir first and links `master`,
    // where the victim's bus would go, to a directory it reads.
    let runtime = RuntimeDir::of(UID);
    std::fs::create_dir(runtime.path()).unwrap();
    chmod(runtime.path(), 0o755);
    let captured = lab.path().join("captured");
    std::fs::create_dir(&captured).unwrap();
    chmod(&captured, 0o777);
    std::os::unix::fs::symlink(&captured, runtime.path().join("master")).unwrap();

    let output = KillOnDrop::spawn(
        as_uid(UID, "salt-master", &home)
            .arg("-c")
            .arg(lab.path().join("no-config")),
    )
    .output(Duration::from_secs(10));
    assert!(is_empty(&captured), "nothing was bound through the link");
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(
        err.contains(&format!(
            "runtime directory /tmp/halite-{UID} belongs to uid 0, not to this user (uid {UID})"
        )) && err.contains("XDG_RUNTIME_DIR"),
        "{err}"
    );
    assert_eq!(
        err.lines()
            .filter(|line| line.starts_with("error:"))
            .count(),
        1,
        "one line: {err}"
    );
}

#[test]
fn the_framing_cache_is_never_written_into_another_users_runtime_dir() {
    const UID: u32 = 61002;
    if !running_as_root() {
        eprintln!("skipped: needs root to act as two users");
        return;
    }
    let lab = Lab::new();
    chown_tree(lab.path(), UID);
    let master = KillOnDrop::spawn(
        as_uid(UID, "salt-master", lab.path())
            .arg("-c")
            .arg(lab.etc()),
    );
    assert!(
        wait_until(Duration::from_secs(10), || connectable(&lab.master_pull())),
        "the master starts; log:\n{}",
        lab.log("master")
    );
    // The other user links `framing` in the runtime dir it made to a directory of the victim's.
    let runtime = RuntimeDir::of(UID);
    std::fs::create_dir(runtime.path()).unwrap();
    let victim = lab.path().join("victim");
    std::fs::create_dir(&victim).unwrap();
    chown(&victim, UID);
    std::os::unix::fs::symlink(&victim, runtime.path().join("framing")).unwrap();

    let output = as_uid(UID, "salt-run", lab.path())
        .arg("-c")
        .arg(lab.etc())
        .args(["event.send", "framing/probe"])
        .output()
        .unwrap();
    assert!(is_empty(&victim), "nothing was written through the link");
    assert!(output.status.success(), "{}", stderr(&output));
    let err = stderr(&output);
    assert!(
        err.contains("not remembering which framing sockets accept")
            && err.contains(&format!("/tmp/halite-{UID} belongs to uid 0")),
        "{err}"
    );
    drop(master);
}

#[test]
fn a_runtime_dir_others_can_write_or_a_linked_one_is_refused_and_a_readable_one_tightened() {
    const UID: u32 = 61003;
    if !running_as_root() {
        eprintln!("skipped: needs root to act as another user");
        return;
    }
    let lab = Lab::new();
    chmod(lab.path(), 0o755);
    let no_config = lab.path().join("no-config");
    let send = || {
        as_uid(UID, "salt-run", lab.path())
            .arg("-c")
            .arg(&no_config)
            .args(["event.send", "t/x"])
            .output()
            .unwrap()
    };
    let runtime = RuntimeDir::of(UID);

    std::fs::create_dir(runtime.path()).unwrap();
    chown(runtime.path(), UID);
    chmod(runtime.path(), 0o777);
    let output = send();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains(&format!(
            "runtime directory /tmp/halite-{UID} is writable by other users (mode 0777); \
             check what is in it, then chmod 700 it"
        )),
        "{}",
        stderr(&output)
    );

    runtime.remove();
    let own = lab.path().join("own");
    std::fs::create_dir(&own).unwrap();
    chown(&own, UID);
    chmod(&own, 0o700);
    std::os::unix::fs::symlink(&own, runtime.path()).unwrap();
    let output = send();
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains(&format!(
            "runtime directory /tmp/halite-{UID} is a symbolic link"
        )),
        "{}",
        stderr(&output)
    );
    assert!(is_empty(&own));

    // As earlier releases made it: this user's, readable by others. Nothing can have been
    // planted, so it is made private and used.
    runtime.remove();
    std::fs::create_dir(runtime.path()).unwrap();
    chown(runtime.path(), UID);
    chmod(runtime.path(), 0o755);
    let output = send();
    assert!(
        !stderr(&output).contains("runtime directory"),
        "{}",
        stderr(&output)
    );
    assert_eq!(mode(runtime.path()), 0o700);
}

#[test]
fn keys_and_the_job_cache_never_fall_back_to_tmp() {
    const UID: u32 = 61004;
    if !running_as_root() {
        eprintln!("skipped: needs root to act as another user");
        return;
    }
    let lab = Lab::new();
    chmod(lab.path(), 0o755);
    let runtime = RuntimeDir::of(UID);
    let etc = lab.path().join("conf");
    std::fs::create_dir(&etc).unwrap();
    let start = || {
        KillOnDrop::spawn(
            as_uid(UID, "salt-master", Path::new("/nonexistent"))
                .arg("-c")
                .arg(&etc),
        )
        .output(Duration::from_secs(10))
    };

    let output = start();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains(
            "pki_dir is not set and this user has no private place for it (HOME /nonexistent"
        ) && stderr(&output).contains("set pki_dir in the config"),
        "{}",
        stderr(&output)
    );

    let pki = lab.path().join("pki");
    std::fs::create_dir(&pki).unwrap();
    chown(&pki, UID);
    std::fs::write(etc.join("master"), format!("pki_dir: {}\n", pki.display())).unwrap();
    let output = start();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("set cachedir in the config"),
        "{}",
        stderr(&output)
    );
    let in_tmp: Vec<_> = std::fs::read_dir(runtime.path())
        .unwrap()
        .map(|entry| entry.unwrap().file_name())
        .collect();
    assert!(
        in_tmp.is_empty(),
        "the configuration is refused before anything is made: {in_tmp:?}"
    );
}

#[test]
fn without_xdg_runtime_dir_the_bus_lives_in_a_private_tmp_dir() {
    const UID: u32 = 61005;
    if !running_as_root() {
        eprintln!("skipped: needs root to act as another user");
        return;
    }
    let lab = Lab::new();
    chmod(lab.path(), 0o755);
    let home = lab.path().join("home");
    std::fs::create_dir(&home).unwrap();
    chown(&home, UID);
    let runtime = RuntimeDir::of(UID);
    let no_config = lab.path().join("no-config");
    let _master = KillOnDrop::spawn(as_uid(UID, "salt-master", &home).arg("-c").arg(&no_config));
    let pull = runtime.path().join("master/master_event_pull.ipc");
    assert!(wait_until(Duration::from_secs(10), || connectable(&pull)));
    assert_eq!(mode(runtime.path()), 0o700);
    assert_eq!(uid_of(runtime.path()), UID);
    let output = as_uid(UID, "salt-run", &home)
        .arg("-c")
        .arg(&no_config)
        .args(["event.send", "private/works"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        home.join(".local/share/halite/master/pki/master.pem")
            .exists(),
        "keys go to the user's data dir"
    );
}

#[test]
fn a_private_key_others_can_read_is_refused() {
    let mut lab = Lab::new();
    lab.start_master();
    lab.take_daemon().stop();
    let key = lab.path().join("pki/master/master.pem");
    chmod(&key, 0o644);
    let output = wait_output(
        lab.spawn_daemon("salt-master", &[]).into_child(),
        Duration::from_secs(10),
    );
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output).trim_end(),
        format!(
            "error: {} is open to other users (mode 0644) and may have been copied; if it is \
             still secret, chmod 400 it; otherwise move it away to have a new key created",
            key.display()
        )
    );
    chmod(&key, 0o400);
    lab.start_master();
}

#[test]
fn a_pki_dir_others_can_write_is_refused_and_one_they_can_read_is_made_private() {
    let mut lab = Lab::new();
    lab.start_master();
    lab.take_daemon().stop();
    let pki = lab.path().join("pki/master");
    chmod(&pki, 0o777);
    let output = wait_output(
        lab.spawn_daemon("salt-master", &[]).into_child(),
        Duration::from_secs(10),
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains(&format!(
            "{} is writable by other users (mode 0777), who may have put keys in it; check the \
             keys in it, then chmod 700 it",
            pki.display()
        )),
        "{}",
        stderr(&output)
    );
    chmod(&pki, 0o755);
    lab.start_master();
    assert_eq!(mode(&pki), 0o700, "as Salt's verify_env sets it");
    assert!(
        wait_until(Duration::from_secs(5), || lab
            .log("master")
            .contains("had mode 0755; set it to 0700")),
        "{}",
        lab.log("master")
    );
}

#[test]
fn log_files_are_created_0640_and_loose_ones_are_tightened() {
    let mut lab = Lab::new();
    lab.start_master();
    lab.take_daemon().stop();
    let log = lab.path().join("log/master");
    assert_eq!(mode(&log), 0o640);
    assert_eq!(mode(&lab.path().join("log")), 0o750);
    chmod(&log, 0o666);
    lab.start_master();
    assert_eq!(mode(&log), 0o640);
}

/// Root's own commands and daemon opened files the service user can replace by links: `salt`
/// read `<cachedir>/.root_key` through a link to a root-only file and sent its contents to the
/// request socket; the daemon opened its log and pid files through links (chmodding and
/// truncating root files) and read its private key through one.
#[test]
fn roots_commands_and_daemons_open_no_planted_links() {
    if !running_as_root() {
        eprintln!("skipped: needs root to start a daemon that switches to nobody");
        return;
    }
    let mut lab = lab_for_nobody();
    let secret = lab.path().join("secret");
    std::fs::write(&secret, "root-only-secret\n").unwrap();
    chmod(&secret, 0o600);
    lab.start_master();
    // The request socket belongs to the service user too, so that it can publish.
    let requests = lab.master_sock_dir().join("master_request.ipc");
    // Handed over once bound, which may come a moment after the bus is up.
    wait_until(Duration::from_secs(5), || {
        std::fs::symlink_metadata(&requests).is_ok_and(|meta| meta.uid() == NOBODY)
    });
    assert_eq!(uid_of(&requests), NOBODY);
    // The service user swaps the root key for a link to root's secret; root runs `salt`.
    let root_key = lab.path().join("cache/master/.root_key");
    std::fs::remove_file(&root_key).unwrap();
    std::os::unix::fs::symlink(&secret, &root_key).unwrap();
    let output = lab.run("salt", &["*", "test.ping"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("symbolic link"),
        "{}",
        stderr(&output)
    );
    lab.take_daemon().stop();

    // Log and pid files planted as links to root's files: the daemon refuses to start and
    // leaves them alone.
    let log = lab.path().join("log/master");
    std::fs::remove_file(&log).unwrap();
    std::os::unix::fs::symlink(&secret, &log).unwrap();
    let output = wait_output(
        lab.cmd("salt-master")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
        Duration::from_secs(10),
    );
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("symbolic link"),
        "{}",
        stderr(&output)
    );
    std::fs::remove_file(&log).unwrap();
    let pid_file = lab.path().join("master.pid");
    std::os::unix::fs::symlink(&secret, &pid_file).unwrap();
    let output = wait_output(
        lab.cmd("salt-master")
            .arg("--pid-file")
            .arg(&pid_file)
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
        Duration::from_secs(10),
    );
    assert!(!output.status.success());
    assert!(stderr(&output).contains("pid file"), "{}", stderr(&output));
    std::fs::remove_file(&pid_file).unwrap();
    // The private key replaced by a link to another root-only key file.
    let pem = lab.path().join("pki/master/master.pem");
    let copy = lab.path().join("other.pem");
    std::fs::copy(&pem, &copy).unwrap();
    chmod(&copy, 0o400);
    std::fs::remove_file(&pem).unwrap();
    std::os::unix::fs::symlink(&copy, &pem).unwrap();
    let output = wait_output(
        lab.cmd("salt-master")
            .stderr(Stdio::piped())
            .spawn()
            .unwrap(),
        Duration::from_secs(10),
    );
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("symbolic link"),
        "{}",
        stderr(&output)
    );
    assert_eq!(
        std::fs::read_to_string(&secret).unwrap(),
        "root-only-secret\n"
    );
    assert_eq!(mode(&secret), 0o600);
}
