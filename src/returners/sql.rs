//! What the SQL returners ([`super::mysql`], [`super::pgjsonb`], [`super::sqlite3`]) share: the
//! row values Salt writes for a return or an event, a lazily connected pool, Salt's tables
//! created when missing, batches stored in one transaction, the `get_*` queries' answers, and
//! how a database's errors map to [`ReturnerError`]. Each returner is a [`Dialect`]: its SQL, its
//! schema and how its driver renders a value, with nothing else of its own.
//!
//! # One attempt, stored once
//!
//! A batch of returns or events is one transaction, its rows in multi-row `INSERT`s (at most
//! [`CHUNK_ROWS`] rows or [`CHUNK_BYTES`] of values each): all are stored or none. When the
//! database refuses a row's values (too long, not encodable, a constraint), the batch is tried
//! again a row at a time, each in its own transaction, so that the others are stored and the
//! call answers `Rejected` for the refused ones (retrying them would not help); should the store
//! fail meanwhile, the rows already committed are recognised as below when the batch is retried.
//!
//! When the store cannot be reached, or the connection is lost or times out, the call answers
//! `Unavailable` and the caller retries later. The outcome of a `COMMIT` whose answer never came
//! is unknown: the rows may be stored. Salt's `salt_returns` has no unique key (and its schema is
//! kept as it is), so after such a failure, and for the first batch after start (a previous run
//! may have died the same way), the returns of a batch whose `(jid, id)` is already stored are
//! skipped: a retried batch is stored exactly once. A `req` jid replaced by a new one (Salt's
//! mysql) keeps its new jid across retries for the same reason, within one run: a `req` return
//! retried by the next run gets another jid and may be stored twice. Events have no key to
//! recognise them by: after an unknown outcome a retried batch of events may be stored twice.

use std::borrow::Cow;
use std::collections::{HashMap, HashSet};
use std::fmt;
use std::future::Future;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::Duration;

use sqlx::error::DatabaseError;
use sqlx::pool::{Pool, PoolOptions};
use sqlx::{
    ColumnIndex, ConnectOptions, Connection, Database, Decode, Encode, Executor, IntoArguments,
    Type,
};

use super::{JobLoad, Options, Pending, Returner, ReturnerError, jid_instance, unsupported};
use crate::event::{Event, Value, map_get};
use crate::py::json::{self, Format};

/// Connections per pool: a daemon's returns come in batches, one transaction each.
const POOL_SIZE: u32 = 4;
/// How long to wait for a connection, so that a store that is down or silent never holds a
/// caller longer.
pub(super) const CONNECT_TIMEOUT: Duration = Duration::from_secs(5);
/// How long one call may take in all; a call past it answers `Unavailable` (a server that
/// stopped answering mid-transaction).
const CALL_TIMEOUT: Duration = Duration::from_secs(60);
/// Rows in one `INSERT`: far below every database's limit on bound values.
const CHUNK_ROWS: usize = 500;
/// Bytes of values in one `INSERT` (a row larger than this goes alone): well below MySQL's
/// `max_allowed_packet` (16 MiB by default in MariaDB).
const CHUNK_BYTES: usize = 4 << 20;
/// What a one-row `INSERT` adds to its values' bytes in a packet: the statement's text and
/// each value's length prefix, generously.
const PACKET_OVERHEAD: usize = 64 << 10;
/// `req` jids remembered for retries; past this many (batches that were never retried) they
/// are forgotten.
const REQ_MEMORY: usize = 10_000;

/// The SQL one returner speaks and how its Python driver renders values.
pub(super) struct Dialect {
    /// The returner's name.
    pub name: &'static str,
    /// Salt's tables, each with the statements creating it and its indexes when missing.
    pub tables: &'static [(&'static str, &'static [&'static str])],
    /// How a write transaction begins, when not the driver's `BEGIN`.
    pub begin: Option<&'static str>,
    /// The `INSERT` of returns.
    pub returns: Insert,
    /// The `INSERT` of events; `None` for a returner without `event_return`.
    pub events: Option<Insert>,
    /// Stores `(jid, load JSON)`; Salt's answer to a jid already stored.
    pub save_load: &'static str,
    /// `load` of the job with jid `(1)`.
    pub get_load: &'static str,
    /// `(id, full_ret)` of the returns to jid `(1)`.
    pub get_jid: &'static str,
    /// `(id, full_ret)` of each minion's latest run of function `(1)`. (Salt's query matches a
    /// row whose jid is the latest of any minion, which may be another minion's older run.)
    pub get_fun: &'static str,
    /// `(jid, load)` of every job.
    pub get_jids: &'static str,
    /// The ids of the minions with returns.
    pub get_minions: &'static str,
    /// `SELECT jid, id FROM salt_returns WHERE jid IN `, a list of jids to follow.
    pub stored: &'static str,
    /// Whether placeholders are numbered (`$1`, PostgreSQL's) rather than `?`.
    pub numbered: bool,
    /// How the driver writes `success` into its text column.
    pub success: Truth,
    /// What `full_ret` holds.
    pub full_ret: FullRet,
    /// Whether a return whose jid is `req` gets a new jid and its load saved (Salt's mysql).
    pub replaces_req: bool,
    /// Whether an error is about the values (retrying them cannot help), beyond the constraint
    /// violations every database reports alike.
    pub refuses_values: fn(&dyn DatabaseError) -> bool,
    /// A query answering, as text, the largest statement the server takes, where the server
    /// closes the connection on a larger one (MySQL's `max_allowed_packet`): a row past it is
    /// refused before it is sent, since a closed connection cannot be told from an outage and
    /// the row would be retried for ever.
    pub packet_limit: Option<&'static str>,
}

