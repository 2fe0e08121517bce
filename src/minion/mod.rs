//! The minion daemon: its own event bus, and the relay that carries `fire_master` events from
//! that bus to the master.

pub mod grains;
mod link;

use tokio_util::sync::CancellationToken;

use crate::bus::{Bus, BusHandle, DaemonError, Node};
use crate::config::{Config, Role};
use crate::event::{Value, map_get};
use crate::wire;

pub use link::{LocalMasterLink, MasterLink};

/// Tag prefix of events that ask the minion to forward them to its master (Salt dispatches
/// minion-bus tags by prefix, so `fire_master…` anything counts).
pub const FIRE_MASTER: &str = "fire_master";

/// A minion whose bus is bound, ready to run.
#[derive(Debug)]
pub struct Minion<L> {
    id: String,
    bus: Bus,
    link: L,
}

impl Minion<LocalMasterLink> {
    /// Binds the minion's bus and links it to the master whose configuration shares this
    /// minion's config dir (the co-located mode).
    pub async fn bind_colocated(config: &Config) -> Result<Self, DaemonError> {
        let master = config.sibling(Role::Master)?;
        let link = LocalMasterLink::new(master.bus()?, master.framing()?);
        Self::bind(config, link).await
    }
}

impl<L: MasterLink> Minion<L> {
    /// Binds the minion's bus; events for the master go through `link`.
    pub async fn bind(config: &Config, link: L) -> Result<Self, DaemonError> {
        let id = config.id()?;
        let bus = Bus::bind_configured(config, Node::Minion).await?;
        Ok(Self { id, bus, link })
    }

    /// The minion's id.
    pub fn id(&self) -> &str {
        &self.id
    }

    /// A handle on the minion's bus.
    pub fn bus(&self) -> BusHandle {
        self.bus.handle()
    }

    /// Serves the bus and relays `fire_master` events until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) {
        let Minion { id, bus, mut link } = self;
        let mut subscription = bus.handle().subscribe();
        tracing::info!("minion {id} event bus is up");
        let relay = async move {
            while let Some(body) = subscription.next_body().await {
                if !body.starts_with(FIRE_MASTER.as_bytes()) {
                    continue;
                }
                match wire::decode_body(&body) {
                    Ok(event) => match minion_event_load(&id, &event.data) {
                        Some(load) => {
                            tracing::debug!("forwarding event {} to the master", event.tag);
                            link.minion_event(load).await;
                        }
                        None => tracing::warn!(
                            "ignored {} event without tag and data: {}",
                            event.tag,
                            event.data
                        ),
                    },
                    Err(err) => tracing::warn!("Error dispatching event. {err}"),
                }
            }
        };
        tokio::join!(bus.run(shutdown), relay);
    }
}

/// The load a minion sends its master for one `fire_master` event, shaped as Salt's minion
/// shapes it: `id, cmd, pretag`, then `events`, or `data` and `tag`.
pub fn minion_event_load(id: &str, request: &Value) -> Option<Value> {
    let field = |key| {
        map_get(request, key)
            .filter(|value| !value.is_nil())
            .cloned()
    };
    let mut load = vec![
        (Value::from("id"), Value::from(id)),
        (Value::from("cmd"), Value::from("_minion_event")),
        (Value::from("pretag"), field("pretag").unwrap_or(Value::Nil)),
    ];
    let events =
        field("events").filter(|events| events.as_array().is_some_and(|list| !list.is_empty()));
    match (events, field("tag")) {
        (Some(events), _) => load.push((Value::from("events"), events)),
        (None, Some(tag)) => {
            let data = field("data").unwrap_or_else(|| Value::Map(Vec::new()));
            load.push((Value::from("data"), data));
            load.push((Value::from("tag"), tag));
        }
        (None, None) => return None,
    }
    // halite's salt-call passes `preload` this way; its keys join the load but cannot replace
    // the ones above, as on Salt's request channel.
    if let Some(Value::Map(preload)) = field("preload") {
        for (key, value) in preload {
            if !load.iter().any(|(existing, _)| *existing == key) {
                load.push((key, value));
            }
        }
    }
    Some(Value::Map(load))
}
