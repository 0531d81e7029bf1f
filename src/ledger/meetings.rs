//! Meetings and the download URLs the cloud lists for them.

use rusqlite::{OptionalExtension, TransactionBehavior, params};
use secrecy::{ExposeSecret, SecretString};
use sha2::{Digest, Sha256};

use super::recovery::mark_manifest_stale;
use super::{FileId, FileState, Ledger, LedgerError, MeetingOrigin, MeetingStage, Result};
use crate::clock::Millis;

/// One download URL as listed by the cloud, with where its file will lie.
pub struct UrlEntry {
    /// `Hd`, `Sd`, `Aux`, ...
    pub file_type: String,
    /// The full URL (untrusted).
    pub url: String,
    /// The URL's path without query (kept for the record; not identity).
    pub url_path: String,
    /// The file's identity within its meeting and type: its name, with
    /// `#2`, `#3`, ... for later files of the same name in the listing.
    pub file_key: String,
    /// The sanitised path under the archive folder.
    pub rel_path: String,
    /// A second path, used if `rel_path` is taken by another file.
    pub rel_path_alt: String,
    /// The single-use download token that came with the URL.
    pub token: SecretString,
}

/// A meeting as the ledger knows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct MeetingRecord {
    /// The conference UUID.
    pub conf_uuid: String,
    /// The subject, when discovery told us.
    pub subject: Option<String>,
    /// Why it is archived; JSON `config` or `discovered`.
    pub origin: MeetingOrigin,
    /// Last time its URLs were listed.
    pub last_polled_at: Option<Millis>,
    /// The last listing error, if the last listing failed.
    pub last_poll_error: Option<String>,
    /// Files of this meeting per state.
    pub files_total: i64,
    /// Files archived.
    pub files_done: i64,
    /// Files failed for good.
    pub files_failed: i64,
    /// Since when every known file is archived.
    pub complete_since: Option<Millis>,
    /// The recording list said it is still transcoding (no files yet).
    pub transcoding: bool,
    /// When polling it stopped: discovered, and no file for `poll.give_up_after`.
    pub given_up_at: Option<Millis>,
    /// When retention deleted its recordings from the cloud.
    pub deleted_from_cloud_at: Option<Millis>,
    /// Why the last retention pass did not delete it.
    pub retention_hold: Option<String>,
    /// Its lifecycle stage as stored (see [`MeetingStage::at`] for settled).
    #[serde(skip)]
    pub stage: MeetingStage,
    /// When the archiver first knew it.
    pub first_seen_at: Millis,
}

/// Sets or clears `complete_since` of one meeting (all of them with
/// `None`) from its file counts: set when every known file is done, cleared
/// otherwise. Runs inside the caller's transaction or on its own; rows whose
/// value does not change are not written.
pub(super) fn refresh_completion(
    conn: &rusqlite::Connection,
    conf_uuid: Option<&str>,
    now: Millis,
) -> rusqlite::Result<()> {
    match conf_uuid {
        Some(conf) => conn
            .prepare_cached(REFRESH_COMPLETION_ONE)?
            .execute(params![conf, now])?,
        None => conn
            .prepare_cached(REFRESH_COMPLETION_ALL)?
            .execute(params![now])?,
    };
    Ok(())
}

/// The completion of one meeting, by its primary key (run per archived file).
pub(super) const REFRESH_COMPLETION_ONE: &str = "UPDATE meetings SET complete_since = CASE
         WHEN files_total > 0 AND files_done = files_total THEN coalesce(complete_since, ?2)
         ELSE NULL END
     WHERE conf_uuid = ?1";

const REFRESH_COMPLETION_ALL: &str = "UPDATE meetings SET complete_since = CASE
         WHEN files_total > 0 AND files_done = files_total THEN coalesce(complete_since, ?1)
         ELSE NULL END
     WHERE (complete_since IS NULL) <> (files_total > 0 AND files_done = files_total)";

