//! Serving a router with bounds no client can stretch: the request head
//! must arrive within [`ConnLimits::header_read`] (hyper starts that timer
//! whenever it waits for a request, so a silent new connection and an idle
//! keep-alive one are closed after the same time), and at most
//! [`ConnLimits::max_connections`] are open at once; one more is closed as
//! soon as it is accepted, so unauthenticated clients cannot take the file
//! descriptors the ledger and the downloads share.

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use hyper_util::rt::{TokioIo, TokioTimer};
use hyper_util::service::TowerToHyperService;
use tokio::net::TcpListener;
use tokio::sync::Semaphore;
use tokio::task::JoinSet;
use tokio_util::sync::CancellationToken;

/// How long a failed `accept` (descriptors exhausted) pauses the loop.
const ACCEPT_PAUSE: Duration = Duration::from_millis(100);

/// The bounds of one listener.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConnLimits {
    /// The longest wait for a request's head (line and headers), and so
    /// the longest a connection may sit idle between requests.
    pub header_read: Duration,
    /// Connections open at once; more are closed at accept.
    pub max_connections: usize,
}

impl ConnLimits {
    /// What the daemon's listeners use: the cloud's push and a Prometheus
    /// scraper send their heads at once and need a handful of connections.
    pub const DEFAULT: ConnLimits = ConnLimits {
        header_read: Duration::from_secs(10),
        max_connections: 64,
    };
}

impl Default for ConnLimits {
    fn default() -> Self {
        ConnLimits::DEFAULT
    }
}

/// Serves `app` within `limits` until `shutdown` fires, then lets open
/// requests finish for at most `grace`: a client that never completes its
/// request cannot hold the daemon's stop past systemd's patience.
pub async fn serve_router(
    listener: TcpListener,
    app: Router,
    limits: ConnLimits,
    shutdown: CancellationToken,
    grace: Duration,
) -> std::io::Result<()> {
    let permits = Arc::new(Semaphore::new(limits.max_connections));
    let mut http = hyper::server::conn::http1::Builder::new();
    http.timer(TokioTimer::new())
        .header_read_timeout(limits.header_read);
    let mut connections = JoinSet::new();
    loop {
        let (stream, peer) = tokio::select! {
            () = shutdown.cancelled() => break,
            Some(_) = connections.join_next() => continue,
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "cannot accept an HTTP connection");
                    tokio::time::sleep(ACCEPT_PAUSE).await;
                    continue;
                }
            },
        };
        let Ok(permit) = Arc::clone(&permits).try_acquire_owned() else {
            tracing::debug!(%peer, limit = limits.max_connections, "too many open connections; closing a new one");
            continue;
        };
        let service = TowerToHyperService::new(app.clone());
        let connection = http.serve_connection(TokioIo::new(stream), service);
        let stop = shutdown.clone();
        connections.spawn(async move {
            let _permit = permit;
            tokio::pin!(connection);
            let result = tokio::select! {
                result = connection.as_mut() => result,
                () = stop.cancelled() => {
                    connection.as_mut().graceful_shutdown();
                    connection.await
                }
            };
            if let Err(e) = result {
                tracing::debug!(%peer, error = %e, "an HTTP connection ended with an error");
            }
        });
    }
    drop(listener);
    let drained = async { while connections.join_next().await.is_some() {} };
    if tokio::time::timeout(grace, drained).await.is_err() {
        tracing::warn!(
            ?grace,
            "open HTTP requests did not finish in time; closing them"
        );
        connections.abort_all();
    }
    Ok(())
}
