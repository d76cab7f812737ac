//! FRMO, the federal register of medical organisations, as the gateway keeps it: NSI's two
//! dictionaries (organisations 1.2.643.5.1.13.13.11.1461, departments
//! 1.2.643.5.1.13.13.99.2.114), country-sized, fetched page by page straight into storage
//! with the other NSI dictionaries (once per cluster, by the parent module's service), and
//! held in memory only as the index lookups need ([`FrmoIndex`]).
//!
//! A copy goes in force only once every page of it is stored; until then the previous one
//! stays, and a failed fetch keeps it. Every instance builds its index from the copy in force
//! in the database, at start and when another instance stored a newer one.
//!
//! Layout: this file — [`Frmo`] (the index in force, loading it, and the refresh: the I/O)
//! and the pure choice of copies ([`in_force`], [`superseded`]); `index` — [`FrmoIndex`] and
//! its builder (pure).

pub mod index;

use std::sync::{Arc, RwLock};
use std::time::Instant;

use chrono::{DateTime, Utc};
use egisz_nsi::wire::frmo::{DEPARTMENT_COLUMNS, DEPARTMENTS, ORGANIZATION_COLUMNS, ORGANIZATIONS};
use egisz_nsi::{FrmoDepartment, FrmoOrganization, NsiClient};

pub use index::{FrmoIndex, IndexBuilder, IndexSource};

use super::Refreshed;
use crate::store::{FrmoCopy, Store, StoreError};

/// The FRMO dictionaries, in the order they are fetched and indexed.
pub const DICTIONARIES: [&str; 2] = [ORGANIZATIONS, DEPARTMENTS];

/// Rows read back from storage per statement while building the index.
const LOAD_PAGE: u32 = 5000;
/// Rows of a superseded copy deleted per statement (each one short write).
const DROP_BATCH: u32 = 5000;
/// A progress line is logged every this many pages of a fetch.
const PROGRESS_EVERY: u64 = 100;
/// After each page a fetch rests this many times as long as the page took (fetching, reading,
/// storing): a country's refresh works a quarter of the time, so that intake and the relay
/// keep the database's writes and the CPU (measured in `examples/frmo_bench.rs`).
const REST_PER_WORK: u32 = 3;

/// The complete copy in force of each dictionary: the newest complete one (by completion).
/// `None` until both are complete.
pub fn in_force(copies: &[FrmoCopy]) -> Option<(&FrmoCopy, &FrmoCopy)> {
    let newest = |dictionary: &str| {
        copies
            .iter()
            .filter(|c| c.dictionary == dictionary)
            .filter(|c| c.complete_at.is_some())
            .max_by_key(|c| (c.complete_at, c.started_at))
    };
    Some((newest(ORGANIZATIONS)?, newest(DEPARTMENTS)?))
}

/// The copies to delete once `dictionary`'s copy `kept` is in force: every other copy of
/// it, complete or not, except one still being fetched that started after `kept` did (another
/// instance may be fetching it now).
pub fn superseded<'a>(copies: &'a [FrmoCopy], dictionary: &str, kept: &FrmoCopy) -> Vec<&'a FrmoCopy> {
    copies
        .iter()
        .filter(|c| c.dictionary == dictionary && c.version != kept.version)
        .filter(|c| c.complete_at.is_some() || c.started_at <= kept.started_at)
        .collect()
}

/// Organisations' names as views show them: the short name FRMO gives (its full name where
/// it gives no short one); `None` for an OID the copy in force lacks, or with no copy.
#[derive(Debug, Clone, Default)]
pub struct Names(Option<Arc<FrmoIndex>>);

impl Names {
    /// Names from `index` (views built without a running gateway, as in tests).
    pub fn of_index(index: Option<Arc<FrmoIndex>>) -> Self {
        Self(index)
    }

    pub fn of(&self, oid: &str) -> Option<&str> {
        self.0.as_ref()?.name_of(oid)
    }

    /// Which copy the names come from (the organisations' version), if any.
    pub fn version(&self) -> Option<&str> {
        self.0.as_ref().map(|i| i.source.organizations_version.as_str())
    }

    /// The OIDs of `candidates` whose name (or OID) holds `part`, case, `ё` and spacing
    /// aside, in the order given.
    pub fn matching<'a>(&self, candidates: &'a [String], part: &str) -> Vec<&'a String> {
        let needle = index::fold(part);
        if needle.is_empty() {
            return Vec::new();
        }
        candidates
            .iter()
            .filter(|oid| {
                oid.contains(needle.as_str()) || self.of(oid).is_some_and(|n| index::fold(n).contains(&needle))
            })
            .collect()
    }
}

/// The FRMO copy in force, as `/readyz` shows it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct FrmoStatus {
    pub organizations_version: String,
    pub departments_version: String,
    /// When the older of the two copies was complete.
    pub complete_at: DateTime<Utc>,
    pub organizations: usize,
    pub departments: usize,
}

