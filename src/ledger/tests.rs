//! In-memory tests of every ledger query: files and meetings here, tokens
//! in `tests_tokens`, column types in `tests_types`.

use secrecy::SecretString;

use super::*;
use crate::clock::Millis;

pub(super) const CONF: &str = "51adf610220411eaaae03f22d33cc26b";

pub(super) fn entry(file_type: &str, path: &str, token: &str) -> UrlEntry {
    UrlEntry {
        file_type: file_type.to_owned(),
        url: format!("https://192.0.2.1{path}"),
        url_path: path.to_owned(),
        file_key: path.rsplit('/').next().unwrap_or("x").to_owned(),
        rel_path: format!(
            "{CONF}/{file_type}/{}",
            path.rsplit('/').next().unwrap_or("x")
        ),
        rel_path_alt: format!("{CONF}/{file_type}/alt-{}", path.len()),
        token: SecretString::from(token.to_owned()),
    }
}

/// A time `ms` after the epoch: the tests use small, readable instants.
pub(super) fn at(ms: i64) -> Millis {
    Millis::from_unix_ms(ms)
}

pub(super) fn ledger_with(entries: &[UrlEntry]) -> Ledger {
    let mut ledger = Ledger::open_in_memory().expect("open");
    ledger
        .upsert_meeting(CONF, MeetingOrigin::Config, None, at(1))
        .expect("meeting");
    ledger.store_urls(CONF, entries, at(10)).expect("store");
    ledger
}

#[test]
fn store_urls_queues_each_file_once() {
    let mut ledger = ledger_with(&[
        entry("Hd", "/d/hd/0_0.mp4", "t1"),
        entry("Sd", "/d/sd/0_0.mp4", "t2"),
    ]);
    let again = ledger
        .store_urls(CONF, &[entry("Hd", "/d/hd/0_0.mp4", "t3")], at(20))
        .expect("store again");
    assert_eq!(again, 0, "a known file is not new");
    assert_eq!(ledger.status(5).expect("status").files.pending, 2);
    assert_eq!(ledger.url_generation(CONF).expect("generation"), 2);
}

#[test]
fn clashing_paths_get_the_alternative() {
    let second = UrlEntry {
        file_key: "0_0.mp4#2".to_owned(),
        ..entry("Hd", "/b/0_0.mp4", "t2")
    };
    let ledger = ledger_with(&[entry("Hd", "/a/0_0.mp4", "t1"), second]);
    let files = ledger.meeting_files(CONF).expect("files");
    let paths: Vec<_> = files.iter().map(|f| f.rel_path.as_str()).collect();
    assert_eq!(paths.len(), 2);
    assert_ne!(paths[0], paths[1]);
}

#[test]
fn claim_hands_out_each_file_once() {
    let mut ledger = ledger_with(&[entry("Hd", "/d/0_0.mp4", "t1")]);
    let first = ledger.claim_next(at(100)).expect("claim").expect("a file");
    assert_eq!(first.file_type, "Hd");
    assert!(ledger.claim_next(at(100)).expect("claim").is_none());
    assert_eq!(ledger.status(5).expect("status").files.downloading, 1);
}

#[test]
fn claim_respects_next_attempt_at() {
    let mut ledger = ledger_with(&[entry("Hd", "/d/0_0.mp4", "t1")]);
    let file = ledger.claim_next(at(100)).expect("claim").expect("a file");
    let plan = RetryPlan {
        error: "boom",
        next_attempt_at: at(500),
        max_attempts: 3,
        partial_bytes: 0,
    };
    assert!(
        !ledger
            .schedule_retry(file.id, &plan, at(100))
            .expect("retry")
    );
    assert!(ledger.claim_next(at(499)).expect("claim").is_none());
    assert_eq!(ledger.queue_state().expect("due").0, Some(at(500)));
    let again = ledger.claim_next(at(500)).expect("claim").expect("due now");
    assert_eq!(again.attempts, 1);
}

