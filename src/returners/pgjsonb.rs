//! Salt's `pgjsonb` returner: jobs, returns and events in PostgreSQL, their JSON in `jsonb`
//! columns of Salt's tables, so that Salt's own returner and halite's read and write the same
//! rows.
//!
//! Salt's schema (`salt/returners/pgjsonb.py`), created here when a table is missing: `jids(jid
//! varchar(255) PRIMARY KEY, load jsonb)` with a GIN index on `load`; `salt_returns(fun
//! varchar(50), jid varchar(255), return jsonb, id varchar(255), success varchar(10), full_ret
//! jsonb, alter_time timestamptz DEFAULT NOW())` with indexes on `id`, `jid`, `fun` and GIN
//! indexes on `return` and `full_ret`; `salt_events(id BIGINT UNIQUE DEFAULT
//! nextval('seq_salt_events_id'), tag varchar(255), data jsonb, alter_time, master_id
//! varchar(255))` with indexes on `tag` and (GIN) `data`.
//!
//! Each column holds what Salt writes: `return` and `full_ret` the return and the whole return
//! dict, `success` `true` or `false` (how psycopg2 renders a Python bool into a varchar; `false`
//! without one), events' `data` their data and `master_id` the configuration's `id`;
//! `alter_time` the client's clock, as Salt's `to_timestamp(time.time())`. A jid `req` is
//! stored as it is, as Salt does. `save_load` of a jid already stored replaces its load, as
//! Salt's `ON CONFLICT (jid) DO UPDATE` does.
//!
//! Options, where Salt reads them (`returner.pgjsonb.host`, `pgjsonb.host`, a
//! `--return_config` profile…), with Salt's defaults: `host` (`localhost`), `port` (5432),
//! `user` (`salt`), `pass` (`salt`), `db` (`salt`); `sslmode` (libpq's: `disable`, `allow`,
//! `prefer` (the default), `require`, `verify-ca`, `verify-full`), `sslrootcert`, `sslcert`,
//! `sslkey`. `sslcrl` is refused: halite cannot check a revocation list.
//!
//! What differs from Salt: a batch is one transaction (see [`super::sql`]); a server that is
//! down answers `Unavailable` within [`super::sql::CONNECT_TIMEOUT`] instead of a log line;
//! `get_fun` answers each minion's latest run (Salt's query quotes with MySQL's backticks, which
//! PostgreSQL refuses).

use std::str::FromStr;
use std::sync::Arc;

use sqlx::Postgres;
use sqlx::error::DatabaseError;
use sqlx::postgres::{PgConnectOptions, PgSslMode};

use super::sql::{self, Cell, Dialect, FullRet, Insert, Store, Truth};
use super::{Options, Returner, ReturnerError};

/// Salt's tables, as its module's documentation creates them.
const TABLES: &[(&str, &[&str])] = &[
    (
        "jids",
        &[
            "CREATE TABLE IF NOT EXISTS jids (
   jid varchar(255) NOT NULL primary key,
   load jsonb NOT NULL
)",
            "CREATE INDEX IF NOT EXISTS idx_jids_jsonb on jids
       USING gin (load)
       WITH (fastupdate=on)",
        ],
    ),
    (
        "salt_returns",
        &[
            "CREATE TABLE IF NOT EXISTS salt_returns (
  fun varchar(50) NOT NULL,
  jid varchar(255) NOT NULL,
  return jsonb NOT NULL,
  id varchar(255) NOT NULL,
  success varchar(10) NOT NULL,
  full_ret jsonb NOT NULL,
  alter_time TIMESTAMP WITH TIME ZONE DEFAULT NOW())",
            "CREATE INDEX IF NOT EXISTS idx_salt_returns_id ON salt_returns (id)",
            "CREATE INDEX IF NOT EXISTS idx_salt_returns_jid ON salt_returns (jid)",
            "CREATE INDEX IF NOT EXISTS idx_salt_returns_fun ON salt_returns (fun)",
            "CREATE INDEX IF NOT EXISTS idx_salt_returns_return ON salt_returns
    USING gin (return) with (fastupdate=on)",
            "CREATE INDEX IF NOT EXISTS idx_salt_returns_full_ret ON salt_returns
    USING gin (full_ret) with (fastupdate=on)",
        ],
    ),
    (
        "salt_events",
        &[
            "CREATE SEQUENCE IF NOT EXISTS seq_salt_events_id",
            "CREATE TABLE IF NOT EXISTS salt_events (
    id BIGINT NOT NULL UNIQUE DEFAULT nextval('seq_salt_events_id'),
    tag varchar(255) NOT NULL,
    data jsonb NOT NULL,
    alter_time TIMESTAMP WITH TIME ZONE DEFAULT NOW(),
    master_id varchar(255) NOT NULL)",
            "CREATE INDEX IF NOT EXISTS idx_salt_events_tag on
    salt_events (tag)",
            "CREATE INDEX IF NOT EXISTS idx_salt_events_data ON salt_events
    USING gin (data) with (fastupdate=on)",
        ],
    ),
];

