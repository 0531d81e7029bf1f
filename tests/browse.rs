//! An archive a person can browse without the tool: dated, titled meeting
//! folders (configured meetings looked up in the recording list), a
//! `SHA256SUMS` that coreutils' `sha256sum -c` passes, manifests valid
//! against docs/meeting.schema.json, a README.txt at the root, and a
//! changed layout that moves nothing.

use std::path::{Path, PathBuf};
use std::process::Command;

use meeting_archiver::archive::{Layout, Zone, readable_subject};
use meeting_archiver::clock::Millis;
use meeting_archiver::config::Config;
use meeting_archiver::ledger::Ledger;
use meeting_archiver::simulator::{Faults, Scenario, SimMeeting};
use serde_json::Value;

use crate::helpers::*;

const SCHEMA: &str = concat!(env!("CARGO_MANIFEST_DIR"), "/docs/meeting.schema.json");

/// Validates `doc` against the shipped schema; the errors, if any.
fn schema_errors(doc: &Value) -> Option<String> {
    let mut schemas = boon::Schemas::new();
    let mut compiler = boon::Compiler::new();
    compiler.enable_format_assertions();
    let index = compiler
        .compile(SCHEMA, &mut schemas)
        .expect("the schema compiles");
    schemas.validate(doc, index).err().map(|e| format!("{e:#}"))
}

/// Every meeting folder of an archive: those holding a SHA256SUMS.
fn meeting_folders(archive: &Path) -> Vec<PathBuf> {
    let mut folders: Vec<PathBuf> = walk(archive)
        .into_iter()
        .filter(|p| p.file_name().is_some_and(|n| n == "SHA256SUMS"))
        .filter_map(|p| p.parent().map(Path::to_path_buf))
        .collect();
    folders.sort();
    folders
}

/// Runs coreutils' `sha256sum -c --strict SHA256SUMS` in `folder`, asserts
/// it passes, and returns how many files it checked.
fn sha256sum_check(folder: &Path) -> usize {
    let out = Command::new("sha256sum")
        .args(["-c", "--strict", "SHA256SUMS"])
        .current_dir(folder)
        .output()
        .expect("sha256sum (GNU coreutils) runs");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success(),
        "sha256sum -c in {}: {stdout}{}",
        folder.display(),
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(stdout.lines().all(|l| l.ends_with(": OK")), "{stdout}");
    stdout.lines().count()
}

fn manifest(folder: &Path) -> Value {
    let text = std::fs::read_to_string(folder.join("meeting.json")).expect("meeting.json");
    serde_json::from_str(&text).expect("meeting.json is JSON")
}

/// The folder name the default layout gives a meeting.
fn default_folder(meeting: &SimMeeting, subject: &str) -> String {
    let start = meeting.start.to_utc();
    format!(
        "{}/{} {subject} ({})",
        start.format("%Y"),
        start.format("%Y-%m-%d"),
        meeting.conf_id
    )
}

#[test]
fn after_the_demo_every_meeting_folder_passes_sha256sum_and_its_manifest_the_schema() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run_demo(dir.path());
    assert_eq!(out.status.code(), Some(0), "{out:?}");
    let archive = dir.path().join("meeting-archiver-demo/archive");
    let demo = Scenario::demo();
    let folders = meeting_folders(&archive);
    assert_eq!(folders.len(), demo.meetings.len(), "{folders:?}");
    let mut checked = 0;
    for meeting in &demo.meetings {
        // Configured meetings (the demo names them) get dated, titled folders.
        let folder = archive.join(default_folder(meeting, &readable_subject(&meeting.subject)));
        assert!(
            folders.contains(&folder),
            "{} in {folders:?}",
            folder.display()
        );
        checked += sha256sum_check(&folder);
        let doc = manifest(&folder);
        assert_eq!(schema_errors(&doc), None, "{doc:#}");
        assert_eq!(doc["subject"], meeting.subject.as_str());
        assert_eq!(doc["conf_id"], meeting.conf_id.as_str());
        assert_eq!(doc["origin"], "config");
    }
    assert_eq!(checked, archived_media(&archive).len());
    let readme = std::fs::read_to_string(archive.join("README.txt")).expect("README.txt");
    assert!(readme.contains("sha256sum -c SHA256SUMS"), "{readme}");
    assert!(readme.contains(env!("CARGO_PKG_VERSION")), "{readme}");
    assert_eq!(
        std::fs::read_to_string(archive.join("meeting.schema.json")).expect("schema copy"),
        std::fs::read_to_string(SCHEMA).expect("schema")
    );
}

