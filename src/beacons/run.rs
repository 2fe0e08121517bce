//! The beacons service of a minion: one task per beacon, their results fired in batches, and
//! Salt's `manage_beacons` requests (what `beacons.*` functions send over the minion bus)
//! answered with Salt's completion events.

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::task::{AbortHandle, JoinSet};
use tokio::time::{Instant, MissedTickBehavior};
use tokio_util::sync::CancellationToken;

use super::config::{self, Entry, Problem};
use super::{Beacon, Host, Invalid, Options, error_tag, tag};
use crate::bus::BusHandle;
use crate::event::{Event, Value, map_get, map_set};
use crate::proto::events::PILLAR_REFRESH;
use crate::proto::manage::BEACONS;
use crate::proto::minion_event::{Fired, MinionEventLoad};
use crate::proto::tags::{MASTER_CONNECTED, MASTER_DISCONNECTED};
use crate::py::value::py_str;
use crate::services::Refetch;

/// Reports waiting for the batcher; a beacon whose reports are not taken waits to check again.
const REPORTS: usize = 256;
/// Events in one `__beacons_return` batch and one load to the master.
const BATCH: usize = 100;
/// Events one check may fire; a check that finds more fires these and says how many it left.
const EVENTS_PER_CHECK: usize = 10_000;
/// Bytes of events kept for the master while it is away (the oldest go first beyond it).
const UNSENT_BYTES: usize = 8 << 20;
/// Events the batcher fires before it looks at its other work again.
const EVENTS_PER_TURN: usize = 1_000;
/// How long a check may take before it is said to hang (a hung mount, a stuck command); it is
/// waited for still, and the beacon is not checked again meanwhile, so that a hung check holds
/// one thread, not one per second or per refresh.
const CHECK_PATIENCE: Duration = Duration::from_secs(30);
/// The tag that restarts every beacon from the configuration (Salt's `beacons_refresh`).
pub const REFRESH_TAG: &str = "beacons_refresh";
/// The minion-bus tag of a batch of beacon events (Salt's).
pub const RETURN_TAG: &str = "__beacons_return";

/// Whether a `state.*` job is running on the minion.
pub type StateRunning = Arc<dyn Fn() -> bool + Send + Sync>;

/// The `beacons` key of the minion's pillar, fetched afresh.
pub type PillarBeacons = crate::services::Fetch<Value>;

/// How long to wait before asking for the pillar again when the master did not answer.
const PILLAR_RETRY: Duration = Duration::from_secs(10);

/// What the beacons service needs from its minion.
pub struct Beacons {
    /// The minion id, in every tag.
    pub id: String,
    /// The `beacons` option as configured.
    pub configured: Option<Value>,
    /// Where the system is read.
    pub host: Host,
    /// The minion's bus: batches and completion events go on it, manage requests come from it.
    pub bus: BusHandle,
    /// A subscription to that bus, taken before the minion connects to its master so that its
    /// `__master_connected` is not missed.
    pub requests: crate::bus::BusSubscription,
    /// The minion's queue of loads for its master.
    pub to_master: mpsc::Sender<Value>,
    /// For `disable_during_state_run`.
    pub state_running: StateRunning,
    /// Beacons configured in pillar, merged under those of the configuration as Salt merges
    /// them; `None` where there is no pillar.
    pub pillar: Option<PillarBeacons>,
}

/// One check's outcome, for the batcher.
struct Report {
    name: String,
    module: &'static str,
    result: Result<Vec<Value>, String>,
    /// The beacon ran once (`run_once`) and is to be turned off.
    ran_once: bool,
}

/// A beacon task running.
struct Watching {
    given: Value,
    module: &'static str,
    abort: AbortHandle,
}

