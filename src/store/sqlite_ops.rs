//! The operations half of the store on SQLite.

use chrono::{DateTime, Utc};
use egisz_contract::Oid;
use sqlx::Row;
use sqlx::types::Json;

use super::ops::{ConsoleSession, OpsStore};
use super::sqlite::{SqliteStore, from_ms, ms};
use super::sqlite_outbox::{apply, states};
use super::{StoreError, parse_uuid};
use crate::ops::{Action, AuditEntry, AuditFilter, CohortCount, DayCount, NewAudit, OpsChange, QueueFigures, Waiting};
use crate::submission::Status;

/// ` AND organization IN (?, …)` for `orgs` (bound by the caller), or nothing.
fn orgs_sql(orgs: Option<&[Oid]>) -> String {
    match orgs {
        Some([]) => " AND 0".into(),
        Some(o) => format!(" AND organization IN ({})", vec!["?"; o.len()].join(", ")),
        None => String::new(),
    }
}

fn bind_orgs<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    orgs: Option<&'q [Oid]>,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
    for o in orgs.unwrap_or_default() {
        q = q.bind(o.as_str());
    }
    q
}

fn status(s: String) -> Result<Status, StoreError> {
    s.parse().map_err(StoreError::Corrupt)
}

#[async_trait::async_trait]
impl OpsStore for SqliteStore {
    async fn operate(&self, changes: &[OpsChange<'_>], audit: &NewAudit) -> Result<u64, StoreError> {
        let (_turn, mut tx) = self.begin_write().await?;
        let mut applied = 0;
        for c in changes {
            if apply(&mut tx, c.id, c.from, None, None, c.transition, audit.at).await? {
                applied += 1;
            }
        }
        sqlx::query(
            "INSERT INTO ops_audit (at, actor_id, actor_name, action, organization, submission_id, filter, comment, count)
             VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)",
        )
        .bind(ms(audit.at))
        .bind(audit.actor_id.to_string())
        .bind(&audit.actor_name)
        .bind(audit.action.as_str())
        .bind(&audit.organization)
        .bind(audit.submission_id.map(|u| u.to_string()))
        .bind(audit.filter.as_ref().map(Json))
        .bind(&audit.comment)
        .bind(audit.count.unwrap_or(applied) as i64)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(applied)
    }

