//! Dictionaries as data (`mappings/`): REMD message codes with their disposition and a
//! Russian hint for ops, the gateway's own codes (`GATEWAY_*`, for what the gateway itself
//! concludes: retries exhausted, a result that never came…) in the same shape, and the
//! document kinds REMD registers. The files are compiled in
//! as the default; `mappings.dir` points at a directory with newer copies. Every file is
//! validated as it loads, and a broken file stops the start with every problem listed.

use std::collections::HashMap;
use std::path::Path;

use chrono::NaiveDate;

use crate::submission::Disposition;

const CODES_FILE: &str = "remd-message-codes.tsv";
const KINDS_FILE: &str = "document-kinds.tsv";
const GATEWAY_FILE: &str = "gateway-codes.tsv";
const EMBEDDED_GATEWAY: &str = include_str!("../mappings/gateway-codes.tsv");
const EMBEDDED_CODES: &str = include_str!("../mappings/remd-message-codes.tsv");
const EMBEDDED_KINDS: &str = include_str!("../mappings/document-kinds.tsv");

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

/// A document kind of NSI 1.2.643.5.1.13.13.11.1520.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct KindRule {
    pub kind: u32,
    /// `ClinicalDocument/code/@code` (NSI 1522).
    pub cda_code: String,
    pub name: String,
    pub valid_from: Option<NaiveDate>,
    pub valid_until: Option<NaiveDate>,
    pub template_id: Option<String>,
    pub org_signature: OrgSignature,
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
        Self::parse_all(EMBEDDED_CODES, EMBEDDED_GATEWAY, EMBEDDED_KINDS)
    }

    /// From `dir` (the REMD codes and the kinds must be there; `gateway-codes.tsv` is taken
    /// from the compiled-in copy when the directory has none), or the compiled-in copies
    /// when `dir` is `None`.
    pub fn load(dir: Option<&Path>) -> Result<Self, Vec<MappingProblem>> {
        let Some(dir) = dir else { return Self::embedded() };
        let read = |name: &str| {
            std::fs::read_to_string(dir.join(name)).map_err(|e| {
                vec![MappingProblem { file: dir.join(name).display().to_string(), line: 0, message: e.to_string() }]
            })
        };
        let gateway = if dir.join(GATEWAY_FILE).exists() { read(GATEWAY_FILE)? } else { EMBEDDED_GATEWAY.to_owned() };
        Self::parse_all(&read(CODES_FILE)?, &gateway, &read(KINDS_FILE)?)
    }

    /// The REMD codes and the kinds given, the gateway's codes compiled in.
    pub fn parse(codes_tsv: &str, kinds_tsv: &str) -> Result<Self, Vec<MappingProblem>> {
        Self::parse_all(codes_tsv, EMBEDDED_GATEWAY, kinds_tsv)
    }

    pub fn parse_all(codes_tsv: &str, gateway_tsv: &str, kinds_tsv: &str) -> Result<Self, Vec<MappingProblem>> {
        let mut problems = Vec::new();
        let codes = parse_codes(codes_tsv, &mut problems);
        let gateway = parse_gateway(gateway_tsv, &mut problems);
        let kinds = parse_kinds(kinds_tsv, &mut problems);
        if problems.is_empty() { Ok(Self { codes, gateway, kinds }) } else { Err(problems) }
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
    let header = [
        "kind",
        "cda_code",
        "name",
        "format",
        "valid_from",
        "valid_until",
        "template_id",
        "org_signature",
        "signer_roles",
    ];
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
        let org_signature = match f[7] {
            "required" => OrgSignature::Required,
            "optional" => OrgSignature::Optional,
            "forbidden" => OrgSignature::Forbidden,
            other => {
                problems.push(problem(format!("org_signature {other:?}")));
                continue;
            }
        };
        let rule = KindRule {
            kind,
            cda_code: f[1].to_owned(),
            name: f[2].to_owned(),
            valid_from,
            valid_until,
            template_id: Some(f[6].to_owned()).filter(|s| !s.is_empty()),
            org_signature,
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
        let kinds = "kind\tcda_code\tname\tformat\tvalid_from\tvalid_until\ttemplate_id\torg_signature\tsigner_roles\nx\t1\tn\t1\t\t\t\toptional\t\n";
        let problems = Mappings::parse(codes, kinds).unwrap_err();
        assert_eq!(problems.len(), 5, "{problems:?}");
    }

    #[test]
    fn a_gateway_file_without_one_of_the_codes_is_refused() {
        let gateway = EMBEDDED_GATEWAY.lines().filter(|l| !l.starts_with("GATEWAY_NO_RESULT")).collect::<Vec<_>>();
        let problems = Mappings::parse_all(EMBEDDED_CODES, &gateway.join("\n"), EMBEDDED_KINDS).unwrap_err();
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].message.contains("GATEWAY_NO_RESULT"), "{problems:?}");
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
