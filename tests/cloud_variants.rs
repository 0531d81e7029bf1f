//! The answers the API documentation leaves open, each played both ways by
//! the simulator: what `offset` of downloadurls counts, pages capped below
//! `limit`, and a re-listing that hands out the same unused token again.
//! Every file must be archived once, byte for byte, with no token sent twice.

use meeting_archiver::simulator::{Faults, Scenario, SimFile, SimMeeting, UrlStyle};

use crate::helpers::*;

/// One meeting of `files` small Hd files.
fn big_meeting(files: usize) -> SimMeeting {
    SimMeeting::standard(
        "b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1b1",
        "Big",
        files,
        &["Hd"],
        512,
    )
}

/// Archives everything with a poll and a drain; checks what landed.
async fn archive_all(scn: Scenario) -> TestEnv {
    let env = TestEnv::start(scn).await;
    let config = env.config();
    let engine = env.engine(&config);
    let total = usize::try_from(file_count(&env.meetings)).expect("count");
    assert_eq!(
        poll(&engine, &config).await.new_files,
        total,
        "every file listed"
    );
    assert_eq!(drain(&engine).await, Drained::done(total));
    env.assert_archive_complete(&[]);
    let stats = env.sim.stats();
    assert_eq!(
        stats.download_requests, total as u64,
        "each file fetched once"
    );
    assert_eq!(stats.spent_token_reuses, 0);
    assert_eq!(poll(&engine, &config).await.new_files, 0);
    assert_eq!(drain(&engine).await, Drained::default(), "nothing twice");
    env
}

#[tokio::test]
async fn downloadurls_offset_counting_records_or_pages_lists_all_600_files() {
    for pages in [false, true] {
        let scn = Scenario {
            urls_offset_counts_pages: pages,
            ..scenario(vec![big_meeting(600)])
        };
        archive_all(scn).await;
    }
}

#[tokio::test]
async fn pages_capped_at_100_whatever_limit_says_list_all_300_files() {
    for (cap, pages) in [(Some(100), false), (Some(100), true), (None, false)] {
        let scn = Scenario {
            urls_page_cap: cap,
            urls_offset_counts_pages: pages,
            ..scenario(vec![big_meeting(300)])
        };
        archive_all(scn).await;
    }
}

#[tokio::test]
async fn an_unused_token_listed_again_is_used_and_no_token_is_sent_twice() {
    for reissue in [false, true] {
        let scn = Scenario {
            reissue_unused_tokens: reissue,
            ..scenario(three_meetings())
        };
        let env = TestEnv::start(scn).await;
        let config = env.config();
        let engine = env.engine(&config);
        // Two listings before any download: the second re-issues (or
        // replaces) every token of the first.
        poll(&engine, &config).await;
        poll(&engine, &config).await;
        let total = usize::try_from(file_count(&env.meetings)).expect("count");
        assert_eq!(drain(&engine).await, Drained::done(total));
        env.assert_archive_complete(&[]);
        let stats = env.sim.stats();
        assert_eq!(stats.spent_token_reuses, 0);
        assert_eq!(stats.download_requests, total as u64);
        assert_eq!(stats.tokens_reissued > 0, reissue, "{stats:?}");
    }
}

#[tokio::test]
async fn a_per_listing_path_segment_does_not_make_new_files_and_the_meeting_settles() {
    for style in [UrlStyle::Plain, UrlStyle::NoncePath] {
        let scn = Scenario {
            url_style: style,
            ..scenario(vec![SimMeeting::standard(
                "c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1c1",
                "Nonce",
                3,
                &["Hd", "Sd"],
                2048,
            )])
        };
        let env = archive_all(scn).await;
        // Two more polls: every URL differs from the first listing's.
        let config = env.config();
        let engine = env.engine(&config);
        for _ in 0..2 {
            assert_eq!(poll(&engine, &config).await.new_files, 0, "{style:?}");
            assert_eq!(drain(&engine).await, Drained::default(), "{style:?}");
        }
        env.assert_archive_complete(&[]);
        let files = env.ledger_status().files;
        assert_eq!((files.done, files.pending), (6, 0), "{style:?}: {files:?}");
    }
}

