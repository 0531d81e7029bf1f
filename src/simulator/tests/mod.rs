//! Tests of the simulator against its real HTTP servers: a tiny appauth signer
//! and request helpers, then one module per area.

mod api_tests;
mod auth_tests;
mod download_tests;
mod length_tests;
mod unit_tests;

use base64::Engine;
use hmac::{Hmac, KeyInit, Mac};
use reqwest::StatusCode;
use serde_json::{Value, json};
use sha2::Sha256;

use super::{Scenario, SimMeeting, Simulator};

pub(super) const APPAUTH: &str = "/v2/usg/acs/auth/appauth";
pub(super) const FILES: &str = "/v1/mmc/management/record/files";
pub(super) const URLS: &str = "/v1/mmc/management/record/downloadurls";

/// A client that never goes through a proxy from the environment.
/// A download request with a raw token and an optional `Range`.
pub(super) async fn fetch(url: &str, token: &str, range: Option<&str>) -> reqwest::Response {
    let mut req = client().get(url).header("Authorization", token);
    if let Some(range) = range {
        req = req.header("Range", range);
    }
    req.send().await.expect("download request is sent")
}

pub(super) fn client() -> reqwest::Client {
    reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("test client builds")
}

/// Lowercase hex HMAC-SHA256 of `msg` keyed by `key`.
pub(super) fn hmac_hex(key: &str, msg: &str) -> String {
    let mut mac = Hmac::<Sha256>::new_from_slice(key.as_bytes()).expect("any key length");
    mac.update(msg.as_bytes());
    hex::encode(mac.finalize().into_bytes())
}

/// Unix seconds now.
pub(super) fn now_secs() -> i64 {
    crate::clock::Millis::now().as_secs()
}

/// A 40-character nonce.
pub(super) fn nonce() -> String {
    "0123456789abcdefghij0123456789ABCDEFGHIJ".to_string()
}

/// A correctly signed appauth request for `sc`: (Authorization header, body).
pub(super) fn signed(sc: &Scenario, expire: i64, nonce: &str) -> (String, Value) {
    let user = sc.user_id.clone().unwrap_or_default();
    let msg = match &sc.corp_id {
        Some(corp) => format!("{}:{corp}:{user}:{expire}:{nonce}", sc.app_id),
        None => format!("{}:{user}:{expire}:{nonce}", sc.app_id),
    };
    let access = base64::engine::general_purpose::STANDARD.encode(&sc.app_id);
    let header = format!(
        "HMAC-SHA256 signature={},access={access}",
        hmac_hex(&sc.app_key, &msg)
    );
    let mut body =
        json!({"appId": sc.app_id, "clientType": 72, "expireTime": expire, "nonce": nonce});
    if let Some(user) = &sc.user_id {
        body["userId"] = json!(user);
    }
    if let Some(corp) = &sc.corp_id {
        body["corpId"] = json!(corp);
    }
    (header, body)
}

/// POSTs an appauth request with `X-Token-Type: LongTicket`.
pub(super) async fn post_auth(sim: &Simulator, header: &str, body: &Value) -> reqwest::Response {
    client()
        .post(format!("{}{APPAUTH}", sim.api_base()))
        .header("Authorization", header)
        .header("X-Token-Type", "LongTicket")
        .json(body)
        .send()
        .await
        .expect("appauth request is sent")
}

/// Authenticates as `sc` and returns the access token.
pub(super) async fn access_token(sim: &Simulator, sc: &Scenario) -> String {
    let (header, body) = signed(sc, now_secs() + 600, &nonce());
    let resp = post_auth(sim, &header, &body).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let body: Value = resp.json().await.expect("appauth answers JSON");
    body["accessToken"]
        .as_str()
        .expect("accessToken")
        .to_string()
}

/// GETs an API path with an access token and query; returns status, headers and JSON (or Null).
pub(super) async fn get_api(
    sim: &Simulator,
    path: &str,
    token: Option<&str>,
    query: &[(&str, &str)],
) -> (StatusCode, reqwest::header::HeaderMap, Value) {
    let mut req = client()
        .get(format!("{}{path}", sim.api_base()))
        .query(query);
    if let Some(token) = token {
        req = req.header("X-Access-Token", token);
    }
    let resp = req.send().await.expect("API request is sent");
    let (status, headers) = (resp.status(), resp.headers().clone());
    let text = resp.text().await.expect("API body is read");
    (
        status,
        headers,
        serde_json::from_str(&text).unwrap_or(Value::Null),
    )
}

/// A started simulator with these meetings, plus the scenario it was started from.
pub(super) async fn start_with(meetings: Vec<SimMeeting>) -> (Simulator, Scenario) {
    start_scenario(Scenario {
        meetings,
        ..Scenario::default()
    })
    .await
}

/// Starts `sc` and keeps a copy of it.
pub(super) async fn start_scenario(sc: Scenario) -> (Simulator, Scenario) {
    let sim = Simulator::start(sc.clone())
        .await
        .expect("simulator starts");
    (sim, sc)
}

/// The `(token, fileType, url)` triples of one downloadurls answer.
pub(super) fn url_entries(body: &Value) -> Vec<(String, String, String)> {
    body["recordUrls"]
        .as_array()
        .into_iter()
        .flatten()
        .flat_map(|r| r["urls"].as_array().cloned().unwrap_or_default())
        .map(|u| {
            let s = |k: &str| u[k].as_str().unwrap_or_default().to_string();
            (s("token"), s("fileType"), s("url"))
        })
        .collect()
}

/// Fresh download entries for a meeting (one downloadurls call with limit 500).
pub(super) async fn fresh_urls(
    sim: &Simulator,
    token: &str,
    conf: &str,
) -> Vec<(String, String, String)> {
    let query = [("confUUID", conf), ("limit", "500")];
    let (status, _, body) = get_api(sim, URLS, Some(token), &query).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    url_entries(&body)
}
