//! The writing half: every envelope of the contract, in both directions, with quick-xml's
//! `Writer` (text and attribute values escaped by it; characters XML 1.0 cannot carry are
//! replaced by U+FFFD, a carriage return is written as `&#13;` so that it survives).
//!
//! Output: an XML declaration, then the envelope indented by two spaces. Message ids are
//! written as `urn:uuid:<id>` when they are UUIDs ([`crate::wire_message_id`]).

use std::borrow::Cow;

use base64::Engine as _;
use chrono::{DateTime, FixedOffset, NaiveDate, SecondsFormat};
use egisz_contract::remd::{
    Coded, DocumentFileRequest, PersonalSignature, RegisterAck, RegisterDocument, RegisterResult, RegistryItem,
    RemdMessage, ResultStatus, SearchQuery, SignatureData,
};
use quick_xml::Writer;
use quick_xml::events::{BytesDecl, BytesEnd, BytesStart, BytesText, Event};

use crate::model::{Answer, DocumentFile, Fault, FaultCode, ReplyHeader, SoapVersion, wire_message_id};
use crate::wire::{self as w};

/// A name in one of the contract's namespaces, by the prefix the writers declare for it.
type Name = (&'static str, &'static str);

/// The envelope namespace prefix: the same for both versions, bound to the version's URI.
const SOAP: &str = w::SOAP_PREFIX;

/// A message under construction. Writing into a `Vec` cannot fail, so the I/O results of
/// quick-xml are asserted in one place ([`Xml::event`]).
struct Xml {
    writer: Writer<Vec<u8>>,
}

impl Xml {
    fn new() -> Self {
        let mut xml = Self { writer: Writer::new_with_indent(Vec::new(), b' ', 2) };
        xml.event(Event::Decl(BytesDecl::new("1.0", Some("UTF-8"), None)));
        xml
    }

    fn event(&mut self, event: Event<'_>) {
        self.writer.write_event(event).expect("writing XML into a Vec<u8> cannot fail");
    }

    fn open(&mut self, (prefix, local): Name, attrs: &[(&str, &str)]) {
        let mut start = BytesStart::new(qualified(prefix, local));
        for &attr in attrs {
            start.push_attribute(attr);
        }
        self.event(Event::Start(start));
    }

    fn close(&mut self, (prefix, local): Name) {
        self.event(Event::End(BytesEnd::new(qualified(prefix, local))));
    }

    /// `<name attrs>text</name>`.
    fn leaf_with(&mut self, name: Name, attrs: &[(&str, &str)], text: &str) {
        self.open(name, attrs);
        self.event(Event::Text(text_event(text)));
        self.close(name);
    }

    fn leaf(&mut self, name: Name, text: &str) {
        self.leaf_with(name, &[], text);
    }

    fn optional(&mut self, name: Name, text: Option<&str>) {
        if let Some(text) = text {
            self.leaf(name, text);
        }
    }

    /// `<name>…</name>` around what `inner` writes.
    fn element(&mut self, name: Name, inner: impl FnOnce(&mut Self)) {
        self.open(name, &[]);
        inner(self);
        self.close(name);
    }

    fn finish(self) -> Vec<u8> {
        let mut bytes = self.writer.into_inner();
        bytes.push(b'\n');
        bytes
    }
}

/// `prefix:local`, or `local` for an unqualified name (empty prefix).
fn qualified(prefix: &str, local: &str) -> String {
    if prefix.is_empty() { local.to_owned() } else { format!("{prefix}:{local}") }
}

/// Escaped text: `<`, `>`, `&` as entities, `\r` as a character reference, characters
/// outside XML 1.0 as U+FFFD.
fn text_event(text: &str) -> BytesText<'static> {
    let clean: Cow<'_, str> = if text.chars().all(xml_char) {
        Cow::Borrowed(text)
    } else {
        Cow::Owned(text.chars().map(|c| if xml_char(c) { c } else { '\u{FFFD}' }).collect())
    };
    let escaped = quick_xml::escape::partial_escape(clean).replace('\r', "&#13;");
    BytesText::from_escaped(escaped)
}

/// A character XML 1.0 allows in content.
fn xml_char(c: char) -> bool {
    matches!(c, '\t' | '\n' | '\r' | '\u{20}'..='\u{D7FF}' | '\u{E000}'..='\u{FFFD}' | '\u{10000}'..='\u{10FFFF}')
}

