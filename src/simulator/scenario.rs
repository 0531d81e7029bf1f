//! What a simulated cloud contains and how it misbehaves: the [`Scenario`] a
//! simulator starts from, the answer given to dead download tokens and the
//! [`Faults`] drawn at random (from a seeded RNG, so runs are repeatable).

use std::time::Duration;

use super::meeting::SimMeeting;
use crate::clock::Millis;

/// Everything a [`super::Simulator`] starts with.
#[derive(Clone, Debug)]
pub struct Scenario {
    /// The App ID the archiver must authenticate with.
    pub app_id: String,
    /// The App key that signs appauth requests.
    pub app_key: String,
    /// If `Some`, appauth must carry exactly this `userId`; if `None`, none (or an empty one).
    pub user_id: Option<String>,
    /// `Some` = SP (multi-tenant) mode: signed and sent `corpId`; `None` = single enterprise, no `corpId`.
    pub corp_id: Option<String>,
    /// Lifetime of the access tokens appauth issues.
    pub access_token_ttl: Duration,
    /// Lifetime of the single-use download tokens.
    pub download_token_ttl: Duration,
    /// The recordings the cloud holds at start.
    pub meetings: Vec<SimMeeting>,
    /// Whether the download host honours `Range: bytes=N-`.
    pub range_support: bool,
    /// What a spent, expired or unknown download token gets.
    pub spent_token_answer: TokenAnswer,
    /// record/files paging: `false` = `offset` counts records, `true` = it counts pages.
    pub record_offset_counts_pages: bool,
    /// downloadurls paging: `false` = `offset` counts records, `true` = it counts pages.
    pub urls_offset_counts_pages: bool,
    /// downloadurls answers at most this many URLs a page, whatever `limit` says.
    pub urls_page_cap: Option<usize>,
    /// A re-listing hands out a file's previous token again while it is
    /// unused and unexpired, instead of a fresh one.
    pub reissue_unused_tokens: bool,
    /// How listed URLs name their files.
    pub url_style: UrlStyle,
    /// Faults injected at random from the start.
    pub faults: Faults,
    /// Seed of the fault RNG.
    pub seed: u64,
}

impl Default for Scenario {
    fn default() -> Self {
        Scenario {
            app_id: "sim-app-id".to_string(),
            app_key: "sim-app-key-0123456789abcdef".to_string(),
            user_id: None,
            corp_id: None,
            access_token_ttl: Duration::from_secs(12 * 3600),
            download_token_ttl: Duration::from_secs(3600),
            meetings: Vec::new(),
            range_support: true,
            spent_token_answer: TokenAnswer::Status401,
            record_offset_counts_pages: false,
            urls_offset_counts_pages: false,
            urls_page_cap: None,
            reissue_unused_tokens: false,
            url_style: UrlStyle::Plain,
            faults: Faults::default(),
            seed: 0,
        }
    }
}

impl Scenario {
    /// A small, realistic cloud that a demo archives in seconds: a short
    /// meeting, a long one split in three parts, and one without an `Sd` file.
    pub fn demo() -> Scenario {
        let now = Millis::now();
        let hours = |n: u64| Duration::from_secs(n * 3600);
        let types = ["Hd", "Sd", "Aux"];
        let mut short = SimMeeting::standard(
            "3f1c2a9b8d7e4f60a1b2c3d4e5f60718",
            "Quarterly review",
            1,
            &types,
            512 * 1024,
        );
        short.start = now - hours(26);
        let mut long = SimMeeting::standard(
            "7a8b9c0d1e2f43a5b6c7d8e9f0a1b2c3",
            "All-hands: product roadmap",
            3,
            &types,
            2 * 1024 * 1024,
        );
        long.start = now - hours(8);
        let mut no_sd = SimMeeting::standard(
            "c0ffee00112233445566778899aabbcc",
            "Design sync",
            1,
            &["Hd", "Aux"],
            256 * 1024,
        );
        no_sd.start = now - hours(2);
        for meeting in [&mut short, &mut long, &mut no_sd] {
            shrink_secondary_streams(meeting);
        }
        Scenario {
            meetings: vec![short, long, no_sd],
            ..Scenario::default()
        }
    }
}

