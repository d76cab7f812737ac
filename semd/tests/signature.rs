//! Detached CMS signatures of the test PKI over the sample.

#[expect(dead_code, reason = "this binary uses only part of the fixtures")]
mod common;

use chrono::{DateTime, Utc};
use common::*;
use egisz_contract::Snils;
use egisz_semd::signature::{DigestAlgorithm, DigestStatus};
use egisz_semd::test_pki::{SignOptions, TestCa, TestPkiVerifier, TestSigner, sign_detached_by};
use egisz_semd::{
    CdaHeader, SignatureVerifier, check_org_signature, check_personal_signatures, check_signature, digest_status,
    match_signer, parse_signature,
};

fn utc(rfc3339: &str) -> DateTime<Utc> {
    at(rfc3339).to_utc()
}

fn created() -> chrono::DateTime<chrono::FixedOffset> {
    at("2023-08-18T10:15:00+07:00")
}

fn ca() -> TestCa {
    TestCa::new("egisz-semd tests")
}

fn doctor(ca: &TestCa, snils: &str) -> TestSigner {
    ca.issue_doctor(
        &format!("doctor {snils}"),
        &Snils::parse(snils).unwrap(),
        utc("2023-01-01T00:00:00Z"),
        utc("2024-12-31T23:59:59Z"),
    )
}

fn rules(v: &[egisz_semd::Violation]) -> Vec<&'static str> {
    v.iter().map(|v| v.rule).collect()
}

#[test]
fn a_test_pki_signature_over_the_sample_checks_out() {
    let ca = ca();
    let cms = doctor(&ca, DOCTOR_SNILS).sign_detached(SAMPLE.as_bytes());
    let sig = parse_signature(&cms).unwrap();

    assert_eq!(sig.certificate.snils.as_ref().map(Snils::as_str), Some(DOCTOR_SNILS));
    assert_eq!(sig.certificate.ogrn, None);
    assert_eq!(sig.certificate.not_before, utc("2023-01-01T00:00:00Z"));
    assert_eq!(sig.certificate.not_after, utc("2024-12-31T23:59:59Z"));
    assert_eq!(sig.digest_algorithm, DigestAlgorithm::Sha256);
    assert_eq!(sig.signature_algorithm, "1.2.840.10045.4.3.2");
    assert_eq!(digest_status(&sig, SAMPLE.as_bytes()), DigestStatus::Matches);
    assert_eq!(check_signature(&sig, SAMPLE.as_bytes(), created()), vec![]);

    let header = CdaHeader::parse(SAMPLE.as_bytes()).unwrap();
    let m = match_signer(&header, &sig).unwrap();
    assert_eq!(m.authors, [0]);
    assert!(m.legal_authenticator);
    assert_eq!(check_personal_signatures(&header, std::slice::from_ref(&sig)), vec![]);

    let verdict = futures::executor::block_on(ca.verifier().verify(&sig, SAMPLE.as_bytes(), created())).unwrap();
    assert_eq!(verdict, vec![]);
    // The verifier can be built from the CA certificate alone (as the sandbox would).
    let from_der = TestPkiVerifier::from_ca_der(&ca.certificate_der()).unwrap();
    assert_eq!(futures::executor::block_on(from_der.verify(&sig, SAMPLE.as_bytes(), created())).unwrap(), vec![]);
}

#[test]
fn the_test_pki_is_deterministic() {
    let (a, b) = (ca(), ca());
    assert_eq!(a.certificate_der(), b.certificate_der());
    assert_eq!(doctor(&a, DOCTOR_SNILS).certificate_der(), doctor(&b, DOCTOR_SNILS).certificate_der());
    assert_ne!(a.certificate_der(), TestCa::new("another").certificate_der());
}

#[test]
fn a_tampered_document_does_not_match_the_digest() {
    let cms = doctor(&ca(), DOCTOR_SNILS).sign_detached(SAMPLE.as_bytes());
    let sig = parse_signature(&cms).unwrap();
    let tampered = SAMPLE.replace("плановая", "экстренная");
    assert_eq!(digest_status(&sig, tampered.as_bytes()), DigestStatus::Mismatch);
    let v = check_signature(&sig, tampered.as_bytes(), created());
    assert_eq!(rules(&v), ["INCONSISTENT_DIGESTS"]);
    assert!(v[0].path.ends_with("/signedAttrs/messageDigest"));
}

