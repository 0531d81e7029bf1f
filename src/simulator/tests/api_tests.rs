//! record/files and downloadurls: paging, limits, required parameters,
//! not-ready meetings and API faults.

use std::collections::HashSet;

use reqwest::StatusCode;
use serde_json::{Value, json};

use super::*;
use crate::simulator::{Faults, Scenario, SimMeeting};

const CONF: &str = "0123456789abcdef0123456789abcdef";

fn big_meeting() -> SimMeeting {
    SimMeeting::standard(CONF, "Quarterly review", 9, &["Hd", "Sd", "Aux"], 1024)
}

#[tokio::test]
async fn downloadurls_pages_with_default_limit_20() {
    let (sim, sc) = start_with(vec![big_meeting()]).await;
    let token = access_token(&sim, &sc).await;
    let (status, _, body) = get_api(&sim, URLS, Some(&token), &[("confUUID", CONF)]).await;
    assert_eq!(status, StatusCode::OK);
    assert!(body.get("count").is_none() && body.get("total").is_none());
    assert_eq!(body["recordUrls"][0]["confUuid"], json!(CONF));
    let first = url_entries(&body);
    assert_eq!(first.len(), 20);
    let rest = [("confUUID", CONF), ("offset", "20")];
    let second = url_entries(&get_api(&sim, URLS, Some(&token), &rest).await.2);
    assert_eq!(second.len(), 7);
    let all = fresh_urls(&sim, &token, CONF).await;
    assert_eq!(all.len(), 27);
    let urls: HashSet<_> = first.iter().chain(&second).map(|e| e.2.clone()).collect();
    assert_eq!(urls, all.iter().map(|e| e.2.clone()).collect());
    let tokens: HashSet<_> = first
        .iter()
        .chain(&second)
        .chain(&all)
        .map(|e| e.0.clone())
        .collect();
    assert_eq!(tokens.len(), 54, "every call issues fresh tokens");
    for (token, file_type, url) in &all {
        assert_eq!(token.len(), 64);
        assert!(
            token
                .chars()
                .all(|c| c.is_ascii_digit() || ('a'..='f').contains(&c))
        );
        assert!(["Hd", "Sd", "Aux"].contains(&file_type.as_str()));
        assert!(url.starts_with(&format!("{}/download/{CONF}/video", sim.download_base())));
    }
    let stats = sim.stats();
    assert_eq!((stats.downloadurls_calls, stats.tokens_issued), (3, 54));
}

#[tokio::test]
async fn downloadurls_checks_its_parameters() {
    let (sim, sc) = start_with(vec![big_meeting()]).await;
    let token = access_token(&sim, &sc).await;
    for query in [
        vec![("confUUID", CONF), ("limit", "501")],
        vec![("confUUID", CONF), ("limit", "0")],
        vec![("confUUID", CONF), ("offset", "-1")],
        vec![("limit", "10")],
    ] {
        let (status, headers, body) = get_api(&sim, URLS, Some(&token), &query).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query:?}");
        assert_eq!(
            body["request_id"].as_str(),
            headers["x-request-id"].to_str().ok()
        );
    }
    let unknown = [("confUUID", "ffffffffffffffffffffffffffffffff")];
    let (status, _, body) = get_api(&sim, URLS, Some(&token), &unknown).await;
    assert_eq!(status, StatusCode::BAD_REQUEST);
    assert_eq!(body["error_code"], json!("MMC.111070005"));
}

#[tokio::test]
async fn not_ready_meetings_have_no_urls_for_their_first_calls() {
    let mut meeting = SimMeeting::standard(CONF, "Still transcoding", 1, &["Hd"], 100);
    meeting.not_ready_calls = 2;
    let (sim, sc) = start_with(vec![meeting]).await;
    let token = access_token(&sim, &sc).await;
    let window = [("startDate", "0"), ("endDate", "9999999999999")];
    for _ in 0..2 {
        let (_, _, list) = get_api(&sim, FILES, Some(&token), &window).await;
        assert_eq!(list["data"][0]["isDecodeFinish"], json!(false));
        let (status, _, body) = get_api(&sim, URLS, Some(&token), &[("confUUID", CONF)]).await;
        assert_eq!(status, StatusCode::OK);
        assert_eq!(body["recordUrls"], json!([]));
    }
    let (_, _, list) = get_api(&sim, FILES, Some(&token), &window).await;
    assert_eq!(list["data"][0]["isDecodeFinish"], json!(true));
    assert_eq!(fresh_urls(&sim, &token, CONF).await.len(), 1);
}

/// Three meetings an hour apart, starting at `base`.
fn three_meetings(base: i64) -> Vec<SimMeeting> {
    (0..3)
        .map(|i| {
            let mut m = SimMeeting::standard(
                &format!("{i:032x}"),
                &format!("Meeting {i}"),
                1,
                &["Hd"],
                10,
            );
            m.start = crate::clock::Millis::from_unix_ms(base + i * 3_600_000);
            m
        })
        .collect()
}

