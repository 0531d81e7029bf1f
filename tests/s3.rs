//! Archiving to an S3-compatible bucket: a real S3 implementation
//! (`moto_server`, started per test) behind the archive seam, with the
//! scenarios of the local archive: split parts, cut transfers and expiring
//! tokens, a store failing for a while, wrong credentials, a SIGKILL during
//! an upload. Every object is read back and compared byte for byte.

use meeting_archiver::commands;
use meeting_archiver::simulator::{Faults, SimMeeting};

use crate::helpers::*;

const MIB: usize = 1 << 20;

/// One recording large enough for a multipart upload (three parts).
fn long_recording(conf: &str, size: usize) -> SimMeeting {
    SimMeeting::standard(conf, "Long recording", 1, &["Hd"], size)
}

#[tokio::test]
async fn three_meetings_and_a_multipart_file_land_in_the_bucket_byte_for_byte() {
    let Some(moto) = Moto::start().await else {
        return;
    };
    let mut meetings = three_meetings();
    meetings.push(long_recording(
        "f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1f1",
        20 * MIB + 12345,
    ));
    let env = TestEnv::start(scenario(meetings)).await;
    let config = s3_config(&env, moto.addr);
    let outcome = env.sync(&config).await;
    assert_eq!(outcome.exit_code(), 0, "{outcome:?}");
    assert_bucket_complete(&env, &moto, &env.meetings).await;
    let downloads = env.sim.stats().download_requests;
    assert_eq!(
        downloads,
        file_count(&env.meetings),
        "each file fetched once"
    );
    assert_eq!(commands::verify(&config, false).await.expect("verify"), 0);
    assert_eq!(
        commands::verify_with(&config, false, true)
            .await
            .expect("verify --deep"),
        0
    );
    let again = env.sync(&config).await;
    assert_eq!(again.exit_code(), 0, "{again:?}");
    assert_eq!(
        env.sim.stats().download_requests,
        downloads,
        "nothing twice"
    );
}

#[tokio::test]
async fn cut_transfers_and_expiring_tokens_still_fill_the_bucket() {
    let Some(moto) = Moto::start().await else {
        return;
    };
    let meeting = SimMeeting::standard(
        "abababababababababababababababab",
        "Cut and slow",
        3,
        &["Hd", "Aux"],
        160 * 1024,
    );
    let mut scn = scenario(vec![meeting]);
    scn.download_token_ttl = std::time::Duration::from_secs(2);
    scn.faults = Faults {
        cut_first_transfer: true,
        slow_bytes_per_sec: Some(96 * 1024),
        ..Faults::default()
    };
    let env = TestEnv::start(scn).await;
    let mut config = s3_config(&env, moto.addr);
    config.download.workers = 1;
    let outcome = env.sync(&config).await;
    assert_eq!(outcome.exit_code(), 0, "{outcome:?}");
    assert_bucket_complete(&env, &moto, &env.meetings).await;
    let stats = env.sim.stats();
    assert!(
        stats.ranged_requests >= 1,
        "cut transfers resumed: {stats:?}"
    );
    assert!(
        stats.expired_token_uses >= 1,
        "tokens did expire: {stats:?}"
    );
    assert_eq!(stats.spent_token_reuses, 0);
}

#[tokio::test]
async fn a_store_answering_500_and_503_for_a_while_gets_every_file_in_the_end() {
    let Some(moto) = Moto::start().await else {
        return;
    };
    let proxy = FaultProxy::start(moto.addr).await;
    let mut meetings = three_meetings();
    meetings.push(long_recording("f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2f2", 9 * MIB));
    let env = TestEnv::start(scenario(meetings)).await;
    let config = s3_config(&env, proxy.addr);
    proxy.fail_next(6);
    let outcome = env.sync(&config).await;
    assert_eq!(outcome.exit_code(), 0, "{outcome:?}");
    assert_eq!(proxy.failed(), 6, "the faults were served");
    assert_bucket_complete(&env, &moto, &env.meetings).await;
}

