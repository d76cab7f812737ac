//! What one REMD HTTP exchange means: the only place where transport errors, HTTP
//! statuses, SOAP faults and unreadable answers become a [`CallOutcome`] (per exchange,
//! for metrics) and a [`Failure`] (for the relay). See the table in the crate's README.
//!
//! A synchronous `status=error` of `registerDocument` is not a failure: it is
//! `Ok(RegisterAck::Rejected(..))`, and the gateway classifies the codes with its
//! mappings. Lookups (`searchRegistryItem`, `getRegistryItem`) have no such channel, so
//! their `status=error` codes are classified here, with the few dispositions REMD.md
//! gives ([`code_disposition`]).
//!
//! Reasons are fixed English text with the operation, the HTTP status, SOAP fault codes
//! and REMD message codes (checked to be `[A-Z0-9_]` words). REMD's free text (fault
//! reasons, message texts) and the request are never quoted.

use std::time::Duration;

use egisz_contract::remd::{RegisterAck, RegistryItem, RemdMessage};
use egisz_contract::{CallOutcome, Failure};
use reqwest::StatusCode;

use crate::model::{Answer, Fault, FaultCode, Response};
use crate::wire;

/// How long to wait after REMD's `RATE_LIMIT` ("retry in a minute or later"): 60 s.
pub const RATE_LIMIT_PAUSE: Duration = Duration::from_secs(60);

/// Longest transport error cause kept in a reason, in characters.
const MAX_CAUSE_CHARS: usize = 160;

/// REMD message codes worth retrying without changing data (REMD.md).
const TRANSIENT_CODES: &[&str] = &[
    "RATE_LIMIT",
    "CA_INACCESSIBILITY",
    "MIS_NOT_AVAILABLE",
    "MIS_ERROR",
    "RMIS_ERROR",
    "FILE_WAS_NOT_SENT",
    "GET_DOCUMENT_FILE_ERROR",
    "INTERNAL_ERROR",
    "RUNTIME_ERROR",
    "ASYNC_RESPONSE_TIMEOUT",
    "SCHEMA_PROCESSING_ERROR",
    "XML_VALIDATOR_ERROR",
    "VALSYS_INTERNAL_ERROR",
    "VALSYS_REJECT",
    "PATIENT_ALREADY_REGISTERED",
];

/// REMD message codes that need an administrator (REMD.md).
const CONFIGURATION_CODES: &[&str] =
    &["NO_RMIS", "DISABLED_RMIS", "RMIS_REGION_MISMATCH", "ACCESS_DENIED", "SIGNER_ORG_MISMATCH"];

/// One of the three calls, for texts and for what a timeout means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Operation {
    Register,
    Search,
    Get,
}

impl Operation {
    /// The SOAP action, also used in reasons.
    pub(crate) fn action(self) -> &'static str {
        match self {
            Operation::Register => wire::ACTION_REGISTER_DOCUMENT,
            Operation::Search => wire::ACTION_SEARCH_REGISTRY_ITEM,
            Operation::Get => wire::ACTION_GET_REGISTRY_ITEM,
        }
    }

    /// A failure after the request may have reached REMD: `Unknown` for registration
    /// (REMD may have accepted it; the caller reconciles), `Retry` for lookups.
    fn after_sending(self, reason: String) -> Failure {
        match self {
            Operation::Register => Failure::Unknown { reason },
            Operation::Search | Operation::Get => Failure::Retry { reason, after: None },
        }
    }
}

/// What a REMD message code means for a lookup.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Disposition {
    /// `REGISTRY_ITEM_NOT_FOUND`.
    NotFound,
    Transient,
    Configuration,
    Permanent,
}

/// The disposition of one code; `RECIPIENT_*` and `RECEPIENT_*` are the same code.
pub(crate) fn code_disposition(code: &str) -> Disposition {
    let code = code.trim();
    let code = code.strip_prefix("RECIPIENT_").map_or(code.to_owned(), |rest| format!("RECEPIENT_{rest}"));
    if code == wire::REGISTRY_ITEM_NOT_FOUND {
        Disposition::NotFound
    } else if TRANSIENT_CODES.contains(&code.as_str()) {
        Disposition::Transient
    } else if CONFIGURATION_CODES.contains(&code.as_str()) {
        Disposition::Configuration
    } else {
        Disposition::Permanent
    }
}

/// A REMD code fit for a reason: an `[A-Z0-9_]` word of at most 64 characters, `?`
/// otherwise (a "code" could be anything REMD put there).
fn safe_code(code: &str) -> &str {
    let code = code.trim();
    let ok = !code.is_empty()
        && code.len() <= 64
        && code.bytes().all(|b| b.is_ascii_uppercase() || b.is_ascii_digit() || b == b'_');
    if ok { code } else { "?" }
}

