//! The returners that need no database server: `rawfile_json`, `syslog` and `local`, compared
//! with what Salt 3007.8's own modules write for the same returns and events (run by
//! tests/returners_salt.py), and halite's `command`, on real programs.

use std::io::Write;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use halite::config::{Config, Role};
use halite::event::{Event, Value};
use halite::returners::{Returner, ReturnerError};
use serde_json::json;

use crate::support::wait_until;

/// Returner `name` built from a minion configuration of `yaml`, kept in `dir`.
fn returner(dir: &Path, name: &str, yaml: &str) -> Result<Arc<dyn Returner>, ReturnerError> {
    std::fs::write(dir.join("minion"), yaml).unwrap();
    let config = Config::load(Role::Minion, Some(dir)).unwrap();
    halite::returners::build(name, &config, None, None)
}

/// JSON as a value, its maps in their order.
fn value(json: &serde_json::Value) -> Value {
    serde_json::from_str(&json.to_string()).unwrap()
}

/// Job returns as minions hand them to returners, with what Python's `json` and `repr` write in
/// their own ways: floats, control characters, quotes, non-ASCII text, nulls.
fn returns() -> serde_json::Value {
    json!([
        {"success": true, "return": {"cmd_|-hello_|-echo hi_|-run": {
            "name": "echo hi", "changes": {"pid": 42, "retcode": 0, "stdout": "hi ü\n\t\u{1}",
            "stderr": ""}, "result": true, "comment": "Command \"echo hi\" run", "__sls__": "hello",
            "__run_num__": 0, "start_time": "08:37:22.073170", "duration": 5.123,
            "__id__": "hello"}}, "retcode": 0, "jid": "20261124083722073170",
            "fun": "state.apply", "fun_args": ["hello", {"test": false}], "id": "minion2",
            "out": "highstate"},
        {"success": true, "return": true, "retcode": 0, "jid": "20261124083722073171",
            "fun": "test.ping", "fun_args": [], "id": "minion2"},
        {"success": false, "return": {"it's": [1e-05, 1e16, 0.1, -0.0, 12345678901234567890u64,
            null, "€ \\ '\""]}, "retcode": 1, "jid": "req", "fun": "my.fun", "fun_args": [],
            "id": "wéb"}
    ])
}

/// Events as the master's EventReturn hands them to `event_return`.
fn events() -> serde_json::Value {
    json!([
        {"data": {"_stamp": "2026-11-24T08:37:13.884077"}, "tag": "salt/event_listen/start"},
        {"data": {"foo": "bär", "n": [1, 2.5, null, true], "_stamp": "2026-11-24T08:38:00.978605"},
            "tag": "test/react/one"},
        {"data": {}, "tag": "a 'quoted' \"tag\""}
    ])
}

fn as_events(json: &serde_json::Value) -> Vec<Event> {
    json.as_array()
        .unwrap()
        .iter()
        .map(|item| Event {
            tag: item["tag"].as_str().unwrap().to_owned(),
            data: value(&item["data"]),
        })
        .collect()
}

fn as_returns(json: &serde_json::Value) -> Vec<Value> {
    json.as_array().unwrap().iter().map(value).collect()
}

/// Runs Salt's returner `module`'s `function` on `input` with `opts` (under `wrapper`, a
/// command that runs its arguments, with `--wire`); its stdout, or why not.
fn salt(
    module: &str,
    function: &str,
    opts: &serde_json::Value,
    input: &serde_json::Value,
    wrapper: &[&str],
) -> Result<String, String> {
    let venv = crate::conformance::installed("3007.8")?;
    let script = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/returners_salt.py");
    let mut command = match wrapper {
        [] => Command::new(venv.join("bin/python")),
        [program, args @ ..] => {
            let mut command = Command::new(program);
            command.args(args).arg(venv.join("bin/python"));
            command
        }
    };
    let output = command
        .arg(script)
        .args((!wrapper.is_empty()).then_some("--wire"))
        .args([module, function, &opts.to_string(), &input.to_string()])
        .output()
        .map_err(|err| err.to_string())?;
    if !output.status.success() {
        return Err(format!(
            "Salt's {module} failed: {}",
            String::from_utf8_lossy(&output.stderr)
        ));
    }
    Ok(String::from_utf8(output.stdout).unwrap())
}

