//! The outbox on SQLite. Writing transactions begin `IMMEDIATE`, so two writers never
//! deadlock on a lock upgrade; claims are serialised by SQLite's single writer.

use chrono::{DateTime, Utc};
use egisz_contract::Oid;
use sqlx::Row;
use sqlx::sqlite::{SqliteConnection, SqliteRow};
use sqlx::types::Json;
use uuid::Uuid;

use super::outbox::{CallbackChange, CallbackRecord, Outbox};
use super::sqlite::{SqliteStore, from_ms, ms};
use super::{StoreError, parse_uuid};
use crate::lifecycle::{CLAIM, Step};
use crate::submission::{Claimed, Event, Intake, ListFilter, NewSubmission, Status, SubmissionRecord, Transition};

const COLUMNS: &str = "id, organization, local_uid, kind, status, checksum, byte_size, request, attempts, next_attempt_at, \
     lease_owner, lease_until, emdr_id, registered_at, registered_at_by_gateway, errors, warnings, awaiting_since, current_message_id, checks, inconclusive, check_at, created_at, updated_at, \
     COALESCE(schedule_from, created_at) AS schedule_from";

fn opt_ms(v: Option<i64>) -> Result<Option<DateTime<Utc>>, StoreError> {
    v.map(from_ms).transpose()
}

fn record(row: &SqliteRow) -> Result<SubmissionRecord, StoreError> {
    let status: String = row.try_get("status")?;
    let organization: String = row.try_get("organization")?;
    let request: Json<egisz_contract::remd::RegisterDocument> = row
        .try_get("request")
        .map_err(|e| StoreError::Corrupt(format!("submissions.request is not readable ({})", super::error_kind(&e))))?;
    let errors: Json<Vec<crate::submission::SubmissionError>> = row.try_get("errors")?;
    let warnings: Json<Vec<crate::submission::IntakeWarning>> = row.try_get("warnings")?;
    Ok(SubmissionRecord {
        id: parse_uuid(row.try_get("id")?)?,
        organization: Oid::parse(&organization).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        local_uid: row.try_get("local_uid")?,
        kind: row.try_get::<i64, _>("kind")? as u32,
        status: status.parse().map_err(StoreError::Corrupt)?,
        checksum: row.try_get::<i64, _>("checksum")? as u32,
        byte_size: row.try_get::<i64, _>("byte_size")? as u64,
        request: request.0,
        attempts: row.try_get::<i64, _>("attempts")? as u32,
        next_attempt_at: opt_ms(row.try_get("next_attempt_at")?)?,
        schedule_from: from_ms(row.try_get("schedule_from")?)?,
        lease_owner: row.try_get("lease_owner")?,
        lease_until: opt_ms(row.try_get("lease_until")?)?,
        emdr_id: row.try_get("emdr_id")?,
        registered_at: opt_ms(row.try_get("registered_at")?)?,
        registered_at_by_gateway: row.try_get::<bool, _>("registered_at_by_gateway")?,
        errors: errors.0,
        warnings: warnings.0,
        awaiting_since: opt_ms(row.try_get("awaiting_since")?)?,
        current_message_id: row.try_get("current_message_id")?,
        checks: row.try_get::<i64, _>("checks")? as u32,
        inconclusive: row.try_get::<i64, _>("inconclusive")? as u32,
        check_at: opt_ms(row.try_get("check_at")?)?,
        created_at: from_ms(row.try_get("created_at")?)?,
        updated_at: from_ms(row.try_get("updated_at")?)?,
    })
}

async fn event(
    conn: &mut SqliteConnection,
    id: &str,
    at: DateTime<Utc>,
    status: Status,
    actor: &str,
    detail: &str,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO submission_events (submission_id, at, status, actor, detail) VALUES (?, ?, ?, ?, ?)")
        .bind(id)
        .bind(ms(at))
        .bind(status.as_str())
        .bind(actor)
        .bind(detail)
        .execute(conn)
        .await?;
    Ok(())
}

