//! Masters clustered on NATS JetStream: a real three-node nats-server cluster on loopback ports,
//! three halite masters sharing their bus through it, a node killed mid-stream, and the bus
//! replayed from the stream.

use std::io::{Read, Write};
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use halite::wire::Framing;

use crate::support::{Cluster, Daemon, RawSender, Watcher, free_port, map, stderr, stdout};

/// Debian's nats-server, which tests/system-packages.sh installs.
fn nats_server() -> Option<PathBuf> {
    std::env::var_os("PATH")
        .into_iter()
        .flat_map(|path| std::env::split_paths(&path).collect::<Vec<_>>())
        .chain([PathBuf::from("/usr/sbin"), PathBuf::from("/usr/bin")])
        .map(|dir| dir.join("nats-server"))
        .find(|path| path.is_file())
}

/// Three nats-server nodes with JetStream, clustered on loopback, in a temporary directory.
struct Nats {
    dir: tempfile::TempDir,
    server: PathBuf,
    /// Each node's client, route and monitoring ports.
    ports: Vec<(u16, u16, u16)>,
    nodes: Vec<Option<Daemon>>,
}

impl Nats {
    /// The cluster, started; `None` (the test says SKIPPED) without nats-server.
    fn start() -> Option<Self> {
        let Some(server) = nats_server() else {
            eprintln!("SKIPPED: no nats-server (tests/system-packages.sh installs Debian's)");
            return None;
        };
        let mut nats = Self {
            dir: tempfile::tempdir().unwrap(),
            server,
            ports: (0..3)
                .map(|_| (free_port(), free_port(), free_port()))
                .collect(),
            nodes: Vec::new(),
        };
        for node in 0..3 {
            let daemon = nats.spawn(node);
            nats.nodes.push(Some(daemon));
        }
        // JetStream takes requests once its nodes have elected a leader: masters started
        // before would wait on it, and a slow election eats the tests' time limits.
        let led = crate::support::wait_until(Duration::from_secs(30), || {
            (0..3).any(|node| {
                http_get(nats.ports[node].2, "/jsz")
                    .and_then(|page| serde_json::from_str::<serde_json::Value>(&page).ok())
                    .is_some_and(|jsz| jsz["meta_cluster"]["leader"].is_string())
            })
        });
        assert!(
            led,
            "the NATS nodes elected no JetStream leader within 30 s"
        );
        Some(nats)
    }

    fn spawn(&self, node: usize) -> Daemon {
        let routes: Vec<String> = self
            .ports
            .iter()
            .map(|(_, route, _)| format!("nats://127.0.0.1:{route}"))
            .collect();
        let (client, route, monitor) = self.ports[node];
        let store = self.dir.path().join(format!("n{node}"));
        let config = self.dir.path().join(format!("n{node}.conf"));
        std::fs::write(
            &config,
            format!(
                "server_name: n{node}\nlisten: 127.0.0.1:{client}\nhttp: 127.0.0.1:{monitor}\njetstream {{ store_dir: \"{}\" }}\ncluster {{ name: halite, listen: 127.0.0.1:{route}, routes: [{}] }}\n",
                store.display(),
                routes.join(", ")
            ),
        )
        .unwrap();
        let child = Command::new(&self.server)
            .arg("-c")
            .arg(&config)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("start nats-server");
        let ready = crate::support::wait_until(Duration::from_secs(10), || {
            std::net::TcpStream::connect(("127.0.0.1", client)).is_ok()
        });
        assert!(ready, "nats-server n{node} did not listen on {client}");
        Daemon::started(child, &format!("nats-server n{node}"))
    }

    /// What a master's config needs to join the cluster `name`.
    fn master_options(&self, name: &str) -> String {
        let urls: Vec<String> = self
            .ports
            .iter()
            .map(|(client, _, _)| format!("nats://127.0.0.1:{client}"))
            .collect();
        format!("cluster_id: {name}\ncluster_nats: [{}]\n", urls.join(", "))
    }

