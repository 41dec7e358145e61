//! Dates, timestamps and time zones as OpenMLDB holds them.
//!
//! OpenMLDB stores a timestamp as epoch milliseconds (never negative) and a
//! date as a calendar day between 1900-01-01 and 9999-12-31. Strings without
//! an offset are read in a configurable time zone (`UTC`, `+08:00`,
//! `Asia/Shanghai`).

use crate::Date;
use chrono::{DateTime, Datelike, FixedOffset, LocalResult, NaiveDate, NaiveDateTime, TimeZone, Utc};

/// Earliest and latest year OpenMLDB accepts in a DATE column.
pub const MIN_DATE_YEAR: i32 = 1900;
pub const MAX_DATE_YEAR: i32 = 9999;

/// The zone used for date-time strings that carry no offset.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Zone {
    Fixed(FixedOffset),
    Named(chrono_tz::Tz),
}

impl Default for Zone {
    fn default() -> Self {
        Zone::Fixed(FixedOffset::east_opt(0).expect("zero offset is valid"))
    }
}

impl Zone {
    /// `UTC`, `Z`, `+08:00`, `-0530`, `UTC+8`, `GMT+08:00` or an IANA name.
    pub fn parse(spec: &str) -> Result<Zone, String> {
        let s = spec.trim();
        if s.eq_ignore_ascii_case("utc") || s.eq_ignore_ascii_case("gmt") || s == "Z" {
            return Ok(Zone::default());
        }
        let offset_part = s.strip_prefix("UTC").or_else(|| s.strip_prefix("GMT")).unwrap_or(s);
        if offset_part.starts_with('+') || offset_part.starts_with('-') {
            return parse_offset(offset_part)
                .map(Zone::Fixed)
                .ok_or_else(|| format!("invalid time zone \"{spec}\": expected an offset like +08:00"));
        }
        s.parse::<chrono_tz::Tz>().map(Zone::Named).map_err(|_| {
            format!("unknown time zone \"{spec}\": use UTC, an offset like +08:00, or an IANA name like Asia/Shanghai")
        })
    }

    /// Epoch ms of a local date-time in this zone. A time skipped by a DST
    /// change is an error; an ambiguous one takes the earlier instant.
    pub fn local_to_epoch_ms(&self, local: &NaiveDateTime) -> Result<i64, String> {
        let result = match self {
            Zone::Fixed(offset) => offset.from_local_datetime(local).map(|t| t.timestamp_millis()),
            Zone::Named(tz) => tz.from_local_datetime(local).map(|t| t.timestamp_millis()),
        };
        match result {
            LocalResult::Single(ms) => Ok(ms),
            LocalResult::Ambiguous(earliest, _) => Ok(earliest),
            LocalResult::None => Err(format!("local time {local} does not exist in this time zone")),
        }
    }

    /// The local date-time of an epoch-ms instant in this zone.
    pub fn epoch_ms_to_local(&self, ms: i64) -> Option<NaiveDateTime> {
        let utc = DateTime::<Utc>::from_timestamp_millis(ms)?;
        Some(match self {
            Zone::Fixed(offset) => utc.with_timezone(offset).naive_local(),
            Zone::Named(tz) => utc.with_timezone(tz).naive_local(),
        })
    }
}

fn parse_offset(s: &str) -> Option<FixedOffset> {
    let sign = if s.starts_with('-') { -1 } else { 1 };
    let digits: String = s[1..].chars().filter(|c| *c != ':').collect();
    if digits.is_empty() || digits.len() > 4 || !digits.chars().all(|c| c.is_ascii_digit()) {
        return None;
    }
    let (hours, minutes) = match digits.len() {
        1 | 2 => (digits.parse::<i32>().ok()?, 0),
        3 => (digits[..1].parse::<i32>().ok()?, digits[1..].parse::<i32>().ok()?),
        _ => (digits[..2].parse::<i32>().ok()?, digits[2..].parse::<i32>().ok()?),
    };
    if hours > 18 || minutes > 59 {
        return None;
    }
    FixedOffset::east_opt(sign * (hours * 3600 + minutes * 60))
}

