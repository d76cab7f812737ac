//! Extractors whose rejections are problems, and the authenticated caller.

use axum::extract::{FromRequest, FromRequestParts};
use axum::http::header;
use axum::http::request::Parts;
use egisz_contract::Oid;

use super::AppState;
use super::problem::ApiError;
use crate::auth::{AuthError, Principal, Role};

/// `axum::Json` whose rejections are problems.
#[derive(Debug, FromRequest)]
#[from_request(via(axum::Json), rejection(ApiError))]
pub struct ApiJson<T>(pub T);

/// `axum::extract::Query` whose rejections are problems.
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Query), rejection(ApiError))]
pub struct ApiQuery<T>(pub T);

/// `axum::extract::Path` whose rejections are problems (a path segment that is not UTF-8,
/// say, is a bad SNILS).
#[derive(Debug, FromRequestParts)]
#[from_request(via(axum::extract::Path), rejection(ApiError))]
pub struct ApiPath<T>(pub T);

/// The authenticated caller (401 when there is none).
#[derive(Debug, Clone)]
pub struct Caller(pub Principal);

impl FromRequestParts<AppState> for Caller {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut Parts, state: &AppState) -> Result<Self, Self::Rejection> {
        let header = parts.headers.get(header::AUTHORIZATION).and_then(|v| v.to_str().ok());
        if let Some(caller) = parts.extensions.get::<Caller>() {
            return Ok(caller.clone());
        }
        match state.auth.authenticate(header).await {
            Ok(p) => {
                // For the extractors after this one (one authentication per request).
                parts.extensions.insert(Caller(p.clone()));
                Ok(Caller(p))
            }
            Err(AuthError::Missing) => {
                Err(ApiError::unauthorized("передайте заголовок Authorization: Bearer <API-ключ>"))
            }
            Err(AuthError::Invalid) => Err(ApiError::unauthorized("API-ключ не распознан")),
            Err(AuthError::Revoked) => Err(ApiError::unauthorized("API-ключ отозван")),
            Err(AuthError::Store(e)) => {
                tracing::error!(error = %e, "authentication could not read the store");
                Err(ApiError::new(
                    axum::http::StatusCode::SERVICE_UNAVAILABLE,
                    "store_unavailable",
                    "Хранилище шлюза недоступно",
                    "шлюз сейчас не может проверить API-ключи; повторите позже",
                )
                .with_retry_after(5))
            }
        }
    }
}

impl Caller {
    /// 403 unless the caller has `role`.
    pub fn require(&self, role: Role) -> Result<(), ApiError> {
        if self.0.roles.contains(&role) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!("у этого API-ключа нет роли {role}")))
        }
    }

    /// 403 unless the caller may act for `organization`.
    pub fn require_organization(&self, organization: &Oid) -> Result<(), ApiError> {
        if self.0.scope.allows(organization) {
            Ok(())
        } else {
            Err(ApiError::forbidden(format!("этот API-ключ не может действовать от имени организации {organization}")))
        }
    }

    /// The caller's only organisation, when it has exactly one (a sensible default).
    pub fn single_organization(&self) -> Option<&Oid> {
        match &self.0.scope {
            crate::auth::Scope::Only(set) if set.len() == 1 => set.iter().next(),
            _ => None,
        }
    }
}
