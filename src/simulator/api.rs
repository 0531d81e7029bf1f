//! The API host's router and what its business endpoints share: query
//! parameters parsed by hand (so every bad value gets a Huawei-style 400, not
//! a framework error) and the `offset`/`limit` rules (default 20, 1..=500).

use std::collections::HashMap;
use std::sync::Arc;

use axum::Router;
use axum::http::StatusCode;
use axum::middleware::from_fn_with_state;
use axum::response::Response;
use axum::routing::{get, post};

use super::gateway::{RequestId, api_error, gateway, not_found};
use super::state::Shared;
use super::{auth, downloadurls, records};

/// Largest `limit` the business APIs accept.
pub(crate) const MAX_LIMIT: i64 = 500;
/// `limit` when none is given.
pub(crate) const DEFAULT_LIMIT: i64 = 20;

/// The API host: appauth, record/files, downloadurls, behind the gateway.
pub(crate) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/v2/usg/acs/auth/appauth", post(auth::appauth))
        .route(
            "/v1/mmc/management/record/files",
            get(records::list).delete(records::delete),
        )
        .route(
            "/v1/mmc/management/record/downloadurls",
            get(downloadurls::urls),
        )
        .fallback(not_found)
        .layer(from_fn_with_state(shared.clone(), gateway))
        .with_state(shared)
}

/// Decoded query parameters (the last value wins when a key repeats).
pub(crate) struct Params(HashMap<String, String>);

impl Params {
    /// Parses a raw query string (`None` = no query).
    pub fn parse(raw: Option<&str>) -> Params {
        let pairs = url::form_urlencoded::parse(raw.unwrap_or("").as_bytes());
        Params(pairs.into_owned().collect())
    }

    /// A parameter's value, if present.
    pub fn get(&self, key: &str) -> Option<&str> {
        self.0.get(key).map(String::as_str)
    }

    /// An integer parameter: `Ok(None)` if absent, `Err` if not an integer.
    pub fn int(&self, key: &str) -> Result<Option<i64>, ()> {
        self.get(key)
            .map(|v| v.trim().parse::<i64>().map_err(|_| ()))
            .transpose()
    }

    /// `offset` (default 0, not negative) and `limit` (default 20, 1..=500).
    pub fn paging(&self) -> Result<(usize, usize), &'static str> {
        let offset = self
            .int("offset")
            .map_err(|_| "offset must be an integer")?
            .unwrap_or(0);
        let limit = self
            .int("limit")
            .map_err(|_| "limit must be an integer")?
            .unwrap_or(DEFAULT_LIMIT);
        if offset < 0 {
            return Err("offset must not be negative");
        }
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err("limit must be between 1 and 500");
        }
        let offset = usize::try_from(offset).map_err(|_| "offset too large")?;
        let limit = usize::try_from(limit).map_err(|_| "limit too large")?;
        Ok((offset, limit))
    }
}

/// A 400 "invalid parameter" error.
pub(crate) fn invalid_param(msg: &str, rid: &RequestId) -> Response {
    api_error(StatusCode::BAD_REQUEST, "MMC.111070001", msg, rid)
}
