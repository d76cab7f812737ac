//! Document intake and registration through the real API, on SQLite and PostgreSQL, with
//! the REMD emulator in-process (it pulls the file from the gateway's REMD listener over
//! loopback and posts the result back).

mod common;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use common::{AUTHOR_SNILS, DISMISSED_SNILS, Db, MO_2917, TestEnv};
use egisz_gateway::auth::Role;
use egisz_gost::test_pki::TestSigner;
use serde_json::{Value, json};

on_both_backends!(
    the_sample_is_registered_with_the_bytes_submitted,
    idempotent_intake_and_conflicts,
    bad_input_lists_every_reason_and_stores_nothing,
    a_permanent_error_ends_failed_with_a_hint,
    documents_are_scoped_to_the_client,
);

const SAMPLE: &str = include_str!("../semd/tests/data/tmk-protocol-40.xml");

fn doctor(snils: &str) -> TestSigner {
    common::signer_for(snils)
}

/// A request body for `document` signed by the author.
fn body(document: &str, signer: &TestSigner) -> Value {
    let cms = signer.sign_detached(document.as_bytes());
    json!({
        "kind": 40,
        "organization": MO_2917,
        "document": B64.encode(document.as_bytes()),
        "signatures": [{"role": "1", "role_version": "2.4", "data": B64.encode(cms)}],
    })
}

fn with_uid(uid: &str) -> String {
    SAMPLE.replace("5b0a3c1e-2f6d-4b8e-9a71-0c3d5e7f9a21", uid)
}

async fn the_sample_is_registered_with_the_bytes_submitted(db: Db) {
    let env = TestEnv::start(db).await;
    let key = env.key(&[Role::Submitter, Role::Reader], &[MO_2917]).await;
    let (status, accepted) = env.submit(&key, &body(SAMPLE, &doctor(AUTHOR_SNILS))).await;
    assert_eq!(status, 202, "{accepted}");
    assert_eq!(accepted["status"], "queued");
    assert_eq!(accepted["local_uid"], "5b0a3c1e-2f6d-4b8e-9a71-0c3d5e7f9a21");
    assert_eq!(accepted["checksum"], egisz_remd::checksum(SAMPLE.as_bytes()));
    let id = accepted["id"].as_str().unwrap().to_owned();

    let doc = env.wait_status(&key, &id, "registered").await;
    let emdr_id = doc["emdr_id"].as_str().unwrap();
    assert!(emdr_id.starts_with("16.62.23.09."), "{emdr_id}");
    let statuses: Vec<&str> = doc["events"].as_array().unwrap().iter().map(|e| e["status"].as_str().unwrap()).collect();
    assert_eq!(statuses.first(), Some(&"queued"));
    assert_eq!(statuses.last(), Some(&"registered"));
    assert!(doc["events"].as_array().unwrap().iter().any(|e| e["actor"] == "remd"), "REMD's pull is in the timeline");

    let registry = env.gw.remd_sandbox().unwrap().registry();
    assert_eq!(registry.len(), 1);
    assert_eq!(registry[0].emdr_id, emdr_id);
    assert_eq!(registry[0].document, SAMPLE.as_bytes(), "REMD pulled exactly the bytes submitted");
    env.shutdown().await;
}

async fn idempotent_intake_and_conflicts(db: Db) {
    let env = TestEnv::start(db).await;
    let key = env.key(&[Role::Submitter], &[MO_2917]).await;
    let signer = doctor(AUTHOR_SNILS);
    let first = body(&with_uid("idem-1"), &signer);
    let (status, a) = env.submit(&key, &first).await;
    assert_eq!(status, 202, "{a}");
    let (status, b) = env.submit(&key, &first).await;
    assert_eq!(status, 200, "the same document again is the same submission: {b}");
    assert_eq!(a["id"], b["id"]);
    let changed = with_uid("idem-1").replace("Значительное улучшение", "Улучшение");
    let (status, c) = env.submit(&key, &body(&changed, &signer)).await;
    assert_eq!(status, 409, "{c}");
    assert_eq!(c["code"], "duplicate_local_uid");
    env.shutdown().await;
}