    /// The node that leads `stream`'s replicas, from the nodes' monitoring pages.
    fn leader_of(&self, stream: &str) -> Option<usize> {
        (0..3).find_map(|node| {
            let page = http_get(self.ports[node].2, "/jsz?streams=true")?;
            let json: serde_json::Value = serde_json::from_str(&page).ok()?;
            let details = json["account_details"].as_array()?;
            details.iter().find_map(|account| {
                account["stream_detail"]
                    .as_array()?
                    .iter()
                    .find(|detail| detail["name"] == stream)
                    .and_then(|detail| detail["cluster"]["leader"].as_str())
                    .and_then(|leader| leader.strip_prefix('n')?.parse().ok())
            })
        })
    }

    fn kill(&mut self, node: usize) {
        self.nodes[node].take().expect("a running node").kill();
    }

    fn restart(&mut self, node: usize) {
        let daemon = self.spawn(node);
        self.nodes[node] = Some(daemon);
    }
}

/// The body of a plain HTTP GET on loopback.
fn http_get(port: u16, path: &str) -> Option<String> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port)).ok()?;
    stream.set_read_timeout(Some(Duration::from_secs(2))).ok()?;
    write!(stream, "GET {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n\r\n").ok()?;
    let mut response = String::new();
    stream.read_to_string(&mut response).ok()?;
    Some(response.split_once("\r\n\r\n")?.1.to_owned())
}

/// A started master in cluster `name` of `nats`.
fn master(nats: &Nats, name: &str) -> Cluster {
    let mut master = Cluster::new(&nats.master_options(name));
    master.start_master();
    master
}

/// A watcher of `master`'s bus, `state.event` with `args`.
fn watch(master: &Cluster, args: &[&str]) -> Watcher {
    let mut command = master.cmd("salt-run");
    command.arg("state.event").args(args);
    Watcher::spawn(command)
}

/// Fires `ready/<n>` on `from` until every watcher has printed one: the masters' bridges and
/// the stream are up. Then drops whatever else they printed.
fn until_shared(from: &Cluster, watchers: &[&Watcher]) {
    let deadline = Instant::now() + Duration::from_secs(30);
    let mut ready = vec![false; watchers.len()];
    let mut n = 0;
    while ready.contains(&false) {
        assert!(
            Instant::now() < deadline,
            "events are not shared between the masters; a master's log:\n{}",
            from.master_log()
        );
        n += 1;
        if let Ok(mut sender) = std::os::unix::net::UnixStream::connect(from.master_pull()) {
            let _ = sender.write_all(&crate::support::frame(
                &format!("ready/{n}"),
                &map(&[]),
                Framing::Bare,
            ));
        }
        std::thread::sleep(Duration::from_millis(200));
        for (watcher, ready) in watchers.iter().zip(&mut ready) {
            while let Some(line) = watcher.line(Duration::from_millis(1)) {
                *ready |= line.starts_with("ready/");
            }
        }
    }
    for watcher in watchers {
        while watcher.line(Duration::from_millis(300)).is_some() {}
    }
}

/// The tags of the lines `watcher` prints within `quiet` of each other whose tag starts with
/// `prefix`, up to `count`.
fn tags(watcher: &Watcher, prefix: &str, count: usize, quiet: Duration) -> Vec<String> {
    let mut tags = Vec::new();
    while tags.len() < count {
        let Some(line) = watcher.line(quiet) else {
            break;
        };
        let tag = line.split('\t').next().unwrap_or_default();
        if tag.starts_with(prefix) {
            tags.push(tag.to_owned());
        }
    }
    tags
}

/// As [`tags`], and then whatever else `watcher` prints with that prefix within a second: a
/// repeat shows there.
fn tags_and_more(watcher: &Watcher, prefix: &str, count: usize, quiet: Duration) -> Vec<String> {
    let mut seen = tags(watcher, prefix, count, quiet);
    seen.extend(tags(watcher, prefix, usize::MAX, Duration::from_secs(1)));
    seen
}

