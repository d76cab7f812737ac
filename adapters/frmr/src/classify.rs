//! What one FRMR HTTP exchange means: the only place where statuses, transport errors and
//! bodies turn into a [`CallOutcome`] (for metrics) and a [`Classified`] (for the retry
//! loop). See the table in the crate's README.
//!
//! Reasons are our own fixed English text plus numbers: the HTTP status, FRMR's numeric
//! `code` and its `reasonPhrase` only when that is a standard HTTP reason phrase. FRMR's
//! `message`, `errorUserMessage` and any other body text are never quoted — they may hold
//! names, dates and numbers `scrub_personal` does not recognise. The retry loop appends
//! the attempt number.

use std::time::Duration;

use egisz_contract::frmr::FrmrPerson;
use egisz_contract::{CallOutcome, Failure, Snils};
use reqwest::StatusCode;

use crate::token::millis;
use crate::wire::{Envelope, ErrorEnvelope};

/// Longest transport error cause kept in a reason, in characters.
const MAX_CAUSE_CHARS: usize = 160;

/// What the retry loop does with one exchange.
#[derive(Debug)]
pub(crate) enum Classified {
    /// 2xx with a person.
    Found(FrmrPerson),
    /// 2xx with `content: null`, or 404 with FRMR's error envelope.
    NotFound,
    /// 401: the token was refused; a provider token may be refreshed once.
    Unauthorized(String),
    /// Not worth repeating now.
    Fatal(Failure),
    /// Worth repeating: 408, 429, 5xx, timeouts, connection errors, unreadable 2xx.
    Transient { reason: String, retry_after: Option<Duration> },
}

fn transient(reason: String, retry_after: Option<Duration>) -> Classified {
    Classified::Transient { reason, retry_after }
}

pub(crate) use egisz_http::retry_after;

/// A complete answer.
pub(crate) fn response(
    status: StatusCode,
    retry_after: Option<Duration>,
    body: &[u8],
    requested: &Snils,
) -> (CallOutcome, Classified) {
    let code = status.as_u16();
    match code {
        200..=299 => success(body, requested),
        300..=399 => (
            CallOutcome::InvalidResponse,
            Classified::Fatal(Failure::Configuration {
                reason: format!("FRMR answered a redirect ({code}): check the base URL"),
            }),
        ),
        400..=499 => client_error(code, retry_after, body),
        500..=599 => (CallOutcome::ServerError, transient(answered("", code, body), retry_after)),
        _ => (CallOutcome::InvalidResponse, transient(format!("FRMR answered an unexpected status {code}"), None)),
    }
}

fn client_error(code: u16, retry_after: Option<Duration>, body: &[u8]) -> (CallOutcome, Classified) {
    match code {
        401 => (CallOutcome::Unauthorized, Classified::Unauthorized(answered("FRMR refused the token: ", code, body))),
        403 => (
            CallOutcome::Unauthorized,
            Classified::Fatal(Failure::Configuration { reason: answered("FRMR denied access: ", code, body) }),
        ),
        404 => match ErrorEnvelope::parse(body) {
            Some(_) => (CallOutcome::NotFound, Classified::NotFound),
            // Not FRMR's "no such person" but someone else's 404: a wrong base URL must
            // not make every worker "not found".
            None => (
                CallOutcome::InvalidResponse,
                Classified::Fatal(Failure::Configuration {
                    reason: "FRMR answered 404 without its error envelope: check the base URL".to_owned(),
                }),
            ),
        },
        408 => (CallOutcome::Timeout, transient(answered("FRMR timed out the request: ", code, body), retry_after)),
        429 => (CallOutcome::RateLimited, transient(answered("FRMR is rate limiting: ", code, body), retry_after)),
        // 400 and every other 4xx: the request itself is wrong; the same will fail again.
        _ => (
            CallOutcome::BadRequest,
            Classified::Fatal(Failure::Permanent { reason: answered("FRMR rejected the request: ", code, body) }),
        ),
    }
}

/// `{head}FRMR answered {status}` (with a `head`, `…answered` is lower-case), followed by
/// what may be taken from FRMR's error envelope: ` with code {code} {phrase}`.
fn answered(head: &str, status: u16, body: &[u8]) -> String {
    let verb = if head.is_empty() { "FRMR answered" } else { "answered" };
    let mut reason = format!("{head}{verb} {status}");
    if let Some(envelope) = ErrorEnvelope::parse(body) {
        match (envelope.numeric_code(), envelope.reason_phrase.as_deref().and_then(standard_reason_phrase)) {
            (Some(code), Some(phrase)) => reason.push_str(&format!(" with code {code} {phrase}")),
            (Some(code), None) => reason.push_str(&format!(" with code {code}")),
            (None, Some(phrase)) => reason.push_str(&format!(" {phrase}")),
            (None, None) => {}
        }
    }
    reason
}

