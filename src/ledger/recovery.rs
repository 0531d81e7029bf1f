//! Keeping the queue honest after faults: work no live worker owns goes
//! back to the queue, partial files that nothing will resume are named for
//! removal, local conditions (a full disk) are recorded for `status` and
//! `/healthz`, and manifests whose write failed are remembered for a retry.

use rusqlite::{OptionalExtension, TransactionBehavior, params};
use serde::Serialize;

use super::{FileId, Ledger, Result};
use crate::clock::Millis;

/// A local condition that stops work, as `status` shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct Condition {
    /// Its name (`disk_full`).
    pub name: String,
    /// What is wrong and where.
    pub detail: String,
    /// Since when.
    pub since: Millis,
}

impl Ledger {
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

    /// Work marked `downloading` that none of `owned` (the claims of the
    /// only process that may download, this one) covers goes back to the
    /// queue; its open attempts are closed as abandoned. Returns how many.
    pub fn requeue_unowned(&mut self, owned: &[FileId], now: Millis) -> Result<usize> {
        let owned = serde_json::to_string(&owned.iter().map(|id| id.get()).collect::<Vec<_>>())
            .unwrap_or_else(|_| "[]".to_owned());
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute(
            "UPDATE attempts SET outcome = 'abandoned', finished_at = ?1
             WHERE outcome IS NULL AND file_id IN (
                 SELECT id FROM files WHERE state = 'downloading'
                   AND id NOT IN (SELECT value FROM json_each(?2)))",
            params![now, owned],
        )?;
        let requeued = tx.execute(
            "UPDATE files SET state = 'pending', updated_at = ?1
             WHERE state = 'downloading' AND id NOT IN (SELECT value FROM json_each(?2))",
            params![now, owned],
        )?;
        tx.commit()?;
        Ok(requeued)
    }

    /// Files whose partial data a later attempt resumes: unfinished files
    /// with durable bytes. Partial files of any other id can be removed.
    pub fn resumable_partials(&self) -> Result<Vec<FileId>> {
        let mut stmt = self.conn.prepare(
            "SELECT id FROM files WHERE state IN ('pending', 'downloading') AND partial_bytes > 0",
        )?;
        let rows = stmt.query_map([], |row| row.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Records (or refreshes the detail of) a condition; keeps its start.
    pub fn set_condition(&mut self, name: &str, detail: &str, now: Millis) -> Result<()> {
        self.conn.execute(
            "INSERT INTO conditions (name, detail, since) VALUES (?1, ?2, ?3)
             ON CONFLICT (name) DO UPDATE SET detail = ?2",
            params![name, detail, now],
        )?;
        Ok(())
    }

    /// Ends a condition; returns whether it was set.
    pub fn clear_condition(&mut self, name: &str) -> Result<bool> {
        Ok(self
            .conn
            .execute("DELETE FROM conditions WHERE name = ?1", [name])?
            > 0)
    }

    /// The conditions in force, oldest first.
    pub fn conditions(&self) -> Result<Vec<Condition>> {
        let mut stmt = self
            .conn
            .prepare("SELECT name, detail, since FROM conditions ORDER BY since, name")?;
        let rows = stmt.query_map([], |row| {
            Ok(Condition {
                name: row.get(0)?,
                detail: row.get(1)?,
                since: row.get(2)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Marks a meeting's manifest on disk as behind the ledger (a write
    /// failed, or the caller knows the ledger changed).
    pub fn mark_manifest_stale(&mut self, conf_uuid: &str) -> Result<()> {
        mark_manifest_stale(&self.conn, conf_uuid, true)?;
        Ok(())
    }

    /// The meeting's manifest generation: 0 when its manifest on disk is
    /// current, otherwise how many changes it has not shown yet (read it
    /// before reading what the manifest shows).
    pub fn manifest_generation(&self, conf_uuid: &str) -> Result<i64> {
        Ok(self
            .conn
            .prepare_cached("SELECT manifest_stale FROM meetings WHERE conf_uuid = ?1")?
            .query_row([conf_uuid], |row| row.get(0))
            .optional()?
            .unwrap_or(0))
    }

    /// Records that the manifest written from what the ledger held at
    /// `generation` is on disk: the mark is cleared unless a change came
    /// since (then the next rewrite shows it). Returns whether it cleared.
    pub fn manifest_written(&mut self, conf_uuid: &str, generation: i64) -> Result<bool> {
        Ok(self.conn.execute(
            "UPDATE meetings SET manifest_stale = 0
             WHERE conf_uuid = ?1 AND manifest_stale = ?2 AND manifest_stale <> 0",
            params![conf_uuid, generation],
        )? > 0)
    }

    /// Meetings whose manifest is behind the ledger (a change not written
    /// yet, a crash before the write, or a failed write).
    pub fn stale_manifests(&self) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare(
            "SELECT conf_uuid FROM meetings WHERE manifest_stale <> 0 ORDER BY conf_uuid",
        )?;
        let rows = stmt.query_map([], |row| row.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

/// Bumps a meeting's manifest generation (see
/// [`Ledger::manifest_generation`]) when its manifest changes: in the same
/// transaction as the change, so that a crash before the rewrite leaves
/// the mark for start-up. Only meetings with an archived file have a
/// manifest, unless `always` (a file just stopped being archived).
pub(super) fn mark_manifest_stale(
    conn: &rusqlite::Connection,
    conf_uuid: &str,
    always: bool,
) -> rusqlite::Result<()> {
    conn.prepare_cached(
        "UPDATE meetings SET manifest_stale = manifest_stale + 1
         WHERE conf_uuid = ?1 AND (?2 OR files_done > 0)",
    )?
    .execute(params![conf_uuid, always])?;
    Ok(())
}
