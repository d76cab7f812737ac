//! The production engine: PostgreSQL, shared by every gateway instance.

use std::collections::BTreeSet;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use egisz_contract::{Oid, Snils};
use sqlx::Row;
use sqlx::postgres::{PgConnectOptions, PgPool, PgPoolOptions, PgRow};
use sqlx::types::Json;

use super::{Backend, CachedLookup, Durability, InstanceGuard, Store, StoreError};
use crate::auth::{ClientRecord, NewClient, Role, Scope};

static MIGRATOR: sqlx::migrate::Migrator = sqlx::migrate!("./migrations/postgres");

/// The PostgreSQL store.
#[derive(Clone)]
pub struct PgStore {
    pool: PgPool,
    max_connections: u32,
}

impl PgStore {
    pub async fn connect(url: &str, max_connections: u32, acquire_timeout: Duration) -> Result<Self, StoreError> {
        let options = PgConnectOptions::from_str(url)?.application_name("egisz-gateway");
        let pool = PgPoolOptions::new()
            .max_connections(max_connections)
            .acquire_timeout(super::acquire_timeout(acquire_timeout))
            .connect_with(options)
            .await?;
        Ok(Self { pool, max_connections })
    }

    /// The pool, for tests and tools that need raw access.
    pub fn pool(&self) -> &PgPool {
        &self.pool
    }

    pub(super) fn client_from_row(row: &PgRow) -> Result<ClientRecord, StoreError> {
        let roles: Json<BTreeSet<Role>> = row.try_get("roles")?;
        let orgs: Json<BTreeSet<Oid>> = row.try_get("organizations")?;
        let all: bool = row.try_get("all_organizations")?;
        Ok(ClientRecord {
            id: row.try_get("id")?,
            name: row.try_get("name")?,
            key_id: row.try_get("key_id")?,
            key_hash: row.try_get("key_hash")?,
            roles: roles.0,
            scope: if all { Scope::All } else { Scope::Only(orgs.0) },
            created_at: row.try_get("created_at")?,
            revoked_at: row.try_get("revoked_at")?,
        })
    }
}

