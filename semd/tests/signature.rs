//! Detached CMS signatures over the sample: GOST ones from the GOST test PKI (through the
//! system OpenSSL and Debian's engine), and ECDSA ones that must be refused.

#[expect(dead_code, reason = "this binary uses only part of the fixtures")]
mod common;

use chrono::{DateTime, Utc};
use common::*;
use egisz_contract::Snils;
use egisz_gost::Gost;
use egisz_gost::test_pki::{Profile, SignOptions, Strength, TestCa, TestSigner, Usage};
use egisz_semd::signature::{DigestAlgorithm, DigestStatus, GOST_SIGNATURE_ALGORITHMS, MAX_CERTIFICATES};
use egisz_semd::{
    CdaHeader, check_org_signature, check_personal_signatures, check_signature, digest_status, match_signer,
    parse_signature,
};

fn gost() -> &'static Gost {
    Gost::load().expect("the GOST engine (libengine-gost-openssl)")
}

fn utc(rfc3339: &str) -> DateTime<Utc> {
    at(rfc3339).to_utc()
}

fn ts(rfc3339: &str) -> i64 {
    utc(rfc3339).timestamp()
}

fn created() -> chrono::DateTime<chrono::FixedOffset> {
    at("2023-08-18T10:15:00+07:00")
}

fn ca() -> TestCa {
    TestCa::new(gost(), "egisz-semd tests")
}

fn doctor(ca: &TestCa, snils: &str) -> TestSigner {
    ca.issue_doctor(&format!("doctor {snils}"), snils, ts("2023-01-01T00:00:00Z"), ts("2024-12-31T23:59:59Z"))
}

/// Signed (signingTime) when the document was created.
fn sign(signer: &TestSigner, content: &[u8]) -> Vec<u8> {
    signer.sign(content, &SignOptions { cades: true, signing_time: Some(created().timestamp()) })
}

fn rules(v: &[egisz_semd::Violation]) -> Vec<&'static str> {
    v.iter().map(|v| v.rule).collect()
}

#[test]
fn a_gost_signature_over_the_sample_checks_out() {
    let cms = sign(&doctor(&ca(), DOCTOR_SNILS), SAMPLE.as_bytes());
    let sig = parse_signature(&cms).unwrap();

    assert_eq!(sig.certificate.snils.as_ref().map(Snils::as_str), Some(DOCTOR_SNILS));
    assert_eq!(sig.certificate.ogrn, None);
    assert_eq!(sig.certificate.not_before, utc("2023-01-01T00:00:00Z"));
    assert_eq!(sig.certificate.not_after, utc("2024-12-31T23:59:59Z"));
    assert!(sig.certificate.key_usage.is_some_and(|k| k.allows_signing()));
    assert_eq!(sig.digest_algorithm, DigestAlgorithm::Streebog256);
    assert_eq!(sig.message_digest.len(), 32);
    assert!(GOST_SIGNATURE_ALGORITHMS.contains(&sig.signature_algorithm.as_str()), "{}", sig.signature_algorithm);
    assert_eq!(sig.signing_time, Some(created().to_utc()));
    assert!(sig.other_certificates.is_empty(), "a root CA's leaf carries no path");
    assert_eq!(digest_status(&sig, SAMPLE.as_bytes()), DigestStatus::Matches);
    assert_eq!(check_signature(&sig, SAMPLE.as_bytes(), created()), vec![]);

    let header = CdaHeader::parse(SAMPLE.as_bytes()).unwrap();
    let m = match_signer(&header, &sig).unwrap();
    assert_eq!(m.authors, [0]);
    assert!(m.legal_authenticator);
    assert_eq!(check_personal_signatures(&header, std::slice::from_ref(&sig)), vec![]);
}

