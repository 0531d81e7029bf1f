//! The poll schedule: `poll.schedule` on tokio-cron-scheduler (6-field cron
//! with seconds, evaluated in UTC). Its job only sends a tick into the
//! daemon's loop, which owns the polls: the scheduler neither prevents
//! overlapping runs nor catches up on missed ones, so the loop polls once
//! at start-up and skips a tick while the previous poll runs.
//! Its liveness is checked from the outside: if a tick is overdue by more
//! than [`TICK_GRACE`], `/healthz` and the systemd watchdog say so.

use std::sync::Arc;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use chrono::{DateTime, Utc};
use tokio_cron_scheduler::{Job, JobScheduler, JobSchedulerError};
use uuid::Uuid;

use crate::clock::Millis;

/// How late a tick may be before the scheduler counts as dead.
pub const TICK_GRACE: Duration = Duration::from_secs(30);

/// Errors of the scheduler; they name the expression.
#[derive(Debug, thiserror::Error)]
pub enum ScheduleError {
    /// The scheduler refused the job or failed to start.
    #[error("poll.schedule {expr:?}: the scheduler refused it")]
    Scheduler {
        /// The cron expression.
        expr: String,
        /// What the scheduler said.
        source: JobSchedulerError,
    },
}

/// Where ticks go: the daemon's loop. A tick that finds the channel full
/// (the loop has not taken the previous one yet) is dropped, which is what
/// the loop would do with it anyway.
pub type Ticks = tokio::sync::mpsc::Sender<()>;

/// A running schedule and the time of its last tick.
pub struct Schedule {
    scheduler: JobScheduler,
    job: Uuid,
    expr: String,
    last_tick: Arc<AtomicI64>,
}

impl Schedule {
    /// Starts sending ticks on `expr`.
    pub async fn start(expr: &str, tick: Ticks) -> Result<Schedule, ScheduleError> {
        let err = |source| ScheduleError::Scheduler {
            expr: expr.to_owned(),
            source,
        };
        let scheduler = JobScheduler::new().await.map_err(err)?;
        let last_tick = Arc::new(AtomicI64::new(Millis::now().as_unix_ms()));
        let job = scheduler
            .add(job(expr, tick, Arc::clone(&last_tick)).map_err(err)?)
            .await
            .map_err(err)?;
        scheduler.start().await.map_err(err)?;
        Ok(Schedule {
            scheduler,
            job,
            expr: expr.to_owned(),
            last_tick,
        })
    }

    /// The expression in force.
    pub fn expression(&self) -> &str {
        &self.expr
    }

    /// Swaps the expression (on reload); the old job stays if the new one
    /// is refused.
    pub async fn replace(&mut self, expr: &str, tick: Ticks) -> Result<(), ScheduleError> {
        let err = |source| ScheduleError::Scheduler {
            expr: expr.to_owned(),
            source,
        };
        let new = self
            .scheduler
            .add(job(expr, tick, Arc::clone(&self.last_tick)).map_err(err)?)
            .await
            .map_err(err)?;
        let _ = self.scheduler.remove(&self.job).await;
        self.job = new;
        self.expr = expr.to_owned();
        self.last_tick
            .store(Millis::now().as_unix_ms(), Ordering::Relaxed);
        Ok(())
    }

    /// A handle to check liveness from other tasks.
    pub fn liveness(&self) -> Liveness {
        Liveness {
            expr: self.expr.clone(),
            last_tick: Arc::clone(&self.last_tick),
        }
    }

    /// Stops the scheduler.
    pub async fn stop(mut self) {
        if let Err(e) = self.scheduler.shutdown().await {
            tracing::warn!(error = %crate::telemetry::error_chain(&e), "stopping the scheduler");
        }
    }
}

