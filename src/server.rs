//! The HTTP endpoint on `server.listen`: `/healthz` (200 when the schedule
//! ticks and the ledger takes writes, else 503 with the reason) and
//! `/metrics` (Prometheus text, ledger gauges read at scrape time).

use std::net::SocketAddr;
use std::sync::{Arc, RwLock};

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use tokio::net::TcpListener;
use tokio_util::sync::CancellationToken;

use crate::engine::Engine;
use crate::ledger::now_ms;
use crate::schedule::Liveness;

/// What health means: the schedule's liveness and a writable ledger.
#[derive(Clone)]
pub struct Health {
    engine: Arc<Engine>,
    liveness: Arc<RwLock<Option<Liveness>>>,
}

impl Health {
    /// Health of `engine`; the schedule's liveness is set once it runs.
    pub fn new(engine: Arc<Engine>) -> Health {
        Health {
            engine,
            liveness: Arc::new(RwLock::new(None)),
        }
    }

    /// Sets (or, on reload, replaces) the schedule to watch.
    pub fn watch(&self, liveness: Liveness) {
        *self.liveness.write().unwrap_or_else(|e| e.into_inner()) = Some(liveness);
    }

    /// `Err(reason)` when the daemon should not be trusted.
    pub async fn check(&self) -> Result<(), String> {
        let liveness = self
            .liveness
            .read()
            .unwrap_or_else(|e| e.into_inner())
            .clone();
        match liveness {
            None => return Err("the poll schedule is not running".to_owned()),
            Some(l) => l.check(chrono::Utc::now())?,
        }
        self.engine
            .ledger
            .call(|l| l.heartbeat(now_ms()))
            .await
            .map_err(|e| format!("the ledger does not take writes: {e}"))
    }

    /// The engine behind this health.
    pub fn engine(&self) -> &Arc<Engine> {
        &self.engine
    }
}

/// Binds the listener (so a taken port fails the start, not later).
pub async fn bind(addr: SocketAddr) -> std::io::Result<TcpListener> {
    TcpListener::bind(addr).await
}

/// Serves until `shutdown` fires.
pub async fn serve(
    listener: TcpListener,
    health: Health,
    shutdown: CancellationToken,
) -> std::io::Result<()> {
    let app = Router::new()
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .with_state(health);
    axum::serve(listener, app)
        .with_graceful_shutdown(async move { shutdown.cancelled().await })
        .await
}

async fn healthz(State(health): State<Health>) -> Response {
    match health.check().await {
        Ok(()) => (StatusCode::OK, "ok\n").into_response(),
        Err(reason) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("unhealthy: {reason}\n"),
        )
            .into_response(),
    }
}

async fn metrics(State(health): State<Health>) -> Response {
    let engine = health.engine();
    let read = engine
        .ledger
        .call(|l| {
            let now = now_ms();
            Ok((l.status(0)?, l.due_count(now)?))
        })
        .await;
    match read {
        Ok((status, due)) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            engine.metrics.render(&status, due),
        )
            .into_response(),
        Err(e) => (
            StatusCode::SERVICE_UNAVAILABLE,
            format!("ledger unavailable: {e}\n"),
        )
            .into_response(),
    }
}
