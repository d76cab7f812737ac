//! The roster: the people the FRMR emulator knows, in FRMR's own wire form.
//!
//! The file is a JSON array of `content` objects exactly as `person/full` returns them
//! (camelCase, see `shared/federal/FRMR.md`), so the emulator serves each one as it is.
//! Loading checks what the emulator and its users rely on (a unique 11-digit `snils`,
//! names, well-formed dates, cards with an MO OID) and nothing more: unknown fields are
//! kept and served.
//!
//! Error messages name a person by position in the file, never by SNILS or name.

use std::collections::HashMap;
use std::fmt;
use std::path::Path;

use chrono::NaiveDate;
use serde_json::{Map, Value};

/// The built-in roster, `data/frmr-roster.json`.
const BUILTIN: &str = include_str!("../../data/frmr-roster.json");

/// The people the FRMR emulator serves, parsed and checked.
///
/// `Debug` prints only the number of people: the roster is personal data (if synthetic).
#[derive(Clone)]
pub struct Roster {
    /// Each person in wire form, in file order.
    persons: Vec<Value>,
    /// SNILS (11 digits) → index in `persons`.
    by_snils: HashMap<String, usize>,
}

/// Why a roster file cannot be used. Messages never quote the data.
#[derive(Debug, thiserror::Error)]
pub enum RosterError {
    /// The file could not be read.
    #[error("cannot read the roster file: {0}")]
    Io(#[from] std::io::Error),
    /// The text is not JSON (the position is line and column; serde's syntax errors do not
    /// quote the input).
    #[error("the roster is not valid JSON: {0}")]
    Json(#[from] serde_json::Error),
    /// The JSON is not an array of objects.
    #[error("the roster must be a JSON array of person objects")]
    NotAnArray,
    /// One person is malformed. `index` counts from 0 in file order.
    #[error("roster person #{index}: {problem}")]
    Person {
        /// Position of the person in the array, from 0.
        index: usize,
        /// What is wrong, without the value itself.
        problem: String,
    },
    /// Two people share a SNILS.
    #[error("roster person #{index} has the same SNILS as person #{first}")]
    DuplicateSnils {
        /// The later of the two.
        index: usize,
        /// The earlier of the two.
        first: usize,
    },
}

impl Roster {
    /// Parses and checks a roster in wire form (a JSON array of person objects).
    pub fn from_json(text: &str) -> Result<Roster, RosterError> {
        let Value::Array(persons) = serde_json::from_str::<Value>(text)? else {
            return Err(RosterError::NotAnArray);
        };
        let mut by_snils = HashMap::with_capacity(persons.len());
        for (index, person) in persons.iter().enumerate() {
            let snils = check_person(person).map_err(|problem| RosterError::Person { index, problem })?;
            if let Some(&first) = by_snils.get(snils) {
                return Err(RosterError::DuplicateSnils { index, first });
            }
            by_snils.insert(snils.to_owned(), index);
        }
        Ok(Roster { persons, by_snils })
    }

    /// Adds `person` (wire form, checked like a file's), or replaces the one with its SNILS.
    pub fn upsert(&mut self, person: Value) -> Result<(), RosterError> {
        let index = self.persons.len();
        let snils = check_person(&person).map_err(|problem| RosterError::Person { index, problem })?.to_owned();
        match self.by_snils.get(&snils) {
            Some(&at) => self.persons[at] = person,
            None => {
                self.persons.push(person);
                self.by_snils.insert(snils, index);
            }
        }
        Ok(())
    }

    /// Reads, parses and checks a roster file.
    pub fn from_file(path: &Path) -> Result<Roster, RosterError> {
        Roster::from_json(&std::fs::read_to_string(path)?)
    }

    /// The built-in roster (`data/frmr-roster.json`; its notable people are described in
    /// `data/README.md`).
    ///
    /// # Panics
    ///
    /// Never in practice: the built-in file is checked by this crate's tests.
    pub fn builtin() -> Roster {
        Roster::from_json(BUILTIN).expect("the built-in FRMR roster is valid (checked by tests)")
    }

    /// Number of people.
    pub fn len(&self) -> usize {
        self.persons.len()
    }

    /// True when the roster has nobody (every lookup is "not found").
    pub fn is_empty(&self) -> bool {
        self.persons.is_empty()
    }

    /// The person with this SNILS (11 digits, no separators), in wire form: the
    /// `content` of a `person/full` answer.
    pub fn person(&self, snils: &str) -> Option<&Value> {
        self.by_snils.get(snils).map(|&i| &self.persons[i])
    }

    /// Every SNILS in the roster, in file order.
    pub fn snils(&self) -> impl Iterator<Item = &str> + '_ {
        self.persons.iter().filter_map(|p| p.get("snils").and_then(Value::as_str))
    }

    /// Every person in wire form, in file order.
    pub fn persons(&self) -> &[Value] {
        &self.persons
    }

    /// The medical organisations that appear on any card: `(MO OID, MO name)`, distinct,
    /// sorted by OID then name. A card without an `organization` name contributes an
    /// empty name.
    pub fn organizations(&self) -> Vec<(String, String)> {
        let mut out: Vec<(String, String)> = self
            .persons
            .iter()
            .flat_map(cards)
            .filter_map(|card| {
                let oid = card.get("oid")?.as_str()?;
                let name = card.get("organization").and_then(Value::as_str).unwrap_or_default();
                Some((oid.to_owned(), name.to_owned()))
            })
            .collect();
        out.sort();
        out.dedup();
        out
    }
}

impl fmt::Debug for Roster {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Roster").field("persons", &self.persons.len()).finish_non_exhaustive()
    }
}

