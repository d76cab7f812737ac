//! What intake (and `egisz-gateway validate`) checks of a signed document before it is
//! accepted: everything REMD would refuse that can be seen at once. Pure: the bytes, the
//! kind's profile, the dictionaries and the time come in; violations (rule, XPath, REMD
//! code) and, when the document passes, the parts of the REMD request come out.
//!
//! The checks that need a service — each signer against FRMR, the signature value against
//! a verification service — are decided in [`signers`] and [`policy`] from the answers the
//! caller collected; the calls themselves are at the edges (the intake handler, the CLI).
//!
//! The kind's rule package (the ministry's XSD and schematron) runs beside these checks, in
//! REMD's order before them, when the document passed the bounded parse
//! ([`Checked::parsed`]): `services::check_package` calls it, `policy::apply_package` sorts
//! what it found.
//!
//! Layout: this file (the document, its signatures, the request parts); `signers` (FRMR's
//! answer about each signer → violations); `organizations` (the organisations and
//! departments named → FRMO's copy, rule O1); `policy` (`block` / `warn` / `off`, and what an
//! unreachable service or package means); `services` (the edge: asking FRMR and the
//! verifier, running the rule package); `report` (what `validate` prints); `settings`
//! (`[validation]`, as these checks use it).

pub mod organizations;
pub mod policy;
pub mod report;
pub mod services;
pub mod settings;
pub mod signers;

use chrono::{DateTime, FixedOffset};
use egisz_contract::Oid;
use egisz_contract::remd::{Coded, PersonalSignature, SignatureData};
use egisz_semd::{CdaHeader, Expectations, ParsedSignature, RequestParts, Violation, rules};

use crate::mappings::{DictionarySet, KindRule, OrgSignature};

/// A personal signature as submitted: the role it is given and the decoded CMS.
#[derive(Debug, Clone, Copy)]
pub struct PersonalInput<'a> {
    /// Role, NSI 1.2.643.5.1.13.13.99.2.368, and the version of that dictionary.
    pub role: &'a str,
    pub role_version: &'a str,
    /// The CMS container (DER or BER).
    pub cms: &'a [u8],
}

/// A submission's document and signatures, decoded.
#[derive(Debug, Clone)]
pub struct DocumentInput<'a> {
    pub kind: &'a KindRule,
    pub organization: &'a Oid,
    /// The department the submission names, if any (`<MO OID>.0.<n>`).
    pub department: Option<&'a Oid>,
    pub content: &'a [u8],
    /// The personal signatures; `None` for one whose transport encoding did not decode (the
    /// caller reported that), so that the indexes in paths stay the submitted ones.
    pub signatures: Vec<Option<PersonalInput<'a>>>,
    /// The organisation's signature: absent, present (decoded), or present but undecodable.
    pub org_signature: Option<Option<&'a [u8]>>,
}

/// A signer the document names (an author or the legal authenticator), to be checked
/// against FRMR.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerToCheck {
    pub snils: egisz_contract::Snils,
    /// The position the document gives (NSI 1002 code).
    pub position: String,
    /// Where the signer is in the document.
    pub path: String,
    pub last_name: egisz_contract::Personal<String>,
    pub first_name: egisz_contract::Personal<String>,
    pub middle_name: Option<egisz_contract::Personal<String>>,
}

/// A document that passed every check here: what the REMD request and the service checks
/// need.
#[derive(Debug, Clone)]
pub struct Prepared {
    pub parts: RequestParts,
    pub personal: Vec<PersonalSignature>,
    pub org_signature: Option<SignatureData>,
    /// Every parsed signature (personal first, then the organisation's), with the path it
    /// was submitted at, for the signature verifier.
    pub signatures: Vec<(String, ParsedSignature)>,
    /// Every author and the legal authenticator, once each.
    pub signers: Vec<SignerToCheck>,
    /// Every organisation and department the submission names, for the FRMO check.
    pub organizations: Vec<organizations::Place>,
}

