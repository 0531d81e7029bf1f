//! The commands that look at or adjust the ledger and archive without
//! downloading: `status`, `verify`, `retry`. `status` and `verify` open the
//! ledger read-only and never create one: a missing ledger is reported
//! (exit 2), not read as an empty one, which would be a false pass for a
//! compliance check. `verify --repair` and `retry` write.

use std::fmt::Write as _;
use std::time::Duration;

use anyhow::Context as _;
use serde::Serialize;

use super::exit;
use crate::clock::Millis;
use crate::config::Config;
use crate::ledger::{LastEvent, Ledger, LedgerHandle, MeetingRecord, Status};
use crate::pipeline::{archive_reader, open_ledger};
use crate::telemetry::error_chain;

/// `status --json`: the ledger summary plus each meeting.
#[derive(Serialize)]
struct StatusDocument {
    #[serde(flatten)]
    status: Status,
    meeting_list: Vec<MeetingLine>,
    /// The last event the webhook received (`null`: none).
    last_event: Option<LastEvent>,
}

/// A meeting with its lifecycle state.
#[derive(Serialize)]
struct MeetingLine {
    #[serde(flatten)]
    meeting: MeetingRecord,
    state: &'static str,
}

/// Where a meeting stands: `listing_failed`, `not_ready` (no files listed
/// yet), `in_progress`, `has_failures`, `complete` (still re-checked for new
/// files) or `settled` (complete for longer than `poll.recheck_for`; no
/// longer polled).
fn meeting_state(m: &MeetingRecord, recheck: Duration, now: Millis) -> &'static str {
    if m.deleted_from_cloud_at.is_some() {
        "deleted_from_cloud"
    } else if m.given_up_at.is_some() {
        "gave_up"
    } else if m.last_poll_error.is_some() {
        "listing_failed"
    } else if m.files_total == 0 && m.transcoding {
        "transcoding"
    } else if m.files_total == 0 {
        "not_ready"
    } else if let Some(since) = m.complete_since {
        if since + recheck < now {
            "settled"
        } else {
            "complete"
        }
    } else if m.files_failed > 0 {
        "has_failures"
    } else {
        "in_progress"
    }
}

/// `status`: prints the ledger's summary (JSON with `json`). A ledger that
/// does not exist is an error (exit 2), and none is created.
pub async fn status(config: &Config, json: bool) -> anyhow::Result<u8> {
    if ledger_missing(config) {
        return Ok(exit::CONFIG);
    }
    let ledger = open_reader(config)?;
    let (status, meetings) = ledger.call(|l| Ok((l.status(10)?, l.meetings()?))).await?;
    let last_event = ledger.call(|l| l.last_event()).await?;
    let recheck = config.poll.recheck_for;
    let now = Millis::now();
    let meetings: Vec<MeetingLine> = meetings
        .into_iter()
        .map(|meeting| MeetingLine {
            state: meeting_state(&meeting, recheck, now),
            meeting,
        })
        .collect();
    if json {
        let doc = StatusDocument {
            status,
            meeting_list: meetings,
            last_event,
        };
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print!("{}", render_status(&status, &meetings));
        print!(
            "{}",
            render_last_event(last_event.as_ref(), config.webhook.enabled)
        );
    }
    Ok(exit::OK)
}

