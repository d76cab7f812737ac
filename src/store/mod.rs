//! Durable state behind one trait, [`Store`], with two implementations:
//! [`sqlite::SqliteStore`] (the embedded default) and [`postgres::PgStore`] (production,
//! several instances). One contract test suite (`tests/store_contract.rs`) runs against
//! both.
//!
//! Rules every implementation keeps: migrations are embedded and applied by [`Store::migrate`];
//! writing transactions are short and never span a call to an outside service; SQLite
//! writing transactions start with `BEGIN IMMEDIATE`; a commit is on disk when it returns
//! (SQLite `synchronous=FULL`; PostgreSQL `synchronous_commit` not `off`, checked at start
//! through [`Store::durability`]). [`GroupCommit`] lets concurrent intakes share a commit.
//!
//! ## Layout
//!
//! - this module — [`Store`] (clients, the FRMR cache, readiness, the instance's id, the
//!   cluster's quotas, periodic tasks claimed once per cluster, NSI copies), connection,
//!   errors, the check that refuses a schema newer than this binary;
//! - `outbox.rs` — [`Outbox`]: submissions, documents, timeline, REMD's calls, claims and
//!   the sweeps; SQL in `sqlite_outbox.rs` and `postgres_outbox.rs`. Every state change takes
//!   its transition and guard from `crate::lifecycle`; the stores hold no rule of their own;
//! - `ops.rs` — [`OpsStore`]: operators' changes with their audit entry, the audit log, the
//!   queue's figures (counts kept by triggers), the report's counts, console sign-ins; SQL
//!   in `sqlite_ops.rs` and `postgres_ops.rs`;
//! - `group_commit.rs` — [`GroupCommit`].

mod group_commit;
mod ops;
mod outbox;
mod postgres;
mod postgres_ops;
mod postgres_outbox;
mod sqlite;
mod sqlite_ops;
mod sqlite_outbox;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use egisz_contract::frmr::FrmrPerson;
use egisz_contract::{Oid, Snils};
use uuid::Uuid;

use crate::auth::{ClientRecord, NewClient};
use crate::config::DatabaseConfig;

pub use group_commit::{CommitBatch, GroupCommit};
pub use ops::{ConsoleSession, OpsStore};
pub use outbox::{CallbackChange, CallbackRecord, Outbox};
pub use postgres::PgStore;
pub use sqlite::SqliteStore;

/// Which engine a store runs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    pub fn label(self) -> &'static str {
        match self {
            Backend::Sqlite => "sqlite",
            Backend::Postgres => "postgres",
        }
    }
}

/// A database failure. The message may name tables and constraints, never row contents.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migrations: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("stored data is not readable: {0}")]
    Corrupt(String),
    #[error("not ready: {0}")]
    NotReady(String),
    /// The commit shared by a group of intakes failed (each of them gets this).
    #[error("the shared commit failed: {0}")]
    CommitFailed(String),
}

/// Held while this process uses its `relay.instance_id` (see [`Store::hold_instance`]).
pub struct InstanceGuard(
    #[expect(dead_code, reason = "held, never read: dropping it releases the claim")] Box<dyn std::any::Any + Send>,
);

/// How durable a commit is on this store, as the database reports it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Durability {
    /// The setting, per connection checked (SQLite: `PRAGMA synchronous` of every pooled
    /// connection; PostgreSQL: `synchronous_commit` and `fsync`).
    pub settings: Vec<String>,
    /// A commit is on disk when it returns.
    pub durable: bool,
}

/// What FRMR said about one SNILS for one organisation, and when.
#[derive(Debug, Clone, PartialEq)]
pub struct CachedLookup {
    pub snils: Snils,
    pub organization: Oid,
    /// `None`: FRMR has no such person.
    pub person: Option<FrmrPerson>,
    pub fetched_at: DateTime<Utc>,
}

