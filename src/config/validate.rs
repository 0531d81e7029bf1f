//! From raw TOML to the typed [`Config`]: applies defaults, parses durations,
//! URLs, cron expressions and addresses, and checks ranges, one section at a time.

use std::path::PathBuf;
use std::time::Duration;

use secrecy::SecretString;
use tracing_subscriber::EnvFilter;
use tracing_subscriber::filter::LevelFilter;

use super::raw::{RawCloud, RawConfig, RawDownload, RawLog, RawLogFormat, RawPoll, defaults};
use super::{
    Auth, CloudConfig, Config, ConfigError, DownloadConfig, LedgerConfig, LogConfig, LogFormat,
    PollConfig, RetentionConfig, SecretSource, Secrets, ServerConfig, TlsConfig, auth, schedule,
};

/// Most workers a config may ask for: more would only hammer the API.
const MAX_WORKERS: usize = 64;
/// Download tokens live one hour on the server side.
const TOKEN_LIFETIME: Duration = Duration::from_secs(3600);

/// Parses `text` and validates it; `origin` names the text in error messages.
pub(super) fn parse(
    text: &str,
    env: &dyn Fn(&str) -> Option<String>,
    origin: &str,
    secrets: Secrets,
) -> Result<Config, ConfigError> {
    // Syntax first, so that "not TOML" and "wrong key" read differently.
    if let Err(err) = text.parse::<toml::Table>() {
        return Err(ConfigError::from_toml(&err, text, origin, true));
    }
    let raw: RawConfig =
        toml::from_str(text).map_err(|err| ConfigError::from_toml(&err, text, origin, false))?;
    let cloud = cloud(&raw.cloud, env, secrets)?;
    let server = server(raw.server.listen)?;
    let webhook = super::webhook::webhook(&raw.webhook, &cloud.auth, &server, env, secrets)?;
    Ok(Config {
        cloud,
        poll: poll(raw.poll)?,
        download: download(raw.download)?,
        ledger: LedgerConfig {
            path: path("ledger.path", raw.ledger.path, defaults::LEDGER_PATH)?,
            retry_for: positive(
                "ledger.retry_for",
                &raw.ledger.retry_for,
                defaults::LEDGER_RETRY_FOR,
            )?,
        },
        tls: TlsConfig {
            ca_file: raw.tls.ca_file.filter(|p| !p.as_os_str().is_empty()),
            insecure_download_hosts: hosts(raw.tls.insecure_download_hosts)?,
        },
        server,
        webhook,
        retention: RetentionConfig {
            delete_from_cloud: raw.retention.delete_from_cloud.unwrap_or(false),
            delete_after: duration(
                "retention.delete_after",
                &raw.retention.delete_after,
                defaults::DELETE_AFTER,
            )?,
            max_deletes_per_poll: raw
                .retention
                .max_deletes_per_poll
                .unwrap_or(defaults::MAX_DELETES_PER_POLL),
            dry_run: raw.retention.dry_run.unwrap_or(false),
        },
        log: log(raw.log)?,
        archive: super::archive::validate(&raw.archive, env, secrets)?,
        exposed_secrets: Vec::new(),
    })
}

