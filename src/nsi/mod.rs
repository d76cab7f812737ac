//! Keeping the dictionaries current from the federal NSI service: for each dictionary the
//! gateway uses, ask NSI for its versions, fetch the newest one not yet stored, check its
//! rows, store it by `(oid, version)` and put it in force beside the shipped `mappings/`
//! copies; then FRMO's two country-sized dictionaries, streamed into storage ([`frmo`]) — on
//! a schedule (`nsi.refresh_every`, once for all the instances on a database) and by
//! `egisz-gateway nsi refresh`.
//!
//! An unreachable or broken NSI never stops the gateway and never removes data: the last
//! good copy (or the shipped one) stays in force, and `/readyz` shows what failed. What a
//! kind *allows* stays in `kind-profiles.toml`: a new NSI version becomes acceptable in a
//! document only when the profile lists it.
//!
//! The decisions ([`newest`], [`check_rows`], [`in_force`]) are pure; [`NsiService`] does
//! the I/O. Layout: this file; `frmo` — FRMO's two dictionaries, paged into storage and
//! held as an index ([`frmo::Frmo`]).

pub mod frmo;

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chrono::{DateTime, Utc};
use egisz_nsi::{Columns, DICTIONARIES, NsiClient};
use serde::Serialize;
use tokio_util::sync::CancellationToken;

use self::frmo::Frmo;
use crate::mappings::{Coverage, DictionaryCopy, DictionarySet, LiveDictionaries};
use crate::store::{NsiCopy, Store};

/// Version strings compare as dotted numbers ("3.18" > "3.9"); a part that is not a number
/// compares below every number (as text among its kind).
pub fn version_key(v: &str) -> Vec<(u8, u64, String)> {
    v.split('.')
        .map(|p| p.trim().parse::<u64>().map_or((0, 0, p.trim().to_owned()), |n| (1, n, String::new())))
        .collect()
}

/// The newest of the versions NSI lists.
pub fn newest(versions: &[String]) -> Option<&str> {
    versions.iter().max_by_key(|v| version_key(v)).map(String::as_str)
}

/// The rows of a version fit to use: at least one, every code non-empty and unique, every
/// name non-empty (an empty name would refuse every document that names the code).
pub fn check_rows(rows: &[(String, String)]) -> Result<(), String> {
    if rows.is_empty() {
        return Err("версия без строк".to_owned());
    }
    let mut seen = HashSet::with_capacity(rows.len());
    for (code, name) in rows {
        if code.trim().is_empty() {
            return Err("строка с пустым кодом".to_owned());
        }
        if name.trim().is_empty() {
            return Err(format!("у кода {code} пустое наименование"));
        }
        if !seen.insert(code.as_str()) {
            return Err(format!("код {code} повторяется"));
        }
    }
    Ok(())
}

/// The copies in force: the shipped ones, with every stored NSI copy (complete: NSI gives a
/// whole version) added beside them, or completing a shipped subset of the same version. A
/// complete shipped copy is never replaced.
pub fn in_force(shipped: &DictionarySet, stored: &[NsiCopy]) -> DictionarySet {
    let mut set = shipped.clone();
    for copy in stored.iter().filter(|c| takes_effect(shipped, c)) {
        let names: HashMap<String, String> = copy.rows.iter().cloned().collect();
        set.insert(&copy.oid, &copy.version, DictionaryCopy { coverage: Coverage::Complete, names });
    }
    set
}

/// Whether a stored copy goes in force beside the shipped ones: a version the gateway does
/// not ship, or one it ships as a subset that the copy agrees with (a copy stored by an
/// older gateway is held to the same rule as a new one).
pub fn takes_effect(shipped: &DictionarySet, copy: &NsiCopy) -> bool {
    match shipped.get(&copy.oid, &copy.version) {
        None => true,
        Some(s) if s.coverage == Coverage::Complete => false,
        Some(s) => agrees_with_shipped(s, &copy.rows).is_ok(),
    }
}

