//! `[archive]`: where verified files end up. `target = "local"` (the
//! default) keeps them in `download.dir`; `target = "s3"` uploads them to
//! an S3-compatible bucket (`[archive.s3]`: Huawei OBS, MinIO, Ceph, AWS)
//! and keeps only partial downloads locally. The secret key comes from the
//! file, `secret_access_key_file` or `AWS_SECRET_ACCESS_KEY`, like the App Key.

use secrecy::SecretString;

use super::auth::{SecretSpec, lookup, non_empty};
use super::raw::{RawArchive, RawS3, defaults};
use super::{ConfigError, SecretSource, Secrets};

/// Environment variable that supplies the S3 access key id when the file does not.
pub const ENV_S3_ACCESS_KEY_ID: &str = "AWS_ACCESS_KEY_ID";
/// Environment variable that supplies the S3 secret key when the file does not.
pub const ENV_S3_SECRET_ACCESS_KEY: &str = "AWS_SECRET_ACCESS_KEY";
/// Environment variables that supply the region when the file does not.
const ENV_REGIONS: [&str; 2] = ["AWS_REGION", "AWS_DEFAULT_REGION"];

/// `[archive]`: the archive target.
#[derive(Debug, Clone, Default)]
pub enum ArchiveConfig {
    /// Files stay in `download.dir` (the default).
    #[default]
    Local,
    /// Files are uploaded to a bucket, then removed locally.
    S3(Box<S3Config>),
}

impl ArchiveConfig {
    /// The bucket's settings, if the target is `s3`.
    pub fn s3(&self) -> Option<&S3Config> {
        match self {
            ArchiveConfig::Local => None,
            ArchiveConfig::S3(s3) => Some(s3.as_ref()),
        }
    }
}

/// `[archive.s3]`: an S3-compatible bucket.
#[derive(Debug, Clone)]
pub struct S3Config {
    /// The bucket's name.
    pub bucket: String,
    /// Prepended to every object key (`""` or ending in `/`, say).
    pub prefix: String,
    /// The service's URL; `None` for AWS (derived from the region).
    pub endpoint: Option<url::Url>,
    /// The region the bucket lives in (signing needs it).
    pub region: String,
    /// The access key id (not secret: it names the key).
    pub access_key_id: String,
    /// The secret access key.
    pub secret_access_key: SecretString,
    /// Where the secret key came from (for `check-config`; never the value).
    pub secret_source: SecretSource,
    /// Path-style requests (`endpoint/bucket/key`): MinIO, Ceph, test servers.
    pub path_style: bool,
}

/// Validates `[archive]` and `[archive.s3]`.
pub(super) fn validate(
    raw: &RawArchive,
    env: &dyn Fn(&str) -> Option<String>,
    secrets: Secrets,
) -> Result<ArchiveConfig, ConfigError> {
    match raw.target.as_deref().map(str::trim).unwrap_or("local") {
        "local" => Ok(ArchiveConfig::Local),
        "s3" => {
            let empty = RawS3::default();
            let s3 = raw.s3.as_ref().unwrap_or(&empty);
            Ok(ArchiveConfig::S3(Box::new(s3_config(s3, env, secrets)?)))
        }
        other => Err(ConfigError::invalid(
            "archive.target",
            format!("must be \"local\" or \"s3\", got {other:?}"),
        )),
    }
}

