//! Polls of many meetings (issue 12): `cloud.max_requests_per_minute`
//! spaces API calls so that a poll stays under the gateway's throttle
//! (429 `APIG.0308` past a budget per window) instead of bursting into it.
//! The simulator's window is shortened to 300 ms so that a test takes
//! about a second; the arithmetic is the real one scaled down.

use std::time::Duration;

use meeting_archiver::simulator::{Faults, SimMeeting};

use crate::helpers::*;

fn meetings(n: usize) -> Vec<SimMeeting> {
    (0..n)
        .map(|i| SimMeeting::standard(&format!("{i:032x}"), "Paced", 1, &["Hd"], 1024))
        .collect()
}

/// Six meetings (one appauth and six listings) against a gateway that lets
/// three calls through per 300 ms; `cap` requests a minute on our side.
async fn poll_against_the_throttle(cap: u32) -> (PollReportSummary, u64) {
    let env = TestEnv::start(scenario(meetings(6))).await;
    env.sim.set_faults(Faults {
        api_calls_per_minute: 3,
        api_throttle_window: Some(Duration::from_millis(300)),
        ..Faults::default()
    });
    let mut config = env.config();
    config.cloud.max_requests_per_minute = cap;
    config.poll.concurrency = 4;
    let engine = env.engine(&config);
    let report = poll(&engine, &config).await;
    let summary = PollReportSummary {
        meetings: report.meetings,
        errors: report.errors.len(),
    };
    (summary, env.sim.stats().api_faults_injected)
}

#[derive(Debug, PartialEq)]
struct PollReportSummary {
    meetings: usize,
    errors: usize,
}

#[tokio::test]
async fn a_capped_poll_stays_under_the_gateways_throttle() {
    // 400 a minute: one call every 150 ms, at most two per 300 ms window.
    let (report, throttled) = poll_against_the_throttle(400).await;
    assert_eq!(
        report,
        PollReportSummary {
            meetings: 6,
            errors: 0
        }
    );
    assert_eq!(throttled, 0, "no call was refused with 429 APIG.0308");
}

#[tokio::test]
async fn an_uncapped_poll_bursts_into_the_throttle() {
    // The fault the cap prevents: the same poll without it is refused
    // (and only gets through by retrying).
    let (report, throttled) = poll_against_the_throttle(0).await;
    assert_eq!(report.meetings, 6);
    assert!(throttled > 0, "the burst was throttled");
}
