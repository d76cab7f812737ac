//! What a token of the cluster-wide quota costs, against the in-process limiter, in the same
//! run: N takes with a rate high enough that every one is granted, one at a time and from 8
//! tasks at once (as 8 relay workers), on a fresh PostgreSQL database on 127.0.0.1:5432.
//!
//! ```sh
//! cargo run --release --example quota_bench -- --takes 5000
//! ```

use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use egisz_gateway::relay::quota::Grant;
use governor::{Quota, RateLimiter};

const MAX_WAIT: Duration = Duration::from_secs(5);

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let mut takes = 5000usize;
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        match k.as_str() {
            "--takes" => takes = it.next().unwrap_or_default().parse()?,
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    use sqlx::Connection;
    let name = format!("egisz_qbench_{}", uuid::Uuid::new_v4().simple());
    let admin = "postgres://postgres@127.0.0.1:5432/postgres";
    sqlx::PgConnection::connect(admin).await?.execute_raw(&format!("CREATE DATABASE {name}")).await?;
    let env = [("EGISZ__DATABASE__URL".to_owned(), format!("postgres://postgres@127.0.0.1:5432/{name}"))];
    let config = egisz_gateway::config::Config::load(None, &env)?;
    let store = egisz_gateway::store::connect(&config.database).await?;

    let limiter = RateLimiter::direct(Quota::per_second(NonZeroU32::new(1_000_000).unwrap()));
    let started = Instant::now();
    for _ in 0..takes {
        limiter.until_ready().await;
    }
    let local = started.elapsed().as_secs_f64() * 1e6 / takes as f64;

    let started = Instant::now();
    for _ in 0..takes {
        let grant = store.quota_reserve("bench", 1e9, 1_000_000, MAX_WAIT, egisz_gateway::now()).await?;
        assert!(matches!(grant, Grant::At(_)), "{grant:?}");
    }
    let shared = started.elapsed().as_secs_f64() * 1e6 / takes as f64;

    let started = Instant::now();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                for _ in 0..takes / 8 {
                    store.quota_reserve("bench8", 1e9, 1_000_000, MAX_WAIT, egisz_gateway::now()).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await?;
    }
    let shared8 = started.elapsed().as_secs_f64() * 1e6 / (takes / 8 * 8) as f64;
    println!("== quota bench: {takes} takes");
    println!("in-process limiter           {local:9.2} µs per token");
    println!("shared bucket, 1 at a time   {shared:9.2} µs per token (1 round trip)");
    println!("shared bucket, 8 at a time   {shared8:9.2} µs per token (throughput of the row)");
    println!("shared / in-process          {:9.0}×", shared / local);
    println!("tokens per second the row gives, 8 takers: {:.0}", 1e6 / shared8);
    drop(store);
    sqlx::PgConnection::connect(admin)
        .await?
        .execute_raw(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
        .await?;
    Ok(())
}

trait ExecRaw {
    async fn execute_raw(&mut self, sql: &str) -> anyhow::Result<()>;
}

impl ExecRaw for sqlx::PgConnection {
    async fn execute_raw(&mut self, sql: &str) -> anyhow::Result<()> {
        sqlx::query(sql).execute(self).await?;
        Ok(())
    }
}
