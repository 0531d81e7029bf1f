//! Opening the ledger to read it only (`status`, `verify`, `check-config`):
//! no migration, no lock, and no file created beside it, so these commands
//! work on a ledger the user may not write (mode 0444, a read-only folder,
//! a read-only mount) and never change one they could.
//!
//! SQLite in WAL mode creates `-wal` and `-shm` files even for a read-only
//! connection, and cannot remove them again without write access. So when
//! no `-wal` file exists (no writer has the ledger open, and the last one
//! closed cleanly) the file is opened `immutable`: read as it lies, no
//! locks, nothing created. When one exists, a writer is (or was) at work and
//! its `-wal` holds committed rows: the connection reads through it, using
//! the `-shm` beside it.

use std::path::{Path, PathBuf};
use std::time::Duration;

use percent_encoding::{AsciiSet, CONTROLS, utf8_percent_encode};
use rusqlite::{Connection, OpenFlags};

use super::{Ledger, LedgerError, MIGRATIONS, Result, SqliteError};

/// Characters that would end or change a path inside a `file:` URI.
const URI_PATH: &AsciiSet = &CONTROLS.add(b'%').add(b'?').add(b'#').add(b' ');

impl Ledger {
    /// Opens the existing ledger at `path` for reading only; see the module
    /// note. Its schema is not migrated: check [`Ledger::pending_migrations`].
    pub fn open_read_only(path: &Path) -> Result<Ledger> {
        let open_err = |error| LedgerError::Open {
            path: path.to_owned(),
            source: SqliteError::at(error, path),
        };
        let flags = OpenFlags::SQLITE_OPEN_READ_ONLY
            | OpenFlags::SQLITE_OPEN_URI
            | OpenFlags::SQLITE_OPEN_NO_MUTEX;
        let conn = match immutable_uri(path) {
            Some(uri) => Connection::open_with_flags(uri, flags),
            None => Connection::open_with_flags(path, flags),
        }
        .map_err(open_err)?;
        conn.busy_timeout(Duration::from_secs(10))
            .map_err(open_err)?;
        // Reading the header proves the file is a database at all.
        conn.pragma_query_value(None, "user_version", |row| row.get::<_, i64>(0))
            .map_err(open_err)?;
        Ok(Ledger { conn, _lock: None })
    }

    /// How many migrations a writer (`sync`, `run`) would apply to this
    /// ledger before use; 0 when its schema is this build's.
    pub fn pending_migrations(&self) -> Result<usize> {
        let version: i64 = self
            .conn
            .pragma_query_value(None, "user_version", |row| row.get(0))?;
        let version = usize::try_from(version).unwrap_or(0);
        Ok(MIGRATIONS.len().saturating_sub(version))
    }
}

/// `file:PATH?immutable=1` when no `-wal` file lies beside `path` (and the
/// path is UTF-8); `None` to read through the WAL.
fn immutable_uri(path: &Path) -> Option<String> {
    let mut wal = PathBuf::from(path);
    wal.as_mut_os_string().push("-wal");
    if wal.exists() {
        return None;
    }
    let absolute = std::path::absolute(path).ok()?;
    let text = absolute.to_str()?;
    Some(format!(
        "file:{}?immutable=1",
        utf8_percent_encode(text, URI_PATH)
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::test_support::listing;

    #[test]
    fn a_read_only_open_creates_nothing_and_sees_the_rows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("odd name #1?.sqlite3");
        drop(Ledger::open(&path, false).expect("writer"));
        let before = listing(dir.path());
        let bytes = std::fs::read(&path).expect("read");
        let ledger = Ledger::open_read_only(&path).expect("reader");
        assert_eq!(ledger.pending_migrations().expect("version"), 0);
        assert_eq!(ledger.status(10).expect("status").meetings, 0);
        drop(ledger);
        assert_eq!(listing(dir.path()), before, "no -wal or -shm left");
        assert_eq!(std::fs::read(&path).expect("read"), bytes);
    }

    #[test]
    fn a_reader_beside_a_writer_sees_committed_rows() {
        let dir = tempfile::tempdir().expect("tempdir");
        let path = dir.path().join("ledger.sqlite3");
        let writer = Ledger::open(&path, false).expect("writer");
        writer
            .conn
            .execute_batch("PRAGMA user_version = 1")
            .expect("write");
        let reader = Ledger::open_read_only(&path).expect("reader");
        assert_eq!(
            reader.pending_migrations().expect("version"),
            MIGRATIONS.len() - 1
        );
        assert!(
            reader
                .conn
                .execute_batch("PRAGMA user_version = 2")
                .is_err(),
            "read-only"
        );
    }

    #[test]
    fn a_missing_or_foreign_file_is_an_open_error() {
        let dir = tempfile::tempdir().expect("tempdir");
        let missing = dir.path().join("missing.sqlite3");
        assert!(matches!(
            Ledger::open_read_only(&missing),
            Err(LedgerError::Open { .. })
        ));
        assert!(!missing.exists(), "not created");
        let text = dir.path().join("text.sqlite3");
        std::fs::write(&text, "plain text, not SQLite. ".repeat(10)).expect("write");
        let Err(e) = Ledger::open_read_only(&text) else {
            panic!("text is no database")
        };
        let chain = crate::telemetry::error_chain(&e);
        assert!(chain.contains("file is not a database"), "{chain}");
    }
}
