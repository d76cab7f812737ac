//! The outbox half of the store: submissions, their documents, timeline and REMD's calls —
//! the trait, and its one implementation for every [`Engine`]. Every state change takes its
//! transition and guard from `crate::lifecycle`, and intake its idempotency
//! (`lifecycle::repeated`, `lifecycle::seen`); this module holds the statements.

use chrono::{DateTime, Utc};
use egisz_contract::Oid;
use uuid::Uuid;

use super::StoreError;
use super::engine::Engine;
use super::sql::{Arg, Exec, Read, Sql, args, states};
use crate::lifecycle::{CLAIM, Step};
use crate::submission::{Claimed, Event, Intake, ListFilter, NewSubmission, Status, SubmissionRecord, Transition};

/// A call REMD made to the gateway, as recorded.
#[derive(Debug, Clone, PartialEq)]
pub struct CallbackRecord {
    pub received_at: DateTime<Utc>,
    /// `getDocumentFile` or `sendRegisterDocumentResult`.
    pub operation: String,
    pub message_id: String,
    pub relates_to: Option<String>,
    pub submission_id: Option<Uuid>,
    pub outcome: String,
    pub payload: serde_json::Value,
}

/// A state change asked for by a call from REMD: applied only while the submission is in
/// one of `from` and, when `current_message` is given, while its current MessageID is still
/// that one — both checked by the update itself, so a send that begins in between wins.
#[derive(Debug, Clone, Copy)]
pub struct CallbackChange<'a> {
    pub id: Uuid,
    pub from: &'a [Status],
    pub current_message: Option<&'a str>,
    pub transition: &'a Transition,
}

#[async_trait::async_trait]
pub trait Outbox: Send + Sync {
    /// In one transaction, committed durably before it returns: for each document its
    /// bytes, its submission and its first event — unless `(organization, local_uid)`
    /// exists, in which case the existing submission is returned as `Existing` (same bytes)
    /// or `Conflict` (other bytes). Each document is written under a savepoint of its own:
    /// one that fails fails alone (its entry is an `Err`), the others are committed. The
    /// outer `Err`: the commit itself failed, and nothing of the batch is stored.
    async fn intake_batch(&self, batch: &[NewSubmission]) -> Result<Vec<Result<Intake, StoreError>>, StoreError>;

    /// [`Outbox::intake_batch`] of one document.
    async fn intake(&self, new: &NewSubmission) -> Result<Intake, StoreError> {
        self.intake_batch(std::slice::from_ref(new))
            .await?
            .pop()
            .unwrap_or_else(|| Err(StoreError::Corrupt("an intake batch of one answered nothing".into())))
    }

    async fn submission(&self, id: Uuid) -> Result<Option<SubmissionRecord>, StoreError>;
    /// The timeline, oldest first.
    async fn events(&self, id: Uuid) -> Result<Vec<Event>, StoreError>;
    /// Newest first, keyset-paginated by `(created_at, id)`.
    async fn list_submissions(&self, filter: &ListFilter) -> Result<Vec<SubmissionRecord>, StoreError>;
    /// How many submissions `filter` matches (its cursor and limit aside).
    async fn count_submissions(&self, filter: &ListFilter) -> Result<u64, StoreError>;
    /// The exact bytes stored at intake.
    async fn document_content(&self, id: Uuid) -> Result<Option<Vec<u8>>, StoreError>;

    /// Leases up to `limit` due submissions (`next_attempt_at <= now`) to `owner` until
    /// `lease_until`, in one short transaction, by `lifecycle::CLAIM`: those due to be sent
    /// move to `sending` (attempts + 1), those in `unknown` stay there for reconciliation.
    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        owner: &str,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<Claimed>, StoreError>;

    /// Records the `wsa:MessageID` of a registerDocument about to be sent for `id`.
    async fn note_message(&self, id: Uuid, message_id: &str, at: DateTime<Utc>) -> Result<(), StoreError>;