/// Whether NSI's rows of a version the gateway ships as a subset agree with it: every code
/// the gateway ships is there, under the same name (a copy that contradicts what the
/// gateway knows of the version is not taken).
pub fn agrees_with_shipped(shipped: &DictionaryCopy, rows: &[(String, String)]) -> Result<(), String> {
    let fetched: HashMap<&str, &str> = rows.iter().map(|(c, n)| (c.as_str(), n.as_str())).collect();
    let mut codes: Vec<(&String, &String)> = shipped.names.iter().collect();
    codes.sort();
    for (code, name) in codes {
        match fetched.get(code.as_str()) {
            None => return Err(format!("нет кода {code}, который есть в копии шлюза этой версии")),
            Some(n) if n.trim() != name.trim() => {
                return Err(format!("код {code} назван иначе, чем в копии шлюза этой версии"));
            }
            Some(_) => {}
        }
    }
    Ok(())
}

/// The newest version of `oid` the gateway ships, if any.
pub fn newest_shipped(shipped: &DictionarySet, oid: &str) -> Option<String> {
    let versions: Vec<String> = shipped.summary().into_iter().filter(|(o, ..)| o == oid).map(|(_, v, ..)| v).collect();
    newest(&versions).map(str::to_owned)
}

/// A periodic task that last ran at or before this moment is due at `now` (every `every`);
/// never before the epoch, whatever `every` is.
pub fn due_before(now: DateTime<Utc>, every: Duration) -> DateTime<Utc> {
    chrono::Duration::from_std(every)
        .ok()
        .and_then(|d| now.checked_sub_signed(d))
        .unwrap_or(DateTime::UNIX_EPOCH)
        .max(DateTime::UNIX_EPOCH)
}

/// What one refresh did with one dictionary.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(tag = "outcome", rename_all = "snake_case")]
pub enum Refreshed {
    /// A new version was fetched, checked and put in force.
    Updated { oid: String, version: String, rows: usize },
    /// The newest version NSI lists is the one stored.
    Unchanged { oid: String, version: String },
    /// NSI lists no version of it.
    NoVersions { oid: String },
    /// NSI lists only versions older than the one stored (a withdrawn or truncated list):
    /// the stored one stays.
    Older { oid: String, listed: String, stored: String },
    /// NSI lists no version newer than the one the gateway ships: the shipped copy stays
    /// (a shipped copy is replaced only by a newer version).
    Shipped { oid: String, listed: String, shipped: String },
    /// NSI could not be asked, or answered something unusable; the previous copy stays.
    Failed { oid: String, reason: String },
}

impl Refreshed {
    pub fn failed(&self) -> bool {
        matches!(self, Refreshed::Failed { .. })
    }

    /// A log line for a new version stored or a failure (`what`: whose refresh); nothing
    /// for the rest.
    pub fn log(&self, what: &str) {
        match self {
            Refreshed::Updated { oid, version, rows } => {
                tracing::info!(%oid, %version, rows, "{what}: a new version is stored")
            }
            Refreshed::Failed { oid, reason } => {
                tracing::warn!(%oid, %reason, "{what}: refresh failed; the copy in force stays")
            }
            _ => {}
        }
    }
}

/// What `/readyz` shows.
#[derive(Debug, Clone, Default, Serialize)]
pub struct NsiStatus {
    pub last_run: Option<DateTime<Utc>>,
    /// The last run in which every dictionary was refreshed or found unchanged.
    pub last_success: Option<DateTime<Utc>>,
    pub results: Vec<Refreshed>,
    /// Dictionary OID → the NSI version in force (absent: the shipped copy only).
    pub in_force: BTreeMap<String, String>,
    /// When this instance last put in force the copies stored by the instance that ran the
    /// cluster's refresh (`None`: it ran every refresh itself, or none yet).
    pub last_loaded: Option<DateTime<Utc>>,
}

