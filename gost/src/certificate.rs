//! A certificate and what the verifier reads of it.

use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::x509::{X509, X509NameRef, X509VerifyResult};

use crate::{Gost, GostError, unix};

/// A parsed X.509 certificate (its key decodable: the engine is loaded).
#[derive(Clone)]
pub struct Certificate {
    pub(crate) x509: X509,
}

impl std::fmt::Debug for Certificate {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        // The subject of a personal certificate names a person: only the serial number
        // and the issuer are printed.
        f.debug_struct("Certificate")
            .field("serial", &self.serial_hex())
            .field("issuer", &self.issuer_common_name())
            .finish_non_exhaustive()
    }
}

fn common_name(name: &X509NameRef) -> Option<String> {
    name.entries_by_nid(Nid::COMMONNAME).next().and_then(|e| e.data().to_string().ok())
}

impl Certificate {
    /// One certificate, DER.
    pub fn from_der(_: &Gost, der: &[u8]) -> Result<Self, GostError> {
        Ok(Self { x509: X509::from_der(der)? })
    }

    /// Every certificate in a file: one DER certificate, or any number of PEM ones.
    pub fn from_file_bytes(_: &Gost, bytes: &[u8]) -> Result<Vec<Self>, GostError> {
        if bytes.trim_ascii_start().starts_with(b"-----BEGIN") {
            let all = X509::stack_from_pem(bytes)?;
            if all.is_empty() {
                return Err(GostError("no certificate in the PEM file".into()));
            }
            Ok(all.into_iter().map(|x509| Self { x509 }).collect())
        } else {
            Ok(vec![Self { x509: X509::from_der(bytes)? }])
        }
    }

    pub fn der(&self) -> Vec<u8> {
        // A certificate that parsed encodes again; an empty answer would fail every check.
        self.x509.to_der().unwrap_or_default()
    }

    /// The subject's common name (of a CA: its name; of a person: their name — personal
    /// data, never logged unredacted).
    pub fn subject_common_name(&self) -> Option<String> {
        common_name(self.x509.subject_name())
    }

    /// The issuer's common name: the CA's name.
    pub fn issuer_common_name(&self) -> Option<String> {
        common_name(self.x509.issuer_name())
    }

    /// The serial number, upper-case hex, as CAs print it.
    pub fn serial_hex(&self) -> String {
        self.x509.serial_number().to_bn().and_then(|bn| bn.to_hex_str().map(|s| s.to_string())).unwrap_or_default()
    }

    /// SHA-256 of the DER, hex: the certificate's identity in lists and caches.
    pub fn fingerprint(&self) -> String {
        self.x509
            .digest(MessageDigest::sha256())
            .map(|d| d.iter().map(|b| format!("{b:02x}")).collect())
            .unwrap_or_default()
    }

    pub fn not_before(&self) -> Result<i64, GostError> {
        unix(self.x509.not_before())
    }

    pub fn not_after(&self) -> Result<i64, GostError> {
        unix(self.x509.not_after())
    }

    /// The `http://` and `https://` addresses of the certificate's CRL distribution points,
    /// in the order given.
    pub fn crl_urls(&self) -> Vec<String> {
        let Some(points) = self.x509.crl_distribution_points() else { return Vec::new() };
        points
            .iter()
            .filter_map(|p| p.distpoint())
            .filter_map(|d| d.fullname())
            .flat_map(|names| names.iter())
            .filter_map(|n| n.uri())
            .filter(|u| u.starts_with("http://") || u.starts_with("https://"))
            .map(str::to_owned)
            .collect()
    }

    /// Was this certificate issued by `issuer` (names, key identifiers and the issuer's
    /// key usage agree; the signature is not checked here)?
    fn names_issuer(&self, issuer: &Certificate) -> bool {
        issuer.x509.issued(&self.x509) == X509VerifyResult::OK
    }

    /// Is it signed by `issuer`'s key?
    pub fn signed_by(&self, issuer: &Certificate) -> bool {
        let signed = issuer.x509.public_key().and_then(|k| self.x509.verify(&k)).unwrap_or(false);
        drop(openssl::error::ErrorStack::get());
        signed
    }

    /// Self-issued and self-signed: a root.
    pub fn is_root(&self) -> bool {
        self.names_issuer(self) && self.signed_by(self)
    }
}
