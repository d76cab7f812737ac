//! The REMD report (per organisation and kind: submitted, registered, failed, pending,
//! success rate, top error codes) and the dashboard's days — pure functions of the store's
//! counts — and the report's CSV for a Russian-locale spreadsheet.
//!
//! A submission counts in the period it was submitted (`created_at`): "of the documents
//! submitted this week, how many are registered now". `pending` is every state still on its
//! way to REMD; `cancelled` is shown apart and not in the success rate's base.

use std::collections::BTreeMap;

use chrono::{DateTime, Duration, FixedOffset, NaiveDate, Utc};
use serde::Serialize;

use crate::lifecycle::OPEN;
use crate::submission::{CohortCount, DayCount, Status};

/// How many error codes a row names.
pub const TOP_CODES: usize = 3;

/// One error code and how many failed submissions carry it first.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct CodeCount {
    pub code: String,
    pub count: u64,
}

/// The figures of one organisation and kind (or of everything: `total`).
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct ReportRow {
    pub organization: String,
    /// The organisation's short name in FRMO (its full name where FRMO gives no short one);
    /// absent when the FRMO copy does not know the OID.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organization_name: Option<String>,
    /// The organisation's full name in FRMO; absent as `organization_name`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organization_full_name: Option<String>,
    pub kind: u32,
    pub submitted: u64,
    pub registered: u64,
    pub failed: u64,
    pub pending: u64,
    pub cancelled: u64,
    /// `registered / (submitted − cancelled)`, 0–1; `None` when nothing counts.
    pub success_rate: Option<f64>,
    /// The commonest first error codes of the failed ones, most frequent first.
    pub top_error_codes: Vec<CodeCount>,
}

/// The report of a period.
#[derive(Debug, Clone, PartialEq, Serialize, utoipa::ToSchema)]
pub struct Report {
    pub from: DateTime<Utc>,
    pub to: DateTime<Utc>,
    /// By organisation, then kind.
    pub rows: Vec<ReportRow>,
    /// Every row together (`organization` and `kind` empty / 0).
    pub total: ReportRow,
}

#[derive(Default)]
struct Acc {
    by_status: BTreeMap<&'static str, u64>,
    codes: BTreeMap<String, u64>,
}

impl Acc {
    fn add(&mut self, c: &CohortCount) {
        *self.by_status.entry(c.status.as_str()).or_default() += c.count;
        if c.status == Status::Failed
            && let Some(code) = &c.error_code
        {
            *self.codes.entry(code.clone()).or_default() += c.count;
        }
    }

    fn row(&self, organization: String, kind: u32) -> ReportRow {
        let of = |s: Status| self.by_status.get(s.as_str()).copied().unwrap_or(0);
        let submitted = self.by_status.values().sum::<u64>();
        let registered = of(Status::Registered);
        let cancelled = of(Status::Cancelled);
        let base = submitted - cancelled;
        let mut codes: Vec<CodeCount> =
            self.codes.iter().map(|(code, &count)| CodeCount { code: code.clone(), count }).collect();
        // Most frequent first; ties by code, so the order is stable.
        codes.sort_by(|a, b| b.count.cmp(&a.count).then_with(|| a.code.cmp(&b.code)));
        codes.truncate(TOP_CODES);
        ReportRow {
            organization,
            organization_name: None,
            organization_full_name: None,
            kind,
            submitted,
            registered,
            failed: of(Status::Failed),
            pending: OPEN.iter().map(|s| of(*s)).sum(),
            cancelled,
            success_rate: (base > 0).then(|| registered as f64 / base as f64),
            top_error_codes: codes,
        }
    }
}

/// The report of `[from, to)` from the store's counts.
pub fn report(from: DateTime<Utc>, to: DateTime<Utc>, counts: &[CohortCount]) -> Report {
    let mut groups: BTreeMap<(&str, u32), Acc> = BTreeMap::new();
    let mut total = Acc::default();
    for c in counts {
        groups.entry((c.organization.as_str(), c.kind)).or_default().add(c);
        total.add(c);
    }
    Report {
        from,
        to,
        rows: groups.iter().map(|((org, kind), acc)| acc.row((*org).to_owned(), *kind)).collect(),
        total: total.row(String::new(), 0),
    }
}

/// Puts FRMO's names beside each row's OID: `names` as `(oid, full, short)` (an OID not
/// among them keeps none).
pub fn name_rows(report: &mut Report, names: &[(String, String, Option<String>)]) {
    let by_oid: std::collections::HashMap<&str, (&String, &Option<String>)> =
        names.iter().map(|(oid, full, short)| (oid.as_str(), (full, short))).collect();
    for row in &mut report.rows {
        if let Some((full, short)) = by_oid.get(row.organization.as_str()) {
            row.organization_name = Some(crate::nsi::frmo::index::display_name(full, short.as_deref()).to_owned());
            row.organization_full_name = Some((*full).clone());
        }
    }
}

