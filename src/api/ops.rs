//! Operations (role `ops`): retry and cancel, bulk re-runs, the audit log, the summary and
//! the REMD report. Everything here acts only within the key's organisations.

use axum::Json;
use axum::body::Bytes;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use chrono::{DateTime, Utc};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::AppState;
use super::documents::{DocumentStatus, store_error};
use super::extract::{ApiPath, ApiQuery, Caller};
use super::params::{Filters, page_limit, region_time};
use super::problem::{ApiError, FieldError, Problem};
use crate::audit::{Action, AuditEntry, AuditFilter};
use crate::auth::Role;
use crate::ops::report::{self, Report};
use crate::ops::{BulkOutcome, OpsError, Summary};

/// An operator's comment.
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CommentBody {
    pub comment: Option<String>,
}

fn comment_of(body: &Bytes) -> Result<Option<String>, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(None);
    }
    let parsed: CommentBody = serde_json::from_slice(body).map_err(|e| {
        ApiError::validation(
            "validation_failed",
            vec![FieldError::new("json", "", format!("тело запроса — JSON {{\"comment\": \"...\"}}: {e}"))],
        )
    })?;
    check_comment(parsed.comment)
}

/// [`crate::ops::comment`], refused as a problem.
fn check_comment(comment: Option<String>) -> Result<Option<String>, ApiError> {
    crate::ops::comment(comment.as_deref()).map_err(|e| {
        ApiError::validation("validation_failed", vec![FieldError::new("comment", "comment", e.to_string())])
    })
}

/// The answer to an operator's action that did not happen.
pub fn ops_error(e: OpsError) -> ApiError {
    match e {
        OpsError::NotFound => ApiError::not_found("документ не найден"),
        OpsError::Refused(why) => ApiError::new(StatusCode::CONFLICT, "action_not_allowed", "Действие недоступно", why),
        OpsError::Raced => ApiError::new(
            StatusCode::CONFLICT,
            "changed_meanwhile",
            "Документ изменился",
            "состояние документа изменилось во время действия; обновите данные и повторите",
        ),
        OpsError::Store(e) => store_error(e),
    }
}

async fn act(
    state: AppState,
    caller: Caller,
    raw: String,
    body: Bytes,
    action: Action,
) -> Result<Json<DocumentStatus>, ApiError> {
    caller.require(Role::Ops)?;
    let comment = comment_of(&body)?;
    let id = Uuid::parse_str(raw.trim()).map_err(|_| ApiError::not_found("документ не найден"))?;
    let record = state.ops.act(&caller.0, id, action, comment.as_deref()).await.map_err(ops_error)?;
    let events = state.store.events(id).await.map_err(store_error)?;
    Ok(Json(DocumentStatus::of(&record, Some(events), &state.frmo.names())))
}

