//! Download bodies streamed in chunks, so that the simulated faults are real
//! on the wire: a cut yields an I/O error mid-body (the connection breaks), a
//! short body ends before its Content-Length (or, when no length is
//! announced, simply ends), a slow one sleeps between chunks.

use std::io;
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use futures_util::Stream;

use super::meeting::SimFile;
use super::state::Shared;

/// Largest chunk handed to the connection at once.
const CHUNK: usize = 64 * 1024;

/// A planned 200/206 transfer of one file.
pub(crate) struct Transfer {
    pub file: SimFile,
    /// First byte sent.
    pub start: usize,
    /// Bytes actually sent end here (before `file.size` when faulty).
    pub stop: usize,
    /// The Content-Length announced.
    pub declared_len: u64,
    /// Announce the length at all: `Content-Length` and the total of a
    /// 206's `Content-Range` (else none and `*`).
    pub announce_length: bool,
    /// Answered 206.
    pub partial: bool,
    /// Announce `Accept-Ranges: bytes`.
    pub accept_ranges: bool,
    /// Break the connection with an I/O error at `stop`.
    pub fail_at_stop: bool,
    /// Throttle, bytes per second.
    pub rate: Option<u64>,
}

impl Transfer {
    /// The whole file (`start` = `None`) or bytes from `start` (a 206).
    pub fn whole_or_from(
        file: SimFile,
        start: Option<usize>,
        accept_ranges: bool,
        rate: Option<u64>,
    ) -> Transfer {
        let from = start.unwrap_or(0).min(file.size);
        Transfer {
            start: from,
            stop: file.size,
            declared_len: (file.size - from) as u64,
            announce_length: true,
            partial: start.is_some(),
            accept_ranges,
            fail_at_stop: false,
            rate,
            file,
        }
    }

    /// Sends about half the requested bytes, then breaks the connection.
    pub fn cut_half_way(&mut self) {
        self.stop = self.start + (self.file.size - self.start) / 2;
        self.fail_at_stop = true;
    }

    /// Sends about half the requested bytes, then ends the body cleanly.
    pub fn end_half_way(&mut self) {
        self.stop = self.start + (self.file.size - self.start) / 2;
    }

    /// Announces no length: no `Content-Length`, `*` as a 206's total.
    pub fn hide_length(&mut self) {
        self.announce_length = false;
    }

    /// Announces more bytes than are sent: about three quarters, then a clean end.
    pub fn understate_body(&mut self) {
        self.stop = self.start + (self.file.size - self.start) * 3 / 4;
        self.declared_len = self.declared_len.max(1);
    }
}

/// Where a body stream is.
struct Cursor {
    shared: Arc<Shared>,
    file: SimFile,
    pos: usize,
    stop: usize,
    fail_at_stop: bool,
    rate: Option<u64>,
    finished: bool,
}

/// The body of `t` as a stream of chunks; counts bytes and completions.
pub(crate) fn body_stream(
    shared: Arc<Shared>,
    t: &Transfer,
) -> impl Stream<Item = io::Result<Bytes>> + Send + 'static {
    let cursor = Cursor {
        shared,
        file: t.file.clone(),
        pos: t.start,
        stop: t.stop,
        fail_at_stop: t.fail_at_stop,
        rate: t.rate.map(|r| r.max(1)),
        finished: false,
    };
    futures_util::stream::unfold(cursor, next_chunk)
}

/// Yields the next chunk, the injected error, or the end.
async fn next_chunk(mut c: Cursor) -> Option<(io::Result<Bytes>, Cursor)> {
    if c.finished {
        return None;
    }
    if c.shared.cancel.is_cancelled() {
        c.finished = true;
        return Some((Err(io::Error::other("simulator shut down")), c));
    }
    // Pending once per chunk lets hyper flush what it buffered; without it a
    // cut or short body could drop the headers and earlier chunks unsent.
    tokio::task::yield_now().await;
    if c.pos >= c.stop {
        c.finished = true;
        if c.fail_at_stop {
            let cut = io::Error::new(io::ErrorKind::ConnectionReset, "simulated connection cut");
            return Some((Err(cut), c));
        }
        if c.file.size == 0 {
            // An empty file is complete without a single chunk.
            c.shared.lock().stats.downloads_completed += 1;
        }
        return None;
    }
    let n = c
        .rate
        .map_or(CHUNK, |r| (r / 10).clamp(1, CHUNK as u64) as usize);
    let n = n.min(c.stop - c.pos);
    if let Some(rate) = c.rate {
        let pause = Duration::from_secs_f64(n as f64 / rate as f64);
        tokio::select! {
            () = tokio::time::sleep(pause) => {}
            () = c.shared.cancel.cancelled() => {
                c.finished = true;
                return Some((Err(io::Error::other("simulator shut down")), c));
            }
        }
    }
    let chunk = c.file.content_range(c.pos, c.pos + n);
    c.pos += n;
    {
        let mut inner = c.shared.lock();
        inner.stats.bytes_served += n as u64;
        if c.pos == c.file.size && !c.fail_at_stop {
            inner.stats.downloads_completed += 1;
        }
    }
    Some((Ok(Bytes::from(chunk)), c))
}
