//! The seed documents' state scenarios with real daemons: a new minion configured by a reaction
//! to its start, a highstate run by a reaction with a pillar value in a template, a changed file
//! restored by a reaction to the minion's own event, state progress and `fire_event` events in
//! Salt's shapes, bad input answered in Salt's error shapes, and one state run at a time.

use std::path::Path;
use std::process::Output;
use std::time::{Duration, Instant};

use serde_json::{Value as Json, json};

use crate::support::{Cluster, stderr, stdout, wait_until};

fn write(path: &Path, text: &str) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, text).unwrap();
}

/// The data of a `state.event` line.
fn data(line: &str) -> Json {
    let json = line.split_once('\t').expect("tag<TAB>json").1;
    serde_json::from_str(json).expect("json data")
}

/// A master with `{root}/srv` as its file roots, `{root}/pillar` as its pillar roots and
/// `extra` config (`{root}` replaced), the files written first (paths under the cluster).
fn master_with(extra: &str, files: &[(&str, &str)]) -> Cluster {
    let mut cluster = Cluster::new("auto_accept: True\n");
    let root = cluster.path().display().to_string();
    for (name, text) in files {
        write(&cluster.path().join(name), &text.replace("{root}", &root));
    }
    let config = std::fs::read_to_string(cluster.etc().join("master")).unwrap();
    let roots =
        "file_roots:\n  base:\n    - {root}/srv\npillar_roots:\n  base:\n    - {root}/pillar\n";
    write(
        &cluster.etc().join("master"),
        &format!("{config}{roots}{extra}").replace("{root}", &root),
    );
    cluster.start_master();
    cluster
}

/// Polls until `path` holds `text`.
fn wait_for_text(path: &Path, text: &str, timeout: Duration) -> bool {
    wait_until(timeout, || {
        std::fs::read_to_string(path).is_ok_and(|found| found == text)
    })
}

/// `salt <args> --out=json`'s stdout parsed, with the output for the failure message.
fn salt_json(cluster: &Cluster, args: &[&str]) -> (Json, Output) {
    let mut all = args.to_vec();
    all.extend(["--out=json", "-t", "30"]);
    let output = cluster.run("salt", &all);
    let parsed = serde_json::from_str(&stdout(&output)).unwrap_or_else(|_| {
        panic!(
            "salt {args:?}: {}\n{}\nmaster log:\n{}",
            stdout(&output),
            stderr(&output),
            cluster.master_log()
        )
    });
    (parsed, output)
}

/// The seed's auto.sls, writing to a file of the lab rather than /tmp/cpis.
const AUTO_SLS: &str = "run_state:
  local.state.sls:
    - tgt: {{ data['id'] }}
    - arg:
      - test
run_init:
  local.cmd.run:
    - tgt: {{ data['id'] }}
    - arg:
      - echo initsok >> {root}/cpis
    - kwarg:
        python_shell: True
";

