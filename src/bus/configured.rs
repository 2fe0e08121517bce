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

impl Bus {
    /// Binds the bus a daemon's configuration describes, creating `sock_dir` as Salt does.
    pub async fn bind_configured(config: &Config, node: Node) -> Result<Bus, DaemonError> {
        if !config.tcp_mode()? {
            let path = config.sock_dir()?;
            create_sock_dir(&path).map_err(|source| DaemonError::SockDir { path, source })?;
        }
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
            ..BusOptions::new(config.bus()?, node)
        };
        Ok(Bus::bind(options).await?)
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
    std::fs::DirBuilder::new()
        .recursive(true)
        .mode(0o755)
        .create(path)
}
