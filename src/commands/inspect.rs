//! The commands that look at or adjust the ledger and archive without
//! downloading: `status`, `verify`, `retry`. `status` and `verify` open the
//! ledger read-only and never create one: a missing ledger is reported
//! (exit 2), not read as an empty one, which would be a false pass for a
//! compliance check. `verify --repair` and `retry` write.

use std::fmt::Write as _;

use anyhow::Context as _;

use super::exit;
use super::shown::shown;
pub use super::status_view::StatusOptions;
use super::status_view::{
    StatusDocument, human_size, render_errors, render_meetings, status_of_meeting,
    summary_document, utc,
};
use crate::clock::Millis;
use crate::config::Config;
use crate::ledger::{LastEvent, Ledger, LedgerHandle};
use crate::pipeline::{archive_reader, open_ledger};
use crate::telemetry::error_chain;

/// `status`: prints the ledger's summary (JSON with `json`). A ledger that
/// does not exist is an error (exit 2), and none is created. Every count
/// comes from the ledger's counters, so this costs the same on a ledger of
/// a million files as on an empty one.
pub async fn status(config: &Config, options: &StatusOptions) -> anyhow::Result<u8> {
    if ledger_missing(config) {
        return Ok(exit::CONFIG);
    }
    let ledger = open_reader(config)?;
    let recheck = config.poll.recheck_for;
    let now = Millis::now();
    if let Some(conf) = options.meeting.clone() {
        return status_of_meeting(&ledger, conf, recheck, now, options.json).await;
    }
    let opts = options.clone();
    let doc = ledger
        .call(move |l| summary_document(l, &opts, recheck, now))
        .await?;
    if options.json {
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print!("{}", render_status(&doc));
        print!(
            "{}",
            render_last_event(doc.last_event.as_ref(), config.webhook.enabled)
        );
    }
    Ok(exit::OK)
}

fn render_status(doc: &StatusDocument) -> String {
    let status = &doc.status;
    let f = &status.files;
    let mut out = String::new();
    let states: Vec<String> = doc
        .meeting_states
        .iter()
        .filter(|(_, n)| **n > 0)
        .map(|(state, n)| format!("{n} {state}"))
        .collect();
    let states = if states.is_empty() {
        String::new()
    } else {
        format!(" ({})", states.join(", "))
    };
    let _ = writeln!(out, "meetings: {}{states}", status.meetings);
    let _ = writeln!(
        out,
        "files:    {} done, {} pending, {} downloading, {} failed",
        f.done, f.pending, f.downloading, f.failed
    );
    let _ = writeln!(
        out,
        "archived: {} ({} bytes)",
        human_size(status.bytes_archived),
        status.bytes_archived
    );
    let last_poll = status
        .last_successful_poll
        .map_or_else(|| "never".to_owned(), utc);
    let _ = writeln!(out, "last successful poll: {last_poll}");
    for c in &status.conditions {
        let _ = writeln!(
            out,
            "NOW: {} since {}: {}",
            c.name,
            utc(c.since),
            shown(&c.detail)
        );
    }
    if status.length_unconfirmed > 0 {
        let _ = writeln!(
            out,
            "warning: {} archived file(s) have a length nothing could confirm (length_unconfirmed in their meeting.json)",
            status.length_unconfirmed
        );
    }
    render_meetings(&mut out, doc);
    if !status.last_errors.is_empty() {
        let _ = writeln!(out, "last errors:");
        render_errors(&mut out, &status.last_errors);
    }
    out
}

/// The webhook's last event, when there is one or the webhook is on.
fn render_last_event(event: Option<&LastEvent>, enabled: bool) -> String {
    match event {
        Some(e) => format!(
            "last event: {} for {} received {} ({})\n",
            shown(&e.event),
            shown(e.conf_uuid.as_deref().unwrap_or("no meeting")),
            e.received_at.to_utc().format("%Y-%m-%d %H:%M:%S UTC"),
            shown(e.outcome.as_deref().unwrap_or("queued"))
        ),
        None if enabled => "last event: none received\n".to_owned(),
        None => String::new(),
    }
}