fn render_status(status: &Status, meetings: &[MeetingLine]) -> String {
    let f = &status.files;
    let mut out = String::new();
    let _ = writeln!(out, "meetings: {}", status.meetings);
    let _ = writeln!(
        out,
        "files:    {} done, {} pending, {} downloading, {} failed",
        f.done, f.pending, f.downloading, f.failed
    );
    let _ = writeln!(out, "archived: {} bytes", status.bytes_archived);
    let last_poll = status.last_successful_poll.map_or_else(
        || "never".to_owned(),
        |at| at.to_utc().format("%Y-%m-%d %H:%M:%S UTC").to_string(),
    );
    let _ = writeln!(out, "last successful poll: {last_poll}");
    for c in &status.conditions {
        let since = c.since.to_utc().format("%Y-%m-%d %H:%M:%S UTC");
        let _ = writeln!(out, "NOW: {} since {since}: {}", c.name, c.detail);
    }
    if status.length_unconfirmed > 0 {
        let _ = writeln!(
            out,
            "warning: {} archived file(s) have a length nothing could confirm (length_unconfirmed in their meeting.json)",
            status.length_unconfirmed
        );
    }
    for MeetingLine { meeting: m, state } in meetings {
        let _ = writeln!(
            out,
            "  {}  {}/{} files  {:<14} {}",
            m.conf_uuid,
            m.files_done,
            m.files_total,
            state,
            m.subject.as_deref().unwrap_or("")
        );
        if let Some(error) = &m.last_poll_error {
            let _ = writeln!(out, "      last listing error: {error}");
        }
        if let Some(at) = m.deleted_from_cloud_at {
            let at = at.to_utc().format("%Y-%m-%d %H:%M:%S UTC");
            let _ = writeln!(out, "      deleted from the cloud at {at}");
        } else if let Some(hold) = &m.retention_hold {
            let _ = writeln!(out, "      kept in the cloud: {hold}");
        }
    }
    if !status.last_errors.is_empty() {
        let _ = writeln!(out, "last errors:");
        for e in &status.last_errors {
            let _ = writeln!(
                out,
                "  [{}, {} attempts] {}: {}",
                e.state, e.attempts, e.rel_path, e.error
            );
        }
    }
    out
}

/// The webhook's last event, when there is one or the webhook is on.
fn render_last_event(event: Option<&LastEvent>, enabled: bool) -> String {
    match event {
        Some(e) => format!(
            "last event: {} for {} received {} ({})\n",
            e.event,
            e.conf_uuid.as_deref().unwrap_or("no meeting"),
            e.received_at.to_utc().format("%Y-%m-%d %H:%M:%S UTC"),
            e.outcome.as_deref().unwrap_or("queued")
        ),
        None if enabled => "last event: none received\n".to_owned(),
        None => String::new(),
    }
}

/// The existing ledger of `config`, opened to read only.
fn open_reader(config: &Config) -> anyhow::Result<LedgerHandle> {
    let path = &config.ledger.path;
    let ledger = Ledger::open_read_only(path).context("while opening ledger.path")?;
    if ledger.pending_migrations()? > 0 {
        anyhow::bail!(
            "ledger {} was written by an older meeting-archiver: run sync, or start the \
             daemon, once to upgrade it",
            path.display()
        );
    }
    Ok(LedgerHandle::new(ledger))
}

/// Whether `ledger.path` names nothing; if so, says so on standard error.
fn ledger_missing(config: &Config) -> bool {
    let path = &config.ledger.path;
    // An error (a folder that cannot be searched) is left to the open.
    let missing = matches!(path.try_exists(), Ok(false));
    if missing {
        eprintln!(
            "error: ledger.path {} does not exist: nothing has been archived with this \
             config yet (or ledger.path names the wrong file)",
            path.display()
        );
    }
    missing
}

/// `retry`: failed files go back in the queue with a fresh attempt budget.
pub async fn retry(config: &Config) -> anyhow::Result<u8> {
    let ledger = open_ledger(config, false)?;
    let revived = ledger.call(|l| l.retry_failed(Millis::now())).await?;
    println!("{revived} failed file(s) queued again; the next sync or poll downloads them");
    Ok(exit::OK)
}

/// `verify`: re-reads every archived file and compares size and SHA-256
/// with the ledger (objects in a bucket: by HEAD). With `repair`, bad or
/// missing files are queued for download again (and the ledger is
/// written); without, it is only read.
pub async fn verify(config: &Config, repair: bool) -> anyhow::Result<u8> {
    verify_with(config, repair, false).await
}

