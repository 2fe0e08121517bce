//! Salt's lowstate: `POST /` and `POST /run` take a list of commands ("chunks"), each naming a
//! `client` (`local`, `local_async`, `local_batch`, `runner`, `runner_async`, `wheel`) and its
//! function and arguments, and answer `{"return": [one entry per chunk]}` in the shapes Salt's
//! `NetapiClient` gives.
//!
//! The clients work as the commands do: `local*` publish through the master's request socket
//! and follow returns on its bus as `salt` does; runner and wheel functions run here as
//! `salt-run` runs them, their events fired on the master's bus. Every chunk is checked
//! against `external_auth` before it runs; the first chunk that fails ends the request with
//! Salt's status for the failure, as Salt's does.

use std::ops::ControlFlow;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::{get, post};
use tokio::sync::Semaphore;
use tokio_util::task::TaskTracker;

use super::Shared;
use super::auth::{Authenticated, Call, Session};
use super::body::Lowstate;
use super::reply::{Reply, allow};
use crate::client::batch::{Batch, BatchSize, Progress};
use crate::client::local::{LocalClient, Outcome, Published};
use crate::client::{ClientError, Publisher};
use crate::event::{Event, Value, jid, map_get};
use crate::proto::PublishRequest;
use crate::py::value::py_str;
use crate::runners::{
    Announcement, Caller, EventSink, MasterFunction, RUNNERS, RunnerError, announced,
};
use crate::salt_yaml::{CliArgs, parse_cli_args};
use crate::signature::Signature;
use crate::wheel::WHEELS;

/// The clients halite serves, in Salt's (alphabetical) order.
pub(crate) const CLIENTS: [&str; 6] = [
    "local",
    "local_async",
    "local_batch",
    "runner",
    "runner_async",
    "wheel",
];

/// Runner calls `runner_async` may have under way at once; past it, `503`.
const ASYNC_RUNNERS: usize = 64;

/// Salt's `rest_timeout` default: how long a `runner` chunk may run, in seconds.
const REST_TIMEOUT: f64 = 300.0;

/// Keys of a chunk that steer the call rather than being the function's arguments.
const INTERNAL: [&str; 14] = [
    "client",
    "fun",
    "arg",
    "kwarg",
    "token",
    "username",
    "password",
    "eauth",
    "user",
    "key",
    "timeout",
    "full_return",
    "print_event",
    "cmd",
];

/// The message of a refused `runner` or `wheel` chunk, Salt's master's: of type `token`, or
/// `eauth` for credentials given with the call (`/run`), which mint no token.
fn auth_failure(session: &Session) -> String {
    let kind = if session.token.is_empty() {
        "eauth"
    } else {
        "token"
    };
    format!(
        "Authentication failure of type \"{kind}\" occurred for user {}.",
        session.user
    )
}

/// Why a chunk did not run: Salt's status and a message.
#[derive(Debug)]
pub(crate) struct Refusal {
    status: StatusCode,
    message: String,
}

impl Refusal {
    pub(crate) fn new(status: StatusCode, message: impl Into<String>) -> Self {
        Refusal {
            status,
            message: message.into(),
        }
    }

    fn bad(message: impl Into<String>) -> Self {
        Self::new(StatusCode::BAD_REQUEST, message)
    }

    /// Salt's answer when the master cannot be reached.
    fn master_down(err: &ClientError) -> Self {
        tracing::warn!("the master is not reachable: {err}");
        Self::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "Salt Master is not available.",
        )
    }

    /// The error reply.
    pub(crate) fn reply(self) -> Reply {
        Reply::error(self.status, self.message)
    }
}

/// The `runner_async` calls under way, tracked so that a stopping API waits for them.
#[derive(Debug)]
pub(crate) struct Background {
    tasks: TaskTracker,
    permits: Arc<Semaphore>,
}

impl Default for Background {
    fn default() -> Self {
        Background {
            tasks: TaskTracker::new(),
            permits: Arc::new(Semaphore::new(ASYNC_RUNNERS)),
        }
    }
}

