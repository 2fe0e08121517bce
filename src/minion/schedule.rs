//! The scheduler service of a minion: runs the jobs of its schedule (the configuration's over
//! the pillar's, [`crate::schedule`]) when they are due, each run one tracked task, and answers
//! Salt's `manage_schedule` requests (what `schedule.*` functions send over the minion bus).
//!
//! A run is Salt's scheduled job: a jid of its own, the function run with the job's arguments,
//! registered as running (`jid_include`) so that `saltutil.running` sees it and `maxrunning`
//! counts it; its return dict goes to the returners the job names (`returner`), fires as
//! `__schedule_return` on the minion bus, and goes to the master as a `_return` load unless
//! `return_job: False`, with jid `req` when no returner has the minion's own jid (so the master
//! gives it one), as Salt's scheduler sends it.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use jiff::Timestamp;
use jiff::tz::TimeZone;
use tokio::sync::mpsc;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

use crate::bus::{BusHandle, BusSubscription};
use crate::event::{Event, Value, map_get};
use crate::functions::{Call, Context, Job as RunningJob};
use crate::proto::events::PILLAR_REFRESH;
use crate::proto::manage::SCHEDULE;
use crate::proto::tags::MASTER_CONNECTED;
use crate::proto::{Origin, ReturnLoad};
use crate::py::value::py_str;
use crate::returners::Deliveries;
use crate::schedule::manage::Schedule;
use crate::schedule::{self, Job, Problem, Range, ReturnJob, Splay};
use crate::services::Refetch;

/// Runs of scheduled jobs under way at once, whatever their `maxrunning`, so that jobs that
/// never end cannot pile up without bound: a job due beyond it stays due until a run ends.
const MAX_RUNS: usize = 256;
/// How often at most the minion says that scheduled returns were not sent to the master.
const UNSENT_EVERY: Duration = Duration::from_secs(60);
/// The longest the service sleeps before it looks at the clock again, so that a clock set
/// forward or back is noticed.
const LONGEST_SLEEP: Duration = Duration::from_secs(60);
/// How long to wait before asking for the pillar again when the master did not answer.
const PILLAR_RETRY: Duration = Duration::from_secs(10);
/// The return code Salt's scheduler gives a run whose function failed.
const FAILED: i64 = 254;
/// The tag of a scheduled job's return on the minion bus (Salt's).
pub const RETURN_TAG: &str = "__schedule_return";

/// What the scheduler needs from its minion.
pub(super) struct Scheduler {
    /// The minion id.
    pub id: String,
    /// What jobs run with: the configuration, grains, pillar, bus, the queue to the master and
    /// the running jobs.
    pub context: Arc<Context>,
    /// A subscription to the minion bus, taken before the minion connects to its master so
    /// that its `__master_connected` is not missed.
    pub requests: BusSubscription,
    /// The minion's returners.
    pub returners: Deliveries,
}

/// A job of the schedule, and when it runs next.
struct Planned {
    job: Job,
    /// The configuration that decides its times (`enabled` aside, which does not restart
    /// them), to tell a changed job from an unchanged one.
    timing_of: Value,
    /// When it is next due, before its splay.
    due: Option<Timestamp>,
    /// When it runs next: `due` and its splay, or now for `run_on_start`.
    fire_at: Option<Timestamp>,
    /// The next run is its `run_on_start`.
    on_start: bool,
}

/// What one run needs.
struct Run {
    id: String,
    context: Arc<Context>,
    deliveries: Deliveries,
    job: Job,
    /// The job's returners and the minion's `schedule_returner`, each once.
    returners: Vec<String>,
    jid: String,
    unsent: Arc<Unsent>,
}

/// Scheduled returns not sent to the master because its queue was full (the master out of
/// reach): a run does not wait for it, so that the schedule goes on during an outage, as
/// Salt's does. Counted, and said at most once every [`UNSENT_EVERY`].
#[derive(Debug, Default)]
struct Unsent(Mutex<UnsentCount>);