/// Meetings a poll leaves alone: complete since before `?1` with a last
/// listing that succeeded (or complete since before `?2`: a listing that
/// kept failing is retried for `poll.give_up_after`, no longer), or
/// deleted. A failed listing must not settle a meeting: the next success is
/// what clears its error. One `WHERE` with `OR`, not a `UNION`: SQLite
/// serves it by two index ranges (`meetings_complete`, `meetings_stage`),
/// where the `UNION` was merged over a scan of the primary key.
pub(super) const SETTLED_MEETINGS: &str = "SELECT conf_uuid FROM meetings
     WHERE (complete_since < ?1 AND (last_poll_error IS NULL OR complete_since < ?2))
        OR stage = 'deleted_from_cloud'";

/// The columns of a [`MeetingRecord`], in the order `meeting_row` reads them.
const MEETING_COLUMNS: &str = "conf_uuid, subject, origin, last_polled_at, last_poll_error,
     files_total, files_done, files_failed, complete_since, transcoding, given_up_at,
     deleted_from_cloud_at, retention_hold, stage, first_seen_at";

/// Meetings that need a person: listing failed, files failed for good, or
/// nothing listed since before `?1`. Served by the index `meetings_stage`.
const ATTENTION: &str = "FROM meetings
     WHERE stage IN ('listing_failed', 'has_failures')
        OR (stage IN ('not_ready', 'transcoding') AND first_seen_at < ?1)";

fn meeting_row(row: &rusqlite::Row<'_>) -> rusqlite::Result<MeetingRecord> {
    Ok(MeetingRecord {
        conf_uuid: row.get(0)?,
        subject: row.get(1)?,
        origin: row.get(2)?,
        last_polled_at: row.get(3)?,
        last_poll_error: row.get(4)?,
        files_total: row.get(5)?,
        files_done: row.get(6)?,
        files_failed: row.get(7)?,
        complete_since: row.get(8)?,
        transcoding: row.get(9)?,
        given_up_at: row.get(10)?,
        deleted_from_cloud_at: row.get(11)?,
        retention_hold: row.get(12)?,
        stage: row.get(13)?,
        first_seen_at: row.get(14)?,
    })
}

