//! Masters clustered on NATS JetStream: the options that name a cluster and its NATS servers,
//! the stream that holds the cluster's bus, the bridge that shares a master's bus through it and
//! the replay `state.event` reads from it.
//!
//! Every master of a cluster publishes the events of its own bus into one JetStream stream,
//! `HALITE_<cluster_id>_BUS`, under `halite.<cluster_id>.bus.<tag tokens>` (tags escaped as
//! [`crate::event::subject`] describes), and fires every other master's events on its bus. The
//! stream is replicated across the NATS servers and keeps the bus for `cluster_bus_max_age`, so a
//! watcher can catch up on what it missed.

mod bridge;
mod bucket;
mod grains;
mod jobs;
mod keys;
mod order;
mod replay;

use std::time::Duration;

use async_nats::ServerAddr;
use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use async_nats::jetstream::context::GetStreamErrorKind;
use async_nats::jetstream::{self, stream};
use tokio::sync::watch;

use crate::config::{Config, ConfigError, bad_value};
use crate::event::Value;

pub use bridge::Bridge;
pub use grains::{ClusterGrains, GrainsSync};
pub use jobs::{ClusterJob, ClusterJobs};
pub use keys::KeySync;
pub use replay::{Replay, ReplayError, Start};

/// How long the stream keeps events by default (`cluster_bus_max_age`): a day.
const DEFAULT_MAX_AGE_SECONDS: f64 = 86_400.0;

/// How many bytes of events the stream keeps by default (`cluster_bus_max_bytes`): 1 GiB.
const DEFAULT_MAX_BYTES: u64 = 1 << 30;

/// How long the stream remembers a message id, to drop a publish retried after it was stored.
const DUPLICATE_WINDOW: Duration = Duration::from_secs(120);

/// How long a pull for the bus's events waits at most; heartbeats come at half that.
const PULL_EXPIRES: Duration = Duration::from_secs(4);

/// How long a JetStream request or a publish's acknowledgement may take.
const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);

/// A master's cluster options: `cluster_id`, `cluster_nats` and the stream's limits.
#[derive(Debug, Clone)]
pub struct ClusterSettings {
    id: String,
    servers: Vec<ServerAddr>,
    max_age: Duration,
    max_bytes: u64,
    replicas: usize,
}

/// A master's connection to its cluster's NATS servers, shared by the bridge of its bus, its
/// jobs and its keys; it connects, and reconnects, in the background.
#[derive(Debug, Clone)]
pub struct Cluster {
    settings: ClusterSettings,
    master: String,
    /// This run of the master: a random number drawn at start, so that masters of one name
    /// (or one restarted) are told apart.
    run: String,
    /// When this run began: the other masters' events from then on are its bus's.
    began: jiff::Timestamp,
    js: jetstream::Context,
    connections: watch::Receiver<u64>,
}

impl Cluster {
    /// Connects master `master` to the servers of `settings`, in the background: the master
    /// starts whether NATS is up or not.
    pub async fn connect(settings: ClusterSettings, master: &str) -> Result<Self, ClusterError> {
        let (js, connections) = settings
            .connect(&format!("halite master {master}"), true)
            .await?;
        let mut run = [0u8; 8];
        // A clock-derived run is as good if the system has no randomness to give.
        if getrandom::fill(&mut run).is_err() {
            run = jiff::Timestamp::now().as_nanosecond().to_le_bytes()[..8]
                .try_into()
                .unwrap_or_default();
        }
        Ok(Self {
            settings,
            master: master.to_owned(),
            run: run.iter().map(|b| format!("{b:02x}")).collect(),
            began: jiff::Timestamp::now(),
            js,
            connections,
        })
    }

    /// This master and run: `<master id>/<run>`.
    fn origin(&self) -> String {
        format!("{}/{}", self.master, self.run)
    }
}

/// Failure to reach the cluster's NATS servers or its stream.
#[derive(Debug, thiserror::Error)]
pub enum ClusterError {
    /// No NATS server of `cluster_nats` answered.
    #[error(
        "cannot reach the cluster's NATS servers ({servers}): {source}; check cluster_nats and that nats-server runs"
    )]
    Connect {
        /// `cluster_nats`.
        servers: String,
        /// Why.
        source: async_nats::ConnectError,
    },
    /// A bucket of the cluster (its keys, its grains) cannot be created or read.
    #[error(
        "cannot open the cluster's bucket {bucket}: {reason}; check that the NATS servers of cluster_nats are up and run with JetStream (-js)"
    )]
    Bucket {
        /// The bucket.
        bucket: String,
        /// What NATS answered.
        reason: String,
    },
    /// The bus's stream cannot be created, updated or read.
    #[error(
        "cannot open the cluster's event stream {stream}: {reason}; check that the NATS servers of cluster_nats are up, run with JetStream (-js) and have room for cluster_bus_max_bytes times cluster_bus_replicas"
    )]
    Stream {
        /// The stream's name.
        stream: String,
        /// What NATS said.
        reason: String,
    },
}

