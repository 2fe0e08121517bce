//! The jobs a minion runs now: the registry `saltutil.running` and `saltutil.find_job` read, and
//! the signals `saltutil.kill_job`, `saltutil.term_job` and `saltutil.signal_job` send.
//!
//! Salt runs each job in a process of its own and signals that process and its children. Here a
//! job is a task of the minion daemon, and each command it runs (`cmd.*`, and the programs behind
//! `pkg.*`, `service.*`, `user.*`) is a process group of its own, which the job holds while the
//! command runs. A signal goes to those groups; one whose default action ends a process ends the
//! job too, at once and without a return, as Salt's ended process sends none. Its commands get
//! [`GRACE`] to act on a signal they may catch, then SIGKILL, so none outlives the job.

use std::future::Future;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::unistd::Pid;
use tokio_util::sync::CancellationToken;

use super::{Call, Context, FunctionError, Job, Outcome, bind};
use crate::event::Value;
use crate::py::value::py_str;
use crate::signature::Signature;

/// How long the commands of a job ended by a signal they may catch (SIGTERM, say) have to exit
/// before they are killed.
const GRACE: Duration = Duration::from_secs(5);

/// How often the commands of an ended job are looked at during [`GRACE`].
const GRACE_POLL: Duration = Duration::from_millis(50);

/// Jobs a minion is running now, for `saltutil.*` and the state engine.
#[derive(Debug, Clone, Default)]
pub struct RunningJobs(Arc<Mutex<Vec<Entry>>>);

#[derive(Debug, Clone)]
struct Entry {
    job: Job,
    control: Arc<Control>,
}

/// What signals act on in a running job.
#[derive(Debug, Default)]
struct Control {
    /// The process groups of the commands the job runs now; none joins once `stop` is
    /// cancelled. `stop` and `graceful` change, and are read by a command's group, under this
    /// lock: see [`Control::end`].
    groups: Mutex<Vec<Pid>>,
    /// Cancelled when a signal ends the job.
    stop: CancellationToken,
    /// Set, before `stop`, when the signal that ends the job may be caught: its commands are
    /// then given [`GRACE`] instead of being killed as the job lets go of them.
    graceful: AtomicBool,
}

impl Control {
    fn groups(&self) -> Vec<Pid> {
        self.groups.lock().expect("not poisoned").clone()
    }

    /// Stops the job, its commands to be given [`GRACE`] if `graceful`, and returns the groups
    /// of those it runs. In one step under the groups' lock, so that no command escapes: one
    /// that starts or is let go of meanwhile is either among them, or killed as the job lets
    /// go of it (see [`CommandGroup`]).
    fn end(&self, graceful: bool) -> Vec<Pid> {
        let groups = self.groups.lock().expect("not poisoned");
        self.graceful.store(graceful, Ordering::SeqCst);
        self.stop.cancel();
        groups.clone()
    }
}

tokio::task_local! {
    /// The job this task runs, for the commands it starts.
    static CURRENT: Arc<Control>;
}

impl RunningJobs {
    /// Records a job as running until the guard is dropped; [`RunningGuard::run`] runs its work
    /// where signals reach it.
    pub fn enter(&self, job: Job) -> RunningGuard {
        let control = Arc::new(Control::default());
        self.0.lock().expect("not poisoned").push(Entry {
            job,
            control: control.clone(),
        });
        RunningGuard {
            jobs: self.clone(),
            control,
        }
    }

    /// Whether a `state.*` job is running (beacons pause for it under
    /// `disable_during_state_run`).
    pub fn state_running(&self) -> bool {
        self.0.lock().expect("not poisoned").iter().any(|entry| {
            crate::event::map_get(&entry.job.load, "fun")
                .and_then(Value::as_str)
                .is_some_and(|fun| fun.starts_with("state."))
        })
    }

    /// The jobs running now.
    pub(super) fn snapshot(&self) -> Vec<Job> {
        let jobs = self.0.lock().expect("not poisoned");
        jobs.iter().map(|entry| entry.job.clone()).collect()
    }

    fn find(&self, jid: &str) -> Option<Entry> {
        let jobs = self.0.lock().expect("not poisoned");
        jobs.iter().find(|entry| entry.job.jid == jid).cloned()
    }

    fn remove(&self, control: &Arc<Control>) {
        let mut jobs = self.0.lock().expect("not poisoned");
        jobs.retain(|entry| !Arc::ptr_eq(&entry.control, control));
    }
}

/// Keeps a job in [`RunningJobs`] while alive.
#[derive(Debug)]
pub struct RunningGuard {
    jobs: RunningJobs,
    control: Arc<Control>,
}

