//! Salt's `sqlite3` returner: jobs and returns in an SQLite database file, in Salt's tables, so
//! that Salt's own returner and halite's read and write the same rows.
//!
//! Salt's schema (`salt/returners/sqlite3_return.py`), created here when a table is missing (and
//! the file when it is missing, as Python's `sqlite3.connect` does): `jids(jid TEXT PRIMARY KEY,
//! load TEXT)`; `salt_returns(fun, jid, id, fun_args, date, full_ret, success)`, all `TEXT`.
//!
//! Each column holds what Salt writes: `full_ret` is Python's `json.dumps` of the return's
//! `return` (not of the whole dict), `fun_args` Python's `str()` of the arguments (NULL
//! without any), `date` Python's `str(datetime.now())` in local time, `success` `1` or `0`
//! (Python's bool as SQLite stores it in a text column; empty without one). A jid `req` is
//! stored as it is. Salt's module has no `event_return`; neither has this one.
//!
//! Options, where Salt reads them (`sqlite3.database`, a `--return_config` profile…):
//! `database`, the file (required, as in Salt), and `timeout`, seconds to wait for another
//! writer's lock (Salt requires it too; here it defaults to the 5.0 of Salt's documentation).
//!
//! What differs from Salt: a batch is one transaction (see [`super::sql`]); `save_load` of a
//! jid already stored leaves it as it is (Salt's raises an integrity error); `get_jid` answers
//! every minion's return (Salt's only the first row's); `get_fun` answers `{minion: return}` of
//! each minion's latest run (Salt's fails on its own rows).

use std::sync::Arc;

use sqlx::Sqlite;
use sqlx::error::DatabaseError;
use sqlx::sqlite::SqliteConnectOptions;

use super::sql::{self, Cell, Dialect, FullRet, Insert, Store, Truth};
use super::{Options, Returner, ReturnerError};

/// Salt's tables, as its module's documentation creates them.
const TABLES: &[(&str, &[&str])] = &[
    (
        "jids",
        &["CREATE TABLE IF NOT EXISTS jids (
  jid TEXT PRIMARY KEY,
  load TEXT NOT NULL
  )"],
    ),
    (
        "salt_returns",
        &["CREATE TABLE IF NOT EXISTS salt_returns (
  fun TEXT KEY,
  jid TEXT KEY,
  id TEXT KEY,
  fun_args TEXT,
  date TEXT NOT NULL,
  full_ret TEXT NOT NULL,
  success TEXT NOT NULL
  )"],
    ),
];

const DIALECT: Dialect = Dialect {
    name: "sqlite3",
    tables: TABLES,
    // Take the write lock at once: a deferred transaction that reads first could not wait for
    // another writer (SQLite answers busy at once to avoid a deadlock).
    begin: Some("BEGIN IMMEDIATE"),
    returns: Insert {
        into: "INSERT INTO salt_returns (fun, jid, id, fun_args, date, full_ret, success) ",
        values: &[
            (Cell::Fun, "", ""),
            (Cell::Jid, "", ""),
            (Cell::Id, "", ""),
            (Cell::FunArgs, "", ""),
            (Cell::Date, "", ""),
            (Cell::Return, "", ""),
            (Cell::Success, "", ""),
        ],
    },
    events: None,
    save_load: "INSERT INTO jids (jid, load) VALUES (?, ?) ON CONFLICT (jid) DO NOTHING",
    get_load: "SELECT load FROM jids WHERE jid = ?",
    get_jid: "SELECT id, full_ret FROM salt_returns WHERE jid = ?",
    get_fun: "SELECT s.id, s.full_ret FROM salt_returns s \
              JOIN (SELECT fun, id, MAX(jid) AS jid FROM salt_returns \
              GROUP BY fun, id) m \
              ON s.fun = m.fun AND s.id = m.id AND s.jid = m.jid \
              WHERE s.fun = ?",
    get_jids: "SELECT jid, load FROM jids",
    get_minions: "SELECT DISTINCT id FROM salt_returns",
    stored: "SELECT jid, id FROM salt_returns WHERE jid IN ",
    numbered: false,
    success: Truth {
        yes: "1",
        no: "0",
        missing: "",
    },
    full_ret: FullRet::Return,
    replaces_req: false,
    refuses_values,
    packet_limit: None,
};

/// SQLite's errors about the values themselves: a string or blob too big, a constraint, a
/// datatype mismatch (its primary result codes 18, 19 and 20).
fn refuses_values(err: &dyn DatabaseError) -> bool {
    err.code()
        .and_then(|code| code.parse::<u32>().ok())
        .is_some_and(|code| matches!(code & 0xff, 18..=20))
}

/// The returner for `--return sqlite3` and `master_job_cache: sqlite3`.
pub(super) fn build(options: &Options) -> Result<Arc<dyn Returner>, ReturnerError> {
    let Some(database) = sql::optional_text(options, "database")? else {
        return Err(ReturnerError::Option {
            returner: "sqlite3",
            option: "sqlite3.database".to_owned(),
            problem: "not set: give the path of the database file".to_owned(),
        });
    };
    let timeout = match options.get("timeout") {
        None => std::time::Duration::from_secs(5),
        Some(value) => {
            let seconds = match &value {
                crate::event::Value::String(text) => text
                    .as_str()
                    .and_then(|text| text.trim().parse::<f64>().ok())
                    .map(crate::event::Value::from),
                other => Some(other.clone()),
            };
            seconds
                .as_ref()
                .and_then(crate::config::seconds)
                .ok_or_else(|| options.invalid("timeout", "expected a number of seconds", &value))?
        }
    };
    let connect = SqliteConnectOptions::new()
        .filename(&database)
        .create_if_missing(true)
        .busy_timeout(timeout);
    let store = Store::<Sqlite>::new(&DIALECT, database, connect, options)?;
    Ok(Arc::new(store))
}
