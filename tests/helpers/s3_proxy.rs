//! A TCP proxy in front of moto for the object-storage fault tests: it
//! answers the next connections with 500 or 503, throttles what clients
//! send, and can play a bucket open to the public.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU16, AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

/// A TCP proxy in front of moto that can misbehave: answer the next
/// connections with an HTTP error, throttle uploads, play a public bucket.
pub struct FaultProxy {
    pub addr: SocketAddr,
    state: Arc<ProxyState>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Default)]
struct ProxyState {
    /// Connections still to answer with 500 (even) or 503 (odd).
    failures: AtomicUsize,
    /// Connections answered with an error so far.
    failed: AtomicUsize,
    /// Upload throttle in bytes per second; 0 = none.
    rate: AtomicU64,
    /// Request bytes forwarded to moto.
    forwarded: AtomicU64,
    /// Answer unsigned requests 200, as a bucket open to the public does.
    public: AtomicBool,
    /// While not 0, every upload request (PUT, POST) is answered with this
    /// status (403 AccessDenied, else 503 SlowDown).
    refuse_uploads: AtomicU16,
    /// Upload requests refused so far.
    refused: AtomicUsize,
    /// With `refuse_uploads`, also refuse reads (GET, HEAD).
    refuse_reads: AtomicBool,
}

impl FaultProxy {
    /// A proxy to `upstream` on a free port of 127.0.0.1.
    pub async fn start(upstream: SocketAddr) -> FaultProxy {
        let listener = TcpListener::bind("127.0.0.1:0").await.expect("bind proxy");
        let addr = listener.local_addr().expect("proxy addr");
        let state = Arc::new(ProxyState::default());
        let shared = Arc::clone(&state);
        let task = tokio::spawn(async move {
            while let Ok((client, _)) = listener.accept().await {
                tokio::spawn(serve(client, upstream, Arc::clone(&shared)));
            }
        });
        FaultProxy { addr, state, task }
    }

    /// The next `n` connections get a 500 or 503 answer.
    pub fn fail_next(&self, n: usize) {
        self.state.failures.store(n, Ordering::SeqCst);
    }

    /// Connections answered with an error so far.
    pub fn failed(&self) -> usize {
        self.state.failed.load(Ordering::SeqCst)
    }

    /// Until called again with 0, answers every upload request (PUT,
    /// POST: objects, parts, multipart starts and completions) with
    /// `status`: 403 `AccessDenied` (a revoked key), anything else 503
    /// `SlowDown` (an outage). Reads (GET, HEAD) still reach the store.
    pub fn refuse_uploads(&self, status: u16) {
        self.state.refuse_uploads.store(status, Ordering::SeqCst);
    }

    /// Like [`FaultProxy::refuse_uploads`], for every signed request:
    /// reads too (a revoked key).
    pub fn refuse_all(&self, status: u16) {
        self.state.refuse_reads.store(status != 0, Ordering::SeqCst);
        self.refuse_uploads(status);
    }

    /// Upload requests refused so far.
    pub fn refused(&self) -> usize {
        self.state.refused.load(Ordering::SeqCst)
    }

    /// Throttles request bodies to `bytes_per_sec` (0: full speed).
    pub fn throttle(&self, bytes_per_sec: u64) {
        self.state.rate.store(bytes_per_sec, Ordering::SeqCst);
    }

    /// Request bytes forwarded to moto so far.
    pub fn forwarded(&self) -> u64 {
        self.state.forwarded.load(Ordering::SeqCst)
    }