    /// Applies `t` if the submission is in one of `from` (and still leased by `lease_owner`,
    /// when given), with its event; clears the lease. `false` when nothing matched.
    async fn transition(
        &self,
        id: Uuid,
        from: &[Status],
        lease_owner: Option<&str>,
        t: &Transition,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError>;

    /// Adds an event to the timeline without changing the state (e.g. REMD pulled the file).
    async fn record_event(&self, id: Uuid, actor: &str, detail: &str, at: DateTime<Utc>) -> Result<(), StoreError>;

    /// The submission a message id of ours belongs to.
    async fn submission_by_message(&self, message_id: &str) -> Result<Option<SubmissionRecord>, StoreError>;

    /// The MessageIDs sent for a submission, oldest first.
    async fn messages(&self, id: Uuid) -> Result<Vec<String>, StoreError>;

    /// The submission registered under `emdr_id`.
    async fn submission_by_emdr_id(&self, emdr_id: &str) -> Result<Option<SubmissionRecord>, StoreError>;

    /// Submissions whose lease expired (a worker died mid-call) take `step`
    /// (`lifecycle::Sweep::LeaseExpired`), within its states. Returns how many moved.
    async fn reap_leases(&self, now: DateTime<Utc>, step: &Step) -> Result<u64, StoreError>;

    /// `awaiting_result` whose look-up is due (`check_at <= now`; or, for rows written
    /// before look-ups were scheduled, accepted before `before`) take `step`
    /// (`lifecycle::Sweep::ResultOverdue`). Returns how many moved.
    async fn expire_awaiting(&self, before: DateTime<Utc>, now: DateTime<Utc>, step: &Step) -> Result<u64, StoreError>;

    /// Extends the lease of `id` held by `owner` to `until`; `false` when `owner` no longer
    /// holds it (it was reaped, and maybe claimed again).
    async fn renew_lease(&self, id: Uuid, owner: &str, until: DateTime<Utc>) -> Result<bool, StoreError>;

    /// Submissions leased by an owner whose name starts with `prefix` — an instance's own,
    /// left by its previous run — take `step` (`lifecycle::Sweep::Restarted`), whether the
    /// leases expired or not. Returns how many moved.
    async fn release_leases_of(&self, prefix: &str, now: DateTime<Utc>, step: &Step) -> Result<u64, StoreError>;

    /// Records a call from REMD and, in the same transaction, applies `change` to a
    /// submission (as [`Outbox::transition`], without a lease) — unless the same call
    /// (operation, REMD's message id) was recorded before, in which case nothing happens.
    /// Returns `(first_time, applied)`. Because both happen together, a call whose change
    /// failed is not remembered, and REMD's redelivery is applied.
    async fn apply_callback(
        &self,
        cb: &CallbackRecord,
        change: Option<CallbackChange<'_>>,
        at: DateTime<Utc>,
    ) -> Result<(bool, bool), StoreError>;

    /// Records a call from REMD. `false` when the same call (operation, REMD's message id)
    /// was recorded before: a duplicate, to be acknowledged and not applied again.
    async fn record_callback(&self, cb: &CallbackRecord) -> Result<bool, StoreError>;

    /// Deletes recorded REMD calls received before `before` (their payloads quote REMD's
    /// texts, which may hold personal data); returns how many.
    async fn purge_callbacks(&self, before: DateTime<Utc>) -> Result<u64, StoreError>;

    /// Submissions per status.
    async fn count_by_status(&self) -> Result<Vec<(Status, u64)>, StoreError>;

    /// When the earliest due submission is due (for the relay's sleep).
    async fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError>;
}

/// The columns of a [`SubmissionRecord`], as [`record`] reads them.
pub(super) const COLUMNS: &str = "id, organization, local_uid, kind, status, checksum, byte_size, request, attempts, \
     next_attempt_at, lease_owner, lease_until, emdr_id, registered_at, registered_at_by_gateway, errors, warnings, \
     awaiting_since, current_message_id, checks, inconclusive, check_at, created_at, updated_at, \
     COALESCE(schedule_from, created_at) AS schedule_from";

/// A submission from a row of [`COLUMNS`].
pub(super) fn record(row: &impl Read) -> Result<SubmissionRecord, StoreError> {
    let organization = row.text("organization")?;
    let request = row.json("request").map_err(|e| match e {
        StoreError::Database(e) => {
            StoreError::Corrupt(format!("submissions.request is not readable ({})", super::error_kind(&e)))
        }
        other => other,
    })?;
    Ok(SubmissionRecord {
        id: row.id("id")?,
        organization: Oid::parse(&organization).map_err(|e| StoreError::Corrupt(e.to_string()))?,
        local_uid: row.text("local_uid")?,
        kind: row.int("kind")? as u32,
        status: row.status("status")?,
        checksum: row.int("checksum")? as u32,
        byte_size: row.count("byte_size")?,
        request,
        attempts: row.int("attempts")? as u32,
        next_attempt_at: row.opt_time("next_attempt_at")?,
        schedule_from: row.time("schedule_from")?,
        lease_owner: row.opt_text("lease_owner")?,
        lease_until: row.opt_time("lease_until")?,
        emdr_id: row.opt_text("emdr_id")?,
        registered_at: row.opt_time("registered_at")?,
        registered_at_by_gateway: row.flag("registered_at_by_gateway")?,
        errors: row.json("errors")?,
        warnings: row.json("warnings")?,
        awaiting_since: row.opt_time("awaiting_since")?,
        current_message_id: row.opt_text("current_message_id")?,
        checks: row.int("checks")? as u32,
        inconclusive: row.int("inconclusive")? as u32,
        check_at: row.opt_time("check_at")?,
        created_at: row.time("created_at")?,
        updated_at: row.time("updated_at")?,
    })
}

async fn event<C: Exec>(
    conn: &mut C,
    id: Uuid,
    at: DateTime<Utc>,
    status: Status,
    actor: &str,
    detail: &str,
) -> Result<(), StoreError> {
    conn.execute(
        "INSERT INTO submission_events (submission_id, at, status, actor, detail) VALUES ($1, $2, $3, $4, $5)",
        args![id, at, status, actor, detail],
    )
    .await?;
    Ok(())
}

/// The guarded state change of [`Outbox::transition`] (and of a callback's and an
/// operator's change), inside the caller's transaction: applied only while the submission is
/// in one of `from`, still leased by `lease_owner` and still on `current_message`, when
/// given; with its event.
pub(super) async fn apply<E: Engine>(
    conn: &mut E::Conn,
    id: Uuid,
    from: &[Status],
    lease_owner: Option<&str>,
    current_message: Option<&str>,
    t: &Transition,
    at: DateTime<Utc>,
) -> Result<bool, StoreError> {
    let last_code = t.errors.as_ref().and_then(|e| e.first()).map(|e| e.code.as_str());
    let updated = conn
        .execute(
            &format!(
                "UPDATE submissions SET status = $1, next_attempt_at = $2, lease_owner = NULL, lease_until = NULL,
                     emdr_id = COALESCE($3, emdr_id), registered_at = COALESCE($4, registered_at),
                     registered_at_by_gateway = COALESCE($17, registered_at_by_gateway),
                     errors = COALESCE($5, errors), last_error_code = CASE WHEN $6 THEN $7 ELSE last_error_code END,
                     awaiting_since = $8, updated_at = $9, check_at = $10,
                     inconclusive = CASE WHEN $12 THEN 0 ELSE COALESCE($11, inconclusive) END,
                     attempts = CASE WHEN $12 THEN 0 ELSE COALESCE($16, attempts) END,
                     checks = CASE WHEN $12 THEN 0 ELSE COALESCE($18, checks) END,
                     schedule_from = CASE WHEN $12 THEN $9 ELSE schedule_from END
                 WHERE id = $13 AND status IN ({}) AND ($14 IS NULL OR lease_owner = $14)
                     AND ($15 IS NULL OR current_message_id = $15)",
                states(from)
            ),
            vec![
                t.to.into(),
                t.next_attempt_at.into(),
                (&t.emdr_id).into(),
                t.registered_at.into(),
                Arg::opt_json(t.errors.as_ref())?,
                t.errors.is_some().into(),
                last_code.into(),
                t.awaiting_since.into(),
                at.into(),
                t.check_at.into(),
                t.inconclusive.map(i64::from).into(),
                t.restart_schedule.into(),
                id.into(),
                lease_owner.into(),
                current_message.into(),
                t.attempts.map(i64::from).into(),
                t.registered_at_by_gateway.into(),
                t.checks.map(i64::from).into(),
            ],
        )
        .await?;
    if updated == 0 {
        return Ok(false);
    }
    event(conn, id, at, t.to, &t.actor, &t.detail).await?;
    if t.next_attempt_at.is_some() {
        E::announce(conn).await?;
    }
    Ok(true)
}

async fn insert_callback<C: Exec>(conn: &mut C, cb: &CallbackRecord) -> Result<bool, StoreError> {
    let inserted = conn
        .execute(
            "INSERT INTO remd_callbacks (received_at, operation, message_id, relates_to, submission_id, outcome, payload)
             VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (operation, message_id) DO NOTHING",
            vec![
                cb.received_at.into(),
                (&cb.operation).into(),
                (&cb.message_id).into(),
                (&cb.relates_to).into(),
                cb.submission_id.into(),
                (&cb.outcome).into(),
                Arg::json(&cb.payload)?,
            ],
        )
        .await?;
    Ok(inserted > 0)
}

async fn fetch<C: Exec>(conn: &mut C, id: Uuid) -> Result<Option<SubmissionRecord>, StoreError> {
    conn.fetch_optional(&format!("SELECT {COLUMNS} FROM submissions WHERE id = $1"), args![id])
        .await?
        .as_ref()
        .map(record)
        .transpose()
}

/// The stored document of a submission.
pub(super) async fn content<C: Exec>(conn: &mut C, id: Uuid) -> Result<Option<Vec<u8>>, StoreError> {
    conn.fetch_optional("SELECT content FROM documents WHERE submission_id = $1", args![id])
        .await?
        .map(|r| r.bytes("content"))
        .transpose()
}

/// The lock key of a document: its organisation and localUid.
pub(super) fn intake_key(new: &NewSubmission) -> String {
    format!("{}\u{1f}{}", new.organization, new.local_uid)
}

/// One document of an intake batch, inside its savepoint (its key held).
async fn intake_one<C: Exec>(conn: &mut C, new: &NewSubmission) -> Result<Intake, StoreError> {
    let existing = conn
        .fetch_optional(
            &format!("SELECT {COLUMNS} FROM submissions WHERE organization = $1 AND local_uid = $2"),
            args![new.organization.as_str(), &new.local_uid],
        )
        .await?;
    if let Some(row) = existing {
        let found = record(&row)?;
        let stored = content(conn, found.id)
            .await?
            .ok_or_else(|| StoreError::Corrupt("a stored submission has no document".into()))?;
        return Ok(crate::lifecycle::repeated(found, &stored, &new.content));
    }
    let row = conn
        .fetch_one(
            &format!(
                "INSERT INTO submissions (id, organization, local_uid, kind, status, checksum, byte_size, request,
                     attempts, next_attempt_at, errors, warnings, created_at, updated_at)
                 VALUES ($1, $2, $3, $4, 'queued', $5, $6, $7, 0, $8, '[]', $9, $8, $8)
                 RETURNING {COLUMNS}"
            ),
            vec![
                new.id.into(),
                new.organization.as_str().into(),
                (&new.local_uid).into(),
                i64::from(new.kind).into(),
                i64::from(new.checksum).into(),
                (new.content.len() as i64).into(),
                Arg::json(&new.request)?,
                new.created_at.into(),
                Arg::json(&new.warnings)?,
            ],
        )
        .await?;
    conn.execute("INSERT INTO documents (submission_id, content) VALUES ($1, $2)", args![new.id, &new.content]).await?;
    event(conn, new.id, new.created_at, Status::Queued, &new.actor, &new.detail).await?;
    Ok(Intake::Created(record(&row)?))
}

