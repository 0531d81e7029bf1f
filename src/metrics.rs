//! Prometheus metrics: counters and a histogram updated where things
//! happen, gauges (files by state, bytes, queue depth) read from the ledger
//! at scrape time so they can never drift from it. One explicit registry
//! per daemon, not a process-global recorder, so tests can read it.

use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::text::encode;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::clock::Millis;
use crate::ledger::{Counters, FileState, Status};

type Labels = Vec<(&'static str, String)>;

/// Every metric the archiver exports.
pub struct Metrics {
    registry: Registry,
    files: Family<Labels, Gauge>,
    meetings: Family<Labels, Gauge>,
    bytes_archived: Gauge,
    queue_depth: Gauge,
    downloads: Family<Labels, Counter>,
    api_requests: Family<Labels, Counter>,
    token_refreshes: Counter,
    download_seconds: Histogram,
    last_poll: Gauge<f64, AtomicU64>,
    polls: Family<Labels, Counter>,
    conditions: Family<Labels, Gauge>,
    retention: Family<Labels, Counter>,
    webhook_events: Family<Labels, Counter>,
    event_to_archive: Histogram,
    uploads: Family<Labels, Counter>,
    upload_bytes: Counter,
    upload_seconds: Histogram,
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}

impl Metrics {
    /// A registry with every metric registered.
    pub fn new() -> Metrics {
        let mut registry = Registry::with_prefix("meeting_archiver");
        let m = Metrics {
            files: Family::default(),
            meetings: Family::default(),
            bytes_archived: Gauge::default(),
            queue_depth: Gauge::default(),
            downloads: Family::default(),
            api_requests: Family::default(),
            token_refreshes: Counter::default(),
            // 50 ms to about 7 hours.
            download_seconds: Histogram::new(exponential_buckets(0.05, 4.0, 10)),
            last_poll: Gauge::default(),
            polls: Family::default(),
            conditions: Family::default(),
            retention: Family::default(),
            webhook_events: Family::default(),
            // 100 ms to about 2.7 hours.
            event_to_archive: Histogram::new(exponential_buckets(0.1, 2.5, 12)),
            uploads: Family::default(),
            upload_bytes: Counter::default(),
            // 50 ms to about 7 hours, like downloads.
            upload_seconds: Histogram::new(exponential_buckets(0.05, 4.0, 10)),
            registry: Registry::default(),
        };
        registry.register("files", "Files in the ledger by state", m.files.clone());
        registry.register(
            "meetings",
            "Meetings in the ledger by lifecycle state (complete includes settled)",
            m.meetings.clone(),
        );
        registry.register(
            "bytes_archived",
            "Bytes of archived files",
            m.bytes_archived.clone(),
        );
        registry.register(
            "queue_depth",
            "Files waiting to be downloaded",
            m.queue_depth.clone(),
        );
        registry.register(
            "downloads",
            "Download attempts by outcome",
            m.downloads.clone(),
        );
        registry.register(
            "api_requests",
            "API calls by endpoint and HTTP status",
            m.api_requests.clone(),
        );
        registry.register(
            "token_refreshes",
            "Access tokens fetched",
            m.token_refreshes.clone(),
        );
        registry.register(
            "download_duration_seconds",
            "Duration of download attempts",
            m.download_seconds.clone(),
        );
        registry.register(
            "last_successful_poll_timestamp_seconds",
            "Unix time of the last poll that listed every meeting",
            m.last_poll.clone(),
        );
        registry.register(
            "polls",
            "Polls by result (ok, failed, skipped)",
            m.polls.clone(),
        );
        registry.register(
            "condition",
            "1 while a condition stops work (disk_full, store_refused), else 0",
            m.conditions.clone(),
        );
        registry.register(
            "retention",
            "Retention decisions: deleted, or the reason a meeting was kept",
            m.retention.clone(),
        );
        registry.register(
            "webhook_events",
            "Webhook requests by event type and outcome (accepted, ignored, bad_signature, stale, replay, ...)",
            m.webhook_events.clone(),
        );
        registry.register(
            "event_to_archive_seconds",
            "From a record.finish event to each file it made archived",
            m.event_to_archive.clone(),
        );
        m.register_uploads(&mut registry);
        Metrics { registry, ..m }
    }

    /// The object store's metrics (`archive.target = "s3"`).
    fn register_uploads(&self, registry: &mut Registry) {
        registry.register(
            "uploads",
            "Uploads to the bucket by outcome (done, failed)",
            self.uploads.clone(),
        );
        registry.register(
            "upload_bytes",
            "Bytes of files uploaded to the bucket and confirmed by it",
            self.upload_bytes.clone(),
        );
        registry.register(
            "upload_duration_seconds",
            "Duration of uploads to the bucket, confirmation included",
            self.upload_seconds.clone(),
        );
    }

    /// Counts an upload to the bucket, its confirmed bytes and duration.
    pub fn upload(&self, done: bool, bytes: u64, seconds: f64) {
        let outcome = if done { "done" } else { "failed" };
        self.uploads
            .get_or_create(&vec![("outcome", outcome.to_owned())])
            .inc();
        self.upload_bytes.inc_by(bytes);
        self.upload_seconds.observe(seconds);
    }

    /// Counts an API response (`status` 0 = no response).
    pub fn api_request(&self, endpoint: &'static str, status: u16) {
        let labels = vec![
            ("endpoint", endpoint.to_owned()),
            ("status", status.to_string()),
        ];
        self.api_requests.get_or_create(&labels).inc();
    }

    /// Counts a retention decision (`deleted` or why a meeting was kept).
    pub fn retention(&self, outcome: &'static str) {
        self.retention
            .get_or_create(&vec![("outcome", outcome.to_owned())])
            .inc();
    }

    /// Counts a webhook request: its event type (`unknown` before it is
    /// authenticated) and what became of it.
    pub fn webhook_event(&self, event: &'static str, outcome: &'static str) {
        let labels = vec![("event", event.to_owned()), ("outcome", outcome.to_owned())];
        self.webhook_events.get_or_create(&labels).inc();
    }

    /// Records how long after its `record.finish` event a file was archived.
    pub fn event_to_archive(&self, seconds: f64) {
        self.event_to_archive.observe(seconds);
    }

    /// Counts an access-token fetch.
    pub fn token_refreshed(&self) {
        self.token_refreshes.inc();
    }

    /// Counts a download attempt and its duration.
    pub fn download(&self, outcome: &'static str, seconds: f64) {
        self.downloads
            .get_or_create(&vec![("outcome", outcome.to_owned())])
            .inc();
        self.download_seconds.observe(seconds);
    }

    /// Counts a poll that ended `at`; `ok` also stamps the last successful
    /// poll time.
    pub fn poll(&self, result: &'static str, at: Millis) {
        self.polls
            .get_or_create(&vec![("result", result.to_owned())])
            .inc();
        if result == "ok" {
            self.last_poll.set(at.as_secs_f64());
        }
    }

    /// Sets the meetings-per-state gauges from the ledger's counters.
    pub fn set_meeting_stages(&self, counters: &Counters) {
        for (stage, n) in counters.stages() {
            self.meetings
                .get_or_create(&vec![("state", stage.to_owned())])
                .set(n);
        }
    }

    /// The text exposition, with ledger gauges refreshed from `status` and
    /// `due` (files whose next attempt is due now).
    pub fn render(&self, status: &Status, due: i64) -> String {
        let f = &status.files;
        for state in FileState::ALL {
            self.files
                .get_or_create(&vec![("state", state.as_str().to_owned())])
                .set(f.count(state));
        }
        self.bytes_archived.set(status.bytes_archived);
        self.queue_depth.set(due);
        for name in [crate::pipeline::DISK_FULL, crate::pipeline::STORE_REFUSED] {
            let on = status.conditions.iter().any(|c| c.name == name);
            self.conditions
                .get_or_create(&vec![("name", name.to_owned())])
                .set(i64::from(on));
        }
        let mut out = String::new();
        // Writing into a String cannot fail.
        let _ = encode(&mut out, &self.registry);
        out
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ledger::AttemptOutcome;

    #[test]
    fn the_exposition_carries_every_family_with_its_values() {
        let m = Metrics::new();
        m.api_request("downloadurls", 200);
        m.api_request("downloadurls", 200);
        m.api_request("appauth", 401);
        m.token_refreshed();
        m.download(AttemptOutcome::Done.as_str(), 0.2);
        m.poll("ok", Millis::from_unix_secs(1_700_000_000));
        m.retention("deleted");
        m.retention("too_recent");
        m.webhook_event("record.finish", "accepted");
        m.webhook_event("unknown", "bad_signature");
        m.event_to_archive(1.5);
        m.upload(true, 1000, 0.5);
        m.upload(false, 0, 0.1);
        let mut ledger = crate::ledger::Ledger::open_in_memory().expect("ledger");
        ledger
            .upsert_meeting(
                "c",
                crate::ledger::MeetingOrigin::Config,
                None,
                Millis::EPOCH,
            )
            .expect("meeting");
        m.set_meeting_stages(&ledger.counters().expect("counters"));
        let mut status = Status::default();
        status.files.done = 3;
        status.bytes_archived = 4096;
        let text = m.render(&status, 2);
        for line in [
            "meeting_archiver_api_requests_total{endpoint=\"downloadurls\",status=\"200\"} 2",
            "meeting_archiver_api_requests_total{endpoint=\"appauth\",status=\"401\"} 1",
            "meeting_archiver_token_refreshes_total 1",
            "meeting_archiver_downloads_total{outcome=\"done\"} 1",
            "meeting_archiver_files{state=\"done\"} 3",
            "meeting_archiver_meetings{state=\"not_ready\"} 1",
            "meeting_archiver_meetings{state=\"complete\"} 0",
            "meeting_archiver_bytes_archived 4096",
            "meeting_archiver_queue_depth 2",
            "meeting_archiver_download_duration_seconds_count 1",
            "meeting_archiver_last_successful_poll_timestamp_seconds 1700000000",
            "meeting_archiver_polls_total{result=\"ok\"} 1",
            "meeting_archiver_condition{name=\"disk_full\"} 0",
            "meeting_archiver_retention_total{outcome=\"deleted\"} 1",
            "meeting_archiver_retention_total{outcome=\"too_recent\"} 1",
            "meeting_archiver_webhook_events_total{event=\"record.finish\",outcome=\"accepted\"} 1",
            "meeting_archiver_webhook_events_total{event=\"unknown\",outcome=\"bad_signature\"} 1",
            "meeting_archiver_event_to_archive_seconds_count 1",
            "meeting_archiver_uploads_total{outcome=\"done\"} 1",
            "meeting_archiver_uploads_total{outcome=\"failed\"} 1",
            "meeting_archiver_upload_bytes_total 1000",
            "meeting_archiver_upload_duration_seconds_count 2",
        ] {
            assert!(text.contains(line), "missing {line:?} in\n{text}");
        }
    }
}
