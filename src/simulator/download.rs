//! The download host (on 127.0.0.2): serves files by their RAW request path
//! to holders of a single-use token in `Authorization`, honours `Range:
//! bytes=N-` when enabled, and injects download faults in a fixed order.

use std::sync::Arc;

use axum::Json;
use axum::Router;
use axum::body::Body;
use axum::extract::{Request, State};
use axum::http::{HeaderValue, Method, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde_json::json;

use super::body::{Transfer, body_stream};
use super::scenario::TokenAnswer;
use super::state::{Inner, Shared, TokenCheck};

/// The download host: every path goes through [`serve`].
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new().fallback(serve).with_state(shared)
}

/// Answers one download request.
async fn serve(State(shared): State<Arc<Shared>>, req: Request) -> Response {
    let path = super::downloadurls::requested_path(req.uri(), shared.config.url_style)
        .unwrap_or_else(|| req.uri().path().to_string());
    tracing::debug!(%path, method = %req.method(), "simulator download request");
    if req.method() != Method::GET {
        return StatusCode::METHOD_NOT_ALLOWED.into_response();
    }
    let header_str = |name| {
        req.headers()
            .get(name)
            .and_then(|v: &HeaderValue| v.to_str().ok())
    };
    let token = header_str(header::AUTHORIZATION);
    let range = header_str(header::RANGE);
    let planned = {
        let mut inner = shared.lock();
        plan(
            &mut inner,
            shared.config.spent_token_answer,
            &path,
            token,
            range,
        )
    };
    match planned {
        Ok(transfer) => respond(&shared, transfer),
        Err(refusal) => refusal.into_response(),
    }
}

/// Decides the answer under the lock: 404 (an unknown path, or a listed
/// file made missing, after its token is spent), token problems, faults,
/// range.
fn plan(
    inner: &mut Inner,
    dead_answer: TokenAnswer,
    path: &str,
    token: Option<&str>,
    range: Option<&str>,
) -> Result<Transfer, Refusal> {
    inner.stats.download_requests += 1;
    *inner.requests_by_path.entry(path.to_owned()).or_default() += 1;
    let file = inner.file_at(path).ok_or(Refusal::NotFound)?;
    match inner.use_download_token(token, &file.path) {
        TokenCheck::Valid => {}
        TokenCheck::WrongFile => {
            return Err(Refusal::WrongFile);
        }
        TokenCheck::Spent | TokenCheck::Expired | TokenCheck::Unknown => {
            return Err(Refusal::DeadToken(dead_answer));
        }
    }
    if inner.faults.missing_files.contains(&file.path) {
        return Err(Refusal::NotFound);
    }
    let faults = inner.faults.clone();
    if inner.draw(faults.download_500) {
        inner.stats.download_faults_injected += 1;
        return Err(Refusal::Internal);
    }
    if inner.draw(faults.download_json_200) {
        inner.stats.download_faults_injected += 1;
        return Err(Refusal::JsonError);
    }
    let size = file.size;
    let start = match parse_range(range).filter(|_| inner.range_support) {
        Some(n) if n >= size => {
            let total = (!faults.no_length).then_some(size);
            return Err(Refusal::Unsatisfiable(total));
        }
        Some(n) => Some(n),
        None => None,
    };
    let first = inner.first_transfer(&file.path);
    let mut t =
        Transfer::whole_or_from(file, start, inner.range_support, faults.slow_bytes_per_sec);
    if first && faults.cut_first_transfer {
        inner.stats.download_faults_injected += 1;
        t.cut_half_way();
    } else if first && faults.end_first_transfer_early {
        inner.stats.download_faults_injected += 1;
        t.end_half_way();
    } else if inner.draw(faults.download_wrong_length) {
        inner.stats.download_faults_injected += 1;
        t.understate_body();
    }
    if faults.end_every_transfer_at_half {
        t.stop = t.stop.min(t.file.size / 2).max(t.start);
    }
    if faults.no_length {
        t.hide_length();
    }
    if t.partial {
        inner.stats.ranged_requests += 1;
    }
    Ok(t)
}

