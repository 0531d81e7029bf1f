//! `GET /v1/mmc/management/record/files` (the recording list, filtered by
//! recording start in Unix ms, paged, sorted) and `DELETE` of the same path
//! (removes whole meetings; 200 with an empty body).

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use serde_json::{Value, json};

use super::api::{Params, invalid_param};
use super::clock;
use super::gateway::{RequestId, authorize};
use super::state::{MeetingState, Shared};
use crate::clock::Millis;

/// Dates below this (other than 0) look like seconds, not milliseconds.
const MIN_MS: i64 = 100_000_000_000;

/// What record/files was asked for.
struct ListQuery {
    start: Millis,
    end: Millis,
    offset: usize,
    limit: usize,
    ascending: bool,
    search: Option<String>,
}

/// Handles the recording list.
pub(crate) async fn list(
    State(shared): State<Arc<Shared>>,
    Extension(rid): Extension<RequestId>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    shared.lock().stats.record_files_calls += 1;
    if let Err(refused) = authorize(&shared, &headers, &rid) {
        return refused.into_response();
    }
    if shared.lock().faults.record_list_refused {
        let msg = "no permission to list recordings";
        return super::gateway::api_error(StatusCode::FORBIDDEN, "MMC.111070403", msg, &rid);
    }
    match parse_query(&Params::parse(query.as_deref())) {
        Ok(q) => Json(listing(&shared, &q)).into_response(),
        Err(msg) => invalid_param(msg, &rid),
    }
}

fn parse_query(params: &Params) -> Result<ListQuery, &'static str> {
    let date = |key| match params.int(key) {
        Ok(Some(v)) if v == 0 || v >= MIN_MS => Ok(Millis::from_unix_ms(v)),
        Ok(Some(_)) => Err("startDate and endDate are Unix milliseconds"),
        Ok(None) => Err("startDate and endDate are required"),
        Err(()) => Err("startDate and endDate must be integers"),
    };
    let (start, end) = (date("startDate")?, date("endDate")?);
    if end < start {
        return Err("endDate is before startDate");
    }
    let (offset, limit) = params.paging()?;
    let ascending = match params.get("sortType") {
        None | Some("") | Some("DSC_StartTIME") => false,
        Some("ASC_StartTIME") => true,
        Some(_) => return Err("sortType must be ASC_StartTIME or DSC_StartTIME"),
    };
    let search = params
        .get("searchKey")
        .filter(|s| !s.is_empty())
        .map(str::to_lowercase);
    Ok(ListQuery {
        start,
        end,
        offset,
        limit,
        ascending,
        search,
    })
}

/// Builds `{"offset","limit","count","data"}` for the query.
fn listing(shared: &Shared, q: &ListQuery) -> Value {
    let inner = shared.lock();
    let mut hits: Vec<&MeetingState> = inner
        .meetings
        .iter()
        .filter(|m| (q.start..=q.end).contains(&m.meeting.start))
        .filter(|m| q.search.as_ref().is_none_or(|s| matches_search(m, s)))
        .collect();
    hits.sort_by_key(|m| m.meeting.start);
    if !q.ascending {
        hits.reverse();
    }
    let skip = if shared.config.record_offset_counts_pages {
        q.offset.saturating_mul(q.limit)
    } else {
        q.offset
    };
    let data: Vec<Value> = hits
        .iter()
        .skip(skip)
        .take(q.limit)
        .map(|m| item(m))
        .collect();
    json!({ "offset": q.offset, "limit": q.limit, "count": hits.len(), "data": data })
}

fn matches_search(m: &MeetingState, lowercase_key: &str) -> bool {
    m.meeting.subject.to_lowercase().contains(lowercase_key)
        || m.meeting.conf_id.contains(lowercase_key)
}

/// One record with exactly the documented field names.
fn item(m: &MeetingState) -> Value {
    let meeting = &m.meeting;
    let mut per_type: HashMap<&str, u64> = HashMap::new();
    for file in &meeting.files {
        *per_type.entry(file.file_type.as_str()).or_default() += 1;
    }
    let parts = per_type.values().copied().max().unwrap_or(0);
    let rcd_time = parts * 1800;
    let ready = m.ready();
    let decode_end = if ready {
        (meeting.start + Duration::from_secs(rcd_time + 300)).as_unix_ms()
    } else {
        0
    };
    json!({
        "confUUID": meeting.conf_uuid,
        "confID": meeting.conf_id,
        "url": [format!("https://meeting.example.invalid/#/play?confUUID={}", meeting.conf_uuid)],
        "rcdTime": rcd_time,
        "rcdSize": meeting.total_size().div_ceil(1024 * 1024),
        "subject": meeting.subject,
        "scheduserName": "Simulated Host",
        "startTime": clock::format_utc_minute(meeting.start),
        "isDecodeFinish": ready,
        "decodeEndTime": decode_end,
        "available": true,
        "recordAuthType": 0,
    })
}

/// Handles `DELETE record/files?confUUIDs=a,b`.
pub(crate) async fn delete(
    State(shared): State<Arc<Shared>>,
    Extension(rid): Extension<RequestId>,
    RawQuery(query): RawQuery,
    headers: HeaderMap,
) -> Response {
    if let Err(refused) = authorize(&shared, &headers, &rid) {
        return refused.into_response();
    }
    let params = Params::parse(query.as_deref());
    let Some(list) = params.get("confUUIDs").filter(|l| !l.trim().is_empty()) else {
        return invalid_param("confUUIDs is required", &rid);
    };
    let doomed: Vec<&str> = list.split(',').map(str::trim).collect();
    let mut inner = shared.lock();
    let before = inner.meetings.len();
    inner
        .meetings
        .retain(|m| !doomed.contains(&m.meeting.conf_uuid.as_str()));
    let removed = (before - inner.meetings.len()) as u64;
    inner.stats.meetings_deleted += removed;
    StatusCode::OK.into_response()
}
