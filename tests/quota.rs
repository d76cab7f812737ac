//! The cluster-wide token bucket on PostgreSQL: the one statement agrees with the pure
//! arithmetic of `quota` step by step (time passed in, so exactly), and concurrent
//! takers — as several instances would be — never get more than the bucket holds.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::{Db, TestDb};
use egisz_gateway::quota::{self, Grant};
use egisz_gateway::store::Store;

fn at(ms: i64) -> DateTime<Utc> {
    DateTime::from_timestamp_millis(1_800_000_000_000 + ms).unwrap()
}

async fn store(db: &TestDb) -> Arc<dyn Store> {
    let config = egisz_gateway::config::Config::load(None, &[("EGISZ__DATABASE__URL".into(), db.url.clone())]).unwrap();
    egisz_gateway::store::connect(&config.database).await.unwrap()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_statement_is_the_arithmetic() {
    let db = TestDb::new(Db::Postgres).await;
    let store = store(&db).await;
    assert!(store.shares_quotas());
    let (rate, burst) = (4.0, 3);
    let mut model = quota::full(at(0), burst);
    // Reservations at uneven times, some within the burst, some queued behind others, some
    // turned away (willing to wait less than the queue), a clock a little behind.
    let asks = [
        (0, 10_000),
        (0, 10_000),
        (0, 10_000),
        (0, 10_000),
        (0, 100),
        (100, 10_000),
        (250, 600),
        (260, 10_000),
        (900, 0),
        (1000, 10_000),
        (1000, 10_000),
        (5000, 0),
        (5000, 0),
        (5000, 0),
        (5000, 0),
        (4990, 10_000),
        (5300, 250),
    ];
    for (ms, max_wait_ms) in asks {
        let max_wait = Duration::from_millis(max_wait_ms);
        let reservation = quota::reserve(model, at(ms), rate, burst, max_wait);
        model = reservation.bucket();
        let expected = Grant::from(reservation);
        let got = reserve(&*store, "test", rate, burst, max_wait, at(ms)).await;
        let close = |a: Duration, b: Duration| a.abs_diff(b) < Duration::from_micros(10);
        match (expected, got) {
            (Grant::At(e), Grant::At(g)) if close(quota::until(e, g), quota::until(g, e)) => {}
            (Grant::Busy(e), Grant::Busy(g)) if close(e, g) => {}
            other => panic!("at {ms} ms (max wait {max_wait_ms} ms): the statement and the model differ: {other:?}"),
        }
    }
    // Buckets are per upstream.
    assert_eq!(reserve(&*store, "another", rate, burst, Duration::ZERO, at(5300)).await, Grant::At(at(5300)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_callers_get_one_slot_each() {
    let db = TestDb::new(Db::Postgres).await;
    let store = store(&db).await;
    let now = at(0);
    // 3 "instances" × 8 workers, all at the same instant, willing to wait 1 s: the burst (less
    // the margin of one, quota::capacity) at once, then one slot every 100 ms, no two
    // the same, up to the second; the rest turned away.
    let tasks: Vec<_> = (0..24)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { reserve(&*store, "remd", 10.0, 5, Duration::from_secs(1), now).await })
        })
        .collect();
    let mut slots = Vec::new();
    let mut busy = 0;
    for t in tasks {
        match t.await.unwrap() {
            Grant::At(t) => slots.push((t - now).num_milliseconds()),
            Grant::Busy(_) => busy += 1,
        }
    }
    slots.sort();
    let expected: Vec<i64> = [0, 0, 0, 0].into_iter().chain((1..=10).map(|k| k * 100)).collect();
    assert_eq!(slots, expected, "four at once, then one every 100 ms");
    assert_eq!(busy, 24 - 14);
    // Long after, the bucket is full again: four at once, and no fifth without a wait.
    let later = at(10_000);
    let mut again = 0;
    for _ in 0..12 {
        again += usize::from(reserve(&*store, "remd", 10.0, 5, Duration::ZERO, later).await == Grant::At(later));
    }
    assert_eq!(again, 4, "the bucket holds at most its capacity, however long it rested");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn remd_calls_and_frmr_lookups_draw_from_their_buckets() {
    use sqlx::Connection;
    let env = common::TestEnv::start(Db::Postgres).await;
    let key = env.verifier().await;
    let (status, _) = env.staff(&key, common::AUTHOR_SNILS, "organization=1.2.643.5.1.13.13.12.2.42.2917").await;
    assert_eq!(status, 200);
    let submitter =
        env.key(&[egisz_gateway::auth::Role::Submitter, egisz_gateway::auth::Role::Reader], &[common::MO_2917]).await;
    let document = common::sample_as("quota-1");
    let res = env
        .http
        .post(env.url("/api/v1/documents"))
        .bearer_auth(&submitter)
        .json(&common::submission_body(document.as_bytes(), &common::author_signer()))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 202);
    let id = res.json::<serde_json::Value>().await.unwrap()["id"].as_str().unwrap().to_owned();
    env.wait_status(&submitter, &id, "registered").await;
    let mut conn = sqlx::PgConnection::connect(&env.db.url).await.unwrap();
    let buckets: Vec<String> =
        sqlx::query_scalar("SELECT upstream FROM rate_buckets ORDER BY upstream").fetch_all(&mut conn).await.unwrap();
    assert_eq!(buckets, ["frmr", "remd"]);
    env.shutdown().await;
}

/// The store's answer, read as its callers read it (`quota::from_row`).
async fn reserve(
    store: &dyn egisz_gateway::store::Store,
    upstream: &str,
    rate: f64,
    burst: u32,
    max_wait: Duration,
    now: chrono::DateTime<chrono::Utc>,
) -> Grant {
    quota::from_row(store.quota_reserve(upstream, rate, burst, max_wait, now).await.unwrap(), rate, max_wait)
}
