//! Findings of an adversarial review, each reproduced by a test before
//! its fix: a probe that brings no bytes is no confirmation, an empty chat
//! log is a file, a passing authentication failure is not held for the
//! whole poll, equal names on different pages of a capped listing are two
//! files.

use std::time::Duration;

use meeting_archiver::pipeline::Outcome;
use meeting_archiver::simulator::{Faults, SimFile, SimMeeting, UrlStyle};
use tokio_util::sync::CancellationToken;

use crate::helpers::*;

const SIZE: usize = 1_000_000;

/// A host that silently ends every transfer at half the file, announcing
/// no length: the probe `Range: bytes=500000-` gets a 206 whose
/// Content-Range says `500000-999999/*` and whose body is empty.
#[tokio::test]
async fn an_empty_206_probe_does_not_confirm_a_truncated_candidate() {
    let meeting =
        SimMeeting::standard("7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a7a", "Half", 1, &["Hd"], SIZE);
    let mut scn = scenario(vec![meeting]);
    scn.range_support = true;
    scn.faults = Faults {
        no_length: true,
        end_every_transfer_at_half: true,
        ..Faults::default()
    };
    let env = TestEnv::start(scn).await;
    let config = env.config();
    let outcome = env.sync(&config).await;
    let sizes: Vec<u64> = archived_media(&env.archive_dir())
        .iter()
        .map(|p| std::fs::metadata(p).expect("archived").len())
        .collect();
    // Half the file must never be archived as a file whose length is
    // confirmed: nothing confirms this end, so it is archived flagged.
    assert_eq!(sizes, [SIZE as u64 / 2]);
    assert_eq!(outcome.status.length_unconfirmed, 1, "{outcome:?}");
}

/// A chat log with nothing in it (a meeting nobody wrote in).
#[tokio::test]
async fn an_empty_chat_log_is_archived() {
    let conf = "7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b7b";
    let mut meeting = SimMeeting::standard(conf, "Silent chat", 1, &["Hd"], 1000);
    meeting.files.push(SimFile {
        file_type: "Chat".to_owned(),
        path: format!("/download/{conf}/chat/chat.txt"),
        size: 0,
        seed: 7,
    });
    let env = TestEnv::start(scenario(vec![meeting])).await;
    let mut config = env.config();
    config.download.max_attempts = 3;
    let outcome = env.sync(&config).await;
    assert_eq!(outcome.status.files.done, 2, "{outcome:?}");
}

/// One transient failure of appauth (a 500) is cached as "refused" until
/// the next poll: the API is healthy again, yet every token refresh fails
/// at once without asking it, and each costs the file an attempt.
#[tokio::test]
async fn a_passing_auth_failure_is_not_held_until_the_next_poll() {
    let meeting =
        SimMeeting::standard("7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c7c", "Auth", 1, &["Hd"], 1000);
    let mut scn = scenario(vec![meeting]);
    scn.access_token_ttl = Duration::from_secs(3);
    let env = TestEnv::start(scn).await;
    let mut config = env.config();
    config.cloud.max_retries = 0;
    config.download.token_max_age = Duration::from_secs(2);
    config.download.max_attempts = 3;
    let engine = env.engine(&config);
    let report = poll(&engine, &config).await;
    assert!(report.errors.is_empty(), "{report:?}");
    // Both the stored download token and the access token grow too old.
    tokio::time::sleep(Duration::from_millis(3200)).await;
    env.sim.set_faults(Faults {
        api_500: 1.0,
        ..Faults::default()
    });
    let cancel = CancellationToken::new();
    let first = engine.process_next(&cancel).await.expect("step");
    // The API is back.
    env.sim.set_faults(Faults::default());
    let mut outcomes = vec![first];
    let last = bounded(async {
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            match engine.process_next(&cancel).await.expect("step") {
                Outcome::Idle => continue,
                o => {
                    outcomes.push(o);
                    if matches!(o, Outcome::Done | Outcome::Failed) {
                        return o;
                    }
                }
            }
        }
    })
    .await;
    assert_eq!(last, Outcome::Done, "{outcomes:?}");
}

/// Two Hd files of one name in two recording folders, on a server that
/// caps downloadurls pages (here at one URL a page).
#[tokio::test]
async fn equal_names_on_different_pages_are_two_files() {
    let conf = "7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d7d";
    let mut meeting = SimMeeting::standard(conf, "Two sessions", 1, &["Hd"], 1000);
    let mut second = meeting.files[0].clone();
    second.path = format!("/download/{conf}/session2/videoHD/0_0.mp4");
    second.seed ^= 0x55;
    meeting.files.push(second);
    let mut third = meeting.files[0].clone();
    third.file_type = "Sd".to_owned();
    third.path = format!("/download/{conf}/videoSD/0_0.mp4");
    third.seed ^= 0x66;
    meeting.files.push(third);
    for (style, pages) in [
        (UrlStyle::Plain, false),
        (UrlStyle::NoncePath, false),
        (UrlStyle::Plain, true),
        (UrlStyle::NoncePath, true),
    ] {
        let mut scn = scenario(vec![meeting.clone()]);
        scn.urls_page_cap = Some(1);
        scn.url_style = style;
        scn.urls_offset_counts_pages = pages;
        let env = TestEnv::start(scn).await;
        let outcome = env.sync(&env.config()).await;
        assert_eq!(
            outcome.exit_code(),
            0,
            "{style:?} pages={pages}: {outcome:?}"
        );
        assert_eq!(
            outcome.status.files.done, 3,
            "{style:?} pages={pages}: {outcome:?}"
        );
        // Two of one name: the second lies under its alternative name.
        assert_eq!(archived_media(&env.archive_dir()).len(), 3);
    }
}
