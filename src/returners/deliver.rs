//! Handing jobs, returns and events to returners without ever waiting for them, and without
//! losing what they could not store yet.
//!
//! Each returner a daemon or a command names (per name, `ret_config` profile and `ret_kwargs`)
//! gets one task fed by a bounded queue ([`Deliveries::send`] never blocks). The task stores what
//! is queued in batches. While the store is away, batches go to the returner's [`Spool`] on disk,
//! in order, and delivery is retried with a backoff doubling from 1 s to 60 s; once the store
//! answers, the spool is delivered before anything newer. A spool left by a daemon that stopped,
//! or by a `salt-call`, is delivered by the next daemon that starts with the same cachedir.
//!
//! Nothing accepted is lost silently: a full queue or a full spool drops, and the drops are
//! counted ([`Deliveries::counters`]), logged, and announced as a [`LOST_TAG`] event at most once
//! a second per returner.

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::mpsc;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;

use super::spool::Spool;
use super::{JobLoad, Returner, ReturnerError, build};
use crate::bus::BusHandle;
use crate::config::Config;
use crate::event::{Event, Value, map_get};

/// The event announcing that a returner lost what it was handed:
/// `{"returner", "lost", "total", "reason"}`.
pub const LOST_TAG: &str = "halite/returner/lost";

/// `returner_queue_size`: items a returner's queue holds before they are dropped.
const DEFAULT_QUEUE: u64 = 10_000;
/// `returner_spool_max_bytes`: what a returner's spool holds on disk (256 MiB).
const DEFAULT_SPOOL_BYTES: u64 = 256 * 1024 * 1024;
/// Records stored in one call to the returner.
const BATCH: usize = 500;
/// How long one call to a returner may take before it counts as the store being away.
const ATTEMPT_TIMEOUT: Duration = Duration::from_secs(10);
/// The first and the longest wait before delivery is retried.
const BACKOFF: (Duration, Duration) = (Duration::from_secs(1), Duration::from_secs(60));
/// How long stopping waits for a store that answers to take what is queued; with an attempt
/// under way, well within the 15 s a daemon gives its last services to stop.
const CLOSE_TIMEOUT: Duration = Duration::from_secs(3);
/// How often losses are reported, at most.
const REPORT_EVERY: Duration = Duration::from_secs(1);

/// What a returner is handed.
#[derive(Debug, Clone)]
pub enum Item {
    /// Jobs' publish loads and their targets (Salt's `save_load`).
    Loads(Vec<JobLoad>),
    /// Return dicts (Salt's `returner`).
    Returns(Vec<Value>),
    /// Events (Salt's `event_return`).
    Events(Vec<Event>),
}

impl Item {
    /// One spool record per load, return or event.
    fn records(self) -> Vec<Value> {
        let tagged = |kind: &str, fields: Vec<Value>| {
            let mut record = vec![Value::from(kind)];
            record.extend(fields);
            Value::Array(record)
        };
        match self {
            Item::Loads(loads) => loads
                .into_iter()
                .map(|job| {
                    let minions = job.minions.into_iter().map(Value::from).collect();
                    tagged(
                        "load",
                        vec![Value::from(job.jid), job.load, Value::Array(minions)],
                    )
                })
                .collect(),
            Item::Returns(returns) => returns
                .into_iter()
                .map(|ret| tagged("return", vec![ret]))
                .collect(),
            Item::Events(events) => events
                .into_iter()
                .map(|event| tagged("event", vec![Value::from(event.tag), event.data]))
                .collect(),
        }
    }
}

/// A spool record read back, `None` for one this version does not know.
fn from_record(record: Value) -> Option<Item> {
    let Value::Array(fields) = record else {
        return None;
    };
    let mut fields = fields.into_iter();
    let kind = fields.next()?;
    match kind.as_str()? {
        "load" => {
            let jid = fields.next()?.as_str()?.to_owned();
            let load = fields.next()?;
            let minions = fields
                .next()?
                .as_array()?
                .iter()
                .filter_map(|id| id.as_str().map(str::to_owned))
                .collect();
            Some(Item::Loads(vec![JobLoad { jid, load, minions }]))
        }
        "return" => Some(Item::Returns(vec![fields.next()?])),
        "event" => {
            let tag = fields.next()?.as_str()?.to_owned();
            Some(Item::Events(vec![Event {
                tag,
                data: fields.next()?,
            }]))
        }
        _ => None,
    }
}

