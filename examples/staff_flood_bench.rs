//! Cached staff verification for one key while another key floods FRMR with batches,
//! against the same without the flood, in one run: p50/p99 and throughput, and their ratios.
//!
//! ```sh
//! cargo build --release --bins --examples
//! target/release/examples/staff_flood_bench [--seconds 10] [--parallel 14]
//! ```
//!
//! Starts the release binary on the embedded default (SQLite in a temporary directory, the
//! FRMR emulator in-process at `frmr.rate_per_second` = 10 with 50 ms latency), makes two
//! `verifier` keys, warms the cache with one lookup for the measured key, then runs the same
//! closed loop of 8 connections of cached `GET /api/v1/staff/{snils}` twice: alone, and with
//! the other key posting `--parallel` batches of 1,000 random valid SNILS at once, again and
//! again (the greedy client of `tests/fair_shares.rs`). Load, flood and server share the
//! machine: the ratios are the figures to compare.

#[path = "../tests/common/flood.rs"]
mod flood;

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use egisz_contract::Oid;
use egisz_gateway::auth::{self, Role, Scope};
use egisz_gateway::config::Config;

const MO: &str = "1.2.643.5.1.13.13.12.2.42.2917";

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let args: Vec<String> = std::env::args().collect();
    let arg = |name: &str, default: u64| -> u64 {
        args.iter()
            .position(|a| a == name)
            .and_then(|i| args.get(i + 1))
            .and_then(|v| v.parse().ok())
            .unwrap_or(default)
    };
    let seconds = Duration::from_secs(arg("--seconds", 10));
    let parallel = arg("--parallel", 14) as usize;
    let binary = std::env::current_exe()?.parent().and_then(|p| p.parent()).map(|p| p.join("egisz-gateway")).unwrap();
    anyhow::ensure!(binary.exists(), "build the gateway first: cargo build --release ({} missing)", binary.display());

    let dir = tempfile::tempdir()?;
    let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let api = format!("http://127.0.0.1:{port}");
    let db = format!("sqlite://{}/bench.db", dir.path().display());
    let config = Config::load(None, &[("EGISZ__DATABASE__URL".into(), db.clone())])?;
    let store = egisz_gateway::store::connect(&config.database).await?;
    let scope = Scope::Only([Oid::parse(MO)?].into_iter().collect());
    let issue = |name: &str| {
        auth::issue(name, [Role::Verifier].into_iter().collect::<BTreeSet<_>>(), scope.clone(), egisz_gateway::now())
    };
    let (greedy, portal) = (issue("greedy"), issue("portal"));
    store.insert_client(&greedy.client).await?;
    store.insert_client(&portal.client).await?;
    drop(store);
    let mut child = std::process::Command::new(&binary)
        .arg("serve")
        .env_remove("RUST_LOG")
        .env("EGISZ__DATABASE__URL", &db)
        .env("EGISZ__API__LISTEN", format!("127.0.0.1:{port}"))
        .env("EGISZ__REMD_LISTENER__LISTEN", "127.0.0.1:0")
        .env("EGISZ__FRMR__RATE_PER_SECOND", "10")
        .env("EGISZ__SANDBOX__FRMR_LATENCY_MS", "50")
        .env("EGISZ__NSI__MODE", "off")
        .env("EGISZ__SANDBOX__API_KEY_FILE", dir.path().join("key"))
        .env("EGISZ__LOG__LEVEL", "warn")
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .spawn()?;
    let http = reqwest::Client::builder().timeout(Duration::from_secs(30)).build()?;
    let ready = Instant::now();
    while http.get(format!("{api}/healthz")).send().await.map(|r| r.status() != 200).unwrap_or(true) {
        anyhow::ensure!(ready.elapsed() < Duration::from_secs(20), "the gateway did not come up");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let url = format!("{api}/api/v1/staff/48752710018?organization={MO}");
    let (status, _, _) = flood::timed_get(&http, &url, &portal.key).await;
    anyhow::ensure!(status == 200, "warm-up lookup: {status}");

    let alone = measure(&http, &url, &portal.key, seconds).await;
    let stop = Arc::new(AtomicBool::new(false));
    let (stats, flooders) =
        flood::flood(http.clone(), api.clone(), greedy.key.clone(), MO, parallel, 1000, stop.clone());
    tokio::time::sleep(Duration::from_secs(2)).await;
    let flooded = measure(&http, &url, &portal.key, seconds).await;
    stop.store(true, Ordering::Relaxed);
    for f in flooders {
        f.abort();
    }
    let _ = child.kill();
    let _ = child.wait();

    println!("cached verification of a second key, 8 connections, {} s each:", seconds.as_secs());
    for (label, m) in [("alone", &alone), (&format!("while one key floods ({parallel} × 1,000)") as &str, &flooded)] {
        println!(
            "  {label:40} {:8.0} req/s  p50 {:6.2} ms  p99 {:6.2} ms  errors {}",
            m.per_second,
            m.p50.as_secs_f64() * 1e3,
            m.p99.as_secs_f64() * 1e3,
            m.errors
        );
    }
    println!(
        "  ratio flooded/alone: throughput {:.2}, p99 {:.2}; the flooding key: {} batches answered, {} told 429, {} 503",
        flooded.per_second / alone.per_second,
        flooded.p99.as_secs_f64() / alone.p99.as_secs_f64(),
        stats.ok.load(Ordering::Relaxed),
        stats.too_many.load(Ordering::Relaxed),
        stats.unavailable.load(Ordering::Relaxed),
    );
    Ok(())
}

struct Measured {
    per_second: f64,
    p50: Duration,
    p99: Duration,
    errors: usize,
}

/// 8 connections asking `url` as fast as they are answered for `seconds`.
async fn measure(http: &reqwest::Client, url: &str, key: &str, seconds: Duration) -> Measured {
    let until = Instant::now() + seconds;
    let loops = (0..8).map(|_| {
        let (http, url, key) = (http.clone(), url.to_owned(), key.to_owned());
        tokio::spawn(async move {
            let (mut times, mut errors) = (Vec::new(), 0);
            while Instant::now() < until {
                let (status, _, took) = flood::timed_get(&http, &url, &key).await;
                if status == 200 { times.push(took) } else { errors += 1 }
            }
            (times, errors)
        })
    });
    let (mut times, mut errors) = (Vec::new(), 0);
    for l in futures::future::join_all(loops).await {
        let (t, e) = l.expect("a measuring loop");
        times.extend(t);
        errors += e;
    }
    Measured {
        per_second: times.len() as f64 / seconds.as_secs_f64(),
        p50: flood::quantile(&times, 0.5),
        p99: flood::quantile(&times, 0.99),
        errors,
    }
}
