//! Webhooks: `POST <webhook_url>/<path…>` (Salt's `/hook`) fires `salt/netapi/hook/<path…>` on
//! the master's bus with Salt's data, `{"body": the raw body, "post": the parsed body,
//! "headers": the request's headers}`, for the reactor to act on.
//!
//! Unlike Salt's, the event never carries the caller's credentials: the `X-Auth-Token`,
//! `Authorization` and `Proxy-Authorization` headers, the `session_id` cookie, `token` or
//! `password` fields at any depth of the body, and any header, cookie or string of the body
//! holding the request's token are left out (the body is then written again without them),
//! since every subscriber of the bus and every event returner would see them.
//!
//! A path whose decoded form holds control characters is refused: a tag with `"\n\n"` breaks
//! the framing of Salt's bus, and the master would drop the event after the caller was told
//! it had been fired.

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
    // The token the request used, to be found nowhere in the event.
    let token = match &request.authenticated {
        Ok(Authenticated(session)) if !session.token.is_empty() => Some(session.token.as_str()),
        _ => None,
    };
    if path.chars().any(char::is_control) {
        return Reply::error(
            StatusCode::BAD_REQUEST,
            "A webhook's path may not hold control characters (such as a newline): it is the event's tag",
        )
        .render(headers);
    }
    let mut tag = TAG_BASE.to_owned();
    for part in path.split('/').filter(|part| !part.is_empty()) {
        tag.push('/');
        tag.push_str(part);
    }
    let raw = String::from_utf8_lossy(&request.body.raw);
    let (post, cleaned) = match request.body.data {
        Value::Nil => (Value::Map(Vec::new()), false),
        data => without_secrets(data, token),
    };
    let body = if cleaned || token.is_some_and(|token| raw.contains(token)) {
        rewritten(headers, &post)
    } else {
        raw.into_owned()
    };
    let data = Value::Map(vec![
        (Value::from("body"), Value::from(body)),
        (Value::from("post"), post),
        (
            Value::from("headers"),
            event_headers(headers, request.peer, &request.uri, token),
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
/// its name title-cased, repeated values joined by `, `; credentials, and any header holding
/// `token`, left out.
fn event_headers(
    headers: &HeaderMap,
    peer: SocketAddr,
    uri: &axum::http::Uri,
    token: Option<&str>,
) -> Value {
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
            value = without_session_cookie(&value, token);
        }
        if value.is_empty() && name == header::COOKIE || holds(&value, token) {
            continue;
        }
        entries.push((Value::from(title(name.as_str())), Value::from(value)));
    }
    Value::Map(entries)
}

/// A `Cookie` header without `session_id` (however spaced) and any cookie holding `token`.
fn without_session_cookie(cookies: &str, token: Option<&str>) -> String {
    cookies
        .split(';')
        .map(str::trim)
        .filter(|pair| !pair.is_empty())
        .filter(|pair| pair.split('=').next().map(str::trim) != Some("session_id"))
        .filter(|pair| !holds(pair, token))
        .collect::<Vec<_>>()
        .join("; ")
}

/// Whether `text` holds the request's token.
fn holds(text: &str, token: Option<&str>) -> bool {
    token.is_some_and(|token| text.contains(token))
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

/// The body's data without credential fields and strings holding `token`, at any depth of
/// its maps and lists, and whether any was there; a body that is itself such a string is
/// taken as no body.
fn without_secrets(data: Value, token: Option<&str>) -> (Value, bool) {
    let mut cleaned = false;
    let data = clean(data, token, &mut cleaned).unwrap_or_else(|| Value::Map(Vec::new()));
    (data, cleaned)
}

/// `value` cleaned as [`without_secrets`] says; `None` when it must go altogether.
fn clean(value: Value, token: Option<&str>, cleaned: &mut bool) -> Option<Value> {
    match value {
        Value::String(text) if text.as_str().is_some_and(|text| holds(text, token)) => {
            *cleaned = true;
            None
        }
        Value::Map(entries) => {
            let mut kept = Vec::with_capacity(entries.len());
            for (key, value) in entries {
                let secret = key.as_str().is_some_and(|key| {
                    SECRET_FIELDS.contains(&key.to_ascii_lowercase().as_str()) || holds(key, token)
                });
                if secret {
                    *cleaned = true;
                } else if let Some(value) = clean(value, token, cleaned) {
                    kept.push((key, value));
                }
            }
            Some(Value::Map(kept))
        }
        Value::Array(items) => Some(Value::Array(
            items
                .into_iter()
                .filter_map(|item| clean(item, token, cleaned))
                .collect(),
        )),
        other => Some(other),
    }
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
        let (data, cleaned) = without_secrets(data, None);
        assert!(cleaned);
        assert_eq!(data.to_string(), r#"{"rev": "abc"}"#);
        assert_eq!(
            without_session_cookie("a=1; session_id=f00; b=2", None),
            "a=1; b=2"
        );
        assert_eq!(
            without_session_cookie("a=1; session_id = f00; b=xf00y", Some("f00")),
            "a=1"
        );
        let nested: Value = serde_json::from_str(
            r#"{"n": {"token": "t", "k": "f00", "m": 1}, "l": [{"password": "p"}, "f00", "x"]}"#,
        )
        .unwrap();
        let (nested, cleaned) = without_secrets(nested, Some("f00"));
        assert!(cleaned);
        assert_eq!(nested.to_string(), r#"{"n": {"m": 1}, "l": [{}, "x"]}"#);
        let (bare, cleaned) = without_secrets(Value::from("f00"), Some("f00"));
        assert!(cleaned);
        assert_eq!(bare.to_string(), "{}");
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
