//! The SQL returners (`mysql`, `pgjsonb`, `sqlite3`) on real databases, against Salt 3007.8's
//! own returner modules (run from the test venv by tests/returners_sql.py, with PyMySQL and
//! psycopg2): the same returns, events and loads go through both into separate databases of one
//! server, and the rows are compared column by column (`alter_time` and `date` only for being
//! set), the tables' definitions with those Salt's documented DDL makes, and the `get_*`
//! answers with Salt's on the same rows. Then what Salt leaves undefined: a server that is down,
//! bad options, a batch retried after an unknown outcome, a batch with a row the database
//! refuses.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::Arc;
use std::time::{Duration, Instant};

use halite::config::{Config, Role};
use halite::event::{Event, Value, map_get};
use halite::returners::{self, Returner, ReturnerError};
use serde_json::json;

use crate::databases::{Mariadb, Postgres, or_skip};
use crate::support::{free_port, python_script};

/// The returns both sides store, in this order (JSON text, so that both read one key order):
/// a `test.ping`, a state run with nested dicts and non-ASCII text, a failure with retcode 1, a
/// `req` jid without `success`, and more pings for `get_fun`: each minion's latest is a job the
/// other did not run (where it did, Salt's query may answer the other's job).
const RETURNS: &str = r#"[
  {"success": true, "return": true, "retcode": 0, "jid": "20200101000000000001",
   "fun": "test.ping", "fun_args": [], "id": "web1"},
  {"success": true, "return": {
     "file_|-motd_|-/etc/motd_|-managed": {"name": "/etc/motd",
       "changes": {"diff": "--- \n+++ \n@@ -1 +1 @@\n-Hello\n+Grüße, 世界 — «ok»\t\"q\"\n"},
       "result": true, "comment": "File /etc/motd updated", "__sls__": "motd",
       "__run_num__": 0, "start_time": "10:00:00.000001", "duration": 1.5, "__id__": "motd"},
     "pkg_|-vim_|-vim_|-installed": {"name": "vim", "changes": {}, "result": true,
       "comment": "All specified packages are already installed", "__run_num__": 1,
       "duration": 0.1, "nested": {"a": [1, 2.5, null, {"b": "ü"}], "big": 12345678901234567890,
       "neg": -7, "tiny": 1e-05}}},
   "retcode": 0, "jid": "20200101000000000002", "fun": "state.apply",
   "fun_args": ["motd", {"test": false}], "id": "wéb2", "out": "highstate"},
  {"success": false, "return": "ERROR: The command failed: exit status 1", "retcode": 1,
   "jid": "20200101000000000003", "fun": "cmd.run", "fun_args": ["false"], "id": "web1"},
  {"return": "hello", "retcode": 0, "jid": "req", "fun": "test.echo", "fun_args": ["hello"],
   "id": "web3"},
  {"success": true, "return": true, "retcode": 0, "jid": "20200101000000000004",
   "fun": "test.ping", "fun_args": [], "id": "web2"},
  {"success": true, "return": true, "retcode": 0, "jid": "20200101000000000001",
   "fun": "test.ping", "fun_args": [], "id": "web2"},
  {"success": true, "return": true, "retcode": 0, "jid": "20200101000000000005",
   "fun": "test.ping", "fun_args": [], "id": "web1"}
]"#;

/// Events, one with non-ASCII text in its tag and data.
const EVENTS: &str = r#"[
  {"tag": "salt/job/20200101000000000001/ret/web1", "data": {"success": true, "return": true,
   "retcode": 0, "jid": "20200101000000000001", "fun": "test.ping", "fun_args": [],
   "id": "web1", "cmd": "_return", "_stamp": "2020-01-01T00:00:00.000001"}},
  {"tag": "custom/äöü", "data": {"message": "Grüße aus Köln", "list": [1, 2.0, "drei"],
   "_stamp": "2020-01-01T00:00:01.500000"}}
]"#;

/// `save_load` calls: a publish load with metadata, another one, and the first jid again with
/// another load (Salt's mysql keeps the first, its pgjsonb takes the second).
const LOADS: &str = r#"[
  ["20200101000000000001", {"fun": "test.ping", "arg": [], "tgt": "*", "tgt_type": "glob",
   "user": "root", "jid": "20200101000000000001", "ret": "", "kwargs": {"metadata":
   {"team": "ops"}}}, ["web1", "web2"]],
  ["20200101000000000002", {"fun": "state.apply", "arg": ["motd"], "tgt": "wéb2",
   "tgt_type": "list", "user": "ädmin"}, ["wéb2"]],
  ["20200101000000000001", {"fun": "test.version", "arg": [], "tgt": "web9"}, ["web9"]]
]"#;