#[async_trait::async_trait]
impl Store for PgStore {
    fn backend(&self) -> Backend {
        Backend::Postgres
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

    fn parallel_writers(&self) -> usize {
        // A quarter of the pool: enough transactions side by side to keep the server busy
        // while one flushes, few enough that each carries a batch (half and all-but-one
        // measured slower: BENCHMARKS.md).
        (self.max_connections as usize / 4).max(1)
    }

    async fn durability(&self) -> Result<Durability, StoreError> {
        let commit: String = sqlx::query_scalar("SHOW synchronous_commit").fetch_one(&self.pool).await?;
        let fsync: String = sqlx::query_scalar("SHOW fsync").fetch_one(&self.pool).await?;
        // `local`, `remote_write`, `on`, `remote_apply` all flush the commit to the local
        // disk before it returns; `off` does not.
        let durable = commit != "off" && fsync == "on";
        Ok(Durability { settings: vec![format!("synchronous_commit={commit}"), format!("fsync={fsync}")], durable })
    }

    async fn hold_instance(&self, instance_id: &str, wait: Duration) -> Result<InstanceGuard, StoreError> {
        let key = format!("egisz-gateway/instance/{instance_id}");
        let until = tokio::time::Instant::now() + wait;
        loop {
            let mut conn = self.pool.acquire().await?;
            let held: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock(hashtextextended($1, 0))")
                .bind(&key)
                .fetch_one(&mut *conn)
                .await?;
            if held {
                // The session holds the lock: the connection leaves the pool and lives as
                // long as the guard.
                return Ok(InstanceGuard(Box::new(conn.detach())));
            }
            drop(conn);
            if tokio::time::Instant::now() >= until {
                return Err(StoreError::NotReady(format!(
                    "another running gateway uses relay.instance_id {instance_id:?}; give each instance its own"
                )));
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }

    async fn insert_client(&self, c: &NewClient) -> Result<(), StoreError> {
        let (all, orgs) = match &c.scope {
            Scope::All => (true, BTreeSet::new()),
            Scope::Only(set) => (false, set.clone()),
        };
        sqlx::query(
            "INSERT INTO api_clients (id, name, key_id, key_hash, roles, organizations, all_organizations, created_at, revoked_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(c.id)
        .bind(&c.name)
        .bind(&c.key_id)
        .bind(&c.key_hash)
        .bind(Json(&c.roles))
        .bind(Json(&orgs))
        .bind(all)
        .bind(c.created_at)
        .bind(c.revoked_at)
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn client_by_key_id(&self, key_id: &str) -> Result<Option<ClientRecord>, StoreError> {
        sqlx::query("SELECT * FROM api_clients WHERE key_id = $1")
            .bind(key_id)
            .fetch_optional(&self.pool)
            .await?
            .as_ref()
            .map(Self::client_from_row)
            .transpose()
    }

    fn shares_quotas(&self) -> bool {
        true
    }

    async fn quota_reserve(
        &self,
        upstream: &str,
        rate: f64,
        burst: u32,
        max_wait: Duration,
        now: DateTime<Utc>,
    ) -> Result<crate::relay::quota::Grant, StoreError> {
        use crate::relay::quota::{Bucket, capacity, grant};
        // The bucket refilled to now, at most its capacity (relay::quota::refill), then the
        // next token reserved unless the caller would wait for it longer than max_wait
        // (tokens after it below -rate × max_wait); the row lock makes the callers of every
        // instance queue for it, so that their slots follow in the order they asked.
        let (tokens, granted, refilled_at): (f64, bool, DateTime<Utc>) = sqlx::query_as(
            "INSERT INTO rate_buckets AS b (upstream, tokens, refilled_at, granted) VALUES ($1, $3 - 1, $4, TRUE)
             ON CONFLICT (upstream) DO UPDATE SET
                 tokens = egisz_refill(b.tokens, b.refilled_at, $4, $2, $3)
                          - CASE WHEN egisz_refill(b.tokens, b.refilled_at, $4, $2, $3) - 1 >= -($2 * $5) THEN 1 ELSE 0 END,
                 granted = egisz_refill(b.tokens, b.refilled_at, $4, $2, $3) - 1 >= -($2 * $5),
                 refilled_at = GREATEST(b.refilled_at, $4)
             RETURNING tokens, granted, refilled_at",
        )
        .bind(upstream)
        .bind(rate)
        .bind(capacity(burst))
        .bind(now)
        .bind(max_wait.as_secs_f64())
        .fetch_one(&self.pool)
        .await?;
        Ok(grant(Bucket { tokens, refilled_at }, granted, rate, max_wait))
    }

    async fn nsi_save(&self, copy: &super::NsiCopy) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO nsi_dictionaries (oid, version, fetched_at, rows) VALUES ($1, $2, $3, $4)
             ON CONFLICT (oid, version) DO UPDATE SET fetched_at = EXCLUDED.fetched_at, rows = EXCLUDED.rows",
        )
        .bind(&copy.oid)
        .bind(&copy.version)
        .bind(copy.fetched_at)
        .bind(sqlx::types::Json(&copy.rows))
        .execute(&self.pool)
        .await?;
        Ok(())
    }

    async fn nsi_latest(&self) -> Result<Vec<super::NsiCopy>, StoreError> {
        let rows = sqlx::query(
            "SELECT DISTINCT ON (oid) oid, version, fetched_at, rows FROM nsi_dictionaries ORDER BY oid, fetched_at DESC",
        )
        .fetch_all(&self.pool)
        .await?;
        rows.iter()
            .map(|r| {
                let entries: sqlx::types::Json<Vec<(String, String)>> = r.try_get("rows")?;
                Ok(super::NsiCopy {
                    oid: r.try_get("oid")?,
                    version: r.try_get("version")?,
                    fetched_at: r.try_get("fetched_at")?,
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
        let done = sqlx::query(
            "UPDATE api_clients SET revoked_at = $1 WHERE (id::text = $2 OR key_id = $2) AND revoked_at IS NULL",
        )
        .bind(at)
        .bind(id_or_key_id)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(done > 0)
    }

    fn spawn_outbox_listener(
        &self,
        wake: std::sync::Arc<tokio::sync::Notify>,
        stop: tokio_util::sync::CancellationToken,
    ) -> Option<tokio::task::JoinHandle<()>> {
        let pool = self.pool.clone();
        Some(tokio::spawn(async move {
            loop {
                let mut listener = match sqlx::postgres::PgListener::connect_with(&pool).await {
                    Ok(l) => l,
                    Err(e) => {
                        tracing::warn!(error = %e, "LISTEN connection failed; relying on polling for now");
                        tokio::select! {
                            _ = stop.cancelled() => return,
                            _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => continue,
                        }
                    }
                };
                if let Err(e) = listener.listen(super::postgres_outbox::OUTBOX_CHANNEL).await {
                    tracing::warn!(error = %e, "LISTEN failed; relying on polling for now");
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        _ = tokio::time::sleep(std::time::Duration::from_secs(5)) => continue,
                    }
                }
                // Work announced while the connection was down is picked up now.
                wake.notify_waiters();
                loop {
                    tokio::select! {
                        _ = stop.cancelled() => return,
                        n = listener.recv() => match n {
                            Ok(_) => wake.notify_waiters(),
                            Err(e) => {
                                tracing::warn!(error = %e, "LISTEN connection lost; reconnecting");
                                break;
                            }
                        }
                    }
                }
            }
        }))
    }

    async fn staff_cache_get(&self, snils: &Snils, organization: &Oid) -> Result<Option<CachedLookup>, StoreError> {
        let Some(row) =
            sqlx::query("SELECT person, fetched_at FROM staff_cache WHERE snils = $1 AND organization = $2")
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
            fetched_at: row.try_get("fetched_at")?,
        }))
    }

    async fn staff_cache_put(&self, e: &CachedLookup) -> Result<(), StoreError> {
        let person = super::person_to_json(&e.person)?;
        sqlx::query(
            "INSERT INTO staff_cache (snils, organization, person, fetched_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (snils, organization) DO UPDATE SET person = excluded.person, fetched_at = excluded.fetched_at
             WHERE excluded.fetched_at >= staff_cache.fetched_at",
        )
        .bind(e.snils.as_str())
        .bind(e.organization.as_str())
        .bind(person.map(Json))
        .bind(e.fetched_at)
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
        let claimed = sqlx::query(
            "INSERT INTO periodic_tasks (name, last_run_at, instance) VALUES ($1, $2, $3)
             ON CONFLICT (name) DO UPDATE SET last_run_at = EXCLUDED.last_run_at, instance = EXCLUDED.instance
             WHERE periodic_tasks.last_run_at <= $4",
        )
        .bind(task)
        .bind(now)
        .bind(instance)
        .bind(due_before)
        .execute(&self.pool)
        .await?
        .rows_affected();
        Ok(claimed == 1)
    }

    async fn staff_cache_purge(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM staff_cache WHERE fetched_at < $1")
            .bind(before)
            .execute(&self.pool)
            .await?
            .rows_affected())
    }
}
