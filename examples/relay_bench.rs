//! The relay with a backlog: achieved REMD rate against the configured limit, the worst
//! one-second window, and the process's memory while the backlog drains.
//!
//! ```sh
//! cargo build --release
//! cargo run --release --example relay_bench -- --db sqlite --documents 2000 --rate 50
//! cargo run --release --example relay_bench -- --db sqlite --documents 50000 --rate 200
//! ```
//!
//! Stores a backlog through the outbox (a fresh SQLite file or PostgreSQL database), then
//! starts the gateway BINARY (`target/release/egisz-gateway serve`, remote mode) against the
//! REMD emulator running in this process, and watches it drain. Prints the achieved rate of
//! registerDocument calls, its ratio to the configured limit, the worst 1-second window, and
//! the gateway process's resident memory at 10 %, 50 % and 90 % drained (the emulator's own
//! memory, which grows with its register, is not in that figure).

use std::time::{Duration, Instant};

use egisz_contract::remd::{Coded, PersonalSignature, SignatureData};
use egisz_contract::{Oid, Snils};
use egisz_gateway::config::Config;
use egisz_gateway::submission::NewSubmission;
use egisz_sandbox::{RemdSandbox, RemdSandboxConfig};

const SAMPLE: &str = include_str!("../semd/tests/data/tmk-protocol-40.xml");
const MO: &str = "1.2.643.5.1.13.13.12.2.42.2917";

