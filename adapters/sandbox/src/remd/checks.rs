//! What the emulator checks once it has the file: the request against the document's
//! header, the kind, and every signer against the FRMR roster on the creation date. Pure
//! functions; the messages name fields and signers by position, never by value.

use chrono::{DateTime, FixedOffset, NaiveDate, TimeDelta};
use egisz_contract::Snils;
use egisz_contract::remd::{RegisterDocument, RemdMessage, Signer};
use egisz_semd::CdaHeader;
use serde_json::Value;

use super::codes::{self, message};
use crate::{Frmo, Roster};

/// `ClinicalDocument/code/@codeSystem`: the document types of NSI 1.2.643.5.1.13.13.11.1522.
const DOCUMENT_TYPES: &str = "1.2.643.5.1.13.13.11.1522";

/// How far in the future a creation time may lie (clocks differ) before it is refused.
const CLOCK_SKEW: TimeDelta = TimeDelta::minutes(5);

/// The registers REMD checks a document against: FRMR (the signers) and FRMO (the
/// organisations and departments).
#[derive(Debug, Clone, Copy)]
pub struct Registers<'a> {
    pub roster: &'a Roster,
    pub frmo: &'a Frmo,
}

/// Every problem of `request` with its document (`header`) and the registers, at `now`.
/// Empty: the document may be registered.
pub(crate) fn check(
    request: &RegisterDocument,
    header: &CdaHeader,
    registers: Registers<'_>,
    now: DateTime<FixedOffset>,
) -> Vec<RemdMessage> {
    let roster = registers.roster;
    let mut out = Vec::new();
    let created = request.creation_date_time;
    let creation_date = created.date_naive();

    match codes::kind(request.kind) {
        None => out.push(message(codes::OBJECT_NOT_FOUND, Some("вид документа, НСИ 1.2.643.5.1.13.13.11.1520"))),
        Some(kind) => {
            let code = header.code.as_ref();
            let matches = code.is_some_and(|c| {
                c.code.as_deref().map(str::trim) == Some(kind.cda_code)
                    && c.code_system.as_deref().map(str::trim) == Some(DOCUMENT_TYPES)
            });
            if !matches {
                out.push(message(
                    codes::INVALID_CONTENT,
                    Some("ClinicalDocument/code не соответствует виду документа"),
                ));
            }
            if !kind.valid_on(creation_date) {
                out.push(message(codes::NO_DOCUMENT_KIND_ON_DATE, None));
            }
        }
    }
    if created > now + CLOCK_SKEW {
        out.push(message(codes::WRONG_CREATION_DATE, None));
    }

    let custodian = header
        .custodians
        .first()
        .and_then(|c| c.organization.as_ref())
        .and_then(|o| o.id.as_ref())
        .and_then(|id| id.root.as_deref())
        .map(str::trim);
    if custodian != Some(request.organization.as_str()) {
        out.push(message(
            codes::ATTRIBUTE_MISMATCH,
            Some("organization ≠ custodian/…/representedCustodianOrganization/id/@root"),
        ));
    }
    if header.local_uid() != Some(request.local_uid.trim()) {
        out.push(message(codes::ATTRIBUTE_MISMATCH, Some("localUid ≠ ClinicalDocument/id/@extension")));
    }
    let same_time = match &header.effective_time {
        Some(Ok(time)) if time.offset.is_some() => time.to_datetime(*created.offset()) == created,
        Some(Ok(time)) => time.date() == creation_date,
        _ => false,
    };
    if !same_time {
        out.push(message(codes::ATTRIBUTE_MISMATCH, Some("creationDateTime ≠ ClinicalDocument/effectiveTime")));
    }

    check_signers(request, header, roster, creation_date, &mut out);
    check_organizations(request, header, registers.frmo, creation_date, &mut out);
    super::content::check_header(request, header, roster, &mut out);
    out
}

