//! A test PKI in GOST R 34.10-2012 (feature `test-pki`), for tests and the sandbox: CAs
//! (root and subordinate, 256- or 512-bit keys), doctor (SNILS) and organisation (OGRN)
//! certificates shaped like Russian qualified certificates, CRLs, and detached CMS and
//! CAdES-BES signatures.
//!
//! Keys come from a seed string (the same seed, the same key: a CA made from
//! [`SANDBOX_CA_SEED`] in two processes is the same CA), so the gateway, the REMD emulator
//! and `sandbox_request` agree without sharing files. Signatures are GOST's own,
//! randomised. Nothing made here is worth anything: the seeds are public.
//!
//! Panics only if OpenSSL refuses what this module builds — a bug here or a missing
//! engine, not a condition of the caller's data.

use openssl::asn1::{Asn1Integer, Asn1Object, Asn1OctetString, Asn1Time, Asn1Type};
use openssl::bn::BigNum;
use openssl::cms::{CMSOptions, CmsContentInfo};
use openssl::hash::MessageDigest;
use openssl::nid::Nid;
use openssl::pkey::{PKey, Private};
use openssl::stack::Stack;
use openssl::x509::extension::{AuthorityKeyIdentifier, BasicConstraints, KeyUsage, SubjectKeyIdentifier};
use openssl::x509::{X509, X509Builder, X509CrlBuilder, X509Extension, X509Name, X509NameBuilder, X509RevokedBuilder};

use crate::Gost;
use crate::certificate::Certificate;
use crate::signature::Digest;

/// The seed of the sandbox's test CA: what the sandbox trusts by default, and what the
/// sandbox's example requests and the tests sign with. Public on purpose.
pub const SANDBOX_CA_SEED: &str = "egisz-sandbox-ca";

/// `CMS_CADES` of `<openssl/cms.h>` (OpenSSL 3.0): adds the ESS signing-certificate-v2
/// attribute, making the signature CAdES-BES. The `openssl` crate does not name it.
const CMS_CADES: u32 = 0x10_0000;

/// `NID_SNILS` and `NID_OGRN` of `<openssl/obj_mac.h>`: OpenSSL encodes both as NumericString.
const NID_SNILS: i32 = 1006;
const NID_OGRN: i32 = 1005;

/// The key size of GOST R 34.10-2012.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Strength {
    /// 256-bit key (CryptoPro A parameters), Streebog-256 digests.
    Gost256,
    /// 512-bit key (TC26 A parameters), Streebog-512 digests.
    Gost512,
}

impl Strength {
    fn digest(self) -> MessageDigest {
        let d = match self {
            Strength::Gost256 => Digest::Streebog256,
            Strength::Gost512 => Digest::Streebog512,
        };
        d.message_digest().expect("the engine's Streebog")
    }
}

/// Whose certificate it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Holder {
    /// A medical worker: SNILS (`1.2.643.100.3`, NumericString).
    Doctor { snils: String },
    /// An organisation: OGRN (`1.2.643.100.1`, NumericString).
    Organization { ogrn: String },
}

/// What the certificate's key may do.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Usage {
    /// digitalSignature and nonRepudiation, as qualified signing certificates have.
    Signing,
    /// keyEncipherment only: not for signatures (REMD: `INVALID_CERT_KEY_USAGE`).
    EnciphermentOnly,
}

/// One end-entity certificate to issue.
#[derive(Debug, Clone)]
pub struct Profile {
    pub seed: String,
    pub holder: Holder,
    /// Seconds since 1970.
    pub not_before: i64,
    pub not_after: i64,
    pub usage: Usage,
    pub strength: Strength,
}

impl Profile {
    pub fn doctor(seed: &str, snils: &str, not_before: i64, not_after: i64) -> Self {
        Self {
            seed: seed.to_owned(),
            holder: Holder::Doctor { snils: snils.to_owned() },
            not_before,
            not_after,
            usage: Usage::Signing,
            strength: Strength::Gost256,
        }
    }

