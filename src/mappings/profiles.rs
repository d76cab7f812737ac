//! `kind-profiles.toml`: what intake checks per document kind beyond the shared header
//! rules — templates, sections, the patient's SNILS, the organisation's signature, signer
//! roles, and the dictionary versions the kind allows. Parsed and checked against the
//! kinds of `document-kinds.tsv` as it loads.

use std::collections::{BTreeMap, HashMap};

use serde::Deserialize;

use super::{KindRule, MappingProblem, OrgSignature, PROFILES_FILE};

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct File {
    #[serde(default)]
    kind: Vec<Profile>,
}

#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct Profile {
    kind: u32,
    cda_code: String,
    #[serde(default)]
    template_ids: Vec<String>,
    required_sections: Vec<String>,
    patient_snils: Requirement,
    #[serde(default = "PatientLocalId::required")]
    patient_local_id: PatientLocalId,
    org_signature: OrgSignatureField,
    #[serde(default)]
    signer_roles: Vec<String>,
    #[serde(default)]
    dictionaries: BTreeMap<String, Vec<String>>,
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Requirement {
    Required,
    Optional,
}

/// Whether the document gives the patient an MIS identifier.
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum PatientLocalId {
    Required,
    /// The kind's schema gives the patient the SNILS only.
    Absent,
}

impl PatientLocalId {
    fn required() -> Self {
        PatientLocalId::Required
    }
}

#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "snake_case")]
enum OrgSignatureField {
    Required,
    Optional,
    Forbidden,
}

fn is_oid(s: &str) -> bool {
    egisz_contract::Oid::parse(s).is_ok()
}

/// Applies the profiles in `text` to `kinds` (the NSI 1520 rows). Every problem is pushed.
pub(super) fn apply(text: &str, kinds: &mut HashMap<u32, KindRule>, problems: &mut Vec<MappingProblem>) {
    let problem = |message: String| MappingProblem { file: PROFILES_FILE.into(), line: 0, message };
    let file: File = match toml::from_str(text) {
        Ok(f) => f,
        Err(e) => {
            let line = e.span().map(|s| text[..s.start.min(text.len())].lines().count().max(1)).unwrap_or(0);
            problems.push(MappingProblem { file: PROFILES_FILE.into(), line, message: e.message().to_owned() });
            return;
        }
    };
    let mut seen = std::collections::HashSet::new();
    for p in file.kind {
        let k = p.kind;
        if !seen.insert(k) {
            problems.push(problem(format!("kind {k}: two profiles")));
            continue;
        }
        let Some(rule) = kinds.get_mut(&k) else {
            problems.push(problem(format!("kind {k}: not in document-kinds.tsv")));
            continue;
        };
        if p.cda_code != rule.cda_code {
            problems.push(problem(format!(
                "kind {k}: cda_code {:?}, document-kinds.tsv has {:?}",
                p.cda_code, rule.cda_code
            )));
        }
        for t in &p.template_ids {
            if !is_oid(t) {
                problems.push(problem(format!("kind {k}: template id {t:?} is not an OID")));
            }
        }
        if !p.required_sections.iter().any(|s| s == "DOCINFO") {
            problems.push(problem(format!("kind {k}: required_sections must include DOCINFO (rule H12)")));
        }
        for s in &p.required_sections {
            if s.is_empty() || !s.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_') {
                problems.push(problem(format!(
                    "kind {k}: section code {s:?} is not a code of NSI 1.2.643.5.1.13.13.99.2.197"
                )));
            }
        }
        for r in &p.signer_roles {
            if r.is_empty() || !r.bytes().all(|b| b.is_ascii_digit()) {
                problems.push(problem(format!(
                    "kind {k}: signer role {r:?} is not a code of NSI 1.2.643.5.1.13.13.99.2.368"
                )));
            }
        }
        for (oid, versions) in &p.dictionaries {
            if !is_oid(oid) {
                problems.push(problem(format!("kind {k}: dictionary {oid:?} is not an OID")));
            }
            if versions.is_empty() || versions.iter().any(|v| v.trim().is_empty() || v.trim() != v) {
                problems.push(problem(format!(
                    "kind {k}: dictionary {oid}: versions must be a non-empty list of versions"
                )));
            }
        }
        rule.template_ids = p.template_ids;
        rule.required_sections = p.required_sections;
        rule.patient_snils_required = matches!(p.patient_snils, Requirement::Required);
        rule.patient_local_id = matches!(p.patient_local_id, PatientLocalId::Required);
        if !rule.patient_local_id && !rule.patient_snils_required {
            problems.push(problem(format!(
                "kind {k}: patient_local_id = \"absent\" needs patient_snils = \"required\" (the SNILS names the patient then)"
            )));
        }
        rule.org_signature = match p.org_signature {
            OrgSignatureField::Required => OrgSignature::Required,
            OrgSignatureField::Optional => OrgSignature::Optional,
            OrgSignatureField::Forbidden => OrgSignature::Forbidden,
        };
        rule.signer_roles = p.signer_roles;
        rule.dictionaries = p.dictionaries.into_iter().collect();
        rule.profiled = true;
    }
}
