//! The REMD listener: the SOAP endpoint (`POST /port/emdr`) and the admin paths
//! (`/_admin/…`), on one port. Faults never apply to the admin paths.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use egisz_contract::remd::{RegisterAck, RegisterDocument, SearchQuery};
use egisz_remd::{
    Answer, Envelope, Fault, FaultCode, ParseError, ReplyHeader, SoapVersion, envelope_version, fault_http_status,
    new_message_id, read_get_registry_item, read_register_document, read_search_registry_item, write_fault,
    write_get_registry_item_response, write_register_document_response, write_search_registry_item_response,
};
use serde_json::json;
use tracing::debug;

use super::codes::{self, fault_reason, message};
use super::faults::{Counters, RemdFaults};
use super::{Admission, CLIENT_ENTITY_ID, ENDPOINT_PATH, Shared};

/// How long an accepted-then-silent call is held before the connection is answered with a
/// bare 504: far longer than any client waits, short enough that held requests do not
/// pile up in a long-running embedded default.
const SILENT_HOLD: Duration = Duration::from_secs(600);

pub(super) fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route(ENDPOINT_PATH, post(emdr))
        .route("/_admin/stats", get(stats))
        .route("/_admin/faults", get(faults).put(set_faults))
        .route("/_admin/registry", get(registry))
        .route("/_admin/roster/persons", axum::routing::put(upsert_person))
        .route(super::CRL_PATH, get(sandbox_crl))
        .route("/_admin/pki/revoked", post(revoke))
        .fallback(|| async { (StatusCode::NOT_FOUND, "not found") })
        .layer(DefaultBodyLimit::max(egisz_remd::MAX_MESSAGE_BYTES))
        .with_state(shared)
}

/// A SOAP message in `version` with `status`.
fn soap(status: StatusCode, version: SoapVersion, body: Vec<u8>) -> Response {
    (status, [(CONTENT_TYPE, version.content_type(None))], body).into_response()
}

/// A SOAP fault with the HTTP status of its version and code.
fn fault(version: SoapVersion, reply: &ReplyHeader, fault: &Fault) -> Response {
    let status = StatusCode::from_u16(fault_http_status(version, fault)).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
    soap(status, version, write_fault(version, reply, fault))
}

/// A `Sender` fault for a request that cannot be read. The parse error names elements and
/// positions, never content.
fn malformed(version: SoapVersion, error: &ParseError) -> Response {
    debug!(%error, "REMD sandbox: unreadable request");
    let reply = ReplyHeader { message_id: new_message_id(), relates_to: None };
    fault(version, &reply, &Fault::new(FaultCode::Sender, format!("Некорректный запрос: {error}")))
}

/// The client entity id is the one the sandbox knows (GUIDs compare case-insensitively).
fn known_client(envelope: &Envelope) -> bool {
    envelope.client_entity_id.as_deref().map(str::trim).is_some_and(|id| id.eq_ignore_ascii_case(CLIENT_ENTITY_ID))
}

/// `Sender` fault `NO_RMIS` for an unknown client entity id.
fn no_rmis(envelope: &Envelope) -> Response {
    debug!("REMD sandbox: unknown clientEntityId");
    fault(
        envelope.version,
        &ReplyHeader::answering(envelope),
        &Fault::new(FaultCode::Sender, fault_reason(codes::NO_RMIS)),
    )
}

/// `POST /port/emdr`: tells the operation by the body element.
async fn emdr(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let version = envelope_version(&body).unwrap_or_default();
    match read_register_document(&body) {
        Ok((envelope, request)) => return register(shared, envelope, request).await,
        Err(ParseError::UnexpectedBody { .. }) => {}
        Err(error) => return malformed(version, &error),
    }
    match read_search_registry_item(&body) {
        Ok((envelope, query)) => return search(&shared, &envelope, &query),
        Err(ParseError::UnexpectedBody { .. }) => {}
        Err(error) => return malformed(version, &error),
    }
    match read_get_registry_item(&body) {
        Ok((envelope, emdr_id)) => get_item(&shared, &envelope, &emdr_id),
        Err(ParseError::UnexpectedBody { .. }) => malformed(
            version,
            &ParseError::UnexpectedBody {
                expected: "registerDocumentRequest, searchRegistryItemRequest or getRegistryItemRequest",
            },
        ),
        Err(error) => malformed(version, &error),
    }
}

/// `registerDocument`: count, fault, rate-limit or accept (and maybe stay silent).
async fn register(shared: Arc<Shared>, envelope: Envelope, request: RegisterDocument) -> Response {
    if !known_client(&envelope) {
        return no_rmis(&envelope);
    }
    let version = envelope.version;
    let reply = ReplyHeader::answering(&envelope);
    let counters = &shared.counters;
    match shared.admit() {
        Admission::Fault => {
            Counters::bump(&counters.faulted);
            debug!(message_id = %request.message_id, "REMD sandbox: injected a Receiver fault");
            fault(version, &reply, &Fault::new(FaultCode::Receiver, fault_reason(codes::INTERNAL_ERROR)))
        }
        Admission::Unavailable => {
            Counters::bump(&counters.faulted);
            debug!(message_id = %request.message_id, "REMD sandbox: injected a bare 503");
            StatusCode::SERVICE_UNAVAILABLE.into_response()
        }
        Admission::RateLimited => {
            Counters::bump(&counters.rate_limited);
            debug!(message_id = %request.message_id, "REMD sandbox: RATE_LIMIT");
            let ack = RegisterAck::Rejected(vec![message(codes::RATE_LIMIT, None)]);
            soap(StatusCode::OK, version, write_register_document_response(version, &reply, &ack))
        }
        Admission::Accept { silent } => {
            Counters::bump(&counters.accepted);
            debug!(message_id = %request.message_id, organization = %request.organization, kind = request.kind, silent, "REMD sandbox: accepted");
            shared.spawn_processing(request);
            if silent {
                Counters::bump(&counters.silent);
                let _stalled = shared.stalled.enter();
                tokio::time::sleep(SILENT_HOLD).await;
                return StatusCode::GATEWAY_TIMEOUT.into_response();
            }
            soap(StatusCode::OK, version, write_register_document_response(version, &reply, &RegisterAck::Accepted))
        }
    }
}

