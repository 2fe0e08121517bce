//! The reactor: events in, actions out.
//!
//! It watches its daemon's bus; for every event whose tag matches an entry of the `reactor`
//! option it renders the entry's SLS files (Jinja, then YAML, with `tag` and `data`) and runs
//! the reactions they declare: `local.*` jobs, `runner.*` and `wheel.*` calls on a master,
//! `caller.*` functions on a minion.
//!
//! Unlike Salt's it never goes quiet or stalls: work waits in a bounded queue
//! (`reactor_worker_hwm`, 10000) served by `reactor_worker_threads` (10) workers, events with
//! the same tag are handled in arrival order, each reaction is stopped after `reactor_timeout`
//! (60 s), and every problem — a render error with its file, line and column, a missing file,
//! an invalid reaction, a failed or timed-out one, events dropped because the queue was full — is
//! logged and fired on the bus as `salt/reactor/error/<kind>` or `salt/reactor/dropped`.
//! The configuration is read again on SIGHUP and every `reactor_refresh_interval` (60 s);
//! queued work is kept.
//!
//! Loop guard, as Salt's: events whose data has `user: Reactor` — the runner and wheel events
//! of reactions, and the reactor's own reports — never trigger reactions.

pub mod pool;
pub mod reaction;
pub mod rules;

use std::collections::HashSet;
use std::future::Future;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;

use crate::bus::{BusHandle, BusSubscription, TagFilter};
use crate::config::{Config, Role};
use crate::event::{Event, Value, map_get};
use crate::functions::Call;
use crate::proto::PublishRequest;
use crate::py::value::py_str;
use crate::render::{RenderError, Renderer};
use crate::runners::{Announcement, Caller, EventSink, MasterFunction, RunnerError, announced};
use pool::Pool;
use reaction::{Kind, Reaction};
use rules::Rules;

/// The `user` of events the reactor causes; events carrying it are ignored by reactors.
pub const EVENT_USER: &str = "Reactor";

/// How much of a problem's message is logged and reported.
const MAX_REPORT_CHARS: usize = 2000;

/// Prefix of the reactor's problem reports; the kind follows (`render`, `missing`, `invalid`,
/// `failed`, `timeout`).
pub const ERROR_TAG: &str = "salt/reactor/error";

/// Fired when the queue was full and events were dropped: `{"dropped", "total", "hwm",
/// "last_tag"}`.
pub const DROPPED_TAG: &str = "salt/reactor/dropped";

/// How often drops are announced at most, so that a flood of drops is not a flood of events.
const DROP_REPORT_INTERVAL: Duration = Duration::from_secs(1);

/// The longest a stopping reactor works through what it accepted.
const MAX_DRAIN: Duration = Duration::from_secs(60);

/// What a reactor acts through: a master publishes `local.*` jobs and calls `runner.*` and
/// `wheel.*` functions, a minion runs `caller.*` functions itself; each refuses the others.
pub trait Backend: Send + Sync + 'static {
    /// Publishes a job; the reply is the master's `{"jid", "minions", …}`.
    fn local(&self, request: PublishRequest) -> impl Future<Output = Result<Value, String>> + Send;
    /// Runs an execution function here; the return, or the failure's message.
    fn caller(&self, call: Call) -> impl Future<Output = Result<Value, String>> + Send;
    /// Calls a runner, the events it fires going to `sink` (the reactor announces the call).
    fn runner(
        &self,
        call: &Call,
        sink: &mut EventSink,
    ) -> impl Future<Output = Result<Value, RunnerError>> + Send;
    /// Calls a wheel function, the events it fires going to `sink` (the reactor announces the
    /// call).
    fn wheel(
        &self,
        call: &Call,
        sink: &mut EventSink,
    ) -> impl Future<Output = Result<Value, RunnerError>> + Send;
}

/// The most reactor workers: each is a task, and more than cores do not react faster.
const MAX_WORKERS: u64 = 1024;

/// The reactor's limits, read once when the daemon starts: an invalid value is an error naming
/// the option, not a default taken without a word.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    workers: usize,
    hwm: usize,
    timeout: Duration,
    refresh: Duration,
}

