//! `state.event`: print the events of a bus as they arrive, in Salt's line format.
//!
//! Where Salt's watcher is broken, this one is not: it prints no trailing `None`, never dies on
//! undecodable bytes or mixed key types, stops cleanly on SIGINT (status 130) and SIGTERM (143),
//! waits for a bus that is not up yet and re-attaches after a restart (saying so once on
//! stderr), and makes every alternative of a regex `tagmatch` match the whole tag.

use std::io::Write;
use std::path::PathBuf;

use anyhow::bail;

use super::Exit;
use crate::client::{ListenNotice, Listener};
use crate::cluster::{ClusterSettings, Replay, ReplayError, Start};
use crate::config::{Config, Role};
use crate::event::matching::ExprMatcher;
use crate::ipc::BusAddress;
use crate::output::state_event::{write_event_line, write_json_line};
use crate::signature::{Bound, text, truthy};

/// How events are printed.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Format {
    /// `tag<TAB>json`, as Salt prints.
    Salt,
    /// `{"tag": …, "data": …}` per line, for jq.
    Json,
}

/// Watches the bus `bound` names until `count` events matched or a signal arrives. `config` is
/// the caller's configuration; `default_node` is the bus watched without `node=`. `opened` runs
/// once the watch has its source: what it fires (`salt-run`'s runner event) is after the
/// starting point of a replay, not among the `last=N`.
pub(crate) async fn run(
    config: &Config,
    default_node: Role,
    bound: &Bound,
    color: bool,
    opened: impl Future<Output = ()>,
) -> anyhow::Result<Exit> {
    let tagmatch = bound
        .get("tagmatch")
        .map(text)
        .unwrap_or_else(|| "*".to_owned());
    let mut count = match bound.get("count") {
        None => -1,
        Some(value) => match value.as_i64() {
            Some(count) => count,
            None => bail!("state.event: count must be an integer, not {value}"),
        },
    };
    let quiet = bound.get("quiet").is_some_and(truthy);
    let pretty = bound.get("pretty").is_some_and(truthy);
    let node = match bound.get("node").map(text) {
        None => default_node,
        Some(node) if node == "master" => Role::Master,
        Some(_) => Role::Minion,
    };
    let format = match bound.get("format").map(text).as_deref() {
        None | Some("salt") => Format::Salt,
        Some("json") => Format::Json,
        Some(other) => {
            bail!("state.event: format={other} is not known; use format=salt or format=json")
        }
    };
    let matcher = match bound.get("match").map(text).as_deref() {
        None | Some("whole") => ExprMatcher::whole(&tagmatch),
        Some("salt") => ExprMatcher::salt(&tagmatch),
        Some(other) => {
            bail!("state.event: match={other} is not known; use match=whole or match=salt")
        }
    };
    let mut source = match replay_start(bound)? {
        None => {
            let address = bus_for_args(config, node, bound)?;
            Source::Bus(Listener::new(address.publish).on_notice(report_notice))
        }
        Some(start) => {
            if node != Role::Master {
                bail!("state.event: since= and last= replay a master's bus; drop node=minion");
            }
            let master = if config.role() == Role::Master {
                config.clone()
            } else {
                config.sibling(Role::Master)?
            };
            let cluster = ClusterSettings::from_config(&master)?.ok_or(ReplayError::NoCluster)?;
            Source::Stream(Box::new(Replay::open(&cluster, start).await?))
        }
    };
    opened.await;
    let watch = async {
        let mut line = Vec::with_capacity(4096);
        loop {
            let (id, event) = source.next_event().await?;
            if !matcher.matches(&event.tag) {
                tracing::debug!(
                    "Skipping event tag: {}",
                    crate::event::tag::printable(&event.tag)
                );
                continue;
            }
            if !quiet {
                line.clear();
                match format {
                    Format::Salt => {
                        write_event_line(&mut line, &event.tag, &event.data, pretty, color)
                    }
                    Format::Json => write_json_line(&mut line, &event.tag, &event.data, id, color),
                }
                let mut out = super::stdout();
                out.write_all(&line)?;
                out.flush()?;
            }
            if count > 0 {
                count -= 1;
            }
            if count == 0 {
                return anyhow::Ok(Exit::Success);
            }
        }
    };
    tokio::select! {
        watched = watch => watched,
        signal = super::stop_signal() => Ok(signal),
    }
}

/// Where a watch reads its events.
enum Source {
    /// A bus's publish socket, live.
    Bus(Listener),
    /// The cluster's stream, from a point in the past.
    Stream(Box<Replay>),
}

impl Source {
    /// The next event, with its id in the stream when it comes from one.
    async fn next_event(&mut self) -> anyhow::Result<(Option<u64>, crate::event::Event)> {
        Ok(match self {
            Source::Bus(listener) => (None, listener.next_event().await?),
            Source::Stream(replay) => {
                let (id, event) = replay.next().await?;
                (Some(id), event)
            }
        })
    }
}

/// Where `since=` or `last=` start a replay, when given.
fn replay_start(bound: &Bound) -> anyhow::Result<Option<Start>> {
    let given = |name| bound.get(name).filter(|value| !value.is_nil());
    match (given("since"), given("last")) {
        (None, None) => Ok(None),
        (Some(since), None) => Ok(Some(Start::since(&text(since))?)),
        (None, Some(last)) => match last.as_u64() {
            Some(last) => Ok(Some(Start::Last(last))),
            None => bail!("state.event: last must be a number of events, not {last}"),
        },
        (Some(_), Some(_)) => bail!("state.event: give since= or last=, not both"),
    }
}

/// The bus a runner's `node=` and `sock_dir=` arguments name: the node's own configuration
/// comes from the same config dir, so its id (and socket hash) is right.
pub(crate) fn bus_for_args(
    config: &Config,
    node: Role,
    bound: &Bound,
) -> anyhow::Result<BusAddress> {
    let node_config = if node == config.role() {
        config.clone()
    } else {
        config.sibling(node)?
    };
    Ok(match bound.get("sock_dir") {
        Some(dir) if !dir.is_nil() => node_config.bus_in(node, &PathBuf::from(text(dir)))?,
        _ => node_config.bus_for(node)?,
    })
}

fn report_notice(notice: ListenNotice) {
    let line = match notice {
        ListenNotice::Waiting { endpoint, reason } => {
            format!(
                "waiting for the event bus at {endpoint} ({reason}); events will show once it is up"
            )
        }
        ListenNotice::Attached(endpoint) => format!("attached to the event bus at {endpoint}"),
        ListenNotice::Lost { endpoint, reason } => {
            format!("lost the event bus at {endpoint} ({reason}); re-attaching")
        }
    };
    // A notice nobody can read (stderr closed) is no reason to stop watching.
    let _ = super::print_err(&line);
}
