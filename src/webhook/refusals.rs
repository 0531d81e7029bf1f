//! Refused requests, logged without letting anyone flood the log: each
//! one at debug, and at most one warning per interval that counts them by
//! reason (the first refusal after a quiet interval is reported at once,
//! so a wrong password shows up without delay). `/metrics` counts each.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::{Duration, Instant};

use super::Verdict;

/// How often refusals are summarised at most.
pub const REFUSAL_SUMMARY_EVERY: Duration = Duration::from_secs(60);

/// Refusals since the last summary.
#[derive(Debug)]
pub struct RefusalLog {
    every: Duration,
    state: Mutex<Pending>,
}

#[derive(Debug, Default)]
struct Pending {
    last_summary: Option<Instant>,
    counts: BTreeMap<&'static str, u64>,
}

impl RefusalLog {
    /// A log summarising at most once per `every`.
    pub fn new(every: Duration) -> RefusalLog {
        RefusalLog {
            every,
            state: Mutex::new(Pending::default()),
        }
    }

    /// Notes a refused request; summarises if the interval has passed.
    pub fn refused(&self, verdict: Verdict) {
        self.refused_at(verdict, Instant::now());
    }

    fn refused_at(&self, verdict: Verdict, now: Instant) {
        tracing::debug!(outcome = verdict.as_str(), "refused a webhook request");
        let mut pending = self.state.lock().unwrap_or_else(|e| e.into_inner());
        *pending.counts.entry(verdict.as_str()).or_default() += 1;
        self.summarise_if_due(&mut pending, now);
    }

    /// Summarises refusals noted since the last summary, if the interval
    /// has passed (the daemon calls it once per interval, so the last
    /// refusals of a burst are reported too).
    pub fn flush(&self) {
        self.flush_at(Instant::now());
    }

    fn flush_at(&self, now: Instant) {
        let mut pending = self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.summarise_if_due(&mut pending, now);
    }

    fn summarise_if_due(&self, pending: &mut Pending, now: Instant) {
        let due = pending
            .last_summary
            .is_none_or(|last| now.duration_since(last) >= self.every);
        if !due || pending.counts.is_empty() {
            return;
        }
        let counts = std::mem::take(&mut pending.counts);
        let total: u64 = counts.values().sum();
        let reasons = counts
            .iter()
            .map(|(reason, n)| format!("{reason}={n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let since = pending.last_summary.map(|last| now.duration_since(last));
        pending.last_summary = Some(now);
        match since {
            Some(since) => tracing::warn!(
                refused = total,
                %reasons,
                "refused {total} webhook requests in the last {}s (further ones are summarised once every {}s)",
                since.as_secs(),
                self.every.as_secs()
            ),
            None => tracing::warn!(
                refused = total,
                %reasons,
                "refused a webhook request (further ones are summarised once every {}s)",
                self.every.as_secs()
            ),
        }
    }
}

#[cfg(test)]
mod tests {
    use std::io::Write;
    use std::sync::Arc;

    use super::*;

    /// Log lines written while the returned guard lives, at info and above.
    #[derive(Clone, Default)]
    struct Captured(Arc<Mutex<Vec<u8>>>);

    impl Write for Captured {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().expect("lock").extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl Captured {
        fn lines(&self) -> Vec<String> {
            let text = String::from_utf8(self.0.lock().expect("lock").clone()).expect("utf-8");
            text.lines().map(str::to_owned).collect()
        }
    }

    #[test]
    fn a_burst_of_refusals_is_one_line_then_one_summary_per_interval() {
        let captured = Captured::default();
        let writer = captured.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_max_level(tracing::Level::INFO)
            .with_ansi(false)
            .with_writer(move || writer.clone())
            .finish();
        let _guard = tracing::subscriber::set_default(subscriber);
        let log = RefusalLog::new(Duration::from_secs(60));
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        for i in 0..100 {
            let verdict = if i % 2 == 0 {
                Verdict::BadSignature
            } else {
                Verdict::Malformed
            };
            log.refused_at(verdict, at(i / 4));
        }
        log.flush_at(at(30));
        let lines = captured.lines();
        assert_eq!(lines.len(), 1, "{lines:?}");
        assert!(lines[0].contains("refused a webhook request"), "{lines:?}");
        log.flush_at(at(59));
        assert_eq!(captured.lines().len(), 1, "not before the interval");
        log.flush_at(at(60));
        let lines = captured.lines();
        assert_eq!(lines.len(), 2, "{lines:?}");
        assert!(
            lines[1].contains("refused 99 webhook requests in the last 60s")
                && lines[1].contains("bad_signature=49")
                && lines[1].contains("malformed=50"),
            "{lines:?}"
        );
        log.flush_at(at(660));
        assert_eq!(captured.lines().len(), 2, "nothing new, nothing said");
    }
}
