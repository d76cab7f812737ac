//! The outbox on PostgreSQL: several gateway instances claim with `FOR UPDATE SKIP LOCKED`,
//! and a new submission wakes every instance's relay with `NOTIFY egisz_outbox`.

use chrono::{DateTime, Utc};
use egisz_contract::Oid;
use sqlx::postgres::{PgConnection, PgRow};
use sqlx::types::Json;
use sqlx::{QueryBuilder, Row};
use uuid::Uuid;

use super::StoreError;
use super::outbox::{CallbackChange, CallbackRecord, Outbox};
use super::postgres::PgStore;
use crate::lifecycle::{CLAIM, Step};
use crate::submission::{Claimed, Event, Intake, ListFilter, NewSubmission, Status, SubmissionRecord, Transition};

/// The channel a new submission is announced on.
pub const OUTBOX_CHANNEL: &str = "egisz_outbox";

const COLUMNS: &str = "id, organization, local_uid, kind, status, checksum, byte_size, request, attempts, next_attempt_at, \
     lease_owner, lease_until, emdr_id, registered_at, registered_at_by_gateway, errors, warnings, awaiting_since, current_message_id, checks, inconclusive, check_at, created_at, updated_at, \
     COALESCE(schedule_from, created_at) AS schedule_from";

fn record(row: &PgRow) -> Result<SubmissionRecord, StoreError> {
    let status: String = row.try_get("status")?;
    let organization: String = row.try_get("organization")?;
    let request: Json<egisz_contract::remd::RegisterDocument> = row
        .try_get("request")
        .map_err(|e| StoreError::Corrupt(format!("submissions.request is not readable ({})", super::error_kind(&e))))?;
    let errors: Json<Vec<crate::submission::SubmissionError>> = row.try_get("errors")?;
    let warnings: Json<Vec<crate::submission::IntakeWarning>> = row.try_get("warnings")?;
    Ok(SubmissionRecord {
        id: row.try_get("id")?,
        organization: Oid::parse(&organization).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        local_uid: row.try_get("local_uid")?,
        kind: row.try_get::<i32, _>("kind")? as u32,
        status: status.parse().map_err(StoreError::Corrupt)?,
        checksum: row.try_get::<i64, _>("checksum")? as u32,
        byte_size: row.try_get::<i64, _>("byte_size")? as u64,
        request: request.0,
        attempts: row.try_get::<i32, _>("attempts")? as u32,
        next_attempt_at: row.try_get("next_attempt_at")?,
        schedule_from: row.try_get("schedule_from")?,
        lease_owner: row.try_get("lease_owner")?,
        lease_until: row.try_get("lease_until")?,
        emdr_id: row.try_get("emdr_id")?,
        registered_at: row.try_get("registered_at")?,
        registered_at_by_gateway: row.try_get("registered_at_by_gateway")?,
        errors: errors.0,
        warnings: warnings.0,
        awaiting_since: row.try_get("awaiting_since")?,
        current_message_id: row.try_get("current_message_id")?,
        checks: row.try_get::<i32, _>("checks")? as u32,
        inconclusive: row.try_get::<i32, _>("inconclusive")? as u32,
        check_at: row.try_get("check_at")?,
        created_at: row.try_get("created_at")?,
        updated_at: row.try_get("updated_at")?,
    })
}

async fn event(
    conn: &mut PgConnection,
    id: Uuid,
    at: DateTime<Utc>,
    status: Status,
    actor: &str,
    detail: &str,
) -> Result<(), StoreError> {
    sqlx::query("INSERT INTO submission_events (submission_id, at, status, actor, detail) VALUES ($1, $2, $3, $4, $5)")
        .bind(id)
        .bind(at)
        .bind(status.as_str())
        .bind(actor)
        .bind(detail)
        .execute(conn)
        .await?;
    Ok(())
}

