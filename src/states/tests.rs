//! The compiler and the runtime on small SLS trees, with execution functions faked: what
//! Salt 3007.8 returns for each (checked against it when these cases were written).

use std::sync::{Arc, Mutex};

use super::apply::{self, Errors};
use super::{Calling, Executed, ExecutionError, RunOptions, Salt, StateContext};
use crate::config::{Config, Role};
use crate::event::{Value, map_get};
use crate::fileserver::{Cache, LocalFiles, Roots};
use crate::salt_yaml::CliArgs;

/// Execution functions for tests: `cmd.retcode` is 0 for `true` only, `cmd.run_all` echoes
/// the command, `event.fire_master` records what it is given.
#[derive(Default)]
struct Fake {
    fired: Mutex<Vec<(String, Value)>>,
}

impl Salt for Fake {
    fn call<'a>(&'a self, fun: &'a str, args: CliArgs) -> Calling<'a> {
        Box::pin(async move {
            let kwarg = |key: &str| {
                args.kwargs
                    .iter()
                    .find(|(k, _)| k == key)
                    .map(|(_, v)| v.clone())
            };
            let first = args.args.first().cloned().or_else(|| kwarg("cmd"));
            let ret = match fun {
                "cmd.retcode" => Value::from(i64::from(first != Some(Value::from("true")))),
                "cmd.run_all" => Value::Map(vec![
                    (Value::from("pid"), Value::from(1)),
                    (Value::from("retcode"), Value::from(0)),
                    (Value::from("stdout"), first.unwrap_or(Value::Nil)),
                    (Value::from("stderr"), Value::from("")),
                ]),
                "event.fire_master" => {
                    let tag = crate::py::value::py_str(&args.args[1]).into_owned();
                    self.fired.lock().unwrap().push((tag, args.args[0].clone()));
                    Value::Boolean(true)
                }
                "test.echo" => first.unwrap_or(Value::Nil),
                other => return Err(ExecutionError(format!("'{other}' is not available."))),
            };
            Ok(Executed { ret, retcode: 0 })
        })
    }
}

struct Tree {
    _dir: tempfile::TempDir,
    ctx: StateContext,
    fake: Arc<Fake>,
}

fn tree(files: &[(&str, &str)]) -> Tree {
    let dir = tempfile::tempdir().unwrap();
    let roots = dir.path().join("srv");
    for (path, text) in files {
        let file = roots.join(path);
        std::fs::create_dir_all(file.parent().unwrap()).unwrap();
        std::fs::write(file, text).unwrap();
    }
    let mut config = Config::load(Role::Minion, Some(&dir.path().join("etc"))).unwrap();
    config.set("id", "m1");
    let source = LocalFiles::new(Roots::new(vec![("base".into(), vec![roots])]), "sha256");
    let fake = Arc::new(Fake::default());
    let ctx = StateContext {
        renderer: Arc::new(crate::render::Renderer::new(&config)),
        config,
        grains: Value::Map(vec![(Value::from("id"), Value::from("m1"))]),
        pillar: Value::Map(Vec::new()),
        files: Some(Cache::new(Arc::new(source), &dir.path().join("cache"))),
        salt: fake.clone(),
        jid: "20261203000000000000".to_owned(),
    };
    Tree {
        _dir: dir,
        ctx,
        fake,
    }
}

fn run(tree: &Tree, mods: &str, options: RunOptions) -> Result<Value, Errors> {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    runtime.block_on(apply::sls(
        &tree.ctx,
        &[mods.to_owned()],
        "base",
        Vec::new(),
        &options,
    ))
}

/// The results by ID (and name, when it differs), in `__run_num__` order, each as
/// `(result, comment)`.
fn outline(results: &Value) -> Vec<(String, Value, String)> {
    let mut states: Vec<&Value> = results.as_map().unwrap().iter().map(|(_, r)| r).collect();
    states.sort_by_key(|r| map_get(r, "__run_num__").and_then(Value::as_i64));
    states
        .into_iter()
        .map(|r| {
            let field = |key| {
                map_get(r, key)
                    .map(|v| crate::py::value::py_str(v).into_owned())
                    .unwrap_or_default()
            };
            let (id, name) = (field("__id__"), field("name"));
            let label = if id == name || id.is_empty() {
                name
            } else {
                format!("{id}/{name}")
            };
            (
                label,
                map_get(r, "result").cloned().unwrap_or(Value::Nil),
                field("comment"),
            )
        })
        .collect()
}