impl Beacons {
    /// Runs the beacons until `stop`, then fires what they already reported.
    pub async fn run(self, stop: CancellationToken) {
        let (mut service, mut requests) = Service::new(self);
        if let Some(problem) = service.refused.take() {
            service.refuse(&problem);
        }
        service.apply();
        service.pillar.start();
        loop {
            tokio::select! {
                biased;
                () = stop.cancelled() => break,
                Some(report) = service.reports_rx.recv() => service.batch(report),
                body = requests.next_body() => {
                    let Some(body) = body else { break };
                    if body.starts_with(MASTER_CONNECTED.as_bytes()) {
                        service.connected = true;
                        service.send_unsent();
                        service.pillar.start();
                    } else if body.starts_with(MASTER_DISCONNECTED.as_bytes()) {
                        service.connected = false;
                    } else if body.starts_with(PILLAR_REFRESH.as_bytes()) {
                        service.pillar.start();
                    } else if body.starts_with(BEACONS.tag.as_bytes()) || body.starts_with(REFRESH_TAG.as_bytes()) {
                        match crate::wire::decode_body(&body) {
                            Ok(event) => service.request(&event),
                            Err(err) => tracing::warn!("ignored a beacons request: {err}"),
                        }
                    }
                }
                beacons = service.pillar.next() => service.pillar_fetched(beacons),
                Some(ended) = service.tasks.join_next_with_id(), if !service.tasks.is_empty() => {
                    service.ended(ended);
                }
            }
        }
        service.tasks.abort_all();
        while let Ok(report) = service.reports_rx.try_recv() {
            service.batch(report);
        }
    }
}

struct Service {
    id: String,
    /// The `beacons` option as it stands, changed by manage requests.
    config: Vec<(Value, Value)>,
    host: Host,
    bus: BusHandle,
    to_master: mpsc::Sender<Value>,
    state_running: StateRunning,
    reports: mpsc::Sender<Report>,
    reports_rx: mpsc::Receiver<Report>,
    tasks: JoinSet<()>,
    watching: HashMap<String, Watching>,
    /// The last problem said of each beacon, so that a failing beacon is not reported every
    /// second.
    said: HashMap<String, String>,
    /// A `beacons` option that is not a map, refused when the service starts.
    refused: Option<Problem>,
    /// The pillar's `beacons`, fetched when they may have changed.
    pillar: Refetch<Value>,
    /// The beacons of the pillar, once fetched.
    pillar_beacons: Vec<(Value, Value)>,
    /// Whether the minion is connected to its master: while it is not, events wait for it in
    /// `unsent`, bounded, so that a master away for long cannot fill the minion's memory.
    connected: bool,
    /// Events fired while the master was away (at most [`UNSENT_BYTES`] of them, packed),
    /// sent when it connects.
    unsent: std::collections::VecDeque<(Value, usize)>,
    unsent_bytes: usize,
    /// Events dropped from `unsent` since the master went away.
    unsent_dropped: u64,
    /// Which beacon each task runs, to say which one ended unexpectedly.
    task_names: HashMap<tokio::task::Id, String>,
    /// Per beacon name, whether a check is still running (across restarts of its task).
    checking: HashMap<String, Arc<AtomicBool>>,
}

impl Service {
    fn new(beacons: Beacons) -> (Self, crate::bus::BusSubscription) {
        let (reports, reports_rx) = mpsc::channel(REPORTS);
        let (config, refused) = match beacons.configured {
            Some(Value::Map(entries)) => (entries, None),
            Some(Value::Nil) | None => (Vec::new(), None),
            // Refused loudly, then managed as an empty map.
            Some(other) => (Vec::new(), config::read(Some(&other)).entries.pop()),
        };
        let service = Self {
            id: beacons.id,
            config,
            host: beacons.host,
            bus: beacons.bus,
            to_master: beacons.to_master,
            state_running: beacons.state_running,
            reports,
            reports_rx,
            tasks: JoinSet::new(),
            watching: HashMap::new(),
            said: HashMap::new(),
            refused: refused.and_then(Result::err),
            pillar: Refetch::new("the beacons", PILLAR_RETRY, beacons.pillar),
            pillar_beacons: Vec::new(),
            connected: false,
            unsent: std::collections::VecDeque::new(),
            unsent_bytes: 0,
            unsent_dropped: 0,
            task_names: HashMap::new(),
            checking: HashMap::new(),
        };
        (service, beacons.requests)
    }

