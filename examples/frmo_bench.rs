//! FRMO at the country's size: a refresh of 80,000 organisations and 400,000 departments
//! from the NSI emulator into storage, its time and the process's peak memory; the index's
//! own memory; the cost of FRMO's lookups per intake against parsing the document; and
//! intake latency while a refresh runs, against intake with none, in the same run.
//!
//! ```sh
//! cargo build --release --example frmo_bench
//! target/release/examples/frmo_bench --db sqlite   --organizations 80000 --departments 400000
//! target/release/examples/frmo_bench --db postgres --organizations 80000 --departments 400000
//! ```
//!
//! 1. **Refresh**: the NSI emulator (in this process, rows made as they are served) publishes
//!    a country-sized FRMO; one refresh fetches it page by page into a fresh database and puts
//!    the index in force. Printed: its time, the rows, and the process's peak RSS (`VmHWM`)
//!    before and after.
//! 2. **Index**: a second index built from storage (as another instance would), the RSS
//!    before and after it.
//! 3. **Lookups**: `organizations::judge` over the sample's places, against
//!    `CdaHeader::parse` of the sample, each timed over many rounds.
//! 4. **Intake meanwhile**: a gateway on the same database (its FRMO copy loaded), closed-loop
//!    intake of signed documents at 8 at a time: once with nothing else running (the
//!    baseline), then while a refresh of a new country-sized version runs beside it. p50 and
//!    p99 of each, and their ratio.

#[path = "support/bench.rs"]
#[expect(dead_code, reason = "the benches' shared support: this one uses its driver, its mean and its databases only")]
mod bench;

use std::time::{Duration, Instant};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{TimeZone, Utc};
use egisz_gateway::auth::{self, Role, Scope};
use egisz_gost::test_pki::{SANDBOX_CA_SEED, TestCa};

const SAMPLE: &str = include_str!("../semd/tests/data/tmk-protocol-40.xml");
const MO: &str = "1.2.643.5.1.13.13.12.2.42.2917";

struct Args {
    db: String,
    organizations: usize,
    departments: usize,
    requests: usize,
}

fn args() -> Args {
    let mut a = Args { db: "sqlite".into(), organizations: 80_000, departments: 400_000, requests: 1500 };
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_default();
        match k.as_str() {
            "--db" => a.db = v,
            "--organizations" => a.organizations = v.parse().expect("--organizations N"),
            "--departments" => a.departments = v.parse().expect("--departments N"),
            "--requests" => a.requests = v.parse().expect("--requests N"),
            other => panic!("unknown argument {other}"),
        }
    }
    a
}

/// This process's resident memory now and at its peak, in MB (`/proc/self/status`).
fn memory_mb() -> (f64, f64) {
    let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
    let field = |name: &str| {
        status
            .lines()
            .find(|l| l.starts_with(name))
            .and_then(|l| l.split_whitespace().nth(1))
            .and_then(|kb| kb.parse::<f64>().ok())
            .unwrap_or(0.0)
            / 1024.0
    };
    (field("VmRSS:"), field("VmHWM:"))
}