pub(crate) use egisz_http::retry_after;

type Read<T> = fn(&[u8]) -> crate::read::Parsed<Response<T>>;

/// Classifies a complete answer (status, `Retry-After`, body) of one operation.
pub(crate) type Classifier<T> = fn(StatusCode, Option<Duration>, &[u8]) -> (CallOutcome, Result<T, Failure>);

/// `registerDocument`'s answer.
pub(crate) fn register(
    status: StatusCode,
    retry_after: Option<Duration>,
    body: &[u8],
) -> (CallOutcome, Result<RegisterAck, Failure>) {
    let read: Read<RegisterAck> = crate::read::read_register_document_response;
    match answered(Operation::Register, status, retry_after, body, read) {
        Ok(ack) => (CallOutcome::Ok, Ok(ack)),
        Err((outcome, failure)) => (outcome, Err(failure)),
    }
}

/// `searchRegistryItem`'s answer.
pub(crate) fn search(
    status: StatusCode,
    retry_after: Option<Duration>,
    body: &[u8],
) -> (CallOutcome, Result<Vec<RegistryItem>, Failure>) {
    let read: Read<Answer<Vec<RegistryItem>>> = crate::read::read_search_registry_item_response;
    match answered(Operation::Search, status, retry_after, body, read) {
        Ok(Answer::Success(items)) => (CallOutcome::Ok, Ok(items)),
        Ok(Answer::Error(messages)) => match lookup_error(Operation::Search, status, &messages) {
            Ok(()) => (CallOutcome::NotFound, Ok(Vec::new())),
            Err((outcome, failure)) => (outcome, Err(failure)),
        },
        Err((outcome, failure)) => (outcome, Err(failure)),
    }
}

/// `getRegistryItem`'s answer.
pub(crate) fn get(
    status: StatusCode,
    retry_after: Option<Duration>,
    body: &[u8],
) -> (CallOutcome, Result<Option<RegistryItem>, Failure>) {
    let read: Read<Answer<Option<RegistryItem>>> = crate::read::read_get_registry_item_response;
    match answered(Operation::Get, status, retry_after, body, read) {
        Ok(Answer::Success(Some(item))) => (CallOutcome::Ok, Ok(Some(item))),
        Ok(Answer::Success(None)) => (CallOutcome::NotFound, Ok(None)),
        Ok(Answer::Error(messages)) => match lookup_error(Operation::Get, status, &messages) {
            Ok(()) => (CallOutcome::NotFound, Ok(None)),
            Err((outcome, failure)) => (outcome, Err(failure)),
        },
        Err((outcome, failure)) => (outcome, Err(failure)),
    }
}

/// A lookup's `status=error`: `Ok(())` for "not found", otherwise the failure of the worst
/// code (configuration > permanent > transient; all transient = retry, after 60 s when one
/// is `RATE_LIMIT`).
fn lookup_error(op: Operation, status: StatusCode, messages: &[RemdMessage]) -> Result<(), (CallOutcome, Failure)> {
    let dispositions: Vec<Disposition> = messages.iter().map(|m| code_disposition(&m.code)).collect();
    if dispositions.contains(&Disposition::NotFound) {
        return Ok(());
    }
    let codes: Vec<&str> = messages.iter().map(|m| safe_code(&m.code)).collect();
    let reason = format!(
        "REMD {}: answered {} with status error, codes {}",
        op.action(),
        status.as_u16(),
        if codes.is_empty() { "none".to_owned() } else { codes.join(", ") }
    );
    Err(if dispositions.contains(&Disposition::Configuration) {
        (CallOutcome::Unauthorized, Failure::Configuration { reason })
    } else if dispositions.contains(&Disposition::Permanent) || dispositions.is_empty() {
        (CallOutcome::BadRequest, Failure::Permanent { reason })
    } else if codes.contains(&"RATE_LIMIT") {
        (CallOutcome::RateLimited, Failure::Retry { reason, after: Some(RATE_LIMIT_PAUSE) })
    } else {
        (CallOutcome::ServerError, Failure::Retry { reason, after: None })
    })
}