    fn pillar_fetched(&mut self, beacons: Value) {
        self.pillar_beacons = match beacons {
            Value::Map(entries) => entries,
            Value::Nil => Vec::new(),
            other => {
                if let Some(Err(problem)) = config::read(Some(&other)).entries.pop() {
                    self.refuse(&Problem {
                        invalid: Invalid::new(
                            "beacons",
                            format!("{} (in the pillar)", problem.invalid.expected),
                        ),
                        ..problem
                    });
                }
                Vec::new()
            }
        };
        self.apply();
    }

    /// The beacons in effect: the pillar's, then the configuration's over them (Salt's order).
    fn effective(&self) -> Vec<(Value, Value)> {
        let mut merged = self.pillar_beacons.clone();
        for (key, value) in &self.config {
            map_set(&mut merged, key.clone(), value.clone());
        }
        merged
    }

    fn in_pillar(&self, name: &str) -> bool {
        self.pillar_beacons
            .iter()
            .any(|(key, _)| py_str(key) == name)
    }

    /// Starts, restarts and stops beacon tasks to match the configuration; refuses loudly each
    /// beacon whose configuration is wrong.
    fn apply(&mut self) {
        let configured = config::read(Some(&Value::Map(self.effective())));
        let mut wanted = HashMap::new();
        if configured.enabled {
            for entry in configured.entries {
                match entry {
                    Ok(entry) if entry.enabled => {
                        wanted.insert(entry.name.clone(), entry);
                    }
                    Ok(_) => {}
                    Err(problem) => self.refuse(&problem),
                }
            }
        }
        // Flags of beacons gone whose last check has returned.
        self.checking
            .retain(|name, checking| wanted.contains_key(name) || checking.load(Ordering::Acquire));
        self.watching.retain(|name, watching| {
            let keep = wanted
                .get(name)
                .is_some_and(|entry| entry.given == watching.given);
            if !keep {
                // Dropping the task drops its beacon: watches and files are released.
                watching.abort.abort();
            }
            keep
        });
        for (name, entry) in wanted {
            if self.watching.contains_key(&name) {
                continue;
            }
            let (given, module) = (entry.given.clone(), entry.module.name);
            let checking = self.checking.entry(name.clone()).or_default().clone();
            let abort = self.tasks.spawn(watch(
                entry,
                self.host.clone(),
                self.reports.clone(),
                checking,
                self.state_running.clone(),
            ));
            self.task_names.insert(abort.id(), name.clone());
            self.watching.insert(
                name,
                Watching {
                    given,
                    module,
                    abort,
                },
            );
        }
    }

    /// A beacon task ended: by itself (refused, ran once) or aborted, which is expected; a
    /// panic is said, and the beacon does not run until it is configured again.
    fn ended(&mut self, ended: Result<(tokio::task::Id, ()), tokio::task::JoinError>) {
        let (id, panic) = match ended {
            Ok((id, ())) => (id, None),
            Err(err) => (err.id(), err.is_panic().then(|| err.to_string())),
        };
        let Some(name) = self.task_names.remove(&id) else {
            return;
        };
        if let Some(panic) = panic {
            let module = self
                .watching
                .get(&name)
                .map(|w| w.module)
                .unwrap_or_default();
            let message = format!("beacon {name} ({module}): it stopped: {panic}");
            tracing::error!("{message}");
            let item = self.error_item(&name, module, &message);
            self.send(vec![item]);
        }
    }

    /// Says once, in the log and on the buses, why a beacon does not run.
    fn refuse(&mut self, problem: &Problem) {
        let message = problem.to_string();
        if self.said.get(&problem.name) == Some(&message) {
            return;
        }
        tracing::error!("{message}; the beacon does not run, the others do");
        self.said.insert(problem.name.clone(), message.clone());
        let item = self.error_item(
            &problem.name,
            problem.module.as_deref().unwrap_or_default(),
            &message,
        );
        self.send(vec![item]);
    }

