//! The daemon's one loop. Polls once at start-up and then on each tick of
//! `poll.schedule` (a tick that finds the previous poll still running is
//! skipped), keeps `download.workers` workers busy, serves `/healthz` and
//! `/metrics`, reports to systemd, reloads the config on SIGHUP and stops
//! gracefully on SIGTERM/SIGINT: no new claims, transfers stop at a chunk
//! boundary within `download.shutdown_timeout`, partial data kept.

use std::path::PathBuf;
use std::sync::Arc;

use anyhow::Context;
use tokio::sync::mpsc;
use tokio::task::{JoinError, JoinHandle};
use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::events;
use super::reload;
use super::schedule::Schedule;
use super::server::{self, Health, PollHistory};
use super::systemd;
use crate::clock::Millis;
use crate::config::{Config, RetentionConfig};
use crate::ledger::LedgerHandle;
use crate::pipeline::{
    Engine, EventPlan, PollError, PollPlan, PollReport, WorkerSet, build_engine,
};
use crate::telemetry::error_chain;

/// Runs the daemon until `shutdown` fires. Each message on `reloads`
/// re-reads the config at `config_path`.
pub async fn run(
    config_path: PathBuf,
    config: Config,
    shutdown: CancellationToken,
    mut reloads: mpsc::UnboundedReceiver<()>,
) -> anyhow::Result<()> {
    let engine = build_engine(&config)?;
    engine.check_target().await?;
    engine.recover_interrupted().await?;
    let polls = Arc::new(PollHistory::new());
    let health = Health::new(engine.ledger().clone(), Arc::clone(&polls));
    let server_stop = CancellationToken::new();
    let server = match config.server.listen {
        Some(addr) => {
            let listener = tokio::net::TcpListener::bind(addr)
                .await
                .with_context(|| format!("while binding server.listen {addr}"))?;
            tracing::info!(%addr, "serving /healthz and /metrics");
            Some(tokio::spawn(server::serve(
                listener,
                health.clone(),
                Arc::clone(engine.metrics()),
                server_stop.clone(),
                config.download.shutdown_timeout,
            )))
        }
        None => None,
    };
    let (wake_tx, mut wakes) = mpsc::channel(1);
    let webhook = events::start_webhook(&config, &engine, wake_tx, server_stop.clone()).await?;
    let work_stop = CancellationToken::new();
    let mut workers = WorkerSet::new(Arc::clone(&engine), work_stop.clone());
    workers.resize(config.download.workers);
    let (ticks_tx, mut ticks) = mpsc::channel(1);
    let mut schedule = Schedule::start(&config.poll.schedule, ticks_tx.clone()).await?;
    health.watch(schedule.liveness());
    let mut plan = PollPlan::from(&config.poll);
    let mut poll = Some(start_poll(&engine, &plan, &config.retention, &polls));
    let mut event_plan = EventPlan::from_config(&config);
    // Events queued before a stop or crash are handled now.
    let mut event_runs = events::EventRuns::new();
    event_runs.start(&engine, &event_plan);
    systemd::ready(&status_line(engine.ledger()).await);
    tracing::info!(schedule = %config.poll.schedule, workers = config.download.workers, "daemon running");
    let watchdog = tokio::spawn(watchdog(health.clone(), shutdown.clone()));

    let mut current = config;
    // A reload came while a poll ran: poll again (with the new plan) as
    // soon as it ends, not at the next tick, which may be an hour away.
    let mut poll_again = false;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => break,
            Some(()) = ticks.recv() => {
                if poll.is_some() {
                    tracing::info!("the previous poll is still running; skipping this tick");
                    engine.metrics().poll("skipped", Millis::now());
                } else {
                    poll = Some(start_poll(&engine, &plan, &current.retention, &polls));
                }
            }
            Some(()) = wakes.recv() => event_runs.start(&engine, &event_plan),
            () = events::at(event_runs.retry_at()) => event_runs.start(&engine, &event_plan),
            left_queued = event_runs.finished() => {
                if event_runs.after(left_queued) {
                    event_runs.start(&engine, &event_plan);
                }
            }
            finished = finished(&mut poll) => {
                poll = None;
                polls.ended(poll_result(&finished));
                report_poll(finished);
                after_poll(&engine).await;
                systemd::status(&status_line(engine.ledger()).await);
                if std::mem::take(&mut poll_again) {
                    tracing::info!("polling again: the config was reloaded during the last poll");
                    poll = Some(start_poll(&engine, &plan, &current.retention, &polls));
                }
            }
            Some(()) = reloads.recv() => {
                let Some(new) = reload::load(&config_path, &current) else { continue };
                if let Some(webhook) = &webhook {
                    webhook.reload(&new.webhook);
                }
                apply(new, &mut current, &mut schedule, &ticks_tx, &mut workers, &health).await;
                let before = std::mem::replace(&mut plan, PollPlan::from(&current.poll));
                event_plan = EventPlan::from_config(&current);
                // The new meetings are polled now; a poll that runs
                // finishes with the old plan, and one with the new follows
                // (if the plan changed: a reload of the log level costs no
                // second poll).
                if poll.is_none() {
                    poll = Some(start_poll(&engine, &plan, &current.retention, &polls));
                } else if plan != before {
                    poll_again = true;
                }
            }
        }
    }

    systemd::stopping();
    tracing::info!("stopping: no new work is claimed; transfers stop at the next chunk");
    schedule.stop().await;
    // The ledger's transactions keep it consistent wherever these stop;
    // events not handled yet stay queued for the next start.
    if let Some(poll) = poll {
        poll.abort();
    }
    event_runs.abort();
    work_stop.cancel();
    if !workers.wait(current.download.shutdown_timeout).await {
        tracing::warn!(
            "some transfers did not stop within download.shutdown_timeout; the next start resumes them"
        );
    }
    watchdog.abort();
    server_stop.cancel();
    let webhook = webhook.map(|w| w.server);
    for server in [server, webhook].into_iter().flatten() {
        match server.await {
            Ok(Ok(())) => {}
            Ok(Err(e)) => {
                tracing::warn!(error = %error_chain(&e), "the HTTP endpoint stopped with an error");
            }
            Err(e) => tracing::warn!(error = %error_chain(&e), "the HTTP endpoint task failed"),
        }
    }
    tracing::info!("stopped");
    Ok(())
}

