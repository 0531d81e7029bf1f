//! Faults around the process: a second archiver on the same folder, a
//! client that never finishes its request at shutdown, a file the cloud
//! lost for good (default backoffs), and the modes of what lands on disk.

use std::os::unix::fs::PermissionsExt;
use std::path::Path;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use meeting_archiver::config::DownloadConfig;
use meeting_archiver::simulator::{Faults, Scenario, SimMeeting};
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::{archiver, both, file_rows, healthz};
use crate::helpers::*;

/// One file of `size` bytes served at 256 KiB/s.
fn slow_file(conf: &str, size: usize) -> Scenario {
    let mut scn = scenario(vec![SimMeeting::standard(conf, "Slow", 1, &["Hd"], size)]);
    scn.faults = Faults {
        slow_bytes_per_sec: Some(256 * 1024),
        ..Faults::default()
    };
    scn
}

/// A `sync` of the binary running in the background (through `sh`, to set
/// its umask), killed on drop if a failed test leaves it running.
struct BackgroundSync {
    child: Child,
}

impl BackgroundSync {
    fn start(config: &Path, umask: &str) -> BackgroundSync {
        let child = Command::new("sh")
            .args(["-c", &format!("umask {umask}; exec \"$0\" \"$@\"")])
            .arg(assert_cmd::cargo::cargo_bin("meeting-archiver"))
            .arg("--config")
            .arg(config)
            .arg("sync")
            .env_remove("RUST_LOG")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("sync starts");
        BackgroundSync { child }
    }

    fn running(&mut self) -> bool {
        self.child.try_wait().expect("try_wait").is_none()
    }

    /// Waits for the end; returns the exit code.
    async fn exit(mut self) -> Option<i32> {
        until("the background sync to end", async || !self.running()).await;
        self.child.wait().expect("wait").code()
    }
}

impl Drop for BackgroundSync {
    fn drop(&mut self) {
        if self.running() {
            let _ = self.child.kill();
            let _ = self.child.wait();
        }
    }
}

