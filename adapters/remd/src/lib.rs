//! # egisz-remd
//!
//! The REMD SOAP adapter: the complete codec of the REMD contract in both directions, the
//! client that implements [`egisz_contract::remd::RemdRegistry`], and the classification
//! of its outcomes — as `/work/shared/federal/REMD.md` models the contract.
//!
//! ## Layout
//!
//! - [`wire`] — every namespace, element name and action of the contract, each marked
//!   \[confirmed\] or \[model\]: the ONE place to correct against the official XSD.
//! - `write` — quick-xml writers for every envelope: the gateway's requests
//!   (`registerDocument`, `searchRegistryItem`, `getRegistryItem`), REMD's answers to
//!   them, REMD's calls to the gateway (`getDocumentFile`, `sendRegisterDocumentResult`),
//!   the gateway's answers to those, and SOAP faults.
//! - `read` — namespace-aware readers (quick-xml `NsReader`, matching on namespace and
//!   local name, never on prefixes) for the same set, SOAP 1.1 and 1.2; and
//!   [`parse_incoming`], which tells the gateway's listener which call REMD made.
//! - `dom` — the bounded parse underneath (no DOCTYPE, no entities; every dimension of the
//!   input limited by a named constant, namespaces interned, memory accounted): [`Limits`],
//!   [`ParseError`].
//! - `classify` — the only place where transport errors, HTTP statuses, SOAP faults and
//!   unreadable answers become [`Failure`](egisz_contract::Failure)s and
//!   [`CallOutcome`](egisz_contract::CallOutcome)s.
//! - `client` — [`RemdClient`]: reqwest with rustls, one HTTP exchange per call.
//!
//! The writers for REMD's side (its answers and its calls) and the readers of the
//! gateway's requests exist for the sandbox REMD emulator, so that both ends of every
//! message are this crate's code.
//!
//! ## What this crate must not do
//!
//! - retry: the gateway's relay owns the schedule (`attempts`, `next_attempt_at`); the
//!   client makes exactly one HTTP call per method call and says what it means;
//! - classify REMD's message codes of a registration (`status=error`): that is
//!   `Ok(RegisterAck::Rejected(..))`, for the gateway's `mappings/`. (Lookups, which have
//!   no such channel, map the few codes REMD.md names; see `classify`.)
//! - log or put into a failure reason anything personal: documents, names, SNILS, or
//!   REMD's free text (which may quote them). REMD's texts go only into
//!   `RemdMessage.message` and [`Fault::reason`], both `Personal<String>`.
//! - keep state: it stores nothing, and knows no metrics library (it reports through
//!   [`CallObserver`](egisz_contract::CallObserver) as service [`SERVICE`]).
//!
//! See `README.md` next to `Cargo.toml` for the contract table and the classification.
#![forbid(unsafe_code)]

mod classify;
mod client;
mod config;
mod dom;
mod model;
mod read;
pub mod wire;
mod write;

pub use classify::RATE_LIMIT_PAUSE;
pub use client::{RemdClient, validate};
pub use config::{DEFAULT_TIMEOUT, DEFAULT_USER_AGENT, RemdClientConfig, RemdClientError};
pub use dom::{
    Limits, MAX_ATTRIBUTE_BYTES, MAX_ATTRIBUTES, MAX_CALL_BYTES, MAX_CALL_TEXT_BYTES, MAX_DEPTH,
    MAX_DISTINCT_NAMESPACES, MAX_ELEMENTS, MAX_MESSAGE_BYTES, MAX_NAME_BYTES, MAX_NAMESPACE_URI_BYTES,
    MAX_NAMESPACES_IN_SCOPE, MEMORY_BASE, MEMORY_PER_INPUT_BYTE, ParseError, WORK_PER_INPUT_BYTE,
};
pub use model::{
    Answer, DocumentFile, Envelope, Fault, FaultCode, Incoming, ReplyHeader, Response, SoapVersion, bare_message_id,
    new_message_id, wire_message_id,
};
pub use read::{
    MAX_ID_BYTES, Parsed, envelope_version, parse_incoming, read_get_document_file_response, read_get_registry_item,
    read_get_registry_item_response, read_register_document, read_register_document_response,
    read_register_document_result_response, read_search_registry_item, read_search_registry_item_response,
};
pub use write::{
    fault_http_status, write_fault, write_get_document_file_request, write_get_document_file_response,
    write_get_registry_item, write_get_registry_item_response, write_register_document,
    write_register_document_response, write_register_document_result, write_register_document_result_response,
    write_search_registry_item, write_search_registry_item_response,
};

/// The service name this crate reports to the [`CallObserver`](egisz_contract::CallObserver).
pub const SERVICE: &str = "remd";

/// CRC-32 (IEEE) of `bytes`, as REMD expects it: the contract's
/// [`egisz_contract::remd::checksum`], here for the adapter's callers.
pub use egisz_contract::remd::checksum;
