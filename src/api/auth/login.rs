//! `/login` and `/logout`, answering as Salt 3007.8's `rest_cherrypy` does:
//!
//! * `GET /login`: `200`, `WWW-Authenticate: Session`, `{"status": null, "return": "Please log in"}`;
//! * `POST /login` (`username`, `password`, `eauth` as a form, JSON or YAML): the token in the
//!   body, in `X-Auth-Token` and in the `session_id` cookie (CherryPy's 10-hour session cookie,
//!   beyond Salt's `HttpOnly` and `SameSite=Strict`, so that no script reads it and no other
//!   site's page sends it), with the user's `perms`; `401 Could not authenticate using provided credentials` otherwise;
//! * `POST /logout`: the token is removed (Salt's only forgets its web session, the eauth token
//!   staying valid until it expires) and the cookie expired.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::response::Response;
use axum::routing::{get, post};

use super::eauth::{self, Identity};
use super::{Authenticated, Session, now};
use crate::api::Shared;
use crate::api::body::Body;
use crate::api::reply::{Reply, allow};
use crate::event::{Value, map_get};

/// CherryPy's session cookie lifetime in Salt's config (`tools.sessions.timeout`, 10 hours).
const COOKIE_SECONDS: i64 = 36_000;

/// The routes of this module.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route(
            "/login",
            allow("GET, HEAD, POST", get(login_form).post(login)),
        )
        .route("/logout", allow("POST", post(logout)))
}

async fn login_form(headers: HeaderMap) -> Response {
    let data = Value::Map(vec![
        (Value::from("status"), Value::Nil),
        (Value::from("return"), Value::from("Please log in")),
    ]);
    let mut reply = Reply::ok(data);
    reply.headers.insert(
        header::WWW_AUTHENTICATE,
        HeaderValue::from_static("Session"),
    );
    reply.render(&headers)
}

async fn login(State(shared): State<Arc<Shared>>, headers: HeaderMap, body: Body) -> Response {
    // A list of credentials (Salt's lowstate) is read by its first.
    let creds = match body.data {
        Value::Array(mut items) if !items.is_empty() => items.swap_remove(0),
        other => other,
    };
    let refused = || {
        Reply::error(
            StatusCode::UNAUTHORIZED,
            "Could not authenticate using provided credentials",
        )
        .render(&headers)
    };
    let Some(identity) = eauth::authenticate(&shared.config, &shared.tokens.failures, &creds).await
    else {
        return refused();
    };
    let expire = custom_expire(&shared, &identity, &creds);
    let session = match shared.tokens.mint(&identity, expire) {
        Ok(session) => session,
        Err(err) => {
            tracing::warn!(
                "cannot write a token in {}: {err}",
                shared.tokens.dir.display()
            );
            return refused();
        }
    };
    let mut reply = Reply::ok(Value::Map(vec![(
        Value::from("return"),
        Value::Array(vec![answer(&shared, &session)]),
    )]));
    if let Ok(token) = HeaderValue::from_str(&session.token) {
        reply.headers.insert("x-auth-token", token);
    }
    let cookie = format!(
        "session_id={}; expires={}; Max-Age={COOKIE_SECONDS}; Path=/; HttpOnly; SameSite=Strict",
        session.token,
        http_date(COOKIE_SECONDS)
    );
    if let Ok(cookie) = HeaderValue::from_str(&cookie) {
        reply.headers.insert(header::SET_COOKIE, cookie);
    }
    reply.render(&headers)
}

/// `/login`'s answer for a session, in Salt's key order.
fn answer(shared: &Shared, session: &Session) -> Value {
    Value::Map(vec![
        (Value::from("token"), Value::from(session.token.as_str())),
        (Value::from("expire"), Value::F64(session.expire)),
        (Value::from("start"), Value::F64(session.start)),
        (Value::from("user"), Value::from(session.user.as_str())),
        (Value::from("eauth"), Value::from(session.eauth.as_str())),
        (Value::from("perms"), shared.perms(session)),
    ])
}

/// The `token_expire` a login asks for, when `token_expire_user_override` lets it (`True`, or
/// `{eauth: [users]}`), as Salt's `_allow_custom_expire`; one that is not a finite number of
/// seconds from zero up is ignored, the configured lifetime applying.
fn custom_expire(shared: &Shared, identity: &Identity, creds: &Value) -> Option<f64> {
    let asked = map_get(creds, "token_expire")?;
    let asked = asked
        .as_f64()
        .or_else(|| asked.as_i64().map(|n| n as f64))
        .or_else(|| asked.as_str().and_then(|text| text.trim().parse().ok()))
        .filter(|seconds: &f64| seconds.is_finite() && *seconds >= 0.0)?;
    let allowed = match shared.config.get("token_expire_user_override") {
        Some(Value::Boolean(allowed)) => *allowed,
        Some(by_eauth) => map_get(by_eauth, &identity.eauth)
            .and_then(Value::as_array)
            .is_some_and(|users| users.iter().any(|u| u.as_str() == Some(&identity.name))),
        None => false,
    };
    allowed.then_some(asked)
}

async fn logout(
    State(shared): State<Arc<Shared>>,
    headers: HeaderMap,
    Authenticated(session): Authenticated,
) -> Response {
    shared.tokens.remove(&session.token);
    let mut reply = Reply::ok(Value::Map(vec![(
        Value::from("return"),
        Value::from("Your token has been cleared"),
    )]));
    reply
        .headers
        .insert(header::CACHE_CONTROL, HeaderValue::from_static("private"));
    // CherryPy's `expire()`: a date a year back, no Max-Age.
    let cookie = format!("session_id=; expires={}; Path=/", http_date(-365 * 86_400));
    if let Ok(cookie) = HeaderValue::from_str(&cookie) {
        reply.headers.insert(header::SET_COOKIE, cookie);
    }
    reply.render(&headers)
}

/// An HTTP date `seconds` from now.
fn http_date(seconds: i64) -> String {
    let at = jiff::Timestamp::from_second(now() as i64 + seconds).unwrap_or_default();
    at.strftime("%a, %d %b %Y %H:%M:%S GMT").to_string()
}