#[test]
fn a_released_file_keeps_its_partial_data_and_latest_url() {
    let mut ledger = ledger_with(&[entry("Hd", "/d/0_0.mp4", "t1")]);
    let file = ledger.claim_next(at(100)).expect("claim").expect("a file");
    assert_eq!(ledger.queue_state().expect("queue"), (None, 1));
    let mut moved = entry("Hd", "/d/0_0.mp4", "t2");
    moved.url = "https://198.51.100.7/d/0_0.mp4".to_owned();
    ledger.store_urls(CONF, &[moved], at(150)).expect("store");
    assert_eq!(
        ledger.file_url(file.id).expect("url"),
        "https://198.51.100.7/d/0_0.mp4"
    );
    ledger.release(file.id, 2048, at(200)).expect("release");
    assert_eq!(ledger.queue_state().expect("queue"), (Some(at(0)), 0));
    let again = ledger
        .claim_next(at(300))
        .expect("claim")
        .expect("released");
    assert_eq!(
        (again.id, again.partial_bytes, again.attempts),
        (file.id, 2048, 0)
    );
}

#[test]
fn retries_end_in_failed_and_retry_revives() {
    let mut ledger = ledger_with(&[entry("Hd", "/d/0_0.mp4", "t")]);
    for round in 0..2 {
        let file = ledger.claim_next(at(1000)).expect("claim").expect("a file");
        let plan = RetryPlan {
            error: "server said 500",
            next_attempt_at: at(0),
            max_attempts: 2,
            partial_bytes: 0,
        };
        let failed = ledger
            .schedule_retry(file.id, &plan, at(1000))
            .expect("retry");
        assert_eq!(failed, round == 1);
    }
    let status = ledger.status(5).expect("status");
    assert_eq!(status.files.failed, 1);
    assert_eq!(status.last_errors[0].error, "server said 500");
    assert!(ledger.claim_next(at(2000)).expect("claim").is_none());
    assert_eq!(ledger.retry_failed(at(2000)).expect("retry"), 1);
    let file = ledger
        .claim_next(at(2000))
        .expect("claim")
        .expect("revived");
    assert_eq!(file.attempts, 0);
}

#[test]
fn crash_recovery_requeues_downloading_and_closes_attempts() {
    let mut ledger = ledger_with(&[entry("Hd", "/d/0_0.mp4", "t")]);
    let file = ledger.claim_next(at(100)).expect("claim").expect("a file");
    ledger.take_token(file.id, at(0), 0, at(100)).expect("take");
    ledger.set_partial(file.id, 4096).expect("partial");
    assert_eq!(ledger.reset_interrupted(at(200)).expect("reset"), 1);
    let again = ledger
        .claim_next(at(300))
        .expect("claim")
        .expect("requeued");
    assert_eq!(again.partial_bytes, 4096);
    let open: i64 = ledger
        .conn
        .query_row(
            "SELECT count(*) FROM attempts WHERE outcome IS NULL",
            [],
            |r| r.get(0),
        )
        .expect("count");
    assert_eq!(open, 0);
}

#[test]
fn done_files_get_no_new_tokens_and_count_bytes() {
    let mut ledger = ledger_with(&[entry("Hd", "/d/0_0.mp4", "t1")]);
    let file = ledger.claim_next(at(100)).expect("claim").expect("a file");
    let spent = ledger
        .take_token(file.id, at(0), 0, at(100))
        .expect("take")
        .expect("token");
    let end = AttemptEnd {
        outcome: AttemptOutcome::Done,
        bytes: 1234,
        http_status: Some(200),
        error: None,
    };
    ledger
        .finish_attempt(spent.attempt_id, &end, at(150))
        .expect("finish");
    ledger
        .mark_done(file.id, &confirmed(1234, "abcd"), at(150))
        .expect("done");
    ledger
        .store_urls(CONF, &[entry("Hd", "/d/0_0.mp4", "t2")], at(200))
        .expect("store");
    assert!(!ledger.token_known("t2").expect("known"));
    let status = ledger.status(5).expect("status");
    assert_eq!((status.files.done, status.bytes_archived), (1, 1234));
    let done = ledger.done_files().expect("done files");
    assert_eq!(done[0].sha256, "abcd");
    ledger
        .requeue_done(file.id, "missing", at(300))
        .expect("requeue");
    assert_eq!(ledger.status(5).expect("status").files.pending, 1);
}

