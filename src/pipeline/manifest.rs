//! What each meeting folder says about itself, without the ledger or the
//! tool: `meeting.json` (the meeting's facts and every archived file, with
//! a `schema_version` and ISO-8601 times; its schema is
//! `docs/meeting.schema.json`) and `SHA256SUMS` (what `sha256sum -c`
//! checks). Each is replaced atomically (written aside, then renamed), one
//! after the other; the ledger's stale mark stays until both are written,
//! so a crash between them is repaired by the next rewrite.

use chrono::SecondsFormat;
use serde::Serialize;

use crate::archive::part_number;
use crate::clock::Millis;
use crate::ledger::{FileRecord, FileState, MeetingOrigin};
use crate::pipeline::{Engine, EngineError};

pub use crate::archive::{MANIFEST_NAME, SUMS_NAME};
/// The manifest's format version: 2 added `schema_version` and everything
/// beside the `…_ms` times; version 1 manifests have no such key.
pub const SCHEMA_VERSION: u32 = 2;

/// A time as people and tools read it: RFC 3339 (ISO 8601), UTC.
pub fn iso(t: Millis) -> String {
    t.to_utc().to_rfc3339_opts(SecondsFormat::Secs, true)
}

#[derive(Serialize)]
struct Manifest<'a> {
    schema_version: u32,
    generator: Generator,
    conf_uuid: &'a str,
    conf_id: Option<String>,
    subject: Option<String>,
    scheduler: Option<String>,
    origin: Option<MeetingOrigin>,
    start_time: Option<String>,
    duration_seconds: Option<i64>,
    folder: String,
    generated_at: String,
    generated_at_ms: Millis,
    /// When retention deleted the cloud's copy; absent while it is there.
    #[serde(skip_serializing_if = "Option::is_none")]
    deleted_from_cloud_at: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    deleted_from_cloud_at_ms: Option<Millis>,
    files: Vec<ManifestFile>,
}

#[derive(Serialize)]
struct Generator {
    name: &'static str,
    version: &'static str,
}

/// The tool that writes the archive, for the manifest and README.txt.
pub(super) const TOOL: &str = env!("CARGO_PKG_NAME");
/// Its version.
pub(super) const VERSION: &str = env!("CARGO_PKG_VERSION");

#[derive(Serialize)]
struct ManifestFile {
    file_type: String,
    description: String,
    part: Option<u32>,
    path: String,
    size: Option<u64>,
    sha256: Option<String>,
    archived_at: Option<String>,
    archived_at_ms: Option<Millis>,
    source_url: Option<String>,
    /// Present (true) only when nothing could confirm the file's length.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    length_unconfirmed: bool,
    /// Present (true) only when the ledger holds no SHA-256 for the file
    /// (never written so by this tool; a damaged or hand-edited ledger):
    /// it is then missing from `SHA256SUMS`, and said so here.
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    checksum_missing: bool,
}

/// What a file type holds, in words.
pub fn describe_type(file_type: &str) -> String {
    match file_type.to_ascii_lowercase().as_str() {
        "hd" => "HD video".to_owned(),
        "sd" => "SD video (video and shared screen composited)".to_owned(),
        "aux" => "auxiliary stream (shared screen)".to_owned(),
        _ => format!("recording file of type {file_type}"),
    }
}

/// A download URL as it may be shown: scheme, host and path only (no
/// query, fragment or credentials, where signatures would hide).
fn public_url(url: &str) -> Option<String> {
    let mut parsed = url::Url::parse(url).ok()?;
    parsed.set_query(None);
    parsed.set_fragment(None);
    let _ = parsed.set_username("");
    let _ = parsed.set_password(None);
    Some(parsed.to_string())
}

impl ManifestFile {
    fn from_record(folder: &str, record: FileRecord) -> ManifestFile {
        let path = inside(folder, &record.rel_path);
        let name = record.file_key.split('#').next().unwrap_or_default();
        ManifestFile {
            description: describe_type(&record.file_type),
            part: part_number(name),
            file_type: record.file_type,
            path,
            size: record.size,
            checksum_missing: record.sha256.is_none(),
            sha256: record.sha256,
            archived_at: record.done_at.map(iso),
            archived_at_ms: record.done_at,
            source_url: public_url(&record.url),
            length_unconfirmed: record.length_unconfirmed,
        }
    }
}

/// `rel_path` relative to the meeting's `folder`.
fn inside(folder: &str, rel_path: &str) -> String {
    rel_path
        .strip_prefix(folder)
        .and_then(|p| p.strip_prefix('/'))
        .unwrap_or(rel_path)
        .to_owned()
}

/// The lines of `SHA256SUMS`, in the format `sha256sum -c` reads (a name
/// with a backslash or newline is escaped as GNU coreutils does).
pub fn sums_text(files: &[(String, String)]) -> String {
    let mut out = String::new();
    for (sha256, path) in files {
        if path.contains(['\\', '\n', '\r']) {
            let escaped = path
                .replace('\\', "\\\\")
                .replace('\n', "\\n")
                .replace('\r', "\\r");
            out.push_str(&format!("\\{sha256}  {escaped}\n"));
        } else {
            out.push_str(&format!("{sha256}  {path}\n"));
        }
    }
    out
}

