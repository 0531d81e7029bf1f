//! The folders the archiver writes to: `download.dir` and the ledger's
//! folder. [`Config::check_dirs`] (`sync`, `run`) creates them and proves
//! they can be written, so a bad path fails fast with its key.
//! [`Config::inspect_dirs`] (`check-config`) creates nothing: it tells what
//! `sync` would find or do, and leaves no file behind.

use std::fmt;
use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::{Config, ConfigError};

/// What `check-config` found at one folder.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DirReport {
    /// The key naming the folder, such as `download.dir`.
    pub key: &'static str,
    /// The folder.
    pub path: PathBuf,
    /// Whether it is there.
    pub state: DirState,
}

/// Whether a folder exists or would be created.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum DirState {
    /// It exists and a file can be written in it.
    Writable,
    /// It does not exist; `sync` and `run` would create it (its nearest
    /// existing parent is a writable folder).
    WouldCreate,
}

impl fmt::Display for DirReport {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let what = match self.state {
            DirState::Writable => "exists and is writable",
            DirState::WouldCreate => "does not exist; sync/run would create it",
        };
        write!(f, "{} folder {}: {what}", self.key, self.path.display())
    }
}

impl Config {
    /// Creates `download.dir` and the ledger's parent folder if needed and
    /// checks that a file can be written and removed in each.
    pub fn check_dirs(&self) -> Result<(), ConfigError> {
        check_writable("download.dir", &self.download.dir)?;
        self.ledger_not_a_folder()?;
        check_writable("ledger.path", &self.ledger_dir())
    }

    /// Like [`Config::check_dirs`] without creating anything: a missing
    /// folder is reported as one `sync` would create, or as an error when
    /// it could not be (a file in the way, a parent that is not writable).
    pub fn inspect_dirs(&self) -> Result<Vec<DirReport>, ConfigError> {
        let archive = inspect("download.dir", &self.download.dir)?;
        self.ledger_not_a_folder()?;
        let ledger = inspect("ledger.path", &self.ledger_dir())?;
        Ok(vec![archive, ledger])
    }

    fn ledger_not_a_folder(&self) -> Result<(), ConfigError> {
        if self.ledger.path.is_dir() {
            // SQLite would only say "unable to open database file".
            return Err(ConfigError::invalid(
                "ledger.path",
                format!("names a folder, not a file: {}", self.ledger.path.display()),
            ));
        }
        Ok(())
    }

    fn ledger_dir(&self) -> PathBuf {
        match self.ledger.path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        }
    }
}

/// `dir` as it stands, or its nearest existing parent if it would be created.
fn inspect(key: &'static str, dir: &Path) -> Result<DirReport, ConfigError> {
    let report = |state| DirReport {
        key,
        path: dir.to_path_buf(),
        state,
    };
    let mut existing = dir;
    while !existing.exists() {
        match existing.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => existing = parent,
            _ => {
                existing = Path::new(".");
                break;
            }
        }
    }
    if !existing.is_dir() {
        return Err(ConfigError::NotAFolder {
            key: key.to_string(),
            path: dir.to_path_buf(),
            blocker: existing.to_path_buf(),
        });
    }
    probe(existing).map_err(|source| ConfigError::Unwritable {
        key: key.to_string(),
        path: dir.to_path_buf(),
        parent: existing.to_path_buf(),
        source,
    })?;
    Ok(report(if existing == dir {
        DirState::Writable
    } else {
        DirState::WouldCreate
    }))
}

fn check_writable(key: &str, dir: &Path) -> Result<(), ConfigError> {
    let fail = |action: &'static str, path: &Path| {
        let key = key.to_string();
        let path = path.to_path_buf();
        move |source| ConfigError::Dir {
            key,
            path,
            action,
            source,
        }
    };
    std::fs::create_dir_all(dir).map_err(fail("create folder", dir))?;
    probe(dir).map_err(fail("write a file in", dir))
}

/// Writes, syncs and removes a probe file in `dir`: the one way to know a
/// folder is writable (permissions, ACLs, read-only mounts) without libc.
fn probe(dir: &Path) -> std::io::Result<()> {
    let probe = dir.join(format!(".meeting-archiver-probe-{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&probe)?;
    let written = file.write_all(b"probe").and_then(|()| file.sync_all());
    drop(file);
    let removed = std::fs::remove_file(&probe);
    written.and(removed)
}
