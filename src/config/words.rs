//! serde's type errors in words: `invalid type: string "4", expected usize`
//! becomes `download.workers must be a number, got "4"`, without Rust type
//! names or the names of our raw structs. Secrets never get here: their
//! deserializer reports a wrong type without the value (`raw::RawSecret`).

/// `message` (serde's, as the `toml` crate reports it) reworded for `key`;
/// `None` when it is not a type or value error. `in_list`: the value is an
/// item of a list, not the key's whole value.
pub(super) fn type_error(key: &str, message: &str, in_list: bool) -> Option<String> {
    let (found, expected, invalid_value) = split(message)?;
    let expected = expected_words(expected, invalid_value);
    let found = found_words(found);
    Some(if in_list {
        format!("{key}: every item must be {expected}, got {found}")
    } else {
        format!("{key} must be {expected}, got {found}")
    })
}

/// (found, expected, whether the type was right but the value not).
fn split(message: &str) -> Option<(&str, &str, bool)> {
    if let Some(rest) = message.strip_prefix("unknown variant ") {
        let (found, expected) = rest.split_once(", expected ")?;
        return Some((found, expected, true));
    }
    let (rest, invalid_value) = match message.strip_prefix("invalid type: ") {
        Some(rest) => (rest, false),
        None => (message.strip_prefix("invalid value: ")?, true),
    };
    // The found part may quote a string holding ", expected ": split last.
    let (found, expected) = rest.rsplit_once(", expected ")?;
    Some((found, expected, invalid_value))
}

fn expected_words(expected: &str, invalid_value: bool) -> String {
    let expected = expected.trim();
    if let Some(max) = integer_max(expected) {
        return if invalid_value {
            format!("a whole number from 0 to {max}")
        } else {
            "a number".to_string()
        };
    }
    match expected {
        "a string" | "string" | "a borrowed string" => "a string".to_string(),
        "path string" => "a path (a string)".to_string(),
        "a boolean" => "true or false".to_string(),
        "a sequence" => "a list such as [\"a\", \"b\"]".to_string(),
        "a map" => "a table".to_string(),
        e if e.starts_with("struct ") => "a table".to_string(),
        e if e.starts_with("one of ") => format!("one of {}", quoted(&e["one of ".len()..])),
        e if e.contains('`') => quoted(e),
        e => e.to_string(),
    }
}

fn found_words(found: &str) -> String {
    let found = found.trim();
    if let Some(string) = found.strip_prefix("string ") {
        return string.to_string();
    }
    for prefix in [
        "integer ",
        "floating point ",
        "boolean ",
        "unsigned integer ",
    ] {
        if let Some(value) = found.strip_prefix(prefix) {
            return value.trim_matches('`').to_string();
        }
    }
    match found {
        "sequence" => "a list".to_string(),
        "map" => "a table".to_string(),
        f if f.starts_with('`') => quoted(f),
        f => f.to_string(),
    }
}

/// The largest value of an unsigned integer type named by serde.
fn integer_max(name: &str) -> Option<u64> {
    Some(match name {
        "u8" => u8::MAX.into(),
        "u16" => u16::MAX.into(),
        "u32" => u32::MAX.into(),
        "u64" | "usize" => u64::MAX,
        _ => return None,
    })
}

/// serde's `` `text` or `json` `` as `"text" or "json"`.
fn quoted(text: &str) -> String {
    text.replace('`', "\"")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn serde_messages_read_as_words() {
        let cases = [
            (
                "invalid type: string \"4\", expected usize",
                "download.workers must be a number, got \"4\"",
            ),
            (
                "invalid value: integer `-1`, expected u32",
                "download.workers must be a whole number from 0 to 4294967295, got -1",
            ),
            (
                "invalid type: integer `5`, expected a string",
                "download.workers must be a string, got 5",
            ),
            (
                "invalid type: string \"x\", expected a sequence",
                "download.workers must be a list such as [\"a\", \"b\"], got \"x\"",
            ),
            (
                "invalid type: integer `3`, expected struct RawDownload",
                "download.workers must be a table, got 3",
            ),
            (
                "unknown variant `xml`, expected `text` or `json`",
                "download.workers must be \"text\" or \"json\", got \"xml\"",
            ),
            (
                "invalid type: boolean `true`, expected path string",
                "download.workers must be a path (a string), got true",
            ),
        ];
        for (serde, words) in cases {
            assert_eq!(
                type_error("download.workers", serde, false).as_deref(),
                Some(words)
            );
        }
        assert_eq!(
            type_error(
                "poll.meetings",
                "invalid type: integer `5`, expected a string",
                true
            )
            .as_deref(),
            Some("poll.meetings: every item must be a string, got 5")
        );
        assert_eq!(type_error("k", "missing field `x`", false), None);
    }
}
