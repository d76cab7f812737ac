//! Detached CMS signatures (CAdES-BES) over a document: parsed with RustCrypto, checked
//! against the document bytes, its creation time and its people.
//!
//! What is checked here: the container's shape (SignedData, detached, one signer, the
//! signer's certificate embedded, signed attributes with a messageDigest), the digest and
//! signature algorithms (GOST R 34.11-2012 256/512 and GOST R 34.10-2012 only, as REMD),
//! the signed digest against the document bytes (`INCONSISTENT_DIGESTS`
//! when they differ), the certificate's validity at the creation time, that a personal
//! certificate's SNILS is an author's or the legal authenticator's, and that an
//! organisation's certificate carries an OGRN. What is not: the signature value and the
//! certificate chain and revocation — that is the [`SignatureVerifier`]'s job (the GOST
//! backend in the process, or a certified provider over HTTP; both outside this crate).
//!
//! Containers may be DER or BER (indefinite lengths, as streaming signers write them):
//! BER is rewritten to DER first ([`crate::ber`]).

use std::fmt;

use chrono::{DateTime, FixedOffset, Utc};
use cms::cert::CertificateChoices;
use cms::content_info::ContentInfo;
use cms::signed_data::{SignedData, SignerIdentifier};
use der::asn1::{ObjectIdentifier, OctetString};
use der::{Any, AnyRef, Decode, Encode, Reader, SliceReader, Tag, TagNumber, Tagged};
use egisz_contract::{Failure, Snils};
use sha2::{Digest, Sha256};
use streebog::{Streebog256, Streebog512};
use x509_cert::Certificate;

use crate::header::CdaHeader;
use crate::violation::{Violation, rules};

/// Subject attribute of a qualified certificate: the holder's SNILS.
pub const OID_SNILS: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.643.100.3");
/// Subject attribute of an organisation's qualified certificate: its OGRN.
pub const OID_OGRN: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.643.100.1");
/// SHA-256.
pub const OID_SHA256: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.16.840.1.101.3.4.2.1");
/// GOST R 34.11-2012, 256-bit (Streebog-256).
pub const OID_STREEBOG_256: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.643.7.1.1.2.2");
/// GOST R 34.11-2012, 512-bit (Streebog-512).
pub const OID_STREEBOG_512: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.643.7.1.1.2.3");
/// Signature algorithms of GOST R 34.10-2012 as CMS writers name them: the key algorithms
/// (256, 512) and the signature-with-digest algorithms (256, 512).
pub const GOST_SIGNATURE_ALGORITHMS: [&str; 4] =
    ["1.2.643.7.1.1.1.1", "1.2.643.7.1.1.1.2", "1.2.643.7.1.1.3.2", "1.2.643.7.1.1.3.3"];
const OID_SIGNED_DATA: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.7.2");
const OID_MESSAGE_DIGEST: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.4");
/// X.509 extension: subject key identifier.
const OID_SUBJECT_KEY_ID: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.14");
/// X.520 common name.
const OID_COMMON_NAME: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.4.3");
/// X.509 extension: key usage.
const OID_KEY_USAGE: ObjectIdentifier = ObjectIdentifier::new_unwrap("2.5.29.15");
/// CMS signed attribute: signing time.
const OID_SIGNING_TIME: ObjectIdentifier = ObjectIdentifier::new_unwrap("1.2.840.113549.1.9.5");
/// The most certificates a container may carry: the signer's and its CA path (real paths
/// are two or three long). More is refused before any of them is looked at.
pub const MAX_CERTIFICATES: usize = 10;

const SIGNER_INFO: &str = "/ContentInfo/SignedData/signerInfos/SignerInfo";
const CERTIFICATE: &str = "/ContentInfo/SignedData/certificates/Certificate";

/// The digest algorithm of a SignerInfo.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum DigestAlgorithm {
    Sha256,
    /// GOST R 34.11-2012 256 (`1.2.643.7.1.1.2.2`).
    Streebog256,
    /// GOST R 34.11-2012 512 (`1.2.643.7.1.1.2.3`).
    Streebog512,
    /// Any other, by OID.
    Other(String),
}