/// `bytes=N-` → `Some(N)`; any other form is ignored (whole file).
fn parse_range(range: Option<&str>) -> Option<usize> {
    let (from, to) = range?.trim().strip_prefix("bytes=")?.split_once('-')?;
    if !to.trim().is_empty() {
        return None;
    }
    from.trim().parse().ok()
}

/// Builds the 200/206 response with a streamed body (chunked when it
/// announces no length).
fn respond(shared: &Arc<Shared>, t: Transfer) -> Response {
    let mut resp = Response::new(Body::from_stream(body_stream(shared.clone(), &t)));
    *resp.status_mut() = if t.partial {
        StatusCode::PARTIAL_CONTENT
    } else {
        StatusCode::OK
    };
    let headers = resp.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        HeaderValue::from_static(t.file.content_type()),
    );
    if t.announce_length {
        headers.insert(header::CONTENT_LENGTH, HeaderValue::from(t.declared_len));
    }
    if t.accept_ranges {
        headers.insert(header::ACCEPT_RANGES, HeaderValue::from_static("bytes"));
    }
    if t.partial {
        let size = t.file.size;
        let total = if t.announce_length {
            size.to_string()
        } else {
            "*".to_owned()
        };
        let value = format!("bytes {}-{}/{total}", t.start, size.saturating_sub(1));
        if let Ok(v) = HeaderValue::from_str(&value) {
            headers.insert(header::CONTENT_RANGE, v);
        }
    }
    resp
}

/// Why a download gets no file.
enum Refusal {
    NotFound,
    WrongFile,
    DeadToken(TokenAnswer),
    Internal,
    JsonError,
    /// 416; the file's size, unless the server announces no length.
    Unsatisfiable(Option<usize>),
}

impl IntoResponse for Refusal {
    fn into_response(self) -> Response {
        match self {
            Refusal::NotFound => error(StatusCode::NOT_FOUND, "MMC.111070404", "file not found"),
            Refusal::WrongFile => error(
                StatusCode::FORBIDDEN,
                "MMC.111070403",
                "token is not for this file",
            ),
            Refusal::DeadToken(answer) => dead_token(answer),
            Refusal::Internal => error(
                StatusCode::INTERNAL_SERVER_ERROR,
                "MMC.111000000",
                "internal server error",
            ),
            Refusal::JsonError => error(
                StatusCode::OK,
                "MMC.111070010",
                "download failed, please retry",
            ),
            Refusal::Unsatisfiable(total) => unsatisfiable(total),
        }
    }
}

/// A small JSON error body with the given status.
fn error(status: StatusCode, code: &str, msg: &str) -> Response {
    (status, Json(json!({"error_code": code, "error_msg": msg}))).into_response()
}

/// The configured answer to a spent, expired or unknown token.
fn dead_token(answer: TokenAnswer) -> Response {
    let status = match answer {
        TokenAnswer::Status401 => StatusCode::UNAUTHORIZED,
        TokenAnswer::Status403 => StatusCode::FORBIDDEN,
        TokenAnswer::Status404 => StatusCode::NOT_FOUND,
        TokenAnswer::JsonError200 => StatusCode::OK,
    };
    error(status, "MMC.111070011", "download token invalid or expired")
}

/// 416 with `Content-Range: bytes */len`, or without the header when the
/// server announces no length.
fn unsatisfiable(total: Option<usize>) -> Response {
    let mut resp = StatusCode::RANGE_NOT_SATISFIABLE.into_response();
    let value = total.map(|size| HeaderValue::from_str(&format!("bytes */{size}")));
    if let Some(Ok(v)) = value {
        resp.headers_mut().insert(header::CONTENT_RANGE, v);
    }
    resp
}
