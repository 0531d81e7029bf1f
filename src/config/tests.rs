//! Unit tests for config parsing, validation, secrets, summary and `check_dirs`.

use std::time::Duration;

use secrecy::ExposeSecret;

use super::*;

const EXAMPLE: &str = include_str!("../../config/meeting-archiver.example.toml");
const MINIMAL: &str = "[cloud.auth]\napp_id = \"id\"\napp_key = \"s3cr3t-key\"\n";

fn no_env(_: &str) -> Option<String> {
    None
}

fn parse(text: &str) -> Result<Config, ConfigError> {
    Config::from_toml(text, &no_env)
}

fn err(text: &str) -> String {
    match parse(text) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e.to_string(),
    }
}

fn with(extra: &str) -> String {
    format!("{MINIMAL}{extra}")
}

#[test]
fn example_file_parses_to_the_defaults() {
    let example = parse(EXAMPLE).unwrap();
    let minimal = parse(MINIMAL).unwrap();
    assert_eq!(example.poll, minimal.poll);
    assert_eq!(example.download, minimal.download);
    assert_eq!(example.ledger, minimal.ledger);
    assert_eq!(example.tls, minimal.tls);
    assert_eq!(example.server, minimal.server);
    assert_eq!(example.log, minimal.log);
    assert_eq!(example.retention, minimal.retention);
    let webhook = |c: &Config| {
        let w = &c.webhook;
        (w.enabled, w.listen, w.path.clone(), w.accept_unlisted)
    };
    assert_eq!(webhook(&example), webhook(&minimal));
    assert_eq!(example.cloud.api_base, minimal.cloud.api_base);
    assert_eq!(example.cloud.request_timeout, minimal.cloud.request_timeout);
    assert_eq!(example.cloud.max_retries, minimal.cloud.max_retries);
    assert_eq!(example.cloud.retry_base, minimal.cloud.retry_base);
    assert_eq!(example.cloud.retry_max, minimal.cloud.retry_max);
}

#[test]
fn defaults() {
    let c = parse(MINIMAL).unwrap();
    assert_eq!(
        c.cloud.api_base.as_str(),
        "https://api.meeting.huaweicloud.com/"
    );
    assert_eq!(c.cloud.request_timeout, Duration::from_secs(30));
    assert_eq!(c.cloud.max_retries, 8);
    assert_eq!(c.cloud.retry_base, Duration::from_secs(1));
    assert_eq!(c.cloud.retry_max, Duration::from_secs(60));
    assert_eq!(c.poll, PollConfig::default());
    assert_eq!(c.poll.schedule, "0 */10 * * * *");
    assert_eq!(c.poll.recheck_for, Duration::from_secs(86400));
    assert_eq!(c.download, DownloadConfig::default());
    assert_eq!(c.download.workers, 4);
    assert_eq!(c.download.max_attempts, 10);
    assert_eq!(c.download.token_max_age, Duration::from_secs(3000));
    assert_eq!(
        c.download.dir.to_str(),
        Some("/var/lib/meeting-archiver/recordings")
    );
    assert_eq!(
        c.ledger.path.to_str(),
        Some("/var/lib/meeting-archiver/ledger.sqlite3")
    );
    assert_eq!(c.tls, TlsConfig::default());
    assert_eq!(c.server.listen, Some("127.0.0.1:9187".parse().unwrap()));
    assert_eq!(c.log, LogConfig::default());
    assert_eq!(c.log.format, LogFormat::Text);
    match &c.cloud.auth {
        Auth::AppId {
            app_id,
            app_key,
            user_id,
            corp_id,
        } => {
            assert_eq!(app_id, "id");
            assert_eq!(app_key.expose_secret(), "s3cr3t-key");
            assert_eq!((user_id, corp_id), (&None, &None));
        }
        Auth::AccessToken(_) => panic!("expected App ID auth"),
    }
    assert_eq!(c.cloud.auth_source, SecretSource::Inline);
}

