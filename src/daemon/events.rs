//! The daemon's side of the event push: the webhook listener on
//! `webhook.listen` (only when enabled: otherwise nothing listens there)
//! and the task that handles queued events, one run at a time. The first
//! run starts at start-up, so events queued before a crash are handled; a
//! run that leaves events queued (a listing or the ledger failed) is
//! repeated after a backoff, without waiting for another event.

use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::listener::{self, ConnLimits};
use crate::config::{Config, WebhookConfig};
use crate::pipeline::{Engine, EventPlan};
use crate::telemetry::error_chain;
use crate::webhook::{REFUSAL_SUMMARY_EVERY, Webhook, WebhookKeys};

/// The first wait before queued events are tried again; it doubles with
/// each run that leaves them queued, up to [`EVENT_RETRY_MAX`].
pub const EVENT_RETRY_BASE: Duration = Duration::from_secs(5);
/// The longest wait between two runs for events left queued.
pub const EVENT_RETRY_MAX: Duration = Duration::from_secs(5 * 60);

/// The running listener.
pub(super) struct Listening {
    /// The server task.
    pub server: JoinHandle<std::io::Result<()>>,
    /// The subscription and password it checks, replaced on reload.
    pub keys: WebhookKeys,
}

impl Listening {
    /// Takes a reloaded `[webhook]`'s subscription and password.
    pub fn reload(&self, new: &WebhookConfig) {
        if self.keys.replace(&new.app_id, &new.app_key) {
            tracing::info!(
                key_source = %new.key_source,
                "webhook.app_id or its key changed; events are checked against the new ones"
            );
        }
    }
}

/// Binds `webhook.listen` and serves the endpoint until `stop`, when
/// enabled; each queued `record.finish` sends on `wake`.
pub(super) async fn start_webhook(
    config: &Config,
    engine: &Engine,
    wake: mpsc::Sender<()>,
    stop: CancellationToken,
) -> anyhow::Result<Option<Listening>> {
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
    let (keys, refusals) = (hook.keys(), hook.refusals());
    let flush_stop = stop.clone();
    tokio::spawn(async move {
        loop {
            tokio::select! {
                () = flush_stop.cancelled() => break,
                () = tokio::time::sleep(REFUSAL_SUMMARY_EVERY) => refusals.flush(),
            }
        }
        refusals.flush();
    });
    tracing::info!(addr = %w.listen, path = %w.path, "taking events on the webhook");
    let server = tokio::spawn(listener::serve_router(
        listener,
        hook.router(&w.path),
        ConnLimits::DEFAULT,
        stop,
        config.download.shutdown_timeout,
    ));
    Ok(Some(Listening { server, keys }))
}

/// Runs of the event handler: at most one at a time, one more asked for
/// while it runs, and a retry after a backoff while events stay queued.
pub(super) struct EventRuns {
    running: Option<JoinHandle<bool>>,
    asked: bool,
    delay: Duration,
    retry_at: Option<Instant>,
}

impl EventRuns {
    /// No run yet.
    pub fn new() -> EventRuns {
        EventRuns {
            running: None,
            asked: false,
            delay: EVENT_RETRY_BASE,
            retry_at: None,
        }
    }

    /// Starts a run now, or right after the one running.
    pub fn start(&mut self, engine: &Arc<Engine>, plan: &EventPlan) {
        if self.running.is_some() {
            self.asked = true;
        } else {
            self.retry_at = None;
            self.running = Some(start_events(engine, plan));
        }
    }

    /// Resolves when the running run ends (never while none runs), with
    /// whether it left events queued.
    pub async fn finished(&mut self) -> bool {
        let ended = match &mut self.running {
            Some(task) => task.await,
            None => std::future::pending().await,
        };
        self.running = None;
        // A run that panicked handled nothing: its events are still queued.
        ended.unwrap_or(true)
    }

    /// After a run: a retry after the backoff if events stay queued;
    /// whether another run was asked for meanwhile (start it now).
    #[must_use]
    pub fn after(&mut self, left_queued: bool) -> bool {
        if left_queued {
            tracing::info!(retry_in = ?self.delay, "queued events are tried again after a backoff");
            self.retry_at = Some(Instant::now() + self.delay);
            self.delay = (self.delay * 2).min(EVENT_RETRY_MAX);
        } else {
            self.delay = EVENT_RETRY_BASE;
            self.retry_at = None;
        }
        std::mem::take(&mut self.asked)
    }

    /// When the backoff ends, if events wait for it.
    pub fn retry_at(&self) -> Option<Instant> {
        self.retry_at
    }

    /// Stops the running run; its events stay queued for the next start.
    pub fn abort(self) {
        if let Some(task) = self.running {
            task.abort();
        }
    }
}

/// Resolves at `at`; never if `None`.
pub(super) async fn at(at: Option<Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// Handles every queued event in its own task (the loop stays free);
/// whether events stay queued.
fn start_events(engine: &Arc<Engine>, plan: &EventPlan) -> JoinHandle<bool> {
    let (engine, plan) = (Arc::clone(engine), plan.clone());
    tokio::spawn(
        async move {
            match engine.handle_events(&plan).await {
                Ok(report) if report == Default::default() => false,
                Ok(report) => {
                    tracing::info!(?report, "events handled");
                    report.retrying > 0
                }
                Err(e) => {
                    tracing::error!(error = %error_chain(&e), "handling events failed; they stay queued");
                    true
                }
            }
        }
        .instrument(tracing::info_span!("events")),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_retry_backoff_doubles_to_its_cap_and_restarts_after_a_clean_run() {
        let mut runs = EventRuns::new();
        let mut waited = Vec::new();
        for _ in 0..8 {
            let before = Instant::now();
            assert!(!runs.after(true), "nothing asked for");
            let at = runs.retry_at().expect("a retry is due");
            waited.push((at - before).as_secs());
        }
        assert_eq!(waited, vec![5, 10, 20, 40, 80, 160, 300, 300]);
        assert!(!runs.after(false));
        assert_eq!(runs.retry_at(), None, "nothing left queued");
        let before = Instant::now();
        let _ = runs.after(true);
        let at = runs.retry_at().expect("a retry is due");
        assert_eq!((at - before).as_secs(), 5, "back to the first wait");
    }
}
