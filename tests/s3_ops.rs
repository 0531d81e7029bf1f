//! Operating an S3 target: `check-config --online` on the bucket,
//! retention verifying objects before deleting from the cloud, a restart
//! after an upload completed but before the ledger knew, upload metrics.

use std::process::Output;
use std::time::Duration;

use meeting_archiver::ledger::{Ledger, Staged};
use meeting_archiver::simulator::SimMeeting;

use crate::helpers::*;

/// The binary with `args`, off the test's runtime (the simulator runs on it).
async fn binary(args: Vec<String>) -> Output {
    tokio::task::spawn_blocking(move || {
        assert_cmd::Command::cargo_bin("meeting-archiver")
            .expect("binary")
            .args(args)
            .env_remove("RUST_LOG")
            .timeout(TEST_TIMEOUT)
            .output()
            .expect("binary runs")
    })
    .await
    .expect("blocking task")
}

fn check_online(config: &std::path::Path) -> Vec<String> {
    [
        "--config",
        &config.to_string_lossy(),
        "check-config",
        "--online",
    ]
    .map(str::to_owned)
    .to_vec()
}

#[tokio::test]
async fn check_config_online_puts_heads_and_deletes_a_probe_and_finds_the_bucket_private() {
    let Some(moto) = Moto::start().await else {
        return;
    };
    let proxy = FaultProxy::start(moto.addr).await;
    let env = TestEnv::start(scenario(three_meetings())).await;
    let config = env.write_config(&s3_config(&env, proxy.addr));
    let out = binary(check_online(&config)).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{stdout}");
    for line in [
        "ok      bucket s3://meeting-recordings/huawei/: exists",
        "ok      probe object (put, head)",
        "ok      no public access: an unsigned request for the probe object was refused",
        "ok      probe object (delete)",
        "ok      multipart upload: started, one 5 MiB part sent, aborted",
        "archive.s3 s3://meeting-recordings/huawei/: client configured",
    ] {
        assert!(stdout.contains(line), "missing {line:?} in\n{stdout}");
    }
    assert!(!stdout.contains("test-secret-key-do-not-print"));
    assert!(moto.keys().await.is_empty(), "the probe is gone");
    assert_eq!(
        moto.unfinished_uploads().await,
        0,
        "the multipart probe is aborted"
    );

    proxy.pretend_public();
    let out = binary(check_online(&config)).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains("FAILED  no public access: anyone can read"),
        "{stdout}"
    );
    assert!(
        moto.keys().await.is_empty(),
        "the probe is deleted all the same"
    );
}

#[tokio::test]
async fn check_config_online_names_refused_credentials_without_the_secret() {
    let Some(moto) = Moto::start_with(&[("INITIAL_NO_AUTH_ACTION_COUNT", "0")]).await else {
        return;
    };
    let env = TestEnv::start(scenario(three_meetings())).await;
    let config = env.write_config(&s3_config(&env, moto.addr));
    let out = binary(check_online(&config)).await;
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert_eq!(out.status.code(), Some(1), "{stdout}");
    assert!(
        stdout.contains(
            "FAILED  bucket s3://meeting-recordings/huawei/: the bucket refused the credentials"
        ),
        "{stdout}"
    );
    assert!(stdout.contains("InvalidAccessKeyId"), "{stdout}");
    assert!(!stdout.contains("test-secret-key-do-not-print"), "{stdout}");
    assert!(
        stdout.contains("ok      authentication"),
        "the cloud's steps still run: {stdout}"
    );
}

#[tokio::test]
async fn retention_deletes_from_the_cloud_only_what_the_bucket_provably_holds() {
    let Some(moto) = Moto::start().await else {
        return;
    };
    let env = TestEnv::start(scenario(three_meetings())).await;
    let mut config = s3_config(&env, moto.addr);
    assert_eq!(env.sync(&config).await.exit_code(), 0);
    let rel = |i: usize| object_rel(&env, &env.meetings[i], 0);
    moto.delete(&rel(0)).await;
    moto.overwrite(&rel(1), b"shorter".to_vec(), None).await;
    config.retention.delete_from_cloud = true;
    config.retention.delete_after = Duration::ZERO;
    let engine = env.engine(&config);
    let report = engine.retention(&config.retention).await;
    drop(engine);
    assert_eq!(
        report.deleted,
        vec![env.meetings[2].conf_uuid.clone()],
        "{report:?}"
    );
    assert_eq!(env.sim.stats().meetings_deleted, 1);
    let meetings = Ledger::open(&config.ledger.path, false)
        .expect("ledger")
        .meetings()
        .expect("meetings");
    let hold = |i: usize| {
        let conf = &env.meetings[i].conf_uuid;
        let found = meetings
            .iter()
            .find(|m| &m.conf_uuid == conf)
            .expect("meeting");
        found.retention_hold.clone().unwrap_or_default()
    };
    assert!(hold(0).contains("missing"), "{}", hold(0));
    assert!(
        hold(1).contains("differs") || hold(1).contains("missing"),
        "{}",
        hold(1)
    );
}

