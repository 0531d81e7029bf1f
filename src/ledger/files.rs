//! The download queue: files move pending → downloading → done | failed.
//! Retry state lives in the rows (`attempts`, `next_attempt_at`,
//! `last_error`), so a restart forgets nothing.

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::meetings::refresh_completion;
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
}

/// What to do with a file whose attempt failed.
pub struct RetryPlan<'a> {
    /// The error to show in `status`.
    pub error: &'a str,
    /// When to try again.
    pub next_attempt_at: Millis,
    /// The limit: reaching it marks the file failed.
    pub max_attempts: u32,
}

impl Ledger {
    /// Claims the next due pending file, in one `UPDATE … RETURNING` inside
    /// an IMMEDIATE transaction so no two workers get the same file.
    pub fn claim_next(&mut self, now: Millis) -> Result<Option<ClaimedFile>> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let claimed = tx
            .query_row(
                "UPDATE files SET state = 'downloading', updated_at = ?1
                 WHERE id = (SELECT id FROM files WHERE state = 'pending' AND next_attempt_at <= ?1
                             ORDER BY next_attempt_at, id LIMIT 1)
                 RETURNING id, conf_uuid, file_type, url, rel_path, attempts, partial_bytes",
                [now],
                |row| {
                    Ok(ClaimedFile {
                        id: row.get(0)?,
                        conf_uuid: row.get(1)?,
                        file_type: row.get(2)?,
                        url: row.get(3)?,
                        rel_path: row.get(4)?,
                        attempts: row.get(5)?,
                        partial_bytes: row.get::<_, i64>(6)?.max(0) as u64,
                    })
                },
            )
            .optional()?;
        tx.commit()?;
        Ok(claimed)
    }

    /// The latest URL listed for a file (it changes when a re-query moves it).
    pub fn file_url(&self, file_id: FileId) -> Result<String> {
        Ok(self
            .conn
            .query_row("SELECT url FROM files WHERE id = ?1", [file_id], |row| {
                row.get(0)
            })?)
    }

    /// Marks a file archived; call only once its bytes are durable under
    /// their final name.
    pub fn mark_done(
        &mut self,
        file_id: FileId,
        size: u64,
        sha256: &str,
        now: Millis,
    ) -> Result<()> {
        self.conn.execute(
            "UPDATE files SET state = 'done', size = ?2, sha256 = ?3, done_at = ?4, updated_at = ?4,
                 partial_bytes = 0, last_error = NULL
             WHERE id = ?1",
            params![file_id, size as i64, sha256, now],
        )?;
        let conf: String = self.conn.query_row(
            "SELECT conf_uuid FROM files WHERE id = ?1",
            [file_id],
            |r| r.get(0),
        )?;
        refresh_completion(&self.conn, Some(&conf), now)?;
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
        let state: FileState = self.conn.query_row(
            "UPDATE files SET
                 attempts = attempts + 1,
                 state = CASE WHEN attempts + 1 >= ?2 THEN 'failed' ELSE 'pending' END,
                 next_attempt_at = ?3, last_error = ?4, updated_at = ?5
             WHERE id = ?1 RETURNING state",
            params![
                file_id,
                plan.max_attempts,
                plan.next_attempt_at,
                plan.error,
                now
            ],
            |row| row.get(0),
        )?;
        Ok(state == FileState::Failed)
    }

    /// Returns a claimed file to the queue without counting an attempt
    /// (shutdown), keeping its partial data for resuming.
    pub fn release(&mut self, file_id: FileId, partial_bytes: u64, now: Millis) -> Result<()> {
        self.conn.execute(
            "UPDATE files SET state = 'pending', partial_bytes = ?2, updated_at = ?3
             WHERE id = ?1 AND state = 'downloading'",
            params![file_id, partial_bytes as i64, now],
        )?;
        Ok(())
    }

    /// Records how many bytes of a file's partial data are durable.
    pub fn set_partial(&mut self, file_id: FileId, partial_bytes: u64) -> Result<()> {
        self.conn.execute(
            "UPDATE files SET partial_bytes = ?2 WHERE id = ?1",
            params![file_id, partial_bytes as i64],
        )?;
        Ok(())
    }

    /// After a crash: work left `downloading` goes back to pending and open
    /// attempts are closed as crashed. Returns the number of files requeued.
    pub fn reset_interrupted(&mut self, now: Millis) -> Result<usize> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "UPDATE attempts SET outcome = 'crashed', finished_at = ?1 WHERE outcome IS NULL",
            [now],
        )?;
        let requeued = tx.execute(
            "UPDATE files SET state = 'pending', updated_at = ?1 WHERE state = 'downloading'",
            [now],
        )?;
        tx.commit()?;
        Ok(requeued)
    }

    /// Puts every failed file back in the queue with a fresh attempt budget.
    pub fn retry_failed(&mut self, now: Millis) -> Result<usize> {
        let revived = self.conn.execute(
            "UPDATE files SET state = 'pending', attempts = 0, next_attempt_at = 0, updated_at = ?1
             WHERE state = 'failed'",
            [now],
        )?;
        refresh_completion(&self.conn, None, now)?;
        Ok(revived)
    }

    /// Queues an archived file again (its archived copy is missing or corrupt).
    pub fn requeue_done(&mut self, file_id: FileId, reason: &str, now: Millis) -> Result<()> {
        self.conn.execute(
            "UPDATE files SET state = 'pending', attempts = 0, next_attempt_at = 0, last_error = ?2,
                 size = NULL, sha256 = NULL, done_at = NULL, updated_at = ?3
             WHERE id = ?1 AND state = 'done'",
            params![file_id, reason, now],
        )?;
        refresh_completion(&self.conn, None, now)?;
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
            "SELECT file_type, rel_path, state, size, sha256, done_at FROM files
             WHERE conf_uuid = ?1 ORDER BY rel_path",
        )?;
        let rows = stmt.query_map([conf_uuid], |row| {
            Ok(FileRecord {
                file_type: row.get(0)?,
                rel_path: row.get(1)?,
                state: row.get(2)?,
                size: row.get::<_, Option<i64>>(3)?.map(|s| s.max(0) as u64),
                sha256: row.get(4)?,
                done_at: row.get(5)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// What an idle worker needs, in one query: the earliest time a
    /// pending file becomes due (if any is pending) and how many files are
    /// being downloaded now.
    pub fn queue_state(&self) -> Result<(Option<Millis>, i64)> {
        Ok(self.conn.query_row(
            "SELECT min(next_attempt_at) FILTER (WHERE state = 'pending'),
                    count(*) FILTER (WHERE state = 'downloading')
             FROM files",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )?)
    }
}
