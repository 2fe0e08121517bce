//! The services a daemon runs, and the order they stop in.
//!
//! A daemon is a few long-running tasks: its bus, its reactor, its sessions, its housekeeping.
//! Each is registered here with a name and a [`Stage`], as a future given the token that asks it
//! to stop. On shutdown the stages stop one after another, each waited for (a bounded time), so
//! that shutdown loses nothing already accepted: what turns events into work drains first while
//! everything it acts through is still up, and the bus goes last so that the events of every
//! stage before still reach its subscribers.
//!
//! A service that ends before it is asked to is a fault, logged at error level with its name (a
//! panic too, whenever it happens). An ordinary service's fault leaves the daemon serving without
//! it, as a lost connection would; an essential one's (the bus: a daemon without it is deaf)
//! stops the daemon in order, and [`Services::run`] returns it so that the daemon exits with a
//! failure. Ending once the daemon is stopping is no fault: a service that decides the daemon
//! must stop (a minion refused by its master) cancels the daemon's shutdown token and returns.

use std::collections::HashMap;
use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use tokio::task::{AbortHandle, Id, JoinError, JoinSet};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

/// When a service stops: the stages stop in this order, each once the one before has stopped.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Stage {
    /// What turns events into work (the reactor): it works through what it accepted while the
    /// sessions that carry its jobs and the bus that carries its events are still up.
    Reactions,
    /// What carries work to and from peers and keeps house: minion sessions, the request socket,
    /// the link to the master, jobs, the relay, maintenance.
    Sessions,
    /// The event bus, last, so that late events of the stages before still fire.
    Bus,
}

impl Stage {
    /// The stages in the order they stop.
    pub const ALL: [Stage; 3] = [Stage::Reactions, Stage::Sessions, Stage::Bus];

    /// How long the services of this stage may take to stop before the daemon goes on without
    /// them (and aborts them).
    pub fn drain_timeout(self) -> Duration {
        match self {
            // The reactor bounds its own drain (`reactor_timeout`, at most a minute); this only
            // guards against one that hangs.
            Stage::Reactions => Duration::from_secs(90),
            Stage::Sessions => Duration::from_secs(5),
            // The bus gives its subscribers 5 s to read their last events once its senders are
            // done; this only guards against a bus that hangs.
            Stage::Bus => Duration::from_secs(15),
        }
    }
}

/// An essential service ended while the daemon was running, or panicked: the daemon stopped.
#[derive(Debug, thiserror::Error)]
#[error("the {service} service {reason}, so the daemon stopped")]
pub struct ServiceFailed {
    /// The service's name.
    pub service: &'static str,
    /// How it ended, for people.
    pub reason: String,
}

/// A daemon's running services.
#[derive(Debug, Default)]
pub struct Services {
    tasks: JoinSet<()>,
    running: HashMap<Id, Service>,
    stops: [CancellationToken; Stage::ALL.len()],
}

#[derive(Debug)]
struct Service {
    name: &'static str,
    stage: Stage,
    essential: bool,
    abort: AbortHandle,
}

impl Services {
    /// No services yet.
    pub fn new() -> Self {
        Self::default()
    }

    /// Starts a service: `service` gets the token cancelled when its stage stops. Should it end
    /// on its own, it is logged and the daemon runs on without it.
    pub fn spawn<F, Fut>(&mut self, name: &'static str, stage: Stage, service: F)
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.start(name, stage, false, service);
    }

    /// Starts a service the daemon cannot run without: should it end on its own or panic, the
    /// daemon stops.
    pub fn spawn_essential<F, Fut>(&mut self, name: &'static str, stage: Stage, service: F)
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        self.start(name, stage, true, service);
    }

