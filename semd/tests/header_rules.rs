//! The sample passes every rule; each variant fails exactly the rules it breaks.

mod common;

use common::*;
use egisz_semd::header::SnilsField;
use egisz_semd::time::TimePrecision;
use egisz_semd::{CdaHeader, Violation, check, register_request_parts};

fn violations(xml: &str) -> Vec<Violation> {
    match CdaHeader::parse(xml.as_bytes()) {
        Ok(h) => check(&h, &expectations()),
        Err(v) => v,
    }
}

/// The (rule, path) pairs, sorted, for exact comparison.
fn found(xml: &str) -> Vec<(&'static str, String)> {
    let mut v: Vec<_> = violations(xml).into_iter().map(|v| (v.rule, v.path)).collect();
    v.sort();
    v
}

fn expect(xml: &str, wanted: &[(&'static str, &str)]) {
    let mut wanted: Vec<(&'static str, String)> = wanted.iter().map(|(r, p)| (*r, (*p).to_owned())).collect();
    wanted.sort();
    assert_eq!(found(xml), wanted, "\n{:#?}", violations(xml));
}

const CD: &str = "/ClinicalDocument";

#[test]
fn the_sample_parses_and_passes_every_rule() {
    let h = CdaHeader::parse(SAMPLE.as_bytes()).unwrap();
    assert_eq!(check(&h, &expectations()), vec![]);

    assert_eq!(h.local_uid(), Some("5b0a3c1e-2f6d-4b8e-9a71-0c3d5e7f9a21"));
    assert_eq!(h.id.as_ref().unwrap().root.as_deref(), Some("1.2.643.5.1.13.13.12.2.42.2917.100.1.1.51"));
    let code = h.code.as_ref().unwrap();
    assert_eq!(code.code.as_deref(), Some("36"));
    assert_eq!(code.code_system.as_deref(), Some("1.2.643.5.1.13.13.11.1522"));
    assert_eq!(code.code_system_version.as_deref(), Some("4.65"));
    assert_eq!(code.display_name.as_deref(), Some("Протокол телемедицинской консультации"));
    let t = h.effective_time.unwrap().unwrap();
    assert_eq!(t.precision, TimePrecision::Minute);
    assert_eq!(t.to_datetime(*at("2000-01-01T00:00:00Z").offset()), at("2023-08-18T10:15:00+07:00"));
    assert_eq!(h.confidentiality.as_ref().unwrap().code.as_deref(), Some("N"));
    assert_eq!(h.set_id.as_ref().unwrap().extension.as_deref(), Some("tmk-2023-08-18-002"));
    assert_eq!(h.version_number.as_deref(), Some("1"));
    assert_eq!(h.template_ids, ["1.2.643.5.1.13.13.14.36.9.1"]);

    let p = h.patient.as_ref().unwrap();
    assert_eq!(p.local_id.as_ref().unwrap().extension.as_deref(), Some("P-0048213"));
    assert_eq!(p.snils_id.as_ref().unwrap().snils.valid().unwrap().as_str(), PATIENT_SNILS);
    let name = p.name().unwrap();
    assert_eq!((name.family(), name.name(), name.patronymic()), (Some("Павлова"), Some("Елена"), Some("Сергеевна")));
    assert_eq!(p.gender.as_ref().unwrap().code.as_deref(), Some("2"));
    assert_eq!(p.birth_time.as_ref().unwrap().as_ref().unwrap().expose().date().to_string(), "1997-08-05");
    assert_eq!(p.provider_organization.as_ref().unwrap().id.as_ref().unwrap().root.as_deref(), Some(MO));

    assert_eq!(h.authors.len(), 1);
    let a = h.authors[0].assigned.as_ref().unwrap();
    assert_eq!(h.authors[0].time.as_ref().unwrap().null_flavor.as_deref(), Some("NI"));
    assert_eq!(a.local_id.as_ref().unwrap().extension.as_deref(), Some("D-1187"));
    assert_eq!(a.snils().unwrap().as_str(), DOCTOR_SNILS);
    let pos = a.position.as_ref().unwrap();
    assert_eq!((pos.code.as_deref(), pos.code_system_version.as_deref()), (Some("73"), Some("7.5")));
    assert_eq!(pos.display_name.as_deref(), Some("врач-офтальмолог"));
    assert_eq!(a.name().unwrap().family(), Some("Колпинская"));
    assert_eq!(a.organization.as_ref().unwrap().id.as_ref().unwrap().root.as_deref(), Some(MO));

    let c = h.custodians[0].organization.as_ref().unwrap();
    assert_eq!(c.id.as_ref().unwrap().root.as_deref(), Some(MO));
    assert_eq!(c.name.as_deref(), Some("ГАУЗ «Кемеровская клиническая районная больница»"));
    assert!(c.has_address);

    let la = h.legal_authenticator().unwrap();
    assert_eq!(la.signature_code.as_ref().unwrap().null_flavor.as_deref(), Some("NI"));
    assert_eq!(la.assigned.as_ref().unwrap().snils().unwrap().as_str(), DOCTOR_SNILS);

    assert!(h.structured_body);
    let codes: Vec<_> = h.sections.iter().map(|s| s.code.as_deref().unwrap()).collect();
    assert_eq!(codes, ["DOCINFO", "COMPLNTS", "RESCONS"]);
}

#[test]
fn debug_output_carries_no_personal_data() {
    let h = CdaHeader::parse(SAMPLE.as_bytes()).unwrap();
    let debug = format!("{h:?} {h:#?}");
    for secret in [
        "Павлова",
        "Елена",
        "Сергеевна",
        "Колпинская",
        "Светлана",
        "Александровна",
        DOCTOR_SNILS,
        PATIENT_SNILS,
        "1997",
    ] {
        assert!(!debug.contains(secret), "Debug shows {secret}");
    }
    let parts = register_request_parts(&h, *at("2023-01-01T00:00:00+07:00").offset()).unwrap();
    let debug = format!("{parts:?}");
    for secret in ["Павлова", "Колпинская", DOCTOR_SNILS, PATIENT_SNILS, "1997"] {
        assert!(!debug.contains(secret), "Debug shows {secret}");
    }
}

#[test]
fn messages_never_quote_names_or_snils() {
    let xml = replace_one(SAMPLE, PATIENT_SNILS, "15643219867");
    let xml = replace_nth(&xml, DOCTOR_SNILS, "20311784515", 1);
    let xml = replace_one(&xml, "<given>Елена</given>", "<given></given>");
    for v in violations(&xml) {
        for secret in ["15643219867", "20311784515", "Павлова", "Колпинская"] {
            assert!(!v.message.contains(secret) && !v.path.contains(secret), "{v}");
        }
    }
}

// --- H1 and XML: the parser refuses ---

#[test]
fn dtd_and_entity_declarations_are_refused() {
    let xml = replace_one(
        SAMPLE,
        "<ClinicalDocument ",
        "<!DOCTYPE ClinicalDocument [<!ENTITY who \"x\">]>\n<ClinicalDocument ",
    );
    expect(&xml, &[("H1", "/")]);
    let xml =
        replace_one(SAMPLE, "<ClinicalDocument ", "<!DOCTYPE ClinicalDocument SYSTEM \"cda.dtd\">\n<ClinicalDocument ");
    expect(&xml, &[("H1", "/")]);
}

#[test]
fn root_must_be_clinical_document_in_the_hl7_namespace() {
    expect(&replace_one(SAMPLE, "xmlns=\"urn:hl7-org:v3\"", "xmlns=\"urn:hl7-org:v2\""), &[("H1", "/")]);
    expect(&replace_one(SAMPLE, " xmlns=\"urn:hl7-org:v3\"", ""), &[("H1", "/")]);
    let renamed = SAMPLE.replace("<ClinicalDocument ", "<Document ").replace("</ClinicalDocument>", "</Document>");
    expect(&renamed, &[("H1", "/")]);
    expect("", &[("H1", "/")]);
}

#[test]
fn only_utf8_each_way_named() {
    let message = |bytes: &[u8]| {
        let v = CdaHeader::parse(bytes).unwrap_err();
        assert_eq!((v.len(), v[0].rule, v[0].path.as_str(), v[0].remd_code), (1, "ENC", "/", "XML_VALIDATION_ERROR"));
        v[0].message.clone()
    };
    let declared = replace_one(SAMPLE, "encoding=\"UTF-8\"", "encoding=\"windows-1251\"");
    assert!(message(declared.as_bytes()).contains("«windows-1251»"));
    let mut bytes = SAMPLE.as_bytes().to_vec();
    let at = SAMPLE.find("Павлова").unwrap();
    bytes[at] = 0xCF; // a windows-1251 byte in the middle of UTF-8
    bytes[at + 1] = b'a';
    assert!(message(&bytes).contains(&format!("позиция {at}")));
    // A byte-order mark: REMD reads UTF-8 without one.
    let with_bom = [&[0xEF, 0xBB, 0xBF][..], SAMPLE.as_bytes()].concat();
    assert!(message(&with_bom).contains("BOM"));
    let utf16: Vec<u8> = [0xFF, 0xFE].into_iter().chain(SAMPLE.encode_utf16().flat_map(u16::to_le_bytes)).collect();
    assert!(message(&utf16).contains("UTF-16"));
    let utf16_no_bom: Vec<u8> = SAMPLE.encode_utf16().flat_map(u16::to_be_bytes).collect();
    assert!(message(&utf16_no_bom).contains("UTF-16"));
    // Declared UTF-8 in any case, or not declared at all, is fine.
    let lower = replace_one(SAMPLE, "encoding=\"UTF-8\"", "encoding='utf-8'");
    assert!(check(&CdaHeader::parse(lower.as_bytes()).unwrap(), &expectations()).is_empty());
}

#[test]
fn malformed_xml_and_limits() {
    expect(&replace_one(SAMPLE, "</recordTarget>", "</recordTargets>"), &[("XML", "/ClinicalDocument/recordTarget")]);
    let v = violations(&replace_one(SAMPLE, "Павлова", "Павлова&nbsp;"));
    assert_eq!(v.len(), 1);
    assert_eq!(v[0].rule, "XML");
    let truncated = &SAMPLE[..SAMPLE.find("<legalAuthenticator>").unwrap()];
    assert_eq!(violations(truncated)[0].rule, "XML");
    let deep = replace_one(SAMPLE, "<title>Жалобы</title>", &format!("{}{}", "<a>".repeat(200), "</a>".repeat(200)));
    assert_eq!(violations(&deep)[0].rule, "XML");
    let second_root = format!("{SAMPLE}<ClinicalDocument xmlns=\"urn:hl7-org:v3\"/>");
    assert_eq!(violations(&second_root)[0].rule, "XML");
    let huge = vec![b' '; egisz_semd::header::MAX_DOCUMENT_BYTES + 1];
    assert_eq!(CdaHeader::parse(&huge).unwrap_err()[0].rule, "XML");
}

#[test]
fn namespaces_not_prefixes_decide() {
    // Every element under a prefix bound to the HL7 namespace: the same header.
    let prefixed = SAMPLE
        .replace("xmlns=\"urn:hl7-org:v3\"", "xmlns:h=\"urn:hl7-org:v3\"")
        .replace("</", "\u{1}")
        .replace('<', "<h:")
        .replace("<h:?xml", "<?xml")
        .replace('\u{1}', "</h:");
    assert_eq!(CdaHeader::parse(prefixed.as_bytes()).unwrap(), CdaHeader::parse(SAMPLE.as_bytes()).unwrap());

    // Same local names in another namespace are not HL7 elements, whatever their prefix.
    let decoys = replace_one(
        SAMPLE,
        "<realmCode code=\"RU\"/>",
        "<x:realmCode xmlns:x=\"urn:other\" code=\"EN\"/><realmCode code=\"RU\"/>\
         <identity:id root=\"1.2.3\" extension=\"x\"/>",
    );
    let decoys = replace_one(
        &decoys,
        "<id root=\"1.2.643.100.3\" extension=\"15643219866\"/>",
        "<identity:IdentityDoc><id root=\"9.9\" extension=\"1\"/></identity:IdentityDoc><id root=\"1.2.643.100.3\" extension=\"15643219866\"/>",
    );
    assert_eq!(violations(&decoys), vec![]);
    // An attribute in another namespace is not the HL7 attribute.
    expect(
        &replace_one(SAMPLE, "<realmCode code=\"RU\"/>", "<realmCode xmlns:x=\"urn:other\" x:code=\"RU\"/>"),
        &[("H2", "/ClinicalDocument/realmCode/@code")],
    );
}

#[test]
fn entities_and_character_references_are_decoded() {
    let xml = replace_one(SAMPLE, "<family>Павлова</family>", "<family>&#1055;авлова&amp;Co</family>");
    let h = CdaHeader::parse(xml.as_bytes()).unwrap();
    assert_eq!(h.patient.unwrap().name().unwrap().family(), Some("Павлова&Co"));
}

// --- H2–H12, one at a time ---

#[test]
fn h2_realm_type_and_language() {
    expect(
        &replace_one(SAMPLE, "<realmCode code=\"RU\"/>", "<realmCode code=\"EN\"/>"),
        &[("H2", "/ClinicalDocument/realmCode/@code")],
    );
    expect(&replace_one(SAMPLE, "POCD_MT000040", "POCD_HD000040"), &[("H2", "/ClinicalDocument/typeId/@extension")]);
    expect(
        &replace_one(SAMPLE, "<languageCode code=\"ru-RU\"/>", ""),
        &[("H2", "/ClinicalDocument/languageCode/@code")],
    );
}

#[test]
fn h3_document_id() {
    let root = "1.2.643.5.1.13.13.12.2.42.2917.100.1.1.51";
    expect(
        &replace_one(SAMPLE, root, "1.2.643.5.1.13.13.12.2.42.2917.100.1.51"),
        &[("H3", "/ClinicalDocument/id/@root")],
    );
    // Another organisation's OID is another MIS.
    expect(
        &replace_one(SAMPLE, root, "1.2.643.5.1.13.13.12.2.42.9999.100.1.1.51"),
        &[("H3", "/ClinicalDocument/id/@root")],
    );
    expect(
        &replace_one(SAMPLE, " extension=\"5b0a3c1e-2f6d-4b8e-9a71-0c3d5e7f9a21\"", ""),
        &[("H3", "/ClinicalDocument/id/@extension")],
    );
    expect(
        &replace_one(SAMPLE, "extension=\"5b0a3c1e-2f6d-4b8e-9a71-0c3d5e7f9a21\"", "extension=\" \""),
        &[("H3", "/ClinicalDocument/id/@extension")],
    );
}

#[test]
fn h4_document_code_for_the_kind() {
    let v = violations(&replace_one(SAMPLE, "<code code=\"36\"", "<code code=\"5\""));
    assert_eq!(v.len(), 1);
    assert_eq!((v[0].rule, v[0].path.as_str()), ("H4", "/ClinicalDocument/code/@code"));
    assert!(v[0].message.contains("40") && v[0].message.contains("36"), "{}", v[0].message);
    expect(
        &replace_one(SAMPLE, "codeSystemVersion=\"4.65\" ", ""),
        &[("H4", "/ClinicalDocument/code/@codeSystemVersion")],
    );
}

#[test]
fn h5_effective_time() {
    let future = replace_one(SAMPLE, "202308181015+0700", "202308211015+0700");
    expect(&future, &[("H5", "/ClinicalDocument/effectiveTime/@value")]);
    // A few minutes of clock difference is not "the future".
    let near = replace_one(SAMPLE, "202308181015+0700", "202308201203+0700");
    expect(&near, &[]);
    expect(
        &replace_one(SAMPLE, "202308181015+0700", "202308181015"),
        &[("H5", "/ClinicalDocument/effectiveTime/@value")],
    );
    // Day precision needs no zone; month precision is not enough.
    expect(&replace_one(SAMPLE, "202308181015+0700", "20230818"), &[]);
    expect(&replace_one(SAMPLE, "202308181015+0700", "202308"), &[("H5", "/ClinicalDocument/effectiveTime/@value")]);
    expect(
        &replace_one(SAMPLE, "202308181015+0700", "2023-08-18"),
        &[("H5", "/ClinicalDocument/effectiveTime/@value")],
    );
    expect(
        &replace_one(SAMPLE, "<effectiveTime value=\"202308181015+0700\"/>", ""),
        &[("H5", "/ClinicalDocument/effectiveTime")],
    );
}

#[test]
fn h6_confidentiality() {
    expect(
        &replace_one(SAMPLE, "1.2.643.5.1.13.13.99.2.285", "1.2.643.5.1.13.13.11.1116"),
        &[("H6", "/ClinicalDocument/confidentialityCode/@codeSystem")],
    );
}

#[test]
fn h7_set_id_and_version() {
    expect(&replace_one(SAMPLE, "2917.100.1.1.50", "2917.100.1.1.51"), &[("H7", "/ClinicalDocument/setId/@root")]);
    expect(
        &replace_one(SAMPLE, "<versionNumber value=\"1\"/>", "<versionNumber/>"),
        &[("H7", "/ClinicalDocument/versionNumber/@value")],
    );
}

#[test]
fn h8_patient() {
    let patient = "/ClinicalDocument/recordTarget/patientRole";
    expect(&replace_one(SAMPLE, PATIENT_SNILS, "15643219867"), &[("H8", &format!("{patient}/id[2]/@extension"))]);
    expect(&replace_one(SAMPLE, PATIENT_SNILS, "1564321986"), &[("H8", &format!("{patient}/id[2]/@extension"))]);
    // Valid, but written with separators: REMD compares the 11 digits as text.
    expect(&replace_one(SAMPLE, PATIENT_SNILS, "156-432-198 66"), &[("H8", &format!("{patient}/id[2]/@extension"))]);
    expect(&replace_one(SAMPLE, "2917.100.1.1.10", "2917.100.1.1.70"), &[("H8", &format!("{patient}/id[1]/@root"))]);
    expect(&replace_one(SAMPLE, "extension=\"P-0048213\"", ""), &[("H8", &format!("{patient}/id[1]/@extension"))]);
    // A SNILS under another root.
    expect(
        &replace_one(
            SAMPLE,
            "<id root=\"1.2.643.100.3\" extension=\"15643219866\"/>",
            "<id root=\"1.2.643.100.1\" extension=\"15643219866\"/>",
        ),
        &[("H8", &format!("{patient}/id[2]/@root"))],
    );
    // No SNILS: wrong only when the kind requires it.
    let no_snils = replace_one(SAMPLE, "<id root=\"1.2.643.100.3\" extension=\"15643219866\"/>", "");
    expect(&no_snils, &[("H8", &format!("{patient}/id[2]"))]);
    let h = CdaHeader::parse(no_snils.as_bytes()).unwrap();
    let lenient = egisz_semd::Expectations { require_patient_snils: false, ..expectations() };
    assert_eq!(check(&h, &lenient), vec![]);
    let rt = block(SAMPLE, "<recordTarget>", "</recordTarget>");
    expect(&replace_one(SAMPLE, rt, &format!("{rt}{rt}")), &[("H8", "/ClinicalDocument/recordTarget")]);
}

#[test]
fn req_patient_fields_the_request_needs() {
    let patient = "/ClinicalDocument/recordTarget/patientRole/patient";
    expect(
        &replace_one(SAMPLE, "<given>Елена</given>", "<given></given>"),
        &[("REQ", &format!("{patient}/name/given[1]"))],
    );
    expect(
        &replace_one(SAMPLE, "<administrativeGenderCode code=\"2\"", "<administrativeGenderCode code=\"3\""),
        &[("REQ", &format!("{patient}/administrativeGenderCode/@code"))],
    );
    expect(&replace_one(SAMPLE, "19970805", "1997"), &[("REQ", &format!("{patient}/birthTime/@value"))]);
}

#[test]
fn h9_authors() {
    let author = "/ClinicalDocument/author[1]/assignedAuthor";
    // The SNILS and the MIS id occur in the author and again in the legal authenticator.
    expect(&replace_nth(SAMPLE, DOCTOR_SNILS, "20311784515", 1), &[("H9", &format!("{author}/id[2]/@extension"))]);
    expect(&replace_nth(SAMPLE, "2917.100.1.1.70", "2917.100.1.2.71", 1), &[("H9", &format!("{author}/id[1]/@root"))]);
    expect(
        &replace_one(SAMPLE, "<author>\n    <time nullFlavor=\"NI\"/>", "<author>\n    <time value=\"20230818\"/>"),
        &[("H9", "/ClinicalDocument/author[1]/time/@nullFlavor")],
    );
    expect(
        &replace_nth(SAMPLE, "codeSystem=\"1.2.643.5.1.13.13.11.1002\"", "codeSystem=\"1.2.643.5.1.13.13.11.1066\"", 1),
        &[("H9", &format!("{author}/code/@codeSystem"))],
    );
    expect(&remove_block(SAMPLE, "<author>", "</author>"), &[("H9", "/ClinicalDocument/author")]);
    // Every author is checked: a second author with a broken SNILS is author[2].
    let a = block(SAMPLE, "<author>", "</author>");
    let second = a.replace(DOCTOR_SNILS, OTHER_SNILS).replace("D-1187", "D-2001").replace(OTHER_SNILS, "17450296373");
    expect(
        &replace_one(SAMPLE, a, &format!("{a}\n  {second}")),
        &[("H9", "/ClinicalDocument/author[2]/assignedAuthor/id[2]/@extension")],
    );
}

#[test]
fn h10_custodian() {
    let c = block(SAMPLE, "<custodian>", "</custodian>");
    expect(&replace_one(SAMPLE, c, &format!("{c}\n  {c}")), &[("H10", "/ClinicalDocument/custodian")]);
    let path = "/ClinicalDocument/custodian/assignedCustodian/representedCustodianOrganization";
    let other = c.replace(MO, "1.2.643.5.1.13.13.12.2.42.9999");
    expect(&replace_one(SAMPLE, c, &other), &[("H10", &format!("{path}/id/@root"))]);
    let no_addr = remove_block(c, "<addr>", "</addr>");
    expect(&replace_one(SAMPLE, c, &no_addr), &[("H10", &format!("{path}/addr"))]);
    expect(&remove_block(SAMPLE, "<custodian>", "</custodian>"), &[("H10", "/ClinicalDocument/custodian")]);
}

#[test]
fn h11_legal_authenticator() {
    expect(
        &remove_block(SAMPLE, "<legalAuthenticator>", "</legalAuthenticator>"),
        &[("H11", "/ClinicalDocument/legalAuthenticator")],
    );
    let entity = "/ClinicalDocument/legalAuthenticator/assignedEntity";
    expect(&replace_nth(SAMPLE, DOCTOR_SNILS, "20311784515", 2), &[("H11", &format!("{entity}/id[2]/@extension"))]);
    expect(&replace_nth(SAMPLE, "2917.100.1.1.70", "2917.100.1.1.10", 2), &[("H11", &format!("{entity}/id[1]/@root"))]);
    expect(
        &replace_one(SAMPLE, "<signatureCode nullFlavor=\"NI\"/>", "<signatureCode code=\"S\"/>"),
        &[("H11", "/ClinicalDocument/legalAuthenticator/signatureCode/@nullFlavor")],
    );
    let la = block(SAMPLE, "<legalAuthenticator>", "</legalAuthenticator>");
    expect(&replace_one(SAMPLE, la, &format!("{la}{la}")), &[("H11", "/ClinicalDocument/legalAuthenticator")]);
}

#[test]
fn h11_legal_authenticator_need_not_be_an_author() {
    // "the same id pattern and SNILS as an author" is read as the same shape: a head of
    // department may give the document legal force without having written it.
    let xml = replace_nth(SAMPLE, DOCTOR_SNILS, OTHER_SNILS, 2);
    expect(&xml, &[]);
    let h = CdaHeader::parse(xml.as_bytes()).unwrap();
    let parts = register_request_parts(&h, *at("2023-01-01T00:00:00+07:00").offset()).unwrap();
    assert_eq!(parts.signers.len(), 2);
    assert!(parts.signers[0].author && !parts.signers[0].legal_authenticator);
    assert!(!parts.signers[1].author && parts.signers[1].legal_authenticator);
    assert_eq!(parts.signers[1].snils.as_str(), OTHER_SNILS);
}

#[test]
fn h12_body_sections() {
    expect(
        &replace_one(SAMPLE, "code=\"RESCONS\"", "code=\"RECOMEND\""),
        &[("H12", "/ClinicalDocument/component/structuredBody/component/section")],
    );
    let h = CdaHeader::parse(replace_one(SAMPLE, "code=\"RESCONS\"", "code=\"RECOMEND\"").as_bytes()).unwrap();
    let not_tmk = egisz_semd::Expectations { required_sections: Vec::new(), ..expectations() };
    assert_eq!(check(&h, &not_tmk), vec![]);
    expect(
        &replace_one(SAMPLE, "code=\"DOCINFO\"", "code=\"INFO\""),
        &[("H12", "/ClinicalDocument/component/structuredBody/component/section")],
    );
    expect(
        &replace_nth(
            SAMPLE,
            "codeSystem=\"1.2.643.5.1.13.13.99.2.197\"",
            "codeSystem=\"1.2.643.5.1.13.13.99.2.198\"",
            2,
        ),
        &[("H12", "/ClinicalDocument/component/structuredBody/component[2]/section/code/@codeSystem")],
    );
    let body = block(SAMPLE, "<structuredBody>", "</structuredBody>");
    expect(&replace_one(SAMPLE, body, "<nonXMLBody/>"), &[("H12", "/ClinicalDocument/component/structuredBody")]);
    // Nested sections do not count as top-level ones.
    let nested = replace_one(
        SAMPLE,
        "<title>Жалобы</title>",
        "<title>Жалобы</title><component><section><code code=\"OTHER\" codeSystem=\"9.9\"/></section></component>",
    );
    expect(&nested, &[]);
}

#[test]
fn several_violations_are_all_reported() {
    let xml = replace_one(SAMPLE, "<realmCode code=\"RU\"/>", "<realmCode code=\"EN\"/>");
    let xml = replace_one(&xml, "<code code=\"36\"", "<code code=\"5\"");
    let xml = replace_one(&xml, "202308181015+0700", "202608181015+0700");
    let xml = replace_one(&xml, PATIENT_SNILS, "15643219867");
    let xml = replace_nth(&xml, "2917.100.1.1.70", "2917.100.1.2.71", 1);
    let c = block(SAMPLE, "<custodian>", "</custodian>");
    let xml = replace_one(&xml, c, &format!("{c}{c}"));
    let xml = replace_one(&xml, "code=\"RESCONS\"", "code=\"RECOMEND\"");
    expect(
        &xml,
        &[
            ("H2", "/ClinicalDocument/realmCode/@code"),
            ("H4", "/ClinicalDocument/code/@code"),
            ("H5", "/ClinicalDocument/effectiveTime/@value"),
            ("H8", "/ClinicalDocument/recordTarget/patientRole/id[2]/@extension"),
            ("H9", "/ClinicalDocument/author[1]/assignedAuthor/id[1]/@root"),
            ("H10", "/ClinicalDocument/custodian"),
            ("H12", "/ClinicalDocument/component/structuredBody/component/section"),
        ],
    );
    // In document order.
    let rules: Vec<_> = violations(&xml).iter().map(|v| v.rule).collect();
    assert_eq!(rules, ["H2", "H4", "H5", "H8", "H9", "H10", "H12"]);
}

#[test]
fn invalid_snils_is_kept_as_an_error_not_a_value() {
    let h = CdaHeader::parse(replace_one(SAMPLE, PATIENT_SNILS, "15643219867").as_bytes()).unwrap();
    assert_eq!(h.patient.unwrap().snils_id.unwrap().snils, SnilsField::Invalid(egisz_contract::SnilsError::Checksum));
}

#[test]
fn a_header_that_passes_always_derives() {
    let variants = [
        SAMPLE.to_owned(),
        replace_one(SAMPLE, "<given>Елена</given>", "<given></given>"),
        replace_one(SAMPLE, "19970805", "1997"),
        replace_nth(SAMPLE, DOCTOR_SNILS, "20311784515", 2),
        replace_nth(SAMPLE, "codeSystemVersion=\"7.5\"", "codeSystemVersion=\"\"", 1),
        replace_one(SAMPLE, "extension=\"P-0048213\"", ""),
        replace_nth(SAMPLE, "<family>Колпинская</family>", "", 2),
        replace_one(SAMPLE, "<effectiveTime value=\"202308181015+0700\"/>", ""),
        replace_one(SAMPLE, "<id root=\"1.2.643.100.3\" extension=\"15643219866\"/>", ""),
    ];
    let zone = *at("2023-01-01T00:00:00+07:00").offset();
    let lenient = egisz_semd::Expectations { require_patient_snils: false, ..expectations() };
    for xml in &variants {
        let h = CdaHeader::parse(xml.as_bytes()).unwrap();
        let checked = check(&h, &lenient);
        let derived = register_request_parts(&h, zone);
        if checked.is_empty() {
            assert!(derived.is_ok(), "{:?}", derived.err());
        }
        if let Err(violations) = derived {
            assert!(!checked.is_empty());
            // Derivation names the same rule and place as the check.
            for v in violations {
                assert!(
                    checked.iter().any(|c| c.rule == v.rule && c.path.starts_with(&v.path)),
                    "{v} not in {checked:#?}"
                );
            }
        }
    }
}

#[test]
fn effective_time_paths_are_xpath_like() {
    for v in violations(&replace_one(SAMPLE, "202308181015+0700", "202608181015")) {
        assert!(v.path.starts_with(CD));
    }
}