/// The guarded state change of [`Outbox::transition`], inside the caller's transaction.
pub(super) async fn apply(
    conn: &mut PgConnection,
    id: Uuid,
    from: &[Status],
    lease_owner: Option<&str>,
    current_message: Option<&str>,
    t: &Transition,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let states: Vec<&str> = from.iter().map(|s| s.as_str()).collect();
    let last_code = t.errors.as_ref().and_then(|e| e.first()).map(|e| e.code.clone());
    let updated = sqlx::query(
        "UPDATE submissions SET status = $1, next_attempt_at = $2, lease_owner = NULL, lease_until = NULL,
             emdr_id = COALESCE($3, emdr_id), registered_at = COALESCE($4, registered_at),
             registered_at_by_gateway = COALESCE($18, registered_at_by_gateway),
             errors = COALESCE($5, errors), last_error_code = CASE WHEN $6 THEN $7 ELSE last_error_code END,
             awaiting_since = $8, updated_at = $9, check_at = $14,
             inconclusive = CASE WHEN $16 THEN 0 ELSE COALESCE($15, inconclusive) END,
             attempts = CASE WHEN $16 THEN 0 ELSE COALESCE($17, attempts) END,
             checks = CASE WHEN $16 THEN 0 ELSE COALESCE($19, checks) END,
             schedule_from = CASE WHEN $16 THEN $9 ELSE schedule_from END
         WHERE id = $10 AND status = ANY($11) AND ($12::text IS NULL OR lease_owner = $12)
             AND ($13::text IS NULL OR current_message_id = $13)",
    )
    .bind(t.to.as_str())
    .bind(t.next_attempt_at)
    .bind(&t.emdr_id)
    .bind(t.registered_at)
    .bind(t.errors.as_ref().map(Json))
    .bind(t.errors.is_some())
    .bind(last_code)
    .bind(t.awaiting_since)
    .bind(at)
    .bind(id)
    .bind(&states)
    .bind(lease_owner)
    .bind(current_message)
    .bind(t.check_at)
    .bind(t.inconclusive.map(|n| n as i32))
    .bind(t.restart_schedule)
    .bind(t.attempts.map(|n| n as i32))
    .bind(t.registered_at_by_gateway)
    .bind(t.checks.map(|n| n as i32))
    .execute(&mut *conn)
    .await?
    .rows_affected();
    if updated == 0 {
        return Ok(false);
    }
    event(&mut *conn, id, at, t.to, &t.actor, &t.detail).await?;
    if t.next_attempt_at.is_some() {
        sqlx::query("SELECT pg_notify($1, '')").bind(OUTBOX_CHANNEL).execute(&mut *conn).await?;
    }
    Ok(true)
}

/// Applies a sweep's `step` to the submissions `select` finds (it locks them with `FOR
/// UPDATE SKIP LOCKED`), each with its event, in one transaction; returns how many moved.
async fn sweep_selected<'q>(
    store: &PgStore,
    select: sqlx::query::QueryScalar<'q, sqlx::Postgres, Uuid, sqlx::postgres::PgArguments>,
    step: &Step,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let mut tx = store.pool().begin().await?;
    let ids: Vec<Uuid> = select.fetch_all(&mut *tx).await?;
    let mut moved = 0;
    for id in ids {
        if apply(&mut tx, id, step.from, None, None, &step.transition, now).await? {
            moved += 1;
        }
    }
    tx.commit().await?;
    Ok(moved)
}