impl DigestAlgorithm {
    fn from_oid(oid: ObjectIdentifier) -> Self {
        match oid {
            OID_SHA256 => DigestAlgorithm::Sha256,
            OID_STREEBOG_256 => DigestAlgorithm::Streebog256,
            OID_STREEBOG_512 => DigestAlgorithm::Streebog512,
            other => DigestAlgorithm::Other(other.to_string()),
        }
    }

    pub fn oid(&self) -> String {
        match self {
            DigestAlgorithm::Sha256 => OID_SHA256.to_string(),
            DigestAlgorithm::Streebog256 => OID_STREEBOG_256.to_string(),
            DigestAlgorithm::Streebog512 => OID_STREEBOG_512.to_string(),
            DigestAlgorithm::Other(oid) => oid.clone(),
        }
    }
}

/// What the signer's certificate says about its holder and its validity.
#[derive(Clone, PartialEq, Eq)]
pub struct SignerCertificate {
    /// Subject attribute `1.2.643.100.3` (a person's qualified certificate), when it holds a
    /// valid SNILS.
    pub snils: Option<Snils>,
    /// Subject attribute `1.2.643.100.1` (an organisation's qualified certificate).
    pub ogrn: Option<String>,
    pub not_before: DateTime<Utc>,
    pub not_after: DateTime<Utc>,
    /// Hex, as CAs print it.
    pub serial_number: String,
    /// The key usage extension's bits (bit 0 digitalSignature, 1 nonRepudiation, …), or
    /// `None` when the certificate has none.
    pub key_usage: Option<KeyUsage>,
    /// The issuer's common name: the CA.
    pub issuer: Option<String>,
    der: Vec<u8>,
}

/// The bits of a certificate's key usage extension (RFC 5280 §4.2.1.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct KeyUsage(pub u16);

impl KeyUsage {
    pub const DIGITAL_SIGNATURE: u16 = 1 << 0;
    pub const NON_REPUDIATION: u16 = 1 << 1;

    pub fn allows_signing(self) -> bool {
        self.0 & Self::DIGITAL_SIGNATURE != 0
    }
}

impl SignerCertificate {
    /// The certificate, DER.
    pub fn der(&self) -> &[u8] {
        &self.der
    }
}

impl fmt::Debug for SignerCertificate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SignerCertificate")
            .field("snils", &self.snils)
            .field("ogrn", &self.ogrn)
            .field("not_before", &self.not_before)
            .field("not_after", &self.not_after)
            .field("serial_number", &self.serial_number)
            .field("key_usage", &self.key_usage)
            .field("issuer", &self.issuer)
            .finish_non_exhaustive()
    }
}

/// A detached CMS SignedData with exactly one signer, whose certificate it carries.
#[derive(Clone, PartialEq, Eq)]
pub struct ParsedSignature {
    pub digest_algorithm: DigestAlgorithm,
    /// The `messageDigest` signed attribute: the digest of the signed document.
    pub message_digest: Vec<u8>,
    /// `signatureAlgorithm` of the SignerInfo, as an OID.
    pub signature_algorithm: String,
    pub certificate: SignerCertificate,
    /// The `signingTime` signed attribute, when present.
    pub signing_time: Option<DateTime<Utc>>,
    /// The container's other certificates (its CA path, as signers embed it), DER.
    pub other_certificates: Vec<Vec<u8>>,
    signed_attributes: Vec<u8>,
    signature_value: Vec<u8>,
    container: Vec<u8>,
}

impl ParsedSignature {
    /// The whole container exactly as submitted (DER or BER): what REMD receives, and what
    /// an external verifier is sent.
    pub fn container(&self) -> &[u8] {
        &self.container
    }

    /// The signed attributes exactly as signed: the DER `SET OF Attribute` (tag 0x31) that
    /// the signature value is over.
    pub fn signed_attributes(&self) -> &[u8] {
        &self.signed_attributes
    }

    /// The signature value (the SignerInfo's `signature` OCTET STRING content).
    pub fn signature_value(&self) -> &[u8] {
        &self.signature_value
    }
}

impl fmt::Debug for ParsedSignature {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let digest: String = self.message_digest.iter().map(|b| format!("{b:02x}")).collect();
        f.debug_struct("ParsedSignature")
            .field("digest_algorithm", &self.digest_algorithm)
            .field("message_digest", &digest)
            .field("signature_algorithm", &self.signature_algorithm)
            .field("certificate", &self.certificate)
            .field("signing_time", &self.signing_time)
            .field("other_certificates", &self.other_certificates.len())
            .finish_non_exhaustive()
    }
}

