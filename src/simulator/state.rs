//! The simulator's shared state: fixed settings from the scenario, and one
//! mutex over everything that changes (meetings, tokens, faults, counters).
//! The mutex is a std one and is never held across an `.await`.

use std::collections::{HashMap, HashSet, VecDeque};
use std::sync::{Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use tokio::time::Instant;
use tokio_util::sync::CancellationToken;

use super::meeting::{SimFile, SimMeeting};
use super::scenario::{Faults, Scenario, TokenAnswer, UrlStyle};

/// Most live access tokens one user may hold; the next one evicts the oldest.
pub(crate) const MAX_LIVE_TOKENS: usize = 64;

/// Counters of what the simulator saw and served.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SimStats {
    /// appauth calls that issued a token.
    pub appauth_ok: u64,
    /// appauth calls refused (400 or 401).
    pub appauth_rejected: u64,
    /// downloadurls calls that got past the gateway (faults are not counted here).
    pub downloadurls_calls: u64,
    /// record/files GET calls that got past the gateway.
    pub record_files_calls: u64,
    /// Business calls rejected with 401.
    pub api_unauthorized: u64,
    /// API calls answered with an injected fault.
    pub api_faults_injected: u64,
    /// API requests carrying the deprecated `X-Authorization-Type` or `X-Site-Id`.
    pub deprecated_headers_seen: u64,
    /// Requests to the download host.
    pub download_requests: u64,
    /// Download bodies fully handed to the connection (200 or 206).
    pub downloads_completed: u64,
    /// Downloads answered with an injected fault.
    pub download_faults_injected: u64,
    /// A download token presented again after its first use (must stay 0).
    pub spent_token_reuses: u64,
    /// A download token presented after its expiry.
    pub expired_token_uses: u64,
    /// A missing or never-issued download token.
    pub unknown_token_uses: u64,
    /// Downloads answered 206.
    pub ranged_requests: u64,
    /// Body bytes sent by the download host.
    pub bytes_served: u64,
    /// Download tokens issued.
    pub tokens_issued: u64,
    /// Unused tokens handed out again by a re-listing (`reissue_unused_tokens`).
    pub tokens_reissued: u64,
    /// Meetings removed by `DELETE record/files`.
    pub meetings_deleted: u64,
}

/// Settings fixed for the simulator's life.
pub(crate) struct Config {
    pub app_id: String,
    pub app_key: String,
    pub user_id: Option<String>,
    pub corp_id: Option<String>,
    pub access_token_ttl: Duration,
    pub download_token_ttl: Duration,
    pub spent_token_answer: TokenAnswer,
    pub record_offset_counts_pages: bool,
    pub urls_offset_counts_pages: bool,
    pub urls_page_cap: Option<usize>,
    pub reissue_unused_tokens: bool,
    pub url_style: UrlStyle,
    pub download_base: String,
}

/// State shared by both servers and the [`super::Simulator`] handle.
pub(crate) struct Shared {
    pub config: Config,
    pub cancel: CancellationToken,
    inner: Mutex<Inner>,
}

impl Shared {
    /// Builds the state for `scenario`, whose download host is `download_base`.
    pub fn new(scenario: Scenario, download_base: String) -> Shared {
        let config = Config {
            app_id: scenario.app_id,
            app_key: scenario.app_key,
            user_id: scenario.user_id,
            corp_id: scenario.corp_id,
            access_token_ttl: scenario.access_token_ttl,
            download_token_ttl: scenario.download_token_ttl,
            spent_token_answer: scenario.spent_token_answer,
            record_offset_counts_pages: scenario.record_offset_counts_pages,
            urls_offset_counts_pages: scenario.urls_offset_counts_pages,
            urls_page_cap: scenario.urls_page_cap,
            reissue_unused_tokens: scenario.reissue_unused_tokens,
            url_style: scenario.url_style,
            download_base,
        };
        let inner = Inner {
            meetings: Vec::new(),
            faults: scenario.faults,
            range_support: scenario.range_support,
            advertised_download_base: None,
            stats: SimStats::default(),
            fault_rng: StdRng::seed_from_u64(scenario.seed),
            access: VecDeque::new(),
            download: HashMap::new(),
            transferred: HashSet::new(),
            requests_by_path: HashMap::new(),
            issued: Vec::new(),
            api_calls: VecDeque::new(),
        };
        let shared = Shared {
            config,
            cancel: CancellationToken::new(),
            inner: Mutex::new(inner),
        };
        for meeting in scenario.meetings {
            shared.lock().add_meeting(meeting);
        }
        shared
    }