/// Adds the conditions of `f` (all but the cursor and the limit); `false` when nothing can
/// match (an empty organisation list).
fn push_filter(q: &mut QueryBuilder<'_, sqlx::Postgres>, f: &ListFilter) -> bool {
    if let Some(orgs) = &f.organizations {
        if orgs.is_empty() {
            return false;
        }
        q.push(" AND organization = ANY(").push_bind(orgs.iter().map(|o| o.to_string()).collect::<Vec<_>>()).push(")");
    }
    if !f.statuses.is_empty() {
        q.push(" AND status = ANY(").push_bind(states(&f.statuses)).push(")");
    }
    if let Some(k) = f.kind {
        q.push(" AND kind = ").push_bind(k as i32);
    }
    if let Some(from) = f.from {
        q.push(" AND created_at >= ").push_bind(from);
    }
    if let Some(to) = f.to {
        q.push(" AND created_at < ").push_bind(to);
    }
    if let Some(code) = &f.error_code {
        q.push(" AND errors @> ").push_bind(Json(serde_json::json!([{ "code": code }])));
    }
    if let Some(d) = f.disposition {
        q.push(" AND errors @> ").push_bind(Json(serde_json::json!([{ "disposition": d.as_str() }])));
    }
    if let Some(at) = f.not_due_at {
        q.push(" AND NOT (COALESCE(next_attempt_at <= ").push_bind(at).push(", FALSE) OR lease_owner IS NOT NULL)");
    }
    true
}

/// The lifecycle's state names of `step`, for `status = ANY(…)`.
pub(super) fn states(from: &[Status]) -> Vec<&'static str> {
    from.iter().map(|s| s.as_str()).collect()
}

async fn insert_callback(conn: &mut PgConnection, cb: &CallbackRecord) -> Result<bool, StoreError> {
    let inserted = sqlx::query(
        "INSERT INTO remd_callbacks (received_at, operation, message_id, relates_to, submission_id, outcome, payload)
         VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (operation, message_id) DO NOTHING",
    )
    .bind(cb.received_at)
    .bind(&cb.operation)
    .bind(&cb.message_id)
    .bind(&cb.relates_to)
    .bind(cb.submission_id)
    .bind(&cb.outcome)
    .bind(Json(&cb.payload))
    .execute(conn)
    .await?
    .rows_affected();
    Ok(inserted > 0)
}

async fn fetch(conn: &mut PgConnection, id: Uuid) -> Result<Option<SubmissionRecord>, StoreError> {
    sqlx::query(&format!("SELECT {COLUMNS} FROM submissions WHERE id = $1"))
        .bind(id)
        .fetch_optional(conn)
        .await?
        .as_ref()
        .map(record)
        .transpose()
}

/// One document of an intake batch, inside its savepoint (its key already locked).
async fn intake_one(conn: &mut PgConnection, new: &NewSubmission) -> Result<Intake, StoreError> {
    let existing =
        sqlx::query(&format!("SELECT {COLUMNS} FROM submissions WHERE organization = $1 AND local_uid = $2"))
            .bind(new.organization.as_str())
            .bind(&new.local_uid)
            .fetch_optional(&mut *conn)
            .await?;
    if let Some(row) = existing {
        let found = record(&row)?;
        let content: Vec<u8> = sqlx::query_scalar("SELECT content FROM documents WHERE submission_id = $1")
            .bind(found.id)
            .fetch_one(&mut *conn)
            .await?;
        return Ok(if content == new.content { Intake::Existing(found) } else { Intake::Conflict(found) });
    }
    // The submission, its bytes and its first event in one statement (one round trip).
    let row = sqlx::query(&format!(
        "WITH s AS (
             INSERT INTO submissions (id, organization, local_uid, kind, status, checksum, byte_size, request, attempts,
                 next_attempt_at, errors, warnings, created_at, updated_at)
             VALUES ($1, $2, $3, $4, 'queued', $5, $6, $7, 0, $8, '[]', $12, $8, $8)
             RETURNING {COLUMNS}),
         d AS (INSERT INTO documents (submission_id, content) VALUES ($1, $9)),
         e AS (INSERT INTO submission_events (submission_id, at, status, actor, detail)
             VALUES ($1, $8, 'queued', $10, $11))
         SELECT * FROM s"
    ))
    .bind(new.id)
    .bind(new.organization.as_str())
    .bind(&new.local_uid)
    .bind(new.kind as i32)
    .bind(i64::from(new.checksum))
    .bind(new.content.len() as i64)
    .bind(Json(&new.request))
    .bind(new.created_at)
    .bind(&new.content)
    .bind(&new.actor)
    .bind(&new.detail)
    .bind(Json(&new.warnings))
    .fetch_one(&mut *conn)
    .await?;
    let created = record(&row)?;
    Ok(Intake::Created(created))
}