/// An `INSERT` of many rows: `into`, then `VALUES (…), (…)` with `values` in each.
pub(super) struct Insert {
    /// `INSERT INTO <table> (<columns>) `.
    pub into: &'static str,
    /// Each column's value, with the SQL around its placeholder (a cast, a function).
    pub values: &'static [(Cell, &'static str, &'static str)],
}

/// A value of a stored row.
#[derive(Debug, Clone, Copy)]
pub(super) enum Cell {
    /// The return's `fun`.
    Fun,
    /// The return's `jid`.
    Jid,
    /// The return's minion `id`.
    Id,
    /// JSON of the return's `return`.
    Return,
    /// JSON of the whole return dict.
    FullRet,
    /// `success`, as the driver renders it ([`Truth`]).
    Success,
    /// Python's `str()` of a truthy `fun_args`, else NULL.
    FunArgs,
    /// Python's `str(datetime.now())`.
    Date,
    /// The Unix time, seconds with microseconds, as Python's `time.time()`.
    Now,
    /// The event's tag.
    Tag,
    /// JSON of the event's data.
    Data,
    /// The `id` of the master storing the event.
    MasterId,
}

/// How a Python driver writes a bool into a text column, and Salt's value when a return has no
/// `success`.
pub(super) struct Truth {
    /// `True`.
    pub yes: &'static str,
    /// `False`.
    pub no: &'static str,
    /// No `success` in the return.
    pub missing: &'static str,
}

/// What a returner's `full_ret` column holds.
#[derive(PartialEq, Eq)]
pub(super) enum FullRet {
    /// The whole return dict, which `get_jid` answers per minion.
    Dict,
    /// Only the return's `return`; `get_jid` answers `{"return": …}` per minion.
    Return,
}

/// One returner on one database: its options, its pool (made on first use) and what it knows
/// of earlier attempts.
pub(super) struct Store<DB: Database> {
    dialect: &'static Dialect,
    /// The store as messages name it, e.g. `mysql://salt@db:3306/salt`.
    server: String,
    options: <DB::Connection as Connection>::Options,
    pool: tokio::sync::OnceCell<Pool<DB>>,
    /// The server's [`Dialect::packet_limit`], read with the pool; 0 for none.
    packet_limit: AtomicU64,
    master_id: String,
    /// Bumped by every failed write whose outcome may be unknown; a batch that starts while it
    /// differs from `checked` skips returns already stored.
    failures: AtomicU64,
    checked: AtomicU64,
    /// The jids given to `req` returns not yet stored, by the return's JSON.
    req_jids: Mutex<HashMap<String, String>>,
}

impl<DB: Database> fmt::Debug for Store<DB> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Store")
            .field("returner", &self.dialect.name)
            .field("server", &self.server)
            .finish_non_exhaustive()
    }
}

impl<DB: Database> Store<DB> {
    /// A store of `dialect` at `server`, connecting with `options` on first use. The master's
    /// `id` (Salt's `__opts__["id"]`) goes into stored events.
    pub(super) fn new(
        dialect: &'static Dialect,
        server: String,
        options: <DB::Connection as Connection>::Options,
        config: &Options,
    ) -> Result<Self, ReturnerError> {
        let master_id = config.config().id().map_err(|err| ReturnerError::Option {
            returner: dialect.name,
            option: "id".to_owned(),
            problem: err.to_string(),
        })?;
        Ok(Self {
            dialect,
            server,
            options,
            pool: tokio::sync::OnceCell::new(),
            packet_limit: AtomicU64::new(0),
            master_id,
            // The first batch checks: a previous run may have died committing.
            failures: AtomicU64::new(1),
            checked: AtomicU64::new(0),
            req_jids: Mutex::new(HashMap::new()),
        })
    }
}

