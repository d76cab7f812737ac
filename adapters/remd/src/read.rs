//! The reading half: every envelope of the contract, in both directions, SOAP 1.1 or 1.2,
//! matched by (namespace, local name) only — never by prefix.
//!
//! Leniency, on purpose:
//! - the fields inside a body element are found in the body element's namespace **or
//!   unqualified** (a WSDL with `elementFormDefault="unqualified"` produces the latter);
//! - message ids with or without `urn:uuid:`; status `success`, `OK` or `error` in any
//!   case; base64 with line breaks and with or without padding;
//! - in what REMD sends (answers and calls), an **optional** field whose value cannot be
//!   read (a date-time without an offset, a non-numeric kind) is dropped (`None`) rather
//!   than failing the message, so a registration result is never lost over a detail;
//!   required fields (status, the correlation key, an item's `emdrId`) are strict;
//! - what the gateway sends (read by the REMD emulator) is read strictly.

use base64::Engine as _;
use base64::engine::{DecodePaddingMode, GeneralPurpose, GeneralPurposeConfig};
use chrono::{DateTime, FixedOffset, NaiveDate};
use egisz_contract::remd::{
    Coded, DocumentFileRequest, Patient, PersonalSignature, RegisterAck, RegisterDocument, RegisterResult,
    RegistryItem, RemdMessage, ResultStatus, SearchQuery, SignatureData, Signer,
};
use egisz_contract::{Oid, Personal, Snils};

use crate::dom::{self, Limits, Node, ParseError};
use crate::model::{
    Answer, DocumentFile, Envelope, Fault, FaultCode, Incoming, Response, SoapVersion, bare_message_id,
};
use crate::wire as w;

/// What a reader returns: the envelope's header information and the message.
pub type Parsed<T> = Result<(Envelope, T), ParseError>;

// ---------------------------------------------------------------------------------------
// Envelope
// ---------------------------------------------------------------------------------------

/// The envelope's header and its body's (first) element, read within `limits`.
/// The envelope's header and its body's first element. `calls_to_us`: the message is a call
/// to the gateway (REMD's), whose header blocks the gateway must understand when marked so
/// ([`understood`]); an answer to the gateway's own call is read whatever its header says.
fn read_envelope(bytes: &[u8], limits: Limits) -> Parsed<Node> {
    read_envelope_as(bytes, limits, false)
}

fn read_envelope_as(bytes: &[u8], limits: Limits, calls_to_us: bool) -> Parsed<Node> {
    let root = dom::parse(bytes, limits)?;
    let version = root
        .ns
        .as_deref()
        .and_then(SoapVersion::from_namespace)
        .filter(|_| root.local == w::ENVELOPE)
        .ok_or(ParseError::NotSoap)?;
    let soap = version.namespace();
    let mut envelope = Envelope { version, ..Envelope::default() };
    let mut body = None;
    for part in root.children {
        if part.is(soap, w::HEADER) {
            if calls_to_us {
                understood(&part, version)?;
            }
            read_header(&part, &mut envelope);
        } else if part.is(soap, w::BODY) && body.is_none() {
            body = Some(part);
        }
    }
    let body = body.and_then(|b| b.children.into_iter().next()).ok_or(ParseError::NoBody)?;
    Ok((envelope, body))
}

/// Every header block marked `mustUnderstand` (`1` or `true`, in the envelope's namespace)
/// and addressed to the gateway — no SOAP 1.1 `actor` but `…/actor/next`, no SOAP 1.2
/// `role` but `…/role/next` or `…/role/ultimateReceiver` — is one the reader understands:
/// WS-Addressing's, and the EGISZ transport header. Any other is
/// [`ParseError::NotUnderstood`] (SOAP 1.1 §4.2.3, SOAP 1.2 part 1 §5.2.3). Blocks for other
/// roles are not the gateway's to understand.
fn understood(header: &Node, version: SoapVersion) -> Result<(), ParseError> {
    let soap = version.namespace();
    let ours = |role: &str| match version {
        SoapVersion::Soap11 => role == w::SOAP11_ACTOR_NEXT,
        SoapVersion::Soap12 => role == w::SOAP12_ROLE_NEXT || role == w::SOAP12_ROLE_ULTIMATE,
    };
    let attr = |block: &Node, local: &str| {
        block
            .attrs
            .iter()
            .find(|a| a.ns.as_deref() == Some(soap) && a.local == local)
            .map(|a| a.value.trim().to_owned())
    };
    for block in &header.children {
        let must = attr(block, w::MUST_UNDERSTAND).is_some_and(|v| matches!(v.as_str(), "1" | "true"));
        let role = match version {
            SoapVersion::Soap11 => attr(block, w::SOAP11_ACTOR),
            SoapVersion::Soap12 => attr(block, w::SOAP12_ROLE),
        };
        let for_us = role.as_deref().is_none_or(ours);
        let known = block.ns.as_deref() == Some(w::WSA_NS) || block.is(w::EGIS_NS, w::TRANSPORT_HEADER);
        if must && for_us && !known {
            let ns: String = block.ns.as_deref().unwrap_or("").chars().take(200).collect();
            let local: String = block.local.chars().take(100).collect();
            return Err(ParseError::NotUnderstood(ns, local));
        }
    }
    Ok(())
}

