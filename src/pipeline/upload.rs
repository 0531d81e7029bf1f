//! Putting a verified file in its final place when that may be a bucket:
//! the file is staged in the ledger before its upload, its multipart
//! upload id is journaled, uploads are counted in the metrics, and a
//! failed placement is classified (full disk, store failure, lost staged
//! copy, shutdown). A staged file claimed again skips the download.

use std::time::Instant;

use tokio_util::sync::CancellationToken;

use super::{Engine, EngineError, Outcome};
use crate::archive::{Journaled, Placement, UploadJournal};
use crate::download::Fetched;
use crate::ledger::{ClaimedFile, FileId, Staged};
use crate::telemetry::error_chain;

/// Why a complete file could not be placed in the archive.
pub(super) enum Unplaced {
    /// The disk is full: not the file's fault.
    OutOfSpace(String),
    /// Anything else (permissions, a file in the way).
    Other(String),
    /// The bucket refused or failed the upload: the verified partial file
    /// stays staged for the next attempt.
    Upload(String),
    /// The staged partial file is gone: the file is downloaded again.
    StagedLost(String),
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
        self.finish(file, &fetched, staged.length_confirmed, Some(cancel))
            .await
    }

    /// Places the verified partial file of `file` (renamed, or uploaded
    /// after staging it in the ledger); `Ok(Err(why))` if it could not be.
    pub(super) async fn put_in_place(
        &self,
        file: &ClaimedFile,
        fetched: &Fetched,
        length_confirmed: bool,
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
                length_confirmed,
            };
            let id = file.id;
            self.ledger.call(move |l| l.stage(id, &staged)).await?;
        }
        let started = Instant::now();
        let placed = self.archive.place(&partial, &placement).await;
        if uploads {
            let sent = placed.as_ref().map_or(0, |()| fetched.size);
            self.metrics
                .upload(placed.is_ok(), sent, started.elapsed().as_secs_f64());
        }
        let Err(e) = placed else {
            return Ok(Ok(()));
        };
        if uploads && e.kind() == std::io::ErrorKind::Interrupted {
            return Ok(Err(Unplaced::Interrupted));
        }
        let error = format!(
            "placing the file in the archive failed: {}",
            error_chain(&e)
        );
        tracing::error!(%error);
        Ok(Err(if crate::download::is_out_of_space(&e) {
            Unplaced::OutOfSpace(error)
        } else if !uploads {
            Unplaced::Other(error)
        } else if e.kind() == std::io::ErrorKind::NotFound && !partial.exists() {
            Unplaced::StagedLost(error)
        } else {
            Unplaced::Upload(error)
        }))
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
