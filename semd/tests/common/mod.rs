//! Shared fixtures: the sample kind-40 TMK protocol (a copy of `shared/samples/tmk-protocol-40.xml`)
//! and the expectations it satisfies.

use chrono::{DateTime, FixedOffset};
use egisz_contract::Oid;
use egisz_semd::Expectations;

pub const SAMPLE: &str = include_str!("../data/tmk-protocol-40.xml");
pub const MO: &str = "1.2.643.5.1.13.13.12.2.42.2917";
/// The author's and the legal authenticator's SNILS in the sample.
pub const DOCTOR_SNILS: &str = "20311784514";
pub const PATIENT_SNILS: &str = "15643219866";
/// A valid SNILS nobody in the sample has.
pub const OTHER_SNILS: &str = "17450296372";

pub fn expectations() -> Expectations {
    Expectations {
        kind: 40,
        cda_code: "36".to_owned(),
        organization: Oid::parse(MO).unwrap(),
        now: at("2023-08-20T12:00:00+07:00"),
        required_sections: vec!["RESCONS".to_owned()],
        template_ids: vec!["1.2.643.5.1.13.13.14.36.9.1".to_owned()],
        require_patient_snils: true,
        patient_local_id: true,
    }
}

pub fn at(rfc3339: &str) -> DateTime<FixedOffset> {
    DateTime::parse_from_rfc3339(rfc3339).unwrap()
}

/// The sample with the `nth` (1-based) occurrence of `from` replaced by `to`; panics when
/// there are fewer, so a variant never silently equals the sample.
pub fn replace_nth(text: &str, from: &str, to: &str, nth: usize) -> String {
    let (i, _) = text.match_indices(from).nth(nth - 1).unwrap_or_else(|| panic!("no occurrence {nth} of {from:?}"));
    format!("{}{}{}", &text[..i], to, &text[i + from.len()..])
}

/// The sample with the one and only occurrence of `from` replaced by `to`.
pub fn replace_one(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "{from:?} must occur exactly once");
    text.replacen(from, to, 1)
}

/// The sample with the block from `start` up to and including `end` removed.
pub fn remove_block(text: &str, start: &str, end: &str) -> String {
    let i = text.find(start).unwrap_or_else(|| panic!("no {start:?}"));
    let j = text[i..].find(end).unwrap_or_else(|| panic!("no {end:?}")) + i + end.len();
    format!("{}{}", &text[..i], &text[j..])
}

/// The block from `start` up to and including `end`.
pub fn block<'a>(text: &'a str, start: &str, end: &str) -> &'a str {
    let i = text.find(start).unwrap();
    let j = text[i..].find(end).unwrap() + i + end.len();
    &text[i..j]
}
