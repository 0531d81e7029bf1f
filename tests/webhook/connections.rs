//! The listener's bounds, which hold before any request is authenticated:
//! a trickled or idle connection is closed after the header timeout, one
//! connection over the cap is closed at once, and a flood of refused
//! requests makes one log line, not one each.

use std::io::Write;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use axum::Router;
use axum::routing::get;
use meeting_archiver::daemon::listener::{ConnLimits, serve_router};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};
use tokio_util::sync::CancellationToken;

use super::*;

const HEADER_READ: Duration = Duration::from_millis(800);

/// Serves `app` within `limits` on a free loopback port.
async fn serving(app: Router, limits: ConnLimits) -> (SocketAddr, CancellationToken) {
    let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind");
    let addr = listener.local_addr().expect("address");
    let stop = CancellationToken::new();
    tokio::spawn(serve_router(
        listener,
        app,
        limits,
        stop.clone(),
        Duration::from_secs(1),
    ));
    (addr, stop)
}

fn hello() -> Router {
    Router::new().route("/", get(|| async { "hello" }))
}

/// Reads until the server closes the connection; what it sent.
async fn until_closed(stream: &mut TcpStream) -> String {
    let mut seen = Vec::new();
    let mut buf = [0; 1024];
    loop {
        match bounded(stream.read(&mut buf)).await {
            Ok(0) | Err(_) => return String::from_utf8_lossy(&seen).into_owned(),
            Ok(n) => seen.extend_from_slice(&buf[..n]),
        }
    }
}

#[tokio::test]
async fn a_trickled_request_head_and_an_idle_connection_are_closed_after_the_header_timeout() {
    let limits = ConnLimits {
        header_read: HEADER_READ,
        max_connections: 8,
    };
    let (addr, stop) = serving(hello(), limits).await;
    // Half a request line, then one byte every 100 ms: never a whole head.
    let mut trickle = TcpStream::connect(addr).await.expect("connect");
    let started = Instant::now();
    trickle.write_all(b"GET /").await.expect("write");
    let feeding = tokio::spawn(async move {
        for _ in 0..100 {
            tokio::time::sleep(Duration::from_millis(100)).await;
            if trickle.write_all(b"a").await.is_err() {
                return;
            }
        }
    });
    // A connection that sends nothing, and one idle after its request.
    let mut silent = TcpStream::connect(addr).await.expect("connect");
    let mut kept = TcpStream::connect(addr).await.expect("connect");
    kept.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .expect("write");
    let answered = until_closed(&mut kept).await;
    let idle_took = started.elapsed();
    assert!(
        answered.starts_with("HTTP/1.1 200") && answered.ends_with("hello"),
        "{answered:?}"
    );
    until_closed(&mut silent).await;
    let silent_took = started.elapsed();
    bounded(feeding).await.expect("feeder");
    let trickle_took = started.elapsed();
    eprintln!("closed after: trickle {trickle_took:?}, silent {silent_took:?}, idle {idle_took:?}");
    for took in [trickle_took, silent_took, idle_took] {
        assert!(
            took >= HEADER_READ - Duration::from_millis(100) && took < HEADER_READ * 4,
            "closed after {took:?}, header timeout {HEADER_READ:?}"
        );
    }
    stop.cancel();
}

#[tokio::test]
async fn a_connection_over_the_cap_is_closed_at_once_and_a_freed_slot_serves_again() {
    let limits = ConnLimits {
        header_read: Duration::from_secs(20),
        max_connections: 3,
    };
    let (addr, stop) = serving(hello(), limits).await;
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(TcpStream::connect(addr).await.expect("connect"));
    }
    let mut extra = TcpStream::connect(addr).await.expect("connect");
    let started = Instant::now();
    let answer = until_closed(&mut extra).await;
    assert!(answer.is_empty(), "{answer:?}");
    assert!(
        started.elapsed() < Duration::from_secs(5),
        "closed after {:?}",
        started.elapsed()
    );
    // The three held ones are still served.
    let mut first = held.remove(0);
    first
        .write_all(b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        .await
        .expect("write");
    assert!(until_closed(&mut first).await.ends_with("hello"));
    // Its slot is free again (the server may take a moment to notice).
    until("a new connection served", async || {
        let Ok(mut again) = TcpStream::connect(addr).await else {
            return false;
        };
        let request = b"GET / HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n";
        again.write_all(request).await.is_ok() && until_closed(&mut again).await.ends_with("hello")
    })
    .await;
    stop.cancel();
}

/// Log lines written while it is the default subscriber, info and above.
#[derive(Clone, Default)]
struct Captured(Arc<Mutex<Vec<u8>>>);

impl Write for Captured {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().expect("lock").extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn a_hundred_refused_requests_make_one_log_line_at_info() {
    let captured = Captured::default();
    let writer = captured.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_max_level(tracing::Level::INFO)
        .with_ansi(false)
        .with_writer(move || writer.clone())
        .finish();
    // A current-thread runtime: the server's tasks log on this thread.
    let _guard = tracing::subscriber::set_default(subscriber);
    let ledger =
        meeting_archiver::ledger::LedgerHandle::new(Ledger::open_in_memory().expect("ledger"));
    let metrics = Arc::new(meeting_archiver::metrics::Metrics::new());
    let (wake, _woken) = tokio::sync::mpsc::channel(1);
    let hook = meeting_archiver::webhook::Webhook::new(
        "app".to_owned(),
        SecretString::from("key"),
        ledger.clone(),
        Arc::clone(&metrics),
        wake,
    );
    let refusals = hook.refusals();
    let (addr, stop) = serving(hook.router(PATH), ConnLimits::DEFAULT).await;
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let url = format!("http://{addr}{PATH}");
    for i in 0..100 {
        let forged = format!(
            r#"{{"appID":"app","timestamp":{},"nonce":"n{i}","signature":"00","eventInfo":{{"event":"record.finish"}}}}"#,
            Millis::now().as_unix_ms()
        );
        let body = if i % 2 == 0 {
            forged
        } else {
            "garbage".to_owned()
        };
        let answer = client.post(&url).body(body).send().await.expect("answer");
        assert!(answer.status().is_client_error());
    }
    refusals.flush();
    let page = metrics.render(&Default::default(), 0);
    assert_eq!(events(&page, "unknown", "bad_signature"), 50.0);
    assert_eq!(events(&page, "unknown", "malformed"), 50.0);
    let text = String::from_utf8(captured.0.lock().expect("lock").clone()).expect("utf-8");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 1, "{text}");
    assert!(
        lines[0].contains("WARN") && lines[0].contains("refused 1 webhook request"),
        "{text}"
    );
    stop.cancel();
}

#[tokio::test]
async fn the_daemons_webhook_closes_a_connection_over_its_cap_at_once() {
    let meeting = transcoding("edededededededededededededededed", 1);
    let run = Running::start(&[&meeting], |_| {}).await;
    let cap = ConnLimits::DEFAULT.max_connections;
    let mut held = Vec::new();
    for _ in 0..cap {
        held.push(TcpStream::connect(run.hook).await.expect("connect"));
    }
    let mut extra = TcpStream::connect(run.hook).await.expect("connect");
    let started = Instant::now();
    assert!(until_closed(&mut extra).await.is_empty());
    assert!(
        started.elapsed() < ConnLimits::DEFAULT.header_read / 2,
        "closed after {:?}",
        started.elapsed()
    );
    drop(held);
    run.stop().await;
}
