//! The counters (migration 0008): backfilled from old rows, kept exact by
//! every state change, caught when wrong; every query run per poll or per
//! claim is an index lookup; attempts are folded beyond the last few.

use rand::{RngExt, SeedableRng};
use rusqlite_migration::Migrations;

use super::tests::{CONF, at, entry, ledger_with};
use super::*;

fn assert_consistent(ledger: &Ledger, step: &str) {
    let mismatches = ledger.check_counts().expect("check");
    assert!(mismatches.is_empty(), "after {step}: {mismatches:?}");
}

#[test]
fn the_migration_backfills_the_counters_from_existing_rows() {
    let mut conn = rusqlite::Connection::open_in_memory().expect("open");
    Migrations::from_slice(&MIGRATIONS[..7])
        .to_latest(&mut conn)
        .expect("schema 7");
    conn.execute_batch(
        "INSERT INTO meetings (conf_uuid, origin, first_seen_at) VALUES ('a', 'config', 1), ('b', 'config', 2), ('c', 'config', 3);
         INSERT INTO files (conf_uuid, file_type, file_key, url_path, url, rel_path, state, size, first_seen_at, updated_at, length_unconfirmed)
         VALUES ('a', 'Hd', 'x', '/x', 'u', 'a/x', 'done', 100, 1, 1, 1),
                ('a', 'Hd', 'y', '/y', 'u', 'a/y', 'done', 50, 1, 1, 0),
                ('b', 'Hd', 'x', '/x', 'u', 'b/x', 'failed', NULL, 1, 1, 0),
                ('b', 'Sd', 'x', '/x', 'u', 'b/sx', 'pending', NULL, 1, 1, 0);
         UPDATE meetings SET complete_since = 5 WHERE conf_uuid = 'a';
         WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 30)
         INSERT INTO attempts (file_id, started_at, outcome) SELECT 3, i, 'failed' FROM n;",
    )
    .expect("old rows");
    Migrations::from_slice(MIGRATIONS)
        .to_latest(&mut conn)
        .expect("schema 8");
    let ledger = Ledger { conn, _lock: None };
    assert_consistent(&ledger, "the migration");
    let c = ledger.counters().expect("counters");
    assert_eq!(
        (
            c.get("files.done"),
            c.get("files.failed"),
            c.get("files.pending")
        ),
        (2, 1, 1)
    );
    assert_eq!(
        (c.get("bytes_archived"), c.get("length_unconfirmed")),
        (150, 1)
    );
    assert_eq!(c.get("meetings"), 3);
    assert_eq!(
        (
            c.get("meetings.complete"),
            c.get("meetings.has_failures"),
            c.get("meetings.not_ready")
        ),
        (1, 1, 1)
    );
    let b = ledger.meeting("b").expect("read").expect("b");
    assert_eq!((b.files_total, b.files_done, b.files_failed), (2, 0, 1));
    let (kept, pruned): (i64, i64) = ledger
        .conn
        .query_row(
            "SELECT (SELECT count(*) FROM attempts WHERE file_id = 3),
                    (SELECT attempts_pruned FROM files WHERE id = 3)",
            [],
            |r| Ok((r.get(0)?, r.get(1)?)),
        )
        .expect("attempts");
    assert_eq!((kept, pruned), (KEEP_ATTEMPTS, 30 - KEEP_ATTEMPTS));
}

#[test]
fn a_corrupted_counter_is_caught_and_rebuilt() {
    let mut ledger = ledger_with(&[entry("Hd", "/d/0_0.mp4", "t1")]);
    assert_consistent(&ledger, "a poll");
    ledger
        .conn
        .execute_batch(
            "UPDATE counts SET n = n + 7 WHERE name = 'files.pending';
             UPDATE meetings SET files_done = 3;",
        )
        .expect("corrupt");
    let found = ledger.check_counts().expect("check");
    let named: Vec<_> = found.iter().map(|m| m.counter.as_str()).collect();
    assert!(named.contains(&"files.pending"), "{found:?}");
    assert!(
        named.contains(&format!("meeting {CONF} files_done").as_str()),
        "{found:?}"
    );
    let pending = found.iter().find(|m| m.counter == "files.pending");
    assert_eq!(pending.map(|m| (m.stored, m.actual)), Some((8, 1)));
    ledger.rebuild_counts().expect("rebuild");
    assert_consistent(&ledger, "the rebuild");
}

