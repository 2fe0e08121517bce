//! The minion daemon: its own event bus, its session with the master, the jobs it runs, and the
//! relay that carries `fire_master` events from its bus to the master.

mod files;
pub mod grains;
mod link;
mod schedule;
mod swarm;

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::bus::{Bus, BusHandle, ConfiguredBus, DaemonError, Node};
use crate::config::Config;
use crate::event::Value;
use crate::functions::event::FIRE_MASTER;
use crate::functions::{Call, Context, Job, RunningJobs};
use crate::keys::{KeyError, KeyPair};
use crate::proto::{JobLoad, MinionEventLoad};
use crate::services::{ServiceFailed, Services, Stage};
use crate::target::{Facts, Target};
use crate::wire;

pub use files::{LinkPillar, cache as file_cache};
pub use link::{LinkOutcome, call_session, send_return};
pub use swarm::Swarm;

/// Loads waiting to go to the master while the link is down.
const TO_MASTER_QUEUE: usize = 4096;

/// Failure to start a minion, or to keep it running.
#[derive(Debug, thiserror::Error)]
pub enum MinionError {
    /// The bus could not start.
    #[error(transparent)]
    Daemon(#[from] DaemonError),
    /// The minion's key pair is unusable.
    #[error(transparent)]
    Keys(#[from] KeyError),
    /// The id cannot name a key file on the master, or reads as a pattern.
    #[error(
        "invalid minion id \"{}\": {reason}; set id: in the minion config",
        crate::event::tag::printable(&crate::output::clip(id, 64))
    )]
    InvalidId {
        /// The id.
        id: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A swarm member's id (`<id>-<n>`) cannot name a key file on the master.
    #[error(
        "invalid swarm minion id \"{}\": {reason}; set a shorter id: in the minion config or a smaller --swarm",
        crate::event::tag::printable(&crate::output::clip(member, 64))
    )]
    InvalidSwarmId {
        /// The member's id.
        member: String,
        /// What is wrong with it.
        reason: &'static str,
    },
    /// A service the minion cannot run without ended, and the minion stopped.
    #[error(transparent)]
    Service(#[from] ServiceFailed),
}

impl From<crate::config::ConfigError> for MinionError {
    fn from(err: crate::config::ConfigError) -> Self {
        MinionError::Daemon(err.into())
    }
}

/// `process_count_max`, where Salt's `-1` (no limit) means halite's default bound.
fn process_count_max(config: &Config) -> Result<usize, crate::config::ConfigError> {
    if config.get("process_count_max").and_then(Value::as_i64) == Some(-1) {
        return Ok(DEFAULT_PROCESS_COUNT_MAX as usize);
    }
    match config.get_u64("process_count_max", DEFAULT_PROCESS_COUNT_MAX)? {
        0 => Err(crate::config::ConfigError::BadValue {
            key: "process_count_max".into(),
            value: "0".into(),
            expected: "expected 1 or more jobs at once (or -1)",
        }),
        max => Ok(usize::try_from(max).unwrap_or(usize::MAX)),
    }
}

/// `process_count_max`: jobs a minion runs at once (`saltutil.*` aside); further jobs wait in the
/// bounded queue from the master instead of each starting a task without limit. Salt's default
/// is no limit.
const DEFAULT_PROCESS_COUNT_MAX: u64 = 64;

/// How often the minion looks for spools `salt-call` left, to deliver them.
const SPOOLS_LOOKED_AT: std::time::Duration = std::time::Duration::from_secs(60);

/// Jobs that may wait for a slot beyond those in the queue from the master.
const JOBS_WAITING: usize = 256;

/// Jobs the link may hand over before the runner takes them.
const JOBS_QUEUED: usize = 256;

/// What a minion reads from its configuration at start, every value parsed and checked, nothing
/// bound: `--check-config` stops here, a start binds it with [`Minion::bind`].
#[derive(Debug)]
pub struct Settings {
    id: String,
    config: Config,
    bus: ConfiguredBus,
    pki_dir: std::path::PathBuf,
    cachedir: std::path::PathBuf,
    reactor_limits: crate::reactor::Limits,
    link_options: link::LinkOptions,
    process_count_max: usize,
}

impl Settings {
    /// Reads every option the minion needs before it binds anything, its id first.
    pub fn from_config(config: &Config) -> Result<Self, MinionError> {
        let id = config.id()?;
        if let Some(reason) = crate::keys::id_problem(&id) {
            return Err(MinionError::InvalidId { id, reason });
        }
        // Read again by each connection attempt; a bad value stops the start instead.
        link::MasterAddress::configured(config)?;
        Ok(Self {
            id,
            bus: ConfiguredBus::from_config(config, Node::Minion)?,
            pki_dir: config.pki_dir()?,
            cachedir: config.cachedir()?,
            reactor_limits: crate::reactor::Limits::from_config(config)?,
            process_count_max: process_count_max(config)?,
            link_options: link::LinkOptions::from_config(config)?,
            config: config.clone(),
        })
    }
}