/// The periodic task that is the refresh, in `periodic_tasks`.
pub const REFRESH_TASK: &str = "nsi_refresh";

/// How soon an instance puts in force the copies another instance fetched.
pub const RELOAD_EVERY: Duration = Duration::from_secs(300);

/// Refreshes the dictionaries and keeps their status.
pub struct NsiService {
    client: NsiClient,
    store: Arc<dyn Store>,
    live: Arc<LiveDictionaries>,
    shipped: DictionarySet,
    frmo: Arc<Frmo>,
    status: Mutex<NsiStatus>,
}

impl NsiService {
    pub fn new(
        client: NsiClient,
        store: Arc<dyn Store>,
        live: Arc<LiveDictionaries>,
        shipped: DictionarySet,
        frmo: Arc<Frmo>,
    ) -> Self {
        Self { client, store, live, shipped, frmo, status: Mutex::new(NsiStatus::default()) }
    }

    pub fn status(&self) -> NsiStatus {
        self.status.lock().unwrap_or_else(|p| p.into_inner()).clone()
    }

    /// Puts the stored copies in force (at start, before any refresh), FRMO's among them.
    pub async fn load_stored(&self) -> Result<(), crate::store::StoreError> {
        self.frmo.load(&*self.store).await?;
        let stored = self.store.nsi_latest().await?;
        self.live.replace(in_force(&self.shipped, &stored));
        let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
        status.in_force = self.applied(&stored);
        Ok(())
    }

    /// Dictionary OID → the stored NSI version in force (what [`in_force`] took).
    fn applied(&self, stored: &[NsiCopy]) -> BTreeMap<String, String> {
        stored.iter().filter(|c| takes_effect(&self.shipped, c)).map(|c| (c.oid.clone(), c.version.clone())).collect()
    }

    async fn refresh_one(&self, columns: &Columns, stored: Option<&NsiCopy>, now: DateTime<Utc>) -> Refreshed {
        let oid = columns.oid.to_owned();
        let versions = match self.client.versions(columns.oid).await {
            Ok(v) => v,
            Err(e) => return Refreshed::Failed { oid, reason: e.reason().to_owned() },
        };
        let Some(version) = newest(&versions).map(str::to_owned) else { return Refreshed::NoVersions { oid } };
        // A shipped copy is replaced only by a newer version, or (a subset) completed by
        // NSI's copy of its own version when that agrees with it.
        if let Some(shipped) = newest_shipped(&self.shipped, columns.oid)
            && version_key(&version) < version_key(&shipped)
        {
            return Refreshed::Shipped { oid, listed: version, shipped };
        }
        let same_shipped = self.shipped.get(columns.oid, &version);
        if same_shipped.is_some_and(|c| c.coverage == Coverage::Complete) {
            return Refreshed::Shipped { oid, listed: version.clone(), shipped: version };
        }
        if let Some(s) = stored {
            if s.version == version {
                return Refreshed::Unchanged { oid, version };
            }
            if version_key(&version) < version_key(&s.version) {
                return Refreshed::Older { oid, listed: version, stored: s.version.clone() };
            }
        }
        let rows = match self.client.rows(columns, &version).await {
            Ok(rows) => rows,
            Err(e) => return Refreshed::Failed { oid, reason: format!("версия {version}: {}", e.reason()) },
        };
        if let Err(why) =
            check_rows(&rows).and_then(|()| same_shipped.map_or(Ok(()), |s| agrees_with_shipped(s, &rows)))
        {
            return Refreshed::Failed { oid, reason: format!("версия {version} отклонена: {why}") };
        }
        let copy = NsiCopy { oid: oid.clone(), version: version.clone(), fetched_at: now, rows };
        if let Err(e) = self.store.nsi_save(&copy).await {
            return Refreshed::Failed { oid, reason: format!("не сохранена: {e}") };
        }
        Refreshed::Updated { oid, version, rows: copy.rows.len() }
    }