fn decoding(path: &str, what: impl fmt::Display) -> Vec<Violation> {
    vec![Violation::new(rules::SIGNATURE_DECODING_ERROR, path, format!("не удалось разобрать подпись: {what}"))]
}

fn format_error(path: &str, message: &str) -> Vec<Violation> {
    vec![Violation::new(rules::WRONG_SIGNATURE_FORMAT, path, message)]
}

/// Parses a detached CMS signature (DER or BER; base64 is decoded by the caller).
pub fn parse_signature(encoded: &[u8]) -> Result<ParsedSignature, Vec<Violation>> {
    let der = crate::ber::to_der(encoded).map_err(|e| decoding("/ContentInfo", e))?;
    let ci = ContentInfo::from_der(&der).map_err(|e| decoding("/ContentInfo", e))?;
    if ci.content_type != OID_SIGNED_DATA {
        return Err(format_error("/ContentInfo/contentType", "ожидается SignedData (1.2.840.113549.1.7.2)"));
    }
    let sd: SignedData = ci.content.decode_as().map_err(|e| decoding("/ContentInfo/SignedData", e))?;
    if sd.encap_content_info.econtent.is_some() {
        return Err(format_error(
            "/ContentInfo/SignedData/encapContentInfo/eContent",
            "подпись должна быть отсоединённой (без вложенного документа)",
        ));
    }
    let signer = match sd.signer_infos.0.as_slice() {
        [] => {
            return Err(vec![Violation::new(rules::NO_SIGNATURE, SIGNER_INFO, "в контейнере нет подписанта")]);
        }
        [one] => one,
        more => {
            return Err(vec![Violation::new(
                rules::MULTIPLE_SIGNERS,
                SIGNER_INFO,
                format!("в контейнере {} подписантов, допускается один", more.len()),
            )]);
        }
    };
    let Some(attrs) = &signer.signed_attrs else {
        return Err(format_error(&format!("{SIGNER_INFO}/signedAttrs"), "нет подписанных атрибутов (CAdES-BES)"));
    };
    let message_digest = attrs
        .iter()
        .find(|a| a.oid == OID_MESSAGE_DIGEST)
        .and_then(|a| a.values.get(0))
        .and_then(|v| v.decode_as::<OctetString>().ok())
        .map(|o| o.as_bytes().to_vec())
        .ok_or_else(|| {
            format_error(&format!("{SIGNER_INFO}/signedAttrs/messageDigest"), "нет атрибута messageDigest")
        })?;
    let signed_attributes = raw_signed_attributes(ci.content.value())
        .map_err(|e| decoding(&format!("{SIGNER_INFO}/signedAttrs"), e))?
        .ok_or_else(|| decoding(&format!("{SIGNER_INFO}/signedAttrs"), "нет подписанных атрибутов"))?;

    let signing_time = attrs
        .iter()
        .find(|a| a.oid == OID_SIGNING_TIME)
        .and_then(|a| a.values.get(0))
        .map(|v| {
            v.to_der()
                .ok()
                .and_then(|d| x509_cert::time::Time::from_der(&d).ok())
                .and_then(|t| {
                    let d = t.to_unix_duration();
                    i64::try_from(d.as_secs()).ok().and_then(|s| DateTime::from_timestamp(s, 0))
                })
                .ok_or_else(|| {
                    decoding(&format!("{SIGNER_INFO}/signedAttrs/signingTime"), "время подписания не разобрано")
                })
        })
        .transpose()?;

    let certificates = sd.certificates.as_ref().map(|c| c.0.as_slice()).unwrap_or_default();
    if certificates.len() > MAX_CERTIFICATES {
        return Err(format_error(
            "/ContentInfo/SignedData/certificates",
            &format!("в контейнере {} сертификатов, допускается не больше {MAX_CERTIFICATES}", certificates.len()),
        ));
    }
    let certificate = certificates
        .iter()
        .filter_map(|c| match c {
            CertificateChoices::Certificate(cert) => Some(cert),
            CertificateChoices::Other(_) => None,
        })
        .find(|cert| identifies(&signer.sid, cert))
        .ok_or_else(|| {
            vec![Violation::new(
                rules::NO_END_ENTITY_CERTIFICATE,
                "/ContentInfo/SignedData/certificates",
                "в контейнере нет сертификата подписанта",
            )]
        })?;

    let other_certificates = certificates
        .iter()
        .filter_map(|c| match c {
            CertificateChoices::Certificate(cert) if cert != certificate => cert.to_der().ok(),
            _ => None,
        })
        .collect();

    Ok(ParsedSignature {
        digest_algorithm: DigestAlgorithm::from_oid(signer.digest_alg.oid),
        message_digest,
        signature_algorithm: signer.signature_algorithm.oid.to_string(),
        certificate: signer_certificate(certificate)?,
        signing_time,
        other_certificates,
        signed_attributes,
        signature_value: signer.signature.as_bytes().to_vec(),
        container: encoded.to_vec(),
    })
}