/// The master's `id`, which events are stored under.
const MASTER_ID: &str = "conformance_master";

fn values(text: &str) -> Vec<Value> {
    serde_json::from_str(text).expect("test data is JSON")
}

fn events() -> Vec<Event> {
    values(EVENTS)
        .into_iter()
        .map(|event| Event {
            tag: map_get(&event, "tag").unwrap().as_str().unwrap().to_owned(),
            data: map_get(&event, "data").unwrap().clone(),
        })
        .collect()
}

/// The 3007.8 venv's python with the database drivers Salt's returners need, or why not.
pub(crate) fn salt_python() -> Result<PathBuf, String> {
    let python = crate::conformance::installed("3007.8")?.join("bin/python");
    let probe = Command::new(&python)
        .args(["-c", "import pymysql, psycopg2"])
        .output()
        .map_err(|err| format!("{}: {err}", python.display()))?;
    if !probe.status.success() {
        return Err(
            "PyMySQL and psycopg2 are not in the 3007.8 venv (tests/salt-env.sh adds \
                    them)"
                .into(),
        );
    }
    Ok(python)
}

/// Runs `steps` through Salt's module `module` (tests/returners_sql.py), with `opts` as its
/// `__opts__` and `connect` the database its `rows` steps read; its answers as JSON text.
fn salt(
    python: &Path,
    module: &str,
    opts: serde_json::Value,
    connect: serde_json::Value,
    steps: &[Value],
) -> String {
    // The data in the steps keeps its key order (serde_json's maps would sort it).
    let request = Value::Map(vec![
        (Value::from("module"), Value::from(module)),
        (Value::from("opts"), rmpv::ext::to_value(opts).unwrap()),
        (
            Value::from("connect"),
            rmpv::ext::to_value(connect).unwrap(),
        ),
        (Value::from("steps"), Value::Array(steps.to_vec())),
    ]);
    let output = python_script(
        python,
        "returners_sql.py",
        &serde_json::to_vec(&request).unwrap(),
    );
    String::from_utf8(output.stdout).unwrap()
}

/// Salt's answers: the value of each step, or its error.
fn answers(text: &str) -> Vec<Result<Value, String>> {
    values(text)
        .into_iter()
        .map(|answer| match map_get(&answer, "ok") {
            Some(value) => Ok(value.clone()),
            None => Err(map_get(&answer, "error").unwrap().to_string()),
        })
        .collect()
}

fn ok(answer: &Result<Value, String>) -> Value {
    answer
        .clone()
        .unwrap_or_else(|err| panic!("Salt failed: {err}"))
}

/// A returner built as a master builds it from `lines` of its configuration.
struct Ours {
    _dir: tempfile::TempDir,
    returner: Arc<dyn Returner>,
    runtime: tokio::runtime::Runtime,
}

impl Ours {
    fn build(name: &str, lines: &str) -> Result<Self, ReturnerError> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join("master"),
            format!("id: {MASTER_ID}\n{lines}"),
        )
        .unwrap();
        let config = Config::load(Role::Master, Some(dir.path())).unwrap();
        let returner = returners::build(name, &config, None, None)?;
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(2)
            .enable_all()
            .build()
            .unwrap();
        Ok(Self {
            _dir: dir,
            returner,
            runtime,
        })
    }

    fn new(name: &str, lines: &str) -> Self {
        Self::build(name, lines).unwrap_or_else(|err| panic!("{name}: {err}"))
    }

    fn run<'a, T>(
        &'a self,
        call: impl FnOnce(&'a dyn Returner) -> returners::Pending<'a, T>,
    ) -> Result<T, ReturnerError> {
        self.runtime.block_on(call(self.returner.as_ref()))
    }

    /// Stores what the comparison stores, as the master would: the returns in one batch, the
    /// events in one, the loads.
    fn store_all(&self, with_events: bool) {
        let returns = values(RETURNS);
        self.run(|r| r.returns(&returns)).unwrap();
        if with_events {
            let events = events();
            self.run(|r| r.events(&events)).unwrap();
        }
        for load in values(LOADS) {
            let load = load.as_array().unwrap();
            let minions: Vec<String> = load[2]
                .as_array()
                .unwrap()
                .iter()
                .map(|id| id.as_str().unwrap().to_owned())
                .collect();
            let jid = load[0].as_str().unwrap();
            self.run(|r| r.save_load(jid, &load[1], &minions)).unwrap();
        }
    }

    /// The `get_*` answers the comparison compares, in [`gets`]'s order.
    fn gets(&self, req_jid: &str) -> Vec<Value> {
        let jid1 = "20200101000000000001";
        let mut minions = self.run(|r| r.get_minions()).unwrap();
        minions.sort();
        vec![
            self.run(|r| r.get_jid(jid1)).unwrap(),
            self.run(|r| r.get_jid("20200101000000000002")).unwrap(),
            self.run(|r| r.get_jid(req_jid)).unwrap(),
            self.run(|r| r.get_fun("test.ping")).unwrap(),
            self.run(|r| r.get_jids()).unwrap(),
            Value::Array(minions.into_iter().map(Value::from).collect()),
            self.run(|r| r.get_load(jid1)).unwrap(),
            self.run(|r| r.get_load(req_jid)).unwrap(),
            self.run(|r| r.get_load("20991231000000000000")).unwrap(),
        ]
    }
}

