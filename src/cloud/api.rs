//! The two business calls the archiver makes: a meeting's download URLs and
//! the recording list (discovery), with their paging rules.

use std::collections::{HashMap, HashSet};

use secrecy::SecretString;
use serde::Deserialize;

use super::names::file_name_of;
use super::paging::Walk;
use super::{CloudClient, CloudError};
use crate::clock::Millis;

/// `limit` for every listing: the documented maximum.
pub const PAGE_LIMIT: usize = 500;
/// A runaway guard: no listing pages more than this.
const MAX_PAGES: usize = 200;

/// One downloadable file of a meeting, with its single-use token.
pub struct DownloadUrl {
    /// `Hd`, `Sd`, `Aux`, or another type the API adds.
    pub file_type: String,
    /// The URL (untrusted).
    pub url: String,
    /// What the URL calls its file ([`super::file_name_of`]), unsanitised;
    /// `None` if the URL does not parse.
    pub name: Option<String>,
    /// Valid one hour, dies on first use.
    pub token: SecretString,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct DownloadUrlsPage {
    #[serde(default)]
    record_urls: Vec<RecordUrls>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct RecordUrls {
    #[serde(default)]
    conf_uuid: Option<String>,
    #[serde(default)]
    urls: Vec<UrlItem>,
}

#[derive(Deserialize)]
#[serde(rename_all = "camelCase")]
struct UrlItem {
    token: String,
    #[serde(default)]
    file_type: Option<String>,
    url: String,
}

/// How a listed entry may be told again on another page of one walk.
struct Keys {
    /// Its URL: the same URL is the same entry.
    url: String,
    /// Its place in the listing's one order: one place is one entry,
    /// whatever its URL (a per-listing nonce changes every URL per call).
    position: usize,
    /// Its type, name and rank among equal names on its page: used only
    /// while it is unknown what `offset` counts (the place is then unsure).
    name: (String, String, usize),
}

/// The entries a walk has taken, by each key.
#[derive(Default)]
struct Seen {
    urls: HashMap<String, usize>,
    positions: HashMap<usize, usize>,
    names: HashMap<(String, String, usize), usize>,
}

impl Seen {
    /// The entry `keys` names, if taken already.
    fn find(&self, keys: &Keys, place_unsure: bool) -> Option<usize> {
        self.urls.get(&keys.url).copied().or_else(|| {
            if place_unsure {
                self.names.get(&keys.name).copied()
            } else {
                self.positions.get(&keys.position).copied()
            }
        })
    }

    fn insert(&mut self, keys: Keys, at: usize) {
        self.urls.insert(keys.url, at);
        self.positions.insert(keys.position, at);
        self.names.entry(keys.name).or_insert(at);
    }
}

/// One recording found by the recording-list API.
#[derive(Clone, Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Recording {
    /// The conference UUID (the key for downloadurls).
    #[serde(rename = "confUUID")]
    pub conf_uuid: String,
    /// The subject.
    #[serde(default)]
    pub subject: Option<String>,
    /// Start time as the API prints it (apparently UTC), e.g. `2019-12-19 02:07`.
    #[serde(default)]
    pub start_time: Option<String>,
    /// The conference ID people dial; a string or a number on the wire.
    #[serde(rename = "confID", default)]
    pub conf_id: Option<serde_json::Value>,
    /// Length of the recording in seconds.
    #[serde(default)]
    pub rcd_time: Option<serde_json::Value>,
    /// Who scheduled the meeting.
    #[serde(rename = "scheduserName", default)]
    pub scheduler: Option<String>,
    /// Transcoding done: only then are the files ready.
    #[serde(default = "yes")]
    pub is_decode_finish: bool,
}

fn yes() -> bool {
    true
}

#[derive(Deserialize)]
struct RecordPage {
    #[serde(default)]
    count: Option<u64>,
    #[serde(default)]
    data: Vec<Recording>,
}

impl CloudClient {
    /// Every download URL of a meeting. There is no total count and pages
    /// may be capped below `limit`, so the walk goes on while pages bring
    /// files not seen before (see [`super::paging`]). A file is told by its
    /// type and name (and, for equal names on one page, their order): URLs
    /// may carry a per-listing nonce, so the same file can come back under
    /// another URL on the next page. A file listed twice keeps its newest
    /// URL and token: each call may issue fresh ones.
    pub async fn download_urls(&self, conf_uuid: &str) -> Result<Vec<DownloadUrl>, CloudError> {
        let mut seen = Seen::default();
        let mut out: Vec<DownloadUrl> = Vec::new();
        let mut walk = Walk::new("downloadurls", &self.paging.urls);
        for _ in 0..MAX_PAGES {
            let (offset, limit) = (walk.offset().to_string(), PAGE_LIMIT.to_string());
            let query = [
                ("confUUID", conf_uuid),
                ("offset", &offset),
                ("limit", &limit),
            ];
            let answer: DownloadUrlsPage = self
                .get_json(
                    "downloadurls",
                    "/v1/mmc/management/record/downloadurls",
                    &query,
                )
                .await?;
            let (mut listed, mut fresh) = (0, 0);
            let mut on_page: HashMap<(String, String), usize> = HashMap::new();
            for group in answer.record_urls {
                if group.conf_uuid.as_deref().is_some_and(|c| c != conf_uuid) {
                    tracing::warn!(asked = conf_uuid, got = ?group.conf_uuid, "downloadurls answered for another meeting; ignored");
                    continue;
                }
                for item in group.urls {
                    let name = url::Url::parse(&item.url).ok().map(|u| file_name_of(&u));
                    let url = DownloadUrl {
                        file_type: item.file_type.unwrap_or_else(|| "Unknown".to_owned()),
                        name,
                        url: item.url,
                        token: SecretString::from(item.token),
                    };
                    // An unparsable URL is told by itself (it is skipped later).
                    let told = url.name.clone().unwrap_or_else(|| url.url.clone());
                    let nth = on_page
                        .entry((url.file_type.clone(), told.clone()))
                        .or_insert(0);
                    *nth += 1;
                    let keys = Keys {
                        url: url.url.clone(),
                        position: walk.position(listed),
                        name: (url.file_type.clone(), told, *nth),
                    };
                    listed += 1;
                    match seen.find(&keys, walk.trying_pages()) {
                        Some(at) => out[at] = url,
                        None => {
                            fresh += 1;
                            seen.insert(keys, out.len());
                            out.push(url);
                        }
                    }
                }
            }
            if !walk.advance(listed, fresh, false) {
                break;
            }
        }
        Ok(out)
    }

