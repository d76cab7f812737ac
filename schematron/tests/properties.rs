//! Over random mutations of the valid samples (the generator of the reference corpus, with
//! seeds beyond it, and several mutations stacked), the engine never panics and never runs
//! away: every run ends within its budget, with findings or with an XPath error as Saxon's
//! would. Equality with Saxon is `reference.rs`'s, on the committed corpus.

mod support;

use egisz_schematron::{Budget, CompileLimits, Document, HL7_NS, Schema, Stopped, TreeLimits};
use proptest::prelude::*;
use support::mutate;

fn shared(path: &str) -> String {
    std::fs::read_to_string(std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared").join(path)).unwrap()
}

fn schema(kind: &str) -> Schema {
    Schema::compile(
        shared(&format!("federal/semd-rules/{kind}/{kind}.sch")).as_bytes(),
        HL7_NS,
        &CompileLimits::default(),
    )
    .unwrap()
}

/// What one run may spend: well above what a mutant of a 20 KB sample needs (about 70,000).
const UNITS: u64 = 5_000_000;

fn run(schema: &Schema, sample: &str, seed: u64, rounds: u32) {
    let mut root = mutate::read(sample);
    let mut rng = mutate::Rng::new(seed);
    for _ in 0..rounds {
        mutate::mutate_once(&mut root, &mut rng);
    }
    let doc = Document::parse(mutate::write(&root).as_bytes(), &TreeLimits::default()).unwrap();
    let outcome = schema.validate(&doc, &Budget { units: UNITS, deadline: None });
    assert_ne!(outcome.stopped, Some(Stopped::Exhausted), "seed {seed}, {rounds} rounds: a run away");
    assert!(outcome.spent < UNITS);
    for f in &outcome.findings {
        assert!(f.location.starts_with('/'), "{f:?}");
    }
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 64, ..ProptestConfig::default() })]

    #[test]
    fn kind_119_mutants_never_panic_or_run_away(seed in 10_000u64.., rounds in 1u32..12) {
        thread_local!(static SCHEMA: Schema = schema("119"));
        let sample = shared("samples/consultation-protocol-119.xml");
        SCHEMA.with(|s| run(s, &sample, seed, rounds));
    }

    #[test]
    fn kind_160_mutants_never_panic_or_run_away(seed in 10_000u64.., rounds in 1u32..12) {
        thread_local!(static SCHEMA: Schema = schema("160"));
        let sample = shared("samples/tmk-cross-border-160.xml");
        SCHEMA.with(|s| run(s, &sample, seed, rounds));
    }

    /// Arbitrary bytes never panic the tree builder or the engine.
    #[test]
    fn arbitrary_documents_never_panic(body in "[<>/a-z\"'= &;#x0-9:]{0,400}") {
        thread_local!(static SCHEMA: Schema = schema("119"));
        let text = format!("<ClinicalDocument xmlns=\"urn:hl7-org:v3\">{body}</ClinicalDocument>");
        if let Ok(doc) = Document::parse(text.as_bytes(), &TreeLimits::default()) {
            SCHEMA.with(|s| {
                let outcome = s.validate(&doc, &Budget { units: UNITS, deadline: None });
                assert_ne!(outcome.stopped, Some(Stopped::Exhausted));
            });
        }
    }
}
