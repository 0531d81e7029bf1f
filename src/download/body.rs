//! Telling a file from an error page: what a download host may send on a
//! 200 instead of the file (a JSON error for a spent token, an HTML page
//! from a proxy), and the `Content-Range` of a resumed transfer.

/// Extensions of recordings: a text body under one of these names is an
/// error answer, never the file.
const MEDIA_EXTENSIONS: [&str; 12] = [
    "mp4", "m4a", "m4v", "mp3", "aac", "wav", "flv", "mkv", "mov", "webm", "avi", "ts",
];

/// Whether a file is a recording (audio or video), told by its type (`Hd`,
/// `Sd`, `Aux`) or its name's extension. Other files (a chat log, subtitles)
/// may well be text or JSON.
pub fn is_media(file_type: &str, name: &str) -> bool {
    let media_type = ["hd", "sd", "aux"].contains(&file_type.to_ascii_lowercase().as_str());
    let ext = name.rsplit_once('.').map(|(_, e)| e.to_ascii_lowercase());
    media_type || ext.is_some_and(|e| MEDIA_EXTENSIONS.contains(&e.as_str()))
}

/// Whether the first bytes of a body are the API's error shape: a JSON
/// object with an `error_code` (what a refused token gets as a "file").
pub fn is_api_error(head: &[u8]) -> bool {
    let head = head.trim_ascii_start();
    if !head.starts_with(b"{") {
        return false;
    }
    let text = String::from_utf8_lossy(&head[..head.len().min(512)]).to_ascii_lowercase();
    text.contains("\"error_code\"")
}

/// Whether a content type says "this is a message, not a recording".
pub fn is_message_type(content_type: &str) -> bool {
    let ct = content_type.to_ascii_lowercase();
    ct.contains("json") || ct.contains("html") || ct.starts_with("text/") || ct.contains("xml")
}

/// Whether the first bytes of a body look like a JSON object or an HTML page
/// rather than media data.
pub fn looks_like_message(head: &[u8]) -> bool {
    let start = head
        .iter()
        .position(|b| !b.is_ascii_whitespace())
        .unwrap_or(head.len());
    let head = &head[start..];
    if head.starts_with(b"{") {
        let text = String::from_utf8_lossy(&head[..head.len().min(512)]).to_ascii_lowercase();
        return text.contains("\"error") || text.contains("\"code") || text.contains("\"msg");
    }
    let lower: Vec<u8> = head.iter().take(15).map(u8::to_ascii_lowercase).collect();
    lower.starts_with(b"<!doctype html") || lower.starts_with(b"<html")
}

/// A short, secret-free description of an error body (its error code and
/// message, when it is the API's JSON error shape).
pub fn describe_message(body: &[u8]) -> String {
    #[derive(serde::Deserialize)]
    struct ErrorBody {
        error_code: Option<String>,
        error_msg: Option<String>,
    }
    match serde_json::from_slice::<ErrorBody>(body) {
        Ok(ErrorBody {
            error_code: Some(code),
            error_msg,
        }) => format!("{code}: {}", error_msg.unwrap_or_default()),
        _ if looks_like_message(body) && body.trim_ascii_start().starts_with(b"<") => {
            "an HTML page".to_owned()
        }
        _ => format!("a {}-byte message", body.len()),
    }
}

/// Parses `Content-Range: bytes START-END/TOTAL` into (start, total); the
/// total may be `*` (unknown).
pub fn parse_content_range(value: &str) -> Option<(u64, Option<u64>)> {
    let rest = value.trim().strip_prefix("bytes")?.trim_start();
    let (range, total) = rest.split_once('/')?;
    let (start, end) = range.split_once('-')?;
    let start: u64 = start.trim().parse().ok()?;
    let end: u64 = end.trim().parse().ok()?;
    if end < start {
        return None;
    }
    let total = match total.trim() {
        "*" => None,
        t => Some(t.parse::<u64>().ok().filter(|&t| t > end)?),
    };
    Some((start, total))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn error_bodies_are_recognised_and_media_is_not() {
        assert!(looks_like_message(
            br#" {"error_code":"MMC.1","error_msg":"x"}"#
        ));
        assert!(looks_like_message(b"<!DOCTYPE html><html>"));
        assert!(looks_like_message(b"<HTML><body>bad gateway"));
        assert!(!looks_like_message(b"\x00\x00\x00\x20ftypisom"));
        assert!(!looks_like_message(b"{binary-ish but no keys"));
        assert!(is_message_type("application/json;charset=UTF-8"));
        assert!(is_message_type("text/html"));
        assert!(!is_message_type("video/mp4"));
        assert!(!is_message_type("application/octet-stream"));
    }

    #[test]
    fn media_is_told_by_type_or_extension_and_only_the_error_shape_refuses_text() {
        assert!(is_media("Hd", "0_0.mp4"));
        assert!(is_media("aux", "x"));
        assert!(is_media("Other", "meeting.M4A"));
        assert!(!is_media("Chat", "chat.txt"));
        assert!(!is_media("Subtitle", "zh.json"));
        assert!(is_api_error(
            br#" {"error_code":"MMC.111070011","error_msg":"x"}"#
        ));
        assert!(!is_api_error(br#"{"code": "zh-CN", "msg": ["hello"]}"#));
        assert!(!is_api_error(b"00:00:01 alice: error_code is not a thing"));
    }

    #[test]
    fn error_descriptions_carry_the_code_only() {
        let d = describe_message(br#"{"error_code":"USG.000000004","error_msg":"token invalid"}"#);
        assert_eq!(d, "USG.000000004: token invalid");
        assert_eq!(describe_message(b"<html>proxy</html>"), "an HTML page");
    }

    #[test]
    fn content_ranges_parse_strictly() {
        assert_eq!(
            parse_content_range("bytes 100-199/200"),
            Some((100, Some(200)))
        );
        assert_eq!(parse_content_range("bytes 0-9/*"), Some((0, None)));
        assert_eq!(parse_content_range("bytes 10-5/20"), None);
        assert_eq!(parse_content_range("bytes 0-19/20x"), None);
        assert_eq!(parse_content_range("bytes 0-19/19"), None);
        assert_eq!(parse_content_range("items 0-1/2"), None);
    }
}
