//! Bodies of unannounced length: a download host that sends no
//! `Content-Length` (and `*` as a 206's total), and may end a first
//! transfer cleanly half way. Nothing on the wire tells such a truncation
//! from the end, so every such end is confirmed (a 416 probe, or two
//! agreeing transfers) before a file is archived; a file is archived
//! flagged `length_unconfirmed` only when nothing can confirm it.

use std::process::Output;

use meeting_archiver::config::Config;
use meeting_archiver::pipeline::Outcome;
use meeting_archiver::simulator::{Faults, Scenario, SimMeeting};
use serde_json::Value;
use tokio_util::sync::CancellationToken;

use crate::helpers::*;

/// Every file is 1 MB: a first transfer ended early holds 500,000 bytes.
const SIZE: usize = 1_000_000;

/// One meeting of three 1 MB files (Hd, Sd, Aux) on a download host with
/// these faults, honouring `Range` or not.
fn length_scenario(conf: &str, range_support: bool, faults: Faults) -> Scenario {
    let meeting = SimMeeting::standard(conf, "Lengths", 1, &["Hd", "Sd", "Aux"], SIZE);
    let mut scn = scenario(vec![meeting]);
    scn.range_support = range_support;
    scn.faults = faults;
    scn
}

/// No length announced; every file's first transfer ends cleanly half way
/// if `end_early`.
fn unannounced(end_early: bool) -> Faults {
    Faults {
        no_length: true,
        end_first_transfer_early: end_early,
        ..Faults::default()
    }
}

/// Download requests the host got for each simulated file, in order.
fn requests_per_file(env: &TestEnv) -> Vec<u64> {
    let by_path = env.sim.download_requests_by_path();
    env.meetings
        .iter()
        .flat_map(|m| &m.files)
        .map(|f| by_path.get(&f.path).copied().unwrap_or(0))
        .collect()
}