#[test]
fn a_new_minion_is_configured_by_the_reaction_to_its_start() {
    let mut cluster = master_with(
        "reactor:\n  - 'salt/minion/*/start':\n    - {root}/reactor/auto.sls\n",
        &[
            ("reactor/auto.sls", AUTO_SLS),
            (
                "srv/test.sls",
                "{root}/example:\n  file.managed:\n    - source: salt://example\n",
            ),
            ("srv/example", "from the master\n"),
        ],
    );
    let watcher = cluster.watch();
    cluster.start_minion("min1", "");
    let example = cluster.path().join("example");
    assert!(
        wait_for_text(&example, "from the master\n", Duration::from_secs(30)),
        "the start reaction did not manage {}; master log:\n{}\nminion log:\n{}",
        example.display(),
        cluster.master_log(),
        cluster.minion_log("min1")
    );
    assert!(wait_for_text(
        &cluster.path().join("cpis"),
        "initsok\n",
        Duration::from_secs(10)
    ));

    // The job cache holds the state run's return, which prints as a highstate.
    let new = loop {
        let line = watcher.expect_prefix("salt/job/", Duration::from_secs(10));
        if line.split('\t').next().unwrap().ends_with("/new") && data(&line)["fun"] == "state.sls" {
            break data(&line);
        }
    };
    assert_eq!(new["tgt"], "min1", "{new}");
    let jid = new["jid"].as_str().unwrap().to_owned();
    let ret_tag = format!("salt/job/{jid}/ret/min1");
    watcher.expect(&ret_tag, Duration::from_secs(30));
    let looked_up = cluster.run("salt-run", &["jobs.lookup_jid", &jid]);
    assert!(looked_up.status.success(), "{}", stderr(&looked_up));
    let text = normalised_text(&stdout(&looked_up));
    let path = example.display().to_string();
    let expected = format!(
        "min1:
----------
          ID: {path}
    Function: file.managed
      Result: True
     Comment: File {path} updated
     Started: *
    Duration: *
     Changes:   
              ----------
              diff:
                  New file
              mode:
                  0644

Summary for min1
------------
Succeeded: 1 (changed=1)
Failed:    0
------------
Total states run:     1
Total run time: *
"
    );
    assert_eq!(text, expected, "jobs.lookup_jid printed:\n{text}");
    // --out still picks the outputter, and the data is the returns alone.
    let looked_up = cluster.run("salt-run", &["jobs.lookup_jid", &jid, "--out=json"]);
    let parsed: Json = serde_json::from_str(&stdout(&looked_up)).unwrap();
    let state = &parsed["min1"][format!("file_|-{path}_|-{path}_|-managed")];
    assert_eq!(state["result"], true, "{parsed}");
}

/// Start times and durations differ from run to run.
fn normalised_text(text: &str) -> String {
    let started = regex::Regex::new(r"(?m)^( +Started: ).*$").unwrap();
    let duration = regex::Regex::new(r"(?m)^( +Duration: ).*$").unwrap();
    // The time is right-aligned: its padding varies with its width.
    let total = regex::Regex::new(r"(?m)^(Total run time:) +.*$").unwrap();
    let text = started.replace_all(text, "${1}*");
    let text = duration.replace_all(&text, "${1}*");
    total.replace_all(&text, "${1} *").into_owned()
}

#[test]
fn a_reaction_runs_a_highstate_that_writes_a_pillar_value() {
    let mut cluster = master_with(
        "reactor:\n  - 'myco/highstate':\n    - {root}/reactor/highstate.sls\n",
        &[
            (
                "reactor/highstate.sls",
                "apply:\n  local.state.highstate:\n    - tgt: {{ data['target'] }}\n",
            ),
            (
                "srv/top.sls",
                "base:\n  'web* and G@id:web1':\n    - match: compound\n    - motd\n  'db*':\n    - other\n",
            ),
            (
                "srv/motd.sls",
                "{root}/motd-{{ grains['id'] }}:\n  file.managed:\n    - contents: {{ pillar['motd'] }}\n",
            ),
            ("srv/other.sls", "never:\n  test.fail_without_changes\n"),
            ("pillar/top.sls", "base:\n  '*':\n    - common\n"),
            ("pillar/common.sls", "motd: Welcome to {{ grains['id'] }}\n"),
        ],
    );
    cluster.start_minion("web1", "");
    cluster.wait_connected(&["web1"]);
    let sent = cluster.run(
        "salt-run",
        &["event.send", "myco/highstate", "{target: web1}"],
    );
    assert!(sent.status.success(), "{}", stderr(&sent));
    let motd = cluster.path().join("motd-web1");
    assert!(
        wait_for_text(&motd, "Welcome to web1\n", Duration::from_secs(30)),
        "the highstate did not write {}; master log:\n{}\nminion log:\n{}",
        motd.display(),
        cluster.master_log(),
        cluster.minion_log("web1")
    );
}

