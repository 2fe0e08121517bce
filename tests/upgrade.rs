//! Upgrades: the link's protocol version, refused in one line on both sides when the minion and
//! master do not accept each other's, and minions installed with a key made beforehand
//! (`salt-key --gen-keys`).

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use halite::event::{Value, map_get};
use halite::keys::{KeyPair, fingerprint};
use halite::link::tls::TlsListener;
use halite::link::{Acceptor, Gate};
use halite::proto::message;

use crate::support::{Cluster, RawSubscriber, bin, say_hello, stderr, stdout, wait_until};

fn runtime() -> tokio::runtime::Runtime {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .unwrap()
}

fn field<'a>(value: &'a Value, key: &str) -> &'a Value {
    map_get(value, key).unwrap_or_else(|| panic!("no {key} in {value}"))
}

fn text<'a>(value: &'a Value, key: &str) -> &'a str {
    field(value, key)
        .as_str()
        .unwrap_or_else(|| panic!("{key} in {value}"))
}

fn announcing(id: &str, protocol: u64, halite: &str) -> Vec<(Value, Value)> {
    vec![
        ("id".into(), id.into()),
        ("protocol".into(), protocol.into()),
        (
            "accepts".into(),
            Value::Array(vec![protocol.into(), Value::Nil]),
        ),
        ("version".into(), halite.into()),
    ]
}

#[test]
fn a_minion_of_a_protocol_the_master_does_not_serve_is_refused_in_one_line_with_an_event() {
    let mut cluster = Cluster::new("");
    cluster.start_master();
    let mut bus = RawSubscriber::connect(&cluster.master_pub());
    let keys = cluster.path().join("peer");
    let rt = runtime();
    for (id, protocol, upgrade) in [("newer", 99, "master"), ("older", 0, "minion")] {
        let (mut session, welcome) = rt.block_on(say_hello(
            cluster.port(),
            &keys,
            announcing(id, protocol, "9.9.9"),
        ));
        assert_eq!(text(&welcome, "act"), "refused");
        assert_eq!(field(&welcome, "protocol").as_u64(), Some(1));
        let reason = text(&welcome, "reason");
        assert!(
            reason.starts_with(&format!(
                "link protocol mismatch: the minion speaks link protocol {protocol} (halite 9.9.9) and accepts masters of protocol {protocol} and later; the master speaks link protocol 1 (halite {}) and accepts minions of protocol 1 to 1; upgrade the {upgrade}",
                env!("CARGO_PKG_VERSION")
            )),
            "{reason}"
        );
        assert!(
            rt.block_on(session.rx.recv()).is_none(),
            "the master closes the session"
        );
        let event = bus.expect_tag("halite/link/mismatch");
        assert_eq!(event.data.as_map().unwrap()[0].0.as_str(), Some("result"));
        assert_eq!(field(&event.data, "result").as_bool(), Some(false));
        assert_eq!(text(&event.data, "id"), id);
        assert!(text(&event.data, "peer").starts_with("127.0.0.1:"));
        let presented = KeyPair::load_or_create(&keys, "minion").unwrap();
        assert_eq!(
            text(&event.data, "fingerprint"),
            fingerprint(presented.public_pem(), "sha256").unwrap()
        );
        assert_eq!(text(&event.data, "key"), "unknown", "no key is on file");
        assert_eq!(text(&event.data, "upgrade"), upgrade);
        assert_eq!(text(&event.data, "message"), reason);
        let minion = field(&event.data, "minion");
        assert_eq!(field(minion, "protocol").as_u64(), Some(protocol));
        assert_eq!(text(minion, "version"), "9.9.9");
        let master = field(&event.data, "master");
        assert_eq!(
            field(master, "accepts").to_string(),
            "[1, 1]",
            "{}",
            event.data
        );
        let line = format!("refused minion {id} (127.0.0.1:");
        assert!(
            wait_until(Duration::from_secs(5), || cluster
                .master_log()
                .lines()
                .any(|l| l.contains(&line) && l.ends_with(reason))),
            "{}",
            cluster.master_log()
        );
    }
    // No key was judged: nothing was filed and no salt/auth was fired.
    assert_eq!(
        stdout(&cluster.run("salt-key", &["-L"])),
        "Accepted Keys:\nDenied Keys:\nUnaccepted Keys:\nRejected Keys:\n"
    );
    while let Some(event) = bus.next_event(Duration::from_millis(300)) {
        assert_ne!(event.tag, "salt/auth", "{}", event.data);
    }
}