/// Appends ` AND organization …` for `orgs` (nothing matches an empty list), or nothing.
pub(super) fn only<'a, E: Engine>(q: &mut Sql<'a>, orgs: Option<&'a [Oid]>) {
    match orgs {
        None => {}
        // One organisation as an equality: the planner then knows how many rows it has and
        // takes the indexes that lead with it (`submissions_failed_by_org`,
        // `submissions_open_by_org`), where a list's length is a guess.
        Some([one]) => {
            q.push(" AND organization = ").bind(one.as_str());
        }
        Some(orgs) => {
            let p = q.arg(Arg::Texts(orgs.iter().map(|o| o.as_str()).collect()));
            q.push(" AND ").push(&E::any("organization", &p));
        }
    }
}

/// Adds the conditions of `f` (all but the cursor and the limit); `false` when nothing can
/// match (an empty organisation list).
fn push_filter<'a, E: Engine>(q: &mut Sql<'a>, f: &'a ListFilter) -> Result<bool, StoreError> {
    if f.organizations.as_ref().is_some_and(Vec::is_empty) {
        return Ok(false);
    }
    only::<E>(q, f.organizations.as_deref());
    match f.statuses.as_slice() {
        [] => {}
        // One state as an equality, so that SQLite's planner may take a partial index on it
        // (`submissions_failed_by_org`): it does not read `IN ('failed')` as implying it.
        [one] => {
            q.push(&format!(" AND status = {}", states(&[*one])));
        }
        many => {
            q.push(&format!(" AND status IN ({})", states(many)));
        }
    }
    if let Some(k) = f.kind {
        q.push(" AND kind = ").bind(i64::from(k));
    }
    if let Some(from) = f.from {
        q.push(" AND created_at >= ").bind(from);
    }
    if let Some(to) = f.to {
        q.push(" AND created_at < ").bind(to);
    }
    if let Some(code) = &f.error_code {
        let c = E::errors_contain(q, "code", code)?;
        q.push(" AND ").push(&c);
    }
    if let Some(d) = f.disposition {
        let c = E::errors_contain(q, "disposition", d.as_str())?;
        q.push(" AND ").push(&c);
    }
    if let Some(at) = f.not_due_at {
        let p = q.arg(at);
        q.push(&format!(
            " AND NOT ((next_attempt_at IS NOT NULL AND next_attempt_at <= {p}) OR lease_owner IS NOT NULL)"
        ));
    }
    Ok(true)
}

