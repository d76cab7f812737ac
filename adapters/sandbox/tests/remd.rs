//! The REMD emulator over real HTTP: registration end to end against a fake gateway
//! callback listener, the checks and their codes, faults, lookups, admin, shutdown.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::post;
use chrono::{DateTime, FixedOffset, NaiveDate, TimeDelta};
use egisz_contract::remd::{
    Coded, DocumentFileRequest, Patient, PersonalSignature, RegisterAck, RegisterDocument, RegisterResult,
    RegistryItem, ResultStatus, SearchQuery, SignatureData, Signer,
};
use egisz_contract::{Oid, Personal, Snils};
use egisz_remd::{
    Answer, DocumentFile, Fault, FaultCode, Incoming, ReplyHeader, Response as SoapResponse, SoapVersion, checksum,
    new_message_id, parse_incoming, read_get_registry_item_response, read_register_document_response,
    read_search_registry_item_response, write_fault, write_get_document_file_response, write_get_registry_item,
    write_register_document, write_register_document_result_response, write_search_registry_item,
};
use egisz_sandbox::remd::{CLIENT_ENTITY_ID, EMITTED_CODES};
use egisz_sandbox::{RemdFaults, RemdSandbox, RemdSandboxConfig, RemdStats};
use serde_json::Value;
use tokio::time::{Instant, sleep, timeout};

const SAMPLE: &[u8] = include_bytes!("data/tmk-protocol-40.xml");
const NSI_305: &str = include_str!("../data/nsi-305-remd-message-codes.tsv");
const MO_2917: &str = "1.2.643.5.1.13.13.12.2.42.2917";
const MO_3011: &str = "1.2.643.5.1.13.13.12.2.42.3011";
const SAMPLE_UID: &str = "5b0a3c1e-2f6d-4b8e-9a71-0c3d5e7f9a21";
const KOLPINSKAYA: &str = "20311784514";

// ---------------------------------------------------------------------------------------
// The gateway's callback listener, played with the codec
// ---------------------------------------------------------------------------------------

/// A fake REMD-facing listener of the gateway: serves `getDocumentFile` with the exact
/// bytes of each registerDocument MessageID, records the results.
#[derive(Default)]
struct GatewayState {
    documents: Mutex<HashMap<String, Vec<u8>>>,
    pulls: Mutex<Vec<DocumentFileRequest>>,
    results: Mutex<Vec<RegisterResult>>,
    /// The next N pulls get a bare 500.
    fail_pulls: AtomicU32,
    /// The next N results get a bare 500.
    fail_results: AtomicU32,
}

struct Gateway {
    state: Arc<GatewayState>,
    addr: SocketAddr,
}

impl Gateway {
    async fn start() -> Gateway {
        let state = Arc::new(GatewayState::default());
        let app = Router::new().route("/", post(callback)).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Gateway { state, addr }
    }

    fn url(&self) -> String {
        format!("http://{}/", self.addr)
    }

    fn store(&self, message_id: &str, bytes: &[u8]) {
        self.state.documents.lock().unwrap().insert(message_id.to_owned(), bytes.to_vec());
    }

    fn stored(&self, message_id: &str) -> Vec<u8> {
        self.state.documents.lock().unwrap()[message_id].clone()
    }

    fn results(&self) -> Vec<RegisterResult> {
        self.state.results.lock().unwrap().clone()
    }

    fn results_for(&self, message_id: &str) -> Vec<RegisterResult> {
        self.results().into_iter().filter(|r| r.relates_to_message == message_id).collect()
    }

    fn pulls(&self) -> Vec<DocumentFileRequest> {
        self.state.pulls.lock().unwrap().clone()
    }

    /// Waits for the (first) result of a registerDocument MessageID.
    async fn result(&self, message_id: &str) -> RegisterResult {
        let deadline = Instant::now() + Duration::from_secs(10);
        loop {
            if let Some(result) = self.results_for(message_id).into_iter().next() {
                return result;
            }
            assert!(Instant::now() < deadline, "no result for {message_id}");
            sleep(Duration::from_millis(10)).await;
        }
    }
}

fn soap(status: StatusCode, body: Vec<u8>) -> Response {
    (status, [("content-type", SoapVersion::Soap12.content_type(None))], body).into_response()
}

async fn callback(State(state): State<Arc<GatewayState>>, body: Bytes) -> Response {
    let (envelope, incoming) = parse_incoming(&body).expect("the sandbox's calls are readable");
    let reply = ReplyHeader::answering(&envelope);
    let take =
        |counter: &AtomicU32| counter.fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1)).is_ok();
    match incoming {
        Incoming::GetDocumentFile(request) => {
            state.pulls.lock().unwrap().push(request.clone());
            if take(&state.fail_pulls) {
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
            let key = request.relates_to_message.clone().unwrap_or_default();
            let document = state.documents.lock().unwrap().get(&key).cloned();
            match document {
                Some(bytes) => soap(
                    StatusCode::OK,
                    write_get_document_file_response(envelope.version, &reply, &DocumentFile::new(bytes)),
                ),
                None => {
                    soap(StatusCode::BAD_REQUEST, write_fault(envelope.version, &reply, &Fault::wrong_message_id()))
                }
            }
        }
        Incoming::RegisterResult(result) => {
            if take(&state.fail_results) {
                return StatusCode::INTERNAL_SERVER_ERROR.into_response();
            }
            state.results.lock().unwrap().push(result);
            soap(StatusCode::OK, write_register_document_result_response(envelope.version, &reply))
        }
    }
}

// ---------------------------------------------------------------------------------------
// Requests
// ---------------------------------------------------------------------------------------

/// A signer of the document and of the request.
#[derive(Clone)]
struct Person {
    snils: &'static str,
    last: &'static str,
    first: &'static str,
    middle: &'static str,
    position: &'static str,
}

const KOLPINSKAYA_73: Person =
    Person {
        snils: KOLPINSKAYA, last: "Колпинская", first: "Светлана", middle: "Александровна", position: "73"
    };

