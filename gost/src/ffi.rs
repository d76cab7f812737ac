//! The C functions of the system's libcrypto that the `openssl` crate does not bind, and
//! the only `unsafe` blocks of the workspace.
//!
//! - the engine interface (`ENGINE_by_id`, `ENGINE_init`, `ENGINE_set_default`,
//!   `ENGINE_free`): loads Debian's GOST engine (`gost.so`, package
//!   `libengine-gost-openssl`) into this process. Only the engine decodes GOST keys in
//!   certificates (Debian 12's `gostprov.so` provider does hashes and ciphers only), and
//!   `OPENSSL_CONF` set for the whole machine breaks other programs, so it is loaded here,
//!   in code. The interface is deprecated in OpenSSL 3 and gone in OpenSSL 4: everything
//!   above this module speaks of certificates, keys and signatures, not engines;
//! - `X509_STORE_CTX_set_time`: a chain is judged at the document's creation time, not now.
//!
//! The symbols come from the libcrypto that `openssl-sys` links (the system's OpenSSL 3).

use std::ffi::{c_char, c_int, c_uint, c_ulong};

use foreign_types::ForeignTypeRef;
use openssl::error::ErrorStack;
use openssl::x509::X509StoreContextRef;

/// `struct engine_st`: opaque, only ever handled by pointer.
#[repr(C)]
struct Engine {
    _opaque: [u8; 0],
}

/// `ENGINE_METHOD_ALL` of `<openssl/engine.h>`: every kind of method the engine offers
/// (key methods and their ASN.1 codecs, digests, ciphers).
const ENGINE_METHOD_ALL: c_uint = 0xFFFF;

unsafe extern "C" {
    fn ENGINE_by_id(id: *const c_char) -> *mut Engine;
    fn ENGINE_init(e: *mut Engine) -> c_int;
    fn ENGINE_set_default(e: *mut Engine, flags: c_uint) -> c_int;
    fn ENGINE_free(e: *mut Engine) -> c_int;
    // `time_t` is `i64` on every target Debian's OpenSSL 3 is built for that this gateway runs on.
    fn X509_STORE_CTX_set_time(ctx: *mut openssl_sys::X509_STORE_CTX, flags: c_ulong, t: i64);
}

/// Loads the engine `gost` (from OpenSSL's engines directory, or `OPENSSL_ENGINES` when
/// set) and makes it the default for what it implements. Call once per process (the crate
/// root does, behind a `OnceLock`).
pub(crate) fn load_gost_engine() -> Result<(), ErrorStack> {
    openssl_sys::init();
    // SAFETY: `c"gost"` is a NUL-terminated string that outlives the call. The result is
    // a new structural reference to the engine, or null (checked below).
    let engine = unsafe { ENGINE_by_id(c"gost".as_ptr()) };
    if engine.is_null() {
        return Err(ErrorStack::get());
    }
    // SAFETY: `engine` is the non-null structural reference just returned. `ENGINE_init`
    // takes a functional reference that is never released: the engine stays loaded for the
    // life of the process, which every GOST key and digest handed out later relies on.
    let initialised = unsafe { ENGINE_init(engine) } == 1;
    // SAFETY: the same live reference; default methods only for what the engine
    // implements (GOST), so RSA, ECDSA and SHA-2 stay OpenSSL's own.
    let defaulted = initialised && unsafe { ENGINE_set_default(engine, ENGINE_METHOD_ALL) } == 1;
    let errors = ErrorStack::get();
    // SAFETY: releases the structural reference from `ENGINE_by_id`, used no more; the
    // functional one (when `ENGINE_init` succeeded) keeps the engine alive.
    unsafe { ENGINE_free(engine) };
    if defaulted { Ok(()) } else { Err(errors) }
}

/// Sets the time a chain is verified at, in seconds since 1970.
pub(crate) fn set_check_time(ctx: &mut X509StoreContextRef, at: i64) {
    // SAFETY: `ctx` is a live, initialised store context (callers are inside
    // `X509StoreContextRef::init`'s closure); flags 0 as the OpenSSL manual gives them.
    unsafe { X509_STORE_CTX_set_time(ctx.as_ptr(), 0, at) }
}

#[cfg(feature = "test-pki")]
pub(crate) use test_pki::finish_signed_at;

