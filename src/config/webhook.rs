//! `[webhook]`: the endpoint the cloud's enterprise event push calls. Off
//! by default. Its key (the password of the push subscription) comes from
//! `webhook.app_key`, `webhook.app_key_file` or the environment, and falls
//! back to the cloud App Key when none is given.

use std::net::SocketAddr;

use secrecy::SecretString;
use serde::Deserialize;

use super::auth::{SecretSpec, lookup, non_empty};
use super::raw::RawSecret;
use super::{Auth, ConfigError, SecretSource, Secrets, ServerConfig};

/// Environment variable that supplies the webhook key when the file does not.
pub const ENV_WEBHOOK_KEY: &str = "MEETING_ARCHIVER_WEBHOOK_KEY";
/// `webhook.listen`
pub const DEFAULT_LISTEN: SocketAddr = super::defaults::WEBHOOK_LISTEN;
/// `webhook.path`
pub const DEFAULT_PATH: &str = "/events/huawei";

/// `[webhook]`: the event push endpoint of `run`.
#[derive(Debug, Clone)]
pub struct WebhookConfig {
    /// Whether `run` listens for events at all.
    pub enabled: bool,
    /// Its own address, apart from `/metrics`, for a reverse proxy.
    pub listen: SocketAddr,
    /// The path events are POSTed to.
    pub path: String,
    /// Poll a meeting no config names when an event says it has a recording
    /// (without it, only with discovery on).
    pub accept_unlisted: bool,
    /// The subscriber ID events must carry (`appID`).
    pub app_id: String,
    /// The key events are signed with; empty while disabled.
    pub app_key: SecretString,
    /// Where the key came from (for `check-config`; never the value).
    pub key_source: WebhookKeySource,
}

/// Where the webhook's key came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum WebhookKeySource {
    /// Its own key, from here.
    Own(SecretSource),
    /// The cloud App Key (`cloud.auth.app_key`).
    CloudAppKey,
    /// Not loaded: the webhook is off, or the command does not need it.
    NotLoaded,
}

impl std::fmt::Display for WebhookKeySource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            WebhookKeySource::Own(source) => source.fmt(f),
            WebhookKeySource::CloudAppKey => f.write_str("(the cloud App Key)"),
            WebhookKeySource::NotLoaded => f.write_str("(not loaded)"),
        }
    }
}

impl Default for WebhookConfig {
    fn default() -> Self {
        WebhookConfig {
            enabled: false,
            listen: DEFAULT_LISTEN,
            path: DEFAULT_PATH.to_owned(),
            accept_unlisted: false,
            app_id: String::new(),
            app_key: SecretString::from(""),
            key_source: WebhookKeySource::NotLoaded,
        }
    }
}

/// `[webhook]` as written.
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawWebhook {
    pub enabled: Option<bool>,
    pub listen: Option<String>,
    pub path: Option<String>,
    pub accept_unlisted: Option<bool>,
    pub app_id: Option<String>,
    pub app_key: Option<RawSecret>,
    pub app_key_file: Option<String>,
}

/// Validates `[webhook]`; the key is looked up only when it is enabled.
pub(super) fn webhook(
    raw: &RawWebhook,
    cloud: &Auth,
    server: &ServerConfig,
    env: &dyn Fn(&str) -> Option<String>,
    secrets: Secrets,
) -> Result<WebhookConfig, ConfigError> {
    let listen = match raw.listen.as_deref().map(str::trim) {
        None => DEFAULT_LISTEN,
        Some(addr) => addr.parse().map_err(|e| {
            let reason = format!("must be an address like \"127.0.0.1:9188\", got {addr:?}: {e}");
            ConfigError::invalid("webhook.listen", reason)
        })?,
    };
    let path = raw
        .path
        .as_deref()
        .unwrap_or(DEFAULT_PATH)
        .trim()
        .to_owned();
    let plain = path
        .chars()
        .all(|c| c.is_ascii_graphic() && !matches!(c, '?' | '#' | '%'));
    if !path.starts_with('/') || !plain {
        let reason = format!(
            "must be a plain absolute path like \"{DEFAULT_PATH}\" (no query, spaces or escapes), got {path:?}"
        );
        return Err(ConfigError::invalid("webhook.path", reason));
    }
    let enabled = raw.enabled.unwrap_or(false);
    let cloud_app_id = match cloud {
        Auth::AppId { app_id, .. } => Some(app_id.clone()),
        Auth::AccessToken(_) => None,
    };
    let app_id = non_empty(raw.app_id.as_deref())
        .or(cloud_app_id)
        .unwrap_or_default();
    let mut config = WebhookConfig {
        enabled,
        listen,
        path,
        accept_unlisted: raw.accept_unlisted.unwrap_or(false),
        app_id,
        ..WebhookConfig::default()
    };
    if !enabled {
        return Ok(config);
    }
    if server.listen == Some(listen) {
        let reason = format!("({listen}) must differ from server.listen");
        return Err(ConfigError::invalid("webhook.listen", reason));
    }
    if config.app_id.is_empty() {
        return Err(ConfigError::invalid(
            "webhook.app_id",
            "must be set (the subscriber ID of the event push) when webhook.enabled is true \
             and cloud.auth.app_id is not",
        ));
    }
    let spec = SecretSpec {
        key: "webhook.app_key",
        file_key: "webhook.app_key_file",
        env_var: ENV_WEBHOOK_KEY,
        inline: raw.app_key.as_ref(),
        file: non_empty(raw.app_key_file.as_deref()).map(Into::into),
    };
    let found = match lookup(&spec, env, secrets) {
        Err(ConfigError::SecretFile { .. }) if secrets == Secrets::Optional => return Ok(config),
        other => other?,
    };
    match (found, cloud) {
        (Some((key, source)), _) => {
            config.app_key = key;
            config.key_source = WebhookKeySource::Own(source);
        }
        (None, Auth::AppId { app_key, .. }) => {
            config.app_key = app_key.clone();
            config.key_source = WebhookKeySource::CloudAppKey;
        }
        (None, Auth::AccessToken(_)) if secrets == Secrets::Optional => {}
        (None, Auth::AccessToken(_)) => {
            return Err(ConfigError::MissingSecret(format!(
                "webhook.app_key missing (or webhook.app_key_file, or {ENV_WEBHOOK_KEY}): \
                 events are signed with the event push password, and there is no \
                 cloud App Key to fall back to"
            )));
        }
    }
    Ok(config)
}
