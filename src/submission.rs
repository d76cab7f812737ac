//! Submissions: a document the gateway has acknowledged, on its way to REMD.
//!
//! `queued → sending → awaiting_result → registered`, with `retry_wait` (transient failure;
//! back to `sending` at `next_attempt_at`), `unknown` (the outcome of a send is not known:
//! reconcile with the register before any resend), `failed` (waits for ops) and `cancelled`.
//! Every transition is an event with time, actor and detail.

use std::fmt;
use std::str::FromStr;

use chrono::{DateTime, Utc};
use egisz_contract::Oid;
use egisz_contract::remd::RegisterDocument;
use uuid::Uuid;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Status {
    Queued,
    Sending,
    AwaitingResult,
    RetryWait,
    Unknown,
    Registered,
    Failed,
    Cancelled,
}

impl Status {
    pub const ALL: [Status; 8] = [
        Status::Queued,
        Status::Sending,
        Status::AwaitingResult,
        Status::RetryWait,
        Status::Unknown,
        Status::Registered,
        Status::Failed,
        Status::Cancelled,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Status::Queued => "queued",
            Status::Sending => "sending",
            Status::AwaitingResult => "awaiting_result",
            Status::RetryWait => "retry_wait",
            Status::Unknown => "unknown",
            Status::Registered => "registered",
            Status::Failed => "failed",
            Status::Cancelled => "cancelled",
        }
    }

    /// Ended: nothing more happens without ops.
    pub fn is_final(self) -> bool {
        matches!(self, Status::Registered | Status::Cancelled)
    }
}

impl fmt::Display for Status {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

impl FromStr for Status {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Status::ALL.into_iter().find(|x| x.as_str() == s).ok_or_else(|| format!("unknown status {s:?}"))
    }
}

/// What ops must do about an error (from `mappings/remd-message-codes.tsv`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum Disposition {
    Retry,
    Reconcile,
    NeedsDataFix,
    NeedsAdmin,
}

impl Disposition {
    pub const ALL: [Disposition; 4] =
        [Disposition::Retry, Disposition::Reconcile, Disposition::NeedsDataFix, Disposition::NeedsAdmin];

    pub fn as_str(self) -> &'static str {
        match self {
            Disposition::Retry => "retry",
            Disposition::Reconcile => "reconcile",
            Disposition::NeedsDataFix => "needs_data_fix",
            Disposition::NeedsAdmin => "needs_admin",
        }
    }
}

impl FromStr for Disposition {
    type Err = String;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        Disposition::ALL.into_iter().find(|x| x.as_str() == s).ok_or_else(|| format!("unknown disposition {s:?}"))
    }
}

/// An error of a submission as the API shows it.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct SubmissionError {
    /// A REMD message code (NSI 1.2.643.5.1.13.13.99.2.305), or a gateway code.
    pub code: String,
    /// REMD's text (may quote the document: shown to the submitter, never logged).
    pub message: String,
    pub disposition: Disposition,
    /// What to do, in Russian.
    pub hint_ru: String,
}

/// What intake found wrong but accepted the document with: a check under the `warn`
/// policy, or a service (FRMR, the signature verifier) that could not be asked. Shown in
/// the status and the timeline.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize, utoipa::ToSchema)]
pub struct IntakeWarning {
    /// The rule id (`F1`, `V1`, …).
    pub rule: String,
    /// Where, as in a 422's `errors`.
    pub path: String,
    pub message: String,
    /// The REMD code the document may draw because of it.
    pub remd_code: String,
    /// The ministry's code of the rule (a schematron report's head), if any.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub code: Option<String>,
}

/// A submission as stored.
#[derive(Debug, Clone, PartialEq)]
pub struct SubmissionRecord {
    pub id: Uuid,
    pub organization: Oid,
    pub local_uid: String,
    pub kind: u32,
    pub status: Status,
    pub checksum: u32,
    pub byte_size: u64,
    /// The registration request derived from the document (message id left empty).
    pub request: RegisterDocument,
    /// registerDocument calls since the schedule started (intake, or an operator's retry).
    pub attempts: u32,
    pub next_attempt_at: Option<DateTime<Utc>>,
    /// When the retry schedule started: intake, or an operator's latest retry (its age
    /// limit counts from here).
    pub schedule_from: DateTime<Utc>,
    pub lease_owner: Option<String>,
    pub lease_until: Option<DateTime<Utc>>,
    pub emdr_id: Option<String>,
    pub registered_at: Option<DateTime<Utc>>,
    /// `registered_at` is the gateway's clock: REMD gave no readable `registrationDateTime`.
    pub registered_at_by_gateway: bool,
    pub errors: Vec<SubmissionError>,
    /// What intake accepted the document with (empty: nothing).
    pub warnings: Vec<IntakeWarning>,
    pub awaiting_since: Option<DateTime<Utc>>,
    /// The MessageID of the latest registerDocument sent.
    pub current_message_id: Option<String>,
    /// Look-ups in the register since the last send.
    pub checks: u32,
    /// Of those, look-ups that found nothing although REMD holds the `localUid`.
    pub inconclusive: u32,
    /// In `awaiting_result`: when the register is looked up if no result has come.
    pub check_at: Option<DateTime<Utc>>,
    pub created_at: DateTime<Utc>,
    pub updated_at: DateTime<Utc>,
}