#[test]
fn the_schema_refuses_a_manifest_that_breaks_it() {
    let good = serde_json::json!({
        "schema_version": 2,
        "generator": {"name": "meeting-archiver", "version": "0.1.0"},
        "conf_uuid": "u", "conf_id": null, "subject": null, "scheduler": null,
        "origin": "config", "start_time": "2026-11-20T09:05:00Z", "duration_seconds": 60,
        "folder": "2026/x", "generated_at": "2026-11-20T10:00:00Z", "generated_at_ms": 1,
        "files": [{
            "file_type": "Hd", "description": "HD video", "part": 1, "path": "Hd/0_0.mp4",
            "size": 3, "sha256": "a".repeat(64), "archived_at": "2026-11-20T10:00:00Z",
            "archived_at_ms": 1, "source_url": "https://192.0.2.1/download/x/0_0.mp4"
        }]
    });
    assert_eq!(schema_errors(&good), None);
    for (pointer, bad) in [
        ("/files/0/sha256", serde_json::json!("not hex")),
        ("/start_time", serde_json::json!(1_795_165_500_000_i64)),
        ("/generated_at", serde_json::json!("20 Nov 2026")),
        ("/schema_version", serde_json::json!(1)),
    ] {
        let mut doc = good.clone();
        *doc.pointer_mut(pointer).expect("field") = bad;
        assert!(schema_errors(&doc).is_some(), "{pointer} accepted");
    }
}

#[tokio::test]
async fn hostile_subjects_and_equal_titles_on_one_date_give_readable_distinct_folders() {
    let hostile = "Q3 review / budget: \"final\"?";
    let mut meetings = vec![
        SimMeeting::standard("a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1a1", hostile, 1, &["Hd"], 100),
        SimMeeting::standard(
            "b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2b2",
            "Weekly sync",
            2,
            &["Hd"],
            100,
        ),
        SimMeeting::standard(
            "c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3",
            "Weekly sync",
            1,
            &["Sd"],
            100,
        ),
    ];
    // A recurring meeting: the same conference ID, title and date.
    meetings[2].conf_id = meetings[1].conf_id.clone();
    meetings[2].start = meetings[1].start;
    let env = TestEnv::start(scenario(meetings)).await;
    let config = env.config();
    assert_eq!(env.sync(&config).await.exit_code(), 0);
    let [a, b, c] = [0, 1, 2].map(|i| env.meeting_dir(&env.meetings[i].conf_uuid));
    let archive = env.archive_dir();
    assert_eq!(
        a,
        archive.join(default_folder(
            &env.meetings[0],
            "Q3 review - budget - 'final'"
        ))
    );
    // Polled at once, either may come first; the second gets its UUID.
    let base = archive.join(default_folder(&env.meetings[1], "Weekly sync"));
    let second = |i: usize| {
        let name = format!("{} ({})", base.display(), env.meetings[i].conf_uuid);
        PathBuf::from(name)
    };
    assert!(
        (b == base && c == second(2)) || (c == base && b == second(1)),
        "{} and {}",
        b.display(),
        c.display()
    );
    for folder in [&a, &b, &c] {
        sha256sum_check(folder);
        assert_eq!(schema_errors(&manifest(folder)), None);
    }
    assert_eq!(
        manifest(&a)["subject"],
        hostile,
        "the manifest keeps it as given"
    );
    env.assert_archive_complete(&[]);
}

