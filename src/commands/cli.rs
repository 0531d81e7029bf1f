//! The command line: what `meeting-archiver` accepts. It lives in the
//! library so that tests can parse and render it; `main.rs` only
//! dispatches.
//!
//! `--config` is accepted before the command (`--config X sync`, what
//! scripts and the systemd unit write) and after it (`sync --config X`), but
//! only by the commands that read a config: `demo` and `simulator` do not
//! list it.

use std::path::{Path, PathBuf};

use clap::{Args, Parser, Subcommand};

use crate::config::LogFormat;

/// Where the config is read from when neither `--config` nor
/// `MEETING_ARCHIVER_CONFIG` says.
pub const DEFAULT_CONFIG: &str = "/etc/meeting-archiver/config.toml";

/// Keeps Huawei Cloud Meeting recordings in a verified local archive.
#[derive(Parser)]
#[command(name = "meeting-archiver", version, about)]
pub struct Cli {
    /// The config file (also accepted after the command).
    #[arg(long, value_name = "PATH", env = "MEETING_ARCHIVER_CONFIG")]
    #[arg(default_value = DEFAULT_CONFIG)]
    pub config: PathBuf,
    /// Log format (overrides `log.format`).
    #[arg(long, global = true, value_enum)]
    pub log_format: Option<LogFormat>,
    #[command(subcommand)]
    pub command: Command,
}

impl Cli {
    /// The config file: `--config` after the command, else before it, else
    /// `MEETING_ARCHIVER_CONFIG`, else [`DEFAULT_CONFIG`].
    pub fn config_path(&self) -> &Path {
        self.command
            .config_flag()
            .and_then(|flag| flag.config.as_deref())
            .unwrap_or(&self.config)
    }
}

/// `--config` after a command that reads a config.
#[derive(Args, Clone, Debug, Default)]
pub struct ConfigFlag {
    /// The config file [default: $MEETING_ARCHIVER_CONFIG, else
    /// /etc/meeting-archiver/config.toml].
    #[arg(long, value_name = "PATH")]
    pub config: Option<PathBuf>,
}

const EXIT_RUN: &str = "Exit status:
  0  stopped cleanly (SIGTERM, SIGINT)
  1  could not start or failed (ledger in use, port taken)
  2  config error (systemd does not restart it: RestartPreventExitStatus=2)";
const EXIT_HEALTHCHECK: &str = "Exit status:
  0  the daemon answers /healthz with 200
  1  it does not (unhealthy, not running, server.listen off)
  2  config error";
const EXIT_SYNC: &str = "Exit status:
  0  nothing left undone: every known file is archived
  1  work left undone by this run: a meeting could not be listed, a file failed
     for good or is still pending, the ledger failed, or it was interrupted
  2  config error";
const EXIT_STATUS: &str = "Exit status:
  0  the summary (or the meeting asked for) was printed
  1  the ledger could not be read, or it knows no meeting MEETING_UUID
  2  config error, or no ledger at ledger.path (nothing archived with this config)";
const EXIT_CHECK_CONFIG: &str = "Exit status:
  0  valid (warnings may be printed); nothing was created or changed;
     with --online, every online step passed too
  1  with --online: a step failed (each says why and what to change)
  2  invalid: a key, a folder that cannot be created or written, a ledger that
     does not open, tls.ca_file, or a schedule that never fires";
const EXIT_VERIFY: &str = "Exit status:
  0  every archived file matches the ledger (--ledger: every counter
     agrees with the rows, or --repair rebuilt them)
  1  a file is missing or differs, a counter disagrees (--ledger), or the
     ledger could not be read
  2  config error, or no ledger at ledger.path (nothing to verify)";
const EXIT_RETRY: &str = "Exit status:
  0  failed files were queued again (or there were none)
  1  the ledger could not be written
  2  config error";
const EXIT_DEMO: &str = "Exit status:
  0  the demo archived and verified every file
  1  it did not (see the error)";
const EXIT_SIMULATOR: &str = "Exit status:
  0  stopped with Ctrl-C
  1  it could not start (an address in use, 127.0.0.2 missing)";

