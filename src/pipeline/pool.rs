//! The worker pool: `download.workers` tasks, each a loop around
//! [`Engine::process_next`]. Idle workers wait on the engine's `Notify` (or
//! the next backoff deadline), never on a polling sleep. Concurrency is
//! decided here and nowhere else.

use std::sync::Arc;
use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use crate::clock::Millis;
use crate::pipeline::Outcome;
use crate::pipeline::{Engine, EngineError};
use crate::telemetry::error_chain;

/// When the pool stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopWhen {
    /// When nothing is pending or downloading (`sync`): backoffs are waited out.
    Drained,
    /// Only on cancellation (the daemon).
    Cancelled,
}

/// Runs `workers` workers until `stop` says so or `cancel` fires. Returns
/// the first error that stopped a worker (or a worker's panic), if any.
pub async fn run_pool(
    engine: Arc<Engine>,
    workers: usize,
    cancel: CancellationToken,
    stop: StopWhen,
) -> Result<(), EngineError> {
    let tracker = TaskTracker::new();
    let mut handles = Vec::new();
    for n in 0..workers.max(1) {
        let (engine, cancel) = (Arc::clone(&engine), cancel.clone());
        let span = tracing::info_span!("worker", n);
        let retire = CancellationToken::new();
        handles.push(tracker.spawn(worker_loop(engine, cancel, retire, stop).instrument(span)));
    }
    tracker.close();
    let mut first_error = None;
    for handle in handles {
        match handle.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                first_error.get_or_insert(e);
            }
            Err(e) => {
                first_error.get_or_insert(EngineError::WorkerDied(e));
            }
        }
    }
    first_error.map_or(Ok(()), Err)
}

/// The daemon's workers: resizable on reload without dropping transfers
/// (a retired worker finishes its current file first).
pub struct WorkerSet {
    engine: Arc<Engine>,
    cancel: CancellationToken,
    tracker: TaskTracker,
    retire: Vec<CancellationToken>,
    spawned: usize,
}

impl WorkerSet {
    /// No workers yet; `cancel` interrupts transfers at a chunk boundary.
    pub fn new(engine: Arc<Engine>, cancel: CancellationToken) -> WorkerSet {
        WorkerSet {
            engine,
            cancel,
            tracker: TaskTracker::new(),
            retire: Vec::new(),
            spawned: 0,
        }
    }

    /// Grows or shrinks to `n` workers.
    pub fn resize(&mut self, n: usize) {
        while self.retire.len() > n {
            if let Some(token) = self.retire.pop() {
                token.cancel();
            }
        }
        while self.retire.len() < n {
            let retire = CancellationToken::new();
            let span = tracing::info_span!("worker", n = self.spawned);
            self.spawned += 1;
            let task = worker_loop(
                Arc::clone(&self.engine),
                self.cancel.clone(),
                retire.clone(),
                StopWhen::Cancelled,
            );
            self.tracker.spawn(
                async move {
                    if let Err(e) = task.await {
                        tracing::error!(error = %error_chain(&e), "worker stopped");
                    }
                }
                .instrument(span),
            );
            self.retire.push(retire);
        }
    }

    /// Workers running (not retired).
    pub fn len(&self) -> usize {
        self.retire.len()
    }

    /// Whether no worker runs.
    pub fn is_empty(&self) -> bool {
        self.retire.is_empty()
    }

    /// Waits up to `timeout` for every worker to return after `cancel`
    /// fired; false if some did not make it in time.
    pub async fn wait(self, timeout: Duration) -> bool {
        self.tracker.close();
        tokio::time::timeout(timeout, self.tracker.wait())
            .await
            .is_ok()
    }
}

async fn worker_loop(
    engine: Arc<Engine>,
    cancel: CancellationToken,
    retire: CancellationToken,
    stop: StopWhen,
) -> Result<(), EngineError> {
    loop {
        if retire.is_cancelled() {
            return Ok(());
        }
        // Registered before looking, so a wake-up between the look and the
        // wait is not lost.
        let woken = engine.wake.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        match engine.process_next(&cancel).await {
            Ok(Outcome::Idle) => {}
            Ok(Outcome::Interrupted) => return Ok(()),
            Ok(_) => continue,
            Err(e) if stop == StopWhen::Drained => return Err(e),
            Err(e) => {
                tracing::error!(error = %error_chain(&e), "worker step failed; pausing");
                tokio::select! {
                    () = cancel.cancelled() => return Ok(()),
                    () = tokio::time::sleep(Duration::from_secs(5)) => continue,
                }
            }
        }
        let (next_due, busy) = engine.ledger.call(|l| l.queue_state()).await?;
        if stop == StopWhen::Drained && next_due.is_none() && busy == 0 {
            engine.wake.notify_waiters();
            return Ok(());
        }
        let wait = next_due.map_or(Duration::from_secs(3600), |due| {
            due.duration_since(Millis::now())
        });
        tokio::select! {
            () = cancel.cancelled() => return Ok(()),
            () = retire.cancelled() => return Ok(()),
            () = &mut woken => {}
            () = tokio::time::sleep(wait) => {}
        }
    }
}
