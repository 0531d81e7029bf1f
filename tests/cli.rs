//! The binary as users and scripts see it: exit statuses, error messages,
//! `status --json`, secrets kept out of every output, `demo`.

mod first_contact;
mod status_views;

use std::process::Output;

use assert_cmd::Command;
use meeting_archiver::simulator::SimMeeting;

use crate::helpers::*;

fn run(args: &[&str], envs: &[(&str, &str)]) -> Output {
    let mut cmd = Command::cargo_bin("meeting-archiver").expect("binary built");
    cmd.args(args)
        .env_remove("RUST_LOG")
        .env_remove("MEETING_ARCHIVER_APP_KEY");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    cmd.timeout(TEST_TIMEOUT).output().expect("binary runs")
}

async fn run_async(args: Vec<String>, envs: Vec<(String, String)>) -> Output {
    tokio::task::spawn_blocking(move || {
        let args: Vec<&str> = args.iter().map(String::as_str).collect();
        let envs: Vec<(&str, &str)> = envs.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        run(&args, &envs)
    })
    .await
    .expect("join")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

#[test]
fn invalid_configs_exit_2_naming_the_problem() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = "[cloud.auth]\napp_id = \"a\"\napp_key = \"k\"\n";
    let cases = [
        (format!("{base}[download]\nwrokers = 2\n"), "wrokers"),
        (
            format!("{base}[poll]\nschedule = \"every tuesday\"\n"),
            "poll.schedule",
        ),
        ("[poll]\nmeetings = []\n".to_owned(), "auth"),
        (
            format!("{base}[download]\nworkers = 0\n"),
            "download.workers",
        ),
        ("this is [not toml".to_owned(), "TOML"),
    ];
    for (i, (body, needle)) in cases.iter().enumerate() {
        let path = dir.path().join(format!("c{i}.toml"));
        std::fs::write(&path, body).expect("write");
        for command in ["check-config", "sync"] {
            let out = run(&["--config", &path.to_string_lossy(), command], &[]);
            let err = text(&out.stderr);
            assert_eq!(out.status.code(), Some(2), "{command} on {body:?}: {err}");
            assert!(
                err.contains(needle),
                "{command}: {err:?} should name {needle}"
            );
            assert!(!err.contains("panicked"), "{err}");
        }
    }
    let missing = run(
        &["--config", "/nonexistent/meeting-archiver.toml", "sync"],
        &[],
    );
    assert_eq!(missing.status.code(), Some(2));
    assert!(text(&missing.stderr).contains("/nonexistent/meeting-archiver.toml"));
}

#[test]
fn check_config_masks_secrets() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("c.toml");
    let body = format!(
        "[cloud.auth]\napp_id = \"my-app\"\napp_key = \"TOPSECRET-app-key-42\"\n[download]\ndir = {:?}\n[ledger]\npath = {:?}\n",
        dir.path().join("a"),
        dir.path().join("l.sqlite3")
    );
    std::fs::write(&path, body).expect("write");
    let out = run(&["--config", &path.to_string_lossy(), "check-config"], &[]);
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    let all = text(&out.stdout) + &text(&out.stderr);
    assert!(all.contains("my-app"));
    assert!(!all.contains("TOPSECRET"), "{all}");
}

