//! A database that goes away under a stream of returns: killed with SIGKILL in the middle of
//! 10,000 returns and started again 10 s later, then away across a master restart. Every return
//! is in the database afterwards, exactly once.

use std::time::{Duration, Instant};

use crate::databases::{Mariadb, or_skip};
use crate::support::{Lab, MINION_ID, RawSubscriber, returns, stderr, wait_until};

/// `(rows, distinct (jid, id) pairs)` of `salt_returns`.
fn stored(db: &Mariadb) -> (usize, usize) {
    let counted = db.sql(
        "salt",
        "SELECT COUNT(*), COUNT(DISTINCT jid, id) FROM salt_returns WHERE fun = 'test.echo'",
    );
    let mut fields = counted
        .lines()
        .last()
        .unwrap_or_default()
        .split('\t')
        .map(|field| field.trim().parse().unwrap_or(0));
    (fields.next().unwrap_or(0), fields.next().unwrap_or(0))
}

/// What the master's log says about its returners, to tell why a test waited in vain.
fn returner_log(lab: &Lab) -> String {
    lab.log("master")
        .lines()
        .filter(|line| line.contains("returner") || line.contains("mysql"))
        .collect::<Vec<_>>()
        .join("\n")
}

#[test]
fn a_database_killed_mid_stream_and_across_a_master_restart_loses_no_return_and_stores_none_twice()
{
    let Some(mut db) = or_skip(Mariadb::start()) else {
        return;
    };
    let mut lab = Lab::with_config(
        &format!("master_job_cache: mysql\n{}", db.options("salt")),
        "",
    );
    lab.start_master();
    let mut bus = RawSubscriber::connect(&lab.master_pub());
    lab.start_minion();
    bus.expect_tag(&format!("salt/minion/{MINION_ID}/start"));

    // Killed in the middle of 10,000 returns, started again 10 s later.
    let mut killed = None;
    returns(&lab, &mut bus, 10_000, || {
        db.kill();
        killed = Some(Instant::now());
    });
    let killed = killed.expect("killed midway");
    std::thread::sleep(Duration::from_secs(10).saturating_sub(killed.elapsed()));
    db.restart();
    let all_stored = wait_until(Duration::from_secs(300), || stored(&db).0 >= 10_000);
    assert!(all_stored, "{:?}\n{}", stored(&db), returner_log(&lab));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(stored(&db), (10_000, 10_000));

    // Away across a master restart: what the master spooled, the next one delivers.
    db.kill();
    returns(&lab, &mut bus, 2_000, || {});
    let (status, log) = lab.take_daemon_named("salt-master").stop();
    assert!(status.success(), "{status:?}: {log}");
    db.restart();
    lab.start_master();
    let all_stored = wait_until(Duration::from_secs(300), || stored(&db).0 >= 12_000);
    assert!(all_stored, "{:?}\n{}", stored(&db), returner_log(&lab));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(stored(&db), (12_000, 12_000));
    let output = lab.run("salt-run", &["ret.stats", "--out=json"]);
    assert!(output.status.success(), "{}", stderr(&output));
}
