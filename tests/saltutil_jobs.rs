//! `saltutil.kill_job`, `saltutil.term_job` and `saltutil.signal_job` on a cluster of three
//! minions: a job started on all of them is ended on each, its command's processes with it, and
//! nothing of it is left for `saltutil.running` or the master.

use std::collections::HashMap;
use std::time::Duration;

use serde_json::{Value, json};

use crate::support::{Cluster, stderr, stdout, wait_until};

const WAIT: Duration = Duration::from_secs(10);

/// Salt 3007.8's answers, captured on 2026-12-03 with tests/salt_lab.py (one master, minion
/// `minion1`, a job `cmd.run 'sh -c "sleep 61.4321; echo done"'`); `JID` and `PID` stand for the
/// job's jid and the pid `saltutil.running` shows for it.
mod salt {
    /// `saltutil.kill_job JID` while the job runs.
    pub const KILLED: &str = "Signal 9 sent to job JID at pid PID";
    /// `saltutil.term_job JID` while the job runs.
    pub const TERMINATED: &str = "Signal 15 sent to job JID at pid PID";
    /// `saltutil.signal_job JID 19`, then `18`: the job stays, stopped and then continued.
    pub const STOPPED: &str = "Signal 19 sent to job JID at pid PID";
    /// `saltutil.signal_job JID 10`: SIGUSR1 ends a job as it ends a process.
    pub const USR1: &str = "Signal 10 sent to job JID at pid PID";
    /// `salt --out=json minion1 saltutil.kill_job JID` once the job is gone; term_job and
    /// signal_job (whatever the signal) answer the same.
    pub const GONE_JSON: &str = "{\n    \"minion1\": \"\"\n}\n";
    /// `salt --out=json minion1 saltutil.running` after the kill.
    pub const NOTHING_RUNNING_JSON: &str = "{\n    \"minion1\": []\n}\n";
    /// `salt minion1 saltutil.kill_job` (Salt adds the function's docstring after it).
    pub const NO_JID: &str = "Passed invalid arguments to saltutil.kill_job: kill_job() missing 1 required positional argument: 'jid'";
    /// `salt minion1 cmd.run …` waiting while the job was ended (exit status 1).
    pub const WAITER: &str = "minion1:\n    Minion did not return. [No response]\n    The minions may not have all finished running and any remaining minions will return upon completion. To look up the return data for this job later, run the following command:\n    \n    salt-run jobs.lookup_jid JID\n";
    pub const WAITER_STDERR: &str = "ERROR: Minions returned with non-zero exit code\n";
}

/// Salt's text for minion `id` and the job `jid` run by `pid`.
fn salts(text: &str, id: &str, jid: &str, pid: u32) -> String {
    text.replace("minion1", id)
        .replace("JID", jid)
        .replace("PID", &pid.to_string())
}

/// Every process: its parent and its state letter (`/proc/PID/stat`).
fn processes() -> HashMap<u32, (u32, char)> {
    let mut table = HashMap::new();
    for entry in std::fs::read_dir("/proc").unwrap().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        let Ok(stat) = std::fs::read_to_string(entry.path().join("stat")) else {
            continue;
        };
        // The command name may hold spaces and parentheses: the fields start after the last ')'.
        let mut fields = stat[stat.rfind(')').unwrap() + 2..].split(' ');
        let state = fields.next().unwrap().chars().next().unwrap();
        let ppid = fields.next().unwrap().parse().unwrap();
        table.insert(pid, (ppid, state));
    }
    table
}

/// The processes under `root` (children, theirs, …) whose command line holds `marker`.
fn commands_under(root: u32, marker: &str) -> Vec<u32> {
    let table = processes();
    let under = |mut pid: u32| {
        while let Some(&(ppid, _)) = table.get(&pid) {
            if ppid == root {
                return true;
            }
            pid = ppid;
        }
        false
    };
    let mut found: Vec<u32> = table
        .keys()
        .copied()
        .filter(|pid| under(*pid))
        .filter(|pid| {
            std::fs::read(format!("/proc/{pid}/cmdline"))
                .is_ok_and(|line| String::from_utf8_lossy(&line).contains(marker))
        })
        .collect();
    found.sort();
    found
}

