//! The daemons under a service manager: systemd's notifications (`READY=1` once the sockets
//! accept, `STOPPING=1`, `WATCHDOG=1`) read from a `NOTIFY_SOCKET` the test owns, and the
//! shipped logrotate file rotating a running daemon's log, and the log sent to syslog.

use std::os::unix::net::UnixDatagram;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::{Duration, Instant};

use crate::support::{Lab, api_block, connectable, free_port, wait_until};

/// A datagram socket standing in for systemd's notification socket.
struct NotifySocket {
    socket: UnixDatagram,
    path: PathBuf,
}

impl NotifySocket {
    fn bind(lab: &Lab) -> Self {
        let path = lab.path().join("notify");
        let socket = UnixDatagram::bind(&path).unwrap();
        Self { socket, path }
    }

    fn env(&self) -> (&'static str, &str) {
        ("NOTIFY_SOCKET", self.path.to_str().unwrap())
    }

    /// The next notification, within `timeout`.
    fn next(&self, timeout: Duration) -> Option<String> {
        self.socket.set_read_timeout(Some(timeout)).unwrap();
        let mut buf = [0u8; 4096];
        let len = self.socket.recv(&mut buf).ok()?;
        Some(String::from_utf8_lossy(&buf[..len]).into_owned())
    }

    /// Waits for the notification `what`, returning those seen before it.
    fn wait_for(&self, what: &str, timeout: Duration) -> Vec<String> {
        let deadline = Instant::now() + timeout;
        let mut seen = Vec::new();
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.next(left) {
                Some(message) if message == what => return seen,
                Some(message) => seen.push(message),
                None => break,
            }
        }
        panic!("no {what:?} within {timeout:?}; got {seen:?}");
    }
}

/// The `ret_port` the lab's master config names.
fn ret_port(lab: &Lab) -> u16 {
    let config = std::fs::read_to_string(lab.etc().join("master")).unwrap();
    config
        .lines()
        .find_map(|line| line.strip_prefix("ret_port: "))
        .unwrap()
        .parse()
        .unwrap()
}

#[test]
fn master_says_ready_once_its_bus_link_and_request_sockets_accept_and_stopping_on_sigterm() {
    let lab = Lab::new();
    let notify = NotifySocket::bind(&lab);
    let master = lab.spawn_daemon_with_env("salt-master", &[], &[notify.env()]);
    let before = notify.wait_for("READY=1\n", Duration::from_secs(20));
    assert!(before.is_empty(), "{before:?}");
    // Checked right after READY=1, not waited for.
    assert!(connectable(&lab.master_pub()));
    assert!(connectable(&lab.master_pull()));
    assert!(connectable(
        &lab.master_sock_dir().join("master_request.ipc")
    ));
    assert!(std::net::TcpStream::connect(("127.0.0.1", ret_port(&lab))).is_ok());
    master.signal(nix::sys::signal::Signal::SIGTERM);
    notify.wait_for("STOPPING=1\n", Duration::from_secs(10));
    assert!(master.wait_exit(Duration::from_secs(10)).success());
}

#[test]
fn master_that_cannot_bind_its_minion_port_never_says_ready() {
    let lab = Lab::new();
    let _taken = std::net::TcpListener::bind(("127.0.0.1", ret_port(&lab))).unwrap();
    let notify = NotifySocket::bind(&lab);
    let master = lab.spawn_daemon_with_env("salt-master", &[], &[notify.env()]);
    let status = master.wait_exit(Duration::from_secs(20));
    assert_eq!(status.code(), Some(1));
    assert_eq!(notify.next(Duration::from_millis(100)), None);
}

#[test]
fn minion_says_ready_once_its_bus_accepts_without_waiting_for_its_master() {
    let lab = Lab::new();
    let notify = NotifySocket::bind(&lab);
    let _minion = lab.spawn_daemon_with_env("salt-minion", &[], &[notify.env()]);
    notify.wait_for("READY=1\n", Duration::from_secs(20));
    assert!(connectable(&lab.minion_pub()));
    assert!(connectable(&lab.minion_pull()));
}

