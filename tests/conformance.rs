//! Conformance with real Salt, installed by `tests/salt-env.sh`: real Salt's daemons, CLIs and
//! Python event library on one side, halite on the other, in every framing Salt has used:
//! 3006.30 (length-prefixed everywhere), 3007.8 (bare everywhere) and 3007.17 (bare publishing,
//! length-prefixed pulling).

use std::io::Read;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use halite::event::Value;
use halite::wire::Framing;

use crate::support::{Lab, RawSender, RawSubscriber, Watcher, bin, free_port, map, stderr, stdout};

fn manifest() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

/// The venv holding Salt `version`.
pub(crate) fn venv(version: &str) -> PathBuf {
    installed(version).unwrap_or_else(|missing| panic!("{missing}"))
}

/// The venv holding Salt `version`, or why there is none.
pub(crate) fn installed(version: &str) -> Result<PathBuf, String> {
    let root = std::env::var_os("HALITE_SALT_ENVS")
        .map(PathBuf::from)
        .unwrap_or_else(|| {
            PathBuf::from(std::env::var_os("HOME").expect("HOME")).join(".cache/halite/salt-envs")
        });
    let venv = root.join(version);
    if venv.join(".halite-ok").exists() {
        Ok(venv)
    } else {
        Err(format!(
            "Salt {version} is not installed in {}: run `bash tests/salt-env.sh` (tests/run.sh does)",
            venv.display()
        ))
    }
}

