//! Files verified in the partial area and waiting for their upload to the
//! bucket (`archive.target = "s3"`). Staging is recorded before the upload
//! starts, so that a crash, a SIGKILL or a store that fails for a while
//! costs an upload, never a download or a download token: the next claim
//! finds the file staged and uploads the kept partial file again (or marks
//! it done if the store already holds it).

use rusqlite::params;

use super::{FileId, Ledger, Result};
use crate::clock::Millis;

/// What a staged partial file was verified to hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Staged {
    /// Its size in bytes.
    pub size: u64,
    /// Its hex SHA-256.
    pub sha256: String,
    /// Whether the server announced or confirmed its length.
    pub length_confirmed: bool,
}

/// The staged columns of a row, from column `first` on (size, SHA-256,
/// length confirmed).
pub(super) fn from_columns(
    row: &rusqlite::Row<'_>,
    first: usize,
) -> rusqlite::Result<Option<Staged>> {
    let size: Option<i64> = row.get(first)?;
    let sha256: Option<String> = row.get(first + 1)?;
    let confirmed: Option<bool> = row.get(first + 2)?;
    Ok(match (size, sha256) {
        (Some(size), Some(sha256)) => Some(Staged {
            size: size.max(0) as u64,
            sha256,
            length_confirmed: confirmed.unwrap_or(true),
        }),
        _ => None,
    })
}

impl Ledger {
    /// Records that a claimed file's partial data is complete and verified
    /// as `staged`, before its upload starts.
    pub fn stage(&mut self, file_id: FileId, staged: &Staged) -> Result<()> {
        self.conn.execute(
            "UPDATE files SET staged_size = ?2, staged_sha256 = ?3, staged_length_confirmed = ?4,
                 partial_bytes = ?2
             WHERE id = ?1 AND state = 'downloading'",
            params![
                file_id,
                staged.size as i64,
                staged.sha256,
                staged.length_confirmed
            ],
        )?;
        Ok(())
    }

    /// Records the multipart upload now open for a file (`None`: none is).
    pub fn set_open_upload(&mut self, file_id: FileId, upload_id: Option<&str>) -> Result<()> {
        self.conn.execute(
            "UPDATE files SET open_upload_id = ?2 WHERE id = ?1",
            params![file_id, upload_id],
        )?;
        Ok(())
    }

    /// Puts a claimed file back after the store refused or failed its
    /// upload: due at `next_attempt_at`, its error recorded, no attempt
    /// counted (a store outage must not fail files for good, nor lose
    /// their verified copies), its staging kept.
    pub fn defer_upload(
        &mut self,
        file_id: FileId,
        error: &str,
        next_attempt_at: Millis,
        partial_bytes: u64,
        now: Millis,
    ) -> Result<()> {
        self.conn.execute(
            "UPDATE files SET state = 'pending', next_attempt_at = ?2, last_error = ?3,
                 updated_at = ?4, partial_bytes = ?5
             WHERE id = ?1 AND state = 'downloading'",
            params![file_id, next_attempt_at, error, now, partial_bytes as i64],
        )?;
        Ok(())
    }