/// A minion whose bus is bound, ready to run.
#[derive(Debug)]
pub struct Minion {
    id: String,
    config: Config,
    cachedir: std::path::PathBuf,
    bus: Bus,
    key: KeyPair,
    reactor_limits: crate::reactor::Limits,
    link_options: link::LinkOptions,
    process_count_max: usize,
}

impl Minion {
    /// Binds the minion's bus and loads (or creates) its key pair.
    pub async fn bind(settings: Settings) -> Result<Self, MinionError> {
        let Settings {
            id,
            config,
            bus,
            pki_dir,
            cachedir,
            reactor_limits,
            link_options,
            process_count_max,
        } = settings;
        Ok(Self {
            bus: bus.bind().await?,
            key: KeyPair::load_or_create(&pki_dir, "minion")?,
            id,
            config,
            cachedir,
            reactor_limits,
            link_options,
            process_count_max,
        })
    }

    /// Serves the bus, keeps the session with the master, runs jobs and relays `fire_master`
    /// events until `shutdown`, or until the master refuses this minion's key for good; fails
    /// when a service it cannot run without (the bus, the link) ended, which stopped it.
    pub async fn run(self, shutdown: CancellationToken) -> Result<LinkOutcome, MinionError> {
        let Minion {
            id,
            config,
            cachedir,
            bus,
            key,
            reactor_limits,
            link_options,
            process_count_max,
        } = self;
        let handle = bus.handle();
        tracing::info!("minion {id} event bus is up");
        let returners = crate::returners::Deliveries::new(&config, Some(handle.clone()))?;
        // What a minion or salt-call stopped before could not store yet is delivered first.
        returners.resume();
        let (to_master, queued) = mpsc::channel(TO_MASTER_QUEUE);
        let (jobs_tx, jobs_rx) = mpsc::channel::<JobLoad>(JOBS_QUEUED);
        let requests = Arc::new(crate::link::requests::Requests::default());
        let grains = host_grains(&config).await;
        let context = Arc::new(Context {
            grains: Value::Map(grains),
            pillar: crate::pillar::PillarSource::from_master(Arc::new(files::LinkPillar::new(
                requests.clone(),
            ))),
            config: config.clone(),
            job: None,
            bus: Some(handle.clone()),
            to_master: Some(to_master.clone()),
            running: RunningJobs::default(),
            files: Some(files::cache(requests.clone(), &cachedir)),
        });
        let relay = relay(id.clone(), handle.clone(), to_master.clone());
        let reactor = crate::reactor::Reactor::new(
            &config,
            reactor_limits,
            handle.clone(),
            Reactions(context.clone()),
        );
        let runner = run_jobs(
            id.clone(),
            context.clone(),
            jobs_rx,
            to_master.clone(),
            returners.clone(),
            process_count_max,
        );
        let parts = link::LinkParts {
            id: id.clone(),
            config: config.clone(),
            options: link_options,
            key,
            bus: Some(handle),
            grains: context.grains.clone(),
            requests,
        };
        // Before the link starts, so that the beacons see it connect.
        let running = context.running.clone();
        let beacons_bus = context
            .bus
            .clone()
            .expect("the minion's context has its bus");
        let beacons = crate::beacons::run::Beacons {
            id: id.clone(),
            configured: config.get("beacons").cloned(),
            host: crate::beacons::Host::real(),
            requests: beacons_bus.subscribe(),
            bus: beacons_bus,
            to_master: to_master.clone(),
            state_running: Arc::new(move || running.state_running()),
            pillar: Some(pillar_item(&context, "beacons")),
        };
        // Before the link starts, so that the scheduler sees it connect.
        let scheduler = schedule::Scheduler {
            id: id.clone(),
            requests: beacons.bus.subscribe(),
            context: context.clone(),
            returners: returners.clone(),
        };
        let (reported, mut outcome) = oneshot::channel();
        let mut services = Services::new();
        // The reactor works through what it accepted first, while the link carries its jobs;
        // the link, the relay and the jobs stop after it, and the bus last.
        services.spawn("reactor", Stage::Reactions, |stop| reactor.run(stop));
        services.spawn_essential("link", Stage::Sessions, |stop| {
            let link = link::run(parts, queued, jobs_tx, stop);
            let shutdown = shutdown.clone();
            async move {
                let _ = reported.send(link.await);
                // A minion refused for good stops serving too.
                shutdown.cancel();
            }
        });
        services.spawn("relay", Stage::Sessions, |stop| async move {
            stop.run_until_cancelled(relay).await;
        });
        services.spawn("jobs", Stage::Sessions, |stop| async move {
            stop.run_until_cancelled(runner).await;
        });
        services.spawn("beacons", Stage::Reactions, |stop| beacons.run(stop));
        services.spawn("schedule", Stage::Reactions, |stop| scheduler.run(stop));
        // After the jobs that hand them returns; what they cannot store by then stays in their
        // spools.
        services.spawn("returners", Stage::Bus, |stop| async move {
            // salt-call leaves in the spools what its returners could not store.
            let mut ticker = tokio::time::interval(SPOOLS_LOOKED_AT);
            while stop.run_until_cancelled(ticker.tick()).await.is_some() {
                returners.resume();
            }
            returners.close().await;
        });
        services.spawn_essential("bus", Stage::Bus, |stop| bus.run(stop));
        services.run(&shutdown).await?;
        // Without an outcome, the link was given up on as the minion stopped.
        Ok(outcome.try_recv().unwrap_or(LinkOutcome::Stopped))
    }
}

