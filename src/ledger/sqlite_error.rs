//! What SQLite said, on one line. rusqlite's errors print their cause in
//! their own message and return it from `source()` as well (SQLite's
//! message, then "Error code 14: unable to open database file" again), and
//! rusqlite_migration's do the same with rusqlite's; a failed open also
//! appends the path the ledger error already names. This wrapper prints the
//! message once, with the extended result code, and ends the chain there.

use std::fmt;
use std::path::Path;

/// A rusqlite or rusqlite_migration error, shown once. The original stays
/// available for callers that branch on it. Boxed: every ledger `Result`
/// carries it, and the errors inside are large.
#[derive(Debug)]
pub struct SqliteError(Box<Detail>);

#[derive(Debug)]
struct Detail {
    error: Inner,
    /// A path to drop from the end of SQLite's message: the caller names it.
    named_path: Option<String>,
}

#[derive(Debug)]
enum Inner {
    Query(rusqlite::Error),
    Migration(rusqlite_migration::Error),
}

impl SqliteError {
    /// `error`, for a message that already names `path`.
    pub(super) fn at(error: rusqlite::Error, path: &Path) -> SqliteError {
        SqliteError(Box::new(Detail {
            error: Inner::Query(error),
            named_path: Some(path.display().to_string()),
        }))
    }

    /// A migration's error, for a message that already names the ledger.
    pub(super) fn migration(error: rusqlite_migration::Error) -> SqliteError {
        SqliteError(Box::new(Detail {
            error: Inner::Migration(error),
            named_path: None,
        }))
    }

    /// The rusqlite error, unless a migration failed.
    pub fn rusqlite(&self) -> Option<&rusqlite::Error> {
        match &self.0.error {
            Inner::Query(e) => Some(e),
            Inner::Migration(_) => None,
        }
    }
}

impl From<rusqlite::Error> for SqliteError {
    fn from(error: rusqlite::Error) -> SqliteError {
        SqliteError(Box::new(Detail {
            error: Inner::Query(error),
            named_path: None,
        }))
    }
}

impl fmt::Display for SqliteError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.0.error {
            // The code's own text ("disk I/O error") is the generic form of
            // the message: print the message and the exact code only.
            Inner::Query(rusqlite::Error::SqliteFailure(code, Some(message))) => {
                let suffix = self.0.named_path.as_deref().map(|p| format!(": {p}"));
                let message = suffix
                    .as_deref()
                    .and_then(|s| message.strip_suffix(s))
                    .unwrap_or(message);
                write!(f, "{message} (SQLite error code {})", code.extended_code)
            }
            Inner::Query(e) => e.fmt(f),
            Inner::Migration(e) => e.fmt(f),
        }
    }
}

/// The end of the chain: every variant's message already holds its cause.
impl std::error::Error for SqliteError {}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn an_open_failure_names_its_cause_once_and_not_the_path() {
        let dir = tempfile::tempdir().expect("tempdir");
        let error = rusqlite::Connection::open(dir.path()).expect_err("a folder is no database");
        let shown = SqliteError::at(error, dir.path()).to_string();
        assert_eq!(shown, "unable to open database file (SQLite error code 14)");
    }

    #[test]
    fn a_query_failure_keeps_sqlites_message() {
        let conn = rusqlite::Connection::open_in_memory().expect("memory");
        let error = conn
            .execute("SELECT * FROM nowhere", [])
            .expect_err("no table");
        let shown = SqliteError::from(error).to_string();
        assert!(shown.starts_with("no such table: nowhere"), "{shown}");
        assert_eq!(shown.matches("no such table").count(), 1, "{shown}");
    }
}
