//! The client against small axum servers on 127.0.0.1:0 playing REMD (answers written
//! with this crate's own REMD-side writers).

mod common;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use egisz_contract::remd::{RegisterAck, RegistryItem, RemdMessage, RemdRegistry};
use egisz_contract::{CallObserver, CallOutcome, Failure, Personal};
use egisz_remd::{
    Answer, Fault, FaultCode, RemdClient, RemdClientConfig, ReplyHeader, SoapVersion, read_get_registry_item,
    read_register_document, read_search_registry_item, write_fault, write_get_registry_item_response,
    write_register_document_response, write_search_registry_item_response,
};

use common::{CLIENT_ENTITY_ID, MESSAGE_ID, PATIENT_SNILS};

// ---------------------------------------------------------------------------------------
// A scripted REMD
// ---------------------------------------------------------------------------------------

#[derive(Debug, Clone)]
struct Hit {
    content_type: Option<String>,
    body: Vec<u8>,
}

#[derive(Debug, Clone)]
struct Reply {
    status: u16,
    body: Vec<u8>,
    retry_after: Option<&'static str>,
    delay: Duration,
}

impl Reply {
    fn new(status: u16, body: impl Into<Vec<u8>>) -> Self {
        Self { status, body: body.into(), retry_after: None, delay: Duration::ZERO }
    }
}

struct ServerState {
    reply: Reply,
    hits: Mutex<Vec<Hit>>,
}

struct Remd {
    addr: SocketAddr,
    state: Arc<ServerState>,
}

impl Remd {
    async fn start(reply: Reply) -> Self {
        let state = Arc::new(ServerState { reply, hits: Mutex::new(Vec::new()) });
        let app = Router::new().fallback(answer).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, state }
    }

    fn endpoint(&self) -> url::Url {
        url::Url::parse(&format!("http://{}/port/emdr", self.addr)).unwrap()
    }

    fn hits(&self) -> Vec<Hit> {
        self.state.hits.lock().unwrap().clone()
    }
}

async fn answer(State(state): State<Arc<ServerState>>, headers: HeaderMap, body: Bytes) -> Response {
    let content_type = headers.get("content-type").and_then(|v| v.to_str().ok()).map(str::to_owned);
    state.hits.lock().unwrap().push(Hit { content_type, body: body.to_vec() });
    let reply = state.reply.clone();
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut response_headers = HeaderMap::new();
    response_headers.insert("content-type", HeaderValue::from_static("application/soap+xml; charset=utf-8"));
    if let Some(ra) = reply.retry_after {
        response_headers.insert("retry-after", HeaderValue::from_static(ra));
    }
    (StatusCode::from_u16(reply.status).unwrap(), response_headers, reply.body).into_response()
}

// ---------------------------------------------------------------------------------------
// Observer, client, fixtures
// ---------------------------------------------------------------------------------------

