//! `run`: the long-running daemon. Polls once at start-up and then on
//! `poll.schedule` (a tick that finds the previous poll still running is
//! skipped), keeps `download.workers` workers busy, serves `/healthz` and
//! `/metrics`, reports to systemd, reloads the config on SIGHUP and stops
//! gracefully on SIGTERM/SIGINT: no new claims, transfers stop at a chunk
//! boundary within `download.shutdown_timeout`, partial data kept.

mod poller;
mod reload;

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::engine::Engine;
use crate::notify;
use crate::poll::PollPlan;
use crate::pool::WorkerSet;
use crate::schedule::Schedule;
use crate::server::{self, Health};
use crate::startup::build_engine;

use poller::Poller;

/// Runs the daemon until `shutdown` fires. Each message on `reloads`
/// re-reads the config at `config_path`.
pub async fn run(
    config_path: PathBuf,
    config: Config,
    shutdown: CancellationToken,
    mut reloads: mpsc::UnboundedReceiver<()>,
) -> anyhow::Result<()> {
    let engine = build_engine(&config)?;
    engine.recover_interrupted().await?;
    let health = Health::new(Arc::clone(&engine));
    let server_stop = CancellationToken::new();
    let server = match config.server.listen {
        Some(addr) => {
            let listener = server::bind(addr)
                .await
                .with_context(|| format!("while binding server.listen {addr}"))?;
            tracing::info!(%addr, "serving /healthz and /metrics");
            Some(tokio::spawn(server::serve(
                listener,
                health.clone(),
                server_stop.clone(),
            )))
        }
        None => None,
    };
    let work_stop = CancellationToken::new();
    let mut workers = WorkerSet::new(Arc::clone(&engine), work_stop.clone());
    workers.resize(config.download.workers);
    let poller = Poller::new(Arc::clone(&engine), PollPlan::from(&config.poll));
    poller.trigger();
    let mut schedule = Schedule::start(&config.poll.schedule, poller.tick()).await?;
    health.watch(schedule.liveness());
    notify::ready(&status_line(&engine).await);
    tracing::info!(schedule = %config.poll.schedule, workers = config.download.workers, "daemon running");
    let watchdog = tokio::spawn(watchdog(health.clone(), shutdown.clone()));

    let mut current = config;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            Some(()) = reloads.recv() => {
                let mut parts = reload::Parts { poller: &poller, schedule: &mut schedule, workers: &mut workers, health: &health };
                reload::reload(&config_path, &mut current, &mut parts).await;
            }
        }
    }

    notify::stopping();
    tracing::info!("stopping: no new work is claimed; transfers stop at the next chunk");
    schedule.stop().await;
    poller.stop();
    work_stop.cancel();
    if !workers.wait(current.download.shutdown_timeout).await {
        tracing::warn!(
            "some transfers did not stop within download.shutdown_timeout; the next start resumes them"
        );
    }
    watchdog.abort();
    server_stop.cancel();
    if let Some(server) = server {
        let _ = server.await;
    }
    tracing::info!("stopped");
    Ok(())
}

/// Pings the systemd watchdog while the daemon is healthy; a failing check
/// withholds the ping, so systemd restarts a hung daemon.
async fn watchdog(health: Health, shutdown: CancellationToken) {
    let Some(interval) = notify::watchdog_interval() else {
        return;
    };
    loop {
        match health.check().await {
            Ok(()) => notify::watchdog(),
            Err(reason) => tracing::error!(%reason, "unhealthy: withholding the watchdog ping"),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}

/// The STATUS line for systemd: files per state.
pub(crate) async fn status_line(engine: &Engine) -> String {
    match engine.ledger.call(|l| l.status(0)).await {
        Ok(s) => format!(
            "{} archived, {} pending, {} downloading, {} failed",
            s.files.done, s.files.pending, s.files.downloading, s.files.failed
        ),
        Err(e) => format!("ledger unavailable: {e}"),
    }
}
