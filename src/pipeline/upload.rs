//! Putting a verified file in its final place when that may be a bucket:
//! the file is staged in the ledger before its upload, its multipart
//! upload id is journaled, uploads are counted in the metrics, and a
//! failed placement is classified (full disk, store failure, lost staged
//! copy, shutdown). A staged file claimed again skips the download.

use std::sync::atomic::Ordering;
use std::time::Instant;

use tokio_util::sync::CancellationToken;

use super::{Engine, EngineError, Outcome};
use crate::archive::{Journaled, Placement, UploadFault, UploadJournal};
use crate::clock::Millis;
use crate::download::Fetched;
use crate::ledger::{ClaimedFile, FileId, Staged};
use crate::telemetry::error_chain;

/// The condition name a bucket that refuses us is recorded under.
pub const STORE_REFUSED: &str = "store_refused";

/// Why a complete file could not be placed in the archive.
pub(super) enum Unplaced {
    /// The disk is full: not the file's fault.
    OutOfSpace(String),
    /// Anything else (permissions, a file in the way).
    Other(String),
    /// The upload failed for a local reason (reading the staged copy, the
    /// ledger's journal): the verified partial file stays staged for the
    /// next attempt, which is counted.
    Upload(String),
    /// The store refused (`refused`: credentials, missing bucket) or
    /// failed the upload: not the file's fault, so no attempt is counted
    /// and the staged copy is kept whatever happens.
    Store {
        /// The store's answer.
        error: String,
        /// Whether the store refused us (a condition until it takes an
        /// upload again) rather than failed.
        refused: bool,
    },
    /// The staged partial file is gone, or no longer holds the verified
    /// bytes: the file is downloaded again.
    StagedLost(String),
    /// The file's object key cannot exist: retrying cannot help.
    Unstorable(String),
    /// Shutdown stopped the upload (aborted, the file stays staged).
    Interrupted,
}

impl Engine {
    /// A claimed file whose verified body waits in the partial area for
    /// its upload (a crash, a shutdown or a failing store interrupted it):
    /// upload it, or mark it done if the store already holds it. No
    /// download, no token.
    pub(super) async fn upload_staged(
        &self,
        file: &ClaimedFile,
        staged: &Staged,
        cancel: &CancellationToken,
    ) -> Result<Outcome, EngineError> {
        tracing::info!(
            size = staged.size,
            "verified earlier; uploading the kept copy"
        );
        let fetched = Fetched {
            size: staged.size,
            sha256: staged.sha256.clone(),
            received: 0,
            status: 0,
            length_confirmed: staged.length_confirmed,
        };
        self.finish(file, &fetched, Some(cancel)).await
    }

