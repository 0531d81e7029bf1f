//! The `meeting-archiver` binary: parses the command line, loads the config,
//! starts logging and calls into the library. Exit statuses follow
//! interface.md: 0 success, 1 failures, 2 config or usage errors.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use meeting_archiver::commands::{self, DemoOptions, exit};
use meeting_archiver::config::{Config, LogFormat};
use meeting_archiver::daemon::signals;
use meeting_archiver::telemetry::{self, error_chain};

/// Keeps Huawei Cloud Meeting recordings in a verified local archive.
#[derive(Parser)]
#[command(version, about)]
struct Cli {
    /// The config file.
    #[arg(
        long,
        global = true,
        env = "MEETING_ARCHIVER_CONFIG",
        default_value = "/etc/meeting-archiver/config.toml"
    )]
    config: PathBuf,
    /// Log format (overrides `log.format`).
    #[arg(long, global = true, value_enum)]
    log_format: Option<CliLogFormat>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Clone, Copy, ValueEnum)]
enum CliLogFormat {
    Text,
    Json,
}

#[derive(Subcommand)]
enum Command {
    /// The daemon: poll on the schedule, download, serve /healthz and /metrics.
    Run,
    /// Ask the running daemon's /healthz (exit 0 healthy, 1 not).
    Healthcheck,
    /// One poll, then download until everything is archived or failed for good.
    Sync,
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

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(rt) => rt,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::from(exit::FAILED);
        }
    };
    let code = runtime.block_on(dispatch(cli));
    ExitCode::from(code)
}

async fn dispatch(cli: Cli) -> u8 {
    let format = cli.log_format.map(|f| match f {
        CliLogFormat::Text => LogFormat::Text,
        CliLogFormat::Json => LogFormat::Json,
    });
    if let Command::Demo { dir } = &cli.command {
        telemetry::init(format.unwrap_or(LogFormat::Text), "info");
        let options = DemoOptions {
            dir: dir.clone(),
            workers: 4,
        };
        return report(commands::demo(options, signals::shutdown_signal()).await);
    }
    if let Command::Simulator { dir, write_config } = &cli.command {
        telemetry::init(format.unwrap_or(LogFormat::Text), "warn");
        let options = DemoOptions {
            dir: dir.clone(),
            workers: 4,
        };
        let out = write_config.clone();
        return report(commands::simulator(options, out, signals::shutdown_signal()).await);
    }
    // Commands that never talk to the cloud work without the secret (it may
    // be a systemd credential that exists only while the service runs).
    let local = matches!(
        cli.command,
        Command::Status { .. } | Command::Verify { .. } | Command::Retry | Command::Healthcheck
    );
    let loaded = if local {
        Config::load_local(&cli.config)
    } else {
        Config::load(&cli.config)
    };
    let config = match loaded {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            return exit::CONFIG;
        }
    };
    let quiet = !matches!(cli.command, Command::Sync | Command::Run);
    let level = if quiet {
        "warn"
    } else {
        config.log.level.as_str()
    };
    telemetry::init(format.unwrap_or(config.log.format), level);
    for warning in config.warnings() {
        tracing::warn!("{warning}");
    }
    let result = match cli.command {
        Command::Run => {
            let (shutdown, reloads) = signals::daemon_signals();
            meeting_archiver::daemon::run(cli.config.clone(), config, shutdown, reloads)
                .await
                .map(|()| exit::OK)
        }
        Command::Healthcheck => commands::healthcheck(&config).await,
        Command::Sync => commands::sync(&config, signals::shutdown_signal())
            .await
            .map(|outcome| {
                commands::print_sync(&outcome);
                outcome.exit_code()
            }),
        Command::Status { json } => commands::status(&config, json).await,
        Command::CheckConfig => match commands::check_config(&config) {
            Ok(code) => Ok(code),
            Err(e) => {
                eprintln!("error: {}", error_chain(&*e));
                Ok(exit::CONFIG)
            }
        },
        Command::Verify { repair } => commands::verify(&config, repair).await,
        Command::Retry => commands::retry(&config).await,
        Command::Demo { .. } | Command::Simulator { .. } => Ok(exit::OK),
    };
    report(result)
}

/// The exit status of a command; its error, with each cause once, on
/// standard error.
fn report(result: anyhow::Result<u8>) -> u8 {
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {}", error_chain(&*e));
            exit::FAILED
        }
    }
}