/// A step of tests/returners_sql.py: `["schema"]`, `["rows", sql]` or `["call", function,
/// args…]`.
fn step(words: &[&str], args: &[Value]) -> Value {
    Value::Array(
        words
            .iter()
            .map(|word| Value::from(*word))
            .chain(args.iter().cloned())
            .collect(),
    )
}

fn reading(reads: &[impl AsRef<str>]) -> Vec<Value> {
    reads
        .iter()
        .map(|sql| step(&["rows", sql.as_ref()], &[]))
        .collect()
}

/// The same `get_*` calls for Salt's module, with `req_jid` for the `req` return's job.
fn gets(req_jid: &str) -> Vec<Value> {
    let jid = |jid: &str| [Value::from(jid)];
    vec![
        step(&["call", "get_jid"], &jid("20200101000000000001")),
        step(&["call", "get_jid"], &jid("20200101000000000002")),
        step(&["call", "get_jid"], &jid(req_jid)),
        step(&["call", "get_fun"], &jid("test.ping")),
        step(&["call", "get_jids"], &[]),
        step(&["call", "get_minions"], &[]),
        step(&["call", "get_load"], &jid("20200101000000000001")),
        step(&["call", "get_load"], &jid(req_jid)),
        step(&["call", "get_load"], &jid("20991231000000000000")),
    ]
}

/// The function a step calls.
fn function(step: &Value) -> &str {
    step[1].as_str().unwrap_or_default()
}

/// Salt's calls storing what [`Ours::store_all`] stores: one `returner` call per return, one
/// `event_return`, the loads.
fn salt_stores(with_events: bool) -> Vec<Value> {
    let mut steps = vec![step(&["schema"], &[])];
    steps.extend(
        values(RETURNS)
            .into_iter()
            .map(|ret| step(&["call", "returner"], &[ret])),
    );
    if with_events {
        steps.push(step(
            &["call", "event_return"],
            &[Value::Array(values(EVENTS))],
        ));
    }
    steps.extend(
        values(LOADS)
            .into_iter()
            .map(|load| step(&["call", "save_load"], load.as_array().unwrap())),
    );
    steps
}

/// The rows a `rows` step read.
fn rows(answer: &Result<Value, String>) -> Vec<Value> {
    ok(answer).as_array().unwrap().clone()
}

/// `text` with Salt's jid for the `req` return (and the start time read from it) replaced by
/// ours.
fn with_our_req_jid(text: &str, salt_jid: &str, our_jid: &str) -> String {
    use halite::event::jid::jid_to_time;
    text.replace(salt_jid, our_jid)
        .replace(&jid_to_time(salt_jid), &jid_to_time(our_jid))
}

/// The jid of the `req` return (minion `web3`) in `rows` of `(…, jid, …, id, …)`.
fn req_jid(rows: &[Value], jid: usize, id: usize) -> String {
    rows.iter()
        .find(|row| row[id].as_str() == Some("web3"))
        .map(|row| row[jid].as_str().unwrap().to_owned())
        .expect("the req return is stored")
}

