//! The local client of a master: publish jobs through the master's request socket and follow
//! their returns on the master's bus, as Salt's `LocalClient` does.

use std::collections::BTreeMap;
use std::time::Duration;

use futures_util::{SinkExt, StreamExt};
use tokio::time::Instant;
use tokio_util::codec::Framed;

use super::{ClientError, Listener, connect};
use crate::config::{Config, ConfigError};
use crate::event::{Event, Value, map_get};
use crate::ipc::Endpoint;
use crate::proto::PublishRequest;
use crate::proto::request::{codec as request_codec, endpoint as request_endpoint, root_key_path};
use crate::target::nodegroup::NodeGroups;

/// The master's answer to a publish.
#[derive(Debug, Clone, Default)]
pub struct Published {
    /// The job id; empty when no minion matched.
    pub jid: String,
    /// The minions expected to return.
    pub minions: Vec<String>,
    /// Listed minions the master has no key for.
    pub missing: Vec<String>,
    /// Which of `minions` were connected when the job went out.
    pub connected: Vec<String>,
}

/// One minion's return.
#[derive(Debug, Clone)]
pub struct Return {
    /// The minion.
    pub id: String,
    /// The whole `salt/job/<jid>/ret/<id>` event data.
    pub data: Value,
}

impl Return {
    /// The return value.
    pub fn value(&self) -> Value {
        map_get(&self.data, "return").cloned().unwrap_or(Value::Nil)
    }

    /// The outputter the return names (`out`), if any.
    pub fn outputter(&self) -> Option<&str> {
        map_get(&self.data, "out").and_then(Value::as_str)
    }

    /// The return code (0 when the minion sent none).
    pub fn retcode(&self) -> i64 {
        map_get(&self.data, "retcode")
            .and_then(Value::as_i64)
            .unwrap_or(0)
    }
}

/// How a job's wait ended for one minion.
#[derive(Debug, Clone)]
pub enum Outcome {
    /// It returned.
    Returned(Return),
    /// It did not, and was not connected when the job went out.
    NotConnected(String),
    /// It did not answer in time.
    NoResponse(String),
}

/// Which minions answered a ping, and which did not, each sorted.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Pinged {
    /// Those that answered.
    pub up: Vec<String>,
    /// Those that did not.
    pub down: Vec<String>,
}

/// A client of the master on this host.
#[derive(Debug, Clone)]
pub struct LocalClient {
    requests: Endpoint,
    root_key: std::path::PathBuf,
    bus: Endpoint,
    timeout: Duration,
    gather_job_timeout: Duration,
    nodegroups: NodeGroups,
}

fn strings(value: Option<&Value>) -> Vec<String> {
    value
        .and_then(Value::as_array)
        .map(|items| {
            items
                .iter()
                .filter_map(|item| item.as_str().map(str::to_owned))
                .collect()
        })
        .unwrap_or_default()
}

impl LocalClient {
    /// The client for the master configured in `config` (a master configuration), with its
    /// `timeout` (5 s) and `gather_job_timeout` (10 s).
    pub fn new(config: &Config) -> Result<Self, ConfigError> {
        Ok(Self {
            requests: request_endpoint(config)?,
            root_key: root_key_path(config)?,
            bus: config.bus()?.publish,
            timeout: config.get_seconds("timeout", 5.0)?,
            gather_job_timeout: config.get_seconds("gather_job_timeout", 10.0)?,
            nodegroups: NodeGroups::configured(config),
        })
    }

    /// Overrides how long to wait for returns before asking minions whether they still run
    /// the job.
    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// Sends one request and reads its reply.
    pub async fn request(&self, request: &Value) -> Result<Value, ClientError> {
        let io = |source| ClientError::Io {
            endpoint: self.requests.clone(),
            source,
        };
        // Read without following a link: root runs `salt` where the master's user writes.
        let key = crate::config::open_plain_file(
            &self.root_key,
            std::fs::OpenOptions::new().read(true),
        )
        .and_then(|file| {
            let mut key = String::new();
            std::io::Read::read_to_string(&mut std::io::Read::take(file, 256), &mut key)
                .map(|_| key)
        })
        .map_err(|err| {
            ClientError::NotDelivered(format!(
                "cannot read the master's root key {}: {err}; run as the master's user, and start salt-master with this config",
                self.root_key.display()
            ))
        })?;
        let mut request = request.clone();
        if let Value::Map(entries) = &mut request {
            entries.push((Value::from("key"), Value::from(key.trim())));
        }
        let request = &request;
        let stream = connect(&self.requests).await?;
        let mut framed = Framed::new(stream, request_codec());
        let mut bytes = Vec::new();
        rmpv::encode::write_value(&mut bytes, request).map_err(|err| io(err.into()))?;
        if bytes.len() > crate::proto::MAX_MESSAGE {
            return Err(ClientError::RequestTooLarge {
                size: bytes.len(),
                limit: crate::proto::MAX_MESSAGE,
            });
        }
        framed.send(bytes::Bytes::from(bytes)).await.map_err(io)?;
        let reply = framed
            .next()
            .await
            .ok_or_else(|| io(std::io::ErrorKind::UnexpectedEof.into()))?
            .map_err(io)?;
        let reply = rmpv::decode::read_value(&mut &reply[..])
            .map_err(|err| io(std::io::Error::other(err.to_string())))?;
        if let Some(error) = map_get(&reply, "error") {
            return Err(ClientError::Refused(
                crate::py::value::py_str(error).into_owned(),
            ));
        }
        Ok(reply)
    }

