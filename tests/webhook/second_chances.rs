//! What the endpoint and the event handler do when something changes or
//! fails after an event: a password rotated in the config file is taken on
//! SIGHUP, an event whose listing fails is retried after a backoff without
//! a second event, and a file that fails for good is no longer timed.

use meeting_archiver::config::SecretSource;
use meeting_archiver::simulator::Faults;
use tokio_util::sync::CancellationToken;

use super::*;

/// The daemon of `config` (written to the working folder first), with the
/// sending end of its reload channel.
fn start_reloadable(
    env: &TestEnv,
    config: Config,
) -> (
    tokio::task::JoinHandle<anyhow::Result<()>>,
    CancellationToken,
    tokio::sync::mpsc::UnboundedSender<()>,
) {
    let shutdown = CancellationToken::new();
    let (reload_tx, reloads) = tokio::sync::mpsc::unbounded_channel();
    let path = env.write_config(&config);
    let daemon = tokio::spawn(meeting_archiver::daemon::run(
        path,
        config,
        shutdown.clone(),
        reloads,
    ));
    (daemon, shutdown, reload_tx)
}

#[tokio::test]
async fn a_push_password_rotated_in_the_config_file_is_taken_on_reload() {
    let meeting = transcoding("eaeaeaeaeaeaeaeaeaeaeaeaeaeaeaea", 1);
    let env = TestEnv::start(scenario(vec![meeting.clone()])).await;
    let (server, hook) = (free_addr(), free_addr());
    let mut config = daily(&env, &[&meeting], server, hook);
    config.webhook.app_key = SecretString::from("the old password");
    config.webhook.key_source = WebhookKeySource::Own(SecretSource::Inline);
    let (daemon, shutdown, reload) = start_reloadable(&env, config.clone());
    after_startup_poll(server).await;
    // The console signs with the new password (the simulator's key); the
    // daemon still has the old one.
    env.sim.set_webhook(Some(pushing(hook)));
    assert_eq!(
        env.sim.push_record_finish(&meeting.conf_uuid).await,
        vec![401]
    );
    // The same key, in the same place, with the new value; then SIGHUP.
    config.webhook.app_key = SecretString::from(env.app_key.clone());
    env.write_config(&config);
    reload.send(()).expect("reload");
    until("an event signed with the new password taken", async || {
        env.sim.push_record_finish(&meeting.conf_uuid).await == vec![200]
    })
    .await;
    let page = metrics(server).await.expect("metrics");
    assert_eq!(events(&page, "record.finish", "accepted"), 1.0);
    shutdown.cancel();
    bounded(daemon).await.expect("join").expect("clean stop");
}

#[tokio::test]
async fn an_event_whose_listing_fails_is_retried_after_a_backoff_and_archived_without_another() {
    let meeting = SimMeeting::standard(
        "ebebebebebebebebebebebebebebebeb",
        "Unlisted, pushed",
        1,
        &["Hd"],
        2048,
    );
    let conf = meeting.conf_uuid.clone();
    // A meeting no config names, taken because of webhook.accept_unlisted;
    // API calls are not retried, so one 500 fails the listing.
    let run = Running::start(&[], |c| {
        c.webhook.accept_unlisted = true;
        c.cloud.max_retries = 0;
    })
    .await;
    let (env, hook) = (&run.env, run.hook);
    env.sim.set_faults(Faults {
        api_500: 1.0,
        ..Faults::default()
    });
    env.sim.set_webhook(Some(pushing(hook)));
    assert_eq!(env.sim.finish_recording(meeting).await, vec![200]);
    let listing_failed = async || {
        let meetings = ledger(env).meetings().expect("read");
        meetings
            .iter()
            .any(|m| m.conf_uuid == conf && m.last_poll_error.is_some())
    };
    until("the event's listing failed", listing_failed).await;
    env.sim.set_faults(Faults::default());
    assert_eq!(
        ledger(env).queued_events().expect("read").len(),
        1,
        "the event stays queued"
    );
    // No second event: the daemon tries the queued one again by itself.
    until("the meeting archived", async || env.archived() == 1).await;
    until("the event handled", async || {
        ledger(env).queued_events().expect("read").is_empty()
    })
    .await;
    let last = ledger(env).last_event().expect("read").expect("event");
    assert_eq!(last.outcome.as_deref(), Some("listed"));
    run.stop().await;
}

#[tokio::test]
async fn a_file_that_fails_for_good_after_an_event_is_no_longer_timed() {
    let meeting = SimMeeting::standard(
        "ecececececececececececececececec",
        "Broken",
        1,
        &["Hd"],
        1024,
    );
    let env = TestEnv::start(scenario(vec![meeting.clone()])).await;
    let mut config = env.config();
    config.download.max_attempts = 1;
    let engine = env.engine(&config);
    env.sim.set_faults(Faults {
        download_500: 1.0,
        ..Faults::default()
    });
    let event = NewEvent {
        event: "record.finish".to_owned(),
        conf_uuid: Some(meeting.conf_uuid.clone()),
        nonce: "n1".to_owned(),
        sent_at: Millis::now(),
    };
    engine
        .ledger()
        .call(move |l| l.queue_event(&event, false, Duration::from_secs(900), Millis::now()))
        .await
        .expect("queued");
    let plan = EventPlan::from_config(&config);
    let report = bounded(engine.handle_events(&plan)).await.expect("handled");
    assert_eq!(report.listed, 1);
    assert_eq!(engine.files_awaited_from_events(), 1);
    let drained = drain(&engine).await;
    assert_eq!(drained.failed, 1, "{drained:?}");
    assert_eq!(engine.files_awaited_from_events(), 0);
}
