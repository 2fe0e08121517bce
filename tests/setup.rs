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
}
