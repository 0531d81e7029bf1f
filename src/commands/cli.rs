//! The command line: what `meeting-archiver` accepts. It lives in the
//! library so that tests can parse and render it; `main.rs` only
//! dispatches.

use std::path::PathBuf;

use clap::{Parser, Subcommand};

use crate::config::LogFormat;

/// Keeps Huawei Cloud Meeting recordings in a verified local archive.
#[derive(Parser)]
#[command(name = "meeting-archiver", version, about)]
pub struct Cli {
    /// The config file.
    #[arg(long, global = true, env = "MEETING_ARCHIVER_CONFIG")]
    #[arg(default_value = "/etc/meeting-archiver/config.toml")]
    pub config: PathBuf,
    /// Log format (overrides `log.format`).
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Subcommand)]
pub enum Command {
    /// The daemon: poll on the schedule, download, serve /healthz and /metrics.
    Run,
    /// Ask the running daemon's /healthz (exit 0 healthy, 1 not).
    Healthcheck,
    /// One poll, then download until everything is archived or failed for good.
    Sync {
        /// Wait out backoffs ending within this long of the run's last
        /// progress (a file archived or bytes received); files due later
        /// stay pending for the next run (and the exit status is 1).
        #[arg(long, default_value = "1m", value_parser = humantime::parse_duration)]
        max_wait: std::time::Duration,
    },
    /// The ledger's summary: meetings, files per state, bytes, last errors.
    Status {
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
    },
    /// Load and validate the config; print what was understood (secrets masked).
    CheckConfig,
    /// Re-read every archived file and check size and SHA-256 against the ledger.
    Verify {
        /// Queue missing or corrupt files for download again.
        #[arg(long)]
        repair: bool,
    },
    /// Put failed files back in the queue.
    Retry,
    /// Run the whole pipeline against the built-in simulator, no credentials needed.
    Demo {
        /// Folder for the demo's archive and ledger.
        #[arg(long, default_value = "meeting-archiver-demo")]
        dir: PathBuf,
    },
    /// Serve the demo's simulated cloud and write a config for it, to try
    /// `run`, `sync` and the rest without credentials.
    Simulator {
        /// Folder the written config puts the archive and ledger in.
        #[arg(long, default_value = "meeting-archiver-demo")]
        dir: PathBuf,
        /// Where to write the config (default: standard output).
        #[arg(long)]
        write_config: Option<PathBuf>,
    },
}