fn s3_config(
    raw: &RawS3,
    env: &dyn Fn(&str) -> Option<String>,
    secrets: Secrets,
) -> Result<S3Config, ConfigError> {
    let bucket = non_empty(raw.bucket.as_deref()).ok_or_else(|| {
        ConfigError::invalid(
            "archive.s3.bucket",
            "must be set when archive.target = \"s3\"",
        )
    })?;
    let prefix = key_prefix(raw.prefix.as_deref().unwrap_or_default())?;
    let path_style = raw.path_style.unwrap_or(false);
    let endpoint = match non_empty(raw.endpoint.as_deref()) {
        None => None,
        Some(text) => Some(endpoint(&text, path_style)?),
    };
    let region = non_empty(raw.region.as_deref())
        .or_else(|| {
            ENV_REGIONS
                .iter()
                .find_map(|v| non_empty(env(v).as_deref()))
        })
        .unwrap_or_else(|| defaults::S3_REGION.to_owned());
    // Commands that only read the ledger (`status`, `retry`) work without
    // the bucket's credentials; `verify` and the pipeline refuse then.
    let optional = secrets == Secrets::Optional;
    let access_key_id = non_empty(raw.access_key_id.as_deref())
        .or_else(|| non_empty(env(ENV_S3_ACCESS_KEY_ID).as_deref()));
    let access_key_id = match access_key_id {
        Some(id) => id,
        None if optional => String::new(),
        None => {
            return Err(ConfigError::MissingSecret(format!(
                "archive.s3.access_key_id missing (or {ENV_S3_ACCESS_KEY_ID})"
            )));
        }
    };
    let spec = SecretSpec {
        key: "archive.s3.secret_access_key",
        file_key: "archive.s3.secret_access_key_file",
        env_var: ENV_S3_SECRET_ACCESS_KEY,
        inline: raw.secret_access_key.as_ref(),
        file: non_empty(raw.secret_access_key_file.as_deref()).map(Into::into),
    };
    let (secret_access_key, secret_source) = match lookup(&spec, env, secrets) {
        Ok(Some(found)) if !access_key_id.is_empty() => found,
        Ok(None) | Ok(Some(_)) | Err(ConfigError::SecretFile { .. }) if optional => {
            (SecretString::from(""), SecretSource::NotLoaded)
        }
        Ok(_) => {
            return Err(ConfigError::MissingSecret(format!(
                "archive.s3.secret_access_key missing (or secret_access_key_file, or \
                 {ENV_S3_SECRET_ACCESS_KEY})"
            )));
        }
        Err(e) => return Err(e),
    };
    Ok(S3Config {
        bucket,
        prefix,
        endpoint,
        region,
        access_key_id,
        secret_access_key,
        secret_source,
        path_style,
    })
}

/// The longest `archive.s3.prefix`: S3 keys hold at most 1024 bytes, and
/// the archive's relative paths need the rest.
pub const MAX_PREFIX_BYTES: usize = 512;

/// The key prefix as keys use it: empty, or folders ending in `/` (one is
/// added: `huawei` means `huawei/`). Refuses what cannot start an object
/// key: a leading `/`, empty, `.` or `..` segments (`a//`), control
/// characters, more than [`MAX_PREFIX_BYTES`].
fn key_prefix(text: &str) -> Result<String, ConfigError> {
    let key = "archive.s3.prefix";
    if text.is_empty() {
        return Ok(String::new());
    }
    let bare = text.strip_suffix('/').unwrap_or(text);
    let bad_segment = bare
        .split('/')
        .find(|p| p.is_empty() || *p == "." || *p == "..");
    if let Some(segment) = bad_segment {
        let reason = format!(
            "{text:?} has an empty, \".\" or \"..\" segment ({segment:?}); use a relative key \
             prefix such as \"huawei/\""
        );
        return Err(ConfigError::invalid(key, reason));
    }
    if bare.chars().any(char::is_control) {
        let reason = format!("{text:?} contains a control character");
        return Err(ConfigError::invalid(key, reason));
    }
    let prefix = format!("{bare}/");
    if prefix.len() > MAX_PREFIX_BYTES {
        let reason = format!(
            "is {} bytes long; at most {MAX_PREFIX_BYTES} (object keys hold 1024 bytes)",
            prefix.len()
        );
        return Err(ConfigError::invalid(key, reason));
    }
    Ok(prefix)
}

fn endpoint(text: &str, path_style: bool) -> Result<url::Url, ConfigError> {
    let key = "archive.s3.endpoint";
    let url = url::Url::parse(text)
        .map_err(|e| ConfigError::invalid(key, format!("is not a URL: {e}")))?;
    if !matches!(url.scheme(), "http" | "https") {
        let reason = format!(
            "must be an http or https URL, got scheme \"{}\"",
            url.scheme()
        );
        return Err(ConfigError::invalid(key, reason));
    }
    if url.password().is_some() || !url.username().is_empty() {
        let reason = "must not contain credentials: use archive.s3.access_key_id";
        return Err(ConfigError::invalid(key, reason));
    }
    let is_ip = url
        .host()
        .is_some_and(|h| !matches!(h, url::Host::Domain(_)));
    if !path_style && is_ip {
        let reason = "is an IP address, which cannot carry the bucket in its host name \
                      (virtual-hosted style): set archive.s3.path_style = true";
        return Err(ConfigError::invalid(key, reason));
    }
    Ok(url)
}

#[cfg(test)]
mod tests {
    use secrecy::ExposeSecret;

    use super::*;
    use crate::config::Config;

    const BASE: &str = "[cloud.auth]\napp_id = \"id\"\napp_key = \"k\"\n";