#[test]
fn gost_digests_are_compared_with_the_document() {
    let ca = ca();
    let d = doctor(&ca, DOCTOR_SNILS);
    let tampered = SAMPLE.replace("плановая", "экстренная");
    for (digest, len) in [(DigestAlgorithm::Streebog256, 32), (DigestAlgorithm::Streebog512, 64)] {
        for ber in [false, true] {
            let options = SignOptions { digest: digest.clone(), ber };
            let cms = d.sign_detached_with(SAMPLE.as_bytes(), &options);
            assert_eq!(cms[1] == 0x80, ber, "{options:?}: BER has an indefinite outer length");
            let sig = parse_signature(&cms).unwrap();
            assert_eq!(sig.digest_algorithm, digest);
            assert_eq!(sig.message_digest.len(), len);
            assert_eq!(sig.signature_algorithm, "1.2.840.10045.2.1");
            assert_eq!(check_signature(&sig, SAMPLE.as_bytes(), created()), vec![], "{options:?}");
            let verdict =
                futures::executor::block_on(ca.verifier().verify(&sig, SAMPLE.as_bytes(), created())).unwrap();
            assert_eq!(verdict, vec![], "{options:?}: the test verifier checks the prehashed signature");
            assert_eq!(rules(&check_signature(&sig, tampered.as_bytes(), created())), ["INCONSISTENT_DIGESTS"]);
        }
    }
    // The known Streebog-256 value of the empty message (GOST R 34.11-2012 test vectors).
    let empty = egisz_semd::digest(&DigestAlgorithm::Streebog256, b"").unwrap();
    assert_eq!(
        empty.iter().map(|b| format!("{b:02x}")).collect::<String>(),
        "3f539a213e97c802cc229d474c6aa32a825a360b2a933a949fd925208d9ce1bb"
    );
}

