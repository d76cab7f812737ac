//! Intake throughput and latency with a 30 KB document, against `/healthz` of the same
//! server and against a bare insert of the same rows, in the same run.
//!
//! ```sh
//! cargo run --release --example intake_bench -- --db sqlite   --requests 3000 --concurrency 16
//! cargo run --release --example intake_bench -- --db postgres --requests 3000 --concurrency 16
//! ```
//!
//! Starts the gateway in-process on the embedded default (a fresh SQLite file, or a fresh
//! PostgreSQL database on 127.0.0.1:5432), builds N distinct signed 30 KB TMK protocols, then
//! drives, closed-loop with C connections over loopback: N × `GET /healthz` (the baseline),
//! then N × `POST /api/v1/documents`. Prints requests/s and p50/p99 of each, and their ratio.
//!
//! The durability baseline, first, on the same database: N bare inserts of what intake
//! inserts (the bytes, the submission with its request, the first event), each in its own
//! transaction with the same durability (SQLite `synchronous=FULL`; PostgreSQL's default
//! `synchronous_commit=on`), through the same driver, C at a time — no HTTP, no parsing, no
//! checks, no group commit. Intake ≥ 1.0× that rate means group commit wins back what the
//! checks cost.

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{TimeZone, Utc};
use egisz_contract::Oid;
use egisz_gateway::auth::{self, Role, Scope};
use egisz_gateway::config::Config;
use egisz_gost::test_pki::{SANDBOX_CA_SEED, TestCa};
use futures::StreamExt;

const SAMPLE: &str = include_str!("../semd/tests/data/tmk-protocol-40.xml");
const MO: &str = "1.2.643.5.1.13.13.12.2.42.2917";

struct Args {
    db: String,
    requests: usize,
    concurrency: usize,
}

