//! The cluster's JetStream key-value buckets (its minions' keys and grains): opened or created
//! alike, watched alike, and keyed by minion id alike.

use async_nats::jetstream::consumer::{DeliverPolicy, pull};
use async_nats::jetstream::{kv, stream};
use bytes::Bytes;
use futures_util::StreamExt;
use tokio::sync::watch;

use super::bridge::until_ok;
use super::{Cluster, ClusterError};

impl Cluster {
    /// The cluster's bucket `HALITE_<cluster_id>_<what>`, created when missing; retried until
    /// NATS has it.
    pub(super) async fn bucket(&self, what: &str, about: &str) -> kv::Store {
        let js = &self.js;
        let name = format!("HALITE_{}_{what}", self.settings.id);
        let failed = |reason: &dyn std::fmt::Display| {
            ClusterError::Bucket {
                bucket: name.clone(),
                reason: reason.to_string(),
            }
            .to_string()
        };
        until_ok(|| async {
            if let Ok(store) = js.get_key_value(&name).await {
                return Ok(store);
            }
            // The bucket's stream made here, as a key-value bucket's is: the client's own way
            // asks the account's limits in a form that Debian's nats-server (2.9) does not
            // answer in.
            js.get_or_create_stream(stream::Config {
                name: format!("KV_{name}"),
                description: Some(format!("{about} of halite cluster {}", self.settings.id)),
                subjects: vec![format!("$KV.{name}.>")],
                max_messages_per_subject: 1,
                allow_rollup: true,
                deny_delete: true,
                allow_direct: true,
                discard: stream::DiscardPolicy::New,
                storage: stream::StorageType::File,
                num_replicas: self.settings.replicas,
                ..Default::default()
            })
            .await
            .map_err(|err| failed(&err))?;
            js.get_key_value(&name).await.map_err(|err| failed(&err))
        })
        .await
    }
}

/// One change of a bucket: a key put (`value`) or deleted (`None`).
#[derive(Debug)]
pub(super) struct Change {
    pub key: String,
    pub value: Option<Bytes>,
    /// Its number in the bucket: later changes have higher ones.
    pub revision: u64,
    /// How many more the reader has to read now.
    pub pending: u64,
}

/// A bucket's entries, then its changes, read with an ordered pull consumer (as the bus is: the
/// push consumer of a key-value watch can stay silent on a cluster whose interest has not
/// spread yet), recreated past the last change read when the connection to NATS comes back.
pub(super) struct BucketWatch {
    stream: stream::Stream,
    prefix: String,
    connections: watch::Receiver<u64>,
    start: DeliverPolicy,
    messages: Option<pull::Ordered>,
}

impl BucketWatch {
    /// The latest entry of every key of `kv`, then every change.
    pub fn latest(cluster: &Cluster, kv: &kv::Store) -> Self {
        Self {
            stream: kv.stream.clone(),
            prefix: format!("$KV.{}.", kv.name),
            connections: cluster.connections.clone(),
            start: DeliverPolicy::LastPerSubject,
            messages: None,
        }
    }

