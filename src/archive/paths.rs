//! Turning untrusted URL paths into safe archive paths. Every component is
//! percent-decoded and then stripped of separators, `..`, control characters
//! and leading dots, and bounded in length, so nothing a server sends can
//! place a file outside the archive folder or into its hidden areas.

use percent_encoding::percent_decode_str;
use sha2::{Digest, Sha256};

/// Longest component we write, in bytes (most filesystems allow 255).
pub(super) const MAX_COMPONENT: usize = 120;

/// A sanitised single path component: never empty, never `.` or `..`, no
/// separator, no control character, no leading dot.
pub fn sanitize_component(raw: &str) -> String {
    let decoded = percent_decode_str(raw).decode_utf8_lossy();
    let colonless = decoded.replace(':', "_");
    clean_component(&colonless)
}

/// [`sanitize_component`] without percent-decoding: for text that is not
/// part of a URL (a rendered layout component, a subject).
pub(super) fn clean_component(raw: &str) -> String {
    let mut clean: String = raw
        .chars()
        .map(|c| match c {
            '/' | '\\' => '_',
            c if c.is_control() => '_',
            c => c,
        })
        .collect();
    clean = clean.trim().to_owned();
    // A leading dot would hide the file or, as "..", climb out. (After the
    // trim, so that " .." cannot become "..".)
    while clean.starts_with('.') {
        clean.replace_range(..1, "_");
    }
    if clean.is_empty() {
        return "_".to_owned();
    }
    truncate_keeping_extension(&clean, MAX_COMPONENT)
}

/// [`clean_component`] made portable to Windows, SMB shares and exFAT
/// (new layouts only: the legacy layout keeps its paths exactly):
/// `* ? < > | " :` become `_`, trailing dots and blanks go, and a reserved
/// device name (`CON`, `NUL`, `COM1`, `aux.mp4`, ...) gets `_` after its
/// stem.
pub(super) fn portable_component(raw: &str) -> String {
    let mapped: String = clean_component(raw)
        .chars()
        .map(|c| match c {
            '*' | '?' | '<' | '>' | '|' | '"' | ':' => '_',
            c => c,
        })
        .collect();
    let trimmed = mapped.trim_end_matches(['.', ' ']);
    if trimmed.is_empty() {
        return "_".to_owned();
    }
    let stem_end = trimmed.find('.').unwrap_or(trimmed.len());
    let stem = trimmed[..stem_end].trim_end_matches(' ');
    if is_device_name(stem) {
        return format!("{}_{}", &trimmed[..stem_end], &trimmed[stem_end..]);
    }
    trimmed.to_owned()
}

/// Whether Windows reserves `stem` for a device, in any case.
fn is_device_name(stem: &str) -> bool {
    let upper = stem.to_ascii_uppercase();
    match upper.as_str() {
        "CON" | "PRN" | "AUX" | "NUL" | "CONIN$" | "CONOUT$" => true,
        _ => {
            let mut chars = upper.chars();
            let last = chars.next_back();
            matches!(chars.as_str(), "COM" | "LPT")
                && matches!(last, Some('1'..='9' | '\u{b9}' | '\u{b2}' | '\u{b3}'))
        }
    }
}

/// `component` with `_` in front if it names, in any case, one of the
/// `reserved` files the archive writes beside it.
pub(super) fn unreserved(component: String, reserved: &[&str]) -> String {
    if reserved.iter().any(|r| r.eq_ignore_ascii_case(&component)) {
        format!("_{component}")
    } else {
        component
    }
}

fn truncate_keeping_extension(name: &str, max: usize) -> String {
    if name.len() <= max {
        return name.to_owned();
    }
    let (stem, ext) = match name.rfind('.') {
        Some(dot) if name.len() - dot <= 16 => (&name[..dot], &name[dot..]),
        _ => (name, ""),
    };
    let mut cut = max.saturating_sub(ext.len());
    while !stem.is_char_boundary(cut) {
        cut -= 1;
    }
    format!("{}{}", &stem[..cut], ext)
}

/// Where a file lies under the archive: `<conference>/<type>/<name>`, every
/// component sanitised from untrusted input, and an alternative with a
/// short hash of the file's identity key for when two files of one meeting
/// and type share a name. `raw_name` is the name the cloud gave the file.
pub fn rel_paths(
    conf_uuid: &str,
    file_type: &str,
    raw_name: &str,
    file_key: &str,
) -> (String, String) {
    let conf = sanitize_component(conf_uuid);
    let kind = sanitize_component(file_type);
    let name = sanitize_component(raw_name);
    let primary = format!("{conf}/{kind}/{name}");
    let identity = format!("{conf_uuid}/{file_type}/{file_key}");
    let alternative = format!("{conf}/{kind}/{}", alternative_name(&name, &identity));
    (primary, alternative)
}

