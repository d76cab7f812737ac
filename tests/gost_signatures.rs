//! GOST R 34.10-2012 signatures end to end on the embedded default's shape (SQLite and
//! PostgreSQL): intake verifies them in the process (`validation.verifier = "gost"`) and the
//! REMD emulator judges them with the same backend; each refused variant answers 422 with
//! the code REMD would give.

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{AUTHOR_SNILS, Db, MO_2917, SAMPLE, TestEnv, VALID_FROM, VALID_TILL, gost, sandbox_ca};
use egisz_gateway::auth::Role;
use egisz_gateway::config::Config;
use egisz_gateway::validation::settings::{GostSettings, GostTrust, RevocationPolicy, VerifierChoice};
use egisz_gost::test_pki::{Profile, TestCa, TestSigner, Usage};
use serde_json::{Value, json};

on_both_backends!(
    a_gost_signed_sample_registers,
    refused_variants_answer_422_with_remd_codes,
    the_remd_emulator_refuses_a_revoked_certificate_as_remd_would,
    the_sandbox_serves_its_cas_crl_and_a_revocation_there_refuses,
);

const DAY: i64 = 86_400;

fn settings(trust: GostTrust, revocation: RevocationPolicy) -> GostSettings {
    GostSettings {
        trust,
        trust_refresh: Duration::from_secs(600),
        revocation,
        crl_proxy: None,
        crl_timeout: Duration::from_secs(3),
        crl_max_bytes: 1024 * 1024,
    }
}

fn gost_only(c: &mut Config, trust: GostTrust, revocation: RevocationPolicy) {
    c.validation.verifier = VerifierChoice::Gost(settings(trust, revocation));
}

/// A doctor of `ca` with `snils`, valid 2020–2030.
fn doctor(ca: &TestCa, seed: &str, snils: &str) -> TestSigner {
    ca.issue_doctor(seed, snils, VALID_FROM, VALID_TILL)
}

fn body(document: &str, cms: &[u8]) -> Value {
    common::submission_signed_with(MO_2917, document.as_bytes(), cms)
}