/// The `files` of the first meeting's `meeting.json`.
fn manifest_files(env: &TestEnv) -> Vec<Value> {
    let path = env
        .meeting_dir(&env.meetings[0].conf_uuid)
        .join("meeting.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let doc: Value = serde_json::from_str(&text).expect("the manifest is JSON");
    doc["files"].as_array().cloned().expect("a list of files")
}

/// Syncs and checks what every confirmed case shares: exit 0, every file
/// archived whole (1 MB, byte for byte: never the half a first transfer
/// ended at), nothing flagged in the ledger or the manifest, no spent token
/// presented again, and a second sync that downloads nothing. Returns the
/// download requests per file of the first sync.
async fn sync_archives_every_file_whole(env: &TestEnv) -> Vec<u64> {
    let config = env.config();
    let outcome = env.sync(&config).await;
    assert_eq!(outcome.exit_code(), 0, "{outcome:?}");
    env.assert_archive_complete(&[]);
    let files = file_count(&env.meetings);
    assert_eq!(outcome.status.files.done, files as i64);
    assert_eq!(
        outcome.status.bytes_archived,
        (files as usize * SIZE) as i64
    );
    assert_eq!(outcome.status.length_unconfirmed, 0, "{outcome:?}");
    for path in archived_media(&env.archive_dir()) {
        let len = std::fs::metadata(&path).expect("archived file").len();
        assert_eq!(len, SIZE as u64, "{}", path.display());
    }
    for file in manifest_files(env) {
        assert!(file.get("length_unconfirmed").is_none(), "{file}");
    }
    let stats = env.sim.stats();
    assert_eq!(stats.spent_token_reuses, 0, "{stats:?}");
    let per_file = requests_per_file(env);

    let again = env.sync(&config).await;
    assert_eq!(again.exit_code(), 0, "{again:?}");
    assert_eq!(again.status.length_unconfirmed, 0);
    assert_eq!(
        env.sim.stats().download_requests,
        stats.download_requests,
        "the second sync downloads nothing"
    );
    per_file
}

#[tokio::test]
async fn a_silent_truncation_is_resumed_with_range_and_its_end_confirmed_by_a_416() {
    let scn = length_scenario("1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e", true, unannounced(true));
    let env = TestEnv::start(scn).await;
    let per_file = sync_archives_every_file_whole(&env).await;
    // Half a body that ends cleanly; `Range: bytes=500000-` answered 206
    // with `bytes 500000-999999/*` (no total, so still unconfirmed); then
    // `Range: bytes=1000000-` answered 416: the end is confirmed.
    assert_eq!(per_file, [3, 3, 3]);
    let stats = env.sim.stats();
    assert_eq!(
        stats.download_faults_injected, 3,
        "every first transfer ended early"
    );
    assert_eq!(stats.ranged_requests, 3, "one 206 per file: {stats:?}");
    assert_eq!(stats.bytes_served, 3 * SIZE as u64, "no byte fetched twice");
}

#[tokio::test]
async fn a_silent_truncation_without_range_is_fetched_again_until_two_transfers_agree() {
    let scn = length_scenario("2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e", false, unannounced(true));
    let env = TestEnv::start(scn).await;
    let per_file = sync_archives_every_file_whole(&env).await;
    // Half a body; a whole one that differs from it (a new candidate); a
    // second whole one that agrees with the first whole one.
    assert_eq!(per_file, [3, 3, 3]);
    let stats = env.sim.stats();
    assert_eq!(stats.download_faults_injected, 3);
    assert_eq!(stats.ranged_requests, 0);
    assert_eq!(stats.bytes_served, 3 * (SIZE / 2 + 2 * SIZE) as u64);
}

#[tokio::test]
async fn an_unannounced_length_costs_one_probe_or_one_agreeing_transfer() {
    for (conf, range_support) in [
        ("3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e", true),
        ("4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e", false),
    ] {
        let scn = length_scenario(conf, range_support, unannounced(false));
        let env = TestEnv::start(scn).await;
        let per_file = sync_archives_every_file_whole(&env).await;
        // The body, then a 416 to `Range: bytes=1000000-` (Range on) or
        // a second whole body equal to the first (Range off).
        assert_eq!(per_file, [2, 2, 2], "range support {range_support}");
        let stats = env.sim.stats();
        let bodies = if range_support { 1 } else { 2 };
        assert_eq!(stats.bytes_served, bodies * 3 * SIZE as u64, "{stats:?}");
        assert_eq!(stats.download_faults_injected, 0);
    }
}

#[tokio::test]
async fn an_announced_length_needs_no_probe() {
    let scn = length_scenario("5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e", true, Faults::default());
    let env = TestEnv::start(scn).await;
    let per_file = sync_archives_every_file_whole(&env).await;
    assert_eq!(per_file, [1, 1, 1], "exactly one request per file");
    let stats = env.sim.stats();
    assert_eq!(
        (stats.ranged_requests, stats.bytes_served),
        (0, 3 * SIZE as u64)
    );
}

/// Runs the binary's `status --json` on `config` and parses its answer.
async fn status_json(env: &TestEnv, config: &Config) -> Value {
    let path = env.write_config(config);
    let out: Output = tokio::task::spawn_blocking(move || {
        assert_cmd::Command::cargo_bin("meeting-archiver")
            .expect("binary built")
            .arg("--config")
            .arg(&path)
            .args(["status", "--json"])
            .env_remove("RUST_LOG")
            .env_remove("MEETING_ARCHIVER_APP_KEY")
            .timeout(TEST_TIMEOUT)
            .output()
            .expect("binary runs")
    })
    .await
    .expect("join");
    assert_eq!(
        out.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    serde_json::from_slice(&out.stdout).expect("status --json is JSON")
}

#[tokio::test]
async fn a_length_nothing_can_confirm_is_archived_flagged_as_a_last_resort() {
    let meeting = SimMeeting::standard(
        "6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e",
        "Probe fails",
        1,
        &["Hd"],
        SIZE,
    );
    let mut scn = scenario(vec![meeting]);
    scn.faults = unannounced(false);
    let env = TestEnv::start(scn).await;
    let mut config = env.config();
    config.download.max_attempts = 2;
    let engine = env.engine(&config);
    poll(&engine, &config).await;
    let first = bounded(engine.process_next(&CancellationToken::new())).await;
    assert_eq!(
        first.expect("a step"),
        Outcome::Retry,
        "the body is only a candidate"
    );
    assert_eq!(
        env.archived(),
        0,
        "not archived before its end is confirmed"
    );

    // From now on every probe fails: nothing can confirm where the body ended.
    env.sim.set_faults(Faults {
        download_500: 1.0,
        ..unannounced(false)
    });
    until("the candidate archived as a last resort", async || {
        drain(&engine).await;
        env.archived() == 1
    })
    .await;
    drop(engine);
    env.assert_archive_complete(&[]);
    // The body, then one 500 per attempt.
    assert_eq!(
        requests_per_file(&env),
        [1 + u64::from(config.download.max_attempts)]
    );
    assert_eq!(env.sim.stats().spent_token_reuses, 0);

    let manifest = manifest_files(&env);
    assert_eq!(manifest.len(), 1);
    assert_eq!(
        manifest[0]["length_unconfirmed"],
        Value::Bool(true),
        "{manifest:?}"
    );
    assert_eq!(manifest[0]["size"], SIZE);

    let requests = env.sim.stats().download_requests;
    let again = env.sync(&config).await;
    assert_eq!(again.exit_code(), 0, "{again:?}");
    assert_eq!(again.status.files.done, 1);
    assert_eq!(again.status.length_unconfirmed, 1);
    assert_eq!(
        env.sim.stats().download_requests,
        requests,
        "nothing downloaded again"
    );
    let doc = status_json(&env, &config).await;
    assert_eq!(doc["length_unconfirmed"], 1, "{doc}");
    assert_eq!(doc["files"]["done"], 1, "{doc}");
}

#[tokio::test]
async fn a_candidate_the_server_shows_to_be_short_is_not_archived_as_a_last_resort() {
    let meeting = SimMeeting::standard(
        "7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e",
        "Refuted",
        1,
        &["Hd"],
        SIZE,
    );
    let mut scn = scenario(vec![meeting]);
    scn.faults = unannounced(true);
    let env = TestEnv::start(scn).await;
    let mut config = env.config();
    config.download.max_attempts = 1;
    let engine = env.engine(&config);
    poll(&engine, &config).await;
    let cancel = CancellationToken::new();
    let first = bounded(engine.process_next(&cancel)).await;
    assert_eq!(
        first.expect("a step"),
        Outcome::Retry,
        "half a body, held as a candidate"
    );

    // The resumed transfer announces the file's length again and sends
    // bytes past the candidate before it breaks: the candidate is shown to
    // be short, so it is not archived, not even flagged, when the last
    // attempt is used up.
    env.sim.set_faults(Faults {
        download_wrong_length: 1.0,
        ..Faults::default()
    });
    let second = bounded(engine.process_next(&cancel)).await;
    assert_eq!(second.expect("a step"), Outcome::Failed);
    assert_eq!(env.archived(), 0, "no truncated file in the archive");
    drop(engine);

    env.sim.set_faults(Faults::default());
    meeting_archiver::commands::retry(&config)
        .await
        .expect("retry");
    let outcome = env.sync(&config).await;
    assert_eq!(outcome.exit_code(), 0, "{outcome:?}");
    assert_eq!(outcome.status.length_unconfirmed, 0);
    env.assert_archive_complete(&[]);
    assert_eq!(env.sim.stats().spent_token_reuses, 0);
}
