//! The HTTP endpoint on `server.listen`: `/healthz` (200 when the schedule
//! ticks and the ledger takes writes, else 503 with the reason) and
//! `/metrics` (Prometheus text, ledger gauges read at scrape time). It gets
//! the ledger handle and the metrics, not the pipeline: it only reads.

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use chrono::{DateTime, Utc};
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::clock::Millis;
use crate::daemon::listener::ConnLimits;
use crate::daemon::schedule::Liveness;
use crate::ledger::{LedgerError, LedgerHandle};
use crate::metrics::Metrics;
use crate::telemetry::error_chain;

/// Why the daemon should not be trusted.
#[derive(Debug, thiserror::Error)]
pub enum Unhealthy {
    /// No schedule has been started yet.
    #[error("the poll schedule is not running")]
    NoSchedule,
    /// The schedule's next tick is overdue.
    #[error("the poll schedule missed its tick due at {0}")]
    MissedTick(DateTime<Utc>),
    /// The heartbeat write failed.
    #[error("the ledger does not take writes")]
    Ledger(#[source] LedgerError),
    /// The last polls all failed (the API refuses the credentials, the
    /// network is down, ...).
    #[error("the last {failed} polls failed; the last error: {last_error}")]
    PollsFailing {
        /// Failed polls in a row.
        failed: u32,
        /// What the last one said.
        last_error: String,
    },
    /// No poll has listed every meeting for three schedule periods.
    #[error("no poll has succeeded since {since} (three schedule periods)")]
    NoSuccessfulPoll {
        /// The last success, or the daemon's start.
        since: DateTime<Utc>,
    },
    /// A local condition stops work (a full disk).
    #[error("{name}: {detail}")]
    Condition {
        /// The condition (`disk_full`).
        name: String,
        /// What is wrong and where.
        detail: String,
    },
}

/// Failed polls in a row that make the daemon unhealthy.
pub const FAILED_POLLS: u32 = 3;

/// How the daemon's polls went, as its loop records them.
#[derive(Debug)]
pub struct PollHistory {
    failed_in_a_row: AtomicU32,
    /// The last success (or the daemon's start), Unix ms.
    last_ok: AtomicI64,
    running: AtomicBool,
    last_error: Mutex<String>,
}

impl PollHistory {
    /// A history starting now, as if a poll had just succeeded.
    pub fn new() -> PollHistory {
        PollHistory {
            failed_in_a_row: AtomicU32::new(0),
            last_ok: AtomicI64::new(Millis::now().as_unix_ms()),
            running: AtomicBool::new(false),
            last_error: Mutex::new(String::new()),
        }
    }

    /// A poll started.
    pub fn started(&self) {
        self.running.store(true, Ordering::Relaxed);
    }

    /// A poll ended: `Ok` or with the first error's text.
    pub fn ended(&self, result: Result<(), String>) {
        self.running.store(false, Ordering::Relaxed);
        match result {
            Ok(()) => {
                self.failed_in_a_row.store(0, Ordering::Relaxed);
                self.last_ok
                    .store(Millis::now().as_unix_ms(), Ordering::Relaxed);
            }
            Err(error) => {
                self.failed_in_a_row.fetch_add(1, Ordering::Relaxed);
                *self.last_error.lock().unwrap_or_else(|e| e.into_inner()) = error;
            }
        }
    }
}

impl Default for PollHistory {
    fn default() -> Self {
        PollHistory::new()
    }
}

/// What health means: the schedule's liveness, polls that succeed, a
/// writable ledger and no local condition stopping work.
#[derive(Clone)]
pub struct Health {
    ledger: LedgerHandle,
    polls: Arc<PollHistory>,
    // Replaced when a reload changes the schedule; read by every check.
    liveness: Arc<RwLock<Option<Liveness>>>,
}

impl Health {
    /// Health of the daemon writing `ledger`; the schedule is set once it runs.
    pub fn new(ledger: LedgerHandle, polls: Arc<PollHistory>) -> Health {
        Health {
            ledger,
            polls,
            liveness: Arc::new(RwLock::new(None)),
        }
    }

