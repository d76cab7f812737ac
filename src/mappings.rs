//! Dictionaries as data (`mappings/`): REMD message codes with their disposition and a
//! Russian hint for ops, the gateway's own codes (`GATEWAY_*`, for what the gateway itself
//! concludes: retries exhausted, a result that never came…) in the same shape, the
//! document kinds REMD registers with the profile intake checks for each
//! (`kind-profiles.toml`), and the dictionary copies rule H13 checks against
//! (`dictionaries.tsv`). The files are compiled in as the default; `mappings.dir` points at
//! a directory with newer copies. Every file is validated as it loads, and a broken file
//! stops the start with every problem listed.
//!
//! Layout: this file (codes, kinds, loading); `profiles` (`kind-profiles.toml`);
//! `dictionaries` (copies by `(oid, version)` and the H13 view of a kind).

mod dictionaries;
mod profiles;

use std::collections::HashMap;
use std::path::Path;

use chrono::NaiveDate;

pub use dictionaries::{Coverage, DictionaryCopy, DictionarySet, KindDictionaries, LiveDictionaries};

use crate::submission::Disposition;

const CODES_FILE: &str = "remd-message-codes.tsv";
const KINDS_FILE: &str = "document-kinds.tsv";
const GATEWAY_FILE: &str = "gateway-codes.tsv";
const PROFILES_FILE: &str = "kind-profiles.toml";
const DICTIONARIES_FILE: &str = "dictionaries.tsv";
const EMBEDDED_GATEWAY: &str = include_str!("../mappings/gateway-codes.tsv");
const EMBEDDED_CODES: &str = include_str!("../mappings/remd-message-codes.tsv");
const EMBEDDED_KINDS: &str = include_str!("../mappings/document-kinds.tsv");
const EMBEDDED_PROFILES: &str = include_str!("../mappings/kind-profiles.toml");
const EMBEDDED_DICTIONARIES: &str = include_str!("../mappings/dictionaries.tsv");

/// The texts the mappings load from.
#[derive(Debug, Clone, Copy)]
pub struct Sources<'a> {
    pub codes: &'a str,
    pub gateway: &'a str,
    pub kinds: &'a str,
    pub profiles: &'a str,
    pub dictionaries: &'a str,
}

impl Sources<'static> {
    /// The compiled-in copies.
    pub const EMBEDDED: Sources<'static> = Sources {
        codes: EMBEDDED_CODES,
        gateway: EMBEDDED_GATEWAY,
        kinds: EMBEDDED_KINDS,
        profiles: EMBEDDED_PROFILES,
        dictionaries: EMBEDDED_DICTIONARIES,
    };
}

/// What the gateway does about one REMD message code.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CodeRule {
    pub disposition: Disposition,
    pub hint_ru: String,
}

/// Whether a kind needs the organisation's signature.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum OrgSignature {
    Required,
    Optional,
    Forbidden,
}

/// A document kind of NSI 1.2.643.5.1.13.13.11.1520, with its profile from
/// `kind-profiles.toml` (the defaults when it has none).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindRule {
    pub kind: u32,
    /// `ClinicalDocument/code/@code` (NSI 1522).
    pub cda_code: String,
    pub name: String,
    pub valid_from: Option<NaiveDate>,
    pub valid_until: Option<NaiveDate>,
    /// `ClinicalDocument/templateId/@root` values, one of which the document names (K1);
    /// empty: not checked.
    pub template_ids: Vec<String>,
    /// Section codes the kind needs (H12); `DOCINFO` at least.
    pub required_sections: Vec<String>,
    /// The patient's SNILS is required (H8, `NO_SNILS`).
    pub patient_snils_required: bool,
    /// The document gives the patient an MIS identifier (H8); `false` where the kind's
    /// schema allows the SNILS only (160).
    pub patient_local_id: bool,
    pub org_signature: OrgSignature,
    /// Signer roles (NSI 1.2.643.5.1.13.13.99.2.368) each needing a personal signature (K4).
    pub signer_roles: Vec<String>,
    /// Dictionary OID → the versions the kind allows (H13); a dictionary not named here is
    /// not version-checked.
    pub dictionaries: HashMap<String, Vec<String>>,
    /// The kind has a profile in `kind-profiles.toml`.
    pub profiled: bool,
}

