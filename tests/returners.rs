//! Returners where Salt applies them, with real daemons: `event_return` with its filters and
//! queue, `salt --return` with `--return_config`/`--return_kwargs`, `salt-call --return`, the
//! minion's `return` option, and a returner whose store is away: spooled, counted by
//! `ret.stats`, and delivered once, in order, when it is back (across a master restart too).

use std::path::Path;
use std::time::Duration;

use crate::support::{Lab, MINION_ID, RawSubscriber, stderr, stdout, wait_until};

/// The JSON lines of a rawfile_json file.
fn lines(path: &Path) -> Vec<serde_json::Value> {
    std::fs::read_to_string(path)
        .unwrap_or_default()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap_or_else(|err| panic!("{err}: {line}")))
        .collect()
}

fn tags(path: &Path) -> Vec<String> {
    lines(path)
        .iter()
        .map(|line| line["tag"].as_str().unwrap_or_default().to_owned())
        .collect()
}

fn wait_for_lines(
    path: &Path,
    what: impl Fn(&[serde_json::Value]) -> bool,
) -> Vec<serde_json::Value> {
    let ready = wait_until(Duration::from_secs(20), || what(&lines(path)));
    let found = lines(path);
    assert!(ready, "{}: {found:#?}", path.display());
    found
}

/// Starts the lab's master and minion, and waits for the minion to connect.
fn start(lab: &mut Lab) {
    lab.start_master();
    let mut bus = RawSubscriber::connect(&lab.master_pub());
    lab.start_minion();
    bus.expect_tag(&format!("salt/minion/{MINION_ID}/start"));
}

fn fire(lab: &Lab, tag: &str, data: &str) {
    let output = lab.run("salt-run", &["event.send", tag, data]);
    assert!(output.status.success(), "{}", stderr(&output));
}

#[test]
fn event_return_writes_every_event_that_passes_the_filters_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events");
    let mut lab = Lab::with_config(
        &format!(
            "event_return: rawfile_json\nrawfile_json.filename: {}\n\
             event_return_blacklist:\n  - 'myco/secret/*'\n",
            events.display()
        ),
        "",
    );
    lab.start_master();
    for n in 0..20 {
        fire(&lab, &format!("myco/build/{n}"), &format!("{{n: {n}}}"));
    }
    fire(&lab, "myco/secret/key", "{x: 1}");
    fire(&lab, "myco/done", "{}");
    let found = wait_for_lines(&events, |lines| {
        lines.iter().any(|line| line["tag"] == "myco/done")
    });
    let tags: Vec<&str> = found
        .iter()
        .filter_map(|line| line["tag"].as_str())
        .collect();
    assert_eq!(tags.first(), Some(&"salt/event_listen/start"), "{tags:?}");
    let builds: Vec<String> = tags
        .iter()
        .filter(|tag| tag.starts_with("myco/build/"))
        .map(|tag| tag.to_string())
        .collect();
    assert_eq!(
        builds,
        (0..20)
            .map(|n| format!("myco/build/{n}"))
            .collect::<Vec<_>>()
    );
    assert!(!tags.contains(&"myco/secret/key"), "{tags:?}");
    let build = found
        .iter()
        .find(|line| line["tag"] == "myco/build/7")
        .unwrap();
    assert_eq!(build["data"]["n"], 7);
    assert!(build["data"]["_stamp"].is_string(), "{build}");
}

#[test]
fn event_return_queue_holds_events_until_it_is_full_or_old_enough() {
    let dir = tempfile::tempdir().unwrap();
    let events = dir.path().join("events");
    let mut lab = Lab::with_config(
        &format!(
            "event_return: rawfile_json\nrawfile_json.filename: {}\n\
             event_return_whitelist: ['myco/*']\nevent_return_queue: 5\n\
             event_return_queue_max_seconds: 3\n",
            events.display()
        ),
        "",
    );
    lab.start_master();
    for n in 0..4 {
        fire(&lab, &format!("myco/{n}"), "{}");
    }
    std::thread::sleep(Duration::from_millis(1500));
    assert!(tags(&events).is_empty(), "{:?}", tags(&events));
    // The oldest waited long enough: the four go together.
    let found = wait_for_lines(&events, |lines| lines.len() == 4);
    assert_eq!(found[0]["tag"], "myco/0");
    for n in 4..9 {
        fire(&lab, &format!("myco/{n}"), "{}");
    }
    // Five waiting fill the queue at once.
    wait_for_lines(&events, |lines| lines.len() == 9);
}

