//! How `egisz-gateway validate` tells a MIS developer what it found: Russian text for a
//! terminal, or JSON for a build pipeline. Pure.

use egisz_semd::Violation;
use serde::Serialize;

use crate::submission::IntakeWarning;

/// The outcome of validating one document.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub valid: bool,
    pub file: String,
    pub kind: u32,
    pub kind_name: String,
    pub organization: String,
    /// What REMD would refuse the document for.
    pub errors: Vec<Violation>,
    /// What was not checked, or is reported under the `warn` policy.
    pub warnings: Vec<IntakeWarning>,
    /// Which checks ran, in words.
    pub checks: Vec<String>,
}

pub fn text(r: &Report) -> String {
    let mut out = format!("Документ {}: вид {} «{}», организация {}\n", r.file, r.kind, r.kind_name, r.organization);
    out.push_str(&format!("Проверено: {}\n", r.checks.join("; ")));
    if r.errors.is_empty() {
        out.push_str("Итог: документ прошёл проверку — РЭМД не должен отклонить его по этим правилам\n");
    } else {
        out.push_str(&format!("Итог: документ не прошёл проверку, нарушений: {}\n", r.errors.len()));
        for v in &r.errors {
            out.push_str(&format!("  [{}] {}\n      {}\n      код РЭМД: {}\n", v.rule, v.path, v.message, v.remd_code));
        }
    }
    if !r.warnings.is_empty() {
        out.push_str(&format!("Предупреждения: {}\n", r.warnings.len()));
        for w in &r.warnings {
            out.push_str(&format!("  [{}] {}\n      {}\n      код РЭМД: {}\n", w.rule, w.path, w.message, w.remd_code));
        }
    }
    out
}

pub fn json(r: &Report) -> String {
    serde_json::to_string_pretty(r).unwrap_or_else(|_| "{}".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn both_forms_name_rule_path_and_code() {
        let r = Report {
            valid: false,
            file: "doc.xml".into(),
            kind: 40,
            kind_name: "Протокол".into(),
            organization: "1.2.3".into(),
            errors: vec![Violation::new("H4", "/ClinicalDocument/code/@code", "не тот код")],
            warnings: vec![],
            checks: vec!["заголовок".into()],
        };
        let t = text(&r);
        assert!(t.contains("[H4] /ClinicalDocument/code/@code") && t.contains("INVALID_CONTENT"), "{t}");
        let j: serde_json::Value = serde_json::from_str(&json(&r)).unwrap();
        assert_eq!(j["errors"][0]["rule"], "H4");
        assert_eq!(j["errors"][0]["remd_code"], "INVALID_CONTENT");
        assert_eq!(j["valid"], false);
    }
}
