//! One download: a single HTTP transfer of one recording file into its
//! partial file, hashing SHA-256 as it goes, resuming with `Range` when the
//! server honours it. Anything that is not the file (an error status, a JSON
//! or HTML body on a 200, a body whose length differs from what the headers
//! promised) is refused and classified, so that the worker knows whether a
//! fresh token is needed, and never reaches the archive.

mod body;
mod clients;
mod partial;

use std::path::Path;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, HeaderValue, RANGE};
use secrecy::{ExposeSecret, SecretString};
use sha2::Digest;
use tokio_util::sync::CancellationToken;

pub use body::{describe_message, is_message_type, looks_like_message, parse_content_range};
pub use clients::{ClientError, DownloadClients, TlsOptions, api_client};
use partial::Partial;

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
    /// The HTTP status (200, or 206 for a resume).
    pub status: u16,
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
}

/// Runs one transfer. `on_bytes` is told of every chunk written (progress).
pub async fn fetch(
    transfer: Transfer<'_>,
    cancel: &CancellationToken,
    on_bytes: &(dyn Fn(u64) + Sync),
) -> Result<Fetched, FetchError> {
    let disk = |e: std::io::Error| {
        FetchError::failed(
            None,
            format!("writing {}: {e}", transfer.partial.display()),
            0,
        )
    };
    let mut partial = Partial::open(transfer.partial, transfer.resume_from)
        .await
        .map_err(disk)?;
    let response = send(&transfer, partial.len).await?;
    let status = response.status();
    let expected = check_response(&response, &mut partial).await?;
    let received = stream_body(response, &mut partial, cancel, on_bytes).await?;
    let size = partial.sync().await.map_err(disk)?;
    if size == 0 {
        // No recording is empty: an empty 200 is an error answer in disguise.
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
        FetchError::failed(
            None,
            format!("request failed: {}", crate::telemetry::error_chain(&e)),
            offset,
        )
    })
}

/// Checks status and headers; on a 200 to a ranged request restarts the
/// partial file. Returns the total size the server announced, if any.
async fn check_response(
    response: &reqwest::Response,
    partial: &mut Partial,
) -> Result<Option<u64>, FetchError> {
    let status = response.status();
    let offset = partial.len;
    let header = |name| {
        response
            .headers()
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let length: Option<u64> = header(CONTENT_LENGTH).and_then(|v| v.trim().parse().ok());
    let content_type = header(CONTENT_TYPE).unwrap_or("").to_owned();
    match status {
        StatusCode::UNAUTHORIZED
        | StatusCode::FORBIDDEN
        | StatusCode::NOT_FOUND
        | StatusCode::GONE => Err(FetchError::TokenRejected {
            status: status.as_u16(),
            detail: format!("HTTP {status}"),
        }),
        StatusCode::RANGE_NOT_SATISFIABLE => Err(FetchError::failed(
            Some(416),
            "server refused the resume range; starting over",
            0,
        )),
        StatusCode::OK if is_message_type(&content_type) => Err(FetchError::TokenRejected {
            status: 200,
            detail: format!("HTTP 200 carrying {content_type} instead of the file"),
        }),
        StatusCode::OK => {
            if offset > 0 {
                tracing::info!(
                    offset,
                    "server ignored the range; downloading from the start"
                );
                partial
                    .restart()
                    .await
                    .map_err(|e| FetchError::failed(None, e.to_string(), 0))?;
            }
            Ok(length)
        }
        StatusCode::PARTIAL_CONTENT => {
            let range = header(CONTENT_RANGE).and_then(parse_content_range);
            match range {
                Some((start, total)) if start == offset => Ok(total.or(length.map(|l| l + offset))),
                _ => Err(FetchError::failed(
                    Some(206),
                    format!(
                        "206 with Content-Range {:?} does not start at {offset}; starting over",
                        header(CONTENT_RANGE)
                    ),
                    0,
                )),
            }
        }
        s => Err(FetchError::failed(
            Some(s.as_u16()),
            format!("HTTP {s}"),
            offset,
        )),
    }
}

/// Streams the body into the partial file until it ends, breaks or
/// shutdown is asked for (checked between chunks).
async fn stream_body(
    mut response: reqwest::Response,
    partial: &mut Partial,
    cancel: &CancellationToken,
    on_bytes: &(dyn Fn(u64) + Sync),
) -> Result<u64, FetchError> {
    let status = response.status().as_u16();
    let start = partial.len;
    let mut sniffed = start > 0;
    loop {
        let next = tokio::select! {
            biased;
            () = cancel.cancelled() => None,
            chunk = response.chunk() => Some(chunk),
        };
        let received = partial.len - start;
        let chunk = match next {
            None => {
                let kept = partial.sync().await.unwrap_or(start);
                return Err(FetchError::Interrupted {
                    partial: kept,
                    received,
                });
            }
            Some(Ok(Some(chunk))) => chunk,
            Some(Ok(None)) => return Ok(received),
            Some(Err(e)) => {
                let kept = partial.sync().await.unwrap_or(start);
                return Err(FetchError::Failed {
                    status: Some(status),
                    detail: format!(
                        "transfer broke after {received} bytes: {}",
                        crate::telemetry::error_chain(&e)
                    ),
                    partial: kept,
                    received,
                });
            }
        };
        if !sniffed {
            sniffed = true;
            if looks_like_message(&chunk) {
                let _ = partial.restart().await;
                return Err(FetchError::TokenRejected {
                    status,
                    detail: format!("the body is {}, not the file", describe_message(&chunk)),
                });
            }
        }
        partial
            .write(&chunk)
            .await
            .map_err(|e| FetchError::Failed {
                status: Some(status),
                detail: format!("writing the partial file: {e}"),
                partial: start,
                received,
            })?;
        on_bytes(chunk.len() as u64);
    }
}
