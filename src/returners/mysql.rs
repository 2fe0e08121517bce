//! Salt's `mysql` returner: jobs, returns and events in MySQL or MariaDB, in Salt's tables, so
//! that Salt's own returner and halite's read and write the same rows.
//!
//! Salt's schema (`salt/returners/mysql.py`), created here when a table is missing:
//! `jids(jid varchar(255) UNIQUE, load mediumtext)`; `salt_returns(fun varchar(50), jid, return
//! mediumtext, id, success varchar(10), full_ret mediumtext, alter_time TIMESTAMP DEFAULT
//! CURRENT_TIMESTAMP)` with keys on `id`, `jid` and `fun`; `salt_events(id BIGINT
//! AUTO_INCREMENT, tag varchar(255), data mediumtext, alter_time, master_id varchar(255))` with a
//! key on `tag`; InnoDB, `DEFAULT CHARSET=utf8` (MariaDB's three-byte utf8: a return holding
//! characters beyond the BMP, such as emoji, is refused, as it is with Salt).
//!
//! Each column holds what Salt writes: `return` and `full_ret` are Python's `json.dumps` of the
//! return and of the whole return dict, `success` is `1` or `0` (how MySQLdb renders a Python
//! bool; `0` without one), events' `data` is the JSON of their data and `master_id` the
//! configuration's `id`. A return whose jid is `req` gets a new jid, and its load (the return
//! itself) is saved under it, as Salt does. `save_load` leaves a jid already stored as it is.
//!
//! Options, where Salt reads them (`mysql.host`, `returner.mysql.host`, a `--return_config`
//! profile…), with Salt's defaults: `host` (`salt`; reached over TCP, `localhost` too, where
//! MySQLdb would take the server's default socket), `port` (3306), `user` (`salt`), `pass`
//! (`salt`), `db` (`salt`); `ssl_ca`, `ssl_cert`, `ssl_key` (unset, or Salt's `None`: no TLS;
//! with `ssl_ca` the server's certificate must be signed by it).
//!
//! What differs from Salt: a batch of returns or events is one transaction (see [`super::sql`]);
//! a server that is down answers `Unavailable` within [`super::sql::CONNECT_TIMEOUT`] instead of
//! a log line; `get_fun` answers each minion's own latest run (Salt's query may answer an older
//! run of a minion whose jid is another minion's latest).

use std::sync::Arc;

use sqlx::MySql;
use sqlx::error::DatabaseError;
use sqlx::mysql::{MySqlConnectOptions, MySqlDatabaseError, MySqlSslMode};

use super::sql::{self, Cell, Dialect, FullRet, Insert, Store, Truth};
use super::{Options, Returner, ReturnerError};

