//! The registerDocument data derived from the sample.

#[expect(dead_code, reason = "this binary uses only part of the fixtures")]
mod common;

use chrono::{FixedOffset, NaiveDate};
use common::*;
use egisz_contract::remd::{Coded, Patient, PersonalSignature, SignatureData};
use egisz_contract::{Oid, Personal, Snils};
use egisz_semd::{CdaHeader, register_request_parts};

fn krasnoyarsk() -> FixedOffset {
    FixedOffset::east_opt(7 * 3600).unwrap()
}

fn role() -> Coded {
    Coded { code: "1".to_owned(), version: "2.4".to_owned() }
}

#[test]
fn patient_signer_time_and_uid_from_the_sample() {
    let h = CdaHeader::parse(SAMPLE.as_bytes()).unwrap();
    let parts = register_request_parts(&h, FixedOffset::east_opt(0).unwrap()).unwrap();

    assert_eq!(parts.local_uid, "5b0a3c1e-2f6d-4b8e-9a71-0c3d5e7f9a21");
    // The document's own offset wins over the fallback zone.
    assert_eq!(parts.creation_date_time.to_rfc3339(), "2023-08-18T10:15:00+07:00");
    assert_eq!(
        parts.patient,
        Patient {
            local_id: "P-0048213".to_owned(),
            snils: Some(Snils::parse(PATIENT_SNILS).unwrap()),
            surname: Personal("Павлова".to_owned()),
            name: Personal("Елена".to_owned()),
            patr_name: Some(Personal("Сергеевна".to_owned())),
            birth_date: Personal(NaiveDate::from_ymd_opt(1997, 8, 5).unwrap()),
            gender: 2,
        }
    );
    assert_eq!(parts.department, None);

    // The author is also the legal authenticator: one signer.
    assert_eq!(parts.signers.len(), 1);
    let doctor = Snils::parse(DOCTOR_SNILS).unwrap();
    let s = parts.signer(&doctor, role()).unwrap();
    assert_eq!(s.local_id, "D-1187");
    assert_eq!(s.snils.as_str(), DOCTOR_SNILS);
    assert_eq!(s.last_name.expose(), "Колпинская");
    assert_eq!(s.first_name.expose(), "Светлана");
    assert_eq!(s.middle_name.as_ref().unwrap().expose(), "Александровна");
    assert_eq!(s.position, Coded { code: "73".to_owned(), version: "7.5".to_owned() });
    assert_eq!(s.role, role());
    assert_eq!((&s.speciality, &s.department), (&None, &None));
    let p = parts.signer_parts(&doctor).unwrap();
    assert!(p.author && p.legal_authenticator);
    assert!(parts.signer(&Snils::parse(OTHER_SNILS).unwrap(), role()).is_none());

    let signature = SignatureData { data: vec![1, 2, 3], checksum: 7 };
    let request = parts.clone().into_register_document(
        "7d4d3e5e-4bd0-4a55-9d4a-5f2f7e7b1c10".to_owned(),
        40,
        Oid::parse(MO).unwrap(),
        3_735_928_559,
        vec![PersonalSignature { signer: s.clone(), signature: signature.clone() }],
        None,
    );
    assert_eq!(request.local_uid, parts.local_uid);
    assert_eq!(request.creation_date_time, parts.creation_date_time);
    assert_eq!(request.patient, parts.patient);
    assert_eq!(request.personal_signatures[0].signer, s);
    assert_eq!((request.kind, request.checksum), (40, 3_735_928_559));
}

#[test]
fn day_precision_is_read_in_the_given_zone() {
    let xml = replace_one(SAMPLE, "202308181015+0700", "20230818");
    let parts = register_request_parts(&CdaHeader::parse(xml.as_bytes()).unwrap(), krasnoyarsk()).unwrap();
    assert_eq!(parts.creation_date_time.to_rfc3339(), "2023-08-18T00:00:00+07:00");
}

#[test]
fn a_department_is_derived_when_the_header_names_one() {
    let department = format!("{MO}.0.56789");
    let xml = replace_one(
        SAMPLE,
        &format!("<representedOrganization>\n        <id root=\"{MO}\"/>"),
        &format!("<representedOrganization>\n        <id root=\"{department}\"/>"),
    );
    let parts = register_request_parts(&CdaHeader::parse(xml.as_bytes()).unwrap(), krasnoyarsk()).unwrap();
    assert_eq!(parts.department.as_ref().map(Oid::as_str), Some(department.as_str()));
    assert_eq!(parts.signers[0].department.as_ref().map(Oid::as_str), Some(department.as_str()));
}

#[test]
fn a_patient_without_snils_and_patronymic() {
    let xml = replace_one(SAMPLE, "<id root=\"1.2.643.100.3\" extension=\"15643219866\"/>", "");
    let xml = replace_one(&xml, "<given>Сергеевна</given>", "");
    let parts = register_request_parts(&CdaHeader::parse(xml.as_bytes()).unwrap(), krasnoyarsk()).unwrap();
    assert_eq!(parts.patient.snils, None);
    assert_eq!(parts.patient.patr_name, None);
}

#[test]
fn missing_data_is_reported_not_invented() {
    let xml = replace_one(SAMPLE, "<birthTime value=\"19970805\"/>", "");
    let xml = replace_nth(&xml, "codeSystemVersion=\"7.5\"", "", 1);
    let err = register_request_parts(&CdaHeader::parse(xml.as_bytes()).unwrap(), krasnoyarsk()).unwrap_err();
    let found: Vec<_> = err.iter().map(|v| (v.rule, v.path.as_str())).collect();
    assert_eq!(
        found,
        [
            ("REQ", "/ClinicalDocument/recordTarget/patientRole/patient/birthTime/@value"),
            ("REQ", "/ClinicalDocument/author[1]/assignedAuthor/code"),
        ]
    );
}
