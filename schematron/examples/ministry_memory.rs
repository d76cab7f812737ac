//! Memory and compile time of every schematron the ministry has published (the 95 in
//! `tests/ministry/`), compiled at once: what a gateway holding every kind's package would
//! carry for the schematrons.
//!
//! ```sh
//! cargo run --release -p egisz-schematron --example ministry_memory
//! ```

use std::io::Read;
use std::time::Instant;

fn rss_kb() -> u64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines().find(|l| l.starts_with("VmRSS:")).and_then(|l| l.split_whitespace().nth(1)?.parse().ok())
        })
        .unwrap_or(0)
}

fn main() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ministry");
    let mut files: Vec<(String, Vec<u8>)> = std::fs::read_dir(&dir)
        .expect("tests/ministry")
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".sch.gz"))
        .map(|p| {
            let mut bytes = Vec::new();
            flate2::read::GzDecoder::new(std::fs::File::open(&p).unwrap()).read_to_end(&mut bytes).unwrap();
            (p.file_name().unwrap().to_string_lossy().into_owned(), bytes)
        })
        .collect();
    files.sort();
    let source: usize = files.iter().map(|(_, b)| b.len()).sum();
    let before = rss_kb();
    let started = Instant::now();
    let mut slowest = (String::new(), 0.0f64);
    let schemas: Vec<egisz_schematron::Schema> = files
        .iter()
        .map(|(name, bytes)| {
            let t = Instant::now();
            let s = egisz_schematron::Schema::compile(bytes, egisz_schematron::HL7_NS, &Default::default())
                .unwrap_or_else(|e| panic!("{name}: {e}"));
            let ms = t.elapsed().as_secs_f64() * 1000.0;
            if ms > slowest.1 {
                slowest = (name.clone(), ms);
            }
            s
        })
        .collect();
    let elapsed = started.elapsed();
    let after = rss_kb();
    let rules: usize = schemas.iter().map(|s| s.stats().rules).sum();
    println!(
        "== the ministry's {} schematrons ({} MB of source, {rules} rules)",
        schemas.len(),
        source / (1024 * 1024)
    );
    println!(
        "compiled in                {:8.0} ms (slowest: {} in {:.0} ms)",
        elapsed.as_secs_f64() * 1000.0,
        slowest.0,
        slowest.1
    );
    println!("RSS before                 {before:8} KiB");
    println!("RSS with all compiled      {after:8} KiB  (+{} KiB)", after.saturating_sub(before));
    drop(files);
    std::hint::black_box(&schemas);
}
