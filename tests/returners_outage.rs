//! A database that goes away under a stream of returns: killed with SIGKILL in the middle of
//! 10,000 returns and started again 10 s later, then away across a master restart. Every return
//! is in the database afterwards, exactly once.

use std::time::{Duration, Instant};

use halite::client::local::LocalClient;
use halite::config::{Config, Role};
use halite::event::Value;
use halite::proto::PublishRequest;

use crate::databases::{Mariadb, or_skip};
use crate::support::{Lab, MINION_ID, RawSubscriber, stderr, wait_until};

/// Publishes `count` jobs to the minion, at most `WINDOW` waiting for their returns at once (the
/// minion's queue is bounded), and waits for every return on the master's bus; `midway` runs
/// once half of them returned.
fn returns(lab: &Lab, bus: &mut RawSubscriber, count: usize, mut midway: impl FnMut()) {
    const WINDOW: usize = 200;
    let config = Config::load(Role::Master, Some(&lab.etc())).unwrap();
    let runtime = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let client = LocalClient::new(&config).unwrap();
    let mut returned = 0;
    let mut published = 0;
    let mut halfway = false;
    while returned < count {
        while published < count && published - returned < WINDOW {
            let request = PublishRequest {
                tgt: Value::from(MINION_ID),
                tgt_type: "glob".into(),
                fun: "test.echo".into(),
                arg: Value::Array(vec![Value::from(format!("return {published}"))]),
                ret: String::new(),
                user: "root".into(),
                jid: None,
                ret_config: None,
                ret_kwargs: None,
            };
            let reply = runtime.block_on(client.publish(&request)).unwrap();
            assert_eq!(reply.minions, [MINION_ID]);
            published += 1;
        }
        // Read until half the window is free: each job fires several events.
        while returned < count && (published - returned >= WINDOW / 2 || published == count) {
            let event = bus.next_event(Duration::from_secs(30)).unwrap_or_else(|| {
                let tail = |role| {
                    let log = lab.log(role);
                    let lines: Vec<&str> = log
                        .lines()
                        .filter(|line| line.contains("WARN") || line.contains("ERROR"))
                        .rev()
                        .take(15)
                        .collect();
                    lines.into_iter().rev().collect::<Vec<_>>().join("\n")
                };
                panic!(
                    "{returned} of {count} returns came; master:\n{}\nminion:\n{}",
                    tail("master"),
                    tail("minion")
                )
            });
            assert_ne!(event.tag, "halite/bus/lost", "the test fell behind the bus");
            if event.tag.starts_with("salt/job/") && event.tag.contains("/ret/") {
                returned += 1;
            }
        }
        if !halfway && returned >= count / 2 {
            halfway = true;
            midway();
        }
    }
}

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
    let all_stored = wait_until(Duration::from_secs(120), || stored(&db).0 >= 10_000);
    assert!(all_stored, "{:?}", stored(&db));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(stored(&db), (10_000, 10_000));

    // Away across a master restart: what the master spooled, the next one delivers.
    db.kill();
    returns(&lab, &mut bus, 2_000, || {});
    let (status, log) = lab.take_daemon_named("salt-master").stop();
    assert!(status.success(), "{status:?}: {log}");
    db.restart();
    lab.start_master();
    let all_stored = wait_until(Duration::from_secs(120), || stored(&db).0 >= 12_000);
    assert!(all_stored, "{:?}", stored(&db));
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(stored(&db), (12_000, 12_000));
    let output = lab.run("salt-run", &["ret.stats", "--out=json"]);
    assert!(output.status.success(), "{}", stderr(&output));
}
