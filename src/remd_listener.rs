//! The REMD-facing listener: REMD's SOAP calls to the gateway, and nothing else.
//!
//! A trust boundary: only callers from `remd_listener.allow_from` reach it (others get 403
//! at the connection, see [`crate::serve`]); every call is bounded in size
//! (`remd_listener.body_limit_bytes`, and the SOAP reader's own limits) and time.
//!
//! - `getDocumentFile` → the exact stored bytes (and an event in the timeline): by
//!   MessageID, for a message the gateway sent; by `emdrId`, only for a registered
//!   submission whose `localUid` the call also names;
//! - `sendRegisterDocumentResult` → `registered` with the `emdrId`, or REMD's errors with
//!   their dispositions (retry codes go back to the schedule), as [`crate::lifecycle`]
//!   decides — only when [`judge_result`] admits it: it answers the submission's current MessageID and names
//!   its `localUid`, organisation and kind. Anything else is recorded (small), answered
//!   with a fault, and changes nothing. With `remd_listener.confirm_success`, REMD is
//!   asked (`getRegistryItem`) before a success registers. Each applied call is recorded
//!   once by REMD's MessageID: a duplicate is acknowledged and changes nothing.

use std::sync::Arc;

use axum::Router;
use axum::body::Bytes;
use axum::error_handling::HandleErrorLayer;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use egisz_contract::remd::{RegisterResult, ResultStatus};
use egisz_remd::{DocumentFile, Envelope, Fault, FaultCode, Incoming, ReplyHeader, SoapVersion};
use tower::ServiceBuilder;

use crate::serve::ListenerLimits;

use crate::lifecycle::{Decision, Happening, Lifecycle, PULL_DETAIL};
use crate::metrics::{Metrics, ResultLabels};
use crate::remd::RemdCalls;
use crate::store::{CallbackChange, CallbackRecord, Store};
use crate::submission::{Status, SubmissionRecord};

/// What the listener needs.
#[derive(Clone)]
pub struct ListenerState {
    pub store: Arc<dyn Store>,
    /// What a result does to its submission (shared with the relay and ops).
    pub lifecycle: Arc<Lifecycle>,
    /// REMD, to confirm a success when `confirm_success` is set (its quota is the relay's).
    pub remd: Arc<RemdCalls>,
    pub metrics: Arc<Metrics>,
    /// Ask REMD before a success result registers a submission.
    pub confirm_success: bool,
}

const ACTOR: &str = "remd";

/// The listener's router: every call to `handle`, within `limits` (body size, handling time).
pub fn router(state: ListenerState, limits: &ListenerLimits) -> Router {
    Router::new()
        .fallback(handle)
        .layer(DefaultBodyLimit::max(limits.body_limit_bytes))
        .layer(tower_http::timeout::RequestBodyTimeoutLayer::new(limits.body_read_timeout))
        .layer(
            ServiceBuilder::new()
                .layer(HandleErrorLayer::new(|_: tower::BoxError| async {
                    let version = SoapVersion::default();
                    let to = Envelope { version, ..Envelope::default() };
                    fault(version, &to, Fault::new(FaultCode::Sender, "the call took too long to arrive or to handle"))
                }))
                .timeout(limits.request_timeout),
        )
        .with_state(state)
}

/// What a caller outside `remd_listener.allow_from` gets, before it has sent anything: a
/// whole HTTP `403` answer with a SOAP fault, after which the connection is closed.
pub fn refusal() -> Vec<u8> {
    let version = SoapVersion::default();
    let to = Envelope { version, ..Envelope::default() };
    let body = egisz_remd::write_fault(
        version,
        &ReplyHeader::answering(&to),
        &Fault::new(FaultCode::Sender, "this address may not call the information system"),
    );
    let mut answer = format!(
        "HTTP/1.1 403 Forbidden\r\ncontent-type: {}\r\ncontent-length: {}\r\nconnection: close\r\n\r\n",
        version.content_type(None),
        body.len()
    )
    .into_bytes();
    answer.extend_from_slice(&body);
    answer
}

fn soap(version: SoapVersion, status: StatusCode, body: Vec<u8>) -> Response {
    (status, [(header::CONTENT_TYPE, version.content_type(None))], body).into_response()
}

