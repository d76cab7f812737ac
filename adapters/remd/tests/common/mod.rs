//! Fixtures shared by the test crates: a registration with every field, one with every
//! optional field left out, and a search.

use chrono::{DateTime, NaiveDate};
use egisz_contract::remd::{Coded, Patient, PersonalSignature, RegisterDocument, SearchQuery, SignatureData, Signer};
use egisz_contract::{Oid, Personal, Snils};

pub const MO: &str = "1.2.643.5.1.13.13.12.2.42.1234";
pub const CLIENT_ENTITY_ID: &str = "1f0e6d3a-0000-4000-8000-000000000042";
pub const MESSAGE_ID: &str = "7d4d3e5e-4bd0-4a55-9d4a-5f2f7e7b1c10";
pub const PATIENT_SNILS: &str = "20311784514";
pub const SIGNER_SNILS: &str = "17450296372";
pub const CHIEF_SNILS: &str = "15643219866";

fn coded(code: &str, version: &str) -> Coded {
    Coded { code: code.to_owned(), version: version.to_owned() }
}

fn p(s: &str) -> Personal<String> {
    Personal(s.to_owned())
}

/// A TMK protocol with every optional field set, two signers and an organisation
/// signature; the patient's local id has characters that must be escaped.
pub fn register_document() -> RegisterDocument {
    RegisterDocument {
        message_id: MESSAGE_ID.to_owned(),
        kind: 40,
        organization: Oid::parse(MO).unwrap(),
        department: Some(Oid::parse(&format!("{MO}.0.56789")).unwrap()),
        local_uid: "TMK-2023-000042".to_owned(),
        creation_date_time: DateTime::parse_from_rfc3339("2023-08-18T10:15:00+07:00").unwrap(),
        patient: Patient {
            local_id: "P<42>&\"7\"".to_owned(),
            snils: Some(Snils::parse(PATIENT_SNILS).unwrap()),
            surname: p("Колпинская"),
            name: p("Анна"),
            patr_name: Some(p("Сергеевна")),
            birth_date: Personal(NaiveDate::from_ymd_opt(1997, 8, 5).unwrap()),
            gender: 2,
        },
        checksum: 3_735_928_559,
        personal_signatures: vec![
            PersonalSignature {
                signer: Signer {
                    local_id: "DOC-17".to_owned(),
                    role: coded("1", "2.4"),
                    last_name: p("Д'Артаньян"),
                    first_name: p("Шарль"),
                    middle_name: Some(p("Огюстович")),
                    snils: Snils::parse(SIGNER_SNILS).unwrap(),
                    position: coded("73", "7.5"),
                    speciality: Some(coded("28", "6.1")),
                    department: Some(Oid::parse(&format!("{MO}.0.56789")).unwrap()),
                },
                signature: SignatureData { data: b"CMS signature of the author".to_vec(), checksum: 1 },
            },
            PersonalSignature {
                signer: Signer {
                    local_id: "DOC-1".to_owned(),
                    role: coded("3", "2.4"),
                    last_name: p("Главный"),
                    first_name: p("Врач"),
                    middle_name: None,
                    snils: Snils::parse(CHIEF_SNILS).unwrap(),
                    position: coded("1", "7.5"),
                    speciality: None,
                    department: None,
                },
                signature: SignatureData { data: vec![0, 1, 2, 253, 254, 255], checksum: 4_294_967_295 },
            },
        ],
        org_signature: Some(SignatureData { data: b"CMS signature of the MO".to_vec(), checksum: 123_456 }),
    }
}

/// The same registration with every optional field left out.
pub fn register_document_minimal() -> RegisterDocument {
    let mut r = register_document();
    r.department = None;
    r.patient.snils = None;
    r.patient.patr_name = None;
    r.personal_signatures.truncate(1);
    let signer = &mut r.personal_signatures[0].signer;
    signer.middle_name = None;
    signer.speciality = None;
    signer.department = None;
    r.org_signature = None;
    r
}

/// A search with every filter.
pub fn search_query() -> SearchQuery {
    SearchQuery {
        organization: Oid::parse(MO).unwrap(),
        kind: Some(40),
        register_date_begin: Some(DateTime::parse_from_rfc3339("2023-08-18T00:00:00+03:00").unwrap()),
        register_date_end: Some(DateTime::parse_from_rfc3339("2023-08-19T00:00:00Z").unwrap()),
        patient_snils: Some(Snils::parse(PATIENT_SNILS).unwrap()),
    }
}
