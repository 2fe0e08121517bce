//! Attacks from the security sweep, each refused: local bus clients, minion events and the reactor.

use std::time::Duration;

use halite::event::Value;
use halite::wire::Framing;

use crate::support::*;

/// The system's Python, which `nobody` may run (a user's pyenv shim may not be).
const SYSTEM_PYTHON: &str = "/usr/bin/python3";

/// How many bytes `nobody` (another local user) reads from a loopback port within `seconds`,
/// after sending `send`.
fn nobody_reads(port: u16, send: &[u8], seconds: f64) -> usize {
    use std::io::Write;
    let script = format!(
        r#"
import socket, sys, time
s = socket.create_connection(("127.0.0.1", {port}))
try:
    s.sendall(sys.stdin.buffer.read())
except OSError:
    pass
s.settimeout(0.2)
got, end = 0, time.time() + {seconds}
while time.time() < end:
    try:
        chunk = s.recv(65536)
    except socket.timeout:
        continue
    except OSError:
        break
    if not chunk:
        break
    got += len(chunk)
print(got)
"#
    );
    let mut child = as_nobody(SYSTEM_PYTHON)
        .args(["-c", &script])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("run python3 as nobody");
    child.stdin.take().unwrap().write_all(send).unwrap();
    let output = wait_output(child, Duration::from_secs(30));
    assert!(output.status.success(), "{}", stderr(&output));
    stdout(&output).trim().parse().expect("a byte count")
}

/// A lab whose master uses `ipc_mode: tcp` on the publish, pull and request ports returned,
/// when this test can act as another user (root, and the system's Python); else `None`, after
/// saying why.
fn tcp_lab_with_another_user() -> Option<(Lab, [u16; 3])> {
    if !running_as_root() || !std::path::Path::new(SYSTEM_PYTHON).exists() {
        eprintln!("skipped: needs root and {SYSTEM_PYTHON} to act as another local user");
        return None;
    }
    let ports = [free_port(), free_port(), free_port()];
    let [publish, pull, requests] = ports;
    let lab = Lab::with_config(
        &format!(
            "ipc_mode: tcp\ntcp_master_pub_port: {publish}\ntcp_master_pull_port: {pull}\ntcp_master_workers: {requests}\n"
        ),
        "",
    );
    Some((lab, ports))
}

