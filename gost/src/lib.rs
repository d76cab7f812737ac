//! # egisz-gost
//!
//! GOST R 34.10-2012 signatures and GOST R 34.11-2012 (Streebog) digests through the
//! system's OpenSSL 3 and Debian's GOST engine (`libengine-gost-openssl`), loaded in code
//! for this process only.
//!
//! ## What this crate owns
//!
//! - loading the engine ([`Gost::load`]), once per process, with an error that names the
//!   Debian package when it is missing; every other function takes the [`Gost`] it returns
//!   as proof that GOST keys can be decoded;
//! - [`Certificate`]: a certificate (DER or PEM) and what the verifier reads of it — its
//!   names, serial number, validity, CRL distribution points, issuer;
//! - [`verify_signature_value`]: the signature value of a CMS SignerInfo over its signed
//!   attributes, and [`verify_detached`]: a whole detached CMS over a document (OpenSSL's
//!   `CMS_verify`), the same judgement from the container alone;
//! - [`TrustStore`]: a chain from a signer's certificate through the container's
//!   certificates to a trusted CA, judged at a given time;
//! - [`Crl`]: a certificate revocation list, its issuer's signature, its dates and its
//!   entries;
//! - [`digest`]: Streebog-256/512 through the engine;
//! - `test_pki` (feature `test-pki`): GOST CAs, doctor and organisation certificates, CRLs
//!   and detached CMS / CAdES-BES signatures, for tests and the sandbox.
//!
//! ## What it must not do
//!
//! - I/O: no files, no network, no clock (times are passed in, in seconds since 1970);
//! - decide what a finding means for a document: it says "the value does not verify", "no
//!   chain to a trusted CA", "revoked at"; the verifier above turns that into REMD's codes;
//! - hold `unsafe` outside `ffi` (the workspace forbids it everywhere else).
//!
//! ## Layout
//!
//! - `ffi`: the engine and the one libcrypto call the `openssl` crate does not bind;
//! - `certificate`: [`Certificate`]; `chain`: [`TrustStore`]; `crl`: [`Crl`];
//! - `signature`: [`verify_signature_value`], [`verify_detached`], [`digest`];
//! - `test_pki`: the test PKI.

mod certificate;
mod chain;
mod crl;
mod ffi;
mod signature;
#[cfg(feature = "test-pki")]
pub mod test_pki;

use std::sync::OnceLock;

pub use certificate::Certificate;
pub use chain::{ChainError, ChainFailure, TrustStore};
pub use crl::Crl;
pub use signature::{Digest, digest, verify_detached, verify_signature_value};

/// The Debian package that provides the engine.
pub const ENGINE_PACKAGE: &str = "libengine-gost-openssl";

/// Proof that the GOST engine is loaded in this process.
#[derive(Debug)]
pub struct Gost {
    _loaded: (),
}

/// The engine could not be loaded.
#[derive(Debug, Clone, thiserror::Error)]
#[error(
    "the GOST engine of OpenSSL 3 is not available ({detail}): install Debian's package {ENGINE_PACKAGE} \
     (it provides engines-3/gost.so)"
)]
pub struct EngineMissing {
    pub detail: String,
}

static LOADED: OnceLock<Result<Gost, EngineMissing>> = OnceLock::new();

impl Gost {
    /// Loads the engine the first time, and returns the same answer every time after.
    pub fn load() -> Result<&'static Gost, EngineMissing> {
        LOADED
            .get_or_init(|| {
                ffi::load_gost_engine()
                    .map(|()| Gost { _loaded: () })
                    .map_err(|e| EngineMissing { detail: first_reason(&e) })
            })
            .as_ref()
            .map_err(Clone::clone)
    }
}

/// A failure of this crate: what OpenSSL said, in one line.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct GostError(pub String);

impl From<openssl::error::ErrorStack> for GostError {
    fn from(e: openssl::error::ErrorStack) -> Self {
        GostError(first_reason(&e))
    }
}

/// The first reason of an OpenSSL error stack, without file names and line numbers.
fn first_reason(e: &openssl::error::ErrorStack) -> String {
    e.errors()
        .iter()
        .map(|e| e.reason().map(str::to_owned).unwrap_or_else(|| format!("error {:#x}", e.code())))
        .next()
        .unwrap_or_else(|| "no reason given".to_owned())
}

/// Seconds since 1970 of an ASN.1 time.
pub(crate) fn unix(t: &openssl::asn1::Asn1TimeRef) -> Result<i64, GostError> {
    let epoch = openssl::asn1::Asn1Time::from_unix(0)?;
    let d = epoch.diff(t)?;
    Ok(i64::from(d.days) * 86_400 + i64::from(d.secs))
}
