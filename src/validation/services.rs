//! The edge of validation: asking FRMR (through the staff verification service, with its
//! cache, coalescing and circuit breaker) about each signer and the configured signature
//! verifier about each signature, concurrently, and turning their answers into a policy
//! [`Answer`]; running the kind's rule package (XSD and schematron) over the document. What
//! the answers mean is decided in [`super::signers`] and [`super::policy`].

use std::sync::Arc;

use chrono::NaiveDate;
use egisz_contract::Oid;
use egisz_semd::{ParsedSignature, SignatureVerifier, Violation, rules};

use super::SignerToCheck;
use super::policy::Answer;
use crate::staff::LookupError;
use crate::staff::StaffService;

/// Every signer against FRMR on `date` in `organization`: a finding for each signer FRMR
/// answered about, a warning for each it did not.
pub async fn check_signers(
    staff: &StaffService,
    organization: &Oid,
    date: NaiveDate,
    signers: &[SignerToCheck],
) -> Answer {
    // Intake's own share of FRMR: verification traffic cannot take it.
    let lookups = futures::future::join_all(
        signers.iter().map(|s| staff.lookup(crate::staff::Asker::Intake, &s.snils, organization)),
    )
    .await;
    judge_signers(
        signers,
        organization,
        date,
        lookups.into_iter().map(|lookup| match lookup {
            Ok(l) => Ok(l.entry.person),
            Err(e) => Err(match &e {
                LookupError::Unavailable { detail, .. } => detail.clone(),
                LookupError::Rejected => "ФРМР отклонил запрос шлюза".to_owned(),
                LookupError::OverShare { .. } => "слишком много одновременных обращений к ФРМР".to_owned(),
            }),
        }),
    )
}

/// FRMR's answer about each signer, in order (the person, or why FRMR could not be asked),
/// as a policy [`Answer`]: a finding for each signer FRMR answered about, a warning for each
/// it did not. Intake (through the staff service) and `validate` (through an FRMR client of
/// its own) both decide here.
pub fn judge_signers(
    signers: &[SignerToCheck],
    organization: &Oid,
    date: NaiveDate,
    answers: impl IntoIterator<Item = Result<Option<egisz_contract::frmr::FrmrPerson>, String>>,
) -> Answer {
    let mut answer = Answer::default();
    for (signer, person) in signers.iter().zip(answers) {
        match person {
            Ok(person) => answer.findings.extend(super::signers::judge(signer, organization, date, person.as_ref())),
            Err(why) => answer.unreachable.push(unchecked_signer(&signer.path, &why)),
        }
    }
    answer
}

/// The warning for a signer FRMR could not be asked about.
pub fn unchecked_signer(path: &str, why: &str) -> Violation {
    Violation::new(rules::F1, path, format!("подписант не проверен по ФРМР ({why}); РЭМД проверит его при регистрации"))
        .prevents("RUNTIME_ERROR")
}

/// The kind's rule package over `content` (which passed the bounded parse): its findings
/// sorted by the kind's policies, and the package's identity. Nothing when the kind has no
/// package. Blocks (libxml2 on its threads, the schematron here): call it from a blocking
/// thread.
pub fn check_package(
    packages: Option<&egisz_packages::Catalog>,
    config: &crate::validation::settings::ValidationConfig,
    kind: u32,
    content: &[u8],
) -> (super::policy::Sorted, Option<egisz_packages::PackageId>) {
    let mut sorted = super::policy::Sorted::default();
    let policies =
        super::policy::PackagePolicies { xsd: config.xsd.for_kind(kind), schematron: config.schematron.for_kind(kind) };
    let Some(found) = packages.and_then(|p| p.validate(kind, content, policies.layers())) else {
        return (sorted, None);
    };
    let package = found.package.clone();
    super::policy::apply_package(policies, found, &mut sorted);
    (sorted, package)
}

/// The configured signature verifier, if any.
#[derive(Clone, Default)]
pub struct Verification {
    verifier: Option<Arc<dyn SignatureVerifier>>,
}

impl Verification {
    /// `none`: structure and digest checks only.
    pub fn none() -> Self {
        Self { verifier: None }
    }

    pub fn with(verifier: Arc<dyn SignatureVerifier>) -> Self {
        Self { verifier: Some(verifier) }
    }

    pub fn is_configured(&self) -> bool {
        self.verifier.is_some()
    }

    /// Every signature through the verifier; `None` when there is no verifier. Paths are
    /// put under the path each signature was submitted at.
    /// `created`: the document's creation time, which chains are judged at.
    pub async fn check(
        &self,
        signatures: &[(String, ParsedSignature)],
        document: &[u8],
        created: chrono::DateTime<chrono::FixedOffset>,
    ) -> Option<Answer> {
        let verifier = self.verifier.as_ref()?;
        let verdicts =
            futures::future::join_all(signatures.iter().map(|(_, s)| verifier.verify(s, document, created))).await;
        let mut answer = Answer::default();
        for ((at, _), verdict) in signatures.iter().zip(verdicts) {
            match verdict {
                Ok(violations) => answer.findings.extend(violations.into_iter().map(|mut v| {
                    v.path = format!("{at}{}", v.path);
                    v
                })),
                Err(failure) => answer.unreachable.push(
                    Violation::new(
                        rules::V1,
                        at.clone(),
                        format!(
                            "подпись не проверена службой проверки подписей ({}); РЭМД проверит её при регистрации",
                            failure.reason()
                        ),
                    )
                    .prevents("SIGNATURE_VERIFICATION_ERROR"),
                ),
            }
        }
        Some(answer)
    }
}
