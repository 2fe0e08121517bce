//! Fleet commands against three minions: node groups, batches and the `manage` runners, with
//! Salt 3007.8's output for the same commands (captured 2026-12-03 on this machine kind with
//! three minions, `minion1`…`minion3`, and these node groups).

use std::time::{Duration, Instant};

use crate::support::{Cluster, returned_ids, stderr, stdout};

const NODEGROUPS: &str = "nodegroups:\n  web: minion1 or minion2\n  pair: [minion2, minion3]\n  nested: N@web and not minion1\n  dangling: N@nosuch\n";

/// A master (with the cluster's short waits: a minion that is down costs `timeout` +
/// `gather_job_timeout`) and three minions.
fn fleet() -> Cluster {
    Cluster::with_minions(
        &format!("auto_accept: True\n{NODEGROUPS}"),
        &["minion1", "minion2", "minion3"],
    )
}

/// The minions that returned in a `salt` run's nested output, sorted.
fn returned(cluster: &Cluster, args: &[&str]) -> Vec<String> {
    let output = cluster.run("salt", args);
    assert!(output.status.success(), "{args:?}: {}", stderr(&output));
    returned_ids(&stdout(&output))
}

fn without_jids(text: &str) -> String {
    regex::Regex::new(r"\b\d{20}\b")
        .unwrap()
        .replace_all(text, "JID")
        .into_owned()
}

/// One minion's return in `salt --batch`'s nested output.
fn batch_return(id: &str) -> String {
    format!("jid:\n    JID\n{id}:\n    True\nretcode:\n    0\n")
}

#[test]
fn node_groups_select_minions_as_salts_do() {
    let cluster = fleet();
    // Salt 3007.8 returned the same minions for each of these.
    assert_eq!(
        returned(&cluster, &["-N", "web", "test.ping"]),
        ["minion1", "minion2"]
    );
    assert_eq!(
        returned(&cluster, &["-N", "pair", "test.ping"]),
        ["minion2", "minion3"]
    );
    assert_eq!(
        returned(&cluster, &["-N", "nested", "test.ping"]),
        ["minion2"]
    );
    assert_eq!(
        returned(&cluster, &["-C", "N@pair and not minion3", "test.ping"]),
        ["minion2"]
    );
    // Salt writes `N@web` out unparenthesized here, which makes this `minion1 or (minion2
    // and not minion1)`; halite keeps the group's precedence.
    assert_eq!(
        returned(&cluster, &["-C", "N@web and not minion1", "test.ping"]),
        ["minion2"]
    );
    // The job went out as the compound target the group stands for, as Salt's does.
    let jobs = cluster.run("salt-run", &["jobs.list_jobs", "--out=json"]);
    let jobs: serde_json::Value = serde_json::from_str(&stdout(&jobs)).unwrap();
    assert!(
        jobs.as_object().unwrap().values().any(|job| {
            job["Target"] == "L@minion2,minion3" && job["Target-type"] == "compound"
        }),
        "{jobs}"
    );
    // Salt prints this and exits 0; halite says what to do and fails.
    let unknown = cluster.run("salt", &["-N", "nosuch", "test.ping"]);
    assert_eq!(unknown.status.code(), Some(1));
    let master_file = cluster.etc().join("master");
    assert!(
        stderr(&unknown).contains(&format!(
            "Node group nosuch unavailable in {}: define it under nodegroups",
            master_file.display()
        )),
        "{}",
        stderr(&unknown)
    );
    let dangling = cluster.run("salt", &["-N", "dangling", "test.ping"]);
    assert_eq!(dangling.status.code(), Some(1));
    assert!(
        stderr(&dangling).contains("nodegroup dangling in")
            && stderr(&dangling).contains("it names N@nosuch, which is not in nodegroups"),
        "{}",
        stderr(&dangling)
    );
    // Runners take node groups too.
    let status = cluster.run(
        "salt-run",
        &["manage.status", "tgt=web", "tgt_type=nodegroup"],
    );
    assert_eq!(
        stdout(&status),
        "down:\nup:\n    - minion1\n    - minion2\n"
    );
}