/// The state letter of each of `pids` still alive (a zombie is dead).
fn alive(pids: &[u32]) -> Vec<(u32, char)> {
    let table = processes();
    pids.iter()
        .filter_map(|pid| table.get(pid).map(|&(_, state)| (*pid, state)))
        .filter(|(_, state)| *state != 'Z')
        .collect()
}

/// `salt ARGS --out=json`: the minions' documents, one map.
fn json_out(cluster: &Cluster, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["--out=json", "-t", "10"]);
    let output = cluster.run("salt", &all);
    let text = stdout(&output);
    let mut merged = serde_json::Map::new();
    for document in serde_json::Deserializer::from_str(&text).into_iter::<Value>() {
        let document = document.unwrap_or_else(|err| panic!("{err}: {text}{}", stderr(&output)));
        merged.extend(document.as_object().cloned().unwrap_or_default());
    }
    Value::Object(merged)
}

/// The jids `saltutil.running` lists on each minion.
fn running_jids(cluster: &Cluster, target: &str) -> HashMap<String, Vec<String>> {
    let answer = json_out(cluster, &[target, "saltutil.running"]);
    answer
        .as_object()
        .unwrap()
        .iter()
        .map(|(id, jobs)| {
            let jids = jobs
                .as_array()
                .unwrap_or_else(|| panic!("{id}: {jobs}"))
                .iter()
                .map(|job| job["jid"].as_str().unwrap().to_owned())
                .collect();
            (id.clone(), jids)
        })
        .collect()
}