/// The sample with another `localUid` and another author/legal authenticator.
fn document(uid: &str, person: &Person) -> Vec<u8> {
    let text = std::str::from_utf8(SAMPLE).unwrap();
    text.replace(SAMPLE_UID, uid)
        .replace(KOLPINSKAYA, person.snils)
        .replace("<family>Колпинская</family>", &format!("<family>{}</family>", person.last))
        .replace("<given>Светлана</given>", &format!("<given>{}</given>", person.first))
        .replace("<given>Александровна</given>", &format!("<given>{}</given>", person.middle))
        .replace(r#"<code code="73" "#, &format!(r#"<code code="{}" "#, person.position))
        .replace(r#"displayName="врач-офтальмолог""#, &format!(r#"displayName="{}""#, position_name(person.position)))
        .into_bytes()
}

/// NSI 1002 names of the positions the tests use (the roster's `fedPosition`).
fn position_name(code: &str) -> &'static str {
    match code {
        "73" => "врач-офтальмолог",
        "49" => "врач-терапевт участковый",
        "89" => "врач-хирург",
        other => panic!("no name for position {other}"),
    }
}

fn fresh_uid() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// The registerDocument request for `bytes` of the sample's form, signed by `person`.
fn request(bytes: &[u8], uid: &str, person: &Person) -> RegisterDocument {
    let p = |s: &str| Personal(s.to_owned());
    let coded = |code: &str, version: &str| Coded { code: code.to_owned(), version: version.to_owned() };
    // Signed with the sandbox's test CA, which the emulator trusts, in the person's name.
    let gost = egisz_gost::Gost::load().expect("the GOST engine (libengine-gost-openssl)");
    let ca = egisz_gost::test_pki::TestCa::new(gost, egisz_gost::test_pki::SANDBOX_CA_SEED);
    // 2010-01-01 … 2040-01-01.
    let signer = ca.issue_doctor(person.snils, person.snils, 1_262_304_000, 2_208_988_800);
    let cms = signer.sign_detached(bytes);
    RegisterDocument {
        message_id: new_message_id(),
        kind: 40,
        organization: Oid::parse(MO_2917).unwrap(),
        department: None,
        local_uid: uid.to_owned(),
        creation_date_time: DateTime::parse_from_rfc3339("2023-08-18T10:15:00+07:00").unwrap(),
        patient: Patient {
            local_id: "P-0048213".to_owned(),
            snils: Some(Snils::parse("15643219866").unwrap()),
            surname: p("Павлова"),
            name: p("Елена"),
            patr_name: Some(p("Сергеевна")),
            birth_date: Personal(NaiveDate::from_ymd_opt(1997, 8, 5).unwrap()),
            gender: 2,
        },
        checksum: checksum(bytes),
        personal_signatures: vec![PersonalSignature {
            signer: Signer {
                local_id: "D-1187".to_owned(),
                role: coded("1", "2.4"),
                last_name: p(person.last),
                first_name: p(person.first),
                middle_name: Some(p(person.middle)),
                snils: Snils::parse(person.snils).unwrap(),
                position: coded(person.position, "7.5"),
                speciality: None,
                department: None,
            },
            signature: SignatureData { checksum: checksum(&cms), data: cms },
        }],
        org_signature: None,
    }
}

/// A document for `person` under a fresh uid, stored at the gateway, and its request.
fn prepared(gateway: &Gateway, person: &Person) -> (RegisterDocument, Vec<u8>) {
    let uid = fresh_uid();
    let bytes = document(&uid, person);
    let request = request(&bytes, &uid, person);
    gateway.store(&request.message_id, &bytes);
    (request, bytes)
}

fn client() -> reqwest::Client {
    client_with_timeout(Duration::from_secs(10))
}

fn client_with_timeout(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(timeout).build().unwrap()
}

async fn post_soap(client: &reqwest::Client, url: &str, body: Vec<u8>) -> reqwest::Result<(StatusCode, Vec<u8>)> {
    let response = client
        .post(url)
        .header("content-type", SoapVersion::Soap12.content_type(Some("registerDocument")))
        .body(body)
        .send()
        .await?;
    let status = response.status();
    Ok((status, response.bytes().await?.to_vec()))
}

/// Sends registerDocument; the HTTP status and the sync answer read with the codec.
async fn register(remd: &RemdSandbox, request: &RegisterDocument) -> (StatusCode, SoapResponse<RegisterAck>) {
    let (status, body) =
        post_soap(&client(), &remd.endpoint(), write_register_document(request, CLIENT_ENTITY_ID)).await.unwrap();
    let (_, answer) = read_register_document_response(&body).expect("a readable answer");
    (status, answer)
}

async fn register_accepted(remd: &RemdSandbox, request: &RegisterDocument) {
    let (status, answer) = register(remd, request).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(answer, SoapResponse::Body(RegisterAck::Accepted));
}

async fn start(gateway: &Gateway) -> RemdSandbox {
    start_with(gateway, RemdFaults::default()).await
}

async fn start_with(gateway: &Gateway, faults: RemdFaults) -> RemdSandbox {
    let config = RemdSandboxConfig {
        callback_url: Some(gateway.url()),
        faults,
        processing_delay: Duration::from_millis(20),
        ..RemdSandboxConfig::default()
    };
    RemdSandbox::start(config).await.expect("sandbox starts")
}

async fn wait_for_stats(remd: &RemdSandbox, what: impl Fn(&RemdStats) -> bool) -> RemdStats {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let stats = remd.stats();
        if what(&stats) {
            return stats;
        }
        assert!(Instant::now() < deadline, "stats never matched: {stats:?}");
        sleep(Duration::from_millis(10)).await;
    }
}

fn codes(result: &RegisterResult) -> Vec<&str> {
    result.errors.iter().map(|e| e.code.as_str()).collect()
}

