//! One download: a single HTTP transfer of one recording file into its
//! partial file, hashing SHA-256 as it goes, resuming with `Range` when the
//! server honours it. Anything that is not the file (an error status, a JSON
//! or HTML body on a 200, a body whose length differs from what the headers
//! promised) is refused and classified, so that the worker knows whether a
//! fresh token is needed, and never reaches the archive.

mod body;
mod clients;
mod partial;
mod response;
#[cfg(test)]
mod tests;

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use reqwest::header::{HeaderValue, RANGE};
use secrecy::{ExposeSecret, SecretString};
use sha2::Digest;
use tokio_util::sync::CancellationToken;

use crate::cloud::transport;

pub use body::{
    describe_message, is_api_error, is_media, is_message_type, looks_like_message,
    parse_content_range,
};
pub use clients::{ClientError, DownloadClients, TlsOptions, api_client, parse_cidr};
use partial::Partial;
pub use partial::prefix_digest;
use response::{check_response, stream_body};

/// A checkpoint is taken at least this often in bytes, whatever the interval.
pub const CHECKPOINT_BYTES: u64 = 64 * 1024 * 1024;

/// What a transfer tells its caller as it goes.
pub trait Observer: Sync {
    /// `n` more bytes were written (progress).
    fn bytes(&self, n: u64);
    /// The first `durable` bytes of the partial file are fsynced: record
    /// them, so that a crash resumes from there. Also called with 0 when
    /// the partial file restarts from the beginning.
    fn checkpoint(&self, durable: u64) -> impl Future<Output = ()> + Send;
}

/// Nobody listening: for one-off transfers and tests.
impl Observer for () {
    fn bytes(&self, _: u64) {}

    async fn checkpoint(&self, _: u64) {}
}

/// What one transfer needs.
pub struct Transfer<'a> {
    /// The HTTP client for the URL's host.
    pub client: &'a reqwest::Client,
    /// The download URL (untrusted; only fetched).
    pub url: &'a str,
    /// The single-use token, already marked spent in the ledger.
    pub token: &'a SecretString,
    /// The partial file.
    pub partial: &'a Path,
    /// Durable bytes of the partial file per the ledger: resume from here.
    pub resume_from: u64,
    /// How often to fsync and report a checkpoint while streaming.
    pub checkpoint_every: Duration,
    /// A probe: an earlier body of unannounced length ended at this
    /// offset; a 416 to `Range: bytes=<offset>-` confirms that end.
    pub confirm_end: Option<u64>,
    /// A recording ([`is_media`]): any text, JSON or HTML body is an error
    /// answer. For other files (chat logs, subtitles) only the API's error
    /// shape ([`is_api_error`]) or an HTML page is.
    pub media: bool,
}

/// A complete file in the partial area.
#[derive(Debug)]
pub struct Fetched {
    /// Its size.
    pub size: u64,
    /// Its hex SHA-256.
    pub sha256: String,
    /// Bytes received by this transfer (less than `size` after a resume).
    pub received: u64,
    /// The HTTP status (200, 206 for a resume, 416 for a confirmed end).
    pub status: u16,
    /// Whether the size is known to be the file's whole size: announced by
    /// `Content-Length` or `Content-Range`, or confirmed by a 416 probe.
    pub length_confirmed: bool,
}

/// Why a transfer did not produce the file.
#[derive(Debug, thiserror::Error)]
pub enum FetchError {
    /// The server refused the token (spent, expired or unknown): get a fresh one.
    #[error("download token refused: {detail}")]
    TokenRejected {
        /// The HTTP status.
        status: u16,
        /// What the server said (no secret).
        detail: String,
    },
    /// Any other failure; the partial file keeps `partial` durable bytes.
    #[error("{detail}")]
    Failed {
        /// The HTTP status, if a response came.
        status: Option<u16>,
        /// What went wrong.
        detail: String,
        /// Durable bytes kept for a resume.
        partial: u64,
        /// Bytes received in this attempt.
        received: u64,
    },
    /// The archive's disk is full (or over quota): not the file's fault.
    #[error("{detail}")]
    DiskFull {
        /// What failed, with the path.
        detail: String,
        /// Durable bytes kept for a resume.
        partial: u64,
        /// Bytes received in this attempt.
        received: u64,
    },
    /// The download host cannot be reached for a reason retrying will not
    /// fix (its certificate is not trusted or does not match, its name
    /// does not resolve): the file fails at once with the fix named.
    #[error("{detail}")]
    Permanent {
        /// What is wrong, with the host and the setting to check.
        detail: String,
        /// Durable bytes kept for a resume (after `retry`).
        partial: u64,
    },
    /// Shutdown stopped the transfer at a chunk boundary.
    #[error("interrupted by shutdown after {partial} bytes")]
    Interrupted {
        /// Durable bytes kept for a resume.
        partial: u64,
        /// Bytes received in this attempt.
        received: u64,
    },
}