#[test]
fn batches_run_a_few_minions_at_a_time_with_salts_output() {
    let mut cluster = fleet();
    let output = cluster.run("salt", &["*", "test.ping", "-b", "2"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = without_jids(&stdout(&output));
    // Salt 3007.8 (which picks the minions of each batch in no particular order):
    // "\nExecuting run on ['minion2', 'minion3']\n\njid:\n    JID\nminion2:\n    True\n…";
    // the third minion takes the place of the first to return.
    assert!(
        text.starts_with("\nExecuting run on ['minion1', 'minion2']\n\njid:\n"),
        "{text}"
    );
    let (first, _) = text
        .split_once("\nExecuting run on ['minion3']\n\n")
        .unwrap_or_else(|| panic!("{text}"));
    assert!(
        first.contains(&batch_return("minion1")) || first.contains(&batch_return("minion2")),
        "{text}"
    );
    for id in ["minion1", "minion2", "minion3"] {
        assert_eq!(text.matches(&batch_return(id)).count(), 1, "{text}");
    }
    assert_eq!(text.matches("Executing run on").count(), 2, "{text}");

    // One at a time: three jobs, each its own jid; 50% of three is one, as in Salt.
    let output = cluster.run("salt", &["*", "test.ping", "-b", "50%", "--out=json"]);
    let text = stdout(&output);
    assert_eq!(text.matches("Executing run on").count(), 3, "{text}");
    let jids: std::collections::BTreeSet<&str> = regex::Regex::new(r#""jid": "(\d{20})""#)
        .unwrap()
        .captures_iter(&text)
        .map(|c| c.get(1).unwrap().as_str())
        .collect();
    assert_eq!(jids.len(), 3, "{text}");
    assert!(
        text.contains("{\n    \"retcode\": 0,\n    \"jid\": \""),
        "Salt's key order in JSON: {text}"
    );

    // -v and --show-jid add nothing, as in Salt 3007.8: each return shows its jid already.
    let output = cluster.run("salt", &["*", "test.ping", "-b", "3", "-v", "--show-jid"]);
    assert!(output.status.success(), "{}", stderr(&output));
    let text = without_jids(&stdout(&output));
    assert!(
        text.starts_with("\nExecuting run on ['minion1', 'minion2', 'minion3']\n\njid:\n"),
        "{text}"
    );
    for id in ["minion1", "minion2", "minion3"] {
        assert_eq!(text.matches(&batch_return(id)).count(), 1, "{text}");
    }
    assert!(
        !text.contains("Executing job") && !text.contains("jid: "),
        "{text}"
    );

    // --batch-wait: each minion's place stays empty for a second after it returns.
    let started = Instant::now();
    let waited = cluster.run("salt", &["*", "test.ping", "-b", "1", "--batch-wait", "1"]);
    assert!(waited.status.success(), "{}", stderr(&waited));
    assert!(
        started.elapsed() >= Duration::from_secs(2),
        "{:?}",
        started.elapsed()
    );

    // --static: every return in one document at the end.
    let together = cluster.run(
        "salt",
        &["*", "test.ping", "-b", "2", "--static", "--out=json"],
    );
    let together: serde_json::Value = serde_json::from_str(&stdout(&together)).unwrap();
    assert_eq!(
        together,
        serde_json::json!({"minion1": true, "minion2": true, "minion3": true})
    );

    // The exit code is the highest retcode; --failhard stops at the first failure.
    let failing = ["*", "cmd.run", "exit 3", "python_shell=True", "-b", "1"];
    let output = cluster.run("salt", &failing);
    assert_eq!(output.status.code(), Some(3), "{}", stdout(&output));
    assert_eq!(stdout(&output).matches("Executing run on").count(), 3);
    let output = cluster.run("salt", &[&failing[..], &["--failhard"]].concat());
    assert_eq!(output.status.code(), Some(3), "{}", stdout(&output));
    assert_eq!(stdout(&output).matches("Executing run on").count(), 1);

    // Output that fails stops the batch: no job goes to minions nobody would hear from.
    let full = cluster.run(
        "salt",
        &[
            "*",
            "test.echo",
            "unseen",
            "-b",
            "1",
            "--out-file",
            "/dev/full",
        ],
    );
    assert_eq!(full.status.code(), Some(1), "{}", stderr(&full));
    let jobs = cluster.run("salt-run", &["jobs.list_jobs", "--out=json"]);
    let jobs: serde_json::Value = serde_json::from_str(&stdout(&jobs)).unwrap();
    let echoes = jobs
        .as_object()
        .unwrap()
        .values()
        .filter(|job| job["Function"] == "test.echo")
        .count();
    assert_eq!(echoes, 1, "{jobs}");

    // Sizes that cannot be: Salt crashes on `x` and never ends on 0.
    for bad in ["x", "0", "-2"] {
        let output = cluster.run("salt", &["*", "test.ping", "-b", bad]);
        assert_eq!(output.status.code(), Some(2), "{bad}");
        assert!(
            stderr(&output).contains("give a number of minions above 0"),
            "{bad}: {}",
            stderr(&output)
        );
    }
    let nobody = cluster.run("salt", &["nomatch*", "test.ping", "-b", "1"]);
    assert_eq!(
        stdout(&nobody),
        "No minions matched the target. No command was sent, no jid was assigned.\nNo minions matched the target.\n"
    );
    assert_eq!(nobody.status.code(), Some(2));

    // A minion that does not answer the ping gets no job, as Salt says.
    cluster.take_minion("minion3").stop();
    let output = cluster.run("salt", &["*", "test.ping", "-b", "2"]);
    assert!(output.status.success(), "{}", stderr(&output));
    assert!(
        stdout(&output).starts_with(
            "Minion minion3 did not respond. No job will be sent.\n\nExecuting run on ['minion1', 'minion2']\n\n"
        ),
        "{}",
        stdout(&output)
    );
}

#[test]
fn manage_runners_report_up_down_present_and_versions_as_salts_do() {
    let mut cluster = fleet();
    let run = |cluster: &Cluster, args: &[&str]| {
        let output = cluster.run("salt-run", args);
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
        stdout(&output)
    };
    let all = "- minion1\n- minion2\n- minion3\n";
    // Salt 3007.8, the same three minions up:
    assert_eq!(
        run(&cluster, &["manage.status"]),
        "down:\nup:\n    - minion1\n    - minion2\n    - minion3\n"
    );
    assert_eq!(run(&cluster, &["manage.up"]), all);
    assert_eq!(run(&cluster, &["manage.down"]), "");
    assert_eq!(run(&cluster, &["manage.present"]), all);
    assert_eq!(run(&cluster, &["manage.alived"]), all);
    assert_eq!(run(&cluster, &["manage.not_present"]), "");
    assert_eq!(
        run(&cluster, &["manage.list_state", "subset=[minion1]"]),
        "- minion1\n"
    );
    // Salt shows the address minions connect from, as seen by the master.
    assert_eq!(
        run(&cluster, &["manage.present", "show_ip=True"]),
        "minion1:\n    127.0.0.1\nminion2:\n    127.0.0.1\nminion3:\n    127.0.0.1\n"
    );
    let version = env!("CARGO_PKG_VERSION");
    assert_eq!(
        run(&cluster, &["manage.versions"]),
        format!(
            "Master:\n    {version}\nUp to date:\n    ----------\n    minion1:\n        {version}\n    minion2:\n        {version}\n    minion3:\n        {version}\n"
        )
    );

    cluster.take_minion("minion3").stop();
    assert_eq!(
        run(&cluster, &["manage.status"]),
        "down:\n    - minion3\nup:\n    - minion1\n    - minion2\n"
    );
    assert_eq!(
        run(&cluster, &["manage.status", "--out=json"]),
        "{\n    \"up\": [\n        \"minion1\",\n        \"minion2\"\n    ],\n    \"down\": [\n        \"minion3\"\n    ]\n}\n"
    );
    // Salt's presence, read from TCP connections, still listed minion3 here; halite's
    // master knows its sessions.
    assert_eq!(run(&cluster, &["manage.present"]), "- minion1\n- minion2\n");
    assert_eq!(run(&cluster, &["manage.not_present"]), "- minion3\n");
    assert_eq!(run(&cluster, &["manage.not_alived"]), "- minion3\n");
    assert_eq!(
        run(&cluster, &["manage.versions"]),
        format!(
            "Master:\n    {version}\nMinion offline:\n    ----------\n    minion3:\n        False\nUp to date:\n    ----------\n    minion1:\n        {version}\n    minion2:\n        {version}\n"
        )
    );
    // removekeys: the down minion's key is deleted, announced as wheel.key.delete does.
    let watcher = cluster.watch();
    assert_eq!(
        run(&cluster, &["manage.down", "removekeys=True"]),
        "- minion3\n"
    );
    let deleted = watcher.expect("salt/key", Duration::from_secs(10));
    assert!(
        deleted.contains(r#""act": "delete", "id": "minion3""#),
        "{deleted}"
    );
    let keys = cluster.run("salt-key", &["-L"]);
    assert!(!stdout(&keys).contains("minion3"), "{}", stdout(&keys));

    // Bad arguments are the runner's error, in one line.
    let bad = cluster.run("salt-run", &["manage.status", "timeout=soon"]);
    assert_ne!(bad.status.code(), Some(0));
    assert!(
        stderr(&bad).contains("timeout=soon: give a number of seconds"),
        "{}",
        stderr(&bad)
    );
}

/// A master whose `pillar_roots` (`<cluster>/pillar`) hold `files` (name, text), and the
/// minions `ids`, all connected.
fn with_pillar(files: &[(&str, &str)], ids: &[&str]) -> Cluster {
    let mut cluster = Cluster::new("auto_accept: True\n");
    let roots = cluster.path().join("pillar");
    std::fs::create_dir_all(&roots).unwrap();
    for (name, text) in files {
        std::fs::write(roots.join(name), text).unwrap();
    }
    cluster.edit_master_config(
        "auto_accept: True\n",
        &format!(
            "auto_accept: True\npillar_roots:\n  base:\n    - {}\n",
            roots.display()
        ),
    );
    cluster.start_master();
    for id in ids {
        cluster.start_minion(id, "");
    }
    cluster.wait_connected(ids);
    cluster
}

/// `salt ARGS` matched no minion: the master's view of the minions' pillar selected none.
fn matched_none(cluster: &Cluster, args: &[&str]) {
    let output = cluster.run("salt", args);
    assert_eq!(
        output.status.code(),
        Some(2),
        "{args:?}: {}",
        stdout(&output)
    );
    assert!(
        stdout(&output).starts_with("No minions matched the target."),
        "{args:?}: {}",
        stdout(&output)
    );
}

#[test]
fn pillar_and_address_targets_select_minions_as_salts_do() {
    let cluster = with_pillar(
        &[
            (
                "top.sls",
                "base:\n  'minion[12]':\n    - web\n  minion3:\n    - db\n",
            ),
            ("web.sls", "role: web\nsite: {name: par1}\n"),
            ("db.sls", "role: db\nsite: {name: lon2}\n"),
        ],
        &["minion1", "minion2", "minion3"],
    );
    // The master knows no pillar and sends the job to all; each minion matches its own.
    assert_eq!(
        returned(&cluster, &["-I", "role:web", "test.ping"]),
        ["minion1", "minion2"]
    );
    assert_eq!(
        returned(&cluster, &["-J", "site:name:^lon", "test.ping"]),
        ["minion3"]
    );
    assert_eq!(
        returned(&cluster, &["-C", "I@role:web and not minion1", "test.ping"]),
        ["minion2"]
    );
    // Every minion here connects from loopback, which its ipv4 grain lists.
    assert_eq!(
        returned(&cluster, &["-S", "127.0.0.0/8", "test.ping"]),
        ["minion1", "minion2", "minion3"]
    );
    assert_eq!(
        returned(&cluster, &["-C", "S@127.0.0.1 and J@role:d.", "test.ping"]),
        ["minion3"]
    );
    let nobody = cluster.run("salt", &["-S", "198.51.100.0/24", "test.ping"]);
    assert_eq!(nobody.status.code(), Some(2), "{}", stdout(&nobody));
    let bad = cluster.run("salt", &["-S", "10.0.0.1/8", "test.ping"]);
    assert_eq!(bad.status.code(), Some(1));
    assert!(
        stderr(&bad).contains("10.0.0.1/8 is not an IP address or network"),
        "{}",
        stderr(&bad)
    );
}

#[test]
fn pillar_targets_match_the_pillar_of_the_last_refresh() {
    let cluster = with_pillar(
        &[
            ("top.sls", "base:\n  minion1: [app]\n  minion2: [other]\n"),
            ("app.sls", "tier: blue\n"),
            ("other.sls", "tier: red\n"),
        ],
        &["minion1", "minion2"],
    );
    assert_eq!(
        returned(&cluster, &["-I", "tier:blue", "test.ping"]),
        ["minion1"]
    );
    // A changed pillar file is not what minion1 holds until its pillar is refreshed, as with
    // Salt: the master, which remembers what it sent, targets the pillar minion1 holds.
    std::fs::write(cluster.path().join("pillar/app.sls"), "tier: green\n").unwrap();
    matched_none(&cluster, &["-I", "tier:green", "test.ping"]);
    let refreshed = cluster.run("salt", &["*", "saltutil.refresh_pillar"]);
    assert!(refreshed.status.success(), "{}", stderr(&refreshed));
    let said = stdout(&refreshed);
    assert_eq!(returned_ids(&said), ["minion1", "minion2"]);
    assert_eq!(said.matches(":\n    True\n").count(), 2, "{said}");
    // The refresh fetched the new pillar before it answered, so the master knows it at once.
    assert_eq!(
        returned(&cluster, &["-I", "tier:green", "test.ping"]),
        ["minion1"]
    );
    matched_none(&cluster, &["-I", "tier:blue", "test.ping"]);
    assert_eq!(
        returned(&cluster, &["-C", "I@tier:green or I@tier:red", "test.ping"]),
        ["minion1", "minion2"]
    );
    // A pillar call fetches the pillar afresh too, and the master's view follows it.
    std::fs::write(cluster.path().join("pillar/app.sls"), "tier: gold\n").unwrap();
    assert_eq!(
        returned(&cluster, &["minion1", "pillar.get", "tier"]),
        ["minion1"]
    );
    assert_eq!(
        returned(&cluster, &["-I", "tier:gold", "test.ping"]),
        ["minion1"]
    );
    matched_none(&cluster, &["-I", "tier:green", "test.ping"]);
}

#[test]
fn a_deeply_nested_compound_target_is_refused_and_the_master_lives_on() {
    let cluster = Cluster::with_minions("auto_accept: True\n", &["minion1"]);
    let deep = format!("{}minion1{}", "( ".repeat(30_000), " )".repeat(30_000));
    let output = cluster.run("salt", &["-C", &deep, "test.ping"]);
    assert!(!output.status.success());
    let err = stderr(&output);
    assert!(err.contains("nest deeper than 100"), "{err}");
    assert_eq!(err.trim().lines().count(), 1, "{err}");
    assert_eq!(returned(&cluster, &["minion1", "test.ping"]), ["minion1"]);
}

#[test]
fn batches_stop_on_silent_minions_and_lists_report_unknown_ids_as_salt_does() {
    let cluster = fleet();
    // A listed id the master has no key for: Salt 3007.8 reports it as not returning, exit 1.
    let output = cluster.run("salt", &["-L", "minion1,nosuch", "test.ping"]);
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    let text = stdout(&output);
    assert!(
        text.starts_with("minion1:\n    True\nnosuch:\n    Minion did not return. [No response]\n"),
        "{text}"
    );
    assert!(text.contains("salt-run jobs.lookup_jid "), "{text}");
    let output = cluster.run(
        "salt",
        &[
            "-L",
            "minion1,nosuch",
            "test.ping",
            "--out=json",
            "--hide-timeout",
        ],
    );
    assert_eq!(output.status.code(), Some(1), "{}", stderr(&output));
    assert!(
        stdout(&output).contains("\"nosuch\": \"Minion did not return. [No response]"),
        "{}",
        stdout(&output)
    );

    // --failhard: a minion that fails to respond to its job stops the batch, as in Salt.
    let minion1 = cluster.minion_pid("minion1");
    let mut salt = cluster.cmd("salt");
    salt.args(["*", "test.sleep", "3", "-b", "1", "--failhard"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped());
    let child = salt.spawn().unwrap();
    std::thread::sleep(Duration::from_millis(1000));
    let stop = |signal| {
        nix::sys::signal::kill(nix::unistd::Pid::from_raw(minion1 as i32), signal).unwrap()
    };
    stop(nix::sys::signal::Signal::SIGSTOP);
    let output = crate::support::wait_output(child, Duration::from_secs(60));
    stop(nix::sys::signal::Signal::SIGCONT);
    let text = stdout(&output);
    assert!(
        text.contains("Minion 'minion1' failed to respond to job sent"),
        "{text}"
    );
    assert_eq!(text.matches("Executing run on").count(), 1, "{text}");

    // --static with no minion answering: the empty document (nothing, as nested; `{}` as
    // JSON), then Salt's error, exit 2.
    stop(nix::sys::signal::Signal::SIGSTOP);
    let static_run = ["-L", "minion1", "test.ping", "-b", "1", "--static"];
    let nested = cluster.run("salt", &static_run);
    let json = cluster.run("salt", &[&static_run[..], &["--out=json"]].concat());
    stop(nix::sys::signal::Signal::SIGCONT);
    for (output, printed) in [(nested, ""), (json, "{}\n")] {
        assert_eq!(output.status.code(), Some(2), "{}", stderr(&output));
        assert_eq!(stdout(&output), printed);
        assert_eq!(stderr(&output), "ERROR: No return received\n");
    }
}

/// What `salt` printed and how it ended, jids written `JID`.
fn outcome(output: &std::process::Output) -> (Option<i32>, String, String) {
    (
        output.status.code(),
        without_jids(&stdout(output)),
        stderr(output),
    )
}

#[test]
fn silent_and_failing_minions_print_and_exit_as_salt_does() {
    // Salt 3007.8, measured 2026-12-04 with `minion1` answering and an accepted `minion3`
    // that does not (`-t 3`); rows marked `differs` are halite's, Salt's is beside them and in
    // README "Where halite differs from Salt".
    const ERR: &str = "ERROR: Minions returned with non-zero exit code\n";
    const NONE: &str = "ERROR: No return received\n";
    const LATER: &str = "The minions may not have all finished running and any remaining minions will return upon completion. To look up the return data for this job later, run the following command:";
    let nested_silent = format!(
        "minion3:\n    Minion did not return. [No response]\n    {LATER}\n    \n    salt-run jobs.lookup_jid JID\n"
    );
    let json_silent = format!(
        "{{\n    \"minion3\": \"Minion did not return. [No response]\\n{LATER}\\n\\nsalt-run jobs.lookup_jid JID\"\n}}\n"
    );
    let one = "minion1:\n    True\n";
    let one_json = "{\n    \"minion1\": true\n}\n";
    let batch_one =
        "\nExecuting run on ['minion1']\n\njid:\n    JID\nminion1:\n    True\nretcode:\n    0\n";
    let down = "Minion minion3 did not respond. No job will be sent.\n";
    let both = ["-L", "minion1,minion3", "test.ping", "-t", "1"];
    let silent = ["minion3", "test.ping", "-t", "1"];
    let with = |base: &[&'static str], extra: &[&'static str]| [base, extra].concat();
    let silent_cases: Vec<(Vec<&str>, i32, String, &str)> = vec![
        (with(&both, &[]), 1, format!("{one}{nested_silent}"), ERR),
        (
            with(&both, &["--out=json"]),
            1,
            format!("{one_json}{json_silent}"),
            ERR,
        ),
        (with(&both, &["--hide-timeout"]), 0, one.into(), ""),
        (
            with(&both, &["--hide-timeout", "--out=json"]),
            0,
            one_json.into(),
            "",
        ),
        // --static is Salt's quiet batch: a minion that misses the ping is left out.
        (with(&both, &["--static"]), 0, one.into(), ""),
        (
            with(&both, &["--static", "--out=json"]),
            0,
            one_json.into(),
            "",
        ),
        (
            with(&both, &["--static", "--hide-timeout"]),
            0,
            one.into(),
            "",
        ),
        (with(&both, &["-b", "2", "--static"]), 0, one.into(), ""),
        (
            with(&both, &["-b", "2", "--static", "--out=json"]),
            0,
            one_json.into(),
            "",
        ),
        (
            with(&both, &["-b", "2"]),
            0,
            format!("{down}{batch_one}"),
            "",
        ),
        (
            with(&both, &["-b", "2", "--hide-timeout"]),
            0,
            format!("{down}{batch_one}"),
            "",
        ),
        (with(&silent, &[]), 1, nested_silent.clone(), ERR),
        // differs: Salt prints nothing and exits 0.
        (with(&silent, &["--hide-timeout"]), 2, String::new(), NONE),
        (with(&silent, &["--static"]), 2, String::new(), NONE),
        (
            with(&silent, &["--static", "--out=json"]),
            2,
            "{}\n".into(),
            NONE,
        ),
        // differs: Salt prints nothing and exits 0.
        (with(&silent, &["-b", "2"]), 2, down.into(), NONE),
    ];
    let cluster = fleet();
    let minion3 = nix::unistd::Pid::from_raw(cluster.minion_pid("minion3") as i32);
    for (args, code, out, err) in &silent_cases {
        // Stopped, not gone: its session stays up, so it is silent rather than not connected.
        nix::sys::signal::kill(minion3, nix::sys::signal::Signal::SIGSTOP).unwrap();
        let output = cluster.run("salt", args);
        nix::sys::signal::kill(minion3, nix::sys::signal::Signal::SIGCONT).unwrap();
        assert_eq!(
            outcome(&output),
            (Some(*code), out.clone(), err.to_string()),
            "salt {args:?}"
        );
    }

    let retcode = ["minion1", "test.retcode", "3"];
    let failing_cases: Vec<(Vec<&str>, i32, String, &str)> = vec![
        (with(&retcode, &[]), 1, one.into(), ERR),
        (with(&retcode, &["--out=json"]), 1, one_json.into(), ERR),
        (
            vec!["minion1", "cmd.retcode", "exit 3", "python_shell=True"],
            1,
            "minion1:\n    3\n".into(),
            ERR,
        ),
        // differs: Salt's --static exits 0 whatever the retcodes.
        (with(&retcode, &["--static"]), 3, one.into(), ""),
        (with(&retcode, &["--static", "--out=json"]), 3, one_json.into(), ""),
        (with(&retcode, &["-b", "2", "--static"]), 3, one.into(), ""),
        (
            with(&retcode, &["-b", "2"]),
            3,
            batch_one.replace("retcode:\n    0", "retcode:\n    3"),
            "",
        ),
        (
            with(&retcode, &["-b", "2", "--out=json"]),
            3,
            "\nExecuting run on ['minion1']\n\n{\n    \"retcode\": 3,\n    \"jid\": \"JID\",\n    \"minion1\": true\n}\n".into(),
            "",
        ),
    ];
    for (args, code, out, err) in &failing_cases {
        let output = cluster.run("salt", args);
        assert_eq!(
            outcome(&output),
            (Some(*code), out.clone(), err.to_string()),
            "salt {args:?}"
        );
    }
}