#[derive(Debug, Default)]
struct UnsentCount {
    /// Since it was last said.
    pending: u64,
    /// Since the minion started.
    total: u64,
    said_at: Option<Instant>,
}

impl Unsent {
    /// Counts one return not sent at `now`; what to say of them (not sent since last said, in
    /// all) when it is time to say it.
    fn count(&self, now: Instant) -> Option<(u64, u64)> {
        let mut count = self
            .0
            .lock()
            .unwrap_or_else(std::sync::PoisonError::into_inner);
        count.pending += 1;
        count.total += 1;
        if count
            .said_at
            .is_some_and(|at| now.duration_since(at) < UNSENT_EVERY)
        {
            return None;
        }
        count.said_at = Some(now);
        Some((std::mem::take(&mut count.pending), count.total))
    }
}

/// Queues a scheduled return for the master without waiting for room.
fn send_to_master(to_master: &mpsc::Sender<Value>, load: Value, jid: &str, unsent: &Unsent) {
    match to_master.try_send(load) {
        Ok(()) => {}
        Err(mpsc::error::TrySendError::Full(_)) => {
            if let Some((pending, total)) = unsent.count(Instant::now()) {
                tracing::warn!(
                    "{pending} scheduled returns were not sent to the master ({total} since the minion started; the last of job {jid}): {} loads already wait for the link to it; their returners still got them",
                    to_master.max_capacity()
                );
            }
        }
        Err(mpsc::error::TrySendError::Closed(_)) => {
            tracing::warn!("the return of scheduled job {jid} was lost: the minion is stopping");
        }
    }
}

/// Whether a run was started.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Started {
    Yes,
    /// Not: disabled, a dry run, or `maxrunning` reached.
    No,
    /// Not: [`MAX_RUNS`] runs are under way.
    NoSlot,
}

impl Scheduler {
    /// Runs the schedule until `stop`; runs still under way then are stopped with it.
    pub(super) async fn run(self, stop: CancellationToken) {
        let Scheduler {
            id,
            context,
            mut requests,
            returners,
        } = self;
        let config = &context.config;
        let (schedule, refused) = Schedule::new(config.get("schedule"), &config.include_dir());
        let bus = context
            .bus
            .clone()
            .expect("the minion's context has its bus");
        let to_master = context
            .to_master
            .clone()
            .expect("the minion's context has its queue to the master");
        // Salt's `schedule_returner`: returners every job's return goes to, beside its own.
        let schedule_returner = match config.get("schedule_returner") {
            None | Some(Value::Nil) => Vec::new(),
            Some(value) => schedule::returner_names(value).unwrap_or_else(|| {
                tracing::error!(
                    "schedule_returner: expected a returner's name or a list of them, not {}; scheduled returns go to their jobs' returners only",
                    crate::py::value::repr(value)
                );
                Vec::new()
            }),
        };
        let schedule_returner = schedule_returner
            .into_iter()
            .filter(|name| match crate::returners::module(name) {
                Ok(_) => true,
                Err(err) => {
                    tracing::error!("schedule_returner: {err}; scheduled returns do not go to it");
                    false
                }
            })
            .collect();
        let mut service = Service {
            deliveries: returners,
            schedule_returner,
            id,
            context: context.clone(),
            bus,
            to_master,
            schedule,
            tz: TimeZone::system(),
            enabled: true,
            splay: None,
            skip_during_range: None,
            planned: HashMap::new(),
            said: HashMap::new(),
            runs: JoinSet::new(),
            waiting: HashSet::new(),
            unsent: Arc::default(),
            running: HashMap::new(),
            run_names: HashMap::new(),
            pillar: Refetch::new(
                "the schedule",
                PILLAR_RETRY,
                Some(super::pillar_item(&context, "schedule")),
            ),
        };
        if let Some(problem) = refused {
            service.refuse(&problem);
        }
        service.apply();
        service.pillar.start();
        loop {
            let now = Timestamp::now();
            let wait = service
                .next_fire()
                .map(|at| Duration::try_from(at.duration_since(now)).unwrap_or_default())
                .unwrap_or(LONGEST_SLEEP)
                .min(LONGEST_SLEEP);
            tokio::select! {
                biased;
                () = stop.cancelled() => break,
                body = requests.next_body() => {
                    let Some(body) = body else { break };
                    if body.starts_with(MASTER_CONNECTED.as_bytes()) || body.starts_with(PILLAR_REFRESH.as_bytes()) {
                        service.pillar.start();
                    } else if body.starts_with(SCHEDULE.tag.as_bytes()) {
                        match crate::wire::decode_body(&body) {
                            Ok(event) => service.request(&event),
                            Err(err) => tracing::warn!("ignored a schedule request: {err}"),
                        }
                    }
                }
                jobs = service.pillar.next() => {
                    if let Some(problem) = service.schedule.set_pillar(&jobs) {
                        service.refuse(&problem);
                    }
                    service.apply();
                }
                Some(ended) = service.runs.join_next_with_id(), if !service.runs.is_empty() => {
                    let id = match &ended {
                        Ok((id, ())) => *id,
                        Err(err) => err.id(),
                    };
                    if let Err(err) = ended
                        && err.is_panic()
                    {
                        tracing::error!("a scheduled job's run failed: {err}");
                    }
                    service.ended(id);
                    // A slot is free: the job that waited longest for one takes it.
                    service.fire_due();
                }
                () = tokio::time::sleep(wait) => service.fire_due(),
            }
        }
        service.runs.abort_all();
    }
}

