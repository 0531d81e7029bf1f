//! The Huawei Cloud Meeting API client: App ID authentication with a cached
//! access token, the recording-list and download-URL calls, and the error
//! model of `docs/huawei-meeting-api.md` (one re-auth on 401, capped
//! exponential backoff with jitter on 429, 5xx, transport errors and
//! non-JSON answers). Every error log line carries the `X-Request-Id`.

mod answer;
mod api;
mod auth;
mod error;
mod names;
mod pace;
mod paging;
mod retry;
mod session;
pub mod transport;

use std::sync::Arc;
use std::sync::atomic::AtomicU64;
use std::time::Duration;

use reqwest::header::{HeaderMap, HeaderValue};
use secrecy::SecretString;
use serde::de::DeserializeOwned;
use tokio::sync::Mutex;

pub use api::{DownloadUrl, PAGE_LIMIT, Recording};
pub use auth::{AppCredentials, hmac_hex};
pub use error::CloudError;
pub use names::file_name_of;
pub use retry::Backoff;
pub use session::{Pending, StoredToken, TokenStore};

use answer::{read_json, sensitive};
use auth::{AppAuthAnswer, CachedToken};
use pace::RetryClock;
use session::Paging;

use crate::clock::Millis;
use crate::metrics::Metrics;

/// How the client authenticates.
pub enum Credentials {
    /// App ID + app key: tokens are fetched and refreshed as needed.
    App(AppCredentials),
    /// A ready access token: cannot be refreshed; a 401 is fatal.
    Static(SecretString),
}

/// Settings of the client, from `[cloud]`.
pub struct CloudSettings {
    /// `https://api.meeting.huaweicloud.com` or a test server.
    pub api_base: url::Url,
    /// How to authenticate.
    pub credentials: Credentials,
    /// Retries of one call after the first try.
    pub max_retries: u32,
    /// Backoff between tries.
    pub backoff: Backoff,
    /// The longest one call is retried.
    pub give_up_after: Duration,
    /// A cap on requests per minute, spread evenly (0 = none).
    pub max_requests_per_minute: u32,
}

/// A client of the API, cheap to share behind an `Arc`.
pub struct CloudClient {
    http: reqwest::Client,
    settings: CloudSettings,
    token: Mutex<Option<CachedToken>>,
    generation: AtomicU64,
    metrics: Arc<Metrics>,
    paging: Paging,
    /// Spaces every request out under `max_requests_per_minute`.
    pace: pace::Pace,
    store: Option<Arc<dyn TokenStore>>,
    /// The last authentication's failure, until the next poll begins: one
    /// refused App Key must not be tried again for every meeting.
    refused: std::sync::Mutex<Option<CloudError>>,
    /// Whether a poll runs (between `begin_poll` and `end_poll`).
    polling: std::sync::atomic::AtomicBool,
}

impl CloudClient {
    /// A client over `http` (which carries timeouts and TLS settings).
    pub fn new(http: reqwest::Client, settings: CloudSettings) -> CloudClient {
        CloudClient {
            http,
            pace: pace::Pace::per_minute(settings.max_requests_per_minute),
            settings,
            token: Mutex::new(None),
            generation: AtomicU64::new(0),
            metrics: Arc::new(Metrics::new()),
            paging: Paging::default(),
            store: None,
            refused: std::sync::Mutex::new(None),
            polling: std::sync::atomic::AtomicBool::new(false),
        }
    }

    /// Keeps the access token in `store` across runs.
    pub fn with_token_store(mut self, store: Arc<dyn TokenStore>) -> CloudClient {
        self.store = Some(store);
        self
    }

    /// Reports API calls and token refreshes to `metrics`.
    pub fn with_metrics(mut self, metrics: Arc<Metrics>) -> CloudClient {
        self.metrics = metrics;
        self
    }

    fn observe(&self, endpoint: &'static str, sent: &reqwest::Result<reqwest::Response>) {
        let status = sent.as_ref().map(|r| r.status().as_u16()).unwrap_or(0);
        self.metrics.api_request(endpoint, status);
    }

    fn url(&self, path: &str) -> String {
        format!(
            "{}{}",
            self.settings.api_base.as_str().trim_end_matches('/'),
            path
        )
    }

