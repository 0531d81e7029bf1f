//! The daemon's side of the event push: the webhook listener on
//! `webhook.listen` (only when enabled: otherwise nothing listens there)
//! and the task that handles queued events, one at a time. The first one
//! runs at start-up, so events queued before a crash are handled.

use std::sync::Arc;

use anyhow::Context;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::server;
use crate::config::Config;
use crate::pipeline::{Engine, EventPlan};
use crate::telemetry::error_chain;
use crate::webhook::Webhook;

/// Binds `webhook.listen` and serves the endpoint until `stop`, when
/// enabled; each queued `record.finish` sends on `wake`.
pub(super) async fn start_webhook(
    config: &Config,
    engine: &Engine,
    wake: mpsc::Sender<()>,
    stop: CancellationToken,
) -> anyhow::Result<Option<JoinHandle<std::io::Result<()>>>> {
    let w = &config.webhook;
    if !w.enabled {
        return Ok(None);
    }
    let listener = tokio::net::TcpListener::bind(w.listen)
        .await
        .with_context(|| format!("while binding webhook.listen {}", w.listen))?;
    let hook = Webhook::new(
        w.app_id.clone(),
        w.app_key.clone(),
        engine.ledger().clone(),
        Arc::clone(engine.metrics()),
        wake,
    );
    tracing::info!(addr = %w.listen, path = %w.path, "taking events on the webhook");
    Ok(Some(tokio::spawn(server::serve_router(
        listener,
        hook.router(&w.path),
        stop,
        config.download.shutdown_timeout,
    ))))
}

/// Handles every queued event in its own task (the loop stays free).
pub(super) fn start_events(engine: &Arc<Engine>, plan: &EventPlan) -> JoinHandle<()> {
    let (engine, plan) = (Arc::clone(engine), plan.clone());
    tokio::spawn(
        async move {
            match engine.handle_events(&plan).await {
                Ok(report) if report == Default::default() => {}
                Ok(report) => tracing::info!(?report, "events handled"),
                Err(e) => {
                    tracing::error!(error = %error_chain(&e), "handling events failed; they stay queued");
                }
            }
        }
        .instrument(tracing::info_span!("events")),
    )
}