/// Does the SignerInfo's `sid` name this certificate?
fn identifies(sid: &SignerIdentifier, cert: &Certificate) -> bool {
    let tbs = &cert.tbs_certificate;
    match sid {
        SignerIdentifier::IssuerAndSerialNumber(is) => is.issuer == tbs.issuer && is.serial_number == tbs.serial_number,
        SignerIdentifier::SubjectKeyIdentifier(ski) => tbs
            .extensions
            .iter()
            .flatten()
            .filter(|e| e.extn_id == OID_SUBJECT_KEY_ID)
            .filter_map(|e| OctetString::from_der(e.extn_value.as_bytes()).ok())
            .any(|id| id.as_bytes() == ski.0.as_bytes()),
    }
}

fn signer_certificate(cert: &Certificate) -> Result<SignerCertificate, Vec<Violation>> {
    let tbs = &cert.tbs_certificate;
    let name_string = |name: &x509_cert::name::Name, oid: ObjectIdentifier| -> Option<String> {
        name.0.iter().flat_map(|rdn| rdn.0.iter()).filter(|atv| atv.oid == oid).find_map(|atv| match atv.value.tag() {
            Tag::NumericString | Tag::PrintableString | Tag::Utf8String | Tag::Ia5String => {
                std::str::from_utf8(atv.value.value()).ok().map(|s| s.trim().to_owned())
            }
            _ => None,
        })
    };
    let time = |t: x509_cert::time::Time, field: &str| {
        let d = t.to_unix_duration();
        i64::try_from(d.as_secs())
            .ok()
            .and_then(|secs| DateTime::from_timestamp(secs, d.subsec_nanos()))
            .ok_or_else(|| decoding(&format!("{CERTIFICATE}/tbsCertificate/validity/{field}"), "дата вне диапазона"))
    };
    Ok(SignerCertificate {
        snils: name_string(&tbs.subject, OID_SNILS).and_then(|s| Snils::parse(&s).ok()),
        ogrn: name_string(&tbs.subject, OID_OGRN),
        issuer: name_string(&tbs.issuer, OID_COMMON_NAME),
        not_before: time(tbs.validity.not_before, "notBefore")?,
        not_after: time(tbs.validity.not_after, "notAfter")?,
        serial_number: tbs.serial_number.as_bytes().iter().map(|b| format!("{b:02X}")).collect(),
        key_usage: key_usage(cert),
        der: cert.to_der().map_err(|e| decoding(CERTIFICATE, e))?,
    })
}

/// The key usage extension's bits: a BIT STRING, bit 0 the most significant of its first
/// byte.
fn key_usage(cert: &Certificate) -> Option<KeyUsage> {
    let ext = cert.tbs_certificate.extensions.iter().flatten().find(|e| e.extn_id == OID_KEY_USAGE)?;
    let bits = der::asn1::BitString::from_der(ext.extn_value.as_bytes()).ok()?;
    let bytes = bits.raw_bytes();
    let mut out = 0u16;
    for i in 0..9 {
        if bytes.get(i / 8).is_some_and(|b| b & (0x80 >> (i % 8)) != 0) {
            out |= 1 << i;
        }
    }
    Some(KeyUsage(out))
}

