//! The operations half of the store: operators' changes with their audit entry, the audit
//! log, the queue's figures, the report's counts and console sign-ins — the trait, and its
//! one implementation for every [`Engine`].

use chrono::{DateTime, Utc};
use egisz_contract::Oid;

use super::StoreError;
use super::engine::Engine;
use super::outbox::{apply, only};
use super::sql::{Arg, Exec, Read, Sql, args, states};
use crate::audit::{Action, AuditEntry, AuditFilter, NewAudit};
use crate::clients::ClientRecord;
use crate::submission::{CohortCount, DayCount, OpsChange, QueueFigures, Status, Waiting};

/// A console sign-in as stored (only the token's hash).
#[derive(Debug, Clone, PartialEq)]
pub struct ConsoleSession {
    pub token_hash: Vec<u8>,
    pub client: ClientRecord,
    pub csrf_token: String,
    pub created_at: DateTime<Utc>,
    pub expires_at: DateTime<Utc>,
}

#[async_trait::async_trait]
pub trait OpsStore: Send + Sync {
    /// In one transaction: each change (as `Outbox::transition`, without a lease; the lease
    /// a change finds is cleared), then `audit` — whose count, when `None`, is the number of
    /// changes applied. Returns that number.
    async fn operate(&self, changes: &[OpsChange<'_>], audit: &NewAudit) -> Result<u64, StoreError>;

    /// Newest first.
    async fn audit_log(&self, filter: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError>;

    /// Counts per status (of `organizations`, when given; kept by the database as rows
    /// change, not counted at each call); the oldest submission in one of `waiting`; how
    /// many in `waiting` were created before `deadline`.
    async fn queue_figures(
        &self,
        waiting: &[Status],
        deadline: DateTime<Utc>,
        organizations: Option<&[Oid]>,
    ) -> Result<QueueFigures, StoreError>;

    /// Submissions created in `[from, to)` (of `organizations`, when given), counted by
    /// organisation, kind, status and first error code.
    async fn cohort(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        organizations: Option<&[Oid]>,
    ) -> Result<Vec<CohortCount>, StoreError>;

    /// Submissions created in `[from, to)` counted by day (days since 1970-01-01 at
    /// `utc_offset_seconds`) and status.
    async fn daily(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        utc_offset_seconds: i32,
        organizations: Option<&[Oid]>,
    ) -> Result<Vec<DayCount>, StoreError>;

    /// Every organisation that has submitted a document (of `organizations`, when given), by
    /// OID: one index seek per organisation, whatever the number of submissions.
    async fn submitting_organizations(&self, organizations: Option<&[Oid]>) -> Result<Vec<String>, StoreError>;

    /// Folds counts the database noted as rows changed into the kept counts (PostgreSQL;
    /// nothing to do on SQLite). Returns how many notes were folded.
    async fn compact_counts(&self) -> Result<u64, StoreError>;

    /// How many of `ids` are in each status.
    async fn statuses_of(&self, ids: &[uuid::Uuid]) -> Result<Vec<(Status, u64)>, StoreError>;

    /// The secret `name` every instance on the database shares: `fresh` is stored if there
    /// is none yet (the first instance's), and the stored one is returned.
    async fn shared_secret(&self, name: &str, fresh: &[u8]) -> Result<Vec<u8>, StoreError>;

    async fn create_session(
        &self,
        token_hash: &[u8],
        client: uuid::Uuid,
        csrf_token: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError>;

    /// The sign-in of `token_hash` with its client, if it has not expired at `now`.
    async fn session(&self, token_hash: &[u8], now: DateTime<Utc>) -> Result<Option<ConsoleSession>, StoreError>;

    async fn delete_session(&self, token_hash: &[u8]) -> Result<(), StoreError>;

    /// Deletes sign-ins expired before `now`; returns how many.
    async fn purge_sessions(&self, now: DateTime<Utc>) -> Result<u64, StoreError>;
}

#[async_trait::async_trait]
impl<E: Engine> OpsStore for E {
    async fn operate(&self, changes: &[OpsChange<'_>], audit: &NewAudit) -> Result<u64, StoreError> {
        let mut tx = self.write().await?;
        let mut applied = 0;
        for c in changes {
            if apply::<E>(&mut tx, c.id, c.from, None, None, c.transition, audit.at).await? {
                applied += 1;
            }
        }
        tx.execute(
            "INSERT INTO ops_audit (at, actor_id, actor_name, action, organization, submission_id, filter, comment, count)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            vec![
                audit.at.into(),
                audit.actor_id.into(),
                (&audit.actor_name).into(),
                audit.action.as_str().into(),
                (&audit.organization).into(),
                audit.submission_id.into(),
                Arg::opt_json(audit.filter.as_ref())?,
                (&audit.comment).into(),
                (audit.count.unwrap_or(applied) as i64).into(),
            ],
        )
        .await?;
        E::commit(tx).await?;
        Ok(applied)
    }

    async fn audit_log(&self, f: &AuditFilter) -> Result<Vec<AuditEntry>, StoreError> {
        let mut q = Sql::new(
            "SELECT id, at, actor_id, actor_name, action, organization, submission_id, filter, comment, count FROM ops_audit
             WHERE ($1 IS NULL OR at >= $1) AND ($2 IS NULL OR at < $2)
                 AND ($3 IS NULL OR actor_name = $3 OR CAST(actor_id AS TEXT) = $3) AND ($4 IS NULL OR id < $4)",
        );
        q.args = args![f.from, f.to, &f.actor, f.before, i64::from(f.limit)];
        if let Some((orgs, id)) = &f.visible_to {
            let who = q.arg(*id);
            let whose = q.arg(Arg::Texts(orgs.iter().map(|o| o.as_str()).collect()));
            q.push(&format!(" AND (actor_id = {who} OR {})", E::any("organization", &whose)));
        }
        q.push(" ORDER BY id DESC LIMIT $5");
        let rows = self.pooled().await?.fetch_all(&q.text, q.args).await?;
        rows.iter()
            .map(|r| {
                let action = r.text("action")?;
                Ok(AuditEntry {
                    id: r.int("id")?,
                    at: r.time("at")?,
                    actor_id: r.id("actor_id")?,
                    actor_name: r.text("actor_name")?,
                    action: Action::parse(&action)
                        .ok_or_else(|| StoreError::Corrupt(format!("unknown audit action {action:?}")))?,
                    organization: r.opt_text("organization")?,
                    submission_id: r.opt_id("submission_id")?,
                    filter: r.opt_json("filter")?,
                    comment: r.opt_text("comment")?,
                    count: r.count("count")?,
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
        let mut conn = self.pooled().await?;
        let mut q = Sql::new(format!("SELECT status, CAST(SUM(n) AS BIGINT) AS n FROM {} c WHERE 1 = 1", E::COUNTS));
        only::<E>(&mut q, organizations);
        q.push(" GROUP BY status HAVING SUM(n) <> 0");
        let mut counts = Vec::new();
        for r in conn.fetch_all(&q.text, q.args).await? {
            counts.push((r.status("status")?, r.count("n")?));
        }
        // One index seek per state (status, created_at), rather than a sort of them all.
        let mut oldest: Option<Waiting> = None;
        for s in waiting {
            let mut q = Sql::new("SELECT id, organization, created_at FROM submissions WHERE status = ");
            q.bind(*s);
            only::<E>(&mut q, organizations);
            q.push(" ORDER BY created_at, id LIMIT 1");
            if let Some(r) = conn.fetch_optional(&q.text, q.args).await? {
                let w = Waiting {
                    id: r.id("id")?,
                    organization: r.text("organization")?,
                    status: *s,
                    created_at: r.time("created_at")?,
                };
                if oldest.as_ref().is_none_or(|o| w.created_at < o.created_at) {
                    oldest = Some(w);
                }
            }
        }
        let mut q = Sql::new(format!(
            "SELECT COUNT(*) AS n FROM submissions WHERE status IN ({}) AND created_at < ",
            states(waiting)
        ));
        q.bind(deadline);
        only::<E>(&mut q, organizations);
        let past = conn.fetch_one(&q.text, q.args).await?.count("n")?;
        Ok(QueueFigures { counts, oldest_waiting: oldest, past_deadline: past })
    }

    async fn cohort(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        organizations: Option<&[Oid]>,
    ) -> Result<Vec<CohortCount>, StoreError> {
        let mut q = Sql::new(
            "SELECT organization, kind, status, last_error_code, COUNT(*) AS n FROM submissions
             WHERE created_at >= $1 AND created_at < $2",
        );
        q.args = args![from, to];
        only::<E>(&mut q, organizations);
        q.push(" GROUP BY organization, kind, status, last_error_code");
        let rows = self.pooled().await?.fetch_all(&q.text, q.args).await?;
        rows.iter()
            .map(|r| {
                Ok(CohortCount {
                    organization: r.text("organization")?,
                    kind: r.int("kind")? as u32,
                    status: r.status("status")?,
                    error_code: r.opt_text("last_error_code")?,
                    count: r.count("n")?,
                })
            })
            .collect()
    }

    async fn submitting_organizations(&self, organizations: Option<&[Oid]>) -> Result<Vec<String>, StoreError> {
        // A skip-scan over the (organization, local_uid) key: the next organisation after
        // the last, until none is left.
        let rows = self
            .pooled()
            .await?
            .fetch_all(
                "WITH RECURSIVE orgs(organization) AS (
                     SELECT MIN(organization) FROM submissions
                     UNION ALL
                     SELECT (SELECT MIN(s.organization) FROM submissions s WHERE s.organization > orgs.organization)
                     FROM orgs WHERE orgs.organization IS NOT NULL
                 )
                 SELECT organization FROM orgs WHERE organization IS NOT NULL",
                vec![],
            )
            .await?;
        let all = rows.iter().map(|r| r.text("organization")).collect::<Result<Vec<String>, _>>()?;
        Ok(match organizations {
            Some(only) => all.into_iter().filter(|o| only.iter().any(|x| x.as_str() == o)).collect(),
            None => all,
        })
    }

    async fn daily(
        &self,
        from: DateTime<Utc>,
        to: DateTime<Utc>,
        utc_offset_seconds: i32,
        organizations: Option<&[Oid]>,
    ) -> Result<Vec<DayCount>, StoreError> {
        let mut q = Sql::new("");
        let day = E::created_day(&mut q, utc_offset_seconds);
        let (a, b) = (q.arg(from), q.arg(to));
        q.push(&format!(
            "SELECT {day} AS day, status, COUNT(*) AS n FROM submissions WHERE created_at >= {a} AND created_at < {b}"
        ));
        only::<E>(&mut q, organizations);
        q.push(" GROUP BY day, status");
        let rows = self.pooled().await?.fetch_all(&q.text, q.args).await?;
        rows.iter()
            .map(|r| Ok(DayCount { day: r.int("day")?, status: r.status("status")?, count: r.count("n")? }))
            .collect()
    }

    async fn compact_counts(&self) -> Result<u64, StoreError> {
        Engine::compact_counts(self).await
    }

    async fn statuses_of(&self, ids: &[uuid::Uuid]) -> Result<Vec<(Status, u64)>, StoreError> {
        let sql = format!(
            "SELECT status, COUNT(*) AS n FROM submissions WHERE {} GROUP BY status ORDER BY status",
            E::any("id", "$1")
        );
        let rows = self.pooled().await?.fetch_all(&sql, vec![Arg::Ids(ids.to_vec())]).await?;
        rows.iter().map(|r| Ok((r.status("status")?, r.count("n")?))).collect()
    }

    async fn shared_secret(&self, name: &str, fresh: &[u8]) -> Result<Vec<u8>, StoreError> {
        self.write_one(
            "INSERT INTO gateway_secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING",
            args![name, fresh],
        )
        .await?;
        self.pooled()
            .await?
            .fetch_one("SELECT value FROM gateway_secrets WHERE name = $1", args![name])
            .await?
            .bytes("value")
    }

    async fn create_session(
        &self,
        token_hash: &[u8],
        client: uuid::Uuid,
        csrf_token: &str,
        now: DateTime<Utc>,
        expires_at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        self.write_one(
            "INSERT INTO console_sessions (token_hash, client_id, csrf_token, created_at, expires_at)
                 VALUES ($1, $2, $3, $4, $5)",
            args![token_hash, client, csrf_token, now, expires_at],
        )
        .await?;
        Ok(())
    }

    async fn session(&self, token_hash: &[u8], now: DateTime<Utc>) -> Result<Option<ConsoleSession>, StoreError> {
        let row = self
            .pooled()
            .await?
            .fetch_optional(
                "SELECT c.*, s.token_hash AS s_hash, s.csrf_token AS s_csrf, s.created_at AS s_created,
                     s.expires_at AS s_expires
                 FROM console_sessions s JOIN api_clients c ON c.id = s.client_id
                 WHERE s.token_hash = $1 AND s.expires_at > $2",
                args![token_hash, now],
            )
            .await?;
        row.map(|r| {
            Ok(ConsoleSession {
                token_hash: r.bytes("s_hash")?,
                client: super::core::client(&r)?,
                csrf_token: r.text("s_csrf")?,
                created_at: r.time("s_created")?,
                expires_at: r.time("s_expires")?,
            })
        })
        .transpose()
    }

    async fn delete_session(&self, token_hash: &[u8]) -> Result<(), StoreError> {
        self.write_one("DELETE FROM console_sessions WHERE token_hash = $1", args![token_hash]).await?;
        Ok(())
    }

    async fn purge_sessions(&self, now: DateTime<Utc>) -> Result<u64, StoreError> {
        self.write_one("DELETE FROM console_sessions WHERE expires_at <= $1", args![now]).await
    }
}
