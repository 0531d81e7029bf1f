//! Discovery through the recording list, its paging, and authentication
//! failures that must stop a run with a clear message.

use std::time::Duration;

use meeting_archiver::clock::Millis;
use meeting_archiver::cloud::{CloudClient, CloudError};
use meeting_archiver::config::Auth;
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
        outcome.status.meetings, 2,
        "the transcoding meeting is not taken yet"
    );
    assert_eq!(outcome.status.files.done, 27 + 9);
    assert_eq!(env.sim.stats().deprecated_headers_seen, 0);
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
