//! A chain from a signer's certificate to a trusted CA, judged at a given time.

use openssl::stack::Stack;
use openssl::x509::store::{X509Store, X509StoreBuilder};
use openssl::x509::verify::X509VerifyFlags;
use openssl::x509::{X509, X509PurposeId, X509StoreContext, X509VerifyResult};

use crate::certificate::Certificate;
use crate::{Gost, GostError};

/// The CA certificates a chain may end at. A trusted certificate need not be a root: an
/// accredited CA is trusted as such, whoever issued its own certificate (OpenSSL's
/// "partial chain").
pub struct TrustStore {
    store: X509Store,
    anchors: Vec<Certificate>,
    /// Chains built, by the leaf's and the offered certificates' fingerprints, with the
    /// window every certificate of the chain is valid in: a doctor signs many documents,
    /// and within that window the same chain stands at any time.
    built: std::sync::Mutex<std::collections::HashMap<String, Built>>,
}

#[derive(Clone)]
struct Built {
    chain: Vec<Certificate>,
    valid_from: i64,
    valid_till: i64,
}

/// The most chains remembered; the memo is emptied when full.
const MAX_BUILT: usize = 10_000;

/// Why no chain was built.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ChainFailure {
    /// No path to a trusted certificate (unknown or foreign CA).
    NoTrustedIssuer,
    /// A certificate of the path was not yet valid at the time.
    NotYetValid,
    /// A certificate of the path had expired at the time.
    Expired,
    /// A certificate's signature does not verify with its issuer's key.
    BadSignature,
    /// An issuer's certificate may not issue certificates (not a CA, or its key usage).
    NotACa,
    /// Anything else OpenSSL refuses (a malformed extension, a path too long…).
    Other,
}

/// The chain failed: why, at which depth (0: the signer's certificate) and OpenSSL's words.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainError {
    pub failure: ChainFailure,
    pub depth: u32,
    pub detail: String,
}

/// The longest path accepted, CA certificates counted: real chains are two or three long;
/// a container that offers more is not followed further.
pub const MAX_DEPTH: u32 = 8;

fn failure_of(code: X509VerifyResult) -> ChainFailure {
    use openssl_sys as ffi;
    match code.as_raw() {
        ffi::X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT
        | ffi::X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY
        | ffi::X509_V_ERR_UNABLE_TO_VERIFY_LEAF_SIGNATURE
        | ffi::X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT
        | ffi::X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN => ChainFailure::NoTrustedIssuer,
        ffi::X509_V_ERR_CERT_NOT_YET_VALID => ChainFailure::NotYetValid,
        ffi::X509_V_ERR_CERT_HAS_EXPIRED => ChainFailure::Expired,
        ffi::X509_V_ERR_CERT_SIGNATURE_FAILURE | ffi::X509_V_ERR_UNABLE_TO_DECODE_ISSUER_PUBLIC_KEY => {
            ChainFailure::BadSignature
        }
        ffi::X509_V_ERR_INVALID_CA | ffi::X509_V_ERR_KEYUSAGE_NO_CERTSIGN => ChainFailure::NotACa,
        _ => ChainFailure::Other,
    }
}

impl TrustStore {
    /// A store of `anchors`. Empty is allowed: it trusts nothing.
    pub fn new(_: &Gost, anchors: Vec<Certificate>) -> Result<Self, GostError> {
        let mut builder = X509StoreBuilder::new()?;
        let mut seen = std::collections::HashSet::new();
        for a in &anchors {
            // The same certificate twice (a directory and the ministry's list) is one anchor.
            if seen.insert(a.fingerprint()) {
                builder.add_cert(a.x509.clone())?;
            }
        }
        // Qualified certificates rarely carry the e-mail protection usage OpenSSL checks by
        // default; REMD's own key-usage rule is applied above this crate.
        builder.set_purpose(X509PurposeId::ANY)?;
        builder.set_flags(X509VerifyFlags::PARTIAL_CHAIN)?;
        Ok(Self { store: builder.build(), anchors, built: Default::default() })
    }

    /// The trusted certificates, as given.
    pub fn anchors(&self) -> &[Certificate] {
        &self.anchors
    }

    /// The path from `leaf` through `untrusted` (the container's other certificates) to a
    /// trusted certificate, valid at `at` (seconds since 1970): leaf first, anchor last.
    pub fn chain(
        &self,
        leaf: &Certificate,
        untrusted: &[Certificate],
        at: i64,
    ) -> Result<Vec<Certificate>, ChainError> {
        let key: String =
            std::iter::once(leaf).chain(untrusted).map(Certificate::fingerprint).collect::<Vec<_>>().join(":");
        if let Some(b) = self.built.lock().unwrap_or_else(|p| p.into_inner()).get(&key)
            // OpenSSL counts a certificate as expired at its notAfter itself.
            && (b.valid_from..b.valid_till).contains(&at)
        {
            return Ok(b.chain.clone());
        }
        let chain = self.build(leaf, untrusted, at)?;
        let window = chain.iter().try_fold((i64::MIN, i64::MAX), |(from, till), c| {
            Ok::<_, GostError>((from.max(c.not_before()?), till.min(c.not_after()?)))
        });
        if let Ok((valid_from, valid_till)) = window {
            let mut built = self.built.lock().unwrap_or_else(|p| p.into_inner());
            if built.len() >= MAX_BUILT {
                built.clear();
            }
            built.insert(key, Built { chain: chain.clone(), valid_from, valid_till });
        }
        Ok(chain)
    }

    fn build(&self, leaf: &Certificate, untrusted: &[Certificate], at: i64) -> Result<Vec<Certificate>, ChainError> {
        let other = |detail: String| ChainError { failure: ChainFailure::Other, depth: 0, detail };
        let mut stack = Stack::<X509>::new().map_err(|e| other(GostError::from(e).0))?;
        for c in untrusted {
            stack.push(c.x509.clone()).map_err(|e| other(GostError::from(e).0))?;
        }
        let mut ctx = X509StoreContext::new().map_err(|e| other(GostError::from(e).0))?;
        let outcome = ctx
            .init(&self.store, &leaf.x509, &stack, |c| {
                crate::ffi::set_check_time(c, at);
                let ok = c.verify_cert()?;
                let chain: Vec<Certificate> = c
                    .chain()
                    .map(|s| s.iter().map(|x| Certificate { x509: x.to_owned() }).collect())
                    .unwrap_or_default();
                Ok((ok, c.error(), c.error_depth(), chain))
            })
            .map_err(|e| other(GostError::from(e).0))?;
        let (ok, code, depth, chain) = outcome;
        if ok && chain.len() as u32 <= MAX_DEPTH + 1 {
            return Ok(chain);
        }
        if ok {
            return Err(ChainError {
                failure: ChainFailure::Other,
                depth: MAX_DEPTH,
                detail: format!("the path is longer than {MAX_DEPTH} CA certificates"),
            });
        }
        Err(ChainError { failure: failure_of(code), depth, detail: code.error_string().to_owned() })
    }
}