fn is_emdr_id(id: &str) -> bool {
    let Some(counter) = id.strip_prefix("16.62.23.09.") else { return false };
    counter.len() == 9 && counter.bytes().all(|b| b.is_ascii_digit())
}

// ---------------------------------------------------------------------------------------
// Registration
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn accepted_document_is_pulled_checked_registered_and_reported() {
    let gateway = Gateway::start().await;
    let remd = start(&gateway).await;
    let request = request(SAMPLE, SAMPLE_UID, &KOLPINSKAYA_73);
    gateway.store(&request.message_id, SAMPLE);

    register_accepted(&remd, &request).await;
    let result = gateway.result(&request.message_id).await;
    assert_eq!(result.status, ResultStatus::Success, "{:?}", codes(&result));
    assert!(result.errors.is_empty());
    assert_eq!(result.kind, Some(40));
    assert_eq!(result.organization.as_deref(), Some(MO_2917));
    assert_eq!(result.local_uid.as_deref(), Some(SAMPLE_UID));
    assert_eq!(result.creation_date_time, Some(request.creation_date_time));
    let item = result.registry_item.clone().expect("a registry item");
    assert!(is_emdr_id(&item.emdr_id), "{}", item.emdr_id);
    assert_eq!(item.document_version.as_deref(), Some("1"));
    assert!(item.store_till_date.is_some());

    // The file was pulled by the request's MessageID, once, and is stored byte for byte.
    let pulls = gateway.pulls();
    assert_eq!(pulls.len(), 1);
    assert_eq!(pulls[0].relates_to_message.as_deref(), Some(request.message_id.as_str()));
    assert_eq!(pulls[0].local_uid.as_deref(), Some(SAMPLE_UID));
    let registry = remd.registry();
    assert_eq!(registry.len(), 1);
    let entry = &registry[0];
    assert_eq!(entry.emdr_id, item.emdr_id);
    assert_eq!(entry.document, SAMPLE);
    assert_eq!(entry.checksum, checksum(SAMPLE));
    assert_eq!((entry.organization.as_str(), entry.kind, entry.local_uid.as_str()), (MO_2917, 40, SAMPLE_UID));
    assert_eq!(entry.registered_at.offset().local_minus_utc(), 7 * 3600);
    assert_eq!(item.registration_date_time, Some(entry.registered_at));
    assert!(!format!("{entry:?}").contains("ClinicalDocument"));

    let stats = wait_for_stats(&remd, |s| s.results_posted == 1).await;
    assert_eq!(
        stats,
        RemdStats { register_calls: 1, accepted: 1, file_pulls: 1, results_posted: 1, ..RemdStats::default() }
    );
    assert_eq!(remd.register_call_times().len(), 1);
    remd.shutdown().await;
}

#[tokio::test]
async fn emdr_ids_count_up_with_the_configured_prefix() {
    let gateway = Gateway::start().await;
    let config = RemdSandboxConfig {
        callback_url: None,
        emdr_prefix: "1.2.3".to_owned(),
        processing_delay: Duration::ZERO,
        keep_documents: false,
        ..RemdSandboxConfig::default()
    };
    let remd = RemdSandbox::start(config).await.unwrap();
    assert_eq!(remd.callback_url(), None);
    remd.set_callback_url(gateway.url());
    let mut ids = Vec::new();
    for _ in 0..2 {
        let (request, _) = prepared(&gateway, &KOLPINSKAYA_73);
        register_accepted(&remd, &request).await;
        ids.push(gateway.result(&request.message_id).await.registry_item.unwrap().emdr_id);
    }
    assert_eq!(ids, ["1.2.3.000000001", "1.2.3.000000002"]);
    assert!(remd.registry().iter().all(|e| e.document.is_empty()), "keep_documents: false");
    remd.shutdown().await;
}

#[tokio::test]
async fn the_same_local_uid_is_never_registered_twice() {
    let gateway = Gateway::start().await;
    let remd = start(&gateway).await;
    let (first, bytes) = prepared(&gateway, &KOLPINSKAYA_73);
    register_accepted(&remd, &first).await;
    assert_eq!(gateway.result(&first.message_id).await.status, ResultStatus::Success);

    // Sent again later (a resend after a timeout): refused without pulling.
    let mut again = first.clone();
    again.message_id = new_message_id();
    gateway.store(&again.message_id, &bytes);
    register_accepted(&remd, &again).await;
    let result = gateway.result(&again.message_id).await;
    assert_eq!(result.status, ResultStatus::Error);
    assert_eq!(codes(&result), ["NOT_UNIQUE_PROVIDED_ID"]);
    assert!(result.registry_item.is_none());
    assert_eq!(gateway.pulls().len(), 1, "a known localUid is refused before the pull");

    // Three at once with a new localUid: exactly one is registered.
    let (base, bytes) = prepared(&gateway, &KOLPINSKAYA_73);
    let copies: Vec<RegisterDocument> = (0..3)
        .map(|_| {
            let mut copy = base.clone();
            copy.message_id = new_message_id();
            gateway.store(&copy.message_id, &bytes);
            copy
        })
        .collect();
    futures::future::join_all(copies.iter().map(|r| register_accepted(&remd, r))).await;
    let mut outcomes = Vec::new();
    for copy in &copies {
        let result = gateway.result(&copy.message_id).await;
        outcomes.push((result.status.clone(), codes(&result).join(",")));
    }
    outcomes.sort_by_key(|(status, _)| *status == ResultStatus::Error);
    assert_eq!(outcomes[0], (ResultStatus::Success, String::new()));
    for outcome in &outcomes[1..] {
        assert_eq!(outcome, &(ResultStatus::Error, "NOT_UNIQUE_PROVIDED_ID".to_owned()));
    }
    let registry = remd.registry();
    assert_eq!(registry.len(), 2);
    assert_eq!(registry.iter().filter(|e| e.local_uid == base.local_uid).count(), 1);
    remd.shutdown().await;
}