/// The existing ledger of `config`, opened to read only.
pub(super) fn open_reader(config: &Config) -> anyhow::Result<LedgerHandle> {
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

/// The ledger to write when repairing, else read-only.
fn open_for(config: &Config, repair: bool) -> anyhow::Result<LedgerHandle> {
    if repair {
        Ok(open_ledger(config, false)?)
    } else {
        open_reader(config)
    }
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
    let ledger = open_for(config, repair)?;
    let archive = archive_reader(config)?;
    let files = ledger.call(|l| l.done_files()).await?;
    let (mut problems, mut unchecked) = (0usize, 0usize);
    for file in &files {
        let found = if deep {
            archive.digest_deep(&file.rel_path).await
        } else {
            archive.digest(&file.rel_path).await
        };
        let problem = match found {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some("missing".to_owned()),
            // An object without the SHA-256 every upload records.
            Err(e) if e.kind() == std::io::ErrorKind::InvalidData => {
                Some(format!("not as archived: {}", error_chain(&e)))
            }
            Err(e) => {
                // Refused, unreachable, unreadable: nothing says the file is
                // bad, so it is not queued again (its cloud copy may be gone).
                unchecked += 1;
                println!(
                    "???  {}: could not check: {}",
                    file.rel_path,
                    error_chain(&e)
                );
                None
            }
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
            println!("BAD  {}: {}", shown(&file.rel_path), shown(&problem));
            if repair {
                let (id, reason) = (file.id, format!("verify: {problem}"));
                ledger
                    .call(move |l| l.requeue_done(id, &reason, Millis::now()))
                    .await?;
            }
        }
    }
    println!(
        "verified {} file(s): {} good, {problems} bad, {unchecked} could not be checked",
        files.len(),
        files.len() - problems - unchecked
    );
    if problems > 0 && repair {
        println!("bad files were queued again; run sync to download them");
    }
    if unchecked > 0 {
        println!("files that could not be checked were left as they are; run verify again");
    }
    Ok(if problems == 0 && unchecked == 0 {
        exit::OK
    } else {
        exit::FAILED
    })
}

/// `verify --ledger`: recomputes the ledger's counters (files per state,
/// bytes, meetings per stage, each meeting's file counts) from its rows and
/// compares; exit 1 with each disagreement named. With `repair`, rewrites
/// them from the rows (and writes the ledger). Reads no archived file.
pub async fn verify_ledger(config: &Config, repair: bool) -> anyhow::Result<u8> {
    if ledger_missing(config) {
        return Ok(exit::CONFIG);
    }
    let ledger = open_for(config, repair)?;
    let mismatches = ledger.call(|l| l.check_counts()).await?;
    for m in &mismatches {
        println!(
            "BAD  counter {}: says {}, the rows say {}",
            m.counter, m.stored, m.actual
        );
    }
    if mismatches.is_empty() {
        println!("ledger counters agree with its rows");
        return Ok(exit::OK);
    }
    if !repair {
        println!(
            "{} counter(s) disagree with the rows; verify --ledger --repair rebuilds them",
            mismatches.len()
        );
        return Ok(exit::FAILED);
    }
    ledger.call(|l| l.rebuild_counts()).await?;
    let left = ledger.call(|l| l.check_counts()).await?;
    if left.is_empty() {
        println!("counters rebuilt from the rows");
        Ok(exit::OK)
    } else {
        println!("{} counter(s) still disagree after the rebuild", left.len());
        Ok(exit::FAILED)
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::commands::status_view::{MeetingLine, iso};
    use crate::ledger::{MeetingOrigin, MeetingRecord, MeetingStage, Status};

    fn meeting(stage: MeetingStage) -> MeetingRecord {
        MeetingRecord {
            conf_uuid: "c".into(),
            subject: None,
            origin: MeetingOrigin::Config,
            last_polled_at: Some(Millis::from_unix_ms(1)),
            last_poll_error: None,
            files_total: 3,
            files_done: 1,
            files_failed: 0,
            complete_since: None,
            transcoding: false,
            given_up_at: None,
            deleted_from_cloud_at: None,
            retention_hold: None,
            stage,
            first_seen_at: Millis::from_unix_ms(1),
        }
    }

    fn document(status: Status, attention: Vec<MeetingRecord>, total: i64) -> StatusDocument {
        let now = Millis::from_unix_ms(1_000);
        let line = |m| MeetingLine::new(m, Duration::from_millis(100), now);
        StatusDocument {
            status,
            last_successful_poll_utc: None,
            generated_at: now,
            generated_at_utc: iso(now),
            meeting_states: Default::default(),
            attention: attention.into_iter().map(line).collect(),
            attention_total: total,
            meeting_list: None,
            page: None,
            last_event: None,
        }
    }

    #[test]
    fn the_human_status_shows_the_last_good_poll_and_each_listing_error() {
        let mut failing = meeting(MeetingStage::ListingFailed);
        failing.last_poll_error = Some("appauth: authentication refused".into());
        let never = render_status(&document(Status::default(), vec![failing], 1));
        assert!(never.contains("last successful poll: never"), "{never}");
        assert!(never.contains("needs attention (1):"), "{never}");
        assert!(
            never.contains("last listing error: appauth: authentication refused"),
            "{never}"
        );
        assert!(!never.contains("more"), "{never}");
        let status = Status {
            last_successful_poll: Some(Millis::from_unix_secs(1_700_000_000)),
            bytes_archived: 491_016_157_388,
            ..Status::default()
        };
        let text = render_status(&document(status, vec![], 0));
        assert!(
            text.contains("last successful poll: 2023-11-14 22:13:20 UTC"),
            "{text}"
        );
        assert!(text.contains("archived: 457.3 GiB"), "{text}");
        assert!(!text.contains("needs attention"), "{text}");
    }

    #[test]
    fn attention_beyond_the_shown_ones_is_counted_not_listed() {
        let shown = vec![meeting(MeetingStage::HasFailures); 20];
        let text = render_status(&document(Status::default(), shown, 57));
        assert!(text.contains("needs attention (57):"), "{text}");
        assert!(text.contains("and 37 more"), "{text}");
        assert_eq!(text.matches("has_failures").count(), 20, "{text}");
    }

    #[test]
    fn a_complete_meeting_settles_after_its_recheck_period() {
        let recheck = Duration::from_millis(100);
        let stage = MeetingStage::Complete;
        let at = Millis::from_unix_ms;
        assert_eq!(
            stage.at(Some(at(950)), recheck, at(1_000)),
            MeetingStage::Complete
        );
        assert_eq!(
            stage.at(Some(at(800)), recheck, at(1_000)),
            MeetingStage::Settled
        );
        assert_eq!(
            MeetingStage::HasFailures.at(Some(at(800)), recheck, at(1_000)),
            MeetingStage::HasFailures
        );
    }
}
