//! What `status` prints at scale: the summary with human sizes and the
//! meetings that need a person (at most [`ATTENTION_SHOWN`]), every meeting
//! a page at a time (`--meetings`), or one meeting with its files and last
//! errors (`status MEETING_UUID`). JSON documents keep the documented keys
//! and add ISO-8601 times (`*_utc`) beside the millisecond fields.

use std::collections::BTreeMap;
use std::fmt::Write as _;
use std::time::Duration;

use chrono::SecondsFormat;
use serde::Serialize;

use super::exit;
use super::shown::shown;
use crate::clock::Millis;
use crate::ledger::{
    Counters, ErrorLine, FileRecord, LastEvent, Ledger, LedgerHandle, MeetingRecord, MeetingStage,
    Status,
};

/// Meetings needing attention shown by default; the rest are counted.
pub const ATTENTION_SHOWN: i64 = 20;

/// A meeting with nothing listed for this long needs attention.
pub const NOT_READY_FOR_LONG: Duration = Duration::from_secs(24 * 3600);

/// Meetings per page of `status --meetings` unless `--per-page` says.
pub const PER_PAGE: u32 = 100;

/// A time as ISO-8601 in UTC with milliseconds (`2026-11-27T08:00:00.000Z`).
pub fn iso(at: Millis) -> String {
    at.to_utc().to_rfc3339_opts(SecondsFormat::Millis, true)
}

fn iso_opt(at: Option<Millis>) -> Option<String> {
    at.map(iso)
}

/// Bytes in binary units with one decimal: `457.3 GiB`, `512 B`.
pub fn human_size(bytes: i64) -> String {
    crate::pipeline::human_bytes(u64::try_from(bytes).unwrap_or(0))
}

/// Meetings per lifecycle stage at `now`, from the counters: `complete`
/// is split into complete and settled by one index range over the meetings
/// complete since `now - recheck` (the few still re-checked).
pub fn stage_counts(counters: &Counters, recent_complete: i64) -> BTreeMap<&'static str, i64> {
    let mut out: BTreeMap<&'static str, i64> = MeetingStage::ALL
        .into_iter()
        .map(|s| (s.as_str(), 0))
        .collect();
    for (name, n) in counters.stages() {
        if let Some(stage) = MeetingStage::ALL.into_iter().find(|s| s.as_str() == name) {
            out.insert(stage.as_str(), n);
        }
    }
    let complete = out.get("complete").copied().unwrap_or(0);
    out.insert("complete", recent_complete.min(complete));
    out.insert("settled", (complete - recent_complete).max(0));
    out
}

/// A meeting with its lifecycle state and ISO times, as JSON lists it.
#[derive(Serialize)]
pub struct MeetingLine {
    #[serde(flatten)]
    pub meeting: MeetingRecord,
    /// Its stage at the time of the listing (`settled` told apart).
    pub state: MeetingStage,
    last_polled_at_utc: Option<String>,
    complete_since_utc: Option<String>,
    first_seen_at_utc: String,
}

impl MeetingLine {
    /// `meeting` as seen at `now` with re-check period `recheck`.
    pub fn new(meeting: MeetingRecord, recheck: Duration, now: Millis) -> MeetingLine {
        MeetingLine {
            state: meeting.stage.at(meeting.complete_since, recheck, now),
            last_polled_at_utc: iso_opt(meeting.last_polled_at),
            complete_since_utc: iso_opt(meeting.complete_since),
            first_seen_at_utc: iso(meeting.first_seen_at),
            meeting,
        }
    }
}

/// `status --json`: the summary's documented keys, meetings per state, and
/// either the meetings needing attention or (`--meetings`) one page of all.
#[derive(Serialize)]
pub struct StatusDocument {
    #[serde(flatten)]
    pub status: Status,
    pub last_successful_poll_utc: Option<String>,
    pub generated_at: Millis,
    pub generated_at_utc: String,
    pub meeting_states: BTreeMap<&'static str, i64>,
    pub attention: Vec<MeetingLine>,
    pub attention_total: i64,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub meeting_list: Option<Vec<MeetingLine>>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub page: Option<Page>,
    /// The last event the webhook received (`null`: none).
    pub last_event: Option<LastEvent>,
}