#[test]
fn gost_512_and_a_ca_path_in_the_container() {
    let root = TestCa::root(gost(), "semd-root", Strength::Gost512, "Корневой");
    let sub = root.subordinate("semd-sub", "Подчинённый");
    let signer = sub.issue(
        &Profile::doctor("d512", DOCTOR_SNILS, ts("2023-01-01T00:00:00Z"), ts("2024-12-31T23:59:59Z"))
            .strength(Strength::Gost512),
    );
    let sig = parse_signature(&sign(&signer, SAMPLE.as_bytes())).unwrap();
    assert_eq!(sig.digest_algorithm, DigestAlgorithm::Streebog512);
    assert_eq!(sig.message_digest.len(), 64);
    assert_eq!(sig.other_certificates, [sub.certificate_der()]);
    assert_eq!(check_signature(&sig, SAMPLE.as_bytes(), created()), vec![]);
}

#[test]
fn a_tampered_document_does_not_match_the_digest() {
    let sig = parse_signature(&sign(&doctor(&ca(), DOCTOR_SNILS), SAMPLE.as_bytes())).unwrap();
    let tampered = SAMPLE.replace("плановая", "экстренная");
    assert_eq!(digest_status(&sig, tampered.as_bytes()), DigestStatus::Mismatch);
    let v = check_signature(&sig, tampered.as_bytes(), created());
    assert_eq!(rules(&v), ["INCONSISTENT_DIGESTS"]);
    assert!(v[0].path.ends_with("/signedAttrs/messageDigest"));
    // The known Streebog-256 value of the empty message (GOST R 34.11-2012 test vectors).
    let empty = egisz_semd::digest(&DigestAlgorithm::Streebog256, b"").unwrap();
    assert_eq!(
        empty.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        "3f539a213e97c802cc229d474c6aa32a825a360b2a933a949fd925208d9ce1bb"
    );
}

#[test]
fn a_ber_container_parses_like_its_der() {
    let der = sign(&doctor(&ca(), DOCTOR_SNILS), SAMPLE.as_bytes());
    let ber = egisz_semd::ber::with_indefinite_lengths(&der);
    assert_ne!(der, ber);
    assert_eq!(ber[1], 0x80, "an indefinite outer length");
    let (from_ber, from_der) = (parse_signature(&ber).unwrap(), parse_signature(&der).unwrap());
    assert_eq!(from_ber.certificate, from_der.certificate);
    assert_eq!(from_ber.message_digest, from_der.message_digest);
    assert_eq!(from_ber.signed_attributes(), from_der.signed_attributes());
    assert_eq!(from_ber.signature_value(), from_der.signature_value());
    assert_eq!(from_ber.container(), ber.as_slice(), "the container as submitted, for REMD and a verifier");
    let mut truncated = ber.clone();
    truncated.truncate(ber.len() - 2);
    assert_eq!(rules(&parse_signature(&truncated).unwrap_err()), ["SIGNATURE_DECODING_ERROR"]);
}

#[test]
fn algorithms_remd_does_not_take() {
    use egisz_semd::test_pki as ecdsa;
    let snils = Snils::parse(DOCTOR_SNILS).unwrap();
    let signer = ecdsa::TestCa::new("foreign algorithms").issue_doctor(
        "ecdsa",
        &snils,
        utc("2023-01-01T00:00:00Z"),
        utc("2024-12-31T23:59:59Z"),
    );
    let sha = parse_signature(&signer.sign_detached(SAMPLE.as_bytes())).unwrap();
    let v = check_signature(&sha, SAMPLE.as_bytes(), created());
    assert_eq!(rules(&v), ["UNKNOWN_ALGORITHM", "UNKNOWN_ALGORITHM"], "SHA-256 and ECDSA: {v:?}");
    assert!(v[0].path.ends_with("/digestAlgorithm") && v[1].path.ends_with("/signatureAlgorithm"));
    let streebog = ecdsa::SignOptions { digest: DigestAlgorithm::Streebog256, ber: false };
    let gost_digest = parse_signature(&signer.sign_detached_with(SAMPLE.as_bytes(), &streebog)).unwrap();
    let v = check_signature(&gost_digest, SAMPLE.as_bytes(), created());
    assert_eq!(rules(&v), ["UNKNOWN_ALGORITHM"], "the digest is GOST, the signature ECDSA: {v:?}");
    assert!(v[0].path.ends_with("/signatureAlgorithm"));

    // Two signers in one container.
    let other = ecdsa::TestCa::new("foreign algorithms").issue_doctor(
        "ecdsa-2",
        &Snils::parse(OTHER_SNILS).unwrap(),
        utc("2023-01-01T00:00:00Z"),
        utc("2024-12-31T23:59:59Z"),
    );
    let cms = ecdsa::sign_detached_by(&[&signer, &other], SAMPLE.as_bytes());
    assert_eq!(rules(&parse_signature(&cms).unwrap_err()), ["MULTIPLE_SIGNERS"]);
}