/// `searchRegistryItem` over the register.
fn search(shared: &Shared, envelope: &Envelope, query: &SearchQuery) -> Response {
    if !known_client(envelope) {
        return no_rmis(envelope);
    }
    Counters::bump(&shared.counters.search_calls);
    shared.note_lookup();
    let items = shared.search(query);
    let body = write_search_registry_item_response(
        envelope.version,
        &ReplyHeader::answering(envelope),
        &Answer::Success(items),
    );
    soap(StatusCode::OK, envelope.version, body)
}

/// `getRegistryItem`: the item, or `status=error` with `REGISTRY_ITEM_NOT_FOUND`.
fn get_item(shared: &Shared, envelope: &Envelope, emdr_id: &str) -> Response {
    if !known_client(envelope) {
        return no_rmis(envelope);
    }
    Counters::bump(&shared.counters.get_calls);
    shared.note_lookup();
    let answer = match shared.get(emdr_id) {
        Some(item) => Answer::Success(Some(item)),
        None => Answer::Error(vec![message(codes::REGISTRY_ITEM_NOT_FOUND, None)]),
    };
    let body = write_get_registry_item_response(envelope.version, &ReplyHeader::answering(envelope), &answer);
    soap(StatusCode::OK, envelope.version, body)
}

async fn stats(State(shared): State<Arc<Shared>>) -> Response {
    Json(shared.counters.snapshot()).into_response()
}

async fn faults(State(shared): State<Arc<Shared>>) -> Json<RemdFaults> {
    Json(shared.faults())
}

/// Replaces the faults; answers with the faults now in force. 422 for a rate outside
/// `0.0..=1.0`.
async fn set_faults(State(shared): State<Arc<Shared>>, body: Result<Json<RemdFaults>, JsonRejection>) -> Response {
    let faults = match body {
        Ok(Json(faults)) => faults,
        Err(rejection) => {
            return (rejection.status(), Json(json!({ "message": rejection.body_text() }))).into_response();
        }
    };
    if let Some(name) = faults.invalid_rate() {
        let message = format!("{name} must be within 0.0..=1.0");
        return (StatusCode::UNPROCESSABLE_ENTITY, Json(json!({ "message": message }))).into_response();
    }
    shared.set_faults(faults);
    Json(shared.faults()).into_response()
}

/// Every registration, without the document bytes.
async fn registry(State(shared): State<Arc<Shared>>) -> Response {
    Json(shared.registry_views()).into_response()
}

/// `PUT /_admin/roster/persons`: adds a person (the roster's JSON form) or replaces the one
/// with the same SNILS. `204`, or `422` naming what is wrong (never quoting the data).
/// The sandbox CA's CRL, current for a minute, naming what was revoked here.
async fn sandbox_crl(State(shared): State<Arc<Shared>>) -> Response {
    let revoked = super::lock(&shared.revoked).clone();
    let now = chrono::Utc::now().timestamp();
    let der =
        tokio::task::spawn_blocking(move || crate::pki::sandbox_crl_revoking(&revoked, now)).await.unwrap_or_default();
    if der.is_empty() {
        return (StatusCode::SERVICE_UNAVAILABLE, "the GOST engine is not available").into_response();
    }
    ([(CONTENT_TYPE, "application/pkix-crl")], der).into_response()
}

/// `{"serial": "<hex>"}`: the sandbox CA revokes that certificate now.
async fn revoke(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    #[derive(serde::Deserialize)]
    struct Revoke {
        serial: String,
    }
    match serde_json::from_slice::<Revoke>(&body) {
        Ok(r) if !r.serial.is_empty() && r.serial.len() <= 64 && r.serial.bytes().all(|b| b.is_ascii_hexdigit()) => {
            super::lock(&shared.revoked).push((r.serial.to_ascii_uppercase(), chrono::Utc::now().timestamp()));
            StatusCode::NO_CONTENT.into_response()
        }
        _ => (StatusCode::UNPROCESSABLE_ENTITY, "expected {\"serial\": \"<hex, up to 64 digits>\"}").into_response(),
    }
}

async fn upsert_person(State(shared): State<Arc<Shared>>, body: Bytes) -> Response {
    let person: serde_json::Value = match serde_json::from_slice(&body) {
        Ok(p) => p,
        Err(e) => return (StatusCode::UNPROCESSABLE_ENTITY, format!("not a JSON person: {e}")).into_response(),
    };
    match shared.roster.write().unwrap_or_else(|p| p.into_inner()).upsert(person) {
        Ok(()) => StatusCode::NO_CONTENT.into_response(),
        Err(e) => (StatusCode::UNPROCESSABLE_ENTITY, e.to_string()).into_response(),
    }
}