fn date_time(value: &DateTime<FixedOffset>) -> String {
    value.to_rfc3339_opts(SecondsFormat::AutoSi, false)
}

fn date(value: &NaiveDate) -> String {
    value.format("%Y-%m-%d").to_string()
}

fn base64(bytes: &[u8]) -> String {
    base64::engine::general_purpose::STANDARD.encode(bytes)
}

fn status_text(success: bool) -> &'static str {
    if success { w::STATUS_SUCCESS } else { w::STATUS_ERROR }
}

// ---------------------------------------------------------------------------------------
// Envelopes
// ---------------------------------------------------------------------------------------

/// What goes into the header.
enum Head<'a> {
    /// A request to REMD: transport header, MessageID, Action.
    Request { client_entity_id: &'a str, message_id: &'a str, action: &'a str },
    /// REMD's call to us: MessageID, Action.
    Call { message_id: &'a str, action: &'a str },
    /// An answer: MessageID, Action, RelatesTo.
    Reply { reply: &'a ReplyHeader, action: &'a str },
}

/// `<soap:Envelope xmlns:…><soap:Header>…</soap:Header><soap:Body>…</soap:Body></soap:Envelope>`
/// with the envelope, `wsa` and (for requests) `egis` namespaces declared, plus `body_ns`.
fn envelope(version: SoapVersion, head: Head<'_>, body_ns: Option<Name>, body: impl FnOnce(&mut Xml)) -> Vec<u8> {
    let mut xml = Xml::new();
    let soap_ns = format!("xmlns:{SOAP}");
    let egis_ns = format!("xmlns:{}", w::EGIS_PREFIX);
    let wsa_ns = format!("xmlns:{}", w::WSA_PREFIX);
    let body_decl = body_ns.map(|(prefix, _)| format!("xmlns:{prefix}"));
    let mut attrs: Vec<(&str, &str)> = vec![(&soap_ns, version.namespace())];
    if matches!(head, Head::Request { .. }) {
        attrs.push((&egis_ns, w::EGIS_NS));
    }
    attrs.push((&wsa_ns, w::WSA_NS));
    if let (Some(decl), Some((_, uri))) = (&body_decl, body_ns) {
        attrs.push((decl, uri));
    }
    xml.open((SOAP, w::ENVELOPE), &attrs);

    xml.element((SOAP, w::HEADER), |xml| match head {
        Head::Request { client_entity_id, message_id, action } => {
            xml.element((w::EGIS_PREFIX, w::TRANSPORT_HEADER), |xml| {
                xml.element((w::EGIS_PREFIX, w::AUTH_INFO), |xml| {
                    xml.leaf((w::EGIS_PREFIX, w::CLIENT_ENTITY_ID), client_entity_id);
                });
            });
            xml.leaf((w::WSA_PREFIX, w::MESSAGE_ID), &wire_message_id(message_id));
            xml.leaf((w::WSA_PREFIX, w::ACTION), action);
        }
        Head::Call { message_id, action } => {
            xml.leaf((w::WSA_PREFIX, w::MESSAGE_ID), &wire_message_id(message_id));
            xml.leaf((w::WSA_PREFIX, w::ACTION), action);
        }
        Head::Reply { reply, action } => {
            xml.leaf((w::WSA_PREFIX, w::MESSAGE_ID), &wire_message_id(&reply.message_id));
            xml.leaf((w::WSA_PREFIX, w::ACTION), action);
            if let Some(relates_to) = &reply.relates_to {
                xml.leaf((w::WSA_PREFIX, w::RELATES_TO), &wire_message_id(relates_to));
            }
        }
    });
    xml.element((SOAP, w::BODY), body);
    xml.close((SOAP, w::ENVELOPE));
    xml.finish()
}

const SER: Name = (w::SER_PREFIX, w::SER_NS);
const CB: Name = (w::CB_PREFIX, w::CB_NS);

fn ser(local: &'static str) -> Name {
    (w::SER_PREFIX, local)
}

fn cb(local: &'static str) -> Name {
    (w::CB_PREFIX, local)
}

// ---------------------------------------------------------------------------------------
// Gateway → REMD requests (SOAP 1.2)
// ---------------------------------------------------------------------------------------

