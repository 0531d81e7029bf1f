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
use super::scenario::UrlStyle;
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
    let ready_call = state.calls - state.meeting.not_ready_calls;
    let files: Vec<_> = state
        .meeting
        .files
        .iter()
        .filter(|f| state.meeting.lists(f, ready_call))
        .skip(skip)
        .take(size)
        .cloned()
        .collect();
    let conf = state.meeting.conf_uuid.clone();
    let nonce = hex::encode(rand::random::<[u8; 4]>());
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
                "url": listed_url(&base, &file.path, cfg.url_style, &nonce),
            })
        })
        .collect();
    Some(json!({ "recordUrls": [ { "confUuid": conf, "urls": urls } ] }))
}

/// A file's URL in the scenario's style (`nonce` is fresh per listing).
fn listed_url(base: &str, path: &str, style: UrlStyle, nonce: &str) -> String {
    match style {
        UrlStyle::Plain => format!("{base}{path}"),
        UrlStyle::NoncePath => format!("{base}/n/{nonce}{path}"),
        UrlStyle::QueryNamed => {
            let named: String = url::form_urlencoded::byte_serialize(path.as_bytes()).collect();
            format!("{base}/download/file.mp4?f={named}")
        }
    }
}

/// The file path a download request names, in the scenario's style; the
/// download host serves only URLs of that style.
pub(crate) fn requested_path(uri: &axum::http::Uri, style: UrlStyle) -> Option<String> {
    match style {
        UrlStyle::Plain => Some(uri.path().to_owned()),
        UrlStyle::NoncePath => {
            let rest = uri.path().strip_prefix("/n/")?;
            let (_nonce, path) = rest.split_once('/')?;
            Some(format!("/{path}"))
        }
        UrlStyle::QueryNamed => {
            if uri.path() != "/download/file.mp4" {
                return None;
            }
            url::form_urlencoded::parse(uri.query()?.as_bytes())
                .find(|(key, _)| key == "f")
                .map(|(_, value)| value.into_owned())
        }
    }
}