#[test]
fn kill_term_and_signal_end_a_job_and_its_commands_on_each_minion() {
    let ids = ["m1", "m2", "m3"];
    let cluster = Cluster::with_minions("auto_accept: True\n", &ids);
    // A duration no other process has: the job's sleep and the shell around it carry it.
    let marker = format!("61.{}", std::process::id());
    let script = format!("sh -c \"sleep {marker}; echo done\"");
    let started = cluster.run("salt", &["--async", "*", "cmd.run", &script]);
    let text = stdout(&started);
    let jid = text
        .strip_prefix("Executed command with job ID: ")
        .unwrap_or_else(|| panic!("{text}{}", stderr(&started)))
        .trim()
        .to_owned();
    let pid: HashMap<&str, u32> = ids.iter().map(|id| (*id, cluster.minion_pid(id))).collect();
    let mut commands = HashMap::new();
    for id in ids {
        assert!(
            wait_until(WAIT, || commands_under(pid[id], &marker).len() == 2),
            "{id} runs no sh and sleep: {:?}",
            commands_under(pid[id], &marker)
        );
        commands.insert(id, commands_under(pid[id], &marker));
    }
    let listed = running_jids(&cluster, "*");
    for id in ids {
        assert_eq!(
            listed[id],
            std::slice::from_ref(&jid),
            "saltutil.running on {id}"
        );
    }

    // kill_job: the job and both processes at once.
    let killed = json_out(&cluster, &["m1", "saltutil.kill_job", &jid]);
    assert_eq!(
        killed,
        json!({"m1": salts(salt::KILLED, "m1", &jid, pid["m1"])})
    );
    assert!(
        wait_until(WAIT, || alive(&commands["m1"]).is_empty()),
        "{:?}",
        alive(&commands["m1"])
    );

    // term_job: SIGTERM, which sh and sleep do not catch.
    let terminated = json_out(&cluster, &["m2", "saltutil.term_job", &jid]);
    assert_eq!(
        terminated,
        json!({"m2": salts(salt::TERMINATED, "m2", &jid, pid["m2"])})
    );
    assert!(
        wait_until(WAIT, || alive(&commands["m2"]).is_empty()),
        "{:?}",
        alive(&commands["m2"])
    );

    // signal_job: SIGSTOP stops the commands and leaves the job listed; SIGUSR1 ends it.
    let stopped = json_out(&cluster, &["m3", "saltutil.signal_job", &jid, "19"]);
    assert_eq!(
        stopped,
        json!({"m3": salts(salt::STOPPED, "m3", &jid, pid["m3"])})
    );
    assert!(
        wait_until(WAIT, || alive(&commands["m3"])
            .iter()
            .all(|(_, state)| *state == 'T')),
        "{:?}",
        alive(&commands["m3"])
    );
    assert_eq!(
        running_jids(&cluster, "m3")["m3"],
        std::slice::from_ref(&jid)
    );
    let by_name = json_out(&cluster, &["m3", "saltutil.signal_job", &jid, "SIGCONT"]);
    assert_eq!(
        by_name,
        json!({"m3": format!("Signal 18 sent to job {jid} at pid {}", pid["m3"])})
    );
    let ended = json_out(&cluster, &["m3", "saltutil.signal_job", &jid, "10"]);
    assert_eq!(
        ended,
        json!({"m3": salts(salt::USR1, "m3", &jid, pid["m3"])})
    );
    assert!(
        wait_until(WAIT, || alive(&commands["m3"]).is_empty()),
        "{:?}",
        alive(&commands["m3"])
    );

    // Gone everywhere: not running, and asked again, the empty answer.
    let listed = running_jids(&cluster, "*");
    for id in ids {
        assert!(listed[id].is_empty(), "{id} still runs {:?}", listed[id]);
        for fun in ["saltutil.kill_job", "saltutil.term_job"] {
            let again = cluster.run("salt", &[id, fun, &jid, "--out=json"]);
            assert_eq!(stdout(&again), salts(salt::GONE_JSON, id, &jid, 0));
            assert!(again.status.success());
        }
        let again = cluster.run(
            "salt",
            &[id, "saltutil.signal_job", &jid, "9", "--out=json"],
        );
        assert_eq!(stdout(&again), salts(salt::GONE_JSON, id, &jid, 0));
    }
    let running = cluster.run("salt", &["m1", "saltutil.running", "--out=json"]);
    assert_eq!(
        stdout(&running),
        salts(salt::NOTHING_RUNNING_JSON, "m1", &jid, 0)
    );
    // No minion sent a return for the ended job.
    let lookup = cluster.run("salt-run", &["jobs.lookup_jid", &jid, "--out=json"]);
    assert_eq!(stdout(&lookup).trim(), "{}", "{}", stderr(&lookup));
}

#[test]
fn bad_arguments_get_salts_answer_shape() {
    let mut cluster = Cluster::new("auto_accept: True\n");
    cluster.start_master();
    cluster.start_minion("m1", "");
    cluster.wait_connected(&["m1"]);
    let output = cluster.run("salt", &["m1", "saltutil.kill_job"]);
    let text = stdout(&output);
    assert!(
        text.starts_with(&format!("m1:\n    {}", salt::NO_JID)),
        "{text}"
    );
    assert_eq!(output.status.code(), Some(1));
    // Salt refuses a signal it cannot send with its own arguments error.
    let started = cluster.run("salt", &["--async", "m1", "test.sleep", "30"]);
    let jid = stdout(&started)
        .rsplit(' ')
        .next()
        .unwrap()
        .trim()
        .to_owned();
    assert!(wait_until(WAIT, || running_jids(&cluster, "m1")["m1"] == [jid.clone()]));
    for bad in ["FOO", "999"] {
        let output = cluster.run("salt", &["m1", "saltutil.signal_job", &jid, bad]);
        assert!(
            stdout(&output)
                .starts_with("m1:\n    Passed invalid arguments to saltutil.signal_job: "),
            "{}",
            stdout(&output)
        );
        assert_eq!(output.status.code(), Some(1));
    }
    // The job was left alone.
    assert_eq!(
        running_jids(&cluster, "m1")["m1"],
        std::slice::from_ref(&jid)
    );
    // Signal 0 only asks whether the job is there.
    let asked = json_out(&cluster, &["m1", "saltutil.signal_job", &jid, "0"]);
    assert_eq!(
        asked,
        json!({"m1": format!("Signal 0 sent to job {jid} at pid {}", cluster.minion_pid("m1"))})
    );
    assert_eq!(running_jids(&cluster, "m1")["m1"], [jid]);
}

