//! What really differs between the two engines, and nothing else: how a connection and a
//! writing transaction are had, the SQL text where the dialects part, and the paths only one
//! engine has. The store's control flow (`core.rs`, `outbox.rs`, `ops.rs`) is written once
//! against this trait; `sqlite.rs` and `postgres.rs` implement it with SQL and codecs only.

use std::ops::DerefMut;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};

use super::sql::{Arg, Exec, Sql};
use super::{Backend, Durability, InstanceGuard, StoreError};
use crate::submission::{Intake, NewSubmission};

#[async_trait::async_trait]
pub trait Engine: Send + Sync + 'static {
    /// A connection of this engine.
    type Conn: Exec + Send;
    /// A writing transaction (on SQLite, with this process's turn to write).
    type Write: DerefMut<Target = Self::Conn> + Send;
    /// A pooled connection, for reads and for one writing statement.
    type Pooled: DerefMut<Target = Self::Conn> + Send;
    /// This process's turn to write, held while one statement writes (SQLite; nothing on
    /// PostgreSQL).
    type Turn: Send;

    const BACKEND: Backend;

    /// Begins a writing transaction.
    async fn write(&self) -> Result<Self::Write, StoreError>;
    async fn commit(tx: Self::Write) -> Result<(), StoreError>;
    async fn rollback(tx: Self::Write) -> Result<(), StoreError>;
    async fn pooled(&self) -> Result<Self::Pooled, StoreError>;
    /// Taken before a writing statement outside a transaction.
    async fn turn(&self) -> Self::Turn;

    /// One writing statement outside a transaction, in this process's turn to write; how
    /// many rows it changed.
    async fn write_one(&self, sql: &str, args: Vec<Arg<'_>>) -> Result<u64, StoreError> {
        let _turn = self.turn().await;
        self.pooled().await?.execute(sql, args).await
    }

    // --- SQL where the dialects part -------------------------------------------------

    /// Membership of `expr` in the list bound at `placeholder` ([`super::sql::Arg::Texts`]
    /// or [`super::sql::Arg::Ids`]).
    fn any(expr: &str, placeholder: &str) -> String;
    /// Appended to a `SELECT` of rows the transaction is about to change: locks them and
    /// skips those another transaction holds (PostgreSQL); nothing where writers queue
    /// (SQLite).
    const SKIP_LOCKED: &'static str;
    /// A condition: `submissions.errors` holds an error whose `field` is `value`.
    fn errors_contain<'a>(q: &mut Sql<'a>, field: &'static str, value: &'a str) -> Result<String, StoreError>;
    /// A condition: `(created_at, id)` after (`>`) or before (`<`) the bound pair.
    fn keyset(op: &str, at: &str, id: &str) -> String;
    /// The due submissions fair to every organisation (`lifecycle::CLAIM`): `(id, status)`
    /// of the earliest due of each organisation with due work, the one served longest ago
    /// first. `$1` now, `$2` the limit; `{states}` the claimable states.
    fn claim_fair(states: &str) -> String;
    /// The earliest due of any organisation but those bound at `$3`: `(id, status)`. `$1`
    /// now, `$2` the limit.
    fn claim_more(states: &str) -> String;
    /// The day (since 1970-01-01) of `created_at` at the offset bound in `q`.
    fn created_day<'a>(q: &mut Sql<'a>, utc_offset_seconds: i32) -> String;
    /// The relation of `(organization, status, n)` whose sum is the kept counts.
    const COUNTS: &'static str;

    // --- paths only one engine has ------------------------------------------------------

    /// Announces due outbox work to every instance (PostgreSQL `NOTIFY`), inside `conn`'s
    /// transaction.
    async fn announce(_conn: &mut Self::Conn) -> Result<(), StoreError> {
        Ok(())
    }

    /// Holds the lock of one intake key until the transaction ends, so that of two instances
    /// taking in the same document at once the second sees the first's row (PostgreSQL).
    async fn lock_intake_key(_conn: &mut Self::Conn, _key: &str) -> Result<(), StoreError> {
        Ok(())
    }

    /// A whole intake batch in a few statements; `None` when the engine has no such path,
    /// or when it did not go through (nothing written): the caller writes the batch one
    /// document at a time.
    async fn intake_together(
        &self,
        _batch: &[NewSubmission],
    ) -> Result<Option<Vec<Result<Intake, StoreError>>>, StoreError> {
        Ok(None)
    }

    /// See [`super::OpsStore::compact_counts`].
    async fn compact_counts(&self) -> Result<u64, StoreError> {
        Ok(0)
    }

    // --- the engine itself ------------------------------------------------------------

    async fn migrate(&self) -> Result<(), StoreError>;
    async fn readiness(&self) -> Result<(), StoreError>;
    async fn durability(&self) -> Result<Durability, StoreError>;
    fn parallel_writers(&self) -> usize;

    async fn hold_instance(&self, _instance_id: &str, _wait: Duration) -> Result<InstanceGuard, StoreError> {
        Ok(InstanceGuard(Box::new(())))
    }

    fn spawn_outbox_listener(
        &self,
        _wake: Arc<tokio::sync::Notify>,
        _stop: tokio_util::sync::CancellationToken,
    ) -> Option<tokio::task::JoinHandle<()>> {
        None
    }

    fn shares_quotas(&self) -> bool {
        false
    }

    async fn quota_reserve(
        &self,
        _upstream: &str,
        _rate: f64,
        _burst: u32,
        _max_wait: Duration,
        _now: DateTime<Utc>,
    ) -> Result<super::QuotaRow, StoreError> {
        Err(StoreError::NotReady("this database engine holds no shared quotas".into()))
    }
}