struct Service {
    id: String,
    context: Arc<Context>,
    bus: BusHandle,
    to_master: mpsc::Sender<Value>,
    deliveries: Deliveries,
    /// The minion's `schedule_returner`.
    schedule_returner: Vec<String>,
    schedule: Schedule,
    tz: TimeZone,
    /// The schedule's `enabled`.
    enabled: bool,
    /// The schedule's `splay`.
    splay: Option<Splay>,
    /// The schedule's `skip_during_range`.
    skip_during_range: Option<Range>,
    /// The valid jobs, by key.
    planned: HashMap<String, Planned>,
    /// The last problem said of each job, so that it is said once, not at every change.
    said: HashMap<String, String>,
    runs: JoinSet<()>,
    /// The keys of jobs due that wait for one of the [`MAX_RUNS`] slots (each said once).
    waiting: HashSet<String>,
    /// Scheduled returns not sent to the master.
    unsent: Arc<Unsent>,
    /// Runs under way, by job name (what `maxrunning` counts).
    running: HashMap<String, u64>,
    /// The job name of each run.
    run_names: HashMap<tokio::task::Id, String>,
    /// The pillar's `schedule`, fetched when it may have changed.
    pillar: Refetch<Value>,
}

impl Service {
    /// When the next run is. Jobs that wait for a slot start when a run ends, not by the clock.
    fn next_fire(&self) -> Option<Timestamp> {
        self.planned
            .iter()
            .filter(|(key, _)| !self.waiting.contains(*key))
            .filter_map(|(_, planned)| planned.fire_at)
            .min()
    }

    /// Takes the schedule as it now stands: new and changed jobs planned afresh, unchanged
    /// ones keep their times, removed ones go; each refused job said once.
    fn apply(&mut self) {
        let configured = schedule::read(Some(&self.schedule.effective()));
        self.enabled = configured.enabled;
        self.splay = configured.splay;
        self.skip_during_range = configured.skip_during_range;
        let now = Timestamp::now();
        let mut kept = HashMap::new();
        let mut problems = Vec::new();
        for job in configured.jobs {
            match job.and_then(|job| self.check(job)) {
                Ok(job) => {
                    let timing_of = timing_of(&job.given);
                    let planned = match self.planned.remove(&job.key) {
                        Some(mut planned) if planned.timing_of == timing_of => {
                            planned.job = job;
                            planned
                        }
                        _ => self.plan(job, timing_of, now),
                    };
                    self.said.remove(&planned.job.key);
                    kept.insert(planned.job.key.clone(), planned);
                }
                Err(problem) => problems.push(problem),
            }
        }
        self.planned = kept;
        let planned = &self.planned;
        self.waiting.retain(|key| planned.contains_key(key));
        for problem in problems {
            self.refuse(&problem);
        }
    }