/// Back to the queue now (from `failed`, `retry_wait`; from `unknown`: looked up first).
#[utoipa::path(
    post,
    path = "/api/v1/documents/{id}/retry",
    tag = "operations",
    params(("id" = Uuid, Path, description = "The submission")),
    request_body(content = CommentBody, description = "Optional comment; the body may be empty"),
    responses(
        (status = 200, description = "Re-queued; the document with its timeline", body = DocumentStatus),
        (status = 403, description = "The key lacks the role ops", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such document for this key's organisations", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`action_not_allowed` in its state, or `changed_meanwhile`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn retry(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(raw): ApiPath<String>,
    body: Bytes,
) -> Result<Json<DocumentStatus>, ApiError> {
    act(state, caller, raw, body, Action::Retry).await
}

/// Never sent again.
#[utoipa::path(
    post,
    path = "/api/v1/documents/{id}/cancel",
    tag = "operations",
    params(("id" = Uuid, Path, description = "The submission")),
    request_body(content = CommentBody, description = "Optional comment; the body may be empty"),
    responses(
        (status = 200, description = "Cancelled; the document with its timeline", body = DocumentStatus),
        (status = 403, description = "The key lacks the role ops", body = Problem, content_type = "application/problem+json"),
        (status = 404, description = "No such document for this key's organisations", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`action_not_allowed` in its state, or `changed_meanwhile`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn cancel(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(raw): ApiPath<String>,
    body: Bytes,
) -> Result<Json<DocumentStatus>, ApiError> {
    act(state, caller, raw, body, Action::Cancel).await
}

/// A bulk re-run: the list's filters, a comment, and `dry_run`. An unknown field is refused
/// (a misspelt filter must not widen the re-run to everything).
#[derive(Debug, Default, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct BulkRetry {
    /// MO OID; default: every organisation of the key.
    pub organization: Option<String>,
    /// `failed`, `retry_wait` or `unknown`; default: all three.
    pub status: Option<String>,
    pub kind: Option<u32>,
    /// Created at or after (RFC 3339 or a date).
    pub from: Option<String>,
    /// Created before (RFC 3339 or a date).
    pub to: Option<String>,
    pub error_code: Option<String>,
    pub disposition: Option<String>,
    pub comment: Option<String>,
    /// Only count what would be re-queued.
    #[serde(default)]
    pub dry_run: bool,
}

/// Re-queues, oldest first, up to `ops.bulk_retry_max` submissions the filters match in a
/// state a re-run applies to (`failed`, `retry_wait`, `unknown`); the relay sends them within
/// the REMD rate limit.
#[utoipa::path(
    post,
    path = "/api/v1/ops/retry",
    tag = "operations",
    request_body = BulkRetry,
    responses(
        (status = 200, description = "What matched and what was re-queued", body = BulkOutcome),
        (status = 403, description = "The key lacks the role ops, or an organisation outside its scope", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn bulk_retry(
    State(state): State<AppState>,
    caller: Caller,
    body: Bytes,
) -> Result<Json<BulkOutcome>, ApiError> {
    caller.require(Role::Ops)?;
    let req: BulkRetry = serde_json::from_slice(&body).map_err(|e| {
        ApiError::validation(
            "validation_failed",
            vec![FieldError::new("json", "", format!("тело запроса не разобрано: {e}"))],
        )
    })?;
    let comment = check_comment(req.comment)?;
    let filters = Filters {
        organization: req.organization,
        status: req.status,
        kind: req.kind,
        from: req.from,
        to: req.to,
        error_code: req.error_code,
        disposition: req.disposition,
    };
    let mut errors = Vec::new();
    let filter = filters.parse(&caller, state.region.utc_offset, &mut errors)?;
    if let Some(s) = filter.statuses.first()
        && !crate::lifecycle::RETRYABLE.contains(s)
    {
        errors.push(FieldError::new(
            "status",
            "status",
            format!("перезапускаются только статусы failed, retry_wait, unknown; получено {s}"),
        ));
    }
    if !errors.is_empty() {
        return Err(ApiError::validation("validation_failed", errors));
    }
    let shown = serde_json::to_value(&filters).unwrap_or_default();
    let outcome =
        state.ops.bulk_retry(&caller.0, &filter, req.dry_run, comment.as_deref(), shown).await.map_err(ops_error)?;
    Ok(Json(outcome.outcome))
}

/// Query of the audit log.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct AuditQuery {
    /// At or after (RFC 3339 or a date).
    pub from: Option<String>,
    /// Before (RFC 3339 or a date).
    pub to: Option<String>,
    /// The client's name or id.
    pub actor: Option<String>,
    /// 1–500, default 100.
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page.
    pub cursor: Option<String>,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditPage {
    /// Newest first.
    pub items: Vec<AuditItem>,
    pub next_cursor: Option<String>,
}

/// An audit entry, with its organisation's name.
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct AuditItem {
    #[serde(flatten)]
    pub entry: AuditEntry,
    /// The organisation's name in FRMO (absent when there is no organisation or the FRMO copy
    /// does not know the OID).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub organization_name: Option<String>,
}

/// The audit log: who, when, what, comment, how many.
#[utoipa::path(
    get,
    path = "/api/v1/ops/audit",
    tag = "operations",
    params(AuditQuery),
    responses(
        (status = 200, description = "A page of the audit log", body = AuditPage),
        (status = 403, description = "The key lacks the role ops", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn audit(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<AuditQuery>,
) -> Result<Json<AuditPage>, ApiError> {
    caller.require(Role::Ops)?;
    let mut errors = Vec::new();
    let offset = state.region.utc_offset;
    let from = region_time(q.from.as_deref(), "from", offset, &mut errors);
    let to = region_time(q.to.as_deref(), "to", offset, &mut errors);
    let limit = page_limit(q.limit, 100, &mut errors);
    let before = match q.cursor.as_deref().map(str::parse::<i64>) {
        None => None,
        Some(Ok(id)) => Some(id),
        Some(Err(_)) => {
            errors.push(FieldError::new(
                "cursor",
                "cursor",
                "курсор не распознан; возьмите next_cursor предыдущей страницы",
            ));
            None
        }
    };
    if !errors.is_empty() {
        return Err(ApiError::validation("validation_failed", errors));
    }
    let actor = q.actor.map(|a| a.trim().to_owned()).filter(|a| !a.is_empty());
    let mut items =
        state.store.audit_log(&filter_of(&caller, from, to, actor, before, limit)).await.map_err(store_error)?;
    let next_cursor = if items.len() > limit as usize {
        items.truncate(limit as usize);
        items.last().map(|e| e.id.to_string())
    } else {
        None
    };
    let names = state.frmo.names();
    let items = items
        .into_iter()
        .map(|entry| AuditItem {
            organization_name: entry.organization.as_deref().and_then(|o| names.of(o)).map(str::to_owned),
            entry,
        })
        .collect();
    Ok(Json(AuditPage { items, next_cursor }))
}

fn filter_of(
    caller: &Caller,
    from: Option<DateTime<Utc>>,
    to: Option<DateTime<Utc>>,
    actor: Option<String>,
    before: Option<i64>,
    limit: u32,
) -> AuditFilter {
    AuditFilter { from, to, actor, before, limit: limit + 1, visible_to: crate::ops::visible_to(&caller.0) }
}

/// Counts per status, the oldest waiting submission, what is past its deadline, REMD and
/// FRMR health.
#[utoipa::path(
    get,
    path = "/api/v1/ops/summary",
    tag = "operations",
    responses(
        (status = 200, description = "The summary", body = Summary),
        (status = 403, description = "The key lacks the role ops or reader", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn summary(State(state): State<AppState>, caller: Caller) -> Result<Json<Summary>, ApiError> {
    may_see_figures(&caller)?;
    let summary = state.ops.summary(&caller.0.scope, state.staff.frmr_health(), crate::now()).await;
    Ok(Json(summary.map_err(store_error)?))
}

fn may_see_figures(caller: &Caller) -> Result<(), ApiError> {
    if caller.0.roles.contains(&Role::Ops) || caller.0.roles.contains(&Role::Reader) {
        Ok(())
    } else {
        Err(ApiError::forbidden("для сводки и отчёта нужна роль ops или reader"))
    }
}

/// Query of the REMD report.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct ReportQuery {
    /// Submitted at or after (RFC 3339, or a date: midnight in the region's time). Default:
    /// this week's Monday.
    pub from: Option<String>,
    /// Submitted before. Default: a week after `from`.
    pub to: Option<String>,
    /// `json` (default) or `csv` (UTF-8 with BOM, `;`, for a Russian-locale spreadsheet).
    pub format: Option<String>,
}

/// Per organisation and kind: submitted, registered, failed, pending, success rate, top
/// error codes — of the documents submitted in the period.
#[utoipa::path(
    get,
    path = "/api/v1/reports/remd",
    tag = "operations",
    params(ReportQuery),
    responses(
        (status = 200, description = "The report (JSON, or CSV with `format=csv`)", body = Report),
        (status = 403, description = "The key lacks the role ops or reader", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn remd_report(
    State(state): State<AppState>,
    caller: Caller,
    ApiQuery(q): ApiQuery<ReportQuery>,
) -> Result<Response, ApiError> {
    may_see_figures(&caller)?;
    let csv = match q.format.as_deref().map(str::trim) {
        None | Some("") | Some("json") => false,
        Some("csv") => true,
        Some(other) => {
            return Err(ApiError::validation(
                "validation_failed",
                vec![FieldError::new("format", "format", format!("format — json или csv; получено {other:?}"))],
            ));
        }
    };
    let offset = state.region.utc_offset;
    let mut errors = Vec::new();
    let from = region_time(q.from.as_deref(), "from", offset, &mut errors);
    let to = region_time(q.to.as_deref(), "to", offset, &mut errors);
    if !errors.is_empty() {
        return Err(ApiError::validation("validation_failed", errors));
    }
    let today = crate::now().with_timezone(&offset).date_naive();
    let (from, to) = report::period(from, to, today, offset)
        .map_err(|e| ApiError::validation("validation_failed", vec![FieldError::new("period", "to", e.to_string())]))?;
    let r = state.ops.report(&caller.0.scope, from, to).await.map_err(store_error)?;
    Ok(if csv { report_csv(&state, &r) } else { Json(r).into_response() })
}

/// The report as a CSV download (API and console alike).
pub fn report_csv(state: &AppState, r: &Report) -> Response {
    let bytes = report::csv(r, |k| state.mappings.kind(k).map(|k| k.name.clone()));
    let name = report::csv_file_name(r, state.region.utc_offset);
    (
        [
            (header::CONTENT_TYPE, "text/csv; charset=utf-8".to_owned()),
            (header::CONTENT_DISPOSITION, format!("attachment; filename=\"{name}\"")),
        ],
        bytes,
    )
        .into_response()
}
