//! `check_dirs`: proves at start-up that the archive folder and the ledger's
//! folder can be created and written, and that the ledger is not a folder,
//! so a bad path fails fast with its key.

use std::io::Write as _;
use std::path::{Path, PathBuf};

use super::{Config, ConfigError};

impl Config {
    /// Creates `download.dir` and the ledger's parent folder if needed and
    /// checks that a file can be written and removed in each.
    pub fn check_dirs(&self) -> Result<(), ConfigError> {
        check_writable("download.dir", &self.download.dir)?;
        if self.ledger.path.is_dir() {
            // SQLite would only say "unable to open database file".
            return Err(ConfigError::invalid(
                "ledger.path",
                format!("names a folder, not a file: {}", self.ledger.path.display()),
            ));
        }
        let ledger_dir = match self.ledger.path.parent() {
            Some(parent) if !parent.as_os_str().is_empty() => parent.to_path_buf(),
            _ => PathBuf::from("."),
        };
        check_writable("ledger.path", &ledger_dir)
    }
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
    let probe = dir.join(format!(".meeting-archiver-probe-{}", std::process::id()));
    let mut file = std::fs::OpenOptions::new()
        .write(true)
        .create(true)
        .truncate(true)
        .open(&probe)
        .map_err(fail("write a file in", dir))?;
    let written = file.write_all(b"probe").and_then(|()| file.sync_all());
    drop(file);
    let removed = std::fs::remove_file(&probe);
    written.map_err(fail("write a file in", dir))?;
    removed.map_err(fail("remove probe file", &probe))
}