    /// `appauth`, retried like any call on transient errors. With
    /// `slot_held`, the first try uses the caller's request slot.
    async fn authenticate(
        &self,
        creds: &AppCredentials,
        slot_held: bool,
    ) -> Result<AppAuthAnswer, CloudError> {
        const ENDPOINT: &str = "appauth";
        let mut tries = 0;
        let mut clock = RetryClock::start();
        loop {
            if tries > 0 || !slot_held {
                clock.paced(self.pace.wait()).await;
            }
            let (body, authorization) = creds.sign(Millis::now());
            let mut headers = HeaderMap::new();
            headers.insert("Authorization", sensitive(&authorization)?);
            headers.insert("X-Token-Type", HeaderValue::from_static("LongTicket"));
            headers.insert(
                "Content-Type",
                HeaderValue::from_static("application/json; charset=UTF-8"),
            );
            let sent = self
                .http
                .post(self.url("/v2/usg/acs/auth/appauth"))
                .headers(headers)
                .body(serde_json::to_vec(&body).unwrap_or_default())
                .send()
                .await;
            self.observe(ENDPOINT, &sent);
            let result = read_json::<AppAuthAnswer>(ENDPOINT, sent).await;
            match result {
                Ok(answer) => {
                    self.metrics.token_refreshed();
                    tracing::info!("fetched a new access token");
                    return Ok(answer);
                }
                Err(e) if self.may_retry(&e, tries, &clock) => {
                    let delay = self.retry_delay(&e, tries);
                    tracing::warn!(error = %e, retry_in = ?delay, "authentication failed; retrying");
                    tokio::time::sleep(delay).await;
                    tries += 1;
                }
                Err(CloudError::Unauthorized {
                    detail, request_id, ..
                }) => {
                    return Err(CloudError::Unauthorized {
                        endpoint: ENDPOINT,
                        detail: format!(
                            "App ID authentication refused: check cloud.auth.app_id and app_key \
                             (and user_id, corp_id if set); the API said {detail}"
                        ),
                        request_id,
                    });
                }
                Err(e) => return Err(e),
            }
        }
    }

    /// A GET of a business API with the access token, retries and one
    /// re-authentication on 401.
    async fn get_json<T: DeserializeOwned>(
        &self,
        endpoint: &'static str,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T, CloudError> {
        self.call_json(reqwest::Method::GET, endpoint, path, query)
            .await
    }

    /// A call of a business API (any method) with the access token,
    /// retries and one re-authentication on 401.
    async fn call_json<T: DeserializeOwned>(
        &self,
        method: reqwest::Method,
        endpoint: &'static str,
        path: &str,
        query: &[(&str, &str)],
    ) -> Result<T, CloudError> {
        let mut tries = 0;
        let mut reauthenticated = false;
        let mut clock = RetryClock::start();
        loop {
            let (token, generation) = clock.paced(self.paced_token()).await?;
            let sent = self
                .http
                .request(method.clone(), self.url(path))
                .query(query)
                .header("X-Access-Token", sensitive(&token)?)
                .send()
                .await;
            self.observe(endpoint, &sent);
            let err = match read_json::<T>(endpoint, sent).await {
                Ok(value) => return Ok(value),
                Err(err) => err,
            };
            match &err {
                CloudError::Unauthorized { .. } if !reauthenticated => {
                    if matches!(self.settings.credentials, Credentials::Static(_)) {
                        return Err(static_token_refused(err));
                    }
                    tracing::info!(error = %err, "access token refused; re-authenticating once");
                    self.invalidate(generation).await;
                    reauthenticated = true;
                }
                e if self.may_retry(e, tries, &clock) => {
                    let delay = self.retry_delay(e, tries);
                    tracing::warn!(error = %e, retry_in = ?delay, "API call failed; retrying");
                    tokio::time::sleep(delay).await;
                    tries += 1;
                }
                _ => return Err(err),
            }
        }
    }

    /// Waits for a request slot and returns the access token good at that
    /// moment. A token is fetched once before queueing, so that a first
    /// authentication (paced like any request) happens before the business
    /// calls queue rather than behind them; it is taken again after the
    /// wait, so a token that expired in the queue is never sent. If that
    /// needs a new token, the authentication uses the slot and the call
    /// waits for the next: never two requests on one slot.
    async fn paced_token(&self) -> Result<(SecretString, u64), CloudError> {
        self.access_token().await?;
        loop {
            self.pace.wait().await;
            let (token, generation, asked) = self.token_in(self.pace.is_capped()).await?;
            if !asked || !self.pace.is_capped() {
                return Ok((token, generation));
            }
        }
    }

    /// Whether a failed call is worth another try: a transient error,
    /// within `max_retries`, and the next try would start before
    /// `give_up_after` of the call's own time (pace waits left out) has passed.
    fn may_retry(&self, err: &CloudError, tries: u32, clock: &RetryClock) -> bool {
        err.is_retryable()
            && tries < self.settings.max_retries
            && clock.spent() + self.retry_delay(err, tries) <= self.settings.give_up_after
    }

    fn retry_delay(&self, err: &CloudError, tries: u32) -> Duration {
        let backoff = self.settings.backoff.delay(tries);
        match err {
            CloudError::RateLimited {
                retry_after: Some(after),
                ..
            // The server's advice, but never beyond our own cap: a proxy
            // saying "Retry-After: 86400" must not park the archiver a day.
            } => backoff.max((*after).min(self.settings.backoff.max)),
            _ => backoff,
        }
    }
}

fn static_token_refused(err: CloudError) -> CloudError {
    match err {
        CloudError::Unauthorized {
            endpoint,
            detail,
            request_id,
        } => CloudError::Unauthorized {
            endpoint,
            detail: format!(
                "{detail}; the configured access_token cannot be refreshed: replace it or use app_id/app_key"
            ),
            request_id,
        },
        other => other,
    }
}
