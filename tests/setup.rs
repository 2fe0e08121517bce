//! Out of the box and permissions: a user without root gets a working bus with no config, and a
//! socket this user may not use gets a clear error.

use std::os::unix::fs::PermissionsExt;
use std::process::Command;
use std::time::Duration;

use crate::support::{Lab, Watcher, as_nobody, bin, running_as_root, stderr, wait_until};

#[test]
fn without_config_or_root_the_bus_lives_in_the_users_runtime_dir() {
    if !running_as_root() {
        eprintln!("skipped: needs root to run the binaries as nobody");
        return;
    }
    let lab = Lab::new();
    std::fs::set_permissions(lab.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let runtime = lab.path().join("xdg");
    std::fs::create_dir(&runtime).unwrap();
    nix::unistd::chown(&runtime, Some(nix::unistd::Uid::from_raw(65534)), None).unwrap();
    let empty_config = lab.path().join("no-config");
    let with_env = |mut command: Command| {
        command
            .arg("-c")
            .arg(&empty_config)
            .env("XDG_RUNTIME_DIR", &runtime)
            .env_remove("SALT_CONFIG_DIR");
        command
    };
    let master = with_env(as_nobody(bin("salt-master"))).spawn().unwrap();
    let _master = scopeguard(master);
    let publish = runtime.join("halite/master/master_event_pub.ipc");
    assert!(
        wait_until(Duration::from_secs(10), || publish.exists()),
        "the master binds in $XDG_RUNTIME_DIR/halite/master"
    );
    let mut watch = with_env(as_nobody(bin("salt-run")));
    watch.args(["state.event", "hello/*", "count=1"]);
    let watcher = Watcher::spawn(watch);
    std::thread::sleep(Duration::from_millis(500));
    let mut send = with_env(as_nobody(bin("salt-run")));
    let output = send
        .args(["event.send", "hello/halite", "{msg: it works}"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let line = watcher
        .line(Duration::from_secs(5))
        .expect("the event streams");
    assert!(
        line.starts_with("hello/halite\t{\"msg\": \"it works\""),
        "{line}"
    );
}

#[test]
fn a_socket_this_user_may_not_use_is_a_clear_error() {
    if !running_as_root() {
        eprintln!("skipped: needs root to run the binaries as nobody");
        return;
    }
    let mut lab = Lab::new();
    std::fs::set_permissions(lab.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    lab.start_master();
    let output = as_nobody(bin("salt-run"))
        .arg("-c")
        .arg(lab.etc())
        .args(["event.send", "t/x"])
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains("permission denied on") && err.contains("master_event_pull.ipc"),
        "{err}"
    );
    let output = as_nobody(bin("salt-run"))
        .arg("-c")
        .arg(lab.etc())
        .args(["state.event"])
        .output()
        .unwrap();
    assert_eq!(
        output.status.code(),
        Some(1),
        "a watcher does not wait forever on a socket it may not read"
    );
    assert!(
        stderr(&output).contains("permission denied on"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn a_sock_dir_that_cannot_be_created_is_a_clear_error() {
    let lab = Lab::with_config("", "");
    std::fs::write(lab.path().join("file"), "").unwrap();
    std::fs::write(
        lab.etc().join("master"),
        format!("sock_dir: {}/file/sub\n", lab.path().display()),
    )
    .unwrap();
    let output = lab.run("salt-master", &[]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains("cannot create sock_dir") && err.contains("file/sub"),
        "{err}"
    );
}

/// A sock_dir too long for a Unix socket path inside it was `File name too long` from the
/// daemon and `path must be shorter than SUN_LEN; is the daemon running…` from a client: now
/// one line, the same from both, naming the path, its length, the limit and the fix.
#[test]
fn a_sock_dir_too_long_for_its_sockets_is_one_line_naming_path_length_and_limit() {
    let lab = Lab::new();
    let long = lab.path().join("s".repeat(100));
    let config = std::fs::read_to_string(lab.etc().join("master")).unwrap();
    let config: String = config
        .lines()
        .filter(|line| !line.starts_with("sock_dir:"))
        .map(|line| format!("{line}\n"))
        .collect();
    std::fs::write(
        lab.etc().join("master"),
        format!("{config}sock_dir: {}\n", long.display()),
    )
    .unwrap();
    for (command, args) in [
        ("salt-master", &[][..]),
        ("salt", &["*", "test.ping"][..]),
        ("salt-run", &["event.send", "tag"][..]),
    ] {
        let output = lab.run(command, args);
        assert_eq!(output.status.code(), Some(1), "{command}");
        let err = stderr(&output);
        let (path, rest) = err
            .strip_prefix("error: socket path ")
            .and_then(|line| line.split_once(" is "))
            .unwrap_or_else(|| panic!("{command}: {err}"));
        assert!(
            path.starts_with(&format!("{}/", long.display())),
            "{command}: {err}"
        );
        assert_eq!(
            rest,
            format!(
                "{} bytes, over the 107 a Unix socket path can have; set a shorter sock_dir\n",
                path.len()
            ),
            "{command}"
        );
    }
}

/// Kills a child when dropped, even if the test fails.
struct KillOnDrop(std::process::Child);

impl Drop for KillOnDrop {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn scopeguard(child: std::process::Child) -> KillOnDrop {
    KillOnDrop(child)
}

/// A user who may not read the master's keys got an empty `salt-key -L` and exit 0; it is an
/// error naming the directory.
#[test]
fn salt_key_without_access_to_the_keys_says_so() {
    if !running_as_root() {
        eprintln!("skipped: needs root to run salt-key as nobody");
        return;
    }
    let mut lab = Lab::new();
    std::fs::set_permissions(lab.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    std::fs::set_permissions(lab.etc(), std::fs::Permissions::from_mode(0o755)).unwrap();
    lab.start_master();
    let output = as_nobody(bin("salt-key"))
        .arg("-c")
        .arg(lab.etc())
        .arg("-L")
        .env("XDG_RUNTIME_DIR", lab.path())
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let message = stderr(&output);
    assert!(
        message.contains(&lab.path().join("pki/master").display().to_string()),
        "{message}"
    );
    assert_eq!(message.lines().count(), 1, "{message}");
    assert!(
        message.ends_with("; run as a user allowed to (the daemon's user, or root), or check -c\n"),
        "{message}"
    );
}

/// A damaged private key, or something else in its place, stops the master with one line
/// naming the file and the fix.
#[test]
fn a_damaged_key_file_is_one_line_naming_it_and_the_fix() {
    let lab = Lab::new();
    let pki = lab.path().join("pki/master");
    std::fs::create_dir_all(&pki).unwrap();
    std::fs::set_permissions(&pki, std::fs::Permissions::from_mode(0o700)).unwrap();
    let pem = pki.join("master.pem");
    std::fs::write(&pem, "not a key\n").unwrap();
    std::fs::set_permissions(&pem, std::fs::Permissions::from_mode(0o400)).unwrap();
    let output = lab.run("salt-master", &[]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        format!(
            "error: {} is not a valid key file (no PEM block); move it away to have a new key created\n",
            pem.display()
        )
    );
    std::fs::remove_file(&pem).unwrap();
    std::fs::create_dir(&pem).unwrap();
    let output = lab.run("salt-master", &[]);
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(
        stderr(&output),
        format!(
            "error: cannot read {}: it is not a regular file; make it a regular file with one name, or move it away\n",
            pem.display()
        )
    );
}

/// A minion whose accepted key file was damaged was told apart from an impostor by nothing:
/// the master's log said the minion presented a different key. It names the damaged file and
/// the way out.
#[test]
fn a_damaged_accepted_key_is_logged_naming_the_file_and_the_fix() {
    let mut lab = Lab::new();
    let accepted = lab.path().join("pki/master/minions");
    std::fs::create_dir_all(&accepted).unwrap();
    let filed = accepted.join("minion1");
    std::fs::write(&filed, "garbage").unwrap();
    lab.start_master();
    let minion = lab.spawn_daemon("salt-minion", &[]);
    let expected = "refused minion minion1 (127.0.0.1:";
    let fix = format!(
        "): its accepted key file {} holds no valid public key; delete it (salt-key -d minion1 -y) and accept the key the minion presents next (salt-key -a minion1)",
        filed.display()
    );
    assert!(
        wait_until(Duration::from_secs(20), || {
            let log = lab.log("master");
            log.lines()
                .any(|line| line.contains(expected) && line.ends_with(&fix))
        }),
        "{}",
        lab.log("master")
    );
    minion.kill();
}