/// The index in force (none until a complete copy is stored), shared by intake, `validate`
/// and the views that show names.
#[derive(Debug, Default)]
pub struct Frmo {
    current: RwLock<Option<Arc<FrmoIndex>>>,
}

impl Frmo {
    pub fn new() -> Self {
        Self::default()
    }

    /// The index in force.
    pub fn current(&self) -> Option<Arc<FrmoIndex>> {
        self.current.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// The names in force, for views.
    pub fn names(&self) -> Names {
        Names(self.current())
    }

    /// The copy in force, as `/readyz` shows it.
    pub fn status(&self) -> Option<FrmoStatus> {
        self.current().map(|index| {
            let (organizations, departments) = index.counts();
            FrmoStatus {
                organizations_version: index.source.organizations_version.clone(),
                departments_version: index.source.departments_version.clone(),
                complete_at: index.source.complete_at,
                organizations,
                departments,
            }
        })
    }

    fn replace(&self, index: FrmoIndex) {
        *self.current.write().unwrap_or_else(|p| p.into_inner()) = Some(Arc::new(index));
    }

    /// Builds the index from the copy in force in the database, unless it is the one in
    /// memory already; `true` when a new one went in force.
    pub async fn load(&self, store: &dyn Store) -> Result<bool, StoreError> {
        let copies = store.frmo_copies().await?;
        let Some((orgs, depts)) = in_force(&copies) else { return Ok(false) };
        let source = IndexSource {
            organizations_version: orgs.version.clone(),
            departments_version: depts.version.clone(),
            complete_at: orgs.complete_at.min(depts.complete_at).unwrap_or(orgs.started_at),
        };
        if self.current().is_some_and(|c| c.source == source) {
            return Ok(false);
        }
        let started = Instant::now();
        let index = build(store, source).await?;
        let (organizations, departments) = index.counts();
        tracing::info!(
            organizations,
            departments,
            version = %index.source.organizations_version,
            ms = started.elapsed().as_millis() as u64,
            "FRMO: the copy is in force"
        );
        self.replace(index);
        Ok(true)
    }

    /// Fetches the newest version of each FRMO dictionary NSI lists, unless it is stored
    /// complete already, page by page into storage; then drops the copies it supersedes and
    /// puts the new copy in force. A failure keeps the copy in force.
    pub async fn refresh(&self, client: &NsiClient, store: &dyn Store, now: DateTime<Utc>) -> Vec<Refreshed> {
        let mut results = Vec::with_capacity(DICTIONARIES.len());
        for dictionary in DICTIONARIES {
            let r = refresh_one(client, store, dictionary, now).await;
            r.log("FRMO");
            results.push(r);
        }
        if let Err(e) = drop_superseded(store).await {
            tracing::warn!(error = %e, "FRMO: superseded copies not dropped; the next refresh tries again");
        }
        if let Err(e) = self.load(store).await {
            tracing::warn!(error = %e, "FRMO: the stored copy could not be read; the index in force stays");
        }
        results
    }
}

async fn build(store: &dyn Store, source: IndexSource) -> Result<FrmoIndex, StoreError> {
    let mut builder = IndexBuilder::new();
    let mut after: Option<String> = None;
    loop {
        let page = store.frmo_organizations(&source.organizations_version, after.as_deref(), LOAD_PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.oid.clone());
        builder.organizations(page);
    }
    after = None;
    loop {
        let page = store.frmo_departments(&source.departments_version, after.as_deref(), LOAD_PAGE).await?;
        let Some(last) = page.last() else { break };
        after = Some(last.oid.clone());
        builder.departments(page);
    }
    Ok(builder.finish(source))
}

async fn refresh_one(client: &NsiClient, store: &dyn Store, dictionary: &str, now: DateTime<Utc>) -> Refreshed {
    let oid = dictionary.to_owned();
    let failed = |reason: String| Refreshed::Failed { oid: oid.clone(), reason };
    let copies = match store.frmo_copies().await {
        Ok(c) => c,
        Err(e) => return failed(format!("копии ФРМО не прочитаны из базы: {e}")),
    };
    let versions = match client.versions(dictionary).await {
        Ok(v) => v,
        Err(e) => return failed(e.reason().to_owned()),
    };
    let Some(version) = super::newest(&versions).map(str::to_owned) else {
        return Refreshed::NoVersions { oid };
    };
    let stored = copies.iter().filter(|c| c.dictionary == dictionary && c.complete_at.is_some());
    if let Some(newest) = stored.max_by_key(|c| super::version_key(&c.version)) {
        if newest.version == version {
            return Refreshed::Unchanged { oid, version };
        }
        if super::version_key(&version) < super::version_key(&newest.version) {
            return Refreshed::Older { oid, listed: version, stored: newest.version.clone() };
        }
    }
    match fetch(client, store, dictionary, &version, now).await {
        Ok(rows) => Refreshed::Updated { oid, version, rows: rows as usize },
        Err(reason) => failed(format!("версия {version}: {reason}")),
    }
}

/// Every page of `version` of `dictionary` into storage, then marked complete; the rows.
async fn fetch(
    client: &NsiClient,
    store: &dyn Store,
    dictionary: &str,
    version: &str,
    now: DateTime<Utc>,
) -> Result<u64, String> {
    let started = Instant::now();
    store.frmo_begin(dictionary, version, now).await.map_err(|e| format!("не сохранена: {e}"))?;
    let (columns, max): (&[egisz_nsi::Column], u64) = if dictionary == ORGANIZATIONS {
        (&ORGANIZATION_COLUMNS, egisz_nsi::MAX_FRMO_ORGANIZATIONS)
    } else {
        (&DEPARTMENT_COLUMNS, egisz_nsi::MAX_FRMO_DEPARTMENTS)
    };
    let mut pages = client.pages(dictionary, version, columns, max);
    let mut n = 0u64;
    loop {
        let work = Instant::now();
        let Some(page) = pages.next().await.map_err(|e| e.reason().to_owned())? else { break };
        let saved = if dictionary == ORGANIZATIONS {
            let rows: Vec<FrmoOrganization> = page.into_iter().map(FrmoOrganization::of).collect::<Result<_, _>>()?;
            check_page(rows.iter().map(|r| (r.oid.as_str(), r.name_full.as_str())))?;
            store.frmo_put_organizations(version, &rows).await
        } else {
            let rows: Vec<FrmoDepartment> = page.into_iter().map(FrmoDepartment::of).collect::<Result<_, _>>()?;
            check_page(rows.iter().map(|r| (r.oid.as_str(), r.organization.as_str())))?;
            store.frmo_put_departments(version, &rows).await
        };
        saved.map_err(|e| format!("не сохранена: {e}"))?;
        tokio::time::sleep(work.elapsed() * REST_PER_WORK).await;
        n += 1;
        if n.is_multiple_of(PROGRESS_EVERY) {
            tracing::info!(
                oid = dictionary,
                version,
                rows = pages.seen(),
                of = pages.total().unwrap_or_default(),
                "FRMO: fetching"
            );
        }
    }
    let rows = pages.seen();
    if rows == 0 {
        return Err("версия без строк".to_owned());
    }
    store.frmo_complete(dictionary, version, rows, crate::now()).await.map_err(|e| format!("не сохранена: {e}"))?;
    tracing::info!(oid = dictionary, version, rows, seconds = started.elapsed().as_secs_f64(), "FRMO: fetched");
    Ok(rows)
}

/// Every row names an OID, and the second column (a name, or a department's organisation) is
/// there: the reader enforces both; here, that an OID is an OID.
fn check_page<'a>(rows: impl Iterator<Item = (&'a str, &'a str)>) -> Result<(), String> {
    for (oid, _) in rows {
        if egisz_contract::Oid::parse(oid).is_err() {
            return Err(format!("строка с OID другого вида (после {} байт)", oid.len().min(64)));
        }
    }
    Ok(())
}