#[test]
fn meetings_list_counts_files() {
    let mut ledger = ledger_with(&[
        entry("Hd", "/d/0_0.mp4", "t1"),
        entry("Sd", "/d/1.mp4", "t2"),
    ]);
    ledger
        .record_poll_error(CONF, "HTTP 500", at(50))
        .expect("poll error");
    let meetings = ledger.meetings().expect("meetings");
    assert_eq!(meetings.len(), 1);
    assert_eq!(meetings[0].files_total, 2);
    assert_eq!(meetings[0].last_poll_error.as_deref(), Some("HTTP 500"));
}

#[test]
fn file_ledger_is_locked_against_a_second_writer() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ledger.sqlite3");
    let _first = Ledger::open(&path, true).expect("first");
    assert!(matches!(
        Ledger::open(&path, true),
        Err(LedgerError::Locked(_))
    ));
    Ledger::open(&path, false).expect("a reader may open it");
}

#[test]
fn a_meeting_is_complete_once_every_file_is_done_and_reopens_on_a_new_file() {
    let mut ledger = ledger_with(&[
        entry("Hd", "/d/0_0.mp4", "t1"),
        entry("Sd", "/d/s.mp4", "t2"),
    ]);
    assert!(
        ledger
            .settled_meetings(at(i64::MAX), at(0))
            .expect("settled")
            .is_empty()
    );
    for now in [100, 200] {
        let file = ledger.claim_next(at(now)).expect("claim").expect("file");
        ledger
            .mark_done(file.id, &confirmed(1, "x"), at(now))
            .expect("done");
    }
    assert_eq!(
        ledger.meetings().expect("meetings")[0].complete_since,
        Some(at(200))
    );
    assert!(
        ledger
            .settled_meetings(at(200), at(0))
            .expect("settled")
            .is_empty(),
        "not before the period"
    );
    assert_eq!(
        ledger.settled_meetings(at(201), at(0)).expect("settled"),
        vec![CONF.to_owned()]
    );
    // Listing the same files again keeps it complete; a new file reopens it.
    ledger
        .store_urls(CONF, &[entry("Hd", "/d/0_0.mp4", "t3")], at(300))
        .expect("store");
    assert_eq!(
        ledger.meetings().expect("meetings")[0].complete_since,
        Some(at(200))
    );
    ledger
        .store_urls(CONF, &[entry("Hd", "/d/0_1.mp4", "t4")], at(400))
        .expect("store");
    assert_eq!(ledger.meetings().expect("meetings")[0].complete_since, None);
}

#[test]
fn queue_depth_counts_due_files_and_the_heartbeat_writes() {
    let mut ledger = ledger_with(&[
        entry("Hd", "/d/0_0.mp4", "t1"),
        entry("Sd", "/d/s.mp4", "t2"),
    ]);
    assert_eq!(ledger.due_count(at(0)).expect("due"), 2);
    let file = ledger.claim_next(at(0)).expect("claim").expect("file");
    let plan = RetryPlan {
        error: "later",
        next_attempt_at: at(1_000),
        max_attempts: 5,
        partial_bytes: 0,
    };
    ledger.schedule_retry(file.id, &plan, at(0)).expect("retry");
    assert_eq!(ledger.due_count(at(999)).expect("due"), 1);
    assert_eq!(ledger.due_count(at(1_000)).expect("due"), 2);
    ledger.heartbeat(at(5)).expect("heartbeat");
    ledger.heartbeat(at(6)).expect("heartbeat again");
}