fn job(expr: &str, tick: Ticks, last_tick: Arc<AtomicI64>) -> Result<Job, JobSchedulerError> {
    Job::new(expr, move |_, _| {
        last_tick.store(Millis::now().as_unix_ms(), Ordering::Relaxed);
        // Full: a tick is already waiting. Closed: the daemon is stopping.
        let _ = tick.try_send(());
    })
}

/// Whether the schedule still ticks, judged from its expression and the
/// time of its last tick.
#[derive(Clone)]
pub struct Liveness {
    expr: String,
    last_tick: Arc<AtomicI64>,
}

impl Liveness {
    /// The `n`-th tick after `from`, if the expression fires that often.
    pub fn nth_tick_after(&self, from: Millis, n: usize) -> Option<Millis> {
        let mut at = from.to_utc();
        for _ in 0..n {
            at = next_after(&self.expr, at)?;
        }
        Some(Millis::from(at))
    }

    /// The tick that is overdue at `now` (due more than [`TICK_GRACE`]
    /// ago and not seen), if any.
    pub fn overdue(&self, now: Millis) -> Option<DateTime<Utc>> {
        let last = Millis::from_unix_ms(self.last_tick.load(Ordering::Relaxed));
        let next = next_after(&self.expr, last.to_utc())?;
        (now > Millis::from(next) + TICK_GRACE).then_some(next)
    }
}

/// The first time `expr` fires after `after`.
///
/// Parsed with the scheduler's own rules (seconds first; day-of-month AND
/// day-of-week must both match), so health judges the ticks the scheduler
/// will really make: with croner's default OR rule, `*/5 * * 27 * MON`
/// looked overdue on a Friday the 27th and the watchdog killed a working
/// daemon.
pub fn next_after(expr: &str, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    crate::config::schedule::next_run(expr, after)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn day_of_month_and_day_of_week_must_both_match_as_in_the_scheduler() {
        // Friday 2026-11-27 12:00 UTC.
        let friday = DateTime::parse_from_rfc3339("2026-11-27T12:00:00Z")
            .expect("time")
            .with_timezone(&Utc);
        let next = next_after("0 */5 * 27 * MON", friday).expect("fires");
        assert_eq!(next.format("%a %d").to_string(), "Mon 27", "{next}");
        // The schedule last ticked a month ago: no tick was due since.
        let live = Liveness {
            expr: "0 */5 * 27 * MON".to_owned(),
            last_tick: Arc::new(AtomicI64::new(
                (friday - chrono::Duration::days(25)).timestamp_millis(),
            )),
        };
        assert_eq!(live.overdue(Millis::from(friday)), None, "healthy");
    }

    #[test]
    fn next_after_follows_the_expression() {
        let t = DateTime::from_timestamp(1_700_000_005, 0).expect("time");
        let next = next_after("0 */10 * * * *", t).expect("next");
        assert_eq!(next.timestamp() % 600, 0);
        assert!(next > t && next.timestamp() - t.timestamp() <= 600);
    }

    #[test]
    fn an_overdue_tick_is_reported() {
        let live = Liveness {
            expr: "*/1 * * * * *".to_owned(),
            last_tick: Arc::new(AtomicI64::new(1_700_000_000_000)),
        };
        let soon = Millis::from_unix_secs(1_700_000_010);
        assert_eq!(live.overdue(soon), None);
        let late = Millis::from_unix_secs(1_700_000_100);
        assert!(live.overdue(late).is_some());
    }

    #[tokio::test]
    async fn a_schedule_keeps_firing() {
        let (tx, mut ticks) = tokio::sync::mpsc::channel(1);
        let schedule = Schedule::start("*/1 * * * * *", tx).await.expect("start");
        tokio::time::timeout(Duration::from_secs(10), async {
            for _ in 0..3 {
                ticks.recv().await.expect("a tick");
            }
        })
        .await
        .expect("three ticks within ten seconds");
        assert_eq!(schedule.liveness().overdue(Millis::now()), None);
        schedule.stop().await;
    }
}
