//! What the ministry's rule packages cost, in the same run:
//!
//! 1. per document, one thread: a 30 KB and a 500 KB kind-119 document (the shared sample,
//!    its narrative grown with paragraphs): XML Schema (libxml2 on the package's thread),
//!    schematron (the tree and every rule), and the whole package validation, p50 and p99,
//!    against the gateway's bounded header parse of the same bytes;
//! 2. memory: the process's RSS with no package, then with the three shipped packages
//!    compiled (schematrons, and the XSD on their thread);
//! 3. intake throughput over HTTP, closed loop, kind 119: every layer on against the same
//!    gateway with `validation.xsd` and `validation.schematron` off, alternating, each on a
//!    fresh database (signers off for kind 119: the sample's author is named otherwise in
//!    the sandbox roster; the GOST verifier on in both).
//!
//! ```sh
//! cargo run --release --example packages_bench -- --db sqlite --requests 1500 --concurrency 16
//! cargo run --release --example packages_bench -- --db postgres --requests 1500 --concurrency 16
//! ```

use std::time::{Duration, Instant};

#[path = "support/bench.rs"]
mod bench;
use bench::{Args, Run, args, mean_rps};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{TimeZone, Utc};
use egisz_gateway::validation::policy::{KindPolicies, Policy};
use egisz_gost::test_pki::{SANDBOX_CA_SEED, TestCa, TestSigner};
use egisz_packages::{Catalog, Layers};

const SAMPLE: &str = include_str!("../../shared/samples/consultation-protocol-119.xml");
const SAMPLE_UID: &str = "8d2f6a41-3c7e-4b19-a0d5-6e1f2b7c9a34";
const MO: &str = "1.2.643.5.1.13.13.12.2.42.2917";
const AUTHOR: &str = "20311784514";

/// The kind-119 sample under localUid `i`, its first narrative grown to about `bytes`.
fn document(i: usize, bytes: usize) -> String {
    let paragraph = "<paragraph>Острота зрения без коррекции OD 0,3, OS 0,4; с коррекцией 1,0 обоих глаз.</paragraph>";
    let grow = bytes.saturating_sub(SAMPLE.len()) / paragraph.len();
    let d = SAMPLE.replace(SAMPLE_UID, &format!("pbench-{i:08}"));
    let at = d.find("Обращение первичное, амбулаторно.").expect("the narrative of the sample")
        + "Обращение первичное, амбулаторно.".len();
    format!("{}{}{}", &d[..at], paragraph.repeat(grow), &d[at..])
}

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn quantiles(mut v: Vec<Duration>) -> (f64, f64) {
    v.sort();
    let at = |q: f64| v[((v.len() as f64 * q) as usize).min(v.len() - 1)].as_secs_f64() * 1000.0;
    (at(0.5), at(0.99))
}

fn catalog() -> Catalog {
    Catalog::open(egisz_packages::Settings {
        dir: concat!(env!("CARGO_MANIFEST_DIR"), "/packages").into(),
        xsd_threads: 1,
        limits: egisz_packages::PackageLimits::default(),
        compile: egisz_schematron::CompileLimits::default(),
        units: 200_000_000,
        time: Duration::from_secs(10),
    })
    .expect("the shipped packages")
}

