//! What a person needs to find a meeting in the archive (migration 0009):
//! its facts from the recording list (subject, conference ID, start,
//! duration, scheduler), the folder its files lie in and the layout
//! template that folder follows. The folder is fixed once, when the first
//! file is listed, so that nothing learnt later moves archived files.

use rusqlite::{OptionalExtension, TransactionBehavior, params};

use super::recovery::mark_manifest_stale;
use super::{Ledger, Result};
use crate::clock::Millis;

/// A meeting's facts as the recording list tells them; each may be unknown.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MeetingFacts {
    /// The subject (title).
    pub subject: Option<String>,
    /// The conference ID people dial (not unique: recurring meetings share it).
    pub conf_id: Option<String>,
    /// When the recording started (UTC).
    pub start_time: Option<Millis>,
    /// How long the recording ran, in seconds.
    pub duration_s: Option<i64>,
    /// Who scheduled the meeting.
    pub scheduler: Option<String>,
}

impl MeetingFacts {
    /// Whether the recording list has told anything beyond the subject
    /// (a configured meeting is looked up until it has).
    pub fn found(&self) -> bool {
        self.start_time.is_some() || self.conf_id.is_some()
    }
}

/// Where a meeting lies in the archive and what is known about it.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct MeetingPlace {
    /// Its facts.
    pub facts: MeetingFacts,
    /// Its folder under the archive, once fixed.
    pub folder: Option<String>,
    /// The layout template its files follow, once fixed.
    pub layout: Option<String>,
    /// When it was last looked up in the recording list (configured meetings).
    pub facts_checked_at: Option<Millis>,
}

/// A layout template and since when it applies to new meetings.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct LayoutRecord {
    /// The template (see [`crate::archive::Layout`]).
    pub template: String,
    /// When it became the template for new meetings.
    pub since: Millis,
}

/// Writes facts into `meetings`, keeping what is known where `facts` says
/// nothing; a change the meeting's manifest shows marks it stale. Runs
/// inside the caller's transaction or on its own.
pub(super) fn store_facts(
    conn: &rusqlite::Connection,
    conf_uuid: &str,
    facts: &MeetingFacts,
) -> rusqlite::Result<()> {
    let changed = conn
        .prepare_cached(
            "UPDATE meetings SET subject = coalesce(?2, subject), conf_id = coalesce(?3, conf_id),
                 start_time = coalesce(?4, start_time), duration_s = coalesce(?5, duration_s),
                 scheduler = coalesce(?6, scheduler)
             WHERE conf_uuid = ?1
               AND (subject IS NOT coalesce(?2, subject) OR conf_id IS NOT coalesce(?3, conf_id)
                    OR start_time IS NOT coalesce(?4, start_time)
                    OR duration_s IS NOT coalesce(?5, duration_s)
                    OR scheduler IS NOT coalesce(?6, scheduler))",
        )?
        .execute(params![
            conf_uuid,
            facts.subject,
            facts.conf_id,
            facts.start_time,
            facts.duration_s,
            facts.scheduler
        ])?;
    if changed > 0 {
        mark_manifest_stale(conn, conf_uuid, false)?;
    }
    Ok(())
}

/// A folder as a case-insensitive file system compares it: NFC (macOS
/// and SMB may hand back either form), then Unicode lowercase.
fn folder_key(folder: &str) -> String {
    icu_normalizer::ComposingNormalizerBorrowed::new_nfc()
        .normalize(folder)
        .to_lowercase()
}

impl Ledger {
    /// A meeting's facts, folder and layout; `None` if the ledger does not
    /// know it.
    pub fn meeting_place(&self, conf_uuid: &str) -> Result<Option<MeetingPlace>> {
        Ok(self
            .conn
            .query_row(
                "SELECT subject, conf_id, start_time, duration_s, scheduler, folder, layout,
                        facts_checked_at
                 FROM meetings WHERE conf_uuid = ?1",
                [conf_uuid],
                |row| {
                    Ok(MeetingPlace {
                        facts: MeetingFacts {
                            subject: row.get(0)?,
                            conf_id: row.get(1)?,
                            start_time: row.get(2)?,
                            duration_s: row.get(3)?,
                            scheduler: row.get(4)?,
                        },
                        folder: row.get(5)?,
                        layout: row.get(6)?,
                        facts_checked_at: row.get(7)?,
                    })
                },
            )
            .optional()?)
    }

