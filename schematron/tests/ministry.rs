//! Every schematron the ministry has published compiles, and runs within its budget over a
//! document of another kind (every rule's context is evaluated; most find nothing).

use std::io::Read;

use egisz_schematron::{Budget, CompileLimits, Document, HL7_NS, Schema, TreeLimits};

fn ministry() -> Vec<(String, Vec<u8>)> {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/ministry");
    let mut files: Vec<_> = std::fs::read_dir(&dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(".sch.gz"))
        .collect();
    files.sort();
    files
        .into_iter()
        .map(|p| {
            let mut bytes = Vec::new();
            flate2::read::GzDecoder::new(std::fs::File::open(&p).unwrap()).read_to_end(&mut bytes).unwrap();
            (p.file_name().unwrap().to_string_lossy().trim_end_matches(".sch.gz").to_owned(), bytes)
        })
        .collect()
}

#[test]
fn all_95_published_schematrons_compile_and_run() {
    let files = ministry();
    assert_eq!(files.len(), 95, "the ministry has published 95 schematrons");
    let sample =
        std::fs::read(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/samples/consultation-protocol-119.xml"))
            .unwrap();
    let doc = Document::parse(&sample, &TreeLimits::default()).unwrap();
    let mut failed = Vec::new();
    let (mut rules, mut asserts, mut reports) = (0, 0, 0);
    for (kind, bytes) in &files {
        match Schema::compile(bytes, HL7_NS, &CompileLimits::default()) {
            Ok(schema) => {
                let stats = schema.stats();
                rules += stats.rules;
                asserts += stats.asserts;
                reports += stats.reports;
                let outcome = schema.validate(&doc, &Budget::default());
                // Another kind's document may break the rules or stop on an XPath error, as
                // Saxon would; it must not spend the budget.
                assert_ne!(outcome.stopped, Some(egisz_schematron::Stopped::Exhausted), "kind {kind}");
            }
            Err(e) => failed.push(format!("{kind}: {e}")),
        }
    }
    assert!(failed.is_empty(), "{} of 95 do not compile:\n{}", failed.len(), failed.join("\n"));
    // Every rule and check of the files is compiled (counted independently with Python's
    // ElementTree over the same files).
    assert_eq!((rules, asserts, reports), (28_940, 62_491, 11_548));
}