    pub fn organization(seed: &str, ogrn: &str, not_before: i64, not_after: i64) -> Self {
        Self { holder: Holder::Organization { ogrn: ogrn.to_owned() }, ..Self::doctor(seed, "", not_before, not_after) }
    }

    pub fn strength(mut self, strength: Strength) -> Self {
        self.strength = strength;
        self
    }

    pub fn usage(mut self, usage: Usage) -> Self {
        self.usage = usage;
        self
    }
}

/// The PKCS#8 prefix of a GOST R 34.10-2012 private key as the engine writes it, before the
/// raw key (little-endian): 256-bit with CryptoPro A parameters, 512-bit with TC26 A.
const PKCS8_256: &str = "3046020100301f06082a85030701010101301306072a85030202230106082a850307010102020420";
const PKCS8_512: &str = "3068020100302106082a85030701010102301506092a850307010201020106082a850307010102030440";

fn hex(s: &str) -> Vec<u8> {
    (0..s.len()).step_by(2).map(|i| u8::from_str_radix(&s[i..i + 2], 16).expect("hex")).collect()
}

/// A key from a seed: SHA-512 of the seed, the top bits cleared so that it is below the
/// group's order.
fn key_from_seed(_: &Gost, seed: &str, strength: Strength) -> PKey<Private> {
    let bytes = openssl::sha::sha512(format!("key:{seed}").as_bytes());
    let (prefix, len) = match strength {
        Strength::Gost256 => (PKCS8_256, 32),
        Strength::Gost512 => (PKCS8_512, 64),
    };
    let mut raw = bytes[..len].to_vec();
    raw[len - 1] &= 0x3F; // little-endian: the last byte is the most significant
    raw[0] |= 1; // never zero
    let mut der = hex(prefix);
    der.extend_from_slice(&raw);
    PKey::private_key_from_pkcs8(&der).expect("a GOST private key (is the engine loaded?)")
}

fn serial_from_seed(seed: &str) -> Asn1Integer {
    let digest = openssl::sha::sha256(format!("serial:{seed}").as_bytes());
    let mut bytes = [0u8; 12];
    bytes.copy_from_slice(&digest[..12]);
    bytes[0] = (bytes[0] & 0x7F) | 0x01; // positive, no leading zero
    BigNum::from_slice(&bytes).and_then(|bn| bn.to_asn1_integer()).expect("a serial number")
}

fn name(common_name: &str, extra: Option<(i32, &str)>) -> X509Name {
    let mut b = X509NameBuilder::new().expect("a name");
    b.append_entry_by_nid_with_type(Nid::COUNTRYNAME, "RU", Asn1Type::PRINTABLESTRING).expect("C");
    b.append_entry_by_nid_with_type(Nid::COMMONNAME, common_name, Asn1Type::UTF8STRING).expect("CN");
    if let Some((nid, value)) = extra {
        b.append_entry_by_nid_with_type(Nid::from_raw(nid), value, Asn1Type::NUMERICSTRING).expect("SNILS / OGRN");
    }
    b.build()
}

fn time(t: i64) -> Asn1Time {
    Asn1Time::from_unix(t).expect("a certificate time")
}

/// The CRLDistributionPoints extension naming one `http://` address (RFC 5280 §4.2.1.13),
/// DER-encoded by hand: the `openssl` crate builds it only from OpenSSL's config syntax.
fn crl_distribution_point(url: &str) -> X509Extension {
    fn tlv(tag: u8, body: &[u8]) -> Vec<u8> {
        let mut out = vec![tag];
        let len = body.len();
        if len < 0x80 {
            out.push(len as u8);
        } else {
            out.extend([0x82, (len >> 8) as u8, len as u8]);
        }
        out.extend_from_slice(body);
        out
    }
    // DistributionPoint { distributionPoint [0] { fullName [0] { uniformResourceIdentifier [6] } } }
    let uri = tlv(0x86, url.as_bytes());
    let der = tlv(0x30, &tlv(0x30, &tlv(0xA0, &tlv(0xA0, &uri))));
    let oid = Asn1Object::from_str("2.5.29.31").expect("an OID");
    let value = Asn1OctetString::new_from_bytes(&der).expect("an octet string");
    X509Extension::new_from_der(&oid, false, &value).expect("a CRL distribution point")
}

