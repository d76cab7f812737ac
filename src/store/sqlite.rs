//! The embedded default: one SQLite file in WAL mode with `synchronous=FULL` on every
//! connection, so that a commit is on disk when it returns. The [`Engine`]: times are epoch
//! milliseconds, ids text, lists JSON arrays read with `json_each`; writers of this process
//! queue for one turn, and writing transactions begin `IMMEDIATE`, so two writers never
//! deadlock on a lock upgrade. SQL and codecs only: the control flow is the store's.

use std::ops::{Deref, DerefMut};
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use sqlx::sqlite::{
    SqliteArguments, SqliteConnectOptions, SqliteConnection, SqliteJournalMode, SqlitePool, SqlitePoolOptions,
    SqliteRow, SqliteSynchronous,
};
use sqlx::{Row, Sqlite};
use uuid::Uuid;

use super::engine::Engine;
use super::sql::{Arg, Exec, Read, Sql, read_alike};
use super::{Backend, Durability, StoreError};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/sqlite");

/// The SQLite store.
#[derive(Clone)]
pub struct SqliteStore {
    pool: SqlitePool,
    /// SQLite has one writer. Writers of this process queue here, in order, instead of
    /// meeting at the file lock, whose busy handler sleeps in growing steps and would turn
    /// contention into tail latency. (Other processes still meet at the lock: busy_timeout.)
    writer: std::sync::Arc<tokio::sync::Mutex<()>>,
    max_connections: u32,
}

fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

fn from_ms(v: i64) -> Result<DateTime<Utc>, StoreError> {
    Utc.timestamp_millis_opt(v).single().ok_or_else(|| StoreError::Corrupt(format!("time {v}")))
}

impl SqliteStore {
    /// Opens (creating if missing) the database at `url` (`sqlite://path` or `sqlite::memory:`).
    pub async fn connect(url: &str, max_connections: u32, acquire_timeout: Duration) -> Result<Self, StoreError> {
        let options = SqliteConnectOptions::from_str(url)?
            .create_if_missing(true)
            .journal_mode(SqliteJournalMode::Wal)
            // FULL: a commit is on disk (WAL fsynced) before it returns; an acknowledged
            // document survives a power cut. Group commit keeps the cost per document low.
            .synchronous(SqliteSynchronous::Full)
            .busy_timeout(acquire_timeout)
            .foreign_keys(true);
        let file = options.get_filename().to_path_buf();
        let on_disk = file != Path::new(":memory:");
        if on_disk
            && let Some(dir) = file.parent()
            && !dir.as_os_str().is_empty()
            && !dir.exists()
        {
            // The database holds personal data (the FRMR cache): its directory is the owner's.
            let mut builder = std::fs::DirBuilder::new();
            builder.recursive(true);
            #[cfg(unix)]
            std::os::unix::fs::DirBuilderExt::mode(&mut builder, 0o700);
            builder.create(dir).map_err(|e| {
                StoreError::NotReady(format!("cannot create the database directory {}: {e}", dir.display()))
            })?;
        }
        let pool = SqlitePoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(super::acquire_timeout(acquire_timeout))
            .connect_with(options)
            .await?;
        #[cfg(unix)]
        if on_disk && file.exists() {
            use std::os::unix::fs::PermissionsExt;
            // SQLite gives its -wal and -shm files the permissions of the database file.
            std::fs::set_permissions(&file, std::fs::Permissions::from_mode(0o600)).map_err(|e| {
                StoreError::NotReady(format!("cannot restrict the permissions of {}: {e}", file.display()))
            })?;
        }
        Ok(Self { pool, writer: Default::default(), max_connections })
    }

    /// The turn to write (hold it until the write is committed).
    async fn write_turn(&self) -> tokio::sync::OwnedMutexGuard<()> {
        std::sync::Arc::clone(&self.writer).lock_owned().await
    }

    /// Databases migrated before the schema numbers were the same on both engines recorded
    /// `fair_claims` as 20261203000003 and `periodic_tasks` as 20261203000004 (PostgreSQL's
    /// 0003 is `rate_buckets`, which SQLite has no need of). Their records take the numbers
    /// of today, in one transaction, before the migrator runs; it then applies the new 0003
    /// (`rate_buckets`, nothing to create) as any migration not applied yet. Same files, same
    /// checksums: only the numbers change.
    async fn renumber(&self) -> Result<(), StoreError> {
        let old: Option<String> =
            sqlx::query_scalar("SELECT description FROM _sqlx_migrations WHERE version = 20261203000003")
                .fetch_optional(&self.pool)
                .await?;
        if old.as_deref() != Some("fair claims") {
            return Ok(());
        }
        // Both records move, or neither.
        let mut tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        for (from, to, what) in RENUMBERED {
            sqlx::query("UPDATE _sqlx_migrations SET version = $1 WHERE version = $2 AND description = $3")
                .bind(to)
                .bind(from)
                .bind(what)
                .execute(&mut *tx)
                .await?;
        }
        tx.commit().await?;
        tracing::info!("schema versions renumbered as on PostgreSQL (fair_claims 0004, periodic_tasks 0005)");
        Ok(())
    }
}

