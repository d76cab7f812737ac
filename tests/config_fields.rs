//! Every setting is documented where it is declared. Starting from `config::Config`, every
//! struct and enum of the workspace that a section is made of (wherever it is declared: each
//! section lives with the component that uses it; a type named in several crates is checked
//! in each) must document each of its fields and variants with a `///` comment; `config/default.toml` documents the same keys for
//! operators (a key it lacks is refused when a file or the environment sets it, and
//! `config::tests::readme_documents_every_key` holds the README's table to its keys). Run:
//! `cargo test --test config_fields`.

use std::collections::{BTreeMap, BTreeSet};
use std::path::Path;

mod source;
use source::{CRATES, rust_files};

/// A declared type's body: its members, each with whether a `///` comment precedes it (over
/// attributes), and the type names its members mention.
#[derive(Debug)]
struct Declared {
    file: String,
    members: Vec<(String, bool)>,
    mentions: BTreeSet<String>,
}

/// `pub struct Name {` and `pub enum Name {` bodies with one member per line (rustfmt's
/// layout); tuple structs and unit structs have no named members and are skipped.
fn declarations(file: &Path, text: &str, out: &mut BTreeMap<String, Vec<Declared>>) {
    let lines: Vec<&str> = text.lines().collect();
    let mut i = 0;
    while i < lines.len() {
        let line = lines[i];
        let head = line.strip_prefix("pub struct ").or_else(|| line.strip_prefix("pub enum "));
        let Some(name) = head.and_then(|h| h.strip_suffix(" {")) else {
            i += 1;
            continue;
        };
        let name = name.split('<').next().unwrap().trim().to_owned();
        let mut members = Vec::new();
        let mut mentions = BTreeSet::new();
        let mut documented = false;
        i += 1;
        while i < lines.len() && lines[i] != "}" {
            let member = lines[i].trim();
            let depth_one = lines[i].starts_with("    ") && !lines[i].starts_with("     ");
            if member.starts_with("///") {
                documented = true;
            } else if member.starts_with("#[") {
            } else if depth_one && !member.is_empty() && !member.starts_with("//") {
                let named = member.trim_start_matches("pub ");
                let ident: String = named.chars().take_while(|c| c.is_alphanumeric() || *c == '_').collect();
                // What follows the member's own name (a field's type, a variant's fields).
                mention(&named[ident.len()..], &mut mentions);
                members.push((ident, documented));
                documented = false;
            } else {
                // A line of a member written over several lines.
                mention(member, &mut mentions);
            }
            i += 1;
        }
        out.entry(name).or_default().push(Declared { file: file.display().to_string(), members, mentions });
    }
}

/// The type names (capitalised words) of `text`.
fn mention(text: &str, mentions: &mut BTreeSet<String>) {
    for word in text.split(|c: char| !(c.is_alphanumeric() || c == '_')) {
        if word.starts_with(|c: char| c.is_ascii_uppercase()) {
            mentions.insert(word.to_owned());
        }
    }
}

#[test]
fn every_setting_is_documented_where_it_is_declared() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut files = Vec::new();
    for dir in CRATES {
        rust_files(&root.join(dir), &mut files);
    }
    let mut declared = BTreeMap::new();
    for file in &files {
        declarations(file.strip_prefix(root).unwrap(), &std::fs::read_to_string(file).unwrap(), &mut declared);
    }
    let mut seen = BTreeSet::new();
    let mut todo = vec!["Config".to_owned()];
    let mut undocumented = Vec::new();
    while let Some(name) = todo.pop() {
        if !seen.insert(name.clone()) {
            continue;
        }
        for d in declared.get(&name).into_iter().flatten() {
            for (member, documented) in &d.members {
                if !documented {
                    undocumented.push(format!("{}: {name}::{member}", d.file));
                }
            }
            todo.extend(d.mentions.iter().cloned());
        }
    }
    for section in [
        "RelayConfig",
        "ValidationConfig",
        "ApiConfig",
        "DatabaseConfig",
        "Timing",
        "RetryPolicy",
        "ServiceMode",
        "Faults",
    ] {
        assert!(
            seen.contains(section) && declared.contains_key(section),
            "{section} is not reached from Config, or not found: the check reads the wrong files"
        );
    }
    assert!(undocumented.is_empty(), "settings without a doc comment:\n{}", undocumented.join("\n"));
}
