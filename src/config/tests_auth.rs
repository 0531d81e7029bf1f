//! Unit tests for authentication and secret handling: sources, conflicts, and
//! that no secret value ever reaches `Debug`, `summary()` or an error.

use std::io::Write as _;

use secrecy::ExposeSecret;

use super::*;

const KEY: &str = "s3cr3t-key";

fn env_with(pairs: &'static [(&'static str, &'static str)]) -> impl Fn(&str) -> Option<String> {
    move |name| {
        pairs
            .iter()
            .find(|(k, _)| *k == name)
            .map(|(_, v)| v.to_string())
    }
}

fn parse_env(
    text: &str,
    pairs: &'static [(&'static str, &'static str)],
) -> Result<Config, ConfigError> {
    Config::from_toml(text, &env_with(pairs))
}

fn err(text: &str) -> String {
    parse_env(text, &[])
        .err()
        .map(|e| e.to_string())
        .unwrap_or_default()
}

fn secret_file(content: &str) -> tempfile::NamedTempFile {
    let mut file = tempfile::NamedTempFile::new().unwrap();
    file.write_all(content.as_bytes()).unwrap();
    file
}

fn toml_path(path: &std::path::Path) -> String {
    path.display().to_string().replace('\\', "\\\\")
}

#[test]
fn no_auth() {
    let e = err("");
    assert!(e.starts_with("no authentication configured"), "{e}");
    let e = err("[cloud.auth]\napp_id = \"id\"\n");
    assert!(
        e.contains("cloud.auth.app_key missing (or app_key_file, or MEETING_ARCHIVER_APP_KEY)")
    );
    let e = err("[cloud.auth]\napp_key = \"s3cr3t-key\"\n");
    assert!(e.contains("app_id"), "{e}");
}

#[test]
fn both_auth_methods() {
    let e = err("[cloud.auth]\napp_id = \"id\"\napp_key = \"k\"\naccess_token = \"s3cr3t-key\"\n");
    assert!(e.contains("exactly one auth method"), "{e}");
    assert!(!e.contains(KEY));
}

#[test]
fn secret_from_file_is_trimmed() {
    let file = secret_file("s3cr3t-key\n\n");
    let text = format!(
        "[cloud.auth]\napp_id = \"id\"\napp_key_file = \"{}\"\n",
        toml_path(file.path())
    );
    let c = parse_env(&text, &[]).unwrap();
    let Auth::AppId { app_key, .. } = &c.cloud.auth else {
        panic!("expected App ID")
    };
    assert_eq!(app_key.expose_secret(), KEY);
    assert_eq!(
        c.cloud.auth_source,
        SecretSource::File(file.path().to_path_buf())
    );
    let summary = c.summary();
    assert!(
        summary.contains(&format!("****** (from file {})", file.path().display())),
        "{summary}"
    );
}

#[test]
fn unreadable_or_empty_secret_file() {
    let text = "[cloud.auth]\naccess_token_file = \"/nonexistent/token\"\n";
    let e = err(text);
    assert!(
        e.starts_with("cloud.auth.access_token_file: cannot read /nonexistent/token"),
        "{e}"
    );
    let file = secret_file(" \n");
    let text = format!(
        "[cloud.auth]\naccess_token_file = \"{}\"\n",
        toml_path(file.path())
    );
    assert!(err(&text).contains("is empty"));
    assert!(
        err("[cloud.auth]\naccess_token = \"\"\n").contains("cloud.auth.access_token is empty")
    );
}

#[test]
fn secret_from_env() {
    let c = parse_env(
        "[cloud.auth]\napp_id = \"id\"\n",
        &[(ENV_APP_KEY, KEY), (ENV_ACCESS_TOKEN, "other")],
    )
    .unwrap();
    let Auth::AppId { app_key, .. } = &c.cloud.auth else {
        panic!("expected App ID")
    };
    assert_eq!(app_key.expose_secret(), KEY);
    assert!(
        c.summary()
            .contains("****** (from environment MEETING_ARCHIVER_APP_KEY)")
    );
    let c = parse_env("", &[(ENV_ACCESS_TOKEN, KEY)]).unwrap();
    let Auth::AccessToken(token) = &c.cloud.auth else {
        panic!("expected a token")
    };
    assert_eq!(token.expose_secret(), KEY);
    assert_eq!(c.cloud.auth_source, SecretSource::Env(ENV_ACCESS_TOKEN));
    // The file wins over the environment.
    let c = parse_env(
        "[cloud.auth]\naccess_token = \"inline\"\n",
        &[(ENV_ACCESS_TOKEN, KEY)],
    );
    let c = c.unwrap();
    assert_eq!(c.cloud.auth_source, SecretSource::Inline);
    assert!(c.summary().contains("****** (inline)"));
}

#[test]
fn both_secret_and_file() {
    let e = err("[cloud.auth]\napp_id = \"id\"\napp_key = \"s3cr3t-key\"\napp_key_file = \"/k\"\n");
    assert!(
        e.contains("cloud.auth.app_key and cloud.auth.app_key_file are both set"),
        "{e}"
    );
    assert!(!e.contains(KEY));
    let e = err("[cloud.auth]\naccess_token = \"s3cr3t-key\"\naccess_token_file = \"/k\"\n");
    assert!(e.contains("cloud.auth.access_token_file"), "{e}");
}

