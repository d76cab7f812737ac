//! The operations half of the store: operators' changes with their audit entry, the audit
//! log, the queue's figures, the report's counts and console sign-ins.

use chrono::{DateTime, Utc};
use egisz_contract::Oid;

use super::StoreError;
use crate::auth::ClientRecord;
use crate::ops::{AuditEntry, AuditFilter, CohortCount, DayCount, NewAudit, OpsChange, QueueFigures};
use crate::submission::Status;

/// A console sign-in as stored (only the token's hash).
#[derive(Debug, Clone, PartialEq)]
pub struct ConsoleSession {
    pub token_hash: Vec<u8>,
    pub client: ClientRecord,
    pub csrf_token: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[async_trait::async_trait]
pub trait OpsStore: Send + Sync {
    /// In one transaction: each change (as `Outbox::transition`, without a lease; the lease
    /// a change finds is cleared), then `audit` — whose count, when `None`, is the number of
    /// changes applied. Returns that number.
    async fn operate(&self, changes: &[OpsChange<'_>], audit: &NewAudit) -> Result<u64, StoreError>;

    /// Newest first.
    async fn audit_log(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError>;

    /// Counts per status (of `organizations`, when given; kept by the database as rows
    /// change, not counted at each call); the oldest submission in one of `waiting`; how
    /// many in `waiting` were created before `deadline`.
    async fn queue_figures(
        &self,
        waiting: &[Status],
        deadline: DateTime<Utc>,
        organizations: Option<&[Oid]>,
    ) -> Result<QueueFigures, StoreError>;

    /// Submissions created in `[from, to)` (of `organizations`, when given), counted by
    /// organisation, kind, status and first error code.
    async fn cohort(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        organizations: Option<&[Oid]>,
    ) -> Result<Vec<CohortCount>, StoreError>;

    /// Submissions created in `[from, to)` counted by day (days since 1970-01-01 at
    /// `utc_offset_seconds`) and status.
    async fn daily(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        utc_offset_seconds: i32,
        organizations: Option<&[Oid]>,
    ) -> Result<Vec<DayCount>, StoreError>;

    /// Folds counts the database noted as rows changed into the kept counts (PostgreSQL;
    /// nothing to do on SQLite). Returns how many notes were folded.
    async fn compact_counts(&self) -> Result<u64, StoreError> {
        Ok(0)
    }

    /// How many of `ids` are in each status.
    async fn statuses_of(&self, ids: &[uuid::Uuid]) -> Result<Vec<(Status, u64)>, StoreError>;

    /// The secret `name` every instance on the database shares: `fresh` is stored if there
    /// is none yet (the first instance's), and the stored one is returned.
    async fn shared_secret(&self, name: &str, fresh: &[u8]) -> Result<Vec<u8>, StoreError>;

    async fn create_session(
        &self,
        token_hash: &[u8],
        client: uuid::Uuid,
        csrf_token: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// The sign-in of `token_hash` with its client, if it has not expired at `now`.
    async fn session(&self, token_hash: &[u8], now: DateTime<Utc>) -> Result<Option<ConsoleSession>, StoreError>;

    async fn delete_session(&self, token_hash: &[u8]) -> Result<(), StoreError>;

    /// Deletes sign-ins expired before `now`; returns how many.
    async fn purge_sessions(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;
}
