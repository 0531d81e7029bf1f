//! appauth: the signature, the strict field checks, token eviction and expiry.

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::*;
use crate::simulator::Scenario;

/// Asserts a 401 `USG.000000003` whose `request_id` matches the header.
async fn assert_rejected(resp: reqwest::Response, status: StatusCode) {
    assert_eq!(resp.status(), status);
    let rid = resp.headers()["x-request-id"]
        .to_str()
        .expect("ascii")
        .to_string();
    let body: Value = resp.json().await.expect("JSON error body");
    assert_eq!(body["request_id"], json!(rid));
    assert!(
        body["error_code"]
            .as_str()
            .is_some_and(|c| c.starts_with("USG.")),
        "{body}"
    );
}

#[tokio::test]
async fn appauth_accepts_a_correct_signature() {
    let (sim, sc) = start_with(vec![]).await;
    let (header, request) = signed(&sc, now_secs() + 600, &nonce());
    let resp = post_auth(&sim, &header, &request).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert!(resp.headers().contains_key("x-request-id"));
    let body: Value = resp.json().await.expect("JSON");
    let token = body["accessToken"].as_str().expect("accessToken");
    assert_eq!(token.len(), 48);
    assert!(token.chars().all(|c| c.is_ascii_alphanumeric()));
    assert_eq!(body["validPeriod"], json!(43_200));
    let expire = body["expireTime"].as_i64().expect("expireTime");
    assert!((expire - now_secs() - 43_200).abs() < 5);
    assert!(body["createTime"].as_i64().expect("createTime") > 100_000_000_000);
    for key in ["refreshToken", "refreshValidPeriod", "user"] {
        assert!(!body[key].is_null(), "missing {key}");
    }
    let (sig_part, access) = header.split_once(",access=").expect("access part");
    let (prefix, sig) = sig_part.split_once("signature=").expect("signature part");
    let upper = format!("{prefix}signature={},access={access}", sig.to_uppercase());
    assert_eq!(
        post_auth(&sim, &upper, &request).await.status(),
        StatusCode::OK
    );
    assert_eq!(sim.stats().appauth_ok, 2);
}