/// A verified file whose length the server announced.
fn confirmed(size: u64, sha256: &'static str) -> DoneMark<'static> {
    DoneMark {
        size,
        sha256,
        length_confirmed: true,
    }
}

#[test]
fn a_new_ledger_and_its_wal_are_private_whatever_the_umask() {
    use std::os::unix::fs::PermissionsExt;
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ledger.sqlite3");
    let mut ledger = Ledger::open(&path, true).expect("open");
    ledger.heartbeat(at(1)).expect("a write, so the WAL exists");
    for name in ["ledger.sqlite3", "ledger.sqlite3-wal", "ledger.sqlite3-shm"] {
        let mode = std::fs::metadata(dir.path().join(name))
            .expect(name)
            .permissions()
            .mode();
        assert_eq!(mode & 0o077, 0, "{name} has mode {:o}", mode & 0o777);
    }
}

/// The schema version SQLite keeps in the file.
fn user_version(conn: &Connection) -> usize {
    let version: i64 = conn
        .pragma_query_value(None, "user_version", |row| row.get(0))
        .expect("user_version");
    usize::try_from(version).expect("a version")
}

fn count(conn: &Connection, sql: &str) -> i64 {
    conn.query_row(sql, [], |row| row.get(0)).expect("count")
}

#[test]
fn opening_a_ledger_file_twice_migrates_it_once_and_keeps_its_data() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ledger.sqlite3");
    {
        let ledger = Ledger::open(&path, true).expect("first open");
        assert_eq!(user_version(&ledger.conn), MIGRATIONS.len());
        ledger
            .conn
            .execute_batch(
                "INSERT INTO meetings (conf_uuid, origin, first_seen_at, complete_since)
                     VALUES ('m', 'config', 1, 20);
                 INSERT INTO files (conf_uuid, file_type, file_key, url_path, url, rel_path,
                                    state, first_seen_at, updated_at, done_at)
                     VALUES ('m', 'Hd', 'a', '/a', 'https://192.0.2.1/a', 'm/Hd/a', 'done', 1, 20,
                             20);
                 INSERT INTO heartbeat (id, at) VALUES (1, 30);",
            )
            .expect("rows");
    }
    // A second migration run would fail (0002 adds a column) or lose rows.
    let ledger = Ledger::open(&path, true).expect("second open");
    assert_eq!(user_version(&ledger.conn), MIGRATIONS.len());
    let conn = &ledger.conn;
    assert_eq!(
        count(conn, "SELECT count(*) FROM files WHERE state = 'done'"),
        1
    );
    assert_eq!(count(conn, "SELECT complete_since FROM meetings"), 20);
    assert_eq!(count(conn, "SELECT at FROM heartbeat"), 30);
}

#[test]
fn a_ledger_of_schema_1_gets_migration_2_on_open() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ledger.sqlite3");
    {
        // What the first release left: only 0001 applied.
        let mut conn = Connection::open(&path).expect("open");
        Migrations::from_slice(&MIGRATIONS[..1])
            .to_latest(&mut conn)
            .expect("schema 1");
        assert_eq!(user_version(&conn), 1);
        conn.execute_batch(
            "INSERT INTO meetings (conf_uuid, origin, first_seen_at) VALUES
                 ('complete', 'config', 1), ('open', 'config', 1), ('empty', 'discovered', 1);
             INSERT INTO files (conf_uuid, file_type, url_path, url, rel_path, state,
                                first_seen_at, updated_at, done_at, size, sha256) VALUES
                 ('complete', 'Hd', '/a', 'https://192.0.2.1/a', 'complete/Hd/a', 'done', 1, 300, 300, 3, 'x'),
                 ('complete', 'Sd', '/b', 'https://192.0.2.1/b', 'complete/Sd/b', 'done', 1, 500, 500, 3, 'x'),
                 ('open', 'Hd', '/c', 'https://192.0.2.1/c', 'open/Hd/c', 'done', 1, 400, 400, 3, 'x'),
                 ('open', 'Sd', '/d', 'https://192.0.2.1/d', 'open/Sd/d', 'pending', 1, 1, NULL, NULL, NULL);",
        )
        .expect("schema-1 rows");
    }
    let ledger = Ledger::open(&path, true).expect("open upgrades");
    let conn = &ledger.conn;
    assert_eq!(user_version(conn), MIGRATIONS.len());
    let since = |conf: &str| -> Option<i64> {
        conn.query_row(
            "SELECT complete_since FROM meetings WHERE conf_uuid = ?1",
            [conf],
            |row| row.get(0),
        )
        .expect("meeting")
    };
    assert_eq!(since("complete"), Some(500), "its last file's done_at");
    assert_eq!(since("open"), None, "a file is still pending");
    assert_eq!(since("empty"), None, "no file known");
    assert_eq!(
        count(
            conn,
            "SELECT count(*) FROM sqlite_master WHERE type = 'table' AND name = 'heartbeat'"
        ),
        1
    );
    assert_eq!(count(conn, "SELECT count(*) FROM files"), 4, "rows kept");
}