    /// What the scheduler's layer cannot check: that the function and the returners exist.
    fn check(&self, job: Job) -> Result<Job, Problem> {
        let refuse = |key: &str, wrong: String| Problem {
            job: job.key.clone(),
            key: key.to_owned(),
            wrong,
        };
        if !crate::functions::exists(&job.function) {
            return Err(refuse(
                "function",
                format!(
                    "expected an execution function this minion has (sys.list_functions), not {:?}",
                    job.function
                ),
            ));
        }
        for name in &job.returners {
            if crate::returners::module(name).is_err() {
                return Err(refuse("returner", unknown_returner(name)));
            }
        }
        Ok(job)
    }

    fn plan(&self, job: Job, timing_of: Value, now: Timestamp) -> Planned {
        let due = job.first_due(now, &self.tz);
        let (fire_at, on_start) = if job.run_on_start {
            (Some(now), true)
        } else {
            (self.splayed(&job, due), false)
        };
        Planned {
            job,
            timing_of,
            due,
            fire_at,
            on_start,
        }
    }

    fn splayed(&self, job: &Job, due: Option<Timestamp>) -> Option<Timestamp> {
        let splay = job.splay(self.splay.as_ref()).map(Splay::draw);
        due.map(|due| {
            splay
                .and_then(|splay| due.checked_add(splay).ok())
                .unwrap_or(due)
        })
    }

    /// Says once, in the log and on the minion bus, why a job does not run. (Not on the
    /// master's: `salt/` there is the master's own, and a minion's events under it are
    /// refused.)
    fn refuse(&mut self, problem: &Problem) {
        let message = problem.to_string();
        if self.said.get(&problem.job) == Some(&message) {
            return;
        }
        tracing::error!("{message}; the job does not run, the others do");
        self.said.insert(problem.job.clone(), message.clone());
        self.bus.fire_fields(
            &schedule::error_tag(&self.id, &problem.job),
            vec![
                ("error", Value::from(message)),
                ("schedule", Value::from(problem.job.as_str())),
                ("id", Value::from(self.id.as_str())),
            ],
        );
    }

    /// Runs every job that is due, the longest due first, and plans its next run. A job that
    /// finds no free slot stays due, and is said once, until a run ends and it takes the slot.
    fn fire_due(&mut self) {
        let now = Timestamp::now();
        for key in due_in_order(&self.planned, now) {
            let Some(mut planned) = self.planned.remove(&key) else {
                continue;
            };
            let missed = planned
                .fire_at
                .map(|at| now.duration_since(at).as_secs())
                .unwrap_or_default();
            let gate = if planned.on_start {
                Ok(())
            } else {
                planned
                    .job
                    .gate(now, &self.tz, self.skip_during_range.as_ref())
            };
            let started = match gate {
                Ok(()) => self.start(&planned.job, true, missed),
                Err(skip) => {
                    tracing::debug!(
                        "schedule: Job {} skipped: {}",
                        planned.job.name,
                        skip.reason()
                    );
                    Started::No
                }
            };
            if started == Started::NoSlot {
                if self.waiting.insert(key.clone()) {
                    tracing::warn!(
                        "the scheduled job {} waits to start: {MAX_RUNS} scheduled runs are under way",
                        planned.job.name
                    );
                }
            } else {
                self.waiting.remove(&key);
                if planned.on_start {
                    planned.on_start = false;
                } else {
                    planned.due = planned
                        .due
                        .and_then(|due| planned.job.next_due(due, now, &self.tz));
                }
                planned.fire_at = self.splayed(&planned.job, planned.due);
            }
            self.planned.insert(key, planned);
        }
    }

