//! The CMS (detached signature) parser on arbitrary bytes, and the checks of a parsed
//! signature against a document.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(signature) = egisz_semd::parse_signature(data) {
        let created = chrono::DateTime::parse_from_rfc3339("2023-08-18T10:15:00+07:00").expect("a valid time");
        let _ = egisz_semd::check_signature(&signature, b"<ClinicalDocument/>", created);
    }
});