/// `registerDocument`: everything of `request` (its `message_id` becomes `wsa:MessageID`),
/// optional elements omitted when `None`, signatures in base64.
pub fn write_register_document(request: &RegisterDocument, client_entity_id: &str) -> Vec<u8> {
    let head = Head::Request { client_entity_id, message_id: &request.message_id, action: w::ACTION_REGISTER_DOCUMENT };
    envelope(SoapVersion::Soap12, head, Some(SER), |xml| {
        xml.element(ser(w::REGISTER_DOCUMENT_REQUEST), |xml| {
            xml.leaf(ser(w::KIND), &request.kind.to_string());
            xml.leaf(ser(w::ORGANIZATION), request.organization.as_str());
            xml.optional(ser(w::DEPARTMENT), request.department.as_ref().map(|d| d.as_str()));
            xml.leaf(ser(w::LOCAL_UID), &request.local_uid);
            xml.leaf(ser(w::CREATION_DATE_TIME), &date_time(&request.creation_date_time));
            let patient = &request.patient;
            xml.element(ser(w::PATIENT), |xml| {
                xml.leaf(ser(w::LOCAL_ID), &patient.local_id);
                xml.optional(ser(w::SNILS), patient.snils.as_ref().map(|s| s.as_str()));
                xml.leaf(ser(w::SURNAME), patient.surname.expose());
                xml.leaf(ser(w::NAME), patient.name.expose());
                xml.optional(ser(w::PATR_NAME), patient.patr_name.as_ref().map(|p| p.expose().as_str()));
                xml.leaf(ser(w::BIRTH_DATE), &date(patient.birth_date.expose()));
                xml.leaf(ser(w::GENDER), &patient.gender.to_string());
            });
            xml.element(ser(w::DOC_CONTENT), |xml| {
                xml.leaf(ser(w::CHECKSUM), &request.checksum.to_string());
            });
            xml.element(ser(w::PERSONAL_SIGNATURES), |xml| {
                for signature in &request.personal_signatures {
                    personal_signature(xml, signature);
                }
            });
            if let Some(org) = &request.org_signature {
                xml.element(ser(w::ORG_SIGNATURE), |xml| signature_data(xml, org));
            }
        });
    })
}

fn personal_signature(xml: &mut Xml, item: &PersonalSignature) {
    let signer = &item.signer;
    xml.element(ser(w::ITEM), |xml| {
        xml.element(ser(w::SIGNER), |xml| {
            xml.leaf(ser(w::LOCAL_ID), &signer.local_id);
            coded(xml, ser(w::ROLE), &signer.role);
            xml.leaf(ser(w::LAST_NAME), signer.last_name.expose());
            xml.leaf(ser(w::FIRST_NAME), signer.first_name.expose());
            xml.optional(ser(w::MIDDLE_NAME), signer.middle_name.as_ref().map(|m| m.expose().as_str()));
            xml.leaf(ser(w::SNILS), signer.snils.as_str());
            coded(xml, ser(w::POSITION), &signer.position);
            if let Some(speciality) = &signer.speciality {
                coded(xml, ser(w::SPECIALITY), speciality);
            }
            xml.optional(ser(w::DEPARTMENT), signer.department.as_ref().map(|d| d.as_str()));
        });
        xml.element(ser(w::SIGNATURE), |xml| signature_data(xml, &item.signature));
    });
}

fn coded(xml: &mut Xml, name: Name, value: &Coded) {
    xml.leaf_with(name, &[(w::VERSION_ATTR, &value.version)], &value.code);
}

fn signature_data(xml: &mut Xml, signature: &SignatureData) {
    xml.leaf(ser(w::DATA), &base64(&signature.data));
    xml.leaf(ser(w::CHECKSUM), &signature.checksum.to_string());
}

/// `searchRegistryItem` with the filters of `query` (absent ones omitted).
pub fn write_search_registry_item(query: &SearchQuery, message_id: &str, client_entity_id: &str) -> Vec<u8> {
    let head = Head::Request { client_entity_id, message_id, action: w::ACTION_SEARCH_REGISTRY_ITEM };
    envelope(SoapVersion::Soap12, head, Some(SER), |xml| {
        xml.element(ser(w::SEARCH_REGISTRY_ITEM_REQUEST), |xml| {
            xml.leaf(ser(w::ORGANIZATION), query.organization.as_str());
            xml.optional(ser(w::KIND), query.kind.map(|k| k.to_string()).as_deref());
            xml.optional(ser(w::REGISTER_DATE_BEGIN), query.register_date_begin.as_ref().map(date_time).as_deref());
            xml.optional(ser(w::REGISTER_DATE_END), query.register_date_end.as_ref().map(date_time).as_deref());
            xml.optional(ser(w::PATIENT_SNILS), query.patient_snils.as_ref().map(|s| s.as_str()));
        });
    })
}

