//! `sync`: one poll, then download until every known file is archived or
//! has failed for good, waiting out backoffs.

use super::shown::shown;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Duration;

use tokio_util::sync::CancellationToken;

use super::progress::ProgressDisplay;
use crate::config::Config;
use crate::ledger::{FileState, Status};
use crate::pipeline::Engine;
use crate::pipeline::{PollError, PollPlan, PollReport, StopWhen, build_engine, run_pool};
use crate::telemetry::error_chain;

/// How a `sync` runs.
#[derive(Clone, Copy, Debug)]
pub struct SyncOptions {
    /// How long past the run's last progress (a file archived or bytes
    /// received) backoffs are waited out: a file due later stays pending
    /// for the next run (`--max-wait`).
    pub max_wait: Duration,
}

impl Default for SyncOptions {
    fn default() -> Self {
        SyncOptions {
            max_wait: Duration::from_secs(60),
        }
    }
}

/// What a `sync` achieved.
#[derive(Debug)]
pub struct SyncOutcome {
    /// The ledger's summary at the end.
    pub status: Status,
    /// What the poll could not do: meetings it could not list, a failed
    /// discovery or ledger read (each already logged).
    pub poll_errors: Vec<PollError>,
    /// Meetings with no recording files yet.
    pub not_ready: Vec<String>,
    /// Whether shutdown was asked for before the queue drained.
    pub interrupted: bool,
    /// Files that failed for good during this run.
    pub failed_now: u64,
    /// Why downloads stopped for lack of disk space, if they did.
    pub disk_full: Option<String>,
}

impl SyncOutcome {
    /// The exit status: 0 when this run left nothing undone, else 1.
    ///
    /// Undone means: a meeting (or discovery) could not be listed, a file
    /// failed for good in this run, a file is still pending (its next
    /// attempt lies beyond `--max-wait`, or the disk is full), or the run
    /// was interrupted. Files that failed for good in an earlier run and
    /// were not revived with `retry` are reported, not counted: a file
    /// kept `failed` on purpose must not fail every later run.
    pub fn exit_code(&self) -> u8 {
        let files = &self.status.files;
        let clean = self.failed_now == 0
            && files.pending == 0
            && files.downloading == 0
            && self.poll_errors.is_empty()
            && self.disk_full.is_none()
            && !self.interrupted;
        if clean {
            super::exit::OK
        } else {
            super::exit::FAILED
        }
    }

    /// Files that failed for good in earlier runs (kept `failed`).
    pub fn failed_before(&self) -> u64 {
        u64::try_from(self.status.files.failed)
            .unwrap_or(0)
            .saturating_sub(self.failed_now)
    }
}

/// Runs one sync with the given config and default options; `cancel`
/// stops it at a safe point.
pub async fn sync(config: &Config, cancel: CancellationToken) -> anyhow::Result<SyncOutcome> {
    sync_with_options(config, SyncOptions::default(), cancel).await
}

/// Runs one sync with the given config and options.
pub async fn sync_with_options(
    config: &Config,
    options: SyncOptions,
    cancel: CancellationToken,
) -> anyhow::Result<SyncOutcome> {
    let engine = build_engine(config)?;
    engine.check_target().await?;
    sync_with(&engine, config, options, cancel).await
}

/// Runs one sync on an existing engine.
pub async fn sync_with(
    engine: &Arc<Engine>,
    config: &Config,
    options: SyncOptions,
    cancel: CancellationToken,
) -> anyhow::Result<SyncOutcome> {
    engine.recover_interrupted().await?;
    // The poll may wait out long API backoffs: a stop request wins.
    let plan = PollPlan::from(&config.poll);
    let report = tokio::select! {
        () = cancel.cancelled() => PollReport::default(),
        report = engine.poll(&plan) => report,
    };
    let queued = engine.ledger().call(|l| l.status(0)).await?.files;
    let display = ProgressDisplay::start(
        u64::try_from(queued.pending + queued.downloading).unwrap_or(0),
        Arc::clone(engine.progress()),
    );
    let stop = StopWhen::Drained {
        max_wait: options.max_wait,
    };
    let pool = run_pool(
        Arc::clone(engine),
        config.download.workers,
        cancel.clone(),
        stop,
    )
    .await;
    display.finish();
    pool?;
    // Put-backs the ledger refused for a while (then took again) left
    // rows `downloading` that no worker owns any more.
    engine.requeue_orphans().await?;
    // Deletion from the cloud follows a verified archive, never a failed run.
    if !cancel.is_cancelled() {
        engine.retention(&config.retention).await;
    }
    let disk_full = engine.disk_full().await?;
    let status = engine.ledger().call(|l| l.status(10)).await?;
    Ok(SyncOutcome {
        status,
        poll_errors: report.errors,
        not_ready: report.not_ready,
        interrupted: cancel.is_cancelled(),
        failed_now: engine.progress().files_failed.load(Ordering::Relaxed),
        disk_full,
    })
}

/// Prints what a `sync` did, for people (logs went to standard error).
pub fn print_sync(outcome: &SyncOutcome) {
    let f = &outcome.status.files;
    println!(
        "sync: {} archived, {} failed, {} pending; {} bytes in the archive",
        f.done, f.failed, f.pending, outcome.status.bytes_archived
    );
    for meeting in &outcome.not_ready {
        println!(
            "sync: meeting {} has no recording files yet",
            shown(meeting)
        );
    }
    // "sync: could not list meeting X: …", or one line for discovery or
    // the ledger.
    for error in &outcome.poll_errors {
        println!("sync: {}", shown(&error_chain(error)));
    }
    // One line per distinct error: a refused host certificate fails all
    // its files with the same message.
    let mut groups: Vec<(&str, Vec<&str>)> = Vec::new();
    for e in outcome
        .status
        .last_errors
        .iter()
        .filter(|e| e.state == FileState::Failed)
    {
        match groups.iter_mut().find(|(error, _)| *error == e.error) {
            Some((_, paths)) => paths.push(&e.rel_path),
            None => groups.push((&e.error, vec![&e.rel_path])),
        }
    }
    for (error, paths) in groups {
        match paths.as_slice() {
            [one] => println!("sync: FAILED {}: {}", shown(one), shown(error)),
            [first, rest @ ..] => println!(
                "sync: FAILED {} and {} more: {}",
                shown(first),
                rest.len(),
                shown(error)
            ),
            [] => {}
        }
    }
    if let Some(why) = &outcome.disk_full {
        println!("sync: stopped: {why}; free space and run it again");
    }
    if f.pending > 0 && outcome.disk_full.is_none() && !outcome.interrupted {
        println!(
            "sync: {} file(s) wait for a retry later than --max-wait; the next run (or the daemon) takes them",
            f.pending
        );
    }
    let before = outcome.failed_before();
    if before > 0 {
        println!(
            "sync: {before} file(s) failed for good in earlier runs (see `status`; `retry` queues them again)"
        );
    }
    if outcome.interrupted {
        println!("sync: interrupted; run it again to resume");
    }
}