#[test]
fn an_event_fired_on_one_master_is_on_every_masters_bus_once_and_in_order() {
    let Some(nats) = Nats::start() else { return };
    let masters: Vec<Cluster> = (0..3).map(|_| master(&nats, "shared")).collect();
    let watchers: Vec<Watcher> = masters
        .iter()
        .map(|master| watch(master, &["tagmatch=shared/*"]))
        .collect();
    // Watchers see nothing of ready/* (their tagmatch), so each one's readiness is told by a
    // watcher of everything started before it.
    let probes: Vec<Watcher> = masters.iter().map(|master| watch(master, &[])).collect();
    until_shared(&masters[1], &probes.iter().collect::<Vec<_>>());
    // Tags NATS subjects cannot hold as they are: dots, spaces, empty parts, wildcards.
    let fired = [
        "shared/plain",
        "shared/web1.example.com/x y",
        "shared//empty//",
        "shared/*/>",
        "shared/~7E/é",
        "shared/last",
    ];
    let mut sender = RawSender::connect(&masters[1].master_pull());
    for (n, tag) in fired.iter().enumerate() {
        sender.fire(tag, &map(&[("n", (n as u64).into())]), Framing::Bare);
    }
    for (name, watcher) in ["A", "B", "C"].iter().zip(&watchers) {
        let seen = tags_and_more(watcher, "shared/", fired.len(), Duration::from_secs(5));
        assert_eq!(
            seen,
            fired,
            "master {name}'s bus; its log:\n{}",
            masters[0].master_log()
        );
    }
}

#[test]
fn a_nats_node_killed_mid_stream_loses_and_repeats_nothing_on_any_master() {
    const EVENTS: usize = 10_000;
    let Some(mut nats) = Nats::start() else {
        return;
    };
    let masters: Vec<Cluster> = (0..3).map(|_| master(&nats, "storm")).collect();
    let watchers: Vec<Watcher> = masters.iter().map(|master| watch(master, &[])).collect();
    until_shared(&masters[1], &watchers.iter().collect::<Vec<_>>());
    let leader = nats
        .leader_of("HALITE_storm_BUS")
        .expect("the stream has a leader");
    let mut sender = RawSender::connect(&masters[1].master_pull());
    for n in 0..EVENTS {
        sender.fire(&format!("load/{n}"), &map(&[]), Framing::Bare);
        if n % 1000 == 999 {
            std::thread::sleep(Duration::from_millis(100));
        }
        if n == EVENTS * 3 / 10 {
            nats.kill(leader);
        }
        if n == EVENTS * 6 / 10 {
            nats.restart(leader);
        }
    }
    let expected: Vec<String> = (0..EVENTS).map(|n| format!("load/{n}")).collect();
    for (name, watcher) in ["A", "B", "C"].iter().zip(&watchers) {
        let seen = tags_and_more(watcher, "load/", EVENTS, Duration::from_secs(30));
        let missing = expected.iter().filter(|tag| !seen.contains(tag)).count();
        assert_eq!(
            seen.len(),
            EVENTS,
            "master {name} saw {} events, {missing} missing; first: {:?}",
            seen.len(),
            seen.first()
        );
        assert!(
            seen == expected,
            "master {name} saw every event, but out of order"
        );
    }
}

