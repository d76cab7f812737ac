//! The REMD listener as a trust boundary: forged, replayed and mismatched results and
//! pulls change nothing and get a fault; callers outside `remd_listener.allow_from` get
//! 403; oversized calls get 413; with `confirm_success` a success REMD does not confirm is
//! refused.

mod common;

use std::time::Duration;

use common::{Db, MO_2917, TestEnv, success_call};
use egisz_contract::remd::DocumentFileRequest;
use egisz_gateway::auth::Role;
use egisz_gateway::submission::Status;
use egisz_remd::SoapVersion;
use egisz_sandbox::RemdFaults;
use serde_json::Value;
use uuid::Uuid;

on_both_backends!(
    forged_replayed_and_mismatched_calls_change_nothing,
    confirmed_success_asks_remd_first,
    must_understand_headers_and_untimed_registrations
);

const OTHER_MO: &str = "1.2.643.5.1.13.13.12.2.42.3001";

async fn post(env: &TestEnv, body: Vec<u8>) -> (u16, String) {
    let res = env
        .http
        .post(env.gw.remd_listener_url())
        .header("content-type", SoapVersion::Soap12.content_type(None))
        .body(body)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.text().await.unwrap())
}

/// Waits until the emulator has dropped `n` results in all (it pulled the file first).
async fn results_lost(env: &TestEnv, n: u64) {
    for _ in 0..300 {
        if env.gw.remd_sandbox().unwrap().stats().results_lost >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the emulator never finished processing");
}

async fn until(env: &TestEnv, id: Uuid, status: Status) {
    for _ in 0..300 {
        if env.store().submission(id).await.unwrap().unwrap().status == status {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{id} never reached {status}");
}

/// What a forged call could have changed: the submission's state, emdrId and timeline.
async fn snapshot(env: &TestEnv, id: Uuid) -> (Status, Option<String>, usize) {
    let s = env.store().submission(id).await.unwrap().unwrap();
    (s.status, s.emdr_id, env.store().events(id).await.unwrap().len())
}

/// The value of one series on `/metrics` (0 when absent).
async fn metric(env: &TestEnv, series: &str) -> f64 {
    let text = env.http.get(env.url("/metrics")).send().await.unwrap().text().await.unwrap();
    text.lines().find_map(|l| l.strip_prefix(series).and_then(|rest| rest.trim().parse().ok())).unwrap_or(0.0)
}

async fn forged_replayed_and_mismatched_calls_change_nothing(db: Db) {
    let env = TestEnv::start(db).await;
    let key = env.key(&[Role::Submitter, Role::Reader], &[MO_2917]).await;
    let sandbox = env.gw.remd_sandbox().unwrap();
    // REMD accepts and its result is lost: the submission waits in awaiting_result with one
    // MessageID sent — what a forger who read it in a log would aim at.
    sandbox.set_faults(RemdFaults { lost_callback_rate: 1.0, ..RemdFaults::default() });
    let id = Uuid::parse_str(&env.submit_sample(&key, "trust-1").await).unwrap();
    until(&env, id, Status::AwaitingResult).await;
    results_lost(&env, 1).await;
    let sent = env.store().messages(id).await.unwrap();
    assert_eq!(sent.len(), 1);
    let before = snapshot(&env, id).await;

    let forged: Vec<(&str, Vec<u8>)> = vec![
        ("another document's localUid", success_call("f-1", &sent[0], Some("someone-else"), Some(MO_2917))),
        ("another organisation", success_call("f-2", &sent[0], Some("trust-1"), Some(OTHER_MO))),
        ("no localUid", success_call("f-3", &sent[0], None, Some(MO_2917))),
        ("no organisation", success_call("f-4", &sent[0], Some("trust-1"), None)),
        (
            "a message never sent",
            success_call("f-5", "urn:uuid:00000000-0000-4000-8000-000000000000", Some("trust-1"), Some(MO_2917)),
        ),
    ];
    for (what, body) in &forged {
        let (status, text) = post(&env, body.clone()).await;
        assert_eq!(status, 400, "{what}: {text}");
        assert!(text.contains("Fault"), "{what}: {text}");
        assert_eq!(snapshot(&env, id).await, before, "{what} changed the submission");
    }
    assert_eq!(metric(&env, "egisz_remd_listener_rejected_calls_total{result=\"mismatch\"}").await, 4.0);
    assert_eq!(metric(&env, "egisz_remd_listener_rejected_calls_total{result=\"unknown_message\"}").await, 1.0);

    // A pull by emdrId of a document that is not registered: refused.
    let pull = DocumentFileRequest {
        message_id: "f-6".into(),
        relates_to_message: None,
        emdr_id: Some("16.62.23.09.666666666".into()),
        local_uid: Some("trust-1".into()),
    };
    let (status, _) = post(&env, egisz_remd::write_get_document_file_request(SoapVersion::Soap12, &pull)).await;
    assert_ne!(status, 200);

    // The gateway sends again (a reconciliation found nothing): the first MessageID is now
    // outdated, and a success for it — a replay — changes nothing.
    let store = env.store();
    let t = egisz_gateway::submission::Transition {
        next_attempt_at: Some(egisz_gateway::now()),
        ..egisz_gateway::submission::Transition::to(Status::Queued, "test", "resend")
    };
    assert!(store.transition(id, &[Status::AwaitingResult], None, &t, egisz_gateway::now()).await.unwrap());
    env.gw.relay().lifecycle().wake();
    for _ in 0..100 {
        if store.messages(id).await.unwrap().len() == 2 {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    until(&env, id, Status::AwaitingResult).await;
    results_lost(&env, 2).await;
    let sent = store.messages(id).await.unwrap();
    assert_eq!(sent.len(), 2);
    let before = snapshot(&env, id).await;
    let (status, _) = post(&env, success_call("f-7", &sent[0], Some("trust-1"), Some(MO_2917))).await;
    assert_eq!(status, 400, "a result for the outdated send");
    assert_eq!(snapshot(&env, id).await, before);
    assert_eq!(metric(&env, "egisz_remd_listener_rejected_calls_total{result=\"not_current\"}").await, 1.0);

    // Refused calls are recorded, small, under ids of their own.
    let refused: i64 = match db {
        Db::Sqlite => {
            let pool = sqlx::SqlitePool::connect(&env.db.url).await.unwrap();
            sqlx::query_scalar("SELECT COUNT(*) FROM remd_callbacks WHERE message_id LIKE 'refused:%'")
                .fetch_one(&pool)
                .await
                .unwrap()
        }
        Db::Postgres => {
            let pool = sqlx::PgPool::connect(&env.db.url).await.unwrap();
            sqlx::query_scalar("SELECT COUNT(*) FROM remd_callbacks WHERE message_id LIKE 'refused:%'")
                .fetch_one(&pool)
                .await
                .unwrap()
        }
    };
    assert_eq!(refused, 6);

    // The genuine result for the current send, with the document's identity: registered.
    let (status, text) = post(&env, success_call("real-1", &sent[1], Some("trust-1"), Some(MO_2917))).await;
    assert_eq!(status, 200, "{text}");
    assert_eq!(snapshot(&env, id).await.0, Status::Registered);

    // A call bigger than remd_listener.body_limit_bytes: 413 with a fault.
    let big = format!(
        "<s:Envelope xmlns:s=\"http://www.w3.org/2003/05/soap-envelope\"><s:Body>{}</s:Body></s:Envelope>",
        " ".repeat(env.config.remd_listener.limits.body_limit_bytes)
    );
    let (status, text) = post(&env, big.into_bytes()).await;
    assert_eq!(status, 413);
    assert!(text.contains("Fault"));
    env.shutdown().await;
}

async fn confirmed_success_asks_remd_first(db: Db) {
    let env = TestEnv::start_with(db, |c, _| c.remd_listener.confirm_success = true).await;
    let key = env.key(&[Role::Submitter, Role::Reader], &[MO_2917]).await;
    let sandbox = env.gw.remd_sandbox().unwrap();
    sandbox.set_faults(RemdFaults { lost_callback_rate: 1.0, ..RemdFaults::default() });
    let id = Uuid::parse_str(&env.submit_sample(&key, "confirm-1").await).unwrap();
    until(&env, id, Status::AwaitingResult).await;
    results_lost(&env, 1).await;
    let sent = env.store().messages(id).await.unwrap();
    let before = snapshot(&env, id).await;
    // Everything matches but REMD has no such registration: refused.
    let (status, text) = post(&env, success_call("c-1", &sent[0], Some("confirm-1"), Some(MO_2917))).await;
    assert_eq!(status, 400, "{text}");
    assert_eq!(snapshot(&env, id).await, before);
    assert_eq!(metric(&env, "egisz_remd_listener_rejected_calls_total{result=\"not_confirmed\"}").await, 1.0);

    // REMD's own result (it registers and calls back): confirmed, registered.
    sandbox.set_faults(RemdFaults::default());
    let other = Uuid::parse_str(&env.submit_sample(&key, "confirm-2").await).unwrap();
    until(&env, other, Status::Registered).await;
    env.shutdown().await;
}

/// Callers outside allow_from: 403 at the connection, counted, nothing read.
#[tokio::test]
async fn callers_outside_allow_from_get_403() {
    let env = TestEnv::start_with(Db::Sqlite, |c, _| {
        c.remd_listener.allow_from = vec!["192.0.2.0/24".parse().unwrap()];
    })
    .await;
    let (status, text) = post(&env, success_call("x", "y", Some("z"), Some(MO_2917))).await;
    assert_eq!(status, 403);
    assert!(text.contains("Fault"));
    assert_eq!(metric(&env, "egisz_remd_listener_refused_connections_total").await, 1.0);
    env.shutdown().await;
}

/// A result with a header block the gateway does not understand, marked `mustUnderstand`:
/// a SOAP `MustUnderstand` fault, nothing applied. The same result without it, whose
/// registry item gives no (readable) `registrationDateTime`: registered, the time marked as
/// the gateway's clock in the status and the timeline.
async fn must_understand_headers_and_untimed_registrations(db: Db) {
    let env = TestEnv::start(db).await;
    let key = env.key(&[Role::Submitter, Role::Reader], &[MO_2917]).await;
    env.gw.remd_sandbox().unwrap().set_faults(RemdFaults { lost_callback_rate: 1.0, ..RemdFaults::default() });
    let id = Uuid::parse_str(&env.submit_sample(&key, "untimed-1").await).unwrap();
    until(&env, id, Status::AwaitingResult).await;
    results_lost(&env, 1).await;
    let sent = env.store().messages(id).await.unwrap();
    let before = snapshot(&env, id).await;

    let plain = String::from_utf8(success_call("mu-1", &sent[0], Some("untimed-1"), Some(MO_2917))).unwrap();
    let open = plain.find(":Header>").expect("the envelope has a header") + ":Header>".len();
    let prefix = &plain[plain[..open].rfind('<').unwrap() + 1..open - ":Header>".len()];
    let extension = format!(r#"<x:routing xmlns:x="urn:example:routing" {prefix}:mustUnderstand="true">a</x:routing>"#);
    let must = format!("{}{extension}{}", &plain[..open], &plain[open..]);
    let (status, text) = post(&env, must.into_bytes()).await;
    assert_eq!(status, 500, "SOAP 1.2 answers MustUnderstand with 500: {text}");
    assert!(text.contains("MustUnderstand") && text.contains("urn:example:routing"), "{text}");
    assert_eq!(snapshot(&env, id).await, before, "nothing applied");

    let (status, text) = post(&env, plain.into_bytes()).await;
    assert_eq!(status, 200, "{text}");
    let shown: Value = env.get(&key, &format!("/api/v1/documents/{id}")).await.json().await.unwrap();
    assert_eq!(shown["status"], "registered", "{shown}");
    assert_eq!(shown["registered_at_source"], "gateway", "the time is marked as the gateway's: {shown}");
    assert!(shown["registered_at"].is_string());
    let last = shown["events"].as_array().unwrap().last().unwrap().clone();
    assert!(last["detail"].as_str().unwrap().contains("записано время шлюза"), "{last}");
    let record = env.store().submission(id).await.unwrap().unwrap();
    assert!(record.registered_at_by_gateway);
}