/// The common part: credentials, rate limit, fault, HTTP status, then the body.
fn answered<T>(
    op: Operation,
    status: StatusCode,
    retry_after: Option<Duration>,
    body: &[u8],
    read: Read<T>,
) -> Result<T, (CallOutcome, Failure)> {
    let action = op.action();
    let code = status.as_u16();
    match code {
        401 | 403 => {
            return Err((
                CallOutcome::Unauthorized,
                Failure::Configuration {
                    reason: format!("REMD {action}: answered {code}: check the client entity id and the sidecar"),
                },
            ));
        }
        429 => {
            let reason = format!("REMD {action}: answered 429, rate limited");
            return Err((CallOutcome::RateLimited, Failure::Retry { reason, after: retry_after }));
        }
        _ => {}
    }
    // A fault decides, whatever the HTTP status (SOAP 1.2 sends it with 400 or 500).
    let parsed = match read(body) {
        Ok((_, Response::Fault(fault))) => return Err(fault_failure(op, code, &fault, retry_after)),
        Ok((_, Response::Body(value))) => Ok(value),
        Err(e) => Err(e),
    };
    match code {
        200..=299 => match parsed {
            Ok(value) => Ok(value),
            Err(e) => Err((
                CallOutcome::InvalidResponse,
                op.after_sending(format!("REMD {action}: answered {code} with an unreadable body ({e})")),
            )),
        },
        300..=399 => Err((
            CallOutcome::InvalidResponse,
            Failure::Configuration {
                reason: format!("REMD {action}: answered a redirect ({code}): check the endpoint"),
            },
        )),
        404 | 405 | 415 => Err((
            CallOutcome::InvalidResponse,
            Failure::Configuration {
                reason: format!("REMD {action}: answered {code} without a SOAP fault: check the endpoint"),
            },
        )),
        408 => Err((
            CallOutcome::Timeout,
            Failure::Retry { reason: format!("REMD {action}: answered 408, request timeout"), after: retry_after },
        )),
        400..=499 => Err((
            CallOutcome::BadRequest,
            Failure::Permanent { reason: format!("REMD {action}: answered {code} without a SOAP fault") },
        )),
        // A gateway timeout in front of REMD: the request may have been forwarded.
        504 => {
            Err((CallOutcome::ServerError, op.after_sending(format!("REMD {action}: answered 504, gateway timeout"))))
        }
        500..=599 => Err((
            CallOutcome::ServerError,
            Failure::Retry { reason: format!("REMD {action}: answered {code}"), after: retry_after },
        )),
        _ => Err((
            CallOutcome::InvalidResponse,
            op.after_sending(format!("REMD {action}: answered an unexpected status {code}")),
        )),
    }
}

/// A SOAP fault: `Receiver`/`Server` → retry, `Sender`/`Client` → permanent,
/// `VersionMismatch`/`MustUnderstand` → configuration; a REMD code at the start of the
/// reason refines it (a transient code → retry, a configuration code → configuration).
fn fault_failure(op: Operation, status: u16, fault: &Fault, retry_after: Option<Duration>) -> (CallOutcome, Failure) {
    let action = op.action();
    let (code_text, by_code) = match &fault.code {
        FaultCode::Sender => ("Sender", Disposition::Permanent),
        FaultCode::Receiver => ("Receiver", Disposition::Transient),
        FaultCode::VersionMismatch => ("VersionMismatch", Disposition::Configuration),
        FaultCode::MustUnderstand => ("MustUnderstand", Disposition::Configuration),
        FaultCode::DataEncodingUnknown => ("DataEncodingUnknown", Disposition::Permanent),
        FaultCode::Other(_) => ("other", Disposition::Permanent),
    };
    let remd_code = fault.remd_code();
    let disposition = match remd_code.map(code_disposition) {
        Some(d @ (Disposition::Transient | Disposition::Configuration)) => d,
        _ => by_code,
    };
    let mut reason = format!("REMD {action}: SOAP fault {code_text}");
    if let Some(remd_code) = remd_code {
        reason.push_str(&format!(" with code {}", safe_code(remd_code)));
    }
    reason.push_str(&format!(" (HTTP {status})"));
    match disposition {
        Disposition::Transient => {
            let after = if remd_code == Some("RATE_LIMIT") { Some(RATE_LIMIT_PAUSE) } else { retry_after };
            (CallOutcome::ServerError, Failure::Retry { reason, after })
        }
        Disposition::Configuration => (CallOutcome::BadRequest, Failure::Configuration { reason }),
        Disposition::NotFound | Disposition::Permanent => (CallOutcome::BadRequest, Failure::Permanent { reason }),
    }
}

/// The answer was larger than the readers accept.
pub(crate) fn too_large(op: Operation, status: StatusCode, limit: usize) -> (CallOutcome, Failure) {
    let reason = format!("REMD {}: answered {} with a body over {limit} bytes", op.action(), status.as_u16());
    (CallOutcome::InvalidResponse, op.after_sending(reason))
}

