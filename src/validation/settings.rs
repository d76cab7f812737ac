//! `[validation]`: what intake checks beyond the document itself, declared here, where it
//! is used, and filled by the configuration reader ([`crate::config`]); every key is
//! documented for operators in `config/default.toml`.

use std::path::PathBuf;
use std::time::Duration;

use url::Url;

use super::policy::KindPolicies;

/// Which signature verifier intake uses.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum VerifierChoice {
    /// `"none"`: structure and digest checks only; signatures are not verified.
    None,
    /// `"external"`: an HTTP verification service (`docs/validation.md`, "The verification
    /// service") at `validation.verifier_url` (required), each call limited by
    /// `validation.verifier_timeout_ms` (default: 5 s).
    External { url: Url, timeout: Duration },
    /// `"gost"` (the default): GOST R 34.10-2012 in the process (`egisz-gost`): the chain to
    /// `trust`, revocation by CRL.
    Gost(GostSettings),
}

/// Where the GOST verifier's trusted CAs come from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum GostTrust {
    /// The accredited CAs: every PEM or DER certificate file in `validation.trust_dir`,
    /// and/or the ministry's list of accredited CAs (`validation.tsl_url`).
    Accredited { dir: Option<PathBuf>, list: Option<AccreditedList> },
    /// The sandbox's GOST test CA only (neither given, the default): a sandbox piece.
    SandboxCa,
}

impl GostTrust {
    /// The CAs in `dir` only.
    pub fn directory(dir: PathBuf) -> Self {
        GostTrust::Accredited { dir: Some(dir), list: None }
    }
}

/// The ministry's list of accredited CAs, fetched and kept.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AccreditedList {
    /// Where the list is fetched from, https (`validation.tsl_url`). Default: empty: no list
    /// is used.
    pub url: Url,
    /// Where the last good copy is kept (read at start; replaced only by a list that reads)
    /// (`validation.tsl_file`). Default: `data/accredited-cas.xml`.
    pub file: PathBuf,
    /// How often it is fetched again (`validation.tsl_refresh`). Default: 24 h.
    pub refresh: Duration,
}

/// `validation.verifier = "gost"`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GostSettings {
    /// Which CAs are trusted (`validation.trust_dir`, `validation.tsl_url`). Default: both
    /// empty: the sandbox's GOST test CA only.
    pub trust: GostTrust,
    /// How often `trust_dir` is read again (a broken read keeps the store in force)
    /// (`validation.trust_refresh`). Default: 10 min.
    pub trust_refresh: Duration,
    /// No usable CRL for a certificate of the chain: a warning or a refusal
    /// (`CA_INACCESSIBILITY`) (`validation.revocation`, `"warn"` or `"block"`). Default: warn.
    pub revocation: RevocationPolicy,
    /// An outbound HTTP proxy for CRL fetches (`validation.crl_proxy`).
    /// Default: none: CRLs are fetched directly.
    pub crl_proxy: Option<Url>,
    /// The whole fetch of one CRL, connecting included (`validation.crl_timeout_ms`).
    /// Default: 10 s.
    pub crl_timeout: Duration,
    /// The largest CRL read, in bytes, 1 KiB to 1 GiB (`validation.crl_max_bytes`).
    /// Default: 64 MiB.
    pub crl_max_bytes: usize,
}

/// `validation.revocation`: the verifier's own policy, read as it names it.
pub use egisz_verifier::judge::RevocationPolicy;

#[derive(Debug, Clone)]
pub struct ValidationConfig {
    /// The check of every signer against FRMR, per kind (`validation.signers`,
    /// `signers_by_kind`). Default: block for every kind.
    pub signers: KindPolicies,
    /// The check of the document's organisations and departments against the FRMO copy,
    /// per kind (`validation.frmo`, `frmo_by_kind`). Default: block for every kind.
    pub frmo: KindPolicies,
    /// How old the FRMO copy may be before its findings only warn (`validation.frmo_max_age`,
    /// humantime). Default: 72 h (three missed daily refreshes).
    pub frmo_max_age: Duration,
    /// Which signature verifier intake uses (`validation.verifier`). Default: gost, trusting
    /// the sandbox's test CA while `trust_dir` and `tsl_url` are empty.
    pub verifier: VerifierChoice,
    /// The ministry's rule packages (`validation.packages_dir`); `None`: not used.
    /// Default: `packages` (the repository's packages for kinds 40, 119 and 160).
    pub packages: Option<PackagesConfig>,
    /// What a package's XSD errors do, per kind (`validation.xsd`, `xsd_by_kind`).
    /// Default: block for every kind.
    pub xsd: KindPolicies,
    /// What a package's failed schematron asserts do, per kind (`validation.schematron`,
    /// `schematron_by_kind`). Default: block for every kind.
    pub schematron: KindPolicies,
}

/// Where the ministry's rule packages are and how they are run.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PackagesConfig {
    /// One directory per kind id (NSI 1520) holding its XSD set and schematron
    /// (`validation.packages_dir`). Default: `packages`.
    pub dir: PathBuf,
    /// How often the directory is read again for new or changed packages
    /// (`validation.packages_refresh`). Default: 1 min.
    pub refresh: Duration,
    /// The schematron's time budget for one document; past it the document is accepted with a
    /// PKG warning (`validation.schematron_time_ms`). Default: 2 s.
    pub schematron_time: Duration,
}