async fn bad_input_lists_every_reason_and_stores_nothing(db: Db) {
    let env = TestEnv::start(db).await;
    let key = env.key(&[Role::Submitter, Role::Reader], &[MO_2917]).await;
    let signer = doctor(AUTHOR_SNILS);
    let good = body(SAMPLE, &signer);
    let with = |f: &dyn Fn(&mut Value)| {
        let mut b = good.clone();
        f(&mut b);
        b
    };
    let doc = |text: &str| with(&|b: &mut Value| b["document"] = json!(B64.encode(text.as_bytes())));
    let dtd = format!(
        "<?xml version=\"1.0\"?><!DOCTYPE x [<!ENTITY e \"x\">]>{}",
        &SAMPLE[SAMPLE.find("<ClinicalDocument").unwrap()..]
    );
    let cases: Vec<(&str, Value, u16, &[&str])> = vec![
        ("not base64", with(&|b: &mut Value| b["document"] = json!("не base64!")), 422, &["document_base64"]),
        ("not XML", doc("plain text, not a document"), 422, &["XML"]),
        ("not CDA", doc("<?xml version=\"1.0\"?><html><body/></html>"), 422, &["H1"]),
        ("a DTD", doc(&dtd), 422, &["H1"]),
        ("a wrong kind", with(&|b: &mut Value| b["kind"] = json!(227)), 422, &["H4"]),
        ("an unknown kind", with(&|b: &mut Value| b["kind"] = json!(99999)), 422, &["kind_unknown"]),
        ("no signature", with(&|b: &mut Value| b["signatures"] = json!([])), 422, &["NO_SIGNATURE"]),
        (
            "a signature of someone else",
            body(SAMPLE, &doctor(DISMISSED_SNILS)),
            422,
            &["VALUE_MISMATCH_METADATA_AND_CERTIFICATE"],
        ),
        (
            "a signature over other bytes",
            with(&|b: &mut Value| b["signatures"][0]["data"] = json!(B64.encode(signer.sign_detached(b"other")))),
            422,
            &["INCONSISTENT_DIGESTS"],
        ),
        ("a localUid with spaces", body(&with_uid("bad uid"), &signer), 422, &["H3"]),
        (
            "signature not base64",
            with(&|b: &mut Value| b["signatures"][0]["data"] = json!("%%%")),
            422,
            &["signature_base64"],
        ),
        (
            "several problems at once",
            with(&|b: &mut Value| {
                b["kind"] = json!(227);
                b["signatures"] = json!([]);
            }),
            422,
            &["H4", "NO_SIGNATURE"],
        ),
    ];
    for (what, body, status, rules) in cases {
        let (got, problem) = env.submit(&key, &body).await;
        assert_eq!(got, status, "{what}: {problem}");
        assert_eq!(problem["code"], "validation_failed", "{what}: {problem}");
        let found: Vec<&str> =
            problem["errors"].as_array().unwrap().iter().map(|e| e["rule"].as_str().unwrap()).collect();
        for rule in rules {
            assert!(found.contains(rule), "{what}: {rule} not in {found:?}");
        }
    }
    let outside = with(&|b: &mut Value| b["organization"] = json!("1.2.643.5.1.13.13.12.2.42.3011"));
    let (status, _) = env.submit(&key, &outside).await;
    assert_eq!(status, 403, "an organisation outside the key's scope");
    let reader = env.key(&[Role::Reader], &[MO_2917]).await;
    let (status, _) = env.submit(&reader, &good).await;
    assert_eq!(status, 403, "reading is not submitting");

    let list: Value = env.get(&key, "/api/v1/documents").await.json().await.unwrap();
    assert_eq!(list["items"], json!([]), "nothing was stored");
    env.shutdown().await;
}