/// The request got no complete answer. Connecting (refused, DNS, TLS, connect timeout)
/// failed before anything was sent: retry. Anything later (a timeout or a broken
/// connection after sending): `Unknown` for registration, retry for lookups.
///
/// reqwest's own error text is never used; only the innermost cause, as the I/O error
/// kind when it is an OS error.
pub(crate) fn transport_error(op: Operation, err: &reqwest::Error, timeout: Duration) -> (CallOutcome, Failure) {
    let action = op.action();
    let outcome = if err.is_timeout() { CallOutcome::Timeout } else { CallOutcome::Transport };
    if err.is_builder() {
        let reason = format!("REMD {action}: the request could not be built: check the endpoint");
        return (CallOutcome::Transport, Failure::Configuration { reason });
    }
    if err.is_connect() {
        let reason = match egisz_http::transport_cause(err, MAX_CAUSE_CHARS) {
            Some(cause) => format!("REMD {action}: connection failed: {cause}"),
            None => format!("REMD {action}: connection failed"),
        };
        return (outcome, Failure::Retry { reason, after: None });
    }
    if err.is_timeout() {
        let reason = format!("REMD {action}: no answer within {} ms after sending", timeout.as_millis());
        return (outcome, op.after_sending(reason));
    }
    let what = if err.is_body() || err.is_decode() { "answer was cut off" } else { "exchange failed after sending" };
    let reason = match egisz_http::transport_cause(err, MAX_CAUSE_CHARS) {
        Some(cause) => format!("REMD {action}: {what}: {cause}"),
        None => format!("REMD {action}: {what}"),
    };
    (outcome, op.after_sending(reason))
}

#[cfg(test)]
mod tests {
    use egisz_contract::Personal;
    use egisz_contract::remd::RegisterAck;

    use super::*;
    use crate::model::ReplyHeader;
    use crate::{SoapVersion, write};

    fn reply() -> ReplyHeader {
        ReplyHeader { message_id: "00000000-0000-4000-8000-000000000001".to_owned(), relates_to: None }
    }

    fn fault(version: SoapVersion, code: FaultCode, reason: &str) -> Vec<u8> {
        write::write_fault(version, &reply(), &Fault::new(code, reason))
    }

    fn rejected() -> Vec<u8> {
        let messages = vec![RemdMessage { code: "INVALID_SNILS".to_owned(), message: Personal("x".to_owned()) }];
        write::write_register_document_response(SoapVersion::Soap12, &reply(), &RegisterAck::Rejected(messages))
    }

