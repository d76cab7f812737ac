//! The backend against Debian's engine: signatures made and verified, chains built and
//! refused, CRLs read — nothing mocked.

use egisz_gost::test_pki::{Profile, SANDBOX_CA_SEED, Strength, TestCa, Usage};
use egisz_gost::{Certificate, ChainFailure, Crl, Digest, Gost, TrustStore, digest, verify_detached};

const DAY: i64 = 86_400;
/// 2026-01-01.
const T0: i64 = 1_767_225_600;

fn gost() -> &'static Gost {
    Gost::load().expect("the GOST engine (libengine-gost-openssl)")
}

#[test]
fn signatures_of_both_strengths_verify_and_a_changed_byte_does_not() {
    let ca = TestCa::new(gost(), "t-ca");
    for strength in [Strength::Gost256, Strength::Gost512] {
        let signer = ca.issue(
            &Profile::doctor(&format!("doc-{strength:?}"), "11223344595", T0, T0 + 365 * DAY).strength(strength),
        );
        let document = b"<ClinicalDocument/>".repeat(100);
        for cms in [signer.sign_detached(&document), signer.sign_cades_bes(&document)] {
            verify_detached(gost(), &cms, &document).expect("a valid signature");
            let mut changed = document.clone();
            changed[7] ^= 1;
            assert!(verify_detached(gost(), &cms, &changed).is_err(), "{strength:?}: a changed document");
        }
    }
}

#[test]
fn cades_bes_carries_the_signing_certificate_v2_attribute() {
    let ca = TestCa::new(gost(), "t-ca");
    let signer = ca.issue_doctor("cades", "11223344595", T0, T0 + DAY);
    // id-aa-signingCertificateV2, 1.2.840.113549.1.9.16.2.47, DER.
    let oid = [0x06, 0x0B, 0x2A, 0x86, 0x48, 0x86, 0xF7, 0x0D, 0x01, 0x09, 0x10, 0x02, 0x2F];
    let has = |cms: &[u8]| cms.windows(oid.len()).any(|w| w == oid);
    assert!(has(&signer.sign_cades_bes(b"x")));
    assert!(!has(&signer.sign_detached(b"x")));
}

#[test]
fn the_same_seed_makes_the_same_ca_key() {
    let a = TestCa::new(gost(), SANDBOX_CA_SEED);
    let b = TestCa::new(gost(), SANDBOX_CA_SEED);
    let leaf = a.issue_doctor("same", "11223344595", T0, T0 + DAY);
    assert!(leaf.certificate().signed_by(b.certificate()), "a leaf of one copy verifies with the other");
    let other = TestCa::new(gost(), "another");
    assert!(!leaf.certificate().signed_by(other.certificate()));
}

#[test]
fn chains_are_judged_at_the_time_given() {
    let ca = TestCa::new(gost(), "t-ca");
    let leaf = ca.issue_doctor("leaf", "11223344595", T0, T0 + 30 * DAY);
    let store = TrustStore::new(gost(), vec![ca.certificate().clone()]).unwrap();
    let chain = store.chain(leaf.certificate(), &[], T0 + DAY).expect("a chain");
    assert_eq!(chain.len(), 2);
    assert_eq!(store.chain(leaf.certificate(), &[], T0 + 31 * DAY).unwrap_err().failure, ChainFailure::Expired);
    assert_eq!(store.chain(leaf.certificate(), &[], T0 - DAY).unwrap_err().failure, ChainFailure::NotYetValid);

    let foreign = TestCa::new(gost(), "foreign").issue_doctor("leaf", "11223344595", T0, T0 + 30 * DAY);
    let refused = store.chain(foreign.certificate(), &[], T0 + DAY).unwrap_err();
    assert_eq!(refused.failure, ChainFailure::NoTrustedIssuer, "{refused:?}");
    let nobody = TrustStore::new(gost(), Vec::new()).unwrap();
    assert_eq!(nobody.chain(leaf.certificate(), &[], T0 + DAY).unwrap_err().failure, ChainFailure::NoTrustedIssuer);
}

#[test]
fn a_subordinate_ca_in_the_container_leads_to_the_root() {
    let root = TestCa::root(gost(), "t-root", Strength::Gost512, "Тестовый корневой УЦ");
    let sub = root.subordinate("t-sub", "Тестовый подчинённый УЦ");
    let leaf = sub.issue_doctor("leaf", "11223344595", T0, T0 + 30 * DAY);
    let store = TrustStore::new(gost(), vec![root.certificate().clone()]).unwrap();
    assert_eq!(
        store.chain(leaf.certificate(), &[], T0 + DAY).unwrap_err().failure,
        ChainFailure::NoTrustedIssuer,
        "without the subordinate"
    );
    let chain = store.chain(leaf.certificate(), &[sub.certificate().clone()], T0 + DAY).expect("through the sub-CA");
    assert_eq!(chain.len(), 3);
    // An accredited subordinate CA is trusted as such.
    let accredited = TrustStore::new(gost(), vec![sub.certificate().clone()]).unwrap();
    assert_eq!(accredited.chain(leaf.certificate(), &[], T0 + DAY).expect("partial chain").len(), 2);
    // The signature carries the path.
    let cms = leaf.sign_detached(b"doc");
    verify_detached(gost(), &cms, b"doc").unwrap();
}

