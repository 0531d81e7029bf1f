//! The daemon (`run`) in-process: schedule, re-checks, health and metrics,
//! work revived by another process.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use meeting_archiver::config::Config;
use meeting_archiver::daemon;
use meeting_archiver::simulator::{Faults, SimMeeting};
use tokio_util::sync::CancellationToken;

use crate::helpers::*;

/// Runs the daemon in-process with `config` (also written to the config
/// file, for reloads); cancel the token to stop it.
pub(crate) fn start_daemon(
    env: &TestEnv,
    config: Config,
) -> (
    tokio::task::JoinHandle<anyhow::Result<()>>,
    CancellationToken,
) {
    let shutdown = CancellationToken::new();
    let (reload_tx, reloads) = tokio::sync::mpsc::unbounded_channel();
    let path = env.write_config(&config);
    let stop = shutdown.clone();
    let daemon = tokio::spawn(async move {
        let _keep_channel_open = reload_tx;
        daemon::run(path, config, stop, reloads).await
    });
    (daemon, shutdown)
}

/// The `/metrics` page of the daemon listening on `addr`; `None` while
/// nothing answers there yet.
pub(crate) async fn metrics(addr: SocketAddr) -> Option<String> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let response = client
        .get(format!("http://{addr}/metrics"))
        .send()
        .await
        .ok()?;
    assert_eq!(response.status(), 200);
    Some(response.text().await.expect("body"))
}

/// The value of one sample (`name{labels}`) on a metrics page; 0 if absent.
pub(crate) fn sample(page: &str, name: &str) -> f64 {
    page.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' '))
        .map_or(0.0, |v| v.trim().parse().expect("a number"))
}

const POLLS_OK: &str = "meeting_archiver_polls_total{result=\"ok\"}";

#[tokio::test]
async fn a_one_second_schedule_polls_repeatedly_and_archives_a_meeting_that_becomes_ready() {
    let mut meeting = SimMeeting::standard(
        "d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1d1",
        "Late",
        1,
        &["Hd", "Sd"],
        4096,
    );
    meeting.not_ready_calls = 2; // listed with files only from the third poll on
    let env = TestEnv::start(scenario(vec![meeting])).await;
    let mut config = env.config();
    config.poll.schedule = "* * * * * *".to_owned();
    let (daemon, shutdown) = start_daemon(&env, config);
    let started = Instant::now();
    until("three polls", async || {
        env.sim.stats().downloadurls_calls >= 3
    })
    .await;
    assert!(
        started.elapsed() <= Duration::from_secs(4),
        "three polls took {:?}",
        started.elapsed()
    );
    until("the late meeting archived", async || env.archived() == 2).await;
    shutdown.cancel();
    bounded(daemon).await.expect("join").expect("clean stop");
    env.assert_archive_complete(&[]);
}

#[tokio::test]
async fn health_and_metrics_report_what_the_run_did() {
    let env = TestEnv::start(scenario(vec![SimMeeting::standard(
        "d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2d2",
        "Metrics",
        2,
        &["Hd", "Aux"],
        3000,
    )]))
    .await;
    let addr = free_addr();
    let mut config = env.config();
    config.server.listen = Some(addr);
    let (daemon, shutdown) = start_daemon(&env, config);
    until("all archived", async || env.archived() == 4).await;
    let health = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);
    // The gauges come from the ledger, where a file is marked done just
    // after it is placed in the archive.
    let mut text = String::new();
    until("the ledger's count on /metrics", async || {
        text = metrics(addr).await.unwrap_or_default();
        text.contains("meeting_archiver_files{state=\"done\"} 4")
    })
    .await;
    for line in [
        "meeting_archiver_files{state=\"done\"} 4",
        "meeting_archiver_files{state=\"failed\"} 0",
        "meeting_archiver_bytes_archived 12000",
        "meeting_archiver_downloads_total{outcome=\"done\"} 4",
        // One listing: its page, the empty page after it, offset 1 tried
        // as a page number (which teaches the client what offset counts).
        "meeting_archiver_api_requests_total{endpoint=\"downloadurls\",status=\"200\"} 3",
        "meeting_archiver_api_requests_total{endpoint=\"appauth\",status=\"200\"} 1",
        "meeting_archiver_token_refreshes_total 1",
        "meeting_archiver_download_duration_seconds_count 4",
        "meeting_archiver_queue_depth 0",
        "meeting_archiver_polls_total{result=\"ok\"} 1",
    ] {
        assert!(text.contains(line), "missing {line:?} in\n{text}");
    }
    assert!(text.contains("meeting_archiver_last_successful_poll_timestamp_seconds"));
    shutdown.cancel();
    bounded(daemon).await.expect("join").expect("clean stop");
}

