//! State runs against real Salt 3007.8: the same SLS tree applied with halite's
//! `salt-call --local` and Salt's, the JSON returns compared once start times, durations and
//! pids are set aside.

use std::path::Path;
use std::process::Command;

use halite::event::{Value, map_get};
use serde_json::Value as Json;

use crate::conformance::venv;
use crate::support::{Lab, RawSubscriber, bin, stderr, stdout};

/// The SLS tree: test and cmd states with every requisite, includes, extend, names, orders,
/// checks and compile errors.
const TREE: &[(&str, &str)] = &[
    (
        "top.sls",
        "base:\n  '*':\n    - other\n  'nomatch':\n    - reqs\n  'm1':\n    - pkg\n",
    ),
    ("other.sls", "other_one:\n  test.nop\n"),
    (
        "pkg/init.sls",
        "include:\n  - .sub\npkg_state:\n  test.succeed_without_changes\n",
    ),
    ("pkg/sub.sls", "sub_state:\n  test.succeed_with_changes\n"),
    (
        "reqs.sls",
        r#"changed:
  test.succeed_with_changes
unchanged:
  test.succeed_without_changes
failing:
  test.fail_without_changes
on_changes_yes:
  test.succeed_without_changes:
    - onchanges:
      - test: changed
on_changes_no:
  test.succeed_without_changes:
    - onchanges:
      - test: unchanged
on_fail_yes:
  test.succeed_without_changes:
    - onfail:
      - test: failing
on_fail_no:
  test.succeed_without_changes:
    - onfail:
      - test: unchanged
req_in_target:
  test.nop
req_in_src:
  test.nop:
    - require_in:
      - test: req_in_target
watch_in_src:
  test.succeed_with_changes:
    - watch_in:
      - test: req_in_target
any_req:
  test.nop:
    - require_any:
      - test: failing
      - test: unchanged
by_name:
  test.nop:
    - name: a name
req_by_name:
  test.nop:
    - require:
      - test: a name
req_sls:
  test.nop:
    - require:
      - sls: other
missing_req:
  test.nop:
    - require:
      - test: nothing_here
names_watch:
  test.succeed_without_changes:
    - names:
      - n1
      - n2:
        - comment: second
    - watch:
      - test: changed
will_change:
  test.succeed_with_changes
prereq_runner:
  test.succeed_with_changes:
    - prereq:
      - test: will_change
prereq_skipped:
  test.nop:
    - prereq:
      - test: unchanged
first_of_all:
  test.nop:
    - order: first
last_of_all:
  test.nop:
    - order: last
"#,
    ),
    (
        "cmds.sls",
        r#"include:
  - other
extend:
  other_one:
    test:
      - name: renamed
      - require:
        - cmd: ran
ran:
  cmd.run:
    - name: echo out; echo err >&2
    - cwd: /tmp
skipped_unless:
  cmd.run:
    - name: echo never
    - unless: "true"
run_onlyif:
  cmd.run:
    - name: echo $FOO; exit 3
    - onlyif: "true"
    - env:
      - FOO: bar
skipped_creates:
  cmd.run:
    - name: echo never
    - creates: /
waited:
  cmd.wait:
    - name: echo waited
    - watch:
      - cmd: ran
not_waited:
  cmd.wait:
    - name: echo never
    - watch:
      - cmd: skipped_unless
scripted:
  cmd.script:
    - name: s.sh one
    - source: salt://s.sh
badcwd:
  cmd.run:
    - name: echo x
    - cwd: /nonexistent
"#,
    ),
    ("s.sh", "#!/bin/sh\necho \"script $1\"\n"),
    (
        "jinja.sls",
        "{% set out = salt['cmd.run']('echo rendered') %}\nid_{{ grains['id'] }}:\n  test.succeed_without_changes:\n    - comment: \"{{ out }} {{ sls }} {{ saltenv }} {{ tpldir }} {{ opts['id'] }}\"\nshort: test.nop\n",
    ),
    (
        "errors.sls",
        "notdict: just a string\nnotlist:\n  test.nop: {a: b}\ntrailing:\n  test.nop:\n",
    ),
    (
        "listen.sls",
        "changed:\n  test.succeed_with_changes\nlistener:\n  test.succeed_without_changes:\n    - listen:\n      - test: changed\nrunner:\n  cmd.run:\n    - name: echo listened\n    - listen:\n      - changed\ninner:\n  test.succeed_with_changes:\n    - listen_in:\n      - cmd: waiter\n      - test: nobody\nwaiter:\n  cmd.wait:\n    - name: echo two\nghost:\n  test.nop:\n    - listen:\n      - test: nothere\n",
    ),
    (
        "retry.sls",
        "checked:\n  test.succeed_with_changes:\n    - check_cmd:\n      - \"true\"\n      - \"false\"\nagain:\n  test.fail_without_changes:\n    - retry:\n        attempts: 3\n        interval: 0\nonce:\n  test.succeed_without_changes:\n    - retry: True\nafter:\n  test.nop\n",
    ),
    (
        "event.sls",
        "my/tag:\n  event.send:\n    - data:\n        a: 1\n",
    ),
    (
        "loop.sls",
        "la:\n  test.nop:\n    - require:\n      - test: lb\nlb:\n  test.nop:\n    - require:\n      - test: la\n",
    ),
];

