//! The download host: single-use tokens, Range, dead-token answers, faults
//! and hostile raw paths.

use std::time::Duration;

use reqwest::StatusCode;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use super::*;
use crate::simulator::{Faults, Scenario, SimFile, SimMeeting, TokenAnswer};

const CONF: &str = "fedcba9876543210fedcba9876543210";
const SIZE: usize = 300_000;

fn meeting() -> SimMeeting {
    SimMeeting::standard(CONF, "Downloads", 1, &["Hd", "Aux"], SIZE)
}

/// A started simulator from `sc` (plus [`meeting`]) and an access token.
async fn ready(sc: Scenario) -> (Simulator, String, SimMeeting) {
    let m = meeting();
    let (sim, sc) = start_scenario(Scenario {
        meetings: vec![m.clone()],
        ..sc
    })
    .await;
    let token = access_token(&sim, &sc).await;
    (sim, token, m)
}

#[tokio::test]
async fn a_download_token_works_once() {
    let (sim, token, m) = ready(Scenario::default()).await;
    let (dl_token, _, url) = fresh_urls(&sim, &token, CONF).await.remove(0);
    let resp = fetch(&url, &dl_token, None).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.headers()["content-type"], "video/mp4");
    assert_eq!(resp.content_length(), Some(SIZE as u64));
    let body = resp.bytes().await.expect("whole body");
    assert_eq!(&body[..], &m.files[0].content()[..]);
    let again = fetch(&url, &dl_token, None).await;
    assert_eq!(again.status(), StatusCode::UNAUTHORIZED);
    let stats = sim.stats();
    assert_eq!(
        (stats.downloads_completed, stats.spent_token_reuses),
        (1, 1)
    );
    assert_eq!(
        (stats.download_requests, stats.bytes_served),
        (2, SIZE as u64)
    );
}

