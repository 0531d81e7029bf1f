//! The event envelope of the enterprise event push and its signature:
//! `signature = hex(HMAC-SHA256(key, appID + timestamp + nonce + eventInfo))`,
//! with the timestamp in decimal and `eventInfo` as the text that was sent.
//! `eventInfo` comes as a JSON string (signed as its content) or, as in
//! Huawei's published sample, as an object: then its raw text is signed,
//! and, since the sample's signer serialises the object compactly, that
//! text without the whitespace between tokens is accepted too.

use hmac::{Hmac, KeyInit, Mac};
use serde::Deserialize;
use serde_json::value::RawValue;
use sha2::Sha256;

/// The event that asks for a poll.
pub const RECORD_FINISH: &str = "record.finish";
/// The event the console sends when the push is switched on; its answer
/// must echo the nonce.
pub const VERIFY: &str = "meeting.verify";
/// Event types named in metrics by their own name; others are `other`.
const KNOWN: [&str; 5] = [
    RECORD_FINISH,
    VERIFY,
    "meeting.started",
    "meeting.end",
    "meeting.conclude",
];

/// A parsed envelope, not yet verified. No `Debug`: it holds the
/// signature, which is never logged.
pub struct Envelope {
    /// `appID`: the push subscription it claims to come from.
    pub app_id: String,
    /// `timestamp`: Unix ms of the sender's clock.
    pub timestamp: i64,
    /// `nonce`: unique per request.
    pub nonce: String,
    signature: String,
    /// What `eventInfo` says.
    pub info: EventInfo,
    /// The texts of `eventInfo` a valid signature may cover.
    signed_forms: Vec<String>,
}

/// The decoded `eventInfo`.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct EventInfo {
    /// `event`: `record.finish`, ...
    pub event: String,
    /// `payload.meetingInfo.meetingUUID`, if given.
    pub meeting_uuid: Option<String>,
}

impl EventInfo {
    /// The event type as a metric label: its name if known, else `other`.
    pub fn label(&self) -> &'static str {
        KNOWN
            .into_iter()
            .find(|k| *k == self.event)
            .unwrap_or("other")
    }
}

#[derive(Deserialize)]
struct RawEnvelope<'a> {
    #[serde(rename = "appID")]
    app_id: String,
    timestamp: i64,
    nonce: String,
    signature: String,
    #[serde(rename = "eventInfo", borrow)]
    event_info: &'a RawValue,
}

#[derive(Deserialize)]
struct RawInfo {
    event: String,
    #[serde(default)]
    payload: Option<RawPayload>,
}

#[derive(Deserialize)]
struct RawPayload {
    #[serde(rename = "meetingInfo", default)]
    meeting_info: Option<RawMeetingInfo>,
}

#[derive(Deserialize)]
struct RawMeetingInfo {
    #[serde(rename = "meetingUUID", default)]
    meeting_uuid: Option<String>,
}

/// Why a body is not an envelope (said to no one: the answer is a bare 400).
#[derive(Debug, thiserror::Error)]
#[error("not an event envelope: {0}")]
pub struct Malformed(String);

impl Envelope {
    /// Parses a request body.
    pub fn parse(body: &[u8]) -> Result<Envelope, Malformed> {
        let raw: RawEnvelope<'_> =
            serde_json::from_slice(body).map_err(|e| Malformed(e.to_string()))?;
        let text = raw.event_info.get();
        let (info_text, signed_forms) = if text.starts_with('"') {
            let inner: String = serde_json::from_str(text).map_err(|e| Malformed(e.to_string()))?;
            (inner.clone(), vec![inner])
        } else {
            let compact = compact(text);
            let mut forms = vec![text.to_owned()];
            if compact != text {
                forms.push(compact);
            }
            (text.to_owned(), forms)
        };
        let info: RawInfo =
            serde_json::from_str(&info_text).map_err(|e| Malformed(format!("eventInfo: {e}")))?;
        let nonce_ok =
            (1..=128).contains(&raw.nonce.len()) && raw.nonce.chars().all(|c| c.is_ascii_graphic());
        if !nonce_ok {
            return Err(Malformed("nonce".to_owned()));
        }
        let meeting_uuid = info
            .payload
            .and_then(|p| p.meeting_info)
            .and_then(|m| m.meeting_uuid);
        Ok(Envelope {
            app_id: raw.app_id,
            timestamp: raw.timestamp,
            nonce: raw.nonce,
            signature: raw.signature,
            info: EventInfo {
                event: info.event,
                meeting_uuid,
            },
            signed_forms,
        })
    }

    /// Whether the signature is `key`'s over this envelope; the comparison
    /// takes the same time however much of the signature matches.
    pub fn verify(&self, key: &[u8]) -> bool {
        let Ok(claimed) = hex::decode(self.signature.trim()) else {
            return false;
        };
        self.signed_forms.iter().any(|form| {
            mac(key, &self.app_id, self.timestamp, &self.nonce, form)
                .is_some_and(|mac| mac.verify_slice(&claimed).is_ok())
        })
    }
}

