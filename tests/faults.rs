//! The pipeline under the faults of the real world: cut transfers, expired
//! tokens, expired access tokens, flaky APIs and lying download hosts.

use std::sync::Arc;
use std::time::Duration;

use meeting_archiver::cloud::CloudClient;
use meeting_archiver::pipeline::cloud_client;
use meeting_archiver::simulator::{Faults, SimMeeting};

use crate::helpers::*;

/// One meeting served slowly, with short-lived download tokens.
fn slow_scenario(
    meeting: SimMeeting,
    token_ttl: Duration,
    bytes_per_sec: u64,
) -> meeting_archiver::simulator::Scenario {
    let mut scn = scenario(vec![meeting]);
    scn.download_token_ttl = token_ttl;
    scn.faults = Faults {
        slow_bytes_per_sec: Some(bytes_per_sec),
        ..Faults::default()
    };
    scn
}

#[tokio::test]
async fn every_first_transfer_cut_half_way_still_archives_all_and_never_reuses_a_token() {
    let mut scn = scenario(three_meetings());
    scn.faults = Faults {
        cut_first_transfer: true,
        ..Faults::default()
    };
    let env = TestEnv::start(scn).await;
    let outcome = env.sync(&env.config()).await;
    assert_eq!(outcome.exit_code(), 0, "{outcome:?}");
    env.assert_archive_complete(&[]);
    let stats = env.sim.stats();
    assert_eq!(
        stats.spent_token_reuses, 0,
        "no spent token presented again"
    );
    assert!(
        stats.ranged_requests >= file_count(&env.meetings),
        "cut transfers resumed with Range: {stats:?}"
    );
}

#[tokio::test]
async fn cut_transfers_restart_when_the_server_ignores_range() {
    let mut scn = scenario(vec![SimMeeting::standard(
        "abababababababababababababababab",
        "No range",
        2,
        &["Hd"],
        300_000,
    )]);
    scn.range_support = false;
    scn.faults = Faults {
        cut_first_transfer: true,
        ..Faults::default()
    };
    let env = TestEnv::start(scn).await;
    let outcome = env.sync(&env.config()).await;
    assert_eq!(outcome.exit_code(), 0, "{outcome:?}");
    env.assert_archive_complete(&[]);
    assert_eq!(env.sim.stats().ranged_requests, 0);
}

#[tokio::test]
async fn tokens_expiring_in_two_seconds_with_one_slow_worker() {
    let meeting = SimMeeting::standard(
        "cdcdcdcdcdcdcdcdcdcdcdcdcdcdcdcd",
        "Slow",
        3,
        &["Hd"],
        160 * 1024,
    );
    let env = TestEnv::start(slow_scenario(meeting, Duration::from_secs(2), 64 * 1024)).await;
    let mut config = env.config();
    config.download.workers = 1;
    let outcome = env.sync(&config).await;
    assert_eq!(outcome.exit_code(), 0, "{outcome:?}");
    env.assert_archive_complete(&[]);
    let stats = env.sim.stats();
    assert!(
        stats.expired_token_uses >= 1,
        "the scenario did expire tokens: {stats:?}"
    );
    assert_eq!(stats.spent_token_reuses, 0);
}

#[tokio::test]
async fn an_expired_access_token_is_replaced_once_and_the_call_succeeds() {
    let env = TestEnv::start(scenario(three_meetings())).await;
    let client: Arc<CloudClient> = Arc::new(cloud_client(&env.config()).expect("client"));
    let conf = &env.meetings[0].conf_uuid;
    assert_eq!(
        client.download_urls(conf).await.expect("first call").len(),
        27
    );
    env.sim.expire_access_tokens();
    assert_eq!(
        client
            .download_urls(conf)
            .await
            .expect("after expiry")
            .len(),
        27
    );
    let stats = env.sim.stats();
    assert_eq!(stats.appauth_ok, 2);
    assert_eq!(
        stats.api_unauthorized, 1,
        "one refused call, then re-authenticated"
    );
}