#[test]
fn mysql_rows_tables_and_answers_are_salts() {
    let Some(db) = or_skip(Mariadb::start()) else {
        return;
    };
    let Some(python) = or_skip(salt_python()) else {
        return;
    };
    db.create_database("salt_py");
    let connect = |name: &str| {
        json!({"host": "127.0.0.1", "port": db.port(), "user": "salt", "pass": "salt",
               "db": name})
    };
    let opts = json!({"id": MASTER_ID, "mysql.host": "127.0.0.1", "mysql.port": db.port(),
                      "mysql.db": "salt_py"});
    let ours = Ours::new("mysql", &db.options("salt"));
    ours.store_all(true);

    let reads = [
        "SELECT fun, jid, `return`, id, success, full_ret, alter_time IS NOT NULL \
         FROM salt_returns ORDER BY id, jid",
        "SELECT jid, `load` FROM jids ORDER BY jid",
        "SELECT id, tag, data, master_id, alter_time IS NOT NULL FROM salt_events ORDER BY id",
        "SHOW CREATE TABLE jids",
        "SHOW CREATE TABLE salt_returns",
        "SHOW CREATE TABLE salt_events",
    ];
    let read_steps = reading(&reads);
    let our_rows = answers(&salt(
        &python,
        "mysql",
        opts.clone(),
        connect("salt"),
        &read_steps,
    ));
    let our_req = req_jid(&rows(&our_rows[0]), 1, 3);

    let mut steps = salt_stores(true);
    steps.extend(read_steps.iter().cloned());
    let text = salt(&python, "mysql", opts.clone(), connect("salt_py"), &steps);
    let first = answers(&text);
    let stored = steps.len() - reads.len();
    for (step, answer) in steps.iter().zip(&first).take(stored) {
        assert!(answer.is_ok(), "Salt's {step}: {answer:?}");
    }
    let salt_req = req_jid(&rows(&first[stored]), 1, 3);
    assert!(halite::event::jid::is_jid(&our_req), "{our_req}");
    assert_ne!(our_req, salt_req, "each side made its own jid for `req`");
    let salt_rows = answers(&with_our_req_jid(&text, &salt_req, &our_req)).split_off(stored);
    for (sql, (ours, salts)) in reads.iter().zip(our_rows.iter().zip(&salt_rows)) {
        let strip = |answer: &Result<Value, String>| {
            // The next AUTO_INCREMENT value is no part of the definition.
            let text = ok(answer).to_string();
            regex_lite_strip(&text)
        };
        assert_eq!(strip(ours), strip(salts), "{sql}");
    }
    // Salt's columns, as Salt writes them.
    let returns = rows(&our_rows[0]);
    assert_eq!(returns.len(), 7);
    let web3 = returns
        .iter()
        .find(|row| row[3].as_str() == Some("web3"))
        .unwrap();
    assert_eq!(web3[4].as_str(), Some("0"), "no success: False");
    assert!(
        web3[5]
            .as_str()
            .unwrap()
            .contains(&format!("\"jid\": \"{our_req}\""))
    );
    let failed = returns
        .iter()
        .find(|row| row[0].as_str() == Some("cmd.run"))
        .unwrap();
    assert_eq!(failed[4].as_str(), Some("0"));
    let state = returns
        .iter()
        .find(|row| row[3].as_str() == Some("wéb2"))
        .unwrap();
    assert!(
        state[2].as_str().unwrap().contains("Grüße, 世界"),
        "{state:?}"
    );
    let jids = rows(&our_rows[1]);
    assert_eq!(jids.len(), 3, "two loads and the req return's");
    assert!(
        jids[0][1].as_str().unwrap().contains("test.ping"),
        "the first load stays"
    );

    let text = salt(&python, "mysql", opts, connect("salt_py"), &gets(&salt_req));
    let salt_gets = answers(&with_our_req_jid(&text, &salt_req, &our_req));
    let our_gets = ours.gets(&our_req);
    for ((step, salts), ours) in gets(&our_req).iter().zip(&salt_gets).zip(&our_gets) {
        assert_eq!(unordered(ours), unordered(&ok(salts)), "{step}");
    }
}

/// An answer whose order the database chooses (rows of a join, `DISTINCT`), sorted.
fn unordered(answer: &Value) -> Value {
    match answer {
        Value::Map(entries) => {
            let mut entries = entries.clone();
            entries.sort_by_key(|(key, _)| key.to_string());
            Value::Map(entries)
        }
        Value::Array(items) => {
            let mut items = items.clone();
            items.sort_by_key(ToString::to_string);
            Value::Array(items)
        }
        other => other.clone(),
    }
}

/// `SHOW CREATE TABLE`'s text without its ` AUTO_INCREMENT=<n>`.
fn regex_lite_strip(text: &str) -> String {
    let mut out = String::new();
    let mut rest = text;
    while let Some(at) = rest.find(" AUTO_INCREMENT=") {
        out.push_str(&rest[..at]);
        rest =
            rest[at + " AUTO_INCREMENT=".len()..].trim_start_matches(|c: char| c.is_ascii_digit());
    }
    out.push_str(rest);
    out
}

