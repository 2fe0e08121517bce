//! What the master hands its returners: every job and return to the `master_job_cache` (when it
//! is not the `local_cache` the master always keeps) and returns to `ext_job_cache`, and every
//! event on its bus to the `event_return` returners, as Salt's EventReturn process does.

use std::sync::Arc;
use std::time::Duration;

use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::{MasterError, Shared};
use crate::bus::BusSubscription;
use crate::config::Config;
use crate::event::{Event, Value, map_get};
use crate::py::fnmatch::fnmatch;
use crate::returners::{Item, JobLoad, listed};

/// The event the event_return service fires as it starts, as Salt's does.
const LISTEN_START: &str = "salt/event_listen/start";

/// The returners each part of the master hands its records to, checked at start.
#[derive(Debug, Clone, Default)]
pub(crate) struct Routes {
    /// Jobs and returns: `master_job_cache` other than `local_cache`.
    pub jobs: Vec<String>,
    /// Returns only: `ext_job_cache`.
    pub returns: Vec<String>,
    /// Events: `event_return`.
    pub events: Vec<String>,
}

impl Routes {
    /// Reads `master_job_cache`, `ext_job_cache` and `event_return`, and builds each returner
    /// once so that an unknown name or a bad option stops the master with its name.
    pub fn configured(config: &Config) -> Result<Self, MasterError> {
        let named = |option: &'static str| -> Result<Vec<String>, MasterError> {
            let names = match config.get(option) {
                None | Some(Value::Nil) => Vec::new(),
                Some(value) if names_only(value) => listed(value),
                Some(value) => {
                    return Err(crate::config::ConfigError::BadValue {
                        key: option.into(),
                        value: value.to_string(),
                        expected: "expected a returner's name, or a list of names",
                    }
                    .into());
                }
            };
            for name in &names {
                crate::returners::build(name, config, None, None)
                    .map_err(|source| MasterError::Returner { option, source })?;
            }
            Ok(names)
        };
        // Read as the service goes; checked here so that a bad value stops the master.
        config.get_u64("event_return_queue", 0)?;
        config.get_seconds("event_return_queue_max_seconds", 0.0)?;
        for option in ["event_return_whitelist", "event_return_blacklist"] {
            if let Some(value) = config.get(option).filter(|value| !names_only(value)) {
                return Err(crate::config::ConfigError::BadValue {
                    key: option.into(),
                    value: value.to_string(),
                    expected: "expected a glob, or a list of globs",
                }
                .into());
            }
        }
        let mut jobs = named("master_job_cache")?;
        jobs.retain(|name| name != "local_cache");
        Ok(Self {
            jobs,
            returns: named("ext_job_cache")?,
            events: named("event_return")?,
        })
    }

    /// Whether events are returned at all.
    pub fn returns_events(&self) -> bool {
        !self.events.is_empty()
    }
}

/// Whether `value` is a string or a list of strings (names or globs).
fn names_only(value: &Value) -> bool {
    match value {
        Value::String(_) => true,
        Value::Array(items) => items.iter().all(|item| item.as_str().is_some()),
        _ => false,
    }
}

/// Hands a new job's load to the job returners.
pub(super) fn job(shared: &Shared, jid: &str, load: &Value, minions: &[String]) {
    for name in &shared.routes.jobs {
        let item = Item::Loads(vec![JobLoad {
            jid: jid.to_owned(),
            load: load.clone(),
            minions: minions.to_vec(),
        }]);
        send(shared, name, item);
    }
}

/// Hands a return (the load as the minion sent it, with its jid) to the job returners.
pub(super) fn job_return(shared: &Shared, ret: &[(Value, Value)]) {
    for name in shared.routes.jobs.iter().chain(&shared.routes.returns) {
        send(shared, name, Item::Returns(vec![Value::Map(ret.to_vec())]));
    }
}

fn send(shared: &Shared, name: &str, item: Item) {
    if let Err(err) = shared.returners.send(name, None, None, item) {
        tracing::error!("{err}");
    }
}