    /// Records the outcome of looking a meeting up in the recording list:
    /// its facts if found, and when it was looked up either way.
    pub fn record_lookup(
        &mut self,
        conf_uuid: &str,
        facts: Option<&MeetingFacts>,
        now: Millis,
    ) -> Result<()> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        if let Some(facts) = facts {
            store_facts(&tx, conf_uuid, facts)?;
        }
        tx.execute(
            "UPDATE meetings SET facts_checked_at = ?2 WHERE conf_uuid = ?1",
            params![conf_uuid, now],
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Fixes a meeting's folder, once: the first of `candidates` no other
    /// meeting holds, with the template `layout`. A meeting whose folder is
    /// fixed keeps it. Returns the folder and layout in force, or `None`
    /// when every candidate is taken (the caller offers one that cannot be).
    pub fn fix_folder(
        &mut self,
        conf_uuid: &str,
        layout: &str,
        candidates: &[String],
    ) -> Result<Option<(String, String)>> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let fixed: Option<(Option<String>, Option<String>)> = tx
            .query_row(
                "SELECT folder, layout FROM meetings WHERE conf_uuid = ?1",
                [conf_uuid],
                |row| Ok((row.get(0)?, row.get(1)?)),
            )
            .optional()?;
        if let Some((Some(folder), layout)) = fixed {
            tx.commit()?;
            return Ok(Some((folder, layout.unwrap_or_default())));
        }
        for candidate in candidates {
            // Taken: the same folder in any case, or one inside the other
            // (a meeting's folder must hold its own files only).
            let key = folder_key(candidate);
            let taken: bool = tx.query_row(
                "SELECT EXISTS (SELECT 1 FROM meetings WHERE folder_key = ?1 OR folder = ?2
                                   OR substr(?1, 1, length(folder_key) + 1) = folder_key || '/'
                                   OR substr(folder_key, 1, length(?1) + 1) = ?1 || '/')",
                [&key, candidate],
                |row| row.get(0),
            )?;
            if taken {
                continue;
            }
            tx.execute(
                "UPDATE meetings SET folder = ?2, folder_key = ?3, layout = ?4 WHERE conf_uuid = ?1",
                params![conf_uuid, candidate, key, layout],
            )?;
            tx.commit()?;
            return Ok(Some((candidate.clone(), layout.to_owned())));
        }
        tx.commit()?;
        Ok(None)
    }

    /// Every layout template this archive has used, oldest first.
    pub fn layouts(&self) -> Result<Vec<LayoutRecord>> {
        let mut stmt = self
            .conn
            .prepare("SELECT template, since FROM layouts ORDER BY id")?;
        let rows = stmt.query_map([], |row| {
            Ok(LayoutRecord {
                template: row.get(0)?,
                since: row.get(1)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// The template for new meetings: the last one recorded, or else
    /// `wanted` (or `default` if none is wanted), recorded now. A `wanted`
    /// template that differs from the last one is recorded as the new
    /// last. Returns the template in force and whether it changed.
    pub fn settle_layout(
        &mut self,
        wanted: Option<&str>,
        default: &str,
        now: Millis,
    ) -> Result<(String, bool)> {
        let tx = self
            .conn
            .transaction_with_behavior(TransactionBehavior::Immediate)?;
        let last: Option<String> = tx
            .query_row(
                "SELECT template FROM layouts ORDER BY id DESC LIMIT 1",
                [],
                |row| row.get(0),
            )
            .optional()?;
        let (template, changed) = match (last, wanted) {
            (Some(last), None) => (last, false),
            (Some(last), Some(wanted)) if last == wanted => (last, false),
            (Some(_), Some(wanted)) => (wanted.to_owned(), true),
            (None, wanted) => (wanted.unwrap_or(default).to_owned(), false),
        };
        let recorded: bool = tx.query_row(
            "SELECT EXISTS (SELECT 1 FROM layouts WHERE id = (SELECT max(id) FROM layouts)
                                                    AND template = ?1)",
            [&template],
            |row| row.get(0),
        )?;
        if !recorded {
            tx.execute(
                "INSERT INTO layouts (template, since) VALUES (?1, ?2)",
                params![template, now],
            )?;
        }
        tx.commit()?;
        Ok((template, changed))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::MeetingOrigin;

    fn ledger_with(meetings: &[&str]) -> Ledger {
        let mut ledger = Ledger::open_in_memory().expect("ledger");
        for m in meetings {
            ledger
                .upsert_meeting(m, MeetingOrigin::Config, None, Millis::from_unix_ms(1))
                .expect("meeting");
        }
        ledger
    }

    #[test]
    fn a_ledger_from_before_layouts_keeps_the_legacy_layout_and_its_folders() {
        use crate::archive::{DEFAULT_LAYOUT, LEGACY_LAYOUT};
        use rusqlite_migration::Migrations;
        let mut conn = rusqlite::Connection::open_in_memory().expect("open");
        Migrations::from_slice(super::super::migrations_before("0009"))
            .to_latest(&mut conn)
            .expect("old schema");
        conn.execute_batch(
            "INSERT INTO meetings (conf_uuid, origin, first_seen_at) VALUES
                 ('old', 'config', 5), ('waiting', 'config', 6);
             INSERT INTO files (conf_uuid, file_type, file_key, url_path, url, rel_path,
                                state, first_seen_at, updated_at)
             VALUES ('old', 'Hd', '0_0.mp4', '/x', 'https://192.0.2.1/x', 'old/Hd/0_0.mp4',
                     'done', 1, 1);",
        )
        .expect("old rows");
        Migrations::from_slice(super::super::MIGRATIONS)
            .to_latest(&mut conn)
            .expect("migrated");
        let mut ledger = Ledger { conn, _lock: None };
        let old = ledger.meeting_place("old").expect("read").expect("known");
        assert_eq!(old.folder.as_deref(), Some("old"));
        assert_eq!(old.layout.as_deref(), Some(LEGACY_LAYOUT));
        let waiting = ledger
            .meeting_place("waiting")
            .expect("read")
            .expect("known");
        assert_eq!(waiting.folder, None, "fixed when its files are listed");
        let (template, changed) = ledger
            .settle_layout(None, DEFAULT_LAYOUT, Millis::from_unix_ms(9))
            .expect("settle");
        assert_eq!((template.as_str(), changed), (LEGACY_LAYOUT, false));
        // A new ledger records nothing until the first start settles it.
        let mut fresh = Ledger::open_in_memory().expect("fresh");
        assert!(fresh.layouts().expect("layouts").is_empty());
        let (template, _) = fresh
            .settle_layout(None, DEFAULT_LAYOUT, Millis::from_unix_ms(9))
            .expect("settle");
        assert_eq!(template, DEFAULT_LAYOUT);
    }

    #[test]
    fn a_folder_is_fixed_once_and_unique() {
        let mut ledger = ledger_with(&["a", "b", "c", "d"]);
        let candidates = ["2026/x".to_owned(), "2026/x (1)".to_owned()];
        let a = ledger.fix_folder("a", "T1", &candidates).expect("fix a");
        assert_eq!(a, Some(("2026/x".to_owned(), "T1".to_owned())));
        // Fixed: another template or candidate changes nothing.
        let again = ledger
            .fix_folder("a", "T2", &["y".to_owned()])
            .expect("again");
        assert_eq!(again, a);
        let b = ledger.fix_folder("b", "T1", &candidates).expect("fix b");
        assert_eq!(b, Some(("2026/x (1)".to_owned(), "T1".to_owned())));
        let none = ledger
            .fix_folder("c", "T1", &candidates)
            .expect("unknown meeting, all taken");
        assert_eq!(none, None);
        // Nor inside another meeting's folder, nor around one.
        for (meeting, nested) in [("c", "2026/x/Hd"), ("d", "2026")] {
            let got = ledger
                .fix_folder(
                    meeting,
                    "T1",
                    &[nested.to_owned(), format!("{meeting}-free")],
                )
                .expect("fix");
            assert_eq!(got, Some((format!("{meeting}-free"), "T1".to_owned())));
        }
        let place = ledger.meeting_place("b").expect("read").expect("known");
        assert_eq!(place.folder.as_deref(), Some("2026/x (1)"));
        assert_eq!(place.layout.as_deref(), Some("T1"));
    }

    #[test]
    fn folders_differing_only_in_case_or_normalisation_are_one_folder() {
        let mut ledger = ledger_with(&["a", "b", "c", "d"]);
        let fix = |l: &mut Ledger, m: &str, c: &[&str]| {
            let c: Vec<String> = c.iter().map(|s| (*s).to_owned()).collect();
            l.fix_folder(m, "T", &c).expect("fix").map(|(f, _)| f)
        };
        assert_eq!(
            fix(&mut ledger, "a", &["2026/2026-11-20 Weekly Sync (912)"]).as_deref(),
            Some("2026/2026-11-20 Weekly Sync (912)")
        );
        // Same day, same conference ID, another case: another folder.
        assert_eq!(
            fix(
                &mut ledger,
                "b",
                &[
                    "2026/2026-11-20 Weekly sync (912)",
                    "2026/2026-11-20 Weekly sync (b)"
                ]
            )
            .as_deref(),
            Some("2026/2026-11-20 Weekly sync (b)")
        );
        // Nesting in another case, and NFD against NFC, count too.
        assert_eq!(
            fix(
                &mut ledger,
                "c",
                &["2026/2026-11-20 WEEKLY SYNC (912)/x", "c"]
            )
            .as_deref(),
            Some("c")
        );
        let nfc = "Caf\u{e9}";
        let nfd = "Cafe\u{301}";
        assert_eq!(fix(&mut ledger, "d", &[nfc]).as_deref(), Some(nfc));
        let mut more = ledger_with(&["e"]);
        assert_eq!(fix(&mut more, "e", &[nfd]).as_deref(), Some(nfd));
        more.upsert_meeting("f", MeetingOrigin::Config, None, Millis::from_unix_ms(1))
            .expect("meeting");
        assert_eq!(
            fix(&mut more, "f", &["CAF\u{c9}", "f"]).as_deref(),
            Some("f")
        );
        assert_eq!(folder_key("Weekly SYNC"), "weekly sync");
    }

    #[test]
    fn a_folder_around_every_candidate_leaves_the_fallback() {
        use crate::archive::{DEFAULT_LAYOUT, Layout};
        let mut ledger = ledger_with(&["old", "new"]);
        // A `{subject}/...` layout gave a meeting titled "2026" that folder.
        ledger
            .fix_folder("old", "{subject}/{type}/{name}", &["2026".to_owned()])
            .expect("old");
        let layout = Layout::parse(DEFAULT_LAYOUT).expect("default");
        let facts = MeetingFacts {
            subject: Some("Standup".to_owned()),
            start_time: Some(Millis::from_unix_ms(1_795_165_500_000)),
            ..MeetingFacts::default()
        };
        let candidates = layout.folder_candidates("new", &facts);
        let got = ledger
            .fix_folder("new", DEFAULT_LAYOUT, &candidates)
            .expect("fix");
        assert_eq!(got.map(|(f, _)| f).as_deref(), Some("_meetings/new"));
    }

    #[test]
    fn lookups_keep_known_facts_and_record_when() {
        let mut ledger = ledger_with(&["a"]);
        let facts = MeetingFacts {
            subject: Some("Weekly".to_owned()),
            conf_id: Some("912".to_owned()),
            start_time: Some(Millis::from_unix_ms(60_000)),
            duration_s: Some(1800),
            scheduler: Some("Ann".to_owned()),
        };
        ledger
            .record_lookup("a", Some(&facts), Millis::from_unix_ms(5))
            .expect("found");
        ledger
            .record_lookup("a", None, Millis::from_unix_ms(9))
            .expect("not found later");
        let place = ledger.meeting_place("a").expect("read").expect("known");
        assert_eq!(place.facts, facts);
        assert!(place.facts.found());
        assert_eq!(place.facts_checked_at, Some(Millis::from_unix_ms(9)));
        assert_eq!(ledger.meeting_place("zz").expect("read"), None);
    }

    #[test]
    fn the_layout_in_force_changes_only_when_asked() {
        let mut ledger = ledger_with(&[]);
        let at = Millis::from_unix_ms;
        assert_eq!(
            ledger.settle_layout(None, "D", at(1)).expect("first"),
            ("D".to_owned(), false)
        );
        assert_eq!(
            ledger.settle_layout(None, "E", at(2)).expect("kept"),
            ("D".to_owned(), false)
        );
        assert_eq!(
            ledger
                .settle_layout(Some("N"), "D", at(3))
                .expect("changed"),
            ("N".to_owned(), true)
        );
        assert_eq!(
            ledger.settle_layout(Some("N"), "D", at(4)).expect("same"),
            ("N".to_owned(), false)
        );
        let templates: Vec<_> = ledger
            .layouts()
            .expect("layouts")
            .into_iter()
            .map(|l| (l.template, l.since))
            .collect();
        assert_eq!(
            templates,
            vec![("D".to_owned(), at(1)), ("N".to_owned(), at(3))]
        );
    }
}
