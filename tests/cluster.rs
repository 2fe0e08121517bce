//! Masters and minions over the link: keys, targeting, returns and the built-in events, with
//! several minions (their own ids, directories and keys) on loopback.

use std::time::Duration;

use crate::support::{Cluster, returned_ids, stderr, stdout, wait_until};

const WAIT: Duration = Duration::from_secs(10);

/// A state.event line with the varying parts (jids, stamps, arrival times) replaced.
fn normalized(line: &str) -> String {
    let jid = regex::Regex::new(r"\b\d{20}\b").unwrap();
    let stamp = regex::Regex::new(r#""_stamp": "[^"]+""#).unwrap();
    let ts = regex::Regex::new(r#""ts": \d+"#).unwrap();
    let started =
        regex::Regex::new(r"started at \w{3} \w{3} [ \d]\d \d\d:\d\d:\d\d \d{4}").unwrap();
    let key =
        regex::Regex::new(r#""pub": "-----BEGIN PUBLIC KEY-----\\n[^"]+-----END PUBLIC KEY-----""#)
            .unwrap();
    let line = jid.replace_all(line, "JID");
    let line = stamp.replace_all(&line, r#""_stamp": "STAMP""#);
    let line = started.replace_all(&line, "started at DATE");
    let line = key.replace_all(&line, r#""pub": "KEY""#);
    ts.replace_all(&line, r#""ts": TS"#).into_owned()
}

/// A minion's first connection on the master bus, captured from Salt 3007.8
/// (`20_salt_key.txt`, minion3).
const GOLDEN_START: [&str; 3] = [
    r#"salt/auth	{"result": true, "act": "accept", "id": "minion3", "pub": "-----BEGIN PUBLIC KEY-----\nMIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAwaMhgN4K+ECsWeHiQ+c+\n-----END PUBLIC KEY-----", "_stamp": "2026-11-24T08:45:53.731830"}"#,
    r#"minion_start	{"id": "minion3", "cmd": "_minion_event", "pretag": null, "data": "Minion minion3 started at Tue Nov 24 08:45:53 2026", "tag": "minion_start", "ts": 1795509953, "_stamp": "2026-11-24T08:45:53.974185"}"#,
    r#"salt/minion/minion3/start	{"id": "minion3", "cmd": "_minion_event", "pretag": null, "data": "Minion minion3 started at Tue Nov 24 08:45:53 2026", "tag": "salt/minion/minion3/start", "ts": 1795509953, "_stamp": "2026-11-24T08:45:53.979197"}"#,
];

#[test]
fn a_minions_start_events_match_salts_byte_for_byte() {
    let mut cluster = Cluster::new("auto_accept: True\n");
    cluster.start_master();
    let watcher = cluster.watch();
    cluster.start_minion("minion3", "");
    let lines = [
        watcher.expect("salt/auth", WAIT),
        watcher.expect("minion_start", WAIT),
        watcher.expect("salt/minion/minion3/start", WAIT),
    ];
    let ours: Vec<String> = lines.iter().map(|l| normalized(l)).collect();
    let salts: Vec<String> = GOLDEN_START.iter().map(|l| normalized(l)).collect();
    assert_eq!(ours, salts);
}

/// `salt minion1 test.ping` on the master bus, captured from Salt 3007.8 (`07_salt_cli.txt`).
const GOLDEN_PING: [&str; 4] = [
    r#"20261124084432987557	{"minions": ["minion1"], "_stamp": "2026-11-24T08:44:32.987915"}"#,
    r#"salt/job/20261124084432987557/new	{"jid": "20261124084432987557", "tgt_type": "glob", "tgt": "minion1", "user": "root", "fun": "test.ping", "arg": [], "minions": ["minion1"], "missing": [], "_stamp": "2026-11-24T08:44:32.989174"}"#,
    r#"salt/job/20261124084432987557/publish	{"fun": "test.ping", "arg": [], "tgt": "minion1", "jid": "20261124084432987557", "ret": "", "tgt_type": "glob", "user": "root", "_stamp": "2026-11-24T08:44:32.991175"}"#,
    r#"salt/job/20261124084432987557/ret/minion1	{"cmd": "_return", "id": "minion1", "success": true, "return": true, "retcode": 0, "jid": "20261124084432987557", "fun": "test.ping", "fun_args": [], "user": "root", "_stamp": "2026-11-24T08:44:33.098442", "ts": 1795509873}"#,
];

#[test]
fn job_events_and_returns_match_salts_byte_for_byte() {
    let mut cluster = Cluster::new("auto_accept: True\n");
    cluster.start_master();
    cluster.start_minion("minion1", "");
    cluster.wait_connected(&["minion1"]);
    let watcher = cluster.watch();
    let output = cluster.run("salt", &["minion1", "test.ping"]);
    assert_eq!(stdout(&output), "minion1:\n    True\n");
    assert!(output.status.success());
    let jid_line = watcher.line(WAIT).expect("the bare-jid event");
    let mut lines = vec![jid_line];
    for suffix in ["new", "publish", "ret/minion1"] {
        let jid = lines[0].split('\t').next().unwrap().to_owned();
        lines.push(watcher.expect(&format!("salt/job/{jid}/{suffix}"), WAIT));
    }
    let ours: Vec<String> = lines.iter().map(|l| normalized(l)).collect();
    let salts: Vec<String> = GOLDEN_PING.iter().map(|l| normalized(l)).collect();
    assert_eq!(ours, salts);
}

#[test]
fn keys_go_pending_accepted_rejected_deleted_with_salts_events() {
    let mut cluster = Cluster::new("");
    cluster.start_master();
    let watcher = cluster.watch();
    cluster.start_minion("web1", "");
    let pend = watcher.expect("salt/auth", WAIT);
    assert!(
        pend.contains(
            r#"{"result": true, "act": "pend", "id": "web1", "pub": "-----BEGIN PUBLIC KEY-----\n"#
        ),
        "{pend}"
    );
    assert_eq!(
        stdout(&cluster.run("salt-key", &["-L"])),
        "Accepted Keys:\nDenied Keys:\nUnaccepted Keys:\nweb1\nRejected Keys:\n"
    );
    // A pending minion gets no jobs.
    let output = cluster.run("salt", &["web1", "test.ping"]);
    assert_eq!(output.status.code(), Some(2), "{}", stdout(&output));
    let accepted = cluster.run("salt-key", &["-a", "web*", "-y"]);
    assert_eq!(
        stdout(&accepted),
        "The following keys are going to be accepted:\nUnaccepted Keys:\nweb1\nKey for minion web1 accepted.\n"
    );
    let key_event = watcher.expect("salt/key", WAIT);
    assert!(
        normalized(&key_event)
            .ends_with(r#"{"result": true, "act": "accept", "id": "web1", "_stamp": "STAMP"}"#),
        "{key_event}"
    );
    let auth = watcher.expect("salt/auth", WAIT);
    assert!(auth.contains(r#""act": "accept", "id": "web1""#), "{auth}");
    let start = watcher.expect("salt/minion/web1/start", WAIT);
    assert!(
        start.contains(
            r#""cmd": "_minion_event", "pretag": null, "data": "Minion web1 started at "#
        ),
        "{start}"
    );
    cluster.wait_connected(&["web1"]);
    // -r touches only pending keys unless --include-accepted is given.
    assert_eq!(
        stdout(&cluster.run("salt-key", &["-r", "web1", "-y"])),
        "The key glob 'web1' does not match any unaccepted keys.\n"
    );
    let rejected = cluster.run("salt-key", &["-r", "web1", "--include-accepted", "-y"]);
    assert!(
        stdout(&rejected).ends_with("Key for minion web1 rejected.\n"),
        "{}",
        stdout(&rejected)
    );
    let key_event = watcher.expect("salt/key", WAIT);
    assert!(
        key_event.contains(r#""act": "reject", "id": "web1""#),
        "{key_event}"
    );
    // The master closes the rejected minion's session; its next attempt is refused and it
    // exits 77, as Salt's minion does.
    let minion = cluster.take_minion("web1");
    let status = minion.wait_exit(Duration::from_secs(15));
    assert_eq!(status.code(), Some(77), "{}", cluster.minion_log("web1"));
    let refused = watcher.expect("salt/auth", WAIT);
    assert!(
        normalized(&refused).contains(r#"{"result": false, "id": "web1", "pub": "#),
        "{refused}"
    );
    assert!(
        cluster
            .minion_log("web1")
            .contains("rejected this minion's public key")
    );
    let deleted = cluster.run("salt-key", &["-d", "web1", "-y"]);
    assert_eq!(
        stdout(&deleted),
        "The following keys are going to be deleted:\nRejected Keys:\nweb1\nKey for minion web1 deleted.\n"
    );
    let key_event = watcher.expect("salt/key", WAIT);
    assert!(
        key_event.contains(r#""act": "delete", "id": "web1""#),
        "{key_event}"
    );
    let listed = cluster.run("salt-key", &["-L", "--out", "json"]);
    assert_eq!(
        stdout(&listed),
        "{\n    \"minions\": [],\n    \"minions_pre\": [],\n    \"minions_rejected\": [],\n    \"minions_denied\": []\n}\n"
    );
}

#[test]
fn a_new_key_for_a_known_id_is_denied_and_the_impostor_gets_nothing() {
    let mut cluster = Cluster::new("auto_accept: True\n");
    cluster.start_master();
    cluster.start_minion("db1", "");
    cluster.wait_connected(&["db1"]);
    let watcher = cluster.watch();
    // Another minion claims the id db1 with its own key.
    cluster.configure_minion("impostor", "");
    let config = cluster.minion_dir("impostor").join("etc/minion");
    let text = std::fs::read_to_string(&config)
        .unwrap()
        .replace("id: impostor", "id: db1");
    std::fs::write(&config, text).unwrap();
    let impostor = cluster.spawn_minion("impostor");
    let denied = watcher.expect("salt/auth", WAIT);
    assert!(
        normalized(&denied).contains(r#"{"result": false, "id": "db1", "act": "denied", "pub": "#),
        "{denied}"
    );
    assert_eq!(impostor.wait_exit(Duration::from_secs(15)).code(), Some(77));
    assert_eq!(
        stdout(&cluster.run("salt-key", &["-l", "den"])),
        "Denied Keys:\ndb1\n"
    );
    // The real db1 is still the one that answers.
    cluster.wait_connected(&["db1"]);
}

#[test]
fn targets_select_minions_by_glob_regex_list_and_grain() {
    let mut cluster = Cluster::new("auto_accept: True\n");
    cluster.start_master();
    cluster.start_minion("web1", "grains: {roles: [web]}\n");
    cluster.start_minion("web2", "grains: {roles: [web]}\n");
    cluster.start_minion("db1", "grains: {roles: [db], tier: {name: gold}}\n");
    cluster.wait_connected(&["web1", "web2", "db1"]);
    let ids = |args: &[&str]| -> Vec<String> {
        let output = cluster.run("salt", args);
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
        returned_ids(&stdout(&output))
    };
    assert_eq!(ids(&["*", "test.ping"]), ["db1", "web1", "web2"]);
    assert_eq!(ids(&["web*", "test.ping"]), ["web1", "web2"]);
    assert_eq!(ids(&["-E", "web[2-9]", "test.ping"]), ["web2"]);
    // Python's syntax, matched as Salt's `re.match` does (Rust's regex has no `\Z`).
    assert_eq!(ids(&["-E", r"(?i)WEB1\Z|db", "test.ping"]), ["db1", "web1"]);
    assert_eq!(ids(&["-L", "web1,db1", "test.ping"]), ["db1", "web1"]);
    assert_eq!(ids(&["-G", "roles:db", "test.ping"]), ["db1"]);
    assert_eq!(ids(&["-G", "tier:name:GOLD", "test.ping"]), ["db1"]);
    // --static: one document holding every return, printed once all are in.
    let together = cluster.run("salt", &["web*", "test.ping", "--static", "--out=json"]);
    let together: serde_json::Value = serde_json::from_str(&stdout(&together)).unwrap();
    assert_eq!(together, serde_json::json!({"web1": true, "web2": true}));
    let echoed = cluster.run("salt", &["db1", "test.echo", "hello world", "--out=json"]);
    assert_eq!(stdout(&echoed), "{\n    \"db1\": \"hello world\"\n}\n");
    let grain = cluster.run("salt", &["db1", "grains.get", "tier:name"]);
    assert_eq!(stdout(&grain), "db1:\n    gold\n");
    let ran = cluster.run(
        "salt",
        &[
            "db1",
            "cmd.run_all",
            "echo out; echo err >&2; exit 3",
            "python_shell=True",
            "--out=json",
        ],
    );
    assert_eq!(ran.status.code(), Some(1));
    let text = stdout(&ran);
    assert!(
        text.contains("\"retcode\": 3,\n        \"stdout\": \"out\",\n        \"stderr\": \"err\""),
        "{text}"
    );
    assert_eq!(
        stderr(&ran),
        "ERROR: Minions returned with non-zero exit code\n"
    );
    // Without python_shell the command is split into words, not given to a shell.
    let literal = cluster.run("salt", &["db1", "cmd.run", "echo a | tr a b"]);
    assert_eq!(stdout(&literal), "db1:\n    a | tr a b\n");
    let unknown = cluster.run("salt", &["db1", "no.such"]);
    assert_eq!(stdout(&unknown), "db1:\n    'no.such' is not available.\n");
    assert_eq!(unknown.status.code(), Some(1));
    let none = cluster.run("salt", &["nobody*", "test.ping"]);
    assert_eq!(
        stdout(&none),
        "No minions matched the target. No command was sent, no jid was assigned.\n"
    );
    assert_eq!(stderr(&none), "ERROR: No return received\n");
    assert_eq!(none.status.code(), Some(2));
    let verbose = cluster.run("salt", &["db1", "test.ping", "-v"]);
    let text = stdout(&verbose);
    let jid = text
        .strip_prefix("Executing job with jid ")
        .and_then(|rest| rest.split('\n').next())
        .unwrap_or_else(|| panic!("{text}"))
        .to_owned();
    assert_eq!(
        text,
        format!(
            "Executing job with jid {jid}\n-------------------------------------------\n\ndb1:\n    True\n"
        )
    );
    let looked_up = cluster.run("salt-run", &["jobs.lookup_jid", &jid]);
    assert_eq!(stdout(&looked_up), "db1:\n    True\n");
    let listed = stdout(&cluster.run("salt-run", &["jobs.list_jobs", "--out=json"]));
    assert!(
        listed.contains(&format!(
            "\"{jid}\": {{\n        \"Function\": \"test.ping\""
        )),
        "{listed}"
    );
}

#[test]
fn a_minion_that_dies_mid_job_is_reported_and_the_exit_code_says_so() {
    let mut cluster = Cluster::new("auto_accept: True\n");
    cluster.start_master();
    cluster.start_minion("m1", "");
    cluster.start_minion("m2", "");
    cluster.wait_connected(&["m1", "m2"]);
    let salt = cluster
        .cmd("salt")
        .args(["*", "test.sleep", "3", "-t", "1"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    std::thread::sleep(Duration::from_millis(500));
    let m2 = cluster.take_minion("m2");
    m2.kill();
    let output = salt.wait_with_output().unwrap();
    let text = stdout(&output);
    assert!(text.starts_with("m1:\n    True\n"), "{text}");
    assert!(
        text.contains("m2:\n    Minion did not return. [No response]\n    The minions may not have all finished running and any remaining minions will return upon completion. To look up the return data for this job later, run the following command:\n    \n    salt-run jobs.lookup_jid "),
        "{text}"
    );
    assert_eq!(
        stderr(&output),
        "ERROR: Minions returned with non-zero exit code\n"
    );
    assert_eq!(output.status.code(), Some(1));
}

#[test]
fn minions_come_back_after_a_master_restart_and_presence_says_so() {
    let mut cluster = Cluster::new("auto_accept: True\npresence_events: True\nloop_interval: 1\n");
    cluster.start_master();
    let watcher = cluster.watch();
    cluster.start_minion("m1", "");
    let change = watcher.expect("salt/presence/change", WAIT);
    assert!(
        normalized(&change).ends_with(r#"{"new": ["m1"], "lost": [], "_stamp": "STAMP"}"#),
        "{change}"
    );
    let present = watcher.expect("salt/presence/present", WAIT);
    assert!(present.contains(r#"{"present": ["m1"]"#), "{present}");
    cluster.stop_master();
    drop(watcher);
    cluster.start_master();
    let watcher = cluster.watch();
    // The minion may be back before the watcher is: the interval report shows it either way.
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    loop {
        let present = watcher.expect("salt/presence/present", Duration::from_secs(15));
        if present.contains(r#"{"present": ["m1"]"#) {
            break;
        }
        assert!(std::time::Instant::now() < deadline, "{present}");
    }
    cluster.wait_connected(&["m1"]);
    // The minion's start events are not fired again: the minion did not restart (as Salt).
    let minion_log = cluster.minion_log("m1");
    assert!(
        minion_log.contains("lost the connection to the master"),
        "{minion_log}"
    );
    let m1 = cluster.take_minion("m1");
    m1.stop();
    let lost = watcher.expect("salt/presence/change", WAIT);
    assert!(lost.contains(r#"{"new": [], "lost": ["m1"]"#), "{lost}");
}

#[test]
fn a_minion_without_an_accepted_key_can_send_nothing() {
    let mut cluster = Cluster::new("");
    cluster.start_master();
    let watcher = cluster.watch();
    cluster.start_minion("stranger", "");
    watcher.expect("salt/auth", WAIT);
    let minion_bus = cluster.minion_dir("stranger").join("run");
    assert!(wait_until(WAIT, || std::fs::read_dir(&minion_bus)
        .map(|d| d.count() >= 2)
        .unwrap_or(false)));
    // The minion asks its bus to forward events and runs salt-call: nothing gets through.
    let sent = cluster.call("stranger", &["event.send", "stranger/event", "x=1"]);
    assert!(sent.status.success(), "{}", stderr(&sent));
    let called = cluster.call("stranger", &["test.ping"]);
    assert_eq!(called.status.code(), Some(1));
    assert!(
        stderr(&called).contains(
            "Minion failed to authenticate with the master, has the minion key been accepted?"
        ),
        "{}",
        stderr(&called)
    );
    let seen = watcher.drain(Duration::from_secs(2));
    assert!(
        seen.iter()
            .all(|line| !line.starts_with("stranger/") && !line.contains("/ret/")),
        "{seen:?}"
    );
    assert!(
        cluster.master_log().contains("minion stranger (127.0.0.1"),
        "{}",
        cluster.master_log()
    );
    assert!(
        cluster
            .master_log()
            .contains("is waiting for its key to be accepted")
    );
    // Once accepted, the event queued on the minion is delivered.
    cluster.run("salt-key", &["-A", "-y"]);
    let line = watcher.expect("stranger/event", Duration::from_secs(15));
    assert!(line.contains(r#""id": "stranger""#), "{line}");
}

#[test]
fn salt_call_returns_to_the_master_with_a_new_jid() {
    let mut cluster = Cluster::new("auto_accept: True\n");
    cluster.start_master();
    cluster.start_minion("m1", "");
    cluster.wait_connected(&["m1"]);
    let watcher = cluster.watch();
    let output = cluster.call("m1", &["test.echo", "hi"]);
    assert_eq!(stdout(&output), "local:\n    hi\n");
    let line = watcher.line(WAIT).expect("salt/auth");
    assert!(line.starts_with("salt/auth\t"), "{line}");
    let ret = watcher.line(WAIT).expect("the return");
    assert_eq!(
        normalized(&ret),
        r#"salt/job/JID/ret/m1	{"cmd": "_return", "id": "m1", "jid": "JID", "return": "hi", "retcode": 0, "fun": "test.echo", "fun_args": ["hi"], "ts": TS, "arg": ["hi"], "tgt_type": "glob", "tgt": "m1", "_stamp": "STAMP"}"#
    );
    let local = cluster.call(
        "m1",
        &["--local", "cmd.retcode", "exit 4", "python_shell=True"],
    );
    assert_eq!(stdout(&local), "local:\n    4\n");
    assert_eq!(local.status.code(), Some(1));
    assert!(watcher.drain(Duration::from_millis(500)).is_empty());
}

/// A TCP proxy in front of the master that records what the first client sends and can
/// corrupt the next chunk a client sends.
struct Proxy {
    address: String,
    corrupt: std::sync::Arc<std::sync::atomic::AtomicBool>,
    recorded: std::sync::Arc<std::sync::Mutex<Vec<u8>>>,
}

impl Proxy {
    fn start(master_port: u16) -> Self {
        use std::io::{Read, Write};
        use std::sync::atomic::Ordering;
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        let address = listener.local_addr().unwrap().to_string();
        let corrupt = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let recorded = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
        let (flag, record) = (corrupt.clone(), recorded.clone());
        std::thread::spawn(move || {
            for (n, client) in listener.incoming().enumerate() {
                let Ok(mut client) = client else { return };
                let mut server = std::net::TcpStream::connect(("127.0.0.1", master_port)).unwrap();
                let (mut client_read, mut server_read) =
                    (client.try_clone().unwrap(), server.try_clone().unwrap());
                let (flag, record) = (flag.clone(), record.clone());
                std::thread::spawn(move || {
                    let mut buffer = [0u8; 65536];
                    while let Ok(read) = client_read.read(&mut buffer) {
                        if read == 0 {
                            break;
                        }
                        let chunk = &mut buffer[..read];
                        if n == 0 {
                            record.lock().unwrap().extend_from_slice(chunk);
                        }
                        if flag.swap(false, Ordering::SeqCst) {
                            // The last byte of a record is part of its authentication tag.
                            chunk[read - 1] ^= 0x01;
                        }
                        if server.write_all(chunk).is_err() {
                            break;
                        }
                    }
                    let _ = server.shutdown(std::net::Shutdown::Both);
                });
                std::thread::spawn(move || {
                    let _ = std::io::copy(&mut server_read, &mut client);
                    let _ = client.shutdown(std::net::Shutdown::Both);
                });
            }
        });
        Self {
            address,
            corrupt,
            recorded,
        }
    }
}

#[test]
fn tampered_and_replayed_link_traffic_is_refused() {
    use halite::event::Value;
    use halite::keys::KeyPair;
    use halite::link::Connector;
    use halite::link::tls::{MasterPin, TlsDialer};
    use halite::proto::{command, message};

    let mut cluster = Cluster::new("auto_accept: True\n");
    cluster.start_master();
    let watcher = cluster.watch();
    let proxy = Proxy::start(cluster.port());
    let keys = tempfile::tempdir().unwrap();
    let key = KeyPair::load_or_create(keys.path(), "minion").unwrap();
    let event = |tag: &str| {
        message(
            "_minion_event",
            vec![
                ("id".into(), "probe".into()),
                ("pretag".into(), Value::Nil),
                ("data".into(), Value::Map(vec![("n".into(), 1.into())])),
                ("tag".into(), tag.into()),
            ],
        )
    };
    // Sessions run on a worker thread while this thread blocks on the watcher.
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .worker_threads(1)
        .enable_all()
        .build()
        .unwrap();
    runtime.block_on(async {
        let dialer = TlsDialer::new(
            proxy.address.clone(),
            &key,
            MasterPin::FirstUse,
            Duration::from_secs(10),
        );
        let mut session = dialer.connect().await.unwrap();
        let hello = message(
            "hello",
            vec![
                ("id".into(), "probe".into()),
                ("role".into(), "minion".into()),
            ],
        );
        session.tx.send(hello.into()).await.unwrap();
        let welcome = session.rx.recv().await.unwrap();
        assert_eq!(command(&welcome), Some("welcome"));
        session.tx.send(event("probe/clean").into()).await.unwrap();
        watcher.expect("probe/clean", WAIT);
        // One flipped bit in the next record: the master refuses it and ends the session.
        proxy
            .corrupt
            .store(true, std::sync::atomic::Ordering::SeqCst);
        session
            .tx
            .send(event("probe/tampered").into())
            .await
            .unwrap();
        let ended = tokio::time::timeout(WAIT, session.rx.recv()).await;
        assert!(
            matches!(ended, Ok(None)),
            "the session is closed: {ended:?}"
        );
    });
    // The first session's bytes, replayed on a new connection: the handshake cannot complete.
    let recorded = proxy.recorded.lock().unwrap().clone();
    assert!(recorded.len() > 500);
    let mut replay = std::net::TcpStream::connect(("127.0.0.1", cluster.port())).unwrap();
    use std::io::{Read, Write};
    replay.write_all(&recorded).unwrap();
    replay
        .set_read_timeout(Some(Duration::from_secs(5)))
        .unwrap();
    let mut sink = Vec::new();
    let _ = replay.read_to_end(&mut sink);
    let seen = watcher.drain(Duration::from_secs(1));
    assert!(
        seen.iter().all(|line| !line.starts_with("probe/")),
        "nothing tampered or replayed reached the bus: {seen:?}"
    );
    let log = cluster.master_log();
    assert!(log.contains("refused a message and closed"), "{log}");
    assert!(log.contains("handshake failed"), "{log}");
}

#[test]
fn local_requests_need_the_root_key_and_big_returns_are_trimmed_on_the_bus_only() {
    use futures_util::{SinkExt, StreamExt};
    use halite::event::Value;

    let mut cluster = Cluster::new("auto_accept: True\n");
    cluster.start_master();
    cluster.start_minion("m1", "");
    cluster.wait_connected(&["m1"]);
    // A publish without the secret from <cachedir>/.root_key is refused.
    let socket = cluster.path().join("master/run/master_request.ipc");
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let reply = runtime.block_on(async {
        let stream = tokio::net::UnixStream::connect(&socket).await.unwrap();
        let mut framed = tokio_util::codec::Framed::new(stream, halite::proto::request::codec());
        let request = Value::Map(vec![
            ("cmd".into(), "publish".into()),
            ("tgt".into(), "*".into()),
            ("fun".into(), "cmd.run".into()),
            ("arg".into(), Value::Array(vec!["id".into()])),
        ]);
        let mut bytes = Vec::new();
        rmpv::encode::write_value(&mut bytes, &request).unwrap();
        framed.send(bytes::Bytes::from(bytes)).await.unwrap();
        let reply = framed.next().await.unwrap().unwrap();
        rmpv::decode::read_value(&mut &reply[..]).unwrap()
    });
    assert!(reply.to_string().contains("root key"), "{reply}");
    let mode = std::fs::metadata(
        cluster
            .path()
            .join("master/var/cache/salt/master/.root_key"),
    )
    .map(|m| std::os::unix::fs::PermissionsExt::mode(&m.permissions()) & 0o777)
    .unwrap();
    assert_eq!(mode, 0o400);
    // Over max_event_size, the return event carries VALUE_TRIMMED; the job cache has it all.
    let big = cluster.run(
        "salt",
        &[
            "m1",
            "cmd.run",
            "head -c 2000000 /dev/zero | tr '\\0' a",
            "python_shell=True",
            "-v",
        ],
    );
    let text = stdout(&big);
    assert!(
        text.ends_with("m1:\n    VALUE_TRIMMED\n"),
        "{}",
        &text[..text.len().min(300)]
    );
    let jid = text
        .strip_prefix("Executing job with jid ")
        .and_then(|rest| rest.split('\n').next())
        .unwrap()
        .to_owned();
    let whole = cluster.run("salt-run", &["jobs.lookup_jid", &jid, "--out=json"]);
    assert!(stdout(&whole).len() > 2_000_000);
    // A timeout covers the output: a background child holding it open does not hold the job.
    let started = std::time::Instant::now();
    let timed = cluster.call(
        "m1",
        &[
            "--local",
            "cmd.run",
            "sleep 30 & echo hi",
            "python_shell=True",
            "timeout=1",
        ],
    );
    assert!(started.elapsed() < Duration::from_secs(10));
    assert_eq!(
        stdout(&timed),
        "local:\n    sleep 30 & echo hi : Timed out after 1 seconds\n"
    );
}

/// Salt records a job published by root under sudo as `sudo_<name>`; `salt` recorded the bare
/// name while the runners added the prefix.
#[test]
fn jobs_published_under_sudo_record_salts_user() {
    if !crate::support::running_as_root() {
        eprintln!("skipped: Salt adds sudo_ only for root");
        return;
    }
    let mut cluster = Cluster::new("auto_accept: True\n");
    cluster.start_master();
    cluster.start_minion("m1", "");
    cluster.wait_connected(&["m1"]);
    let watcher = cluster.watch();
    let output = cluster
        .cmd("salt")
        .env("SUDO_USER", "alice")
        .args(["m1", "test.ping"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let output = cluster
        .cmd("salt-run")
        .env("SUDO_USER", "alice")
        .args(["test.arg", "x"])
        .output()
        .unwrap();
    assert!(output.status.success(), "{}", stderr(&output));
    let users: Vec<String> = watcher
        .drain(Duration::from_secs(2))
        .iter()
        .filter_map(|line| {
            let (tag, data) = line.split_once('\t')?;
            let new = (tag.starts_with("salt/job/") || tag.starts_with("salt/run/"))
                && tag.ends_with("/new");
            let data: serde_json::Value = serde_json::from_str(data).ok()?;
            new.then(|| data["user"].as_str().unwrap_or_default().to_owned())
        })
        .collect();
    assert_eq!(users, ["sudo_alice", "sudo_alice"]);
}

/// A minion running as many jobs as `process_count_max` allows still answers `saltutil.*`,
/// which finds and stops jobs.
#[test]
fn saltutil_answers_while_the_minion_is_at_its_job_limit() {
    let mut cluster = Cluster::new("auto_accept: True\n");
    cluster.start_master();
    cluster.start_minion("m1", "process_count_max: 1\n");
    cluster.wait_connected(&["m1"]);
    // One job runs, the next waits for a slot.
    for _ in 0..2 {
        let busy = cluster.run("salt", &["--async", "m1", "test.sleep", "20"]);
        assert!(busy.status.success(), "{}", stderr(&busy));
    }
    std::thread::sleep(Duration::from_millis(300));
    let running = cluster.run("salt", &["m1", "saltutil.running", "--out=json", "-t", "5"]);
    assert!(
        stdout(&running).contains("test.sleep"),
        "{}{}",
        stdout(&running),
        stderr(&running)
    );
}
