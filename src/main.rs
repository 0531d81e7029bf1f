//! The `meeting-archiver` binary: parses the command line, loads the config,
//! starts logging and calls into the library. Exit statuses follow
//! interface.md: 0 success, 1 failures, 2 config or usage errors.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand, ValueEnum};
use meeting_archiver::commands::{self, DemoOptions, exit};
use meeting_archiver::config::{Config, LogFormat};
use meeting_archiver::telemetry;
use tokio_util::sync::CancellationToken;

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
        return report(commands::demo(options, shutdown_signal()).await);
    }
    if let Command::Simulator { dir, write_config } = &cli.command {
        telemetry::init(format.unwrap_or(LogFormat::Text), "warn");
        let options = DemoOptions {
            dir: dir.clone(),
            workers: 4,
        };
        let out = write_config.clone();
        return report(commands::simulator(options, out, shutdown_signal()).await);
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
            eprintln!("error: {e}");
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
            let (shutdown, reloads) = daemon_signals();
            meeting_archiver::daemon::run(cli.config.clone(), config, shutdown, reloads)
                .await
                .map(|()| exit::OK)
        }
        Command::Healthcheck => commands::healthcheck(&config).await,
        Command::Sync => commands::sync(&config, shutdown_signal())
            .await
            .map(|outcome| {
                print_sync(&outcome);
                outcome.exit_code()
            }),
        Command::Status { json } => commands::status(&config, json).await,
        Command::CheckConfig => match commands::check_config(&config) {
            Ok(code) => Ok(code),
            Err(e) => {
                eprintln!("error: {e:#}");
                Ok(exit::CONFIG)
            }
        },
        Command::Verify { repair } => commands::verify(&config, repair).await,
        Command::Retry => commands::retry(&config).await,
        Command::Demo { .. } | Command::Simulator { .. } => Ok(exit::OK),
    };
    report(result)
}

fn report(result: anyhow::Result<u8>) -> u8 {
    match result {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            exit::FAILED
        }
    }
}

fn print_sync(outcome: &commands::SyncOutcome) {
    let f = &outcome.status.files;
    println!(
        "sync: {} archived, {} failed, {} pending; {} bytes in the archive",
        f.done, f.failed, f.pending, outcome.status.bytes_archived
    );
    for meeting in &outcome.not_ready {
        println!("sync: meeting {meeting} has no recording files yet");
    }
    for (meeting, error) in &outcome.poll_errors {
        println!("sync: could not list meeting {meeting}: {error}");
    }
    for e in outcome
        .status
        .last_errors
        .iter()
        .filter(|e| e.state == "failed")
    {
        println!("sync: FAILED {}: {}", e.rel_path, e.error);
    }
    if outcome.interrupted {
        println!("sync: interrupted; run it again to resume");
    }
}

/// The daemon's signals: SIGINT/SIGTERM cancel the token, SIGHUP sends a
/// reload request.
fn daemon_signals() -> (CancellationToken, tokio::sync::mpsc::UnboundedReceiver<()>) {
    let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::hangup()) {
            Ok(mut hup) => {
                tokio::spawn(async move {
                    while hup.recv().await.is_some() {
                        tracing::info!("SIGHUP: reloading the config");
                        if tx.send(()).is_err() {
                            break;
                        }
                    }
                });
            }
            Err(e) => tracing::warn!(error = %e, "cannot listen for SIGHUP; reloads are off"),
        }
    }
    #[cfg(not(unix))]
    drop(tx);
    (shutdown_signal(), rx)
}

/// A token cancelled on SIGINT or SIGTERM.
fn shutdown_signal() -> CancellationToken {
    let token = CancellationToken::new();
    let cancel = token.clone();
    tokio::spawn(async move {
        wait_for_signal().await;
        tracing::warn!(
            "shutdown requested; stopping at the next safe point (again to stop at once)"
        );
        cancel.cancel();
        wait_for_signal().await;
        // The user insists. The ledger is transactional and partial data
        // never lies under a final name, so stopping here loses nothing.
        eprintln!("second stop request: exiting now");
        std::process::exit(i32::from(exit::FAILED));
    });
    token
}

#[cfg(unix)]
async fn wait_for_signal() {
    use tokio::signal::unix::{SignalKind, signal};
    match signal(SignalKind::terminate()) {
        Ok(mut term) => {
            tokio::select! {
                _ = tokio::signal::ctrl_c() => {}
                _ = term.recv() => {}
            }
        }
        Err(_) => {
            let _ = tokio::signal::ctrl_c().await;
        }
    }
}

#[cfg(not(unix))]
async fn wait_for_signal() {
    let _ = tokio::signal::ctrl_c().await;
}
