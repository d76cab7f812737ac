//! What the intake benchmarks share: their arguments, a closed-loop driver of
//! `POST /api/v1/documents`, a fresh database per run, and one run from start to stop. Included by
//! `validation_bench.rs` and `packages_bench.rs` (`#[path]`), not an example of its own.

use std::time::{Duration, Instant};

use futures::StreamExt;

pub struct Args {
    pub db: String,
    pub requests: usize,
    pub concurrency: usize,
}

/// `--db sqlite|postgres --requests N --concurrency N` (defaults: sqlite, 1500, 16).
pub fn args() -> Args {
    let mut a = Args { db: "sqlite".into(), requests: 1500, concurrency: 16 };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_default();
        match k.as_str() {
            "--db" => a.db = v,
            "--requests" => a.requests = v.parse().expect("--requests N"),
            "--concurrency" => a.concurrency = v.parse().expect("--concurrency N"),
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

pub struct Run {
    pub rps: f64,
    pub p50: Duration,
    pub p99: Duration,
    pub errors: usize,
}

impl Run {
    pub fn line(&self, name: &str) -> String {
        format!(
            "{name:28} {:7.0} req/s   p50 {:7.2} ms   p99 {:7.2} ms   errors {}",
            self.rps,
            self.p50.as_secs_f64() * 1000.0,
            self.p99.as_secs_f64() * 1000.0,
            self.errors
        )
    }
}

/// The mean throughput of `runs`.
pub fn mean_rps(runs: &[Run]) -> f64 {
    runs.iter().map(|r| r.rps).sum::<f64>() / runs.len() as f64
}

/// Posts every body to `url` with `key`, `concurrency` at once; a body not answered `202`
/// counts as an error.
pub async fn drive(http: &reqwest::Client, url: &str, key: &str, bodies: &[String], concurrency: usize) -> Run {
    let started = Instant::now();
    let mut latencies: Vec<Duration> = futures::stream::iter(bodies.iter().cloned())
        .map(|body| {
            let (http, url, key) = (http.clone(), url.to_owned(), key.to_owned());
            async move {
                let t = Instant::now();
                let ok = http
                    .post(url)
                    .bearer_auth(key)
                    .header("content-type", "application/json")
                    .body(body)
                    .send()
                    .await
                    .is_ok_and(|r| r.status() == 202);
                (t.elapsed(), ok)
            }
        })
        .buffer_unordered(concurrency)
        .collect::<Vec<_>>()
        .await
        .into_iter()
        .map(|(d, ok)| if ok { d } else { Duration::MAX })
        .collect();
    let elapsed = started.elapsed();
    let errors = latencies.iter().filter(|d| **d == Duration::MAX).count();
    latencies.sort();
    let at = |q: f64| latencies[((latencies.len() as f64 * q) as usize).min(latencies.len() - 1)];
    Run { rps: bodies.len() as f64 / elapsed.as_secs_f64(), p50: at(0.5), p99: at(0.99), errors }
}

/// A fresh database for one run: a SQLite file in `dir`, or a new PostgreSQL database on the
/// local server (dropped by [`Database::drop_it`]).
pub struct Database {
    pub url: String,
    postgres: Option<String>,
}

const POSTGRES: &str = "postgres://postgres@127.0.0.1:5432/postgres";

impl Database {
    pub async fn create(kind: &str, dir: &std::path::Path) -> anyhow::Result<Database> {
        match kind {
            "sqlite" => Ok(Database { url: format!("sqlite://{}/bench.db", dir.display()), postgres: None }),
            "postgres" => {
                use sqlx::Connection;
                let name = format!("egisz_bench_{}", uuid::Uuid::new_v4().simple());
                let mut c = sqlx::PgConnection::connect(POSTGRES).await?;
                sqlx::query(&format!("CREATE DATABASE {name}")).execute(&mut c).await?;
                Ok(Database { url: format!("postgres://postgres@127.0.0.1:5432/{name}"), postgres: Some(name) })
            }
            other => anyhow::bail!("--db sqlite|postgres, not {other}"),
        }
    }

    pub async fn drop_it(self) -> anyhow::Result<()> {
        if let Some(name) = self.postgres {
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect(POSTGRES).await?;
            sqlx::query(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).execute(&mut c).await?;
        }
        Ok(())
    }
}

/// One intake run on a fresh database: the gateway on free ports (NSI off, the packages of
/// this checkout) with `tweak` applied to its configuration, a submitter key for
/// `organization`, one warm-up document (`body(requests + 1)`, which compiles packages and
/// fills caches as in steady operation), then `body(0..requests)` driven at `concurrency`.
pub async fn intake_run(
    a: &Args,
    organization: &str,
    tweak: impl FnOnce(&mut egisz_gateway::config::Config),
    body: impl Fn(usize) -> String,
) -> anyhow::Result<Run> {
    use egisz_gateway::auth::{self, Role, Scope};
    let dir = tempfile::tempdir()?;
    let database = Database::create(&a.db, dir.path()).await?;
    let env: Vec<(String, String)> = [
        ("EGISZ__DATABASE__URL", database.url.clone()),
        ("EGISZ__API__LISTEN", "127.0.0.1:0".to_owned()),
        ("EGISZ__REMD_LISTENER__LISTEN", "127.0.0.1:0".to_owned()),
        ("EGISZ__SANDBOX__API_KEY_FILE", dir.path().join("key").display().to_string()),
        ("EGISZ__VALIDATION__PACKAGES_DIR", concat!(env!("CARGO_MANIFEST_DIR"), "/packages").to_owned()),
        ("EGISZ__NSI__MODE", "off".to_owned()),
        ("EGISZ__LOG__LEVEL", "warn".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let mut config = egisz_gateway::config::Config::load(None, &env)?;
    tweak(&mut config);
    let gw = egisz_gateway::app::start(&config).await?;
    let issued = auth::issue(
        "bench",
        [Role::Submitter].into_iter().collect(),
        Scope::Only([egisz_contract::Oid::parse(organization)?].into_iter().collect()),
        egisz_gateway::now(),
    );
    gw.store().insert_client(&issued.client).await?;
    let bodies: Vec<String> = (0..a.requests).map(&body).collect();
    let http = reqwest::Client::builder().pool_max_idle_per_host(a.concurrency).build()?;
    let url = format!("{}/api/v1/documents", gw.api_url());
    let warm = drive(&http, &url, &issued.key, &[body(a.requests + 1)], 1).await;
    anyhow::ensure!(warm.errors == 0, "the warm-up document was not accepted");
    let run = drive(&http, &url, &issued.key, &bodies, a.concurrency).await;
    gw.shutdown().await;
    database.drop_it().await?;
    Ok(run)
}
