//! `GET /api/v1/staff/{snils}` and `POST /api/v1/staff/verify` (role `verifier`).

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use chrono::{DateTime, NaiveDate, Utc};
use egisz_contract::frmr::PersonCard;
use egisz_contract::{Oid, Snils, SnilsError};
use futures::StreamExt;
use serde::{Deserialize, Serialize};

use super::AppState;
use super::extract::{ApiJson, ApiPath, ApiQuery, Caller};
use super::problem::{ApiError, FieldError, Problem};
use crate::auth::Role;
use crate::staff::{Asker, Lookup, LookupError, Source, Verdict, decide, verdict::card_in};

/// The person as FRMR holds them (personal data: shown to the verifier, never logged).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct PersonOut {
    pub last_name: String,
    pub first_name: String,
    pub patronymic: Option<String>,
    pub birth_date: Option<NaiveDate>,
}

/// An employment card of the person in the organisation asked about.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct CardOut {
    pub organization: Option<String>,
    pub department: Option<String>,
    pub department_name: Option<String>,
    /// NSI 1.2.643.5.1.13.13.11.1002 code.
    pub position_code: Option<String>,
    pub position: Option<String>,
    /// 1 main job, 2 internal part-time, 3 combined, 4 external part-time.
    pub position_type: Option<u8>,
    pub begin_date: Option<NaiveDate>,
    pub end_date: Option<NaiveDate>,
}

/// Where the answer came from.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum SourceOut {
    /// FRMR was asked for this request.
    Frmr,
    /// The gateway's cache (see `checked_at` and `stale`).
    Cache,
}

/// The verdict on one SNILS for one organisation.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct VerificationResult {
    /// As asked (11 digits when valid).
    pub snils: String,
    pub organization: String,
    /// The position asked about (NSI 1002 code), if any.
    pub position: Option<String>,
    /// The date the verdict is for.
    pub date: NaiveDate,
    pub verdict: Verdict,
    /// A short explanation in Russian.
    pub detail: String,
    pub person: Option<PersonOut>,
    /// The person's cards in this organisation (every period, so dismissals show).
    pub cards: Vec<CardOut>,
    /// `null` for `invalid_snils` (FRMR is not asked).
    pub source: Option<SourceOut>,
    /// When FRMR gave the data this verdict rests on.
    pub checked_at: Option<DateTime<Utc>>,
    /// FRMR could not be reached and the data is older than the freshness limit.
    pub stale: bool,
}

/// Query of `GET /api/v1/staff/{snils}`.
#[derive(Debug, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct StaffQuery {
    /// MO OID; may be left out when the API key is scoped to exactly one organisation.
    pub organization: Option<String>,
    /// Position code in NSI 1.2.643.5.1.13.13.11.1002 the person will sign with.
    pub position: Option<String>,
    /// `YYYY-MM-DD`; default: today in the region's time zone.
    pub date: Option<String>,
}

fn parse_organization(caller: &Caller, raw: Option<&str>, path: &str, errors: &mut Vec<FieldError>) -> Option<Oid> {
    match raw.map(str::trim).filter(|s| !s.is_empty()) {
        None => match caller.single_organization() {
            Some(oid) => Some(oid.clone()),
            None => {
                errors.push(FieldError::new(
                    "organization_required",
                    path,
                    "укажите OID медицинской организации (organization)",
                ));
                None
            }
        },
        Some(s) => match Oid::parse_organization(s) {
            Ok(oid) => Some(oid),
            Err(e) => {
                errors.push(FieldError::new("organization_oid", path, e.to_string()));
                None
            }
        },
    }
}

fn parse_position(raw: Option<&str>, path: &str, errors: &mut Vec<FieldError>) -> Option<String> {
    let s = raw.map(str::trim).filter(|s| !s.is_empty())?;
    if s.len() <= 6 && s.bytes().all(|b| b.is_ascii_digit()) {
        Some(s.to_owned())
    } else {
        errors.push(FieldError::new(
            "position_code",
            path,
            format!("код должности — число из справочника НСИ 1.2.643.5.1.13.13.11.1002, получено {s:?}"),
        ));
        None
    }
}