    /// Locks the mutable state; a panic elsewhere does not poison the simulator.
    pub fn lock(&self) -> MutexGuard<'_, Inner> {
        self.inner.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

/// A meeting and how many downloadurls calls it has answered.
pub(crate) struct MeetingState {
    pub meeting: SimMeeting,
    pub calls: u32,
}

impl MeetingState {
    /// Whether transcoding is "finished" (the not-ready calls are used up).
    pub fn ready(&self) -> bool {
        self.calls >= self.meeting.not_ready_calls
    }
}

struct AccessToken {
    token: String,
    user: String,
    expires_at: Instant,
}

struct DownloadToken {
    path: String,
    expires_at: Instant,
    spent: bool,
}

/// What a presented download token turned out to be.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum TokenCheck {
    Valid,
    WrongFile,
    Spent,
    Expired,
    Unknown,
}

/// Everything that changes while the simulator runs.
pub(crate) struct Inner {
    pub meetings: Vec<MeetingState>,
    pub faults: Faults,
    pub range_support: bool,
    /// If set, download URLs start with this instead of `Config::download_base`.
    pub advertised_download_base: Option<String>,
    pub stats: SimStats,
    fault_rng: StdRng,
    access: VecDeque<AccessToken>,
    download: HashMap<String, DownloadToken>,
    transferred: HashSet<String>,
    /// Requests to the download host per raw path (what a file cost).
    pub requests_by_path: HashMap<String, u64>,
    /// Every token handed out, so tests can prove none leaked into logs.
    pub issued: Vec<String>,
    /// When the API calls of the last minute came (for the throttle).
    api_calls: VecDeque<Instant>,
}

impl Inner {
    /// Adds a meeting, replacing one with the same conference UUID.
    pub fn add_meeting(&mut self, meeting: SimMeeting) {
        self.meetings
            .retain(|m| m.meeting.conf_uuid != meeting.conf_uuid);
        self.meetings.push(MeetingState { meeting, calls: 0 });
    }

    /// Finds the file served at this raw path, or at the path a URL parser
    /// makes of it (`%2E%2E` segments resolved, as every HTTP client does).
    pub fn file_at(&self, raw_path: &str) -> Option<SimFile> {
        let files = || self.meetings.iter().flat_map(|m| m.meeting.files.iter());
        files()
            .find(|f| f.path == raw_path)
            .or_else(|| files().find(|f| normalized(&f.path).as_deref() == Some(raw_path)))
            .cloned()
    }

    /// Whether one more API call now goes past `Faults::api_calls_per_minute`
    /// (a sliding window of 60 s, or `api_throttle_window`); a call let
    /// through is counted.
    pub fn over_rate(&mut self) -> bool {
        let limit = self.faults.api_calls_per_minute as usize;
        if limit == 0 {
            return false;
        }
        let window = self
            .faults
            .api_throttle_window
            .unwrap_or(Duration::from_secs(60));
        let now = Instant::now();
        while let Some(first) = self.api_calls.front() {
            if now.duration_since(*first) < window {
                break;
            }
            self.api_calls.pop_front();
        }
        if self.api_calls.len() >= limit {
            return true;
        }
        self.api_calls.push_back(now);
        false
    }