impl Background {
    /// Waits up to `limit` for the calls under way.
    pub(crate) async fn finish(&self, limit: Duration) {
        self.tasks.close();
        if tokio::time::timeout(limit, self.tasks.wait())
            .await
            .is_err()
        {
            tracing::warn!("runner_async calls still under way after {limit:?}: cut off");
        }
    }
}

/// `GET /`, `POST /` and `POST /run`.
pub(super) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/", allow("GET, HEAD, POST", get(welcome).post(lowstate)))
        .route("/run", allow("POST", post(run)))
}

/// `GET /`: Salt's welcome, with the clients served.
async fn welcome(headers: HeaderMap) -> Response {
    let clients = CLIENTS.iter().map(|name| Value::from(*name)).collect();
    Reply::ok(object(vec![
        ("return", Value::from("Welcome")),
        ("clients", Value::Array(clients)),
    ]))
    .render(&headers)
}

/// `POST /`: the chunks, as the caller the request's token names.
async fn lowstate(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Authenticated(session): Authenticated,
    Lowstate(chunks): Lowstate,
) -> Response {
    match execute_all(&shared, &session, &chunks).await {
        Ok(returns) => Reply::ok(object(vec![("return", Value::Array(returns))]))
            .private()
            .render(&headers),
        Err(refusal) => refusal.reply().render(&headers),
    }
}

/// Runs the chunks in order as `session`: the entries of their `return` list; the first
/// refused ends the run.
pub(crate) async fn execute_all(
    shared: &Shared,
    session: &Session,
    chunks: &[Value],
) -> Result<Vec<Value>, Refusal> {
    let mut returns = Vec::with_capacity(chunks.len());
    for chunk in chunks {
        returns.append(&mut execute(shared, session, chunk).await?);
    }
    Ok(returns)
}

/// `POST /run`: the chunks, each carrying its own credentials (`token`, or `username`,
/// `password` and `eauth`), with no session.
async fn run(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Lowstate(chunks): Lowstate,
) -> Response {
    let mut returns = Vec::with_capacity(chunks.len());
    for chunk in &chunks {
        let ran = match chunk_session(&shared, chunk).await {
            Ok(session) => execute(&shared, &session, chunk).await,
            Err(refusal) => Err(refusal),
        };
        match ran {
            Ok(mut entries) => returns.append(&mut entries),
            Err(refusal) => return refusal.reply().render(&headers),
        }
    }
    Reply::ok(object(vec![("return", Value::Array(returns))])).render(&headers)
}

/// Who a `/run` chunk's credentials name.
async fn chunk_session(shared: &Shared, chunk: &Value) -> Result<Session, Refusal> {
    let unauthorized = |message: &str| Refusal::new(StatusCode::UNAUTHORIZED, message);
    if let Some(token) = map_get(chunk, "token") {
        let token = token
            .as_str()
            .filter(|token| !token.is_empty() && token.bytes().all(|b| b.is_ascii_hexdigit()))
            .ok_or_else(|| unauthorized("Invalid token"))?;
        return shared
            .tokens
            .get(token)
            .ok_or_else(|| unauthorized("Authentication failure of type \"token\" occurred."));
    }
    if map_get(chunk, "eauth").is_some() {
        return shared
            .credentials(chunk)
            .await
            .ok_or_else(|| unauthorized("Authentication failure of type \"eauth\" occurred."));
    }
    Err(unauthorized("No authentication credentials given"))
}

