//! REMD's calls to the gateway, made with the codec as REMD would, in SOAP 1.2 and 1.1:
//! unknown messages, duplicates, late results, pulls by emdrId, garbage.

mod common;

use std::time::Duration;

use common::{Db, MO_2917, TestEnv};
use egisz_contract::Personal;
use egisz_contract::remd::{DocumentFileRequest, RegisterResult, RemdMessage, ResultStatus};
use egisz_gateway::auth::Role;
use egisz_remd::{Response, SoapVersion};
use egisz_sandbox::RemdFaults;

on_both_backends!(unknown_messages_duplicates_and_late_results, a_retry_code_in_a_result_goes_back_to_the_schedule);

async fn post(env: &TestEnv, version: SoapVersion, body: Vec<u8>) -> (u16, Vec<u8>) {
    let res = env
        .http
        .post(env.gw.remd_listener_url())
        .header("content-type", version.content_type(None))
        .body(body)
        .send()
        .await
        .unwrap();
    (res.status().as_u16(), res.bytes().await.unwrap().to_vec())
}

fn result(message_id: &str, relates_to: &str, status: ResultStatus, errors: Vec<RemdMessage>) -> RegisterResult {
    RegisterResult {
        message_id: message_id.into(),
        relates_to_message: relates_to.into(),
        status,
        kind: Some(40),
        organization: Some(MO_2917.into()),
        local_uid: None,
        creation_date_time: None,
        registry_item: None,
        errors,
    }
}

async fn unknown_messages_duplicates_and_late_results(db: Db) {
    let env = TestEnv::start(db).await;
    let key = env.key(&[Role::Submitter, Role::Reader], &[MO_2917]).await;

    // A pull for a message never sent: a fault naming WRONG_MESSAGE_ID.
    let pull = DocumentFileRequest {
        message_id: "remd-1".into(),
        relates_to_message: Some("never-sent".into()),
        emdr_id: None,
        local_uid: None,
    };
    let (status, body) =
        post(&env, SoapVersion::Soap12, egisz_remd::write_get_document_file_request(SoapVersion::Soap12, &pull)).await;
    assert_ne!(status, 200);
    assert!(String::from_utf8_lossy(&body).contains("WRONG_MESSAGE_ID"));

    // A result for a message never sent: recorded, refused with a fault.
    let stray = result("remd-2", "never-sent", ResultStatus::Success, vec![]);
    let (status, body) =
        post(&env, SoapVersion::Soap12, egisz_remd::write_register_document_result(SoapVersion::Soap12, &stray)).await;
    assert_eq!(status, 400);
    assert!(String::from_utf8_lossy(&body).contains("Fault"));

    // Garbage: a Sender fault, not a crash.
    let (status, body) = post(&env, SoapVersion::Soap12, b"<not-soap/>".to_vec()).await;
    assert!(status >= 400, "{status}");
    assert!(String::from_utf8_lossy(&body).contains("Fault"));

    // A registered document: REMD may pull it later by emdrId, in SOAP 1.1 too.
    let id = env.submit_sample(&key, "listener-1").await;
    let registered = env.wait_status(&key, &id, "registered").await;
    assert_eq!(registered["registered_at_source"], "remd", "REMD's registrationDateTime: {registered}");
    let emdr_id = registered["emdr_id"].as_str().unwrap().to_owned();
    let wrong_uid = DocumentFileRequest {
        message_id: "remd-3a".into(),
        relates_to_message: None,
        emdr_id: Some(emdr_id.clone()),
        local_uid: Some("someone-else".into()),
    };
    let (status, _) =
        post(&env, SoapVersion::Soap11, egisz_remd::write_get_document_file_request(SoapVersion::Soap11, &wrong_uid))
            .await;
    assert_ne!(status, 200, "an emdrId alone does not open a document");
    let by_emdr = DocumentFileRequest {
        message_id: "remd-3".into(),
        relates_to_message: None,
        emdr_id: Some(emdr_id.clone()),
        local_uid: Some("listener-1".into()),
    };
    let (status, body) =
        post(&env, SoapVersion::Soap11, egisz_remd::write_get_document_file_request(SoapVersion::Soap11, &by_emdr))
            .await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    let (_, file) = egisz_remd::read_get_document_file_response(&body).unwrap();
    let Response::Body(file) = file else { panic!("a fault") };
    assert_eq!(file.document, common::sample_as("listener-1").into_bytes());
    assert_eq!(file.checksum, egisz_remd::checksum(&file.document));

    // A late error result for that registration, twice: nothing changes.
    let events_before = registered["events"].as_array().unwrap().len();
    let ours = env.store().messages(uuid::Uuid::parse_str(&id).unwrap()).await.unwrap();
    assert_eq!(ours.len(), 1);
    let late = result(
        "remd-4",
        &ours[0],
        ResultStatus::Error,
        vec![RemdMessage { code: "INTERNAL_ERROR".into(), message: Personal("x".into()) }],
    );
    for _ in 0..2 {
        let (status, _) =
            post(&env, SoapVersion::Soap12, egisz_remd::write_register_document_result(SoapVersion::Soap12, &late))
                .await;
        assert_eq!(status, 200);
    }
    let after = env.document(&key, &id).await;
    assert_eq!(after["status"], "registered");
    assert_eq!(after["emdr_id"], emdr_id.as_str());
    assert_eq!(after["events"].as_array().unwrap().len(), events_before + 1, "only the later pull by emdrId was added");

    // REMD posting every result twice: registered once.
    env.gw.remd_sandbox().unwrap().set_faults(RemdFaults { duplicate_callback_rate: 1.0, ..RemdFaults::default() });
    let twice = env.submit_sample(&key, "listener-3").await;
    env.wait_status(&key, &twice, "registered").await;
    tokio::time::sleep(Duration::from_millis(500)).await;
    let d = env.document(&key, &twice).await;
    let registered_events = d["events"].as_array().unwrap().iter().filter(|e| e["status"] == "registered").count();
    assert_eq!(registered_events, 1, "{d}");
    env.shutdown().await;
}

async fn a_retry_code_in_a_result_goes_back_to_the_schedule(db: Db) {
    let env = TestEnv::start(db).await;
    let key = env.key(&[Role::Submitter, Role::Reader], &[MO_2917]).await;
    // REMD answers every registration with a transient error in its result.
    env.gw
        .remd_sandbox()
        .unwrap()
        .set_faults(RemdFaults { reject_codes: vec!["VALSYS_INTERNAL_ERROR".into()], ..RemdFaults::default() });
    let id = env.submit_sample(&key, "listener-2").await;
    let d = env.wait_status(&key, &id, "retry_wait").await;
    assert_eq!(d["errors"][0]["code"], "VALSYS_INTERNAL_ERROR");
    assert_eq!(d["errors"][0]["disposition"], "retry");
    assert!(d["next_attempt_at"].is_string());
    env.shutdown().await;
}
