//! salt-run and salt-call against halite's own daemons: output bytes, arguments, errors, pipes.

use std::io::Write;
use std::process::Stdio;
use std::time::Duration;

use halite::event::Value;
use halite::wire::Framing;
use nix::sys::signal::Signal;

use crate::support::{Lab, RawSender, RawSubscriber, Watcher, map, stderr, stdout};

const WAIT: Duration = Duration::from_secs(5);

fn tricky_data() -> Value {
    map(&[
        ("b", Value::from(1)),
        (
            "a",
            Value::Array(vec![
                Value::from(1),
                Value::from(2.5),
                Value::Nil,
                Value::Boolean(true),
            ]),
        ),
        ("s", Value::from("héllo\n\"q\"\t\u{1b}")),
        ("f", Value::from(1e-05)),
        ("g", Value::from(1e16)),
        ("e", Value::Map(vec![])),
        ("k", Value::Map(vec![(Value::from(1), Value::from("one"))])),
    ])
}

fn watch(lab: &Lab, bin: &str, args: &[&str]) -> Watcher {
    let mut command = lab.cmd(bin);
    command.arg("state.event").args(args);
    Watcher::spawn(command)
}

#[test]
fn state_event_prints_python_json_in_wire_order() {
    let mut lab = Lab::new();
    lab.start_master();
    let watcher = watch(&lab, "salt-run", &[]);
    watcher.sync(&lab.master_pull());
    RawSender::connect(&lab.master_pull()).fire("t/plain", &tricky_data(), Framing::Bare);
    assert_eq!(
        watcher.line(WAIT).unwrap(),
        "t/plain\t{\"b\": 1, \"a\": [1, 2.5, null, true], \"s\": \"héllo\\n\\\"q\\\"\\t\\u001b\", \"f\": 1e-05, \"g\": 1e+16, \"e\": {}, \"k\": {\"1\": \"one\"}}"
    );
}

#[test]
fn state_event_pretty_sorts_keys_and_indents_four() {
    let mut lab = Lab::new();
    lab.start_master();
    let watcher = watch(&lab, "salt-run", &["pretty=True"]);
    watcher.sync(&lab.master_pull());
    let data = map(&[
        ("z", Value::from(1)),
        ("a", map(&[("y", Value::Nil), ("x", Value::Array(vec![]))])),
    ]);
    RawSender::connect(&lab.master_pull()).fire("t/pretty", &data, Framing::Bare);
    let lines: Vec<String> = (0..7).map(|_| watcher.line(WAIT).unwrap()).collect();
    assert_eq!(
        lines.join("\n"),
        "t/pretty\t{\n    \"a\": {\n        \"x\": [],\n        \"y\": null\n    },\n    \"z\": 1\n}"
    );
}

#[test]
fn state_event_json_format_prints_one_object_per_line() {
    let mut lab = Lab::new();
    lab.start_master();
    let watcher = watch(&lab, "salt-run", &["format=json"]);
    watcher.sync(&lab.master_pull());
    RawSender::connect(&lab.master_pull()).fire(
        "t/json",
        &map(&[("n", Value::from(3))]),
        Framing::Bare,
    );
    assert_eq!(
        watcher.line(WAIT).unwrap(),
        "{\"tag\": \"t/json\", \"data\": {\"n\": 3}}"
    );
}

#[test]
fn state_event_count_stops_without_printing_none() {
    let mut lab = Lab::new();
    lab.start_master();
    let watcher = watch(&lab, "salt-run", &["t/*", "count=2"]);
    // No sync events here: they would count. The watcher attaches in milliseconds.
    std::thread::sleep(Duration::from_millis(700));
    let mut sender = RawSender::connect(&lab.master_pull());
    for tag in ["other/skipped", "t/one", "t/two", "t/three"] {
        sender.fire(tag, &map(&[]), Framing::Bare);
    }
    assert_eq!(watcher.line(WAIT).unwrap(), "t/one\t{}");
    assert_eq!(watcher.line(WAIT).unwrap(), "t/two\t{}");
    assert_eq!(
        watcher.line(Duration::from_millis(300)),
        None,
        "nothing after the count, not even None"
    );
    assert!(watcher.wait().success());
}

