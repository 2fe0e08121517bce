//! Publishing a job: resolve the target against accepted keys, allocate the jid, store the
//! load, fire Salt's publish events and send the job to the targeted minions.

use std::sync::Arc;

use futures_util::StreamExt;
use tokio_util::sync::CancellationToken;

use super::Shared;
use crate::cluster::ClusterJob;
use crate::event::{Value, jid};
use crate::keys::KeyState;
use crate::proto::job::{JobMinions, NewJob};
use crate::proto::publish::PublishReply;
use crate::proto::{JobLoad, Message, PublishRequest, SaltEvent};
use crate::target::nodegroup::NodeGroups;
use crate::target::{Facts, Target};

/// Publishes `request`; the reply is `{"jid", "minions", "missing", "connected"}` (`jid` empty
/// when no minion matched, and then nothing is sent and no event fired, as with Salt).
pub(super) async fn publish(
    shared: &Arc<Shared>,
    mut request: PublishRequest,
) -> Result<Value, String> {
    // Callers inside the master (reactions) name node groups too.
    NodeGroups::configured(&shared.config)
        .write_out(&mut request)
        .map_err(|err| err.to_string())?;
    let target = Target::new(&request.tgt, &request.tgt_type).map_err(|err| err.to_string())?;
    if let Some(asked) = request.jid.as_deref()
        && !jid::is_plain_jid(asked)
    {
        return Err(format!(
            "{asked:?} is not a jid: a jid is 20 digits, maybe with a _suffix of letters, digits, '_', '.' or '-'"
        ));
    }
    let accepted = shared
        .keys
        .ids(KeyState::Accepted)
        .map_err(|err| err.to_string())?;
    let minions: Vec<String> = if target.needs_grains() || target.needs_pillar() {
        // Grains of minions not seen since the master started are read from the cache; the
        // pillar is the one each connected minion was last sent (unknown otherwise: the
        // minion decides).
        let (shared, target, accepted) = (Arc::clone(shared), target.clone(), accepted.clone());
        tokio::task::spawn_blocking(move || {
            accepted
                .into_iter()
                .filter(|id| {
                    let grains = shared.sessions.grains(&shared, id);
                    let pillar = shared.sessions.pillar(id);
                    let facts = Facts {
                        grains: grains.as_deref(),
                        pillar: pillar.as_deref(),
                    };
                    target.matches(id, facts)
                })
                .collect()
        })
        .await
        .map_err(|err| format!("matching grains failed: {err}"))?
    } else {
        accepted
            .iter()
            .filter(|id| target.matches(id, Facts::default()))
            .cloned()
            .collect()
    };
    let missing: Vec<String> = match &target {
        Target::List(ids) => {
            let accepted: std::collections::HashSet<&str> =
                accepted.iter().map(String::as_str).collect();
            ids.iter()
                .filter(|id| !accepted.contains(id.as_str()))
                .cloned()
                .collect()
        }
        _ => Vec::new(),
    };
    let connected = shared.sessions.connected_among(&minions);
    let reply = |jid: &str, minions: &[String], connected: &[String]| {
        PublishReply {
            jid,
            minions,
            missing: &missing,
            connected,
        }
        .to_value()
    };
    if minions.is_empty() {
        return Ok(reply("", &[], &[]));
    }
    let load = store(shared, &request, &minions).await?;
    let jid = load.jid.as_str();
    // Packed once, before anything is announced: each session queues the same bytes, and a
    // job too big for the link is the caller's error, not a silence from every minion.
    let job = if connected.is_empty() {
        None
    } else {
        let packed = crate::link::Outgoing::packed(&Message::Publish(load.clone()).to_value(), jid);
        Some(packed.ok_or_else(|| {
            format!(
                "job {jid} is larger than the link carries ({} bytes); send less data with it",
                crate::proto::MAX_MESSAGE
            )
        })?)
    };
    shared.bus.fire(
        JobMinions {
            jid,
            minions: &minions,
        }
        .to_event(),
    );
    shared.bus.fire(
        NewJob {
            load: &load,
            minions: &minions,
            missing: &missing,
        }
        .to_event(),
    );
    shared.bus.fire(load.publish_event());
    let answer = reply(jid, &minions, &connected);
    if let Some(job) = job {
        for id in &connected {
            shared.sessions.send(id, job.clone());
        }
    }
    if let Some(cluster) = &shared.cluster_jobs {
        cluster.share(&load, &minions).await;
    }
    Ok(answer)
}