#[tokio::test]
async fn appauth_rejects_bad_requests() {
    let (sim, sc) = start_with(vec![]).await;
    let soon = now_secs() + 600;
    let wrong_key = Scenario {
        app_key: "not-the-key".into(),
        ..sc.clone()
    };
    let (bad_sig, body) = signed(&wrong_key, soon, &nonce());
    assert_rejected(
        post_auth(&sim, &bad_sig, &body).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;

    let short = &nonce()[..31];
    let (header, body) = signed(&sc, soon, short);
    assert_rejected(
        post_auth(&sim, &header, &body).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;

    let (header, body) = signed(&sc, soon * 1000, &nonce());
    assert_rejected(
        post_auth(&sim, &header, &body).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;

    let (header, body) = signed(&sc, now_secs() - 60, &nonce());
    assert_rejected(
        post_auth(&sim, &header, &body).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;

    let (header, body) = signed(&sc, soon, &nonce());
    let (sig_part, _) = header.split_once(",access=").expect("access part");
    let wrong_access = format!("{sig_part},access=b3RoZXItYXBw");
    assert_rejected(
        post_auth(&sim, &wrong_access, &body).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;

    let no_prefix = header.replace("HMAC-SHA256 ", "");
    assert_rejected(
        post_auth(&sim, &no_prefix, &body).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;

    let mut wrong_client = body.clone();
    wrong_client["clientType"] = json!(0);
    assert_rejected(
        post_auth(&sim, &header, &wrong_client).await,
        StatusCode::BAD_REQUEST,
    )
    .await;

    let resp = client()
        .post(format!("{}{APPAUTH}", sim.api_base()))
        .header("Authorization", &header)
        .json(&body)
        .send()
        .await
        .expect("sent");
    assert_rejected(resp, StatusCode::UNAUTHORIZED).await;

    let resp = client()
        .post(format!("{}{APPAUTH}", sim.api_base()))
        .header("Authorization", &header)
        .header("X-Token-Type", "LongTicket")
        .body("{not json")
        .send()
        .await
        .expect("sent");
    assert_rejected(resp, StatusCode::BAD_REQUEST).await;
    let stats = sim.stats();
    assert_eq!((stats.appauth_ok, stats.appauth_rejected), (0, 9));
}

#[tokio::test]
async fn appauth_expire_time_zero_means_never() {
    let (sim, sc) = start_with(vec![]).await;
    let (header, body) = signed(&sc, 0, &nonce());
    assert_eq!(
        post_auth(&sim, &header, &body).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn appauth_checks_user_and_sp_corp() {
    let sp = Scenario {
        user_id: Some("archiver".into()),
        corp_id: Some("corp-42".into()),
        ..Scenario::default()
    };
    let (sim, sc) = start_scenario(sp).await;
    let (header, body) = signed(&sc, now_secs() + 600, &nonce());
    assert_eq!(
        post_auth(&sim, &header, &body).await.status(),
        StatusCode::OK
    );
    let mut no_corp = body.clone();
    no_corp.as_object_mut().expect("object").remove("corpId");
    assert_rejected(
        post_auth(&sim, &header, &no_corp).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    let mut other_user = body.clone();
    other_user["userId"] = json!("someone-else");
    assert_rejected(
        post_auth(&sim, &header, &other_user).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
    // The single-enterprise signature string (no corpId) does not verify in SP mode.
    let single = Scenario {
        corp_id: None,
        ..sc.clone()
    };
    let (single_header, _) = signed(&single, body["expireTime"].as_i64().unwrap_or(0), &nonce());
    assert_rejected(
        post_auth(&sim, &single_header, &body).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;

    let (plain, plain_sc) = start_with(vec![]).await;
    let (header, mut body) = signed(&plain_sc, now_secs() + 600, &nonce());
    body["corpId"] = json!("corp-42");
    assert_rejected(
        post_auth(&plain, &header, &body).await,
        StatusCode::UNAUTHORIZED,
    )
    .await;
}

#[tokio::test]
async fn the_65th_token_evicts_the_oldest() {
    let (sim, sc) = start_with(vec![]).await;
    let mut tokens = Vec::new();
    for _ in 0..65 {
        tokens.push(access_token(&sim, &sc).await);
    }
    let query = [("startDate", "0"), ("endDate", "0")];
    let (status, _, body) = get_api(&sim, FILES, Some(&tokens[0]), &query).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error_code"], json!("USG.000000004"));
    for token in [&tokens[1], &tokens[64]] {
        let (status, _, _) = get_api(&sim, FILES, Some(token), &query).await;
        assert_eq!(status, StatusCode::OK);
    }
}

#[tokio::test]
async fn business_call_without_token_is_401() {
    let (sim, sc) = start_with(vec![]).await;
    let query = [("startDate", "0"), ("endDate", "0")];
    let (status, headers, body) = get_api(&sim, FILES, None, &query).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error_code"], json!("USG.000000004"));
    assert_eq!(
        body["request_id"].as_str(),
        headers["x-request-id"].to_str().ok()
    );
    let (status, _, _) = get_api(&sim, URLS, Some("made-up"), &[("confUUID", "x")]).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let token = access_token(&sim, &sc).await;
    let resp = client()
        .get(format!("{}{FILES}", sim.api_base()))
        .query(&query)
        .header("X-Access-Token", &token)
        .header("X-Authorization-Type", "X-Access-Token")
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), StatusCode::OK);
    let stats = sim.stats();
    assert_eq!(
        (stats.api_unauthorized, stats.deprecated_headers_seen),
        (2, 1)
    );
}

#[tokio::test]
async fn expired_access_tokens_get_401_until_reauth() {
    let (sim, sc) = start_with(vec![]).await;
    let token = access_token(&sim, &sc).await;
    let query = [("startDate", "0"), ("endDate", "0")];
    assert_eq!(
        get_api(&sim, FILES, Some(&token), &query).await.0,
        StatusCode::OK
    );
    sim.expire_access_tokens();
    let (status, _, body) = get_api(&sim, FILES, Some(&token), &query).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert_eq!(body["error_code"], json!("USG.000000004"));
    let fresh = access_token(&sim, &sc).await;
    assert_eq!(
        get_api(&sim, FILES, Some(&fresh), &query).await.0,
        StatusCode::OK
    );
}