/// The guarded state change of [`Outbox::transition`], inside the caller's transaction.
pub(super) async fn apply(
    conn: &mut SqliteConnection,
    id: Uuid,
    from: &[Status],
    lease_owner: Option<&str>,
    current_message: Option<&str>,
    t: &Transition,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let id = id.to_string();
    let states = states(from);
    let errors = t.errors.as_ref().map(Json);
    let last_code = t.errors.as_ref().and_then(|e| e.first()).map(|e| e.code.clone());
    let updated = sqlx::query(&format!(
        "UPDATE submissions SET status = ?1, next_attempt_at = ?2, lease_owner = NULL, lease_until = NULL,
             emdr_id = COALESCE(?3, emdr_id), registered_at = COALESCE(?4, registered_at),
             registered_at_by_gateway = COALESCE(?17, registered_at_by_gateway),
             errors = COALESCE(?5, errors), last_error_code = CASE WHEN ?6 THEN ?7 ELSE last_error_code END,
             awaiting_since = ?8, updated_at = ?9, check_at = ?10,
             inconclusive = CASE WHEN ?12 THEN 0 ELSE COALESCE(?11, inconclusive) END,
             attempts = CASE WHEN ?12 THEN 0 ELSE COALESCE(?16, attempts) END,
             checks = CASE WHEN ?12 THEN 0 ELSE COALESCE(?18, checks) END,
             schedule_from = CASE WHEN ?12 THEN ?9 ELSE schedule_from END
         WHERE id = ?13 AND status IN ({states}) AND (?14 IS NULL OR lease_owner = ?14)
             AND (?15 IS NULL OR current_message_id = ?15)"
    ))
    .bind(t.to.as_str())
    .bind(t.next_attempt_at.map(ms))
    .bind(&t.emdr_id)
    .bind(t.registered_at.map(ms))
    .bind(errors)
    .bind(t.errors.is_some())
    .bind(last_code)
    .bind(t.awaiting_since.map(ms))
    .bind(ms(at))
    .bind(t.check_at.map(ms))
    .bind(t.inconclusive.map(i64::from))
    .bind(t.restart_schedule)
    .bind(&id)
    .bind(lease_owner)
    .bind(current_message)
    .bind(t.attempts.map(i64::from))
    .bind(t.registered_at_by_gateway)
    .bind(t.checks.map(i64::from))
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if updated == 0 {
        return Ok(false);
    }
    event(conn, &id, at, t.to, &t.actor, &t.detail).await?;
    Ok(true)
}

/// Applies a sweep's step to each of `ids` (guarded by its states), each with its event.
/// Returns how many moved.
async fn apply_sweep(
    conn: &mut SqliteConnection,
    ids: &[String],
    step: &Step,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let mut moved = 0;
    for id in ids {
        let id = super::parse_uuid(id)?;
        if apply(conn, id, step.from, None, None, &step.transition, now).await? {
            moved += 1;
        }
    }
    Ok(moved)
}

async fn insert_callback(conn: &mut SqliteConnection, cb: &CallbackRecord) -> Result<bool, StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO remd_callbacks (received_at, operation, message_id, relates_to, submission_id, outcome, payload)
         VALUES (?, ?, ?, ?, ?, ?, ?) ON CONFLICT (operation, message_id) DO NOTHING",
    )
    .bind(ms(cb.received_at))
    .bind(&cb.operation)
    .bind(&cb.message_id)
    .bind(&cb.relates_to)
    .bind(cb.submission_id.map(|u| u.to_string()))
    .bind(&cb.outcome)
    .bind(Json(&cb.payload))
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted > 0)
}

async fn fetch(conn: &mut SqliteConnection, id: &str) -> Result<Option<SubmissionRecord>, StoreError> {
    sqlx::query(&format!("SELECT {COLUMNS} FROM submissions WHERE id = ?"))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(record)
        .transpose()
}

/// One document of an intake batch, inside its savepoint.
async fn intake_one(conn: &mut SqliteConnection, new: &NewSubmission) -> Result<Intake, StoreError> {
    let existing = sqlx::query(&format!("SELECT {COLUMNS} FROM submissions WHERE organization = ? AND local_uid = ?"))
        .bind(new.organization.as_str())
        .bind(&new.local_uid)
        .fetch_optional(&mut *conn)
        .await?;
    if let Some(row) = existing {
        let found = record(&row)?;
        let content: Vec<u8> = sqlx::query_scalar("SELECT content FROM documents WHERE submission_id = ?")
            .bind(found.id.to_string())
            .fetch_one(&mut *conn)
            .await?;
        return Ok(if content == new.content { Intake::Existing(found) } else { Intake::Conflict(found) });
    }
    let id = new.id.to_string();
    let at = ms(new.created_at);
    sqlx::query(
        "INSERT INTO submissions (id, organization, local_uid, kind, status, checksum, byte_size, request, attempts,
             next_attempt_at, errors, warnings, created_at, updated_at)
         VALUES (?, ?, ?, ?, 'queued', ?, ?, ?, 0, ?, '[]', ?, ?, ?)",
    )
    .bind(&id)
    .bind(new.organization.as_str())
    .bind(&new.local_uid)
    .bind(i64::from(new.kind))
    .bind(i64::from(new.checksum))
    .bind(new.content.len() as i64)
    .bind(Json(&new.request))
    .bind(at)
    .bind(Json(&new.warnings))
    .bind(at)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    sqlx::query("INSERT INTO documents (submission_id, content) VALUES (?, ?)")
        .bind(&id)
        .bind(&new.content)
        .execute(&mut *conn)
        .await?;
    event(conn, &id, new.created_at, Status::Queued, &new.actor, &new.detail).await?;
    let created = fetch(conn, &id).await?.ok_or_else(|| StoreError::Corrupt("inserted row vanished".into()))?;
    Ok(Intake::Created(created))
}

