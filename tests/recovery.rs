//! Recovery without a result: REMD withholds 10 % of its answers to registerDocument and
//! loses 10 % of its results. Every document still ends registered, each within
//! `relay.result_check_after` plus a minute of its acceptance (here the look-up comes after
//! 5 s, so the test takes seconds), and exactly once in the register.

mod common;

use std::collections::HashMap;
use std::time::{Duration, Instant};

use common::{Db, MO_2917, TestEnv, author_signer, sample_as, submission_body};
use egisz_gateway::auth::Role;
use egisz_sandbox::RemdFaults;
use serde_json::Value;

on_both_backends!(silent_acceptances_and_lost_results_are_recovered_within_a_minute_of_the_look_up);

const DOCUMENTS: usize = 80;
const CHECK_AFTER: Duration = Duration::from_secs(5);

/// The two backends take turns: their timings share two cores.
static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

async fn silent_acceptances_and_lost_results_are_recovered_within_a_minute_of_the_look_up(db: Db) {
    let _turn = ONE_AT_A_TIME.lock().await;
    let env = TestEnv::start_with(db, |c, _| {
        c.remd.timeout = Duration::from_millis(1500);
        c.remd.quota.per_second = 50.0;
        c.relay.concurrency = 8;
        c.relay.poll_interval = Duration::from_millis(100);
        c.relay.timing.result_check_after = CHECK_AFTER;
        c.relay.timing.reconcile_after = Duration::from_millis(500);
        c.relay.timing.retry.base = Duration::from_millis(200);
        c.relay.timing.retry.cap = Duration::from_secs(2);
    })
    .await;
    env.gw.remd_sandbox().unwrap().set_faults(RemdFaults {
        accept_then_silent_rate: 0.1,
        lost_callback_rate: 0.1,
        ..RemdFaults::default()
    });
    let key = env.key(&[Role::Submitter, Role::Reader], &[MO_2917]).await;
    let signer = author_signer();
    let mut accepted: HashMap<String, Instant> = HashMap::new();
    for i in 0..DOCUMENTS {
        let body = submission_body(sample_as(&format!("recovery-{i:03}")).as_bytes(), &signer);
        let res = env.http.post(env.url("/api/v1/documents")).bearer_auth(&key).json(&body).send().await.unwrap();
        assert_eq!(res.status(), 202);
        let id = res.json::<Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
        accepted.insert(id, Instant::now());
    }
    let bound = CHECK_AFTER + Duration::from_secs(60);
    let mut registered_after: HashMap<String, Duration> = HashMap::new();
    let started = Instant::now();
    while registered_after.len() < DOCUMENTS {
        for (id, at) in &accepted {
            if registered_after.contains_key(id) {
                continue;
            }
            let d: Value = env.get(&key, &format!("/api/v1/documents/{id}")).await.json().await.unwrap();
            if d["status"] == "registered" {
                registered_after.insert(id.clone(), at.elapsed());
            } else {
                assert!(at.elapsed() < bound, "{id} not registered {bound:?} after its acceptance: {d}");
            }
        }
        assert!(started.elapsed() < bound + Duration::from_secs(30), "the run is taking too long");
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    let stats = env.gw.remd_sandbox().unwrap().stats();
    assert!(stats.silent > 0 && stats.results_lost > 0, "the faults happened: {stats:?}");
    let slowest = registered_after.values().max().unwrap();
    eprintln!("{DOCUMENTS} registered; slowest {slowest:?} after its acceptance; REMD: {stats:?}");
    let mut per_uid: HashMap<String, usize> = HashMap::new();
    for entry in env.gw.remd_sandbox().unwrap().registry() {
        *per_uid.entry(entry.local_uid).or_default() += 1;
    }
    assert_eq!(per_uid.len(), DOCUMENTS);
    assert!(per_uid.values().all(|n| *n == 1), "each registered once: {per_uid:?}");
    env.shutdown().await;
}