/// The week (Monday 00:00 to the next Monday, in the region's time) that holds `day`.
pub fn week_of(day: NaiveDate, offset: FixedOffset) -> (DateTime<Utc>, DateTime<Utc>) {
    use chrono::Datelike;
    let monday = day - Duration::days(i64::from(day.weekday().num_days_from_monday()));
    let start = monday.and_hms_opt(0, 0, 0).expect("midnight exists").and_local_timezone(offset).unwrap().to_utc();
    (start, start + Duration::days(7))
}

/// The longest period one report covers.
pub const MAX_PERIOD_DAYS: i64 = 366;

/// Why a report's period is refused (Russian, for the problem or the page).
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
#[error("конец периода позже начала, период не длиннее года")]
pub struct BadPeriod;

/// The period a report covers: `from` and `to` as given; a week after `from` or before
/// `to` when only one is given; the week of `today` (in the region's time, `offset`) when
/// neither is. `to` after `from`, at most [`MAX_PERIOD_DAYS`] days.
pub fn period(
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    today: NaiveDate,
    offset: FixedOffset,
) -> Result<(DateTime<Utc>, DateTime<Utc>), BadPeriod> {
    let (from, to) = match (from, to) {
        (Some(f), Some(t)) => (f, t),
        (Some(f), None) => (f, f + Duration::days(7)),
        (None, Some(t)) => (t - Duration::days(7), t),
        (None, None) => week_of(today, offset),
    };
    if to <= from || to - from > Duration::days(MAX_PERIOD_DAYS) { Err(BadPeriod) } else { Ok((from, to)) }
}

/// The name of a report's CSV file: `remd-report-<first day>.csv`, the day in the region's
/// time.
pub fn csv_file_name(report: &Report, offset: FixedOffset) -> String {
    format!("remd-report-{}.csv", report.from.with_timezone(&offset).format("%Y-%m-%d"))
}

/// Days since 1970-01-01 in the region's time, of an instant.
pub fn day_number(at: DateTime<Utc>, offset: FixedOffset) -> i64 {
    (at.timestamp() + i64::from(offset.local_minus_utc())).div_euclid(86_400)
}

/// The date of a day number.
pub fn day_date(day: i64) -> NaiveDate {
    NaiveDate::from_ymd_opt(1970, 1, 1).expect("epoch") + Duration::days(day)
}

/// One day of the dashboard's chart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct DayFigures {
    pub date: NaiveDate,
    pub submitted: u64,
    pub registered: u64,
    pub failed: u64,
}

/// `days` consecutive days ending with `last` (a day number), each with its figures (zero
/// where the store counted nothing).
pub fn days(last: i64, days: u32, counts: &[DayCount]) -> Vec<DayFigures> {
    let first = last - i64::from(days) + 1;
    (first..=last)
        .map(|day| {
            let of = |s: Option<Status>| {
                counts.iter().filter(|c| c.day == day && s.is_none_or(|s| c.status == s)).map(|c| c.count).sum()
            };
            DayFigures {
                date: day_date(day),
                submitted: of(None),
                registered: of(Some(Status::Registered)),
                failed: of(Some(Status::Failed)),
            }
        })
        .collect()
}

/// The report as CSV for a Russian-locale spreadsheet: UTF-8 with a byte-order mark, `;`
/// between fields, a decimal comma, fields quoted when they hold `;`, `,`, `"` or a line
/// break, no cell able to start a formula ([`spreadsheet_cell`]).
pub fn csv(report: &Report, kind_name: impl Fn(u32) -> Option<String>) -> Vec<u8> {
    let mut out = String::from("\u{feff}");
    let header = [
        "Организация (OID)",
        "Организация (краткое наименование)",
        "Организация (полное наименование)",
        "Вид документа",
        "Наименование вида",
        "Подано",
        "Зарегистрировано",
        "С ошибкой",
        "В обработке",
        "Отменено",
        "Доля успешных, %",
        "Частые коды ошибок",
    ];
    line(&mut out, header.iter().map(|h| (*h).to_owned()));
    let row = |out: &mut String, r: &ReportRow, org: String, kind: String, name: String| {
        let short = r.organization_name.clone().unwrap_or_default();
        let full = r.organization_full_name.clone().unwrap_or_default();
        let rate = r.success_rate.map(|x| format!("{:.1}", x * 100.0).replace('.', ",")).unwrap_or_default();
        let codes =
            r.top_error_codes.iter().map(|c| format!("{} ({})", c.code, c.count)).collect::<Vec<_>>().join(", ");
        line(
            out,
            [
                org,
                short,
                full,
                kind,
                name,
                r.submitted.to_string(),
                r.registered.to_string(),
                r.failed.to_string(),
                r.pending.to_string(),
                r.cancelled.to_string(),
                rate,
                codes,
            ]
            .into_iter(),
        );
    };
    for r in &report.rows {
        row(&mut out, r, r.organization.clone(), r.kind.to_string(), kind_name(r.kind).unwrap_or_default());
    }
    row(&mut out, &report.total, "Итого".into(), String::new(), String::new());
    out.into_bytes()
}