    /// Draws one fault with probability `p` (clamped; 0 or NaN never draws from the RNG).
    pub fn draw(&mut self, p: f64) -> bool {
        if p.is_nan() || p <= 0.0 {
            return false;
        }
        self.fault_rng.random_bool(p.min(1.0))
    }

    /// Issues an access token for `user`, evicting their oldest beyond [`MAX_LIVE_TOKENS`].
    pub fn issue_access_token(&mut self, user: &str, ttl: Duration) -> String {
        let now = Instant::now();
        self.access.retain(|t| t.expires_at > now);
        if self.access.iter().filter(|t| t.user == user).count() >= MAX_LIVE_TOKENS
            && let Some(oldest) = self.access.iter().position(|t| t.user == user)
        {
            self.access.remove(oldest);
        }
        let token = random_alnum(48);
        self.issued.push(token.clone());
        self.access.push_back(AccessToken {
            token: token.clone(),
            user: user.to_string(),
            expires_at: now + ttl,
        });
        token
    }

    /// Whether `token` is a live access token.
    pub fn access_token_live(&self, token: &str) -> bool {
        let now = Instant::now();
        self.access
            .iter()
            .any(|t| t.token == token && t.expires_at > now)
    }

    /// Makes every live access token expire now.
    pub fn expire_access_tokens(&mut self) {
        let now = Instant::now();
        for t in &mut self.access {
            t.expires_at = now;
        }
    }

    /// Issues a single-use download token for the file at `path`.
    pub fn issue_download_token(&mut self, path: &str, ttl: Duration) -> String {
        let token = hex::encode(rand::rng().random::<[u8; 32]>());
        self.issued.push(token.clone());
        self.download.insert(
            token.clone(),
            DownloadToken {
                path: path.to_string(),
                expires_at: Instant::now() + ttl,
                spent: false,
            },
        );
        self.stats.tokens_issued += 1;
        token
    }

    /// The newest token issued for `path` if it is still unused and
    /// unexpired (a server that re-issues tokens), else a fresh one.
    pub fn reissue_or_issue_token(&mut self, path: &str, ttl: Duration) -> String {
        let now = Instant::now();
        let reusable = self.issued.iter().rev().find(|t| {
            self.download
                .get(*t)
                .is_some_and(|d| d.path == path && !d.spent && d.expires_at > now)
        });
        match reusable {
            Some(token) => {
                self.stats.tokens_reissued += 1;
                token.clone()
            }
            None => self.issue_download_token(path, ttl),
        }
    }

    /// Checks a presented download token for `path`, spends it and counts misuse.
    pub fn use_download_token(&mut self, token: Option<&str>, path: &str) -> TokenCheck {
        let Some(entry) = token.and_then(|t| self.download.get_mut(t)) else {
            self.stats.unknown_token_uses += 1;
            return TokenCheck::Unknown;
        };
        if entry.spent {
            self.stats.spent_token_reuses += 1;
            return TokenCheck::Spent;
        }
        entry.spent = true;
        if entry.expires_at <= Instant::now() {
            self.stats.expired_token_uses += 1;
            return TokenCheck::Expired;
        }
        if entry.path != path {
            return TokenCheck::WrongFile;
        }
        TokenCheck::Valid
    }

    /// Records a transfer of `path`; true if it is the file's first one.
    pub fn first_transfer(&mut self, path: &str) -> bool {
        self.transferred.insert(path.to_string())
    }
}

/// A random string of ASCII letters and digits (not from the fault RNG, so
/// fault sequences depend only on the faults drawn).
pub(crate) fn random_alnum(len: usize) -> String {
    rand::rng()
        .sample_iter(rand::distr::Alphanumeric)
        .take(len)
        .map(char::from)
        .collect()
}

/// The path a WHATWG URL parser sends for `path` (dot segments resolved).
fn normalized(path: &str) -> Option<String> {
    url::Url::parse(&format!("http://sim{path}"))
        .ok()
        .map(|u| u.path().to_owned())
}