/// A v3 certificate's fields, before its extensions and signature.
fn unsigned(
    serial: &openssl::asn1::Asn1IntegerRef,
    subject: &openssl::x509::X509NameRef,
    issuer: &openssl::x509::X509NameRef,
    key: &PKey<Private>,
    not_before: i64,
    not_after: i64,
) -> X509Builder {
    let mut b = X509Builder::new().expect("a builder");
    b.set_version(2).expect("v3");
    b.set_serial_number(serial).expect("serial");
    b.set_subject_name(subject).expect("subject");
    b.set_issuer_name(issuer).expect("issuer");
    b.set_pubkey(key).expect("key");
    b.set_not_before(&time(not_before)).expect("notBefore");
    b.set_not_after(&time(not_after)).expect("notAfter");
    b
}

/// The subject key identifier; with an `issuer`, its key identifier and its CRL address.
fn key_identifiers(b: &mut X509Builder, issuer: Option<&TestCa>) {
    let ski = SubjectKeyIdentifier::new().build(&b.x509v3_context(None, None)).expect("ski");
    b.append_extension(ski).expect("ski");
    let Some(issuer) = issuer else { return };
    let aki = AuthorityKeyIdentifier::new()
        .keyid(true)
        .build(&b.x509v3_context(Some(&issuer.certificate.x509), None))
        .expect("aki");
    b.append_extension(aki).expect("aki");
    if let Some(url) = &issuer.crl_url {
        b.append_extension(crl_distribution_point(url)).expect("cdp");
    }
}

/// The validity of every test CA: 2000-01-01 … 2099-12-31.
const CA_FROM: i64 = 946_684_800;
const CA_TILL: i64 = 4_102_444_799;

/// A test certificate authority.
pub struct TestCa {
    gost: &'static Gost,
    key: PKey<Private>,
    certificate: Certificate,
    strength: Strength,
    /// Certificates between this CA and its root (its own included when subordinate).
    path: Vec<Certificate>,
    crl_url: Option<String>,
}

impl TestCa {
    /// A self-signed CA with a 256-bit key from `seed`.
    pub fn new(gost: &'static Gost, seed: &str) -> Self {
        Self::root(gost, seed, Strength::Gost256, "Тестовый УЦ egisz-gateway")
    }

    /// A self-signed CA named `common_name`.
    pub fn root(gost: &'static Gost, seed: &str, strength: Strength, common_name: &str) -> Self {
        let key = key_from_seed(gost, &format!("ca:{seed}"), strength);
        let subject = name(common_name, None);
        let x509 = Self::ca_certificate(&key, &subject, None, seed, strength);
        Self { gost, key, certificate: Certificate { x509 }, strength, path: Vec::new(), crl_url: None }
    }

    /// A CA issued by this one (its certificate carries this CA's CRL address, if any).
    pub fn subordinate(&self, seed: &str, common_name: &str) -> TestCa {
        let key = key_from_seed(self.gost, &format!("ca:{seed}"), self.strength);
        let subject = name(common_name, None);
        let x509 = Self::ca_certificate(&key, &subject, Some(self), seed, self.strength);
        let certificate = Certificate { x509 };
        let mut path = vec![certificate.clone()];
        path.extend(self.path.iter().cloned());
        TestCa { gost: self.gost, key, certificate, strength: self.strength, path, crl_url: None }
    }

    fn ca_certificate(
        key: &PKey<Private>,
        subject: &X509Name,
        issuer: Option<&TestCa>,
        seed: &str,
        strength: Strength,
    ) -> X509 {
        let issuer_name = issuer.map(|i| i.certificate.x509.subject_name()).unwrap_or(subject);
        let serial = serial_from_seed(&format!("ca:{seed}"));
        let mut b = unsigned(&serial, subject, issuer_name, key, CA_FROM, CA_TILL);
        b.append_extension(BasicConstraints::new().critical().ca().build().expect("bc")).expect("bc");
        b.append_extension(KeyUsage::new().critical().key_cert_sign().crl_sign().build().expect("ku")).expect("ku");
        key_identifiers(&mut b, issuer);
        let (signer, digest) = match issuer {
            Some(i) => (&i.key, i.strength.digest()),
            None => (key, strength.digest()),
        };
        b.sign(signer, digest).expect("a signed CA certificate");
        b.build()
    }

