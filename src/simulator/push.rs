//! The simulated cloud's enterprise event push: when a recording becomes
//! ready ([`Simulator::finish_recording`]), a `record.finish` envelope
//! signed as Huawei documents it (`hex(HMAC-SHA256(appID + timestamp +
//! nonce + eventInfo, key))`, `eventInfo` sent as an object and signed
//! compact) is POSTed to the configured URL. Knobs play the misbehaving
//! deliveries an endpoint must survive: twice, late, badly signed, replayed.

use std::time::Duration;

use hmac::{Hmac, KeyInit, Mac};
use serde_json::json;
use sha2::Sha256;

use super::{SimMeeting, Simulator};
use crate::clock::Millis;

/// Where and how events are pushed.
#[derive(Clone, Debug, Default)]
pub struct SimWebhook {
    /// The endpoint, e.g. `http://127.0.0.1:9188/events/huawei`.
    pub url: String,
    /// Send each event twice, each copy with its own nonce (a duplicate
    /// delivery: both are authentic).
    pub twice: bool,
    /// Date the envelope this far in the past (a delivery that arrives late;
    /// over five minutes, an endpoint must refuse it as stale).
    pub late: Duration,
    /// Spoil the signature.
    pub bad_signature: bool,
    /// Post the very same request again (a replay, same nonce).
    pub replay_nonce: bool,
    /// Claim another subscription's `appID`.
    pub wrong_app_id: bool,
    /// Send `eventInfo` as a JSON string instead of an object.
    pub event_info_as_string: bool,
}

impl Simulator {
    /// Pushes events to `webhook` from now on (`None`: no more events).
    pub fn set_webhook(&self, webhook: Option<SimWebhook>) {
        *self.webhook.lock().unwrap_or_else(|e| e.into_inner()) = webhook;
    }

    /// A recording becomes ready: the meeting is listed from now on and a
    /// `record.finish` is pushed. Returns the HTTP status of each request
    /// sent (0: no answer); none without a webhook.
    pub async fn finish_recording(&self, meeting: SimMeeting) -> Vec<u16> {
        let conf = meeting.conf_uuid.clone();
        self.add_meeting(meeting);
        self.push_record_finish(&conf).await
    }

    /// Pushes a `record.finish` for `conf_uuid` as the knobs say; the
    /// statuses of the requests sent (0: no answer).
    pub async fn push_record_finish(&self, conf_uuid: &str) -> Vec<u16> {
        let Some(hook) = self
            .webhook
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
        else {
            return Vec::new();
        };
        let cfg = &self.shared.config;
        let copies = if hook.twice { 2 } else { 1 };
        let mut statuses = Vec::new();
        let client = reqwest::Client::builder().no_proxy().build();
        let Ok(client) = client else {
            return vec![0];
        };
        for _ in 0..copies {
            let app_id = if hook.wrong_app_id {
                format!("not-{}", cfg.app_id)
            } else {
                cfg.app_id.clone()
            };
            let body = envelope(&hook, &app_id, &cfg.app_key, conf_uuid);
            let sends = if hook.replay_nonce { 2 } else { 1 };
            for _ in 0..sends {
                let sent = client
                    .post(&hook.url)
                    .header("content-type", "application/json;charset=UTF-8")
                    .body(body.clone())
                    .send()
                    .await;
                statuses.push(sent.map_or(0, |r| r.status().as_u16()));
            }
        }
        tracing::debug!(
            meeting = conf_uuid,
            ?statuses,
            "simulator pushed record.finish"
        );
        statuses
    }
}

/// One signed `record.finish` envelope.
fn envelope(hook: &SimWebhook, app_id: &str, key: &str, conf_uuid: &str) -> String {
    let timestamp = Millis::now().saturating_sub(hook.late).as_unix_ms();
    let nonce = hex::encode(rand::random::<[u8; 16]>());
    let info = json!({
        "event": "record.finish",
        "timestamp": timestamp,
        "payload": { "meetingInfo": {
            "meetingID": "",
            "meetingUUID": conf_uuid,
            "meetingCycleSubID": "",
        } },
    });
    let info_text = info.to_string();
    let mut signature = sign(key, &format!("{app_id}{timestamp}{nonce}{info_text}"));
    if hook.bad_signature {
        signature = sign("not the key", &signature);
    }
    let info_field = if hook.event_info_as_string {
        json!(info_text)
    } else {
        info
    };
    json!({
        "appID": app_id,
        "timestamp": timestamp,
        "nonce": nonce,
        "signature": signature,
        "eventInfo": info_field,
    })
    .to_string()
}

fn sign(key: &str, text: &str) -> String {
    match <Hmac<Sha256> as KeyInit>::new_from_slice(key.as_bytes()) {
        Ok(mut mac) => {
            mac.update(text.as_bytes());
            hex::encode(mac.finalize().into_bytes())
        }
        Err(_) => String::new(),
    }
}