/// Runs one chunk as `session`: its entries of the `return` list (one, or one per minion for
/// `local_batch`).
pub(crate) async fn execute(
    shared: &Shared,
    session: &Session,
    chunk: &Value,
) -> Result<Vec<Value>, Refusal> {
    if chunk.as_map().is_none() {
        return Err(Refusal::bad("Each lowstate chunk must be a map"));
    }
    let client = map_get(chunk, "client").and_then(Value::as_str);
    if let Some(client) = client.filter(|client| CLIENTS.contains(client))
        && !enabled(shared, client)
    {
        return Err(Refusal::bad(format!(
            "Client disabled: '{client}'. Add to 'netapi_enable_clients' master config option \
             to enable."
        )));
    }
    let one = |value: Value| vec![value];
    match client {
        Some("local") => local(shared, session, chunk).await.map(one),
        Some("local_async") => local_async(shared, session, chunk).await.map(one),
        Some("local_batch") => local_batch(shared, session, chunk).await,
        Some("runner") => runner(shared, session, chunk).await.map(one),
        Some("runner_async") => runner_async(shared, session, chunk).await.map(one),
        Some("wheel") => wheel(shared, session, chunk).await.map(one),
        _ => {
            let named = py_str(map_get(chunk, "client").unwrap_or(&Value::Nil));
            Err(Refusal::bad(format!("Invalid client specified: '{named}'")))
        }
    }
}

/// Whether the master config's `netapi_enable_clients` lets `client` run: Salt 3006's list of
/// the clients its API may use. Unset, every client is enabled (Salt's default enables none,
/// which would leave a first try with nothing to call).
fn enabled(shared: &Shared, client: &str) -> bool {
    match shared.config.get("netapi_enable_clients") {
        None | Some(Value::Nil) => true,
        Some(Value::Array(names)) => names.iter().any(|name| name.as_str() == Some(client)),
        Some(_) => false,
    }
}

/// A map with string keys, in order.
fn object(entries: Vec<(&str, Value)>) -> Value {
    Value::Map(
        entries
            .into_iter()
            .map(|(key, value)| (Value::from(key), value))
            .collect(),
    )
}

/// A chunk's string field.
fn text<'a>(chunk: &'a Value, key: &str) -> Option<&'a str> {
    map_get(chunk, key).and_then(Value::as_str)
}

/// A chunk's required string field.
fn required<'a>(chunk: &'a Value, key: &str, client: &str) -> Result<&'a str, Refusal> {
    text(chunk, key)
        .filter(|value| !value.is_empty())
        .ok_or_else(|| Refusal::bad(format!("The {client} client needs '{key}', a string")))
}

/// Whether a chunk's flag is set.
fn flag(chunk: &Value, key: &str) -> bool {
    map_get(chunk, key).is_some_and(crate::signature::truthy)
}

/// A chunk's `timeout`, if it has one.
fn timeout(chunk: &Value) -> Result<Option<Duration>, Refusal> {
    match map_get(chunk, "timeout") {
        None | Some(Value::Nil) => Ok(None),
        Some(value) => {
            let number = value
                .as_str()
                .and_then(|text| text.parse::<f64>().ok())
                .map(Value::F64);
            crate::config::seconds(number.as_ref().unwrap_or(value))
                .map(Some)
                .ok_or_else(|| {
                    Refusal::bad(format!("timeout must be a number of seconds, not {value}"))
                })
        }
    }
}

// ---- local, local_async, local_batch -------------------------------------------------------

/// What a `local*` chunk asks for.
struct Job {
    request: PublishRequest,
    client: LocalClient,
}

