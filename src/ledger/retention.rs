//! Retention in the ledger (migration 0007): which meetings a retention
//! pass may consider, why one was held back, and the intent and outcome
//! of each deletion, so that a crash between the DELETE and its record is
//! resolved, never repeated blindly and never forgotten.

use rusqlite::{TransactionBehavior, params};

use super::recovery::mark_manifest_stale;
use super::{FileState, Ledger, Result};
use crate::clock::Millis;

/// An archived (or not yet archived) file of a candidate meeting.
#[derive(Clone, Debug)]
pub struct HeldFile {
    /// `Hd`, `Sd`, `Aux`, ...
    pub file_type: String,
    /// Its identity within the meeting and type.
    pub file_key: String,
    /// Where it stands.
    pub state: FileState,
    /// Where it lies under the archive folder.
    pub rel_path: String,
    /// Its size, once done.
    pub size: Option<u64>,
    /// Its SHA-256, once done.
    pub sha256: Option<String>,
}

/// A meeting a retention pass looks at: not deleted, no deletion pending.
#[derive(Clone, Debug)]
pub struct RetentionCandidate {
    /// The conference UUID.
    pub conf_uuid: String,
    /// Since when every file is archived, if it is.
    pub complete_since: Option<Millis>,
    /// Its files.
    pub files: Vec<HeldFile>,
}

impl Ledger {
    /// Meetings with files that are neither deleted nor awaiting the
    /// outcome of a deletion, oldest complete first.
    pub fn retention_candidates(&self) -> Result<Vec<RetentionCandidate>> {
        let mut stmt = self.conn.prepare(
            "SELECT conf_uuid, complete_since FROM meetings
             WHERE deleted_from_cloud_at IS NULL AND deletion_intent_at IS NULL
               AND EXISTS (SELECT 1 FROM files f WHERE f.conf_uuid = meetings.conf_uuid)
             ORDER BY complete_since IS NULL, complete_since, conf_uuid",
        )?;
        let meetings: Vec<(String, Option<Millis>)> = stmt
            .query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?
            .collect::<rusqlite::Result<_>>()?;
        let mut files = self.conn.prepare(
            "SELECT file_type, file_key, state, rel_path, size, sha256 FROM files
             WHERE conf_uuid = ?1 ORDER BY id",
        )?;
        let mut out = Vec::with_capacity(meetings.len());
        for (conf_uuid, complete_since) in meetings {
            let held = files
                .query_map([&conf_uuid], |row| {
                    Ok(HeldFile {
                        file_type: row.get(0)?,
                        file_key: row.get(1)?,
                        state: row.get(2)?,
                        rel_path: row.get(3)?,
                        size: row.get::<_, Option<i64>>(4)?.map(|s| s.max(0) as u64),
                        sha256: row.get(5)?,
                    })
                })?
                .collect::<rusqlite::Result<_>>()?;
            out.push(RetentionCandidate {
                conf_uuid,
                complete_since,
                files: held,
            });
        }
        Ok(out)
    }

    /// Records why a meeting was not deleted (`None`: no reason any more).
    pub fn set_retention_hold(&mut self, conf_uuid: &str, reason: Option<&str>) -> Result<()> {
        self.conn.execute(
            "UPDATE meetings SET retention_hold = ?2 WHERE conf_uuid = ?1",
            params![conf_uuid, reason],
        )?;
        Ok(())
    }

    /// Records the intent to delete `meetings`, before the call goes out.
    pub fn record_deletion_intent(&mut self, meetings: &[String], now: Millis) -> Result<()> {
        self.each(
            meetings,
            "UPDATE meetings SET deletion_intent_at = ?2 WHERE conf_uuid = ?1",
            now,
        )
    }

    /// Records that `meetings` are gone from the cloud.
    pub fn record_deleted(&mut self, meetings: &[String], now: Millis) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        for conf in meetings {
            tx.execute(
                "UPDATE meetings SET deleted_from_cloud_at = ?2, deletion_intent_at = NULL,
                     retention_hold = NULL
                 WHERE conf_uuid = ?1",
                params![conf, now],
            )?;
            // The manifest tells when the cloud's copy went.
            mark_manifest_stale(&tx, conf, false)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Withdraws the intent to delete `meetings` (the cloud still holds
    /// them: the call did not happen or failed).
    pub fn clear_deletion_intent(&mut self, meetings: &[String]) -> Result<()> {
        self.each(
            meetings,
            "UPDATE meetings SET deletion_intent_at = NULL WHERE conf_uuid = ?1 AND ?2 IS NOT NULL",
            Millis::now(),
        )
    }

    /// Meetings whose deletion was intended but not recorded as done.
    pub fn deletion_intents(&self) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare(
            "SELECT conf_uuid FROM meetings
             WHERE deletion_intent_at IS NOT NULL AND deleted_from_cloud_at IS NULL
             ORDER BY conf_uuid",
        )?;
        let rows = stmt.query_map([], |row| row.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Meetings deleted from the cloud: never polled again.
    pub fn deleted_meetings(&self) -> Result<Vec<String>> {
        let mut stmt = self
            .conn
            .prepare("SELECT conf_uuid FROM meetings WHERE deleted_from_cloud_at IS NOT NULL")?;
        let rows = stmt.query_map([], |row| row.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Runs `sql` (`?1` the meeting, `?2` the time) for each meeting, in
    /// one transaction.
    fn each(&mut self, meetings: &[String], sql: &str, now: Millis) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        for conf in meetings {
            tx.execute(sql, params![conf, now])?;
        }
        tx.commit()?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use crate::ledger::tests::{CONF, at, entry, ledger_with};

    #[test]
    fn intents_outcomes_and_holds_follow_the_meeting() {
        let mut ledger = ledger_with(&[entry("Hd", "/d/0_0.mp4", "t")]);
        let candidates = ledger.retention_candidates().expect("candidates");
        assert_eq!(candidates.len(), 1);
        assert_eq!(candidates[0].files[0].file_key, "0_0.mp4");
        ledger
            .set_retention_hold(CONF, Some("too recent"))
            .expect("hold");
        let conf = vec![CONF.to_owned()];
        ledger.record_deletion_intent(&conf, at(5)).expect("intent");
        assert!(
            ledger
                .retention_candidates()
                .expect("candidates")
                .is_empty()
        );
        assert_eq!(ledger.deletion_intents().expect("intents"), conf);
        ledger.clear_deletion_intent(&conf).expect("clear");
        assert!(ledger.deletion_intents().expect("intents").is_empty());
        ledger.record_deletion_intent(&conf, at(6)).expect("intent");
        ledger.record_deleted(&conf, at(7)).expect("deleted");
        assert!(ledger.deletion_intents().expect("intents").is_empty());
        assert_eq!(ledger.deleted_meetings().expect("deleted"), conf);
        assert!(
            ledger
                .retention_candidates()
                .expect("candidates")
                .is_empty()
        );
        let meeting = &ledger.meetings().expect("meetings")[0];
        assert_eq!(meeting.deleted_from_cloud_at, Some(at(7)));
        assert_eq!(meeting.retention_hold, None);
    }
}
