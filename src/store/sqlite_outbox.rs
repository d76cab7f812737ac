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
use crate::submission::{Claimed, Event, Intake, ListFilter, NewSubmission, Status, SubmissionRecord, Transition};

const COLUMNS: &str = "id, organization, local_uid, kind, status, checksum, byte_size, request, attempts, next_attempt_at, \
     lease_owner, lease_until, emdr_id, registered_at, errors, awaiting_since, current_message_id, checks, inconclusive, check_at, created_at, updated_at";

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
        lease_owner: row.try_get("lease_owner")?,
        lease_until: opt_ms(row.try_get("lease_until")?)?,
        emdr_id: row.try_get("emdr_id")?,
        registered_at: opt_ms(row.try_get("registered_at")?)?,
        errors: errors.0,
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
async fn apply(
    conn: &mut SqliteConnection,
    id: Uuid,
    from: &[Status],
    lease_owner: Option<&str>,
    current_message: Option<&str>,
    t: &Transition,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let id = id.to_string();
    let states = from.iter().map(|s| format!("'{}'", s.as_str())).collect::<Vec<_>>().join(", ");
    let errors = t.errors.as_ref().map(Json);
    let last_code = t.errors.as_ref().and_then(|e| e.first()).map(|e| e.code.clone());
    let updated = sqlx::query(&format!(
        "UPDATE submissions SET status = ?, next_attempt_at = ?, lease_owner = NULL, lease_until = NULL,
             emdr_id = COALESCE(?, emdr_id), registered_at = COALESCE(?, registered_at),
             errors = COALESCE(?, errors), last_error_code = CASE WHEN ? THEN ? ELSE last_error_code END,
             awaiting_since = ?, updated_at = ?, check_at = ?, inconclusive = COALESCE(?, inconclusive)
         WHERE id = ? AND status IN ({states}) AND (? IS NULL OR lease_owner = ?)
             AND (? IS NULL OR current_message_id = ?)"
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
    .bind(&id)
    .bind(lease_owner)
    .bind(lease_owner)
    .bind(current_message)
    .bind(current_message)
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if updated == 0 {
        return Ok(false);
    }
    event(conn, &id, at, t.to, &t.actor, &t.detail).await?;
    Ok(true)
}

/// Puts submissions in `unknown`, due now and with no lease, each with its event: their last
/// send may or may not have reached REMD, so the register is searched before anything else.
async fn to_reconciliation(
    conn: &mut SqliteConnection,
    ids: &[String],
    now: DateTime<Utc>,
    actor: &str,
    detail: &str,
) -> Result<(), StoreError> {
    for id in ids {
        sqlx::query(
            "UPDATE submissions SET status = 'unknown', next_attempt_at = ?, lease_owner = NULL, lease_until = NULL,
                 check_at = NULL, updated_at = ? WHERE id = ?",
        )
        .bind(ms(now))
        .bind(ms(now))
        .bind(id)
        .execute(&mut *conn)
        .await?;
        event(conn, id, now, Status::Unknown, actor, detail).await?;
    }
    Ok(())
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
             next_attempt_at, errors, created_at, updated_at)
         VALUES (?, ?, ?, ?, 'queued', ?, ?, ?, 0, ?, '[]', ?, ?)",
    )
    .bind(&id)
    .bind(new.organization.as_str())
    .bind(&new.local_uid)
    .bind(i64::from(new.kind))
    .bind(i64::from(new.checksum))
    .bind(new.content.len() as i64)
    .bind(Json(&new.request))
    .bind(at)
    .bind(at)
    .bind(at)
    .execute(&mut *conn)
    .await?;
    sqlx::query("INSERT INTO documents (submission_id, content) VALUES (?, ?)")
        .bind(&id)
        .bind(&new.content)
        .execute(&mut *conn)
        .await?;
    event(conn, &id, new.created_at, Status::Queued, &new.actor, "документ принят и сохранён").await?;
    let created = fetch(conn, &id).await?.ok_or_else(|| StoreError::Corrupt("inserted row vanished".into()))?;
    Ok(Intake::Created(created))
}