#[test]
fn values_are_read() {
    let c = parse(&with(
        "[poll]\nmeetings = [\"a1\", \"b-2\", \"a1\"]\ndiscover_days = 3\n\
         [download]\nworkers = 8\nfile_types = [\"Hd\"]\nretry_max = \"1h\"\n\
         [tls]\nca_file = \"/ca.pem\"\ninsecure_download_hosts = [\"Files.Example.com\"]\n\
         [server]\nlisten = \"\"\n[log]\nformat = \"json\"\nlevel = \"debug\"\n",
    ))
    .unwrap();
    assert_eq!(c.poll.meetings, ["a1", "b-2"]);
    assert_eq!(c.poll.discover_days, 3);
    assert_eq!(c.download.workers, 8);
    assert_eq!(c.download.file_types, ["Hd"]);
    assert_eq!(c.download.retry_max, Duration::from_secs(3600));
    assert_eq!(
        c.tls.ca_file.as_deref(),
        Some(std::path::Path::new("/ca.pem"))
    );
    assert_eq!(c.tls.insecure_download_hosts, ["files.example.com"]);
    assert_eq!(c.server.listen, None);
    assert_eq!(c.log.format, LogFormat::Json);
    assert_eq!(c.log.level, "debug");
}

#[test]
fn unknown_keys_are_named() {
    let e = err(&with("[download]\nwrokers = 2\n"));
    assert!(e.contains("unknown key `download.wrokers`"), "{e}");
    let e = err(&format!("colour = true\n{MINIMAL}"));
    assert!(e.contains("unknown key `colour`"), "{e}");
    let e = err("[cloud.auth]\napp_id = \"id\"\napp_keyy = \"s3cr3t-key\"\n");
    assert!(e.contains("unknown key `cloud.auth.app_keyy`"), "{e}");
    assert!(!e.contains("s3cr3t"), "{e}");
    let e = err(&with("[extra]\n"));
    assert!(e.contains("unknown key `extra`"), "{e}");
    let e = err(&with("[cloud.authh]\nx = 1\n"));
    assert!(e.contains("unknown key `cloud.authh`"), "{e}");
    let e = err(&with("[cloud]\nretry.base = \"1s\"\n"));
    assert!(e.contains("unknown key `cloud.retry`"), "{e}");
}

#[test]
fn wrong_types_name_the_key() {
    let e = err(&with("[download]\nworkers = \"four\"\n"));
    assert!(e.contains("download.workers"), "{e}");
    let e = err(&with("[log]\nformat = \"xml\"\n"));
    assert!(e.contains("log.format"), "{e}");
    let e = err(&with("[poll]\nmeetings = [\n  \"a\",\n  5,\n]\n"));
    assert!(e.contains("poll.meetings"), "{e}");
}

#[test]
fn wrong_types_are_said_in_words() {
    let e = err(&with("[download]\nworkers = \"4\"\n"));
    assert!(
        e.ends_with("download.workers must be a number, got \"4\" (line 5, column 11)"),
        "{e}"
    );
    assert!(!e.contains("usize"), "{e}");
    let e = err(&with("[download]\nmax_attempts = -1\n"));
    assert!(
        e.contains("download.max_attempts must be a whole number from 0 to 4294967295, got -1"),
        "{e}"
    );
    let e = err(&with("[log]\nformat = \"xml\"\n"));
    assert!(
        e.contains("log.format must be \"text\" or \"json\", got \"xml\""),
        "{e}"
    );
    let e = err(&with("[poll]\nmeetings = [\n  \"a\",\n  5,\n]\n"));
    assert!(
        e.contains("poll.meetings: every item must be a string, got 5"),
        "{e}"
    );
    let e = err(&with("[poll]\nmeetings = \"abc\"\n"));
    assert!(e.contains("poll.meetings must be a list"), "{e}");
    let e = err(&with("[server]\nlisten = 9187\n"));
    assert!(
        e.contains("server.listen must be a string, got 9187"),
        "{e}"
    );
    let e = err(&format!("download = 3\n{MINIMAL}"));
    assert!(e.contains("must be a table, got 3"), "{e}");
    assert!(!e.contains("Raw"), "no internal type names: {e}");
}