#[derive(Default)]
struct Recorder {
    calls: Mutex<Vec<(&'static str, CallOutcome)>>,
}

impl Recorder {
    fn outcomes(&self) -> Vec<CallOutcome> {
        let calls = self.calls.lock().unwrap();
        assert!(calls.iter().all(|(service, _)| *service == "remd"));
        calls.iter().map(|(_, o)| *o).collect()
    }
}

impl CallObserver for Recorder {
    fn call_finished(&self, service: &'static str, outcome: CallOutcome, _: Duration) {
        self.calls.lock().unwrap().push((service, outcome));
    }
    fn rate_limit_waited(&self, _: &'static str, _: Duration) {
        panic!("the REMD client has no rate limiter");
    }
    fn token_fetched(&self, _: &'static str, _: bool) {
        panic!("the REMD client has no tokens");
    }
}

fn client(endpoint: url::Url, timeout: Duration) -> (RemdClient, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    let mut config = RemdClientConfig::new(endpoint, CLIENT_ENTITY_ID);
    config.timeout = timeout;
    (RemdClient::new(config, recorder.clone()).unwrap(), recorder)
}

async fn against(reply: Reply) -> (Remd, RemdClient, Arc<Recorder>) {
    let remd = Remd::start(reply).await;
    let (client, recorder) = client(remd.endpoint(), Duration::from_secs(5));
    (remd, client, recorder)
}

fn remd_reply() -> ReplyHeader {
    ReplyHeader {
        message_id: "0b7c6a2e-91f3-4c1d-8e55-3a0d4c2b9f01".to_owned(),
        relates_to: Some(MESSAGE_ID.to_owned()),
    }
}

fn accepted() -> Vec<u8> {
    write_register_document_response(SoapVersion::Soap12, &remd_reply(), &RegisterAck::Accepted)
}

fn fault(code: FaultCode, reason: &str) -> Vec<u8> {
    write_fault(SoapVersion::Soap12, &remd_reply(), &Fault::new(code, reason))
}

fn item() -> RegistryItem {
    RegistryItem {
        emdr_id: "16.62.23.09.000014523".to_owned(),
        local_uid: Some("TMK-2023-000042".to_owned()),
        kind: Some(40),
        registration_date_time: None,
        store_till_date: None,
        document_version: None,
    }
}

/// What must never reach a failure reason.
const SECRETS: [&str; 5] = [PATIENT_SNILS, "Колпинская", "Иванов", "P<42>", "20311784514"];

fn assert_clean(failure: &Failure) {
    for secret in SECRETS {
        assert!(!failure.reason().contains(secret), "reason leaks {secret}: {}", failure.reason());
    }
}

// ---------------------------------------------------------------------------------------
// registerDocument
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn accepted_sends_the_documented_request() {
    let (remd, client, recorder) = against(Reply::new(200, accepted())).await;
    let requests = [common::register_document(), common::register_document_minimal()];
    for request in &requests {
        assert_eq!(client.register_document(request).await, Ok(RegisterAck::Accepted));
    }

    let hits = remd.hits();
    assert_eq!(hits.len(), 2, "one HTTP call per method call");
    for (hit, request) in hits.iter().zip(&requests) {
        assert_eq!(
            hit.content_type.as_deref(),
            Some("application/soap+xml; charset=utf-8; action=\"registerDocument\"")
        );
        let (envelope, sent) = read_register_document(&hit.body).unwrap();
        assert_eq!(&sent, request);
        assert_eq!(envelope.client_entity_id.as_deref(), Some(CLIENT_ENTITY_ID));
        assert_eq!(envelope.version, SoapVersion::Soap12);
        assert!(String::from_utf8_lossy(&hit.body).contains(&format!("urn:uuid:{MESSAGE_ID}")));
    }
    assert_eq!(recorder.outcomes(), vec![CallOutcome::Ok; 2]);
}

#[tokio::test]
async fn rejected_with_codes_is_an_answer_not_a_failure() {
    let messages = vec![
        RemdMessage {
            code: "NOT_UNIQUE_PROVIDED_ID".to_owned(), message: Personal("уже зарегистрирован".to_owned())
        },
        RemdMessage { code: "INVALID_SNILS".to_owned(), message: Personal(format!("Иванов {PATIENT_SNILS}")) },
    ];
    let body =
        write_register_document_response(SoapVersion::Soap12, &remd_reply(), &RegisterAck::Rejected(messages.clone()));
    let (_, client, recorder) = against(Reply::new(200, body)).await;

    assert_eq!(client.register_document(&common::register_document()).await, Ok(RegisterAck::Rejected(messages)));
    assert_eq!(recorder.outcomes(), vec![CallOutcome::Ok]);
}

#[tokio::test]
async fn soap_faults_are_classified_by_their_code() {
    let cases = [
        (500, fault(FaultCode::Receiver, &format!("Иванов {PATIENT_SNILS}: сбой")), "retry", CallOutcome::ServerError),
        (400, fault(FaultCode::Sender, "Колпинская: неверный запрос"), "permanent", CallOutcome::BadRequest),
        (400, fault(FaultCode::Sender, "ACCESS_DENIED"), "configuration", CallOutcome::BadRequest),
    ];
    for (status, body, label, outcome) in cases {
        let (_, client, recorder) = against(Reply::new(status, body)).await;
        let failure = client.register_document(&common::register_document()).await.unwrap_err();
        assert_eq!(failure.label(), label, "{failure:?}");
        assert_clean(&failure);
        assert_eq!(recorder.outcomes(), vec![outcome]);
    }
    let (_, client, _) = against(Reply::new(500, fault(FaultCode::Receiver, "x"))).await;
    let failure = client.register_document(&common::register_document()).await.unwrap_err();
    assert_eq!(failure.reason(), "REMD registerDocument: SOAP fault Receiver (HTTP 500)");
}

#[tokio::test]
async fn http_503_is_retry() {
    let (_, client, recorder) = against(Reply::new(503, "<html>Service Unavailable</html>")).await;
    let failure = client.register_document(&common::register_document()).await.unwrap_err();
    assert_eq!(failure, Failure::Retry { reason: "REMD registerDocument: answered 503".to_owned(), after: None });
    assert_eq!(recorder.outcomes(), vec![CallOutcome::ServerError]);
}

#[tokio::test]
async fn http_429_honours_retry_after() {
    let reply = Reply { retry_after: Some("7"), ..Reply::new(429, "") };
    let (_, client, recorder) = against(reply).await;
    let failure = client.register_document(&common::register_document()).await.unwrap_err();
    assert_eq!(
        failure,
        Failure::Retry {
            reason: "REMD registerDocument: answered 429, rate limited".to_owned(),
            after: Some(Duration::from_secs(7))
        }
    );
    assert_eq!(recorder.outcomes(), vec![CallOutcome::RateLimited]);
}

#[tokio::test]
async fn http_401_is_configuration() {
    let (_, client, recorder) = against(Reply::new(401, "")).await;
    let failure = client.register_document(&common::register_document()).await.unwrap_err();
    assert!(matches!(failure, Failure::Configuration { .. }), "{failure:?}");
    assert_eq!(recorder.outcomes(), vec![CallOutcome::Unauthorized]);
}

#[tokio::test]
async fn unreadable_200_is_unknown_for_register_and_retry_for_lookups() {
    let (_, client, recorder) = against(Reply::new(200, "<html>proxy login page</html>")).await;
    let failure = client.register_document(&common::register_document()).await.unwrap_err();
    assert!(matches!(failure, Failure::Unknown { .. }), "{failure:?}");
    let failure = client.search_registry_items(&common::search_query()).await.unwrap_err();
    assert!(matches!(failure, Failure::Retry { .. }), "{failure:?}");
    let failure = client.get_registry_item("16.62.23.09.000014523").await.unwrap_err();
    assert!(matches!(failure, Failure::Retry { .. }), "{failure:?}");
    assert_eq!(recorder.outcomes(), vec![CallOutcome::InvalidResponse; 3]);
}

#[tokio::test]
async fn timeout_after_sending_is_unknown_for_register_and_retry_for_search() {
    let reply = Reply { delay: Duration::from_secs(3), ..Reply::new(200, accepted()) };
    let remd = Remd::start(reply).await;
    let (client, recorder) = client(remd.endpoint(), Duration::from_millis(300));

    let failure = client.register_document(&common::register_document()).await.unwrap_err();
    assert_eq!(
        failure,
        Failure::Unknown { reason: "REMD registerDocument: no answer within 300 ms after sending".to_owned() }
    );
    let failure = client.search_registry_items(&common::search_query()).await.unwrap_err();
    assert!(matches!(failure, Failure::Retry { after: None, .. }), "{failure:?}");
    assert_eq!(remd.hits().len(), 2, "both requests reached REMD");
    assert_eq!(recorder.outcomes(), vec![CallOutcome::Timeout, CallOutcome::Timeout]);
}

#[tokio::test]
async fn connection_refused_is_retry() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    drop(listener);
    let (client, recorder) =
        client(url::Url::parse(&format!("http://{addr}/port/emdr")).unwrap(), Duration::from_secs(2));