    fn error_item(&self, name: &str, module: &str, message: &str) -> Value {
        item(
            error_tag(&self.id, name),
            Value::Map(vec![
                ("error".into(), message.into()),
                ("beacon_module".into(), module.into()),
                ("id".into(), self.id.as_str().into()),
            ]),
            module,
        )
    }

    /// What was fired while the master was away, to the master.
    fn send_unsent(&mut self) {
        if self.unsent_dropped > 0 {
            tracing::warn!(
                "{} beacon events fired while the master was away were not kept for it (over {UNSENT_BYTES} bytes)",
                self.unsent_dropped
            );
        }
        self.unsent_dropped = 0;
        self.unsent_bytes = 0;
        let unsent: Vec<Value> = self.unsent.drain(..).map(|(item, _)| item).collect();
        for chunk in unsent.chunks(BATCH) {
            self.to_master_load(chunk.to_vec());
        }
    }

    /// One load of events for the master.
    fn to_master_load(&self, events: Vec<Value>) {
        let load = MinionEventLoad {
            id: self.id.clone(),
            pretag: None,
            fired: Fired::Events(events),
            preload: Vec::new(),
        };
        if self.to_master.try_send(load.to_value()).is_err() {
            tracing::warn!(
                "dropped beacon events for the master: the link is not taking them as fast"
            );
        }
    }

    /// Turns the reports waiting into events, fired in batches.
    /// (What waits beyond [`EVENTS_PER_TURN`] is left for the next turn, so that stopping and
    /// manage requests are not held up by a flood.)
    fn batch(&mut self, first: Report) {
        let mut items = Vec::new();
        let mut fired = 0;
        let mut next = Some(first);
        while let Some(report) = next.take() {
            self.items_of(report, &mut items);
            if items.len() >= BATCH {
                fired += items.len();
                self.send(std::mem::take(&mut items));
            }
            if fired < EVENTS_PER_TURN {
                next = self.reports_rx.try_recv().ok();
            }
        }
        if !items.is_empty() {
            self.send(items);
        }
    }

    fn items_of(&mut self, report: Report, items: &mut Vec<Value>) {
        let Report {
            name,
            module,
            result,
            ran_once,
        } = report;
        match result {
            Ok(found) => {
                self.said.remove(&name);
                for data in found {
                    let Value::Map(mut data) = data else { continue };
                    let mut suffix = String::new();
                    if let Some(index) = data.iter().position(|(k, _)| k.as_str() == Some("tag")) {
                        suffix = py_str(&data.remove(index).1).into_owned();
                    }
                    if !data.iter().any(|(k, _)| k.as_str() == Some("id")) {
                        data.push(("id".into(), self.id.as_str().into()));
                    }
                    items.push(item(
                        tag(&self.id, &name, &suffix),
                        Value::Map(data),
                        module,
                    ));
                }
                if ran_once {
                    self.set_enabled(&name, false);
                    self.apply();
                }
            }
            Err(message) => {
                let message = format!("beacon {name} ({module}): {message}");
                if self.said.get(&name) != Some(&message) {
                    tracing::error!("{message}");
                    items.push(self.error_item(&name, module, &message));
                    self.said.insert(name, message);
                }
            }
        }
    }

    /// Fires a batch as Salt's `__beacons_return` on the minion bus and sends it to the master,
    /// or keeps it for the master while it is away.
    fn send(&mut self, items: Vec<Value>) {
        for chunk in items.chunks(BATCH) {
            self.bus
                .fire_fields(RETURN_TAG, vec![("beacons", Value::Array(chunk.to_vec()))]);
            if self.connected {
                self.to_master_load(chunk.to_vec());
                continue;
            }
            for item in chunk {
                let size = crate::link::packed_size(item);
                self.unsent.push_back((item.clone(), size));
                self.unsent_bytes += size;
                while self.unsent_bytes > UNSENT_BYTES
                    && let Some((_, size)) = self.unsent.pop_front()
                {
                    self.unsent_bytes -= size;
                    self.unsent_dropped += 1;
                }
            }
        }
    }