impl SqliteStore {
    /// In one writing transaction: the ids `select` finds (at most 500) go to
    /// reconciliation, each with its event. Returns how many.
    async fn reconcile_selected<'q>(
        &self,
        select: sqlx::query::QueryScalar<'q, sqlx::Sqlite, String, sqlx::sqlite::SqliteArguments<'q>>,
        now: DateTime<Utc>,
        actor: &str,
        detail: &str,
    ) -> Result<u64, StoreError> {
        let (_turn, mut tx) = self.begin_write().await?;
        let ids: Vec<String> = select.fetch_all(&mut *tx).await?;
        to_reconciliation(&mut tx, &ids, now, actor, detail).await?;
        tx.commit().await?;
        Ok(ids.len() as u64)
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
        let mut sql = format!("SELECT {COLUMNS} FROM submissions WHERE 1 = 1");
        let mut qb: Vec<Bind> = Vec::new();
        if let Some(orgs) = &f.organizations {
            if orgs.is_empty() {
                return Ok(Vec::new());
            }
            sql.push_str(&format!(" AND organization IN ({})", vec!["?"; orgs.len()].join(", ")));
            qb.extend(orgs.iter().map(|o| Bind::Text(o.to_string())));
        }
        if let Some(s) = f.status {
            sql.push_str(" AND status = ?");
            qb.push(Bind::Text(s.as_str().to_owned()));
        }
        if let Some(k) = f.kind {
            sql.push_str(" AND kind = ?");
            qb.push(Bind::Int(i64::from(k)));
        }
        if let Some(from) = f.from {
            sql.push_str(" AND created_at >= ?");
            qb.push(Bind::Int(ms(from)));
        }
        if let Some(to) = f.to {
            sql.push_str(" AND created_at < ?");
            qb.push(Bind::Int(ms(to)));
        }
        if let Some(code) = &f.error_code {
            sql.push_str(
                " AND EXISTS (SELECT 1 FROM json_each(submissions.errors) e WHERE json_extract(e.value, '$.code') = ?)",
            );
            qb.push(Bind::Text(code.clone()));
        }
        if let Some((at, id)) = f.before {
            sql.push_str(" AND (created_at < ? OR (created_at = ? AND id < ?))");
            qb.push(Bind::Int(ms(at)));
            qb.push(Bind::Int(ms(at)));
            qb.push(Bind::Text(id.to_string()));
        }
        sql.push_str(" ORDER BY created_at DESC, id DESC LIMIT ?");
        qb.push(Bind::Int(i64::from(f.limit)));
        let mut q = sqlx::query(&sql);
        for b in qb {
            q = match b {
                Bind::Text(s) => q.bind(s),
                Bind::Int(i) => q.bind(i),
            };
        }
        q.fetch_all(self.pool()).await?.iter().map(record).collect()
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
        let due: Vec<(String, String)> = sqlx::query_as(
            "SELECT id, status FROM submissions WHERE next_attempt_at IS NOT NULL AND next_attempt_at <= ?
             ORDER BY next_attempt_at LIMIT ?",
        )
        .bind(ms(now))
        .bind(i64::from(limit))
        .fetch_all(&mut *tx)
        .await?;
        let mut claimed = Vec::with_capacity(due.len());
        for (id, status) in due {
            let from: Status = status.parse().map_err(StoreError::Corrupt)?;
            let sending = from != Status::Unknown;
            sqlx::query(
                "UPDATE submissions SET status = ?, attempts = attempts + ?, next_attempt_at = NULL,
                     checks = CASE WHEN ? THEN 0 ELSE checks + 1 END,
                     inconclusive = CASE WHEN ? THEN 0 ELSE inconclusive END,
                     lease_owner = ?, lease_until = ?, updated_at = ? WHERE id = ?",
            )
            .bind(if sending { Status::Sending.as_str() } else { Status::Unknown.as_str() })
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
                event(&mut tx, &id, now, Status::Sending, "relay", "отправка в РЭМД").await?;
            }
            let record =
                fetch(&mut tx, &id).await?.ok_or_else(|| StoreError::Corrupt("claimed row vanished".into()))?;
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

    async fn reap_leases(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let select = sqlx::query_scalar(
            "SELECT id FROM submissions WHERE lease_owner IS NOT NULL AND lease_until < ? LIMIT 500",
        )
        .bind(ms(now));
        self.reconcile_selected(select, now, "relay", "обработчик не завершил отправку; результат будет сверен с РЭМД")
            .await
    }

    async fn expire_awaiting(&self, before: DateTime<Utc>, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let select = sqlx::query_scalar(
            "SELECT id FROM submissions WHERE status = 'awaiting_result'
                 AND (check_at <= ? OR (check_at IS NULL AND awaiting_since < ?)) LIMIT 500",
        )
        .bind(ms(now))
        .bind(ms(before));
        self.reconcile_selected(select, now, "watchdog", "результат регистрации ещё не пришёл; сверка с реестром РЭМД")
            .await
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

    async fn release_leases_of(&self, prefix: &str, now: DateTime<Utc>) -> Result<u64, StoreError> {
        let mut released = 0;
        loop {
            let select = sqlx::query_scalar(
                "SELECT id FROM submissions WHERE lease_owner IS NOT NULL
                     AND substr(lease_owner, 1, length(?1)) = ?1 LIMIT 500",
            )
            .bind(prefix);
            let n = self
                .reconcile_selected(
                    select,
                    now,
                    "relay",
                    "шлюз перезапущен во время отправки; результат будет сверен с РЭМД",
                )
                .await?;
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