#[tokio::test]
async fn sync_at_trace_level_logs_no_secret_and_status_json_counts_files() {
    let env = TestEnv::start(scenario(vec![SimMeeting::standard(
        "9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a9a",
        "Secrets",
        2,
        &["Hd", "Sd"],
        2048,
    )]))
    .await;
    let config = env
        .write_config(&env.config())
        .to_string_lossy()
        .into_owned();
    let args = vec!["--config".to_owned(), config.clone(), "sync".to_owned()];
    let out = run_async(args, vec![("RUST_LOG".into(), "trace".into())]).await;
    let all = text(&out.stdout) + &text(&out.stderr);
    assert_eq!(out.status.code(), Some(0), "{all}");
    assert!(
        all.contains("TRACE") || all.contains("DEBUG"),
        "the most verbose level was on"
    );
    assert!(!all.contains(&env.app_key), "app key leaked");
    let secrets = env.sim.issued_tokens();
    assert!(secrets.len() >= 5, "access + download tokens were issued");
    for secret in secrets {
        assert!(!all.contains(&secret), "a token leaked into the logs");
    }
    let out = run_async(
        vec![
            "--config".into(),
            config,
            "status".into(),
            "--json".into(),
            "--meetings".into(),
        ],
        vec![],
    )
    .await;
    assert_eq!(out.status.code(), Some(0));
    let doc: serde_json::Value =
        serde_json::from_slice(&out.stdout).expect("status --json is JSON");
    assert_eq!(doc["meetings"], 1);
    assert_eq!(doc["files"]["done"], 4);
    assert_eq!(doc["files"]["pending"], 0);
    assert_eq!(doc["files"]["downloading"], 0);
    assert_eq!(doc["files"]["failed"], 0);
    assert_eq!(doc["bytes_archived"], 4 * 2048);
    assert_eq!(doc["meeting_list"][0]["state"], "complete");
    assert_eq!(doc["meeting_list"][0]["files_done"], 4);
    // Typed in the ledger, the same JSON as ever: a lower-case origin and
    // times as integers of Unix milliseconds.
    assert_eq!(doc["meeting_list"][0]["origin"], "config");
    assert!(doc["meeting_list"][0]["last_polled_at"].is_i64(), "{doc}");
    assert!(doc["meeting_list"][0]["complete_since"].is_i64(), "{doc}");
}

#[test]
fn demo_runs_end_to_end_without_a_config() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run_demo(dir.path());
    let stdout = text(&out.stdout);
    assert_eq!(
        out.status.code(),
        Some(0),
        "{stdout}\n{}",
        text(&out.stderr)
    );
    assert!(stdout.contains("14 good, 0 bad"), "{stdout}");
    let archive = dir.path().join("meeting-archiver-demo/archive");
    assert_eq!(archived_media(&archive).len(), 14);
}

#[tokio::test]
async fn json_logs_are_one_object_per_line_with_meeting_and_file() {
    let env = TestEnv::start(scenario(vec![SimMeeting::standard(
        "8b8b8b8b8b8b8b8b8b8b8b8b8b8b8b8b",
        "Json",
        1,
        &["Hd"],
        1024,
    )]))
    .await;
    let config = env
        .write_config(&env.config())
        .to_string_lossy()
        .into_owned();
    let args = vec![
        "--config".to_owned(),
        config,
        "--log-format".to_owned(),
        "json".to_owned(),
        "sync".to_owned(),
    ];
    let out = run_async(args, vec![("RUST_LOG".into(), "info".into())]).await;
    assert_eq!(out.status.code(), Some(0));
    let stderr = text(&out.stderr);
    let lines: Vec<serde_json::Value> = stderr
        .lines()
        .map(|l| serde_json::from_str(l).unwrap_or_else(|e| panic!("not JSON ({e}): {l}")))
        .collect();
    let archived = lines
        .iter()
        .find(|l| l["fields"]["message"] == "archived")
        .expect("an 'archived' line");
    assert_eq!(
        archived["span"]["meeting"],
        "8b8b8b8b8b8b8b8b8b8b8b8b8b8b8b8b"
    );
    let file = archived["span"]["file"].as_str().expect("a file field");
    assert!(
        file.contains(" Json (") && file.ends_with(")/Hd/0_0.mp4"),
        "the meeting's dated, titled folder: {file}"
    );
    assert!(!stderr.contains('\u{1b}'), "no colour codes off a terminal");
}

#[tokio::test]
async fn the_simulator_command_serves_a_cloud_that_sync_can_archive() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("sim.toml");
    let mut sim = std::process::Command::new(assert_cmd::cargo::cargo_bin("meeting-archiver"))
        .args([
            "simulator",
            "--dir",
            &dir.path().join("data").to_string_lossy(),
        ])
        .args(["--write-config", &config.to_string_lossy()])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("simulator starts");
    until("the simulator's config file", async || config.exists()).await;
    let args = vec![
        "--config".to_owned(),
        config.to_string_lossy().into_owned(),
        "sync".to_owned(),
    ];
    let out = run_async(args, vec![]).await;
    let _ = sim.kill();
    let _ = sim.wait();
    assert_eq!(out.status.code(), Some(0), "{}", text(&out.stderr));
    assert!(
        text(&out.stdout).contains("14 archived, 0 failed"),
        "{}",
        text(&out.stdout)
    );
}

