//! What a download URL calls its file. The API's URL form is unconfirmed:
//! today a path ending in the file's name (`…/videoHD/0_1.mp4`), possibly
//! with per-listing segments before it (a nonce, a signature); the newer
//! record-info API's style names the file in the query
//! (`/download/file.mp4?f=0_1.mp4`). The name, with the file type (and the
//! listing's order for equal names), is a file's identity in the ledger.

/// Query parameters that name the file a URL serves.
const NAMING_PARAMS: [&str; 6] = ["f", "file", "filename", "file_name", "fileName", "name"];

/// The name a URL gives its file, unsanitised: a query parameter that names
/// the file if there is one (its last `/` segment), else the last non-empty
/// path segment, else `recording`.
pub fn file_name_of(url: &url::Url) -> String {
    let named = url.query_pairs().find_map(|(key, value)| {
        let value = value.rsplit('/').find(|s| !s.is_empty())?.to_owned();
        NAMING_PARAMS.contains(&key.as_ref()).then_some(value)
    });
    named.unwrap_or_else(|| {
        url.path()
            .rsplit('/')
            .find(|segment| !segment.is_empty())
            .unwrap_or("recording")
            .to_owned()
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn name(raw: &str) -> String {
        file_name_of(&url::Url::parse(raw).expect("test URL"))
    }

    #[test]
    fn a_file_is_named_by_its_query_when_one_names_it_else_by_its_path() {
        assert_eq!(
            name("https://h/download/file.mp4?f=0_1.mp4&sig=x"),
            "0_1.mp4"
        );
        assert_eq!(
            name("https://h/download/file.mp4?fileName=a%2Fb%2F0_2.mp4"),
            "0_2.mp4"
        );
        assert_eq!(
            name("https://h/n/6f5c0f63/videoHD/0_0.mp4?Expires=1&Signature=s"),
            "0_0.mp4"
        );
        assert_eq!(name("https://h/download/x/0_3.mp4/"), "0_3.mp4");
        assert_eq!(name("https://h/"), "recording");
    }
}