/// A batch as one call per kind: its loads, then its returns, then its events, each kind in
/// order. Loads go first so that a job's load is stored before its returns; the kinds are
/// stored apart (tables or files of their own), so nothing else depends on their interleaving,
/// and a job's load and its return, alternating in a busy batch, cost two calls, not two each.
fn coalesce(items: Vec<Item>) -> Vec<Item> {
    let (mut loads, mut returns, mut events) = (Vec::new(), Vec::new(), Vec::new());
    for item in items {
        match item {
            Item::Loads(more) => loads.extend(more),
            Item::Returns(more) => returns.extend(more),
            Item::Events(more) => events.extend(more),
        }
    }
    [
        Item::Loads(loads),
        Item::Returns(returns),
        Item::Events(events),
    ]
    .into_iter()
    .filter(|item| size(item) > 0)
    .collect()
}

fn size(item: &Item) -> usize {
    match item {
        Item::Loads(loads) => loads.len(),
        Item::Returns(returns) => returns.len(),
        Item::Events(events) => events.len(),
    }
}

/// What happened to what one returner was handed.
#[derive(Debug, Default)]
struct Counters {
    stored: AtomicU64,
    spooled: AtomicU64,
    dropped: AtomicU64,
    failed: AtomicU64,
}

/// Which returner, configured how: the key of its queue and the name of its spool.
#[derive(Debug, Clone)]
struct Target {
    name: String,
    profile: Option<String>,
    kwargs: Option<Value>,
}

impl Target {
    /// A directory name for the spool: the returner's name, with the profile, and a digest of
    /// the kwargs when there are any (the target itself is saved in the spool to be rebuilt).
    fn spool_name(&self) -> String {
        let mut name = self.name.clone();
        if let Some(profile) = &self.profile {
            let safe: String = profile
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || "_.-".contains(c) {
                        c
                    } else {
                        '_'
                    }
                })
                .collect();
            name = format!("{name}@{safe}");
            if safe != *profile || safe.starts_with('.') {
                // Two profiles that read the same once made safe keep their own spools.
                let digest =
                    crate::config::hexdigest(profile.as_bytes(), "sha256").unwrap_or_default();
                name = format!("{name}~{}", &digest[..12]);
            }
        }
        if let Some(kwargs) = &self.kwargs {
            let digest = crate::config::hexdigest(kwargs.to_string().as_bytes(), "sha256")
                .unwrap_or_default();
            name = format!("{name}+{}", &digest[..12]);
        }
        name
    }

    fn to_value(&self) -> Value {
        Value::Array(vec![
            Value::from(self.name.as_str()),
            self.profile.as_deref().map_or(Value::Nil, Value::from),
            self.kwargs.clone().unwrap_or(Value::Nil),
        ])
    }

    fn from_value(value: &Value) -> Option<Self> {
        let fields = value.as_array()?;
        Some(Self {
            name: fields.first()?.as_str()?.to_owned(),
            profile: fields.get(1)?.as_str().map(str::to_owned),
            kwargs: fields.get(2).filter(|kwargs| !kwargs.is_nil()).cloned(),
        })
    }
}

#[derive(Debug)]
struct Queue {
    sender: mpsc::Sender<Item>,
    /// Tells the task to look at its spool again (another process may have added to it).
    wake: Arc<tokio::sync::Notify>,
    counters: Arc<Counters>,
    spool: Option<Spool>,
    reports: Arc<Mutex<Reports>>,
}

/// Losses not yet announced.
#[derive(Debug)]
struct Reports {
    last: Option<Instant>,
    unreported: u64,
}

#[derive(Debug)]
struct Inner {
    config: Config,
    bus: Option<BusHandle>,
    spools: Option<PathBuf>,
    queue_size: usize,
    spool_bytes: u64,
    /// Whether the tasks deliver their spools; a one-shot command only appends to them, for a
    /// daemon to deliver, so that two processes never deliver one spool.
    drains: bool,
    /// By [`Target::spool_name`].
    queues: Mutex<BTreeMap<String, Arc<Queue>>>,
    tasks: TaskTracker,
    stop: CancellationToken,
}

/// The returners of one daemon or command, each fed by its own task.
#[derive(Debug, Clone)]
pub struct Deliveries {
    inner: Arc<Inner>,
}

