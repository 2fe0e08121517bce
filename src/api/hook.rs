//! Webhooks: `POST <webhook_url>/<path…>` (Salt's `/hook`) fires `salt/netapi/hook/<path…>` on
//! the master's bus with Salt's data, `{"body": the raw body, "post": the parsed body,
//! "headers": the request's headers}`, for the reactor to act on.
//!
//! Unlike Salt's, the event never carries the caller's credentials: the `X-Auth-Token`,
//! `Authorization` and `Proxy-Authorization` headers, the `session_id` cookie, and `token` or
//! `password` fields of the body are left out (the body is then written again without them),
//! since every subscriber of the bus and every event returner would see them.

use std::net::SocketAddr;
use std::sync::Arc;

use axum::Router;
use axum::extract::{ConnectInfo, OriginalUri, Path, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::Response;
use axum::routing::post;

use super::Shared;
use super::auth::Authenticated;
use super::body::Body;
use super::reply::{Reply, allow};
use crate::client::{ClientError, Publisher};
use crate::event::{Event, Value};

/// The tag webhooks fire under.
const TAG_BASE: &str = "salt/netapi/hook";

/// Headers that carry credentials, never put in the event.
const SECRET_HEADERS: [&str; 3] = ["x-auth-token", "authorization", "proxy-authorization"];

/// Body fields that carry credentials (compared without case), never put in the event.
const SECRET_FIELDS: [&str; 6] = [
    "token",
    "password",
    "passwd",
    "salt_token",
    "x-auth-token",
    "session_id",
];

/// `POST <url>` and `POST <url>/<path…>`.
pub(super) fn routes(url: &str) -> Router<Arc<Shared>> {
    let base = url.trim_end_matches('/');
    Router::new()
        .route(
            if base.is_empty() { "/" } else { base },
            allow("POST", post(hook)),
        )
        .route(&format!("{base}/{{*path}}"), allow("POST", post(hook)))
}

/// What a webhook request brings.
struct Request {
    shared: Arc<Shared>,
    peer: SocketAddr,
    uri: axum::http::Uri,
    headers: HeaderMap,
    authenticated: Result<Authenticated, Response>,
    body: Body,
}

/// `POST <url>[/<path…>]`.
async fn hook(
    State(shared): State<Arc<Shared>>,
    ConnectInfo(peer): ConnectInfo<SocketAddr>,
    OriginalUri(uri): OriginalUri,
    path: Option<Path<String>>,
    headers: HeaderMap,
    authenticated: Result<Authenticated, Response>,
    body: Body,
) -> Response {
    let request = Request {
        shared,
        peer,
        uri,
        headers,
        authenticated,
        body,
    };
    let path = path.map(|Path(path)| path).unwrap_or_default();
    fire(request, &path).await
}

/// Fires the event and answers `{"success": true}`.
async fn fire(request: Request, path: &str) -> Response {
    let headers = &request.headers;
    if !request.shared.options.webhook_disable_auth
        && let Err(refused) = request.authenticated
    {
        return refused;
    }
    let authenticated = request.authenticated.is_ok();
    let mut tag = TAG_BASE.to_owned();
    for part in path.split('/').filter(|part| !part.is_empty()) {
        tag.push('/');
        tag.push_str(part);
    }
    let (post, cleaned) = match request.body.data {
        Value::Nil => (Value::Map(Vec::new()), false),
        data => without_secrets(data),
    };
    let body = if cleaned {
        rewritten(headers, &post)
    } else {
        String::from_utf8_lossy(&request.body.raw).into_owned()
    };
    let data = Value::Map(vec![
        (Value::from("body"), Value::from(body)),
        (Value::from("post"), post),
        (
            Value::from("headers"),
            event_headers(headers, request.peer, &request.uri),
        ),
    ]);
    let event = match Event::new(tag, data) {
        Ok(event) => event,
        Err(err) => return Reply::error(StatusCode::BAD_REQUEST, err.to_string()).render(headers),
    };
    match send(&request.shared, event).await {
        Ok(()) => {
            let reply = Reply::ok(Value::Map(vec![(
                Value::from("success"),
                Value::Boolean(true),
            )]));
            if authenticated { reply.private() } else { reply }.render(headers)
        }
        Err(ClientError::TooLarge { size, limit, .. }) => Reply::error(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("The webhook's event would be {size} bytes, over the master's max_event_size ({limit})"),
        )
        .render(headers),
        Err(err) => {
            tracing::warn!("webhook event not fired: {err}");
            Reply::error(
                StatusCode::SERVICE_UNAVAILABLE,
                "Salt Master is not available.",
            )
            .render(headers)
        }
    }
}

/// Fires `event` on the master's bus.
async fn send(shared: &Shared, event: Event) -> Result<(), ClientError> {
    let config = &shared.config;
    let mut publisher = Publisher::connect(&config.bus()?, config.framing()?)
        .await?
        .with_max_event_size(config.max_event_size()?);
    publisher.fire(event).await?;
    publisher.close().await
}

/// The request's headers as CherryPy gives them: `Remote-Addr` first, then each header once,
/// its name title-cased, repeated values joined by `, `; credentials left out.
fn event_headers(headers: &HeaderMap, peer: SocketAddr, uri: &axum::http::Uri) -> Value {
    let mut entries = vec![(
        Value::from("Remote-Addr"),
        Value::from(peer.ip().to_string()),
    )];
    // HTTP/2 names the host in the request line only.
    if !headers.contains_key(header::HOST)
        && let Some(authority) = uri.authority()
    {
        entries.push((Value::from("Host"), Value::from(authority.as_str())));
    }
    for name in headers.keys() {
        if SECRET_HEADERS.contains(&name.as_str()) {
            continue;
        }
        let values: Vec<String> = headers
            .get_all(name)
            .iter()
            .map(|value| String::from_utf8_lossy(value.as_bytes()).into_owned())
            .collect();
        let mut value = values.join(", ");
        if name == header::COOKIE {
            value = without_session_cookie(&value);
            if value.is_empty() {
                continue;
            }
        }
        entries.push((Value::from(title(name.as_str())), Value::from(value)));
    }
    Value::Map(entries)
}

/// A `Cookie` header without `session_id`.
fn without_session_cookie(cookies: &str) -> String {
    cookies
        .split(';')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .filter(|pair| pair.split('=').next() != Some("session_id"))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Python's `str.title()`, as CherryPy spells header names: a letter after a non-letter is
/// upper case, the others lower case.
fn title(name: &str) -> String {
    let mut out = String::with_capacity(name.len());
    let mut after_letter = false;
    for c in name.chars() {
        if after_letter {
            out.extend(c.to_lowercase());
        } else {
            out.extend(c.to_uppercase());
        }
        after_letter = c.is_alphabetic();
    }
    out
}

/// The body's data without credential fields (in a map, or in each map of a list), and whether
/// any was there.
fn without_secrets(data: Value) -> (Value, bool) {
    let secret = |key: &Value| {
        key.as_str()
            .is_some_and(|key| SECRET_FIELDS.contains(&key.to_ascii_lowercase().as_str()))
    };
    let clean = |entries: Vec<(Value, Value)>, cleaned: &mut bool| {
        let before = entries.len();
        let kept: Vec<(Value, Value)> = entries.into_iter().filter(|(k, _)| !secret(k)).collect();
        *cleaned |= kept.len() != before;
        Value::Map(kept)
    };
    let mut cleaned = false;
    let data = match data {
        Value::Map(entries) => clean(entries, &mut cleaned),
        Value::Array(items) => Value::Array(
            items
                .into_iter()
                .map(|item| match item {
                    Value::Map(entries) => clean(entries, &mut cleaned),
                    other => other,
                })
                .collect(),
        ),
        other => other,
    };
    (data, cleaned)
}

/// The body written again from data without its credentials: a form as a form, anything else
/// as JSON.
fn rewritten(headers: &HeaderMap, data: &Value) -> String {
    let form = headers
        .get(header::CONTENT_TYPE)
        .and_then(|value| value.to_str().ok())
        .is_none_or(|value| value.starts_with("application/x-www-form-urlencoded"));
    match (form, data) {
        (true, Value::Map(entries)) => {
            let mut out = form_urlencoded::Serializer::new(String::new());
            for (key, value) in entries {
                let key = crate::py::value::py_str(key);
                match value {
                    Value::Array(items) => {
                        for item in items {
                            out.append_pair(&key, &crate::py::value::py_str(item));
                        }
                    }
                    one => {
                        out.append_pair(&key, &crate::py::value::py_str(one));
                    }
                }
            }
            out.finish()
        }
        _ => crate::py::json::to_string(data, crate::py::json::Format::COMPACT),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn header_names_are_title_cased_as_cherrypys() {
        assert_eq!(title("x-auth-token"), "X-Auth-Token");
        assert_eq!(title("content-md5"), "Content-Md5");
        assert_eq!(title("x-github-event"), "X-Github-Event");
        assert_eq!(title("x_1ab"), "X_1Ab");
    }

    #[test]
    fn credentials_never_reach_the_event() {
        let data: Value =
            serde_json::from_str(r#"{"rev": "abc", "Token": "f00", "password": "x"}"#).unwrap();
        let (data, cleaned) = without_secrets(data);
        assert!(cleaned);
        assert_eq!(data.to_string(), r#"{"rev": "abc"}"#);
        assert_eq!(
            without_session_cookie("a=1; session_id=f00; b=2"),
            "a=1; b=2"
        );
        let mut headers = HeaderMap::new();
        headers.insert(header::CONTENT_TYPE, "application/json".parse().unwrap());
        assert_eq!(rewritten(&headers, &data), r#"{"rev": "abc"}"#);
        assert_eq!(
            rewritten(&HeaderMap::new(), &data),
            "rev=abc",
            "a form is written back as a form"
        );
    }
}
