//! systemd's service notifications (`sd_notify`), for units of `Type=notify`: `READY=1` once a
//! daemon's sockets are bound, `STOPPING=1` when it begins to stop, and `WATCHDOG=1` at half the
//! interval when the unit sets `WatchdogSec=`. Without `NOTIFY_SOCKET` (not started by systemd)
//! each is a no-op.

use std::time::Duration;

use sd_notify::NotifyState;

/// Tells the service manager the daemon is ready: its sockets are bound and listening, so
/// whatever starts after it can connect.
pub(crate) fn ready() {
    send(&[NotifyState::Ready]);
}

/// Tells the service manager the daemon is stopping.
pub(crate) fn stopping() {
    send(&[NotifyState::Stopping]);
}

/// Pings the service manager's watchdog at half the interval it asks for, forever; returns at
/// once when it asks for none (`WATCHDOG_USEC` unset, or set for another process).
pub(crate) async fn watchdog() {
    let Some(interval) = sd_notify::watchdog_enabled() else {
        return;
    };
    let mut ticks = tokio::time::interval((interval / 2).max(Duration::from_millis(1)));
    ticks.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        ticks.tick().await;
        send(&[NotifyState::Watchdog]);
    }
}

fn send(states: &[NotifyState]) {
    if let Err(err) = sd_notify::notify(states) {
        // The service manager then acts on its timeouts; the daemon itself is fine.
        tracing::warn!("cannot notify the service manager (NOTIFY_SOCKET): {err}");
    }
}
