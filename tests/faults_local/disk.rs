//! A disk that fills: the archive folder on a small tmpfs, nearly full,
//! and files bigger than the room left. Nothing is blamed on the files.

use std::path::{Path, PathBuf};
use std::time::Duration;

use meeting_archiver::config::Config;
use meeting_archiver::simulator::{Faults, Scenario, SimMeeting};

use super::{FileRow, Tmpfs, archiver, both, file_rows, healthz};
use crate::daemon::{metrics, sample, start_daemon};
use crate::helpers::*;

const MIB: usize = 1024 * 1024;
const CONDITION: &str = "meeting_archiver_condition{name=\"disk_full\"}";

/// Two 3 MiB files, throttled so that checkpoints land before the disk
/// fills.
fn too_big_for_the_disk(conf: &str) -> Scenario {
    let mut scn = scenario(vec![SimMeeting::standard(
        conf,
        "Too big",
        2,
        &["Hd"],
        3 * MIB,
    )]);
    scn.faults = Faults {
        slow_bytes_per_sec: Some(4 * MIB as u64),
        ..Faults::default()
    };
    scn
}

/// Mounts an 8 MiB disk on the archive folder and fills all but 2 MiB of
/// it; `None` when this process may not mount.
fn nearly_full_disk(env: &TestEnv) -> Option<(Tmpfs, PathBuf)> {
    let disk = Tmpfs::mount(&env.archive_dir(), "8m")?;
    let filler = env.archive_dir().join("filler");
    std::fs::write(&filler, vec![0u8; 6 * MIB]).expect("filler written");
    Some((disk, filler))
}

/// Room for a claim (512 KiB) but not for a file; checkpoints every 50 ms.
fn small_disk_config(env: &TestEnv) -> Config {
    let mut config = env.config();
    config.download.min_free_space = 512 * 1024;
    config.download.checkpoint_interval = Duration::from_millis(50);
    config
}

/// The files are pending, no attempt was counted, and what the ledger
/// calls durable lies in each partial file.
fn assert_waiting_uncounted(archive: &Path, rows: &[FileRow]) {
    assert_eq!(rows.len(), 2, "{rows:?}");
    for row in rows {
        assert_eq!(
            (row.state.as_str(), row.attempts),
            ("pending", 0),
            "{row:?}"
        );
        let partial = archive.join(".partial").join(format!("{}.part", row.id));
        let held = std::fs::metadata(&partial).map_or(0, |m| m.len());
        assert!(held >= row.partial_bytes as u64, "{row:?}: {held} bytes");
    }
    assert!(
        rows.iter().any(|r| r.partial_bytes > 0),
        "partial data kept: {rows:?}"
    );
}

#[tokio::test]
async fn a_disk_that_fills_stops_sync_uncounted_and_the_next_sync_completes() {
    let env = TestEnv::start(too_big_for_the_disk("e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1")).await;
    let Some((_disk, filler)) = nearly_full_disk(&env) else {
        return;
    };
    let config = small_disk_config(&env);
    let path = env.write_config(&config);
    let out = archiver(&path, &["sync"]).await;
    let (stdout, stderr) = both(&out);
    assert_eq!(out.status.code(), Some(1), "{stdout}\n{stderr}");
    let archive = env.archive_dir().display().to_string();
    assert!(
        stdout
            .lines()
            .any(|l| l.contains("stopped: the disk of") && l.contains(&archive)),
        "the reason names the folder: {stdout}"
    );
    assert!(stdout.contains("0 failed"), "{stdout}");
    assert_waiting_uncounted(&env.archive_dir(), &file_rows(&env.ledger_path()));
    assert_eq!(
        archived_media(&env.archive_dir()),
        vec![filler.clone()],
        "nothing under a final name"
    );
    let status = archiver(&path, &["status", "--json"]).await;
    let (json, _) = both(&status);
    assert!(json.contains("disk_full"), "{json}");

    std::fs::remove_file(&filler).expect("room made");
    let outcome = env.sync(&config).await;
    assert_eq!(outcome.exit_code(), 0, "{outcome:?}");
    env.assert_archive_complete(&[]);
    assert!(outcome.status.conditions.is_empty(), "{outcome:?}");
    let stats = env.sim.stats();
    assert!(stats.ranged_requests >= 1, "resumed: {stats:?}");
    assert_eq!(stats.spent_token_reuses, 0);
    let rows = file_rows(&env.ledger_path());
    assert!(
        rows.iter().all(|r| r.state == "done" && r.attempts == 0),
        "{rows:?}"
    );
}

#[tokio::test]
async fn a_daemon_on_a_full_disk_says_so_and_resumes_by_itself_when_space_returns() {
    let env = TestEnv::start(too_big_for_the_disk("e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2")).await;
    let Some((disk, filler)) = nearly_full_disk(&env) else {
        return;
    };
    let mut config = small_disk_config(&env);
    let addr = free_addr();
    config.server.listen = Some(addr);
    let (daemon, shutdown) = start_daemon(&env, config);
    let archive = env.archive_dir().display().to_string();
    until("/healthz failing on disk_full", async || {
        healthz(addr).await.is_some_and(|(code, body)| {
            code == 503 && body.contains("disk_full") && body.contains(&archive)
        })
    })
    .await;
    assert_eq!(
        sample(&metrics(addr).await.expect("metrics"), CONDITION),
        1.0
    );
    until("both transfers stopped by the full disk", async || {
        file_rows(&env.ledger_path())
            .iter()
            .all(|r| r.state != "downloading")
    })
    .await;
    assert_waiting_uncounted(&env.archive_dir(), &file_rows(&env.ledger_path()));

    disk.resize("256m");
    until("both files archived once space returned", async || {
        env.archived() == 3
    })
    .await;
    until("/healthz healthy again", async || {
        healthz(addr).await.is_some_and(|(code, _)| code == 200)
    })
    .await;
    assert_eq!(
        sample(&metrics(addr).await.expect("metrics"), CONDITION),
        0.0
    );
    shutdown.cancel();
    bounded(daemon)
        .await
        .expect("daemon task")
        .expect("daemon ran");
    std::fs::remove_file(&filler).expect("filler removed");
    env.assert_archive_complete(&[]);
    assert_eq!(env.sim.stats().spent_token_reuses, 0);
    let rows = file_rows(&env.ledger_path());
    assert!(
        rows.iter().all(|r| r.state == "done" && r.attempts == 0),
        "{rows:?}"
    );
}
