//! The master daemon: its event bus, the link minions connect to, the keys that decide who may,
//! the jobs it publishes and the returns and events minions send back.

mod files;
pub mod minion_event;
mod pillar;
mod publish;
mod request;
pub(crate) mod returns;

mod sessions;
mod targets;

use std::sync::Arc;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::bus::{Bus, BusHandle, ConfiguredBus, DaemonError, Node};
use crate::config::Config;
use crate::keys::{KeyError, KeyPair, KeyStore};
use crate::link::Gate;
use crate::link::tls::TlsListener;
use crate::reactor::Reactor;
use crate::returners::local_cache::JobCache;
use crate::services::{ServiceFailed, Services, Stage};
use sessions::Sessions;

/// Failure to start a master, or to keep it running.
#[derive(Debug, thiserror::Error)]
pub enum MasterError {
    /// The bus could not start.
    #[error(transparent)]
    Daemon(#[from] DaemonError),
    /// The master's key pair or key store is unusable.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// The minion port cannot be bound.
    #[error(
        "cannot listen for minions on {address}: {source}; free the port, or set ret_port, or interface to an address of this host"
    )]
    Listen {
        /// `interface:ret_port`.
        address: String,
        /// Why.
        source: std::io::Error,
    },
    /// The root key file cannot be written.
    #[error("cannot write the master's root key file {path}: {source}; check cachedir")]
    RootKey {
        /// The file.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// The local request socket cannot be bound.
    #[error("cannot bind the request socket {endpoint}: {source}")]
    Request {
        /// Where.
        endpoint: String,
        /// Why.
        source: std::io::Error,
    },
    /// A service the master cannot run without ended, and the master stopped.
    #[error(transparent)]
    Service(#[from] ServiceFailed),
    /// The cluster's NATS servers cannot be used as configured.
    #[error(transparent)]
    Cluster(#[from] crate::cluster::ClusterError),
    /// A returner the configuration names is unknown or misconfigured.
    #[error("config option {option}: {source}")]
    Returner {
        /// The option naming it (`master_job_cache`, `ext_job_cache`, `event_return`).
        option: &'static str,
        /// Why it cannot be used.
        source: crate::returners::ReturnerError,
    },
}

impl From<crate::config::ConfigError> for MasterError {
    fn from(err: crate::config::ConfigError) -> Self {
        MasterError::Daemon(err.into())
    }
}

/// What every part of a running master shares.
#[derive(Debug)]
pub(crate) struct Shared {
    pub config: Config,
    pub id: String,
    pub bus: BusHandle,
    pub keys: KeyStore,
    pub jobs: JobCache,
    pub sessions: Sessions,
    pub root_key: String,
    /// The reactor's configuration, for `reactor.list` requests; set once the reactor exists.
    pub reactor: std::sync::OnceLock<crate::reactor::Listing>,
    /// The master's `file_roots`, served to minions over the link.
    pub files: crate::fileserver::LocalFiles,
    /// The returners jobs, returns and events are handed to.
    pub returners: crate::returners::Deliveries,
    /// Which returners get what.
    pub routes: returns::Routes,
    /// The minions of the jobs published lately, to check their returns against.
    recent: targets::RecentTargets,
    /// The other masters of its cluster, which get the jobs it publishes.
    cluster_jobs: Option<crate::cluster::ClusterJobs>,
    /// Where the grains its minions report go for the other masters.
    cluster_grains: Option<crate::cluster::ClusterGrains>,
    /// Told when a key file may have changed, for the cluster to get it.
    keys_changed: Arc<tokio::sync::Notify>,
}

/// A master whose sockets are bound, ready to run.
#[derive(Debug)]
pub struct Master {
    bus: Bus,
    link: TlsListener,
    link_address: std::net::SocketAddr,
    requests: crate::ipc::Listener,
    reactor_limits: crate::reactor::Limits,
    cluster: Option<crate::cluster::Cluster>,
    grains_sync: Option<crate::cluster::GrainsSync>,
    shared: Arc<Shared>,
}

/// What a master reads from its configuration at start, every value parsed and checked, nothing
/// bound: `--check-config` stops here, a start binds it with [`Master::bind`].
#[derive(Debug)]
pub struct Settings {
    config: Config,
    id: String,
    bus: ConfiguredBus,
    pki_dir: std::path::PathBuf,
    /// `interface`:`ret_port`.
    address: std::net::SocketAddr,
    keepalive: Duration,
    gate: Arc<Gate>,
    requests: crate::ipc::Endpoint,
    jobs: JobCache,
    files: crate::fileserver::Roots,
    routes: returns::Routes,
    reactor_limits: crate::reactor::Limits,
    cluster: Option<crate::cluster::ClusterSettings>,
}

impl Settings {
    /// Where it listens for minions: `interface`:`ret_port`.
    pub fn address(&self) -> std::net::SocketAddr {
        self.address
    }

    /// Reads every option the master needs before it binds anything.
    pub fn from_config(config: &Config) -> Result<Self, MasterError> {
        check_options(config)?;
        // An address, as Salt's master takes it (a host name fails there).
        let interface = match config.get_str("interface")? {
            None => std::net::IpAddr::from([0, 0, 0, 0]),
            Some(text) => text.parse().map_err(|_| {
                config.locate(
                    "interface",
                    crate::config::bad_value(
                        "interface",
                        &crate::event::Value::from(text),
                        "expected an IP address of this host, or 0.0.0.0 for all",
                    ),
                )
            })?,
        };
        let address = std::net::SocketAddr::new(interface, config.get_port("ret_port", 4506)?);
        Ok(Self {
            id: config.id()?,
            bus: ConfiguredBus::from_config(config, Node::Master)?,
            pki_dir: config.pki_dir()?,
            address,
            keepalive: crate::link::keepalive(config)?,
            gate: Gate::configured(config)?,
            requests: crate::proto::request::endpoint(config)?,
            jobs: JobCache::configured(config)?,
            files: crate::fileserver::Roots::file_roots(config)?,
            routes: returns::Routes::configured(config)?,
            reactor_limits: crate::reactor::Limits::from_config(config)?,
            cluster: crate::cluster::ClusterSettings::from_config(config)?,
            config: config.clone(),
        })
    }
}

impl Master {
    /// Binds the master's event bus, its minion port (`interface`:`ret_port`) and its local
    /// request socket, and loads (or creates) its key pair.
    pub async fn bind(settings: Settings) -> Result<Self, MasterError> {
        let Settings {
            config,
            id,
            bus,
            pki_dir,
            address,
            keepalive,
            gate,
            requests,
            jobs,
            files,
            routes,
            reactor_limits,
            cluster,
        } = settings;
        let bus = bus.bind().await?;
        let cluster = match cluster {
            Some(settings) => Some(crate::cluster::Cluster::connect(settings, &id).await?),
            None => None,
        };
        let (cluster_grains, grains_sync) = cluster
            .as_ref()
            .map(crate::cluster::Cluster::grains)
            .unzip();
        let key = KeyPair::load_or_create(&pki_dir, "master")?;
        let keys = KeyStore::open(&pki_dir)?;
        let listener = TcpListener::bind(&address)
            .await
            .map_err(|source| MasterError::Listen {
                address: address.to_string(),
                source,
            })?;
        let link_address = listener
            .local_addr()
            .map_err(|source| MasterError::Listen {
                address: address.to_string(),
                source,
            })?;
        let link = TlsListener::new(listener, &key, keepalive, gate);
        let endpoint = requests;
        let requests = endpoint
            .bind(0o600)
            .await
            .map_err(|source| MasterError::Request {
                endpoint: endpoint.to_string(),
                source,
            })?;
        let shared = Arc::new(Shared {
            id,
            bus: bus.handle(),
            keys,
            jobs,
            sessions: Sessions::default(),
            root_key: request::create_root_key(&config)?,
            reactor: std::sync::OnceLock::new(),
            files: crate::fileserver::LocalFiles::new(files, config.hash_type()?),
            returners: crate::returners::Deliveries::new(&config, Some(bus.handle()))?,
            routes,
            recent: targets::RecentTargets::default(),
            cluster_jobs: cluster.as_ref().map(crate::cluster::Cluster::jobs),
            cluster_grains,
            keys_changed: Arc::default(),
            config,
        });
        Ok(Self {
            bus,
            link,
            link_address,
            requests,
            reactor_limits,
            cluster,
            grains_sync,
            shared,
        })
    }

    /// Serves until `shutdown`, then delivers what was accepted and returns; fails when a service
    /// it cannot run without (the bus) ended, which stopped it.
    pub async fn run(self, shutdown: CancellationToken) -> Result<(), MasterError> {
        let Master {
            bus,
            link,
            link_address,
            requests,
            reactor_limits,
            cluster,
            grains_sync,
            shared,
        } = self;
        tracing::info!(
            "master {} is up: event bus, minions on {link_address}",
            shared.id
        );
        let reactor = Reactor::new(
            &shared.config,
            reactor_limits,
            shared.bus.clone(),
            Reactions(shared.clone()),
        );
        let _ = shared.reactor.set(reactor.listing());
        // What a master stopped before could not store yet is delivered first.
        shared.returners.resume();
        let mut services = Services::new();
        if shared.routes.returns_events() {
            let events = shared.bus.subscribe();
            let shared = shared.clone();
            services.spawn("event return", Stage::Sessions, |stop| {
                returns::event_return(shared, events, stop)
            });
        }
        // After everything that hands them records; what they cannot store by then stays in
        // their spools.
        let returners = shared.returners.clone();
        services.spawn("returners", Stage::Bus, |stop| async move {
            stop.cancelled().await;
            returners.close().await;
        });
        // The reactor works through what it accepted while the sessions and the bus are up, so
        // that its jobs still reach connected minions and its reactions can still fire events.
        services.spawn("reactor", Stage::Reactions, |stop| reactor.run(stop));
        services.spawn_essential("sessions", Stage::Sessions, |stop| {
            sessions::serve(shared.clone(), link, stop)
        });
        services.spawn("key watcher", Stage::Sessions, |stop| {
            sessions::watch_keys(shared.clone(), stop)
        });
        services.spawn_essential("requests", Stage::Sessions, |stop| {
            request::serve(shared.clone(), requests, stop)
        });
        services.spawn("maintenance", Stage::Sessions, |stop| {
            maintenance(shared.clone(), stop)
        });
        if let Some(cluster) = cluster {
            // Subscribed before the bus runs, so that every event it takes is shared; it stops
            // with the bus, once it has published what the bus took.
            let events = shared.bus.subscribe().named(
                "the cluster bridge (NATS unreachable or slow; the other masters miss what it lost)",
            );
            let (returns_tx, returns) = tokio::sync::mpsc::channel(CLUSTER_RETURNS_QUEUE);
            let bridge = crate::cluster::Bridge::new(cluster.clone()).with_returns(returns_tx);
            services.spawn("cluster bus", Stage::Bus, |stop| bridge.run(events, stop));
            services.spawn("cluster returns", Stage::Sessions, |stop| {
                publish::store_cluster_returns(shared.clone(), returns, stop)
            });
            if let Some(jobs) = shared.cluster_jobs.clone() {
                services.spawn("cluster jobs", Stage::Sessions, |stop| {
                    publish::take_cluster_jobs(shared.clone(), jobs, stop)
                });
            }
            let sync = cluster.key_sync(shared.keys.clone());
            let keys_changed = shared.keys_changed.clone();
            let refiled = {
                let shared = shared.clone();
                move |id: &str| {
                    let filed = shared.keys.key(crate::keys::KeyState::Accepted, id);
                    shared.sessions.close_unless_key(id, filed.as_deref());
                }
            };
            services.spawn("cluster keys", Stage::Sessions, |stop| {
                sync.run(keys_changed, refiled, stop)
            });
            if let Some(grains_sync) = grains_sync {
                let shared = shared.clone();
                let learned = move |id: String, grains| shared.sessions.learn_grains(id, grains);
                services.spawn("cluster grains", Stage::Sessions, |stop| {
                    grains_sync.run(learned, stop)
                });
            }
        }
        services.spawn_essential("bus", Stage::Bus, |stop| bus.run(stop));
        services.run(&shutdown).await?;
        Ok(())
    }
}

/// Returns of other masters' minions waiting for this master's job cache, at most.
const CLUSTER_RETURNS_QUEUE: usize = 10_000;

/// What the master's reactor acts through: jobs are published as `salt` publishes them, runner
/// and wheel functions called with the master's configuration.
struct Reactions(Arc<Shared>);

impl crate::reactor::Backend for Reactions {
    async fn local(
        &self,
        request: crate::proto::PublishRequest,
    ) -> Result<crate::event::Value, String> {
        publish::publish(&self.0, request).await
    }

    async fn caller(&self, _call: crate::functions::Call) -> Result<crate::event::Value, String> {
        Err("caller reactions run in a minion's reactor".to_owned())
    }

    async fn runner(
        &self,
        call: &crate::functions::Call,
        sink: &mut crate::runners::EventSink,
    ) -> Result<crate::event::Value, crate::runners::RunnerError> {
        crate::runners::call(&self.0.config, sink, &call.fun, &call.args).await
    }

    async fn wheel(
        &self,
        call: &crate::functions::Call,
        sink: &mut crate::runners::EventSink,
    ) -> Result<crate::event::Value, crate::runners::RunnerError> {
        crate::wheel::call(&self.0.config, sink, &call.fun, &call.args).await
    }
}

/// Options the sessions and the maintenance loop read as they go, checked once at start so
/// that an invalid value stops the master with the option's name instead of becoming a default.
fn check_options(config: &Config) -> Result<(), crate::config::ConfigError> {
    for flag in ["auto_accept", "auth_events", "presence_events"] {
        config.get_bool(flag, false)?;
    }
    config.get_u64("max_pending_keys", 0)?;
    config.get_seconds("loop_interval", 60.0)?;
    Ok(())
}

/// Salt's maintenance loop: every `loop_interval` (60 s), presence when `presence_events` is
/// set, and old jobs removed from the cache.
async fn maintenance(shared: Arc<Shared>, stop: CancellationToken) {
    let interval = shared
        .config
        .get_seconds("loop_interval", 60.0)
        .unwrap_or(Duration::from_secs(60))
        .max(Duration::from_millis(100));
    let mut ticker = tokio::time::interval(interval);
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = ticker.tick() => {}
        }
        shared.sessions.present(&shared);
        let jobs = shared.jobs.clone();
        let removed = tokio::task::spawn_blocking(move || jobs.clean())
            .await
            .unwrap_or_default();
        if removed > 0 {
            tracing::info!("removed {removed} expired jobs from the job cache");
        }
    }
}