#[test]
fn a_mismatched_minion_retrying_is_refused_each_time_and_reported_once_a_minute() {
    let mut cluster = Cluster::new("");
    cluster.start_master();
    let mut bus = RawSubscriber::connect(&cluster.master_pub());
    let keys = cluster.path().join("peer");
    let rt = runtime();
    let without_id = |fields: Vec<(Value, Value)>| {
        fields
            .into_iter()
            .filter(|(key, _)| key.as_str() != Some("id"))
            .collect::<Vec<_>>()
    };
    let hellos = [
        (5, announcing("retrying", 99, "9.9.9")),
        (5, without_id(announcing("", 99, "9.9.9"))),
        (1, announcing("another", 99, "9.9.9")),
    ];
    for (times, fields) in hellos {
        for _ in 0..times {
            let (_, welcome) = rt.block_on(say_hello(cluster.port(), &keys, fields.clone()));
            assert_eq!(text(&welcome, "act"), "refused", "{welcome}");
        }
    }
    let mut reported = Vec::new();
    while let Some(event) = bus.next_event(Duration::from_millis(500)) {
        if event.tag == "halite/link/mismatch" {
            reported.push(text(&event.data, "id").to_owned());
        }
    }
    assert_eq!(reported, ["retrying", "", "another"]);
    let lines = |id: &str| {
        let line = format!("refused minion {id} (127.0.0.1:");
        cluster
            .master_log()
            .lines()
            .filter(|l| l.contains(&line))
            .count()
    };
    assert!(
        wait_until(Duration::from_secs(5), || lines("another") == 1),
        "{}",
        cluster.master_log()
    );
    assert_eq!(lines("retrying"), 1, "{}", cluster.master_log());
    assert_eq!(lines("without an id"), 1, "{}", cluster.master_log());
}

#[test]
fn a_peer_flooding_bad_hellos_is_logged_once_and_a_mismatch_says_whose_key_it_presented() {
    let mut cluster = Cluster::new("");
    cluster.start_master();
    let mut bus = RawSubscriber::connect(&cluster.master_pub());
    let rt = runtime();
    let intruder = cluster.path().join("intruder");
    for n in 0..50 {
        let bad = vec![("id".into(), format!("bad*{n}").into())];
        let (_, welcome) = rt.block_on(say_hello(cluster.port(), &intruder, bad));
        assert_eq!(text(&welcome, "act"), "refused", "{welcome}");
    }
    // m1's key is accepted; the intruder claims its id too.
    let m1 = cluster.path().join("m1");
    let m1_key = KeyPair::load_or_create(&m1, "minion").unwrap();
    let accepted = cluster.master_pki().join("minions");
    std::fs::create_dir_all(&accepted).unwrap();
    std::fs::write(accepted.join("m1"), m1_key.public_pem()).unwrap();
    for (dir, key) in [(&m1, "accepted"), (&intruder, "differs")] {
        let (_, welcome) = rt.block_on(say_hello(
            cluster.port(),
            dir,
            announcing("m1", 99, "9.9.9"),
        ));
        assert_eq!(text(&welcome, "act"), "refused", "{welcome}");
        let event = bus.expect_tag("halite/link/mismatch");
        assert_eq!(text(&event.data, "id"), "m1");
        assert_eq!(text(&event.data, "key"), key, "{}", event.data);
        let presented = KeyPair::load_or_create(dir, "minion").unwrap();
        assert_eq!(
            text(&event.data, "fingerprint"),
            fingerprint(presented.public_pem(), "sha256").unwrap()
        );
    }
    let count = |needle: &str| {
        cluster
            .master_log()
            .lines()
            .filter(|l| l.contains(needle))
            .count()
    };
    assert!(
        wait_until(Duration::from_secs(5), || count("refused minion m1 (") == 2),
        "{}",
        cluster.master_log()
    );
    assert_eq!(
        count("refused a session from 127.0.0.1:"),
        1,
        "{}",
        cluster.master_log()
    );
    assert!(count("invalid minion id \"bad*0\"") == 1);
    assert!(count("more refusals suppressed") <= 1);
}

#[test]
fn a_minion_without_a_link_version_is_taken_as_protocol_1_and_admitted() {
    let mut cluster = Cluster::new("auto_accept: True\n");
    cluster.start_master();
    let rt = runtime();
    let bare = vec![("id".into(), "old1".into())];
    let (_session, welcome) =
        rt.block_on(say_hello(cluster.port(), &cluster.path().join("k"), bare));
    assert_eq!(text(&welcome, "act"), "accept", "{welcome}");
    assert_eq!(field(&welcome, "protocol").as_u64(), Some(1));
    assert_eq!(field(&welcome, "accepts").to_string(), "[1, 1]");
    assert_eq!(text(&welcome, "version"), env!("CARGO_PKG_VERSION"));
}

