//! The embedded default: one SQLite file in WAL mode with `synchronous=FULL` on every
//! connection, so that a commit is on disk when it returns. Times are epoch milliseconds.

use std::collections::BTreeSet;
use std::path::Path;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, TimeZone, Utc};
use egisz_contract::{Oid, Snils};
use sqlx::Row;
use sqlx::sqlite::{
    SqliteConnectOptions, SqliteJournalMode, SqlitePool, SqlitePoolOptions, SqliteRow, SqliteSynchronous,
};
use sqlx::types::Json;

use super::{Backend, CachedLookup, Durability, Store, StoreError};
use crate::auth::{ClientRecord, NewClient, Role, Scope};

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

pub(super) fn ms(t: DateTime<Utc>) -> i64 {
    t.timestamp_millis()
}

pub(super) fn from_ms(v: i64) -> Result<DateTime<Utc>, StoreError> {
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

    pub(super) fn pool(&self) -> &SqlitePool {
        &self.pool
    }

    /// The turn to write (hold it until the write is committed).
    pub(super) async fn write_turn(&self) -> tokio::sync::OwnedMutexGuard<()> {
        std::sync::Arc::clone(&self.writer).lock_owned().await
    }

    /// A writing transaction: this process's turn, then `BEGIN IMMEDIATE`.
    pub(super) async fn begin_write(
        &self,
    ) -> Result<(tokio::sync::OwnedMutexGuard<()>, sqlx::Transaction<'static, sqlx::Sqlite>), StoreError> {
        let turn = self.write_turn().await;
        let tx = self.pool.begin_with("BEGIN IMMEDIATE").await?;
        Ok((turn, tx))
    }

    pub(super) fn client_from_row(row: &SqliteRow) -> Result<ClientRecord, StoreError> {
        let roles: Json<BTreeSet<Role>> = row.try_get("roles")?;
        let orgs: Json<BTreeSet<Oid>> = row.try_get("organizations")?;
        let all: bool = row.try_get("all_organizations")?;
        let revoked: Option<i64> = row.try_get("revoked_at")?;
        Ok(ClientRecord {
            id: super::parse_uuid(row.try_get("id")?)?,
            name: row.try_get("name")?,
            key_id: row.try_get("key_id")?,
            key_hash: row.try_get("key_hash")?,
            roles: roles.0,
            scope: if all { Scope::All } else { Scope::Only(orgs.0) },
            created_at: from_ms(row.try_get("created_at")?)?,
            revoked_at: revoked.map(from_ms).transpose()?,
        })
    }
}

#[async_trait::async_trait]
impl Store for SqliteStore {
    fn backend(&self) -> Backend {
        Backend::Sqlite
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        // Absent before the first migration: nothing applied yet.
        let applied: Vec<i64> =
            sqlx::query_scalar("SELECT version FROM _sqlx_migrations").fetch_all(&self.pool).await.unwrap_or_default();
        super::check_not_newer(&MIGRATOR, &applied)?;
        MIGRATOR.run(&self.pool).await?;
        Ok(())
    }

