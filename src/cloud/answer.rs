//! Reading API answers: JSON of the expected shape on success, otherwise an
//! error classified by status and `error_code` (429 or `APIG.0308`:
//! throttled; 401 or `USG.000000004`: token; 5xx, HTML pages, broken JSON:
//! transient). The `X-Request-Id` is kept for every error.

use std::time::Duration;

use reqwest::header::HeaderValue;
use secrecy::{ExposeSecret, SecretString};
use serde::de::DeserializeOwned;

use super::{CloudError, transport};
use crate::telemetry::error_chain;

/// The `{"error_code", "error_msg", "request_id"}` body of API errors.
#[derive(serde::Deserialize, Default)]
struct ErrorBody {
    #[serde(default)]
    error_code: Option<String>,
    #[serde(default)]
    error_msg: Option<String>,
    #[serde(default)]
    request_id: Option<String>,
}

/// What came back, before it is judged.
struct Reply {
    endpoint: &'static str,
    status: u16,
    content_type: String,
    request_id: Option<String>,
    retry_after: Option<Duration>,
    error: Option<ErrorBody>,
}

/// Reads an answer: JSON of type `T` on 2xx, else a classified error.
pub(super) async fn read_json<T: DeserializeOwned>(
    endpoint: &'static str,
    sent: reqwest::Result<reqwest::Response>,
) -> Result<T, CloudError> {
    let response = sent.map_err(|e| unreached(endpoint, &e))?;
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .and_then(|v| v.to_str().ok())
            .map(str::to_owned)
    };
    let mut reply = Reply {
        endpoint,
        status: response.status().as_u16(),
        content_type: header("Content-Type").unwrap_or_default(),
        request_id: header("X-Request-Id"),
        retry_after: header("Retry-After")
            .and_then(|v| v.trim().parse::<u64>().ok())
            .map(Duration::from_secs),
        error: None,
    };
    let body = response.bytes().await.map_err(|e| CloudError::Transient {
        endpoint,
        detail: format!("reading the answer failed: {}", error_chain(&e)),
        request_id: reply.request_id.clone(),
    })?;
    // An empty body reads as JSON `null`: what a call with no answer (a
    // DELETE) expects, and still no struct for the calls that list.
    let body: &[u8] = if body.trim_ascii().is_empty() {
        b"null"
    } else {
        &body
    };
    reply.error = serde_json::from_slice(body).ok();
    let is_error_body = reply.error.as_ref().is_some_and(|e| e.error_code.is_some());
    let parsed = if (200..300).contains(&reply.status) && !is_error_body {
        serde_json::from_slice::<T>(body).map_err(|e| e.to_string())
    } else {
        Err(String::new())
    };
    let problem = match parsed {
        Ok(value) => return Ok(value),
        Err(problem) => problem,
    };
    if reply.request_id.is_none() {
        reply.request_id = reply.error.as_ref().and_then(|e| e.request_id.clone());
    }
    Err(classify(reply, &problem))
}

/// A request that got no answer: permanent (certificate, DNS) or transient.
fn unreached(endpoint: &'static str, error: &reqwest::Error) -> CloudError {
    let chain = error_chain(error);
    let host = error
        .url()
        .and_then(|u| u.host_str())
        .unwrap_or("the API host")
        .to_owned();
    match transport::classify(&chain) {
        transport::Failure::Transient => CloudError::Transient {
            endpoint,
            detail: format!("request failed: {chain}"),
            request_id: None,
        },
        failure => CloudError::Unreachable {
            endpoint,
            detail: transport::explain(failure, &host, &chain, false),
        },
    }
}