/// The most submissions one sweep's transaction moves.
const SWEEP_BATCH: u64 = 500;

/// In one writing transaction: the ids `select` finds (at most [`SWEEP_BATCH`], locked where
/// the engine locks) take `step`, each with its event. Returns how many moved.
async fn sweep<E: Engine>(
    store: &E,
    select: &str,
    args: Vec<Arg<'_>>,
    step: &Step,
    now: DateTime<Utc>,
) -> Result<u64, StoreError> {
    let mut tx = store.write().await?;
    let ids = tx.fetch_all(&format!("{select} LIMIT {SWEEP_BATCH}{}", E::SKIP_LOCKED), args).await?;
    let mut moved = 0;
    for row in ids {
        if apply::<E>(&mut tx, row.id("id")?, step.from, None, None, &step.transition, now).await? {
            moved += 1;
        }
    }
    E::commit(tx).await?;
    Ok(moved)
}

#[async_trait::async_trait]
impl<E: Engine> Outbox for E {
    async fn intake_batch(&self, batch: &[NewSubmission]) -> Result<Vec<Result<Intake, StoreError>>, StoreError> {
        // Where the engine can, the whole batch in a handful of statements; otherwise (or if
        // one of them failed: a clash no check foresaw) document by document, each under its
        // own savepoint, so that only a bad one fails.
        if let Some(results) = self.intake_together(batch).await? {
            return Ok(results);
        }
        // Each key is held until the commit (where the engine holds keys), so the loser of a
        // race with another instance sees the winner's row instead of a constraint error;
        // the keys are taken in one order everywhere, so two batches never deadlock.
        let keys: Vec<String> = batch.iter().map(intake_key).collect();
        let mut order: Vec<usize> = (0..batch.len()).collect();
        order.sort_by(|&a, &b| keys[a].cmp(&keys[b]));
        let mut tx = self.write().await?;
        let mut results: Vec<Option<Result<Intake, StoreError>>> = (0..batch.len()).map(|_| None).collect();
        for i in order {
            let new = &batch[i];
            // Under a savepoint: a document that fails is undone alone.
            tx.execute("SAVEPOINT one_document", vec![]).await?;
            let done = match E::lock_intake_key(&mut tx, &keys[i]).await {
                Ok(()) => intake_one(&mut *tx, new).await,
                Err(e) => Err(e),
            };
            if done.is_err() {
                tx.execute("ROLLBACK TO SAVEPOINT one_document", vec![]).await?;
            }
            tx.execute("RELEASE SAVEPOINT one_document", vec![]).await?;
            results[i] = Some(done);
        }
        E::announce(&mut tx).await?;
        E::commit(tx).await?;
        Ok(results
            .into_iter()
            .map(|r| r.unwrap_or_else(|| Err(StoreError::Corrupt("intake skipped".into()))))
            .collect())
    }