impl Job {
    /// Reads the chunk and checks the caller may run it.
    fn new(
        shared: &Shared,
        session: &Session,
        chunk: &Value,
        client: &str,
    ) -> Result<Self, Refusal> {
        let tgt = map_get(chunk, "tgt")
            .filter(|tgt| tgt.is_str() || tgt.is_array())
            .ok_or_else(|| Refusal::bad(format!("The {client} client needs 'tgt', a target")))?;
        let tgt_type = text(chunk, "tgt_type")
            .or_else(|| text(chunk, "expr_form"))
            .unwrap_or("glob");
        let fun = required(chunk, "fun", client)?;
        // A target no one could use is the caller's mistake, whatever they may run: 400 with
        // the reason, before the ACL (which refuses what it cannot read) would say 401.
        let target = crate::target::nodegroup::NodeGroups::configured(&shared.config)
            .target(tgt, tgt_type)
            .map_err(|err| Refusal::bad(err.to_string()))?;
        let mut arg = match map_get(chunk, "arg") {
            None | Some(Value::Nil) => Vec::new(),
            Some(Value::Array(items)) => items.clone(),
            Some(one) => vec![one.clone()],
        };
        match map_get(chunk, "kwarg") {
            None | Some(Value::Nil) => {}
            Some(Value::Map(entries)) if entries.is_empty() => {}
            // Salt's condition_kwarg: keyword arguments travel as a marked map after the rest.
            Some(Value::Map(entries)) => {
                let mut kwargs = vec![(Value::from("__kwarg__"), Value::Boolean(true))];
                kwargs.extend(entries.iter().cloned());
                arg.push(Value::Map(kwargs));
            }
            Some(other) => return Err(Refusal::bad(format!("kwarg must be a map, not {other}"))),
        }
        let arg = Value::Array(arg);
        // Checked as the minion will read them, keywords given twice merged.
        let args = crate::functions::Call::from_load(fun, &arg).args;
        let call = Call::Local {
            target: &target,
            fun,
            args: &args,
        };
        if !shared.permitted(session, &call) {
            return Err(Refusal::new(
                StatusCode::UNAUTHORIZED,
                "Authorization error occurred.",
            ));
        }
        let mut local = LocalClient::new(&shared.config)
            .map_err(|err| Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, err.to_string()))?;
        if let Some(timeout) = timeout(chunk)? {
            local = local.with_timeout(timeout);
        }
        let request = PublishRequest {
            tgt: tgt.clone(),
            tgt_type: tgt_type.to_owned(),
            fun: fun.to_owned(),
            arg,
            ret: text(chunk, "ret").unwrap_or_default().to_owned(),
            user: session.user.clone(),
            jid: None,
            ret_config: None,
            ret_kwargs: None,
        };
        Ok(Job {
            request,
            client: local,
        })
    }

    /// Publishes the job, with a listener on the bus subscribed before, so that no return is
    /// missed.
    async fn publish(
        &self,
        request: &PublishRequest,
    ) -> Result<(crate::client::Listener, Published), Refusal> {
        let listener = self
            .client
            .listen()
            .await
            .map_err(|err| Refusal::master_down(&err))?;
        let published = self
            .client
            .publish(request)
            .await
            .map_err(published_error)?;
        Ok((listener, published))
    }

    /// Publishes `request` and gathers its returns: `{minion: return}`, `False` for a minion
    /// that did not return, as Salt's `LocalClient.cmd`.
    async fn gather(
        &self,
        request: &PublishRequest,
        full_return: bool,
    ) -> Result<Vec<(Value, Value)>, Refusal> {
        let (mut listener, published) = self.publish(request).await?;
        let mut returns = Vec::new();
        if published.jid.is_empty() {
            return Ok(returns);
        }
        self.client
            .gather(&mut listener, &published, &request.user, |outcome| {
                returns.push(returned(outcome, full_return));
            })
            .await
            .map_err(|err| Refusal::master_down(&err))?;
        Ok(returns)
    }
}

/// A minion's `(id, return)` as Salt's `LocalClient.cmd` gives it: the return (whole with
/// `full_return`), `False` for a minion that did not return.
fn returned(outcome: Outcome, full_return: bool) -> (Value, Value) {
    let (id, value) = match outcome {
        Outcome::Returned(ret) if full_return => {
            let value = full(&ret.data);
            (ret.id, value)
        }
        Outcome::Returned(ret) => {
            let value = ret.value();
            (ret.id, value)
        }
        Outcome::NoResponse(id) | Outcome::NotConnected(id) => (id, Value::Boolean(false)),
    };
    (Value::from(id), value)
}

/// A publish that failed: a target the client or the master refuses is the caller's mistake
/// (`400`, with the reason `salt` prints), else the master is down (`503`).
fn published_error(err: ClientError) -> Refusal {
    match err {
        ClientError::NotDelivered(message) => {
            Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, message)
        }
        err @ (ClientError::Target(_)
        | ClientError::Refused(_)
        | ClientError::RequestTooLarge { .. }) => Refusal::bad(err.to_string()),
        other => Refusal::master_down(&other),
    }
}

