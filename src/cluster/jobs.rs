//! Jobs across the cluster: a master that publishes a job also hands it, with the minions it
//! targets, to the other masters, which send it to those of them connected to them. Their
//! returns come back to the publishing master's bus through the shared bus.
//!
//! Jobs go over plain NATS, not the stream: a job is for the minions connected now, and a master
//! that was away must not run it late. A minion is connected to one master at a time, so each
//! job reaches it once.

use std::time::Duration;

use bytes::Bytes;
use futures_util::StreamExt;

use super::Cluster;
use crate::event::{Value, map_get};
use crate::proto::JobLoad;
use crate::wire;

/// The tag the job's message carries in its (event-shaped) body; never fired on a bus.
const JOB_TAG: &str = "halite/cluster/job";

/// How long a publish may wait for room in the connection's buffer (NATS down for long): the
/// job then reaches this master's minions only.
const SHARE_TIMEOUT: Duration = Duration::from_secs(1);

/// A job another master of the cluster published.
#[derive(Debug, Clone, PartialEq)]
pub struct ClusterJob {
    /// The master that published it, and its run (`<id>/<run>`).
    pub origin: String,
    /// The load its minions get.
    pub load: JobLoad,
    /// Every minion it targets, on whichever master.
    pub minions: Vec<String>,
}

impl ClusterJob {
    fn to_body(&self) -> Vec<u8> {
        let data = Value::Map(vec![
            (Value::from("origin"), Value::from(self.origin.as_str())),
            (Value::from("load"), self.load.to_value()),
            (
                Value::from("minions"),
                Value::Array(
                    self.minions
                        .iter()
                        .map(|id| Value::from(id.as_str()))
                        .collect(),
                ),
            ),
        ]);
        let mut body = Vec::new();
        wire::encode_body(JOB_TAG, &data, &mut body);
        body
    }

    fn from_body(body: &[u8]) -> Option<Self> {
        let event = wire::decode_body(body).ok()?;
        if event.tag != JOB_TAG {
            return None;
        }
        let data = &event.data;
        Some(Self {
            origin: map_get(data, "origin")?.as_str()?.to_owned(),
            load: JobLoad::from_value(map_get(data, "load")?).ok()?,
            minions: map_get(data, "minions")?
                .as_array()?
                .iter()
                .map(|id| id.as_str().map(str::to_owned))
                .collect::<Option<_>>()?,
        })
    }
}

/// A master's share of the cluster's jobs: what it publishes goes to the others, and what they
/// publish comes to it.
#[derive(Debug, Clone)]
pub struct ClusterJobs {
    client: async_nats::Client,
    subject: String,
    origin: String,
}

impl Cluster {
    /// This master's share of the cluster's jobs.
    pub fn jobs(&self) -> ClusterJobs {
        ClusterJobs {
            client: self.js.client(),
            subject: format!("halite.{}.jobs", self.settings.id),
            origin: self.origin(),
        }
    }
}

impl ClusterJobs {
    /// Hands a job this master published to the other masters.
    pub async fn share(&self, load: &JobLoad, minions: &[String]) {
        let job = ClusterJob {
            origin: self.origin.clone(),
            load: load.clone(),
            minions: minions.to_vec(),
        };
        let body = Bytes::from(job.to_body());
        let size = body.len();
        let sent = tokio::time::timeout(
            SHARE_TIMEOUT,
            self.client.publish(self.subject.clone(), body),
        )
        .await;
        let problem = match sent {
            Ok(Ok(())) => return,
            Ok(Err(err)) => err.to_string(),
            Err(_) => "the cluster's NATS servers are unreachable".to_owned(),
        };
        tracing::error!(
            "job {} ({size} bytes) reaches only this master's minions: {problem}; check cluster_nats, and max_payload in nats-server's configuration for jobs to many minions",
            load.jid
        );
    }

    /// The jobs the other masters publish, from now on, each as it comes; `None` once the
    /// connection is closed for good.
    pub async fn others(&self) -> Option<impl futures_util::Stream<Item = ClusterJob> + use<>> {
        let subscriber = match self.client.subscribe(self.subject.clone()).await {
            Ok(subscriber) => subscriber,
            Err(err) => {
                tracing::error!(
                    "cannot take the other masters' jobs: {err}; their jobs do not reach this master's minions"
                );
                return None;
            }
        };
        let own = self.origin.clone();
        Some(subscriber.filter_map(move |message| {
            let job = ClusterJob::from_body(&message.payload);
            if job.is_none() {
                tracing::warn!(
                    "dropped a malformed job on {} of the cluster's NATS",
                    message.subject
                );
            }
            std::future::ready(job.filter(|job| job.origin != own))
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_job_comes_out_as_it_went_in() {
        let job = ClusterJob {
            origin: "master-a".to_owned(),
            load: JobLoad {
                fun: "test.arg".to_owned(),
                arg: Value::Array(vec![Value::from("a b"), Value::from(1)]),
                tgt: Value::from("*"),
                jid: "20261204213000123456".to_owned(),
                ret: Some(String::new()),
                tgt_type: "glob".to_owned(),
                user: Some("root".to_owned()),
                ret_config: None,
                ret_kwargs: None,
            },
            minions: vec!["m1".to_owned(), "m.2".to_owned()],
        };
        assert_eq!(ClusterJob::from_body(&job.to_body()), Some(job));
        let mut other = Vec::new();
        wire::encode_body("salt/job/1/new", &Value::Map(Vec::new()), &mut other);
        assert_eq!(ClusterJob::from_body(&other), None);
        assert_eq!(ClusterJob::from_body(b"junk"), None);
    }
}