/// The signed attributes of the (single) SignerInfo as they are in the container,
/// re-tagged from `[0] IMPLICIT` to `SET OF` (RFC 5652 §5.4): the bytes the signature is over.
fn raw_signed_attributes(signed_data: &[u8]) -> der::Result<Option<Vec<u8>>> {
    let mut reader = SliceReader::new(signed_data)?;
    let mut last = None;
    while !reader.is_finished() {
        last = Some(AnyRef::decode(&mut reader)?);
    }
    let Some(signer_infos) = last else { return Ok(None) };
    let mut reader = SliceReader::new(signer_infos.value())?;
    let signer_info = AnyRef::decode(&mut reader)?;
    let mut reader = SliceReader::new(signer_info.value())?;
    while !reader.is_finished() {
        let field = AnyRef::decode(&mut reader)?;
        if field.tag() == (Tag::ContextSpecific { constructed: true, number: TagNumber::N0 }) {
            return Ok(Some(Any::new(Tag::Set, field.value())?.to_der()?));
        }
    }
    Ok(None)
}

/// How the signed digest compares with the document.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum DigestStatus {
    /// The digest of the document equals `messageDigest`.
    Matches,
    /// The digest of the document differs from `messageDigest`.
    Mismatch,
    /// An algorithm REMD does not take (by OID).
    Unsupported(String),
}

/// The digest of `document` by `algorithm`, when it is one the gateway computes.
pub fn digest(algorithm: &DigestAlgorithm, document: &[u8]) -> Option<Vec<u8>> {
    match algorithm {
        DigestAlgorithm::Sha256 => Some(Sha256::digest(document).to_vec()),
        DigestAlgorithm::Streebog256 => Some(Streebog256::digest(document).to_vec()),
        DigestAlgorithm::Streebog512 => Some(Streebog512::digest(document).to_vec()),
        DigestAlgorithm::Other(_) => None,
    }
}

pub fn digest_status(signature: &ParsedSignature, document: &[u8]) -> DigestStatus {
    compare(signature, digest(&signature.digest_algorithm, document).as_deref())
}

fn compare(signature: &ParsedSignature, document_digest: Option<&[u8]>) -> DigestStatus {
    match document_digest {
        Some(d) if d == signature.message_digest => DigestStatus::Matches,
        Some(_) => DigestStatus::Mismatch,
        None => DigestStatus::Unsupported(signature.digest_algorithm.oid()),
    }
}

/// The digests of one document, each algorithm computed once however many signatures use
/// it (Streebog over a 30 KB document costs about ten times SHA-256).
pub struct DocumentDigests<'a> {
    document: &'a [u8],
    done: Vec<(DigestAlgorithm, Option<Vec<u8>>)>,
}

impl<'a> DocumentDigests<'a> {
    pub fn new(document: &'a [u8]) -> Self {
        Self { document, done: Vec::new() }
    }

    pub fn document(&self) -> &'a [u8] {
        self.document
    }

    /// The digest by `algorithm`; `None` for an algorithm the gateway does not compute.
    pub fn get(&mut self, algorithm: &DigestAlgorithm) -> Option<&[u8]> {
        let i = match self.done.iter().position(|(a, _)| a == algorithm) {
            Some(i) => i,
            None => {
                self.done.push((algorithm.clone(), digest(algorithm, self.document)));
                self.done.len() - 1
            }
        };
        self.done[i].1.as_deref()
    }
}

/// Checks a parsed signature against the document bytes and the document's creation time
/// (`effectiveTime`): the algorithms (GOST R 34.10/34.11-2012 only, as REMD), the digest,
/// the key usage and the certificate's validity at the creation time and at `signingTime`.
/// Every violation found.
pub fn check_signature(cms: &ParsedSignature, document: &[u8], created: DateTime<FixedOffset>) -> Vec<Violation> {
    check_signature_with(cms, &mut DocumentDigests::new(document), created)
}

