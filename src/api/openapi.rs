//! The OpenAPI 3 description served at `/api/openapi.json`, generated from the handlers'
//! and types' annotations so it cannot drift from the code.

use std::sync::OnceLock;

use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi};

use super::{documents, intake, ops, problem, service, staff};

#[derive(OpenApi)]
#[openapi(
    info(
        title = "egisz-gateway internal API",
        version = "1",
        description = "The regional gateway to the federal EGISZ services. Errors are application/problem+json (RFC 9457) with a stable `code`; every answer carries `x-request-id`."
    ),
    paths(
        intake::submit,
        intake::validate,
        documents::get_document,
        documents::list_documents,
        staff::get_staff,
        staff::verify_batch,
        ops::retry,
        ops::cancel,
        ops::bulk_retry,
        ops::audit,
        ops::summary,
        ops::remd_report,
        service::healthz,
        service::readyz,
        service::metrics
    ),
    components(schemas(
        problem::Problem, problem::FieldError, problem::RulePackage, intake::ValidationReport,
        crate::submission::IntakeWarning,
        staff::VerificationResult, staff::PersonOut, staff::CardOut, staff::SourceOut,
        staff::BatchRequest, staff::BatchItemIn, staff::BatchResponse, staff::BatchItemOut,
        staff::BatchItemError, staff::ItemProblem, crate::staff::Verdict,
        intake::SubmitRequest, intake::SignatureIn,
        documents::DocumentStatus, documents::DocumentList, documents::Links,
        crate::submission::Status, crate::submission::SubmissionError, crate::submission::Disposition,
        crate::submission::Event,
        ops::CommentBody, ops::BulkRetry, ops::AuditPage, ops::AuditItem, crate::ops::Summary, crate::ops::ServiceHealth, crate::ops::OldestWaiting,
        super::params::Filters, crate::ops::BulkOutcome, crate::audit::AuditEntry, crate::audit::Action, crate::submission::Waiting,
        crate::ops::report::Report, crate::ops::report::ReportRow, crate::ops::report::CodeCount,
    )),
    modifiers(&BearerKey),
    tags(
        (name = "documents", description = "Document registration in REMD: status and lists (roles `submitter`, `reader`, `ops`)"),
        (name = "operations", description = "Operations staff: retry, cancel, bulk re-runs, the audit log (role `ops`); the summary and the REMD report (roles `ops`, `reader`)"),
        (name = "staff", description = "Staff verification against FRMR (role `verifier`)"),
        (name = "service", description = "Health, readiness, metrics (no key)"),
    )
)]
struct ApiDoc;

struct BearerKey;

impl Modify for BearerKey {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "api_key",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("API key from `egisz-gateway clients add`"))
                    .build(),
            ),
        );
    }
}

/// The description as JSON (built once).
pub fn openapi_json() -> &'static str {
    static JSON: OnceLock<String> = OnceLock::new();
    JSON.get_or_init(|| ApiDoc::openapi().to_pretty_json().expect("the OpenAPI document serialises"))
}