impl ClusterSettings {
    /// The cluster options of `config`, or `None` when `cluster_id` is unset: no NATS then.
    pub fn from_config(config: &Config) -> Result<Option<Self>, ConfigError> {
        let located = |key: &str, value: &Value, expected| {
            config.locate(key, bad_value(key, value, expected))
        };
        let Some(id) = config.get_str("cluster_id")? else {
            return match config.get("cluster_nats") {
                None | Some(Value::Nil) => Ok(None),
                Some(servers) => Err(located(
                    "cluster_nats",
                    servers,
                    "expected cluster_id too: the cluster's name, shared by its masters",
                )),
            };
        };
        if id.is_empty()
            || !id
                .bytes()
                .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_')
        {
            return Err(located(
                "cluster_id",
                &Value::from(id),
                "expected a name of ASCII letters, digits, - and _ (it names a NATS stream)",
            ));
        }
        const SERVERS: &str = "expected the cluster's NATS servers: a list such as [nats://10.0.0.1:4222, nats://10.0.0.2:4222]";
        let servers = match config.get("cluster_nats") {
            None | Some(Value::Nil) => {
                return Err(located("cluster_id", &Value::from(id), {
                    "expected cluster_nats too: the NATS servers the cluster's masters share, such as [nats://10.0.0.1:4222]"
                }));
            }
            Some(Value::String(one)) => vec![Value::String(one.clone())],
            Some(Value::Array(list)) if !list.is_empty() => list.clone(),
            Some(other) => return Err(located("cluster_nats", other, SERVERS)),
        };
        let servers = servers
            .iter()
            .map(|server| {
                server
                    .as_str()
                    .filter(|text| !text.trim().is_empty())
                    .and_then(|text| text.parse::<ServerAddr>().ok())
                    .ok_or_else(|| located("cluster_nats", server, SERVERS))
            })
            .collect::<Result<Vec<_>, _>>()?;
        let replicas = config.get_u64("cluster_bus_replicas", servers.len().min(3) as u64)?;
        if !(1..=5).contains(&replicas) {
            return Err(located(
                "cluster_bus_replicas",
                &Value::from(replicas),
                "expected 1 to 5 copies of the stream (JetStream's limit), at most as many as the NATS cluster has servers",
            ));
        }
        Ok(Some(Self {
            id: id.to_owned(),
            servers,
            max_age: config.get_seconds("cluster_bus_max_age", DEFAULT_MAX_AGE_SECONDS)?,
            max_bytes: config.get_u64("cluster_bus_max_bytes", DEFAULT_MAX_BYTES)?,
            replicas: replicas as usize,
        }))
    }

    /// The stream that holds the cluster's bus.
    pub fn stream_name(&self) -> String {
        format!("HALITE_{}_BUS", self.id)
    }

    /// The error for the bus's stream when NATS answered `reason`.
    fn stream_failed(&self, reason: impl std::fmt::Display) -> ClusterError {
        ClusterError::Stream {
            stream: self.stream_name(),
            reason: reason.to_string(),
        }
    }

    /// The subject an event with these tag tokens is published under.
    fn subject(&self, tag_tokens: &str) -> String {
        format!("halite.{}.bus.{tag_tokens}", self.id)
    }

    /// Every subject of the cluster's bus.
    fn bus_subjects(&self) -> String {
        self.subject(">")
    }

    fn servers_shown(&self) -> String {
        self.servers
            .iter()
            // Without the credentials a URL may carry.
            .map(|server| format!("{}:{}", server.host(), server.port()))
            .collect::<Vec<_>>()
            .join(", ")
    }

    /// A connection to the cluster's NATS servers, named `name`, and a count of its
    /// (re)connections. With `in_background`, it returns at once and keeps trying, as a daemon
    /// must; otherwise it fails when no server answers.
    async fn connect(
        &self,
        name: &str,
        in_background: bool,
    ) -> Result<(jetstream::Context, watch::Receiver<u64>), ClusterError> {
        let shown = self.servers_shown();
        let (connections, connected) = watch::channel(0u64);
        let mut options = async_nats::ConnectOptions::new()
            .name(name)
            .connection_timeout(Duration::from_secs(2))
            .max_reconnects(None)
            .event_callback(move |event| {
                let shown = shown.clone();
                let connections = connections.clone();
                async move {
                    match event {
                        async_nats::Event::Connected => {
                            connections.send_modify(|count| *count += 1);
                            tracing::info!("connected to the cluster's NATS servers ({shown})")
                        }
                        async_nats::Event::Disconnected => tracing::warn!(
                            "lost the cluster's NATS servers ({shown}); reconnecting"
                        ),
                        other => tracing::debug!("NATS: {other}"),
                    }
                }
            });
        if in_background {
            options = options.retry_on_initial_connect();
        }
        let client = options
            .connect(self.servers.as_slice())
            .await
            .map_err(|source| ClusterError::Connect {
                servers: self.servers_shown(),
                source,
            })?;
        let js = jetstream::ContextBuilder::new()
            .timeout(REQUEST_TIMEOUT)
            .backpressure_on_inflight(true)
            .build(client);
        Ok((js, connected))
    }