/// The lock key of a document: its organisation and localUid.
fn intake_key(new: &NewSubmission) -> String {
    format!("{}\u{1f}{}", new.organization, new.local_uid)
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
    let stored: std::collections::HashMap<Uuid, Vec<u8>> =
        sqlx::query_as("SELECT submission_id, content FROM documents WHERE submission_id = ANY($1)")
            .bind(&existing_ids)
            .fetch_all(&mut *conn)
            .await?
            .into_iter()
            .collect();
    // What each document is: an existing submission, the first of its key in the batch (new),
    // or a repeat of an earlier one in the batch.
    enum Found<'a> {
        Existing(&'a SubmissionRecord),
        New,
        RepeatOf(usize),
    }
    let mut first_of: std::collections::HashMap<(&str, &str), usize> = std::collections::HashMap::new();
    let found: Vec<Found<'_>> = batch
        .iter()
        .enumerate()
        .map(|(i, n)| {
            if let Some(r) = existing.iter().find(|r| r.organization == n.organization && r.local_uid == n.local_uid) {
                return Found::Existing(r);
            }
            match first_of.entry((n.organization.as_str(), n.local_uid.as_str())) {
                std::collections::hash_map::Entry::Occupied(e) => Found::RepeatOf(*e.get()),
                std::collections::hash_map::Entry::Vacant(e) => {
                    e.insert(i);
                    Found::New
                }
            }
        })
        .collect();
    let new: Vec<&NewSubmission> =
        batch.iter().zip(&found).filter(|(_, f)| matches!(f, Found::New)).map(|(n, _)| n).collect();
    let mut created: std::collections::HashMap<Uuid, SubmissionRecord> = std::collections::HashMap::new();
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
    sqlx::query("SELECT pg_notify($1, '')").bind(OUTBOX_CHANNEL).execute(&mut *conn).await?;
    let same_bytes = |a: &[u8], b: &[u8]| a == b;
    Ok(batch
        .iter()
        .zip(&found)
        .map(|(n, f)| match f {
            Found::Existing(r) => match stored.get(&r.id) {
                Some(content) if same_bytes(content, &n.content) => Ok(Intake::Existing((*r).clone())),
                Some(_) => Ok(Intake::Conflict((*r).clone())),
                None => Err(StoreError::Corrupt("a stored submission has no document".into())),
            },
            Found::New => created
                .get(&n.id)
                .cloned()
                .map(Intake::Created)
                .ok_or_else(|| StoreError::Corrupt("an inserted row was not returned".into())),
            Found::RepeatOf(first) => {
                let original = &batch[*first];
                match created.get(&original.id) {
                    Some(r) if same_bytes(&original.content, &n.content) => Ok(Intake::Existing(r.clone())),
                    Some(r) => Ok(Intake::Conflict(r.clone())),
                    None => Err(StoreError::Corrupt("an inserted row was not returned".into())),
                }
            }
        })
        .collect())
}