/// Maps a reply that is not the expected answer to an error.
fn classify(reply: Reply, problem: &str) -> CloudError {
    let Reply {
        endpoint,
        status,
        content_type,
        request_id,
        retry_after,
        error,
    } = reply;
    let code = error.as_ref().and_then(|e| e.error_code.clone());
    let detail = match &error {
        Some(e) if e.error_code.is_some() || e.error_msg.is_some() => format!(
            "{}: {}",
            e.error_code.as_deref().unwrap_or("no error code"),
            e.error_msg.as_deref().unwrap_or("no message")
        ),
        _ if problem.is_empty() => format!("HTTP {status}, {}", describe_type(&content_type)),
        _ => format!(
            "unexpected answer (HTTP {status}, {}): {problem}",
            describe_type(&content_type)
        ),
    };
    let throttled = status == 429 || code.as_deref() == Some("APIG.0308");
    let refused_token = status == 401 || code.as_deref() == Some("USG.000000004");
    match status {
        _ if throttled => CloudError::RateLimited {
            endpoint,
            retry_after,
            request_id,
        },
        _ if refused_token => CloudError::Unauthorized {
            endpoint,
            detail,
            request_id,
        },
        403 => CloudError::Forbidden {
            endpoint,
            detail,
            request_id,
        },
        s if (400..500).contains(&s) && s != 408 => CloudError::Rejected {
            endpoint,
            status: s,
            detail,
            request_id,
        },
        // 5xx, 408, and 2xx answers that are not the expected JSON (an HTML
        // page from a proxy, a JSON error without a known code).
        _ => CloudError::Transient {
            endpoint,
            detail,
            request_id,
        },
    }
}

fn describe_type(content_type: &str) -> String {
    if content_type.is_empty() {
        "no content type".to_owned()
    } else {
        format!("content type {content_type}")
    }
}

/// A header value marked sensitive, so that no debug output shows it.
pub(super) fn sensitive(secret: &SecretString) -> Result<HeaderValue, CloudError> {
    let mut value =
        HeaderValue::from_str(secret.expose_secret()).map_err(|_| CloudError::Rejected {
            endpoint: "client",
            status: 0,
            detail: "a credential contains characters not allowed in an HTTP header".to_owned(),
            request_id: None,
        })?;
    value.set_sensitive(true);
    Ok(value)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(status: u16, content_type: &str, body: &str) -> CloudError {
        let error: Option<ErrorBody> = serde_json::from_str(body).ok();
        let reply = Reply {
            endpoint: "test",
            status,
            content_type: content_type.to_owned(),
            request_id: Some("rid-1".to_owned()),
            retry_after: None,
            error,
        };
        classify(
            reply,
            if (200..300).contains(&status) {
                "bad shape"
            } else {
                ""
            },
        )
    }

    #[test]
    fn answers_are_classified_as_the_api_notes_say() {
        let html = reply(200, "text/html", "<html>proxy</html>");
        assert!(matches!(html, CloudError::Transient { .. }), "{html:?}");
        assert!(html.to_string().contains("text/html") && html.to_string().contains("rid-1"));
        let throttled = reply(403, "application/json", r#"{"error_code":"APIG.0308"}"#);
        assert!(matches!(throttled, CloudError::RateLimited { .. }));
        assert!(matches!(reply(429, "", ""), CloudError::RateLimited { .. }));
        let token = reply(
            200,
            "application/json",
            r#"{"error_code":"USG.000000004","error_msg":"x"}"#,
        );
        assert!(matches!(token, CloudError::Unauthorized { .. }));
        let missing = reply(
            400,
            "application/json",
            r#"{"error_code":"MMC.111070005","error_msg":"not found"}"#,
        );
        assert!(matches!(missing, CloudError::Rejected { status: 400, .. }));
        assert!(missing.to_string().contains("MMC.111070005"));
        assert!(matches!(reply(403, "", "{}"), CloudError::Forbidden { .. }));
        assert!(matches!(
            reply(502, "text/html", "<html>"),
            CloudError::Transient { .. }
        ));
        assert!(!reply(400, "", "").is_retryable() && reply(503, "", "").is_retryable());
    }
}