impl Deliveries {
    /// Returners reading their options from `config`, spooling under `<cachedir>/returners`,
    /// announcing losses on `bus` when there is one. Reads `returner_queue_size` and
    /// `returner_spool_max_bytes`.
    pub fn new(
        config: &Config,
        bus: Option<BusHandle>,
    ) -> Result<Self, crate::config::ConfigError> {
        Self::with_drains(config, bus, true)
    }

    /// For a one-shot command (`salt-call --return`): what its returners cannot store, or what
    /// would overtake what waits in their spools, is appended to the spools for the minion to
    /// deliver.
    pub fn appending(config: &Config) -> Result<Self, crate::config::ConfigError> {
        Self::with_drains(config, None, false)
    }

    fn with_drains(
        config: &Config,
        bus: Option<BusHandle>,
        drains: bool,
    ) -> Result<Self, crate::config::ConfigError> {
        let queue_size = config.get_u64("returner_queue_size", DEFAULT_QUEUE)?.max(1);
        Ok(Self {
            inner: Arc::new(Inner {
                config: config.clone(),
                bus,
                spools: config.cachedir().ok().map(|dir| dir.join("returners")),
                queue_size: usize::try_from(queue_size).unwrap_or(usize::MAX),
                spool_bytes: config.get_u64("returner_spool_max_bytes", DEFAULT_SPOOL_BYTES)?,
                drains,
                queues: Mutex::default(),
                tasks: TaskTracker::new(),
                stop: CancellationToken::new(),
            }),
        })
    }

    /// Queues `item` for returner `name` (with the `ret_config` profile and `ret_kwargs`
    /// given); never waits. Fails only when there is no such returner or its options are
    /// invalid.
    pub fn send(
        &self,
        name: &str,
        profile: Option<&str>,
        kwargs: Option<&Value>,
        item: Item,
    ) -> Result<(), ReturnerError> {
        let target = Target {
            name: name.to_owned(),
            profile: profile.filter(|p| !p.is_empty()).map(str::to_owned),
            kwargs: kwargs.filter(|kwargs| !kwargs.is_nil()).cloned(),
        };
        let queue = self.queue(&target)?;
        let count = size(&item) as u64;
        if let Err(err) = queue.sender.try_send(item) {
            let reason = match err {
                mpsc::error::TrySendError::Full(_) => format!(
                    "its queue is full ({} items waiting; returner_queue_size)",
                    self.inner.queue_size
                ),
                mpsc::error::TrySendError::Closed(_) => "the daemon is stopping".to_owned(),
            };
            self.lost(&target.name, &queue, count, &reason);
        }
        Ok(())
    }

    /// Hands a job's return dict to each returner `names` lists, with the `ret_config` and
    /// `ret_kwargs` the return carries (as Salt's minion passes them); an unknown returner is
    /// logged and does not keep the others from theirs.
    pub fn job_return(&self, names: &[String], ret: &Value) {
        let profile = map_get(ret, "ret_config").map(|profile| crate::py::value::py_str(profile));
        let kwargs = map_get(ret, "ret_kwargs");
        for name in names {
            let item = Item::Returns(vec![ret.clone()]);
            if let Err(err) = self.send(name, profile.as_deref(), kwargs, item) {
                tracing::error!("the return was not stored: {err}");
            }
        }
    }

    /// Starts delivering the spools a daemon or command left under this cachedir.
    pub fn resume(&self) {
        let Some(root) = &self.inner.spools else {
            return;
        };
        for entry in std::fs::read_dir(root).into_iter().flatten().flatten() {
            let Some(target) = std::fs::read(entry.path().join("returner"))
                .ok()
                .and_then(|bytes| rmpv::decode::read_value(&mut bytes.as_slice()).ok())
                .and_then(|value| Target::from_value(&value))
            else {
                continue;
            };
            let existing = self
                .inner
                .queues
                .lock()
                .expect("returner queues lock")
                .get(&target.spool_name())
                .cloned();
            if let Some(queue) = existing {
                queue.wake.notify_one();
            } else if let Err(err) = self.queue(&target) {
                tracing::error!(
                    "the spool {} is kept undelivered: {err}",
                    entry.path().display()
                );
            }
        }
    }

