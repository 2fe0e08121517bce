//! The master daemon: its event bus, and what it does with events minions send it.

pub mod minion_event;

use tokio_util::sync::CancellationToken;

use crate::bus::{Bus, BusHandle, DaemonError, Node};
use crate::config::Config;

/// A master whose sockets are bound, ready to run.
#[derive(Debug)]
pub struct Master {
    bus: Bus,
}

impl Master {
    /// Binds the master's event bus as configured.
    pub async fn bind(config: &Config) -> Result<Self, DaemonError> {
        Ok(Self {
            bus: Bus::bind_configured(config, Node::Master).await?,
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