#[tokio::test]
async fn a_changed_layout_moves_nothing_and_files_new_meetings_under_it() {
    let meetings = vec![
        SimMeeting::standard(
            "d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4d4",
            "Before",
            2,
            &["Hd"],
            100,
        ),
        SimMeeting::standard("e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5", "After", 2, &["Hd"], 100),
    ];
    let env = TestEnv::start(scenario(meetings)).await;
    let (first, second) = (&env.meetings[0], &env.meetings[1]);
    let mut config = env.config();
    config.poll.meetings = vec![first.conf_uuid.clone()];
    assert_eq!(env.sync(&config).await.exit_code(), 0);
    let before = archived_media(&env.archive_dir());
    let old_folder = env.meeting_dir(&first.conf_uuid);
    assert_eq!(
        old_folder,
        env.archive_dir().join(default_folder(first, "Before"))
    );

    let template = "{conf_id}/{date} {subject}/{type}/{part}.{ext}";
    config.download.layout = Some(Layout::parse(template).expect("layout"));
    config.poll.meetings.push(second.conf_uuid.clone());
    assert_eq!(env.sync(&config).await.exit_code(), 0);
    let date = second.start.to_utc().format("%Y-%m-%d");
    let new_folder = env
        .archive_dir()
        .join(&second.conf_id)
        .join(format!("{date} After"));
    assert_eq!(env.meeting_dir(&second.conf_uuid), new_folder);
    assert!(new_folder.join("Hd/1.mp4").is_file() && new_folder.join("Hd/2.mp4").is_file());
    // The first meeting's files lie where they were, once.
    let after = archived_media(&env.archive_dir());
    assert_eq!(after.len(), before.len() + 2, "{after:?}");
    assert!(
        before.iter().all(|p| after.contains(p)),
        "{before:?} {after:?}"
    );
    assert_eq!(env.meeting_dir(&first.conf_uuid), old_folder);
    sha256sum_check(&old_folder);
    sha256sum_check(&new_folder);
    // Unset again: the archive keeps the template it records, and the
    // README.txt that says so is not written again.
    let readme_path = env.archive_dir().join("README.txt");
    let written = |p: &Path| {
        std::fs::metadata(p)
            .and_then(|m| m.modified())
            .expect("mtime")
    };
    let before_mtime = written(&readme_path);
    config.download.layout = None;
    assert_eq!(env.sync(&config).await.exit_code(), 0);
    assert_eq!(written(&readme_path), before_mtime);
    let readme = std::fs::read_to_string(&readme_path).expect("readme");
    assert!(
        readme.contains("{year}/{date} {subject} ({conf_id})/{type}/{name}"),
        "{readme}"
    );
    assert!(readme.contains(template), "{readme}");
}

#[tokio::test]
async fn a_configured_meeting_is_looked_up_once_and_archives_when_the_list_refuses() {
    let meetings = vec![
        SimMeeting::standard("f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6f6", "Found", 1, &["Hd"], 100),
        SimMeeting::standard(
            "a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7",
            "Hidden",
            1,
            &["Aux"],
            100,
        ),
    ];
    let env = TestEnv::start(scenario(meetings)).await;
    let (found, hidden) = (&env.meetings[0], &env.meetings[1]);
    let mut config = env.config();
    config.poll.meetings = vec![found.conf_uuid.clone()];
    assert_eq!(env.sync(&config).await.exit_code(), 0);
    let doc = manifest(&env.meeting_dir(&found.conf_uuid));
    assert_eq!(
        doc["start_time"],
        meeting_archiver::pipeline::iso(found.start)
    );
    assert_eq!(doc["scheduler"], "Simulated Host");
    assert!(
        doc["duration_seconds"].as_i64().is_some_and(|d| d > 0),
        "{doc}"
    );
    assert_eq!(doc["files"][0]["description"], "HD video");
    assert_eq!(doc["files"][0]["part"], 1);
    let url = doc["files"][0]["source_url"].as_str().expect("source_url");
    assert!(url.starts_with("http") && !url.contains('?'), "{url}");

    // The recording list refuses: the meeting archives with what is known.
    env.sim.set_faults(Faults {
        record_list_refused: true,
        ..Faults::default()
    });
    config.poll.meetings.push(hidden.conf_uuid.clone());
    assert_eq!(env.sync(&config).await.exit_code(), 0);
    let folder = env.meeting_dir(&hidden.conf_uuid);
    let expected = format!("undated/undated Untitled ({})", hidden.conf_uuid);
    assert_eq!(folder, env.archive_dir().join(expected));
    sha256sum_check(&folder);
    let doc = manifest(&folder);
    assert_eq!(schema_errors(&doc), None, "{doc:#}");
    assert_eq!(doc["subject"], Value::Null);
    assert_eq!(
        doc["files"][0]["description"],
        "auxiliary stream (shared screen)"
    );

    // Looked up once: later polls do not ask again (not due for hours),
    // even once the list answers.
    env.sim.set_faults(Faults::default());
    let calls = env.sim.stats().record_files_calls;
    assert_eq!(env.sync(&config).await.exit_code(), 0);
    assert_eq!(env.sim.stats().record_files_calls, calls);

    // Hours later the lookup is due again: the facts go into the manifest,
    // the folder stays.
    let mut ledger = Ledger::open(&env.ledger_path(), false).expect("ledger");
    let hours_ago = Millis::now() - std::time::Duration::from_secs(7 * 3600);
    ledger
        .record_lookup(&hidden.conf_uuid, None, hours_ago)
        .expect("backdate");
    drop(ledger);
    assert_eq!(env.sync(&config).await.exit_code(), 0);
    assert!(env.sim.stats().record_files_calls > calls);
    assert_eq!(env.meeting_dir(&hidden.conf_uuid), folder);
    let doc = manifest(&folder);
    assert_eq!(doc["subject"], "Hidden", "{doc:#}");
    assert_eq!(doc["conf_id"], hidden.conf_id.as_str());
}