    /// `{returner: {stored, spooled, dropped, failed, queued, spool_bytes}}`.
    pub fn counters(&self) -> Value {
        let queues = self.inner.queues.lock().expect("returner queues lock");
        Value::Map(
            queues
                .iter()
                .map(|(name, queue)| {
                    let count = |counter: &AtomicU64| Value::from(counter.load(Ordering::Relaxed));
                    let counters = &queue.counters;
                    let queued = queue.sender.max_capacity() - queue.sender.capacity();
                    let fields = vec![
                        (Value::from("stored"), count(&counters.stored)),
                        (Value::from("spooled"), count(&counters.spooled)),
                        (Value::from("dropped"), count(&counters.dropped)),
                        (Value::from("failed"), count(&counters.failed)),
                        (Value::from("queued"), Value::from(queued as u64)),
                        (
                            Value::from("spool_bytes"),
                            Value::from(queue.spool.as_ref().map_or(0, Spool::pending_bytes)),
                        ),
                    ];
                    (Value::from(name.as_str()), Value::Map(fields))
                })
                .collect(),
        )
    }

    /// Stops taking items; each returner stores what it was handed while its store answers
    /// (up to 3 s), and what is left stays in its spool for the next start.
    pub async fn close(&self) {
        self.inner.stop.cancel();
        self.inner.tasks.close();
        self.inner.tasks.wait().await;
    }

    fn queue(&self, target: &Target) -> Result<Arc<Queue>, ReturnerError> {
        let mut queues = self.inner.queues.lock().expect("returner queues lock");
        if let Some(queue) = queues.get(&target.spool_name()) {
            return Ok(queue.clone());
        }
        let returner = build(
            &target.name,
            &self.inner.config,
            target.profile.as_deref(),
            target.kwargs.as_ref(),
        )?;
        let spool = self.inner.spools.as_ref().and_then(|root| {
            let dir = root.join(target.spool_name());
            let opened = Spool::open(&dir, self.inner.spool_bytes).and_then(|spool| {
                let mut saved = Vec::new();
                rmpv::encode::write_value(&mut saved, &target.to_value())?;
                std::fs::write(dir.join("returner"), saved)?;
                Ok(spool)
            });
            opened
                .inspect_err(|err| {
                    tracing::error!(
                        "returner {}: no spool in {} ({err}): what it cannot store while its store is away is lost; check cachedir",
                        target.name,
                        dir.display()
                    );
                })
                .ok()
        });
        let (sender, receiver) = mpsc::channel(self.inner.queue_size);
        let queue = Arc::new(Queue {
            sender,
            wake: Arc::default(),
            counters: Arc::default(),
            spool,
            reports: Arc::new(Mutex::new(Reports {
                last: None,
                unreported: 0,
            })),
        });
        let worker = Worker {
            deliveries: self.clone(),
            name: target.name.clone(),
            returner,
            queue: queue.clone(),
            receiver,
            backoff: BACKOFF.0,
            retry_at: None,
            drains: self.inner.drains,
            stop: self.inner.stop.clone(),
        };
        self.inner.tasks.spawn(worker.run());
        queues.insert(target.spool_name(), queue.clone());
        Ok(queue)
    }

    /// Counts, logs and (at most once a second) announces `count` items lost.
    fn lost(&self, name: &str, queue: &Queue, count: u64, reason: &str) {
        if count == 0 {
            return;
        }
        let total = queue.counters.dropped.fetch_add(count, Ordering::Relaxed) + count;
        let mut reports = queue.reports.lock().expect("returner reports lock");
        reports.unreported += count;
        if reports
            .last
            .is_some_and(|last| last.elapsed() < REPORT_EVERY)
        {
            return;
        }
        let lost = std::mem::take(&mut reports.unreported);
        reports.last = Some(Instant::now());
        tracing::error!("returner {name} lost {lost} items ({total} in all): {reason}");
        if let Some(bus) = &self.inner.bus {
            bus.fire_fields(
                LOST_TAG,
                vec![
                    ("returner", Value::from(name)),
                    ("lost", Value::from(lost)),
                    ("total", Value::from(total)),
                    ("reason", Value::from(reason)),
                ],
            );
        }
    }
}

/// One returner's task.
struct Worker {
    deliveries: Deliveries,
    name: String,
    returner: Arc<dyn Returner>,
    queue: Arc<Queue>,
    receiver: mpsc::Receiver<Item>,
    backoff: Duration,
    /// Set while the spool holds records: when to try the store again.
    retry_at: Option<Instant>,
    /// Whether it delivers its spool (see [`Inner::drains`]).
    drains: bool,
    stop: CancellationToken,
}

