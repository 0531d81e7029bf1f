//! `check-config` output: what the archiver understood, one key per line,
//! with secrets replaced by where they came from.

use std::fmt::Write as _;
use std::time::Duration;

use super::{Auth, Config, LogFormat};

impl Config {
    /// A human-readable, multi-line description of this config; secrets are
    /// shown as `******` and their source, never their value.
    pub fn summary(&self) -> String {
        let mut out = self.settings();
        let warnings = self.warnings();
        if !warnings.is_empty() {
            out.push_str("\nwarnings:\n");
            for warning in warnings {
                let _ = writeln!(out, "  - {warning}");
            }
        }
        out
    }

    /// [`Config::summary`] without the warnings: every setting, one per line.
    pub fn settings(&self) -> String {
        let mut out = String::new();
        self.write_cloud(&mut out);
        self.write_rest(&mut out);
        out
    }

    fn write_cloud(&self, out: &mut String) {
        let c = &self.cloud;
        let source = &c.auth_source;
        let _ = writeln!(out, "[cloud]");
        line(out, "api_base", c.api_base.as_str());
        match &c.auth {
            Auth::AppId {
                app_id,
                user_id,
                corp_id,
                ..
            } => {
                line(out, "auth", "App ID + App Key");
                line(out, "auth.app_id", app_id);
                line(out, "auth.app_key", &format!("****** {source}"));
                line(out, "auth.user_id", user_id.as_deref().unwrap_or("(none)"));
                line(out, "auth.corp_id", corp_id.as_deref().unwrap_or("(none)"));
            }
            Auth::AccessToken(_) => {
                line(out, "auth", "access token");
                line(out, "auth.access_token", &format!("****** {source}"));
            }
        }
        line(out, "request_timeout", &dur(c.request_timeout));
        line(out, "max_retries", &c.max_retries.to_string());
        line(out, "give_up_after", &dur(c.give_up_after));
        line(out, "retry_base", &dur(c.retry_base));
        line(out, "retry_max", &dur(c.retry_max));
        let cap = match c.max_requests_per_minute {
            0 => "no cap".to_string(),
            n => format!("{n} (one every {:.1}s)", 60.0 / f64::from(n)),
        };
        line(out, "max_requests_per_minute", &cap);
    }

    fn write_rest(&self, out: &mut String) {
        let p = &self.poll;
        let _ = writeln!(out, "\n[poll]");
        line(out, "schedule", &p.schedule);
        line(out, "meetings", &list(&p.meetings));
        let discover = match p.discover_days {
            0 => "off".to_string(),
            n => format!("recordings of the last {n} day(s)"),
        };
        line(out, "discover_days", &discover);
        line(out, "recheck_for", &dur(p.recheck_for));
        line(out, "give_up_after", &dur(p.give_up_after));
        line(out, "concurrency", &p.concurrency.to_string());
        self.write_download(out);
        self.write_archive(out);
        self.write_other(out);
    }

    fn write_download(&self, out: &mut String) {
        let d = &self.download;
        let _ = writeln!(out, "\n[download]");
        line(out, "dir", &d.dir.display().to_string());
        line(out, "workers", &d.workers.to_string());
        let types = if d.file_types.is_empty() {
            "all".to_string()
        } else {
            list(&d.file_types)
        };
        line(out, "file_types", &types);
        line(out, "max_attempts", &d.max_attempts.to_string());
        line(out, "token_max_age", &dur(d.token_max_age));
        line(out, "connect_timeout", &dur(d.connect_timeout));
        line(out, "read_timeout", &dur(d.read_timeout));
        line(out, "retry_base", &dur(d.retry_base));
        line(out, "retry_max", &dur(d.retry_max));
        line(out, "shutdown_timeout", &dur(d.shutdown_timeout));
        line(out, "checkpoint_interval", &dur(d.checkpoint_interval));
        line(
            out,
            "min_free_space",
            &format!("{} bytes", d.min_free_space),
        );
        let layout = d.layout.as_ref().map_or_else(
            || "unset (the archive's own; a new archive: the default)".to_owned(),
            |l| format!("{:?}", l.template()),
        );
        line(out, "layout", &layout);
        line(out, "timezone", &d.timezone.to_string());
    }

    fn write_archive(&self, out: &mut String) {
        let _ = writeln!(out, "\n[archive]");
        let Some(s3) = self.archive.s3() else {
            line(out, "target", "local (files stay in download.dir)");
            return;
        };
        line(
            out,
            "target",
            "s3 (download.dir keeps partial downloads only)",
        );
        line(out, "s3.bucket", &s3.bucket);
        line(
            out,
            "s3.prefix",
            if s3.prefix.is_empty() {
                "(none)"
            } else {
                &s3.prefix
            },
        );
        let endpoint = s3.endpoint.as_ref().map(url::Url::as_str);
        line(
            out,
            "s3.endpoint",
            endpoint.unwrap_or("(AWS, from the region)"),
        );
        line(out, "s3.region", &s3.region);
        line(out, "s3.access_key_id", &s3.access_key_id);
        line(
            out,
            "s3.secret_access_key",
            &format!("****** {}", s3.secret_source),
        );
        line(out, "s3.path_style", &s3.path_style.to_string());
    }

    fn write_other(&self, out: &mut String) {
        let r = &self.retention;
        let _ = writeln!(out, "\n[retention]");
        line(out, "delete_from_cloud", &r.delete_from_cloud.to_string());
        line(out, "delete_after", &dur(r.delete_after));
        line(
            out,
            "max_deletes_per_poll",
            &r.max_deletes_per_poll.to_string(),
        );
        line(out, "dry_run", &r.dry_run.to_string());
        let _ = writeln!(out, "\n[ledger]");
        line(out, "path", &self.ledger.path.display().to_string());
        line(out, "retry_for", &dur(self.ledger.retry_for));
        let _ = writeln!(out, "\n[tls]");
        let ca = self.tls.ca_file.as_ref().map(|p| p.display().to_string());
        line(
            out,
            "ca_file",
            ca.as_deref().unwrap_or("(none: system roots only)"),
        );
        line(
            out,
            "insecure_download_hosts",
            &list(&self.tls.insecure_download_hosts),
        );
        let _ = writeln!(out, "\n[server]");
        let listen = self.server.listen.map(|a| a.to_string());
        line(out, "listen", listen.as_deref().unwrap_or("(off)"));
        self.write_webhook(out);
        let _ = writeln!(out, "\n[log]");
        let format = match self.log.format {
            LogFormat::Text => "text",
            LogFormat::Json => "json",
        };
        line(out, "format", format);
        line(out, "level", &self.log.level);
    }
}

impl Config {
    fn write_webhook(&self, out: &mut String) {
        let w = &self.webhook;
        let _ = writeln!(out, "\n[webhook]");
        line(out, "enabled", &w.enabled.to_string());
        line(out, "listen", &w.listen.to_string());
        line(out, "path", &w.path);
        line(out, "accept_unlisted", &w.accept_unlisted.to_string());
        if w.enabled {
            line(out, "app_id", &w.app_id);
            line(out, "app_key", &format!("****** {}", w.key_source));
        }
    }
}

fn line(out: &mut String, key: &str, value: &str) {
    let _ = writeln!(out, "  {key:<24} {value}");
}

fn dur(d: Duration) -> String {
    humantime::format_duration(d).to_string()
}

fn list(items: &[String]) -> String {
    if items.is_empty() {
        "(none)".to_string()
    } else {
        items.join(", ")
    }
}
