//! The endpoint of the enterprise event push (`[webhook]`): Huawei Cloud
//! Meeting POSTs an event when something happens; `record.finish` says a
//! recording is ready, and the daemon polls that meeting at once.
//!
//! A request is checked in this order, and refused with a bare 4xx at the
//! first failure: size (64 KiB) and time, the envelope's shape, `appID`,
//! the HMAC signature (constant time), the timestamp (5 minutes either
//! way), the nonce (not seen in 15 minutes: the ledger keeps them). An
//! authentic event is queued in the ledger, and only once that commit
//! returned is it answered 200 and the daemon woken (`wake`). The answer
//! carries nothing an attacker could use; the signature is never logged,
//! and refusals are logged one line a minute (`refusals`), not one each.
//! The subscription and its password are read through [`WebhookKeys`], so
//! a reload rotates them without a restart.

mod envelope;
mod refusals;

use std::sync::{Arc, RwLock};
use std::time::Duration;

use axum::Router;
use axum::body::{Body, Bytes};
use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use futures_util::StreamExt;
use secrecy::{ExposeSecret, SecretString};
use tokio::sync::mpsc;

pub use envelope::{Envelope, EventInfo, RECORD_FINISH, VERIFY, sign};
pub use refusals::{REFUSAL_SUMMARY_EVERY, RefusalLog};

use crate::clock::Millis;
use crate::ledger::{LedgerHandle, NewEvent, Queued};
use crate::metrics::Metrics;
use crate::telemetry::error_chain;

/// The largest body taken.
pub const MAX_BODY: usize = 64 * 1024;
/// How long a request may take to send its body.
pub const BODY_TIMEOUT: Duration = Duration::from_secs(10);
/// How far an event's timestamp may be from now.
pub const MAX_SKEW: Duration = Duration::from_secs(5 * 60);
/// How long nonces are remembered. A copy that passes the time check
/// arrives within 2 × [`MAX_SKEW`] of the first (both checks use one
/// reading of the clock per request, and both bounds are inclusive); the
/// margin covers the daemon's clock being stepped between the two.
pub const NONCE_WINDOW: Duration = Duration::from_secs(2 * MAX_SKEW.as_secs() + NONCE_MARGIN_SECS);
const NONCE_MARGIN_SECS: u64 = 5 * 60;

/// Why a request was refused, or what became of it: the metric's `outcome`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Verdict {
    /// A `record.finish` queued.
    Accepted,
    /// An authentic event of another type, acknowledged.
    Ignored,
    /// Not an envelope, or a `record.finish` naming no valid meeting.
    Malformed,
    /// Over [`MAX_BODY`].
    TooLarge,
    /// The body did not arrive within [`BODY_TIMEOUT`], or broke.
    Timeout,
    /// Another subscription's `appID`.
    WrongAppId,
    /// The signature is not the key's.
    BadSignature,
    /// The timestamp is more than [`MAX_SKEW`] away.
    Stale,
    /// The nonce was seen within [`NONCE_WINDOW`].
    Replay,
    /// The ledger could not queue it (the sender retries).
    Unavailable,
}

impl Verdict {
    /// The metric label.
    pub const fn as_str(self) -> &'static str {
        match self {
            Verdict::Accepted => "accepted",
            Verdict::Ignored => "ignored",
            Verdict::Malformed => "malformed",
            Verdict::TooLarge => "too_large",
            Verdict::Timeout => "timeout",
            Verdict::WrongAppId => "wrong_app_id",
            Verdict::BadSignature => "bad_signature",
            Verdict::Stale => "stale",
            Verdict::Replay => "replay",
            Verdict::Unavailable => "unavailable",
        }
    }

    /// The HTTP answer's status. Wrong subscription, signature and time
    /// read alike, so a forger learns nothing from which one failed.
    pub const fn status(self) -> StatusCode {
        match self {
            Verdict::Accepted | Verdict::Ignored => StatusCode::OK,
            Verdict::Malformed => StatusCode::BAD_REQUEST,
            Verdict::TooLarge => StatusCode::PAYLOAD_TOO_LARGE,
            Verdict::Timeout => StatusCode::REQUEST_TIMEOUT,
            Verdict::WrongAppId | Verdict::BadSignature | Verdict::Stale => {
                StatusCode::UNAUTHORIZED
            }
            Verdict::Replay => StatusCode::CONFLICT,
            Verdict::Unavailable => StatusCode::SERVICE_UNAVAILABLE,
        }
    }
}