impl Worker {
    async fn run(mut self) {
        if self.spooled().await {
            self.retry_at = Some(Instant::now());
        }
        let (stop, wake) = (self.stop.clone(), self.queue.wake.clone());
        loop {
            let retry_at = self.retry_at.filter(|_| self.drains);
            tokio::select! {
                biased;
                _ = stop.cancelled() => break,
                _ = wake.notified() => {
                    if self.retry_at.is_none() && self.spooled().await {
                        self.retry_at = Some(Instant::now());
                    }
                }
                received = self.receiver.recv() => {
                    let Some(item) = received else { break };
                    let mut batch = vec![item];
                    let mut count = size(&batch[0]);
                    while count < BATCH && let Ok(item) = self.receiver.try_recv() {
                        count += size(&item);
                        batch.push(item);
                    }
                    self.handle(batch).await;
                }
                _ = tokio::time::sleep_until(retry_at.unwrap_or_else(Instant::now)), if retry_at.is_some() => {
                    self.drain_spool().await;
                }
            }
        }
        // Stopping: what is queued is stored while the store answers, else spooled.
        self.receiver.close();
        let deadline = Instant::now() + CLOSE_TIMEOUT;
        let mut left = Vec::new();
        while let Ok(item) = self.receiver.try_recv() {
            left.push(item);
        }
        for batch in left.chunks(BATCH) {
            if self.retry_at.is_none() {
                let stored = tokio::time::timeout_at(deadline, self.handle(batch.to_vec())).await;
                if stored.is_ok() {
                    continue;
                }
                // Whatever of it the store took, returners skip when it comes again.
                self.retry_at = Some(Instant::now());
            }
            self.spool(batch.to_vec()).await;
        }
    }

    /// Stores a batch, or spools it while the store is away or older records wait.
    async fn handle(&mut self, batch: Vec<Item>) {
        if self.retry_at.is_some() {
            self.spool(batch).await;
            return;
        }
        let items = coalesce(batch);
        for (at, item) in items.iter().enumerate() {
            match self.store(item).await {
                Ok(()) => {}
                Err(err) if err.retryable() => {
                    tracing::warn!(
                        "{err}; keeping what it could not store in its spool and retrying in {:?}",
                        self.backoff
                    );
                    self.retry_at = Some(Instant::now() + self.backoff);
                    self.spool(items[at..].to_vec()).await;
                    return;
                }
                Err(_) => {
                    if let Err(mut left) = self.store_one_by_one(item).await {
                        tracing::warn!(
                            "returner {}: its store went away; keeping the rest in its spool",
                            self.name
                        );
                        self.retry_at = Some(Instant::now() + self.backoff);
                        left.extend(items[at + 1..].iter().cloned());
                        self.spool(left).await;
                        return;
                    }
                }
            }
        }
    }

    /// Stores one item (a run of returns or events in one call), counting what was stored.
    async fn store(&self, item: &Item) -> Result<(), ReturnerError> {
        let attempt = async {
            match item {
                Item::Loads(loads) => self.returner.save_loads(loads).await,
                Item::Returns(returns) => self.returner.returns(returns).await,
                Item::Events(events) => self.returner.events(events).await,
            }
        };
        match tokio::time::timeout(ATTEMPT_TIMEOUT, attempt).await {
            Ok(Ok(())) => {
                self.queue
                    .counters
                    .stored
                    .fetch_add(size(item) as u64, Ordering::Relaxed);
                Ok(())
            }
            Ok(Err(err)) => Err(err),
            Err(_) => Err(ReturnerError::Unavailable {
                returner: self.returner.name(),
                problem: format!("no answer in {ATTEMPT_TIMEOUT:?}"),
            }),
        }
    }

