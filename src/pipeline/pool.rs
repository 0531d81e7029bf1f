//! The worker pool: `download.workers` tasks, each a loop around
//! [`Engine::process_next`]. Idle workers wait on the engine's `Notify` (or
//! the next backoff deadline), never on a polling sleep. Concurrency is
//! decided here and nowhere else.

use std::sync::Arc;
use std::time::{Duration, Instant};

use tokio_util::sync::CancellationToken;
use tokio_util::task::TaskTracker;
use tracing::Instrument;

use super::upkeep::DISK_RECHECK;
use crate::clock::Millis;
use crate::pipeline::{Engine, EngineError, Outcome};
use crate::telemetry::error_chain;

/// When the pool stops.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum StopWhen {
    /// `sync`: when this process holds no claim and no pending file is due
    /// within `max_wait` (shorter backoffs are waited out; files further
    /// away stay pending for the next run), or when the disk is full.
    Drained {
        /// The longest backoff worth waiting for.
        max_wait: Duration,
    },
    /// Only on cancellation (the daemon): a full disk or a failing ledger
    /// pauses the workers until it recovers.
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
            let task = supervise(
                Arc::clone(&self.engine),
                self.cancel.clone(),
                retire.clone(),
            );
            self.tracker.spawn(task.instrument(span));
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

/// Keeps one daemon worker alive: a worker that panics (a bug) is logged
/// and replaced, so the pool never shrinks silently. Its claim is dropped
/// with it and requeued after the next poll.
async fn supervise(engine: Arc<Engine>, cancel: CancellationToken, retire: CancellationToken) {
    loop {
        let worker = worker_loop(
            Arc::clone(&engine),
            cancel.clone(),
            retire.clone(),
            StopWhen::Cancelled,
        );
        match tokio::spawn(worker.in_current_span()).await {
            Ok(Ok(())) => return,
            Ok(Err(e)) => {
                tracing::error!(error = %error_chain(&e), "worker stopped; starting a new one")
            }
            Err(e) => tracing::error!(error = %e, "worker died; starting a new one"),
        }
        tokio::select! {
            () = cancel.cancelled() => return,
            () = retire.cancelled() => return,
            () = tokio::time::sleep(Duration::from_secs(1)) => {}
        }
    }
}

async fn worker_loop(
    engine: Arc<Engine>,
    cancel: CancellationToken,
    retire: CancellationToken,
    stop: StopWhen,
) -> Result<(), EngineError> {
    let mut trouble = Trouble::default();
    loop {
        if retire.is_cancelled() {
            return Ok(());
        }
        // Registered before looking, so a wake-up between the look and the
        // wait is not lost.
        let woken = engine.wake.notified();
        tokio::pin!(woken);
        woken.as_mut().enable();
        let next_due = match step_and_look(&engine, &cancel).await {
            Ok(Look::Worked) => continue,
            Ok(Look::Stop) => return Ok(()),
            Ok(Look::DiskFull) if matches!(stop, StopWhen::Drained { .. }) => return Ok(()),
            Ok(Look::DiskFull) => Some(Millis::now() + DISK_RECHECK),
            Ok(Look::Idle(next_due)) => next_due,
            Err(e) => {
                trouble.suffer(&engine, stop, e)?;
                tokio::select! {
                    () = cancel.cancelled() => return Ok(()),
                    () = tokio::time::sleep(trouble.pause(stop)) => continue,
                }
            }
        };
        trouble = Trouble::default();
        if let StopWhen::Drained { max_wait } = stop {
            let later = next_due.is_none_or(|due| due.duration_since(Millis::now()) > max_wait);
            if later && engine.claims_held() == 0 {
                engine.wake.notify_waiters();
                return Ok(());
            }
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

/// What a worker found in one turn.
enum Look {
    /// It processed a file: look again at once.
    Worked,
    /// Shutdown: stop.
    Stop,
    /// The disk is too full to claim.
    DiskFull,
    /// Nothing due; the next file is due then (if any is pending).
    Idle(Option<Millis>),
}

async fn step_and_look(engine: &Engine, cancel: &CancellationToken) -> Result<Look, EngineError> {
    match engine.process_next(cancel).await? {
        Outcome::Idle => {}
        Outcome::Interrupted => return Ok(Look::Stop),
        Outcome::DiskFull => return Ok(Look::DiskFull),
        Outcome::Done | Outcome::Retry | Outcome::Failed => return Ok(Look::Worked),
    }
    let (next_due, _) = engine.ledger.call(|l| l.queue_state()).await?;
    Ok(Look::Idle(next_due))
}

/// A worker's run of failing steps (the ledger refusing reads or writes).
#[derive(Default)]
struct Trouble {
    since: Option<Instant>,
}

impl Trouble {
    /// Logs a failed step. `sync` gives up once the ledger has failed for
    /// `ledger.retry_for`; the daemon never does (`/healthz` says why).
    fn suffer(
        &mut self,
        engine: &Engine,
        stop: StopWhen,
        e: EngineError,
    ) -> Result<(), EngineError> {
        let since = *self.since.get_or_insert_with(Instant::now);
        if matches!(stop, StopWhen::Drained { .. })
            && since.elapsed() >= engine.settings.ledger_patience
        {
            return Err(e);
        }
        tracing::error!(error = %error_chain(&e), "worker step failed; pausing");
        Ok(())
    }

    /// How long to pause before the next try.
    fn pause(&self, stop: StopWhen) -> Duration {
        match stop {
            StopWhen::Drained { .. } => Duration::from_secs(1),
            StopWhen::Cancelled => Duration::from_secs(5),
        }
    }
}
