//! The `"YYYY-MM-DD HH:MM"` UTC strings record/files uses, without a date
//! crate: the simulator formats times exactly as the real cloud does. The
//! time itself comes from the crate's one clock, [`crate::clock`].

use crate::clock::Millis;

/// Formats a time as `"YYYY-MM-DD HH:MM"` in UTC.
pub(crate) fn format_utc_minute(t: Millis) -> String {
    let secs = t.as_secs();
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (year, month, day) = civil_from_days(days);
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}",
        rem / 3600,
        (rem % 3600) / 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (Howard Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let day = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let month = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let year = yoe + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

#[cfg(test)]
mod tests {
    use super::format_utc_minute;
    use crate::clock::Millis;

    #[test]
    fn formats_known_instants() {
        let at = Millis::from_unix_ms;
        assert_eq!(format_utc_minute(at(0)), "1970-01-01 00:00");
        assert_eq!(format_utc_minute(at(1_576_721_220_000)), "2019-12-19 02:07");
        assert_eq!(format_utc_minute(at(951_782_400_000)), "2000-02-29 00:00");
    }
}