/// An option's text, `None` when unset or Salt's `None` (any case, as Salt's mysql reads it).
pub(super) fn optional_text(
    options: &Options,
    option: &str,
) -> Result<Option<String>, ReturnerError> {
    let text = options.text(option, "")?;
    Ok(Some(text).filter(|text| !text.is_empty() && !text.eq_ignore_ascii_case("none")))
}

/// An option's text, or `default` when unset or `None`.
pub(super) fn text(
    options: &Options,
    option: &str,
    default: &str,
) -> Result<String, ReturnerError> {
    Ok(optional_text(options, option)?.unwrap_or_else(|| default.to_owned()))
}

/// Option `port`, or `default`.
pub(super) fn port(options: &Options, default: u16) -> Result<u16, ReturnerError> {
    let port = options.number("port", default.into(), 1..=u16::MAX.into())?;
    Ok(u16::try_from(port).unwrap_or(default))
}

/// A return as Salt's SQL returners store it.
struct ReturnRow<'a> {
    ret: Cow<'a, Value>,
    fun: &'a str,
    jid: String,
    id: &'a str,
    /// Whether its jid replaces `req`, its load saved with it (the key it is remembered by).
    replaced: Option<String>,
}

impl<'a> ReturnRow<'a> {
    /// The row of return dict `ret`, or why it has none (Salt's returners fail on a return
    /// without these keys).
    fn new(ret: &'a Value) -> Result<Self, String> {
        let text = |key| {
            map_get(ret, key)
                .and_then(Value::as_str)
                .ok_or_else(|| format!("a return without a text `{key}`"))
        };
        if map_get(ret, "return").is_none() {
            return Err("a return without `return`".to_owned());
        }
        Ok(Self {
            fun: text("fun")?,
            jid: text("jid")?.to_owned(),
            id: text("id")?,
            ret: Cow::Borrowed(ret),
            replaced: None,
        })
    }

    /// Gives the return `jid` in its row and in its dict, as Salt's mysql does for `req`;
    /// `key` is what it is remembered by until stored.
    fn rejid(&mut self, jid: String, key: String) {
        if let Value::Map(entries) = self.ret.to_mut() {
            for (name, value) in entries.iter_mut() {
                if name.as_str() == Some("jid") {
                    *value = Value::from(jid.as_str());
                }
            }
        }
        self.jid = jid;
        self.replaced = Some(key);
    }
}

/// Something stored as one row.
trait Row {
    /// The value of `cell`, `None` for NULL.
    fn cell(&self, cell: Cell, dialect: &Dialect, master_id: &str) -> Option<String>;

    /// The `(jid, load JSON)` to save in the same transaction, before the row.
    fn load(&self) -> Option<(String, String)> {
        None
    }
}

impl Row for ReturnRow<'_> {
    fn cell(&self, cell: Cell, dialect: &Dialect, _: &str) -> Option<String> {
        let compact = |value: &Value| json::to_string(value, Format::COMPACT);
        Some(match cell {
            Cell::Fun => self.fun.to_owned(),
            Cell::Jid => self.jid.clone(),
            Cell::Id => self.id.to_owned(),
            Cell::Return => compact(map_get(&self.ret, "return")?),
            Cell::FullRet => compact(&self.ret),
            Cell::Success => {
                let truth = &dialect.success;
                match map_get(&self.ret, "success") {
                    None => truth.missing.to_owned(),
                    Some(Value::Boolean(true)) => truth.yes.to_owned(),
                    Some(Value::Boolean(false)) => truth.no.to_owned(),
                    Some(Value::Nil) => return None,
                    Some(other) => crate::py::value::py_str(other).into_owned(),
                }
            }
            Cell::FunArgs => map_get(&self.ret, "fun_args")
                .filter(|args| crate::py::value::truthy(args))
                .map(|args| crate::py::value::py_str(args).into_owned())?,
            Cell::Date => crate::event::jid::local_now(),
            Cell::Now => unix_now(),
            Cell::Tag | Cell::Data | Cell::MasterId => return None,
        })
    }

    fn load(&self) -> Option<(String, String)> {
        self.replaced.as_ref().map(|_| {
            (
                self.jid.clone(),
                json::to_string(&self.ret, Format::COMPACT),
            )
        })
    }
}

impl Row for Event {
    fn cell(&self, cell: Cell, _: &Dialect, master_id: &str) -> Option<String> {
        Some(match cell {
            Cell::Tag => self.tag.clone(),
            Cell::Data => json::to_string(&self.data, Format::COMPACT),
            Cell::MasterId => master_id.to_owned(),
            Cell::Now => unix_now(),
            _ => return None,
        })
    }
}