/// A master played by the test on `port`: every hello is answered with `welcome`; returns the
/// hellos heard within `within`.
fn fake_master(port: u16, dir: &Path, welcome: Value, within: Duration) -> Vec<(Instant, Value)> {
    let rt = runtime();
    rt.block_on(async move {
        let key = KeyPair::load_or_create(dir, "master").unwrap();
        let listener = tokio::net::TcpListener::bind(("127.0.0.1", port))
            .await
            .unwrap();
        let mut link = TlsListener::new(listener, &key, Duration::from_secs(10), Gate::new(8, 8));
        let mut hellos = Vec::new();
        let mut sessions = Vec::new();
        let deadline = tokio::time::Instant::now() + within;
        while let Ok(Ok(mut session)) = tokio::time::timeout_at(deadline, link.accept()).await {
            let Ok(Some(hello)) = tokio::time::timeout_at(deadline, session.rx.recv()).await else {
                continue;
            };
            hellos.push((Instant::now(), hello));
            session.tx.send(welcome.clone().into()).await.unwrap();
            // Kept open: the minion decides what to do with the answer.
            sessions.push(session);
        }
        hellos
    })
}

#[test]
fn a_minion_refused_for_its_protocol_backs_off_and_says_why_in_one_line() {
    let cluster = Cluster::new("");
    cluster.configure_minion("web1", "");
    let minion = cluster.spawn_minion("web1");
    let refusal = message(
        "welcome",
        vec![
            ("act".into(), "refused".into()),
            ("reason".into(), "link protocol mismatch".into()),
            ("protocol".into(), 5.into()),
            ("accepts".into(), Value::Array(vec![5.into(), 5.into()])),
            ("version".into(), "5.0.0".into()),
        ],
    );
    let hellos = fake_master(
        cluster.port(),
        &cluster.path().join("master-keys"),
        refusal,
        Duration::from_secs(4),
    );
    // acceptance_wait_time 0.3 doubling: at 0, 0.3, 0.9, 2.1 s (and 4.5), not in a loop.
    assert!(
        (3..=5).contains(&hellos.len()),
        "{} hellos in 4 s",
        hellos.len()
    );
    let gaps: Vec<Duration> = hellos.windows(2).map(|w| w[1].0 - w[0].0).collect();
    assert!(
        gaps.windows(2).all(|g| g[1] > g[0]),
        "the waits grow: {gaps:?}"
    );
    let first = &hellos[0].1;
    assert_eq!(field(first, "protocol").as_u64(), Some(1));
    assert_eq!(field(first, "accepts").to_string(), "[1, nil]");
    assert_eq!(text(first, "version"), env!("CARGO_PKG_VERSION"));
    let mismatches = |log: &str| {
        log.lines()
            .filter(|line| line.contains("link protocol mismatch"))
            .count()
    };
    assert!(
        wait_until(Duration::from_secs(5), || mismatches(
            &cluster.minion_log("web1")
        ) == hellos.len()),
        "one line per refusal:\n{}",
        cluster.minion_log("web1")
    );
    let log = cluster.minion_log("web1");
    let lines: Vec<&str> = log
        .lines()
        .filter(|line| line.contains("link protocol mismatch"))
        .collect();
    assert!(
        lines[0].contains(&format!(
            "no session with the master at 127.0.0.1:{}: link protocol mismatch: the minion speaks link protocol 1 (halite {}) and accepts masters of protocol 1 and later; the master speaks link protocol 5 (halite 5.0.0) and accepts minions of protocol 5 to 5; upgrade the minion to the master's halite; trying again in 0.3 seconds",
            cluster.port(),
            env!("CARGO_PKG_VERSION")
        )),
        "{log}"
    );
    // Still running: the other side may be upgraded in a while.
    let (status, _) = minion.stop();
    assert!(status.success(), "{status:?}");
}

#[test]
fn a_minion_takes_a_master_without_a_link_version_for_protocol_1() {
    let cluster = Cluster::new("");
    cluster.configure_minion("web1", "");
    let _minion = cluster.spawn_minion("web1");
    let welcome = message(
        "welcome",
        vec![
            ("act".into(), "accept".into()),
            ("master".into(), "old-master".into()),
        ],
    );
    let hellos = fake_master(
        cluster.port(),
        &cluster.path().join("master-keys"),
        welcome,
        Duration::from_secs(3),
    );
    assert_eq!(hellos.len(), 1, "one session, kept");
    assert!(
        wait_until(Duration::from_secs(5), || cluster
            .minion_log("web1")
            .contains("connected to the master")),
        "{}",
        cluster.minion_log("web1")
    );
    assert!(!cluster.minion_log("web1").contains("mismatch"));
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path).unwrap().permissions().mode() & 0o777
}

fn gen_keys(cluster: &Cluster, cwd: &Path, args: &[&str]) -> std::process::Output {
    Command::new(bin("salt-key"))
        .arg("-c")
        .arg(cluster.etc())
        .args(args)
        .current_dir(cwd)
        .output()
        .unwrap()
}