/// Every organisation and department the request and the document name — the request's
/// organisation and department, the custodian, each author's and the legal authenticator's
/// `representedOrganization` — in FRMO on `date`: `ORG_NOT_FOUND_IN_FRMO`,
/// `NO_ORG_ON_DATE`, `NO_DEPARTMENT`, once per OID, the place named by position.
fn check_organizations(
    request: &RegisterDocument,
    header: &CdaHeader,
    frmo: &Frmo,
    date: NaiveDate,
    out: &mut Vec<RemdMessage>,
) {
    let root = |o: Option<&egisz_semd::header::Organization>| {
        o.and_then(|o| o.id.as_ref()).and_then(|id| id.root.as_deref()).map(|r| r.trim().to_owned())
    };
    let mut places: Vec<(String, Option<String>)> = vec![
        ("organization".to_owned(), Some(request.organization.as_str().to_owned())),
        ("department".to_owned(), request.department.as_ref().map(|d| d.as_str().to_owned())),
        ("custodian".to_owned(), root(header.custodians.first().and_then(|c| c.organization.as_ref()))),
    ];
    for (n, author) in header.authors.iter().enumerate() {
        let org = author.assigned.as_ref().and_then(|p| p.organization.as_ref());
        places.push((format!("автор №{}", n + 1), root(org)));
    }
    let legal = header.legal_authenticator().and_then(|l| l.assigned.as_ref()).and_then(|p| p.organization.as_ref());
    places.push(("legalAuthenticator".to_owned(), root(legal)));
    let mut judged = std::collections::HashSet::new();
    for (place, oid) in places {
        let Some(parsed) = oid.and_then(|o| egisz_contract::Oid::parse(&o).ok()) else { continue };
        let organization = match parsed.organization_of_department() {
            Some(mo) => {
                if judged.insert(parsed.as_str().to_owned())
                    && let Some(code) = frmo.department_verdict(parsed.as_str(), date)
                {
                    out.push(message(code, Some(&place)));
                }
                mo
            }
            None => parsed,
        };
        if judged.insert(organization.as_str().to_owned())
            && let Some(code) = frmo.organization_verdict(organization.as_str(), date)
        {
            out.push(message(code, Some(&place)));
        }
    }
}

/// Everything the emulator checks of `content` for `request` once pulled: the header
/// against the request and the roster ([`check`]), and the signatures. Public for tests
/// that compare the gateway's verdict with the emulator's on the same document.
pub fn judge(
    request: &RegisterDocument,
    content: &[u8],
    registers: Registers<'_>,
    trust: &egisz_verifier::gost::GostVerifier,
    now: DateTime<FixedOffset>,
) -> Vec<RemdMessage> {
    match CdaHeader::parse(content) {
        Ok(header) => judge_parsed(request, content, &header, registers, trust, now),
        Err(_) => vec![message(codes::INVALID_DOC_CONTENT_TYPE, None)],
    }
}

/// The kind's rule package over the document, as REMD validates it: an XSD error, or a
/// failed schematron assert ("Ошибка валидации Schematron: <message> Путь: <location>"),
/// is `VALIDATION_ERROR`; a schematron run that stops on an XPath error is
/// `XML_VALIDATION_ERROR`. A package that could not run is no verdict (REMD's own
/// validator failing would answer `XML_VALIDATOR_ERROR`, a retry; the emulator lets the
/// document pass). **[model: REMD's wording of an XSD error is not public]**
pub fn validate_package(packages: &egisz_packages::Catalog, kind: u32, document: &[u8]) -> Vec<RemdMessage> {
    let layers = egisz_packages::Layers { xsd: true, schematron: true, schematron_after_xsd_errors: false };
    let Some(found) = packages.validate(kind, document, layers) else { return Vec::new() };
    let text = |prefix: &str, v: &egisz_semd::Violation| RemdMessage {
        code: v.remd_code.to_owned(),
        message: egisz_contract::Personal(format!("{prefix}: {} Путь: {}", v.message, v.path)),
    };
    let mut out: Vec<RemdMessage> = found.xsd.iter().map(|v| text("Ошибка валидации XSD", v)).collect();
    for v in &found.schematron {
        if v.remd_code == codes::XML_VALIDATION_ERROR {
            out.push(message(codes::XML_VALIDATION_ERROR, None));
        } else {
            out.push(text("Ошибка валидации Schematron", v));
        }
    }
    out
}