#[tokio::test]
async fn a_complete_meeting_is_rechecked_for_recheck_for_and_then_left_alone() {
    let conf = "d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7";
    let env = TestEnv::start(scenario(vec![SimMeeting::standard(
        conf,
        "Recheck",
        1,
        &["Hd"],
        1024,
    )]))
    .await;
    let addr = free_addr();
    let recheck_for = Duration::from_secs(3);
    let mut config = env.config();
    config.poll.schedule = "* * * * * *".to_owned();
    config.poll.recheck_for = recheck_for;
    config.server.listen = Some(addr);
    let (daemon, shutdown) = start_daemon(&env, config);
    until("the first file", async || env.archived() == 1).await;
    // A second part appears while the meeting is still being re-checked.
    env.sim
        .add_meeting(SimMeeting::standard(conf, "Recheck", 2, &["Hd"], 1024));
    until("the new part archived", async || env.archived() == 2).await;
    let complete = Instant::now();
    let calls_when_complete = env.sim.stats().downloadurls_calls;
    // Left alone: two polls in a row cost no API call. (Calls are read
    // before polls when the count is taken and after them when it is
    // compared, so the second poll began after the count.)
    let calls = || env.sim.stats().downloadurls_calls;
    let polls = async || sample(&metrics(addr).await.expect("/metrics answers"), POLLS_OK);
    let mut since = (calls(), polls().await);
    until("two polls that cost no API call", async || {
        let now_polls = polls().await;
        let now_calls = calls();
        if now_calls != since.0 {
            since = (calls(), polls().await);
            return false;
        }
        now_polls >= since.1 + 2.0
    })
    .await;
    assert!(
        since.0 > calls_when_complete,
        "the complete meeting was re-checked"
    );
    assert!(
        complete.elapsed() + Duration::from_secs(1) >= recheck_for,
        "re-checked for {recheck_for:?}, left alone after {:?}",
        complete.elapsed()
    );
    shutdown.cancel();
    bounded(daemon).await.expect("join").expect("clean stop");
}

#[tokio::test]
async fn files_revived_by_retry_from_another_process_are_picked_up() {
    let env = TestEnv::start(broken_host("e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2", 2)).await;
    let addr = free_addr();
    let mut config = env.config();
    config.download.max_attempts = 1;
    config.download.workers = 2;
    config.poll.schedule = "* * * * * *".to_owned();
    config.server.listen = Some(addr);
    let (daemon, shutdown) = start_daemon(&env, config.clone());
    until("both files failed for good", async || {
        metrics(addr)
            .await
            .is_some_and(|page| sample(&page, "meeting_archiver_files{state=\"failed\"}") == 2.0)
    })
    .await;
    env.sim.set_faults(Faults::default());
    // Another process revives them; the daemon's next poll wakes its
    // (otherwise idle) workers.
    meeting_archiver::commands::retry(&config)
        .await
        .expect("retry");
    until("both archived after retry", async || env.archived() == 2).await;
    shutdown.cancel();
    bounded(daemon).await.expect("join").expect("clean stop");
    env.assert_archive_complete(&[]);
}

#[tokio::test]
async fn health_fails_after_three_failed_polls_and_recovers_after_a_good_one() {
    let env = TestEnv::start(scenario(vec![SimMeeting::standard(
        "d8d8d8d8d8d8d8d8d8d8d8d8d8d8d8d8",
        "Health",
        1,
        &["Hd"],
        1024,
    )]))
    .await;
    // Every API call fails (500), and is not retried for long.
    env.sim.set_faults(Faults {
        api_500: 1.0,
        ..Faults::default()
    });
    let addr = free_addr();
    let mut config = env.config();
    config.server.listen = Some(addr);
    config.poll.schedule = "*/1 * * * * *".to_owned();
    config.cloud.max_retries = 0;
    let (daemon, shutdown) = start_daemon(&env, config);
    until("unhealthy after three failed polls", async || {
        let (status, body) = healthz(addr).await.unwrap_or_default();
        status == 503 && body.contains("polls failed")
    })
    .await;
    let (_, body) = healthz(addr).await.unwrap_or_default();
    assert!(
        body.contains("internal server error"),
        "the last error: {body}"
    );
    env.sim.set_faults(Faults::default());
    until("healthy again after a good poll", async || {
        healthz(addr).await.is_some_and(|(status, _)| status == 200)
    })
    .await;
    shutdown.cancel();
    bounded(daemon).await.expect("join").expect("clean stop");
}
