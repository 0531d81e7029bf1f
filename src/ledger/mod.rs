//! The SQLite ledger: every meeting, file, download token and attempt.
//!
//! Design: one [`Ledger`] owns one connection; all SQL of the project lives in
//! this module. Writes that must not interleave (claiming a file, spending a
//! token) run in IMMEDIATE transactions, so several processes or tasks can
//! share the file safely. The schema is a list of plain `.sql` migrations,
//! append-only, versioned by SQLite's `user_version`. A second backend
//! (PostgreSQL for several instances) would re-implement this module's
//! public functions; nothing outside it sees SQL. Columns are read and
//! written as typed values ([`FileState`], [`MeetingOrigin`], [`FileId`],
//! [`Millis`](crate::clock::Millis)), so callers never compare strings.
//!
//! A process that downloads (`sync`, `run`, `demo`, `retry`) also holds an
//! exclusive advisory lock on the ledger file, so two archivers never share
//! one queue: `reset_interrupted` would otherwise hand one's in-flight work
//! to the other.

mod access;
mod counts;
mod discovery;
mod events;
mod facts;
mod files;
mod handle;
mod meetings;
mod readonly;
mod recovery;
mod retention;
mod sqlite_error;
mod staging;
mod status;
mod tokens;
mod types;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_counts;
#[cfg(test)]
mod tests_faults;
#[cfg(test)]
mod tests_tokens;
#[cfg(test)]
mod tests_types;

use std::fs::File;
use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::Connection;
use rusqlite_migration::{M, Migrations};

pub use counts::{CountMismatch, Counters};
pub use discovery::{Discovered, POLL_OK};
pub use events::{EventOutcome, LastEvent, NewEvent, Queued, QueuedEvent};
pub use facts::{LayoutRecord, MeetingFacts, MeetingPlace};
pub use files::{ClaimedFile, DoneFile, DoneMark, FileRecord, RetryPlan};
pub use handle::LedgerHandle;
pub use meetings::{MeetingRecord, UrlEntry};
pub use recovery::Condition;
pub use retention::{HeldFile, RetentionCandidate};
pub use sqlite_error::SqliteError;
pub use staging::Staged;
pub use status::{ErrorLine, FileCounts, Status};
pub use tokens::{AttemptEnd, AttemptOutcome, SpentToken};
pub use types::{FileId, FileState, MeetingOrigin, MeetingStage};

/// Errors of the ledger; each names the ledger file or the operation and
/// leaves the cause to `source()`.
#[derive(Debug, thiserror::Error)]
pub enum LedgerError {
    /// The database could not be opened or migrated.
    #[error("cannot open ledger {}", path.display())]
    Open {
        /// The ledger file.
        path: PathBuf,
        /// What SQLite said.
        source: SqliteError,
    },
    /// A migration failed.
    #[error("cannot migrate ledger {}", path.display())]
    Migrate {
        /// The ledger file.
        path: PathBuf,
        /// What the migration said.
        source: SqliteError,
    },
    /// Another process holds the ledger's lock.
    #[error("ledger {} is in use by another meeting-archiver process", .0.display())]
    Locked(PathBuf),
    /// The ledger file could not be created.
    #[error("cannot create ledger {}", path.display())]
    Create {
        /// The ledger file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Locking the ledger failed for another reason.
    #[error("cannot lock ledger {}", path.display())]
    Lock {
        /// The ledger file.
        path: PathBuf,
        /// The I/O error.
        source: std::io::Error,
    },
    /// Every alternative of a file's path is taken by other files.
    #[error("the path {0} and its numbered alternatives are all taken by other files")]
    PathsTaken(String),
    /// A query failed.
    #[error("ledger query failed")]
    Sql(#[source] SqliteError),
    /// The blocking task running a ledger call died.
    #[error("ledger task failed: {0}")]
    Task(String),
}

// By hand rather than `#[from]`: `?` on rusqlite results goes through the
// wrapper that prints SQLite's message once.
impl From<rusqlite::Error> for LedgerError {
    fn from(error: rusqlite::Error) -> LedgerError {
        LedgerError::Sql(error.into())
    }
}

/// Attempt rows kept per file; older ones are folded into the file's
/// totals (`attempts_pruned`, `attempt_bytes_pruned`). Enough for a person
/// to read a file's recent story in the ledger; migration 0008 uses the same.
pub const KEEP_ATTEMPTS: i64 = 20;

/// Result of ledger calls.
pub type Result<T> = std::result::Result<T, LedgerError>;

/// The migrations, in order: each one's file names (its first names it)
/// beside its SQL, so a test can build the schema as it stood before any one.
macro_rules! migrations {
    ($([$first:literal $(, $more:literal)*]),* $(,)?) => {
        #[cfg(test)]
        const MIGRATION_FILES: &[&str] = &[$($first),*];
        const MIGRATIONS: &[M<'static>] = &[$(M::up(concat!(
            include_str!(concat!("../../migrations/", $first)),
            $(include_str!(concat!("../../migrations/", $more))),*
        ))),*];
    };
}

migrations![
    ["0001_initial.sql"],
    ["0002_daemon.sql"],
    ["0003_faults.sql"],
    ["0004_file_identity.sql"],
    ["0005_access_token.sql"],
    ["0006_discovery.sql"],
    ["0007_retention.sql"],
    // The counters' schema and triggers, then their backfill (the same
    // statements `verify --ledger --repair` runs).
    ["0008_counts.sql", "0008_counts_rebuild.sql"],
    ["0009_browsable_archive.sql"],
    ["0010_webhook.sql"],
    ["0011_object_store.sql"],
];