/// Signing at a chosen time (the test PKI only): OpenSSL's `CMS_sign` writes the current
/// time as `signingTime`, and the `openssl` crate binds neither the signer's attributes nor
/// `CMS_final`.
#[cfg(feature = "test-pki")]
mod test_pki {
    use std::ffi::{c_int, c_uint, c_void};

    use foreign_types::{ForeignType, ForeignTypeRef};
    use openssl::asn1::Asn1Time;
    use openssl::cms::CmsContentInfoRef;
    use openssl::error::ErrorStack;

    /// `NID_pkcs9_signingTime`, `V_ASN1_UTCTIME` and `V_ASN1_GENERALIZEDTIME`.
    const NID_SIGNING_TIME: c_int = 52;
    const V_ASN1_UTCTIME: c_int = 23;
    const V_ASN1_GENERALIZEDTIME: c_int = 24;

    unsafe extern "C" {
        fn CMS_get0_SignerInfos(cms: *mut openssl_sys::CMS_ContentInfo) -> *mut openssl_sys::OPENSSL_STACK;
        fn CMS_signed_add1_attr_by_NID(
            si: *mut c_void,
            nid: c_int,
            attr_type: c_int,
            bytes: *const c_void,
            len: c_int,
        ) -> c_int;
        fn CMS_final(
            cms: *mut openssl_sys::CMS_ContentInfo,
            data: *mut openssl_sys::BIO,
            dcont: *mut openssl_sys::BIO,
            flags: c_uint,
        ) -> c_int;
    }

    /// Gives the first signer of a partial `CMS_sign` result the signing time `at` (seconds
    /// since 1970, 1950…2049 as UTCTime, otherwise GeneralizedTime, as RFC 5652 has it),
    /// then signs `content` (`CMS_final`).
    pub(crate) fn finish_signed_at(
        cms: &mut CmsContentInfoRef,
        content: &[u8],
        at: i64,
        flags: c_uint,
    ) -> Result<(), ErrorStack> {
        let time = Asn1Time::from_unix(at)?;
        // 1950-01-01 and 2050-01-01.
        let kind = if (-631_152_000..2_524_608_000).contains(&at) { V_ASN1_UTCTIME } else { V_ASN1_GENERALIZEDTIME };
        // SAFETY: `cms` is a live ContentInfo made by `CMS_sign` with `CMS_PARTIAL`, so it is
        // SignedData with one SignerInfo; the stack it returns is owned by `cms`.
        let signers = unsafe { CMS_get0_SignerInfos(cms.as_ptr()) };
        if signers.is_null() {
            return Err(ErrorStack::get());
        }
        // SAFETY: `signers` is the non-null stack above, borrowed from `cms`; index 0 exists
        // (one signer was added), and a null answer is checked.
        let signer = unsafe { openssl_sys::OPENSSL_sk_value(signers, 0) };
        if signer.is_null() {
            return Err(ErrorStack::get());
        }
        // SAFETY: `signer` is a live SignerInfo of `cms`; with length -1 the attribute value
        // is the ASN1_TIME object itself, which OpenSSL copies (`time` is freed on return).
        let added =
            unsafe { CMS_signed_add1_attr_by_NID(signer, NID_SIGNING_TIME, kind, time.as_ptr() as *const c_void, -1) };
        if added != 1 {
            return Err(ErrorStack::get());
        }
        let len = c_int::try_from(content.len()).map_err(|_| ErrorStack::get())?;
        // SAFETY: a read-only memory BIO over `content`, which outlives it (freed below).
        let bio = unsafe { openssl_sys::BIO_new_mem_buf(content.as_ptr() as *const c_void, len) };
        if bio.is_null() {
            return Err(ErrorStack::get());
        }
        // SAFETY: `cms` and `bio` are live; `CMS_final` digests the content, keeps the
        // existing signingTime and signs; no output BIO for detached content.
        let finished = unsafe { CMS_final(cms.as_ptr(), bio, std::ptr::null_mut(), flags) };
        // SAFETY: `bio` was created above and is used no more.
        unsafe { openssl_sys::BIO_free_all(bio) };
        if finished == 1 { Ok(()) } else { Err(ErrorStack::get()) }
    }
}
