//! Documents: their status and timeline (`GET /api/v1/documents/{id}`) and the list.

use axum::Json;
use axum::extract::State;
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::AppState;
use super::extract::{ApiPath, ApiQuery, Caller};
use super::params::{Filters, page_limit};
use super::problem::{ApiError, FieldError, Problem};
use crate::auth::Role;
use crate::submission::{Event, IntakeWarning, ListFilter, Status, SubmissionError, SubmissionRecord};

/// Links to related resources.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct Links {
    #[serde(rename = "self")]
    pub self_: String,
}

/// A submitted document and its fate.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DocumentStatus {
    pub id: Uuid,
    pub kind: u32,
    pub organization: String,
    /// The organisation's name in FRMO (absent when the FRMO copy does not know the OID).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organization_name: Option<String>,
    pub local_uid: String,
    pub status: Status,
    /// CRC-32 of the stored bytes (what REMD checks).
    pub checksum: u32,
    /// The REMD registration number, once registered.
    pub emdr_id: Option<String>,
    pub registered_at: Option<DateTime<Utc>>,
    /// Whose clock `registered_at` is: `remd` (its `registrationDateTime`) or `gateway`
    /// (REMD gave none the gateway could read); `null` until registered.
    pub registered_at_source: Option<TimeSource>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
    /// registerDocument calls made so far.
    pub attempts: u32,
    /// When the relay takes it next (`queued`, `retry_wait`, `unknown`).
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub errors: Vec<SubmissionError>,
    /// What intake accepted the document with: a check under the `warn` policy, or FRMR or
    /// the signature verifier unreachable (empty: nothing).
    pub warnings: Vec<IntakeWarning>,
    /// The timeline, oldest first (only on `GET /api/v1/documents/{id}`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub events: Option<Vec<Event>>,
    pub links: Links,
}

/// Whose clock a time is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum TimeSource {
    Remd,
    Gateway,
}

impl DocumentStatus {
    pub fn of(r: &SubmissionRecord, events: Option<Vec<Event>>, names: &crate::nsi::frmo::Names) -> Self {
        Self {
            id: r.id,
            kind: r.kind,
            organization: r.organization.to_string(),
            organization_name: names.of(r.organization.as_str()).map(str::to_owned),
            local_uid: r.local_uid.clone(),
            status: r.status,
            checksum: r.checksum,
            emdr_id: r.emdr_id.clone(),
            registered_at: r.registered_at,
            registered_at_source: r
                .registered_at
                .map(|_| if r.registered_at_by_gateway { TimeSource::Gateway } else { TimeSource::Remd }),
            created_at: r.created_at,
            updated_at: r.updated_at,
            attempts: r.attempts,
            next_attempt_at: r.next_attempt_at,
            errors: r.errors.clone(),
            warnings: r.warnings.clone(),
            events,
            links: Links { self_: format!("/api/v1/documents/{}", r.id) },
        }
    }
}

fn may_read(caller: &Caller) -> Result<(), ApiError> {
    if [Role::Submitter, Role::Reader, Role::Ops].iter().any(|r| caller.0.roles.contains(r)) {
        Ok(())
    } else {
        Err(ApiError::forbidden("для чтения документов нужна роль submitter, reader или ops"))
    }
}

/// A submission's status, errors and timeline.
#[utoipa::path(
    get,
    path = "/api/v1/documents/{id}",
    tag = "documents",
    params(("id" = Uuid, Path, description = "The id `POST /api/v1/documents` answered")),
    responses(
        (status = 200, description = "The document", body = DocumentStatus),
        (status = 401, description = "No or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "No role to read documents", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such document for this key's organisations", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn get_document(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(raw): ApiPath<String>,
) -> Result<Json<DocumentStatus>, ApiError> {
    may_read(&caller)?;
    let not_found = || ApiError::not_found("документ не найден");
    let id = Uuid::parse_str(raw.trim()).map_err(|_| not_found())?;
    let record = state.store.submission(id).await.map_err(store_error)?.ok_or_else(not_found)?;
    // A foreign organisation's document does not exist for this caller.
    if !caller.0.scope.allows(&record.organization) {
        return Err(not_found());
    }
    let events = state.store.events(id).await.map_err(store_error)?;
    Ok(Json(DocumentStatus::of(&record, Some(events), &state.frmo.names())))
}

pub(super) fn store_error(e: crate::store::StoreError) -> ApiError {
    tracing::error!(error = %e, "store failure");
    ApiError::new(
        axum::http::StatusCode::SERVICE_UNAVAILABLE,
        "store_unavailable",
        "Хранилище шлюза недоступно",
        "шлюз сейчас не может прочитать свою базу данных; повторите позже",
    )
    .with_retry_after(5)
}

/// Query of the document list.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ListQuery {
    /// MO OID; default: every organisation of the key.
    pub organization: Option<String>,
    pub status: Option<String>,
    pub kind: Option<u32>,
    /// Created at or after (RFC 3339).
    pub from: Option<String>,
    /// Created before (RFC 3339).
    pub to: Option<String>,
    /// Documents with this REMD error code.
    pub error_code: Option<String>,
    /// Documents with an error of this disposition (`retry`, `reconcile`, `needs_data_fix`, `needs_admin`).
    pub disposition: Option<String>,
    /// 1–500, default 50.
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct DocumentList {
    /// Newest first.
    pub items: Vec<DocumentStatus>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

fn encode_cursor(r: &SubmissionRecord) -> String {
    format!("{}_{}", r.created_at.timestamp_millis(), r.id.simple())
}

fn decode_cursor(s: &str) -> Option<(DateTime<Utc>, Uuid)> {
    let (ms, id) = s.split_once('_')?;
    Some((DateTime::from_timestamp_millis(ms.parse().ok()?)?, Uuid::parse_str(id).ok()?))
}

/// Documents of the key's organisations, newest first, keyset-paginated.
#[utoipa::path(
    get,
    path = "/api/v1/documents",
    tag = "documents",
    params(ListQuery),
    responses(
        (status = 200, description = "A page of documents", body = DocumentList),
        (status = 403, description = "No role to read documents, or an organisation outside the key's scope", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn list_documents(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ListQuery>,
) -> Result<Json<DocumentList>, ApiError> {
    may_read(&caller)?;
    let mut errors = Vec::new();
    let common = Filters {
        organization: q.organization,
        status: q.status,
        kind: q.kind,
        from: q.from,
        to: q.to,
        error_code: q.error_code,
        disposition: q.disposition,
    };
    let filter = common.parse(&caller, state.region.utc_offset, &mut errors)?;
    let limit = page_limit(q.limit, 50, &mut errors);
    let before = match q.cursor.as_deref() {
        None => None,
        Some(c) => {
            let decoded = decode_cursor(c);
            if decoded.is_none() {
                errors.push(FieldError::new(
                    "cursor",
                    "cursor",
                    "курсор не распознан; возьмите next_cursor предыдущей страницы",
                ));
            }
            decoded
        }
    };
    if !errors.is_empty() {
        return Err(ApiError::validation("validation_failed", errors));
    }
    let filter = ListFilter { before, limit: limit + 1, ..filter };
    let mut rows = state.store.list_submissions(&filter).await.map_err(store_error)?;
    let next_cursor = if rows.len() > limit as usize {
        rows.truncate(limit as usize);
        rows.last().map(encode_cursor)
    } else {
        None
    };
    let names = state.frmo.names();
    Ok(Json(DocumentList { items: rows.iter().map(|r| DocumentStatus::of(r, None, &names)).collect(), next_cursor }))
}
