//! The crash test: the gateway binary, started as a child process, is killed with SIGKILL
//! while 500 documents flow, then started again on the same database. Every document it
//! acknowledged with 202 must end registered, exactly once in the register.
//!
//! REMD (the emulator) runs in the test process, so it outlives the gateway; the gateway
//! talks to it in remote mode, as it would to the real one.

mod common;

use std::collections::{HashMap, HashSet};
use std::process::{Child, Command, Stdio};
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{TimeZone, Utc};
use common::{AUTHOR_SNILS, Db, MO_2917, TestDb};
use egisz_contract::{Oid, Snils};
use egisz_gateway::auth::{self, Role, Scope};
use egisz_gateway::config::Config;
use egisz_gateway::store;
use egisz_sandbox::{RemdSandbox, RemdSandboxConfig};
use egisz_semd::test_pki::TestCa;
use serde_json::json;

on_both_backends!(documents_acknowledged_before_a_sigkill_are_registered_exactly_once);

const SAMPLE: &str = include_str!("../semd/tests/data/tmk-protocol-40.xml");
const DOCUMENTS: usize = 500;

fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port()
}

struct Gateway {
    child: Child,
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn spawn(env: &[(String, String)]) -> Gateway {
    let mut cmd = Command::new(env!("CARGO_BIN_EXE_egisz-gateway"));
    cmd.arg("serve").env_remove("RUST_LOG").stdout(Stdio::null()).stderr(Stdio::null());
    for (k, v) in env {
        cmd.env(k, v);
    }
    Gateway { child: cmd.spawn().expect("the gateway binary starts") }
}

async fn wait_ready(http: &reqwest::Client, api: &str) {
    for _ in 0..200 {
        if http.get(format!("{api}/readyz")).send().await.is_ok_and(|r| r.status() == 200) {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the gateway did not become ready");
}

async fn documents_acknowledged_before_a_sigkill_are_registered_exactly_once(db: Db) {
    let test_db = TestDb::new(db).await;
    let scratch = tempfile::tempdir().unwrap();
    let (api_port, remd_port) = (free_port(), free_port());
    let api = format!("http://127.0.0.1:{api_port}");
    let remd = RemdSandbox::start(RemdSandboxConfig {
        callback_url: Some(format!("http://127.0.0.1:{remd_port}/")),
        // REMD takes its time, so that the kill finds documents at every stage.
        processing_delay: Duration::from_millis(300),
        ..RemdSandboxConfig::default()
    })
    .await
    .unwrap();
    let env: Vec<(String, String)> = [
        ("EGISZ__DATABASE__URL", test_db.url.clone()),
        ("EGISZ__API__LISTEN", format!("127.0.0.1:{api_port}")),
        ("EGISZ__REMD_LISTENER__LISTEN", format!("127.0.0.1:{remd_port}")),
        ("EGISZ__REMD__MODE", "remote".into()),
        ("EGISZ__REMD__ENDPOINT", remd.endpoint()),
        ("EGISZ__REMD__CLIENT_ENTITY_ID", remd.client_entity_id().to_owned()),
        ("EGISZ__REMD__TIMEOUT_MS", "1000".into()),
        ("EGISZ__REMD__RATE_PER_SECOND", "60".into()),
        ("EGISZ__REMD__BURST", "5".into()),
        ("EGISZ__RELAY__CONCURRENCY", "8".into()),
        ("EGISZ__RELAY__LEASE_FOR", "3s".into()),
        ("EGISZ__RELAY__POLL_INTERVAL_MS", "100".into()),
        ("EGISZ__RELAY__RESULT_CHECK_AFTER", "2s".into()),
        ("EGISZ__RELAY__RESULT_DEADLINE", "30s".into()),
        ("EGISZ__RELAY__RECONCILE_AFTER", "200ms".into()),
        ("EGISZ__RELAY__RETRY_BASE", "200ms".into()),
        ("EGISZ__RELAY__RETRY_CAP", "2s".into()),
        ("EGISZ__SANDBOX__API_KEY_FILE", format!("{}/key", scratch.path().display())),
        ("EGISZ__LOG__LEVEL", "warn".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();

    // A client, made in the database before the gateway starts.
    let config = Config::load(None, &env).expect("valid configuration");
    let key = {
        let s = store::connect(&config.database).await.unwrap();
        let issued = auth::issue(
            "crash test",
            [Role::Submitter, Role::Reader].into_iter().collect(),
            Scope::Only([Oid::parse(MO_2917).unwrap()].into_iter().collect()),
            egisz_gateway::now(),
        );
        s.insert_client(&issued.client).await.unwrap();
        issued.key
    };

    let signer = TestCa::new("test-ca").issue_doctor(
        "author",
        &Snils::parse(AUTHOR_SNILS).unwrap(),
        Utc.with_ymd_and_hms(2020, 1, 1, 0, 0, 0).unwrap(),
        Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap(),
    );
    let bodies: Vec<(String, serde_json::Value)> = (0..DOCUMENTS)
        .map(|i| {
            let uid = format!("crash-{i:04}");
            let document = SAMPLE.replace("5b0a3c1e-2f6d-4b8e-9a71-0c3d5e7f9a21", &uid);
            let body = json!({
                "kind": 40,
                "organization": MO_2917,
                "document": B64.encode(document.as_bytes()),
                "signatures": [{"role": "1", "role_version": "2.4", "data": B64.encode(signer.sign_detached(document.as_bytes()))}],
            });
            (uid, body)
        })
        .collect();
    let http = reqwest::Client::builder().timeout(Duration::from_secs(10)).build().unwrap();

    let mut gateway = spawn(&env);
    wait_ready(&http, &api).await;
    let mut acknowledged: HashSet<String> = HashSet::new();
    let mut killed = false;
    for (i, (uid, body)) in bodies.iter().enumerate() {
        if !killed && i == DOCUMENTS / 2 {
            // Mid-flow: documents queued, some being sent, some awaiting REMD's result.
            gateway.child.kill().expect("SIGKILL");
            gateway.child.wait().unwrap();
            killed = true;
            let s = store::connect(&config.database).await.unwrap();
            let unfinished: u64 = s
                .count_by_status()
                .await
                .unwrap()
                .iter()
                .filter(|(st, _)| st.as_str() != "registered")
                .map(|(_, n)| *n)
                .sum();
            assert!(unfinished > 0, "the kill must interrupt work in flight");
            eprintln!("killed with {unfinished} of {i} acknowledged documents not yet registered");
            // Submissions while it is down fail and are sent again after the restart.
            assert!(http.post(format!("{api}/api/v1/documents")).bearer_auth(&key).json(body).send().await.is_err());
            gateway = spawn(&env);
            wait_ready(&http, &api).await;
        }
        let res = http.post(format!("{api}/api/v1/documents")).bearer_auth(&key).json(body).send().await.unwrap();
        assert!(res.status() == 202 || res.status() == 200, "{}", res.status());
        acknowledged.insert(uid.clone());
    }
    assert_eq!(acknowledged.len(), DOCUMENTS);

    let s = store::connect(&config.database).await.unwrap();
    let deadline = tokio::time::Instant::now() + Duration::from_secs(180);
    loop {
        let counts = s.count_by_status().await.unwrap();
        let registered = counts.iter().find(|(st, _)| st.as_str() == "registered").map_or(0, |(_, n)| *n);
        if registered as usize == DOCUMENTS {
            break;
        }
        assert!(tokio::time::Instant::now() < deadline, "after the crash not all registered: {counts:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let mut per_uid: HashMap<String, usize> = HashMap::new();
    for entry in remd.registry() {
        *per_uid.entry(entry.local_uid).or_default() += 1;
    }
    for uid in &acknowledged {
        assert_eq!(per_uid.get(uid), Some(&1), "{uid} must be registered exactly once");
    }
    drop(gateway);
    remd.shutdown().await;
}