    /// Answers one `manage_beacons` request, or restarts every beacon on `beacons_refresh`.
    fn request(&mut self, event: &Event) {
        if event.tag.starts_with(REFRESH_TAG) {
            for watching in self.watching.values() {
                watching.abort.abort();
            }
            self.watching.clear();
            self.said.clear();
            self.apply();
            return;
        }
        let data = &event.data;
        let func = map_get(data, "func").map(py_str).unwrap_or_default();
        let name = map_get(data, "name").map(|n| py_str(n).into_owned());
        let Some(tag) = BEACONS.complete_tag(&func) else {
            tracing::warn!("ignored manage_beacons request with unknown func {func:?}");
            return;
        };
        let fields = manage(self, &func, name.as_deref(), data);
        self.bus.fire_fields(tag, BEACONS.answer(data, fields));
        self.apply();
    }

    fn beacons(&self) -> Value {
        Value::Map(self.config.clone())
    }

    fn position(&self, name: &str) -> Option<usize> {
        self.config.iter().position(|(key, _)| py_str(key) == name)
    }

    /// Sets a beacon's `enabled` key where Salt sets it: in the map, or in the list's item that
    /// has it (one appended when none does).
    fn set_enabled(&mut self, name: &str, enabled: bool) {
        let Some(index) = self.position(name) else {
            return;
        };
        match &mut self.config[index].1 {
            Value::Map(entries) => map_set(entries, "enabled".into(), enabled.into()),
            Value::Array(items) => {
                let found = items
                    .iter_mut()
                    .filter_map(|item| match item {
                        Value::Map(entries) => Some(entries),
                        _ => None,
                    })
                    .find(|entries| entries.iter().any(|(k, _)| k.as_str() == Some("enabled")));
                match found {
                    Some(entries) => map_set(entries, "enabled".into(), enabled.into()),
                    None => items.push(Value::Map(vec![("enabled".into(), enabled.into())])),
                }
            }
            other => {
                *other = Value::Array(vec![Value::Map(vec![("enabled".into(), enabled.into())])])
            }
        }
    }
}

