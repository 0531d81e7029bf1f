//! The download workers: a thin loop around [`Engine::process_next`], the
//! single step that claims one due file, gets it a fresh token if needed,
//! transfers it, places it in the archive and records the outcome. Tests
//! drive the step directly.

use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use crate::download::{self, FetchError, Fetched, Transfer};
use std::sync::atomic::Ordering;

use super::{Engine, EngineError};
use crate::cloud::CloudError;
use crate::ledger::{AttemptEnd, AttemptOutcome, ClaimedFile, RetryPlan, SpentToken, now_ms};
use crate::telemetry::error_chain;

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A file was archived.
    Done,
    /// No file is due now.
    Idle,
    /// A file failed and is queued again after a backoff.
    Retry,
    /// A file failed for the last time (`max_attempts`).
    Failed,
    /// Shutdown stopped a transfer; it will resume later.
    Interrupted,
}

/// What looking for a download token gave.
enum Taken {
    /// A token, already spent in the ledger.
    Token(SpentToken),
    /// Even a fresh listing has no URL for this file.
    Unlisted,
    /// Listing the meeting's URLs failed; the file is retried later.
    RefreshFailed(CloudError),
    /// Shutdown came while waiting for the listing.
    Interrupted,
}

/// A token refusal right after a refresh is a real failure; before that it
/// only means "stale token". Two refusals in one claim end the claim.
const MAX_REFUSALS_PER_CLAIM: u32 = 2;

impl Engine {
    /// Claims and processes one due file.
    pub async fn process_next(&self, cancel: &CancellationToken) -> Result<Outcome, EngineError> {
        if cancel.is_cancelled() {
            return Ok(Outcome::Interrupted);
        }
        let Some(file) = self.ledger.call(|l| l.claim_next(now_ms())).await? else {
            return Ok(Outcome::Idle);
        };
        // At error level so that the meeting and file stay on every line,
        // whatever the log filter.
        let span = tracing::error_span!("file", meeting = %file.conf_uuid, file = %file.rel_path);
        let outcome = self
            .process_claimed(&file, cancel)
            .instrument(span.clone())
            .await;
        self.wake.notify_waiters();
        match outcome {
            Err(e) => {
                // Never leave a claimed file `downloading`: put it back with
                // the error (if the ledger itself fails, the next start does).
                let error = error_chain(&e);
                tracing::error!(parent: &span, %error, "processing the file failed");
                self.retry_later(&file, &error, file.partial_bytes)
                    .instrument(span)
                    .await
                    .map_err(|_| e)
            }
            ok => ok,
        }
    }

    async fn process_claimed(
        &self,
        file: &ClaimedFile,
        cancel: &CancellationToken,
    ) -> Result<Outcome, EngineError> {
        let mut refusals = 0;
        let resume_from = file.partial_bytes;
        loop {
            let spent = match self.take_token(file, resume_from, cancel).await? {
                Taken::Token(spent) => spent,
                Taken::Unlisted => {
                    let error = "the cloud no longer lists this file";
                    return self.retry_later(file, error, resume_from).await;
                }
                Taken::RefreshFailed(e) => {
                    let error =
                        format!("getting a fresh download token failed: {}", error_chain(&e));
                    return self.retry_later(file, &error, resume_from).await;
                }
                Taken::Interrupted => {
                    let id = file.id;
                    self.ledger
                        .call(move |l| l.release(id, resume_from, now_ms()))
                        .await?;
                    return Ok(Outcome::Interrupted);
                }
            };
            let url = {
                let id = file.id;
                self.ledger.call(move |l| l.file_url(id)).await?
            };
            let started = std::time::Instant::now();
            let result = self.transfer(file, &url, &spent, resume_from, cancel).await;
            self.record_attempt(&spent, &result, started.elapsed())
                .await?;
            match result {
                Ok(fetched) => return self.finish(file, fetched).await,
                Err(FetchError::Interrupted { partial, .. }) => {
                    let id = file.id;
                    self.ledger
                        .call(move |l| l.release(id, partial, now_ms()))
                        .await?;
                    return Ok(Outcome::Interrupted);
                }
                Err(FetchError::TokenRejected { detail, .. }) => {
                    refusals += 1;
                    tracing::info!(reason = %detail, "download token refused");
                    if refusals >= MAX_REFUSALS_PER_CLAIM {
                        let error =
                            format!("download token refused again after a refresh: {detail}");
                        return self.retry_later(file, &error, resume_from).await;
                    }
                    // The next take_token finds no usable token and refreshes.
                    self.discard_tokens_before(file, spent.issued_at).await?;
                }
                Err(FetchError::Failed {
                    detail, partial, ..
                }) => {
                    tracing::warn!(error = %detail, kept = partial, "download failed");
                    return self.retry_later(file, &detail, partial).await;
                }
            }
        }
    }