fn parse_date(raw: Option<&str>, state: &AppState, path: &str, errors: &mut Vec<FieldError>) -> NaiveDate {
    let today = Utc::now().with_timezone(&state.region.utc_offset).date_naive();
    let Some(s) = raw.map(str::trim).filter(|s| !s.is_empty()) else { return today };
    match NaiveDate::parse_from_str(s, "%Y-%m-%d") {
        Ok(d) if (1900..=2100).contains(&chrono::Datelike::year(&d)) => d,
        _ => {
            errors.push(FieldError::new("date_format", path, format!("дата в формате ГГГГ-ММ-ДД, получено {s:?}")));
            today
        }
    }
}

fn snils_error(raw: &str, e: &SnilsError, path: &str) -> FieldError {
    let rule = match e {
        SnilsError::Format => "snils_format",
        SnilsError::Checksum => "snils_checksum",
    };
    let shown: String = raw.chars().take(20).collect();
    FieldError::new(rule, path, format!("{e}: {shown:?}"))
}

fn result_of(
    snils: &Snils,
    organization: &Oid,
    position: Option<String>,
    date: NaiveDate,
    lookup: Lookup,
) -> VerificationResult {
    let person = lookup.entry.person.as_ref();
    let decision = decide(person, organization, position.as_deref(), date);
    let cards: Vec<CardOut> = person
        .map(|p| {
            p.cards
                .iter()
                .filter(|c| card_in(c, organization))
                .map(|c: &PersonCard| CardOut {
                    organization: c.organization.clone(),
                    department: c.department.clone(),
                    department_name: c.department_name.clone(),
                    position_code: c.position_code.clone(),
                    position: c.position.clone(),
                    position_type: c.position_type,
                    begin_date: c.begin_date,
                    end_date: c.end_date,
                })
                .collect()
        })
        .unwrap_or_default();
    // Who the person is, only to an organisation they have worked for: a verifier of one MO
    // must not learn names and birth dates of another MO's staff.
    let disclosed = person.filter(|_| !cards.is_empty());
    VerificationResult {
        snils: snils.as_str().to_owned(),
        organization: organization.to_string(),
        position,
        date,
        verdict: decision.verdict,
        detail: decision.detail,
        person: disclosed.map(|p| PersonOut {
            last_name: p.last_name.expose().clone(),
            first_name: p.first_name.expose().clone(),
            patronymic: p.patronymic.as_ref().map(|x| x.expose().clone()),
            birth_date: p.birth_date.as_ref().map(|d| *d.expose()),
        }),
        cards,
        source: Some(match lookup.source {
            Source::Frmr => SourceOut::Frmr,
            Source::Cache => SourceOut::Cache,
        }),
        checked_at: Some(lookup.entry.fetched_at),
        stale: lookup.stale,
    }
}

fn invalid_snils_result(
    raw: &str,
    e: &SnilsError,
    organization: &Oid,
    position: Option<String>,
    date: NaiveDate,
) -> VerificationResult {
    VerificationResult {
        snils: raw.chars().take(20).collect(),
        organization: organization.to_string(),
        position,
        date,
        verdict: Verdict::InvalidSnils,
        detail: e.to_string(),
        person: None,
        cards: Vec::new(),
        source: None,
        checked_at: None,
        stale: false,
    }
}

fn lookup_error(e: LookupError) -> ApiError {
    match e {
        LookupError::Unavailable { detail, retry_after } => ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "frmr_unavailable",
            "ФРМР недоступен, сохранённого ответа нет",
            detail,
        )
        .with_retry_after(retry_after.as_secs()),
        LookupError::Rejected => ApiError::new(
            StatusCode::BAD_GATEWAY,
            "frmr_rejected",
            "ФРМР отклонил запрос шлюза",
            "ФРМР счёл запрос шлюза некорректным; администратор шлюза извещён",
        ),
        LookupError::OverShare { retry_after } => too_many_lookups(retry_after),
    }
}