impl SqliteStore {
    /// In one writing transaction: the ids `select` finds (at most 500) take `step`, each
    /// with its event. Returns how many were selected.
    async fn sweep_selected<'q>(
        &self,
        select: sqlx::query::QueryScalar<'q, sqlx::Sqlite, String, sqlx::sqlite::SqliteArguments<'q>>,
        step: &Step,
        now: DateTime<Utc>,
    ) -> Result<u64, StoreError> {
        let (_turn, mut tx) = self.begin_write().await?;
        let ids: Vec<String> = select.fetch_all(&mut *tx).await?;
        let moved = apply_sweep(&mut tx, &ids, step, now).await?;
        tx.commit().await?;
        Ok(moved)
    }
}

#[async_trait::async_trait]
impl Outbox for SqliteStore {
    async fn intake_batch(&self, batch: &[NewSubmission]) -> Result<Vec<Result<Intake, StoreError>>, StoreError> {
        let (_turn, mut tx) = self.begin_write().await?;
        let mut results = Vec::with_capacity(batch.len());
        for new in batch {
            let mut savepoint = sqlx::Acquire::begin(&mut *tx).await?;
            match intake_one(&mut savepoint, new).await {
                Ok(found) => {
                    savepoint.commit().await?;
                    results.push(Ok(found));
                }
                Err(e) => {
                    savepoint.rollback().await?;
                    results.push(Err(e));
                }
            }
        }
        tx.commit().await?;
        Ok(results)
    }

    async fn submission(&self, id: Uuid) -> Result<Option<SubmissionRecord>, StoreError> {
        let mut conn = self.pool().acquire().await?;
        fetch(&mut conn, &id.to_string()).await
    }

