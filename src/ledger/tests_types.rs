//! Round trips of the ledger's column types through SQLite, and what a value
//! the code does not know turns into.

use rusqlite::Connection;
use rusqlite::types::{FromSql, ToSql};

use super::tests::{CONF, at, entry, ledger_with};
use super::*;
use crate::clock::Millis;

/// Writes `value` through SQLite and reads it back, with its stored form.
fn round_trip<T: ToSql + FromSql>(value: &T) -> (T, rusqlite::types::Value) {
    let conn = Connection::open_in_memory().expect("open");
    conn.query_row("SELECT ?1, ?1", [value], |row| {
        Ok((row.get(0)?, row.get(1)?))
    })
    .expect("round trip")
}

#[test]
fn states_are_stored_as_the_text_the_schema_checks() {
    for state in FileState::ALL {
        let (back, stored) = round_trip(&state);
        assert_eq!(back, state);
        assert_eq!(
            stored,
            rusqlite::types::Value::Text(state.as_str().to_owned())
        );
    }
    let names: Vec<_> = FileState::ALL.iter().map(|s| s.to_string()).collect();
    assert_eq!(names, ["pending", "downloading", "done", "failed"]);
}

#[test]
fn origins_ids_and_times_round_trip() {
    for origin in [MeetingOrigin::Config, MeetingOrigin::Discovered] {
        assert_eq!(round_trip(&origin).0, origin);
    }
    let (origin, stored) = round_trip(&MeetingOrigin::Discovered);
    assert_eq!(origin, MeetingOrigin::Discovered);
    assert_eq!(stored, rusqlite::types::Value::Text("discovered".into()));
    assert_eq!(
        round_trip(&FileId::new(42)),
        (FileId::new(42), rusqlite::types::Value::Integer(42))
    );
    let t = Millis::from_unix_ms(1_700_000_000_123);
    assert_eq!(
        round_trip(&t),
        (t, rusqlite::types::Value::Integer(1_700_000_000_123))
    );
}

#[test]
fn json_keeps_the_lower_case_names_and_integer_times() {
    let json = |v: serde_json::Value| v.to_string();
    assert_eq!(
        json(serde_json::json!(FileState::Downloading)),
        "\"downloading\""
    );
    assert_eq!(json(serde_json::json!(MeetingOrigin::Config)), "\"config\"");
    let ledger = ledger_with(&[entry("Hd", "/d/0_0.mp4", "t")]);
    let meeting = serde_json::to_value(&ledger.meetings().expect("meetings")[0]).expect("json");
    assert_eq!(meeting["origin"], "config");
    assert_eq!(meeting["last_polled_at"], 10);
    let file = serde_json::to_value(&ledger.meeting_files(CONF).expect("files")[0]).expect("json");
    assert_eq!(file["state"], "pending");
}

#[test]
fn an_unknown_text_is_a_clear_conversion_error() {
    let conn = Connection::open_in_memory().expect("open");
    let read = |sql: &str| {
        conn.query_row(sql, [], |row| row.get::<_, FileState>(0))
            .expect_err("not a state")
            .to_string()
    };
    let message = read("SELECT 'archived'");
    assert!(
        message.contains("\"archived\", which is not a known file state"),
        "{message}"
    );
    assert!(
        read("SELECT 7").contains("Invalid column type"),
        "a number is no state"
    );
    let origin = conn
        .query_row("SELECT 'imported'", [], |row| {
            row.get::<_, MeetingOrigin>(0)
        })
        .expect_err("not an origin");
    assert!(origin.to_string().contains("not a known meeting origin"));
}

#[test]
fn a_state_written_behind_the_ledgers_back_fails_the_query_not_the_process() {
    let ledger = ledger_with(&[entry("Hd", "/d/0_0.mp4", "t")]);
    ledger
        .conn
        .pragma_update(None, "ignore_check_constraints", "ON")
        .expect("pragma");
    ledger
        .conn
        .execute("UPDATE files SET state = 'archived'", [])
        .expect("hand edit");
    let error = ledger.meeting_files(CONF).expect_err("unknown state");
    assert!(matches!(error, LedgerError::Sql(_)), "{error:?}");
    let chain = crate::telemetry::error_chain(&error);
    assert!(chain.contains("archived"), "{chain}");
    let mismatches = ledger.check_counts().expect("check");
    assert!(
        mismatches
            .iter()
            .any(|m| m.counter == "files.archived" && m.actual == 1),
        "the counters' check names it: {mismatches:?}"
    );
    assert_eq!(ledger.due_count(at(100)).expect("due"), 0);
}