/// [`judge`] of a file whose header is parsed already.
pub(crate) fn judge_parsed(
    request: &RegisterDocument,
    content: &[u8],
    header: &CdaHeader,
    registers: Registers<'_>,
    trust: &egisz_verifier::gost::GostVerifier,
    now: DateTime<FixedOffset>,
) -> Vec<RemdMessage> {
    let mut out = check(request, header, registers, now);
    super::content::check_signatures(request, content, trust, &mut out);
    out
}

/// The signers: present, named in the document, the legal authenticator among them, and
/// each one in FRMR with an active card of the right position in the organisation.
fn check_signers(
    request: &RegisterDocument,
    header: &CdaHeader,
    roster: &Roster,
    date: NaiveDate,
    out: &mut Vec<RemdMessage>,
) {
    if request.personal_signatures.is_empty() {
        out.push(message(codes::NO_SIGNATURE, None));
        return;
    }
    let authors: Vec<&Snils> =
        header.authors.iter().filter_map(|a| a.assigned.as_ref()).filter_map(|p| p.snils()).collect();
    let legal = header.legal_authenticator().and_then(|l| l.assigned.as_ref()).and_then(|p| p.snils());
    for (n, item) in request.personal_signatures.iter().enumerate() {
        let signer = &item.signer;
        let subject = format!("подписант №{}", n + 1);
        if !authors.contains(&&signer.snils) && legal != Some(&signer.snils) {
            out.push(message(codes::INVALID_DOCTOR_SNILS, Some(&subject)));
        }
        for code in frmr_verdict(roster, request.organization.as_str(), date, signer) {
            out.push(message(code, Some(&subject)));
        }
    }
    if let Some(legal) = legal
        && !request.personal_signatures.iter().any(|s| &s.signer.snils == legal)
    {
        out.push(message(codes::LEGAL_AUTHENTICATOR_NOT_FOUND, Some("legalAuthenticator")));
    }
}

/// What FRMR says of a signer in MO `mo` on `date`: nothing (fine), `PERSON_NOT_FOUND`,
/// `PERSON_CARD_NOT_FOUND` (no card in that MO covering the date), or
/// `PERSON_POST_IN_FRMR_MISMATCH` (active cards there, none with the signer's position);
/// plus `VALUE_MISMATCH_METADATA_AND_FRMR` when the names differ from FRMR's.
pub(crate) fn frmr_verdict(roster: &Roster, mo: &str, date: NaiveDate, signer: &Signer) -> Vec<&'static str> {
    let Some(person) = roster.person(signer.snils.as_str()) else {
        return vec![codes::PERSON_NOT_FOUND];
    };
    let mut out = Vec::new();
    let active: Vec<&Value> = person
        .get("personCard")
        .and_then(Value::as_array)
        .into_iter()
        .flatten()
        .filter(|card| card.get("oid").and_then(Value::as_str) == Some(mo) && covers(card, date))
        .collect();
    if active.is_empty() {
        out.push(codes::PERSON_CARD_NOT_FOUND);
    } else if !active
        .iter()
        .any(|card| card.get("fedPositionId").and_then(Value::as_str) == Some(signer.position.code.trim()))
    {
        out.push(codes::PERSON_POST_IN_FRMR_MISMATCH);
    }
    let same = |field: &str, value: Option<&str>| {
        normalize(person.get(field).and_then(Value::as_str).unwrap_or_default()) == normalize(value.unwrap_or_default())
    };
    let names_match = same("lastName", Some(signer.last_name.expose()))
        && same("firstName", Some(signer.first_name.expose()))
        && same("patronymic", signer.middle_name.as_ref().map(|m| m.expose().as_str()));
    if !names_match {
        out.push(codes::VALUE_MISMATCH_METADATA_AND_FRMR);
    }
    out
}

/// A card (or any object with `beginDate`/`endDate`) covers `date`: begun on or before it,
/// not ended before it. FRMR.md's rule; a missing `beginDate` never covers.
fn covers(card: &Value, date: NaiveDate) -> bool {
    let day = |field: &str| {
        card.get(field).and_then(Value::as_str).and_then(|d| NaiveDate::parse_from_str(d, "%Y-%m-%d").ok())
    };
    day("beginDate").is_some_and(|begin| begin <= date) && day("endDate").is_none_or(|end| end >= date)
}