#[test]
fn a_job_published_with_return_goes_to_the_minions_returner_with_its_profile_and_kwargs() {
    let dir = tempfile::tempdir().unwrap();
    let (plain, profiled, overridden) = (
        dir.path().join("plain"),
        dir.path().join("profiled"),
        dir.path().join("overridden"),
    );
    let mut lab = Lab::with_config(
        "",
        &format!(
            "rawfile_json.filename: {}\nalt.rawfile_json.filename: {}\n",
            plain.display(),
            profiled.display()
        ),
    );
    start(&mut lab);
    let ran = |args: &[&str]| {
        let output = lab.run("salt", args);
        assert!(
            output.status.success(),
            "{}{}",
            stdout(&output),
            stderr(&output)
        );
    };
    ran(&[MINION_ID, "test.echo", "hello", "--return", "rawfile_json"]);
    let found = wait_for_lines(&plain, |lines| !lines.is_empty());
    let ret = &found[0];
    assert_eq!(ret["id"], MINION_ID);
    assert_eq!(ret["fun"], "test.echo");
    assert_eq!(ret["return"], "hello");
    assert_eq!(ret["success"], true);
    assert_eq!(ret["fun_args"], serde_json::json!(["hello"]));
    assert!(
        ret["jid"].as_str().is_some_and(|jid| jid.len() == 20),
        "{ret}"
    );

    ran(&[
        MINION_ID,
        "test.echo",
        "two",
        "--return",
        "rawfile_json",
        "--return_config",
        "alt",
    ]);
    let found = wait_for_lines(&profiled, |lines| !lines.is_empty());
    assert_eq!(found[0]["return"], "two");
    assert_eq!(found[0]["ret_config"], "alt");

    let kwargs = format!("{{filename: {}}}", overridden.display());
    ran(&[
        MINION_ID,
        "test.echo",
        "three",
        "--return",
        "rawfile_json",
        "--return_kwargs",
        &kwargs,
    ]);
    let found = wait_for_lines(&overridden, |lines| !lines.is_empty());
    assert_eq!(found[0]["return"], "three");
    assert_eq!(lines(&plain).len(), 1);

    let output = lab.run("salt", &[MINION_ID, "test.ping", "--return", "nosuch"]);
    assert!(!output.status.success());
    assert!(
        stderr(&output).contains("no returner named nosuch"),
        "{}",
        stderr(&output)
    );
    let output = lab.run("salt", &[MINION_ID, "test.ping", "--return_kwargs", "[1]"]);
    assert!(
        stderr(&output).contains("--return_kwargs must be a YAML map"),
        "{}",
        stderr(&output)
    );
}

#[test]
fn salt_call_and_the_minions_return_option_hand_returns_to_returners() {
    let dir = tempfile::tempdir().unwrap();
    let (called, configured) = (dir.path().join("called"), dir.path().join("configured"));
    let mut lab = Lab::with_config(
        "",
        &format!(
            "rawfile_json.filename: {}\nreturn: rawfile_json\n",
            configured.display()
        ),
    );
    start(&mut lab);
    let kwargs = format!("{{filename: {}}}", called.display());
    let output = lab.run(
        "salt-call",
        &[
            "test.echo",
            "called",
            "--return",
            "rawfile_json",
            "--return_kwargs",
            &kwargs,
        ],
    );
    assert!(output.status.success(), "{}", stderr(&output));
    let found = lines(&called);
    assert_eq!(found.len(), 1, "{found:?}");
    assert_eq!(found[0]["return"], "called");
    assert_eq!(found[0]["fun"], "test.echo");
    assert_eq!(found[0]["id"], MINION_ID);
    // A job from the master goes to the returner the minion's `return` option names.
    let output = lab.run("salt", &[MINION_ID, "test.echo", "published"]);
    assert!(output.status.success(), "{}", stderr(&output));
    wait_for_lines(&configured, |lines| {
        lines.iter().any(|line| line["return"] == "published")
    });
}

