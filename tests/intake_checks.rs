//! What intake catches before REMD: the negative corpus (a variant of the sample for every
//! REMD code the gateway claims to catch, with the rule, the path and the code), the same
//! variants judged by the REMD emulator, the signer check's policies (`block`, `warn`, FRMR
//! down), the external signature verifier against its emulator, and `validate`.

mod common;

use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::TimeZone;
use common::*;
use egisz_contract::remd::{Coded, PersonalSignature, RegisterDocument, SignatureData};
use egisz_contract::{Oid, Snils};
use egisz_gateway::auth::Role;
use egisz_gateway::validation::policy::{KindPolicies, Policy};
use egisz_gateway::validation::settings::VerifierChoice;
use egisz_gost::test_pki::{TestCa, TestSigner};
use egisz_semd::test_pki as ecdsa;
use serde_json::{Value, json};

on_both_backends!(the_corpus_is_refused_at_intake_and_the_sample_registers, signers_under_each_policy);

/// A valid SNILS nobody in the roster has.
const UNKNOWN_SNILS: &str = "11223344595";
const OTHER_MO: &str = "1.2.643.5.1.13.13.12.2.42.3011";

fn utc(y: i32, m: u32, d: u32) -> chrono::DateTime<chrono::Utc> {
    chrono::Utc.with_ymd_and_hms(y, m, d, 0, 0, 0).unwrap()
}

fn doctor_valid(snils: &str, from: chrono::DateTime<chrono::Utc>, till: chrono::DateTime<chrono::Utc>) -> TestSigner {
    sandbox_ca().issue_doctor(&format!("corpus-{snils}-{from}-{till}"), snils, from.timestamp(), till.timestamp())
}

/// An ECDSA signer (REMD takes GOST only): to make what must be refused.
fn ecdsa_signer(snils: &str) -> ecdsa::TestSigner {
    ecdsa::TestCa::new("refused algorithms").issue_doctor(
        snils,
        &Snils::parse(snils).unwrap(),
        utc(2020, 1, 1),
        utc(2030, 1, 1),
    )
}

/// One variant of the sample and what intake must say about it.
struct Variant {
    name: &'static str,
    document: String,
    /// `(role, CMS)` of each personal signature.
    signatures: Vec<(&'static str, Vec<u8>)>,
    org_signature: Option<Vec<u8>>,
    rule: &'static str,
    path: &'static str,
    code: &'static str,
    /// The REMD emulator checks this too (and must answer `code`).
    emulator: bool,
}

fn variant(
    name: &'static str,
    document: String,
    rule: &'static str,
    path: &'static str,
    code: &'static str,
) -> Variant {
    let signature = author_signer().sign_detached(document.as_bytes());
    Variant {
        name,
        document,
        signatures: vec![("1", signature)],
        org_signature: None,
        rule,
        path,
        code,
        emulator: false,
    }
}

impl Variant {
    fn checked_by_emulator(mut self) -> Self {
        self.emulator = true;
        self
    }

    fn signed_by(mut self, signer: &TestSigner) -> Self {
        self.signatures = vec![("1", signer.sign_detached(self.document.as_bytes()))];
        self
    }

    fn signed_with(mut self, cms: Vec<u8>) -> Self {
        self.signatures = vec![("1", cms)];
        self
    }

    fn body(&self) -> Value {
        let mut body = json!({
            "kind": 40, "organization": MO_2917, "document": B64.encode(self.document.as_bytes()),
            "signatures": self.signatures.iter().map(|(role, cms)| json!({"role": role, "role_version": "2.4", "data": B64.encode(cms)})).collect::<Vec<_>>(),
        });
        if let Some(org) = &self.org_signature {
            body["org_signature"] = json!(B64.encode(org));
        }
        body
    }