#[test]
fn a_changed_file_is_restored_by_the_reaction_to_the_minions_event() {
    let mut cluster = master_with(
        "reactor:\n  - 'myco/file/changed':\n    - {root}/reactor/restore.sls\n",
        &[
            (
                "reactor/restore.sls",
                "restore:\n  local.state.sls:\n    - tgt: {{ data['id'] }}\n    - arg:\n      - restore\n",
            ),
            (
                "srv/restore.sls",
                "{root}/app.conf:\n  file.managed:\n    - source: salt://app.conf\n",
            ),
            ("srv/app.conf", "setting = right\n"),
        ],
    );
    cluster.start_minion("app1", "");
    cluster.wait_connected(&["app1"]);
    let conf = cluster.path().join("app.conf");
    let (applied, _) = salt_json(&cluster, &["app1", "state.sls", "restore"]);
    assert!(applied["app1"].is_object(), "{applied}");
    assert_eq!(std::fs::read_to_string(&conf).unwrap(), "setting = right\n");
    let mut times = Vec::new();
    for _ in 0..3 {
        std::fs::write(&conf, "setting = wrong\n").unwrap();
        let fired = Instant::now();
        let sent = cluster.call("app1", &["event.send", "myco/file/changed"]);
        assert!(sent.status.success(), "{}", stderr(&sent));
        assert!(
            wait_for_text(&conf, "setting = right\n", Duration::from_secs(20)),
            "not restored; master log:\n{}",
            cluster.master_log()
        );
        times.push(fired.elapsed());
    }
    println!("restored after {times:?} (salt-call's own start included)");
    let best = times.iter().min().unwrap();
    assert!(*best < Duration::from_secs(1), "restored after {times:?}");
}

/// The golden's three test states.
const TESTSTATE: &str = "ok_state:\n  test.succeed_without_changes:\n    - name: one\nchanged_state:\n  test.succeed_with_changes:\n    - name: two\nfailing_state:\n  test.fail_without_changes:\n    - name: three\n";

