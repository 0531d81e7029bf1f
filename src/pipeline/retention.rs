//! Retention (`[retention]`, off by default): deleting a meeting's
//! recordings from the cloud once, and only once, the archive is known to
//! hold every one of them. A meeting is deleted only when every file the
//! ledger knows is archived, each archived file still reads back with its
//! size and SHA-256, a fresh listing shows no file we do not hold, and
//! `delete_after` has passed since it became complete. Any doubt and it is
//! kept, with the reason recorded for `status`. The intent is recorded
//! before the DELETE and the outcome after; an intent left by a crash is
//! resolved by listing the meeting again. Archived files are never touched.

use std::collections::{HashMap, HashSet};

use super::Engine;
use super::refresh::identity_key;
use crate::clock::Millis;
use crate::cloud::{CloudError, file_name_of};
use crate::config::RetentionConfig;
use crate::ledger::{FileState, RetentionCandidate};
use crate::telemetry::error_chain;

/// Why a meeting was kept in the cloud.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Hold {
    /// A file failed for good.
    FailedFile,
    /// A file is not archived yet.
    Incomplete,
    /// Complete for less than `delete_after`.
    TooRecent,
    /// An archived file is gone from the archive.
    MissingFile(String),
    /// An archived file no longer matches its size or SHA-256.
    AlteredFile(String),
    /// The cloud lists a file the archive does not hold.
    UnknownFile(String),
    /// The fresh listing failed or listed nothing.
    Listing(String),
    /// `max_deletes_per_poll` was reached.
    CapReached,
    /// `dry_run`: it would have been deleted.
    DryRun,
}

impl Hold {
    /// The metric label.
    pub fn label(&self) -> &'static str {
        match self {
            Hold::FailedFile => "failed_file",
            Hold::Incomplete => "incomplete",
            Hold::TooRecent => "too_recent",
            Hold::MissingFile(_) => "missing_file",
            Hold::AlteredFile(_) => "altered_file",
            Hold::UnknownFile(_) => "unknown_file",
            Hold::Listing(_) => "listing",
            Hold::CapReached => "cap_reached",
            Hold::DryRun => "dry_run",
        }
    }

    /// The reason in words, for `status`.
    pub fn describe(&self) -> String {
        match self {
            Hold::FailedFile => "a file failed for good".to_owned(),
            Hold::Incomplete => "not every file is archived yet".to_owned(),
            Hold::TooRecent => "complete for less than retention.delete_after".to_owned(),
            Hold::MissingFile(path) => format!("archived file {path} is missing"),
            Hold::AlteredFile(path) => format!("archived file {path} differs from the ledger"),
            Hold::UnknownFile(name) => format!("the cloud lists {name}, which is not archived"),
            Hold::Listing(why) => format!("could not confirm the cloud's files: {why}"),
            Hold::CapReached => "retention.max_deletes_per_poll reached".to_owned(),
            Hold::DryRun => "dry run: would be deleted".to_owned(),
        }
    }
}

/// The checks the ledger alone answers: no failed file, every file
/// archived, complete for `delete_after`.
fn precheck(meeting: &RetentionCandidate, plan: &RetentionConfig) -> Result<(), Hold> {
    if meeting.files.iter().any(|f| f.state == FileState::Failed) {
        return Err(Hold::FailedFile);
    }
    let Some(since) = meeting.complete_since else {
        return Err(Hold::Incomplete);
    };
    if since + plan.delete_after > Millis::now() {
        return Err(Hold::TooRecent);
    }
    Ok(())
}

/// What one retention pass did.
#[derive(Debug, Default)]
pub struct RetentionReport {
    /// Meetings deleted from the cloud.
    pub deleted: Vec<String>,
    /// Meetings kept, with why.
    pub held: Vec<(String, Hold)>,
}

impl Engine {
    /// One retention pass (nothing unless `delete_from_cloud`).
    pub async fn retention(&self, plan: &RetentionConfig) -> RetentionReport {
        let mut report = RetentionReport::default();
        if !plan.delete_from_cloud {
            return report;
        }
        self.resolve_deletion_intents().await;
        let candidates = match self.ledger.call(|l| l.retention_candidates()).await {
            Ok(candidates) => candidates,
            Err(e) => {
                tracing::error!(error = %error_chain(&e), "retention: cannot read the meetings");
                return report;
            }
        };
        let mut chosen = Vec::new();
        for meeting in candidates {
            // Cheap checks first; the cap before the costly ones (a fresh
            // listing, re-reading every file), which only a meeting that
            // may really be deleted now is worth.
            let capped = chosen.len() >= plan.max_deletes_per_poll as usize;
            let verdict = match precheck(&meeting, plan) {
                Ok(()) if capped && !plan.dry_run => Err(Hold::CapReached),
                Ok(()) => match self.judge(&meeting).await {
                    Ok(()) if plan.dry_run => Err(Hold::DryRun),
                    other => other,
                },
                Err(hold) => Err(hold),
            };
            let hold = verdict.as_ref().err().map(Hold::describe);
            let conf = meeting.conf_uuid.clone();
            if let Err(e) = self
                .ledger
                .call(move |l| l.set_retention_hold(&conf, hold.as_deref()))
                .await
            {
                tracing::warn!(error = %error_chain(&e), "retention: cannot record why a meeting is kept");
            }
            match verdict {
                Ok(()) => chosen.push(meeting.conf_uuid),
                Err(hold) => {
                    self.metrics.retention(hold.label());
                    if hold == Hold::DryRun {
                        tracing::info!(meeting = %meeting.conf_uuid, "retention (dry run): would delete from the cloud");
                    }
                    report.held.push((meeting.conf_uuid, hold));
                }
            }
        }
        if !chosen.is_empty() {
            report.deleted = self.delete(chosen).await;
        }
        report
    }