/// This host's grains. They read files and ask the resolver, which may take seconds: off the
/// runtime's workers, so that the bus is served meanwhile.
async fn host_grains(config: &Config) -> Vec<(Value, Value)> {
    let config = config.clone();
    tokio::task::spawn_blocking(move || grains::grains(&config))
        .await
        .unwrap_or_else(|err| std::panic::resume_unwind(err.into_panic()))
}

/// The `key` of the minion's pillar (its `beacons`, its `schedule`), asked of its master afresh.
fn pillar_item(context: &Arc<Context>, key: &'static str) -> crate::services::Fetch<Value> {
    let context = context.clone();
    Arc::new(move || {
        let context = context.clone();
        Box::pin(async move {
            context
                .pillar
                .fetch()
                .await
                .map_err(|err| err.to_string())?;
            let pillar = context
                .pillar
                .get(&context.config, &context.grains)
                .map_err(|err| err.to_string())?;
            Ok(crate::event::map_get(&pillar, key)
                .cloned()
                .unwrap_or(Value::Nil))
        })
    })
}

/// What a minion's reactor acts through: `caller.*` reactions run here, as `salt-call` would.
struct Reactions(Arc<Context>);

impl crate::reactor::Backend for Reactions {
    async fn local(&self, _request: crate::proto::PublishRequest) -> Result<Value, String> {
        Err("local reactions run on a master".to_owned())
    }

    async fn caller(&self, call: Call) -> Result<Value, String> {
        let outcome = crate::functions::run(&call, &self.0).await;
        if outcome.error || outcome.job_retcode() != 0 {
            Err(format!(
                "retcode {}: {}",
                outcome.job_retcode(),
                crate::py::value::py_str(&outcome.ret)
            ))
        } else {
            Ok(outcome.ret)
        }
    }

    async fn runner(
        &self,
        _call: &Call,
        _sink: &mut crate::runners::EventSink,
    ) -> Result<Value, crate::runners::RunnerError> {
        Err(crate::runners::RunnerError::Failed(
            "runner reactions run on a master".to_owned(),
        ))
    }

    async fn wheel(
        &self,
        _call: &Call,
        _sink: &mut crate::runners::EventSink,
    ) -> Result<Value, crate::runners::RunnerError> {
        Err(crate::runners::RunnerError::Failed(
            "wheel reactions run on a master".to_owned(),
        ))
    }
}

/// Forwards `fire_master` events from the minion's bus to the master.
async fn relay(id: String, bus: BusHandle, to_master: mpsc::Sender<Value>) {
    let mut subscription = bus.subscribe();
    while let Some(body) = subscription.next_body().await {
        if !body.starts_with(FIRE_MASTER.as_bytes()) {
            continue;
        }
        match wire::decode_body(&body) {
            Ok(event) => match MinionEventLoad::from_fire_master(&id, &event.data) {
                Ok(load) => {
                    tracing::debug!(
                        "forwarding event {} to the master",
                        crate::event::tag::printable(&event.tag)
                    );
                    if to_master.try_send(load.to_value()).is_err() {
                        tracing::warn!(
                            "dropped event {} for the master: {TO_MASTER_QUEUE} loads are already waiting for the link",
                            event.tag
                        );
                    }
                }
                Err(err) => tracing::warn!("ignored {} event ({err}): {}", event.tag, event.data),
            },
            Err(err) => tracing::warn!("Error dispatching event. {err}"),
        }
    }
}