fn read_header(header: &Node, envelope: &mut Envelope) {
    envelope.message_id = header.child_value(w::WSA_NS, w::MESSAGE_ID).map(|id| bare_message_id(id).to_owned());
    envelope.action = header.child_value(w::WSA_NS, w::ACTION).map(str::to_owned);
    envelope.relates_to = header.child_value(w::WSA_NS, w::RELATES_TO).map(|id| bare_message_id(id).to_owned());
    envelope.client_entity_id = header
        .child(w::EGIS_NS, w::TRANSPORT_HEADER)
        .and_then(|t| t.child(w::EGIS_NS, w::AUTH_INFO))
        .and_then(|a| a.child_value(w::EGIS_NS, w::CLIENT_ENTITY_ID))
        .map(str::to_owned);
}

/// The SOAP version of an envelope, looking at its root element only (for answering a
/// fault in kind when the message itself could not be read). `None` when `bytes` does not
/// start like a SOAP envelope.
pub fn envelope_version(bytes: &[u8]) -> Option<SoapVersion> {
    let (ns, local) = dom::root_name(bytes)?;
    SoapVersion::from_namespace(&ns).filter(|_| local == w::ENVELOPE)
}

/// A body element in `ns`, with field lookup in `ns` or unqualified.
#[derive(Clone, Copy)]
struct Fields<'a> {
    node: &'a Node,
    ns: &'static str,
    /// Optional values that cannot be read become `None` instead of an error.
    lenient: bool,
}

impl<'a> Fields<'a> {
    fn new(node: &'a Node, ns: &'static str, lenient: bool) -> Self {
        Self { node, ns, lenient }
    }

    fn matches(&self, node: &Node, local: &str) -> bool {
        node.local == local && (node.ns.is_none() || node.ns.as_deref() == Some(self.ns))
    }

    fn get(&self, local: &str) -> Option<&'a Node> {
        self.node.children.iter().find(|c| self.matches(c, local))
    }

    fn all(&self, local: &'a str) -> impl Iterator<Item = Fields<'a>> + 'a {
        let this = *self;
        self.node.children.iter().filter(move |c| this.matches(c, local)).map(move |c| this.with(c))
    }

    fn with(&self, node: &'a Node) -> Fields<'a> {
        Fields { node, ..*self }
    }

    fn nested(&self, local: &str) -> Option<Fields<'a>> {
        self.get(local).map(|n| self.with(n))
    }

    fn nested_required(&self, local: &'static str) -> Result<Fields<'a>, ParseError> {
        self.nested(local).ok_or(ParseError::Missing(local))
    }

    fn text(&self, local: &str) -> Option<&'a str> {
        self.get(local).and_then(Node::value)
    }

    fn required(&self, local: &'static str) -> Result<&'a str, ParseError> {
        self.text(local).ok_or(ParseError::Missing(local))
    }

    fn owned(&self, local: &str) -> Option<String> {
        self.text(local).map(str::to_owned)
    }

    /// An optional value parsed by `parse`; unreadable = error, or `None` when lenient.
    fn optional<T>(&self, local: &'static str, parse: impl Fn(&str) -> Option<T>) -> Result<Option<T>, ParseError> {
        match self.text(local) {
            None => Ok(None),
            Some(text) => match parse(text) {
                Some(value) => Ok(Some(value)),
                None if self.lenient => {
                    tracing::debug!(element = local, "unreadable optional REMD value ignored");
                    Ok(None)
                }
                None => Err(ParseError::Invalid(local)),
            },
        }
    }

    fn parsed<T>(&self, local: &'static str, parse: impl Fn(&str) -> Option<T>) -> Result<T, ParseError> {
        parse(self.required(local)?).ok_or(ParseError::Invalid(local))
    }
}