/// `salt` waiting for a job that is killed reports it as Salt does: no return, exit status 1.
#[test]
fn a_waiting_salt_reports_a_killed_job_as_not_returned() {
    let mut cluster = Cluster::new("auto_accept: True\n");
    cluster.start_master();
    cluster.start_minion("m1", "");
    cluster.wait_connected(&["m1"]);
    let waiter = cluster
        .cmd("salt")
        .args(["m1", "test.sleep", "60"])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let mut jid = String::new();
    assert!(wait_until(WAIT, || {
        jid = running_jids(&cluster, "m1")["m1"]
            .first()
            .cloned()
            .unwrap_or_default();
        !jid.is_empty()
    }));
    let killed = json_out(&cluster, &["m1", "saltutil.kill_job", &jid]);
    assert_eq!(
        killed,
        json!({"m1": salts(salt::KILLED, "m1", &jid, cluster.minion_pid("m1"))})
    );
    let output = waiter.wait_with_output().unwrap();
    assert_eq!(stdout(&output), salts(salt::WAITER, "m1", &jid, 0));
    assert_eq!(stderr(&output), salt::WAITER_STDERR);
    assert_eq!(output.status.code(), Some(1));
}

/// term_job gives a job's commands the chance Salt's SIGTERM gives them: one that catches it
/// cleans up; one that ignores it is killed after the grace rather than left behind.
#[test]
fn term_job_lets_commands_clean_up_and_kills_those_that_ignore_it() {
    let mut cluster = Cluster::new("auto_accept: True\n");
    cluster.start_master();
    cluster.start_minion("m1", "");
    cluster.wait_connected(&["m1"]);
    let minion = cluster.minion_pid("m1");
    let start = |script: &str, marker: &str| {
        let started = cluster.run("salt", &["--async", "m1", "cmd.run", script]);
        let jid = stdout(&started)
            .rsplit(' ')
            .next()
            .unwrap()
            .trim()
            .to_owned();
        assert!(
            wait_until(WAIT, || commands_under(minion, marker).len() == 2),
            "{:?}",
            commands_under(minion, marker)
        );
        (jid, commands_under(minion, marker))
    };
    let note = cluster.path().join("caught");
    let marker = format!("62.{}", std::process::id());
    let (jid, commands) = start(
        &format!(
            "sh -c 'trap \"echo caught > {}; exit 0\" TERM; sleep {marker} & wait'",
            note.display()
        ),
        &marker,
    );
    let answer = json_out(&cluster, &["m1", "saltutil.term_job", &jid]);
    assert_eq!(
        answer,
        json!({"m1": salts(salt::TERMINATED, "m1", &jid, minion)})
    );
    assert!(wait_until(WAIT, || alive(&commands).is_empty()));
    assert_eq!(std::fs::read_to_string(&note).unwrap(), "caught\n");

    let marker = format!("63.{}", std::process::id());
    let (jid, commands) = start(&format!("sh -c 'trap \"\" TERM; sleep {marker}'"), &marker);
    let asked = std::time::Instant::now();
    let answer = json_out(&cluster, &["m1", "saltutil.term_job", &jid]);
    assert_eq!(
        answer,
        json!({"m1": salts(salt::TERMINATED, "m1", &jid, minion)})
    );
    // The answer comes once the grace is over and what ignored SIGTERM is killed.
    assert!(
        asked.elapsed() >= Duration::from_secs(5),
        "{:?}",
        asked.elapsed()
    );
    assert!(
        wait_until(Duration::from_secs(2), || alive(&commands).is_empty()),
        "{:?}",
        alive(&commands)
    );
    assert!(running_jids(&cluster, "m1")["m1"].is_empty());
}