/// Starts one poll of `plan` in its own task.
/// Retention (which re-reads archived files and may call DELETE) runs in
/// the same task after the poll, never in the loop: the loop must stay free
/// for ticks, reloads and stop requests. A stop aborts the task; an
/// interrupted deletion is resolved at the next start.
fn start_poll(
    engine: &Arc<Engine>,
    plan: &PollPlan,
    retention: &RetentionConfig,
    polls: &PollHistory,
) -> JoinHandle<PollReport> {
    polls.started();
    let (engine, plan, retention) = (Arc::clone(engine), plan.clone(), retention.clone());
    let span = tracing::info_span!("poll_run", meetings = plan.meetings.len());
    tokio::spawn(
        async move {
            let report = engine.poll(&plan).await;
            engine.retention(&retention).await;
            report
        }
        .instrument(span),
    )
}

/// The running task's end; never, while none runs.
async fn finished<T>(task: &mut Option<JoinHandle<T>>) -> Result<T, JoinError> {
    match task {
        Some(task) => task.await,
        None => std::future::pending().await,
    }
}

/// A finished poll for the health check: `Err` with its first error.
fn poll_result(finished: &Result<PollReport, JoinError>) -> Result<(), String> {
    match finished {
        Ok(report) => match report.errors.first() {
            None => Ok(()),
            Some(error) => Err(error_chain(error)),
        },
        Err(e) => Err(format!("the poll task failed: {e}")),
    }
}

fn report_poll(finished: Result<PollReport, JoinError>) {
    match finished {
        Ok(report) if report.errors.is_empty() => tracing::info!(
            listed = report.meetings,
            new_files = report.new_files,
            not_ready = report.not_ready.len(),
            settled = report.settled,
            "poll done"
        ),
        // Each failure was logged with its cause as it happened.
        Ok(report) => {
            let failed_meetings = report
                .errors
                .iter()
                .filter(|e| matches!(e, PollError::Meeting { .. }))
                .count();
            let discovery_failed = report
                .errors
                .iter()
                .any(|e| matches!(e, PollError::Discovery(_)));
            let ledger_failed = report
                .errors
                .iter()
                .any(|e| matches!(e, PollError::Settled(_)));
            tracing::error!(
                failed_meetings,
                discovery_failed,
                ledger_failed,
                listed = report.meetings,
                new_files = report.new_files,
                "poll done with errors"
            );
        }
        // A panic in a poll is a bug; the schedule goes on regardless.
        Err(e) => tracing::error!(error = %error_chain(&e), "the poll task failed"),
    }
}

/// Upkeep after each poll: claims the ledger refused to take back while it
/// was unavailable are requeued, and manifests whose write failed are
/// rewritten.
async fn after_poll(engine: &Engine) {
    if let Err(e) = engine.requeue_orphans().await {
        tracing::error!(error = %error_chain(&e), "cannot requeue files no worker owns");
    }
    engine.rewrite_stale_manifests().await;
}

/// Applies a reloaded config to the running parts.
async fn apply(
    new: Config,
    current: &mut Config,
    schedule: &mut Schedule,
    ticks: &mpsc::Sender<()>,
    workers: &mut WorkerSet,
    health: &Health,
) {
    if new.poll.schedule != schedule.expression() {
        match schedule.replace(&new.poll.schedule, ticks.clone()).await {
            Ok(()) => health.watch(schedule.liveness()),
            Err(e) => tracing::error!(error = %error_chain(&e), "keeping the previous schedule"),
        }
    }
    if new.download.workers != workers.len() {
        workers.resize(new.download.workers);
    }
    current.poll = new.poll;
    current.poll.schedule = schedule.expression().to_owned();
    current.download.workers = new.download.workers;
    current.retention = new.retention;
    current.webhook.accept_unlisted = new.webhook.accept_unlisted;
    tracing::info!(
        meetings = current.poll.meetings.len(),
        schedule = %schedule.expression(),
        workers = workers.len(),
        "config reloaded"
    );
}

/// Pings the systemd watchdog while the daemon is alive (schedule ticking,
/// ledger writable); a failing check withholds the ping, so systemd
/// restarts a hung daemon. Failing polls or a full disk do not: a restart
/// cannot fix them (`/healthz` reports them).
async fn watchdog(health: Health, shutdown: CancellationToken) {
    let Some(interval) = systemd::watchdog_interval() else {
        return;
    };
    loop {
        match health.alive().await {
            Ok(_) => systemd::watchdog(),
            Err(reason) => tracing::error!(
                reason = %error_chain(&reason),
                "unhealthy: withholding the watchdog ping"
            ),
        }
        tokio::select! {
            () = shutdown.cancelled() => return,
            () = tokio::time::sleep(interval) => {}
        }
    }
}

/// The STATUS line for systemd: files per state.
async fn status_line(ledger: &LedgerHandle) -> String {
    match ledger.call(|l| l.status(0)).await {
        Ok(s) => format!(
            "{} archived, {} pending, {} downloading, {} failed",
            s.files.done, s.files.pending, s.files.downloading, s.files.failed
        ),
        Err(e) => format!("ledger unavailable: {}", error_chain(&e)),
    }
}
