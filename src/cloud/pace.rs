//! A cap on the request rate to the API (`cloud.max_requests_per_minute`).
//! Requests are spread evenly, one every 60/N seconds, rather than let
//! through in bursts: the gateway throttles a user (429 `APIG.0308`) over a
//! sliding window, and a poll of thousands of meetings that bursts into it
//! only earns retries. Each caller reserves the next free slot under a
//! short lock and sleeps until it, so concurrent callers queue in order.

use std::sync::Mutex;
use std::time::Duration;

use tokio::time::Instant;

/// Evenly spaced request slots; no cap when built from 0.
pub struct Pace {
    interval: Option<Duration>,
    next: Mutex<Option<Instant>>,
}

impl Pace {
    /// At most `per_minute` requests a minute; 0 means no cap.
    pub fn per_minute(per_minute: u32) -> Pace {
        let interval = (per_minute > 0).then(|| Duration::from_secs(60) / per_minute);
        Pace {
            interval,
            next: Mutex::new(None),
        }
    }

    /// Waits for this request's slot.
    pub async fn wait(&self) {
        if let Some(slot) = self.reserve(Instant::now()) {
            tokio::time::sleep_until(slot).await;
        }
    }

    /// Reserves the next free slot at or after `now` (`None` without a cap).
    fn reserve(&self, now: Instant) -> Option<Instant> {
        let interval = self.interval?;
        // A panic elsewhere cannot leave the slot inconsistent.
        let mut next = self.next.lock().unwrap_or_else(|e| e.into_inner());
        let slot = next.map_or(now, |n| n.max(now));
        *next = Some(slot + interval);
        Some(slot)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests_are_spread_one_per_interval_and_no_debt_is_kept() {
        let pace = Pace::per_minute(20);
        let start = Instant::now();
        let slots: Vec<u64> = (0..4)
            .map(|_| {
                let slot = pace.reserve(start).expect("capped");
                slot.duration_since(start).as_secs()
            })
            .collect();
        assert_eq!(slots, [0, 3, 6, 9], "queued callers take successive slots");
        let later = start + Duration::from_secs(60);
        assert_eq!(
            pace.reserve(later),
            Some(later),
            "an idle pace starts at once"
        );
        assert_eq!(Pace::per_minute(0).reserve(start), None, "0 is no cap");
    }

    #[tokio::test]
    async fn a_wait_lasts_until_its_slot() {
        let pace = Pace::per_minute(6_000);
        let start = Instant::now();
        for _ in 0..3 {
            pace.wait().await;
        }
        assert!(start.elapsed() >= Duration::from_millis(20));
    }
}