fn ms(d: Duration) -> f64 {
    d.as_secs_f64() * 1000.0
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let a = args();
    let dir = tempfile::tempdir()?;
    let database = bench::Database::create(&a.db, dir.path()).await?;
    let env: Vec<(String, String)> = [
        ("EGISZ__DATABASE__URL", database.url.clone()),
        ("EGISZ__API__LISTEN", "127.0.0.1:0".to_owned()),
        ("EGISZ__REMD_LISTENER__LISTEN", "127.0.0.1:0".to_owned()),
        ("EGISZ__SANDBOX__API_KEY_FILE", dir.path().join("key").display().to_string()),
        ("EGISZ__NSI__MODE", "off".to_owned()),
        ("EGISZ__LOG__LEVEL", "warn".to_owned()),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_owned(), v))
    .collect();
    let config = egisz_gateway::config::Config::load(None, &env)?;
    let store = egisz_gateway::store::connect(&config.database).await?;

    // 1. The refresh.
    let nsi = egisz_sandbox::NsiSandbox::start(0).await?;
    nsi.publish_frmo("1.0", &egisz_sandbox::Frmo::country(a.organizations, a.departments));
    let client = egisz_nsi::NsiClient::new(url::Url::parse(&nsi.base_url())?, Duration::from_secs(30))?;
    let (rss0, peak0) = memory_mb();
    let frmo = egisz_gateway::nsi::frmo::Frmo::new();
    let started = Instant::now();
    let results = frmo.refresh(&client, &*store, egisz_gateway::now()).await;
    let refresh = started.elapsed();
    anyhow::ensure!(results.iter().all(|r| !r.failed()), "the refresh failed: {results:?}");
    let (rss1, peak1) = memory_mb();
    let index = frmo.current().expect("in force");
    let (orgs, depts) = index.counts();
    println!(
        "refresh ({}): {orgs} organisations, {depts} departments in {:.1} s; RSS {rss0:.1} → {rss1:.1} MB, peak {peak0:.1} → {peak1:.1} MB",
        a.db,
        refresh.as_secs_f64()
    );
    println!("the index's own heap: {:.1} MB", index.heap_bytes() as f64 / 1_048_576.0);

    // 2. The index alone: another instance's, built from storage.
    drop(index);
    drop(frmo);
    let (before, _) = memory_mb();
    let other = egisz_gateway::nsi::frmo::Frmo::new();
    let started = Instant::now();
    other.load(&*store).await?;
    let load = started.elapsed();
    let (after, _) = memory_mb();
    println!(
        "index from storage: {:.1} s; RSS {before:.1} → {after:.1} MB (+{:.1} MB)",
        load.as_secs_f64(),
        after - before
    );

    // 3. Lookups against parsing, per intake.
    let index = other.current().expect("in force");
    let header = egisz_semd::CdaHeader::parse(SAMPLE.as_bytes()).map_err(|v| anyhow::anyhow!("{v:?}"))?;
    let mo = egisz_contract::Oid::parse(MO)?;
    let department = egisz_contract::Oid::parse(&format!("{MO}.0.4411"))?;
    let places = egisz_gateway::validation::organizations::places_of(&mo, Some(&department), &header);
    let date = chrono::NaiveDate::from_ymd_opt(2023, 8, 18).expect("a day");
    const ROUNDS: u32 = 20_000;
    let started = Instant::now();
    for _ in 0..ROUNDS {
        std::hint::black_box(egisz_semd::CdaHeader::parse(std::hint::black_box(SAMPLE.as_bytes())).is_ok());
    }
    let parse = started.elapsed() / ROUNDS;
    let started = Instant::now();
    let mut found = 0;
    for _ in 0..ROUNDS {
        found += egisz_gateway::validation::organizations::judge(&index, std::hint::black_box(&places), date).len();
    }
    let lookups = started.elapsed() / ROUNDS;
    anyhow::ensure!(found == 0, "the sample's organisations are in the copy");
    println!(
        "per intake: {} places judged in {:.2} µs; parsing the sample {:.2} µs; lookups / parse = {:.4}",
        places.len(),
        lookups.as_secs_f64() * 1e6,
        parse.as_secs_f64() * 1e6,
        lookups.as_secs_f64() / parse.as_secs_f64()
    );
    drop(index);
    drop(other);

    // 4. Intake with and without a refresh beside it.
    let gw = egisz_gateway::app::start(&config).await?;
    let issued = auth::issue(
        "bench",
        [Role::Submitter].into_iter().collect(),
        Scope::Only([egisz_contract::Oid::parse(MO)?].into_iter().collect()),
        egisz_gateway::now(),
    );
    gw.store().insert_client(&issued.client).await?;
    let signer = TestCa::new(egisz_gost::Gost::load()?, SANDBOX_CA_SEED).issue_doctor(
        "author",
        "20311784514",
        Utc.with_ymd_and_hms(2020, 1, 1, 0, 0, 0).unwrap().timestamp(),
        Utc.with_ymd_and_hms(2030, 1, 1, 0, 0, 0).unwrap().timestamp(),
    );
    let body = |i: usize| {
        let d = SAMPLE.replace("5b0a3c1e-2f6d-4b8e-9a71-0c3d5e7f9a21", &format!("frmo-bench-{i:06}"));
        serde_json::json!({
            "kind": 40, "organization": MO, "document": B64.encode(d.as_bytes()),
            "signatures": [{"role": "1", "role_version": "2.4", "data": B64.encode(signer.sign_detached(d.as_bytes()))}],
        })
        .to_string()
    };
    let http = reqwest::Client::builder().pool_max_idle_per_host(8).build()?;
    let url = format!("{}/api/v1/documents", gw.api_url());
    let warm = bench::drive(&http, &url, &issued.key, &[body(usize::MAX)], 1).await;
    anyhow::ensure!(warm.errors == 0, "the warm-up document was not accepted");
    let quiet: Vec<String> = (0..a.requests).map(body).collect();
    let busy: Vec<String> = (a.requests..2 * a.requests).map(body).collect();
    let baseline = bench::drive(&http, &url, &issued.key, &quiet, 8).await;
    println!("{}", baseline.line("intake, no refresh"));
    nsi.publish_frmo("2.0", &egisz_sandbox::Frmo::country(a.organizations, a.departments));
    let refresher = egisz_gateway::nsi::frmo::Frmo::new();
    let store2 = gw.store();
    let refreshing = tokio::spawn(async move {
        let started = Instant::now();
        let results = refresher.refresh(&client, &*store2, egisz_gateway::now()).await;
        (started.elapsed(), results)
    });
    // Intake until the refresh is done, in rounds of the same size as the baseline.
    let mut rounds = Vec::new();
    let mut next = 2 * a.requests;
    while !refreshing.is_finished() {
        let bodies: Vec<String> =
            if rounds.is_empty() { busy.clone() } else { (next..next + a.requests).map(body).collect() };
        next += a.requests;
        rounds.push(bench::drive(&http, &url, &issued.key, &bodies, 8).await);
    }
    let (took, results) = refreshing.await?;
    anyhow::ensure!(results.iter().all(|r| !r.failed()), "the second refresh failed: {results:?}");
    for (i, r) in rounds.iter().enumerate() {
        println!("{}", r.line(&format!("intake, refresh running #{}", i + 1)));
    }
    let mut p99s: Vec<Duration> = rounds.iter().map(|r| r.p99).collect();
    p99s.sort();
    let (median99, worst99) = (p99s[p99s.len() / 2], p99s[p99s.len() - 1]);
    let mean50 = rounds.iter().map(|r| ms(r.p50)).sum::<f64>() / rounds.len().max(1) as f64;
    let rps = bench::mean_rps(&rounds);
    println!(
        "second refresh beside intake: {:.1} s, {} rounds of {} documents; intake {:.0} req/s (baseline {:.0}, ratio {:.2}), \
         p50 {:.2} ms (baseline {:.2}), p99 median round {:.2} ms, worst round {:.2} ms (baseline {:.2}: ratios {:.2}, {:.2})",
        took.as_secs_f64(),
        rounds.len(),
        a.requests,
        rps,
        baseline.rps,
        rps / baseline.rps,
        mean50,
        ms(baseline.p50),
        ms(median99),
        ms(worst99),
        ms(baseline.p99),
        ms(median99) / ms(baseline.p99),
        ms(worst99) / ms(baseline.p99)
    );
    let errors: usize = rounds.iter().map(|r| r.errors).sum::<usize>() + baseline.errors;
    println!("intake errors: {errors}");
    gw.shutdown().await;
    nsi.stop().await;
    database.drop_it().await?;
    Ok(())
}
