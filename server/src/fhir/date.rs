//! FHIR date, dateTime and instant values as UTC ranges.
//!
//! A FHIR date is imprecise on purpose ("2026-11" is a whole month), so both indexing and search
//! treat every value as a range `[start, end)`. Stored text uses one fixed-width UTC format so
//! SQL can compare it as text.

use chrono::{DateTime, Datelike, Duration, NaiveDate, NaiveDateTime, NaiveTime, TimeZone, Utc};

/// The one textual form instants take in the database and in `meta.lastUpdated`.
pub fn format_instant(at: DateTime<Utc>) -> String {
    at.format("%Y-%m-%dT%H:%M:%S%.3fZ").to_string()
}

/// Parses a FHIR date / dateTime / instant into `[start, end)` in UTC.
/// Values without a zone are taken as UTC (FHIR requires a zone whenever a time is given).
pub fn parse_range(text: &str) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    let text = text.trim();
    // Every FHIR date form starts with a four-digit year.
    if !text.is_ascii()
        || !text
            .get(..4)
            .is_some_and(|year| year.bytes().all(|b| b.is_ascii_digit()))
    {
        return None;
    }
    match text.len() {
        4 => {
            let year: i32 = text.parse().ok()?;
            let start = NaiveDate::from_ymd_opt(year, 1, 1)?;
            let end = NaiveDate::from_ymd_opt(year.checked_add(1)?, 1, 1)?;
            Some((midnight(start), midnight(end)))
        }
        7 => {
            let (year, month) = text.split_once('-')?;
            let year: i32 = year.parse().ok()?;
            let month: u32 = month.parse().ok()?;
            let start = NaiveDate::from_ymd_opt(year, month, 1)?;
            let end = if month == 12 {
                NaiveDate::from_ymd_opt(year.checked_add(1)?, 1, 1)?
            } else {
                NaiveDate::from_ymd_opt(year, month + 1, 1)?
            };
            Some((midnight(start), midnight(end)))
        }
        10 => {
            let day = NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()?;
            if day.year() < 1 {
                return None;
            }
            Some((midnight(day), midnight(day) + Duration::days(1)))
        }
        _ => parse_date_time(text),
    }
}

fn parse_date_time(text: &str) -> Option<(DateTime<Utc>, DateTime<Utc>)> {
    if let Ok(at) = DateTime::parse_from_rfc3339(text) {
        let at = at.with_timezone(&Utc);
        // Precision: whole seconds unless fractions were given.
        let step = if text.contains('.') {
            Duration::milliseconds(1)
        } else {
            Duration::seconds(1)
        };
        return Some((at, at + step));
    }
    // Minute precision with a zone ("2026-11-25T10:00Z"), or no zone at all.
    for (format, step) in [
        ("%Y-%m-%dT%H:%M%#z", Duration::minutes(1)),
        ("%Y-%m-%dT%H:%M%:z", Duration::minutes(1)),
    ] {
        if let Ok(at) = DateTime::parse_from_str(&text.replace('Z', "+00:00"), format) {
            let at = at.with_timezone(&Utc);
            return Some((at, at + step));
        }
    }
    for (format, step) in [
        ("%Y-%m-%dT%H:%M:%S%.f", Duration::milliseconds(1)),
        ("%Y-%m-%dT%H:%M:%S", Duration::seconds(1)),
        ("%Y-%m-%dT%H:%M", Duration::minutes(1)),
    ] {
        if let Ok(at) = NaiveDateTime::parse_from_str(text, format) {
            let at = Utc.from_utc_datetime(&at);
            return Some((at, at + step));
        }
    }
    None
}

fn midnight(day: NaiveDate) -> DateTime<Utc> {
    Utc.from_utc_datetime(&day.and_time(NaiveTime::MIN))
}

/// The inclusive stored range of an element: a date-like string or a Period.
pub fn element_range(value: &serde_json::Value) -> Option<(String, String)> {
    match value {
        serde_json::Value::String(text) => {
            let (start, end) = parse_range(text)?;
            Some((
                format_instant(start),
                format_instant(end - Duration::milliseconds(1)),
            ))
        }
        serde_json::Value::Object(period) => {
            let start = period
                .get("start")
                .and_then(|v| v.as_str())
                .and_then(parse_range)
                .map(|(start, _)| format_instant(start))
                .unwrap_or_else(|| "0001-01-01T00:00:00.000Z".to_owned());
            let end = period
                .get("end")
                .and_then(|v| v.as_str())
                .and_then(parse_range)
                .map(|(_, end)| format_instant(end - Duration::milliseconds(1)))
                .unwrap_or_else(|| "9999-12-31T23:59:59.999Z".to_owned());
            if period.get("start").is_none() && period.get("end").is_none() {
                return None;
            }
            Some((start, end))
        }
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn range(text: &str) -> (String, String) {
        let (start, end) = parse_range(text).unwrap();
        (format_instant(start), format_instant(end))
    }

    #[test]
    fn partial_dates_cover_their_whole_period() {
        assert_eq!(
            range("2026"),
            (
                "2026-01-01T00:00:00.000Z".into(),
                "2027-01-01T00:00:00.000Z".into()
            )
        );
        assert_eq!(
            range("2026-12"),
            (
                "2026-12-01T00:00:00.000Z".into(),
                "2027-01-01T00:00:00.000Z".into()
            )
        );
        assert_eq!(
            range("2026-02-28"),
            (
                "2026-02-28T00:00:00.000Z".into(),
                "2026-03-01T00:00:00.000Z".into()
            )
        );
    }

    #[test]
    fn date_times_are_normalised_to_utc() {
        assert_eq!(
            range("2026-11-25T10:00:00+02:00").0,
            "2026-11-25T08:00:00.000Z"
        );
        assert_eq!(range("2026-11-25T10:00Z").1, "2026-11-25T10:01:00.000Z");
        assert_eq!(range("2026-11-25T10:00:00").0, "2026-11-25T10:00:00.000Z");
    }

    #[test]
    fn garbage_is_rejected_without_panic() {
        for bad in [
            "",
            "20",
            "2026-13",
            "2026-02-30",
            "yesterday",
            "2026-11-25T25:00Z",
            "ÿÿÿÿ",
            "-001",
        ] {
            assert!(parse_range(bad).is_none(), "{bad}");
        }
    }

    #[test]
    fn periods_may_be_open_ended() {
        let (start, end) = element_range(&json!({"start": "2026-11-20"})).unwrap();
        assert_eq!(start, "2026-11-20T00:00:00.000Z");
        assert!(end.starts_with("9999"));
        assert!(element_range(&json!({})).is_none());
    }
}
