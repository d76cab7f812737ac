//! FRMO's copies: the organisations and departments NSI publishes, written page by page as
//! they are fetched and read back page by page (by key) into the in-memory index — the trait,
//! and its one implementation for every [`Engine`]. Which copy is in force, and when one is
//! fetched or dropped, is `crate::nsi::frmo`'s.

use chrono::{DateTime, NaiveDate, Utc};
use egisz_nsi::{FrmoDepartment, FrmoOrganization};

use super::StoreError;
use super::engine::Engine;
use super::sql::{Arg, Exec, Read, Sql, args};

/// One copy of one FRMO dictionary, as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FrmoCopy {
    /// The dictionary's NSI OID.
    pub dictionary: String,
    pub version: String,
    pub started_at: DateTime<Utc>,
    /// When its last page was stored; `None` while it is being fetched (never in force).
    pub complete_at: Option<DateTime<Utc>>,
    pub rows: u64,
}

#[async_trait::async_trait]
pub trait FrmoStore: Send + Sync {
    /// Every copy of the FRMO dictionaries, complete or not, oldest first.
    async fn frmo_copies(&self) -> Result<Vec<FrmoCopy>, StoreError>;
    /// Records that `version` of `dictionary` is being fetched (again), not complete.
    async fn frmo_begin(&self, dictionary: &str, version: &str, at: DateTime<Utc>) -> Result<(), StoreError>;
    /// Stores one page of organisations of `version` (replacing rows of the same OID), in one
    /// transaction.
    async fn frmo_put_organizations(&self, version: &str, rows: &[FrmoOrganization]) -> Result<(), StoreError>;
    /// Stores one page of departments of `version`, as [`FrmoStore::frmo_put_organizations`].
    async fn frmo_put_departments(&self, version: &str, rows: &[FrmoDepartment]) -> Result<(), StoreError>;
    /// Marks `version` of `dictionary` complete, with `rows` rows: it may go in force.
    async fn frmo_complete(
        &self,
        dictionary: &str,
        version: &str,
        rows: u64,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError>;
    /// Up to `limit` organisations of `version`, by OID, after `after`.
    async fn frmo_organizations(
        &self,
        version: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<FrmoOrganization>, StoreError>;
    /// Up to `limit` departments of `version`, by OID, after `after`.
    async fn frmo_departments(
        &self,
        version: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<FrmoDepartment>, StoreError>;
    /// The full and short names of `oids` in `version` of the organisations, as
    /// `(oid, full, short)`; an OID the copy lacks is left out.
    async fn frmo_names(
        &self,
        version: &str,
        oids: &[&str],
    ) -> Result<Vec<(String, String, Option<String>)>, StoreError>;
    /// Deletes up to `limit` rows of `version` of `dictionary`; once none are left, the copy
    /// itself. How many rows went (0: the copy is gone).
    async fn frmo_drop(&self, dictionary: &str, version: &str, limit: u32) -> Result<u64, StoreError>;
}

/// The row table of each FRMO dictionary.
fn table(dictionary: &str) -> Result<&'static str, StoreError> {
    match dictionary {
        egisz_nsi::wire::frmo::ORGANIZATIONS => Ok("frmo_organizations"),
        egisz_nsi::wire::frmo::DEPARTMENTS => Ok("frmo_departments"),
        other => Err(StoreError::Corrupt(format!("{other} is not an FRMO dictionary"))),
    }
}

/// The organisations' columns after `version`, `oid` first.
const ORGANIZATION_COLUMNS: [&str; 7] =
    ["oid", "name_full", "name_short", "region_id", "region_name", "created_on", "deleted_on"];
/// The departments' columns after `version`, `oid` first.
const DEPARTMENT_COLUMNS: [&str; 5] = ["oid", "organization", "name", "created_on", "liquidated_on"];

/// `rows` (each the values of `columns`, `oid` first) of `version` into `table`, one statement
/// in one transaction, replacing rows of the same OID.
async fn upsert<E: Engine>(
    store: &E,
    table: &str,
    columns: &[&str],
    version: &str,
    rows: Vec<Vec<Option<&str>>>,
) -> Result<(), StoreError> {
    if rows.is_empty() {
        return Ok(());
    }
    let mut q = Sql::new(format!("INSERT INTO {table} (version, {}) VALUES ", columns.join(", ")));
    for (i, row) in rows.into_iter().enumerate() {
        q.push(if i == 0 { "(" } else { ", (" }).bind(version);
        for value in row {
            q.push(", ").bind(value);
        }
        q.push(")");
    }
    let set: Vec<String> = columns[1..].iter().map(|c| format!("{c} = excluded.{c}")).collect();
    q.push(&format!(" ON CONFLICT (version, oid) DO UPDATE SET {}", set.join(", ")));
    let mut tx = store.write().await?;
    tx.execute(&q.text, q.args).await?;
    E::commit(tx).await
}

/// Up to `limit` rows of `columns` of `version` in `table`, by OID, after `after`.
async fn page<E: Engine>(
    store: &E,
    table: &str,
    columns: &[&str],
    version: &str,
    after: Option<&str>,
    limit: u32,
) -> Result<Vec<<E::Conn as Exec>::Row>, StoreError> {
    store
        .pooled()
        .await?
        .fetch_all(
            &format!(
                "SELECT {} FROM {table} WHERE version = $1 AND oid > $2 ORDER BY oid LIMIT $3",
                columns.join(", ")
            ),
            args![version, after.unwrap_or(""), i64::from(limit)],
        )
        .await
}

fn day(row: &impl Read, col: &str) -> Result<Option<NaiveDate>, StoreError> {
    row.opt_text(col)?
        .map(|t| t.parse::<NaiveDate>().map_err(|_| StoreError::Corrupt(format!("{col} is not a day"))))
        .transpose()
}

fn day_text(d: Option<NaiveDate>) -> Option<String> {
    d.map(|d| d.format("%Y-%m-%d").to_string())
}

#[async_trait::async_trait]
impl<E: Engine> FrmoStore for E {
    async fn frmo_copies(&self) -> Result<Vec<FrmoCopy>, StoreError> {
        let rows = self
            .pooled()
            .await?
            .fetch_all(
                "SELECT dictionary, version, started_at, complete_at, row_count FROM frmo_copies
                 ORDER BY started_at, dictionary",
                vec![],
            )
            .await?;
        rows.iter()
            .map(|r| {
                Ok(FrmoCopy {
                    dictionary: r.text("dictionary")?,
                    version: r.text("version")?,
                    started_at: r.time("started_at")?,
                    complete_at: r.opt_time("complete_at")?,
                    rows: r.count("row_count")?,
                })
            })
            .collect()
    }

    async fn frmo_begin(&self, dictionary: &str, version: &str, at: DateTime<Utc>) -> Result<(), StoreError> {
        table(dictionary)?;
        self.write_one(
            "INSERT INTO frmo_copies (dictionary, version, started_at, complete_at, row_count)
             VALUES ($1, $2, $3, NULL, 0)
             ON CONFLICT (dictionary, version) DO UPDATE SET started_at = excluded.started_at,
                 complete_at = NULL, row_count = 0",
            args![dictionary, version, at],
        )
        .await?;
        Ok(())
    }

    async fn frmo_put_organizations(&self, version: &str, rows: &[FrmoOrganization]) -> Result<(), StoreError> {
        let dates: Vec<(Option<String>, Option<String>)> =
            rows.iter().map(|r| (day_text(r.created), day_text(r.deleted))).collect();
        let values = rows
            .iter()
            .zip(&dates)
            .map(|(r, (created, deleted))| {
                vec![
                    Some(r.oid.as_str()),
                    Some(r.name_full.as_str()),
                    r.name_short.as_deref(),
                    r.region_id.as_deref(),
                    r.region_name.as_deref(),
                    created.as_deref(),
                    deleted.as_deref(),
                ]
            })
            .collect();
        upsert(self, "frmo_organizations", &ORGANIZATION_COLUMNS, version, values).await
    }

    async fn frmo_put_departments(&self, version: &str, rows: &[FrmoDepartment]) -> Result<(), StoreError> {
        let dates: Vec<(Option<String>, Option<String>)> =
            rows.iter().map(|r| (day_text(r.created), day_text(r.liquidated))).collect();
        let values = rows
            .iter()
            .zip(&dates)
            .map(|(r, (created, liquidated))| {
                vec![
                    Some(r.oid.as_str()),
                    Some(r.organization.as_str()),
                    r.name.as_deref(),
                    created.as_deref(),
                    liquidated.as_deref(),
                ]
            })
            .collect();
        upsert(self, "frmo_departments", &DEPARTMENT_COLUMNS, version, values).await
    }

    async fn frmo_complete(
        &self,
        dictionary: &str,
        version: &str,
        rows: u64,
        at: DateTime<Utc>,
    ) -> Result<(), StoreError> {
        let rows = i64::try_from(rows).unwrap_or(i64::MAX);
        self.write_one(
            "UPDATE frmo_copies SET complete_at = $3, row_count = $4 WHERE dictionary = $1 AND version = $2",
            args![dictionary, version, at, rows],
        )
        .await?;
        Ok(())
    }

    async fn frmo_organizations(
        &self,
        version: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<FrmoOrganization>, StoreError> {
        let rows = page(self, "frmo_organizations", &ORGANIZATION_COLUMNS, version, after, limit).await?;
        rows.iter()
            .map(|r| {
                Ok(FrmoOrganization {
                    oid: r.text("oid")?,
                    name_full: r.text("name_full")?,
                    name_short: r.opt_text("name_short")?,
                    region_id: r.opt_text("region_id")?,
                    region_name: r.opt_text("region_name")?,
                    created: day(r, "created_on")?,
                    deleted: day(r, "deleted_on")?,
                })
            })
            .collect()
    }

    async fn frmo_departments(
        &self,
        version: &str,
        after: Option<&str>,
        limit: u32,
    ) -> Result<Vec<FrmoDepartment>, StoreError> {
        let rows = page(self, "frmo_departments", &DEPARTMENT_COLUMNS, version, after, limit).await?;
        rows.iter()
            .map(|r| {
                Ok(FrmoDepartment {
                    oid: r.text("oid")?,
                    organization: r.text("organization")?,
                    name: r.opt_text("name")?,
                    created: day(r, "created_on")?,
                    liquidated: day(r, "liquidated_on")?,
                })
            })
            .collect()
    }

    async fn frmo_names(
        &self,
        version: &str,
        oids: &[&str],
    ) -> Result<Vec<(String, String, Option<String>)>, StoreError> {
        if oids.is_empty() {
            return Ok(Vec::new());
        }
        let mut q = Sql::new("SELECT oid, name_full, name_short FROM frmo_organizations WHERE version = ");
        q.bind(version);
        let p = q.arg(Arg::Texts(oids.to_vec()));
        q.push(" AND ").push(&E::any("oid", &p));
        let rows = self.pooled().await?.fetch_all(&q.text, q.args).await?;
        rows.iter().map(|r| Ok((r.text("oid")?, r.text("name_full")?, r.opt_text("name_short")?))).collect()
    }

    async fn frmo_drop(&self, dictionary: &str, version: &str, limit: u32) -> Result<u64, StoreError> {
        let table = table(dictionary)?;
        let gone = self
            .write_one(
                &format!(
                    "DELETE FROM {table} WHERE version = $1 AND oid IN
                         (SELECT oid FROM {table} WHERE version = $1 ORDER BY oid LIMIT $2)"
                ),
                args![version, i64::from(limit)],
            )
            .await?;
        if gone == 0 {
            self.write_one(
                "DELETE FROM frmo_copies WHERE dictionary = $1 AND version = $2",
                args![dictionary, version],
            )
            .await?;
        }
        Ok(gone)
    }
}
