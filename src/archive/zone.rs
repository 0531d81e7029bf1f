//! `download.timezone`: the time zone of the dates and times in folder and
//! file names (`{year}`, `{month}`, `{date}`, `{time}`). UTC by default; a
//! fixed offset (`+08:00`) or an IANA name (`Asia/Shanghai`, with its
//! daylight-saving rules, from the database compiled into chrono-tz).

use std::fmt;

use chrono::{DateTime, FixedOffset, NaiveDateTime, Utc};

/// A time zone for names in the archive.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Zone {
    /// Coordinated Universal Time (the default).
    #[default]
    Utc,
    /// A fixed offset from UTC, e.g. `+08:00`.
    Offset(FixedOffset),
    /// A zone of the IANA database, e.g. `Europe/Berlin`.
    Named(chrono_tz::Tz),
}

/// Why a `download.timezone` value was refused.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error(
    "unknown time zone \"{0}\": use an IANA name (e.g. \"Asia/Shanghai\"), \"UTC\" or an offset (e.g. \"+08:00\")"
)]
pub struct ZoneError(pub String);

impl Zone {
    /// Parses `UTC` (or `Z`), an offset `±HH:MM` or `±HH` (at most 18
    /// hours; `+00:00` is UTC) or an IANA zone name.
    pub fn parse(text: &str) -> Result<Zone, ZoneError> {
        let text = text.trim();
        if text.eq_ignore_ascii_case("utc") || text.eq_ignore_ascii_case("z") {
            return Ok(Zone::Utc);
        }
        if let Some(offset) = parse_offset(text) {
            return Ok(match offset.local_minus_utc() {
                0 => Zone::Utc,
                _ => Zone::Offset(offset),
            });
        }
        text.parse::<chrono_tz::Tz>()
            .map(Zone::Named)
            .map_err(|_| ZoneError(text.to_owned()))
    }

    /// The wall-clock time in this zone at `at`.
    pub fn local(&self, at: DateTime<Utc>) -> NaiveDateTime {
        match self {
            Zone::Utc => at.naive_utc(),
            Zone::Offset(offset) => at.with_timezone(offset).naive_local(),
            Zone::Named(tz) => at.with_timezone(tz).naive_local(),
        }
    }
}

impl fmt::Display for Zone {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Zone::Utc => f.write_str("UTC"),
            Zone::Offset(offset) => write!(f, "{offset}"),
            Zone::Named(tz) => f.write_str(tz.name()),
        }
    }
}

/// `+HH:MM`, `-HH:MM` or `+HH` (one or two hour digits, two minute
/// digits under 60, at most 18 hours in all).
fn parse_offset(text: &str) -> Option<FixedOffset> {
    let (sign, rest) = match text.as_bytes().first()? {
        b'+' => (1, &text[1..]),
        b'-' => (-1, &text[1..]),
        _ => return None,
    };
    let (hours, minutes) = rest.split_once(':').unwrap_or((rest, "00"));
    let digits = |s: &str, len: std::ops::RangeInclusive<usize>| {
        (len.contains(&s.len()) && s.bytes().all(|b| b.is_ascii_digit()))
            .then(|| s.parse::<i32>().ok())
            .flatten()
    };
    let (hours, minutes) = (digits(hours, 1..=2)?, digits(minutes, 2..=2)?);
    if minutes >= 60 || hours * 60 + minutes > 18 * 60 {
        return None;
    }
    FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(text: &str) -> DateTime<Utc> {
        DateTime::parse_from_rfc3339(text).expect("time").to_utc()
    }

    #[test]
    fn names_offsets_and_utc_parse_and_the_rest_is_refused() {
        assert_eq!(Zone::parse("UTC"), Ok(Zone::Utc));
        assert_eq!(Zone::parse(" utc "), Ok(Zone::Utc));
        assert_eq!(
            Zone::parse("+08:00").map(|z| z.to_string()),
            Ok("+08:00".into())
        );
        assert_eq!(
            Zone::parse("-05:30").map(|z| z.to_string()),
            Ok("-05:30".into())
        );
        assert_eq!(
            Zone::parse("+8").map(|z| z.to_string()),
            Ok("+08:00".into())
        );
        assert_eq!(Zone::parse("z"), Ok(Zone::Utc));
        assert_eq!(Zone::parse("-00:00"), Ok(Zone::Utc), "a zero offset is UTC");
        assert_eq!(
            Zone::parse("+18:00").map(|z| z.to_string()),
            Ok("+18:00".into())
        );
        assert_eq!(
            Zone::parse("Asia/Shanghai").map(|z| z.to_string()),
            Ok("Asia/Shanghai".into())
        );
        for bad in [
            "Mars/Olympus",
            "+25:00",
            "+18:01",
            "+08:60",
            "+05:3",
            "GMT+8",
            "08:00",
            "+0800x",
            "",
            "local",
        ] {
            let err = Zone::parse(bad).expect_err(bad);
            assert!(err.to_string().contains("Asia/Shanghai"), "{err}");
        }
    }

    #[test]
    fn local_times_follow_the_zone_and_its_daylight_saving() {
        let evening = at("2026-11-26T20:30:00Z");
        let shanghai = Zone::parse("Asia/Shanghai").expect("zone");
        assert_eq!(shanghai.local(evening).to_string(), "2026-11-27 04:30:00");
        assert_eq!(Zone::Utc.local(evening).to_string(), "2026-11-26 20:30:00");
        let minus = Zone::parse("-05:30").expect("zone");
        assert_eq!(minus.local(evening).to_string(), "2026-11-26 15:00:00");
        let berlin = Zone::parse("Europe/Berlin").expect("zone");
        assert_eq!(
            berlin.local(at("2026-07-01T12:00:00Z")).to_string(),
            "2026-07-01 14:00:00",
            "summer time"
        );
        assert_eq!(
            berlin.local(at("2026-12-01T12:00:00Z")).to_string(),
            "2026-12-01 13:00:00",
            "winter time"
        );
    }
}