    /// A batch the returner refused: each of its records alone, so that one record it can
    /// never store does not cost the others.
    /// Should the store go away meanwhile, the records not yet stored are handed back, to be
    /// kept rather than counted as refused.
    async fn store_one_by_one(&mut self, item: &Item) -> Result<(), Vec<Item>> {
        let singles: Vec<Item> = match item {
            Item::Returns(returns) => returns
                .iter()
                .map(|ret| Item::Returns(vec![ret.clone()]))
                .collect(),
            Item::Events(events) => events
                .iter()
                .map(|event| Item::Events(vec![event.clone()]))
                .collect(),
            Item::Loads(loads) => loads
                .iter()
                .map(|job| Item::Loads(vec![job.clone()]))
                .collect(),
        };
        for (at, single) in singles.iter().enumerate() {
            match self.store(single).await {
                Ok(()) => {}
                Err(err) if err.retryable() => return Err(singles[at..].to_vec()),
                Err(err) => {
                    tracing::error!("{err}; the record is not stored");
                    self.queue.counters.failed.fetch_add(1, Ordering::Relaxed);
                }
            }
        }
        Ok(())
    }

    /// Writes a batch to the spool (or counts it lost when there is none or it fails).
    async fn spool(&mut self, batch: Vec<Item>) {
        let records: Vec<Value> = batch.into_iter().flat_map(Item::records).collect();
        let count = records.len() as u64;
        if self.retry_at.is_none() {
            self.retry_at = Some(Instant::now() + self.backoff);
        }
        let Some(spool) = self.queue.spool.clone() else {
            let reason = format!("{} has no spool", self.name);
            self.deliveries
                .lost(&self.name, &self.queue, count, &reason);
            return;
        };
        let dir = spool.dir().display().to_string();
        match tokio::task::spawn_blocking(move || spool.push(&records)).await {
            Ok(Ok(dropped)) => {
                self.queue
                    .counters
                    .spooled
                    .fetch_add(count, Ordering::Relaxed);
                let reason = format!(
                    "its spool {dir} is full (returner_spool_max_bytes): the oldest records went"
                );
                self.deliveries
                    .lost(&self.name, &self.queue, dropped, &reason);
            }
            Ok(Err(err)) => {
                let reason = format!("cannot write its spool {dir}: {err}");
                self.deliveries
                    .lost(&self.name, &self.queue, count, &reason);
            }
            Err(err) => {
                let reason = format!("cannot write its spool {dir}: {err}");
                self.deliveries
                    .lost(&self.name, &self.queue, count, &reason);
            }
        }
    }

    /// Whether the spool holds records.
    async fn spooled(&self) -> bool {
        let Some(spool) = self.queue.spool.clone() else {
            return false;
        };
        tokio::task::spawn_blocking(move || spool.pending_bytes() > 0)
            .await
            .unwrap_or(false)
    }

    /// Delivers the spool, oldest first, until it is empty (the store is back: the backoff
    /// resets) or the store fails again (the backoff doubles).
    async fn drain_spool(&mut self) {
        let Some(spool) = self.queue.spool.clone() else {
            self.retry_at = None;
            return;
        };
        loop {
            // Stopping leaves the rest to the next start.
            if self.stop.is_cancelled() || !self.drains {
                return;
            }
            let reader = spool.clone();
            let peeked = tokio::task::spawn_blocking(move || reader.peek(BATCH)).await;
            let (records, cursor) = match peeked {
                Ok(Ok(peeked)) => peeked,
                Ok(Err(err)) => {
                    tracing::error!("cannot read the spool {}: {err}", spool.dir().display());
                    self.retry_later();
                    return;
                }
                Err(_) => return,
            };
            if records.is_empty() {
                self.retry_at = None;
                self.backoff = BACKOFF.0;
                tracing::info!("returner {}: its spool is delivered", self.name);
                return;
            }
            let items = coalesce(records.into_iter().filter_map(from_record).collect());
            for item in &items {
                match self.store(item).await {
                    Ok(()) => {}
                    Err(err) if err.retryable() => {
                        // What was stored of this batch is stored again on the next try;
                        // returners skip returns already stored.
                        tracing::warn!("{err}; retrying its spool in {:?}", self.backoff);
                        self.retry_later();
                        return;
                    }
                    Err(_) => {
                        // Not committed: the batch comes again, and what was stored of it is
                        // recognised.
                        if self.store_one_by_one(item).await.is_err() {
                            self.retry_later();
                            return;
                        }
                    }
                }
            }
            let committer = spool.clone();
            if let Ok(Err(err)) =
                tokio::task::spawn_blocking(move || committer.commit(cursor)).await
            {
                tracing::error!("cannot update the spool {}: {err}", spool.dir().display());
                self.retry_later();
                return;
            }
        }
    }