    /// Certificates issued after this carry `url` as their CRL distribution point.
    pub fn with_crl_url(mut self, url: impl Into<String>) -> Self {
        self.crl_url = Some(url.into());
        self
    }

    pub fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    pub fn certificate_der(&self) -> Vec<u8> {
        self.certificate.der()
    }

    pub fn certificate_pem(&self) -> Vec<u8> {
        self.certificate.x509.to_pem().expect("PEM")
    }

    /// An end-entity certificate as `profile` says.
    pub fn issue(&self, profile: &Profile) -> TestSigner {
        let key = key_from_seed(self.gost, &format!("leaf:{}", profile.seed), profile.strength);
        let subject = match &profile.holder {
            Holder::Doctor { snils } => name("Тестовый медицинский работник", Some((NID_SNILS, snils.as_str()))),
            Holder::Organization { ogrn } => name("Тестовая медицинская организация", Some((NID_OGRN, ogrn.as_str()))),
        };
        let serial = serial_from_seed(&profile.seed);
        let issuer_name = self.certificate.x509.subject_name();
        let mut b = unsigned(&serial, &subject, issuer_name, &key, profile.not_before, profile.not_after);
        b.append_extension(BasicConstraints::new().build().expect("bc")).expect("bc");
        let usage = match profile.usage {
            Usage::Signing => KeyUsage::new().critical().digital_signature().non_repudiation().build(),
            Usage::EnciphermentOnly => KeyUsage::new().critical().key_encipherment().build(),
        };
        b.append_extension(usage.expect("ku")).expect("ku");
        key_identifiers(&mut b, Some(self));
        b.sign(&self.key, self.strength.digest()).expect("a signed certificate");
        TestSigner { key, certificate: Certificate { x509: b.build() }, path: self.path.clone() }
    }

    /// A medical worker's signing certificate, 256-bit.
    pub fn issue_doctor(&self, seed: &str, snils: &str, not_before: i64, not_after: i64) -> TestSigner {
        self.issue(&Profile::doctor(seed, snils, not_before, not_after))
    }

    /// An organisation's signing certificate, 256-bit.
    pub fn issue_organization(&self, seed: &str, ogrn: &str, not_before: i64, not_after: i64) -> TestSigner {
        self.issue(&Profile::organization(seed, ogrn, not_before, not_after))
    }

    /// A CRL of this CA (DER) revoking `revoked` (certificate, when), issued at
    /// `this_update` and due again at `next_update`.
    pub fn crl(&self, revoked: &[(&Certificate, i64)], this_update: i64, next_update: i64) -> Vec<u8> {
        let serials: Vec<(String, i64)> = revoked.iter().map(|(c, at)| (c.serial_hex(), *at)).collect();
        self.crl_of_serials(&serials, this_update, next_update)
    }