#[test]
fn a_ber_container_parses_like_its_der() {
    let d = doctor(&ca(), DOCTOR_SNILS);
    let der = d.sign_detached(SAMPLE.as_bytes());
    let ber = d.sign_detached_with(SAMPLE.as_bytes(), &SignOptions { ber: true, ..SignOptions::default() });
    assert_ne!(der, ber);
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
fn an_algorithm_remd_does_not_take() {
    let cms = doctor(&ca(), DOCTOR_SNILS).sign_detached(SAMPLE.as_bytes());
    // The SHA-256 OID (2.16.840.1.101.3.4.2.1) of the SignerInfo's digestAlgorithm, made SHA-224 (…2.4).
    let sha256 = [0x06, 0x09, 0x60, 0x86, 0x48, 0x01, 0x65, 0x03, 0x04, 0x02, 0x01];
    let mut changed = cms.clone();
    let at = changed.windows(sha256.len()).rposition(|w| w == sha256).unwrap();
    changed[at + sha256.len() - 1] = 0x04;
    let sig = parse_signature(&changed).unwrap();
    let v = check_signature(&sig, SAMPLE.as_bytes(), created());
    assert_eq!(rules(&v), ["UNKNOWN_ALGORITHM"]);
    assert!(v[0].path.ends_with("/digestAlgorithm"), "{}", v[0].path);
    // ecdsa-with-SHA256 (1.2.840.10045.4.3.2) made ecdsa-with-SHA1 (1.2.840.10045.4.1).
    let ecdsa = [0x06, 0x08, 0x2A, 0x86, 0x48, 0xCE, 0x3D, 0x04, 0x03, 0x02];
    let mut changed = cms;
    let at = changed.windows(ecdsa.len()).rposition(|w| w == ecdsa).unwrap();
    changed[at + ecdsa.len() - 1] = 0x03;
    let sig = parse_signature(&changed).unwrap();
    let v = check_signature(&sig, SAMPLE.as_bytes(), created());
    assert_eq!(rules(&v), ["UNKNOWN_ALGORITHM"]);
    assert!(v[0].path.ends_with("/signatureAlgorithm"), "{}", v[0].path);
}

#[test]
fn two_signers_in_one_container() {
    let ca = ca();
    let (a, b) = (doctor(&ca, DOCTOR_SNILS), doctor(&ca, OTHER_SNILS));
    let cms = sign_detached_by(&[&a, &b], SAMPLE.as_bytes());
    assert_eq!(rules(&parse_signature(&cms).unwrap_err()), ["MULTIPLE_SIGNERS"]);
}

#[test]
fn certificate_not_valid_at_creation_time() {
    let ca = ca();
    let snils = Snils::parse(DOCTOR_SNILS).unwrap();
    let expired = ca.issue_doctor("old", &snils, utc("2020-01-01T00:00:00Z"), utc("2023-08-18T03:14:59Z"));
    let sig = parse_signature(&expired.sign_detached(SAMPLE.as_bytes())).unwrap();
    assert_eq!(rules(&check_signature(&sig, SAMPLE.as_bytes(), created())), ["DOC_DATE_MISMATCH_CERT_NOT_AFTER"]);

    let future = ca.issue_doctor("new", &snils, utc("2023-08-18T03:15:01Z"), utc("2025-01-01T00:00:00Z"));
    let sig = parse_signature(&future.sign_detached(SAMPLE.as_bytes())).unwrap();
    assert_eq!(rules(&check_signature(&sig, SAMPLE.as_bytes(), created())), ["DOC_DATE_MISMATCH_CERT_NOT_BEFORE"]);

    // Valid to the second: 10:15+07:00 is 03:15Z.
    let edge = ca.issue_doctor("edge", &snils, utc("2023-08-18T03:15:00Z"), utc("2023-08-18T03:15:00Z"));
    let sig = parse_signature(&edge.sign_detached(SAMPLE.as_bytes())).unwrap();
    assert_eq!(check_signature(&sig, SAMPLE.as_bytes(), created()), vec![]);
}

#[test]
fn a_signer_who_is_not_in_the_document() {
    let header = CdaHeader::parse(SAMPLE.as_bytes()).unwrap();
    let sig = parse_signature(&doctor(&ca(), OTHER_SNILS).sign_detached(SAMPLE.as_bytes())).unwrap();
    let v = match_signer(&header, &sig).unwrap_err();
    assert_eq!(v.rule, "VALUE_MISMATCH_METADATA_AND_CERTIFICATE");
    assert!(!v.message.contains(OTHER_SNILS));
    // And then the legal authenticator has not signed.
    assert_eq!(rules(&check_personal_signatures(&header, &[sig])), ["LEGAL_AUTHENTICATOR_NOT_FOUND"]);
}

#[test]
fn an_organisation_certificate_carries_the_ogrn() {
    let org = ca().issue_organization("mo", "1024200702360", utc("2023-01-01T00:00:00Z"), utc("2025-01-01T00:00:00Z"));
    let sig = parse_signature(&org.sign_detached(SAMPLE.as_bytes())).unwrap();
    assert_eq!(sig.certificate.ogrn.as_deref(), Some("1024200702360"));
    assert_eq!(sig.certificate.snils, None);
    assert_eq!(check_signature(&sig, SAMPLE.as_bytes(), created()), vec![]);
    assert_eq!(check_org_signature(&sig, SAMPLE.as_bytes(), created()), vec![]);
    let header = CdaHeader::parse(SAMPLE.as_bytes()).unwrap();
    assert_eq!(match_signer(&header, &sig).unwrap_err().rule, "VALUE_MISMATCH_METADATA_AND_CERTIFICATE");
    // A person's certificate as the organisation's signature: no OGRN.
    let personal = parse_signature(&doctor(&ca(), DOCTOR_SNILS).sign_detached(SAMPLE.as_bytes())).unwrap();
    let v = check_org_signature(&personal, SAMPLE.as_bytes(), created());
    assert_eq!(rules(&v), ["VALUE_MISMATCH_METADATA_AND_CERTIFICATE"]);
    assert!(v[0].path.ends_with("/subject/OGRN"));
}

#[test]
fn signatures_of_one_submission_together() {
    let ca = ca();
    let header = CdaHeader::parse(SAMPLE.as_bytes()).unwrap();
    let d = doctor(&ca, DOCTOR_SNILS);
    let one = parse_signature(&d.sign_detached(SAMPLE.as_bytes())).unwrap();
    let twice = [one.clone(), one.clone()];
    assert_eq!(rules(&check_personal_signatures(&header, &twice)), ["SIGNATURE_DUPLICATION"]);
    let other_doc = parse_signature(&doctor(&ca, OTHER_SNILS).sign_detached(b"another document")).unwrap();
    assert_eq!(rules(&check_personal_signatures(&header, &[one, other_doc])), ["INCONSISTENT_DIGESTS"]);
    assert_eq!(rules(&check_personal_signatures(&header, &[])), ["LEGAL_AUTHENTICATOR_NOT_FOUND"]);
}

#[test]
fn the_verifier_catches_a_foreign_ca_and_a_broken_signature_value() {
    let ca = ca();
    let stranger = TestCa::new("not trusted");
    let sig = parse_signature(&doctor(&stranger, DOCTOR_SNILS).sign_detached(SAMPLE.as_bytes())).unwrap();
    let verdict = futures::executor::block_on(ca.verifier().verify(&sig, SAMPLE.as_bytes(), created())).unwrap();
    assert_eq!(rules(&verdict), ["CANT_BUILD_CERT_CHAIN_TO_ACCREDITED_CA_CERT"]);

    let mut cms = doctor(&ca, DOCTOR_SNILS).sign_detached(SAMPLE.as_bytes());
    let value = parse_signature(&cms).unwrap().signature_value().to_vec();
    let at = cms.windows(value.len()).position(|w| w == value).unwrap() + value.len() - 1;
    cms[at] ^= 0x01;
    let broken = parse_signature(&cms).unwrap();
    assert_eq!(check_signature(&broken, SAMPLE.as_bytes(), created()), vec![], "the digest still matches");
    let verdict = futures::executor::block_on(ca.verifier().verify(&broken, SAMPLE.as_bytes(), created())).unwrap();
    assert_eq!(rules(&verdict), ["SIGNATURE_VERIFICATION_ERROR"]);
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
    let sig = parse_signature(&doctor(&ca(), DOCTOR_SNILS).sign_detached(SAMPLE.as_bytes())).unwrap();
    let debug = format!("{sig:?}");
    assert!(!debug.contains(DOCTOR_SNILS), "{debug}");
    assert!(debug.contains("Sha256"));
}

#[test]
fn only_gost_algorithms_when_remd_is_the_real_one() {
    use egisz_semd::{Algorithms, DocumentDigests, check_signature_with};
    let d = doctor(&ca(), DOCTOR_SNILS);
    let sha = parse_signature(&d.sign_detached(SAMPLE.as_bytes())).unwrap();
    let mut digests = DocumentDigests::new(SAMPLE.as_bytes());
    let v = check_signature_with(&sha, &mut digests, created(), Algorithms::Gost);
    assert_eq!(rules(&v), ["UNKNOWN_ALGORITHM", "UNKNOWN_ALGORITHM"], "SHA-256 and ECDSA: {v:?}");
    assert_eq!(check_signature_with(&sha, &mut digests, created(), Algorithms::GostAndTestPki), vec![]);
    let streebog = SignOptions { digest: DigestAlgorithm::Streebog256, ber: false };
    let gost_digest = parse_signature(&d.sign_detached_with(SAMPLE.as_bytes(), &streebog)).unwrap();
    let v = check_signature_with(&gost_digest, &mut digests, created(), Algorithms::Gost);
    assert_eq!(rules(&v), ["UNKNOWN_ALGORITHM"], "the digest is GOST, the signature ECDSA: {v:?}");
    assert!(v[0].path.ends_with("/signatureAlgorithm"));
}
