//! The commands that look at or adjust the ledger and archive without
//! downloading: `status`, `check-config`, `verify`, `retry`.

use std::fmt::Write as _;

use anyhow::Context;
use serde::Serialize;

use super::exit;
use crate::archive::Archive;
use crate::config::Config;
use crate::ledger::{MeetingRecord, Status, now_ms};
use crate::startup::open_ledger;

/// `status --json`: the ledger summary plus each meeting.
#[derive(Serialize)]
struct StatusDocument {
    #[serde(flatten)]
    status: Status,
    meeting_list: Vec<MeetingRecord>,
}

/// `status`: prints the ledger's summary (JSON with `json`). A ledger that
/// does not exist yet reads as empty and is not created.
pub async fn status(config: &Config, json: bool) -> anyhow::Result<u8> {
    let (status, meetings) = if config.ledger.path.exists() {
        let ledger = open_ledger(config, false)?;
        ledger.call(|l| Ok((l.status(10)?, l.meetings()?))).await?
    } else {
        (Status::default(), Vec::new())
    };
    if json {
        let doc = StatusDocument {
            status,
            meeting_list: meetings,
        };
        println!("{}", serde_json::to_string_pretty(&doc)?);
    } else {
        print!("{}", render_status(&status, &meetings));
    }
    Ok(exit::OK)
}

fn render_status(status: &Status, meetings: &[MeetingRecord]) -> String {
    let f = &status.files;
    let mut out = String::new();
    let _ = writeln!(out, "meetings: {}", status.meetings);
    let _ = writeln!(
        out,
        "files:    {} done, {} pending, {} downloading, {} failed",
        f.done, f.pending, f.downloading, f.failed
    );
    let _ = writeln!(out, "archived: {} bytes", status.bytes_archived);
    for m in meetings {
        let state = if m.last_poll_error.is_some() {
            "listing failed"
        } else if m.files_total == 0 {
            "no files yet"
        } else if m.files_done == m.files_total {
            "complete"
        } else if m.files_failed > 0 {
            "has failures"
        } else {
            "in progress"
        };
        let _ = writeln!(
            out,
            "  {}  {}/{} files  {:<14} {}",
            m.conf_uuid,
            m.files_done,
            m.files_total,
            state,
            m.subject.as_deref().unwrap_or("")
        );
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

/// `check-config`: what was understood (secrets masked), warnings, and
/// whether the folders are usable.
pub fn check_config(config: &Config) -> anyhow::Result<u8> {
    config.check_dirs()?;
    print!("{}", config.summary());
    println!("config OK");
    Ok(exit::OK)
}

/// `retry`: failed files go back in the queue with a fresh attempt budget.
pub async fn retry(config: &Config) -> anyhow::Result<u8> {
    let ledger = open_ledger(config, false)?;
    let revived = ledger.call(|l| l.retry_failed(now_ms())).await?;
    println!("{revived} failed file(s) queued again; the next sync or poll downloads them");
    Ok(exit::OK)
}

/// `verify`: re-reads every archived file and compares size and SHA-256
/// with the ledger. With `repair`, bad or missing files are queued for
/// download again.
pub async fn verify(config: &Config, repair: bool) -> anyhow::Result<u8> {
    let ledger = open_ledger(config, false)?;
    let archive = Archive::open(&config.download.dir).with_context(|| {
        format!(
            "while opening the archive {}",
            config.download.dir.display()
        )
    })?;
    let files = ledger.call(|l| l.done_files()).await?;
    let mut problems = 0usize;
    for file in &files {
        let problem = match archive.digest(&file.rel_path).await {
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Some("missing".to_owned()),
            Err(e) => Some(format!("unreadable: {e}")),
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
                    .call(move |l| l.requeue_done(id, &reason, now_ms()))
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
