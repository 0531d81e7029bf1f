//! The event push (`[webhook]`): a `record.finish` archives a recording
//! within seconds whatever the schedule; forged, stale, replayed, oversized
//! and foreign requests are refused with nothing queued; duplicates and
//! events out of order archive each file once; nothing listens when off.

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use meeting_archiver::clock::Millis;
use meeting_archiver::config::{Config, WebhookConfig, WebhookKeySource};
use meeting_archiver::ledger::{Ledger, NewEvent};
use meeting_archiver::pipeline::EventPlan;
use meeting_archiver::simulator::{SimMeeting, SimWebhook};
use secrecy::SecretString;

use crate::daemon::{metrics, sample, start_daemon};
use crate::helpers::*;

mod connections;
mod refusals;
mod second_chances;

const DAILY: &str = "0 0 3 * * *";
const PATH: &str = "/events/huawei";

/// The webhook on `listen`, signed with the simulator's App Key.
fn hook_config(env: &TestEnv, listen: SocketAddr) -> WebhookConfig {
    WebhookConfig {
        enabled: true,
        listen,
        path: PATH.to_owned(),
        accept_unlisted: false,
        app_id: env.app_id.clone(),
        app_key: SecretString::from(env.app_key.clone()),
        key_source: WebhookKeySource::CloudAppKey,
    }
}

/// A config polling once a day, serving /metrics on `server` and the
/// webhook on `hook`.
fn daily(env: &TestEnv, meetings: &[&SimMeeting], server: SocketAddr, hook: SocketAddr) -> Config {
    let mut config = env.config();
    config.poll.schedule = DAILY.to_owned();
    config.poll.meetings = meetings.iter().map(|m| m.conf_uuid.clone()).collect();
    config.server.listen = Some(server);
    config.webhook = hook_config(env, hook);
    config
}

fn pushing(hook: SocketAddr) -> SimWebhook {
    SimWebhook {
        url: format!("http://{hook}{PATH}"),
        ..SimWebhook::default()
    }
}

/// A meeting the cloud shows as transcoding for a long time.
fn transcoding(conf: &str, parts: usize) -> SimMeeting {
    let mut m = SimMeeting::standard(conf, "Just ended", parts, &["Hd", "Sd"], 32 * 1024);
    m.not_ready_calls = 1000;
    m
}

fn ready(mut meeting: SimMeeting) -> SimMeeting {
    meeting.not_ready_calls = 0;
    meeting
}

async fn after_startup_poll(server: SocketAddr) {
    until("the start-up poll", async || {
        metrics(server).await.is_some_and(|p| {
            sample(&p, "meeting_archiver_polls_total{result=\"ok\"}")
                + sample(&p, "meeting_archiver_polls_total{result=\"failed\"}")
                >= 1.0
        })
    })
    .await;
}

fn ledger(env: &TestEnv) -> Ledger {
    Ledger::open(&env.ledger_path(), false).expect("ledger opens")
}

fn events(page: &str, event: &str, outcome: &str) -> f64 {
    let name =
        format!("meeting_archiver_webhook_events_total{{event=\"{event}\",outcome=\"{outcome}\"}}");
    sample(page, &name)
}

/// A daemon polling once a day with the webhook on, after its start-up poll.
struct Running {
    env: TestEnv,
    server: SocketAddr,
    hook: SocketAddr,
    daemon: tokio::task::JoinHandle<anyhow::Result<()>>,
    shutdown: tokio_util::sync::CancellationToken,
}

impl Running {
    /// Starts it on a cloud of `meetings` (all configured), `tweak`ed.
    async fn start(meetings: &[&SimMeeting], tweak: impl FnOnce(&mut Config)) -> Running {
        let env = TestEnv::start(scenario(meetings.iter().map(|m| (*m).clone()).collect())).await;
        let (server, hook) = (free_addr(), free_addr());
        let mut config = daily(&env, meetings, server, hook);
        tweak(&mut config);
        let (daemon, shutdown) = start_daemon(&env, config);
        after_startup_poll(server).await;
        Running {
            env,
            server,
            hook,
            daemon,
            shutdown,
        }
    }

    /// Stops it cleanly; the environment stays for checks.
    async fn stop(self) -> TestEnv {
        self.shutdown.cancel();
        bounded(self.daemon)
            .await
            .expect("join")
            .expect("clean stop");
        self.env
    }
}

