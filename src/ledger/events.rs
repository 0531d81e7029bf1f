//! Pushed events (migration 0010): an authentic event is queued here before
//! the webhook answers 200, then handled by a poll of its meeting. The
//! nonces of the last minutes come from the same rows, so a replayed
//! request is refused across restarts too.

use std::time::Duration;

use rusqlite::types::{ToSql, ToSqlOutput};
use rusqlite::{OptionalExtension, TransactionBehavior, params};
use serde::Serialize;

use super::{FileId, Ledger, Result};
use crate::clock::Millis;

/// Handled events are kept this long (for `status` and the record).
const KEEP_HANDLED: Duration = Duration::from_secs(30 * 24 * 3600);

/// An authentic event, as the webhook received it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct NewEvent {
    /// `record.finish`, `meeting.started`, ...
    pub event: String,
    /// The meeting it names, if any.
    pub conf_uuid: Option<String>,
    /// The envelope's nonce.
    pub nonce: String,
    /// The envelope's timestamp (the sender's clock).
    pub sent_at: Millis,
}

/// What [`Ledger::queue_event`] did.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Queued {
    /// Written (durably: the commit returned), with its row id.
    Stored(i64),
    /// Its nonce was seen within the replay window: nothing written.
    Replay,
}

/// How an event ended.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "snake_case")]
pub enum EventOutcome {
    /// Its meeting was listed and showed files.
    Listed,
    /// Its meeting was listed and showed none yet (still transcoding).
    NotReady,
    /// Listing its meeting failed; the schedule tries again.
    Failed,
    /// Its meeting is neither configured nor allowed (`poll.discover_days`,
    /// `webhook.accept_unlisted`): not polled.
    Unlisted,
    /// An event type that asks for nothing (only `record.finish` does).
    Ignored,
}

impl EventOutcome {
    /// The name in the ledger, in JSON and in logs.
    pub const fn as_str(self) -> &'static str {
        match self {
            EventOutcome::Listed => "listed",
            EventOutcome::NotReady => "not_ready",
            EventOutcome::Failed => "failed",
            EventOutcome::Unlisted => "unlisted",
            EventOutcome::Ignored => "ignored",
        }
    }
}

impl ToSql for EventOutcome {
    fn to_sql(&self) -> rusqlite::Result<ToSqlOutput<'_>> {
        Ok(self.as_str().into())
    }
}

/// An event waiting for its poll.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct QueuedEvent {
    /// Its row.
    pub id: i64,
    /// Its type.
    pub event: String,
    /// The meeting it names, if any.
    pub conf_uuid: Option<String>,
    /// When the webhook took it.
    pub received_at: Millis,
}

/// The last event received, for `status`.
#[derive(Clone, Debug, PartialEq, Eq, Serialize)]
pub struct LastEvent {
    /// Its type.
    pub event: String,
    /// The meeting it names, if any.
    pub conf_uuid: Option<String>,
    /// When the webhook took it.
    pub received_at: Millis,
    /// How it ended; `None` while queued.
    pub outcome: Option<String>,
}