    /// From now on, answers unsigned requests 200 (a public bucket, which
    /// moto cannot be made into: it refuses anonymous reads whatever the
    /// policy says).
    pub fn pretend_public(&self) {
        self.state.public.store(true, Ordering::SeqCst);
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

async fn serve(mut client: TcpStream, upstream: SocketAddr, state: Arc<ProxyState>) {
    let Some(head) = read_head(&mut client).await else {
        return;
    };
    let lower = String::from_utf8_lossy(&head).to_ascii_lowercase();
    let unsigned = !lower.contains("\r\nauthorization:");
    if unsigned && state.public.load(Ordering::SeqCst) {
        let answer = "HTTP/1.1 200 OK\r\nContent-Length: 0\r\nConnection: close\r\n\r\n";
        let _ = client.write_all(answer.as_bytes()).await;
        let _ = client.shutdown().await;
        return;
    }
    let refuse = state.refuse_uploads.load(Ordering::SeqCst);
    let upload = lower.starts_with("put ")
        || lower.starts_with("post ")
        || (state.refuse_reads.load(Ordering::SeqCst) && !unsigned);
    let take_failure = state
        .failures
        .fetch_update(Ordering::SeqCst, Ordering::SeqCst, |n| n.checked_sub(1))
        .is_ok();
    if (refuse != 0 && upload) || take_failure {
        let length = lower
            .split("\r\ncontent-length:")
            .nth(1)
            .and_then(|rest| rest.split("\r\n").next())
            .and_then(|n| n.trim().parse::<u64>().ok())
            .unwrap_or(0);
        let _ = tokio::io::copy(&mut (&mut client).take(length), &mut tokio::io::sink()).await;
        let (status, code) = if refuse != 0 && upload {
            state.refused.fetch_add(1, Ordering::SeqCst);
            match refuse {
                403 => ("403 Forbidden", "AccessDenied"),
                _ => ("503 Service Unavailable", "SlowDown"),
            }
        } else {
            match state.failed.fetch_add(1, Ordering::SeqCst) % 2 {
                0 => ("500 Internal Server Error", "InternalError"),
                _ => ("503 Service Unavailable", "SlowDown"),
            }
        };
        let body = format!(
            "<?xml version=\"1.0\"?><Error><Code>{code}</Code><Message>injected</Message></Error>"
        );
        let answer = format!(
            "HTTP/1.1 {status}\r\nContent-Type: application/xml\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        );
        let _ = client.write_all(answer.as_bytes()).await;
        let _ = client.shutdown().await;
        return;
    }
    let Ok(mut server) = TcpStream::connect(upstream).await else {
        return;
    };
    if server.write_all(&head).await.is_err() {
        return;
    }
    state
        .forwarded
        .fetch_add(head.len() as u64, Ordering::SeqCst);
    let (mut client_read, mut client_write) = client.into_split();
    let (mut server_read, mut server_write) = server.into_split();
    let up = async {
        let mut buf = vec![0u8; 64 * 1024];
        loop {
            let rate = state.rate.load(Ordering::SeqCst);
            let chunk = if rate == 0 {
                buf.len()
            } else {
                buf.len().min((rate / 20).max(1) as usize)
            };
            let n = match client_read.read(&mut buf[..chunk]).await {
                Ok(0) | Err(_) => break,
                Ok(n) => n,
            };
            if server_write.write_all(&buf[..n]).await.is_err() {
                break;
            }
            state.forwarded.fetch_add(n as u64, Ordering::SeqCst);
            if rate > 0 {
                // A throttle, not a synchronisation: n bytes at `rate`.
                tokio::time::sleep(Duration::from_secs_f64(n as f64 / rate as f64)).await;
            }
        }
        let _ = server_write.shutdown().await;
    };
    let down = async {
        let _ = tokio::io::copy(&mut server_read, &mut client_write).await;
        let _ = client_write.shutdown().await;
    };
    tokio::join!(up, down);
}

/// The request line and headers of the first request on a connection.
async fn read_head(client: &mut TcpStream) -> Option<Vec<u8>> {
    let mut head = Vec::new();
    let mut byte = [0u8; 1];
    while !head.ends_with(b"\r\n\r\n") {
        if head.len() > 64 * 1024 || client.read(&mut byte).await.ok()? == 0 {
            return None;
        }
        head.push(byte[0]);
    }
    Some(head)
}