/// Makes `Sd` files half and `Aux` files a quarter of the `Hd` size (at least 64 KiB),
/// as composited and screen-share streams are smaller in real recordings.
fn shrink_secondary_streams(meeting: &mut SimMeeting) {
    for file in &mut meeting.files {
        let divisor = match file.file_type.as_str() {
            "Sd" => 2,
            "Aux" => 4,
            _ => 1,
        };
        file.size = (file.size / divisor).max(64 * 1024);
    }
}

/// How downloadurls writes a file's URL (the real form is unconfirmed).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum UrlStyle {
    /// `<host>/download/<conf>/videoHD/0_0.mp4`, the same on every listing.
    #[default]
    Plain,
    /// A per-listing segment in the path (a nonce or a signature):
    /// `<host>/n/<random>/download/<conf>/videoHD/0_0.mp4`.
    NoncePath,
    /// One path for every file, the file named by the query (the newer
    /// record-info API's style): `<host>/download/file.mp4?f=<file path>`.
    QueryNamed,
}

/// The answer to a spent, expired or unknown download token (undocumented upstream).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum TokenAnswer {
    /// 401 with a JSON error body.
    #[default]
    Status401,
    /// 403 with a JSON error body.
    Status403,
    /// 404 with a JSON error body.
    Status404,
    /// 200 OK, `Content-Type: application/json`, a JSON error body.
    JsonError200,
}

/// Fault probabilities (0.0..=1.0, clamped) and switches.
#[derive(Clone, Debug, Default)]
pub struct Faults {
    /// Business and auth API calls answer 500 with a JSON error body.
    pub api_500: f64,
    /// API calls answer 429 `APIG.0308` without `Retry-After`.
    pub api_429: f64,
    /// API calls answer 200 with an HTML page (a misbehaving proxy).
    pub api_html: f64,
    /// Downloads answer 500 with a JSON error body.
    pub download_500: f64,
    /// Downloads answer 200 with a small JSON error body instead of the file.
    pub download_json_200: f64,
    /// Downloads declare a Content-Length larger than the bytes sent, then end.
    pub download_wrong_length: f64,
    /// Every file's first transfer sends about half the bytes, then breaks the connection.
    pub cut_first_transfer: bool,
    /// Every file's first transfer sends about half the bytes, then ends
    /// cleanly (with [`Faults::no_length`], a truncation nothing on the wire shows).
    pub end_first_transfer_early: bool,
    /// Download answers announce no length: no `Content-Length` (the body
    /// is chunked), a 206's `Content-Range` total is `*`, a 416 names none.
    pub no_length: bool,
    /// Throttles every download body to about this many bytes per second.
    pub slow_bytes_per_sec: Option<u64>,
    /// Raw paths the download host answers 404 for although downloadurls
    /// still lists them (a file the cloud lost); the token is spent.
    pub missing_files: Vec<String>,
    /// Every transfer ends cleanly at half the file (a proxy that
    /// silently truncates at an absolute offset); a probe at the half gets
    /// a 206 with an empty body.
    pub end_every_transfer_at_half: bool,
    /// record/files answers 403 (the account may not list recordings):
    /// discovery and meeting lookups fail, downloads still work.
    pub record_list_refused: bool,
    /// The gateway's throttling profile: API calls beyond this many in any
    /// 60 s window answer 429 `APIG.0308` (the real gateway's limit for one
    /// user is about 20 a minute); 0 = no limit.
    pub api_calls_per_minute: u32,
    /// The throttle's window instead of a minute (tests shorten it).
    pub api_throttle_window: Option<std::time::Duration>,
    /// Every API call (auth and business) is answered only after this long:
    /// a slow or distant cloud, and a poll that stays running for a while.
    pub api_latency: Option<std::time::Duration>,
}
