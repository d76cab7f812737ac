//! The peak heap of parsing hostile documents, measured: the header parser streams, so
//! whatever the shape of a document it takes a fraction of the document's size.
//!
//! One test in this binary: the heap profiler is process-wide.

#[expect(dead_code, reason = "this binary uses only part of the fixtures")]
mod common;

use common::*;
use egisz_semd::CdaHeader;

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const TEN_MIB: usize = 10 * 1024 * 1024;
const FOUR_MIB: usize = 4 * 1024 * 1024;

/// The sample with `unit` repeated inside the structured body up to about `size` bytes.
fn in_body(unit: &str, size: usize) -> String {
    let n = (size.saturating_sub(SAMPLE.len()) / unit.len()).max(1);
    replace_one(SAMPLE, "<structuredBody>", &format!("<structuredBody>{}", unit.repeat(n)))
}

#[test]
fn peak_heap_of_a_parse_is_a_fraction_of_the_document() {
    let author = block(SAMPLE, "<author>", "</author>").to_owned();
    let n = (TEN_MIB - SAMPLE.len()) / author.len();
    let cases: Vec<(&str, String)> = vec![
        ("10 MiB of repeated authors", replace_one(SAMPLE, "</author>", &format!("</author>{}", author.repeat(n)))),
        (
            "namespace bomb (200 KB URI)",
            in_body(&format!(r#"<x xmlns="urn:{}">{}</x>"#, "n".repeat(200_000), "<c/>".repeat(4000)), 0),
        ),
        ("namespace declared on every element", in_body(r#"<x xmlns="urn:hl7-org:v3"/>"#, FOUR_MIB)),
        ("empty elements", in_body("<c/>", FOUR_MIB)),
        ("attributes", in_body(r#"<c a="1" b="2" c="3" d="4" e="5" f="6" g="7" h="8"/>"#, FOUR_MIB)),
        ("nesting", in_body(&format!("{}{}", "<a>".repeat(100), "</a>".repeat(100)), FOUR_MIB)),
        ("one long text", in_body("t", FOUR_MIB)),
        ("entities", in_body("&amp;", FOUR_MIB)),
    ];
    let mut report = Vec::new();
    for (name, input) in &cases {
        let profiler = dhat::Profiler::builder().testing().build();
        let outcome = CdaHeader::parse(input.as_bytes()).map(|_| ()).map_err(|v| v[0].message.clone());
        let peak = dhat::HeapStats::get().max_bytes;
        drop(profiler);
        report.push(format!("{name}: input {} B, peak {peak} B, {outcome:?}", input.len()));
        let bound = input.len() / 4 + 256 * 1024;
        assert!(peak <= bound, "{name}: peak {peak} B over {bound} B for {} B of input", input.len());
    }
    println!("{}", report.join("\n"));
}