    fn retry_later(&mut self) {
        self.retry_at = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(BACKOFF.1);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::returners::Pending;
    use std::sync::atomic::AtomicBool;

    /// A store that can be switched off, and records what it stored.
    #[derive(Debug, Default)]
    struct Flaky {
        down: AtomicBool,
        refuses_batches: AtomicBool,
        stored: Mutex<Vec<Value>>,
    }

    impl Returner for Arc<Flaky> {
        fn name(&self) -> &'static str {
            "flaky"
        }

        fn returns<'a>(&'a self, returns: &'a [Value]) -> Pending<'a, ()> {
            Box::pin(async move {
                if self.refuses_batches.load(Ordering::SeqCst) && returns.len() > 1 {
                    // As a server dying under a batch may answer: an error that reads as a
                    // refusal of the batch.
                    self.refuses_batches.store(false, Ordering::SeqCst);
                    self.down.store(true, Ordering::SeqCst);
                    return Err(ReturnerError::Rejected {
                        returner: "flaky",
                        problem: "dying".into(),
                    });
                }
                if self.down.load(Ordering::SeqCst) {
                    return Err(ReturnerError::Unavailable {
                        returner: "flaky",
                        problem: "down".into(),
                    });
                }
                self.stored.lock().unwrap().extend(returns.iter().cloned());
                Ok(())
            })
        }
    }

    fn deliveries(dir: &std::path::Path, extra: &str) -> Deliveries {
        std::fs::write(
            dir.join("master"),
            format!("cachedir: {}\n{extra}", dir.display()),
        )
        .unwrap();
        let config = Config::load(crate::config::Role::Master, Some(dir)).unwrap();
        Deliveries::new(&config, None).unwrap()
    }

    /// Queues a delivery to `flaky` directly, as `queue()` does for a named returner.
    fn attach(deliveries: &Deliveries, flaky: &Arc<Flaky>) -> Arc<Queue> {
        let target = Target {
            name: "flaky".into(),
            profile: None,
            kwargs: None,
        };
        let root = deliveries.inner.spools.clone().unwrap();
        let spool = Spool::open(&root.join("flaky"), u64::MAX).unwrap();
        let (sender, receiver) = mpsc::channel(deliveries.inner.queue_size);
        let queue = Arc::new(Queue {
            sender,
            wake: Arc::default(),
            counters: Arc::default(),
            spool: Some(spool),
            reports: Arc::new(Mutex::new(Reports {
                last: None,
                unreported: 0,
            })),
        });
        let worker = Worker {
            deliveries: deliveries.clone(),
            name: "flaky".into(),
            returner: Arc::new(flaky.clone()),
            queue: queue.clone(),
            receiver,
            backoff: BACKOFF.0,
            retry_at: None,
            drains: true,
            stop: deliveries.inner.stop.clone(),
        };
        deliveries.inner.tasks.spawn(worker.run());
        deliveries
            .inner
            .queues
            .lock()
            .unwrap()
            .insert(target.spool_name(), queue.clone());
        queue
    }

    #[test]
    fn a_batch_of_jobs_is_one_call_for_their_loads_and_one_for_their_returns() {
        let load = |n: u64| {
            Item::Loads(vec![JobLoad {
                jid: n.to_string(),
                load: Value::from(n),
                minions: Vec::new(),
            }])
        };
        let ret = |n: u64| Item::Returns(vec![Value::from(n)]);
        let event = |n: u64| {
            Item::Events(vec![Event {
                tag: "t".into(),
                data: Value::from(n),
            }])
        };
        let batch = vec![load(1), ret(1), event(1), load(2), ret(2), event(2)];
        let calls: Vec<Vec<Value>> = coalesce(batch).into_iter().map(Item::records).collect();
        let kinds: Vec<Vec<String>> = calls
            .iter()
            .map(|records| {
                records
                    .iter()
                    .map(|record| record.as_array().unwrap()[0].to_string())
                    .collect()
            })
            .collect();
        assert_eq!(
            kinds,
            [
                ["\"load\"", "\"load\""],
                ["\"return\"", "\"return\""],
                ["\"event\"", "\"event\""]
            ]
        );
        assert_eq!(calls[1][1].as_array().unwrap()[1], Value::from(2));
        assert!(coalesce(vec![ret(1)]).len() == 1);
    }

