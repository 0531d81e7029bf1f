//! The one place tests turn a typed [`Config`] into the TOML file the
//! binary reads, and the check that it reads back the same.

use std::path::Path;
use std::time::Duration;

use meeting_archiver::config::{
    ArchiveConfig, Auth, Config, LogFormat, SecretSource, WebhookConfig, WebhookKeySource,
};
use secrecy::{ExposeSecret, SecretString};

use super::{TestEnv, scenario};

/// `config` as the TOML file a user would write.
pub fn config_toml(config: &Config) -> String {
    let (cloud, poll, download) = (&config.cloud, &config.poll, &config.download);
    let mut tls = vec![(
        "insecure_download_hosts",
        list(&config.tls.insecure_download_hosts),
    )];
    tls.extend(config.tls.ca_file.as_deref().map(|p| ("ca_file", path(p))));
    let listen = config.server.listen.map(|a| a.to_string());
    let format = match config.log.format {
        LogFormat::Text => "text",
        LogFormat::Json => "json",
    };
    let root = toml::Table::from_iter([
        section(
            "cloud",
            [
                ("api_base", text(cloud.api_base.as_str())),
                ("auth", table(auth(&cloud.auth))),
                ("request_timeout", time(cloud.request_timeout)),
                ("max_retries", int(cloud.max_retries)),
                ("give_up_after", time(cloud.give_up_after)),
                ("retry_base", time(cloud.retry_base)),
                ("retry_max", time(cloud.retry_max)),
                (
                    "max_requests_per_minute",
                    int(cloud.max_requests_per_minute),
                ),
            ],
        ),
        section(
            "poll",
            [
                ("schedule", text(&poll.schedule)),
                ("meetings", list(&poll.meetings)),
                ("discover_days", int(poll.discover_days)),
                ("recheck_for", time(poll.recheck_for)),
                ("give_up_after", time(poll.give_up_after)),
                ("concurrency", int(poll.concurrency)),
            ],
        ),
        section(
            "download",
            [
                ("dir", path(&download.dir)),
                ("workers", int(download.workers)),
                ("file_types", list(&download.file_types)),
                ("max_attempts", int(download.max_attempts)),
                ("token_max_age", time(download.token_max_age)),
                ("shutdown_timeout", time(download.shutdown_timeout)),
                ("connect_timeout", time(download.connect_timeout)),
                ("read_timeout", time(download.read_timeout)),
                ("retry_base", time(download.retry_base)),
                ("retry_max", time(download.retry_max)),
                ("checkpoint_interval", time(download.checkpoint_interval)),
                ("min_free_space", text(&download.min_free_space.to_string())),
                ("timezone", text(&download.timezone.to_string())),
            ]
            .into_iter()
            .chain(
                download
                    .layout
                    .as_ref()
                    .map(|l| ("layout", text(l.template()))),
            ),
        ),
        section(
            "ledger",
            [
                ("path", path(&config.ledger.path)),
                ("retry_for", time(config.ledger.retry_for)),
            ],
        ),
        section("tls", tls),
        // An empty address turns the server off.
        section("server", [("listen", text(&listen.unwrap_or_default()))]),
        section(
            "retention",
            [
                (
                    "delete_from_cloud",
                    toml::Value::Boolean(config.retention.delete_from_cloud),
                ),
                ("delete_after", time(config.retention.delete_after)),
                (
                    "max_deletes_per_poll",
                    int(config.retention.max_deletes_per_poll),
                ),
                ("dry_run", toml::Value::Boolean(config.retention.dry_run)),
            ],
        ),
        section(
            "log",
            [("format", text(format)), ("level", text(&config.log.level))],
        ),
        section("webhook", webhook(&config.webhook)),
        section("archive", archive(&config.archive)),
    ]);
    toml::to_string(&root).expect("a config is TOML")
}

/// The `[cloud.auth]` keys of one method, secrets in the clear.
fn auth(auth: &Auth) -> Vec<(&'static str, toml::Value)> {
    match auth {
        Auth::AppId {
            app_id,
            app_key,
            user_id,
            corp_id,
        } => {
            let mut keys = vec![
                ("app_id", text(app_id)),
                ("app_key", text(app_key.expose_secret())),
            ];
            keys.extend(user_id.as_deref().map(|u| ("user_id", text(u))));
            keys.extend(corp_id.as_deref().map(|c| ("corp_id", text(c))));
            keys
        }
        Auth::AccessToken(token) => vec![("access_token", text(token.expose_secret()))],
    }
}

/// The `[webhook]` keys; its own key in the clear, none when it uses the
/// cloud App Key (or is not loaded).
fn webhook(webhook: &WebhookConfig) -> Vec<(&'static str, toml::Value)> {
    let mut keys = vec![
        ("enabled", toml::Value::Boolean(webhook.enabled)),
        ("listen", text(&webhook.listen.to_string())),
        ("path", text(&webhook.path)),
        (
            "accept_unlisted",
            toml::Value::Boolean(webhook.accept_unlisted),
        ),
        ("app_id", text(&webhook.app_id)),
    ];
    if let WebhookKeySource::Own(_) = webhook.key_source {
        keys.push(("app_key", text(webhook.app_key.expose_secret())));
    }
    keys
}

