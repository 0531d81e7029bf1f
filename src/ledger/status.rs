//! The ledger's summary, for `status`, metrics and exit codes.

use serde::Serialize;

use super::{Condition, FileState, Ledger, Result};
use crate::clock::Millis;

/// Files per state, meetings, bytes and the latest errors.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct Status {
    /// Meetings known.
    pub meetings: i64,
    /// Files per state.
    pub files: FileCounts,
    /// Sum of the sizes of archived files.
    pub bytes_archived: i64,
    /// The most recent errors of files not yet archived.
    pub last_errors: Vec<ErrorLine>,
    /// Archived files whose length nothing could confirm (the server
    /// announced none and no probe answered).
    pub length_unconfirmed: i64,
    /// Local conditions stopping work now (a full disk).
    pub conditions: Vec<Condition>,
    /// When a poll last listed every meeting without an error.
    pub last_successful_poll: Option<Millis>,
}

/// Files per state; the JSON keys are part of the interface.
#[derive(Debug, Clone, Default, Serialize, PartialEq, Eq)]
pub struct FileCounts {
    /// Waiting for (another) attempt.
    pub pending: i64,
    /// Being transferred now (or left so by a crash, until the next start).
    pub downloading: i64,
    /// Archived and verified.
    pub done: i64,
    /// Failed `max_attempts` times; `retry` revives them.
    pub failed: i64,
}

impl FileCounts {
    /// Files in `state`.
    pub fn count(&self, state: FileState) -> i64 {
        match state {
            FileState::Pending => self.pending,
            FileState::Downloading => self.downloading,
            FileState::Done => self.done,
            FileState::Failed => self.failed,
        }
    }

    fn count_mut(&mut self, state: FileState) -> &mut i64 {
        match state {
            FileState::Pending => &mut self.pending,
            FileState::Downloading => &mut self.downloading,
            FileState::Done => &mut self.done,
            FileState::Failed => &mut self.failed,
        }
    }
}

/// One file's last error.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct ErrorLine {
    /// The file's meeting.
    pub conf_uuid: String,
    /// Where the file goes under the archive folder.
    pub rel_path: String,
    /// Its state (`pending` or `failed`: done files have no error).
    pub state: FileState,
    /// Failed attempts so far.
    pub attempts: i64,
    /// The error.
    pub error: String,
}

impl Ledger {
    /// The summary shown by `status`, with up to `max_errors` error lines.
    pub fn status(&self, max_errors: usize) -> Result<Status> {
        let meetings = self
            .conn
            .query_row("SELECT count(*) FROM meetings", [], |row| row.get(0))?;
        let mut files = FileCounts::default();
        let mut stmt = self
            .conn
            .prepare("SELECT state, count(*) FROM files GROUP BY state")?;
        let mut rows = stmt.query([])?;
        while let Some(row) = rows.next()? {
            let count: i64 = row.get(1)?;
            *files.count_mut(row.get(0)?) = count;
        }
        let (bytes_archived, length_unconfirmed) = self.conn.query_row(
            "SELECT coalesce(sum(size), 0), count(*) FILTER (WHERE length_unconfirmed = 1)
             FROM files WHERE state = 'done'",
            [],
            |row| Ok((row.get(0)?, row.get(1)?)),
        )?;
        Ok(Status {
            meetings,
            files,
            bytes_archived,
            last_errors: self.last_errors(max_errors)?,
            length_unconfirmed,
            conditions: self.conditions()?,
            last_successful_poll: self.mark(super::POLL_OK)?,
        })
    }

    fn last_errors(&self, limit: usize) -> Result<Vec<ErrorLine>> {
        let mut stmt = self.conn.prepare(
            "SELECT conf_uuid, rel_path, state, attempts, last_error FROM files
             WHERE last_error IS NOT NULL AND state <> 'done'
             ORDER BY (state = 'failed') DESC, updated_at DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit as i64], |row| {
            Ok(ErrorLine {
                conf_uuid: row.get(0)?,
                rel_path: row.get(1)?,
                state: row.get(2)?,
                attempts: row.get(3)?,
                error: row.get(4)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

impl Ledger {
    /// Pending files whose next attempt is due at `now`: the queue depth.
    pub fn due_count(&self, now: Millis) -> Result<i64> {
        Ok(self.conn.query_row(
            "SELECT count(*) FROM files WHERE state = 'pending' AND next_attempt_at <= ?1",
            [now],
            |row| row.get(0),
        )?)
    }

    /// Writes the heartbeat row: fails if the ledger cannot be written
    /// (full disk, read-only file system, lost permissions).
    pub fn heartbeat(&mut self, now: Millis) -> Result<()> {
        self.conn.execute(
            "INSERT INTO heartbeat (id, at) VALUES (1, ?1) ON CONFLICT (id) DO UPDATE SET at = ?1",
            [now],
        )?;
        Ok(())
    }
}
