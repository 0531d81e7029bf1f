//! Retention: a meeting is deleted from the cloud only when the archive
//! provably holds every file, exactly once, and never otherwise; each
//! refusal is recorded with its reason.

use std::time::Duration;

use meeting_archiver::config::Config;
use meeting_archiver::ledger::{Ledger, MeetingRecord};
use meeting_archiver::simulator::{Faults, SimMeeting};

use crate::helpers::*;

/// `env`'s config with deletion on and no waiting time.
fn deleting(env: &TestEnv) -> Config {
    let mut config = env.config();
    config.retention.delete_from_cloud = true;
    config.retention.delete_after = Duration::ZERO;
    config
}

fn meetings_of(config: &Config) -> Vec<MeetingRecord> {
    Ledger::open(&config.ledger.path, false)
        .expect("ledger")
        .meetings()
        .expect("meetings")
}

fn hold_of(config: &Config, conf: &str) -> Option<String> {
    meetings_of(config)
        .into_iter()
        .find(|m| m.conf_uuid == conf)
        .and_then(|m| m.retention_hold)
}

#[tokio::test]
async fn with_deletion_off_no_delete_is_ever_sent() {
    let env = TestEnv::start(scenario(three_meetings())).await;
    let mut config = env.config();
    config.retention.delete_after = Duration::ZERO;
    for _ in 0..2 {
        assert_eq!(env.sync(&config).await.exit_code(), 0);
    }
    assert_eq!(env.sim.stats().meetings_deleted, 0);
    assert!(
        meetings_of(&config)
            .iter()
            .all(|m| m.deleted_from_cloud_at.is_none())
    );
}

#[tokio::test]
async fn a_verified_meeting_is_deleted_exactly_once_and_never_polled_again() {
    let env = TestEnv::start(scenario(three_meetings())).await;
    let config = deleting(&env);
    let first = env.sync(&config).await;
    assert_eq!(first.exit_code(), 0, "{first:?}");
    assert_eq!(env.sim.stats().meetings_deleted, 3);
    env.assert_archive_complete(&[]);
    let listings = env.sim.stats().downloadurls_calls;
    // Later runs: nothing deleted again, no error, no listing of a deleted meeting.
    for _ in 0..2 {
        let again = env.sync(&config).await;
        assert_eq!(again.exit_code(), 0, "{again:?}");
    }
    let stats = env.sim.stats();
    assert_eq!(stats.meetings_deleted, 3);
    assert_eq!(
        stats.downloadurls_calls, listings,
        "deleted meetings are not polled"
    );
    for meeting in meetings_of(&config) {
        assert!(meeting.deleted_from_cloud_at.is_some(), "{meeting:?}");
    }
    let manifest = std::fs::read_to_string(
        env.meeting_dir(&env.meetings[0].conf_uuid)
            .join("meeting.json"),
    )
    .expect("manifest");
    assert!(manifest.contains("deleted_from_cloud_at_ms"), "{manifest}");
    assert!(
        manifest.contains("\"deleted_from_cloud_at\": \"20"),
        "the deletion time in ISO 8601: {manifest}"
    );
}

#[tokio::test]
async fn nothing_is_deleted_in_doubt_and_each_reason_is_recorded() {
    let env = TestEnv::start(scenario(three_meetings())).await;
    let mut config = env.config();
    // Archive everything first, with deletion off.
    assert_eq!(env.sync(&config).await.exit_code(), 0);
    let [a, b, c] = [0, 1, 2].map(|i| env.meetings[i].conf_uuid.clone());
    // Meeting a: an archived file altered; meeting b: one removed.
    let file_of = |conf: &str| {
        archived_media(&env.archive_dir())
            .into_iter()
            .find(|p| p.starts_with(env.meeting_dir(conf)))
            .expect("an archived file")
    };
    std::fs::write(file_of(&a), b"tampered").expect("alter");
    std::fs::remove_file(file_of(&b)).expect("remove");
    // Meeting c: the cloud lists a file the archive does not hold.
    let mut grown = env.meetings[2].clone();
    grown.files.push(meeting_archiver::simulator::SimFile {
        file_type: "Hd".to_owned(),
        path: format!("/download/{c}/videoHD/9_9.mp4"),
        size: 100,
        seed: 9,
    });
    env.sim.add_meeting(grown);
    config.retention.delete_from_cloud = true;
    config.retention.delete_after = Duration::ZERO;
    let engine = env.engine(&config);
    let report = engine.retention(&config.retention).await;
    assert!(report.deleted.is_empty(), "{report:?}");
    drop(engine);
    assert_eq!(env.sim.stats().meetings_deleted, 0);
    for (conf, words) in [(&a, "differs"), (&b, "missing"), (&c, "not archived")] {
        let hold = hold_of(&config, conf).expect("a reason");
        assert!(hold.contains(words), "{conf}: {hold}");
    }
}

