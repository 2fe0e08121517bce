//! `GET /events`: the master's events as Server-Sent Events, Salt's bytes (`retry: 400`, then
//! `tag:` and `data:` lines per event) plus what Salt's stream lacks: an `id:` line per event and
//! resuming after it (`Last-Event-ID`, or `?last_event_id=` for clients that cannot set
//! headers), a `: keep-alive` comment after 15 idle seconds, a `?tag=` filter (a glob or regex
//! matching the whole tag, as `state.event`'s), and an end of stream when the token expires or
//! is logged out.
//!
//! The body is pulled by hyper as it writes: a client that does not read is not fed, and what
//! it is fed is the ring's frames themselves (shared, never copied per client).
//!
//! Any logged-in caller may watch; as in Salt, no permission is checked. A token in the query
//! (`?token=`, or Salt's `?salt_token=`) only with `token_in_query: True`.

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::{Query, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, Version, header};
use axum::response::Response;
use axum::routing::get;
use bytes::BytesMut;
use tokio::time::Instant;

use super::Shared;
use super::auth::{Authenticated, Session, UNAUTHORIZED};
use super::reply::{Reply, cors};
use super::stream::Cursor;
use crate::event::matching::ExprMatcher;

/// How long a stream may stay silent before a keep-alive comment, so that proxies and load
/// balancers do not take it for dead.
const KEEP_ALIVE: Duration = Duration::from_secs(15);

/// Salt's reconnection delay for `EventSource`, the stream's first line.
const RETRY: &[u8] = b"retry: 400\n";

/// The comment sent when nothing else was for [`KEEP_ALIVE`].
const KEEP_ALIVE_COMMENT: &[u8] = b": keep-alive\n\n";

/// How often a stream reads its token's file again, at most: Salt checks the token before every
/// event, a file read per event per client would cost too much.
const RECHECK: Duration = Duration::from_secs(1);

/// The routes of this module.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new().route("/events", get(events))
}

/// The query `/events` takes.
#[derive(Debug, Default)]
struct Params {
    /// The tag filter.
    tag: Option<ExprMatcher>,
    /// Where to resume.
    last_event_id: Option<String>,
    /// Salt's `salt_token`.
    salt_token: Option<String>,
}

impl Params {
    /// Reads the query; unknown parameters (Salt's `token` among them) are left to others.
    fn from_query(query: Vec<(String, String)>) -> Self {
        let mut params = Params::default();
        for (key, value) in query {
            match key.as_str() {
                "tag" if !value.is_empty() => params.tag = Some(ExprMatcher::whole(&value)),
                "last_event_id" => params.last_event_id = Some(value),
                "salt_token" => params.salt_token = Some(value),
                _ => {}
            }
        }
        params
    }
}

async fn events(
    State(shared): State<Arc<Shared>>,
    caller: Result<Authenticated, Response>,
    Query(query): Query<Vec<(String, String)>>,
    version: Version,
    headers: HeaderMap,
) -> Response {
    let params = Params::from_query(query);
    let session = match caller {
        Ok(Authenticated(session)) => session,
        Err(refused) => match params
            .salt_token
            .as_deref()
            .filter(|_| shared.options.token_in_query)
            .and_then(|token| shared.tokens.get(token))
        {
            Some(session) => session,
            // EventSource asks for `text/event-stream` only: refused in JSON all the same,
            // with the status that says why.
            None if refused.status() == StatusCode::NOT_ACCEPTABLE => {
                return Reply::error(StatusCode::UNAUTHORIZED, UNAUTHORIZED)
                    .render(&HeaderMap::new());
            }
            None => return refused,
        },
    };
    let resume = headers
        .get("last-event-id")
        .and_then(|value| value.to_str().ok())
        .or(params.last_event_id.as_deref());
    let stream = Stream {
        cursor: shared.events.cursor(resume),
        filter: params.tag,
        token: TokenCheck::new(&session),
        shared: shared.clone(),
        started: false,
        pending: VecDeque::new(),
    };
    let body = futures_util::stream::unfold(stream, |mut stream| async move {
        let chunk = stream.next().await?;
        Some((Ok::<_, std::convert::Infallible>(chunk), stream))
    });
    let mut response = Response::new(Body::from_stream(body));
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static("text/event-stream;charset=utf-8"),
    );
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // A connection-level header: HTTP/2 forbids it.
    if version == Version::HTTP_11 {
        headers.insert(header::CONNECTION, HeaderValue::from_static("keep-alive"));
    }
    // nginx would otherwise hold events back to fill its buffers.
    headers.insert("x-accel-buffering", HeaderValue::from_static("no"));
    cors(response)
}