#[test]
fn pgjsonb_rows_tables_and_answers_are_salts() {
    let Some(db) = or_skip(Postgres::start()) else {
        return;
    };
    let Some(python) = or_skip(salt_python()) else {
        return;
    };
    db.create_database("salt_py");
    let connect = |name: &str| {
        json!({"host": "127.0.0.1", "port": db.port(), "user": "salt", "pass": "salt",
               "db": name})
    };
    let opts = json!({"id": MASTER_ID, "returner.pgjsonb.host": "127.0.0.1",
                      "returner.pgjsonb.port": db.port(), "returner.pgjsonb.db": "salt_py"});
    let ours = Ours::new("pgjsonb", &db.options("salt"));
    ours.store_all(true);

    let table = |name: &str| {
        format!(
            "SELECT column_name, data_type, character_maximum_length, is_nullable, \
             column_default FROM information_schema.columns WHERE table_name = '{name}' \
             ORDER BY ordinal_position"
        )
    };
    let reads = [
        "SELECT fun, jid, return::text, id, success, full_ret::text, alter_time IS NOT NULL \
         FROM salt_returns ORDER BY id, jid"
            .to_owned(),
        "SELECT jid, load::text FROM jids ORDER BY jid".to_owned(),
        "SELECT id, tag, data::text, master_id, alter_time IS NOT NULL FROM salt_events \
         ORDER BY id"
            .to_owned(),
        table("jids"),
        table("salt_returns"),
        table("salt_events"),
        "SELECT tablename, indexname, indexdef FROM pg_indexes WHERE schemaname = 'public' \
         ORDER BY indexname"
            .to_owned(),
    ];
    let read_steps = reading(&reads);
    let our_rows = answers(&salt(
        &python,
        "pgjsonb",
        opts.clone(),
        connect("salt"),
        &read_steps,
    ));
    // Salt's pgjsonb stores `req` as it is.
    assert_eq!(req_jid(&rows(&our_rows[0]), 1, 3), "req");

    let mut steps = salt_stores(true);
    steps.extend(read_steps.iter().cloned());
    let salt_rows = answers(&salt(
        &python,
        "pgjsonb",
        opts.clone(),
        connect("salt_py"),
        &steps,
    ));
    let stored = steps.len() - reads.len();
    for (step, answer) in steps.iter().zip(&salt_rows).take(stored) {
        assert!(answer.is_ok(), "Salt's {step}: {answer:?}");
    }
    for (sql, (ours, salts)) in reads.iter().zip(our_rows.iter().zip(&salt_rows[stored..])) {
        assert_eq!(ok(ours), ok(salts), "{sql}");
    }
    let returns = rows(&our_rows[0]);
    assert_eq!(returns.len(), 7);
    let web3 = returns
        .iter()
        .find(|row| row[3].as_str() == Some("web3"))
        .unwrap();
    assert_eq!(web3[4].as_str(), Some("false"), "no success: False");
    assert!(returns.iter().any(|row| row[4].as_str() == Some("true")));
    let jids = rows(&our_rows[1]);
    assert_eq!(jids.len(), 2);
    assert!(
        jids[0][1].as_str().unwrap().contains("test.version"),
        "the load is replaced"
    );

    let salt_gets = answers(&salt(
        &python,
        "pgjsonb",
        opts,
        connect("salt_py"),
        &gets("req"),
    ));
    let our_gets = ours.gets("req");
    for ((step, salts), ours) in gets("req").iter().zip(&salt_gets).zip(&our_gets) {
        if function(step) == "get_fun" {
            // Salt's query quotes with MySQL's backticks, which PostgreSQL refuses.
            let err = salts.clone().unwrap_err();
            assert!(err.contains("SyntaxError"), "{err}");
            continue;
        }
        assert_eq!(unordered(ours), unordered(&ok(salts)), "{step}");
    }
    // Ours: each minion's latest test.ping, as Salt's mysql answers it.
    let full = |jid: &str, id: &str| {
        map_get(&ours.run(|r| r.get_jid(jid)).unwrap(), id)
            .unwrap()
            .clone()
    };
    let want = Value::Map(vec![
        (Value::from("web1"), full("20200101000000000005", "web1")),
        (Value::from("web2"), full("20200101000000000004", "web2")),
    ]);
    assert_eq!(unordered(&our_gets[3]), want);
}