impl Engine {
    /// Rewrites a meeting's manifest. The ledger marks a meeting stale in
    /// the same transaction as every change its manifest shows; the mark
    /// is cleared only once both files are written, and only if no change
    /// came meanwhile, so a crash or a failed write leaves it for the next
    /// rewrite (after a poll, by the daemon's upkeep, or at start-up).
    pub async fn refresh_manifest(&self, conf_uuid: &str) {
        let written = self.write_manifest(conf_uuid).await;
        let conf = conf_uuid.to_owned();
        let recorded = match written {
            Ok(generation) => {
                self.ledger
                    .call(move |l| l.manifest_written(&conf, generation).map(drop))
                    .await
            }
            Err(e) => {
                tracing::warn!(meeting = %conf_uuid, error = %e, "could not write the meeting manifest; will retry");
                self.ledger
                    .call(move |l| l.mark_manifest_stale(&conf))
                    .await
            }
        };
        if let Err(e) = recorded {
            tracing::warn!(meeting = %conf_uuid, error = %e, "could not record the manifest's state");
        }
    }

    /// Rewrites a meeting's `meeting.json` and `SHA256SUMS` from the
    /// ledger (archived files only); each is replaced atomically, one after
    /// the other. Returns the manifest generation the files show.
    pub async fn write_manifest(&self, conf_uuid: &str) -> Result<i64, EngineError> {
        let lock = self.meeting_lock(conf_uuid);
        let _guard = lock.lock().await;
        let conf = conf_uuid.to_owned();
        let (generation, files, meeting, place) = self
            .ledger
            .call(move |l| {
                // The generation first: a change after it bumps it.
                let generation = l.manifest_generation(&conf)?;
                let files = l.meeting_files(&conf)?;
                let meeting = l.meeting(&conf)?;
                let place = l.meeting_place(&conf)?;
                Ok((generation, files, meeting, place.unwrap_or_default()))
            })
            .await?;
        let Some(first) = files.first() else {
            return Ok(generation);
        };
        let folder = place
            .folder
            .clone()
            .unwrap_or_else(|| first.rel_path.split('/').next().unwrap_or("").to_owned());
        let deleted = meeting.as_ref().and_then(|m| m.deleted_from_cloud_at);
        let now = Millis::now();
        let files: Vec<ManifestFile> = files
            .into_iter()
            .filter(|f| f.state == FileState::Done)
            .map(|f| ManifestFile::from_record(&folder, f))
            .collect();
        let sums: Vec<(String, String)> = files
            .iter()
            .filter_map(|f| f.sha256.clone().map(|sha| (sha, f.path.clone())))
            .collect();
        for file in files.iter().filter(|f| f.checksum_missing) {
            tracing::warn!(meeting = %conf_uuid, path = %file.path, "an archived file has no SHA-256 in the ledger: not in SHA256SUMS (meeting.json says checksum_missing); `verify --repair` queues it again");
        }
        let facts = place.facts;
        let manifest = Manifest {
            schema_version: SCHEMA_VERSION,
            generator: Generator {
                name: TOOL,
                version: VERSION,
            },
            conf_uuid,
            conf_id: facts.conf_id,
            subject: facts.subject,
            scheduler: facts.scheduler,
            origin: meeting.map(|m| m.origin),
            start_time: facts.start_time.map(iso),
            // A negative length (the list's rcdTime) is no length.
            duration_seconds: facts.duration_s.filter(|d| *d >= 0),
            folder: folder.clone(),
            generated_at: iso(now),
            generated_at_ms: now,
            deleted_from_cloud_at: deleted.map(iso),
            deleted_from_cloud_at_ms: deleted,
            files,
        };
        let bytes = serde_json::to_vec_pretty(&manifest).map_err(|source| {
            EngineError::SerialiseManifest {
                conf_uuid: conf_uuid.to_owned(),
                source,
            }
        })?;
        self.write_meta(
            &format!("{folder}/{SUMS_NAME}"),
            sums_text(&sums).into_bytes(),
        )
        .await?;
        self.write_meta(&format!("{folder}/{MANIFEST_NAME}"), bytes)
            .await?;
        Ok(generation)
    }

    /// Writes one metadata file atomically through the archive.
    pub(super) async fn write_meta(&self, rel: &str, bytes: Vec<u8>) -> Result<(), EngineError> {
        self.archive
            .write_metadata(rel, bytes)
            .await
            .map_err(|source| EngineError::WriteManifest {
                path: self.archive.root().join(rel),
                source,
            })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sums_are_in_the_coreutils_format() {
        let files = vec![
            ("ab".to_owned(), "Hd/0_0.mp4".to_owned()),
            ("cd".to_owned(), "odd\\name\n.mp4".to_owned()),
        ];
        assert_eq!(
            sums_text(&files),
            "ab  Hd/0_0.mp4\n\\cd  odd\\\\name\\n.mp4\n"
        );
    }

    #[test]
    fn source_urls_lose_query_fragment_and_credentials() {
        assert_eq!(
            public_url("https://u:p@192.0.2.1/download/x/0_0.mp4?token=secret&sig=1#f").as_deref(),
            Some("https://192.0.2.1/download/x/0_0.mp4")
        );
        assert_eq!(public_url("not a url"), None);
    }

    #[test]
    fn types_are_described_in_words() {
        assert_eq!(describe_type("Hd"), "HD video");
        assert_eq!(describe_type("Aux"), "auxiliary stream (shared screen)");
        assert!(describe_type("Sd").starts_with("SD video"));
        assert_eq!(describe_type("Xyz"), "recording file of type Xyz");
    }

    #[test]
    fn times_are_iso_8601_in_utc() {
        assert_eq!(
            iso(Millis::from_unix_ms(1_576_721_220_000)),
            "2019-12-19T02:07:00Z"
        );
    }
}
