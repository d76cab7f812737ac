//! The relay with a backlog: achieved REMD rate against the configured limit, the worst
//! one-second window, and the gateway's memory while the backlog drains; with
//! `--instances 1,2,3`, the same for a cluster of that many instances sharing one PostgreSQL
//! database and one quota, each in the same run, then what the shared bucket costs per call
//! against the in-process limiter.
//!
//! ```sh
//! cargo build --release --bins --examples
//! target/release/examples/relay_bench --db sqlite --documents 6000 --rate 100
//! target/release/examples/relay_bench --db postgres --documents 3000 --rate 100 --instances 1,2,3
//! ```
//!
//! For each configuration: a fresh SQLite file or PostgreSQL database, a backlog stored
//! through the outbox with no gateway running, then N gateway BINARIES
//! (`target/release/egisz-gateway serve`, remote mode) started against the REMD emulator
//! running in this process, behind one balancer (REMD's pulls and results go to any of
//! them), and watched until the backlog is registered. Prints the achieved rate of calls to
//! REMD (every method), its ratio to the configured limit, the worst 1-second window, and
//! the largest resident memory of any instance at 10 %, 50 % and 90 % drained (the
//! emulator's own memory, which grows with its register, is not in that figure).

use std::net::SocketAddr;
use std::num::NonZeroU32;
use std::sync::Arc;
use std::time::{Duration, Instant};

use egisz_contract::remd::{Coded, PersonalSignature, SignatureData};
use egisz_contract::{Oid, Snils};
use egisz_gateway::config::Config;
use egisz_gateway::quota::{self, Grant};
use egisz_gateway::submission::NewSubmission;
use egisz_sandbox::{Balancer, FrmrSandbox, FrmrSandboxConfig, RemdSandbox, RemdSandboxConfig};

const SAMPLE: &str = include_str!("../semd/tests/data/tmk-protocol-40.xml");
const MO: &str = "1.2.643.5.1.13.13.12.2.42.2917";
const ADMIN: &str = "postgres://postgres@127.0.0.1:5432/postgres";

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn free_port() -> anyhow::Result<u16> {
    Ok(std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port())
}

async fn admin(sql: &str) -> anyhow::Result<()> {
    use sqlx::Connection;
    let mut c = sqlx::PgConnection::connect(ADMIN).await?;
    sqlx::query(sql).execute(&mut c).await?;
    Ok(())
}

