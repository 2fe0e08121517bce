//! `salt-minion --swarm N`: many minions in one process against a real master.

use std::collections::HashSet;
use std::time::{Duration, Instant};

use crate::support::{Cluster, stdout};

const SIZE: usize = 50;

/// The ids in a `--static --out=json` answer whose value is `true`.
fn answered_true(text: &str) -> HashSet<String> {
    let answers: serde_json::Value = serde_json::from_str(text).unwrap_or_default();
    answers
        .as_object()
        .into_iter()
        .flatten()
        .filter(|(_, answer)| answer.as_bool() == Some(true))
        .map(|(id, _)| id.clone())
        .collect()
}

/// Runs `check` until it holds or 30 seconds have passed.
fn eventually(what: &str, mut check: impl FnMut() -> Result<(), String>) {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        match check() {
            Ok(()) => return,
            Err(state) if Instant::now() > deadline => panic!("{what}: {state}"),
            Err(_) => std::thread::sleep(Duration::from_millis(200)),
        }
    }
}

/// Every member of a swarm is a minion of its own: its key waits on the master until accepted,
/// it answers jobs, its grains say its id, and its key is kept when the swarm starts again.
#[test]
fn a_swarm_is_that_many_minions_with_their_own_keys_sessions_and_grains() {
    let mut cluster = Cluster::new("");
    cluster.start_master();
    cluster.configure_minion("sw", "");
    let swarm = cluster.spawn_swarm("sw", SIZE);
    let ids: HashSet<String> = (0..SIZE).map(|n| format!("sw-{n}")).collect();
    let keys = cluster.master_pki().join("minions_pre");
    eventually("every member's key waits for acceptance", || {
        let pending: HashSet<String> = std::fs::read_dir(&keys)
            .map_err(|err| err.to_string())?
            .filter_map(|entry| entry.ok()?.file_name().into_string().ok())
            .collect();
        (pending == ids).then_some(()).ok_or(format!("{pending:?}"))
    });
    let log = cluster.minion_dir("sw").join("log");
    eventually("each member's lines name it", || {
        let text = std::fs::read_to_string(&log).map_err(|err| err.to_string())?;
        let named = ids
            .iter()
            .filter(|id| text.contains(&format!("[minion={id}] ")))
            .count();
        (named == SIZE)
            .then_some(())
            .ok_or(format!("{named} of {SIZE} named"))
    });
    let accepted = cluster.run("salt-key", &["-A", "-y"]);
    assert!(accepted.status.success(), "{}", stdout(&accepted));
    let ping = |cluster: &Cluster| {
        let output = cluster.run("salt", &["*", "test.ping", "--static", "--out=json"]);
        let answered = answered_true(&stdout(&output));
        (answered == ids)
            .then_some(())
            .ok_or(format!("{} of {SIZE} answered", answered.len()))
    };
    eventually("every member answers", || ping(&cluster));

    let grains = cluster.run(
        "salt",
        &[
            "-G",
            "id:sw-7",
            "grains.item",
            "id",
            "--static",
            "--out=json",
        ],
    );
    let grains: serde_json::Value = serde_json::from_str(&stdout(&grains)).unwrap();
    assert_eq!(grains, serde_json::json!({"sw-7": {"id": "sw-7"}}));

    let distinct: HashSet<String> = ids
        .iter()
        .map(|id| std::fs::read_to_string(cluster.master_pki().join("minions").join(id)).unwrap())
        .collect();
    assert_eq!(distinct.len(), SIZE, "a key each");

    swarm.stop();
    let _swarm = cluster.spawn_swarm("sw", SIZE);
    eventually("the members come back with the keys accepted", || {
        ping(&cluster)
    });
    assert!(
        std::fs::read_dir(&keys).unwrap().next().is_none(),
        "no key is new"
    );
}

/// `--check-config` checks the members' ids a start would make, and names the way out.
#[test]
fn check_config_refuses_a_swarm_whose_member_ids_are_too_long() {
    let dir = tempfile::tempdir().unwrap();
    let id = "a".repeat(252);
    std::fs::write(
        dir.path().join("minion"),
        format!(
            "id: {id}\nmaster: 127.0.0.1\nroot_dir: {}\n",
            dir.path().display()
        ),
    )
    .unwrap();
    let check = |size: &str| {
        std::process::Command::new(crate::support::bin("salt-minion"))
            .args(["--check-config", "--swarm", size, "-c"])
            .arg(dir.path())
            .output()
            .unwrap()
    };
    assert!(check("10").status.success(), "ids up to {id}-9 fit");
    let refused = check("200");
    assert_eq!(refused.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&refused.stderr);
    assert!(
        stderr.contains("invalid swarm minion id") && stderr.contains("smaller --swarm"),
        "{stderr}"
    );
}