/// The commands.
#[derive(Subcommand)]
pub enum Command {
    /// The daemon: poll on the schedule, download, serve /healthz and /metrics.
    #[command(after_help = EXIT_RUN)]
    Run {
        #[command(flatten)]
        config: ConfigFlag,
    },
    /// Ask the running daemon's /healthz (exit 0 healthy, 1 not).
    #[command(after_help = EXIT_HEALTHCHECK)]
    Healthcheck {
        #[command(flatten)]
        config: ConfigFlag,
    },
    /// One poll, then download until everything is archived or failed for good.
    #[command(after_help = EXIT_SYNC)]
    Sync {
        /// Wait out backoffs ending within this long of the run's last
        /// progress (a file archived or bytes received); files due later
        /// stay pending for the next run (and the exit status is 1).
        #[arg(long, default_value = "1m", value_parser = humantime::parse_duration)]
        max_wait: std::time::Duration,
        #[command(flatten)]
        config: ConfigFlag,
    },
    /// The ledger's summary: meetings, files per state, bytes, last errors.
    /// Reads the ledger only; never creates one.
    #[command(after_help = EXIT_STATUS)]
    Status {
        /// Print one JSON document.
        #[arg(long)]
        json: bool,
        /// List every meeting, a page at a time (by default only those
        /// needing attention are listed).
        #[arg(long)]
        meetings: bool,
        /// The page of `--meetings` to show, from 1.
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..))]
        page: u32,
        /// Meetings per page of `--meetings`.
        #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100_000))]
        per_page: u32,
        /// Show this one meeting (its conference UUID) with its files and last errors.
        #[arg(value_name = "MEETING_UUID")]
        meeting: Option<String>,
        #[command(flatten)]
        config: ConfigFlag,
    },
    /// Load and validate the config and check its folders, ledger, CA file
    /// and schedule without creating or changing anything; print what was
    /// understood (secrets masked) and the next poll times.
    #[command(after_help = EXIT_CHECK_CONFIG)]
    CheckConfig {
        #[command(flatten)]
        config: ConfigFlag,
        /// Also check it against the cloud: authenticate, list one page of
        /// recordings and one meeting's download URLs, and reach each
        /// download host (no download token is spent).
        #[arg(long)]
        online: bool,
    },
    /// Re-read every archived file and check size and SHA-256 against the
    /// ledger (in a bucket: each object's size and recorded SHA-256, by HEAD).
    #[command(after_help = EXIT_VERIFY)]
    Verify {
        /// Queue missing or corrupt files for download again (writes the
        /// ledger); with --ledger, rebuild the ledger's counters from its rows.
        #[arg(long)]
        repair: bool,
        /// In a bucket: read every object back and hash it, rather than
        /// trusting the size and SHA-256 the store reports (no effect on a
        /// local folder, whose files are always re-read).
        #[arg(long)]
        deep: bool,
        /// Check the ledger itself instead of the archived files: recompute
        /// its counters (files per state, bytes, meetings per state) from
        /// its rows and compare.
        #[arg(long)]
        ledger: bool,
        #[command(flatten)]
        config: ConfigFlag,
    },
    /// Put failed files back in the queue.
    #[command(after_help = EXIT_RETRY)]
    Retry {
        #[command(flatten)]
        config: ConfigFlag,
    },
    /// Run the whole pipeline against the built-in simulator, no credentials needed.
    #[command(after_help = EXIT_DEMO)]
    Demo {
        /// Folder for the demo's archive and ledger.
        #[arg(long, default_value = "meeting-archiver-demo")]
        dir: PathBuf,
    },
    /// Serve the demo's simulated cloud and write a config for it, to try
    /// `run`, `sync` and the rest without credentials.
    #[command(after_help = EXIT_SIMULATOR)]
    Simulator {
        /// Folder the written config puts the archive and ledger in.
        #[arg(long, default_value = "meeting-archiver-demo")]
        dir: PathBuf,
        /// Where to write the config (default: standard output).
        #[arg(long)]
        write_config: Option<PathBuf>,
        #[command(flatten)]
        webhook: SimulatorWebhook,
    },
}