#[test]
fn certificate_not_valid_at_creation_or_signing_time() {
    let ca = ca();
    let expired = ca.issue_doctor("old", DOCTOR_SNILS, ts("2020-01-01T00:00:00Z"), ts("2023-08-18T03:14:59Z"));
    let sig = parse_signature(&sign(&expired, SAMPLE.as_bytes())).unwrap();
    let v = check_signature(&sig, SAMPLE.as_bytes(), created());
    assert_eq!(rules(&v), ["DOC_DATE_MISMATCH_CERT_NOT_AFTER", "DOC_DATE_MISMATCH_CERT_NOT_AFTER"]);
    assert!(v[0].path.ends_with("/signingTime") && v[1].path.ends_with("/notAfter"), "{v:?}");

    let future = ca.issue_doctor("new", DOCTOR_SNILS, ts("2023-08-18T03:15:01Z"), ts("2025-01-01T00:00:00Z"));
    let late =
        future.sign(SAMPLE.as_bytes(), &SignOptions { cades: false, signing_time: Some(ts("2023-09-01T00:00:00Z")) });
    let sig = parse_signature(&late).unwrap();
    assert_eq!(rules(&check_signature(&sig, SAMPLE.as_bytes(), created())), ["DOC_DATE_MISMATCH_CERT_NOT_BEFORE"]);

    // Valid to the second: 10:15+07:00 is 03:15Z.
    let edge = ca.issue_doctor("edge", DOCTOR_SNILS, ts("2023-08-18T03:15:00Z"), ts("2023-08-18T03:15:00Z"));
    let sig = parse_signature(&sign(&edge, SAMPLE.as_bytes())).unwrap();
    assert_eq!(check_signature(&sig, SAMPLE.as_bytes(), created()), vec![]);

    // Made while valid, signed (signingTime) after it lapsed.
    let lapsed = ca.issue_doctor("lapsed", DOCTOR_SNILS, ts("2023-01-01T00:00:00Z"), ts("2023-12-31T00:00:00Z"));
    let options = SignOptions { cades: true, signing_time: Some(ts("2024-02-01T00:00:00Z")) };
    let v = check_signature(
        &parse_signature(&lapsed.sign(SAMPLE.as_bytes(), &options)).unwrap(),
        SAMPLE.as_bytes(),
        created(),
    );
    assert_eq!(rules(&v), ["DOC_DATE_MISMATCH_CERT_NOT_AFTER"]);
    assert!(v[0].path.ends_with("/signedAttrs/signingTime"));
}

#[test]
fn a_certificate_whose_key_may_not_sign() {
    let enc = ca().issue(
        &Profile::doctor("enc", DOCTOR_SNILS, ts("2023-01-01T00:00:00Z"), ts("2024-12-31T23:59:59Z"))
            .usage(Usage::EnciphermentOnly),
    );
    let v = check_signature(&parse_signature(&sign(&enc, SAMPLE.as_bytes())).unwrap(), SAMPLE.as_bytes(), created());
    assert_eq!(rules(&v), ["INVALID_CERT_KEY_USAGE"]);
    assert!(v[0].path.ends_with("/keyUsage"));
}

#[test]
fn a_container_with_too_many_certificates_is_refused_unread() {
    let mut ca = TestCa::root(gost(), "deep-0", Strength::Gost256, "УЦ 0");
    for i in 1..=MAX_CERTIFICATES {
        ca = ca.subordinate(&format!("deep-{i}"), &format!("УЦ {i}"));
    }
    let cms = sign(&doctor(&ca, DOCTOR_SNILS), SAMPLE.as_bytes());
    let v = parse_signature(&cms).unwrap_err();
    assert_eq!(rules(&v), ["WRONG_SIGNATURE_FORMAT"]);
    assert!(v[0].message.contains(&MAX_CERTIFICATES.to_string()));
}

