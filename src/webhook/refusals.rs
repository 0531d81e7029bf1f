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

    /// Summarises refusals noted since the last summary, if the interval
    /// has passed (the daemon calls it once per interval, so the last
    /// refusals of a burst are reported too).
    pub fn flush(&self) {
        self.flush_at(Instant::now());
    }

    /// [`RefusalLog::refused`] at `now`; the summary it logged, if any.
    fn refused_at(&self, verdict: Verdict, now: Instant) -> Option<String> {
        tracing::debug!(outcome = verdict.as_str(), "refused a webhook request");
        let mut pending = self.state.lock().unwrap_or_else(|e| e.into_inner());
        *pending.counts.entry(verdict.as_str()).or_default() += 1;
        self.summarise_if_due(&mut pending, now)
    }

    /// [`RefusalLog::flush`] at `now`; the summary it logged, if any.
    fn flush_at(&self, now: Instant) -> Option<String> {
        let mut pending = self.state.lock().unwrap_or_else(|e| e.into_inner());
        self.summarise_if_due(&mut pending, now)
    }

    fn summarise_if_due(&self, pending: &mut Pending, now: Instant) -> Option<String> {
        let due = pending
            .last_summary
            .is_none_or(|last| now.duration_since(last) >= self.every);
        if !due || pending.counts.is_empty() {
            return None;
        }
        let counts = std::mem::take(&mut pending.counts);
        let total: u64 = counts.values().sum();
        let reasons = counts
            .iter()
            .map(|(reason, n)| format!("{reason}={n}"))
            .collect::<Vec<_>>()
            .join(", ");
        let every = self.every.as_secs();
        let requests = if total == 1 { "request" } else { "requests" };
        let message = match pending.last_summary {
            Some(last) => format!(
                "refused {total} webhook {requests} in the last {}s (summarised once every {every}s at most)",
                now.duration_since(last).as_secs()
            ),
            None => format!(
                "refused {total} webhook {requests} (further ones are summarised once every {every}s at most)"
            ),
        };
        pending.last_summary = Some(now);
        tracing::warn!(refused = total, %reasons, "{message}");
        Some(format!("{message}: {reasons}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_burst_of_refusals_is_one_line_then_one_summary_per_interval() {
        let log = RefusalLog::new(Duration::from_secs(60));
        let start = Instant::now();
        let at = |s: u64| start + Duration::from_secs(s);
        let mut said = Vec::new();
        for i in 0..100 {
            let verdict = if i % 2 == 0 {
                Verdict::BadSignature
            } else {
                Verdict::Malformed
            };
            said.extend(log.refused_at(verdict, at(i / 4)));
        }
        said.extend(log.flush_at(at(30)));
        assert_eq!(
            said,
            vec![
                "refused 1 webhook request (further ones are summarised once every 60s at most): \
                 bad_signature=1"
            ]
        );
        assert_eq!(log.flush_at(at(59)), None, "not before the interval");
        let summary = log.flush_at(at(60)).expect("a summary");
        assert!(
            summary.starts_with("refused 99 webhook requests in the last 60s")
                && summary.ends_with("bad_signature=49, malformed=50"),
            "{summary}"
        );
        assert_eq!(log.flush_at(at(660)), None, "nothing new, nothing said");
        // A refusal after a quiet interval is reported at once.
        let next = log.refused_at(Verdict::Stale, at(700)).expect("at once");
        assert!(
            next.starts_with("refused 1 webhook request in the last 640s"),
            "{next}"
        );
    }
}
