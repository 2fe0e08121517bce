//! The `service`, `ps`, `wtmp`, `btmp`, `journald`, `log` and `script` beacons on real
//! processes, files and journals, their events compared with what Salt 3007.8's modules fire
//! for the same input (run by tests/beacon_salt_procs.py) where those run without root and without
//! Python modules the test venv lacks.

use std::fs::OpenOptions;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};
use std::time::{Duration, Instant};

use halite::beacons::{Beacon, Host, run};
use halite::event::Value;
use serde_json::{Value as Json, json};

use crate::support::{Lab, MINION_ID, RawSubscriber, wait_until};

/// One of Salt's beacon modules, checked on demand.
struct Salt {
    child: Child,
    stdin: ChildStdin,
    stdout: BufReader<ChildStdout>,
}

impl Salt {
    /// Salt's `module` with `config` (its list form), or `None` (said) without the venv.
    fn start(module: &str, config: &Json, setup: Json) -> Option<Salt> {
        let venv = match crate::conformance::installed("3007.8") {
            Ok(venv) => venv,
            Err(missing) => {
                eprintln!("SKIPPED the comparison with Salt: {missing}");
                return None;
            }
        };
        let mut child = Command::new(venv.join("bin/python"))
            .arg(Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/beacon_salt_procs.py"))
            .args([module, &config.to_string(), &setup.to_string()])
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .spawn()
            .expect("python runs");
        let stdin = child.stdin.take().unwrap();
        let stdout = BufReader::new(child.stdout.take().unwrap());
        Some(Salt {
            child,
            stdin,
            stdout,
        })
    }

    /// The events of one `beacon()` call.
    fn check(&mut self) -> Json {
        writeln!(self.stdin, "check").unwrap();
        let mut line = String::new();
        self.stdout.read_line(&mut line).unwrap();
        serde_json::from_str(&line).unwrap_or_else(|_| panic!("Salt's module failed: {line:?}"))
    }
}

impl Drop for Salt {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// halite's beacon `module` configured as `config` (Salt's list form) on `host`.
fn halite(module: &str, config: &Json, host: &Host) -> Box<dyn Beacon> {
    let given: Value = serde_json::from_value(config.clone()).unwrap();
    run::start(module, &given, host).unwrap_or_else(|problem| panic!("{problem}"))
}

/// One check's events as JSON (each still with its `tag` key, as Salt's module returns them).
fn check(beacon: &mut Box<dyn Beacon>) -> Json {
    let events = beacon
        .check()
        .unwrap_or_else(|err| panic!("check failed: {err}"));
    serde_json::to_value(&events).unwrap()
}

/// Checks `salt` when there is one, and returns its events.
fn salt_check(salt: &mut Option<Salt>) -> Option<Json> {
    salt.as_mut().map(Salt::check)
}

/// Checks until `want` events came, for beacons that read a command.
fn events_within(beacon: &mut Box<dyn Beacon>, want: usize, timeout: Duration) -> Vec<Json> {
    let mut found = Vec::new();
    let deadline = Instant::now() + timeout;
    while found.len() < want && Instant::now() < deadline {
        if let Json::Array(events) = check(beacon) {
            found.extend(events);
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    found
}

/// A copy of `sleep` under `name`, started; killed and reaped on drop.
struct Sleeper(Child);

impl Sleeper {
    fn start(dir: &Path, name: &str) -> Self {
        let program = dir.join(name);
        if !program.exists() {
            std::fs::copy("/bin/sleep", &program).unwrap();
        }
        Self(Command::new(program).arg("300").spawn().unwrap())
    }
}

impl Drop for Sleeper {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn ps_reports_processes_running_and_stopped_as_salt_does() {
    let dir = tempfile::tempdir().unwrap();
    let id = std::process::id();
    // Longer than the kernel's 15 bytes: named from the first argument, as psutil names it.
    let long = format!("halite-sleeper-{id}");
    let short = format!("hs{}", id % 100_000);
    let config = json!([{"processes": {
        long.as_str(): "running",
        short.as_str(): "stopped",
        "halite-absent-xyz": "stopped",
    }}]);
    let mut ours = halite("ps", &config, &Host::real());
    let mut salt = Salt::start("ps", &config, json!({}));
    let mut step = |want: Json| {
        let got = check(&mut ours);
        assert_eq!(got, want);
        if let Some(salts) = salt_check(&mut salt) {
            assert_eq!(got, salts, "Salt's ps beacon differs");
        }
    };
    // In the order of the map (JSON's here: sorted).
    step(json!([{"halite-absent-xyz": "Stopped"}, {short.as_str(): "Stopped"}]));
    let sleepers = (
        Sleeper::start(dir.path(), &long),
        Sleeper::start(dir.path(), &short),
    );
    step(json!([{"halite-absent-xyz": "Stopped"}, {long.as_str(): "Running"}]));
    drop(sleepers);
    step(json!([{"halite-absent-xyz": "Stopped"}, {short.as_str(): "Stopped"}]));
}

#[test]
fn service_reports_each_check_or_changes_with_unclean_shutdowns_as_salt_does() {
    let dir = tempfile::tempdir().unwrap();
    let id = std::process::id();
    let every = format!("halite-service-{id}");
    let changes = format!("hsv{}", id % 100_000);
    let pidfile = dir.path().join("changes.pid");
    let config = json!([{"services": {
        every.as_str(): {},
        changes.as_str(): {"onchangeonly": true, "uncleanshutdown": pidfile},
    }}]);
    let mut ours = halite("service", &config, &Host::real());
    let mut salt = Salt::start("service", &config, json!({}));
    let event = |name: &str, state: Json| json!({name: state, "service_name": name, "tag": name});
    let mut step = |want: Json| {
        let got = check(&mut ours);
        assert_eq!(got, want);
        if let Some(salts) = salt_check(&mut salt) {
            assert_eq!(got, salts, "Salt's service beacon differs");
        }
    };
    step(json!([
        event(&every, json!({"running": false})),
        event(
            &changes,
            json!({"running": false, "uncleanshutdown": false})
        ),
    ]));
    let sleepers = (
        Sleeper::start(dir.path(), &every),
        Sleeper::start(dir.path(), &changes),
    );
    std::fs::write(&pidfile, "1").unwrap();
    step(json!([
        event(&every, json!({"running": true})),
        event(&changes, json!({"running": true})),
    ]));
    step(json!([event(&every, json!({"running": true}))]));
    // Killed: the pid file stays behind.
    drop(sleepers);
    step(json!([
        event(&every, json!({"running": false})),
        event(&changes, json!({"running": false, "uncleanshutdown": true})),
    ]));
    step(json!([event(&every, json!({"running": false}))]));
}

#[test]
fn service_delay_holds_a_change_back_for_its_seconds() {
    let dir = tempfile::tempdir().unwrap();
    let name = format!("hsd{}", std::process::id() % 100_000);
    let config = json!([{"services": {name.as_str(): {"onchangeonly": true, "delay": 1, "emitatstartup": false}}}]);
    let mut ours = halite("service", &config, &Host::real());
    assert_eq!(check(&mut ours), json!([]));
    let sleeper = Sleeper::start(dir.path(), &name);
    let changed = Instant::now();
    assert_eq!(check(&mut ours), json!([]));
    let mut fired = Vec::new();
    while fired.is_empty() && changed.elapsed() < Duration::from_secs(5) {
        std::thread::sleep(Duration::from_millis(100));
        if let Json::Array(events) = check(&mut ours) {
            fired = events;
        }
    }
    // Salt's rule: the seconds since the change, rounded, more than the delay.
    assert!(
        changed.elapsed() >= Duration::from_millis(1500),
        "{:?}",
        changed.elapsed()
    );
    assert_eq!(
        fired,
        [json!({name.as_str(): {"running": true}, "service_name": name, "tag": name})]
    );
    drop(sleeper);
}

/// A utmp record, written field by field in glibc's x86_64 layout (384 bytes).
#[derive(Clone)]
struct Utmp {
    kind: i16,
    pid: i32,
    line: &'static str,
    id: &'static str,
    user: &'static str,
    host: &'static str,
    termination: i16,
    exit: i16,
    session: i32,
    seconds: i32,
    addr: [u8; 16],
}

impl Utmp {
    fn login(user: &'static str, line: &'static str, seconds: i32) -> Self {
        Self {
            kind: 7,
            pid: 4242,
            line,
            id: "ts/1",
            user,
            host: "198.51.100.7",
            termination: 0,
            exit: 3,
            session: 11,
            seconds,
            addr: [198, 51, 100, 7, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        }
    }

    fn bytes(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(384);
        let text = |out: &mut Vec<u8>, text: &str, len: usize| {
            let mut field = text.as_bytes().to_vec();
            field.resize(len, 0);
            out.extend(field);
        };
        out.extend(self.kind.to_ne_bytes());
        out.extend([0, 0]);
        out.extend(self.pid.to_ne_bytes());
        text(&mut out, self.line, 32);
        text(&mut out, self.id, 4);
        text(&mut out, self.user, 32);
        text(&mut out, self.host, 256);
        out.extend(self.termination.to_ne_bytes());
        out.extend(self.exit.to_ne_bytes());
        out.extend(self.session.to_ne_bytes());
        out.extend(self.seconds.to_ne_bytes());
        out.extend(123_456_i32.to_ne_bytes());
        out.extend(self.addr);
        out.extend([0; 20]);
        assert_eq!(out.len(), 384);
        out
    }
}

fn append(path: &Path, bytes: &[u8]) {
    OpenOptions::new()
        .append(true)
        .create(true)
        .open(path)
        .unwrap()
        .write_all(bytes)
        .unwrap();
}

fn append_records(path: &Path, records: &[Utmp]) {
    append(
        path,
        &records.iter().flat_map(Utmp::bytes).collect::<Vec<_>>(),
    );
}

/// A system root with `var/log/<file>` holding one old record and an `etc/group`.
fn utmp_root(file: &str) -> (tempfile::TempDir, PathBuf) {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(root.path().join("var/log")).unwrap();
    std::fs::create_dir_all(root.path().join("etc")).unwrap();
    std::fs::write(
        root.path().join("etc/group"),
        "root:x:0:\nwheel:x:10:bob,dave\n",
    )
    .unwrap();
    let path = root.path().join("var/log").join(file);
    append_records(&path, &[Utmp::login("old", "pts/9", 1)]);
    (root, path)
}

fn users(events: &Json) -> Vec<String> {
    events
        .as_array()
        .unwrap()
        .iter()
        .map(|event| event["user"].as_str().unwrap().to_owned())
        .collect()
}

#[test]
fn wtmp_reads_new_records_with_each_field_where_salt_shifts_three() {
    let (root, path) = utmp_root("wtmp");
    let config = json!([{"file": "/var/log/wtmp"}]);
    let mut ours = halite("wtmp", &config, &Host::at(root.path()));
    let mut salt = Salt::start("wtmp", &json!([]), json!({"file": path}));
    assert_eq!(check(&mut ours), json!([]));
    assert_eq!(salt_check(&mut salt).unwrap_or(json!([])), json!([]));
    let login = Utmp::login("alice", "pts/1", 1_700_000_000);
    let logout = Utmp {
        kind: 8,
        user: "",
        host: "",
        exit: 0,
        session: 0,
        seconds: 1_700_000_100,
        addr: [0; 16],
        ..login.clone()
    };
    let boot = Utmp {
        kind: 2,
        pid: 0,
        line: "~",
        id: "~~",
        user: "reboot",
        host: "6.1.0",
        exit: 0,
        session: 0,
        seconds: 1_699_999_000,
        addr: [0; 16],
        ..login.clone()
    };
    let v6 = Utmp {
        line: "pts/2",
        addr: "2001:db8::7"
            .parse::<std::net::Ipv6Addr>()
            .unwrap()
            .octets(),
        ..Utmp::login("bob", "pts/2", 1_700_000_200)
    };
    append_records(&path, &[login, logout, boot, v6]);
    let got = check(&mut ours);
    let record = |kind: i16,
                  line: &str,
                  id: &str,
                  user: &str,
                  host: &str,
                  session: i32,
                  time: i32,
                  addr: &str| {
        json!({"type": kind, "PID": if kind == 2 { 0 } else { 4242 }, "line": line, "inittab": id,
               "user": user, "hostname": host, "exit_status": 0, "session": session, "time": time,
               "addr": addr})
    };
    let with_action = |mut event: Json, action: &str| {
        event["action"] = json!(action);
        event
    };
    assert_eq!(
        got,
        json!([
            with_action(
                record(
                    7,
                    "pts/1",
                    "ts/1",
                    "alice",
                    "198.51.100.7",
                    11,
                    1_700_000_000,
                    "198.51.100.7"
                ),
                "login"
            ),
            // A logout carries no user: it gets its terminal's.
            with_action(
                record(8, "pts/1", "ts/1", "alice", "", 0, 1_700_000_100, ""),
                "logout"
            ),
            record(2, "~", "~~", "reboot", "6.1.0", 0, 1_699_999_000, ""),
            with_action(
                record(
                    7,
                    "pts/2",
                    "ts/1",
                    "bob",
                    "198.51.100.7",
                    11,
                    1_700_000_200,
                    "2001:db8::7"
                ),
                "login"
            ),
        ])
    );
    if let Some(salts) = salt_check(&mut salt) {
        let salts = salts.as_array().unwrap();
        assert_eq!(salts.len(), 4, "{salts:?}");
        for (ours, salts) in got.as_array().unwrap().iter().zip(salts) {
            for field in [
                "type",
                "PID",
                "line",
                "inittab",
                "user",
                "hostname",
                "exit_status",
                "action",
            ] {
                assert_eq!(ours.get(field), salts.get(field), "{field}");
            }
            // Salt's names are shifted: its session is e_exit, its time ut_session, its addr
            // tv_sec.
            let exit = if ours["type"] == json!(7) { 3 } else { 0 };
            assert_eq!(salts["session"], json!(exit));
            assert_eq!(salts["time"], ours["session"]);
            assert_eq!(salts["addr"], ours["time"]);
        }
    }
    // Half a record waits for the rest.
    let late = Utmp::login("carol", "pts/3", 1_700_000_300).bytes();
    append(&path, &late[..100]);
    assert_eq!(check(&mut ours), json!([]));
    append(&path, &late[100..]);
    assert_eq!(users(&check(&mut ours)), ["carol"]);
    // Rotated: the old file's last record, then the new file's.
    append_records(&path, &[Utmp::login("dave", "pts/4", 1_700_000_400)]);
    std::fs::rename(&path, path.with_extension("1")).unwrap();
    append_records(&path, &[Utmp::login("erin", "pts/5", 1_700_000_500)]);
    let mut seen = users(&check(&mut ours));
    seen.extend(users(&check(&mut ours)));
    assert_eq!(seen, ["dave", "erin"]);
    // Truncated and written again.
    std::fs::write(&path, Utmp::login("frank", "pts/6", 1_700_000_600).bytes()).unwrap();
    assert_eq!(users(&check(&mut ours)), ["frank"]);
}

#[test]
fn wtmp_users_and_groups_filter_as_salt_does() {
    let (root, path) = utmp_root("wtmp");
    let config = json!([{"users": {"alice": {}}}, {"groups": {"wheel": null}}]);
    let mut ours = halite("wtmp", &config, &Host::at(root.path()));
    let group = root.path().join("etc/group");
    let mut salt = Salt::start("wtmp", &config, json!({"file": path, "group": group}));
    check(&mut ours);
    salt_check(&mut salt);
    append_records(
        &path,
        &["alice", "bob", "carol", "dave"].map(|user| Utmp::login(user, "pts/1", 1_700_000_000)),
    );
    let got = check(&mut ours);
    assert_eq!(users(&got), ["alice", "bob", "dave"]);
    if let Some(salts) = salt_check(&mut salt) {
        assert_eq!(users(&salts), users(&got));
    }
}

#[test]
fn wtmp_time_ranges_hold_the_records_of_their_hours() {
    let (root, path) = utmp_root("wtmp");
    let config = json!([
        {"users": {"alice": {"time_range": {"start": "8am", "end": "4pm"}}}},
        {"groups": {"wheel": {}}},
        {"defaults": {"time_range": {"start": "2026-05-01", "end": "2026-05-31 23:59:59"}}},
    ]);
    let mut ours = halite("wtmp", &config, &Host::at(root.path()));
    let mut salt = Salt::start(
        "wtmp",
        &config,
        json!({"file": path, "group": root.path().join("etc/group")}),
    );
    check(&mut ours);
    salt_check(&mut salt);
    let local = |date: &str| {
        let at: jiff::civil::DateTime = date.parse().unwrap();
        let seconds = at
            .to_zoned_datetime(jiff::tz::TimeZone::system())
            .unwrap()
            .timestamp()
            .as_second();
        i32::try_from(seconds).unwrap()
    };
    append_records(
        &path,
        &[
            Utmp::login("alice", "pts/1", local("2026-06-01T09:00")),
            Utmp::login("alice", "pts/1", local("2026-06-01T17:00")),
            Utmp::login("bob", "pts/2", local("2026-05-10T12:00")),
            Utmp::login("bob", "pts/2", local("2026-06-10T12:00")),
            Utmp::login("carol", "pts/3", local("2026-05-10T12:00")),
        ],
    );
    let got = check(&mut ours);
    let times: Vec<_> = got
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["time"].clone())
        .collect();
    assert_eq!(users(&got), ["alice", "bob"]);
    assert_eq!(
        times,
        [
            json!(local("2026-06-01T09:00")),
            json!(local("2026-05-10T12:00"))
        ]
    );
    // Salt checks time ranges with python-dateutil, which the venv (like many minions) lacks:
    // then nothing matches.
    if let Some(salts) = salt_check(&mut salt) {
        assert_eq!(salts, json!([]));
    }
}

#[test]
fn btmp_reads_failed_logins_as_salt_does() {
    let (root, path) = utmp_root("btmp");
    let mut ours = halite("btmp", &json!([]), &Host::at(root.path()));
    let mut salt = Salt::start("btmp", &json!([]), json!({"file": path}));
    check(&mut ours);
    salt_check(&mut salt);
    let failed = Utmp {
        kind: 6,
        host: "203.0.113.9",
        addr: [203, 0, 113, 9, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0],
        ..Utmp::login("root", "ssh:notty", 1_700_000_000)
    };
    append_records(&path, &[failed]);
    let got = check(&mut ours);
    assert_eq!(
        got,
        json!([{"type": 6, "PID": 4242, "line": "ssh:notty", "inittab": "ts/1", "user": "root",
                "hostname": "203.0.113.9", "exit_status": 0, "session": 11,
                "time": 1_700_000_000, "addr": "203.0.113.9"}])
    );
    if let Some(salts) = salt_check(&mut salt) {
        assert_eq!(salts[0]["user"], got[0]["user"]);
        assert_eq!(salts[0]["hostname"], got[0]["hostname"]);
        assert_eq!(salts[0]["addr"], got[0]["time"]);
        assert!(salts[0].get("action").is_none());
    }
    std::fs::remove_file(&path).unwrap();
    let err = halite("btmp", &json!([]), &Host::at(root.path())).check();
    assert!(err.unwrap_err().contains("var/log/btmp"));
}

#[test]
fn log_matches_appended_lines_as_salt_does_and_follows_rotation() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("auth.log");
    std::fs::write(&path, "sshd: before the start\n").unwrap();
    let config = json!([
        {"file": path},
        {"tags": {"sshd": {"regex": ".*sshd.*"}, "auth/failed": {"regex": "FAILED"}}},
    ]);
    let mut ours = halite("log", &config, &Host::real());
    let mut salt = Salt::start("log_beacon", &config, json!({}));
    assert_eq!(check(&mut ours), json!([]));
    salt_check(&mut salt);
    append(
        &path,
        b"Jan 1 sshd[7]: accepted\nFAILED login for sshd\nnothing\n",
    );
    let event = |tag: &str, raw: &str| json!({"tag": tag, "match": "yes", "raw": raw, "error": ""});
    let got = check(&mut ours);
    assert_eq!(
        got,
        json!([
            event("sshd", "Jan 1 sshd[7]: accepted"),
            // Tags in the order of the map (JSON's here: sorted).
            event("auth/failed", "FAILED login for sshd"),
            event("sshd", "FAILED login for sshd"),
        ])
    );
    if let Some(salts) = salt_check(&mut salt) {
        assert_eq!(got, salts, "Salt's log beacon differs");
    }
    // Rotation: the old file's last lines, then the new file from its start.
    append(&path, b"sshd: last in the old file\n");
    std::fs::rename(&path, dir.path().join("auth.log.1")).unwrap();
    std::fs::write(&path, "sshd: first in the new file\n").unwrap();
    let mut rotated = check(&mut ours).as_array().unwrap().clone();
    rotated.extend(check(&mut ours).as_array().unwrap().clone());
    assert_eq!(
        rotated,
        [
            event("sshd", "sshd: last in the old file"),
            event("sshd", "sshd: first in the new file")
        ]
    );
    salt_check(&mut salt);
    // Truncated in place and written again: halite reads the new lines; Salt reads on from
    // its old position and loses them.
    std::fs::write(&path, "").unwrap();
    salt_check(&mut salt);
    append(&path, b"sshd: after truncation\n");
    assert_eq!(
        check(&mut ours),
        json!([event("sshd", "sshd: after truncation")])
    );
    if let Some(salts) = salt_check(&mut salt) {
        assert_eq!(salts, json!([]));
    }
}

#[test]
fn script_turns_json_lines_into_events_and_other_lines_into_errors() {
    let config = json!([{"command": ["sh", "-c",
        r#"echo '{"tag": "usb", "device": "sdb"}'; echo 'not json'; echo; echo "{\"pid\": $$}"; exec sleep 300"#]}]);
    let mut ours = halite("script", &config, &Host::real());
    let events = events_within(&mut ours, 3, Duration::from_secs(10));
    assert_eq!(events.len(), 3, "{events:?}");
    assert_eq!(events[0], json!({"tag": "usb", "device": "sdb"}));
    assert_eq!(
        events[1],
        json!({"tag": "error", "beacon_module": "script",
               "error": "the command wrote a line that is not a JSON object: not json"})
    );
    let pid = events[2]["pid"].as_u64().unwrap();
    assert!(Path::new(&format!("/proc/{pid}")).exists());
    // Dropping the beacon kills the command (now `sleep`).
    drop(ours);
    assert!(wait_until(Duration::from_secs(5), || !Path::new(&format!(
        "/proc/{pid}"
    ))
    .exists()));
}

#[test]
fn script_starts_a_command_that_ended_again_after_a_growing_delay() {
    let config = json!([{"command": ["sh", "-c", r#"echo '{"run": 1}'; echo bye >&2; exit 2"#]}]);
    let mut ours = halite("script", &config, &Host::real());
    let started = Instant::now();
    let ended = json!({"tag": "error", "beacon_module": "script", "error": "sh ended (exit status: 2): bye"});
    let mut runs = Vec::new();
    let mut events = Vec::new();
    while runs.len() < 3 && started.elapsed() < Duration::from_secs(10) {
        for event in events_within(&mut ours, 1, Duration::from_millis(100)) {
            if event == json!({"run": 1}) {
                runs.push(started.elapsed());
            }
            events.push(event);
        }
    }
    assert_eq!(
        events[..5],
        [
            json!({"run": 1}),
            ended.clone(),
            json!({"run": 1}),
            ended,
            json!({"run": 1})
        ]
    );
    // Started again after 1 s, then after 2 s more.
    assert!(runs[1] - runs[0] >= Duration::from_millis(900), "{runs:?}");
    assert!(runs[2] - runs[1] >= Duration::from_millis(1900), "{runs:?}");
}

/// Processes killed on drop (those a test's command left behind in sessions of their own).
struct Orphans(Vec<i32>);

impl Drop for Orphans {
    fn drop(&mut self) {
        for pid in &self.0 {
            let _ = nix::sys::signal::kill(
                nix::unistd::Pid::from_raw(*pid),
                nix::sys::signal::Signal::SIGKILL,
            );
        }
    }
}

/// Whether this process holds an end of `pipe` (`pipe:[inode]`).
fn holds(pipe: &str) -> bool {
    std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|fd| std::fs::read_link(fd.ok()?.path()).ok())
        .any(|target| target.as_os_str() == pipe)
}

#[test]
fn script_notices_its_command_ended_while_a_process_it_left_holds_its_pipes() {
    let mut orphans = Orphans(Vec::new());
    let mut orphan = |event: &Json| {
        let pid = i32::try_from(event["orphan"].as_i64()?).ok()?;
        orphans.0.push(pid);
        let pipe = std::fs::read_link(format!("/proc/{pid}/fd/1")).ok()?;
        pipe.into_os_string().into_string().ok()
    };
    // Said once it runs in its own session: before, it is killed with the command's group.
    let left = r#"setsid sleep 1005 &
        until [ "$(cut -d' ' -f6 /proc/$!/stat)" = $! ]; do sleep 0.01; done
        echo "{\"orphan\": $!}";"#;
    let config = json!([{"command": ["sh", "-c", format!("{left} exit 3")]}]);
    let mut ours = halite("script", &config, &Host::real());
    let events = events_within(&mut ours, 3, Duration::from_secs(10));
    let pipes: Vec<_> = events.iter().filter_map(&mut orphan).collect();
    let ended =
        json!({"tag": "error", "beacon_module": "script", "error": "sh ended (exit status: 3)"});
    assert!(events.len() >= 3, "{events:?}");
    assert_eq!(events[1], ended);
    assert!(pipes.len() >= 2, "started again: {events:?}");
    assert!(!holds(&pipes[0]), "the pipes of the ended run are closed");
    drop(ours);
    // Dropped while the command runs: the pipes are closed, and no thread reads them.
    let config = json!([{"command": ["sh", "-c", format!("{left} exec sleep 300")]}]);
    let mut ours = halite("script", &config, &Host::real());
    let events = events_within(&mut ours, 1, Duration::from_secs(10));
    let pipe = orphan(&events[0]).expect("a pipe");
    assert!(holds(&pipe));
    drop(ours);
    assert!(!holds(&pipe), "the pipes are closed with the beacon");
    let threads: Vec<_> = std::fs::read_dir("/proc/self/task")
        .unwrap()
        .filter_map(|task| std::fs::read_to_string(task.ok()?.path().join("comm")).ok())
        .filter(|name| name.trim() == "beacon sh")
        .collect();
    assert!(threads.is_empty(), "{threads:?}");
}

/// A command that cannot start is said once, however often it is tried.
#[test]
fn script_says_once_that_its_command_cannot_run() {
    let config = json!([{"command": ["/nonexistent/watcher", "--json"]}]);
    let mut ours = halite("script", &config, &Host::real());
    let events = events_within(&mut ours, 2, Duration::from_millis(2500));
    assert_eq!(events.len(), 1, "{events:?}");
    let error = events[0]["error"].as_str().unwrap();
    assert!(
        error.starts_with("cannot run /nonexistent/watcher: "),
        "{error}"
    );
}

/// `systemd-journal-remote`, which writes journal files from the export format.
fn journal_remote() -> Option<PathBuf> {
    [
        "/lib/systemd/systemd-journal-remote",
        "/usr/lib/systemd/systemd-journal-remote",
    ]
    .into_iter()
    .map(PathBuf::from)
    .find(|path| path.exists())
}

/// Appends entries (fields each) to the journal file in `dir`.
fn journal(remote: &Path, dir: &Path, entries: &[&[(&str, &str)]]) {
    let mut export = String::new();
    for (index, fields) in entries.iter().enumerate() {
        let now = jiff::Timestamp::now().as_microsecond();
        export.push_str(&format!(
            "__REALTIME_TIMESTAMP={now}\n__MONOTONIC_TIMESTAMP={}\n_BOOT_ID=0123456789abcdef0123456789abcdef\n",
            now + index as i64
        ));
        for (field, value) in *fields {
            export.push_str(&format!("{field}={value}\n"));
        }
        export.push('\n');
    }
    let file = dir.join("entries.export");
    std::fs::write(&file, export).unwrap();
    let out = Command::new(remote)
        .arg(format!("--output={}", dir.join("remote.journal").display()))
        .arg(&file)
        .output()
        .unwrap();
    assert!(out.status.success(), "{out:?}");
}

#[test]
fn journald_fires_the_new_entries_that_match_a_filter() {
    let Some(remote) = journal_remote() else {
        eprintln!(
            "SKIPPED: systemd-journal-remote is not installed (Debian's systemd-journal-remote package)"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let journal_dir = dir.path().join("journal");
    std::fs::create_dir(&journal_dir).unwrap();
    let sshd: &[(&str, &str)] = &[
        ("MESSAGE", "Accepted key"),
        ("SYSLOG_IDENTIFIER", "sshd"),
        ("PRIORITY", "6"),
        ("_PID", "42"),
    ];
    journal(
        &remote,
        &journal_dir,
        &[&[
            ("MESSAGE", "before"),
            ("SYSLOG_IDENTIFIER", "sshd"),
            ("PRIORITY", "6"),
        ]],
    );
    let config = json!([
        {"services": {"sshd": {"SYSLOG_IDENTIFIER": "sshd", "PRIORITY": 6}, "cron": {"SYSLOG_IDENTIFIER": "cron"}}},
        {"directory": journal_dir},
    ]);
    let mut ours = halite("journald", &config, &Host::real());
    assert_eq!(check(&mut ours), json!([]));
    journal(
        &remote,
        &journal_dir,
        &[
            sshd,
            &[
                ("MESSAGE", "job"),
                ("SYSLOG_IDENTIFIER", "cron"),
                ("PRIORITY", "5"),
            ],
            &[
                ("MESSAGE", "other"),
                ("SYSLOG_IDENTIFIER", "sshd"),
                ("PRIORITY", "3"),
            ],
        ],
    );
    let events = events_within(&mut ours, 2, Duration::from_secs(10));
    let tags: Vec<_> = events
        .iter()
        .map(|e| e["tag"].as_str().unwrap_or_default().to_owned())
        .collect();
    assert_eq!(tags, ["sshd", "cron"], "{events:?}");
    assert_eq!(events[0]["MESSAGE"], json!("Accepted key"));
    assert_eq!(events[0]["PRIORITY"], json!(6));
    assert_eq!(events[0]["_PID"], json!(42));
    assert!(events[0]["__CURSOR"].is_string());
    assert_eq!(events[1]["MESSAGE"], json!("job"));
    assert!(events_within(&mut ours, 1, Duration::from_millis(500)).is_empty());
}

#[test]
fn journald_says_once_that_a_journal_is_missing_and_reads_it_whole_when_it_comes() {
    let Some(remote) = journal_remote() else {
        eprintln!(
            "SKIPPED: systemd-journal-remote is not installed (Debian's systemd-journal-remote package)"
        );
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let config = json!([{"services": {"all": {}}}, {"directory": dir.path()}]);
    let mut ours = halite("journald", &config, &Host::real());
    let said = events_within(&mut ours, 1, Duration::from_secs(5));
    assert_eq!(said.len(), 1, "{said:?}");
    assert_eq!(said[0]["tag"], json!("error"));
    assert!(
        said[0]["error"]
            .as_str()
            .unwrap()
            .starts_with("journalctl ended"),
        "{said:?}"
    );
    journal(
        &remote,
        dir.path(),
        &[&[("MESSAGE", "first"), ("SYSLOG_IDENTIFIER", "x")]],
    );
    let events = events_within(&mut ours, 1, Duration::from_secs(10));
    assert_eq!(events.len(), 1, "{events:?}");
    assert_eq!(
        (&events[0]["tag"], &events[0]["MESSAGE"]),
        (&json!("all"), &json!("first"))
    );
}

#[test]
fn bad_configurations_name_the_key() {
    let cases = [
        ("ps", json!([{"processes": ["sshd"]}]), "processes"),
        (
            "ps",
            json!([{"processes": {"sshd": "up"}}]),
            "processes:sshd",
        ),
        ("ps", json!([]), "processes"),
        (
            "service",
            json!([{"services": {"nginx": {"delay": "soon"}}}]),
            "services:nginx:delay",
        ),
        (
            "service",
            json!([{"services": {"nginx": {"onchangeonly": "yes"}}}]),
            "services:nginx:onchangeonly",
        ),
        ("wtmp", json!([{"users": ["alice"]}]), "users"),
        (
            "wtmp",
            json!([{"users": {"alice": {"time_range": {"start": "8am"}}}}]),
            "users:alice:time_range:end",
        ),
        (
            "wtmp",
            json!([{"defaults": {"time_range": {"start": "soon", "end": "4pm"}}}]),
            "defaults:time_range:start",
        ),
        (
            "wtmp",
            json!([{"ut_type": {"login": "seven"}}]),
            "ut_type:login",
        ),
        ("btmp", json!([{"ut_type": {"login": 7}}]), "ut_type"),
        ("btmp", json!([{"file": 5}]), "file"),
        ("log", json!([{"tags": {}}]), "file"),
        (
            "log",
            json!([{"file": "/x"}, {"tags": {"t": {"regex": "(unclosed"}}}]),
            "tags:t:regex",
        ),
        (
            "journald",
            json!([{"services": {"sshd": [1]}}]),
            "services:sshd",
        ),
        ("journald", json!([{"directory": ""}]), "directory"),
        ("script", json!([{"command": "watch --json"}]), "command"),
        ("script", json!([]), "command"),
    ];
    for (module, config, key) in cases {
        let given: Value = serde_json::from_value(config.clone()).unwrap();
        let problem = match run::start(module, &given, &Host::real()) {
            Ok(_) => panic!("{module} {config} was accepted"),
            Err(problem) => problem,
        };
        assert_eq!(problem.invalid.key, key, "{module} {config}: {problem}");
        assert!(
            problem.to_string().contains(&format!("{key}: expected")),
            "{problem}"
        );
    }
}

/// A master and a minion whose `script` beacon says its command's pid once: the lab, the
/// event on the master's bus and the pid.
fn script_minion() -> (Lab, halite::event::Event, u64) {
    let mut lab = Lab::with_config(
        "",
        r#"beacons:
  script:
    - command: [sh, -c, 'echo "{\"tag\": \"hello\", \"pid\": $$}"; exec sleep 300']
"#,
    );
    lab.start_master();
    let mut master = RawSubscriber::connect(&lab.master_pub());
    lab.start_minion();
    let event = master.expect_tag(&format!("salt/beacon/{MINION_ID}/script/hello"));
    let pid = halite::event::map_get(&event.data, "pid")
        .and_then(Value::as_u64)
        .expect("the command's pid");
    (lab, event, pid)
}

/// Whether process `pid` ended within 10 s (killed if not, so that no test leaves it behind).
fn ended(pid: u64) -> bool {
    // Gone, or a zombie that nobody reaps in this container.
    let gone = || {
        let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
        stat.is_empty() || stat.contains(") Z ")
    };
    let ended = wait_until(Duration::from_secs(10), gone);
    if !ended {
        let _ = nix::sys::signal::kill(
            nix::unistd::Pid::from_raw(pid as i32),
            nix::sys::signal::Signal::SIGKILL,
        );
    }
    ended
}

#[test]
fn a_minion_fires_a_script_beacons_events_to_its_master_and_kills_the_command_when_it_stops() {
    let (lab, event, pid) = script_minion();
    assert_eq!(
        halite::event::map_get(&event.data, "id").and_then(Value::as_str),
        Some(MINION_ID)
    );
    drop(lab);
    assert!(ended(pid), "the command outlived its minion");
}

#[test]
fn a_script_beacons_command_dies_with_its_minion_killed_by_sigkill() {
    let (mut lab, _, pid) = script_minion();
    lab.take_daemon().kill();
    assert!(ended(pid), "the command outlived its minion");
}