/// A file name made unique by a short hash of the file's `identity`,
/// kept within [`MAX_COMPONENT`] and keeping the extension.
pub(super) fn alternative_name(name: &str, identity: &str) -> String {
    let digest = hex::encode(Sha256::digest(identity.as_bytes()));
    let (stem, ext) = match name.rfind('.') {
        Some(dot) if dot > 0 && name.len() - dot <= 16 => (&name[..dot], &name[dot..]),
        _ => (name, ""),
    };
    let budget = MAX_COMPONENT.saturating_sub(10 + ext.len());
    let stem = truncate_keeping_extension(stem, budget);
    format!("{stem}-{}{ext}", &digest[..8])
}

#[cfg(test)]
mod tests {
    use super::*;

    fn url(s: &str) -> url::Url {
        url::Url::parse(s).expect("test URL")
    }

    #[test]
    fn hostile_components_cannot_climb_or_hide() {
        for raw in [
            "..",
            ".",
            "..%2F..%2Fetc",
            "%2E%2E",
            "a/b",
            "a\\b",
            ".hidden",
            "",
            "%00x",
            "\u{7}",
        ] {
            let clean = sanitize_component(raw);
            assert!(!clean.is_empty());
            assert!(
                !clean.contains('/') && !clean.contains('\\'),
                "{raw} -> {clean}"
            );
            assert!(!clean.starts_with('.'), "{raw} -> {clean}");
            assert!(!clean.chars().any(char::is_control), "{raw} -> {clean}");
        }
    }

    #[test]
    fn blanks_around_dots_cannot_make_a_dot_name() {
        for raw in ["%20..", " .. ", "%20.hidden", "\t."] {
            let clean = sanitize_component(raw);
            assert!(!clean.starts_with('.') && clean != "..", "{raw} -> {clean}");
        }
    }

    #[test]
    fn long_extensions_do_not_break_the_alternative_name() {
        let name = format!("a.{}", "b".repeat(115));
        let (primary, alt) = rel_paths("conf", "Hd", &name, &name);
        for path in [primary, alt] {
            let last = path.rsplit('/').next().expect("name");
            assert!(last.len() <= MAX_COMPONENT, "{path}");
        }
    }

    #[test]
    fn long_names_are_bounded_and_keep_their_extension() {
        let long = format!("{}.mp4", "é".repeat(200));
        let clean = sanitize_component(&long);
        assert!(clean.len() <= MAX_COMPONENT);
        assert!(clean.ends_with(".mp4"));
    }

    #[test]
    fn portable_components_suit_windows_smb_and_exfat() {
        for (raw, want) in [
            ("a*b?c<d>e|f\"g:h", "a_b_c_d_e_f_g_h"),
            ("ends with dots...", "ends with dots"),
            ("ends with blank . ", "ends with blank"),
            ("CON", "CON_"),
            ("aux", "aux_"),
            ("nul.mp4", "nul_.mp4"),
            ("COM1", "COM1_"),
            ("lpt9.txt", "lpt9_.txt"),
            ("COM0", "COM0"),
            ("CONTROL", "CONTROL"),
            ("com10", "com10"),
            ("...", "_"),
            ("com\u{b2}", "com\u{b2}_"),
            ("Weekly: sync", "Weekly_ sync"),
        ] {
            assert_eq!(portable_component(raw), want, "{raw}");
        }
        assert_eq!(
            unreserved("Sha256Sums".to_owned(), &["SHA256SUMS"]),
            "_Sha256Sums"
        );
        assert_eq!(unreserved("Hd".to_owned(), &["SHA256SUMS"]), "Hd");
    }

    #[test]
    fn rel_paths_use_meeting_type_and_name() {
        let (primary, alt) = rel_paths("51adf610", "Hd", "0_1.mp4", "0_1.mp4#2");
        assert_eq!(primary, "51adf610/Hd/0_1.mp4");
        assert!(alt.starts_with("51adf610/Hd/0_1-") && alt.ends_with(".mp4"));
    }

    #[test]
    fn hostile_urls_stay_three_levels_deep() {
        for raw in [
            "http://h/download/x/..%2F..%2F..%2Fetc%2Fpasswd",
            "http://h/download/x/%2E%2E/%2E%2E/evil.mp4",
            "http://h/download/x/..%5C..%5Cwin.mp4",
            "http://h/",
        ] {
            let name = crate::cloud::file_name_of(&url(raw));
            let (primary, alt) = rel_paths("../..", "%2E%2E", &name, "k");
            for path in [primary, alt] {
                let parts: Vec<_> = path.split('/').collect();
                assert_eq!(parts.len(), 3, "{raw} -> {path}");
                assert!(
                    parts.iter().all(|p| !p.starts_with('.') && !p.is_empty()),
                    "{raw} -> {path}"
                );
            }
        }
    }
}
