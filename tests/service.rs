//! The binary's `run` as a service manager sees it: signals (SIGTERM,
//! SIGHUP), systemd notifications, and `healthcheck`.

use std::os::unix::net::UnixDatagram;
use std::process::Command;
use std::time::{Duration, Instant};

use meeting_archiver::simulator::{Faults, SimMeeting};

use crate::helpers::*;

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
    let mut config = env.config();
    config.download.shutdown_timeout = Duration::from_secs(5);
    let daemon = DaemonProcess::spawn(&env.write_config(&config), &[]);
    until("a transfer in flight", async || {
        env.sim.stats().bytes_served > 300 * 1024
    })
    .await;
    let asked = Instant::now();
    daemon.signal("TERM");
    let (code, stderr) = daemon.exit().await;
    assert_eq!(code, Some(0), "{stderr}");
    assert!(
        asked.elapsed() < Duration::from_secs(5),
        "stopped within the timeout"
    );
    assert_eq!(env.archived(), 0, "no partial file under a final name");
    assert_eq!(
        partial_files(&env.archive_dir()).len(),
        1,
        "partial data kept"
    );

    env.sim.set_faults(Faults::default());
    let outcome = env.sync(&env.config()).await;
    assert_eq!(outcome.exit_code(), 0, "{outcome:?}");
    env.assert_archive_complete(&[]);
    assert!(
        env.sim.stats().ranged_requests >= 1,
        "sync resumed the transfer"
    );
    assert_eq!(env.sim.stats().spent_token_reuses, 0);
}

#[tokio::test]
async fn a_reload_during_a_poll_polls_the_new_meetings_as_soon_as_it_ends() {
    let first = SimMeeting::standard(
        "d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6d6",
        "First",
        1,
        &["Hd"],
        2048,
    );
    let second = SimMeeting::standard(
        "d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7",
        "Second",
        1,
        &["Hd"],
        2048,
    );
    let mut scn = scenario(vec![first.clone(), second.clone()]);
    // Every API answer takes a while, so the first poll is still running
    // when the reload comes.
    scn.faults = Faults {
        api_latency: Some(Duration::from_millis(500)),
        ..Faults::default()
    };
    let env = TestEnv::start(scn).await;
    let mut both = env.config();
    // No tick during the test: only the start and the reload poll.
    both.poll.schedule = "0 0 0 1 1 *".into();
    let mut only_first = both.clone();
    only_first.poll.meetings = vec![first.conf_uuid.clone()];
    let path = env.write_config(&only_first);
    let daemon = DaemonProcess::spawn(&path, &[]);
    until("the daemon running its first poll", async || {
        daemon.stderr().contains("daemon running")
    })
    .await;
    env.write_config(&both);
    daemon.signal("HUP");
    until("both meetings archived without a tick", async || {
        env.archived() == 2
    })
    .await;
    let stderr = daemon.stderr();
    assert!(
        stderr.contains("polling again: the config was reloaded during the last poll"),
        "the reload came during the first poll: {stderr}"
    );
    daemon.signal("TERM");
    let (code, stderr) = daemon.exit().await;
    assert_eq!(code, Some(0), "{stderr}");
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
    let mut both = env.config();
    both.server.listen = Some(free_addr());
    let mut only_first = both.clone();
    only_first.poll.meetings = vec![first.conf_uuid.clone()];
    let path = env.write_config(&only_first);
    let daemon = DaemonProcess::spawn(&path, &[]);
    until("the first meeting archived", async || env.archived() == 1).await;

    env.write_config(&both);
    daemon.signal("HUP");
    until("the second meeting archived after SIGHUP", async || {
        env.archived() == 2
    })
    .await;

    std::fs::write(&path, "this is [not a config").expect("break config");
    daemon.signal("HUP");
    until("the broken config refused", async || {
        daemon.stderr().contains("config reload refused")
    })
    .await;
    let probe = tokio::task::spawn_blocking({
        let path = env.write_config(&both);
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
    daemon.signal("TERM");
    let (code, stderr) = daemon.exit().await;
    assert_eq!(code, Some(0), "{stderr}");
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
    let daemon = DaemonProcess::spawn(
        &env.write_config(&env.config()),
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
    daemon.signal("TERM");
    let stopping = tokio::task::block_in_place(|| read(&mut seen, "STOPPING=1"));
    assert!(watchdog < stopping, "{seen:?}");
    let (code, stderr) = daemon.exit().await;
    assert_eq!(code, Some(0), "{stderr}");
}

#[tokio::test]
async fn healthcheck_fails_when_no_daemon_answers() {
    let env = TestEnv::start(scenario(Vec::new())).await;
    let mut config = env.config();
    config.server.listen = Some(free_addr());
    let path = env.write_config(&config);
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
