//! The answer to one download request: what its status and headers
//! promise (a body, with or without an announced length; a 416 that
//! confirms an end), and its body streamed into the partial file with
//! checkpoints, refused when it is an error answer instead of the file.

use std::path::Path;
use std::time::Instant;

use reqwest::StatusCode;
use reqwest::header::{CONTENT_LENGTH, CONTENT_RANGE, CONTENT_TYPE, HeaderValue};
use tokio_util::sync::CancellationToken;

use super::partial::{Partial, PendingSync};
use super::{
    CHECKPOINT_BYTES, FetchError, Observer, Promise, Transfer, describe_message, is_api_error,
    is_message_type, looks_like_message, parse_content_range,
};

/// Checks status and headers; on a 200 to a ranged request restarts the
/// partial file.
pub(super) async fn check_response<O: Observer>(
    response: &reqwest::Response,
    transfer: &Transfer<'_>,
    partial: &mut Partial,
    observer: &O,
) -> Result<Promise, FetchError> {
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
        StatusCode::RANGE_NOT_SATISFIABLE if offset > 0 && transfer.confirm_end == Some(offset) => {
            Ok(Promise::EndConfirmed)
        }
        StatusCode::RANGE_NOT_SATISFIABLE => Err(FetchError::failed(
            Some(416),
            "server refused the resume range; starting over",
            0,
        )),
        StatusCode::OK if refused_type(&content_type, transfer.media) => {
            Err(FetchError::TokenRejected {
                status: 200,
                detail: format!("HTTP 200 carrying {content_type} instead of the file"),
            })
        }
        StatusCode::OK => {
            if offset > 0 {
                tracing::info!(
                    offset,
                    "server ignored the range; downloading from the start"
                );
                restart(partial, transfer.partial, observer).await?;
            }
            Ok(Promise::Body(length))
        }
        StatusCode::PARTIAL_CONTENT => {
            let range = header(CONTENT_RANGE).and_then(parse_content_range);
            match range {
                Some((start, total)) if start == offset => {
                    Ok(Promise::Body(total.or(length.map(|l| l + offset))))
                }
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

/// Whether a 200's content type shows an error answer instead of the file.
fn refused_type(content_type: &str, media: bool) -> bool {
    if media {
        return is_message_type(content_type);
    }
    // A chat log or subtitle may be text or JSON; an HTML page is a proxy's.
    content_type.to_ascii_lowercase().contains("html")
}

/// Empties the partial file and records that nothing of it is durable, so
/// that a crash during the new body cannot resume from a stale checkpoint.
async fn restart<O: Observer>(
    partial: &mut Partial,
    path: &Path,
    observer: &O,
) -> Result<(), FetchError> {
    partial
        .restart()
        .await
        .map_err(|e| FetchError::disk("emptying", path, &e, 0, 0))?;
    observer.checkpoint(0).await;
    Ok(())
}

/// Streams the body into the partial file until it ends, breaks or
/// shutdown is asked for (checked between chunks), checkpointing as it goes.
/// A body streamed to its end.
pub(super) struct Streamed {
    /// Bytes received.
    pub(super) received: u64,
    /// Bytes known durable at the last checkpoint (what a failing final
    /// flush still keeps).
    pub(super) durable: u64,
}

pub(super) async fn stream_body<O: Observer>(
    mut response: reqwest::Response,
    transfer: &Transfer<'_>,
    partial: &mut Partial,
    cancel: &CancellationToken,
    observer: &O,
) -> Result<Streamed, FetchError> {
    let status = response.status().as_u16();
    let start = partial.len;
    let mut sniffed = start > 0;
    let mut checkpoint = (Instant::now(), start);
    let mut syncing: Option<PendingSync> = None;
    loop {
        let next = tokio::select! {
            biased;
            () = cancel.cancelled() => None,
            chunk = response.chunk() => Some(chunk),
        };
        let received = partial.len - start;
        let chunk = match next {
            None => {
                let kept = partial.sync().await.unwrap_or(checkpoint.1);
                return Err(FetchError::Interrupted {
                    partial: kept,
                    received,
                });
            }
            Some(Ok(Some(chunk))) => chunk,
            Some(Ok(None)) => {
                // The fsync under way (often the last chunk's) is reported,
                // as a checkpoint that waited for it would have been.
                let mut durable = checkpoint.1;
                if let Some(sync) = syncing.take() {
                    let path = transfer.partial;
                    durable = sync
                        .wait()
                        .await
                        .map_err(|e| FetchError::disk("writing", path, &e, durable, received))?;
                    observer.checkpoint(durable).await;
                }
                return Ok(Streamed { received, durable });
            }
            Some(Err(e)) => {
                let kept = partial.sync().await.unwrap_or(checkpoint.1);
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
            let refused = if transfer.media {
                looks_like_message(&chunk)
            } else {
                is_api_error(&chunk)
            };
            if refused {
                let _ = partial.restart().await;
                return Err(FetchError::TokenRejected {
                    status,
                    detail: format!("the body is {}, not the file", describe_message(&chunk)),
                });
            }
        }
        let path = transfer.partial;
        partial
            .write(&chunk)
            .await
            .map_err(|e| FetchError::disk("writing", path, &e, checkpoint.1, received))?;
        observer.bytes(chunk.len() as u64);
        // One fsync at a time runs beside the stream; its length is reported
        // durable only once it has ended.
        if let Some(sync) = syncing.take_if(|s| s.is_done()) {
            let durable = sync
                .wait()
                .await
                .map_err(|e| FetchError::disk("writing", path, &e, checkpoint.1, received))?;
            observer.checkpoint(durable).await;
            checkpoint.1 = durable;
        }
        let due = checkpoint.0.elapsed() >= transfer.checkpoint_every
            || partial.len - checkpoint.1 >= CHECKPOINT_BYTES;
        if due && syncing.is_none() {
            let sync = partial
                .start_sync()
                .await
                .map_err(|e| FetchError::disk("writing", path, &e, checkpoint.1, received))?;
            syncing = Some(sync);
            checkpoint.0 = Instant::now();
        }
    }
}