fn ok(label: &str, comment: &str) -> (String, Value, String) {
    (label.to_owned(), Value::Boolean(true), comment.to_owned())
}

fn failed(label: &str, comment: &str) -> (String, Value, String) {
    (label.to_owned(), Value::Boolean(false), comment.to_owned())
}

#[test]
fn includes_run_first_then_definition_order_with_first_last_and_names() {
    let tree = tree(&[
        (
            "app/init.sls",
            "include:\n  - .db\nlast_one:\n  test.nop:\n    - order: last\napp:\n  test.succeed_without_changes:\n    - names:\n      - b\n      - a:\n        - comment: named\nfirst_one:\n  test.nop:\n    - order: first\n",
        ),
        ("app/db.sls", "db: test.nop\n"),
    ]);
    let results = run(&tree, "app", RunOptions::default()).unwrap();
    assert_eq!(
        outline(&results),
        [
            ok("first_one", "Success!"),
            ok("db", "Success!"),
            ok("app/b", "Success!"),
            ok("app/a", "named"),
            ok("last_one", "Success!"),
        ]
    );
}

#[test]
fn extend_merges_arguments_and_requisites_into_included_states() {
    let tree = tree(&[
        (
            "base.sls",
            "svc:\n  test.succeed_without_changes:\n    - comment: plain\n",
        ),
        (
            "over.sls",
            "include:\n  - base\nextend:\n  svc:\n    test:\n      - comment: extended\n      - require:\n        - test: dep\ndep:\n  test.fail_without_changes\n",
        ),
    ]);
    let results = run(&tree, "over", RunOptions::default()).unwrap();
    assert_eq!(
        outline(&results),
        [
            failed("dep", "Failure!"),
            failed("svc", "One or more requisite failed: over.dep"),
        ]
    );
}

#[test]
fn compile_errors_are_salts_messages() {
    let tree = tree(&[
        ("bad.sls", "notdict: just a string\nfine: test.nop\n"),
        (
            "unverified.sls",
            "notlist:\n  test.nop: {a: b}\ntrailing:\n  test.nop:\n",
        ),
        ("jinja.sls", "x:\n  test.nop:\n    - name: {{ nothere }}\n"),
        ("dup.sls", "include:\n  - one\nsame: test.nop\n"),
        ("one.sls", "same: test.fail_without_changes\n"),
    ]);
    assert_eq!(
        run(&tree, "bad", RunOptions::default()).unwrap_err(),
        ["ID notdict in SLS bad is not a dictionary"]
    );
    // Structure is verified once every file rendered.
    assert_eq!(
        run(&tree, "unverified", RunOptions::default()).unwrap_err(),
        [
            "State 'notlist' in SLS 'unverified' is not formed as a list",
            "ID 'trailing' in SLS 'unverified' contains a short declaration (test.nop) with a trailing colon. When not passing any arguments to a state, the colon must be omitted.",
        ]
    );
    assert_eq!(
        run(&tree, "nosuch", RunOptions::default()).unwrap_err(),
        ["No matching sls found for 'nosuch' in env 'base'"]
    );
    assert_eq!(
        run(&tree, "jinja", RunOptions::default()).unwrap_err(),
        [
            "Rendering SLS 'base:jinja' failed: Jinja variable 'nothere' is undefined; line 3\n\n---\nx:\n  test.nop:\n    - name: {{ nothere }}    <======================\n---"
        ]
    );
    let conflict = run(&tree, "dup", RunOptions::default()).unwrap_err();
    assert!(
        conflict[0].starts_with("Detected conflicting IDs, SLS IDs need to be globally unique."),
        "{conflict:?}"
    );
}