/// Where a page of `--meetings` lies.
#[derive(Serialize, Clone, Copy)]
pub struct Page {
    /// This page, from 1.
    pub page: u32,
    /// Meetings per page.
    pub per_page: u32,
    /// Pages in all.
    pub pages: i64,
}

/// `status MEETING_UUID --json`: one meeting, its files and its last errors.
#[derive(Serialize)]
pub struct MeetingDocument {
    #[serde(flatten)]
    pub meeting: MeetingLine,
    pub files: Vec<FileRecord>,
    pub last_errors: Vec<ErrorLine>,
}

/// One meeting's line of the human listing, with its listing error and
/// retention note beneath.
pub fn render_meeting_line(out: &mut String, line: &MeetingLine) {
    let m = &line.meeting;
    let _ = writeln!(
        out,
        "  {}  {}/{} files  {:<14} {}",
        shown(&m.conf_uuid),
        m.files_done,
        m.files_total,
        line.state.as_str(),
        shown(m.subject.as_deref().unwrap_or(""))
    );
    if let Some(error) = &m.last_poll_error {
        let _ = writeln!(out, "      last listing error: {}", shown(error));
    }
    if let Some(at) = m.deleted_from_cloud_at {
        let _ = writeln!(out, "      deleted from the cloud at {}", utc(at));
    } else if let Some(hold) = &m.retention_hold {
        let _ = writeln!(out, "      kept in the cloud: {}", shown(hold));
    }
}

/// `YYYY-MM-DD HH:MM:SS UTC`, as the human status writes times.
pub fn utc(at: Millis) -> String {
    at.to_utc().format("%Y-%m-%d %H:%M:%S UTC").to_string()
}

/// The human view of one meeting.
pub fn render_meeting(doc: &MeetingDocument) -> String {
    let line = &doc.meeting;
    let m = &line.meeting;
    let mut out = String::new();
    let _ = writeln!(out, "meeting:  {}", shown(&m.conf_uuid));
    if let Some(subject) = &m.subject {
        let _ = writeln!(out, "subject:  {}", shown(subject));
    }
    let _ = writeln!(out, "state:    {}", line.state.as_str());
    let _ = writeln!(
        out,
        "files:    {} of {} archived, {} failed",
        m.files_done, m.files_total, m.files_failed
    );
    let _ = writeln!(out, "origin:   {}", m.origin.as_str());
    let _ = writeln!(out, "known since: {}", utc(m.first_seen_at));
    let polled = m.last_polled_at.map_or_else(|| "never".to_owned(), utc);
    let _ = writeln!(out, "last listed: {polled}");
    if let Some(since) = m.complete_since {
        let _ = writeln!(out, "complete since: {}", utc(since));
    }
    if let Some(error) = &m.last_poll_error {
        let _ = writeln!(out, "last listing error: {}", shown(error));
    }
    for f in &doc.files {
        let size = f.size.map_or_else(String::new, |s| human_size(s as i64));
        let _ = writeln!(
            out,
            "  {:<11} {:>10}  {}",
            f.state.as_str(),
            size,
            shown(&f.rel_path)
        );
    }
    if !doc.last_errors.is_empty() {
        let _ = writeln!(out, "last errors:");
        render_errors(&mut out, &doc.last_errors);
    }
    out
}

/// Error lines, one per file.
pub fn render_errors(out: &mut String, errors: &[ErrorLine]) {
    for e in errors {
        let _ = writeln!(
            out,
            "  [{}, {} attempts] {}: {}",
            e.state,
            e.attempts,
            shown(&e.rel_path),
            shown(&e.error)
        );
    }
}

/// What `status` is asked to show.
#[derive(Debug, Clone)]
pub struct StatusOptions {
    /// One JSON document instead of text.
    pub json: bool,
    /// `--meetings`: every meeting, a page at a time.
    pub all_meetings: bool,
    /// The page of `--meetings`, from 1.
    pub page: u32,
    /// Meetings per page.
    pub per_page: u32,
    /// `status MEETING_UUID`: that meeting with its files and last errors.
    pub meeting: Option<String>,
}

