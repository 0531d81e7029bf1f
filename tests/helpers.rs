//! Shared test helpers: a simulator plus a typed archiver config on a
//! tempdir (written as TOML only for the binary), the binary's `run` as a
//! child process, the one wait helper, a drain of the worker's single step,
//! and checks of what landed on disk.

use std::future::Future;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, Instant};

use meeting_archiver::commands::{self, SyncOutcome};
use meeting_archiver::config::{
    Auth, CloudConfig, Config, DownloadConfig, LedgerConfig, LogConfig, PollConfig,
    RetentionConfig, ServerConfig, TlsConfig, WebhookConfig,
};
use meeting_archiver::pipeline::{Engine, Outcome, PollPlan, PollReport, build_engine};
use meeting_archiver::pipeline::{MANIFEST_NAME, README_NAME, SCHEMA_NAME, SUMS_NAME};
use meeting_archiver::simulator::{Scenario, SimMeeting, Simulator};
use secrecy::SecretString;
use tokio_util::sync::CancellationToken;

mod config_file;
mod process;
mod s3;
mod s3_proxy;

use config_file::config_toml;
pub use process::DaemonProcess;
pub use s3::*;
pub use s3_proxy::FaultProxy;

/// One global bound for every test that waits.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(90);

/// How often [`until`] looks again.
const POLL_INTERVAL: Duration = Duration::from_millis(20);

/// Runs `f` under [`TEST_TIMEOUT`].
pub async fn bounded<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(TEST_TIMEOUT, f)
        .await
        .expect("test exceeded its time bound")
}

