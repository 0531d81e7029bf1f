//! A cap on the request rate to the API (`cloud.max_requests_per_minute`).
//! Requests are spread evenly, one every 60/N seconds, rather than let
//! through in bursts: the gateway throttles a user (429 `APIG.0308`) over a
//! sliding window, and a poll of thousands of meetings that bursts into it
//! only earns retries. Callers queue on a fair (FIFO) lock and the head of
//! the queue sleeps until the next slot; a slot is taken only when its
//! waiter wakes, so a waiter cancelled in the queue or in its sleep takes
//! none and the one behind it inherits its place. Time spent waiting here
//! is not a call's own: [`RetryClock`] keeps it out of `give_up_after`.

use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// Evenly spaced request slots; no cap when built from 0.
pub struct Pace {
    interval: Option<Duration>,
    /// The earliest time of the next request. Held across the head
    /// waiter's sleep: tokio's mutex is fair, so waiters go in arrival order.
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

    /// Whether requests are spaced at all.
    pub fn is_capped(&self) -> bool {
        self.interval.is_some()
    }

    /// Waits for this request's slot (at once without a cap). Cancel-safe:
    /// dropping the future before it completes takes no slot.
    pub async fn wait(&self) {
        let Some(interval) = self.interval else {
            return;
        };
        let mut next = self.next.lock().await;
        if let Some(at) = *next {
            tokio::time::sleep_until(at).await;
        }
        // Taken on waking, from the real time: an idle pace keeps no debt,
        // and a late wake-up moves the next slot later, never earlier.
        *next = Some(Instant::now() + interval);
    }
}

/// The time one API call has spent on its own tries, which
/// `cloud.give_up_after` bounds: waits for a [`Pace`] slot are left out,
/// so a long queue under a low cap does not use up the retry window.
pub struct RetryClock {
    started: Instant,
    paced: Duration,
}

impl RetryClock {
    /// A clock started now.
    pub fn start() -> RetryClock {
        RetryClock {
            started: Instant::now(),
            paced: Duration::ZERO,
        }
    }

    /// Runs `wait` (a wait for a slot, or for what is fetched while
    /// waiting) without counting its time.
    pub async fn paced<T>(&mut self, wait: impl Future<Output = T>) -> T {
        let from = Instant::now();
        let out = wait.await;
        self.paced += from.elapsed();
        out
    }

    /// Time spent since the start, pace waits left out.
    pub fn spent(&self) -> Duration {
        self.started.elapsed().saturating_sub(self.paced)
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;

    /// Starts `n` waiters in order; each reports its index and the time
    /// (seconds since `start`) it got its slot.
    async fn waiters(
        pace: &Arc<Pace>,
        n: usize,
        start: Instant,
    ) -> (
        Vec<tokio::task::JoinHandle<()>>,
        tokio::sync::mpsc::UnboundedReceiver<(usize, u64)>,
    ) {
        let (tx, rx) = tokio::sync::mpsc::unbounded_channel();
        let mut handles = Vec::new();
        for i in 0..n {
            let (pace, tx) = (pace.clone(), tx.clone());
            handles.push(tokio::spawn(async move {
                pace.wait().await;
                let _ = tx.send((i, start.elapsed().as_secs()));
            }));
            // Let it reach the queue before the next one starts.
            tokio::task::yield_now().await;
        }
        (handles, rx)
    }

    async fn take(
        rx: &mut tokio::sync::mpsc::UnboundedReceiver<(usize, u64)>,
        n: usize,
    ) -> Vec<(usize, u64)> {
        let mut out = Vec::new();
        for _ in 0..n {
            out.push(rx.recv().await.expect("a waiter reports"));
        }
        out
    }

    #[tokio::test(start_paused = true)]
    async fn waiters_go_in_arrival_order_one_per_interval() {
        let pace = Arc::new(Pace::per_minute(20));
        let start = Instant::now();
        let (_handles, mut rx) = waiters(&pace, 4, start).await;
        assert_eq!(
            take(&mut rx, 4).await,
            [(0, 0), (1, 3), (2, 6), (3, 9)],
            "first come, first served, 3 s apart"
        );
        // Idle for a minute: no debt is kept and none is owed.
        tokio::time::sleep(Duration::from_secs(60)).await;
        let idle = Instant::now();
        pace.wait().await;
        assert_eq!(
            idle.elapsed(),
            Duration::ZERO,
            "an idle pace starts at once"
        );
        pace.wait().await;
        assert_eq!(idle.elapsed(), Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn a_cancelled_waiter_gives_its_slot_to_the_next() {
        let pace = Arc::new(Pace::per_minute(20));
        let start = Instant::now();
        pace.wait().await; // slot 0; the next is at 3 s
        let (handles, mut rx) = waiters(&pace, 3, start).await;
        // Waiter 0 sleeps until 3 s, 1 and 2 queue behind it: cancel the
        // sleeping one and one still queued.
        handles[0].abort();
        handles[1].abort();
        assert_eq!(
            take(&mut rx, 1).await,
            [(2, 3)],
            "the survivor takes the first free slot, not the 9 s slot"
        );
        pace.wait().await;
        assert_eq!(start.elapsed(), Duration::from_secs(6), "no slot leaked");
        // A wait dropped by a timeout takes no slot either.
        let timed_out = tokio::time::timeout(Duration::from_secs(1), pace.wait()).await;
        assert!(timed_out.is_err());
        pace.wait().await;
        assert_eq!(start.elapsed(), Duration::from_secs(9));
    }

    #[tokio::test(start_paused = true)]
    async fn a_cap_of_one_spaces_requests_a_minute_apart() {
        let pace = Arc::new(Pace::per_minute(1));
        let start = Instant::now();
        let (_handles, mut rx) = waiters(&pace, 3, start).await;
        assert_eq!(take(&mut rx, 3).await, [(0, 0), (1, 60), (2, 120)]);
    }

    #[tokio::test(start_paused = true)]
    async fn a_cap_of_zero_never_waits() {
        let pace = Arc::new(Pace::per_minute(0));
        assert!(!pace.is_capped());
        let start = Instant::now();
        let (_handles, mut rx) = waiters(&pace, 50, start).await;
        let got = take(&mut rx, 50).await;
        assert!(got.iter().all(|(_, at)| *at == 0), "{got:?}");
        assert_eq!(start.elapsed(), Duration::ZERO);
    }

    #[tokio::test(start_paused = true)]
    async fn the_retry_clock_leaves_pace_waits_out() {
        let pace = Pace::per_minute(1);
        let mut clock = RetryClock::start();
        clock.paced(pace.wait()).await;
        tokio::time::sleep(Duration::from_secs(2)).await; // a try
        clock.paced(pace.wait()).await; // 58 s in the queue
        assert_eq!(clock.started.elapsed(), Duration::from_secs(60));
        assert_eq!(clock.spent(), Duration::from_secs(2));
    }
}