/// Registers `request` (its document stored at the gateway) and returns the result.
async fn outcome(gateway: &Gateway, remd: &RemdSandbox, request: &RegisterDocument) -> RegisterResult {
    register_accepted(remd, request).await;
    gateway.result(&request.message_id).await
}

#[tokio::test]
async fn a_crc_mismatch_is_refused() {
    let gateway = Gateway::start().await;
    let remd = start(&gateway).await;
    let (mut request, _) = prepared(&gateway, &KOLPINSKAYA_73);
    request.checksum = request.checksum.wrapping_add(1);
    let result = outcome(&gateway, &remd, &request).await;
    assert_eq!(result.status, ResultStatus::Error);
    assert_eq!(codes(&result), ["DIGEST_MISMATCH"]);
    assert_eq!(
        result.errors[0].message.expose(),
        "Хеш-сумма документа, полученного из предоставляющей системы, не соответсвует зарегистрированной в РЭМД"
    );
    assert!(remd.registry().is_empty());
    remd.shutdown().await;
}

#[tokio::test]
async fn signers_are_checked_against_the_frmr_roster_on_the_creation_date() {
    let gateway = Gateway::start().await;
    let remd = start(&gateway).await;
    let cases = [
        // A valid SNILS that is not in FRMR.
        (
            Person {
                snils: "11223344595", last: "Иванов", first: "Иван", middle: "Иванович", position: "73"
            },
            "PERSON_NOT_FOUND",
        ),
        // Dismissed from 2917 on 2022-12-31; the document is of 2023-08-18.
        (
            Person {
                snils: "17450296372", last: "Тарасов", first: "Игорь", middle: "Викторович", position: "49"
            },
            "PERSON_CARD_NOT_FOUND",
        ),
        // Her card in 2917 is position 73.
        (Person { position: "49", ..KOLPINSKAYA_73 }, "PERSON_POST_IN_FRMR_MISMATCH"),
        // FRMR knows her under another patronymic.
        (Person { middle: "Петровна", ..KOLPINSKAYA_73 }, "VALUE_MISMATCH_METADATA_AND_FRMR"),
    ];
    for (person, expected) in cases {
        let (request, _) = prepared(&gateway, &person);
        let result = outcome(&gateway, &remd, &request).await;
        assert_eq!(result.status, ResultStatus::Error, "{expected}");
        assert_eq!(codes(&result), [expected]);
        let text = result.errors[0].message.expose();
        assert!(text.ends_with("(подписант №1)"), "{text}");
        assert!(!text.contains(person.snils) && !text.contains(person.last), "{text}");
    }
    assert!(remd.registry().is_empty());
    remd.shutdown().await;
}

#[tokio::test]
async fn the_request_is_checked_against_the_document() {
    let gateway = Gateway::start().await;
    let remd = start(&gateway).await;

    // Kind 119 (code 5) for a document of code 36.
    let (mut request, _) = prepared(&gateway, &KOLPINSKAYA_73);
    request.kind = 119;
    assert_eq!(codes(&outcome(&gateway, &remd, &request).await), ["INVALID_CONTENT"]);

    // A kind the sandbox does not know.
    let (mut request, _) = prepared(&gateway, &KOLPINSKAYA_73);
    request.kind = 9999;
    assert_eq!(codes(&outcome(&gateway, &remd, &request).await), ["OBJECT_NOT_FOUND"]);

    // Kind 160 (TMK cross-border) exists only from 2023-08-28, and has code 372.
    let (mut request, _) = prepared(&gateway, &KOLPINSKAYA_73);
    request.kind = 160;
    assert_eq!(codes(&outcome(&gateway, &remd, &request).await), ["INVALID_CONTENT", "NO_DOCUMENT_KIND_ON_DATE"]);

    // Another organisation than the custodian (where she has no card either).
    let (mut request, _) = prepared(&gateway, &KOLPINSKAYA_73);
    request.organization = Oid::parse(MO_3011).unwrap();
    assert_eq!(codes(&outcome(&gateway, &remd, &request).await), ["ATTRIBUTE_MISMATCH", "PERSON_CARD_NOT_FOUND"]);

    // localUid and creation time that are not the document's.
    let (mut request, _) = prepared(&gateway, &KOLPINSKAYA_73);
    request.local_uid = fresh_uid();
    request.creation_date_time += TimeDelta::hours(1);
    assert_eq!(codes(&outcome(&gateway, &remd, &request).await), ["ATTRIBUTE_MISMATCH", "ATTRIBUTE_MISMATCH"]);

    // A signer who is not in the document, and the legal authenticator who did not sign.
    let (mut request, _) = prepared(&gateway, &KOLPINSKAYA_73);
    let other = Person {
        snils: "34786502816", last: "Гришин", first: "Алексей", middle: "Николаевич", position: "89"
    };
    let bytes = gateway.stored(&request.message_id);
    request.personal_signatures = self::request(&bytes, "x", &other).personal_signatures;
    assert_eq!(
        codes(&outcome(&gateway, &remd, &request).await),
        ["INVALID_DOCTOR_SNILS", "LEGAL_AUTHENTICATOR_NOT_FOUND"]
    );

    // No signature at all.
    let (mut request, _) = prepared(&gateway, &KOLPINSKAYA_73);
    request.personal_signatures.clear();
    assert_eq!(codes(&outcome(&gateway, &remd, &request).await), ["NO_SIGNATURE"]);

    // Not a CDA document.
    let uid = fresh_uid();
    let not_cda = b"%PDF-1.4 not a CDA document".to_vec();
    let request = self::request(&not_cda, &uid, &KOLPINSKAYA_73);
    gateway.store(&request.message_id, &not_cda);
    assert_eq!(codes(&outcome(&gateway, &remd, &request).await), ["INVALID_DOC_CONTENT_TYPE"]);

    assert!(remd.registry().is_empty());
    remd.shutdown().await;
}