#[tokio::test]
async fn folder_dates_follow_download_timezone_and_the_manifest_keeps_utc() {
    let mut meetings = vec![SimMeeting::standard(
        "b9b9b9b9b9b9b9b9b9b9b9b9b9b9b9b9",
        "Late call",
        1,
        &["Hd"],
        100,
    )];
    // 20:30 UTC yesterday: 04:30 today in Shanghai (UTC+8, no summer time).
    let day = 86_400_000;
    let midnight = Millis::now().as_unix_ms() / day * day;
    meetings[0].start = Millis::from_unix_ms(midnight - day + (20 * 60 + 30) * 60_000);
    let env = TestEnv::start(scenario(meetings)).await;
    let mut config = env.config();
    config.download.timezone = Zone::parse("Asia/Shanghai").expect("zone");
    config.download.layout =
        Some(Layout::parse("{year}/{date} {time} {subject}/{type}/{name}").expect("layout"));
    assert_eq!(env.sync(&config).await.exit_code(), 0);
    let meeting = &env.meetings[0];
    let local = meeting.start.to_utc() + chrono::Duration::hours(8);
    assert_ne!(
        local.date_naive(),
        meeting.start.to_utc().date_naive(),
        "the zone moves this meeting to the next day"
    );
    let folder = env.meeting_dir(&meeting.conf_uuid);
    assert_eq!(
        folder,
        env.archive_dir().join(format!(
            "{}/{} 04-30 Late call",
            local.format("%Y"),
            local.format("%Y-%m-%d")
        ))
    );
    sha256sum_check(&folder);
    assert_eq!(
        manifest(&folder)["start_time"],
        meeting_archiver::pipeline::iso(meeting.start),
        "the manifest's times stay UTC"
    );
}