/// A return as Salt's `full_return` gives it: `ret`, then `out`, `retcode` and `jid` when the
/// minion sent them.
fn full(data: &Value) -> Value {
    let mut entries = vec![(
        Value::from("ret"),
        map_get(data, "return").cloned().unwrap_or(Value::Nil),
    )];
    for key in ["out", "retcode", "jid"] {
        if let Some(value) = map_get(data, key) {
            entries.push((Value::from(key), value.clone()));
        }
    }
    Value::Map(entries)
}

/// `local`: `{minion: return}`.
async fn local(shared: &Shared, session: &Session, chunk: &Value) -> Result<Value, Refusal> {
    let job = Job::new(shared, session, chunk, "local")?;
    let returns = job.gather(&job.request, flag(chunk, "full_return")).await?;
    Ok(Value::Map(returns))
}

/// `local_async`: `{"jid", "minions"}`, or `{}` when no minion matched.
async fn local_async(shared: &Shared, session: &Session, chunk: &Value) -> Result<Value, Refusal> {
    let job = Job::new(shared, session, chunk, "local_async")?;
    let (_, published) = job.publish(&job.request).await?;
    if published.jid.is_empty() {
        return Ok(Value::Map(Vec::new()));
    }
    let minions = published.minions.into_iter().map(Value::from).collect();
    Ok(object(vec![
        ("jid", Value::from(published.jid)),
        ("minions", Value::Array(minions)),
    ]))
}

/// `local_batch`: the minions that answer `test.ping` run the job `batch` at a time (a number
/// or a percentage, Salt's default `10%`), in sorted order, each returning minion's place
/// going to the next one, as `salt --batch` runs it; one `{minion: return}` entry per minion.
async fn local_batch(
    shared: &Shared,
    session: &Session,
    chunk: &Value,
) -> Result<Vec<Value>, Refusal> {
    let job = Job::new(shared, session, chunk, "local_batch")?;
    let batch = Batch {
        size: batch_size(map_get(chunk, "batch"))?,
        wait: Duration::ZERO,
        failhard: false,
    };
    let full_return = flag(chunk, "full_return");
    let mut entries = Vec::new();
    batch
        .run(&job.client, &job.request, |progress| {
            if let Progress::Finished { outcome, .. } = progress {
                let (id, value) = returned(outcome, full_return);
                entries.push(Value::Map(vec![(id, value)]));
            }
            ControlFlow::Continue(())
        })
        .await
        .map_err(published_error)?;
    Ok(entries)
}

/// The chunk's `batch` as Salt's batch reads it: a count or a percentage (`10%`, or `%10`),
/// `10%` when absent.
fn batch_size(batch: Option<&Value>) -> Result<BatchSize, Refusal> {
    let Some(batch) = batch.filter(|batch| !batch.is_nil()) else {
        return Ok(BatchSize::Percent(10.0));
    };
    let shown = py_str(batch);
    let parsed = match batch {
        // A number counts minions, its fraction cut off as Python's `int` cuts it.
        Value::F64(number) => number.trunc().to_string().parse(),
        _ => shown.parse(),
    };
    parsed.map_err(|_| {
        Refusal::bad(format!(
            "Invalid batch data sent: {shown}\nData must be in the form of %10, 10% or 3"
        ))
    })
}

// ---- runner, runner_async, wheel -----------------------------------------------------------

