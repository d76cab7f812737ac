//! Every reader of the SOAP codec on arbitrary bytes: REMD's calls to the listener (the
//! trust boundary) and REMD's answers. None may panic, hang or take memory beyond its budget.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let _ = egisz_remd::parse_incoming(data);
    let _ = egisz_remd::envelope_version(data);
    let _ = egisz_remd::read_register_document_response(data);
    let _ = egisz_remd::read_search_registry_item_response(data);
    let _ = egisz_remd::read_get_registry_item_response(data);
    let _ = egisz_remd::read_get_document_file_response(data);
    let _ = egisz_remd::read_register_document_result_response(data);
    let _ = egisz_remd::read_register_document(data);
    let _ = egisz_remd::read_search_registry_item(data);
    let _ = egisz_remd::read_get_registry_item(data);
});
