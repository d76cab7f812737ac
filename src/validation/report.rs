//! How `egisz-gateway validate` tells a MIS developer what it found: Russian text for a
//! terminal, or JSON for a build pipeline. Pure.

use chrono::{DateTime, FixedOffset};
use egisz_semd::{ParsedSignature, Violation};
use serde::Serialize;

use crate::submission::IntakeWarning;

/// The ministry's rule package a document was checked against: its identity, as `/readyz`
/// and `check-config` show it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, utoipa::ToSchema)]
pub struct RulePackage {
    /// NSI 1520 kind id.
    pub kind: u32,
    /// SHA-256 of the package's files (hex).
    pub sha256: String,
    /// The schematron's own description line, if it has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub version: Option<String>,
    /// Whether the package has a schematron.
    pub schematron: bool,
}

impl From<egisz_packages::PackageId> for RulePackage {
    fn from(p: egisz_packages::PackageId) -> Self {
        Self { kind: p.kind, sha256: p.sha256, version: p.version, schematron: p.schematron }
    }
}

/// The outcome of validating one document.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    pub valid: bool,
    pub file: String,
    pub kind: u32,
    pub kind_name: String,
    pub organization: String,
    /// The ministry's rule package the document was checked against, if its kind has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package: Option<RulePackage>,
    /// What REMD would refuse the document for (the `findings` of
    /// `POST /api/v1/documents/validate`, the `errors` of a refused intake).
    pub findings: Vec<Violation>,
    /// What was not checked, or is reported under the `warn` policy.
    pub warnings: Vec<IntakeWarning>,
    /// Which checks ran, in words.
    pub checks: Vec<String>,
    /// Each signature's certificate: whose it is, its CA, when it was judged. Printed for the
    /// person who runs `validate`, never logged.
    pub certificates: Vec<CertificateSummary>,
}

/// A signature's certificate, as `validate` names it.
#[derive(Debug, Clone, Serialize)]
pub struct CertificateSummary {
    /// Where the signature was given (`/signatures/0`, `/org_signature`).
    pub path: String,
    /// The holder's SNILS (a person) or OGRN (an organisation).
    pub snils: Option<String>,
    pub ogrn: Option<String>,
    /// The issuing CA's common name.
    pub issuer: Option<String>,
    pub serial_number: String,
    pub not_before: String,
    pub not_after: String,
    /// The document's creation time: the chain is judged at it.
    pub checked_at: String,
    /// The signature's `signingTime`, when it has one: judged at it too.
    pub signed_at: Option<String>,
}

/// The summary of the certificate of the signature at `path`, judged at `created`.
pub fn certificate_of(path: &str, s: &ParsedSignature, created: DateTime<FixedOffset>) -> CertificateSummary {
    let c = &s.certificate;
    CertificateSummary {
        path: path.to_owned(),
        // Masked: the report may end up in a pipeline's log. The last four digits are
        // enough to tell two signers apart.
        snils: c.snils.as_ref().map(|s| format!("***-***-{}", &s.as_str()[7..])),
        ogrn: c.ogrn.clone(),
        issuer: c.issuer.clone(),
        serial_number: c.serial_number.clone(),
        not_before: c.not_before.to_rfc3339(),
        not_after: c.not_after.to_rfc3339(),
        checked_at: created.to_rfc3339(),
        signed_at: s.signing_time.map(|t| t.to_rfc3339()),
    }
}

pub fn text(r: &Report) -> String {
    let mut out = format!("Документ {}: вид {} «{}», организация {}\n", r.file, r.kind, r.kind_name, r.organization);
    out.push_str(&format!("Проверено: {}\n", r.checks.join("; ")));
    if let Some(p) = &r.package {
        out.push_str(&format!(
            "Пакет правил вида {}: SHA-256 {}{}\n",
            p.kind,
            p.sha256,
            p.version.as_ref().map(|v| format!(" ({v})")).unwrap_or_default()
        ));
    }
    for c in &r.certificates {
        let holder = match (&c.snils, &c.ogrn) {
            (Some(snils), _) => format!("СНИЛС {snils}"),
            (None, Some(ogrn)) => format!("ОГРН {ogrn}"),
            (None, None) => "владелец не указан".to_owned(),
        };
        out.push_str(&format!(
            "Подпись {}: сертификат {} ({holder}), УЦ «{}», действует {} — {}; проверен на {}{}\n",
            c.path,
            c.serial_number,
            c.issuer.as_deref().unwrap_or("не указан"),
            c.not_before,
            c.not_after,
            c.checked_at,
            c.signed_at.as_ref().map(|t| format!(" и на время подписания {t}")).unwrap_or_default()
        ));
    }
    if r.findings.is_empty() {
        out.push_str("Итог: документ прошёл проверку — РЭМД не должен отклонить его по этим правилам\n");
    } else {
        out.push_str(&format!("Итог: документ не прошёл проверку, нарушений: {}\n", r.findings.len()));
        for v in &r.findings {
            let code = v.code.as_ref().map(|c| format!(" {c}")).unwrap_or_default();
            out.push_str(&format!(
                "  [{}{code}] {}\n      {}\n      код РЭМД: {}\n",
                v.rule, v.path, v.message, v.remd_code
            ));
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
            package: None,
            findings: vec![Violation::new("H4", "/ClinicalDocument/code/@code", "не тот код")],
            warnings: vec![],
            checks: vec!["заголовок".into()],
            certificates: vec![],
        };
        let t = text(&r);
        assert!(t.contains("[H4] /ClinicalDocument/code/@code") && t.contains("INVALID_CONTENT"), "{t}");
        let j: serde_json::Value = serde_json::from_str(&json(&r)).unwrap();
        assert_eq!(j["findings"][0]["rule"], "H4");
        assert_eq!(j["findings"][0]["remd_code"], "INVALID_CONTENT");
        assert_eq!(j["valid"], false);
    }
}