/// The outcome of [`check_document`].
#[derive(Debug, Clone)]
pub struct Checked {
    /// Every violation, in the order found, paths from the submission's root (`/document…`
    /// is written as the CDA path, `/signatures/<i>…` and `/org_signature…` as the CMS path
    /// under the submitted signature).
    pub violations: Vec<Violation>,
    /// Present when there are no violations.
    pub prepared: Option<Prepared>,
    /// The document passed the bounded parse (well-formed, UTF-8, within the limits): the
    /// rule package may run over it.
    pub parsed: bool,
}

fn under(prefix: &str, mut v: Violation) -> Violation {
    v.path = if v.path.is_empty() || v.path == "/" { prefix.to_owned() } else { format!("{prefix}{}", v.path) };
    v
}

/// Every check of the document and its signatures that needs no service.
pub fn check_document(
    input: &DocumentInput<'_>,
    dictionaries: &DictionarySet,
    now: DateTime<FixedOffset>,
    utc_offset: FixedOffset,
) -> Checked {
    let kind = input.kind;
    let mut out: Vec<Violation> = Vec::new();
    let expectations = Expectations {
        kind: kind.kind,
        cda_code: kind.cda_code.clone(),
        organization: input.organization.clone(),
        now,
        required_sections: kind.required_sections.clone(),
        template_ids: kind.template_ids.clone(),
        require_patient_snils: kind.patient_snils_required,
        patient_local_id: kind.patient_local_id,
    };
    let header = match CdaHeader::parse(input.content) {
        Ok(h) => h,
        // A document that does not parse can be checked no further.
        Err(violations) => return Checked { violations, prepared: None, parsed: false },
    };
    out.extend(egisz_semd::check(&header, &expectations));
    out.extend(egisz_semd::check_dictionaries(&header, &dictionaries.for_kind(kind)));
    let parts = match egisz_semd::register_request_parts(&header, utc_offset) {
        Ok(p) => Some(p),
        Err(violations) => {
            out.extend(violations);
            None
        }
    };
    if let Some(p) = &parts
        && !kind.valid_on(p.creation_date_time.date_naive())
    {
        out.push(Violation::new(
            rules::K2,
            "/ClinicalDocument/effectiveTime/@value",
            format!("вид {} не действует на дату создания документа", kind.kind),
        ));
    }

    let created = parts.as_ref().map(|p| p.creation_date_time);
    let mut digests = egisz_semd::DocumentDigests::new(input.content);
    let personal = personal_signatures(input, &header, parts.as_ref(), created, &mut digests, &mut out);
    let org_signature = org_signature(input, created, &mut digests, &mut out);

    if let Some(p) = &parts {
        let uid = &p.local_uid;
        if uid.chars().count() > 128 || uid.chars().any(|c| c.is_control() || c.is_whitespace()) {
            out.push(Violation::new(
                rules::H3,
                "/ClinicalDocument/id/@extension",
                "localUid — до 128 печатных символов без пробелов и управляющих символов",
            ));
        }
        if let (Some(given), Some(derived)) = (input.department, &p.department)
            && given != derived
        {
            out.push(
                Violation::new(
                    "department_mismatch",
                    "/department",
                    format!("в документе указано подразделение {derived}, в запросе — {given}"),
                )
                .prevents("ATTRIBUTE_MISMATCH"),
            );
        }
    }
    let prepared = match parts {
        Some(parts) if out.is_empty() => {
            let mut signatures = personal.parsed;
            signatures.extend(org_signature.parsed);
            let signers = signers_of(&header, &parts);
            let organizations = organizations::places_of(input.organization, input.department, &header);
            Some(Prepared {
                parts,
                personal: personal.request,
                org_signature: org_signature.request,
                signatures,
                signers,
                organizations,
            })
        }
        _ => None,
    };
    Checked { violations: out, prepared, parsed: true }
}

struct PersonalOutcome {
    request: Vec<PersonalSignature>,
    parsed: Vec<(String, ParsedSignature)>,
}

