//! Signals as values: SIGINT and SIGTERM cancel a token (a second one exits
//! at once), SIGHUP sends a reload request. Nothing else in the crate
//! installs signal handlers.

use tokio::sync::mpsc;
use tokio_util::sync::CancellationToken;

use crate::commands::exit;

/// The daemon's signals: SIGINT/SIGTERM cancel the token, SIGHUP sends a
/// reload request.
pub fn daemon_signals() -> (CancellationToken, mpsc::UnboundedReceiver<()>) {
    let (tx, rx) = mpsc::unbounded_channel();
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

/// A token cancelled on SIGINT or SIGTERM; a second signal exits at once.
pub fn shutdown_signal() -> CancellationToken {
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