#[tokio::test]
async fn a_recording_ready_on_a_daily_schedule_is_archived_within_3_s_of_its_event() {
    let meeting = transcoding("e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1e1", 2);
    let run = Running::start(&[&meeting], |_| {}).await;
    let (env, server, hook) = (&run.env, run.server, run.hook);
    env.sim.set_webhook(Some(pushing(hook)));
    let sent = Instant::now();
    assert_eq!(env.sim.finish_recording(ready(meeting)).await, vec![200]);
    until("both parts of both types archived", async || {
        env.archived() == 4
    })
    .await;
    let took = sent.elapsed();
    eprintln!("event to 4 files archived: {took:?} (bound 3 s)");
    assert!(
        took < Duration::from_secs(3),
        "archived {took:?} after the event"
    );
    let mut page = String::new();
    until("the latency of every file observed", async || {
        page = metrics(server).await.unwrap_or_default();
        sample(&page, "meeting_archiver_event_to_archive_seconds_count") == 4.0
    })
    .await;
    let sum = sample(&page, "meeting_archiver_event_to_archive_seconds_sum");
    assert!(sum > 0.0 && sum < 4.0 * 3.0, "latency sum {sum}");
    assert_eq!(events(&page, "record.finish", "accepted"), 1.0);
    let last = ledger(env).last_event().expect("read").expect("an event");
    assert_eq!(last.outcome.as_deref(), Some("listed"));
    run.stop().await.assert_archive_complete(&[]);
}

#[tokio::test]
async fn duplicate_late_and_early_events_archive_each_file_exactly_once() {
    let (a, b) = (
        transcoding("e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3e3", 2),
        transcoding("e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4e4", 1),
    );
    let run = Running::start(&[&a, &b], |_| {}).await;
    let (env, hook) = (&run.env, run.hook);
    // B's event arrives before its recording is ready: not ready yet.
    env.sim.set_webhook(Some(pushing(hook)));
    assert_eq!(env.sim.push_record_finish(&b.conf_uuid).await, vec![200]);
    until("B's early event handled", async || {
        ledger(env).queued_events().expect("read").is_empty()
    })
    .await;
    let early = ledger(env).last_event().expect("read").expect("event");
    assert_eq!(early.outcome.as_deref(), Some("not_ready"));
    // A's event is delivered twice, then once more a minute late.
    env.sim.set_webhook(Some(SimWebhook {
        twice: true,
        ..pushing(hook)
    }));
    assert_eq!(
        env.sim.finish_recording(ready(a.clone())).await,
        vec![200, 200]
    );
    env.sim.set_webhook(Some(SimWebhook {
        late: Duration::from_secs(60),
        ..pushing(hook)
    }));
    assert_eq!(env.sim.push_record_finish(&a.conf_uuid).await, vec![200]);
    env.sim.set_webhook(Some(SimWebhook {
        twice: true,
        ..pushing(hook)
    }));
    assert_eq!(
        env.sim.finish_recording(ready(b.clone())).await,
        vec![200, 200]
    );
    until("every file archived and every event handled", async || {
        env.archived() == 6 && ledger(env).queued_events().expect("read").is_empty()
    })
    .await;
    let env = run.stop().await;
    let stats = env.sim.stats();
    assert_eq!(stats.downloads_completed, 6, "each file downloaded once");
    assert_eq!(stats.spent_token_reuses, 0);
    assert_eq!(env.ledger_status().files.done, 6);
    env.assert_archive_complete(&[]);
}

#[tokio::test]
async fn with_the_webhook_off_nothing_listens_on_its_port() {
    let meeting = SimMeeting::standard("e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5e5", "Off", 1, &["Hd"], 1024);
    let run = Running::start(&[&meeting], |c| c.webhook.enabled = false).await;
    let refused = tokio::net::TcpStream::connect(run.hook).await;
    assert_eq!(
        refused.map(|_| ()).map_err(|e| e.kind()),
        Err(std::io::ErrorKind::ConnectionRefused)
    );
    run.stop().await;
}

#[tokio::test]
async fn an_event_queued_before_a_crash_is_handled_at_the_next_start() {
    let unlisted = SimMeeting::standard(
        "e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6e6",
        "Unlisted",
        2,
        &["Hd"],
        2048,
    );
    let env = TestEnv::start(scenario(vec![unlisted.clone()])).await;
    let mut config = daily(&env, &[], free_addr(), free_addr());
    config.webhook.accept_unlisted = true;
    {
        let mut l = Ledger::open(&env.ledger_path(), true).expect("ledger");
        let event = NewEvent {
            event: "record.finish".to_owned(),
            conf_uuid: Some(unlisted.conf_uuid.clone()),
            nonce: "left-over".to_owned(),
            sent_at: Millis::now(),
        };
        l.queue_event(&event, false, Duration::from_secs(600), Millis::now())
            .expect("queued");
    }
    let (daemon, shutdown) = start_daemon(&env, config);
    until("the meeting of the queued event archived", async || {
        env.archived() == 2
    })
    .await;
    shutdown.cancel();
    bounded(daemon).await.expect("join").expect("clean stop");
    assert!(ledger(&env).queued_events().expect("read").is_empty());
    // `status` shows it, in text and JSON.
    let config_path = env.dir.path().join("config.toml");
    let status = |json: bool| {
        let mut cmd = assert_cmd::Command::cargo_bin("meeting-archiver").expect("binary");
        cmd.arg("--config").arg(&config_path).arg("status");
        if json {
            cmd.arg("--json");
        }
        let out = cmd.timeout(TEST_TIMEOUT).output().expect("runs");
        assert!(out.status.success(), "{out:?}");
        String::from_utf8(out.stdout).expect("utf-8")
    };
    let doc: serde_json::Value = serde_json::from_str(&status(true)).expect("json");
    assert_eq!(doc["last_event"]["event"], "record.finish");
    assert_eq!(doc["last_event"]["conf_uuid"], unlisted.conf_uuid.as_str());
    assert_eq!(doc["last_event"]["outcome"], "listed");
    let text = status(false);
    let line = format!(
        "last event: record.finish for {} received ",
        unlisted.conf_uuid
    );
    assert!(text.contains(&line) && text.contains("(listed)"), "{text}");
}