#[test]
fn gen_keys_writes_a_pair_with_salts_modes_and_prints_its_fingerprint() {
    let cluster = Cluster::new("");
    let cwd = cluster.path().join("cwd");
    std::fs::create_dir_all(&cwd).unwrap();
    std::fs::set_permissions(&cwd, std::fs::Permissions::from_mode(0o755)).unwrap();
    let made = gen_keys(&cluster, &cwd, &["--gen-keys", "web1"]);
    assert!(made.status.success(), "{}", stderr(&made));
    assert_eq!(stderr(&made), "");
    let (pem, public) = (cwd.join("web1.pem"), cwd.join("web1.pub"));
    assert_eq!((mode(&pem), mode(&public)), (0o400, 0o644));
    assert_eq!(mode(&cwd), 0o755, "the operator's directory is left alone");
    assert!(
        std::fs::read_to_string(&pem)
            .unwrap()
            .starts_with("-----BEGIN PRIVATE KEY-----\n")
    );
    let public_text = std::fs::read_to_string(&public).unwrap();
    assert!(public_text.starts_with("-----BEGIN PUBLIC KEY-----\n"));
    assert!(public_text.ends_with("-----END PUBLIC KEY-----\n"));
    let finger = fingerprint(&public_text, "sha256").unwrap();
    assert_eq!(stdout(&made), format!("return:\n    {finger}\n"));

    // Again: the pair is kept, as Salt keeps it, and halite says so.
    let again = gen_keys(&cluster, &cwd, &["--gen-keys", "web1", "--out", "json"]);
    assert!(again.status.success(), "{}", stderr(&again));
    assert_eq!(
        stdout(&again),
        format!("{{\n    \"return\": \"{finger}\"\n}}\n")
    );
    assert!(
        stderr(&again).contains("web1.pem exists and is kept"),
        "{}",
        stderr(&again)
    );
    assert_eq!(std::fs::read_to_string(&public).unwrap(), public_text);

    // --gen-keys-dir is created; --keysize is checked as Salt checks it and has no effect.
    let made = gen_keys(
        &cluster,
        &cwd,
        &[
            "--gen-keys",
            "db1",
            "--gen-keys-dir",
            "seed/sub",
            "--keysize",
            "4096",
        ],
    );
    assert!(made.status.success(), "{}", stderr(&made));
    assert!(cwd.join("seed/sub/db1.pem").is_file());
    assert!(
        stderr(&made).contains("--keysize 4096 has no effect: halite's keys are Ed25519"),
        "{}",
        stderr(&made)
    );
    let small = gen_keys(&cluster, &cwd, &["--gen-keys", "x", "--keysize", "1024"]);
    assert_eq!(small.status.code(), Some(2), "{}", stderr(&small));
    assert!(
        stderr(&small).contains("2048..=32768"),
        "{}",
        stderr(&small)
    );
    assert!(!cwd.join("x.pem").exists());

    let bad = gen_keys(&cluster, &cwd, &["--gen-keys", "a/b"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("cannot name a key pair \"a/b\""),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn a_minion_seeded_with_a_generated_key_filed_as_accepted_connects_accepted() {
    let mut cluster = Cluster::new("");
    cluster.start_master();
    let seed = cluster.path().join("seed");
    let made = gen_keys(
        &cluster,
        cluster.path(),
        &[
            "--gen-keys",
            "web1",
            "--gen-keys-dir",
            seed.to_str().unwrap(),
        ],
    );
    assert!(made.status.success(), "{}", stderr(&made));
    std::fs::copy(
        seed.join("web1.pub"),
        cluster.master_pki().join("minions/web1"),
    )
    .unwrap();
    cluster.configure_minion("web1", "");
    let pki = cluster.minion_dir("web1").join("etc/salt/pki/minion");
    std::fs::create_dir_all(&pki).unwrap();
    std::fs::set_permissions(&pki, std::fs::Permissions::from_mode(0o700)).unwrap();
    std::fs::copy(seed.join("web1.pem"), pki.join("minion.pem")).unwrap();
    std::fs::copy(seed.join("web1.pub"), pki.join("minion.pub")).unwrap();
    cluster.start_minion("web1", "");
    cluster.wait_connected(&["web1"]);
    let ping = cluster.run("salt", &["web1", "test.ping"]);
    assert_eq!(stdout(&ping), "web1:\n    True\n", "{}", stderr(&ping));
    assert_eq!(
        stdout(&cluster.run("salt-key", &["-L"])),
        "Accepted Keys:\nweb1\nDenied Keys:\nUnaccepted Keys:\nRejected Keys:\n"
    );
    assert!(
        cluster.master_log().contains("minion web1 connected"),
        "{}",
        cluster.master_log()
    );
}