/// `(old version, new version, description)`, in an order where no two rows meet.
const RENUMBERED: [(i64, i64, &str); 2] =
    [(20261203000004, 20261203000005, "periodic tasks"), (20261203000003, 20261203000004, "fair claims")];

/// A writing transaction with this process's turn to write.
pub struct Write {
    tx: sqlx::Transaction<'static, Sqlite>,
    _turn: tokio::sync::OwnedMutexGuard<()>,
}

impl Deref for Write {
    type Target = SqliteConnection;
    fn deref(&self) -> &SqliteConnection {
        &self.tx
    }
}

impl DerefMut for Write {
    fn deref_mut(&mut self) -> &mut SqliteConnection {
        &mut self.tx
    }
}

fn bind<'q>(
    q: sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>>,
    arg: Arg<'q>,
) -> Result<sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>>, StoreError> {
    Ok(match arg {
        Arg::Text(v) => q.bind(v),
        Arg::Int(v) => q.bind(v),
        Arg::Bool(v) => q.bind(v),
        Arg::Time(v) => q.bind(v.map(ms)),
        Arg::Id(v) => q.bind(v.map(|u| u.to_string())),
        Arg::Json(v) => q.bind(v.map(|raw| String::from(Box::<str>::from(raw)))),
        Arg::Bytes(v) => q.bind(v),
        Arg::Texts(v) => q.bind(json_list(&v)?),
        Arg::Ids(v) => q.bind(json_list(&v.iter().map(Uuid::to_string).collect::<Vec<_>>())?),
    })
}

fn json_list<T: serde::Serialize>(v: &[T]) -> Result<String, StoreError> {
    serde_json::to_string(v).map_err(|e| StoreError::Corrupt(e.to_string()))
}

fn query<'q>(
    sql: &'q str,
    args: Vec<Arg<'q>>,
) -> Result<sqlx::query::Query<'q, Sqlite, SqliteArguments<'q>>, StoreError> {
    args.into_iter().try_fold(sqlx::query(sql), bind)
}

#[async_trait::async_trait]
impl Exec for SqliteConnection {
    type Row = SqliteRow;

    async fn execute(&mut self, sql: &str, args: Vec<Arg<'_>>) -> Result<u64, StoreError> {
        Ok(query(sql, args)?.execute(self).await?.rows_affected())
    }

    async fn fetch_all(&mut self, sql: &str, args: Vec<Arg<'_>>) -> Result<Vec<SqliteRow>, StoreError> {
        Ok(query(sql, args)?.fetch_all(self).await?)
    }

    async fn fetch_optional(&mut self, sql: &str, args: Vec<Arg<'_>>) -> Result<Option<SqliteRow>, StoreError> {
        Ok(query(sql, args)?.fetch_optional(self).await?)
    }
}

impl Read for SqliteRow {
    read_alike!();
    fn int(&self, col: &str) -> Result<i64, StoreError> {
        Ok(self.try_get(col)?)
    }
    fn time(&self, col: &str) -> Result<DateTime<Utc>, StoreError> {
        from_ms(self.try_get(col)?)
    }
    fn opt_time(&self, col: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.try_get::<Option<i64>, _>(col)?.map(from_ms).transpose()
    }
    fn id(&self, col: &str) -> Result<Uuid, StoreError> {
        parse_id(col, self.try_get(col)?)
    }
    fn opt_id(&self, col: &str) -> Result<Option<Uuid>, StoreError> {
        self.try_get::<Option<&str>, _>(col)?.map(|v| parse_id(col, v)).transpose()
    }
}

fn parse_id(col: &str, v: &str) -> Result<Uuid, StoreError> {
    Uuid::parse_str(v).map_err(|e| StoreError::Corrupt(format!("{col}: {e}")))
}

#[async_trait::async_trait]
impl Engine for SqliteStore {
    type Conn = SqliteConnection;
    type Write = Write;
    type Pooled = sqlx::pool::PoolConnection<Sqlite>;
    type Turn = tokio::sync::OwnedMutexGuard<()>;

    const BACKEND: Backend = Backend::Sqlite;

    async fn write(&self) -> Result<Write, StoreError> {
        let turn = self.write_turn().await;
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        Ok(Write { tx, _turn: turn })
    }