    async fn events(&self, id: Uuid) -> Result<Vec<Event>, StoreError> {
        let rows =
            sqlx::query("SELECT at, status, actor, detail FROM submission_events WHERE submission_id = ? ORDER BY id")
                .bind(id.to_string())
                .fetch_all(self.pool())
                .await?;
        rows.iter()
            .map(|r| {
                let status: String = r.try_get("status")?;
                Ok(Event {
                    at: from_ms(r.try_get("at")?)?,
                    status: status.parse().map_err(StoreError::Corrupt)?,
                    actor: r.try_get("actor")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }

    async fn list_submissions(&self, f: &ListFilter) -> Result<Vec<SubmissionRecord>, StoreError> {
        let Some((mut sql, mut binds)) = filter_sql(f) else { return Ok(Vec::new()) };
        if let Some((at, id)) = f.before {
            sql.push_str(if f.oldest_first {
                " AND (created_at > ? OR (created_at = ? AND id > ?))"
            } else {
                " AND (created_at < ? OR (created_at = ? AND id < ?))"
            });
            binds.push(Bind::Int(ms(at)));
            binds.push(Bind::Int(ms(at)));
            binds.push(Bind::Text(id.to_string()));
        }
        sql.push_str(if f.oldest_first {
            " ORDER BY created_at, id LIMIT ?"
        } else {
            " ORDER BY created_at DESC, id DESC LIMIT ?"
        });
        binds.push(Bind::Int(i64::from(f.limit)));
        let sql = format!("SELECT {COLUMNS} FROM submissions WHERE 1 = 1{sql}");
        bind_all(sqlx::query(&sql), binds).fetch_all(self.pool()).await?.iter().map(record).collect()
    }

    async fn count_submissions(&self, f: &ListFilter) -> Result<u64, StoreError> {
        let Some((sql, binds)) = filter_sql(f) else { return Ok(0) };
        let sql = format!("SELECT COUNT(*) FROM submissions WHERE 1 = 1{sql}");
        let row = bind_all(sqlx::query(&sql), binds).fetch_one(self.pool()).await?;
        Ok(row.try_get::<i64, _>(0)? as u64)
    }

    async fn document_content(&self, id: Uuid) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(sqlx::query_scalar("SELECT content FROM documents WHERE submission_id = ?")
            .bind(id.to_string())
            .fetch_optional(self.pool())
            .await?)
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        owner: &str,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<Claimed>, StoreError> {
        let (_turn, mut tx) = self.begin_write().await?;
        let claimable: Vec<Status> = CLAIM.sends_from.iter().chain(CLAIM.reconciles_from).copied().collect();
        // Fair to every organisation (lifecycle::CLAIM): the earliest due submission of each
        // organisation with due work, the one served longest ago first (a skip scan over the
        // organisations of the due index), then, if the claim wants more, the earliest due.
        let mut due: Vec<(String, String)> = sqlx::query_as(&format!(
            "WITH RECURSIVE orgs(o) AS (
                 SELECT (SELECT organization FROM submissions WHERE next_attempt_at IS NOT NULL AND next_attempt_at <= ?1
                         ORDER BY organization LIMIT 1)
                 UNION ALL
                 SELECT (SELECT s.organization FROM submissions s
                         WHERE s.next_attempt_at IS NOT NULL AND s.next_attempt_at <= ?1 AND s.organization > orgs.o
                         ORDER BY s.organization LIMIT 1)
                 FROM orgs WHERE orgs.o IS NOT NULL)
             SELECT (SELECT id FROM submissions WHERE organization = g.o AND next_attempt_at IS NOT NULL
                         AND next_attempt_at <= ?1 AND status IN ({states}) ORDER BY next_attempt_at, id LIMIT 1) AS id,
                    (SELECT status FROM submissions WHERE organization = g.o AND next_attempt_at IS NOT NULL
                         AND next_attempt_at <= ?1 AND status IN ({states}) ORDER BY next_attempt_at, id LIMIT 1) AS status
             FROM orgs g LEFT JOIN organization_turns t ON t.organization = g.o
             WHERE g.o IS NOT NULL AND id IS NOT NULL
             ORDER BY t.last_claimed_at IS NOT NULL, t.last_claimed_at, g.o
             LIMIT ?2",
            states = states(&claimable)
        ))
        .bind(ms(now))
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        if due.len() < limit as usize {
            let taken: Vec<String> = due.iter().map(|(id, _)| format!("'{id}'")).collect();
            let more: Vec<(String, String)> = sqlx::query_as(&format!(
                "SELECT id, status FROM submissions WHERE next_attempt_at IS NOT NULL AND next_attempt_at <= ?
                     AND status IN ({}) AND id NOT IN ({}) ORDER BY next_attempt_at, id LIMIT ?",
                states(&claimable),
                if taken.is_empty() { "''".to_owned() } else { taken.join(", ") }
            ))
            .bind(ms(now))
            .bind(i64::from(limit) - due.len() as i64)
            .fetch_all(&mut *tx)
            .await?;
            due.extend(more);
        }
        let mut claimed = Vec::with_capacity(due.len());
        for (id, status) in due {
            let from: Status = status.parse().map_err(StoreError::Corrupt)?;
            let sending = CLAIM.sends_from.contains(&from);
            sqlx::query(
                "UPDATE submissions SET status = ?, attempts = attempts + ?, next_attempt_at = NULL,
                     checks = CASE WHEN ? THEN 0 ELSE checks + 1 END,
                     inconclusive = CASE WHEN ? THEN 0 ELSE inconclusive END,
                     lease_owner = ?, lease_until = ?, updated_at = ? WHERE id = ?",
            )
            .bind(if sending { Status::Sending.as_str() } else { from.as_str() })
            .bind(i64::from(sending))
            .bind(sending)
            .bind(sending)
            .bind(owner)
            .bind(ms(lease_until))
            .bind(ms(now))
            .bind(&id)
            .execute(&mut *tx)
            .await?;
            if sending {
                event(&mut tx, &id, now, Status::Sending, "relay", CLAIM.send_detail).await?;
            }
            let record =
                fetch(&mut tx, &id).await?.ok_or_else(|| StoreError::Corrupt("claimed row vanished".into()))?;
            sqlx::query(
                "INSERT INTO organization_turns (organization, last_claimed_at) VALUES (?, ?)
                 ON CONFLICT (organization) DO UPDATE SET last_claimed_at = MAX(last_claimed_at, excluded.last_claimed_at)",
            )
            .bind(record.organization.as_str())
            .bind(ms(now))
            .execute(&mut *tx)
            .await?;
            claimed.push(Claimed { record, claimed_from: from });
        }
        tx.commit().await?;
        Ok(claimed)
    }

    async fn note_message(&self, id: Uuid, message_id: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        let (_turn, mut tx) = self.begin_write().await?;
        sqlx::query("INSERT INTO submission_messages (message_id, submission_id, sent_at) VALUES (?, ?, ?)")
            .bind(message_id)
            .bind(id.to_string())
            .bind(ms(at))
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE submissions SET current_message_id = ? WHERE id = ?")
            .bind(message_id)
            .bind(id.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(())
    }

    async fn transition(
        &self,
        id: Uuid,
        from: &[Status],
        lease_owner: Option<&str>,
        t: &Transition,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let (_turn, mut tx) = self.begin_write().await?;
        let applied = apply(&mut tx, id, from, lease_owner, None, t, at).await?;
        if applied {
            tx.commit().await?
        } else {
            tx.rollback().await?
        }
        Ok(applied)
    }

    async fn apply_callback(
        &self,
        cb: &CallbackRecord,
        change: Option<CallbackChange<'_>>,
        at: DateTime<Utc>,
    ) -> Result<(bool, bool), StoreError> {
        let (_turn, mut tx) = self.begin_write().await?;
        let first = insert_callback(&mut tx, cb).await?;
        let applied = match (first, change) {
            (true, Some(c)) => apply(&mut tx, c.id, c.from, None, c.current_message, c.transition, at).await?,
            _ => false,
        };
        tx.commit().await?;
        Ok((first, applied))
    }

    async fn record_event(&self, id: Uuid, actor: &str, detail: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        let _turn = self.write_turn().await;
        sqlx::query(
            "INSERT INTO submission_events (submission_id, at, status, actor, detail)
             SELECT id, ?, status, ?, ? FROM submissions WHERE id = ?",
        )
        .bind(ms(at))
        .bind(actor)
        .bind(detail)
        .bind(id.to_string())
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn submission_by_message(&self, message_id: &str) -> Result<Option<SubmissionRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM submissions WHERE id = (SELECT submission_id FROM submission_messages WHERE message_id = ?)"
        ))
        .bind(message_id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(record).transpose()
    }

    async fn messages(&self, id: Uuid) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT message_id FROM submission_messages WHERE submission_id = ? ORDER BY sent_at, message_id",
        )
        .bind(id.to_string())
        .fetch_all(self.pool())
        .await?)
    }

