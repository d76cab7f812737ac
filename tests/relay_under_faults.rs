//! The relay against a misbehaving REMD emulator: sync faults, 5xx, timeouts after the
//! request left, RATE_LIMIT, lost, duplicated and delayed callbacks. Every acknowledged
//! document must end registered, each exactly once in the register; and the emulator never
//! sees more than the configured rate (+ burst) in any one-second window.

mod common;

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use common::{ARRIVAL_JITTER, AUTHOR_SNILS, Db, MO_2917, TestEnv};
use egisz_gateway::auth::Role;
use egisz_gateway::config::Config;
use egisz_gost::test_pki::TestSigner;
use egisz_sandbox::RemdFaults;
use serde_json::{Value, json};

on_both_backends!(two_hundred_documents_through_every_fault_end_registered_once);

const SAMPLE: &str = include_str!("../semd/tests/data/tmk-protocol-40.xml");
const RATE: u32 = 40;
const BURST: u32 = 5;

fn doctor() -> TestSigner {
    common::signer_for(AUTHOR_SNILS)
}

/// Quick retries and deadlines, so that a test of minutes' worth of faults takes seconds.
fn fast(c: &mut Config) {
    c.remd.quota.per_second = f64::from(RATE);
    c.remd.quota.burst = BURST;
    c.remd.timeout = Duration::from_millis(1500);
    c.relay.concurrency = 8;
    c.relay.lease_for = Duration::from_secs(5);
    c.relay.poll_interval = Duration::from_millis(100);
    c.relay.timing.result_check_after = Duration::from_secs(1);
    c.relay.timing.result_deadline = Duration::from_secs(3);
    c.relay.timing.reconcile_after = Duration::from_millis(200);
    c.relay.timing.retry.base = Duration::from_millis(200);
    c.relay.timing.retry.cap = Duration::from_secs(2);
    c.relay.timing.retry.rate_limited_wait = Duration::from_secs(1);
    c.relay.timing.retry.max_attempts = 1000;
}

/// The two backends' runs take turns: the rate check measures arrival times at the
/// emulator, and two fault storms sharing two cores would blur them.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn two_hundred_documents_through_every_fault_end_registered_once(db: Db) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let env = TestEnv::start_with(db, |c, _| fast(c)).await;
    let remd = env.gw.remd_sandbox().expect("REMD emulator in-process");
    let faults = |rate_limit: u32| RemdFaults {
        rate_limit_per_second: Some(rate_limit),
        sync_fault_rate: 0.15,
        sync_5xx_rate: 0.15,
        accept_then_silent_rate: 0.1,
        lost_callback_rate: 0.1,
        duplicate_callback_rate: 0.1,
        callback_delay_ms: 20,
        ..RemdFaults::default()
    };
    // REMD's own rate limit, first low enough that the documents arriving meet it however
    // slow the machine is (RATE_LIMIT answers are what is tested), then at half the rate.
    remd.set_faults(faults(3));
    let key = env.key(&[Role::Submitter, Role::Reader], &[MO_2917]).await;
    let signer = doctor();
    let mut ids = Vec::new();
    for i in 0..200 {
        let document = SAMPLE.replace("5b0a3c1e-2f6d-4b8e-9a71-0c3d5e7f9a21", &format!("fault-{i:03}"));
        let body = json!({
            "kind": 40,
            "organization": MO_2917,
            "document": B64.encode(document.as_bytes()),
            "signatures": [{"role": "1", "role_version": "2.4", "data": B64.encode(signer.sign_detached(document.as_bytes()))}],
        });
        let res = env.http.post(env.url("/api/v1/documents")).bearer_auth(&key).json(&body).send().await.unwrap();
        assert_eq!(res.status(), 202);
        let v: Value = res.json().await.unwrap();
        ids.push(v["id"].as_str().unwrap().to_owned());
    }

    let limited_by = tokio::time::Instant::now() + Duration::from_secs(60);
    while remd.stats().rate_limited == 0 {
        assert!(tokio::time::Instant::now() < limited_by, "REMD's rate limit never met: {:?}", remd.stats());
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    remd.set_faults(faults(RATE / 2));
    let deadline = tokio::time::Instant::now() + Duration::from_secs(240);
    loop {
        let counts = env.store().count_by_status().await.unwrap();
        let registered = counts.iter().find(|(s, _)| s.as_str() == "registered").map_or(0, |(_, n)| *n);
        if registered == 200 {
            break;
        }
        let failed: Vec<_> = counts.iter().filter(|(s, _)| s.as_str() == "failed").collect();
        assert!(failed.is_empty(), "no document may fail on transient faults: {counts:?}");
        assert!(tokio::time::Instant::now() < deadline, "not all registered in time: {counts:?}");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }

    let registry = remd.registry();
    let mut per_uid: HashMap<String, usize> = HashMap::new();
    for entry in &registry {
        *per_uid.entry(entry.local_uid.clone()).or_default() += 1;
    }
    assert_eq!(per_uid.len(), 200, "every document is in the register");
    assert!(per_uid.values().all(|&n| n == 1), "none twice: {per_uid:?}");
    for id in &ids {
        let doc: Value = env.get(&key, &format!("/api/v1/documents/{id}")).await.json().await.unwrap();
        let emdr = doc["emdr_id"].as_str().unwrap();
        assert!(registry.iter().any(|e| e.emdr_id == emdr && e.local_uid == doc["local_uid"]), "{doc}");
    }
    let stats = remd.stats();
    assert!(stats.faulted > 0 && stats.silent > 0 && stats.rate_limited > 0 && stats.results_lost > 0, "{stats:?}");

    // The emulator never saw more than the rate plus the burst in any one-second window.
    let times = remd.register_call_times();
    let mut worst = 0;
    for (i, start) in times.iter().enumerate() {
        let in_window = times[i..].iter().take_while(|t| t.duration_since(*start) < Duration::from_secs(1)).count();
        worst = worst.max(in_window);
    }
    eprintln!("worst one-second window: {worst} calls (limit {RATE} + burst {BURST})");
    assert!(worst as u32 <= RATE + BURST + ARRIVAL_JITTER, "{worst} calls in one second; limit {RATE} + burst {BURST}");
    env.shutdown().await;
}