async fn a_permanent_error_ends_failed_with_a_hint(db: Db) {
    // Under `warn` the dismissed signer is accepted with a warning, and REMD refuses it.
    let env = TestEnv::start_warning(db).await;
    let key = env.key(&[Role::Submitter, Role::Reader], &[MO_2917]).await;
    // The same document, but its author was dismissed on 2022-12-31 and it is dated 2023.
    let document = with_uid("dismissed-1").replace(AUTHOR_SNILS, DISMISSED_SNILS);
    let (status, accepted) = env.submit(&key, &body(&document, &doctor(DISMISSED_SNILS))).await;
    assert_eq!(status, 202, "{accepted}");
    let doc = env.wait_status(&key, accepted["id"].as_str().unwrap(), "failed").await;
    let error = &doc["errors"][0];
    assert!(error["code"].as_str().unwrap().starts_with("PERSON_"), "{doc}");
    // Intake saw it coming: the warning names the code REMD then answered.
    assert_eq!(accepted["warnings"][0]["rule"], "F1", "{accepted}");
    assert_eq!(accepted["warnings"][0]["remd_code"], error["code"], "{doc}");
    assert_eq!(error["disposition"], "needs_data_fix");
    assert!(!error["hint_ru"].as_str().unwrap().is_empty());
    assert!(!error["message"].as_str().unwrap().is_empty());
    env.shutdown().await;
}

async fn documents_are_scoped_to_the_client(db: Db) {
    let env = TestEnv::start(db).await;
    let key = env.key(&[Role::Submitter, Role::Reader], &[MO_2917]).await;
    let (_, accepted) = env.submit(&key, &body(&with_uid("scope-1"), &doctor(AUTHOR_SNILS))).await;
    let id = accepted["id"].as_str().unwrap();
    let other = env.key(&[Role::Reader], &["1.2.643.5.1.13.13.12.2.42.3011"]).await;
    let res = env.get(&other, &format!("/api/v1/documents/{id}")).await;
    assert_eq!(res.status(), 404, "a foreign organisation's document does not exist for this client");
    let list: Value = env.get(&other, "/api/v1/documents").await.json().await.unwrap();
    assert_eq!(list["items"], json!([]));
    let res = env.get(&other, &format!("/api/v1/documents?organization={MO_2917}")).await;
    assert_eq!(res.status(), 403);
    let mine: Value = env.get(&key, "/api/v1/documents?status=queued&kind=40").await.json().await.unwrap();
    assert!(mine["items"].as_array().unwrap().len() <= 1);
    let res = env.get(&key, "/api/v1/documents?status=lost").await;
    assert_eq!(res.status(), 422);
    let verifier = env.verifier().await;
    assert_eq!(env.get(&verifier, &format!("/api/v1/documents/{id}")).await.status(), 403);
    env.shutdown().await;
}

/// The embedded default's REMD emulator keeps its register beside the SQLite file: after a
/// restart the next document gets the next `emdrId`, never one already given.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_sandbox_register_outlives_a_restart() {
    let env = TestEnv::start(Db::Sqlite).await;
    let key = env.key(&[Role::Submitter, Role::Reader], &[MO_2917]).await;
    let (_, first) = env.submit(&key, &body(&with_uid("restart-1"), &doctor(AUTHOR_SNILS))).await;
    let first = env.wait_status(&key, first["id"].as_str().unwrap(), "registered").await;
    let env = env.restart().await;
    let (_, second) = env.submit(&key, &body(&with_uid("restart-2"), &doctor(AUTHOR_SNILS))).await;
    let second = env.wait_status(&key, second["id"].as_str().unwrap(), "registered").await;
    let n = |d: &Value| d["emdr_id"].as_str().unwrap().rsplit('.').next().unwrap().parse::<u64>().unwrap();
    assert_eq!(n(&second), n(&first) + 1, "{} then {}", first["emdr_id"], second["emdr_id"]);
    assert_eq!(env.gw.remd_sandbox().unwrap().registry().len(), 2, "the first registration came back too");
    env.shutdown().await;
}
