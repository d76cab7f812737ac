//! What the checks of intake cost, in the same run:
//!
//! 1. per document, one thread: the CDA parse alone, against everything intake checks of a
//!    30 KB TMK protocol with two GOST R 34.10-2012 signatures (Streebog-256) — header
//!    rules, the kind's profile, H13, both signatures (parse, digest, certificate), the GOST
//!    verifier on both (value, chain to the warm trust store, revocation against the CRL it
//!    holds), and both signers judged against FRMR answers already cached;
//! 2. Streebog-256 over the 30 KB document: the pure-Rust crate against OpenSSL's engine;
//! 3. intake throughput over HTTP, closed loop: the gateway with `validation.verifier =
//!    "gost"` against the same gateway with `"none"` (signers `block` in both, FRMR answers
//!    cached after the first document), alternating, each on a fresh database.
//!
//! ```sh
//! cargo run --release --example validation_bench -- --db sqlite --requests 1500 --concurrency 16
//! cargo run --release --example validation_bench -- --db postgres --requests 1500 --concurrency 16
//! ```

use std::time::Instant;

#[path = "support/bench.rs"]
mod bench;
use bench::{Args, Run, args, mean_rps};

use base64::Engine;
use base64::engine::general_purpose::STANDARD as B64;
use chrono::{TimeZone, Utc};
use egisz_contract::{Oid, Snils};
use egisz_gateway::config::Config;
use egisz_gateway::mappings::Mappings;
use egisz_gateway::validation::policy::{KindPolicies, Policy};
use egisz_gateway::validation::settings::VerifierChoice;
use egisz_gateway::validation::{self, DocumentInput, PersonalInput};
use egisz_gost::test_pki::{SANDBOX_CA_SEED, TestCa, TestSigner};
use egisz_semd::SignatureVerifier;
use egisz_semd::signature::DigestAlgorithm;

const SAMPLE: &str = include_str!("../semd/tests/data/tmk-protocol-40.xml");
const MO: &str = "1.2.643.5.1.13.13.12.2.42.2917";
const AUTHOR: &str = "20311784514";
/// Гришин, врач-хирург in MO 2917: the legal authenticator, a second signer.
const LEGAL: &str = "34786502816";

fn nth(text: &str, from: &str, to: &str, n: usize) -> String {
    let (i, _) = text.match_indices(from).nth(n - 1).expect("an occurrence");
    format!("{}{}{}", &text[..i], to, &text[i + from.len()..])
}