/// The subscription events must name and the password that signs them,
/// shared between the endpoint and the daemon's reload, which replaces
/// them when the config file (or the key file it names) changed.
#[derive(Clone)]
pub struct WebhookKeys(Arc<RwLock<(String, SecretString)>>);

impl WebhookKeys {
    /// Keys for subscription `app_id` signed with `key`.
    pub fn new(app_id: String, key: SecretString) -> WebhookKeys {
        WebhookKeys(Arc::new(RwLock::new((app_id, key))))
    }

    /// Takes `app_id` and `key` for the requests from now on; whether
    /// either differed from the ones in use.
    pub fn replace(&self, app_id: &str, key: &SecretString) -> bool {
        let mut keys = self.0.write().unwrap_or_else(|e| e.into_inner());
        let changed = keys.0 != app_id || keys.1.expose_secret() != key.expose_secret();
        *keys = (app_id.to_owned(), key.clone());
        changed
    }

    /// Whether `envelope` names the subscription and carries its signature.
    fn check(&self, envelope: &Envelope) -> Result<(), Verdict> {
        let keys = self.0.read().unwrap_or_else(|e| e.into_inner());
        if envelope.app_id != keys.0 {
            return Err(Verdict::WrongAppId);
        }
        if !envelope.verify(keys.1.expose_secret().as_bytes()) {
            return Err(Verdict::BadSignature);
        }
        Ok(())
    }
}

/// What the endpoint needs: who may send, where events go, whom to wake.
#[derive(Clone)]
pub struct Webhook {
    keys: WebhookKeys,
    ledger: LedgerHandle,
    metrics: Arc<Metrics>,
    wake: mpsc::Sender<()>,
    body_timeout: Duration,
    refusals: Arc<RefusalLog>,
}

impl Webhook {
    /// An endpoint taking events of subscription `app_id` signed with
    /// `key`, queueing them in `ledger` and sending on `wake` after each
    /// queued `record.finish`.
    pub fn new(
        app_id: String,
        key: SecretString,
        ledger: LedgerHandle,
        metrics: Arc<Metrics>,
        wake: mpsc::Sender<()>,
    ) -> Webhook {
        Webhook {
            keys: WebhookKeys::new(app_id, key),
            ledger,
            metrics,
            wake,
            body_timeout: BODY_TIMEOUT,
            refusals: Arc::new(RefusalLog::new(REFUSAL_SUMMARY_EVERY)),
        }
    }

    /// The subscription and password in use, to replace on reload.
    pub fn keys(&self) -> WebhookKeys {
        self.keys.clone()
    }

    /// The log of refused requests (the daemon flushes its summary).
    pub fn refusals(&self) -> Arc<RefusalLog> {
        Arc::clone(&self.refusals)
    }

    /// Bounds the body's arrival to `timeout` instead of [`BODY_TIMEOUT`]
    /// (for tests).
    pub fn with_body_timeout(mut self, timeout: Duration) -> Webhook {
        self.body_timeout = timeout;
        self
    }

    /// The routes: POST on `path`; anything else 404 or 405.
    pub fn router(self, path: &str) -> Router {
        Router::new()
            .route(path, post(receive))
            .with_state(Arc::new(self))
    }

    /// Judges one request arriving at `now` (one reading of the clock for
    /// the time check and the nonce's record) and queues it if authentic.
    pub async fn judge(
        &self,
        body: Result<Bytes, Verdict>,
        now: Millis,
    ) -> (Verdict, &'static str, Response) {
        let body = match body {
            Ok(body) => body,
            Err(verdict) => return (verdict, "unknown", refusal(verdict)),
        };
        let envelope = match Envelope::parse(&body) {
            Ok(envelope) => envelope,
            Err(e) => {
                tracing::debug!(error = %e, "not an event envelope");
                return (Verdict::Malformed, "unknown", refusal(Verdict::Malformed));
            }
        };
        if let Err(verdict) = self.authenticate(&envelope, now) {
            return (verdict, "unknown", refusal(verdict));
        }
        let label = envelope.info.label();
        let verdict = self.queue(&envelope, now).await;
        let response = match verdict {
            Verdict::Accepted | Verdict::Ignored if envelope.info.event == VERIFY => {
                let answer = serde_json::json!({ "event": VERIFY, "nonce": envelope.nonce });
                axum::Json(answer).into_response()
            }
            Verdict::Accepted | Verdict::Ignored => StatusCode::OK.into_response(),
            refused => refusal(refused),
        };
        (verdict, label, response)
    }