#[tokio::test]
async fn range_requests_get_206_or_the_whole_file() {
    let (sim, token, m) = ready(Scenario::default()).await;
    let entries = fresh_urls(&sim, &token, CONF).await;
    let resp = fetch(&entries[0].2, &entries[0].0, Some("bytes=1000-")).await;
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
    let expected_range = format!("bytes 1000-{}/{SIZE}", SIZE - 1);
    assert_eq!(
        resp.headers()["content-range"].to_str().ok(),
        Some(expected_range.as_str())
    );
    assert_eq!(resp.content_length(), Some((SIZE - 1000) as u64));
    assert_eq!(
        &resp.bytes().await.expect("body")[..],
        &m.files[0].content()[1000..]
    );
    let beyond = fetch(
        &entries[1].2,
        &entries[1].0,
        Some(&format!("bytes={SIZE}-")),
    )
    .await;
    assert_eq!(beyond.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    sim.set_range_support(false);
    let entries = fresh_urls(&sim, &token, CONF).await;
    let resp = fetch(&entries[0].2, &entries[0].0, Some("bytes=1000-")).await;
    assert_eq!(resp.status(), StatusCode::OK);
    assert_eq!(resp.bytes().await.expect("body").len(), SIZE);
    assert_eq!(sim.stats().ranged_requests, 1);
}

#[tokio::test]
async fn cut_first_transfer_breaks_only_the_first() {
    let faults = Faults {
        cut_first_transfer: true,
        ..Faults::default()
    };
    let (sim, token, m) = ready(Scenario {
        faults,
        ..Scenario::default()
    })
    .await;
    let (dl_token, _, url) = fresh_urls(&sim, &token, CONF).await.remove(0);
    let mut resp = fetch(&url, &dl_token, None).await;
    assert_eq!(resp.status(), StatusCode::OK);
    let mut received = 0;
    let broke = loop {
        match resp.chunk().await {
            Ok(Some(chunk)) => received += chunk.len(),
            Ok(None) => break false,
            Err(_) => break true,
        }
    };
    assert!(broke, "the first transfer must break");
    assert!(received > 0 && received <= SIZE / 2, "received {received}");
    let (dl_token, _, url) = fresh_urls(&sim, &token, CONF).await.remove(0);
    let resp = fetch(&url, &dl_token, Some("bytes=100-")).await;
    assert_eq!(resp.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(
        &resp.bytes().await.expect("second succeeds")[..],
        &m.files[0].content()[100..]
    );
    let stats = sim.stats();
    assert_eq!(
        (stats.download_faults_injected, stats.downloads_completed),
        (1, 1)
    );
    assert!(stats.bytes_served < (2 * SIZE) as u64);
}

#[tokio::test]
async fn dead_tokens_get_the_configured_answer() {
    let sc = Scenario {
        spent_token_answer: TokenAnswer::JsonError200,
        download_token_ttl: Duration::ZERO,
        ..Scenario::default()
    };
    let (sim, token, _) = ready(sc).await;
    let entries = fresh_urls(&sim, &token, CONF).await;
    let expired = fetch(&entries[0].2, &entries[0].0, None).await;
    assert_eq!(expired.status(), StatusCode::OK);
    assert_eq!(expired.headers()["content-type"], "application/json");
    let unknown = fetch(&entries[0].2, &"0".repeat(64), None).await;
    assert_eq!(unknown.status(), StatusCode::OK);
    let stats = sim.stats();
    assert_eq!(
        (
            stats.expired_token_uses,
            stats.unknown_token_uses,
            stats.downloads_completed
        ),
        (1, 1, 0)
    );
}

#[tokio::test]
async fn a_token_for_another_file_is_403_and_unknown_paths_404() {
    let (sim, token, _) = ready(Scenario::default()).await;
    let entries = fresh_urls(&sim, &token, CONF).await;
    assert_eq!(
        fetch(&entries[1].2, &entries[0].0, None).await.status(),
        StatusCode::FORBIDDEN
    );
    let missing = format!("{}/download/nothing/here.mp4", sim.download_base());
    assert_eq!(
        fetch(&missing, &entries[1].0, None).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        fetch(&entries[1].2, &entries[1].0, None).await.status(),
        StatusCode::OK
    );
}

#[tokio::test]
async fn a_missing_file_stays_listed_answers_404_and_spends_its_token() {
    let (sim, token, m) = ready(Scenario::default()).await;
    sim.set_faults(Faults {
        missing_files: vec![m.files[0].path.clone()],
        ..Faults::default()
    });
    let entries = fresh_urls(&sim, &token, CONF).await;
    assert_eq!(entries.len(), 2, "still listed");
    let (missing, present): (Vec<_>, Vec<_>) = entries
        .iter()
        .partition(|(_, _, url)| url.ends_with(&m.files[0].path));
    let (dl_token, _, url) = missing[0];
    assert_eq!(
        fetch(url, dl_token, None).await.status(),
        StatusCode::NOT_FOUND
    );
    assert_eq!(
        fetch(url, dl_token, None).await.status(),
        StatusCode::UNAUTHORIZED,
        "the 404 spent the token"
    );
    let (dl_token, _, url) = present[0];
    assert_eq!(fetch(url, dl_token, None).await.status(), StatusCode::OK);
}

#[tokio::test]
async fn download_faults_500_json_and_short_bodies() {
    let (sim, token, _) = ready(Scenario::default()).await;
    sim.set_faults(Faults {
        download_500: 1.0,
        ..Faults::default()
    });
    let e = fresh_urls(&sim, &token, CONF).await.remove(0);
    assert_eq!(
        fetch(&e.2, &e.0, None).await.status(),
        StatusCode::INTERNAL_SERVER_ERROR
    );
    sim.set_faults(Faults {
        download_json_200: 1.0,
        ..Faults::default()
    });
    let e = fresh_urls(&sim, &token, CONF).await.remove(0);
    let resp = fetch(&e.2, &e.0, None).await;
    assert_eq!(
        (resp.status(), resp.headers()["content-type"].clone()),
        (StatusCode::OK, "application/json".parse().expect("value"))
    );
    sim.set_faults(Faults {
        download_wrong_length: 1.0,
        ..Faults::default()
    });
    let e = fresh_urls(&sim, &token, CONF).await.remove(0);
    let resp = fetch(&e.2, &e.0, None).await;
    assert_eq!(resp.content_length(), Some(SIZE as u64));
    assert!(
        resp.bytes().await.is_err(),
        "a body shorter than its Content-Length is an error"
    );
    let stats = sim.stats();
    assert_eq!(
        (stats.download_faults_injected, stats.downloads_completed),
        (3, 0)
    );
}

#[tokio::test]
async fn slow_downloads_take_time() {
    let faults = Faults {
        slow_bytes_per_sec: Some(1_000_000),
        ..Faults::default()
    };
    let (sim, token, _) = ready(Scenario {
        faults,
        ..Scenario::default()
    })
    .await;
    let e = fresh_urls(&sim, &token, CONF).await.remove(0);
    let started = std::time::Instant::now();
    let body = fetch(&e.2, &e.0, None).await.bytes().await.expect("body");
    assert_eq!(body.len(), SIZE);
    assert!(
        started.elapsed() >= Duration::from_millis(200),
        "{:?}",
        started.elapsed()
    );
}

/// Sends a raw HTTP/1.1 GET (no client-side path normalisation) and returns the answer.
async fn raw_get(base: &str, path: &str, token: &str) -> String {
    let addr = base.trim_start_matches("http://");
    let mut stream = tokio::net::TcpStream::connect(addr)
        .await
        .expect("connects");
    let request = format!(
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nAuthorization: {token}\r\nConnection: close\r\n\r\n"
    );
    stream
        .write_all(request.as_bytes())
        .await
        .expect("request written");
    let mut answer = Vec::new();
    stream.read_to_end(&mut answer).await.expect("answer read");
    String::from_utf8_lossy(&answer).into_owned()
}

#[tokio::test]
async fn hostile_paths_are_matched_raw() {
    let hostile = [
        "/download/x/..%2F..%2Fetc/passwd.mp4",
        "/download/x/%2E%2E/%2E%2E/evil.mp4",
    ];
    let files = hostile
        .iter()
        .enumerate()
        .map(|(i, path)| SimFile {
            file_type: "Hd".into(),
            path: path.to_string(),
            size: 1000,
            seed: i as u64,
        })
        .collect();
    let m = SimMeeting {
        files,
        ..SimMeeting::standard(CONF, "Hostile", 0, &[], 0)
    };
    let (sim, sc) = start_with(vec![m]).await;
    let token = access_token(&sim, &sc).await;
    let entries = fresh_urls(&sim, &token, CONF).await;
    assert_eq!(
        entries[0].2,
        format!("{}{}", sim.download_base(), hostile[0])
    );
    for (entry, path) in entries.iter().zip(hostile) {
        let answer = raw_get(&sim.download_base(), path, &entry.0).await;
        assert!(answer.starts_with("HTTP/1.1 200"), "{answer}");
    }
    let decoded = raw_get(&sim.download_base(), "/download/x/../../evil.mp4", "t").await;
    assert!(decoded.starts_with("HTTP/1.1 404"), "{decoded}");
}
