//! The sandbox's GOST test CA ([`egisz_gost::test_pki::SANDBOX_CA_SEED`]): its certificate
//! and its standing CRL, which the gateway's sandbox verifier and the REMD emulator hold
//! locally (the sandbox CA revokes nothing; tests that revoke serve their own CA's list
//! over HTTP at the certificates' distribution point).

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