/// Names compared as FRMR's search does: case-insensitive, `ё` = `е`, outer spaces ignored.
fn normalize(name: &str) -> String {
    name.trim().to_lowercase().replace('ё', "е")
}

#[cfg(test)]
mod tests {
    use egisz_contract::Personal;
    use egisz_contract::remd::Coded;

    use super::*;

    fn signer(snils: &str, last: &str, first: &str, middle: Option<&str>, position: &str) -> Signer {
        Signer {
            local_id: "D-1".to_owned(),
            role: Coded { code: "1".to_owned(), version: "2.4".to_owned() },
            last_name: Personal(last.to_owned()),
            first_name: Personal(first.to_owned()),
            middle_name: middle.map(|m| Personal(m.to_owned())),
            snils: Snils::parse(snils).unwrap(),
            position: Coded { code: position.to_owned(), version: "7.5".to_owned() },
            speciality: None,
            department: None,
        }
    }

    fn day(s: &str) -> NaiveDate {
        NaiveDate::parse_from_str(s, "%Y-%m-%d").unwrap()
    }

    const MO_2917: &str = "1.2.643.5.1.13.13.12.2.42.2917";
    const MO_3011: &str = "1.2.643.5.1.13.13.12.2.42.3011";

    #[test]
    fn roster_verdicts() {
        let roster = Roster::builtin();
        let kolpinskaya = |position| signer("20311784514", "Колпинская", "Светлана", Some("Александровна"), position);
        let none: Vec<&str> = Vec::new();
        assert_eq!(frmr_verdict(&roster, MO_2917, day("2023-08-18"), &kolpinskaya("73")), none);
        assert_eq!(
            frmr_verdict(&roster, MO_2917, day("2023-08-18"), &kolpinskaya("49")),
            [codes::PERSON_POST_IN_FRMR_MISMATCH]
        );
        assert_eq!(
            frmr_verdict(&roster, MO_2917, day("2015-01-31"), &kolpinskaya("73")),
            [codes::PERSON_CARD_NOT_FOUND]
        );
        assert_eq!(
            frmr_verdict(&roster, MO_3011, day("2023-08-18"), &kolpinskaya("73")),
            [codes::PERSON_CARD_NOT_FOUND]
        );

        let tarasov = signer("17450296372", "Тарасов", "Игорь", Some("Викторович"), "49");
        assert_eq!(frmr_verdict(&roster, MO_2917, day("2022-12-31"), &tarasov), none);
        assert_eq!(frmr_verdict(&roster, MO_2917, day("2023-01-01"), &tarasov), [codes::PERSON_CARD_NOT_FOUND]);

        let absent = signer("11223344595", "Иванов", "Иван", None, "73");
        assert_eq!(frmr_verdict(&roster, MO_2917, day("2023-08-18"), &absent), [codes::PERSON_NOT_FOUND]);

        // Names: case and ё do not matter; another name does; a missing patronymic matches null.
        let fedorova = signer("48752710018", "ФЕДОРОВА", "алёна", Some("Петровна"), "14");
        assert_eq!(frmr_verdict(&roster, MO_2917, day("2026-10-31"), &fedorova), none);
        let renamed = signer("20311784514", "Колпинская", "Светлана", Some("Петровна"), "73");
        assert_eq!(
            frmr_verdict(&roster, MO_2917, day("2023-08-18"), &renamed),
            [codes::VALUE_MISMATCH_METADATA_AND_FRMR]
        );
        let kim = signer("14896963948", "Ким", "Виктория", None, "28");
        assert_eq!(frmr_verdict(&roster, "1.2.643.5.1.13.13.12.2.42.3158", day("2025-01-01"), &kim), none);
        // Two active cards in one MO: either position will do.
        let belousova = |position| signer("16287259094", "Белоусова", "Марина", Some("Игоревна"), position);
        assert_eq!(frmr_verdict(&roster, MO_3011, day("2021-01-01"), &belousova("95")), none);
        assert_eq!(frmr_verdict(&roster, MO_3011, day("2021-01-01"), &belousova("49")), none);
        assert_eq!(
            frmr_verdict(&roster, MO_3011, day("2019-12-31"), &belousova("95")),
            [codes::PERSON_POST_IN_FRMR_MISMATCH]
        );
    }
}
