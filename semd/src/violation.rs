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
    /// The REMD message code this violation would have drawn from REMD (the one the check
    /// prevents): [`rules::remd_code`] of the rule unless the check names a more precise one.
    pub remd_code: &'static str,
    /// The ministry's own code of the broken rule, where its package gives one: the head
    /// of a schematron message (`У1-19`, `Main05-1`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

impl Violation {
    pub fn new(rule: &'static str, path: impl Into<String>, message: impl Into<String>) -> Self {
        Self { rule, path: path.into(), message: message.into(), remd_code: rules::remd_code(rule), code: None }
    }

    /// The same violation, with the ministry's code of the rule.
    pub fn with_code(mut self, code: Option<String>) -> Self {
        self.code = code;
        self
    }

    /// The same violation, naming the REMD code it prevents.
    pub fn prevents(mut self, remd_code: &'static str) -> Self {
        self.remd_code = remd_code;
        self
    }
}

impl fmt::Display for Violation {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}: {} ({})", self.rule, self.path, self.message, self.remd_code)
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
    /// Coded elements against the dictionaries of the kind: the version allowed, the code in
    /// the dictionary, the display name the dictionary's.
    pub const H13: &str = "H13";

    // The kind's profile (`mappings/kind-profiles.toml`) and the request.
    /// `ClinicalDocument/templateId`: one of the kind's templates.
    pub const K1: &str = "K1";
    /// The document's creation date inside the kind's window (NSI 1520 from/until).
    pub const K2: &str = "K2";
    /// The organisation's signature present where the kind requires it, absent where the
    /// kind forbids it.
    pub const K3: &str = "K3";
    /// Every signer role the kind requires has a personal signature.
    pub const K4: &str = "K4";
    /// Every signer (authors and the legal authenticator who signed) in FRMR, employed by the
    /// organisation on the document's date, in the position the document gives.
    pub const F1: &str = "F1";
    /// Every organisation and department the document names (the submitting organisation,
    /// the custodian, each author's and the legal authenticator's) in FRMO and valid on the
    /// document's date (the gateway's copy of FRMO; `ORG_NOT_FOUND_IN_FRMO`,
    /// `NO_ORG_ON_DATE`, `NO_DEPARTMENT`).
    pub const O1: &str = "O1";
    /// Every signature's value and certificate chain verified by the configured verifier
    /// (the verifier's own findings carry REMD codes as rule ids; `V1` is "not verified").
    pub const V1: &str = "V1";

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
    /// The certificate's key usage does not allow signing.
    pub const INVALID_CERT_KEY_USAGE: &str = "INVALID_CERT_KEY_USAGE";
    /// The signer's certificate is revoked (REMD checks revocation at the time of its check).
    pub const PERSONAL_SIG_CERT_NOT_ACTUAL_ON_CHECK_DT: &str = "PERSONAL_SIG_CERT_NOT_ACTUAL_ON_CHECK_DT";
    /// No CRL (nor OCSP) could be had for a certificate of the chain.
    pub const CA_INACCESSIBILITY: &str = "CA_INACCESSIBILITY";

    // The ministry's rule package of the kind (`docs/validation.md`, "Rule packages").
    /// How the bytes are encoded: a byte-order mark, UTF-16, or a declared encoding other
    /// than UTF-8 (REMD reads UTF-8 only).
    pub const ENC: &str = "ENC";
    /// The kind's XML Schema (the package's `CDA.xsd`).
    pub const XSD: &str = "XSD";
    /// The kind's schematron: a failed assert (refuses by policy), a successful report (a
    /// warning), or a run that stopped on an XPath error.
    pub const SCH: &str = "SCH";
    /// The kind's package could not be applied (broken, or its run over its budget): a
    /// warning naming what was not checked.
    pub const PKG: &str = "PKG";

    /// Every rule id this crate and the gateway's intake report, in the order of the docs.
    pub const ALL: [&str; 43] = [
        XML,
        ENC,
        H1,
        H2,
        H3,
        H4,
        H5,
        H6,
        H7,
        H8,
        H9,
        H10,
        H11,
        H12,
        H13,
        REQ,
        K1,
        K2,
        K3,
        K4,
        XSD,
        SCH,
        PKG,
        F1,
        O1,
        V1,
        SIGNATURE_DECODING_ERROR,
        WRONG_SIGNATURE_FORMAT,
        NO_SIGNATURE,
        MULTIPLE_SIGNERS,
        NO_END_ENTITY_CERTIFICATE,
        UNKNOWN_ALGORITHM,
        SIGNATURE_VERIFICATION_ERROR,
        CANT_BUILD_CERT_CHAIN_TO_ACCREDITED_CA_CERT,
        DOC_DATE_MISMATCH_CERT_NOT_BEFORE,
        DOC_DATE_MISMATCH_CERT_NOT_AFTER,
        VALUE_MISMATCH_METADATA_AND_CERTIFICATE,
        INCONSISTENT_DIGESTS,
        SIGNATURE_DUPLICATION,
        LEGAL_AUTHENTICATOR_NOT_FOUND,
        INVALID_CERT_KEY_USAGE,
        PERSONAL_SIG_CERT_NOT_ACTUAL_ON_CHECK_DT,
        CA_INACCESSIBILITY,
    ];

    /// The REMD code a violation of `rule` draws by default. Header rules REMD checks with
    /// its schematrons answer `VALIDATION_ERROR` **[model: the code REMD gives a failed
    /// schematron assertion is not public]**; a check that knows better names its code with
    /// [`super::Violation::prevents`]. Rule ids that are REMD codes are their own code.
    pub const fn remd_code(rule: &'static str) -> &'static str {
        match rule.as_bytes() {
            b"XML" | b"H1" | b"ENC" => "XML_VALIDATION_ERROR",
            b"XSD" | b"SCH" | b"PKG" => "VALIDATION_ERROR",
            b"H4" | b"K1" => "INVALID_CONTENT",
            b"K2" => "NO_DOCUMENT_KIND_ON_DATE",
            b"K3" => "ORG_SIGNATURE_OCCURRENCE_MISMATCH",
            b"K4" => "ROLE_OCCURRENCE_MISMATCH",
            b"H13" => "INVALID_DICTIONARY_VERSION",
            b"F1" => "PERSON_NOT_FOUND",
            b"O1" => "ORG_NOT_FOUND_IN_FRMO",
            b"V1" => "SIGNATURE_VERIFICATION_ERROR",
            b"H2" | b"H3" | b"H5" | b"H6" | b"H7" | b"H8" | b"H9" | b"H10" | b"H11" | b"H12" | b"REQ" => {
                "VALIDATION_ERROR"
            }
            _ => rule,
        }
    }
}