impl Ledger {
    /// Meetings complete since before `complete_before` whose last listing
    /// succeeded: their re-check period is over and polls leave them alone.
    /// One whose last listing failed is polled until a listing succeeds,
    /// or until it has been complete since before `failing_before` (the
    /// re-check period plus `poll.give_up_after`); a meeting deleted from
    /// the cloud is settled for good.
    pub fn settled_meetings(
        &self,
        complete_before: Millis,
        failing_before: Millis,
    ) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare_cached(SETTLED_MEETINGS)?;
        let rows = stmt.query_map(params![complete_before, failing_before], |row| row.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Records a meeting (idempotent); a subject, when given, is kept.
    pub fn upsert_meeting(
        &mut self,
        conf_uuid: &str,
        origin: MeetingOrigin,
        subject: Option<&str>,
        now: Millis,
    ) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let changed = tx
            .prepare_cached(
                "INSERT INTO meetings (conf_uuid, subject, origin, first_seen_at)
             VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT (conf_uuid) DO UPDATE SET subject = coalesce(?2, subject)
                 WHERE subject IS NOT coalesce(?2, subject)",
            )?
            .execute(params![conf_uuid, subject, origin, now])?;
        if changed > 0 {
            // A new subject shows in the manifest.
            mark_manifest_stale(&tx, conf_uuid, false)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Stores a fresh listing of a meeting's URLs: new files are queued, the
    /// tokens of unfinished files replace their older unspent ones, and the
    /// meeting's URL generation goes up. Returns how many files were new.
    pub fn store_urls(
        &mut self,
        conf_uuid: &str,
        entries: &[UrlEntry],
        now: Millis,
    ) -> Result<usize> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let mut new_files = 0;
        for entry in entries {
            let (file_id, state, inserted) = upsert_file(&tx, conf_uuid, entry, now)?;
            new_files += usize::from(inserted);
            if matches!(state, FileState::Done | FileState::Failed) {
                continue;
            }
            let secret = entry.token.expose_secret();
            let digest = token_digest(secret);
            tx.prepare_cached(
                "UPDATE tokens SET superseded_at = ?2, token = NULL
                 WHERE file_id = ?1 AND spent_at IS NULL AND superseded_at IS NULL
                   AND token_sha256 <> ?3",
            )?
            .execute(params![file_id, now, digest])?;
            // A token listed again (some servers re-issue a file's unused
            // token) is usable again if it was never spent; a spent one
            // stays spent and is never stored again: the WHERE keeps it.
            tx.prepare_cached("INSERT INTO tokens (file_id, token_sha256, token, issued_at)
                 VALUES (?1, ?2, ?3, ?4)
                 ON CONFLICT (token_sha256) DO UPDATE
                     SET token = excluded.token, superseded_at = NULL, issued_at = excluded.issued_at
                 WHERE tokens.spent_at IS NULL AND tokens.file_id = excluded.file_id")?.execute(
                params![file_id, digest, secret, now],
            )?;
        }
        refresh_completion(&tx, Some(conf_uuid), now)?;
        // Files listed: whatever the recording list said, it is not
        // transcoding any more.
        tx.prepare_cached(
            "UPDATE meetings SET url_generation = url_generation + 1,
                 last_polled_at = ?2, last_poll_error = NULL,
                 transcoding = CASE WHEN ?3 THEN 0 ELSE transcoding END
             WHERE conf_uuid = ?1",
        )?
        .execute(params![conf_uuid, now, !entries.is_empty()])?;
        tx.commit()?;
        Ok(new_files)
    }

    /// Records that listing a meeting failed.
    pub fn record_poll_error(&mut self, conf_uuid: &str, error: &str, now: Millis) -> Result<()> {
        self.conn.prepare_cached("UPDATE meetings SET last_polled_at = ?2, last_poll_error = ?3 WHERE conf_uuid = ?1")?.execute(
            params![conf_uuid, now, error],
        )?;
        Ok(())
    }

    /// How many times fresh URLs were stored for a meeting (0 if unknown).
    pub fn url_generation(&self, conf_uuid: &str) -> Result<i64> {
        let generation = self
            .conn
            .prepare_cached("SELECT url_generation FROM meetings WHERE conf_uuid = ?1")?
            .query_row([conf_uuid], |row| row.get(0))
            .optional()?;
        Ok(generation.unwrap_or(0))
    }

    /// Every meeting with its file counts, oldest first.
    pub fn meetings(&self) -> Result<Vec<MeetingRecord>> {
        self.meetings_page(0, i64::MAX)
    }

    /// `limit` meetings from the `offset`-th, oldest first (`status --meetings`).
    pub fn meetings_page(&self, offset: i64, limit: i64) -> Result<Vec<MeetingRecord>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {MEETING_COLUMNS} FROM meetings
             ORDER BY first_seen_at, conf_uuid LIMIT ?1 OFFSET ?2"
        ))?;
        let rows = stmt.query_map([limit, offset], meeting_row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// One meeting with its file counts (its manifest needs no other).
    pub fn meeting(&self, conf_uuid: &str) -> Result<Option<MeetingRecord>> {
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {MEETING_COLUMNS} FROM meetings WHERE conf_uuid = ?1"
        ))?;
        Ok(stmt.query_row([conf_uuid], meeting_row).optional()?)
    }

    /// Up to `limit` meetings that need a person (see [`ATTENTION`]; not
    /// ready means nothing listed since before `not_ready_before`), most
    /// urgent stage first, and how many there are in all.
    pub fn meetings_needing_attention(
        &self,
        not_ready_before: Millis,
        limit: i64,
    ) -> Result<(Vec<MeetingRecord>, i64)> {
        let total = self
            .conn
            .prepare_cached(&format!("SELECT count(*) {ATTENTION}"))?
            .query_row([not_ready_before], |row| row.get(0))?;
        let mut stmt = self.conn.prepare_cached(&format!(
            "SELECT {MEETING_COLUMNS} {ATTENTION}
             ORDER BY stage = 'listing_failed' DESC, stage = 'has_failures' DESC,
                      first_seen_at, conf_uuid
             LIMIT ?2"
        ))?;
        let rows = stmt.query_map(params![not_ready_before, limit], meeting_row)?;
        Ok((rows.collect::<rusqlite::Result<_>>()?, total))
    }
}

/// A poll's lookups of a listed file: by identity, by URL, by path.
pub(super) const FILE_BY_KEY: &str =
    "SELECT id, state FROM files WHERE conf_uuid = ?1 AND file_type = ?2 AND file_key = ?3";
