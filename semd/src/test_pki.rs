//! Signatures REMD refuses, to test that they are refused (feature `test-pki`): ECDSA P-256
//! certificates shaped like Russian qualified ones (SNILS `1.2.643.100.3` / OGRN
//! `1.2.643.100.1` as NumericString subject attributes) and detached CMS signatures with
//! SHA-256 or Streebog digests, one signer or several in one container.
//!
//! Real test signatures are GOST, made by `egisz-gost`'s test PKI. These stay because the
//! GOST one cannot make what must be refused: a non-GOST algorithm (`UNKNOWN_ALGORITHM`)
//! and several SignerInfos in one container (`MULTIPLE_SIGNERS`; OpenSSL's `CMS_add1_signer`
//! is not bound by the `openssl` crate). Keys come from a seed string and ECDSA signatures
//! are deterministic (RFC 6979), so fixtures are reproducible.
//!
//! Panics only if the RustCrypto encoders reject what this module builds — a bug here, not a
//! condition of the caller's data.

use std::time::Duration;

use chrono::{DateTime, Utc};
use cms::builder::{SignedDataBuilder, SignerInfoBuilder};
use cms::cert::{CertificateChoices, IssuerAndSerialNumber};
use cms::signed_data::{EncapsulatedContentInfo, SignerIdentifier};
use der::asn1::{ObjectIdentifier, SetOfVec};
use der::{Any, Encode, Tag};
use egisz_contract::Snils;
use p256::ecdsa::signature::Keypair;
use p256::ecdsa::signature::hazmat::PrehashSigner;
use p256::ecdsa::{DerSignature, Signature, SigningKey, VerifyingKey};
use sha2::{Digest, Sha256};
use spki::{AlgorithmIdentifierOwned, SubjectPublicKeyInfoOwned};
use x509_cert::Certificate;
use x509_cert::attr::AttributeTypeAndValue;
use x509_cert::builder::{Builder, CertificateBuilder, Profile};
use x509_cert::name::{Name, RdnSequence, RelativeDistinguishedName};
use x509_cert::serial_number::SerialNumber;
use x509_cert::time::{Time, Validity};

use crate::signature::{DigestAlgorithm, OID_OGRN, OID_SHA256, OID_SNILS, OID_STREEBOG_256, OID_STREEBOG_512};

const OID_CN: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
const OID_C: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.6");
const OID_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.1");
const OID_EC_PUBLIC_KEY: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.10045.2.1");

/// How a test signature is made.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignOptions {
    /// `Sha256`, `Streebog256` or `Streebog512` (anything else: a bug of the test).
    pub digest: DigestAlgorithm,
    /// Write the container as BER with indefinite lengths (the outer structures), as
    /// streaming signers do.
    pub ber: bool,
}

impl Default for SignOptions {
    fn default() -> Self {
        Self { digest: DigestAlgorithm::Sha256, ber: false }
    }
}

/// ECDSA P-256 over a digest other than SHA-256: the CMS builder hands the DER signed
/// attributes to `try_sign`, this hashes them with `digest` and signs the prehash.
struct PrehashKey<'a> {
    key: &'a SigningKey,
    digest: DigestAlgorithm,
}

impl Keypair for PrehashKey<'_> {
    type VerifyingKey = VerifyingKey;

    fn verifying_key(&self) -> VerifyingKey {
        *self.key.verifying_key()
    }
}

impl spki::DynSignatureAlgorithmIdentifier for PrehashKey<'_> {
    fn signature_algorithm_identifier(&self) -> spki::Result<AlgorithmIdentifierOwned> {
        Ok(AlgorithmIdentifierOwned { oid: OID_EC_PUBLIC_KEY, parameters: None })
    }
}

impl p256::ecdsa::signature::Signer<DerSignature> for PrehashKey<'_> {
    fn try_sign(&self, msg: &[u8]) -> Result<DerSignature, p256::ecdsa::Error> {
        let prehash = crate::signature::digest(&self.digest, msg).ok_or_else(p256::ecdsa::Error::new)?;
        let signature: Signature = self.key.sign_prehash(&prehash)?;
        Ok(signature.to_der())
    }
}

/// A key from a seed: SHA-256 of the seed, rehashed until it is a valid P-256 scalar.
fn key_from_seed(seed: &str) -> SigningKey {
    let mut bytes = Sha256::digest(seed.as_bytes());
    loop {
        if let Ok(key) = SigningKey::from_bytes(&bytes) {
            return key;
        }
        bytes = Sha256::digest(bytes);
    }
}

