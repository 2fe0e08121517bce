//! Daemon options: loopback TCP instead of socket files, running in the background with a pid
//! file, and dropping root for the configured `user`.

use std::os::unix::fs::{MetadataExt, PermissionsExt};
use std::time::Duration;

use halite::event::Value;
use halite::wire::Framing;

use crate::support::{
    Lab, MINION_ID, RawSubscriber, Watcher, free_port, map, returns, stderr, wait_output,
    wait_until,
};

#[test]
fn ipc_mode_tcp_serves_the_bus_on_loopback_ports() {
    let (publish, pull) = (free_port(), free_port());
    let config = format!(
        "ipc_mode: tcp\ntcp_master_pub_port: {publish}\ntcp_master_pull_port: {pull}\ntcp_master_workers: {}\n",
        free_port()
    );
    let lab = Lab::with_config(&config, "");
    let _master = lab.spawn_daemon("salt-master", &[]);
    assert!(wait_until(Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", pull)).is_ok()
    }));
    assert!(!lab.master_pub().exists(), "no socket files in tcp mode");
    let mut command = lab.cmd("salt-run");
    command.args(["state.event", "tcp/*"]);
    let watcher = Watcher::spawn(command);
    std::thread::sleep(Duration::from_millis(500));
    let output = lab.run("salt-run", &["event.send", "tcp/works", "{via: loopback}"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let line = watcher
        .line(Duration::from_secs(5))
        .expect("the event arrives over tcp");
    assert!(
        line.starts_with("tcp/works\t{\"via\": \"loopback\""),
        "{line}"
    );
}

#[test]
fn daemon_flag_backgrounds_writes_the_pid_file_and_stops_on_sigterm() {
    let lab = Lab::new();
    let pid_file = lab.path().join("master.pid");
    // A relative path is from where the command runs, though the daemon runs in `/`.
    let output = lab
        .cmd("salt-master")
        .current_dir(lab.path())
        .args(["-d", "--pid-file", "master.pid"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "the foreground process returns at once: {}",
        stderr(&output)
    );
    // The pid file is written once everything is bound, a moment after the bus answers.
    assert!(wait_until(Duration::from_secs(10), || {
        crate::support::connectable(&lab.master_pull())
            && std::fs::read_to_string(&pid_file).is_ok_and(|text| text.ends_with('\n'))
    }));
    let mut subscriber = RawSubscriber::connect(&lab.master_pub());
    crate::support::RawSender::connect(&lab.master_pull()).fire(
        "bg/works",
        &map(&[("x", Value::from(1))]),
        Framing::Bare,
    );
    subscriber.expect_tag("bg/works");
    stop_by_pid_file(&pid_file);
    assert!(!lab.master_pull().exists());
}

/// Stops the daemon in the background whose pid `pid_file` holds, and waits for it to remove
/// the file as it exits.
fn stop_by_pid_file(pid_file: &std::path::Path) {
    let pid: i32 = std::fs::read_to_string(pid_file)
        .unwrap()
        .trim()
        .parse()
        .unwrap();
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(pid),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || !pid_file.exists()),
        "the pid file is removed on exit"
    );
}

/// A relative root_dir is from where the command runs, for every file, though the daemon in
/// the background runs in `/`: a client run from there reaches it.
#[test]
fn daemon_flag_keeps_a_relative_root_dir_where_the_command_ran() {
    let lab = Lab::new();
    let port = free_port();
    std::fs::write(
        lab.etc().join("master"),
        format!("root_dir: relroot\ninterface: 127.0.0.1\nret_port: {port}\npidfile: m.pid\n"),
    )
    .unwrap();
    let output = lab
        .cmd("salt-master")
        .current_dir(lab.path())
        .arg("-d")
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let root = lab.path().join("relroot");
    let pid_file = root.join("m.pid");
    assert!(wait_until(Duration::from_secs(10), || pid_file.exists()));
    let listed = lab
        .cmd("salt-run")
        .current_dir(lab.path())
        .arg("jobs.list_jobs")
        .output()
        .unwrap();
    stop_by_pid_file(&pid_file);
    assert!(listed.status.success(), "{}", stderr(&listed));
    assert!(root.join("var/cache/salt/master/.root_key").exists());
    assert!(!std::path::Path::new("/relroot").exists());
}

#[test]
fn daemon_flag_waits_to_say_a_failed_start_failed() {
    // An address this host does not have: the master cannot listen for minions.
    let lab = Lab::new();
    let file = lab.etc().join("master");
    let config = std::fs::read_to_string(&file).unwrap();
    assert!(config.contains("interface: 127.0.0.1\n"));
    std::fs::write(
        &file,
        config.replace("interface: 127.0.0.1\n", "interface: 192.0.2.1\n"),
    )
    .unwrap();
    let started = std::time::Instant::now();
    let output = lab.cmd("salt-master").arg("-d").output().unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("192.0.2.1"),
        "the daemon's error reaches the terminal: {}",
        stderr(&output)
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert!(!lab.master_pull().exists(), "nothing is left running");
    // In the background, a log file it cannot open would leave it logging nowhere.
    let lab = Lab::new();
    std::fs::write(lab.path().join("afile"), "").unwrap();
    let log_file = lab.path().join("afile/master.log");
    let output = lab
        .cmd("salt-master")
        .arg("-d")
        .arg("--log-file")
        .arg(&log_file)
        .output()
        .unwrap();
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("is a file, not a directory; a daemon in the background"),
        "{}",
        stderr(&output)
    );
    assert!(!lab.master_pull().exists(), "nothing is left running");
}

