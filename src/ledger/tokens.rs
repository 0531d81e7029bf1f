//! Download tokens: single-use secrets. A token is marked spent, and erased,
//! in the same committed transaction that opens its attempt, before the
//! request that uses it goes out: a crash can lose a token, never reuse one.

use rusqlite::{OptionalExtension, TransactionBehavior, params};
use secrecy::SecretString;

use super::{FileId, Ledger, Result};
use crate::clock::Millis;

/// A token taken for one request, with the attempt it opened.
pub struct SpentToken {
    /// The token's row.
    pub token_id: i64,
    /// The attempt row opened for the request.
    pub attempt_id: i64,
    /// The token, now spent in the ledger; present it exactly once.
    pub token: SecretString,
    /// When the cloud issued it (when the listing that brought it was stored).
    pub issued_at: Millis,
}

/// How an attempt ended, as recorded in `attempts.outcome`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum AttemptOutcome {
    /// The file was archived.
    Done,
    /// The server refused the token (spent, expired or unknown).
    TokenRejected,
    /// Any other failure.
    Failed,
    /// Shutdown stopped the transfer; partial data kept.
    Interrupted,
    /// The archive's disk was full; partial data kept, not the file's fault.
    DiskFull,
}

impl AttemptOutcome {
    /// The name stored in the ledger and used as a metric label.
    pub fn as_str(self) -> &'static str {
        match self {
            AttemptOutcome::Done => "done",
            AttemptOutcome::TokenRejected => "token_rejected",
            AttemptOutcome::Failed => "failed",
            AttemptOutcome::Interrupted => "interrupted",
            AttemptOutcome::DiskFull => "disk_full",
        }
    }
}

/// The end of one attempt.
pub struct AttemptEnd<'a> {
    /// How it ended.
    pub outcome: AttemptOutcome,
    /// Bytes received in this attempt.
    pub bytes: u64,
    /// The HTTP status, if a response came.
    pub http_status: Option<u16>,
    /// The error, if any (never containing a secret).
    pub error: Option<&'a str>,
}

/// A file's newest usable token (index `tokens_file`).
pub(super) const NEWEST_TOKEN: &str = "SELECT id, token, issued_at FROM tokens
     WHERE file_id = ?1 AND spent_at IS NULL AND superseded_at IS NULL
       AND token IS NOT NULL AND issued_at >= ?2
     ORDER BY issued_at DESC, id DESC LIMIT 1";

/// The finished attempts of file `?1` older than its `?2` newest.
macro_rules! old_attempts {
    () => {
        "FROM attempts WHERE file_id = ?1 AND outcome IS NOT NULL
         AND id < (SELECT id FROM attempts WHERE file_id = ?1 ORDER BY id DESC LIMIT 1 OFFSET ?2 - 1)"
    };
}

/// Adds the old attempts of a file to its totals.
pub(super) const FOLD_ATTEMPTS: &str = concat!(
    "UPDATE files SET attempts_pruned = attempts_pruned + old.n,
         attempt_bytes_pruned = attempt_bytes_pruned + old.b
     FROM (SELECT count(*) AS n, coalesce(sum(bytes), 0) AS b ",
    old_attempts!(),
    ") AS old WHERE files.id = ?1 AND old.n > 0"
);

/// Deletes the old attempts of a file, once folded.
pub(super) const PRUNE_ATTEMPTS: &str = concat!("DELETE ", old_attempts!());

impl Ledger {
    /// Takes the newest unspent token of a file issued at or after
    /// `issued_after`, marks it spent and opens an attempt starting at byte
    /// `resume_from`. `None` when no usable token is stored.
    pub fn take_token(
        &mut self,
        file_id: FileId,
        issued_after: Millis,
        resume_from: u64,
        now: Millis,
    ) -> Result<Option<SpentToken>> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let found: Option<(i64, String, Millis)> = tx
            .prepare_cached(NEWEST_TOKEN)?
            .query_row(params![file_id, issued_after], |row| {
                Ok((row.get(0)?, row.get(1)?, row.get(2)?))
            })
            .optional()?;
        let Some((token_id, token, issued_at)) = found else {
            return Ok(None);
        };
        tx.prepare_cached("UPDATE tokens SET spent_at = ?2, token = NULL WHERE id = ?1")?
            .execute(params![token_id, now])?;
        let attempt_id = tx
            .prepare_cached(
                "INSERT INTO attempts (file_id, token_id, started_at, resume_from)
             VALUES (?1, ?2, ?3, ?4) RETURNING id",
            )?
            .query_row(params![file_id, token_id, now, resume_from as i64], |row| {
                row.get(0)
            })?;
        tx.commit()?;
        Ok(Some(SpentToken {
            token_id,
            attempt_id,
            token: SecretString::from(token),
            issued_at,
        }))
    }

    /// Closes an attempt opened by [`Ledger::take_token`], and folds the
    /// file's attempts beyond the last [`KEEP_ATTEMPTS`](super::KEEP_ATTEMPTS)
    /// into its totals (`attempts_pruned`, `attempt_bytes_pruned`), in the
    /// same transaction: a long-running daemon's ledger does not grow with
    /// every retry of a file that keeps failing.
    pub fn finish_attempt(
        &mut self,
        attempt_id: i64,
        end: &AttemptEnd<'_>,
        now: Millis,
    ) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let file_id: Option<FileId> = tx
            .prepare_cached(
                "UPDATE attempts SET finished_at = ?2, outcome = ?3, bytes = ?4, http_status = ?5,
                     error = ?6
                 WHERE id = ?1 RETURNING file_id",
            )?
            .query_row(
                params![
                    attempt_id,
                    now,
                    end.outcome,
                    end.bytes as i64,
                    end.http_status,
                    end.error
                ],
                |row| row.get(0),
            )
            .optional()?;
        if let Some(file_id) = file_id {
            let keep = super::KEEP_ATTEMPTS;
            tx.prepare_cached(FOLD_ATTEMPTS)?
                .execute(params![file_id, keep])?;
            tx.prepare_cached(PRUNE_ATTEMPTS)?
                .execute(params![file_id, keep])?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Whether a token with this digest was ever stored (the token itself
    /// is not kept once spent).
    #[cfg(test)]
    pub fn token_known(&self, token: &str) -> Result<bool> {
        Ok(self
            .conn
            .prepare_cached("SELECT EXISTS (SELECT 1 FROM tokens WHERE token_sha256 = ?1)")?
            .query_row([super::meetings::token_digest(token)], |row| row.get(0))?)
    }
}

impl Ledger {
    /// Supersedes a file's unspent tokens issued before `before`: after the
    /// server refused one of a batch, the rest of that batch is suspect.
    pub fn supersede_tokens(
        &mut self,
        file_id: FileId,
        before: Millis,
        now: Millis,
    ) -> Result<usize> {
        Ok(self
            .conn
            .prepare_cached(
                "UPDATE tokens SET superseded_at = ?3, token = NULL
             WHERE file_id = ?1 AND spent_at IS NULL AND superseded_at IS NULL AND issued_at < ?2",
            )?
            .execute(params![file_id, before, now])?)
    }
}