    /// Whether a meeting that passed [`precheck`] may be deleted now: the
    /// cloud lists nothing the archive does not hold (asked first: one call
    /// is cheaper than re-reading every file), and every archived file
    /// reads back as recorded (an object: its HEAD, see `Archive::digest`).
    async fn judge(&self, meeting: &RetentionCandidate) -> Result<(), Hold> {
        self.cloud_holds_nothing_more(meeting).await?;
        for file in &meeting.files {
            match self.archive.digest(&file.rel_path).await {
                Err(_) => return Err(Hold::MissingFile(file.rel_path.clone())),
                Ok((size, sha))
                    if Some(size) != file.size || Some(&sha) != file.sha256.as_ref() =>
                {
                    return Err(Hold::AlteredFile(file.rel_path.clone()));
                }
                Ok(_) => {}
            }
        }
        Ok(())
    }

    /// A fresh listing shows no file the archive does not hold.
    async fn cloud_holds_nothing_more(&self, meeting: &RetentionCandidate) -> Result<(), Hold> {
        let listed = self
            .cloud
            .download_urls(&meeting.conf_uuid)
            .await
            .map_err(|e| Hold::Listing(error_chain(&e)))?;
        if listed.is_empty() {
            return Err(Hold::Listing("the cloud lists no file".to_owned()));
        }
        let held: HashSet<(&str, &str)> = meeting
            .files
            .iter()
            .map(|f| (f.file_type.as_str(), f.file_key.as_str()))
            .collect();
        let mut names = HashMap::new();
        for item in &listed {
            let name = item
                .name
                .clone()
                .or_else(|| url::Url::parse(&item.url).ok().map(|u| file_name_of(&u)));
            let key = identity_key(&mut names, &item.file_type, &name.unwrap_or_default());
            if !held.contains(&(item.file_type.as_str(), key.as_str())) {
                return Err(Hold::UnknownFile(format!("{} {key}", item.file_type)));
            }
        }
        Ok(())
    }

    /// Records the intent, deletes, records the outcome; returns the
    /// meetings deleted.
    async fn delete(&self, chosen: Vec<String>) -> Vec<String> {
        let intent = chosen.clone();
        if let Err(e) = self
            .ledger
            .call(move |l| l.record_deletion_intent(&intent, Millis::now()))
            .await
        {
            tracing::error!(error = %error_chain(&e), "retention: cannot record the intent; nothing deleted");
            return Vec::new();
        }
        match self.cloud.delete_recordings(&chosen).await {
            Ok(()) => {
                let done = chosen.clone();
                if let Err(e) = self
                    .ledger
                    .call(move |l| l.record_deleted(&done, Millis::now()))
                    .await
                {
                    // The intent stays: the next pass or start resolves it.
                    tracing::error!(error = %error_chain(&e), "retention: deleted, but the ledger did not take the record");
                    return Vec::new();
                }
                for conf in &chosen {
                    tracing::info!(meeting = %conf, "deleted the meeting's recordings from the cloud");
                    self.metrics.retention("deleted");
                    self.refresh_manifest(conf).await;
                }
                chosen
            }
            Err(e) => {
                tracing::error!(error = %error_chain(&e), "retention: the DELETE failed; kept in the cloud");
                let undo = chosen.clone();
                if let Err(e) = self
                    .ledger
                    .call(move |l| l.clear_deletion_intent(&undo))
                    .await
                {
                    tracing::warn!(error = %error_chain(&e), "retention: cannot withdraw the intent; the next pass resolves it");
                }
                Vec::new()
            }
        }
    }

    /// Resolves deletions whose outcome was never recorded (a crash
    /// between the DELETE and its record): a meeting the cloud no longer
    /// lists (or does not know) is recorded deleted, one it still lists
    /// goes back to the candidates.
    pub async fn resolve_deletion_intents(&self) {
        let Ok(intents) = self.ledger.call(|l| l.deletion_intents()).await else {
            return;
        };
        for conf in intents {
            let gone = match self.cloud.download_urls(&conf).await {
                Ok(urls) => urls.is_empty(),
                Err(CloudError::Rejected {
                    status: 400 | 404, ..
                }) => true,
                Err(e) => {
                    tracing::warn!(meeting = %conf, error = %error_chain(&e), "retention: cannot tell yet whether an interrupted deletion happened");
                    continue;
                }
            };
            let list = vec![conf.clone()];
            let recorded = if gone {
                self.ledger
                    .call(move |l| l.record_deleted(&list, Millis::now()))
                    .await
            } else {
                self.ledger
                    .call(move |l| l.clear_deletion_intent(&list))
                    .await
            };
            match recorded {
                Ok(()) if gone => {
                    tracing::info!(meeting = %conf, "an interrupted deletion had happened; recorded")
                }
                Ok(()) => {
                    tracing::info!(meeting = %conf, "an interrupted deletion had not happened; reconsidered")
                }
                Err(e) => {
                    tracing::warn!(meeting = %conf, error = %error_chain(&e), "retention: cannot record the interrupted deletion's outcome")
                }
            }
        }
    }
}
