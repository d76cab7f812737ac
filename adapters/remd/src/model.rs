//! The codec's own types: what an envelope carries besides the domain message, faults,
//! and the shapes of answers. The domain messages themselves are
//! [`egisz_contract::remd`]'s.

use std::fmt;

use egisz_contract::Personal;
use egisz_contract::remd::{DocumentFileRequest, RegisterResult, RemdMessage};

use crate::wire;

/// The SOAP version of an envelope. Requests to REMD are SOAP 1.2; REMD's calls to us may
/// come in either, and are answered in the version they came in.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum SoapVersion {
    Soap11,
    /// REMD's version, and the default.
    #[default]
    Soap12,
}

impl SoapVersion {
    /// The envelope namespace.
    pub fn namespace(self) -> &'static str {
        match self {
            SoapVersion::Soap11 => wire::SOAP11_NS,
            SoapVersion::Soap12 => wire::SOAP12_NS,
        }
    }

    /// The version whose envelope namespace is `namespace`.
    pub fn from_namespace(namespace: &str) -> Option<Self> {
        match namespace {
            wire::SOAP11_NS => Some(SoapVersion::Soap11),
            wire::SOAP12_NS => Some(SoapVersion::Soap12),
            _ => None,
        }
    }

    /// The `Content-Type` of a message in this version. SOAP 1.2 carries the action as a
    /// parameter (`application/soap+xml; charset=utf-8; action="registerDocument"`);
    /// SOAP 1.1 is `text/xml; charset=utf-8` and carries it in the `SOAPAction` header
    /// ([`SoapVersion::soap_action`]).
    pub fn content_type(self, action: Option<&str>) -> String {
        match (self, action) {
            (SoapVersion::Soap12, Some(action)) => format!("{}; action=\"{action}\"", wire::SOAP12_CONTENT_TYPE),
            (SoapVersion::Soap12, None) => wire::SOAP12_CONTENT_TYPE.to_owned(),
            (SoapVersion::Soap11, _) => wire::SOAP11_CONTENT_TYPE.to_owned(),
        }
    }

    /// The SOAP 1.1 `SOAPAction` header (name, quoted value) for `action`; `None` for
    /// SOAP 1.2, which has no such header.
    pub fn soap_action(self, action: &str) -> Option<(&'static str, String)> {
        match self {
            SoapVersion::Soap11 => Some((wire::SOAP11_ACTION_HEADER, format!("\"{action}\""))),
            SoapVersion::Soap12 => None,
        }
    }
}

/// What the envelope of a message said besides its body: the SOAP version (to answer in
/// kind) and the addressing headers.
///
/// Message ids are kept bare: a `urn:uuid:` prefix (any case) is removed on reading, and
/// written back for ids that are UUIDs.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Envelope {
    pub version: SoapVersion,
    /// `wsa:MessageID`, bare.
    pub message_id: Option<String>,
    /// `wsa:Action`, as received.
    pub action: Option<String>,
    /// `wsa:RelatesTo`, bare.
    pub relates_to: Option<String>,
    /// `egis:transportHeader/egis:authInfo/egis:clientEntityId`.
    pub client_entity_id: Option<String>,
}

/// The addressing of an answer: the answerer's own fresh `wsa:MessageID` and the
/// `wsa:MessageID` of the call it answers (`wsa:RelatesTo`; `None` when the call had none,
/// e.g. a fault for an unreadable call). Both bare; written as `urn:uuid:<id>` when they
/// are UUIDs.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ReplyHeader {
    pub message_id: String,
    pub relates_to: Option<String>,
}

impl ReplyHeader {
    /// An answer to a call whose envelope was `to`, with a fresh v4 message id.
    pub fn answering(to: &Envelope) -> Self {
        Self { message_id: new_message_id(), relates_to: to.message_id.clone() }
    }
}

/// A fresh message id (a v4 UUID, bare).
pub fn new_message_id() -> String {
    uuid::Uuid::new_v4().to_string()
}

/// A SOAP fault code, in SOAP 1.2 terms (SOAP 1.1 `Client` reads as `Sender`, `Server` as
/// `Receiver`, and are written so in a SOAP 1.1 fault).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FaultCode {
    /// The request was wrong (1.1 `Client`).
    Sender,
    /// The server failed (1.1 `Server`).
    Receiver,
    VersionMismatch,
    MustUnderstand,
    DataEncodingUnknown,
    /// Any other code, as received (the QName's text).
    Other(String),
}

/// A SOAP fault.
#[derive(Clone, PartialEq, Eq)]
pub struct Fault {
    pub code: FaultCode,
    /// `faultstring` / `Reason/Text`. REMD's text may quote data: never log it.
    pub reason: Personal<String>,
}

impl fmt::Debug for Fault {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Fault").field("code", &self.code).field("code_in_reason", &self.remd_code()).finish()
    }
}

impl Fault {
    pub fn new(code: FaultCode, reason: impl Into<String>) -> Self {
        Self { code, reason: Personal(reason.into()) }
    }

    /// The fault the gateway answers to a `getDocumentFile` for a message it does not
    /// know: `Sender`, reason `WRONG_MESSAGE_ID: <dictionary text>`.
    pub fn wrong_message_id() -> Self {
        Self::new(FaultCode::Sender, format!("{}: {}", wire::WRONG_MESSAGE_ID, wire::WRONG_MESSAGE_ID_TEXT))
    }