/// One step of a submission's timeline.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, utoipa::ToSchema)]
pub struct Event {
    pub at: DateTime<Utc>,
    pub status: Status,
    /// `api:<client name>`, `relay`, `remd`, `watchdog`, `ops:<client name>`.
    pub actor: String,
    pub detail: String,
}

/// A document accepted at intake.
#[derive(Debug, Clone)]
pub struct NewSubmission {
    pub id: Uuid,
    pub organization: Oid,
    pub local_uid: String,
    pub kind: u32,
    pub checksum: u32,
    pub content: Vec<u8>,
    pub request: RegisterDocument,
    pub created_at: DateTime<Utc>,
    pub actor: String,
    pub warnings: Vec<IntakeWarning>,
    /// The first event's detail ([`crate::lifecycle::intake_detail`]).
    pub detail: String,
}

/// What intake found.
#[derive(Debug, Clone, PartialEq)]
pub enum Intake {
    /// Stored now.
    Created(SubmissionRecord),
    /// The same `(organization, local_uid)` with the same bytes: the existing submission.
    Existing(SubmissionRecord),
    /// The same `(organization, local_uid)` with other bytes.
    Conflict(SubmissionRecord),
}

/// A change of state, applied in one transaction with its event, only if the submission is
/// in one of the expected states (and, when given, still leased by `lease_owner`).
#[derive(Debug, Clone, PartialEq)]
pub struct Transition {
    pub to: Status,
    pub next_attempt_at: Option<DateTime<Utc>>,
    pub emdr_id: Option<String>,
    pub registered_at: Option<DateTime<Utc>>,
    /// `Some` sets whether `registered_at` is the gateway's clock rather than REMD's.
    pub registered_at_by_gateway: Option<bool>,
    /// `Some` replaces the error list (an empty list clears it).
    pub errors: Option<Vec<SubmissionError>>,
    pub awaiting_since: Option<DateTime<Utc>>,
    /// When to look the submission up in the register if nothing happens before (set with
    /// `awaiting_result`; cleared by every other transition).
    pub check_at: Option<DateTime<Utc>>,
    /// `Some` sets the count of inconclusive look-ups (a send resets it).
    pub inconclusive: Option<u32>,
    /// The retry schedule starts again (an operator's retry): attempts, look-ups and
    /// inconclusive look-ups go to zero and `schedule_from` to the time of the transition.
    pub restart_schedule: bool,
    /// `Some` sets the count of sends (a claim handed back unsent does not count).
    pub attempts: Option<u32>,
    /// `Some` sets the count of look-ups since the last send (a look-up handed back unmade
    /// does not count).
    pub checks: Option<u32>,
    pub actor: String,
    pub detail: String,
}

impl Transition {
    pub fn to(status: Status, actor: &str, detail: impl Into<String>) -> Self {
        Self {
            to: status,
            next_attempt_at: None,
            emdr_id: None,
            registered_at: None,
            registered_at_by_gateway: None,
            errors: None,
            awaiting_since: None,
            check_at: None,
            inconclusive: None,
            restart_schedule: false,
            attempts: None,
            checks: None,
            actor: actor.to_owned(),
            detail: detail.into(),
        }
    }
}

/// A submission the relay has leased.
#[derive(Debug, Clone, PartialEq)]
pub struct Claimed {
    pub record: SubmissionRecord,
    /// The state before the claim: `queued`/`retry_wait` are sent, `unknown` is reconciled.
    pub claimed_from: Status,
}