fn cloud(
    raw: &RawCloud,
    env: &dyn Fn(&str) -> Option<String>,
    secrets: Secrets,
) -> Result<CloudConfig, ConfigError> {
    let api_base = raw.api_base.as_deref().unwrap_or(defaults::API_BASE);
    let api_base = url::Url::parse(api_base)
        .map_err(|e| ConfigError::invalid("cloud.api_base", format!("is not a URL: {e}")))?;
    if !matches!(api_base.scheme(), "http" | "https") {
        let reason = format!(
            "must be an http or https URL, got scheme \"{}\"",
            api_base.scheme()
        );
        return Err(ConfigError::invalid("cloud.api_base", reason));
    }
    if api_base.password().is_some() || !api_base.username().is_empty() {
        let reason = "must not contain credentials: use [cloud.auth]";
        return Err(ConfigError::invalid("cloud.api_base", reason));
    }
    let (auth, auth_source) = match auth::resolve(&raw.auth, env, secrets) {
        Err(ConfigError::MissingSecret(_) | ConfigError::SecretFile { .. })
            if secrets == Secrets::Optional =>
        {
            (
                Auth::AccessToken(SecretString::from("")),
                SecretSource::NotLoaded,
            )
        }
        other => other?,
    };
    let retry_base = positive(
        "cloud.retry_base",
        &raw.retry_base,
        defaults::API_RETRY_BASE,
    )?;
    let retry_max = positive("cloud.retry_max", &raw.retry_max, defaults::API_RETRY_MAX)?;
    at_least("cloud.retry_max", retry_max, "cloud.retry_base", retry_base)?;
    Ok(CloudConfig {
        api_base,
        auth,
        auth_source,
        request_timeout: positive(
            "cloud.request_timeout",
            &raw.request_timeout,
            defaults::REQUEST_TIMEOUT,
        )?,
        max_retries: raw.max_retries.unwrap_or(defaults::MAX_RETRIES),
        retry_base,
        retry_max,
        give_up_after: positive(
            "cloud.give_up_after",
            &raw.give_up_after,
            defaults::API_GIVE_UP_AFTER,
        )?,
        max_requests_per_minute: raw
            .max_requests_per_minute
            .unwrap_or(defaults::MAX_REQUESTS_PER_MINUTE),
    })
}

/// A size such as `"1GiB"`, `"500 MB"` or `"0"` in bytes (K/M/G/T are
/// powers of 1000, Ki/Mi/Gi/Ti of 1024).
pub(super) fn parse_size(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !c.is_ascii_digit() && c != '.')
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("\"{text}\" is not a size (use e.g. \"1GiB\", \"500MB\", \"0\")"))?;
    let scale: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "m" | "mb" => 1e6,
        "g" | "gb" => 1e9,
        "t" | "tb" => 1e12,
        "ki" | "kib" => 1024.0,
        "mi" | "mib" => 1024.0 * 1024.0,
        "gi" | "gib" => 1024.0 * 1024.0 * 1024.0,
        "ti" | "tib" => 1024.0 * 1024.0 * 1024.0 * 1024.0,
        other => {
            return Err(format!(
                "unknown size unit \"{other}\" (use B, KB, MB, GB, KiB, MiB, GiB)"
            ));
        }
    };
    Ok((number * scale).round() as u64)
}

/// The most meetings a poll lists at once.
const MAX_POLL_CONCURRENCY: usize = 64;

fn poll(raw: RawPoll) -> Result<PollConfig, ConfigError> {
    let schedule = schedule::validate(raw.schedule.as_deref().unwrap_or(defaults::SCHEDULE))?;
    let mut meetings: Vec<String> = Vec::with_capacity(raw.meetings.len());
    // A set beside the list: ten thousand meetings checked pairwise for
    // duplicates cost 0.1 s of every command's start.
    let mut seen = std::collections::HashSet::with_capacity(raw.meetings.len());
    for id in raw.meetings {
        let id = id.trim().to_string();
        let valid_chars = id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
        if id.is_empty() || id.len() > 64 || !valid_chars {
            let reason = format!(
                "must hold conference IDs of 1 to 64 letters, digits, '-' or '_', got {id:?}"
            );
            return Err(ConfigError::invalid("poll.meetings", reason));
        }
        if seen.insert(id.clone()) {
            meetings.push(id);
        }
    }
    let concurrency = raw.concurrency.unwrap_or(defaults::POLL_CONCURRENCY);
    if !(1..=MAX_POLL_CONCURRENCY).contains(&concurrency) {
        let reason = format!("must be 1 to {MAX_POLL_CONCURRENCY}, got {concurrency}");
        return Err(ConfigError::invalid("poll.concurrency", reason));
    }
    Ok(PollConfig {
        concurrency,
        schedule,
        meetings,
        discover_days: raw.discover_days.unwrap_or(defaults::DISCOVER_DAYS),
        recheck_for: duration("poll.recheck_for", &raw.recheck_for, defaults::RECHECK_FOR)?,
        give_up_after: positive(
            "poll.give_up_after",
            &raw.give_up_after,
            defaults::GIVE_UP_AFTER,
        )?,
    })
}