#[async_trait::async_trait]
impl Outbox for PgStore {
    async fn intake_batch(&self, batch: &[NewSubmission]) -> Result<Vec<Result<Intake, StoreError>>, StoreError> {
        // The whole batch in a handful of statements; if one of them fails (a clash no
        // check foresaw), the batch is written again document by document, each under its
        // own savepoint, so that only the bad one fails.
        if let Some(results) = intake_together(self, batch).await? {
            return Ok(results);
        }
        // Each document's (organization, local_uid) is locked until the commit, so the loser
        // of a race with another instance sees the winner's row instead of a constraint
        // error; the keys are taken in one order everywhere, so two batches never deadlock.
        let key = intake_key;
        let mut order: Vec<usize> = (0..batch.len()).collect();
        order.sort_by_key(|&i| key(&batch[i]));
        let mut tx = self.pool().begin().await?;
        let mut results: Vec<Option<Result<Intake, StoreError>>> = (0..batch.len()).map(|_| None).collect();
        for i in order {
            let new = &batch[i];
            let mut savepoint = sqlx::Acquire::begin(&mut *tx).await?;
            let done = async {
                sqlx::query("SELECT pg_advisory_xact_lock(hashtextextended($1, 0))")
                    .bind(key(new))
                    .execute(&mut *savepoint)
                    .await?;
                intake_one(&mut savepoint, new).await
            }
            .await;
            match done {
                Ok(found) => {
                    savepoint.commit().await?;
                    results[i] = Some(Ok(found));
                }
                Err(e) => {
                    savepoint.rollback().await?;
                    results[i] = Some(Err(e));
                }
            }
        }
        sqlx::query("SELECT pg_notify($1, '')").bind(OUTBOX_CHANNEL).execute(&mut *tx).await?;
        tx.commit().await?;
        Ok(results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(StoreError::Corrupt("intake skipped".into()))))
            .collect())
    }

    async fn submission(&self, id: Uuid) -> Result<Option<SubmissionRecord>, StoreError> {
        let mut conn = self.pool().acquire().await?;
        fetch(&mut conn, id).await
    }

    async fn events(&self, id: Uuid) -> Result<Vec<Event>, StoreError> {
        let rows =
            sqlx::query("SELECT at, status, actor, detail FROM submission_events WHERE submission_id = $1 ORDER BY id")
                .bind(id)
                .fetch_all(self.pool())
                .await?;
        rows.iter()
            .map(|r| {
                let status: String = r.try_get("status")?;
                Ok(Event {
                    at: r.try_get("at")?,
                    status: status.parse().map_err(StoreError::Corrupt)?,
                    actor: r.try_get("actor")?,
                    detail: r.try_get("detail")?,
                })
            })
            .collect()
    }

    async fn list_submissions(&self, f: &ListFilter) -> Result<Vec<SubmissionRecord>, StoreError> {
        let mut q = QueryBuilder::new(format!("SELECT {COLUMNS} FROM submissions WHERE TRUE"));
        if !push_filter(&mut q, f) {
            return Ok(Vec::new());
        }
        if let Some((at, id)) = f.before {
            q.push(if f.oldest_first { " AND (created_at, id) > (" } else { " AND (created_at, id) < (" })
                .push_bind(at)
                .push(", ")
                .push_bind(id)
                .push(")");
        }
        q.push(if f.oldest_first {
            " ORDER BY created_at, id LIMIT "
        } else {
            " ORDER BY created_at DESC, id DESC LIMIT "
        })
        .push_bind(i64::from(f.limit));
        q.build().fetch_all(self.pool()).await?.iter().map(record).collect()
    }

    async fn count_submissions(&self, f: &ListFilter) -> Result<u64, StoreError> {
        let mut q = QueryBuilder::new("SELECT COUNT(*) FROM submissions WHERE TRUE");
        if !push_filter(&mut q, f) {
            return Ok(0);
        }
        let n: i64 = q.build_query_scalar().fetch_one(self.pool()).await?;
        Ok(n as u64)
    }

    async fn document_content(&self, id: Uuid) -> Result<Option<Vec<u8>>, StoreError> {
        Ok(sqlx::query_scalar("SELECT content FROM documents WHERE submission_id = $1")
            .bind(id)
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
        let mut tx = self.pool().begin().await?;
        let claimable = states(&CLAIM.sends_from.iter().chain(CLAIM.reconciles_from).copied().collect::<Vec<_>>());
        // Fair to every organisation (lifecycle::CLAIM): the earliest due submission of each
        // organisation with due work, the organisation served longest ago first — found with
        // a skip scan over the organisations of the due index — then, if the claim wants
        // more, the earliest due of any.
        let mut due: Vec<(Uuid, String)> = sqlx::query_as(
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
                 WHERE organization = g.o AND next_attempt_at IS NOT NULL AND next_attempt_at <= $1 AND status = ANY($3)
                 ORDER BY next_attempt_at, id LIMIT 1 FOR UPDATE SKIP LOCKED) c
             WHERE g.o IS NOT NULL
             ORDER BY t.last_claimed_at NULLS FIRST, g.o
             LIMIT $2",
        )
        .bind(now)
        .bind(i64::from(limit))
        .bind(&claimable)
        .fetch_all(&mut *tx)
        .await?;
        if due.len() < limit as usize {
            let taken: Vec<Uuid> = due.iter().map(|(id, _)| *id).collect();
            let more: Vec<(Uuid, String)> = sqlx::query_as(
                "SELECT id, status FROM submissions WHERE next_attempt_at IS NOT NULL AND next_attempt_at <= $1
                     AND status = ANY($3) AND NOT (id = ANY($4))
                 ORDER BY next_attempt_at, id LIMIT $2 FOR UPDATE SKIP LOCKED",
            )
            .bind(now)
            .bind(i64::from(limit) - due.len() as i64)
            .bind(&claimable)
            .bind(&taken)
            .fetch_all(&mut *tx)
            .await?;
            due.extend(more);
        }
        let mut claimed = Vec::with_capacity(due.len());
        for (id, status) in due {
            let from: Status = status.parse().map_err(StoreError::Corrupt)?;
            let sending = CLAIM.sends_from.contains(&from);
            sqlx::query(
                "UPDATE submissions SET status = $1, attempts = attempts + $2, next_attempt_at = NULL,
                     checks = CASE WHEN $2 = 1 THEN 0 ELSE checks + 1 END,
                     inconclusive = CASE WHEN $2 = 1 THEN 0 ELSE inconclusive END,
                     lease_owner = $3, lease_until = $4, updated_at = $5 WHERE id = $6",
            )
            .bind(if sending { Status::Sending.as_str() } else { from.as_str() })
            .bind(i32::from(sending))
            .bind(owner)
            .bind(lease_until)
            .bind(now)
            .bind(id)
            .execute(&mut *tx)
            .await?;
            if sending {
                event(&mut tx, id, now, Status::Sending, "relay", CLAIM.send_detail).await?;
            }
            let record = fetch(&mut tx, id).await?.ok_or_else(|| StoreError::Corrupt("claimed row vanished".into()))?;
            sqlx::query(
                "INSERT INTO organization_turns (organization, last_claimed_at) VALUES ($1, $2)
                 ON CONFLICT (organization) DO UPDATE SET last_claimed_at = GREATEST(organization_turns.last_claimed_at, $2)",
            )
            .bind(record.organization.as_str())
            .bind(now)
            .execute(&mut *tx)
            .await?;
            claimed.push(Claimed { record, claimed_from: from });
        }
        tx.commit().await?;
        Ok(claimed)
    }

    async fn note_message(&self, id: Uuid, message_id: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        let mut tx = self.pool().begin().await?;
        sqlx::query("INSERT INTO submission_messages (message_id, submission_id, sent_at) VALUES ($1, $2, $3)")
            .bind(message_id)
            .bind(id)
            .bind(at)
            .execute(&mut *tx)
            .await?;
        sqlx::query("UPDATE submissions SET current_message_id = $1 WHERE id = $2")
            .bind(message_id)
            .bind(id)
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
        let mut tx = self.pool().begin().await?;
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
        let mut tx = self.pool().begin().await?;
        let first = insert_callback(&mut tx, cb).await?;
        let applied = match (first, change) {
            (true, Some(c)) => apply(&mut tx, c.id, c.from, None, c.current_message, c.transition, at).await?,
            _ => false,
        };
        tx.commit().await?;
        Ok((first, applied))
    }

    async fn record_event(&self, id: Uuid, actor: &str, detail: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO submission_events (submission_id, at, status, actor, detail)
             SELECT id, $1, status, $2, $3 FROM submissions WHERE id = $4",
        )
        .bind(at)
        .bind(actor)
        .bind(detail)
        .bind(id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    async fn submission_by_message(&self, message_id: &str) -> Result<Option<SubmissionRecord>, StoreError> {
        let row = sqlx::query(&format!(
            "SELECT {COLUMNS} FROM submissions WHERE id = (SELECT submission_id FROM submission_messages WHERE message_id = $1)"
        ))
        .bind(message_id)
        .fetch_optional(self.pool())
        .await?;
        row.as_ref().map(record).transpose()
    }

    async fn messages(&self, id: Uuid) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT message_id FROM submission_messages WHERE submission_id = $1 ORDER BY sent_at, message_id",
        )
        .bind(id)
        .fetch_all(self.pool())
        .await?)
    }

    async fn submission_by_emdr_id(&self, emdr_id: &str) -> Result<Option<SubmissionRecord>, StoreError> {
        let row = sqlx::query(&format!("SELECT {COLUMNS} FROM submissions WHERE emdr_id = $1"))
            .bind(emdr_id)
            .fetch_optional(self.pool())
            .await?;
        row.as_ref().map(record).transpose()
    }

    async fn reap_leases(&self, now: DateTime<Utc>, step: &Step) -> Result<u64, StoreError> {
        let select = sqlx::query_scalar(
            "SELECT id FROM submissions WHERE lease_owner IS NOT NULL AND lease_until < $1 AND status = ANY($2)
             LIMIT 500 FOR UPDATE SKIP LOCKED",
        )
        .bind(now)
        .bind(states(step.from));
        sweep_selected(self, select, step, now).await
    }

    async fn expire_awaiting(&self, before: DateTime<Utc>, now: DateTime<Utc>, step: &Step) -> Result<u64, StoreError> {
        let select = sqlx::query_scalar(
            "SELECT id FROM submissions WHERE status = 'awaiting_result' AND status = ANY($3)
                 AND (check_at <= $2 OR (check_at IS NULL AND awaiting_since < $1))
             LIMIT 500 FOR UPDATE SKIP LOCKED",
        )
        .bind(before)
        .bind(now)
        .bind(states(step.from));
        sweep_selected(self, select, step, now).await
    }

    async fn renew_lease(&self, id: Uuid, owner: &str, until: DateTime<Utc>) -> Result<bool, StoreError> {
        let renewed = sqlx::query("UPDATE submissions SET lease_until = $1 WHERE id = $2 AND lease_owner = $3")
            .bind(until)
            .bind(id)
            .bind(owner)
            .execute(self.pool())
            .await?
            .rows_affected();
        Ok(renewed > 0)
    }

    async fn release_leases_of(&self, prefix: &str, now: DateTime<Utc>, step: &Step) -> Result<u64, StoreError> {
        let mut released = 0;
        loop {
            let select = sqlx::query_scalar(
                "SELECT id FROM submissions WHERE lease_owner IS NOT NULL AND left(lease_owner, length($1)) = $1
                     AND status = ANY($2) LIMIT 500 FOR UPDATE SKIP LOCKED",
            )
            .bind(prefix)
            .bind(states(step.from));
            let n = sweep_selected(self, select, step, now).await?;
            released += n;
            if n < 500 {
                return Ok(released);
            }
        }
    }

    async fn record_callback(&self, cb: &CallbackRecord) -> Result<bool, StoreError> {
        let mut conn = self.pool().acquire().await?;
        insert_callback(&mut conn, cb).await
    }

    async fn purge_callbacks(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        Ok(sqlx::query("DELETE FROM remd_callbacks WHERE received_at < $1")
            .bind(before)
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
        Ok(sqlx::query_scalar("SELECT MIN(next_attempt_at) FROM submissions WHERE next_attempt_at IS NOT NULL")
            .fetch_one(self.pool())
            .await?)
    }
}
