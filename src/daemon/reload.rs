//! SIGHUP: re-read the config. Meetings, discovery, the re-check period,
//! the schedule, the number of workers and the webhook's subscription and
//! password (re-read from its file) change in place without dropping
//! transfers; other changes are logged as needing a restart. A config that
//! does not load is refused with the reason and the old one stays.

use std::path::Path;

use crate::config::Config;
use crate::telemetry::error_chain;

/// Loads the config at `path` for a reload, logging which changed sections
/// need a restart. `None` (logged with the reason) if it does not load.
pub fn load(path: &Path, current: &Config) -> Option<Config> {
    let new = match Config::load(path) {
        Ok(config) => config,
        Err(e) => {
            tracing::error!(
                error = %error_chain(&e),
                "config reload refused; the daemon keeps running on the previous config"
            );
            return None;
        }
    };
    for section in restart_only_changes(current, &new) {
        tracing::warn!(
            section,
            "changed in the config file; takes effect after a restart"
        );
    }
    Some(new)
}

/// Sections that differ in ways a reload does not apply.
fn restart_only_changes(old: &Config, new: &Config) -> Vec<&'static str> {
    let mut changed = Vec::new();
    let (a, b) = (&old.cloud, &new.cloud);
    if a.api_base != b.api_base
        || a.request_timeout != b.request_timeout
        || a.max_retries != b.max_retries
        || a.retry_base != b.retry_base
        || a.retry_max != b.retry_max
        || a.max_requests_per_minute != b.max_requests_per_minute
        || a.auth_source != b.auth_source
    {
        changed.push("cloud");
    }
    let mut download = new.download.clone();
    download.workers = old.download.workers;
    if download != old.download {
        changed.push("download");
    }
    if old.ledger != new.ledger {
        changed.push("ledger");
    }
    if old.tls != new.tls {
        changed.push("tls");
    }
    if old.server != new.server {
        changed.push("server");
    }
    if old.log != new.log {
        changed.push("log");
    }
    // `accept_unlisted`, `app_id` and the key apply in place; the
    // listener does not.
    let (a, b) = (&old.webhook, &new.webhook);
    if a.enabled != b.enabled || a.listen != b.listen || a.path != b.path {
        changed.push("webhook");
    }
    // The secret key is redacted from Debug; where it comes from is not.
    if format!("{:?}", old.archive) != format!("{:?}", new.archive) {
        changed.push("archive");
    }
    changed
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_changed_archive_target_needs_a_restart() {
        let base = "[cloud.auth]\napp_id = \"id\"\napp_key = \"k\"\n";
        let s3 = format!(
            "{base}[archive]\ntarget = \"s3\"\n[archive.s3]\nbucket = \"b\"\n\
             access_key_id = \"a\"\nsecret_access_key = \"s\"\n"
        );
        let old = Config::from_toml(base, &|_| None).expect("local");
        let new = Config::from_toml(&s3, &|_| None).expect("s3");
        assert_eq!(restart_only_changes(&old, &new), vec!["archive"]);
        assert!(restart_only_changes(&new, &new.clone()).is_empty());
    }

    #[test]
    fn a_new_webhook_password_or_subscription_applies_in_place_but_a_new_address_does_not() {
        let base = "[cloud.auth]\napp_id = \"id\"\napp_key = \"k\"\n[webhook]\nenabled = true\n";
        let old = Config::from_toml(&format!("{base}app_key = \"old\"\n"), &|_| None).expect("old");
        let rotated = format!("{base}app_key = \"new\"\napp_id = \"sub\"\n");
        let new = Config::from_toml(&rotated, &|_| None).expect("new");
        assert!(restart_only_changes(&old, &new).is_empty());
        let moved = format!("{base}app_key = \"old\"\nlisten = \"127.0.0.1:9199\"\n");
        let moved = Config::from_toml(&moved, &|_| None).expect("moved");
        assert_eq!(restart_only_changes(&old, &moved), vec!["webhook"]);
    }
}
