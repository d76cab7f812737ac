//! Each signer the document names (every author, the legal authenticator) against what
//! FRMR answered about them, on the document's date, in the submitting organisation, in the
//! position the document gives — the checks REMD makes with FRMR, as violations of rule F1.
//! Pure: the answers come in.

use chrono::NaiveDate;
use egisz_contract::Oid;
use egisz_contract::frmr::FrmrPerson;
use egisz_semd::{Violation, rules};

use super::SignerToCheck;
use crate::staff::verdict::{self, Verdict};

/// What REMD would answer about `signer` given FRMR's record (`None`: FRMR has no such
/// person). Empty: REMD's FRMR checks pass.
pub fn judge(
    signer: &SignerToCheck,
    organization: &Oid,
    date: NaiveDate,
    person: Option<&FrmrPerson>,
) -> Vec<Violation> {
    let decision = verdict::decide(person, organization, Some(&signer.position), date);
    let path = &signer.path;
    let mut out = Vec::new();
    let code = match decision.verdict {
        Verdict::NotFound => Some(("PERSON_NOT_FOUND", format!("{path}/id[2]"))),
        Verdict::NotEmployed => Some(("PERSON_CARD_NOT_FOUND", format!("{path}/id[2]"))),
        Verdict::PositionMismatch => Some(("PERSON_POST_IN_FRMR_MISMATCH", format!("{path}/code/@code"))),
        // Absence on the date does not stop REMD; a malformed SNILS never reaches here.
        Verdict::Verified | Verdict::OnLeave | Verdict::InvalidSnils => None,
    };
    if let Some((code, at)) = code {
        out.push(Violation::new(rules::F1, at, format!("ФРМР на дату документа: {}", decision.detail)).prevents(code));
    }
    if let Some(person) = person
        && !verdict::same_names(
            person,
            signer.last_name.expose(),
            signer.first_name.expose(),
            signer.middle_name.as_ref().map(|m| m.expose().as_str()),
        )
    {
        out.push(
            Violation::new(rules::F1, format!("{path}/assignedPerson/name"), "ФИО не совпадает с ФИО в ФРМР")
                .prevents("VALUE_MISMATCH_METADATA_AND_FRMR"),
        );
    }
    out
}

#[cfg(test)]
mod tests {
    use egisz_contract::frmr::PersonCard;
    use egisz_contract::{Personal, Snils};

    use super::*;

    const MO: &str = "1.2.643.5.1.13.13.12.2.42.2917";

    fn signer(position: &str) -> SignerToCheck {
        SignerToCheck {
            snils: Snils::parse("20311784514").unwrap(),
            position: position.to_owned(),
            path: "/ClinicalDocument/author[1]/assignedAuthor".to_owned(),
            last_name: Personal("Колпинская".to_owned()),
            first_name: Personal("Светлана".to_owned()),
            middle_name: Some(Personal("Александровна".to_owned())),
        }
    }

    fn person(last: &str) -> FrmrPerson {
        FrmrPerson {
            frmr_id: None,
            snils: Snils::parse("20311784514").unwrap(),
            last_name: Personal(last.to_owned()),
            first_name: Personal("Светлана".to_owned()),
            patronymic: Some(Personal("Александровна".to_owned())),
            birth_date: None,
            gender: Some(2),
            cards: vec![PersonCard {
                id: None,
                organization: Some(MO.to_owned()),
                organization_name: None,
                department: None,
                department_name: None,
                position_code: Some("73".to_owned()),
                position: Some("врач-офтальмолог".to_owned()),
                position_type: Some(1),
                rate: None,
                begin_date: Some("2016-03-01".parse().unwrap()),
                end_date: None,
                derelictions: Vec::new(),
            }],
        }
    }

    fn codes(v: &[Violation]) -> Vec<(&str, &str)> {
        v.iter().map(|v| (v.rule, v.remd_code)).collect()
    }

    #[test]
    fn what_remd_would_say_of_each_signer() {
        let mo = Oid::parse(MO).unwrap();
        let day: NaiveDate = "2023-08-18".parse().unwrap();
        assert_eq!(judge(&signer("73"), &mo, day, Some(&person("Колпинская"))), vec![]);
        assert_eq!(judge(&signer("73"), &mo, day, Some(&person("КОЛПИНСКАЯ"))), vec![], "case does not matter");
        assert_eq!(codes(&judge(&signer("73"), &mo, day, None)), [("F1", "PERSON_NOT_FOUND")]);
        let v = judge(&signer("49"), &mo, day, Some(&person("Колпинская")));
        assert_eq!(codes(&v), [("F1", "PERSON_POST_IN_FRMR_MISMATCH")]);
        assert!(v[0].path.ends_with("/code/@code"));
        let before: NaiveDate = "2015-01-01".parse().unwrap();
        assert_eq!(
            codes(&judge(&signer("73"), &mo, before, Some(&person("Колпинская")))),
            [("F1", "PERSON_CARD_NOT_FOUND")]
        );
        let other = Oid::parse("1.2.643.5.1.13.13.12.2.42.3011").unwrap();
        assert_eq!(
            codes(&judge(&signer("73"), &other, day, Some(&person("Колпинская")))),
            [("F1", "PERSON_CARD_NOT_FOUND")]
        );
        let v = judge(&signer("73"), &mo, day, Some(&person("Иванова")));
        assert_eq!(codes(&v), [("F1", "VALUE_MISMATCH_METADATA_AND_FRMR")]);
        assert!(!v[0].message.contains("Иванова") && !v[0].message.contains("Колпинская"), "no names in messages");
    }
}
