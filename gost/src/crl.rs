//! A certificate revocation list.

use openssl::x509::{CrlStatus, X509Crl};

use crate::certificate::Certificate;
use crate::{Gost, GostError, unix};

/// A parsed CRL.
pub struct Crl {
    crl: X509Crl,
    /// The issuers (by fingerprint) whose key has verified this list: one CRL serves many
    /// documents, its signature is checked once per issuer.
    verified_by: std::sync::Mutex<Vec<String>>,
}

impl std::fmt::Debug for Crl {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Crl").field("entries", &self.len()).finish_non_exhaustive()
    }
}

impl Crl {
    /// A CRL, DER or PEM.
    pub fn parse(_: &Gost, bytes: &[u8]) -> Result<Self, GostError> {
        let crl = if bytes.trim_ascii_start().starts_with(b"-----BEGIN") {
            X509Crl::from_pem(bytes)?
        } else {
            X509Crl::from_der(bytes)?
        };
        Ok(Self { crl, verified_by: std::sync::Mutex::new(Vec::new()) })
    }

    /// Issued and signed by `issuer`: the issuer's name and a signature its key verifies.
    pub fn issued_by(&self, issuer: &Certificate) -> bool {
        let fingerprint = issuer.fingerprint();
        let mut verified = self.verified_by.lock().unwrap_or_else(|p| p.into_inner());
        if verified.contains(&fingerprint) {
            return true;
        }
        let names_agree =
            self.crl.issuer_name().try_cmp(issuer.x509.subject_name()).is_ok_and(|o| o == std::cmp::Ordering::Equal);
        let issued = names_agree && issuer.x509.public_key().and_then(|k| self.crl.verify(&k)).unwrap_or(false);
        // A refusal leaves OpenSSL's error queue filled: emptied, so that no later error
        // names this one.
        drop(openssl::error::ErrorStack::get());
        if issued && verified.len() < 16 {
            verified.push(fingerprint);
        }
        issued
    }

    /// `thisUpdate`, seconds since 1970.
    pub fn this_update(&self) -> Result<i64, GostError> {
        unix(self.crl.last_update())
    }

    /// `nextUpdate`, seconds since 1970, when the CRL gives one.
    pub fn next_update(&self) -> Result<Option<i64>, GostError> {
        self.crl.next_update().map(unix).transpose()
    }

    /// Entries.
    pub fn len(&self) -> usize {
        self.crl.get_revoked().map(|r| r.len()).unwrap_or(0)
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    /// When `certificate` (by its serial number) was revoked, if the list names it.
    pub fn revoked_at(&self, certificate: &Certificate) -> Result<Option<i64>, GostError> {
        match self.crl.get_by_serial(certificate.x509.serial_number()) {
            CrlStatus::NotRevoked => Ok(None),
            CrlStatus::Revoked(entry) | CrlStatus::RemoveFromCrl(entry) => unix(entry.revocation_date()).map(Some),
        }
    }
}
