//! Unit tests for what `check-config` adds: folders inspected without being
//! created, placeholder credentials, and a systemd credential that exists
//! only while the service runs.

use crate::test_support::listing;
use std::path::Path;

use secrecy::ExposeSecret;

use super::*;

const TOKEN: &str = "[cloud.auth]\naccess_token = \"t\"\n";

fn with_dirs(archive: &Path, ledger: &Path) -> Config {
    let mut c = Config::from_toml(TOKEN, &|_| None).expect("valid");
    c.download.dir = archive.to_path_buf();
    c.ledger.path = ledger.to_path_buf();
    c
}

#[test]
fn inspect_dirs_creates_nothing_and_says_what_sync_would_do() {
    let tmp = tempfile::tempdir().unwrap();
    std::fs::create_dir(tmp.path().join("db")).unwrap();
    let c = with_dirs(
        &tmp.path().join("archive/deep"),
        &tmp.path().join("db/ledger.sqlite3"),
    );
    let reports = c.inspect_dirs().unwrap();
    assert_eq!(reports[0].state, DirState::WouldCreate);
    assert_eq!(
        reports[0].to_string(),
        format!(
            "download.dir folder {}: does not exist; sync/run would create it",
            c.download.dir.display()
        )
    );
    assert_eq!(reports[1].state, DirState::Writable);
    assert_eq!(
        listing(tmp.path()),
        [tmp.path().join("db")],
        "nothing created"
    );
    assert!(listing(&tmp.path().join("db")).is_empty(), "no probe left");
}

#[test]
fn inspect_dirs_reports_a_file_in_the_way() {
    let tmp = tempfile::tempdir().unwrap();
    let file = tmp.path().join("regular");
    std::fs::write(&file, "x").unwrap();
    let c = with_dirs(&file.join("archive"), &tmp.path().join("l.sqlite3"));
    let e = c.inspect_dirs().unwrap_err().to_string();
    let expected = format!(
        "download.dir: cannot create folder {}: {} is a file, not a folder",
        file.join("archive").display(),
        file.display()
    );
    assert_eq!(e, expected);
    let c = with_dirs(&tmp.path().join("a"), &tmp.path().join("a"));
    std::fs::create_dir(tmp.path().join("a")).unwrap();
    let e = c.inspect_dirs().unwrap_err().to_string();
    assert!(e.starts_with("ledger.path names a folder"), "{e}");
}

#[test]
fn placeholder_credentials_are_flagged_without_showing_the_secret() {
    let text = "[cloud.auth]\napp_id = \"your-app-id\"\napp_key = \"paste-your-app-key\"\n";
    let c = Config::from_toml(text, &|_| None).unwrap();
    let warnings = c.warnings().join("\n");
    assert!(
        warnings.contains("cloud.auth.app_id \"your-app-id\" looks like a placeholder"),
        "{warnings}"
    );
    assert!(
        warnings.contains("cloud.auth.app_key (inline) looks like a placeholder"),
        "{warnings}"
    );
    assert!(!warnings.contains("paste-your"), "{warnings}");
    let real = "[cloud.auth]\napp_id = \"a1b2\"\napp_key = \"s3cr3t\"\n";
    let c = Config::from_toml(real, &|_| None).unwrap();
    assert!(!c.warnings().join("\n").contains("placeholder"));
}

#[test]
fn a_systemd_credential_is_pending_for_check_config_only() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("c.toml");
    let key = "/run/credentials/meeting-archiver-test.service/app_key";
    let body = format!("[cloud.auth]\napp_id = \"a\"\napp_key_file = \"{key}\"\n");
    std::fs::write(&path, body).unwrap();
    let c = Config::load_with(&path, Secrets::Check).expect("pending, not refused");
    assert_eq!(c.cloud.auth_source, SecretSource::Pending(key.into()));
    let warnings = c.warnings().join("\n");
    assert!(
        warnings.contains(&format!(
            "cloud.auth.app_key_file {key} is not readable now (it exists only while the \
             service runs); MEETING_ARCHIVER_APP_KEY overrides it"
        )),
        "{warnings}"
    );
    assert!(c.summary().contains("not readable now"));
    assert!(matches!(
        Config::load_with(&path, Secrets::Required),
        Err(ConfigError::SecretFile { .. })
    ));
    // Elsewhere a missing key file is an error even for check-config.
    std::fs::write(
        &path,
        "[cloud.auth]\napp_id = \"a\"\napp_key_file = \"/nonexistent/app_key\"\n",
    )
    .unwrap();
    assert!(Config::load_with(&path, Secrets::Check).is_err());
}

#[test]
fn the_environment_stands_in_for_an_unreadable_key_file() {
    let text = "[cloud.auth]\napp_id = \"a\"\napp_key_file = \"/run/credentials/x/app_key\"\n";
    let env = |name: &str| (name == ENV_APP_KEY).then(|| "from-env".to_string());
    let c = Config::from_toml(text, &env).expect("the variable overrides");
    assert_eq!(c.cloud.auth_source, SecretSource::Env(ENV_APP_KEY));
    let Auth::AppId { app_key, .. } = &c.cloud.auth else {
        panic!("App ID")
    };
    assert_eq!(app_key.expose_secret(), "from-env");
}
