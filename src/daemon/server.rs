//! The HTTP endpoint on `server.listen`: `/healthz` (200 when the schedule
//! ticks and the ledger takes writes, else 503 with the reason) and
//! `/metrics` (Prometheus text, ledger gauges read at scrape time). It gets
//! the ledger handle and the metrics, not the pipeline: it only reads.

use std::sync::{Arc, RwLock};
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
    /// A local condition stops work (a full disk).
    #[error("{name}: {detail}")]
    Condition {
        /// The condition (`disk_full`).
        name: String,
        /// What is wrong and where.
        detail: String,
    },
}

/// What health means: the schedule's liveness and a writable ledger.
#[derive(Clone)]
pub struct Health {
    ledger: LedgerHandle,
    // Replaced when a reload changes the schedule; read by every check.
    liveness: Arc<RwLock<Option<Liveness>>>,
}

impl Health {
    /// Health of the daemon writing `ledger`; the schedule is set once it runs.
    pub fn new(ledger: LedgerHandle) -> Health {
        Health {
            ledger,
            liveness: Arc::new(RwLock::new(None)),
        }
    }

    /// Sets (or, on reload, replaces) the schedule to watch.
    pub fn watch(&self, liveness: Liveness) {
        *self.liveness.write().unwrap_or_else(|e| e.into_inner()) = Some(liveness);
    }

    /// Whether the daemon can be trusted now.
    pub async fn check(&self) -> Result<(), Unhealthy> {
        let liveness = self
            .liveness
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        let liveness = liveness.ok_or(Unhealthy::NoSchedule)?;
        if let Some(due) = liveness.overdue(Millis::now()) {
            return Err(Unhealthy::MissedTick(due));
        }
        let conditions = self
            .ledger
            .call(|l| {
                l.heartbeat(Millis::now())?;
                l.conditions()
            })
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
    let stopping = shutdown.clone();
    let server = axum::serve(listener, app)
        .with_graceful_shutdown(async move { stopping.cancelled().await })
        .into_future();
    tokio::pin!(server);
    tokio::select! {
        result = &mut server => return result,
        () = shutdown.cancelled() => {}
    }
    match tokio::time::timeout(grace, server).await {
        Ok(result) => result,
        Err(_) => {
            tracing::warn!(
                ?grace,
                "open HTTP requests did not finish in time; closing them"
            );
            Ok(())
        }
    }
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
            Ok((l.status(0)?, l.due_count(now)?))
        })
        .await;
    match read {
        Ok((status, due)) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            shared.metrics.render(&status, due),
        )
            .into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("ledger unavailable: {}\n", error_chain(&e)),
        )
            .into_response(),
    }
}
