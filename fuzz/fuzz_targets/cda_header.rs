//! The CDA header parser and the derivation of the REMD request on arbitrary bytes (what an
//! MIS submits).
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(header) = egisz_semd::CdaHeader::parse(data) {
        let zone = chrono::FixedOffset::east_opt(7 * 3600).expect("a valid offset");
        let _ = egisz_semd::register_request_parts(&header, zone);
    }
});