/// At most two real-Salt labs run at once: each master forks a dozen processes, and these
/// machines have two cores. A lock file per slot, held for the lab's life.
struct Slot(#[allow(dead_code)] nix::fcntl::Flock<std::fs::File>);

fn slot() -> Slot {
    let deadline = Instant::now() + Duration::from_secs(600);
    loop {
        for n in 0..2 {
            let file = std::fs::OpenOptions::new()
                .create(true)
                .truncate(false)
                .write(true)
                .open(format!("/tmp/halite-salt-lab-{n}.lock"))
                .unwrap();
            if let Ok(lock) =
                nix::fcntl::Flock::lock(file, nix::fcntl::FlockArg::LockExclusiveNonblock)
            {
                return Slot(lock);
            }
        }
        assert!(Instant::now() < deadline, "no real-Salt lab slot came free");
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// A real salt-master (and salt-minion, and salt-api) of one release in a temp dir, killed on
/// drop.
pub(crate) struct SaltLab {
    version: &'static str,
    dir: tempfile::TempDir,
    _slot: Slot,
}

impl SaltLab {
    fn up(version: &'static str, minion: bool) -> Self {
        Self::up_with(version, minion, &[])
    }

    /// A lab whose `salt_lab.py up` gets more arguments (`--master-opt K=JSON`, `--api`).
    pub(crate) fn up_with(version: &'static str, minion: bool, extra: &[&str]) -> Self {
        let slot = slot();
        let dir = tempfile::Builder::new()
            .prefix("hs")
            .tempdir_in("/tmp")
            .unwrap();
        let mut command = Command::new("python3");
        command
            .arg(manifest().join("tests/salt_lab.py"))
            .arg("up")
            .arg(dir.path())
            .arg("--venv")
            .arg(venv(version))
            // Reserved ports: the script's own are picked and released, for anyone to take.
            .arg("--publish-port")
            .arg(free_port().to_string())
            .arg("--ret-port")
            .arg(free_port().to_string());
        if !minion {
            command.arg("--no-minion");
        }
        command.args(extra);
        let output = command.output().unwrap();
        let lab = Self {
            version,
            dir,
            _slot: slot,
        };
        assert!(
            output.status.success(),
            "real Salt {version} did not start:\n{}\n{}\n{}",
            stdout(&output),
            stderr(&output),
            std::fs::read_to_string(lab.base().join("log/master.log")).unwrap_or_default()
        );
        lab
    }

    pub(crate) fn base(&self) -> &Path {
        self.dir.path()
    }

    fn conf(&self) -> PathBuf {
        self.base().join("conf")
    }

    pub(crate) fn master_pub(&self) -> PathBuf {
        self.base().join("run/master/master_event_pub.ipc")
    }

    fn master_pull(&self) -> PathBuf {
        self.base().join("run/master/master_event_pull.ipc")
    }

    /// One of Salt's own commands on this lab's config.
    fn salt(&self, name: &str) -> Command {
        let mut command = Command::new(venv(self.version).join("bin").join(name));
        command.arg("-c").arg(self.conf()).stdin(Stdio::null());
        command
    }

    /// One of halite's commands on this lab's config.
    fn halite(&self, name: &str) -> Command {
        let mut command = Command::new(bin(name));
        command.arg("-c").arg(self.conf()).stdin(Stdio::null());
        command
    }
}

impl Drop for SaltLab {
    fn drop(&mut self) {
        let _ = Command::new("python3")
            .arg(manifest().join("tests/salt_lab.py"))
            .arg("down")
            .arg(self.dir.path())
            .arg("--kill")
            .output();
    }
}

/// Salt's Python event library, through `tests/salt_event_tool.py`.
fn event_tool(version: &str) -> Command {
    let mut command = Command::new(venv(version).join("bin/python"));
    command.arg(manifest().join("tests/salt_event_tool.py"));
    command
}

/// A Salt listener that has printed READY, its stderr still drained (Salt warns on exit, and a
/// closed stderr would kill it).
struct SaltListener {
    child: Child,
    stderr: std::sync::mpsc::Receiver<String>,
}

fn salt_listener(version: &str, node: &str, sock_dir: &Path, count: u32) -> SaltListener {
    let mut child = event_tool(version)
        .args([
            "listen",
            "--node",
            node,
            "--sync",
            "--count",
            &count.to_string(),
            "--timeout",
            "30",
        ])
        .arg("--sock-dir")
        .arg(sock_dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut pipe = child.stderr.take().unwrap();
    let (ready_tx, ready) = std::sync::mpsc::channel();
    let (stderr_tx, stderr) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let mut seen = String::new();
        let mut chunk = [0u8; 4096];
        let mut told = false;
        while let Ok(n @ 1..) = pipe.read(&mut chunk) {
            seen.push_str(&String::from_utf8_lossy(&chunk[..n]));
            if !told && seen.contains("READY") {
                told = true;
                let _ = ready_tx.send(());
            }
        }
        let _ = stderr_tx.send(seen);
    });
    if ready.recv_timeout(Duration::from_secs(30)).is_err() {
        let _ = child.kill();
        let _ = child.wait();
        panic!(
            "Salt {version} listener on {node} never got ready: {}",
            stderr.recv().unwrap_or_default()
        );
    }
    SaltListener { child, stderr }
}

/// The JSON lines a Salt listener printed, as (tag, data).
fn listened(listener: SaltListener) -> Vec<(String, serde_json::Value)> {
    let output = crate::support::wait_output(listener.child, Duration::from_secs(30));
    let err = listener
        .stderr
        .recv_timeout(Duration::from_secs(5))
        .unwrap_or_default();
    assert!(
        output.status.success(),
        "Salt listener failed: {:?} {}{err}",
        output.status,
        stdout(&output)
    );
    stdout(&output)
        .lines()
        .map(|line| {
            let event: serde_json::Value = serde_json::from_str(line).unwrap();
            (
                event["tag"].as_str().unwrap().to_owned(),
                event["data"].clone(),
            )
        })
        .collect()
}

/// Events whose rendering differs between careless implementations and Python.
fn tricky_events() -> Vec<(&'static str, Value, bool)> {
    // (tag, data, also valid for pretty: Python cannot sort mixed key types)
    vec![
        (
            "conf/plain",
            map(&[("b", Value::from(1)), ("a", Value::from("x"))]),
            true,
        ),
        (
            "conf/text",
            map(&[
                ("u", Value::from("héllo ✓ \u{2028} \u{7f}")),
                (
                    "ctl",
                    Value::from("tab\there\nnl \"q\" back\\slash \u{1} \u{1f}"),
                ),
                ("empty", Value::from("")),
            ]),
            true,
        ),
        (
            "conf/numbers",
            map(&[
                (
                    "floats",
                    Value::Array(
                        [0.1, 2.0, 1e-05, 1e16, 1.5e300, -0.0, 123456.789, 5e-324]
                            .map(Value::from)
                            .to_vec(),
                    ),
                ),
                (
                    "ints",
                    Value::Array(vec![
                        Value::from(u64::MAX),
                        Value::from(i64::MIN),
                        Value::from(0),
                        Value::from(-1),
                    ]),
                ),
                (
                    "special",
                    Value::Array(
                        [f64::NAN, f64::INFINITY, f64::NEG_INFINITY]
                            .map(Value::from)
                            .to_vec(),
                    ),
                ),
            ]),
            true,
        ),
        (
            "conf/nested",
            map(&[
                (
                    "list",
                    Value::Array(vec![
                        Value::Map(vec![]),
                        Value::Array(vec![]),
                        Value::Nil,
                        Value::Boolean(false),
                    ]),
                ),
                (
                    "deep",
                    map(&[(
                        "z",
                        map(&[("y", Value::Array(vec![map(&[("x", Value::from(1))])]))]),
                    )]),
                ),
            ]),
            true,
        ),
        (
            "conf/intkeys",
            Value::Map(vec![
                (Value::from(10), Value::from("ten")),
                (Value::from(2), Value::from("two")),
            ]),
            true,
        ),
        (
            "conf/mixedkeys",
            Value::Map(vec![
                (Value::from(1), Value::from("one")),
                (Value::from("s"), Value::from("str")),
                (Value::from(2.5), Value::Nil),
            ]),
            false,
        ),
        (
            "conf/binary",
            map(&[
                ("bin", Value::Binary(b"utf8 bytes".to_vec())),
                ("when", Value::Ext(78, b"20261124T08:00:00.000000".to_vec())),
            ]),
            true,
        ),
    ]
}

/// Starts a watcher and keeps firing `conf/sync` until it prints, so it is surely attached.
fn synced_watcher(command: Command, pull: &Path) -> Watcher {
    let watcher = Watcher::spawn(command);
    watcher.sync_on(pull, "conf/sync");
    watcher
}

/// Reads a watcher's lines from the `conf/begin` marker to the `conf/zz-end` marker.
fn between_markers(watcher: &Watcher) -> String {
    let mut text = String::new();
    let mut started = false;
    while let Some(line) = watcher.line(Duration::from_secs(20)) {
        if line.starts_with("conf/zz-end\t") {
            return text;
        }
        if started {
            text.push_str(&line);
            text.push('\n');
        } else if line.starts_with("conf/begin\t") {
            started = true;
            // A pretty marker spans lines up to its closing brace.
            if line.ends_with('{') {
                while watcher
                    .line(Duration::from_secs(5))
                    .is_some_and(|l| l != "}")
                {}
            }
        }
    }
    panic!(
        "the watcher never printed the end marker; stderr:\n{}\ngot:\n{text}",
        watcher.stderr()
    );
}

#[test]
fn state_event_prints_exactly_what_real_salt_run_prints() {
    let lab = SaltLab::up("3007.8", false);
    let mut watchers = Vec::new();
    for pretty in [false, true] {
        let args: &[&str] = if pretty {
            &["state.event", "conf/*", "pretty=True"]
        } else {
            &["state.event", "conf/*"]
        };
        let mut salt = lab.salt("salt-run");
        salt.args(args);
        let mut ours = lab.halite("salt-run");
        ours.args(args);
        watchers.push((
            pretty,
            synced_watcher(salt, &lab.master_pull()),
            synced_watcher(ours, &lab.master_pull()),
        ));
    }
    let mut sender = RawSender::connect(&lab.master_pull());
    sender.fire("conf/begin", &map(&[]), Framing::Bare);
    for (pretty_ok, (tag, data, _)) in tricky_events().into_iter().map(|e| (e.2, e)) {
        if pretty_ok {
            sender.fire(tag, &data, Framing::Bare);
        }
    }
    sender.fire("conf/zz-end", &map(&[]), Framing::Bare);
    for (pretty, salt, ours) in &watchers {
        let (expected, actual) = (between_markers(salt), between_markers(ours));
        assert!(
            expected.lines().count() >= 6,
            "real Salt printed: {expected}"
        );
        assert_eq!(actual, expected, "pretty={pretty}");
    }
    // Mixed key types: only the plain form, since Salt's pretty form crashes on them.
    let (_, salt, ours) = &watchers[0];
    let mut sender = RawSender::connect(&lab.master_pull());
    sender.fire("conf/begin", &map(&[]), Framing::Bare);
    for (tag, data, pretty_ok) in tricky_events() {
        if !pretty_ok {
            sender.fire(tag, &data, Framing::Bare);
        }
    }
    sender.fire("conf/zz-end", &map(&[]), Framing::Bare);
    assert_eq!(between_markers(ours), between_markers(salt));
}

/// Salt's Python library fires into and listens on halite's master and minion buses.
fn salt_library_on_halite_daemons(version: &'static str) {
    // 3006.26+ subscribers read length-prefixed frames; the others read bare ones.
    let framing = if version.starts_with("3006") {
        "ipc_framing: length_prefixed\n"
    } else {
        ""
    };
    let mut lab = Lab::with_config(framing, framing);
    lab.start_master();
    lab.start_minion();
    for (node, sock_dir, pull, publish) in [
        (
            "master",
            lab.master_sock_dir(),
            lab.master_pull(),
            lab.master_pub(),
        ),
        (
            "minion",
            lab.path().join("run/minion"),
            lab.minion_pull(),
            lab.minion_pub(),
        ),
    ] {
        let listener = salt_listener(version, node, &sock_dir, 1);
        RawSender::connect(&pull).fire(
            "halite/to/salt",
            &map(&[("n", Value::from(1))]),
            Framing::Bare,
        );
        let events = listened(listener);
        assert_eq!(
            events[0].0, "halite/to/salt",
            "Salt {version} reads halite's {node} bus"
        );
        assert_eq!(events[0].1["n"], 1);

        let mut subscriber = RawSubscriber::connect(&publish);
        let output = event_tool(version)
            .args(["fire", "--node", node])
            .arg("--sock-dir")
            .arg(&sock_dir)
            .args(["salt/to/halite", r#"{"a": [1, 2.5, null], "u": "héllo"}"#])
            .output()
            .unwrap();
        assert!(
            output.status.success(),
            "Salt {version} fire_event on halite's {node}: {}",
            stderr(&output)
        );
        let event = subscriber.expect_tag("salt/to/halite");
        assert_eq!(event.get("u").and_then(Value::as_str), Some("héllo"));
        assert!(event.get("_stamp").is_some());
    }
}

#[test]
fn salt_3006_30_library_fires_and_listens_on_halite_daemons() {
    salt_library_on_halite_daemons("3006.30");
}

#[test]
fn salt_3007_8_library_fires_and_listens_on_halite_daemons() {
    salt_library_on_halite_daemons("3007.8");
}

#[test]
fn salt_3007_17_library_fires_and_listens_on_halite_daemons() {
    salt_library_on_halite_daemons("3007.17");
}

/// halite's clients against a real master and minion: framing found by themselves, each event
/// delivered once, and salt-call's envelope as real salt-call's.
fn halite_clients_on_real_salt(version: &'static str) {
    let lab = SaltLab::up(version, true);
    let mut subscriber = RawSubscriber::connect(&lab.master_pub());

    for n in 0..2 {
        // The first send finds the framing out, the second uses what was learnt.
        let output = lab
            .halite("salt-run")
            .args(["event.send", "conf/run", &format!("{{n: {n}}}")])
            .output()
            .unwrap();
        assert_eq!(
            stdout(&output),
            "True\n",
            "Salt {version}: {}",
            stderr(&output)
        );
    }
    let mut seen = Vec::new();
    while let Some(event) = subscriber.next_event(Duration::from_secs(2)) {
        if event.tag == "conf/run" {
            seen.push(event.get("n").and_then(Value::as_u64).unwrap());
        }
    }
    assert_eq!(
        seen,
        [0, 1],
        "Salt {version}: every event arrives exactly once"
    );

    let output = lab
        .salt("salt-call")
        .args(["event.send", "conf/theirs", "foo=bar", "num=3"])
        .output()
        .unwrap();
    assert!(
        output.status.success(),
        "real salt-call: {}",
        stderr(&output)
    );
    let theirs = subscriber.expect_tag("conf/theirs");
    let output = lab
        .halite("salt-call")
        .args(["event.send", "conf/ours", "foo=bar", "num=3"])
        .output()
        .unwrap();
    assert_eq!(
        stdout(&output),
        "local:\n    True\n",
        "Salt {version}: {}",
        stderr(&output)
    );
    let ours = subscriber.expect_tag("conf/ours");
    let keys = |value: &Value| -> Vec<String> {
        let mut keys: Vec<String> = crate::support::keys(value);
        keys.sort();
        keys
    };
    let mut envelope = keys(&theirs.data);
    envelope.push("pretag".into());
    envelope.sort();
    assert_eq!(
        keys(&ours.data),
        envelope,
        "the envelope a real minion relays, with its pretag"
    );
    for field in ["id", "cmd"] {
        assert_eq!(ours.get(field), theirs.get(field), "{field}");
    }
    let (our_data, their_data) = (ours.get("data").unwrap(), theirs.get("data").unwrap());
    assert_eq!(
        crate::support::keys(our_data),
        crate::support::keys(their_data),
        "same data keys in the same order"
    );
    assert_eq!(
        halite::event::map_get(our_data, "foo"),
        halite::event::map_get(their_data, "foo")
    );
    assert_eq!(
        halite::event::map_get(our_data, "__pub_tgt").and_then(Value::as_str),
        Some("salt-call")
    );
}

#[test]
fn halite_clients_on_real_salt_3006_30() {
    halite_clients_on_real_salt("3006.30");
}

#[test]
fn halite_clients_on_real_salt_3007_8() {
    halite_clients_on_real_salt("3007.8");
}

#[test]
fn halite_clients_on_real_salt_3007_17() {
    halite_clients_on_real_salt("3007.17");
}

/// `salt-call --local cp.*` prints what Salt 3007.8's prints for the same roots and cache: the
/// listings, hashes (missing included), cached paths and `False` for a missing file.
#[test]
fn cp_functions_print_what_salt_call_prints() {
    let dir = tempfile::Builder::new()
        .prefix("hcp")
        .tempdir_in("/tmp")
        .unwrap();
    let root = dir.path();
    std::fs::create_dir_all(root.join("roots/sub/deep")).unwrap();
    std::fs::create_dir_all(root.join("roots/empty")).unwrap();
    std::fs::write(root.join("roots/a.txt"), "hello\n").unwrap();
    std::fs::write(root.join("roots/sub/b.txt"), "b\n").unwrap();
    std::fs::write(root.join("roots/sub/deep/c.txt"), vec![7u8; 600_000]).unwrap();
    let config = |name: &str| {
        let etc = root.join(name);
        std::fs::create_dir_all(&etc).unwrap();
        let r = root.display();
        std::fs::write(
            etc.join("minion"),
            format!(
                "id: m1\nroot_dir: {r}/{name}-root\ncachedir: {r}/cache\nfile_client: local\nlog_level: error\nfile_roots:\n  base: [{r}/roots]\n  dev: [{r}/roots/sub]\n"
            ),
        )
        .unwrap();
        etc
    };
    let (salts, ours) = (config("salt"), config("halite"));
    let salt_call = venv("3007.8").join("bin/salt-call");
    for call in [
        &["cp.list_master"][..],
        &["cp.list_master", "saltenv=dev"],
        &["cp.list_master", "prefix=sub/"],
        &["cp.list_master_dirs"],
        &["cp.hash_file", "salt://sub/deep/c.txt"],
        &["cp.hash_file", "salt://b.txt?saltenv=dev"],
        &["cp.hash_file", "salt://nope"],
        &["cp.cache_file", "salt://a.txt"],
        &["cp.cache_file", "salt://deep/c.txt", "saltenv=dev"],
        &["cp.cache_file", "salt://nope"],
        &["cp.get_file_str", "salt://a.txt"],
    ] {
        let run = |program: &Path, etc: &Path| {
            let output = Command::new(program)
                .arg("--local")
                .arg("-c")
                .arg(etc)
                .args(call)
                .arg("--out=json")
                .output()
                .unwrap();
            // Each puts its root_dir before cachedir, as Salt does; the rest must be equal.
            let name = etc.file_name().unwrap().to_string_lossy().into_owned();
            let text = stdout(&output).replace(&format!("/{name}-root/"), "/ROOT/");
            (text, output.status.code())
        };
        let expected = run(&salt_call, &salts);
        let got = run(&bin("salt-call"), &ours);
        assert_eq!(got, expected, "salt-call --local {call:?}");
    }
    assert_eq!(
        std::fs::read(
            root.join("halite-root")
                .join(root.strip_prefix("/").unwrap())
                .join("cache/files/dev/deep/c.txt")
        )
        .unwrap(),
        vec![7u8; 600_000]
    );
}