#[test]
fn returns_wait_in_the_spool_while_the_store_is_away_and_arrive_once_in_order_across_a_restart() {
    let dir = tempfile::tempdir().unwrap();
    // The store is a directory that does not exist yet: writes fail as a database that is
    // down does, until it is created.
    let away = dir.path().join("away");
    let events = away.join("events");
    let mut lab = Lab::with_config(
        &format!(
            "event_return: rawfile_json\nrawfile_json.filename: {}\nevent_return_whitelist: ['myco/*']\n",
            events.display()
        ),
        "",
    );
    lab.start_master();
    for n in 0..30 {
        fire(&lab, &format!("myco/{n}"), "{}");
    }
    let stats = |lab: &Lab| {
        let output = lab.run("salt-run", &["ret.stats", "--out=json"]);
        assert!(output.status.success(), "{}", stderr(&output));
        let value: serde_json::Value = serde_json::from_str(&stdout(&output)).unwrap();
        value["rawfile_json"].clone()
    };
    assert!(
        wait_until(Duration::from_secs(10), || stats(&lab)["spooled"] == 30),
        "{}",
        stats(&lab)
    );
    assert_eq!(stats(&lab)["stored"], 0);
    // Stopped with its store away: the spool stays for the next master.
    let (status, _) = lab.take_daemon().stop();
    assert!(status.success(), "{status:?}");
    std::fs::create_dir_all(&away).unwrap();
    lab.start_master();
    for n in 30..40 {
        fire(&lab, &format!("myco/{n}"), "{}");
    }
    let found = wait_for_lines(&events, |lines| lines.len() >= 40);
    let tags: Vec<&str> = found
        .iter()
        .filter_map(|line| line["tag"].as_str())
        .collect();
    let expected: Vec<String> = (0..40).map(|n| format!("myco/{n}")).collect();
    assert_eq!(tags, expected);
    assert_eq!(stats(&lab)["dropped"], 0);
    let log = lab.log("master");
    assert!(
        log.contains("keeping what it could not store in its spool"),
        "{log}"
    );
}

#[test]
fn a_master_refuses_to_start_with_a_returner_it_does_not_have() {
    let lab = Lab::with_config("event_return: [rawfile_json, nosuch]\n", "");
    let output = lab.cmd("salt-master").output().expect("run salt-master");
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(
        err.contains("event_return") && err.contains("no returner named nosuch"),
        "{err}"
    );
}

#[test]
fn jobs_and_returns_go_to_the_master_job_cache_and_the_runners_read_them_back() {
    let dir = tempfile::tempdir().unwrap();
    let database = dir.path().join("salt.sqlite");
    let mut lab = Lab::with_config(
        &format!(
            "master_job_cache: sqlite3\nsqlite3.database: {}\n",
            database.display()
        ),
        "",
    );
    start(&mut lab);
    let output = lab.run("salt", &[MINION_ID, "test.echo", "kept", "--show-jid"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let jid = stdout(&output)
        .lines()
        .find_map(|line| line.strip_prefix("jid: "))
        .unwrap()
        .to_owned();
    let run = |args: &[&str]| -> serde_json::Value {
        let output = lab.run("salt-run", args);
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
        serde_json::from_str(&stdout(&output)).unwrap()
    };
    assert!(wait_until(Duration::from_secs(10), || {
        run(&["jobs.lookup_jid", &jid, "--out=json"])[MINION_ID] == "kept"
    }));
    let job = run(&["jobs.list_job", &jid, "--out=json"]);
    assert_eq!(job["jid"], jid.as_str());
    assert_eq!(job["Function"], "test.echo");
    assert_eq!(job["Result"][MINION_ID]["return"], "kept");
    let printed = run(&["jobs.print_job", &jid, "--out=json"]);
    assert_eq!(printed[jid.as_str()]["Result"][MINION_ID]["return"], "kept");
    assert!(run(&["jobs.list_jobs", "--out=json"])[jid.as_str()]["Function"] == "test.echo");
    let stored = run(&["ret.get_jid", "sqlite3", &jid, "--out=json"]);
    assert_eq!(stored[MINION_ID]["return"], "kept");
    let minions = run(&["ret.get_minions", "sqlite3", "--out=json"]);
    assert_eq!(minions, serde_json::json!([MINION_ID]));
    let output = lab.run("salt-run", &["ret.get_jid", "rawfile_json", &jid]);
    assert!(
        stderr(&output).contains("'rawfile_json.get_jid' is not available")
            || stdout(&output).contains("'rawfile_json.get_jid' is not available"),
        "{}{}",
        stdout(&output),
        stderr(&output)
    );
}
