//! `GET /v1/mmc/management/record/downloadurls`: one page of a meeting's files,
//! each with a FRESH single-use download token; no total count; nothing at
//! all while the meeting is "still transcoding" (its first N calls).

use std::sync::Arc;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{Value, json};

use super::api::{Params, invalid_param};
use super::gateway::{RequestId, api_error, authorize};
use super::state::Shared;

/// Handles downloadurls.
pub(crate) async fn urls(
    State(shared): State<Arc<Shared>>,
    Extension(rid): Extension<RequestId>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    shared.lock().stats.downloadurls_calls += 1;
    if let Err(refused) = authorize(&shared, &headers, &rid) {
        return refused.into_response();
    }
    let params = Params::parse(query.as_deref());
    let Some(conf_uuid) = params.get("confUUID").filter(|c| !c.is_empty()) else {
        return invalid_param("confUUID is required", &rid);
    };
    let (offset, limit) = match params.paging() {
        Ok(paging) => paging,
        Err(msg) => return invalid_param(msg, &rid),
    };
    match page(&shared, conf_uuid, offset, limit) {
        Some(body) => Json(body).into_response(),
        None => api_error(
            StatusCode::BAD_REQUEST,
            "MMC.111070005",
            "the conference does not exist",
            &rid,
        ),
    }
}

/// Builds the answer for one meeting, or `None` if it is unknown.
fn page(shared: &Shared, conf_uuid: &str, offset: usize, limit: usize) -> Option<Value> {
    let cfg = &shared.config;
    let mut inner = shared.lock();
    let base = inner
        .advertised_download_base
        .clone()
        .unwrap_or_else(|| cfg.download_base.clone());
    let index = inner
        .meetings
        .iter()
        .position(|m| m.meeting.conf_uuid == conf_uuid)?;
    let state = &mut inner.meetings[index];
    state.calls = state.calls.saturating_add(1);
    if state.calls <= state.meeting.not_ready_calls {
        return Some(json!({ "recordUrls": [] }));
    }
    let size = cfg.urls_page_cap.map_or(limit, |cap| cap.min(limit));
    let skip = if cfg.urls_offset_counts_pages {
        offset.saturating_mul(size)
    } else {
        offset
    };
    let files: Vec<_> = state
        .meeting
        .files
        .iter()
        .skip(skip)
        .take(size)
        .cloned()
        .collect();
    let conf = state.meeting.conf_uuid.clone();
    let urls: Vec<Value> = files
        .iter()
        .map(|file| {
            let token = if cfg.reissue_unused_tokens {
                inner.reissue_or_issue_token(&file.path, cfg.download_token_ttl)
            } else {
                inner.issue_download_token(&file.path, cfg.download_token_ttl)
            };
            json!({
                "token": token,
                "fileType": file.file_type,
                "url": format!("{base}{}", file.path),
            })
        })
        .collect();
    Some(json!({ "recordUrls": [ { "confUuid": conf, "urls": urls } ] }))
}
