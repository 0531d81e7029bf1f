//! Logging: `RUST_LOG`-style filters, human-readable text on a terminal
//! (colour only there) or one JSON object per line for journald and
//! containers. Everything goes to standard error; standard output is kept
//! for command results (`status --json`).

use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;
use crate::progress::LogWriter;

/// Installs the global subscriber. `RUST_LOG` wins over `level`. Calling
/// it twice is harmless (the second call changes nothing).
pub fn init(format: LogFormat, level: &str) {
    let filter = EnvFilter::try_from_default_env()
        .or_else(|_| EnvFilter::try_new(level))
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