/// The HMAC over one form of the envelope; `None` only if the key is
/// refused (HMAC takes any length).
fn mac(key: &[u8], app_id: &str, timestamp: i64, nonce: &str, info: &str) -> Option<Hmac<Sha256>> {
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key).ok()?;
    mac.update(app_id.as_bytes());
    mac.update(timestamp.to_string().as_bytes());
    mac.update(nonce.as_bytes());
    mac.update(info.as_bytes());
    Some(mac)
}

/// The lowercase hex signature of an envelope: what a sender computes (the
/// simulator and tests).
pub fn sign(key: &[u8], app_id: &str, timestamp: i64, nonce: &str, event_info: &str) -> String {
    mac(key, app_id, timestamp, nonce, event_info)
        .map(|m| hex::encode(m.finalize().into_bytes()))
        .unwrap_or_default()
}

/// JSON text without the whitespace between its tokens (strings kept as
/// written).
fn compact(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let (mut in_string, mut escaped) = (false, false);
    for c in text.chars() {
        if in_string {
            out.push(c);
            match (escaped, c) {
                (true, _) => escaped = false,
                (false, '\\') => escaped = true,
                (false, '"') => in_string = false,
                _ => {}
            }
        } else if c == '"' {
            in_string = true;
            out.push(c);
        } else if !c.is_ascii_whitespace() {
            out.push(c);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    const KEY: &[u8] = b"push-password";

    fn body(info_field: &str, signature: &str) -> String {
        format!(
            r#"{{"appID": "1988692299", "timestamp": 1629183619116, "nonce": "85262798", "signature": "{signature}", "eventInfo": {info_field}}}"#
        )
    }

    #[test]
    fn a_string_event_info_is_signed_as_its_content() {
        let info = r#"{"event":"record.finish","timestamp":1,"payload":{"meetingInfo":{"meetingUUID":"abc"}}}"#;
        let sig = sign(KEY, "1988692299", 1629183619116, "85262798", info);
        let quoted = serde_json::to_string(info).expect("json");
        let envelope = Envelope::parse(body(&quoted, &sig).as_bytes()).expect("parses");
        assert!(envelope.verify(KEY));
        assert_eq!(envelope.info.meeting_uuid.as_deref(), Some("abc"));
        assert_eq!(envelope.info.label(), RECORD_FINISH);
        // Upper-case hex is the same signature.
        let upper = Envelope::parse(body(&quoted, &sig.to_uppercase()).as_bytes()).expect("parses");
        assert!(upper.verify(KEY));
        assert!(!envelope.verify(b"another key"));
    }

    #[test]
    fn an_object_event_info_is_signed_as_sent_or_compacted() {
        let pretty = "{\n\t\"event\": \"meeting.verify\",\n\t\"timestamp\": 1629183619116\n  }";
        let compacted = r#"{"event":"meeting.verify","timestamp":1629183619116}"#;
        assert_eq!(compact(pretty), compacted);
        for signed in [pretty, compacted] {
            let sig = sign(KEY, "1988692299", 1629183619116, "85262798", signed);
            let envelope = Envelope::parse(body(pretty, &sig).as_bytes()).expect("parses");
            assert!(envelope.verify(KEY), "signed over {signed:?}");
            assert_eq!(envelope.info.event, VERIFY);
        }
        let spaced = r#"{"event": "a b", "x": "\" }"}"#;
        assert_eq!(compact(spaced), r#"{"event":"a b","x":"\" }"}"#);
    }

    #[test]
    fn tampering_or_a_broken_signature_fails_and_garbage_is_malformed() {
        let info = r#"{"event":"record.finish","payload":{"meetingInfo":{"meetingUUID":"abc"}}}"#;
        let sig = sign(KEY, "1988692299", 1629183619116, "85262798", info);
        let other = info.replace("abc", "abd");
        let quoted = serde_json::to_string(&other).expect("json");
        let tampered = Envelope::parse(body(&quoted, &sig).as_bytes()).expect("parses");
        assert!(!tampered.verify(KEY));
        let quoted = serde_json::to_string(info).expect("json");
        for bad in ["", "zz", &sig[..62]] {
            let envelope = Envelope::parse(body(&quoted, bad).as_bytes()).expect("parses");
            assert!(!envelope.verify(KEY), "{bad:?}");
        }
        for garbage in [
            "",
            "{}",
            "[1]",
            &body("42", &sig),
            &body("\"not json\"", &sig),
        ] {
            assert!(Envelope::parse(garbage.as_bytes()).is_err(), "{garbage:?}");
        }
        let unknown = EventInfo {
            event: "x.y".to_owned(),
            meeting_uuid: None,
        };
        assert_eq!(unknown.label(), "other");
    }
}