/// Filters of the submission list.
#[derive(Debug, Clone, Default)]
pub struct ListFilter {
    pub organizations: Option<Vec<Oid>>,
    /// Any of these states; empty: any state.
    pub statuses: Vec<Status>,
    pub kind: Option<u32>,
    pub from: Option<DateTime<Utc>>,
    pub to: Option<DateTime<Utc>>,
    /// Submissions whose errors include this code.
    pub error_code: Option<String>,
    /// Submissions whose errors include one of this disposition.
    pub disposition: Option<Disposition>,
    /// Keyset cursor: items strictly past `(created_at, id)` in the list's order (older,
    /// or — oldest first — newer).
    pub before: Option<(DateTime<Utc>, Uuid)>,
    /// Oldest first; newest first otherwise.
    pub oldest_first: bool,
    /// Leave out what the relay is about to take anyway: leased, or due at or before this.
    pub not_due_at: Option<DateTime<Utc>>,
    pub limit: u32,
}

// What operators change, and what the store counts of submissions for ops.

/// A change an operator's action makes to one submission (guarded like every transition).
#[derive(Debug, Clone, Copy)]
pub struct OpsChange<'a> {
    pub id: Uuid,
    pub from: &'a [Status],
    pub transition: &'a Transition,
}

/// The oldest submission still on its way to REMD.
#[derive(Debug, Clone, PartialEq, serde::Serialize, utoipa::ToSchema)]
pub struct Waiting {
    pub id: Uuid,
    /// Its organisation's OID.
    pub organization: String,
    pub status: Status,
    pub created_at: DateTime<Utc>,
}

/// The queue as the store counts it.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct QueueFigures {
    pub counts: Vec<(Status, u64)>,
    pub oldest_waiting: Option<Waiting>,
    /// Still on their way to REMD although created before the registration deadline.
    pub past_deadline: u64,
}

/// Submissions created in a period, counted by what report rows need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CohortCount {
    pub organization: String,
    pub kind: u32,
    pub status: Status,
    /// The first code of the submission's current errors.
    pub error_code: Option<String>,
    pub count: u64,
}

/// Submissions created on one day (days since 1970-01-01 in the region's time), by status.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct DayCount {
    pub day: i64,
    pub status: Status,
    pub count: u64,
}

/// Fixtures for the crate's unit tests.
#[cfg(test)]
pub(crate) mod tests_support {
    use egisz_contract::remd::{Patient, RegisterDocument};
    use egisz_contract::{Oid, Personal};

    use super::*;

    pub fn request(local_uid: &str) -> RegisterDocument {
        RegisterDocument {
            message_id: String::new(),
            kind: 40,
            organization: Oid::parse("1.2.643.5.1.13.13.12.2.42.2917").unwrap(),
            department: None,
            local_uid: local_uid.to_owned(),
            creation_date_time: "2023-08-18T10:15:00+07:00".parse().unwrap(),
            patient: Patient {
                local_id: "P-1".into(),
                snils: None,
                surname: Personal("Ф".into()),
                name: Personal("И".into()),
                patr_name: None,
                birth_date: Personal("1997-08-05".parse().unwrap()),
                gender: 2,
            },
            checksum: 1,
            personal_signatures: vec![],
            org_signature: None,
        }
    }

    pub fn new_submission(local_uid: &str) -> NewSubmission {
        NewSubmission {
            id: Uuid::now_v7(),
            organization: Oid::parse("1.2.643.5.1.13.13.12.2.42.2917").unwrap(),
            local_uid: local_uid.to_owned(),
            kind: 40,
            checksum: 1,
            content: b"<ClinicalDocument/>".to_vec(),
            request: request(local_uid),
            created_at: crate::now(),
            actor: "test".into(),
            warnings: vec![],
            detail: crate::lifecycle::INTAKE_DETAIL.into(),
        }
    }

    pub fn record(local_uid: &str) -> SubmissionRecord {
        let now = crate::now();
        SubmissionRecord {
            id: Uuid::now_v7(),
            organization: Oid::parse("1.2.643.5.1.13.13.12.2.42.2917").unwrap(),
            local_uid: local_uid.to_owned(),
            kind: 40,
            status: Status::Queued,
            checksum: 1,
            byte_size: 19,
            request: request(local_uid),
            attempts: 0,
            next_attempt_at: Some(now),
            schedule_from: now,
            lease_owner: None,
            lease_until: None,
            emdr_id: None,
            registered_at: None,
            registered_at_by_gateway: false,
            errors: vec![],
            warnings: vec![],
            awaiting_since: None,
            current_message_id: None,
            checks: 0,
            inconclusive: 0,
            check_at: None,
            created_at: now,
            updated_at: now,
        }
    }
}
