//! Checkpoints as an observer sees them, against a tiny HTTP server on
//! 127.0.0.1 that writes its answer slowly: taken at least once per
//! interval, never ahead of the synced partial file, and reset to 0 when a
//! server answers a ranged request with the whole file.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, Instant};

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::sync::oneshot;

use super::*;

/// Bytes per write of the test server: one loopback segment, so one chunk.
const CHUNK: usize = 4096;
/// How long the server waits before each chunk: several intervals.
const PAUSE: Duration = Duration::from_millis(200);
/// The transfer's checkpoint interval.
const INTERVAL: Duration = Duration::from_millis(50);
/// Leeway for the scheduler between the observer's clock and the transfer's.
const SLACK: Duration = Duration::from_millis(100);

/// What the observer saw, in order.
#[derive(Debug)]
enum Event {
    Bytes {
        len: u64,
        at: Instant,
    },
    Checkpoint {
        durable: u64,
        on_disk: Vec<u8>,
        at: Instant,
    },
}

/// Records bytes and checkpoints, reading the partial file at each
/// checkpoint to see what was really written by then.
struct Recorder {
    partial: PathBuf,
    events: Mutex<Vec<Event>>,
}

impl Recorder {
    fn new(partial: &Path) -> Recorder {
        Recorder {
            partial: partial.to_owned(),
            events: Mutex::new(Vec::new()),
        }
    }

    fn events(self) -> Vec<Event> {
        self.events.into_inner().expect("events lock")
    }
}

impl Observer for Recorder {
    fn bytes(&self, len: u64) {
        let at = Instant::now();
        self.events
            .lock()
            .expect("events lock")
            .push(Event::Bytes { len, at });
    }

    async fn checkpoint(&self, durable: u64) {
        let on_disk = std::fs::read(&self.partial).expect("partial file readable");
        let at = Instant::now();
        let event = Event::Checkpoint {
            durable,
            on_disk,
            at,
        };
        self.events.lock().expect("events lock").push(event);
    }
}

/// A recording-like body that no sniffing takes for a message.
fn body(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i * 7 % 251) as u8).collect()
}

/// Serves one request on 127.0.0.1 with `200 OK` and `body`, one [`CHUNK`]
/// after each [`PAUSE`]; sends back the request's head.
async fn slow_server(body: Vec<u8>) -> (String, oneshot::Receiver<String>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind");
    let url = format!(
        "http://{}/download/x/0_0.mp4",
        listener.local_addr().expect("addr")
    );
    let (head_tx, head_rx) = oneshot::channel();
    tokio::spawn(async move {
        let (mut socket, _) = listener.accept().await.expect("accept");
        let mut head = Vec::new();
        let mut buf = [0u8; 1024];
        while !head.windows(4).any(|w| w == b"\r\n\r\n") {
            let n = socket.read(&mut buf).await.expect("read request");
            assert!(n > 0, "the request ended before its head");
            head.extend_from_slice(&buf[..n]);
        }
        let _ = head_tx.send(String::from_utf8_lossy(&head).into_owned());
        let answer = format!(
            "HTTP/1.1 200 OK\r\nContent-Type: video/mp4\r\nContent-Length: {}\r\n\r\n",
            body.len()
        );
        socket
            .write_all(answer.as_bytes())
            .await
            .expect("write head");
        for chunk in body.chunks(CHUNK) {
            tokio::time::sleep(PAUSE).await;
            socket.write_all(chunk).await.expect("write chunk");
        }
    });
    (url, head_rx)
}

/// Fetches `url` into `partial`, resuming from `resume_from`.
async fn fetch_into(url: &str, partial: &Path, resume_from: u64, observer: &Recorder) -> Fetched {
    let client = reqwest::Client::builder()
        .no_proxy()
        .build()
        .expect("client");
    let token = SecretString::from("a".repeat(64));
    let transfer = Transfer {
        client: &client,
        url,
        token: &token,
        partial,
        resume_from,
        checkpoint_every: INTERVAL,
        confirm_end: None,
        media: true,
    };
    let cancel = CancellationToken::new();
    let fetching = fetch(transfer, &cancel, observer);
    tokio::time::timeout(Duration::from_secs(30), fetching)
        .await
        .expect("the transfer ends in time")
        .expect("the transfer succeeds")
}

