//! The daemon's configuration: one TOML file, read once at start-up.
//!
//! The file is parsed into permissive `raw` structs (every key optional, unknown
//! keys rejected, defaults in `raw::defaults`), then `validate` turns them into the
//! typed [`Config`] below, resolving secrets from the file, `*_file` keys or the
//! environment. Secrets are `SecretString`s and never appear in `Debug`, errors
//! or [`Config::summary`].

mod archive;
mod auth;
mod dirs;
mod error;
mod raw;
pub mod schedule;
mod summary;
mod validate;
mod warnings;
mod webhook;
mod words;

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_auth;
#[cfg(test)]
mod tests_check;
#[cfg(test)]
mod tests_webhook;

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use secrecy::SecretString;

pub use archive::{ArchiveConfig, S3Config};
pub use dirs::{DirReport, DirState};
pub use error::ConfigError;
pub use raw::defaults;
pub use webhook::{ENV_WEBHOOK_KEY, WebhookConfig, WebhookKeySource};

/// Environment variable that supplies the App Key when the file does not.
pub const ENV_APP_KEY: &str = "MEETING_ARCHIVER_APP_KEY";
/// Environment variable that supplies the access token when the file does not.
pub const ENV_ACCESS_TOKEN: &str = "MEETING_ARCHIVER_ACCESS_TOKEN";

/// Everything the archiver was told, validated.
#[derive(Debug, Clone)]
pub struct Config {
    /// `[cloud]`: where the meeting API is and how to authenticate.
    pub cloud: CloudConfig,
    /// `[poll]`: which meetings to look at, and when.
    pub poll: PollConfig,
    /// `[download]`: the archive folder and the worker pool.
    pub download: DownloadConfig,
    /// `[ledger]`: the SQLite database.
    pub ledger: LedgerConfig,
    /// `[tls]`: extra trust settings.
    pub tls: TlsConfig,
    /// `[server]`: the `/healthz` and `/metrics` listener.
    pub server: ServerConfig,
    /// `[log]`: log format and filter.
    pub log: LogConfig,
    /// `[retention]`: opt-in deletion of verified recordings from the cloud.
    pub retention: RetentionConfig,
    /// `[webhook]`: the event push endpoint (off by default).
    pub webhook: WebhookConfig,
    /// `[archive]`: the local folder (default) or an S3-compatible bucket.
    pub archive: ArchiveConfig,
    /// Files holding a secret that other users can read, found when the
    /// config was loaded from disk (warnings, not errors: the admin decides).
    pub exposed_secrets: Vec<String>,
}

/// `[cloud]`: the Huawei Cloud Meeting API.
#[derive(Debug, Clone)]
pub struct CloudConfig {
    /// Base URL of the API (http or https).
    pub api_base: url::Url,
    /// How to obtain an access token.
    pub auth: Auth,
    /// Where the auth secret came from (for `check-config`; never the value).
    pub auth_source: SecretSource,
    /// Deadline for one whole API request.
    pub request_timeout: Duration,
    /// Retries of one API call on 429, 5xx, transport errors or non-JSON replies.
    pub max_retries: u32,
    /// First backoff between API retries; doubles, with jitter.
    pub retry_base: Duration,
    /// Cap on the API retry backoff.
    pub retry_max: Duration,
    /// The longest one API call is retried (429, 5xx, unreachable host)
    /// before it fails; permanent errors fail at once.
    pub give_up_after: Duration,
    /// A cap on API requests per minute, spread evenly (0 = none): keeps a
    /// poll of thousands of meetings under the gateway's throttle (429
    /// `APIG.0308`) instead of bursting into it.
    pub max_requests_per_minute: u32,
}

impl CloudConfig {
    /// A cloud section with default timeouts and retries (handy for tests and `demo`).
    pub fn new(api_base: url::Url, auth: Auth) -> Self {
        CloudConfig {
            api_base,
            auth,
            auth_source: SecretSource::Inline,
            request_timeout: defaults::REQUEST_TIMEOUT,
            max_retries: defaults::MAX_RETRIES,
            retry_base: defaults::API_RETRY_BASE,
            retry_max: defaults::API_RETRY_MAX,
            give_up_after: defaults::API_GIVE_UP_AFTER,
            max_requests_per_minute: defaults::MAX_REQUESTS_PER_MINUTE,
        }
    }
}

