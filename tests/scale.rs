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

/// Runs the binary's `status` with `args` on the config written for `env`.
fn status_text(env: &TestEnv, config: &meeting_archiver::config::Config, args: &[&str]) -> String {
    let path = env.write_config(config);
    let out = assert_cmd::Command::cargo_bin("meeting-archiver")
        .expect("binary")
        .arg("--config")
        .arg(&path)
        .arg("status")
        .args(args)
        .timeout(TEST_TIMEOUT)
        .output()
        .expect("status runs");
    assert!(out.status.success(), "{out:?}");
    String::from_utf8(out.stdout).expect("utf-8")
}

#[tokio::test]
async fn status_shows_a_hostile_subject_and_listing_error_escaped_not_raw() {
    let hostile = "Board\x1b[2J\nNOW: fake line \u{202e}";
    let meeting = SimMeeting::standard(&format!("{:032x}", 7), hostile, 1, &["Hd"], 1024);
    let env = TestEnv::start(scenario(vec![meeting.clone()])).await;
    let mut config = env.config();
    config.poll.meetings.clear();
    config.poll.discover_days = 2;
    config.poll.recheck_for = Duration::from_secs(3600);
    let outcome = env.sync(&config).await;
    assert_eq!(outcome.exit_code(), 0, "{outcome:?}");
    // The next listing fails with an answer that carries an escape too.
    {
        let mut ledger =
            meeting_archiver::ledger::Ledger::open(&env.ledger_path(), true).expect("ledger");
        ledger
            .record_poll_error(
                &meeting.conf_uuid,
                "HTTP 500: \x1b]0;owned\x07",
                meeting_archiver::clock::Millis::now(),
            )
            .expect("error recorded");
    }
    let escaped = "Board\\u{1b}[2J\\nNOW: fake line \\u{202e}";
    for args in [
        &["--meetings"][..],
        &[][..],
        &[meeting.conf_uuid.as_str()][..],
    ] {
        let text = status_text(&env, &config, args);
        assert!(
            !text.contains('\x1b') && !text.contains('\u{202e}') && !text.contains('\x07'),
            "status {args:?} printed a control character: {text:?}"
        );
        assert!(!text.lines().any(|l| l.starts_with("NOW: fake")), "{text}");
        assert!(
            text.contains("HTTP 500: \\u{1b}]0;owned\\u{7}"),
            "status {args:?}: {text}"
        );
        if !args.is_empty() {
            assert!(text.contains(escaped), "status {args:?}: {text}");
        }
    }
    // JSON keeps the text itself (serde escapes it).
    let doc: serde_json::Value =
        serde_json::from_str(&status_text(&env, &config, &["--json", "--meetings"])).expect("json");
    assert_eq!(doc["meeting_list"][0]["subject"], hostile);
}

#[tokio::test]
async fn a_listing_that_fails_at_the_end_of_the_recheck_period_is_retried_until_one_succeeds() {
    let env = TestEnv::start(scenario(meetings(1))).await;
    let mut config = env.config();
    config.poll.recheck_for = Duration::from_millis(500);
    let outcome = env.sync(&config).await;
    assert_eq!(outcome.exit_code(), 0, "{outcome:?}");
    let conf = env.meetings[0].conf_uuid.clone();
    let stage = || {
        let ledger =
            meeting_archiver::ledger::Ledger::open_read_only(&env.ledger_path()).expect("ledger");
        let m = ledger.meeting(&conf).expect("read").expect("known");
        (m.stage, m.last_poll_error.is_some())
    };
    // The last poll inside the re-check period fails.
    env.sim.set_faults(Faults {
        api_500: 1.0,
        ..Faults::default()
    });
    let mut failing = config.clone();
    failing.cloud.max_retries = 0;
    let engine = env.engine(&failing);
    let report = poll(&engine, &failing).await;
    assert_eq!((report.meetings, report.errors.len()), (1, 1));
    assert_eq!(
        stage(),
        (meeting_archiver::ledger::MeetingStage::ListingFailed, true)
    );
    let complete_for = async || {
        let ledger =
            meeting_archiver::ledger::Ledger::open_read_only(&env.ledger_path()).expect("ledger");
        let since = ledger
            .meeting(&conf)
            .expect("read")
            .expect("known")
            .complete_since;
        since.is_some_and(|s| {
            meeting_archiver::clock::Millis::now().duration_since(s) > config.poll.recheck_for
        })
    };
    drop(engine);
    until("the re-check period is over", complete_for).await;
    // Past the period, the failed meeting is still polled; the success
    // clears the error, and then it settles.
    env.sim.set_faults(Faults::default());
    let engine = env.engine(&config);
    let report = poll(&engine, &config).await;
    assert_eq!(
        (report.meetings, report.settled, report.errors.len()),
        (1, 0, 0)
    );
    assert_eq!(
        stage(),
        (meeting_archiver::ledger::MeetingStage::Complete, false)
    );
    let report = poll(&engine, &config).await;
    assert_eq!((report.meetings, report.settled), (0, 1));
}

#[tokio::test]
async fn time_queued_for_the_rate_cap_does_not_use_up_the_retry_window() {
    // One call every 500 ms; the gateway lets one through per 700 ms, so
    // the listing right after the appauth is throttled once. It waited
    // 500 ms for its slot, longer than the whole retry window of 300 ms:
    // only the call's own time counts, so it is retried (at the next slot).
    let env = TestEnv::start(scenario(meetings(1))).await;
    env.sim.set_faults(Faults {
        api_calls_per_minute: 1,
        api_throttle_window: Some(Duration::from_millis(700)),
        ..Faults::default()
    });
    let mut config = env.config();
    config.cloud.max_requests_per_minute = 120;
    config.cloud.give_up_after = Duration::from_millis(300);
    config.cloud.retry_max = Duration::from_millis(20);
    let engine = env.engine(&config);
    let report = poll(&engine, &config).await;
    assert!(
        env.sim.stats().api_faults_injected >= 1,
        "the gateway throttled a call"
    );
    assert_eq!(
        (report.meetings, report.errors.len(), report.new_files),
        (1, 0, 1),
        "{:?}",
        report.errors
    );
}

#[tokio::test]
async fn a_token_that_expires_while_its_call_queues_for_the_rate_cap_is_not_sent() {
    // Tokens live 1 s (0.9 s used); one call every 100 ms, eight meetings
    // listed at once: calls queue for longer than a token lives. Each
    // takes its token after its wait, so none is sent expired (no 401).
    let mut scn = scenario(meetings(8));
    scn.access_token_ttl = Duration::from_secs(1);
    let env = TestEnv::start(scn).await;
    let mut config = env.config();
    config.cloud.max_requests_per_minute = 600;
    config.poll.concurrency = 8;
    let engine = env.engine(&config);
    let report = poll(&engine, &config).await;
    assert_eq!(
        (report.meetings, report.errors.len()),
        (8, 0),
        "{:?}",
        report.errors
    );
    let stats = env.sim.stats();
    assert!(stats.appauth_ok >= 2, "the token was renewed: {stats:?}");
    assert_eq!(
        stats.api_unauthorized, 0,
        "an expired token was sent: {stats:?}"
    );
}