    /// Starts one run of `job`, if it is enabled (or `forced`, by `run_job`), fewer than its
    /// `maxrunning` runs are under way, and fewer than [`MAX_RUNS`] in all.
    fn start(&mut self, job: &Job, check_enabled: bool, missed: i64) -> Started {
        if check_enabled && (!self.enabled || !job.enabled) {
            tracing::trace!("Job: {} is disabled", job.name);
            return Started::No;
        }
        if job.dry_run {
            tracing::debug!(
                "Job {} has 'dry_run' set to True. Not running it.",
                job.name
            );
            return Started::No;
        }
        let running = self.running.get(&job.name).copied().unwrap_or_default();
        if job.jid_include && running >= job.maxrunning {
            tracing::debug!(
                "schedule.handle_func: The scheduled job {} was not started, {} already running",
                job.name,
                job.maxrunning
            );
            return Started::No;
        }
        if self.runs.len() >= MAX_RUNS {
            return Started::NoSlot;
        }
        let jid = crate::event::jid::gen_jid();
        let missed = if missed > 0 {
            format!(" (runtime missed by {missed} seconds)")
        } else {
            String::new()
        };
        tracing::info!("Running scheduled job: {}{missed} with jid {jid}", job.name);
        let mut returners = job.returners.clone();
        for name in &self.schedule_returner {
            if !returners.contains(name) {
                returners.push(name.clone());
            }
        }
        let run = Run {
            id: self.id.clone(),
            context: self.context.clone(),
            deliveries: self.deliveries.clone(),
            job: job.clone(),
            returners,
            jid,
            unsent: self.unsent.clone(),
        };
        let task = self
            .runs
            .spawn(run.run(self.bus.clone(), self.to_master.clone()));
        self.run_names.insert(task.id(), job.name.clone());
        *self.running.entry(job.name.clone()).or_default() += 1;
        Started::Yes
    }

    /// A run ended.
    fn ended(&mut self, task: tokio::task::Id) {
        let Some(name) = self.run_names.remove(&task) else {
            return;
        };
        if let Some(count) = self.running.get_mut(&name) {
            *count -= 1;
            if *count == 0 {
                self.running.remove(&name);
            }
        }
    }

    /// Answers one `manage_schedule` request as Salt's minion does.
    fn request(&mut self, event: &Event) {
        let data = &event.data;
        let func = map_get(data, "func").map(py_str).unwrap_or_default();
        if func == "get_next_fire_time" {
            let name = map_get(data, "name").map(py_str).unwrap_or_default();
            let next = self
                .planned
                .values()
                .find(|planned| planned.job.key == name)
                .and_then(|planned| planned.fire_at)
                .map_or(Value::Nil, |at| {
                    Value::from(
                        self.tz
                            .to_datetime(at)
                            .strftime("%Y-%m-%dT%H:%M:%S")
                            .to_string(),
                    )
                });
            self.answer(
                &func,
                data,
                vec![("complete", true.into()), ("next_fire_time", next)],
            );
            return;
        }
        let outcome = self.schedule.manage(data);
        if let Some(fields) = outcome.answer {
            self.answer(&func, data, fields);
        }
        self.apply();
        if let Some(name) = outcome.run {
            match self.planned.get(&name).map(|planned| planned.job.clone()) {
                Some(job) => {
                    tracing::info!("Running Job: {name}");
                    if self.start(&job, false, 0) == Started::NoSlot {
                        tracing::warn!(
                            "schedule.run_job: the scheduled job {name} was not started: {MAX_RUNS} scheduled runs are under way"
                        );
                    }
                }
                None => tracing::warn!(
                    "schedule.run_job: no job {name:?} to run (it is not in the schedule, or its configuration is refused)"
                ),
            }
        }
    }

