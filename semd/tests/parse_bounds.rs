//! Every bound of the CDA parser: the sample with a dimension grown to its limit parses; one
//! past it is refused with one `XML` violation that names the bound.

#[expect(dead_code, reason = "this binary uses only part of the fixtures")]
mod common;

use common::*;
use egisz_semd::header::{
    MAX_ATTRIBUTE_BYTES, MAX_ATTRIBUTES, MAX_AUTHENTICATORS, MAX_AUTHORS, MAX_DEPTH, MAX_DOCUMENT_BYTES, MAX_ELEMENTS,
    MAX_NAME_BYTES, MAX_NAMESPACE_URI_BYTES, MAX_NAMESPACES_IN_SCOPE, MAX_PARTICIPANTS, MAX_REPEATS, MAX_SECTIONS,
    MAX_TEXT_BYTES,
};
use egisz_semd::{CdaHeader, Violation, rules};

fn refused(xml: &str) -> Violation {
    match CdaHeader::parse(xml.as_bytes()) {
        Ok(_) => panic!("parsed, but should have been refused"),
        Err(mut v) => {
            assert_eq!(v.len(), 1, "{v:#?}");
            v.remove(0)
        }
    }
}

fn parses(xml: &str) {
    if let Err(v) = CdaHeader::parse(xml.as_bytes()) {
        panic!("refused: {v:#?}");
    }
}

/// `count` copies of `element` right after the `anchor` of the sample.
fn repeated(anchor: &str, element: &str, count: usize) -> String {
    replace_one(SAMPLE, anchor, &format!("{anchor}{}", element.repeat(count)))
}

fn assert_bound(v: &Violation, mentions: &str) {
    assert_eq!(v.rule, rules::XML, "{v:?}");
    assert!(v.message.contains(mentions), "{v:?} should mention {mentions}");
}

const AFTER_TEMPLATE: &str = r#"<templateId root="1.2.643.5.1.13.13.14.36.9.1"/>"#;

#[test]
fn repeated_header_elements() {
    let author = block(SAMPLE, "<author>", "</author>").to_owned();
    // The sample has one author: MAX_AUTHORS in all parse, one more is refused.
    parses(&repeated("</author>", &author, MAX_AUTHORS - 1));
    assert_bound(&refused(&repeated("</author>", &author, MAX_AUTHORS)), &format!("{MAX_AUTHORS} элементов author"));

    let legal = block(SAMPLE, "<legalAuthenticator>", "</legalAuthenticator>").to_owned();
    parses(&repeated("</legalAuthenticator>", &legal, MAX_AUTHENTICATORS - 1));
    assert_bound(&refused(&repeated("</legalAuthenticator>", &legal, MAX_AUTHENTICATORS)), "legalAuthenticator");

    let authenticator = "<authenticator><time value=\"20230818\"/></authenticator>";
    parses(&repeated("</legalAuthenticator>", authenticator, MAX_AUTHENTICATORS));
    assert_bound(&refused(&repeated("</legalAuthenticator>", authenticator, MAX_AUTHENTICATORS + 1)), "authenticator");

    let participant = "<participant typeCode=\"IND\"><associatedEntity classCode=\"PROV\"/></participant>";
    parses(&repeated("</legalAuthenticator>", participant, MAX_PARTICIPANTS));
    assert_bound(&refused(&repeated("</legalAuthenticator>", participant, MAX_PARTICIPANTS + 1)), "participant");

    parses(&repeated(AFTER_TEMPLATE, AFTER_TEMPLATE, MAX_REPEATS - 1));
    assert_bound(&refused(&repeated(AFTER_TEMPLATE, AFTER_TEMPLATE, MAX_REPEATS)), "templateId");

    let id = "<id root=\"1.2.643.5.1.13.13.12.2.42.2917.100.1.1.70\" extension=\"x\"/>";
    let anchor = "<assignedAuthor>";
    parses(&repeated(anchor, id, MAX_REPEATS - 2));
    assert_bound(&refused(&repeated(anchor, id, MAX_REPEATS - 1)), "id в одном элементе");

    let given = "<given>И</given>";
    let anchor = block(SAMPLE, "<assignedPerson>", "</family>").to_owned();
    let givens = |n: usize| replace_nth(SAMPLE, &anchor, &format!("{anchor}{}", given.repeat(n)), 1);
    // The author's name has two `given` already.
    parses(&givens(MAX_REPEATS - 2));
    assert_bound(&refused(&givens(MAX_REPEATS - 1)), "given");
}

