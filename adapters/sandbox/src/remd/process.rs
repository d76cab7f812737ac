//! What happens after the sync ack, in a background task per accepted request: pull the
//! file from the gateway (`getDocumentFile`), check it, register it, and post the result
//! (`sendRegisterDocumentResult`) — subject to the callback faults.

use std::sync::Arc;
use std::time::Duration;

use egisz_contract::remd::{DocumentFileRequest, RegisterDocument, RegisterResult, RemdMessage, ResultStatus};
use egisz_remd::{
    FaultCode, Response, SoapVersion, new_message_id, read_get_document_file_response,
    read_register_document_result_response, wire, write_get_document_file_request, write_register_document_result,
};
use egisz_semd::CdaHeader;
use tokio::time::sleep;
use tracing::debug;

use super::codes::{self, message};
use super::faults::{Counters, draw};
use super::registry::NewEntry;
use super::{Shared, checks, region_now};

/// `getDocumentFile` attempts before the result is `GET_DOCUMENT_FILE_ERROR`.
const PULL_ATTEMPTS: u32 = 3;
/// Pause between `getDocumentFile` attempts.
const PULL_PAUSE: Duration = Duration::from_millis(200);
/// `sendRegisterDocumentResult` attempts per posted copy.
const POST_ATTEMPTS: u32 = 5;
/// First pause between `sendRegisterDocumentResult` attempts; doubled after each.
const POST_PAUSE: Duration = Duration::from_millis(100);

/// Processes one accepted `registerDocument` request to the end (result posted or lost).
pub(super) async fn process(shared: Arc<Shared>, request: RegisterDocument) {
    sleep(shared.processing_delay).await;
    let outcome = evaluate(&shared, &request).await;
    let reject = shared.faults().reject_codes;
    let outcome = if reject.is_empty() {
        outcome
    } else {
        Outcome::Rejected(reject.iter().map(|code| message(code, None)).collect())
    };
    let registered = match outcome {
        Outcome::Rejected(errors) => Err(errors),
        Outcome::Passed(new) => {
            let item = shared.register(new, region_now());
            item.ok_or_else(|| vec![message(codes::NOT_UNIQUE_PROVIDED_ID, None)])
        }
    };
    let (status, registry_item, errors) = match registered {
        Ok(item) => {
            debug!(message_id = %request.message_id, emdr_id = %item.emdr_id, "REMD sandbox: registered");
            (ResultStatus::Success, Some(item), Vec::new())
        }
        Err(errors) => {
            let codes: Vec<&str> = errors.iter().map(|e| e.code.as_str()).collect();
            debug!(message_id = %request.message_id, ?codes, "REMD sandbox: rejected");
            (ResultStatus::Error, None, errors)
        }
    };
    let result = RegisterResult {
        message_id: String::new(),
        relates_to_message: request.message_id.clone(),
        status,
        kind: Some(request.kind),
        organization: Some(request.organization.as_str().to_owned()),
        local_uid: Some(request.local_uid.clone()),
        creation_date_time: Some(request.creation_date_time),
        registry_item,
        errors,
    };
    deliver(&shared, result).await;
}

/// Where the checks left a request.
enum Outcome {
    /// Everything holds: register this.
    Passed(NewEntry),
    /// The result is an error with these messages.
    Rejected(Vec<RemdMessage>),
}

/// The checks in REMD's order: already registered (no pull) → pull → CRC-32 → readable
/// CDA → request vs document, kind, signers vs FRMR.
async fn evaluate(shared: &Shared, request: &RegisterDocument) -> Outcome {
    if shared.is_registered(request.organization.as_str(), &request.local_uid) {
        return Outcome::Rejected(vec![message(codes::NOT_UNIQUE_PROVIDED_ID, None)]);
    }
    let Some(document) = pull(shared, request).await else {
        return Outcome::Rejected(vec![message(codes::GET_DOCUMENT_FILE_ERROR, None)]);
    };
    // The checks are CPU work (digests, signatures): off the runtime's threads, so that the
    // calls arriving meanwhile are answered, and timestamped, when they arrive.
    let (roster, frmo, req, verifier) = (shared.roster(), shared.frmo(), request.clone(), shared.verifier.clone());
    let packages = shared.packages.clone();
    let checked = tokio::task::spawn_blocking(move || {
        if egisz_remd::checksum(&document) != req.checksum {
            return Err(vec![message(codes::DIGEST_MISMATCH, None)]);
        }
        let header = CdaHeader::parse(&document).map_err(|_| vec![message(codes::INVALID_DOC_CONTENT_TYPE, None)])?;
        let mut problems = packages.map(|p| checks::validate_package(&p, req.kind, &document)).unwrap_or_default();
        problems.extend(checks::judge_parsed(
            &req,
            &document,
            &header,
            checks::Registers { roster: &roster, frmo: &frmo },
            &verifier,
            region_now(),
        ));
        if !problems.is_empty() {
            return Err(problems);
        }
        let version = header.version_number.clone().filter(|v| !v.trim().is_empty()).unwrap_or_else(|| "1".to_owned());
        Ok((document, version))
    })
    .await;
    let (document, document_version) = match checked {
        Ok(Ok(passed)) => passed,
        Ok(Err(problems)) => return Outcome::Rejected(problems),
        Err(_) => return Outcome::Rejected(vec![message(codes::INTERNAL_ERROR, None)]),
    };
    let revoked = revocation(shared, request).await;
    if !revoked.is_empty() {
        return Outcome::Rejected(revoked);
    }
    Outcome::Passed(NewEntry {
        organization: request.organization.as_str().to_owned(),
        kind: request.kind,
        local_uid: request.local_uid.clone(),
        checksum: request.checksum,
        document,
        patient_snils: request.patient.snils.clone(),
        document_version,
    })
}