/// A CRL server on loopback: `GET /ca.crl` answers whatever the returned cell holds.
async fn serve_crl() -> (Arc<Mutex<Vec<u8>>>, SocketAddr) {
    let crl = Arc::new(Mutex::new(Vec::<u8>::new()));
    let served = crl.clone();
    let app = axum::Router::new().route(
        "/ca.crl",
        axum::routing::get(move || {
            let served = served.clone();
            async move { served.lock().unwrap().clone() }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (crl, addr)
}

fn codes(answer: &Value) -> Vec<String> {
    answer["errors"]
        .as_array()
        .map(|v| v.iter().filter_map(|v| v["remd_code"].as_str().map(str::to_owned)).collect())
        .unwrap_or_default()
}

async fn a_gost_signed_sample_registers(db: Db) {
    let env = TestEnv::start_with(db, |c, _| gost_only(c, GostTrust::SandboxCa, RevocationPolicy::Warn)).await;
    let key = env.key(&[Role::Submitter, Role::Reader], &[MO_2917]).await;
    let ca = sandbox_ca();
    let cms = doctor(&ca, "e2e-author", AUTHOR_SNILS).sign_cades_bes(SAMPLE.as_bytes());
    let (status, accepted) = env.submit(&key, &body(SAMPLE, &cms)).await;
    assert_eq!(status, 202, "{accepted}");
    // The sandbox CA's standing CRL is held locally: revocation is known, no warning.
    assert_eq!(accepted["warnings"], json!([]), "{accepted}");
    let doc = env.wait_status(&key, accepted["id"].as_str().unwrap(), "registered").await;
    assert!(doc["emdr_id"].as_str().unwrap().starts_with("16.62.23.09."), "{doc}");
}

async fn refused_variants_answer_422_with_remd_codes(db: Db) {
    // A CA with a CRL served on loopback, trusted through a trust directory.
    let (crl, addr) = serve_crl().await;
    let ca = TestCa::new(gost(), "e2e-regional-ca").with_crl_url(format!("http://{addr}/ca.crl"));
    let trust = tempfile::tempdir().unwrap();
    std::fs::write(trust.path().join("regional.pem"), ca.certificate_pem()).unwrap();
    let now = chrono::Utc::now().timestamp();
    let revoked = doctor(&ca, "e2e-revoked", AUTHOR_SNILS);
    *crl.lock().unwrap() = ca.crl(&[(revoked.certificate(), now - DAY)], now - 60, now + DAY);

    let dir = trust.path().to_owned();
    let env =
        TestEnv::start_with(db, move |c, _| gost_only(c, GostTrust::directory(dir), RevocationPolicy::Block)).await;
    let key = env.key(&[Role::Submitter, Role::Reader], &[MO_2917]).await;
    let sample = |uid: &str| SAMPLE.replace("5b0a3c1e-2f6d-4b8e-9a71-0c3d5e7f9a21", uid);

    // The valid one is accepted with no warning: its CRL is current and does not name it.
    let good = doctor(&ca, "e2e-good", AUTHOR_SNILS);
    let (status, accepted) =
        env.submit(&key, &body(&sample("gost-good"), &good.sign_detached(sample("gost-good").as_bytes()))).await;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(accepted["warnings"], json!([]), "{accepted}");

    let mut tampered = good.sign_detached(sample("gost-tampered").as_bytes());
    let n = tampered.len();
    tampered[n - 3] ^= 0x01; // inside the signature value, the container's last field
    let foreign = doctor(&TestCa::new(gost(), "e2e-foreign"), "e2e-f", AUTHOR_SNILS);
    let enc = ca
        .issue(&Profile::doctor("e2e-enc", AUTHOR_SNILS, 1_577_836_800, 1_893_456_000).usage(Usage::EnciphermentOnly));
    let other = doctor(&ca, "e2e-other", "17450296372");
    let expired = ca.issue_doctor("e2e-expired", AUTHOR_SNILS, 1_577_836_800, 1_672_531_200); // till 2023-01-01
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        ("gost-tampered", tampered, "SIGNATURE_VERIFICATION_ERROR"),
        (
            "gost-foreign",
            foreign.sign_detached(sample("gost-foreign").as_bytes()),
            "CANT_BUILD_CERT_CHAIN_TO_ACCREDITED_CA_CERT",
        ),
        (
            "gost-revoked",
            revoked.sign_detached(sample("gost-revoked").as_bytes()),
            "PERSONAL_SIG_CERT_NOT_ACTUAL_ON_CHECK_DT",
        ),
        ("gost-usage", enc.sign_detached(sample("gost-usage").as_bytes()), "INVALID_CERT_KEY_USAGE"),
        ("gost-other", other.sign_detached(sample("gost-other").as_bytes()), "VALUE_MISMATCH_METADATA_AND_CERTIFICATE"),
        ("gost-expired", expired.sign_detached(sample("gost-expired").as_bytes()), "DOC_DATE_MISMATCH_CERT_NOT_AFTER"),
        ("gost-changed", good.sign_detached(sample("gost-changed").as_bytes()), "INCONSISTENT_DIGESTS"),
    ];
    for (uid, cms, code) in cases {
        let document = if uid == "gost-changed" {
            sample(uid).replace("плановая", "экстренная")
        } else {
            sample(uid)
        };
        let (status, answer) = env.submit(&key, &body(&document, &cms)).await;
        assert_eq!(status, 422, "{uid}: {answer}");
        assert!(codes(&answer).iter().any(|c| c == code), "{uid}: expected {code} in {answer}");
    }

    // The CA's server gone and the list expired: under `block`, CA_INACCESSIBILITY.
    *crl.lock().unwrap() = ca.crl(&[], now - 2 * DAY, now - DAY);
    let env = env.restart().await;
    let fresh = doctor(&ca, "e2e-stale", AUTHOR_SNILS);
    let (status, answer) =
        env.submit(&key, &body(&sample("gost-stale"), &fresh.sign_detached(sample("gost-stale").as_bytes()))).await;
    assert_eq!(status, 422, "{answer}");
    assert!(codes(&answer).iter().any(|c| c == "CA_INACCESSIBILITY"), "{answer}");
}

/// Intake not verifying (`none`), REMD the emulator trusting a CA whose CRL names the
/// signer: the emulator, like REMD, refuses at registration, and the document ends `failed`
/// with REMD's code.
async fn the_remd_emulator_refuses_a_revoked_certificate_as_remd_would(db: Db) {
    let (crl, addr) = serve_crl().await;
    let ca = TestCa::new(gost(), "e2e-emulator-ca").with_crl_url(format!("http://{addr}/ca.crl"));
    let now = chrono::Utc::now().timestamp();
    let revoked = doctor(&ca, "e2e-emulator-revoked", AUTHOR_SNILS);
    let kept = doctor(&ca, "e2e-emulator-kept", AUTHOR_SNILS);
    *crl.lock().unwrap() = ca.crl(&[(revoked.certificate(), now - DAY)], now - 60, now + DAY);

    let remd = egisz_sandbox::RemdSandbox::start(egisz_sandbox::RemdSandboxConfig {
        trusted_cas: vec![ca.certificate_der()],
        ..egisz_sandbox::RemdSandboxConfig::default()
    })
    .await
    .unwrap();
    let env = TestEnv::start_with(db, |c, _| common::every_service_remote(c, &remd)).await;
    remd.set_callback_url(env.gw.remd_listener_url());
    let key = env.key(&[Role::Submitter, Role::Reader], &[MO_2917]).await;
    let sample = |uid: &str| SAMPLE.replace("5b0a3c1e-2f6d-4b8e-9a71-0c3d5e7f9a21", uid);

    let (status, ok) =
        env.submit(&key, &body(&sample("emu-kept"), &kept.sign_detached(sample("emu-kept").as_bytes()))).await;
    assert_eq!(status, 202, "{ok}");
    let (status, refused) =
        env.submit(&key, &body(&sample("emu-revoked"), &revoked.sign_detached(sample("emu-revoked").as_bytes()))).await;
    assert_eq!(status, 202, "intake does not verify: {refused}");
    env.wait_status(&key, ok["id"].as_str().unwrap(), "registered").await;
    let failed = env.wait_status(&key, refused["id"].as_str().unwrap(), "failed").await;
    assert!(failed.to_string().contains("PERSONAL_SIG_CERT_NOT_ACTUAL_ON_CHECK_DT"), "{failed}");
}

/// The embedded default's shape: the sandbox REMD serves the sandbox CA's CRL; a
/// certificate naming it, revoked there, is refused at intake, and one not revoked
/// registers (the emulator fetching the same list).
async fn the_sandbox_serves_its_cas_crl_and_a_revocation_there_refuses(db: Db) {
    let env = TestEnv::start(db).await;
    let remd = env.gw.remd_sandbox().expect("the sandbox REMD");
    let ca = sandbox_ca().with_crl_url(remd.crl_url());
    let revoked = doctor(&ca, "sandbox-crl-revoked", AUTHOR_SNILS);
    let kept = doctor(&ca, "sandbox-crl-kept", AUTHOR_SNILS);
    assert_eq!(revoked.certificate().crl_urls(), [remd.crl_url()]);
    remd.revoke(&revoked.certificate().serial_hex());
    let key = env.key(&[Role::Submitter, Role::Reader], &[MO_2917]).await;
    let sample = |uid: &str| SAMPLE.replace("5b0a3c1e-2f6d-4b8e-9a71-0c3d5e7f9a21", uid);

    let (status, answer) =
        env.submit(&key, &body(&sample("crl-revoked"), &revoked.sign_detached(sample("crl-revoked").as_bytes()))).await;
    assert_eq!(status, 422, "{answer}");
    assert!(codes(&answer).iter().any(|c| c == "PERSONAL_SIG_CERT_NOT_ACTUAL_ON_CHECK_DT"), "{answer}");
    let (status, accepted) =
        env.submit(&key, &body(&sample("crl-kept"), &kept.sign_detached(sample("crl-kept").as_bytes()))).await;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(accepted["warnings"], json!([]), "the list was had: {accepted}");
    env.wait_status(&key, accepted["id"].as_str().unwrap(), "registered").await;
}