/// The authentication method; exactly one is configured.
#[derive(Debug, Clone)]
pub enum Auth {
    /// App ID + App Key: the archiver signs its own token requests.
    AppId {
        /// The App ID (not secret).
        app_id: String,
        /// The App Key.
        app_key: SecretString,
        /// The user the App ID acts for, if any.
        user_id: Option<String>,
        /// The enterprise, if any.
        corp_id: Option<String>,
    },
    /// A ready access token.
    AccessToken(SecretString),
}

/// Where a secret was read from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecretSource {
    /// Written in the config file itself.
    Inline,
    /// Read from the file named by a `*_file` key.
    File(PathBuf),
    /// Read from this environment variable.
    Env(&'static str),
    /// Named by a `*_file` under `/run/credentials/` that cannot be read
    /// now (only [`Config::load_for_check`]; the secret is empty).
    Pending(PathBuf),
    /// Not loaded: the command does not talk to the cloud
    /// ([`Config::load_local`]), and the secret was not available.
    NotLoaded,
}

/// Whether loading a config must find its secret.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Secrets {
    /// Commands that talk to the cloud: a missing secret is an error.
    Required,
    /// `check-config`: as `Required`, except that a `*_file` under
    /// `/run/credentials/` that cannot be read now is reported
    /// ([`SecretSource::Pending`]) rather than refused: systemd provides it
    /// only while the service runs.
    Check,
    /// Commands that only read the ledger or the archive (`status`,
    /// `verify`, `retry`, `healthcheck`): a missing or unreadable secret is
    /// tolerated, so they work while the systemd credential is not mounted.
    Optional,
}

impl std::fmt::Display for SecretSource {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            SecretSource::Inline => write!(f, "(inline)"),
            SecretSource::File(path) => write!(f, "(from file {})", path.display()),
            SecretSource::Env(var) => write!(f, "(from environment {var})"),
            SecretSource::Pending(path) => {
                write!(f, "(from file {}, not readable now)", path.display())
            }
            SecretSource::NotLoaded => write!(f, "(not loaded)"),
        }
    }
}

/// `[poll]`: what to look for, and when.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PollConfig {
    /// Cron expression with seconds first (6 fields, or a `@nickname`).
    pub schedule: String,
    /// Conference UUIDs to archive, without duplicates, in file order.
    pub meetings: Vec<String>,
    /// When > 0, also archive every recording of the last N days.
    pub discover_days: u32,
    /// How long after a meeting became complete it is still re-checked for new files.
    pub recheck_for: Duration,
    /// How long a discovered meeting that lists no file (still
    /// transcoding, or never recorded) is polled before it is given up.
    pub give_up_after: Duration,
    /// Meetings listed at once during a poll (1..=64).
    pub concurrency: usize,
}

/// `[download]`: the archive folder and how files are fetched into it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DownloadConfig {
    /// The archive folder.
    pub dir: PathBuf,
    /// Number of parallel download workers (1..=64).
    pub workers: usize,
    /// File types to archive (`Hd`, `Sd`, `Aux`, ...); empty means all.
    pub file_types: Vec<String>,
    /// Attempts per file before it is marked failed.
    pub max_attempts: u32,
    /// A stored download token older than this is not used (must be < 1h).
    pub token_max_age: Duration,
    /// How long a stopping daemon waits for transfers to reach a safe point.
    pub shutdown_timeout: Duration,
    /// How often a transfer fsyncs its partial file and records its length,
    /// so that a crash or SIGKILL resumes from there.
    pub checkpoint_interval: Duration,
    /// Free bytes the archive's file system must keep: below it, no new
    /// file is claimed until space returns.
    pub min_free_space: u64,
    /// TCP + TLS connect timeout for downloads.
    pub connect_timeout: Duration,
    /// Longest silence tolerated while reading a body.
    pub read_timeout: Duration,
    /// Backoff before retrying a failed download; doubles per attempt.
    pub retry_base: Duration,
    /// Cap on the download retry backoff.
    pub retry_max: Duration,
    /// `download.layout`: the template naming new meetings' folders and
    /// files; `None` keeps the one the archive records (a new archive gets
    /// [`crate::archive::DEFAULT_LAYOUT`]).
    pub layout: Option<crate::archive::Layout>,
    /// `download.timezone`: the zone of the dates and times the layout
    /// puts in new meetings' folder (and file) names.
    pub timezone: crate::archive::Zone,
}

/// `[ledger]`: the SQLite database that remembers every file.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LedgerConfig {
    /// Path of the database file.
    pub path: PathBuf,
    /// How long a ledger that refuses writes (locked by another program,
    /// its disk full) is retried before the work in hand is given up.
    pub retry_for: Duration,
}