    /// One pass over every dictionary; the copies in force are rebuilt afterwards. When the
    /// database cannot be read, nothing is asked and nothing in force changes.
    pub async fn refresh(&self, now: DateTime<Utc>) -> Vec<Refreshed> {
        let stored = match self.store.nsi_latest().await {
            Ok(s) => s,
            Err(e) => {
                let reason = format!("копии справочников не прочитаны из базы: {e}");
                tracing::warn!(%reason, "NSI: refresh skipped");
                let results: Vec<Refreshed> = DICTIONARIES
                    .iter()
                    .map(|c| c.oid)
                    .chain(frmo::DICTIONARIES)
                    .map(|oid| Refreshed::Failed { oid: oid.to_owned(), reason: reason.clone() })
                    .collect();
                let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
                status.last_run = Some(now);
                status.results = results.clone();
                return results;
            }
        };
        let mut results = Vec::with_capacity(DICTIONARIES.len());
        for columns in DICTIONARIES {
            let current = stored.iter().find(|s| s.oid == columns.oid);
            let r = self.refresh_one(columns, current, now).await;
            r.log("NSI");
            results.push(r);
        }
        // FRMO, page by page into storage; its index goes in force when a copy completes.
        results.extend(self.frmo.refresh(&self.client, &*self.store, now).await);
        let stored = match self.store.nsi_latest().await {
            Ok(now_stored) => {
                self.live.replace(in_force(&self.shipped, &now_stored));
                now_stored
            }
            // What is in force stays; the new copies are stored and go in force next time.
            Err(_) => stored,
        };
        let mut status = self.status.lock().unwrap_or_else(|p| p.into_inner());
        status.last_run = Some(now);
        if !results.iter().any(Refreshed::failed) {
            status.last_success = Some(now);
        }
        status.results = results.clone();
        status.in_force = self.applied(&stored);
        results
    }

    /// One turn of [`NsiService::run`]: the cluster's refresh when it is due and this instance
    /// claims it, else the copies another instance stored put in force. The gateway takes the
    /// first turn before it serves when NSI is its own emulator, so that the sandbox's
    /// copies — FRMO's among them — are in force from the first request.
    pub async fn run_once(&self, every: Duration, instance: &str) {
        let now = crate::now();
        match self.store.claim_periodic(REFRESH_TASK, instance, now, due_before(now, every)).await {
            // Ours to run; or the database is away, and the refresh reports it (nothing is
            // asked, nothing changes).
            Ok(true) | Err(_) => {
                self.refresh(now).await;
            }
            Ok(false) => match self.load_stored().await {
                Ok(()) => self.status.lock().unwrap_or_else(|p| p.into_inner()).last_loaded = Some(now),
                Err(e) => tracing::warn!(error = %e, "NSI: the copies another instance fetched could not be read"),
            },
        }
    }