/// The arguments of a runner or wheel chunk, read as Salt's clients read them: `arg` (strings
/// `name=value` are keyword arguments, as on the command line), then `kwarg`, then the chunk's
/// other keys that name a parameter of the function (`signature`; none for a function that
/// does not exist).
fn master_args(chunk: &Value, signature: Option<&Signature>) -> CliArgs {
    let mut args = CliArgs::default();
    let items = match map_get(chunk, "arg") {
        None | Some(Value::Nil) => Vec::new(),
        Some(Value::Array(items)) => items.clone(),
        Some(one) => vec![one.clone()],
    };
    for item in items {
        match item {
            Value::String(ref text) => {
                let parsed = parse_cli_args(&[text.as_str().unwrap_or_default()]);
                args.args.extend(parsed.args);
                for (key, value) in parsed.kwargs {
                    args.set_kwarg(key, value);
                }
            }
            Value::Map(entries)
                if entries.iter().any(|(k, v)| {
                    k.as_str() == Some("__kwarg__") && *v == Value::Boolean(true)
                }) =>
            {
                for (key, value) in entries {
                    if let Some(key) = key.as_str().filter(|key| *key != "__kwarg__") {
                        args.set_kwarg(key.to_owned(), value);
                    }
                }
            }
            other => args.args.push(other),
        }
    }
    if let Some(Value::Map(entries)) = map_get(chunk, "kwarg") {
        for (key, value) in entries {
            if let Some(key) = key.as_str() {
                args.set_kwarg(key.to_owned(), value.clone());
            }
        }
    }
    for (key, value) in chunk.as_map().map(Vec::as_slice).unwrap_or_default() {
        if let Some(key) = key.as_str()
            && !INTERNAL.contains(&key)
            && signature
                .is_some_and(|signature| signature.kwargs || signature.params.contains(&key))
        {
            args.set_kwarg(key.to_owned(), value.clone());
        }
    }
    args
}

/// A connection to the master's bus for a call's events; none means the master is down.
async fn sink(shared: &Shared) -> Result<EventSink, Refusal> {
    let refused = |err: crate::config::ConfigError| {
        Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, err.to_string())
    };
    let address = shared.config.bus().map_err(refused)?;
    let framing = shared.config.framing().map_err(refused)?;
    let limit = shared.config.max_event_size().map_err(refused)?;
    let publisher = Publisher::connect(&address, framing)
        .await
        .map_err(|err| Refusal::master_down(&err))?;
    Ok(EventSink::Publisher(publisher.with_max_event_size(limit)))
}

/// Closes a sink, flushing its events.
async fn close(sink: EventSink) {
    if let EventSink::Publisher(publisher) = sink
        && let Err(err) = publisher.close().await
    {
        tracing::warn!("runner events may be lost: {err}");
    }
}

/// The runner a chunk names and its arguments, if the caller may run it with them.
fn runner_of(
    shared: &Shared,
    session: &Session,
    chunk: &Value,
    client: &str,
) -> Result<(&'static MasterFunction, CliArgs), Refusal> {
    let fun = required(chunk, "fun", client)?;
    let runner = crate::runners::find(RUNNERS, fun);
    let args = master_args(chunk, runner.map(|runner| &runner.signature));
    if !shared.permitted(session, &Call::Runner(fun, &args)) {
        return Err(Refusal::new(
            StatusCode::UNAUTHORIZED,
            auth_failure(session),
        ));
    }
    let runner = runner.ok_or_else(|| {
        Refusal::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("'{fun}' is not available."),
        )
    })?;
    Ok((runner, args))
}

/// Runs a runner between its `salt/run/<jid>/new` and `…/ret` events, stopped after `limit`.
async fn call_runner(
    shared: &Shared,
    sink: &mut EventSink,
    runner: &'static MasterFunction,
    announcement: &Announcement,
    args: &CliArgs,
    limit: Duration,
) -> Result<Value, RunnerError> {
    // Called like a reaction: a failure fires `…/ret` with `success: false`, as Salt's
    // runner client does, and the call is stopped after its time.
    announced(
        sink,
        announcement,
        Caller::Reaction { limit },
        async |sink| (runner.run)(&shared.config, sink, args).await,
    )
    .await
}

/// A runner's failure as Salt's runner client returns it.
fn runner_failure(fun: &str, err: &RunnerError) -> Value {
    match err {
        RunnerError::Arguments(message) => {
            Value::from(format!("\nPassed invalid arguments: {message}\n"))
        }
        other => Value::from(format!("Exception occurred in runner {fun}: {other}")),
    }
}

