//! Capped exponential backoff with jitter, shared by API calls and downloads.

use std::time::Duration;

/// A backoff policy: `base * 2^n`, capped at `max`, with "equal jitter"
/// (a random point in the upper half) so that many clients retrying at
/// once spread out instead of stampeding.
#[derive(Clone, Copy, Debug)]
pub struct Backoff {
    /// The first delay.
    pub base: Duration,
    /// The cap.
    pub max: Duration,
}

impl Backoff {
    /// The delay before retry number `attempt` (0 = the first retry).
    pub fn delay(&self, attempt: u32) -> Duration {
        let factor = 2u32.saturating_pow(attempt.min(30));
        let full = self.base.saturating_mul(factor).min(self.max);
        let half = full / 2;
        let jitter_ms = u64::try_from(half.as_millis()).unwrap_or(u64::MAX);
        let extra = if jitter_ms == 0 {
            0
        } else {
            rand::random_range(0..=jitter_ms)
        };
        half + Duration::from_millis(extra)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn delays_grow_within_bounds_and_stop_at_the_cap() {
        let backoff = Backoff {
            base: Duration::from_millis(100),
            max: Duration::from_secs(2),
        };
        for attempt in 0..40 {
            let full = (Duration::from_millis(100) * 2u32.saturating_pow(attempt.min(30)))
                .min(Duration::from_secs(2));
            let delay = backoff.delay(attempt);
            assert!(
                delay >= full / 2 && delay <= full,
                "attempt {attempt}: {delay:?}"
            );
        }
    }
}