#[tokio::test]
async fn rawfile_json_writes_the_captured_event_file_byte_for_byte() {
    let golden = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../shared/golden/15_event_return_rawfile_json.txt"),
    )
    .unwrap();
    let lines: Vec<&str> = golden
        .lines()
        .filter(|line| !line.is_empty() && !line.starts_with('#'))
        .collect();
    let events: Vec<Event> = lines
        .iter()
        .map(|line| {
            let item: Value = serde_json::from_str(line).unwrap();
            let field = |key| halite::event::map_get(&item, key).unwrap().clone();
            Event {
                tag: field("tag").as_str().unwrap().to_owned(),
                data: field("data"),
            }
        })
        .collect();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("events");
    let yaml = format!("rawfile_json.filename: {}\n", file.display());
    let rawfile = returner(dir.path(), "rawfile_json", &yaml).unwrap();
    rawfile.events(&events[..3]).await.unwrap();
    rawfile.events(&events[3..]).await.unwrap();
    assert_eq!(
        std::fs::read_to_string(&file).unwrap(),
        lines
            .iter()
            .map(|line| format!("{line}\n"))
            .collect::<String>()
    );
}

#[tokio::test]
async fn rawfile_json_writes_what_salts_module_writes() {
    let dir = tempfile::tempdir().unwrap();
    let (ours, theirs) = (dir.path().join("ours"), dir.path().join("theirs"));
    let yaml = format!("rawfile_json:\n  filename: {}\n", ours.display());
    let rawfile = returner(dir.path(), "rawfile_json", &yaml).unwrap();
    rawfile.returns(&as_returns(&returns())).await.unwrap();
    rawfile.events(&as_events(&events())).await.unwrap();
    let opts = json!({"rawfile_json.filename": theirs});
    let salt = salt("rawfile_json", "returner", &opts, &returns(), &[])
        .and_then(|_| salt("rawfile_json", "event_return", &opts, &events(), &[]));
    if let Err(why) = salt {
        return eprintln!("SKIPPED the comparison with Salt's rawfile_json: {why}");
    }
    assert_eq!(
        std::fs::read_to_string(&ours).unwrap(),
        std::fs::read_to_string(&theirs).unwrap(),
        "halite's file, then Salt's"
    );
}

#[tokio::test]
async fn rawfile_json_without_its_directory_is_unavailable_with_the_fix() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("missing/events");
    let yaml = format!("rawfile_json.filename: {}\n", file.display());
    let rawfile = returner(dir.path(), "rawfile_json", &yaml).unwrap();
    let err = rawfile.returns(&as_returns(&returns())).await.unwrap_err();
    assert!(err.retryable(), "{err}");
    let said = err.to_string();
    assert!(
        said.contains(&file.display().to_string())
            && said.contains("create it or set rawfile_json.filename"),
        "{said}"
    );
}

/// The fields of a datagram libc would send: PRI, then the tag, whether `[pid]` follows it,
/// and the message; the timestamp checked for its shape.
fn syslog_fields(datagram: &str) -> (u32, String, bool, String) {
    let (pri, rest) = datagram[1..].split_once('>').unwrap();
    let (stamp, rest) = rest.split_at(15);
    assert!(
        jiff::fmt::strtime::parse("%b %e %H:%M:%S", stamp).is_ok() && rest.starts_with(' '),
        "{datagram}"
    );
    let (head, message) = rest[1..].split_once(": ").unwrap();
    let (tag, pid) = match head.split_once('[') {
        Some((tag, pid)) => {
            assert_eq!(pid, format!("{}]", std::process::id()));
            (tag, true)
        }
        None => (head, false),
    };
    (
        pri.parse().unwrap(),
        tag.to_owned(),
        pid,
        message.to_owned(),
    )
}

/// What halite's syslog returner sends with options `yaml` for `returns()`, one datagram a
/// return.
async fn syslog_datagrams(yaml: &str) -> Vec<String> {
    let dir = tempfile::tempdir().unwrap();
    let socket = dir.path().join("log");
    let listener = std::os::unix::net::UnixDatagram::bind(&socket).unwrap();
    let yaml = format!("{yaml}syslog.socket: {}\n", socket.display());
    let syslog = returner(dir.path(), "syslog", &yaml).unwrap();
    syslog.returns(&as_returns(&returns())).await.unwrap();
    let mut buffer = vec![0; 1 << 16];
    (0..returns().as_array().unwrap().len())
        .map(|_| {
            let size = listener.recv(&mut buffer).unwrap();
            String::from_utf8(buffer[..size].to_vec()).unwrap()
        })
        .collect()
}

