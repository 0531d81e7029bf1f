//! The config file as written: every key optional, unknown keys rejected.
//!
//! Defaults live in [`defaults`] and nowhere else; `validate` applies them and
//! the typed sections' `Default` impls are built from them.

use std::path::PathBuf;

use secrecy::SecretString;
use serde::Deserialize;

use super::{
    DownloadConfig, LedgerConfig, LogConfig, LogFormat, PollConfig, RetentionConfig, ServerConfig,
};

/// The default value of every optional key.
pub mod defaults {
    use std::net::{IpAddr, Ipv4Addr, SocketAddr};
    use std::time::Duration;

    /// `cloud.api_base`
    pub const API_BASE: &str = "https://api.meeting.huaweicloud.com";
    /// `cloud.request_timeout`
    pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);
    /// `cloud.max_retries`
    pub const MAX_RETRIES: u32 = 8;
    /// `cloud.give_up_after`
    pub const API_GIVE_UP_AFTER: Duration = Duration::from_secs(120);
    /// `cloud.retry_base`
    pub const API_RETRY_BASE: Duration = Duration::from_secs(1);
    /// `cloud.retry_max`
    pub const API_RETRY_MAX: Duration = Duration::from_secs(60);
    /// `cloud.max_requests_per_minute`: 0 = no cap.
    pub const MAX_REQUESTS_PER_MINUTE: u32 = 0;
    /// `poll.concurrency`
    pub const POLL_CONCURRENCY: usize = 4;
    /// `poll.schedule`: every ten minutes.
    pub const SCHEDULE: &str = "0 */10 * * * *";
    /// `poll.discover_days`
    pub const DISCOVER_DAYS: u32 = 0;
    /// `poll.recheck_for`
    pub const RECHECK_FOR: Duration = Duration::from_secs(24 * 3600);
    /// `poll.give_up_after`
    pub const GIVE_UP_AFTER: Duration = Duration::from_secs(7 * 24 * 3600);
    /// `download.dir`
    pub const DOWNLOAD_DIR: &str = "/var/lib/meeting-archiver/recordings";
    /// `download.workers`
    pub const WORKERS: usize = 4;
    /// `download.max_attempts`
    pub const MAX_ATTEMPTS: u32 = 10;
    /// `download.token_max_age`
    pub const TOKEN_MAX_AGE: Duration = Duration::from_secs(50 * 60);
    /// `download.connect_timeout`
    pub const CONNECT_TIMEOUT: Duration = Duration::from_secs(15);
    /// `download.read_timeout`
    pub const READ_TIMEOUT: Duration = Duration::from_secs(60);
    /// `download.retry_base`
    pub const DOWNLOAD_RETRY_BASE: Duration = Duration::from_secs(5);
    /// `download.retry_max`
    pub const DOWNLOAD_RETRY_MAX: Duration = Duration::from_secs(10 * 60);
    /// `download.shutdown_timeout`
    pub const SHUTDOWN_TIMEOUT: Duration = Duration::from_secs(10);
    /// `download.checkpoint_interval`
    pub const CHECKPOINT_INTERVAL: Duration = Duration::from_secs(2);
    /// `download.min_free_space`: 1 GiB.
    pub const MIN_FREE_SPACE: u64 = 1 << 30;
    /// `ledger.path`
    pub const LEDGER_PATH: &str = "/var/lib/meeting-archiver/ledger.sqlite3";
    /// `retention.delete_after`
    pub const DELETE_AFTER: Duration = Duration::from_secs(7 * 24 * 3600);
    /// `retention.max_deletes_per_poll`
    pub const MAX_DELETES_PER_POLL: u32 = 20;
    /// `ledger.retry_for`
    pub const LEDGER_RETRY_FOR: Duration = Duration::from_secs(60);
    /// `server.listen`
    pub const LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9187);
    /// `webhook.listen`
    pub const WEBHOOK_LISTEN: SocketAddr = SocketAddr::new(IpAddr::V4(Ipv4Addr::LOCALHOST), 9188);
    /// `log.level`
    pub const LOG_LEVEL: &str = "info";
    /// `archive.s3.region` when neither the file nor `AWS_REGION` gives one.
    pub const S3_REGION: &str = "us-east-1";
}

impl Default for PollConfig {
    fn default() -> Self {
        PollConfig {
            schedule: defaults::SCHEDULE.to_string(),
            meetings: Vec::new(),
            discover_days: defaults::DISCOVER_DAYS,
            recheck_for: defaults::RECHECK_FOR,
            give_up_after: defaults::GIVE_UP_AFTER,
            concurrency: defaults::POLL_CONCURRENCY,
        }
    }
}

impl Default for DownloadConfig {
    fn default() -> Self {
        DownloadConfig {
            dir: PathBuf::from(defaults::DOWNLOAD_DIR),
            workers: defaults::WORKERS,
            file_types: Vec::new(),
            max_attempts: defaults::MAX_ATTEMPTS,
            token_max_age: defaults::TOKEN_MAX_AGE,
            connect_timeout: defaults::CONNECT_TIMEOUT,
            read_timeout: defaults::READ_TIMEOUT,
            retry_base: defaults::DOWNLOAD_RETRY_BASE,
            retry_max: defaults::DOWNLOAD_RETRY_MAX,
            shutdown_timeout: defaults::SHUTDOWN_TIMEOUT,
            checkpoint_interval: defaults::CHECKPOINT_INTERVAL,
            min_free_space: defaults::MIN_FREE_SPACE,
            layout: None,
            timezone: crate::archive::Zone::Utc,
        }
    }
}