/// [`verify`]; with `deep`, objects in a bucket are read back and hashed
/// rather than checked by HEAD (`verify --deep`).
pub async fn verify_with(config: &Config, repair: bool, deep: bool) -> anyhow::Result<u8> {
    if ledger_missing(config) {
        return Ok(exit::CONFIG);
    }
    let ledger = if repair {
        open_ledger(config, false)?
    } else {
        open_reader(config)?
    };
    let archive = archive_reader(config)?;
    let files = ledger.call(|l| l.done_files()).await?;
    let mut problems = 0usize;
    for file in &files {
        let found = if deep {
            archive.digest_deep(&file.rel_path).await
        } else {
            archive.digest(&file.rel_path).await
        };
        let problem = match found {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some("missing".to_owned()),
            Err(e) => Some(format!("unreadable: {}", error_chain(&e))),
            Ok((size, _)) if size != file.size => {
                Some(format!("size {size}, ledger says {}", file.size))
            }
            Ok((_, sha)) if sha != file.sha256 => {
                Some("SHA-256 differs from the ledger".to_owned())
            }
            Ok(_) => None,
        };
        if let Some(problem) = problem {
            problems += 1;
            println!("BAD  {}: {problem}", file.rel_path);
            if repair {
                let (id, reason) = (file.id, format!("verify: {problem}"));
                ledger
                    .call(move |l| l.requeue_done(id, &reason, Millis::now()))
                    .await?;
            }
        }
    }
    println!(
        "verified {} file(s): {} good, {problems} bad",
        files.len(),
        files.len() - problems
    );
    if problems > 0 && repair {
        println!("bad files were queued again; run sync to download them");
    }
    Ok(if problems == 0 {
        exit::OK
    } else {
        exit::FAILED
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::MeetingOrigin;

    fn meeting(total: i64, done: i64, failed: i64, complete_since: Option<i64>) -> MeetingRecord {
        MeetingRecord {
            conf_uuid: "c".into(),
            subject: None,
            origin: MeetingOrigin::Config,
            last_polled_at: Some(Millis::from_unix_ms(1)),
            last_poll_error: None,
            files_total: total,
            files_done: done,
            files_failed: failed,
            complete_since: complete_since.map(Millis::from_unix_ms),
            transcoding: false,
            given_up_at: None,
            deleted_from_cloud_at: None,
            retention_hold: None,
        }
    }

    const RECHECK: Duration = Duration::from_millis(100);

    fn at(ms: i64) -> Millis {
        Millis::from_unix_ms(ms)
    }

    #[test]
    fn the_human_status_shows_the_last_good_poll_and_each_listing_error() {
        let mut failing = meeting(0, 0, 0, None);
        failing.last_poll_error = Some("appauth: authentication refused".into());
        let lines = [MeetingLine {
            meeting: failing,
            state: "listing_failed",
        }];
        let never = render_status(&Status::default(), &lines);
        assert!(never.contains("last successful poll: never"), "{never}");
        assert!(
            never.contains("last listing error: appauth: authentication refused"),
            "{never}"
        );
        let status = Status {
            last_successful_poll: Some(Millis::from_unix_secs(1_700_000_000)),
            ..Status::default()
        };
        let text = render_status(&status, &[]);
        assert!(
            text.contains("last successful poll: 2023-11-14 22:13:20 UTC"),
            "{text}"
        );
    }

    #[test]
    fn meeting_states_follow_the_lifecycle() {
        assert_eq!(
            meeting_state(&meeting(0, 0, 0, None), RECHECK, at(1_000)),
            "not_ready"
        );
        assert_eq!(
            meeting_state(&meeting(3, 1, 0, None), RECHECK, at(1_000)),
            "in_progress"
        );
        assert_eq!(
            meeting_state(&meeting(3, 2, 1, None), RECHECK, at(1_000)),
            "has_failures"
        );
        assert_eq!(
            meeting_state(&meeting(3, 3, 0, Some(950)), RECHECK, at(1_000)),
            "complete"
        );
        assert_eq!(
            meeting_state(&meeting(3, 3, 0, Some(800)), RECHECK, at(1_000)),
            "settled"
        );
        let mut failed = meeting(3, 3, 0, None);
        failed.last_poll_error = Some("HTTP 500".into());
        assert_eq!(meeting_state(&failed, RECHECK, at(1_000)), "listing_failed");
        let mut transcoding = meeting(0, 0, 0, None);
        transcoding.transcoding = true;
        assert_eq!(
            meeting_state(&transcoding, RECHECK, at(1_000)),
            "transcoding"
        );
        transcoding.given_up_at = Some(at(900));
        assert_eq!(meeting_state(&transcoding, RECHECK, at(1_000)), "gave_up");
    }
}