#[test]
fn api_says_ready_once_it_accepts_http() {
    let port = free_port();
    let lab = Lab::with_config(&api_block(port), "");
    let notify = NotifySocket::bind(&lab);
    let _api = lab.spawn_daemon_with_env("salt-api", &[], &[notify.env()]);
    notify.wait_for("READY=1\n", Duration::from_secs(20));
    assert!(std::net::TcpStream::connect(("127.0.0.1", port)).is_ok());
}

#[test]
fn watchdog_is_pinged_at_half_the_interval_systemd_asks_for() {
    let lab = Lab::new();
    let notify = NotifySocket::bind(&lab);
    // 400 ms: pings every 200 ms.
    let _master = lab.spawn_daemon_with_env(
        "salt-master",
        &[],
        &[notify.env(), ("WATCHDOG_USEC", "400000")],
    );
    notify.wait_for("READY=1\n", Duration::from_secs(20));
    let started = Instant::now();
    for _ in 0..3 {
        notify.wait_for("WATCHDOG=1\n", Duration::from_secs(2));
    }
    let elapsed = started.elapsed();
    assert!(
        elapsed >= Duration::from_millis(350) && elapsed < Duration::from_millis(1500),
        "three pings in {elapsed:?}"
    );
}

/// The shipped logrotate file with its paths moved into `lab`, and a `systemctl` of the test's
/// own on the `PATH` it runs its postrotate script with: it records how it was called and
/// sends SIGHUP to `pid`, as `systemctl kill` does to a unit's main process.
fn logrotate(lab: &Lab, pid: u32) -> (Command, PathBuf) {
    let shipped =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("pkg/halite.logrotate"))
            .unwrap();
    let logs = lab.path().join("log");
    let config = lab.path().join("logrotate.conf");
    std::fs::write(
        &config,
        shipped.replace("/var/log/salt/", &format!("{}/", logs.display())),
    )
    .unwrap();
    let stubs = lab.path().join("stubs");
    std::fs::create_dir_all(&stubs).unwrap();
    let calls = lab.path().join("systemctl-calls");
    let stub = stubs.join("systemctl");
    std::fs::write(
        &stub,
        format!(
            "#!/bin/sh\necho \"$@\" >> {}\nkill -HUP {pid}\n",
            calls.display()
        ),
    )
    .unwrap();
    std::fs::set_permissions(&stub, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let mut command = Command::new("logrotate");
    command
        .arg("--force")
        .arg("--state")
        .arg(lab.path().join("logrotate.state"))
        .arg(&config)
        .env(
            "PATH",
            format!(
                "{}:{}",
                stubs.display(),
                std::env::var("PATH").unwrap_or_default()
            ),
        );
    (command, calls)
}

#[test]
fn log_rotated_with_the_shipped_logrotate_file_goes_on_in_a_new_file() {
    if Command::new("logrotate").arg("--version").output().is_err() {
        return eprintln!("SKIPPED: no logrotate (tests/system-packages.sh installs Debian's)");
    }
    let mut lab = Lab::new();
    let pid = lab.start_master().pid();
    let log = lab.path().join("log/master");
    assert!(wait_until(Duration::from_secs(10), || lab
        .log("master")
        .contains("is up")));
    let (mut command, calls) = logrotate(&lab, pid);
    let output = command.output().unwrap();
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    assert_eq!(
        std::fs::read_to_string(&calls).unwrap(),
        "kill --kill-whom=main --signal=HUP salt-master.service\n"
    );
    let rotated = lab.path().join("log/master.1");
    assert!(std::fs::read_to_string(&rotated).unwrap().contains("is up"));
    assert!(
        wait_until(Duration::from_secs(10), || lab
            .log("master")
            .contains("reopened log file")),
        "no new log file: {:?}",
        std::fs::read_dir(lab.path().join("log"))
            .unwrap()
            .collect::<Vec<_>>()
    );
    // Not a minion: the master logs the refused connection at debug.
    drop(std::net::TcpStream::connect(("127.0.0.1", ret_port(&lab))).unwrap());
    assert!(
        wait_until(Duration::from_secs(10), || lab
            .log("master")
            .contains("refused a connection")),
        "{}",
        lab.log("master")
    );
    assert!(
        !std::fs::read_to_string(&rotated)
            .unwrap()
            .contains("refused a connection")
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&log).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o640);
}