fn serial_from_seed(seed: &str) -> SerialNumber {
    let digest = Sha256::digest(format!("serial:{seed}").as_bytes());
    let mut bytes = [0u8; 12];
    bytes.copy_from_slice(&digest[..12]);
    bytes[0] = (bytes[0] & 0x7F) | 0x01; // positive, no leading zero
    SerialNumber::new(&bytes).expect("a 12-byte positive serial number")
}

fn name(attributes: &[(ObjectIdentifier, Tag, &str)]) -> Name {
    let rdns = attributes
        .iter()
        .map(|(oid, tag, value)| {
            let atv = AttributeTypeAndValue {
                oid: *oid,
                value: Any::new(*tag, value.as_bytes()).expect("a short attribute value"),
            };
            RelativeDistinguishedName(SetOfVec::try_from(vec![atv]).expect("one attribute per RDN"))
        })
        .collect();
    RdnSequence(rdns)
}

fn x509_time(t: DateTime<Utc>) -> Time {
    let secs = u64::try_from(t.timestamp()).expect("certificate times after 1970");
    Time::GeneralTime(der::asn1::GeneralizedTime::from_unix_duration(Duration::from_secs(secs)).expect("a valid time"))
}

fn validity(not_before: DateTime<Utc>, not_after: DateTime<Utc>) -> Validity {
    Validity { not_before: x509_time(not_before), not_after: x509_time(not_after) }
}

/// A seed for the ECDSA CA, public on purpose — nothing signed by it is worth anything.
pub const SANDBOX_CA_SEED: &str = "egisz-sandbox-ca";

/// The test certificate authority.
pub struct TestCa {
    key: SigningKey,
    certificate: Certificate,
}

impl TestCa {
    /// A self-signed CA whose key comes from `seed`, valid 2000-01-01 … 2099-12-31.
    pub fn new(seed: &str) -> Self {
        let key = key_from_seed(&format!("ca:{seed}"));
        let subject =
            name(&[(OID_C, Tag::PrintableString, "RU"), (OID_CN, Tag::Utf8String, "Тестовый УЦ egisz-gateway")]);
        let spki = SubjectPublicKeyInfoOwned::from_key(*key.verifying_key()).expect("a P-256 public key");
        let from = DateTime::from_timestamp(946_684_800, 0).expect("2000-01-01");
        let till = DateTime::from_timestamp(4_102_444_799, 0).expect("2099-12-31");
        let certificate =
            CertificateBuilder::new(Profile::Root, serial_from_seed(seed), validity(from, till), subject, spki, &key)
                .expect("a root certificate")
                .build::<DerSignature>()
                .expect("a signed root certificate");
        Self { key, certificate }
    }

    pub fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    pub fn certificate_der(&self) -> Vec<u8> {
        self.certificate.to_der().expect("an encodable certificate")
    }

    fn issue(&self, seed: &str, subject: Name, not_before: DateTime<Utc>, not_after: DateTime<Utc>) -> TestSigner {
        let key = key_from_seed(&format!("leaf:{seed}"));
        let spki = SubjectPublicKeyInfoOwned::from_key(*key.verifying_key()).expect("a P-256 public key");
        let profile = Profile::Leaf {
            issuer: self.certificate.tbs_certificate.subject.clone(),
            enable_key_agreement: false,
            enable_key_encipherment: false,
        };
        let certificate = CertificateBuilder::new(
            profile,
            serial_from_seed(seed),
            validity(not_before, not_after),
            subject,
            spki,
            &self.key,
        )
        .expect("a leaf certificate")
        .build::<DerSignature>()
        .expect("a signed leaf certificate");
        TestSigner { key, certificate }
    }

    /// A medical worker's certificate: the SNILS as a NumericString subject attribute
    /// `1.2.643.100.3`, as the qualified certificate profile has it.
    pub fn issue_doctor(
        &self,
        seed: &str,
        snils: &Snils,
        not_before: DateTime<Utc>,
        not_after: DateTime<Utc>,
    ) -> TestSigner {
        let subject = name(&[
            (OID_C, Tag::PrintableString, "RU"),
            (OID_CN, Tag::Utf8String, "Тестовый медицинский работник"),
            (OID_SNILS, Tag::NumericString, snils.as_str()),
        ]);
        self.issue(seed, subject, not_before, not_after)
    }