    /// Sets (or, on reload, replaces) the schedule to watch.
    pub fn watch(&self, liveness: Liveness) {
        *self.liveness.write().unwrap_or_else(|e| e.into_inner()) = Some(liveness);
    }

    /// Whether the daemon can be trusted now.
    pub async fn check(&self) -> Result<(), Unhealthy> {
        let liveness = self.alive().await?;
        self.check_polls(&liveness)?;
        let conditions = self
            .ledger
            .call(|l| l.conditions())
            .await
            .map_err(Unhealthy::Ledger)?;
        match conditions.into_iter().next() {
            Some(c) => Err(Unhealthy::Condition {
                name: c.name,
                detail: c.detail,
            }),
            None => Ok(()),
        }
    }
}

impl Health {
    /// Whether the daemon itself works: its schedule ticks and its ledger
    /// takes writes. This is what the systemd watchdog pings on: a restart
    /// can fix a hung daemon, not a cloud that refuses it or a full disk,
    /// which `/healthz` ([`Health::check`]) reports on top.
    pub async fn alive(&self) -> Result<Liveness, Unhealthy> {
        let liveness = self
            .liveness
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let liveness = liveness.ok_or(Unhealthy::NoSchedule)?;
        if let Some(due) = liveness.overdue(Millis::now()) {
            return Err(Unhealthy::MissedTick(due));
        }
        self.ledger
            .call(|l| l.heartbeat(Millis::now()))
            .await
            .map_err(Unhealthy::Ledger)?;
        Ok(liveness)
    }

    fn check_polls(&self, liveness: &Liveness) -> Result<(), Unhealthy> {
        let polls = &self.polls;
        let failed = polls.failed_in_a_row.load(Ordering::Relaxed);
        if failed >= FAILED_POLLS {
            let last_error = polls
                .last_error
                .lock()
                .unwrap_or_else(|e| e.into_inner())
                .clone();
            return Err(Unhealthy::PollsFailing { failed, last_error });
        }
        // A poll still running has not failed: only finished ones count.
        if polls.running.load(Ordering::Relaxed) {
            return Ok(());
        }
        let since = Millis::from_unix_ms(polls.last_ok.load(Ordering::Relaxed));
        let grace = super::schedule::TICK_GRACE;
        match liveness.nth_tick_after(since, 3) {
            Some(third) if Millis::now() > third + grace => Err(Unhealthy::NoSuccessfulPoll {
                since: since.to_utc(),
            }),
            _ => Ok(()),
        }
    }
}

/// What the handlers read.
#[derive(Clone)]
struct Shared {
    health: Health,
    ledger: LedgerHandle,
    metrics: Arc<Metrics>,
}

/// Serves until `shutdown` fires, then lets open requests finish for at
/// most `grace`: a client that never completes its request cannot hold
/// the daemon's stop past systemd's patience.
pub async fn serve(
    listener: TcpListener,
    health: Health,
    metrics: Arc<Metrics>,
    shutdown: CancellationToken,
    grace: Duration,
) -> std::io::Result<()> {
    let shared = Shared {
        ledger: health.ledger.clone(),
        health,
        metrics,
    };
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(render_metrics))
        .with_state(shared);
    super::listener::serve_router(listener, app, ConnLimits::DEFAULT, shutdown, grace).await
}

async fn healthz(State(shared): State<Shared>) -> Response {
    match shared.health.check().await {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("unhealthy: {}\n", error_chain(&reason)),
        )
            .into_response(),
    }
}

async fn render_metrics(State(shared): State<Shared>) -> Response {
    let read = shared
        .ledger
        .call(|l| {
            let now = Millis::now();
            Ok((l.status(0)?, l.due_count(now)?, l.counters()?))
        })
        .await;
    match read {
        Ok((status, due, counters)) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            {
                shared.metrics.set_meeting_stages(&counters);
                shared.metrics.render(&status, due)
            },
        )
            .into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("ledger unavailable: {}\n", error_chain(&e)),
        )
            .into_response(),
    }
}