fn expect_body(body: &Node, ns: &str, local: &'static str) -> Result<(), ParseError> {
    if body.is(ns, local) { Ok(()) } else { Err(ParseError::UnexpectedBody { expected: local }) }
}

/// The body as a fault, when it is one (of either SOAP version).
fn fault(body: &Node) -> Option<Fault> {
    let soap = body.ns.as_deref().filter(|ns| SoapVersion::from_namespace(ns).is_some())?;
    if body.local != w::FAULT {
        return None;
    }
    let (code, reason) = match body.child(soap, w::FAULT12_CODE) {
        Some(code) => (
            code.child(soap, w::FAULT12_VALUE),
            body.child(soap, w::FAULT12_REASON).and_then(|r| r.child(soap, w::FAULT12_TEXT)),
        ),
        None => (
            body.child_unqualified(w::FAULT11_CODE).or_else(|| body.child(soap, w::FAULT11_CODE)),
            body.child_unqualified(w::FAULT11_STRING).or_else(|| body.child(soap, w::FAULT11_STRING)),
        ),
    };
    let code = code.map_or(FaultCode::Other(String::new()), fault_code);
    let reason = reason.map(|r| r.text.trim().to_owned()).unwrap_or_default();
    Some(Fault { code, reason: Personal(reason) })
}

/// `soap:Sender`, `Client`, `SOAP-ENV:Server.Timeout`, … → a [`FaultCode`]. A prefix must
/// be bound to a SOAP envelope namespace (or be absent) for the standard meanings.
fn fault_code(node: &Node) -> FaultCode {
    let text = node.text.trim();
    let local = match text.split_once(':') {
        Some((_, local)) if node.text_ns.as_deref().and_then(SoapVersion::from_namespace).is_some() => local,
        Some(_) => return FaultCode::Other(text.to_owned()),
        None => text,
    };
    // SOAP 1.1 allows dotted refinements: `Client.Authentication`.
    match local.split('.').next().unwrap_or(local) {
        w::FAULT12_SENDER | w::FAULT11_CLIENT => FaultCode::Sender,
        w::FAULT12_RECEIVER | w::FAULT11_SERVER => FaultCode::Receiver,
        w::FAULT_VERSION_MISMATCH => FaultCode::VersionMismatch,
        w::FAULT_MUST_UNDERSTAND => FaultCode::MustUnderstand,
        w::FAULT12_DATA_ENCODING_UNKNOWN => FaultCode::DataEncodingUnknown,
        _ => FaultCode::Other(text.to_owned()),
    }
}