#[test]
fn crls_name_their_revoked_certificates_and_verify_with_their_issuer_only() {
    let ca = TestCa::new(gost(), "t-ca").with_crl_url("http://127.0.0.1:9/ca.crl");
    let revoked = ca.issue_doctor("revoked", "11223344595", T0, T0 + 30 * DAY);
    let kept = ca.issue_doctor("kept", "11223344595", T0, T0 + 30 * DAY);
    assert_eq!(revoked.certificate().crl_urls(), ["http://127.0.0.1:9/ca.crl"]);
    let der = ca.crl(&[(revoked.certificate(), T0 + 2 * DAY)], T0 + 3 * DAY, T0 + 10 * DAY);
    let crl = Crl::parse(gost(), &der).unwrap();
    assert!(crl.issued_by(ca.certificate()));
    assert!(!crl.issued_by(TestCa::new(gost(), "other").certificate()));
    assert_eq!(crl.revoked_at(revoked.certificate()).unwrap(), Some(T0 + 2 * DAY));
    assert_eq!(crl.revoked_at(kept.certificate()).unwrap(), None);
    assert_eq!(crl.this_update().unwrap(), T0 + 3 * DAY);
    assert_eq!(crl.next_update().unwrap(), Some(T0 + 10 * DAY));
    assert_eq!(crl.len(), 1);
}

#[test]
fn certificates_read_from_pem_and_der() {
    let ca = TestCa::new(gost(), "t-ca");
    let mut pem = ca.certificate_pem();
    pem.extend(TestCa::new(gost(), "t-ca-2").certificate_pem());
    assert_eq!(Certificate::from_file_bytes(gost(), &pem).unwrap().len(), 2);
    let one = Certificate::from_file_bytes(gost(), &ca.certificate_der()).unwrap();
    assert_eq!(one[0].fingerprint(), ca.certificate().fingerprint());
    assert!(one[0].is_root());
    assert_eq!(one[0].subject_common_name().as_deref(), Some("Тестовый УЦ egisz-gateway"));
    assert!(Certificate::from_file_bytes(gost(), b"not a certificate").is_err());
}

#[test]
fn a_wrong_usage_certificate_is_issued_as_asked() {
    let ca = TestCa::new(gost(), "t-ca");
    let enc = ca.issue(&Profile::doctor("enc", "11223344595", T0, T0 + DAY).usage(Usage::EnciphermentOnly));
    // Its chain is fine: key usage is REMD's rule, judged above this crate.
    let store = TrustStore::new(gost(), vec![ca.certificate().clone()]).unwrap();
    store.chain(enc.certificate(), &[], T0 + 1).unwrap();
}

#[test]
fn streebog_through_the_engine_matches_the_standard_examples() {
    // GOST R 34.11-2012, example 1 (M1, 63 bytes), as the standard prints it (reversed).
    let m1 = b"012345678901234567890123456789012345678901234567890123456789012";
    let d256 = digest(gost(), Digest::Streebog256, m1).unwrap();
    let hex: String = d256.iter().map(|b| format!("{b:02x}")).collect();
    assert_eq!(hex, "9d151eefd8590b89daa6ba6cb74af9275dd051026bb149a452fd84e5e57b5500");
    assert_eq!(digest(gost(), Digest::Streebog512, m1).unwrap().len(), 64);
}

#[test]
fn the_openssl_command_line_verifies_what_the_test_pki_signs() {
    let dir = tempfile::tempdir().unwrap();
    let ca = TestCa::new(gost(), "t-ca");
    let signer = ca.issue_doctor("cli", "11223344595", T0, T0 + 3650 * DAY);
    std::fs::write(dir.path().join("doc"), b"<ClinicalDocument/>").unwrap();
    std::fs::write(dir.path().join("sig"), signer.sign_cades_bes(b"<ClinicalDocument/>")).unwrap();
    std::fs::write(dir.path().join("ca.pem"), ca.certificate_pem()).unwrap();
    let out = std::process::Command::new("openssl")
        .args(["cms", "-verify", "-engine", "gost", "-binary", "-inform", "DER", "-purpose", "any"])
        .args(["-in", "sig", "-content", "doc", "-CAfile", "ca.pem", "-out", "/dev/null"])
        .current_dir(dir.path())
        .output()
        .expect("the openssl command");
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
}

#[test]
fn a_signature_made_at_a_chosen_time_verifies() {
    let ca = TestCa::new(gost(), "t-ca");
    let signer = ca.issue_doctor("at", "11223344595", T0, T0 + 30 * DAY);
    let options = egisz_gost::test_pki::SignOptions { cades: true, signing_time: Some(T0 + DAY) };
    let cms = signer.sign(b"doc", &options);
    verify_detached(gost(), &cms, b"doc").unwrap();
    assert!(verify_detached(gost(), &cms, b"dog").is_err());
    // signingTime 2026-01-02 00:00:00 as UTCTime "260102000000Z".
    let utc = b"260102000000Z";
    assert!(cms.windows(utc.len()).any(|w| w == utc));
}