/// [`check_signature`] with the document's digests shared among its signatures.
pub fn check_signature_with(
    cms: &ParsedSignature,
    digests: &mut DocumentDigests<'_>,
    created: DateTime<FixedOffset>,
) -> Vec<Violation> {
    let mut out = Vec::new();
    if cms.digest_algorithm == DigestAlgorithm::Sha256 {
        out.push(Violation::new(
            rules::UNKNOWN_ALGORITHM,
            format!("{SIGNER_INFO}/digestAlgorithm"),
            "SHA-256 РЭМД не принимает: нужен ГОСТ Р 34.11-2012",
        ));
    }
    match compare(cms, digests.get(&cms.digest_algorithm)) {
        DigestStatus::Matches => {}
        DigestStatus::Mismatch => out.push(Violation::new(
            rules::INCONSISTENT_DIGESTS,
            format!("{SIGNER_INFO}/signedAttrs/messageDigest"),
            "подпись сделана не для этого документа: хеш документа не совпадает с подписанным",
        )),
        DigestStatus::Unsupported(oid) => out.push(Violation::new(
            rules::UNKNOWN_ALGORITHM,
            format!("{SIGNER_INFO}/digestAlgorithm"),
            format!("неподдерживаемый алгоритм хеширования {oid} (ожидается ГОСТ Р 34.11-2012)"),
        )),
    }
    let algorithm = cms.signature_algorithm.as_str();
    if !GOST_SIGNATURE_ALGORITHMS.contains(&algorithm) {
        out.push(Violation::new(
            rules::UNKNOWN_ALGORITHM,
            format!("{SIGNER_INFO}/signatureAlgorithm"),
            format!("неподдерживаемый алгоритм подписи {algorithm} (ожидается ГОСТ Р 34.10-2012)"),
        ));
    }
    if !cms.certificate.key_usage.is_some_and(KeyUsage::allows_signing) {
        out.push(Violation::new(
            rules::INVALID_CERT_KEY_USAGE,
            format!("{CERTIFICATE}/tbsCertificate/extensions/keyUsage"),
            "назначение ключа сертификата не допускает электронную подпись (нужен digitalSignature)",
        ));
    }
    if let Some(signed) = cms.signing_time
        && (signed < cms.certificate.not_before || signed > cms.certificate.not_after)
    {
        let rule = if signed < cms.certificate.not_before {
            rules::DOC_DATE_MISMATCH_CERT_NOT_BEFORE
        } else {
            rules::DOC_DATE_MISMATCH_CERT_NOT_AFTER
        };
        out.push(Violation::new(
            rule,
            format!("{SIGNER_INFO}/signedAttrs/signingTime"),
            format!(
                "документ подписан {} — вне срока действия сертификата подписи",
                signed.format("%Y-%m-%d %H:%M UTC")
            ),
        ));
    }
    let created = created.with_timezone(&Utc);
    if created < cms.certificate.not_before {
        out.push(Violation::new(
            rules::DOC_DATE_MISMATCH_CERT_NOT_BEFORE,
            format!("{CERTIFICATE}/tbsCertificate/validity/notBefore"),
            format!(
                "сертификат подписи начинает действовать {} — позже даты создания документа",
                cms.certificate.not_before.format("%Y-%m-%d %H:%M UTC")
            ),
        ));
    }
    if created > cms.certificate.not_after {
        out.push(Violation::new(
            rules::DOC_DATE_MISMATCH_CERT_NOT_AFTER,
            format!("{CERTIFICATE}/tbsCertificate/validity/notAfter"),
            format!(
                "сертификат подписи истёк {} — раньше даты создания документа",
                cms.certificate.not_after.format("%Y-%m-%d %H:%M UTC")
            ),
        ));
    }
    out
}

/// The organisation's signature: what [`check_signature`] checks, and a certificate with
/// the organisation's OGRN (`1.2.643.100.1`, 13 digits), not a person's.
pub fn check_org_signature(cms: &ParsedSignature, document: &[u8], created: DateTime<FixedOffset>) -> Vec<Violation> {
    check_org_signature_with(cms, &mut DocumentDigests::new(document), created)
}

/// [`check_org_signature`] with the document's digests shared among its signatures.
pub fn check_org_signature_with(
    cms: &ParsedSignature,
    digests: &mut DocumentDigests<'_>,
    created: DateTime<FixedOffset>,
) -> Vec<Violation> {
    let mut out = check_signature_with(cms, digests, created);
    let ogrn_ok =
        cms.certificate.ogrn.as_deref().is_some_and(|o| o.len() == 13 && o.bytes().all(|b| b.is_ascii_digit()));
    if !ogrn_ok {
        out.push(Violation::new(
            rules::VALUE_MISMATCH_METADATA_AND_CERTIFICATE,
            format!("{CERTIFICATE}/tbsCertificate/subject/OGRN"),
            "в сертификате подписи организации нет ОГРН (атрибут 1.2.643.100.1, 13 цифр)",
        ));
    }
    out
}

