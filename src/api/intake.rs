//! `POST /api/v1/documents`: a signed document for registration in REMD.
//!
//! The CDA is parsed once; every rule that fails is reported (nothing is stored then); the
//! REMD request is derived from the document and its signatures, never typed twice; the
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
use egisz_contract::remd::{Coded, PersonalSignature, SignatureData};
use egisz_semd::{Expectations, ParsedSignature, Violation};
use serde::Deserialize;
use uuid::Uuid;

use super::AppState;
use super::documents::{DocumentStatus, store_error};
use super::extract::{ApiJson, Caller};
use super::problem::{ApiError, FieldError, FieldErrors, Problem};
use crate::auth::Role;
use crate::mappings::OrgSignature;
use crate::submission::{Intake, NewSubmission};

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

fn field(v: Violation) -> FieldError {
    FieldError::new(v.rule, v.path, v.message)
}

fn nested(prefix: &str, v: Violation) -> FieldError {
    let path = if v.path.is_empty() || v.path == "/" { prefix.to_owned() } else { format!("{prefix}{}", v.path) };
    FieldError::new(v.rule, path, v.message)
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
        (status = 422, description = "`validation_failed`, with every failed rule in `errors`; nothing is stored", body = Problem, content_type = "application/problem+json"),
    ),
    security(("api_key" = []))
)]
pub async fn submit(
    State(state): State<AppState>,
    caller: Caller,
    ApiJson(body): ApiJson<SubmitRequest>,
) -> Result<(StatusCode, Json<DocumentStatus>), ApiError> {
    caller.require(Role::Submitter)?;
    let permit = state.intake_permits.clone().acquire_owned().await.map_err(|_| unavailable())?;
    let prepared = {
        let state = state.clone();
        tokio::task::spawn_blocking(move || {
            let _permit = permit;
            prepare(&state, &caller, body)
        })
    };
    let new = prepared.await.map_err(|e| {
        tracing::error!(error = %e, "document intake: the check of a document failed");
        ApiError::internal(
            "проверка документа завершилась внутренней ошибкой; идентификатор запроса указывает на неё в журнале",
        )
    })??;
    match state.intake.intake(new).await.map_err(store_error)? {
        Intake::Created(record) => {
            state.outbox_wake.notify_waiters();
            tracing::info!(submission = %record.id, organization = %record.organization, kind = record.kind, "document accepted");
            Ok((StatusCode::ACCEPTED, Json(DocumentStatus::of(&record, None))))
        }
        Intake::Existing(record) => Ok((StatusCode::OK, Json(DocumentStatus::of(&record, None)))),
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

fn unavailable() -> ApiError {
    ApiError::new(
        StatusCode::SERVICE_UNAVAILABLE,
        "shutting_down",
        "Шлюз останавливается",
        "шлюз останавливается; повторите запрос через несколько секунд",
    )
    .with_retry_after(5)
}

/// Every check of a submission, on the bytes: the stored submission when all pass, else
/// the 422 with every failed rule (the first [`FieldErrors::MAX_REPORTED`]).
fn prepare(state: &AppState, caller: &Caller, body: SubmitRequest) -> Result<NewSubmission, ApiError> {
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
    if content.len() > state.settings.max_document_bytes {
        return Err(ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload_too_large",
            "Слишком большой документ",
            format!(
                "документ {} байт, допустимо не более {} (documents.max_bytes)",
                content.len(),
                state.settings.max_document_bytes
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

    let now = Utc::now().with_timezone(&state.settings.utc_offset);
    let expectations = Expectations {
        kind: kind.kind,
        cda_code: kind.cda_code.clone(),
        organization: organization.clone(),
        now,
        require_rescons: kind.kind == 40,
        require_patient_snils: false,
    };
    let header = match egisz_semd::CdaHeader::parse(&content) {
        Ok(h) => h,
        Err(violations) => {
            // A document that does not parse can be checked no further.
            errors.extend(violations.into_iter().map(field));
            return Err(errors.into_error());
        }
    };
    errors.extend(egisz_semd::check(&header, &expectations).into_iter().map(field));
    if let Some(template) = &kind.template_id
        && !header.template_ids.iter().any(|t| t == template)
    {
        errors.push(FieldError::new(
            "template_id",
            "/ClinicalDocument/templateId/@root",
            format!("для вида {} ожидается templateId {template}", kind.kind),
        ));
    }
    let parts = match egisz_semd::register_request_parts(&header, state.settings.utc_offset) {
        Ok(p) => Some(p),
        Err(violations) => {
            errors.extend(violations.into_iter().map(field));
            None
        }
    };
    if let Some(p) = &parts
        && !kind.valid_on(p.creation_date_time.date_naive())
    {
        errors.push(FieldError::new(
            "NO_DOCUMENT_KIND_ON_DATE",
            "/ClinicalDocument/effectiveTime/@value",
            format!("вид {} не действует на дату создания документа", kind.kind),
        ));
    }

    // Signatures: each parsed, checked against the bytes and matched to a signer.
    if body.signatures.is_empty() {
        errors.push(FieldError::new(
            "NO_SIGNATURE",
            "/signatures",
            "нужна хотя бы одна подпись медицинского работника",
        ));
    }
    let created = parts.as_ref().map(|p| p.creation_date_time);
    let mut parsed: Vec<ParsedSignature> = Vec::new();
    let mut personal = Vec::new();
    for (i, s) in body.signatures.iter().enumerate() {
        let at = format!("/signatures/{i}");
        let role_ok = !s.role.trim().is_empty() && s.role.trim().bytes().all(|b| b.is_ascii_digit());
        if !role_ok || s.role_version.trim().is_empty() {
            errors.push(FieldError::new(
                "signer_role",
                format!("{at}/role"),
                "роль подписанта — код НСИ 1.2.643.5.1.13.13.99.2.368 с версией",
            ));
        }
        let Some(der) = decode(&s.data) else {
            errors.push(FieldError::new("signature_base64", format!("{at}/data"), "подпись должна быть в base64"));
            continue;
        };
        let sig = match egisz_semd::parse_signature(&der) {
            Ok(sig) => sig,
            Err(vs) => {
                errors.extend(vs.into_iter().map(|v| nested(&at, v)));
                continue;
            }
        };
        if let Some(created) = created {
            errors.extend(egisz_semd::check_signature(&sig, &content, created).into_iter().map(|v| nested(&at, v)));
        }
        let role = Coded { code: s.role.trim().to_owned(), version: s.role_version.trim().to_owned() };
        match (&parts, &sig.certificate.snils) {
            (Some(p), Some(snils)) => match p.signer(snils, role) {
                Some(signer) => personal.push(PersonalSignature {
                    signer,
                    signature: SignatureData { checksum: egisz_remd::checksum(&der), data: der.clone() },
                }),
                None => errors.push(FieldError::new(
                    "VALUE_MISMATCH_METADATA_AND_CERTIFICATE",
                    at.clone(),
                    "СНИЛС в сертификате подписи не совпадает ни с одним автором или лицом, придавшим документу юридическую силу",
                )),
            },
            (_, None) => errors.push(FieldError::new(
                "VALUE_MISMATCH_METADATA_AND_CERTIFICATE",
                at.clone(),
                "в сертификате подписи нет СНИЛС медицинского работника",
            )),
            (None, Some(_)) => {}
        }
        parsed.push(sig);
    }
    if !parsed.is_empty() {
        for v in egisz_semd::check_personal_signatures(&header, &parsed) {
            errors.push_new_rule(nested("/signatures", v));
        }
    }
    let org_signature = match (&body.org_signature, kind.org_signature) {
        (None, OrgSignature::Required) => {
            errors.push(FieldError::new(
                "ORG_SIGNATURE_REQUIRED",
                "/org_signature",
                "для этого вида нужна подпись медицинской организации",
            ));
            None
        }
        (Some(_), OrgSignature::Forbidden) => {
            errors.push(FieldError::new(
                "ORG_SIGNATURE_FORBIDDEN",
                "/org_signature",
                "для этого вида подпись организации не передаётся",
            ));
            None
        }
        (None, _) => None,
        (Some(raw), _) => match decode(raw).map(|der| (egisz_semd::parse_signature(&der), der)) {
            None => {
                errors.push(FieldError::new("signature_base64", "/org_signature", "подпись должна быть в base64"));
                None
            }
            Some((Err(vs), _)) => {
                errors.extend(vs.into_iter().map(|v| nested("/org_signature", v)));
                None
            }
            Some((Ok(sig), der)) => {
                if sig.certificate.ogrn.is_none() {
                    errors.push(FieldError::new(
                        "org_signature_certificate",
                        "/org_signature",
                        "в сертификате подписи организации нет ОГРН",
                    ));
                }
                if let Some(created) = created {
                    errors.extend(
                        egisz_semd::check_signature(&sig, &content, created)
                            .into_iter()
                            .map(|v| nested("/org_signature", v)),
                    );
                }
                Some(SignatureData { checksum: egisz_remd::checksum(&der), data: der })
            }
        },
    };

    if let Some(p) = &parts {
        let uid = &p.local_uid;
        if uid.chars().count() > 128 || uid.chars().any(|c| c.is_control() || c.is_whitespace()) {
            errors.push(FieldError::new(
                "local_uid_format",
                "/ClinicalDocument/id/@extension",
                "localUid — до 128 печатных символов без пробелов и управляющих символов",
            ));
        }
        if let (Some(given), Some(derived)) = (&department, &p.department)
            && given != derived
        {
            errors.push(FieldError::new(
                "department_mismatch",
                "/department",
                format!("в документе указано подразделение {derived}, в запросе — {given}"),
            ));
        }
    }
    let Some(parts) = parts.filter(|_| errors.is_empty()) else {
        return Err(errors.into_error());
    };
    let checksum = egisz_remd::checksum(&content);
    let local_uid = parts.local_uid.clone();
    let mut request =
        parts.into_register_document(String::new(), kind.kind, organization.clone(), checksum, personal, org_signature);
    // The document's department wins; the body's fills a gap, and must not contradict it.
    if request.department.is_none() {
        request.department = department;
    }
    Ok(NewSubmission {
        id: Uuid::now_v7(),
        organization,
        local_uid,
        kind: kind.kind,
        checksum,
        content,
        request,
        created_at: crate::now(),
        actor: format!("api:{}", caller.0.name),
    })
}