    /// Subscription, signature, then time: in this order, so that only a
    /// signed request learns anything about the clock. A timestamp exactly
    /// [`MAX_SKEW`] away passes.
    fn authenticate(&self, envelope: &Envelope, now: Millis) -> Result<(), Verdict> {
        self.keys.check(envelope)?;
        let skew = now.as_unix_ms().abs_diff(envelope.timestamp);
        if u128::from(skew) > MAX_SKEW.as_millis() {
            return Err(Verdict::Stale);
        }
        Ok(())
    }

    /// Queues an authentic event (durably) and wakes the daemon for a
    /// `record.finish`.
    async fn queue(&self, envelope: &Envelope, now: Millis) -> Verdict {
        let info = &envelope.info;
        let finish = info.event == RECORD_FINISH;
        if finish && !info.meeting_uuid.as_deref().is_some_and(valid_meeting) {
            tracing::warn!("refused a record.finish that names no valid meeting UUID");
            return Verdict::Malformed;
        }
        let event = NewEvent {
            event: info.event.clone(),
            conf_uuid: info.meeting_uuid.clone().filter(|m| valid_meeting(m)),
            nonce: envelope.nonce.clone(),
            sent_at: Millis::from_unix_ms(envelope.timestamp),
        };
        let queued = self
            .ledger
            .call(move |l| l.queue_event(&event, !finish, NONCE_WINDOW, now))
            .await;
        match queued {
            Ok(Queued::Replay) => Verdict::Replay,
            Err(e) => {
                tracing::error!(error = %error_chain(&e), "cannot queue an event; the sender will retry");
                Verdict::Unavailable
            }
            Ok(Queued::Stored(_)) if finish => {
                tracing::info!(
                    meeting = info.meeting_uuid.as_deref().unwrap_or(""),
                    "record.finish received; polling the meeting now"
                );
                // A full channel means a wake is already pending.
                let _ = self.wake.try_send(());
                Verdict::Accepted
            }
            Ok(Queued::Stored(_)) => {
                tracing::debug!(event = %info.event, "event acknowledged and ignored");
                Verdict::Ignored
            }
        }
    }
}

/// A conference UUID as `poll.meetings` takes them.
fn valid_meeting(id: &str) -> bool {
    (1..=64).contains(&id.len())
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// A bare refusal: the status and one word.
fn refusal(verdict: Verdict) -> Response {
    let status = verdict.status();
    (status, status.canonical_reason().unwrap_or("refused")).into_response()
}

async fn receive(State(hook): State<Arc<Webhook>>, headers: HeaderMap, body: Body) -> Response {
    let body = read_body(&headers, body, hook.body_timeout).await;
    let (verdict, event, response) = hook.judge(body, Millis::now()).await;
    hook.metrics.webhook_event(event, verdict.as_str());
    if !matches!(verdict, Verdict::Accepted | Verdict::Ignored) {
        hook.refusals.refused(verdict);
    }
    response
}

/// The body, at most [`MAX_BODY`] bytes within `timeout`.
async fn read_body(headers: &HeaderMap, body: Body, timeout: Duration) -> Result<Bytes, Verdict> {
    let announced = headers
        .get(header::CONTENT_LENGTH)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.parse::<u64>().ok());
    if announced.is_some_and(|n| n > MAX_BODY as u64) {
        return Err(Verdict::TooLarge);
    }
    let read = async {
        let mut stream = body.into_data_stream();
        let mut out = Vec::new();
        while let Some(chunk) = stream.next().await {
            let chunk = chunk.map_err(|_| Verdict::Timeout)?;
            if out.len() + chunk.len() > MAX_BODY {
                return Err(Verdict::TooLarge);
            }
            out.extend_from_slice(&chunk);
        }
        Ok(Bytes::from(out))
    };
    tokio::time::timeout(timeout, read)
        .await
        .unwrap_or(Err(Verdict::Timeout))
}

#[cfg(test)]
mod tests;