#[test]
fn missing_and_recursive_requisites() {
    let tree = tree(&[
        (
            "missing.sls",
            "a:\n  test.nop:\n    - require:\n      - test: ghost\n",
        ),
        (
            "direct.sls",
            "a:\n  test.nop:\n    - require:\n      - test: a\n",
        ),
        (
            "cycle.sls",
            "a:\n  test.nop:\n    - require:\n      - test: b\nb:\n  test.nop:\n    - require:\n      - test: c\nc:\n  test.nop:\n    - require:\n      - test: a\n",
        ),
    ]);
    assert_eq!(
        outline(&run(&tree, "missing", RunOptions::default()).unwrap()),
        [failed(
            "a",
            "The following requisites were not found:\n                   require:\n                       test: ghost\n"
        )]
    );
    assert_eq!(
        run(&tree, "direct", RunOptions::default()).unwrap_err(),
        ["A recursive requisite was found, SLS \"direct\" ID \"a\" ID \"a\""]
    );
    let results = run(&tree, "cycle", RunOptions::default()).unwrap();
    assert!(
        outline(&results)
            .iter()
            .any(|(_, _, comment)| comment == "Recursive requisite found"),
        "{results}"
    );
}

#[test]
fn watch_onchanges_onfail_prereq_and_in_forms() {
    let tree = tree(&[(
        "reqs.sls",
        "changed:\n  test.succeed_with_changes\nfailing:\n  test.fail_without_changes\nwatcher:\n  test.succeed_without_changes:\n    - watch:\n      - test: changed\noc:\n  test.nop:\n    - onchanges:\n      - test: failing\nof:\n  test.nop:\n    - onfail:\n      - test: failing\nof_not:\n  test.nop:\n    - onfail:\n      - test: changed\ntarget:\n  test.nop\nsource:\n  test.succeed_with_changes:\n    - onchanges_in:\n      - test: target\npre_src:\n  test.nop:\n    - prereq:\n      - test: changed2\nchanged2:\n  test.succeed_with_changes\n",
    )]);
    let results = run(&tree, "reqs", RunOptions::default()).unwrap();
    assert_eq!(
        outline(&results),
        [
            ok("changed", "Success!"),
            failed("failing", "Failure!"),
            ok("watcher", "Watch statement fired."),
            failed("oc", "One or more requisite failed: reqs.failing"),
            ok("of", "Success!"),
            ok(
                "of_not",
                "State was not run because onfail req did not change"
            ),
            ok("source", "Success!"),
            ok("target", "Success!"),
            ok("pre_src", "Success!"),
            ok("changed2", "Success!"),
        ]
    );
    let watcher = map_get(
        &results,
        "test_|-watcher_|-watcher_|-succeed_without_changes",
    )
    .unwrap();
    assert_eq!(
        map_get(watcher, "changes").unwrap().to_string(),
        r#"{"Requisites with changes": ["test: changed"]}"#
    );
    // The first call of a watcher that saw changes takes a run number of its own.
    assert_eq!(map_get(watcher, "__run_num__"), Some(&Value::from(3)));
}

#[test]
fn test_mode_reports_what_would_change_and_prereq_stays_quiet_without_changes() {
    let tree = tree(&[(
        "t.sls",
        "c:\n  test.succeed_with_changes\nf:\n  test.fail_without_changes\nquiet:\n  test.succeed_without_changes\npre:\n  test.nop:\n    - prereq:\n      - test: quiet\nrun:\n  cmd.run:\n    - name: echo x\n",
    )]);
    let test = RunOptions {
        test: true,
        ..RunOptions::default()
    };
    assert_eq!(
        outline(&run(&tree, "t", test).unwrap()),
        [
            (
                "c".to_owned(),
                Value::Nil,
                "If we weren't testing, this would be successful with changes".to_owned()
            ),
            failed("f", "If we weren't testing, this would be a failure!"),
            ok("pre", "No changes detected"),
            ok("quiet", "Success!"),
            (
                "run/echo x".to_owned(),
                Value::Nil,
                "Command \"echo x\" would have been executed".to_owned()
            ),
        ]
    );
}

