//! The FRMR emulator over real HTTP: contract, tokens, faults, counters, admin, shutdown.

use std::time::Duration;

use egisz_sandbox::frmr::DEFAULT_STATIC_TOKEN;
use egisz_sandbox::{FaultMode, Faults, FrmrSandbox, FrmrSandboxConfig, FrmrStats};
use reqwest::StatusCode;
use serde_json::Value;
use tokio::time::{Instant, sleep, timeout};

const MO_2917: &str = "1.2.643.5.1.13.13.12.2.42.2917";
const KOLPINSKAYA: &str = "20311784514";
/// Main job in MO 3158, external part-time in MO 2917.
const TWO_MO: &str = "34786502816";
/// A valid SNILS (FRMR.md's test vector) that is not in the roster.
const ABSENT: &str = "11223344595";

async fn start() -> FrmrSandbox {
    start_with(FrmrSandboxConfig::default()).await
}

async fn start_with(config: FrmrSandboxConfig) -> FrmrSandbox {
    FrmrSandbox::start(config).await.expect("sandbox starts")
}

fn client() -> reqwest::Client {
    client_with_timeout(Duration::from_secs(10))
}

fn client_with_timeout(timeout: Duration) -> reqwest::Client {
    reqwest::Client::builder().no_proxy().timeout(timeout).build().unwrap()
}

fn person_url(sandbox: &FrmrSandbox, mo: &str, snils: &str) -> String {
    format!("{}person/full?mo={mo}&mr=true&snils={snils}", sandbox.base_url())
}

async fn lookup(sandbox: &FrmrSandbox, snils: &str) -> reqwest::Response {
    lookup_with(&client(), sandbox, snils, Some(DEFAULT_STATIC_TOKEN)).await.expect("an HTTP answer")
}

async fn lookup_with(
    client: &reqwest::Client,
    sandbox: &FrmrSandbox,
    snils: &str,
    token: Option<&str>,
) -> reqwest::Result<reqwest::Response> {
    let mut request = client.get(person_url(sandbox, MO_2917, snils));
    if let Some(token) = token {
        request = request.bearer_auth(token);
    }
    request.send().await
}

/// Checks FRMR's error envelope and that it does not leak the SNILS.
async fn assert_error_envelope(response: reqwest::Response, status: StatusCode) -> Value {
    assert_eq!(response.status(), status);
    let body: Value = response.json().await.expect("a JSON error envelope");
    assert_eq!(body["code"], status.as_u16(), "{body}");
    assert_eq!(body["reasonPhrase"], status.canonical_reason().unwrap(), "{body}");
    assert!(body["timestamp"].as_str().is_some_and(|t| t.len() >= 20), "{body}");
    let message = body["message"].as_str().expect("a message");
    assert!(!message.is_empty());
    for snils in [KOLPINSKAYA, TWO_MO, ABSENT] {
        assert!(!message.contains(snils), "{message}");
    }
    body
}

async fn wait_for_stats(sandbox: &FrmrSandbox, what: impl Fn(&FrmrStats) -> bool) -> FrmrStats {
    let deadline = Instant::now() + Duration::from_secs(5);
    loop {
        let stats = sandbox.stats();
        if what(&stats) {
            return stats;
        }
        assert!(Instant::now() < deadline, "stats never matched: {stats:?}");
        sleep(Duration::from_millis(10)).await;
    }
}

fn faults(mode: FaultMode) -> Faults {
    Faults { mode, error_rate: 1.0, ..Faults::default() }
}