pub(super) const FILE_BY_URL: &str =
    "SELECT file_key FROM files WHERE conf_uuid = ?1 AND file_type = ?2 AND url = ?3";
/// Whether a path is taken: exactly by any file, or in another case by a
/// file of the same meeting (one directory on a case-insensitive file
/// system; `lower` folds ASCII only).
pub(super) const PATH_TAKEN: &str = "SELECT EXISTS (SELECT 1 FROM files WHERE rel_path = ?1)
     OR EXISTS (SELECT 1 FROM files WHERE conf_uuid = ?2 AND lower(rel_path) = lower(?1))";

/// How many numbered alternatives a clashing path tries before giving up.
const MAX_ALTERNATIVES: u32 = 1000;

/// Finds or creates the file row of `entry`; returns its id, state and
/// whether it was created.
fn upsert_file(
    tx: &rusqlite::Transaction<'_>,
    conf_uuid: &str,
    entry: &UrlEntry,
    now: Millis,
) -> Result<(FileId, FileState, bool)> {
    let existing: Option<(FileId, FileState)> = tx
        .prepare_cached(FILE_BY_KEY)?
        .query_row(params![conf_uuid, entry.file_type, entry.file_key], |row| {
            Ok((row.get(0)?, row.get(1)?))
        })
        .optional()?;
    if let Some((id, state)) = existing {
        tx.prepare_cached("UPDATE files SET url = ?2, url_path = ?3 WHERE id = ?1 AND url <> ?2")?
            .execute(params![id, entry.url, entry.url_path])?;
        return Ok((id, state, false));
    }
    let known_as: Option<String> = tx
        .prepare_cached(FILE_BY_URL)?
        .query_row(params![conf_uuid, entry.file_type, entry.url], |row| {
            row.get(0)
        })
        .optional()?;
    if let Some(old) = known_as {
        tracing::warn!(
            meeting = conf_uuid,
            file_type = %entry.file_type,
            was = %old,
            now = %entry.file_key,
            "a known URL is listed as another file (the listing's order changed?); it is kept as a new file"
        );
    }
    let rel_path = free_path(tx, conf_uuid, entry)?;
    let id = tx
        .prepare_cached(
            "INSERT INTO files (conf_uuid, file_type, file_key, url_path, url, rel_path,
                            first_seen_at, updated_at)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?7) RETURNING id",
        )?
        .query_row(
            params![
                conf_uuid,
                entry.file_type,
                entry.file_key,
                entry.url_path,
                entry.url,
                rel_path,
                now
            ],
            |row| row.get(0),
        )?;
    Ok((id, FileState::Pending, true))
}

/// The first of the entry's path, its alternative, and the alternative
/// numbered ` (2)`, ` (3)`, ... that no file holds.
fn free_path(tx: &rusqlite::Transaction<'_>, conf_uuid: &str, entry: &UrlEntry) -> Result<String> {
    let mut stmt = tx.prepare_cached(PATH_TAKEN)?;
    let mut taken =
        |path: &str| stmt.query_row(params![path, conf_uuid], |row| row.get::<_, bool>(0));
    for path in [&entry.rel_path, &entry.rel_path_alt] {
        if !taken(path)? {
            return Ok(path.clone());
        }
    }
    for n in 2..=MAX_ALTERNATIVES {
        let path = numbered(&entry.rel_path_alt, n);
        if !taken(&path)? {
            return Ok(path);
        }
    }
    Err(LedgerError::PathsTaken(entry.rel_path_alt.clone()))
}

/// `path` with ` (n)` before its extension.
fn numbered(path: &str, n: u32) -> String {
    let name_at = path.rfind('/').map_or(0, |slash| slash + 1);
    let dot = path[name_at..]
        .rfind('.')
        .filter(|&dot| dot > 0)
        .map_or(path.len(), |dot| name_at + dot);
    format!("{} ({n}){}", &path[..dot], &path[dot..])
}

/// The hex SHA-256 of a token: what the ledger keeps after the token is gone.
pub(super) fn token_digest(token: &str) -> String {
    hex::encode(Sha256::digest(token.as_bytes()))
}