#[tokio::test]
async fn a_changed_timezone_names_new_meetings_only_and_the_readme_says_which() {
    // 20:30 UTC yesterday: today in Shanghai.
    let day = 86_400_000;
    let midnight = Millis::now().as_unix_ms() / day * day;
    let start = Millis::from_unix_ms(midnight - day + (20 * 60 + 30) * 60_000);
    let (old_uuid, new_uuid) = (
        "c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1",
        "c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2",
    );
    let mut old = SimMeeting::standard(old_uuid, "Old", 1, &["Hd"], 100);
    old.start = start;
    let env = TestEnv::start(scenario(vec![old.clone()])).await;
    let mut config = env.config();
    let template = "{conf_uuid}/{type}/{date}_{name}";
    config.download.layout = Some(Layout::parse(template).expect("layout"));
    assert_eq!(env.sync(&config).await.exit_code(), 0);
    let (utc, local) = (
        start.to_utc().format("%Y-%m-%d").to_string(),
        (start.to_utc() + chrono::Duration::hours(8))
            .format("%Y-%m-%d")
            .to_string(),
    );
    assert_ne!(utc, local);

    // The old meeting grows a second part, a new meeting comes; the zone
    // is set meanwhile.
    let mut grown = SimMeeting::standard(old_uuid, "Old", 2, &["Hd"], 100);
    (grown.start, grown.conf_id) = (start, old.conf_id.clone());
    let mut new = SimMeeting::standard(new_uuid, "New", 1, &["Hd"], 100);
    new.start = start;
    env.sim.add_meeting(grown);
    env.sim.add_meeting(new);
    config.poll.meetings = vec![old_uuid.to_owned(), new_uuid.to_owned()];
    config.download.timezone = Zone::parse("Asia/Shanghai").expect("zone");
    assert_eq!(env.sync(&config).await.exit_code(), 0);
    let archive = env.archive_dir();
    for (path, why) in [
        (format!("{old_uuid}/Hd/{utc}_0_0.mp4"), "archived before"),
        (
            format!("{old_uuid}/Hd/{utc}_0_1.mp4"),
            "a later file of a meeting keeps the meeting's zone",
        ),
        (
            format!("{new_uuid}/Hd/{local}_0_0.mp4"),
            "a new meeting takes the new zone",
        ),
    ] {
        assert!(archive.join(&path).is_file(), "{why}: {path} missing");
    }
    let readme = std::fs::read_to_string(archive.join("README.txt")).expect("readme");
    assert!(readme.contains("; times in Asia/Shanghai)"), "{readme}");
    assert!(readme.contains("or in the zone named beside"), "{readme}");
    assert_eq!(
        readme.matches(template).count(),
        2,
        "one line per period: UTC, then Shanghai: {readme}"
    );
}

#[tokio::test]
async fn a_meeting_whose_recorded_zone_is_unknown_still_archives_its_new_files() {
    let uuid = "c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3";
    let first = SimMeeting::standard(uuid, "Zoned", 1, &["Hd"], 100);
    let env = TestEnv::start(scenario(vec![first.clone()])).await;
    let mut config = env.config();
    config.download.layout =
        Some(Layout::parse("{conf_uuid}/{type}/{part}_{name}").expect("layout"));
    config.download.timezone = Zone::parse("+08:00").expect("zone");
    assert_eq!(env.sync(&config).await.exit_code(), 0);
    // A ledger from a build whose zone database knew a zone this one does not.
    let conn = rusqlite::Connection::open(env.ledger_path()).expect("ledger");
    let recorded: String = conn
        .query_row(
            "SELECT layout FROM meetings WHERE conf_uuid = ?1",
            [uuid],
            |r| r.get(0),
        )
        .expect("layout");
    assert!(recorded.ends_with("\n+08:00"), "{recorded:?}");
    let changed = conn
        .execute(
            "UPDATE meetings SET layout = replace(layout, '+08:00', 'Mars/Olympus') WHERE conf_uuid = ?1",
            [uuid],
        )
        .expect("edit");
    assert_eq!(changed, 1);
    drop(conn);
    let mut grown = SimMeeting::standard(uuid, "Zoned", 2, &["Hd"], 100);
    (grown.start, grown.conf_id) = (first.start, first.conf_id.clone());
    env.sim.add_meeting(grown);
    assert_eq!(env.sync(&config).await.exit_code(), 0);
    let archive = env.archive_dir();
    for path in [
        format!("{uuid}/Hd/1_0_0.mp4"),
        format!("{uuid}/Hd/2_0_1.mp4"),
    ] {
        assert!(archive.join(&path).is_file(), "{path} missing");
    }
}