/// A client holding its whole share of FRMR's lookups (`frmr.client_share`): it waits for
/// its own, the others go on.
fn too_many_lookups(retry_after: std::time::Duration) -> ApiError {
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_lookups",
        "Слишком много одновременных обращений к ФРМР от этого клиента",
        "у этого API-ключа уже идёт предельное число запросов к ФРМР (frmr.client_share); \
         дождитесь их ответов и повторите запрос",
    )
    .with_retry_after(retry_after.as_secs().max(1))
}

/// Checks one medical worker against FRMR.
#[utoipa::path(
    get,
    path = "/api/v1/staff/{snils}",
    tag = "staff",
    params(("snils" = String, Path, description = "11 digits, or NNN-NNN-NNN CC"), StaffQuery),
    responses(
        (status = 200, description = "The verdict", body = VerificationResult),
        (status = 401, description = "No or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "No `verifier` role, or the organisation is outside the key's scope", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`invalid_snils` (FRMR not called) or `validation_failed`", body = Problem, content_type = "application/problem+json"),
        (status = 502, description = "`frmr_rejected`: FRMR refused the gateway's request", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`too_many_lookups`: this key holds its whole share of FRMR's lookups (`frmr.client_share`); see Retry-After", body = Problem, content_type = "application/problem+json"),
        (status = 503, description = "`frmr_unavailable`: FRMR down and nothing cached; see Retry-After", body = Problem, content_type = "application/problem+json"),
        (status = 504, description = "`request_timeout`: the request took longer than `api.request_timeout_ms`", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn get_staff(
    State(state): State<AppState>,
    caller: Caller,
    ApiPath(raw_snils): ApiPath<String>,
    ApiQuery(q): ApiQuery<StaffQuery>,
) -> Result<Json<VerificationResult>, ApiError> {
    caller.require(Role::Verifier)?;
    let mut errors = Vec::new();
    let organization = parse_organization(&caller, q.organization.as_deref(), "organization", &mut errors);
    if let Some(org) = &organization {
        caller.require_organization(org)?;
    }
    let snils = Snils::parse(&raw_snils).map_err(|e| errors.push(snils_error(&raw_snils, &e, "snils"))).ok();
    let position = parse_position(q.position.as_deref(), "position", &mut errors);
    let date = parse_date(q.date.as_deref(), &state, "date", &mut errors);
    let (Some(organization), Some(snils), true) = (organization, snils, errors.is_empty()) else {
        let code =
            if errors.iter().any(|e| e.rule.starts_with("snils")) { "invalid_snils" } else { "validation_failed" };
        return Err(ApiError::validation(code, errors));
    };
    let lookup =
        state.staff.lookup(Asker::Client(caller.0.client_id), &snils, &organization).await.map_err(lookup_error)?;
    Ok(Json(result_of(&snils, &organization, position, date, lookup)))
}

/// One worker in a batch.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct BatchItemIn {
    pub snils: String,
    /// NSI 1002 position code.
    pub position: Option<String>,
}

/// Body of `POST /api/v1/staff/verify`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct BatchRequest {
    /// MO OID; may be left out when the API key is scoped to exactly one organisation.
    pub organization: Option<String>,
    /// `YYYY-MM-DD`; default: today in the region's time zone.
    pub date: Option<String>,
    pub items: Vec<BatchItemIn>,
}

/// A batch item that could not be answered (FRMR unavailable, or not in time).
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BatchItemError {
    pub snils: String,
    pub organization: String,
    pub error: ItemProblem,
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct ItemProblem {
    /// `frmr_unavailable`, `frmr_timeout` (still being looked up: ask again shortly) or `frmr_rejected`.
    pub code: String,
    pub detail: String,
    /// Seconds after which asking again makes sense.
    pub retry_after: Option<u64>,
}

fn item_error(snils: &Snils, organization: &Oid, e: LookupError) -> BatchItemOut {
    let (code, detail, retry_after) = match e {
        LookupError::Unavailable { detail, retry_after } => {
            ("frmr_unavailable", detail, Some(retry_after.as_secs().max(1)))
        }
        LookupError::Rejected => ("frmr_rejected", "ФРМР счёл запрос шлюза некорректным".to_owned(), None),
        LookupError::OverShare { retry_after } => (
            "too_many_lookups",
            "у этого API-ключа уже идёт предельное число запросов к ФРМР; повторите позже".to_owned(),
            Some(retry_after.as_secs().max(1)),
        ),
    };
    BatchItemOut::Error(BatchItemError {
        snils: snils.as_str().to_owned(),
        organization: organization.to_string(),
        error: ItemProblem { code: code.to_owned(), detail, retry_after },
    })
}

/// A verdict, or why there is none.
#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
#[serde(untagged)]
pub enum BatchItemOut {
    Result(Box<VerificationResult>),
    Error(BatchItemError),
}

#[derive(Debug, Clone, Serialize, utoipa::ToSchema)]
pub struct BatchResponse {
    /// One per item asked, in the same order.
    pub items: Vec<BatchItemOut>,
}

/// A caller within its share of FRMR's lookups ([`crate::staff::shares`]): checked before
/// the body of a batch is read, so that a client told `429` costs no parse of its batch.
pub struct WithinFrmrShare;

impl axum::extract::FromRequestParts<AppState> for WithinFrmrShare {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut axum::http::request::Parts, state: &AppState) -> Result<Self, ApiError> {
        let caller = Caller::from_request_parts(parts, state).await?;
        match state.staff.over_share(Asker::Client(caller.0.client_id)) {
            Some(retry_after) => Err(too_many_lookups(retry_after)),
            None => Ok(WithinFrmrShare),
        }
    }
}

/// Checks up to `api.max_batch_items` workers of one organisation at once.
#[utoipa::path(
    post,
    path = "/api/v1/staff/verify",
    tag = "staff",
    request_body = BatchRequest,
    responses(
        (status = 200, description = "One result per item, same order. A malformed SNILS gives the item verdict `invalid_snils`; an item FRMR could not answer carries `error`", body = BatchResponse),
        (status = 401, description = "No or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "No `verifier` role, or the organisation is outside the key's scope", body = Problem, content_type = "application/problem+json"),
        (status = 400, description = "`malformed_json`", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`payload_too_large`", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: send application/json", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`batch_too_large`, `validation_failed`", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`too_many_lookups`: this key holds its whole share of FRMR's lookups (`frmr.client_share`); see Retry-After", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn verify_batch(
    State(state): State<AppState>,
    caller: Caller,
    _share: WithinFrmrShare,
    ApiJson(body): ApiJson<BatchRequest>,
) -> Result<Json<BatchResponse>, ApiError> {
    caller.require(Role::Verifier)?;
    let max = state.settings.max_batch_items;
    if body.items.len() > max {
        return Err(ApiError::validation(
            "batch_too_large",
            vec![FieldError::new(
                "batch_size",
                "/items",
                format!("не более {max} работников за запрос, получено {}; разделите пакет", body.items.len()),
            )],
        ));
    }
    let mut errors = Vec::new();
    if body.items.is_empty() {
        errors.push(FieldError::new("batch_size", "/items", "пустой список работников"));
    }
    let organization = parse_organization(&caller, body.organization.as_deref(), "/organization", &mut errors);
    if let Some(org) = &organization {
        caller.require_organization(org)?;
    }
    let date = parse_date(body.date.as_deref(), &state, "/date", &mut errors);
    let positions: Vec<Option<String>> = body
        .items
        .iter()
        .enumerate()
        .map(|(i, item)| parse_position(item.position.as_deref(), &format!("/items/{i}/position"), &mut errors))
        .collect();
    let Some(organization) = organization.filter(|_| errors.is_empty()) else {
        return Err(ApiError::validation("validation_failed", errors));
    };

    let deadline = tokio::time::Instant::now() + state.settings.batch_deadline;
    let count = body.items.len();
    let mut slots: Vec<Option<BatchItemOut>> = vec![None; count];
    // 1. Everything the cache answers, whatever FRMR is doing.
    let mut misses: Vec<(usize, Snils, Option<String>)> = Vec::new();
    for (i, (item, position)) in body.items.into_iter().zip(positions).enumerate() {
        match Snils::parse(&item.snils) {
            Err(e) => {
                slots[i] = Some(BatchItemOut::Result(Box::new(invalid_snils_result(
                    &item.snils,
                    &e,
                    &organization,
                    position,
                    date,
                ))))
            }
            Ok(snils) => match state.staff.cached(&snils, &organization).await {
                Some(hit) => {
                    slots[i] =
                        Some(BatchItemOut::Result(Box::new(result_of(&snils, &organization, position, date, hit))))
                }
                None => misses.push((i, snils, position)),
            },
        }
    }
    // 2. The rest from FRMR, until the deadline, within this client's share of FRMR (a
    // client holding its whole share was told to come back before its body was read:
    // [`WithinFrmrShare`]). The lookups run in a task of their own, so those started and not
    // answered in time still complete and land in the cache for the next ask; none is
    // started after the answer is sent.
    let asker = Asker::Client(caller.0.client_id);
    if !misses.is_empty() {
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        let staff = state.staff.clone();
        let org = organization.clone();
        let concurrency = state.settings.batch_concurrency.max(1);
        let keys: Vec<(usize, Snils)> = misses.iter().map(|(i, s, _)| (*i, s.clone())).collect();
        tokio::spawn(async move {
            let answered = tx.clone();
            futures::stream::iter(keys)
                .take_while(move |_| std::future::ready(!answered.is_closed()))
                .map(|(i, snils)| {
                    let (staff, org) = (staff.clone(), org.clone());
                    async move {
                        let result = staff.lookup_in_turn(asker, &snils, &org, deadline).await;
                        (i, result)
                    }
                })
                .buffer_unordered(concurrency)
                .for_each(|answer| {
                    let _ = tx.send(answer);
                    std::future::ready(())
                })
                .await;
        });
        let mut by_index: std::collections::HashMap<usize, (Snils, Option<String>)> =
            misses.into_iter().map(|(i, s, p)| (i, (s, p))).collect();
        loop {
            tokio::select! {
                answer = rx.recv() => match answer {
                    Some((i, result)) => {
                        let Some((snils, position)) = by_index.remove(&i) else { continue };
                        slots[i] = Some(match result {
                            Ok(lookup) => BatchItemOut::Result(Box::new(result_of(&snils, &organization, position, date, lookup))),
                            Err(e) => item_error(&snils, &organization, e),
                        });
                    }
                    None => break,
                },
                _ = tokio::time::sleep_until(deadline) => break,
            }
        }
        for (i, (snils, _)) in by_index {
            slots[i] = Some(BatchItemOut::Error(BatchItemError {
                snils: snils.as_str().to_owned(),
                organization: organization.to_string(),
                error: ItemProblem {
                    code: "frmr_timeout".into(),
                    detail: "ФРМР не ответил за отведённое время; запрос продолжается, повторите его позже".into(),
                    retry_after: Some(10),
                },
            }));
        }
    }
    let items = slots.into_iter().map(|s| s.expect("every item is answered")).collect();
    Ok(Json(BatchResponse { items }))
}
