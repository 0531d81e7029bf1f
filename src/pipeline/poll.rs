//! Polling: list the download URLs of every configured (and discovered)
//! meeting and store them in the ledger, which queues new files and keeps
//! fresh tokens for the unfinished ones.

use std::collections::HashSet;
use std::time::Duration;

use futures_util::StreamExt;
use tracing::Instrument;

use crate::clock::Millis;
use crate::ledger::{LedgerError, MeetingOrigin};
use crate::pipeline::{Engine, EngineError};
use crate::telemetry::error_chain;

/// What to poll: from `[poll]`.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct PollPlan {
    /// Configured conference UUIDs.
    pub meetings: Vec<String>,
    /// Discovery window in days (0 = off).
    pub discover_days: u32,
    /// How long a complete meeting is still re-checked for new files.
    pub recheck_for: Duration,
    /// How long a discovered meeting that lists no file is polled.
    pub give_up_after: Duration,
    /// Meetings listed at once (`poll.concurrency`).
    pub concurrency: usize,
}

impl From<&crate::config::PollConfig> for PollPlan {
    fn from(poll: &crate::config::PollConfig) -> PollPlan {
        PollPlan {
            meetings: poll.meetings.clone(),
            discover_days: poll.discover_days,
            recheck_for: poll.recheck_for,
            give_up_after: poll.give_up_after,
            concurrency: poll.concurrency,
        }
    }
}

/// A part of a poll that failed; the others went on.
#[derive(Debug, thiserror::Error)]
pub enum PollError {
    /// One meeting's recordings could not be listed.
    #[error("could not list meeting {conf_uuid}")]
    Meeting {
        /// The meeting.
        conf_uuid: String,
        /// Why (the cloud or the ledger).
        source: EngineError,
    },
    /// Discovery (`poll.discover_days`) could not list recent recordings:
    /// only configured and known meetings were polled.
    #[error("could not discover recent recordings (poll.discover_days)")]
    Discovery(#[source] EngineError),
    /// The ledger could not tell which meetings are settled: all were polled.
    #[error("could not read the settled meetings from the ledger")]
    Settled(#[source] LedgerError),
    /// The ledger could not tell which discovered meetings to poll: only
    /// configured ones were.
    #[error("could not read the discovered meetings from the ledger")]
    Discovered(#[source] LedgerError),
}

/// What one poll did.
#[derive(Debug, Default)]
pub struct PollReport {
    /// Meetings listed.
    pub meetings: usize,
    /// Files seen for the first time.
    pub new_files: usize,
    /// Meetings that listed no URLs yet (still recording or transcoding).
    pub not_ready: Vec<String>,
    /// What failed: meetings whose listing failed, discovery, the ledger.
    pub errors: Vec<PollError>,
    /// Complete meetings past their re-check period, not asked about.
    pub settled: usize,
}

impl Engine {
    /// One poll: discovery (when `discover_days > 0`), then the URLs of
    /// every meeting not yet settled (complete for longer than
    /// `recheck_for`, and its last listing succeeded or kept failing for
    /// `give_up_after` beyond that). A failing meeting is reported, not
    /// fatal to the others.
    pub async fn poll(&self, plan: &PollPlan) -> PollReport {
        self.cloud.begin_poll();
        let mut report = PollReport::default();
        let mut targets: Vec<(String, MeetingOrigin, Option<String>)> = plan
            .meetings
            .iter()
            .map(|m| (m.clone(), MeetingOrigin::Config, None))
            .collect();
        // Sets, not lists: ten thousand meetings compared pairwise cost a
        // hundred million string comparisons per poll.
        let mut known: HashSet<String> = plan.meetings.iter().cloned().collect();
        for conf in self.discovered_targets(plan, &mut report).await {
            if known.insert(conf.clone()) {
                targets.push((conf, MeetingOrigin::Discovered, None));
            }
        }
        for conf in self.event_targets(plan).await {
            if !targets.iter().any(|(c, _, _)| *c == conf) {
                targets.push((conf, MeetingOrigin::Discovered, None));
            }
        }
        let (recheck, give_up) = (plan.recheck_for, plan.give_up_after);
        match self
            .ledger
            .call(move |l| {
                let complete_before = Millis::now().saturating_sub(recheck);
                l.settled_meetings(complete_before, complete_before.saturating_sub(give_up))
            })
            .await
        {
            Ok(settled) => {
                let settled: HashSet<String> = settled.into_iter().collect();
                let before = targets.len();
                targets.retain(|(conf, _, _)| !settled.contains(conf));
                report.settled = before - targets.len();
            }
            Err(e) => {
                let error = PollError::Settled(e);
                tracing::error!(error = %error_chain(&error), "polling every meeting, settled or not");
                report.errors.push(error);
            }
        }
        let results: Vec<_> = futures_util::stream::iter(targets)
            .map(|(conf, origin, subject)| async move {
                let span = tracing::error_span!("poll", meeting = %conf);
                let result = self
                    .list_meeting(&conf, origin, subject.as_deref())
                    .instrument(span)
                    .await;
                (conf, result)
            })
            .buffer_unordered(plan.concurrency.max(1))
            .collect()
            .await;
        for (conf, result) in results {
            report.meetings += 1;
            match result {
                Ok(None) => report.not_ready.push(conf),
                Ok(Some(new)) => report.new_files += new,
                Err(e) => {
                    let message = error_chain(&e);
                    tracing::error!(meeting = %conf, error = %message, "listing the meeting's recordings failed");
                    let c = conf.clone();
                    let recorded = self
                        .ledger
                        .call(move |l| l.record_poll_error(&c, &message, Millis::now()))
                        .await;
                    if let Err(unrecorded) = recorded {
                        tracing::warn!(meeting = %conf, error = %error_chain(&unrecorded), "could not record the listing failure in the ledger");
                    }
                    report.errors.push(PollError::Meeting {
                        conf_uuid: conf,
                        source: e,
                    });
                }
            }
        }
        self.cloud.end_poll();
        // Always: besides new files, a poll may follow a `retry` or
        // `verify --repair` run by another process.
        self.wake.notify_waiters();
        let result = if report.errors.is_empty() {
            let marked = self
                .ledger
                .call(|l| l.set_mark(crate::ledger::POLL_OK, Millis::now()))
                .await;
            if let Err(e) = marked {
                tracing::warn!(error = %error_chain(&e), "could not record the successful poll");
            }
            "ok"
        } else {
            "failed"
        };
        self.metrics.poll(result, Millis::now());
        report
    }

    /// Records a meeting and lists its URLs. `None` when it has none yet.
    pub(super) async fn list_meeting(
        &self,
        conf: &str,
        origin: MeetingOrigin,
        subject: Option<&str>,
    ) -> Result<Option<usize>, EngineError> {
        let (c, s) = (conf.to_owned(), subject.map(str::to_owned));
        self.ledger
            .call(move |l| l.upsert_meeting(&c, origin, s.as_deref(), Millis::now()))
            .await?;
        let listed = {
            let lock = self.meeting_lock(conf);
            let _guard = lock.lock().await;
            self.refresh_urls(conf).await?
        };
        // Facts found late go into the manifest (which takes the lock).
        if origin == MeetingOrigin::Config && self.look_up_if_due(conf).await? {
            self.refresh_manifest(conf).await;
        }
        Ok(listed)
    }
}
