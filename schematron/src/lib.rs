//! # egisz-schematron
//!
//! The Ministry of Health's ISO Schematron files for SEMD kinds, run in the process: compiled
//! once per rule package, evaluated in one pass per document, with the results Saxon-HE and
//! SchXslt give on the same files (the reference the tests compare against is in
//! `tests/reference/`, with how it was made).
//!
//! Why not an XSLT engine: there is none in Rust, and the JVM is not an option at run time.
//! Why not a general XPath 3.1 engine (`xee-xpath`): it runs a 55 KB document in 88–120 ms
//! against a budget of 10, its compiled programs are not `Send`, and it lacks `current()`.
//! The ministry's 95 files use a small subset of XPath 3.1 (paths, predicates, general
//! comparisons, square-bracket arrays, eleven functions); this crate implements that subset
//! over an arena tree with a name index, so that `//code[…]` is a slice, not a walk.
//!
//! ## Layout
//!
//! - `tree`: the document as an arena in document order ([`Document`]), bounded;
//! - `xpath`: the expression tree and its evaluation; `xpath::parse`: the subset's grammar;
//!   `xpath::regex`: XPath regular expressions on the linear-time `regex` crate;
//! - `schema`: reading a schematron file, compiling its rules ([`Schema::compile`]) and
//!   running them with ISO semantics ([`Schema::validate`]).
//!
//! ## What it must not do
//!
//! - I/O: bytes come in, findings come out;
//! - run without bounds: documents ([`TreeLimits`]), files ([`CompileLimits`]), expressions
//!   (length and nesting), regular expressions (compiled size) and runs ([`Budget`]) are
//!   all bounded;
//! - quote the document in what it returns beyond the ministry's own messages and the
//!   locations (an XPath error names the rule and the test, never a whole value).
#![forbid(unsafe_code)]

mod schema;
pub mod tree;
pub mod xpath;

pub use schema::{
    Budget, CompileError, CompileLimits, Finding, FindingKind, MAX_FINDINGS, Outcome, Schema, Stats, Stopped,
    message_code,
};
pub use tree::{Document, TreeError, TreeLimits};

/// The namespace every SEMD element is in, which the ministry's rules leave unprefixed.
pub const HL7_NS: &str = "urn:hl7-org:v3";