    fn answer(&self, func: &str, request: &Value, fields: Vec<(&'static str, Value)>) {
        match SCHEDULE.complete_tag(func) {
            Some(tag) => self.bus.fire_fields(tag, SCHEDULE.answer(request, fields)),
            None => tracing::debug!("no answer for a schedule {func} request"),
        }
    }
}

/// The keys of the jobs due at `now`, the longest due first (by key when due at once), so
/// that jobs left waiting for a slot are the next to take one.
fn due_in_order(planned: &HashMap<String, Planned>, now: Timestamp) -> Vec<String> {
    let mut due: Vec<(Timestamp, &String)> = planned
        .iter()
        .filter_map(|(key, planned)| planned.fire_at.filter(|at| *at <= now).map(|at| (at, key)))
        .collect();
    due.sort();
    due.into_iter().map(|(_, key)| key.clone()).collect()
}

/// Why a job naming returner `name`, which this minion does not have, is refused.
fn unknown_returner(name: &str) -> String {
    format!(
        "no returner named {} (the returners are {})",
        crate::event::tag::printable(&crate::output::clip(name, 64)),
        crate::returners::names().join(", ")
    )
}

/// A job's configuration without `enabled`, which turns runs off and on without moving them.
fn timing_of(given: &Value) -> Value {
    match given {
        Value::Map(entries) => Value::Map(
            entries
                .iter()
                .filter(|(key, _)| key.as_str() != Some("enabled"))
                .cloned()
                .collect(),
        ),
        other => other.clone(),
    }
}

impl Run {
    /// Runs the function, then hands the return to the returners, the minion bus and the
    /// master, as the job says.
    async fn run(self, bus: BusHandle, to_master: mpsc::Sender<Value>) {
        let Run {
            id,
            context,
            deliveries,
            job,
            returners,
            jid,
            unsent,
        } = self;
        let mut ret = ReturnLoad {
            id,
            jid: jid.clone(),
            ret: Value::Nil,
            retcode: 0,
            fun: job.function.clone(),
            fun_args: job.fun_args(),
            origin: Origin::Schedule {
                schedule: job.name.clone(),
                pid: std::process::id(),
                success: true,
                ret_config: None,
                ret_kwargs: None,
                out: None,
            },
        };
        let outcome = {
            let running = RunningJob {
                jid: jid.clone(),
                load: ret.running(),
            };
            let listed = job
                .jid_include
                .then(|| context.running.enter(running.clone()));
            let call = Call {
                fun: job.function.clone(),
                args: crate::salt_yaml::CliArgs {
                    args: job.args.clone(),
                    kwargs: job
                        .kwargs
                        .iter()
                        .flatten()
                        .map(|(key, value)| (py_str(key).into_owned(), value.clone()))
                        .collect(),
                },
            };
            let job_context = Context {
                job: Some(running),
                ..(*context).clone()
            };
            let work = crate::functions::run(&call, &job_context);
            match &listed {
                Some(listed) => match listed.run(work).await {
                    Some(outcome) => outcome,
                    // Ended by `saltutil.kill_job` and the like: no return, as in Salt.
                    None => return,
                },
                None => work.await,
            }
        };
        ret.ret = outcome.ret;
        ret.retcode = if outcome.error {
            FAILED
        } else {
            outcome.retcode
        };
        let named_returners = !returners.is_empty();
        ret.origin = Origin::Schedule {
            schedule: job.name.clone(),
            pid: std::process::id(),
            success: !outcome.error,
            ret_config: job.return_config.clone().filter(|_| named_returners),
            ret_kwargs: job.return_kwargs.clone().filter(|_| named_returners),
            out: outcome.outputter.filter(|_| !outcome.error),
        };
        if named_returners {
            // The return carries the job's return_config and return_kwargs for them.
            deliveries.job_return(&returners, &ret.scheduled(false));
        }
        if job.return_job == ReturnJob::No {
            return;
        }
        // Without returners the master gives the return a jid (Salt's `req`); `nocache` asks
        // it not to keep the return.
        if !named_returners {
            ret.jid = match job.return_job {
                ReturnJob::NoCache => "nocache",
                _ => "req",
            }
            .to_owned();
        }
        match Event::new(RETURN_TAG, ret.scheduled(true)) {
            Ok(event) => bus.fire(event),
            Err(err) => tracing::warn!("cannot fire {RETURN_TAG} for job {jid}: {err}"),
        }
        tracing::info!("Returning information for job: {}", ret.jid);
        send_to_master(&to_master, ret.to_value(), &jid, &unsent);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A full queue to the master (the master out of reach) does not hold the run: the return
    /// is counted and said at most once a minute.
    #[tokio::test]
    async fn a_full_queue_to_the_master_does_not_hold_the_run() {
        let (to_master, _queued) = mpsc::channel(1);
        to_master.try_send(Value::Nil).unwrap();
        let unsent = Unsent::default();
        let sent = tokio::time::timeout(Duration::from_secs(1), async {
            for _ in 0..3 {
                send_to_master(&to_master, Value::Nil, "20261203120000000000", &unsent);
            }
        })
        .await;
        assert!(sent.is_ok(), "the run waited for the master");
        let count = unsent.0.lock().unwrap();
        assert_eq!((count.pending, count.total), (2, 3), "the first was said");
    }

    #[test]
    fn unsent_returns_are_said_at_most_once_a_minute() {
        let unsent = Unsent::default();
        let start = Instant::now();
        assert_eq!(unsent.count(start), Some((1, 1)));
        assert_eq!(unsent.count(start + Duration::from_secs(1)), None);
        assert_eq!(unsent.count(start + Duration::from_secs(59)), None);
        assert_eq!(
            unsent.count(start + Duration::from_secs(60)),
            Some((3, 4)),
            "the three since, four in all"
        );
        assert_eq!(unsent.count(start + Duration::from_secs(61)), None);
    }

    /// Jobs due at once start the longest due first, so that those left waiting for a slot
    /// take the next ones, not the same jobs every time.
    #[test]
    fn the_longest_due_start_first() {
        let jobs = Value::Map(
            ["a", "b", "c", "d"]
                .into_iter()
                .map(|key| {
                    (
                        Value::from(key),
                        Value::Map(vec![
                            (Value::from("function"), Value::from("test.ping")),
                            (Value::from("seconds"), Value::from(60)),
                        ]),
                    )
                })
                .collect(),
        );
        let now = Timestamp::now();
        let ago = |secs: i64| now.checked_sub(jiff::SignedDuration::from_secs(secs)).ok();
        let fire_at = [
            ("a", ago(1)),
            ("b", ago(30)),
            ("c", ago(-5)),
            ("d", ago(10)),
        ];
        let planned: HashMap<String, Planned> = schedule::read(Some(&jobs))
            .jobs
            .into_iter()
            .map(|job| {
                let job = job.unwrap();
                let at = fire_at.iter().find(|(key, _)| *key == job.key).unwrap().1;
                let planned = Planned {
                    timing_of: Value::Nil,
                    due: at,
                    fire_at: at,
                    on_start: false,
                    job,
                };
                (planned.job.key.clone(), planned)
            })
            .collect();
        assert_eq!(due_in_order(&planned, now), ["b", "d", "a"]);
    }

    #[test]
    fn an_unknown_returner_is_named_with_the_returners_there_are() {
        let said = unknown_returner("nosuch");
        assert!(
            said.starts_with("no returner named nosuch (the returners are "),
            "{said}"
        );
        assert!(said.contains("local_cache"), "{said}");
    }
}
