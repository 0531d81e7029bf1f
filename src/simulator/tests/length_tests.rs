//! The download host without announced lengths (`no_length`) and with
//! first transfers that end cleanly half way (`end_first_transfer_early`):
//! together, a truncation that nothing on the wire shows.

use reqwest::StatusCode;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, TRANSFER_ENCODING};

use super::*;
use crate::simulator::{Faults, Scenario, SimMeeting};

const CONF: &str = "0123456789abcdef0123456789abcdef";
const SIZE: usize = 300_000;

/// A simulator with one meeting of two Hd files and these faults, plus an
/// access token and the meeting.
async fn ready(faults: Faults) -> (Simulator, String, SimMeeting) {
    let m = SimMeeting::standard(CONF, "Lengths", 2, &["Hd"], SIZE);
    let (sim, sc) = start_scenario(Scenario {
        meetings: vec![m.clone()],
        faults,
        ..Scenario::default()
    })
    .await;
    let token = access_token(&sim, &sc).await;
    (sim, token, m)
}

fn header(resp: &reqwest::Response, name: reqwest::header::HeaderName) -> Option<String> {
    resp.headers()
        .get(name)
        .and_then(|v| v.to_str().ok())
        .map(str::to_owned)
}

#[tokio::test]
async fn no_length_sends_chunked_bodies_star_totals_and_bare_416s() {
    let faults = Faults {
        no_length: true,
        ..Faults::default()
    };
    let (sim, token, m) = ready(faults).await;
    let entries = fresh_urls(&sim, &token, CONF).await;
    let whole = fetch(&entries[0].2, &entries[0].0, None).await;
    assert_eq!(whole.status(), StatusCode::OK);
    assert_eq!(header(&whole, CONTENT_LENGTH), None);
    assert_eq!(
        header(&whole, TRANSFER_ENCODING).as_deref(),
        Some("chunked")
    );
    assert_eq!(
        &whole.bytes().await.expect("body")[..],
        &m.files[0].content()[..]
    );

    let ranged = fetch(&entries[1].2, &entries[1].0, Some("bytes=1000-")).await;
    assert_eq!(ranged.status(), StatusCode::PARTIAL_CONTENT);
    assert_eq!(header(&ranged, CONTENT_LENGTH), None);
    let expected = format!("bytes 1000-{}/*", SIZE - 1);
    assert_eq!(header(&ranged, CONTENT_RANGE), Some(expected));
    assert_eq!(
        &ranged.bytes().await.expect("body")[..],
        &m.files[1].content()[1000..]
    );

    let entries = fresh_urls(&sim, &token, CONF).await;
    let at_end = format!("bytes={SIZE}-");
    let probe = fetch(&entries[0].2, &entries[0].0, Some(&at_end)).await;
    assert_eq!(probe.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    assert_eq!(header(&probe, CONTENT_RANGE), None, "no total, even here");
    let stats = sim.stats();
    assert_eq!(
        (stats.downloads_completed, stats.download_faults_injected),
        (2, 0)
    );
    let by_path = sim.download_requests_by_path();
    assert_eq!(by_path.get(&m.files[0].path), Some(&2), "{by_path:?}");
    assert_eq!(by_path.get(&m.files[1].path), Some(&1), "{by_path:?}");
}

#[tokio::test]
async fn with_lengths_a_416_still_names_the_size() {
    let (sim, token, _) = ready(Faults::default()).await;
    let entries = fresh_urls(&sim, &token, CONF).await;
    let beyond = format!("bytes={}-", SIZE + 10);
    let probe = fetch(&entries[0].2, &entries[0].0, Some(&beyond)).await;
    assert_eq!(probe.status(), StatusCode::RANGE_NOT_SATISFIABLE);
    let expected = format!("bytes */{SIZE}");
    assert_eq!(header(&probe, CONTENT_RANGE), Some(expected));
}

#[tokio::test]
async fn an_early_end_without_length_is_a_clean_short_body_once_per_file() {
    let faults = Faults {
        no_length: true,
        end_first_transfer_early: true,
        ..Faults::default()
    };
    let (sim, token, m) = ready(faults).await;
    let entries = fresh_urls(&sim, &token, CONF).await;
    let first = fetch(&entries[0].2, &entries[0].0, None).await;
    assert_eq!(first.status(), StatusCode::OK);
    let short = first.bytes().await.expect("a clean end, not an error");
    assert_eq!(short.len(), SIZE / 2);
    assert_eq!(&short[..], &m.files[0].content()[..SIZE / 2]);

    // The other file's first transfer ends early too, even when ranged.
    let ranged = fetch(&entries[1].2, &entries[1].0, Some("bytes=100000-")).await;
    assert_eq!(ranged.status(), StatusCode::PARTIAL_CONTENT);
    let part = ranged.bytes().await.expect("a clean end");
    assert_eq!(part.len(), (SIZE - 100_000) / 2);

    // Later transfers are whole.
    let entries = fresh_urls(&sim, &token, CONF).await;
    let again = fetch(&entries[0].2, &entries[0].0, None).await;
    assert_eq!(
        &again.bytes().await.expect("body")[..],
        &m.files[0].content()[..]
    );
    let stats = sim.stats();
    assert_eq!(
        (stats.download_faults_injected, stats.downloads_completed),
        (2, 1)
    );
}

#[tokio::test]
async fn an_early_end_with_a_content_length_is_a_detectable_short_body() {
    let faults = Faults {
        end_first_transfer_early: true,
        ..Faults::default()
    };
    let (sim, token, _) = ready(faults).await;
    let entries = fresh_urls(&sim, &token, CONF).await;
    let first = fetch(&entries[0].2, &entries[0].0, None).await;
    assert_eq!(first.content_length(), Some(SIZE as u64));
    assert!(
        first.bytes().await.is_err(),
        "a body shorter than its Content-Length is an error"
    );
    assert_eq!(sim.stats().download_faults_injected, 1);
}