    async fn audit_log(&self, f: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        let visible = match &f.visible_to {
            None => String::new(),
            Some((orgs, _)) if orgs.is_empty() => " AND actor_id = ?6".to_owned(),
            Some((orgs, _)) => {
                let list = (0..orgs.len()).map(|i| format!("?{}", i + 7)).collect::<Vec<_>>().join(", ");
                format!(" AND (actor_id = ?6 OR organization IN ({list}))")
            }
        };
        let sql = format!(
            "SELECT id, at, actor_id, actor_name, action, organization, submission_id, filter, comment, count FROM ops_audit
             WHERE (?1 IS NULL OR at >= ?1) AND (?2 IS NULL OR at < ?2)
                 AND (?3 IS NULL OR actor_name = ?3 OR actor_id = ?3) AND (?4 IS NULL OR id < ?4){visible}
             ORDER BY id DESC LIMIT ?5"
        );
        let mut q = sqlx::query(&sql)
            .bind(f.from.map(ms))
            .bind(f.to.map(ms))
            .bind(&f.actor)
            .bind(f.before)
            .bind(i64::from(f.limit));
        if let Some((orgs, id)) = &f.visible_to {
            q = q.bind(id.to_string());
            for o in orgs {
                q = q.bind(o.as_str());
            }
        }
        let rows = q.fetch_all(self.pool()).await?;
        rows.iter()
            .map(|r| {
                let action: String = r.try_get("action")?;
                let filter: Option<Json<serde_json::Value>> = r.try_get("filter")?;
                Ok(AuditEntry {
                    id: r.try_get("id")?,
                    at: from_ms(r.try_get("at")?)?,
                    actor_id: parse_uuid(r.try_get("actor_id")?)?,
                    actor_name: r.try_get("actor_name")?,
                    action: Action::parse(&action)
                        .ok_or_else(|| StoreError::Corrupt(format!("unknown audit action {action:?}")))?,
                    organization: r.try_get("organization")?,
                    submission_id: r.try_get::<Option<&str>, _>("submission_id")?.map(parse_uuid).transpose()?,
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
        let orgs = orgs_sql(organizations);
        let sql = format!(
            "SELECT status, SUM(n) FROM submission_counts WHERE 1 = 1{orgs} GROUP BY status HAVING SUM(n) <> 0"
        );
        let rows = bind_orgs(sqlx::query(&sql), organizations).fetch_all(self.pool()).await?;
        let mut counts = Vec::new();
        for r in rows {
            counts.push((status(r.try_get(0)?)?, r.try_get::<i64, _>(1)? as u64));
        }
        // One index seek per state (status, created_at), rather than a sort of them all.
        let mut oldest: Option<Waiting> = None;
        let sql =
            format!("SELECT id, created_at FROM submissions WHERE status = ?{orgs} ORDER BY created_at, id LIMIT 1");
        for s in waiting {
            let q = bind_orgs(sqlx::query(&sql).bind(s.as_str()), organizations);
            if let Some(r) = q.fetch_optional(self.pool()).await? {
                let w = Waiting { id: parse_uuid(r.try_get(0)?)?, status: *s, created_at: from_ms(r.try_get(1)?)? };
                if oldest.as_ref().is_none_or(|o| w.created_at < o.created_at) {
                    oldest = Some(w);
                }
            }
        }
        let sql =
            format!("SELECT COUNT(*) FROM submissions WHERE status IN ({}) AND created_at < ?{orgs}", states(waiting));
        let past: i64 =
            bind_orgs(sqlx::query(&sql).bind(ms(deadline)), organizations).fetch_one(self.pool()).await?.try_get(0)?;
        Ok(QueueFigures { counts, oldest_waiting: oldest, past_deadline: past as u64 })
    }

    async fn cohort(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        organizations: Option<&[Oid]>,
    ) -> Result<Vec<CohortCount>, StoreError> {
        let sql = format!(
            "SELECT organization, kind, status, last_error_code, COUNT(*) FROM submissions
             WHERE created_at >= ? AND created_at < ?{} GROUP BY organization, kind, status, last_error_code",
            orgs_sql(organizations)
        );
        let rows =
            bind_orgs(sqlx::query(&sql).bind(ms(from)).bind(ms(to)), organizations).fetch_all(self.pool()).await?;
        rows.into_iter()
            .map(|r| {
                Ok(CohortCount {
                    organization: r.try_get(0)?,
                    kind: r.try_get::<i64, _>(1)? as u32,
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
        let sql = format!(
            "SELECT (created_at + ?) / 86400000 AS day, status, COUNT(*) FROM submissions
             WHERE created_at >= ? AND created_at < ?{} GROUP BY day, status",
            orgs_sql(organizations)
        );
        let q = sqlx::query(&sql).bind(i64::from(utc_offset_seconds) * 1000).bind(ms(from)).bind(ms(to));
        let rows = bind_orgs(q, organizations).fetch_all(self.pool()).await?;
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

    async fn statuses_of(&self, ids: &[uuid::Uuid]) -> Result<Vec<(Status, u64)>, StoreError> {
        let mut counts: std::collections::BTreeMap<String, u64> = std::collections::BTreeMap::new();
        for chunk in ids.chunks(500) {
            let sql = format!(
                "SELECT status, COUNT(*) FROM submissions WHERE id IN ({}) GROUP BY status",
                vec!["?"; chunk.len()].join(", ")
            );
            let mut q = sqlx::query(&sql);
            for id in chunk {
                q = q.bind(id.to_string());
            }
            for r in q.fetch_all(self.pool()).await? {
                *counts.entry(r.try_get(0)?).or_default() += r.try_get::<i64, _>(1)? as u64;
            }
        }
        counts.into_iter().map(|(s, n)| Ok((status(s)?, n))).collect()
    }

    async fn shared_secret(&self, name: &str, fresh: &[u8]) -> Result<Vec<u8>, StoreError> {
        {
            let _turn = self.write_turn().await;
            sqlx::query("INSERT INTO gateway_secrets (name, value) VALUES (?, ?) ON CONFLICT (name) DO NOTHING")
                .bind(name)
                .bind(fresh)
                .execute(self.pool())
                .await?;
        }
        Ok(sqlx::query_scalar("SELECT value FROM gateway_secrets WHERE name = ?")
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
        let _turn = self.write_turn().await;
        sqlx::query(
            "INSERT INTO console_sessions (token_hash, client_id, csrf_token, created_at, expires_at) VALUES (?, ?, ?, ?, ?)",
        )
        .bind(token_hash)
        .bind(client.to_string())
        .bind(csrf_token)
        .bind(ms(now))
        .bind(ms(expires_at))
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn session(&self, token_hash: &[u8], now: DateTime<Utc>) -> Result<Option<ConsoleSession>, StoreError> {
        let row = sqlx::query(
            "SELECT c.*, s.token_hash AS s_hash, s.csrf_token AS s_csrf, s.created_at AS s_created, s.expires_at AS s_expires
             FROM console_sessions s JOIN api_clients c ON c.id = s.client_id
             WHERE s.token_hash = ? AND s.expires_at > ?",
        )
        .bind(token_hash)
        .bind(ms(now))
        .fetch_optional(self.pool())
        .await?;
        row.map(|r| {
            Ok(ConsoleSession {
                token_hash: r.try_get("s_hash")?,
                client: SqliteStore::client_from_row(&r)?,
                csrf_token: r.try_get("s_csrf")?,
                created_at: from_ms(r.try_get("s_created")?)?,
                expires_at: from_ms(r.try_get("s_expires")?)?,
            })
        })
        .transpose()
    }

    async fn delete_session(&self, token_hash: &[u8]) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        sqlx::query("DELETE FROM console_sessions WHERE token_hash = ?").bind(token_hash).execute(self.pool()).await?;
        Ok(())
    }

    async fn purge_sessions(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let _turn = self.write_turn().await;
        Ok(sqlx::query("DELETE FROM console_sessions WHERE expires_at <= ?")
            .bind(ms(now))
            .execute(self.pool())
            .await?
            .rows_affected())
    }
}
