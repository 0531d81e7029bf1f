//! Writes whose COMMIT fails: each must return an error and leave the row
//! as it was. The trap is a deferred foreign-key violation, checked only at
//! COMMIT, inserted by a trigger on every update of `files`.

use super::tests::{CONF, at, entry, ledger_with};
use super::*;
use crate::clock::Millis;

/// Sets the trap: from now on every `UPDATE` of `files` inserts a row that
/// violates a deferred foreign key, so the transaction's COMMIT fails.
fn set_trap(ledger: &Ledger) {
    ledger
        .conn
        .execute_batch(
            "CREATE TABLE trap (
                 x TEXT REFERENCES meetings (conf_uuid) DEFERRABLE INITIALLY DEFERRED
             );
             CREATE TRIGGER trap_files AFTER UPDATE ON files
             BEGIN INSERT INTO trap VALUES ('no such meeting'); END;",
        )
        .expect("trap set");
}

/// The columns a write could change, as the ledger holds them.
#[derive(Debug, PartialEq, Eq)]
struct Row {
    state: FileState,
    attempts: i64,
    next_attempt_at: i64,
    last_error: Option<String>,
    partial_bytes: i64,
    sha256: Option<String>,
}

fn row(ledger: &Ledger, id: FileId) -> Row {
    ledger
        .conn
        .query_row(
            "SELECT state, attempts, next_attempt_at, last_error, partial_bytes, sha256
             FROM files WHERE id = ?1",
            [id],
            |r| {
                Ok(Row {
                    state: r.get(0)?,
                    attempts: r.get(1)?,
                    next_attempt_at: r.get(2)?,
                    last_error: r.get(3)?,
                    partial_bytes: r.get(4)?,
                    sha256: r.get(5)?,
                })
            },
        )
        .expect("row")
}

/// A ledger with one claimed file, then the trap.
fn claimed_then_trapped() -> (Ledger, ClaimedFile) {
    let mut ledger = ledger_with(&[entry("Hd", "/d/0_0.mp4", "t1")]);
    let file = ledger.claim_next(at(100)).expect("claim").expect("a file");
    set_trap(&ledger);
    (ledger, file)
}

fn is_foreign_key_failure(error: &LedgerError) -> bool {
    error.to_string().contains("ledger") && format!("{error:?}").contains("FOREIGN KEY")
}

#[test]
fn the_trap_fails_only_at_commit_and_an_autocommit_returning_would_lie() {
    // Why the writes use checked transactions: an autocommit
    // `UPDATE … RETURNING` read with `query_row` hands back the new row, and
    // the COMMIT that fails after it is never seen.
    let (ledger, file) = claimed_then_trapped();
    let answered: i64 = ledger
        .conn
        .query_row(
            "UPDATE files SET attempts = attempts + 1 WHERE id = ?1 RETURNING attempts",
            [file.id],
            |r| r.get(0),
        )
        .expect("the old form returns Ok");
    assert_eq!(answered, 1, "it claims the write happened");
    assert_eq!(row(&ledger, file.id).attempts, 0, "nothing was saved");
}

#[test]
fn schedule_retry_fails_and_leaves_the_row_unchanged() {
    let (mut ledger, file) = claimed_then_trapped();
    let before = row(&ledger, file.id);
    let plan = RetryPlan {
        error: "HTTP 500",
        next_attempt_at: at(5_000),
        max_attempts: 1,
        partial_bytes: 4096,
    };
    let error = ledger
        .schedule_retry(file.id, &plan, at(200))
        .expect_err("the commit fails");
    assert!(is_foreign_key_failure(&error), "{error:?}");
    assert_eq!(row(&ledger, file.id), before);
    assert_eq!(before.state, FileState::Downloading);
}

#[test]
fn mark_done_fails_and_leaves_the_row_unchanged() {
    let (mut ledger, file) = claimed_then_trapped();
    let before = row(&ledger, file.id);
    let done = DoneMark {
        size: 5,
        sha256: "2cf24dba5fb0a30e26e83b2ac5b9e29e1b161e5c1fa7425e73043362938b9824",
        length_confirmed: true,
    };
    let error = ledger
        .mark_done(file.id, &done, at(200))
        .expect_err("the commit fails");
    assert!(is_foreign_key_failure(&error), "{error:?}");
    assert_eq!(row(&ledger, file.id), before);
    let status = ledger.status(5).expect("status");
    assert_eq!((status.files.done, status.bytes_archived), (0, 0));
}

#[test]
fn claim_next_fails_and_leaves_the_file_pending() {
    let mut ledger = ledger_with(&[entry("Hd", "/d/0_0.mp4", "t1")]);
    set_trap(&ledger);
    let id: FileId = ledger
        .conn
        .query_row("SELECT id FROM files", [], |r| r.get(0))
        .expect("id");
    let before = row(&ledger, id);
    let error = ledger.claim_next(at(100)).expect_err("the commit fails");
    assert!(is_foreign_key_failure(&error), "{error:?}");
    assert_eq!(row(&ledger, id), before);
    assert_eq!(before.state, FileState::Pending);
    assert_eq!(ledger.queue_state().expect("queue"), (Some(at(0)), 0));
}

#[test]
fn single_statement_writes_fail_too() {
    let (mut ledger, file) = claimed_then_trapped();
    let before = row(&ledger, file.id);
    let now = Millis::now();
    assert!(ledger.release(file.id, 2048, now).is_err());
    assert!(ledger.set_partial(file.id, 2048).is_err());
    assert!(
        ledger
            .await_confirmation(file.id, (5, "abc"), true, now)
            .is_err()
    );
    assert_eq!(row(&ledger, file.id), before);
    assert_eq!(ledger.meeting_files(CONF).expect("files").len(), 1);
}

#[test]
fn a_call_waits_for_another_programs_lock_no_longer_than_the_patience() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ledger.sqlite3");
    let mut ledger = Ledger::open(&path, false).expect("open");
    ledger
        .upsert_meeting(CONF, MeetingOrigin::Config, None, at(1))
        .expect("meeting");
    ledger
        .store_urls(CONF, &[entry("Hd", "/d/0_0.mp4", "t1")], at(10))
        .expect("store");
    ledger
        .limit_busy_wait(std::time::Duration::from_millis(200))
        .expect("limit");
    let other = rusqlite::Connection::open(&path).expect("second connection");
    other.execute_batch("BEGIN EXCLUSIVE").expect("locked");
    let started = std::time::Instant::now();
    let error = ledger.claim_next(at(100)).expect_err("locked out");
    let waited = started.elapsed();
    assert!(format!("{error:?}").contains("locked"), "{error:?}");
    assert!(
        waited >= std::time::Duration::from_millis(150) && waited < BUSY_TIMEOUT,
        "waited {waited:?}"
    );
    other.execute_batch("COMMIT").expect("unlocked");
    assert!(ledger.claim_next(at(100)).expect("claim").is_some());
}
