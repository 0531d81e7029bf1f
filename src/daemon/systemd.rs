//! systemd notifications (`Type=notify`): READY, STATUS, WATCHDOG and
//! STOPPING. Without `NOTIFY_SOCKET` (not under systemd) each is a no-op;
//! a failed send is logged, never fatal.

use std::time::Duration;

use sd_notify::NotifyState;

fn send(state: &[NotifyState<'_>]) {
    if let Err(e) = sd_notify::notify(state) {
        tracing::warn!(error = %e, "cannot notify systemd");
    }
}

/// The daemon is ready: ledger open, schedule running.
pub fn ready(status: &str) {
    send(&[NotifyState::Ready, NotifyState::Status(status)]);
}

/// A one-line status for `systemctl status`.
pub fn status(status: &str) {
    send(&[NotifyState::Status(status)]);
}

/// The daemon is alive (sent only after a passing health check).
pub fn watchdog() {
    send(&[NotifyState::Watchdog]);
}

/// The daemon is shutting down.
pub fn stopping() {
    send(&[NotifyState::Stopping, NotifyState::Status("stopping")]);
}

/// How often to ping the watchdog: half its timeout, if systemd set one.
pub fn watchdog_interval() -> Option<Duration> {
    sd_notify::watchdog_enabled().map(|timeout| timeout / 2)
}
