//! Hostile documents: what a document can make the engine do is bounded — a regular
//! expression taken from the document's own values runs in linear time (or is refused as
//! a dynamic error when it is not a valid pattern), a document of many nodes spends its
//! budget and stops rather than running on, and a deep or wide one is refused by the tree's
//! limits.

use std::time::{Duration, Instant};

use egisz_schematron::{Budget, CompileLimits, Document, Schema, Stopped, TreeError, TreeLimits};

fn schema(rules: &str) -> Schema {
    let sch = format!(r#"<schema xmlns="http://purl.oclc.org/dsdl/schematron" queryBinding="xslt2">{rules}</schema>"#);
    Schema::compile(sch.as_bytes(), "urn:x", &CompileLimits::default()).unwrap()
}

#[test]
fn a_pattern_from_the_document_runs_in_linear_time() {
    let s = schema(
        r#"<pattern><rule context="//v"><assert test="matches(@value, @pattern)">M1. no match</assert></rule></pattern>"#,
    );
    let value = "a".repeat(50_000) + "!";
    let doc = format!(
        r#"<r xmlns="urn:x"><v value="{value}" pattern="^(a+)+$"/><v value="{value}" pattern="^(a|a)*$"/></r>"#
    );
    let doc = Document::parse(doc.as_bytes(), &TreeLimits::default()).unwrap();
    let started = Instant::now();
    let out = s.validate(&doc, &Budget::default());
    assert!(started.elapsed() < Duration::from_secs(2), "{:?}", started.elapsed());
    assert_eq!((out.findings.len(), out.stopped), (2, None));
    // A value that is no pattern at all stops the run, as Saxon's FORX0002.
    let bad = Document::parse(br#"<r xmlns="urn:x"><v value="x" pattern="(a"/></r>"#, &TreeLimits::default()).unwrap();
    assert!(
        matches!(s.validate(&bad, &Budget::default()).stopped, Some(Stopped::Error { code, .. }) if code == "FORX0002")
    );
    // Back-references have no linear-time implementation: refused the same way.
    let backref =
        Document::parse(br#"<r xmlns="urn:x"><v value="aa" pattern="(a)\1"/></r>"#, &TreeLimits::default()).unwrap();
    assert!(matches!(s.validate(&backref, &Budget::default()).stopped, Some(Stopped::Error { .. })));
}

#[test]
fn a_document_of_many_nodes_stops_at_the_budget() {
    // Every node compared with every node: quadratic in the document.
    let s = schema(
        r#"<pattern><rule context="//e"><assert test="count(//e[@k = current()/@k]) = 1">M2. duplicate</assert></rule></pattern>"#,
    );
    let body: String = (0..20_000).map(|i| format!(r#"<e k="{i}"/>"#)).collect();
    let doc = Document::parse(format!(r#"<r xmlns="urn:x">{body}</r>"#).as_bytes(), &TreeLimits::default()).unwrap();
    let started = Instant::now();
    let out =
        s.validate(&doc, &Budget { units: 10_000_000, deadline: Some(Instant::now() + Duration::from_millis(500)) });
    assert_eq!(out.stopped, Some(Stopped::Exhausted));
    assert!(started.elapsed() < Duration::from_secs(3), "{:?}", started.elapsed());
}

#[test]
fn deep_or_wide_documents_are_refused_by_the_tree() {
    let deep = "<a xmlns=\"urn:x\">".to_owned() + &"<a>".repeat(300) + &"</a>".repeat(301);
    assert!(matches!(Document::parse(deep.as_bytes(), &TreeLimits::default()), Err(TreeError::OverLimit(_))));
    let wide = "<a xmlns=\"urn:x\">".to_owned() + &"<b/>".repeat(2_000) + "</a>";
    let limits = TreeLimits { max_nodes: 1_000, ..TreeLimits::default() };
    assert!(matches!(Document::parse(wide.as_bytes(), &limits), Err(TreeError::OverLimit(_))));
}

#[test]
fn a_long_operator_chain_is_refused_not_a_stack_overflow() {
    let chain = vec!["1"; 20_000].join("+");
    let sch = format!(
        r#"<schema xmlns="http://purl.oclc.org/dsdl/schematron"><pattern><rule context="r"><assert test="{chain} = 0">x</assert></rule></pattern></schema>"#
    );
    let err = Schema::compile(sch.as_bytes(), "urn:x", &CompileLimits::default()).unwrap_err();
    assert!(err.to_string().contains("вложенность"), "{err}");
    let or_chain = vec!["@a"; 5_000].join(" or ");
    let sch = format!(
        r#"<schema xmlns="http://purl.oclc.org/dsdl/schematron"><pattern><rule context="r"><assert test="{or_chain}">x</assert></rule></pattern></schema>"#
    );
    assert!(Schema::compile(sch.as_bytes(), "urn:x", &CompileLimits::default()).is_err());
}

#[test]
fn an_error_in_a_rule_context_is_no_match_as_in_xslt() {
    // XSLT 3.0 (5.5.4): a dynamic error while matching a pattern means the pattern does not
    // match; the next rule of the pattern may fire instead, and the run goes on.
    let s = schema(
        r#"<pattern><rule context="x[@v &gt; 0]"><assert test="false()">A1. numeric</assert></rule><rule context="x"><assert test="false()">A2. any</assert></rule></pattern>"#,
    );
    let doc = Document::parse(br#"<r xmlns="urn:x"><x v="abc"/><x v="5"/></r>"#, &TreeLimits::default()).unwrap();
    let out = s.validate(&doc, &Budget::default());
    assert_eq!(out.stopped, None);
    let messages: Vec<&str> = out.findings.iter().map(|f| f.message.as_str()).collect();
    assert_eq!(messages, ["A2. any", "A1. numeric"]);
}

#[test]
fn findings_are_capped() {
    let s = schema(r#"<pattern><rule context="//e"><assert test="false()">E1. every e</assert></rule></pattern>"#);
    let body = "<e/>".repeat(egisz_schematron::MAX_FINDINGS + 500);
    let doc = Document::parse(format!(r#"<r xmlns="urn:x">{body}</r>"#).as_bytes(), &TreeLimits::default()).unwrap();
    let out = s.validate(&doc, &Budget::default());
    assert_eq!((out.findings.len(), out.omitted), (egisz_schematron::MAX_FINDINGS, 500));
}