/// A golden bus line with times, stamps and the jid replaced.
fn normalised_line(line: &str, jid: &str) -> String {
    let patterns = [
        (r#""_stamp": "[^"]*""#, r#""_stamp": "*""#),
        (r#""start_time": "[^"]*""#, r#""start_time": "*""#),
        (r#""duration": [0-9.]+"#, r#""duration": "*""#),
        (r#""ts": [0-9]+"#, r#""ts": "*""#),
        (r#""user": "[^"]*""#, r#""user": "*""#),
    ];
    let mut line = line.replace(jid, "JID");
    for (pattern, with) in patterns {
        line = regex::Regex::new(pattern)
            .unwrap()
            .replace_all(&line, with)
            .into_owned();
    }
    line
}

#[test]
fn state_events_and_failed_state_events_have_salts_shapes() {
    let golden =
        std::fs::read_to_string(Path::new("../shared/golden/13_state_events_prog.txt")).unwrap();
    let mut cluster = master_with("", &[("srv/teststate.sls", TESTSTATE)]);
    cluster.start_minion("minion2", "state_events: True\n");
    cluster.wait_connected(&["minion2"]);
    let watcher = cluster.watch();
    let output = cluster.run("salt", &["minion2", "state.sls", "teststate", "-t", "30"]);

    // What salt prints, and its exit status.
    let printed = golden
        .split_once("\n\n")
        .unwrap()
        .1
        .split_once("ERROR: Minions")
        .unwrap()
        .0;
    assert_eq!(
        normalised_text(&stdout(&output)),
        normalised_text(printed),
        "{}",
        stderr(&output)
    );
    assert!(
        stderr(&output).contains("ERROR: Minions returned with non-zero exit code"),
        "{}",
        stderr(&output)
    );
    assert_eq!(output.status.code(), Some(1));

    // The bus: the golden's lines, in its order, times and the jid set aside.
    let bus: Vec<&str> = golden
        .split_once("# bus:\n")
        .unwrap()
        .1
        .split_once("\n\n# pretty:")
        .unwrap()
        .0
        .lines()
        .collect();
    let golden_jid = "20261124084003991394";
    let new = watcher.expect_prefix("salt/job/", Duration::from_secs(10));
    let jid = new.split('/').nth(2).unwrap().to_owned();
    let mut lines = vec![new];
    let mut failed = None;
    let last = format!("salt/job/{jid}/sub/minion2/error/state.sls");
    loop {
        let line = watcher.expect_prefix("", Duration::from_secs(10));
        let tag = line.split('\t').next().unwrap().to_owned();
        if tag == "test.fail_without_changes" {
            failed = Some(data(&line));
        } else if tag.starts_with(&format!("salt/job/{jid}/")) {
            lines.push(line);
        }
        if tag == last {
            break;
        }
    }
    let ours: Vec<String> = lines.iter().map(|l| normalised_line(l, &jid)).collect();
    let theirs: Vec<String> = bus.iter().map(|l| normalised_line(l, golden_jid)).collect();
    assert_eq!(ours, theirs);

    // The failed state's own event, under its function's name, before the job's.
    let failed = failed.expect("a test.fail_without_changes event");
    assert_eq!(failed["__id__"], "failing_state", "{failed}");
    assert_eq!(failed["retcode"], 2, "{failed}");
}

/// `salt-run state.event`'s next line whose tag starts with `prefix`.
trait ExpectPrefix {
    fn expect_prefix(&self, prefix: &str, timeout: Duration) -> String;
}

impl ExpectPrefix for crate::support::Watcher {
    fn expect_prefix(&self, prefix: &str, timeout: Duration) -> String {
        let deadline = Instant::now() + timeout;
        while let Some(left) = deadline.checked_duration_since(Instant::now()) {
            match self.line(left) {
                Some(line) if line.starts_with(prefix) => return line,
                Some(_) => continue,
                None => break,
            }
        }
        panic!("no event {prefix}* within {timeout:?}");
    }
}

#[test]
fn fire_event_states_fire_state_result_events_on_the_master() {
    let mut cluster = master_with(
        "",
        &[(
            "srv/fired.sls",
            "nano installed:\n  test.succeed_with_changes:\n    - name: nano\n    - fire_event: True\nquiet:\n  test.nop\ncustom:\n  test.succeed_without_changes:\n    - fire_event: nano/installed\n",
        )],
    );
    cluster.start_minion("m1", "");
    cluster.wait_connected(&["m1"]);
    let watcher = cluster.watch();
    let (ret, output) = salt_json(&cluster, &["m1", "state.sls", "fired"]);
    assert!(output.status.success(), "{ret}");
    let jid_line = watcher.expect_prefix("salt/job/", Duration::from_secs(10));
    let jid = jid_line.split('/').nth(2).unwrap().to_owned();
    let named = watcher.expect(
        &format!("salt/state_result/{jid}/m1/nano"),
        Duration::from_secs(10),
    );
    let named = data(&named);
    assert_eq!(named["id"], "m1", "{named}");
    assert_eq!(named["data"]["ret"]["__id__"], "nano installed", "{named}");
    assert_eq!(named["data"]["ret"]["result"], true, "{named}");
    let custom = watcher.expect(
        &format!("salt/state_result/{jid}/m1/nano/installed"),
        Duration::from_secs(10),
    );
    assert_eq!(data(&custom)["data"]["ret"]["__id__"], "custom", "{custom}");
    // Without state_events, no progress events.
    let rest = watcher.drain(Duration::from_millis(500));
    assert!(rest.iter().all(|line| !line.contains("/prog/")), "{rest:?}");
}

#[test]
fn bad_state_input_gets_salts_errors_and_the_minion_keeps_serving() {
    let mut cluster = master_with(
        "",
        &[
            ("srv/unknown.sls", "x:\n  test.nope:\n    - name: y\n"),
            (
                "srv/badyaml.sls",
                "x:\n  test.nop:\n    - name: [unclosed\n",
            ),
            (
                "srv/escape.sls",
                "{root}/stolen:\n  file.managed:\n    - source: salt://../../etc/shadow\n",
            ),
        ],
    );
    cluster.start_minion("m1", "");
    cluster.wait_connected(&["m1"]);
    let (ret, output) = salt_json(&cluster, &["m1", "state.sls", "unknown"]);
    assert_eq!(
        ret,
        json!({"m1": {"test_|-x_|-y_|-nope": {
            "result": false,
            "name": "y",
            "changes": {},
            "comment": "State 'test.nope' was not found in SLS 'unknown'\nReason: 'test.nope' is not available.\n",
            "__run_num__": 0
        }}})
    );
    assert_eq!(output.status.code(), Some(1), "{ret}");
    let (ret, output) = salt_json(&cluster, &["m1", "state.sls", "badyaml"]);
    let errors = ret["m1"].as_array().unwrap_or_else(|| panic!("{ret}"));
    assert_eq!(errors.len(), 1, "{ret}");
    assert!(
        errors[0]
            .as_str()
            .unwrap()
            .starts_with("Rendering SLS 'base:badyaml' failed: "),
        "{ret}"
    );
    assert_eq!(output.status.code(), Some(1), "{ret}");
    let (ret, output) = salt_json(&cluster, &["m1", "state.sls", "escape"]);
    let stolen = cluster.path().join("stolen").display().to_string();
    let state = &ret["m1"][format!("file_|-{stolen}_|-{stolen}_|-managed")];
    assert_eq!(state["result"], false, "{ret}");
    assert!(
        state["comment"]
            .as_str()
            .is_some_and(|c| c.contains("salt://../../etc/shadow")),
        "{ret}"
    );
    assert_eq!(output.status.code(), Some(1), "{ret}");
    assert!(!cluster.path().join("stolen").exists());
    let (pong, _) = salt_json(&cluster, &["m1", "test.ping"]);
    assert_eq!(pong, json!({"m1": true}));
}

#[test]
fn a_second_state_run_is_refused_while_one_runs() {
    let mut cluster = master_with(
        "",
        &[
            ("srv/slow.sls", "wait:\n  cmd.run:\n    - name: sleep 8\n"),
            ("srv/quick.sls", "quick:\n  test.nop\n"),
        ],
    );
    cluster.start_minion("m1", "");
    cluster.wait_connected(&["m1"]);
    let slow = cluster
        .cmd("salt")
        .args(["m1", "state.sls", "slow", "--out=json", "-t", "30"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    // The slow run has started once the minion lists it (long enough to be seen on a busy
    // machine).
    let seen = wait_until(Duration::from_secs(10), || {
        let (running, _) = salt_json(&cluster, &["m1", "state.running"]);
        running["m1"].as_array().is_some_and(|r| !r.is_empty())
    });
    if !seen {
        let slow = slow.wait_with_output().unwrap();
        panic!(
            "the slow run was never listed; it returned {}{}\nminion log:\n{}",
            stdout(&slow),
            stderr(&slow),
            cluster.minion_log("m1")
        );
    }
    let (ret, output) = salt_json(&cluster, &["m1", "state.sls", "quick"]);
    let refusal = ret["m1"][0].as_str().unwrap_or_else(|| panic!("{ret}"));
    assert!(
        regex::Regex::new(
            r#"^The function "state.sls" is running as PID \d+ and was started at \d{4}, \w{3} \d\d \d\d:\d\d:\d\d\.\d{6} with jid \d{20}$"#
        )
        .unwrap()
        .is_match(refusal),
        "{ret}"
    );
    assert_eq!(output.status.code(), Some(1), "{ret}");
    let slow = slow.wait_with_output().unwrap();
    let slow: Json = serde_json::from_str(&stdout(&slow)).unwrap();
    assert_eq!(
        slow["m1"]["cmd_|-wait_|-sleep 8_|-run"]["result"], true,
        "{slow}"
    );
}