impl RunningGuard {
    /// Runs the job's work where `saltutil.*_job` reach it and the commands it starts; `None`
    /// when a signal ended it, and the job sends no return.
    pub async fn run<F: Future>(&self, work: F) -> Option<F::Output> {
        let stop = self.control.stop.clone();
        CURRENT
            .scope(self.control.clone(), async move {
                tokio::select! {
                    biased;
                    () = stop.cancelled() => None,
                    output = work => Some(output),
                }
            })
            .await
    }
}

impl Drop for RunningGuard {
    fn drop(&mut self) {
        self.jobs.remove(&self.control);
    }
}

/// A command's process group, which the job running the command holds until the command has
/// ended: signals to the job reach it, and dropped before (the job was stopped), it is killed.
#[derive(Debug)]
pub(crate) struct CommandGroup {
    /// None when `pid` cannot name a command's group (see [`crate::children::group`]).
    pgid: Option<Pid>,
    job: Option<Arc<Control>>,
    ended: bool,
}

impl CommandGroup {
    /// Holds the group led by `pid` for the job of this task, if it runs for one. A job
    /// already stopped holds it no more: the command is killed as it is let go of, with the
    /// stopped job's work.
    pub(crate) fn hold(pid: u32) -> Self {
        let pgid = crate::children::group(pid);
        let job = CURRENT.try_with(Arc::clone).ok().filter(|job| {
            let mut groups = job.groups.lock().expect("not poisoned");
            let running = !job.stop.is_cancelled();
            if running {
                groups.extend(pgid);
            }
            running
        });
        Self {
            pgid,
            job,
            ended: false,
        }
    }

    /// Kills the group: the command and what it started.
    pub(crate) fn kill(&self) {
        if let Some(pgid) = self.pgid {
            let _ = killpg(pgid, Signal::SIGKILL);
        }
    }

    /// The command has ended and been reaped: its group id may name another process soon, so
    /// it is signalled no more.
    pub(crate) fn ended(mut self) {
        self.ended = true;
    }
}

impl Drop for CommandGroup {
    fn drop(&mut self) {
        let mut graceful = false;
        if let Some(job) = &self.job {
            let mut groups = job.groups.lock().expect("not poisoned");
            groups.retain(|group| Some(*group) != self.pgid);
            // Read under the lock: see [`Control::end`].
            graceful = job.graceful.load(Ordering::SeqCst);
        }
        // The signal's sender gives the group its grace and kills what is left.
        if !self.ended && !graceful {
            self.kill();
        }
    }
}

pub(super) const FIND_JOB: Signature = Signature {
    name: "saltutil.find_job",
    summary: "The job with this jid if this minion runs it, else {}",
    params: &["jid"],
    required: 1,
    kwargs: false,
    usage: "saltutil.find_job JID",
};

/// A running job as `saltutil.find_job` and `saltutil.running` show it: the publish load with
/// the pid of the minion running it first.
fn job_info(job: &Job) -> Value {
    let mut entries = vec![(Value::from("pid"), Value::from(std::process::id()))];
    if let Value::Map(load) = &job.load {
        entries.extend(load.iter().cloned());
    }
    Value::Map(entries)
}

/// The `jid` argument as text (the command line may have read it as a number).
fn jid_argument(
    call: &Call,
    signature: &Signature,
) -> Result<(String, super::Bound), FunctionError> {
    let bound = bind(call, signature)?;
    let jid = bound
        .get("jid")
        .map(|jid| py_str(jid).into_owned())
        .unwrap_or_default();
    Ok((jid, bound))
}

pub(super) fn find_job(call: &Call, ctx: &Context) -> Result<Outcome, FunctionError> {
    let (jid, _) = jid_argument(call, &FIND_JOB)?;
    let found = ctx
        .running
        .find(&jid)
        .map(|entry| job_info(&entry.job))
        .unwrap_or_else(|| Value::Map(Vec::new()));
    Ok(Outcome::ok(found))
}

pub(super) const RUNNING: Signature = Signature {
    name: "saltutil.running",
    summary: "The jobs this minion runs now, other than this one",
    params: &[],
    required: 0,
    kwargs: false,
    usage: "saltutil.running",
};

pub(super) fn running(ctx: &Context) -> Outcome {
    let own = ctx.job.as_ref().map(|job| job.jid.as_str());
    let jobs = ctx
        .running
        .snapshot()
        .iter()
        .filter(|job| Some(job.jid.as_str()) != own)
        .map(job_info)
        .collect();
    Outcome::ok(Value::Array(jobs))
}

pub(super) const KILL_JOB: Signature = Signature {
    name: "saltutil.kill_job",
    summary: "Ends a running job and kills its commands (SIGKILL); '' when no such job runs",
    params: &["jid"],
    required: 1,
    kwargs: false,
    usage: "saltutil.kill_job JID",
};

