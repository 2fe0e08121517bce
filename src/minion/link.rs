//! How a minion's events reach its master.

use crate::client::{ClientError, Publisher};
use crate::config::{BusAddress, FramingChoice};
use crate::event::Value;
use crate::master::minion_event::events_from_load;

/// The minion's connection to its master, whatever carries it.
pub trait MasterLink: Send + 'static {
    /// Delivers one `_minion_event` load. Failures are logged, not returned: like Salt's minion,
    /// an event that cannot reach the master is dropped and the minion carries on.
    fn minion_event(&mut self, load: Value) -> impl Future<Output = ()> + Send;
}

/// A master on the same host, reached through its own pull socket. The master-side handling of
/// the load happens here, on the master's behalf.
#[derive(Debug)]
pub struct LocalMasterLink {
    master: BusAddress,
    framing: FramingChoice,
    publisher: Option<Publisher>,
}

impl LocalMasterLink {
    /// A link to the master bus at `master`.
    pub fn new(master: BusAddress, framing: FramingChoice) -> Self {
        Self {
            master,
            framing,
            publisher: None,
        }
    }

    async fn deliver(&mut self, load: &Value) -> Result<(), ClientError> {
        if self.publisher.is_none() {
            self.publisher = Some(Publisher::connect(&self.master, self.framing).await?);
        }
        let publisher = self.publisher.as_mut().expect("connected above");
        for event in events_from_load(load.clone()) {
            publisher.fire(event).await?;
        }
        Ok(())
    }
}

impl MasterLink for LocalMasterLink {
    async fn minion_event(&mut self, load: Value) {
        let Value::Map(mut entries) = load else {
            return;
        };
        // The request channel stamps every load with the time it was sent, in whole seconds.
        let now = jiff::Timestamp::now().as_second();
        entries.push((Value::from("ts"), Value::from(now)));
        let load = Value::Map(entries);
        // One retry on a fresh connection covers a master that restarted since the last event.
        for attempt in 0..2 {
            match self.deliver(&load).await {
                Ok(()) => return,
                Err(err) => {
                    self.publisher = None;
                    if attempt == 1 {
                        tracing::warn!("could not forward an event to the master: {err}");
                    }
                }
            }
        }
    }
}