#[tokio::test]
async fn an_upload_that_completed_before_a_crash_is_marked_done_without_sending_it_again() {
    let Some(moto) = Moto::start().await else {
        return;
    };
    let proxy = FaultProxy::start(moto.addr).await;
    let meeting = SimMeeting::standard(
        "c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5c5",
        "Done twice?",
        1,
        &["Hd"],
        300_000,
    );
    let env = TestEnv::start(scenario(vec![meeting])).await;
    let config = s3_config(&env, proxy.addr);
    assert_eq!(env.sync(&config).await.exit_code(), 0);
    // The state a crash leaves between the completed upload and the
    // ledger's `done`: the file staged, claimed, its partial file gone.
    {
        let mut ledger = Ledger::open(&config.ledger.path, false).expect("ledger");
        let done = ledger.done_files().expect("done files").remove(0);
        let now = meeting_archiver::clock::Millis::now();
        ledger
            .requeue_done(done.id, "test: crash before done", now)
            .expect("requeue");
        let claimed = ledger.claim_next(now).expect("claim").expect("due");
        let staged = Staged {
            size: done.size,
            sha256: done.sha256.clone(),
            length_confirmed: true,
        };
        ledger.stage(claimed.id, &staged).expect("stage");
    }
    let (downloads, sent) = (env.sim.stats().download_requests, proxy.forwarded());
    let outcome = env.sync(&config).await;
    assert_eq!(outcome.exit_code(), 0, "{outcome:?}");
    assert_eq!(outcome.status.files.done, 1);
    assert_eq!(
        env.sim.stats().download_requests,
        downloads,
        "not downloaded again"
    );
    assert!(proxy.forwarded() - sent < 100_000, "not uploaded again");
    assert_bucket_complete(&env, &moto, &env.meetings).await;
}

#[tokio::test]
async fn uploads_are_counted_in_the_metrics() {
    let Some(moto) = Moto::start().await else {
        return;
    };
    let env = TestEnv::start(scenario(three_meetings())).await;
    let config = s3_config(&env, moto.addr);
    let engine = env.engine(&config);
    engine.check_target().await.expect("bucket reachable");
    poll(&engine, &config).await;
    let total = file_count(&env.meetings) as usize;
    assert_eq!(drain(&engine).await, Drained::done(total));
    let bytes: usize = env
        .meetings
        .iter()
        .flat_map(|m| &m.files)
        .map(|f| f.size)
        .sum();
    let text = engine.metrics().render(&Default::default(), 0);
    for line in [
        format!("meeting_archiver_uploads_total{{outcome=\"done\"}} {total}"),
        format!("meeting_archiver_upload_bytes_total {bytes}"),
        format!("meeting_archiver_upload_duration_seconds_count {total}"),
    ] {
        assert!(text.contains(&line), "missing {line:?} in\n{text}");
    }
}

#[tokio::test]
async fn a_sync_to_the_bucket_at_trace_level_logs_no_secret() {
    let Some(moto) = Moto::start().await else {
        return;
    };
    let env = TestEnv::start(scenario(three_meetings())).await;
    let config = env.write_config(&s3_config(&env, moto.addr));
    let args = ["--config", &config.to_string_lossy(), "sync"].map(str::to_owned);
    let out = tokio::task::spawn_blocking(move || {
        assert_cmd::Command::cargo_bin("meeting-archiver")
            .expect("binary")
            .args(args)
            .env("RUST_LOG", "trace")
            .timeout(TEST_TIMEOUT)
            .output()
            .expect("binary runs")
    })
    .await
    .expect("blocking task");
    let stderr = String::from_utf8_lossy(&out.stderr);
    let tail: Vec<&str> = stderr.lines().rev().take(40).collect();
    assert_eq!(out.status.code(), Some(0), "{tail:#?}");
    assert!(stderr.contains("archived"), "trace output was captured");
    assert!(
        !stderr.contains("test-secret-key-do-not-print"),
        "the S3 secret key leaked"
    );
    assert_bucket_complete(&env, &moto, &env.meetings).await;
}

#[tokio::test]
async fn verify_repair_leaves_files_it_could_not_check_alone() {
    let Some(moto) = Moto::start().await else {
        return;
    };
    let proxy = FaultProxy::start(moto.addr).await;
    let env = TestEnv::start(scenario(three_meetings())).await;
    let config = s3_config(&env, proxy.addr);
    assert_eq!(env.sync(&config).await.exit_code(), 0);
    let done = env.ledger_status().files.done;
    proxy.refuse_all(403);
    let exit = meeting_archiver::commands::verify(&config, true)
        .await
        .expect("verify");
    assert_eq!(exit, 1, "nothing could be checked");
    assert_eq!(
        env.ledger_status().files.done,
        done,
        "a refused HEAD queues nothing again"
    );
    proxy.refuse_all(0);
    let gone = object_rel(&env, &env.meetings[0], 0);
    moto.delete(&gone).await;
    let exit = meeting_archiver::commands::verify(&config, true)
        .await
        .expect("verify");
    assert_eq!(exit, 1);
    assert_eq!(
        env.ledger_status().files.done,
        done - 1,
        "only the missing one"
    );
}