/// Each personal signature parsed, checked against the bytes and matched to a signer; then
/// all of them together; then the kind's signer roles.
fn personal_signatures(
    input: &DocumentInput<'_>,
    header: &CdaHeader,
    parts: Option<&RequestParts>,
    created: Option<DateTime<FixedOffset>>,
    digests: &mut egisz_semd::DocumentDigests<'_>,
    out: &mut Vec<Violation>,
) -> PersonalOutcome {
    let mut request = Vec::new();
    let mut parsed = Vec::new();
    if input.signatures.is_empty() {
        out.push(Violation::new(
            rules::NO_SIGNATURE,
            "/signatures",
            "нужна хотя бы одна подпись медицинского работника",
        ));
    }
    let mut roles: Vec<&str> = Vec::new();
    for (i, s) in input.signatures.iter().enumerate() {
        let at = format!("/signatures/{i}");
        let Some(s) = s else { continue };
        let role = s.role.trim();
        let role_ok = !role.is_empty() && role.bytes().all(|b| b.is_ascii_digit());
        if !role_ok || s.role_version.trim().is_empty() {
            out.push(
                Violation::new(
                    "signer_role",
                    format!("{at}/role"),
                    "роль подписанта — код НСИ 1.2.643.5.1.13.13.99.2.368 с версией",
                )
                .prevents("VALIDATION_ERROR"),
            );
        } else {
            roles.push(role);
        }
        let sig = match egisz_semd::parse_signature(s.cms) {
            Ok(sig) => sig,
            Err(vs) => {
                out.extend(vs.into_iter().map(|v| under(&at, v)));
                continue;
            }
        };
        if let Some(created) = created {
            out.extend(egisz_semd::check_signature_with(&sig, digests, created).into_iter().map(|v| under(&at, v)));
        }
        let role = Coded { code: role.to_owned(), version: s.role_version.trim().to_owned() };
        match (parts, &sig.certificate.snils) {
            (Some(p), Some(snils)) => match p.signer(snils, role) {
                Some(signer) => request.push(PersonalSignature {
                    signer,
                    signature: SignatureData { checksum: egisz_contract::remd::checksum(s.cms), data: s.cms.to_vec() },
                }),
                None => out.push(Violation::new(
                    rules::VALUE_MISMATCH_METADATA_AND_CERTIFICATE,
                    at.clone(),
                    "СНИЛС в сертификате подписи не совпадает ни с одним автором или лицом, придавшим документу юридическую силу",
                )),
            },
            (_, None) => out.push(Violation::new(
                rules::VALUE_MISMATCH_METADATA_AND_CERTIFICATE,
                at.clone(),
                "в сертификате подписи нет СНИЛС медицинского работника",
            )),
            (None, Some(_)) => {}
        }
        parsed.push((at, sig));
    }
    if !parsed.is_empty() {
        let only: Vec<ParsedSignature> = parsed.iter().map(|(_, s)| s.clone()).collect();
        let mut seen = std::collections::HashSet::new();
        for mut v in egisz_semd::check_personal_signatures(header, &only) {
            if seen.insert(v.rule) {
                v.path = submitted_path(&v.path, &parsed);
                out.push(v);
            }
        }
    }
    for required in &input.kind.signer_roles {
        if !input.signatures.is_empty() && !roles.contains(&required.as_str()) {
            out.push(Violation::new(
                rules::K4,
                "/signatures",
                format!("для вида {} нужна подпись сотрудника с ролью {required}", input.kind.kind),
            ));
        }
    }
    PersonalOutcome { request, parsed }
}

/// A path of [`egisz_semd::check_personal_signatures`] (`/signatures[n]…`, the n-th parsed
/// signature) as the path of the signature as submitted (`/signatures/<index>…`).
fn submitted_path(path: &str, parsed: &[(String, ParsedSignature)]) -> String {
    let Some(rest) = path.strip_prefix("/signatures[") else { return path.to_owned() };
    let Some((n, tail)) = rest.split_once(']') else { return path.to_owned() };
    match n.parse::<usize>().ok().and_then(|n| parsed.get(n.wrapping_sub(1))) {
        Some((at, _)) => format!("{at}{tail}"),
        None => path.to_owned(),
    }
}

struct OrgOutcome {
    request: Option<SignatureData>,
    parsed: Option<(String, ParsedSignature)>,
}

