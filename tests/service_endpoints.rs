//! Service endpoints, the OpenAPI description, and the embedded default.

mod common;

use common::{AUTHOR_SNILS, Db, MO_2917, TestEnv};
use egisz_gateway::app;
use egisz_gateway::config::Config;
use serde_json::Value;

on_both_backends!(health_readiness_metrics_and_openapi, a_gateway_with_real_services_keeps_no_demo_client);

async fn health_readiness_metrics_and_openapi(db: Db) {
    let env = TestEnv::start(db).await;
    let res = env.http.get(env.url("/healthz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let id = res.headers()["x-request-id"].to_str().unwrap().to_owned();
    assert_eq!(id.len(), 36, "a UUID request id: {id}");
    let res = env.http.get(env.url("/healthz")).header("x-request-id", "abc-123").send().await.unwrap();
    assert_eq!(res.headers()["x-request-id"], "abc-123", "a caller's request id is kept");
    let res = env.http.get(env.url("/healthz")).header("x-request-id", "a b<script>").send().await.unwrap();
    assert_eq!(res.headers()["x-request-id"].len(), 36, "a malformed request id is replaced");
    for i in 0..3 {
        let method = reqwest::Method::from_bytes(format!("M{i}X").as_bytes()).unwrap();
        env.http.request(method, env.url("/healthz")).send().await.unwrap();
    }

    let res = env.http.get(env.url("/readyz")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let body: Value = res.json().await.unwrap();
    assert_eq!(
        body["database"],
        match db {
            Db::Sqlite => "sqlite",
            Db::Postgres => "postgres",
        }
    );

    let key = env.verifier().await;
    env.staff(&key, AUTHOR_SNILS, &format!("organization={MO_2917}")).await;
    env.staff(&key, AUTHOR_SNILS, &format!("organization={MO_2917}")).await;
    let metrics = env.http.get(env.url("/metrics")).send().await.unwrap().text().await.unwrap();
    for expected in [
        "egisz_http_requests_total{method=\"GET\",route=\"/api/v1/staff/{snils}\",status=\"200\"} 2",
        "egisz_outside_calls_total{service=\"frmr\",outcome=\"ok\"} 1",
        "egisz_staff_lookups_total{result=\"cache\"} 1",
        "egisz_staff_lookups_total{result=\"frmr\"} 1",
        "egisz_http_request_duration_seconds_bucket",
    ] {
        assert!(metrics.contains(expected), "missing {expected} in\n{metrics}");
    }
    // A storm of scrapes costs no more reads of the database than one every 5 s.
    let reads = |text: &str| -> u64 {
        text.lines()
            .find_map(|l| l.strip_prefix("egisz_queue_figures_reads_total "))
            .and_then(|n| n.trim().parse().ok())
            .expect("the reads counter")
    };
    let before = reads(&metrics);
    let started = std::time::Instant::now();
    let storm: Vec<String> = futures::future::join_all(
        (0..200).map(|_| async { env.http.get(env.url("/metrics")).send().await.unwrap().text().await.unwrap() }),
    )
    .await;
    let allowed = 1 + started.elapsed().as_secs() / 5;
    let after = storm.iter().map(|t| reads(t)).max().unwrap();
    assert!(after - before <= allowed, "{} reads for 200 scrapes in {:?}", after - before, started.elapsed());
    assert!(storm.iter().all(|t| t.contains("egisz_submissions{status=\"queued\"}")), "every scrape has the gauges");
    assert!(!metrics.contains(AUTHOR_SNILS), "metrics never carry a SNILS");
    assert!(!metrics.contains("M0X"), "arbitrary methods do not become label values");
    assert!(metrics.contains("method=\"other\""), "{metrics}");

    let res = env.http.get(env.url("/api/openapi.json")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let doc: Value = res.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in ["/api/v1/staff/{snils}", "/api/v1/staff/verify", "/healthz", "/readyz", "/metrics"] {
        assert!(doc["paths"][path].is_object(), "{path} documented");
    }
    assert!(doc["components"]["securitySchemes"]["api_key"].is_object());
    assert!(doc["components"]["schemas"]["Problem"].is_object());
    env.shutdown().await;
}

/// `serve` on the embedded default: sandbox FRMR in-process, a demo client whose key is
/// written to a 0600 file, kept across restarts.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn embedded_default_runs_with_a_demo_key() {
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("data/sandbox-api-key");
    let env: Vec<(String, String)> = [
        ("EGISZ__DATABASE__URL", format!("sqlite://{}/data/egisz-gateway.db", dir.path().display())),
        ("EGISZ__API__LISTEN", "127.0.0.1:0".into()),
        ("EGISZ__SANDBOX__API_KEY_FILE", key_file.display().to_string()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let config = Config::load(None, &env).unwrap();
    let gw = app::start(&config).await.expect("embedded default starts");
    assert!(gw.frmr_sandbox().is_some(), "sandbox FRMR runs in-process");

    let key = std::fs::read_to_string(&key_file).expect("key file written").trim().to_owned();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(&key_file).unwrap().permissions().mode() & 0o777;
        assert_eq!(mode, 0o600);
    }
    let http = common::http_client();
    let url =
        format!("{}/api/v1/staff/{AUTHOR_SNILS}?organization={MO_2917}&position=73&date=2023-08-18", gw.api_url());
    let body: Value = http.get(&url).bearer_auth(&key).send().await.unwrap().json().await.unwrap();
    assert_eq!(body["verdict"], "verified", "{body}");
    assert_eq!(body["source"], "frmr");
    let stats = gw.frmr_sandbox().unwrap().stats();
    assert_eq!(stats.person_calls, 1, "the real adapter called the emulator over HTTP");
    assert_eq!(stats.tokens_issued, 1, "through the emulator's token provider");
    gw.shutdown().await;

    let gw = app::start(&config).await.expect("restarts");
    let again = std::fs::read_to_string(&key_file).unwrap().trim().to_owned();
    assert_eq!(again, key, "the demo key survives a restart");
    let url = format!("{}/api/v1/staff/{AUTHOR_SNILS}?organization={MO_2917}", gw.api_url());
    let res = http.get(&url).bearer_auth(&key).send().await.unwrap();
    assert_eq!(res.status(), 200);
    gw.shutdown().await;
}

/// A database a sandbox run left its demo client in (every role), started with every
/// service real: the demo client is revoked, no key file is written, no emulator runs.
async fn a_gateway_with_real_services_keeps_no_demo_client(db: Db) {
    use egisz_gateway::auth::{self, Role, Scope};
    let test_db = common::TestDb::new(db).await;
    let dir = tempfile::tempdir().unwrap();
    let key_file = dir.path().join("sandbox-api-key");
    let base = Config::load(None, &[("EGISZ__DATABASE__URL".into(), test_db.url.clone())]).unwrap();
    let store = egisz_gateway::store::connect(&base.database).await.unwrap();
    let demo = auth::issue(
        app::DEMO_CLIENT_NAME,
        Role::ALL.into_iter().collect(),
        Scope::Only([egisz_contract::Oid::parse(MO_2917).unwrap()].into_iter().collect()),
        egisz_gateway::now(),
    );
    store.insert_client(&demo.client).await.unwrap();

    let frmr = egisz_sandbox::FrmrSandbox::start(Default::default()).await.unwrap();
    let listener_port = common::binary::free_port();
    let remd = egisz_sandbox::RemdSandbox::start(egisz_sandbox::RemdSandboxConfig {
        callback_url: Some(format!("http://127.0.0.1:{listener_port}/")),
        ..Default::default()
    })
    .await
    .unwrap();
    let mut env: Vec<(String, String)> = [
        ("EGISZ__DATABASE__URL", test_db.url.clone()),
        ("EGISZ__API__LISTEN", "127.0.0.1:0".into()),
        ("EGISZ__REMD_LISTENER__LISTEN", format!("127.0.0.1:{listener_port}")),
        ("EGISZ__REMD__MODE", "remote".into()),
        ("EGISZ__REMD__ENDPOINT", remd.endpoint()),
        ("EGISZ__REMD__CLIENT_ENTITY_ID", remd.client_entity_id().to_owned()),
        ("EGISZ__NSI__MODE", "off".into()),
        ("EGISZ__VALIDATION__VERIFIER", "none".into()),
        ("EGISZ__SANDBOX__API_KEY_FILE", key_file.display().to_string()),
        ("EGISZ__LOG__LEVEL", "warn".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    env.extend(common::remote_frmr_env(&frmr));
    let config = Config::load(None, &env).unwrap();
    let gw = app::start(&config).await.expect("starts with every service real");
    assert!(gw.frmr_sandbox().is_none() && gw.remd_sandbox().is_none(), "no emulator in the process");
    assert!(!key_file.exists(), "no demo key written");
    let demos: Vec<_> =
        store.list_clients().await.unwrap().into_iter().filter(|c| c.name == app::DEMO_CLIENT_NAME).collect();
    assert_eq!(demos.len(), 1);
    assert!(demos[0].revoked_at.is_some(), "the demo client left in the database is revoked");
    let res = common::http_client()
        .get(format!("{}/api/v1/staff/{AUTHOR_SNILS}?organization={MO_2917}", gw.api_url()))
        .bearer_auth(&demo.key)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401, "its key opens nothing");
    gw.shutdown().await;

    // And a configuration put together in code is checked again at the start.
    let mut mixed = config.clone();
    mixed.frmr.mode = egisz_gateway::config::ServiceMode::Sandbox;
    let err = app::start(&mixed).await.err().expect("a sandbox FRMR beside a real REMD is refused").to_string();
    assert!(err.contains("frmr.mode"), "{err}");
    remd.shutdown().await;
}
