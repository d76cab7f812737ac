//! The verdict rules of FRMR.md ("What verified means"), as one pure function.

use chrono::NaiveDate;
use egisz_contract::Oid;
use egisz_contract::frmr::{Dereliction, FrmrPerson, PersonCard};

/// The answer to "may this person act for this organisation, in this position, on this date".
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Verdict {
    /// A card in the organisation active on the date, with the position asked for (if any).
    Verified,
    /// Active card(s) in the organisation, but none with the position asked for.
    PositionMismatch,
    /// Known to FRMR, but no card in the organisation active on the date.
    NotEmployed,
    /// Active card, but a temporary absence covers the date (reported, not blocking).
    OnLeave,
    /// FRMR has no such person.
    NotFound,
    /// The SNILS is malformed or its control number is wrong (decided locally).
    InvalidSnils,
}

impl Verdict {
    pub fn as_str(self) -> &'static str {
        match self {
            Verdict::Verified => "verified",
            Verdict::PositionMismatch => "position_mismatch",
            Verdict::NotEmployed => "not_employed",
            Verdict::OnLeave => "on_leave",
            Verdict::NotFound => "not_found",
            Verdict::InvalidSnils => "invalid_snils",
        }
    }
}

/// A verdict with a short Russian explanation for the person at the portal.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Decision {
    pub verdict: Verdict,
    pub detail: String,
}

/// Whether a card belongs to the organisation (by the MO OID on the card, or its
/// department lying under the MO).
pub fn card_in(card: &PersonCard, organization: &Oid) -> bool {
    card.organization.as_deref() == Some(organization.as_str())
        || card
            .department
            .as_deref()
            .and_then(|d| Oid::parse(d).ok())
            .is_some_and(|d| d.is_under(organization.as_str()))
}

/// FRMR.md: `beginDate <= date` and `endDate` null or `>= date`. A card without a hire date
/// is not taken as proof of employment.
fn active_on(card: &PersonCard, date: NaiveDate) -> bool {
    card.begin_date.is_some_and(|b| b <= date) && card.end_date.is_none_or(|e| e >= date)
}

/// Position codes compare as numbers of NSI 1002: "073" is "73".
fn same_position(card: &PersonCard, asked: &str) -> bool {
    let norm = |s: &str| s.trim().trim_start_matches('0').to_owned();
    card.position_code.as_deref().is_some_and(|c| norm(c) == norm(asked))
}

/// The temporary absences of a card that cover `date`.
fn leave_on(card: &PersonCard, date: NaiveDate) -> impl Iterator<Item = &Dereliction> {
    card.derelictions
        .iter()
        .filter(move |d| d.begin_date.is_some_and(|b| b <= date) && d.end_date.is_none_or(|e| e >= date))
}

fn on_leave(card: &PersonCard, date: NaiveDate) -> bool {
    leave_on(card, date).next().is_some()
}

fn describe(card: &PersonCard) -> String {
    match (&card.position_code, &card.position) {
        (Some(code), Some(name)) => format!("{code} ({name})"),
        (Some(code), None) => code.clone(),
        (None, Some(name)) => name.clone(),
        (None, None) => "не указана".into(),
    }
}

/// Names as FRMR compares them (FRMR.md): case-insensitive, `ё` = `е`, outer spaces ignored.
fn normalized(name: &str) -> String {
    name.trim().to_lowercase().replace('ё', "е")
}

/// The document's name of a worker is FRMR's (REMD: `VALUE_MISMATCH_METADATA_AND_FRMR`
/// otherwise). A patronymic absent on one side matches only an absent or empty one.
pub fn same_names(person: &FrmrPerson, last: &str, first: &str, middle: Option<&str>) -> bool {
    let theirs = |n: Option<&str>| normalized(n.unwrap_or_default());
    theirs(Some(person.last_name.expose())) == normalized(last)
        && theirs(Some(person.first_name.expose())) == normalized(first)
        && theirs(person.patronymic.as_ref().map(|p| p.expose().as_str())) == normalized(middle.unwrap_or_default())
}