    async fn commit(w: Write) -> Result<(), StoreError> {
        Ok(w.tx.commit().await?)
    }

    async fn rollback(w: Write) -> Result<(), StoreError> {
        Ok(w.tx.rollback().await?)
    }

    async fn pooled(&self) -> Result<Self::Pooled, StoreError> {
        Ok(self.pool.acquire().await?)
    }

    async fn turn(&self) -> Self::Turn {
        self.write_turn().await
    }

    fn any(expr: &str, placeholder: &str) -> String {
        format!("{expr} IN (SELECT value FROM json_each({placeholder}))")
    }

    const SKIP_LOCKED: &'static str = "";

    fn errors_contain<'a>(q: &mut Sql<'a>, field: &'static str, value: &'a str) -> Result<String, StoreError> {
        let p = q.arg(value);
        Ok(format!(
            "EXISTS (SELECT 1 FROM json_each(submissions.errors) e WHERE json_extract(e.value, '$.{field}') = {p})"
        ))
    }

    fn keyset(op: &str, at: &str, id: &str) -> String {
        format!("(created_at {op} {at} OR (created_at = {at} AND id {op} {id}))")
    }

    fn claim_fair(states: &str) -> String {
        // A skip scan over the organisations of the due index, then each one's earliest.
        format!(
            "WITH RECURSIVE orgs(o) AS (
                 SELECT (SELECT organization FROM submissions WHERE next_attempt_at IS NOT NULL AND next_attempt_at <= $1
                         ORDER BY organization LIMIT 1)
                 UNION ALL
                 SELECT (SELECT s.organization FROM submissions s
                         WHERE s.next_attempt_at IS NOT NULL AND s.next_attempt_at <= $1 AND s.organization > orgs.o
                         ORDER BY s.organization LIMIT 1)
                 FROM orgs WHERE orgs.o IS NOT NULL)
             SELECT (SELECT id FROM submissions WHERE organization = g.o AND next_attempt_at IS NOT NULL
                         AND next_attempt_at <= $1 AND status IN ({states}) ORDER BY next_attempt_at, id LIMIT 1) AS id,
                    (SELECT status FROM submissions WHERE organization = g.o AND next_attempt_at IS NOT NULL
                         AND next_attempt_at <= $1 AND status IN ({states}) ORDER BY next_attempt_at, id LIMIT 1) AS status
             FROM orgs g LEFT JOIN organization_turns t ON t.organization = g.o
             WHERE g.o IS NOT NULL AND id IS NOT NULL
             ORDER BY t.last_claimed_at IS NOT NULL, t.last_claimed_at, g.o
             LIMIT $2"
        )
    }

    fn claim_more(states: &str) -> String {
        format!(
            "SELECT id, status FROM submissions WHERE next_attempt_at IS NOT NULL AND next_attempt_at <= $1
                 AND status IN ({states}) AND id NOT IN (SELECT value FROM json_each($3))
             ORDER BY next_attempt_at, id LIMIT $2"
        )
    }

    fn created_day<'a>(q: &mut Sql<'a>, utc_offset_seconds: i32) -> String {
        let p = q.arg(i64::from(utc_offset_seconds) * 1000);
        format!("(created_at + {p}) / 86400000")
    }

    const COUNTS: &'static str = "submission_counts";

    async fn migrate(&self) -> Result<(), StoreError> {
        // Absent before the first migration: nothing applied yet.
        let applied: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations").fetch_all(&self.pool).await.unwrap_or_default();
        super::check_not_newer(&MIGRATOR, &applied)?;
        if !applied.is_empty() {
            self.renumber().await?;
        }
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    async fn readiness(&self) -> Result<(), StoreError> {
        super::check_applied(&MIGRATOR, &super::applied(&mut *self.pool.acquire().await?).await?)
    }

    async fn durability(&self) -> Result<Durability, StoreError> {
        // Every connection the pool may hand out, held at once so that each is asked.
        let mut held = Vec::new();
        for _ in 0..self.max_connections {
            held.push(self.pool.acquire().await?);
        }
        let mut settings = Vec::new();
        for conn in &mut held {
            let mode: i64 = sqlx::query_scalar("PRAGMA synchronous").fetch_one(&mut **conn).await?;
            settings.push(match mode {
                0 => "OFF".to_owned(),
                1 => "NORMAL".to_owned(),
                2 => "FULL".to_owned(),
                3 => "EXTRA".to_owned(),
                n => n.to_string(),
            });
        }
        let durable = settings.iter().all(|s| s == "FULL" || s == "EXTRA");
        Ok(Durability { settings, durable })
    }

    fn parallel_writers(&self) -> usize {
        // Writers queue for one lock.
        1
    }
}
