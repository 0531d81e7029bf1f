//! Unit tests of `[webhook]`: defaults, the key's fallback to the cloud App
//! Key, masking, and errors that name the key.

use secrecy::ExposeSecret;

use super::*;

const APP: &str = "[cloud.auth]\napp_id = \"id\"\napp_key = \"s3cr3t-key\"\n";
const TOKEN: &str = "[cloud.auth]\naccess_token = \"t0k3n\"\n";

fn parse(text: &str, env: &[(&str, &str)]) -> Result<Config, ConfigError> {
    let env: Vec<(String, String)> = env
        .iter()
        .map(|(k, v)| ((*k).to_owned(), (*v).to_owned()))
        .collect();
    Config::from_toml(text, &|name| {
        env.iter().find(|(k, _)| k == name).map(|(_, v)| v.clone())
    })
}

fn err(text: &str) -> String {
    match parse(text, &[]) {
        Ok(_) => panic!("expected an error for:\n{text}"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn the_webhook_is_off_by_default_on_its_own_port_and_path() {
    let c = parse(APP, &[]).expect("valid");
    assert!(!c.webhook.enabled);
    assert_eq!(c.webhook.listen.to_string(), "127.0.0.1:9188");
    assert_eq!(c.webhook.path, "/events/huawei");
    assert!(!c.webhook.accept_unlisted);
    assert_eq!(c.webhook.key_source, WebhookKeySource::NotLoaded);
    assert!(c.summary().contains("enabled                  false"));
}

#[test]
fn an_enabled_webhook_signs_with_the_cloud_app_key_unless_given_its_own() {
    let c = parse(&format!("{APP}[webhook]\nenabled = true\n"), &[]).expect("valid");
    assert_eq!(c.webhook.app_id, "id");
    assert_eq!(c.webhook.app_key.expose_secret(), "s3cr3t-key");
    assert_eq!(c.webhook.key_source, WebhookKeySource::CloudAppKey);
    let own =
        format!("{APP}[webhook]\nenabled = true\napp_id = \"push-id\"\napp_key = \"push-pass\"\n");
    let c = parse(&own, &[]).expect("valid");
    assert_eq!(c.webhook.app_id, "push-id");
    assert_eq!(c.webhook.app_key.expose_secret(), "push-pass");
    let summary = c.summary();
    assert!(summary.contains("****** (inline)"), "{summary}");
    assert!(!summary.contains("push-pass"), "{summary}");
    let env = parse(
        &format!("{TOKEN}[webhook]\nenabled = true\napp_id = \"push-id\"\n"),
        &[(ENV_WEBHOOK_KEY, "from-env")],
    )
    .expect("valid");
    assert_eq!(env.webhook.app_key.expose_secret(), "from-env");
}

#[test]
fn webhook_mistakes_name_the_key() {
    let on = format!("{APP}[webhook]\nenabled = true\n");
    assert!(err(&format!("{on}path = \"events\"\n")).starts_with("webhook.path"));
    assert!(err(&format!("{on}path = \"/a?b=c\"\n")).starts_with("webhook.path"));
    assert!(err(&format!("{on}listen = \"nowhere\"\n")).starts_with("webhook.listen"));
    let same = format!("{on}listen = \"127.0.0.1:9187\"\n");
    assert!(err(&same).contains("must differ from server.listen"));
    let no_key = err(&format!(
        "{TOKEN}[webhook]\nenabled = true\napp_id = \"x\"\n"
    ));
    assert!(no_key.contains("webhook.app_key missing"), "{no_key}");
    let no_id = err(&format!(
        "{TOKEN}[webhook]\nenabled = true\napp_key = \"k\"\n"
    ));
    assert!(no_id.starts_with("webhook.app_id"), "{no_id}");
    assert!(err(&format!("{on}secret = 1\n")).contains("secret"));
    assert!(!err(&format!("{on}app_key = 42\n")).contains("42"));
    // Off, the webhook's settings are still checked but need no key.
    parse(&format!("{TOKEN}[webhook]\nenabled = false\n"), &[]).expect("valid");
}

#[test]
fn an_exposed_webhook_is_warned_about_and_events_can_bring_the_meetings() {
    let open = format!("{APP}[webhook]\nenabled = true\nlisten = \"0.0.0.0:9188\"\n");
    let warnings = parse(&open, &[]).expect("valid").warnings();
    assert!(
        warnings
            .iter()
            .any(|w| w.contains("reachable from other hosts")),
        "{warnings:?}"
    );
    assert!(
        warnings.iter().any(|w| w.contains("nothing to archive")),
        "{warnings:?}"
    );
    let unlisted = format!("{APP}[webhook]\nenabled = true\naccept_unlisted = true\n");
    let warnings = parse(&unlisted, &[]).expect("valid").warnings();
    assert!(warnings.is_empty(), "{warnings:?}");
}
