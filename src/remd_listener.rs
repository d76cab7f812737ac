//! The REMD-facing listener: REMD's SOAP calls to the gateway, and nothing else.
//!
//! - `getDocumentFile` → the exact stored bytes (and an event in the timeline);
//! - `sendRegisterDocumentResult` → `registered` with the `emdrId`, or REMD's errors with
//!   their dispositions (retry codes go back to the schedule). Each call is recorded once by
//!   REMD's MessageID: a duplicate is acknowledged and changes nothing; a result for a
//!   message the gateway never sent is recorded and acknowledged.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use egisz_contract::remd::{RegisterResult, ResultStatus};
use egisz_remd::{DocumentFile, Envelope, Fault, FaultCode, Incoming, ReplyHeader, SoapVersion};

use crate::relay::Relay;
use crate::store::{CallbackRecord, Store};
use crate::submission::{Status, Transition};

/// What the listener needs.
#[derive(Clone)]
pub struct ListenerState {
    pub store: Arc<dyn Store>,
    pub relay: Arc<Relay>,
}

const ACTOR: &str = "remd";

pub fn router(state: ListenerState, body_limit: usize) -> Router {
    Router::new().fallback(handle).layer(DefaultBodyLimit::max(body_limit)).with_state(state)
}

fn soap(version: SoapVersion, status: StatusCode, body: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, version.content_type(None))], body).into_response()
}

fn fault(version: SoapVersion, to: &Envelope, f: Fault) -> Response {
    let status = StatusCode::from_u16(egisz_remd::fault_http_status(version, &f)).unwrap_or(StatusCode::BAD_REQUEST);
    soap(version, status, egisz_remd::write_fault(version, &ReplyHeader::answering(to), &f))
}

async fn handle(State(state): State<ListenerState>, body: Bytes) -> Response {
    let (envelope, incoming) = match egisz_remd::parse_incoming(&body) {
        Ok(parsed) => parsed,
        Err(e) => {
            let version = egisz_remd::envelope_version(&body).unwrap_or_default();
            tracing::warn!(error = %e, "REMD listener: an unreadable call");
            let to = Envelope { version, ..Envelope::default() };
            return fault(version, &to, Fault::new(FaultCode::Sender, format!("the call is not readable: {e}")));
        }
    };
    let result = match incoming {
        Incoming::GetDocumentFile(req) => get_document_file(&state, &envelope, req).await,
        Incoming::RegisterResult(res) => register_result(&state, &envelope, res).await,
    };
    result.unwrap_or_else(|e| {
        tracing::error!(error = %e, "REMD listener: the store failed");
        fault(
            envelope.version,
            &envelope,
            Fault::new(FaultCode::Receiver, "temporary failure of the information system"),
        )
    })
}

async fn get_document_file(
    state: &ListenerState,
    envelope: &Envelope,
    req: egisz_contract::remd::DocumentFileRequest,
) -> Result<Response, crate::store::StoreError> {
    let now = crate::now();
    let mut found = match &req.relates_to_message {
        Some(m) => state.store.submission_by_message(m).await?,
        None => None,
    };
    if found.is_none()
        && let Some(emdr_id) = &req.emdr_id
    {
        // A later pull of an already registered document: the localUid must match too, so
        // that an emdrId alone does not open a document.
        found = state
            .store
            .submission_by_emdr_id(emdr_id)
            .await?
            .filter(|s| req.local_uid.as_deref() == Some(s.local_uid.as_str()));
    }
    let record = CallbackRecord {
        received_at: now,
        operation: "getDocumentFile".into(),
        message_id: req.message_id.clone(),
        relates_to: req.relates_to_message.clone(),
        submission_id: found.as_ref().map(|s| s.id),
        outcome: if found.is_some() { "served" } else { "unknown_message" }.into(),
        payload: serde_json::json!({
            "relates_to_message": req.relates_to_message, "emdr_id": req.emdr_id, "local_uid": req.local_uid,
        }),
    };
    // A repeated pull is served again: REMD may well need the file twice.
    let _ = state.store.record_callback(&record).await?;
    let Some(submission) = found else {
        tracing::warn!("REMD asked for the file of a message the gateway does not know");
        return Ok(fault(envelope.version, envelope, Fault::wrong_message_id()));
    };
    let Some(bytes) = state.store.document_content(submission.id).await? else {
        return Ok(fault(envelope.version, envelope, Fault::wrong_message_id()));
    };
    state.store.record_event(submission.id, ACTOR, "РЭМД запросил файл документа", now).await?;
    let answer = egisz_remd::write_get_document_file_response(
        envelope.version,
        &ReplyHeader::answering(envelope),
        &DocumentFile::new(bytes),
    );
    Ok(soap(envelope.version, StatusCode::OK, answer))
}

