//! Durable state behind one trait, [`Store`], written once for two engines: SQLite
//! ([`SqliteStore`], the embedded default) and PostgreSQL ([`PgStore`], production, several
//! instances). The control flow — recording an event, the guarded transition, intake of a
//! batch, the claim, the sweeps, REMD's calls, the operators' changes — is written once
//! against [`engine::Engine`]; each engine supplies only what really differs: SQL text where
//! the dialects part, its codecs (times, ids, lists) and the paths only it has. One contract
//! test suite (`tests/store_contract.rs`, `tests/outbox_contract.rs`) runs against both.
//!
//! Rules every engine keeps: migrations are embedded, numbered the same on both engines, and
//! applied by [`Store::migrate`]; writing transactions are short and never span a call to an
//! outside service; SQLite writing transactions start with `BEGIN IMMEDIATE`; a commit is on
//! disk when it returns (SQLite `synchronous=FULL`; PostgreSQL `synchronous_commit` not
//! `off`, checked at start through [`Store::durability`]). [`GroupCommit`] lets concurrent
//! intakes share a commit. The stores hold statements and nothing else: every state change
//! takes its transition and guard from `crate::lifecycle`, intake its idempotency
//! (`lifecycle::repeated`, `lifecycle::seen`), a quota its arithmetic from `crate::quota`.
//!
//! ## Layout
//!
//! - this module — [`Store`] (clients, the FRMR cache, readiness, the instance's id, the
//!   cluster's quotas, periodic tasks claimed once per cluster, NSI copies), connection,
//!   errors, the check that refuses a schema newer than this binary;
//! - `core.rs` — [`Store`] for every engine;
//! - `outbox.rs` — [`Outbox`]: submissions, documents, timeline, REMD's calls, claims and
//!   the sweeps, and its implementation for every engine;
//! - `ops.rs` — [`OpsStore`]: operators' changes with their audit entry, the audit log, the
//!   queue's figures (counts kept by triggers), the report's counts, console sign-ins, and
//!   its implementation for every engine;
//! - `frmo.rs` — [`FrmoStore`]: FRMO's copies (organisations, departments) written and read
//!   page by page, and its implementation for every engine;
//! - `engine.rs` — `Engine`: what differs between the engines (transactions, the dialects'
//!   SQL, the engine-only paths);
//! - `sql.rs` — the engine-neutral statement surface: values to bind, rows to read, `$N`
//!   placeholders on both engines;
//! - `sqlite.rs`, `postgres.rs` — the two engines: connection, codecs, SQL; PostgreSQL's
//!   batch insert, `SKIP LOCKED`, advisory locks, `LISTEN/NOTIFY` and shared quota statement;
//! - `group_commit.rs` — [`GroupCommit`].

mod core;
mod engine;
mod frmo;
mod group_commit;
mod ops;
mod outbox;
mod postgres;
pub(crate) mod sql;
mod sqlite;

use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use egisz_contract::frmr::FrmrPerson;
use egisz_contract::{Oid, Snils};

use crate::clients::{ClientRecord, NewClient};

pub use frmo::{FrmoCopy, FrmoStore};
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
pub trait Store: Outbox + OpsStore + FrmoStore + Send + Sync + 'static {
    fn backend(&self) -> Backend;

    /// Applies the embedded migrations that are not applied yet.
    async fn migrate(&self) -> Result<(), StoreError>;

    /// The database answers and every embedded migration is applied.
    async fn readiness(&self) -> Result<(), StoreError>;

    /// Whether a commit is on disk when it returns, as the database says.
    async fn durability(&self) -> Result<Durability, StoreError>;

    /// How many intake transactions are worth running at once (group commit's committers):
    /// 1 where writers queue for one lock (SQLite).
    fn parallel_writers(&self) -> usize;

    /// Claims `instance_id` for this process while the returned guard lives, so that two
    /// running instances never share one (each takes back "its own" leases at start).
    /// PostgreSQL: a session advisory lock, waited for up to `wait` (a killed predecessor's
    /// session takes a moment to end), then `NotReady`. SQLite: one process per file; always
    /// granted.
    async fn hold_instance(&self, instance_id: &str, wait: Duration) -> Result<InstanceGuard, StoreError>;

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
        wake: Arc<tokio::sync::Notify>,
        stop: tokio_util::sync::CancellationToken,
    ) -> Option<tokio::task::JoinHandle<()>>;

    async fn staff_cache_get(&self, snils: &Snils, organization: &Oid) -> Result<Option<CachedLookup>, StoreError>;
    /// Inserts or replaces the entry of `(snils, organization)`.
    async fn staff_cache_put(&self, entry: &CachedLookup) -> Result<(), StoreError>;
    /// Deletes entries fetched before `before`; returns how many.
    async fn staff_cache_purge(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Whether this engine holds quotas shared by every instance on it ([`Store::quota_reserve`]).
    /// SQLite serves one process, whose in-process limiter is the quota.
    fn shares_quotas(&self) -> bool;

    /// Reserves one call's token in the cluster-wide bucket of `upstream` (`rate` per second,
    /// `burst` at most, one held back), at `now`, waiting at most `max_wait` behind the
    /// callers already served: the arithmetic of `crate::quota::reserve`, in one statement,
    /// one round trip. The bucket after it, as stored.
    async fn quota_reserve(
        &self,
        upstream: &str,
        rate: f64,
        burst: u32,
        max_wait: Duration,
        now: DateTime<Utc>,
    ) -> Result<QuotaRow, StoreError>;

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

/// A shared bucket after a reservation ([`Store::quota_reserve`]): its tokens (below zero, those
/// promised to callers waiting), when it was refilled last, and whether the reservation took
/// a token.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct QuotaRow {
    pub tokens: f64,
    pub refilled_at: DateTime<Utc>,
    pub granted: bool,
}

/// A dictionary version as fetched from NSI: its rows as `(code, name)`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NsiCopy {
    pub oid: String,
    pub version: String,
    pub fetched_at: DateTime<Utc>,
    pub rows: Vec<(String, String)>,
}

/// The database (configuration `[database]`), read by the configuration.
#[derive(Debug, Clone)]
pub struct DatabaseConfig {
    /// `url`: `sqlite://<path>` (default `sqlite://data/egisz-gateway.db`) or
    /// `postgres://user@host:port/dbname`.
    pub url: String,
    /// `max_connections`: the pool's size, in connections (default 8).
    pub max_connections: u32,
    /// `acquire_timeout_ms`: how long a query waits for a free connection or (SQLite) for
    /// the write lock (default 5,000 ms).
    pub acquire_timeout: Duration,
    /// `group_commit_max`: the most documents sharing one commit (default 64).
    pub group_commit_max: usize,
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

/// The migrations recorded as applied: `(version, success)`.
async fn applied<C: sql::Exec>(conn: &mut C) -> Result<Vec<(i64, bool)>, StoreError> {
    use sql::Read;
    let rows = conn.fetch_all("SELECT version, success FROM _sqlx_migrations", vec![]).await?;
    rows.iter().map(|r| Ok((r.int("version")?, r.flag("success")?))).collect()
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

/// How long a pool waits for a connection before giving up.
fn acquire_timeout(d: Duration) -> Duration {
    d.max(Duration::from_millis(100))
}
