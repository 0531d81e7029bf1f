//! Stopping and starting again: interrupted transfers resume, failed files
//! are revived by `retry`, corrupt archive files are found by `verify`.

use std::time::Duration;

use meeting_archiver::commands;
use meeting_archiver::config::Config;
use meeting_archiver::simulator::{Faults, SimMeeting};
use tokio_util::sync::CancellationToken;

use crate::helpers::*;

#[tokio::test]
async fn a_cancelled_sync_leaves_no_partial_file_in_the_archive_and_the_next_one_resumes() {
    let mut scn = scenario(vec![SimMeeting::standard(
        "f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0f0",
        "Big",
        1,
        &["Hd"],
        512 * 1024,
    )]);
    scn.faults = Faults {
        slow_bytes_per_sec: Some(256 * 1024),
        ..Faults::default()
    };
    let env = TestEnv::start(scn).await;
    let config = env.config();
    let cancel = CancellationToken::new();
    let stopper = cancel.clone();
    let (outcome, ()) = tokio::join!(commands::sync(&config, cancel), async {
        until("a transfer under way", async || {
            env.sim.stats().bytes_served >= 100 * 1024
        })
        .await;
        stopper.cancel();
    });
    let outcome = outcome.expect("sync");
    assert!(outcome.interrupted);
    assert_eq!(outcome.exit_code(), 1);
    assert!(
        archived_media(&env.archive_dir()).is_empty(),
        "no partial file under a final name"
    );
    let partials = partial_files(&env.archive_dir());
    assert_eq!(partials.len(), 1, "partial data kept for resuming");

    env.sim.set_faults(Faults::default());
    let second = env.sync(&config).await;
    assert_eq!(second.exit_code(), 0);
    env.assert_archive_complete(&[]);
    assert!(
        env.sim.stats().ranged_requests >= 1,
        "the second sync resumed"
    );
}

#[tokio::test]
async fn files_failing_for_good_exit_1_and_retry_revives_them() {
    let env = TestEnv::start(broken_host("f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1", 2)).await;
    let mut config = env.config();
    config.download.max_attempts = 2;
    let first = env.sync(&config).await;
    assert_eq!(first.exit_code(), 1);
    assert_eq!(first.status.files.failed, 2);
    assert!(
        first
            .status
            .last_errors
            .iter()
            .all(|e| e.error.contains("500")),
        "{first:?}"
    );
    assert_eq!(
        env.sim.stats().download_requests,
        4,
        "max_attempts per file"
    );

    env.sim.set_faults(Faults::default());
    assert_eq!(commands::retry(&config).await.expect("retry"), 0);
    let second = env.sync(&config).await;
    assert_eq!(second.exit_code(), 0, "{second:?}");
    env.assert_archive_complete(&[]);
}

#[tokio::test]
async fn verify_finds_corrupt_and_missing_files_and_repair_requeues_them() {
    let env = TestEnv::start(scenario(vec![SimMeeting::standard(
        "f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2",
        "Verify",
        2,
        &["Hd"],
        4096,
    )]))
    .await;
    let config = env.config();
    assert_eq!(env.sync(&config).await.exit_code(), 0);
    assert_eq!(commands::verify(&config, false).await.expect("verify"), 0);
    let media = archived_media(&env.archive_dir());
    std::fs::write(&media[0], b"tampered").expect("tamper");
    std::fs::remove_file(&media[1]).expect("remove");
    assert_eq!(commands::verify(&config, false).await.expect("verify"), 1);
    assert_eq!(commands::verify(&config, true).await.expect("repair"), 1);
    let again = env.sync(&config).await;
    assert_eq!(again.exit_code(), 0);
    env.assert_archive_complete(&[]);
    assert_eq!(commands::verify(&config, false).await.expect("verify"), 0);
}

/// Two files failed for good, revived by `retry`, with the API now down so
/// that the workers' token refresh fails (after one quick API retry: how
/// long the client keeps trying is not what these tests are about).
async fn revived_while_the_api_is_down(workers: usize) -> (TestEnv, Config) {
    let env = TestEnv::start(broken_host("e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1", 2)).await;
    let mut config = env.config();
    config.download.max_attempts = 1;
    config.download.workers = workers;
    config.cloud.max_retries = 1;
    let engine = env.engine(&config);
    poll(&engine, &config).await;
    assert_eq!(
        drain(&engine).await,
        Drained {
            failed: 2,
            ..Drained::default()
        }
    );
    drop(engine);
    commands::retry(&config).await.expect("retry");
    env.sim.set_faults(Faults {
        api_500: 1.0,
        ..Faults::default()
    });
    (env, config)
}

#[tokio::test]
async fn a_failed_token_refresh_puts_the_file_back_and_sync_ends() {
    for workers in [1, 4] {
        let (env, config) = revived_while_the_api_is_down(workers).await;
        let outcome = env.sync(&config).await;
        assert_eq!(outcome.exit_code(), 1);
        let files = &outcome.status.files;
        assert_eq!((files.downloading, files.failed), (0, 2), "{files:?}");
        assert!(
            outcome
                .status
                .last_errors
                .iter()
                .all(|e| e.error.contains("fresh download token")),
            "{:?}",
            outcome.status.last_errors
        );
    }
}

#[tokio::test]
async fn a_stop_request_interrupts_a_poll_waiting_out_api_backoffs() {
    let mut scn = scenario(vec![SimMeeting::standard(
        "e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3",
        "Down",
        1,
        &["Hd"],
        1000,
    )]);
    scn.faults = Faults {
        api_500: 1.0,
        ..Faults::default()
    };
    let env = TestEnv::start(scn).await;
    let mut config = env.config();
    config.cloud.retry_base = Duration::from_secs(2);
    config.cloud.retry_max = Duration::from_secs(30);
    let cancel = CancellationToken::new();
    let stopper = cancel.clone();
    let started = std::time::Instant::now();
    let (outcome, ()) = tokio::join!(commands::sync(&config, cancel), async {
        until("the poll waiting out a backoff", async || {
            env.sim.stats().api_faults_injected >= 1
        })
        .await;
        stopper.cancel();
    });
    assert!(
        started.elapsed() < Duration::from_secs(3),
        "took {:?}",
        started.elapsed()
    );
    let outcome = outcome.expect("sync");
    assert!(outcome.interrupted);
    assert_eq!(outcome.exit_code(), 1);
}