/// A state change a REMD call asks for: which submission, from which states, to what.
type Change<'a> = Option<(uuid::Uuid, &'a [Status], Transition)>;

async fn register_result(
    state: &ListenerState,
    envelope: &Envelope,
    res: RegisterResult,
) -> Result<Response, crate::store::StoreError> {
    let now = crate::now();
    let ack = egisz_remd::write_register_document_result_response(envelope.version, &ReplyHeader::answering(envelope));
    let found = state.store.submission_by_message(&res.relates_to_message).await?;
    // Every state but `registered`: REMD's word that a document is registered is the truth,
    // even after the gateway gave up on it (failed) or ops cancelled it.
    let not_registered = [
        Status::Queued,
        Status::Sending,
        Status::AwaitingResult,
        Status::RetryWait,
        Status::Unknown,
        Status::Failed,
        Status::Cancelled,
    ];
    let open = [Status::Queued, Status::Sending, Status::AwaitingResult, Status::RetryWait, Status::Unknown];
    let (outcome, change): (&str, Change<'_>) = match &found {
        None => ("unknown_message", None),
        Some(sub) => match (&res.status, &res.registry_item) {
            (ResultStatus::Success, Some(item)) => {
                let mut detail = format!("зарегистрирован в РЭМД, emdrId {}", item.emdr_id);
                if matches!(sub.status, Status::Failed | Status::Cancelled) {
                    detail.push_str(&format!(" (документ был в статусе {})", sub.status));
                    tracing::warn!(submission = %sub.id, status = %sub.status, "REMD registered a document the gateway had given up on");
                }
                let t = Transition {
                    emdr_id: Some(item.emdr_id.clone()),
                    registered_at: Some(item.registration_date_time.map_or(now, |t| t.with_timezone(&chrono::Utc))),
                    errors: Some(Vec::new()),
                    ..Transition::to(Status::Registered, ACTOR, detail)
                };
                ("registered", Some((sub.id, &not_registered[..], t)))
            }
            (ResultStatus::Success, None) => {
                tracing::warn!(submission = %sub.id, "a success result without a registry item; reconciling");
                let t = Transition {
                    next_attempt_at: Some(now),
                    ..Transition::to(
                        Status::Unknown,
                        ACTOR,
                        "РЭМД сообщил об успехе без номера регистрации; сверка с реестром",
                    )
                };
                ("success_without_item", Some((sub.id, &open[..], t)))
            }
            (ResultStatus::Error, _) if sub.current_message_id.as_deref() != Some(res.relates_to_message.as_str()) => {
                // An error about an earlier send: what happens to the latest one decides.
                ("stale_errors", None)
            }
            (ResultStatus::Error, _) => {
                let t = state.relay.after_remd_errors(sub, &res.errors, now, "РЭМД: документ не зарегистрирован");
                ("errors", Some((sub.id, &open[..], t)))
            }
        },
    };
    // REMD may send a call without a MessageID: such calls cannot be recognised as repeats.
    let message_id =
        if res.message_id.is_empty() { format!("no-id:{}", uuid::Uuid::new_v4()) } else { res.message_id.clone() };
    let record = CallbackRecord {
        received_at: now,
        operation: "sendRegisterDocumentResult".into(),
        message_id,
        relates_to: Some(res.relates_to_message.clone()),
        submission_id: found.as_ref().map(|s| s.id),
        outcome: outcome.into(),
        payload: serde_json::to_value(&res).unwrap_or_default(),
    };
    let wakes = change.as_ref().is_some_and(|(_, _, t)| t.next_attempt_at.is_some());
    let (first, applied) =
        state.store.apply_callback(&record, change.as_ref().map(|(id, from, t)| (*id, *from, t)), now).await?;
    match (first, applied, &found) {
        (false, _, _) => tracing::debug!("a repeated REMD result; acknowledged, nothing changed"),
        (true, _, None) => {
            tracing::warn!("a REMD result for a message the gateway never sent; recorded and acknowledged")
        }
        (true, true, Some(sub)) => {
            tracing::info!(submission = %sub.id, outcome, "REMD result applied");
            if wakes {
                state.relay.wake();
            }
        }
        (true, false, Some(sub)) => {
            if outcome == "stale_errors" {
                state
                    .store
                    .record_event(
                        sub.id,
                        ACTOR,
                        "РЭМД прислал ошибки по более ранней отправке; учтён результат последней",
                        now,
                    )
                    .await?;
            }
            tracing::info!(submission = %sub.id, outcome, "a late REMD result; the submission had moved on");
        }
    }
    Ok(soap(envelope.version, StatusCode::OK, ack))
}
