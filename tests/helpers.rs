//! Shared test helpers: a simulator plus an archiver config on a tempdir,
//! and checks of what landed on disk.

use std::future::Future;
use std::path::{Path, PathBuf};
use std::time::Duration;

use meeting_archiver::commands::{self, SyncOutcome};
use meeting_archiver::config::Config;
use meeting_archiver::simulator::{Scenario, SimMeeting, Simulator};
use tokio_util::sync::CancellationToken;

/// One global bound for every test that waits.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(90);

/// Runs `f` under [`TEST_TIMEOUT`].
pub async fn bounded<T>(f: impl Future<Output = T>) -> T {
    tokio::time::timeout(TEST_TIMEOUT, f)
        .await
        .expect("test exceeded its time bound")
}

/// Knobs of the archiver config used by a test.
#[derive(Clone)]
pub struct Knobs {
    pub workers: usize,
    pub file_types: Vec<String>,
    pub max_attempts: u32,
    pub token_max_age: &'static str,
    pub extra_download: String,
    /// Configured meetings; `None` = every simulated meeting.
    pub meetings: Option<Vec<String>>,
    pub discover_days: u32,
    pub schedule: &'static str,
    /// `server.listen`; empty = off.
    pub listen: String,
    /// `cloud.api_base`; `None` = the simulator's API host.
    pub api_base: Option<String>,
    /// Lines of a `[tls]` section; empty = none.
    pub tls: String,
}

impl Default for Knobs {
    fn default() -> Knobs {
        Knobs {
            workers: 4,
            file_types: Vec::new(),
            max_attempts: 10,
            token_max_age: "50m",
            extra_download: String::new(),
            meetings: None,
            discover_days: 0,
            schedule: "0 */10 * * * *",
            listen: String::new(),
            api_base: None,
            tls: String::new(),
        }
    }
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

    pub fn ledger_path(&self) -> PathBuf {
        self.dir.path().join("ledger.sqlite3")
    }

    /// The config text for these knobs.
    pub fn config_text(&self, knobs: &Knobs) -> String {
        let q = |s: &str| serde_json::to_string(s).expect("json string");
        let all: Vec<String> = self.meetings.iter().map(|m| m.conf_uuid.clone()).collect();
        let meetings: Vec<String> = knobs
            .meetings
            .as_ref()
            .unwrap_or(&all)
            .iter()
            .map(|m| q(m))
            .collect();
        let types: Vec<String> = knobs.file_types.iter().map(|t| q(t)).collect();
        format!(
            "[cloud]\napi_base = {}\nretry_base = \"10ms\"\nretry_max = \"200ms\"\nmax_retries = 12\n\
             [cloud.auth]\napp_id = {}\napp_key = {}\n\
             [poll]\nmeetings = [{}]\ndiscover_days = {}\nschedule = {}\n\
             [download]\ndir = {}\nworkers = {}\nfile_types = [{}]\nmax_attempts = {}\n\
             token_max_age = \"{}\"\nretry_base = \"10ms\"\nretry_max = \"200ms\"\nread_timeout = \"10s\"\n{}\n\
             [ledger]\npath = {}\n[server]\nlisten = {}\n[tls]\n{}\n",
            q(knobs.api_base.as_deref().unwrap_or(&self.sim.api_base())),
            q(&self.app_id),
            q(&self.app_key),
            meetings.join(", "),
            knobs.discover_days,
            q(knobs.schedule),
            q(&self.archive_dir().to_string_lossy()),
            knobs.workers,
            types.join(", "),
            knobs.max_attempts,
            knobs.token_max_age,
            knobs.extra_download,
            q(&self.ledger_path().to_string_lossy()),
            q(&knobs.listen),
            knobs.tls,
        )
    }

    pub fn config(&self, knobs: &Knobs) -> Config {
        Config::from_toml(&self.config_text(knobs), &|_| None).expect("test config is valid")
    }

    /// Writes the config to a file for the binary.
    pub fn config_file(&self, knobs: &Knobs) -> PathBuf {
        let path = self.dir.path().join("config.toml");
        std::fs::write(&path, self.config_text(knobs)).expect("write config");
        path
    }

    /// One in-process `sync`.
    pub async fn sync(&self, knobs: &Knobs) -> SyncOutcome {
        let config = self.config(knobs);
        bounded(commands::sync(&config, CancellationToken::new()))
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
                let path = self
                    .archive_dir()
                    .join(&meeting.conf_uuid)
                    .join(&file.file_type)
                    .join(name);
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

/// Every file under the archive except manifests and the partial area.
pub fn archived_media(root: &Path) -> Vec<PathBuf> {
    walk(root)
        .into_iter()
        .filter(|p| !p.starts_with(root.join(".partial")))
        .filter(|p| p.extension().is_none_or(|e| e != "json"))
        .collect()
}

/// All files under `root`, recursively.
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
