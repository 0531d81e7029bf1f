//! What the endpoint refuses and how: forged, stale, foreign, replayed,
//! oversized, slow and malformed requests, a ledger that cannot queue; and
//! what it acknowledges without polling (the console's verification, other
//! event types).

use std::time::Duration;

use meeting_archiver::clock::Millis;
use meeting_archiver::ledger::Ledger;
use meeting_archiver::simulator::SimWebhook;
use secrecy::SecretString;

use super::*;

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