/// Python's `time.time()` as text, to the microsecond.
fn unix_now() -> String {
    let now = jiff::Timestamp::now();
    format!("{}.{:06}", now.as_second(), now.subsec_microsecond())
}

/// The bytes of a row's values.
fn row_bytes(row: &[Option<String>]) -> usize {
    row.iter().flatten().map(String::len).sum()
}

/// `rows` cut into `INSERT`s of at most [`CHUNK_ROWS`] rows and `max_bytes` of values.
fn chunks(rows: Vec<Vec<Option<String>>>, max_bytes: usize) -> Vec<Vec<Vec<Option<String>>>> {
    let mut chunks = Vec::new();
    let mut chunk: Vec<Vec<Option<String>>> = Vec::new();
    let mut bytes = 0;
    for row in rows {
        let size = row_bytes(&row);
        if !chunk.is_empty() && (chunk.len() == CHUNK_ROWS || bytes + size > max_bytes) {
            chunks.push(std::mem::take(&mut chunk));
            bytes = 0;
        }
        bytes += size;
        chunk.push(row);
    }
    if !chunk.is_empty() {
        chunks.push(chunk);
    }
    chunks
}

/// Python's `d[key] = value`: a key already there keeps its place and takes the new value.
fn dict_set(entries: &mut Vec<(Value, Value)>, key: String, value: Value) {
    match entries
        .iter_mut()
        .find(|(k, _)| k.as_str() == Some(key.as_str()))
    {
        Some(entry) => entry.1 = value,
        None => entries.push((Value::from(key), value)),
    }
}

