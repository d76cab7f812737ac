//! What a service check's findings do to a submission: `block` (refused with 422), `warn`
//! (accepted; the findings stored as warnings, in the status and the timeline) or `off`
//! (not asked). A service that cannot answer never blocks intake: the document is accepted
//! with a warning that says what was not checked. Pure.

use std::collections::BTreeMap;
use std::fmt;

use egisz_semd::Violation;

use crate::submission::IntakeWarning;

/// The policy of one service check for one kind.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Deserialize, serde::Serialize)]
#[serde(rename_all = "snake_case")]
pub enum Policy {
    /// `"block"`: the findings refuse the document with 422.
    Block,
    /// `"warn"`: the document is accepted, the findings stored as warnings.
    Warn,
    /// `"off"`: the check is not run.
    Off,
}

impl Policy {
    pub fn parse(s: &str) -> Option<Policy> {
        match s.trim() {
            "block" => Some(Policy::Block),
            "warn" => Some(Policy::Warn),
            "off" => Some(Policy::Off),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Policy::Block => "block",
            Policy::Warn => "warn",
            Policy::Off => "off",
        }
    }
}

impl fmt::Display for Policy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A policy for every kind, with exceptions by kind.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindPolicies {
    /// The policy of every kind not in `by_kind` (`validation.signers`, `xsd`, `schematron`).
    /// Default: block.
    pub default: Policy,
    /// Exceptions by kind id, written like `"227=warn 119=off"` (`validation.signers_by_kind`,
    /// `xsd_by_kind`, `schematron_by_kind`). Default: empty: no exceptions.
    pub by_kind: BTreeMap<u32, Policy>,
}

impl KindPolicies {
    pub fn uniform(default: Policy) -> Self {
        Self { default, by_kind: BTreeMap::new() }
    }

    pub fn for_kind(&self, kind: u32) -> Policy {
        self.by_kind.get(&kind).copied().unwrap_or(self.default)
    }

    /// `"40=block 227=warn"` (spaces or commas between entries; empty: no exceptions).
    pub fn parse_exceptions(text: &str) -> Result<BTreeMap<u32, Policy>, String> {
        let mut out = BTreeMap::new();
        for entry in text.split([' ', ',']).filter(|e| !e.is_empty()) {
            let (kind, policy) =
                entry.split_once('=').ok_or_else(|| format!("{entry:?}: expected <kind>=<block|warn|off>"))?;
            let kind: u32 = kind.trim().parse().map_err(|_| format!("{entry:?}: the kind is not a number"))?;
            let policy = Policy::parse(policy).ok_or_else(|| format!("{entry:?}: expected block, warn or off"))?;
            if out.insert(kind, policy).is_some() {
                return Err(format!("kind {kind} is given twice"));
            }
        }
        Ok(out)
    }

    /// In words, for `check-config`.
    pub fn describe(&self) -> String {
        if self.by_kind.is_empty() {
            return self.default.to_string();
        }
        let exceptions: Vec<String> = self.by_kind.iter().map(|(k, p)| format!("kind {k}: {p}")).collect();
        format!("{} ({})", self.default, exceptions.join(", "))
    }
}

/// What a service answered for one submission: its findings about what it could judge,
/// and a warning for each thing it could not. A finding stands whatever else went
/// unanswered: one signature the verifier could not reach does not excuse a forged other.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Answer {
    pub findings: Vec<Violation>,
    pub unreachable: Vec<Violation>,
}

impl Answer {
    pub fn findings(findings: Vec<Violation>) -> Self {
        Self { findings, unreachable: Vec::new() }
    }

    pub fn unreachable(warning: Violation) -> Self {
        Self { findings: Vec::new(), unreachable: vec![warning] }
    }
}

/// Findings sorted into what refuses the submission and what is stored with it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Sorted {
    pub errors: Vec<Violation>,
    pub warnings: Vec<IntakeWarning>,
}

pub fn warning(v: &Violation) -> IntakeWarning {
    IntakeWarning {
        rule: v.rule.to_owned(),
        path: v.path.clone(),
        message: v.message.clone(),
        remd_code: v.remd_code.to_owned(),
        code: v.code.clone(),
    }
}

/// Applies `policy` to `answer`, adding to `into`.
pub fn apply(policy: Policy, answer: Answer, into: &mut Sorted) {
    if policy == Policy::Off {
        return;
    }
    into.warnings.extend(answer.unreachable.iter().map(warning));
    match policy {
        Policy::Block => into.errors.extend(answer.findings),
        _ => into.warnings.extend(answer.findings.iter().map(warning)),
    }
}

/// The policies of a kind's rule package: its XSD and its schematron.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PackagePolicies {
    pub xsd: Policy,
    pub schematron: Policy,
}

