//! [`Store`] written once for every [`Engine`]: clients, the FRMR cache, periodic tasks
//! and NSI copies; what only one engine does is the engine's.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chrono::{DateTime, Utc};
use egisz_contract::frmr::FrmrPerson;
use egisz_contract::{Oid, Snils};

use super::engine::Engine;
use super::sql::{Arg, Exec, Read, args};
use super::{Backend, CachedLookup, Durability, InstanceGuard, NsiCopy, QuotaRow, Store, StoreError};
use crate::clients::{ClientRecord, NewClient, Scope};

/// A row of `api_clients` (columns by name, so `c.*` of a join reads too).
pub(super) fn client(row: &impl Read) -> Result<ClientRecord, StoreError> {
    let all = row.flag("all_organizations")?;
    Ok(ClientRecord {
        id: row.id("id")?,
        name: row.text("name")?,
        key_id: row.text("key_id")?,
        key_hash: row.bytes("key_hash")?,
        roles: row.json("roles")?,
        scope: if all { Scope::All } else { Scope::Only(row.json("organizations")?) },
        created_at: row.time("created_at")?,
        revoked_at: row.opt_time("revoked_at")?,
    })
}

fn person_from_json(value: Option<serde_json::Value>) -> Result<Option<FrmrPerson>, StoreError> {
    value.map(serde_json::from_value).transpose().map_err(|e| StoreError::Corrupt(format!("staff_cache.person: {e}")))
}

#[async_trait::async_trait]
impl<E: Engine> Store for E {
    fn backend(&self) -> Backend {
        E::BACKEND
    }

    async fn migrate(&self) -> Result<(), StoreError> {
        Engine::migrate(self).await
    }

    async fn readiness(&self) -> Result<(), StoreError> {
        Engine::readiness(self).await
    }

    async fn durability(&self) -> Result<Durability, StoreError> {
        Engine::durability(self).await
    }

    fn parallel_writers(&self) -> usize {
        Engine::parallel_writers(self)
    }

    async fn hold_instance(&self, instance_id: &str, wait: Duration) -> Result<InstanceGuard, StoreError> {
        Engine::hold_instance(self, instance_id, wait).await
    }

    async fn insert_client(&self, c: &NewClient) -> Result<(), StoreError> {
        let (all, orgs) = match &c.scope {
            Scope::All => (true, BTreeSet::new()),
            Scope::Only(set) => (false, set.clone()),
        };
        let mut tx = self.write().await?;
        tx.execute(
            "INSERT INTO api_clients (id, name, key_id, key_hash, roles, organizations, all_organizations, created_at, revoked_at)
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
            vec![
                c.id.into(),
                (&c.name).into(),
                (&c.key_id).into(),
                (&c.key_hash).into(),
                Arg::json(&c.roles)?,
                Arg::json(&orgs)?,
                all.into(),
                c.created_at.into(),
                c.revoked_at.into(),
            ],
        )
        .await?;
        E::commit(tx).await
    }

    async fn client_by_key_id(&self, key_id: &str) -> Result<Option<ClientRecord>, StoreError> {
        let mut conn = self.pooled().await?;
        conn.fetch_optional("SELECT * FROM api_clients WHERE key_id = $1", args![key_id])
            .await?
            .as_ref()
            .map(client)
            .transpose()
    }

    async fn list_clients(&self) -> Result<Vec<ClientRecord>, StoreError> {
        let mut conn = self.pooled().await?;
        conn.fetch_all("SELECT * FROM api_clients ORDER BY created_at, id", vec![]).await?.iter().map(client).collect()
    }

    async fn revoke_client(&self, id_or_key_id: &str, at: DateTime<Utc>) -> Result<bool, StoreError> {
        let mut tx = self.write().await?;
        let done = tx
            .execute(
                "UPDATE api_clients SET revoked_at = $1
                 WHERE (CAST(id AS TEXT) = $2 OR key_id = $2) AND revoked_at IS NULL",
                args![at, id_or_key_id],
            )
            .await?;
        E::commit(tx).await?;
        Ok(done > 0)
    }