fn download(raw: RawDownload) -> Result<DownloadConfig, ConfigError> {
    let workers = raw.workers.unwrap_or(defaults::WORKERS);
    if workers == 0 {
        return Err(ConfigError::invalid(
            "download.workers",
            "must be at least 1, got 0",
        ));
    }
    if workers > MAX_WORKERS {
        let reason = format!("must be at most {MAX_WORKERS}, got {workers}");
        return Err(ConfigError::invalid("download.workers", reason));
    }
    let max_attempts = raw.max_attempts.unwrap_or(defaults::MAX_ATTEMPTS);
    if max_attempts == 0 {
        return Err(ConfigError::invalid(
            "download.max_attempts",
            "must be at least 1, got 0",
        ));
    }
    if raw.file_types.iter().any(|t| t.trim().is_empty()) {
        return Err(ConfigError::invalid(
            "download.file_types",
            "must not contain empty names",
        ));
    }
    let token_max_age = positive(
        "download.token_max_age",
        &raw.token_max_age,
        defaults::TOKEN_MAX_AGE,
    )?;
    if token_max_age >= TOKEN_LIFETIME {
        let reason = format!(
            "must be less than 1h (download tokens expire after an hour), got {}",
            humantime::format_duration(token_max_age)
        );
        return Err(ConfigError::invalid("download.token_max_age", reason));
    }
    let retry_base = positive(
        "download.retry_base",
        &raw.retry_base,
        defaults::DOWNLOAD_RETRY_BASE,
    )?;
    let retry_max = positive(
        "download.retry_max",
        &raw.retry_max,
        defaults::DOWNLOAD_RETRY_MAX,
    )?;
    at_least(
        "download.retry_max",
        retry_max,
        "download.retry_base",
        retry_base,
    )?;
    Ok(DownloadConfig {
        dir: path("download.dir", raw.dir, defaults::DOWNLOAD_DIR)?,
        workers,
        file_types: raw
            .file_types
            .iter()
            .map(|t| t.trim().to_string())
            .collect(),
        max_attempts,
        token_max_age,
        shutdown_timeout: positive(
            "download.shutdown_timeout",
            &raw.shutdown_timeout,
            defaults::SHUTDOWN_TIMEOUT,
        )?,
        connect_timeout: positive(
            "download.connect_timeout",
            &raw.connect_timeout,
            defaults::CONNECT_TIMEOUT,
        )?,
        read_timeout: positive(
            "download.read_timeout",
            &raw.read_timeout,
            defaults::READ_TIMEOUT,
        )?,
        retry_base,
        retry_max,
        checkpoint_interval: positive(
            "download.checkpoint_interval",
            &raw.checkpoint_interval,
            defaults::CHECKPOINT_INTERVAL,
        )?,
        min_free_space: match &raw.min_free_space {
            None => defaults::MIN_FREE_SPACE,
            Some(text) => parse_size(text)
                .map_err(|reason| ConfigError::invalid("download.min_free_space", reason))?,
        },
        layout: match &raw.layout {
            None => None,
            Some(text) => Some(
                crate::archive::Layout::parse(text.trim())
                    .map_err(|e| ConfigError::invalid("download.layout", e.to_string()))?,
            ),
        },
        timezone: match &raw.timezone {
            None => crate::archive::Zone::Utc,
            Some(text) => crate::archive::Zone::parse(text)
                .map_err(|e| ConfigError::invalid("download.timezone", e.to_string()))?,
        },
    })
}

