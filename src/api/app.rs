//! `GET /app`: a live page of the master's events, one self-contained HTML file (no framework,
//! no build step, nothing fetched from elsewhere): log in (or bring a token), watch events
//! arrive over `/events`, filter them by tag, pause, pretty-print, and resume after a dropped
//! connection where it left off (`EventSource` sends `Last-Event-ID` by itself).

use std::sync::Arc;

use axum::Router;
use axum::http::{HeaderValue, header};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::get;

use super::Shared;

/// The page.
const PAGE: &str = include_str!("app.html");

/// The routes of this module.
pub(crate) fn routes() -> Router<Arc<Shared>> {
    Router::new()
        .route("/app", get(page))
        .route("/app/", get(page))
}

async fn page() -> Response {
    let mut response = Html(PAGE).into_response();
    let headers = response.headers_mut();
    headers.insert(header::CACHE_CONTROL, HeaderValue::from_static("no-cache"));
    // Everything the page needs is in it: nothing else may load or run.
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        HeaderValue::from_static(
            "default-src 'none'; script-src 'unsafe-inline'; style-src 'unsafe-inline'; \
             connect-src 'self'; img-src data:",
        ),
    );
    response
}
