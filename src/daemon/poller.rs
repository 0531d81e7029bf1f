//! Runs polls for the daemon, one at a time: a tick that finds the previous
//! poll still running is skipped and logged, a failed poll is logged and
//! the schedule goes on.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};

use tracing::Instrument;

use crate::engine::Engine;
use crate::ledger::now_ms;
use crate::notify;
use crate::poll::PollPlan;
use crate::schedule::Tick;

/// The daemon's poll runner.
pub struct Poller {
    engine: Arc<Engine>,
    plan: RwLock<PollPlan>,
    running: AtomicBool,
    task: Mutex<Option<tokio::task::JoinHandle<()>>>,
    runtime: tokio::runtime::Handle,
}

/// Clears `running` however the poll task ends (even by panic or abort).
struct Running(Arc<Poller>);

impl Drop for Running {
    fn drop(&mut self) {
        self.0.running.store(false, Ordering::SeqCst);
    }
}

impl Poller {
    /// A poller for `engine` with `plan`; call from inside the runtime.
    pub fn new(engine: Arc<Engine>, plan: PollPlan) -> Arc<Poller> {
        Arc::new(Poller {
            engine,
            plan: RwLock::new(plan),
            running: AtomicBool::new(false),
            task: Mutex::new(None),
            runtime: tokio::runtime::Handle::current(),
        })
    }

    /// Replaces what is polled (on reload); the next poll uses it.
    pub fn set_plan(&self, plan: PollPlan) {
        *self.plan.write().unwrap_or_else(|e| e.into_inner()) = plan;
    }

    /// The schedule's tick: start a poll unless one is running.
    pub fn tick(self: &Arc<Self>) -> Tick {
        let this = Arc::clone(self);
        Arc::new(move || this.trigger())
    }

    /// Starts a poll now unless one is running.
    pub fn trigger(self: &Arc<Self>) {
        if self.running.swap(true, Ordering::SeqCst) {
            tracing::info!("the previous poll is still running; skipping this tick");
            self.engine
                .metrics
                .poll("skipped", now_ms() as f64 / 1000.0);
            return;
        }
        let guard = Running(Arc::clone(self));
        let plan = self.plan.read().unwrap_or_else(|e| e.into_inner()).clone();
        let engine = Arc::clone(&self.engine);
        let span = tracing::info_span!("poll_run", meetings = plan.meetings.len());
        let task = self.runtime.spawn(
            async move {
                let _guard = guard;
                let report = engine.poll(&plan).await;
                if report.errors.is_empty() {
                    tracing::info!(
                        listed = report.meetings,
                        new_files = report.new_files,
                        not_ready = report.not_ready.len(),
                        settled = report.settled,
                        "poll done"
                    );
                } else {
                    tracing::error!(
                        failed = report.errors.len(),
                        listed = report.meetings,
                        "poll done with errors"
                    );
                }
                notify::status(&super::status_line(&engine).await);
            }
            .instrument(span),
        );
        *self.task.lock().unwrap_or_else(|e| e.into_inner()) = Some(task);
    }

    /// Aborts a running poll (shutdown): the ledger's transactions keep it
    /// consistent wherever the poll stops.
    pub fn stop(&self) {
        if let Some(task) = self.task.lock().unwrap_or_else(|e| e.into_inner()).take() {
            task.abort();
        }
    }
}