/// `getRegistryItem` for `emdr_id`.
pub fn write_get_registry_item(emdr_id: &str, message_id: &str, client_entity_id: &str) -> Vec<u8> {
    let head = Head::Request { client_entity_id, message_id, action: w::ACTION_GET_REGISTRY_ITEM };
    envelope(SoapVersion::Soap12, head, Some(SER), |xml| {
        xml.element(ser(w::GET_REGISTRY_ITEM_REQUEST), |xml| xml.leaf(ser(w::EMDR_ID), emdr_id));
    })
}

// ---------------------------------------------------------------------------------------
// REMD's answers to those (for the emulator)
// ---------------------------------------------------------------------------------------

fn messages(xml: &mut Xml, errors_name: Name, item: Name, code: Name, message: Name, list: &[RemdMessage]) {
    xml.element(errors_name, |xml| {
        for m in list {
            xml.element(item, |xml| {
                xml.leaf(code, &m.code);
                xml.leaf(message, m.message.expose());
            });
        }
    });
}

fn ser_messages(xml: &mut Xml, list: &[RemdMessage]) {
    messages(xml, ser(w::ERRORS), ser(w::ITEM), ser(w::CODE), ser(w::MESSAGE), list);
}

/// A registry item as REMD's answers carry it; `with_ids` adds `localUid` and `kind`.
fn registry_item(xml: &mut Xml, name: Name, prefix: &'static str, item: &RegistryItem, with_ids: bool) {
    xml.element(name, |xml| {
        xml.leaf((prefix, w::EMDR_ID), &item.emdr_id);
        if with_ids {
            xml.optional((prefix, w::LOCAL_UID), item.local_uid.as_deref());
            xml.optional((prefix, w::KIND), item.kind.map(|k| k.to_string()).as_deref());
        }
        xml.optional(
            (prefix, w::REGISTRATION_DATE_TIME),
            item.registration_date_time.as_ref().map(date_time).as_deref(),
        );
        xml.optional((prefix, w::STORE_TILL_DATE), item.store_till_date.as_ref().map(date).as_deref());
        xml.optional((prefix, w::DOCUMENT_VERSION), item.document_version.as_deref());
    });
}

/// REMD's synchronous answer to `registerDocument`: `success`, or `error` with messages.
pub fn write_register_document_response(version: SoapVersion, reply: &ReplyHeader, ack: &RegisterAck) -> Vec<u8> {
    let head = Head::Reply { reply, action: w::ACTION_REGISTER_DOCUMENT_RESPONSE };
    envelope(version, head, Some(SER), |xml| {
        xml.element(ser(w::REGISTER_DOCUMENT_RESPONSE), |xml| match ack {
            RegisterAck::Accepted => xml.leaf(ser(w::STATUS), w::STATUS_SUCCESS),
            RegisterAck::Rejected(errors) => {
                xml.leaf(ser(w::STATUS), w::STATUS_ERROR);
                ser_messages(xml, errors);
            }
        });
    })
}

/// REMD's answer to `searchRegistryItem`: `success` with `matches/item`s, or `error`.
pub fn write_search_registry_item_response(
    version: SoapVersion,
    reply: &ReplyHeader,
    answer: &Answer<Vec<RegistryItem>>,
) -> Vec<u8> {
    let head = Head::Reply { reply, action: w::ACTION_SEARCH_REGISTRY_ITEM_RESPONSE };
    envelope(version, head, Some(SER), |xml| {
        xml.element(ser(w::SEARCH_REGISTRY_ITEM_RESPONSE), |xml| match answer {
            Answer::Success(items) => {
                xml.leaf(ser(w::STATUS), w::STATUS_SUCCESS);
                xml.element(ser(w::MATCHES), |xml| {
                    for item in items {
                        registry_item(xml, ser(w::ITEM), w::SER_PREFIX, item, true);
                    }
                });
            }
            Answer::Error(errors) => {
                xml.leaf(ser(w::STATUS), w::STATUS_ERROR);
                ser_messages(xml, errors);
            }
        });
    })
}

