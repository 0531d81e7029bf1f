//! `poll.schedule` read exactly as the daemon's scheduler reads it, so that
//! what `check-config` and `/healthz` compute is when polls really happen.
//!
//! tokio-cron-scheduler parses with croner, seconds required, and with
//! day-of-month AND day-of-week (croner's own default is OR, as in Vixie
//! cron): `0 */5 * 27 * MON` fires only on a Monday the 27th. Validation adds
//! what neither checks: 5 or 6 fields only, and an expression that never fires
//! (`0 0 0 30 2 *`) is refused instead of leaving the daemon idle for ever.

use chrono::{DateTime, Utc};
use croner::Cron;
use croner::errors::CronError;
use croner::parser::{CronParser, Seconds};

use super::ConfigError;

/// What the error messages suggest.
const FIELDS_HINT: &str = "5 fields (minute hour day-of-month month day-of-week, \
    e.g. \"*/10 * * * *\") or 6 with seconds first (e.g. \"0 */10 * * * *\") are accepted";

/// Parses `expr` (6 fields, seconds first, or a `@nickname`) with the
/// scheduler's settings.
pub fn parse(expr: &str) -> Result<Cron, CronError> {
    CronParser::builder()
        .seconds(Seconds::Required)
        .dom_and_dow(true)
        .build()
        .parse(expr)
}

/// The first time `expr` fires strictly after `after`, as the daemon's
/// scheduler computes it (UTC); `None` when `expr` does not parse or never
/// fires.
pub fn next_run(expr: &str, after: DateTime<Utc>) -> Option<DateTime<Utc>> {
    parse(expr).ok()?.find_next_occurrence(&after, false).ok()
}

/// The next `count` times `expr` fires strictly after `after` (UTC); fewer
/// (or none) when it does not parse or never fires.
pub fn next_runs(expr: &str, after: DateTime<Utc>, count: usize) -> Vec<DateTime<Utc>> {
    let mut runs = Vec::with_capacity(count);
    let mut from = after;
    while runs.len() < count {
        let Some(next) = next_run(expr, from) else {
            break;
        };
        runs.push(next);
        from = next;
    }
    runs
}

/// Checks `poll.schedule` and returns it with seconds: a crontab-style
/// 5-field expression gets `0 ` prepended.
pub(super) fn validate(expr: &str) -> Result<String, ConfigError> {
    let invalid = |reason: String| ConfigError::Cron {
        expr: expr.to_string(),
        reason,
    };
    let fields: Vec<&str> = expr.split_whitespace().collect();
    let normalised = match fields.len() {
        5 => format!("0 {}", fields.join(" ")),
        6 => fields.join(" "),
        1 if expr.trim_start().starts_with('@') => expr.trim().to_string(),
        0 => return Err(invalid(format!("it is empty; {FIELDS_HINT}"))),
        1 => return Err(invalid(format!("it has 1 field; {FIELDS_HINT}"))),
        n => return Err(invalid(format!("it has {n} fields; {FIELDS_HINT}"))),
    };
    let cron = parse(&normalised).map_err(|e| invalid(format!("{}; {FIELDS_HINT}", words(&e))))?;
    // Without a year field the calendar repeats, so an expression that
    // fires at all fires after any date: a fixed one keeps this pure.
    let epoch = DateTime::<Utc>::UNIX_EPOCH;
    if cron.find_next_occurrence(&epoch, false).is_err() {
        return Err(invalid(
            "it never fires: no date matches it (day-of-month and day-of-week must both \
             match, and the day must exist in the month)"
                .to_string(),
        ));
    }
    Ok(normalised)
}

/// croner's message without its type prefixes ("Invalid pattern: ...").
fn words(error: &CronError) -> String {
    match error {
        CronError::InvalidPattern(m) | CronError::IllegalCharacters(m) => m.clone(),
        CronError::ComponentError(m) => m.clone(),
        other => other.to_string(),
    }
}

#[cfg(test)]
mod tests {
    use chrono::{Datelike, Timelike, Weekday};

    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text)
            .expect("time")
            .with_timezone(&Utc)
    }

    #[test]
    fn day_of_month_and_day_of_week_must_both_match() {
        // Friday 2026-03-20: the next Monday the 27th is in April 2026.
        let runs = next_runs("0 */5 * 27 * MON", at("2026-03-20T12:00:00Z"), 3);
        assert_eq!(runs.len(), 3);
        for run in &runs {
            assert_eq!((run.day(), run.weekday()), (27, Weekday::Mon), "{run}");
        }
        assert_eq!(runs[0], at("2026-04-27T00:00:00Z"));
        assert_eq!(runs[2], at("2026-04-27T00:10:00Z"));
        // Friday 2026-03-27 itself is no run (croner's default OR would say so).
        let friday = next_run("0 */5 * 27 * MON", at("2026-03-27T08:00:00Z"));
        assert_eq!(friday, Some(at("2026-04-27T00:00:00Z")));
    }

    #[test]
    fn next_run_is_strictly_after() {
        let t = at("2026-01-01T00:10:00Z");
        assert_eq!(
            next_run("0 */10 * * * *", t),
            Some(at("2026-01-01T00:20:00Z"))
        );
        let runs = next_runs("30 0 3 * * *", t, 2);
        assert_eq!(runs[0].hour(), 3);
        assert_eq!(runs[1] - runs[0], chrono::Duration::days(1));
        assert!(next_runs("not cron", t, 3).is_empty());
        assert!(next_runs("0 0 0 30 2 *", t, 3).is_empty());
    }

    #[test]
    fn validation_normalises_and_explains() {
        assert_eq!(validate("*/5  * * * *").expect("5 fields"), "0 */5 * * * *");
        assert_eq!(validate("30 0 3 * * Mon").expect("6"), "30 0 3 * * Mon");
        assert_eq!(validate("@hourly").expect("nickname"), "@hourly");
        let seven = validate("0 0 0 1 1 * 2030")
            .expect_err("7 fields")
            .to_string();
        assert!(seven.contains("it has 7 fields; 5 fields"), "{seven}");
        assert!(seven.contains("6 with seconds first"), "{seven}");
        let bad = validate("0 61 * * * *").expect_err("minute 61").to_string();
        assert!(
            bad.starts_with("poll.schedule: invalid cron expression"),
            "{bad}"
        );
        assert!(bad.contains("5 fields"), "{bad}");
    }

    #[test]
    fn an_expression_that_never_fires_is_refused_quickly() {
        let start = std::time::Instant::now();
        for expr in ["0 0 0 30 2 *", "0 0 0 31 4 *", "0 0 0 31 2 MON"] {
            let e = validate(expr).expect_err(expr).to_string();
            assert!(e.contains("never fires"), "{e}");
        }
        assert!(start.elapsed() < std::time::Duration::from_secs(5));
        // Rare but real: 29 February on a Monday.
        assert!(validate("0 0 0 29 2 MON").is_ok());
    }
}
