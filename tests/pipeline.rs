//! The archive pipeline end to end: everything archived once, paging,
//! token reuse, file-type filter, hostile paths.

use meeting_archiver::simulator::{SimFile, SimMeeting};

use crate::helpers::*;

#[tokio::test]
async fn three_meetings_are_archived_once_and_a_second_poll_downloads_nothing() {
    let env = TestEnv::start(scenario(three_meetings())).await;
    let config = env.config();
    let engine = env.engine(&config);
    let total = file_count(&env.meetings);
    assert_eq!(total, 27 + 9 + 2);
    assert_eq!(poll(&engine, &config).await.new_files as u64, total);
    let done = usize::try_from(total).expect("count");
    assert_eq!(drain(&engine).await, Drained::done(done));
    env.assert_archive_complete(&[]);
    let stats = env.sim.stats();
    assert_eq!(
        stats.download_requests, total,
        "each file fetched exactly once"
    );
    assert_eq!(
        stats.appauth_ok, 1,
        "the access token is reused for the whole run"
    );
    assert_eq!(stats.spent_token_reuses, 0);
    // The 27-file meeting needs more than the default page of 20: it was
    // listed with limit=500. A short page proves nothing (pages may be
    // capped), so each listing asks once past its last page, and a listing
    // that does not know yet what `offset` counts tries offset 1 as a page
    // number too: at most three calls a meeting, two once it is known.
    assert!(
        (6..=9).contains(&stats.downloadurls_calls),
        "{} listing calls",
        stats.downloadurls_calls
    );

    assert_eq!(poll(&engine, &config).await.new_files, 0);
    assert_eq!(drain(&engine).await, Drained::default());
    assert_eq!(
        env.sim.stats().download_requests,
        total,
        "the second round downloads nothing"
    );
}

#[tokio::test]
async fn only_the_configured_file_types_are_archived() {
    let env = TestEnv::start(scenario(three_meetings())).await;
    let mut config = env.config();
    config.download.file_types = vec!["Hd".to_owned()];
    let engine = env.engine(&config);
    poll(&engine, &config).await;
    assert_eq!(drain(&engine).await, Drained::done(9 + 3 + 1));
    env.assert_archive_complete(&["Hd"]);
    assert_eq!(env.sim.stats().download_requests, 9 + 3 + 1);
}

#[tokio::test]
async fn hostile_url_paths_stay_inside_the_archive() {
    let conf = "dddddddddddddddddddddddddddddd44";
    let hostile = [
        "/download/x/..%2F..%2F..%2Fescape.mp4",
        "/download/x/%2E%2E/%2E%2E/%2E%2E/evil.mp4",
        "/download/x/..%5C..%5Cwindows.mp4",
        "/download/x/%2Fetc%2Fpasswd",
        "/download/x/.hidden.mp4",
        "/download/x/%00nul%0Aline.mp4",
    ];
    let files = hostile
        .iter()
        .enumerate()
        .map(|(i, path)| SimFile {
            file_type: if i % 2 == 0 {
                "Hd".into()
            } else {
                "../Sd".into()
            },
            path: (*path).to_owned(),
            size: 1000 + i,
            seed: i as u64,
        })
        .collect();
    let meeting = SimMeeting {
        files,
        ..SimMeeting::standard(conf, "Hostile", 1, &["Hd"], 10)
    };
    let env = TestEnv::start(scenario(vec![meeting])).await;
    let outcome = env.sync(&env.config()).await;
    assert_eq!(outcome.exit_code(), 0, "{outcome:?}");
    assert_eq!(outcome.status.files.done as usize, hostile.len());
    // Nothing lies outside the working folder's archive and ledger.
    for path in walk(env.dir.path()) {
        let inside = path.starts_with(env.archive_dir())
            || path
                .file_name()
                .is_some_and(|n| n.to_string_lossy().starts_with("ledger.sqlite3"));
        assert!(inside, "written outside the archive: {}", path.display());
    }
    let media = archived_media(&env.archive_dir());
    assert_eq!(media.len(), hostile.len());
    let folder = env.meeting_dir(conf);
    for path in &media {
        let rel = path.strip_prefix(&folder).expect("inside its folder");
        assert_eq!(rel.components().count(), 2, "{}", rel.display());
    }
    let parent = env.dir.path().parent().expect("tempdir has a parent");
    assert!(!parent.join("escape.mp4").exists() && !parent.join("evil.mp4").exists());
}

#[tokio::test]
async fn a_meeting_without_recordings_yet_is_reported_and_archived_later() {
    let conf = "eeeeeeeeeeeeeeeeeeeeeeeeeeeeee55";
    let mut meeting = SimMeeting::standard(conf, "Still transcoding", 1, &["Hd"], 1000);
    meeting.not_ready_calls = 1;
    let env = TestEnv::start(scenario(vec![meeting])).await;
    let config = env.config();
    let engine = env.engine(&config);
    let first = poll(&engine, &config).await;
    assert_eq!(first.not_ready, vec![conf.to_owned()]);
    assert_eq!(drain(&engine).await, Drained::default());
    assert_eq!(poll(&engine, &config).await.new_files, 1);
    assert_eq!(drain(&engine).await, Drained::done(1));
    env.assert_archive_complete(&[]);
}