#[test]
fn a_signer_who_is_not_in_the_document() {
    let header = CdaHeader::parse(SAMPLE.as_bytes()).unwrap();
    let sig = parse_signature(&sign(&doctor(&ca(), OTHER_SNILS), SAMPLE.as_bytes())).unwrap();
    let v = match_signer(&header, &sig).unwrap_err();
    assert_eq!(v.rule, "VALUE_MISMATCH_METADATA_AND_CERTIFICATE");
    assert!(!v.message.contains(OTHER_SNILS));
    // And then the legal authenticator has not signed.
    assert_eq!(rules(&check_personal_signatures(&header, &[sig])), ["LEGAL_AUTHENTICATOR_NOT_FOUND"]);
}

#[test]
fn an_organisation_certificate_carries_the_ogrn() {
    let org = ca().issue_organization("mo", "1024200702360", ts("2023-01-01T00:00:00Z"), ts("2025-01-01T00:00:00Z"));
    let sig = parse_signature(&sign(&org, SAMPLE.as_bytes())).unwrap();
    assert_eq!(sig.certificate.ogrn.as_deref(), Some("1024200702360"));
    assert_eq!(sig.certificate.snils, None);
    assert_eq!(check_signature(&sig, SAMPLE.as_bytes(), created()), vec![]);
    assert_eq!(check_org_signature(&sig, SAMPLE.as_bytes(), created()), vec![]);
    let header = CdaHeader::parse(SAMPLE.as_bytes()).unwrap();
    assert_eq!(match_signer(&header, &sig).unwrap_err().rule, "VALUE_MISMATCH_METADATA_AND_CERTIFICATE");
    // A person's certificate as the organisation's signature: no OGRN.
    let personal = parse_signature(&sign(&doctor(&ca(), DOCTOR_SNILS), SAMPLE.as_bytes())).unwrap();
    let v = check_org_signature(&personal, SAMPLE.as_bytes(), created());
    assert_eq!(rules(&v), ["VALUE_MISMATCH_METADATA_AND_CERTIFICATE"]);
    assert!(v[0].path.ends_with("/subject/OGRN"));
}

#[test]
fn signatures_of_one_submission_together() {
    let ca = ca();
    let header = CdaHeader::parse(SAMPLE.as_bytes()).unwrap();
    let one = parse_signature(&sign(&doctor(&ca, DOCTOR_SNILS), SAMPLE.as_bytes())).unwrap();
    let twice = [one.clone(), one.clone()];
    assert_eq!(rules(&check_personal_signatures(&header, &twice)), ["SIGNATURE_DUPLICATION"]);
    let other_doc = parse_signature(&sign(&doctor(&ca, OTHER_SNILS), b"another document")).unwrap();
    assert_eq!(rules(&check_personal_signatures(&header, &[one, other_doc])), ["INCONSISTENT_DIGESTS"]);
    assert_eq!(rules(&check_personal_signatures(&header, &[])), ["LEGAL_AUTHENTICATOR_NOT_FOUND"]);
}

#[test]
fn what_is_not_a_detached_signed_data() {
    assert_eq!(rules(&parse_signature(b"not a signature").unwrap_err()), ["SIGNATURE_DECODING_ERROR"]);
    assert_eq!(rules(&parse_signature(&[]).unwrap_err()), ["SIGNATURE_DECODING_ERROR"]);
    // A certificate is DER, but not a ContentInfo.
    assert_eq!(rules(&parse_signature(&ca().certificate_der()).unwrap_err()), ["SIGNATURE_DECODING_ERROR"]);
}

#[test]
fn debug_of_a_signature_shows_no_snils() {
    let sig = parse_signature(&sign(&doctor(&ca(), DOCTOR_SNILS), SAMPLE.as_bytes())).unwrap();
    let debug = format!("{sig:?}");
    assert!(!debug.contains(DOCTOR_SNILS), "{debug}");
    assert!(debug.contains("Streebog256"));
}
