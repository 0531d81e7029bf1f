//! The `meeting-archiver` binary: parses the command line, loads the config,
//! starts logging and calls into the library. Exit statuses: 0 success,
//! 1 failures, 2 config or usage errors (see the README's command table).

use std::process::ExitCode;

use clap::Parser;
use meeting_archiver::commands::cli::{Cli, Command};
use meeting_archiver::commands::{self, DemoOptions, exit};
use meeting_archiver::config::{Config, ConfigError, LogFormat};
use meeting_archiver::daemon::{self, signals};
use meeting_archiver::telemetry::{self, error_chain};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let code = match tokio::runtime::Runtime::new() {
        Ok(runtime) => runtime.block_on(dispatch(cli)),
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            exit::FAILED
        }
    };
    ExitCode::from(code)
}

async fn dispatch(cli: Cli) -> u8 {
    let format = cli.log_format;
    let path = cli.config_path().to_path_buf();
    let (config, level) = match &cli.command {
        Command::Demo { dir } => {
            telemetry::init(format.unwrap_or(LogFormat::Text), "info");
            let demo = commands::demo(DemoOptions::new(dir), signals::shutdown_signal());
            return report(demo.await);
        }
        Command::Simulator {
            dir,
            write_config,
            webhook,
        } => {
            telemetry::init(format.unwrap_or(LogFormat::Text), "warn");
            let (options, out) = (DemoOptions::new(dir), write_config.clone());
            let cancel = signals::shutdown_signal();
            return report(commands::simulator(options, out, webhook.clone(), cancel).await);
        }
        // Commands that never talk to the cloud work without the secret (it
        // may be a systemd credential that exists only while the service runs).
        Command::Status { .. }
        | Command::Verify { .. }
        | Command::Retry { .. }
        | Command::Healthcheck { .. } => (Config::load_local(&path), Some("warn")),
        // It reports such a credential instead of needing it.
        // Online, the secret must be there: it is used.
        Command::CheckConfig { online: true, .. } => (Config::load(&path), Some("warn")),
        Command::CheckConfig { .. } => (Config::load_for_check(&path), Some("warn")),
        Command::Run { .. } | Command::Sync { .. } => (Config::load(&path), None),
    };
    let config = match config {
        Ok(config) => config,
        Err(e) => {
            eprintln!("error: {}", error_chain(&e));
            return exit::CONFIG;
        }
    };
    let level = level.unwrap_or(config.log.level.as_str());
    telemetry::init(format.unwrap_or(config.log.format), level);
    for warning in config.warnings() {
        tracing::warn!("{warning}");
    }
    report(match cli.command {
        Command::Run { .. } => {
            let (shutdown, reloads) = signals::daemon_signals();
            let run = daemon::run(path, config, shutdown, reloads);
            run.await.map(|()| exit::OK)
        }
        Command::Healthcheck { .. } => commands::healthcheck(&config).await,
        Command::Sync { max_wait, .. } => {
            let options = commands::SyncOptions { max_wait };
            let sync = commands::sync_with_options(&config, options, signals::shutdown_signal());
            sync.await.map(|outcome| {
                commands::print_sync(&outcome);
                outcome.exit_code()
            })
        }
        Command::Status {
            json,
            meetings,
            page,
            per_page,
            ref meeting,
            ..
        } => {
            let options = commands::StatusOptions {
                json,
                all_meetings: meetings,
                page,
                per_page,
                meeting: meeting.clone(),
            };
            commands::status(&config, &options).await
        }
        Command::CheckConfig { online, .. } => match commands::check_config(&config) {
            Ok(exit::OK) if online => commands::preflight(&config).await,
            Ok(code) => Ok(code),
            Err(e) => {
                eprintln!("error: {}", error_chain(&*e));
                Ok(exit::CONFIG)
            }
        },
        Command::Verify {
            repair,
            ledger: true,
            ..
        } => commands::verify_ledger(&config, repair).await,
        Command::Verify { repair, deep, .. } => commands::verify_with(&config, repair, deep).await,
        Command::Retry { .. } => commands::retry(&config).await,
        Command::Demo { .. } | Command::Simulator { .. } => Ok(exit::OK),
    })
}

/// The exit status of a command's result: a config or folder problem (the
/// kind `check-config` reports) is 2 for every command, so that systemd's
/// `RestartPreventExitStatus=2` stops restarting a daemon that cannot start.
fn report(result: anyhow::Result<u8>) -> u8 {
    result.unwrap_or_else(|e| {
        eprintln!("error: {}", error_chain(&*e));
        if e.chain().any(is_setup_problem) {
            exit::CONFIG
        } else {
            exit::FAILED
        }
    })
}

/// Whether an error is one a restart cannot fix: the config, a folder or
/// file it names (the archive, the ledger, `tls.ca_file`).
fn is_setup_problem(cause: &(dyn std::error::Error + 'static)) -> bool {
    use meeting_archiver::archive::{AccessError, ArchiveError};
    use meeting_archiver::download::ClientError;
    use meeting_archiver::ledger::LedgerError;
    cause.is::<ConfigError>()
        || cause.is::<ClientError>()
        || matches!(
            cause.downcast_ref::<AccessError>(),
            Some(AccessError::Refused(_) | AccessError::NoBucket(_))
        )
        || matches!(
            cause.downcast_ref::<ArchiveError>(),
            Some(ArchiveError::Prepare { .. })
        )
        || matches!(
            cause.downcast_ref::<LedgerError>(),
            Some(
                LedgerError::Open { .. } | LedgerError::Create { .. } | LedgerError::Migrate { .. }
            )
        )
}