#[tokio::test]
async fn urls_have_the_documented_shape() {
    let sandbox = start().await;
    let base = sandbox.base_url();
    assert!(base.starts_with("http://127.0.0.1:") && base.ends_with('/'), "{base}");
    assert!(sandbox.token_url().ends_with("/token"));
    assert!(sandbox.admin_url().ends_with("/_admin"));
    assert_ne!(base.trim_end_matches('/'), sandbox.token_url().trim_end_matches("/token"), "two listeners");
    assert!(sandbox.roster().len() >= 32);
    assert!(sandbox.roster().organizations().len() >= 6);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn found_person_comes_in_the_success_envelope_with_every_card() {
    let sandbox = start().await;
    let response = lookup(&sandbox, KOLPINSKAYA).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    let request_id = body["requestId"].as_str().expect("requestId");
    assert_eq!(request_id.len(), 36, "uuid-like: {request_id}");
    let person = &body["content"];
    assert_eq!(person["snils"], KOLPINSKAYA);
    assert_eq!(person["lastName"], "Колпинская");
    assert_eq!(person["firstName"], "Светлана");
    assert_eq!(person["patronymic"], "Александровна");
    assert_eq!(person["birthDate"], "1981-03-14");
    assert_eq!(person["gender"], 2);
    assert!(person["oid"].as_str().is_some_and(|oid| oid.contains('.')));
    let card = &person["personCard"][0];
    assert_eq!(card["oid"], MO_2917);
    assert_eq!(card["nrPmuDepartId"], "1.2.643.5.1.13.13.12.2.42.2917.0.4411");
    assert_eq!(card["fedPositionId"], "73");
    assert_eq!(card["fedPosition"], "врач-офтальмолог");
    assert_eq!(card["beginDate"], "2015-02-01");
    assert!(card["endDate"].is_null());
    assert!(card["temporaryDerelictions"].is_array());
    assert!(person["personAccreditation"]["accreditationProcedures"].is_array());
    assert!(person["educationCert"].is_array());
    // The person is served exactly as the roster holds it.
    assert_eq!(person, sandbox.roster().person(KOLPINSKAYA).unwrap());

    // All cards, in every MO, whatever `mo` asks for.
    let other_mo = "1.2.643.5.1.13.13.12.2.42.3011";
    let body: Value = client()
        .get(person_url(&sandbox, other_mo, TWO_MO))
        .bearer_auth(DEFAULT_STATIC_TOKEN)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let cards = body["content"]["personCard"].as_array().unwrap();
    assert_eq!(cards.len(), 2);
    assert!(cards.iter().any(|c| c["oid"] == MO_2917 && c["positionTypeId"] == 4));

    let stats = sandbox.stats();
    assert_eq!((stats.person_calls, stats.answered_ok), (2, 2));
    sandbox.shutdown().await;
}

#[tokio::test]
async fn not_found_is_a_404_envelope_or_a_null_content() {
    let sandbox = start().await;
    assert_error_envelope(lookup(&sandbox, ABSENT).await, StatusCode::NOT_FOUND).await;

    sandbox.set_faults(Faults { not_found_as_null: true, ..Faults::default() });
    let response = lookup(&sandbox, ABSENT).await;
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert!(body["requestId"].is_string());
    assert!(body.get("content").is_some_and(Value::is_null), "{body}");
    // A found person is unaffected.
    assert_eq!(lookup(&sandbox, KOLPINSKAYA).await.status(), StatusCode::OK);

    let stats = sandbox.stats();
    assert_eq!((stats.not_found, stats.answered_ok, stats.faulted), (2, 1, 0));
    sandbox.shutdown().await;
}

#[tokio::test]
async fn a_token_is_required() {
    let sandbox = start().await;
    let client = client();
    let none = lookup_with(&client, &sandbox, KOLPINSKAYA, None).await.unwrap();
    assert!(none.headers().contains_key("www-authenticate"));
    assert_error_envelope(none, StatusCode::UNAUTHORIZED).await;
    let bad = lookup_with(&client, &sandbox, KOLPINSKAYA, Some("made-up")).await.unwrap();
    assert_error_envelope(bad, StatusCode::UNAUTHORIZED).await;
    let basic = client
        .get(person_url(&sandbox, MO_2917, KOLPINSKAYA))
        .basic_auth("user", Some(DEFAULT_STATIC_TOKEN))
        .send()
        .await
        .unwrap();
    assert_error_envelope(basic, StatusCode::UNAUTHORIZED).await;
    let ok = lookup_with(&client, &sandbox, KOLPINSKAYA, Some(DEFAULT_STATIC_TOKEN)).await.unwrap();
    assert_eq!(ok.status(), StatusCode::OK);

    // 401 comes before 400: a request without a token learns nothing about its input.
    let bad_input = client.get(person_url(&sandbox, MO_2917, "123")).send().await.unwrap();
    assert_eq!(bad_input.status(), StatusCode::UNAUTHORIZED);

    let stats = sandbox.stats();
    assert_eq!((stats.person_calls, stats.unauthorized, stats.answered_ok), (5, 4, 1));
    sandbox.shutdown().await;
}

#[tokio::test]
async fn static_tokens_are_configurable() {
    let sandbox = start_with(FrmrSandboxConfig {
        static_tokens: vec!["one".into(), "two".into()],
        ..FrmrSandboxConfig::default()
    })
    .await;
    let client = client();
    for (token, status) in
        [("one", StatusCode::OK), ("two", StatusCode::OK), (DEFAULT_STATIC_TOKEN, StatusCode::UNAUTHORIZED)]
    {
        let response = lookup_with(&client, &sandbox, KOLPINSKAYA, Some(token)).await.unwrap();
        assert_eq!(response.status(), status, "{token}");
    }
    sandbox.shutdown().await;
}

async fn fetch_token(client: &reqwest::Client, sandbox: &FrmrSandbox) -> (String, u64) {
    let response = client.post(sandbox.token_url()).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let body: Value = response.json().await.unwrap();
    assert_eq!(body["token_type"], "Bearer");
    (body["token"].as_str().unwrap().to_owned(), body["expires_in"].as_u64().unwrap())
}

#[tokio::test]
async fn issued_tokens_work_until_revoked() {
    let sandbox = start().await;
    let client = client();
    let (token, expires_in) = fetch_token(&client, &sandbox).await;
    assert!(token.starts_with("sandbox-1-"), "{token}");
    assert_eq!(expires_in, 300);
    let (second, _) = fetch_token(&client, &sandbox).await;
    assert!(second.starts_with("sandbox-2-"), "{second}");
    assert_ne!(token, second);
    // GET is accepted too.
    let via_get: Value = client.get(sandbox.token_url()).send().await.unwrap().json().await.unwrap();
    assert!(via_get["token"].as_str().unwrap().starts_with("sandbox-3-"));

    let status = |r: reqwest::Result<reqwest::Response>| r.unwrap().status();
    assert_eq!(status(lookup_with(&client, &sandbox, KOLPINSKAYA, Some(&token)).await), StatusCode::OK);

    sandbox.revoke_tokens();
    assert_eq!(status(lookup_with(&client, &sandbox, KOLPINSKAYA, Some(&token)).await), StatusCode::UNAUTHORIZED);
    assert_eq!(status(lookup_with(&client, &sandbox, KOLPINSKAYA, Some(&second)).await), StatusCode::UNAUTHORIZED);
    assert_eq!(
        status(lookup_with(&client, &sandbox, KOLPINSKAYA, Some(DEFAULT_STATIC_TOKEN)).await),
        StatusCode::OK,
        "static tokens survive a revocation"
    );
    let (fresh, _) = fetch_token(&client, &sandbox).await;
    assert_eq!(status(lookup_with(&client, &sandbox, KOLPINSKAYA, Some(&fresh)).await), StatusCode::OK);

    let stats = sandbox.stats();
    assert_eq!((stats.tokens_issued, stats.unauthorized, stats.answered_ok), (4, 2, 3));
    sandbox.shutdown().await;
}

#[tokio::test]
async fn issued_tokens_expire() {
    // Long enough that a fetch and a lookup fit in it on a busy machine.
    let sandbox =
        start_with(FrmrSandboxConfig { token_ttl: Duration::from_secs(2), ..FrmrSandboxConfig::default() }).await;
    let client = client();
    let (token, expires_in) = fetch_token(&client, &sandbox).await;
    assert_eq!(expires_in, 2);
    let status = lookup_with(&client, &sandbox, KOLPINSKAYA, Some(&token)).await.unwrap().status();
    assert_eq!(status, StatusCode::OK);
    sleep(Duration::from_millis(2500)).await;
    let status = lookup_with(&client, &sandbox, KOLPINSKAYA, Some(&token)).await.unwrap().status();
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn malformed_requests_get_400() {
    let sandbox = start().await;
    let client = client();
    let base = sandbox.base_url();
    for query in [
        format!("mo={MO_2917}&mr=true"),
        format!("mo={MO_2917}&mr=true&snils=2031178451"),
        format!("mo={MO_2917}&mr=true&snils=203117845140"),
        format!("mo={MO_2917}&mr=true&snils=203-117-845%2014"),
        format!("mo={MO_2917}&mr=true&snils=2031178451x"),
        format!("mr=true&snils={KOLPINSKAYA}"),
        format!("mo=not-an-oid&mr=true&snils={KOLPINSKAYA}"),
        format!("mo={MO_2917}&mr=maybe&snils={KOLPINSKAYA}"),
    ] {
        let response =
            client.get(format!("{base}person/full?{query}")).bearer_auth(DEFAULT_STATIC_TOKEN).send().await.unwrap();
        assert_error_envelope(response, StatusCode::BAD_REQUEST).await;
    }
    let post =
        client.post(person_url(&sandbox, MO_2917, KOLPINSKAYA)).bearer_auth(DEFAULT_STATIC_TOKEN).send().await.unwrap();
    assert_eq!(post.headers()["allow"], "GET");
    assert_error_envelope(post, StatusCode::METHOD_NOT_ALLOWED).await;

    let stats = sandbox.stats();
    assert_eq!((stats.person_calls, stats.bad_requests, stats.answered_ok), (9, 9, 0));
    sandbox.shutdown().await;
}

#[tokio::test]
async fn other_paths_get_a_404_envelope() {
    let sandbox = start().await;
    let client = client();
    for path in ["", "person", "person/full/x", "person/20311784514", "_admin/stats", "token"] {
        let response =
            client.get(format!("{}{path}", sandbox.base_url())).bearer_auth(DEFAULT_STATIC_TOKEN).send().await.unwrap();
        assert_error_envelope(response, StatusCode::NOT_FOUND).await;
    }
    assert_eq!(sandbox.stats().person_calls, 0);
    let control = client.get(format!("{}/nothing", sandbox.admin_url())).send().await.unwrap();
    assert_error_envelope(control, StatusCode::NOT_FOUND).await;
    sandbox.shutdown().await;
}

#[tokio::test]
async fn too_many_requests_with_retry_after() {
    let sandbox = start().await;
    sandbox.set_faults(Faults { retry_after_secs: Some(7), ..faults(FaultMode::TooManyRequests) });
    let response = lookup(&sandbox, KOLPINSKAYA).await;
    assert_eq!(response.headers()["retry-after"], "7");
    assert_error_envelope(response, StatusCode::TOO_MANY_REQUESTS).await;

    sandbox.set_faults(faults(FaultMode::TooManyRequests));
    let response = lookup(&sandbox, KOLPINSKAYA).await;
    assert!(!response.headers().contains_key("retry-after"));
    assert_error_envelope(response, StatusCode::TOO_MANY_REQUESTS).await;
    let stats = sandbox.stats();
    assert_eq!((stats.person_calls, stats.faulted, stats.answered_ok), (2, 2, 0));
    sandbox.shutdown().await;
}

#[tokio::test]
async fn server_errors() {
    let sandbox = start().await;
    sandbox.set_faults(Faults { retry_after_secs: Some(30), ..faults(FaultMode::ServerError) });
    let response = lookup(&sandbox, KOLPINSKAYA).await;
    assert_eq!(response.headers()["retry-after"], "30");
    assert_error_envelope(response, StatusCode::SERVICE_UNAVAILABLE).await;

    sandbox.set_faults(Faults { retry_after_secs: Some(30), ..faults(FaultMode::InternalError) });
    let response = lookup(&sandbox, KOLPINSKAYA).await;
    assert!(!response.headers().contains_key("retry-after"));
    assert_error_envelope(response, StatusCode::INTERNAL_SERVER_ERROR).await;
    assert_eq!(sandbox.stats().faulted, 2);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn faults_come_before_the_token_check() {
    let sandbox = start().await;
    sandbox.set_faults(faults(FaultMode::ServerError));
    let response = lookup_with(&client(), &sandbox, KOLPINSKAYA, None).await.unwrap();
    assert_eq!(response.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(sandbox.stats().unauthorized, 0);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn error_rate_zero_and_mode_none_fault_nothing() {
    let sandbox = start().await;
    sandbox.set_faults(Faults { mode: FaultMode::ServerError, error_rate: 0.0, ..Faults::default() });
    assert_eq!(lookup(&sandbox, KOLPINSKAYA).await.status(), StatusCode::OK);
    sandbox.set_faults(Faults { mode: FaultMode::None, error_rate: 1.0, fail_next: 3, ..Faults::default() });
    assert_eq!(lookup(&sandbox, KOLPINSKAYA).await.status(), StatusCode::OK);
    assert_eq!(sandbox.faults().fail_next, 3, "not used up while mode is none");
    assert_eq!(sandbox.stats().faulted, 0);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn error_rate_faults_about_that_share() {
    let sandbox = start().await;
    sandbox.set_faults(Faults { mode: FaultMode::InternalError, error_rate: 0.5, ..Faults::default() });
    let client = client();
    let mut faulted = 0;
    for _ in 0..200 {
        let status = lookup_with(&client, &sandbox, KOLPINSKAYA, Some(DEFAULT_STATIC_TOKEN)).await.unwrap().status();
        if status == StatusCode::INTERNAL_SERVER_ERROR {
            faulted += 1;
        } else {
            assert_eq!(status, StatusCode::OK);
        }
    }
    // Binomial(200, 0.5): 50..150 fails with probability far below 1e-10.
    assert!((50..=150).contains(&faulted), "{faulted} of 200");
    assert_eq!(sandbox.stats().faulted, faulted);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn fail_next_counts_down() {
    let sandbox = start().await;
    sandbox.set_faults(Faults { mode: FaultMode::ServerError, fail_next: 2, ..Faults::default() });
    assert_eq!(lookup(&sandbox, KOLPINSKAYA).await.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(sandbox.faults().fail_next, 1);
    assert_eq!(lookup(&sandbox, KOLPINSKAYA).await.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert_eq!(sandbox.faults().fail_next, 0);
    assert_eq!(lookup(&sandbox, KOLPINSKAYA).await.status(), StatusCode::OK);
    let stats = sandbox.stats();
    assert_eq!((stats.person_calls, stats.faulted, stats.answered_ok), (3, 2, 1));
    sandbox.shutdown().await;
}

#[tokio::test]
async fn hang_never_answers() {
    let sandbox = start().await;
    sandbox.set_faults(faults(FaultMode::Hang));
    let started = Instant::now();
    let error = lookup_with(
        &client_with_timeout(Duration::from_millis(300)),
        &sandbox,
        KOLPINSKAYA,
        Some(DEFAULT_STATIC_TOKEN),
    )
    .await
    .expect_err("no answer");
    assert!(error.is_timeout(), "{error}");
    assert!(started.elapsed() >= Duration::from_millis(300));
    let stats = sandbox.stats();
    assert_eq!((stats.person_calls, stats.faulted, stats.answered_ok), (1, 1, 0));

    // The control listener is not affected.
    let (token, _) = fetch_token(&client(), &sandbox).await;
    sandbox.set_faults(Faults::default());
    let response = lookup_with(&client(), &sandbox, KOLPINSKAYA, Some(&token)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn down_drops_every_connection_without_an_answer() {
    let sandbox = start().await;
    let client = client();
    sandbox.set_faults(Faults { mode: FaultMode::Down, error_rate: 0.0, ..Faults::default() });
    for _ in 0..3 {
        let error =
            lookup_with(&client, &sandbox, KOLPINSKAYA, Some(DEFAULT_STATIC_TOKEN)).await.expect_err("no HTTP answer");
        assert!(!error.is_timeout() && error.status().is_none(), "{error}");
    }
    let stats = wait_for_stats(&sandbox, |s| s.dropped_connections >= 3).await;
    assert_eq!((stats.person_calls, stats.faulted), (0, 0));

    // The control listener is not affected, and the service comes back.
    let admin: Value =
        client.get(format!("{}/faults", sandbox.admin_url())).send().await.unwrap().json().await.unwrap();
    assert_eq!(admin["mode"], "down");
    sandbox.set_faults(Faults::default());
    assert_eq!(lookup(&sandbox, KOLPINSKAYA).await.status(), StatusCode::OK);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn going_down_drops_open_connections() {
    let sandbox = start().await;
    let client = client();
    // A keep-alive connection stays open in the client's pool after this answer.
    let response = lookup_with(&client, &sandbox, KOLPINSKAYA, Some(DEFAULT_STATIC_TOKEN)).await.unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    response.bytes().await.unwrap();
    assert_eq!(sandbox.stats().dropped_connections, 0);
    sandbox.set_faults(faults(FaultMode::Down));
    wait_for_stats(&sandbox, |s| s.dropped_connections >= 1).await;
    sandbox.shutdown().await;
}

#[tokio::test]
async fn down_from_the_start() {
    let sandbox = start_with(FrmrSandboxConfig {
        faults: Faults { mode: FaultMode::Down, ..Faults::default() },
        ..FrmrSandboxConfig::default()
    })
    .await;
    assert!(lookup_with(&client(), &sandbox, KOLPINSKAYA, Some(DEFAULT_STATIC_TOKEN)).await.is_err());
    assert_eq!(sandbox.stats().dropped_connections, 1);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn latency_is_added_to_every_answer() {
    let sandbox = start().await;
    let latency = Duration::from_millis(250);
    sandbox.set_faults(Faults { latency_ms: 250, ..Faults::default() });
    let started = Instant::now();
    assert_eq!(lookup(&sandbox, KOLPINSKAYA).await.status(), StatusCode::OK);
    assert!(started.elapsed() >= latency, "{:?}", started.elapsed());

    let started = Instant::now();
    assert_eq!(lookup(&sandbox, ABSENT).await.status(), StatusCode::NOT_FOUND);
    assert!(started.elapsed() >= latency);

    sandbox.set_faults(Faults { latency_ms: 250, ..faults(FaultMode::TooManyRequests) });
    let started = Instant::now();
    assert_eq!(lookup(&sandbox, KOLPINSKAYA).await.status(), StatusCode::TOO_MANY_REQUESTS);
    assert!(started.elapsed() >= latency);

    // Not the control listener: with a latency no token fetch could come near, it still
    // answers well before it.
    sandbox.set_faults(Faults { latency_ms: 60_000, ..Faults::default() });
    let started = Instant::now();
    fetch_token(&client(), &sandbox).await;
    assert!(started.elapsed() < Duration::from_secs(30), "{:?}", started.elapsed());
    sandbox.shutdown().await;
}

#[tokio::test]
async fn stats_count_and_reset() {
    let sandbox = start().await;
    let client = client();
    lookup(&sandbox, KOLPINSKAYA).await;
    lookup(&sandbox, ABSENT).await;
    lookup_with(&client, &sandbox, KOLPINSKAYA, None).await.unwrap();
    sandbox.set_faults(Faults { fail_next: 1, ..faults(FaultMode::TooManyRequests) });
    lookup(&sandbox, KOLPINSKAYA).await;
    fetch_token(&client, &sandbox).await;
    assert_eq!(
        sandbox.stats(),
        FrmrStats {
            person_calls: 4,
            answered_ok: 1,
            not_found: 1,
            unauthorized: 1,
            bad_requests: 0,
            faulted: 1,
            dropped_connections: 0,
            tokens_issued: 1,
        }
    );
    sandbox.reset_stats();
    assert_eq!(sandbox.stats(), FrmrStats::default());
    assert_eq!(sandbox.faults().mode, FaultMode::TooManyRequests, "faults stay");
    sandbox.shutdown().await;
}

#[tokio::test]
async fn admin_endpoints() {
    let sandbox = start().await;
    let client = client();
    let admin = sandbox.admin_url();
    lookup(&sandbox, KOLPINSKAYA).await;

    let stats: FrmrStats = client.get(format!("{admin}/stats")).send().await.unwrap().json().await.unwrap();
    assert_eq!(stats, sandbox.stats());
    assert_eq!(stats.answered_ok, 1);

    let current: Faults = client.get(format!("{admin}/faults")).send().await.unwrap().json().await.unwrap();
    assert_eq!(current, Faults::default());

    // A partial object sets what it names; the answer is the faults now in force.
    let response = client
        .put(format!("{admin}/faults"))
        .json(&serde_json::json!({"mode": "internal_error", "fail_next": 1, "latency_ms": 5}))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::OK);
    let set: Faults = response.json().await.unwrap();
    let expected = Faults { mode: FaultMode::InternalError, fail_next: 1, latency_ms: 5, ..Faults::default() };
    assert_eq!(set, expected);
    assert_eq!(sandbox.faults(), expected);
    assert_eq!(lookup(&sandbox, KOLPINSKAYA).await.status(), StatusCode::INTERNAL_SERVER_ERROR);

    for bad in [
        serde_json::json!({"error_rate": 1.5}),
        serde_json::json!({"mode": "sideways"}),
        serde_json::json!({"latency_ms": -1}),
    ] {
        let response = client.put(format!("{admin}/faults")).json(&bad).send().await.unwrap();
        assert!(response.status().is_client_error(), "{bad}: {}", response.status());
        let body: Value = response.json().await.unwrap();
        assert!(body["code"].as_u64().is_some_and(|c| (400..500).contains(&c)));
    }
    let not_json = client
        .put(format!("{admin}/faults"))
        .header("content-type", "application/json")
        .body("{")
        .send()
        .await
        .unwrap();
    assert_eq!(not_json.status(), StatusCode::BAD_REQUEST);
    assert_eq!(sandbox.faults().mode, FaultMode::InternalError, "bad input changes nothing");

    // Revocation over HTTP.
    let (token, _) = fetch_token(&client, &sandbox).await;
    let response = client.post(format!("{admin}/revoke-tokens")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    sandbox.set_faults(Faults::default());
    let status = lookup_with(&client, &sandbox, KOLPINSKAYA, Some(&token)).await.unwrap().status();
    assert_eq!(status, StatusCode::UNAUTHORIZED);

    // Reset clears stats and faults.
    sandbox.set_faults(faults(FaultMode::Down));
    let response = client.post(format!("{admin}/reset")).send().await.unwrap();
    assert_eq!(response.status(), StatusCode::NO_CONTENT);
    assert_eq!(sandbox.faults(), Faults::default());
    assert_eq!(sandbox.stats(), FrmrStats::default());
    assert_eq!(lookup(&sandbox, KOLPINSKAYA).await.status(), StatusCode::OK);
    sandbox.shutdown().await;
}

#[tokio::test]
async fn shutdown_returns_promptly_with_a_hung_request() {
    let sandbox = start().await;
    sandbox.set_faults(faults(FaultMode::Hang));
    let url = person_url(&sandbox, MO_2917, KOLPINSKAYA);
    let hung = tokio::spawn(async move {
        reqwest::Client::builder().no_proxy().build().unwrap().get(url).bearer_auth(DEFAULT_STATIC_TOKEN).send().await
    });
    wait_for_stats(&sandbox, |s| s.faulted == 1).await;

    let started = Instant::now();
    timeout(Duration::from_secs(2), sandbox.shutdown()).await.expect("shutdown does not wait for a hung request");
    assert!(started.elapsed() < Duration::from_secs(2));
    let outcome = timeout(Duration::from_secs(2), hung).await.expect("the hung client is released").unwrap();
    assert!(outcome.is_err(), "the hung request never gets an answer");
}

#[tokio::test]
async fn shutdown_also_returns_promptly_during_latency_and_closes_listeners() {
    let sandbox = start().await;
    sandbox.set_faults(Faults { latency_ms: 60_000, ..Faults::default() });
    let url = person_url(&sandbox, MO_2917, KOLPINSKAYA);
    let base = sandbox.base_url();
    let token_url = sandbox.token_url();
    let slow = tokio::spawn(async move { client().get(url).bearer_auth(DEFAULT_STATIC_TOKEN).send().await });
    wait_for_stats(&sandbox, |s| s.person_calls == 1).await;
    timeout(Duration::from_secs(2), sandbox.shutdown()).await.expect("shutdown does not wait out injected latency");
    assert!(slow.await.unwrap().is_err());
    assert!(client().get(base).send().await.is_err(), "service listener closed");
    assert!(client().post(token_url).send().await.is_err(), "control listener closed");
}

#[tokio::test]
async fn a_roster_file_replaces_the_builtin_one() {
    let dir = std::env::temp_dir().join(format!("egisz-sandbox-test-{}", std::process::id()));
    std::fs::create_dir_all(&dir).unwrap();
    let path = dir.join("roster.json");
    std::fs::write(&path, r#"[{"snils":"11223344595","lastName":"Тестова","firstName":"Анна","personCard":[]}]"#)
        .unwrap();
    let sandbox = start_with(FrmrSandboxConfig { roster: Some(path.clone()), ..FrmrSandboxConfig::default() }).await;
    assert_eq!(sandbox.roster().len(), 1);
    assert_eq!(lookup(&sandbox, ABSENT).await.status(), StatusCode::OK);
    assert_eq!(lookup(&sandbox, KOLPINSKAYA).await.status(), StatusCode::NOT_FOUND);
    sandbox.shutdown().await;

    std::fs::write(&path, r#"[{"snils":"1"}]"#).unwrap();
    let error = FrmrSandbox::start(FrmrSandboxConfig { roster: Some(path.clone()), ..FrmrSandboxConfig::default() })
        .await
        .expect_err("a malformed roster is refused");
    assert_eq!(error.kind(), std::io::ErrorKind::InvalidData);
    std::fs::remove_dir_all(&dir).unwrap();
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_requests_are_counted_exactly() {
    let sandbox = start().await;
    let client = client();
    let mut requests = tokio::task::JoinSet::new();
    for i in 0..50 {
        let snils = if i % 2 == 0 { KOLPINSKAYA } else { ABSENT };
        let request = client.get(person_url(&sandbox, MO_2917, snils)).bearer_auth(DEFAULT_STATIC_TOKEN);
        requests.spawn(async move { request.send().await.map(|r| r.status()) });
    }
    let mut statuses = Vec::new();
    while let Some(status) = requests.join_next().await {
        statuses.push(status.unwrap().unwrap());
    }
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::OK).count(), 25);
    assert_eq!(statuses.iter().filter(|s| **s == StatusCode::NOT_FOUND).count(), 25);
    let stats = sandbox.stats();
    assert_eq!((stats.person_calls, stats.answered_ok, stats.not_found), (50, 25, 25));
    sandbox.shutdown().await;
}