impl FetchError {
    fn failed(status: Option<u16>, detail: impl Into<String>, partial: u64) -> FetchError {
        FetchError::Failed {
            status,
            detail: detail.into(),
            partial,
            received: 0,
        }
    }

    /// A local write error: `DiskFull` when the disk is out of space.
    fn disk(action: &str, path: &Path, e: &std::io::Error, partial: u64, received: u64) -> Self {
        let detail = format!("{action} {}: {e}", path.display());
        if is_out_of_space(e) {
            FetchError::DiskFull {
                detail,
                partial,
                received,
            }
        } else {
            FetchError::Failed {
                status: None,
                detail,
                partial,
                received,
            }
        }
    }
}

/// Whether an I/O error means "no space left" (ENOSPC) or "over quota" (EDQUOT).
pub fn is_out_of_space(e: &std::io::Error) -> bool {
    matches!(
        e.kind(),
        std::io::ErrorKind::StorageFull | std::io::ErrorKind::QuotaExceeded
    )
}

/// What the response's status and headers promise.
enum Promise {
    /// A body follows; the file's total size, if announced.
    Body(Option<u64>),
    /// A probe's 416: the earlier body already ended at the file's end.
    EndConfirmed,
}

/// Runs one transfer, telling `observer` of bytes and checkpoints.
pub async fn fetch<O: Observer>(
    transfer: Transfer<'_>,
    cancel: &CancellationToken,
    observer: &O,
) -> Result<Fetched, FetchError> {
    let path = transfer.partial;
    let mut partial = Partial::open(path, transfer.resume_from)
        .await
        .map_err(|e| FetchError::disk("opening", path, &e, 0, 0))?;
    let response = send(&transfer, partial.len).await?;
    let status = response.status();
    let expected = match check_response(&response, &transfer, &mut partial, observer).await? {
        Promise::Body(expected) => expected,
        Promise::EndConfirmed => {
            return Ok(Fetched {
                size: partial.len,
                sha256: hex::encode(partial.hasher.finalize()),
                received: 0,
                status: status.as_u16(),
                length_confirmed: true,
            });
        }
    };
    let streamed = stream_body(response, &transfer, &mut partial, cancel, observer).await?;
    let received = streamed.received;
    // A failing final flush (where a full disk often shows) keeps what the
    // last checkpoint made durable.
    let size = partial
        .sync()
        .await
        .map_err(|e| FetchError::disk("writing", path, &e, streamed.durable, received))?;
    if size == 0 && transfer.media {
        // No recording is empty: an empty 200 is an error answer in disguise.
        // (A chat log of a meeting nobody wrote in may well be.)
        return Err(FetchError::TokenRejected {
            status: status.as_u16(),
            detail: format!("HTTP {status} with an empty body instead of the file"),
        });
    }
    if let Some(expected) = expected.filter(|&e| e != size) {
        let keep = if size < expected { size } else { 0 };
        return Err(FetchError::Failed {
            status: Some(status.as_u16()),
            detail: format!("body ended at {size} bytes, but the server announced {expected}"),
            partial: keep,
            received,
        });
    }
    Ok(Fetched {
        size,
        sha256: hex::encode(partial.hasher.finalize()),
        received,
        status: status.as_u16(),
        length_confirmed: expected.is_some(),
    })
}

async fn send(transfer: &Transfer<'_>, offset: u64) -> Result<reqwest::Response, FetchError> {
    let mut token = HeaderValue::from_str(transfer.token.expose_secret()).map_err(|_| {
        FetchError::failed(
            None,
            "the download token is not a valid header value",
            offset,
        )
    })?;
    token.set_sensitive(true);
    let mut request = transfer
        .client
        .get(transfer.url)
        .header(reqwest::header::AUTHORIZATION, token);
    if offset > 0 {
        request = request.header(RANGE, format!("bytes={offset}-"));
    }
    request.send().await.map_err(|e| {
        let chain = crate::telemetry::error_chain(&e);
        match transport::classify(&chain) {
            transport::Failure::Transient => {
                FetchError::failed(None, format!("request failed: {chain}"), offset)
            }
            failure => {
                let host = e.url().and_then(|u| u.host_str()).unwrap_or("?").to_owned();
                FetchError::Permanent {
                    detail: transport::explain(failure, &host, &chain, true),
                    partial: offset,
                }
            }
        }
    })
}
