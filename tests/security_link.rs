//! Attacks from the security sweep, each refused: network peers and what minions store on the master.

use std::net::IpAddr;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use halite::event::{Value, map_get};
use halite::keys::KeyPair;
use halite::link::tls::{MasterPin, TlsDialer};
use halite::link::{Connector, Session};
use halite::proto::{command, message};

use crate::support::{Cluster, bin, free_port, say_hello, stderr, stdout, wait_until};

/// A runtime that keeps the test's own sessions alive while the test waits on processes.
fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

/// `count` TCP connections from `source` to the master that never say anything; those the master
/// closes at once are dropped.
async fn idle_connections(source: IpAddr, port: u16, count: usize) -> Vec<tokio::net::TcpStream> {
    let mut open = Vec::new();
    for _ in 0..count {
        let socket = tokio::net::TcpSocket::new_v4().unwrap();
        socket.bind((source, 0).into()).unwrap();
        if let Ok(stream) = socket.connect(([127, 0, 0, 1], port).into()).await {
            open.push(stream);
        }
    }
    open
}

/// `count` TLS sessions from `source`, each with a key of its own, that never say hello.
async fn silent_sessions(source: IpAddr, port: u16, keys: &Path, count: usize) -> Vec<Session> {
    let key = KeyPair::load_or_create(keys, "minion").unwrap();
    let mut attempts = tokio::task::JoinSet::new();
    for _ in 0..count {
        let dialer = TlsDialer::new(
            format!("127.0.0.1:{port}"),
            &key,
            MasterPin::FirstUse,
            Duration::from_secs(10),
        )
        .with_source(Some(source));
        attempts.spawn(async move {
            tokio::time::timeout(Duration::from_secs(3), dialer.connect())
                .await
                .ok()
                .and_then(Result::ok)
        });
    }
    attempts.join_all().await.into_iter().flatten().collect()
}

/// A session that said hello as `id` in `role`, with the key in `keys`, and the master's answer.
async fn hello_as(port: u16, keys: &Path, id: &str, role: &str) -> (Session, Value) {
    let fields = vec![
        (Value::from("id"), Value::from(id)),
        (Value::from("role"), Value::from(role)),
    ];
    say_hello(port, keys, fields).await
}

/// The master's answer to a hello claiming `id`, with a new key from `keys`.
async fn welcome_for(port: u16, keys: &Path, id: &str) -> Value {
    hello_as(port, keys, id, "minion").await.1
}

fn rss_kib(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .unwrap()
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .and_then(|rest| rest.trim().trim_end_matches("kB").trim().parse().ok())
        .unwrap()
}

/// Connects a minion while the master is flooded and checks that it is admitted fast, answers
/// a job and that `salt-call` still returns.
fn assert_minion_gets_in(cluster: &mut Cluster, id: &str) {
    let started = Instant::now();
    cluster.start_minion(id, "");
    cluster.wait_connected(&[id]);
    assert!(
        started.elapsed() < Duration::from_secs(8),
        "the minion took {:?} to get in",
        started.elapsed()
    );
    let call = cluster.call(id, &["test.ping"]);
    assert!(call.status.success(), "{}", stderr(&call));
    assert_eq!(stdout(&call), "local:\n    True\n");
}

#[test]
fn silent_peers_on_one_address_cannot_keep_minions_out() {
    let mut cluster = Cluster::new("auto_accept: True\n");
    cluster.start_master();
    let keys = tempfile::tempdir().unwrap();
    let rt = runtime();
    let attacker = IpAddr::from([127, 0, 0, 2]);
    let silent = rt.block_on(silent_sessions(attacker, cluster.port(), keys.path(), 260));
    let idle = rt.block_on(idle_connections(attacker, cluster.port(), 300));
    assert!(
        silent.len() <= 32,
        "{} silent sessions from one address",
        silent.len()
    );
    assert_minion_gets_in(&mut cluster, "m1");
    assert!(
        cluster.master_log().contains("minion port under pressure"),
        "{}",
        cluster.master_log()
    );
    let rss = rss_kib(cluster.master_pid());
    assert!(rss < 100 * 1024, "the master grew to {rss} KiB");
    drop((silent, idle));
}

