//! Request parameters read the same way by the lists, the report and the console.

use chrono::{DateTime, FixedOffset, Utc};

use super::problem::FieldError;

/// The years a time parameter may name.
const YEARS: std::ops::RangeInclusive<i32> = 2000..=2100;

/// RFC 3339, or a date meaning midnight in the region's time; years 2000–2100.
pub fn region_time(
    raw: Option<&str>,
    name: &str,
    offset: FixedOffset,
    errors: &mut Vec<FieldError>,
) -> Option<DateTime<Utc>> {
    use chrono::Datelike;
    let s = raw.map(str::trim).filter(|s| !s.is_empty())?;
    let parsed = match DateTime::parse_from_rfc3339(s) {
        Ok(t) => Some(t.with_timezone(&Utc)),
        Err(_) => chrono::NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .ok()
            .and_then(|d| d.and_hms_opt(0, 0, 0))
            .and_then(|m| m.and_local_timezone(offset).single())
            .map(|t| t.to_utc()),
    };
    match parsed {
        Some(t) if YEARS.contains(&t.year()) => Some(t),
        _ => {
            errors.push(FieldError::new(
                "datetime",
                name,
                format!("время в RFC 3339 или дата ГГГГ-ММ-ДД (годы 2000–2100), получено {s:?}"),
            ));
            None
        }
    }
}