#[test]
fn state_event_quiet_prints_nothing_and_count_zero_acts_like_one() {
    let mut lab = Lab::new();
    lab.start_master();
    let watcher = watch(&lab, "salt-run", &["t/*", "count=0", "quiet=True"]);
    std::thread::sleep(Duration::from_millis(500));
    RawSender::connect(&lab.master_pull()).fire("t/only", &map(&[]), Framing::Bare);
    let mut extra = Vec::new();
    while let Some(line) = watcher.line(Duration::from_millis(200)) {
        extra.push(line);
    }
    assert!(watcher.wait().success());
    assert!(extra.is_empty(), "quiet prints nothing: {extra:?}");
}

#[test]
fn state_event_regex_alternatives_match_the_whole_tag() {
    let mut lab = Lab::new();
    lab.start_master();
    let watcher = watch(&lab, "salt-run", &["sync/.*|t/a|t/b"]);
    watcher.sync(&lab.master_pull());
    let mut sender = RawSender::connect(&lab.master_pull());
    for tag in ["t/ab", "t/a", "t/bc", "t/b"] {
        sender.fire(tag, &map(&[]), Framing::Bare);
    }
    assert!(watcher.line(WAIT).unwrap().starts_with("t/a\t"));
    assert!(watcher.line(WAIT).unwrap().starts_with("t/b\t"));
    assert_eq!(watcher.line(Duration::from_millis(300)), None);
}

#[test]
fn state_event_exits_130_on_sigint_and_143_on_sigterm_without_traceback() {
    let mut lab = Lab::new();
    lab.start_master();
    for (signal, code) in [(Signal::SIGINT, 130), (Signal::SIGTERM, 143)] {
        let watcher = watch(&lab, "salt-run", &[]);
        watcher.sync(&lab.master_pull());
        watcher.signal(signal);
        let err = {
            std::thread::sleep(Duration::from_millis(200));
            watcher.stderr()
        };
        assert_eq!(watcher.wait().code(), Some(code));
        assert!(!err.contains("Traceback"), "{err}");
    }
}

#[test]
fn state_event_waits_for_the_master_and_reattaches_after_a_restart() {
    let mut lab = Lab::new();
    let watcher = watch(&lab, "salt-run", &[]);
    std::thread::sleep(Duration::from_millis(300));
    assert!(
        watcher.stderr().contains("waiting for the event bus"),
        "{}",
        watcher.stderr()
    );
    lab.start_master();
    watcher.sync(&lab.master_pull());
    assert!(
        watcher.stderr().contains("attached to the event bus"),
        "{}",
        watcher.stderr()
    );
    let (status, _) = lab.take_daemon().stop();
    assert!(status.success());
    lab.start_master();
    watcher.sync(&lab.master_pull());
    RawSender::connect(&lab.master_pull()).fire("t/after", &map(&[]), Framing::Bare);
    assert!(watcher.line(WAIT).unwrap().starts_with("t/after\t"));
    let err = watcher.stderr();
    assert_eq!(
        err.matches("waiting for the event bus").count(),
        1,
        "said once: {err}"
    );
    assert!(err.contains("lost the event bus"), "{err}");
}

#[test]
fn salt_run_event_send_fires_yaml_data_with_kwargs_between_runner_events() {
    let mut lab = Lab::new();
    lab.start_master();
    let mut subscriber = RawSubscriber::connect(&lab.master_pub());
    let output = lab.run(
        "salt-run",
        &[
            "event.send",
            "myco/build",
            "{id: 42, ok: true}",
            "extra=yes",
        ],
    );
    assert_eq!(stdout(&output), "True\n", "{}", stderr(&output));
    assert!(output.status.success());
    let new = subscriber.next_event(WAIT).unwrap();
    assert!(
        new.tag.starts_with("salt/run/") && new.tag.ends_with("/new"),
        "{}",
        new.tag
    );
    let event = subscriber.expect_tag("myco/build");
    let keys = crate::support::keys(&event.data);
    assert_eq!(keys, ["id", "ok", "extra", "_stamp"]);
    assert_eq!(event.get("extra").and_then(Value::as_bool), Some(true));
    let ret = subscriber.next_event(WAIT).unwrap();
    assert!(ret.tag.ends_with("/ret"), "{}", ret.tag);
    assert_eq!(ret.get("return"), Some(&Value::Boolean(true)));
}

