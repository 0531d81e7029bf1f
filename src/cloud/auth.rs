//! App ID authentication: the HMAC-SHA256 signature of `appauth` and the
//! access-token cache. One token is reused until shortly before its
//! `expireTime`; refreshes happen behind one lock so concurrent workers never
//! stampede (a user holds at most 64 live tokens; the 65th evicts the oldest,
//! breaking other users of the same App ID).

use std::time::Duration;

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use rand::distr::{Alphanumeric, SampleString};
use secrecy::{ExposeSecret, SecretString};
use serde::{Deserialize, Serialize};
use sha2::Sha256;

use crate::clock::Millis;

/// What signs an `appauth` request.
pub struct AppCredentials {
    /// The App ID.
    pub app_id: String,
    /// The app key (HMAC key).
    pub app_key: SecretString,
    /// The user the App ID acts for, if any.
    pub user_id: Option<String>,
    /// The enterprise, in multi-tenant (SP) mode.
    pub corp_id: Option<String>,
}

/// The `appauth` request body.
#[derive(Serialize)]
#[serde(rename_all = "camelCase")]
pub struct AppAuthBody {
    /// The App ID.
    pub app_id: String,
    /// Always 72: an API client.
    pub client_type: u32,
    /// Unix seconds at which the signature stops being valid.
    pub expire_time: u64,
    /// 32 to 64 random characters.
    pub nonce: String,
    /// Must equal the signed user id.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub user_id: Option<String>,
    /// Only in SP mode.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub corp_id: Option<String>,
}

/// The parts of the `appauth` answer we use.
#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct AppAuthAnswer {
    /// The access token.
    pub access_token: String,
    /// Seconds it lives.
    #[serde(default)]
    pub valid_period: Option<u64>,
    /// Unix seconds at which it dies.
    #[serde(default)]
    pub expire_time: Option<u64>,
}

/// The documented shortest token life, assumed when the answer gives none.
const MIN_DOCUMENTED_LIFE: Duration = Duration::from_secs(12 * 3600);
/// The documented longest is 24 hours; anything beyond 48 is not believed.
const MAX_BELIEVED_LIFE: Duration = Duration::from_secs(48 * 3600);

/// How long the signature of one `appauth` request stays valid (as the SDKs).
const SIGNATURE_LIFETIME: Duration = Duration::from_secs(600);

impl AppCredentials {
    /// Builds a signed `appauth` request: the body and the Authorization
    /// header value (which contains the signature: never log it).
    pub fn sign(&self, now: Millis) -> (AppAuthBody, SecretString) {
        let expire_time = unix_secs(now + SIGNATURE_LIFETIME);
        let nonce = Alphanumeric.sample_string(&mut rand::rng(), 48);
        let user = self.user_id.clone().unwrap_or_default();
        let message = match &self.corp_id {
            Some(corp) => format!("{}:{corp}:{user}:{expire_time}:{nonce}", self.app_id),
            None => format!("{}:{user}:{expire_time}:{nonce}", self.app_id),
        };
        let signature = hmac_hex(self.app_key.expose_secret(), &message);
        let access = base64::engine::general_purpose::STANDARD.encode(self.app_id.as_bytes());
        let header = format!("HMAC-SHA256 signature={signature},access={access}");
        let body = AppAuthBody {
            app_id: self.app_id.clone(),
            client_type: 72,
            expire_time,
            nonce,
            user_id: self.user_id.clone(),
            corp_id: self.corp_id.clone(),
        };
        (body, SecretString::from(header))
    }
}

