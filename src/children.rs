//! The long-running commands a daemon starts and keeps (a beacon's `journalctl --follow` or
//! `script`, the `command` returner's program): each started without a shell in a process group
//! of its own, noticed when it ends (by its exit, even while a process it left behind holds its
//! pipes), started again with a growing delay, and killed with its whole group when its owner is
//! done with it.
//!
//! The kernel kills each command when the daemon dies, even by SIGKILL (a parent-death signal).
//! That signal follows the thread that started the command, and the blocking pool's threads come
//! and go: so one thread, living as long as the process, starts every command. What a command
//! starts itself is not killed that way (only by the group kill of an orderly stop), and what it
//! moves to a session of its own (`setsid`) escapes the group kill too: that is its own business.

use std::os::unix::process::CommandExt;
use std::process::{Child, Command};
use std::sync::mpsc::{SyncSender, sync_channel};
use std::sync::{Mutex, PoisonError};
use std::time::{Duration, Instant};

use nix::errno::Errno;
use nix::sys::signal::{Signal, killpg};
use nix::sys::wait::{Id, WaitPidFlag, WaitStatus, waitid};
use nix::unistd::{Pid, getpid, getppid};

/// The first delay before a command that ended is started again; it doubles each time.
const BACKOFF_MIN: Duration = Duration::from_secs(1);
/// The longest delay; a command that ran this long starts the next one at [`BACKOFF_MIN`].
const BACKOFF_MAX: Duration = Duration::from_secs(60);
/// Commands waiting for the thread that starts them (a caller waits while it is full).
const SPAWNS: usize = 16;

/// Starts `command` in a process group of its own, to be killed with the daemon (see the
/// module's documentation); its stdio are the caller's to set.
pub(crate) fn spawn(mut command: Command) -> std::io::Result<Child> {
    command.process_group(0);
    dies_with_us(&mut command);
    let gone = || std::io::Error::other("the thread that starts commands is gone");
    let spawner = {
        let mut spawner = SPAWNER.lock().unwrap_or_else(PoisonError::into_inner);
        match &*spawner {
            Some(spawner) => spawner.clone(),
            None => {
                let (send, requests) = sync_channel::<Spawn>(SPAWNS);
                // Never ends: [`SPAWNER`] keeps its queue open.
                std::thread::Builder::new()
                    .name("command spawner".into())
                    .spawn(move || {
                        for (mut command, reply) in requests {
                            let _ = reply.send(command.spawn());
                        }
                    })?;
                spawner.insert(send).clone()
            }
        }
    };
    let (reply, answer) = sync_channel(1);
    spawner.send((command, reply)).map_err(|_| gone())?;
    answer.recv().map_err(|_| gone())?
}

type Spawn = (Command, SyncSender<std::io::Result<Child>>);

/// The queue of the thread that starts every command (see the module's documentation).
static SPAWNER: Mutex<Option<SyncSender<Spawn>>> = Mutex::new(None);

/// Has the kernel kill the command when its parent dies: the thread of [`spawn`], so the
/// process that started it, however it dies.
#[allow(unsafe_code)]
fn dies_with_us(command: &mut Command) {
    let parent = getpid();
    // SAFETY: between fork and exec, the closure only makes two system calls (prctl, getppid),
    // which are async-signal-safe, and allocates nothing.
    unsafe {
        command.pre_exec(move || {
            nix::sys::prctl::set_pdeathsig(Signal::SIGKILL)?;
            // The parent died before the signal was asked for.
            if getppid() != parent {
                return Err(Errno::ESRCH.into());
            }
            Ok(())
        });
    }
}

/// Whether the command exited (not reaped yet: until then its pid, and so its group's, cannot
/// be taken by another process).
pub(crate) fn exited(child: &Child) -> bool {
    let Ok(pid) = i32::try_from(child.id()) else {
        return false;
    };
    let flags = WaitPidFlag::WEXITED | WaitPidFlag::WNOHANG | WaitPidFlag::WNOWAIT;
    match waitid(Id::Pid(Pid::from_raw(pid)), flags) {
        Ok(status) => status != WaitStatus::StillAlive,
        Err(err) => err == Errno::ECHILD,
    }
}

/// Kills the command's process group: the command and what it started with it.
pub(crate) fn kill(child: &Child) {
    if let Some(group) = group(child.id()) {
        let _ = killpg(group, Signal::SIGKILL);
    }
}

/// The process group a command started as `pid` leads, if it can be one: `killpg` takes 0 for
/// the caller's own group (the daemon's), 1 is init's, and a pid beyond `pid_t` names none.
pub(crate) fn group(pid: u32) -> Option<Pid> {
    i32::try_from(pid)
        .ok()
        .filter(|pid| *pid > 1)
        .map(Pid::from_raw)
}

/// Reaps a killed command without holding up the thread that drops it (a runtime's thread must
/// not wait): on the blocking pool when there is a runtime.
pub(crate) fn reap(mut child: Child) {
    if let Ok(Some(_)) = child.try_wait() {
        return;
    }
    match tokio::runtime::Handle::try_current() {
        // Ends as soon as the killed command is gone; the runtime waits for it at its end.
        Ok(runtime) => drop(runtime.spawn_blocking(move || child.wait())),
        Err(_) => {
            let _ = child.wait();
        }
    }
}

/// When a command that ended may start again: after 1 s, then 2 s, 4 s… up to a minute; a
/// command that ran a minute or more starts again after 1 s.
#[derive(Debug)]
pub(crate) struct Restarts {
    /// The delay before the next start after an end.
    backoff: Duration,
    /// When the command may start again.
    not_before: Option<Instant>,
}

impl Restarts {
    /// A command not started yet, free to start.
    pub(crate) fn new() -> Self {
        Self {
            backoff: BACKOFF_MIN,
            not_before: None,
        }
    }

    /// Schedules the next start after a run that began at `started`.
    pub(crate) fn ended(&mut self, started: Instant) {
        if started.elapsed() >= BACKOFF_MAX {
            self.backoff = BACKOFF_MIN;
        }
        self.not_before = Some(Instant::now() + self.backoff);
        self.backoff = (self.backoff * 2).min(BACKOFF_MAX);
    }

    /// How long until the command may start again; zero when it may now.
    pub(crate) fn wait(&self) -> Duration {
        self.not_before.map_or(Duration::ZERO, |at| {
            at.saturating_duration_since(Instant::now())
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn process_groups_are_never_the_daemons_own_or_inits() {
        assert_eq!(group(4242), Some(Pid::from_raw(4242)));
        for pid in [0, 1, 1 << 31, u32::MAX] {
            assert_eq!(group(pid), None, "{pid}");
        }
    }

    #[test]
    fn restarts_wait_longer_each_time_up_to_a_minute() {
        let mut restarts = Restarts::new();
        assert_eq!(restarts.wait(), Duration::ZERO);
        let mut waits = Vec::new();
        for _ in 0..8 {
            restarts.ended(Instant::now());
            waits.push(restarts.wait().as_secs_f64().round() as u64);
        }
        assert_eq!(waits, [1, 2, 4, 8, 16, 32, 60, 60]);
        let long_ago = Instant::now() - BACKOFF_MAX;
        restarts.ended(long_ago);
        assert_eq!(restarts.wait().as_secs_f64().round() as u64, 1);
    }
}