impl Default for StatusOptions {
    fn default() -> Self {
        StatusOptions {
            json: false,
            all_meetings: false,
            page: 1,
            per_page: PER_PAGE,
            meeting: None,
        }
    }
}

/// The summary, the meetings needing attention and, with `--meetings`, one
/// page of every meeting: index lookups and counters only.
pub(super) fn summary_document(
    l: &Ledger,
    options: &StatusOptions,
    recheck: Duration,
    now: Millis,
) -> crate::ledger::Result<StatusDocument> {
    let status = l.status(10)?;
    let recent = l.complete_since_count(now.saturating_sub(recheck))?;
    let meeting_states = stage_counts(&l.counters()?, recent);
    let not_ready_before = now.saturating_sub(NOT_READY_FOR_LONG);
    let (attention, attention_total) =
        l.meetings_needing_attention(not_ready_before, ATTENTION_SHOWN)?;
    let line = |m| MeetingLine::new(m, recheck, now);
    let (meeting_list, page) = if options.all_meetings {
        let per_page = options.per_page.max(1);
        let page = options.page.max(1);
        let offset = i64::from(page - 1) * i64::from(per_page);
        let list = l.meetings_page(offset, i64::from(per_page))?;
        let pages = (status.meetings + i64::from(per_page) - 1) / i64::from(per_page);
        let page = Page {
            page,
            per_page,
            pages,
        };
        (Some(list.into_iter().map(line).collect()), Some(page))
    } else {
        (None, None)
    };
    Ok(StatusDocument {
        last_successful_poll_utc: status.last_successful_poll.map(iso),
        generated_at: now,
        generated_at_utc: iso(now),
        status,
        meeting_states,
        attention: attention.into_iter().map(line).collect(),
        attention_total,
        meeting_list,
        page,
        last_event: l.last_event()?,
    })
}

/// `status MEETING_UUID`: one meeting, its files and their last errors;
/// exit 1 when the ledger does not know it.
pub(super) async fn status_of_meeting(
    ledger: &LedgerHandle,
    conf: String,
    recheck: Duration,
    now: Millis,
    json: bool,
) -> anyhow::Result<u8> {
    let found = ledger
        .call(move |l| {
            let Some(meeting) = l.meeting(&conf)? else {
                return Ok(Err(conf));
            };
            let files = l.meeting_files(&conf)?;
            let last_errors = l.meeting_errors(&conf, 10)?;
            Ok(Ok(MeetingDocument {
                meeting: MeetingLine::new(meeting, recheck, now),
                files,
                last_errors,
            }))
        })
        .await?;
    let doc = match found {
        Ok(doc) => doc,
        Err(conf) => {
            eprintln!("error: the ledger knows no meeting {conf:?} (status --meetings lists them)");
            return Ok(exit::FAILED);
        }
    };
    if json {
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print!("{}", render_meeting(&doc));
    }
    Ok(exit::OK)
}

/// The page of `--meetings`, or the meetings needing attention.
pub(super) fn render_meetings(out: &mut String, doc: &StatusDocument) {
    if let (Some(list), Some(page)) = (&doc.meeting_list, doc.page) {
        let _ = writeln!(
            out,
            "meetings, page {} of {} ({} per page; --page N for another):",
            page.page,
            page.pages.max(1),
            page.per_page
        );
        for line in list {
            render_meeting_line(out, line);
        }
        return;
    }
    if doc.attention_total == 0 {
        return;
    }
    let _ = writeln!(out, "needs attention ({}):", doc.attention_total);
    for line in &doc.attention {
        render_meeting_line(out, line);
    }
    let more = doc.attention_total - doc.attention.len() as i64;
    if more > 0 {
        let _ = writeln!(
            out,
            "  and {more} more (status --meetings lists every meeting)"
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn times_are_iso_8601_in_utc() {
        assert_eq!(
            iso(Millis::from_unix_ms(1_700_000_000_123)),
            "2023-11-14T22:13:20.123Z"
        );
    }
}