fn fault(version: SoapVersion, to: &Envelope, f: Fault) -> Response {
    let status = StatusCode::from_u16(egisz_remd::fault_http_status(version, &f)).unwrap_or(StatusCode::BAD_REQUEST);
    soap(version, status, egisz_remd::write_fault(version, &ReplyHeader::answering(to), &f))
}

async fn handle(State(state): State<ListenerState>, body: Result<Bytes, BytesRejection>) -> Response {
    let body = match body {
        Ok(body) => body,
        Err(rejection) => {
            let version = SoapVersion::default();
            let to = Envelope { version, ..Envelope::default() };
            state.metrics.remd_listener_rejected.get_or_create(&ResultLabels { result: "unreadable".into() }).inc();
            let (status, reason) = if rejection.status() == StatusCode::PAYLOAD_TOO_LARGE {
                (StatusCode::PAYLOAD_TOO_LARGE, "the call is larger than this listener accepts")
            } else if crate::api::problem::is_body_timeout(&rejection) {
                (StatusCode::REQUEST_TIMEOUT, "the call did not arrive in time")
            } else {
                (StatusCode::BAD_REQUEST, "the call could not be read")
            };
            let mut response = fault(version, &to, Fault::new(FaultCode::Sender, reason));
            *response.status_mut() = status;
            return response;
        }
    };
    // The parse is bounded but CPU work: it runs on the blocking pool, off the async workers.
    let parsed = {
        let body = body.clone();
        tokio::task::spawn_blocking(move || egisz_remd::parse_incoming(&body)).await
    };
    let parsed = match parsed {
        Ok(parsed) => parsed,
        Err(e) => {
            tracing::error!(error = %e, "REMD listener: reading a call failed");
            let to = Envelope::default();
            return fault(
                to.version,
                &to,
                Fault::new(FaultCode::Receiver, "temporary failure of the information system"),
            );
        }
    };
    let (envelope, incoming) = match parsed {
        Ok(parsed) => parsed,
        Err(e) => {
            let version = egisz_remd::envelope_version(&body).unwrap_or_default();
            state.metrics.remd_listener_rejected.get_or_create(&ResultLabels { result: "unreadable".into() }).inc();
            tracing::warn!(error = %e, "REMD listener: an unreadable call");
            let to = Envelope { version, ..Envelope::default() };
            if matches!(e, egisz_remd::ParseError::NotUnderstood(..)) {
                return fault(version, &to, Fault::new(FaultCode::MustUnderstand, e.to_string()));
            }
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
            .filter(|s| s.status == Status::Registered && req.local_uid.as_deref() == Some(s.local_uid.as_str()));
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
    state.store.record_event(submission.id, ACTOR, PULL_DETAIL, now).await?;
    let answer = egisz_remd::write_get_document_file_response(
        envelope.version,
        &ReplyHeader::answering(envelope),
        &DocumentFile::new(bytes),
    );
    Ok(soap(envelope.version, StatusCode::OK, answer))
}

pub use crate::lifecycle::{Judgement, judge_result};

/// The largest payload kept of one recorded call, in bytes of JSON.
pub const MAX_RECORDED_PAYLOAD: usize = 64 * 1024;

/// `value`, or a stand-in that says how large it was when it is larger than
/// [`MAX_RECORDED_PAYLOAD`].
fn capped(value: serde_json::Value) -> serde_json::Value {
    let size = serde_json::to_vec(&value).map_or(usize::MAX, |v| v.len());
    if size <= MAX_RECORDED_PAYLOAD {
        value
    } else {
        serde_json::json!({ "omitted": "payload larger than the recording limit", "bytes": size })
    }
}

async fn register_result(
    state: &ListenerState,
    envelope: &Envelope,
    res: RegisterResult,
) -> Result<Response, crate::store::StoreError> {
    let now = crate::now();
    let found = state.store.submission_by_message(&res.relates_to_message).await?;
    let sub = match (judge_result(found.as_ref(), &res), found) {
        (Judgement::Apply, Some(sub)) => sub,
        (Judgement::Apply, None) => return reject(state, envelope, &res, None, "unknown_message", now).await,
        (Judgement::Reject(reason), found) => return reject(state, envelope, &res, found.as_ref(), reason, now).await,
    };
    if let (ResultStatus::Success, Some(item)) = (&res.status, &res.registry_item)
        && state.confirm_success
    {
        match state.remd.confirm_registered(&item.emdr_id, &sub).await {
            Ok(true) => {}
            Ok(false) => return reject(state, envelope, &res, Some(&sub), "not_confirmed", now).await,
            Err(reason) => {
                tracing::warn!(submission = %sub.id, reason = %reason, "REMD could not confirm a registration; REMD will deliver the result again");
                return Ok(fault(
                    envelope.version,
                    envelope,
                    Fault::new(FaultCode::Receiver, "temporary failure of the information system"),
                ));
            }
        }
    }
    state.lifecycle.observe_codes(&res.errors);
    let step = match state.lifecycle.decide(&sub, Happening::Result(&res), now) {
        Decision::Apply(step) => Some(step),
        Decision::Ignore | Decision::Refuse(_) => None,
    };
    let outcome = step.as_ref().map_or("moved_on", |s| s.outcome);
    if let Some(step) = &step
        && step.transition.to == Status::Registered
        && matches!(sub.status, Status::Failed | Status::Cancelled)
    {
        tracing::warn!(submission = %sub.id, status = %sub.status, "REMD registered a document the gateway had given up on");
    }
    if res.registry_item.is_none() && res.status == ResultStatus::Success {
        tracing::warn!(submission = %sub.id, "a success result without a registry item; reconciling");
    }
    // REMD may send a call without a MessageID: such calls cannot be recognised as repeats.
    let message_id =
        if res.message_id.is_empty() { format!("no-id:{}", uuid::Uuid::new_v4()) } else { res.message_id.clone() };
    let record = CallbackRecord {
        received_at: now,
        operation: "sendRegisterDocumentResult".into(),
        message_id,
        relates_to: Some(res.relates_to_message.clone()),
        submission_id: Some(sub.id),
        outcome: outcome.into(),
        payload: capped(serde_json::to_value(&res).unwrap_or_default()),
    };
    let wakes = step.as_ref().is_some_and(|s| s.transition.next_attempt_at.is_some());
    // The guard on the current MessageID is part of the update itself: a send that begins
    // between the read above and this write makes the result outdated, and it is not applied.
    let change = step.as_ref().map(|step| CallbackChange {
        id: sub.id,
        from: step.from,
        current_message: Some(&res.relates_to_message),
        transition: &step.transition,
    });
    let (first, applied) = state.store.apply_callback(&record, change, now).await?;
    match (first, applied) {
        (false, _) => tracing::debug!("a repeated REMD result; acknowledged, nothing changed"),
        (true, true) => {
            tracing::info!(submission = %sub.id, outcome, "REMD result applied");
            if wakes {
                state.lifecycle.wake();
            }
        }
        (true, false) => {
            tracing::info!(submission = %sub.id, outcome, "a late REMD result; the submission had moved on")
        }
    }
    let ack = egisz_remd::write_register_document_result_response(envelope.version, &ReplyHeader::answering(envelope));
    Ok(soap(envelope.version, StatusCode::OK, ack))
}

/// A result that changes nothing: recorded (small) for ops, counted, answered with a fault.
async fn reject(
    state: &ListenerState,
    envelope: &Envelope,
    res: &RegisterResult,
    found: Option<&SubmissionRecord>,
    reason: &'static str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<Response, crate::store::StoreError> {
    state.metrics.remd_listener_rejected.get_or_create(&ResultLabels { result: reason.to_owned() }).inc();
    tracing::warn!(submission = ?found.map(|s| s.id), reason, "a REMD result was refused; nothing changed");
    let record = CallbackRecord {
        received_at: now,
        operation: "sendRegisterDocumentResult".into(),
        // Never under REMD's MessageID: a refused call must not make a later genuine one
        // with the same id look like a repeat.
        message_id: format!("refused:{}", uuid::Uuid::new_v4()),
        relates_to: Some(res.relates_to_message.clone()),
        submission_id: found.map(|s| s.id),
        outcome: reason.into(),
        payload: capped(serde_json::json!({
            "message_id": res.message_id, "status": res.status, "kind": res.kind,
            "organization": res.organization, "local_uid": res.local_uid,
            "emdr_id": res.registry_item.as_ref().map(|i| &i.emdr_id),
        })),
    };
    state.store.record_callback(&record).await?;
    let text = match reason {
        "unknown_message" => "the result answers no message of this information system",
        "not_current" => "the result answers an outdated message; the latest one decides",
        "not_confirmed" => "the register does not confirm this registration",
        _ => "the result does not match the document it names",
    };
    Ok(fault(envelope.version, envelope, Fault::new(FaultCode::Sender, text)))
}