/// The cards of a person (empty when `personCard` is absent or null).
fn cards(person: &Value) -> impl Iterator<Item = &Map<String, Value>> {
    person.get("personCard").and_then(Value::as_array).into_iter().flatten().filter_map(Value::as_object)
}

/// Checks one person; returns its SNILS.
fn check_person(person: &Value) -> Result<&str, String> {
    let Some(obj) = person.as_object() else {
        return Err("not a JSON object".to_owned());
    };
    let snils = obj.get("snils").and_then(Value::as_str).ok_or("`snils` is missing or not a string")?;
    if !is_snils_format(snils) {
        return Err("`snils` is not 11 digits".to_owned());
    }
    for field in ["lastName", "firstName"] {
        if !obj.get(field).is_some_and(Value::is_string) {
            return Err(format!("`{field}` is missing or not a string"));
        }
    }
    optional_string(obj, "patronymic")?;
    optional_string(obj, "oid")?;
    optional_date(obj, "birthDate")?;
    optional(obj, "gender", "1 or 2", |v| matches!(v.as_u64(), Some(1 | 2)))?;
    match obj.get("personCard") {
        None | Some(Value::Null) => {}
        Some(Value::Array(cards)) => {
            for (n, card) in cards.iter().enumerate() {
                check_card(card).map_err(|problem| format!("card #{n}: {problem}"))?;
            }
        }
        Some(_) => return Err("`personCard` is not an array".to_owned()),
    }
    Ok(snils)
}

fn check_card(card: &Value) -> Result<(), String> {
    let Some(obj) = card.as_object() else {
        return Err("not a JSON object".to_owned());
    };
    let mo = obj.get("oid").and_then(Value::as_str).ok_or("`oid` (the MO OID) is missing or not a string")?;
    if !is_oid(mo) {
        return Err("`oid` is not an OID".to_owned());
    }
    for field in
        ["id", "organization", "nrPmuDepartId", "nrPmuDepartName", "fedPositionId", "fedPosition", "postId", "postName"]
    {
        optional_string(obj, field)?;
    }
    optional(obj, "nrPmuDepartId", "an OID under the card's MO OID", |v| {
        v.as_str().is_some_and(|dept| is_oid(dept) && dept.starts_with(&format!("{mo}.")))
    })?;
    optional(obj, "positionTypeId", "1..4", |v| matches!(v.as_u64(), Some(1..=4)))?;
    optional(obj, "rate", "a number", Value::is_number)?;
    check_period(obj)?;
    match obj.get("temporaryDerelictions") {
        None | Some(Value::Null) => {}
        Some(Value::Array(items)) => {
            for (n, item) in items.iter().enumerate() {
                let Some(item) = item.as_object() else {
                    return Err(format!("temporaryDerelictions #{n} is not an object"));
                };
                check_period(item).map_err(|e| format!("temporaryDerelictions #{n}: {e}"))?;
            }
        }
        Some(_) => return Err("`temporaryDerelictions` is not an array".to_owned()),
    }
    Ok(())
}