#[test]
fn a_watcher_that_was_down_catches_up_from_the_stream() {
    let Some(nats) = Nats::start() else { return };
    let a = master(&nats, "replay");
    let c = master(&nats, "replay");
    let probe = watch(&c, &[]);
    until_shared(&a, &[&probe]);
    let before = jiff::Timestamp::now();
    let mut sender = RawSender::connect(&a.master_pull());
    for n in 0..5u64 {
        sender.fire(
            &format!("replay/{n}"),
            &map(&[("n", n.into())]),
            Framing::Bare,
        );
    }
    let seen = tags(&probe, "replay/", 5, Duration::from_secs(10));
    assert_eq!(seen.len(), 5, "the events reached master C");
    // Since a time, from master C: the events fired on A, in order, then it goes on live.
    let since = format!("since={before}");
    let output = c.run(
        "salt-run",
        &["state.event", &since, "tagmatch=replay/*", "count=5"],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let text = stdout(&output);
    let lines: Vec<&str> = text
        .lines()
        .map(|line| line.split('\t').next().unwrap())
        .collect();
    assert_eq!(
        lines,
        ["replay/0", "replay/1", "replay/2", "replay/3", "replay/4"]
    );
    // JSON lines carry each event's id, and since= an id starts from that event.
    let output = c.run(
        "salt-run",
        &[
            "state.event",
            "since=0",
            "tagmatch=replay/2",
            "count=1",
            "format=json",
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let line: serde_json::Value = serde_json::from_str(stdout(&output).trim()).unwrap();
    assert_eq!(line["tag"], "replay/2");
    let id = line["id"].as_u64().expect("an id");
    let since = format!("since={id}");
    let output = c.run("salt-run", &["state.event", &since, "count=1"]);
    assert!(
        stdout(&output).starts_with("replay/2\t"),
        "{}",
        stdout(&output)
    );
    // The last four events: replay/4 and the ones before it, with the runner events of the
    // watches above among them.
    let last = watch(&c, &["last=4", "tagmatch=replay/*"]);
    let seen = tags(&last, "replay/", 5, Duration::from_secs(2));
    assert!(
        (1..=4).contains(&seen.len()) && seen.last().map(String::as_str) == Some("replay/4"),
        "{seen:?}"
    );
    let first: usize = seen[0].trim_start_matches("replay/").parse().unwrap();
    assert_eq!(
        seen,
        (first..5)
            .map(|n| format!("replay/{n}"))
            .collect::<Vec<_>>()
    );
    // Live events follow the past ones.
    let live = watch(&c, &["since=1m", "tagmatch=replay/*", "count=6"]);
    assert_eq!(tags(&live, "replay/", 5, Duration::from_secs(10)).len(), 5);
    sender.fire("replay/5", &map(&[]), Framing::Bare);
    assert_eq!(
        tags(&live, "replay/", 1, Duration::from_secs(10)),
        ["replay/5"]
    );
    assert!(live.wait().success());
    let output = c.run("salt-run", &["state.event", "since=yesterday"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("since=yesterday: expected an event id"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn replay_without_a_cluster_says_which_options_keep_the_bus() {
    let mut master = Cluster::new("");
    master.start_master();
    let output = master.run("salt-run", &["state.event", "last=5"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("set both in the master's configuration"),
        "{}",
        stderr(&output)
    );
}

/// Three masters sharing one key pair (as masters a minion fails over between must), in
/// cluster `name`: the first one's key is copied to the others before they start.
fn masters_sharing_a_key(nats: &Nats, name: &str) -> Vec<Cluster> {
    let mut masters = vec![master(nats, name)];
    for _ in 1..3 {
        let mut other = Cluster::new(&nats.master_options(name));
        std::fs::create_dir_all(other.master_pki()).unwrap();
        for file in ["master.pem", "master.pub"] {
            std::fs::copy(
                masters[0].master_pki().join(file),
                other.master_pki().join(file),
            )
            .unwrap();
        }
        other.start_master();
        masters.push(other);
    }
    masters
}

/// The ids `salt-key -L` lists on `master` under `state` (`minions`, `minions_pre`).
fn listed_keys(master: &Cluster, state: &str) -> Vec<String> {
    let output = master.run("salt-key", &["-L", "--out=json"]);
    let listed: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap_or_default();
    let mut ids: Vec<String> = listed[state]
        .as_array()
        .map(|ids| {
            ids.iter()
                .filter_map(|id| id.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default();
    ids.sort();
    ids
}

/// Waits until master `n` of `masters` lists exactly `ids` under `state`.
fn until_keys(masters: &[Cluster], n: usize, state: &str, ids: &[&str]) {
    let ready = crate::support::wait_until(Duration::from_secs(20), || {
        listed_keys(&masters[n], state) == ids
    });
    let logs: Vec<String> = masters.iter().map(Cluster::master_log).collect();
    assert!(
        ready,
        "master {n}: {state} lists {:?}; the masters' logs:\n{}",
        listed_keys(&masters[n], state),
        logs.join("\n\n")
    );
}

/// `salt '*' test.ping` on `master` until every one of `ids` answers `true`, within 20 s;
/// how long it took.
fn until_all_answer(master: &Cluster, ids: &[&str]) -> Duration {
    let start = Instant::now();
    loop {
        let output = master.run("salt", &["*", "test.ping", "-t", "2", "--out=json"]);
        let text = stdout(&output);
        if ids
            .iter()
            .all(|id| text.contains(&format!("\"{id}\": true")))
        {
            return start.elapsed();
        }
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "not every minion answered: {text}\nthe master's log:\n{}",
            master.master_log()
        );
        std::thread::sleep(Duration::from_millis(200));
    }
}

#[test]
fn masters_share_keys_jobs_and_returns_and_minions_fail_over() {
    let Some(nats) = Nats::start() else { return };
    let mut masters = masters_sharing_a_key(&nats, "fleet");
    let ids = ["m-a", "m-b", "m-c"];
    // Each minion starts on its own master and fails over along the others.
    for (first, id) in ids.iter().enumerate() {
        let order: Vec<String> = (0..3)
            .map(|n| format!("127.0.0.1:{}", masters[(first + n) % 3].port()))
            .collect();
        masters[first].configure_minion(id, &format!("grains: {{home: master-{first}}}\n"));
        let config = masters[first].minion_dir(id).join("etc/minion");
        let text = std::fs::read_to_string(&config).unwrap().replace(
            "master: 127.0.0.1\n",
            &format!("master: [{}]\n", order.join(", ")),
        );
        std::fs::write(&config, text).unwrap();
        masters[first].start_configured_minion(id);
    }
    // Keys: each minion's key waits on its own master, and every master lists all three; one
    // salt-key -A on A admits them everywhere.
    for n in 0..3 {
        until_keys(&masters, n, "minions_pre", &ids);
    }
    let output = masters[0].run("salt-key", &["-A", "-y"]);
    assert!(output.status.success(), "{}", stderr(&output));
    for n in 0..3 {
        until_keys(&masters, n, "minions", &ids);
        until_keys(&masters, n, "minions_pre", &[]);
    }
    // Jobs: from A to the minions of A, B and C, the returns on A's bus once each.
    let returns = watch(&masters[0], &["tagmatch=salt/job/*/ret/*"]);
    until_all_answer(&masters[0], &ids);
    let output = masters[1].run("salt", &["--async", "*", "test.arg", "shared"]);
    let text = stdout(&output);
    let jid = text
        .trim()
        .rsplit(' ')
        .next()
        .filter(|jid| jid.len() >= 20)
        .unwrap_or_else(|| panic!("no jid: {text}{}", stderr(&output)))
        .to_owned();
    let seen = tags_and_more(
        &returns,
        &format!("salt/job/{jid}/ret/"),
        3,
        Duration::from_secs(10),
    );
    let mut returned: Vec<&str> = seen
        .iter()
        .map(|tag| tag.rsplit('/').next().unwrap())
        .collect();
    returned.sort();
    assert_eq!(returned, ids, "each return once on A's bus");
    // Grains: A learns the grains the minions reported to B and C, and targets by them.
    let start = Instant::now();
    loop {
        let output = masters[0].run(
            "salt",
            &["-G", "home:master-2", "test.ping", "-t", "5", "--out=json"],
        );
        let answered = stdout(&output);
        if answered.trim() == "{\n    \"m-c\": true\n}" {
            break;
        }
        // Until A knows the others' grains, it targets them too, as Salt's master targets a
        // minion whose grains it has not cached; they do not answer.
        assert!(
            start.elapsed() < Duration::from_secs(20),
            "{answered}{}",
            stderr(&output)
        );
        std::thread::sleep(Duration::from_millis(500));
    }
    // The job cache: every master shows every return of the job B published.
    for (name, master) in ["A", "B", "C"].iter().zip(&masters) {
        let lookup = || {
            let output = master.run("salt-run", &["jobs.lookup_jid", &jid, "--out=json"]);
            let found: serde_json::Value =
                serde_json::from_str(&stdout(&output)).unwrap_or_default();
            (found, stdout(&output) + &stderr(&output))
        };
        let all_kept =
            |found: &serde_json::Value| ids.iter().all(|id| found[id]["args"][0] == "shared");
        let kept = crate::support::wait_until(Duration::from_secs(10), || all_kept(&lookup().0));
        assert!(
            kept,
            "master {name}'s job cache: {}\nits log:\n{}",
            lookup().1,
            master.master_log()
        );
    }
    // A master dies: its minion goes on to the next one and the next ping answers for all.
    masters[2].signal_master(nix::sys::signal::Signal::SIGKILL);
    let took = until_all_answer(&masters[0], &ids);
    eprintln!("after master C was killed, every minion answered again within {took:?}");
    // Deleting a key on one master ends that minion's session on every master.
    let output = masters[1].run("salt-key", &["-d", "m-a", "-y"]);
    assert!(output.status.success(), "{}", stderr(&output));
    until_keys(&masters, 0, "minions", &["m-b", "m-c"]);
    // Its session ended: it presents its key again and waits, on every master.
    until_keys(&masters, 1, "minions_pre", &["m-a"]);
    until_keys(&masters, 0, "minions_pre", &["m-a"]);
    drop(returns);
    masters.truncate(2);
}