impl Limits {
    /// `reactor_worker_threads` (10), `reactor_worker_hwm` (10000), `reactor_timeout` (60 s) and
    /// `reactor_refresh_interval` (60 s).
    pub fn from_config(config: &Config) -> Result<Self, crate::config::ConfigError> {
        Ok(Self {
            workers: match config.get_u64("reactor_worker_threads", 10)? {
                workers @ 1..=MAX_WORKERS => workers as usize,
                other => {
                    return Err(crate::config::ConfigError::BadValue {
                        key: "reactor_worker_threads".into(),
                        value: other.to_string(),
                        expected: "expected 1 to 1024 workers",
                    });
                }
            },
            hwm: config.get_u64("reactor_worker_hwm", 10_000)?.max(1) as usize,
            timeout: config.get_seconds("reactor_timeout", 60.0)?,
            refresh: config
                .get_seconds("reactor_refresh_interval", 60.0)?
                .max(Duration::from_millis(100)),
        })
    }
}

/// A problem met while working out an event's reactions.
#[derive(Debug, Clone)]
pub enum Problem {
    /// A configured path names no file.
    Missing {
        /// The path as configured.
        path: String,
    },
    /// A file did not render.
    Render(RenderError),
    /// A rendered declaration is not a reaction.
    Invalid {
        /// The file.
        sls: String,
        /// Why.
        message: String,
    },
}

impl Problem {
    fn kind(&self) -> &'static str {
        match self {
            Problem::Missing { .. } => "missing",
            Problem::Render(_) => "render",
            Problem::Invalid { .. } => "invalid",
        }
    }

    fn describe(&self, tag: &str) -> String {
        match self {
            Problem::Missing { path } if tag.is_empty() => format!(
                "reactor: SLS {path} is missing or not found; create it or fix the reactor option"
            ),
            Problem::Missing { path } => format!(
                "reactor: cannot render SLS {path} for tag {tag}: file missing or not found; create it or fix the reactor option"
            ),
            Problem::Render(err) => format!("reactor: failed to render {err} for tag {tag}"),
            Problem::Invalid { sls, message } => {
                format!("reactor: {sls}: {message} (tag {tag}); the reaction is skipped")
            }
        }
    }

    fn fields(&self) -> Vec<(&'static str, Value)> {
        match self {
            Problem::Missing { path } => vec![("sls", Value::from(path.as_str()))],
            Problem::Render(err) => vec![
                ("sls", Value::from(err.file.as_str())),
                ("line", Value::from(err.line)),
                ("column", Value::from(err.column)),
                ("expression", Value::from(err.expression.as_str())),
            ],
            Problem::Invalid { sls, .. } => vec![("sls", Value::from(sls.as_str()))],
        }
    }
}

/// Works out the reactions of an event: renders every file of `paths` (in order, files of a
/// glob sorted), merges their declarations by id (a later file's wins, in the earlier's
/// place, as Salt's `dict.update`), and compiles each one; problems go to `problem` and
/// the rest still run.
pub fn plan(
    rules: &Rules,
    renderer: &Renderer,
    paths: &[String],
    event: &Event,
    mut problem: impl FnMut(Problem),
) -> Vec<Reaction> {
    let mut high: Vec<(Value, (Value, String))> = Vec::new();
    for path in paths {
        let files = rules.resolve(path);
        if files.is_empty() {
            problem(Problem::Missing { path: path.clone() });
        }
        for file in files {
            match renderer.render(&file, &event.tag, &event.data) {
                Ok(Value::Map(entries)) => {
                    let sls = file.to_string_lossy().into_owned();
                    for (id, body) in entries {
                        let declared = (body, sls.clone());
                        match high.iter_mut().find(|(known, _)| *known == id) {
                            Some(slot) => slot.1 = declared,
                            None => high.push((id, declared)),
                        }
                    }
                }
                Ok(_) => {}
                Err(err) => problem(Problem::Render(err)),
            }
        }
    }
    let mut reactions: Vec<Reaction> = high
        .into_iter()
        .filter_map(|(id, (body, sls))| {
            Reaction::compile(&py_str(&id), &body, &sls)
                .map_err(|message| problem(Problem::Invalid { sls, message }))
                .ok()
        })
        .collect();
    reaction::order(&mut reactions);
    reactions
}

