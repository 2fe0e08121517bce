//! `salt-api`: Salt's REST API (`rest_cherrypy`) over HTTP/1.1 and HTTP/2, with or without TLS,
//! for the clients Salt's has (`pepper`, scripts, dashboards, webhooks).
//!
//! It is a client of the master like `salt` and `salt-run`: jobs go through the master's
//! request socket, runner and wheel functions run here as `salt-run` runs them, and events come
//! from the master's bus. Nothing in it reaches into the master's own code.
//!
//! Each endpoint family lives in a module of its own and adds its routes to the one router;
//! [`reply`] renders every answer and error in the shape and content type Salt's would have.

mod acl;
mod app;
mod auth;
mod body;
mod config;
mod events;
mod hook;
mod lowstate;
mod reply;
mod resources;
mod server;
mod stream;
mod ws;

pub use config::{ApiOptions, TlsFiles};
pub use server::{Api, Settings};

use std::sync::Arc;

use axum::Router;
use axum::extract::{DefaultBodyLimit, OriginalUri};
use axum::http::{HeaderMap, StatusCode};
use axum::response::Response;

use crate::config::Config;
use reply::Reply;

/// What every request handler shares.
#[derive(Debug)]
pub(crate) struct Shared {
    /// The master's configuration.
    pub config: Config,
    /// The `rest_cherrypy` block.
    pub options: ApiOptions,
    /// The eauth tokens.
    pub tokens: auth::Tokens,
    /// The master's events, for `/events` and `/ws`.
    pub events: stream::Events,
    /// The `runner_async` calls under way.
    pub background: lowstate::Background,
}

/// Why `salt-api` cannot start or stopped.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The master config is unusable.
    #[error(transparent)]
    Config(#[from] crate::config::ConfigError),
    /// The address cannot be listened on.
    // The cause last: the CLI then names it once, not again as the cause of the message.
    #[error(
        "cannot listen on {address} (set rest_cherrypy.host and .port to a free address): {source}"
    )]
    Bind {
        /// The address.
        address: std::net::SocketAddr,
        /// Why.
        source: std::io::Error,
    },
    /// A TLS file cannot be read or used.
    #[error(
        "cannot serve TLS with {path}: {problem}; set rest_cherrypy.ssl_crt and .ssl_key to a PEM certificate chain and its key"
    )]
    Tls {
        /// The file.
        path: std::path::PathBuf,
        /// What is wrong.
        problem: String,
    },
}

/// Every endpoint, each family's routes from its module.
fn router(shared: Arc<Shared>) -> Router {
    let limit = usize::try_from(shared.options.max_request_body_size).unwrap_or(usize::MAX);
    Router::new()
        .merge(auth::routes())
        .merge(events::routes())
        .merge(ws::routes())
        .merge(app::routes())
        .merge(lowstate::routes())
        .merge(resources::routes())
        .merge(hook::routes(&shared.options.webhook_url))
        .fallback(not_found)
        .layer(axum::middleware::from_fn(reply::preflight))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(shared)
}

/// A path no endpoint serves: CherryPy's message.
async fn not_found(OriginalUri(uri): OriginalUri, headers: HeaderMap) -> Response {
    let message = format!("The path '{}' was not found.", uri.path());
    Reply::error(StatusCode::NOT_FOUND, message).render(&headers)
}
