//! Rule H13: every coded element of the document (any element with `@codeSystem`, header
//! and body) cites a dictionary version the kind allows, a code the dictionary has, and the
//! dictionary's name for it as `@displayName`.
//!
//! The dictionaries themselves are data the caller holds (the gateway: `mappings/` and what
//! its NSI adapter refreshed); this module sees them through [`Dictionaries`] and decides.
//! What the caller does not know is not judged: a dictionary the kind's profile does not
//! list is not version-checked, and a code missing from a *subset* of a dictionary is not
//! an error — only a missing code in a complete copy is.

use crate::header::{CdaHeader, CodedElement};
use crate::violation::{Violation, rules};

/// What a dictionary copy says about one code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Entry<'a> {
    /// The code is in the dictionary, with this name.
    Name(&'a str),
    /// A complete copy of this dictionary version has no such code.
    Missing,
    /// Nothing is known: no copy of this version, or a subset without the code.
    Unknown,
}

/// The dictionaries of one kind, as the caller holds them.
pub trait Dictionaries {
    /// The versions of dictionary `oid` the kind allows; `None` when the kind's profile does
    /// not name the dictionary (its version is not checked then).
    fn allowed_versions(&self, oid: &str) -> Option<&[String]>;
    /// What the copy of `(oid, version)` says about `code`.
    fn entry(&self, oid: &str, version: &str, code: &str) -> Entry<'_>;
}

fn trimmed(v: &Option<String>) -> Option<&str> {
    v.as_deref().map(str::trim).filter(|s| !s.is_empty())
}

/// Names compare as written, but for outer and repeated inner whitespace.
fn same_name(a: &str, b: &str) -> bool {
    a.split_whitespace().eq(b.split_whitespace())
}

/// Every H13 violation of the document, in document order.
pub fn check_dictionaries(header: &CdaHeader, dictionaries: &dyn Dictionaries) -> Vec<Violation> {
    header.coded.iter().filter_map(|c| check_element(c, dictionaries)).collect()
}

/// A value from the document as a message quotes it: at most 64 characters.
fn quoted(s: &str) -> String {
    match s.char_indices().nth(64) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.to_owned(),
    }
}

fn check_element(element: &CodedElement, dictionaries: &dyn Dictionaries) -> Option<Violation> {
    let v = &element.value;
    let oid_raw = trimmed(&v.code_system)?;
    let code_raw = trimmed(&v.code)?; // a nullFlavor without a code cites no dictionary entry
    let path = &element.path;
    let version_raw = trimmed(&v.code_system_version);
    let (oid, code) = (quoted(oid_raw), quoted(code_raw));
    let version = version_raw.map(quoted);
    if let Some(allowed) = dictionaries.allowed_versions(oid_raw) {
        match version_raw {
            None => {
                return Some(Violation::new(
                    rules::H13,
                    format!("{path}/@codeSystemVersion"),
                    format!("не указана версия справочника {oid}; допустимы: {}", allowed.join(", ")),
                ));
            }
            Some(raw) if !allowed.iter().any(|a| a == raw) => {
                let version = quoted(raw);
                return Some(Violation::new(
                    rules::H13,
                    format!("{path}/@codeSystemVersion"),
                    format!(
                        "версия {version} справочника {oid} недопустима для этого вида документа; допустимы: {}",
                        allowed.join(", ")
                    ),
                ));
            }
            Some(_) => {}
        }
    }
    let (version_raw, version) = (version_raw?, version?);
    match dictionaries.entry(oid_raw, version_raw, code_raw) {
        Entry::Unknown => None,
        Entry::Missing => Some(
            Violation::new(
                rules::H13,
                format!("{path}/@code"),
                format!("в справочнике {oid} версии {version} нет значения с кодом {code}"),
            )
            .prevents("INVALID_ELEMENT_VALUE_CODE"),
        ),
        Entry::Name(name) => match trimmed(&v.display_name) {
            Some(shown) if same_name(shown, name) => None,
            shown => Some(
                Violation::new(
                    rules::H13,
                    format!("{path}/@displayName"),
                    match shown {
                        Some(_) => format!(
                            "наименование не совпадает с наименованием кода {code} в справочнике {oid} версии {version}: «{name}»"
                        ),
                        None => format!("нет наименования; в справочнике {oid} версии {version} код {code} — «{name}»"),
                    },
                )
                .prevents("INVALID_ELEMENT_VALUE_NAME"),
            ),
        },
    }
}
