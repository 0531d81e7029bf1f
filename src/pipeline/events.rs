//! Events pushed by the cloud, handled: each queued `record.finish` polls
//! its meeting at once, through the scheduled poll's own path (the
//! meeting's lock, the same listing and token rules). Events queued for one
//! meeting are handled by one listing. A meeting no config names is polled
//! only with discovery on or `webhook.accept_unlisted`; it then stays on
//! the schedule like a discovered one, so a recording still transcoding
//! keeps the not-ready path. The latency from event to archived file is
//! measured for the files that were waiting when its listing ran.

use std::collections::BTreeMap;

use futures_util::StreamExt;
use tracing::Instrument;

use super::poll::PollPlan;
use super::{Engine, EngineError};
use crate::clock::Millis;
use crate::ledger::{EventOutcome, FileId, MeetingOrigin, QueuedEvent};
use crate::telemetry::error_chain;

/// How many meetings named by events are listed at once.
const EVENT_CONCURRENCY: usize = 4;

/// Which meetings events may poll: from `[poll]` and `[webhook]`.
#[derive(Clone, Debug, Default)]
pub struct EventPlan {
    /// Configured conference UUIDs.
    pub meetings: Vec<String>,
    /// Discovery is on: any meeting of the enterprise is archived.
    pub discover: bool,
    /// `webhook.accept_unlisted`.
    pub accept_unlisted: bool,
}

impl EventPlan {
    /// The plan of a config.
    pub fn from_config(config: &crate::config::Config) -> EventPlan {
        EventPlan {
            meetings: config.poll.meetings.clone(),
            discover: config.poll.discover_days > 0,
            accept_unlisted: config.webhook.accept_unlisted,
        }
    }
}

/// What handling the queue did, by outcome.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct EventReport {
    /// Meetings listed that showed files.
    pub listed: usize,
    /// Meetings listed that showed none yet.
    pub not_ready: usize,
    /// Meetings whose listing failed.
    pub failed: usize,
    /// Meetings not polled: neither configured nor allowed.
    pub unlisted: usize,
}

impl Engine {
    /// Handles every queued event; returns what became of their meetings.
    pub async fn handle_events(&self, plan: &EventPlan) -> Result<EventReport, EngineError> {
        let queued = self.ledger.call(|l| l.queued_events()).await?;
        let mut by_meeting: BTreeMap<String, Vec<QueuedEvent>> = BTreeMap::new();
        let mut stray = Vec::new();
        for event in queued {
            match event.conf_uuid.clone() {
                Some(conf) => by_meeting.entry(conf).or_default().push(event),
                None => stray.push(event.id),
            }
        }
        if !stray.is_empty() {
            self.finish_events(stray, EventOutcome::Ignored).await?;
        }
        let outcomes: Vec<_> = futures_util::stream::iter(by_meeting)
            .map(|(conf, events)| {
                let span = tracing::error_span!("event", meeting = %conf);
                self.handle_meeting(conf, events, plan).instrument(span)
            })
            .buffer_unordered(EVENT_CONCURRENCY)
            .collect()
            .await;
        self.wake.notify_waiters();
        let mut report = EventReport::default();
        for outcome in outcomes {
            match outcome? {
                EventOutcome::Listed => report.listed += 1,
                EventOutcome::NotReady => report.not_ready += 1,
                EventOutcome::Failed => report.failed += 1,
                EventOutcome::Unlisted | EventOutcome::Ignored => report.unlisted += 1,
            }
        }
        Ok(report)
    }

    /// One listing for all the events of one meeting.
    async fn handle_meeting(
        &self,
        conf: String,
        events: Vec<QueuedEvent>,
        plan: &EventPlan,
    ) -> Result<EventOutcome, EngineError> {
        let ids: Vec<i64> = events.iter().map(|e| e.id).collect();
        let first = events
            .iter()
            .map(|e| e.received_at)
            .min()
            .unwrap_or_else(Millis::now);
        let configured = plan.meetings.contains(&conf);
        if !configured && !plan.discover && !plan.accept_unlisted {
            tracing::info!(
                "record.finish for a meeting poll.meetings does not name; not polled \
                 (turn on poll.discover_days or webhook.accept_unlisted to archive it)"
            );
            self.finish_events(ids, EventOutcome::Unlisted).await?;
            return Ok(EventOutcome::Unlisted);
        }
        let origin = if configured {
            MeetingOrigin::Config
        } else {
            MeetingOrigin::Discovered
        };
        let outcome = match self.list_meeting(&conf, origin, None).await {
            Ok(Some(_)) => EventOutcome::Listed,
            Ok(None) => EventOutcome::NotReady,
            Err(e) => {
                let message = error_chain(&e);
                tracing::error!(error = %message, "listing the meeting an event named failed; the schedule tries again");
                let c = conf.clone();
                self.ledger
                    .call(move |l| l.record_poll_error(&c, &message, Millis::now()))
                    .await?;
                EventOutcome::Failed
            }
        };
        let c = conf.clone();
        let waiting = self
            .ledger
            .call(move |l| {
                l.note_event_meeting(&c, first)?;
                l.unfinished_files(&c)
            })
            .await?;
        self.await_archival(&waiting, first);
        self.finish_events(ids, outcome).await?;
        tracing::info!(
            outcome = outcome.as_str(),
            events = events.len(),
            "event handled"
        );
        Ok(outcome)
    }

    async fn finish_events(&self, ids: Vec<i64>, outcome: EventOutcome) -> Result<(), EngineError> {
        self.ledger
            .call(move |l| l.finish_events(&ids, outcome, Millis::now()))
            .await?;
        Ok(())
    }

    /// Times these files from `event` until they are archived (the earliest
    /// event a file waited for counts).
    fn await_archival(&self, files: &[FileId], event: Millis) {
        let mut waits = self.event_waits.lock().unwrap_or_else(|e| e.into_inner());
        for file in files {
            let at = waits.entry(*file).or_insert(event);
            *at = (*at).min(event);
        }
    }

    /// A file was archived: if it waited for an event, how long it took.
    pub(super) fn archived_after_event(&self, file: FileId) {
        let waited = self
            .event_waits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&file);
        if let Some(event) = waited {
            let took = Millis::now().duration_since(event);
            self.metrics.event_to_archive(took.as_secs_f64());
        }
    }

    /// Meetings events named that the scheduled poll must keep looking at
    /// (a failure is logged; the poll goes on without them).
    pub(super) async fn event_targets(&self, plan: &PollPlan) -> Vec<String> {
        let give_up_before = Millis::now().saturating_sub(plan.give_up_after);
        match self
            .ledger
            .call(move |l| l.event_meetings(give_up_before))
            .await
        {
            Ok(meetings) => meetings,
            Err(e) => {
                tracing::warn!(error = %error_chain(&e), "cannot read the meetings events named; polling without them");
                Vec::new()
            }
        }
    }
}