/// `[tls]`: extra trust settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct TlsConfig {
    /// An extra CA certificate (PEM) to trust.
    pub ca_file: Option<PathBuf>,
    /// Hosts whose certificate is not checked for downloads.
    pub insecure_download_hosts: Vec<String>,
}

/// `[retention]`: deleting recordings from the cloud once they are
/// archived and verified. Off unless asked for; applied on SIGHUP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RetentionConfig {
    /// Whether to delete at all.
    pub delete_from_cloud: bool,
    /// How long after a meeting became complete it may be deleted.
    pub delete_after: Duration,
    /// At most this many meetings deleted per poll (a safety cap).
    pub max_deletes_per_poll: u32,
    /// Log and record what would be deleted; delete nothing.
    pub dry_run: bool,
}

/// `[server]`: the health and metrics listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ServerConfig {
    /// Address to listen on; `None` turns the server off.
    pub listen: Option<SocketAddr>,
}

/// `[log]`: logging.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LogConfig {
    /// Human-readable text or JSON lines.
    pub format: LogFormat,
    /// An `EnvFilter` directive string such as `info` or `meeting_archiver=debug`.
    pub level: String,
}

/// Log output format (also the `--log-format` flag's values).
#[derive(Debug, Clone, Copy, PartialEq, Eq, clap::ValueEnum)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line (journald, Docker).
    Json,
}

impl Config {
    /// Reads and validates the config file at `path`, taking secrets from the
    /// process environment when the file does not give them.
    pub fn load(path: &Path) -> Result<Config, ConfigError> {
        Config::load_with(path, Secrets::Required)
    }

    /// Like [`Config::load`], for commands that never talk to the cloud: the
    /// secret need not be available (see [`Secrets::Optional`]).
    pub fn load_local(path: &Path) -> Result<Config, ConfigError> {
        Config::load_with(path, Secrets::Optional)
    }

    /// Like [`Config::load`], for `check-config`: a systemd credential that
    /// exists only while the service runs is reported, not refused (see
    /// [`Secrets::Check`]).
    pub fn load_for_check(path: &Path) -> Result<Config, ConfigError> {
        Config::load_with(path, Secrets::Check)
    }

    /// Reads and validates the file at `path` with the process environment.
    pub fn load_with(path: &Path, secrets: Secrets) -> Result<Config, ConfigError> {
        let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
            path: path.to_path_buf(),
            source,
        })?;
        let origin = format!("config file {}", path.display());
        let mut config =
            validate::parse(&text, &|name| std::env::var(name).ok(), &origin, secrets)?;
        config.exposed_secrets = exposed_secrets(path, &config.cloud.auth_source);
        let mut more = Vec::new();
        if let WebhookKeySource::Own(source) = &config.webhook.key_source {
            more.extend(exposed_secrets(path, source));
        }
        if let Some(s3) = config.archive.s3() {
            more.extend(exposed_secrets(path, &s3.secret_source));
        }
        for warning in more {
            if !config.exposed_secrets.contains(&warning) {
                config.exposed_secrets.push(warning);
            }
        }
        Ok(config)
    }

    /// Parses and validates config text with an injected environment.
    pub fn from_toml(
        text: &str,
        env: &dyn Fn(&str) -> Option<String>,
    ) -> Result<Config, ConfigError> {
        validate::parse(text, env, "config", Secrets::Required)
    }
}

/// Warnings for a secret kept in a file that every user may read: the
/// config file itself when the secret is inline, or the `*_file` it names.
fn exposed_secrets(config_path: &Path, source: &SecretSource) -> Vec<String> {
    use std::os::unix::fs::PermissionsExt;
    let (path, hint) = match source {
        SecretSource::Inline => (
            config_path.to_owned(),
            "or move the secret to app_key_file / access_token_file",
        ),
        SecretSource::File(path) => (path.clone(), "it holds a secret"),
        SecretSource::Env(_) | SecretSource::Pending(_) | SecretSource::NotLoaded => {
            return Vec::new();
        }
    };
    match std::fs::metadata(&path) {
        Ok(meta) if meta.permissions().mode() & 0o004 != 0 => vec![format!(
            "{} holds a secret and is readable by every user (mode {:o}): chmod o-r it ({hint})",
            path.display(),
            meta.permissions().mode() & 0o777
        )],
        _ => Vec::new(),
    }
}