#[test]
fn empty_optional_ids_are_none() {
    let text = "[cloud.auth]\napp_id = \"id\"\napp_key = \"k\"\nuser_id = \"\"\ncorp_id = \"c1\"\n";
    let c = parse_env(text, &[]).unwrap();
    let Auth::AppId {
        user_id, corp_id, ..
    } = &c.cloud.auth
    else {
        panic!("expected App ID")
    };
    assert_eq!(user_id, &None);
    assert_eq!(corp_id.as_deref(), Some("c1"));
    assert!(err("[cloud.auth]\naccess_token = \"t\"\nuser_id = \"u\"\n").contains("user_id"));
}

#[test]
fn summary_and_debug_hide_secrets() {
    for text in [
        "[cloud.auth]\napp_id = \"id\"\napp_key = \"s3cr3t-key\"\n",
        "[cloud.auth]\naccess_token = \"s3cr3t-key\"\n",
    ] {
        let c = parse_env(text, &[]).unwrap();
        let summary = c.summary();
        assert!(!summary.contains(KEY), "{summary}");
        assert!(summary.contains("******"), "{summary}");
        let debug = format!("{c:?} {:?} {:#?}", c.cloud.auth, c);
        assert!(!debug.contains(KEY), "{debug}");
    }
}

#[test]
fn summary_warns_when_nothing_to_archive() {
    let c = parse_env(
        "[cloud.auth]\naccess_token = \"t\"\n[poll]\nmeetings = []\n",
        &[],
    )
    .unwrap();
    assert!(
        c.summary()
            .contains("no meetings configured and discovery off: nothing to archive")
    );
    let c = parse_env(
        "[cloud.auth]\naccess_token = \"t\"\n[poll]\ndiscover_days = 7\n",
        &[],
    )
    .unwrap();
    assert!(!c.summary().contains("nothing to archive"));
}

#[test]
fn load_reads_a_file_and_names_it() {
    let e = Config::load(std::path::Path::new("/nonexistent/config.toml")).unwrap_err();
    let chain = crate::telemetry::error_chain(&e);
    assert_eq!(
        chain,
        "cannot read config file /nonexistent/config.toml: No such file or directory (os error 2)",
        "the cause is named once"
    );
    let file = secret_file("[cloud\n");
    let e = Config::load(file.path()).unwrap_err().to_string();
    let expected = format!(
        "config file {} is not valid TOML: line 1",
        file.path().display()
    );
    assert!(e.starts_with(&expected), "{e}");
    let file = secret_file("[cloud.auth]\naccess_token = \"t\"\n");
    assert!(Config::load(file.path()).is_ok());
}

#[test]
fn check_dirs_on_a_tempdir() {
    let tmp = tempfile::tempdir().unwrap();
    let mut c = parse_env("[cloud.auth]\naccess_token = \"t\"\n", &[]).unwrap();
    c.download.dir = tmp.path().join("archive/deep");
    c.ledger.path = tmp.path().join("db/ledger.sqlite3");
    c.check_dirs().unwrap();
    assert!(c.download.dir.is_dir());
    assert!(tmp.path().join("db").is_dir());
    assert_eq!(
        std::fs::read_dir(&c.download.dir).unwrap().count(),
        0,
        "probe left behind"
    );
}

#[test]
fn check_dirs_under_a_regular_file_fails() {
    let file = secret_file("not a folder");
    let mut c = parse_env("[cloud.auth]\naccess_token = \"t\"\n", &[]).unwrap();
    let tmp = tempfile::tempdir().unwrap();
    c.ledger.path = tmp.path().join("ledger.sqlite3");
    c.download.dir = file.path().join("archive");
    let e = c.check_dirs().unwrap_err().to_string();
    assert!(e.starts_with("download.dir: cannot create folder"), "{e}");
    c.download.dir = tmp.path().join("archive");
    c.ledger.path = file.path().join("ledger.sqlite3");
    let e = c.check_dirs().unwrap_err().to_string();
    assert!(e.starts_with("ledger.path: "), "{e}");
    assert!(e.contains(&file.path().display().to_string()), "{e}");
    c.ledger.path = tmp.path().join("archive");
    let e = c.check_dirs().unwrap_err().to_string();
    let expected = format!(
        "ledger.path names a folder, not a file: {}",
        c.ledger.path.display()
    );
    assert_eq!(e, expected);
}

#[test]
fn local_commands_load_without_the_secret_but_not_without_structure() {
    let dir = tempfile::tempdir().expect("tempdir");
    let path = dir.path().join("c.toml");
    let missing = dir.path().join("absent-key");
    let body = format!(
        "[cloud.auth]\napp_id = \"a\"\napp_key_file = {:?}\n",
        missing
    );
    std::fs::write(&path, &body).expect("write");
    assert!(matches!(
        Config::load(&path),
        Err(ConfigError::SecretFile { .. })
    ));
    let local = Config::load_local(&path).expect("local load tolerates the missing key");
    assert_eq!(local.cloud.auth_source, SecretSource::NotLoaded);
    std::fs::write(&path, "[cloud.auth]\napp_id = \"a\"\n").expect("write");
    assert!(
        Config::load_local(&path).is_ok(),
        "no key at all is fine for local commands"
    );
    std::fs::write(
        &path,
        "[cloud.auth]\napp_id = \"a\"\naccess_token = \"t\"\n",
    )
    .expect("write");
    assert!(
        Config::load_local(&path).is_err(),
        "two auth methods is still an error"
    );
    std::fs::write(&path, "[download]\nworkers = 0\n").expect("write");
    assert!(
        Config::load_local(&path).is_err(),
        "invalid values are still errors"
    );
}