#[tokio::test]
async fn a_failed_file_or_a_recent_meeting_is_kept() {
    let env = TestEnv::start(broken_host("e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2", 1)).await;
    let mut config = deleting(&env);
    config.download.max_attempts = 1;
    env.sync(&config).await;
    let conf = env.meetings[0].conf_uuid.clone();
    assert!(hold_of(&config, &conf).expect("kept").contains("failed"));
    env.sim.set_faults(Faults::default());

    let fresh = TestEnv::start(scenario(three_meetings())).await;
    let mut recent = deleting(&fresh);
    recent.retention.delete_after = Duration::from_secs(7 * 24 * 3600);
    assert_eq!(fresh.sync(&recent).await.exit_code(), 0);
    assert_eq!(fresh.sim.stats().meetings_deleted, 0);
    let hold = hold_of(&recent, &fresh.meetings[0].conf_uuid).expect("kept");
    assert!(hold.contains("delete_after"), "{hold}");
}

#[tokio::test]
async fn the_cap_and_dry_run_limit_what_is_deleted() {
    let env = TestEnv::start(scenario(three_meetings())).await;
    let mut config = deleting(&env);
    config.retention.dry_run = true;
    assert_eq!(env.sync(&config).await.exit_code(), 0);
    assert_eq!(
        env.sim.stats().meetings_deleted,
        0,
        "a dry run deletes nothing"
    );
    let hold = hold_of(&config, &env.meetings[0].conf_uuid).expect("recorded");
    assert!(hold.contains("dry run"), "{hold}");

    config.retention.dry_run = false;
    config.retention.max_deletes_per_poll = 1;
    env.sync(&config).await;
    assert_eq!(env.sim.stats().meetings_deleted, 1, "one per poll");
    let capped = meetings_of(&config)
        .into_iter()
        .filter(|m| {
            m.retention_hold
                .as_deref()
                .is_some_and(|h| h.contains("max_deletes_per_poll"))
        })
        .count();
    assert_eq!(capped, 2);
    env.sync(&config).await;
    assert_eq!(env.sim.stats().meetings_deleted, 2);
}

#[tokio::test]
async fn a_crash_between_the_delete_and_its_record_is_resolved_at_the_next_start() {
    let env = TestEnv::start(scenario(three_meetings())).await;
    let config = env.config();
    assert_eq!(env.sync(&config).await.exit_code(), 0);
    let conf = env.meetings[0].conf_uuid.clone();
    // As a crash would leave it: the intent recorded, the DELETE sent,
    // the outcome never recorded.
    Ledger::open(&config.ledger.path, false)
        .expect("ledger")
        .record_deletion_intent(
            std::slice::from_ref(&conf),
            meeting_archiver::clock::Millis::now(),
        )
        .expect("intent");
    let cloud = meeting_archiver::pipeline::cloud_client(&config).expect("client");
    cloud
        .delete_recordings(std::slice::from_ref(&conf))
        .await
        .expect("deleted");
    // Retention is off now: the next start still resolves it, with no error.
    let outcome = env.sync(&config).await;
    assert_eq!(outcome.exit_code(), 0, "{outcome:?}");
    let meeting = meetings_of(&config)
        .into_iter()
        .find(|m| m.conf_uuid == conf)
        .expect("meeting");
    assert!(meeting.deleted_from_cloud_at.is_some(), "{meeting:?}");
    assert_eq!(env.sim.stats().meetings_deleted, 1);
}

#[tokio::test]
async fn the_daemon_deletes_after_its_poll() {
    let env = TestEnv::start(scenario(vec![SimMeeting::standard(
        "e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1",
        "Daemon retention",
        1,
        &["Hd"],
        2048,
    )]))
    .await;
    let mut config = deleting(&env);
    config.poll.schedule = "*/1 * * * * *".to_owned();
    let (daemon, shutdown) = crate::daemon::start_daemon(&env, config.clone());
    until("the daemon deleted the archived meeting", async || {
        env.sim.stats().meetings_deleted == 1
    })
    .await;
    shutdown.cancel();
    bounded(daemon).await.expect("join").expect("clean stop");
    env.assert_archive_complete(&[]);
    assert!(meetings_of(&config)[0].deleted_from_cloud_at.is_some());
}