#[test]
fn a_flood_from_many_addresses_gives_way_to_a_new_minion() {
    let mut cluster = Cluster::new("auto_accept: True\n");
    cluster.start_master();
    let rt = runtime();
    // 640 idle connections, 32 from each of 20 addresses: more than may wait at once.
    let mut idle = Vec::new();
    for last in 3..23 {
        let source = IpAddr::from([127, 0, 0, last]);
        idle.extend(rt.block_on(idle_connections(source, cluster.port(), 32)));
    }
    assert_minion_gets_in(&mut cluster, "m1");
    assert!(
        cluster.master_log().contains("evicted"),
        "{}",
        cluster.master_log()
    );
    let rss = rss_kib(cluster.master_pid());
    assert!(rss < 100 * 1024, "the master grew to {rss} KiB");
    drop(idle);
}

/// The jid of the next `salt/job/<jid>/ret/<id>` line, and the line.
fn next_return(watcher: &crate::support::Watcher, id: &str) -> (String, String) {
    let deadline = Instant::now() + Duration::from_secs(20);
    while let Some(left) = deadline.checked_duration_since(Instant::now()) {
        let Some(line) = watcher.line(left) else {
            break;
        };
        let tag = line.split('\t').next().unwrap_or_default();
        if let Some(jid) = tag
            .strip_prefix("salt/job/")
            .and_then(|rest| rest.strip_suffix(&format!("/ret/{id}")))
        {
            return (jid.to_owned(), line);
        }
    }
    panic!("no return from {id}; stderr: {}", watcher.stderr());
}

/// `cmd.run` printing `bytes` times `x`.
fn print_bytes(bytes: usize) -> String {
    format!("head -c {bytes} /dev/zero | tr '\\0' x")
}

