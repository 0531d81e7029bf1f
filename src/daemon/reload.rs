//! SIGHUP: re-read the config. Meetings, discovery, the re-check period,
//! the schedule and the number of workers change in place without dropping
//! transfers; other changes are logged as needing a restart. A config that
//! does not load is refused with the reason and the old one stays.

use std::path::Path;
use std::sync::Arc;

use crate::config::Config;
use crate::poll::PollPlan;
use crate::pool::WorkerSet;
use crate::schedule::Schedule;
use crate::server::Health;

use super::poller::Poller;

/// The parts of the running daemon a reload may change.
pub struct Parts<'a> {
    /// Runs polls.
    pub poller: &'a Arc<Poller>,
    /// The schedule.
    pub schedule: &'a mut Schedule,
    /// The workers.
    pub workers: &'a mut WorkerSet,
    /// Health, which watches the schedule.
    pub health: &'a Health,
}

/// Applies the config at `path` to the running daemon.
pub async fn reload(path: &Path, current: &mut Config, parts: &mut Parts<'_>) {
    let new = match Config::load(path) {
        Ok(config) => config,
        Err(e) => {
            tracing::error!(error = %e, "config reload refused; the daemon keeps running on the previous config");
            return;
        }
    };
    for section in restart_only_changes(current, &new) {
        tracing::warn!(
            section,
            "changed in the config file; takes effect after a restart"
        );
    }
    if new.poll.schedule != parts.schedule.expression() {
        match parts
            .schedule
            .replace(&new.poll.schedule, parts.poller.tick())
            .await
        {
            Ok(()) => parts.health.watch(parts.schedule.liveness()),
            Err(e) => tracing::error!(error = %e, "keeping the previous schedule"),
        }
    }
    if new.download.workers != parts.workers.len() {
        parts.workers.resize(new.download.workers);
    }
    parts.poller.set_plan(PollPlan::from(&new.poll));
    current.poll = new.poll;
    current.download.workers = new.download.workers;
    tracing::info!(
        meetings = current.poll.meetings.len(),
        schedule = %parts.schedule.expression(),
        workers = parts.workers.len(),
        "config reloaded"
    );
    parts.poller.trigger();
}

/// Sections that differ in ways a reload does not apply.
fn restart_only_changes(old: &Config, new: &Config) -> Vec<&'static str> {
    let mut changed = Vec::new();
    let (a, b) = (&old.cloud, &new.cloud);
    if a.api_base != b.api_base
        || a.request_timeout != b.request_timeout
        || a.max_retries != b.max_retries
        || a.retry_base != b.retry_base
        || a.retry_max != b.retry_max
        || a.auth_source != b.auth_source
    {
        changed.push("cloud");
    }
    let mut download = new.download.clone();
    download.workers = old.download.workers;
    if download != old.download {
        changed.push("download");
    }
    if old.ledger != new.ledger {
        changed.push("ledger");
    }
    if old.tls != new.tls {
        changed.push("tls");
    }
    if old.server != new.server {
        changed.push("server");
    }
    if old.log != new.log {
        changed.push("log");
    }
    changed
}