    let failure = client.register_document(&common::register_document()).await.unwrap_err();
    let Failure::Retry { reason, after: None } = &failure else { panic!("{failure:?}") };
    assert_eq!(reason, "REMD registerDocument: connection failed: connection refused");
    assert!(!reason.contains("127.0.0.1"), "{reason}");
    assert_eq!(recorder.outcomes(), vec![CallOutcome::Transport]);
}

// ---------------------------------------------------------------------------------------
// searchRegistryItem / getRegistryItem
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn search_finds_items() {
    let body = write_search_registry_item_response(SoapVersion::Soap12, &remd_reply(), &Answer::Success(vec![item()]));
    let (remd, client, recorder) = against(Reply::new(200, body)).await;

    assert_eq!(client.search_registry_items(&common::search_query()).await, Ok(vec![item()]));

    let hit = &remd.hits()[0];
    assert_eq!(hit.content_type.as_deref(), Some("application/soap+xml; charset=utf-8; action=\"searchRegistryItem\""));
    let (envelope, query) = read_search_registry_item(&hit.body).unwrap();
    assert_eq!(query, common::search_query());
    assert!(uuid::Uuid::try_parse(envelope.message_id.as_deref().unwrap()).is_ok(), "a fresh UUID");
    assert_eq!(recorder.outcomes(), vec![CallOutcome::Ok]);
}