    /// An ordered consumer of the bus from `start`: every event once, in the stream's order.
    /// Its pulls expire every [`PULL_EXPIRES`], so a consumer lost with its NATS server is
    /// noticed (two missed heartbeats, half that apart) and recreated within seconds.
    fn consumer(&self, start: DeliverPolicy) -> pull::OrderedConfig {
        pull::OrderedConfig {
            filter_subject: self.bus_subjects(),
            deliver_policy: start,
            max_expires: PULL_EXPIRES,
            ..Default::default()
        }
    }

    /// The bus's stream: the one the cluster has, or a new one with these settings (the first
    /// master to start makes it; the others do not change it, and say so when their settings
    /// differ: one master's config must not shrink the cluster's stream).
    async fn open_stream(&self, js: &jetstream::Context) -> Result<stream::Stream, ClusterError> {
        let name = self.stream_name();
        let wanted = stream::Config {
            name: name.clone(),
            description: Some(format!("the event bus of halite cluster {}", self.id)),
            subjects: vec![self.bus_subjects()],
            max_age: self.max_age,
            max_bytes: i64::try_from(self.max_bytes).unwrap_or(i64::MAX),
            discard: stream::DiscardPolicy::Old,
            storage: stream::StorageType::File,
            num_replicas: self.replicas,
            // NATS wants it no longer than the events are kept (0: for ever).
            duplicate_window: match self.max_age {
                Duration::ZERO => DUPLICATE_WINDOW,
                max_age => DUPLICATE_WINDOW.min(max_age),
            },
            ..Default::default()
        };
        match js.get_stream(&name).await {
            Ok(stream) => {
                let have = &stream.cached_info().config;
                if (have.max_age, have.max_bytes, have.num_replicas)
                    != (wanted.max_age, wanted.max_bytes, wanted.num_replicas)
                {
                    tracing::warn!(
                        "the cluster's stream {name} keeps events {:?} and {} bytes in {} copies, not the {:?}, {} bytes and {} copies this master's config says; it is left as it is (change it with `nats stream edit {name}`)",
                        have.max_age,
                        have.max_bytes,
                        have.num_replicas,
                        wanted.max_age,
                        wanted.max_bytes,
                        wanted.num_replicas
                    );
                }
                Ok(stream)
            }
            Err(err)
                if matches!(err.kind(), GetStreamErrorKind::JetStream(ref error)
                    if error.error_code() == jetstream::ErrorCode::STREAM_NOT_FOUND) =>
            {
                js.get_or_create_stream(wanted)
                    .await
                    .map_err(|err| self.stream_failed(err))
            }
            Err(err) => Err(self.stream_failed(err)),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn settings(yaml: &str) -> Result<Option<ClusterSettings>, ConfigError> {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("master"), yaml).unwrap();
        let config = Config::load(crate::config::Role::Master, Some(dir.path())).unwrap();
        ClusterSettings::from_config(&config)
    }

    #[test]
    fn no_cluster_id_is_no_cluster() {
        assert!(settings("id: m1\n").unwrap().is_none());
    }

    #[test]
    fn a_cluster_names_its_stream_and_subjects() {
        let cluster =
            settings("cluster_id: prod\ncluster_nats: [nats://127.0.0.1:4222, 10.0.0.2:4222]\n")
                .unwrap()
                .unwrap();
        assert_eq!(cluster.stream_name(), "HALITE_prod_BUS");
        assert_eq!(cluster.bus_subjects(), "halite.prod.bus.>");
        assert_eq!(cluster.replicas, 2);
        assert_eq!(cluster.max_age, Duration::from_secs(86_400));
        let one = settings("cluster_id: a\ncluster_nats: nats://h:4222\n")
            .unwrap()
            .unwrap();
        assert_eq!(one.servers.len(), 1);
        assert_eq!(one.replicas, 1);
    }

    #[test]
    fn half_a_cluster_is_an_error_naming_the_missing_option() {
        for (yaml, says) in [
            ("cluster_id: prod\n", "expected cluster_nats too"),
            ("cluster_nats: [nats://h:4222]\n", "expected cluster_id too"),
            ("cluster_id: a.b\ncluster_nats: h:1\n", "letters, digits"),
            (
                "cluster_id: a\ncluster_nats: []\n",
                "the cluster's NATS servers",
            ),
            (
                "cluster_id: a\ncluster_nats: [5]\n",
                "the cluster's NATS servers",
            ),
            (
                "cluster_id: a\ncluster_nats: h:1\ncluster_bus_replicas: 0\n",
                "1 to 5 copies",
            ),
        ] {
            let err = settings(yaml).unwrap_err().to_string();
            assert!(err.contains(says), "{yaml:?}: {err}");
        }
    }
}
