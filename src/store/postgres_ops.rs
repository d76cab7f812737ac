//! The operations half of the store on PostgreSQL.

use chrono::{DateTime, Utc};
use egisz_contract::Oid;
use sqlx::Row;
use sqlx::types::Json;

use super::StoreError;
use super::ops::{ConsoleSession, OpsStore};
use super::postgres::PgStore;
use super::postgres_outbox::{apply, states};
use crate::ops::{Action, AuditEntry, AuditFilter, CohortCount, DayCount, NewAudit, OpsChange, QueueFigures, Waiting};
use crate::submission::Status;

/// The organisations as a text array for `organization = ANY($n)`; `None`: every one.
fn org_array(orgs: Option<&[Oid]>) -> Option<Vec<String>> {
    orgs.map(|o| o.iter().map(|o| o.to_string()).collect())
}

fn status(s: String) -> Result<Status, StoreError> {
    s.parse().map_err(StoreError::Corrupt)
}

#[async_trait::async_trait]
impl OpsStore for PgStore {
    async fn operate(&self, changes: &[OpsChange<'_>], audit: &NewAudit) -> Result<u64, StoreError> {
        let mut tx = self.pool().begin().await?;
        let mut applied = 0;
        for c in changes {
            if apply(&mut tx, c.id, c.from, None, None, c.transition, audit.at).await? {
                applied += 1;
            }
        }
        sqlx::query(
            "INSERT INTO ops_audit (at, actor_id, actor_name, action, submission_id, filter, comment, count, organization)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(audit.at)
        .bind(audit.actor_id)
        .bind(&audit.actor_name)
        .bind(audit.action.as_str())
        .bind(audit.submission_id)
        .bind(audit.filter.as_ref().map(Json))
        .bind(&audit.comment)
        .bind(audit.count.unwrap_or(applied) as i64)
        .bind(&audit.organization)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(applied)
    }

    async fn audit_log(&self, f: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, at, actor_id, actor_name, action, organization, submission_id, filter, comment, count FROM ops_audit
             WHERE ($1::timestamptz IS NULL OR at >= $1) AND ($2::timestamptz IS NULL OR at < $2)
                 AND ($3::text IS NULL OR actor_name = $3 OR actor_id::text = $3) AND ($4::bigint IS NULL OR id < $4)
                 AND ($6::uuid IS NULL OR actor_id = $6 OR organization = ANY($7))
             ORDER BY id DESC LIMIT $5",
        )
        .bind(f.from)
        .bind(f.to)
        .bind(&f.actor)
        .bind(f.before)
        .bind(i64::from(f.limit))
        .bind(f.visible_to.as_ref().map(|(_, id)| *id))
        .bind(f.visible_to.as_ref().map(|(orgs, _)| orgs.iter().map(|o| o.to_string()).collect::<Vec<_>>()).unwrap_or_default())
        .fetch_all(self.pool())
        .await?;
        rows.iter()
            .map(|r| {
                let action: String = r.try_get("action")?;
                let filter: Option<Json<serde_json::Value>> = r.try_get("filter")?;
                Ok(AuditEntry {
                    id: r.try_get("id")?,
                    at: r.try_get("at")?,
                    actor_id: r.try_get("actor_id")?,
                    actor_name: r.try_get("actor_name")?,
                    action: Action::parse(&action)
                        .ok_or_else(|| StoreError::Corrupt(format!("unknown audit action {action:?}")))?,
                    organization: r.try_get("organization")?,
                    submission_id: r.try_get("submission_id")?,
                    filter: filter.map(|j| j.0),
                    comment: r.try_get("comment")?,
                    count: r.try_get::<i64, _>("count")? as u64,
                })
            })
            .collect()
    }

    async fn queue_figures(
        &self,
        waiting: &[Status],
        deadline: DateTime<Utc>,
        organizations: Option<&[Oid]>,
    ) -> Result<QueueFigures, StoreError> {
        let orgs = org_array(organizations);
        let rows = sqlx::query(
            "SELECT status, SUM(n)::bigint FROM (
                 SELECT organization, status, n FROM submission_counts
                 UNION ALL SELECT organization, status, n::bigint FROM submission_count_deltas
             ) c WHERE ($1::text[] IS NULL OR organization = ANY($1))
             GROUP BY status HAVING SUM(n) <> 0",
        )
        .bind(&orgs)
        .fetch_all(self.pool())
        .await?;
        let mut counts = Vec::new();
        for r in rows {
            counts.push((status(r.try_get(0)?)?, r.try_get::<i64, _>(1)? as u64));
        }
        // One index seek per state (status, created_at), rather than a sort of them all.
        let mut oldest: Option<Waiting> = None;
        for s in waiting {
            let row = sqlx::query(
                "SELECT id, created_at FROM submissions WHERE status = $1
                     AND ($2::text[] IS NULL OR organization = ANY($2)) ORDER BY created_at, id LIMIT 1",
            )
            .bind(s.as_str())
            .bind(&orgs)
            .fetch_optional(self.pool())
            .await?;
            if let Some(r) = row {
                let w = Waiting { id: r.try_get(0)?, status: *s, created_at: r.try_get(1)? };
                if oldest.as_ref().is_none_or(|o| w.created_at < o.created_at) {
                    oldest = Some(w);
                }
            }
        }
        let past: i64 = sqlx::query_scalar(
            "SELECT COUNT(*) FROM submissions WHERE status = ANY($1) AND created_at < $2
                 AND ($3::text[] IS NULL OR organization = ANY($3))",
        )
        .bind(states(waiting))
        .bind(deadline)
        .bind(&orgs)
        .fetch_one(self.pool())
        .await?;
        Ok(QueueFigures { counts, oldest_waiting: oldest, past_deadline: past as u64 })
    }