/// The canonical spelling of `phrase` when it is a standard HTTP reason phrase ("Bad
/// Request", "Service Unavailable", …; case and surrounding spaces ignored), otherwise
/// `None`. The text returned is ours, never FRMR's.
pub(crate) fn standard_reason_phrase(phrase: &str) -> Option<&'static str> {
    let phrase = phrase.trim();
    (100..=599u16)
        .filter_map(|code| StatusCode::from_u16(code).ok()?.canonical_reason())
        .find(|canonical| canonical.eq_ignore_ascii_case(phrase))
}

fn success(body: &[u8], requested: &Snils) -> (CallOutcome, Classified) {
    let envelope: Envelope = match serde_json::from_slice(body) {
        Ok(e) => e,
        Err(e) => {
            // serde's messages may quote values; only the position is kept.
            let kind = match e.classify() {
                serde_json::error::Category::Io => "i/o",
                serde_json::error::Category::Syntax => "syntax",
                serde_json::error::Category::Data => "data",
                serde_json::error::Category::Eof => "truncated",
            };
            let reason = format!("FRMR answer unreadable: {kind} error at line {} column {}", e.line(), e.column());
            return (CallOutcome::InvalidResponse, transient(reason, None));
        }
    };
    match envelope.content {
        None => (CallOutcome::InvalidResponse, transient("FRMR answer has no content field".to_owned(), None)),
        Some(None) => {
            if envelope.error_user_message.is_some() {
                tracing::debug!("FRMR answered content null with an errorUserMessage");
            }
            (CallOutcome::NotFound, Classified::NotFound)
        }
        Some(Some(person)) => match person.into_domain(requested) {
            Ok(p) => (CallOutcome::Ok, Classified::Found(p)),
            Err(e) => (CallOutcome::InvalidResponse, transient(e.text().to_owned(), None)),
        },
    }
}