/// Parts 1 and 2.
fn per_document(rounds: usize) {
    let before = rss_kb();
    let catalog = catalog();
    assert!(catalog.load_all().is_empty(), "the shipped packages compile");
    for (kind, sample) in [
        (40, include_str!("../semd/tests/data/tmk-protocol-40.xml")),
        (119, SAMPLE),
        (160, include_str!("../../shared/samples/tmk-cross-border-160.xml")),
    ] {
        let v = catalog.validate(
            kind,
            sample.as_bytes(),
            Layers { xsd: true, schematron: true, schematron_after_xsd_errors: false },
        );
        assert!(v.is_some_and(|v| v.xsd.is_empty() && v.schematron.is_empty()), "the kind-{kind} sample passes");
    }
    let loaded = rss_kb();
    println!("== memory (RSS)");
    println!("no package                          {:8} KiB", before);
    println!("kinds 40, 119, 160 compiled         {:8} KiB  (+{} KiB)", loaded, loaded.saturating_sub(before));

    let schematron =
        catalog.status().into_iter().find(|s| s.kind == 119).and_then(|s| s.stats).expect("119's schematron");
    println!(
        "== kind 119 ({} rules, {} asserts, {} reports), one thread, {rounds} rounds each",
        schematron.rules, schematron.asserts, schematron.reports
    );
    for (size, rounds) in [(30 * 1024, rounds), (500 * 1024, rounds / 10)] {
        let docs: Vec<String> = (0..16).map(|i| document(i, size)).collect();
        let len = docs[0].len();
        let v = catalog
            .validate(
                119,
                docs[0].as_bytes(),
                Layers { xsd: true, schematron: true, schematron_after_xsd_errors: false },
            )
            .unwrap();
        assert!(v.xsd.is_empty() && v.not_checked.is_empty(), "the grown document is XSD-valid and checked: {v:?}");
        let (mut parse, mut xsd, mut sch, mut whole) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
        for r in 0..rounds {
            let d = docs[r % docs.len()].as_bytes();
            let t = Instant::now();
            std::hint::black_box(egisz_semd::CdaHeader::parse(d).is_ok());
            parse.push(t.elapsed());
            let t = Instant::now();
            std::hint::black_box(catalog.validate(
                119,
                d,
                Layers { xsd: true, schematron: false, schematron_after_xsd_errors: false },
            ));
            xsd.push(t.elapsed());
            let t = Instant::now();
            std::hint::black_box(catalog.validate(
                119,
                d,
                Layers { xsd: false, schematron: true, schematron_after_xsd_errors: false },
            ));
            sch.push(t.elapsed());
            let t = Instant::now();
            std::hint::black_box(catalog.validate(
                119,
                d,
                Layers { xsd: true, schematron: true, schematron_after_xsd_errors: false },
            ));
            whole.push(t.elapsed());
        }
        println!("-- {} KB document ({len} bytes), {rounds} rounds", len / 1024);
        for (name, v) in [
            ("header parse (baseline)", parse),
            ("XSD (libxml2)", xsd),
            ("schematron", sch),
            ("whole package validation", whole),
        ] {
            let (p50, p99) = quantiles(v);
            println!("{name:28} p50 {p50:8.2} ms   p99 {p99:8.2} ms");
        }
    }
}

fn gost() -> &'static egisz_gost::Gost {
    egisz_gost::Gost::load().expect("the GOST engine (libengine-gost-openssl)")
}

fn signer(snils: &str) -> TestSigner {
    let at = |y| Utc.with_ymd_and_hms(y, 1, 1, 0, 0, 0).unwrap().timestamp();
    TestCa::new(gost(), SANDBOX_CA_SEED).issue_doctor(snils, snils, at(2020), at(2030))
}

async fn intake_run(a: &Args, packages_on: bool, round: usize) -> anyhow::Result<Run> {
    let author = signer(AUTHOR);
    let tweak = |config: &mut egisz_gateway::config::Config| {
        config.validation.signers = KindPolicies { default: Policy::Block, by_kind: [(119, Policy::Off)].into() };
        if !packages_on {
            config.validation.xsd = KindPolicies::uniform(Policy::Off);
            config.validation.schematron = KindPolicies::uniform(Policy::Off);
        }
    };
    bench::intake_run(a, MO, tweak, |i| {
        let d = document(round * 10_000_000 + i, 30 * 1024);
        serde_json::json!({
            "kind": 119, "organization": MO, "document": B64.encode(d.as_bytes()),
            "signatures": [{"role": "1", "role_version": "2.4", "data": B64.encode(author.sign_cades_bes(d.as_bytes()))}],
        })
        .to_string()
    })
    .await
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let a = args();
    tokio::task::spawn_blocking(|| per_document(1000)).await?;
    let (mut on, mut off) = (Vec::new(), Vec::new());
    for round in 0..2 {
        off.push(intake_run(&a, false, round * 2).await?);
        on.push(intake_run(&a, true, round * 2 + 1).await?);
    }
    println!(
        "== intake, kind 119, 30 KB: {}, {} requests × 2 rounds each, concurrency {}",
        a.db, a.requests, a.concurrency
    );
    for (name, runs) in [("XSD and schematron off", &off), ("every layer on", &on)] {
        for r in runs {
            println!("{}", r.line(name));
        }
    }
    println!("every layer on / off (mean)   {:7.2}", mean_rps(&on) / mean_rps(&off));
    Ok(())
}