    /// A CRL of this CA (DER) revoking the certificates with these serial numbers (hex, as
    /// [`Certificate::serial_hex`] gives them); a serial that is not hex is left out.
    pub fn crl_of_serials(&self, revoked: &[(String, i64)], this_update: i64, next_update: i64) -> Vec<u8> {
        let mut b = X509CrlBuilder::new().expect("a CRL builder");
        b.set_issuer_name(self.certificate.x509.subject_name()).expect("issuer");
        b.set_last_update(&time(this_update)).expect("thisUpdate");
        b.set_next_update(&time(next_update)).expect("nextUpdate");
        // AuthorityKeyIdentifier { keyIdentifier [0] }: the CA's subject key identifier.
        let ski = self.certificate.x509.subject_key_id().expect("a CA certificate has a subject key id").as_slice();
        let mut aki = vec![0x30, ski.len() as u8 + 2, 0x80, ski.len() as u8];
        aki.extend_from_slice(ski);
        let oid = Asn1Object::from_str("2.5.29.35").expect("an OID");
        let value = Asn1OctetString::new_from_bytes(&aki).expect("an octet string");
        b.append_extension(X509Extension::new_from_der(&oid, false, &value).expect("aki")).expect("aki");
        // CRLNumber: thisUpdate, which grows from one list to the next.
        let mut number: Vec<u8> = this_update.max(1).to_be_bytes().into_iter().skip_while(|b| *b == 0).collect();
        if number[0] & 0x80 != 0 {
            number.insert(0, 0);
        }
        let mut crl_number = vec![0x02, number.len() as u8];
        crl_number.extend(number);
        let oid = Asn1Object::from_str("2.5.29.20").expect("an OID");
        let value = Asn1OctetString::new_from_bytes(&crl_number).expect("an octet string");
        b.append_extension(X509Extension::new_from_der(&oid, false, &value).expect("crl number")).expect("number");
        for (serial, at) in revoked {
            let Ok(serial) = BigNum::from_hex_str(serial).and_then(|bn| bn.to_asn1_integer()) else { continue };
            let mut r = X509RevokedBuilder::new().expect("an entry");
            r.set_serial_number(&serial).expect("serial");
            r.set_revocation_date(&time(*at)).expect("date");
            b.add_revoked(r.build()).expect("an entry");
        }
        b.sign(&self.key, self.strength.digest()).expect("a signed CRL");
        b.build().expect("a CRL").to_der().expect("DER")
    }
}

/// How a test signature is made.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct SignOptions {
    /// CAdES-BES: with the ESS signing-certificate-v2 attribute.
    pub cades: bool,
    /// The `signingTime` attribute, seconds since 1970; `None`: now (OpenSSL's clock).
    pub signing_time: Option<i64>,
}

/// A key and its certificate, issued by a [`TestCa`].
pub struct TestSigner {
    key: PKey<Private>,
    certificate: Certificate,
    /// The issuing CA's certificates up to (not including) the root: embedded in every
    /// signature, as signers do.
    path: Vec<Certificate>,
}

impl TestSigner {
    pub fn certificate(&self) -> &Certificate {
        &self.certificate
    }

    pub fn certificate_der(&self) -> Vec<u8> {
        self.certificate.der()
    }

    /// A detached CMS SignedData (DER) over `content`: the key's Streebog digest, GOST R
    /// 34.10-2012, the signer's certificate (and its CA path) embedded, signed attributes
    /// contentType, signingTime (now) and messageDigest.
    pub fn sign_detached(&self, content: &[u8]) -> Vec<u8> {
        self.sign(content, &SignOptions::default())
    }

    /// [`Self::sign_detached`] with the ESS signing-certificate-v2 attribute: CAdES-BES.
    pub fn sign_cades_bes(&self, content: &[u8]) -> Vec<u8> {
        self.sign(content, &SignOptions { cades: true, ..SignOptions::default() })
    }

    /// A detached signature made as `options` say.
    pub fn sign(&self, content: &[u8], options: &SignOptions) -> Vec<u8> {
        let mut path = Stack::new().expect("a stack");
        for c in &self.path {
            path.push(c.x509.clone()).expect("a certificate");
        }
        let mut flags = CMSOptions::DETACHED | CMSOptions::BINARY | CMSOptions::NOSMIMECAP;
        if options.cades {
            flags |= CMSOptions::from_bits_retain(CMS_CADES);
        }
        let Some(at) = options.signing_time else {
            return CmsContentInfo::sign(
                Some(&self.certificate.x509),
                Some(&self.key),
                Some(&path),
                Some(content),
                flags,
            )
            .expect("a GOST signature")
            .to_der()
            .expect("DER");
        };
        let mut cms = CmsContentInfo::sign(
            Some(&self.certificate.x509),
            Some(&self.key),
            Some(&path),
            None,
            flags | CMSOptions::PARTIAL,
        )
        .expect("a partial GOST signature");
        crate::ffi::finish_signed_at(&mut cms, content, at, flags.bits()).expect("a GOST signature at a time");
        cms.to_der().expect("DER")
    }
}