#[test]
fn migration_4_names_files_by_their_last_path_segment_and_keeps_their_tokens() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("ledger.sqlite3");
    {
        let mut conn = Connection::open(&path).expect("open");
        conn.pragma_update(None, "foreign_keys", "ON").expect("fk");
        Migrations::from_slice(&MIGRATIONS[..3])
            .to_latest(&mut conn)
            .expect("schema 3");
        conn.execute_batch(
            "INSERT INTO meetings (conf_uuid, origin, first_seen_at) VALUES ('m', 'config', 1);
             INSERT INTO files (id, conf_uuid, file_type, url_path, url, rel_path, first_seen_at,
                                updated_at) VALUES
                 (1, 'm', 'Hd', '/x/videoHD/0_0.mp4', 'https://h/x/videoHD/0_0.mp4', 'm/Hd/0_0.mp4', 1, 1),
                 (2, 'm', 'Hd', '/y/videoHD/0_0.mp4', 'https://h/y/videoHD/0_0.mp4', 'm/Hd/0_0-1.mp4', 1, 1),
                 (3, 'm', 'Sd', '/x/videoSD/0_0.mp4', 'https://h/x/videoSD/0_0.mp4', 'm/Sd/0_0.mp4', 1, 1);
             INSERT INTO tokens (file_id, token_sha256, token, issued_at) VALUES (2, 'h', 't', 1);",
        )
        .expect("schema-3 rows");
    }
    let ledger = Ledger::open(&path, true).expect("open upgrades");
    let key = |id: i64| -> String {
        ledger
            .conn
            .query_row("SELECT file_key FROM files WHERE id = ?1", [id], |r| {
                r.get(0)
            })
            .expect("file")
    };
    assert_eq!(key(1), "0_0.mp4");
    assert_eq!(key(2), "0_0.mp4#2", "the second of one name, by id order");
    assert_eq!(key(3), "0_0.mp4", "another type is another namespace");
    assert_eq!(
        count(&ledger.conn, "SELECT file_id FROM tokens WHERE token = 't'"),
        2
    );
    let violations: i64 = ledger
        .conn
        .query_row("SELECT count(*) FROM pragma_foreign_key_check", [], |r| {
            r.get(0)
        })
        .expect("check");
    assert_eq!(violations, 0);
}

#[test]
fn one_meeting_is_read_alone_with_its_counts() {
    let ledger = ledger_with(&[
        entry("Hd", "/d/0_0.mp4", "t"),
        entry("Sd", "/d/0_0.mp4", "u"),
    ]);
    let meeting = ledger.meeting(CONF).expect("read").expect("known");
    assert_eq!((meeting.conf_uuid.as_str(), meeting.files_total), (CONF, 2));
    assert!(ledger.meeting("unknown").expect("read").is_none());
}