#[tokio::test]
async fn pulls_are_retried_then_fail_with_get_document_file_error() {
    let gateway = Gateway::start().await;
    let remd = start(&gateway).await;

    // Two failed pulls, the third succeeds.
    gateway.state.fail_pulls.store(2, Ordering::Release);
    let (request, _) = prepared(&gateway, &KOLPINSKAYA_73);
    assert_eq!(outcome(&gateway, &remd, &request).await.status, ResultStatus::Success);
    assert_eq!(remd.stats().file_pulls, 3);

    // Every pull fails.
    gateway.state.fail_pulls.store(100, Ordering::Release);
    let (request, _) = prepared(&gateway, &KOLPINSKAYA_73);
    assert_eq!(codes(&outcome(&gateway, &remd, &request).await), ["GET_DOCUMENT_FILE_ERROR"]);
    assert_eq!(remd.stats().file_pulls, 6);
    gateway.state.fail_pulls.store(0, Ordering::Release);

    // The gateway does not know the message (WRONG_MESSAGE_ID fault): no retry.
    let request = request_without_document();
    assert_eq!(codes(&outcome(&gateway, &remd, &request).await), ["GET_DOCUMENT_FILE_ERROR"]);
    assert_eq!(remd.stats().file_pulls, 7);
    assert_eq!(remd.registry().len(), 1);
    remd.shutdown().await;
}

fn request_without_document() -> RegisterDocument {
    let uid = fresh_uid();
    request(&document(&uid, &KOLPINSKAYA_73), &uid, &KOLPINSKAYA_73)
}

#[tokio::test]
async fn reject_codes_turn_every_result_into_that_error() {
    let gateway = Gateway::start().await;
    let remd = start_with(
        &gateway,
        RemdFaults { reject_codes: vec!["PERSON_POST_IN_FRMR_MISMATCH".to_owned()], ..RemdFaults::default() },
    )
    .await;
    let (request, _) = prepared(&gateway, &KOLPINSKAYA_73);
    let result = outcome(&gateway, &remd, &request).await;
    assert_eq!(codes(&result), ["PERSON_POST_IN_FRMR_MISMATCH"]);
    assert_eq!(
        result.errors[0].message.expose(),
        "Переданная должность сотрудника не соответствует должности, зарегистрированной в ФРМР"
    );
    assert!(remd.registry().is_empty());
    remd.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// Faults
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn rate_limit_refuses_calls_above_the_limit_in_a_window() {
    let gateway = Gateway::start().await;
    let remd = start_with(&gateway, RemdFaults { rate_limit_per_second: Some(5), ..RemdFaults::default() }).await;
    let requests: Vec<RegisterDocument> = (0..20).map(|_| prepared(&gateway, &KOLPINSKAYA_73).0).collect();
    let answers = futures::future::join_all(requests.iter().map(|r| register(&remd, r))).await;

    let mut accepted = 0;
    for (status, answer) in answers {
        assert_eq!(status, StatusCode::OK);
        match answer {
            SoapResponse::Body(RegisterAck::Accepted) => accepted += 1,
            SoapResponse::Body(RegisterAck::Rejected(errors)) => {
                assert_eq!(errors.len(), 1);
                assert_eq!(errors[0].code, "RATE_LIMIT");
                assert_eq!(
                    errors[0].message.expose(),
                    "Достигнут защитный лимит, просьба повторить через минуту или позже"
                );
            }
            other => panic!("unexpected answer {other:?}"),
        }
    }
    let times = remd.register_call_times();
    assert_eq!(times.len(), 20);
    let span = *times.last().unwrap() - times[0];
    if span < Duration::from_secs(1) {
        assert_eq!(accepted, 5, "all 20 calls fell into one window");
    } else {
        assert!((5..=10).contains(&accepted), "{accepted} accepted over {span:?}");
    }
    let stats = remd.stats();
    assert_eq!((stats.register_calls, stats.accepted, stats.rate_limited), (20, accepted, 20 - accepted));

    // The next window admits again.
    sleep(Duration::from_millis(1100)).await;
    register_accepted(&remd, &prepared(&gateway, &KOLPINSKAYA_73).0).await;
    remd.shutdown().await;
}

#[tokio::test]
async fn sync_faults_and_503_register_nothing() {
    let gateway = Gateway::start().await;
    let remd = start_with(&gateway, RemdFaults { fail_next_sync: 2, ..RemdFaults::default() }).await;
    for _ in 0..2 {
        let (request, _) = prepared(&gateway, &KOLPINSKAYA_73);
        let (status, answer) = register(&remd, &request).await;
        assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);
        let SoapResponse::Fault(fault) = answer else { panic!("a fault: {answer:?}") };
        assert_eq!(fault.code, FaultCode::Receiver);
        assert_eq!(fault.remd_code(), Some("INTERNAL_ERROR"));
    }
    assert_eq!(remd.faults().fail_next_sync, 0);

    remd.set_faults(RemdFaults { sync_fault_rate: 1.0, ..RemdFaults::default() });
    let (status, _) = register(&remd, &prepared(&gateway, &KOLPINSKAYA_73).0).await;
    assert_eq!(status, StatusCode::INTERNAL_SERVER_ERROR);

    remd.set_faults(RemdFaults { sync_5xx_rate: 1.0, ..RemdFaults::default() });
    let (request, _) = prepared(&gateway, &KOLPINSKAYA_73);
    let (status, body) =
        post_soap(&client(), &remd.endpoint(), write_register_document(&request, CLIENT_ENTITY_ID)).await.unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE);
    assert!(body.is_empty(), "a bare 503");

    remd.set_faults(RemdFaults::default());
    let (request, _) = prepared(&gateway, &KOLPINSKAYA_73);
    assert_eq!(outcome(&gateway, &remd, &request).await.status, ResultStatus::Success);
    sleep(Duration::from_millis(200)).await;
    assert_eq!(remd.registry().len(), 1, "faulted calls are not registered");
    assert_eq!(gateway.results().len(), 1);
    let stats = remd.stats();
    assert_eq!((stats.register_calls, stats.faulted, stats.accepted), (5, 4, 1));
    remd.shutdown().await;
}

