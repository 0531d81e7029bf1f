//! How a claimed file's step ends, in the ledger: archived (placed, then
//! marked done), held as a candidate whose length awaits confirmation, put
//! back for a retry, failed for good, or released untouched. Each attempt
//! is closed with its outcome, and a transfer's checkpoints are recorded
//! as it goes.

use std::sync::atomic::Ordering;
use std::time::{Duration, Instant};

use super::upload::Unplaced;
use super::{Engine, EngineError, Outcome};
use crate::clock::Millis;
use crate::download::{FetchError, Fetched, Observer, prefix_digest};
use crate::ledger::{
    AttemptEnd, AttemptOutcome, ClaimedFile, DoneMark, FileId, RetryPlan, SpentToken,
};
use crate::telemetry::error_chain;
use tokio_util::sync::CancellationToken;

impl Engine {
    pub(super) async fn record_attempt(
        &self,
        spent: &SpentToken,
        result: &Result<Fetched, FetchError>,
        took: Duration,
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
            Err(FetchError::DiskFull {
                detail, received, ..
            }) => (
                AttemptOutcome::DiskFull,
                *received,
                None,
                Some(detail.clone()),
            ),
            Err(FetchError::Permanent { detail, .. }) => {
                (AttemptOutcome::Failed, 0, None, Some(detail.clone()))
            }
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
                l.finish_attempt(attempt_id, &end, Millis::now())
            })
            .await?;
        Ok(())
    }

    /// A complete body: archived if its length is known; otherwise kept
    /// as a candidate until a probe (or an agreeing second transfer)
    /// confirms where it ends.
    pub(super) async fn settle(
        &self,
        file: &ClaimedFile,
        fetched: Fetched,
        cancel: &CancellationToken,
    ) -> Result<Outcome, EngineError> {
        let same = file
            .candidate
            .as_ref()
            .is_some_and(|(size, sha)| *size == fetched.size && *sha == fetched.sha256);
        // Only a second *whole* transfer can agree with the first: a resumed
        // one that brought nothing (a 206 with an empty body, whatever its
        // Content-Range said) is the same bytes again, not a confirmation.
        let agrees = same && fetched.received == fetched.size;
        if fetched.status == 416 && !same {
            // A 416 confirmed the end, but the bytes on disk are not the
            // ones received: start over rather than archive them.
            let error = "the partial file changed on disk since it was received; starting over";
            return self.retry_later(file, error, 0).await;
        }
        if fetched.length_confirmed || agrees {
            if agrees && !fetched.length_confirmed {
                tracing::info!("a second transfer agrees with the first: length confirmed");
            }
            let confirmed = Fetched {
                length_confirmed: true,
                ..fetched
            };
            return self.finish(file, &confirmed, Some(cancel)).await;
        }
        let counted = file.candidate.is_some();
        if counted && file.attempts + 1 >= self.settings.max_attempts {
            tracing::warn!(
                size = fetched.size,
                "nothing confirms where this file ends; archiving it flagged length_unconfirmed"
            );
            return self.finish(file, &fetched, Some(cancel)).await;
        }
        tracing::info!(
            size = fetched.size,
            "the server announced no length; probing its end before archiving"
        );
        let (id, sha) = (file.id, fetched.sha256.clone());
        let size = fetched.size;
        self.ledger
            .call(move |l| l.await_confirmation(id, (size, &sha), counted, Millis::now()))
            .await?;
        Ok(Outcome::Retry)
    }

    /// Moves the verified file into place, then (only then) marks it done,
    /// flagged by `fetched.length_confirmed`. `cancel` stops an upload at a
    /// part boundary (the file stays staged).
    pub(super) async fn finish(
        &self,
        file: &ClaimedFile,
        fetched: &Fetched,
        cancel: Option<&CancellationToken>,
    ) -> Result<Outcome, EngineError> {
        match self.place_done(file, fetched, cancel).await? {
            Ok(()) => Ok(Outcome::Done),
            Err(Unplaced::OutOfSpace(error)) => {
                // Not the file's fault: it waits, uncounted, with its whole
                // body kept in the partial area.
                tracing::error!(%error, "the archive's disk is full; the file waits, uncounted");
                self.note_out_of_space();
                self.release(file, fetched.size).await?;
                self.disk_full().await?;
                Ok(Outcome::DiskFull)
            }
            Err(Unplaced::Other(error)) => self.retry_later(file, &error, 0).await,
            Err(Unplaced::Upload(error)) => self.retry_later(file, &error, fetched.size).await,
            Err(Unplaced::Store { error, refused }) => {
                self.store_failed(file, &error, refused, fetched.size).await
            }
            Err(Unplaced::Unstorable(error)) => self.fail_now(file, &error).await,
            Err(Unplaced::Interrupted) => {
                tracing::info!(
                    "upload stopped for shutdown; the verified copy is kept for the next start"
                );
                self.release(file, fetched.size).await
            }
            Err(Unplaced::StagedLost(error)) => {
                // Gone or changed on disk: download it again from the start.
                let id = file.id;
                self.ledger.call(move |l| l.unstage(id)).await?;
                if let Err(e) = self.archive.remove_partial(file.id) {
                    tracing::warn!(error = %e, "cannot remove the changed partial file");
                }
                self.retry_later(file, &error, 0).await
            }
        }
    }

    /// Places the file and marks it done; `Ok(Err(why))` if it could not
    /// be placed (the ledger is untouched then).
    async fn place_done(
        &self,
        file: &ClaimedFile,
        fetched: &Fetched,
        cancel: Option<&CancellationToken>,
    ) -> Result<Result<(), Unplaced>, EngineError> {
        if let Err(why) = self.put_in_place(file, fetched, cancel).await? {
            return Ok(Err(why));
        }
        let (id, size, sha) = (file.id, fetched.size, fetched.sha256.clone());
        let length_confirmed = fetched.length_confirmed;
        self.ledger
            .call(move |l| {
                let done = DoneMark {
                    size,
                    sha256: &sha,
                    length_confirmed,
                };
                l.mark_done(id, &done, Millis::now())
            })
            .await?;
        if self.archive.bucket().is_some() {
            // Uploaded: the local copy goes only now that the ledger says
            // done (a crash before this leaves it to start-up's clean-up).
            if let Err(e) = self.archive.remove_partial(file.id) {
                tracing::warn!(error = %e, "cannot remove the uploaded file's local copy");
            }
        }
        self.progress.files_done.fetch_add(1, Ordering::Relaxed);
        self.archived_after_event(file.id);
        tracing::info!(size, sha256 = %fetched.sha256, "archived");
        self.refresh_manifest(&file.conf_uuid).await;
        Ok(Ok(()))
    }

    /// Records a failure: back in the queue after a backoff, or failed for
    /// good at `max_attempts` (its partial file removed, unless it holds
    /// exactly a candidate whose end no probe could confirm: that one is
    /// archived, flagged, rather than lost).
    pub(super) async fn retry_later(
        &self,
        file: &ClaimedFile,
        error: &str,
        partial: u64,
    ) -> Result<Outcome, EngineError> {
        let max = self.settings.max_attempts;
        if file.attempts + 1 >= max
            && let Some(outcome) = self.archive_candidate(file, partial).await?
        {
            return Ok(outcome);
        }
        let delay = self.settings.download_backoff.delay(file.attempts);
        let (id, error_owned) = (file.id, error.to_owned());
        let next = Millis::now() + delay;
        let failed = self
            .ledger
            .call(move |l| {
                let plan = RetryPlan {
                    error: &error_owned,
                    next_attempt_at: next,
                    max_attempts: max,
                    partial_bytes: partial,
                };
                l.schedule_retry(id, &plan, Millis::now())
            })
            .await?;
        if failed {
            self.progress.files_failed.fetch_add(1, Ordering::Relaxed);
            tracing::error!(attempts = max, %error, "giving up on this file; `retry` queues it again");
            if let Err(e) = self.archive.remove_partial(file.id) {
                tracing::warn!(error = %e, "cannot remove the partial file");
            }
            Ok(Outcome::Failed)
        } else {
            tracing::info!(retry_in = ?delay, "will retry");
            Ok(Outcome::Retry)
        }
    }

    /// Marks a file failed for good now: retrying cannot help (its host's
    /// certificate is refused). `retry` revives it once the setting is fixed.
    pub(super) async fn fail_now(
        &self,
        file: &ClaimedFile,
        error: &str,
    ) -> Result<Outcome, EngineError> {
        let (id, error_owned) = (file.id, error.to_owned());
        self.ledger
            .call(move |l| {
                let plan = RetryPlan {
                    error: &error_owned,
                    next_attempt_at: Millis::now(),
                    max_attempts: 0,
                    partial_bytes: 0,
                };
                l.schedule_retry(id, &plan, Millis::now())
            })
            .await?;
        // Like any file failed for good: its partial data cannot keep the
        // disk full (`retry` starts it over).
        if let Err(e) = self.archive.remove_partial(file.id) {
            tracing::warn!(error = %e, "cannot remove the partial file");
        }
        self.progress.files_failed.fetch_add(1, Ordering::Relaxed);
        tracing::error!(%error, "failing this file now: retrying cannot help; `retry` queues it again");
        Ok(Outcome::Failed)
    }

    /// The last resort for a body of unannounced length: if the partial
    /// file still holds the candidate and nothing more (`partial` durable
    /// bytes), archive it flagged.
    async fn archive_candidate(
        &self,
        file: &ClaimedFile,
        partial: u64,
    ) -> Result<Option<Outcome>, EngineError> {
        let Some((size, sha)) = &file.candidate else {
            return Ok(None);
        };
        if partial != *size {
            // More bytes came after the candidate's end: the file is longer,
            // so the candidate is refuted, not unconfirmed. Fewer: it is
            // gone (a restart replaced it, or the attempt started over).
            return Ok(None);
        }
        let path = self.archive.partial_path(file.id);
        let held = prefix_digest(&path, *size)
            .await
            .map_err(|source| EngineError::Partial {
                path: path.clone(),
                source,
            })?;
        if held.as_ref() != Some(sha) {
            return Ok(None);
        }
        tracing::warn!(
            size,
            "nothing confirmed where this file ends; archiving the body received, flagged length_unconfirmed"
        );
        let fetched = Fetched {
            size: *size,
            sha256: sha.clone(),
            received: 0,
            status: 0,
            length_confirmed: false,
        };
        let placed = self.place_done(file, &fetched, None).await?;
        Ok(placed.ok().map(|()| Outcome::Done))
    }

    /// Puts a claimed file back after its step failed, retrying for
    /// `ledger.retry_for` while the ledger refuses the write.
    pub(super) async fn put_back(
        &self,
        file: &ClaimedFile,
        error: &str,
        partial: u64,
    ) -> Result<Outcome, EngineError> {
        let deadline = Instant::now() + self.settings.ledger_patience;
        let mut pause = Duration::from_millis(100);
        loop {
            match self.retry_later(file, error, partial).await {
                Ok(outcome) => return Ok(outcome),
                Err(e) if Instant::now() + pause < deadline => {
                    tracing::warn!(error = %error_chain(&e), retry_in = ?pause, "the ledger refused to put the file back");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
                Err(e) => {
                    tracing::error!(error = %error_chain(&e), "the ledger still refuses; the file is requeued once it takes writes");
                    return Err(e);
                }
            }
        }
    }

    /// Returns a claimed file to the queue untouched (shutdown, full disk),
    /// keeping `partial` durable bytes for resuming.
    pub(super) async fn release(
        &self,
        file: &ClaimedFile,
        partial: u64,
    ) -> Result<Outcome, EngineError> {
        let id = file.id;
        self.ledger
            .call(move |l| l.release(id, partial, Millis::now()))
            .await?;
        Ok(Outcome::Interrupted)
    }
}

/// A transfer's reports: bytes go to the progress counters, checkpoints to
/// the ledger (so that a crash resumes from the last one).
pub(super) struct Watch<'a> {
    pub(super) engine: &'a Engine,
    pub(super) file: FileId,
}

impl Observer for Watch<'_> {
    fn bytes(&self, n: u64) {
        self.engine.progress.bytes.fetch_add(n, Ordering::Relaxed);
    }

    async fn checkpoint(&self, durable: u64) {
        let id = self.file;
        let saved = self
            .engine
            .ledger
            .call(move |l| l.set_partial(id, durable))
            .await;
        if let Err(e) = saved {
            // Not fatal: a crash now resumes from the previous checkpoint.
            tracing::warn!(error = %e, durable, "could not record a download checkpoint");
        }
    }
}