#[test]
fn a_root_daemon_switches_to_the_configured_user_after_binding() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipped: needs root");
        return;
    }
    let mut lab = Lab::with_config("user: nobody\n", "");
    std::fs::set_permissions(lab.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let master = lab.start_master();
    let pid = master.pid();
    let runs_as_nobody = || {
        let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
        status
            .lines()
            .find(|line| line.starts_with("Uid:"))
            .is_some_and(|line| line.split_whitespace().skip(1).all(|uid| uid == "65534"))
    };
    // The switch comes right after binding, so the sockets may answer a moment before it.
    assert!(
        wait_until(Duration::from_secs(5), runs_as_nobody),
        "the daemon runs as nobody"
    );
    assert_eq!(
        std::fs::metadata(lab.master_pub()).unwrap().uid(),
        65534,
        "sockets belong to the user"
    );
    // The log file, and the directory the start made for it: the user opens a new one there
    // after a rotation.
    for log in [lab.path().join("log/master"), lab.path().join("log")] {
        assert_eq!(std::fs::metadata(&log).unwrap().uid(), 65534, "{log:?}");
    }
    let mut subscriber = RawSubscriber::connect(&lab.master_pub());
    crate::support::RawSender::connect(&lab.master_pull()).fire(
        "user/works",
        &map(&[]),
        Framing::Bare,
    );
    subscriber.expect_tag("user/works");
}

#[test]
fn an_unprivileged_daemon_refuses_a_different_user() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipped: needs root to run as nobody");
        return;
    }
    let lab = Lab::with_config("user: root\n", "");
    std::fs::set_permissions(lab.path(), std::fs::Permissions::from_mode(0o777)).unwrap();
    // The start refuses before it binds anything, and --check-config says the same.
    for check in [false, true] {
        let output = std::process::Command::new("setpriv")
            .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
            .arg(crate::support::bin("salt-master"))
            .arg("-c")
            .arg(lab.etc())
            .args(check.then_some("--check-config"))
            .output()
            .unwrap();
        assert_eq!(output.status.code(), Some(1));
        assert!(
            stderr(&output).ends_with(
                "error: cannot switch to user root: only root can; start as root or remove the \
                 user option\n"
            ),
            "{}",
            stderr(&output)
        );
        assert!(!lab.master_sock_dir().exists());
    }
}

/// `reactor_worker_threads: ten` became 10 inside the daemon without a word; an invalid option
/// stops the start with the option's name.
#[test]
fn invalid_options_stop_the_daemons_with_their_names() {
    for (config, daemon, option) in [
        (
            "reactor_worker_threads: ten\n",
            "salt-master",
            "reactor_worker_threads",
        ),
        ("presence_events: maybe\n", "salt-master", "presence_events"),
        ("recon_max: soon\n", "salt-minion", "recon_max"),
        ("reactor_timeout: -1\n", "salt-minion", "reactor_timeout"),
        ("link_keepalive: 0\n", "salt-master", "link_keepalive"),
        (
            "link_keepalive: 10000000000000000000.0\n",
            "salt-minion",
            "link_keepalive",
        ),
        (
            "acceptance_wait_time: 10000000000000000000.0\n",
            "salt-minion",
            "acceptance_wait_time",
        ),
    ] {
        let lab = match daemon {
            "salt-master" => Lab::with_config(config, ""),
            _ => Lab::with_config("", config),
        };
        let output = crate::support::wait_output(
            lab.cmd(daemon)
                .stdout(std::process::Stdio::null())
                .stderr(std::process::Stdio::piped())
                .spawn()
                .unwrap(),
            Duration::from_secs(10),
        );
        assert_eq!(output.status.code(), Some(1), "{daemon} with {config}");
        assert!(stderr(&output).contains(option), "{}", stderr(&output));
    }
}

/// A daemon's stderr that nobody reads (the lab pipes it and reads it only at the end) filled
/// its pipe after 815 jobs' `Executing command` lines, and the minion's console logging blocked
/// its threads for good: no job ran after that. Console lines now wait in a bounded queue
/// (dropped, with a notice, when it is full); the log file has every line.
#[test]
fn a_daemon_whose_stderr_is_not_read_keeps_running_jobs() {
    let mut lab = Lab::new();
    lab.start_master();
    let mut bus = RawSubscriber::connect(&lab.master_pub());
    lab.start_minion();
    bus.expect_tag(&format!("salt/minion/{MINION_ID}/start"));
    returns(&lab, &mut bus, 3_000, || {});
    assert_eq!(
        lab.log("minion")
            .matches("Executing command test.echo")
            .count(),
        3_000
    );

    // Read at last, the console has the lines that waited, and the minion stops cleanly.
    let mut minion = lab.take_daemon_named("salt-minion").into_child();
    let mut pipe = minion.stderr.take().expect("piped stderr");
    let reader = std::thread::spawn(move || {
        let mut console = String::new();
        std::io::Read::read_to_string(&mut pipe, &mut console).expect("stderr");
        console
    });
    nix::sys::signal::kill(
        nix::unistd::Pid::from_raw(minion.id() as i32),
        nix::sys::signal::Signal::SIGTERM,
    )
    .unwrap();
    let status = wait_output(minion, Duration::from_secs(10)).status;
    let console = reader.join().unwrap();
    assert!(status.success(), "{status:?}");
    assert_eq!(
        console.matches("Executing command test.echo").count(),
        3_000
    );
}