/// Each signature's certificates against their CAs' CRLs, as REMD checks them when it
/// registers: a revoked one is refused; a CRL the emulator cannot get is no verdict.
async fn revocation(shared: &Shared, request: &RegisterDocument) -> Vec<RemdMessage> {
    let containers = request
        .personal_signatures
        .iter()
        .enumerate()
        .map(|(n, s)| (format!("подпись №{}", n + 1), &s.signature.data))
        .chain(request.org_signature.iter().map(|s| ("подпись организации".to_owned(), &s.data)));
    let mut out = Vec::new();
    for (subject, data) in containers {
        let Ok(sig) = egisz_semd::parse_signature(data) else { continue };
        if let Ok(findings) = shared.verifier.check_revocation(&sig, request.creation_date_time).await {
            out.extend(findings.iter().map(|v| message(v.rule, Some(&subject))));
        }
    }
    out
}

/// `getDocumentFile` by the request's MessageID, retried on transport errors, HTTP errors,
/// unreadable answers and `Receiver` faults; a `Sender` fault (the gateway does not know
/// the message) ends it at once. `None`: no file.
async fn pull(shared: &Shared, request: &RegisterDocument) -> Option<Vec<u8>> {
    for attempt in 1..=PULL_ATTEMPTS {
        if attempt > 1 {
            sleep(PULL_PAUSE).await;
        }
        let Some(url) = shared.callback_url() else {
            debug!(message_id = %request.message_id, "REMD sandbox: no callback URL to pull the file from");
            continue;
        };
        Counters::bump(&shared.counters.file_pulls);
        let call = DocumentFileRequest {
            message_id: new_message_id(),
            relates_to_message: Some(request.message_id.clone()),
            emdr_id: None,
            local_uid: Some(request.local_uid.clone()),
        };
        let body = write_get_document_file_request(SoapVersion::Soap12, &call);
        let Some((status, answer)) = shared.post(&url, wire::ACTION_GET_DOCUMENT_FILE, body).await else {
            continue;
        };
        match read_get_document_file_response(&answer) {
            Ok((_, Response::Body(file))) if status.is_success() => return Some(file.document),
            Ok((_, Response::Fault(fault))) if fault.code == FaultCode::Sender => {
                debug!(message_id = %request.message_id, code = ?fault.remd_code(), "REMD sandbox: the gateway refused getDocumentFile");
                return None;
            }
            Ok(_) | Err(_) => {
                debug!(message_id = %request.message_id, status = status.as_u16(), attempt, "REMD sandbox: getDocumentFile failed");
            }
        }
    }
    None
}

/// Posts a result, applying `lost_callback_rate`, `callback_delay_ms` and
/// `duplicate_callback_rate`.
async fn deliver(shared: &Shared, result: RegisterResult) {
    let faults = shared.faults();
    if draw(faults.lost_callback_rate) {
        Counters::bump(&shared.counters.results_lost);
        debug!(relates_to = %result.relates_to_message, "REMD sandbox: result dropped (lost_callback_rate)");
        return;
    }
    if faults.callback_delay_ms > 0 {
        sleep(Duration::from_millis(faults.callback_delay_ms)).await;
    }
    let copies = if draw(faults.duplicate_callback_rate) { 2 } else { 1 };
    for _ in 0..copies {
        let call = RegisterResult { message_id: new_message_id(), ..result.clone() };
        if post_result(shared, &call).await {
            Counters::bump(&shared.counters.results_posted);
        } else {
            Counters::bump(&shared.counters.results_lost);
            debug!(relates_to = %result.relates_to_message, "REMD sandbox: result not delivered");
        }
    }
}

/// One `sendRegisterDocumentResult` with retries; true once the gateway acknowledged it
/// (2xx with `status` success).
async fn post_result(shared: &Shared, result: &RegisterResult) -> bool {
    let body = write_register_document_result(SoapVersion::Soap12, result);
    let mut pause = POST_PAUSE;
    for attempt in 1..=POST_ATTEMPTS {
        if attempt > 1 {
            sleep(pause).await;
            pause *= 2;
        }
        let Some(url) = shared.callback_url() else { continue };
        let Some((status, answer)) = shared.post(&url, wire::ACTION_SEND_REGISTER_DOCUMENT_RESULT, body.clone()).await
        else {
            continue;
        };
        match read_register_document_result_response(&answer) {
            Ok((_, Response::Body(ResultStatus::Success))) if status.is_success() => return true,
            _ => debug!(status = status.as_u16(), attempt, "REMD sandbox: sendRegisterDocumentResult not acknowledged"),
        }
    }
    false
}