/// The migrations before the one whose file name starts with `prefix`
/// (e.g. `"0009"`): the schema a ledger had before that change.
#[cfg(test)]
fn migrations_before(prefix: &str) -> &'static [M<'static>] {
    let index = MIGRATION_FILES
        .iter()
        .position(|file| file.starts_with(prefix))
        .unwrap_or_else(|| panic!("no migration {prefix}"));
    &MIGRATIONS[..index]
}

/// The ledger: one SQLite connection and, for writers, the process lock.
pub struct Ledger {
    conn: Connection,
    // Kept open for the lifetime of the connection: the flock is released
    // when this handle closes.
    _lock: Option<File>,
}

impl Ledger {
    /// Opens (creating if needed) the ledger at `path` and applies pending
    /// migrations. With `exclusive`, fails fast if another process holds it.
    pub fn open(path: &Path, exclusive: bool) -> Result<Ledger> {
        let open_err = |error| LedgerError::Open {
            path: path.to_owned(),
            source: SqliteError::at(error, path),
        };
        create_private(path)?;
        let mut conn = Connection::open(path).map_err(open_err)?;
        let lock = if exclusive {
            Some(lock_file(path)?)
        } else {
            None
        };
        configure(&conn).map_err(open_err)?;
        Migrations::from_slice(MIGRATIONS)
            .to_latest(&mut conn)
            .map_err(|error| LedgerError::Migrate {
                path: path.to_owned(),
                source: SqliteError::migration(error),
            })?;
        Ok(Ledger { conn, _lock: lock })
    }

    /// Bounds how long one call waits for another program's lock to
    /// `patience` (`ledger.retry_for`) if that is shorter: the calls of
    /// this process queue behind one connection, so a call that waits
    /// longer than the whole retry is meant to last holds every other
    /// worker (and `/healthz`) past it too.
    pub fn limit_busy_wait(&self, patience: Duration) -> Result<()> {
        self.conn.busy_timeout(patience.min(BUSY_TIMEOUT))?;
        Ok(())
    }

    /// Stops fsyncing commits and keeps the file locked between them on
    /// this connection: for building large test and benchmark ledgers only
    /// (a power cut may lose recent commits, and no other connection can
    /// read the ledger until this one closes). Never used by the archiver.
    pub fn relax_durability_for_bulk_load(&self) -> Result<()> {
        self.conn.pragma_update(None, "synchronous", "OFF")?;
        self.conn
            .pragma_update_and_check(None, "locking_mode", "EXCLUSIVE", |_| Ok(()))?;
        Ok(())
    }

    /// An in-memory ledger, for tests.
    pub fn open_in_memory() -> Result<Ledger> {
        let mut conn = Connection::open_in_memory()?;
        configure(&conn)?;
        Migrations::from_slice(MIGRATIONS)
            .to_latest(&mut conn)
            .map_err(|error| LedgerError::Migrate {
                path: PathBuf::from(":memory:"),
                source: SqliteError::migration(error),
            })?;
        Ok(Ledger { conn, _lock: None })
    }
}

/// The longest one call waits for another program's lock on the ledger.
const BUSY_TIMEOUT: Duration = Duration::from_secs(10);

/// Pragmas every connection needs: WAL for concurrent readers, FULL sync so
/// that a commit (a file marked done, a token marked spent) survives power
/// loss, a busy timeout instead of instant "database is locked", and
/// foreign keys.
fn configure(conn: &Connection) -> rusqlite::Result<()> {
    // The statements of a claim, a poll and an archived file stay compiled
    // (with their counters' triggers) instead of being parsed per call.
    conn.set_prepared_statement_cache_capacity(64);
    conn.busy_timeout(BUSY_TIMEOUT)?;
    conn.pragma_update(None, "journal_mode", "WAL")?;
    conn.pragma_update(None, "synchronous", "FULL")?;
    conn.pragma_update(None, "foreign_keys", "ON")?;
    Ok(())
}

/// Creates a missing ledger file readable by its owner only, whatever the
/// umask: it holds unspent download tokens. SQLite gives its `-wal` and
/// `-shm` files the same mode. An existing ledger keeps its mode (an admin
/// may share it with a group on purpose).
fn create_private(path: &Path) -> Result<()> {
    use std::os::unix::fs::OpenOptionsExt;
    let created = File::options()
        .write(true)
        .create_new(true)
        .mode(0o600)
        .open(path);
    match created {
        Ok(_) => {}
        Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => return Ok(()),
        // The folder is missing or not writable: SQLite says so better.
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(()),
        Err(source) => {
            return Err(LedgerError::Create {
                path: path.to_owned(),
                source,
            });
        }
    }
    Ok(())
}

fn lock_file(path: &Path) -> Result<File> {
    let file = File::options()
        .read(true)
        .write(true)
        .open(path)
        .map_err(|source| LedgerError::Lock {
            path: path.to_owned(),
            source,
        })?;
    match file.try_lock() {
        Ok(()) => Ok(file),
        Err(std::fs::TryLockError::WouldBlock) => Err(LedgerError::Locked(path.to_owned())),
        Err(std::fs::TryLockError::Error(source)) => Err(LedgerError::Lock {
            path: path.to_owned(),
            source,
        }),
    }
}