    /// The REMD message code the reason starts with (`WRONG_MESSAGE_ID: …` →
    /// `WRONG_MESSAGE_ID`), when it starts with one: an upper-case word of letters, digits
    /// and `_`, at least three characters, followed by the end, a space or a colon.
    pub fn remd_code(&self) -> Option<&str> {
        let text = self.reason.expose().trim_start();
        let end =
            text.find(|c: char| !(c.is_ascii_uppercase() || c.is_ascii_digit() || c == '_')).unwrap_or(text.len());
        let (code, rest) = text.split_at(end);
        let well_formed = code.len() >= 3
            && code.starts_with(|c: char| c.is_ascii_uppercase())
            && (rest.is_empty() || rest.starts_with([' ', ':']));
        well_formed.then_some(code)
    }
}

/// An answer read from the wire: the expected body, or a SOAP fault in its place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response<T> {
    Body(T),
    Fault(Fault),
}

/// A body with a `status`: `success` with its content, or `error` with REMD's messages.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answer<T> {
    Success(T),
    Error(Vec<RemdMessage>),
}

/// The document REMD pulls with `getDocumentFile`: the exact stored bytes and their CRC-32.
#[derive(Clone, PartialEq, Eq)]
pub struct DocumentFile {
    pub document: Vec<u8>,
    pub checksum: u32,
}

impl fmt::Debug for DocumentFile {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "DocumentFile({} bytes, crc32 {})", self.document.len(), self.checksum)
    }
}

impl DocumentFile {
    /// The bytes with their CRC-32 computed.
    pub fn new(document: Vec<u8>) -> Self {
        let checksum = crate::checksum(&document);
        Self { document, checksum }
    }
}

/// One of REMD's calls to the gateway, as [`crate::parse_incoming`] identifies it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Incoming {
    /// `getDocumentFile`: answer with [`crate::write_get_document_file_response`] or a
    /// [`Fault::wrong_message_id`].
    GetDocumentFile(DocumentFileRequest),
    /// `sendRegisterDocumentResult`: answer with
    /// [`crate::write_register_document_result_response`].
    RegisterResult(RegisterResult),
}

impl Incoming {
    /// The `wsa:Action` of the call.
    pub fn action(&self) -> &'static str {
        match self {
            Incoming::GetDocumentFile(_) => wire::ACTION_GET_DOCUMENT_FILE,
            Incoming::RegisterResult(_) => wire::ACTION_SEND_REGISTER_DOCUMENT_RESULT,
        }
    }

    /// REMD's `wsa:MessageID` of the call (the `wsa:RelatesTo` of the answer).
    pub fn message_id(&self) -> &str {
        match self {
            Incoming::GetDocumentFile(r) => &r.message_id,
            Incoming::RegisterResult(r) => &r.message_id,
        }
    }
}

/// A message id without its `urn:uuid:` prefix (matched case-insensitively), trimmed.
pub fn bare_message_id(id: &str) -> &str {
    let id = id.trim();
    match id.get(..wire::URN_UUID.len()) {
        Some(head) if head.eq_ignore_ascii_case(wire::URN_UUID) => id[wire::URN_UUID.len()..].trim(),
        _ => id,
    }
}

/// A message id as written on the wire: `urn:uuid:<id>` when `id` is a UUID, `id` as it
/// is otherwise (REMD may use ids of another form; they are echoed unchanged).
pub fn wire_message_id(id: &str) -> String {
    let bare = bare_message_id(id);
    if uuid::Uuid::try_parse(bare).is_ok() { format!("{}{bare}", wire::URN_UUID) } else { bare.to_owned() }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_ids() {
        let id = "7d4d3e5e-4bd0-4a55-9d4a-5f2f7e7b1c10";
        assert_eq!(bare_message_id(id), id);
        assert_eq!(bare_message_id(&format!(" urn:uuid:{id} ")), id);
        assert_eq!(bare_message_id(&format!("URN:UUID:{id}")), id);
        assert_eq!(wire_message_id(id), format!("urn:uuid:{id}"));
        assert_eq!(wire_message_id(&format!("urn:uuid:{id}")), format!("urn:uuid:{id}"));
        assert_eq!(wire_message_id("msg-42"), "msg-42");
    }

    #[test]
    fn remd_codes_in_fault_reasons() {
        assert_eq!(Fault::wrong_message_id().remd_code(), Some("WRONG_MESSAGE_ID"));
        assert_eq!(Fault::new(FaultCode::Sender, "RATE_LIMIT").remd_code(), Some("RATE_LIMIT"));
        assert_eq!(Fault::new(FaultCode::Sender, "NO_RMIS недоступно").remd_code(), Some("NO_RMIS"));
        for none in ["", "Ошибка", "Error: x", "AB", "ABC-DEF", "1ABC"] {
            assert_eq!(Fault::new(FaultCode::Sender, none).remd_code(), None, "{none}");
        }
    }

    #[test]
    fn debug_hides_fault_text_and_documents() {
        let f = Fault::new(FaultCode::Receiver, "Иванов 20311784514");
        assert!(!format!("{f:?}").contains("Иванов"));
        assert_eq!(format!("{:?}", DocumentFile::new(b"abc".to_vec())), "DocumentFile(3 bytes, crc32 891568578)");
    }

    #[test]
    fn content_types() {
        assert_eq!(
            SoapVersion::Soap12.content_type(Some("registerDocument")),
            "application/soap+xml; charset=utf-8; action=\"registerDocument\""
        );
        assert_eq!(SoapVersion::Soap11.content_type(Some("x")), "text/xml; charset=utf-8");
        assert_eq!(SoapVersion::Soap11.soap_action("x"), Some(("SOAPAction", "\"x\"".to_owned())));
        assert_eq!(SoapVersion::Soap12.soap_action("x"), None);
    }
}