/// A `--local` minion configuration over a file tree under `dir`.
fn lab(dir: &Path) {
    let roots = dir.join("srv");
    for (path, text) in TREE {
        let file = roots.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, text).unwrap();
    }
    let d = dir.display();
    std::fs::write(
        dir.join("minion"),
        format!(
            "id: m1\nfile_client: local\nroot_dir: {d}/root\ncachedir: {d}/root/cache\npki_dir: {d}/root/pki\nsock_dir: {d}/root/sock\nlog_file: {d}/root/log\nfile_roots:\n  base: [{d}/srv]\npillar_roots:\n  base: [{d}/pillar]\n"
        ),
    )
    .unwrap();
}

/// Start times, durations and pids differ from run to run.
pub(crate) fn normalised(value: Json) -> Json {
    match value {
        Json::Object(entries) => Json::Object(
            entries
                .into_iter()
                .map(|(key, value)| match key.as_str() {
                    "start_time" | "duration" | "pid" => (key, Json::from("*")),
                    _ => (key, normalised(value)),
                })
                .collect(),
        ),
        Json::Array(items) => Json::Array(items.into_iter().map(normalised).collect()),
        other => other,
    }
}

pub(crate) fn call(program: &Path, dir: &Path, args: &[&str]) -> (Option<i32>, Json) {
    let output = Command::new(program)
        .args(["--local", "-c"])
        .arg(dir)
        .args(["--out", "json"])
        .args(args)
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let json = serde_json::from_str(&stdout).unwrap_or_else(|err| {
        panic!(
            "{program:?} {args:?} printed no JSON ({err}): {stdout}{}",
            String::from_utf8_lossy(&output.stderr)
        )
    });
    (output.status.code(), normalised(json))
}

/// Where `ours` differs from `theirs`, one line per state (or the whole returns).
pub(crate) fn differences(ours: &Json, theirs: &Json) -> Vec<String> {
    let (Some(ours), Some(theirs)) = (ours["local"].as_object(), theirs["local"].as_object())
    else {
        return if ours == theirs {
            Vec::new()
        } else {
            vec![format!("halite {ours}\nsalt   {theirs}")]
        };
    };
    let mut tags: Vec<&String> = ours.keys().chain(theirs.keys()).collect();
    tags.sort();
    tags.dedup();
    tags.into_iter()
        .filter(|tag| ours.get(*tag) != theirs.get(*tag))
        .map(|tag| {
            format!(
                "{tag}:\n  halite {}\n  salt   {}",
                ours.get(tag).map_or("-".to_owned(), Json::to_string),
                theirs.get(tag).map_or("-".to_owned(), Json::to_string)
            )
        })
        .collect()
}

#[test]
fn state_runs_return_what_salt_3007_8_returns() {
    let salt_call = venv("3007.8").join("bin/salt-call");
    let dir = tempfile::tempdir().unwrap();
    lab(dir.path());
    for args in [
        &["state.apply", "reqs,cmds,jinja,event"][..],
        &["state.apply", "reqs,cmds,event", "test=True"],
        &["state.apply", "other,nope", "saltenv=dev"],
        &["state.apply", "listen,retry"],
        &["state.apply", "retry", "test=True"],
        &["state.apply"],
        &["state.apply", "errors"],
        &["state.apply", "loop"],
        &["state.apply", "nosuch"],
        &["state.show_sls", "cmds"],
        &["state.single", "test.succeed_with_changes", "one"],
    ] {
        let salt = call(&salt_call, dir.path(), args);
        let halite = call(&bin("salt-call"), dir.path(), args);
        assert_eq!(halite.0, salt.0, "{args:?}: exit status");
        assert_eq!(
            differences(&halite.1, &salt.1),
            Vec::<String>::new(),
            "{args:?}: halite's return differs from Salt's"
        );
    }
}

/// A state job on a minion daemon: its return names the `highstate` outputter, as Salt's
/// minion names it for the `state` functions that run states.
#[test]
fn a_minion_names_the_highstate_outputter_in_state_returns() {
    let mut lab = Lab::new();
    lab.start_master();
    lab.start_minion();
    let mut subscriber = RawSubscriber::connect(&lab.master_pub());
    let output = lab.run(
        "salt",
        &[
            "minion1",
            "state.single",
            "test.succeed_with_changes",
            "x",
            "--out",
            "json",
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
    while std::time::Instant::now() < deadline {
        let Some(event) = subscriber.next_event(std::time::Duration::from_secs(1)) else {
            continue;
        };
        if event.tag.starts_with("salt/job/") && event.tag.ends_with("/ret/minion1") {
            assert_eq!(event.get("out").and_then(Value::as_str), Some("highstate"));
            let ret = event.get("return").unwrap();
            let state = map_get(ret, "test_|-x_|-x_|-succeed_with_changes").unwrap();
            assert_eq!(map_get(state, "result"), Some(&Value::Boolean(true)));
            return;
        }
    }
    panic!("no return: {}", stdout(&output));
}
