//! `POST /api/v1/documents`: a signed document for registration in REMD.
//!
//! The CDA is parsed once and checked with its signatures ([`crate::validation`]); then each
//! signer against FRMR and each signature against the configured verifier, concurrently,
//! by the kind's policy. Every rule that fails is reported with the REMD code it prevents
//! (nothing is stored then); warnings are stored with the submission. The REMD request is
//! derived from the document and its signatures, never typed twice; the
//! bytes, their checksum, the request, the submission and its first event are stored in ONE
//! transaction, durable on disk, before the answer.
//!
//! The work on the bytes (base64, the CDA parse, CMS, digests) is CPU-bound: it runs in
//! [`prepare`] on the blocking pool, at most `api.intake_workers` at once, so that the async
//! workers stay free for `/healthz`, staff checks and the relay whatever documents arrive.
//! The store's group commit then shares one transaction and one fsync among the intakes
//! that arrive together.

use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use base64::Engine;
use base64::engine::general_purpose::STANDARD as BASE64;
use chrono::Utc;
use egisz_contract::Oid;
use serde::Deserialize;
use uuid::Uuid;

use super::AppState;
use super::documents::{DocumentStatus, store_error};
use super::extract::{ApiJson, Caller};
use super::problem::{ApiError, FieldError, FieldErrors, Problem};
use crate::auth::Role;
use crate::submission::{Intake, NewSubmission};
use crate::validation::organizations;
use crate::validation::policy::{self, Policy, Sorted};
use crate::validation::{self, DocumentInput, PersonalInput, Prepared, services};

/// A personal signature of the document.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct SignatureIn {
    /// Signer role, NSI 1.2.643.5.1.13.13.99.2.368 (e.g. "1").
    pub role: String,
    /// Version of that dictionary (e.g. "2.4").
    pub role_version: String,
    /// Base64 of the detached CMS over the document bytes.
    pub data: String,
}

/// Body of `POST /api/v1/documents`.
#[derive(Debug, Deserialize, utoipa::ToSchema)]
pub struct SubmitRequest {
    /// NSI 1520 kind (40: TMK protocol).
    pub kind: u32,
    /// The submitting MO (the document's custodian).
    pub organization: String,
    /// Department OID (`<MO OID>.0.<n>`), when not derivable from the document.
    pub department: Option<String>,
    /// Base64 of the CDA XML bytes, exactly as signed.
    pub document: String,
    pub signatures: Vec<SignatureIn>,
    /// Base64 of the organisation's detached CMS, when the kind requires it.
    pub org_signature: Option<String>,
}

/// Most personal signatures in one submission (a TMK protocol has one or two).
pub const MAX_SIGNATURES: usize = 16;

fn decode(raw: &str) -> Option<Vec<u8>> {
    BASE64.decode(raw.trim()).ok()
}

