//! The FRMR service listener: `GET /person/full` and FRMR's envelopes.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::Json;
use axum::Router;
use axum::extract::{Query, State};
use axum::http::header::{ALLOW, AUTHORIZATION, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, Method, StatusCode, Uri};
use axum::response::{IntoResponse, Response};
use axum::routing::any;
use chrono::{SecondsFormat, Utc};
use serde_json::{Value, json};
use tracing::debug;

use super::faults::Counters;
use super::roster::{is_oid, is_snils_format};
use super::{Injected, Shared};

/// The service router: `person/full`, and a 404 envelope for everything else.
pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new().route("/person/full", any(person_full)).fallback(unknown_path).with_state(shared)
}

/// FRMR's error envelope: `{"timestamp", "code", "reasonPhrase", "message"}`.
///
/// `message` must not contain personal data; callers pass fixed texts.
pub(super) fn error_envelope(status: StatusCode, message: &str) -> Response {
    let body = json!({
        "timestamp": Utc::now().to_rfc3339_opts(SecondsFormat::Millis, true),
        "code": status.as_u16(),
        "reasonPhrase": status.canonical_reason().unwrap_or_default(),
        "message": message,
    });
    (status, Json(body)).into_response()
}

/// FRMR's success envelope around `content` (a person, or `null` for "not found").
fn success_envelope(content: Value) -> Response {
    Json(json!({
        "requestId": uuid::Uuid::new_v4().to_string(),
        "content": content,
    }))
    .into_response()
}

async fn person_full(State(shared): State<Arc<Shared>>, method: Method, uri: Uri, headers: HeaderMap) -> Response {
    let counters = &shared.counters;
    Counters::bump(&counters.person_calls);
    delay(&shared).await;

    match shared.take_fault() {
        None => {}
        Some(Injected::Status(status, retry_after)) => {
            Counters::bump(&counters.faulted);
            debug!(status = status.as_u16(), "FRMR sandbox: injected an error answer");
            let mut response = error_envelope(status, injected_message(status));
            if let Some(secs) = retry_after {
                response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(secs));
            }
            return response;
        }
        Some(Injected::Hang) => {
            Counters::bump(&counters.faulted);
            debug!("FRMR sandbox: hanging a request");
            let _stalled = shared.stalled.enter();
            return std::future::pending().await;
        }
        Some(Injected::Down) => {
            // Raced with the listener going down: its connection is being dropped.
            let _stalled = shared.stalled.enter();
            return std::future::pending().await;
        }
    }

    if method != Method::GET {
        Counters::bump(&counters.bad_requests);
        let mut response = error_envelope(StatusCode::METHOD_NOT_ALLOWED, "Метод не поддерживается: используйте GET");
        response.headers_mut().insert(ALLOW, HeaderValue::from_static("GET"));
        return response;
    }

    match bearer_token(&headers) {
        Some(token) if shared.token_is_valid(token) => {}
        presented => {
            Counters::bump(&counters.unauthorized);
            let message = if presented.is_some() {
                "Токен доступа недействителен или срок его действия истёк"
            } else {
                "Требуется токен доступа (Authorization: Bearer)"
            };
            let mut response = error_envelope(StatusCode::UNAUTHORIZED, message);
            response.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static("Bearer"));
            return response;
        }
    }

    let snils = match lookup_parameters(&uri) {
        Ok(snils) => snils,
        Err(message) => {
            Counters::bump(&counters.bad_requests);
            return error_envelope(StatusCode::BAD_REQUEST, message);
        }
    };

    match shared.roster.person(&snils) {
        Some(person) => {
            Counters::bump(&counters.answered_ok);
            success_envelope(person.clone())
        }
        None => {
            Counters::bump(&counters.not_found);
            if shared.faults().not_found_as_null {
                success_envelope(Value::Null)
            } else {
                error_envelope(StatusCode::NOT_FOUND, "Медицинский работник не найден")
            }
        }
    }
}

/// Checks `snils`, `mo` and `mr`; returns the SNILS. Messages never echo a value.
fn lookup_parameters(uri: &Uri) -> Result<String, &'static str> {
    let Ok(Query(mut params)) = Query::<HashMap<String, String>>::try_from_uri(uri) else {
        return Err("Некорректная строка запроса");
    };
    let snils = params
        .remove("snils")
        .filter(|s| is_snils_format(s))
        .ok_or("Параметр snils обязателен: 11 цифр без разделителей")?;
    if !params.get("mo").is_some_and(|mo| is_oid(mo)) {
        return Err("Параметр mo обязателен: OID медицинской организации");
    }
    if params.get("mr").is_some_and(|mr| mr != "true" && mr != "false") {
        return Err("Параметр mr должен быть true или false");
    }
    Ok(snils)
}

/// The token of an `Authorization: Bearer <token>` header, if there is one.
fn bearer_token(headers: &HeaderMap) -> Option<&str> {
    let value = headers.get(AUTHORIZATION)?.to_str().ok()?;
    let (scheme, token) = value.trim().split_once(' ')?;
    let token = token.trim();
    (scheme.eq_ignore_ascii_case("bearer") && !token.is_empty()).then_some(token)
}

fn injected_message(status: StatusCode) -> &'static str {
    match status {
        StatusCode::TOO_MANY_REQUESTS => "Превышено допустимое количество запросов",
        StatusCode::SERVICE_UNAVAILABLE => "Сервис временно недоступен",
        _ => "Внутренняя ошибка сервиса",
    }
}

/// Waits the configured latency, as a stalled request (shutdown does not wait for it).
async fn delay(shared: &Shared) {
    let latency = shared.faults().latency_ms;
    if latency > 0 {
        let _stalled = shared.stalled.enter();
        tokio::time::sleep(Duration::from_millis(latency)).await;
    }
}

async fn unknown_path(State(shared): State<Arc<Shared>>) -> Response {
    delay(&shared).await;
    error_envelope(StatusCode::NOT_FOUND, "Ресурс не найден")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn params(query: &str) -> Result<String, &'static str> {
        lookup_parameters(&format!("/person/full?{query}").parse().unwrap())
    }

    #[test]
    fn parameters() {
        let mo = "mo=1.2.643.5.1.13.13.12.2.42.2917";
        assert_eq!(params(&format!("{mo}&mr=true&snils=20311784514")).unwrap(), "20311784514");
        assert!(params(&format!("{mo}&snils=20311784514")).is_ok());
        for bad in [
            format!("{mo}&mr=true"),
            format!("{mo}&mr=true&snils=2031178451"),
            format!("{mo}&mr=true&snils=203-117-845%2014"),
            "mr=true&snils=20311784514".to_owned(),
            "mo=abc&snils=20311784514".to_owned(),
            format!("{mo}&mr=yes&snils=20311784514"),
        ] {
            let message = params(&bad).unwrap_err();
            assert!(!message.contains("203"), "{message}");
        }
    }

    #[test]
    fn bearer() {
        let mut headers = HeaderMap::new();
        assert_eq!(bearer_token(&headers), None);
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer abc"));
        assert_eq!(bearer_token(&headers), Some("abc"));
        headers.insert(AUTHORIZATION, HeaderValue::from_static("bearer  abc "));
        assert_eq!(bearer_token(&headers), Some("abc"));
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Basic abc"));
        assert_eq!(bearer_token(&headers), None);
        headers.insert(AUTHORIZATION, HeaderValue::from_static("Bearer"));
        assert_eq!(bearer_token(&headers), None);
    }
}
