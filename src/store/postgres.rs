//! The production engine: PostgreSQL, shared by every gateway instance. The [`Engine`]:
//! `timestamptz` and `uuid` columns, lists as arrays; several instances claim with `FOR
//! UPDATE SKIP LOCKED`, hold intake keys with advisory locks, announce due work with
//! `NOTIFY egisz_outbox`, share the upstreams' quotas in one statement, and take an intake
//! batch in a handful of statements. SQL and codecs only: the control flow is the store's.

use std::collections::HashMap;
use std::str::FromStr;
use std::time::Duration;

use chrono::{DateTime, Utc};
use sqlx::postgres::{PgArguments, PgConnectOptions, PgConnection, PgPool, PgPoolOptions, PgRow};
use sqlx::types::Json;
use sqlx::{Column, Postgres, Row, TypeInfo};
use uuid::Uuid;

use super::engine::Engine;
use super::outbox::{COLUMNS, intake_key, record};
use super::sql::{Arg, Exec, Read, Sql, read_alike};
use super::{Backend, Durability, InstanceGuard, QuotaRow, StoreError};
use crate::lifecycle::{Seen, repeated, seen};
use crate::submission::{Intake, NewSubmission, SubmissionRecord};

/// The channel due outbox work is announced on.
pub const OUTBOX_CHANNEL: &str = "egisz_outbox";

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
}

fn bind<'q>(
    q: sqlx::query::Query<'q, Postgres, PgArguments>,
    arg: Arg<'q>,
) -> sqlx::query::Query<'q, Postgres, PgArguments> {
    match arg {
        Arg::Text(v) => q.bind(v),
        Arg::Int(v) => q.bind(v),
        Arg::Bool(v) => q.bind(v),
        Arg::Time(v) => q.bind(v),
        Arg::Id(v) => q.bind(v),
        Arg::Json(v) => q.bind(v.map(Json)),
        Arg::Bytes(v) => q.bind(v),
        Arg::Texts(v) => q.bind(v),
        Arg::Ids(v) => q.bind(v),
    }
}

fn query<'q>(sql: &'q str, args: Vec<Arg<'q>>) -> sqlx::query::Query<'q, Postgres, PgArguments> {
    args.into_iter().fold(sqlx::query(sql), bind)
}

#[async_trait::async_trait]
impl Exec for PgConnection {
    type Row = PgRow;

    async fn execute(&mut self, sql: &str, args: Vec<Arg<'_>>) -> Result<u64, StoreError> {
        Ok(query(sql, args).execute(self).await?.rows_affected())
    }

    async fn fetch_all(&mut self, sql: &str, args: Vec<Arg<'_>>) -> Result<Vec<PgRow>, StoreError> {
        Ok(query(sql, args).fetch_all(self).await?)
    }

    async fn fetch_optional(&mut self, sql: &str, args: Vec<Arg<'_>>) -> Result<Option<PgRow>, StoreError> {
        Ok(query(sql, args).fetch_optional(self).await?)
    }
}

impl Read for PgRow {
    read_alike!();
    fn int(&self, col: &str) -> Result<i64, StoreError> {
        // INTEGER columns are 4 bytes here (kind, attempts, checks), counts and ids 8.
        let width = self.try_column(col)?.type_info().name();
        Ok(match width {
            "INT4" => i64::from(self.try_get::<i32, _>(col)?),
            "INT2" => i64::from(self.try_get::<i16, _>(col)?),
            _ => self.try_get(col)?,
        })
    }
    fn time(&self, col: &str) -> Result<DateTime<Utc>, StoreError> {
        Ok(self.try_get(col)?)
    }
    fn opt_time(&self, col: &str) -> Result<Option<DateTime<Utc>>, StoreError> {
        Ok(self.try_get(col)?)
    }
    fn id(&self, col: &str) -> Result<Uuid, StoreError> {
        Ok(self.try_get(col)?)
    }
    fn opt_id(&self, col: &str) -> Result<Option<Uuid>, StoreError> {
        Ok(self.try_get(col)?)
    }
}