    /// Forgets a staging whose partial file is gone: the file is downloaded
    /// again from the start.
    pub fn unstage(&mut self, file_id: FileId) -> Result<()> {
        self.conn.execute(
            "UPDATE files SET staged_size = NULL, staged_sha256 = NULL,
                 staged_length_confirmed = NULL, partial_bytes = 0
             WHERE id = ?1",
            [file_id],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::tests::{at, entry, ledger_with};
    use crate::ledger::{DoneMark, RetryPlan};

    fn staged() -> Staged {
        Staged {
            size: 5,
            sha256: "ab".repeat(32),
            length_confirmed: true,
        }
    }

    #[test]
    fn a_staged_file_is_claimed_staged_until_it_is_done() {
        let mut ledger = ledger_with(&[entry("Hd", "/d/hd/0_0.mp4", "t1")]);
        let file = ledger.claim_next(at(20)).expect("claim").expect("due");
        assert_eq!(file.staged, None);
        ledger.stage(file.id, &staged()).expect("stage");
        ledger.release(file.id, 5, at(21)).expect("release");
        let again = ledger.claim_next(at(22)).expect("claim").expect("due");
        assert_eq!(again.staged, Some(staged()));
        assert_eq!(again.partial_bytes, 5);
        let done = DoneMark {
            size: 5,
            sha256: &staged().sha256,
            length_confirmed: true,
        };
        ledger
            .set_open_upload(again.id, Some("upload-1"))
            .expect("record");
        ledger.mark_done(again.id, &done, at(23)).expect("done");
        ledger
            .requeue_done(again.id, "verify: missing", at(24))
            .expect("requeue");
        let third = ledger.claim_next(at(25)).expect("claim").expect("due");
        assert_eq!(third.staged, None, "done clears the staging");
        assert_eq!(third.open_upload, None, "and the upload it completed");
    }

    #[test]
    fn a_deferred_upload_keeps_its_staging_and_counts_no_attempt() {
        let mut ledger = ledger_with(&[entry("Hd", "/d/hd/0_0.mp4", "t1")]);
        let mut file = ledger.claim_next(at(20)).expect("claim").expect("due");
        ledger.stage(file.id, &staged()).expect("stage");
        for n in 0..50 {
            let now = at(100 + 2 * n);
            let error = "store: 403 AccessDenied";
            ledger
                .defer_upload(file.id, error, at(101 + 2 * n), 5, now)
                .expect("defer");
            file = ledger
                .claim_next(at(101 + 2 * n))
                .expect("claim")
                .expect("due");
        }
        ledger
            .defer_upload(file.id, "store: 503", at(199), 5, at(120))
            .expect("defer");
        let early = ledger.claim_next(at(150)).expect("claim");
        assert!(early.is_none(), "not due before its backoff ends");
        let again = ledger.claim_next(at(200)).expect("claim").expect("due");
        assert_eq!(again.attempts, 0, "a store fault counts no attempt");
        assert_eq!(again.staged, Some(staged()));
        assert_eq!(again.partial_bytes, 5);
    }

    #[test]
    fn failing_for_good_or_unstaging_forgets_the_staging() {
        let mut ledger = ledger_with(&[entry("Hd", "/d/hd/0_0.mp4", "t1")]);
        let file = ledger.claim_next(at(20)).expect("claim").expect("due");
        ledger.stage(file.id, &staged()).expect("stage");
        let plan = |max| RetryPlan {
            error: "upload failed",
            next_attempt_at: at(0),
            max_attempts: max,
            partial_bytes: 5,
        };
        assert!(
            !ledger
                .schedule_retry(file.id, &plan(10), at(21))
                .expect("retry")
        );
        let again = ledger.claim_next(at(22)).expect("claim").expect("due");
        assert_eq!(again.staged, Some(staged()), "a retry keeps it");
        ledger.unstage(again.id).expect("unstage");
        ledger.release(again.id, 0, at(23)).expect("release");
        let third = ledger.claim_next(at(24)).expect("claim").expect("due");
        assert_eq!((third.staged, third.partial_bytes), (None, 0));
        ledger.stage(third.id, &staged()).expect("stage");
        assert!(
            ledger
                .schedule_retry(third.id, &plan(1), at(25))
                .expect("fail")
        );
        ledger.retry_failed(at(26)).expect("revive");
        let fourth = ledger.claim_next(at(27)).expect("claim").expect("due");
        assert_eq!(fourth.staged, None, "failed for good forgets it");
        ledger
            .set_open_upload(fourth.id, Some("upload-2"))
            .expect("record");
        ledger.release(fourth.id, 0, at(28)).expect("release");
        let fifth = ledger.claim_next(at(29)).expect("claim").expect("due");
        assert_eq!(
            fifth.open_upload.as_deref(),
            Some("upload-2"),
            "kept until aborted"
        );
        ledger.set_open_upload(fifth.id, None).expect("forget");
    }
}
