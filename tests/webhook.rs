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
async fn forged_stale_replayed_oversized_and_foreign_events_are_refused_with_nothing_queued() {
    let meeting = transcoding("e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2e2", 1);
    let run = Running::start(&[&meeting], |_| {}).await;
    let (env, server, hook) = (&run.env, run.server, run.hook);
    let conf = &meeting.conf_uuid;
    let cases = [
        (
            SimWebhook {
                bad_signature: true,
                ..pushing(hook)
            },
            401,
            "bad_signature",
        ),
        (
            SimWebhook {
                late: Duration::from_secs(6 * 60),
                ..pushing(hook)
            },
            401,
            "stale",
        ),
        (
            SimWebhook {
                wrong_app_id: true,
                ..pushing(hook)
            },
            401,
            "wrong_app_id",
        ),
    ];
    for (knobs, status, outcome) in cases {
        env.sim.set_webhook(Some(knobs));
        assert_eq!(
            env.sim.push_record_finish(conf).await,
            vec![status],
            "{outcome}"
        );
        let page = metrics(server).await.expect("metrics");
        assert_eq!(events(&page, "unknown", outcome), 1.0, "{outcome}");
    }
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let url = format!("http://{hook}{PATH}");
    let oversized = client.post(&url).body(vec![b' '; 65 * 1024]).send().await;
    assert_eq!(oversized.expect("answer").status(), 413);
    let garbage = client.post(&url).body("{\"appID\": 1}").send().await;
    assert_eq!(garbage.expect("answer").status(), 400);
    let elsewhere = client
        .post(format!("http://{hook}/other"))
        .body("{}")
        .send()
        .await;
    assert_eq!(elsewhere.expect("answer").status(), 404);
    let page = metrics(server).await.expect("metrics");
    assert_eq!(events(&page, "unknown", "too_large"), 1.0);
    assert_eq!(events(&page, "unknown", "malformed"), 1.0);
    assert_eq!(
        ledger(env).event_count().expect("count"),
        0,
        "nothing queued"
    );
    // A replay: the first copy is taken, the second refused.
    env.sim.set_webhook(Some(SimWebhook {
        replay_nonce: true,
        ..pushing(hook)
    }));
    assert_eq!(env.sim.push_record_finish(conf).await, vec![200, 409]);
    let page = metrics(server).await.expect("metrics");
    assert_eq!(events(&page, "record.finish", "replay"), 1.0);
    assert_eq!(events(&page, "record.finish", "accepted"), 1.0);
    assert_eq!(
        ledger(env).event_count().expect("count"),
        1,
        "only the first copy"
    );
    run.stop().await;
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
        archived_media(&config.download.dir)
            .iter()
            .any(|p| p.to_string_lossy().contains("000000000000000000000000e7e7"))
    })
    .await;
    shutdown.cancel();
    let stopped = bounded(daemon).await;
    let _ = sim.kill();
    let _ = sim.wait();
    stopped.expect("join").expect("clean stop");
}

/// A signed envelope of `info` (the `eventInfo` object's text), as the
/// console sends it.
fn signed(env: &TestEnv, info: &str, nonce: &str) -> String {
    let timestamp = Millis::now().as_unix_ms();
    let signature = meeting_archiver::webhook::sign(
        env.app_key.as_bytes(),
        &env.app_id,
        timestamp,
        nonce,
        info,
    );
    format!(
        r#"{{"appID": "{}", "timestamp": {timestamp}, "nonce": "{nonce}", "signature": "{signature}", "eventInfo": {info}}}"#,
        env.app_id
    )
}