#[test]
fn unless_onlyif_and_creates_decide_before_the_state_runs() {
    let tree = tree(&[(
        "checks.sls",
        "skipped:\n  cmd.run:\n    - name: a\n    - unless: \"true\"\nran:\n  cmd.run:\n    - name: b\n    - onlyif: \"true\"\nnot_only:\n  cmd.run:\n    - name: c\n    - onlyif: \"false\"\nboth:\n  cmd.run:\n    - name: d\n    - onlyif: \"true\"\n    - unless: \"true\"\ncreated:\n  cmd.run:\n    - name: e\n    - creates: /\n",
    )]);
    let results = run(&tree, "checks", RunOptions::default()).unwrap();
    assert_eq!(
        outline(&results),
        [
            ok("skipped/a", "unless condition is true"),
            ok("ran/b", "Command \"b\" run"),
            ok("not_only/c", "onlyif condition is false"),
            ok(
                "both/d",
                "onlyif condition is true\nunless condition is true"
            ),
            ok("created/e", "/ exists"),
        ]
    );
    let skipped = map_get(&results, "cmd_|-skipped_|-a_|-run").unwrap();
    assert_eq!(map_get(skipped, "skip_watch"), Some(&Value::Boolean(true)));
}

#[test]
fn state_events_and_fire_event_reach_the_master() {
    let tree = tree(&[(
        "ev.sls",
        "one:\n  test.nop\ntwo:\n  test.nop:\n    - fire_event: custom/tag\n",
    )]);
    let options = RunOptions {
        state_events: true,
        ..RunOptions::default()
    };
    run(&tree, "ev", options).unwrap();
    let fired = tree.fake.fired.lock().unwrap().clone();
    let tags: Vec<&str> = fired.iter().map(|(tag, _)| tag.as_str()).collect();
    assert_eq!(
        tags,
        [
            "salt/job/20261203000000000000/prog/m1/0",
            "salt/state_result/20261203000000000000/m1/custom/tag",
        ]
    );
    assert_eq!(map_get(&fired[0].1, "len"), Some(&Value::from(2)));
    assert!(map_get(&fired[1].1, "len").is_none());
    // salt-call --local fires nothing.
    let quiet = self::tree(&[("ev.sls", "one:\n  test.nop:\n    - fire_event: True\n")]);
    let local = RunOptions {
        state_events: true,
        local: true,
        ..RunOptions::default()
    };
    run(&quiet, "ev", local).unwrap();
    assert!(quiet.fake.fired.lock().unwrap().is_empty());
}

#[test]
fn templates_see_salts_variables_and_call_execution_functions() {
    let tree = tree(&[(
        "t/init.sls",
        "{{ sls }}_{{ grains['id'] }}:\n  test.succeed_without_changes:\n    - comment: \"{{ salt['test.echo']('hi') }} {{ salt.test.echo('dot') }} {{ tpldir }} {{ saltenv }} {{ opts['id'] }}\"\n",
    )]);
    let results = run(&tree, "t", RunOptions::default()).unwrap();
    assert_eq!(outline(&results), [ok("t_m1", "hi dot t base m1")]);
}

#[test]
fn use_copies_arguments_other_than_requisites_and_the_states_own() {
    let tree = tree(&[(
        "use.sls",
        "template:\n  test.succeed_without_changes:\n    - comment: from template\n    - require:\n      - test: missing\nuser:\n  test.succeed_without_changes:\n    - use:\n      - test: template\nowner:\n  test.succeed_without_changes:\n    - comment: own\n    - use:\n      - test: template\ngiver:\n  test.fail_without_changes:\n    - comment: given\n    - use_in:\n      - test: receiver\nreceiver:\n  test.fail_without_changes\n",
    )]);
    let results = run(&tree, "use", RunOptions::default()).unwrap();
    assert_eq!(
        outline(&results),
        [
            failed(
                "template",
                "The following requisites were not found:\n                   require:\n                       test: missing\n"
            ),
            ok("user", "from template"),
            ok("owner", "own"),
            failed("giver", "given"),
            failed("receiver", "given"),
        ]
    );
}

