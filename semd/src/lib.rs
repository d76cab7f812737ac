//! # egisz-semd
//!
//! Structured medical documents (SEMD, HL7 CDA R2) as the gateway receives them: parsed
//! once, checked against what REMD would reject, and turned into the data of REMD's
//! `registerDocument` request, so that nothing in the request is typed twice.
//!
//! ## What this crate owns
//!
//! - [`CdaHeader::parse`]: one namespace-aware pass over the CDA header into typed values
//!   (rule `ENC` — UTF-8 without a byte-order mark, each other encoding named
//!   ([`header::encoding`]) — rule H1 — no DTD, `ClinicalDocument` in `urn:hl7-org:v3` — and
//!   size/depth limits are enforced here);
//! - [`check`]: the header rules H2–H12 of `shared/federal/SEMD-TMK.md` against
//!   [`Expectations`] (the kind, the submitting organisation, the time), every violation
//!   reported with its rule id, an XPath-like location, a Russian message and the REMD code
//!   it prevents; the kind's templates (K1) and required sections come in [`Expectations`];
//! - [`check_dictionaries`]: rule H13 over every coded element, against the dictionaries the
//!   caller holds ([`Dictionaries`]: the gateway's `mappings/` and NSI copies);
//! - [`register_request_parts`]: the patient, the signers (minus their role), the creation
//!   time and the `localUid` of the request, derived from the header;
//! - [`signature`]: detached CMS signatures (DER or BER, [`ber`]) parsed with RustCrypto —
//!   the signer's SNILS or OGRN, certificate validity, the algorithms, the digest
//!   (Streebog-256/512, SHA-256) — checked against the document and its people; the
//!   [`SignatureVerifier`] trait for what needs real cryptography;
//! - `test_pki` (feature `test-pki`): ECDSA signatures REMD refuses, to test that they are
//!   refused (real test signatures are GOST, from `egisz-gost`).
//!
//! ## What it must not do
//!
//! - I/O of any kind: no files, no network, no clock (the time comes in [`Expectations`]);
//! - sign anything for production: the gateway never signs; the test PKI is for tests;
//! - print personal data: names, birth dates and SNILS are held in [`egisz_contract::Personal`]
//!   and [`egisz_contract::Snils`], so `{:?}` of any value here is safe to log, and
//!   violation messages never quote them.
//!
//! ## Layout
//!
//! - `header`: the typed header and its parser; `time`: HL7 `TS` values;
//! - `checks`: [`Expectations`] and [`check`]; `dictionaries`: H13;
//!   `violation`: [`Violation`] and the rule ids ([`rules`], with the REMD code of each);
//! - `derive`: [`register_request_parts`]; `signature`; `ber`: BER to DER; `test_pki`.
#![forbid(unsafe_code)]

pub mod ber;
mod checks;
mod derive;
mod dictionaries;
pub mod header;
pub mod signature;
#[cfg(feature = "test-pki")]
pub mod test_pki;
pub mod time;
mod violation;

pub use checks::{CLOCK_SKEW, Expectations, check, parse_and_check};
pub use derive::{RequestParts, SignerParts, register_request_parts};
pub use dictionaries::{Dictionaries, Entry, check_dictionaries};
pub use header::CdaHeader;
pub use header::SNILS_ROOT;
pub use signature::{
    DigestAlgorithm, DigestStatus, DocumentDigests, KeyUsage, ParsedSignature, SignatureVerifier, SignerCertificate,
    SignerMatch, check_org_signature, check_org_signature_with, check_personal_signatures, check_signature,
    check_signature_with, digest, digest_status, match_signer, parse_signature,
};
pub use violation::{Violation, rules};