#[tokio::test]
async fn an_unlisted_meeting_is_polled_only_when_allowed_and_a_transcoding_one_stays_scheduled() {
    let mut meeting = SimMeeting::standard(
        "e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7e7",
        "Late",
        1,
        &["Hd", "Aux"],
        4096,
    );
    meeting.not_ready_calls = 1;
    let env = TestEnv::start(scenario(vec![meeting.clone()])).await;
    let mut config = env.config();
    config.poll.meetings.clear();
    let engine = env.engine(&config);
    let queue = |nonce: &str| {
        let event = NewEvent {
            event: "record.finish".to_owned(),
            conf_uuid: Some(meeting.conf_uuid.clone()),
            nonce: nonce.to_owned(),
            sent_at: Millis::now(),
        };
        engine
            .ledger()
            .call(move |l| l.queue_event(&event, false, Duration::from_secs(600), Millis::now()))
    };
    queue("n1").await.expect("queued");
    let closed = EventPlan::default();
    let report = bounded(engine.handle_events(&closed))
        .await
        .expect("handled");
    assert_eq!(report.unlisted, 1);
    assert_eq!(env.sim.stats().downloadurls_calls, 0, "not polled");
    queue("n2").await.expect("queued");
    let open = EventPlan {
        accept_unlisted: true,
        ..EventPlan::default()
    };
    let report = bounded(engine.handle_events(&open)).await.expect("handled");
    assert_eq!(report.not_ready, 1, "still transcoding");
    // The scheduled poll keeps it although no config names it.
    let report = poll(&engine, &config).await;
    assert_eq!(report.new_files, 2);
    assert_eq!(drain(&engine).await, Drained::done(2));
}

#[tokio::test]
async fn the_simulator_command_pushes_events_that_the_daemon_of_its_config_archives() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config_path = dir.path().join("sim.toml");
    let hook = free_addr();
    let mut sim = std::process::Command::new(assert_cmd::cargo::cargo_bin("meeting-archiver"))
        .args([
            "simulator",
            "--dir",
            &dir.path().join("data").to_string_lossy(),
        ])
        .args(["--write-config", &config_path.to_string_lossy()])
        .args(["--webhook", &format!("http://{hook}{PATH}")])
        .args(["--webhook-every", "200ms", "--webhook-twice"])
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()
        .expect("simulator starts");
    until("the simulator's config file", async || config_path.exists()).await;
    let mut config = Config::load(&config_path).expect("the written config loads");
    assert!(config.webhook.enabled && config.webhook.accept_unlisted);
    assert_eq!(config.webhook.listen, hook);
    config.server.listen = None;
    let shutdown = tokio_util::sync::CancellationToken::new();
    let (_reload_tx, reloads) = tokio::sync::mpsc::unbounded_channel();
    let daemon = tokio::spawn(meeting_archiver::daemon::run(
        config_path.clone(),
        config.clone(),
        shutdown.clone(),
        reloads,
    ));
    // The demo's meetings come from the start-up poll; pushed recordings
    // (named by no config) only from their events.
    until("a pushed recording archived", async || {
        let Ok(ledger) = Ledger::open_read_only(&config.ledger.path) else {
            return false;
        };
        let Ok(places) = ledger.meetings() else {
            return false;
        };
        places
            .iter()
            .filter(|m| m.conf_uuid.contains("000000000000000000000000e7e7"))
            .filter_map(|m| ledger.meeting_place(&m.conf_uuid).ok().flatten())
            .filter_map(|place| place.folder)
            .any(|folder| !archived_media(&config.download.dir.join(folder)).is_empty())
    })
    .await;
    shutdown.cancel();
    let stopped = bounded(daemon).await;
    let _ = sim.kill();
    let _ = sim.wait();
    stopped.expect("join").expect("clean stop");
}