/// Submits a signed document for registration in REMD.
#[utoipa::path(
    post,
    path = "/api/v1/documents",
    tag = "documents",
    request_body = SubmitRequest,
    responses(
        (status = 202, description = "Stored durably; on its way to REMD", body = DocumentStatus),
        (status = 200, description = "The same organisation, localUid and bytes were submitted before: that submission", body = DocumentStatus),
        (status = 401, description = "No or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "No `submitter` role, or the organisation is outside the key's scope", body = Problem, content_type = "application/problem+json"),
        (status = 409, description = "`duplicate_local_uid`: the same organisation and localUid with other bytes", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`payload_too_large`", body = Problem, content_type = "application/problem+json"),
        (status = 422, description = "`validation_failed`, with every failed rule in `errors` (each with the REMD code it prevents); nothing is stored", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn submit(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<SubmitRequest>,
) -> Result<(StatusCode, Json<DocumentStatus>), ApiError> {
    caller.require(Role::Submitter)?;
    let ready = checked(&state, caller, body).await??;
    let new = service_checks(&state, ready).await?;
    // Warnings of documents taken in (not of those only validated).
    for w in &new.warnings {
        state.metrics.intake_warnings.get_or_create(&crate::metrics::RuleLabels { rule: w.rule.clone() }).inc();
    }
    match state.intake.intake(new).await.map_err(store_error)? {
        Intake::Created(record) => {
            state.lifecycle.wake();
            tracing::info!(submission = %record.id, organization = %record.organization, kind = record.kind, "document accepted");
            Ok((StatusCode::ACCEPTED, Json(DocumentStatus::of(&record, None, &state.frmo.names()))))
        }
        Intake::Existing(record) => Ok((StatusCode::OK, Json(DocumentStatus::of(&record, None, &state.frmo.names())))),
        Intake::Conflict(record) => Err(ApiError::new(
            StatusCode::CONFLICT,
            "duplicate_local_uid",
            "Документ с таким localUid уже подан с другим содержимым",
            format!(
                "организация уже подала документ с этим localUid (submission {}); исправленный документ подаётся с новым localUid",
                record.id
            ),
        )),
    }
}

/// The answer of `POST /api/v1/documents/validate`: what intake would have answered, with
/// nothing stored. `egisz-gateway validate --format json` prints the same fields.
#[derive(Debug, serde::Serialize, utoipa::ToSchema)]
pub struct ValidationReport {
    /// Intake would accept the document (`202`).
    pub valid: bool,
    pub kind: u32,
    /// The ministry's rule package the document was checked against, if its kind has one.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub package: Option<super::problem::RulePackage>,
    /// What intake would refuse the document for: the `errors` of its `422`, each with the
    /// REMD code it prevents.
    pub findings: Vec<FieldError>,
    /// How many more findings there were than `findings` lists.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub findings_omitted: Option<usize>,
    /// What intake would store as warnings with the submission.
    pub warnings: Vec<crate::submission::IntakeWarning>,
}

impl ValidationReport {
    /// The report of a refusal (a `422`); any other answer (401, 403, 413…) stays the error.
    fn refused(kind: u32, e: ApiError) -> Result<Self, ApiError> {
        if e.status != StatusCode::UNPROCESSABLE_ENTITY {
            return Err(e);
        }
        Ok(Self {
            valid: false,
            kind,
            package: e.package.map(|p| *p),
            findings: e.errors,
            findings_omitted: (e.omitted > 0).then_some(e.omitted),
            warnings: Vec::new(),
        })
    }
}

/// Checks a signed document as intake would — every check, the rule package and the
/// services included — and stores nothing.
#[utoipa::path(
    post,
    path = "/api/v1/documents/validate",
    tag = "documents",
    request_body = SubmitRequest,
    responses(
        (status = 200, description = "Checked: `valid`, and every finding intake would refuse the document for (nothing is stored)", body = ValidationReport),
        (status = 401, description = "No or unknown API key", body = Problem, content_type = "application/problem+json"),
        (status = 403, description = "No `submitter` role, or the organisation is outside the key's scope", body = Problem, content_type = "application/problem+json"),
        (status = 400, description = "`malformed_json`", body = Problem, content_type = "application/problem+json"),
        (status = 413, description = "`payload_too_large`", body = Problem, content_type = "application/problem+json"),
        (status = 415, description = "`unsupported_media_type`: send application/json", body = Problem, content_type = "application/problem+json"),
        (status = 429, description = "`rate_limited`: more than `api.validate_per_minute` calls a minute by this client", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn validate(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<SubmitRequest>,
) -> Result<Json<ValidationReport>, ApiError> {
    caller.require(Role::Submitter)?;
    if let Err(not_until) = state.validate_limiter.check_key(&caller.0.client_id) {
        let wait = not_until.wait_time_from(governor::clock::Clock::now(&governor::clock::DefaultClock::default()));
        return Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            "Слишком много запросов",
            "проверок документов больше api.validate_per_minute в минуту; повторите позже",
        )
        .with_retry_after(wait.as_secs().max(1)));
    }
    let kind = body.kind;
    let ready = match checked(&state, caller, body).await? {
        Ok(ready) => ready,
        Err(e) => return ValidationReport::refused(kind, e).map(Json),
    };
    let package = ready.package.clone();
    match service_checks(&state, ready).await {
        Ok(new) => Ok(Json(ValidationReport {
            valid: true,
            kind,
            package: package.map(Into::into),
            findings: Vec::new(),
            findings_omitted: None,
            warnings: new.warnings,
        })),
        Err(e) => ValidationReport::refused(kind, e).map(Json),
    }
}

/// [`prepare`] on the blocking pool, at most `api.intake_workers` at once: the outer error
/// is the gateway's (stopping, or the check itself failed), the inner one the document's.
async fn checked(state: &AppState, caller: Caller, body: SubmitRequest) -> Result<Result<Ready, ApiError>, ApiError> {
    let permit = state.intake_permits.clone().acquire_owned().await.map_err(|_| unavailable())?;
    let state = state.clone();
    tokio::task::spawn_blocking(move || {
        let _permit = permit;
        prepare(&state, &caller, body)
    })
    .await
    .map_err(|e| {
        tracing::error!(error = %e, "the check of a document failed");
        ApiError::internal(
            "проверка документа завершилась внутренней ошибкой; идентификатор запроса указывает на неё в журнале",
        )
    })
}

fn unavailable() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "shutting_down",
        "Шлюз останавливается",
        "шлюз останавливается; повторите запрос через несколько секунд",
    )
    .with_retry_after(5)
}

/// A submission that passed every check on its bytes, waiting for the service checks.
pub struct Ready {
    new: NewSubmission,
    kind: u32,
    date: chrono::NaiveDate,
    prepared: Prepared,
    /// The rule package's warnings (reports, what it could not check, findings under `warn`).
    warnings: Vec<crate::submission::IntakeWarning>,
    /// The rule package the document was checked against.
    package: Option<egisz_packages::PackageId>,
}

/// The register and service checks (the organisations and departments against FRMO's copy,
/// each signer against FRMR, each signature against the verifier), sorted by policy; then
/// the submission with its warnings, or the 422.
async fn service_checks(state: &AppState, ready: Ready) -> Result<NewSubmission, ApiError> {
    let Ready { mut new, kind, date, prepared, warnings, package } = ready;
    let mut sorted = Sorted { errors: Vec::new(), warnings };
    let frmo = state.validation.frmo.for_kind(kind);
    if frmo != Policy::Off {
        let answer = organizations::check(
            state.frmo.current().as_deref(),
            &prepared.organizations,
            date,
            crate::now(),
            state.validation.frmo_max_age,
        );
        policy::apply(frmo, answer, &mut sorted);
    }
    let signers = state.validation.signers.for_kind(kind);
    let frmr = async {
        match signers {
            Policy::Off => None,
            _ => Some(services::check_signers(&state.staff, &new.organization, date, &prepared.signers).await),
        }
    };
    let verifier = state.verification.check(&prepared.signatures, &new.content, prepared.parts.creation_date_time);
    let (frmr, verified) = futures::join!(frmr, verifier);
    if let Some(answer) = verified {
        // A verifier's verdict is certain: it refuses; only its absence warns.
        policy::apply(Policy::Block, answer, &mut sorted);
    }
    if let Some(answer) = frmr {
        policy::apply(signers, answer, &mut sorted);
    }
    if !sorted.errors.is_empty() {
        let mut errors = FieldErrors::default();
        errors.extend(sorted.errors.into_iter().map(FieldError::from));
        return Err(errors.into_error().with_package(package.map(Into::into)));
    }
    new.detail = crate::lifecycle::intake_detail(&sorted.warnings);
    new.warnings = sorted.warnings;
    Ok(new)
}

/// Every check of a submission on its bytes: the submission, waiting for the service
/// checks, when all pass, else the 422 with every failed rule (the first
/// [`FieldErrors::MAX_REPORTED`]).
fn prepare(state: &AppState, caller: &Caller, body: SubmitRequest) -> Result<Ready, ApiError> {
    let mut errors = FieldErrors::default();

    let organization = match Oid::parse_organization(&body.organization) {
        Ok(oid) => {
            caller.require_organization(&oid)?;
            Some(oid)
        }
        Err(e) => {
            errors.push(FieldError::new("organization_oid", "/organization", e.to_string()));
            None
        }
    };
    let kind = match state.mappings.kind(body.kind) {
        Some(k) => Some(k.clone()),
        None => {
            errors.push(FieldError::new(
                "kind_unknown",
                "/kind",
                format!("вид документа {} отсутствует в справочнике НСИ 1.2.643.5.1.13.13.11.1520", body.kind),
            ));
            None
        }
    };
    let department = body.department.as_deref().map(str::trim).filter(|s| !s.is_empty()).and_then(|raw| {
        match (Oid::parse(raw), &organization) {
            (Ok(d), Some(org)) if d.is_under(org.as_str()) && d != *org => Some(d),
            (Ok(_), Some(_)) => {
                errors.push(FieldError::new(
                    "department_oid",
                    "/department",
                    "подразделение должно быть вида <OID МО>.0.<n>",
                ));
                None
            }
            (Ok(_), None) => None,
            (Err(e), _) => {
                errors.push(FieldError::new("department_oid", "/department", e.to_string()));
                None
            }
        }
    });
    let Some(content) = decode(&body.document) else {
        errors.push(FieldError::new("document_base64", "/document", "документ должен быть в base64"));
        return Err(errors.into_error());
    };
    if content.len() > state.documents.max_bytes {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "Слишком большой документ",
            format!(
                "документ {} байт, допустимо не более {} (documents.max_bytes)",
                content.len(),
                state.documents.max_bytes
            ),
        ));
    }
    let (Some(organization), Some(kind)) = (organization, kind) else {
        return Err(errors.into_error());
    };
    if body.signatures.len() > MAX_SIGNATURES {
        errors.push(FieldError::new(
            "signatures_count",
            "/signatures",
            format!("подписей {}, допустимо не более {MAX_SIGNATURES}", body.signatures.len()),
        ));
        return Err(errors.into_error());
    }

    // The transport encoding of each signature; what is inside is the validation's.
    let decoded: Vec<Option<Vec<u8>>> = body
        .signatures
        .iter()
        .enumerate()
        .map(|(i, s)| {
            let der = decode(&s.data);
            if der.is_none() {
                errors.push(FieldError::new(
                    "signature_base64",
                    format!("/signatures/{i}/data"),
                    "подпись должна быть в base64",
                ));
            }
            der
        })
        .collect();
    let org_decoded = body.org_signature.as_deref().map(|raw| {
        let der = decode(raw);
        if der.is_none() {
            errors.push(FieldError::new("signature_base64", "/org_signature", "подпись должна быть в base64"));
        }
        der
    });
    let input = DocumentInput {
        kind: &kind,
        organization: &organization,
        department: department.as_ref(),
        content: &content,
        signatures: body
            .signatures
            .iter()
            .zip(&decoded)
            .map(|(s, der)| {
                der.as_deref().map(|cms| PersonalInput { role: &s.role, role_version: &s.role_version, cms })
            })
            .collect(),
        org_signature: org_decoded.as_ref().map(|d| d.as_deref()),
    };
    let now = Utc::now().with_timezone(&state.region.utc_offset);
    let checked = validation::check_document(&input, &state.dictionaries.current(), now, state.region.utc_offset);
    // REMD's order: the bounded parse, the kind's XSD and schematron, then our rules.
    let (package_found, package_id) = if checked.parsed {
        services::check_package(state.packages.as_deref(), &state.validation, kind.kind, &content)
    } else {
        (Sorted::default(), None)
    };
    errors.extend(package_found.errors.into_iter().map(FieldError::from));
    errors.extend(checked.violations.into_iter().map(FieldError::from));
    let Some(prepared) = checked.prepared.filter(|_| errors.is_empty()) else {
        return Err(errors.into_error().with_package(package_id.map(Into::into)));
    };
    let checksum = egisz_contract::remd::checksum(&content);
    let parts = prepared.parts.clone();
    let local_uid = parts.local_uid.clone();
    let date = parts.creation_date_time.date_naive();
    let mut request = parts.into_register_document(
        String::new(),
        kind.kind,
        organization.clone(),
        checksum,
        prepared.personal.clone(),
        prepared.org_signature.clone(),
    );
    // The document's department wins; the body's fills a gap, and must not contradict it.
    if request.department.is_none() {
        request.department = department;
    }
    Ok(Ready {
        new: NewSubmission {
            id: Uuid::now_v7(),
            organization,
            local_uid,
            kind: kind.kind,
            checksum,
            content,
            request,
            created_at: crate::now(),
            actor: format!("api:{}", caller.0.name),
            warnings: Vec::new(),
            detail: crate::lifecycle::INTAKE_DETAIL.to_owned(),
        },
        kind: kind.kind,
        date,
        prepared,
        warnings: package_found.warnings,
        package: package_id,
    })
}