fn org_signature(
    input: &DocumentInput<'_>,
    created: Option<DateTime<FixedOffset>>,
    digests: &mut egisz_semd::DocumentDigests<'_>,
    out: &mut Vec<Violation>,
) -> OrgOutcome {
    const AT: &str = "/org_signature";
    let none = OrgOutcome { request: None, parsed: None };
    match (input.org_signature, input.kind.org_signature) {
        (None, OrgSignature::Required) => {
            out.push(Violation::new(rules::K3, AT, "для этого вида нужна подпись медицинской организации"));
            none
        }
        (Some(_), OrgSignature::Forbidden) => {
            out.push(Violation::new(rules::K3, AT, "для этого вида подпись организации не передаётся"));
            none
        }
        (None, _) | (Some(None), _) => none,
        (Some(Some(cms)), _) => match egisz_semd::parse_signature(cms) {
            Err(vs) => {
                out.extend(vs.into_iter().map(|v| under(AT, v)));
                none
            }
            Ok(sig) => {
                if let Some(created) = created {
                    out.extend(
                        egisz_semd::check_org_signature_with(&sig, digests, created).into_iter().map(|v| under(AT, v)),
                    );
                }
                OrgOutcome {
                    request: Some(SignatureData { checksum: egisz_contract::remd::checksum(cms), data: cms.to_vec() }),
                    parsed: Some((AT.to_owned(), sig)),
                }
            }
        },
    }
}

