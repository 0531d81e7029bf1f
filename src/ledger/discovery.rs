//! Discovered meetings and the discovery watermark (migration 0006): a
//! meeting found by the recording list is recorded at once, with whether
//! it is still transcoding, and polled until it lists files or
//! `poll.give_up_after` passes; discovery resumes from where the last
//! successful one ended.

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::facts::store_facts;
use super::{Ledger, MeetingFacts, Result};
use crate::clock::Millis;

/// A meeting as the recording list shows it.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Discovered {
    /// The conference UUID.
    pub conf_uuid: String,
    /// What the list told about it (subject, start, ...).
    pub facts: MeetingFacts,
    /// `isDecodeFinish` was false: no files yet.
    pub transcoding: bool,
}

/// The watermark of discovery.
const DISCOVERY: &str = "discovery";
/// When a poll last listed every meeting without an error.
pub const POLL_OK: &str = "poll_ok";

impl Ledger {
    /// Records what discovery found with its facts (a configured meeting
    /// stays configured).
    pub fn record_discovered(&mut self, found: &[Discovered], now: Millis) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        for meeting in found {
            tx.execute(
                "INSERT INTO meetings (conf_uuid, origin, first_seen_at, transcoding)
                 VALUES (?1, 'discovered', ?2, ?3)
                 ON CONFLICT (conf_uuid) DO UPDATE SET transcoding = excluded.transcoding",
                params![meeting.conf_uuid, now, meeting.transcoding],
            )?;
            store_facts(&tx, &meeting.conf_uuid, &meeting.facts)?;
        }
        tx.commit()?;
        Ok(())
    }

    /// Discovered meetings to poll, oldest first. Those first seen before
    /// `give_up_before` that never listed a file are given up first (and
    /// counted in the returned number).
    pub fn discovered_to_poll(
        &mut self,
        give_up_before: Millis,
        now: Millis,
    ) -> Result<(Vec<String>, usize)> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let given_up = tx.execute(
            "UPDATE meetings SET given_up_at = ?2
             WHERE origin = 'discovered' AND given_up_at IS NULL AND first_seen_at < ?1
               AND NOT EXISTS (SELECT 1 FROM files f WHERE f.conf_uuid = meetings.conf_uuid)",
            params![give_up_before, now],
        )?;
        let meetings = {
            let mut stmt = tx.prepare(
                "SELECT conf_uuid FROM meetings WHERE origin = 'discovered' AND given_up_at IS NULL
                   AND deleted_from_cloud_at IS NULL
                 ORDER BY first_seen_at, conf_uuid",
            )?;
            let rows = stmt.query_map([], |row| row.get(0))?;
            rows.collect::<rusqlite::Result<Vec<String>>>()?
        };
        tx.commit()?;
        Ok((meetings, given_up))
    }

    /// The end of the last successful discovery, if any.
    pub fn discovery_watermark(&self) -> Result<Option<Millis>> {
        self.mark(DISCOVERY)
    }

    /// Marks discovery complete up to `at`.
    pub fn set_discovery_watermark(&mut self, at: Millis) -> Result<()> {
        self.set_mark(DISCOVERY, at)
    }

    /// The time of the mark `name` ([`POLL_OK`], ...), if set.
    pub fn mark(&self, name: &str) -> Result<Option<Millis>> {
        Ok(self
            .conn
            .query_row("SELECT at FROM watermarks WHERE name = ?1", [name], |row| {
                row.get(0)
            })
            .optional()?)
    }

    /// Sets the mark `name` to `at`.
    pub fn set_mark(&mut self, name: &str, at: Millis) -> Result<()> {
        self.conn.execute(
            "INSERT INTO watermarks (name, at) VALUES (?1, ?2)
             ON CONFLICT (name) DO UPDATE SET at = ?2",
            params![name, at],
        )?;
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::MeetingOrigin;

    fn found(conf: &str, transcoding: bool) -> Discovered {
        Discovered {
            conf_uuid: conf.to_owned(),
            facts: MeetingFacts {
                subject: Some(format!("about {conf}")),
                ..MeetingFacts::default()
            },
            transcoding,
        }
    }

    #[test]
    fn discovered_meetings_are_kept_polled_and_given_up_only_without_files() {
        let mut ledger = Ledger::open_in_memory().expect("ledger");
        let at = Millis::from_unix_ms;
        ledger
            .upsert_meeting("configured", MeetingOrigin::Config, None, at(0))
            .expect("config");
        ledger
            .record_discovered(
                &[
                    found("a", true),
                    found("b", false),
                    found("configured", false),
                ],
                at(10),
            )
            .expect("record");
        let (poll, given_up) = ledger.discovered_to_poll(at(0), at(20)).expect("poll");
        assert_eq!((poll, given_up), (vec!["a".to_owned(), "b".to_owned()], 0));
        // Much later: both never listed a file, so both are given up.
        let (poll, given_up) = ledger.discovered_to_poll(at(100), at(200)).expect("poll");
        assert!(poll.is_empty());
        assert_eq!(given_up, 2);
        let meetings = ledger.meetings().expect("meetings");
        assert!(
            meetings
                .iter()
                .any(|m| m.conf_uuid == "configured" && m.origin == MeetingOrigin::Config)
        );
    }

    #[test]
    fn the_watermark_moves_forward() {
        let mut ledger = Ledger::open_in_memory().expect("ledger");
        assert_eq!(ledger.discovery_watermark().expect("read"), None);
        ledger
            .set_discovery_watermark(Millis::from_unix_ms(5))
            .expect("set");
        ledger
            .set_discovery_watermark(Millis::from_unix_ms(9))
            .expect("set");
        assert_eq!(
            ledger.discovery_watermark().expect("read"),
            Some(Millis::from_unix_ms(9))
        );
    }
}
