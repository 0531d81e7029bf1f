//! Settings that are valid but probably not what the user meant: shown by
//! `check-config` and logged at start-up. A secret is judged here (is it the
//! example's placeholder?) but never quoted.

use secrecy::{ExposeSecret, SecretString};

use super::{Auth, Config, ENV_ACCESS_TOKEN, ENV_APP_KEY, SecretSource};

/// Values copied from an example instead of filled in (lower case).
const PLACEHOLDERS: [&str; 8] = [
    "...",
    "changeme",
    "change-me",
    "your-app-id",
    "your_app_id",
    "your-app-key",
    "your_app_key",
    "your-access-token",
];

impl Config {
    /// Things that are valid but probably not what the user meant.
    pub fn warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        let events_bring_meetings = self.webhook.enabled && self.webhook.accept_unlisted;
        if self.poll.meetings.is_empty() && self.poll.discover_days == 0 && !events_bring_meetings {
            warnings
                .push("no meetings configured and discovery off: nothing to archive".to_string());
        }
        warnings.extend(self.exposed_secrets.iter().cloned());
        warnings.extend(self.credential_warnings());
        if !self.tls.insecure_download_hosts.is_empty() {
            warnings.push(format!(
                "certificates are not checked for downloads from: {}",
                self.tls.insecure_download_hosts.join(", ")
            ));
        }
        warnings.extend(no_default_level(&self.log.level));
        let hook = &self.webhook;
        if hook.enabled && !hook.listen.ip().is_loopback() {
            warnings.push(format!(
                "webhook.listen {} is reachable from other hosts: events (and their signatures)                  travel in clear unless a TLS proxy is the only way in; prefer 127.0.0.1 behind                  nginx or Caddy",
                hook.listen
            ));
        }
        warnings
    }

    /// Placeholders left in `[cloud.auth]`, and a systemd credential that
    /// cannot be read now.
    fn credential_warnings(&self) -> Vec<String> {
        let mut warnings = Vec::new();
        let (secret, key, file_key, env_var) = match &self.cloud.auth {
            Auth::AppId {
                app_id, app_key, ..
            } => {
                if is_placeholder(app_id) {
                    warnings.push(format!(
                        "cloud.auth.app_id {app_id:?} looks like a placeholder: put the App ID \
                         of your enterprise there"
                    ));
                }
                let keys = ("cloud.auth.app_key", "cloud.auth.app_key_file");
                (app_key, keys.0, keys.1, ENV_APP_KEY)
            }
            Auth::AccessToken(token) => {
                let keys = ("cloud.auth.access_token", "cloud.auth.access_token_file");
                (token, keys.0, keys.1, ENV_ACCESS_TOKEN)
            }
        };
        match &self.cloud.auth_source {
            SecretSource::Pending(path) => warnings.push(format!(
                "{file_key} {} is not readable now (it exists only while the service runs); \
                 {env_var} overrides it",
                path.display()
            )),
            SecretSource::NotLoaded => {}
            _ if secret_is_placeholder(secret) => warnings.push(format!(
                "{key} {} looks like a placeholder (value not shown): put the real secret there",
                self.cloud.auth_source
            )),
            _ => {}
        }
        warnings
    }
}

/// Whether `value` is an example's stand-in rather than a real value.
fn is_placeholder(value: &str) -> bool {
    let value = value.trim().to_ascii_lowercase();
    PLACEHOLDERS.iter().any(|p| value == *p)
        || value.starts_with("your-")
        || value.starts_with("your_")
        || (value.starts_with('<') && value.ends_with('>'))
}

fn secret_is_placeholder(secret: &SecretString) -> bool {
    let value = secret.expose_secret().to_ascii_lowercase();
    is_placeholder(&value) || value.contains("your-app-key") || value.contains("your_app_key")
}

/// A filter with no plain level logs nothing outside the targets it names
/// (`hyper=debug` silences the archiver's own lines).
fn no_default_level(level: &str) -> Option<String> {
    let has_default = level
        .split(',')
        .map(str::trim)
        .any(|d| !d.is_empty() && !d.contains('='));
    (!has_default).then(|| {
        format!(
            "log.level {level:?} sets no default level: only the targets it names are logged \
             (add one, e.g. \"info,{level}\")"
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_recognised() {
        for value in ["your-app-id", "...", "changeme", "<APP ID>", "Your_App_Key"] {
            assert!(is_placeholder(value), "{value}");
        }
        for value in ["a1b2c3", "yourcompany", "id"] {
            assert!(!is_placeholder(value), "{value}");
        }
        assert!(secret_is_placeholder(&SecretString::from(
            "paste-your-app-key-here"
        )));
        assert!(!secret_is_placeholder(&SecretString::from("s3cr3t-key")));
    }

    #[test]
    fn a_filter_without_a_level_is_flagged() {
        assert!(no_default_level("hyper=debug").is_some());
        assert!(no_default_level("info").is_none());
        assert!(no_default_level("hyper=debug,warn").is_none());
    }
}