    /// Every recording that started between `start` and `end`,
    /// de-duplicated by conference UUID, paged until `count` is reached or
    /// pages bring nothing new (see [`super::paging`]).
    pub async fn recordings(
        &self,
        start: Millis,
        end: Millis,
    ) -> Result<Vec<Recording>, CloudError> {
        let mut seen = HashSet::new();
        let mut out = Vec::new();
        let mut walk = Walk::new("record/files", &self.paging.records);
        for _ in 0..MAX_PAGES {
            let answer = self.record_page(start, end, walk.offset()).await?;
            let got = answer.data.len();
            let mut fresh = 0;
            for rec in answer.data {
                if seen.insert(rec.conf_uuid.clone()) {
                    fresh += 1;
                    out.push(rec);
                }
            }
            let done = answer.count.is_some_and(|total| out.len() as u64 >= total);
            if !walk.advance(got, fresh, done) {
                break;
            }
        }
        Ok(out)
    }

    async fn record_page(
        &self,
        start: Millis,
        end: Millis,
        offset: usize,
    ) -> Result<RecordPage, CloudError> {
        // The API takes Unix milliseconds.
        let (start, end) = (start.as_unix_ms().to_string(), end.as_unix_ms().to_string());
        let (offset, limit) = (offset.to_string(), PAGE_LIMIT.to_string());
        let query = [
            ("startDate", start.as_str()),
            ("endDate", end.as_str()),
            ("offset", offset.as_str()),
            ("limit", limit.as_str()),
            ("sortType", "ASC_StartTIME"),
        ];
        self.get_json("record/files", "/v1/mmc/management/record/files", &query)
            .await
    }
}

impl CloudClient {
    /// Deletes whole meetings' recordings from the cloud. Destructive:
    /// only retention calls it, after a verified archive and a fresh
    /// listing. 200 with an empty body on success.
    pub async fn delete_recordings(&self, conf_uuids: &[String]) -> Result<(), CloudError> {
        let list = conf_uuids.join(",");
        self.call_json::<Option<serde::de::IgnoredAny>>(
            reqwest::Method::DELETE,
            "record/files (delete)",
            "/v1/mmc/management/record/files",
            &[("confUUIDs", list.as_str())],
        )
        .await
        .map(|_| ())
    }
}