#[tokio::test]
async fn accepted_then_silent_times_out_yet_registers_and_reports() {
    let gateway = Gateway::start().await;
    let remd = start_with(&gateway, RemdFaults { accept_then_silent_rate: 1.0, ..RemdFaults::default() }).await;
    let (request, bytes) = prepared(&gateway, &KOLPINSKAYA_73);
    let body = write_register_document(&request, CLIENT_ENTITY_ID);
    let started = Instant::now();
    let error = post_soap(&client_with_timeout(Duration::from_secs(1)), &remd.endpoint(), body).await.unwrap_err();
    assert!(error.is_timeout(), "{error}");
    assert!(started.elapsed() >= Duration::from_secs(1));

    let result = gateway.result(&request.message_id).await;
    assert_eq!(result.status, ResultStatus::Success);
    let registry = remd.registry();
    assert_eq!(registry.len(), 1);
    assert_eq!(registry[0].document, bytes);
    let stats = remd.stats();
    assert_eq!((stats.accepted, stats.silent, stats.results_posted), (1, 1, 1));
    remd.shutdown().await;
}

#[tokio::test]
async fn lost_duplicated_and_delayed_results() {
    let gateway = Gateway::start().await;
    let remd = start_with(&gateway, RemdFaults { lost_callback_rate: 1.0, ..RemdFaults::default() }).await;

    // Lost: registered, never posted.
    let (lost, _) = prepared(&gateway, &KOLPINSKAYA_73);
    register_accepted(&remd, &lost).await;
    wait_for_stats(&remd, |s| s.results_lost == 1).await;
    assert_eq!(remd.registry().len(), 1);
    sleep(Duration::from_millis(200)).await;
    assert!(gateway.results().is_empty());

    // Duplicated: posted twice, as two calls about the same registration.
    remd.set_faults(RemdFaults { duplicate_callback_rate: 1.0, ..RemdFaults::default() });
    let (twice, _) = prepared(&gateway, &KOLPINSKAYA_73);
    register_accepted(&remd, &twice).await;
    wait_for_stats(&remd, |s| s.results_posted == 2).await;
    let results = gateway.results_for(&twice.message_id);
    assert_eq!(results.len(), 2);
    assert_ne!(results[0].message_id, results[1].message_id);
    assert_eq!(results[0].registry_item, results[1].registry_item);
    assert_eq!(remd.registry().len(), 2);

    // Delayed: the result comes no sooner than the delay.
    remd.set_faults(RemdFaults { callback_delay_ms: 400, ..RemdFaults::default() });
    let (late, _) = prepared(&gateway, &KOLPINSKAYA_73);
    let sent = Instant::now();
    register_accepted(&remd, &late).await;
    gateway.result(&late.message_id).await;
    assert!(sent.elapsed() >= Duration::from_millis(400), "{:?}", sent.elapsed());
    remd.shutdown().await;
}