#[test]
fn a_salt_call_return_of_10_mb_is_stored_whole_and_trimmed_on_the_bus() {
    let mut cluster = Cluster::new("auto_accept: True\n");
    cluster.start_master();
    cluster.configure_minion("m1", "");
    let watcher = cluster.watch();
    let output = cluster.call(
        "m1",
        &[
            "--out=quiet",
            "cmd.run",
            &print_bytes(10_000_000),
            "python_shell=True",
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let (jid, line) = next_return(&watcher, "m1");
    assert!(
        line.contains(r#""return": "VALUE_TRIMMED""#),
        "{}",
        &line[..line.len().min(300)]
    );
    let stored = cluster.run("salt-run", &["jobs.lookup_jid", &jid, "--out=json"]);
    let text = stdout(&stored);
    assert!(
        text.contains(&"x".repeat(10_000_000)),
        "{}",
        &text[..text.len().min(300)]
    );
    assert!(!cluster.master_log().contains("frame size too big"));
}

#[test]
fn one_minion_cannot_fill_the_job_cache() {
    let mut cluster = Cluster::new("auto_accept: True\nreturn_quota_bytes: 5000000\n");
    cluster.start_master();
    cluster.configure_minion("m1", "");
    let two_mb = print_bytes(2_000_000);
    let call = || {
        cluster.call(
            "m1",
            &["--out=quiet", "cmd.run", &two_mb, "python_shell=True"],
        )
    };
    for _ in 0..2 {
        let output = call();
        assert!(output.status.success(), "{}", stderr(&output));
    }
    let refused = call();
    assert_eq!(refused.status.code(), Some(1));
    let err = stderr(&refused);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(
        err.contains("the master refused the return") && err.contains("return_quota_bytes"),
        "{err}"
    );
    assert!(
        cluster
            .master_log()
            .contains("from minion m1 since the last report; the latest: a return: "),
        "{}",
        cluster.master_log()
    );
    // The minion daemon hears of it too.
    cluster.start_minion("m1", "");
    assert!(wait_until(Duration::from_secs(10), || cluster
        .minion_log("m1")
        .contains("connected to the master")));
    let job = cluster.run(
        "salt",
        &["m1", "cmd.run", &two_mb, "python_shell=True", "-t", "2"],
    );
    assert_ne!(job.status.code(), Some(0));
    assert!(
        wait_until(Duration::from_secs(10), || cluster
            .minion_log("m1")
            .contains("the master refused a return")),
        "{}",
        cluster.minion_log("m1")
    );
}

#[test]
fn pending_keys_stop_at_max_pending_keys() {
    let mut cluster = Cluster::new("max_pending_keys: 3\n");
    cluster.start_master();
    for (n, id) in ["p1", "p2", "p3", "p4", "p5"].into_iter().enumerate() {
        cluster.configure_minion(id, "");
        let output = cluster.call(id, &["test.ping"]);
        assert_eq!(output.status.code(), Some(1));
        let err = stderr(&output);
        let expected = if n < 3 {
            "has the minion key been accepted"
        } else {
            "max_pending_keys"
        };
        assert!(err.contains(expected), "{id}: {err}");
    }
    let listed = cluster.run("salt-key", &["-l", "pre"]);
    assert_eq!(stdout(&listed), "Unaccepted Keys:\np1\np2\np3\n");
    assert!(cluster.master_log().contains("max_pending_keys"));
}

#[test]
fn an_impostors_key_accepted_or_rejected_does_not_lock_out_the_real_minion() {
    let mut cluster = Cluster::new("");
    cluster.start_master();
    cluster.start_minion("db1", "");
    assert!(wait_until(Duration::from_secs(10), || {
        stdout(&cluster.run("salt-key", &["-l", "pre"])).contains("db1")
    }));
    let accepted = cluster.run("salt-key", &["-a", "db1", "-y"]);
    assert!(accepted.status.success(), "{}", stderr(&accepted));
    cluster.wait_connected(&["db1"]);
    // Someone else claims db1 with another key: denied, as with Salt.
    cluster.configure_minion("impostor", "");
    let config = cluster.minion_dir("impostor").join("etc/minion");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("id: impostor", "id: db1");
    std::fs::write(&config, text).unwrap();
    let impostor = cluster.spawn_minion("impostor");
    assert_eq!(impostor.wait_exit(Duration::from_secs(15)).code(), Some(77));
    // Accepting the impostor's key too does not replace the real one.
    let accept_denied = cluster.run("salt-key", &["-a", "db1", "--include-denied", "-y"]);
    assert!(
        stderr(&accept_denied).contains("already has another accepted key"),
        "{}",
        stderr(&accept_denied)
    );
    cluster.wait_connected(&["db1"]);
    // The operator rejects the impostor's key; the real db1 stays in.
    let rejected = cluster.run("salt-key", &["-r", "db1", "--include-denied", "-y"]);
    assert!(rejected.status.success(), "{}", stderr(&rejected));
    std::thread::sleep(Duration::from_secs(1));
    cluster.wait_connected(&["db1"]);
    assert!(
        !cluster.minion_log("db1").contains("rejected"),
        "{}",
        cluster.minion_log("db1")
    );
    // The impostor stays out.
    let again = cluster.spawn_minion("impostor");
    assert_eq!(again.wait_exit(Duration::from_secs(15)).code(), Some(77));
    cluster.wait_connected(&["db1"]);
}

#[test]
fn ids_with_glob_characters_are_refused_at_admission_and_at_start() {
    let mut cluster = Cluster::new("auto_accept: True\n");
    cluster.start_master();
    cluster.configure_minion("glob", "");
    let config = cluster.minion_dir("glob").join("etc/minion");
    let with_id = |id: &str| {
        let text = std::fs::read_to_string(&config).unwrap();
        let text: Vec<&str> = text.lines().filter(|l| !l.starts_with("id:")).collect();
        std::fs::write(&config, format!("id: '{id}'\n{}\n", text.join("\n"))).unwrap();
    };
    with_id("web*");
    let minion = cluster.spawn_minion("glob").into_child();
    let output = crate::support::wait_output(minion, Duration::from_secs(10));
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains(r#"invalid minion id "web*""#) && err.contains("set id: in the minion config"),
        "{err}"
    );
    with_id("web?");
    let call = cluster.call("glob", &["test.ping"]);
    assert_eq!(call.status.code(), Some(1));
    let err = stderr(&call);
    assert_eq!(err.lines().count(), 1, "{err}");
    assert!(err.contains(r#"invalid minion id "web?""#), "{err}");
    // A peer that says hello with such an id is refused and nothing is filed.
    let keys = tempfile::tempdir().unwrap();
    let welcome = runtime().block_on(welcome_for(cluster.port(), keys.path(), "db[1]"));
    assert_eq!(
        map_get(&welcome, "act").and_then(Value::as_str),
        Some("refused")
    );
    let reason = map_get(&welcome, "reason")
        .and_then(Value::as_str)
        .unwrap_or_default();
    assert!(reason.contains("'*', '?', '[' or ']'"), "{reason}");
    // Hidden key files, overlong names and look-alikes too.
    let long = "x".repeat(300);
    for (id, says) in [
        (".hidden", "start with '.'"),
        (long.as_str(), "at most 255 bytes"),
        ("db1\u{200b}", "look like another"),
    ] {
        let welcome = runtime().block_on(welcome_for(cluster.port(), keys.path(), id));
        let reason = map_get(&welcome, "reason")
            .and_then(Value::as_str)
            .unwrap_or_default();
        assert!(reason.contains(says), "{id:?}: {reason}");
    }
    let listed = cluster.run("salt-key", &["-L", "--out", "json"]);
    assert!(!stdout(&listed).contains("db["), "{}", stdout(&listed));
}

/// A daemon started by hand, killed when dropped.
struct Running(Child);

impl Running {
    /// One of our daemons on the config in `etc`, quiet.
    fn daemon(name: &str, etc: &Path) -> Self {
        Running(
            Command::new(bin(name))
                .arg("-c")
                .arg(etc)
                .stdin(Stdio::null())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                .spawn()
                .unwrap(),
        )
    }
}

impl Drop for Running {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// `nobody`'s master on `port`, with everything it owns under `root`.
fn nobodys_master(root: &Path, port: u16) -> Running {
    std::fs::create_dir_all(root.join("etc")).unwrap();
    std::fs::write(
        root.join("etc/master"),
        format!(
            "root_dir: {r}\nsock_dir: {r}/run\ninterface: 127.0.0.1\nret_port: {port}\nauto_accept: True\nlog_file: {r}/log\nlog_level_logfile: debug\n",
            r = root.display()
        ),
    )
    .unwrap();
    let nobody = nix::unistd::Uid::from_raw(65534);
    for entry in walk(root) {
        nix::unistd::chown(
            &entry,
            Some(nobody),
            Some(nix::unistd::Gid::from_raw(65534)),
        )
        .unwrap();
    }
    let child = Command::new("setpriv")
        .args(["--reuid=65534", "--regid=65534", "--clear-groups"])
        .arg(bin("salt-master"))
        .arg("-c")
        .arg(root.join("etc"))
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || std::net::TcpStream::connect((
            "127.0.0.1",
            port
        ))
        .is_ok()),
        "nobody's master did not start"
    );
    Running(child)
}

fn walk(dir: &Path) -> Vec<std::path::PathBuf> {
    let mut found = vec![dir.to_path_buf()];
    for entry in std::fs::read_dir(dir).unwrap().flatten() {
        if entry.file_type().unwrap().is_dir() {
            found.extend(walk(&entry.path()));
        } else {
            found.push(entry.path());
        }
    }
    found
}

/// The ids with a key (in any state) on nobody's master.
fn keys_on(root: &Path) -> Vec<String> {
    let pki = root.join("etc/salt/pki/master");
    [
        "minions",
        "minions_pre",
        "minions_denied",
        "minions_rejected",
    ]
    .iter()
    .flat_map(|dir| {
        std::fs::read_dir(pki.join(dir))
            .into_iter()
            .flatten()
            .flatten()
    })
    .map(|entry| entry.file_name().to_string_lossy().into_owned())
    .collect()
}

#[test]
fn a_minion_without_master_trusts_only_this_hosts_own_master() {
    if !nix::unistd::Uid::effective().is_root() {
        eprintln!("skipped: needs root to run a master as nobody");
        return;
    }
    if std::net::ToSocketAddrs::to_socket_addrs(&("salt", 4506)).is_ok() {
        eprintln!("skipped: the name salt resolves here");
        return;
    }
    let dir = tempfile::Builder::new()
        .prefix("hb")
        .tempdir_in("/tmp")
        .unwrap();
    std::fs::set_permissions(
        dir.path(),
        std::os::unix::fs::PermissionsExt::from_mode(0o755),
    )
    .unwrap();
    let port = free_port();
    let attacker = dir.path().join("nobody");
    let _attackers_master = nobodys_master(&attacker, port);
    // The victim: root's minion without master:, its config dir also holding this host's master
    // config (whose key does not exist yet).
    let etc = dir.path().join("etc");
    let root = dir.path().display().to_string();
    std::fs::create_dir_all(&etc).unwrap();
    std::fs::write(
        etc.join("minion"),
        format!(
            "id: victim\nroot_dir: {root}/minion\nsock_dir: {root}/minion/run\nmaster_port: {port}\nacceptance_wait_time: 0.3\nrecon_default: 100\nrecon_max: 300\nlog_file: {root}/minion/log\nlog_level_logfile: debug\n"
        ),
    )
    .unwrap();
    std::fs::write(
        etc.join("master"),
        format!(
            "root_dir: {root}/master\nsock_dir: {root}/master/run\ninterface: 127.0.0.1\nret_port: {port}\nauto_accept: True\nlog_file: {root}/master/log\n"
        ),
    )
    .unwrap();
    let minion_log = || std::fs::read_to_string(dir.path().join("minion/log")).unwrap_or_default();
    let _victim = Running::daemon("salt-minion", &etc);
    assert!(
        wait_until(Duration::from_secs(10), || minion_log()
            .contains("set master: in")),
        "{}",
        minion_log()
    );
    std::thread::sleep(Duration::from_secs(1));
    assert!(keys_on(&attacker).is_empty(), "{:?}", keys_on(&attacker));
    // This host's master key appears: the minion tries this host, pinned to that key, and the
    // other master's key does not pass.
    let pki = dir.path().join("master/etc/salt/pki/master");
    std::fs::create_dir_all(&pki).unwrap();
    KeyPair::load_or_create(&pki, "master").unwrap();
    assert!(
        wait_until(Duration::from_secs(10), || minion_log()
            .contains("pinned to its key")),
        "{}",
        minion_log()
    );
    std::thread::sleep(Duration::from_secs(1));
    assert!(keys_on(&attacker).is_empty(), "{:?}", keys_on(&attacker));
    let pinned = dir
        .path()
        .join("minion/etc/salt/pki/minion/minion_master.pub");
    assert!(!pinned.exists());
    // The real master of this host takes the port: the minion gets in and pins its key.
    drop(_attackers_master);
    let _master = Running::daemon("salt-master", &etc);
    let answered = wait_until(Duration::from_secs(20), || {
        let output = Command::new(bin("salt"))
            .arg("-c")
            .arg(&etc)
            .args(["victim", "test.ping", "-t", "1", "--out=json"])
            .stdin(Stdio::null())
            .output()
            .unwrap();
        stdout(&output).contains("\"victim\": true")
    });
    assert!(answered, "{}", minion_log());
    assert_eq!(
        std::fs::read_to_string(&pinned).unwrap().trim(),
        std::fs::read_to_string(pki.join("master.pub"))
            .unwrap()
            .trim()
    );
}

/// An accepted minion's session, for sending what a real minion would not.
async fn accepted_session(port: u16, keys: &Path, id: &str) -> Session {
    let (session, welcome) = hello_as(port, keys, id, "call").await;
    assert_eq!(
        map_get(&welcome, "act").and_then(Value::as_str),
        Some("accept"),
        "{welcome}"
    );
    session
}

/// What the master answers to a `_return` load.
async fn answer_to(session: &mut Session, fields: Vec<(Value, Value)>) -> Value {
    session
        .tx
        .send(message("_return", fields).into())
        .await
        .unwrap();
    loop {
        let reply = session.rx.recv().await.expect("an answer");
        if command(&reply).is_some_and(|cmd| cmd.starts_with("_return_")) {
            return reply;
        }
    }
}

/// A minion returned for jobs never published to it, with jids holding line breaks, and filled
/// the job cache through salt-call job records (`arg`) that no quota counted.
#[test]
fn returns_are_taken_only_for_published_jobs_and_charged_whole() {
    let mut cluster = Cluster::new("auto_accept: True\nreturn_quota_bytes: 3000000\n");
    cluster.start_master();
    let keys = tempfile::tempdir().unwrap();
    let watcher = cluster.watch();
    runtime().block_on(async {
        let mut session = accepted_session(cluster.port(), keys.path(), "raw1").await;
        let field = |k: &str, v: Value| (Value::from(k), v);
        for jid in [
            "20261202000000000001",
            "20261202000000000001\n\nsalt/key",
            "req ",
        ] {
            let reply = answer_to(
                &mut session,
                vec![
                    field("id", Value::from("raw1")),
                    field("jid", Value::from(jid)),
                    field("return", Value::Boolean(true)),
                ],
            )
            .await;
            assert_eq!(command(&reply), Some("_return_refused"), "{jid:?}: {reply}");
        }
        // A salt-call return whose job record is big: charged with the return.
        let big = Value::Array(vec![Value::from("x".repeat(2_000_000))]);
        let mut refused = 0;
        for _ in 0..3 {
            let reply = answer_to(
                &mut session,
                vec![
                    field("id", Value::from("raw1")),
                    field("jid", Value::from("req")),
                    field("fun", Value::from("test.arg")),
                    field("arg", big.clone()),
                    field("return", Value::Boolean(true)),
                ],
            )
            .await;
            if command(&reply) == Some("_return_refused") {
                refused += 1;
            }
        }
        assert_eq!(
            refused, 2,
            "the second 2 MB job record is over the 3 MB quota"
        );
    });
    let lines = watcher.drain(Duration::from_secs(1));
    assert!(
        lines
            .iter()
            .all(|line| !line.contains("20261202000000000001")),
        "{lines:?}"
    );
}

/// A minion's own return (salt-call's `req`, a scheduled job's) said it ran on every minion:
/// the master takes the target to be the minion itself, as Salt's master does.
#[test]
fn a_minions_own_return_targets_the_minion_whatever_it_says() {
    let mut cluster = Cluster::new("auto_accept: True\n");
    cluster.start_master();
    let keys = tempfile::tempdir().unwrap();
    let watcher = cluster.watch();
    let (jid, line) = runtime().block_on(async {
        let mut session = accepted_session(cluster.port(), keys.path(), "raw2").await;
        let field = |k: &str, v: Value| (Value::from(k), v);
        let reply = answer_to(
            &mut session,
            vec![
                field("id", Value::from("raw2")),
                field("jid", Value::from("req")),
                field("fun", Value::from("test.ping")),
                field("tgt", Value::from("*")),
                field("tgt_type", Value::from("compound")),
                field("return", Value::Boolean(true)),
            ],
        )
        .await;
        assert_eq!(command(&reply), Some("_return_ok"), "{reply}");
        next_return(&watcher, "raw2")
    });
    assert!(line.contains(r#""tgt": "raw2""#), "{line}");
    assert!(line.contains(r#""tgt_type": "glob""#), "{line}");
    let job = cluster.run("salt-run", &["jobs.list_job", &jid, "--out=json"]);
    let text = stdout(&job);
    assert!(text.contains(r#""Target": "raw2""#), "{text}");
    assert!(text.contains(r#""Target-type": "glob""#), "{text}");
}