/// Deletes, a batch at a time, every copy the copies in force supersede.
async fn drop_superseded(store: &dyn Store) -> Result<(), StoreError> {
    let copies = store.frmo_copies().await?;
    let Some((orgs, depts)) = in_force(&copies) else { return Ok(()) };
    for (dictionary, kept) in [(ORGANIZATIONS, orgs), (DEPARTMENTS, depts)] {
        for old in superseded(&copies, dictionary, kept) {
            while store.frmo_drop(dictionary, &old.version, DROP_BATCH).await? > 0 {}
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn copy(dictionary: &str, version: &str, started: i64, complete: Option<i64>) -> FrmoCopy {
        let at = |s: i64| DateTime::from_timestamp(s, 0).unwrap();
        FrmoCopy {
            dictionary: dictionary.into(),
            version: version.into(),
            started_at: at(started),
            complete_at: complete.map(at),
            rows: 1,
        }
    }

    #[test]
    fn the_newest_complete_copy_of_each_is_in_force() {
        let copies = vec![
            copy(ORGANIZATIONS, "1", 10, Some(20)),
            copy(ORGANIZATIONS, "2", 30, None),
            copy(DEPARTMENTS, "1", 11, Some(21)),
        ];
        let (o, d) = in_force(&copies).unwrap();
        assert_eq!((o.version.as_str(), d.version.as_str()), ("1", "1"), "an incomplete copy never");
        assert!(in_force(&copies[..2]).is_none(), "both dictionaries or nothing");
        let mut later = copies.clone();
        later.push(copy(ORGANIZATIONS, "3", 40, Some(50)));
        let kept = in_force(&later).unwrap().0.clone();
        assert_eq!(kept.version, "3");
        let gone: Vec<&str> = superseded(&later, ORGANIZATIONS, &kept).iter().map(|c| c.version.as_str()).collect();
        assert_eq!(gone, ["1", "2"]);
        later.push(copy(ORGANIZATIONS, "4", 60, None));
        let gone: Vec<&str> = superseded(&later, ORGANIZATIONS, &kept).iter().map(|c| c.version.as_str()).collect();
        assert_eq!(gone, ["1", "2"], "a fetch started after the copy in force is another instance's, under way");
    }
}