fn args() -> Args {
    let mut a = Args { db: "sqlite".into(), requests: 3000, concurrency: 16 };
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

/// The sample grown to about 30 KB with a longer conclusion, under its own localUid.
fn document(i: usize) -> String {
    let filler = "Пациентка наблюдается амбулаторно; рекомендации выполняются. ".repeat(207);
    SAMPLE
        .replace("5b0a3c1e-2f6d-4b8e-9a71-0c3d5e7f9a21", &format!("bench-{i:06}"))
        .replace("Рекомендовано наблюдение офтальмолога по месту жительства.", &filler)
}

struct Run {
    rps: f64,
    p50: Duration,
    p99: Duration,
    errors: usize,
}

async fn drive<F, Fut>(n: usize, concurrency: usize, make: F) -> Run
where
    F: Fn(usize) -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    let started = Instant::now();
    let results: Vec<(Duration, bool)> = futures::stream::iter(0..n)
        .map(|i| {
            let f = make(i);
            async move {
                let t = Instant::now();
                let ok = f.await;
                (t.elapsed(), ok)
            }
        })
        .buffer_unordered(concurrency)
        .collect()
        .await;
    let total = started.elapsed();
    let mut lat: Vec<Duration> = results.iter().map(|(d, _)| *d).collect();
    lat.sort();
    Run {
        rps: n as f64 / total.as_secs_f64(),
        p50: lat[lat.len() / 2],
        p99: lat[lat.len() * 99 / 100],
        errors: results.iter().filter(|(_, ok)| !ok).count(),
    }
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = args();
    let dir = tempfile::tempdir()?;
    let pg_name = format!("egisz_bench_{}", std::process::id());
    let url = match a.db.as_str() {
        "sqlite" => format!("sqlite://{}/bench.db", dir.path().display()),
        "postgres" => {
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect("postgres://postgres@127.0.0.1:5432/postgres").await?;
            sqlx::query(&format!("CREATE DATABASE {pg_name}")).execute(&mut c).await?;
            format!("postgres://postgres@127.0.0.1:5432/{pg_name}")
        }
        other => anyhow::bail!("--db sqlite|postgres, not {other}"),
    };
    let env: Vec<(String, String)> = [
        ("EGISZ__DATABASE__URL", url),
        ("EGISZ__API__LISTEN", "127.0.0.1:0".to_owned()),
        ("EGISZ__REMD_LISTENER__LISTEN", "127.0.0.1:0".to_owned()),
        ("EGISZ__SANDBOX__API_KEY_FILE", format!("{}/key", dir.path().display())),
        ("EGISZ__LOG__LEVEL", "warn".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let config = Config::load(None, &env)?;
    egisz_gateway::telemetry::init(&config.log);
    let gw = egisz_gateway::app::start(&config).await?;
    let issued = auth::issue(
        "bench",
        [Role::Submitter].into_iter().collect(),
        Scope::Only([Oid::parse(MO)?].into_iter().collect()),
        egisz_gateway::now(),
    );
    gw.store().insert_client(&issued.client).await?;
    let key = issued.key;

    eprintln!("preparing {} signed documents…", a.requests);
    let signer = TestCa::new(egisz_gost::Gost::load()?, SANDBOX_CA_SEED).issue_doctor(
        "author",
        "20311784514",
        Utc.with_ymd_and_hms(2020, 1, 1, 0, 0, 0).unwrap().timestamp(),
        Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap().timestamp(),
    );
    let bodies: Vec<String> = (0..a.requests)
        .map(|i| {
            let d = document(i);
            serde_json::json!({
                "kind": 40, "organization": MO, "document": B64.encode(d.as_bytes()),
                "signatures": [{"role": "1", "role_version": "2.4", "data": B64.encode(signer.sign_detached(d.as_bytes()))}],
            })
            .to_string()
        })
        .collect();
    let size = document(0).len();
    let http = reqwest::Client::builder().pool_max_idle_per_host(a.concurrency).build()?;
    let base = gw.api_url();

    // The bare baseline: one transaction per document, straight to the store.
    let template = {
        let res = http
            .post(format!("{base}/api/v1/documents"))
            .bearer_auth(&key)
            .header("content-type", "application/json")
            .body(serde_json::json!({
                "kind": 40, "organization": MO, "document": B64.encode(document(usize::MAX).as_bytes()),
                "signatures": [{"role": "1", "role_version": "2.4", "data": B64.encode(signer.sign_detached(document(usize::MAX).as_bytes()))}],
            }).to_string())
            .send()
            .await?;
        anyhow::ensure!(res.status() == 202, "the template document: {}", res.status());
        let id: uuid::Uuid = res.json::<serde_json::Value>().await?["id"].as_str().unwrap_or_default().parse()?;
        gw.store().submission(id).await?.expect("stored")
    };
    let store = gw.store();
    let rows: Vec<egisz_gateway::submission::NewSubmission> = (0..a.requests)
        .map(|i| {
            let content = document(i).replace("bench-", "bare-").into_bytes();
            let local_uid = format!("bare-{i:06}");
            let mut request = template.request.clone();
            request.local_uid = local_uid.clone();
            egisz_gateway::submission::NewSubmission {
                id: uuid::Uuid::now_v7(),
                organization: template.organization.clone(),
                local_uid,
                kind: 40,
                checksum: egisz_remd::checksum(&content),
                content,
                request,
                created_at: egisz_gateway::now(),
                actor: "bench".into(),
                warnings: Vec::new(),
                detail: egisz_gateway::lifecycle::INTAKE_DETAIL.to_owned(),
            }
        })
        .collect();
    let bare = drive(a.requests, a.concurrency, |i| {
        let (store, row) = (store.clone(), &rows[i]);
        async move { matches!(store.intake(row).await, Ok(egisz_gateway::submission::Intake::Created(_))) }
    })
    .await;

    let health = drive(a.requests, a.concurrency, |_| {
        let (http, url) = (http.clone(), format!("{base}/healthz"));
        async move { http.get(url).send().await.is_ok_and(|r| r.status() == 200) }
    })
    .await;
    let intake = drive(a.requests, a.concurrency, |i| {
        let (http, url, key, body) = (http.clone(), format!("{base}/api/v1/documents"), key.clone(), bodies[i].clone());
        async move {
            http.post(url)
                .bearer_auth(key)
                .header("content-type", "application/json")
                .body(body)
                .send()
                .await
                .is_ok_and(|r| r.status() == 202)
        }
    })
    .await;
    println!(
        "== intake bench: {}, {} requests, concurrency {}, document {} bytes ({} bytes of JSON)",
        a.db,
        a.requests,
        a.concurrency,
        size,
        bodies[0].len()
    );
    let (commits, committed) = gw.intake_commits();
    for (name, r) in [("GET /healthz", &health), ("bare insert", &bare), ("POST /api/v1/documents", &intake)] {
        println!(
            "{name:24} {:8.0} req/s   p50 {:6.2} ms   p99 {:6.2} ms   errors {}",
            r.rps,
            r.p50.as_secs_f64() * 1000.0,
            r.p99.as_secs_f64() * 1000.0,
            r.errors
        );
    }
    println!("intake / healthz throughput: {:.3}", intake.rps / health.rps);
    println!(
        "intake / bare insert throughput: {:.2} (group commit: {committed} documents in {commits} commits, {:.1} per commit)",
        intake.rps / bare.rps,
        committed as f64 / commits.max(1) as f64
    );
    gw.shutdown().await;
    if a.db == "postgres" {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect("postgres://postgres@127.0.0.1:5432/postgres").await?;
        sqlx::query(&format!("DROP DATABASE IF EXISTS {pg_name} WITH (FORCE)")).execute(&mut c).await?;
    }
    Ok(())
}
