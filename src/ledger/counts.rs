//! Counters that cost nothing to read. Triggers (migration 0008) keep the
//! `counts` table and each meeting's file counts in step with every change
//! of `files` and `meetings`, inside the transaction that makes it; so
//! `status` and `/metrics` read a handful of rows however large the ledger.
//! [`Ledger::check_counts`] recomputes them from the rows (`verify --ledger`)
//! and [`Ledger::rebuild_counts`] rewrites them (`verify --ledger --repair`).

use std::collections::BTreeMap;

use rusqlite::TransactionBehavior;
use serde::Serialize;

use super::{Ledger, Result};
use crate::clock::Millis;

/// The statements that recompute every counter from the rows; also the
/// backfill of migration 0008.
pub(super) const REBUILD_COUNTS: &str = include_str!("../../migrations/0008_counts_rebuild.sql");

/// Every counter, read from the `counts` table by name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Counters(BTreeMap<String, i64>);

impl Counters {
    /// The counter `name` (0 when absent).
    pub fn get(&self, name: &str) -> i64 {
        self.0.get(name).copied().unwrap_or(0)
    }

    /// Meetings per stored stage (`complete` not yet split by age).
    pub fn stages(&self) -> impl Iterator<Item = (&str, i64)> {
        self.0
            .iter()
            .filter_map(|(k, v)| Some((k.strip_prefix("meetings.")?, *v)))
    }
}

/// A counter that disagrees with the rows it counts.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
pub struct CountMismatch {
    /// The counter (`files.done`, `bytes_archived`, `meetings.complete`, or
    /// `meeting <uuid> files_done`).
    pub counter: String,
    /// What the counter says.
    pub stored: i64,
    /// What the rows say.
    pub actual: i64,
}

/// How many per-meeting mismatches [`Ledger::check_counts`] names one by one.
const MEETINGS_NAMED: i64 = 20;

impl Ledger {
    /// Every counter of the `counts` table.
    pub fn counters(&self) -> Result<Counters> {
        let mut stmt = self.conn.prepare_cached("SELECT name, n FROM counts")?;
        let rows = stmt.query_map([], |row| Ok((row.get(0)?, row.get(1)?)))?;
        Ok(Counters(rows.collect::<rusqlite::Result<_>>()?))
    }

    /// Complete meetings that became complete at or after `since` (still
    /// re-checked): an index range over the few recent ones, so that
    /// `settled` = `complete` − this costs no scan.
    pub fn complete_since_count(&self, since: Millis) -> Result<i64> {
        Ok(self.conn.query_row(
            // `+stage`: through the index on `complete_since` (the few
            // recent ones), not the one on `stage` (every complete meeting).
            "SELECT count(*) FROM meetings
             WHERE complete_since >= ?1 AND +stage = 'complete'",
            [since],
            |row| row.get(0),
        )?)
    }

    /// Recomputes every counter from the rows (a full scan: for
    /// `verify --ledger` and tests) and returns those that disagree.
    pub fn check_counts(&self) -> Result<Vec<CountMismatch>> {
        let stored = self.counters()?;
        let mut actual: BTreeMap<String, i64> = BTreeMap::new();
        let mut stmt = self.conn.prepare(
            "SELECT 'files.' || state, count(*) FROM files GROUP BY state
             UNION ALL SELECT 'bytes_archived', coalesce(sum(size), 0) FROM files WHERE state = 'done'
             UNION ALL SELECT 'length_unconfirmed', count(*) FROM files
                       WHERE state = 'done' AND length_unconfirmed = 1
             UNION ALL SELECT 'meetings', count(*) FROM meetings
             UNION ALL SELECT 'meetings.' || stage, count(*) FROM meetings GROUP BY stage",
        )?;
        let rows = stmt.query_map([], |row| Ok((row.get::<_, String>(0)?, row.get(1)?)))?;
        for row in rows {
            let (name, n) = row?;
            actual.insert(name, n);
        }
        let mut names: Vec<&String> = stored.0.keys().chain(actual.keys()).collect();
        names.sort();
        names.dedup();
        let mut mismatches: Vec<CountMismatch> = names
            .into_iter()
            .filter_map(|name| {
                let (s, a) = (stored.get(name), actual.get(name).copied().unwrap_or(0));
                (s != a).then(|| CountMismatch {
                    counter: name.clone(),
                    stored: s,
                    actual: a,
                })
            })
            .collect();
        mismatches.extend(self.meeting_count_mismatches()?);
        Ok(mismatches)
    }

    /// Meetings whose own file counts disagree with their files: the first
    /// few by name, then one line with how many there are in all.
    fn meeting_count_mismatches(&self) -> Result<Vec<CountMismatch>> {
        let mut stmt = self.conn.prepare(
            "WITH actual AS (
                 SELECT m.conf_uuid, m.files_total, m.files_done, m.files_failed,
                        count(f.id) AS t,
                        count(f.id) FILTER (WHERE f.state = 'done') AS d,
                        count(f.id) FILTER (WHERE f.state = 'failed') AS x
                 FROM meetings m LEFT JOIN files f ON f.conf_uuid = m.conf_uuid
                 GROUP BY m.conf_uuid)
             SELECT conf_uuid, files_total, t, files_done, d, files_failed, x,
                    count(*) OVER ()
             FROM actual
             WHERE files_total <> t OR files_done <> d OR files_failed <> x
             ORDER BY conf_uuid LIMIT ?1",
        )?;
        let mut out = Vec::new();
        let mut total = 0;
        let mut rows = stmt.query([MEETINGS_NAMED])?;
        while let Some(row) = rows.next()? {
            let conf: String = row.get(0)?;
            total = row.get(7)?;
            for (i, column) in ["files_total", "files_done", "files_failed"]
                .into_iter()
                .enumerate()
            {
                let (stored, actual): (i64, i64) = (row.get(1 + 2 * i)?, row.get(2 + 2 * i)?);
                if stored != actual {
                    out.push(CountMismatch {
                        counter: format!("meeting {conf} {column}"),
                        stored,
                        actual,
                    });
                }
            }
        }
        if total > MEETINGS_NAMED {
            out.push(CountMismatch {
                counter: "meetings with wrong file counts (only the first are named)".into(),
                stored: 0,
                actual: total,
            });
        }
        Ok(out)
    }

    /// Rewrites every counter from the rows, in one transaction.
    pub fn rebuild_counts(&mut self) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        tx.execute_batch(REBUILD_COUNTS)?;
        tx.commit()?;
        Ok(())
    }
}
