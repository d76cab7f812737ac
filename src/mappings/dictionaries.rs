//! Copies of NSI dictionaries by `(oid, version)`: the shipped `dictionaries.tsv` (the code
//! subsets validation needs) and whatever the NSI adapter has refreshed since. A copy is
//! `complete` (every code of that version: a code it lacks is an error, H13) or a `subset`
//! (only the codes it has are judged).

use std::collections::HashMap;

use egisz_semd::Entry;

use super::{DICTIONARIES_FILE, KindRule, MappingProblem, rows};

/// How much of a dictionary version a copy holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Coverage {
    Complete,
    Subset,
}

/// One dictionary version: code → name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DictionaryCopy {
    pub coverage: Coverage,
    pub names: HashMap<String, String>,
}

/// Every copy held, by `(oid, version)`.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct DictionarySet {
    copies: HashMap<(String, String), DictionaryCopy>,
}

impl DictionarySet {
    pub fn get(&self, oid: &str, version: &str) -> Option<&DictionaryCopy> {
        self.copies.get(&(oid.to_owned(), version.to_owned()))
    }

    /// Adds or replaces the copy of `(oid, version)`.
    pub fn insert(&mut self, oid: &str, version: &str, copy: DictionaryCopy) {
        self.copies.insert((oid.to_owned(), version.to_owned()), copy);
    }

    /// `(oid, version, coverage, codes)` of every copy, sorted.
    pub fn summary(&self) -> Vec<(String, String, Coverage, usize)> {
        let mut out: Vec<_> =
            self.copies.iter().map(|((o, v), c)| (o.clone(), v.clone(), c.coverage, c.names.len())).collect();
        out.sort();
        out
    }

    /// The dictionaries of one kind as rule H13 sees them.
    pub fn for_kind<'a>(&'a self, kind: &'a KindRule) -> KindDictionaries<'a> {
        KindDictionaries { set: self, kind }
    }
}

/// A kind's allowed versions with the copies held.
pub struct KindDictionaries<'a> {
    set: &'a DictionarySet,
    kind: &'a KindRule,
}

impl egisz_semd::Dictionaries for KindDictionaries<'_> {
    fn allowed_versions(&self, oid: &str) -> Option<&[String]> {
        self.kind.dictionaries.get(oid).map(Vec::as_slice)
    }

    fn entry(&self, oid: &str, version: &str, code: &str) -> Entry<'_> {
        match self.set.get(oid, version) {
            None => Entry::Unknown,
            Some(copy) => match (copy.names.get(code), copy.coverage) {
                (Some(name), _) => Entry::Name(name),
                (None, Coverage::Complete) => Entry::Missing,
                (None, Coverage::Subset) => Entry::Unknown,
            },
        }
    }
}

/// The copies intake checks against now: the shipped ones with what NSI refreshed on top.
/// Replaced whole when a refresh lands; readers keep the set they took.
#[derive(Debug)]
pub struct LiveDictionaries {
    current: std::sync::RwLock<std::sync::Arc<DictionarySet>>,
}

impl LiveDictionaries {
    pub fn new(set: DictionarySet) -> Self {
        Self { current: std::sync::RwLock::new(std::sync::Arc::new(set)) }
    }

    pub fn current(&self) -> std::sync::Arc<DictionarySet> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    pub fn replace(&self, set: DictionarySet) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = std::sync::Arc::new(set);
    }
}

pub(super) fn parse(text: &str, problems: &mut Vec<MappingProblem>) -> DictionarySet {
    let mut set = DictionarySet::default();
    for (line, f) in rows(DICTIONARIES_FILE, text, &["oid", "version", "coverage", "code", "name"], problems) {
        let problem = |message: String| MappingProblem { file: DICTIONARIES_FILE.into(), line, message };
        if egisz_contract::Oid::parse(f[0]).is_err() {
            problems.push(problem(format!("{:?} is not an OID", f[0])));
            continue;
        }
        let coverage = match f[2] {
            "complete" => Coverage::Complete,
            "subset" => Coverage::Subset,
            other => {
                problems.push(problem(format!("coverage {other:?}: complete or subset")));
                continue;
            }
        };
        if f[1].trim().is_empty() || f[3].trim().is_empty() || f[4].trim().is_empty() {
            problems.push(problem("empty version, code or name".into()));
            continue;
        }
        let key = (f[0].to_owned(), f[1].to_owned());
        let copy = set.copies.entry(key).or_insert_with(|| DictionaryCopy { coverage, names: HashMap::new() });
        if copy.coverage != coverage {
            problems.push(problem(format!("{} {}: complete and subset rows mixed", f[0], f[1])));
        }
        if copy.names.insert(f[3].to_owned(), f[4].to_owned()).is_some() {
            problems.push(problem(format!("{} {}: code {} twice", f[0], f[1], f[3])));
        }
    }
    set
}