/// The fast path of [`Outbox::intake_batch`]: every key locked in one statement (in the one
/// order), the existing submissions read in one, the new ones written — bytes, submission,
/// first event — in one. `Ok(None)` when a statement failed: the transaction is rolled back
/// and the caller takes the path of one savepoint per document.
async fn intake_together(
    store: &PgStore,
    batch: &[NewSubmission],
) -> Result<Option<Vec<Result<Intake, StoreError>>>, StoreError> {
    let mut tx = store.pool().begin().await?;
    match write_together(&mut tx, batch).await {
        Ok(results) => {
            tx.commit().await?;
            Ok(Some(results))
        }
        Err(StoreError::Database(sqlx::Error::Database(e))) => {
            tracing::debug!(code = ?e.code(), "an intake batch did not go through whole; writing it one by one");
            tx.rollback().await?;
            Ok(None)
        }
        Err(e) => Err(e),
    }
}

async fn write_together(
    conn: &mut PgConnection,
    batch: &[NewSubmission],
) -> Result<Vec<Result<Intake, StoreError>>, StoreError> {
    let mut keys: Vec<String> = batch.iter().map(intake_key).collect();
    keys.sort();
    keys.dedup();
    sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended(k, 0)) FROM unnest($1::text[]) AS k")
        .bind(&keys)
        .execute(&mut *conn)
        .await?;
    let organizations: Vec<&str> = batch.iter().map(|n| n.organization.as_str()).collect();
    let uids: Vec<&str> = batch.iter().map(|n| n.local_uid.as_str()).collect();
    let existing: Vec<SubmissionRecord> = sqlx::query(&format!(
        "SELECT {COLUMNS} FROM submissions WHERE (organization, local_uid) IN (SELECT * FROM unnest($1::text[], $2::text[]))"
    ))
    .bind(&organizations)
    .bind(&uids)
    .fetch_all(&mut *conn)
    .await?
    .iter()
    .map(record)
    .collect::<Result<_, _>>()?;
    let existing_ids: Vec<Uuid> = existing.iter().map(|r| r.id).collect();
    let stored: HashMap<Uuid, Vec<u8>> =
        sqlx::query_as("SELECT submission_id, content FROM documents WHERE submission_id = ANY($1)")
            .bind(&existing_ids)
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .collect();
    // What each document is (lifecycle::seen): a stored submission, the first of its key in
    // the batch (new), or a repeat of an earlier one in the batch.
    let keys: Vec<(&str, &str)> = batch.iter().map(|n| (n.organization.as_str(), n.local_uid.as_str())).collect();
    let stored_keys: Vec<(&str, &str)> =
        existing.iter().map(|r| (r.organization.as_str(), r.local_uid.as_str())).collect();
    let found = seen(&keys, &stored_keys);
    let new: Vec<&NewSubmission> =
        batch.iter().zip(&found).filter(|(_, f)| matches!(f, Seen::First)).map(|(n, _)| n).collect();
    let mut created: HashMap<Uuid, SubmissionRecord> = HashMap::new();
    if !new.is_empty() {
        let requests = new
            .iter()
            .map(|n| serde_json::to_value(&n.request).map_err(|e| StoreError::Corrupt(e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        let warnings = new
            .iter()
            .map(|n| serde_json::to_value(&n.warnings).map_err(|e| StoreError::Corrupt(e.to_string())))
            .collect::<Result<Vec<_>, _>>()?;
        let rows = sqlx::query(&format!(
            "WITH input AS (
                 SELECT * FROM unnest($1::uuid[], $2::text[], $3::text[], $4::int[], $5::bigint[], $6::bigint[],
                     $7::jsonb[], $8::timestamptz[], $9::bytea[], $10::text[], $11::text[], $12::jsonb[])
                 AS t(id, organization, local_uid, kind, checksum, byte_size, request, created_at, content, actor,
                     detail, warnings)),
             s AS (
                 INSERT INTO submissions (id, organization, local_uid, kind, status, checksum, byte_size, request,
                     attempts, next_attempt_at, errors, warnings, created_at, updated_at)
                 SELECT id, organization, local_uid, kind, 'queued', checksum, byte_size, request, 0, created_at, '[]',
                     warnings, created_at, created_at FROM input
                 RETURNING {COLUMNS}),
             d AS (INSERT INTO documents (submission_id, content) SELECT id, content FROM input),
             e AS (INSERT INTO submission_events (submission_id, at, status, actor, detail)
                 SELECT id, created_at, 'queued', actor, detail FROM input)
             SELECT * FROM s"
        ))
        .bind(new.iter().map(|n| n.id).collect::<Vec<_>>())
        .bind(new.iter().map(|n| n.organization.as_str()).collect::<Vec<_>>())
        .bind(new.iter().map(|n| n.local_uid.as_str()).collect::<Vec<_>>())
        .bind(new.iter().map(|n| n.kind as i32).collect::<Vec<_>>())
        .bind(new.iter().map(|n| i64::from(n.checksum)).collect::<Vec<_>>())
        .bind(new.iter().map(|n| n.content.len() as i64).collect::<Vec<_>>())
        .bind(requests)
        .bind(new.iter().map(|n| n.created_at).collect::<Vec<_>>())
        .bind(new.iter().map(|n| n.content.as_slice()).collect::<Vec<_>>())
        .bind(new.iter().map(|n| n.actor.as_str()).collect::<Vec<_>>())
        .bind(new.iter().map(|n| n.detail.as_str()).collect::<Vec<_>>())
        .bind(warnings)
        .fetch_all(&mut *conn)
        .await?;
        for row in &rows {
            let r = record(row)?;
            created.insert(r.id, r);
        }
    }
    PgStore::announce(conn).await?;
    let not_returned = || StoreError::Corrupt("an inserted row was not returned".into());
    Ok(batch
        .iter()
        .zip(&found)
        .map(|(n, f)| match *f {
            Seen::Stored(i) => {
                let r = &existing[i];
                let content = stored
                    .get(&r.id)
                    .ok_or_else(|| StoreError::Corrupt("a stored submission has no document".into()))?;
                Ok(repeated(r.clone(), content, &n.content))
            }
            Seen::First => created.get(&n.id).cloned().map(Intake::Created).ok_or_else(not_returned),
            Seen::RepeatOf(first) => {
                let original = &batch[first];
                let r = created.get(&original.id).ok_or_else(not_returned)?;
                Ok(repeated(r.clone(), &original.content, &n.content))
            }
        })
        .collect())
}

#[async_trait::async_trait]
impl Engine for PgStore {
    type Conn = PgConnection;
    type Write = sqlx::Transaction<'static, Postgres>;
    type Pooled = sqlx::pool::PoolConnection<Postgres>;
    type Turn = ();

    const BACKEND: Backend = Backend::Postgres;

    async fn write(&self) -> Result<Self::Write, StoreError> {
        Ok(self.pool.begin().await?)
    }

    async fn commit(tx: Self::Write) -> Result<(), StoreError> {
        Ok(tx.commit().await?)
    }

    async fn rollback(tx: Self::Write) -> Result<(), StoreError> {
        Ok(tx.rollback().await?)
    }

    async fn pooled(&self) -> Result<Self::Pooled, StoreError> {
        Ok(self.pool.acquire().await?)
    }

    async fn turn(&self) {}

    fn any(expr: &str, placeholder: &str) -> String {
        format!("{expr} = ANY({placeholder})")
    }

    const SKIP_LOCKED: &'static str = " FOR UPDATE SKIP LOCKED";

    fn errors_contain<'a>(q: &mut Sql<'a>, field: &'static str, value: &'a str) -> Result<String, StoreError> {
        let p = q.arg(Arg::json(&serde_json::json!([{ field: value }]))?);
        Ok(format!("errors @> {p}"))
    }

    fn keyset(op: &str, at: &str, id: &str) -> String {
        format!("(created_at, id) {op} ({at}, {id})")
    }

    fn claim_fair(states: &str) -> String {
        // A skip scan over the organisations of the due index, then each one's earliest,
        // locked (others skip it).
        format!(
            "WITH RECURSIVE orgs(o) AS (
                 (SELECT organization FROM submissions WHERE next_attempt_at IS NOT NULL AND next_attempt_at <= $1
                  ORDER BY organization LIMIT 1)
                 UNION ALL
                 SELECT (SELECT s.organization FROM submissions s
                         WHERE s.next_attempt_at IS NOT NULL AND s.next_attempt_at <= $1 AND s.organization > orgs.o
                         ORDER BY s.organization LIMIT 1)
                 FROM orgs WHERE orgs.o IS NOT NULL)
             SELECT c.id, c.status FROM orgs g
             LEFT JOIN organization_turns t ON t.organization = g.o
             CROSS JOIN LATERAL (
                 SELECT id, status FROM submissions
                 WHERE organization = g.o AND next_attempt_at IS NOT NULL AND next_attempt_at <= $1
                     AND status IN ({states})
                 ORDER BY next_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) c
             WHERE g.o IS NOT NULL
             ORDER BY t.last_claimed_at NULLS FIRST, g.o
             LIMIT $2"
        )
    }

    fn claim_more(states: &str) -> String {
        format!(
            "SELECT id, status FROM submissions WHERE next_attempt_at IS NOT NULL AND next_attempt_at <= $1
                 AND status IN ({states}) AND NOT (id = ANY($3))
             ORDER BY next_attempt_at, id LIMIT $2 FOR UPDATE SKIP LOCKED"
        )
    }

    fn created_day<'a>(q: &mut Sql<'a>, utc_offset_seconds: i32) -> String {
        let p = q.arg(i64::from(utc_offset_seconds));
        format!("floor((extract(epoch FROM created_at) + {p}) / 86400)::bigint")
    }

    /// The kept counts and the notes not folded into them yet (`compact_counts`).
    const COUNTS: &'static str = "(SELECT organization, status, n FROM submission_counts
         UNION ALL SELECT organization, status, n::bigint FROM submission_count_deltas)";

    async fn announce(conn: &mut PgConnection) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_notify($1, '')").bind(OUTBOX_CHANNEL).execute(conn).await?;
        Ok(())
    }

    async fn lock_intake_key(conn: &mut PgConnection, key: &str) -> Result<(), StoreError> {
        sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))").bind(key).execute(conn).await?;
        Ok(())
    }

    async fn intake_together(
        &self,
        batch: &[NewSubmission],
    ) -> Result<Option<Vec<Result<Intake, StoreError>>>, StoreError> {
        intake_together(self, batch).await
    }

    async fn compact_counts(&self) -> Result<u64, StoreError> {
        // Each note is deleted once, whichever instance folds it; the kept rows are locked in
        // one order, so two instances folding at once never deadlock.
        let folded = sqlx::query(
            "WITH moved AS (
                 DELETE FROM submission_count_deltas
                 WHERE id IN (SELECT id FROM submission_count_deltas ORDER BY id LIMIT 50000 FOR UPDATE SKIP LOCKED)
                 RETURNING organization, status, n
             ), summed AS (
                 SELECT organization, status, SUM(n)::bigint AS n, COUNT(*) AS notes FROM moved GROUP BY organization, status
             ), kept AS (
                 INSERT INTO submission_counts (organization, status, n)
                 SELECT organization, status, n FROM summed ORDER BY organization, status
                 ON CONFLICT (organization, status) DO UPDATE SET n = submission_counts.n + EXCLUDED.n
             )
             SELECT COALESCE(SUM(notes), 0)::bigint FROM summed",
        )
        .fetch_one(self.pool())
        .await?;
        Ok(folded.try_get::<i64, _>(0)? as u64)
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
        super::check_applied(&MIGRATOR, &super::applied(&mut *self.pool.acquire().await?).await?)
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
    ) -> Result<QuotaRow, StoreError> {
        // The bucket refilled to now, at most its capacity (quota::refill), then the
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
        .bind(f64::from(burst.saturating_sub(1)))
        .bind(now)
        .bind(max_wait.as_secs_f64())
        .fetch_one(&self.pool)
        .await?;
        Ok(QuotaRow { tokens, granted, refilled_at })
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
                if let Err(e) = listener.listen(OUTBOX_CHANNEL).await {
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
}