    fn spawn_outbox_listener(
        &self,
        wake: Arc<tokio::sync::Notify>,
        stop: tokio_util::sync::CancellationToken,
    ) -> Option<tokio::task::JoinHandle<()>> {
        Engine::spawn_outbox_listener(self, wake, stop)
    }

    async fn staff_cache_get(&self, snils: &Snils, organization: &Oid) -> Result<Option<CachedLookup>, StoreError> {
        let mut conn = self.pooled().await?;
        let Some(row) = conn
            .fetch_optional(
                "SELECT person, fetched_at FROM staff_cache WHERE snils = $1 AND organization = $2",
                args![snils.as_str(), organization.as_str()],
            )
            .await?
        else {
            return Ok(None);
        };
        Ok(Some(CachedLookup {
            snils: snils.clone(),
            organization: organization.clone(),
            person: person_from_json(row.opt_json("person")?)?,
            fetched_at: row.time("fetched_at")?,
        }))
    }

    async fn staff_cache_put(&self, e: &CachedLookup) -> Result<(), StoreError> {
        let person = Arg::opt_json(e.person.as_ref())?;
        self.write_one(
            "INSERT INTO staff_cache (snils, organization, person, fetched_at) VALUES ($1, $2, $3, $4)
             ON CONFLICT (snils, organization) DO UPDATE SET person = excluded.person, fetched_at = excluded.fetched_at
             WHERE excluded.fetched_at >= staff_cache.fetched_at",
            vec![e.snils.as_str().into(), e.organization.as_str().into(), person, e.fetched_at.into()],
        )
        .await?;
        Ok(())
    }

    async fn staff_cache_purge(&self, before: DateTime<Utc>) -> Result<u64, StoreError> {
        self.write_one("DELETE FROM staff_cache WHERE fetched_at < $1", args![before]).await
    }

    fn shares_quotas(&self) -> bool {
        Engine::shares_quotas(self)
    }

    async fn quota_reserve(
        &self,
        upstream: &str,
        rate: f64,
        burst: u32,
        max_wait: Duration,
        now: DateTime<Utc>,
    ) -> Result<QuotaRow, StoreError> {
        Engine::quota_reserve(self, upstream, rate, burst, max_wait, now).await
    }

    async fn claim_periodic(
        &self,
        task: &str,
        instance: &str,
        now: DateTime<Utc>,
        due_before: DateTime<Utc>,
    ) -> Result<bool, StoreError> {
        let claimed = self
            .write_one(
                "INSERT INTO periodic_tasks (name, last_run_at, instance) VALUES ($1, $2, $3)
                 ON CONFLICT (name) DO UPDATE SET last_run_at = excluded.last_run_at, instance = excluded.instance
                 WHERE periodic_tasks.last_run_at <= $4",
                args![task, now, instance, due_before],
            )
            .await?;
        Ok(claimed == 1)
    }

    async fn nsi_save(&self, copy: &NsiCopy) -> Result<(), StoreError> {
        let mut tx = self.write().await?;
        tx.execute(
            "INSERT INTO nsi_dictionaries (oid, version, fetched_at, rows) VALUES ($1, $2, $3, $4)
             ON CONFLICT (oid, version) DO UPDATE SET fetched_at = excluded.fetched_at, rows = excluded.rows",
            vec![(&copy.oid).into(), (&copy.version).into(), copy.fetched_at.into(), Arg::json(&copy.rows)?],
        )
        .await?;
        E::commit(tx).await
    }

    async fn nsi_latest(&self) -> Result<Vec<NsiCopy>, StoreError> {
        let mut conn = self.pooled().await?;
        let rows = conn
            .fetch_all(
                "SELECT oid, version, fetched_at, rows FROM nsi_dictionaries d
                 WHERE fetched_at = (SELECT MAX(fetched_at) FROM nsi_dictionaries WHERE oid = d.oid) ORDER BY oid",
                vec![],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(NsiCopy {
                    oid: r.text("oid")?,
                    version: r.text("version")?,
                    fetched_at: r.time("fetched_at")?,
                    rows: r.json("rows")?,
                })
            })
            .collect()
    }
}
