//! The daemon (`run`): schedule, lifecycle, signals, systemd notifications,
//! health and metrics.

use std::io::Read;
use std::os::unix::net::UnixDatagram;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use meeting_archiver::daemon;
use meeting_archiver::simulator::{Faults, SimMeeting};
use tokio_util::sync::CancellationToken;

use crate::helpers::*;

/// Waits (bounded) until `done` holds, checking every 20 ms.
async fn until(what: &str, mut done: impl FnMut() -> bool) {
    let start = Instant::now();
    while !done() {
        assert!(
            start.elapsed() < TEST_TIMEOUT,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Runs the daemon in-process with `config`; cancel the token to stop it.
fn start_daemon(
    env: &TestEnv,
    knobs: &Knobs,
    config: meeting_archiver::config::Config,
) -> (
    tokio::task::JoinHandle<anyhow::Result<()>>,
    CancellationToken,
) {
    let shutdown = CancellationToken::new();
    let (reload_tx, reloads) = tokio::sync::mpsc::unbounded_channel();
    let path = env.config_file(knobs);
    let stop = shutdown.clone();
    let daemon = tokio::spawn(async move {
        let _keep_channel_open = reload_tx;
        daemon::run(path, config, stop, reloads).await
    });
    (daemon, shutdown)
}

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .map(|a| a.port())
        .expect("a free port")
}

fn spawn_daemon(config: &Path, envs: &[(&str, &str)]) -> Child {
    let mut cmd = Command::new(assert_cmd::cargo::cargo_bin("meeting-archiver"));
    cmd.args(["--config", &config.to_string_lossy(), "run"])
        .env_remove("RUST_LOG")
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.spawn().expect("daemon starts")
}

fn signal(child: &Child, name: &str) {
    let status = Command::new("kill")
        .args([&format!("-{name}"), &child.id().to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success());
}

/// Waits for the child to exit (bounded) and returns its code and stderr.
async fn wait_exit(mut child: Child, within: Duration) -> (Option<i32>, String) {
    let start = Instant::now();
    loop {
        if let Some(status) = child.try_wait().expect("try_wait") {
            let mut err = String::new();
            if let Some(mut stderr) = child.stderr.take() {
                let _ = stderr.read_to_string(&mut err);
            }
            return (status.code(), err);
        }
        if start.elapsed() > within {
            let _ = child.kill();
            panic!("the daemon did not exit within {within:?}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

fn archived(env: &TestEnv) -> usize {
    archived_media(&env.archive_dir()).len()
}

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
    let knobs = Knobs {
        schedule: "* * * * * *",
        ..Knobs::default()
    };
    let config = env.config(&knobs);
    let (daemon, shutdown) = start_daemon(&env, &knobs, config);
    let started = Instant::now();
    until("three polls", || env.sim.stats().downloadurls_calls >= 3).await;
    assert!(
        started.elapsed() <= Duration::from_secs(4),
        "three polls took {:?}",
        started.elapsed()
    );
    until("the late meeting archived", || archived(&env) == 2).await;
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
    let port = free_port();
    let knobs = Knobs {
        listen: format!("127.0.0.1:{port}"),
        ..Knobs::default()
    };
    let config = env.config(&knobs);
    let (daemon, shutdown) = start_daemon(&env, &knobs, config);
    until("all archived", || archived(&env) == 4).await;
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let base = format!("http://127.0.0.1:{port}");
    let health = client
        .get(format!("{base}/healthz"))
        .send()
        .await
        .expect("healthz");
    assert_eq!(health.status(), 200);
    let mut text = String::new();
    // The gauges come from the ledger; the last "archived" may be a moment
    // ahead of the ledger write, so read until it shows all four.
    for _ in 0..50 {
        text = client
            .get(format!("{base}/metrics"))
            .send()
            .await
            .expect("metrics")
            .text()
            .await
            .expect("body");
        if text.contains("meeting_archiver_files{state=\"done\"} 4") {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    for line in [
        "meeting_archiver_files{state=\"done\"} 4",
        "meeting_archiver_files{state=\"failed\"} 0",
        "meeting_archiver_bytes_archived 12000",
        "meeting_archiver_downloads_total{outcome=\"done\"} 4",
        "meeting_archiver_api_requests_total{endpoint=\"downloadurls\",status=\"200\"} 1",
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
async fn sigterm_mid_transfer_exits_0_leaves_no_partial_in_the_archive_and_sync_resumes() {
    let mut scn = scenario(vec![SimMeeting::standard(
        "d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3d3",
        "Slow",
        1,
        &["Hd"],
        2 * 1024 * 1024,
    )]);
    scn.faults = Faults {
        slow_bytes_per_sec: Some(256 * 1024),
        ..Faults::default()
    };
    let env = TestEnv::start(scn).await;
    let knobs = Knobs {
        extra_download: "shutdown_timeout = \"5s\"".to_owned(),
        ..Knobs::default()
    };
    let child = spawn_daemon(&env.config_file(&knobs), &[]);
    until("a transfer in flight", || {
        env.sim.stats().bytes_served > 300 * 1024
    })
    .await;
    let asked = Instant::now();
    signal(&child, "TERM");
    let (code, stderr) = wait_exit(child, Duration::from_secs(8)).await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "stopped within the timeout"
    );
    assert_eq!(archived(&env), 0, "no partial file under a final name");
    assert_eq!(
        partial_files(&env.archive_dir()).len(),
        1,
        "partial data kept"
    );

    env.sim.set_faults(Faults::default());
    let outcome = env.sync(&Knobs::default()).await;
    assert_eq!(outcome.exit_code(), 0, "{outcome:?}");
    env.assert_archive_complete(&[]);
    assert!(
        env.sim.stats().ranged_requests >= 1,
        "sync resumed the transfer"
    );
    assert_eq!(env.sim.stats().spent_token_reuses, 0);
}

#[tokio::test]
async fn sighup_adds_a_meeting_without_a_restart_and_a_broken_config_is_refused() {
    let first = SimMeeting::standard(
        "d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4",
        "First",
        1,
        &["Hd"],
        2048,
    );
    let second = SimMeeting::standard(
        "d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5d5",
        "Second",
        1,
        &["Hd"],
        2048,
    );
    let env = TestEnv::start(scenario(vec![first.clone(), second.clone()])).await;
    let port = free_port();
    let only_first = Knobs {
        meetings: Some(vec![first.conf_uuid.clone()]),
        listen: format!("127.0.0.1:{port}"),
        ..Knobs::default()
    };
    let path = env.config_file(&only_first);
    let child = spawn_daemon(&path, &[]);
    until("the first meeting archived", || archived(&env) == 1).await;

    let both = Knobs {
        meetings: None,
        ..only_first.clone()
    };
    std::fs::write(&path, env.config_text(&both)).expect("rewrite config");
    signal(&child, "HUP");
    until("the second meeting archived after SIGHUP", || {
        archived(&env) == 2
    })
    .await;

    std::fs::write(&path, "this is [not a config").expect("break config");
    signal(&child, "HUP");
    tokio::time::sleep(Duration::from_millis(300)).await;
    let probe = tokio::task::spawn_blocking({
        let path = env.config_file(&both);
        move || {
            Command::new(assert_cmd::cargo::cargo_bin("meeting-archiver"))
                .args(["--config", &path.to_string_lossy(), "healthcheck"])
                .output()
                .expect("healthcheck runs")
        }
    });
    let out = bounded(probe).await.expect("join");
    assert_eq!(
        out.status.code(),
        Some(0),
        "still healthy on the old config: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    signal(&child, "TERM");
    let (code, stderr) = wait_exit(child, Duration::from_secs(15)).await;
    assert_eq!(code, Some(0));
    assert!(stderr.contains("config reload refused"), "{stderr}");
    env.assert_archive_complete(&[]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn systemd_sees_ready_then_watchdog_then_stopping() {
    let env = TestEnv::start(scenario(vec![SimMeeting::standard(
        "d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6",
        "Notify",
        1,
        &["Hd"],
        1024,
    )]))
    .await;
    let socket_path = env.dir.path().join("notify.sock");
    let socket = UnixDatagram::bind(&socket_path).expect("bind notify socket");
    socket
        .set_read_timeout(Some(Duration::from_secs(20)))
        .expect("timeout");
    let child = spawn_daemon(
        &env.config_file(&Knobs::default()),
        &[
            ("NOTIFY_SOCKET", &socket_path.to_string_lossy()),
            ("WATCHDOG_USEC", "400000"),
        ],
    );
    let mut seen: Vec<String> = Vec::new();
    let read = |seen: &mut Vec<String>, want: &str| {
        let mut buf = [0u8; 4096];
        while !seen.iter().any(|m| m.lines().any(|l| l == want)) {
            let n = socket
                .recv(&mut buf)
                .unwrap_or_else(|e| panic!("waiting for {want}: {e}; got {seen:?}"));
            seen.push(String::from_utf8_lossy(&buf[..n]).into_owned());
        }
        seen.iter()
            .position(|m| m.lines().any(|l| l == want))
            .expect("seen")
    };
    let ready = tokio::task::block_in_place(|| read(&mut seen, "READY=1"));
    let watchdog = tokio::task::block_in_place(|| read(&mut seen, "WATCHDOG=1"));
    assert!(ready < watchdog, "READY before WATCHDOG: {seen:?}");
    assert!(seen.iter().any(|m| m.contains("STATUS=")), "{seen:?}");
    signal(&child, "TERM");
    let stopping = tokio::task::block_in_place(|| read(&mut seen, "STOPPING=1"));
    assert!(watchdog < stopping, "{seen:?}");
    let (code, _) = wait_exit(child, Duration::from_secs(15)).await;
    assert_eq!(code, Some(0));
}

#[tokio::test]
async fn healthcheck_fails_when_no_daemon_answers() {
    let env = TestEnv::start(scenario(Vec::new())).await;
    let knobs = Knobs {
        listen: format!("127.0.0.1:{}", free_port()),
        ..Knobs::default()
    };
    let path = env.config_file(&knobs);
    let out = tokio::task::spawn_blocking(move || {
        Command::new(assert_cmd::cargo::cargo_bin("meeting-archiver"))
            .args(["--config", &path.to_string_lossy(), "healthcheck"])
            .output()
            .expect("healthcheck runs")
    })
    .await
    .expect("join");
    assert_eq!(out.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&out.stdout).contains("unhealthy"));
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
    let knobs = Knobs {
        schedule: "* * * * * *",
        ..Knobs::default()
    };
    let text = env
        .config_text(&knobs)
        .replace("schedule = ", "recheck_for = \"3s\"\nschedule = ");
    let config = meeting_archiver::config::Config::from_toml(&text, &|_| None).expect("config");
    assert_eq!(config.poll.recheck_for, Duration::from_secs(3));
    let (daemon, shutdown) = start_daemon(&env, &knobs, config);
    until("the first file", || archived(&env) == 1).await;
    // A second part appears while the meeting is still being re-checked.
    env.sim
        .add_meeting(SimMeeting::standard(conf, "Recheck", 2, &["Hd"], 1024));
    until("the new part archived", || archived(&env) == 2).await;
    // Three seconds after completion the meeting is settled: no more calls.
    tokio::time::sleep(Duration::from_millis(4_500)).await;
    let calls = env.sim.stats().downloadurls_calls;
    tokio::time::sleep(Duration::from_millis(2_500)).await;
    assert_eq!(
        env.sim.stats().downloadurls_calls,
        calls,
        "a settled meeting costs no API calls"
    );
    shutdown.cancel();
    bounded(daemon).await.expect("join").expect("clean stop");
}

#[tokio::test]
async fn files_revived_by_retry_from_another_process_are_picked_up() {
    let env = TestEnv::start(broken_host("e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2", 2)).await;
    let knobs = Knobs {
        max_attempts: 1,
        workers: 2,
        schedule: "* * * * * *",
        ..Knobs::default()
    };
    let config = env.config(&knobs);
    let (daemon, shutdown) = start_daemon(&env, &knobs, config.clone());
    until("both files tried", || {
        env.sim.stats().download_requests >= 2
    })
    .await;
    tokio::time::sleep(Duration::from_millis(300)).await;
    env.sim.set_faults(Faults::default());
    // Another process revives them; the daemon's next poll wakes its
    // (otherwise idle) workers.
    meeting_archiver::commands::retry(&config)
        .await
        .expect("retry");
    until("both archived after retry", || archived(&env) == 2).await;
    shutdown.cancel();
    bounded(daemon).await.expect("join").expect("clean stop");
    env.assert_archive_complete(&[]);
}
