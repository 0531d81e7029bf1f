//! A ledger that refuses writes: locked by another program (`BEGIN
//! EXCLUSIVE` on a second connection), or whose COMMIT fails (a deferred
//! foreign-key trap set by another program).

use std::path::Path;
use std::sync::mpsc;
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::{Duration, Instant};

use meeting_archiver::commands;
use meeting_archiver::config::LedgerConfig;
use meeting_archiver::ledger::Ledger;
use meeting_archiver::simulator::{Faults, Scenario, SimMeeting};
use meeting_archiver::telemetry::error_chain;
use tokio_util::sync::CancellationToken;

use super::file_rows;
use crate::helpers::*;

/// Four files of 512 KiB served at 256 KiB/s each: transfers under way
/// for about two seconds, long enough for a lock to land mid-run.
fn slow_meeting(conf: &str) -> Scenario {
    let mut scn = scenario(vec![SimMeeting::standard(
        conf,
        "Slow",
        4,
        &["Hd"],
        512 * 1024,
    )]);
    scn.faults = Faults {
        slow_bytes_per_sec: Some(256 * 1024),
        ..Faults::default()
    };
    scn
}

/// Another program holding `BEGIN EXCLUSIVE` on the ledger, on its own
/// thread, until [`ExclusiveLock::release`] or its time is up.
struct ExclusiveLock {
    thread: Option<JoinHandle<()>>,
    release: mpsc::Sender<()>,
    /// When the lock was taken, and when it was let go.
    held: Arc<Mutex<(Option<Instant>, Option<Instant>)>>,
}

impl ExclusiveLock {
    /// Takes the lock as soon as SQLite allows and keeps it for `hold`: the
    /// length of the fault, not a wait for anything.
    fn take(path: &Path, hold: Duration) -> ExclusiveLock {
        let (release, released) = mpsc::channel();
        let held = Arc::new(Mutex::new((None, None)));
        let (path, times) = (path.to_owned(), Arc::clone(&held));
        let thread = std::thread::spawn(move || {
            let conn = rusqlite::Connection::open(&path).expect("ledger opens");
            conn.busy_timeout(TEST_TIMEOUT).expect("busy timeout");
            conn.execute_batch("BEGIN EXCLUSIVE").expect("locked");
            times.lock().expect("times").0 = Some(Instant::now());
            let _ = released.recv_timeout(hold);
            conn.execute_batch("COMMIT").expect("unlocked");
            times.lock().expect("times").1 = Some(Instant::now());
        });
        ExclusiveLock {
            thread: Some(thread),
            release,
            held,
        }
    }

    fn taken_at(&self) -> Option<Instant> {
        self.held.lock().expect("times").0
    }

    /// Lets go now (if still held) and returns when it was let go.
    fn release(mut self) -> Instant {
        let _ = self.release.send(());
        if let Some(thread) = self.thread.take() {
            thread.join().expect("lock thread");
        }
        self.held.lock().expect("times").1.expect("released")
    }
}

impl Drop for ExclusiveLock {
    fn drop(&mut self) {
        let _ = self.release.send(());
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ledger_locked_for_25_s_by_another_program_delays_sync_and_loses_nothing() {
    let env = Arc::new(TestEnv::start(slow_meeting("a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7")).await);
    let mut config = env.config();
    config.ledger.retry_for = LedgerConfig::default().retry_for;
    let runner = Arc::clone(&env);
    let sync = tokio::spawn(async move { runner.sync(&config).await });
    until("downloads under way", async || {
        env.sim.stats().bytes_served > 0
    })
    .await;
    let lock = ExclusiveLock::take(&env.ledger_path(), Duration::from_secs(25));
    until("the ledger locked", async || lock.taken_at().is_some()).await;
    assert!(!sync.is_finished(), "the lock landed mid-run");
    let outcome = sync.await.expect("sync task");
    let ended = Instant::now();
    let released = lock.release();
    assert!(released <= ended, "the sync outlived the lock");
    assert_eq!(outcome.exit_code(), 0, "{outcome:?}");
    env.assert_archive_complete(&[]);
    assert_eq!(env.sim.stats().spent_token_reuses, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_ledger_locked_past_retry_for_ends_sync_with_an_error_naming_it() {
    let env = TestEnv::start(slow_meeting("a8a8a8a8a8a8a8a8a8a8a8a8a8a8a8a8")).await;
    let mut config = env.config();
    config.ledger.retry_for = Duration::from_secs(3);
    let first = config.clone();
    let sync = tokio::spawn(async move {
        let sync = commands::sync(&first, CancellationToken::new());
        bounded(sync).await
    });
    until("downloads under way", async || {
        env.sim.stats().bytes_served > 0
    })
    .await;
    let lock = ExclusiveLock::take(&env.ledger_path(), TEST_TIMEOUT);
    until("the ledger locked", async || lock.taken_at().is_some()).await;
    let error = sync
        .await
        .expect("sync task")
        .expect_err("a ledger that stays locked ends the sync");
    let message = error_chain(&*error);
    assert!(
        message.contains("ledger") && message.contains("locked"),
        "{message}"
    );
    lock.release();

    let outcome = env.sync(&config).await;
    assert_eq!(outcome.exit_code(), 0, "{outcome:?}");
    env.assert_archive_complete(&[]);
    assert_eq!(env.sim.stats().spent_token_reuses, 0);
}

/// Another program's trap: a deferred foreign-key violation inserted by
/// every update of a file's `attempts`, so that each put-back of a failed
/// download fails at COMMIT (claims still succeed).
const TRAP: &str = "
    CREATE TABLE trap (x TEXT REFERENCES meetings (conf_uuid) DEFERRABLE INITIALLY DEFERRED);
    CREATE TRIGGER trap_files AFTER UPDATE OF attempts ON files
    BEGIN INSERT INTO trap VALUES ('no such meeting'); END;";

#[tokio::test]
async fn a_ledger_whose_commit_fails_ends_sync_with_the_reason_and_a_later_sync_completes() {
    let env = TestEnv::start(broken_host("a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9", 2)).await;
    let mut config = env.config();
    config.ledger.retry_for = Duration::from_secs(2);
    drop(Ledger::open(&env.ledger_path(), false).expect("ledger created"));
    let other = rusqlite::Connection::open(env.ledger_path()).expect("second connection");
    other.execute_batch(TRAP).expect("trap set");

    let started = Instant::now();
    let first = bounded(commands::sync(&config, CancellationToken::new())).await;
    let took = started.elapsed();
    let error = first.expect_err("a ledger that refuses every put-back ends the sync");
    let message = error_chain(&*error);
    assert!(
        message.contains("ledger") && message.contains("FOREIGN KEY"),
        "{message}"
    );
    assert!(took < Duration::from_secs(30), "ended after {took:?}");
    assert!(env.sim.stats().download_faults_injected >= 1);
    assert!(
        file_rows(&env.ledger_path())
            .iter()
            .all(|r| r.attempts == 0 && r.state != "done"),
        "nothing the ledger refused was recorded"
    );

    env.sim.set_faults(Faults::default());
    other
        .execute_batch("DROP TRIGGER trap_files; DROP TABLE trap;")
        .expect("trap removed");
    let outcome = env.sync(&config).await;
    assert_eq!(outcome.exit_code(), 0, "{outcome:?}");
    env.assert_archive_complete(&[]);
    assert_eq!(env.sim.stats().spent_token_reuses, 0);
}
