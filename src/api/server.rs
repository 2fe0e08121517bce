//! Listening and serving: one tracked task per connection, TLS when configured (HTTP/2 and
//! HTTP/1.1 offered by ALPN), both protocols on plain TCP, a bounded number of connections, and
//! a graceful stop that lets answers under way finish.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::ConnectInfo;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::{TcpListener, TcpStream};
use tokio::sync::Semaphore;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tower::ServiceExt;

use super::{ApiError, ApiOptions, Shared, TlsFiles};
use crate::config::Config;

/// Connections served at once; one more waits in the listen backlog until one ends. Sized for
/// a thousand event streams and the requests of the clients beside them.
const MAX_CONNECTIONS: usize = 4096;
/// How long a TLS handshake may take before the connection is dropped.
const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// How long a stopping server waits for answers under way (event streams end at once).
const STOP_TIMEOUT: Duration = Duration::from_secs(5);

/// `salt-api`, bound and ready to serve.
pub struct Api {
    listener: TcpListener,
    tls: Option<TlsAcceptor>,
    shared: Arc<Shared>,
}

/// What `salt-api` reads at start, every value parsed and checked and the TLS files loaded,
/// nothing bound: `--check-config` stops here, a start binds it with [`Api::bind`].
pub struct Settings {
    tls: Option<TlsAcceptor>,
    shared: Shared,
}

impl Settings {
    /// Reads the `rest_cherrypy` block and loads the TLS files.
    pub fn from_config(config: &Config) -> Result<Self, ApiError> {
        let options = ApiOptions::from_config(config)?;
        Ok(Settings {
            tls: options.tls.as_ref().map(acceptor).transpose()?,
            shared: Shared {
                config: config.clone(),
                tokens: super::auth::Tokens::new(config)?,
                events: super::stream::Events::new(config, &options.block)?,
                background: Default::default(),
                options,
            },
        })
    }

    /// Where it listens: `rest_cherrypy`'s `host` and `port`.
    pub fn address(&self) -> std::net::SocketAddr {
        self.shared.options.address
    }
}

impl Api {
    /// Binds the address.
    pub async fn bind(settings: Settings) -> Result<Api, ApiError> {
        let Settings { tls, shared } = settings;
        let options = &shared.options;
        if !options.ignored.is_empty() {
            tracing::info!(
                "rest_cherrypy options with no effect here, ignored: {}",
                options.ignored.join(", ")
            );
        }
        let address = options.address;
        let listener = TcpListener::bind(address)
            .await
            .map_err(|source| ApiError::Bind { address, source })?;
        Ok(Api {
            listener,
            tls,
            shared: Arc::new(shared),
        })
    }

    /// The address bound (the port the system chose for port 0).
    pub fn local_addr(&self) -> std::io::Result<SocketAddr> {
        self.listener.local_addr()
    }

    /// Serves until `shutdown`, then lets answers under way finish for a few seconds.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), ApiError> {
        let scheme = if self.tls.is_some() { "https" } else { "http" };
        let address = self.local_addr().unwrap_or(self.shared.options.address);
        tracing::info!("salt-api serving on {scheme}://{address}");
        let router = super::router(self.shared.clone());
        let graceful = GracefulShutdown::new();
        let connections = Arc::new(Semaphore::new(MAX_CONNECTIONS));
        let tasks = TaskTracker::new();
        // The one subscriber to the master's bus; the event streams end when it stops.
        tasks.spawn(self.shared.events.clone().run(shutdown.clone()));
        loop {
            let permit = tokio::select! {
                _ = shutdown.cancelled() => break,
                permit = connections.clone().acquire_owned() => match permit {
                    Ok(permit) => permit,
                    Err(_) => break,
                },
            };
            let (stream, peer) = tokio::select! {
                _ = shutdown.cancelled() => break,
                accepted = self.listener.accept() => match accepted {
                    Ok(accepted) => accepted,
                    Err(err) => {
                        // Out of descriptors and the like: wait for connections to end.
                        tracing::warn!("cannot accept a connection: {err}");
                        tokio::time::sleep(Duration::from_millis(100)).await;
                        continue;
                    }
                },
            };
            let (router, tls, watcher) = (router.clone(), self.tls.clone(), graceful.watcher());
            tasks.spawn(async move {
                let _permit = permit;
                let service = hyper::service::service_fn(move |mut request| {
                    request.extensions_mut().insert(ConnectInfo(peer));
                    router.clone().oneshot(request)
                });
                let builder = auto::Builder::new(TokioExecutor::new());
                let served = match tls {
                    None => {
                        let connection =
                            builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                        watcher.watch(connection.into_owned()).await
                    }
                    Some(tls) => {
                        let Some(stream) = handshake(&tls, stream, peer).await else {
                            return;
                        };
                        let connection =
                            builder.serve_connection_with_upgrades(TokioIo::new(stream), service);
                        watcher.watch(connection.into_owned()).await
                    }
                };
                if let Err(err) = served {
                    tracing::debug!("connection from {peer}: {err}");
                }
            });
        }
        drop(self.listener);
        tasks.close();
        tokio::select! {
            _ = graceful.shutdown() => {}
            _ = tokio::time::sleep(STOP_TIMEOUT) => {
                tracing::warn!("answers still under way after {STOP_TIMEOUT:?}: cut off");
            }
        }
        self.shared.background.finish(STOP_TIMEOUT).await;
        Ok(())
    }
}

/// The TLS handshake, bounded in time; a failed one is logged and the connection dropped.
async fn handshake(
    tls: &TlsAcceptor,
    stream: TcpStream,
    peer: SocketAddr,
) -> Option<tokio_rustls::server::TlsStream<TcpStream>> {
    match tokio::time::timeout(HANDSHAKE_TIMEOUT, tls.accept(stream)).await {
        Ok(Ok(stream)) => Some(stream),
        Ok(Err(err)) => {
            tracing::debug!("TLS handshake with {peer} failed: {err}");
            None
        }
        Err(_) => {
            tracing::debug!("TLS handshake with {peer} timed out");
            None
        }
    }
}

/// A TLS acceptor for the configured certificate chain and key, offering HTTP/2 and HTTP/1.1.
fn acceptor(files: &TlsFiles) -> Result<TlsAcceptor, ApiError> {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, PrivateKeyDer};
    let problem = |path: &std::path::Path, problem: String| ApiError::Tls {
        path: path.to_owned(),
        problem,
    };
    let read = |path: &std::path::Path| {
        let certs = CertificateDer::pem_file_iter(path)
            .and_then(|certs| certs.collect::<Result<Vec<_>, _>>())
            .map_err(|err| problem(path, err.to_string()))?;
        if certs.is_empty() {
            return Err(problem(path, "no certificate in it".to_owned()));
        }
        Ok(certs)
    };
    let mut certs = read(&files.cert)?;
    if let Some(chain) = &files.chain {
        certs.extend(read(chain)?);
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|err| problem(&files.key, err.to_string()))?;
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut server = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|err| problem(&files.cert, err.to_string()))?
        .with_no_client_auth()
        .with_single_cert(certs, key)
        .map_err(|err| problem(&files.key, err.to_string()))?;
    server.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(TlsAcceptor::from(Arc::new(server)))
}