#[tokio::test]
async fn syslog_hands_libc_what_salts_module_hands_python_syslog() {
    for (opts, yaml) in [
        (json!({}), ""),
        (
            json!({"syslog": {"level": "LOG_ERR", "facility": "LOG_DAEMON", "tag": "mysalt",
                "options": ["LOG_PID", "LOG_NDELAY"]}}),
            "syslog:\n  level: LOG_ERR\n  facility: LOG_DAEMON\n  tag: mysalt\n  \
             options: [LOG_PID, LOG_NDELAY]\n",
        ),
        (
            json!({"syslog.level": "LOG_DEBUG", "syslog.facility": "LOG_KERN"}),
            "syslog.level: LOG_DEBUG\nsyslog.facility: LOG_KERN\n",
        ),
    ] {
        let ours = syslog_datagrams(yaml).await;
        let theirs = match salt("syslog_return", "returner", &opts, &returns(), &[]) {
            Ok(theirs) => theirs,
            Err(why) => return eprintln!("SKIPPED the comparison with Salt's syslog: {why}"),
        };
        let program = std::env::args().next().unwrap();
        let program = Path::new(&program).file_name().unwrap().to_str().unwrap();
        for (datagram, call) in ours.iter().zip(theirs.lines()) {
            let call: serde_json::Value = serde_json::from_str(call).unwrap();
            let mut priority = call["priority"].as_u64().unwrap() as u32;
            // libc takes a priority without a facility as LOG_USER's.
            if priority & !7 == 0 {
                priority |= 8;
            }
            let expected = (
                priority,
                call["ident"].as_str().unwrap_or(program).to_owned(),
                call["logoption"].as_u64().unwrap() & 1 == 1,
                call["message"].as_str().unwrap().to_owned(),
            );
            assert_eq!(syslog_fields(datagram), expected, "options {opts}");
        }
        assert_eq!(ours.len(), theirs.lines().count());
    }
}

#[tokio::test]
async fn syslog_datagrams_are_the_bytes_glibc_sends() {
    let ours = syslog_datagrams("syslog.tag: mysalt\nsyslog.options: [LOG_PID]\n").await;
    let opts = json!({"syslog.tag": "mysalt", "syslog.options": ["LOG_PID"]});
    // Salt's module in a mount namespace whose /dev is its own, where it binds /dev/log.
    let namespace = [
        "unshare",
        "--map-root-user",
        "--mount",
        "sh",
        "-c",
        "mount -t tmpfs tmpfs /dev && exec \"$@\"",
        "sh",
    ];
    let theirs = match salt("syslog_return", "returner", &opts, &returns(), &namespace) {
        Ok(theirs) => theirs,
        Err(why) => {
            return eprintln!(
                "SKIPPED the comparison with glibc's datagrams (needs Salt's venv and \
                 unshare --map-root-user --mount): {why}"
            );
        }
    };
    // The time and the pid differ; the rest is libc's.
    let normal = |datagram: &str| {
        let (pri, rest) = datagram.split_once('>').unwrap();
        let rest = &rest[15..];
        let (head, message) = rest.split_once(": ").unwrap();
        let tag = head.split('[').next().unwrap();
        format!("{pri}>TIME{tag}[PID]: {message}")
    };
    let theirs: Vec<String> = theirs
        .lines()
        .map(|line| normal(serde_json::from_str::<String>(line).unwrap().as_str()))
        .collect();
    let ours: Vec<String> = ours.iter().map(|datagram| normal(datagram)).collect();
    assert_eq!(ours, theirs);
}

/// Set in the child that `local_prints_what_salts_module_prints` starts.
const LOCAL_CHILD: &str = "HALITE_TEST_LOCAL_RETURNER";
/// Around what the child's returner prints, apart from the test harness's lines.
const MARK: &str = "\u{1e}local returner\u{1e}\n";

/// The child of `local_prints_what_salts_module_prints`: hands halite's `local` returner the
/// returns (one at a time, as a minion) or the events of the test, on its stdout. Passes at
/// once when run on its own.
#[tokio::test]
async fn local_child() {
    let Ok(function) = std::env::var(LOCAL_CHILD) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let local = returner(dir.path(), "local", "").unwrap();
    std::io::stdout().write_all(MARK.as_bytes()).unwrap();
    if function == "returner" {
        for ret in as_returns(&returns()) {
            local.returns(&[ret]).await.unwrap();
        }
    } else {
        local.events(&as_events(&events())).await.unwrap();
    }
    std::io::stdout().write_all(MARK.as_bytes()).unwrap();
}