/// `simulator --webhook`: the simulated cloud's event push.
#[derive(Args, Clone, Debug, Default)]
pub struct SimulatorWebhook {
    /// Push a signed record.finish to this URL each time a simulated
    /// recording becomes ready (a new one every --webhook-every); the
    /// written config turns [webhook] on to match.
    #[arg(long, value_name = "URL")]
    pub webhook: Option<url::Url>,
    /// How often a new simulated recording becomes ready.
    #[arg(long, default_value = "30s", value_parser = humantime::parse_duration, requires = "webhook")]
    pub webhook_every: std::time::Duration,
    /// Send each event twice, with two nonces (a duplicate delivery).
    #[arg(long, requires = "webhook")]
    pub webhook_twice: bool,
    /// Date each event this long ago (a late delivery; over 5m it is stale).
    #[arg(long, value_parser = humantime::parse_duration, requires = "webhook")]
    pub webhook_late: Option<std::time::Duration>,
    /// Spoil each event's signature.
    #[arg(long, requires = "webhook")]
    pub webhook_bad_signature: bool,
    /// Post each request a second time, same nonce (a replay).
    #[arg(long, requires = "webhook")]
    pub webhook_replay: bool,
}

impl Command {
    /// The `--config` given after this command, if it takes one.
    fn config_flag(&self) -> Option<&ConfigFlag> {
        match self {
            Command::Run { config }
            | Command::Healthcheck { config }
            | Command::Sync { config, .. }
            | Command::Status { config, .. }
            | Command::CheckConfig { config, .. }
            | Command::Verify { config, .. }
            | Command::Retry { config } => Some(config),
            Command::Demo { .. } | Command::Simulator { .. } => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use clap::CommandFactory;

    use super::*;

    fn parse(args: &[&str]) -> Cli {
        Cli::try_parse_from(args).expect("parses")
    }

    #[test]
    fn config_goes_before_or_after_the_command() {
        let before = parse(&["m", "--config", "/a.toml", "sync"]);
        assert_eq!(before.config_path(), Path::new("/a.toml"));
        let after = parse(&["m", "status", "--config", "/b.toml", "--json"]);
        assert_eq!(after.config_path(), Path::new("/b.toml"));
        let both = parse(&["m", "--config", "/a.toml", "verify", "--config", "/b.toml"]);
        assert_eq!(both.config_path(), Path::new("/b.toml"), "the later wins");
        assert!(Cli::try_parse_from(["m", "demo", "--config", "/a.toml"]).is_err());
    }

    #[test]
    fn the_simulator_takes_a_webhook_and_its_knobs_only_with_it() {
        let cli = parse(&[
            "m",
            "simulator",
            "--webhook",
            "http://127.0.0.1:9188/events/huawei",
            "--webhook-twice",
            "--webhook-late",
            "10m",
        ]);
        let Command::Simulator { webhook, .. } = cli.command else {
            panic!("simulator")
        };
        assert!(webhook.webhook_twice && !webhook.webhook_replay);
        assert_eq!(
            webhook.webhook_late,
            Some(std::time::Duration::from_secs(600))
        );
        assert!(Cli::try_parse_from(["m", "simulator", "--webhook-twice"]).is_err());
    }

    #[test]
    fn every_command_lists_its_exit_statuses_and_only_config_readers_take_config() {
        let mut cli = Cli::command();
        cli.build();
        for sub in cli.get_subcommands().filter(|s| s.get_name() != "help") {
            let name = sub.get_name();
            let after = sub
                .get_after_help()
                .map(|h| h.to_string())
                .unwrap_or_default();
            assert!(after.starts_with("Exit status:\n  0  "), "{name}: {after}");
            let takes_config = sub.get_arguments().any(|a| a.get_long() == Some("config"));
            let reads_config = !matches!(name, "demo" | "simulator");
            assert_eq!(takes_config, reads_config, "{name}");
        }
    }
}