#[test]
fn sqlite3_rows_tables_and_answers_are_salts() {
    let Some(python) = or_skip(salt_python()) else {
        return;
    };
    let dir = tempfile::tempdir().unwrap();
    let ours_db = dir.path().join("halite.db");
    let salt_db = dir.path().join("salt.db");
    let connect = |path: &Path| json!({"database": path});
    let opts = json!({"id": MASTER_ID, "sqlite3.database": salt_db, "sqlite3.timeout": 5.0});
    let ours = Ours::new(
        "sqlite3",
        &format!("sqlite3.database: {}\n", ours_db.display()),
    );
    ours.store_all(false);

    let reads = [
        "SELECT fun, jid, id, fun_args, full_ret, success FROM salt_returns ORDER BY id, jid",
        "SELECT date FROM salt_returns",
        "SELECT jid, load FROM jids ORDER BY jid",
        "SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info('jids')",
        "SELECT name, type, \"notnull\", dflt_value, pk FROM pragma_table_info('salt_returns')",
    ];
    let read_steps = reading(&reads);
    let our_rows = answers(&salt(
        &python,
        "sqlite3",
        opts.clone(),
        connect(&ours_db),
        &read_steps,
    ));

    let mut steps = salt_stores(false);
    steps.extend(read_steps.iter().cloned());
    let salt_rows = answers(&salt(
        &python,
        "sqlite3",
        opts.clone(),
        connect(&salt_db),
        &steps,
    ));
    let stored = steps.len() - reads.len();
    for (step, answer) in steps.iter().zip(&salt_rows).take(stored) {
        let again = step[2].as_str() == Some("20200101000000000001");
        if function(step) == "save_load" && again && answer.is_err() {
            // Salt's sqlite3 raises on a jid already stored; ours leaves the first load.
            assert!(answer.clone().unwrap_err().contains("IntegrityError"));
            continue;
        }
        assert!(answer.is_ok(), "Salt's {step}: {answer:?}");
    }
    for (sql, (ours, salts)) in reads.iter().zip(our_rows.iter().zip(&salt_rows[stored..])) {
        if sql.starts_with("SELECT date") {
            for side in [ours, salts] {
                for date in rows(side) {
                    let date = date[0].as_str().unwrap().to_owned();
                    let shape = date.len() == 26 || date.len() == 19;
                    assert!(shape && date.as_bytes()[10] == b' ', "{date}");
                }
            }
            continue;
        }
        assert_eq!(ok(ours), ok(salts), "{sql}");
    }
    let returns = rows(&our_rows[0]);
    let state = returns
        .iter()
        .find(|row| row[2].as_str() == Some("wéb2"))
        .unwrap();
    assert_eq!(state[3].as_str(), Some("['motd', {'test': False}]"));
    let web3 = returns
        .iter()
        .find(|row| row[2].as_str() == Some("web3"))
        .unwrap();
    assert_eq!(
        (web3[1].as_str(), web3[5].as_str()),
        (Some("req"), Some(""))
    );

    let salt_gets = answers(&salt(
        &python,
        "sqlite3",
        opts,
        connect(&salt_db),
        &gets("req"),
    ));
    let our_gets = ours.gets("req");
    for ((step, salts), ours) in gets("req").iter().zip(&salt_gets).zip(&our_gets) {
        match function(step) {
            "get_jid" if step[2].as_str() == Some("20200101000000000001") => {
                // Salt's answers the first row's minion only; ours every minion's.
                let salts = ok(salts);
                let (id, ret) = &salts.as_map().unwrap()[0];
                assert_eq!(map_get(ours, id.as_str().unwrap()), Some(ret));
                assert_eq!(ours.as_map().unwrap().len(), 2);
            }
            "get_fun" => {
                // Salt's fails on two rows (it unpacks three columns into two names).
                assert!(
                    salts.clone().unwrap_err().contains("ValueError"),
                    "{salts:?}"
                );
                let want = json_value(r#"{"web1": true, "web2": true}"#);
                assert_eq!(unordered(ours), want);
            }
            _ => assert_eq!(unordered(ours), unordered(&ok(salts)), "{step}"),
        }
    }
}

fn json_value(text: &str) -> Value {
    serde_json::from_str(text).unwrap()
}

/// The config lines of `returner` for a server on `port` that nobody answers on.
fn nowhere(returner: &str, port: u16) -> String {
    match returner {
        "mysql" => format!("mysql.host: 127.0.0.1\nmysql.port: {port}\n"),
        _ => format!("returner.pgjsonb.host: 127.0.0.1\nreturner.pgjsonb.port: {port}\n"),
    }
}

#[test]
fn a_server_that_is_down_answers_unavailable_naming_it_within_the_connect_timeout() {
    let ret = values(RETURNS).remove(0);
    let down = |returner: &str, url: &str| {
        let port = free_port();
        let ours = Ours::new(returner, &nowhere(returner, port));
        let started = Instant::now();
        let err = ours
            .run(|r| r.returns(std::slice::from_ref(&ret)))
            .unwrap_err();
        let took = started.elapsed();
        assert!(err.retryable(), "{returner}: {err}");
        let text = err.to_string();
        assert!(text.contains(&format!("{url}:{port}/salt")), "{text}");
        assert!(text.contains("refused"), "{text}");
        // The pool tries for the connect timeout (5 s), no longer.
        assert!(took < Duration::from_secs(8), "{returner}: {took:?}");
        // Reads say so too.
        let err = ours.run(|r| r.get_minions()).unwrap_err();
        assert!(err.retryable(), "{err}");
    };
    std::thread::scope(|scope| {
        scope.spawn(|| down("mysql", "mysql://salt@127.0.0.1"));
        scope.spawn(|| down("pgjsonb", "postgresql://salt@127.0.0.1"));
    });
    let ours = Ours::new("sqlite3", "sqlite3.database: /nonexistent/dir/salt.db\n");
    let err = ours
        .run(|r| r.returns(std::slice::from_ref(&ret)))
        .unwrap_err();
    assert!(err.retryable(), "{err}");
    assert!(
        err.to_string().contains("/nonexistent/dir/salt.db"),
        "{err}"
    );
}

#[test]
fn bad_options_are_refused_naming_the_option() {
    for (returner, lines, option) in [
        ("mysql", "mysql.port: x\n", "mysql.port"),
        ("mysql", "returner.mysql.port: 70000\n", "mysql.port"),
        ("pgjsonb", "returner.pgjsonb.port: x\n", "pgjsonb.port"),
        ("pgjsonb", "pgjsonb.sslmode: sometimes\n", "pgjsonb.sslmode"),
        (
            "pgjsonb",
            "returner.pgjsonb.sslcrl: /etc/crl.pem\n",
            "pgjsonb.sslcrl",
        ),
        ("sqlite3", "", "sqlite3.database"),
        (
            "sqlite3",
            "sqlite3.database: /tmp/x.db\nsqlite3.timeout: soon\n",
            "sqlite3.timeout",
        ),
    ] {
        let err = Ours::build(returner, lines).map(|_| ()).unwrap_err();
        assert!(
            matches!(err, ReturnerError::Option { .. }),
            "{returner}: {err}"
        );
        assert!(err.to_string().contains(option), "{err}");
    }
}

/// A fresh returner skips the returns of its first batch already stored (a previous run may
/// have died committing them); later batches are stored as given, as Salt stores them. A
/// batch with a row the database refuses stores the others and answers `Rejected`.
fn retried_and_refused(name: &str, lines: &str, count: impl Fn() -> usize) {
    // A `req` return's new jid is kept for retries within one run, not across runs.
    let batch: Vec<Value> = values(RETURNS)
        .into_iter()
        .filter(|ret| map_get(ret, "jid").and_then(Value::as_str) != Some("req"))
        .collect();
    let first = Ours::new(name, lines);
    first.run(|r| r.returns(&batch)).unwrap();
    assert_eq!(count(), 6);
    let again = Ours::new(name, lines);
    again.run(|r| r.returns(&batch)).unwrap();
    assert_eq!(count(), 6, "{name}: the retried batch is stored once");
    let one = std::slice::from_ref(&batch[0]);
    again.run(|r| r.returns(one)).unwrap();
    assert_eq!(count(), 7, "{name}: a later return is stored as given");

    let mut refused = batch[..3].to_vec();
    if let Value::Map(entries) = &mut refused[1] {
        for (key, value) in entries.iter_mut() {
            if key.as_str() == Some("success") {
                // NULL in a NOT NULL column.
                *value = Value::Nil;
            }
        }
    }
    let err = again.run(|r| r.returns(&refused)).unwrap_err();
    assert!(
        matches!(err, ReturnerError::Rejected { .. }),
        "{name}: {err}"
    );
    assert!(
        err.to_string().contains("1 of 3 returns not stored"),
        "{err}"
    );
    assert_eq!(count(), 9, "{name}: the others are stored");
}

#[test]
fn sql_returners_store_a_retried_batch_once_and_what_they_can_of_a_refused_one() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("salt.db");
    let count = || -> usize {
        let output = Command::new("python3")
            .args([
                "-c",
                "import sqlite3, sys; print(sqlite3.connect(sys.argv[1]).execute(\
                   'SELECT COUNT(*) FROM salt_returns').fetchone()[0])",
            ])
            .arg(&file)
            .output()
            .unwrap();
        String::from_utf8(output.stdout)
            .unwrap()
            .trim()
            .parse()
            .unwrap()
    };
    retried_and_refused(
        "sqlite3",
        &format!("sqlite3.database: {}\n", file.display()),
        count,
    );
    if let Some(db) = or_skip(Mariadb::start()) {
        let count = || {
            db.sql("salt", "SELECT COUNT(*) FROM salt_returns")
                .trim()
                .parse()
                .unwrap()
        };
        retried_and_refused("mysql", &db.options("salt"), count);
        // A row past max_allowed_packet (16 MiB here: the return is in `return` and `full_ret`)
        // would close the connection: refused before it is sent, the other return stored.
        let ours = Ours::new("mysql", &db.options("salt"));
        let mut batch = [values(RETURNS).remove(2), values(RETURNS).remove(4)];
        for (n, ret) in batch.iter_mut().enumerate() {
            let Value::Map(entries) = ret else {
                unreachable!("a return is a map")
            };
            for (key, value) in entries.iter_mut() {
                match key.as_str() {
                    Some("jid") => *value = Value::from(format!("2020010100000000009{n}")),
                    Some("return") if n == 0 => *value = Value::from("x".repeat(9 << 20)),
                    _ => {}
                }
            }
        }
        let err = ours.run(|r| r.returns(&batch)).unwrap_err();
        assert!(matches!(err, ReturnerError::Rejected { .. }), "{err}");
        assert!(
            err.to_string()
                .contains("past the server's max_allowed_packet of 16777216 bytes"),
            "{err}"
        );
        assert_eq!(count(), 10);
    }
    if let Some(db) = or_skip(Postgres::start()) {
        let count = || {
            db.sql("salt", "SELECT COUNT(*) FROM salt_returns")
                .trim()
                .parse()
                .unwrap()
        };
        retried_and_refused("pgjsonb", &db.options("salt"), count);
    }
}