    /// The registerDocument request the gateway would derive from this variant (signers by
    /// the certificates' SNILS, else the document's first signer).
    fn request(&self) -> RegisterDocument {
        let header = egisz_semd::CdaHeader::parse(self.document.as_bytes()).unwrap();
        let offset = chrono::FixedOffset::east_opt(7 * 3600).unwrap();
        let parts = egisz_semd::register_request_parts(&header, offset).unwrap();
        let role = Coded { code: "1".into(), version: "2.4".into() };
        let personal = self
            .signatures
            .iter()
            .map(|(_, cms)| {
                let snils = egisz_semd::parse_signature(cms).ok().and_then(|s| s.certificate.snils);
                let signer = snils
                    .and_then(|s| parts.signer(&s, role.clone()))
                    .unwrap_or_else(|| parts.signers[0].signer(role.clone()));
                PersonalSignature {
                    signer,
                    signature: SignatureData { checksum: egisz_remd::checksum(cms), data: cms.clone() },
                }
            })
            .collect();
        let org = self
            .org_signature
            .as_ref()
            .map(|cms| SignatureData { checksum: egisz_remd::checksum(cms), data: cms.clone() });
        let checksum = egisz_remd::checksum(self.document.as_bytes());
        parts.into_register_document("m-1".into(), 40, Oid::parse(MO_2917).unwrap(), checksum, personal, org)
    }
}

fn nth(text: &str, from: &str, to: &str, n: usize) -> String {
    let (i, _) = text.match_indices(from).nth(n - 1).unwrap_or_else(|| panic!("no occurrence {n} of {from:?}"));
    format!("{}{}{}", &text[..i], to, &text[i + from.len()..])
}

fn one(text: &str, from: &str, to: &str) -> String {
    assert_eq!(text.matches(from).count(), 1, "{from:?} must occur once");
    text.replace(from, to)
}

/// The corpus: every REMD code intake claims to catch, at least once.
fn corpus(uid: &str) -> Vec<Variant> {
    let sample = sample_as(uid);
    let signature_path = "/signatures/0/ContentInfo/SignedData/signerInfos/SignerInfo";
    let certificate_path = "/signatures/0/ContentInfo/SignedData/certificates/Certificate";
    let mut out = vec![
        variant(
            "a document type of another kind",
            one(&sample, r#"code="36""#, r#"code="37""#),
            "H4",
            "/ClinicalDocument/code/@code",
            "INVALID_CONTENT",
        )
        .checked_by_emulator(),
        variant(
            "a template of another kind",
            one(&sample, "14.36.9.1", "14.99.9.1"),
            "K1",
            "/ClinicalDocument/templateId/@root",
            "INVALID_CONTENT",
        )
        .checked_by_emulator(),
        variant(
            "created in the future",
            one(&sample, "202308181015+0700", "202901011015+0700"),
            "H5",
            "/ClinicalDocument/effectiveTime/@value",
            "WRONG_CREATION_DATE",
        )
        .checked_by_emulator(),
        variant(
            "created before the kind existed",
            one(&sample, "202308181015+0700", "201901011015+0700"),
            "K2",
            "/ClinicalDocument/effectiveTime/@value",
            "NO_DOCUMENT_KIND_ON_DATE",
        )
        .checked_by_emulator(),
        variant(
            "another organisation as custodian",
            nth(&sample, r#"<id root="1.2.643.5.1.13.13.12.2.42.2917"/>"#, &format!(r#"<id root="{OTHER_MO}"/>"#), 3),
            "H10",
            "/ClinicalDocument/custodian/assignedCustodian/representedCustodianOrganization/id/@root",
            "ATTRIBUTE_MISMATCH",
        )
        .checked_by_emulator(),
        variant(
            "an author's organisation FRMO does not have",
            nth(
                &sample,
                r#"<id root="1.2.643.5.1.13.13.12.2.42.2917"/>"#,
                r#"<id root="1.2.643.5.1.13.13.12.2.42.1"/>"#,
                2,
            ),
            "O1",
            "/ClinicalDocument/author[1]/assignedAuthor/representedOrganization/id/@root",
            "ORG_NOT_FOUND_IN_FRMO",
        )
        .checked_by_emulator(),
        variant(
            "an author's organisation deleted from FRMO before the document's date",
            nth(
                &sample,
                r#"<id root="1.2.643.5.1.13.13.12.2.42.2917"/>"#,
                r#"<id root="1.2.643.5.1.13.13.12.2.42.2874"/>"#,
                2,
            ),
            "O1",
            "/ClinicalDocument/author[1]/assignedAuthor/representedOrganization/id/@root",
            "NO_ORG_ON_DATE",
        )
        .checked_by_emulator(),
        variant(
            "an author's department FRMO does not have",
            nth(
                &sample,
                r#"<id root="1.2.643.5.1.13.13.12.2.42.2917"/>"#,
                r#"<id root="1.2.643.5.1.13.13.12.2.42.2917.0.9999"/>"#,
                2,
            ),
            "O1",
            "/ClinicalDocument/author[1]/assignedAuthor/representedOrganization/id/@root",
            "NO_DEPARTMENT",
        )
        .checked_by_emulator(),
        variant(
            "an author's department liquidated before the document's date",
            nth(
                &sample,
                r#"<id root="1.2.643.5.1.13.13.12.2.42.2917"/>"#,
                r#"<id root="1.2.643.5.1.13.13.12.2.42.2917.0.4399"/>"#,
                2,
            ),
            "O1",
            "/ClinicalDocument/author[1]/assignedAuthor/representedOrganization/id/@root",
            "NO_DEPARTMENT",
        )
        .checked_by_emulator(),
        variant(
            "a dictionary version the kind does not allow",
            one(&sample, r#"codeSystemVersion="4.65""#, r#"codeSystemVersion="4.10""#),
            "H13",
            "/ClinicalDocument/code/@codeSystemVersion",
            "INVALID_DICTIONARY_VERSION",
        )
        .checked_by_emulator(),
        variant(
            "a position name that is not the dictionary's",
            nth(&sample, r#"displayName="врач-офтальмолог""#, r#"displayName="офтальмолог""#, 1),
            "H13",
            "/ClinicalDocument/author/assignedAuthor/code/@displayName",
            "INVALID_ELEMENT_VALUE_NAME",
        )
        .checked_by_emulator(),
        variant(
            "a code the dictionary does not have",
            one(
                &sample,
                r#"code="2" codeSystem="1.2.643.5.1.13.13.11.1040""#,
                r#"code="7" codeSystem="1.2.643.5.1.13.13.11.1040""#,
            ),
            "H13",
            "/ClinicalDocument/recordTarget/patientRole/patient/administrativeGenderCode/@code",
            "INVALID_ELEMENT_VALUE_CODE",
        ),
        variant(
            "a signer FRMR does not know",
            sample.replace(AUTHOR_SNILS, UNKNOWN_SNILS),
            "F1",
            "/ClinicalDocument/author[1]/assignedAuthor/id[2]",
            "PERSON_NOT_FOUND",
        )
        .signed_by(&signer_for(UNKNOWN_SNILS))
        .checked_by_emulator(),
        variant(
            "a signer dismissed before the document",
            sample.replace(AUTHOR_SNILS, DISMISSED_SNILS),
            "F1",
            "/ClinicalDocument/author[1]/assignedAuthor/id[2]",
            "PERSON_CARD_NOT_FOUND",
        )
        .signed_by(&signer_for(DISMISSED_SNILS))
        .checked_by_emulator(),
        variant(
            "a signer in another position",
            sample
                .replace(r#"<code code="73""#, r#"<code code="49""#)
                .replace(r#"displayName="врач-офтальмолог""#, r#"displayName="врач-терапевт участковый""#),
            "F1",
            "/ClinicalDocument/author[1]/assignedAuthor/code/@code",
            "PERSON_POST_IN_FRMR_MISMATCH",
        )
        .checked_by_emulator(),
        variant(
            "a signer under another name",
            sample.replace("<given>Александровна</given>", "<given>Петровна</given>"),
            "F1",
            "/ClinicalDocument/author[1]/assignedAuthor/assignedPerson/name",
            "VALUE_MISMATCH_METADATA_AND_FRMR",
        )
        .checked_by_emulator(),
        variant(
            "a signature over other bytes",
            sample.clone(),
            "INCONSISTENT_DIGESTS",
            "/signatures/0/ContentInfo/SignedData/signerInfos/SignerInfo/signedAttrs/messageDigest",
            "INCONSISTENT_DIGESTS",
        )
        .signed_with(author_signer().sign_detached(sample.replace("плановая", "экстренная").as_bytes()))
        .checked_by_emulator(),
        variant(
            "a certificate expired before the document",
            sample.clone(),
            "DOC_DATE_MISMATCH_CERT_NOT_AFTER",
            "/signatures/0/ContentInfo/SignedData/certificates/Certificate/tbsCertificate/validity/notAfter",
            "DOC_DATE_MISMATCH_CERT_NOT_AFTER",
        )
        .signed_by(&doctor_valid(AUTHOR_SNILS, utc(2020, 1, 1), utc(2023, 1, 1)))
        .checked_by_emulator(),
        variant(
            "a certificate valid only after the document",
            sample.clone(),
            "DOC_DATE_MISMATCH_CERT_NOT_BEFORE",
            "/signatures/0/ContentInfo/SignedData/certificates/Certificate/tbsCertificate/validity/notBefore",
            "DOC_DATE_MISMATCH_CERT_NOT_BEFORE",
        )
        .signed_by(&doctor_valid(AUTHOR_SNILS, utc(2024, 1, 1), utc(2030, 1, 1)))
        .checked_by_emulator(),
        variant("two signers in one container", sample.clone(), "MULTIPLE_SIGNERS", signature_path, "MULTIPLE_SIGNERS")
            .signed_with(ecdsa::sign_detached_by(
                &[&ecdsa_signer(AUTHOR_SNILS), &ecdsa_signer(DISMISSED_SNILS)],
                sample.as_bytes(),
            ))
            .checked_by_emulator(),
        variant(
            "a certificate of another CA",
            sample.clone(),
            "CANT_BUILD_CERT_CHAIN_TO_ACCREDITED_CA_CERT",
            certificate_path,
            "CANT_BUILD_CERT_CHAIN_TO_ACCREDITED_CA_CERT",
        )
        .signed_by(&TestCa::new(gost(), "a stranger's CA").issue_doctor(
            "stranger",
            AUTHOR_SNILS,
            VALID_FROM,
            VALID_TILL,
        ))
        .checked_by_emulator(),
        variant(
            "a certificate whose key may not sign",
            sample.clone(),
            "INVALID_CERT_KEY_USAGE",
            "/signatures/0/ContentInfo/SignedData/certificates/Certificate/tbsCertificate/extensions/keyUsage",
            "INVALID_CERT_KEY_USAGE",
        )
        .signed_by(
            &sandbox_ca().issue(
                &egisz_gost::test_pki::Profile::doctor("corpus-encipherment", AUTHOR_SNILS, VALID_FROM, VALID_TILL)
                    .usage(egisz_gost::test_pki::Usage::EnciphermentOnly),
            ),
        )
        .checked_by_emulator(),
        variant(
            "a certificate of another person",
            sample.clone(),
            "VALUE_MISMATCH_METADATA_AND_CERTIFICATE",
            "/signatures/0",
            "VALUE_MISMATCH_METADATA_AND_CERTIFICATE",
        )
        .signed_by(&signer_for(DISMISSED_SNILS))
        .checked_by_emulator(),
        variant(
            "the legal authenticator did not sign",
            nth(
                &nth(&sample, AUTHOR_SNILS, DISMISSED_SNILS, 2),
                "<family>Колпинская</family>",
                "<family>Тарасов</family>",
                2,
            ),
            "LEGAL_AUTHENTICATOR_NOT_FOUND",
            "/ClinicalDocument/legalAuthenticator",
            "LEGAL_AUTHENTICATOR_NOT_FOUND",
        )
        .checked_by_emulator(),
        variant(
            "a signature that is not CMS",
            sample.clone(),
            "SIGNATURE_DECODING_ERROR",
            "/signatures/0/ContentInfo",
            "SIGNATURE_DECODING_ERROR",
        )
        .signed_with(b"not a signature".to_vec())
        .checked_by_emulator(),
        variant(
            "no RESCONS section",
            one(&sample, r#"code="RESCONS""#, r#"code="RECOM""#),
            "H12",
            "/ClinicalDocument/component/structuredBody/component/section",
            "VALIDATION_ERROR",
        ),
        variant(
            "realm other than RU",
            one(&sample, r#"<realmCode code="RU"/>"#, r#"<realmCode code="US"/>"#),
            "H2",
            "/ClinicalDocument/realmCode/@code",
            "VALIDATION_ERROR",
        ),
        variant(
            "a patient without a family name",
            one(&sample, "<family>Павлова</family>", "<family></family>"),
            "REQ",
            "/ClinicalDocument/recordTarget/patientRole/patient/name/family",
            "PATIENT_SURNAME_NOT_FOUND",
        ),
        variant(
            "not well-formed XML",
            sample.replace("</ClinicalDocument>", ""),
            "XML",
            "/ClinicalDocument",
            "XML_VALIDATION_ERROR",
        ),
    ];
    // A signature value one bit off.
    let mut cms = author_signer().sign_detached(sample.as_bytes());
    let value = egisz_semd::parse_signature(&cms).unwrap().signature_value().to_vec();
    let at = cms.windows(value.len()).position(|w| w == value).unwrap() + value.len() - 1;
    cms[at] ^= 0x01;
    out.push(
        variant(
            "a broken signature value",
            sample.clone(),
            "SIGNATURE_VERIFICATION_ERROR",
            "/signatures/0/ContentInfo/SignedData/signerInfos/SignerInfo/signature",
            "SIGNATURE_VERIFICATION_ERROR",
        )
        .signed_with(cms)
        .checked_by_emulator(),
    );
    // Streebog-256 (1.2.643.7.1.1.2.2) made an unknown …2.9 in the SignerInfo's digestAlgorithm
    // (the last place the OID is written: the signed attributes hold none).
    let mut cms = author_signer().sign_detached(sample.as_bytes());
    let streebog = [0x06, 0x08, 0x2A, 0x85, 0x03, 0x07, 0x01, 0x01, 0x02, 0x02];
    let at = cms.windows(streebog.len()).rposition(|w| w == streebog).unwrap();
    cms[at + streebog.len() - 1] = 0x09;
    out.push(
        variant(
            "a digest algorithm REMD does not take",
            sample.clone(),
            "UNKNOWN_ALGORITHM",
            "/signatures/0/ContentInfo/SignedData/signerInfos/SignerInfo/digestAlgorithm",
            "UNKNOWN_ALGORITHM",
        )
        .signed_with(cms)
        .checked_by_emulator(),
    );
    let mut no_signature = variant("no signature", sample.clone(), "NO_SIGNATURE", "/signatures", "NO_SIGNATURE");
    no_signature.signatures.clear();
    out.push(no_signature.checked_by_emulator());
    let mut role = variant(
        "a signer role the kind does not require",
        sample.clone(),
        "K4",
        "/signatures",
        "ROLE_OCCURRENCE_MISMATCH",
    );
    role.signatures[0].0 = "2";
    out.push(role);
    let mut org = variant(
        "an organisation signature by a person",
        sample.clone(),
        "VALUE_MISMATCH_METADATA_AND_CERTIFICATE",
        "/org_signature/ContentInfo/SignedData/certificates/Certificate/tbsCertificate/subject/OGRN",
        "VALUE_MISMATCH_METADATA_AND_CERTIFICATE",
    );
    org.org_signature = Some(author_signer().sign_detached(sample.as_bytes()));
    out.push(org.checked_by_emulator());
    let _ = signature_path;
    out
}

/// Every code the corpus covers; the docs' table claims exactly these (and no fewer).
fn covered_codes() -> std::collections::BTreeSet<&'static str> {
    corpus("x").iter().map(|v| v.code).collect()
}

async fn the_corpus_is_refused_at_intake_and_the_sample_registers(db: Db) {
    let env = TestEnv::start(db).await;
    let key = env.key(&[Role::Submitter, Role::Reader], &[MO_2917]).await;
    for (i, v) in corpus("corpus").into_iter().enumerate() {
        let body = json!(v.body());
        let res = env.http.post(env.url("/api/v1/documents")).bearer_auth(&key).json(&body).send().await.unwrap();
        let status = res.status().as_u16();
        let problem: Value = res.json().await.unwrap();
        assert_eq!(status, 422, "#{i} {}: {problem}", v.name);
        let errors = problem["errors"].as_array().unwrap();
        assert!(
            errors.iter().any(|e| e["rule"] == v.rule && e["path"] == v.path && e["remd_code"] == v.code),
            "#{i} {}: no ({}, {}, {}) in {problem:#}",
            v.name,
            v.rule,
            v.path,
            v.code
        );
    }
    let list: Value = env.get(&key, "/api/v1/documents").await.json().await.unwrap();
    assert_eq!(list["items"], json!([]), "nothing refused is stored");

    // The sample itself, signed in a BER container, passes and registers.
    let sample = sample_as("corpus-sample");
    let cms = egisz_semd::ber::with_indefinite_lengths(&author_signer().sign_detached(sample.as_bytes()));
    let body = json!({"kind": 40, "organization": MO_2917, "document": B64.encode(sample.as_bytes()),
        "signatures": [{"role": "1", "role_version": "2.4", "data": B64.encode(&cms)}]});
    let res = env.http.post(env.url("/api/v1/documents")).bearer_auth(&key).json(&body).send().await.unwrap();
    assert_eq!(res.status(), 202);
    let accepted: Value = res.json().await.unwrap();
    assert_eq!(accepted["warnings"], json!([]), "{accepted}");
    let doc = env.wait_status(&key, accepted["id"].as_str().unwrap(), "registered").await;
    assert!(doc["emdr_id"].is_string(), "{doc}");
    env.shutdown().await;
}

#[test]
fn the_emulator_refuses_each_variant_with_the_same_code() {
    let roster = egisz_sandbox::Roster::builtin();
    let frmo = egisz_sandbox::Frmo::builtin();
    let registers = egisz_sandbox::remd::Registers { roster: &roster, frmo: &frmo };
    let trust = egisz_sandbox::remd::verifier_trusting(&[egisz_sandbox::pki::sandbox_ca_der()]).unwrap();
    let now = chrono::DateTime::parse_from_rfc3339("2026-12-01T12:00:00+07:00").unwrap();
    let sample = sample_as("emulator-sample");
    let clean = Variant { emulator: true, ..variant("the sample", sample, "", "", "") };
    assert_eq!(egisz_sandbox::remd::judge(&clean.request(), clean.document.as_bytes(), registers, &trust, now), vec![]);
    let mut compared = 0;
    for v in corpus("emulator").into_iter().filter(|v| v.emulator) {
        let codes: Vec<String> =
            egisz_sandbox::remd::judge(&v.request(), v.document.as_bytes(), registers, &trust, now)
                .into_iter()
                .map(|m| m.code)
                .collect();
        assert!(codes.iter().any(|c| c == v.code), "{}: the emulator says {codes:?}, intake says {}", v.name, v.code);
        compared += 1;
    }
    assert!(compared >= 20, "{compared}");
}

#[test]
fn the_docs_table_names_every_code_the_corpus_covers() {
    let docs = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/docs/validation.md")).unwrap();
    for code in covered_codes() {
        assert!(docs.contains(&format!("`{code}`")), "docs/validation.md does not name {code}");
    }
}

async fn signers_under_each_policy(db: Db) {
    let body = |uid: &str, snils: &str| {
        let document = sample_as(uid).replace(AUTHOR_SNILS, snils);
        submission_body(document.as_bytes(), &signer_for(snils))
    };
    // block (the default): refused with the code REMD would answer.
    let env = TestEnv::start(db).await;
    let key = env.key(&[Role::Submitter, Role::Reader], &[MO_2917]).await;
    let res = env
        .http
        .post(env.url("/api/v1/documents"))
        .bearer_auth(&key)
        .json(&body("p-block", UNKNOWN_SNILS))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 422);
    let problem: Value = res.json().await.unwrap();
    assert_eq!(problem["errors"][0]["remd_code"], "PERSON_NOT_FOUND", "{problem}");
    // FRMR down: accepted at once, with a warning that says the signers went unchecked.
    env.frmr.set_faults(egisz_sandbox::Faults { mode: egisz_sandbox::FaultMode::Down, ..Default::default() });
    let res = env
        .http
        .post(env.url("/api/v1/documents"))
        .bearer_auth(&key)
        .json(&body("p-down", "16287259094"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202, "FRMR down never blocks");
    let accepted: Value = res.json().await.unwrap();
    assert_eq!(accepted["warnings"][0]["rule"], "F1", "{accepted}");
    assert_eq!(accepted["warnings"][0]["remd_code"], "RUNTIME_ERROR", "{accepted}");
    env.shutdown().await;

    // warn: accepted, the warning in the status and the timeline; REMD then refuses it.
    let env = TestEnv::start_warning(db).await;
    let key = env.key(&[Role::Submitter, Role::Reader], &[MO_2917]).await;
    let res = env
        .http
        .post(env.url("/api/v1/documents"))
        .bearer_auth(&key)
        .json(&body("p-warn", UNKNOWN_SNILS))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let accepted: Value = res.json().await.unwrap();
    assert_eq!(accepted["warnings"][0]["remd_code"], "PERSON_NOT_FOUND", "{accepted}");
    let doc = env.wait_status(&key, accepted["id"].as_str().unwrap(), "failed").await;
    assert_eq!(doc["warnings"], accepted["warnings"]);
    assert!(doc["events"][0]["detail"].as_str().unwrap().contains("PERSON_NOT_FOUND"), "{doc}");
    assert_eq!(doc["errors"][0]["code"], "PERSON_NOT_FOUND", "the warning named what REMD answered: {doc}");
    env.shutdown().await;

    // off for kind 40: not asked.
    let env = TestEnv::start_with(db, |c, _| {
        c.validation.signers = KindPolicies { default: Policy::Block, by_kind: [(40, Policy::Off)].into() }
    })
    .await;
    let key = env.key(&[Role::Submitter, Role::Reader], &[MO_2917]).await;
    let before = env.frmr.stats().person_calls;
    let res = env
        .http
        .post(env.url("/api/v1/documents"))
        .bearer_auth(&key)
        .json(&body("p-off", UNKNOWN_SNILS))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    assert_eq!(res.json::<Value>().await.unwrap()["warnings"], json!([]));
    assert_eq!(env.frmr.stats().person_calls, before, "FRMR was not asked");
    env.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_external_verifier_decides_and_its_absence_only_warns() {
    let verifier = egisz_sandbox::VerifierSandbox::start(0, &sandbox_ca().certificate_der()).await.unwrap();
    let url = url::Url::parse(&verifier.url()).unwrap();
    let env = TestEnv::start_with(Db::Sqlite, |c, _| {
        c.validation.verifier = VerifierChoice::External { url, timeout: Duration::from_secs(3) }
    })
    .await;
    let key = env.key(&[Role::Submitter, Role::Reader], &[MO_2917]).await;
    let post = |uid: &str, signer: &TestSigner| {
        let document = sample_as(uid);
        let body = submission_body(document.as_bytes(), signer);
        let (http, url, key) = (env.http.clone(), env.url("/api/v1/documents"), key.clone());
        async move {
            let res = http.post(url).bearer_auth(key).json(&body).send().await.unwrap();
            (res.status().as_u16(), res.json::<Value>().await.unwrap())
        }
    };
    let (status, accepted) = post("v-valid", &author_signer()).await;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(accepted["warnings"], json!([]));
    assert_eq!(verifier.stats().valid, 1);

    let stranger = TestCa::new(gost(), "a stranger's CA").issue_doctor("s", AUTHOR_SNILS, VALID_FROM, VALID_TILL);
    let (status, problem) = post("v-stranger", &stranger).await;
    assert_eq!(status, 422, "{problem}");
    assert_eq!(problem["errors"][0]["rule"], "CANT_BUILD_CERT_CHAIN_TO_ACCREDITED_CA_CERT", "{problem}");
    assert_eq!(problem["errors"][0]["path"], "/signatures/0", "{problem}");

    for (n, fault) in [
        egisz_sandbox::VerifierFault::Down,
        egisz_sandbox::VerifierFault::Hang,
        egisz_sandbox::VerifierFault::ServerError,
        egisz_sandbox::VerifierFault::CaInaccessible,
    ]
    .into_iter()
    .enumerate()
    {
        verifier.set_fault(fault);
        let started = std::time::Instant::now();
        let (status, accepted) = post(&format!("v-fault-{n}"), &author_signer()).await;
        assert_eq!(status, 202, "{fault:?}: {accepted}");
        assert_eq!(accepted["warnings"][0]["rule"], "V1", "{fault:?}: {accepted}");
        assert!(started.elapsed() < Duration::from_secs(20), "{fault:?}: bounded by the timeout");
    }
    // A CA the service cannot reach for some certificates is no sign of a dead service: six
    // in a row leave the breaker closed, and the next signature is verified.
    for n in 0..6 {
        verifier.set_fault(egisz_sandbox::VerifierFault::CaInaccessible);
        let (status, _) = post(&format!("v-ca-{n}"), &author_signer()).await;
        assert_eq!(status, 202);
    }
    verifier.set_fault(egisz_sandbox::VerifierFault::None);
    let valid_before = verifier.stats().valid;
    let (status, accepted) = post("v-after-ca", &author_signer()).await;
    assert_eq!((status, accepted["warnings"].clone()), (202, json!([])), "{accepted}");
    assert_eq!(verifier.stats().valid, valid_before + 1);
    // Five failures of the service itself open the breaker: the service is not called, the
    // document is accepted at once with a warning.
    verifier.set_fault(egisz_sandbox::VerifierFault::ServerError);
    for n in 0..5 {
        post(&format!("v-5xx-{n}"), &author_signer()).await;
    }
    verifier.set_fault(egisz_sandbox::VerifierFault::None);
    let calls = verifier.stats();
    let (status, accepted) = post("v-open", &author_signer()).await;
    assert_eq!(status, 202);
    assert_eq!(accepted["warnings"][0]["rule"], "V1", "{accepted}");
    assert_eq!(verifier.stats(), calls, "an open breaker keeps calls away");
    env.shutdown().await;
    verifier.stop().await;
}

/// Runs `egisz-gateway validate …` (`cmd`, its arguments given) with a database under
/// `dir`: the exit code, stdout and stderr.
fn run_validate(mut cmd: std::process::Command, dir: &std::path::Path) -> (Option<i32>, String, String) {
    cmd.env("EGISZ__LOG__LEVEL", "error").env("EGISZ__DATABASE__URL", format!("sqlite://{}/v.db", dir.display()));
    let out = cmd.output().unwrap();
    (
        out.status.code(),
        String::from_utf8_lossy(&out.stdout).into_owned(),
        String::from_utf8_lossy(&out.stderr).into_owned(),
    )
}

#[test]
fn validate_says_what_intake_would() {
    let dir = tempfile::tempdir().unwrap();
    let run = |document: &str, signatures: &[(&str, Vec<u8>)], org: Option<&Vec<u8>>, json_out: bool| {
        let file = dir.path().join("doc.xml");
        std::fs::write(&file, document).unwrap();
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_egisz-gateway"));
        cmd.arg("validate").arg(&file).args(["--kind", "40", "--organization", MO_2917, "--frmr"]);
        for (i, (role, cms)) in signatures.iter().enumerate() {
            let path = dir.path().join(format!("sig-{i}.p7s"));
            std::fs::write(&path, cms).unwrap();
            cmd.arg("--signature").arg(&path).args(["--role", role]);
        }
        if let Some(cms) = org {
            let path = dir.path().join("org.p7s");
            std::fs::write(&path, cms).unwrap();
            cmd.arg("--org-signature").arg(&path);
        }
        if json_out {
            cmd.args(["--format", "json"]);
        }
        run_validate(cmd, dir.path())
    };
    let sample = sample_as("validate");
    let (code, text, err) = run(&sample, &[("1", author_signer().sign_detached(sample.as_bytes()))], None, false);
    assert_eq!(code, Some(0), "{text}{err}");
    assert!(text.contains("прошёл проверку"), "{text}");
    // No FRMO copy in the database yet: an organisation FRMO lacks only warns.
    let frmo_variants: Vec<Variant> = corpus("validate").into_iter().filter(|v| v.rule == "O1").collect();
    assert_eq!(frmo_variants.len(), 4);
    let (code, text, err) = run(&frmo_variants[0].document, &frmo_variants[0].signatures, None, true);
    assert_eq!(code, Some(0), "{text}{err}");
    let report: Value = serde_json::from_str(&text).unwrap();
    assert_eq!(report["warnings"][0]["rule"], "O1", "{report:#}");
    assert!(report["warnings"][0]["message"].as_str().unwrap().contains("копии ФРМО ещё нет"), "{report:#}");
    // `nsi refresh` stores the (sandbox) NSI's copy in the configured database; then
    // validate judges by it as intake does.
    let mut refresh = std::process::Command::new(env!("CARGO_BIN_EXE_egisz-gateway"));
    refresh.args(["nsi", "refresh"]);
    let (code, text, err) = run_validate(refresh, dir.path());
    assert_eq!(code, Some(0), "{text}{err}");
    assert!(text.contains("1.2.643.5.1.13.13.11.1461: загружена версия sandbox.1 (10 строк)"), "{text}");
    for v in corpus("validate") {
        let (code, text, err) = run(&v.document, &v.signatures, v.org_signature.as_ref(), true);
        assert_eq!(code, Some(1), "{}: {text}{err}", v.name);
        let report: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}: {text}", v.name));
        assert!(
            report["findings"].as_array().unwrap().iter().any(|e| e["rule"] == v.rule && e["remd_code"] == v.code),
            "{}: {report:#}",
            v.name
        );
    }
    let (code, _, err) = run(&sample, &[], None, false);
    assert_eq!(code, Some(1), "no signature is invalid, not a usage error: {err}");
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_egisz-gateway"))
        .args(["validate", "/nonexistent.xml", "--kind", "40"])
        .output()
        .unwrap();
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("не удалось прочитать"));
    let out = std::process::Command::new(env!("CARGO_BIN_EXE_egisz-gateway")).args(["validate"]).output().unwrap();
    assert_eq!(out.status.code(), Some(2), "usage");
}

#[test]
fn validate_verifies_a_real_gost_signature_against_a_trust_directory() {
    let dir = tempfile::tempdir().unwrap();
    let trust = dir.path().join("trust");
    std::fs::create_dir(&trust).unwrap();
    let regional = TestCa::new(gost(), "validate-regional-ca");
    std::fs::write(trust.join("regional.pem"), regional.certificate_pem()).unwrap();
    let sample = sample_as("validate-trust");
    let file = dir.path().join("doc.xml");
    std::fs::write(&file, &sample).unwrap();
    let signature = dir.path().join("doc.p7s");
    let signer = regional.issue_doctor("validate-trust", AUTHOR_SNILS, VALID_FROM, VALID_TILL);
    std::fs::write(&signature, signer.sign_cades_bes(sample.as_bytes())).unwrap();
    let run = |trust_dir: Option<&std::path::Path>| {
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_egisz-gateway"));
        cmd.arg("validate").arg(&file).args(["--kind", "40", "--signature"]).arg(&signature);
        if let Some(t) = trust_dir {
            cmd.arg("--trust").arg(t);
        }
        run_validate(cmd, dir.path())
    };
    // Against the regional CA: valid, the certificate named with its CA and the check times.
    let (code, text, err) = run(Some(&trust));
    assert_eq!(code, Some(0), "{text}{err}");
    assert!(text.contains("цепочка до УЦ из"), "{text}");
    assert!(
        text.contains("Тестовый УЦ egisz-gateway") && text.contains("проверен на 2023-08-18T10:15:00+07:00"),
        "{text}"
    );
    assert!(text.contains("и на время подписания"), "CAdES-BES carries signingTime: {text}");
    // Against the configured verifier (the sandbox CA only): not an accredited chain.
    let (code, text, err) = run(None);
    assert_eq!(code, Some(1), "{text}{err}");
    assert!(text.contains("CANT_BUILD_CERT_CHAIN_TO_ACCREDITED_CA_CERT"), "{text}");
    // A directory with no certificate: a usage error naming it.
    let empty = dir.path().join("empty");
    std::fs::create_dir(&empty).unwrap();
    let (code, _, err) = run(Some(&empty));
    assert_eq!(code, Some(2), "{err}");
    assert!(err.contains("no CA certificate"), "{err}");
}
