//! `POST /v2/usg/acs/auth/appauth`: App ID authentication, as strict as the
//! reference: header form, HMAC-SHA256 signature, nonce length, `expireTime`
//! in seconds and not past, `userId`/`corpId` rules, 64 live tokens per user.

use std::sync::Arc;

use axum::extract::State;
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use base64::Engine;
use bytes::Bytes;
use hmac::{Hmac, KeyInit, Mac};
use serde_json::{Map, Value, json};
use sha2::Sha256;

use super::gateway::{RequestId, api_error};
use super::state::{Config, Shared, random_alnum};
use crate::clock::Millis;

/// `expireTime` values above this look like milliseconds.
const MAX_EXPIRE_SECS: i64 = 100_000_000_000;

/// Why an appauth request was refused.
struct Reject {
    status: StatusCode,
    msg: &'static str,
}

fn unauthorized(msg: &'static str) -> Reject {
    Reject {
        status: StatusCode::UNAUTHORIZED,
        msg,
    }
}

fn bad_request(msg: &'static str) -> Reject {
    Reject {
        status: StatusCode::BAD_REQUEST,
        msg,
    }
}

/// The fields of an appauth body that matter.
struct AuthBody {
    app_id: String,
    expire_time: i64,
    nonce: String,
    user_id: String,
    corp_id: Option<String>,
}

/// Handles appauth: 200 with a fresh access token, or 400/401 with a JSON error.
pub(crate) async fn appauth(
    State(shared): State<Arc<Shared>>,
    Extension(rid): Extension<RequestId>,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    match check(&shared.config, &headers, &body) {
        Ok(auth) => issue(&shared, &auth).into_response(),
        Err(reject) => {
            shared.lock().stats.appauth_rejected += 1;
            tracing::debug!(reason = reject.msg, "simulator appauth rejected");
            let code = if reject.status == StatusCode::BAD_REQUEST {
                "USG.000000001"
            } else {
                "USG.000000003"
            };
            api_error(reject.status, code, reject.msg, &rid)
        }
    }
}

/// Runs every check in order; the first failure wins.
fn check(cfg: &Config, headers: &HeaderMap, body: &[u8]) -> Result<AuthBody, Reject> {
    let signature = check_headers(cfg, headers)?;
    let auth = parse_body(body)?;
    check_body(cfg, &auth)?;
    check_signature(cfg, &auth, &signature)?;
    Ok(auth)
}

/// Checks `Authorization: HMAC-SHA256 signature=<hex>,access=<base64 appId>` and
/// `X-Token-Type: LongTicket`; returns the signature.
fn check_headers(cfg: &Config, headers: &HeaderMap) -> Result<String, Reject> {
    let value = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .ok_or(unauthorized("missing Authorization header"))?;
    let params = value
        .strip_prefix("HMAC-SHA256 ")
        .ok_or(unauthorized("Authorization must start with HMAC-SHA256"))?;
    let (mut signature, mut access) = (None, None);
    for part in params.split(',') {
        match part.trim().split_once('=') {
            Some(("signature", v)) => signature = Some(v.to_string()),
            Some(("access", v)) => access = Some(v.to_string()),
            _ => return Err(unauthorized("malformed Authorization parameter")),
        }
    }
    let signature = signature.ok_or(unauthorized("Authorization lacks signature"))?;
    let access = access.ok_or(unauthorized("Authorization lacks access"))?;
    let decoded = base64::engine::general_purpose::STANDARD
        .decode(access.as_bytes())
        .map_err(|_| unauthorized("access is not base64"))?;
    if decoded != cfg.app_id.as_bytes() {
        return Err(unauthorized("access does not name this appId"));
    }
    if headers.get("x-token-type").and_then(|v| v.to_str().ok()) != Some("LongTicket") {
        return Err(unauthorized("X-Token-Type must be LongTicket"));
    }
    Ok(signature)
}

/// Parses the JSON body; wrong shapes and types are a 400.
fn parse_body(body: &[u8]) -> Result<AuthBody, Reject> {
    let value: Value = serde_json::from_slice(body).map_err(|_| bad_request("body is not JSON"))?;
    let obj = value
        .as_object()
        .ok_or(bad_request("body is not a JSON object"))?;
    let app_id = required_str(obj, "appId")?;
    let client_type = obj.get("clientType").and_then(Value::as_i64);
    if client_type != Some(72) {
        return Err(bad_request("clientType must be the integer 72"));
    }
    let expire_time = obj
        .get("expireTime")
        .and_then(Value::as_i64)
        .ok_or(bad_request("expireTime must be an integer"))?;
    let nonce = required_str(obj, "nonce")?;
    let user_id = optional_str(obj, "userId")?.unwrap_or_default();
    let corp_id = optional_str(obj, "corpId")?;
    Ok(AuthBody {
        app_id,
        expire_time,
        nonce,
        user_id,
        corp_id,
    })
}

