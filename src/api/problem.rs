//! `application/problem+json` (RFC 9457) answers with a stable machine `code`.

use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use serde::Serialize;

/// One failed rule of a request.
#[derive(Debug, Clone, Serialize, PartialEq, Eq, utoipa::ToSchema)]
pub struct FieldError {
    /// Stable id of the rule (`snils_checksum`, `organization_oid`, …).
    pub rule: String,
    /// Where: a query parameter name, a path segment name, or a JSON pointer into the body.
    pub path: String,
    pub message: String,
    /// The REMD message code this rule prevents (what REMD would have answered), for the
    /// document checks of `POST /api/v1/documents`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub remd_code: Option<String>,
    /// The ministry's code of the rule, where its package gives one (the head of a
    /// schematron message: `У1-19`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

impl FieldError {
    pub fn new(rule: &str, path: impl Into<String>, message: impl Into<String>) -> Self {
        Self { rule: rule.to_owned(), path: path.into(), message: message.into(), remd_code: None, code: None }
    }
}

impl From<egisz_semd::Violation> for FieldError {
    fn from(v: egisz_semd::Violation) -> Self {
        Self {
            rule: v.rule.to_owned(),
            path: v.path,
            message: v.message,
            remd_code: Some(v.remd_code.to_owned()),
            code: v.code,
        }
    }
}

pub use crate::validation::report::RulePackage;

/// The failed rules of one request as they are found: each (rule, path, message) once, in
/// the order found, the first [`FieldErrors::MAX_REPORTED`] kept and the rest only counted. Linear in
/// the number found, however many a hostile document produces.
#[derive(Debug, Default)]
pub struct FieldErrors {
    kept: Vec<FieldError>,
    seen: std::collections::HashSet<(String, String, String)>,
    rules: std::collections::HashSet<String>,
    omitted: usize,
}

impl FieldErrors {
    /// Most errors listed in one answer.
    pub const MAX_REPORTED: usize = 200;

    /// Adds `e` unless the same rule was already reported at the same path with the same
    /// message (a schematron's rule `SCH` has many messages at one path).
    pub fn push(&mut self, e: FieldError) {
        if !self.seen.insert((e.rule.clone(), e.path.clone(), e.message.clone())) {
            return;
        }
        self.rules.insert(e.rule.clone());
        if self.kept.len() < Self::MAX_REPORTED {
            self.kept.push(e);
        } else {
            self.omitted += 1;
        }
    }

    /// Adds `e` unless its rule was already reported anywhere.
    pub fn push_new_rule(&mut self, e: FieldError) {
        if !self.rules.contains(&e.rule) {
            self.push(e);
        }
    }

    pub fn is_empty(&self) -> bool {
        self.kept.is_empty()
    }

    /// The 422 answer with every error kept and the count of those left out.
    pub fn into_error(self) -> ApiError {
        ApiError { omitted: self.omitted, ..ApiError::validation("validation_failed", self.kept) }
    }
}

impl Extend<FieldError> for FieldErrors {
    fn extend<I: IntoIterator<Item = FieldError>>(&mut self, iter: I) {
        for e in iter {
            self.push(e);
        }
    }
}

/// The body of every error answer.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Problem {
    /// `urn:egisz-gateway:problem:<code>`.
    #[serde(rename = "type")]
    pub type_: String,
    pub title: String,
    pub status: u16,
    pub detail: String,
    /// Stable machine code: `unauthorized`, `forbidden`, `invalid_snils`, `validation_failed`,
    /// `frmr_unavailable`, `not_found`, …
    pub code: String,
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub errors: Vec<FieldError>,
    /// How many more errors were found than `errors` lists (it lists at most 200).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub errors_omitted: Option<usize>,
    /// The ministry's rule package the document was checked against, if its kind has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package: Option<RulePackage>,
}

/// An error answer of the API.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub code: &'static str,
    pub title: &'static str,
    pub detail: String,
    pub errors: Vec<FieldError>,
    /// Errors found beyond those in `errors`.
    pub omitted: usize,
    /// Seconds, for `Retry-After`.
    pub retry_after: Option<u64>,
    /// Adds `WWW-Authenticate: Bearer` (401 answers).
    pub challenge: bool,
    /// The rule package a refused document was checked against (boxed: errors stay small).
    pub package: Option<Box<RulePackage>>,
}

impl ApiError {
    pub fn new(status: StatusCode, code: &'static str, title: &'static str, detail: impl Into<String>) -> Self {
        Self {
            status,
            code,
            title,
            detail: detail.into(),
            errors: Vec::new(),
            omitted: 0,
            retry_after: None,
            challenge: false,
            package: None,
        }
    }

    /// The same answer, naming the rule package the document was checked against.
    pub fn with_package(mut self, package: Option<RulePackage>) -> Self {
        self.package = package.map(Box::new);
        self
    }

