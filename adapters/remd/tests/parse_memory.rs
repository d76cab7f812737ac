//! The peak heap of reading hostile messages, measured: whatever the shape of the input,
//! a parse takes at most a small multiple of the input's size.
//!
//! One test in this binary: the heap profiler is process-wide.

use egisz_remd::{MAX_CALL_BYTES, MAX_NAMESPACE_URI_BYTES, MEMORY_BASE, MEMORY_PER_INPUT_BYTE, parse_incoming};

#[global_allocator]
static ALLOC: dhat::Alloc = dhat::Alloc;

const SOAP12: &str = "http://www.w3.org/2003/05/soap-envelope";
const CB: &str = "http://egisz.rosminzdrav.ru/iehr/emdr/callback/";

fn envelope(body: &str) -> Vec<u8> {
    format!(r#"<s:Envelope xmlns:s="{SOAP12}"><s:Body>{body}</s:Body></s:Envelope>"#).into_bytes()
}

/// Fills `body` with `unit` until the message is about `size` bytes.
fn filled(open: &str, unit: &str, close: &str, size: usize) -> Vec<u8> {
    let n = size.saturating_sub(open.len() + close.len() + 120) / unit.len();
    envelope(&format!("{open}{}{close}", unit.repeat(n)))
}

#[test]
fn peak_heap_of_a_parse_is_a_small_multiple_of_the_input() {
    let size = MAX_CALL_BYTES;
    let long_uri = format!("urn:{}", "n".repeat(MAX_NAMESPACE_URI_BYTES - 4));
    let cases: Vec<(&str, Vec<u8>)> = vec![
        // The report's bomb: a 200 KB default namespace over 4,000 empty children.
        (
            "namespace bomb (200 KB URI)",
            envelope(&format!(r#"<r xmlns="urn:{}">{}</r>"#, "n".repeat(200_000), "<c/>".repeat(4000))),
        ),
        ("namespace bomb (longest URI allowed)", filled(&format!(r#"<r xmlns="{long_uri}">"#), "<c/>", "</r>", size)),
        ("empty elements", filled("<r>", "<c/>", "</r>", size)),
        ("elements with text", filled("<r>", "<c>0123456789</c>", "</r>", size)),
        ("attributes", filled("<r>", r#"<c a="1" b="2" c="3" d="4" e="5" f="6" g="7" h="8"/>"#, "</r>", size)),
        ("one long text", filled("<r>", "t", "</r>", size)),
        ("entities", filled("<r>", "&amp;", "</r>", size)),
        ("nesting", filled("", "<a><b><c><d></d></c></b></a>", "", size)),
        (
            "a result with many errors",
            filled(
                &format!(
                    r#"<cb:registerDocumentResult xmlns:cb="{CB}"><cb:relatesToMessage>m</cb:relatesToMessage><cb:status>error</cb:status><cb:errors>"#
                ),
                "<cb:item><cb:code>PERSON_NOT_FOUND</cb:code><cb:message>x</cb:message></cb:item>",
                "</cb:errors></cb:registerDocumentResult>",
                size,
            ),
        ),
        (
            "billion laughs",
            br#"<!DOCTYPE l [<!ENTITY a "aaaaaaaaaa"><!ENTITY b "&a;&a;&a;&a;&a;&a;&a;&a;&a;&a;">]><r>&b;</r>"#
                .to_vec(),
        ),
    ];
    let mut report = Vec::new();
    for (name, input) in &cases {
        let profiler = dhat::Profiler::builder().testing().build();
        let outcome = parse_incoming(input).map(|_| ()).map_err(|e| e.to_string());
        let peak = dhat::HeapStats::get().max_bytes;
        drop(profiler);
        // The tree's own budget, plus what the typed result and the reader's stack take.
        let bound = (MEMORY_PER_INPUT_BYTE + 4) * input.len() + 2 * MEMORY_BASE;
        report.push(format!(
            "{name}: input {} B, peak {} B ({:.1}×), {outcome:?}",
            input.len(),
            peak,
            peak as f64 / input.len() as f64
        ));
        assert!(peak <= bound, "{name}: peak {peak} B over {bound} B for {} B of input", input.len());
    }
    println!("{}", report.join("\n"));
}