pub(super) const TERM_JOB: Signature = Signature {
    name: "saltutil.term_job",
    summary: "Ends a running job and sends its commands SIGTERM (SIGKILL 5 s later); '' when no such job runs",
    params: &["jid"],
    required: 1,
    kwargs: false,
    usage: "saltutil.term_job JID",
};

pub(super) const SIGNAL_JOB: Signature = Signature {
    name: "saltutil.signal_job",
    summary: "Sends a signal (number or name) to a running job's commands; one that ends a process ends the job",
    params: &["jid", "sig"],
    required: 2,
    kwargs: false,
    usage: "saltutil.signal_job JID SIGNAL",
};

/// `saltutil.kill_job` and `saltutil.term_job`: `signal_job` with their signal.
pub(super) async fn send_fixed(
    call: &Call,
    ctx: &Context,
    signature: &Signature,
    signal: Signal,
) -> Result<Outcome, FunctionError> {
    let (jid, _) = jid_argument(call, signature)?;
    Ok(send(ctx, &jid, Some(signal)).await)
}

pub(super) async fn signal_job(call: &Call, ctx: &Context) -> Result<Outcome, FunctionError> {
    let (jid, bound) = jid_argument(call, &SIGNAL_JOB)?;
    let signal = bound.get("sig").map(signal).transpose()?.flatten();
    Ok(send(ctx, &jid, signal).await)
}

/// A signal by number (Salt's way: `15`) or by name (`SIGTERM`, `term`); 0 is `None`, which
/// only asks whether the job is there.
fn signal(given: &Value) -> Result<Option<Signal>, FunctionError> {
    let refused = || FunctionError::Arguments {
        fun: SIGNAL_JOB.name.to_owned(),
        problem: format!(
            "{} is not a signal; give a number such as 15 or a name such as SIGTERM",
            crate::py::value::repr(given)
        ),
    };
    let number = match given {
        Value::String(_) => {
            let text = py_str(given).trim().to_ascii_uppercase();
            match text.parse::<i32>() {
                Ok(number) => number,
                Err(_) => {
                    let name = if text.starts_with("SIG") {
                        text
                    } else {
                        format!("SIG{text}")
                    };
                    return name.parse::<Signal>().map(Some).map_err(|_| refused());
                }
            }
        }
        _ => given
            .as_i64()
            .and_then(|number| i32::try_from(number).ok())
            .ok_or_else(refused)?,
    };
    match number {
        0 => Ok(None),
        number => Signal::try_from(number).map(Some).map_err(|_| refused()),
    }
}

/// Whether a process that does not catch `signal` ends by it.
fn ends(signal: Signal) -> bool {
    !matches!(
        signal,
        Signal::SIGSTOP
            | Signal::SIGTSTP
            | Signal::SIGTTIN
            | Signal::SIGTTOU
            | Signal::SIGCONT
            | Signal::SIGCHLD
            | Signal::SIGURG
            | Signal::SIGWINCH
    )
}

/// Sends `signal` to the job `jid`, Salt's answer: what was sent to which job at which pid, or
/// `''` when no such job runs.
async fn send(ctx: &Context, jid: &str, signal: Option<Signal>) -> Outcome {
    let Some(Entry { job, control }) = ctx.running.find(jid) else {
        return Outcome::ok("");
    };
    let ending = signal.filter(|signal| ends(*signal));
    let groups = match ending {
        Some(signal) => {
            // Stopped before its commands are signalled: a command ended by the signal must
            // not let the job go on (to its return, or its next state).
            let groups = control.end(signal != Signal::SIGKILL);
            // No longer listed once this answer is out, whenever the job's task notices.
            ctx.running.remove(&control);
            tracing::info!("job {jid} ended by {signal}: it sends no return");
            groups
        }
        None => control.groups(),
    };
    for group in &groups {
        let _ = killpg(*group, signal);
    }
    if ending.is_some_and(|signal| signal != Signal::SIGKILL) {
        // A stopped command would not see the signal until continued.
        for group in &groups {
            let _ = killpg(*group, Signal::SIGCONT);
        }
        grace(&groups).await;
    }
    Outcome::ok(format!(
        "Signal {} sent to job {} at pid {}",
        signal.map_or(0, |signal| signal as i32),
        job.jid,
        std::process::id()
    ))
}