#[tokio::test]
async fn result_posts_are_retried() {
    let gateway = Gateway::start().await;
    let remd = start(&gateway).await;
    gateway.state.fail_results.store(2, Ordering::Release);
    let (request, _) = prepared(&gateway, &KOLPINSKAYA_73);
    assert_eq!(outcome(&gateway, &remd, &request).await.status, ResultStatus::Success);
    let stats = wait_for_stats(&remd, |s| s.results_posted == 1).await;
    assert_eq!(stats.results_lost, 0);
    assert_eq!(gateway.results().len(), 1);
    remd.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// Lookups, clients, malformed requests
// ---------------------------------------------------------------------------------------

async fn search(remd: &RemdSandbox, query: &SearchQuery) -> Vec<RegistryItem> {
    let body = write_search_registry_item(query, &new_message_id(), CLIENT_ENTITY_ID);
    let (status, answer) = post_soap(&client(), &remd.endpoint(), body).await.unwrap();
    assert_eq!(status, StatusCode::OK);
    match read_search_registry_item_response(&answer).unwrap().1 {
        SoapResponse::Body(Answer::Success(items)) => items,
        other => panic!("unexpected answer {other:?}"),
    }
}

async fn get(remd: &RemdSandbox, emdr_id: &str) -> Answer<Option<RegistryItem>> {
    let body = write_get_registry_item(emdr_id, &new_message_id(), CLIENT_ENTITY_ID);
    let (status, answer) = post_soap(&client(), &remd.endpoint(), body).await.unwrap();
    assert_eq!(status, StatusCode::OK);
    match read_get_registry_item_response(&answer).unwrap().1 {
        SoapResponse::Body(answer) => answer,
        other => panic!("unexpected answer {other:?}"),
    }
}

#[tokio::test]
async fn search_and_get_read_the_registry() {
    let gateway = Gateway::start().await;
    let remd = start(&gateway).await;
    let before: DateTime<FixedOffset> = chrono::Utc::now().into();
    let mut registered = Vec::new();
    for _ in 0..2 {
        let (request, _) = prepared(&gateway, &KOLPINSKAYA_73);
        let item = outcome(&gateway, &remd, &request).await.registry_item.unwrap();
        registered.push((request.local_uid.clone(), item.emdr_id));
    }
    let after: DateTime<FixedOffset> = (chrono::Utc::now() + TimeDelta::seconds(1)).into();

    let query = SearchQuery {
        organization: Oid::parse(MO_2917).unwrap(),
        kind: Some(40),
        register_date_begin: Some(before - TimeDelta::seconds(1)),
        register_date_end: Some(after),
        patient_snils: None,
    };
    let items = search(&remd, &query).await;
    let found: Vec<(String, String)> =
        items.iter().map(|i| (i.local_uid.clone().unwrap(), i.emdr_id.clone())).collect();
    assert_eq!(found, registered);
    assert!(items.iter().all(|i| i.kind == Some(40) && i.registration_date_time.is_some()));
    let patient = Some(Snils::parse("15643219866").unwrap());
    assert_eq!(search(&remd, &SearchQuery { patient_snils: patient, ..query.clone() }).await.len(), 2);
    assert!(
        search(&remd, &SearchQuery { register_date_end: Some(before - TimeDelta::seconds(1)), ..query.clone() })
            .await
            .is_empty()
    );
    assert!(search(&remd, &SearchQuery { kind: Some(119), ..query.clone() }).await.is_empty());
    assert!(
        search(&remd, &SearchQuery { organization: Oid::parse(MO_3011).unwrap(), ..query.clone() }).await.is_empty()
    );

    let Answer::Success(Some(item)) = get(&remd, &registered[1].1).await else { panic!("found") };
    assert_eq!(item.local_uid.as_deref(), Some(registered[1].0.as_str()));
    assert_eq!(item.emdr_id, registered[1].1);
    let Answer::Error(errors) = get(&remd, "16.62.23.09.999999999").await else { panic!("not found") };
    assert_eq!(errors[0].code, "REGISTRY_ITEM_NOT_FOUND");

    let stats = remd.stats();
    assert_eq!((stats.search_calls, stats.get_calls), (5, 2));
    remd.shutdown().await;
}

#[tokio::test]
async fn an_unknown_client_gets_no_rmis_and_a_malformed_request_a_sender_fault() {
    let gateway = Gateway::start().await;
    let remd = start(&gateway).await;
    let (request, _) = prepared(&gateway, &KOLPINSKAYA_73);
    let other_client = "00000000-0000-4000-8000-000000000000";
    let query = SearchQuery {
        organization: Oid::parse(MO_2917).unwrap(),
        kind: None,
        register_date_begin: None,
        register_date_end: None,
        patient_snils: None,
    };
    for body in [
        write_register_document(&request, other_client),
        write_search_registry_item(&query, &new_message_id(), other_client),
        write_get_registry_item("16.62.23.09.000000001", &new_message_id(), other_client),
    ] {
        let (status, answer) = post_soap(&client(), &remd.endpoint(), body).await.unwrap();
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (envelope, SoapResponse::Fault(fault)) = read_register_document_response(&answer).unwrap() else {
            panic!("a fault")
        };
        assert_eq!(fault.code, FaultCode::Sender);
        assert_eq!(fault.remd_code(), Some("NO_RMIS"));
        assert!(envelope.relates_to.is_some());
    }

    for body in [
        b"not xml at all".to_vec(),
        br#"<soap:Envelope xmlns:soap="http://www.w3.org/2003/05/soap-envelope"><soap:Body><x/></soap:Body></soap:Envelope>"#.to_vec(),
        // A registerDocument without a MessageID.
        String::from_utf8(write_register_document(&request, CLIENT_ENTITY_ID))
            .unwrap()
            .replace("wsa:MessageID", "wsa:Other")
            .into_bytes(),
    ] {
        let (status, answer) = post_soap(&client(), &remd.endpoint(), body).await.unwrap();
        assert_eq!(status, StatusCode::BAD_REQUEST);
        let (_, SoapResponse::Fault(fault)) = read_register_document_response(&answer).unwrap() else {
            panic!("a fault")
        };
        assert_eq!(fault.code, FaultCode::Sender);
    }

    // Other paths and methods.
    let root = remd.endpoint().replace("/port/emdr", "");
    assert_eq!(client().get(remd.endpoint()).send().await.unwrap().status(), StatusCode::METHOD_NOT_ALLOWED);
    assert_eq!(client().post(format!("{root}/other")).send().await.unwrap().status(), StatusCode::NOT_FOUND);

    assert_eq!(remd.stats(), RemdStats::default(), "none of these reached an operation");
    assert!(gateway.results().is_empty());
    remd.shutdown().await;
}

// ---------------------------------------------------------------------------------------
// Admin, shutdown, codes
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn admin_endpoints_read_and_steer_the_sandbox() {
    let gateway = Gateway::start().await;
    let remd = start_with(&gateway, RemdFaults { sync_5xx_rate: 1.0, ..RemdFaults::default() }).await;
    let admin = remd.admin_url();
    let http = client();

    // Faults never apply to admin paths.
    let faults: Value = http.get(format!("{admin}/faults")).send().await.unwrap().json().await.unwrap();
    assert_eq!(faults["sync_5xx_rate"], 1.0);

    let response =
        http.put(format!("{admin}/faults")).json(&serde_json::json!({"callback_delay_ms": 5})).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let faults: Value = response.json().await.unwrap();
    assert_eq!(faults["callback_delay_ms"], 5);
    assert_eq!(faults["sync_5xx_rate"], 0.0, "PUT replaces the faults");
    assert_eq!(remd.faults(), RemdFaults { callback_delay_ms: 5, ..RemdFaults::default() });

    let response =
        http.put(format!("{admin}/faults")).json(&serde_json::json!({"lost_callback_rate": 1.5})).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::UNPROCESSABLE_ENTITY);
    let response =
        http.put(format!("{admin}/faults")).body("{").header("content-type", "application/json").send().await.unwrap();
    assert!(response.status().is_client_error());
    assert_eq!(remd.faults().callback_delay_ms, 5, "refused PUTs change nothing");

    let (request, _) = prepared(&gateway, &KOLPINSKAYA_73);
    outcome(&gateway, &remd, &request).await;
    let expected = wait_for_stats(&remd, |s| s.results_posted == 1).await;
    let stats: RemdStats = http.get(format!("{admin}/stats")).send().await.unwrap().json().await.unwrap();
    assert_eq!(stats, expected);

    let registry: Value = http.get(format!("{admin}/registry")).send().await.unwrap().json().await.unwrap();
    let entries = registry.as_array().unwrap();
    assert_eq!(entries.len(), 1);
    let entry = entries[0].as_object().unwrap();
    assert_eq!(entry["local_uid"], request.local_uid.as_str());
    assert_eq!(entry["emdr_id"], remd.registry()[0].emdr_id.as_str());
    assert!(entry["document_bytes"].as_u64().unwrap() > 1000);
    assert!(!entry.contains_key("document"), "no document bytes on the admin path");
    remd.shutdown().await;
}

