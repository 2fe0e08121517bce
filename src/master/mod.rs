//! The master daemon: its event bus, and what it does with events minions send it.

pub mod minion_event;

use tokio_util::sync::CancellationToken;

use crate::bus::{Bus, BusHandle, BusOptions, Node};
use crate::config::{Config, ConfigError, FramingChoice};
use crate::wire::Framing;

/// Failure to start a daemon.
#[derive(Debug, thiserror::Error)]
pub enum DaemonError {
    /// The configuration is unusable.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The socket directory cannot be created.
    #[error(
        "cannot create sock_dir {path}: {source}; create it or set sock_dir to a writable directory"
    )]
    SockDir {
        /// The directory.
        path: std::path::PathBuf,
        /// Why.
        source: std::io::Error,
    },
    /// A bus socket cannot be bound.
    #[error(transparent)]
    Bus(#[from] crate::bus::BusError),
}

/// How a daemon's bus is set up from its configuration.
pub(crate) async fn bind_bus(config: &Config, node: Node) -> Result<Bus, DaemonError> {
    if !config.tcp_mode()? {
        let path = config.sock_dir()?;
        create_sock_dir(&path).map_err(|source| DaemonError::SockDir { path, source })?;
    }
    let publish_framing = match config.framing()? {
        FramingChoice::Auto => Framing::Bare,
        FramingChoice::Fixed(framing) => framing,
    };
    let options = BusOptions {
        publish_framing,
        subscriber_buffer: config.subscriber_buffer()?,
        slow_policy: config.slow_policy()?,
        ..BusOptions::new(config.bus()?, node)
    };
    Ok(Bus::bind(options).await?)
}

fn create_sock_dir(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(path)
}

/// A master whose sockets are bound, ready to run.
#[derive(Debug)]
pub struct Master {
    bus: Bus,
}

impl Master {
    /// Binds the master's event bus as configured.
    pub async fn bind(config: &Config) -> Result<Self, DaemonError> {
        Ok(Self {
            bus: bind_bus(config, Node::Master).await?,
        })
    }

    /// A handle on the master's bus.
    pub fn bus(&self) -> BusHandle {
        self.bus.handle()
    }

    /// Serves until `shutdown`, then delivers what was accepted and returns.
    pub async fn run(self, shutdown: CancellationToken) {
        tracing::info!("master event bus is up");
        self.bus.run(shutdown).await;
    }
}