impl KindRule {
    /// REMD accepts a document of this kind created on `date` (`NO_DOCUMENT_KIND_ON_DATE`).
    pub fn valid_on(&self, date: NaiveDate) -> bool {
        self.valid_from.is_none_or(|f| f <= date) && self.valid_until.is_none_or(|u| date < u)
    }
}

/// A conclusion of the gateway itself, with a row in `mappings/gateway-codes.tsv`: the
/// loader refuses a file that lacks one of them.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum GatewayCode {
    RetriesExhausted,
    ReconciliationExhausted,
    RemdFault,
    Configuration,
    EmptyRejection,
    ReconciliationFailed,
    ReconciliationRefused,
    NoResult,
    /// The hint and disposition of a REMD code the table does not know.
    UnknownRemdCode,
}

impl GatewayCode {
    pub const ALL: [GatewayCode; 9] = [
        GatewayCode::RetriesExhausted,
        GatewayCode::ReconciliationExhausted,
        GatewayCode::RemdFault,
        GatewayCode::Configuration,
        GatewayCode::EmptyRejection,
        GatewayCode::ReconciliationFailed,
        GatewayCode::ReconciliationRefused,
        GatewayCode::NoResult,
        GatewayCode::UnknownRemdCode,
    ];

    /// A submission failed with this code may have been registered by its last send: the
    /// register is looked up before it is sent again.
    pub fn leaves_outcome_unknown(self) -> bool {
        matches!(
            self,
            GatewayCode::ReconciliationExhausted
                | GatewayCode::ReconciliationFailed
                | GatewayCode::ReconciliationRefused
                | GatewayCode::NoResult
        )
    }

    pub fn parse(code: &str) -> Option<GatewayCode> {
        GatewayCode::ALL.into_iter().find(|c| c.as_str() == code)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            GatewayCode::RetriesExhausted => "GATEWAY_RETRIES_EXHAUSTED",
            GatewayCode::ReconciliationExhausted => "GATEWAY_RECONCILIATION_EXHAUSTED",
            GatewayCode::RemdFault => "GATEWAY_REMD_FAULT",
            GatewayCode::Configuration => "GATEWAY_CONFIGURATION",
            GatewayCode::EmptyRejection => "GATEWAY_EMPTY_REJECTION",
            GatewayCode::ReconciliationFailed => "GATEWAY_RECONCILIATION_FAILED",
            GatewayCode::ReconciliationRefused => "GATEWAY_RECONCILIATION_REFUSED",
            GatewayCode::NoResult => "GATEWAY_NO_RESULT",
            GatewayCode::UnknownRemdCode => "GATEWAY_UNKNOWN_REMD_CODE",
        }
    }
}

/// The loaded dictionaries.
#[derive(Debug, Clone)]
pub struct Mappings {
    codes: HashMap<String, CodeRule>,
    gateway: HashMap<String, CodeRule>,
    kinds: HashMap<u32, KindRule>,
    dictionaries: DictionarySet,
}

/// A row that did not load.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{file}:{line}: {message}")]
pub struct MappingProblem {
    pub file: String,
    pub line: usize,
    pub message: String,
}

impl Mappings {
    /// The compiled-in copies.
    pub fn embedded() -> Result<Self, Vec<MappingProblem>> {
        Self::parse_all(Sources::EMBEDDED)
    }