/// Which events are returned: `event_return_whitelist` (when set, only these) then
/// `event_return_blacklist`, fnmatch globs; events a peer forwarded are never returned.
#[derive(Debug, Clone, Default)]
struct Filter {
    whitelist: Vec<String>,
    blacklist: Vec<String>,
}

impl Filter {
    fn configured(config: &Config) -> Self {
        let globs = |option| {
            config
                .get(option)
                .map(|value| match value {
                    Value::Array(items) => items
                        .iter()
                        .filter_map(|item| item.as_str().map(str::to_owned))
                        .collect(),
                    Value::String(_) => value.as_str().map(str::to_owned).into_iter().collect(),
                    _ => Vec::new(),
                })
                .unwrap_or_default()
        };
        Self {
            whitelist: globs("event_return_whitelist"),
            blacklist: globs("event_return_blacklist"),
        }
    }

    fn admits(&self, event: &Event) -> bool {
        if map_get(&event.data, "__peer_id").is_some() {
            return false;
        }
        let matches = |globs: &[String]| globs.iter().any(|glob| fnmatch(&event.tag, glob));
        (self.whitelist.is_empty() || matches(&self.whitelist)) && !matches(&self.blacklist)
    }
}

/// Salt's EventReturn: every event on the bus that passes the filters is queued and handed to
/// the `event_return` returners once `event_return_queue` events wait (every event, by
/// default) or the oldest waited `event_return_queue_max_seconds`; what waits at stop is handed
/// over then.
pub(super) async fn event_return(
    shared: Arc<Shared>,
    mut events: BusSubscription,
    stop: CancellationToken,
) {
    let config = &shared.config;
    let filter = Filter::configured(config);
    let size = usize::try_from(config.get_u64("event_return_queue", 0).unwrap_or(0))
        .unwrap_or(usize::MAX)
        .max(1);
    let max_wait = config
        .get_seconds("event_return_queue_max_seconds", 0.0)
        .unwrap_or(Duration::ZERO);
    shared.bus.fire_fields(LISTEN_START, Vec::new());
    let mut held: Vec<Event> = Vec::new();
    let mut oldest: Option<Instant> = None;
    loop {
        let flush_at = oldest
            .filter(|_| !max_wait.is_zero())
            .map(|oldest| oldest + max_wait);
        tokio::select! {
            _ = stop.cancelled() => break,
            body = events.next_body() => {
                let Some(body) = body else { break };
                let Ok(event) = crate::wire::decode_body(&body) else { continue };
                if !filter.admits(&event) {
                    continue;
                }
                oldest.get_or_insert_with(Instant::now);
                held.push(event);
                if held.len() < size {
                    continue;
                }
            }
            _ = tokio::time::sleep_until(flush_at.unwrap_or_else(Instant::now)), if flush_at.is_some() => {}
        }
        hand_over(&shared, std::mem::take(&mut held));
        oldest = None;
    }
    hand_over(&shared, held);
}

fn hand_over(shared: &Shared, events: Vec<Event>) {
    if events.is_empty() {
        return;
    }
    for name in &shared.routes.events {
        send(shared, name, Item::Events(events.clone()));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn events_are_filtered_as_salts_event_return_filters_them() {
        let filter = Filter {
            whitelist: vec!["salt/job/*".into(), "myco/*".into()],
            blacklist: vec!["salt/job/*/new".into()],
        };
        let event = |tag: &str, data: Value| Event {
            tag: tag.into(),
            data,
        };
        let empty = || Value::Map(Vec::new());
        assert!(filter.admits(&event("salt/job/1/ret/m1", empty())));
        assert!(filter.admits(&event("myco/a/b", empty())));
        assert!(!filter.admits(&event("salt/job/1/new", empty())));
        assert!(!filter.admits(&event("salt/auth", empty())));
        let forwarded = Value::Map(vec![(Value::from("__peer_id"), Value::from("m1"))]);
        assert!(!filter.admits(&event("myco/x", forwarded)));
        assert!(Filter::default().admits(&event("anything", empty())));
    }
}
