//! What the emulator checks of a pulled file beyond its header, as REMD does: each
//! signature (its container, the digest of the file by the signature's own algorithm, the
//! certificate's dates and SNILS, the signature value and chain against the sandbox's test
//! CA), the organisation's signature (an OGRN), the kind's template, and the dictionary
//! versions and position names it knows. Pure; its own tables (REMD keeps its own).
//! Messages name signatures by position, never by value.

use chrono::{DateTime, FixedOffset, Utc};
use egisz_contract::remd::{RegisterDocument, RemdMessage};
use egisz_semd::signature::{GOST_SIGNATURE_ALGORITHMS, OID_STREEBOG_256, OID_STREEBOG_512};
use egisz_semd::{CdaHeader, ParsedSignature};
use egisz_verifier::gost::GostVerifier;
use serde_json::Value;
use sha2::Digest;

use super::codes::message;
use crate::Roster;

pub(crate) const INCONSISTENT_DIGESTS: &str = "INCONSISTENT_DIGESTS";
pub(crate) const UNKNOWN_ALGORITHM: &str = "UNKNOWN_ALGORITHM";
pub(crate) const DOC_DATE_MISMATCH_CERT_NOT_BEFORE: &str = "DOC_DATE_MISMATCH_CERT_NOT_BEFORE";
pub(crate) const DOC_DATE_MISMATCH_CERT_NOT_AFTER: &str = "DOC_DATE_MISMATCH_CERT_NOT_AFTER";
pub(crate) const VALUE_MISMATCH_METADATA_AND_CERTIFICATE: &str = "VALUE_MISMATCH_METADATA_AND_CERTIFICATE";
pub(crate) const INVALID_DICTIONARY_VERSION: &str = "INVALID_DICTIONARY_VERSION";
pub(crate) const INVALID_ELEMENT_VALUE_NAME: &str = "INVALID_ELEMENT_VALUE_NAME";
pub(crate) const INVALID_CONTENT: &str = "INVALID_CONTENT";
pub(crate) const INVALID_CERT_KEY_USAGE: &str = "INVALID_CERT_KEY_USAGE";

/// The signature codes the emulator emits (besides those of the container's parse and of
/// the test verifier, which are REMD codes by construction).
#[cfg(test)]
pub(crate) const EMITTED: &[&str] = &[
    INCONSISTENT_DIGESTS,
    UNKNOWN_ALGORITHM,
    DOC_DATE_MISMATCH_CERT_NOT_BEFORE,
    DOC_DATE_MISMATCH_CERT_NOT_AFTER,
    VALUE_MISMATCH_METADATA_AND_CERTIFICATE,
    INVALID_DICTIONARY_VERSION,
    INVALID_ELEMENT_VALUE_NAME,
    "SIGNATURE_DECODING_ERROR",
    "WRONG_SIGNATURE_FORMAT",
    "MULTIPLE_SIGNERS",
    "NO_END_ENTITY_CERTIFICATE",
    "SIGNATURE_VERIFICATION_ERROR",
    "CANT_BUILD_CERT_CHAIN_TO_ACCREDITED_CA_CERT",
    INVALID_CERT_KEY_USAGE,
    "PERSONAL_SIG_CERT_NOT_ACTUAL_ON_CHECK_DT",
];

/// Kind → the `templateId` REMD expects (only kind 40's is modelled, SEMD-TMK.md).
const TEMPLATES: &[(u32, &str)] = &[(40, "1.2.643.5.1.13.13.14.36.9.1")];
/// Dictionary versions the emulator accepts for the consultation kinds.
const VERSIONS: &[(&str, &[&str])] =
    &[("1.2.643.5.1.13.13.11.1522", &["4.65"]), ("1.2.643.5.1.13.13.11.1002", &["7.5"])];

/// The file's digest by a GOST R 34.11-2012 algorithm; `None` for any other (REMD takes
/// GOST only).
fn file_digest(oid: &str, content: &[u8]) -> Option<Vec<u8>> {
    if oid == OID_STREEBOG_256.to_string() {
        Some(streebog::Streebog256::digest(content).to_vec())
    } else if oid == OID_STREEBOG_512.to_string() {
        Some(streebog::Streebog512::digest(content).to_vec())
    } else {
        None
    }
}

/// The certificate's dates at the creation time and at the signing time, and its key usage.
fn certificate_dates(sig: &ParsedSignature, created: DateTime<FixedOffset>, subject: &str, out: &mut Vec<RemdMessage>) {
    let times = std::iter::once(created.with_timezone(&Utc)).chain(sig.signing_time);
    let mut codes = Vec::new();
    for at in times {
        if at < sig.certificate.not_before {
            codes.push(DOC_DATE_MISMATCH_CERT_NOT_BEFORE);
        }
        if at > sig.certificate.not_after {
            codes.push(DOC_DATE_MISMATCH_CERT_NOT_AFTER);
        }
    }
    codes.dedup();
    out.extend(codes.into_iter().map(|c| message(c, Some(subject))));
    if !sig.certificate.key_usage.is_some_and(|k| k.allows_signing()) {
        out.push(message(INVALID_CERT_KEY_USAGE, Some(subject)));
    }
}

