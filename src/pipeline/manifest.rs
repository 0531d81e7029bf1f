//! The per-meeting manifest, `<dir>/<conference>/meeting.json`: what is
//! archived for a meeting, with sizes and SHA-256 sums, so that the archive
//! explains itself without the ledger (and can be checked with `sha256sum`).

use serde::Serialize;

use crate::clock::Millis;
use crate::ledger::{FileRecord, FileState};
use crate::pipeline::{Engine, EngineError};

/// The manifest's name inside a meeting's folder.
pub const MANIFEST_NAME: &str = "meeting.json";

#[derive(Serialize)]
struct Manifest<'a> {
    conf_uuid: &'a str,
    subject: Option<String>,
    generated_at_ms: Millis,
    /// When retention deleted the cloud's copy; absent while it is there.
    #[serde(skip_serializing_if = "Option::is_none")]
    deleted_from_cloud_at_ms: Option<Millis>,
    files: Vec<ManifestFile>,
}

#[derive(Serialize)]
struct ManifestFile {
    file_type: String,
    path: String,
    size: Option<u64>,
    sha256: Option<String>,
    archived_at_ms: Option<Millis>,
    /// Present (true) only when nothing could confirm the file's length.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    length_unconfirmed: bool,
}

impl ManifestFile {
    fn from_record(conf_dir: &str, record: FileRecord) -> ManifestFile {
        let path = record
            .rel_path
            .strip_prefix(conf_dir)
            .and_then(|p| p.strip_prefix('/'))
            .unwrap_or(&record.rel_path)
            .to_owned();
        ManifestFile {
            file_type: record.file_type,
            path,
            size: record.size,
            sha256: record.sha256,
            archived_at_ms: record.done_at,
            length_unconfirmed: record.length_unconfirmed,
        }
    }
}

impl Engine {
    /// Rewrites a meeting's manifest; if that fails, the meeting is marked
    /// so that the write is retried (after the next poll, or at start-up).
    pub async fn refresh_manifest(&self, conf_uuid: &str) {
        let written = self.write_manifest(conf_uuid).await;
        if let Err(e) = &written {
            tracing::warn!(meeting = %conf_uuid, error = %e, "could not write the meeting manifest; will retry");
        }
        let (conf, stale) = (conf_uuid.to_owned(), written.is_err());
        let marked = self
            .ledger
            .call(move |l| l.set_manifest_stale(&conf, stale))
            .await;
        if let Err(e) = marked {
            tracing::warn!(meeting = %conf_uuid, error = %e, "could not record the manifest's state");
        }
    }

    /// Rewrites a meeting's manifest from the ledger (archived files only).
    pub async fn write_manifest(&self, conf_uuid: &str) -> Result<(), EngineError> {
        let lock = self.meeting_lock(conf_uuid);
        let _guard = lock.lock().await;
        let conf = conf_uuid.to_owned();
        let (files, meeting) = self
            .ledger
            .call(move |l| {
                let files = l.meeting_files(&conf)?;
                let meeting = l.meeting(&conf)?;
                Ok((files, meeting))
            })
            .await?;
        let (subject, deleted) =
            meeting.map_or((None, None), |m| (m.subject, m.deleted_from_cloud_at));
        let Some(first) = files.first() else {
            return Ok(());
        };
        let conf_dir = first.rel_path.split('/').next().unwrap_or("").to_owned();
        let manifest = Manifest {
            conf_uuid,
            subject,
            generated_at_ms: Millis::now(),
            deleted_from_cloud_at_ms: deleted,
            files: files
                .into_iter()
                .filter(|f| f.state == FileState::Done)
                .map(|f| ManifestFile::from_record(&conf_dir, f))
                .collect(),
        };
        let bytes = serde_json::to_vec_pretty(&manifest).map_err(|source| {
            EngineError::SerialiseManifest {
                conf_uuid: conf_uuid.to_owned(),
                source,
            }
        })?;
        let rel = format!("{conf_dir}/{MANIFEST_NAME}");
        self.archive
            .write_metadata(&rel, bytes)
            .await
            .map_err(|source| EngineError::WriteManifest {
                path: self.archive.root().join(&rel),
                source,
            })?;
        Ok(())
    }
}
