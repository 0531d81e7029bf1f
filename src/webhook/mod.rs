//! The endpoint of the enterprise event push (`[webhook]`): Huawei Cloud
//! Meeting POSTs an event when something happens; `record.finish` says a
//! recording is ready, and the daemon polls that meeting at once.
//!
//! A request is checked in this order, and refused with a bare 4xx at the
//! first failure: size (64 KiB) and time, the envelope's shape, `appID`,
//! the HMAC signature (constant time), the timestamp (5 minutes either
//! way), the nonce (not seen in 10 minutes: the ledger keeps them). An
//! authentic event is queued in the ledger, and only once that commit
//! returned is it answered 200 and the daemon woken (`wake`). The answer
//! carries nothing an attacker could use; the signature is never logged.

mod envelope;

use std::sync::Arc;
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
/// How long nonces are remembered: a copy inside the skew on either side
/// of its first arrival is refused.
pub const NONCE_WINDOW: Duration = Duration::from_secs(10 * 60);

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

/// What the endpoint needs: who may send, where events go, whom to wake.
#[derive(Clone)]
pub struct Webhook {
    app_id: String,
    key: SecretString,
    ledger: LedgerHandle,
    metrics: Arc<Metrics>,
    wake: mpsc::Sender<()>,
    body_timeout: Duration,
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
            app_id,
            key,
            ledger,
            metrics,
            wake,
            body_timeout: BODY_TIMEOUT,
        }
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

    /// Judges one request and queues it if authentic.
    async fn judge(&self, body: Result<Bytes, Verdict>) -> (Verdict, &'static str, Response) {
        let body = match body {
            Ok(body) => body,
            Err(verdict) => return (verdict, "unknown", refusal(verdict)),
        };
        let envelope = match Envelope::parse(&body) {
            Ok(envelope) => envelope,
            Err(e) => {
                tracing::debug!(error = %e, "refused a webhook request");
                return (Verdict::Malformed, "unknown", refusal(Verdict::Malformed));
            }
        };
        if let Err(verdict) = self.authenticate(&envelope) {
            return (verdict, "unknown", refusal(verdict));
        }
        let label = envelope.info.label();
        let verdict = self.queue(&envelope).await;
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
    /// signed request learns anything about the clock.
    fn authenticate(&self, envelope: &Envelope) -> Result<(), Verdict> {
        if envelope.app_id != self.app_id {
            return Err(Verdict::WrongAppId);
        }
        if !envelope.verify(self.key.expose_secret().as_bytes()) {
            return Err(Verdict::BadSignature);
        }
        let skew = Millis::now().as_unix_ms().abs_diff(envelope.timestamp);
        if u128::from(skew) > MAX_SKEW.as_millis() {
            return Err(Verdict::Stale);
        }
        Ok(())
    }

    /// Queues an authentic event (durably) and wakes the daemon for a
    /// `record.finish`.
    async fn queue(&self, envelope: &Envelope) -> Verdict {
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
            .call(move |l| l.queue_event(&event, !finish, NONCE_WINDOW, Millis::now()))
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
    let (verdict, event, response) = hook.judge(body).await;
    hook.metrics.webhook_event(event, verdict.as_str());
    if !matches!(verdict, Verdict::Accepted | Verdict::Ignored) {
        tracing::info!(outcome = verdict.as_str(), "refused a webhook request");
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