    /// Publishes a job, node groups written out from this configuration's `nodegroups`, as
    /// Salt's clients do.
    pub async fn publish(&self, request: &PublishRequest) -> Result<Published, ClientError> {
        let mut request = request.clone();
        self.nodegroups.write_out(&mut request)?;
        let reply = self.request(&request.to_value()).await?;
        Ok(Published {
            jid: map_get(&reply, "jid")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_owned(),
            minions: strings(map_get(&reply, "minions")),
            missing: strings(map_get(&reply, "missing")),
            connected: strings(map_get(&reply, "connected")),
        })
    }

    /// The minions connected to the master now, with the address each connects from, sorted
    /// by id.
    pub async fn connected(&self) -> Result<Vec<(String, String)>, ClientError> {
        let reply = self
            .request(&crate::proto::message("connected", Vec::new()))
            .await?;
        Ok(map_get(&reply, "connected")
            .and_then(Value::as_map)
            .into_iter()
            .flatten()
            .filter_map(|(id, address)| {
                Some((id.as_str()?.to_owned(), address.as_str()?.to_owned()))
            })
            .collect())
    }

    /// Overrides how long minions still silent after the timeout get to say whether they
    /// still run the job.
    pub fn with_gather_job_timeout(mut self, timeout: Duration) -> Self {
        self.gather_job_timeout = timeout;
        self
    }

    /// Pings the minions `tgt` of `tgt_type` selects (as `user`) and waits for them as any job:
    /// `None` when the target selects no minion.
    pub async fn ping(
        &self,
        tgt: Value,
        tgt_type: &str,
        user: &str,
    ) -> Result<Option<Pinged>, ClientError> {
        let request = PublishRequest {
            tgt,
            tgt_type: tgt_type.to_owned(),
            fun: "test.ping".to_owned(),
            arg: Value::Array(Vec::new()),
            ret: String::new(),
            user: user.to_owned(),
            jid: None,
            ret_config: None,
            ret_kwargs: None,
        };
        let mut listener = self.listen().await?;
        let published = self.publish(&request).await?;
        if published.jid.is_empty() {
            return Ok(None);
        }
        let mut pinged = Pinged::default();
        self.gather(&mut listener, &published, user, |outcome| match outcome {
            Outcome::Returned(ret) => pinged.up.push(ret.id),
            Outcome::NoResponse(id) | Outcome::NotConnected(id) => pinged.down.push(id),
        })
        .await?;
        pinged.up.sort();
        pinged.down.sort();
        Ok(Some(pinged))
    }

    /// A listener on the master's bus, connected now: subscribe before publishing so no
    /// return is missed.
    pub async fn listen(&self) -> Result<Listener, ClientError> {
        let mut listener = Listener::new(self.bus.clone());
        listener.connect().await?;
        Ok(listener)
    }

    /// Follows `published` until every minion returned, calling `each` as outcomes arrive.
    /// Minions still silent after the timeout are asked (`saltutil.find_job`) whether they
    /// still run the job; while any does, all get more time; then the silent ones are reported.
    pub async fn gather(
        &self,
        listener: &mut Listener,
        published: &Published,
        user: &str,
        mut each: impl FnMut(Outcome),
    ) -> Result<(), ClientError> {
        let jid = &published.jid;
        let prefix = format!("salt/job/{jid}/ret/");
        let mut waiting: BTreeMap<String, ()> = published
            .minions
            .iter()
            .map(|id| (id.clone(), ()))
            .collect();
        let mut deadline = Instant::now() + self.timeout;
        let mut probe: Option<(String, Instant, Vec<String>)> = None;
        while !waiting.is_empty() {
            let until = match &probe {
                Some((_, probe_deadline, _)) => *probe_deadline,
                None => deadline,
            };
            let event = tokio::select! {
                event = listener.next_event() => Some(event?),
                _ = tokio::time::sleep_until(until) => None,
            };
            match event {
                Some(Event { tag, data }) => {
                    if let Some(id) = tag.strip_prefix(&prefix) {
                        if waiting.remove(id).is_some() {
                            each(Outcome::Returned(Return {
                                id: id.to_owned(),
                                data,
                            }));
                        }
                    } else if let Some((probe_jid, _, running)) = &mut probe
                        && let Some(id) = tag
                            .strip_prefix(&format!("salt/job/{probe_jid}/ret/"))
                            .map(str::to_owned)
                        && map_get(&data, "return")
                            .and_then(Value::as_map)
                            .is_some_and(|found| !found.is_empty())
                    {
                        running.push(id);
                    }
                }
                None => match probe.take() {
                    // The timeout passed: ask the silent minions whether they still run it.
                    None => {
                        let ids: Vec<String> = waiting.keys().cloned().collect();
                        let find_job = PublishRequest {
                            tgt: Value::Array(
                                ids.iter().map(|id| Value::from(id.as_str())).collect(),
                            ),
                            tgt_type: "list".to_owned(),
                            fun: "saltutil.find_job".to_owned(),
                            arg: Value::Array(vec![Value::from(jid.as_str())]),
                            ret: String::new(),
                            user: user.to_owned(),
                            jid: None,
                            ret_config: None,
                            ret_kwargs: None,
                        };
                        let asked = self.publish(&find_job).await?;
                        probe = Some((
                            asked.jid,
                            Instant::now() + self.gather_job_timeout,
                            Vec::new(),
                        ));
                    }
                    // While any minion still runs the job, everyone gets another round; once
                    // none does, the silent ones are reported, last, as Salt reports them.
                    Some((_, _, running)) if running.is_empty() => {
                        for id in std::mem::take(&mut waiting).into_keys() {
                            each(if published.connected.contains(&id) {
                                Outcome::NoResponse(id)
                            } else {
                                Outcome::NotConnected(id)
                            });
                        }
                    }
                    Some(_) => deadline = Instant::now() + self.timeout,
                },
            }
        }
        Ok(())
    }
}