/// `beginDate` and `endDate`, each optional, in order when both are there.
fn check_period(obj: &Map<String, Value>) -> Result<(), String> {
    let begin = optional_date(obj, "beginDate")?;
    let end = optional_date(obj, "endDate")?;
    match (begin, end) {
        (Some(begin), Some(end)) if end < begin => Err("`endDate` is before `beginDate`".to_owned()),
        _ => Ok(()),
    }
}

/// A field that may be absent or null, and otherwise must satisfy `ok`.
fn optional(obj: &Map<String, Value>, field: &str, expected: &str, ok: impl Fn(&Value) -> bool) -> Result<(), String> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(()),
        Some(value) if ok(value) => Ok(()),
        Some(_) => Err(format!("`{field}` is not {expected}")),
    }
}

fn optional_string(obj: &Map<String, Value>, field: &str) -> Result<(), String> {
    optional(obj, field, "a string", Value::is_string)
}

fn optional_date(obj: &Map<String, Value>, field: &str) -> Result<Option<NaiveDate>, String> {
    match obj.get(field) {
        None | Some(Value::Null) => Ok(None),
        Some(Value::String(s)) => NaiveDate::parse_from_str(s, "%Y-%m-%d")
            .map(Some)
            .map_err(|_| format!("`{field}` is not a YYYY-MM-DD date")),
        Some(_) => Err(format!("`{field}` is not a string")),
    }
}

/// 11 ASCII digits: the wire form of a SNILS. (The control number is FRMR's business at
/// registration; the emulator serves whatever the roster holds.)
pub(crate) fn is_snils_format(s: &str) -> bool {
    s.len() == 11 && s.bytes().all(|b| b.is_ascii_digit())
}

