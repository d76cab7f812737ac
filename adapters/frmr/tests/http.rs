//! The client against small axum servers on 127.0.0.1:0 playing FRMR and the token
//! provider.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::extract::State;
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use chrono::NaiveDate;
use egisz_contract::frmr::FrmrRegistry;
use egisz_contract::{CallObserver, CallOutcome, Failure, Oid, Snils};
use egisz_frmr::{FrmrClient, FrmrClientConfig, FrmrClientError, TokenSource};

const SNILS: &str = "20311784514";
const MO: &str = "1.2.643.5.1.13.13.12.2.42.2917";

// ---------------------------------------------------------------------------------------
// A scripted HTTP server
// ---------------------------------------------------------------------------------------

/// What a server saw.
#[derive(Debug, Clone)]
struct Hit {
    method: Method,
    path: String,
    query: HashMap<String, String>,
    authorization: Option<String>,
    accept: Option<String>,
}

/// What a server answers.
#[derive(Debug, Clone)]
struct Reply {
    status: u16,
    body: String,
    retry_after: Option<&'static str>,
    delay: Duration,
}

impl Reply {
    fn new(status: u16, body: impl Into<String>) -> Self {
        Self { status, body: body.into(), retry_after: None, delay: Duration::ZERO }
    }
    fn retry_after(mut self, value: &'static str) -> Self {
        self.retry_after = Some(value);
        self
    }
    fn delayed(mut self, delay: Duration) -> Self {
        self.delay = delay;
        self
    }
}

/// Chooses the reply from the hit and its 1-based number.
type Script = Arc<dyn Fn(&Hit, usize) -> Reply + Send + Sync>;

struct ServerState {
    script: Script,
    hits: Mutex<Vec<Hit>>,
}

#[derive(Clone)]
struct Server {
    addr: SocketAddr,
    state: Arc<ServerState>,
}

impl Server {
    async fn start(script: impl Fn(&Hit, usize) -> Reply + Send + Sync + 'static) -> Self {
        let state = Arc::new(ServerState { script: Arc::new(script), hits: Mutex::new(Vec::new()) });
        let app = Router::new().fallback(answer).with_state(state.clone());
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let addr = listener.local_addr().unwrap();
        tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
        Self { addr, state }
    }

    /// A server answering `reply` to everything.
    async fn always(reply: Reply) -> Self {
        Self::start(move |_, _| reply.clone()).await
    }

    /// A server answering the replies in turn, then the last one forever.
    async fn sequence(replies: Vec<Reply>) -> Self {
        Self::start(move |_, n| replies[(n - 1).min(replies.len() - 1)].clone()).await
    }

    /// The URL of FRMR on this server, with a service hash and no trailing slash.
    fn base(&self) -> url::Url {
        url::Url::parse(&format!("http://{}/svc-hash", self.addr)).unwrap()
    }

    fn token_url(&self) -> url::Url {
        url::Url::parse(&format!("http://{}/token", self.addr)).unwrap()
    }

    fn hits(&self) -> Vec<Hit> {
        self.state.hits.lock().unwrap().clone()
    }

    fn count(&self) -> usize {
        self.state.hits.lock().unwrap().len()
    }
}

async fn answer(State(state): State<Arc<ServerState>>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let header = |name| headers.get(name).and_then(|v: &HeaderValue| v.to_str().ok()).map(str::to_owned);
    let hit = Hit {
        method,
        path: uri.path().to_owned(),
        query: url::form_urlencoded::parse(uri.query().unwrap_or("").as_bytes()).into_owned().collect(),
        authorization: header("authorization"),
        accept: header("accept"),
    };
    let n = {
        let mut hits = state.hits.lock().unwrap();
        hits.push(hit.clone());
        hits.len()
    };
    let reply = (state.script)(&hit, n);
    if !reply.delay.is_zero() {
        tokio::time::sleep(reply.delay).await;
    }
    let mut response_headers = HeaderMap::new();
    response_headers.insert("content-type", HeaderValue::from_static("application/json"));
    if let Some(ra) = reply.retry_after {
        response_headers.insert("retry-after", HeaderValue::from_static(ra));
    }
    (StatusCode::from_u16(reply.status).unwrap(), response_headers, reply.body).into_response()
}

/// A token provider answering `t1`, `t2`, … in turn.
async fn token_provider() -> Server {
    token_provider_with_delay(Duration::ZERO).await
}