/// Durable state of the gateway.
#[async_trait::async_trait]
pub trait Store: Outbox + OpsStore + Send + Sync + 'static {
    fn backend(&self) -> Backend;

    /// Applies the embedded migrations that are not applied yet.
    async fn migrate(&self) -> Result<(), StoreError>;

    /// The database answers and every embedded migration is applied.
    async fn readiness(&self) -> Result<(), StoreError>;

    /// Whether a commit is on disk when it returns, as the database says.
    async fn durability(&self) -> Result<Durability, StoreError>;

    /// How many intake transactions are worth running at once (group commit's committers):
    /// 1 where writers queue for one lock (SQLite).
    fn parallel_writers(&self) -> usize {
        1
    }

    /// Claims `instance_id` for this process while the returned guard lives, so that two
    /// running instances never share one (each takes back "its own" leases at start).
    /// PostgreSQL: a session advisory lock, waited for up to `wait` (a killed predecessor's
    /// session takes a moment to end), then `NotReady`. SQLite: one process per file; always
    /// granted.
    async fn hold_instance(&self, _instance_id: &str, _wait: Duration) -> Result<InstanceGuard, StoreError> {
        Ok(InstanceGuard(Box::new(())))
    }

    async fn insert_client(&self, client: &NewClient) -> Result<(), StoreError>;
    /// A client by the public part of its key, revoked or not.
    async fn client_by_key_id(&self, key_id: &str) -> Result<Option<ClientRecord>, StoreError>;
    /// Every client, oldest first.
    async fn list_clients(&self) -> Result<Vec<ClientRecord>, StoreError>;
    /// Revokes a client (by id or key id). `false` when no active client matched.
    async fn revoke_client(&self, id_or_key_id: &str, at: DateTime<Utc>) -> Result<bool, StoreError>;

    /// Starts a task that wakes `wake` whenever another instance announces new outbox work
    /// (PostgreSQL `LISTEN`); `None` where there is no such channel (SQLite: one process).
    fn spawn_outbox_listener(
        &self,
        _wake: Arc<tokio::sync::Notify>,
        _stop: tokio_util::sync::CancellationToken,
    ) -> Option<tokio::task::JoinHandle<()>> {
        None
    }

    async fn staff_cache_get(&self, snils: &Snils, organization: &Oid) -> Result<Option<CachedLookup>, StoreError>;
    /// Inserts or replaces the entry of `(snils, organization)`.
    async fn staff_cache_put(&self, entry: &CachedLookup) -> Result<(), StoreError>;
    /// Deletes entries fetched before `before`; returns how many.
    async fn staff_cache_purge(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Whether this engine holds quotas shared by every instance on it ([`Store::quota_reserve`]).
    /// SQLite serves one process, whose in-process limiter is the quota.
    fn shares_quotas(&self) -> bool {
        false
    }

    /// Reserves one call's token in the cluster-wide bucket of `upstream` (`rate` per second,
    /// `burst` at most), at `now`, waiting at most `max_wait` behind the callers already
    /// served: the arithmetic of [`crate::relay::quota::reserve`]. One statement, one round
    /// trip.
    async fn quota_reserve(
        &self,
        _upstream: &str,
        _rate: f64,
        _burst: u32,
        _max_wait: Duration,
        _now: DateTime<Utc>,
    ) -> Result<crate::relay::quota::Grant, StoreError> {
        Err(StoreError::NotReady("this database engine holds no shared quotas".into()))
    }

    /// Claims this run of the periodic `task` for `instance` at `now`, unless some instance
    /// on the database ran it after `due_before` (`crate::nsi::due_before`): `true` when this
    /// one should run it. One conditional upsert, so that of several instances asking at
    /// once exactly one is told to.
    async fn claim_periodic(
        &self,
        task: &str,
        instance: &str,
        now: DateTime<Utc>,
        due_before: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Stores one NSI dictionary version (replacing a copy of the same version).
    async fn nsi_save(&self, copy: &NsiCopy) -> Result<(), StoreError>;
    /// The most recently fetched copy of each dictionary.
    async fn nsi_latest(&self) -> Result<Vec<NsiCopy>, StoreError>;
}

/// A dictionary version as fetched from NSI: its rows as `(code, name)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NsiCopy {
    pub oid: String,
    pub version: String,
    pub fetched_at: DateTime<Utc>,
    pub rows: Vec<(String, String)>,
}

/// Opens the store that `config.url` names (creating an SQLite file and its directory if
/// missing) and applies migrations.
pub async fn connect(config: &DatabaseConfig) -> Result<Arc<dyn Store>, StoreError> {
    let store: Arc<dyn Store> = if config.url.starts_with("sqlite:") {
        Arc::new(SqliteStore::connect(&config.url, config.max_connections, config.acquire_timeout).await?)
    } else {
        Arc::new(PgStore::connect(&config.url, config.max_connections, config.acquire_timeout).await?)
    };
    store.migrate().await?;
    Ok(store)
}

/// Refuses a database migrated by a newer gateway: a version recorded as applied that this
/// binary does not have and that is newer than all it has. Migrations are additive (expand,
/// then contract in a later release), so an older instance already running beside a newer
/// one keeps working; a new start of an older binary is refused with a clear message rather
/// than the migrator's.
fn check_not_newer(migrator: &sqlx::migrate::Migrator, applied: &[i64]) -> Result<(), StoreError> {
    let newest = migrator.iter().map(|m| m.version).max().unwrap_or(0);
    match applied.iter().copied().filter(|v| *v > newest).max() {
        Some(v) => Err(StoreError::NotReady(format!(
            "the database was migrated by a newer gateway (schema {v}; this binary knows up to {newest}): \
             start this instance from the newer release"
        ))),
        None => Ok(()),
    }
}

/// Checks that every embedded migration is recorded as applied and successful.
fn check_applied(migrator: &sqlx::migrate::Migrator, applied: &[(i64, bool)]) -> Result<(), StoreError> {
    for m in migrator.iter() {
        match applied.iter().find(|(v, _)| *v == m.version) {
            Some((_, true)) => {}
            Some((_, false)) => return Err(StoreError::NotReady(format!("migration {} failed", m.version))),
            None => return Err(StoreError::NotReady(format!("migration {} not applied", m.version))),
        }
    }
    Ok(())
}

fn person_to_json(person: &Option<FrmrPerson>) -> Result<Option<serde_json::Value>, StoreError> {
    person.as_ref().map(serde_json::to_value).transpose().map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn person_from_json(value: Option<serde_json::Value>) -> Result<Option<FrmrPerson>, StoreError> {
    value.map(serde_json::from_value).transpose().map_err(|e| StoreError::Corrupt(format!("staff_cache.person: {e}")))
}

/// What kind of decoding error, without the value (which may be personal data).
fn error_kind(e: &sqlx::Error) -> &'static str {
    match e {
        sqlx::Error::Decode(_) => "decode",
        sqlx::Error::ColumnNotFound(_) => "column missing",
        sqlx::Error::ColumnDecode { .. } => "column decode",
        _ => "database",
    }
}

fn parse_uuid(s: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(s).map_err(|e| StoreError::Corrupt(format!("api_clients.id: {e}")))
}

/// How long a pool waits for a connection before giving up.
fn acquire_timeout(d: Duration) -> Duration {
    d.max(Duration::from_millis(100))
}