#[test]
fn salt_run_event_send_refuses_bad_arguments_clearly() {
    let mut lab = Lab::new();
    lab.start_master();
    let cases: &[(&[&str], &str)] = &[
        (&["event.send", "t/x", "[1, 2]"], "data must be a dict"),
        (
            &["event.send"],
            "missing 1 required positional argument: 'tag'",
        ),
        (
            &["event.send", "t/x", "{}", "3"],
            "takes from 1 to 2 positional arguments but 3 were given",
        ),
        (&["nope.nothing"], "'nope.nothing' is not available"),
        (
            &["--out", "fancy", "event.send", "t/x"],
            "unknown outputter",
        ),
    ];
    for (args, needle) in cases {
        let output = lab.run("salt-run", args);
        assert_eq!(output.status.code(), Some(1), "{args:?}");
        let err = stderr(&output);
        assert!(
            err.starts_with("error: ") && err.contains(needle),
            "{args:?}: {err}"
        );
    }
}

#[test]
fn event_send_without_a_master_names_the_socket_and_fails() {
    let lab = Lab::new();
    let output = lab.run("salt-run", &["event.send", "t/x"]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains("master_event_pull.ipc") && err.contains("is the daemon running"),
        "{err}"
    );
    let output = lab.run("salt-call", &["event.send", "t/x"]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains(&format!(
            "minion_event_{}_pull.ipc",
            crate::support::MINION_HASH
        )),
        "{err}"
    );
}

