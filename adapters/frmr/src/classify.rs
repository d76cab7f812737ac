//! What one FRMR HTTP exchange means: the only place where statuses, transport errors and
//! bodies turn into a [`CallOutcome`] (for metrics) and a [`Classified`] (for the retry
//! loop). See the table in the crate's README.

use std::error::Error as _;
use std::time::Duration;

use egisz_contract::frmr::FrmrPerson;
use egisz_contract::{CallOutcome, Failure, Snils, scrub_personal};
use reqwest::StatusCode;
use reqwest::header::{HeaderMap, RETRY_AFTER};

use crate::wire::{Envelope, ErrorEnvelope};

/// Longest piece of FRMR's own error text kept in a reason, in characters.
const MAX_DETAIL_CHARS: usize = 160;

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

/// The `Retry-After` header in its seconds form; the HTTP-date form is ignored.
pub(crate) fn retry_after(headers: &HeaderMap) -> Option<Duration> {
    let value = headers.get(RETRY_AFTER)?.to_str().ok()?;
    value.trim().parse::<u64>().ok().map(Duration::from_secs)
}

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
        500..=599 => {
            (CallOutcome::ServerError, transient(with_detail(format!("FRMR server error ({code})"), body), retry_after))
        }
        _ => (CallOutcome::InvalidResponse, transient(format!("FRMR answered an unexpected status {code}"), None)),
    }
}

fn client_error(code: u16, retry_after: Option<Duration>, body: &[u8]) -> (CallOutcome, Classified) {
    match code {
        401 => (
            CallOutcome::Unauthorized,
            Classified::Unauthorized(with_detail(format!("FRMR refused the token ({code})"), body)),
        ),
        403 => (
            CallOutcome::Unauthorized,
            Classified::Fatal(Failure::Configuration {
                reason: with_detail(format!("FRMR denied access ({code})"), body),
            }),
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
        408 => (
            CallOutcome::Timeout,
            transient(with_detail(format!("FRMR timed out the request ({code})"), body), retry_after),
        ),
        429 => (CallOutcome::RateLimited, transient(format!("FRMR is rate limiting ({code})"), retry_after)),
        // 400 and every other 4xx: the request itself is wrong; the same will fail again.
        _ => (
            CallOutcome::BadRequest,
            Classified::Fatal(Failure::Permanent {
                reason: with_detail(format!("FRMR rejected the request ({code})"), body),
            }),
        ),
    }
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
            let reason = format!("FRMR answer unreadable ({kind} error at line {} column {})", e.line(), e.column());
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

/// The request got no complete answer.
pub(crate) fn transport_error(err: &reqwest::Error) -> (CallOutcome, Classified) {
    if err.is_timeout() {
        return (CallOutcome::Timeout, transient("FRMR did not answer in time".to_owned(), None));
    }
    let what = if err.is_connect() {
        "cannot connect to FRMR"
    } else if err.is_body() {
        "FRMR answer was cut off"
    } else {
        "FRMR exchange failed"
    };
    let reason = match root_cause(err) {
        Some(cause) => format!("{what}: {}", truncate(&scrub_personal(&cause))),
        None => what.to_owned(),
    };
    (CallOutcome::Transport, transient(reason, None))
}

/// The innermost cause (an I/O or TLS error), which carries no URL and so no SNILS. The
/// outer reqwest error is never printed: it names the URL with the SNILS in its query.
fn root_cause(err: &reqwest::Error) -> Option<String> {
    let mut cause = err.source()?;
    while let Some(next) = cause.source() {
        cause = next;
    }
    Some(cause.to_string())
}

/// `head`, plus FRMR's own error text when the body is its error envelope — scrubbed of
/// long digit runs (SNILS) first, then cut short. Any other body is never quoted.
fn with_detail(head: String, body: &[u8]) -> String {
    match ErrorEnvelope::parse(body).and_then(|e| e.text()) {
        Some(text) => format!("{head}: {}", truncate(&scrub_personal(&text))),
        None => head,
    }
}

fn truncate(text: &str) -> String {
    let text = text.trim();
    match text.char_indices().nth(MAX_DETAIL_CHARS) {
        Some((cut, _)) => format!("{}…", &text[..cut]),
        None => text.to_owned(),
    }
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

    #[test]
    fn reasons_never_carry_the_snils() {
        for code in [400, 401, 403, 500, 503] {
            let (_, c) = classify(code, ENVELOPE_WITH_SNILS);
            let reason = match c {
                Classified::Unauthorized(r) => r,
                Classified::Fatal(f) => f.reason().to_owned(),
                Classified::Transient { reason, .. } => reason,
                other => panic!("{other:?}"),
            };
            assert!(reason.contains("Bad Request: snils ***"), "{reason}");
            assert!(!reason.contains("203"), "{reason}");
        }
        // A body that echoes the SNILS but is not an envelope is never quoted.
        let (_, c) = classify(502, "upstream failed for snils=20311784514");
        let Classified::Transient { reason, .. } = c else { panic!() };
        assert_eq!(reason, "FRMR server error (502)");
    }

    #[test]
    fn unreadable_bodies_are_not_quoted() {
        let (_, c) = classify(200, r#"{"content":{"snils":"20311784514","birthDate":"Иванов"}}"#);
        let Classified::Transient { reason, .. } = c else { panic!() };
        assert!(reason.starts_with("FRMR answer unreadable (data error"), "{reason}");
        assert!(!reason.contains("Иванов"), "{reason}");
    }

    #[test]
    fn long_details_are_cut_after_scrubbing() {
        let msg = format!("{}20311784514", "x".repeat(MAX_DETAIL_CHARS - 5));
        let body = serde_json::json!({ "code": 400, "message": msg }).to_string();
        let (_, c) = classify(400, &body);
        let Classified::Fatal(f) = c else { panic!() };
        assert!(!f.reason().contains("20311"), "{}", f.reason());
    }

    #[test]
    fn retry_after_seconds_only() {
        let mut h = HeaderMap::new();
        assert_eq!(retry_after(&h), None);
        h.insert(RETRY_AFTER, "7".parse().unwrap());
        assert_eq!(retry_after(&h), Some(Duration::from_secs(7)));
        h.insert(RETRY_AFTER, "Wed, 21 Oct 2015 07:28:00 GMT".parse().unwrap());
        assert_eq!(retry_after(&h), None);
    }
}