impl<DB> Store<DB>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    for<'q, 'r> String: Encode<'q, DB> + Decode<'r, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    /// The pool, made (and Salt's missing tables created) on first use; a first use that fails
    /// leaves it to the next.
    async fn pool(&self) -> Result<&Pool<DB>, ReturnerError> {
        self.pool
            .get_or_try_init(|| async {
                let pool = PoolOptions::<DB>::new()
                    .max_connections(POOL_SIZE)
                    .acquire_timeout(CONNECT_TIMEOUT)
                    .connect_lazy_with(self.options.clone());
                self.create_tables(&pool).await?;
                self.read_packet_limit(&pool).await?;
                Ok(pool)
            })
            .await
    }

    /// Creates the tables that are missing, with Salt's DDL; tables already there are left as
    /// they are (and need no privilege to create).
    async fn create_tables(&self, pool: &Pool<DB>) -> Result<(), ReturnerError> {
        // A server that is away or refuses the user says so here, not as a missing table.
        if let Err(err) = pool.acquire().await {
            return Err(self.failure(err).await);
        }
        for (table, statements) in self.dialect.tables {
            let probe = format!("SELECT 1 FROM {table} WHERE 1 = 0");
            match sqlx::raw_sql(&probe).execute(pool).await {
                Ok(_) => continue,
                // The table is missing (or unreadable: creating it will say why).
                Err(sqlx::Error::Database(_)) => {}
                Err(err) => return Err(self.failure(err).await),
            }
            for statement in *statements {
                if let Err(err) = sqlx::raw_sql(statement).execute(pool).await {
                    return Err(self.unavailable(format!("cannot create table {table}: {err}")));
                }
            }
        }
        Ok(())
    }

    /// Reads the server's [`Dialect::packet_limit`].
    async fn read_packet_limit(&self, pool: &Pool<DB>) -> Result<(), ReturnerError> {
        let Some(query) = self.dialect.packet_limit else {
            return Ok(());
        };
        let (limit,): (String,) = match sqlx::query_as(query).fetch_one(pool).await {
            Ok(row) => row,
            // The server answered but would not say: rows are sent unchecked, as before.
            Err(sqlx::Error::Database(err)) => {
                tracing::warn!(
                    "{}: cannot read the server's packet limit ({err}); large rows are sent unchecked",
                    self.name()
                );
                return Ok(());
            }
            Err(err) => return Err(self.failure(err).await),
        };
        let limit = limit.trim().parse().map_err(|_| {
            self.unavailable(format!(
                "the server's packet limit {limit:?} is not a number"
            ))
        })?;
        self.packet_limit.store(limit, Ordering::Relaxed);
        Ok(())
    }

    /// `work`, bounded by [`CALL_TIMEOUT`].
    async fn timed<T>(
        &self,
        work: impl Future<Output = Result<T, ReturnerError>>,
    ) -> Result<T, ReturnerError> {
        match tokio::time::timeout(CALL_TIMEOUT, work).await {
            Ok(done) => done,
            Err(_) => {
                // A write cut off may have been committed.
                self.failures.fetch_add(1, Ordering::SeqCst);
                Err(self.unavailable(format!("no answer within {} s", CALL_TIMEOUT.as_secs())))
            }
        }
    }

    fn unavailable(&self, problem: String) -> ReturnerError {
        ReturnerError::Unavailable {
            returner: self.dialect.name,
            problem: format!("{}: {problem}", self.server),
        }
    }

    fn rejected(&self, problem: String) -> ReturnerError {
        ReturnerError::Rejected {
            returner: self.dialect.name,
            problem: format!("{}: {problem}", self.server),
        }
    }

    /// Whether the database refused the values themselves.
    fn refuses(&self, err: &sqlx::Error) -> bool {
        use sqlx::error::ErrorKind;
        match err {
            sqlx::Error::Database(db) => {
                matches!(
                    db.kind(),
                    ErrorKind::UniqueViolation
                        | ErrorKind::ForeignKeyViolation
                        | ErrorKind::NotNullViolation
                        | ErrorKind::CheckViolation
                ) || (self.dialect.refuses_values)(db.as_ref())
            }
            sqlx::Error::Encode(_) => true,
            _ => false,
        }
    }

    /// `err` as the caller should see it: refused values, or a store that is away.
    async fn failure(&self, err: sqlx::Error) -> ReturnerError {
        if self.refuses(&err) {
            return self.rejected(format!("refused: {err}"));
        }
        if !matches!(err, sqlx::Error::PoolTimedOut) {
            return self.unavailable(err.to_string());
        }
        // The pool retried a refused connection until its deadline and kept no reason.
        let why = match tokio::time::timeout(CONNECT_TIMEOUT, self.options.connect()).await {
            Ok(Ok(connection)) => {
                let _ = connection.close().await;
                format!("all {POOL_SIZE} connections stayed busy")
            }
            Ok(Err(err)) => err.to_string(),
            Err(_) => "it does not answer".to_owned(),
        };
        self.unavailable(format!(
            "no connection within {} s: {why}",
            CONNECT_TIMEOUT.as_secs()
        ))
    }

    /// The answer to a failed write; one that may have been committed makes the next batch
    /// check what is stored.
    async fn write_failure(&self, err: sqlx::Error) -> ReturnerError {
        let err = self.failure(err).await;
        if err.retryable() {
            self.failures.fetch_add(1, Ordering::SeqCst);
        }
        err
    }

    /// Stores `rows` through `insert` in one transaction (see the module's docs); returns why
    /// the rows the database refused, or that are past its packet limit, were refused.
    async fn write<R: Row + Sync>(
        &self,
        pool: &Pool<DB>,
        insert: &Insert,
        rows: &[R],
    ) -> Result<Vec<String>, sqlx::Error> {
        let dialect = self.dialect;
        let values_of = |row: &R| -> Vec<Option<String>> {
            insert
                .values
                .iter()
                .map(|(cell, _, _)| row.cell(*cell, dialect, &self.master_id))
                .collect()
        };
        let limit = self.packet_limit.load(Ordering::Relaxed);
        let mut refused = Vec::new();
        let (mut fitting, mut values) = (Vec::new(), Vec::new());
        for row in rows {
            let row_values = values_of(row);
            let bytes = row_bytes(&row_values) + PACKET_OVERHEAD;
            if limit > 0 && bytes as u64 > limit {
                refused.push(format!(
                    "a row of {bytes} bytes is past the server's max_allowed_packet of \
                     {limit} bytes (raise max_allowed_packet on the server to store it)"
                ));
            } else {
                fitting.push(row);
                values.push(row_values);
            }
        }
        let mut tx = self.begin(pool).await?;
        let all = async {
            for (jid, load) in fitting.iter().filter_map(|row| row.load()) {
                save_load(&mut tx, dialect, jid, load).await?;
            }
            // One INSERT stays within the server's packet limit too.
            let max_bytes = match usize::try_from(limit) {
                Ok(limit) if limit > 0 => CHUNK_BYTES.min(limit.saturating_sub(PACKET_OVERHEAD)),
                _ => CHUNK_BYTES,
            };
            for chunk in chunks(values, max_bytes) {
                insert_rows(&mut tx, dialect, insert, chunk).await?;
            }
            Ok(())
        }
        .await;
        match all {
            Ok(()) => return tx.commit().await.map(|()| refused),
            Err(err) if !self.refuses(&err) => return Err(err),
            Err(_) => {
                let _ = tx.rollback().await;
            }
        }
        // Some row's values were refused: store the others, each in its own transaction.
        for row in fitting {
            let values = values_of(row);
            let mut tx = self.begin(pool).await?;
            let stored = async {
                if let Some((jid, load)) = row.load() {
                    save_load(&mut tx, dialect, jid, load).await?;
                }
                insert_rows(&mut tx, dialect, insert, vec![values]).await
            }
            .await;
            match stored {
                Ok(()) => tx.commit().await?,
                Err(err) if self.refuses(&err) => {
                    let _ = tx.rollback().await;
                    refused.push(err.to_string());
                }
                Err(err) => return Err(err),
            }
        }
        Ok(refused)
    }

    async fn begin(&self, pool: &Pool<DB>) -> Result<sqlx::Transaction<'static, DB>, sqlx::Error> {
        match self.dialect.begin {
            Some(statement) => pool.begin_with(statement).await,
            None => pool.begin().await,
        }
    }

    /// The `(jid, id)` of `rows` already stored.
    async fn stored(
        &self,
        pool: &Pool<DB>,
        rows: &[ReturnRow<'_>],
    ) -> Result<HashSet<(String, String)>, sqlx::Error> {
        let jids: Vec<&str> = rows
            .iter()
            .map(|row| row.jid.as_str())
            .collect::<HashSet<_>>()
            .into_iter()
            .collect();
        let mut stored = HashSet::new();
        for chunk in jids.chunks(CHUNK_ROWS) {
            let mut sql = format!("{}(", self.dialect.stored);
            for n in 0..chunk.len() {
                if n > 0 {
                    sql.push_str(", ");
                }
                sql.push_str(&self.dialect.placeholder(n + 1));
            }
            sql.push(')');
            let mut query = sqlx::query_as::<DB, (String, String)>(&sql);
            for jid in chunk {
                query = query.bind((*jid).to_owned());
            }
            stored.extend(query.fetch_all(pool).await?);
        }
        Ok(stored)
    }

    async fn store_returns(&self, returns: &[Value]) -> Result<(), ReturnerError> {
        let mut malformed = Vec::new();
        let mut rows: Vec<ReturnRow<'_>> = returns
            .iter()
            .filter_map(|ret| ReturnRow::new(ret).map_err(|why| malformed.push(why)).ok())
            .collect();
        if self.dialect.replaces_req {
            self.replace_req(&mut rows);
        }
        let failures = self.failures.load(Ordering::SeqCst);
        let mut refused = Vec::new();
        if !rows.is_empty() {
            let pool = self.pool().await?;
            if failures != self.checked.load(Ordering::SeqCst) {
                let stored = match self.stored(pool, &rows).await {
                    Ok(stored) => stored,
                    Err(err) => return Err(self.write_failure(err).await),
                };
                rows.retain(|row| !stored.contains(&(row.jid.clone(), row.id.to_owned())));
            }
        }
        if !rows.is_empty() {
            let pool = self.pool().await?;
            refused = match self.write(pool, &self.dialect.returns, &rows).await {
                Ok(refused) => refused,
                Err(err) => return Err(self.write_failure(err).await),
            };
        }
        self.checked.fetch_max(failures, Ordering::SeqCst);
        let stored: Vec<&String> = rows
            .iter()
            .filter_map(|row| row.replaced.as_ref())
            .collect();
        if !stored.is_empty() {
            let mut memory = self.req_jids.lock().expect("req jids lock");
            for key in stored {
                memory.remove(key);
            }
        }
        malformed.extend(refused);
        match malformed.first() {
            None => Ok(()),
            Some(first) => Err(self.rejected(format!(
                "{} of {} returns not stored, the first: {first}",
                malformed.len(),
                returns.len()
            ))),
        }
    }

    /// Gives each `req` return a new jid, the same one on every retry of its batch.
    fn replace_req(&self, rows: &mut [ReturnRow<'_>]) {
        let mut memory = self.req_jids.lock().expect("req jids lock");
        if memory.len() >= REQ_MEMORY {
            memory.clear();
        }
        for row in rows.iter_mut().filter(|row| row.jid == "req") {
            let key = json::to_string(&row.ret, Format::COMPACT);
            let jid = memory
                .entry(key.clone())
                .or_insert_with(crate::event::jid::gen_jid)
                .clone();
            row.rejid(jid, key);
        }
    }

    async fn store_events(&self, insert: &Insert, events: &[Event]) -> Result<(), ReturnerError> {
        if events.is_empty() {
            return Ok(());
        }
        let pool = self.pool().await?;
        let refused = match self.write(pool, insert, events).await {
            Ok(refused) => refused,
            Err(err) => return Err(self.write_failure(err).await),
        };
        match refused.first() {
            None => Ok(()),
            Some(first) => Err(self.rejected(format!(
                "{} of {} events not stored, the first: {first}",
                refused.len(),
                events.len()
            ))),
        }
    }

    /// Stores loads in one transaction (one disk flush for a batch, not one each).
    async fn store_loads(&self, loads: &[JobLoad]) -> Result<(), ReturnerError> {
        let pool = self.pool().await?;
        let saved = async {
            let mut tx = self.begin(pool).await?;
            for job in loads {
                let load = json::to_string(&job.load, Format::COMPACT);
                save_load(&mut tx, self.dialect, job.jid.clone(), load).await?;
            }
            tx.commit().await
        };
        match saved.await {
            Ok(()) => Ok(()),
            Err(err) => Err(self.failure(err).await),
        }
    }

    /// The `(text, text)` rows `sql` selects, with `arg` bound when given.
    async fn pairs(
        &self,
        sql: &'static str,
        arg: Option<&str>,
    ) -> Result<Vec<(String, String)>, ReturnerError> {
        let pool = self.pool().await?;
        let mut query = sqlx::query_as::<DB, (String, String)>(sql);
        if let Some(arg) = arg {
            query = query.bind(arg.to_owned());
        }
        match query.fetch_all(pool).await {
            Ok(rows) => Ok(rows),
            Err(err) => Err(self.failure(err).await),
        }
    }

    /// A stored JSON text as a value, as Python's `json.loads` reads it.
    fn parse(&self, what: &str, text: &str) -> Result<Value, ReturnerError> {
        serde_json::from_str(text)
            .map_err(|err| self.rejected(format!("{what} holds JSON that cannot be read: {err}")))
    }

    /// `{id: full_ret}` of `rows`, as Salt's `get_jid` and `get_fun` build it; `{id: {"return":
    /// full_ret}}` when `wrap`.
    fn by_minion(&self, rows: Vec<(String, String)>, wrap: bool) -> Result<Value, ReturnerError> {
        let mut answer = Vec::new();
        for (id, text) in rows {
            let mut value = self.parse(&format!("the return of {id}"), &text)?;
            if wrap {
                value = Value::Map(vec![(Value::from("return"), value)]);
            }
            dict_set(&mut answer, id, value);
        }
        Ok(Value::Map(answer))
    }

    async fn load(&self, jid: &str) -> Result<Value, ReturnerError> {
        let pool = self.pool().await?;
        let text = sqlx::query_scalar::<DB, String>(self.dialect.get_load)
            .bind(jid.to_owned())
            .fetch_optional(pool)
            .await;
        match text {
            Ok(Some(text)) => self.parse(&format!("the load of {jid}"), &text),
            Ok(None) => Ok(Value::Map(Vec::new())),
            Err(err) => Err(self.failure(err).await),
        }
    }

    async fn jobs(&self) -> Result<Value, ReturnerError> {
        let mut answer = Vec::new();
        for (jid, text) in self.pairs(self.dialect.get_jids, None).await? {
            let load = self.parse(&format!("the load of {jid}"), &text)?;
            let instance = jid_instance(&jid, &load);
            dict_set(&mut answer, jid, instance);
        }
        Ok(Value::Map(answer))
    }

    async fn minions(&self) -> Result<Vec<String>, ReturnerError> {
        let pool = self.pool().await?;
        let ids = sqlx::query_scalar::<DB, String>(self.dialect.get_minions)
            .fetch_all(pool)
            .await;
        match ids {
            Ok(ids) => Ok(ids),
            Err(err) => Err(self.failure(err).await),
        }
    }
}

/// Salt's `save_load` statement: `(jid, load JSON)`.
async fn save_load<DB>(
    connection: &mut DB::Connection,
    dialect: &Dialect,
    jid: String,
    load: String,
) -> Result<(), sqlx::Error>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> String: Encode<'q, DB> + Type<DB>,
{
    sqlx::query(dialect.save_load)
        .bind(jid)
        .bind(load)
        .execute(connection)
        .await
        .map(|_| ())
}

/// One multi-row `INSERT` of `rows` through `insert`; the statement holds placeholders only,
/// the values are bound.
async fn insert_rows<DB>(
    connection: &mut DB::Connection,
    dialect: &Dialect,
    insert: &Insert,
    rows: Vec<Vec<Option<String>>>,
) -> Result<(), sqlx::Error>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
{
    let mut sql = format!("{}VALUES ", insert.into);
    let mut n = 0;
    for (i, _) in rows.iter().enumerate() {
        sql.push_str(if i == 0 { "(" } else { ", (" });
        for (j, (_, before, after)) in insert.values.iter().enumerate() {
            n += 1;
            if j > 0 {
                sql.push_str(", ");
            }
            sql.push_str(before);
            sql.push_str(&dialect.placeholder(n));
            sql.push_str(after);
        }
        sql.push(')');
    }
    let mut query = sqlx::query::<DB>(&sql);
    for value in rows.into_iter().flatten() {
        query = query.bind(value);
    }
    query.execute(connection).await.map(|_| ())
}

impl Dialect {
    /// The `n`th placeholder (from 1).
    fn placeholder(&self, n: usize) -> Cow<'static, str> {
        match self.numbered {
            true => Cow::Owned(format!("${n}")),
            false => Cow::Borrowed("?"),
        }
    }
}

