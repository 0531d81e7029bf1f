//! The first hour with the binary (issue 9): `check-config` checks without
//! touching, reading commands never write, and every message says what to do.

use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};
use std::time::SystemTime;

use chrono::{Datelike, NaiveDateTime, Weekday};
use meeting_archiver::simulator::SimMeeting;

use super::{run, run_async, text};
use crate::helpers::*;

/// Every file under `root` and their lengths.
fn listing(root: &Path) -> Vec<(PathBuf, u64)> {
    let files = walk(root).into_iter();
    files
        .map(|p| {
            let len = std::fs::metadata(&p).expect("metadata").len();
            (p, len)
        })
        .collect()
}

/// Every file under `root` and `root` itself, with length and modification
/// time: no file written, created or removed.
fn snapshot(root: &Path) -> Vec<(PathBuf, u64, SystemTime)> {
    let mut entries: Vec<_> = walk(root)
        .into_iter()
        .chain(std::iter::once(root.to_path_buf()))
        .map(|p| {
            let meta = std::fs::symlink_metadata(&p).expect("metadata");
            (p, meta.len(), meta.modified().expect("mtime"))
        })
        .collect();
    entries.sort();
    entries
}

/// A config in `dir` with App ID auth, archive and ledger under `dir`,
/// plus `extra` (whole sections; a `[download]` one gets the folder added).
fn write_config(dir: &Path, auth: &str, extra: &str) -> String {
    let archive = format!("dir = {:?}\n", dir.join("archive/recordings"));
    let extra = match extra.split_once("[download]\n") {
        Some((before, after)) => format!("{before}[download]\n{archive}{after}"),
        None => format!("{extra}[download]\n{archive}"),
    };
    let body = format!(
        "[cloud.auth]\n{auth}\n[ledger]\npath = {:?}\n{extra}",
        dir.join("db/ledger.sqlite3"),
    );
    let path = dir.join("c.toml");
    std::fs::write(&path, body).expect("write config");
    path.to_string_lossy().into_owned()
}

const AUTH: &str = "app_id = \"a1\"\napp_key = \"TOPSECRET-key\"";

fn chmod(path: &Path, mode: u32) {
    std::fs::set_permissions(path, std::fs::Permissions::from_mode(mode)).expect("chmod");
}

#[tokio::test]
async fn status_and_verify_read_a_read_only_ledger_in_a_read_only_folder() {
    let meeting = SimMeeting::standard("7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c", "RO", 1, &["Hd"], 1024);
    let env = TestEnv::start(scenario(vec![meeting])).await;
    let config = env.config();
    assert_eq!(env.sync(&config).await.exit_code(), 0);
    let path = env.write_config(&config).to_string_lossy().into_owned();
    chmod(&env.ledger_path(), 0o444);
    chmod(env.dir.path(), 0o555);
    let before = snapshot(env.dir.path());
    for args in [vec!["status", "--json"], vec!["status"], vec!["verify"]] {
        let mut argv = vec!["--config".to_owned(), path.clone()];
        argv.extend(args.iter().map(|a| a.to_string()));
        let out = run_async(argv, vec![]).await;
        let all = text(&out.stdout) + &text(&out.stderr);
        assert_eq!(out.status.code(), Some(0), "{args:?}: {all}");
        if args == ["status", "--json"] {
            let doc: serde_json::Value = serde_json::from_slice(&out.stdout).expect("JSON");
            assert_eq!(doc["files"]["done"], 1, "{doc}");
        }
    }
    let after = snapshot(env.dir.path());
    chmod(env.dir.path(), 0o755);
    chmod(&env.ledger_path(), 0o600);
    assert_eq!(before, after, "nothing created, changed or touched");
}

#[test]
fn status_and_verify_without_a_ledger_exit_2_and_create_nothing() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), AUTH, "");
    let before = snapshot(dir.path());
    for command in [
        &["status"][..],
        &["status", "--json"],
        &["verify"],
        &["verify", "--repair"],
    ] {
        let mut args = vec!["--config", &config];
        args.extend_from_slice(command);
        let out = run(&args, &[]);
        let err = text(&out.stderr);
        assert_eq!(out.status.code(), Some(2), "{command:?}: {err}");
        assert!(
            err.contains("ledger.path") && err.contains("does not exist"),
            "{command:?}: {err}"
        );
        assert!(text(&out.stdout).is_empty(), "no false report");
    }
    assert_eq!(snapshot(dir.path()), before);
}

#[test]
fn check_config_creates_no_folder_and_says_what_sync_would_do() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(dir.path(), AUTH, "[poll]\nmeetings = [\"m\"]\n");
    // It may write and remove a probe file to prove a folder writable.
    let before = listing(dir.path());
    // `--config` after the command works too.
    let out = run(&["check-config", "--config", &config], &[]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let archive = dir.path().join("archive/recordings");
    assert!(
        stdout.contains(&format!(
            "download.dir folder {}: does not exist; sync/run would create it",
            archive.display()
        )),
        "{stdout}"
    );
    assert!(stdout.contains("ledger.path folder"), "{stdout}");
    assert!(stdout.ends_with("config OK\n"), "{stdout}");
    assert_eq!(listing(dir.path()), before, "nothing created");
    assert!(!dir.path().join("archive").exists() && !dir.path().join("db").exists());
}

