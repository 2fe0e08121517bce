//! Setting a daemon's bus up from Salt's configuration: `sock_dir`, `ipc_mode`, framing and the
//! slow-subscriber options.

use super::{Bus, BusError, BusOptions, Node, SlowPolicy};
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
    Bus(#[from] BusError),
}

/// A daemon's bus as its configuration describes it: every option read and checked, nothing
/// created or bound yet.
#[derive(Debug, Clone)]
pub struct ConfiguredBus {
    options: BusOptions,
    /// The socket directory to create, unless the bus is on loopback ports.
    sock_dir: Option<std::path::PathBuf>,
}

impl ConfiguredBus {
    /// Reads `sock_dir`, `ipc_mode`, framing and the slow-subscriber options for `node`.
    pub fn from_config(config: &Config, node: Node) -> Result<Self, ConfigError> {
        let sock_dir = if config.tcp_mode()? {
            None
        } else {
            Some(config.sock_dir()?)
        };
        let publish_framing = match config.framing()? {
            FramingChoice::Auto => Framing::Bare,
            FramingChoice::Fixed(framing) => framing,
        };
        let subscriber_buffer = config.get_u64(
            "subscriber_buffer_size",
            super::DEFAULT_SUBSCRIBER_BUFFER as u64,
        )?;
        let options = BusOptions {
            publish_framing,
            subscriber_buffer: usize::try_from(subscriber_buffer).unwrap_or(usize::MAX),
            slow_policy: slow_policy(config)?,
            slow_wait: config.get_seconds(
                "slow_subscriber_wait",
                super::DEFAULT_SLOW_WAIT.as_secs_f64(),
            )?,
            ..BusOptions::new(config.bus()?, node)
        };
        Ok(Self { options, sock_dir })
    }

    /// Creates `sock_dir` as Salt does and binds the bus.
    pub async fn bind(self) -> Result<Bus, DaemonError> {
        if let Some(path) = self.sock_dir {
            create_sock_dir(&path).map_err(|source| DaemonError::SockDir { path, source })?;
        }
        Ok(Bus::bind(self.options).await?)
    }
}

impl Bus {
    /// Binds the bus a daemon's configuration describes, creating `sock_dir` as Salt does.
    pub async fn bind_configured(config: &Config, node: Node) -> Result<Bus, DaemonError> {
        ConfiguredBus::from_config(config, node)?.bind().await
    }
}

/// `slow_subscriber_policy`: `drop_oldest` (default) or `disconnect`.
fn slow_policy(config: &Config) -> Result<SlowPolicy, ConfigError> {
    match config.get_str("slow_subscriber_policy")? {
        None | Some("drop_oldest") => Ok(SlowPolicy::DropOldest),
        Some("disconnect") => Ok(SlowPolicy::Disconnect),
        Some(other) => Err(ConfigError::BadValue {
            key: "slow_subscriber_policy".into(),
            value: other.into(),
            expected: "expected drop_oldest or disconnect",
        }),
    }
}

fn create_sock_dir(path: &std::path::Path) -> std::io::Result<()> {
    use std::os::unix::fs::DirBuilderExt;
    crate::config::create_dir_all(std::fs::DirBuilder::new().recursive(true).mode(0o755), path)
}