struct Report {
    instances: usize,
    drain: Duration,
    calls: usize,
    achieved: f64,
    worst: usize,
    rss_marks: Vec<(f64, u64)>,
    statuses: String,
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut db = "sqlite".to_owned();
    let mut documents = 2000usize;
    let mut rate = 50u32;
    let mut instances = vec![1usize];
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_default();
        match k.as_str() {
            "--db" => db = v,
            "--documents" => documents = v.parse()?,
            "--rate" => rate = v.parse()?,
            "--instances" => instances = v.split(',').map(str::parse).collect::<Result<_, _>>()?,
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    anyhow::ensure!(
        db == "postgres" || instances == [1],
        "several instances share a PostgreSQL database (--db postgres); SQLite serves one process"
    );
    let binary = std::env::current_exe()?.parent().and_then(|p| p.parent()).map(|p| p.join("egisz-gateway")).unwrap();
    anyhow::ensure!(binary.exists(), "build the gateway first: cargo build --release ({} missing)", binary.display());
    let mut reports = Vec::new();
    for n in instances {
        reports.push(run(&binary, &db, documents, rate, n).await?);
    }
    println!("== relay bench: {db}, {documents} documents, limit {rate}/s (burst 1), concurrency 16 per instance");
    for r in &reports {
        println!(
            "{} instance(s): drained in {:.1} s ({}); {} calls to REMD, achieved {:.2}/s = {:.3} of the limit; \
             worst 1-s window {} (limit + burst = {})",
            r.instances,
            r.drain.as_secs_f64(),
            r.statuses,
            r.calls,
            r.achieved,
            r.achieved / f64::from(rate),
            r.worst,
            rate + 1
        );
        for (mark, kb) in &r.rss_marks {
            println!("    largest instance RSS at {:>3.0} % drained: {:.1} MB", mark * 100.0, *kb as f64 / 1024.0);
        }
    }
    if db == "postgres" {
        bucket_cost(5000).await?;
    }
    Ok(())
}

async fn run(
    binary: &std::path::Path,
    db: &str,
    documents: usize,
    rate: u32,
    instances: usize,
) -> anyhow::Result<Report> {
    let dir = tempfile::tempdir()?;
    let pg_name = format!("egisz_relay_bench_{}_{instances}", std::process::id());
    let url = match db {
        "sqlite" => format!("sqlite://{}/bench.db", dir.path().display()),
        "postgres" => {
            admin(&format!("CREATE DATABASE {pg_name}")).await?;
            format!("postgres://postgres@127.0.0.1:5432/{pg_name}")
        }
        other => anyhow::bail!("--db sqlite|postgres, not {other}"),
    };
    let ports: Vec<(u16, u16)> =
        (0..instances).map(|_| Ok((free_port()?, free_port()?))).collect::<anyhow::Result<_>>()?;
    let listeners =
        Balancer::start(ports.iter().map(|(_, l)| SocketAddr::from(([127, 0, 0, 1], *l))).collect()).await?;
    let remd = RemdSandbox::start(RemdSandboxConfig {
        callback_url: Some(format!("{}/", listeners.url())),
        processing_delay: Duration::from_millis(5),
        keep_documents: false,
        ..RemdSandboxConfig::default()
    })
    .await?;
    // FRMR as a real service too (no sandbox runs beside a remote REMD); signers are not
    // checked at intake here, the documents are stored through the outbox.
    let frmr = FrmrSandbox::start(FrmrSandboxConfig::default()).await?;
    let env_of = |n: usize| -> Vec<(String, String)> {
        [
            ("EGISZ__FRMR__MODE", "remote".to_owned()),
            ("EGISZ__FRMR__BASE_URL", frmr.base_url()),
            ("EGISZ__FRMR__TOKEN", "static:sandbox-static-token".to_owned()),
            ("EGISZ__DATABASE__URL", url.clone()),
            ("EGISZ__API__LISTEN", format!("127.0.0.1:{}", ports[n].0)),
            ("EGISZ__REMD_LISTENER__LISTEN", format!("127.0.0.1:{}", ports[n].1)),
            ("EGISZ__RELAY__INSTANCE_ID", format!("bench-{n}")),
            ("EGISZ__REMD__MODE", "remote".to_owned()),
            ("EGISZ__VALIDATION__VERIFIER", "none".to_owned()),
            ("EGISZ__NSI__MODE", "off".to_owned()),
            ("EGISZ__REMD__ENDPOINT", remd.endpoint()),
            ("EGISZ__REMD__CLIENT_ENTITY_ID", remd.client_entity_id().to_owned()),
            ("EGISZ__REMD__RATE_PER_SECOND", rate.to_string()),
            ("EGISZ__REMD__BURST", "1".to_owned()),
            ("EGISZ__RELAY__CONCURRENCY", "16".to_owned()),
            ("EGISZ__RELAY__POLL_INTERVAL_MS", "200".to_owned()),
            ("EGISZ__SANDBOX__API_KEY_FILE", format!("{}/key", dir.path().display())),
            ("EGISZ__LOG__LEVEL", "warn".to_owned()),
        ]
        .into_iter()
        .map(|(k, v)| (k.to_owned(), v))
        .collect()
    };
    let config = Config::load(None, &env_of(0))?;

    // 1. The backlog, stored through the outbox with no gateway running.
    let store = egisz_gateway::store::connect(&config.database).await?;
    store_backlog(&*store, documents).await?;

    // 2. The gateway binaries drain it at the configured rate.
    let mut children = Vec::new();
    for n in 0..instances {
        children.push(
            std::process::Command::new(binary)
                .arg("serve")
                .envs(env_of(n))
                .env_remove("RUST_LOG")
                .stdout(std::process::Stdio::null())
                .spawn()?,
        );
    }
    let started = Instant::now();
    let mut rss_marks: Vec<(f64, u64)> = Vec::new();
    loop {
        let registered = remd.stats().accepted;
        for c in &mut children {
            anyhow::ensure!(c.try_wait()?.is_none(), "a gateway exited");
        }
        let done = registered as f64 / documents as f64;
        for mark in [0.1, 0.5, 0.9] {
            if done >= mark && !rss_marks.iter().any(|(m, _)| *m == mark) {
                rss_marks.push((mark, children.iter().map(|c| rss_kb(c.id())).max().unwrap_or(0)));
            }
        }
        if registered as usize >= documents {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let drain = started.elapsed();
    // Achieved rate over the steady part, every method: n calls from the first to the last
    // take n slots of 1/rate at the limit (the first call's slot is the span before the
    // second), so the ratio is at most 1.0 while the limit holds.
    let times = remd.call_times();
    let span = times.last().unwrap().duration_since(*times.first().unwrap()).as_secs_f64();
    let achieved = times.len() as f64 / (span + 1.0 / f64::from(rate));
    let mut worst = 0;
    let mut j = 0;
    for i in 0..times.len() {
        while j < times.len() && times[j].duration_since(times[i]) < Duration::from_secs(1) {
            j += 1;
        }
        worst = worst.max(j - i);
    }
    let statuses = format!("{:?}", store.count_by_status().await?);
    for c in &mut children {
        let _ = std::process::Command::new("kill").arg("-TERM").arg(c.id().to_string()).status();
        c.wait()?;
    }
    remd.shutdown().await;
    drop(store);
    if db == "postgres" {
        admin(&format!("DROP DATABASE IF EXISTS {pg_name} WITH (FORCE)")).await?;
    }
    Ok(Report { instances, drain, calls: times.len(), achieved, worst, rss_marks, statuses })
}

/// `documents` TMK protocols of one MO, signed with the sandbox CA (which the REMD emulator
/// verifies, so that they register), stored as intake would.
async fn store_backlog(store: &dyn egisz_gateway::store::Store, documents: usize) -> anyhow::Result<()> {
    let header = egisz_semd::CdaHeader::parse(SAMPLE.as_bytes()).map_err(|_| anyhow::anyhow!("sample"))?;
    let parts = egisz_semd::register_request_parts(&header, chrono::FixedOffset::east_opt(7 * 3600).unwrap())
        .map_err(|_| anyhow::anyhow!("sample"))?;
    let snils = Snils::parse("20311784514")?;
    let signer = parts.signer(&snils, Coded { code: "1".into(), version: "2.4".into() }).expect("the author");
    let gost = egisz_gost::Gost::load()?;
    let author = egisz_gost::test_pki::TestCa::new(gost, egisz_gost::test_pki::SANDBOX_CA_SEED).issue_doctor(
        "relay-bench-author",
        snils.as_str(),
        1_577_836_800, // 2020-01-01
        1_893_456_000, // 2030-01-01
    );
    let started = Instant::now();
    for i in 0..documents {
        let uid = format!("backlog-{i:06}");
        let content = SAMPLE.replace("5b0a3c1e-2f6d-4b8e-9a71-0c3d5e7f9a21", &uid).into_bytes();
        let checksum = egisz_remd::checksum(&content);
        let mut p = parts.clone();
        p.local_uid = uid.clone();
        let data = author.sign_detached(&content);
        let request = p.into_register_document(
            String::new(),
            40,
            Oid::parse(MO)?,
            checksum,
            vec![PersonalSignature {
                signer: signer.clone(),
                signature: SignatureData { checksum: egisz_remd::checksum(&data), data },
            }],
            None,
        );
        store
            .intake(&NewSubmission {
                id: uuid::Uuid::now_v7(),
                organization: Oid::parse(MO)?,
                local_uid: uid,
                kind: 40,
                checksum,
                content,
                request,
                created_at: egisz_gateway::now(),
                actor: "bench".into(),
                warnings: Vec::new(),
                detail: egisz_gateway::lifecycle::INTAKE_DETAIL.to_owned(),
            })
            .await?;
    }
    eprintln!("backlog of {documents} stored in {:.1} s", started.elapsed().as_secs_f64());
    Ok(())
}

/// What a token of the cluster-wide quota costs against the in-process limiter: `takes`
/// reservations at a rate high enough that every one is granted at once, one at a time and
/// from 8 tasks at once (as 8 relay workers), on a fresh database.
async fn bucket_cost(takes: usize) -> anyhow::Result<()> {
    let name = format!("egisz_qbench_{}", uuid::Uuid::new_v4().simple());
    admin(&format!("CREATE DATABASE {name}")).await?;
    let env = [("EGISZ__DATABASE__URL".to_owned(), format!("postgres://postgres@127.0.0.1:5432/{name}"))];
    let store = egisz_gateway::store::connect(&Config::load(None, &env)?.database).await?;
    let max_wait = Duration::from_secs(5);

    let limiter = governor::RateLimiter::direct(governor::Quota::per_second(NonZeroU32::new(1_000_000).unwrap()));
    let started = Instant::now();
    for _ in 0..takes {
        limiter.until_ready().await;
    }
    let local = started.elapsed().as_secs_f64() * 1e6 / takes as f64;

    let started = Instant::now();
    for _ in 0..takes {
        let row = store.quota_reserve("bench", 1e9, 1_000_000, max_wait, egisz_gateway::now()).await?;
        let grant = quota::from_row(row, 1e9, max_wait);
        anyhow::ensure!(matches!(grant, Grant::At(_)), "{grant:?}");
    }
    let shared = started.elapsed().as_secs_f64() * 1e6 / takes as f64;

    let started = Instant::now();
    let tasks: Vec<_> = (0..8)
        .map(|_| {
            let store = Arc::clone(&store);
            tokio::spawn(async move {
                for _ in 0..takes / 8 {
                    store.quota_reserve("bench8", 1e9, 1_000_000, max_wait, egisz_gateway::now()).await.unwrap();
                }
            })
        })
        .collect();
    for t in tasks {
        t.await?;
    }
    let shared8 = started.elapsed().as_secs_f64() * 1e6 / (takes / 8 * 8) as f64;
    println!("== the shared bucket: {takes} reservations");
    println!("in-process limiter           {local:9.2} µs per token");
    println!("shared bucket, 1 at a time   {shared:9.2} µs per token (1 round trip)");
    println!("shared bucket, 8 at a time   {shared8:9.2} µs per token (throughput of the row)");
    println!("shared / in-process          {:9.0}×", shared / local);
    drop(store);
    admin(&format!("DROP DATABASE IF EXISTS {name} WITH (FORCE)")).await?;
    Ok(())
}