/// Reads an answer: the body `local` in `ns` through `read`, or a fault in its place.
fn answer<T>(
    bytes: &[u8],
    ns: &'static str,
    local: &'static str,
    read: impl FnOnce(Fields<'_>) -> Result<T, ParseError>,
) -> Parsed<Response<T>> {
    let (envelope, body) = read_envelope(bytes, Limits::MESSAGE)?;
    if let Some(fault) = fault(&body) {
        return Ok((envelope, Response::Fault(fault)));
    }
    expect_body(&body, ns, local)?;
    let value = read(Fields::new(&body, ns, true))?;
    Ok((envelope, Response::Body(value)))
}

// ---------------------------------------------------------------------------------------
// Values
// ---------------------------------------------------------------------------------------

fn number<T: std::str::FromStr>(text: &str) -> Option<T> {
    text.parse().ok()
}

fn date_time(text: &str) -> Option<DateTime<FixedOffset>> {
    DateTime::parse_from_rfc3339(text).ok()
}

fn date(text: &str) -> Option<NaiveDate> {
    NaiveDate::parse_from_str(text, "%Y-%m-%d").ok()
}

/// A date in any `xs:date` form — bare, or with a time zone (`2048-09-22Z`,
/// `2048-09-22+03:00`) — or the date part of a date-time (`2028-08-18T00:00:00+03:00`); the
/// calendar date as written, no conversion.
fn date_lenient(text: &str) -> Option<NaiveDate> {
    let text = text.trim();
    date(text).or_else(|| {
        let (head, tail) = text.split_at_checked(10)?;
        let zone = |z: &str| {
            z == "Z"
                || (z.len() == 6
                    && z.starts_with(['+', '-'])
                    && z.as_bytes()[3] == b':'
                    && z.bytes().enumerate().all(|(i, b)| matches!(i, 0 | 3) || b.is_ascii_digit()))
        };
        (tail.starts_with(['T', ' ']) || zone(tail)).then(|| date(head)).flatten()
    })
}

fn oid(text: &str) -> Option<Oid> {
    Oid::parse(text).ok()
}

fn snils(text: &str) -> Option<Snils> {
    Snils::parse(text).ok()
}

const BASE64: GeneralPurpose = GeneralPurpose::new(
    &base64::alphabet::STANDARD,
    GeneralPurposeConfig::new().with_decode_padding_mode(DecodePaddingMode::Indifferent),
);

fn base64(text: &str) -> Option<Vec<u8>> {
    let compact: Vec<u8> = text.bytes().filter(|b| !b.is_ascii_whitespace()).collect();
    BASE64.decode(compact).ok()
}

/// `success` / `OK` → true, `error` → false (any case).
fn status(fields: &Fields<'_>) -> Result<bool, ParseError> {
    let text = fields.required(w::STATUS)?;
    if text.eq_ignore_ascii_case(w::STATUS_SUCCESS) || text.eq_ignore_ascii_case(w::STATUS_OK) {
        Ok(true)
    } else if text.eq_ignore_ascii_case(w::STATUS_ERROR) {
        Ok(false)
    } else {
        Err(ParseError::Invalid(w::STATUS))
    }
}

/// `errors/item/{code, message}`; a missing code or message reads as empty.
fn messages(fields: &Fields<'_>) -> Vec<RemdMessage> {
    let Some(errors) = fields.nested(w::ERRORS) else { return Vec::new() };
    errors
        .all(w::ITEM)
        .map(|item| RemdMessage {
            code: item.owned(w::CODE).unwrap_or_default(),
            message: Personal(item.get(w::MESSAGE).map(|m| m.text.trim().to_owned()).unwrap_or_default()),
        })
        .collect()
}

/// A registry item; `emdrId` is required.
fn registry_item(item: &Fields<'_>) -> Result<RegistryItem, ParseError> {
    Ok(RegistryItem {
        emdr_id: item.required(w::EMDR_ID)?.to_owned(),
        local_uid: item.owned(w::LOCAL_UID),
        kind: item.optional(w::KIND, number)?,
        registration_date_time: item.optional(w::REGISTRATION_DATE_TIME, date_time)?,
        store_till_date: item.optional(w::STORE_TILL_DATE, date_lenient)?,
        document_version: item.owned(w::DOCUMENT_VERSION),
    })
}

// ---------------------------------------------------------------------------------------
// Gateway → REMD requests (strict; for the emulator)
// ---------------------------------------------------------------------------------------

/// A `registerDocument` request; `message_id` comes from `wsa:MessageID` (required), the
/// client entity id is in the [`Envelope`].
pub fn read_register_document(bytes: &[u8]) -> Parsed<RegisterDocument> {
    let (envelope, body) = read_envelope(bytes, Limits::MESSAGE)?;
    expect_body(&body, w::SER_NS, w::REGISTER_DOCUMENT_REQUEST)?;
    let f = Fields::new(&body, w::SER_NS, false);
    let message_id = envelope.message_id.clone().ok_or(ParseError::Missing(w::MESSAGE_ID))?;
    let p = f.nested_required(w::PATIENT)?;
    let patient = Patient {
        local_id: p.required(w::LOCAL_ID)?.to_owned(),
        snils: p.optional(w::SNILS, snils)?,
        surname: Personal(p.required(w::SURNAME)?.to_owned()),
        name: Personal(p.required(w::NAME)?.to_owned()),
        patr_name: p.owned(w::PATR_NAME).map(Personal),
        birth_date: Personal(p.parsed(w::BIRTH_DATE, date)?),
        gender: p.parsed(w::GENDER, number)?,
    };
    let personal_signatures = match f.nested(w::PERSONAL_SIGNATURES) {
        Some(list) => list.all(w::ITEM).map(|item| personal_signature(&item)).collect::<Result<_, _>>()?,
        None => Vec::new(),
    };
    let request = RegisterDocument {
        message_id,
        kind: f.parsed(w::KIND, number)?,
        organization: f.parsed(w::ORGANIZATION, oid)?,
        department: f.optional(w::DEPARTMENT, oid)?,
        local_uid: f.required(w::LOCAL_UID)?.to_owned(),
        creation_date_time: f.parsed(w::CREATION_DATE_TIME, date_time)?,
        patient,
        checksum: f.nested_required(w::DOC_CONTENT)?.parsed(w::CHECKSUM, number)?,
        personal_signatures,
        org_signature: f.nested(w::ORG_SIGNATURE).map(|s| signature_data(&s)).transpose()?,
    };
    Ok((envelope, request))
}

fn personal_signature(item: &Fields<'_>) -> Result<PersonalSignature, ParseError> {
    let s = item.nested_required(w::SIGNER)?;
    let signer = Signer {
        local_id: s.required(w::LOCAL_ID)?.to_owned(),
        role: coded(&s, w::ROLE)?.ok_or(ParseError::Missing(w::ROLE))?,
        last_name: Personal(s.required(w::LAST_NAME)?.to_owned()),
        first_name: Personal(s.required(w::FIRST_NAME)?.to_owned()),
        middle_name: s.owned(w::MIDDLE_NAME).map(Personal),
        snils: s.parsed(w::SNILS, snils)?,
        position: coded(&s, w::POSITION)?.ok_or(ParseError::Missing(w::POSITION))?,
        speciality: coded(&s, w::SPECIALITY)?,
        department: s.optional(w::DEPARTMENT, oid)?,
    };
    Ok(PersonalSignature { signer, signature: signature_data(&item.nested_required(w::SIGNATURE)?)? })
}

/// `<x version="…">code</x>`; both parts required when the element is there.
fn coded(fields: &Fields<'_>, local: &'static str) -> Result<Option<Coded>, ParseError> {
    let Some(node) = fields.get(local) else { return Ok(None) };
    let code = node.value().ok_or(ParseError::Missing(local))?.to_owned();
    let version = node.attr(w::VERSION_ATTR).map(str::trim).filter(|v| !v.is_empty());
    let version = version.ok_or(ParseError::Missing(w::VERSION_ATTR))?.to_owned();
    Ok(Some(Coded { code, version }))
}

fn signature_data(fields: &Fields<'_>) -> Result<SignatureData, ParseError> {
    Ok(SignatureData { data: fields.parsed(w::DATA, base64)?, checksum: fields.parsed(w::CHECKSUM, number)? })
}

/// A `searchRegistryItem` request.
pub fn read_search_registry_item(bytes: &[u8]) -> Parsed<SearchQuery> {
    let (envelope, body) = read_envelope(bytes, Limits::MESSAGE)?;
    expect_body(&body, w::SER_NS, w::SEARCH_REGISTRY_ITEM_REQUEST)?;
    let f = Fields::new(&body, w::SER_NS, false);
    let query = SearchQuery {
        organization: f.parsed(w::ORGANIZATION, oid)?,
        kind: f.optional(w::KIND, number)?,
        register_date_begin: f.optional(w::REGISTER_DATE_BEGIN, date_time)?,
        register_date_end: f.optional(w::REGISTER_DATE_END, date_time)?,
        patient_snils: f.optional(w::PATIENT_SNILS, snils)?,
    };
    Ok((envelope, query))
}

/// A `getRegistryItem` request: the `emdrId` asked for.
pub fn read_get_registry_item(bytes: &[u8]) -> Parsed<String> {
    let (envelope, body) = read_envelope(bytes, Limits::MESSAGE)?;
    expect_body(&body, w::SER_NS, w::GET_REGISTRY_ITEM_REQUEST)?;
    let emdr_id = Fields::new(&body, w::SER_NS, false).required(w::EMDR_ID)?.to_owned();
    Ok((envelope, emdr_id))
}

// ---------------------------------------------------------------------------------------
// REMD's answers (lenient in optional fields)
// ---------------------------------------------------------------------------------------

/// REMD's answer to `registerDocument`: accepted, rejected with messages, or a fault.
pub fn read_register_document_response(bytes: &[u8]) -> Parsed<Response<RegisterAck>> {
    answer(bytes, w::SER_NS, w::REGISTER_DOCUMENT_RESPONSE, |f| {
        Ok(if status(&f)? { RegisterAck::Accepted } else { RegisterAck::Rejected(messages(&f)) })
    })
}

/// REMD's answer to `searchRegistryItem`: the `matches/item`s, REMD's messages, or a fault.
pub fn read_search_registry_item_response(bytes: &[u8]) -> Parsed<Response<Answer<Vec<RegistryItem>>>> {
    answer(bytes, w::SER_NS, w::SEARCH_REGISTRY_ITEM_RESPONSE, |f| {
        if !status(&f)? {
            return Ok(Answer::Error(messages(&f)));
        }
        let items = match f.nested(w::MATCHES) {
            Some(matches) => matches.all(w::ITEM).map(|item| registry_item(&item)).collect::<Result<_, _>>()?,
            None => Vec::new(),
        };
        Ok(Answer::Success(items))
    })
}

/// REMD's answer to `getRegistryItem`: the item (`None`: not in the register), REMD's
/// messages, or a fault.
pub fn read_get_registry_item_response(bytes: &[u8]) -> Parsed<Response<Answer<Option<RegistryItem>>>> {
    answer(bytes, w::SER_NS, w::GET_REGISTRY_ITEM_RESPONSE, |f| {
        if !status(&f)? {
            return Ok(Answer::Error(messages(&f)));
        }
        Ok(Answer::Success(f.nested(w::GET_ITEM).map(|item| registry_item(&item)).transpose()?))
    })
}

// ---------------------------------------------------------------------------------------
// REMD → gateway calls
// ---------------------------------------------------------------------------------------

/// Identifies and reads one of REMD's calls: by the body element
/// (`cb:getDocumentFileRequest` or `cb:registerDocumentResult`), cross-checked with
/// `wsa:Action` when there is one ([`ParseError::ActionMismatch`] when it names another
/// operation). SOAP 1.1 or 1.2; the [`Envelope`] says which, to answer in kind.
///
/// REMD's `wsa:MessageID` becomes the `message_id` of the call (empty when REMD sent
/// none: the call is still read, and answered without `wsa:RelatesTo`).
pub fn parse_incoming(bytes: &[u8]) -> Parsed<Incoming> {
    let (envelope, body) = read_envelope_as(bytes, Limits::CALL, true)?;
    let message_id = envelope.message_id.clone().unwrap_or_default();
    for (name, value) in [(w::MESSAGE_ID, Some(&message_id)), (w::RELATES_TO, envelope.relates_to.as_ref())] {
        if value.is_some_and(|v| v.len() > MAX_ID_BYTES) {
            return Err(ParseError::Invalid(name));
        }
    }
    let f = Fields::new(&body, w::CB_NS, true);
    let incoming = if body.is(w::CB_NS, w::GET_DOCUMENT_FILE_REQUEST) {
        check_action(&envelope, &[w::ACTION_GET_DOCUMENT_FILE, w::GET_DOCUMENT_FILE_REQUEST])?;
        let request = DocumentFileRequest {
            message_id,
            relates_to_message: f.text(w::RELATES_TO_MESSAGE).map(|m| bare_message_id(m).to_owned()),
            emdr_id: f.owned(w::EMDR_ID),
            local_uid: f.owned(w::LOCAL_UID),
        };
        if request.relates_to_message.is_none() && request.emdr_id.is_none() {
            return Err(ParseError::Missing(w::RELATES_TO_MESSAGE));
        }
        for (name, value) in [
            (w::RELATES_TO_MESSAGE, &request.relates_to_message),
            (w::EMDR_ID, &request.emdr_id),
            (w::LOCAL_UID, &request.local_uid),
        ] {
            if value.as_ref().is_some_and(|v| v.len() > MAX_ID_BYTES) {
                return Err(ParseError::Invalid(name));
            }
        }
        Incoming::GetDocumentFile(request)
    } else if body.is(w::CB_NS, w::REGISTER_DOCUMENT_RESULT) {
        check_action(&envelope, &[w::ACTION_SEND_REGISTER_DOCUMENT_RESULT, w::REGISTER_DOCUMENT_RESULT])?;
        Incoming::RegisterResult(register_result(message_id, &f)?)
    } else {
        return Err(ParseError::UnexpectedBody { expected: "getDocumentFileRequest or registerDocumentResult" });
    };
    Ok((envelope, incoming))
}

fn check_action(envelope: &Envelope, accepted: &[&'static str]) -> Result<(), ParseError> {
    match &envelope.action {
        Some(action) if !accepted.iter().any(|operation| w::action_names(action, operation)) => {
            Err(ParseError::ActionMismatch { expected: accepted[0] })
        }
        _ => Ok(()),
    }
}

/// The longest identifier accepted in a call from REMD (MessageIDs, `emdrId`, `localUid`,
/// the organisation): REMD's are UUIDs and OIDs, and each is stored and looked up.
pub const MAX_ID_BYTES: usize = 256;

fn register_result(message_id: String, f: &Fields<'_>) -> Result<RegisterResult, ParseError> {
    let success = status(f)?;
    let kind = f.optional(w::KIND, number)?;
    let local_uid = f.owned(w::LOCAL_UID);
    let registry_item = match f.nested(w::REGISTRY_ITEM) {
        Some(item) if item.text(w::EMDR_ID).is_some() => {
            let mut item = registry_item(&item)?;
            item.local_uid = item.local_uid.or_else(|| local_uid.clone());
            item.kind = item.kind.or(kind);
            Some(item)
        }
        Some(_) => {
            tracing::debug!("REMD result has a registryItem without emdrId; ignored");
            None
        }
        None => None,
    };
    let too_long = |v: Option<&str>| v.is_some_and(|v| v.len() > MAX_ID_BYTES);
    for (name, value) in [
        (w::RELATES_TO_MESSAGE, f.text(w::RELATES_TO_MESSAGE)),
        (w::ORGANIZATION, f.text(w::ORGANIZATION)),
        (w::LOCAL_UID, local_uid.as_deref()),
        (w::EMDR_ID, registry_item.as_ref().map(|i| i.emdr_id.as_str())),
    ] {
        if too_long(value) {
            return Err(ParseError::Invalid(name));
        }
    }
    Ok(RegisterResult {
        message_id,
        relates_to_message: bare_message_id(f.required(w::RELATES_TO_MESSAGE)?).to_owned(),
        status: if success { ResultStatus::Success } else { ResultStatus::Error },
        kind,
        organization: f.owned(w::ORGANIZATION),
        local_uid,
        creation_date_time: f.optional(w::CREATION_DATE_TIME, date_time)?,
        registry_item,
        errors: messages(f),
    })
}

// ---------------------------------------------------------------------------------------
// Gateway's answers to REMD (for the emulator)
// ---------------------------------------------------------------------------------------

/// The gateway's answer to `getDocumentFile`: the document and its checksum, or a fault.
/// The checksum is read as sent, not checked against the bytes.
pub fn read_get_document_file_response(bytes: &[u8]) -> Parsed<Response<DocumentFile>> {
    answer(bytes, w::CB_NS, w::GET_DOCUMENT_FILE_RESPONSE, |f| {
        Ok(DocumentFile { document: f.parsed(w::DOCUMENT, base64)?, checksum: f.parsed(w::CHECKSUM, number)? })
    })
}

/// The gateway's answer to `sendRegisterDocumentResult`: its status, or a fault.
pub fn read_register_document_result_response(bytes: &[u8]) -> Parsed<Response<ResultStatus>> {
    answer(bytes, w::CB_NS, w::REGISTER_DOCUMENT_RESULT_RESPONSE, |f| {
        Ok(if status(&f)? { ResultStatus::Success } else { ResultStatus::Error })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn dates_with_a_time_part() {
        assert_eq!(date_lenient("2028-08-18"), NaiveDate::from_ymd_opt(2028, 8, 18));
        assert_eq!(date_lenient("2028-08-18T00:00:00+03:00"), NaiveDate::from_ymd_opt(2028, 8, 18));
        assert_eq!(date_lenient("18.08.2028"), None);
    }

    #[test]
    fn every_xs_date_form() {
        let d = NaiveDate::from_ymd_opt(2048, 9, 22);
        for text in ["2048-09-22", "2048-09-22Z", "2048-09-22+03:00", "2048-09-22-05:30", " 2048-09-22+14:00 "] {
            assert_eq!(date_lenient(text), d, "{text}");
        }
        for text in ["2048-09-22+3:00", "2048-09-22+03", "2048-09-22X", "2048-09-22+aa:bb", "2048-13-22Z"] {
            assert_eq!(date_lenient(text), None, "{text}");
        }
    }

    #[test]
    fn base64_is_read_leniently() {
        assert_eq!(base64("YWJj\r\nZA=="), Some(b"abcd".to_vec()));
        assert_eq!(base64("YWJjZA"), Some(b"abcd".to_vec()));
        assert_eq!(base64("YW*j"), None);
    }
}