    /// Places the verified partial file of `file` (renamed, or uploaded
    /// after staging it in the ledger); `Ok(Err(why))` if it could not be.
    pub(super) async fn put_in_place(
        &self,
        file: &ClaimedFile,
        fetched: &Fetched,
        cancel: Option<&CancellationToken>,
    ) -> Result<Result<(), Unplaced>, EngineError> {
        let partial = self.archive.partial_path(file.id);
        let placement = Placement {
            rel: &file.rel_path,
            size: fetched.size,
            sha256: &fetched.sha256,
            meeting: &file.conf_uuid,
            earlier_upload: file.open_upload.as_deref(),
            resumed: file.staged.is_some(),
            cancel,
            journal: &UploadLog {
                engine: self,
                file: file.id,
            },
        };
        let uploads = self.archive.bucket().is_some();
        if uploads {
            let staged = Staged {
                size: fetched.size,
                sha256: fetched.sha256.clone(),
                length_confirmed: fetched.length_confirmed,
            };
            let id = file.id;
            self.ledger.call(move |l| l.stage(id, &staged)).await?;
        }
        let started = Instant::now();
        let placed = self.archive.place(&partial, &placement).await;
        let interrupted = matches!(&placed, Err(e) if e.kind() == std::io::ErrorKind::Interrupted);
        if uploads && interrupted {
            // A shutdown is neither a done nor a failed upload.
            return Ok(Err(Unplaced::Interrupted));
        }
        if uploads {
            let sent = *placed.as_ref().unwrap_or(&0);
            self.metrics
                .upload(placed.is_ok(), sent, started.elapsed().as_secs_f64());
        }
        let Err(e) = placed else {
            self.store_answered().await;
            return Ok(Ok(()));
        };
        let error = format!(
            "placing the file in the archive failed: {}",
            error_chain(&e)
        );
        tracing::error!(%error);
        Ok(Err(if crate::download::is_out_of_space(&e) {
            Unplaced::OutOfSpace(error)
        } else if !uploads {
            Unplaced::Other(error)
        } else {
            match UploadFault::of(&e) {
                Some(UploadFault::Refused) => Unplaced::Store {
                    error,
                    refused: true,
                },
                Some(UploadFault::Store) => Unplaced::Store {
                    error,
                    refused: false,
                },
                Some(UploadFault::LocalCopy) => Unplaced::StagedLost(error),
                Some(UploadFault::BadKey) => Unplaced::Unstorable(error),
                None if e.kind() == std::io::ErrorKind::NotFound && !partial.exists() => {
                    Unplaced::StagedLost(error)
                }
                None => Unplaced::Upload(error),
            }
        }))
    }

    /// The store took an upload: the backoff of store failures restarts,
    /// and a refusal recorded as a condition is over.
    async fn store_answered(&self) {
        self.store_failures.store(0, Ordering::Relaxed);
        if self.archive.bucket().is_none() || !self.store_refused.swap(false, Ordering::Relaxed) {
            return;
        }
        match self.ledger.call(|l| l.clear_condition(STORE_REFUSED)).await {
            Ok(true) => tracing::info!("the bucket takes uploads again"),
            Ok(false) => {}
            Err(e) => {
                self.store_refused.store(true, Ordering::Relaxed);
                tracing::warn!(error = %e, "cannot clear the store_refused condition");
            }
        }
    }

    /// The store refused or failed an upload: the file goes back in the
    /// queue after a backoff that grows with the store's consecutive
    /// failures (not the file's), uncounted, with its verified copy kept
    /// staged; a refusal (credentials, missing bucket) is recorded as the
    /// `store_refused` condition, which `status` and `/healthz` show.
    pub(super) async fn store_failed(
        &self,
        file: &ClaimedFile,
        error: &str,
        refused: bool,
        partial: u64,
    ) -> Result<Outcome, EngineError> {
        let failures = self.store_failures.fetch_add(1, Ordering::Relaxed);
        let delay = self.settings.download_backoff.delay(failures);
        if refused {
            let detail = error.to_owned();
            self.ledger
                .call(move |l| l.set_condition(STORE_REFUSED, &detail, Millis::now()))
                .await?;
            self.store_refused.store(true, Ordering::Relaxed);
        }
        let (id, error) = (file.id, error.to_owned());
        let next = Millis::now() + delay;
        self.ledger
            .call(move |l| l.defer_upload(id, &error, next, partial, Millis::now()))
            .await?;
        tracing::warn!(retry_in = ?delay, "the bucket did not take the upload; the verified copy is kept and no attempt is counted");
        Ok(Outcome::Retry)
    }
}

/// Remembers a file's open multipart upload in the ledger, so that the
/// next attempt after a crash aborts it.
struct UploadLog<'a> {
    engine: &'a Engine,
    file: FileId,
}

impl UploadJournal for UploadLog<'_> {
    fn record<'a>(&'a self, upload_id: Option<&'a str>) -> Journaled<'a> {
        let (id, upload) = (self.file, upload_id.map(str::to_owned));
        Box::pin(async move {
            self.engine
                .ledger
                .call(move |l| l.set_open_upload(id, upload.as_deref()))
                .await
                .map_err(std::io::Error::other)
        })
    }
}