fn rss_kb(pid: u32) -> u64 {
    std::fs::read_to_string(format!("/proc/{pid}/status"))
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let mut db = "sqlite".to_owned();
    let mut documents = 2000usize;
    let mut rate = 50u32;
    let mut it = std::env::args().skip(1);
    while let Some(k) = it.next() {
        let v = it.next().unwrap_or_default();
        match k.as_str() {
            "--db" => db = v,
            "--documents" => documents = v.parse()?,
            "--rate" => rate = v.parse()?,
            other => anyhow::bail!("unknown argument {other}"),
        }
    }
    let dir = tempfile::tempdir()?;
    let pg_name = format!("egisz_relay_bench_{}", std::process::id());
    let url = match db.as_str() {
        "sqlite" => format!("sqlite://{}/bench.db", dir.path().display()),
        "postgres" => {
            use sqlx::Connection;
            let mut c = sqlx::PgConnection::connect("postgres://postgres@127.0.0.1:5432/postgres").await?;
            sqlx::query(&format!("CREATE DATABASE {pg_name}")).execute(&mut c).await?;
            format!("postgres://postgres@127.0.0.1:5432/{pg_name}")
        }
        other => anyhow::bail!("--db sqlite|postgres, not {other}"),
    };
    let remd_port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
    let remd = RemdSandbox::start(RemdSandboxConfig {
        callback_url: Some(format!("http://127.0.0.1:{remd_port}/")),
        processing_delay: Duration::from_millis(5),
        keep_documents: false,
        ..RemdSandboxConfig::default()
    })
    .await?;
    let env: Vec<(String, String)> = [
        ("EGISZ__DATABASE__URL", url.clone()),
        ("EGISZ__API__LISTEN", "127.0.0.1:0".to_owned()),
        ("EGISZ__REMD_LISTENER__LISTEN", format!("127.0.0.1:{remd_port}")),
        ("EGISZ__REMD__MODE", "remote".to_owned()),
        ("EGISZ__VALIDATION__VERIFIER", "none".to_owned()),
        ("EGISZ__NSI__MODE", "off".to_owned()),
        ("EGISZ__VALIDATION__TEST_PKI_SIGNATURES", "yes".to_owned()),
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
    .collect();
    let config = Config::load(None, &env)?;

    // 1. The backlog, stored through the outbox with no gateway running.
    let store = egisz_gateway::store::connect(&config.database).await?;
    let header = egisz_semd::CdaHeader::parse(SAMPLE.as_bytes()).map_err(|_| anyhow::anyhow!("sample"))?;
    let parts = egisz_semd::register_request_parts(&header, chrono::FixedOffset::east_opt(7 * 3600).unwrap())
        .map_err(|_| anyhow::anyhow!("sample"))?;
    let snils = Snils::parse("20311784514")?;
    let signer = parts.signer(&snils, Coded { code: "1".into(), version: "2.4".into() }).expect("the author");
    // Signed with the sandbox CA, which the REMD emulator verifies, so that the backlog registers.
    let author = egisz_semd::test_pki::TestCa::new(egisz_semd::test_pki::SANDBOX_CA_SEED).issue_doctor(
        "relay-bench-author",
        &snils,
        chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2020, 1, 1, 0, 0, 0).unwrap(),
        chrono::TimeZone::with_ymd_and_hms(&chrono::Utc, 2030, 1, 1, 0, 0, 0).unwrap(),
    );
    let started = Instant::now();
    for i in 0..documents {
        let uid = format!("backlog-{i:06}");
        let content = SAMPLE.replace("5b0a3c1e-2f6d-4b8e-9a71-0c3d5e7f9a21", &uid).into_bytes();
        let checksum = egisz_remd::checksum(&content);
        let mut p = parts.clone();
        p.local_uid = uid.clone();
        let request = p.into_register_document(
            String::new(),
            40,
            Oid::parse(MO)?,
            checksum,
            vec![PersonalSignature {
                signer: signer.clone(),
                signature: {
                    let data = author.sign_detached(&content);
                    SignatureData { checksum: egisz_remd::checksum(&data), data }
                },
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

    // 2. The gateway binary drains it at the configured rate.
    let binary = std::env::current_exe()?.parent().and_then(|p| p.parent()).map(|p| p.join("egisz-gateway")).unwrap();
    anyhow::ensure!(binary.exists(), "build the gateway first: cargo build --release ({} missing)", binary.display());
    let mut child = std::process::Command::new(&binary)
        .arg("serve")
        .envs(env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
        .env_remove("RUST_LOG")
        .stdout(std::process::Stdio::null())
        .spawn()?;
    let pid = child.id();
    let started = Instant::now();
    let mut rss_marks = Vec::new();
    loop {
        let registered = remd.stats().accepted;
        anyhow::ensure!(child.try_wait()?.is_none(), "the gateway exited");
        let done = registered as f64 / documents as f64;
        for mark in [0.1, 0.5, 0.9] {
            if done >= mark && !rss_marks.iter().any(|(m, _)| *m == mark) {
                rss_marks.push((mark, rss_kb(pid)));
            }
        }
        if registered as usize >= documents {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let drain = started.elapsed();
    let times: Vec<_> = remd.register_call_times();
    // Achieved rate over the steady part: first to last call.
    let span = times.last().unwrap().duration_since(*times.first().unwrap()).as_secs_f64();
    let achieved = (times.len() - 1) as f64 / span;
    let mut worst = 0;
    let mut j = 0;
    for i in 0..times.len() {
        while j < times.len() && times[j].duration_since(times[i]) < Duration::from_secs(1) {
            j += 1;
        }
        worst = worst.max(j - i);
    }
    let counts = store.count_by_status().await?;
    println!("== relay bench: {db}, {documents} documents, limit {rate}/s (burst 1), concurrency 16");
    println!("drained in {:.1} s; statuses {counts:?}", drain.as_secs_f64());
    println!(
        "registerDocument calls {}: achieved {:.2}/s = {:.3} of the limit; worst 1-s window {} (limit + burst = {})",
        times.len(),
        achieved,
        achieved / f64::from(rate),
        worst,
        rate + 1
    );
    for (mark, kb) in &rss_marks {
        println!("gateway RSS at {:>3.0} % drained: {:.1} MB", mark * 100.0, *kb as f64 / 1024.0);
    }
    let _ = std::process::Command::new("kill").arg("-TERM").arg(pid.to_string()).status();
    child.wait()?;
    remd.shutdown().await;
    if db == "postgres" {
        use sqlx::Connection;
        let mut c = sqlx::PgConnection::connect("postgres://postgres@127.0.0.1:5432/postgres").await?;
        sqlx::query(&format!("DROP DATABASE IF EXISTS {pg_name} WITH (FORCE)")).execute(&mut c).await?;
    }
    Ok(())
}