    async fn cohort(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        organizations: Option<&[Oid]>,
    ) -> Result<Vec<CohortCount>, StoreError> {
        let rows = sqlx::query(
            "SELECT organization, kind, status, last_error_code, COUNT(*) FROM submissions
             WHERE created_at >= $1 AND created_at < $2 AND ($3::text[] IS NULL OR organization = ANY($3))
             GROUP BY organization, kind, status, last_error_code",
        )
        .bind(from)
        .bind(to)
        .bind(org_array(organizations))
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(CohortCount {
                    organization: r.try_get(0)?,
                    kind: r.try_get::<i32, _>(1)? as u32,
                    status: status(r.try_get(2)?)?,
                    error_code: r.try_get(3)?,
                    count: r.try_get::<i64, _>(4)? as u64,
                })
            })
            .collect()
    }

    async fn daily(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        utc_offset_seconds: i32,
        organizations: Option<&[Oid]>,
    ) -> Result<Vec<DayCount>, StoreError> {
        let rows = sqlx::query(
            "SELECT floor((extract(epoch FROM created_at) + $1) / 86400)::bigint AS day, status, COUNT(*)
             FROM submissions WHERE created_at >= $2 AND created_at < $3
                 AND ($4::text[] IS NULL OR organization = ANY($4))
             GROUP BY day, status",
        )
        .bind(f64::from(utc_offset_seconds))
        .bind(from)
        .bind(to)
        .bind(org_array(organizations))
        .fetch_all(self.pool())
        .await?;
        rows.into_iter()
            .map(|r| {
                Ok(DayCount {
                    day: r.try_get(0)?,
                    status: status(r.try_get(1)?)?,
                    count: r.try_get::<i64, _>(2)? as u64,
                })
            })
            .collect()
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

    async fn statuses_of(&self, ids: &[uuid::Uuid]) -> Result<Vec<(Status, u64)>, StoreError> {
        let rows =
            sqlx::query("SELECT status, COUNT(*) FROM submissions WHERE id = ANY($1) GROUP BY status ORDER BY status")
                .bind(ids)
                .fetch_all(self.pool())
                .await?;
        rows.into_iter().map(|r| Ok((status(r.try_get(0)?)?, r.try_get::<i64, _>(1)? as u64))).collect()
    }

    async fn shared_secret(&self, name: &str, fresh: &[u8]) -> Result<Vec<u8>, StoreError> {
        sqlx::query("INSERT INTO gateway_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING")
            .bind(name)
            .bind(fresh)
            .execute(self.pool())
            .await?;
        Ok(sqlx::query_scalar("SELECT value FROM gateway_secrets WHERE name = $1")
            .bind(name)
            .fetch_one(self.pool())
            .await?)
    }

    async fn create_session(
        &self,
        token_hash: &[u8],
        client: uuid::Uuid,
        csrf_token: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO console_sessions (token_hash, client_id, csrf_token, created_at, expires_at)
             VALUES ($1, $2, $3, $4, $5)",
        )
        .bind(token_hash)
        .bind(client)
        .bind(csrf_token)
        .bind(now)
        .bind(expires_at)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn session(&self, token_hash: &[u8], now: DateTime<Utc>) -> Result<Option<ConsoleSession>, StoreError> {
        let row = sqlx::query(
            "SELECT c.*, s.token_hash AS s_hash, s.csrf_token AS s_csrf, s.created_at AS s_created, s.expires_at AS s_expires
             FROM console_sessions s JOIN api_clients c ON c.id = s.client_id
             WHERE s.token_hash = $1 AND s.expires_at > $2",
        )
        .bind(token_hash)
        .bind(now)
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(ConsoleSession {
                token_hash: r.try_get("s_hash")?,
                client: PgStore::client_from_row(&r)?,
                csrf_token: r.try_get("s_csrf")?,
                created_at: r.try_get("s_created")?,
                expires_at: r.try_get("s_expires")?,
            })
        })
        .transpose()
    }

    async fn delete_session(&self, token_hash: &[u8]) -> Result<(), StoreError> {
        sqlx::query("DELETE FROM console_sessions WHERE token_hash = $1").bind(token_hash).execute(self.pool()).await?;
        Ok(())
    }

    async fn purge_sessions(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM console_sessions WHERE expires_at <= $1")
            .bind(now)
            .execute(self.pool())
            .await?
            .rows_affected())
    }
}
