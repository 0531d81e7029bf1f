//! Discovery through the recording list, its paging, and authentication
//! failures that must stop a run with a clear message.

use std::time::Duration;

use meeting_archiver::clock::Millis;
use meeting_archiver::cloud::{CloudClient, CloudError};
use meeting_archiver::config::Auth;
use meeting_archiver::ledger::Ledger;
use meeting_archiver::pipeline::cloud_client;
use meeting_archiver::simulator::SimMeeting;
use secrecy::SecretString;

use crate::helpers::*;

fn empty_meetings(n: usize) -> Vec<SimMeeting> {
    (0..n)
        .map(|i| SimMeeting::standard(&format!("{i:032x}"), &format!("Meeting {i}"), 0, &[], 0))
        .collect()
}

async fn list_all(env: &TestEnv) -> usize {
    let client: CloudClient = cloud_client(&env.config()).expect("client");
    let now = Millis::now();
    let found = client
        .recordings(now - Duration::from_secs(24 * 3600), now)
        .await
        .expect("listing");
    let mut uuids: Vec<_> = found.iter().map(|r| r.conf_uuid.clone()).collect();
    uuids.sort();
    uuids.dedup();
    assert_eq!(uuids.len(), found.len(), "no duplicates");
    found.len()
}

#[tokio::test]
async fn the_recording_list_is_paged_whether_offset_counts_records_or_pages() {
    for pages in [false, true] {
        let mut scn = scenario(empty_meetings(1_203));
        scn.record_offset_counts_pages = pages;
        let env = TestEnv::start(scn).await;
        assert_eq!(list_all(&env).await, 1_203, "offset counts pages: {pages}");
    }
}

#[tokio::test]
async fn discovery_archives_recent_recordings_that_are_not_configured() {
    let mut meetings = three_meetings();
    meetings[2].not_ready_calls = 1_000; // still transcoding: not archived yet
    let env = TestEnv::start(scenario(meetings)).await;
    let mut config = env.config();
    config.poll.meetings = vec![env.meetings[0].conf_uuid.clone()];
    config.poll.discover_days = 2;
    let outcome = env.sync(&config).await;
    assert_eq!(outcome.exit_code(), 0, "{outcome:?}");
    assert_eq!(
        outcome.status.meetings, 3,
        "the transcoding meeting is recorded at once"
    );
    assert_eq!(outcome.status.files.done, 27 + 9);
    assert_eq!(
        outcome.not_ready,
        vec![env.meetings[2].conf_uuid.clone()],
        "the transcoding meeting is polled, and has no files yet"
    );
    assert_eq!(env.sim.stats().deprecated_headers_seen, 0);
}

/// A meeting that started `hours_ago` and lists no files for its first
/// `not_ready_calls` listings.
fn late_meeting(hours_ago: u64, not_ready_calls: u32) -> SimMeeting {
    let mut meeting =
        SimMeeting::standard("d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7", "Late", 2, &["Hd"], 2048);
    meeting.start = Millis::now() - Duration::from_secs(hours_ago * 3600);
    meeting.not_ready_calls = not_ready_calls;
    meeting
}

#[tokio::test]
async fn a_recording_still_transcoding_when_the_window_moves_past_it_is_archived() {
    let env = TestEnv::start(scenario(vec![late_meeting(30, 2)])).await;
    let mut config = env.config();
    config.poll.meetings.clear();
    config.poll.discover_days = 2;
    let first = env.sync(&config).await;
    assert_eq!(first.status.meetings, 1, "recorded while transcoding");
    assert_eq!(first.status.files.done, 0);
    // The window no longer reaches its start (30 hours ago).
    config.poll.discover_days = 1;
    let second = env.sync(&config).await;
    assert_eq!(second.status.files.done, 0, "still transcoding");
    let third = env.sync(&config).await;
    assert_eq!(third.exit_code(), 0, "{third:?}");
    assert_eq!(third.status.files.done, 2, "archived once ready");
    env.assert_archive_complete(&[]);
}

#[tokio::test]
async fn after_an_outage_discovery_covers_everything_since_it_last_succeeded() {
    let env = TestEnv::start(scenario(vec![late_meeting(10 * 24, 0)])).await;
    let mut config = env.config();
    config.poll.meetings.clear();
    config.poll.discover_days = 2;
    {
        // The last successful discovery ended twelve days ago.
        let mut ledger = Ledger::open(&config.ledger.path, false).expect("ledger");
        let long_ago = Millis::now() - Duration::from_secs(12 * 24 * 3600);
        ledger.set_discovery_watermark(long_ago).expect("watermark");
    }
    let outcome = env.sync(&config).await;
    assert_eq!(outcome.exit_code(), 0, "{outcome:?}");
    assert_eq!(outcome.status.files.done, 2, "found though 10 days old");
}

#[tokio::test]
async fn a_discovered_meeting_that_never_lists_a_file_is_given_up() {
    let env = TestEnv::start(scenario(vec![late_meeting(3, 1_000)])).await;
    let mut config = env.config();
    config.poll.meetings.clear();
    config.poll.discover_days = 2;
    env.sync(&config).await;
    let calls = env.sim.stats().downloadurls_calls;
    assert!(calls > 0, "polled while within poll.give_up_after");
    // Later: it has listed nothing for longer than poll.give_up_after.
    config.poll.give_up_after = Duration::from_millis(1);
    let outcome = env.sync(&config).await;
    assert_eq!(outcome.exit_code(), 0, "{outcome:?}");
    assert_eq!(
        env.sim.stats().downloadurls_calls,
        calls,
        "given up: no more listings"
    );
    let meetings = Ledger::open(&config.ledger.path, false)
        .expect("ledger")
        .meetings()
        .expect("meetings");
    assert!(meetings[0].given_up_at.is_some(), "{meetings:?}");
}

#[tokio::test]
async fn a_refused_static_access_token_is_a_clear_error() {
    let env = TestEnv::start(scenario(three_meetings())).await;
    let mut config = env.config();
    config.cloud.auth = Auth::AccessToken(SecretString::from("not-a-live-token"));
    let client = cloud_client(&config).expect("client");
    let err = client
        .download_urls(&env.meetings[0].conf_uuid)
        .await
        .err()
        .expect("refused");
    assert!(matches!(err, CloudError::Unauthorized { .. }), "{err:?}");
    let message = err.to_string();
    assert!(
        message.contains("USG.000000004") && message.contains("access_token"),
        "{message}"
    );
    assert!(!message.contains("not-a-live-token"));
    assert_eq!(env.sim.stats().appauth_ok, 0);
}