#[tokio::test]
async fn discovered_meetings_get_dated_titled_folders_without_a_second_lookup() {
    let meetings = vec![SimMeeting::standard(
        "b8b8b8b8b8b8b8b8b8b8b8b8b8b8b8b8",
        "Found by discovery",
        1,
        &["Hd"],
        100,
    )];
    let env = TestEnv::start(scenario(meetings)).await;
    let mut config = env.config();
    config.poll.meetings = Vec::new();
    config.poll.discover_days = 2;
    assert_eq!(env.sync(&config).await.exit_code(), 0);
    let meeting = &env.meetings[0];
    let folder = env.meeting_dir(&meeting.conf_uuid);
    assert_eq!(
        folder,
        env.archive_dir()
            .join(default_folder(meeting, "Found by discovery"))
    );
    sha256sum_check(&folder);
    let doc = manifest(&folder);
    assert_eq!(doc["origin"], "discovered");
    assert_eq!(
        doc["start_time"],
        meeting_archiver::pipeline::iso(meeting.start)
    );
    assert_eq!(
        env.sim.stats().record_files_calls,
        1,
        "discovery's one listing told the facts"
    );
}

#[tokio::test]
async fn a_readme_that_cannot_be_written_does_not_stop_the_archive() {
    let meetings = vec![SimMeeting::standard(
        "c9c9c9c9c9c9c9c9c9c9c9c9c9c9c9c9",
        "Blocked readme",
        1,
        &["Hd"],
        100,
    )];
    let env = TestEnv::start(scenario(meetings)).await;
    // A folder where README.txt should go: the rename onto it fails.
    std::fs::create_dir_all(env.archive_dir().join("README.txt/x")).expect("mkdir");
    let config = env.config();
    assert_eq!(env.sync(&config).await.exit_code(), 0);
    env.assert_archive_complete(&[]);
    sha256sum_check(&env.meeting_dir(&env.meetings[0].conf_uuid));
}

/// The files a meeting folder's SHA256SUMS lists.
fn sums_paths(folder: &Path) -> Vec<String> {
    std::fs::read_to_string(folder.join("SHA256SUMS"))
        .expect("SHA256SUMS")
        .lines()
        .filter_map(|l| l.split_once("  ").map(|(_, p)| p.to_owned()))
        .collect()
}

/// A simulator with one meeting of two HD parts, archived by one `sync`:
/// the environment, its config, the meeting's UUID and its folder.
async fn archived_in_two_parts(conf: &str, subject: &str) -> (TestEnv, Config, String, PathBuf) {
    let meetings = vec![SimMeeting::standard(conf, subject, 2, &["Hd"], 100)];
    let env = TestEnv::start(scenario(meetings)).await;
    let conf = env.meetings[0].conf_uuid.clone();
    let config = env.config();
    assert_eq!(env.sync(&config).await.exit_code(), 0);
    let folder = env.meeting_dir(&conf);
    (env, config, conf, folder)
}

#[tokio::test]
async fn a_crash_between_done_and_the_manifest_write_is_repaired_at_the_next_start() {
    let (env, config, _, folder) =
        archived_in_two_parts("c9c9c9c9c9c9c9c9c9c9c9c9c9c9c9c9", "Crash").await;
    assert_eq!(sums_paths(&folder).len(), 2);
    // Put the folder back as it was after the first file, then commit the
    // second file's `done` again and stop there: the process died before
    // its manifest write.
    let mut doc = manifest(&folder);
    let files = doc["files"].as_array_mut().expect("files");
    let second = files.pop().expect("a second file");
    let second_path = second["path"].as_str().expect("path").to_owned();
    std::fs::write(folder.join("meeting.json"), doc.to_string()).expect("old manifest");
    let sums = std::fs::read_to_string(folder.join("SHA256SUMS")).expect("sums");
    let first_line: String = sums
        .lines()
        .filter(|l| !l.ends_with(&second_path))
        .map(|l| format!("{l}\n"))
        .collect();
    std::fs::write(folder.join("SHA256SUMS"), first_line).expect("old sums");
    let mut ledger = Ledger::open(&env.ledger_path(), false).expect("ledger");
    let done = ledger
        .done_files()
        .expect("done")
        .into_iter()
        .find(|f| f.rel_path.ends_with(&second_path))
        .expect("the second file");
    let mark = meeting_archiver::ledger::DoneMark {
        size: done.size,
        sha256: &done.sha256,
        length_confirmed: true,
    };
    ledger
        .mark_done(done.id, &mark, Millis::now())
        .expect("done");
    drop(ledger);

    // The next run has nothing to download, yet the folder lists both.
    assert_eq!(env.sync(&config).await.exit_code(), 0);
    assert_eq!(sha256sum_check(&folder), 2);
    assert!(sums_paths(&folder).contains(&second_path));
    let doc = manifest(&folder);
    assert_eq!(doc["files"].as_array().map(Vec::len), Some(2), "{doc:#}");
    let ledger = Ledger::open(&env.ledger_path(), false).expect("ledger");
    assert!(ledger.stale_manifests().expect("stale").is_empty());
}