#[test]
fn local_prints_what_salts_module_prints() {
    for (function, input) in [("returner", returns()), ("event_return", events())] {
        let output = Command::new(std::env::current_exe().unwrap())
            .args(["--exact", "returners_files::local_child", "--nocapture"])
            .env(LOCAL_CHILD, function)
            .output()
            .unwrap();
        let stdout = String::from_utf8(output.stdout).unwrap();
        let ours = stdout
            .split(MARK)
            .nth(1)
            .unwrap_or_else(|| panic!("{stdout}"));
        match salt("local", function, &json!({}), &input, &[]) {
            Ok(theirs) => assert_eq!(ours, theirs, "{function}: halite's, then Salt's"),
            Err(why) => return eprintln!("SKIPPED the comparison with Salt's local: {why}"),
        }
    }
}

#[tokio::test]
async fn local_with_a_filename_appends_rawfile_jsons_lines() {
    let dir = tempfile::tempdir().unwrap();
    let (local, rawfile) = (dir.path().join("local.log"), dir.path().join("raw"));
    let yaml = format!(
        "local.filename: {}\nrawfile_json.filename: {}\n",
        local.display(),
        rawfile.display()
    );
    for name in ["local", "rawfile_json"] {
        let returner = returner(dir.path(), name, &yaml).unwrap();
        returner.returns(&as_returns(&returns())).await.unwrap();
        returner.events(&as_events(&events())).await.unwrap();
    }
    let written = std::fs::read_to_string(&local).unwrap();
    assert_eq!(written.lines().count(), 6);
    assert_eq!(written, std::fs::read_to_string(&rawfile).unwrap());
}

/// A `command` returner running `script` (sh) with `command.timeout` of `timeout`.
fn command(dir: &Path, script: &str, timeout: &str) -> Arc<dyn Returner> {
    let yaml = format!(
        "command.cmd: sh -c {}\ncommand.timeout: {timeout}\n",
        serde_json::to_string(script).unwrap()
    );
    returner(dir, "command", &yaml).unwrap()
}

/// The lines of `path` once it has `count` of them (or what it has after 10 s).
fn lines_of(path: &Path, count: usize) -> Vec<String> {
    let read = || std::fs::read_to_string(path).unwrap_or_default();
    wait_until(Duration::from_secs(10), || read().lines().count() >= count);
    read().lines().map(str::to_owned).collect()
}

fn ret(n: usize) -> Value {
    value(&json!({"id": "web1", "jid": format!("2026112408372207{n:04}"), "return": n}))
}

#[tokio::test]
async fn command_writes_each_return_and_event_as_a_json_line() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let program = command(
        dir.path(),
        &format!(
            "echo ready; echo careful >&2; exec cat >> {}",
            out.display()
        ),
        "10",
    );
    program.returns(&as_returns(&returns())).await.unwrap();
    program.events(&as_events(&events())).await.unwrap();
    let expected: Vec<String> = returns()
        .as_array()
        .unwrap()
        .iter()
        .map(|ret| serde_json::to_string(ret).unwrap())
        .chain(events().as_array().unwrap().iter().map(|event| {
            serde_json::to_string(&json!({"tag": event["tag"], "data": event["data"]})).unwrap()
        }))
        .collect();
    let written = lines_of(&out, expected.len());
    // The same objects (serde_json's own formatting differs from Python's)...
    let parsed = |lines: &[String]| -> Vec<serde_json::Value> {
        lines
            .iter()
            .map(|line| serde_json::from_str(line).unwrap())
            .collect()
    };
    assert_eq!(parsed(&written), parsed(&expected));
    // ... written as Python's json.dumps writes them, as rawfile_json does.
    let raw = dir.path().join("raw");
    let rawfile = returner(
        dir.path(),
        "rawfile_json",
        &format!("rawfile_json.filename: {}\n", raw.display()),
    )
    .unwrap();
    rawfile.returns(&as_returns(&returns())).await.unwrap();
    let raw = std::fs::read_to_string(raw).unwrap();
    assert_eq!(written[..3].join("\n") + "\n", raw);
}

/// The `return` of each line of `path`, once it has `count` lines.
fn returned(path: &Path, count: usize) -> Vec<u64> {
    lines_of(path, count)
        .iter()
        .map(|line| {
            let ret: serde_json::Value = serde_json::from_str(line).unwrap();
            ret["return"].as_u64().unwrap()
        })
        .collect()
}

/// A program that reads `count` lines one byte at a time (sh's `read`), appends them to `out`
/// and exits.
fn reads_and_exits(count: usize, out: &Path) -> String {
    format!(
        "n=0; while [ $n -lt {count} ] && IFS= read -r line; do \
         printf '%s\\n' \"$line\" >> {}; n=$((n+1)); done",
        out.display()
    )
}