/// The JSON columns: text bound, cast to `jsonb`.
const JSONB: (&str, &str) = ("", "::jsonb");
/// `alter_time`: Unix seconds bound as text, as Salt's `to_timestamp(time.time())`.
const TIMESTAMP: (&str, &str) = ("to_timestamp(", "::float8)");

const DIALECT: Dialect = Dialect {
    name: "pgjsonb",
    tables: TABLES,
    begin: None,
    returns: Insert {
        into: "INSERT INTO salt_returns (fun, jid, return, id, success, full_ret, alter_time) ",
        values: &[
            (Cell::Fun, "", ""),
            (Cell::Jid, "", ""),
            (Cell::Return, JSONB.0, JSONB.1),
            (Cell::Id, "", ""),
            (Cell::Success, "", ""),
            (Cell::FullRet, JSONB.0, JSONB.1),
            (Cell::Now, TIMESTAMP.0, TIMESTAMP.1),
        ],
    },
    events: Some(Insert {
        into: "INSERT INTO salt_events (tag, data, master_id, alter_time) ",
        values: &[
            (Cell::Tag, "", ""),
            (Cell::Data, JSONB.0, JSONB.1),
            (Cell::MasterId, "", ""),
            (Cell::Now, TIMESTAMP.0, TIMESTAMP.1),
        ],
    }),
    save_load: "INSERT INTO jids (jid, load) VALUES ($1, $2::jsonb) \
                ON CONFLICT (jid) DO UPDATE SET load = EXCLUDED.load",
    get_load: "SELECT load::text FROM jids WHERE jid = $1",
    get_jid: "SELECT id, full_ret::text FROM salt_returns WHERE jid = $1",
    get_fun: "SELECT s.id, s.full_ret::text FROM salt_returns s \
              JOIN (SELECT fun, id, MAX(jid) AS jid FROM salt_returns \
              GROUP BY fun, id) m \
              ON s.fun = m.fun AND s.id = m.id AND s.jid = m.jid \
              WHERE s.fun = $1",
    get_jids: "SELECT jid, load::text FROM jids",
    get_minions: "SELECT DISTINCT id FROM salt_returns",
    stored: "SELECT jid, id FROM salt_returns WHERE jid IN ",
    numbered: true,
    success: Truth {
        yes: "true",
        no: "false",
        missing: "false",
    },
    full_ret: FullRet::Dict,
    replaces_req: false,
    refuses_values,
    packet_limit: None,
};

/// PostgreSQL's errors about the values themselves: SQLSTATE classes 22 (data: text it cannot
/// encode, JSON it cannot read) and 23 (constraints), and 54000 (a value past a limit, such as
/// an index row too large).
fn refuses_values(err: &dyn DatabaseError) -> bool {
    err.code()
        .is_some_and(|state| state.starts_with("22") || state.starts_with("23") || state == "54000")
}

/// The returner for `--return pgjsonb`, `event_return: pgjsonb` and `master_job_cache: pgjsonb`.
pub(super) fn build(options: &Options) -> Result<Arc<dyn Returner>, ReturnerError> {
    let text = |option, default| sql::text(options, option, default);
    let host = text("host", "localhost")?;
    let user = text("user", "salt")?;
    let pass = text("pass", "salt")?;
    let db = text("db", "salt")?;
    let port = sql::port(options, 5432)?;
    let mut connect = PgConnectOptions::new()
        .host(&host)
        .port(port)
        .username(&user)
        .password(&pass)
        .database(&db);
    if let Some(mode) = sql::optional_text(options, "sslmode")? {
        let mode = PgSslMode::from_str(&mode).map_err(|_| {
            options.invalid(
                "sslmode",
                "expected disable, allow, prefer, require, verify-ca or verify-full",
                &mode.as_str().into(),
            )
        })?;
        connect = connect.ssl_mode(mode);
    }
    if let Some(root) = sql::optional_text(options, "sslrootcert")? {
        connect = connect.ssl_root_cert(root);
    }
    if let Some(cert) = sql::optional_text(options, "sslcert")? {
        connect = connect.ssl_client_cert(cert);
    }
    if let Some(key) = sql::optional_text(options, "sslkey")? {
        connect = connect.ssl_client_key(key);
    }
    if sql::optional_text(options, "sslcrl")?.is_some() {
        return Err(ReturnerError::Option {
            returner: "pgjsonb",
            option: "pgjsonb.sslcrl".to_owned(),
            problem: "halite cannot check certificates against a revocation list; \
                      remove the option (or the revoked certificates from sslrootcert)"
                .to_owned(),
        });
    }
    let server = format!("postgresql://{user}@{host}:{port}/{db}");
    let store = Store::<Postgres>::new(&DIALECT, server, connect, options)?;
    Ok(Arc::new(store))
}