/// The `[archive]` keys, with `[archive.s3]` (secret in the clear) for a bucket.
fn archive(archive: &ArchiveConfig) -> Vec<(&'static str, toml::Value)> {
    let Some(s3) = archive.s3() else {
        return vec![("target", text("local"))];
    };
    let mut keys = vec![
        ("bucket", text(&s3.bucket)),
        ("prefix", text(&s3.prefix)),
        ("region", text(&s3.region)),
        ("access_key_id", text(&s3.access_key_id)),
        (
            "secret_access_key",
            text(s3.secret_access_key.expose_secret()),
        ),
        ("path_style", toml::Value::Boolean(s3.path_style)),
    ];
    keys.extend(s3.endpoint.as_ref().map(|e| ("endpoint", text(e.as_str()))));
    vec![("target", text("s3")), ("s3", table(keys))]
}

fn table<'a>(pairs: impl IntoIterator<Item = (&'a str, toml::Value)>) -> toml::Value {
    toml::Value::Table(pairs.into_iter().map(|(k, v)| (k.to_owned(), v)).collect())
}

fn section<'a>(
    name: &str,
    pairs: impl IntoIterator<Item = (&'a str, toml::Value)>,
) -> (String, toml::Value) {
    (name.to_owned(), table(pairs))
}

fn text(s: &str) -> toml::Value {
    toml::Value::String(s.to_owned())
}

fn time(d: Duration) -> toml::Value {
    text(&humantime::format_duration(d).to_string())
}

fn path(p: &Path) -> toml::Value {
    text(&p.to_string_lossy())
}

fn list(items: &[String]) -> toml::Value {
    toml::Value::Array(items.iter().map(|s| text(s)).collect())
}

fn int(n: impl TryInto<i64>) -> toml::Value {
    toml::Value::Integer(n.try_into().ok().expect("a TOML integer"))
}

#[tokio::test]
async fn the_config_file_for_the_binary_reads_back_as_the_typed_config() {
    let env = TestEnv::start(scenario(Vec::new())).await;
    let mut config = env.config();
    config.cloud.auth = Auth::AppId {
        app_id: env.app_id.clone(),
        app_key: SecretString::from("key \"with\" quotes"),
        user_id: Some("user".to_owned()),
        corp_id: Some("corp".to_owned()),
    };
    config.poll.meetings = vec!["m1".to_owned(), "m2".to_owned()];
    config.poll.discover_days = 3;
    config.download.file_types = vec!["Hd".to_owned(), "Aux".to_owned()];
    config.download.shutdown_timeout = Duration::from_millis(1500);
    config.tls.ca_file = Some(env.dir.path().join("ca.pem"));
    config.tls.insecure_download_hosts = vec!["127.0.0.9".to_owned()];
    config.server.listen = Some("127.0.0.1:9".parse().expect("address"));
    config.log.format = LogFormat::Json;
    config.webhook = WebhookConfig {
        enabled: true,
        listen: "127.0.0.1:19".parse().expect("address"),
        path: "/hooks/meeting".to_owned(),
        accept_unlisted: true,
        app_id: "push-subscriber".to_owned(),
        app_key: SecretString::from("push password"),
        key_source: WebhookKeySource::Own(SecretSource::Inline),
    };
    let loaded = Config::load(&env.write_config(&config)).expect("the written file loads");
    // Debug shows every field but the (redacted) secret.
    assert_eq!(format!("{loaded:#?}"), format!("{config:#?}"));
    let key = |c: &Config| match &c.cloud.auth {
        Auth::AppId { app_key, .. } => app_key.expose_secret().to_owned(),
        Auth::AccessToken(_) => panic!("app auth"),
    };
    assert_eq!(key(&loaded), key(&config));
    assert_eq!(loaded.webhook.app_key.expose_secret(), "push password");
    config.webhook = WebhookConfig::default();
    config.cloud.auth = Auth::AccessToken(SecretString::from("token"));
    let loaded = Config::load(&env.write_config(&config)).expect("the written file loads");
    assert!(matches!(&loaded.cloud.auth, Auth::AccessToken(t) if t.expose_secret() == "token"));
    let config = super::s3_config(&env, "127.0.0.1:9".parse().expect("address"));
    let loaded = Config::load(&env.write_config(&config)).expect("the written file loads");
    // The rest was compared above (a loaded webhook names the cloud's App ID).
    assert_eq!(
        format!("{:#?}", loaded.archive),
        format!("{:#?}", config.archive)
    );
    let secret = |c: &Config| {
        c.archive
            .s3()
            .map(|s| s.secret_access_key.expose_secret().to_owned())
    };
    assert_eq!(secret(&loaded), secret(&config));
}
