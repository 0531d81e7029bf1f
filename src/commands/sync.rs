//! `sync`: one poll, then download until every known file is archived or
//! has failed for good, waiting out backoffs.

use std::sync::Arc;

use tokio_util::sync::CancellationToken;

use crate::config::Config;
use crate::engine::Engine;
use crate::ledger::Status;
use crate::poll::{PollPlan, PollReport};
use crate::pool::{StopWhen, run_pool};
use crate::progress::ProgressDisplay;
use crate::startup::build_engine;

/// What a `sync` achieved.
#[derive(Debug)]
pub struct SyncOutcome {
    /// The ledger's summary at the end.
    pub status: Status,
    /// Meetings whose listing failed.
    pub poll_errors: Vec<(String, String)>,
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
    for (meeting, error) in &report.errors {
        tracing::error!(%meeting, %error, "could not list this meeting");
    }
    let display = ProgressDisplay::start(Arc::clone(engine)).await?;
    let pool = run_pool(
        Arc::clone(engine),
        config.download.workers,
        cancel.clone(),
        StopWhen::Drained,
    )
    .await;
    display.finish();
    pool?;
    let status = engine.ledger.call(|l| l.status(10)).await?;
    Ok(SyncOutcome {
        status,
        poll_errors: report.errors,
        not_ready: report.not_ready,
        interrupted: cancel.is_cancelled(),
    })
}