/// Runs the jobs the link hands over, at most `process_count_max` at once (`saltutil.*` aside,
/// which finds and stops the others and so is never behind them), until the link's queue ends.
async fn run_jobs(
    id: String,
    context: Arc<Context>,
    mut jobs: mpsc::Receiver<JobLoad>,
    to_master: mpsc::Sender<Value>,
    returners: crate::returners::Deliveries,
    process_count_max: usize,
) {
    // Owned here: jobs still running when the minion stops are stopped with it.
    let mut running = tokio::task::JoinSet::new();
    let mut control = tokio::task::JoinSet::new();
    // Jobs that cannot start yet; the queue from the master is read on while they wait.
    let mut waiting = std::collections::VecDeque::new();
    // A job's lines carry the span the jobs run in: a swarm's member's.
    let job = |load| {
        run_job(
            id.clone(),
            context.clone(),
            load,
            to_master.clone(),
            returners.clone(),
        )
        .in_current_span()
    };
    loop {
        tokio::select! {
            load = jobs.recv(), if waiting.len() < JOBS_WAITING => {
                let Some(load) = load else { break };
                if load.fun.starts_with("saltutil.") {
                    if control.len() >= process_count_max {
                        control.join_next().await;
                    }
                    control.spawn(job(load));
                } else {
                    waiting.push_back(load);
                }
            }
            Some(_) = running.join_next(), if !running.is_empty() => {}
            Some(_) = control.join_next(), if !control.is_empty() => {}
        }
        while running.len() < process_count_max
            && let Some(load) = waiting.pop_front()
        {
            running.spawn(job(load));
        }
    }
}

/// Runs one published job if it targets this minion, sends the return, and hands it to the
/// returners the job names (`--return`) and the minion's `return` option names.
async fn run_job(
    id: String,
    context: Arc<Context>,
    job: JobLoad,
    to_master: mpsc::Sender<Value>,
    returners: crate::returners::Deliveries,
) {
    // Salt's `__pub_*` arguments and `saltutil.find_job` show the load as published.
    let load = job.to_value();
    let JobLoad {
        fun,
        arg,
        tgt,
        jid,
        tgt_type,
        user,
        ret: named,
        ret_config,
        ret_kwargs,
    } = job;
    let target = match Target::new(&tgt, &tgt_type) {
        Ok(target) => target,
        Err(err) => {
            tracing::warn!("ignored job {jid}: {err}");
            return;
        }
    };
    // The pillar a target looks at is the one in memory (shared, not copied), fetched when
    // there is none yet: jobs that come meanwhile wait for that one fetch.
    let pillar = if target.needs_pillar() {
        if context.pillar.is_stale()
            && let Err(err) = context.pillar.fetch().await
        {
            tracing::warn!("job {jid} targets the pillar, which cannot be fetched: {err}");
        }
        Some(
            context
                .pillar
                .get(&context.config, &context.grains)
                .unwrap_or_else(|_| Arc::new(Value::Map(Vec::new()))),
        )
    } else {
        None
    };
    let facts = Facts {
        grains: Some(&context.grains),
        pillar: pillar.as_deref(),
    };
    if !target.matches(&id, facts) {
        return;
    }
    tracing::info!(
        "User {} Executing command {fun} with jid {jid}",
        user.as_deref().unwrap_or_default()
    );
    let job = Job {
        jid: jid.clone(),
        load,
    };
    // Listed until its return is on its way, so that `saltutil.find_job` never calls it gone
    // before the return could arrive.
    let running = context.running.enter(job.clone());
    let call = Call::from_load(&fun, &arg);
    let job_context = Context {
        job: Some(job),
        ..(*context).clone()
    };
    let Some(mut outcome) = running
        .run(crate::functions::run(&call, &job_context))
        .await
    else {
        // Ended by `saltutil.kill_job` and the like, as Salt's killed job process: no return.
        return;
    };
    let size = crate::link::packed_size(&outcome.ret);
    if size > crate::proto::MAX_MESSAGE - 64 * 1024 {
        // Sent as it is, it would not fit on the link; the job still gets an answer.
        outcome = crate::functions::Outcome::failed(format!(
            "ERROR: the return of {fun} is {size} bytes, over the {} bytes a return may have",
            crate::proto::MAX_MESSAGE - 64 * 1024
        ));
    }
    let retcode = outcome.job_retcode();
    let ret = crate::proto::ReturnLoad {
        id: id.clone(),
        jid: jid.clone(),
        ret: outcome.ret,
        retcode,
        fun,
        fun_args: arg,
        origin: crate::proto::Origin::Job {
            success: retcode == 0,
            out: outcome.error.then_some("nested"),
            user,
            outputter: outcome.outputter,
        },
    };
    let mut names = named
        .map(|named| crate::returners::listed(&Value::from(named)))
        .unwrap_or_default();
    if let Some(configured) = context.config.get("return") {
        names.extend(crate::returners::listed(configured));
    }
    names.sort();
    names.dedup();
    if !names.is_empty() {
        returners.job_return(
            &names,
            &ret.for_returners(ret_config.as_ref(), ret_kwargs.as_ref()),
        );
    }
    let ret = ret.to_value();
    if to_master.send(ret).await.is_err() {
        tracing::warn!("the return of job {jid} was lost: the minion is stopping");
    }
    drop(running);
}