/// What one manage request does: the fields of the completion event Salt fires for it (its
/// tag is in [`BEACONS`]).
fn manage(
    service: &mut Service,
    func: &str,
    name: Option<&str>,
    data: &Value,
) -> Vec<(&'static str, Value)> {
    let named = name.unwrap_or_default();
    let beacon_data = map_get(data, "beacon_data").cloned().unwrap_or(Value::Nil);
    let include = |key| map_get(data, key).is_none_or(crate::py::value::truthy);
    let complete = |complete: bool, comment: String, beacons: Value| {
        vec![
            ("complete", Value::Boolean(complete)),
            ("comment", comment.into()),
            ("beacons", beacons),
        ]
    };
    let changes = matches!(
        func,
        "add" | "modify" | "delete" | "enable_beacon" | "disable_beacon"
    );
    if changes && service.in_pillar(named) {
        // Salt's refusal for a beacon that pillar configures: the configuration cannot change
        // it.
        let comment = match func {
            "add" => {
                format!("Cannot update beacon item {named}, because it is configured in pillar.")
            }
            _ => {
                let verb = func.trim_end_matches("_beacon");
                format!("Cannot {verb} beacon item {named}, it is configured in pillar.")
            }
        };
        return complete(false, comment, service.beacons());
    }
    match func {
        "list" => {
            let mut listed = Vec::new();
            if include("include_pillar") {
                listed.clone_from(&service.pillar_beacons);
            }
            if include("include_opts") {
                for (key, value) in &service.config {
                    map_set(&mut listed, key.clone(), value.clone());
                }
            }
            vec![("complete", true.into()), ("beacons", Value::Map(listed))]
        }
        "list_available" => vec![
            ("complete", true.into()),
            (
                "beacons",
                Value::Array(super::MODULES.iter().map(|m| m.name.into()).collect()),
            ),
        ],
        "validate_beacon" => {
            let (valid, comment) = match validate(named, &beacon_data, &service.host) {
                Ok(()) => (true, "Valid beacon configuration".to_owned()),
                Err(problem) => (false, problem.to_string()),
            };
            vec![
                ("complete", true.into()),
                ("vcomment", comment.into()),
                ("valid", valid.into()),
            ]
        }
        "add" | "modify" => {
            if let Some(expected) = config::name_problem(named) {
                let comment = format!("Cannot {func} beacon item {named:?}: expected {expected}.");
                return complete(false, comment, service.beacons());
            }
            let comment = match (func, service.position(named)) {
                ("add", None) => format!("Added new beacon item: {named}"),
                _ => format!("Updating settings for beacon item: {named}"),
            };
            map_set(&mut service.config, named.into(), beacon_data);
            complete(true, comment, service.beacons())
        }
        "delete" => {
            let comment = match service.position(named) {
                Some(index) => {
                    service.config.remove(index);
                    format!("Deleting beacon item: {named}")
                }
                None => format!("Beacon item {named} not found."),
            };
            complete(true, comment, service.beacons())
        }
        "enable" | "disable" => {
            map_set(
                &mut service.config,
                "enabled".into(),
                (func == "enable").into(),
            );
            vec![("complete", true.into()), ("beacons", service.beacons())]
        }
        "enable_beacon" | "disable_beacon" => {
            let enable = func == "enable_beacon";
            let (done, comment) = match service.position(named) {
                Some(_) => {
                    service.set_enabled(named, enable);
                    let verb = if enable { "Enabling" } else { "Disabling" };
                    (true, format!("{verb} beacon item {named}"))
                }
                None => (false, format!("Beacon item {named} not found.")),
            };
            complete(done, comment, service.beacons())
        }
        // "reset": the only request left that `BEACONS` knows.
        _ => {
            service.config.clear();
            complete(true, "Beacons have been reset".into(), service.beacons())
        }
    }
}

/// Checks a beacon's configuration as the minion would run it: its generic keys, and its
/// module's options by building it (and letting it go).
pub fn validate(name: &str, given: &Value, host: &Host) -> Result<(), Problem> {
    start(name, given, host).map(drop)
}

/// Builds the beacon `name` configured as `given` (Salt's list or map form), ready to check.
pub fn start(name: &str, given: &Value, host: &Host) -> Result<Box<dyn Beacon>, Problem> {
    build(&config::entry(name, given)?, host)
}

fn build(entry: &Entry, host: &Host) -> Result<Box<dyn Beacon>, Problem> {
    (entry.module.build)(&Options {
        name: &entry.name,
        config: &entry.options,
        host,
    })
    .map_err(|invalid| Problem {
        name: entry.name.clone(),
        module: Some(entry.module.name.to_owned()),
        invalid,
    })
}

/// Clears a beacon's "checking" flag when its check ends.
struct Done(Arc<AtomicBool>);

impl Drop for Done {
    fn drop(&mut self) {
        self.0.store(false, Ordering::Release);
    }
}

/// One `{"tag", "data", "beacon_name"}` item of a batch, as Salt's minion builds it.
fn item(tag: String, data: Value, module: &str) -> Value {
    Value::Map(vec![
        ("tag".into(), tag.into()),
        ("data".into(), data),
        ("beacon_name".into(), module.into()),
    ])
}