#[test]
fn events_larger_than_max_event_size_are_refused() {
    let mut lab = Lab::with_config("max_event_size: 100\n", "");
    lab.start_master();
    let big = format!("{{blob: {}}}", "x".repeat(200));
    let output = lab.run("salt-run", &["event.send", "t/big", &big]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("over max_event_size (100)"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn salt_call_event_send_reaches_the_master_in_salts_envelope() {
    let mut lab = Lab::new();
    lab.start_master();
    lab.start_minion();
    let mut subscriber = RawSubscriber::connect(&lab.master_pub());
    let output = lab.run(
        "salt-call",
        &["event.send", "golden/send/kv", "foo=bar", "num=3"],
    );
    assert_eq!(stdout(&output), "local:\n    True\n", "{}", stderr(&output));
    let event = subscriber.expect_tag("golden/send/kv");
    let keys = crate::support::keys(&event.data);
    assert_eq!(keys, ["id", "cmd", "pretag", "data", "tag", "ts", "_stamp"]);
    assert_eq!(event.get("id").and_then(Value::as_str), Some("minion1"));
    assert_eq!(
        event.get("cmd").and_then(Value::as_str),
        Some("_minion_event")
    );
    let data = event.get("data").unwrap();
    let data_keys: Vec<_> = crate::support::keys(data);
    assert_eq!(
        data_keys,
        [
            "foo",
            "num",
            "__pub_fun",
            "__pub_pid",
            "__pub_jid",
            "__pub_tgt"
        ]
    );
    assert_eq!(
        halite::event::map_get(data, "__pub_tgt").and_then(Value::as_str),
        Some("salt-call")
    );
}

#[test]
fn salt_call_positional_yaml_data_overrides_kwargs_like_salt() {
    let mut lab = Lab::new();
    lab.start_master();
    lab.start_minion();
    let mut subscriber = RawSubscriber::connect(&lab.master_pub());
    let output = lab.run(
        "salt-call",
        &[
            "event.send",
            "sc/override",
            "{a: from_data}",
            "a=from_kwarg",
            "with_env=[HOME]",
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let event = subscriber.expect_tag("sc/override");
    let data = event.get("data").unwrap();
    let keys: Vec<_> = crate::support::keys(data);
    assert_eq!(
        keys,
        [
            "environ",
            "a",
            "__pub_fun",
            "__pub_pid",
            "__pub_jid",
            "__pub_tgt"
        ]
    );
    assert_eq!(
        halite::event::map_get(data, "a").and_then(Value::as_str),
        Some("from_data")
    );
}

#[test]
fn salt_call_outputters_print_salts_exact_bytes() {
    let mut lab = Lab::new();
    lab.start_minion();
    for (out, expected) in [
        ("nested", "local:\n    True\n"),
        ("json", "{\n    \"local\": true\n}\n"),
        ("yaml", "local: true\n"),
        ("txt", "local: True\n"),
        ("raw", "{'local': True}\n"),
        ("quiet", ""),
    ] {
        let output = lab.run(
            "salt-call",
            &[
                "--local",
                "event.send",
                "sc/out",
                "a=1",
                &format!("--out={out}"),
            ],
        );
        assert!(output.status.success(), "{out}: {}", stderr(&output));
        assert_eq!(stdout(&output), expected, "--out={out}");
    }
}

#[test]
fn salt_call_fire_and_local_send_stay_on_the_minion_bus() {
    let mut lab = Lab::new();
    lab.start_minion();
    let mut subscriber = RawSubscriber::connect(&lab.minion_pub());
    assert!(
        lab.run("salt-call", &["event.fire", "{x: 1}", "golden/fire/local"])
            .status
            .success()
    );
    let event = subscriber.expect_tag("golden/fire/local");
    assert_eq!(event.get("x").and_then(Value::as_u64), Some(1));
    assert!(
        lab.run(
            "salt-call",
            &["--local", "event.send", "sc/local_send", "a=1"]
        )
        .status
        .success()
    );
    let event = subscriber.expect_tag("sc/local_send");
    assert_eq!(event.get("a").and_then(Value::as_u64), Some(1));
}

#[test]
fn salt_call_local_fire_master_warns_and_fails() {
    let lab = Lab::new();
    let output = lab.run(
        "salt-call",
        &["--local", "event.fire_master", "{x: 1}", "sc/local_fm"],
    );
    assert_eq!(output.status.code(), Some(1));
    assert_eq!(stdout(&output), "local:\n    False\n");
    assert!(
        stderr(&output).contains(
            "[WARNING ] Local mode detected. Event with tag sc/local_fm will NOT be sent."
        )
    );
}

#[test]
fn salt_call_errors_have_salts_words_and_clear_exit_codes() {
    let mut lab = Lab::new();
    lab.start_minion();
    let output = lab.run("salt-call", &["event.send"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains(
        "Passed invalid arguments: send() missing 1 required positional argument: 'tag'."
    ));
    let output = lab.run("salt-call", &["event.fire", "notadict", "sc/fire_nondict"]);
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("data must be a dict"),
        "{}",
        stderr(&output)
    );
    let output = lab.run("salt-call", &["test.nothing"]);
    assert_eq!(output.status.code(), Some(255));
    assert!(stderr(&output).contains("'test.nothing' is not available."));
}

#[test]
fn invalid_yaml_argument_data_is_an_error_not_a_silent_drop() {
    let mut lab = Lab::new();
    lab.start_minion();
    let output = lab.run(
        "salt-call",
        &["--local", "event.send", "sc/badyaml", "{foo: [unclosed"],
    );
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("data must be a dict"),
        "{}",
        stderr(&output)
    );
}

/// `salt-run event.send -` with `input` on stdin.
fn send_stdin(lab: &Lab, input: &str) -> std::process::Output {
    let mut child = lab
        .cmd("salt-run")
        .args(["event.send", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(input.as_bytes())
        .unwrap();
    child.wait_with_output().unwrap()
}

#[test]
fn state_event_output_piped_into_event_send_round_trips() {
    let mut lab = Lab::new();
    lab.start_master();
    let mut subscriber = RawSubscriber::connect(&lab.master_pub());
    let input = "pipe/plain\t{\"a\": 1, \"u\": \"héllo\"}\n\
                 pipe/pretty\t{\n    \"b\": [\n        1,\n        2\n    ]\n}\n\
                 {\"tag\": \"pipe/json\", \"data\": {\"c\": null}}\n";
    let output = send_stdin(&lab, input);
    assert!(output.status.success(), "{}", stderr(&output));
    assert_eq!(
        subscriber
            .expect_tag("pipe/plain")
            .get("u")
            .and_then(Value::as_str),
        Some("héllo")
    );
    assert_eq!(
        subscriber.expect_tag("pipe/pretty").get("b"),
        Some(&Value::Array(vec![Value::from(1), Value::from(2)]))
    );
    assert_eq!(
        subscriber.expect_tag("pipe/json").get("c"),
        Some(&Value::Nil)
    );
}

#[test]
fn piped_garbage_names_the_line() {
    let mut lab = Lab::new();
    lab.start_master();
    let output = send_stdin(&lab, "ok/one\t{}\nnot an event line\n");
    assert_eq!(output.status.code(), Some(1));
    assert!(
        stderr(&output).contains("stdin line 2"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn invalid_config_yaml_names_the_file_and_line() {
    let lab = Lab::new();
    std::fs::write(
        lab.etc().join("master"),
        "sock_dir: /tmp\nbroken: [unclosed\n",
    )
    .unwrap();
    let output = lab.run("salt-run", &["event.send", "t/x"]);
    assert_eq!(output.status.code(), Some(1));
    let err = stderr(&output);
    assert!(
        err.contains("invalid YAML in config file")
            && err.contains("/etc/master")
            && err.contains("line"),
        "{err}"
    );
    let output = lab.run("salt-master", &[]);
    assert_eq!(output.status.code(), Some(1));
    assert!(stderr(&output).contains("invalid YAML in config file"));
}

#[test]
fn master_d_files_override_the_main_config() {
    let lab = Lab::new();
    std::fs::create_dir_all(lab.etc().join("master.d")).unwrap();
    let other = lab.path().join("other");
    std::fs::write(
        lab.etc().join("master.d/10-sock.conf"),
        format!("sock_dir: {}\n", other.display()),
    )
    .unwrap();
    let daemon = lab.spawn_daemon("salt-master", &[]);
    assert!(crate::support::wait_until(WAIT, || {
        crate::support::connectable(&other.join("master_event_pub.ipc"))
    }));
    drop(daemon);
}

#[test]
fn salt_run_state_event_node_minion_watches_the_minion_in_the_same_config_dir() {
    let mut lab = Lab::new();
    lab.start_minion();
    let watcher = watch(&lab, "salt-run", &["node=minion"]);
    watcher.sync(&lab.minion_pull());
    RawSender::connect(&lab.minion_pull()).fire("minion/only", &map(&[]), Framing::Bare);
    assert_eq!(watcher.line(WAIT).unwrap(), "minion/only\t{}");
}

#[test]
fn state_event_sock_dir_points_at_another_bus() {
    let mut lab = Lab::new();
    lab.start_master();
    let sock_dir = format!("sock_dir={}", lab.master_sock_dir().display());
    // salt-call watches its minion bus by default; sock_dir and node move it to the master's.
    let watcher = watch(&lab, "salt-call", &["node=master", &sock_dir]);
    watcher.sync(&lab.master_pull());
    RawSender::connect(&lab.master_pull()).fire("master/seen", &map(&[]), Framing::Bare);
    assert_eq!(watcher.line(WAIT).unwrap(), "master/seen\t{}");
}

#[test]
fn salt_call_event_send_adds_grains_and_env_opts_on_request() {
    let mut lab = Lab::new();
    lab.start_minion();
    let mut subscriber = RawSubscriber::connect(&lab.minion_pub());
    let output = lab.run(
        "salt-call",
        &[
            "--local",
            "event.send",
            "sc/envsub",
            "with_grains=[id, kernel]",
            "with_env_opts=True",
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let event = subscriber.expect_tag("sc/envsub");
    assert_eq!(
        event.get("grains"),
        Some(&map(&[
            ("id", Value::from("minion1")),
            ("kernel", Value::from("Linux"))
        ]))
    );
    assert_eq!(event.get("saltenv"), Some(&Value::Nil));
    assert_eq!(event.get("pillarenv"), Some(&Value::Nil));
}

/// `salt-run reactor.dry_run - < events | head -2` panicked with exit 101 when `head` closed
/// the pipe; a closed pipe ends the command quietly with 0.
#[test]
fn a_closed_pipe_ends_a_command_quietly() {
    use std::io::BufRead;
    let lab = Lab::with_config("reactor:\n  - 'pipe/*': [/srv/nowhere/x.sls]\n", "");
    let mut child = lab
        .cmd("salt-run")
        .args(["reactor.dry_run", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut stdin = child.stdin.take().unwrap();
    let feeder = std::thread::spawn(move || {
        for n in 0..20_000 {
            if writeln!(stdin, "pipe/{n}\t{{\"n\": {n}}}").is_err() {
                break;
            }
        }
    });
    let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
    for _ in 0..2 {
        let mut line = String::new();
        stdout.read_line(&mut line).unwrap();
    }
    drop(stdout);
    let output = crate::support::wait_output(child, Duration::from_secs(30));
    feeder.join().unwrap();
    assert_eq!(output.status.code(), Some(0), "{}", stderr(&output));
    assert!(!stderr(&output).contains("panicked"), "{}", stderr(&output));
}

/// Durations no clock can hold panicked (`salt -t 1e300`, `event.bench idle=-1`,
/// `test.sleep 1e300`); each is an error naming the argument now.
#[test]
fn impossible_durations_are_errors_not_panics() {
    let lab = Lab::new();
    let cases: &[(&str, &[&str], &str)] = &[
        (
            "salt",
            &["-t", "1e300", "*", "test.ping"],
            "-t/--timeout 1e300",
        ),
        (
            "salt",
            &["--timeout=-5", "*", "test.ping"],
            "-t/--timeout -5",
        ),
        ("salt-run", &["event.bench", "idle=-1"], "idle=-1"),
        (
            "salt-run",
            &["event.bench", "count=10", "rate=0.0000000000000000001"],
            "rate=",
        ),
        (
            "salt-run",
            &["http.query", "http://127.0.0.1:9/", "timeout=-3"],
            "timeout -3 is not a number of seconds",
        ),
        (
            "salt-call",
            &["--local", "test.sleep", "1e300"],
            "test.sleep: length",
        ),
        (
            "salt-call",
            &["--local", "test.sleep", "-1"],
            "test.sleep: length",
        ),
    ];
    for (bin, args, says) in cases {
        let output = lab.run(bin, args);
        assert_eq!(
            output.status.code(),
            Some(1),
            "{bin} {args:?}: {}",
            stderr(&output)
        );
        assert!(
            stderr(&output).contains(says),
            "{bin} {args:?}: {}",
            stderr(&output)
        );
    }
}

/// On a terminal the output is coloured unless `NO_COLOR` is set or the config says
/// `color: False`; `--force-color` wins over both, `--no-color` over the terminal.
#[test]
fn no_color_and_the_color_option_turn_colour_off_on_a_terminal() {
    let lab = Lab::new();
    let on_a_terminal = |no_color_env: Option<&str>, flag: &str| {
        let line = format!(
            "{} -c {} --local test.ping {flag}",
            crate::support::bin("salt-call").display(),
            lab.etc().display()
        );
        let mut script = std::process::Command::new("script");
        script
            .args(["-qec", &line, "/dev/null"])
            .env_remove("NO_COLOR")
            .stdin(Stdio::null());
        if let Some(value) = no_color_env {
            script.env("NO_COLOR", value);
        }
        let output = script.output().expect("script(1) from util-linux");
        assert!(output.status.success(), "{line}: {}", stdout(&output));
        let text = stdout(&output);
        assert!(text.contains("True"), "{line}: {text}");
        text.contains('\u{1b}')
    };
    assert!(on_a_terminal(None, ""), "coloured on a terminal");
    assert!(!on_a_terminal(Some("1"), ""), "NO_COLOR=1");
    assert!(
        on_a_terminal(Some(""), ""),
        "an empty NO_COLOR does not count"
    );
    assert!(on_a_terminal(Some("1"), "--force-color"), "forced");
    assert!(!on_a_terminal(None, "--no-color"), "--no-color");
    lab.append_config("minion", "color: False\n");
    assert!(!on_a_terminal(None, ""), "color: False");
    assert!(
        on_a_terminal(None, "--force-color"),
        "forced over the config"
    );
}