fn required_str(obj: &Map<String, Value>, key: &str) -> Result<String, Reject> {
    match obj.get(key) {
        Some(Value::String(s)) => Ok(s.clone()),
        _ => Err(bad_request("a required string field is missing")),
    }
}

/// An optional string field: absent and `null` are `None`, other types a 400.
fn optional_str(obj: &Map<String, Value>, key: &str) -> Result<Option<String>, Reject> {
    match obj.get(key) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => Ok(Some(s.clone())),
        Some(_) => Err(bad_request("an optional field has the wrong type")),
    }
}

/// The semantic checks: appId, nonce, expireTime, userId, corpId.
fn check_body(cfg: &Config, auth: &AuthBody) -> Result<(), Reject> {
    if auth.app_id != cfg.app_id {
        return Err(unauthorized("unknown appId"));
    }
    if !(32..=64).contains(&auth.nonce.chars().count()) {
        return Err(unauthorized("nonce must be 32 to 64 characters"));
    }
    if auth.expire_time > MAX_EXPIRE_SECS {
        return Err(unauthorized(
            "expireTime looks like milliseconds; it is in seconds",
        ));
    }
    if auth.expire_time != 0 && auth.expire_time < Millis::now().as_secs() {
        return Err(unauthorized("expireTime is in the past"));
    }
    let user_ok = match &cfg.user_id {
        Some(user) => auth.user_id == *user,
        None => auth.user_id.is_empty(),
    };
    if !user_ok {
        return Err(unauthorized("userId does not match"));
    }
    if auth.corp_id != cfg.corp_id {
        return Err(unauthorized("corpId does not match the tenant mode"));
    }
    Ok(())
}

/// Verifies the hex HMAC-SHA256 (any case) over the documented string, in constant time.
fn check_signature(cfg: &Config, auth: &AuthBody, signature: &str) -> Result<(), Reject> {
    let bad = || unauthorized("signature mismatch");
    let given = hex::decode(signature).map_err(|_| bad())?;
    let mut mac = Hmac::<Sha256>::new_from_slice(cfg.app_key.as_bytes()).map_err(|_| bad())?;
    mac.update(signed_string(auth).as_bytes());
    mac.verify_slice(&given).map_err(|_| bad())
}

/// `appId:userId:expireTime:nonce`, or `appId:corpId:userId:expireTime:nonce` in SP mode.
fn signed_string(auth: &AuthBody) -> String {
    match &auth.corp_id {
        Some(corp) => format!(
            "{}:{corp}:{}:{}:{}",
            auth.app_id, auth.user_id, auth.expire_time, auth.nonce
        ),
        None => format!(
            "{}:{}:{}:{}",
            auth.app_id, auth.user_id, auth.expire_time, auth.nonce
        ),
    }
}

/// Issues an access token and builds the documented 200 body.
fn issue(shared: &Shared, auth: &AuthBody) -> Json<Value> {
    let cfg = &shared.config;
    let ttl = cfg.access_token_ttl;
    let user = format!("{}/{}", auth.corp_id.as_deref().unwrap_or(""), auth.user_id);
    let token = {
        let mut inner = shared.lock();
        inner.stats.appauth_ok += 1;
        inner.issue_access_token(&user, ttl)
    };
    let now = Millis::now();
    let valid = i64::try_from(ttl.as_secs()).unwrap_or(i64::MAX);
    Json(json!({
        "accessToken": token,
        "validPeriod": valid,
        "expireTime": now.as_secs().saturating_add(valid),
        "createTime": now.as_unix_ms(),
        "refreshToken": random_alnum(48),
        "refreshValidPeriod": valid.saturating_mul(2),
        "refreshExpireTime": now.as_secs().saturating_add(valid.saturating_mul(2)),
        "clientType": 72,
        "user": {
            "userId": if auth.user_id.is_empty() { cfg.app_id.clone() } else { auth.user_id.clone() },
            "appId": cfg.app_id,
            "corpId": auth.corp_id.clone().unwrap_or_default(),
            "name": "Simulated API user",
            "userType": 2,
            "adminType": 0,
        },
    }))
}