impl PackagePolicies {
    /// The layers to run: an `off` layer is not run, and the schematron does not run over a
    /// document whose XSD errors refuse it (REMD validates in that order).
    pub fn layers(self) -> egisz_packages::Layers {
        egisz_packages::Layers {
            xsd: self.xsd != Policy::Off,
            schematron: self.schematron != Policy::Off,
            schematron_after_xsd_errors: self.xsd != Policy::Block,
        }
    }
}

/// A rule package's findings sorted by the kind's policies: XSD errors by `xsd`, failed
/// asserts (and a run stopped by an XPath error) by `schematron`; successful reports and
/// what could not be checked are warnings.
pub fn apply_package(policies: PackagePolicies, found: egisz_packages::Validation, into: &mut Sorted) {
    apply(policies.xsd, Answer::findings(found.xsd), into);
    apply(policies.schematron, Answer { findings: found.schematron, unreachable: found.reports }, into);
    into.warnings.extend(found.not_checked.iter().map(warning));
}

#[cfg(test)]
mod tests {
    use super::*;

    fn v(code: &'static str) -> Violation {
        Violation::new("F1", "/x", "m").prevents(code)
    }

    #[test]
    fn policies_sort_findings() {
        let mut s = Sorted::default();
        apply(Policy::Block, Answer::findings(vec![v("PERSON_NOT_FOUND")]), &mut s);
        assert_eq!(s.errors.len(), 1);
        apply(Policy::Warn, Answer::findings(vec![v("PERSON_NOT_FOUND")]), &mut s);
        assert_eq!(s.warnings[0].remd_code, "PERSON_NOT_FOUND");
        apply(Policy::Off, Answer::findings(vec![v("PERSON_NOT_FOUND")]), &mut s);
        apply(Policy::Off, Answer::unreachable(v("RUNTIME_ERROR")), &mut s);
        assert_eq!((s.errors.len(), s.warnings.len()), (1, 1));
        // Unreachable never blocks.
        apply(Policy::Block, Answer::unreachable(v("RUNTIME_ERROR")), &mut s);
        assert_eq!((s.errors.len(), s.warnings.len()), (1, 2));
        // A finding stands beside what went unanswered.
        let both = Answer { findings: vec![v("SIGNATURE_VERIFICATION_ERROR")], unreachable: vec![v("RUNTIME_ERROR")] };
        let mut s = Sorted::default();
        apply(Policy::Block, both, &mut s);
        assert_eq!((s.errors.len(), s.warnings.len()), (1, 1));
    }

    #[test]
    fn a_package_by_its_policies() {
        let found = || egisz_packages::Validation {
            xsd: vec![Violation::new("XSD", "/a", "x")],
            schematron: vec![Violation::new("SCH", "/b", "y")],
            reports: vec![Violation::new("SCH", "/c", "z")],
            not_checked: vec![Violation::new("PKG", "/", "w")],
            ..Default::default()
        };
        let rules = |s: &Sorted| {
            (
                s.errors.iter().map(|v| v.rule).collect::<Vec<_>>(),
                s.warnings.iter().map(|w| w.rule.as_str()).collect::<Vec<_>>().join(" "),
            )
        };
        let mut s = Sorted::default();
        apply_package(PackagePolicies { xsd: Policy::Block, schematron: Policy::Block }, found(), &mut s);
        assert_eq!(rules(&s), (vec!["XSD", "SCH"], "SCH PKG".to_owned()));
        let mut s = Sorted::default();
        apply_package(PackagePolicies { xsd: Policy::Warn, schematron: Policy::Off }, found(), &mut s);
        assert_eq!(rules(&s), (vec![], "XSD PKG".to_owned()));
        let layers = PackagePolicies { xsd: Policy::Warn, schematron: Policy::Block }.layers();
        assert!(layers.xsd && layers.schematron && layers.schematron_after_xsd_errors);
        let layers = PackagePolicies { xsd: Policy::Off, schematron: Policy::Block }.layers();
        assert!(!layers.xsd && layers.schematron);
        assert!(!PackagePolicies { xsd: Policy::Block, schematron: Policy::Off }.layers().schematron_after_xsd_errors);
    }

    #[test]
    fn exceptions_by_kind() {
        let by_kind = KindPolicies::parse_exceptions("40=block, 227=warn 119=off").unwrap();
        let p = KindPolicies { default: Policy::Warn, by_kind };
        assert_eq!(
            (p.for_kind(40), p.for_kind(227), p.for_kind(119), p.for_kind(1)),
            (Policy::Block, Policy::Warn, Policy::Off, Policy::Warn)
        );
        assert_eq!(p.describe(), "warn (kind 40: block, kind 119: off, kind 227: warn)");
        assert!(KindPolicies::parse_exceptions("").unwrap().is_empty());
        for bad in ["40", "x=warn", "40=maybe", "40=warn 40=off"] {
            assert!(KindPolicies::parse_exceptions(bad).is_err(), "{bad}");
        }
    }
}