#[tokio::test]
async fn wrong_credentials_fail_fast_with_a_clear_error_and_no_download() {
    let Some(moto) = Moto::start_with(&[("INITIAL_NO_AUTH_ACTION_COUNT", "0")]).await else {
        return;
    };
    let env = TestEnv::start(scenario(three_meetings())).await;
    let config = env.write_config(&s3_config(&env, moto.addr));
    let output = assert_cmd::Command::cargo_bin("meeting-archiver")
        .expect("binary")
        .args(["--config", &config.to_string_lossy(), "sync"])
        .env_remove("RUST_LOG")
        .timeout(TEST_TIMEOUT)
        .output()
        .expect("sync runs");
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert_eq!(output.status.code(), Some(2), "a setup problem: {stderr}");
    assert!(stderr.contains("refused the credentials"), "{stderr}");
    assert!(
        stderr.contains("InvalidAccessKeyId"),
        "the store's answer: {stderr}"
    );
    assert!(!stderr.contains("test-secret-key-do-not-print"), "{stderr}");
    let stats = env.sim.stats();
    assert_eq!(
        stats.download_requests, 0,
        "no token spent on an unstorable file"
    );
}

#[tokio::test]
async fn verify_checks_objects_by_head_and_deep_reads_them_back() {
    let Some(moto) = Moto::start().await else {
        return;
    };
    let env = TestEnv::start(scenario(three_meetings())).await;
    let config = s3_config(&env, moto.addr);
    assert_eq!(env.sync(&config).await.exit_code(), 0);
    let (tampered, gone) = (
        object_rel(&env, &env.meetings[0], 0),
        object_rel(&env, &env.meetings[1], 0),
    );
    // Same size, same recorded SHA-256, other bytes: only --deep sees it.
    let mut bytes = moto.object(&tampered).await.expect("object");
    bytes[0] ^= 0xff;
    let sha = moto.metadata(&tampered, "sha256").await;
    moto.overwrite(&tampered, bytes, sha.as_deref()).await;
    assert_eq!(commands::verify(&config, false).await.expect("verify"), 0);
    assert_eq!(
        commands::verify_with(&config, false, true)
            .await
            .expect("deep"),
        1
    );
    moto.delete(&gone).await;
    assert_eq!(commands::verify(&config, false).await.expect("verify"), 1);
    assert_eq!(
        commands::verify_with(&config, true, true)
            .await
            .expect("repair"),
        1
    );
    assert_eq!(env.sync(&config).await.exit_code(), 0);
    assert_bucket_complete(&env, &moto, &env.meetings).await;
    assert_eq!(
        commands::verify_with(&config, false, true)
            .await
            .expect("deep"),
        0
    );
}

/// Uploads refused with `status` (403: a revoked key; 503: an outage) for
/// longer than `max_attempts` retries: nothing fails, nothing is
/// downloaded twice, every verified copy stays staged; once the store
/// takes uploads again every object lands.
async fn uploads_refused_for_a_while(status: u16) -> Option<(Moto, TestEnv, FaultProxy)> {
    let moto = Moto::start().await?;
    let proxy = FaultProxy::start(moto.addr).await;
    let mut meetings = three_meetings();
    meetings.push(long_recording("f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3f3", 9 * MIB));
    let env = TestEnv::start(scenario(meetings)).await;
    let files: usize = env.meetings.iter().map(|m| m.files.len()).sum();
    let mut config = s3_config(&env, proxy.addr);
    // One counted failure would fail a file for good; the store's
    // backoff soon outgrows --max-wait, which ends the run.
    config.download.max_attempts = 1;
    config.download.retry_max = std::time::Duration::from_secs(2);
    proxy.refuse_uploads(status);
    let options = commands::SyncOptions {
        max_wait: std::time::Duration::from_secs(1),
    };
    let cancel = tokio_util::sync::CancellationToken::new();
    let outcome = bounded(commands::sync_with_options(&config, options, cancel))
        .await
        .expect("sync runs");
    assert_eq!(outcome.exit_code(), 1, "files wait for the store");
    assert!(
        proxy.refused() >= files,
        "every file was refused ({} refusals)",
        proxy.refused()
    );
    let status_now = env.ledger_status();
    assert_eq!(status_now.files.failed, 0, "a store fault fails no file");
    assert_eq!(status_now.files.done, 0);
    assert_eq!(
        partial_files(&env.archive_dir()).len(),
        files,
        "every verified copy is kept"
    );
    let refused = status_now
        .conditions
        .iter()
        .any(|c| c.name == "store_refused" && c.detail.contains("AccessDenied"));
    assert_eq!(refused, status == 403, "{:?}", status_now.conditions);
    assert!(moto.keys().await.is_empty());
    assert_eq!(env.sim.stats().download_requests, files as u64);
    proxy.refuse_uploads(0);
    Some((moto, env, proxy))
}