/// After a failed attempt (the server killed), a retried batch whose returns were stored is
/// stored once; the pool's dead connections are replaced once the server is back.
fn retried_after_an_outage(
    name: &str,
    lines: &str,
    kill: impl Fn(),
    restart: impl Fn(),
    count: impl Fn() -> usize,
) {
    let all: Vec<Value> = values(RETURNS)
        .into_iter()
        .filter(|ret| map_get(ret, "jid").and_then(Value::as_str) != Some("req"))
        .collect();
    let (first, second) = all.split_at(3);
    let ours = Ours::new(name, lines);
    ours.run(|r| r.returns(first)).unwrap();
    kill();
    let err = ours.run(|r| r.returns(second)).unwrap_err();
    assert!(err.retryable(), "{name}: {err}");
    restart();
    ours.run(|r| r.returns(&all)).unwrap();
    assert_eq!(count(), all.len(), "{name}: each return once");
}

#[test]
fn after_an_outage_a_retried_batch_is_stored_once() {
    if let Some(db) = or_skip(Mariadb::start()) {
        let lines = db.options("salt");
        let db = std::cell::RefCell::new(db);
        retried_after_an_outage(
            "mysql",
            &lines,
            || db.borrow_mut().kill(),
            || db.borrow_mut().restart(),
            || {
                let rows = db.borrow().sql("salt", "SELECT COUNT(*) FROM salt_returns");
                rows.trim().parse().unwrap()
            },
        );
    }
    if let Some(db) = or_skip(Postgres::start()) {
        let lines = db.options("salt");
        let db = std::cell::RefCell::new(db);
        retried_after_an_outage(
            "pgjsonb",
            &lines,
            || db.borrow_mut().kill(),
            || db.borrow_mut().restart(),
            || {
                let rows = db.borrow().sql("salt", "SELECT COUNT(*) FROM salt_returns");
                rows.trim().parse().unwrap()
            },
        );
    }
}