/// The request got no complete answer. `timeout` is the per-attempt limit, for the text.
///
/// reqwest's own error text is never used: it quotes the request URL, whose query
/// carries the SNILS. Only the innermost cause (an I/O or TLS error, which knows no URL)
/// is kept — as the I/O error kind (`connection refused`) when it is an OS error.
pub(crate) fn transport_error(err: &reqwest::Error, timeout: Duration) -> (CallOutcome, Classified) {
    if err.is_timeout() {
        return (CallOutcome::Timeout, transient(format!("FRMR timed out after {} ms", millis(timeout)), None));
    }
    let what = if err.is_connect() {
        "connection to FRMR failed"
    } else if err.is_body() || err.is_decode() {
        "FRMR answer was cut off"
    } else {
        "FRMR exchange failed"
    };
    let reason = match egisz_http::transport_cause(err, MAX_CAUSE_CHARS) {
        Some(cause) => format!("{what}: {cause}"),
        None => what.to_owned(),
    };
    (CallOutcome::Transport, transient(reason, None))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn snils() -> Snils {
        Snils::parse("20311784514").unwrap()
    }

    fn classify(code: u16, body: &str) -> (CallOutcome, Classified) {
        response(StatusCode::from_u16(code).unwrap(), None, body.as_bytes(), &snils())
    }

    const ENVELOPE_WITH_SNILS: &str = r#"{"timestamp":"2024-01-01T00:00:00","code":400,"reasonPhrase":"Bad Request","message":"snils 20311784514 / 203-117-845 14 is wrong"}"#;

    #[test]
    fn table() {
        use CallOutcome as O;
        let person = r#"{"requestId":"1","content":{"snils":"20311784514"}}"#;
        let cases: &[(u16, &str, CallOutcome, &str)] = &[
            (200, person, O::Ok, "found"),
            (200, r#"{"content":null}"#, O::NotFound, "not_found"),
            (200, r#"{"requestId":"1"}"#, O::InvalidResponse, "transient"),
            (200, "<html/>", O::InvalidResponse, "transient"),
            (200, "", O::InvalidResponse, "transient"),
            (400, ENVELOPE_WITH_SNILS, O::BadRequest, "permanent"),
            (401, "", O::Unauthorized, "unauthorized"),
            (403, "", O::Unauthorized, "configuration"),
            (404, r#"{"code":404,"message":"not found"}"#, O::NotFound, "not_found"),
            (404, "<html>nginx</html>", O::InvalidResponse, "configuration"),
            (405, "", O::BadRequest, "permanent"),
            (408, "", O::Timeout, "transient"),
            (429, "", O::RateLimited, "transient"),
            (500, "", O::ServerError, "transient"),
            (503, ENVELOPE_WITH_SNILS, O::ServerError, "transient"),
            (302, "", O::InvalidResponse, "configuration"),
        ];
        for (code, body, outcome, kind) in cases {
            let (o, c) = classify(*code, body);
            let got = match &c {
                Classified::Found(_) => "found",
                Classified::NotFound => "not_found",
                Classified::Unauthorized(_) => "unauthorized",
                Classified::Fatal(f) => f.label(),
                Classified::Transient { .. } => "transient",
            };
            assert_eq!((o, got), (*outcome, *kind), "{code} {body}");
        }
    }

    fn reason_of(c: Classified) -> String {
        match c {
            Classified::Unauthorized(r) => r,
            Classified::Fatal(f) => f.reason().to_owned(),
            Classified::Transient { reason, .. } => reason,
            other => panic!("{other:?}"),
        }
    }

    #[test]
    fn reasons_carry_status_code_and_standard_phrase_only() {
        let expected = [
            (400, "FRMR rejected the request: answered 400 with code 400 Bad Request"),
            (401, "FRMR refused the token: answered 401 with code 400 Bad Request"),
            (403, "FRMR denied access: answered 403 with code 400 Bad Request"),
            (408, "FRMR timed out the request: answered 408 with code 400 Bad Request"),
            (429, "FRMR is rate limiting: answered 429 with code 400 Bad Request"),
            (500, "FRMR answered 500 with code 400 Bad Request"),
            (503, "FRMR answered 503 with code 400 Bad Request"),
        ];
        for (code, reason) in expected {
            assert_eq!(reason_of(classify(code, ENVELOPE_WITH_SNILS).1), reason);
        }
        // A body that echoes the SNILS but is not an envelope is never quoted.
        assert_eq!(reason_of(classify(502, "upstream failed for snils=20311784514").1), "FRMR answered 502");
    }

    #[test]
    fn frmr_free_text_never_reaches_a_reason() {
        let personal = ["Иванов", "Иван", "1981", "03-14", "203", "Error", "bad request!"];
        for body in [
            r#"{"code":400,"reasonPhrase":"Иванов Иван 1981-03-14","message":"Иванов Иван 1981-03-14"}"#,
            r#"{"code":"Иванов Иван 1981-03-14","reasonPhrase":"Error","message":"snils 203-117-845 14"}"#,
            r#"{"code":20311784514,"reasonPhrase":"bad request!","message":"x"}"#,
            r#"{"message":"Иванов Иван 1981-03-14"}"#,
        ] {
            for code in [400, 401, 403, 408, 429, 500, 503] {
                let reason = reason_of(classify(code, body).1);
                for secret in personal {
                    assert!(!reason.contains(secret), "{reason} leaks {secret}");
                }
                assert!(reason.ends_with(&format!("answered {code}")) || reason.contains("with code 400"), "{reason}");
            }
        }
        let (_, c) = classify(400, r#"{"code":400,"reasonPhrase":" bad REQUEST ","message":"Иванов"}"#);
        assert_eq!(reason_of(c), "FRMR rejected the request: answered 400 with code 400 Bad Request");
        let (_, c) = classify(503, r#"{"reasonPhrase":"Service Unavailable","message":"Иванов"}"#);
        assert_eq!(reason_of(c), "FRMR answered 503 Service Unavailable");
    }

    #[test]
    fn standard_reason_phrases() {
        assert_eq!(standard_reason_phrase("Bad Request"), Some("Bad Request"));
        assert_eq!(standard_reason_phrase(" not found "), Some("Not Found"));
        assert_eq!(standard_reason_phrase("Internal Server Error"), Some("Internal Server Error"));
        for other in ["", "Error", "Bad Request: snils", "Иванов Иван", "OK OK"] {
            assert_eq!(standard_reason_phrase(other), None, "{other}");
        }
    }

    #[test]
    fn unreadable_bodies_are_not_quoted() {
        let (_, c) = classify(200, r#"{"content":{"snils":"20311784514","birthDate":"Иванов"}}"#);
        let Classified::Transient { reason, .. } = c else { panic!() };
        assert!(reason.starts_with("FRMR answer unreadable: data error at line 1"), "{reason}");
        assert!(!reason.contains("Иванов"), "{reason}");
    }
}
