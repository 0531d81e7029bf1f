//! The ledger's column types and their SQLite conversions (as cargo's
//! `util/sqlite.rs` does): states and origins are stored as the same TEXT
//! the schema's CHECK constraints allow, ids and times as INTEGER. Callers
//! compare enums, never strings; a value the code does not know (a newer
//! archiver wrote it, or a hand edit) is a clear conversion error, not a
//! panic and not a silently skipped row.

use std::fmt;

use rusqlite::types::{FromSql, FromSqlError, FromSqlResult, ToSql, ToSqlOutput, ValueRef};
use serde::Serialize;

use super::AttemptOutcome;
use crate::clock::Millis;

/// A row of `files`. Only the ledger hands these out, so an id always names
/// a file that exists (or existed) in this ledger.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct FileId(i64);

impl FileId {
    /// Wraps a raw row id: for tests and for names derived from ids.
    pub const fn new(raw: i64) -> FileId {
        FileId(raw)
    }

    /// The raw row id.
    pub const fn get(self) -> i64 {
        self.0
    }
}

impl fmt::Display for FileId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        self.0.fmt(f)
    }
}

/// Where a file stands in the download queue: pending → downloading → done
/// | failed. Serialised (JSON) and stored (TEXT) in lower case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FileState {
    /// Waiting for (another) attempt.
    Pending,
    /// Claimed by a worker (or left so by a crash, until the next start).
    Downloading,
    /// Archived and verified.
    Done,
    /// Failed `max_attempts` times; `retry` revives it.
    Failed,
}

impl FileState {
    /// Every state, in queue order: for gauges and listings that show all.
    pub const ALL: [FileState; 4] = [
        FileState::Pending,
        FileState::Downloading,
        FileState::Done,
        FileState::Failed,
    ];

    /// The name in the ledger, in JSON and in metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            FileState::Pending => "pending",
            FileState::Downloading => "downloading",
            FileState::Done => "done",
            FileState::Failed => "failed",
        }
    }

    fn parse(text: &str) -> Option<FileState> {
        FileState::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

impl fmt::Display for FileState {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Why the archiver knows a meeting. Serialised and stored in lower case.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum MeetingOrigin {
    /// Listed in `poll.meetings`.
    Config,
    /// Found by the recording-list API (`poll.discover_days`).
    Discovered,
}

impl MeetingOrigin {
    /// The name in the ledger and in JSON.
    pub const fn as_str(self) -> &'static str {
        match self {
            MeetingOrigin::Config => "config",
            MeetingOrigin::Discovered => "discovered",
        }
    }

    fn parse(text: &str) -> Option<MeetingOrigin> {
        [MeetingOrigin::Config, MeetingOrigin::Discovered]
            .into_iter()
            .find(|o| o.as_str() == text)
    }
}

/// Where a meeting stands in its lifecycle, as the ledger derives it from
/// the meeting's row (the generated column `meetings.stage`). `Settled` is
/// never stored: it is a `Complete` meeting past `poll.recheck_for`, told
/// apart at read time by [`MeetingStage::at`].
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum MeetingStage {
    /// Its recordings were deleted from the cloud by retention.
    DeletedFromCloud,
    /// Discovered, and no file listed for `poll.give_up_after`.
    GaveUp,
    /// The last listing failed.
    ListingFailed,
    /// The recording list says it is still transcoding.
    Transcoding,
    /// No file listed yet.
    NotReady,
    /// Every known file archived; still re-checked for new files.
    Complete,
    /// Complete for longer than `poll.recheck_for`: no longer polled.
    Settled,
    /// Some file failed for good.
    HasFailures,
    /// Files are being archived.
    InProgress,
}

impl MeetingStage {
    /// Every stage, in the order `status` lists them.
    pub const ALL: [MeetingStage; 9] = [
        MeetingStage::ListingFailed,
        MeetingStage::HasFailures,
        MeetingStage::NotReady,
        MeetingStage::Transcoding,
        MeetingStage::InProgress,
        MeetingStage::Complete,
        MeetingStage::Settled,
        MeetingStage::GaveUp,
        MeetingStage::DeletedFromCloud,
    ];

    /// The name in the ledger, in JSON and in metric labels.
    pub const fn as_str(self) -> &'static str {
        match self {
            MeetingStage::DeletedFromCloud => "deleted_from_cloud",
            MeetingStage::GaveUp => "gave_up",
            MeetingStage::ListingFailed => "listing_failed",
            MeetingStage::Transcoding => "transcoding",
            MeetingStage::NotReady => "not_ready",
            MeetingStage::Complete => "complete",
            MeetingStage::Settled => "settled",
            MeetingStage::HasFailures => "has_failures",
            MeetingStage::InProgress => "in_progress",
        }
    }

    /// The stage shown at `now`: a meeting complete since before
    /// `now - recheck` is settled.
    pub fn at(
        self,
        complete_since: Option<Millis>,
        recheck: std::time::Duration,
        now: Millis,
    ) -> MeetingStage {
        match (self, complete_since) {
            (MeetingStage::Complete, Some(since)) if since + recheck < now => MeetingStage::Settled,
            (stage, _) => stage,
        }
    }

    fn parse(text: &str) -> Option<MeetingStage> {
        MeetingStage::ALL.into_iter().find(|s| s.as_str() == text)
    }
}

impl fmt::Display for MeetingStage {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl ToSql for MeetingStage {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}

impl FromSql for MeetingStage {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        text_enum(value, "meeting stage", MeetingStage::parse)
    }
}

/// A TEXT value that names no variant of the type read from it.
#[derive(Debug, thiserror::Error)]
#[error("the ledger holds {value:?}, which is not a known {kind}")]
struct UnknownValue {
    kind: &'static str,
    value: String,
}

/// Reads a TEXT column as an enum through `parse`.
fn text_enum<T>(
    value: ValueRef<'_>,
    kind: &'static str,
    parse: fn(&str) -> Option<T>,
) -> FromSqlResult<T> {
    let text = value.as_str()?;
    parse(text).ok_or_else(|| {
        FromSqlError::other(UnknownValue {
            kind,
            value: text.to_owned(),
        })
    })
}

impl ToSql for FileState {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}

impl FromSql for FileState {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        text_enum(value, "file state", FileState::parse)
    }
}

impl ToSql for MeetingOrigin {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}

impl FromSql for MeetingOrigin {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        text_enum(value, "meeting origin", MeetingOrigin::parse)
    }
}

impl ToSql for AttemptOutcome {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}

impl ToSql for FileId {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(self.0.into())
    }
}

impl FromSql for FileId {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        i64::column_result(value).map(FileId)
    }
}

impl ToSql for Millis {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(self.as_unix_ms().into())
    }
}

impl FromSql for Millis {
    fn column_result(value: ValueRef<'_>) -> FromSqlResult<Self> {
        i64::column_result(value).map(Millis::from_unix_ms)
    }
}