    /// A usable token for the file, spent in the ledger: a stored one if
    /// young enough, else one from a fresh listing of the meeting.
    async fn take_token(
        &self,
        file: &ClaimedFile,
        resume_from: u64,
        cancel: &CancellationToken,
    ) -> Result<Taken, EngineError> {
        for refreshed in [false, true] {
            let (id, conf) = (file.id, file.conf_uuid.clone());
            let max_age =
                i64::try_from(self.settings.token_max_age.as_millis()).unwrap_or(i64::MAX);
            let (token, generation) = self
                .ledger
                .call(move |l| {
                    let now = now_ms();
                    let generation = l.url_generation(&conf)?;
                    Ok((
                        l.take_token(id, now - max_age, resume_from, now)?,
                        generation,
                    ))
                })
                .await?;
            match token {
                Some(token) => return Ok(Taken::Token(token)),
                None if refreshed => return Ok(Taken::Unlisted),
                None => {}
            }
            let refresh = tokio::select! {
                () = cancel.cancelled() => return Ok(Taken::Interrupted),
                r = self.refresh_if_stale(&file.conf_uuid, generation) => r,
            };
            match refresh {
                Ok(()) => {}
                Err(EngineError::Cloud(e)) => return Ok(Taken::RefreshFailed(e)),
                Err(e) => return Err(e),
            }
        }
        Ok(Taken::Unlisted)
    }

    /// After a refusal, older unspent tokens of the file are no better.
    async fn discard_tokens_before(
        &self,
        file: &ClaimedFile,
        issued_at: i64,
    ) -> Result<(), EngineError> {
        let id = file.id;
        self.ledger
            .call(move |l| l.supersede_tokens(id, issued_at + 1, now_ms()))
            .await?;
        Ok(())
    }

    async fn transfer(
        &self,
        file: &ClaimedFile,
        url: &str,
        spent: &SpentToken,
        resume_from: u64,
        cancel: &CancellationToken,
    ) -> Result<Fetched, FetchError> {
        let parsed = url::Url::parse(url).map_err(|e| FetchError::Failed {
            status: None,
            detail: format!("invalid download URL: {e}"),
            partial: resume_from,
            received: 0,
        })?;
        let partial = self.archive.partial_path(file.id);
        let transfer = Transfer {
            client: self.downloads.for_url(&parsed),
            url,
            token: &spent.token,
            partial: &partial,
            resume_from,
        };
        tracing::debug!(resume_from, "downloading");
        let on_bytes = |n| {
            self.progress.bytes.fetch_add(n, Ordering::Relaxed);
        };
        download::fetch(transfer, cancel, &on_bytes).await
    }

    async fn record_attempt(
        &self,
        spent: &SpentToken,
        result: &Result<Fetched, FetchError>,
        took: std::time::Duration,
    ) -> Result<(), EngineError> {
        let (outcome, bytes, status, error) = match result {
            Ok(f) => (AttemptOutcome::Done, f.received, Some(f.status), None),
            Err(FetchError::TokenRejected { status, detail }) => (
                AttemptOutcome::TokenRejected,
                0,
                Some(*status),
                Some(detail.clone()),
            ),
            Err(FetchError::Failed {
                status,
                detail,
                received,
                ..
            }) => (
                AttemptOutcome::Failed,
                *received,
                *status,
                Some(detail.clone()),
            ),
            Err(FetchError::Interrupted { received, .. }) => {
                (AttemptOutcome::Interrupted, *received, None, None)
            }
        };
        self.metrics.download(outcome.as_str(), took.as_secs_f64());
        let attempt_id = spent.attempt_id;
        self.ledger
            .call(move |l| {
                let end = AttemptEnd {
                    outcome,
                    bytes,
                    http_status: status,
                    error: error.as_deref(),
                };
                l.finish_attempt(attempt_id, &end, now_ms())
            })
            .await?;
        Ok(())
    }

    /// Moves the verified file into place, then (only then) marks it done.
    async fn finish(&self, file: &ClaimedFile, fetched: Fetched) -> Result<Outcome, EngineError> {
        let partial = self.archive.partial_path(file.id);
        if let Err(e) = self.archive.place(&partial, &file.rel_path).await {
            let error = format!(
                "placing the file in the archive failed: {}",
                error_chain(&e)
            );
            tracing::error!(%error);
            return self.retry_later(file, &error, 0).await;
        }
        let (id, size, sha) = (file.id, fetched.size, fetched.sha256.clone());
        self.ledger
            .call(move |l| l.mark_done(id, size, &sha, now_ms()))
            .await?;
        self.progress.files_done.fetch_add(1, Ordering::Relaxed);
        tracing::info!(size, sha256 = %fetched.sha256, "archived");
        if let Err(e) = self.write_manifest(&file.conf_uuid).await {
            tracing::warn!(error = %error_chain(&e), "could not write the meeting manifest");
        }
        Ok(Outcome::Done)
    }

    /// Records a failure: back in the queue after a backoff, or failed for
    /// good at `max_attempts`.
    async fn retry_later(
        &self,
        file: &ClaimedFile,
        error: &str,
        partial: u64,
    ) -> Result<Outcome, EngineError> {
        let delay = self.settings.download_backoff.delay(file.attempts);
        let next = now_ms() + i64::try_from(delay.as_millis()).unwrap_or(i64::MAX / 2);
        let (id, error_owned, max) = (file.id, error.to_owned(), self.settings.max_attempts);
        let failed = self
            .ledger
            .call(move |l| {
                l.set_partial(id, partial)?;
                let plan = RetryPlan {
                    error: &error_owned,
                    next_attempt_at: next,
                    max_attempts: max,
                };
                l.schedule_retry(id, &plan, now_ms())
            })
            .await?;
        if failed {
            self.progress.files_failed.fetch_add(1, Ordering::Relaxed);
            tracing::error!(attempts = max, %error, "giving up on this file; `retry` queues it again");
            Ok(Outcome::Failed)
        } else {
            tracing::info!(retry_in = ?delay, "will retry");
            Ok(Outcome::Retry)
        }
    }
}
