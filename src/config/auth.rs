//! `[cloud.auth]`: picks the one authentication method and fetches its secret
//! from the file, a `*_file` key or the environment, remembering which.
//! The environment variable also stands in for a `*_file` that cannot be
//! read, so a systemd credential (mounted only while the service runs) can
//! be overridden when running by hand.

use std::path::PathBuf;

use secrecy::{ExposeSecret, SecretString};

use super::raw::{RawAuth, RawSecret};
use super::{Auth, ConfigError, ENV_ACCESS_TOKEN, ENV_APP_KEY, SecretSource, Secrets};

/// Where systemd mounts a service's credentials, only while it runs.
const SYSTEMD_CREDENTIALS: &str = "/run/credentials";

/// One secret's possible places, by key name.
pub(super) struct SecretSpec<'a> {
    pub(super) key: &'static str,
    pub(super) file_key: &'static str,
    pub(super) env_var: &'static str,
    pub(super) inline: Option<&'a RawSecret>,
    pub(super) file: Option<PathBuf>,
}

/// Resolves the auth method and where its secret came from.
pub(super) fn resolve(
    raw: &RawAuth,
    env: &dyn Fn(&str) -> Option<String>,
    secrets: Secrets,
) -> Result<(Auth, SecretSource), ConfigError> {
    let app_id = non_empty(raw.app_id.as_deref());
    let app_key = SecretSpec {
        key: "cloud.auth.app_key",
        file_key: "cloud.auth.app_key_file",
        env_var: ENV_APP_KEY,
        inline: raw.app_key.as_ref(),
        file: non_empty(raw.app_key_file.as_deref()).map(PathBuf::from),
    };
    let token = SecretSpec {
        key: "cloud.auth.access_token",
        file_key: "cloud.auth.access_token_file",
        env_var: ENV_ACCESS_TOKEN,
        inline: raw.access_token.as_ref(),
        file: non_empty(raw.access_token_file.as_deref()).map(PathBuf::from),
    };
    let token_in_file = token.inline.is_some() || token.file.is_some();
    match app_id {
        Some(app_id) => {
            if token_in_file {
                return Err(ConfigError::Auth(
                    "cloud.auth: exactly one auth method: set app_id + app_key, or access_token \
                     (or access_token_file), not both"
                        .to_string(),
                ));
            }
            let Some((app_key, source)) = lookup(&app_key, env, secrets)? else {
                return Err(ConfigError::MissingSecret(format!(
                    "cloud.auth.app_key missing (or app_key_file, or {ENV_APP_KEY})"
                )));
            };
            let user_id = non_empty(raw.user_id.as_deref());
            let corp_id = non_empty(raw.corp_id.as_deref());
            Ok((
                Auth::AppId {
                    app_id,
                    app_key,
                    user_id,
                    corp_id,
                },
                source,
            ))
        }
        None => resolve_token(raw, [&app_key, &token], env, secrets),
    }
}

/// The no-`app_id` branch: an access token, and nothing App-ID-specific.
fn resolve_token(
    raw: &RawAuth,
    [app_key, token]: [&SecretSpec; 2],
    env: &dyn Fn(&str) -> Option<String>,
    secrets: Secrets,
) -> Result<(Auth, SecretSource), ConfigError> {
    if app_key.inline.is_some() || app_key.file.is_some() {
        return Err(ConfigError::Auth(
            "cloud.auth.app_key (or app_key_file) is set but cloud.auth.app_id is not".to_string(),
        ));
    }
    for (key, value) in [("user_id", &raw.user_id), ("corp_id", &raw.corp_id)] {
        if non_empty(value.as_deref()).is_some() {
            return Err(ConfigError::Auth(format!(
                "cloud.auth.{key} only applies with cloud.auth.app_id"
            )));
        }
    }
    match lookup(token, env, secrets)? {
        Some((secret, source)) => Ok((Auth::AccessToken(secret), source)),
        None => Err(ConfigError::MissingSecret(
            "no authentication configured: set cloud.auth.app_id + app_key, or \
             cloud.auth.access_token"
                .to_string(),
        )),
    }
}

/// Finds a secret: the inline key, else its `*_file` (else, when that cannot
/// be read, the environment), else the environment.
pub(super) fn lookup(
    spec: &SecretSpec,
    env: &dyn Fn(&str) -> Option<String>,
    secrets: Secrets,
) -> Result<Option<(SecretString, SecretSource)>, ConfigError> {
    let (secret, source, what) = match (spec.inline, &spec.file) {
        (Some(_), Some(_)) => {
            return Err(ConfigError::Auth(format!(
                "{} and {} are both set: give only one",
                spec.key, spec.file_key
            )));
        }
        (Some(RawSecret(secret)), None) => {
            (secret.clone(), SecretSource::Inline, spec.key.to_string())
        }
        (None, Some(path)) => match std::fs::read_to_string(path) {
            Ok(text) => {
                let secret = SecretString::from(text.trim_end());
                let what = format!("{} ({})", spec.file_key, path.display());
                (secret, SecretSource::File(path.clone()), what)
            }
            Err(error) => match from_env(spec, env) {
                Some(found) => found,
                None => return pending_or_error(spec, path, error, secrets),
            },
        },
        (None, None) => match from_env(spec, env) {
            Some(found) => found,
            None => return Ok(None),
        },
    };
    if secret.expose_secret().trim().is_empty() {
        return Err(ConfigError::Auth(format!("{what} is empty")));
    }
    Ok(Some((secret, source)))
}

/// A `*_file` that cannot be read and no environment variable to stand in:
/// `check-config` reports a systemd credential as pending; else an error.
fn pending_or_error(
    spec: &SecretSpec,
    path: &std::path::Path,
    source: std::io::Error,
    secrets: Secrets,
) -> Result<Option<(SecretString, SecretSource)>, ConfigError> {
    if secrets == Secrets::Check && path.starts_with(SYSTEMD_CREDENTIALS) {
        let pending = SecretSource::Pending(path.to_path_buf());
        return Ok(Some((SecretString::from(""), pending)));
    }
    Err(ConfigError::SecretFile {
        key: spec.file_key.to_string(),
        path: path.to_path_buf(),
        source,
    })
}

/// The secret from the spec's environment variable, if set.
fn from_env(
    spec: &SecretSpec,
    env: &dyn Fn(&str) -> Option<String>,
) -> Option<(SecretString, SecretSource, String)> {
    let value = env(spec.env_var)?;
    let what = format!("environment variable {}", spec.env_var);
    Some((
        SecretString::from(value),
        SecretSource::Env(spec.env_var),
        what,
    ))
}

/// `Some(trimmed)` unless absent or blank: empty strings in the file mean "not set".
pub(super) fn non_empty(value: Option<&str>) -> Option<String> {
    value
        .map(str::trim)
        .filter(|v| !v.is_empty())
        .map(str::to_string)
}