/// Salt's tables, as its module's documentation creates them.
const TABLES: &[(&str, &[&str])] = &[
    (
        "jids",
        &["CREATE TABLE IF NOT EXISTS `jids` (
  `jid` varchar(255) NOT NULL,
  `load` mediumtext NOT NULL,
  UNIQUE KEY `jid` (`jid`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8"],
    ),
    (
        "salt_returns",
        &["CREATE TABLE IF NOT EXISTS `salt_returns` (
  `fun` varchar(50) NOT NULL,
  `jid` varchar(255) NOT NULL,
  `return` mediumtext NOT NULL,
  `id` varchar(255) NOT NULL,
  `success` varchar(10) NOT NULL,
  `full_ret` mediumtext NOT NULL,
  `alter_time` TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
  KEY `id` (`id`),
  KEY `jid` (`jid`),
  KEY `fun` (`fun`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8"],
    ),
    (
        "salt_events",
        &["CREATE TABLE IF NOT EXISTS `salt_events` (
`id` BIGINT NOT NULL AUTO_INCREMENT,
`tag` varchar(255) NOT NULL,
`data` mediumtext NOT NULL,
`alter_time` TIMESTAMP DEFAULT CURRENT_TIMESTAMP,
`master_id` varchar(255) NOT NULL,
PRIMARY KEY (`id`),
KEY `tag` (`tag`)
) ENGINE=InnoDB DEFAULT CHARSET=utf8"],
    ),
];

const DIALECT: Dialect = Dialect {
    name: "mysql",
    tables: TABLES,
    begin: None,
    returns: Insert {
        into: "INSERT INTO `salt_returns` (`fun`, `jid`, `return`, `id`, `success`, `full_ret`) ",
        values: &[
            (Cell::Fun, "", ""),
            (Cell::Jid, "", ""),
            (Cell::Return, "", ""),
            (Cell::Id, "", ""),
            (Cell::Success, "", ""),
            (Cell::FullRet, "", ""),
        ],
    },
    events: Some(Insert {
        into: "INSERT INTO `salt_events` (`tag`, `data`, `master_id`) ",
        values: &[
            (Cell::Tag, "", ""),
            (Cell::Data, "", ""),
            (Cell::MasterId, "", ""),
        ],
    }),
    // Salt ignores the duplicate-key error; this statement ignores only that.
    save_load: "INSERT INTO `jids` (`jid`, `load`) VALUES (?, ?) \
                ON DUPLICATE KEY UPDATE `jid` = `jid`",
    get_load: "SELECT `load` FROM `jids` WHERE `jid` = ?",
    get_jid: "SELECT `id`, `full_ret` FROM `salt_returns` WHERE `jid` = ?",
    get_fun: "SELECT s.`id`, s.`full_ret` FROM `salt_returns` s \
              JOIN (SELECT `fun`, `id`, MAX(`jid`) AS jid FROM `salt_returns` \
              GROUP BY `fun`, `id`) m \
              ON s.`fun` = m.`fun` AND s.`id` = m.`id` AND s.`jid` = m.jid \
              WHERE s.`fun` = ?",
    get_jids: "SELECT DISTINCT `jid`, `load` FROM `jids`",
    get_minions: "SELECT DISTINCT `id` FROM `salt_returns`",
    stored: "SELECT `jid`, `id` FROM `salt_returns` WHERE `jid` IN ",
    numbered: false,
    success: Truth {
        yes: "1",
        no: "0",
        missing: "0",
    },
    full_ret: FullRet::Dict,
    replaces_req: true,
    refuses_values,
    packet_limit: Some("SELECT CAST(@@max_allowed_packet AS CHAR)"),
};

/// MySQL's errors about the values themselves: `NULL` or a duplicate in a key, a value out of
/// range or too long, text the column's character set cannot hold, a row past
/// `max_allowed_packet`; and their SQLSTATE classes 22 (data) and 23 (constraints).
fn refuses_values(err: &dyn DatabaseError) -> bool {
    let number = err
        .try_downcast_ref::<MySqlDatabaseError>()
        .map(MySqlDatabaseError::number);
    matches!(
        number,
        Some(1048 | 1062 | 1153 | 1264 | 1292 | 1366 | 1406 | 3140)
    ) || err
        .code()
        .is_some_and(|state| state.starts_with("22") || state.starts_with("23"))
}

/// The returner for `--return mysql`, `event_return: mysql` and `master_job_cache: mysql`.
pub(super) fn build(options: &Options) -> Result<Arc<dyn Returner>, ReturnerError> {
    let text = |option, default| sql::text(options, option, default);
    let host = text("host", "salt")?;
    let user = text("user", "salt")?;
    let pass = text("pass", "salt")?;
    let db = text("db", "salt")?;
    let port = sql::port(options, 3306)?;
    let mut connect = MySqlConnectOptions::new()
        .host(&host)
        .port(port)
        .username(&user)
        .password(&pass)
        .database(&db)
        // Salt's driver leaves the session's time zone as the server has it.
        .timezone(None)
        .ssl_mode(MySqlSslMode::Disabled);
    let ca = sql::optional_text(options, "ssl_ca")?;
    let cert = sql::optional_text(options, "ssl_cert")?;
    let key = sql::optional_text(options, "ssl_key")?;
    if cert.is_some() || key.is_some() {
        connect = connect.ssl_mode(MySqlSslMode::Required);
    }
    if let Some(ca) = ca {
        connect = connect.ssl_mode(MySqlSslMode::VerifyCa).ssl_ca(ca);
    }
    if let Some(cert) = cert {
        connect = connect.ssl_client_cert(cert);
    }
    if let Some(key) = key {
        connect = connect.ssl_client_key(key);
    }
    let server = format!("mysql://{user}@{host}:{port}/{db}");
    let store = Store::<MySql>::new(&DIALECT, server, connect, options)?;
    Ok(Arc::new(store))
}
