//! Rule H13 over the sample and its variants, against a small set of dictionaries.

#[expect(dead_code, reason = "this binary uses only part of the fixtures")]
mod common;

use std::collections::HashMap;

use common::*;
use egisz_semd::{CdaHeader, Dictionaries, Entry, check_dictionaries};

/// Allowed versions per OID, and complete copies `(oid, version) → code → name`.
struct Fixture {
    allowed: HashMap<&'static str, Vec<String>>,
    complete: HashMap<(&'static str, &'static str), HashMap<&'static str, &'static str>>,
}

impl Dictionaries for Fixture {
    fn allowed_versions(&self, oid: &str) -> Option<&[String]> {
        self.allowed.get(oid).map(Vec::as_slice)
    }

    fn entry(&self, oid: &str, version: &str, code: &str) -> Entry<'_> {
        match self.complete.iter().find(|((o, v), _)| *o == oid && *v == version) {
            None => Entry::Unknown,
            Some((_, codes)) => codes.get(code).map_or(Entry::Missing, |n| Entry::Name(n)),
        }
    }
}

fn fixture() -> Fixture {
    Fixture {
        allowed: HashMap::from([
            ("1.2.643.5.1.13.13.11.1522", vec!["4.65".to_owned(), "4.66".to_owned()]),
            ("1.2.643.5.1.13.13.99.2.197", vec!["1.32".to_owned()]),
        ]),
        complete: HashMap::from([
            (("1.2.643.5.1.13.13.11.1040", "2.1"), HashMap::from([("1", "Мужской"), ("2", "Женский")])),
            (
                ("1.2.643.5.1.13.13.99.2.197", "1.32"),
                HashMap::from([
                    ("DOCINFO", "Сведения о документе"),
                    ("COMPLNTS", "Жалобы"),
                    ("RESCONS", "Консультация"),
                ]),
            ),
        ]),
    }
}

fn check(text: &str) -> Vec<(String, String, &'static str)> {
    let header = CdaHeader::parse(text.as_bytes()).unwrap();
    check_dictionaries(&header, &fixture()).into_iter().map(|v| (v.path, v.message, v.remd_code)).collect()
}

#[test]
fn the_sample_passes_and_every_coded_element_is_seen() {
    assert_eq!(check(SAMPLE), vec![]);
    let header = CdaHeader::parse(SAMPLE.as_bytes()).unwrap();
    let paths: Vec<&str> = header.coded.iter().map(|c| c.path.as_str()).collect();
    assert_eq!(
        paths,
        [
            "/ClinicalDocument/code",
            "/ClinicalDocument/confidentialityCode",
            "/ClinicalDocument/recordTarget/patientRole/patient/administrativeGenderCode",
            "/ClinicalDocument/author/assignedAuthor/code",
            "/ClinicalDocument/legalAuthenticator/assignedEntity/code",
            "/ClinicalDocument/component/structuredBody/component/section/code",
            "/ClinicalDocument/component/structuredBody/component[2]/section/code",
            "/ClinicalDocument/component/structuredBody/component[3]/section/code",
        ]
    );
}

#[test]
fn a_version_the_kind_does_not_allow() {
    let v = check(&replace_one(SAMPLE, r#"codeSystemVersion="4.65""#, r#"codeSystemVersion="4.10""#));
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].0, "/ClinicalDocument/code/@codeSystemVersion");
    assert_eq!(v[0].2, "INVALID_DICTIONARY_VERSION");
    assert!(v[0].1.contains("4.65, 4.66"), "{}", v[0].1);
    let v = check(&replace_one(SAMPLE, r#" codeSystemVersion="4.65""#, ""));
    assert_eq!(v[0].2, "INVALID_DICTIONARY_VERSION");
}

#[test]
fn a_display_name_or_a_code_the_dictionary_does_not_have() {
    let v = check(&replace_one(SAMPLE, r#"displayName="Жалобы""#, r#"displayName="Жалобы пациента""#));
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(v[0].0, "/ClinicalDocument/component/structuredBody/component[2]/section/code/@displayName");
    assert_eq!(v[0].2, "INVALID_ELEMENT_VALUE_NAME");
    // Whitespace around and inside does not count.
    assert_eq!(check(&replace_one(SAMPLE, r#"displayName="Жалобы""#, r#"displayName=" Жалобы ""#)), vec![]);
    let v = check(&replace_one(
        SAMPLE,
        r#"code="2" codeSystem="1.2.643.5.1.13.13.11.1040""#,
        r#"code="9" codeSystem="1.2.643.5.1.13.13.11.1040""#,
    ));
    assert_eq!(v[0].2, "INVALID_ELEMENT_VALUE_CODE");
    assert!(v[0].0.ends_with("administrativeGenderCode/@code"));
}

#[test]
fn body_entries_count_and_other_namespaces_do_not() {
    let entry = r#"<text>Жалобы</text><entry><observation><code code="COMPLNTS" codeSystem="1.2.643.5.1.13.13.99.2.197" codeSystemVersion="1.20" displayName="Жалобы"/></observation></entry>
          <x:code xmlns:x="urn:other" code="1" codeSystem="1.2.643.5.1.13.13.99.2.197" codeSystemVersion="0.1"/>"#;
    let v = check(&replace_one(SAMPLE, "<title>Жалобы</title>", &format!("<title>Жалобы</title>{entry}")));
    assert_eq!(v.len(), 1, "{v:?}");
    assert_eq!(
        v[0].0,
        "/ClinicalDocument/component/structuredBody/component[2]/section/entry/observation/code/@codeSystemVersion"
    );
}