#[tokio::test]
async fn a_second_archiver_on_the_same_folder_is_refused_at_once_naming_the_first() {
    let env = TestEnv::start(slow_file("b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4b4", 2 << 20)).await;
    let mut first = BackgroundSync::start(&env.write_config(&env.config()), "077");
    let mut other = env.config();
    other.ledger.path = env.dir.path().join("other.sqlite3");
    let other_config = env.write_config_as(&other, "other.toml");
    until("the first archiver downloading", async || {
        env.sim.stats().bytes_served > 0
    })
    .await;

    let asked = Instant::now();
    let out = archiver(&other_config, &["sync"]).await;
    let took = asked.elapsed();
    let (stdout, stderr) = both(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    for name in [
        env.archive_dir().display().to_string(),
        format!("pid {}", first.child.id()),
        env.ledger_path().display().to_string(),
    ] {
        assert!(stderr.contains(&name), "names {name}: {stderr}");
    }
    assert!(took < Duration::from_secs(10), "refused at once: {took:?}");
    assert!(first.running(), "refused while the first still works");
    assert!(
        file_rows(&other.ledger.path).is_empty(),
        "it queued nothing"
    );

    assert_eq!(first.exit().await, Some(0));
    env.assert_archive_complete(&[]);
    assert_eq!(env.sim.stats().spent_token_reuses, 0);
}

#[tokio::test]
async fn a_client_that_never_finishes_its_request_does_not_hold_the_daemon_at_sigterm() {
    let env = TestEnv::start(slow_file("b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5b5", 1024)).await;
    let mut config = env.config();
    let addr = free_addr();
    config.server.listen = Some(addr);
    config.download.shutdown_timeout = Duration::from_secs(2);
    let daemon = DaemonProcess::spawn(&env.write_config(&config), &[]);
    until("/healthz answers", async || healthz(addr).await.is_some()).await;
    // Half a request, never finished.
    let mut stuck = tokio::net::TcpStream::connect(addr).await.expect("connect");
    stuck
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\n")
        .await
        .expect("half a request");
    // A whole request on a second connection: the daemon accepts
    // connections in order, so once this one is answered it holds the
    // stuck one too.
    let mut probe = tokio::net::TcpStream::connect(addr).await.expect("connect");
    probe
        .write_all(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("whole request");
    let mut answer = Vec::new();
    bounded(probe.read_to_end(&mut answer))
        .await
        .expect("answer");
    assert!(answer.starts_with(b"HTTP/1.1 "), "{answer:?}");

    let asked = Instant::now();
    daemon.signal("TERM");
    let (code, stderr) = daemon.exit().await;
    let took = asked.elapsed();
    assert_eq!(code, Some(0), "{stderr}");
    assert!(took < Duration::from_secs(8), "stopped after {took:?}");
    drop(stuck);
}

#[tokio::test]
async fn a_file_missing_for_good_ends_sync_a_minute_after_the_rest_with_default_backoffs() {
    let mut scn = scenario(vec![SimMeeting::standard(
        "b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6b6",
        "One lost",
        2,
        &["Hd"],
        64 * 1024,
    )]);
    let lost = scn.meetings[0].files[0].path.clone();
    scn.faults = Faults {
        missing_files: vec![lost],
        ..Faults::default()
    };
    let env = TestEnv::start(scn).await;
    let mut config = env.config();
    config.download = DownloadConfig {
        dir: env.archive_dir(),
        min_free_space: 0,
        ..DownloadConfig::default()
    };
    let started = Instant::now();
    let out = archiver(&env.write_config(&config), &["sync"]).await;
    let took = started.elapsed();
    let (stdout, stderr) = both(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    assert!(took < Duration::from_secs(100), "ended after {took:?}");
    assert!(stdout.contains("wait for a retry"), "{stdout}");
    let rows = file_rows(&env.ledger_path());
    let states: Vec<&str> = rows.iter().map(|r| r.state.as_str()).collect();
    assert_eq!(states, ["pending", "done"], "{rows:?}");
    // 5 s, 10 s and 20 s backoffs (at most; jittered) end within a minute.
    assert!(
        (4..10).contains(&rows[0].attempts),
        "waited out, not failed: {rows:?}"
    );
    let good = &env.meetings[0].files[1];
    let name = good.path.rsplit('/').next().expect("name");
    let archived = env
        .meeting_dir(&env.meetings[0].conf_uuid)
        .join("Hd")
        .join(name);
    assert_eq!(std::fs::read(&archived).expect("archived"), good.content());
    assert_eq!(env.sim.stats().spent_token_reuses, 0, "no token sent twice");
}

fn mode(path: &Path) -> u32 {
    std::fs::metadata(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .permissions()
        .mode()
        & 0o777
}

#[tokio::test]
async fn the_ledger_and_partial_area_stay_private_and_an_exposed_key_is_named() {
    let env = TestEnv::start(slow_file("b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7", 1 << 20)).await;
    let path = env.write_config(&env.config());
    let sync = BackgroundSync::start(&path, "022");
    let ledger = env.ledger_path();
    let wal = ledger.with_extension("sqlite3-wal");
    until("the sync downloading, its ledger in WAL mode", async || {
        env.sim.stats().bytes_served > 0 && wal.exists()
    })
    .await;
    let partial = env.archive_dir().join(".partial");
    for private in [&ledger, &wal] {
        assert_eq!(mode(private) & 0o077, 0, "{}", private.display());
    }
    assert_eq!(mode(&partial), 0o700);
    assert_eq!(sync.exit().await, Some(0));
    assert_eq!(mode(&ledger) & 0o077, 0);
    assert_eq!(mode(&partial), 0o700);
    env.assert_archive_complete(&[]);

    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o644)).expect("chmod");
    let out = archiver(&path, &["check-config"]).await;
    let (stdout, stderr) = both(&out);
    assert_eq!(out.status.code(), Some(0), "{stdout}\n{stderr}");
    let warning = stderr
        .lines()
        .find(|l| l.contains("readable by every user"))
        .unwrap_or_else(|| panic!("no warning: {stderr}"));
    assert!(warning.contains(&path.display().to_string()), "{warning}");
    std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let (_, quiet) = both(&archiver(&path, &["check-config"]).await);
    assert!(!quiet.contains("readable by every user"), "{quiet}");
}