/// What `salt-run reactor.dry_run` shows for an event: the entries that match, the files
/// they name, the reactions rendered and the problems met, without running anything.
pub fn dry_run(config: &Config, event: &Event) -> Value {
    let rules = Rules::from_config(config);
    let matched: Vec<Value> = rules
        .rules
        .iter()
        .filter(|rule| rule.matches(&event.tag))
        .map(|rule| {
            Value::Map(vec![(
                Value::from(rule.glob.as_str()),
                Value::Array(rule.paths.iter().map(|p| Value::from(p.as_str())).collect()),
            )])
        })
        .collect();
    let paths = rules.paths_for(&event.tag);
    let files: Vec<Value> = paths
        .iter()
        .flat_map(|path| rules.resolve(path))
        .map(|file| Value::from(file.to_string_lossy().into_owned()))
        .collect();
    // The configuration's own problems first: a dry run is a check of the whole reactor.
    let mut problems: Vec<Value> = rules
        .problems
        .iter()
        .map(|problem| Value::from(problem.as_str()))
        .collect();
    let reactions = plan(&rules, &Renderer::new(config), &paths, event, |p| {
        problems.push(Value::from(p.describe(&event.tag)))
    });
    let ignored = is_own(&event.data);
    let mut report = vec![
        (Value::from("tag"), Value::from(event.tag.as_str())),
        (Value::from("matched"), Value::Array(matched)),
        (Value::from("files"), Value::Array(files)),
        (
            Value::from("reactions"),
            Value::Array(reactions.iter().map(Reaction::to_value).collect()),
        ),
        (Value::from("problems"), Value::Array(problems)),
    ];
    if ignored {
        report.push((
            Value::from("ignored"),
            Value::from("the data has user: Reactor, so a running reactor ignores this event"),
        ));
    }
    Value::Map(report)
}

/// Whether an event was caused by a reactor (the loop guard).
fn is_own(data: &Value) -> bool {
    map_get(data, "user").and_then(Value::as_str) == Some(EVENT_USER)
}

/// One event waiting for its reactions.
#[derive(Debug)]
struct Work {
    event: Event,
    paths: Vec<String>,
}

struct Shared<B> {
    config: Config,
    rules: Arc<RwLock<Arc<Rules>>>,
    renderer: Renderer,
    bus: BusHandle,
    backend: B,
    limits: Limits,
    /// Paths reported missing and not found since, so each is reported once.
    missing: Mutex<HashSet<String>>,
}

/// A reactor's configuration, read at the moment it is asked for (`salt-run reactor.list`).
#[derive(Debug, Clone)]
pub struct Listing(Arc<RwLock<Arc<Rules>>>);

impl Listing {
    /// `[{glob: [paths]}]`, as Salt lists its reactor.
    pub fn to_value(&self) -> Value {
        self.0.read().expect("rules lock").to_value()
    }
}

/// A reactor, ready to run against its daemon's bus.
pub struct Reactor<B> {
    shared: Arc<Shared<B>>,
    subscription: crate::bus::BusSubscription,
}

impl<B: Backend> Reactor<B> {
    /// A reactor for the daemon configured by `config`, whose bus is `bus`.
    pub fn new(config: &Config, limits: Limits, bus: BusHandle, backend: B) -> Self {
        let shared = Arc::new(Shared {
            config: config.clone(),
            rules: Arc::new(RwLock::new(Arc::new(Rules::empty()))),
            renderer: Renderer::new(config),
            bus,
            backend,
            limits,
            missing: Mutex::new(HashSet::new()),
        });
        let rules = Arc::new(Rules::from_config(config));
        shared.install(rules.clone());
        // Subscribed now, not when the task first runs, so no event after start is missed.
        let subscription = shared.bus.subscribe_filtered(filter(&rules));
        Self {
            shared,
            subscription,
        }
    }

    /// The configuration as it stands, for `reactor.list`; it follows reloads.
    pub fn listing(&self) -> Listing {
        Listing(self.shared.rules.clone())
    }