/// Sends the jobs other masters of the cluster publish to the minions they target that are
/// connected here, and keeps them in the job cache, until `stop`.
pub(super) async fn take_cluster_jobs(
    shared: Arc<Shared>,
    jobs: crate::cluster::ClusterJobs,
    stop: CancellationToken,
) {
    let Some(Some(others)) = stop.run_until_cancelled(jobs.others()).await else {
        return;
    };
    let mut others = std::pin::pin!(others);
    while let Some(Some(job)) = stop.run_until_cancelled(others.next()).await {
        take_cluster_job(&shared, job).await;
    }
}

async fn take_cluster_job(shared: &Arc<Shared>, job: ClusterJob) {
    let ClusterJob {
        origin,
        load,
        minions,
    } = job;
    let jid = load.jid.clone();
    if !jid::is_plain_jid(&jid) {
        tracing::warn!("dropped a job of master {origin}: {jid:?} is not a jid");
        return;
    }
    // Stored first: a jid this master gave a job of its own is not another's to replace.
    let (jobs, stored, targets) = (shared.jobs.clone(), load.to_value(), minions.clone());
    let job_jid = jid.clone();
    let saved =
        tokio::task::spawn_blocking(move || jobs.save_load(&job_jid, &stored, &targets)).await;
    match saved {
        Ok(Ok(())) => {}
        Ok(Err(err)) if err.kind() == std::io::ErrorKind::AlreadyExists => {
            tracing::warn!(
                "dropped job {jid} of master {origin}: this master has a job with that jid"
            );
            return;
        }
        Ok(Err(err)) => {
            tracing::error!("cannot store job {jid} of master {origin} in the job cache: {err}")
        }
        Err(err) => tracing::error!("storing job {jid} failed: {err}"),
    }
    // Before any minion has it, so that its return is taken.
    shared.recent.remember(&jid, &minions);
    let connected = shared.sessions.connected_among(&minions);
    if connected.is_empty() {
        return;
    }
    match crate::link::Outgoing::packed(&Message::Publish(load).to_value(), &jid) {
        Some(packed) => {
            for id in &connected {
                shared.sessions.send(id, packed.clone());
            }
        }
        None => tracing::warn!(
            "job {jid} of master {origin} is larger than the link carries; its minions here do not get it"
        ),
    }
}

/// Keeps the returns of other masters' minions, as the bridge hands them over, in this master's
/// job cache too, so that `jobs.lookup_jid` on any master shows every return.
pub(super) async fn store_cluster_returns(
    shared: Arc<Shared>,
    mut returns: tokio::sync::mpsc::Receiver<bytes::Bytes>,
    stop: CancellationToken,
) {
    while let Some(Some(body)) = stop.run_until_cancelled(returns.recv()).await {
        let Ok(event) = crate::wire::decode_body(&body) else {
            continue;
        };
        let Some((jid, id)) = crate::proto::tags::parse_job_return(&event.tag) else {
            continue;
        };
        if !jid::is_plain_jid(jid) || crate::keys::id_problem(id).is_some() {
            continue;
        }
        let (stored, out) = crate::returners::local_cache::kept(&event.data);
        let (jobs, jid, id) = (shared.jobs.clone(), jid.to_owned(), id.to_owned());
        let saved = tokio::task::spawn_blocking(move || {
            jobs.save_return(&jid, &id, &stored, out.as_ref())
                .map_err(|err| format!("cannot store the return of {id} for job {jid}: {err}"))
        })
        .await;
        if let Ok(Err(err)) = saved {
            tracing::error!("{err}");
        }
    }
}

/// Allocates the jid (or takes the caller's) and stores the job's load; a jid already in the
/// cache is replaced by a fresh one, as Salt's `prep_jid` does.
async fn store(
    shared: &Shared,
    request: &PublishRequest,
    minions: &[String],
) -> Result<JobLoad, String> {
    let jid = request.jid.clone().unwrap_or_else(jid::gen_jid);
    let mut load = JobLoad::published(request, jid);
    for _ in 0..100 {
        let jobs = shared.jobs.clone();
        let (jid, stored, ids) = (load.jid.clone(), load.to_value(), minions.to_vec());
        let saved = tokio::task::spawn_blocking(move || jobs.save_load(&jid, &stored, &ids))
            .await
            .map_err(|err| err.to_string())?;
        match saved {
            Ok(()) => {
                shared.recent.remember(&load.jid, minions);
                super::returns::job(shared, &load.jid, &load.to_value(), minions);
                return Ok(load);
            }
            Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
                tokio::time::sleep(std::time::Duration::from_micros(1)).await;
                load.jid = jid::gen_jid();
            }
            Err(err) => return Err(format!("cannot store the job in the job cache: {err}")),
        }
    }
    Err("cannot allocate a new jid".to_owned())
}