    /// From `dir` (the REMD codes and the kinds must be there; `gateway-codes.tsv`,
    /// `kind-profiles.toml` and `dictionaries.tsv` are taken from the compiled-in copies when
    /// the directory has none), or the compiled-in copies when `dir` is `None`.
    pub fn load(dir: Option<&Path>) -> Result<Self, Vec<MappingProblem>> {
        let Some(dir) = dir else { return Self::embedded() };
        let read = |name: &str| {
            std::fs::read_to_string(dir.join(name)).map_err(|e| {
                vec![MappingProblem { file: dir.join(name).display().to_string(), line: 0, message: e.to_string() }]
            })
        };
        let or_embedded =
            |name: &str, embedded: &str| if dir.join(name).exists() { read(name) } else { Ok(embedded.to_owned()) };
        let (codes, kinds) = (read(CODES_FILE)?, read(KINDS_FILE)?);
        let gateway = or_embedded(GATEWAY_FILE, EMBEDDED_GATEWAY)?;
        let profiles = or_embedded(PROFILES_FILE, EMBEDDED_PROFILES)?;
        let dictionaries = or_embedded(DICTIONARIES_FILE, EMBEDDED_DICTIONARIES)?;
        Self::parse_all(Sources {
            codes: &codes,
            gateway: &gateway,
            kinds: &kinds,
            profiles: &profiles,
            dictionaries: &dictionaries,
        })
    }

    /// The REMD codes and the kinds given, everything else compiled in.
    pub fn parse(codes_tsv: &str, kinds_tsv: &str) -> Result<Self, Vec<MappingProblem>> {
        Self::parse_all(Sources { codes: codes_tsv, kinds: kinds_tsv, ..Sources::EMBEDDED })
    }

    pub fn parse_all(sources: Sources<'_>) -> Result<Self, Vec<MappingProblem>> {
        let mut problems = Vec::new();
        let codes = parse_codes(sources.codes, &mut problems);
        let gateway = parse_gateway(sources.gateway, &mut problems);
        let mut kinds = parse_kinds(sources.kinds, &mut problems);
        if problems.is_empty() {
            profiles::apply(sources.profiles, &mut kinds, &mut problems);
        }
        let dictionaries = dictionaries::parse(sources.dictionaries, &mut problems);
        if problems.is_empty() { Ok(Self { codes, gateway, kinds, dictionaries }) } else { Err(problems) }
    }

    /// The shipped dictionary copies (`dictionaries.tsv`): the fallback under what NSI gives.
    pub fn dictionaries(&self) -> &DictionarySet {
        &self.dictionaries
    }

    /// The kinds with a profile, by number.
    pub fn profiled_kinds(&self) -> Vec<&KindRule> {
        let mut out: Vec<&KindRule> = self.kinds.values().filter(|k| k.profiled).collect();
        out.sort_by_key(|k| k.kind);
        out
    }

    /// The rule of one of the gateway's own codes (every one is present: the loader checks).
    pub fn gateway(&self, code: GatewayCode) -> &CodeRule {
        static MISSING: std::sync::OnceLock<CodeRule> = std::sync::OnceLock::new();
        self.gateway.get(code.as_str()).unwrap_or_else(|| {
            MISSING.get_or_init(|| CodeRule { disposition: Disposition::NeedsAdmin, hint_ru: String::new() })
        })
    }

    /// The rule of any code an error may carry: REMD's or the gateway's.
    pub fn any_code(&self, code: &str) -> Option<&CodeRule> {
        self.code(code).or_else(|| self.gateway.get(code.trim()))
    }

    /// The rule of a REMD code; `None` for a code the table does not know.
    pub fn code(&self, code: &str) -> Option<&CodeRule> {
        self.codes.get(code.trim())
    }

    pub fn kind(&self, kind: u32) -> Option<&KindRule> {
        self.kinds.get(&kind)
    }

    pub fn code_count(&self) -> usize {
        self.codes.len()
    }

    /// Every kind, by number.
    pub fn kinds(&self) -> Vec<&KindRule> {
        let mut out: Vec<&KindRule> = self.kinds.values().collect();
        out.sort_by_key(|k| k.kind);
        out
    }

    pub fn kind_count(&self) -> usize {
        self.kinds.len()
    }
}

