//! `GET /ws` and `GET /ws/<token>`: the master's events over a websocket, Salt's protocol: the
//! client says `websocket client ready`, every message it sends is answered `server received
//! message`, and from the ready message on every event is one text frame
//! `data: {"data": …, "tag": …}\n\n`, the JSON of `/events`.
//!
//! The token is the path's, or the caller's as for any endpoint. Salt's `?format_events` (frames
//! for its old web UI) is not offered: the events are sent as they are. Beyond Salt, the socket
//! is closed when the token expires or is logged out (checked before each batch of events), and
//! a client too slow for the stream gets the [`LOST_TAG`](super::stream::LOST_TAG) event instead
//! of slowing anyone. A socket opened with the `session_id` cookie from a page of another site
//! (an `Origin` that is not the API's own host) is refused `403`, as no other site's page may
//! read the events with the caller's cookie.

use std::sync::Arc;

use axum::Router;
use axum::extract::ws::{Message, Utf8Bytes, WebSocket, WebSocketUpgrade};
use axum::extract::{OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::Response;
use axum::routing::get;
use bytes::Bytes;
use futures_util::SinkExt;

use super::Shared;
use super::auth::{Authenticated, Session, UNAUTHORIZED, by_cookie};
use super::events::TokenCheck;
use super::reply::Reply;
use super::stream::{Batch, Cursor};

/// What a client sends when it is ready for events.
const READY: &str = "websocket client ready";
/// The answer to every client message.
const ACK: &str = "server received message";

/// The routes of this module.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/ws", get(ws))
        .route("/ws/{token}", get(ws_token))
}

async fn ws(
    State(shared): State<Arc<Shared>>,
    OriginalUri(uri): OriginalUri,
    headers: HeaderMap,
    Authenticated(session): Authenticated,
    upgrade: WebSocketUpgrade,
) -> Response {
    if by_cookie(&headers) && !same_origin(&headers, &uri) {
        return Reply::error(
            StatusCode::FORBIDDEN,
            "A websocket authenticated by the session cookie must come from a page of this API",
        )
        .render(&headers);
    }
    upgrade.on_upgrade(move |socket| serve(socket, shared, session))
}

/// Whether the request has no `Origin` (not a browser's page) or the API's own host as its
/// origin's (`Host`, or the request line's authority in HTTP/2).
fn same_origin(headers: &HeaderMap, uri: &Uri) -> bool {
    let Some(origin) = headers.get(header::ORIGIN) else {
        return true;
    };
    let host = headers
        .get(header::HOST)
        .and_then(|host| host.to_str().ok())
        .or_else(|| uri.authority().map(|authority| authority.as_str()));
    let origin_host = origin.to_str().ok().and_then(|origin| {
        origin
            .strip_prefix("http://")
            .or_else(|| origin.strip_prefix("https://"))
    });
    matches!((origin_host, host), (Some(origin), Some(host)) if origin.eq_ignore_ascii_case(host))
}

async fn ws_token(
    State(shared): State<Arc<Shared>>,
    Path(token): Path<String>,
    headers: HeaderMap,
    upgrade: WebSocketUpgrade,
) -> Response {
    match shared.tokens.get(&token) {
        Some(session) => upgrade.on_upgrade(move |socket| serve(socket, shared, session)),
        None => Reply::error(StatusCode::UNAUTHORIZED, UNAUTHORIZED).render(&headers),
    }
}

/// Speaks Salt's protocol until the client goes, the token expires or the API stops.
async fn serve(mut socket: WebSocket, shared: Arc<Shared>, session: Session) {
    let mut token = TokenCheck::new(&session);
    let mut cursor: Option<Cursor> = None;
    loop {
        tokio::select! {
            message = socket.recv() => {
                let said = match message {
                    Some(Ok(Message::Text(text))) => Bytes::from(text),
                    Some(Ok(Message::Binary(data))) => data,
                    Some(Ok(Message::Ping(_) | Message::Pong(_))) => continue,
                    Some(Ok(Message::Close(_)) | Err(_)) | None => return,
                };
                if cursor.is_none() && said == READY.as_bytes() {
                    cursor = Some(shared.events.cursor(None));
                }
                if socket.send(Message::Text(ACK.into())).await.is_err() {
                    return;
                }
            }
            batch = next(&mut cursor) => {
                let Some(batch) = batch else { break };
                if !token.holds(&shared) {
                    break;
                }
                if send(&mut socket, batch).await.is_err() {
                    return;
                }
            }
            _ = tokio::time::sleep_until(token.expire) => break,
        }
    }
    let _ = socket.send(Message::Close(None)).await;
}

/// The next events once the client is ready; never before.
async fn next(cursor: &mut Option<Cursor>) -> Option<Batch> {
    match cursor {
        Some(cursor) => cursor.next().await,
        None => std::future::pending().await,
    }
}

/// A frame per event, flushed once.
async fn send(socket: &mut WebSocket, batch: Batch) -> Result<(), axum::Error> {
    let frames = batch
        .lost
        .map(|lost| lost.ws())
        .into_iter()
        .chain(batch.items.iter().map(|item| item.ws()));
    for frame in frames {
        // Frames are rendered from `str`s: always UTF-8.
        if let Ok(text) = Utf8Bytes::try_from(frame) {
            socket.feed(Message::Text(text)).await?;
        }
    }
    socket.flush().await
}