fn random_entries(rng: &mut rand::rngs::StdRng, round: usize) -> Vec<UrlEntry> {
    (0..rng.random_range(0..4))
        .map(|i| {
            let n = rng.random_range(0..6);
            entry(
                ["Hd", "Sd"][i % 2],
                &format!("/d/{n}.mp4"),
                &format!("t{round}-{i}"),
            )
        })
        .collect()
}

/// Random polls, claims, failures, successes, releases, revivals and
/// meeting events over a few meetings: after each, the counters equal a
/// recount from the rows.
#[test]
fn random_state_changes_keep_every_counter_exact() {
    let mut rng = rand::rngs::StdRng::seed_from_u64(12);
    let mut seen = std::collections::BTreeSet::new();
    let mut ledger = Ledger::open_in_memory().expect("open");
    let confs = ["m1", "m2", "m3"];
    for round in 0..400 {
        let now = at(1_000 + round as i64);
        let conf = confs[rng.random_range(0..confs.len())];
        let step = rng.random_range(0..20);
        match step {
            0 | 1 => {
                ledger
                    .upsert_meeting(conf, MeetingOrigin::Config, None, now)
                    .expect("meeting");
                let entries: Vec<UrlEntry> = random_entries(&mut rng, round)
                    .into_iter()
                    .map(|e| UrlEntry {
                        rel_path: format!("{conf}/{}", e.rel_path),
                        rel_path_alt: format!("{conf}/{}", e.rel_path_alt),
                        ..e
                    })
                    .collect();
                ledger.store_urls(conf, &entries, now).expect("store");
            }
            2..=12 => {
                if let Some(file) = ledger.claim_next(now).expect("claim") {
                    match rng.random_range(0..7) {
                        0..=3 => {
                            let done = DoneMark {
                                size: rng.random_range(1..1_000),
                                sha256: "ab",
                                length_confirmed: rng.random_bool(0.8),
                            };
                            ledger.mark_done(file.id, &done, now).expect("done")
                        }
                        4 => ledger.release(file.id, 10, now).expect("release"),
                        _ => {
                            let plan = RetryPlan {
                                error: "boom",
                                next_attempt_at: now,
                                max_attempts: rng.random_range(1..3),
                                partial_bytes: 0,
                            };
                            ledger.schedule_retry(file.id, &plan, now).expect("retry");
                        }
                    }
                }
            }
            13 | 14 => {
                ledger.retry_failed(now).expect("revive");
            }
            15 => {
                if let Some(done) = ledger.done_files().expect("done").first() {
                    ledger
                        .requeue_done(done.id, "verify", now)
                        .expect("requeue");
                }
            }
            16 => ledger
                .record_poll_error(conf, "HTTP 500", now)
                .expect("poll error"),
            17 | 18 => {
                ledger.reset_interrupted(now).expect("reset");
            }
            _ => ledger
                .record_deleted(&[conf.to_owned()], now)
                .expect("deleted"),
        }
        assert_consistent(&ledger, &format!("round {round}, step {step}"));
        let c = ledger.counters().expect("counters");
        seen.extend(
            [
                "files.done",
                "files.failed",
                "files.pending",
                "meetings.complete",
            ]
            .into_iter()
            .filter(|name| c.get(name) > 0),
        );
    }
    assert_eq!(seen.len(), 4, "the walk reached every state: {seen:?}");
}