#[tokio::test]
async fn a_manifest_from_a_ledger_missing_values_still_validates_and_drops_nothing_silently() {
    let (env, config, conf, folder) =
        archived_in_two_parts("cacacacacacacacacacacacacacacaca", "Edges").await;
    // A damaged ledger: one archived file without size, hash or time, and
    // a negative recording length.
    let conn = rusqlite::Connection::open(env.ledger_path()).expect("ledger");
    let lost: String = conn
        .query_row(
            "UPDATE files SET size = NULL, sha256 = NULL, done_at = NULL
             WHERE id = (SELECT min(id) FROM files WHERE conf_uuid = ?1) RETURNING rel_path",
            [&conf],
            |r| r.get(0),
        )
        .expect("damage");
    conn.execute(
        "UPDATE meetings SET duration_s = -5 WHERE conf_uuid = ?1",
        [&conf],
    )
    .expect("negative");
    drop(conn);
    let mut ledger = Ledger::open(&env.ledger_path(), false).expect("ledger");
    ledger.mark_manifest_stale(&conf).expect("stale");
    drop(ledger);
    assert_eq!(env.sync(&config).await.exit_code(), 0);

    let doc = manifest(&folder);
    assert_eq!(schema_errors(&doc), None, "{doc:#}");
    assert_eq!(doc["duration_seconds"], Value::Null);
    let files = doc["files"].as_array().expect("files");
    assert_eq!(files.len(), 2, "both archived files are listed");
    let marked: Vec<_> = files
        .iter()
        .filter(|f| f["checksum_missing"] == true)
        .collect();
    assert_eq!(marked.len(), 1, "{doc:#}");
    assert!(lost.ends_with(marked[0]["path"].as_str().expect("path")));
    assert_eq!(marked[0]["sha256"], Value::Null);
    assert_eq!(sha256sum_check(&folder), 1);
    // The schema insists on the mark when the hash is missing.
    let mut unmarked = doc.clone();
    let entry = unmarked["files"]
        .as_array_mut()
        .expect("files")
        .iter_mut()
        .find(|f| f["checksum_missing"] == true)
        .expect("marked");
    entry
        .as_object_mut()
        .expect("object")
        .remove("checksum_missing");
    assert!(schema_errors(&unmarked).is_some());
}

#[tokio::test]
async fn titles_differing_only_in_case_get_folders_a_case_insensitive_disk_tells_apart() {
    let mut meetings = vec![
        SimMeeting::standard(
            "cbcbcbcbcbcbcbcbcbcbcbcbcbcbcbcb",
            "Weekly Sync",
            1,
            &["Hd"],
            100,
        ),
        SimMeeting::standard(
            "cccccccccccccccccccccccccccccccc",
            "Weekly sync",
            1,
            &["Hd"],
            100,
        ),
    ];
    meetings[1].conf_id = meetings[0].conf_id.clone();
    meetings[1].start = meetings[0].start;
    let env = TestEnv::start(scenario(meetings)).await;
    assert_eq!(env.sync(&env.config()).await.exit_code(), 0);
    let [a, b] = [0, 1].map(|i| env.meeting_dir(&env.meetings[i].conf_uuid));
    let fold = |p: &Path| p.to_string_lossy().to_lowercase();
    assert_ne!(fold(&a), fold(&b), "{} and {}", a.display(), b.display());
    for folder in [&a, &b] {
        assert_eq!(sha256sum_check(folder), 1);
    }
    env.assert_archive_complete(&[]);
}