    /// Reacts to events until `stop`, then works through what was queued (for `reactor_timeout`
    /// at most); the daemon keeps its bus up until this returns.
    pub async fn run(self, stop: CancellationToken) {
        let Reactor {
            shared,
            mut subscription,
        } = self;
        let pool = Arc::new(Pool::new(shared.limits.hwm));
        let mut workers = tokio::task::JoinSet::new();
        for _ in 0..shared.limits.workers {
            let (shared, pool) = (shared.clone(), pool.clone());
            workers.spawn(async move {
                while let Some(taken) = pool.take().await {
                    // Its own task, aborted with the worker: a panic in one event's reactions
                    // must not take the worker, or leave the tag marked running, with it.
                    let reacting = tokio_util::task::AbortOnDropHandle::new(tokio::spawn({
                        let shared = shared.clone();
                        async move { shared.react(taken.item).await }
                    }));
                    if let Err(err) = reacting.await
                        && err.is_panic()
                    {
                        shared.report(
                            "failed",
                            &taken.tag,
                            Vec::new(),
                            format!(
                                "reactor: the reactions for tag {} panicked; please report this as a bug",
                                taken.tag
                            ),
                        );
                    }
                    pool.done(&taken.tag);
                }
            });
        }
        let mut hangup =
            tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()).ok();
        let mut refresh = tokio::time::interval(shared.limits.refresh);
        refresh.tick().await;
        let mut drop_report = tokio::time::interval(DROP_REPORT_INTERVAL);
        let mut drops = Drops::default();
        loop {
            tokio::select! {
                () = stop.cancelled() => break,
                body = subscription.next_body() => match body {
                    Some(body) => shared.dispatch(&body, &pool, &mut drops),
                    None => break,
                },
                Some(()) = async {
                    match hangup.as_mut() {
                        Some(signal) => signal.recv().await,
                        None => std::future::pending().await,
                    }
                } => shared.reload("SIGHUP", &subscription),
                _ = refresh.tick() => shared.reload("reactor_refresh_interval", &subscription),
                _ = drop_report.tick() => drops.announce(&shared),
            }
        }
        // What the bus already handed over is accepted work too.
        while let Some(body) = subscription.try_next_body() {
            shared.dispatch(&body, &pool, &mut drops);
        }
        drops.announce(&shared);
        let drain = shared
            .limits
            .timeout
            .clamp(Duration::from_secs(1), MAX_DRAIN);
        let (waiting, running) = pool.load();
        if waiting + running > 0 {
            tracing::info!(
                "reactor: finishing {waiting} waiting events and {running} running before stopping (up to {drain:?}; signal again to stop at once)"
            );
        }
        let deadline = Instant::now() + drain;
        while pool.load() != (0, 0) && Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let (waiting, running) = pool.load();
        if waiting + running > 0 {
            tracing::warn!(
                "reactor: stopping with {waiting} events waiting and {running} reactions running"
            );
        }
        pool.close();
        workers.abort_all();
        while workers.join_next().await.is_some() {}
    }
}

/// Events dropped since the last announcement.
#[derive(Debug, Default)]
struct Drops {
    pending: u64,
    total: u64,
    last_tag: String,
    last_report: Option<Instant>,
}

impl Drops {
    fn count<B: Backend>(&mut self, tag: &str, shared: &Shared<B>) {
        self.pending += 1;
        self.total += 1;
        self.last_tag = tag.to_owned();
        if self
            .last_report
            .is_none_or(|last| last.elapsed() >= DROP_REPORT_INTERVAL)
        {
            self.announce(shared);
        }
    }

    fn announce<B: Backend>(&mut self, shared: &Shared<B>) {
        if self.pending == 0 {
            return;
        }
        let hwm = shared.limits.hwm;
        tracing::error!(
            "reactor: queue full (reactor_worker_hwm={hwm}): dropped {} events ({} in all), the last tagged {}; raise reactor_worker_hwm or reactor_worker_threads, or make reactions faster",
            self.pending,
            self.total,
            self.last_tag
        );
        shared.fire(
            DROPPED_TAG,
            vec![
                ("dropped", Value::from(self.pending)),
                ("total", Value::from(self.total)),
                ("hwm", Value::from(hwm)),
                ("last_tag", Value::from(self.last_tag.as_str())),
            ],
        );
        self.pending = 0;
        self.last_report = Some(Instant::now());
    }
}