    async fn submission_by_emdr_id(&self, emdr_id: &str) -> Result<Option<SubmissionRecord>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM submissions WHERE emdr_id = ?"))
            .bind(emdr_id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(record).transpose()
    }

    async fn reap_leases(&self, now: DateTime<Utc>, step: &Step) -> Result<u64, StoreError> {
        let sql = format!(
            "SELECT id FROM submissions WHERE lease_owner IS NOT NULL AND lease_until < ? AND status IN ({}) LIMIT 500",
            states(step.from)
        );
        self.sweep_selected(sqlx::query_scalar(&sql).bind(ms(now)), step, now).await
    }

    async fn expire_awaiting(&self, before: DateTime<Utc>, now: DateTime<Utc>, step: &Step) -> Result<u64, StoreError> {
        let sql = format!(
            "SELECT id FROM submissions WHERE status = 'awaiting_result' AND status IN ({})
                 AND (check_at <= ? OR (check_at IS NULL AND awaiting_since < ?)) LIMIT 500",
            states(step.from)
        );
        self.sweep_selected(sqlx::query_scalar(&sql).bind(ms(now)).bind(ms(before)), step, now).await
    }

    async fn renew_lease(&self, id: Uuid, owner: &str, until: DateTime<Utc>) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let renewed = sqlx::query("UPDATE submissions SET lease_until = ? WHERE id = ? AND lease_owner = ?")
            .bind(ms(until))
            .bind(id.to_string())
            .bind(owner)
            .execute(self.pool())
            .await?
            .rows_affected();
        Ok(renewed > 0)
    }

    async fn release_leases_of(&self, prefix: &str, now: DateTime<Utc>, step: &Step) -> Result<u64, StoreError> {
        let sql = format!(
            "SELECT id FROM submissions WHERE lease_owner IS NOT NULL
                 AND substr(lease_owner, 1, length(?1)) = ?1 AND status IN ({}) LIMIT 500",
            states(step.from)
        );
        let mut released = 0;
        loop {
            let n = self.sweep_selected(sqlx::query_scalar(&sql).bind(prefix), step, now).await?;
            released += n;
            if n < 500 {
                return Ok(released);
            }
        }
    }

    async fn record_callback(&self, cb: &CallbackRecord) -> Result<bool, StoreError> {
        let _turn = self.write_turn().await;
        let mut conn = self.pool().acquire().await?;
        insert_callback(&mut conn, cb).await
    }

    async fn purge_callbacks(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        let _turn = self.write_turn().await;
        Ok(sqlx::query("DELETE FROM remd_callbacks WHERE received_at < ?")
            .bind(ms(before))
            .execute(self.pool())
            .await?
            .rows_affected())
    }

    async fn count_by_status(&self) -> Result<Vec<(Status, u64)>, StoreError> {
        let rows: Vec<(String, i64)> =
            sqlx::query_as("SELECT status, COUNT(*) FROM submissions GROUP BY status").fetch_all(self.pool()).await?;
        rows.into_iter().map(|(s, n)| Ok((s.parse().map_err(StoreError::Corrupt)?, n as u64))).collect()
    }

    async fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        let v: Option<i64> =
            sqlx::query_scalar("SELECT MIN(next_attempt_at) FROM submissions WHERE next_attempt_at IS NOT NULL")
                .fetch_one(self.pool())
                .await?;
        opt_ms(v)
    }
}