/// Waits until `done` holds, looking every few milliseconds; panics naming
/// `what` after [`TEST_TIMEOUT`]. The one way tests wait for something.
pub async fn until(what: &str, mut done: impl AsyncFnMut() -> bool) {
    let start = Instant::now();
    while !done().await {
        assert!(
            start.elapsed() < TEST_TIMEOUT,
            "timed out after {TEST_TIMEOUT:?} waiting for {what}"
        );
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

/// What [`drain`] saw, by outcome.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Drained {
    pub done: usize,
    pub retry: usize,
    pub failed: usize,
    pub interrupted: usize,
}

impl Drained {
    /// `n` files archived and nothing else.
    pub fn done(n: usize) -> Drained {
        Drained {
            done: n,
            ..Drained::default()
        }
    }
}

/// Drives the worker's single step until no file is due ([`Outcome::Idle`]),
/// on this task: no pool, no sleeps. A file sent back with a backoff is not
/// due yet, so it ends the drain as well; call again to take it.
pub async fn drain(engine: &Engine) -> Drained {
    let cancel = CancellationToken::new();
    let mut seen = Drained::default();
    bounded(async {
        loop {
            match engine.process_next(&cancel).await.expect("a step runs") {
                Outcome::Idle => return seen,
                Outcome::Done => seen.done += 1,
                Outcome::Retry => seen.retry += 1,
                Outcome::Failed => seen.failed += 1,
                Outcome::Interrupted => seen.interrupted += 1,
                Outcome::DiskFull => panic!("the test disk is full"),
            }
        }
    })
    .await
}

/// One poll of `config`'s meetings by `engine`.
pub async fn poll(engine: &Engine, config: &Config) -> PollReport {
    bounded(engine.poll(&PollPlan::from(&config.poll))).await
}

/// A loopback address with a port nobody listens on (yet).
pub fn free_addr() -> SocketAddr {
    std::net::TcpListener::bind("127.0.0.1:0")
        .and_then(|l| l.local_addr())
        .expect("a free port")
}

/// A simulator and a working folder for the archiver.
pub struct TestEnv {
    pub sim: Simulator,
    pub dir: tempfile::TempDir,
    pub meetings: Vec<SimMeeting>,
    pub app_id: String,
    pub app_key: String,
}

impl TestEnv {
    /// Starts the simulator with `scenario`.
    pub async fn start(scenario: Scenario) -> TestEnv {
        let meetings = scenario.meetings.clone();
        let (app_id, app_key) = (scenario.app_id.clone(), scenario.app_key.clone());
        let sim = Simulator::start(scenario).await.expect("simulator starts");
        TestEnv {
            sim,
            dir: tempfile::tempdir().expect("tempdir"),
            meetings,
            app_id,
            app_key,
        }
    }

    pub fn archive_dir(&self) -> PathBuf {
        self.dir.path().join("archive")
    }

    /// How many media files lie in the archive.
    pub fn archived(&self) -> usize {
        archived_media(&self.archive_dir()).len()
    }

    pub fn ledger_path(&self) -> PathBuf {
        self.dir.path().join("ledger.sqlite3")
    }

    /// The archiver's config for this simulator: every simulated meeting,
    /// millisecond backoffs, polls every ten minutes, no HTTP server. Tests
    /// change its typed fields.
    pub fn config(&self) -> Config {
        let api_base = self.sim.api_base().parse().expect("simulator URL");
        let auth = Auth::AppId {
            app_id: self.app_id.clone(),
            app_key: SecretString::from(self.app_key.clone()),
            user_id: None,
            corp_id: None,
        };
        Config {
            cloud: CloudConfig {
                max_retries: 12,
                retry_base: Duration::from_millis(10),
                retry_max: Duration::from_millis(200),
                ..CloudConfig::new(api_base, auth)
            },
            poll: PollConfig {
                meetings: self.meetings.iter().map(|m| m.conf_uuid.clone()).collect(),
                ..PollConfig::default()
            },
            download: DownloadConfig {
                dir: self.archive_dir(),
                read_timeout: Duration::from_secs(10),
                retry_base: Duration::from_millis(10),
                retry_max: Duration::from_millis(200),
                // A developer's nearly full disk must not fail the suite;
                // the disk-full tests set their own.
                min_free_space: 0,
                ..DownloadConfig::default()
            },
            ledger: LedgerConfig {
                path: self.ledger_path(),
                retry_for: Duration::from_secs(20),
            },
            tls: TlsConfig::default(),
            server: ServerConfig { listen: None },
            log: LogConfig::default(),
            retention: RetentionConfig::default(),
            webhook: WebhookConfig::default(),
            archive: meeting_archiver::config::ArchiveConfig::Local,
            exposed_secrets: Vec::new(),
        }
    }

    /// Writes `config` as the TOML file the binary reads (`config.toml` in
    /// the working folder, replaced on each call) and returns its path.
    pub fn write_config(&self, config: &Config) -> PathBuf {
        self.write_config_as(config, "config.toml")
    }

    /// Writes `config` as the TOML file `name` in the working folder (a
    /// second archiver's config beside the first) and returns its path.
    pub fn write_config_as(&self, config: &Config, name: &str) -> PathBuf {
        use std::os::unix::fs::PermissionsExt;
        let path = self.dir.path().join(name);
        std::fs::write(&path, config_toml(config)).expect("write config");
        // It holds the App Key: private, as the README asks of users.
        let private = std::fs::Permissions::from_mode(0o600);
        std::fs::set_permissions(&path, private).expect("chmod config");
        path
    }

    /// The whole pipeline of `config`, for tests that drive its steps.
    pub fn engine(&self, config: &Config) -> Arc<Engine> {
        build_engine(config).expect("engine builds")
    }

    /// The ledger's summary, read beside whatever engine holds it.
    pub fn ledger_status(&self) -> meeting_archiver::ledger::Status {
        let ledger = meeting_archiver::ledger::Ledger::open(&self.ledger_path(), false)
            .expect("ledger opens");
        ledger.status(10).expect("status")
    }

    /// The folder the ledger fixed for a meeting, under the archive.
    pub fn meeting_dir(&self, conf_uuid: &str) -> PathBuf {
        self.archive_dir().join(self.meeting_folder(conf_uuid))
    }

    /// The meeting's folder relative to the archive (and to a bucket's
    /// prefix), as the ledger fixed it.
    pub fn meeting_folder(&self, conf_uuid: &str) -> String {
        let ledger = meeting_archiver::ledger::Ledger::open(&self.ledger_path(), false)
            .expect("ledger opens");
        let place = ledger.meeting_place(conf_uuid).expect("read");
        place
            .and_then(|p| p.folder)
            .expect("the meeting has a folder")
    }

    /// One in-process `sync`.
    pub async fn sync(&self, config: &Config) -> SyncOutcome {
        bounded(commands::sync(config, CancellationToken::new()))
            .await
            .expect("sync runs")
    }

    /// Asserts that every simulated file of the kept types lies in the
    /// archive byte for byte, and nothing else but manifests.
    pub fn assert_archive_complete(&self, types: &[&str]) {
        let mut expected = 0;
        for meeting in &self.meetings {
            for file in &meeting.files {
                if !types.is_empty() && !types.contains(&file.file_type.as_str()) {
                    continue;
                }
                expected += 1;
                let name = file.path.rsplit('/').next().expect("name");
                // The type's folder as the layout names it (`Aux` is a
                // Windows device name: `Aux_` in portable layouts).
                let kind = if file.file_type.eq_ignore_ascii_case("aux") {
                    format!("{}_", file.file_type)
                } else {
                    file.file_type.clone()
                };
                let dir = self.meeting_dir(&meeting.conf_uuid);
                let kind = if dir.join(&kind).is_dir() {
                    kind
                } else {
                    file.file_type.clone()
                };
                let path = dir.join(kind).join(name);
                let bytes =
                    std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
                assert!(
                    bytes == file.content(),
                    "{} differs from the cloud's file",
                    path.display()
                );
            }
        }
        let media = archived_media(&self.archive_dir());
        assert_eq!(
            media.len(),
            expected,
            "archive holds exactly the expected files: {media:?}"
        );
        assert_no_partials_outside(&self.archive_dir());
    }
}

/// Runs the binary's `demo` in `dir` (no config), bounded by [`TEST_TIMEOUT`].
pub fn run_demo(dir: &Path) -> std::process::Output {
    assert_cmd::Command::cargo_bin("meeting-archiver")
        .expect("binary")
        .current_dir(dir)
        .env("MEETING_ARCHIVER_CONFIG", "/nonexistent/config.toml")
        .arg("demo")
        .timeout(TEST_TIMEOUT)
        .output()
        .expect("demo runs")
}

/// Every file under the archive except manifests and the partial area.
pub fn archived_media(root: &Path) -> Vec<PathBuf> {
    walk(root)
        .into_iter()
        .filter(|p| !p.starts_with(root.join(".partial")))
        .filter(|p| {
            p.file_name().is_none_or(|n| {
                ![MANIFEST_NAME, SUMS_NAME, README_NAME, SCHEMA_NAME]
                    .iter()
                    .any(|meta| n == *meta)
            })
        })
        .collect()
}

/// The partial files (`<id>.part`) in an archive's partial area.
pub fn partial_files(archive: &Path) -> Vec<PathBuf> {
    walk(&archive.join(".partial"))
        .into_iter()
        .filter(|p| p.extension().is_some_and(|e| e == "part"))
        .collect()
}

pub fn walk(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_owned()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else {
                out.push(path);
            }
        }
    }
    out.sort();
    out
}