/// Characters a spreadsheet may take as the start of a formula, in ASCII and full width.
const FORMULA_STARTS: [char; 8] = ['=', '+', '-', '@', '＝', '＋', '－', '＠'];

/// A cell a spreadsheet will show as text, never run as a formula (CSV injection): a value
/// whose first character is `=` `+` `-` `@`, a tab or a carriage return, or whose first
/// character after leading white space (ASCII or not) is `=` `+` `-` `@` or their full-width
/// forms `＝` `＋` `－` `＠`, gets a leading apostrophe. Anything else is left as it is.
pub fn spreadsheet_cell(value: String) -> String {
    let first = value.chars().next();
    let first_visible = value.chars().find(|c| !c.is_whitespace());
    let risky = matches!(first, Some('\t' | '\r')) || first_visible.is_some_and(|c| FORMULA_STARTS.contains(&c));
    if risky { format!("'{value}") } else { value }
}

fn line(out: &mut String, fields: impl Iterator<Item = String>) {
    let fields: Vec<String> = fields
        .map(|f| {
            let f = spreadsheet_cell(f);
            // Quoted when it holds a separator of either locale's spreadsheets (`;`, `,`), a quote
            // or a line break: a spreadsheet splitting on commas cannot start a cell mid-field.
            if f.contains([';', ',', '"', '\n', '\r']) { format!("\"{}\"", f.replace('"', "\"\"")) } else { f }
        })
        .collect();
    out.push_str(&fields.join(";"));
    out.push_str("\r\n");
}

#[cfg(test)]
mod tests {
    use super::*;

    fn c(org: &str, kind: u32, status: Status, code: Option<&str>, count: u64) -> CohortCount {
        CohortCount { organization: org.into(), kind, status, error_code: code.map(Into::into), count }
    }

    #[test]
    fn a_period_is_what_was_given_or_a_week_and_at_most_a_year() {
        let offset = FixedOffset::east_opt(7 * 3600).unwrap();
        let t = |s: &str| s.parse::<DateTime<Utc>>().unwrap();
        let today = NaiveDate::from_ymd_opt(2026, 12, 6).unwrap();
        let (f, w) = (t("2026-11-01T00:00:00Z"), Duration::days(7));
        assert_eq!(period(Some(f), Some(f + w + w), today, offset), Ok((f, f + w + w)));
        assert_eq!(period(Some(f), None, today, offset), Ok((f, f + w)), "a week from `from`");
        assert_eq!(period(None, Some(f), today, offset), Ok((f - w, f)), "a week up to `to`");
        // 2026-12-06 is a Sunday: its week began on Monday 2026-11-30, midnight at +07:00.
        assert_eq!(period(None, None, today, offset), Ok((t("2026-11-29T17:00:00Z"), t("2026-12-06T17:00:00Z"))));
        assert_eq!(period(Some(f), Some(f), today, offset), Err(BadPeriod), "empty");
        assert_eq!(period(Some(f + w), Some(f), today, offset), Err(BadPeriod), "backwards");
        let year = Duration::days(MAX_PERIOD_DAYS);
        assert!(period(Some(f), Some(f + year), today, offset).is_ok());
        assert_eq!(period(Some(f), Some(f + year + Duration::seconds(1)), today, offset), Err(BadPeriod));
    }