/// Parse a timestamp string into epoch ms. Accepted forms:
/// `yyyy-MM-dd HH:mm:ss[.fff]`, `yyyy-MM-ddTHH:mm:ss[.fff]` (both read in
/// `zone`), ISO-8601/RFC 3339 with `Z` or an offset, and `yyyy-MM-dd`
/// (midnight in `zone`).
pub fn parse_timestamp_ms(s: &str, zone: &Zone) -> Result<i64, String> {
    let t = s.trim();
    if let Ok(with_offset) = DateTime::parse_from_rfc3339(t) {
        return Ok(with_offset.timestamp_millis());
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f%:z", "%Y-%m-%dT%H:%M:%S%.f%z", "%Y-%m-%d %H:%M:%S%.f%z"] {
        if let Ok(with_offset) = DateTime::parse_from_str(t, format) {
            return Ok(with_offset.timestamp_millis());
        }
    }
    for format in ["%Y-%m-%d %H:%M:%S%.f", "%Y-%m-%dT%H:%M:%S%.f", "%Y-%m-%d %H:%M", "%Y-%m-%dT%H:%M"] {
        if let Ok(local) = NaiveDateTime::parse_from_str(t, format) {
            return zone.local_to_epoch_ms(&local);
        }
    }
    if let Ok(day) = NaiveDate::parse_from_str(t, "%Y-%m-%d") {
        let midnight = day.and_hms_opt(0, 0, 0).expect("midnight exists");
        return zone.local_to_epoch_ms(&midnight);
    }
    Err("not a timestamp: expected epoch milliseconds, \"yyyy-MM-dd HH:mm:ss\", ISO-8601 or \"yyyy-MM-dd\"".into())
}

/// Parse `yyyy-MM-dd` (zero padding optional) into a checked calendar date.
pub fn parse_date(s: &str) -> Result<Date, String> {
    let t = s.trim();
    let parts: Vec<&str> = t.split('-').collect();
    let parsed = match parts.as_slice() {
        [y, m, d] => match (y.parse::<i32>(), m.parse::<u32>(), d.parse::<u32>()) {
            (Ok(y), Ok(m), Ok(d)) => Some((y, m, d)),
            _ => None,
        },
        _ => None,
    };
    let Some((year, month, day)) = parsed else {
        return Err("not a date: expected \"yyyy-MM-dd\"".into());
    };
    NaiveDate::from_ymd_opt(year, month, day).ok_or_else(|| "not a calendar date".to_string()).and_then(date_from_naive)
}

/// A checked `Date` from a chrono date; errors outside OpenMLDB's range.
pub fn date_from_naive(day: NaiveDate) -> Result<Date, String> {
    if !(MIN_DATE_YEAR..=MAX_DATE_YEAR).contains(&day.year()) {
        return Err(format!("date {day} is outside OpenMLDB's range 1900-01-01..9999-12-31"));
    }
    Ok(Date { year: day.year(), month: day.month() as u8, day: day.day() as u8 })
}

/// The date `days` after 1970-01-01 (JsonConverter's logical Date).
pub fn date_from_epoch_days(days: i64) -> Result<Date, String> {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch is a date");
    let day = i32::try_from(days)
        .ok()
        .and_then(|d| epoch.checked_add_signed(chrono::Duration::days(d.into())))
        .ok_or_else(|| format!("{days} days since 1970-01-01 is not a representable date"))?;
    date_from_naive(day)
}

/// Days since 1970-01-01 of a date (negative before).
pub fn epoch_days(date: &Date) -> Option<i64> {
    let epoch = NaiveDate::from_ymd_opt(1970, 1, 1)?;
    let day = NaiveDate::from_ymd_opt(date.year, date.month.into(), date.day.into())?;
    Some((day - epoch).num_days())
}

/// `yyyy-MM-dd` with zero padding.
pub fn format_date(date: &Date) -> String {
    format!("{:04}-{:02}-{:02}", date.year, date.month, date.day)
}

/// `yyyy-MM-dd HH:mm:ss[.SSS]` of an epoch-ms instant in `zone`.
pub fn format_timestamp(ms: i64, zone: &Zone) -> Option<String> {
    let local = zone.epoch_ms_to_local(ms)?;
    Some(if ms.rem_euclid(1000) == 0 {
        local.format("%Y-%m-%d %H:%M:%S").to_string()
    } else {
        local.format("%Y-%m-%d %H:%M:%S%.3f").to_string()
    })
}