/// No partial data under a final name: nothing named like a partial
/// outside `.partial/`.
pub fn assert_no_partials_outside(root: &Path) {
    for path in walk(root) {
        if !path.starts_with(root.join(".partial")) {
            let name = path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            assert!(
                !name.ends_with(".part") && !name.ends_with(".tmp"),
                "stray partial {}",
                path.display()
            );
        }
    }
}

/// Meetings of the main acceptance scenario: one with 27 files (9 parts of
/// three types), one split in 3 parts of three types, one with Hd and Aux.
pub fn three_meetings() -> Vec<SimMeeting> {
    vec![
        SimMeeting::standard(
            "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa1",
            "Long all-hands",
            9,
            &["Hd", "Sd", "Aux"],
            48 * 1024,
        ),
        SimMeeting::standard(
            "bbbbbbbbbbbbbbbbbbbbbbbbbbbbbbb2",
            "Board meeting",
            3,
            &["Hd", "Sd", "Aux"],
            96 * 1024,
        ),
        SimMeeting::standard(
            "ccccccccccccccccccccccccccccccc3",
            "Stand-up",
            1,
            &["Hd", "Aux"],
            200 * 1024,
        ),
    ]
}

pub fn scenario(meetings: Vec<SimMeeting>) -> Scenario {
    Scenario {
        meetings,
        ..Scenario::default()
    }
}

pub fn file_count(meetings: &[SimMeeting]) -> u64 {
    meetings.iter().map(|m| m.files.len() as u64).sum()
}

/// A meeting of `parts` Hd files whose download host answers 500 to every
/// request (switch it off with `set_faults(Faults::default())`).
pub fn broken_host(conf: &str, parts: usize) -> Scenario {
    let mut scn = scenario(vec![SimMeeting::standard(
        conf,
        "Broken host",
        parts,
        &["Hd"],
        1000,
    )]);
    scn.faults = meeting_archiver::simulator::Faults {
        download_500: 1.0,
        ..Default::default()
    };
    scn
}

/// `GET /healthz` on `addr`: its status and body; `None` while nothing
/// answers there.
pub async fn healthz(addr: std::net::SocketAddr) -> Option<(u16, String)> {
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let response = client
        .get(format!("http://{addr}/healthz"))
        .send()
        .await
        .ok()?;
    let status = response.status().as_u16();
    Some((status, response.text().await.ok()?))
}