/// Returns/s of one batch of 1000 returns into each database (`cargo test --release --test
/// integration -- --ignored --nocapture sql_returners_throughput`), for the README's figure.
#[test]
#[ignore = "a measurement: run in release mode"]
fn sql_returners_throughput() {
    let batch: Vec<Value> = (0..1000)
        .map(|n| {
            let mut ret = values(RETURNS).remove(1);
            if let Value::Map(entries) = &mut ret {
                for (key, value) in entries.iter_mut() {
                    if key.as_str() == Some("jid") {
                        *value = Value::from(format!("2020010100000000{n:04}"));
                    }
                }
            }
            ret
        })
        .collect();
    let measure = |name: &str, lines: &str| {
        let ours = Ours::new(name, lines);
        // The first call connects and creates the tables.
        ours.run(|r| r.returns(&batch[..1])).unwrap();
        let started = Instant::now();
        ours.run(|r| r.returns(&batch)).unwrap();
        let took = started.elapsed();
        eprintln!(
            "{name}: 1000 returns in {took:?}: {:.0} returns/s",
            1000.0 / took.as_secs_f64()
        );
    };
    let dir = tempfile::tempdir().unwrap();
    measure(
        "sqlite3",
        &format!(
            "sqlite3.database: {}\n",
            dir.path().join("salt.db").display()
        ),
    );
    if let Some(db) = or_skip(Mariadb::start()) {
        measure("mysql", &db.options("salt"));
    }
    if let Some(db) = or_skip(Postgres::start()) {
        measure("pgjsonb", &db.options("salt"));
    }
}