#[tokio::test]
async fn shutdown_is_prompt_with_a_silent_connection_held() {
    let gateway = Gateway::start().await;
    let remd = start_with(&gateway, RemdFaults { accept_then_silent_rate: 1.0, ..RemdFaults::default() }).await;
    let (request, _) = prepared(&gateway, &KOLPINSKAYA_73);
    let body = write_register_document(&request, CLIENT_ENTITY_ID);
    let endpoint = remd.endpoint();
    let held =
        tokio::spawn(async move { post_soap(&client_with_timeout(Duration::from_secs(60)), &endpoint, body).await });
    wait_for_stats(&remd, |s| s.silent == 1).await;

    let started = Instant::now();
    timeout(Duration::from_secs(3), remd.shutdown()).await.expect("shutdown is prompt");
    assert!(started.elapsed() < Duration::from_secs(3));
    let answer = timeout(Duration::from_secs(3), held).await.expect("the held call ends").unwrap();
    assert!(answer.is_err(), "the held call never gets an answer: {answer:?}");
}

/// The gateway's own client (`egisz_remd::RemdClient`) against the sandbox: every answer
/// the sandbox gives is classified as the relay expects.
#[tokio::test]
async fn the_remd_client_understands_every_answer() {
    use egisz_contract::remd::RemdRegistry;
    use egisz_contract::{Failure, NoopObserver};
    use egisz_remd::{RemdClient, RemdClientConfig};

    let gateway = Gateway::start().await;
    let remd = start(&gateway).await;
    let client_for = |entity: &str| {
        let mut config = RemdClientConfig::new(remd.endpoint().parse::<url::Url>().unwrap(), entity);
        config.timeout = Duration::from_secs(1);
        RemdClient::new(config, Arc::new(NoopObserver)).unwrap()
    };
    let client = client_for(remd.client_entity_id());

    let (request, _) = prepared(&gateway, &KOLPINSKAYA_73);
    assert_eq!(client.register_document(&request).await.unwrap(), RegisterAck::Accepted);
    let emdr_id = gateway.result(&request.message_id).await.registry_item.unwrap().emdr_id;

    remd.set_faults(RemdFaults { fail_next_sync: 1, ..RemdFaults::default() });
    let failure = client.register_document(&prepared(&gateway, &KOLPINSKAYA_73).0).await.unwrap_err();
    assert!(matches!(failure, Failure::Retry { .. }), "{failure:?}");

    remd.set_faults(RemdFaults { sync_5xx_rate: 1.0, ..RemdFaults::default() });
    let failure = client.register_document(&prepared(&gateway, &KOLPINSKAYA_73).0).await.unwrap_err();
    assert!(matches!(failure, Failure::Retry { .. }), "{failure:?}");

    remd.set_faults(RemdFaults { rate_limit_per_second: Some(0), ..RemdFaults::default() });
    let RegisterAck::Rejected(errors) = client.register_document(&prepared(&gateway, &KOLPINSKAYA_73).0).await.unwrap()
    else {
        panic!("RATE_LIMIT is a rejection")
    };
    assert_eq!(errors[0].code, "RATE_LIMIT");

    remd.set_faults(RemdFaults { accept_then_silent_rate: 1.0, ..RemdFaults::default() });
    let (silent, _) = prepared(&gateway, &KOLPINSKAYA_73);
    let failure = client.register_document(&silent).await.unwrap_err();
    assert!(matches!(failure, Failure::Unknown { .. }), "{failure:?}");
    remd.set_faults(RemdFaults::default());

    // Reconciliation finds the silent one once it is registered.
    assert_eq!(gateway.result(&silent.message_id).await.status, ResultStatus::Success);
    let query = SearchQuery {
        organization: Oid::parse(MO_2917).unwrap(),
        kind: Some(40),
        register_date_begin: None,
        register_date_end: None,
        patient_snils: None,
    };
    let items = client.search_registry_items(&query).await.unwrap();
    assert!(items.iter().any(|i| i.local_uid.as_deref() == Some(silent.local_uid.as_str())));
    assert_eq!(client.get_registry_item(&emdr_id).await.unwrap().unwrap().emdr_id, emdr_id);
    assert_eq!(client.get_registry_item("16.62.23.09.999999999").await.unwrap(), None);

    let stranger = client_for("00000000-0000-4000-8000-000000000000");
    let failure = stranger.register_document(&prepared(&gateway, &KOLPINSKAYA_73).0).await.unwrap_err();
    assert!(matches!(failure, Failure::Configuration { .. }), "{failure:?}");
    let failure = stranger.search_registry_items(&query).await.unwrap_err();
    assert!(matches!(failure, Failure::Configuration { .. }), "{failure:?}");
    remd.shutdown().await;
}

#[test]
fn every_code_the_sandbox_can_emit_is_in_nsi_305() {
    let dictionary: HashMap<&str, &str> = NSI_305
        .lines()
        .skip(1)
        .filter_map(|line| {
            let fields: Vec<&str> = line.split('\t').collect();
            (fields.len() == 4).then(|| (fields[0], fields[2]))
        })
        .collect();
    assert_eq!(dictionary.len(), 127);
    for code in EMITTED_CODES {
        assert!(dictionary.contains_key(code), "{code} is not in NSI 305");
    }
    // The crate's copy is the shared dictionary (checked when the shared folder is there).
    let shared = concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared/federal/nsi-305-remd-message-codes.tsv");
    if let Ok(text) = std::fs::read_to_string(shared) {
        assert_eq!(text, NSI_305, "data/nsi-305-remd-message-codes.tsv differs from the shared dictionary");
    }
}
