//! HL7 v3 `TS` values (`effectiveTime/@value`, `birthTime/@value`): `YYYY[MM[DD[HH[MM[SS[.F]]]]]][±ZZzz]`.

use std::fmt;

use chrono::{DateTime, FixedOffset, NaiveDate, NaiveDateTime, NaiveTime, TimeZone};

/// How much of a `TS` value is given.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum TimePrecision {
    Year,
    Month,
    Day,
    Hour,
    Minute,
    Second,
}

/// A parsed `TS` value: the local date-time it names (missing parts filled with their
/// smallest value), how precise it is, and its UTC offset when it has one.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Hl7Time {
    pub local: NaiveDateTime,
    pub precision: TimePrecision,
    pub offset: Option<FixedOffset>,
}

/// Why a `TS` value could not be read. Never quotes the value (a birth time is personal data).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimeError {
    /// The element is there but `@value` is not (or is empty).
    Missing,
    /// Not `YYYY[MM[DD[HH[MM[SS[.F]]]]]][±ZZzz]`.
    Syntax,
    /// Digits in the right places, but no such date, time or offset.
    OutOfRange,
}

impl fmt::Display for TimeError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            TimeError::Missing => "нет значения @value",
            TimeError::Syntax => "значение не в формате ГГГГММДДччммсс±ччмм",
            TimeError::OutOfRange => "такой даты, времени или часового пояса не существует",
        })
    }
}

impl Hl7Time {
    pub fn parse(input: &str) -> Result<Self, TimeError> {
        let s = input.trim();
        if s.is_empty() {
            return Err(TimeError::Missing);
        }
        let (stamp, zone) = match s.find(['+', '-']) {
            Some(i) => (&s[..i], Some(&s[i..])),
            None => (s, None),
        };
        let (digits, fraction) = match stamp.split_once('.') {
            Some((d, f)) => (d, Some(f)),
            None => (stamp, None),
        };
        if !digits.bytes().all(|b| b.is_ascii_digit()) {
            return Err(TimeError::Syntax);
        }
        let precision = match digits.len() {
            4 => TimePrecision::Year,
            6 => TimePrecision::Month,
            8 => TimePrecision::Day,
            10 => TimePrecision::Hour,
            12 => TimePrecision::Minute,
            14 => TimePrecision::Second,
            _ => return Err(TimeError::Syntax),
        };
        let num = |range: std::ops::Range<usize>, default: u32| -> u32 {
            digits.get(range).map_or(default, |d| d.parse().unwrap_or(u32::MAX))
        };
        let year = i32::try_from(num(0..4, 0)).map_err(|_| TimeError::Syntax)?;
        let date = NaiveDate::from_ymd_opt(year, num(4..6, 1), num(6..8, 1)).ok_or(TimeError::OutOfRange)?;
        let nanos = match fraction {
            None => 0,
            Some(f) if precision == TimePrecision::Second && (1..=9).contains(&f.len()) => {
                if !f.bytes().all(|b| b.is_ascii_digit()) {
                    return Err(TimeError::Syntax);
                }
                let padded = format!("{f:0<9}");
                padded.parse::<u32>().map_err(|_| TimeError::Syntax)?
            }
            Some(_) => return Err(TimeError::Syntax),
        };
        let time = NaiveTime::from_hms_nano_opt(num(8..10, 0), num(10..12, 0), num(12..14, 0), nanos)
            .ok_or(TimeError::OutOfRange)?;
        let offset = match zone {
            None => None,
            Some(z) => Some(parse_offset(z)?),
        };
        Ok(Self { local: date.and_time(time), precision, offset })
    }

    /// The calendar date as written (in the value's own offset).
    pub fn date(&self) -> NaiveDate {
        self.local.date()
    }

    /// The instant this value names: in its own offset, or in `zone_if_absent` when it has none.
    pub fn to_datetime(&self, zone_if_absent: FixedOffset) -> DateTime<FixedOffset> {
        let zone = self.offset.unwrap_or(zone_if_absent);
        // A fixed offset has no gaps or folds: the mapping is always single.
        zone.from_local_datetime(&self.local).single().unwrap_or_else(|| zone.from_utc_datetime(&self.local))
    }
}

fn parse_offset(zone: &str) -> Result<FixedOffset, TimeError> {
    let b = zone.as_bytes();
    if b.len() != 5 || !b[1..].iter().all(u8::is_ascii_digit) {
        return Err(TimeError::Syntax);
    }
    let hours = i32::from(b[1] - b'0') * 10 + i32::from(b[2] - b'0');
    let minutes = i32::from(b[3] - b'0') * 10 + i32::from(b[4] - b'0');
    if hours > 14 || minutes > 59 {
        return Err(TimeError::OutOfRange);
    }
    let seconds = (hours * 60 + minutes) * 60;
    let offset = if b[0] == b'-' { FixedOffset::west_opt(seconds) } else { FixedOffset::east_opt(seconds) };
    offset.ok_or(TimeError::OutOfRange)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn precisions_and_offsets() {
        let t = Hl7Time::parse("202308181015+0700").unwrap();
        assert_eq!(t.precision, TimePrecision::Minute);
        assert_eq!(t.offset, FixedOffset::east_opt(7 * 3600));
        assert_eq!(t.to_datetime(FixedOffset::east_opt(0).unwrap()).to_rfc3339(), "2023-08-18T10:15:00+07:00");

        let d = Hl7Time::parse("19970805").unwrap();
        assert_eq!((d.precision, d.offset), (TimePrecision::Day, None));
        assert_eq!(d.date(), NaiveDate::from_ymd_opt(1997, 8, 5).unwrap());

        let s = Hl7Time::parse("20230818101530.25-0330").unwrap();
        assert_eq!(s.precision, TimePrecision::Second);
        assert_eq!(s.to_datetime(FixedOffset::east_opt(0).unwrap()).to_rfc3339(), "2023-08-18T10:15:30.250-03:30");

        assert_eq!(Hl7Time::parse("2023").unwrap().precision, TimePrecision::Year);
    }

    #[test]
    fn rejects() {
        assert_eq!(Hl7Time::parse(""), Err(TimeError::Missing));
        for bad in ["2023-08-18", "20230", "202308181015+07", "2023081810.5", "20230818T1015", "202308181015+0700x"] {
            assert_eq!(Hl7Time::parse(bad), Err(TimeError::Syntax), "{bad}");
        }
        for bad in ["20230230", "202308182515", "202308181015+1500"] {
            assert_eq!(Hl7Time::parse(bad), Err(TimeError::OutOfRange), "{bad}");
        }
    }
}