impl Default for LedgerConfig {
    fn default() -> Self {
        LedgerConfig {
            path: PathBuf::from(defaults::LEDGER_PATH),
            retry_for: defaults::LEDGER_RETRY_FOR,
        }
    }
}

impl Default for RetentionConfig {
    fn default() -> Self {
        RetentionConfig {
            delete_from_cloud: false,
            delete_after: defaults::DELETE_AFTER,
            max_deletes_per_poll: defaults::MAX_DELETES_PER_POLL,
            dry_run: false,
        }
    }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: Some(defaults::LISTEN),
        }
    }
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            format: LogFormat::Text,
            level: defaults::LOG_LEVEL.to_string(),
        }
    }
}

/// The whole file.
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawConfig {
    pub cloud: RawCloud,
    pub poll: RawPoll,
    pub download: RawDownload,
    pub ledger: RawLedger,
    pub tls: RawTls,
    pub server: RawServer,
    pub log: RawLog,
    pub retention: RawRetention,
    pub webhook: super::webhook::RawWebhook,
    pub archive: RawArchive,
}

/// `[archive]`: where verified files go.
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawArchive {
    pub target: Option<String>,
    pub s3: Option<RawS3>,
}

/// `[archive.s3]`: an S3-compatible bucket.
#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawS3 {
    pub bucket: Option<String>,
    pub prefix: Option<String>,
    pub endpoint: Option<String>,
    pub region: Option<String>,
    pub access_key_id: Option<String>,
    pub secret_access_key: Option<RawSecret>,
    pub secret_access_key_file: Option<String>,
    pub path_style: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawRetention {
    pub delete_from_cloud: Option<bool>,
    pub delete_after: Option<String>,
    pub max_deletes_per_poll: Option<u32>,
    pub dry_run: Option<bool>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawCloud {
    pub api_base: Option<String>,
    pub auth: RawAuth,
    pub request_timeout: Option<String>,
    pub max_retries: Option<u32>,
    pub give_up_after: Option<String>,
    pub retry_base: Option<String>,
    pub retry_max: Option<String>,
    pub max_requests_per_minute: Option<u32>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawAuth {
    pub app_id: Option<String>,
    pub app_key: Option<RawSecret>,
    pub app_key_file: Option<String>,
    pub user_id: Option<String>,
    pub corp_id: Option<String>,
    pub access_token: Option<RawSecret>,
    pub access_token_file: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawPoll {
    pub schedule: Option<String>,
    pub meetings: Vec<String>,
    pub discover_days: Option<u32>,
    pub recheck_for: Option<String>,
    pub give_up_after: Option<String>,
    pub concurrency: Option<usize>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawDownload {
    pub dir: Option<PathBuf>,
    pub workers: Option<usize>,
    pub file_types: Vec<String>,
    pub max_attempts: Option<u32>,
    pub token_max_age: Option<String>,
    pub connect_timeout: Option<String>,
    pub read_timeout: Option<String>,
    pub retry_base: Option<String>,
    pub retry_max: Option<String>,
    pub shutdown_timeout: Option<String>,
    pub checkpoint_interval: Option<String>,
    pub min_free_space: Option<String>,
    pub layout: Option<String>,
    pub timezone: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawLedger {
    pub path: Option<PathBuf>,
    pub retry_for: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawTls {
    pub ca_file: Option<PathBuf>,
    pub insecure_download_hosts: Vec<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawServer {
    pub listen: Option<String>,
}

#[derive(Deserialize, Default)]
#[serde(default, deny_unknown_fields)]
pub(super) struct RawLog {
    pub format: Option<RawLogFormat>,
    pub level: Option<String>,
}

#[derive(Deserialize, Clone, Copy)]
#[serde(rename_all = "lowercase")]
pub(super) enum RawLogFormat {
    Text,
    Json,
}

/// A secret straight from the file. Its deserializer never echoes a wrongly
/// typed value into the error message (serde's default would).
pub(super) struct RawSecret(pub SecretString);

impl<'de> Deserialize<'de> for RawSecret {
    fn deserialize<D: serde::Deserializer<'de>>(deserializer: D) -> Result<Self, D::Error> {
        deserializer.deserialize_any(SecretVisitor)
    }
}

struct SecretVisitor;

impl SecretVisitor {
    fn hidden<E: serde::de::Error>(&self) -> E {
        E::custom("expected a string (value not shown: it may be a secret)")
    }
}

impl<'de> serde::de::Visitor<'de> for SecretVisitor {
    type Value = RawSecret;

    fn expecting(&self, f: &mut std::fmt::Formatter) -> std::fmt::Result {
        f.write_str("a string")
    }
    fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<RawSecret, E> {
        Ok(RawSecret(SecretString::from(v)))
    }
    fn visit_string<E: serde::de::Error>(self, v: String) -> Result<RawSecret, E> {
        Ok(RawSecret(SecretString::from(v)))
    }
    fn visit_bool<E: serde::de::Error>(self, _: bool) -> Result<RawSecret, E> {
        Err(self.hidden())
    }
    fn visit_i64<E: serde::de::Error>(self, _: i64) -> Result<RawSecret, E> {
        Err(self.hidden())
    }
    fn visit_u64<E: serde::de::Error>(self, _: u64) -> Result<RawSecret, E> {
        Err(self.hidden())
    }
    fn visit_f64<E: serde::de::Error>(self, _: f64) -> Result<RawSecret, E> {
        Err(self.hidden())
    }
}