    pub fn unauthorized(detail: impl Into<String>) -> Self {
        Self {
            challenge: true,
            ..Self::new(StatusCode::UNAUTHORIZED, "unauthorized", "Требуется действующий API-ключ", detail)
        }
    }

    pub fn forbidden(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::FORBIDDEN, "forbidden", "Недостаточно прав", detail)
    }

    pub fn not_found(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::NOT_FOUND, "not_found", "Не найдено", detail)
    }

    /// 422 with every failed rule. `code` is `validation_failed` unless a more specific one
    /// is given.
    pub fn validation(code: &'static str, errors: Vec<FieldError>) -> Self {
        let detail = errors.iter().map(|e| e.message.as_str()).collect::<Vec<_>>().join("; ");
        Self {
            errors, ..Self::new(StatusCode::UNPROCESSABLE_ENTITY, code, "Запрос не прошёл проверку", detail)
        }
    }

    pub fn internal(detail: impl Into<String>) -> Self {
        Self::new(StatusCode::INTERNAL_SERVER_ERROR, "internal_error", "Внутренняя ошибка шлюза", detail)
    }

    pub fn with_retry_after(mut self, secs: u64) -> Self {
        self.retry_after = Some(secs.max(1));
        self
    }

    pub fn problem(&self) -> Problem {
        Problem {
            type_: format!("urn:egisz-gateway:problem:{}", self.code),
            title: self.title.to_owned(),
            status: self.status.as_u16(),
            detail: self.detail.clone(),
            code: self.code.to_owned(),
            errors: self.errors.clone(),
            errors_omitted: (self.omitted > 0).then_some(self.omitted),
            package: self.package.as_deref().cloned(),
        }
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = serde_json::to_vec(&self.problem()).unwrap_or_default();
        let mut response = (self.status, body).into_response();
        let headers = response.headers_mut();
        headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/problem+json"));
        if let Some(secs) = self.retry_after {
            headers.insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        if self.challenge {
            headers.insert(header::WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
        }
        response
    }
}

/// Whether reading a request's body failed because it did not arrive in time
/// (`body_read_timeout_ms`).
pub fn is_body_timeout(error: &(dyn std::error::Error + 'static)) -> bool {
    let mut cause = Some(error);
    while let Some(e) = cause {
        if e.is::<tower_http::timeout::TimeoutError>() {
            return true;
        }
        cause = e.source();
    }
    false
}

impl ApiError {
    /// 408: the body did not arrive within `api.body_read_timeout_ms`.
    pub fn body_timeout() -> Self {
        Self::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_body_timeout",
            "Тело запроса не получено вовремя",
            "тело запроса не пришло за api.body_read_timeout_ms",
        )
    }
}

impl From<axum::extract::rejection::JsonRejection> for ApiError {
    fn from(r: axum::extract::rejection::JsonRejection) -> Self {
        use axum::extract::rejection::JsonRejection as J;
        let status = r.status();
        if is_body_timeout(&r) {
            return Self::body_timeout();
        }
        match r {
            J::MissingJsonContentType(_) => Self::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "unsupported_media_type",
                "Ожидается JSON",
                "заголовок Content-Type должен быть application/json",
            ),
            _ if status == StatusCode::PAYLOAD_TOO_LARGE => Self::new(
                status,
                "payload_too_large",
                "Слишком большой запрос",
                "тело запроса больше api.body_limit_bytes",
            ),
            J::JsonSyntaxError(e) => Self::new(
                StatusCode::BAD_REQUEST,
                "malformed_json",
                "Тело запроса — не JSON",
                format!("тело запроса не разобрано как JSON: {}", e.body_text()),
            ),
            J::JsonDataError(e) => Self::validation(
                "validation_failed",
                vec![FieldError::new(
                    "json_schema",
                    "/",
                    format!("поля запроса не соответствуют схеме: {}", e.body_text()),
                )],
            ),
            other => Self::new(
                StatusCode::BAD_REQUEST,
                "bad_request",
                "Некорректный запрос",
                format!("запрос не разобран: {}", other.body_text()),
            ),
        }
    }
}

impl From<axum::extract::rejection::PathRejection> for ApiError {
    fn from(r: axum::extract::rejection::PathRejection) -> Self {
        Self::validation(
            "invalid_snils",
            vec![FieldError::new(
                "snils_format",
                "snils",
                format!("СНИЛС в пути запроса не читается: {}", r.body_text()),
            )],
        )
    }
}

impl From<axum::extract::rejection::QueryRejection> for ApiError {
    fn from(r: axum::extract::rejection::QueryRejection) -> Self {
        Self::validation(
            "validation_failed",
            vec![FieldError::new("query", "?", format!("параметры запроса не разобраны: {}", r.body_text()))],
        )
    }
}