#[tokio::test]
async fn record_files_filters_by_date_and_sorts() {
    let base = 1_700_000_000_000;
    let (sim, sc) = start_with(three_meetings(base)).await;
    let token = access_token(&sim, &sc).await;
    let (start, end) = (base.to_string(), (base + 3_600_000).to_string());
    let window = [("startDate", start.as_str()), ("endDate", end.as_str())];
    let (status, _, body) = get_api(&sim, FILES, Some(&token), &window).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(
        (
            body["count"].clone(),
            body["offset"].clone(),
            body["limit"].clone()
        ),
        (json!(2), json!(0), json!(20))
    );
    let subjects: Vec<_> = body["data"]
        .as_array()
        .expect("data")
        .iter()
        .map(|d| d["subject"].clone())
        .collect();
    assert_eq!(subjects, vec![json!("Meeting 1"), json!("Meeting 0")]);
    let keys: HashSet<_> = body["data"][0]
        .as_object()
        .expect("item")
        .keys()
        .cloned()
        .collect();
    let expected = [
        "confUUID",
        "confID",
        "url",
        "rcdTime",
        "rcdSize",
        "subject",
        "scheduserName",
        "startTime",
        "isDecodeFinish",
        "decodeEndTime",
        "available",
        "recordAuthType",
    ];
    assert_eq!(keys, expected.iter().map(|k| k.to_string()).collect());
    assert_eq!(body["data"][1]["startTime"], json!("2023-11-14 22:13"));
    let asc = [
        ("startDate", start.as_str()),
        ("endDate", end.as_str()),
        ("sortType", "ASC_StartTIME"),
    ];
    let (_, _, body) = get_api(&sim, FILES, Some(&token), &asc).await;
    assert_eq!(body["data"][0]["subject"], json!("Meeting 0"));
}

#[tokio::test]
async fn record_files_requires_dates_in_ms_and_a_sane_limit() {
    let (sim, sc) = start_with(three_meetings(1_700_000_000_000)).await;
    let token = access_token(&sim, &sc).await;
    let ms = "1700000000000";
    for query in [
        vec![("startDate", ms)],
        vec![("endDate", ms)],
        vec![("startDate", "1700000000"), ("endDate", "1700003600")],
        vec![("startDate", ms), ("endDate", ms), ("limit", "501")],
        vec![("startDate", ms), ("endDate", "1600000000000")],
    ] {
        let (status, _, body) = get_api(&sim, FILES, Some(&token), &query).await;
        assert_eq!(status, StatusCode::BAD_REQUEST, "{query:?}: {body}");
    }
    assert_eq!(sim.stats().record_files_calls, 5);
}

#[tokio::test]
async fn record_files_offset_can_count_records_or_pages() {
    let base = 1_700_000_000_000;
    for (pages, offset, expected) in [(false, "1", "Meeting 1"), (true, "1", "Meeting 0")] {
        let sc = Scenario {
            meetings: three_meetings(base),
            record_offset_counts_pages: pages,
            ..Scenario::default()
        };
        let (sim, sc) = start_scenario(sc).await;
        let token = access_token(&sim, &sc).await;
        let query = [
            ("startDate", "0"),
            ("endDate", "9999999999999"),
            ("limit", "2"),
            ("offset", offset),
        ];
        let (_, _, body) = get_api(&sim, FILES, Some(&token), &query).await;
        assert_eq!(body["count"], json!(3));
        assert_eq!(body["data"][0]["subject"], json!(expected), "pages={pages}");
    }
}

#[tokio::test]
async fn api_faults_answer_429_500_and_html() {
    let (sim, sc) = start_with(vec![]).await;
    let token = access_token(&sim, &sc).await;
    let window = [("startDate", "0"), ("endDate", "0")];
    sim.set_faults(Faults {
        api_429: 1.0,
        ..Faults::default()
    });
    let (status, headers, body) = get_api(&sim, FILES, Some(&token), &window).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(headers.get("retry-after").is_none());
    assert_eq!(body["error_code"], json!("APIG.0308"));
    sim.set_faults(Faults {
        api_500: 1.0,
        ..Faults::default()
    });
    assert_eq!(
        get_api(&sim, FILES, Some(&token), &window).await.0,
        StatusCode::INTERNAL_SERVER_ERROR
    );
    sim.set_faults(Faults {
        api_html: 1.0,
        ..Faults::default()
    });
    let (status, headers, body) = get_api(&sim, FILES, Some(&token), &window).await;
    assert_eq!(status, StatusCode::OK);
    assert!(
        headers["content-type"]
            .to_str()
            .is_ok_and(|t| t.starts_with("text/html"))
    );
    assert_eq!(body, Value::Null);
    sim.set_faults(Faults::default());
    assert_eq!(
        get_api(&sim, FILES, Some(&token), &window).await.0,
        StatusCode::OK
    );
    assert_eq!(sim.stats().api_faults_injected, 3);
}

#[tokio::test]
async fn delete_removes_whole_meetings() {
    let (sim, sc) = start_with(three_meetings(1_700_000_000_000)).await;
    let token = access_token(&sim, &sc).await;
    let resp = client()
        .delete(format!("{}{FILES}", sim.api_base()))
        .query(&[("confUUIDs", format!("{:032x},{:032x}", 0, 2))])
        .header("X-Access-Token", &token)
        .send()
        .await
        .expect("sent");
    assert_eq!(resp.status(), StatusCode::OK);
    let window = [("startDate", "0"), ("endDate", "9999999999999")];
    let (_, _, body) = get_api(&sim, FILES, Some(&token), &window).await;
    assert_eq!(body["count"], json!(1));
    assert_eq!(sim.stats().meetings_deleted, 2);
}

#[tokio::test]
async fn the_throttle_profile_refuses_calls_beyond_the_minutes_budget() {
    let (sim, sc) = start_with(vec![]).await;
    let token = access_token(&sim, &sc).await;
    let window = [("startDate", "0"), ("endDate", "0")];
    sim.set_faults(Faults {
        api_calls_per_minute: 3,
        ..Faults::default()
    });
    for _ in 0..3 {
        assert_eq!(
            get_api(&sim, FILES, Some(&token), &window).await.0,
            StatusCode::OK
        );
    }
    let (status, _, body) = get_api(&sim, FILES, Some(&token), &window).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert_eq!(body["error_code"], json!("APIG.0308"));
}
