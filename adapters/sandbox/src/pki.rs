//! The sandbox's GOST test CA ([`egisz_gost::test_pki::SANDBOX_CA_SEED`]): its certificate,
//! its standing CRL (revoking nothing), which the gateway's sandbox verifier and the REMD
//! emulator hold for certificates that name no CRL address, and the list the REMD emulator
//! serves over HTTP (`GET /pki/sandbox-ca.crl`) for certificates that do — with whatever
//! serials were revoked there.

/// 2020-01-01 and 2099-12-31: the standing CRL's thisUpdate and nextUpdate.
const CRL_FROM: i64 = 1_577_836_800;
const CRL_TILL: i64 = 4_102_444_799;

/// The sandbox CA's certificate, DER; empty when the GOST engine is missing (whoever trusts
/// it then fails to start, naming the package).
pub fn sandbox_ca_der() -> Vec<u8> {
    egisz_gost::Gost::load().map(|gost| sandbox_ca(gost).certificate_der()).unwrap_or_default()
}

/// The sandbox CA's CRL (DER), revoking nothing, current 2020–2099; empty when the GOST
/// engine is missing.
pub fn sandbox_crl() -> Vec<u8> {
    egisz_gost::Gost::load().map(|gost| sandbox_ca(gost).crl(&[], CRL_FROM, CRL_TILL)).unwrap_or_default()
}

fn sandbox_ca(gost: &'static egisz_gost::Gost) -> egisz_gost::test_pki::TestCa {
    egisz_gost::test_pki::TestCa::new(gost, egisz_gost::test_pki::SANDBOX_CA_SEED)
}

/// How long a served list is current: revocations are seen within this.
pub const SERVED_CRL_FOR: i64 = 60;

/// The sandbox CA's CRL (DER) revoking `revoked` (serial in hex, revocation time), current
/// from a minute before `now` for [`SERVED_CRL_FOR`] seconds; empty without the GOST engine.
pub fn sandbox_crl_revoking(revoked: &[(String, i64)], now: i64) -> Vec<u8> {
    egisz_gost::Gost::load()
        .map(|gost| sandbox_ca(gost).crl_of_serials(revoked, now - 60, now + SERVED_CRL_FOR))
        .unwrap_or_default()
}
