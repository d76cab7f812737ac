//! The engine against Saxon-HE + SchXslt: for each mutant of the kind-119 and kind-160
//! samples, the failed asserts and successful reports (kind, location, message, in order)
//! and whether the run stopped on an XPath error (with its code) equal the committed
//! reference, produced offline by `tests/reference/make.sh` (see its header).

mod support;

use egisz_schematron::{Budget, CompileLimits, Document, FindingKind, HL7_NS, Schema, Stopped, TreeLimits};
use serde::Deserialize;
use support::mutate;

#[derive(Deserialize)]
struct Line {
    seed: u64,
    findings: Vec<(String, String, String)>,
    error: Option<String>,
}

fn shared(path: &str) -> Vec<u8> {
    let p = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../shared").join(path);
    std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()))
}

fn check_kind(kind: &str, sample: &str) {
    let schema =
        Schema::compile(&shared(&format!("federal/semd-rules/{kind}/{kind}.sch")), HL7_NS, &CompileLimits::default())
            .unwrap();
    let sample = String::from_utf8(shared(&format!("samples/{sample}"))).unwrap();
    let reference =
        std::fs::read_to_string(format!("{}/tests/reference/{kind}.jsonl", env!("CARGO_MANIFEST_DIR"))).unwrap();
    let mut differ = Vec::new();
    let mut compared = 0;
    let mut with_findings = 0;
    for line in reference.lines() {
        let want: Line = serde_json::from_str(line).unwrap();
        let doc = Document::parse(mutate::mutant(&sample, want.seed).as_bytes(), &TreeLimits::default()).unwrap();
        let got = schema.validate(&doc, &Budget::default());
        let got_findings: Vec<(String, String, String)> = got
            .findings
            .iter()
            .map(|f| {
                let kind = match f.kind {
                    FindingKind::FailedAssert => "assert",
                    FindingKind::SuccessfulReport => "report",
                };
                (kind.to_owned(), f.location.clone(), f.message.clone())
            })
            .collect();
        let got_error = match &got.stopped {
            None => None,
            Some(Stopped::Error { code, .. }) => Some(code.clone()),
            Some(Stopped::Exhausted) => Some("exhausted".to_owned()),
        };
        compared += 1;
        if !want.findings.is_empty() {
            with_findings += 1;
        }
        // Saxon gives no findings when it stops; compare those only when it did not.
        let same = got_error == want.error && (want.error.is_some() || got_findings == want.findings);
        if !same {
            differ.push(format!(
                "seed {}:\n  saxon: {:?} {:#?}\n  ours:  {:?} {:#?}",
                want.seed, want.error, want.findings, got_error, got_findings
            ));
        }
    }
    assert!(compared >= 400 && with_findings >= 250, "the reference covers too little: {compared}, {with_findings}");
    assert!(differ.is_empty(), "{} of {compared} mutants differ from Saxon:\n{}", differ.len(), differ.join("\n"));
}

#[test]
fn kind_119_equals_saxon_on_every_mutant() {
    check_kind("119", "consultation-protocol-119.xml");
}

#[test]
fn kind_160_equals_saxon_on_every_mutant() {
    check_kind("160", "tmk-cross-border-160.xml");
}
