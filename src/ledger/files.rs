//! The download queue: files move pending → downloading → done | failed.
//! Retry state lives in the rows (`attempts`, `next_attempt_at`,
//! `last_error`), so a restart forgets nothing.
//!
//! Every write either runs as one `execute` (whose result includes its
//! autocommit) or in an explicit transaction whose commit is checked: a
//! `query_row` over an autocommit `UPDATE … RETURNING` would hand back the
//! row even when the commit after it failed, and the caller would believe
//! a change that was never saved.

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::meetings::refresh_completion;
use super::recovery::mark_manifest_stale;
use super::{FileId, FileState, Ledger, Result};
use crate::clock::Millis;

/// A file claimed by a worker (now `downloading`).
#[derive(Debug, Clone)]
pub struct ClaimedFile {
    /// The file's row.
    pub id: FileId,
    /// Its meeting.
    pub conf_uuid: String,
    /// `Hd`, `Sd`, `Aux`, ...
    pub file_type: String,
    /// The latest URL listed for it.
    pub url: String,
    /// Where it goes under the archive folder.
    pub rel_path: String,
    /// Failed attempts so far.
    pub attempts: u32,
    /// Durable bytes of its partial file.
    pub partial_bytes: u64,
    /// An earlier body of unannounced length, awaiting confirmation of its
    /// end: its size and SHA-256.
    pub candidate: Option<(u64, String)>,
    /// Verified in the partial area, waiting for its upload to the bucket.
    pub staged: Option<super::Staged>,
    /// A multipart upload an earlier attempt may have left open.
    pub open_upload: Option<String>,
}

/// A file recorded as archived.
#[derive(Debug, Clone)]
pub struct DoneFile {
    /// The file's row.
    pub id: FileId,
    /// Its meeting.
    pub conf_uuid: String,
    /// Where it lies under the archive folder.
    pub rel_path: String,
    /// Its size in bytes.
    pub size: u64,
    /// Its hex SHA-256.
    pub sha256: String,
}

/// Any file row, for listings and manifests.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FileRecord {
    /// `Hd`, `Sd`, `Aux`, ...
    pub file_type: String,
    /// Where it lies under the archive folder.
    pub rel_path: String,
    /// Where it stands in the queue.
    pub state: FileState,
    /// Size in bytes once done.
    pub size: Option<u64>,
    /// Hex SHA-256 once done.
    pub sha256: Option<String>,
    /// When it was archived.
    pub done_at: Option<Millis>,
    /// Archived although nothing could confirm its length.
    pub length_unconfirmed: bool,
    /// The latest URL listed for it (no token: tokens travel apart).
    pub url: String,
    /// Its identity within meeting and type (its name, `#2`... for repeats).
    pub file_key: String,
}

/// A verified file, as [`Ledger::mark_done`] records it.
pub struct DoneMark<'a> {
    /// Its size in bytes.
    pub size: u64,
    /// Its hex SHA-256.
    pub sha256: &'a str,
    /// Whether its length was announced or confirmed by the server.
    pub length_confirmed: bool,
}

/// What to do with a file whose attempt failed.
pub struct RetryPlan<'a> {
    /// The error to show in `status`.
    pub error: &'a str,
    /// When to try again.
    pub next_attempt_at: Millis,
    /// The limit: reaching it marks the file failed.
    pub max_attempts: u32,
    /// Durable bytes of the partial file, kept for a resume.
    pub partial_bytes: u64,
}

/// The claim: the first due pending file by the queue index `files_queue`.
pub(super) const CLAIM_NEXT: &str = "UPDATE files SET state = 'downloading', updated_at = ?1
     WHERE id = (SELECT id FROM files WHERE state = 'pending' AND next_attempt_at <= ?1
                 ORDER BY next_attempt_at, id LIMIT 1)
     RETURNING id, conf_uuid, file_type, url, rel_path, attempts, partial_bytes,
               candidate_size, candidate_sha256,
               staged_size, staged_sha256, staged_length_confirmed, open_upload_id";

/// An idle worker's question: the earliest pending file (the queue index's
/// first entry) and the files downloading now (a counter).
pub(super) const QUEUE_STATE: &str =
    "SELECT (SELECT min(next_attempt_at) FROM files WHERE state = 'pending'),
            (SELECT n FROM counts WHERE name = 'files.downloading')";