/// Every author and the legal authenticator, once per SNILS, with the path they were
/// found at.
fn signers_of(header: &CdaHeader, parts: &RequestParts) -> Vec<SignerToCheck> {
    let path_of = |snils: &egisz_contract::Snils| {
        let author = header.authors.iter().position(|a| a.assigned.as_ref().and_then(|p| p.snils()) == Some(snils));
        match author {
            Some(i) => format!("/ClinicalDocument/author[{}]/assignedAuthor", i + 1),
            None => "/ClinicalDocument/legalAuthenticator/assignedEntity".to_owned(),
        }
    };
    parts
        .signers
        .iter()
        .map(|s| SignerToCheck {
            snils: s.snils.clone(),
            position: s.position.code.clone(),
            path: path_of(&s.snils),
            last_name: s.last_name.clone(),
            first_name: s.first_name.clone(),
            middle_name: s.middle_name.clone(),
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use chrono::TimeZone;
    use egisz_gost::test_pki::{SANDBOX_CA_SEED, TestCa, TestSigner};

    use super::*;
    use crate::mappings::Mappings;

    const SAMPLE: &str = include_str!("../../semd/tests/data/tmk-protocol-40.xml");
    const MO: &str = "1.2.643.5.1.13.13.12.2.42.2917";

    fn at(year: i32) -> i64 {
        chrono::Utc.with_ymd_and_hms(year, 1, 1, 0, 0, 0).unwrap().timestamp()
    }

    fn ca() -> TestCa {
        TestCa::new(egisz_gost::Gost::load().expect("the GOST engine"), SANDBOX_CA_SEED)
    }

    fn signer(snils: &str) -> TestSigner {
        ca().issue_doctor(snils, snils, at(2020), at(2030))
    }

    fn org_signer() -> TestSigner {
        ca().issue_organization("mo", "1024200702360", at(2020), at(2030))
    }

    /// The rules of `check_document` for `kind` (changed by `tweak`), as `(rule, remd_code)`.
    fn rules_of(
        document: &str,
        tweak: impl FnOnce(&mut KindRule),
        org: Option<&[u8]>,
        roles: &[&str],
    ) -> Vec<(&'static str, &'static str)> {
        let mappings = Mappings::embedded().unwrap();
        let mut kind = mappings.kind(40).unwrap().clone();
        tweak(&mut kind);
        let organization = Oid::parse(MO).unwrap();
        let cms = signer("20311784514").sign_detached(document.as_bytes());
        let offset = chrono::FixedOffset::east_opt(7 * 3600).unwrap();
        let input = DocumentInput {
            kind: &kind,
            organization: &organization,
            department: None,
            content: document.as_bytes(),
            signatures: roles.iter().map(|r| Some(PersonalInput { role: r, role_version: "2.4", cms: &cms })).collect(),
            org_signature: org.map(Some),
        };
        let now = chrono::Utc.with_ymd_and_hms(2026, 12, 1, 0, 0, 0).unwrap().with_timezone(&offset);
        let checked = check_document(&input, mappings.dictionaries(), now, offset);
        assert_eq!(checked.prepared.is_some(), checked.violations.is_empty());
        checked.violations.iter().map(|v| (v.rule, v.remd_code)).collect()
    }

    #[test]
    fn the_sample_passes_its_profile() {
        assert_eq!(rules_of(SAMPLE, |_| {}, None, &["1"]), vec![]);
    }

    #[test]
    fn the_organisation_signature_as_the_kind_wants_it() {
        let org = org_signer().sign_detached(SAMPLE.as_bytes());
        let required = |k: &mut KindRule| k.org_signature = OrgSignature::Required;
        let forbidden = |k: &mut KindRule| k.org_signature = OrgSignature::Forbidden;
        assert_eq!(rules_of(SAMPLE, required, None, &["1"]), [("K3", "ORG_SIGNATURE_OCCURRENCE_MISMATCH")]);
        assert_eq!(rules_of(SAMPLE, required, Some(&org), &["1"]), vec![]);
        assert_eq!(rules_of(SAMPLE, forbidden, Some(&org), &["1"]), [("K3", "ORG_SIGNATURE_OCCURRENCE_MISMATCH")]);
        assert_eq!(rules_of(SAMPLE, |_| {}, Some(&org), &["1"]), vec![], "optional: taken when given");
        let over_other = org_signer().sign_detached(b"another document");
        assert_eq!(
            rules_of(SAMPLE, |_| {}, Some(&over_other), &["1"]),
            [("INCONSISTENT_DIGESTS", "INCONSISTENT_DIGESTS")]
        );
    }

    #[test]
    fn the_patient_snils_when_the_kind_requires_it() {
        let without = SAMPLE.replace(r#"<id root="1.2.643.100.3" extension="15643219866"/>"#, "");
        assert_eq!(rules_of(&without, |_| {}, None, &["1"]), vec![], "kind 40 does not require it");
        let required = |k: &mut KindRule| k.patient_snils_required = true;
        assert_eq!(rules_of(&without, required, None, &["1"]), [("H8", "NO_SNILS")]);
    }

    #[test]
    fn signer_roles_and_sections_of_the_profile() {
        assert_eq!(rules_of(SAMPLE, |_| {}, None, &["2"]), [("K4", "ROLE_OCCURRENCE_MISMATCH")]);
        let two_roles = |k: &mut KindRule| k.signer_roles = vec!["1".into(), "3".into()];
        assert_eq!(rules_of(SAMPLE, two_roles, None, &["1"]), [("K4", "ROLE_OCCURRENCE_MISMATCH")]);
        let more = |k: &mut KindRule| k.required_sections.push("RECOM".into());
        assert_eq!(rules_of(SAMPLE, more, None, &["1"]), [("H12", "VALIDATION_ERROR")]);
        let no_template = |k: &mut KindRule| k.template_ids = vec!["1.2.3".into()];
        assert_eq!(rules_of(SAMPLE, no_template, None, &["1"]), [("K1", "INVALID_CONTENT")]);
    }

    #[test]
    fn paths_of_checks_across_signatures_name_the_submitted_signature() {
        let parsed = |at: &str| {
            (at.to_owned(), egisz_semd::parse_signature(&signer("20311784514").sign_detached(b"x")).unwrap())
        };
        let list = [parsed("/signatures/0"), parsed("/signatures/2")];
        assert_eq!(submitted_path("/signatures[2]/ContentInfo", &list), "/signatures/2/ContentInfo");
        assert_eq!(
            submitted_path("/ClinicalDocument/legalAuthenticator", &list),
            "/ClinicalDocument/legalAuthenticator"
        );
        assert_eq!(submitted_path("/signatures[9]", &list), "/signatures[9]");
    }
}