#[test]
fn log_level_must_be_a_filter_that_logs() {
    let e = err(&with("[log]\nlevel = \"verbose\"\n"));
    assert!(
        e.starts_with("log.level \"verbose\" is not a level: use a level (error, warn"),
        "{e}"
    );
    let e = err(&with("[log]\nlevel = \"info,meeting_archiver=loud\"\n"));
    assert!(e.starts_with("log.level "), "{e}");
    for ok in [
        "debug",
        "WARN",
        "info,meeting_archiver=debug",
        "off",
        "hyper=debug",
    ] {
        let c = parse(&with(&format!("[log]\nlevel = {ok:?}\n"))).expect(ok);
        assert_eq!(c.log.level, ok);
    }
    let quiet = parse(&with("[log]\nlevel = \"hyper=debug\"\n")).unwrap();
    assert!(
        quiet
            .warnings()
            .iter()
            .any(|w| w.contains("no default level")),
        "{:?}",
        quiet.warnings()
    );
}

#[test]
fn not_toml() {
    let e = err("[cloud\napp_key = \"s3cr3t-key\"");
    assert!(e.starts_with("config is not valid TOML: line 1"), "{e}");
    let e = err("[cloud.auth]\napp_key = \"s3cr3t-key");
    assert!(e.contains("not valid TOML"), "{e}");
    assert!(!e.contains("s3cr3t"), "{e}");
}

#[test]
fn wrongly_typed_secret_is_not_echoed() {
    let e = err("[cloud.auth]\napp_id = \"id\"\napp_key = 987654321\n");
    assert!(e.contains("cloud.auth.app_key"), "{e}");
    assert!(!e.contains("987654321"), "{e}");
}

#[test]
fn cron_expressions() {
    let e = err(&with("[poll]\nschedule = \"every ten minutes\"\n"));
    assert!(
        e.starts_with("poll.schedule: invalid cron expression \"every ten minutes\": "),
        "{e}"
    );
    let e = err(&with("[poll]\nschedule = \"0 61 * * * *\"\n"));
    assert!(e.contains("poll.schedule"), "{e}");
    let c = parse(&with("[poll]\nschedule = \"*/5  * * * *\"\n")).unwrap();
    assert_eq!(c.poll.schedule, "0 */5 * * * *");
    let c = parse(&with("[poll]\nschedule = \"30 0 3 * * Mon\"\n")).unwrap();
    assert_eq!(c.poll.schedule, "30 0 3 * * Mon");
}

#[test]
fn cron_errors_say_which_forms_are_accepted() {
    let e = err(&with("[poll]\nschedule = \"every ten minutes\"\n"));
    assert!(e.contains("it has 3 fields; 5 fields (minute hour"), "{e}");
    assert!(e.contains("\"0 */10 * * * *\""), "an example: {e}");
    let e = err(&with("[poll]\nschedule = \"0 61 * * * *\"\n"));
    assert!(
        e.contains("5 fields") && e.contains("6 with seconds first"),
        "{e}"
    );
    let e = err(&with("[poll]\nschedule = \"0 0 0 30 2 *\"\n"));
    assert_eq!(
        e,
        "poll.schedule: invalid cron expression \"0 0 0 30 2 *\": it never fires: no date \
         matches it (day-of-month and day-of-week must both match, and the day must exist in \
         the month)"
    );
    let c = parse(&with("[poll]\nschedule = \"*/5 * * 27 * MON\"\n")).unwrap();
    assert_eq!(c.poll.schedule, "*/5 * * 27 * MON", "6 fields: every 5 s");
}

#[test]
fn ranges_are_checked() {
    let e = err(&with("[download]\nworkers = 0\n"));
    assert_eq!(e, "download.workers must be at least 1, got 0");
    assert!(err(&with("[download]\nworkers = 65\n")).contains("download.workers"));
    assert!(err(&with("[download]\nmax_attempts = 0\n")).contains("download.max_attempts"));
    let e = err(&with("[download]\ntoken_max_age = \"1h\"\n"));
    assert!(
        e.contains("download.token_max_age must be less than 1h"),
        "{e}"
    );
    let e = err(&with("[download]\nretry_base = \"20m\"\n"));
    assert!(e.contains("download.retry_max"), "{e}");
    assert!(err(&with("[cloud]\napi_base = \"ftp://x\"\n")).contains("cloud.api_base"));
    assert!(err(&with("[cloud]\napi_base = \"nope\"\n")).contains("cloud.api_base"));
    assert!(err(&with("[server]\nlisten = \"localhost\"\n")).contains("server.listen"));
    assert!(err(&with("[poll]\nmeetings = [\"\"]\n")).contains("poll.meetings"));
    assert!(err(&with("[poll]\nmeetings = [\"a/b\"]\n")).contains("poll.meetings"));
    let long = "x".repeat(65);
    assert!(err(&with(&format!("[poll]\nmeetings = [\"{long}\"]\n"))).contains("poll.meetings"));
    let e = err(&with("[tls]\ninsecure_download_hosts = [\"https://x/\"]\n"));
    assert!(e.contains("tls.insecure_download_hosts"), "{e}");
}

