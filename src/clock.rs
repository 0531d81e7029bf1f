//! The crate's one clock. [`Millis`] is a point in time as Unix milliseconds,
//! the unit the ledger stores and the Huawei API speaks; nothing else in the
//! crate reads the system time, so a test can reason about every timestamp
//! and a future fake clock has one place to go. Arithmetic saturates: a
//! configured period of "forever" must not wrap a time into the past.

use std::ops::{Add, Sub};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use chrono::{DateTime, Utc};

/// A point in time: milliseconds since the Unix epoch (UTC). Serialised as
/// that integer, so JSON documents keep their `…_ms` numbers.
#[derive(
    Clone,
    Copy,
    Debug,
    Default,
    PartialEq,
    Eq,
    PartialOrd,
    Ord,
    Hash,
    serde::Serialize,
    serde::Deserialize,
)]
#[serde(transparent)]
pub struct Millis(i64);

impl Millis {
    /// 1970-01-01 00:00:00 UTC.
    pub const EPOCH: Millis = Millis(0);

    /// The current wall-clock time (the epoch if the clock is before it).
    pub fn now() -> Millis {
        let since = SystemTime::now()
            .duration_since(UNIX_EPOCH)
            .unwrap_or_default();
        Millis(duration_ms(since))
    }

    /// The time `ms` milliseconds after the epoch (before it if negative).
    pub const fn from_unix_ms(ms: i64) -> Millis {
        Millis(ms)
    }

    /// The time `secs` seconds after the epoch, saturating.
    pub const fn from_unix_secs(secs: i64) -> Millis {
        Millis(secs.saturating_mul(1000))
    }

    /// Milliseconds since the epoch, as the wire and the ledger want them.
    pub const fn as_unix_ms(self) -> i64 {
        self.0
    }

    /// Whole seconds since the epoch, rounded down (`appauth` speaks seconds).
    pub const fn as_secs(self) -> i64 {
        self.0.div_euclid(1000)
    }

    /// Seconds since the epoch with the fraction: Prometheus timestamps.
    pub fn as_secs_f64(self) -> f64 {
        self.0 as f64 / 1000.0
    }

    /// `self + d`, stopping at the largest representable time.
    pub fn saturating_add(self, d: Duration) -> Millis {
        Millis(self.0.saturating_add(duration_ms(d)))
    }

    /// `self - d`, stopping at the smallest representable time.
    pub fn saturating_sub(self, d: Duration) -> Millis {
        Millis(self.0.saturating_sub(duration_ms(d)))
    }

    /// How long after `earlier` this is; zero if it is not after it (like
    /// [`std::time::Instant::duration_since`]).
    pub fn duration_since(self, earlier: Millis) -> Duration {
        let ms = self.0.saturating_sub(earlier.0);
        Duration::from_millis(u64::try_from(ms).unwrap_or(0))
    }

    /// The same instant for calendar arithmetic (cron schedules); times
    /// beyond chrono's range become the epoch.
    pub fn to_utc(self) -> DateTime<Utc> {
        DateTime::from_timestamp_millis(self.0).unwrap_or_default()
    }
}

impl From<DateTime<Utc>> for Millis {
    fn from(t: DateTime<Utc>) -> Millis {
        Millis(t.timestamp_millis())
    }
}

impl Add<Duration> for Millis {
    type Output = Millis;

    fn add(self, d: Duration) -> Millis {
        self.saturating_add(d)
    }
}

impl Sub<Duration> for Millis {
    type Output = Millis;

    fn sub(self, d: Duration) -> Millis {
        self.saturating_sub(d)
    }
}

/// A duration in whole milliseconds, saturating at `i64::MAX`.
fn duration_ms(d: Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn now_is_after_this_code_was_written() {
        assert!(Millis::now() > Millis::from_unix_secs(1_700_000_000));
    }

    #[test]
    fn seconds_round_down_even_before_the_epoch() {
        assert_eq!(Millis::from_unix_ms(1_999).as_secs(), 1);
        assert_eq!(Millis::from_unix_ms(-1).as_secs(), -1);
        assert_eq!(Millis::from_unix_secs(3).as_unix_ms(), 3_000);
        assert_eq!(Millis::from_unix_ms(1_500).as_secs_f64(), 1.5);
    }

    #[test]
    fn arithmetic_saturates_instead_of_wrapping() {
        let t = Millis::from_unix_ms(10_000);
        assert_eq!(t + Duration::from_secs(1), Millis::from_unix_ms(11_000));
        assert_eq!(t - Duration::from_millis(1), Millis::from_unix_ms(9_999));
        assert_eq!(
            t + Duration::MAX,
            Millis::from_unix_ms(i64::MAX),
            "forever is the end of time"
        );
        assert_eq!(t - Duration::MAX, Millis::from_unix_ms(10_000 - i64::MAX));
        assert_eq!(
            Millis::from_unix_ms(i64::MIN).saturating_sub(Duration::from_secs(1)),
            Millis::from_unix_ms(i64::MIN)
        );
    }

    #[test]
    fn durations_between_times_never_go_negative() {
        let (a, b) = (Millis::from_unix_ms(1_000), Millis::from_unix_ms(3_500));
        assert_eq!(b.duration_since(a), Duration::from_millis(2_500));
        assert_eq!(a.duration_since(b), Duration::ZERO);
    }

    #[test]
    fn converts_to_and_from_chrono() {
        let t = Millis::from_unix_ms(1_700_000_000_123);
        assert_eq!(Millis::from(t.to_utc()), t);
        assert_eq!(Millis::from_unix_ms(i64::MAX).to_utc().timestamp(), 0);
    }

    #[test]
    fn json_is_the_bare_integer() {
        let t = Millis::from_unix_ms(42);
        assert_eq!(serde_json::to_string(&t).expect("json"), "42");
        assert_eq!(serde_json::from_str::<Millis>("42").expect("parse"), t);
    }
}