    fn parse(extra: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigError> {
        Config::from_toml(&format!("{BASE}{extra}"), env)
    }

    fn no_env(_: &str) -> Option<String> {
        None
    }

    #[test]
    fn the_default_target_is_the_local_folder() {
        let config = parse("", &no_env).expect("valid");
        assert!(config.archive.s3().is_none());
        let config = parse("[archive]\ntarget = \"local\"\n", &no_env).expect("valid");
        assert!(config.archive.s3().is_none());
    }

    #[test]
    fn an_s3_target_reads_every_key() {
        let text = "[archive]\ntarget = \"s3\"\n[archive.s3]\nbucket = \"rec\"\nprefix = \"huawei/\"\n\
                    endpoint = \"https://obs.cn-north-4.myhuaweicloud.com\"\nregion = \"cn-north-4\"\n\
                    access_key_id = \"AKID\"\nsecret_access_key = \"sekrit\"\npath_style = true\n";
        let config = parse(text, &no_env).expect("valid");
        let s3 = config.archive.s3().expect("s3");
        assert_eq!(s3.bucket, "rec");
        assert_eq!(s3.prefix, "huawei/");
        assert_eq!(s3.region, "cn-north-4");
        assert_eq!(s3.access_key_id, "AKID");
        assert_eq!(s3.secret_access_key.expose_secret(), "sekrit");
        assert_eq!(s3.secret_source, SecretSource::Inline);
        assert!(s3.path_style);
        assert!(!format!("{config:?}").contains("sekrit"));
        assert!(!config.summary().contains("sekrit"));
    }

    #[test]
    fn credentials_and_region_come_from_the_aws_environment() {
        let env = |name: &str| match name {
            "AWS_ACCESS_KEY_ID" => Some("AKENV".to_owned()),
            "AWS_SECRET_ACCESS_KEY" => Some("envsecret".to_owned()),
            "AWS_REGION" => Some("eu-west-1".to_owned()),
            _ => None,
        };
        let config = parse(
            "[archive]\ntarget = \"s3\"\n[archive.s3]\nbucket = \"b\"\n",
            &env,
        )
        .expect("valid");
        let s3 = config.archive.s3().expect("s3");
        assert_eq!(s3.access_key_id, "AKENV");
        assert_eq!(s3.region, "eu-west-1");
        assert_eq!(
            s3.secret_source,
            SecretSource::Env(ENV_S3_SECRET_ACCESS_KEY)
        );
        assert!(s3.endpoint.is_none());
    }

    #[test]
    fn bad_archive_settings_name_their_key() {
        let cases = [
            ("[archive]\ntarget = \"tape\"\n", "archive.target"),
            ("[archive]\ntarget = \"s3\"\n", "archive.s3.bucket"),
            (
                "[archive]\ntarget = \"s3\"\n[archive.s3]\nbucket = \"b\"\nsecret_access_key = \"x\"\n",
                "archive.s3.access_key_id",
            ),
            (
                "[archive]\ntarget = \"s3\"\n[archive.s3]\nbucket = \"b\"\naccess_key_id = \"a\"\n",
                "archive.s3.secret_access_key",
            ),
            (
                "[archive]\ntarget = \"s3\"\n[archive.s3]\nbucket = \"b\"\naccess_key_id = \"a\"\n\
                 secret_access_key = \"x\"\nendpoint = \"ftp://h\"\n",
                "archive.s3.endpoint",
            ),
            (
                "[archive]\ntarget = \"s3\"\n[archive.s3]\nbucket = \"b\"\naccess_key_id = \"a\"\n\
                 secret_access_key = \"x\"\nprefix = \"../up/\"\n",
                "archive.s3.prefix",
            ),
            ("[archive.s3]\nbucket = 5\n", "bucket"),
        ];
        for (text, key) in cases {
            let message = parse(text, &no_env).expect_err(text).to_string();
            assert!(message.contains(key), "{text}: {message}");
        }
        let s3 = "[archive]\ntarget = \"s3\"\n[archive.s3]\nbucket = \"b\"\naccess_key_id = \"a\"\n\
                  secret_access_key = \"x\"\n";
        let long = format!("prefix = \"{}\"\n", "p".repeat(MAX_PREFIX_BYTES));
        let more = [
            "prefix = \"a//\"\n",
            "prefix = \"a//b/\"\n",
            "prefix = \"/a/\"\n",
            "prefix = \"a/\\u0007/\"\n",
            long.as_str(),
            "endpoint = \"http://127.0.0.1:9000\"\n",
        ];
        for extra in more {
            let text = format!("{s3}{extra}");
            let message = parse(&text, &no_env).expect_err(extra).to_string();
            let key = extra.split_once(' ').map_or("", |(k, _)| k);
            assert!(
                message.contains(&format!("archive.s3.{key}")),
                "{extra}: {message}"
            );
        }
        let ip_path_style =
            format!("{s3}endpoint = \"http://127.0.0.1:9000\"\npath_style = true\n");
        parse(&ip_path_style, &no_env).expect("an IP endpoint with path-style requests");
    }

    #[test]
    fn a_prefix_without_a_trailing_slash_gets_one() {
        let s3 = "[archive]\ntarget = \"s3\"\n[archive.s3]\nbucket = \"b\"\naccess_key_id = \"a\"\n\
                  secret_access_key = \"x\"\n";
        for (given, used) in [("huawei", "huawei/"), ("a/b/", "a/b/"), ("", "")] {
            let config = parse(&format!("{s3}prefix = \"{given}\"\n"), &no_env).expect("valid");
            let prefix = config.archive.s3().map(|s| s.prefix.clone());
            assert_eq!(prefix.as_deref(), Some(used), "{given}");
        }
    }

    #[test]
    fn commands_that_only_read_the_ledger_load_without_the_bucket_credentials() {
        let text = format!("{BASE}[archive]\ntarget = \"s3\"\n[archive.s3]\nbucket = \"b\"\n");
        let config = super::super::validate::parse(&text, &no_env, "config", Secrets::Optional)
            .expect("loads");
        let s3 = config.archive.s3().expect("s3");
        assert_eq!(s3.secret_source, SecretSource::NotLoaded);
        assert!(
            parse(
                "[archive]\ntarget = \"s3\"\n[archive.s3]\nbucket = \"b\"\n",
                &no_env
            )
            .is_err()
        );
    }

    #[test]
    fn the_examples_commented_s3_section_is_valid_once_uncommented() {
        let example = include_str!("../../config/meeting-archiver.example.toml");
        let mut in_s3 = false;
        let mut text = String::new();
        for line in example.lines() {
            if line.starts_with('[') {
                in_s3 = false;
            }
            if line.starts_with("# [archive.s3]") {
                in_s3 = true;
                text.push_str("[archive.s3]\n");
                continue;
            }
            let key = line
                .strip_prefix("# ")
                .filter(|l| l.contains(" = ") && in_s3);
            match key {
                Some(key) => text.push_str(key),
                None => text.push_str(&line.replace("target = \"local\"", "target = \"s3\"")),
            }
            text.push('\n');
        }
        let text = text.replace("secret_access_key_file = ", "secret_access_key = ");
        let config = Config::from_toml(&text, &no_env).expect("valid");
        let s3 = config.archive.s3().expect("s3");
        assert_eq!(s3.bucket, "meeting-recordings");
        assert_eq!(s3.prefix, "huawei/");
        assert_eq!(s3.region, "cn-north-4");
        assert!(!s3.path_style);
    }

    #[test]
    fn a_world_readable_secret_key_file_is_warned_about() {
        use std::os::unix::fs::PermissionsExt;
        let dir = tempfile::tempdir().expect("tempdir");
        let key = dir.path().join("s3_secret");
        std::fs::write(&key, "sekrit\n").expect("write key");
        std::fs::set_permissions(&key, std::fs::Permissions::from_mode(0o644)).expect("chmod");
        let text = format!(
            "{BASE}[archive]\ntarget = \"s3\"\n[archive.s3]\nbucket = \"b\"\n\
             access_key_id = \"a\"\nsecret_access_key_file = {:?}\n",
            key.display().to_string()
        );
        let path = dir.path().join("config.toml");
        std::fs::write(&path, text).expect("write config");
        std::fs::set_permissions(&path, std::fs::Permissions::from_mode(0o600)).expect("chmod");
        let config = Config::load(&path).expect("loads");
        let s3 = config.archive.s3().expect("s3");
        assert_eq!(s3.secret_access_key.expose_secret(), "sekrit");
        assert_eq!(s3.secret_source, SecretSource::File(key.clone()));
        let warnings = config.warnings();
        assert!(
            warnings
                .iter()
                .any(|w| w.contains(&key.display().to_string())),
            "{warnings:?}"
        );
    }

    #[test]
    fn a_secret_of_the_wrong_type_is_not_echoed() {
        let text = "[archive]\ntarget = \"s3\"\n[archive.s3]\nbucket = \"b\"\n\
                    access_key_id = \"a\"\nsecret_access_key = 123456789\n";
        let message = parse(text, &no_env).expect_err("wrong type").to_string();
        assert!(!message.contains("123456789"), "{message}");
    }
}