    /// The next change. Cancel-safe: a change is returned once.
    pub async fn next(&mut self) -> Change {
        loop {
            let messages = match &mut self.messages {
                Some(messages) => messages,
                None => {
                    self.connections.borrow_and_update();
                    let config = pull::OrderedConfig {
                        filter_subject: format!("{}>", self.prefix),
                        deliver_policy: self.start,
                        max_expires: super::PULL_EXPIRES,
                        ..Default::default()
                    };
                    let stream = &self.stream;
                    let messages = until_ok(|| {
                        let config = config.clone();
                        async move {
                            match stream.create_consumer(config).await {
                                Ok(consumer) => {
                                    consumer.messages().await.map_err(|err| err.to_string())
                                }
                                Err(err) => Err(err.to_string()),
                            }
                            .map_err(|err| {
                                format!(
                                    "cannot read the cluster's bucket {}: {err}",
                                    stream.cached_info().config.name
                                )
                            })
                        }
                    })
                    .await;
                    self.messages.insert(messages)
                }
            };
            tokio::select! {
                Ok(()) = self.connections.changed() => self.messages = None,
                message = messages.next() => match message {
                    Some(Ok(message)) => {
                        let Ok(info) = message.info() else {
                            continue;
                        };
                        self.start = DeliverPolicy::ByStartSequence {
                            start_sequence: info.stream_sequence + 1,
                        };
                        let (revision, pending) = (info.stream_sequence, info.pending);
                        let Some(key) = message.subject.strip_prefix(self.prefix.as_str()) else {
                            continue;
                        };
                        let deleted = message
                            .headers
                            .as_ref()
                            .and_then(|headers| headers.get(KV_OPERATION))
                            .is_some_and(|operation| matches!(operation.as_str(), "DEL" | "PURGE"));
                        return Change {
                            key: key.to_owned(),
                            value: (!deleted).then(|| message.payload.clone()),
                            revision,
                            pending,
                        };
                    }
                    Some(Err(err)) => {
                        tracing::debug!("reading the cluster's bucket: {err}");
                    }
                    None => self.messages = None,
                },
            }
        }
    }
}

/// The header that marks a bucket's removals, as NATS's own clients write it.
const KV_OPERATION: &str = "KV-Operation";

impl Cluster {
    /// Removes `key` from `kv` (a removal stays, as the bucket's own removal does); the
    /// removal's revision.
    pub(super) async fn remove_entry(&self, kv: &kv::Store, key: &str) -> Result<u64, String> {
        let mut headers = async_nats::HeaderMap::new();
        headers.insert(KV_OPERATION, "DEL");
        // Where the bucket's own puts go.
        let prefix = kv.put_prefix.as_ref().unwrap_or(&kv.prefix);
        let ack = self
            .js
            .publish_with_headers(format!("{prefix}{key}"), headers, Bytes::new())
            .await
            .map_err(|err| err.to_string())?;
        Ok(ack.await.map_err(|err| err.to_string())?.sequence)
    }
}

/// What the stream of `kv` holds now: how many entries (removals included), the last one's
/// number.
pub(super) async fn stream_state(kv: &kv::Store) -> Result<stream::State, String> {
    let mut stream = kv.stream.clone();
    let info = stream.info().await.map_err(|err| err.to_string())?;
    Ok(info.state.clone())
}

/// A minion id as a bucket's key takes it: bytes other than ASCII letters, digits, `-` and `_`
/// written `=XX` (a bucket key takes few characters, and `.` separates its parts).
pub(super) fn escape_id(id: &str) -> String {
    let mut key = String::with_capacity(id.len());
    for byte in id.bytes() {
        if byte.is_ascii_alphanumeric() || byte == b'-' || byte == b'_' {
            key.push(char::from(byte));
        } else {
            key.push_str(&format!("={byte:02X}"));
        }
    }
    key
}

/// The minion id [`escape_id`] made `escaped` of, if it is one.
pub(super) fn unescape_id(escaped: &str) -> Option<String> {
    let mut bytes = Vec::with_capacity(escaped.len());
    let mut rest = escaped.as_bytes();
    while let Some((&byte, tail)) = rest.split_first() {
        if byte == b'=' {
            let hex = tail
                .get(..2)
                .filter(|hex| hex.iter().all(u8::is_ascii_hexdigit))?;
            bytes.push(u8::from_str_radix(std::str::from_utf8(hex).ok()?, 16).ok()?);
            rest = &tail[2..];
        } else {
            bytes.push(byte);
            rest = tail;
        }
    }
    let id = String::from_utf8(bytes).ok()?;
    // One key per id: `m=32` is not `m2`'s.
    (crate::keys::id_problem(&id).is_none() && escape_id(&id) == escaped).then_some(id)
}
