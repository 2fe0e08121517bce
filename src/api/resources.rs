//! Salt's resource endpoints, each a lowstate chunk of its own run as the caller (so the same
//! `external_auth` checks apply): `/minions` (`grains.items`, and jobs started with
//! `local_async`), `/jobs` (the `jobs.list_jobs` and `jobs.list_job` runners) and `/keys`
//! (the `key.list_all` and `key.finger` wheel functions). Accepting, rejecting and deleting
//! keys goes through `POST /` with `client: wheel`, as in Salt.

use std::sync::Arc;

use axum::Router;
use axum::extract::{Path, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;
use axum::routing::get;

use super::Shared;
use super::auth::{Authenticated, Session};
use super::body::Lowstate;
use super::lowstate::{Refusal, execute, execute_all};
use super::reply::{Reply, allow};
use crate::event::{Value, map_get};

/// `/minions[/<id>]`, `/jobs[/<jid>]`, `/keys[/<id>]`.
pub(super) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/minions",
            allow("GET, HEAD, POST", get(minions).post(start_jobs)),
        )
        .route("/minions/{mid}", allow("GET, HEAD, POST", get(minion)))
        .route("/jobs", allow("GET, HEAD", get(jobs)))
        .route("/jobs/{jid}", allow("GET, HEAD", get(job)))
        .route("/keys", allow("GET, HEAD, POST", get(keys)))
        .route("/keys/{mid}", allow("GET, HEAD, POST", get(key)))
}

/// A chunk from string pairs.
fn chunk(pairs: &[(&str, &str)]) -> Value {
    Value::Map(
        pairs
            .iter()
            .map(|(key, value)| (Value::from(*key), Value::from(*value)))
            .collect(),
    )
}

/// Runs one chunk: its one entry of the `return` list.
async fn one(shared: &Shared, session: &Session, chunk: &Value) -> Result<Value, Refusal> {
    let mut entries = execute(shared, session, chunk).await?;
    Ok(entries.pop().unwrap_or(Value::Nil))
}

/// Renders `{"return": [value]}`.
fn listed(value: Value, headers: &HeaderMap) -> Response {
    let data = Value::Map(vec![(Value::from("return"), Value::Array(vec![value]))]);
    Reply::ok(data).private().render(headers)
}

/// `GET /minions`: every minion's grains.
async fn minions(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Authenticated(session): Authenticated,
) -> Response {
    grains(&shared, &session, "*", &headers).await
}

/// `GET /minions/<id>`: one minion's grains.
async fn minion(
    State(shared): State<Arc<Shared>>,
    Path(mid): Path<String>,
    headers: HeaderMap,
    Authenticated(session): Authenticated,
) -> Response {
    grains(&shared, &session, &mid, &headers).await
}

async fn grains(shared: &Shared, session: &Session, tgt: &str, headers: &HeaderMap) -> Response {
    let chunk = chunk(&[("client", "local"), ("tgt", tgt), ("fun", "grains.items")]);
    match one(shared, session, &chunk).await {
        Ok(value) => listed(value, headers),
        Err(refusal) => refusal.reply().render(headers),
    }
}

/// `POST /minions`: the chunks run with `local_async`; `202 Accepted` with a link to each
/// job.
async fn start_jobs(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Authenticated(session): Authenticated,
    Lowstate(mut chunks): Lowstate,
) -> Response {
    for chunk in &mut chunks {
        if let Value::Map(entries) = chunk {
            crate::event::map_set(entries, Value::from("client"), Value::from("local_async"));
        }
    }
    let returns = match execute_all(&shared, &session, &chunks).await {
        Ok(returns) => returns,
        Err(refusal) => return refusal.reply().render(&headers),
    };
    let links = returns
        .iter()
        .filter_map(|job| map_get(job, "jid").and_then(Value::as_str))
        .map(|jid| {
            Value::Map(vec![(
                Value::from("href"),
                Value::from(format!("/jobs/{jid}")),
            )])
        })
        .collect();
    let data = Value::Map(vec![
        (Value::from("return"), Value::Array(returns)),
        (
            Value::from("_links"),
            Value::Map(vec![(Value::from("jobs"), Value::Array(links))]),
        ),
    ]);
    let mut reply = Reply::ok(data).private();
    reply.status = StatusCode::ACCEPTED;
    reply.render(&headers)
}

/// `GET /jobs`: the job cache's jobs (`jobs.list_jobs`).
async fn jobs(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Authenticated(session): Authenticated,
) -> Response {
    let chunk = chunk(&[("client", "runner"), ("fun", "jobs.list_jobs")]);
    match one(&shared, &session, &chunk).await {
        Ok(value) => listed(value, &headers),
        Err(refusal) => refusal.reply().render(&headers),
    }
}

/// `GET /jobs/<jid>`: `{"info": [jobs.list_job], "return": [{minion: return}]}`.
async fn job(
    State(shared): State<Arc<Shared>>,
    Path(jid): Path<String>,
    headers: HeaderMap,
    Authenticated(session): Authenticated,
) -> Response {
    let chunk = chunk(&[
        ("client", "runner"),
        ("fun", "jobs.list_job"),
        ("jid", &jid),
    ]);
    let info = match one(&shared, &session, &chunk).await {
        Ok(info) => info,
        Err(refusal) => return refusal.reply().render(&headers),
    };
    let returns = map_get(&info, "Result")
        .and_then(Value::as_map)
        .map(|minions| {
            minions
                .iter()
                .map(|(id, ret)| {
                    let value = map_get(ret, "return").cloned().unwrap_or(Value::Nil);
                    (id.clone(), value)
                })
                .collect()
        })
        .unwrap_or_default();
    let data = Value::Map(vec![
        (Value::from("info"), Value::Array(vec![info])),
        (
            Value::from("return"),
            Value::Array(vec![Value::Map(returns)]),
        ),
    ]);
    Reply::ok(data).private().render(&headers)
}

/// `GET /keys`: `key.list_all`'s return.
async fn keys(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Authenticated(session): Authenticated,
) -> Response {
    wheel_return(&shared, &session, &[("fun", "key.list_all")], &headers).await
}

/// `GET /keys/<id>`: `key.finger`'s return for the id.
async fn key(
    State(shared): State<Arc<Shared>>,
    Path(mid): Path<String>,
    headers: HeaderMap,
    Authenticated(session): Authenticated,
) -> Response {
    let pairs = [("fun", "key.finger"), ("match", mid.as_str())];
    wheel_return(&shared, &session, &pairs, &headers).await
}

/// `{"return": <the wheel function's return>}`, out of its envelope.
async fn wheel_return(
    shared: &Shared,
    session: &Session,
    pairs: &[(&str, &str)],
    headers: &HeaderMap,
) -> Response {
    let mut pairs = pairs.to_vec();
    pairs.insert(0, ("client", "wheel"));
    match one(shared, session, &chunk(&pairs)).await {
        Ok(envelope) => {
            let returned = map_get(&envelope, "data")
                .and_then(|data| map_get(data, "return"))
                .cloned()
                .unwrap_or(Value::Map(Vec::new()));
            Reply::ok(Value::Map(vec![(Value::from("return"), returned)]))
                .private()
                .render(headers)
        }
        Err(refusal) => refusal.reply().render(headers),
    }
}