impl Ledger {
    /// Queues an authentic event unless its nonce was seen in the last
    /// `replay_window`; an event that asks for nothing (`ignored`) is
    /// stored handled. One IMMEDIATE transaction: two copies of a request
    /// arriving together cannot both pass the nonce check.
    pub fn queue_event(
        &mut self,
        event: &NewEvent,
        ignored: bool,
        replay_window: Duration,
        now: Millis,
    ) -> Result<Queued> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let seen: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM events WHERE nonce = ?1 AND received_at >= ?2)",
            params![event.nonce, now.saturating_sub(replay_window)],
            |row| row.get(0),
        )?;
        if seen {
            return Ok(Queued::Replay);
        }
        tx.execute(
            "DELETE FROM events WHERE handled_at IS NOT NULL AND received_at < ?1",
            [now.saturating_sub(KEEP_HANDLED)],
        )?;
        let (handled_at, outcome) = if ignored {
            (Some(now), Some(EventOutcome::Ignored))
        } else {
            (None, None)
        };
        let id = tx.query_row(
            "INSERT INTO events (event, conf_uuid, nonce, sent_at, received_at, handled_at, outcome)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7) RETURNING id",
            params![
                event.event,
                event.conf_uuid,
                event.nonce,
                event.sent_at,
                now,
                handled_at,
                outcome
            ],
            |row| row.get(0),
        )?;
        tx.commit()?;
        Ok(Queued::Stored(id))
    }

    /// Events waiting for their poll, oldest first.
    pub fn queued_events(&self) -> Result<Vec<QueuedEvent>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, event, conf_uuid, received_at FROM events
             WHERE handled_at IS NULL ORDER BY id",
        )?;
        let rows = stmt.query_map([], |row| {
            Ok(QueuedEvent {
                id: row.get(0)?,
                event: row.get(1)?,
                conf_uuid: row.get(2)?,
                received_at: row.get(3)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Marks events handled with `outcome`.
    pub fn finish_events(&mut self, ids: &[i64], outcome: EventOutcome, now: Millis) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        for id in ids {
            tx.execute(
                "UPDATE events SET handled_at = ?2, outcome = ?3
                 WHERE id = ?1 AND handled_at IS NULL",
                params![id, now, outcome],
            )?;
        }
        tx.commit()?;
        Ok(())
    }

    /// The last event received, if any.
    pub fn last_event(&self) -> Result<Option<LastEvent>> {
        Ok(self
            .conn
            .query_row(
                "SELECT event, conf_uuid, received_at, outcome FROM events
                 ORDER BY id DESC LIMIT 1",
                [],
                |row| {
                    Ok(LastEvent {
                        event: row.get(0)?,
                        conf_uuid: row.get(1)?,
                        received_at: row.get(2)?,
                        outcome: row.get(3)?,
                    })
                },
            )
            .optional()?)
    }

    /// How many events the ledger holds (handled ones are pruned after
    /// 30 days).
    pub fn event_count(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("SELECT count(*) FROM events", [], |row| row.get(0))?)
    }

    /// Remembers that a `record.finish` named this (recorded) meeting at
    /// `at`: it stays on the schedule ([`Ledger::event_meetings`]).
    pub fn note_event_meeting(&mut self, conf_uuid: &str, at: Millis) -> Result<()> {
        self.conn.execute(
            "UPDATE meetings SET event_at = max(coalesce(event_at, 0), ?2) WHERE conf_uuid = ?1",
            params![conf_uuid, at],
        )?;
        Ok(())
    }

    /// Meetings an event named that a scheduled poll must still look at:
    /// not deleted, not given up, and either listing files or named since
    /// `give_up_before` (settled ones are filtered by the poll as usual).
    pub fn event_meetings(&self, give_up_before: Millis) -> Result<Vec<String>> {
        let mut stmt = self.conn.prepare(
            "SELECT conf_uuid FROM meetings m
             WHERE event_at IS NOT NULL AND deleted_from_cloud_at IS NULL AND given_up_at IS NULL
               AND (event_at >= ?1
                    OR EXISTS (SELECT 1 FROM files f WHERE f.conf_uuid = m.conf_uuid))
             ORDER BY event_at, conf_uuid",
        )?;
        let rows = stmt.query_map([give_up_before], |row| row.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Files of a meeting not archived yet (pending or downloading).
    pub fn unfinished_files(&self, conf_uuid: &str) -> Result<Vec<FileId>> {
        let mut stmt = self.conn.prepare(
            "SELECT id FROM files WHERE conf_uuid = ?1 AND state IN ('pending', 'downloading')",
        )?;
        let rows = stmt.query_map([conf_uuid], |row| row.get(0))?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::MeetingOrigin;

    const WINDOW: Duration = Duration::from_secs(600);

    fn event(nonce: &str, conf: &str) -> NewEvent {
        NewEvent {
            event: "record.finish".to_owned(),
            conf_uuid: Some(conf.to_owned()),
            nonce: nonce.to_owned(),
            sent_at: Millis::from_unix_ms(1),
        }
    }

    #[test]
    fn a_nonce_is_refused_within_the_window_and_nothing_is_written() {
        let mut ledger = Ledger::open_in_memory().expect("ledger");
        let at = |s: i64| Millis::from_unix_ms(1_000_000_000 + s * 1000);
        let first = ledger.queue_event(&event("n1", "a"), false, WINDOW, at(0));
        assert!(matches!(first, Ok(Queued::Stored(_))));
        let again = ledger.queue_event(&event("n1", "a"), false, WINDOW, at(599));
        assert_eq!(again.expect("queue"), Queued::Replay);
        assert_eq!(ledger.queued_events().expect("queued").len(), 1);
        // Past the window the nonce is free again (the timestamp check
        // refuses such an old copy before it gets here).
        let later = ledger.queue_event(&event("n1", "a"), false, WINDOW, at(601));
        assert!(matches!(later, Ok(Queued::Stored(_))));
    }

    #[test]
    fn queued_events_wait_until_finished_and_the_last_one_is_shown() {
        let mut ledger = Ledger::open_in_memory().expect("ledger");
        let now = Millis::from_unix_ms(5_000);
        let Queued::Stored(id) = ledger
            .queue_event(&event("n1", "a"), false, WINDOW, now)
            .expect("queue")
        else {
            panic!("stored")
        };
        let other = NewEvent {
            event: "meeting.started".to_owned(),
            ..event("n2", "b")
        };
        ledger
            .queue_event(&other, true, WINDOW, now)
            .expect("queue");
        let queued = ledger.queued_events().expect("queued");
        assert_eq!(queued.len(), 1, "an ignored event is stored handled");
        assert_eq!(queued[0].id, id);
        let last = ledger.last_event().expect("last").expect("some");
        assert_eq!(
            (last.event.as_str(), last.outcome.as_deref()),
            ("meeting.started", Some("ignored"))
        );
        ledger
            .finish_events(&[id], EventOutcome::NotReady, now)
            .expect("finish");
        assert!(ledger.queued_events().expect("queued").is_empty());
        // A month on, handled events are pruned; a queued one never is.
        ledger
            .queue_event(&event("n5", "e"), false, WINDOW, now)
            .expect("queue");
        let later = now.saturating_add(KEEP_HANDLED + Duration::from_secs(1));
        ledger
            .queue_event(&event("n3", "c"), false, WINDOW, later)
            .expect("queue");
        ledger
            .queue_event(&event("n4", "d"), false, WINDOW, later)
            .expect("queue");
        assert_eq!(ledger.event_count().expect("count"), 3);
        assert_eq!(ledger.queued_events().expect("queued").len(), 3);
    }

    #[test]
    fn an_event_meeting_stays_on_the_schedule_until_given_up_without_files() {
        let mut ledger = Ledger::open_in_memory().expect("ledger");
        let at = Millis::from_unix_ms;
        ledger
            .upsert_meeting("a", MeetingOrigin::Discovered, None, at(10))
            .expect("meeting");
        ledger
            .upsert_meeting("quiet", MeetingOrigin::Discovered, None, at(10))
            .expect("meeting");
        ledger.note_event_meeting("a", at(100)).expect("note");
        ledger
            .note_event_meeting("a", at(50))
            .expect("an older one keeps the newer");
        assert_eq!(
            ledger.event_meetings(at(0)).expect("read"),
            vec!["a".to_owned()]
        );
        assert_eq!(
            ledger.event_meetings(at(100)).expect("read"),
            vec!["a".to_owned()]
        );
        assert!(ledger.event_meetings(at(101)).expect("read").is_empty());
    }
}
