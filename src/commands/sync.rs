//! `sync`: one poll, then download until every known file is archived or
//! has failed for good, waiting out backoffs.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use super::progress::ProgressDisplay;
use crate::config::Config;
use crate::ledger::{FileState, Status};
use crate::pipeline::Engine;
use crate::pipeline::{PollError, PollPlan, PollReport, StopWhen, build_engine, run_pool};
use crate::telemetry::error_chain;

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
}

impl SyncOutcome {
    /// The exit status: 0 when every known file is archived and every
    /// meeting could be listed, else 1.
    pub fn exit_code(&self) -> u8 {
        let clean = self.status.files.failed == 0
            && self.status.files.pending == 0
            && self.poll_errors.is_empty()
            && !self.interrupted;
        if clean {
            super::exit::OK
        } else {
            super::exit::FAILED
        }
    }
}

/// Runs one sync with the given config; `cancel` stops it at a safe point.
pub async fn sync(config: &Config, cancel: CancellationToken) -> anyhow::Result<SyncOutcome> {
    let engine = build_engine(config)?;
    sync_with(&engine, config, cancel).await
}

/// Runs one sync on an existing engine.
pub async fn sync_with(
    engine: &Arc<Engine>,
    config: &Config,
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
    let pool = run_pool(
        Arc::clone(engine),
        config.download.workers,
        cancel.clone(),
        StopWhen::Drained,
    )
    .await;
    display.finish();
    pool?;
    let status = engine.ledger().call(|l| l.status(10)).await?;
    Ok(SyncOutcome {
        status,
        poll_errors: report.errors,
        not_ready: report.not_ready,
        interrupted: cancel.is_cancelled(),
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
        println!("sync: meeting {meeting} has no recording files yet");
    }
    // "sync: could not list meeting X: …", or one line for discovery or
    // the ledger.
    for error in &outcome.poll_errors {
        println!("sync: {}", error_chain(error));
    }
    for e in outcome
        .status
        .last_errors
        .iter()
        .filter(|e| e.state == FileState::Failed)
    {
        println!("sync: FAILED {}: {}", e.rel_path, e.error);
    }
    if outcome.interrupted {
        println!("sync: interrupted; run it again to resume");
    }
}