#[test]
fn sections() {
    let section =
        "<component><section><code code=\"X\" codeSystem=\"1.2.643.5.1.13.13.99.2.197\"/></section></component>";
    let anchor = "<structuredBody>";
    let have = SAMPLE.matches("<section>").count();
    parses(&repeated(anchor, section, MAX_SECTIONS - have));
    assert_bound(&refused(&repeated(anchor, section, MAX_SECTIONS - have + 1)), "section");
}

#[test]
fn element_count_depth_and_size() {
    // Elements outside the header are only counted: a body of empty entries.
    let have = SAMPLE.matches('<').count() - SAMPLE.matches("</").count() - SAMPLE.matches("<?").count();
    let entries = |n: usize| repeated("<structuredBody>", "<x/>", n);
    parses(&entries(MAX_ELEMENTS - have));
    assert_bound(&refused(&entries(MAX_ELEMENTS - have + 1)), &format!("{MAX_ELEMENTS} элементов"));

    let nest = |n: usize| repeated("<structuredBody>", &format!("{}{}", "<x>".repeat(n), "</x>".repeat(n)), 1);
    // ClinicalDocument/component/structuredBody: three levels already open.
    parses(&nest(MAX_DEPTH - 3));
    let v = refused(&nest(MAX_DEPTH - 2));
    assert!(v.message.contains(&format!("вложенность элементов больше {MAX_DEPTH}")), "{v:?}");

    let big = format!("{SAMPLE}{}", " ".repeat(MAX_DOCUMENT_BYTES));
    assert_eq!(refused(&big).rule, rules::XML);
}

#[test]
fn attributes_names_and_namespaces() {
    let attrs = |n: usize| {
        let list: String = (0..n).map(|i| format!(" a{i}=\"v\"")).collect();
        repeated("<structuredBody>", &format!("<x{list}/>"), 1)
    };
    parses(&attrs(MAX_ATTRIBUTES));
    assert_bound(&refused(&attrs(MAX_ATTRIBUTES + 1)), "атрибутов");

    let value = |n: usize| repeated("<structuredBody>", &format!("<x a=\"{}\"/>", "v".repeat(n)), 1);
    parses(&value(MAX_ATTRIBUTE_BYTES));
    assert_bound(&refused(&value(MAX_ATTRIBUTE_BYTES + 1)), "значение атрибута");

    let name = |n: usize| repeated("<structuredBody>", &format!("<{}/>", "n".repeat(n)), 1);
    parses(&name(MAX_NAME_BYTES));
    assert_bound(&refused(&name(MAX_NAME_BYTES + 1)), "имя элемента");

    let uri = |n: usize| repeated("<structuredBody>", &format!("<x xmlns=\"urn:{}\"/>", "u".repeat(n - 4)), 1);
    parses(&uri(MAX_NAMESPACE_URI_BYTES));
    assert_bound(&refused(&uri(MAX_NAMESPACE_URI_BYTES + 1)), "URI пространства имён");

    // The sample's root declares five bindings; 16 more per nested element.
    let scope = |depth: usize| {
        let decls = |d: usize| (0..16).map(|i| format!(" xmlns:p{d}x{i}=\"urn:s\"")).collect::<String>();
        let open: String = (0..depth).map(|d| format!("<x{}>", decls(d))).collect();
        repeated("<structuredBody>", &format!("{open}{}", "</x>".repeat(depth)), 1)
    };
    parses(&scope(1));
    assert_bound(&refused(&scope(2)), &format!("{MAX_NAMESPACES_IN_SCOPE} объявлений"));
}

#[test]
fn kept_text() {
    let family = block(SAMPLE, "<family>", "</family>").to_owned();
    let with = |n: usize| replace_nth(SAMPLE, &family, &format!("<family>{}</family>", "Ф".repeat(n / 2)), 1);
    parses(&with(MAX_TEXT_BYTES));
    assert_bound(&refused(&with(MAX_TEXT_BYTES + 2)), "текст элемента");
    // A long name in the body is not kept, so not bounded by it.
    let body_name = format!("<component><section><name>{}</name></section></component>", "Ф".repeat(MAX_TEXT_BYTES));
    parses(&repeated("<structuredBody>", &body_name, 1));
}