#[tokio::test]
async fn command_lines_a_program_left_unread_go_to_its_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let program = command(dir.path(), &reads_and_exits(4, &out), "10");
    // All in the pipe at once: each run reads four and leaves the rest.
    for n in 0..10 {
        program.returns(&[ret(n)]).await.unwrap();
    }
    // Restarted after 1 s, then 2 s.
    tokio::task::spawn_blocking(move || {
        assert_eq!(returned(&out, 10), (0..10).collect::<Vec<_>>());
    })
    .await
    .unwrap();
}

#[tokio::test]
async fn command_that_ended_is_unavailable_and_the_retry_goes_to_its_next_run() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("out");
    let program = command(dir.path(), &reads_and_exits(2, &out), "10");
    for n in 0..2 {
        program.returns(&[ret(n)]).await.unwrap();
        let out = out.clone();
        tokio::task::spawn_blocking(move || returned(&out, n + 1))
            .await
            .unwrap();
    }
    // Time to notice the end.
    tokio::time::sleep(Duration::from_millis(500)).await;
    let err = program.returns(&[ret(2)]).await.unwrap_err();
    assert!(err.retryable(), "{err}");
    assert!(
        err.to_string()
            .contains("sh ended (exit status: 0); it starts again in")
            || err
                .to_string()
                .contains("sh is not running; it starts again in"),
        "{err}"
    );
    let started = Instant::now();
    while let Err(err) = program.returns(&[ret(2)]).await {
        assert!(started.elapsed() < Duration::from_secs(10), "{err}");
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    tokio::task::spawn_blocking(move || assert_eq!(returned(&out, 3), [0, 1, 2]))
        .await
        .unwrap();
}

#[tokio::test]
async fn command_that_reads_nothing_is_unavailable_after_its_timeout() {
    let dir = tempfile::tempdir().unwrap();
    let program = command(dir.path(), "exec sleep 600", "0.5");
    let big = value(&json!({"id": "web1", "return": "x".repeat(300_000)}));
    let started = Instant::now();
    let err = program
        .returns(std::slice::from_ref(&big))
        .await
        .unwrap_err();
    assert!(started.elapsed() < Duration::from_secs(5), "{err}");
    assert!(err.retryable(), "{err}");
    assert!(err.to_string().contains("read nothing for 500ms"), "{err}");
    let err = program.returns(&[big]).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("is not running; it starts again in"),
        "{err}"
    );
}

/// Whether process `pid` is gone (a zombie nobody reaped counts as gone).
fn gone(pid: &str) -> bool {
    let state = std::fs::read_to_string(format!("/proc/{pid}/stat")).unwrap_or_default();
    state.is_empty() || state.contains(") Z ")
}

#[tokio::test]
async fn command_is_killed_with_what_it_started_when_the_returner_is_dropped() {
    let dir = tempfile::tempdir().unwrap();
    let pids = dir.path().join("pids");
    let script = format!(
        "sleep 600 & echo $! > {0}; echo $$ >> {0}; exec cat > /dev/null",
        pids.display()
    );
    let program = command(dir.path(), &script, "10");
    program.returns(&[ret(0)]).await.unwrap();
    let pids = lines_of(&pids, 2);
    assert!(pids.iter().all(|pid| !gone(pid)));
    drop(program);
    for pid in &pids {
        assert!(
            wait_until(Duration::from_secs(5), || gone(pid)),
            "{pid} runs on"
        );
    }
}

#[test]
fn command_options_are_checked_when_it_is_built() {
    let dir = tempfile::tempdir().unwrap();
    for (yaml, said) in [
        ("", "command.cmd: expected the command line"),
        (
            "command.cmd: \"prog 'unbalanced\"\n",
            "command.cmd: expected the command line",
        ),
        (
            "command.cmd: cat\ncommand.timeout: soon\n",
            "command.timeout: expected a number",
        ),
    ] {
        let err = returner(dir.path(), "command", yaml)
            .unwrap_err()
            .to_string();
        assert!(err.contains(said), "{yaml}: {err}");
    }
}

#[tokio::test]
async fn command_that_cannot_start_is_unavailable_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let program = returner(dir.path(), "command", "command.cmd: /nonexistent/store\n").unwrap();
    let err = program.returns(&[ret(0)]).await.unwrap_err();
    assert!(err.retryable(), "{err}");
    assert!(
        err.to_string().contains("cannot run /nonexistent/store: "),
        "{err}"
    );
}