/// `runner`: the runner's return (`full_return`: its whole `…/ret` event, `{"tag", "data"}`).
async fn runner(shared: &Shared, session: &Session, chunk: &Value) -> Result<Value, Refusal> {
    let (runner, args) = runner_of(shared, session, chunk, "runner")?;
    let limit = match timeout(chunk)? {
        Some(limit) => limit,
        None => shared
            .config
            .get_seconds("rest_timeout", REST_TIMEOUT)
            .map_err(|err| Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, err.to_string()))?,
    };
    let mut sink = sink(shared).await?;
    let announcement = Announcement::runner(runner.name(), &args, &session.user);
    let called = call_runner(shared, &mut sink, runner, &announcement, &args, limit).await;
    close(sink).await;
    let (returned, success) = match called {
        Ok(value) => (value, true),
        Err(RunnerError::TimedOut(_)) => {
            return Err(Refusal::new(
                StatusCode::GATEWAY_TIMEOUT,
                format!("RunnerClient job '{}' timed out", runner.name()),
            ));
        }
        Err(err) => (runner_failure(runner.name(), &err), false),
    };
    if !flag(chunk, "full_return") {
        return Ok(returned);
    }
    let mut event = announcement.finished(&returned, success);
    event.stamp();
    Ok(object(vec![
        ("tag", Value::from(event.tag)),
        ("data", event.data),
    ]))
}

/// `runner_async`: `{"tag": "salt/run/<jid>", "jid"}` at once; the runner runs on, its events
/// on the bus.
async fn runner_async(shared: &Shared, session: &Session, chunk: &Value) -> Result<Value, Refusal> {
    let (runner, args) = runner_of(shared, session, chunk, "runner_async")?;
    let limit = shared
        .config
        .get_seconds("rest_timeout", REST_TIMEOUT)
        .map_err(|err| Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, err.to_string()))?;
    let permit = shared
        .background
        .permits
        .clone()
        .try_acquire_owned()
        .map_err(|_| {
            Refusal::new(
                StatusCode::SERVICE_UNAVAILABLE,
                format!("{ASYNC_RUNNERS} runner_async calls are under way; try again when one has finished"),
            )
        })?;
    let mut sink = sink(shared).await?;
    let announcement = Announcement::runner(runner.name(), &args, &session.user);
    let started = announcement.started();
    let tag = started
        .tag
        .strip_suffix("/new")
        .unwrap_or(&started.tag)
        .to_owned();
    let jid = tag.rsplit('/').next().unwrap_or_default().to_owned();
    let config = shared.config.clone();
    shared.background.tasks.spawn(async move {
        let _permit = permit;
        let called = announced(
            &mut sink,
            &announcement,
            Caller::Reaction { limit },
            async |sink| (runner.run)(&config, sink, &args).await,
        )
        .await;
        if let Err(err) = called {
            tracing::warn!("runner_async {}: {err}", runner.name());
        }
        close(sink).await;
    });
    Ok(object(vec![
        ("tag", Value::from(tag)),
        ("jid", Value::from(jid)),
    ]))
}