/// Asserts that every line of `stderr` names each cause once (no `: `
/// segment repeats) and that its `error:` line names everything in `names`.
fn assert_each_cause_once(stderr: &str, names: &[&str]) {
    for line in stderr.lines() {
        let mut seen = std::collections::HashSet::new();
        for segment in line.split(": ").map(str::trim).filter(|s| !s.is_empty()) {
            assert!(seen.insert(segment), "{segment:?} repeats in {line:?}");
        }
    }
    let error = stderr
        .lines()
        .find(|l| l.starts_with("error: "))
        .unwrap_or_else(|| panic!("no error line in {stderr:?}"));
    for name in names {
        assert!(error.contains(name), "{error:?} should name {name}");
    }
}

#[test]
fn unusable_paths_are_reported_with_key_path_and_each_cause_once() {
    let dir = tempfile::tempdir().expect("tempdir");
    let base = dir.path();
    let regular = base.join("regular-file");
    std::fs::write(&regular, "not a folder").expect("write");
    let not_a_db = base.join("not-a-database.sqlite3");
    std::fs::write(&not_a_db, "plain text, not SQLite. ".repeat(10)).expect("write");
    std::fs::create_dir(base.join("folder-ledger")).expect("mkdir");
    let (good_dir, good_ledger) = (base.join("archive"), base.join("ledger.sqlite3"));
    let path = |p: &std::path::Path| p.to_string_lossy().into_owned();
    let missing_ca = base.join("missing-ca.pem");
    // (download.dir, ledger.path, tls.ca_file, what the error names)
    let cases = [
        (
            good_dir.clone(),
            good_ledger.clone(),
            Some(missing_ca.clone()),
            vec![
                "tls.ca_file".to_owned(),
                path(&missing_ca),
                "No such file or directory".to_owned(),
            ],
        ),
        (
            good_dir.clone(),
            base.join("folder-ledger"),
            None,
            vec!["ledger.path".to_owned(), path(&base.join("folder-ledger"))],
        ),
        (
            good_dir.clone(),
            regular.join("ledger.sqlite3"),
            None,
            vec![
                "ledger.path".to_owned(),
                path(&regular),
                "File exists".to_owned(),
            ],
        ),
        (
            good_dir.clone(),
            not_a_db.clone(),
            None,
            vec![
                "ledger.path".to_owned(),
                path(&not_a_db),
                "file is not a database".to_owned(),
            ],
        ),
        (
            regular.clone(),
            good_ledger.clone(),
            None,
            vec![
                "download.dir".to_owned(),
                path(&regular),
                "File exists".to_owned(),
            ],
        ),
    ];
    for (i, (archive, ledger, ca, names)) in cases.iter().enumerate() {
        let mut body = format!(
            "[cloud.auth]\napp_id = \"a\"\napp_key = \"k\"\n[poll]\nmeetings = [\"m\"]\n\
             [download]\ndir = {:?}\n[ledger]\npath = {:?}\n",
            path(archive),
            path(ledger)
        );
        if let Some(ca) = ca {
            body.push_str(&format!("[tls]\nca_file = {:?}\n", path(ca)));
        }
        let config = base.join(format!("c{i}.toml"));
        std::fs::write(&config, body).expect("write");
        let names: Vec<&str> = names.iter().map(String::as_str).collect();
        // check-config creates nothing, so it names a file in the way
        // itself rather than quoting the failed mkdir.
        let check_names: Vec<&str> = names
            .iter()
            .map(|n| match *n {
                "File exists" => "is a file, not a folder",
                n => n,
            })
            .collect();
        // A setup problem is exit 2 for every command (systemd's
        // RestartPreventExitStatus=2 then stops restarting the daemon).
        for (command, code, names) in [
            ("sync", 2, &names),
            ("run", 2, &names),
            ("check-config", 2, &check_names),
        ] {
            let out = run(&["--config", &path(&config), command], &[]);
            let err = text(&out.stderr);
            assert_eq!(out.status.code(), Some(code), "{command} case {i}: {err}");
            assert_each_cause_once(&err, names);
        }
    }
}