    async fn readiness(&self) -> Result<(), StoreError> {
        let rows = sqlx::query("SELECT version, success FROM _sqlx_migrations").fetch_all(&self.pool).await?;
        let applied: Vec<(i64, bool)> = rows
            .iter()
            .map(|r| Ok((r.try_get("version")?, r.try_get("success")?)))
            .collect::<Result<_, sqlx::Error>>()?;
        super::check_applied(&MIGRATOR, &applied)
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

    async fn insert_client(&self, c: &NewClient) -> Result<(), StoreError> {
        let (all, orgs) = match &c.scope {
            Scope::All => (true, BTreeSet::new()),
            Scope::Only(set) => (false, set.clone()),
        };
        let (_turn, mut tx) = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO api_clients (id, name, key_id, key_hash, roles, organizations, all_organizations, created_at, revoked_at)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(c.id.to_string())
        .bind(&c.name)
        .bind(&c.key_id)
        .bind(&c.key_hash)
        .bind(Json(&c.roles))
        .bind(Json(&orgs))
        .bind(all)
        .bind(ms(c.created_at))
        .bind(c.revoked_at.map(ms))
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn client_by_key_id(&self, key_id: &str) -> Result<Option<ClientRecord>, StoreError> {
        sqlx::query("SELECT * FROM api_clients WHERE key_id = ?")
            .bind(key_id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(Self::client_from_row)
            .transpose()
    }

    async fn nsi_save(&self, copy: &super::NsiCopy) -> Result<(), StoreError> {
        let (_turn, mut tx) = self.begin_write().await?;
        sqlx::query("INSERT OR REPLACE INTO nsi_dictionaries (oid, version, fetched_at, rows) VALUES (?, ?, ?, ?)")
            .bind(&copy.oid)
            .bind(&copy.version)
            .bind(ms(copy.fetched_at))
            .bind(sqlx::types::Json(&copy.rows))
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn nsi_latest(&self) -> Result<Vec<super::NsiCopy>, StoreError> {
        let rows = sqlx::query(
            "SELECT oid, version, fetched_at, rows FROM nsi_dictionaries d
             WHERE fetched_at = (SELECT MAX(fetched_at) FROM nsi_dictionaries WHERE oid = d.oid) ORDER BY oid",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let entries: sqlx::types::Json<Vec<(String, String)>> = r.try_get("rows")?;
                Ok(super::NsiCopy {
                    oid: r.try_get("oid")?,
                    version: r.try_get("version")?,
                    fetched_at: from_ms(r.try_get("fetched_at")?)?,
                    rows: entries.0,
                })
            })
            .collect()
    }

    async fn list_clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        sqlx::query("SELECT * FROM api_clients ORDER BY created_at, id")
            .fetch_all(&self.pool)
            .await?
            .iter()
            .map(Self::client_from_row)
            .collect()
    }

    async fn revoke_client(&self, id_or_key_id: &str, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let (_turn, mut tx) = self.begin_write().await?;
        let done =
            sqlx::query("UPDATE api_clients SET revoked_at = ? WHERE (id = ? OR key_id = ?) AND revoked_at IS NULL")
                .bind(ms(at))
                .bind(id_or_key_id)
                .bind(id_or_key_id)
                .execute(&mut *tx)
                .await?
                .rows_affected();
        tx.commit().await?;
        Ok(done > 0)
    }

    async fn staff_cache_get(&self, snils: &Snils, organization: &Oid) -> Result<Option<CachedLookup>, StoreError> {
        let Some(row) = sqlx::query("SELECT person, fetched_at FROM staff_cache WHERE snils = ? AND organization = ?")
            .bind(snils.as_str())
            .bind(organization.as_str())
            .fetch_optional(&self.pool)
            .await?
        else {
            return Ok(None);
        };
        let person: Option<Json<serde_json::Value>> = row.try_get("person")?;
        Ok(Some(CachedLookup {
            snils: snils.clone(),
            organization: organization.clone(),
            person: super::person_from_json(person.map(|j| j.0))?,
            fetched_at: from_ms(row.try_get("fetched_at")?)?,
        }))
    }

    async fn staff_cache_put(&self, e: &CachedLookup) -> Result<(), StoreError> {
        let person = super::person_to_json(&e.person)?;
        let _turn = self.write_turn().await;
        sqlx::query(
            "INSERT INTO staff_cache (snils, organization, person, fetched_at) VALUES (?, ?, ?, ?)
             ON CONFLICT (snils, organization) DO UPDATE SET person = excluded.person, fetched_at = excluded.fetched_at
             WHERE excluded.fetched_at >= staff_cache.fetched_at",
        )
        .bind(e.snils.as_str())
        .bind(e.organization.as_str())
        .bind(person.map(Json))
        .bind(ms(e.fetched_at))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn claim_periodic(
        &self,
        task: &str,
        instance: &str,
        now: DateTime<Utc>,
        due_before: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let claimed = sqlx::query(
            "INSERT INTO periodic_tasks (name, last_run_at, instance) VALUES (?, ?, ?)
             ON CONFLICT (name) DO UPDATE SET last_run_at = excluded.last_run_at, instance = excluded.instance
             WHERE periodic_tasks.last_run_at <= ?",
        )
        .bind(task)
        .bind(ms(now))
        .bind(instance)
        .bind(ms(due_before))
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(claimed == 1)
    }

    async fn staff_cache_purge(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let _turn = self.write_turn().await;
        Ok(sqlx::query("DELETE FROM staff_cache WHERE fetched_at < ?")
            .bind(ms(before))
            .execute(&self.pool)
            .await?
            .rows_affected())
    }
}
