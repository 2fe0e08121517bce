//! The seed's job audit, unchanged: a Python program written the seed's way listens on a halite
//! master's bus with Salt's own event library and inserts every job return into a real
//! MariaDB's `salt_returns`.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use crate::databases::{Mariadb, or_skip};
use crate::support::{Lab, MINION_ID, RawSubscriber, stderr, wait_until};

/// Salt's `salt_returns` (salt/returners/mysql.py), which the seed's script expects to exist.
const SALT_RETURNS: &str = "CREATE TABLE `salt_returns` (`fun` varchar(50) NOT NULL, \
    `jid` varchar(255) NOT NULL, `return` mediumtext NOT NULL, `id` varchar(255) NOT NULL, \
    `success` varchar(10) NOT NULL, `full_ret` mediumtext NOT NULL, \
    `alter_time` TIMESTAMP DEFAULT CURRENT_TIMESTAMP, KEY `id` (`id`), KEY `jid` (`jid`), \
    KEY `fun` (`fun`)) ENGINE=InnoDB DEFAULT CHARSET=utf8";

/// The script, killed when the test ends however it ends.
struct Script(Child);

impl Drop for Script {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

#[test]
fn the_seeds_audit_script_stores_every_job_return_from_a_halite_master_in_mysql() {
    let Some(python) = or_skip(crate::returners_sql::salt_python()) else {
        return;
    };
    let Some(db) = or_skip(Mariadb::start()) else {
        return;
    };
    db.sql("salt", SALT_RETURNS);
    let mut lab = Lab::with_config(&db.options("salt"), "");
    lab.start_master();
    let mut bus = RawSubscriber::connect(&lab.master_pub());
    lab.start_minion();
    bus.expect_tag(&format!("salt/minion/{MINION_ID}/start"));

    let script = concat!(env!("CARGO_MANIFEST_DIR"), "/tests/seed_event_to_mysql.py");
    let mut child = Command::new(&python)
        .arg(script)
        .arg(lab.etc())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("start the seed's script");
    let mut stdout = BufReader::new(child.stdout.take().unwrap());
    let script = Script(child);
    let mut line = String::new();
    stdout.read_line(&mut line).unwrap();
    assert_eq!(line.trim(), "listening");

    for args in [
        vec![MINION_ID, "test.ping"],
        vec![MINION_ID, "cmd.run", "echo 你好"],
        vec![MINION_ID, "test.echo", "audited"],
        vec![MINION_ID, "saltutil.find_job", "20261203000000000000"],
    ] {
        let output = lab.run("salt", &args);
        assert!(output.status.success(), "{args:?}: {}", stderr(&output));
    }
    let rows = || {
        db.sql(
            "salt",
            "SELECT fun, `return`, id, success FROM salt_returns",
        )
    };
    let all = wait_until(Duration::from_secs(20), || rows().lines().count() >= 3);
    drop(script);
    let rows = rows();
    assert!(all, "{rows}");
    let mut found: Vec<&str> = rows.lines().collect();
    found.sort_unstable();
    assert_eq!(
        found,
        [
            // The client's batch mode doubles backslashes.
            "cmd.run\t\"\\\\u4f60\\\\u597d\"\tminion1\t1",
            "test.echo\t\"audited\"\tminion1\t1",
            "test.ping\ttrue\tminion1\t1",
        ],
        "{rows}"
    );
    let full = db.sql(
        "salt",
        "SELECT full_ret FROM salt_returns WHERE fun = 'test.ping'",
    );
    assert!(
        full.contains("\"jid\": \"") && full.contains("\"retcode\": 0"),
        "{full}"
    );
}