/// Where the signer of a personal signature appears in the header.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SignerMatch {
    /// Indexes (0-based) into [`CdaHeader::authors`] of the authors with the certificate's SNILS.
    pub authors: Vec<usize>,
    /// The legal authenticator has the certificate's SNILS.
    pub legal_authenticator: bool,
}

/// Finds the author(s) and/or the legal authenticator whose SNILS is the one in the
/// signing certificate (REMD: `VALUE_MISMATCH_METADATA_AND_CERTIFICATE` when nobody is).
pub fn match_signer(header: &CdaHeader, cms: &ParsedSignature) -> Result<SignerMatch, Violation> {
    let path = format!("{CERTIFICATE}/tbsCertificate/subject/SNILS");
    let Some(snils) = &cms.certificate.snils else {
        return Err(Violation::new(
            rules::VALUE_MISMATCH_METADATA_AND_CERTIFICATE,
            path,
            "в сертификате подписи нет корректного СНИЛС (атрибут 1.2.643.100.3)",
        ));
    };
    let authors: Vec<usize> = header
        .authors
        .iter()
        .enumerate()
        .filter(|(_, a)| a.assigned.as_ref().and_then(|p| p.snils()) == Some(snils))
        .map(|(i, _)| i)
        .collect();
    let legal_authenticator =
        header.legal_authenticator().and_then(|l| l.assigned.as_ref()).and_then(|p| p.snils()) == Some(snils);
    if authors.is_empty() && !legal_authenticator {
        return Err(Violation::new(
            rules::VALUE_MISMATCH_METADATA_AND_CERTIFICATE,
            path,
            "СНИЛС владельца сертификата не совпадает ни с одним автором или подписантом документа",
        ));
    }
    Ok(SignerMatch { authors, legal_authenticator })
}

/// Checks the personal signatures of one submission together: the same digest where the
/// algorithm is the same (`INCONSISTENT_DIGESTS`), one signature per person
/// (`SIGNATURE_DUPLICATION`), and one by the legal authenticator
/// (`LEGAL_AUTHENTICATOR_NOT_FOUND`).
pub fn check_personal_signatures(header: &CdaHeader, signatures: &[ParsedSignature]) -> Vec<Violation> {
    let mut out = Vec::new();
    for (i, s) in signatures.iter().enumerate() {
        let earlier = &signatures[..i];
        if earlier.iter().any(|e| e.digest_algorithm == s.digest_algorithm && e.message_digest != s.message_digest) {
            out.push(Violation::new(
                rules::INCONSISTENT_DIGESTS,
                format!("/signatures[{}]{SIGNER_INFO}/signedAttrs/messageDigest", i + 1),
                "подписи сделаны для разных документов: хеши не совпадают",
            ));
        }
        if s.certificate.snils.is_some() && earlier.iter().any(|e| e.certificate.snils == s.certificate.snils) {
            out.push(Violation::new(
                rules::SIGNATURE_DUPLICATION,
                format!("/signatures[{}]", i + 1),
                "две подписи одного и того же сотрудника",
            ));
        }
    }
    let la = header.legal_authenticator().and_then(|l| l.assigned.as_ref()).and_then(|p| p.snils());
    if let Some(la) = la
        && !signatures.iter().any(|s| s.certificate.snils.as_ref() == Some(la))
    {
        out.push(Violation::new(
            rules::LEGAL_AUTHENTICATOR_NOT_FOUND,
            "/ClinicalDocument/legalAuthenticator",
            "нет подписи сотрудника, придавшего документу юридическую силу (legalAuthenticator)",
        ));
    }
    out
}

/// Verifies what [`check_signature`] cannot: the signature value over the signed
/// attributes and the certificate chain to a trusted CA.
///
/// `created` is the document's creation time: chains are judged at it (and at the
/// signature's `signingTime` when it has one), revocation at the time of the check.
///
/// `Ok(violations)`: the verifier reached a verdict (empty when the signature is valid).
/// `Err(failure)`: it could not (the verification service is down, say); try again later.
/// The gateway implements it in the process with the GOST backend (`egisz-verifier`'s
/// `GostVerifier`) and over HTTP for a certified provider (`HttpVerifier`).
#[async_trait::async_trait]
pub trait SignatureVerifier: Send + Sync {
    async fn verify(
        &self,
        signature: &ParsedSignature,
        document: &[u8],
        created: DateTime<FixedOffset>,
    ) -> Result<Vec<Violation>, Failure>;
}
