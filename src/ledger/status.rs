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

fn error_line(row: &rusqlite::Row<'_>) -> rusqlite::Result<ErrorLine> {
    Ok(ErrorLine {
        conf_uuid: row.get(0)?,
        rel_path: row.get(1)?,
        state: row.get(2)?,
        attempts: row.get(3)?,
        error: row.get(4)?,
    })
}

/// `status`'s last errors of one state, newest first (index `files_errors`).
pub(super) const LAST_ERRORS: &str =
    "SELECT conf_uuid, rel_path, state, attempts, last_error, updated_at FROM files
     WHERE last_error IS NOT NULL AND state = ?1 ORDER BY updated_at DESC LIMIT ?2";

/// Pending files still waiting out a backoff at `?1` (few: the failing ones).
pub(super) const WAITING_COUNT: &str =
    "SELECT count(*) FROM files WHERE state = 'pending' AND next_attempt_at > ?1";

impl Ledger {
    /// The summary shown by `status`, with up to `max_errors` error lines.
    /// Counts come from the counters (see `counts`), errors from an index:
    /// no query here scans `files` or `meetings`.
    pub fn status(&self, max_errors: usize) -> Result<Status> {
        let counters = self.counters()?;
        let mut files = FileCounts::default();
        for state in FileState::ALL {
            *files.count_mut(state) = counters.get(&format!("files.{state}"));
        }
        Ok(Status {
            meetings: counters.get("meetings"),
            files,
            bytes_archived: counters.get("bytes_archived"),
            last_errors: self.last_errors(max_errors)?,
            length_unconfirmed: counters.get("length_unconfirmed"),
            conditions: self.conditions()?,
            last_successful_poll: self.mark(super::POLL_OK)?,
        })
    }

    /// Failed files first, then the others by how recently they failed.
    fn last_errors(&self, limit: usize) -> Result<Vec<ErrorLine>> {
        if limit == 0 {
            return Ok(Vec::new());
        }
        let mut stmt = self.conn.prepare_cached(LAST_ERRORS)?;
        let mut lines = Vec::new();
        let mut others: Vec<(ErrorLine, Millis)> = Vec::new();
        for state in [
            FileState::Failed,
            FileState::Pending,
            FileState::Downloading,
        ] {
            let rows = stmt.query_map(rusqlite::params![state, limit as i64], |row| {
                Ok((error_line(row)?, row.get::<_, Millis>(5)?))
            })?;
            for row in rows {
                let (line, at) = row?;
                if state == FileState::Failed {
                    lines.push(line);
                } else {
                    others.push((line, at));
                }
            }
        }
        // Pending and downloading files together, newest error first.
        others.sort_by_key(|(_, at)| std::cmp::Reverse(*at));
        lines.extend(others.into_iter().map(|(line, _)| line));
        lines.truncate(limit);
        Ok(lines)
    }
}

impl Ledger {
    /// The last errors of one meeting's files, newest first.
    pub fn meeting_errors(&self, conf_uuid: &str, limit: usize) -> Result<Vec<ErrorLine>> {
        let mut stmt = self.conn.prepare_cached(
            "SELECT conf_uuid, rel_path, state, attempts, last_error FROM files
             WHERE conf_uuid = ?1 AND last_error IS NOT NULL AND state <> 'done'
             ORDER BY updated_at DESC LIMIT ?2",
        )?;
        let rows = stmt.query_map(rusqlite::params![conf_uuid, limit as i64], error_line)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Pending files whose next attempt is due at `now`: the queue depth.
    pub fn due_count(&self, now: Millis) -> Result<i64> {
        // Most pending files are due (a backlog), few wait out a backoff:
        // count the few through the queue index and subtract.
        let waiting: i64 = self
            .conn
            .query_row(WAITING_COUNT, [now], |row| row.get(0))?;
        Ok((self.counters()?.get("files.pending") - waiting).max(0))
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