#[tokio::test]
async fn an_access_token_expiring_mid_run_does_not_stop_the_sync() {
    let meeting = SimMeeting::standard(
        "efefefefefefefefefefefefefefefef",
        "Mid-run",
        4,
        &["Hd"],
        96 * 1024,
    );
    let env = Arc::new(
        TestEnv::start(slow_scenario(
            meeting,
            Duration::from_millis(800),
            128 * 1024,
        ))
        .await,
    );
    let mut config = env.config();
    config.download.workers = 1;
    let runner = Arc::clone(&env);
    let sync = tokio::spawn(async move { runner.sync(&config).await });
    until("a first download", async || {
        env.sim.stats().downloads_completed >= 1
    })
    .await;
    env.sim.expire_access_tokens();
    let outcome = sync.await.expect("sync task");
    assert_eq!(outcome.exit_code(), 0, "{outcome:?}");
    env.assert_archive_complete(&[]);
    let stats = env.sim.stats();
    assert!(stats.appauth_ok >= 2, "re-authenticated: {stats:?}");
}

#[tokio::test]
async fn flaky_api_and_lying_download_host_still_give_a_complete_archive() {
    let mut scn = scenario(three_meetings());
    scn.faults = Faults {
        api_500: 0.25,
        api_429: 0.10,
        api_html: 0.10,
        download_500: 0.20,
        download_json_200: 0.10,
        ..Faults::default()
    };
    scn.seed = 7;
    let env = TestEnv::start(scn).await;
    let mut config = env.config();
    config.download.max_attempts = 30;
    let outcome = env.sync(&config).await;
    assert_eq!(outcome.exit_code(), 0, "{outcome:?}");
    env.assert_archive_complete(&[]);
    let stats = env.sim.stats();
    assert!(
        stats.api_faults_injected > 0 && stats.download_faults_injected > 0,
        "{stats:?}"
    );
    assert_eq!(stats.spent_token_reuses, 0);
}

#[tokio::test]
async fn a_wrong_content_length_is_refused_and_the_file_fetched_again() {
    let mut scn = scenario(vec![SimMeeting::standard(
        "a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1",
        "Lengths",
        3,
        &["Hd", "Sd"],
        64 * 1024,
    )]);
    scn.faults = Faults {
        download_wrong_length: 0.5,
        ..Faults::default()
    };
    let env = TestEnv::start(scn).await;
    let mut config = env.config();
    config.download.max_attempts = 30;
    let outcome = env.sync(&config).await;
    assert_eq!(outcome.exit_code(), 0, "{outcome:?}");
    env.assert_archive_complete(&[]);
    assert!(env.sim.stats().download_faults_injected > 0);
}

#[tokio::test]
async fn an_empty_200_is_not_taken_for_the_file() {
    use meeting_archiver::download::{FetchError, Transfer, fetch};
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("addr");
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accept");
        let mut buf = [0u8; 4096];
        let _ = socket.read(&mut buf).await;
        let answer = b"HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nContent-Length: 0\r\n\r\n";
        socket.write_all(answer).await.expect("write");
    });
    let dir = tempfile::tempdir().expect("tempdir");
    let partial = dir.path().join("1.part");
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let url = format!("http://{addr}/download/x/0_0.mp4");
    let token = secrecy::SecretString::from("a".repeat(64));
    let transfer = Transfer {
        client: &client,
        url: &url,
        token: &token,
        partial: &partial,
        resume_from: 0,
        checkpoint_every: std::time::Duration::from_secs(2),
        confirm_end: None,
        media: true,
    };
    let result = fetch(transfer, &tokio_util::sync::CancellationToken::new(), &()).await;
    assert!(
        matches!(result, Err(FetchError::TokenRejected { .. })),
        "{result:?}"
    );
}