/// Dot-separated decimal arcs, at least two, none empty.
pub(crate) fn is_oid(s: &str) -> bool {
    s.split('.').count() >= 2 && s.split('.').all(|arc| !arc.is_empty() && arc.bytes().all(|b| b.is_ascii_digit()))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The SNILS control number of FRMR.md, written again here on purpose: the roster
    /// test must not trust the code it is meant to check the data for.
    fn snils_is_valid(snils: &str) -> bool {
        let digits: Vec<u32> = snils.chars().filter_map(|c| c.to_digit(10)).collect();
        if digits.len() != 11 || snils.len() != 11 {
            return false;
        }
        let number = digits[..9].iter().fold(0u32, |n, d| n * 10 + d);
        if number <= 1_001_998 {
            return true;
        }
        let sum: u32 = (0..9).map(|i| digits[i] * (9 - i as u32)).sum();
        let control = match sum {
            0..=99 => sum,
            100 | 101 => 0,
            _ => match sum % 101 {
                100 => 0,
                rest => rest,
            },
        };
        control == digits[9] * 10 + digits[10]
    }

    #[test]
    fn checksum_helper_agrees_with_frmr_md_vectors() {
        for valid in ["11223344595", "13719981600", "99999999901", "00101999800"] {
            assert!(snils_is_valid(valid), "{valid}");
        }
        for invalid in ["00100199900", "11223344596", "1122334459", "1122334459a"] {
            assert!(!snils_is_valid(invalid), "{invalid}");
        }
    }

    #[test]
    fn builtin_roster_invariants() {
        let roster = Roster::builtin();
        assert!(roster.len() >= 32, "{} people", roster.len());
        let organizations = roster.organizations();
        let distinct_oids: std::collections::BTreeSet<&str> =
            organizations.iter().map(|(oid, _)| oid.as_str()).collect();
        assert!(distinct_oids.len() >= 6, "{distinct_oids:?}");
        assert_eq!(distinct_oids.len(), organizations.len(), "one name per MO");
        for oid in &distinct_oids {
            assert!(oid.starts_with("1.2.643.5.1.13.13.12.2.42."), "{oid}");
        }
        let mut count = 0;
        for (index, snils) in roster.snils().enumerate() {
            assert!(snils_is_valid(snils), "person #{index} has an invalid SNILS");
            count += 1;
        }
        assert_eq!(count, roster.len());

        for person in roster.persons() {
            for card in cards(person) {
                let mo = card["oid"].as_str().unwrap();
                let dept = card["nrPmuDepartId"].as_str().unwrap();
                assert!(dept.starts_with(&format!("{mo}.0.")), "{dept}");
                assert!(card["fedPositionId"].is_string());
                assert!(card.contains_key("endDate"));
                assert!(card["temporaryDerelictions"].is_array());
            }
            assert!(person["personAccreditation"]["accreditationProcedures"].is_array());
            assert!(person["educationCert"].is_array());
        }
    }

    #[test]
    fn builtin_roster_required_people() {
        let roster = Roster::builtin();
        let mo = "1.2.643.5.1.13.13.12.2.42.2917";

        let p = roster.person("20311784514").expect("Колпинская is in the roster");
        assert_eq!(p["lastName"], "Колпинская");
        assert_eq!(p["firstName"], "Светлана");
        assert_eq!(p["patronymic"], "Александровна");
        assert_eq!(p["birthDate"], "1981-03-14");
        assert_eq!(p["gender"], 2);
        let own: Vec<_> = cards(p).collect();
        assert_eq!(own.len(), 1);
        let card = own[0];
        assert_eq!(card["oid"], mo);
        assert_eq!(card["organization"], "ГАУЗ «Кемеровская клиническая районная больница»");
        assert_eq!(card["nrPmuDepartId"], "1.2.643.5.1.13.13.12.2.42.2917.0.4411");
        assert_eq!(card["fedPositionId"], "73");
        assert_eq!(card["fedPosition"], "врач-офтальмолог");
        assert_eq!(card["beginDate"], "2015-02-01");
        assert!(card["endDate"].is_null());
        assert_eq!(card["positionTypeId"], 1);

        let p = roster.person("17450296372").expect("the dismissed doctor is in the roster");
        let in_mo: Vec<_> = cards(p).filter(|c| c["oid"] == mo).collect();
        assert!(!in_mo.is_empty());
        assert!(in_mo.iter().any(|c| c["endDate"] == "2022-12-31"));
        assert!(
            in_mo.iter().all(|c| c["endDate"].as_str().is_some_and(|end| end <= "2022-12-31")),
            "no card in 2917 is active after 2022-12-31"
        );
    }

    #[test]
    fn builtin_roster_covers_the_cases() {
        let roster = Roster::builtin();
        let all: Vec<Vec<&Map<String, Value>>> = roster.persons().iter().map(|p| cards(p).collect()).collect();
        let active = |c: &Map<String, Value>| c["endDate"].is_null();
        // Several cards in different MOs, and two active cards with different positions
        // in one MO.
        assert!(all.iter().any(|cs| {
            let mos: std::collections::BTreeSet<_> =
                cs.iter().filter(|c| active(c)).map(|c| c["oid"].as_str()).collect();
            mos.len() >= 2
        }));
        assert!(all.iter().any(|cs| cs.iter().enumerate().any(|(i, a)| {
            cs[i + 1..]
                .iter()
                .any(|b| active(a) && active(b) && a["oid"] == b["oid"] && a["fedPositionId"] != b["fedPositionId"])
        })));
        // Hired in 2026; on leave over the new year 2026/27; a past leave only; a position
        // change on 2024-06-01; dismissed from one MO and working in another; no cards.
        assert!(all.iter().flatten().any(|c| c["beginDate"] == "2026-06-01"));
        let leaves: Vec<&Value> =
            all.iter().flatten().flat_map(|c| c["temporaryDerelictions"].as_array().into_iter().flatten()).collect();
        assert!(
            leaves
                .iter()
                .any(|d| d["beginDate"].as_str() <= Some("2026-11-01") && d["endDate"].as_str() >= Some("2027-02-28"))
        );
        assert!(leaves.iter().any(|d| d["endDate"].as_str() < Some("2026-01-01")));
        assert!(all.iter().any(|cs| {
            cs.iter().any(|a| a["endDate"] == "2024-05-31") && cs.iter().any(|b| b["beginDate"] == "2024-06-01")
        }));
        assert!(all.iter().any(|cs| {
            cs.iter().any(|a| !active(a))
                && cs.iter().any(|b| active(b))
                && cs
                    .iter()
                    .filter(|c| active(c))
                    .all(|b| cs.iter().filter(|a| !active(a)).all(|a| a["oid"] != b["oid"]))
        }));
        assert!(all.iter().any(Vec::is_empty));
    }

    /// FRMR.md's verdict rules, written here only to check that `data/README.md` tells the
    /// truth about the built-in roster.
    fn verdict(roster: &Roster, snils: &str, mo: u32, position: Option<&str>, date: &str) -> &'static str {
        let Some(person) = roster.person(snils) else {
            return "not_found";
        };
        let mo = format!("1.2.643.5.1.13.13.12.2.42.{mo}");
        let covers = |v: &Map<String, Value>| {
            v["beginDate"].as_str().is_some_and(|b| b <= date) && v["endDate"].as_str().is_none_or(|e| e >= date)
        };
        let active: Vec<_> = cards(person).filter(|c| c["oid"] == mo.as_str() && covers(c)).collect();
        if active.is_empty() {
            return "not_employed";
        }
        let matching: Vec<_> =
            active.into_iter().filter(|c| position.is_none_or(|p| c["fedPositionId"] == p)).collect();
        if matching.is_empty() {
            return "position_mismatch";
        }
        let on_leave = |c: &&Map<String, Value>| {
            c["temporaryDerelictions"].as_array().into_iter().flatten().filter_map(Value::as_object).any(covers)
        };
        if matching.iter().all(on_leave) { "on_leave" } else { "verified" }
    }

    #[test]
    fn data_readme_verdicts_hold() {
        let roster = Roster::builtin();
        let today = "2026-11-25";
        #[rustfmt::skip]
        let cases: &[(&str, u32, Option<&str>, &str, &str)] = &[
            ("20311784514", 2917, Some("73"), "2023-08-18", "verified"),
            ("20311784514", 2917, None, "2015-02-01", "verified"),
            ("20311784514", 2917, Some("49"), "2023-08-18", "position_mismatch"),
            ("20311784514", 2917, Some("73"), "2015-01-31", "not_employed"),
            ("20311784514", 3011, Some("73"), today, "not_employed"),
            ("17450296372", 2917, Some("49"), "2022-12-31", "verified"),
            ("17450296372", 2917, Some("49"), "2023-01-01", "not_employed"),
            ("34786502816", 2917, Some("89"), "2024-01-10", "verified"),
            ("34786502816", 3158, Some("89"), today, "verified"),
            ("34786502816", 2917, Some("89"), "2019-02-28", "not_employed"),
            ("34786502816", 2917, Some("73"), today, "position_mismatch"),
            ("16287259094", 3011, Some("49"), today, "verified"),
            ("16287259094", 3011, Some("95"), "2021-01-01", "verified"),
            ("16287259094", 3011, Some("95"), "2019-12-31", "position_mismatch"),
            ("16287259094", 3011, Some("28"), today, "position_mismatch"),
            ("69798284208", 3240, Some("48"), "2026-05-31", "not_employed"),
            ("69798284208", 3240, Some("48"), "2026-06-01", "verified"),
            ("48752710018", 2917, Some("14"), "2026-12-15", "on_leave"),
            ("48752710018", 2917, Some("14"), "2026-10-31", "verified"),
            ("48752710018", 2917, Some("14"), "2027-03-01", "verified"),
            ("13464424955", 2917, Some("48"), "2024-07-15", "on_leave"),
            ("13464424955", 2917, Some("48"), "2024-07-29", "verified"),
            ("13464424955", 2917, Some("48"), today, "verified"),
            ("79733976185", 3011, Some("48"), "2024-05-31", "verified"),
            ("79733976185", 3011, Some("48"), "2024-06-01", "position_mismatch"),
            ("79733976185", 3011, Some("28"), "2024-06-01", "verified"),
            ("79733976185", 3011, Some("28"), "2024-05-31", "position_mismatch"),
            ("18022635845", 3415, Some("63"), "2016-08-31", "verified"),
            ("18022635845", 3415, None, "2016-09-01", "not_employed"),
            ("18022635845", 3527, Some("43"), today, "verified"),
            ("18022635845", 3527, Some("43"), "2016-09-11", "not_employed"),
            ("13196850575", 2917, None, today, "not_employed"),
            ("14896963948", 3158, Some("28"), today, "verified"),
            ("17016796269", 2917, Some("208"), "2025-03-15", "on_leave"),
            ("17016796269", 2917, Some("208"), today, "verified"),
            ("11223344595", 2917, None, today, "not_found"),
            ("15643219866", 2917, None, today, "not_found"),
        ];
        for &(snils, mo, position, date, expected) in cases {
            assert_eq!(
                verdict(&roster, snils, mo, position, date),
                expected,
                "{snils} in {mo}, position {position:?}, on {date}"
            );
        }
        let fedorova = roster.person("48752710018").unwrap();
        assert!(fedorova["lastName"].as_str().unwrap().contains('ё'));
        assert!(roster.person("14896963948").unwrap()["patronymic"].is_null());
    }

    #[test]
    fn malformed_rosters_are_refused_without_quoting_data() {
        assert!(matches!(Roster::from_json("{}"), Err(RosterError::NotAnArray)));
        assert!(matches!(Roster::from_json("[1"), Err(RosterError::Json(_))));
        let err = Roster::from_json(r#"[{"snils":"2031178451","lastName":"Х","firstName":"Y"}]"#).unwrap_err();
        assert!(matches!(err, RosterError::Person { index: 0, .. }), "{err}");
        assert!(!err.to_string().contains("2031178451"));
        let err = Roster::from_json(
            r#"[{"snils":"20311784514","lastName":"Х","firstName":"Y"},
                {"snils":"20311784514","lastName":"Х","firstName":"Y"}]"#,
        )
        .unwrap_err();
        assert!(matches!(err, RosterError::DuplicateSnils { index: 1, first: 0 }));
        let err = Roster::from_json(
            r#"[{"snils":"20311784514","lastName":"Х","firstName":"Y",
                 "personCard":[{"oid":"1.2.3","beginDate":"2020-13-01"}]}]"#,
        )
        .unwrap_err();
        assert!(err.to_string().contains("beginDate"), "{err}");
    }

    #[test]
    fn small_roster_round_trips_and_hides_itself_in_debug() {
        let roster = Roster::from_json(
            r#"[{"snils":"20311784514","lastName":"Колпинская","firstName":"Светлана","extra":{"kept":true},
                 "personCard":[{"oid":"1.2.643.5.1.13.13.12.2.42.1","organization":"МО"}]},
                {"snils":"17450296372","lastName":"Тарасов","firstName":"Игорь","personCard":null}]"#,
        )
        .unwrap();
        assert_eq!(roster.len(), 2);
        assert_eq!(roster.person("20311784514").unwrap()["extra"]["kept"], true);
        assert!(roster.person("11223344595").is_none());
        assert_eq!(roster.organizations(), vec![("1.2.643.5.1.13.13.12.2.42.1".to_owned(), "МО".to_owned())]);
        let debug = format!("{roster:?}");
        assert!(!debug.contains("203") && !debug.contains("Колпинская"), "{debug}");
    }
}