#[tokio::test]
async fn a_store_refusing_uploads_fails_no_file_and_keeps_every_staged_copy() {
    let Some((moto, env, proxy)) = uploads_refused_for_a_while(403).await else {
        return;
    };
    let config = s3_config(&env, proxy.addr);
    let downloads = env.sim.stats().download_requests;
    assert_eq!(env.sync(&config).await.exit_code(), 0);
    assert_eq!(
        env.sim.stats().download_requests,
        downloads,
        "no second download"
    );
    assert_bucket_complete(&env, &moto, &env.meetings).await;
    assert!(partial_files(&env.archive_dir()).is_empty());
    assert!(
        env.ledger_status().conditions.is_empty(),
        "the refusal is over"
    );
}

#[tokio::test]
async fn a_staged_copy_changed_on_disk_during_an_outage_is_downloaded_again() {
    // 503 as object_store retries it for minutes: 403 keeps the test short.
    let Some((moto, env, proxy)) = uploads_refused_for_a_while(403).await else {
        return;
    };
    let config = s3_config(&env, proxy.addr);
    let downloads = env.sim.stats().download_requests;
    let partials = partial_files(&env.archive_dir());
    let mut bytes = std::fs::read(&partials[0]).expect("staged copy");
    bytes[0] ^= 0xff;
    std::fs::write(&partials[0], bytes).expect("corrupt it");
    assert_eq!(env.sync(&config).await.exit_code(), 0);
    assert_eq!(
        env.sim.stats().download_requests,
        downloads + 1,
        "only the changed copy is downloaded again"
    );
    assert_bucket_complete(&env, &moto, &env.meetings).await;
    assert!(partial_files(&env.archive_dir()).is_empty());
}

#[tokio::test]
async fn an_uploaded_file_keeps_its_local_copy_until_the_ledger_says_done() {
    let Some(moto) = Moto::start().await else {
        return;
    };
    let env = TestEnv::start(scenario(three_meetings())).await;
    let files: usize = env.meetings.iter().map(|m| m.files.len()).sum();
    let mut config = s3_config(&env, moto.addr);
    // Retried (uploaded once, then found by HEAD) until --max-wait ends
    // the run, never failed for good.
    config.download.max_attempts = 1000;
    drop(meeting_archiver::ledger::Ledger::open(&env.ledger_path(), false).expect("ledger"));
    let conn = rusqlite::Connection::open(env.ledger_path()).expect("ledger opens");
    conn.execute_batch(
        "CREATE TRIGGER refuse_done BEFORE UPDATE OF state ON files WHEN NEW.state = 'done'
         BEGIN SELECT RAISE(ABORT, 'injected: the ledger refuses done'); END;",
    )
    .expect("trigger");
    let options = commands::SyncOptions {
        max_wait: std::time::Duration::from_secs(1),
    };
    let cancel = tokio_util::sync::CancellationToken::new();
    let first = bounded(commands::sync_with_options(&config, options, cancel)).await;
    assert!(
        first.as_ref().map_or(true, |o| o.exit_code() != 0),
        "the run did not end clean: {first:?}"
    );
    assert_eq!(env.ledger_status().files.done, 0);
    let rel = object_rel(&env, &env.meetings[0], 0);
    assert!(moto.object(&rel).await.is_some(), "uploads completed");
    assert_eq!(
        partial_files(&env.archive_dir()).len(),
        files,
        "every local copy is kept while the ledger does not say done"
    );
    conn.execute_batch("DROP TRIGGER refuse_done")
        .expect("drop trigger");
    drop(conn);
    assert_eq!(env.sync(&config).await.exit_code(), 0);
    assert_eq!(env.sim.stats().download_requests, files as u64);
    assert_bucket_complete(&env, &moto, &env.meetings).await;
}