/// One container: parsed, its digest against the file, its value and chain (at the
/// document's creation time).
fn container(
    data: &[u8],
    content: &[u8],
    created: DateTime<FixedOffset>,
    trust: &GostVerifier,
    subject: &str,
    out: &mut Vec<RemdMessage>,
) -> Option<ParsedSignature> {
    let sig = match egisz_semd::parse_signature(data) {
        Ok(sig) => sig,
        Err(violations) => {
            out.extend(violations.iter().take(1).map(|v| message(v.rule, Some(subject))));
            return None;
        }
    };
    match file_digest(&sig.digest_algorithm.oid(), content) {
        None => out.push(message(UNKNOWN_ALGORITHM, Some(subject))),
        Some(d) if d != sig.message_digest => out.push(message(INCONSISTENT_DIGESTS, Some(subject))),
        Some(_) => {}
    }
    if !GOST_SIGNATURE_ALGORITHMS.contains(&sig.signature_algorithm.as_str()) {
        out.push(message(UNKNOWN_ALGORITHM, Some(subject)));
    } else if let Err(v) =
        egisz_verifier::gost::check_value_and_chain(trust.gost(), &trust.trust_store(), &sig, created)
    {
        out.push(message(v.rule, Some(subject)));
    }
    Some(sig)
}

/// Every problem of the signatures of `request` over `content`.
pub(crate) fn check_signatures(
    request: &RegisterDocument,
    content: &[u8],
    trust: &GostVerifier,
    out: &mut Vec<RemdMessage>,
) {
    for (n, item) in request.personal_signatures.iter().enumerate() {
        let subject = format!("подпись №{}", n + 1);
        let Some(sig) = container(&item.signature.data, content, request.creation_date_time, trust, &subject, out)
        else {
            continue;
        };
        certificate_dates(&sig, request.creation_date_time, &subject, out);
        if sig.certificate.snils.as_ref() != Some(&item.signer.snils) {
            out.push(message(VALUE_MISMATCH_METADATA_AND_CERTIFICATE, Some(&subject)));
        }
    }
    if let Some(org) = &request.org_signature {
        let subject = "подпись организации";
        if let Some(sig) = container(&org.data, content, request.creation_date_time, trust, subject, out) {
            certificate_dates(&sig, request.creation_date_time, subject, out);
            if sig.certificate.ogrn.is_none() {
                out.push(message(VALUE_MISMATCH_METADATA_AND_CERTIFICATE, Some(subject)));
            }
        }
    }
}

/// The kind's template, the dictionary versions of the document's type and of the signers'
/// positions, and the position names against FRMR's cards.
pub(crate) fn check_header(
    request: &RegisterDocument,
    header: &CdaHeader,
    roster: &Roster,
    out: &mut Vec<RemdMessage>,
) {
    if let Some((_, template)) = TEMPLATES.iter().find(|(k, _)| *k == request.kind)
        && !header.template_ids.iter().any(|t| t == template)
    {
        out.push(message(INVALID_CONTENT, Some("templateId")));
    }
    let people = header
        .authors
        .iter()
        .filter_map(|a| a.assigned.as_ref())
        .chain(header.legal_authenticators.iter().filter_map(|l| l.assigned.as_ref()));
    let coded = header.code.iter().chain(people.clone().filter_map(|p| p.position.as_ref()));
    for c in coded {
        let (Some(system), version) = (c.code_system.as_deref(), c.code_system_version.as_deref()) else { continue };
        if let Some((_, allowed)) = VERSIONS.iter().find(|(oid, _)| *oid == system)
            && !version.is_some_and(|v| allowed.contains(&v))
        {
            out.push(message(INVALID_DICTIONARY_VERSION, Some(system)));
        }
    }
    for p in people {
        let (Some(snils), Some(position)) = (p.snils(), p.position.as_ref()) else { continue };
        let Some(person) = roster.person(snils.as_str()) else { continue };
        let name = person
            .get("personCard")
            .and_then(Value::as_array)
            .into_iter()
            .flatten()
            .find(|c| c.get("fedPositionId").and_then(Value::as_str) == position.code.as_deref())
            .and_then(|c| c.get("fedPosition").and_then(Value::as_str));
        if let Some(name) = name
            && position.display_name.as_deref().map(str::trim) != Some(name)
        {
            out.push(message(INVALID_ELEMENT_VALUE_NAME, Some("1.2.643.5.1.13.13.11.1002")));
        }
    }
}
