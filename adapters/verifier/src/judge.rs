//! What the GOST backend's findings mean, as REMD would say it. Pure: the chain's outcome,
//! the revocation status of each certificate and the policy come in; violations with REMD
//! codes, or "no verdict", come out.

use egisz_contract::Failure;
use egisz_gost::{ChainError, ChainFailure};
use egisz_semd::{Violation, rules};

/// What a missing CRL does: REMD answers `CA_INACCESSIBILITY` when it cannot learn whether
/// a certificate is revoked.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RevocationPolicy {
    /// The document is accepted with a warning (the default: a CA's server being down is
    /// no fault of the document, and REMD may reach it later).
    Warn,
    /// The document is refused with `CA_INACCESSIBILITY`.
    Block,
}

impl RevocationPolicy {
    pub fn parse(s: &str) -> Option<Self> {
        match s {
            "warn" => Some(Self::Warn),
            "block" => Some(Self::Block),
            _ => None,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Self::Warn => "warn",
            Self::Block => "block",
        }
    }
}

/// The revocation status of one certificate of the chain.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Revocation {
    /// A usable CRL of its issuer does not name it.
    Good,
    /// A usable CRL of its issuer names it, revoked at this time (seconds since 1970).
    Revoked { at: i64 },
    /// No usable CRL: why, in Russian (no address, unreachable, stale, not the issuer's…).
    Unknown { why: String },
}

/// A certificate's place in the chain: 0 the signer's, then its CAs.
pub type Depth = usize;

/// The signer's certificate in the container: where chain and revocation findings point.
const CHAIN_PATH: &str = "/ContentInfo/SignedData/certificates/Certificate";

/// The chain's failure as REMD's code.
pub fn chain_violation(e: &ChainError, at_what: &str) -> Violation {
    let why = match e.failure {
        ChainFailure::NoTrustedIssuer => "сертификат выдан не аккредитованным (не доверенным) УЦ".to_owned(),
        ChainFailure::Expired if e.depth > 0 => format!("сертификат УЦ в цепочке истёк на {at_what}"),
        ChainFailure::NotYetValid if e.depth > 0 => format!("сертификат УЦ в цепочке ещё не действовал на {at_what}"),
        ChainFailure::Expired => format!("сертификат подписи истёк на {at_what}"),
        ChainFailure::NotYetValid => format!("сертификат подписи ещё не действовал на {at_what}"),
        ChainFailure::BadSignature => "подпись УЦ на сертификате в цепочке неверна".to_owned(),
        ChainFailure::NotACa => "сертификат в цепочке выдан тем, кто не вправе выдавать сертификаты".to_owned(),
        ChainFailure::Other => "цепочка сертификатов не построена".to_owned(),
    };
    let rule = match e.failure {
        ChainFailure::Expired if e.depth == 0 => rules::DOC_DATE_MISMATCH_CERT_NOT_AFTER,
        ChainFailure::NotYetValid if e.depth == 0 => rules::DOC_DATE_MISMATCH_CERT_NOT_BEFORE,
        _ => rules::CANT_BUILD_CERT_CHAIN_TO_ACCREDITED_CA_CERT,
    };
    Violation::new(rule, CHAIN_PATH, why)
}

/// The chain's revocation statuses as findings. `Err`: no verdict (a CRL missing under
/// the `warn` policy, and nothing revoked).
pub fn revocation(statuses: &[(Depth, Revocation)], policy: RevocationPolicy) -> Result<Vec<Violation>, Failure> {
    let mut out = Vec::new();
    let mut unknown = Vec::new();
    for (depth, status) in statuses {
        match status {
            Revocation::Good => {}
            Revocation::Revoked { .. } if *depth == 0 => out.push(Violation::new(
                rules::PERSONAL_SIG_CERT_NOT_ACTUAL_ON_CHECK_DT,
                CHAIN_PATH,
                "сертификат подписи отозван удостоверяющим центром",
            )),
            Revocation::Revoked { .. } => out.push(Violation::new(
                rules::CANT_BUILD_CERT_CHAIN_TO_ACCREDITED_CA_CERT,
                CHAIN_PATH,
                "сертификат УЦ в цепочке отозван",
            )),
            Revocation::Unknown { why } => unknown.push(why.clone()),
        }
    }
    if !out.is_empty() || unknown.is_empty() {
        return Ok(out);
    }
    let why = format!("отзыв сертификата не проверен: {} (CA_INACCESSIBILITY)", unknown.join("; "));
    match policy {
        RevocationPolicy::Block => Ok(vec![Violation::new(rules::CA_INACCESSIBILITY, CHAIN_PATH, why)]),
        RevocationPolicy::Warn => Err(Failure::Permanent { reason: why }),
    }
}

/// Is a CRL current at `now`: issued, and not past its `nextUpdate` (a CRL without one is
/// current for `max_age` after `thisUpdate`)?
pub fn crl_current(this_update: i64, next_update: Option<i64>, now: i64, max_age: i64) -> bool {
    this_update <= now + 300 && now < next_update.unwrap_or(this_update.saturating_add(max_age))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rules_of(v: &[Violation]) -> Vec<&'static str> {
        v.iter().map(|v| v.rule).collect()
    }

    #[test]
    fn revoked_wins_over_unknown_and_the_policy_decides_unknown() {
        let unknown = Revocation::Unknown { why: "нет ответа".into() };
        let revoked = [(0, Revocation::Revoked { at: 5 }), (1, unknown.clone())];
        assert_eq!(
            rules_of(&revocation(&revoked, RevocationPolicy::Warn).unwrap()),
            ["PERSONAL_SIG_CERT_NOT_ACTUAL_ON_CHECK_DT"]
        );
        let ca_revoked = [(0, Revocation::Good), (1, Revocation::Revoked { at: 5 })];
        assert_eq!(
            rules_of(&revocation(&ca_revoked, RevocationPolicy::Warn).unwrap()),
            ["CANT_BUILD_CERT_CHAIN_TO_ACCREDITED_CA_CERT"]
        );
        let missing = [(0, unknown)];
        assert!(revocation(&missing, RevocationPolicy::Warn).unwrap_err().reason().contains("CA_INACCESSIBILITY"));
        assert_eq!(rules_of(&revocation(&missing, RevocationPolicy::Block).unwrap()), ["CA_INACCESSIBILITY"]);
        assert_eq!(revocation(&[(0, Revocation::Good)], RevocationPolicy::Block).unwrap(), vec![]);
    }

    #[test]
    fn a_crl_is_current_until_its_next_update() {
        assert!(crl_current(100, Some(200), 150, 10));
        assert!(!crl_current(100, Some(200), 200, 10));
        assert!(crl_current(100, None, 105, 10));
        assert!(!crl_current(100, None, 110, 10));
        assert!(!crl_current(10_000, Some(20_000), 100, 10), "issued in the future");
    }

    #[test]
    fn chain_failures_at_the_signer_are_date_mismatches() {
        let e = |failure, depth| ChainError { failure, depth, detail: String::new() };
        assert_eq!(chain_violation(&e(ChainFailure::Expired, 0), "x").rule, "DOC_DATE_MISMATCH_CERT_NOT_AFTER");
        assert_eq!(
            chain_violation(&e(ChainFailure::Expired, 1), "x").rule,
            "CANT_BUILD_CERT_CHAIN_TO_ACCREDITED_CA_CERT"
        );
        assert_eq!(
            chain_violation(&e(ChainFailure::NoTrustedIssuer, 0), "x").rule,
            "CANT_BUILD_CERT_CHAIN_TO_ACCREDITED_CA_CERT"
        );
    }
}
