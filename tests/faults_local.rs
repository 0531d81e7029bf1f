//! Local faults (issue 7, "never stuck, never fooled"): a disk that fills,
//! a ledger locked by another program or refusing its COMMIT, two archivers
//! on one folder, a client that never finishes its request, a file the
//! cloud lost, and the modes of what the archiver writes. Each test injects
//! one fault and shows that nothing is lost, nothing torn lies under a final
//! name, no spent token is presented again, and nothing hangs.

mod disk;
mod ledger;
mod process;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use crate::helpers::*;

/// A tmpfs mounted for one test; unmounted on drop, even when the test
/// fails, so that no mount outlives its test.
pub struct Tmpfs {
    path: PathBuf,
}

impl Tmpfs {
    /// Mounts a tmpfs of `size` (`8m`) on `path`, or `None` (after saying
    /// why) when this process may not mount: the caller skips its test.
    pub fn mount(path: &Path, size: &str) -> Option<Tmpfs> {
        std::fs::create_dir_all(path).expect("mount point");
        let mounted = Command::new("mount")
            .args(["-t", "tmpfs", "-o", &format!("size={size}"), "tmpfs"])
            .arg(path)
            .output();
        match mounted {
            Ok(out) if out.status.success() => Some(Tmpfs {
                path: path.to_owned(),
            }),
            Ok(out) => {
                let why = String::from_utf8_lossy(&out.stderr);
                eprintln!("SKIPPED: cannot mount a tmpfs (run the tests as root): {why}");
                None
            }
            Err(e) => {
                eprintln!("SKIPPED: cannot run mount: {e}");
                None
            }
        }
    }

    /// Grows (or shrinks) the file system to `size`, keeping its files.
    pub fn resize(&self, size: &str) {
        let status = Command::new("mount")
            .args(["-o", &format!("remount,size={size}")])
            .arg(&self.path)
            .status()
            .expect("mount runs");
        assert!(status.success(), "remount to {size}");
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        let unmounted = Command::new("umount")
            .arg(&self.path)
            .status()
            .is_ok_and(|s| s.success());
        if !unmounted {
            // Still busy (a process of a failed test): detach it now.
            let _ = Command::new("umount").arg("-l").arg(&self.path).status();
        }
    }
}

/// One file's row, read from the ledger by another connection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FileRow {
    pub id: i64,
    pub rel_path: String,
    pub state: String,
    pub attempts: i64,
    pub partial_bytes: i64,
}

/// Every file row of the ledger at `path`, by id.
pub fn file_rows(path: &Path) -> Vec<FileRow> {
    let conn = rusqlite::Connection::open(path).expect("ledger opens");
    conn.busy_timeout(TEST_TIMEOUT).expect("busy timeout");
    let mut stmt = conn
        .prepare("SELECT id, rel_path, state, attempts, partial_bytes FROM files ORDER BY id")
        .expect("query");
    let rows = stmt
        .query_map([], |r| {
            Ok(FileRow {
                id: r.get(0)?,
                rel_path: r.get(1)?,
                state: r.get(2)?,
                attempts: r.get(3)?,
                partial_bytes: r.get(4)?,
            })
        })
        .expect("rows");
    rows.collect::<Result<_, _>>().expect("rows read")
}

/// Runs the binary with `--config config` and `args` to its end (bounded).
pub async fn archiver(config: &Path, args: &[&str]) -> Output {
    let mut all = vec!["--config".to_owned(), config.display().to_string()];
    all.extend(args.iter().map(|a| (*a).to_owned()));
    let run = tokio::task::spawn_blocking(move || {
        assert_cmd::Command::cargo_bin("meeting-archiver")
            .expect("binary built")
            .args(&all)
            .env_remove("RUST_LOG")
            .env_remove("MEETING_ARCHIVER_APP_KEY")
            .timeout(TEST_TIMEOUT)
            .output()
            .expect("binary runs")
    });
    bounded(run).await.expect("join")
}

/// Standard output then standard error, for assertions and their messages.
pub fn both(out: &Output) -> (String, String) {
    (
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}
