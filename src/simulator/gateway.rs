//! The API gateway in front of every API endpoint: stamps an `X-Request-Id`,
//! counts deprecated headers, injects API faults (500, 429, an HTML page, a
//! latency) and checks `X-Access-Token` for business calls. Also the JSON error helper.

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::{HeaderMap, HeaderValue, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::json;

use super::state::Shared;

/// The request ID of the API call being answered (also in its error bodies).
#[derive(Clone, Debug)]
pub(crate) struct RequestId(pub String);

/// A Huawei-style JSON error: `{"error_code","error_msg","request_id"}`.
pub(crate) fn api_error(status: StatusCode, code: &str, msg: &str, rid: &RequestId) -> Response {
    let body = json!({"error_code": code, "error_msg": msg, "request_id": rid.0});
    (status, Json(body)).into_response()
}

/// An injected API fault.
enum ApiFault {
    Internal,
    Throttled,
    Html,
}

/// Middleware for every API route: request ID, deprecated headers, faults.
pub(crate) async fn gateway(
    State(shared): State<Arc<Shared>>,
    mut req: Request,
    next: Next,
) -> Response {
    let rid = RequestId(uuid::Uuid::new_v4().to_string());
    tracing::debug!(method = %req.method(), path = %req.uri().path(), request_id = %rid.0, "simulator API request");
    let (fault, latency) = {
        let mut inner = shared.lock();
        let headers = req.headers();
        if headers.contains_key("x-authorization-type") || headers.contains_key("x-site-id") {
            inner.stats.deprecated_headers_seen += 1;
        }
        let faults = inner.faults.clone();
        let fault = if inner.over_rate() {
            Some(ApiFault::Throttled)
        } else if inner.draw(faults.api_500) {
            Some(ApiFault::Internal)
        } else if inner.draw(faults.api_429) {
            Some(ApiFault::Throttled)
        } else if inner.draw(faults.api_html) {
            Some(ApiFault::Html)
        } else {
            None
        };
        if fault.is_some() {
            inner.stats.api_faults_injected += 1;
        }
        (fault, faults.api_latency)
    };
    if let Some(latency) = latency {
        tokio::time::sleep(latency).await;
    }
    let mut resp = match fault {
        Some(fault) => fault_response(fault, &rid),
        None => {
            req.extensions_mut().insert(rid.clone());
            next.run(req).await
        }
    };
    if let Ok(value) = HeaderValue::from_str(&rid.0) {
        resp.headers_mut().insert("x-request-id", value);
    }
    resp
}

fn fault_response(fault: ApiFault, rid: &RequestId) -> Response {
    match fault {
        ApiFault::Internal => api_error(
            StatusCode::INTERNAL_SERVER_ERROR,
            "MMC.111000000",
            "internal server error",
            rid,
        ),
        ApiFault::Throttled => api_error(
            StatusCode::TOO_MANY_REQUESTS,
            "APIG.0308",
            "throttling threshold has been reached",
            rid,
        ),
        ApiFault::Html => (
            StatusCode::OK,
            [(header::CONTENT_TYPE, "text/html; charset=utf-8")],
            "<!DOCTYPE html><html><head><title>502 Bad Gateway</title></head>\
             <body><h1>Bad Gateway</h1><p>The proxy server received an invalid response.</p></body></html>",
        )
            .into_response(),
    }
}

/// A business call refused for its access token (401 `USG.000000004`).
pub(crate) struct Unauthorized(RequestId);

impl IntoResponse for Unauthorized {
    fn into_response(self) -> Response {
        api_error(
            StatusCode::UNAUTHORIZED,
            "USG.000000004",
            "token invalid or expired",
            &self.0,
        )
    }
}

/// Checks `X-Access-Token`: a missing, unknown, expired or evicted one is refused.
pub(crate) fn authorize(
    shared: &Shared,
    headers: &HeaderMap,
    rid: &RequestId,
) -> Result<(), Unauthorized> {
    let token = headers.get("x-access-token").and_then(|v| v.to_str().ok());
    let mut inner = shared.lock();
    if token.is_some_and(|t| inner.access_token_live(t)) {
        return Ok(());
    }
    inner.stats.api_unauthorized += 1;
    Err(Unauthorized(rid.clone()))
}

/// Answer for API paths that do not exist.
pub(crate) async fn not_found(rid: Option<Extension<RequestId>>) -> Response {
    let rid = rid.map_or_else(|| RequestId(String::new()), |Extension(r)| r);
    api_error(
        StatusCode::NOT_FOUND,
        "APIG.0101",
        "the API does not exist or has not been published",
        &rid,
    )
}