/// REMD's answer to `getRegistryItem`: `success` with the `item` (none = not found), or
/// `error`.
pub fn write_get_registry_item_response(
    version: SoapVersion,
    reply: &ReplyHeader,
    answer: &Answer<Option<RegistryItem>>,
) -> Vec<u8> {
    let head = Head::Reply { reply, action: w::ACTION_GET_REGISTRY_ITEM_RESPONSE };
    envelope(version, head, Some(SER), |xml| {
        xml.element(ser(w::GET_REGISTRY_ITEM_RESPONSE), |xml| match answer {
            Answer::Success(item) => {
                xml.leaf(ser(w::STATUS), w::STATUS_SUCCESS);
                if let Some(item) = item {
                    registry_item(xml, ser(w::GET_ITEM), w::SER_PREFIX, item, true);
                }
            }
            Answer::Error(errors) => {
                xml.leaf(ser(w::STATUS), w::STATUS_ERROR);
                ser_messages(xml, errors);
            }
        });
    })
}

// ---------------------------------------------------------------------------------------
// REMD → gateway calls (for the emulator)
// ---------------------------------------------------------------------------------------

/// REMD's `getDocumentFile` call (`request.message_id` is its `wsa:MessageID`).
pub fn write_get_document_file_request(version: SoapVersion, request: &DocumentFileRequest) -> Vec<u8> {
    let head = Head::Call { message_id: &request.message_id, action: w::ACTION_GET_DOCUMENT_FILE };
    envelope(version, head, Some(CB), |xml| {
        xml.element(cb(w::GET_DOCUMENT_FILE_REQUEST), |xml| {
            xml.optional(
                cb(w::RELATES_TO_MESSAGE),
                request.relates_to_message.as_ref().map(|m| wire_message_id(m)).as_deref(),
            );
            xml.optional(cb(w::EMDR_ID), request.emdr_id.as_deref());
            xml.optional(cb(w::LOCAL_UID), request.local_uid.as_deref());
        });
    })
}

/// REMD's `sendRegisterDocumentResult` call (`result.message_id` is its `wsa:MessageID`).
/// `registryItem` carries `emdrId`, `registrationDateTime`, `storeTillDate`,
/// `documentVersion`; the result's own `kind` and `localUid` stand for the item's.
pub fn write_register_document_result(version: SoapVersion, result: &RegisterResult) -> Vec<u8> {
    let head = Head::Call { message_id: &result.message_id, action: w::ACTION_SEND_REGISTER_DOCUMENT_RESULT };
    envelope(version, head, Some(CB), |xml| {
        xml.element(cb(w::REGISTER_DOCUMENT_RESULT), |xml| {
            xml.leaf(cb(w::RELATES_TO_MESSAGE), &wire_message_id(&result.relates_to_message));
            xml.leaf(cb(w::STATUS), status_text(result.status == ResultStatus::Success));
            xml.optional(cb(w::KIND), result.kind.map(|k| k.to_string()).as_deref());
            xml.optional(cb(w::ORGANIZATION), result.organization.as_deref());
            xml.optional(cb(w::LOCAL_UID), result.local_uid.as_deref());
            xml.optional(cb(w::CREATION_DATE_TIME), result.creation_date_time.as_ref().map(date_time).as_deref());
            if let Some(item) = &result.registry_item {
                registry_item(xml, cb(w::REGISTRY_ITEM), w::CB_PREFIX, item, false);
            }
            if !result.errors.is_empty() {
                messages(xml, cb(w::ERRORS), cb(w::ITEM), cb(w::CODE), cb(w::MESSAGE), &result.errors);
            }
        });
    })
}

// ---------------------------------------------------------------------------------------
// Gateway → REMD answers (in the version REMD called with)
// ---------------------------------------------------------------------------------------