impl<DB> Returner for Store<DB>
where
    DB: Database,
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    for<'q> Option<String>: Encode<'q, DB> + Type<DB>,
    for<'q, 'r> String: Encode<'q, DB> + Decode<'r, DB> + Type<DB>,
    usize: ColumnIndex<DB::Row>,
{
    fn name(&self) -> &'static str {
        self.dialect.name
    }

    fn returns<'a>(&'a self, returns: &'a [Value]) -> Pending<'a, ()> {
        Box::pin(self.timed(self.store_returns(returns)))
    }

    fn events<'a>(&'a self, events: &'a [Event]) -> Pending<'a, ()> {
        match &self.dialect.events {
            Some(insert) => Box::pin(self.timed(self.store_events(insert, events))),
            None => unsupported(self.dialect.name, "event_return", "store events"),
        }
    }

    fn save_load<'a>(
        &'a self,
        jid: &'a str,
        load: &'a Value,
        minions: &'a [String],
    ) -> Pending<'a, ()> {
        let job = JobLoad {
            jid: jid.to_owned(),
            load: load.clone(),
            minions: minions.to_vec(),
        };
        Box::pin(self.timed(async move { self.store_loads(&[job]).await }))
    }

    fn save_loads<'a>(&'a self, loads: &'a [JobLoad]) -> Pending<'a, ()> {
        // Salt's SQL returners keep no list of targeted minions (`save_minions` is a no-op).
        Box::pin(self.timed(self.store_loads(loads)))
    }

    fn get_load<'a>(&'a self, jid: &'a str) -> Pending<'a, Value> {
        Box::pin(self.timed(self.load(jid)))
    }

    fn get_jid<'a>(&'a self, jid: &'a str) -> Pending<'a, Value> {
        Box::pin(self.timed(async move {
            let rows = self.pairs(self.dialect.get_jid, Some(jid)).await?;
            self.by_minion(rows, self.dialect.full_ret == FullRet::Return)
        }))
    }

    fn get_fun<'a>(&'a self, fun: &'a str) -> Pending<'a, Value> {
        Box::pin(self.timed(async move {
            let rows = self.pairs(self.dialect.get_fun, Some(fun)).await?;
            self.by_minion(rows, false)
        }))
    }

    fn get_jids(&self) -> Pending<'_, Value> {
        Box::pin(self.timed(self.jobs()))
    }

    fn get_minions(&self) -> Pending<'_, Vec<String>> {
        Box::pin(self.timed(self.minions()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn inserts_are_cut_by_rows_and_by_bytes() {
        let row = |size: usize| vec![Some("x".repeat(size)), None];
        let many = chunks(
            (0..CHUNK_ROWS * 2 + 1).map(|_| row(1)).collect(),
            CHUNK_BYTES,
        );
        assert_eq!(
            many.iter().map(Vec::len).collect::<Vec<_>>(),
            [CHUNK_ROWS, CHUNK_ROWS, 1]
        );
        let big = chunks(
            vec![row(CHUNK_BYTES), row(1), row(CHUNK_BYTES - 1), row(2)],
            CHUNK_BYTES,
        );
        assert_eq!(big.iter().map(Vec::len).collect::<Vec<_>>(), [1, 2, 1]);
        assert!(chunks(Vec::new(), CHUNK_BYTES).is_empty());
        // Under a smaller packet limit, fewer rows go in one INSERT.
        let small: Vec<usize> = chunks(vec![row(900), row(900), row(900)], 1000)
            .iter()
            .map(Vec::len)
            .collect();
        assert_eq!(small, [1, 1, 1]);
    }

    #[test]
    fn dict_set_keeps_the_first_place_and_the_last_value() {
        let mut entries = Vec::new();
        dict_set(&mut entries, "b".into(), Value::from(1));
        dict_set(&mut entries, "a".into(), Value::from(2));
        dict_set(&mut entries, "b".into(), Value::from(3));
        assert_eq!(Value::Map(entries).to_string(), r#"{"b": 3, "a": 2}"#);
    }
}