    fn start<F, Fut>(&mut self, name: &'static str, stage: Stage, essential: bool, service: F)
    where
        F: FnOnce(CancellationToken) -> Fut,
        Fut: Future<Output = ()> + Send + 'static,
    {
        let abort = self
            .tasks
            .spawn(service(self.stops[stage as usize].clone()));
        let service = Service {
            name,
            stage,
            essential,
            abort,
        };
        self.running.insert(service.abort.id(), service);
    }

    /// Runs until `shutdown` (or an essential service fails), then stops the stages in order.
    pub async fn run(mut self, shutdown: &CancellationToken) -> Result<(), ServiceFailed> {
        let mut failed = None;
        while failed.is_none() {
            tokio::select! {
                () = shutdown.cancelled() => break,
                Some(ended) = self.tasks.join_next_with_id() => {
                    failed = self.ended(ended, shutdown.is_cancelled());
                }
            }
        }
        for stage in Stage::ALL {
            self.stops[stage as usize].cancel();
            let timeout = stage.drain_timeout();
            let deadline = Instant::now() + timeout;
            while self.running.values().any(|service| service.stage == stage) {
                match tokio::time::timeout_at(deadline, self.tasks.join_next_with_id()).await {
                    Ok(Some(ended)) => {
                        let fault = self.ended(ended, true);
                        failed = failed.or(fault);
                    }
                    Ok(None) => break,
                    Err(_) => {
                        self.give_up(stage, timeout);
                        break;
                    }
                }
            }
        }
        failed.map_or(Ok(()), Err)
    }

    /// Logs a service that ended other than as asked; the failure, if the daemon must stop.
    fn ended(
        &mut self,
        ended: Result<(Id, ()), JoinError>,
        stopping: bool,
    ) -> Option<ServiceFailed> {
        let (id, panic) = match ended {
            Ok((id, ())) => (id, None),
            Err(err) => (err.id(), err.try_into_panic().ok().map(panic_message)),
        };
        // A service given up on at its stage's timeout is aborted and forgotten.
        let service = self.running.remove(&id)?;
        let reason = match panic {
            Some(message) => format!("panicked: {message}"),
            None if stopping => return None,
            None => "ended on its own".to_owned(),
        };
        if service.essential && !stopping {
            tracing::error!("the {} service {reason}; the daemon stops", service.name);
        } else if stopping {
            tracing::error!("the {} service {reason}", service.name);
        } else {
            tracing::error!(
                "the {} service {reason}; the daemon runs on without it",
                service.name
            );
        }
        service.essential.then_some(ServiceFailed {
            service: service.name,
            reason,
        })
    }

    /// Aborts the services of `stage` still running, so that the next stage can stop.
    fn give_up(&mut self, stage: Stage, timeout: Duration) {
        self.running.retain(|_, service| {
            if service.stage != stage {
                return true;
            }
            tracing::warn!(
                "the {} service did not stop within {timeout:?}; stopping without it",
                service.name
            );
            service.abort.abort();
            false
        });
    }
}

fn panic_message(payload: Box<dyn std::any::Any + Send>) -> String {
    match payload.downcast::<String>() {
        Ok(text) => *text,
        Err(payload) => payload
            .downcast_ref::<&str>()
            .map_or_else(|| "(no message)".to_owned(), |text| (*text).to_owned()),
    }
}

/// How a [`Refetch`] gets its value: a future for each fetch, or why it failed.
pub type Fetch<T> =
    Arc<dyn Fn() -> Pin<Box<dyn Future<Output = Result<T, String>> + Send>> + Send + Sync>;

/// A value a service fetches from elsewhere (its part of the minion's pillar) in a task of its
/// own: fetched again whenever it may have changed, a fetch under way given up for the new one,
/// and, until one fetch has succeeded, fetched again a while after one fails (the master was
/// not there yet). A later failure keeps what was fetched, and is said.
pub struct Refetch<T> {
    fetch: Option<Fetch<T>>,
    /// What is fetched, for messages (`the beacons`).
    what: &'static str,
    retry: Duration,
    tasks: JoinSet<Result<T, String>>,
    seen: bool,
}

impl<T: Send + 'static> Refetch<T> {
    /// Fetches with `fetch` (nothing, when there is none), `retry` apart until one succeeds.
    pub fn new(what: &'static str, retry: Duration, fetch: Option<Fetch<T>>) -> Self {
        Self {
            fetch,
            what,
            retry,
            tasks: JoinSet::new(),
            seen: false,
        }
    }

    /// Fetches again now, instead of any fetch under way (the value may have changed since it
    /// was asked for).
    pub fn start(&mut self) {
        self.after(Duration::ZERO);
    }