/// Waits up to [`GRACE`] for the groups to be gone, then kills what is left of them.
async fn grace(groups: &[Pid]) {
    let left = || {
        groups
            .iter()
            .copied()
            .filter(|group| killpg(*group, None) != Err(Errno::ESRCH))
            .collect::<Vec<_>>()
    };
    let deadline = tokio::time::Instant::now() + GRACE;
    while !left().is_empty() && tokio::time::Instant::now() < deadline {
        tokio::time::sleep(GRACE_POLL).await;
    }
    for group in left() {
        let _ = killpg(group, Signal::SIGKILL);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signals_are_read_by_number_or_name_as_salt_numbers_them() {
        let read = |text: &str| signal(&crate::salt_yaml::load(text).unwrap());
        assert_eq!(read("15").unwrap(), Some(Signal::SIGTERM));
        assert_eq!(read("9").unwrap(), Some(Signal::SIGKILL));
        assert_eq!(read("SIGHUP").unwrap(), Some(Signal::SIGHUP));
        assert_eq!(read("term").unwrap(), Some(Signal::SIGTERM));
        assert_eq!(read("'19'").unwrap(), Some(Signal::SIGSTOP));
        assert_eq!(read("0").unwrap(), None);
        for bad in ["999", "-1", "FOO", "1.5", "[15]"] {
            assert!(
                read(bad)
                    .unwrap_err()
                    .to_string()
                    .starts_with("Passed invalid arguments to saltutil.signal_job: "),
                "{bad}"
            );
        }
        assert!(ends(Signal::SIGUSR1) && ends(Signal::SIGKILL) && ends(Signal::SIGINT));
        assert!(!ends(Signal::SIGSTOP) && !ends(Signal::SIGCONT) && !ends(Signal::SIGWINCH));
    }

    /// A job's commands are its to signal only while they run, and a job stopped by a signal
    /// is no longer listed.
    #[tokio::test]
    async fn a_signalled_job_stops_and_is_no_longer_listed() {
        let jobs = RunningJobs::default();
        let job = Job {
            jid: "20261203000000000001".into(),
            load: Value::Map(Vec::new()),
        };
        let guard = jobs.enter(job);
        let control = guard.control.clone();
        let work = guard.run(async {
            let held = CommandGroup::hold(1_000_000);
            assert_eq!(CURRENT.with(|job| job.groups()), [Pid::from_raw(1_000_000)]);
            held.ended();
            assert!(CURRENT.with(|job| job.groups()).is_empty());
            std::future::pending::<()>().await;
        });
        let stopper = async {
            tokio::task::yield_now().await;
            control.stop.cancel();
        };
        let (outcome, ()) = tokio::join!(work, stopper);
        assert_eq!(outcome, None);
        drop(guard);
        assert!(jobs.snapshot().is_empty());
    }

    /// Beyond Linux's highest pid: a group no process leads.
    const NO_GROUP: u32 = 1 << 22;

    fn job(jobs: &RunningJobs) -> (RunningGuard, Arc<Control>) {
        let guard = jobs.enter(Job {
            jid: "20261203000000000002".into(),
            load: Value::Map(Vec::new()),
        });
        let control = guard.control.clone();
        (guard, control)
    }

    /// Regression: the groups were read before the job was stopped, so a command started in
    /// between was neither signalled nor killed when its job let go of it.
    #[test]
    fn a_command_started_as_its_job_is_stopped_is_signalled_or_killed() {
        use std::os::unix::process::{CommandExt, ExitStatusExt};
        let jobs = RunningJobs::default();
        let (_guard, control) = job(&jobs);
        let held = CURRENT.sync_scope(control.clone(), || CommandGroup::hold(NO_GROUP));
        let no_group = Pid::from_raw(NO_GROUP as i32);
        assert_eq!(control.end(true), [no_group], "the sender's to signal");
        drop(held);
        let mut late = std::process::Command::new("sleep")
            .arg("30")
            .process_group(0)
            .spawn()
            .unwrap();
        let group = CURRENT.sync_scope(control.clone(), || CommandGroup::hold(late.id()));
        let held = control.groups();
        drop(group);
        let deadline = std::time::Instant::now() + Duration::from_secs(5);
        let status = loop {
            if let Some(status) = late.try_wait().unwrap() {
                break Some(status);
            }
            if std::time::Instant::now() > deadline {
                let _ = late.kill();
                let _ = late.wait();
                break None;
            }
            std::thread::sleep(Duration::from_millis(10));
        };
        assert_eq!(status.and_then(|status| status.signal()), Some(9));
        assert!(held.is_empty(), "a stopped job holds no group: {held:?}");
    }

    /// `killpg` takes 0 for the minion's own group: a pid that names no command's group is
    /// never held, so never signalled.
    #[test]
    fn a_pid_that_names_no_command_group_is_never_held() {
        let jobs = RunningJobs::default();
        let (_guard, control) = job(&jobs);
        for pid in [0, 1, u32::MAX] {
            CURRENT
                .sync_scope(control.clone(), || CommandGroup::hold(pid))
                .ended();
        }
        assert!(control.end(true).is_empty());
    }
}