#[test]
fn the_stored_stage_follows_the_lifecycle() {
    let stage = |l: &Ledger| l.meeting(CONF).expect("read").expect("known").stage;
    let mut ledger = Ledger::open_in_memory().expect("open");
    ledger
        .upsert_meeting(CONF, MeetingOrigin::Config, None, at(1))
        .expect("meeting");
    assert_eq!(stage(&ledger), MeetingStage::NotReady);
    ledger
        .store_urls(
            CONF,
            &[entry("Hd", "/d/0_0.mp4", "t"), entry("Sd", "/d/s.mp4", "u")],
            at(2),
        )
        .expect("store");
    assert_eq!(stage(&ledger), MeetingStage::InProgress);
    let first = ledger.claim_next(at(3)).expect("claim").expect("file");
    let plan = RetryPlan {
        error: "boom",
        next_attempt_at: at(3),
        max_attempts: 1,
        partial_bytes: 0,
    };
    ledger.schedule_retry(first.id, &plan, at(3)).expect("fail");
    assert_eq!(stage(&ledger), MeetingStage::HasFailures);
    ledger.retry_failed(at(4)).expect("revive");
    for _ in 0..2 {
        let file = ledger.claim_next(at(5)).expect("claim").expect("file");
        let done = DoneMark {
            size: 1,
            sha256: "ab",
            length_confirmed: true,
        };
        ledger.mark_done(file.id, &done, at(5)).expect("done");
    }
    assert_eq!(stage(&ledger), MeetingStage::Complete);
    assert_eq!(ledger.complete_since_count(at(5)).expect("recent"), 1);
    assert_eq!(ledger.complete_since_count(at(6)).expect("recent"), 0);
    ledger
        .record_poll_error(CONF, "HTTP 500", at(6))
        .expect("error");
    assert_eq!(stage(&ledger), MeetingStage::ListingFailed);
    let (attention, total) = ledger
        .meetings_needing_attention(at(0), 20)
        .expect("attention");
    assert_eq!((attention.len(), total), (1, 1));
    ledger
        .record_deleted(&[CONF.to_owned()], at(7))
        .expect("deleted");
    assert_eq!(stage(&ledger), MeetingStage::DeletedFromCloud);
    assert_eq!(
        ledger
            .counters()
            .expect("counters")
            .get("meetings.deleted_from_cloud"),
        1
    );
}

#[test]
fn attempts_beyond_the_last_few_are_folded_into_the_file() {
    let mut ledger = ledger_with(&[entry("Hd", "/d/0_0.mp4", "t0")]);
    let file = ledger.claim_next(at(10)).expect("claim").expect("file");
    let rounds = KEEP_ATTEMPTS + 5;
    for i in 0..rounds {
        ledger
            .store_urls(
                CONF,
                &[entry("Hd", "/d/0_0.mp4", &format!("t{i}"))],
                at(20 + i),
            )
            .expect("store");
        let spent = ledger
            .take_token(file.id, at(0), 0, at(20 + i))
            .expect("take")
            .expect("token");
        let end = AttemptEnd {
            outcome: AttemptOutcome::Failed,
            bytes: 10,
            http_status: Some(500),
            error: Some("HTTP 500"),
        };
        ledger
            .finish_attempt(spent.attempt_id, &end, at(21 + i))
            .expect("finish");
    }
    let (rows, pruned, bytes): (i64, i64, i64) = ledger
        .conn
        .query_row(
            "SELECT (SELECT count(*) FROM attempts WHERE file_id = ?1),
                    attempts_pruned, attempt_bytes_pruned FROM files WHERE id = ?1",
            [file.id],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)),
        )
        .expect("attempts");
    assert_eq!((rows, pruned, bytes), (KEEP_ATTEMPTS, 5, 50));
    let newest: i64 = ledger
        .conn
        .query_row("SELECT max(started_at) FROM attempts", [], |r| r.get(0))
        .expect("newest");
    assert_eq!(newest, 20 + rounds - 1, "the newest are kept");
}

/// Every statement the daemon runs per poll or per claim, as the code
/// spells it, with a plan that must not scan `files`, `tokens` or `attempts`.
#[test]
fn per_poll_and_per_claim_queries_are_index_lookups() {
    let hot: &[(&str, &str)] = &[
        ("claim", files::CLAIM_NEXT),
        ("idle worker", files::QUEUE_STATE),
        ("queue depth", status::WAITING_COUNT),
        ("last errors", status::LAST_ERRORS),
        ("completion", meetings::REFRESH_COMPLETION_ONE),
        ("settled meetings", meetings::SETTLED_MEETINGS),
        ("file by key", meetings::FILE_BY_KEY),
        ("file by url", meetings::FILE_BY_URL),
        ("path taken", meetings::PATH_TAKEN),
        ("token", tokens::NEWEST_TOKEN),
        ("fold attempts", tokens::FOLD_ATTEMPTS),
        ("prune attempts", tokens::PRUNE_ATTEMPTS),
        ("counters", "SELECT name, n FROM counts"),
    ];
    let ledger = ledger_with(&[entry("Hd", "/d/0_0.mp4", "t")]);
    let plan_of = |sql: &str| -> Vec<String> {
        let mut stmt = ledger
            .conn
            .prepare(&format!("EXPLAIN QUERY PLAN {sql}"))
            .unwrap_or_else(|e| panic!("{e}: {sql}"));
        let params: Vec<i64> = vec![0; stmt.parameter_count()];
        stmt.query_map(rusqlite::params_from_iter(params), |row| row.get(3))
            .expect("plan")
            .collect::<rusqlite::Result<_>>()
            .expect("rows")
    };
    // The check has teeth: the old status query scanned.
    let old = plan_of("SELECT state, count(*) FROM files GROUP BY state");
    assert!(old.iter().any(|l| l.starts_with("SCAN files")), "{old:?}");
    for (what, sql) in hot {
        let plan = plan_of(sql);
        for line in &plan {
            for table in ["files", "tokens", "attempts"] {
                assert!(
                    !line.starts_with(&format!("SCAN {table}")),
                    "{what} scans {table}: {plan:?}\n{sql}"
                );
            }
        }
    }
}