    fn after(&mut self, delay: Duration) {
        let Some(fetch) = self.fetch.clone() else {
            return;
        };
        self.tasks.abort_all();
        self.tasks.spawn(async move {
            tokio::time::sleep(delay).await;
            fetch().await
        });
    }

    /// The next value fetched; waits for ever while no fetch is under way.
    pub async fn next(&mut self) -> T {
        loop {
            let fetched = match self.tasks.join_next().await {
                None => std::future::pending().await,
                Some(Ok(fetched)) => fetched,
                Some(Err(err)) if err.is_cancelled() => continue,
                Some(Err(err)) => Err(err.to_string()),
            };
            match fetched {
                Ok(value) => {
                    self.seen = true;
                    return value;
                }
                Err(err) if !self.seen => {
                    tracing::debug!("no pillar for {} yet ({err}); asking again", self.what);
                    self.after(self.retry);
                }
                Err(err) => {
                    tracing::warn!("the pillar for {} was not read again: {err}", self.what)
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use super::*;

    /// The log lines written while the guard lives (on this thread: tests run on one).
    #[derive(Clone, Default)]
    struct Logs(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Logs {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }

        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Logs {
        fn capture() -> (Self, tracing::subscriber::DefaultGuard) {
            let logs = Logs::default();
            let writer = logs.clone();
            let subscriber = tracing_subscriber::fmt()
                .with_ansi(false)
                .with_writer(move || writer.clone())
                .finish();
            (logs, tracing::subscriber::set_default(subscriber))
        }

        fn text(&self) -> String {
            String::from_utf8_lossy(&self.0.lock().unwrap()).into_owned()
        }
    }

    /// What the services saw, in order.
    #[derive(Clone, Default)]
    struct Journal(Arc<Mutex<Vec<&'static str>>>);

    impl Journal {
        fn note(&self, what: &'static str) {
            self.0.lock().unwrap().push(what);
        }

        fn read(&self) -> Vec<&'static str> {
            self.0.lock().unwrap().clone()
        }
    }

    #[tokio::test(start_paused = true)]
    async fn stages_stop_in_order_each_once_the_one_before_has_stopped() {
        let journal = Journal::default();
        let mut services = Services::new();
        // Registered out of order: the stage decides, not the registration.
        let seen = journal.clone();
        services.spawn_essential("bus", Stage::Bus, |stop| async move {
            stop.cancelled().await;
            seen.note("bus asked");
        });
        let seen = journal.clone();
        services.spawn("sessions", Stage::Sessions, |stop| async move {
            stop.cancelled().await;
            seen.note("sessions asked");
            tokio::time::sleep(Duration::from_secs(1)).await;
            seen.note("sessions done");
        });
        let seen = journal.clone();
        services.spawn("reactor", Stage::Reactions, |stop| async move {
            stop.cancelled().await;
            seen.note("reactor asked");
            tokio::time::sleep(Duration::from_secs(2)).await;
            seen.note("reactor done");
        });
        let shutdown = CancellationToken::new();
        let start = Instant::now();
        shutdown.cancel();
        services.run(&shutdown).await.unwrap();
        assert_eq!(
            journal.read(),
            [
                "reactor asked",
                "reactor done",
                "sessions asked",
                "sessions done",
                "bus asked"
            ]
        );
        assert_eq!(start.elapsed(), Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn a_service_that_does_not_stop_in_time_is_named_and_aborted_and_the_next_stage_stops() {
        let (logs, _guard) = Logs::capture();
        let journal = Journal::default();
        let mut services = Services::new();
        let dropped = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let flag = dropped.clone();
        services.spawn("stuck", Stage::Sessions, |_stop| async move {
            let _dropped = DropFlag(flag);
            std::future::pending::<()>().await;
        });
        let seen = journal.clone();
        services.spawn("prompt", Stage::Sessions, |stop| async move {
            stop.cancelled().await;
            seen.note("prompt stopped");
        });
        let seen = journal.clone();
        services.spawn_essential("bus", Stage::Bus, |stop| async move {
            stop.cancelled().await;
            seen.note("bus asked");
        });
        let shutdown = CancellationToken::new();
        let start = Instant::now();
        shutdown.cancel();
        services.run(&shutdown).await.unwrap();
        assert_eq!(journal.read(), ["prompt stopped", "bus asked"]);
        assert_eq!(start.elapsed(), Stage::Sessions.drain_timeout());
        tokio::task::yield_now().await;
        assert!(dropped.load(std::sync::atomic::Ordering::SeqCst));
        let text = logs.text();
        assert!(
            text.contains("the stuck service did not stop within 5s; stopping without it"),
            "{text}"
        );
        assert!(!text.contains("prompt"), "{text}");
    }

    struct DropFlag(Arc<std::sync::atomic::AtomicBool>);

    impl Drop for DropFlag {
        fn drop(&mut self) {
            self.0.store(true, std::sync::atomic::Ordering::SeqCst);
        }
    }

    #[tokio::test(start_paused = true)]
    async fn an_ordinary_service_that_ends_or_panics_is_logged_by_name_and_the_daemon_runs_on() {
        let (logs, _guard) = Logs::capture();
        let mut services = Services::new();
        services.spawn("early", Stage::Sessions, |_stop| async {});
        services.spawn("crash", Stage::Reactions, |_stop| async {
            tokio::time::sleep(Duration::from_secs(1)).await;
            panic!("boom");
        });
        services.spawn_essential("bus", Stage::Bus, |stop| async move {
            stop.cancelled().await;
        });
        let shutdown = CancellationToken::new();
        let running = tokio::spawn({
            let shutdown = shutdown.clone();
            async move { services.run(&shutdown).await }
        });
        tokio::time::sleep(Duration::from_secs(3600)).await;
        assert!(!running.is_finished());
        let text = logs.text();
        assert!(
            text.contains("ERROR")
                && text
                    .contains("the early service ended on its own; the daemon runs on without it"),
            "{text}"
        );
        assert!(
            text.contains("the crash service panicked: boom; the daemon runs on without it"),
            "{text}"
        );
        shutdown.cancel();
        running.await.unwrap().unwrap();
    }

    #[tokio::test(start_paused = true)]
    async fn an_essential_service_that_ends_stops_the_daemon_in_order_and_fails_it() {
        let (logs, _guard) = Logs::capture();
        let journal = Journal::default();
        let mut services = Services::new();
        services.spawn_essential("bus", Stage::Bus, |_stop| async {
            tokio::time::sleep(Duration::from_secs(1)).await;
        });
        let seen = journal.clone();
        services.spawn("sessions", Stage::Sessions, |stop| async move {
            stop.cancelled().await;
            seen.note("sessions asked");
        });
        let shutdown = CancellationToken::new();
        let failed = services.run(&shutdown).await.unwrap_err();
        assert_eq!(failed.service, "bus");
        assert_eq!(
            failed.to_string(),
            "the bus service ended on its own, so the daemon stopped"
        );
        assert_eq!(journal.read(), ["sessions asked"]);
        let text = logs.text();
        assert!(
            text.contains("the bus service ended on its own; the daemon stops"),
            "{text}"
        );
    }

    #[tokio::test(start_paused = true)]
    async fn an_essential_service_that_panics_while_stopping_fails_the_daemon() {
        let mut services = Services::new();
        services.spawn_essential("bus", Stage::Bus, |stop| async move {
            stop.cancelled().await;
            panic!("lost");
        });
        let shutdown = CancellationToken::new();
        shutdown.cancel();
        let failed = services.run(&shutdown).await.unwrap_err();
        assert_eq!(failed.service, "bus");
        assert_eq!(failed.reason, "panicked: lost");
    }

    #[tokio::test(start_paused = true)]
    async fn a_service_that_asks_the_daemon_to_stop_and_ends_is_no_fault() {
        let (logs, _guard) = Logs::capture();
        let journal = Journal::default();
        let shutdown = CancellationToken::new();
        let mut services = Services::new();
        let daemon = shutdown.clone();
        services.spawn_essential("link", Stage::Sessions, |_stop| async move {
            tokio::time::sleep(Duration::from_secs(1)).await;
            daemon.cancel();
        });
        let seen = journal.clone();
        services.spawn("reactor", Stage::Reactions, |stop| async move {
            stop.cancelled().await;
            seen.note("reactor asked");
        });
        services.run(&shutdown).await.unwrap();
        assert_eq!(journal.read(), ["reactor asked"]);
        assert_eq!(logs.text(), "");
    }
}