/// Of several dispositions, the one that decides: a person must act if any code needs one
/// (`needs_admin` before `needs_data_fix`); then reconciliation; retry only if every code says so.
pub fn decisive(dispositions: impl IntoIterator<Item = Disposition>) -> Option<Disposition> {
    let rank = |d: &Disposition| match d {
        Disposition::NeedsAdmin => 3,
        Disposition::NeedsDataFix => 2,
        Disposition::Reconcile => 1,
        Disposition::Retry => 0,
    };
    dispositions.into_iter().max_by_key(rank)
}

fn rows<'a>(
    file: &'a str,
    text: &'a str,
    header: &'a [&'a str],
    problems: &mut Vec<MappingProblem>,
) -> Vec<(usize, Vec<&'a str>)> {
    let mut lines = text.lines().enumerate();
    match lines.next() {
        Some((_, h)) if h.split('\t').collect::<Vec<_>>() == header => {}
        _ => {
            problems.push(MappingProblem {
                file: file.into(),
                line: 1,
                message: format!("expected the header {}", header.join("\\t")),
            });
            return Vec::new();
        }
    }
    lines
        .filter(|(_, l)| !l.trim().is_empty())
        .filter_map(|(i, l)| {
            let fields: Vec<&str> = l.split('\t').collect();
            if fields.len() == header.len() {
                Some((i + 1, fields))
            } else {
                problems.push(MappingProblem {
                    file: file.into(),
                    line: i + 1,
                    message: format!("{} fields, expected {}", fields.len(), header.len()),
                });
                None
            }
        })
        .collect()
}

fn parse_gateway(text: &str, problems: &mut Vec<MappingProblem>) -> HashMap<String, CodeRule> {
    let codes = code_rows(GATEWAY_FILE, text, &["code", "disposition", "hint_ru", "description_ru"], problems);
    for code in GatewayCode::ALL {
        if !codes.contains_key(code.as_str()) {
            problems.push(MappingProblem {
                file: GATEWAY_FILE.into(),
                line: 0,
                message: format!("{} must be present", code.as_str()),
            });
        }
    }
    codes
}

fn parse_codes(text: &str, problems: &mut Vec<MappingProblem>) -> HashMap<String, CodeRule> {
    let codes = code_rows(CODES_FILE, text, &["code", "disposition", "hint_ru", "nsi_description"], problems);
    if !codes.contains_key("RATE_LIMIT") || !codes.contains_key("NOT_UNIQUE_PROVIDED_ID") {
        problems.push(MappingProblem {
            file: CODES_FILE.into(),
            line: 0,
            message: "RATE_LIMIT and NOT_UNIQUE_PROVIDED_ID must be present".into(),
        });
    }
    codes
}

/// Rows of `code, disposition, hint_ru, <description>`.
fn code_rows(file: &str, text: &str, header: &[&str], problems: &mut Vec<MappingProblem>) -> HashMap<String, CodeRule> {
    let mut codes = HashMap::new();
    for (line, f) in rows(file, text, header, problems) {
        let problem = |message: String| MappingProblem { file: file.into(), line, message };
        let disposition = match f[1] {
            "retry" => Disposition::Retry,
            "reconcile" => Disposition::Reconcile,
            "needs_data_fix" => Disposition::NeedsDataFix,
            "needs_admin" => Disposition::NeedsAdmin,
            other => {
                problems.push(problem(format!("unknown disposition {other:?}")));
                continue;
            }
        };
        if f[0].is_empty() || !f[0].bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_') {
            problems.push(problem(format!("malformed code {:?}", f[0])));
            continue;
        }
        if f[2].trim().is_empty() {
            problems.push(problem(format!("{}: empty hint", f[0])));
            continue;
        }
        if codes.insert(f[0].to_owned(), CodeRule { disposition, hint_ru: f[2].to_owned() }).is_some() {
            problems.push(problem(format!("{} appears twice", f[0])));
        }
    }
    codes
}