    #[tokio::test(start_paused = true)]
    async fn returns_wait_in_the_spool_while_the_store_is_down_and_arrive_once_in_order() {
        let dir = tempfile::tempdir().unwrap();
        let deliveries = deliveries(dir.path(), "");
        let flaky = Arc::new(Flaky::default());
        attach(&deliveries, &flaky);
        let send = |n: i64| {
            deliveries
                .send("flaky", None, None, Item::Returns(vec![Value::from(n)]))
                .unwrap()
        };
        send(0);
        tokio::time::sleep(Duration::from_millis(10)).await;
        flaky.down.store(true, Ordering::SeqCst);
        for n in 1..1000 {
            send(n);
        }
        tokio::time::sleep(Duration::from_secs(5)).await;
        assert_eq!(flaky.stored.lock().unwrap().len(), 1);
        flaky.down.store(false, Ordering::SeqCst);
        for n in 1000..1100 {
            send(n);
        }
        tokio::time::sleep(Duration::from_secs(120)).await;
        let stored = flaky.stored.lock().unwrap().clone();
        assert_eq!(stored, (0..1100).map(Value::from).collect::<Vec<_>>());
        let counters = deliveries.counters();
        let flaky_counters = map_get(&counters, "flaky").unwrap();
        assert_eq!(map_get(flaky_counters, "stored"), Some(&Value::from(1100)));
        assert_eq!(map_get(flaky_counters, "dropped"), Some(&Value::from(0)));
        deliveries.close().await;
    }

    #[tokio::test(start_paused = true)]
    async fn what_is_left_at_close_is_spooled_and_the_next_start_delivers_it() {
        let dir = tempfile::tempdir().unwrap();
        let first = deliveries(dir.path(), "");
        let flaky = Arc::new(Flaky::default());
        flaky.down.store(true, Ordering::SeqCst);
        attach(&first, &flaky);
        let returns: Vec<Value> = (0..50).map(Value::from).collect();
        first
            .send("flaky", None, None, Item::Returns(returns.clone()))
            .unwrap();
        first.close().await;
        assert!(flaky.stored.lock().unwrap().is_empty());

        flaky.down.store(false, Ordering::SeqCst);
        let second = deliveries(dir.path(), "");
        attach(&second, &flaky);
        tokio::time::sleep(Duration::from_secs(2)).await;
        assert_eq!(*flaky.stored.lock().unwrap(), returns);
        second.close().await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_store_that_goes_away_while_records_are_tried_one_by_one_loses_none() {
        let dir = tempfile::tempdir().unwrap();
        let deliveries = deliveries(dir.path(), "");
        let flaky = Arc::new(Flaky::default());
        flaky.refuses_batches.store(true, Ordering::SeqCst);
        let queue = attach(&deliveries, &flaky);
        let returns: Vec<Value> = (0..20).map(Value::from).collect();
        deliveries
            .send("flaky", None, None, Item::Returns(returns.clone()))
            .unwrap();
        tokio::time::sleep(Duration::from_secs(3)).await;
        assert!(flaky.stored.lock().unwrap().is_empty());
        flaky.down.store(false, Ordering::SeqCst);
        tokio::time::sleep(Duration::from_secs(120)).await;
        assert_eq!(*flaky.stored.lock().unwrap(), returns);
        assert_eq!(queue.counters.failed.load(Ordering::Relaxed), 0);
        deliveries.close().await;
    }

    #[tokio::test]
    async fn a_full_queue_drops_counts_and_says_so() {
        let dir = tempfile::tempdir().unwrap();
        let deliveries = deliveries(dir.path(), "returner_queue_size: 2\n");
        let flaky = Arc::new(Flaky::default());
        let queue = attach(&deliveries, &flaky);
        // Without yielding, the worker takes nothing: the third item finds the queue full.
        for n in 0..5 {
            deliveries
                .send("flaky", None, None, Item::Returns(vec![Value::from(n)]))
                .unwrap();
        }
        assert_eq!(queue.counters.dropped.load(Ordering::Relaxed), 3);
        deliveries.close().await;
        assert_eq!(flaky.stored.lock().unwrap().len(), 2);
    }

    #[test]
    fn unknown_returners_are_refused_by_name() {
        let dir = tempfile::tempdir().unwrap();
        let deliveries = deliveries(dir.path(), "");
        let err = deliveries
            .send("nosuch", None, None, Item::Returns(Vec::new()))
            .unwrap_err();
        assert!(err.to_string().contains("nosuch"), "{err}");
    }
}
