//! An in-process, faithful simulator of the Huawei Cloud Meeting recording API:
//! a real HTTP API host (appauth, record/files, downloadurls) on 127.0.0.1 and
//! a download host on 127.0.0.2, strict where the reference is strict, with
//! seeded fault injection and counters, for tests and the `demo` command.
//!
//! Layout: `scenario`/`meeting` (what it holds), `state` (tokens, counters),
//! `gateway` + `auth`/`records`/`downloadurls` (API), `download` + `body` (files),
//! `push` (the enterprise event push: signed `record.finish` events).

mod api;
mod auth;
mod body;
mod clock;
mod download;
mod downloadurls;
mod gateway;
mod meeting;
mod push;
mod records;
mod scenario;
mod state;

#[cfg(test)]
mod tests;

use std::collections::HashMap;
use std::io;
use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::serve::ListenerExt;
use tokio::net::TcpListener;
use tokio::task::JoinHandle;

pub use meeting::{SimFile, SimMeeting};
pub use push::SimWebhook;
pub use scenario::{Faults, Scenario, TokenAnswer, UrlStyle};
pub use state::SimStats;

use state::Shared;

/// How long [`Simulator::shutdown`] lets connections close before aborting.
const SHUTDOWN_GRACE: Duration = Duration::from_secs(2);

/// A running simulator; both servers stop on [`Simulator::shutdown`] or drop.
pub struct Simulator {
    shared: Arc<Shared>,
    api_addr: SocketAddr,
    download_addr: SocketAddr,
    tasks: Vec<JoinHandle<()>>,
    /// Where `record.finish` events go, if anywhere.
    webhook: std::sync::Mutex<Option<SimWebhook>>,
}

impl Simulator {
    /// Starts the API host on 127.0.0.1:0 and the download host on 127.0.0.2:0.
    pub async fn start(scenario: Scenario) -> io::Result<Simulator> {
        let api_listener = TcpListener::bind("127.0.0.1:0").await?;
        let download_listener = TcpListener::bind("127.0.0.2:0").await?;
        let api_addr = api_listener.local_addr()?;
        let download_addr = download_listener.local_addr()?;
        let shared = Arc::new(Shared::new(scenario, format!("http://{download_addr}")));
        let tasks = vec![
            spawn_server(api_listener, api::router(shared.clone()), &shared, "API"),
            spawn_server(
                download_listener,
                download::router(shared.clone()),
                &shared,
                "download",
            ),
        ];
        tracing::debug!(%api_addr, %download_addr, "simulator started");
        Ok(Simulator {
            shared,
            api_addr,
            download_addr,
            tasks,
            webhook: std::sync::Mutex::new(None),
        })
    }

    /// The API host, e.g. `http://127.0.0.1:40123`.
    pub fn api_base(&self) -> String {
        format!("http://{}", self.api_addr)
    }

    /// The download host, e.g. `http://127.0.0.2:40124`.
    pub fn download_base(&self) -> String {
        format!("http://{}", self.download_addr)
    }

    /// A snapshot of the counters.
    pub fn stats(&self) -> SimStats {
        self.shared.lock().stats.clone()
    }

    /// Requests the download host got so far, per raw request path.
    pub fn download_requests_by_path(&self) -> HashMap<String, u64> {
        self.shared.lock().requests_by_path.clone()
    }

    /// Every access and download token issued so far (for leak checks).
    pub fn issued_tokens(&self) -> Vec<String> {
        self.shared.lock().issued.clone()
    }

    /// Makes every live access token expire now (the token ran out mid-run).
    pub fn expire_access_tokens(&self) {
        self.shared.lock().expire_access_tokens();
    }

    /// Replaces the fault settings from now on.
    pub fn set_faults(&self, faults: Faults) {
        self.shared.lock().faults = faults;
    }

    /// Adds a meeting (replacing one with the same conference UUID), visible from now on.
    pub fn add_meeting(&self, meeting: SimMeeting) {
        self.shared.lock().add_meeting(meeting);
    }

    /// Turns `Range` support of the download host on or off.
    pub fn set_range_support(&self, on: bool) {
        self.shared.lock().range_support = on;
    }

    /// Makes downloadurls hand out URLs on `base` (e.g. `https://127.0.0.3:443`,
    /// a TLS proxy in front of [`Simulator::download_base`]) instead of the
    /// download host itself; the paths stay the same.
    pub fn set_advertised_download_base(&self, base: impl Into<String>) {
        self.shared.lock().advertised_download_base = Some(base.into());
    }

    /// Stops both servers: open bodies break, idle connections close, then the tasks end.
    pub async fn shutdown(mut self) {
        self.shared.cancel.cancel();
        for task in std::mem::take(&mut self.tasks) {
            let abort = task.abort_handle();
            if tokio::time::timeout(SHUTDOWN_GRACE, task).await.is_err() {
                abort.abort();
            }
        }
    }
}

impl Drop for Simulator {
    fn drop(&mut self) {
        self.shared.cancel.cancel();
        for task in &self.tasks {
            task.abort();
        }
    }
}

/// Serves `router` on `listener` until the simulator is cancelled.
fn spawn_server(
    listener: TcpListener,
    router: axum::Router,
    shared: &Arc<Shared>,
    name: &'static str,
) -> JoinHandle<()> {
    let cancel = shared.cancel.clone();
    // No Nagle delay: on a kept-alive connection a reply's last small
    // segment would otherwise wait ~40 ms for the client's delayed ACK.
    let listener = listener.tap_io(|tcp| {
        let _ = tcp.set_nodelay(true);
    });
    tokio::spawn(async move {
        let serve = axum::serve(listener, router)
            .with_graceful_shutdown(async move { cancel.cancelled().await });
        if let Err(err) = serve.await {
            tracing::warn!(server = name, error = %err, "simulator server stopped with an error");
        }
    })
}
