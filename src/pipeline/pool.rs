//! The worker pool: `download.workers` tasks, each a loop around
//! [`Engine::process_next`]. Idle workers wait on the engine's `Notify` (or
//! the next backoff deadline), never on a polling sleep. Concurrency is
//! decided here and nowhere else.

use std::sync::atomic::Ordering;
use std::sync::{Arc, Mutex};
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
    /// within `max_wait` of the run's last progress (a file archived or
    /// bytes received; at first, its start): backoffs ending sooner are
    /// waited out, files due later stay pending for the next run. Or when
    /// the disk is full.
    Drained {
        /// How long past its last progress the run waits for backoffs.
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
    let patience = match stop {
        StopWhen::Drained { max_wait } => Some(Arc::new(Patience::new(&engine, max_wait))),
        StopWhen::Cancelled => None,
    };
    for n in 0..workers.max(1) {
        let (engine, cancel) = (Arc::clone(&engine), cancel.clone());
        let span = tracing::info_span!("worker", n);
        let retire = CancellationToken::new();
        let worker = worker_loop(engine, cancel, retire, stop, patience.clone());
        handles.push(tracker.spawn(worker.instrument(span)));
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
            None,
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

/// One worker; `patience` (for [`StopWhen::Drained`]) is shared by the
/// workers of one run.
async fn worker_loop(
    engine: Arc<Engine>,
    cancel: CancellationToken,
    retire: CancellationToken,
    stop: StopWhen,
    patience: Option<Arc<Patience>>,
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
            Ok(Look::Worked) => {
                if let Some(patience) = &patience {
                    patience.step_ended(&engine);
                }
                // A step that worked ends a run of ledger trouble.
                trouble = Trouble::default();
                continue;
            }
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
        if let Some(patience) = &patience
            && patience.outlasted_by(next_due)
            && engine.claims_held() == 0
        {
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

/// How long a `sync` keeps waiting on backoffs: for files due within
/// `max_wait` of the run's last progress. Each backoff of a file that keeps
/// failing fast may be shorter than `max_wait` while together they are
/// not (5 s + 10 s + 20 s + 40 s + 80 s by default): measured from the
/// last progress, such a file holds the run `max_wait` beyond the rest at
/// most, not for the sum of its backoffs.
struct Patience {
    max_wait: Duration,
    /// The progress count when it last moved, and when that was.
    moved: Mutex<(u64, Millis)>,
}

impl Patience {
    fn new(engine: &Engine, max_wait: Duration) -> Patience {
        Patience {
            max_wait,
            moved: Mutex::new((progress_count(engine), Millis::now())),
        }
    }

    /// After a step: if the run moved, patience starts again from now.
    fn step_ended(&self, engine: &Engine) {
        let count = progress_count(engine);
        let mut moved = self.moved.lock().unwrap_or_else(|e| e.into_inner());
        if moved.0 != count {
            *moved = (count, Millis::now());
        }
    }

    /// Whether the next file due (at `next_due`; `None` when nothing is
    /// pending) lies beyond patience.
    fn outlasted_by(&self, next_due: Option<Millis>) -> bool {
        let moved = self.moved.lock().unwrap_or_else(|e| e.into_inner()).1;
        next_due.is_none_or(|due| due > moved + self.max_wait)
    }
}

/// A count that grows whenever the run moves: files archived plus bytes
/// received.
fn progress_count(engine: &Engine) -> u64 {
    let progress = engine.progress();
    let files = progress.files_done.load(Ordering::Relaxed);
    files.wrapping_add(progress.bytes.load(Ordering::Relaxed))
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
    /// `ledger.retry_for`, or at once when a put-back was refused for that
    /// long already (else the run would end as if the file merely waited
    /// for a retry); the daemon never does (`/healthz` says why).
    fn suffer(
        &mut self,
        engine: &Engine,
        stop: StopWhen,
        e: EngineError,
    ) -> Result<(), EngineError> {
        let since = *self.since.get_or_insert_with(Instant::now);
        let spent = matches!(e, EngineError::Unrecorded { .. })
            || since.elapsed() >= engine.settings.ledger_patience;
        if matches!(stop, StopWhen::Drained { .. }) && spent {
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