    /// Until `stop`: refreshes every `every` — once for every instance on the database, by
    /// whichever claims the run ([`Store::claim_periodic`]) — and, between the runs, puts in
    /// force what another instance fetched, every `reload_every` at most ([`RELOAD_EVERY`]
    /// in the gateway).
    pub async fn run(
        self: Arc<Self>,
        every: Duration,
        reload_every: Duration,
        instance: String,
        stop: CancellationToken,
    ) {
        loop {
            self.run_once(every, &instance).await;
            tokio::select! {
                () = stop.cancelled() => return,
                () = tokio::time::sleep(every.min(reload_every)) => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_periodic_task_is_due_once_its_period_has_passed() {
        let now = DateTime::from_timestamp(1_800_000_000, 0).unwrap();
        assert_eq!(due_before(now, Duration::from_secs(3600)), now - chrono::Duration::hours(1));
        assert_eq!(due_before(now, Duration::MAX), DateTime::UNIX_EPOCH, "never before the epoch");
    }

    #[test]
    fn the_newest_version_is_by_number() {
        let v = |s: &[&str]| s.iter().map(|x| x.to_string()).collect::<Vec<_>>();
        assert_eq!(newest(&v(&["3.9", "3.18", "3.2"])), Some("3.18"));
        assert_eq!(newest(&v(&["7.5", "10.1"])), Some("10.1"));
        assert_eq!(newest(&v(&["3.18", "3.x"])), Some("3.18"), "text below numbers");
        assert_eq!(newest(&[]), None);
    }

    #[test]
    fn unusable_rows_are_refused() {
        let r = |rows: &[(&str, &str)]| rows.iter().map(|(c, n)| (c.to_string(), n.to_string())).collect::<Vec<_>>();
        assert!(check_rows(&r(&[("1", "a"), ("2", "b")])).is_ok());
        assert!(check_rows(&[]).is_err());
        assert!(check_rows(&r(&[("1", "a"), ("1", "b")])).is_err());
        assert!(check_rows(&r(&[(" ", "a")])).is_err());
        assert!(check_rows(&r(&[("1", "")])).is_err());
    }

    #[test]
    fn a_copy_of_a_shipped_subset_must_agree_with_it() {
        let shipped = crate::mappings::Mappings::embedded().unwrap().dictionaries().clone();
        let subset = shipped.get("1.2.643.5.1.13.13.11.1002", "7.5").unwrap();
        let mut rows: Vec<(String, String)> = subset.names.iter().map(|(c, n)| (c.clone(), n.clone())).collect();
        rows.push(("999".into(), "врач-новая должность".into()));
        assert!(agrees_with_shipped(subset, &rows).is_ok(), "a superset with the same names");
        let renamed: Vec<_> =
            rows.iter().map(|(c, n)| (c.clone(), if c == "73" { "подмена".to_owned() } else { n.clone() })).collect();
        assert!(agrees_with_shipped(subset, &renamed).unwrap_err().contains("73"));
        assert!(agrees_with_shipped(subset, &rows[1..]).is_err(), "a code the gateway knows is missing");
    }

    #[test]
    fn stored_copies_come_on_top_of_the_shipped_ones() {
        let shipped = crate::mappings::Mappings::embedded().unwrap().dictionaries().clone();
        let copy = NsiCopy {
            oid: "1.2.643.5.1.13.13.11.1002".into(),
            version: "7.6".into(),
            fetched_at: crate::now(),
            rows: vec![("73".into(), "врач-офтальмолог".into())],
        };
        let gender = NsiCopy {
            oid: "1.2.643.5.1.13.13.11.1040".into(),
            version: "2.1".into(),
            rows: vec![("1".into(), "подмена".into())],
            ..copy.clone()
        };
        let contradicting =
            NsiCopy { version: "7.5".into(), rows: vec![("73".into(), "подмена".into())], ..copy.clone() };
        assert!(!takes_effect(&shipped, &contradicting), "a stored copy of a shipped subset that contradicts it");
        let set = in_force(&shipped, &[copy, gender, contradicting]);
        assert_eq!(set.get("1.2.643.5.1.13.13.11.1002", "7.6").unwrap().coverage, Coverage::Complete);
        assert_eq!(set.get("1.2.643.5.1.13.13.11.1002", "7.5"), shipped.get("1.2.643.5.1.13.13.11.1002", "7.5"));
        assert_eq!(
            set.get("1.2.643.5.1.13.13.11.1040", "2.1"),
            shipped.get("1.2.643.5.1.13.13.11.1040", "2.1"),
            "a complete shipped copy is never replaced"
        );
        assert_eq!(newest_shipped(&shipped, "1.2.643.5.1.13.13.11.1002").as_deref(), Some("7.5"));
        assert_eq!(newest_shipped(&shipped, "1.2.3"), None);
    }
}