#[test]
fn bad_log_levels_schedules_and_types_are_refused_in_words() {
    let dir = tempfile::tempdir().expect("tempdir");
    let cases = [
        (
            "[log]\nlevel = \"verbose\"\n",
            "log.level \"verbose\" is not a level",
        ),
        (
            "[poll]\nschedule = \"0 0 0 30 2 *\"\n",
            "invalid cron expression \"0 0 0 30 2 *\": it never fires",
        ),
        (
            "[poll]\nschedule = \"*/10 * * *\"\n",
            "it has 4 fields; 5 fields (minute hour day-of-month month day-of-week",
        ),
        (
            "[download]\nworkers = \"4\"\n",
            "download.workers must be a number, got \"4\"",
        ),
    ];
    for (extra, needle) in cases {
        let config = write_config(dir.path(), AUTH, extra);
        for command in ["check-config", "sync", "run"] {
            let out = run(&["--config", &config, command], &[]);
            let err = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{command} {extra:?}: {err}");
            assert!(
                err.contains(needle),
                "{command}: {err:?} should say {needle}"
            );
        }
    }
}

#[test]
fn check_config_prints_the_schedulers_next_runs_day_and_weekday_both_matching() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = write_config(
        dir.path(),
        AUTH,
        "[poll]\nschedule = \"*/5 * * 27 * MON\"\n",
    );
    let out = run(&["--config", &config, "check-config"], &[]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let runs: Vec<NaiveDateTime> = stdout
        .lines()
        .skip_while(|l| *l != "next polls (UTC):")
        .skip(1)
        .take_while(|l| !l.is_empty())
        .map(|l| {
            let time = l.trim().rsplit_once(' ').map_or(l, |(t, _)| t);
            NaiveDateTime::parse_from_str(time, "%Y-%m-%d %H:%M:%S").expect(l)
        })
        .collect();
    assert_eq!(runs.len(), 3, "{stdout}");
    for run in &runs {
        assert_eq!((run.day(), run.weekday()), (27, Weekday::Mon), "{stdout}");
    }
    assert_eq!((runs[1] - runs[0]).num_seconds(), 5, "{stdout}");
}

#[test]
fn placeholder_credentials_are_warned_about_without_printing_the_key() {
    let dir = tempfile::tempdir().expect("tempdir");
    let auth = "app_id = \"your-app-id\"\napp_key = \"your-app-key\"";
    let config = write_config(dir.path(), auth, "");
    let out = run(&["--config", &config, "check-config"], &[]);
    let (stdout, all) = (text(&out.stdout), text(&out.stdout) + &text(&out.stderr));
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(
        stdout.contains("cloud.auth.app_id \"your-app-id\" looks like a placeholder"),
        "{stdout}"
    );
    assert!(
        stdout.contains("cloud.auth.app_key (inline) looks like a placeholder"),
        "{stdout}"
    );
    assert!(
        !all.contains("your-app-key"),
        "the key itself is never printed"
    );
}

#[test]
fn a_systemd_credential_missing_by_hand_is_a_warning_for_check_config_only() {
    let dir = tempfile::tempdir().expect("tempdir");
    let key = "/run/credentials/meeting-archiver-test.service/app_key";
    let config = write_config(
        dir.path(),
        &format!("app_id = \"a1\"\napp_key_file = {key:?}"),
        "",
    );
    let out = run(&["--config", &config, "check-config"], &[]);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        stdout.contains(&format!(
            "cloud.auth.app_key_file {key} is not readable now (it exists only while the \
             service runs); MEETING_ARCHIVER_APP_KEY overrides it"
        )),
        "{stdout}"
    );
    let out = run(&["--config", &config, "sync"], &[]);
    let err = text(&out.stderr);
    assert_eq!(out.status.code(), Some(2), "sync needs the secret: {err}");
    assert!(err.contains("cloud.auth.app_key_file"), "{err}");
    let env = [("MEETING_ARCHIVER_APP_KEY", "by-hand-key")];
    let out = run(&["--config", &config, "check-config"], &env);
    let stdout = text(&out.stdout);
    assert_eq!(out.status.code(), Some(0));
    assert!(
        stdout.contains("****** (from environment MEETING_ARCHIVER_APP_KEY)"),
        "{stdout}"
    );
    assert!(!stdout.contains("not readable now"), "{stdout}");
    assert!(!stdout.contains("by-hand-key"), "{stdout}");
}

#[test]
fn help_lists_exit_statuses_and_demo_takes_no_config() {
    for command in [
        "run",
        "sync",
        "status",
        "check-config",
        "verify",
        "retry",
        "healthcheck",
    ] {
        let out = run(&[command, "--help"], &[]);
        let help = text(&out.stdout);
        assert!(help.contains("Exit status:\n  0  "), "{command}: {help}");
        assert!(help.contains("--config <PATH>"), "{command}: {help}");
    }
    for command in ["demo", "simulator"] {
        let help = text(&run(&[command, "--help"], &[]).stdout);
        assert!(help.contains("Exit status:"), "{command}: {help}");
        assert!(!help.contains("--config"), "{command}: {help}");
    }
}
