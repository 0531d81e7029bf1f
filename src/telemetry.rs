//! Logging: `RUST_LOG`-style filters, human-readable text on a terminal
//! (colour only there) or one JSON object per line for journald and
//! containers. Everything goes to standard error; standard output is kept
//! for command results (`status --json`). [`error_chain`] is how every
//! error reaches a log line or the terminal: with each cause, once.

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::commands::progress::LogWriter;
use crate::config::LogFormat;

/// Crates whose info lines say nothing an operator needs.
const CHATTY: [&str; 2] = ["tokio_cron_scheduler", "rusqlite_migration"];
/// Crates whose errors we classify and log ourselves, once, with the fix
/// (rustls logs every refused certificate at error level).
const RECLASSIFIED: [&str; 1] = ["rustls"];

/// A plain level (`info`) keeps chatty dependencies at `warn`; a filter
/// that names targets is taken as written.
fn with_quiet_dependencies(level: &str) -> String {
    if level.contains('=') || level.contains(',') {
        return level.to_owned();
    }
    let mut filter = level.to_owned();
    for target in CHATTY {
        filter.push_str(&format!(",{target}=warn"));
    }
    for target in RECLASSIFIED {
        filter.push_str(&format!(",{target}=off"));
    }
    filter
}

/// Installs the global subscriber. `RUST_LOG` wins over `level`. Calling
/// it twice is harmless (the second call changes nothing).
pub fn init(format: LogFormat, level: &str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(with_quiet_dependencies(level)))
        .unwrap_or_else(|_| EnvFilter::new("info"));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(LogWriter);
    let result = match format {
        LogFormat::Json => builder.json().with_current_span(true).try_init(),
        LogFormat::Text => builder
            .with_ansi(std::io::stderr().is_terminal())
            .try_init(),
    };
    // Already installed (tests, or demo after a failed start): keep it.
    let _ = result;
}

/// An error and its causes on one line, `outer: cause: root cause`.
///
/// Our error types keep a cause out of their own message and return it
/// from `source()` only (and wrap dependencies that print theirs, such as
/// rusqlite), so walking the chain names each cause exactly once. Use it
/// wherever an error is logged or printed: `%e` alone would drop the causes.
pub fn error_chain(err: &dyn std::error::Error) -> String {
    let mut out = err.to_string();
    let mut source = err.source();
    while let Some(cause) = source {
        out.push_str(": ");
        out.push_str(&cause.to_string());
        source = cause.source();
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn plain_levels_quiet_chatty_dependencies_and_explicit_filters_stay() {
        let quiet = with_quiet_dependencies("info");
        assert!(quiet.starts_with("info,") && quiet.contains("tokio_cron_scheduler=warn"));
        assert!(quiet.contains("rustls=off"), "{quiet}");
        assert_eq!(
            with_quiet_dependencies("meeting_archiver=debug"),
            "meeting_archiver=debug"
        );
        assert!(EnvFilter::try_new(quiet).is_ok());
    }
}