/// Whether a stream's token still holds: not expired, and its file still there (a logout
/// removes it), read at most every [`RECHECK`].
pub(crate) struct TokenCheck {
    token: String,
    /// When the token expires, on tokio's clock (a century at most).
    pub expire: Instant,
    /// When the file was last read.
    checked: Instant,
}

impl TokenCheck {
    /// For `session`, just read from its file.
    pub fn new(session: &Session) -> Self {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map_or(0.0, |since| since.as_secs_f64());
        let left = (session.expire - now).max(0.0);
        let century = Duration::from_secs(100 * 365 * 86_400);
        TokenCheck {
            token: session.token.clone(),
            expire: Instant::now() + crate::config::seconds(&left.into()).unwrap_or(century),
            checked: Instant::now(),
        }
    }

    /// Whether the token may still receive events; the stream ends when not.
    pub fn holds(&mut self, shared: &Shared) -> bool {
        let now = Instant::now();
        if now >= self.expire {
            return false;
        }
        if now.duration_since(self.checked) < RECHECK {
            return true;
        }
        self.checked = now;
        shared.tokens.get(&self.token).is_some()
    }
}

/// One client's stream.
struct Stream {
    cursor: Cursor,
    filter: Option<ExprMatcher>,
    token: TokenCheck,
    shared: Arc<Shared>,
    started: bool,
    /// The frames of the batch being sent, handed to hyper one at a time as it asks for more.
    pending: VecDeque<Bytes>,
}

/// Frames under this size are copied together into one chunk, up to this size: a chunk per
/// small event would cost hyper a write and the client a read each. Larger frames go alone,
/// shared with the ring. A client that stops reading holds at most one such copy.
const COALESCE: usize = 16 * 1024;

/// The next chunk of `pending`: one large frame as it is, or small ones joined.
fn next_chunk(pending: &mut VecDeque<Bytes>) -> Option<Bytes> {
    let first = pending.pop_front()?;
    if pending
        .front()
        .is_none_or(|next| first.len() + next.len() > COALESCE)
    {
        return Some(first);
    }
    let mut chunk = BytesMut::with_capacity(COALESCE);
    chunk.extend_from_slice(&first);
    while let Some(next) = pending.front() {
        if chunk.len() + next.len() > COALESCE {
            break;
        }
        chunk.extend_from_slice(next);
        pending.pop_front();
    }
    Some(chunk.freeze())
}

impl Stream {
    /// The next chunk to send; `None` ends the stream (the token expired or was removed, or the
    /// API stops).
    async fn next(&mut self) -> Option<Bytes> {
        if !self.started {
            self.started = true;
            return Some(Bytes::from_static(RETRY));
        }
        if let Some(frame) = next_chunk(&mut self.pending) {
            return Some(frame);
        }
        let quiet_until = Instant::now() + KEEP_ALIVE;
        loop {
            tokio::select! {
                batch = self.cursor.next() => {
                    let batch = batch?;
                    if !self.token.holds(&self.shared) {
                        return None;
                    }
                    self.pending.extend(batch.lost.as_ref().map(|lost| lost.sse().clone()));
                    self.pending.extend(
                        batch
                            .items
                            .iter()
                            .filter(|item| {
                                self.filter.as_ref().is_none_or(|filter| filter.matches(&item.tag))
                            })
                            .map(|item| item.sse().clone()),
                    );
                    if let Some(frame) = next_chunk(&mut self.pending) {
                        return Some(frame);
                    }
                }
                _ = tokio::time::sleep_until(quiet_until) => {
                    if !self.token.holds(&self.shared) {
                        return None;
                    }
                    return Some(Bytes::from_static(KEEP_ALIVE_COMMENT));
                }
                _ = tokio::time::sleep_until(self.token.expire) => return None,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn small_frames_go_together_and_large_ones_alone() {
        let frame = |size: usize| Bytes::from(vec![b'x'; size]);
        let mut pending: VecDeque<Bytes> = [
            frame(100),
            frame(200),
            frame(COALESCE),
            frame(10),
            frame(COALESCE - 5),
            frame(5),
        ]
        .into();
        let sizes: Vec<usize> = std::iter::from_fn(|| next_chunk(&mut pending))
            .map(|chunk| chunk.len())
            .collect();
        assert_eq!(sizes, [300, COALESCE, 10, COALESCE]);
    }
}
