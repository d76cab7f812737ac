//! The cluster-wide token bucket on PostgreSQL: the one statement agrees with the pure
//! arithmetic of `relay::quota` step by step (time passed in, so exactly), and concurrent
//! takers — as several instances would be — never get more than the bucket holds.

mod common;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use common::{Db, TestDb};
use egisz_gateway::relay::quota::{self, Take};
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
    // Takes at uneven times, some within the burst, some waiting, a clock a little behind.
    for ms in [0, 0, 0, 0, 100, 250, 260, 900, 1000, 1000, 5000, 5000, 5000, 5000, 4990, 5300] {
        let expected = match quota::take(model, at(ms), rate, burst) {
            Take::Granted(next) => {
                model = next;
                None
            }
            Take::Wait(next, wait) => {
                model = next;
                Some(wait)
            }
        };
        let got = store.quota_take("test", rate, burst, at(ms)).await.unwrap();
        match (expected, got) {
            (None, None) => {}
            (Some(e), Some(g)) => {
                assert!(e.abs_diff(g) < Duration::from_micros(10), "at {ms} ms: wait {g:?}, the model {e:?}")
            }
            other => panic!("at {ms} ms: {other:?}"),
        }
    }
    // Buckets are per upstream.
    assert_eq!(store.quota_take("another", rate, burst, at(5300)).await.unwrap(), None);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn concurrent_takers_share_one_bucket() {
    let db = TestDb::new(Db::Postgres).await;
    let store = store(&db).await;
    let now = at(0);
    // 3 "instances" × 8 workers, all at the same instant: exactly the burst is granted.
    let tasks: Vec<_> = (0..24)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move { store.quota_take("remd", 10.0, 5, now).await.unwrap().is_none() })
        })
        .collect();
    let mut granted = 0;
    for t in tasks {
        granted += usize::from(t.await.unwrap());
    }
    assert_eq!(granted, 5);
    // A second on, the bucket is full again: five, and no sixth.
    let later = at(1000);
    let mut again = 0;
    for _ in 0..12 {
        again += usize::from(store.quota_take("remd", 10.0, 5, later).await.unwrap().is_none());
    }
    assert_eq!(again, 5, "the bucket holds at most the burst, however long it rested");
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
