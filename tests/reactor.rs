//! The reactor with real daemons: the seed documents' scenarios end to end, and the ways Salt's
//! reactor goes silent or wedges (render errors, hung reactions, a full queue) made loud; its
//! refresh timer in-process, on a paused clock.

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpListener;
use std::path::Path;
use std::process::Stdio;
use std::sync::mpsc;
use std::time::Duration;

use crate::support::{Cluster, Watcher, stdout, wait_until};

/// The data of a `state.event` line.
fn data(line: &str) -> serde_json::Value {
    let json = line.split_once('\t').expect("tag<TAB>json").1;
    serde_json::from_str(json).expect("json data")
}

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// A master whose config has `reactor` (and more) YAML, its reactor files written first.
fn master_with(reactor: &str, files: &[(&str, &str)]) -> Cluster {
    let mut cluster = Cluster::new("");
    let root = cluster.path().display().to_string();
    for (name, text) in files {
        write(&cluster.path().join(name), &text.replace("{root}", &root));
    }
    let config = std::fs::read_to_string(cluster.etc().join("master")).unwrap();
    write(
        &cluster.etc().join("master"),
        &format!("{config}{}", reactor.replace("{root}", &root)),
    );
    cluster.start_master();
    cluster
}

/// Fires events through `salt-run event.send -`, one per `tag<TAB>json` line.
fn fire_lines(cluster: &Cluster, lines: &[String]) {
    let mut child = cluster
        .cmd("salt-run")
        .args(["event.send", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    for line in lines {
        writeln!(stdin, "{line}").unwrap();
    }
    drop(stdin);
    assert!(child.wait().unwrap().success());
}

/// An HTTP server on a free loopback port answering one request with 200; the request's
/// first line, headers and body come out of the channel.
pub(crate) fn http_server() -> (u16, mpsc::Receiver<String>) {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    let (sender, received) = mpsc::channel();
    std::thread::spawn(move || {
        let Ok((stream, _)) = listener.accept() else {
            return;
        };
        let mut reader = BufReader::new(stream.try_clone().unwrap());
        let mut head = String::new();
        let mut length = 0;
        loop {
            let mut line = String::new();
            if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                break;
            }
            if let Some(value) = line.to_lowercase().strip_prefix("content-length:") {
                length = value.trim().parse().unwrap_or(0);
            }
            head.push_str(&line);
        }
        let mut body = vec![0; length];
        reader.read_exact(&mut body).unwrap();
        let mut stream = stream;
        let _ = stream
            .write_all(b"HTTP/1.1 200 OK\r\nContent-Length: 2\r\nConnection: close\r\n\r\nok");
        let _ = sender.send(format!("{head}\r\n{}", String::from_utf8_lossy(&body)));
    });
    (port, received)
}

const SEED_REACTOR: &str = "file_roots:
  base:
    - {root}/srv
reactor:
  - 'salt/auth':
    - {root}/reactor/accept.sls
  - 'salt/minion/*/start':
    - {root}/reactor/start.sls
  - 'my/custom/event/tag':
    - salt://reactor/customevent.sls
  - 'ci/build/*/done':
    - {root}/reactor/build.sls
";

/// The seed's key-accepting SLS, with `web` for its `Min` prefix.
const ACCEPT_SLS: &str =
    "{% if 'act' in data and data['act'] == 'pend' and data['id'].startswith('web') %}
key_accept:
  wheel.key.accept:
    - match: {{ data['id'] }}
{% endif %}
";

/// Salt 3007 runs `cmd.run` without a shell unless asked: the redirect needs
/// `python_shell: True`, exactly as with Salt.
const START_SLS: &str = "run_init:
  local.cmd.run:
    - tgt: {{ data['id'] }}
    - arg:
      - echo initok >> {root}/out/{{ data['id'] }}
    - kwarg:
        python_shell: True
";

/// Minion events reach the master in an envelope: the minion's own data is `data.data`.
const CUSTOM_SLS: &str = "tell:
  runner.event.send:
    - tag: my/custom/reacted
    - data:
        from: {{ data['id'] }}
        said: {{ data['data']['say'] }}
";

const BUILD_SLS: &str = "{% if data['status'] == 'failed' %}
spam slack:
  runner.http.query:
    - url: http://127.0.0.1:{{ data['port'] }}/hook
    - method: POST
    - header_dict:
        X-Build: '{{ data['build_id'] }}'
    - json:
        text: 'Build {{ data['build_id'] }} finished with status: {{ data['status'] }}'
        build_id: {{ data['build_id'] }}
        status: {{ data['status'] }}
{% endif %}
";

#[test]
fn seed_scenarios_accept_configure_react_and_call_a_webhook() {
    let mut cluster = master_with(
        SEED_REACTOR,
        &[
            ("reactor/accept.sls", ACCEPT_SLS),
            ("reactor/start.sls", START_SLS),
            ("srv/reactor/customevent.sls", CUSTOM_SLS),
            ("reactor/build.sls", BUILD_SLS),
        ],
    );
    std::fs::create_dir_all(cluster.path().join("out")).unwrap();
    let watcher = cluster.watch();

    // A new minion matching the pattern: pending, accepted by the reaction, and only then
    // started; its start event runs cmd.run on it.
    cluster.start_minion("web1", "");
    let pend = watcher.expect("salt/auth", Duration::from_secs(15));
    assert_eq!(data(&pend)["act"], "pend", "{pend}");
    let wheel = watcher.expect("salt/key", Duration::from_secs(10));
    assert_eq!(data(&wheel)["act"], "accept", "{wheel}");
    assert_eq!(data(&wheel)["id"], "web1");
    let started = watcher.expect("salt/minion/web1/start", Duration::from_secs(15));
    assert!(started.contains("\"id\": \"web1\""), "{started}");
    let out = cluster.path().join("out/web1");
    assert!(
        wait_until(Duration::from_secs(10), || std::fs::read_to_string(&out)
            .is_ok_and(|text| text == "initok\n")),
        "the start reaction did not write {}; master log:\n{}",
        out.display(),
        cluster.master_log()
    );

    // A minion that does not match stays pending.
    cluster.start_minion("db1", "");
    wait_until(Duration::from_secs(10), || {
        stdout(&cluster.run("salt-key", &["-l", "pre"])).contains("db1")
    });
    std::thread::sleep(Duration::from_millis(500));
    let keys = stdout(&cluster.run("salt-key", &["-L"]));
    assert!(
        keys.contains("Unaccepted Keys:\ndb1"),
        "db1 must stay pending: {keys}"
    );

    // salt-call event.send from the minion triggers the salt:// SLS.
    let sent = cluster.call(
        "web1",
        &["event.send", "my/custom/event/tag", "{say: hello}"],
    );
    assert!(sent.status.success(), "{sent:?}");
    let reacted = watcher.expect("my/custom/reacted", Duration::from_secs(10));
    assert_eq!(data(&reacted)["from"], "web1", "{reacted}");
    assert_eq!(data(&reacted)["said"], "hello", "{reacted}");

    // A failing build posts to the webhook; a passing one does not.
    let (port, requests) = http_server();
    fire_lines(
        &cluster,
        &[
            format!(r#"ci/build/41/done	{{"build_id": 41, "status": "passed", "port": {port}}}"#),
            format!(r#"ci/build/42/done	{{"build_id": 42, "status": "failed", "port": {port}}}"#),
        ],
    );
    let request = requests
        .recv_timeout(Duration::from_secs(10))
        .unwrap_or_else(|_| panic!("no webhook call; master log:\n{}", cluster.master_log()));
    assert!(request.starts_with("POST /hook HTTP/1.1"), "{request}");
    assert!(request.to_lowercase().contains("x-build: 42"), "{request}");
    assert!(
        request
            .to_lowercase()
            .contains("content-type: application/json"),
        "{request}"
    );
    let body: serde_json::Value =
        serde_json::from_str(request.split("\r\n\r\n").last().unwrap()).unwrap();
    assert_eq!(body["build_id"], 42, "{request}");
    assert_eq!(body["status"], "failed");
    assert_eq!(body["text"], "Build 42 finished with status: failed");
    let ret = watcher.expect_matching(
        "salt/run/",
        "/ret",
        Duration::from_secs(10),
        "runner.http.query",
    );
    assert_eq!(data(&ret)["user"], "Reactor", "{ret}");
    assert_eq!(data(&ret)["success"], true, "{ret}");
}

#[test]
fn a_minions_reactor_runs_caller_reactions_and_a_masters_refuses_them_without_wedging() {
    let mut cluster = master_with(
        "auto_accept: True\nreactor:\n  - 'test/caller': {root}/r/caller.sls\n  - 'test/after': {root}/r/after.sls\n",
        &[
            (
                "r/caller.sls",
                "local_echo:\n  caller.cmd.run:\n    - args:\n      - cmd: echo {{ data['x'] }} > {root}/out/caller\n      - python_shell: True\n",
            ),
            (
                "r/after.sls",
                "next:\n  runner.event.send:\n    - tag: test/after/ok\n",
            ),
        ],
    );
    let root = cluster.path().display().to_string();
    std::fs::create_dir_all(cluster.path().join("out")).unwrap();
    cluster.start_minion(
        "m1",
        &format!("reactor:\n  - 'test/caller': [{root}/r/caller.sls]\n"),
    );
    cluster.wait_connected(&["m1"]);
    let watcher = cluster.watch();
    // On the minion's own bus: the minion's reactor runs the function there.
    let fired = cluster.call("m1", &["event.fire", "{x: from-minion}", "test/caller"]);
    assert!(fired.status.success(), "{fired:?}");
    let out = cluster.path().join("out/caller");
    assert!(
        wait_until(Duration::from_secs(10), || std::fs::read_to_string(&out)
            .is_ok_and(|text| text == "from-minion\n")),
        "minion log:\n{}",
        cluster.minion_log("m1")
    );
    // On the master, where Salt's reactor would wedge for good: reported, and the next
    // reaction runs.
    fire_lines(
        &cluster,
        &[
            "test/caller\t{\"x\": 1}".to_owned(),
            "test/after\t{}".to_owned(),
        ],
    );
    let lines = watcher.drain(Duration::from_secs(3));
    let failed = lines
        .iter()
        .find(|line| line.starts_with("salt/reactor/error/failed\t"))
        .unwrap_or_else(|| panic!("no failure reported: {lines:#?}"));
    assert!(failed.contains("minion's reactor"), "{failed}");
    assert!(
        lines.iter().any(|line| line.starts_with("test/after/ok\t")),
        "{lines:#?}"
    );
}

#[test]
fn render_errors_name_file_line_and_expression_and_other_files_still_run() {
    let cluster = master_with(
        "reactor:\n  - 'test/bad': [{root}/r/bad.sls, {root}/r/good.sls, {root}/r/nothere.sls]\n",
        &[
            (
                "r/bad.sls",
                "# a comment\nbroken:\n  runner.test.arg:\n    - a: {{ data['nope']['deeper'] }}\n",
            ),
            (
                "r/good.sls",
                "fine:\n  runner.event.send:\n    - tag: test/good\n",
            ),
        ],
    );
    let watcher = cluster.watch();
    // The missing file was reported once, when the configuration was read.
    let log = cluster.master_log();
    assert_eq!(
        log.matches("nothere.sls is missing").count(),
        1,
        "reported once at start:\n{log}"
    );
    fire_lines(
        &cluster,
        &["test/bad\t{}".to_owned(), "test/bad\t{}".to_owned()],
    );
    let error = watcher.expect("salt/reactor/error/render", Duration::from_secs(10));
    let error = data(&error);
    assert_eq!(error["tag"], "test/bad");
    assert!(
        error["sls"].as_str().unwrap().ends_with("r/bad.sls"),
        "{error}"
    );
    assert_eq!(error["line"], 4, "{error}");
    assert!(error["column"].as_u64().unwrap() > 1, "{error}");
    assert!(
        error["expression"].as_str().unwrap().contains("nope"),
        "{error}"
    );
    assert_eq!(error["user"], "Reactor");
    watcher.expect("test/good", Duration::from_secs(10));
    watcher.expect("test/good", Duration::from_secs(10));
    let log = cluster.master_log();
    assert!(
        log.contains("bad.sls, line 4, column") && log.contains("for tag test/bad"),
        "{log}"
    );
    assert_eq!(log.matches("nothere.sls is missing").count(), 1, "{log}");
}

#[test]
fn a_hung_reaction_times_out_and_the_pool_keeps_working() {
    let cluster = master_with(
        "reactor_timeout: 1\nreactor_worker_threads: 1\nreactor:\n  - 'test/hang': {root}/r/hang.sls\n  - 'test/after': {root}/r/after.sls\n  - 'test/huge': {root}/r/huge.sls\n",
        &[
            (
                "r/hang.sls",
                "stuck:\n  runner.test.sleep:\n    - s_time: 600\n",
            ),
            (
                "r/huge.sls",
                "huge:\n  runner.test.sleep:\n    - s_time: 1.0e+20\n",
            ),
            (
                "r/after.sls",
                "next:\n  runner.event.send:\n    - tag: test/after/ok\n",
            ),
        ],
    );
    let watcher = cluster.watch();
    fire_lines(
        &cluster,
        &[
            "test/huge\t{}".to_owned(),
            "test/hang\t{}".to_owned(),
            "test/after\t{}".to_owned(),
        ],
    );
    // A value no duration can hold is a failed reaction, not a dead worker.
    let failed = watcher.expect("salt/reactor/error/failed", Duration::from_secs(10));
    assert!(failed.contains("s_time"), "{failed}");
    let timeout = watcher.expect("salt/reactor/error/timeout", Duration::from_secs(10));
    assert_eq!(data(&timeout)["fun"], "runner.test.sleep", "{timeout}");
    assert_eq!(data(&timeout)["id"], "stuck");
    // One worker: the next reaction ran only because the hung one was stopped.
    watcher.expect("test/after/ok", Duration::from_secs(10));
}

#[test]
fn a_full_queue_drops_events_and_counts_and_announces_them() {
    let cluster = master_with(
        "reactor_worker_threads: 1\nreactor_worker_hwm: 2\nreactor:\n  - 'test/flood': {root}/r/slow.sls\n",
        &[(
            "r/slow.sls",
            "slow:\n  runner.test.sleep:\n    - s_time: 1\n",
        )],
    );
    let watcher = cluster.watch();
    // The first is running before the rest arrive.
    fire_lines(&cluster, &["test/flood\t{\"n\": 0}".to_owned()]);
    watcher.expect_matching(
        "salt/run/",
        "/new",
        Duration::from_secs(5),
        "runner.test.sleep",
    );
    let lines: Vec<String> = (1..10)
        .map(|n| format!("test/flood\t{{\"n\": {n}}}"))
        .collect();
    fire_lines(&cluster, &lines);
    // One runs, two wait, seven are dropped: announced at once and then at most each second.
    let mut dropped = 0;
    while dropped < 7 {
        let line = watcher.expect("salt/reactor/dropped", Duration::from_secs(5));
        let report = data(&line);
        assert_eq!(report["hwm"], 2, "{line}");
        assert_eq!(report["last_tag"], "test/flood");
        dropped += report["dropped"].as_u64().unwrap();
        assert_eq!(report["total"], dropped, "{line}");
    }
    assert_eq!(dropped, 7);
    assert!(
        cluster
            .master_log()
            .contains("queue full (reactor_worker_hwm=2)")
    );
    // The three accepted still run.
    let mut finished = 0;
    while finished < 3 {
        let line = watcher.expect_matching(
            "salt/run/",
            "/ret",
            Duration::from_secs(10),
            "runner.test.sleep",
        );
        assert_eq!(data(&line)["success"], true);
        finished += 1;
    }
}

#[test]
fn events_with_one_tag_react_in_order_even_when_early_ones_are_slower() {
    let cluster = master_with(
        "reactor_worker_threads: 4\nreactor:\n  - 'test/order': {root}/r/order.sls\n",
        &[(
            "r/order.sls",
            "a_wait:\n  runner.test.sleep:\n    - s_time: {{ (9 - data['n']) * 0.03 }}\nb_tell:\n  runner.event.send:\n    - tag: test/ordered\n    - data: {n: {{ data['n'] }}}\n",
        )],
    );
    let watcher = cluster.watch();
    let lines: Vec<String> = (0..10)
        .map(|n| format!("test/order\t{{\"n\": {n}}}"))
        .collect();
    fire_lines(&cluster, &lines);
    for n in 0..10 {
        let line = watcher.expect("test/ordered", Duration::from_secs(10));
        assert_eq!(data(&line)["n"], n, "{line}");
    }
}

#[test]
fn the_loop_guard_ignores_events_the_reactor_caused() {
    let cluster = master_with(
        "reactor:\n  - 'salt/run/*/new': {root}/r/echo.sls\n",
        &[(
            "r/echo.sls",
            "again:\n  runner.test.arg:\n    - args: [{{ data['fun'] }}]\n",
        )],
    );
    let watcher = cluster.watch();
    assert!(cluster.run("salt-run", &["test.arg", "x"]).status.success());
    let lines = watcher.drain(Duration::from_secs(2));
    let reactor_news: Vec<&String> = lines
        .iter()
        .filter(|line| line.starts_with("salt/run/") && line.contains("/new\t"))
        .filter(|line| data(line)["user"] == "Reactor")
        .collect();
    assert_eq!(reactor_news.len(), 1, "{lines:#?}");
    // Positional new-style args stay positional.
    assert_eq!(
        data(reactor_news[0])["fun_args"],
        serde_json::json!(["runner.test.arg"])
    );
}

#[test]
fn local_and_wheel_reactions_carry_salts_arguments_and_events() {
    let mut cluster = master_with(
        "auto_accept: True\nreactor:\n  - 'test/args': {root}/r/args.sls\n",
        &[(
            "r/args.sls",
            "legacy:\n  local.test.arg:\n    - tgt: m1\n    - arg: [x]\n    - kwarg: {k: v}\nnew_style:\n  local.test.arg:\n    - tgt: 'm*'\n    - expr_form: glob\n    - args:\n      - 1\n      - foo: bar\nkeys:\n  wheel.key.list_all: []\n",
        )],
    );
    cluster.start_minion("m1", "");
    cluster.wait_connected(&["m1"]);
    let watcher = cluster.watch();
    fire_lines(&cluster, &["test/args\t{}".to_owned()]);
    let lines = watcher.drain(Duration::from_secs(3));
    let find = |prefix: &str, suffix: &str, needle: &str| -> Vec<serde_json::Value> {
        lines
            .iter()
            .filter(|line| {
                let tag = line.split('\t').next().unwrap_or_default();
                tag.starts_with(prefix) && tag.ends_with(suffix) && line.contains(needle)
            })
            .map(|line| data(line))
            .collect()
    };
    let mut args: Vec<serde_json::Value> = find("salt/job/", "/ret/m1", "test.arg")
        .into_iter()
        .map(|ret| ret["return"].clone())
        .collect();
    assert_eq!(args.len(), 2, "{lines:#?}");
    args.sort_by_key(|ret| ret["args"].to_string());
    assert_eq!(args[0]["args"], serde_json::json!(["x"]), "{args:?}");
    assert_eq!(args[0]["kwargs"]["k"], "v");
    assert_eq!(args[1]["args"], serde_json::json!([1]), "{args:?}");
    assert_eq!(args[1]["kwargs"]["foo"], "bar");
    let wheel = find("salt/wheel/", "/ret", "wheel.key.list_all");
    assert_eq!(wheel.len(), 1, "{lines:#?}");
    assert_eq!(wheel[0]["user"], "Reactor");
    assert_eq!(
        wheel[0]["return"]["minions"],
        serde_json::json!(["m1"]),
        "{wheel:?}"
    );
}

/// A dry run is a check CI can use: it exits 1 when it reports a problem.
#[test]
fn a_dry_run_that_reports_a_problem_exits_non_zero() {
    let cluster = master_with(
        "reactor:\n  - 'test/broken': [{root}/r/broken.sls]\n  - 'test/fine': [{root}/r/fine.sls]\n",
        &[
            ("r/broken.sls", "{{ data['id'] | no_such_filter }}\n"),
            (
                "r/fine.sls",
                "n:\n  runner.event.send:\n    - tag: test/ok\n",
            ),
        ],
    );
    let dry = |tag: &str| {
        cluster.run(
            "salt-run",
            &["reactor.dry_run", tag, "{id: x}", "--out=json"],
        )
    };
    let broken = dry("test/broken");
    assert_eq!(broken.status.code(), Some(1), "{broken:?}");
    let report: serde_json::Value = serde_json::from_str(&stdout(&broken)).unwrap();
    assert_ne!(report["problems"], serde_json::json!([]), "{report}");
    let fine = dry("test/fine");
    assert!(fine.status.success(), "{fine:?}");
    let unmatched = dry("test/nothing");
    assert!(unmatched.status.success(), "{unmatched:?}");

    // Events on standard input: one with a problem among fine ones is enough.
    let mixed = cluster
        .cmd("salt-run")
        .args(["reactor.dry_run", "-", "--out=json"])
        .stdin(std::process::Stdio::piped())
        .stdout(std::process::Stdio::piped())
        .spawn()
        .and_then(|mut child| {
            use std::io::Write;
            child
                .stdin
                .take()
                .unwrap()
                .write_all(b"test/fine\t{}\ntest/broken\t{\"id\": 1}\ntest/fine\t{}\n")?;
            child.wait_with_output()
        })
        .unwrap();
    assert_eq!(mixed.status.code(), Some(1), "{mixed:?}");
}

/// A skipped entry of the `reactor` option is a problem for a dry run too.
#[test]
fn a_dry_run_reports_a_bad_reactor_entry() {
    let cluster = master_with(
        "reactor:\n  - 'test/fine': [{root}/r/fine.sls]\n  - 42\n",
        &[(
            "r/fine.sls",
            "n:\n  runner.event.send:\n    - tag: test/ok\n",
        )],
    );
    let dry = cluster.run("salt-run", &["reactor.dry_run", "test/fine", "--out=json"]);
    assert_eq!(dry.status.code(), Some(1), "{dry:?}");
    let report: serde_json::Value = serde_json::from_str(&stdout(&dry)).unwrap();
    assert_eq!(
        report["problems"].as_array().map(Vec::len),
        Some(1),
        "{report}"
    );
}

#[test]
fn reactor_list_dry_run_and_reload_on_sighup() {
    let mut cluster = master_with(
        "reactor:\n  - 'salt/minion/*/start': [{root}/r/start.sls]\n",
        &[(
            "r/start.sls",
            "{% if data['id'].startswith('web') %}\nhello:\n  local.cmd.run:\n    - tgt: {{ data['id'] }}\n    - arg: ['echo {{ data.id }}']\n{% endif %}\n",
        )],
    );
    let listed = cluster.run("salt-run", &["reactor.list", "--out=json"]);
    assert!(listed.status.success(), "{listed:?}");
    let listed: serde_json::Value = serde_json::from_str(&stdout(&listed)).unwrap();
    let root = cluster.path().display().to_string();
    assert_eq!(
        listed,
        serde_json::json!([{"salt/minion/*/start": [format!("{root}/r/start.sls")]}])
    );

    // A recorded state.event line, rendered without running anything.
    let dry = cluster.run(
        "salt-run",
        &[
            "reactor.dry_run",
            "salt/minion/web7/start\t{\"id\": \"web7\", \"cmd\": \"_minion_event\"}",
            "--out=json",
        ],
    );
    assert!(dry.status.success(), "{dry:?}");
    let dry: serde_json::Value = serde_json::from_str(&stdout(&dry)).unwrap();
    assert_eq!(dry["reactions"][0]["action"], "local.cmd.run", "{dry}");
    assert_eq!(
        dry["reactions"][0]["params"]["arg"],
        serde_json::json!(["echo web7"])
    );
    assert_eq!(dry["problems"], serde_json::json!([]));
    let dry = cluster.run(
        "salt-run",
        &[
            "reactor.dry_run",
            "salt/minion/db1/start",
            "{id: db1}",
            "--out=json",
        ],
    );
    let dry: serde_json::Value = serde_json::from_str(&stdout(&dry)).unwrap();
    assert_eq!(dry["reactions"], serde_json::json!([]), "{dry}");

    // A new entry takes effect on SIGHUP.
    write(
        &cluster.path().join("r/new.sls"),
        "n:\n  runner.event.send:\n    - tag: test/reloaded\n",
    );
    let config = std::fs::read_to_string(cluster.etc().join("master")).unwrap();
    write(
        &cluster.etc().join("master"),
        &format!("{config}  - 'test/new': {root}/r/new.sls\n"),
    );
    let watcher = cluster.watch();
    cluster.signal_master(nix::sys::signal::Signal::SIGHUP);
    assert!(wait_until(Duration::from_secs(5), || cluster
        .master_log()
        .contains("configuration reloaded (SIGHUP)")));
    fire_lines(&cluster, &["test/new\t{}".to_owned()]);
    watcher.expect("test/reloaded", Duration::from_secs(10));
    cluster.stop_master();
}

impl Watcher {
    /// The first line whose tag starts with `prefix`, ends with `suffix` and whose data
    /// mentions `needle`.
    fn expect_matching(
        &self,
        prefix: &str,
        suffix: &str,
        timeout: Duration,
        needle: &str,
    ) -> String {
        let deadline = std::time::Instant::now() + timeout;
        while let Some(left) = deadline.checked_duration_since(std::time::Instant::now()) {
            match self.line(left) {
                Some(line) => {
                    let tag = line.split('\t').next().unwrap_or_default();
                    if tag.starts_with(prefix) && tag.ends_with(suffix) && line.contains(needle) {
                        return line;
                    }
                }
                None => break,
            }
        }
        panic!("no {prefix}…{suffix} event with {needle} within {timeout:?}");
    }
}

#[test]
fn stopping_the_master_finishes_the_reactions_it_accepted() {
    let mut cluster = master_with(
        "reactor:\n  - 'test/drain': {root}/r/drain.sls\n",
        &[(
            "r/drain.sls",
            "a_wait:\n  runner.test.sleep:\n    - s_time: 1\nb_tell:\n  runner.event.send:\n    - tag: test/drained\n",
        )],
    );
    let watcher = cluster.watch();
    fire_lines(&cluster, &["test/drain\t{}".to_owned()]);
    watcher.expect_matching(
        "salt/run/",
        "/new",
        Duration::from_secs(5),
        "runner.test.sleep",
    );
    cluster.stop_master();
    let lines = watcher.drain(Duration::from_secs(3));
    assert!(
        lines.iter().any(|line| line.starts_with("test/drained\t")),
        "{lines:#?}\n{}",
        cluster.master_log()
    );
    assert!(
        cluster
            .master_log()
            .contains("reactor: finishing 0 waiting events and 1 running")
    );
}

/// What an in-process reactor acts through when nothing should run.
struct NoBackend;

impl halite::reactor::Backend for NoBackend {
    async fn local(
        &self,
        _request: halite::proto::PublishRequest,
    ) -> Result<halite::event::Value, String> {
        Err("no master here".into())
    }

    async fn caller(&self, _call: halite::functions::Call) -> Result<halite::event::Value, String> {
        Err("no minion here".into())
    }

    async fn runner(
        &self,
        _call: &halite::functions::Call,
        _sink: &mut halite::runners::EventSink,
    ) -> Result<halite::event::Value, halite::runners::RunnerError> {
        Err(halite::runners::RunnerError::Failed(
            "no master here".into(),
        ))
    }

    async fn wheel(
        &self,
        _call: &halite::functions::Call,
        _sink: &mut halite::runners::EventSink,
    ) -> Result<halite::event::Value, halite::runners::RunnerError> {
        Err(halite::runners::RunnerError::Failed(
            "no master here".into(),
        ))
    }
}

/// The reactor re-reads its configuration every `reactor_refresh_interval`: at exactly that
/// interval, not before.
#[tokio::test(start_paused = true)]
async fn the_reactor_rereads_its_configuration_every_refresh_interval() {
    use halite::config::{Config, Role};
    use tokio::time::Instant;
    const REFRESH: Duration = Duration::from_secs(30);
    let dir = tempfile::Builder::new()
        .prefix("hr")
        .tempdir_in("/tmp")
        .unwrap();
    let root = dir.path().display().to_string();
    for name in ["a", "b"] {
        write(
            &dir.path().join(format!("r/{name}.sls")),
            &format!("{name}:\n  runner.event.send:\n    - tag: test/{name}\n"),
        );
    }
    let etc = dir.path().join("etc");
    let config_file = etc.join("master");
    write(
        &config_file,
        &format!(
            "root_dir: {root}\nsock_dir: {root}/run\nreactor_refresh_interval: {}\nreactor:\n  - 'test/a': [{root}/r/a.sls]\n",
            REFRESH.as_secs()
        ),
    );
    let config = Config::load(Role::Master, Some(&etc)).unwrap();
    // Bound, never served: the reactor only needs a handle on a bus.
    let bus = halite::bus::Bus::bind_configured(&config, halite::bus::Node::Master)
        .await
        .unwrap();
    let limits = halite::reactor::Limits::from_config(&config).unwrap();
    let reactor = halite::reactor::Reactor::new(&config, limits, bus.handle(), NoBackend);
    let listing = reactor.listing();
    let entries = || listing.to_value().as_array().map(Vec::len);
    let stop = tokio_util::sync::CancellationToken::new();
    let start = Instant::now();
    let running = tokio::spawn(reactor.run(stop.clone()));
    let text = std::fs::read_to_string(&config_file).unwrap();
    write(
        &config_file,
        &format!("{text}  - 'test/b': [{root}/r/b.sls]\n"),
    );
    // The reactor's turn comes within a few yields; the clock stands still meanwhile.
    let settle = || async {
        for _ in 0..100 {
            tokio::task::yield_now().await;
        }
    };
    tokio::time::sleep_until(start + REFRESH - Duration::from_millis(1)).await;
    settle().await;
    assert_eq!(entries(), Some(1), "not re-read before the interval");
    tokio::time::sleep_until(start + REFRESH).await;
    settle().await;
    assert_eq!(entries(), Some(2), "re-read at the interval");
    assert_eq!(Instant::now(), start + REFRESH);
    stop.cancel();
    running.await.unwrap();
}