#[tokio::test]
async fn urls_told_apart_only_by_their_query_are_separate_files() {
    let scn = Scenario {
        url_style: UrlStyle::QueryNamed,
        ..scenario(vec![SimMeeting::standard(
            "c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2c2",
            "Query",
            3,
            &["Hd", "Aux"],
            2048,
        )])
    };
    let env = archive_all(scn).await;
    let files = env.ledger_status().files;
    assert_eq!((files.done, files.pending), (6, 0), "{files:?}");
}

/// A meeting with a recording, a chat log (text) and subtitles (JSON whose
/// keys look like an error's).
fn meeting_with_text_files() -> SimMeeting {
    let mut meeting =
        SimMeeting::standard("c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3c3", "Text", 1, &["Hd"], 4096);
    let conf = meeting.conf_uuid.clone();
    for (file_type, name, seed) in [("Chat", "chat.txt", 7), ("Subtitle", "zh-CN.json", 8)] {
        meeting.files.push(SimFile {
            file_type: file_type.to_owned(),
            path: format!("/download/{conf}/{file_type}/{name}"),
            size: 3000,
            seed,
        });
    }
    meeting
}

#[tokio::test]
async fn chat_logs_and_subtitles_are_archived_though_they_are_text() {
    archive_all(scenario(vec![meeting_with_text_files()])).await;
}

#[tokio::test]
async fn an_error_answer_is_refused_for_text_files_too() {
    let scn = Scenario {
        faults: Faults {
            download_json_200: 0.5,
            ..Faults::default()
        },
        seed: 3,
        ..scenario(vec![meeting_with_text_files()])
    };
    let env = TestEnv::start(scn).await;
    let outcome = env.sync(&env.config()).await;
    assert_eq!(outcome.exit_code(), 0, "{outcome:?}");
    env.assert_archive_complete(&[]);
    let stats = env.sim.stats();
    assert!(stats.download_faults_injected > 0, "{stats:?}");
    assert_eq!(stats.spent_token_reuses, 0);
}

#[tokio::test]
async fn the_access_token_is_kept_across_runs_and_dropped_once_refused() {
    let env = TestEnv::start(scenario(three_meetings())).await;
    let config = env.config();
    for _ in 0..3 {
        assert_eq!(env.sync(&config).await.exit_code(), 0);
    }
    assert_eq!(
        env.sim.stats().appauth_ok,
        1,
        "three runs, one authentication (an App ID holds at most 64 live tokens)"
    );
    // The cloud forgets every token: the kept one is refused, erased, and
    // a new one fetched once.
    env.sim.expire_access_tokens();
    assert_eq!(env.sync(&config).await.exit_code(), 0);
    assert_eq!(env.sync(&config).await.exit_code(), 0);
    assert_eq!(env.sim.stats().appauth_ok, 2);
}

#[tokio::test]
async fn a_long_recording_of_7_parts_in_3_types_archives_as_its_parts_appear() {
    for over_time in [false, true] {
        let mut meeting = SimMeeting::standard(
            "c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4",
            "Seven hours",
            7,
            &["Hd", "Sd", "Aux"],
            1024,
        );
        meeting.parts_appear_over_time = over_time;
        let env = TestEnv::start(scenario(vec![meeting])).await;
        let config = env.config();
        let engine = env.engine(&config);
        let mut polls = 0;
        while env.ledger_status().files.done < 21 {
            polls += 1;
            assert!(polls <= 10, "all parts listed within ten polls");
            poll(&engine, &config).await;
            drain(&engine).await;
        }
        assert_eq!(polls > 1, over_time, "parts came over several polls");
        env.assert_archive_complete(&[]);
        let stats = env.sim.stats();
        assert_eq!(stats.download_requests, 21, "each part fetched once");
        assert_eq!(stats.spent_token_reuses, 0);
        // `Aux` is a Windows device name: the default layout says `Aux_`.
        for kind in ["Hd", "Sd", "Aux_"] {
            for part in 0..7 {
                let path = env
                    .meeting_dir("c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4c4")
                    .join(kind)
                    .join(format!("0_{part}.mp4"));
                assert!(path.is_file(), "{}", path.display());
            }
        }
    }
}
