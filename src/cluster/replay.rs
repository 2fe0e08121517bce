//! The cluster's bus read back from its stream, from a point in the past and then live, for
//! `state.event since=…` and `last=…`: a watcher that was down catches up on what it missed.

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use futures_util::StreamExt;

use super::{ClusterError, ClusterSettings};
use crate::event::Event;
use crate::wire;

/// Where a replay starts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Start {
    /// The last N events, then what follows.
    Last(u64),
    /// The event with this id (its number in the stream), then what follows.
    Id(u64),
    /// The first event fired at or after this time.
    Time(jiff::Timestamp),
}

/// Failure to replay the cluster's bus.
#[derive(Debug, thiserror::Error)]
pub enum ReplayError {
    /// The master is in no cluster, so nothing kept its bus.
    #[error(
        "since= and last= replay the cluster's stream of the bus, which only a master with cluster_id and cluster_nats keeps; set both in the master's configuration"
    )]
    NoCluster,
    /// `since=` is not an id, a time or a duration.
    #[error(
        "since={0}: expected an event id (a number), a time such as 2026-12-04T18:00:00 (UTC unless it names a zone) or how long ago, such as 10m or 2h"
    )]
    BadSince(String),
    /// NATS or the stream cannot be reached.
    #[error(transparent)]
    Cluster(#[from] ClusterError),
}

impl Start {
    /// `since=`: an event id, a time (RFC 3339, or a naive time as Salt's `_stamp`, taken as
    /// UTC) or how long ago (`10m`, `2h`, `1 day`).
    pub fn since(text: &str) -> Result<Self, ReplayError> {
        let text = text.trim();
        if let Ok(id) = text.parse::<u64>() {
            return Ok(Start::Id(id));
        }
        if let Ok(time) = text.parse::<jiff::Timestamp>() {
            return Ok(Start::Time(time));
        }
        if let Ok(civil) = text.parse::<jiff::civil::DateTime>()
            && let Ok(time) = civil.to_zoned_datetime(jiff::tz::TimeZone::UTC)
        {
            return Ok(Start::Time(time.timestamp()));
        }
        if let Ok(ago) = text.parse::<jiff::SignedDuration>()
            && !ago.is_negative()
            && let Ok(time) = jiff::Timestamp::now().checked_sub(ago)
        {
            return Ok(Start::Time(time));
        }
        Err(ReplayError::BadSince(text.to_owned()))
    }
}

/// The cluster's bus from its stream.
pub struct Replay {
    messages: pull::Ordered,
    stream: String,
}

impl std::fmt::Debug for Replay {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Replay")
            .field("stream", &self.stream)
            .finish()
    }
}

impl Replay {
    /// Opens the stream of `settings`' cluster at `start`.
    pub async fn open(settings: &ClusterSettings, start: Start) -> Result<Self, ReplayError> {
        let (js, _) = settings.connect("halite state.event", false).await?;
        let name = settings.stream_name();
        let mut stream = js
            .get_stream(&name)
            .await
            .map_err(|err| settings.stream_failed(err))?;
        let deliver_policy = match start {
            // Sequences start at 1: 0 is from the start too.
            Start::Id(0) => DeliverPolicy::All,
            Start::Id(start_sequence) => DeliverPolicy::ByStartSequence { start_sequence },
            Start::Time(time) => DeliverPolicy::ByStartTime {
                start_time: async_nats::datetime::from_nanos(time.as_nanosecond())
                    .map_err(|err| settings.stream_failed(err))?,
            },
            Start::Last(0) => DeliverPolicy::New,
            Start::Last(n) => {
                let state = &stream
                    .info()
                    .await
                    .map_err(|err| settings.stream_failed(err))?
                    .state;
                DeliverPolicy::ByStartSequence {
                    start_sequence: state
                        .first_sequence
                        .max((state.last_sequence + 1).saturating_sub(n)),
                }
            }
        };
        let consumer = stream
            .create_consumer(settings.consumer(deliver_policy))
            .await
            .map_err(|err| settings.stream_failed(err))?;
        let messages = consumer
            .messages()
            .await
            .map_err(|err| settings.stream_failed(err))?;
        Ok(Self {
            messages,
            stream: name,
        })
    }

    /// The next event and its id; waits for one once the past is read.
    pub async fn next(&mut self) -> Result<(u64, Event), ReplayError> {
        loop {
            let message = match self.messages.next().await {
                Some(Ok(message)) => message,
                Some(Err(err)) => {
                    tracing::debug!("reading the cluster's stream: {err}");
                    continue;
                }
                None => {
                    return Err(ClusterError::Stream {
                        stream: self.stream.clone(),
                        reason: "the stream ended".to_owned(),
                    }
                    .into());
                }
            };
            // An empty message stands for an event too large for NATS.
            if message.payload.is_empty() {
                continue;
            }
            let id = message.info().map(|info| info.stream_sequence).unwrap_or(0);
            match wire::decode_body(&message.payload) {
                Ok(event) => return Ok((id, event)),
                Err(err) => tracing::warn!("skipped event {id} of the cluster's stream: {err}"),
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn since_takes_an_id_a_time_or_how_long_ago() {
        assert_eq!(Start::since("42").unwrap(), Start::Id(42));
        let utc = "2026-12-04T18:00:00Z".parse::<jiff::Timestamp>().unwrap();
        assert_eq!(
            Start::since("2026-12-04T18:00:00Z").unwrap(),
            Start::Time(utc)
        );
        assert_eq!(
            Start::since("2026-12-04T18:00:00").unwrap(),
            Start::Time(utc)
        );
        assert_eq!(
            Start::since("2026-12-04T19:00:00+01:00").unwrap(),
            Start::Time(utc)
        );
        let Start::Time(ago) = Start::since("10m").unwrap() else {
            panic!("10m is a time");
        };
        let age = jiff::Timestamp::now().duration_since(ago);
        assert!(
            age >= jiff::SignedDuration::from_mins(10) && age < jiff::SignedDuration::from_mins(11)
        );
        for bad in ["", "yesterday", "-5m", "2026-13-01"] {
            assert!(
                matches!(Start::since(bad), Err(ReplayError::BadSince(_))),
                "{bad}"
            );
        }
    }
}