/// Points the lab master's `log_file` at `value`.
fn set_master_log_file(lab: &Lab, value: &str) {
    let path = lab.etc().join("master");
    let config = std::fs::read_to_string(&path).unwrap();
    let own = format!("log_file: {}/log/master\n", lab.path().display());
    assert!(config.contains(&own));
    std::fs::write(&path, config.replace(&own, &format!("log_file: {value}\n"))).unwrap();
}

/// Receives lines from `recv` until one holds `what` (10 s at most).
fn receive_until(mut recv: impl FnMut(&mut [u8]) -> std::io::Result<usize>, what: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(10);
    let mut buf = [0_u8; 65536];
    let mut seen = Vec::new();
    while Instant::now() < deadline {
        if let Ok(len) = recv(&mut buf) {
            let line = String::from_utf8_lossy(&buf[..len]).into_owned();
            if line.contains(what) {
                return line;
            }
            seen.push(line);
        }
    }
    panic!("no line with {what:?}; received {seen:#?}");
}

/// As Salt, a `log_file` URL sends the daemon's log to syslog: a unix socket (`LOG_USER`
/// without a facility), UDP with the facility named; a reopen (SIGHUP) leaves it be, a syslog
/// away costs log lines, never the start, and an unknown facility is refused at start.
#[test]
fn log_file_as_a_syslog_url_sends_the_log_to_syslog() {
    let mut lab = Lab::new();
    let path = lab.path().join("log.sock");
    let socket = UnixDatagram::bind(&path).unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    set_master_log_file(&lab, &format!("file://{}", path.display()));
    let pid = lab.start_master().pid();
    // LOG_USER (1) at info (6): 14. One datagram per line, without its newline.
    let line = receive_until(|buf| socket.recv(buf), "is up");
    assert!(line.starts_with("<14>"), "{line}");
    assert!(line.contains(&format!("][INFO    ][{pid}] ")), "{line}");
    assert!(!line.ends_with('\n'), "{line:?}");
    assert!(!lab.path().join("log").exists(), "no log file was made");
    let master = nix::unistd::Pid::from_raw(i32::try_from(pid).unwrap());
    nix::sys::signal::kill(master, nix::sys::signal::Signal::SIGHUP).unwrap();
    // Not a minion: the master logs the refused connection at debug (7).
    drop(std::net::TcpStream::connect(("127.0.0.1", ret_port(&lab))).unwrap());
    let line = receive_until(|buf| socket.recv(buf), "refused a connection");
    assert!(line.starts_with("<15>"), "{line}");
    let (status, _) = lab.take_daemon().stop();
    assert!(status.success(), "{status:?}");

    let mut lab = Lab::new();
    let socket = std::net::UdpSocket::bind("127.0.0.1:0").unwrap();
    socket
        .set_read_timeout(Some(Duration::from_millis(200)))
        .unwrap();
    let port = socket.local_addr().unwrap().port();
    set_master_log_file(&lab, &format!("udp://127.0.0.1:{port}/LOG_LOCAL0"));
    lab.start_master();
    // LOG_LOCAL0 (16) at info: 16 * 8 + 6.
    let line = receive_until(|buf| socket.recv(buf), "is up");
    assert!(line.starts_with("<134>"), "{line}");
    lab.take_daemon().stop();

    let mut lab = Lab::new();
    let away = format!("file://{}/nobody.sock", lab.path().display());
    set_master_log_file(&lab, &away);
    lab.start_master();
    let (status, err) = lab.take_daemon().stop();
    assert!(status.success(), "{status:?}: {err}");
    assert!(
        err.contains(&format!("cannot send log lines to syslog at {away}: ")),
        "{err}"
    );

    let lab = Lab::new();
    set_master_log_file(&lab, "udp://127.0.0.1/LOG_NOPE");
    let output = lab.cmd("salt-master").output().unwrap();
    assert_eq!(output.status.code(), Some(1));
    let err = String::from_utf8_lossy(&output.stderr);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.starts_with(
            "error: log_file udp://127.0.0.1/LOG_NOPE: unknown syslog facility LOG_NOPE; end the URL with one of LOG_KERN, LOG_USER, "
        ),
        "{err}"
    );
}
