//! One greedy client cannot starve the others of FRMR: against the binary, one `verifier`
//! key floods `POST /api/v1/staff/verify` with parallel batches of random valid SNILS (the
//! attack that used to fill every FRMR lookup slot and answer everybody `503`), while
//! another key's cached and uncached lookups and an intake's check of a document's signers
//! go on. The flooding key is told `429` with `Retry-After`.

mod common;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

use common::binary::{Gateway, free_port, wait_ready};
use common::flood::{flood, quantile, timed_get, valid_snils};
use common::{AUTHOR_SNILS, Db, MO_2917, TestDb, author_signer, sample_as, submission_body};
use egisz_contract::Oid;
use egisz_gateway::auth::{self, Role, Scope};
use egisz_gateway::config::Config;

/// FRMR's pace in this test: slow enough that the flood queues, as on a real morning.
const FRMR_RATE: u32 = 10;
/// What the other key's lookups are held to. Cached: answered from the gateway's cache,
/// whatever the flood (milliseconds when idle; the bound allows for a loaded machine).
const CACHED_P99: Duration = Duration::from_secs(2);
/// Uncached: answered by FRMR (never `503`) within `frmr.answer_within_ms` — with turns
/// they wait for one flood call each, not for the flood's queue.
const UNCACHED_MAX: Duration = Duration::from_secs(8);

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_flooding_key_does_not_starve_the_others() {
    let test_db = TestDb::new(Db::Sqlite).await;
    let scratch = tempfile::tempdir().unwrap();
    let api = format!("http://127.0.0.1:{}", free_port());
    let env: Vec<(String, String)> = [
        ("EGISZ__DATABASE__URL", test_db.url.clone()),
        ("EGISZ__API__LISTEN", api.trim_start_matches("http://").to_owned()),
        ("EGISZ__REMD_LISTENER__LISTEN", "127.0.0.1:0".into()),
        ("EGISZ__FRMR__RATE_PER_SECOND", FRMR_RATE.to_string()),
        ("EGISZ__SANDBOX__FRMR_LATENCY_MS", "50".into()),
        ("EGISZ__API__BATCH_DEADLINE_MS", "3000".into()),
        ("EGISZ__NSI__MODE", "off".into()),
        ("EGISZ__SANDBOX__API_KEY_FILE", format!("{}/key", scratch.path().display())),
        ("EGISZ__LOG__LEVEL", "warn".into()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    // Two keys, made in the database before the gateway starts.
    let direct = Config::load(None, &[("EGISZ__DATABASE__URL".into(), test_db.url.clone())]).unwrap();
    let store = egisz_gateway::store::connect(&direct.database).await.unwrap();
    let scope = || Scope::Only([Oid::parse(MO_2917).unwrap()].into_iter().collect());
    let key_of = |name: &str, roles: &[Role]| {
        auth::issue(name, roles.iter().copied().collect::<BTreeSet<_>>(), scope(), egisz_gateway::now())
    };
    let (greedy, portal) = (key_of("greedy", &[Role::Verifier]), key_of("portal", &[Role::Verifier]));
    let mis = key_of("mis", &[Role::Submitter, Role::Reader]);
    for k in [&greedy, &portal, &mis] {
        store.insert_client(&k.client).await.unwrap();
    }
    let _gateway = Gateway::spawn(&env);
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build().unwrap();
    wait_ready(&http, &api).await;

    // The portal's cached answer: one lookup before the flood.
    let cached_url = format!("{api}/api/v1/staff/48752710018?organization={MO_2917}");
    let (status, body, _) = timed_get(&http, &cached_url, &portal.key).await;
    assert_eq!(status, 200, "{body}");

    let stop = Arc::new(AtomicBool::new(false));
    let (stats, flooders) = flood(http.clone(), api.clone(), greedy.key.clone(), MO_2917, 14, 1000, stop.clone());
    // Until the flood holds its whole share.
    tokio::time::sleep(Duration::from_secs(2)).await;

    // 1. The portal's cached lookups.
    let mut cached = Vec::new();
    for _ in 0..200 {
        let (status, body, took) = timed_get(&http, &cached_url, &portal.key).await;
        assert_eq!(status, 200, "a cached lookup during the flood: {body}");
        assert_eq!(body["source"], "cache");
        cached.push(took);
    }
    // 2. Its uncached lookups (people FRMR does not know: each asks FRMR), ten at once.
    let uncached: Vec<_> = futures::future::join_all((0..10).map(|i| {
        let (http, key) = (http.clone(), portal.key.clone());
        let url = format!("{api}/api/v1/staff/{}?organization={MO_2917}", valid_snils(900_000_000 + i * 977));
        async move { timed_get(&http, &url, &key).await }
    }))
    .await;
    let mut uncached_times = Vec::new();
    for (status, body, took) in uncached {
        assert_eq!(status, 200, "an uncached lookup during the flood is answered by FRMR: {body}");
        assert_eq!(body["source"], "frmr", "{body}");
        uncached_times.push(took);
    }
    // 3. An intake: its signers are checked against FRMR (no "not checked" warning).
    let document = sample_as("fair-shares-1");
    let res = http
        .post(format!("{api}/api/v1/documents"))
        .bearer_auth(&mis.key)
        .json(&submission_body(document.as_bytes(), &author_signer()))
        .send()
        .await
        .unwrap();
    let status = res.status().as_u16();
    let accepted: serde_json::Value = res.json().await.unwrap();
    assert_eq!(status, 202, "{accepted}");
    let unchecked: Vec<_> = accepted["warnings"].as_array().unwrap().iter().filter(|w| w["rule"] == "F1").collect();
    assert!(unchecked.is_empty(), "the signers were checked against FRMR during the flood: {unchecked:?}");

    // 4. The flooding key, over its share, is told to come back.
    let (status, _, _) =
        timed_get(&http, &format!("{api}/api/v1/staff/{AUTHOR_SNILS}?organization={MO_2917}"), &greedy.key).await;
    stop.store(true, Ordering::Relaxed);
    for f in flooders {
        f.abort();
    }
    let (p50, p99) = (quantile(&cached, 0.5), quantile(&cached, 0.99));
    let uncached_max = quantile(&uncached_times, 1.0);
    eprintln!(
        "during the flood: the other key's cached lookups p50 {:.1} ms, p99 {:.1} ms; uncached (FRMR at {FRMR_RATE}/s) \
         p50 {:.2} s, max {:.2} s; the flooding key: {} batches answered, {} told 429, {} 503",
        p50.as_secs_f64() * 1e3,
        p99.as_secs_f64() * 1e3,
        quantile(&uncached_times, 0.5).as_secs_f64(),
        uncached_max.as_secs_f64(),
        stats.ok.load(Ordering::Relaxed),
        stats.too_many.load(Ordering::Relaxed),
        stats.unavailable.load(Ordering::Relaxed),
    );
    assert!(p99 <= CACHED_P99, "cached p99 {p99:?} during the flood (bound {CACHED_P99:?})");
    assert!(uncached_max <= UNCACHED_MAX, "an uncached lookup took {uncached_max:?} (bound {UNCACHED_MAX:?})");
    assert!(stats.too_many.load(Ordering::Relaxed) > 0, "the flooding key was told 429");
    assert!(stats.retry_after_seen.load(Ordering::Relaxed), "with Retry-After");
    assert!(matches!(status, 200 | 429), "the flooding key's own lookup: {status}");
    assert_eq!(stats.unavailable.load(Ordering::Relaxed), 0, "the flood itself is never answered 503 for everyone");
}