#[test]
fn bad_duration_names_the_key() {
    let e = err(&with("[cloud]\nrequest_timeout = \"30 parsecs\"\n"));
    assert!(
        e.starts_with("cloud.request_timeout: invalid duration \"30 parsecs\""),
        "{e}"
    );
    let e = err(&with("[download]\nread_timeout = \"0s\"\n"));
    assert!(
        e.contains("download.read_timeout must be greater than 0s"),
        "{e}"
    );
}

#[test]
fn sizes_and_checkpoints_parse_with_units_and_name_the_key_when_wrong() {
    let config = parse(&with(
        "[download]\nmin_free_space = \"500 MiB\"\ncheckpoint_interval = \"500ms\"\n",
    ))
    .unwrap();
    assert_eq!(config.download.min_free_space, 500 * 1024 * 1024);
    assert_eq!(
        config.download.checkpoint_interval,
        Duration::from_millis(500)
    );
    assert_eq!(
        parse(&with("[download]\nmin_free_space = \"0\"\n"))
            .unwrap()
            .download
            .min_free_space,
        0
    );
    assert_eq!(validate::parse_size("1.5GB"), Ok(1_500_000_000));
    let bad = err(&with("[download]\nmin_free_space = \"lots\"\n"));
    assert!(bad.contains("download.min_free_space"), "{bad}");
    let unit = err(&with("[download]\nmin_free_space = \"5 parsecs\"\n"));
    assert!(unit.contains("unknown size unit"), "{unit}");
    let zero = err(&with("[download]\ncheckpoint_interval = \"0s\"\n"));
    assert!(zero.contains("download.checkpoint_interval"), "{zero}");
}

#[test]
fn download_timezone_is_checked_and_shown() {
    let e = err(&with("[download]\ntimezone = \"Asia/Shangai\"\n"));
    assert!(e.contains("download.timezone"), "{e}");
    assert!(e.contains("unknown time zone \"Asia/Shangai\""), "{e}");
    let unset = parse(MINIMAL).unwrap();
    assert_eq!(unset.download.timezone, crate::archive::Zone::Utc);
    let shows = |summary: &str, zone: &str| {
        summary
            .lines()
            .any(|l| l.split_whitespace().eq(["timezone", zone]))
    };
    assert!(shows(&unset.summary(), "UTC"), "{}", unset.summary());
    let set = parse(&with("[download]\ntimezone = \"Asia/Shanghai\"\n")).unwrap();
    assert_eq!(set.download.timezone.to_string(), "Asia/Shanghai");
    assert!(shows(&set.summary(), "Asia/Shanghai"), "{}", set.summary());
}

#[test]
fn download_layout_is_checked_and_shown() {
    let e = err(&with("[download]\nlayout = \"{conf_uuid}/{typ}/{name}\"\n"));
    assert!(e.contains("download.layout"), "{e}");
    assert!(e.contains("unknown placeholder {typ}"), "{e}");
    let e = err(&with("[download]\nlayout = \"{year}/{type}/{name}\"\n"));
    assert!(e.contains("meeting's folder"), "{e}");
    let unset = parse(MINIMAL).unwrap();
    assert_eq!(unset.download.layout, None);
    assert!(unset.summary().contains("layout"), "{}", unset.summary());
    let set = parse(&with(
        "[download]\nlayout = \"{date} {subject}/{type}/{name}\"\n",
    ))
    .unwrap();
    let layout = set.download.layout.as_ref().expect("set");
    assert_eq!(layout.template(), "{date} {subject}/{type}/{name}");
    assert!(
        set.summary().contains("\"{date} {subject}/{type}/{name}\""),
        "{}",
        set.summary()
    );
}
