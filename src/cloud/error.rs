//! The cloud client's error model: callers branch on these.

use std::time::Duration;

/// An error from the Huawei Cloud Meeting API. Messages name the endpoint
/// and carry the `X-Request-Id`, never a token or key.
#[derive(Debug, Clone, thiserror::Error)]
pub enum CloudError {
    /// 401: the access token (or, for `appauth`, the signature) was refused
    /// and re-authenticating did not help.
    #[error("{endpoint}: authentication refused ({detail}){}", rid(.request_id))]
    Unauthorized {
        /// The endpoint called.
        endpoint: &'static str,
        /// Error code and message.
        detail: String,
        /// The request id, if the server sent one.
        request_id: Option<String>,
    },
    /// 403: not allowed (downloadurls needs an enterprise administrator).
    #[error("{endpoint}: permission denied ({detail}){}", rid(.request_id))]
    Forbidden {
        /// The endpoint called.
        endpoint: &'static str,
        /// Error code and message.
        detail: String,
        /// The request id.
        request_id: Option<String>,
    },
    /// 400 and other refusals that retrying will not fix.
    #[error("{endpoint}: request refused with HTTP {status} ({detail}){}", rid(.request_id))]
    Rejected {
        /// The endpoint called.
        endpoint: &'static str,
        /// The HTTP status.
        status: u16,
        /// Error code and message.
        detail: String,
        /// The request id.
        request_id: Option<String>,
    },
    /// 429 or `APIG.0308`: throttled.
    #[error("{endpoint}: throttled (HTTP 429){}", rid(.request_id))]
    RateLimited {
        /// The endpoint called.
        endpoint: &'static str,
        /// The server's advice, if it gave one.
        retry_after: Option<Duration>,
        /// The request id.
        request_id: Option<String>,
    },
    /// The API cannot be reached for a reason retrying will not fix: its
    /// certificate is not trusted or does not match, its name does not
    /// resolve. The detail names the host and the setting to check.
    #[error("{endpoint}: {detail}")]
    Unreachable {
        /// The endpoint called.
        endpoint: &'static str,
        /// What is wrong, in words, and how to fix it.
        detail: String,
    },
    /// 5xx, a broken connection, a timeout or an answer that is not the
    /// expected JSON (an HTML page from a proxy): worth retrying.
    #[error("{endpoint}: {detail}{}", rid(.request_id))]
    Transient {
        /// The endpoint called.
        endpoint: &'static str,
        /// What went wrong.
        detail: String,
        /// The request id.
        request_id: Option<String>,
    },
}

fn rid(request_id: &Option<String>) -> String {
    match request_id {
        Some(id) => format!(" [request id {id}]"),
        None => String::new(),
    }
}

impl CloudError {
    /// Whether retrying the same call later may succeed.
    pub fn is_retryable(&self) -> bool {
        matches!(
            self,
            CloudError::RateLimited { .. } | CloudError::Transient { .. }
        )
    }
}