#[test]
fn a_change_marks_the_manifest_and_a_write_clears_only_what_it_saw() {
    let mut ledger = ledger_with(&[entry("Hd", "/d/0_0.mp4", "t1")]);
    assert_eq!(ledger.manifest_generation(CONF).expect("gen"), 0);
    // Nothing archived: facts alone do not call for a manifest.
    ledger
        .upsert_meeting(CONF, MeetingOrigin::Config, Some("Weekly"), at(11))
        .expect("subject");
    assert!(ledger.stale_manifests().expect("stale").is_empty());
    let file = ledger.claim_next(at(100)).expect("claim").expect("a file");
    let done = DoneMark {
        size: 3,
        sha256: &"a".repeat(64),
        length_confirmed: true,
    };
    ledger.mark_done(file.id, &done, at(101)).expect("done");
    // The mark comes with `done`, before any manifest write.
    let seen = ledger.manifest_generation(CONF).expect("gen");
    assert!(seen > 0);
    assert_eq!(ledger.stale_manifests().expect("stale"), vec![CONF]);
    // A change while the manifest is being written keeps the mark.
    ledger
        .upsert_meeting(CONF, MeetingOrigin::Config, Some("Weekly sync"), at(102))
        .expect("new subject");
    assert!(!ledger.manifest_written(CONF, seen).expect("written"));
    assert_eq!(ledger.stale_manifests().expect("stale"), vec![CONF]);
    let now_seen = ledger.manifest_generation(CONF).expect("gen");
    assert!(ledger.manifest_written(CONF, now_seen).expect("written"));
    assert!(ledger.stale_manifests().expect("stale").is_empty());
    // The same subject again changes nothing; a requeue and a deletion do.
    ledger
        .upsert_meeting(CONF, MeetingOrigin::Config, Some("Weekly sync"), at(103))
        .expect("same subject");
    assert!(ledger.stale_manifests().expect("stale").is_empty());
    ledger
        .record_deleted(&[CONF.to_owned()], at(104))
        .expect("deleted");
    assert_eq!(ledger.stale_manifests().expect("stale"), vec![CONF]);
    let seen = ledger.manifest_generation(CONF).expect("gen");
    assert!(ledger.manifest_written(CONF, seen).expect("written"));
    ledger
        .requeue_done(file.id, "gone", at(105))
        .expect("requeue");
    assert_eq!(ledger.stale_manifests().expect("stale"), vec![CONF]);
}

#[test]
fn a_taken_alternative_path_gets_a_counter_instead_of_failing_the_listing() {
    // Three files whose names clash, the second alternative taken as well.
    let first = entry("Hd", "/a/0_0.mp4", "t1");
    let mut second = UrlEntry {
        file_key: "0_0.mp4#2".to_owned(),
        ..entry("Hd", "/b/0_0.mp4", "t2")
    };
    second.rel_path = first.rel_path.clone();
    let mut third = UrlEntry {
        file_key: "0_0.mp4#3".to_owned(),
        ..entry("Hd", "/c/0_0.mp4", "t3")
    };
    third.rel_path = first.rel_path.clone();
    third.rel_path_alt = second.rel_path_alt.clone();
    let mut ledger = ledger_with(&[first, second]);
    assert_eq!(
        ledger.store_urls(CONF, &[third], at(20)).expect("listed"),
        1
    );
    let files = ledger.meeting_files(CONF).expect("files");
    let mut paths: Vec<_> = files.iter().map(|f| f.rel_path.clone()).collect();
    assert_eq!(paths.len(), 3);
    paths.sort();
    paths.dedup();
    assert_eq!(paths.len(), 3, "{paths:?}");
}

#[test]
fn a_listed_file_keeps_its_path_whatever_the_layout_renders_now() {
    let mut ledger = ledger_with(&[entry("Hd", "/d/0_0.mp4", "t1")]);
    let before = ledger.meeting_files(CONF).expect("files")[0]
        .rel_path
        .clone();
    let mut again = entry("Hd", "/d/0_0.mp4", "t2");
    again.rel_path = "elsewhere/Hd/0_0.mp4".to_owned();
    again.rel_path_alt = "elsewhere/Hd/0_0-x.mp4".to_owned();
    ledger.store_urls(CONF, &[again], at(20)).expect("listed");
    let files = ledger.meeting_files(CONF).expect("files");
    assert_eq!(files.len(), 1);
    assert_eq!(files[0].rel_path, before);
}