    async fn submission(&self, id: Uuid) -> Result<Option<SubmissionRecord>, StoreError> {
        fetch(&mut *self.pooled().await?, id).await
    }

    async fn events(&self, id: Uuid) -> Result<Vec<Event>, StoreError> {
        let rows = self
            .pooled()
            .await?
            .fetch_all(
                "SELECT at, status, actor, detail FROM submission_events WHERE submission_id = $1 ORDER BY id",
                args![id],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(Event {
                    at: r.time("at")?,
                    status: r.status("status")?,
                    actor: r.text("actor")?,
                    detail: r.text("detail")?,
                })
            })
            .collect()
    }

    async fn list_submissions(&self, f: &ListFilter) -> Result<Vec<SubmissionRecord>, StoreError> {
        let mut q = Sql::new(format!("SELECT {COLUMNS} FROM submissions WHERE 1 = 1"));
        if !push_filter::<E>(&mut q, f)? {
            return Ok(Vec::new());
        }
        if let Some((at, id)) = f.before {
            let (a, i) = (q.arg(at), q.arg(id));
            q.push(" AND ").push(&E::keyset(if f.oldest_first { ">" } else { "<" }, &a, &i));
        }
        q.push(if f.oldest_first {
            " ORDER BY created_at, id LIMIT "
        } else {
            " ORDER BY created_at DESC, id DESC LIMIT "
        })
        .bind(i64::from(f.limit));
        self.pooled().await?.fetch_all(&q.text, q.args).await?.iter().map(record).collect()
    }

    async fn count_submissions(&self, f: &ListFilter) -> Result<u64, StoreError> {
        let mut q = Sql::new("SELECT COUNT(*) AS n FROM submissions WHERE 1 = 1");
        if !push_filter::<E>(&mut q, f)? {
            return Ok(0);
        }
        self.pooled().await?.fetch_one(&q.text, q.args).await?.count("n")
    }

    async fn document_content(&self, id: Uuid) -> Result<Option<Vec<u8>>, StoreError> {
        content(&mut *self.pooled().await?, id).await
    }

    async fn claim_due(
        &self,
        now: DateTime<Utc>,
        limit: u32,
        owner: &str,
        lease_until: DateTime<Utc>,
    ) -> Result<Vec<Claimed>, StoreError> {
        let mut tx = self.write().await?;
        let claimable = states(&CLAIM.sends_from.iter().chain(CLAIM.reconciles_from).copied().collect::<Vec<_>>());
        let mut due: Vec<(Uuid, Status)> = Vec::new();
        for row in tx.fetch_all(&E::claim_fair(&claimable), args![now, i64::from(limit)]).await? {
            due.push((row.id("id")?, row.status("status")?));
        }
        if due.len() < limit as usize {
            let taken = Arg::Ids(due.iter().map(|(id, _)| *id).collect());
            let wanted = i64::from(limit) - due.len() as i64;
            for row in tx.fetch_all(&E::claim_more(&claimable), vec![now.into(), wanted.into(), taken]).await? {
                due.push((row.id("id")?, row.status("status")?));
            }
        }
        let mut claimed = Vec::with_capacity(due.len());
        for (id, from) in due {
            let sending = CLAIM.sends_from.contains(&from);
            let row = tx
                .fetch_one(
                    &format!(
                        "UPDATE submissions SET status = $1, attempts = attempts + CASE WHEN $2 THEN 1 ELSE 0 END,
                             next_attempt_at = NULL, checks = CASE WHEN $2 THEN 0 ELSE checks + 1 END,
                             inconclusive = CASE WHEN $2 THEN 0 ELSE inconclusive END,
                             lease_owner = $3, lease_until = $4, updated_at = $5
                         WHERE id = $6 RETURNING {COLUMNS}"
                    ),
                    args![if sending { Status::Sending } else { from }, sending, owner, lease_until, now, id],
                )
                .await?;
            if sending {
                event(&mut *tx, id, now, Status::Sending, "relay", CLAIM.send_detail).await?;
            }
            let record = record(&row)?;
            tx.execute(
                "INSERT INTO organization_turns (organization, last_claimed_at) VALUES ($1, $2)
                 ON CONFLICT (organization) DO UPDATE SET last_claimed_at = CASE
                     WHEN excluded.last_claimed_at > organization_turns.last_claimed_at THEN excluded.last_claimed_at
                     ELSE organization_turns.last_claimed_at END",
                args![record.organization.as_str(), now],
            )
            .await?;
            claimed.push(Claimed { record, claimed_from: from });
        }
        E::commit(tx).await?;
        Ok(claimed)
    }

    async fn note_message(&self, id: Uuid, message_id: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        tx.execute(
            "INSERT INTO submission_messages (message_id, submission_id, sent_at) VALUES ($1, $2, $3)",
            args![message_id, id, at],
        )
        .await?;
        tx.execute("UPDATE submissions SET current_message_id = $1 WHERE id = $2", args![message_id, id]).await?;
        E::commit(tx).await
    }

    async fn transition(
        &self,
        id: Uuid,
        from: &[Status],
        lease_owner: Option<&str>,
        t: &Transition,
        at: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let applied = apply::<E>(&mut tx, id, from, lease_owner, None, t, at).await?;
        if applied {
            E::commit(tx).await?
        } else {
            E::rollback(tx).await?
        }
        Ok(applied)
    }

    async fn apply_callback(
        &self,
        cb: &CallbackRecord,
        change: Option<CallbackChange<'_>>,
        at: DateTime<Utc>,
    ) -> Result<(bool, bool), StoreError> {
        let mut tx = self.write().await?;
        let first = insert_callback(&mut *tx, cb).await?;
        let applied = match (first, change) {
            (true, Some(c)) => apply::<E>(&mut tx, c.id, c.from, None, c.current_message, c.transition, at).await?,
            _ => false,
        };
        E::commit(tx).await?;
        Ok((first, applied))
    }

    async fn record_event(&self, id: Uuid, actor: &str, detail: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        self.write_one(
            "INSERT INTO submission_events (submission_id, at, status, actor, detail)
                 SELECT id, $1, status, $2, $3 FROM submissions WHERE id = $4",
            args![at, actor, detail, id],
        )
        .await?;
        Ok(())
    }

    async fn submission_by_message(&self, message_id: &str) -> Result<Option<SubmissionRecord>, StoreError> {
        let sql = format!(
            "SELECT {COLUMNS} FROM submissions
             WHERE id = (SELECT submission_id FROM submission_messages WHERE message_id = $1)"
        );
        self.pooled().await?.fetch_optional(&sql, args![message_id]).await?.as_ref().map(record).transpose()
    }

    async fn messages(&self, id: Uuid) -> Result<Vec<String>, StoreError> {
        let rows = self
            .pooled()
            .await?
            .fetch_all(
                "SELECT message_id FROM submission_messages WHERE submission_id = $1 ORDER BY sent_at, message_id",
                args![id],
            )
            .await?;
        rows.iter().map(|r| r.text("message_id")).collect()
    }

    async fn submission_by_emdr_id(&self, emdr_id: &str) -> Result<Option<SubmissionRecord>, StoreError> {
        let sql = format!("SELECT {COLUMNS} FROM submissions WHERE emdr_id = $1");
        self.pooled().await?.fetch_optional(&sql, args![emdr_id]).await?.as_ref().map(record).transpose()
    }

    async fn reap_leases(&self, now: DateTime<Utc>, step: &Step) -> Result<u64, StoreError> {
        let select = format!(
            "SELECT id FROM submissions WHERE lease_owner IS NOT NULL AND lease_until < $1 AND status IN ({})",
            states(step.from)
        );
        sweep(self, &select, args![now], step, now).await
    }

    async fn expire_awaiting(&self, before: DateTime<Utc>, now: DateTime<Utc>, step: &Step) -> Result<u64, StoreError> {
        let select = format!(
            "SELECT id FROM submissions WHERE status = 'awaiting_result' AND status IN ({})
                 AND (check_at <= $2 OR (check_at IS NULL AND awaiting_since < $1))",
            states(step.from)
        );
        sweep(self, &select, args![before, now], step, now).await
    }

    async fn renew_lease(&self, id: Uuid, owner: &str, until: DateTime<Utc>) -> Result<bool, StoreError> {
        let renewed = self
            .write_one(
                "UPDATE submissions SET lease_until = $1 WHERE id = $2 AND lease_owner = $3",
                args![until, id, owner],
            )
            .await?;
        Ok(renewed > 0)
    }

    async fn release_leases_of(&self, prefix: &str, now: DateTime<Utc>, step: &Step) -> Result<u64, StoreError> {
        let select = format!(
            "SELECT id FROM submissions WHERE lease_owner IS NOT NULL
                 AND substr(lease_owner, 1, length($1)) = $1 AND status IN ({})",
            states(step.from)
        );
        let mut released = 0;
        loop {
            let n = sweep(self, &select, args![prefix], step, now).await?;
            released += n;
            if n < SWEEP_BATCH {
                return Ok(released);
            }
        }
    }

    async fn record_callback(&self, cb: &CallbackRecord) -> Result<bool, StoreError> {
        let _turn = self.turn().await;
        insert_callback(&mut *self.pooled().await?, cb).await
    }

    async fn purge_callbacks(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.write_one("DELETE FROM remd_callbacks WHERE received_at < $1", args![before]).await
    }

    async fn count_by_status(&self) -> Result<Vec<(Status, u64)>, StoreError> {
        let rows = self
            .pooled()
            .await?
            .fetch_all("SELECT status, COUNT(*) AS n FROM submissions GROUP BY status", vec![])
            .await?;
        rows.iter().map(|r| Ok((r.status("status")?, r.count("n")?))).collect()
    }

    async fn next_due(&self) -> Result<Option<DateTime<Utc>>, StoreError> {
        self.pooled()
            .await?
            .fetch_one("SELECT MIN(next_attempt_at) AS due FROM submissions WHERE next_attempt_at IS NOT NULL", vec![])
            .await?
            .opt_time("due")
    }
}
