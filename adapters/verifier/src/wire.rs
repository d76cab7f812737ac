//! The verification service's request and answer. **[model]**: no federal contract exists
//! for this call — a deployment puts a small service in front of its certified GOST
//! provider (CryptoPro DSS/SVS, a CSP with a REST front) that speaks this. Every name of the
//! wire is in this module; `docs/validation.md` ("The verification service") documents it.
//!
//! `POST <verifier_url>` with `Content-Type: application/json`:
//! `{"cms": "<base64 of the detached CMS, DER>"}` — only the container: the gateway has
//! already compared the signed digest with the document, so the service checks the
//! signature value over the signed attributes and the certificate chain (with revocation)
//! at the time of the call.
//!
//! `200` with `{"valid": true}`, or `{"valid": false, "errors": [{"code": "<REMD code>",
//! "message": "<text>"}]}`. Codes are REMD's (NSI 305): `SIGNATURE_VERIFICATION_ERROR`,
//! `CANT_BUILD_CERT_CHAIN_TO_ACCREDITED_CA_CERT`, `UNKNOWN_ALGORITHM`,
//! `INVALID_CERT_KEY_USAGE`, `PERSONAL_SIG_CERT_NOT_ACTUAL_ON_CHECK_DT`; any other code is
//! taken as `SIGNATURE_VERIFICATION_ERROR` with the code named in the message; the
//! service's `message` texts are not passed on (they may quote the certificate's subject).
//! `CA_INACCESSIBILITY` (the CA's OCSP/CRL unreachable) means "no verdict": the signature
//! counts as not verified, as when the service itself is down (but it does not count
//! towards the breaker: the service answered). Any other status: no
//! verdict (`429`/`5xx`: transient; `4xx`: the gateway's request was refused).

use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize)]
pub struct VerifyRequest<'a> {
    /// Base64 (standard alphabet, padded) of the container.
    pub cms: &'a str,
}

#[derive(Debug, Deserialize)]
pub struct VerifyAnswer {
    pub valid: bool,
    #[serde(default)]
    pub errors: Vec<VerifyError>,
}

/// One reason of a refusal. The service's `message` is not read: it may quote the
/// certificate's subject, and the gateway says each known code in its own words.
#[derive(Debug, Deserialize)]
pub struct VerifyError {
    pub code: String,
}

/// The code that means "the verdict could not be reached".
pub const NO_VERDICT: &str = "CA_INACCESSIBILITY";