/// One beacon: built at once (so that wrong options are said at start), then checked at its
/// interval (or when the kernel wakes it), until its task is dropped.
async fn watch(
    entry: Entry,
    host: Host,
    reports: mpsc::Sender<Report>,
    checking: Arc<AtomicBool>,
    state_running: StateRunning,
) {
    let period = entry.interval.unwrap_or(Duration::from_secs(1));
    // As Salt's: with an interval set, the first check is one interval after the start.
    let first = Instant::now() + entry.interval.unwrap_or_default();
    let mut ticker = tokio::time::interval_at(first, period);
    ticker.set_missed_tick_behavior(MissedTickBehavior::Delay);
    let report = |result, ran_once| Report {
        name: entry.name.clone(),
        module: entry.module.name,
        result,
        ran_once,
    };
    let (mut waiting_since, mut said_waiting) = (None, false);
    let mut beacon = match build(&entry, &host) {
        Ok(built) => Some(built),
        Err(problem) => {
            let _ = reports
                .send(report(Err(problem.invalid.to_string()), false))
                .await;
            return;
        }
    };
    loop {
        // Woken by the kernel only without an interval: with one, changes wait for it.
        {
            let woken = match beacon.as_mut().filter(|_| entry.interval.is_none()) {
                Some(beacon) => beacon.wake(),
                None => None,
            };
            match woken {
                Some(woken) => tokio::select! {
                    _ = ticker.tick() => {}
                    () = woken => {}
                },
                None => {
                    ticker.tick().await;
                }
            }
        }
        if entry.disable_during_state_run && state_running() {
            if entry.module.closes {
                beacon = None;
            }
            continue;
        }
        if checking.load(Ordering::Acquire) {
            // The check of an earlier task of this beacon still hangs: not another one, and
            // said once it has hung as long as a check of this task would be said to.
            let since = *waiting_since.get_or_insert_with(Instant::now);
            if !said_waiting && since.elapsed() >= CHECK_PATIENCE {
                said_waiting = true;
                let hung = format!(
                    "an earlier check has not returned after {} s (a hung file system, mount or command?); it is not checked again until it does",
                    CHECK_PATIENCE.as_secs()
                );
                if reports.send(report(Err(hung), false)).await.is_err() {
                    return;
                }
            }
            continue;
        }
        (waiting_since, said_waiting) = (None, false);
        let mut running = match beacon.take() {
            Some(running) => running,
            None => match build(&entry, &host) {
                Ok(built) => built,
                Err(problem) => {
                    let _ = reports
                        .send(report(Err(problem.invalid.to_string()), false))
                        .await;
                    return;
                }
            },
        };
        checking.store(true, Ordering::Release);
        let done = checking.clone();
        let mut checked = tokio::task::spawn_blocking(move || {
            // Cleared however the check ends, a panic included.
            let _done = Done(done);
            let result = running.check();
            (running, result)
        });
        let checked = match tokio::time::timeout(CHECK_PATIENCE, &mut checked).await {
            Ok(checked) => checked,
            Err(_) => {
                let hung = format!(
                    "the check has not returned after {} s (a hung file system, mount or command?); it is not checked again until it does",
                    CHECK_PATIENCE.as_secs()
                );
                if reports.send(report(Err(hung), false)).await.is_err() {
                    return;
                }
                checked.await
            }
        };
        let mut result = match checked {
            Ok((running, result)) => {
                beacon = Some(running);
                result
            }
            // A check that panicked: built again at the next check.
            Err(err) => Err(format!("the check failed: {err}")),
        };
        if let Ok(events) = &mut result
            && events.len() > EVENTS_PER_CHECK
        {
            let left = events.len() - EVENTS_PER_CHECK;
            events.truncate(EVENTS_PER_CHECK);
            let said = format!(
                "one check found {left} events more than the {EVENTS_PER_CHECK} it may fire; those were dropped"
            );
            let _ = reports.send(report(Err(said), false)).await;
        }
        let ok = result.is_ok();
        if reports
            .send(report(result, ok && entry.run_once))
            .await
            .is_err()
        {
            return;
        }
        if ok && entry.run_once {
            return;
        }
    }
}