/// Lowercase hex HMAC-SHA256 of `message` keyed by `key`.
pub fn hmac_hex(key: &str, message: &str) -> String {
    // HMAC takes keys of any length, so this cannot fail.
    let mut mac = <Hmac<Sha256> as KeyInit>::new_from_slice(key.as_bytes())
        .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
    mac.update(message.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Unix seconds of a time as `appauth` wants them (0 before the epoch).
fn unix_secs(t: Millis) -> u64 {
    u64::try_from(t.as_secs()).unwrap_or(0)
}

/// A cached access token.
pub struct CachedToken {
    /// The token.
    pub value: SecretString,
    /// When to stop using it (already shortened by the refresh margin).
    pub use_until: Millis,
    /// Bumped each time a new token is fetched, so that a 401 invalidates
    /// only the token that got it.
    pub generation: u64,
}

impl AppAuthAnswer {
    /// The instant to stop using this token: its `expireTime` (or
    /// `validPeriod` from now), less a margin of a tenth of its life capped
    /// at five minutes.
    pub fn use_until(&self, now: Millis) -> Millis {
        // Lifetimes from now. An `expireTime` not after now (clock skew) is
        // ignored rather than making every call re-authenticate, and absurd
        // values are capped rather than overflowing.
        let by_period = self.valid_period.map(Duration::from_secs);
        let now_secs = unix_secs(now);
        let by_expiry = self
            .expire_time
            .filter(|&e| e > now_secs)
            .map(|e| Duration::from_secs(e - now_secs));
        let life = match (by_period, by_expiry) {
            (Some(a), Some(b)) => a.min(b),
            (Some(a), None) | (None, Some(a)) => a,
            (None, None) => MIN_DOCUMENTED_LIFE,
        }
        .min(MAX_BELIEVED_LIFE);
        let margin = (life / 10).min(Duration::from_secs(300));
        now + (life - margin)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn signature_matches_the_documented_string() {
        let creds = AppCredentials {
            app_id: "app".into(),
            app_key: SecretString::from("key".to_owned()),
            user_id: None,
            corp_id: None,
        };
        let now = Millis::from_unix_secs(1_000);
        let (body, header) = creds.sign(now);
        assert_eq!(body.expire_time, 1_600);
        assert_eq!(body.client_type, 72);
        assert!((32..=64).contains(&body.nonce.len()));
        let expected = hmac_hex("key", &format!("app::1600:{}", body.nonce));
        assert_eq!(
            header.expose_secret(),
            &format!("HMAC-SHA256 signature={expected},access=YXBw")
        );
        let json = serde_json::to_value(&body).expect("json");
        assert!(json.get("userId").is_none() && json.get("corpId").is_none());
    }

    #[test]
    fn sp_mode_signs_corp_and_user() {
        let creds = AppCredentials {
            app_id: "app".into(),
            app_key: SecretString::from("key".to_owned()),
            user_id: Some("u1".into()),
            corp_id: Some("c1".into()),
        };
        let (body, header) = creds.sign(Millis::from_unix_secs(1));
        let expected = hmac_hex("key", &format!("app:c1:u1:601:{}", body.nonce));
        assert!(header.expose_secret().contains(&expected));
    }

    #[test]
    fn hmac_matches_a_known_vector() {
        // RFC 4231 test case 2.
        assert_eq!(
            hmac_hex("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn absurd_or_skewed_lifetimes_neither_panic_nor_force_reauth() {
        let now = Millis::from_unix_secs(1_000_000);
        let huge = AppAuthAnswer {
            access_token: "x".into(),
            valid_period: Some(u64::MAX),
            expire_time: Some(u64::MAX),
        };
        let until = huge.use_until(now);
        assert!(until > now && until <= now + MAX_BELIEVED_LIFE);
        let past = AppAuthAnswer {
            access_token: "x".into(),
            valid_period: Some(43_200),
            expire_time: Some(10),
        };
        assert_eq!(past.use_until(now), now + Duration::from_secs(43_200 - 300));
    }

    #[test]
    fn tokens_are_refreshed_before_they_expire() {
        let now = Millis::from_unix_secs(1_000_000);
        let answer = AppAuthAnswer {
            access_token: "x".into(),
            valid_period: Some(43_200),
            expire_time: Some(1_000_000 + 43_200),
        };
        let until = answer.use_until(now);
        assert_eq!(until, now + Duration::from_secs(43_200 - 300));
        let short = AppAuthAnswer {
            access_token: "x".into(),
            valid_period: Some(10),
            expire_time: None,
        };
        assert_eq!(short.use_until(now), now + Duration::from_secs(9));
    }
}