/// Decides the verdict for `person` (`None`: not in FRMR).
pub fn decide(person: Option<&FrmrPerson>, organization: &Oid, position: Option<&str>, date: NaiveDate) -> Decision {
    let Some(person) = person else {
        return Decision {
            verdict: Verdict::NotFound, detail: "Сведения о работнике в ФРМР не найдены".into()
        };
    };
    let active: Vec<&PersonCard> =
        person.cards.iter().filter(|c| card_in(c, organization) && active_on(c, date)).collect();
    if active.is_empty() {
        let detail = match person.cards.iter().filter(|c| card_in(c, organization)).max_by_key(|c| c.begin_date) {
            None => "В ФРМР нет записей о работе в этой организации".to_owned(),
            Some(c) => match (c.begin_date, c.end_date) {
                (Some(b), _) if b > date => format!("Принят на работу позже: с {b}"),
                (_, Some(e)) if e < date => format!("Уволен {e}"),
                _ => "Нет действующей на эту дату записи о работе в этой организации".to_owned(),
            },
        };
        return Decision { verdict: Verdict::NotEmployed, detail };
    }
    let matching: Vec<&PersonCard> = match position {
        None => active.clone(),
        Some(p) => active.iter().copied().filter(|c| same_position(c, p)).collect(),
    };
    if matching.is_empty() {
        let held: Vec<String> = active.iter().map(|c| describe(c)).collect();
        return Decision {
            verdict: Verdict::PositionMismatch,
            detail: format!(
                "Должность {} не совпадает с должностью в ФРМР: {}",
                position.unwrap_or_default(),
                held.join(", ")
            ),
        };
    }
    if let Some(present) = matching.iter().find(|c| !on_leave(c, date)) {
        return Decision {
            verdict: Verdict::Verified,
            detail: format!("Работает в организации, должность {}", describe(present)),
        };
    }
    let until = matching.iter().flat_map(|c| leave_on(c, date)).filter_map(|d| d.end_date).max();
    Decision {
        verdict: Verdict::OnLeave,
        detail: match until {
            Some(e) => format!("Временно отсутствует (по {e})"),
            None => "Временно отсутствует".into(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use egisz_contract::{Personal, Snils};

    const MO: &str = "1.2.643.5.1.13.13.12.2.42.2917";
    const OTHER: &str = "1.2.643.5.1.13.13.12.2.42.3001";

    fn d(s: &str) -> NaiveDate {
        s.parse().unwrap()
    }

    fn card(org: &str, pos: &str, begin: &str, end: Option<&str>) -> PersonCard {
        PersonCard {
            id: None,
            organization: Some(org.into()),
            organization_name: None,
            department: None,
            department_name: None,
            position_code: Some(pos.into()),
            position: None,
            position_type: Some(1),
            rate: None,
            begin_date: Some(d(begin)),
            end_date: end.map(d),
            derelictions: vec![],
        }
    }

    fn person(cards: Vec<PersonCard>) -> FrmrPerson {
        FrmrPerson {
            frmr_id: None,
            snils: Snils::parse("20311784514").unwrap(),
            last_name: Personal("Колпинская".into()),
            first_name: Personal("Светлана".into()),
            patronymic: None,
            birth_date: None,
            gender: Some(2),
            cards,
        }
    }

    fn verdict(p: Option<&FrmrPerson>, pos: Option<&str>, date: &str) -> Verdict {
        decide(p, &Oid::parse(MO).unwrap(), pos, d(date)).verdict
    }

    #[test]
    fn verified_and_position() {
        let p = person(vec![card(MO, "73", "2015-02-01", None)]);
        assert_eq!(verdict(Some(&p), Some("73"), "2023-08-18"), Verdict::Verified);
        assert_eq!(verdict(Some(&p), None, "2023-08-18"), Verdict::Verified);
        assert_eq!(verdict(Some(&p), Some("49"), "2023-08-18"), Verdict::PositionMismatch);
        assert_eq!(verdict(Some(&p), Some("73"), "2015-01-31"), Verdict::NotEmployed);
        assert_eq!(verdict(Some(&p), Some("73"), "2015-02-01"), Verdict::Verified);
    }

    #[test]
    fn dismissal_date_is_the_last_working_day() {
        let p = person(vec![card(MO, "73", "2010-01-01", Some("2022-12-31"))]);
        assert_eq!(verdict(Some(&p), None, "2022-12-31"), Verdict::Verified);
        assert_eq!(verdict(Some(&p), None, "2023-01-01"), Verdict::NotEmployed);
    }

    #[test]
    fn another_organisation_does_not_count() {
        let p = person(vec![card(OTHER, "73", "2010-01-01", None)]);
        assert_eq!(verdict(Some(&p), None, "2023-01-01"), Verdict::NotEmployed);
    }

    #[test]
    fn department_under_the_organisation_counts() {
        let mut c = card(OTHER, "73", "2010-01-01", None);
        c.organization = None;
        c.department = Some(format!("{MO}.0.4411"));
        assert_eq!(verdict(Some(&person(vec![c])), None, "2023-01-01"), Verdict::Verified);
    }

    #[test]
    fn position_change_is_dated() {
        let p = person(vec![card(MO, "49", "2010-01-01", Some("2024-05-31")), card(MO, "73", "2024-06-01", None)]);
        assert_eq!(verdict(Some(&p), Some("49"), "2024-05-31"), Verdict::Verified);
        assert_eq!(verdict(Some(&p), Some("49"), "2024-06-01"), Verdict::PositionMismatch);
        assert_eq!(verdict(Some(&p), Some("73"), "2024-06-01"), Verdict::Verified);
    }

    #[test]
    fn leave_is_reported_unless_another_card_is_present() {
        let mut c = card(MO, "73", "2010-01-01", None);
        c.derelictions.push(Dereliction {
            reason_id: Some("1".into()),
            begin_date: Some(d("2026-11-01")),
            end_date: Some(d("2027-02-28")),
        });
        let p = person(vec![c.clone()]);
        assert_eq!(verdict(Some(&p), Some("73"), "2026-12-01"), Verdict::OnLeave);
        assert_eq!(verdict(Some(&p), Some("73"), "2027-03-01"), Verdict::Verified);
        let both = person(vec![c, card(MO, "73", "2020-01-01", None)]);
        assert_eq!(verdict(Some(&both), Some("73"), "2026-12-01"), Verdict::Verified);
        let d = decide(Some(&p), &Oid::parse(MO).unwrap(), None, "2026-12-01".parse().unwrap());
        assert!(d.detail.contains("2027-02-28"), "{}", d.detail);
    }

    #[test]
    fn a_card_without_a_hire_date_proves_nothing() {
        let mut c = card(MO, "73", "2010-01-01", None);
        c.begin_date = None;
        assert_eq!(verdict(Some(&person(vec![c])), None, "2023-01-01"), Verdict::NotEmployed);
    }

    #[test]
    fn position_codes_compare_as_numbers() {
        let p = person(vec![card(MO, "73", "2015-02-01", None)]);
        assert_eq!(verdict(Some(&p), Some("073"), "2023-08-18"), Verdict::Verified);
        assert_eq!(verdict(Some(&p), Some("730"), "2023-08-18"), Verdict::PositionMismatch);
    }

    #[test]
    fn not_found() {
        assert_eq!(verdict(None, None, "2023-01-01"), Verdict::NotFound);
        assert_eq!(verdict(Some(&person(vec![])), None, "2023-01-01"), Verdict::NotEmployed);
    }

    #[test]
    fn mismatch_says_which_position_is_held() {
        let p = person(vec![card(MO, "73", "2015-02-01", None)]);
        let d = decide(Some(&p), &Oid::parse(MO).unwrap(), Some("49"), "2023-01-01".parse().unwrap());
        assert!(d.detail.contains("73"), "{}", d.detail);
    }
}