impl<B: Backend> Shared<B> {
    fn rules(&self) -> Arc<Rules> {
        self.rules.read().expect("rules lock").clone()
    }

    /// Takes `rules` as the configuration, reporting its problems once.
    fn install(&self, rules: Arc<Rules>) {
        for problem in &rules.problems {
            tracing::error!("{problem}");
            self.fire(
                &format!("{ERROR_TAG}/invalid"),
                vec![("message", Value::from(problem.as_str()))],
            );
        }
        for path in rules.rules.iter().flat_map(|rule| &rule.paths) {
            if rules.resolve(path).is_empty() {
                self.report_missing(path, None);
            }
        }
        *self.rules.write().expect("rules lock") = rules;
    }

    /// Reads the configuration files again; an unchanged `reactor` option changes nothing.
    fn reload(&self, why: &str, subscription: &BusSubscription) {
        let config = match Config::load(self.config.role(), Some(self.config.config_dir())) {
            Ok(config) => config,
            Err(err) => {
                tracing::error!(
                    "reactor: cannot reload the configuration ({why}): {err}; keeping the current one"
                );
                return;
            }
        };
        let rules = Arc::new(Rules::from_config(&config));
        if rules.same_as(&self.rules()) {
            return;
        }
        // The bus passes on what the new rules match before they are in force: events queued
        // by then are dispatched against them, so none published from now on is missed.
        subscription.set_filter(filter(&rules));
        self.install(rules.clone());
        tracing::info!(
            "reactor: configuration reloaded ({why}): {} entries",
            rules.rules.len()
        );
    }

    fn dispatch(&self, body: &[u8], pool: &Pool<Work>, drops: &mut Drops) {
        let Ok(tag) = crate::wire::body_tag(body) else {
            return;
        };
        let rules = self.rules();
        let paths = rules.paths_for(tag);
        if paths.is_empty() {
            return;
        }
        let Ok(event) = crate::wire::decode_body(body) else {
            return;
        };
        if is_own(&event.data) {
            return;
        }
        let tag = event.tag.clone();
        if pool.submit(&tag, Work { event, paths }).is_err() {
            drops.count(&tag, self);
        }
    }

    async fn react(self: Arc<Self>, work: Work) {
        let rules = self.rules();
        let Work { event, paths } = work;
        let tag = event.tag.clone();
        let limit = self.limits.timeout;
        // Templates run on a blocking thread, with fuel and within the reaction time limit, so
        // a runaway template stalls neither the bus nor the other workers.
        let planning = tokio::task::spawn_blocking({
            let (shared, rules) = (self.clone(), rules.clone());
            move || {
                let mut problems = Vec::new();
                let reactions = plan(&rules, &shared.renderer, &paths, &event, |p| {
                    problems.push(p)
                });
                (reactions, problems, paths)
            }
        });
        let (reactions, problems, paths) = match tokio::time::timeout(limit, planning).await {
            Ok(Ok(planned)) => planned,
            Ok(Err(_)) => {
                self.report(
                    "failed",
                    &tag,
                    Vec::new(),
                    format!("reactor: rendering the reactions for tag {tag} panicked; please report this as a bug"),
                );
                return;
            }
            Err(_) => {
                self.report(
                    "timeout",
                    &tag,
                    Vec::new(),
                    format!(
                        "reactor: rendering the reactions for tag {tag} took over {limit:?}; simplify the SLS or raise reactor_timeout"
                    ),
                );
                return;
            }
        };
        let mut missing = Vec::new();
        for problem in problems {
            if let Problem::Missing { path } = &problem {
                self.report_missing(path, Some(&tag));
                missing.push(path.clone());
            } else {
                self.report(
                    problem.kind(),
                    &tag,
                    problem.fields(),
                    problem.describe(&tag),
                );
            }
        }
        // A path found again may be reported again should it go missing later.
        {
            let mut reported = self.missing.lock().expect("missing lock");
            for path in paths.iter().filter(|path| !missing.contains(path)) {
                reported.remove(path);
            }
        }
        for reaction in reactions {
            self.run_reaction(&reaction, &tag).await;
        }
    }