    fn label(result: &Result<RegisterAck, Failure>) -> &'static str {
        match result {
            Ok(RegisterAck::Accepted) => "accepted",
            Ok(RegisterAck::Rejected(_)) => "rejected",
            Err(f) => f.label(),
        }
    }

    #[test]
    fn register_table() {
        use CallOutcome as O;
        let accepted = write::write_register_document_response(SoapVersion::Soap12, &reply(), &RegisterAck::Accepted);
        let s12 = SoapVersion::Soap12;
        let s11 = SoapVersion::Soap11;
        let cases: Vec<(u16, Vec<u8>, O, &str)> = vec![
            (200, accepted.clone(), O::Ok, "accepted"),
            (200, rejected(), O::Ok, "rejected"),
            (200, b"<html/>".to_vec(), O::InvalidResponse, "unknown"),
            (200, Vec::new(), O::InvalidResponse, "unknown"),
            (500, fault(s12, FaultCode::Receiver, "boom"), O::ServerError, "retry"),
            (500, fault(s11, FaultCode::Receiver, "boom"), O::ServerError, "retry"),
            (400, fault(s12, FaultCode::Sender, "bad"), O::BadRequest, "permanent"),
            (500, fault(s11, FaultCode::Sender, "bad"), O::BadRequest, "permanent"),
            (400, fault(s12, FaultCode::Sender, "RATE_LIMIT: wait"), O::ServerError, "retry"),
            (400, fault(s12, FaultCode::Sender, "ACCESS_DENIED"), O::BadRequest, "configuration"),
            (500, fault(s12, FaultCode::VersionMismatch, "v"), O::BadRequest, "configuration"),
            (200, fault(s12, FaultCode::Receiver, "boom"), O::ServerError, "retry"),
            (401, Vec::new(), O::Unauthorized, "configuration"),
            (403, fault(s12, FaultCode::Sender, "x"), O::Unauthorized, "configuration"),
            (429, Vec::new(), O::RateLimited, "retry"),
            (503, b"<html>busy</html>".to_vec(), O::ServerError, "retry"),
            (500, Vec::new(), O::ServerError, "retry"),
            (504, Vec::new(), O::ServerError, "unknown"),
            (302, Vec::new(), O::InvalidResponse, "configuration"),
            (404, b"<html>nginx</html>".to_vec(), O::InvalidResponse, "configuration"),
            (400, Vec::new(), O::BadRequest, "permanent"),
            (408, Vec::new(), O::Timeout, "retry"),
        ];
        for (code, body, outcome, kind) in cases {
            let (o, r) = register(StatusCode::from_u16(code).unwrap(), None, &body);
            assert_eq!((o, label(&r)), (outcome, kind), "{code} {}", String::from_utf8_lossy(&body));
        }
    }

    #[test]
    fn lookups_retry_where_registration_is_unknown() {
        let (o, r) = search(StatusCode::OK, None, b"<garbage");
        assert_eq!(o, CallOutcome::InvalidResponse);
        assert!(matches!(r, Err(Failure::Retry { .. })));
        let (_, r) = get(StatusCode::GATEWAY_TIMEOUT, None, b"");
        assert!(matches!(r, Err(Failure::Retry { .. })));
    }

    #[test]
    fn lookup_codes() {
        let messages = |codes: &[&str]| -> Vec<RemdMessage> {
            codes
                .iter()
                .map(|c| RemdMessage {
                    code: (*c).to_owned(), message: Personal("Иванов 20311784514".to_owned())
                })
                .collect()
        };
        let answer = |codes: &[&str]| {
            write::write_search_registry_item_response(SoapVersion::Soap12, &reply(), &Answer::Error(messages(codes)))
        };
        let (o, r) = search(StatusCode::OK, None, &answer(&["REGISTRY_ITEM_NOT_FOUND"]));
        assert_eq!((o, r), (CallOutcome::NotFound, Ok(Vec::new())));
        let (o, r) = search(StatusCode::OK, None, &answer(&["RATE_LIMIT"]));
        assert_eq!(o, CallOutcome::RateLimited);
        let Err(Failure::Retry { reason, after }) = r else { panic!("{r:?}") };
        assert_eq!(after, Some(RATE_LIMIT_PAUSE));
        assert_eq!(reason, "REMD searchRegistryItem: answered 200 with status error, codes RATE_LIMIT");
        let (_, r) = search(StatusCode::OK, None, &answer(&["INTERNAL_ERROR", "ACCESS_DENIED"]));
        assert!(matches!(r, Err(Failure::Configuration { .. })));
        let (_, r) = search(StatusCode::OK, None, &answer(&["INTERNAL_ERROR", "WHATEVER"]));
        assert!(matches!(r, Err(Failure::Permanent { .. })));
        let (_, r) = search(StatusCode::OK, None, &answer(&["внутренняя ошибка 20311784514"]));
        let Err(Failure::Permanent { reason }) = r else { panic!() };
        assert!(reason.ends_with("codes ?"), "{reason}");
        let not_found = Answer::Error(messages(&["REGISTRY_ITEM_NOT_FOUND"]));
        let body = write::write_get_registry_item_response(SoapVersion::Soap12, &reply(), &not_found);
        assert_eq!(get(StatusCode::OK, None, &body), (CallOutcome::NotFound, Ok(None)));
    }

    #[test]
    fn recipient_aliases() {
        assert_eq!(code_disposition("RECIPIENT_INFO_MISMATCH"), code_disposition("RECEPIENT_INFO_MISMATCH"));
        assert_eq!(code_disposition(" RATE_LIMIT "), Disposition::Transient);
        assert_eq!(code_disposition("NO_RMIS"), Disposition::Configuration);
    }

    #[test]
    fn fault_reasons_never_quote_remd_text() {
        let body = fault(SoapVersion::Soap12, FaultCode::Sender, "Пациент Иванов 20311784514 не найден");
        let (_, r) = register(StatusCode::BAD_REQUEST, None, &body);
        assert_eq!(r.unwrap_err().reason(), "REMD registerDocument: SOAP fault Sender (HTTP 400)");
        let body = fault(SoapVersion::Soap11, FaultCode::Receiver, "INTERNAL_ERROR Иванов");
        let (_, r) = register(StatusCode::INTERNAL_SERVER_ERROR, None, &body);
        assert_eq!(
            r.unwrap_err().reason(),
            "REMD registerDocument: SOAP fault Receiver with code INTERNAL_ERROR (HTTP 500)"
        );
    }
}