    /// An organisation's certificate with its OGRN (`1.2.643.100.1`, NumericString).
    pub fn issue_organization(
        &self,
        seed: &str,
        ogrn: &str,
        not_before: DateTime<Utc>,
        not_after: DateTime<Utc>,
    ) -> TestSigner {
        let subject = name(&[
            (OID_C, Tag::PrintableString, "RU"),
            (OID_CN, Tag::Utf8String, "Тестовая медицинская организация"),
            (OID_OGRN, Tag::NumericString, ogrn),
        ]);
        self.issue(seed, subject, not_before, not_after)
    }
}

/// A key and its certificate, issued by a [`TestCa`].
pub struct TestSigner {
    key: SigningKey,
    certificate: Certificate,
}

impl TestSigner {
    pub fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    pub fn certificate_der(&self) -> Vec<u8> {
        self.certificate.to_der().expect("an encodable certificate")
    }

    /// A detached CMS SignedData (DER) over `content`: SHA-256, ECDSA P-256, the signer's
    /// certificate embedded, signed attributes contentType and messageDigest.
    pub fn sign_detached(&self, content: &[u8]) -> Vec<u8> {
        sign_detached_by(&[self], content)
    }

    /// A detached CMS SignedData over `content` made as `options` say.
    pub fn sign_detached_with(&self, content: &[u8], options: &SignOptions) -> Vec<u8> {
        let der = if options.digest == DigestAlgorithm::Sha256 {
            sign_detached_by(&[self], content)
        } else {
            let oid = match options.digest {
                DigestAlgorithm::Streebog256 => OID_STREEBOG_256,
                DigestAlgorithm::Streebog512 => OID_STREEBOG_512,
                _ => panic!("the test PKI signs with SHA-256 or Streebog only"),
            };
            let digest = crate::signature::digest(&options.digest, content).expect("a digest the gateway computes");
            let eci = EncapsulatedContentInfo { econtent_type: OID_DATA, econtent: None };
            let digest_algorithm = AlgorithmIdentifierOwned { oid, parameters: None };
            let tbs = &self.certificate.tbs_certificate;
            let sid = SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
                issuer: tbs.issuer.clone(),
                serial_number: tbs.serial_number.clone(),
            });
            let key = PrehashKey { key: &self.key, digest: options.digest.clone() };
            let mut builder = SignedDataBuilder::new(&eci);
            builder.add_digest_algorithm(digest_algorithm.clone()).expect("a digest algorithm");
            builder.add_certificate(CertificateChoices::Certificate(self.certificate.clone())).expect("a certificate");
            let info = SignerInfoBuilder::new(&key, sid, digest_algorithm, &eci, Some(digest.as_slice()))
                .expect("a signer info");
            builder.add_signer_info::<PrehashKey<'_>, DerSignature>(info).expect("a signature");
            builder.build().expect("a SignedData").to_der().expect("an encodable ContentInfo")
        };
        if options.ber { crate::ber::with_indefinite_lengths(&der) } else { der }
    }
}

/// One detached CMS container with a SignerInfo for each signer (REMD refuses more than one:
/// `MULTIPLE_SIGNERS`; this exists to test that).
pub fn sign_detached_by(signers: &[&TestSigner], content: &[u8]) -> Vec<u8> {
    let eci = EncapsulatedContentInfo { econtent_type: OID_DATA, econtent: None };
    let digest = Sha256::digest(content);
    let digest_algorithm = AlgorithmIdentifierOwned { oid: OID_SHA256, parameters: None };
    let mut builder = SignedDataBuilder::new(&eci);
    builder.add_digest_algorithm(digest_algorithm.clone()).expect("a digest algorithm");
    for signer in signers {
        let tbs = &signer.certificate.tbs_certificate;
        let sid = SignerIdentifier::IssuerAndSerialNumber(IssuerAndSerialNumber {
            issuer: tbs.issuer.clone(),
            serial_number: tbs.serial_number.clone(),
        });
        builder.add_certificate(CertificateChoices::Certificate(signer.certificate.clone())).expect("a certificate");
        let info = SignerInfoBuilder::new(&signer.key, sid, digest_algorithm.clone(), &eci, Some(digest.as_slice()))
            .expect("a signer info");
        builder.add_signer_info::<SigningKey, DerSignature>(info).expect("a signature");
    }
    builder.build().expect("a SignedData").to_der().expect("an encodable ContentInfo")
}