enum Bind {
    Text(String),
    Int(i64),
}

/// The conditions of `f` (all but the cursor and the limit) as ` AND …` and their values;
/// `None` when nothing can match (an empty organisation list).
fn filter_sql(f: &ListFilter) -> Option<(String, Vec<Bind>)> {
    let mut sql = String::new();
    let mut binds = Vec::new();
    if let Some(orgs) = &f.organizations {
        if orgs.is_empty() {
            return None;
        }
        sql.push_str(&format!(" AND organization IN ({})", vec!["?"; orgs.len()].join(", ")));
        binds.extend(orgs.iter().map(|o| Bind::Text(o.to_string())));
    }
    if !f.statuses.is_empty() {
        sql.push_str(&format!(" AND status IN ({})", states(&f.statuses)));
    }
    if let Some(k) = f.kind {
        sql.push_str(" AND kind = ?");
        binds.push(Bind::Int(i64::from(k)));
    }
    if let Some(from) = f.from {
        sql.push_str(" AND created_at >= ?");
        binds.push(Bind::Int(ms(from)));
    }
    if let Some(to) = f.to {
        sql.push_str(" AND created_at < ?");
        binds.push(Bind::Int(ms(to)));
    }
    if let Some(code) = &f.error_code {
        sql.push_str(
            " AND EXISTS (SELECT 1 FROM json_each(submissions.errors) e WHERE json_extract(e.value, '$.code') = ?)",
        );
        binds.push(Bind::Text(code.clone()));
    }
    if let Some(d) = f.disposition {
        sql.push_str(
            " AND EXISTS (SELECT 1 FROM json_each(submissions.errors) e WHERE json_extract(e.value, '$.disposition') = ?)",
        );
        binds.push(Bind::Text(d.as_str().to_owned()));
    }
    if let Some(at) = f.not_due_at {
        sql.push_str(" AND NOT ((next_attempt_at IS NOT NULL AND next_attempt_at <= ?) OR lease_owner IS NOT NULL)");
        binds.push(Bind::Int(ms(at)));
    }
    Some((sql, binds))
}

fn bind_all<'q>(
    mut q: sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>>,
    binds: Vec<Bind>,
) -> sqlx::query::Query<'q, sqlx::Sqlite, sqlx::sqlite::SqliteArguments<'q>> {
    for b in binds {
        q = match b {
            Bind::Text(s) => q.bind(s),
            Bind::Int(i) => q.bind(i),
        };
    }
    q
}

/// `'a', 'b'` for `status IN (…)`: the lifecycle's own state names, never input.
pub(super) fn states(from: &[Status]) -> String {
    from.iter().map(|s| format!("'{}'", s.as_str())).collect::<Vec<_>>().join(", ")
}
