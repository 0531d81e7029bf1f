//! Events pushed by the cloud, handled: each queued `record.finish` polls
//! its meeting at once, through the scheduled poll's own path (the
//! meeting's lock, the same listing and token rules). Events queued for one
//! meeting are handled by one listing. A meeting no config names is polled
//! only with discovery on or `webhook.accept_unlisted`; it then stays on
//! the schedule like a discovered one, so a recording still transcoding
//! keeps the not-ready path. A listing that fails leaves its events
//! queued for [`EVENT_RETRY_FOR`] (the daemon retries them after a
//! backoff); after that the schedule alone keeps trying. The latency from
//! event to archived file is measured for the files that were waiting when
//! its listing ran (forgotten when a file fails for good, or after
//! [`EVENT_WAIT_MAX_AGE`]).

use std::collections::{BTreeMap, HashMap};
use std::time::Duration;

use futures_util::StreamExt;
use tracing::Instrument;

use super::poll::PollPlan;
use super::{Engine, EngineError};
use crate::clock::Millis;
use crate::ledger::{EventOutcome, FileId, MeetingOrigin, QueuedEvent};
use crate::telemetry::error_chain;

/// How many meetings named by events are listed at once.
const EVENT_CONCURRENCY: usize = 4;
/// How long events whose listing failed stay queued for another try,
/// counted from the first of them.
pub const EVENT_RETRY_FOR: Duration = Duration::from_secs(3600);
/// How long a file is timed from its event: one still unarchived by then
/// (a meeting left pending for days) is no longer measured.
pub const EVENT_WAIT_MAX_AGE: Duration = Duration::from_secs(24 * 3600);

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
    /// Of those, meetings whose events stay queued for another try.
    pub retrying: usize,
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
            let (outcome, retrying) = outcome?;
            match outcome {
                EventOutcome::Listed => report.listed += 1,
                EventOutcome::NotReady => report.not_ready += 1,
                EventOutcome::Failed => report.failed += 1,
                EventOutcome::Unlisted | EventOutcome::Ignored => report.unlisted += 1,
            }
            report.retrying += usize::from(retrying);
        }
        Ok(report)
    }

    /// One listing for all the events of one meeting; whether its events
    /// stay queued for another try.
    async fn handle_meeting(
        &self,
        conf: String,
        events: Vec<QueuedEvent>,
        plan: &EventPlan,
    ) -> Result<(EventOutcome, bool), EngineError> {
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
            return Ok((EventOutcome::Unlisted, false));
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
                tracing::error!(error = %message, "listing the meeting an event named failed");
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
        let retry = outcome == EventOutcome::Failed
            && Millis::now().duration_since(first) < EVENT_RETRY_FOR;
        if retry {
            tracing::warn!(
                events = events.len(),
                "the event stays queued; it is tried again after a backoff"
            );
            return Ok((outcome, true));
        }
        self.finish_events(ids, outcome).await?;
        tracing::info!(
            outcome = outcome.as_str(),
            events = events.len(),
            "event handled"
        );
        Ok((outcome, false))
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
        note_waits(&mut waits, files, event, Millis::now());
    }

    /// A file failed for good: it is no longer timed.
    pub(super) fn forget_event_wait(&self, file: FileId) {
        self.event_waits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .remove(&file);
    }

    /// How many files are timed from an event now.
    pub fn files_awaited_from_events(&self) -> usize {
        self.event_waits
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .len()
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

/// Adds `files` waiting since `event` to `waits`, and drops the waits
/// older than [`EVENT_WAIT_MAX_AGE`] at `now`.
fn note_waits(waits: &mut HashMap<FileId, Millis>, files: &[FileId], event: Millis, now: Millis) {
    waits.retain(|_, at| now.duration_since(*at) < EVENT_WAIT_MAX_AGE);
    for file in files {
        let at = waits.entry(*file).or_insert(event);
        *at = (*at).min(event);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn waits_keep_the_earliest_event_and_expire_after_the_max_age() {
        let mut waits = HashMap::new();
        let at = |s: u64| Millis::from_unix_ms(1_000_000 + s as i64 * 1000);
        note_waits(
            &mut waits,
            &[FileId::new(1), FileId::new(2)],
            at(10),
            at(10),
        );
        note_waits(&mut waits, &[FileId::new(2), FileId::new(3)], at(5), at(11));
        assert_eq!(waits.get(&FileId::new(1)), Some(&at(10)));
        assert_eq!(
            waits.get(&FileId::new(2)),
            Some(&at(5)),
            "the earliest event"
        );
        let day = EVENT_WAIT_MAX_AGE.as_secs();
        note_waits(&mut waits, &[FileId::new(4)], at(day + 6), at(day + 6));
        let mut left: Vec<_> = waits.keys().copied().collect();
        left.sort();
        assert_eq!(
            left,
            vec![FileId::new(1), FileId::new(4)],
            "those from 5 s are gone"
        );
    }
}