/// The sample with a second signer as legal authenticator, grown to about 30 KB.
fn document(i: usize) -> String {
    let filler = "Пациентка наблюдается амбулаторно; рекомендации выполняются. ".repeat(205);
    let mut d = SAMPLE.replace("5b0a3c1e-2f6d-4b8e-9a71-0c3d5e7f9a21", &format!("vbench-{i:07}"));
    d = nth(&d, AUTHOR, LEGAL, 2);
    d = nth(&d, "D-1187", "D-2001", 2);
    d = nth(&d, r#"<code code="73""#, r#"<code code="89""#, 2);
    d = nth(&d, r#"displayName="врач-офтальмолог""#, r#"displayName="врач-хирург""#, 2);
    d = nth(&d, "<family>Колпинская</family>", "<family>Гришин</family>", 2);
    d = nth(&d, "<given>Светлана</given>", "<given>Алексей</given>", 2);
    d = nth(&d, "<given>Александровна</given>", "<given>Николаевич</given>", 2);
    d.replace("Рекомендовано наблюдение", &format!("{filler}Рекомендовано наблюдение"))
}

fn gost() -> &'static egisz_gost::Gost {
    egisz_gost::Gost::load().expect("the GOST engine (libengine-gost-openssl)")
}

fn signer(snils: &str) -> TestSigner {
    let at = |y| Utc.with_ymd_and_hms(y, 1, 1, 0, 0, 0).unwrap().timestamp();
    TestCa::new(gost(), SANDBOX_CA_SEED).issue_doctor(snils, snils, at(2020), at(2030))
}

fn sign(s: &TestSigner, d: &str) -> Vec<u8> {
    s.sign_cades_bes(d.as_bytes())
}

/// A GOST verifier trusting the sandbox CA, its CRL held: what the gateway's sandbox runs.
fn verifier() -> egisz_verifier::gost::GostVerifier {
    egisz_sandbox::remd::verifier_trusting(&[egisz_sandbox::pki::sandbox_ca_der()]).expect("the GOST verifier")
}

/// Part 1: µs per document, parse only against every check.
fn per_document(rounds: usize) {
    let mappings = Mappings::embedded().unwrap();
    let kind = mappings.kind(40).unwrap().clone();
    let org = Oid::parse(MO).unwrap();
    let offset = chrono::FixedOffset::east_opt(7 * 3600).unwrap();
    let now = Utc::now().with_timezone(&offset);
    let (a, l) = (signer(AUTHOR), signer(LEGAL));
    let docs: Vec<(String, Vec<u8>, Vec<u8>)> = (0..64)
        .map(|i| {
            let d = document(i);
            let (sa, sl) = (sign(&a, &d), sign(&l, &d));
            (d, sa, sl)
        })
        .collect();
    let verifier = verifier();
    // FRMR's answers as the staff cache holds them (the sandbox roster's cards).
    let person = |snils: &str, names: [&str; 3], position: &str| egisz_contract::frmr::FrmrPerson {
        frmr_id: None,
        snils: Snils::parse(snils).unwrap(),
        last_name: egisz_contract::Personal(names[0].into()),
        first_name: egisz_contract::Personal(names[1].into()),
        patronymic: Some(egisz_contract::Personal(names[2].into())),
        birth_date: None,
        gender: None,
        cards: vec![egisz_contract::frmr::PersonCard {
            id: None,
            organization: Some(MO.into()),
            organization_name: None,
            department: None,
            department_name: None,
            position_code: Some(position.into()),
            position: None,
            position_type: Some(1),
            rate: None,
            begin_date: chrono::NaiveDate::from_ymd_opt(2016, 1, 1),
            end_date: None,
            derelictions: Vec::new(),
        }],
    };
    let cached = [
        (AUTHOR, person(AUTHOR, ["Колпинская", "Светлана", "Александровна"], "73")),
        (LEGAL, person(LEGAL, ["Гришин", "Алексей", "Николаевич"], "89")),
    ];
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();

    let time = |f: &mut dyn FnMut(usize)| {
        for i in 0..docs.len() {
            f(i); // warm
        }
        let started = Instant::now();
        for r in 0..rounds {
            f(r % docs.len());
        }
        started.elapsed().as_secs_f64() * 1e6 / rounds as f64
    };
    let parse = time(&mut |i| {
        std::hint::black_box(egisz_semd::CdaHeader::parse(docs[i].0.as_bytes()).unwrap());
    });
    let input = |i: usize| {
        let (d, sa, sl) = &docs[i];
        DocumentInput {
            kind: &kind,
            organization: &org,
            department: None,
            content: d.as_bytes(),
            signatures: vec![
                Some(PersonalInput { role: "1", role_version: "2.4", cms: sa }),
                Some(PersonalInput { role: "1", role_version: "2.4", cms: sl }),
            ],
            org_signature: None,
        }
    };
    let verify_both = |i: usize, p: &validation::Prepared| {
        for (_, s) in &p.signatures {
            let verdict = runtime.block_on(verifier.verify(s, docs[i].0.as_bytes(), p.parts.creation_date_time));
            assert_eq!(verdict.unwrap(), vec![]);
        }
    };
    let full = time(&mut |i| {
        let checked = validation::check_document(&input(i), mappings.dictionaries(), now, offset);
        let prepared = checked.prepared.expect("the bench document passes");
        verify_both(i, &prepared);
        let date = prepared.parts.creation_date_time.date_naive();
        for s in &prepared.signers {
            let p = &cached.iter().find(|(snils, _)| *snils == s.snils.as_str()).unwrap().1;
            assert!(validation::signers::judge(s, &org, date, Some(p)).is_empty());
        }
    });
    let prepared: Vec<_> = (0..docs.len())
        .map(|i| validation::check_document(&input(i), mappings.dictionaries(), now, offset).prepared.expect("passes"))
        .collect();
    let gost_only = time(&mut |i| verify_both(i, &prepared[i]));
    println!("== per document ({} bytes, 2 signatures, Streebog-256), {rounds} rounds, one thread", docs[0].0.len());
    println!("GOST verification of both  {gost_only:9.1} µs   (value, chain, revocation; warm trust store and CRL)");
    println!("parse only                 {parse:9.1} µs");
    println!("every check (cached FRMR)  {full:9.1} µs");
    println!("validation / parse         {:9.2}", full / parse);

    let d = docs[0].0.as_bytes();
    let pure = time(&mut |_| {
        std::hint::black_box(egisz_semd::digest(&DigestAlgorithm::Streebog256, d));
    });
    let engine = time(&mut |_| {
        std::hint::black_box(egisz_gost::digest(gost(), egisz_gost::Digest::Streebog256, d).unwrap());
    });
    println!("== Streebog-256 over {} bytes, {rounds} rounds", d.len());
    println!("pure Rust (streebog crate) {pure:9.1} µs");
    println!("OpenSSL's GOST engine      {engine:9.1} µs");
    println!("engine / pure Rust         {:9.2}", engine / pure);
}

async fn intake_run(a: &Args, gost_on: bool, round: usize) -> anyhow::Result<Run> {
    let (sa, sl) = (signer(AUTHOR), signer(LEGAL));
    let tweak = |config: &mut Config| {
        config.validation.signers = KindPolicies::uniform(Policy::Block);
        if !gost_on {
            config.validation.verifier = VerifierChoice::None;
        }
    };
    // FRMR's answers are cached by the warm-up document, as in steady operation.
    bench::intake_run(a, MO, tweak, |i| {
        let d = document(round * 10_000_000 + i);
        serde_json::json!({
            "kind": 40, "organization": MO, "document": B64.encode(d.as_bytes()),
            "signatures": [
                {"role": "1", "role_version": "2.4", "data": B64.encode(sign(&sa, &d))},
                {"role": "1", "role_version": "2.4", "data": B64.encode(sign(&sl, &d))},
            ],
        })
        .to_string()
    })
    .await
}

#[tokio::main(flavor = "multi_thread")]
async fn main() -> anyhow::Result<()> {
    let a = args();
    tokio::task::spawn_blocking(|| per_document(2000)).await?;
    let mut on = Vec::new();
    let mut off = Vec::new();
    for round in 0..2 {
        off.push(intake_run(&a, false, round * 2).await?);
        on.push(intake_run(&a, true, round * 2 + 1).await?);
    }
    println!("== intake: {}, {} requests × 2 rounds each, concurrency {}", a.db, a.requests, a.concurrency);
    for (name, runs) in [("verifier none", &off), ("verifier gost", &on)] {
        for r in runs.iter() {
            println!("{}", r.line(name));
        }
    }
    println!("gost / none throughput: {:.3}", mean_rps(&on) / mean_rps(&off));
    Ok(())
}