/// The answer to `getDocumentFile`: the document in base64 and its checksum.
pub fn write_get_document_file_response(version: SoapVersion, reply: &ReplyHeader, file: &DocumentFile) -> Vec<u8> {
    let head = Head::Reply { reply, action: w::ACTION_GET_DOCUMENT_FILE_RESPONSE };
    envelope(version, head, Some(CB), |xml| {
        xml.element(cb(w::GET_DOCUMENT_FILE_RESPONSE), |xml| {
            xml.leaf(cb(w::DOCUMENT), &base64(&file.document));
            xml.leaf(cb(w::CHECKSUM), &file.checksum.to_string());
        });
    })
}

/// The answer to `sendRegisterDocumentResult`: status `success`.
pub fn write_register_document_result_response(version: SoapVersion, reply: &ReplyHeader) -> Vec<u8> {
    let head = Head::Reply { reply, action: w::ACTION_SEND_REGISTER_DOCUMENT_RESULT_RESPONSE };
    envelope(version, head, Some(CB), |xml| {
        xml.element(cb(w::REGISTER_DOCUMENT_RESULT_RESPONSE), |xml| {
            xml.leaf(cb(w::STATUS), w::STATUS_SUCCESS);
        });
    })
}

/// A SOAP fault in `version`: 1.2 `Code/Value` + `Reason/Text xml:lang="ru"`, or 1.1
/// `faultcode` + `faultstring`. The HTTP status to send with it is
/// [`fault_http_status`].
pub fn write_fault(version: SoapVersion, reply: &ReplyHeader, fault: &Fault) -> Vec<u8> {
    let head = Head::Reply { reply, action: w::ACTION_FAULT };
    let code = fault_code_text(version, &fault.code);
    envelope(version, head, None, |xml| {
        xml.element((SOAP, w::FAULT), |xml| match version {
            SoapVersion::Soap12 => {
                xml.element((SOAP, w::FAULT12_CODE), |xml| xml.leaf((SOAP, w::FAULT12_VALUE), &code));
                xml.element((SOAP, w::FAULT12_REASON), |xml| {
                    xml.leaf_with((SOAP, w::FAULT12_TEXT), &[("xml:lang", w::FAULT12_LANG)], fault.reason.expose());
                });
            }
            SoapVersion::Soap11 => {
                xml.leaf(("", w::FAULT11_CODE), &code);
                xml.leaf(("", w::FAULT11_STRING), fault.reason.expose());
            }
        });
    })
}

/// The HTTP status of a fault (SOAP 1.2 HTTP binding; SOAP 1.1 uses 500 for every fault):
/// 400 for `Sender`, 500 otherwise.
pub fn fault_http_status(version: SoapVersion, fault: &Fault) -> u16 {
    match (version, &fault.code) {
        (SoapVersion::Soap12, FaultCode::Sender) => 400,
        _ => 500,
    }
}

/// The fault code as the QName text of the version (`soap:Sender` / `soap:Client`).
fn fault_code_text(version: SoapVersion, code: &FaultCode) -> String {
    let local = match (version, code) {
        (SoapVersion::Soap12, FaultCode::Sender) => w::FAULT12_SENDER,
        (SoapVersion::Soap12, FaultCode::Receiver) => w::FAULT12_RECEIVER,
        (SoapVersion::Soap11, FaultCode::Sender) => w::FAULT11_CLIENT,
        (SoapVersion::Soap11, FaultCode::Receiver) => w::FAULT11_SERVER,
        (_, FaultCode::VersionMismatch) => w::FAULT_VERSION_MISMATCH,
        (_, FaultCode::MustUnderstand) => w::FAULT_MUST_UNDERSTAND,
        (SoapVersion::Soap12, FaultCode::DataEncodingUnknown) => w::FAULT12_DATA_ENCODING_UNKNOWN,
        (SoapVersion::Soap11, FaultCode::DataEncodingUnknown) => w::FAULT11_CLIENT,
        (_, FaultCode::Other(text)) => return text.clone(),
    };
    qualified(SOAP, local)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn text_is_escaped_and_cleaned() {
        let mut xml = Xml::new();
        xml.leaf(("p", "a"), "<&>\"' \r\n\u{1}x");
        xml.leaf_with(("p", "b"), &[("v", "a\"<&")], "");
        let out = String::from_utf8(xml.finish()).unwrap();
        assert!(out.contains("<p:a>&lt;&amp;&gt;\"' &#13;\n\u{FFFD}x</p:a>"), "{out}");
        assert!(out.contains(r#"<p:b v="a&quot;&lt;&amp;"></p:b>"#), "{out}");
    }
}