    fn report_missing(&self, path: &str, tag: Option<&str>) {
        if !self
            .missing
            .lock()
            .expect("missing lock")
            .insert(path.to_owned())
        {
            return;
        }
        let problem = Problem::Missing {
            path: path.to_owned(),
        };
        let tag = tag.unwrap_or_default();
        self.report("missing", tag, problem.fields(), problem.describe(tag));
    }

    /// Logs a problem and fires it as `salt/reactor/error/<kind>`.
    fn report(
        &self,
        kind: &str,
        tag: &str,
        mut fields: Vec<(&'static str, Value)>,
        message: String,
    ) {
        // Messages quote tags and rendered values, which event data can make megabytes long
        // or fill with line breaks and terminal escapes.
        let message =
            crate::event::tag::printable(&crate::output::clip(&message, MAX_REPORT_CHARS))
                .into_owned();
        tracing::error!("{message}");
        fields.insert(0, ("tag", Value::from(tag)));
        fields.push(("message", Value::from(message)));
        self.fire(&format!("{ERROR_TAG}/{kind}"), fields);
    }

    /// Fires one of the reactor's own events, marked as the reactor's.
    fn fire(&self, tag: &str, mut fields: Vec<(&'static str, Value)>) {
        fields.push(("user", Value::from(EVENT_USER)));
        self.bus.fire_fields(tag, fields);
    }

    async fn run_reaction(&self, reaction: &Reaction, tag: &str) {
        let outcome = self.execute(reaction).await;
        let fields = |reaction: &Reaction| {
            vec![
                ("sls", Value::from(reaction.sls.as_str())),
                ("id", Value::from(reaction.id.as_str())),
                ("fun", Value::from(reaction.action())),
            ]
        };
        match outcome {
            Ok(()) => {}
            Err(Failure::TimedOut(limit)) => self.report(
                "timeout",
                tag,
                fields(reaction),
                format!(
                    "reactor: reaction '{}' ({}) for tag {tag} did not finish within {:?} and was cancelled; raise reactor_timeout if it needs longer",
                    reaction.id,
                    reaction.action(),
                    limit
                ),
            ),
            Err(Failure::Failed(why)) => self.report(
                "failed",
                tag,
                fields(reaction),
                format!(
                    "reactor: reaction '{}' ({}) for tag {tag} failed: {why}",
                    reaction.id,
                    reaction.action()
                ),
            ),
        }
    }

    async fn execute(&self, reaction: &Reaction) -> Result<(), Failure> {
        let on_master = self.config.role() == Role::Master;
        match reaction.kind {
            Kind::Caller if on_master => Err(Failure::Failed(
                "caller reactions run in a minion's reactor (reactor in the minion config); on a master use local with a tgt".to_owned(),
            )),
            Kind::Local | Kind::Runner | Kind::Wheel if !on_master => Err(Failure::Failed(format!(
                "{} reactions run on a master; a minion's reactor runs caller.<function>",
                reaction.kind.name()
            ))),
            Kind::Caller => {
                let (args, warning) = reaction.arguments(&[]);
                warn(warning);
                let call = Call {
                    fun: reaction.fun.clone(),
                    args,
                };
                self.bounded(async {
                    self.backend.caller(call).await.map(drop).map_err(Failure::Failed)
                })
                .await
            }
            Kind::Local => {
                let (tgt, tgt_type) = reaction.target().map_err(Failure::Failed)?;
                let (args, warning) = reaction.arguments(&[]);
                warn(warning);
                let call = Call {
                    fun: reaction.fun.clone(),
                    args,
                };
                let request = PublishRequest {
                    tgt: tgt.clone(),
                    tgt_type,
                    fun: call.fun.clone(),
                    arg: call.load_arg(),
                    ret: reaction.param("ret").map(|r| py_str(r).into_owned()).unwrap_or_default(),
                    user: crate::runners::salt_user(),
                    jid: None,
                    ret_config: None,
                    ret_kwargs: None,
                };
                let reply = self
                    .bounded(async { self.backend.local(request).await.map_err(Failure::Failed) })
                    .await?;
                let matched = map_get(&reply, "minions")
                    .and_then(Value::as_array)
                    .is_some_and(|minions| !minions.is_empty());
                if matched {
                    Ok(())
                } else {
                    Err(Failure::Failed(format!("no minion matched the target {tgt}")))
                }
            }
            Kind::Runner | Kind::Wheel => self.call_master_function(reaction).await,
        }
    }

    /// `work`, cancelled after `reactor_timeout`.
    async fn bounded<T>(
        &self,
        work: impl Future<Output = Result<T, Failure>>,
    ) -> Result<T, Failure> {
        let limit = self.limits.timeout;
        tokio::time::timeout(limit, work)
            .await
            .unwrap_or(Err(Failure::TimedOut(limit)))
    }

    /// A runner or wheel reaction, announced by `salt/run/…` or `salt/wheel/…` events with
    /// `user: Reactor`, as Salt's are.
    async fn call_master_function(&self, reaction: &Reaction) -> Result<(), Failure> {
        let fun = reaction.fun.as_str();
        let client = MasterClient::of(reaction.kind);
        let Some(function) = crate::runners::find(client.registry(), fun) else {
            let names: Vec<&str> = client.registry().iter().map(MasterFunction::name).collect();
            return Err(Failure::Failed(format!(
                "{} is not available; there are {}",
                reaction.action(),
                names.join(", ")
            )));
        };
        let (args, warning) = reaction.arguments(function.positional());
        warn(warning);
        let call = Call {
            fun: reaction.fun.clone(),
            args,
        };
        let announcement = match client {
            MasterClient::Runner => Announcement::runner(fun, &call.args, EVENT_USER),
            MasterClient::Wheel => Announcement::wheel(fun, &call.args, EVENT_USER),
        };
        let limit = self.config.max_event_size().unwrap_or(u64::MAX);
        let mut sink = EventSink::Bus(self.bus.clone(), limit);
        let caller = Caller::Reaction {
            limit: self.limits.timeout,
        };
        announced(
            &mut sink,
            &announcement,
            caller,
            async |sink| match client {
                MasterClient::Runner => self.backend.runner(&call, sink).await,
                MasterClient::Wheel => self.backend.wheel(&call, sink).await,
            },
        )
        .await
        .map(drop)
        .map_err(|err| match err {
            RunnerError::TimedOut(limit) => Failure::TimedOut(limit),
            other => Failure::Failed(other.to_string()),
        })
    }
}

/// The master's own clients a reaction can call.
#[derive(Debug, Clone, Copy)]
enum MasterClient {
    Runner,
    Wheel,
}

impl MasterClient {
    fn of(kind: Kind) -> Self {
        match kind {
            Kind::Wheel => MasterClient::Wheel,
            _ => MasterClient::Runner,
        }
    }

    /// The functions it has.
    fn registry(self) -> &'static [MasterFunction] {
        match self {
            MasterClient::Runner => crate::runners::RUNNERS,
            MasterClient::Wheel => crate::wheel::WHEELS,
        }
    }
}

fn warn(warning: Option<String>) {
    if let Some(warning) = warning {
        tracing::warn!("reactor: {warning}");
    }
}

/// Why a reaction did not succeed.
#[derive(Debug, thiserror::Error)]
enum Failure {
    #[error("timed out after {0:?} (reactor_timeout)")]
    TimedOut(Duration),
    #[error("{0}")]
    Failed(String),
}

/// The events `rules` react to, for the bus to pass on: no others are queued for the reactor.
fn filter(rules: &Arc<Rules>) -> TagFilter {
    if rules.rules.is_empty() {
        return TagFilter::Nothing;
    }
    let rules = rules.clone();
    TagFilter::Matching(Arc::new(move |tag| {
        rules.rules.iter().any(|rule| rule.matches(tag))
    }))
}