async fn token_provider_with_delay(delay: Duration) -> Server {
    Server::start(move |_, n| {
        Reply::new(200, format!(r#"{{"token":"t{n}","expires_in":300,"token_type":"Bearer"}}"#)).delayed(delay)
    })
    .await
}

// ---------------------------------------------------------------------------------------
// Observer, client, fixtures
// ---------------------------------------------------------------------------------------

#[derive(Default)]
struct Recorder {
    calls: Mutex<Vec<(&'static str, CallOutcome)>>,
    waits: Mutex<Vec<Duration>>,
    tokens: Mutex<Vec<bool>>,
}

impl Recorder {
    fn outcomes(&self) -> Vec<CallOutcome> {
        let calls = self.calls.lock().unwrap();
        assert!(calls.iter().all(|(service, _)| *service == "frmr"));
        calls.iter().map(|(_, o)| *o).collect()
    }
    fn waits(&self) -> Vec<Duration> {
        self.waits.lock().unwrap().clone()
    }
    fn tokens(&self) -> Vec<bool> {
        self.tokens.lock().unwrap().clone()
    }
}

impl CallObserver for Recorder {
    fn call_finished(&self, service: &'static str, outcome: CallOutcome, _: Duration) {
        self.calls.lock().unwrap().push((service, outcome));
    }
    fn rate_limit_waited(&self, service: &'static str, waited: Duration) {
        assert_eq!(service, "frmr");
        assert!(!waited.is_zero());
        self.waits.lock().unwrap().push(waited);
    }
    fn token_fetched(&self, service: &'static str, ok: bool) {
        assert_eq!(service, "frmr");
        self.tokens.lock().unwrap().push(ok);
    }
}

/// A fast configuration: no rate limit to speak of, 10–50 ms backoff, 3 attempts.
fn config(base: url::Url, token: TokenSource) -> FrmrClientConfig {
    let mut c = FrmrClientConfig::new(base, token);
    c.rate_per_second = 1000.0;
    c.timeout = Duration::from_secs(2);
    c.retry_max_attempts = 3;
    c.retry_min_delay = Duration::from_millis(10);
    c.retry_max_delay = Duration::from_millis(50);
    c
}

fn static_token() -> TokenSource {
    TokenSource::Static("static-token".to_owned())
}

fn client(config: FrmrClientConfig) -> (FrmrClient, Arc<Recorder>) {
    let recorder = Arc::new(Recorder::default());
    (FrmrClient::new(config, recorder.clone()).unwrap(), recorder)
}

async fn lookup(client: &FrmrClient) -> Result<Option<egisz_contract::frmr::FrmrPerson>, Failure> {
    client.person_full(&Oid::parse(MO).unwrap(), &Snils::parse(SNILS).unwrap()).await
}

fn person_json() -> String {
    format!(
        r#"{{
  "requestId": "6f1c",
  "errorUserMessage": null,
  "content": {{
    "oid": "2023.3475290",
    "snils": "{SNILS}",
    "lastName": "Колпинская",
    "firstName": "Анна",
    "patronymic": "Сергеевна",
    "birthDate": "1980-05-17T00:00:00",
    "gender": 2,
    "unknownField": {{"nested": [1, 2]}},
    "personAccreditation": {{"accreditationProcedures": []}},
    "personCard": [
      {{
        "id": 98765,
        "oid": "{MO}",
        "organization": "ГБУЗ Городская поликлиника № 1",
        "nrPmuDepartId": "{MO}.0.12",
        "nrPmuDepartName": "Терапевтическое отделение",
        "fedPositionId": 109,
        "fedPosition": "врач-терапевт участковый",
        "postId": "77",
        "postName": "Врач-терапевт",
        "positionTypeId": 1,
        "rate": 1.0,
        "beginDate": "2015-02-01T00:00:00",
        "endDate": null,
        "temporaryDerelictions": [
          {{"reasonId": 3, "beginDate": "2023-07-01", "endDate": "2023-07-28T00:00:00+03:00"}}
        ]
      }},
      {{
        "id": "98766",
        "oid": "1.2.643.5.1.13.13.12.2.42.3000",
        "fedPositionId": "110",
        "positionTypeId": "4",
        "rate": "0.25",
        "beginDate": "2010-01-10",
        "endDate": "2014-12-31"
      }}
    ]
  }}
}}"#
    )
}

/// A person's name and birth date as FRMR may put them into an error message: digits
/// short enough that `scrub_personal` leaves them alone.
const NAME_AND_DATE: &str = "Иванов Иван 1981-03-14";

/// An error envelope whose message echoes the SNILS, a name and a birth date (some servers
/// do), with a non-standard `reasonPhrase`.
fn echoing_envelope(code: u16) -> String {
    format!(
        r#"{{"timestamp":"2024-03-01T10:00:00","code":{code},"reasonPhrase":"Error","message":"СНИЛС {SNILS} (203-117-845 14), {NAME_AND_DATE}, МО {MO}: ошибка"}}"#
    )
}

/// Everything that must never reach a reason or a log.
const SECRETS: [&str; 8] =
    [SNILS, "203-117-845", "Колпинская", "static-token", "Иванов", "Иван", "1981-03-14", "ошибка"];

fn assert_no_personal_data(failure: &Failure) {
    let reason = failure.reason();
    for secret in SECRETS {
        assert!(!reason.contains(secret), "reason leaks {secret}: {reason}");
    }
    assert!(!failure.to_string().contains(SNILS));
}

fn date(y: i32, m: u32, d: u32) -> Option<NaiveDate> {
    NaiveDate::from_ymd_opt(y, m, d)
}

// ---------------------------------------------------------------------------------------
// Wire mapping and the request
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn maps_a_full_person_and_sends_the_documented_request() {
    let frmr = Server::always(Reply::new(200, person_json())).await;
    let (client, recorder) = client(config(frmr.base(), static_token()));

    let person = lookup(&client).await.unwrap().expect("a person");

    assert_eq!(person.frmr_id.as_deref(), Some("2023.3475290"));
    assert_eq!(person.snils.as_str(), SNILS);
    assert_eq!(person.last_name.expose(), "Колпинская");
    assert_eq!(person.first_name.expose(), "Анна");
    assert_eq!(person.patronymic.as_ref().map(|p| p.expose().as_str()), Some("Сергеевна"));
    assert_eq!(person.birth_date.as_ref().map(|d| *d.expose()), date(1980, 5, 17));
    assert_eq!(person.gender, Some(2));
    assert_eq!(person.cards.len(), 2);

    let main = &person.cards[0];
    assert_eq!(main.id.as_deref(), Some("98765"));
    assert_eq!(main.organization.as_deref(), Some(MO));
    assert_eq!(main.organization_name.as_deref(), Some("ГБУЗ Городская поликлиника № 1"));
    assert_eq!(main.department.as_deref(), Some(format!("{MO}.0.12").as_str()));
    assert_eq!(main.department_name.as_deref(), Some("Терапевтическое отделение"));
    assert_eq!(main.position_code.as_deref(), Some("109"));
    assert_eq!(main.position.as_deref(), Some("врач-терапевт участковый"));
    assert_eq!(main.position_type, Some(1));
    assert_eq!(main.rate, Some(1.0));
    assert_eq!(main.begin_date, date(2015, 2, 1));
    assert_eq!(main.end_date, None);
    assert_eq!(main.derelictions.len(), 1);
    assert_eq!(main.derelictions[0].reason_id.as_deref(), Some("3"));
    assert_eq!(main.derelictions[0].begin_date, date(2023, 7, 1));
    assert_eq!(main.derelictions[0].end_date, date(2023, 7, 28));

    let old = &person.cards[1];
    assert_eq!(old.id.as_deref(), Some("98766"));
    assert_eq!(old.position_code.as_deref(), Some("110"));
    assert_eq!(old.position_type, Some(4));
    assert_eq!(old.rate, Some(0.25));
    assert_eq!(old.end_date, date(2014, 12, 31));
    assert!(old.derelictions.is_empty(), "missing array = empty");
    assert_eq!(old.department, None);

    let hits = frmr.hits();
    assert_eq!(hits.len(), 1);
    let hit = &hits[0];
    assert_eq!(hit.method, Method::GET);
    assert_eq!(hit.path, "/svc-hash/person/full");
    assert_eq!(hit.query.get("mo").map(String::as_str), Some(MO));
    assert_eq!(hit.query.get("mr").map(String::as_str), Some("true"));
    assert_eq!(hit.query.get("snils").map(String::as_str), Some(SNILS));
    assert_eq!(hit.query.len(), 3);
    assert_eq!(hit.authorization.as_deref(), Some("Bearer static-token"));
    assert_eq!(hit.accept.as_deref(), Some("application/json"));
    assert_eq!(recorder.outcomes(), vec![CallOutcome::Ok]);
    assert!(recorder.tokens().is_empty(), "a static token is never fetched");
}

#[tokio::test]
async fn a_base_url_with_a_trailing_slash_works_the_same() {
    let frmr = Server::always(Reply::new(200, person_json())).await;
    let base = url::Url::parse(&format!("http://{}/svc-hash/", frmr.addr)).unwrap();
    let (client, _) = client(config(base, static_token()));
    assert!(lookup(&client).await.unwrap().is_some());
    assert_eq!(frmr.hits()[0].path, "/svc-hash/person/full");
}

#[tokio::test]
async fn content_null_is_not_found() {
    let frmr =
        Server::always(Reply::new(200, r#"{"requestId":"1","content":null,"errorUserMessage":"Не найдено"}"#)).await;
    let (client, recorder) = client(config(frmr.base(), static_token()));
    assert_eq!(lookup(&client).await, Ok(None));
    assert_eq!(recorder.outcomes(), vec![CallOutcome::NotFound]);
}

#[tokio::test]
async fn a_404_envelope_is_not_found() {
    let frmr = Server::always(Reply::new(404, echoing_envelope(404))).await;
    let (client, recorder) = client(config(frmr.base(), static_token()));
    assert_eq!(lookup(&client).await, Ok(None));
    assert_eq!(frmr.count(), 1);
    assert_eq!(recorder.outcomes(), vec![CallOutcome::NotFound]);
}

#[tokio::test]
async fn a_404_without_envelope_is_a_configuration_failure() {
    let frmr = Server::always(Reply::new(404, "<html>404 Not Found</html>")).await;
    let (client, _) = client(config(frmr.base(), static_token()));
    let failure = lookup(&client).await.unwrap_err();
    assert!(matches!(failure, Failure::Configuration { .. }), "{failure:?}");
    assert_eq!(frmr.count(), 1);
}

#[tokio::test]
async fn a_person_with_a_bad_snils_is_an_invalid_response() {
    let body = person_json().replace(SNILS, "20311784515");
    let frmr = Server::always(Reply::new(200, body)).await;
    let (client, recorder) = client(config(frmr.base(), static_token()));
    let failure = lookup(&client).await.unwrap_err();
    assert!(matches!(failure, Failure::Retry { after: None, .. }), "{failure:?}");
    assert_eq!(recorder.outcomes(), vec![CallOutcome::InvalidResponse; 3]);
    assert_no_personal_data(&failure);
}

#[tokio::test]
async fn an_unreadable_2xx_body_is_retried_then_retry() {
    let frmr = Server::always(Reply::new(200, r#"{"content": {"snils": "2031"#)).await;
    let (client, recorder) = client(config(frmr.base(), static_token()));
    let failure = lookup(&client).await.unwrap_err();
    assert!(matches!(failure, Failure::Retry { .. }), "{failure:?}");
    assert_eq!(frmr.count(), 3);
    assert_eq!(recorder.outcomes(), vec![CallOutcome::InvalidResponse; 3]);
}

// ---------------------------------------------------------------------------------------
// Classification and retries
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn bad_request_is_permanent_after_one_attempt() {
    let frmr = Server::always(Reply::new(400, echoing_envelope(400))).await;
    let (client, recorder) = client(config(frmr.base(), static_token()));
    let failure = lookup(&client).await.unwrap_err();
    assert!(matches!(failure, Failure::Permanent { .. }), "{failure:?}");
    assert_eq!(frmr.count(), 1);
    assert_eq!(recorder.outcomes(), vec![CallOutcome::BadRequest]);
    // FRMR's message (here: SNILS, name, date, MO) is never quoted; its non-standard
    // reasonPhrase ("Error") is dropped.
    assert_eq!(failure.reason(), "FRMR rejected the request: answered 400 with code 400 (attempt 1 of 3)");
    assert_no_personal_data(&failure);
}

#[tokio::test]
async fn no_reason_ever_carries_the_snils() {
    let logs = LogBuffer::capture();
    let provider = token_provider().await;
    for status in [400, 401, 403, 408, 429, 500, 503] {
        for reason_phrase in ["Error", NAME_AND_DATE, "Bad Request"] {
            let envelope = serde_json::json!({
                "timestamp": "2024-03-01T10:00:00",
                "code": status,
                "reasonPhrase": reason_phrase,
                "message": format!("СНИЛС {SNILS} (203-117-845 14): {NAME_AND_DATE}"),
            })
            .to_string();
            let frmr = Server::always(Reply::new(status, envelope)).await;
            for token in [static_token(), TokenSource::Provider(provider.token_url())] {
                let (client, _) = client(config(frmr.base(), token));
                let failure = lookup(&client).await.unwrap_err();
                assert_no_personal_data(&failure);
                let reason = failure.reason();
                assert!(reason.contains(&format!("answered {status}")), "{reason}");
                assert!(reason.contains("(attempt "), "{reason}");
                if reason_phrase == "Bad Request" {
                    assert!(reason.contains(&format!("with code {status} Bad Request")), "{reason}");
                } else {
                    assert!(!reason.contains(reason_phrase), "{reason}");
                }
            }
        }
    }
    let text = logs.text();
    assert!(text.contains("FRMR lookup failed"), "{text}");
    for secret in SECRETS {
        assert!(!text.contains(secret), "logs leak {secret}: {text}");
    }
}

#[tokio::test]
async fn transient_failures_are_retried_until_ok() {
    let frmr = Server::sequence(vec![
        Reply::new(429, ""),
        Reply::new(503, echoing_envelope(503)),
        Reply::new(200, person_json()),
    ])
    .await;
    let (client, recorder) = client(config(frmr.base(), static_token()));
    assert!(lookup(&client).await.unwrap().is_some());
    assert_eq!(frmr.count(), 3);
    assert_eq!(recorder.outcomes(), vec![CallOutcome::RateLimited, CallOutcome::ServerError, CallOutcome::Ok]);
}

#[tokio::test]
async fn persistent_server_errors_end_in_retry_after_max_attempts() {
    let frmr = Server::always(Reply::new(503, "")).await;
    let mut c = config(frmr.base(), static_token());
    c.retry_max_attempts = 4;
    let (client, recorder) = client(c);
    let failure = lookup(&client).await.unwrap_err();
    assert!(matches!(failure, Failure::Retry { after: None, .. }), "{failure:?}");
    assert_eq!(failure.reason(), "FRMR answered 503 (attempt 4 of 4)");
    assert_eq!(frmr.count(), 4);
    assert_eq!(recorder.outcomes(), vec![CallOutcome::ServerError; 4]);
}

#[tokio::test]
async fn one_attempt_means_no_retry() {
    let frmr = Server::always(Reply::new(500, "")).await;
    let mut c = config(frmr.base(), static_token());
    c.retry_max_attempts = 1;
    let (client, _) = client(c);
    assert!(matches!(lookup(&client).await, Err(Failure::Retry { .. })));
    assert_eq!(frmr.count(), 1);
}

#[tokio::test]
async fn a_retry_after_longer_than_max_delay_ends_the_lookup_at_once() {
    let frmr = Server::always(Reply::new(429, "").retry_after("120")).await;
    let (client, recorder) = client(config(frmr.base(), static_token()));
    let failure = lookup(&client).await.unwrap_err();
    assert_eq!(failure, Failure::Retry { reason: failure.reason().to_owned(), after: Some(Duration::from_secs(120)) });
    assert_eq!(failure.reason(), "FRMR is rate limiting: answered 429 (attempt 1 of 3); asked to retry after 120 s");
    assert_eq!(frmr.count(), 1);
    assert_eq!(recorder.outcomes(), vec![CallOutcome::RateLimited]);
}

#[tokio::test]
async fn a_short_retry_after_is_waited_out_and_returned_when_exhausted() {
    let frmr = Server::always(Reply::new(503, "").retry_after("1")).await;
    let mut c = config(frmr.base(), static_token());
    c.retry_max_attempts = 2;
    c.retry_max_delay = Duration::from_secs(2);
    let (client, _) = client(c);
    let started = std::time::Instant::now();
    let failure = lookup(&client).await.unwrap_err();
    assert!(started.elapsed() >= Duration::from_secs(1), "Retry-After honoured");
    assert!(matches!(failure, Failure::Retry { after: Some(a), .. } if a == Duration::from_secs(1)), "{failure:?}");
    assert_eq!(frmr.count(), 2);
}

#[tokio::test]
async fn a_slow_server_times_out_and_ends_in_retry() {
    let frmr = Server::always(Reply::new(200, person_json()).delayed(Duration::from_millis(1500))).await;
    let mut c = config(frmr.base(), static_token());
    c.timeout = Duration::from_millis(200);
    c.retry_max_attempts = 2;
    let (client, recorder) = client(c);
    let failure = lookup(&client).await.unwrap_err();
    assert!(matches!(failure, Failure::Retry { .. }), "{failure:?}");
    assert_eq!(failure.reason(), "FRMR timed out after 200 ms (attempt 2 of 2)");
    assert_eq!(recorder.outcomes(), vec![CallOutcome::Timeout; 2]);
    assert_eq!(frmr.count(), 2);
    assert_no_personal_data(&failure);
}

#[tokio::test]
async fn a_refused_connection_ends_in_retry() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let base = url::Url::parse(&format!("http://127.0.0.1:{port}/svc-hash")).unwrap();
    let (client, recorder) = client(config(base, static_token()));
    let failure = lookup(&client).await.unwrap_err();
    assert!(matches!(failure, Failure::Retry { after: None, .. }), "{failure:?}");
    assert_eq!(recorder.outcomes(), vec![CallOutcome::Transport; 3]);
    assert_eq!(failure.reason(), "connection to FRMR failed: connection refused (attempt 3 of 3)");
    assert!(!failure.reason().contains(&port.to_string()), "no URL in the reason");
    assert_no_personal_data(&failure);
}

/// A raw TCP server writing `bytes` to every connection after reading the request head,
/// then closing it.
async fn raw_server(bytes: &'static [u8]) -> SocketAddr {
    use tokio::io::{AsyncReadExt, AsyncWriteExt};
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    tokio::spawn(async move {
        loop {
            let (mut socket, _) = listener.accept().await.unwrap();
            tokio::spawn(async move {
                let mut buf = [0u8; 4096];
                let _ = socket.read(&mut buf).await;
                let _ = socket.write_all(bytes).await;
                let _ = socket.shutdown().await;
            });
        }
    });
    addr
}

#[tokio::test]
async fn transport_reasons_never_carry_the_url() {
    let cut_off =
        raw_server(b"HTTP/1.1 200 OK\r\ncontent-type: application/json\r\ncontent-length: 1000\r\n\r\n{\"content\"")
            .await;
    let garbage = raw_server(b"this is not HTTP at all\r\n\r\n").await;
    let plain = raw_server(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\n{}").await;
    let cases = [
        (format!("http://{cut_off}/svc-hash"), CallOutcome::Transport, "FRMR answer was cut off"),
        (format!("http://{garbage}/svc-hash"), CallOutcome::Transport, "FRMR exchange failed"),
        // TLS to a plain HTTP server.
        (format!("https://{plain}/svc-hash"), CallOutcome::Transport, "connection to FRMR failed"),
    ];
    for (base, outcome, head) in cases {
        let (client, recorder) = client(config(url::Url::parse(&base).unwrap(), static_token()));
        let failure = lookup(&client).await.unwrap_err();
        assert!(matches!(failure, Failure::Retry { after: None, .. }), "{failure:?}");
        assert_eq!(recorder.outcomes(), vec![outcome; 3], "{base}");
        let reason = failure.reason();
        assert!(reason.starts_with(head), "{base}: {reason}");
        assert!(reason.ends_with("(attempt 3 of 3)"), "{reason}");
        let port = base.rsplit(':').next().unwrap().trim_end_matches("/svc-hash").to_owned();
        for leak in [port.as_str(), "127.0.0.1", "svc-hash", "person/full", "snils=", "http"] {
            assert!(!reason.contains(leak), "{reason} leaks {leak}");
        }
        assert_no_personal_data(&failure);
    }
}

// ---------------------------------------------------------------------------------------
// Token provider
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn a_provider_token_is_fetched_once_and_reused() {
    let provider = token_provider().await;
    let frmr = Server::always(Reply::new(200, person_json())).await;
    let (client, recorder) = client(config(frmr.base(), TokenSource::Provider(provider.token_url())));
    for _ in 0..4 {
        assert!(lookup(&client).await.unwrap().is_some());
    }
    assert_eq!(provider.count(), 1);
    assert_eq!(provider.hits()[0].method, Method::POST);
    assert_eq!(provider.hits()[0].path, "/token");
    assert!(frmr.hits().iter().all(|h| h.authorization.as_deref() == Some("Bearer t1")));
    assert_eq!(recorder.tokens(), vec![true]);
}

#[tokio::test]
async fn concurrent_lookups_share_one_token_fetch() {
    let provider = token_provider_with_delay(Duration::from_millis(150)).await;
    let frmr = Server::always(Reply::new(200, person_json())).await;
    let (client, _) = client(config(frmr.base(), TokenSource::Provider(provider.token_url())));
    let client = Arc::new(client);
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..6 {
        let client = client.clone();
        tasks.spawn(async move { lookup(&client).await });
    }
    while let Some(result) = tasks.join_next().await {
        assert!(result.unwrap().unwrap().is_some());
    }
    assert_eq!(provider.count(), 1);
    assert_eq!(frmr.count(), 6);
}

#[tokio::test]
async fn a_401_refreshes_the_token_once_and_retries_once() {
    let provider = token_provider().await;
    let frmr = Server::start(|hit, _| {
        if hit.authorization.as_deref() == Some("Bearer t1") {
            Reply::new(401, echoing_envelope(401))
        } else {
            Reply::new(200, person_json())
        }
    })
    .await;
    let (client, recorder) = client(config(frmr.base(), TokenSource::Provider(provider.token_url())));
    assert!(lookup(&client).await.unwrap().is_some());
    assert_eq!(provider.count(), 2);
    assert_eq!(frmr.count(), 2);
    assert_eq!(frmr.hits()[1].authorization.as_deref(), Some("Bearer t2"));
    assert_eq!(recorder.outcomes(), vec![CallOutcome::Unauthorized, CallOutcome::Ok]);
    assert_eq!(recorder.tokens(), vec![true, true]);

    // The refreshed token is cached for the next lookups.
    assert!(lookup(&client).await.unwrap().is_some());
    assert_eq!(provider.count(), 2);
}

#[tokio::test]
async fn a_second_401_is_a_configuration_failure() {
    let provider = token_provider().await;
    let frmr = Server::always(Reply::new(401, echoing_envelope(401))).await;
    let (client, recorder) = client(config(frmr.base(), TokenSource::Provider(provider.token_url())));
    let failure = lookup(&client).await.unwrap_err();
    assert!(matches!(failure, Failure::Configuration { .. }), "{failure:?}");
    assert_eq!(provider.count(), 2);
    assert_eq!(frmr.count(), 2);
    assert_eq!(recorder.outcomes(), vec![CallOutcome::Unauthorized; 2]);
    assert_no_personal_data(&failure);
}

#[tokio::test]
async fn a_401_with_a_static_token_is_a_configuration_failure_at_once() {
    let frmr = Server::always(Reply::new(401, "")).await;
    let (client, recorder) = client(config(frmr.base(), static_token()));
    let failure = lookup(&client).await.unwrap_err();
    assert!(matches!(failure, Failure::Configuration { .. }), "{failure:?}");
    assert_eq!(frmr.count(), 1);
    assert_eq!(recorder.outcomes(), vec![CallOutcome::Unauthorized]);
    assert_no_personal_data(&failure);
}

#[tokio::test]
async fn a_403_is_a_configuration_failure_without_refresh() {
    let provider = token_provider().await;
    let frmr = Server::always(Reply::new(403, echoing_envelope(403))).await;
    let (client, _) = client(config(frmr.base(), TokenSource::Provider(provider.token_url())));
    let failure = lookup(&client).await.unwrap_err();
    assert!(matches!(failure, Failure::Configuration { .. }), "{failure:?}");
    assert_eq!(provider.count(), 1);
    assert_eq!(frmr.count(), 1);
}

#[tokio::test]
async fn a_failing_token_provider_is_transient_and_retried() {
    let provider = Server::always(Reply::new(503, "")).await;
    let frmr = Server::always(Reply::new(200, person_json())).await;
    // A failed fetch is remembered for min(1 s, timeout) = 200 ms here; the backoff
    // (300–600 ms) outlasts it, so every retry asks the provider again.
    let mut c = config(frmr.base(), TokenSource::Provider(provider.token_url()));
    c.timeout = Duration::from_millis(200);
    c.retry_min_delay = Duration::from_millis(300);
    c.retry_max_delay = Duration::from_millis(600);
    let (client, recorder) = client(c);
    let failure = lookup(&client).await.unwrap_err();
    assert!(matches!(failure, Failure::Retry { .. }), "{failure:?}");
    assert_eq!(failure.reason(), "token provider answered 503 (attempt 3 of 3)");
    assert_eq!(provider.count(), 3);
    assert_eq!(frmr.count(), 0);
    assert!(recorder.outcomes().is_empty());
    assert_eq!(recorder.tokens(), vec![false; 3]);
}

#[tokio::test]
async fn an_unreachable_token_provider_is_transient() {
    let port = {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    };
    let frmr = Server::always(Reply::new(200, person_json())).await;
    let provider = url::Url::parse(&format!("http://127.0.0.1:{port}/token")).unwrap();
    let (client, _) = client(config(frmr.base(), TokenSource::Provider(provider)));
    assert!(matches!(lookup(&client).await, Err(Failure::Retry { .. })));
    assert_eq!(frmr.count(), 0);
}

#[tokio::test]
async fn a_token_provider_refusing_or_answering_garbage_is_configuration() {
    for reply in [
        Reply::new(400, r#"{"error":"bad client"}"#),
        Reply::new(404, ""),
        Reply::new(200, "not json"),
        Reply::new(200, r#"{"token":""}"#),
        Reply::new(200, r#"{"token":"abc","token_type":"MAC"}"#),
    ] {
        let provider = Server::always(reply.clone()).await;
        let frmr = Server::always(Reply::new(200, person_json())).await;
        let (client, recorder) = client(config(frmr.base(), TokenSource::Provider(provider.token_url())));
        let failure = lookup(&client).await.unwrap_err();
        assert!(matches!(failure, Failure::Configuration { .. }), "{reply:?}: {failure:?}");
        assert_eq!(provider.count(), 1, "{reply:?}");
        assert_eq!(frmr.count(), 0);
        assert_eq!(recorder.tokens(), vec![false]);
    }
}

#[tokio::test]
async fn a_token_without_expiry_or_type_is_accepted() {
    let provider = Server::always(Reply::new(200, r#"{"token":"bare"}"#)).await;
    let frmr = Server::always(Reply::new(200, person_json())).await;
    let (client, _) = client(config(frmr.base(), TokenSource::Provider(provider.token_url())));
    assert!(lookup(&client).await.unwrap().is_some());
    assert!(lookup(&client).await.unwrap().is_some());
    assert_eq!(provider.count(), 1, "cached for the default 300 s lifetime");
    assert_eq!(frmr.hits()[0].authorization.as_deref(), Some("Bearer bare"));
}

#[tokio::test]
async fn a_short_lived_token_is_not_reused_after_half_its_lifetime() {
    let provider = Server::start(|_, n| Reply::new(200, format!(r#"{{"token":"t{n}","expires_in":"2"}}"#))).await;
    let frmr = Server::always(Reply::new(200, person_json())).await;
    let (client, _) = client(config(frmr.base(), TokenSource::Provider(provider.token_url())));
    assert!(lookup(&client).await.unwrap().is_some());
    assert!(lookup(&client).await.unwrap().is_some());
    assert_eq!(provider.count(), 1);
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(lookup(&client).await.unwrap().is_some());
    assert_eq!(provider.count(), 2);
}

/// Runs `n` lookups at once through `client`.
async fn concurrent_lookups(
    client: &Arc<FrmrClient>,
    n: usize,
) -> Vec<Result<Option<egisz_contract::frmr::FrmrPerson>, Failure>> {
    let mut tasks = tokio::task::JoinSet::new();
    for _ in 0..n {
        let client = client.clone();
        tasks.spawn(async move { lookup(&client).await });
    }
    let mut results = Vec::new();
    while let Some(result) = tasks.join_next().await {
        results.push(result.unwrap());
    }
    results
}

#[tokio::test]
async fn a_hanging_token_provider_is_asked_once_and_fails_every_lookup_within_one_timeout() {
    let timeout = Duration::from_millis(300);
    let provider = token_provider_with_delay(Duration::from_secs(10)).await;
    let frmr = Server::always(Reply::new(200, person_json())).await;
    let mut c = config(frmr.base(), TokenSource::Provider(provider.token_url()));
    c.timeout = timeout;
    let (client, recorder) = client(c);
    let client = Arc::new(client);

    let started = std::time::Instant::now();
    let results = concurrent_lookups(&client, 5).await;
    let elapsed = started.elapsed();

    assert_eq!(results.len(), 5);
    for result in results {
        let failure = result.unwrap_err();
        assert!(matches!(failure, Failure::Retry { .. }), "{failure:?}");
        // The retries of every lookup got the remembered failure, without a new fetch.
        assert_eq!(failure.reason(), "token provider timed out after 300 ms (attempt 3 of 3)");
    }
    // One fetch shared by every waiter and every attempt (what a timing bound would only
    // suggest); the time is reported, not asserted: a busy machine stretches it.
    assert_eq!(provider.count(), 1, "one fetch, shared by every waiter");
    eprintln!("five lookups through a provider that times out: {elapsed:?} (timeout {timeout:?})");
    assert_eq!(frmr.count(), 0);
    assert_eq!(recorder.tokens(), vec![false]);
}

#[tokio::test]
async fn a_failing_token_provider_is_asked_at_most_once_per_attempt_not_per_lookup() {
    let provider = Server::always(Reply::new(500, "")).await;
    let frmr = Server::always(Reply::new(200, person_json())).await;
    let c = config(frmr.base(), TokenSource::Provider(provider.token_url()));
    let attempts = c.retry_max_attempts as usize;
    let (client, recorder) = client(c);
    let client = Arc::new(client);

    for result in concurrent_lookups(&client, 5).await {
        let failure = result.unwrap_err();
        assert!(matches!(failure, Failure::Retry { .. }), "{failure:?}");
        assert_eq!(failure.reason(), "token provider answered 500 (attempt 3 of 3)");
    }
    let fetches = provider.count();
    assert!((1..=attempts).contains(&fetches), "{fetches} provider requests for 5 lookups of {attempts} attempts");
    assert_eq!(recorder.tokens(), vec![false; fetches]);
    assert_eq!(frmr.count(), 0);
}

#[tokio::test]
async fn a_failed_token_fetch_is_remembered_briefly() {
    let provider = Server::sequence(vec![Reply::new(503, ""), Reply::new(200, r#"{"token":"t2"}"#)]).await;
    let frmr = Server::always(Reply::new(200, person_json())).await;
    let mut c = config(frmr.base(), TokenSource::Provider(provider.token_url()));
    c.retry_max_attempts = 1;
    let (client, recorder) = client(c);

    assert!(matches!(lookup(&client).await, Err(Failure::Retry { .. })));
    // Right after: the same failure, without asking the provider (memo = min(1 s, 2 s)).
    let failure = lookup(&client).await.unwrap_err();
    assert_eq!(failure.reason(), "token provider answered 503 (attempt 1 of 1)");
    assert_eq!(provider.count(), 1);

    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert!(lookup(&client).await.unwrap().is_some());
    assert_eq!(provider.count(), 2);
    assert_eq!(recorder.tokens(), vec![false, true]);
    assert_eq!(frmr.hits()[0].authorization.as_deref(), Some("Bearer t2"));
}

#[tokio::test]
async fn a_cancelled_lookup_does_not_wedge_the_token_fetch() {
    let provider = token_provider_with_delay(Duration::from_millis(300)).await;
    let frmr = Server::always(Reply::new(200, person_json())).await;
    let (client, _) = client(config(frmr.base(), TokenSource::Provider(provider.token_url())));

    // The lookup that started the fetch gives up while the fetch runs.
    assert!(tokio::time::timeout(Duration::from_millis(50), lookup(&client)).await.is_err());
    // The next one runs the fetch itself instead of waiting forever.
    let person = tokio::time::timeout(Duration::from_secs(2), lookup(&client)).await.expect("not wedged");
    assert!(person.unwrap().is_some());
    assert_eq!(provider.count(), 2);
}

// ---------------------------------------------------------------------------------------
// Rate limit
// ---------------------------------------------------------------------------------------

#[tokio::test]
async fn the_rate_limit_spaces_calls_and_reports_waits() {
    let frmr = Server::always(Reply::new(200, person_json())).await;
    let mut c = config(frmr.base(), static_token());
    c.rate_per_second = 5.0;
    let (client, recorder) = client(c);
    let started = std::time::Instant::now();
    for _ in 0..11 {
        assert!(lookup(&client).await.unwrap().is_some());
    }
    let elapsed = started.elapsed();
    // Burst 5, then one call every 200 ms: eleven calls take at least 1.2 s however fast the
    // machine (a slow one only adds); the calls that came early waited and were reported.
    let waits = recorder.waits();
    assert!(elapsed >= Duration::from_millis(1100), "{elapsed:?} {waits:?}");
    if elapsed < Duration::from_millis(11 * 200) {
        assert!(!waits.is_empty(), "faster than the rate without waiting: {elapsed:?}");
    }
    assert_eq!(recorder.outcomes(), vec![CallOutcome::Ok; 11]);
}

#[tokio::test]
async fn retries_wait_for_the_rate_limiter_too() {
    let frmr = Server::always(Reply::new(503, "")).await;
    let mut c = config(frmr.base(), static_token());
    c.rate_per_second = 0.5; // one call every 2 s, burst 1
    c.retry_max_attempts = 2;
    c.retry_min_delay = Duration::from_millis(1);
    c.retry_max_delay = Duration::from_millis(1);
    let (client, recorder) = client(c);
    assert!(lookup(&client).await.is_err());
    let waits = recorder.waits();
    assert_eq!(waits.len(), 1, "{waits:?}");
    // The retry waited for its slot (2 s after the first call): at least a second of it
    // even if the first call took most of the other.
    assert!(waits[0] >= Duration::from_secs(1), "{waits:?}");
}

// ---------------------------------------------------------------------------------------
// Logs
// ---------------------------------------------------------------------------------------

/// Collects everything the crate logs.
#[derive(Clone, Default)]
struct LogBuffer(Arc<Mutex<Vec<u8>>>);

impl LogBuffer {
    /// Captures everything `egisz_frmr` logs on this thread until the guard is dropped.
    fn capture() -> CapturedLogs {
        let logs = LogBuffer::default();
        let writer = logs.clone();
        let subscriber = tracing_subscriber::fmt()
            .with_env_filter("egisz_frmr=trace")
            .with_writer(move || writer.clone())
            .with_ansi(false)
            .finish();
        CapturedLogs { logs, _guard: tracing::subscriber::set_default(subscriber) }
    }
}

struct CapturedLogs {
    logs: LogBuffer,
    _guard: tracing::subscriber::DefaultGuard,
}

impl CapturedLogs {
    fn text(&self) -> String {
        String::from_utf8(self.logs.0.lock().unwrap().clone()).unwrap()
    }
}

impl std::io::Write for LogBuffer {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test]
async fn logs_carry_the_organisation_but_never_snils_names_or_tokens() {
    let logs = LogBuffer::default();
    let writer = logs.clone();
    let subscriber = tracing_subscriber::fmt()
        .with_env_filter("egisz_frmr=trace")
        .with_writer(move || writer.clone())
        .with_ansi(false)
        .finish();
    let _guard = tracing::subscriber::set_default(subscriber);

    let provider = token_provider().await;
    let frmr = Server::start(|hit, n| match (hit.authorization.as_deref(), n) {
        (Some("Bearer t1"), _) => Reply::new(401, echoing_envelope(401)),
        (_, 2) => Reply::new(200, person_json()),
        (_, 3) => Reply::new(503, echoing_envelope(503)),
        _ => Reply::new(400, echoing_envelope(400)),
    })
    .await;
    let (client, _) = client(config(frmr.base(), TokenSource::Provider(provider.token_url())));
    assert!(lookup(&client).await.unwrap().is_some());
    assert!(lookup(&client).await.is_err());

    let text = String::from_utf8(logs.0.lock().unwrap().clone()).unwrap();
    assert!(text.contains(MO), "{text}");
    assert!(text.contains("FRMR lookup failed"), "{text}");
    for secret in [SNILS, "203-117-845", "Колпинская", "Анна", "Bearer t", "\"t1\"", "\"t2\""] {
        assert!(!text.contains(secret), "logs leak {secret}: {text}");
    }
}

// ---------------------------------------------------------------------------------------
// Configuration
// ---------------------------------------------------------------------------------------

#[test]
fn token_source_parsing() {
    assert_eq!(TokenSource::parse("static:eyJhbGciOi.x.y"), Ok(TokenSource::Static("eyJhbGciOi.x.y".to_owned())));
    assert!(matches!(
        TokenSource::parse("http://127.0.0.1:9000/token"),
        Ok(TokenSource::Provider(u)) if u.path() == "/token"
    ));
    for bad in ["", "static:", "my-token", "ftp://host/t", "http//host"] {
        assert!(TokenSource::parse(bad).is_err(), "{bad:?}");
    }
}

#[test]
fn invalid_configurations_are_refused() {
    let base = url::Url::parse("https://ips.host/h").unwrap();
    let build = |c: FrmrClientConfig| FrmrClient::new(c, Arc::new(egisz_contract::NoopObserver)).map(|_| ());
    assert!(build(FrmrClientConfig::new(base.clone(), static_token())).is_ok());

    let mut c = FrmrClientConfig::new(base.clone(), static_token());
    c.rate_per_second = 0.0;
    assert!(matches!(build(c), Err(FrmrClientError::InvalidConfig(_))));

    let mut c = FrmrClientConfig::new(base.clone(), static_token());
    c.retry_max_attempts = 0;
    assert!(matches!(build(c), Err(FrmrClientError::InvalidConfig(_))));

    let c = FrmrClientConfig::new(base.clone(), TokenSource::Static("a\nb".to_owned()));
    let err = build(c).unwrap_err();
    assert!(!err.to_string().contains("a\nb"));

    let mut c = FrmrClientConfig::new(base.clone(), static_token());
    c.extra_ca_bundle = Some("/nonexistent/ca.pem".into());
    assert!(matches!(build(c), Err(FrmrClientError::CaBundle { .. })));

    let garbage = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("frmr-not-a-ca.pem");
    std::fs::write(&garbage, "this is not a certificate\n").unwrap();
    let mut c = FrmrClientConfig::new(base, static_token());
    c.extra_ca_bundle = Some(garbage);
    assert!(matches!(build(c), Err(FrmrClientError::CaBundle { .. })));
}

#[test]
fn defaults_are_the_documented_ones() {
    let c = FrmrClientConfig::new(url::Url::parse("https://ips.host/h/").unwrap(), static_token());
    assert_eq!(c.rate_per_second, 2.0);
    assert_eq!(c.timeout, Duration::from_secs(5));
    assert_eq!(c.retry_max_attempts, 3);
    assert_eq!(c.retry_min_delay, Duration::from_millis(200));
    assert_eq!(c.retry_max_delay, Duration::from_secs(2));
    assert_eq!(c.extra_ca_bundle, None);
    assert!(c.user_agent.starts_with("egisz-gateway/"));
    assert!(!format!("{c:?}").contains("static-token"));
}

fn noop() -> Arc<dyn CallObserver> {
    Arc::new(egisz_contract::NoopObserver)
}

#[test]
fn validate_runs_exactly_the_checks_of_new() {
    let base = url::Url::parse("https://ips.host/h").unwrap();
    let ok = FrmrClientConfig::new(base.clone(), static_token());
    let with = |f: &dyn Fn(&mut FrmrClientConfig)| {
        let mut c = ok.clone();
        f(&mut c);
        c
    };
    let garbage = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("frmr-validate-not-a-ca.pem");
    std::fs::write(&garbage, "this is not a certificate\n").unwrap();
    let configs = [
        ok.clone(),
        with(&|c| c.token = TokenSource::Provider(url::Url::parse("http://127.0.0.1:8081/token").unwrap())),
        with(&|c| c.base_url = url::Url::parse("ftp://ips.host/h").unwrap()),
        with(&|c| c.rate_per_second = f64::NAN),
        with(&|c| c.retry_max_attempts = 0),
        with(&|c| c.timeout = Duration::ZERO),
        with(&|c| c.retry_min_delay = Duration::from_secs(10)),
        with(&|c| c.token = TokenSource::Static(String::new())),
        with(&|c| c.token = TokenSource::Static("a b".to_owned())),
        with(&|c| c.token = TokenSource::Static("a\u{1}b".to_owned())),
        with(&|c| c.token = TokenSource::Static("токен".to_owned())),
        with(&|c| c.token = TokenSource::Provider(url::Url::parse("ftp://sidecar/token").unwrap())),
        with(&|c| c.token = TokenSource::Provider(url::Url::parse("file:///tmp/token").unwrap())),
        with(&|c| c.user_agent = "egisz\ngateway".to_owned()),
        with(&|c| c.extra_ca_bundle = Some("/nonexistent/ca.pem".into())),
        with(&|c| c.extra_ca_bundle = Some(garbage.clone())),
    ];
    for (i, c) in configs.into_iter().enumerate() {
        let by_new = FrmrClient::new(c.clone(), noop()).map(drop).map_err(|e| e.to_string());
        assert_eq!(egisz_frmr::validate(&c).map_err(|e| e.to_string()), by_new, "config #{i}");
        assert_eq!(c.validate().map_err(|e| e.to_string()), by_new, "config #{i}");
        assert_eq!(by_new.is_ok(), i < 2, "config #{i}: {by_new:?}");
    }
}

#[test]
fn a_token_source_parse_accepts_is_never_refused_by_new() {
    let base = url::Url::parse("https://ips.host/h").unwrap();
    let inputs = [
        "static:abc",
        " static:eyJhbGciOi.x-y_z~+/= ",
        "static:",
        "static:a b",
        "static:a\tb",
        "static:a\u{1}b",
        "static:a\u{7f}",
        "static:токен",
        "http://127.0.0.1:9000/token",
        "https://user:pw@sidecar.local:8443/token?key=k",
        "HTTPS://sidecar.local/token",
        "http://[::1]:9000/token",
        "https://",
        "http://",
        "ftp://host/t",
        "file:///tmp/t",
        "my-token",
    ];
    let mut accepted = 0;
    for input in inputs {
        match TokenSource::parse(input) {
            Ok(source) => {
                accepted += 1;
                let built = FrmrClient::new(FrmrClientConfig::new(base.clone(), source), noop());
                assert!(built.is_ok(), "{input:?}: {:?}", built.err());
            }
            Err(e) => {
                let secret = input.trim().trim_start_matches("static:");
                assert!(secret.is_empty() || !e.contains(secret), "{input:?}: {e}");
            }
        }
    }
    assert_eq!(accepted, 6);
    // And what parse refuses, new refuses too when the source is built by hand.
    for source in [
        TokenSource::Static("a b".to_owned()),
        TokenSource::Static("a\u{1b}[0m".to_owned()),
        TokenSource::Provider(url::Url::parse("ftp://host/t").unwrap()),
    ] {
        let err = FrmrClient::new(FrmrClientConfig::new(base.clone(), source), noop()).unwrap_err();
        assert!(matches!(err, FrmrClientError::InvalidConfig(_)), "{err}");
    }
}