#[test]
fn last_errors_put_failed_files_first_then_the_newest() {
    let mut ledger = ledger_with(&[
        entry("Hd", "/d/a.mp4", "ta"),
        entry("Hd", "/d/b.mp4", "tb"),
        entry("Hd", "/d/c.mp4", "tc"),
    ]);
    for (ms, error, max_attempts) in [(100, "a", 1), (200, "b", 5), (300, "c", 5)] {
        let file = ledger.claim_next(at(ms)).expect("claim").expect("file");
        let plan = RetryPlan {
            error,
            next_attempt_at: at(10_000 + ms),
            max_attempts,
            partial_bytes: 0,
        };
        ledger
            .schedule_retry(file.id, &plan, at(ms))
            .expect("retry");
    }
    let errors = |limit| {
        let status = ledger.status(limit).expect("status");
        status
            .last_errors
            .iter()
            .map(|e| e.error.clone())
            .collect::<Vec<_>>()
    };
    assert_eq!(errors(5), ["a", "c", "b"]);
    assert_eq!(errors(2), ["a", "c"]);
    assert!(errors(0).is_empty());
}

#[test]
fn a_meeting_whose_last_listing_failed_is_not_settled_until_it_gives_up() {
    let mut ledger = ledger_with(&[entry("Hd", "/d/0_0.mp4", "t")]);
    let file = ledger.claim_next(at(100)).expect("claim").expect("file");
    let done = DoneMark {
        size: 1,
        sha256: "ab",
        length_confirmed: true,
    };
    ledger.mark_done(file.id, &done, at(100)).expect("done");
    // The last listing inside the re-check period fails.
    ledger
        .record_poll_error(CONF, "HTTP 500", at(150))
        .expect("error");
    let settled = |l: &Ledger, complete_before, failing_before| {
        l.settled_meetings(at(complete_before), at(failing_before))
            .expect("settled")
    };
    assert!(
        settled(&ledger, 200, 50).is_empty(),
        "polled again after its re-check period while its listing fails"
    );
    assert_eq!(
        settled(&ledger, 200, 101),
        vec![CONF.to_owned()],
        "left alone once poll.give_up_after has passed too"
    );
    // A listing that succeeds clears the error and the stage; it settles.
    ledger
        .store_urls(CONF, &[entry("Hd", "/d/0_0.mp4", "t2")], at(210))
        .expect("listed");
    let meeting = ledger.meeting(CONF).expect("read").expect("known");
    assert_eq!(meeting.stage, MeetingStage::Complete);
    assert_eq!(settled(&ledger, 200, 50), vec![CONF.to_owned()]);
    let (_, attention) = ledger
        .meetings_needing_attention(at(0), 20)
        .expect("attention");
    assert_eq!(attention, 0, "no longer needs attention");
}

#[test]
fn the_settled_meetings_are_found_through_indexes() {
    let ledger = ledger_with(&[entry("Hd", "/d/0_0.mp4", "t")]);
    let mut stmt = ledger
        .conn
        .prepare(&format!(
            "EXPLAIN QUERY PLAN {}",
            meetings::SETTLED_MEETINGS
        ))
        .expect("plan");
    let plan: Vec<String> = stmt
        .query_map([0, 0], |row| row.get(3))
        .expect("plan")
        .collect::<rusqlite::Result<_>>()
        .expect("rows");
    for index in ["meetings_complete", "meetings_stage"] {
        assert!(
            plan.iter()
                .any(|l| l.starts_with(&format!("SEARCH meetings USING INDEX {index}"))),
            "{plan:?}"
        );
    }
    assert!(!plan.iter().any(|l| l.starts_with("SCAN")), "{plan:?}");
}