fn parse_kinds(text: &str, problems: &mut Vec<MappingProblem>) -> HashMap<u32, KindRule> {
    let header = ["kind", "cda_code", "name", "format", "valid_from", "valid_until"];
    let mut kinds = HashMap::new();
    for (line, f) in rows(KINDS_FILE, text, &header, problems) {
        let problem = |message: String| MappingProblem { file: KINDS_FILE.into(), line, message };
        let Ok(kind) = f[0].parse::<u32>() else {
            problems.push(problem(format!("kind {:?} is not a number", f[0])));
            continue;
        };
        let date = |s: &str, what: &str, problems: &mut Vec<MappingProblem>| -> Option<NaiveDate> {
            if s.is_empty() {
                return None;
            }
            NaiveDate::parse_from_str(s, "%Y-%m-%d")
                .map_err(|_| problems.push(problem(format!("{what} {s:?} is not a date"))))
                .ok()
        };
        let valid_from = date(f[4], "valid_from", problems);
        let valid_until = date(f[5], "valid_until", problems);
        let rule = KindRule {
            kind,
            cda_code: f[1].to_owned(),
            name: f[2].to_owned(),
            valid_from,
            valid_until,
            template_ids: Vec::new(),
            required_sections: vec!["DOCINFO".to_owned()],
            patient_snils_required: false,
            patient_local_id: true,
            org_signature: OrgSignature::Optional,
            signer_roles: Vec::new(),
            dictionaries: HashMap::new(),
            profiled: false,
        };
        if kinds.insert(kind, rule).is_some() {
            problems.push(problem(format!("kind {kind} appears twice")));
        }
    }
    kinds
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_shipped_tables_load() {
        let m = Mappings::embedded().expect("shipped mappings are valid");
        assert!(m.code_count() >= 127, "{}", m.code_count());
        assert_eq!(m.kind_count(), 232);
        assert_eq!(m.code("RATE_LIMIT").unwrap().disposition, Disposition::Retry);
        assert_eq!(m.code("NOT_UNIQUE_PROVIDED_ID").unwrap().disposition, Disposition::Reconcile);
        assert_eq!(m.code("ACCESS_DENIED").unwrap().disposition, Disposition::NeedsAdmin);
        assert_eq!(m.code("PERSON_POST_IN_FRMR_MISMATCH").unwrap().disposition, Disposition::NeedsDataFix);
        assert_eq!(m.code("RECIPIENT_NAME_MISMATCH"), m.code("RECEPIENT_NAME_MISMATCH"), "RECIPIENT_* are aliases");
        assert!(m.code("NO_SUCH_CODE").is_none());
        for code in GatewayCode::ALL {
            assert!(!m.gateway(code).hint_ru.is_empty(), "{}", code.as_str());
            assert!(m.code(code.as_str()).is_none(), "gateway codes are not REMD codes");
            assert_eq!(m.any_code(code.as_str()), Some(m.gateway(code)));
        }
        let tmk = m.kind(40).unwrap();
        assert_eq!(tmk.cda_code, "36");
        assert!(tmk.valid_on("2023-08-18".parse().unwrap()));
        assert!(!tmk.valid_on("2019-11-29".parse().unwrap()));
    }

    #[test]
    fn every_nsi_code_is_classified() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../shared/federal/nsi-305-remd-message-codes.tsv");
        let nsi = std::fs::read_to_string(path).expect("the shared NSI 305 list beside the project");
        let m = Mappings::embedded().unwrap();
        for line in nsi.lines().skip(1).filter(|l| !l.is_empty()) {
            let code = line.split('\t').next().unwrap();
            assert!(m.code(code).is_some(), "{code} is not in mappings/remd-message-codes.tsv");
        }
    }

    #[test]
    fn broken_rows_are_all_reported() {
        let codes = "code\tdisposition\thint_ru\tnsi_description\nA\tmaybe\th\td\nB\tretry\t\td\nC\tretry\th\n";
        let kinds = "kind\tcda_code\tname\tformat\tvalid_from\tvalid_until\nx\t1\tn\t1\t\t\n";
        let problems = Mappings::parse(codes, kinds).unwrap_err();
        assert_eq!(problems.len(), 5, "{problems:?}");
    }

    #[test]
    fn a_gateway_file_without_one_of_the_codes_is_refused() {
        let gateway = EMBEDDED_GATEWAY.lines().filter(|l| !l.starts_with("GATEWAY_NO_RESULT")).collect::<Vec<_>>();
        let gateway = gateway.join("\n");
        let problems = Mappings::parse_all(Sources { gateway: &gateway, ..Sources::EMBEDDED }).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].message.contains("GATEWAY_NO_RESULT"), "{problems:?}");
    }

    #[test]
    fn the_shipped_profiles_and_dictionaries_load() {
        let m = Mappings::embedded().unwrap();
        let kinds: Vec<u32> = m.profiled_kinds().iter().map(|k| k.kind).collect();
        assert_eq!(kinds, [40, 119, 160, 227]);
        let tmk = m.kind(40).unwrap();
        assert_eq!(tmk.template_ids, ["1.2.643.5.1.13.13.14.36.9.1"]);
        assert_eq!(tmk.required_sections, ["DOCINFO", "RESCONS"]);
        assert_eq!(tmk.dictionaries["1.2.643.5.1.13.13.11.1002"], ["7.5"]);
        let unprofiled = m.kind(4).unwrap();
        assert!(!unprofiled.profiled && unprofiled.template_ids.is_empty());
        assert_eq!(unprofiled.required_sections, ["DOCINFO"]);
        let gender = m.dictionaries().get("1.2.643.5.1.13.13.11.1040", "2.1").unwrap();
        assert_eq!(gender.coverage, Coverage::Complete);
        assert_eq!(gender.names["2"], "Женский");
    }

    #[test]
    fn broken_profiles_and_dictionaries_are_reported() {
        let profiles = r#"
[[kind]]
kind = 40
cda_code = "37"
template_ids = ["not an oid"]
required_sections = ["RESCONS"]
patient_snils = "optional"
org_signature = "optional"
signer_roles = ["x"]
[kind.dictionaries]
"1.2.643.5.1.13.13.11.1522" = []

[[kind]]
kind = 99999
cda_code = "1"
required_sections = ["DOCINFO"]
patient_snils = "optional"
org_signature = "optional"
"#;
        let problems = Mappings::parse_all(Sources { profiles, ..Sources::EMBEDDED }).unwrap_err();
        let text: Vec<String> = problems.iter().map(|p| p.to_string()).collect();
        assert_eq!(problems.len(), 6, "{text:#?}");
        for needle in ["cda_code \"37\"", "not an OID", "DOCINFO", "signer role", "versions", "99999"] {
            assert!(text.iter().any(|t| t.contains(needle)), "{needle}: {text:#?}");
        }
        let typo = "[[kind]]\nkind = 40\ncda_code = \"36\"\nrequired_sections = [\"DOCINFO\"]\npatient_snils = \"maybe\"\norg_signature = \"optional\"\n";
        let problems = Mappings::parse_all(Sources { profiles: typo, ..Sources::EMBEDDED }).unwrap_err();
        assert_eq!(problems[0].file, "kind-profiles.toml");
        assert_eq!(problems[0].line, 5, "{problems:?}");

        let dictionaries = "oid\tversion\tcoverage\tcode\tname\nx\t1\tsubset\tA\tB\n1.2.3\t1\tall\tA\tB\n1.2.3\t1\tsubset\tA\tB\n1.2.3\t1\tcomplete\tC\tD\n1.2.3\t1\tsubset\tA\tB\n";
        let problems = Mappings::parse_all(Sources { dictionaries, ..Sources::EMBEDDED }).unwrap_err();
        assert_eq!(problems.len(), 4, "{problems:?}");
    }

    #[test]
    fn decisive_disposition() {
        use Disposition::*;
        assert_eq!(decisive([Retry, NeedsDataFix, Reconcile]), Some(NeedsDataFix));
        assert_eq!(decisive([Retry, NeedsAdmin, NeedsDataFix]), Some(NeedsAdmin));
        assert_eq!(decisive([Retry, Retry]), Some(Retry));
        assert_eq!(decisive([Reconcile, Retry]), Some(Reconcile));
        assert_eq!(decisive([]), None);
    }
}