#[tokio::test]
async fn the_consoles_verification_is_answered_with_its_nonce_and_other_events_are_ignored() {
    let meeting = transcoding("e8e8e8e8e8e8e8e8e8e8e8e8e8e8e8e8", 1);
    let run = Running::start(&[&meeting], |_| {}).await;
    let (env, server, hook) = (&run.env, run.server, run.hook);
    let calls = env.sim.stats().downloadurls_calls;
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let url = format!("http://{hook}{PATH}");
    let verify = signed(
        env,
        r#"{"event": "meeting.verify", "timestamp": 1}"#,
        "85262798",
    );
    let answer = client.post(&url).body(verify).send().await.expect("answer");
    assert_eq!(answer.status(), 200);
    let body: serde_json::Value = answer.json().await.expect("json");
    assert_eq!(
        body,
        serde_json::json!({"event": "meeting.verify", "nonce": "85262798"})
    );
    let started = format!(
        r#"{{"event":"meeting.started","payload":{{"meetingInfo":{{"meetingUUID":"{}"}}}}}}"#,
        meeting.conf_uuid
    );
    let answer = client
        .post(&url)
        .body(signed(env, &started, "n-started"))
        .send()
        .await;
    assert_eq!(answer.expect("answer").status(), 200);
    let page = metrics(server).await.expect("metrics");
    assert_eq!(events(&page, "meeting.verify", "ignored"), 1.0);
    assert_eq!(events(&page, "meeting.started", "ignored"), 1.0);
    assert!(ledger(env).queued_events().expect("read").is_empty());
    let last = ledger(env).last_event().expect("read").expect("event");
    assert_eq!(
        (last.event.as_str(), last.outcome.as_deref()),
        ("meeting.started", Some("ignored"))
    );
    let env = run.stop().await;
    assert_eq!(env.sim.stats().downloadurls_calls, calls, "nothing polled");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_the_ledger_cannot_queue_is_answered_503_and_taken_when_sent_again() {
    let meeting = transcoding("e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9e9", 1);
    let run = Running::start(&[&meeting], |c| c.ledger.retry_for = Duration::from_secs(1)).await;
    let (env, server, hook) = (&run.env, run.server, run.hook);
    // Another program holds the ledger's write lock until told to let go.
    let (release, released) = std::sync::mpsc::channel::<()>();
    let (locked_tx, locked) = std::sync::mpsc::channel();
    let path = env.ledger_path();
    let holder = std::thread::spawn(move || {
        let conn = rusqlite::Connection::open(&path).expect("ledger opens");
        conn.execute_batch("BEGIN EXCLUSIVE").expect("locked");
        locked_tx.send(()).expect("signal");
        let _ = released.recv_timeout(TEST_TIMEOUT);
        conn.execute_batch("COMMIT").expect("unlocked");
    });
    locked
        .recv_timeout(TEST_TIMEOUT)
        .expect("the lock is taken");
    env.sim.set_webhook(Some(pushing(hook)));
    assert_eq!(
        env.sim.push_record_finish(&meeting.conf_uuid).await,
        vec![503]
    );
    release.send(()).expect("release");
    holder.join().expect("lock thread");
    assert_eq!(
        ledger(env).event_count().expect("count"),
        0,
        "nothing queued"
    );
    // The sender tries again; now it is taken and archived.
    assert_eq!(env.sim.finish_recording(ready(meeting)).await, vec![200]);
    until("the file archived", async || env.archived() == 2).await;
    let page = metrics(server).await.expect("metrics");
    assert_eq!(events(&page, "record.finish", "unavailable"), 1.0);
    run.stop().await;
}

#[tokio::test]
async fn a_slow_body_gets_408_and_an_endless_chunked_one_413_with_nothing_queued() {
    let ledger =
        meeting_archiver::ledger::LedgerHandle::new(Ledger::open_in_memory().expect("ledger"));
    let metrics = std::sync::Arc::new(meeting_archiver::metrics::Metrics::new());
    let (wake, mut woken) = tokio::sync::mpsc::channel(1);
    let hook = meeting_archiver::webhook::Webhook::new(
        "app".to_owned(),
        SecretString::from("key"),
        ledger.clone(),
        std::sync::Arc::clone(&metrics),
        wake,
    )
    .with_body_timeout(Duration::from_millis(300));
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let addr = listener.local_addr().expect("address");
    let server = tokio::spawn(axum::serve(listener, hook.router(PATH)).into_future());
    // Headers announce 100 bytes; 10 come, then nothing.
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let mut slow = tokio::net::TcpStream::connect(addr).await.expect("connect");
    let head =
        format!("POST {PATH} HTTP/1.1\r\nHost: x\r\nContent-Length: 100\r\n\r\n{{\"appID\":");
    slow.write_all(head.as_bytes()).await.expect("write");
    let mut answer = vec![0; 64];
    let n = bounded(slow.read(&mut answer)).await.expect("read");
    let answer = String::from_utf8_lossy(&answer[..n]).into_owned();
    assert!(answer.starts_with("HTTP/1.1 408"), "{answer:?}");
    // A chunked body (no length announced) that never stops at 64 KiB.
    let chunks =
        futures_util::stream::iter((0..100).map(|_| Ok::<_, std::io::Error>(vec![b' '; 4096])));
    let endless = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client")
        .post(format!("http://{addr}{PATH}"))
        .body(reqwest::Body::wrap_stream(chunks))
        .send()
        .await;
    assert_eq!(endless.expect("answer").status(), 413);
    let page = metrics.render(&Default::default(), 0);
    assert_eq!(events(&page, "unknown", "timeout"), 1.0);
    assert_eq!(events(&page, "unknown", "too_large"), 1.0);
    assert_eq!(ledger.call(|l| l.event_count()).await.expect("count"), 0);
    assert!(woken.try_recv().is_err(), "nobody woken");
    server.abort();
}