/// Every checkpoint covers exactly what was written before it and is on
/// disk: its durable length is the file's length, and those bytes are the
/// body's first bytes.
fn assert_checkpoints_match_the_file(events: &[Event], body: &[u8]) {
    let mut written = 0;
    for event in events {
        match event {
            Event::Bytes { .. } => written += 1,
            Event::Checkpoint {
                durable, on_disk, ..
            } => {
                let durable = usize::try_from(*durable).expect("small");
                assert_eq!(on_disk.len(), durable, "durable length is the file's");
                assert!(
                    on_disk[..] == body[..durable],
                    "durable bytes are the body's"
                );
                assert!(written > 0 || durable == 0, "a checkpoint follows a write");
            }
        }
    }
}

#[tokio::test]
async fn checkpoints_come_every_interval_and_match_the_synced_partial_file() {
    let body = body(5 * CHUNK);
    let (url, _) = slow_server(body.clone()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let partial = dir.path().join("1.part");
    let recorder = Recorder::new(&partial);
    let fetched = fetch_into(&url, &partial, 0, &recorder).await;
    assert_eq!((fetched.size, fetched.status), (body.len() as u64, 200));
    assert_eq!(std::fs::read(&partial).expect("read"), body);

    let events = recorder.events();
    assert_checkpoints_match_the_file(&events, &body);
    // A chunk that comes an interval (and some leeway) after the last
    // checkpoint starts an fsync (beside the stream); the checkpoint that
    // covers it is reported once that fsync ends: at a later chunk, or at
    // the end of the body at the latest.
    let mut last = None;
    let mut due = 0;
    let mut received = 0u64;
    for (i, event) in events.iter().enumerate() {
        match event {
            Event::Checkpoint { at, .. } => last = Some(*at),
            Event::Bytes { len, at } => {
                received += len;
                if last.is_some_and(|l| *at - l >= INTERVAL + SLACK) {
                    due += 1;
                    let covered = events[i + 1..].iter().any(
                        |e| matches!(e, Event::Checkpoint { durable, .. } if *durable >= received),
                    );
                    assert!(
                        covered,
                        "no checkpoint covers a chunk an interval late: {events:?}"
                    );
                }
            }
        }
    }
    assert!(due >= 2, "the pauses made checkpoints due: {events:?}");
    let last_durable = events.iter().rev().find_map(|e| match e {
        Event::Checkpoint { durable, .. } => Some(*durable),
        Event::Bytes { .. } => None,
    });
    assert_eq!(last_durable, Some(body.len() as u64), "the last chunk too");
}

#[tokio::test]
async fn a_200_to_a_ranged_request_checkpoints_0_before_the_new_body() {
    let body = body(3 * CHUNK);
    let (url, head) = slow_server(body.clone()).await;
    let dir = tempfile::tempdir().expect("tempdir");
    let partial = dir.path().join("2.part");
    std::fs::write(&partial, vec![0xEE; 1000]).expect("stale partial");
    let recorder = Recorder::new(&partial);
    let fetched = fetch_into(&url, &partial, 1000, &recorder).await;
    let head = head.await.expect("request head").to_ascii_lowercase();
    assert!(head.contains("range: bytes=1000-"), "{head}");
    assert_eq!((fetched.size, fetched.status), (body.len() as u64, 200));
    assert_eq!(fetched.received, body.len() as u64);
    assert_eq!(std::fs::read(&partial).expect("read"), body);

    let events = recorder.events();
    match events.first() {
        Some(Event::Checkpoint {
            durable: 0,
            on_disk,
            ..
        }) => assert!(on_disk.is_empty(), "the stale bytes are gone"),
        other => panic!("the first report is a checkpoint of 0, not {other:?}"),
    }
    assert_checkpoints_match_the_file(&events, &body);
}
