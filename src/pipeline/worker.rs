//! The download workers: a thin loop around [`Engine::process_next`], the
//! single step that claims one due file, gets it a fresh token if needed,
//! transfers it, places it in the archive and records the outcome. Tests
//! drive the step directly.

use std::time::Duration;

use tokio_util::sync::CancellationToken;
use tracing::Instrument;

use super::settle::Watch;
use super::{Engine, EngineError};
use crate::clock::Millis;
use crate::cloud::CloudError;
use crate::download::{self, FetchError, Fetched, Transfer};
use crate::ledger::{ClaimedFile, SpentToken};
use crate::telemetry::error_chain;

/// What one step did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    /// A file was archived.
    Done,
    /// No file is due now.
    Idle,
    /// A file failed and is queued again after a backoff (or, after a
    /// body of unannounced length, at once for the probe that confirms it).
    Retry,
    /// A file failed for the last time (`max_attempts`).
    Failed,
    /// Shutdown stopped a transfer; it will resume later.
    Interrupted,
    /// The archive's disk is too full to claim or write a file; nothing was
    /// counted against any file. Claims resume when space returns.
    DiskFull,
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
    /// Claims and processes one due file, unless the archive's disk is too
    /// full. However the step ends, the claim is put back or recorded: a
    /// ledger that refuses the put-back is retried for
    /// `ledger.retry_for`, and a claim it still refuses is dropped from
    /// this process's claims, so it is requeued as soon as the ledger
    /// takes writes again ([`Engine::requeue_orphans`]); the step then
    /// fails with [`EngineError::Unrecorded`].
    pub async fn process_next(&self, cancel: &CancellationToken) -> Result<Outcome, EngineError> {
        if cancel.is_cancelled() {
            return Ok(Outcome::Interrupted);
        }
        if self.disk_full().await?.is_some() {
            return Ok(Outcome::DiskFull);
        }
        let (file, _claim) = {
            let _gate = self.claim_gate.read().await;
            let Some(file) = self.ledger.call(|l| l.claim_next(Millis::now())).await? else {
                return Ok(Outcome::Idle);
            };
            let claim = self.hold(file.id);
            (file, claim)
        };
        // At error level so that the meeting and file stay on every line,
        // whatever the log filter.
        let span = tracing::error_span!("file", meeting = %file.conf_uuid, file = %file.rel_path);
        let outcome = self
            .process_claimed(&file, cancel)
            .instrument(span.clone())
            .await;
        self.wake.notify_waiters();
        if matches!(outcome, Ok(Outcome::Failed)) {
            self.forget_event_wait(file.id);
        }
        match outcome {
            Err(e) => {
                let error = error_chain(&e);
                tracing::error!(parent: &span, %error, "processing the file failed");
                self.put_back(&file, &error, file.partial_bytes)
                    .instrument(span)
                    .await
                    .map_err(|refused| EngineError::Unrecorded {
                        rel_path: file.rel_path.clone(),
                        source: Box::new(refused),
                    })
            }
            ok => ok,
        }
    }

    async fn process_claimed(
        &self,
        file: &ClaimedFile,
        cancel: &CancellationToken,
    ) -> Result<Outcome, EngineError> {
        if let Some(staged) = &file.staged {
            return self.upload_staged(file, staged, cancel).await;
        }
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
                Taken::Interrupted => return self.release(file, resume_from).await,
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
                Ok(fetched) => return self.settle(file, fetched, cancel).await,
                Err(FetchError::Interrupted { partial, .. }) => {
                    return self.release(file, partial).await;
                }
                Err(FetchError::DiskFull {
                    detail, partial, ..
                }) => {
                    tracing::error!(error = %detail, "the archive's disk is full; the file waits, uncounted");
                    self.note_out_of_space();
                    self.release(file, partial).await?;
                    self.disk_full().await?;
                    return Ok(Outcome::DiskFull);
                }
                Err(FetchError::Permanent { detail, .. }) => {
                    return self.fail_now(file, &detail).await;
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
            let max_age = self.settings.token_max_age;
            let (token, generation) = self
                .ledger
                .call(move |l| {
                    let now = Millis::now();
                    let generation = l.url_generation(&conf)?;
                    Ok((
                        l.take_token(id, now.saturating_sub(max_age), resume_from, now)?,
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
        issued_at: Millis,
    ) -> Result<(), EngineError> {
        let (id, after) = (file.id, issued_at + Duration::from_millis(1));
        self.ledger
            .call(move |l| l.supersede_tokens(id, after, Millis::now()))
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
            checkpoint_every: self.settings.checkpoint_interval,
            // A body of unannounced length ended at the candidate's size:
            // resuming there asks the server to confirm that end.
            confirm_end: file
                .candidate
                .as_ref()
                .map(|(size, _)| *size)
                .filter(|&size| size == resume_from),
            media: download::is_media(&file.file_type, &file.rel_path),
        };
        tracing::debug!(resume_from, "downloading");
        let watch = Watch {
            engine: self,
            file: file.id,
        };
        download::fetch(transfer, cancel, &watch).await
    }
}