    #[test]
    fn rows_per_organisation_and_kind_with_rates_and_top_codes() {
        let t: DateTime<Utc> = "2023-08-14T00:00:00Z".parse().unwrap();
        let counts = [
            c("1.2.3", 40, Status::Registered, None, 90),
            c("1.2.3", 40, Status::Failed, Some("PERSON_NOT_FOUND"), 4),
            c("1.2.3", 40, Status::Failed, Some("INVALID_SIGNATURE"), 4),
            c("1.2.3", 40, Status::Failed, Some("A_CODE"), 1),
            c("1.2.3", 40, Status::Failed, Some("Z_CODE"), 1),
            c("1.2.3", 40, Status::Queued, None, 2),
            c("1.2.3", 40, Status::AwaitingResult, None, 3),
            c("1.2.3", 40, Status::Cancelled, None, 5),
            c("1.2.4", 119, Status::Cancelled, None, 1),
        ];
        let r = report(t, t + Duration::days(7), &counts);
        assert_eq!(r.rows.len(), 2);
        let a = &r.rows[0];
        assert_eq!((a.submitted, a.registered, a.failed, a.pending, a.cancelled), (110, 90, 10, 5, 5));
        assert!((a.success_rate.unwrap() - 90.0 / 105.0).abs() < 1e-9);
        let codes: Vec<_> = a.top_error_codes.iter().map(|c| (c.code.as_str(), c.count)).collect();
        assert_eq!(codes, [("INVALID_SIGNATURE", 4), ("PERSON_NOT_FOUND", 4), ("A_CODE", 1)]);
        assert_eq!(r.rows[1].success_rate, None, "only cancelled: no rate");
        assert_eq!(r.total.submitted, 111);
    }

    #[test]
    fn the_csv_opens_in_a_russian_spreadsheet() {
        let t: DateTime<Utc> = "2023-08-14T00:00:00Z".parse().unwrap();
        let counts = [
            c("1.2.3", 40, Status::Registered, None, 2),
            c("1.2.3", 40, Status::Failed, Some("X"), 1),
            c("1.2.9", 40, Status::Registered, None, 1),
        ];
        let mut r = report(t, t, &counts);
        name_rows(&mut r, &[("1.2.3".into(), "ГБУЗ «Больница; № 1»".into(), Some("ГБУЗ Б1".into()))]);
        let bytes = csv(&r, |k| (k == 40).then(|| "Протокол; \"ТМК\"".to_owned()));
        assert_eq!(&bytes[..3], b"\xEF\xBB\xBF", "UTF-8 byte-order mark");
        let text = String::from_utf8(bytes[3..].to_vec()).unwrap();
        let lines: Vec<_> = text.split("\r\n").collect();
        assert!(
            lines[0].starts_with(
                "Организация (OID);Организация (краткое наименование);Организация (полное наименование);Вид документа;"
            ),
            "{}",
            lines[0]
        );
        assert_eq!(
            lines[1],
            "1.2.3;ГБУЗ Б1;\"ГБУЗ «Больница; № 1»\";40;\"Протокол; \"\"ТМК\"\"\";3;2;1;0;0;\"66,7\";X (1)"
        );
        assert_eq!(lines[2], "1.2.9;;;40;\"Протокол; \"\"ТМК\"\"\";1;1;0;0;0;\"100,0\";", "FRMO does not know it");
        assert_eq!(lines[3], "Итого;;;;;4;3;1;0;0;\"75,0\";X (1)");
    }

    #[test]
    fn no_cell_starts_a_formula() {
        for risky in [
            "=1+1",
            "+1",
            "-1",
            "@SUM(A1)",
            "\tx",
            "\rx",
            " =1+1",
            "  +x",
            "\u{a0}-x",
            "\u{3000}@x",
            "\n=x",
            "＝1+1",
            "＋1",
            "－1",
            "＠x",
            " ＝x",
        ] {
            assert_eq!(spreadsheet_cell(risky.to_owned()), format!("'{risky}"), "{risky:?}");
        }
        for plain in ["1.2.643.5.1.13", "Протокол ТМК", "66,7", "", "   ", "a=b", "x-1", "PERSON_NOT_FOUND (4)"]
        {
            assert_eq!(spreadsheet_cell(plain.to_owned()), plain, "{plain:?}");
        }
    }

    #[test]
    fn weeks_and_days_are_the_regions() {
        let plus7 = FixedOffset::east_opt(7 * 3600).unwrap();
        let (from, to) = week_of("2023-08-18".parse().unwrap(), plus7);
        assert_eq!(from, "2023-08-13T17:00:00Z".parse::<DateTime<Utc>>().unwrap(), "Monday 00:00 +07:00");
        assert_eq!(to - from, Duration::days(7));
        let late_sunday_utc: DateTime<Utc> = "2023-08-13T18:00:00Z".parse().unwrap();
        assert_eq!(day_date(day_number(late_sunday_utc, plus7)), "2023-08-14".parse::<NaiveDate>().unwrap());
        let d = day_number(late_sunday_utc, plus7);
        let series = days(d, 3, &[DayCount { day: d, status: Status::Failed, count: 2 }]);
        assert_eq!(series.len(), 3);
        assert_eq!((series[2].submitted, series[2].failed, series[0].submitted), (2, 2, 0));
    }
}
