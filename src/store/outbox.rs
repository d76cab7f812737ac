//! The outbox half of the store: submissions, their documents, timeline and REMD's calls.

use chrono::{DateTime, Utc};
use uuid::Uuid;

use super::StoreError;
use crate::lifecycle::Step;
use crate::submission::{Claimed, Event, Intake, ListFilter, NewSubmission, Status, SubmissionRecord, Transition};

/// A call REMD made to the gateway, as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct CallbackRecord {
    pub received_at: DateTime<Utc>,
    /// `getDocumentFile` or `sendRegisterDocumentResult`.
    pub operation: String,
    pub message_id: String,
    pub relates_to: Option<String>,
    pub submission_id: Option<Uuid>,
    pub outcome: String,
    pub payload: serde_json::Value,
}

/// A state change asked for by a call from REMD: applied only while the submission is in
/// one of `from` and, when `current_message` is given, while its current MessageID is still
/// that one — both checked by the update itself, so a send that begins in between wins.
#[derive(Debug, Clone, Copy)]
pub struct CallbackChange<'a> {
    pub id: Uuid,
    pub from: &'a [Status],
    pub current_message: Option<&'a str>,
    pub transition: &'a Transition,
}

#[async_trait::async_trait]
pub trait Outbox: Send + Sync {
    /// In one transaction, committed durably before it returns: for each document its
    /// bytes, its submission and its first event — unless `(organization, local_uid)`
    /// exists, in which case the existing submission is returned as `Existing` (same bytes)
    /// or `Conflict` (other bytes). Each document is written under a savepoint of its own:
    /// one that fails fails alone (its entry is an `Err`), the others are committed. The
    /// outer `Err`: the commit itself failed, and nothing of the batch is stored.
    async fn intake_batch(&self, batch: &[NewSubmission]) -> Result<Vec<Result<Intake, StoreError>>, StoreError>;

    /// [`Outbox::intake_batch`] of one document.
    async fn intake(&self, new: &NewSubmission) -> Result<Intake, StoreError> {
        self.intake_batch(std::slice::from_ref(new))
            .await?
            .pop()
            .unwrap_or_else(|| Err(StoreError::Corrupt("an intake batch of one answered nothing".into())))
    }

    async fn submission(&self, id: Uuid) -> Result<Option<SubmissionRecord>, StoreError>;
    /// The timeline, oldest first.
    async fn events(&self, id: Uuid) -> Result<Vec<Event>, StoreError>;
    /// Newest first, keyset-paginated by `(created_at, id)`.
    async fn list_submissions(&self, filter: &ListFilter) -> Result<Vec<SubmissionRecord>, StoreError>;
    /// How many submissions `filter` matches (its cursor and limit aside).
    async fn count_submissions(&self, filter: &ListFilter) -> Result<u64, StoreError>;
    /// The exact bytes stored at intake.
    async fn document_content(&self, id: Uuid) -> Result<Option<Vec<u8>>, StoreError>;

    /// Leases up to `limit` due submissions (`next_attempt_at <= now`) to `owner` until
    /// `lease_until`, in one short transaction, by `lifecycle::CLAIM`: those due to be sent
    /// move to `sending` (attempts + 1), those in `unknown` stay there for reconciliation.
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        owner: &str,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<Claimed>, StoreError>;

    /// Records the `wsa:MessageID` of a registerDocument about to be sent for `id`.
    async fn note_message(&self, id: Uuid, message_id: &str, at: DateTime<Utc>) -> Result<(), StoreError>;

    /// Applies `t` if the submission is in one of `from` (and still leased by `lease_owner`,
    /// when given), with its event; clears the lease. `false` when nothing matched.
    async fn transition(
        &self,
        id: Uuid,
        from: &[Status],
        lease_owner: Option<&str>,
        t: &Transition,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Adds an event to the timeline without changing the state (e.g. REMD pulled the file).
    async fn record_event(&self, id: Uuid, actor: &str, detail: &str, at: DateTime<Utc>) -> Result<(), StoreError>;

    /// The submission a message id of ours belongs to.
    async fn submission_by_message(&self, message_id: &str) -> Result<Option<SubmissionRecord>, StoreError>;

    /// The MessageIDs sent for a submission, oldest first.
    async fn messages(&self, id: Uuid) -> Result<Vec<String>, StoreError>;

    /// The submission registered under `emdr_id`.
    async fn submission_by_emdr_id(&self, emdr_id: &str) -> Result<Option<SubmissionRecord>, StoreError>;

    /// Submissions whose lease expired (a worker died mid-call) take `step`
    /// (`lifecycle::Sweep::LeaseExpired`), within its states. Returns how many moved.
    async fn reap_leases(&self, now: DateTime<Utc>, step: &Step) -> Result<u64, StoreError>;

    /// `awaiting_result` whose look-up is due (`check_at <= now`; or, for rows written
    /// before look-ups were scheduled, accepted before `before`) take `step`
    /// (`lifecycle::Sweep::ResultOverdue`). Returns how many moved.
    async fn expire_awaiting(&self, before: DateTime<Utc>, now: DateTime<Utc>, step: &Step) -> Result<u64, StoreError>;

    /// Extends the lease of `id` held by `owner` to `until`; `false` when `owner` no longer
    /// holds it (it was reaped, and maybe claimed again).
    async fn renew_lease(&self, id: Uuid, owner: &str, until: DateTime<Utc>) -> Result<bool, StoreError>;

    /// Submissions leased by an owner whose name starts with `prefix` — an instance's own,
    /// left by its previous run — take `step` (`lifecycle::Sweep::Restarted`), whether the
    /// leases expired or not. Returns how many moved.
    async fn release_leases_of(&self, prefix: &str, now: DateTime<Utc>, step: &Step) -> Result<u64, StoreError>;

    /// Records a call from REMD and, in the same transaction, applies `change` to a
    /// submission (as [`Outbox::transition`], without a lease) — unless the same call
    /// (operation, REMD's message id) was recorded before, in which case nothing happens.
    /// Returns `(first_time, applied)`. Because both happen together, a call whose change
    /// failed is not remembered, and REMD's redelivery is applied.
    async fn apply_callback(
        &self,
        cb: &CallbackRecord,
        change: Option<CallbackChange<'_>>,
        at: DateTime<Utc>,
    ) -> Result<(bool, bool), StoreError>;

    /// Records a call from REMD. `false` when the same call (operation, REMD's message id)
    /// was recorded before: a duplicate, to be acknowledged and not applied again.
    async fn record_callback(&self, cb: &CallbackRecord) -> Result<bool, StoreError>;

    /// Deletes recorded REMD calls received before `before` (their payloads quote REMD's
    /// texts, which may hold personal data); returns how many.
    async fn purge_callbacks(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Submissions per status.
    async fn count_by_status(&self) -> Result<Vec<(Status, u64)>, StoreError>;

    /// When the earliest due submission is due (for the relay's sleep).
    async fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError>;
}