impl Ledger {
    /// Claims the next due pending file, in one `UPDATE … RETURNING` inside
    /// an IMMEDIATE transaction so no two workers get the same file.
    pub fn claim_next(&mut self, now: Millis) -> Result<Option<ClaimedFile>> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let claimed = tx
            .prepare_cached(CLAIM_NEXT)?
            .query_row([now], |row| {
                Ok(ClaimedFile {
                    id: row.get(0)?,
                    conf_uuid: row.get(1)?,
                    file_type: row.get(2)?,
                    url: row.get(3)?,
                    rel_path: row.get(4)?,
                    attempts: row.get(5)?,
                    partial_bytes: row.get::<_, i64>(6)?.max(0) as u64,
                    candidate: match (row.get::<_, Option<i64>>(7)?, row.get(8)?) {
                        (Some(size), Some(sha)) => Some((size.max(0) as u64, sha)),
                        _ => None,
                    },
                    staged: super::staging::from_columns(row, 9)?,
                    open_upload: row.get(12)?,
                })
            })
            .optional()?;
        tx.commit()?;
        Ok(claimed)
    }

    /// The latest URL listed for a file (it changes when a re-query moves it).
    pub fn file_url(&self, file_id: FileId) -> Result<String> {
        Ok(self
            .conn
            .prepare_cached("SELECT url FROM files WHERE id = ?1")?
            .query_row([file_id], |row| row.get(0))?)
    }

    /// Marks a file archived; call only once its bytes are durable under
    /// their final name. `length_confirmed` is false when nothing could
    /// confirm where the body ended (shown by `status` and the manifest).
    pub fn mark_done(&mut self, file_id: FileId, done: &DoneMark<'_>, now: Millis) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let conf: String = tx.prepare_cached("UPDATE files SET state = 'done', size = ?2, sha256 = ?3, done_at = ?4, updated_at = ?4,
                 partial_bytes = 0, last_error = NULL, candidate_size = NULL,
                 candidate_sha256 = NULL, length_unconfirmed = ?5, staged_size = NULL,
                 staged_sha256 = NULL, staged_length_confirmed = NULL, open_upload_id = NULL
             WHERE id = ?1 RETURNING conf_uuid")?.query_row(
            params![
                file_id,
                done.size as i64,
                done.sha256,
                now,
                !done.length_confirmed
            ],
            |r| r.get(0),
        )?;
        refresh_completion(&tx, Some(&conf), now)?;
        mark_manifest_stale(&tx, &conf, true)?;
        tx.commit()?;
        Ok(())
    }

    /// Keeps a body of unannounced length as a candidate and queues the
    /// file at once for the probe that confirms its end. The first
    /// candidate costs no attempt; one that replaces a different earlier
    /// candidate (`counted`) does, so disagreeing servers cannot loop.
    pub fn await_confirmation(
        &mut self,
        file_id: FileId,
        candidate: (u64, &str),
        counted: bool,
        now: Millis,
    ) -> Result<()> {
        let (size, sha256) = candidate;
        self.conn
            .prepare_cached(
                "UPDATE files SET state = 'pending', partial_bytes = ?2, candidate_size = ?2,
                 candidate_sha256 = ?3, next_attempt_at = ?4, updated_at = ?4,
                 attempts = attempts + ?5
             WHERE id = ?1 AND state = 'downloading'",
            )?
            .execute(params![
                file_id,
                size as i64,
                sha256,
                now,
                i64::from(counted)
            ])?;
        Ok(())
    }

    /// Puts a failed file back in the queue, or marks it failed for good once
    /// its counted attempts reach the limit. Returns true if it failed for good.
    pub fn schedule_retry(
        &mut self,
        file_id: FileId,
        plan: &RetryPlan<'_>,
        now: Millis,
    ) -> Result<bool> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let state: FileState = tx
            .prepare_cached(
                "UPDATE files SET
                 attempts = attempts + 1,
                 state = CASE WHEN attempts + 1 >= ?2 THEN 'failed' ELSE 'pending' END,
                 next_attempt_at = ?3, last_error = ?4, updated_at = ?5, partial_bytes = ?6,
                 staged_size = CASE WHEN attempts + 1 >= ?2 THEN NULL ELSE staged_size END,
                 staged_sha256 = CASE WHEN attempts + 1 >= ?2 THEN NULL ELSE staged_sha256 END
             WHERE id = ?1 RETURNING state",
            )?
            .query_row(
                params![
                    file_id,
                    plan.max_attempts,
                    plan.next_attempt_at,
                    plan.error,
                    now,
                    plan.partial_bytes as i64
                ],
                |row| row.get(0),
            )?;
        tx.commit()?;
        Ok(state == FileState::Failed)
    }

    /// Returns a claimed file to the queue without counting an attempt
    /// (shutdown), keeping its partial data for resuming.
    pub fn release(&mut self, file_id: FileId, partial_bytes: u64, now: Millis) -> Result<()> {
        self.conn
            .prepare_cached(
                "UPDATE files SET state = 'pending', partial_bytes = ?2, updated_at = ?3
             WHERE id = ?1 AND state = 'downloading'",
            )?
            .execute(params![file_id, partial_bytes as i64, now])?;
        Ok(())
    }

    /// Records how many bytes of a file's partial data are durable.
    pub fn set_partial(&mut self, file_id: FileId, partial_bytes: u64) -> Result<()> {
        self.conn
            .prepare_cached("UPDATE files SET partial_bytes = ?2 WHERE id = ?1")?
            .execute(params![file_id, partial_bytes as i64])?;
        Ok(())
    }

    /// Puts every failed file back in the queue with a fresh attempt budget.
    pub fn retry_failed(&mut self, now: Millis) -> Result<usize> {
        let revived = self.conn.prepare_cached("UPDATE files SET state = 'pending', attempts = 0, next_attempt_at = 0, updated_at = ?1
             WHERE state = 'failed'")?.execute(
            [now],
        )?;
        refresh_completion(&self.conn, None, now)?;
        Ok(revived)
    }

    /// Queues an archived file again (its archived copy is missing or corrupt).
    pub fn requeue_done(&mut self, file_id: FileId, reason: &str, now: Millis) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let conf: Option<String> = tx.prepare_cached("UPDATE files SET state = 'pending', attempts = 0, next_attempt_at = 0, last_error = ?2,
                 size = NULL, sha256 = NULL, done_at = NULL, updated_at = ?3
             WHERE id = ?1 AND state = 'done' RETURNING conf_uuid")?.query_row(
            params![file_id, reason, now],
            |r| r.get(0),
        ).optional()?;
        if let Some(conf) = conf {
            refresh_completion(&tx, Some(&conf), now)?;
            // The manifest no longer lists it.
            mark_manifest_stale(&tx, &conf, true)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Every archived file, for verification.
    pub fn done_files(&self) -> Result<Vec<DoneFile>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, conf_uuid, rel_path, size, sha256 FROM files WHERE state = 'done' ORDER BY id",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok(DoneFile {
                id: row.get(0)?,
                conf_uuid: row.get(1)?,
                rel_path: row.get(2)?,
                size: row.get::<_, i64>(3)?.max(0) as u64,
                sha256: row.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Every file of a meeting, for its manifest.
    pub fn meeting_files(&self, conf_uuid: &str) -> Result<Vec<FileRecord>> {
        let mut stmt = self.conn.prepare(
            "SELECT file_type, rel_path, state, size, sha256, done_at, length_unconfirmed, url,
                    file_key
             FROM files WHERE conf_uuid = ?1 ORDER BY rel_path",
        )?;
        let rows = stmt.query_map([conf_uuid], |row| {
            Ok(FileRecord {
                file_type: row.get(0)?,
                rel_path: row.get(1)?,
                state: row.get(2)?,
                size: row.get::<_, Option<i64>>(3)?.map(|s| s.max(0) as u64),
                sha256: row.get(4)?,
                done_at: row.get(5)?,
                length_unconfirmed: row.get(6)?,
                url: row.get(7)?,
                file_key: row.get(8)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// What an idle worker needs, in one query: the earliest time a
    /// pending file becomes due (if any is pending) and how many files are
    /// being downloaded now.
    pub fn queue_state(&self) -> Result<(Option<Millis>, i64)> {
        Ok(self
            .conn
            .prepare_cached(QUEUE_STATE)?
            .query_row([], |row| Ok((row.get(0)?, row.get(1)?)))?)
    }
}