#[tokio::test]
async fn search_codes() {
    let error = |code: &str| {
        let message = RemdMessage { code: code.to_owned(), message: Personal(format!("Иванов {PATIENT_SNILS}")) };
        write_search_registry_item_response(SoapVersion::Soap12, &remd_reply(), &Answer::Error(vec![message]))
    };
    let (_, client, _) = against(Reply::new(200, error("REGISTRY_ITEM_NOT_FOUND"))).await;
    assert_eq!(client.search_registry_items(&common::search_query()).await, Ok(vec![]));

    let (_, client, _) = against(Reply::new(200, error("RATE_LIMIT"))).await;
    let failure = client.search_registry_items(&common::search_query()).await.unwrap_err();
    assert_eq!(
        failure,
        Failure::Retry {
            reason: "REMD searchRegistryItem: answered 200 with status error, codes RATE_LIMIT".to_owned(),
            after: Some(Duration::from_secs(60)),
        }
    );
    let (_, client, _) = against(Reply::new(200, error("ACCESS_DENIED"))).await;
    let failure = client.search_registry_items(&common::search_query()).await.unwrap_err();
    assert!(matches!(failure, Failure::Configuration { .. }), "{failure:?}");
    assert_clean(&failure);
}

#[tokio::test]
async fn get_registry_item_found_and_not_found() {
    let body = write_get_registry_item_response(SoapVersion::Soap12, &remd_reply(), &Answer::Success(Some(item())));
    let (remd, client, recorder) = against(Reply::new(200, body)).await;
    assert_eq!(client.get_registry_item("16.62.23.09.000014523").await, Ok(Some(item())));
    let (_, emdr_id) = read_get_registry_item(&remd.hits()[0].body).unwrap();
    assert_eq!(emdr_id, "16.62.23.09.000014523");
    assert_eq!(recorder.outcomes(), vec![CallOutcome::Ok]);

    let body = write_get_registry_item_response(SoapVersion::Soap12, &remd_reply(), &Answer::Success(None));
    let (_, client, recorder) = against(Reply::new(200, body)).await;
    assert_eq!(client.get_registry_item("16.62.23.09.000014523").await, Ok(None));
    assert_eq!(recorder.outcomes(), vec![CallOutcome::NotFound]);
}

#[tokio::test]
async fn observer_counts_one_report_per_call() {
    let (_, client, recorder) = against(Reply::new(503, "")).await;
    for _ in 0..3 {
        assert!(client.register_document(&common::register_document()).await.is_err());
    }
    assert!(client.search_registry_items(&common::search_query()).await.is_err());
    assert!(client.get_registry_item("x").await.is_err());
    assert_eq!(recorder.outcomes(), vec![CallOutcome::ServerError; 5]);
}
