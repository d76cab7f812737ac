//! What a check found wrong: the rule, where, and a short explanation in Russian.

use std::fmt;

/// One broken rule.
///
/// `rule` is a stable id: `H1`…`H12` (the header rules of `SEMD-TMK.md`), `REQ` (a field the
/// `registerDocument` request needs), `XML` (not well-formed, or over a limit), or a REMD
/// message code (NSI 1.2.643.5.1.13.13.99.2.305) for the signature checks, so that one
/// explanation table serves both what the gateway finds and what REMD answers.
///
/// `message` never quotes a name, a birth date or a SNILS: it is safe to log and to show.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct Violation {
    pub rule: &'static str,
    /// An XPath-like location, e.g. `/ClinicalDocument/recordTarget/patientRole/id[2]/@extension`.
    pub path: String,
    pub message: String,
}

impl Violation {
    pub fn new(rule: &'static str, path: impl Into<String>, message: impl Into<String>) -> Self {
        Self { rule, path: path.into(), message: message.into() }
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {}", self.rule, self.path, self.message)
    }
}

/// Rule ids, in one place.
pub mod rules {
    /// Not well-formed XML, or over a size/depth limit.
    pub const XML: &str = "XML";
    pub const H1: &str = "H1";
    pub const H2: &str = "H2";
    pub const H3: &str = "H3";
    pub const H4: &str = "H4";
    pub const H5: &str = "H5";
    pub const H6: &str = "H6";
    pub const H7: &str = "H7";
    pub const H8: &str = "H8";
    pub const H9: &str = "H9";
    pub const H10: &str = "H10";
    pub const H11: &str = "H11";
    pub const H12: &str = "H12";
    /// A field the `registerDocument` request needs that no H-rule covers (patient name,
    /// gender, birth date; signer names; position version).
    pub const REQ: &str = "REQ";

    // Signature checks: REMD message codes (NSI 1.2.643.5.1.13.13.99.2.305).
    /// Not a DER CMS ContentInfo/SignedData, or a part of it could not be decoded.
    pub const SIGNATURE_DECODING_ERROR: &str = "SIGNATURE_DECODING_ERROR";
    /// A CMS container of another shape: not SignedData, not detached, no signed attributes,
    /// no messageDigest.
    pub const WRONG_SIGNATURE_FORMAT: &str = "WRONG_SIGNATURE_FORMAT";
    /// No SignerInfo at all.
    pub const NO_SIGNATURE: &str = "NO_SIGNATURE";
    /// More than one SignerInfo in one container.
    pub const MULTIPLE_SIGNERS: &str = "MULTIPLE_SIGNERS";
    /// The signer's certificate is not embedded.
    pub const NO_END_ENTITY_CERTIFICATE: &str = "NO_END_ENTITY_CERTIFICATE";
    /// A digest algorithm that is neither GOST R 34.11-2012 nor SHA-256.
    pub const UNKNOWN_ALGORITHM: &str = "UNKNOWN_ALGORITHM";
    /// The signature is not over these bytes (messageDigest differs), or its value is wrong.
    pub const SIGNATURE_VERIFICATION_ERROR: &str = "SIGNATURE_VERIFICATION_ERROR";
    /// The certificate does not chain to the trusted CA.
    pub const CANT_BUILD_CERT_CHAIN_TO_ACCREDITED_CA_CERT: &str = "CANT_BUILD_CERT_CHAIN_TO_ACCREDITED_CA_CERT";
    /// The document was created before the certificate became valid.
    pub const DOC_DATE_MISMATCH_CERT_NOT_BEFORE: &str = "DOC_DATE_MISMATCH_CERT_NOT_BEFORE";
    /// The document was created after the certificate expired.
    pub const DOC_DATE_MISMATCH_CERT_NOT_AFTER: &str = "DOC_DATE_MISMATCH_CERT_NOT_AFTER";
    /// The certificate's SNILS is not that of any author or the legal authenticator.
    pub const VALUE_MISMATCH_METADATA_AND_CERTIFICATE: &str = "VALUE_MISMATCH_METADATA_AND_CERTIFICATE";
    /// Signatures with the same digest algorithm carry different digests.
    pub const INCONSISTENT_DIGESTS: &str = "INCONSISTENT_DIGESTS";
    /// Two personal signatures by the same person.
    pub const SIGNATURE_DUPLICATION: &str = "SIGNATURE_DUPLICATION";
    /// No personal signature by the legal authenticator.
    pub const LEGAL_AUTHENTICATOR_NOT_FOUND: &str = "LEGAL_AUTHENTICATOR_NOT_FOUND";
}