/// The calendar date of an epoch-ms instant in `zone`.
pub fn date_of_timestamp(ms: i64, zone: &Zone) -> Result<Date, String> {
    let local = zone.epoch_ms_to_local(ms).ok_or_else(|| format!("timestamp {ms} is out of range"))?;
    date_from_naive(local.date())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shanghai() -> Zone {
        Zone::parse("Asia/Shanghai").unwrap()
    }

    #[test]
    fn zones_parse_offsets_names_and_utc() {
        assert_eq!(Zone::parse("UTC").unwrap(), Zone::default());
        assert_eq!(Zone::parse("+08:00").unwrap(), Zone::Fixed(FixedOffset::east_opt(8 * 3600).unwrap()));
        assert_eq!(Zone::parse("UTC+8").unwrap(), Zone::Fixed(FixedOffset::east_opt(8 * 3600).unwrap()));
        assert_eq!(Zone::parse("-0530").unwrap(), Zone::Fixed(FixedOffset::east_opt(-(5 * 3600 + 1800)).unwrap()));
        assert!(matches!(Zone::parse("Europe/Berlin").unwrap(), Zone::Named(_)));
        let err = Zone::parse("Mars/Base").unwrap_err();
        assert!(err.contains("Mars/Base"), "{err}");
    }

    #[test]
    fn space_separated_local_time_uses_the_zone() {
        // The guide's row 2: 2021-12-29 08:00:00.
        assert_eq!(parse_timestamp_ms("2021-12-29 08:00:00", &Zone::default()).unwrap(), 1_640_764_800_000);
        assert_eq!(parse_timestamp_ms("2021-12-29 08:00:00", &shanghai()).unwrap(), 1_640_736_000_000);
        assert_eq!(parse_timestamp_ms("2021-12-29 08:00:00.250", &Zone::default()).unwrap(), 1_640_764_800_250);
    }

    #[test]
    fn iso_8601_with_offset_ignores_the_zone() {
        assert_eq!(parse_timestamp_ms("2021-12-29T08:00:00Z", &shanghai()).unwrap(), 1_640_764_800_000);
        assert_eq!(parse_timestamp_ms("2021-12-29T16:00:00+08:00", &Zone::default()).unwrap(), 1_640_764_800_000);
        assert_eq!(parse_timestamp_ms("2021-12-29T16:00:00+0800", &Zone::default()).unwrap(), 1_640_764_800_000);
        assert_eq!(parse_timestamp_ms("2021-12-29T08:00:00", &Zone::default()).unwrap(), 1_640_764_800_000);
    }

    #[test]
    fn bare_dates_are_midnight_in_the_zone() {
        assert_eq!(parse_timestamp_ms("2021-12-29", &Zone::default()).unwrap(), 1_640_736_000_000);
        assert!(parse_timestamp_ms("29/12/2021", &Zone::default()).is_err());
    }

    #[test]
    fn dst_gaps_are_errors_and_overlaps_take_the_earlier_instant() {
        let berlin = Zone::parse("Europe/Berlin").unwrap();
        assert!(parse_timestamp_ms("2021-03-28 02:30:00", &berlin).unwrap_err().contains("does not exist"));
        let overlap = parse_timestamp_ms("2021-10-31 02:30:00", &berlin).unwrap();
        assert_eq!(overlap, parse_timestamp_ms("2021-10-31T02:30:00+02:00", &berlin).unwrap());
    }

    #[test]
    fn dates_are_checked_against_the_calendar_and_openmldb_range() {
        assert_eq!(parse_date("2021-2-3").unwrap(), Date { year: 2021, month: 2, day: 3 });
        assert_eq!(parse_date("1900-01-01").unwrap(), Date { year: 1900, month: 1, day: 1 });
        assert_eq!(parse_date("9999-12-31").unwrap(), Date { year: 9999, month: 12, day: 31 });
        assert!(parse_date("2021-02-31").unwrap_err().contains("calendar"));
        assert!(parse_date("1899-12-31").unwrap_err().contains("range"));
        assert!(parse_date("2021/02/03").is_err());
    }

    #[test]
    fn epoch_days_round_trip() {
        let d = date_from_epoch_days(18990).unwrap();
        assert_eq!(format_date(&d), "2021-12-29");
        assert_eq!(epoch_days(&d), Some(18990));
        assert!(date_from_epoch_days(-30000).is_err());
    }

    #[test]
    fn timestamps_format_in_the_zone() {
        assert_eq!(format_timestamp(1_640_764_800_000, &Zone::default()).unwrap(), "2021-12-29 08:00:00");
        assert_eq!(format_timestamp(1_640_764_800_000, &shanghai()).unwrap(), "2021-12-29 16:00:00");
        assert_eq!(format_timestamp(1_640_764_800_123, &Zone::default()).unwrap(), "2021-12-29 08:00:00.123");
    }
}
