//! `salt-minion --swarm N`: many minions in one process, to load a master as a fleet would.
//! Each has its own id (`<id>-<n>`), key pair (in `<pki_dir>/swarm/<its id>/`), session with
//! the master and grains (this host's, with its own `id`), and runs the jobs published to it
//! through the path a minion runs them. None has an event bus, beacons, a schedule or a
//! reactor: what is measured is the master.

use std::num::NonZeroUsize;
use std::sync::Arc;

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use super::{
    JOBS_QUEUED, LinkOutcome, MinionError, Settings, TO_MASTER_QUEUE, files, host_grains, link,
    run_jobs,
};
use crate::event::Value;
use crate::functions::{Context, RunningJobs};
use crate::keys::KeyPair;

/// A swarm whose members have their keys, ready to connect.
#[derive(Debug)]
pub struct Swarm {
    settings: Settings,
    members: Vec<(String, KeyPair)>,
}

impl Swarm {
    /// The ids of the `size` members of a swarm of `settings`' minion, each checked as a
    /// minion's id is (`--check-config` checks them too).
    pub fn member_ids(settings: &Settings, size: NonZeroUsize) -> Result<Vec<String>, MinionError> {
        let ids: Vec<String> = (0..size.get())
            .map(|n| format!("{}-{n}", settings.id))
            .collect();
        match ids
            .iter()
            .find_map(|id| crate::keys::id_problem(id).map(|reason| (id, reason)))
        {
            Some((member, reason)) => Err(MinionError::InvalidSwarmId {
                member: member.clone(),
                reason,
            }),
            None => Ok(ids),
        }
    }

    /// Loads (or creates) the key pair of each of `size` members.
    pub async fn prepare(settings: Settings, size: NonZeroUsize) -> Result<Self, MinionError> {
        let ids = Self::member_ids(&settings, size)?;
        let dir = settings.pki_dir.join("swarm");
        // Thousands of files: off the runtime's workers.
        let members = tokio::task::spawn_blocking(move || {
            ids.into_iter()
                .map(|id| {
                    let key = KeyPair::load_or_create(&dir.join(&id), "minion")?;
                    Ok::<_, MinionError>((id, key))
                })
                .collect::<Result<Vec<_>, _>>()
        })
        .await
        .unwrap_or_else(|err| std::panic::resume_unwind(err.into_panic()))?;
        Ok(Self { settings, members })
    }

    /// Runs every member until `shutdown`.
    pub async fn run(self, shutdown: CancellationToken) -> Result<LinkOutcome, MinionError> {
        let Swarm { settings, members } = self;
        let config = settings.config;
        let returners = crate::returners::Deliveries::new(&config, None)?;
        let host_grains = host_grains(&config).await;
        tracing::info!("starting a swarm of {} minions", members.len());
        let tasks = TaskTracker::new();
        for (id, key) in members {
            let (to_master, queued) = mpsc::channel(TO_MASTER_QUEUE);
            let (jobs_tx, jobs_rx) = mpsc::channel(JOBS_QUEUED);
            let requests = Arc::new(crate::link::requests::Requests::default());
            let context = Arc::new(Context {
                grains: with_id(&host_grains, &id),
                pillar: crate::pillar::PillarSource::from_master(Arc::new(files::LinkPillar::new(
                    requests.clone(),
                ))),
                config: config.clone(),
                job: None,
                bus: None,
                to_master: Some(to_master.clone()),
                running: RunningJobs::default(),
                files: Some(files::cache(
                    requests.clone(),
                    &settings.cachedir.join("swarm").join(&id),
                )),
            });
            let parts = link::LinkParts {
                id: id.clone(),
                config: config.clone(),
                options: settings.link_options,
                key,
                bus: None,
                grains: context.grains.clone(),
                requests,
            };
            let jobs = run_jobs(
                id.clone(),
                context,
                jobs_rx,
                to_master,
                returners.clone(),
                settings.process_count_max,
            );
            let stop = shutdown.clone();
            // Every line a member logs names it: a span at the top level, so that it is on
            // whatever level the lines are logged at.
            let span = tracing::error_span!("swarm", minion = %id);
            tasks.spawn(
                async move {
                    // A member refused for good stops; the others go on.
                    let outcome = link::run(parts, queued, jobs_tx, stop).await;
                    if outcome != LinkOutcome::Stopped {
                        tracing::error!("stopped: {outcome:?}");
                    }
                }
                .instrument(span.clone()),
            );
            tasks.spawn(
                shutdown
                    .clone()
                    .run_until_cancelled_owned(jobs)
                    .instrument(span),
            );
        }
        tasks.close();
        tasks.wait().await;
        returners.close().await;
        Ok(LinkOutcome::Stopped)
    }
}

/// This host's grains with `id` set to a member's.
fn with_id(grains: &[(Value, Value)], id: &str) -> Value {
    Value::Map(
        grains
            .iter()
            .map(|(key, value)| match key.as_str() {
                Some("id") => (key.clone(), Value::from(id)),
                _ => (key.clone(), value.clone()),
            })
            .collect(),
    )
}
