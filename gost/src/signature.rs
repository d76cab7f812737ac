//! Signature values and digests.

use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::hash::{Hasher, MessageDigest};
use openssl::nid::Nid;
use openssl::sign::Verifier;

use crate::certificate::Certificate;
use crate::{Gost, GostError};

/// `NID_id_GostR3411_2012_256` and `_512` of `<openssl/obj_mac.h>` (OpenSSL 3; `openssl-sys`
/// does not name them).
const NID_STREEBOG_256: i32 = 982;
const NID_STREEBOG_512: i32 = 983;

/// GOST R 34.11-2012.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Digest {
    Streebog256,
    Streebog512,
}

impl Digest {
    pub(crate) fn message_digest(self) -> Result<MessageDigest, GostError> {
        let nid = match self {
            Digest::Streebog256 => Nid::from_raw(NID_STREEBOG_256),
            Digest::Streebog512 => Nid::from_raw(NID_STREEBOG_512),
        };
        MessageDigest::from_nid(nid).ok_or_else(|| GostError("the engine offers no GOST R 34.11-2012 digest".into()))
    }
}

/// The digest of `data` through the engine.
pub fn digest(_: &Gost, algorithm: Digest, data: &[u8]) -> Result<Vec<u8>, GostError> {
    let mut h = Hasher::new(algorithm.message_digest()?)?;
    h.update(data)?;
    Ok(h.finish()?.to_vec())
}

/// Does `value` verify, with `signer`'s key and `digest`, over `signed_attributes` (the DER
/// `SET OF Attribute` of a CMS SignerInfo, RFC 5652 §5.4)? `Ok(false)` for a value that
/// does not verify; `Err` when the key cannot be used at all.
pub fn verify_signature_value(
    _: &Gost,
    signer: &Certificate,
    digest: Digest,
    signed_attributes: &[u8],
    value: &[u8],
) -> Result<bool, GostError> {
    let key = signer.x509.public_key()?;
    let mut verifier = Verifier::new(digest.message_digest()?, &key)?;
    // A malformed value is a value that does not verify, not a failure of the verifier.
    let valid = verifier.verify_oneshot(value, signed_attributes).unwrap_or(false);
    drop(openssl::error::ErrorStack::get());
    Ok(valid)
}

/// A whole detached CMS (DER or BER) over `content`, as OpenSSL's `CMS_verify` judges it:
/// every SignerInfo's digest and signature value, with the signer's certificate taken from
/// the container. Chains are not followed here (see [`crate::TrustStore`]).
pub fn verify_detached(_: &Gost, container: &[u8], content: &[u8]) -> Result<(), GostError> {
    let mut cms = CmsContentInfo::from_der(container)?;
    cms.verify(None, None, Some(content), None, CMSOptions::BINARY | CMSOptions::NO_SIGNER_CERT_VERIFY)?;
    Ok(())
}