#[test]
fn listeners_run_their_mod_watch_after_the_run() {
    let tree = tree(&[(
        "listen.sls",
        "changed:\n  test.succeed_with_changes\nlistener:\n  test.succeed_without_changes:\n    - listen:\n      - test: changed\nquiet:\n  test.nop:\n    - listen:\n      - test: listener\nghost:\n  test.nop:\n    - listen:\n      - test: nothere\n",
    )]);
    let results = run(&tree, "listen", RunOptions::default()).unwrap();
    assert_eq!(
        outline(&results),
        [
            ok("changed", "Success!"),
            ok("listener", "Success!"),
            ok("quiet", "Success!"),
            ok("ghost", "Success!"),
            ok("listener_listener/listener", "Watch statement fired."),
            failed(
                "listen_test:nothere",
                "Referenced state test: nothere does not exist"
            ),
        ]
    );
}

#[test]
fn a_shebang_line_chooses_the_renderers() {
    let tree = tree(&[
        (
            "plain.sls",
            "#!yaml\nx:\n  test.succeed_without_changes:\n    - comment: \"{{ kept }}\"\n",
        ),
        ("py.sls", "#!py\ndef run():\n    return {}\n"),
    ]);
    let results = run(&tree, "plain", RunOptions::default()).unwrap();
    assert_eq!(outline(&results), [ok("x", "{{ kept }}")]);
    let refused = run(&tree, "py", RunOptions::default()).unwrap_err();
    assert!(
        refused[0].contains("the py renderer is not available"),
        "{refused:?}"
    );
}

/// Runs the SLS `chain` on a thread with the stack the daemons' workers have.
fn run_chain_on_a_workers_stack(chain: &str) -> Value {
    let tree = tree(&[("chain.sls", chain)]);
    std::thread::Builder::new()
        .stack_size(super::STATE_STACK)
        .spawn(move || run(&tree, "chain", RunOptions::default()).unwrap())
        .unwrap()
        .join()
        .expect("no stack overflow")
}

/// A requisite chain longer than the runtime follows fails its deepest state instead of
/// overflowing the stack of the worker thread and aborting the minion.
#[test]
fn a_requisite_chain_too_deep_to_follow_fails_instead_of_overflowing_the_stack() {
    let chain = "{% for i in range(300) %}s{{ i }}:\n  test.succeed_without_changes:\n    - require:\n      - test: s{{ i + 1 }}\n{% endfor %}s300:\n  test.succeed_without_changes: []\n";
    let results = run_chain_on_a_workers_stack(chain);
    let outline = outline(&results);
    assert_eq!(outline.len(), 301);
    assert!(
        outline
            .iter()
            .any(|(_, result, comment)| *result == Value::Boolean(false)
                && comment.contains("200 states deep")),
        "{results}"
    );
}

/// An ID YAML reads as a number or a boolean is Salt's compile error, not a state.
#[test]
fn ids_that_are_not_strings_are_refused_as_salt_refuses_them() {
    let tree = tree(&[(
        "x.sls",
        "123:\n  test.succeed_without_changes: []\ntrue:\n  test.nop: []\n",
    )]);
    assert_eq!(
        run(&tree, "x", RunOptions::default()).unwrap_err(),
        [
            "ID '123' in SLS 'x' is not formed as a string, but is a int. It may need to be quoted.",
            "ID 'True' in SLS 'x' is not formed as a string, but is a bool. It may need to be quoted."
        ]
    );
}

/// Cut off under `prereq`, no state of the chain goes missing from the results.
#[test]
fn a_prereq_chain_too_deep_to_follow_loses_no_state() {
    let chain = "{% for i in range(220) %}s{{ i }}:\n  test.succeed_without_changes:\n    - prereq:\n      - test: s{{ i + 1 }}\n{% endfor %}s220:\n  test.succeed_with_changes: []\n";
    let results = run_chain_on_a_workers_stack(chain);
    assert_eq!(outline(&results).len(), 221, "{results}");
}