fn hosts(raw: Vec<String>) -> Result<Vec<String>, ConfigError> {
    let mut hosts = Vec::with_capacity(raw.len());
    for host in raw {
        if host.contains('/') {
            // An address range (`100.64.0.0/10`): checked, kept as written.
            crate::download::parse_cidr(host.trim()).map_err(|reason| {
                ConfigError::invalid("tls.insecure_download_hosts", format!("{host:?}: {reason}"))
            })?;
            hosts.push(host.trim().to_owned());
            continue;
        }
        // Normalised the way `Url::host_str` prints it, so callers can compare.
        let parsed = url::Host::parse(host.trim()).map_err(|e| {
            let reason =
                format!("must hold bare host names (no scheme, port or path), got {host:?}: {e}");
            ConfigError::invalid("tls.insecure_download_hosts", reason)
        })?;
        hosts.push(parsed.to_string());
    }
    Ok(hosts)
}

fn server(listen: Option<String>) -> Result<ServerConfig, ConfigError> {
    let listen = match listen.as_deref().map(str::trim) {
        None => Some(defaults::LISTEN),
        Some("") => None,
        Some(addr) => Some(addr.parse().map_err(|e| {
            let reason =
                format!("must be an address like \"127.0.0.1:9187\" or \"\", got {addr:?}: {e}");
            ConfigError::invalid("server.listen", reason)
        })?),
    };
    Ok(ServerConfig { listen })
}

fn log(raw: RawLog) -> Result<LogConfig, ConfigError> {
    let format = match raw.format {
        None | Some(RawLogFormat::Text) => LogFormat::Text,
        Some(RawLogFormat::Json) => LogFormat::Json,
    };
    let level = raw.level.unwrap_or_else(|| defaults::LOG_LEVEL.to_string());
    log_level(&level)?;
    Ok(LogConfig { format, level })
}

/// `log.level` must be a filter the logger takes as meant. A bare word is
/// a target to `EnvFilter` (`"verbose"` enables only a target of that
/// name and silences every line), so one must be a level.
fn log_level(level: &str) -> Result<(), ConfigError> {
    const HINT: &str = "use a level (error, warn, info, debug, trace, off) or target=level \
                        directives, e.g. \"info\" or \"info,meeting_archiver=debug\"";
    if level.trim().is_empty() {
        return Err(ConfigError::invalid(
            "log.level",
            format!("must not be empty: {HINT}"),
        ));
    }
    for directive in level.split(',').map(str::trim).filter(|d| !d.is_empty()) {
        let bare = !directive.contains('=');
        if bare && directive.parse::<LevelFilter>().is_err() {
            let reason = format!("{directive:?} is not a level: {HINT}");
            return Err(ConfigError::invalid("log.level", reason));
        }
    }
    EnvFilter::builder().parse(level).map_err(|e| {
        ConfigError::invalid(
            "log.level",
            format!("{level:?} is not a valid filter ({e}): {HINT}"),
        )
    })?;
    Ok(())
}

/// A path key, or its default; an empty path is rejected.
fn path(key: &str, raw: Option<PathBuf>, default: &str) -> Result<PathBuf, ConfigError> {
    let path = raw.unwrap_or_else(|| PathBuf::from(default));
    if path.as_os_str().is_empty() {
        return Err(ConfigError::invalid(key, "must not be empty"));
    }
    Ok(path)
}

/// A duration key, or its default.
fn duration(key: &str, raw: &Option<String>, default: Duration) -> Result<Duration, ConfigError> {
    let Some(value) = raw else { return Ok(default) };
    humantime::parse_duration(value.trim()).map_err(|e| ConfigError::Duration {
        key: key.to_string(),
        value: value.clone(),
        reason: e.to_string(),
    })
}

/// A duration key that must be greater than zero.
fn positive(key: &str, raw: &Option<String>, default: Duration) -> Result<Duration, ConfigError> {
    let value = duration(key, raw, default)?;
    if value.is_zero() {
        return Err(ConfigError::invalid(key, "must be greater than 0s"));
    }
    Ok(value)
}

/// `high` (a cap) must not be below `low` (its base).
fn at_least(key: &str, high: Duration, low_key: &str, low: Duration) -> Result<(), ConfigError> {
    if high < low {
        let reason = format!(
            "({}) must not be less than {low_key} ({})",
            humantime::format_duration(high),
            humantime::format_duration(low)
        );
        return Err(ConfigError::invalid(key, reason));
    }
    Ok(())
}