/// `wheel`: Salt's master's envelope, `{"tag": "salt/wheel/<jid>", "data": {"fun", "jid",
/// "tag", "user", "_stamp", "return", "success"}}`, with the same data fired as
/// `salt/wheel/<jid>/new` (without `return` and `success`) and `…/ret`.
async fn wheel(shared: &Shared, session: &Session, chunk: &Value) -> Result<Value, Refusal> {
    let fun = required(chunk, "fun", "wheel")?;
    let found = crate::runners::find(WHEELS, fun);
    let args = master_args(chunk, found.map(|wheel| &wheel.signature));
    if !shared.permitted(session, &Call::Wheel(fun, &args)) {
        return Err(Refusal::new(
            StatusCode::UNAUTHORIZED,
            auth_failure(session),
        ));
    }
    let mut sink = sink(shared).await?;
    let jid = jid::gen_jid();
    let tag = format!("salt/wheel/{jid}");
    let mut new = Event::new(
        format!("{tag}/new"),
        object(vec![
            ("fun", Value::from(format!("wheel.{fun}"))),
            ("jid", Value::from(jid.as_str())),
            ("tag", Value::from(tag.as_str())),
            ("user", Value::from(session.user.as_str())),
        ]),
    )
    .map_err(|err| Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, err.to_string()))?;
    new.stamp();
    let fired = fire_stamped(&mut sink, &new).await;
    let called = match found {
        Some(wheel) => (wheel.run)(&shared.config, &mut sink, &args).await,
        None => Err(RunnerError::unavailable(fun, "wheel functions", WHEELS)),
    };
    let (returned, success) = match called {
        Ok(value) => (value, true),
        Err(RunnerError::Unavailable { .. }) => (
            Value::from(format!(
                "Exception occurred in wheel {fun}: '{fun}' is not available."
            )),
            false,
        ),
        Err(err) => (
            Value::from(format!("Exception occurred in wheel {fun}: {err}")),
            false,
        ),
    };
    let mut data = new.data;
    if let Value::Map(entries) = &mut data {
        entries.push((Value::from("return"), returned));
        entries.push((Value::from("success"), Value::Boolean(success)));
    }
    let ret = Event::new(format!("{tag}/ret"), data)
        .map_err(|err| Refusal::new(StatusCode::INTERNAL_SERVER_ERROR, err.to_string()))?;
    let fired = match fired {
        Ok(()) => fire_stamped(&mut sink, &ret).await,
        failed => failed,
    };
    if let Err(err) = fired {
        tracing::warn!("wheel {fun}: {err}");
    }
    close(sink).await;
    Ok(object(vec![("tag", Value::from(tag)), ("data", ret.data)]))
}

/// Fires an event that carries its `_stamp` already.
async fn fire_stamped(sink: &mut EventSink, event: &Event) -> Result<(), ClientError> {
    match sink {
        EventSink::Publisher(publisher) => publisher.fire_stamped(event).await,
        EventSink::Bus(..) | EventSink::Discard => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_sizes_are_salts() {
        let size = |batch: Value, minions| batch_size(Some(&batch)).unwrap().of(minions);
        assert_eq!(size(Value::from("2"), 5), 2);
        assert_eq!(size(Value::from(3), 5), 3);
        assert_eq!(size(Value::from(2.9), 5), 2);
        assert_eq!(size(Value::from("50%"), 5), 2);
        assert_eq!(size(Value::from("%50"), 5), 2);
        assert_eq!(size(Value::from("10%"), 5), 1);
        assert_eq!(batch_size(None).unwrap().of(30), 3);
        assert_eq!(batch_size(Some(&Value::Nil)).unwrap().of(30), 3);
        // Salt's batch loops forever on these: refused, as the command line refuses them.
        for bad in [
            Value::from("x"),
            Value::from(0),
            Value::from("0%"),
            Value::from(0.5),
        ] {
            let refusal = batch_size(Some(&bad)).unwrap_err();
            assert_eq!(refusal.status, StatusCode::BAD_REQUEST, "{bad}");
            assert_eq!(
                refusal.message,
                format!(
                    "Invalid batch data sent: {}\nData must be in the form of %10, 10% or 3",
                    py_str(&bad)
                )
            );
        }
    }

    #[test]
    fn runner_arguments_are_read_as_salts_clients_read_them() {
        let chunk: Value = serde_json::from_str(
            r#"{"client": "runner", "fun": "test.arg", "arg": ["a", "n=1"],
                "kwarg": {"k": "v"}, "jid": "x", "tgt": "*"}"#,
        )
        .unwrap();
        let signature = Signature {
            name: "x.y",
            summary: "",
            params: &["jid"],
            required: 0,
            kwargs: false,
            usage: "",
        };
        let args = master_args(&chunk, Some(&signature));
        assert_eq!(args.args, vec![Value::from("a")]);
        let keys: Vec<&str> = args.kwargs.iter().map(|(k, _)| k.as_str()).collect();
        assert_eq!(keys, ["n", "k", "jid"]);
        assert_eq!(args.kwargs[0].1, Value::from(1));
    }
}