/// With `ipc_mode: tcp` the bus and request ports are loopback ports any local user can reach;
/// the sweep read every event, fired `salt/key {act: delete}` and held 1.2 GB of unfinished
/// frames on the request port as an unprivileged user. Only root and the master's user may
/// use them now, as with the socket files' modes.
#[test]
fn tcp_mode_ports_refuse_other_local_users() {
    let Some((lab, [publish, pull, requests])) = tcp_lab_with_another_user() else {
        return;
    };
    let master = lab.spawn_daemon("salt-master", &[]);
    assert!(wait_until(Duration::from_secs(10), || {
        std::net::TcpStream::connect(("127.0.0.1", requests)).is_ok()
    }));
    let mut command = lab.cmd("salt-run");
    command.args(["state.event", "sweep/*"]);
    let watcher = Watcher::spawn(command);
    std::thread::sleep(Duration::from_millis(500));

    // Reading: nobody subscribes while root fires; nothing reaches nobody.
    let reader = std::thread::spawn(move || nobody_reads(publish, b"", 3.0));
    std::thread::sleep(Duration::from_millis(1000));
    for _ in 0..5 {
        let output = lab.run("salt-run", &["event.send", "sweep/root", "{by: root}"]);
        assert!(output.status.success(), "{}", stderr(&output));
    }
    watcher.expect("sweep/root", Duration::from_secs(5));
    assert_eq!(reader.join().unwrap(), 0, "nobody read the master's events");

    // Writing: nobody's event never reaches the bus.
    let forged = frame(
        "sweep/nobody",
        &map(&[("act", Value::from("delete"))]),
        Framing::Bare,
    );
    assert_eq!(nobody_reads(pull, &forged, 1.0), 0);
    let forged = frame(
        "sweep/nobody",
        &map(&[("act", Value::from("delete"))]),
        Framing::LengthPrefixed,
    );
    assert_eq!(nobody_reads(pull, &forged, 1.0), 0);
    // Sending and closing at once, so that the sender's socket is gone (listed as root's) by
    // the time the daemon looks it up.
    let burst = format!(
        r#"
import socket, sys
frame = sys.stdin.buffer.read()
for _ in range(200):
    s = socket.create_connection(("127.0.0.1", {pull}))
    s.sendall(frame)
    s.close()
"#
    );
    let mut child = as_nobody(SYSTEM_PYTHON)
        .args(["-c", &burst])
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    {
        use std::io::Write;
        child.stdin.take().unwrap().write_all(&forged).unwrap();
    }
    let output = wait_output(child, Duration::from_secs(60));
    assert!(output.status.success(), "{}", stderr(&output));
    let output = lab.run("salt-run", &["event.send", "sweep/after", "{}"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let seen = watcher.drain(Duration::from_secs(2));
    assert!(
        seen.iter().all(|line| !line.starts_with("sweep/nobody")),
        "{seen:?}"
    );

    // The request port: 20 connections announcing 59 MiB frames and sending 1 MiB each are
    // closed at once and cost the master nothing.
    let mut bomb = (59u32 * 1024 * 1024).to_be_bytes().to_vec();
    bomb.extend(std::iter::repeat_n(0x90u8, 1024 * 1024));
    let bombers: Vec<_> = (0..20)
        .map(|_| {
            let bomb = bomb.clone();
            std::thread::spawn(move || nobody_reads(requests, &bomb, 2.0))
        })
        .collect();
    for bomber in bombers {
        assert_eq!(bomber.join().unwrap(), 0);
    }
    let rss_kb: u64 = std::fs::read_to_string(format!("/proc/{}/status", master.pid()))
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|kb| kb.trim().trim_end_matches(" kB").trim().parse().ok())
        .unwrap();
    assert!(rss_kb < 100 * 1024, "master RSS {rss_kb} kB");
    assert!(
        lab.log("master")
            .contains("only root and the daemon's user"),
        "the refusals are logged"
    );
    // Root still publishes and asks.
    let output = lab.run("salt-run", &["event.send", "sweep/still", "{}"]);
    assert!(output.status.success(), "{}", stderr(&output));
    watcher.expect("sweep/still", Duration::from_secs(5));
}

/// `salt-run reactor.list` sent the master's root key in an event on the bus (as Salt does),
/// where every subscriber read it; it asks over the request socket now.
#[test]
fn reactor_list_keeps_the_root_key_off_the_bus() {
    let mut lab = Lab::with_config("reactor:\n  - 'sweep/*': [/srv/nowhere/x.sls]\n", "");
    lab.start_master();
    let mut command = lab.cmd("salt-run");
    command.args(["state.event"]);
    let watcher = Watcher::spawn(command);
    watcher.sync(&lab.master_pull());
    let output = lab.run("salt-run", &["reactor.list", "--out=json"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let listed: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
    assert_eq!(
        listed,
        serde_json::json!([{"sweep/*": ["/srv/nowhere/x.sls"]}])
    );
    let key = std::fs::read_to_string(lab.path().join("cache/master/.root_key")).unwrap();
    let lines = watcher.drain(Duration::from_secs(1));
    assert!(!lines.is_empty(), "the runner's own events were seen");
    assert!(
        lines.iter().all(|line| !line.contains(key.trim())),
        "the root key went over the bus: {lines:?}"
    );
}

/// A minion fired tags the master owns (`salt/auth`, another minion's start and beacons, a
/// `salt/key` smuggled behind `\n\n`, control characters): all refused; its own tags pass.
#[test]
fn minions_cannot_fire_the_masters_tags() {
    let mut cluster = Cluster::new("auto_accept: True\n");
    cluster.start_master();
    cluster.start_minion("m1", "");
    cluster.start_minion("m2", "");
    cluster.wait_connected(&["m1", "m2"]);
    let watcher = cluster.watch();
    let sends: &[&[&str]] = &[
        &[
            "event.send",
            "salt/auth",
            "{act: accept, id: evil, result: true}",
        ],
        &["event.send", "salt/minion/m2/start", "{}"],
        &["event.send", "salt/beacon/m2/inotify/", "{}"],
        &["event.send", "salt/presence/change", "{new: [evil]}"],
        &["event.send", "halite/bus/lost", "{}"],
        &[
            "event.fire_master",
            "{act: delete, id: m2}",
            "x\n\nsalt/key",
        ],
        &["event.fire_master", "{}", "sweep/\u{1b}[2Jclear"],
        &["event.fire_master", "{}", "salt\u{200b}/auth"],
        // Allowed tags whose data names another minion (a start reactor would target `?*`).
        &[
            "event.fire",
            r#"{"events": [{"tag": "salt/minion/m1/start", "data": {"id": "?*"}}, {"tag": "sweep/listed", "data": {"id": "m2"}}]}"#,
            "fire_master",
        ],
        &["event.send", "salt/beacon/m1/load/", "{load: 1}"],
        &["event.send", "sweep/custom", "{ok: true}"],
    ];
    for args in sends {
        let output = cluster.call("m1", args);
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
    }
    watcher.expect("sweep/custom", Duration::from_secs(10));
    let lines = watcher.drain(Duration::from_secs(1));
    let tags: Vec<&str> = lines
        .iter()
        .filter_map(|line| line.split('\t').next())
        .collect();
    for refused in [
        "salt/auth",
        "salt/minion/m2/start",
        "salt/minion/m1/start",
        "sweep/listed",
        "salt/beacon/m2/inotify/",
        "salt/presence/change",
        "halite/bus/lost",
        "x",
        "salt/key",
    ] {
        assert!(!tags.contains(&refused), "{refused} got through: {tags:?}");
    }
    assert!(
        tags.iter()
            .all(|tag| !tag.contains(['\u{1b}', '\u{200b}', '\\'])),
        "{tags:?}"
    );
    // Refusals are logged, counted, at most once a second per minion, escaped.
    assert!(
        wait_until(Duration::from_secs(5), || cluster.master_log().contains(
            "from minion m1 since the last report; the latest: salt/auth: "
        )),
        "{}",
        cluster.master_log()
    );
    let log = cluster.master_log();
    assert!(
        !log.contains('\u{1b}') && !log.contains('\u{200b}'),
        "{log}"
    );
    assert!(!log.contains("x\n\nsalt/key"), "{log}");
    // m2 kept its session, and m1's own beacon went through (fired before sweep/custom).
    let output = cluster.run("salt", &["m2", "test.ping", "--out=json"]);
    assert!(
        stdout(&output).contains("\"m2\": true"),
        "{}",
        stdout(&output)
    );
    let beacon = cluster.call("m1", &["event.send", "salt/beacon/m1/load/", "{load: 2}"]);
    assert!(beacon.status.success());
    watcher.expect("salt/beacon/m1/load/", Duration::from_secs(10));
}

/// The README's own reactor files pasted event data into YAML after Jinja, so data holding a
/// line break and a `local.cmd.run` block ran commands on every minion; the same data now
/// stops at a render error naming the value, and plain data still reacts.
#[test]
fn event_data_cannot_add_reactions() {
    let mut cluster = Cluster::new("auto_accept: True\n");
    let root = cluster.path().display().to_string();
    std::fs::create_dir_all(cluster.path().join("srv")).unwrap();
    std::fs::create_dir_all(cluster.path().join("out")).unwrap();
    std::fs::write(
        cluster.path().join("srv/who.sls"),
        format!(
            "touch:\n  local.cmd.run:\n    - tgt: {{{{ data['data']['who'] }}}}\n    - arg: ['touch {root}/out/ran']\n"
        ),
    )
    .unwrap();
    cluster.edit_master_config(
        "interface:",
        &format!("reactor:\n  - 'sweep/who':\n    - {root}/srv/who.sls\ninterface:"),
    );
    cluster.start_master();
    cluster.start_minion("m1", "");
    cluster.wait_connected(&["m1"]);
    let watcher = cluster.watch();
    let forged = format!(
        "{{who: \"nomatch\\npwn:\\n  local.cmd.run:\\n    - tgt: '*'\\n    - arg: ['touch {root}/out/pwned']\"}}"
    );
    let output = cluster.call("m1", &["event.send", "sweep/who", &forged]);
    assert!(output.status.success(), "{}", stderr(&output));
    let error = watcher.expect("salt/reactor/error/render", Duration::from_secs(10));
    assert!(error.contains("would change the YAML"), "{error}");
    let output = cluster.call("m1", &["event.send", "sweep/who", "{who: m1}"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let ran = cluster.path().join("out/ran");
    assert!(
        wait_until(Duration::from_secs(10), || ran.exists()),
        "plain data still reacts; master log:\n{}",
        cluster.master_log()
    );
    assert!(!cluster.path().join("out/pwned").exists());
}

/// With `ipc_mode: tcp` and the master down, another local user took its request port, and a
/// root `salt` sent it the master's root key. Root's commands use only ports held by root, by
/// themselves or by the configured daemon user.
#[test]
fn root_commands_do_not_talk_to_another_users_port() {
    let Some((lab, [publish, pull, requests])) = tcp_lab_with_another_user() else {
        return;
    };
    // The master ran once (so a root key exists) and is down.
    let master = lab.spawn_daemon("salt-master", &[]);
    let root_key = lab.path().join("cache/master/.root_key");
    assert!(wait_until(Duration::from_secs(10), || root_key.exists()));
    master.stop();
    let listen = |port: u16| {
        as_nobody(SYSTEM_PYTHON)
            .args([
                "-c",
                &format!(
                    r#"
import socket
s = socket.socket()
s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
# Bound to the loopback device, which hides it from a lookup that names no device.
try:
    s.setsockopt(socket.SOL_SOCKET, socket.SO_BINDTODEVICE, b"lo")
except OSError:
    pass
s.bind(("127.0.0.1", {port}))
s.listen(8)
s.settimeout(8)
got = 0
try:
    while True:
        c, _ = s.accept()
        c.settimeout(1)
        try:
            got += len(c.recv(65536))
        except OSError:
            pass
except OSError:
    pass
print(got)
"#
                ),
            ])
            .stdout(std::process::Stdio::piped())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .unwrap()
    };
    let listeners = [listen(requests), listen(publish), listen(pull)];
    std::thread::sleep(Duration::from_millis(500));
    let output = lab.run("salt", &["*", "test.ping"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stderr(&output).contains("permission denied"),
        "{}",
        stderr(&output)
    );
    let output = lab.run("salt-run", &["event.send", "sweep/x", "{}"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    for listener in listeners {
        let output = wait_output(listener, Duration::from_secs(20));
        assert_eq!(stdout(&output).trim(), "0", "nobody received root's bytes");
    }
}
