//! The parsers of outside bytes under seeded random mutation, on the stable toolchain: the
//! same entry points as the `cargo fuzz` targets under `fuzz/` (the SOAP reader, the CDA
//! header parser, the CMS parser), started from the same committed seeds, for a bounded
//! number of inputs. Nothing may panic; every input is answered well within a second.
//!
//! A failure prints the seed file, the RNG seed and the iteration, so it can be replayed.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

/// Inputs per target.
const ITERATIONS: usize = 3000;
/// No single input may take longer than this (debug build, noisy machine: generous).
const SLOWEST: Duration = Duration::from_secs(2);

/// Fragments that open doors in XML and DER parsers.
const TOKENS: &[&[u8]] = &[
    b"<",
    b">",
    b"</",
    b"/>",
    b"&amp;",
    b"&x;",
    b"&#0;",
    b"&#x110000;",
    b"<!DOCTYPE a [<!ENTITY x \"y\">]>",
    b"<!ENTITY",
    b" xmlns=\"urn:x\"",
    b" xmlns:p=\"urn:p\"",
    b"p:",
    b"<![CDATA[",
    b"]]>",
    b"<?xml version=\"1.0\" encoding=\"windows-1251\"?>",
    b"\xEF\xBB\xBF",
    b"\xFF\xFE",
    b"\xC3",
    b"=\"",
    b"<author>",
    b"</author>",
    b"<id root=\"1.2.643.100.3\" extension=\"20311784514\"/>",
    b"\x30\x80",
    b"\x30\x84\xFF\xFF\xFF\xFF",
    b"\x06\x09\x2A\x86\x48\x86\xF7\x0D\x01\x07\x02",
    b"\x00\x00",
];

fn seeds(target: &str) -> Vec<(PathBuf, Vec<u8>)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("fuzz/seeds").join(target);
    let mut out: Vec<(PathBuf, Vec<u8>)> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .map(|p| {
            let bytes = std::fs::read(&p).unwrap();
            (p, bytes)
        })
        .collect();
    out.sort();
    assert!(!out.is_empty(), "no seeds in {}", dir.display());
    out
}

fn mutate(input: &mut Vec<u8>, rng: &mut StdRng) {
    for _ in 0..rng.random_range(1..=4) {
        let len = input.len();
        let at = if len == 0 { 0 } else { rng.random_range(0..len) };
        match rng.random_range(0..7) {
            0 if len > 0 => input[at] ^= 1 << rng.random_range(0..8),
            1 => input.insert(at, rng.random()),
            2 if len > 0 => {
                let end = (at + rng.random_range(1..64)).min(len);
                input.drain(at..end);
            }
            3 if len > 0 => {
                // Amplification: a piece repeated, as bombs are built.
                let end = (at + rng.random_range(1..256)).min(len);
                let piece = input[at..end].to_vec();
                for _ in 0..rng.random_range(1..64) {
                    input.splice(at..at, piece.iter().copied());
                }
            }
            4 | 5 => {
                let token = TOKENS[rng.random_range(0..TOKENS.len())];
                input.splice(at..at, token.iter().copied());
            }
            _ => input.truncate(at),
        }
    }
}

fn run(target: &str, seed: u64, parse: impl Fn(&[u8])) {
    let seeds = seeds(target);
    let mut rng = StdRng::seed_from_u64(seed);
    let mut slowest = Duration::ZERO;
    for i in 0..ITERATIONS {
        let (path, base) = &seeds[rng.random_range(0..seeds.len())];
        let mut input = base.clone();
        mutate(&mut input, &mut rng);
        let started = Instant::now();
        let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| parse(&input)));
        let took = started.elapsed();
        slowest = slowest.max(took);
        assert!(outcome.is_ok(), "{target}: panicked on a mutation of {} (seed {seed}, iteration {i})", path.display());
        assert!(took < SLOWEST, "{target}: {took:?} on a mutation of {} (seed {seed}, iteration {i})", path.display());
    }
    println!("{target}: {ITERATIONS} inputs, slowest {slowest:?}");
}

#[test]
fn the_soap_reader_never_panics() {
    run("soap_reader", 0x50A9, |data| {
        let _ = egisz_remd::parse_incoming(data);
        let _ = egisz_remd::read_register_document_response(data);
        let _ = egisz_remd::read_search_registry_item_response(data);
        let _ = egisz_remd::read_get_document_file_response(data);
        let _ = egisz_remd::read_register_document(data);
    });
}

#[test]
fn the_cda_header_parser_never_panics() {
    let zone = chrono::FixedOffset::east_opt(7 * 3600).unwrap();
    run("cda_header", 0xCDA, |data| {
        if let Ok(header) = egisz_semd::CdaHeader::parse(data) {
            let _ = egisz_semd::register_request_parts(&header, zone);
        }
    });
}

#[test]
fn the_cms_parser_never_panics() {
    let created = chrono::DateTime::parse_from_rfc3339("2023-08-18T10:15:00+07:00").unwrap();
    run("cms_parser", 0xC35, |data| {
        if let Ok(signature) = egisz_semd::parse_signature(data) {
            let _ = egisz_semd::check_signature(&signature, b"<ClinicalDocument/>", created);
        }
    });
}
