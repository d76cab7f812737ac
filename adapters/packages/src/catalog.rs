//! The packages of a directory ([`Catalog`]): listed at start and on every [`Catalog::scan`],
//! each compiled the first time a document of its kind arrives, replaced when its files
//! change — only after the new files are checked and compiled; a package that does not
//! compile leaves the one in force and says why — and run over documents
//! ([`Catalog::validate`]).

use std::collections::BTreeMap;
use std::path::PathBuf;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use egisz_schematron::{Budget, CompileLimits, Schema, Stats, Stopped, TreeLimits};
use egisz_semd::{Violation, rules};

use crate::package::{self, Listing, PackageError, PackageId, PackageLimits};
use crate::xsd::{self, XsdPool};

/// How the catalog reads, compiles and runs packages.
#[derive(Debug, Clone)]
pub struct Settings {
    /// The directory of packages: one subdirectory per kind id.
    pub dir: PathBuf,
    /// Threads that run XML Schema validation.
    pub xsd_threads: usize,
    pub limits: PackageLimits,
    pub compile: CompileLimits,
    /// The schematron budget of one document: evaluation units and wall time.
    pub units: u64,
    pub time: Duration,
}

/// A package in force: compiled and ready.
#[derive(Debug)]
pub struct Package {
    pub id: PackageId,
    /// The process's own copy the package was compiled from.
    pub dir: PathBuf,
    pub bytes: u64,
    schematron: Option<Schema>,
    pub stats: Option<Stats>,
}

/// What the catalog knows of one kind.
#[derive(Debug, Default)]
struct Entry {
    /// The files on disk at the last scan, or why they could not be read.
    on_disk: Option<Result<Listing, PackageError>>,
    in_force: Option<Arc<Package>>,
    /// The last load that failed: the hash it was for and why.
    failed: Option<(String, String)>,
}

/// A kind's package, for one document.
#[derive(Debug, Clone)]
pub enum Lookup {
    /// No package for this kind.
    None,
    Ready(Arc<Package>),
    /// The package on disk could not be put in force, and none was before.
    Broken(String),
}

/// One kind's package as `/readyz` and `check-config` show it.
#[derive(Debug, Clone, serde::Serialize)]
pub struct PackageStatus {
    pub kind: u32,
    /// The package in force (compiled), if any.
    pub in_force: Option<PackageId>,
    /// The files on disk, when they differ from those in force (not yet loaded, or broken).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub on_disk: Option<PackageId>,
    /// Why the files on disk are not in force.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub problem: Option<String>,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stats: Option<Stats>,
    pub bytes: u64,
}

/// Which layers to run.
#[derive(Debug, Clone, Copy)]
pub struct Layers {
    pub xsd: bool,
    pub schematron: bool,
    /// Run the schematron even over a document with XSD errors (REMD does not).
    pub schematron_after_xsd_errors: bool,
}

/// What a package found in one document.
#[derive(Debug, Clone, Default)]
pub struct Validation {
    pub package: Option<PackageId>,
    /// XML Schema errors (rule `XSD`).
    pub xsd: Vec<Violation>,
    /// Failed asserts, and a run stopped by an XPath error (rule `SCH`).
    pub schematron: Vec<Violation>,
    /// Successful reports (rule `SCH`): warnings.
    pub reports: Vec<Violation>,
    /// What could not be checked (rule `PKG`): warnings.
    pub not_checked: Vec<Violation>,
    /// The schematron did not run because the document failed its XSD (as REMD does).
    pub schematron_skipped: bool,
}

/// The packages of one directory.
pub struct Catalog {
    settings: Settings,
    /// This process's own copies of the packages it compiled ([`package::snapshot`]).
    snapshots: PathBuf,
    pool: XsdPool,
    entries: Mutex<BTreeMap<u32, Entry>>,
    /// Loads one package at a time (two documents of a new kind compile it once).
    loading: Mutex<()>,
}

impl Drop for Catalog {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.snapshots);
    }
}

impl std::fmt::Debug for Catalog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Catalog").field("dir", &self.settings.dir).finish()
    }
}

/// The outcome of a scan, for the log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ScanReport {
    pub kinds: usize,
    /// Kinds whose package was replaced by a new one.
    pub replaced: Vec<u32>,
    /// Kinds whose new files did not compile (the old stays in force), with why.
    pub refused: Vec<(u32, String)>,
    pub removed: Vec<u32>,
}

impl Catalog {
    /// Lists the directory's packages (none compiled yet). An unreadable directory is an
    /// error: the configuration names one that does not work.
    pub fn open(settings: Settings) -> Result<Catalog, String> {
        let snapshots = std::env::temp_dir().join(format!(
            "egisz-packages-{}-{}",
            std::process::id(),
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map_or(0, |d| d.as_nanos())
        ));
        std::fs::create_dir_all(&snapshots).map_err(|e| format!("{}: {e}", snapshots.display()))?;
        let catalog = Catalog {
            snapshots,
            pool: XsdPool::start(settings.xsd_threads),
            settings,
            entries: Mutex::new(BTreeMap::new()),
            loading: Mutex::new(()),
        };
        catalog.scan()?;
        Ok(catalog)
    }

    pub fn dir(&self) -> &std::path::Path {
        &self.settings.dir
    }

    fn entries(&self) -> std::sync::MutexGuard<'_, BTreeMap<u32, Entry>> {
        self.entries.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    /// Reads the directory again: new kinds are listed, changed packages in force are
    /// checked and compiled and replace the old only if they pass, removed ones are
    /// dropped. A directory that cannot be read keeps everything as it was.
    pub fn scan(&self) -> Result<ScanReport, String> {
        let dir = &self.settings.dir;
        let listing = std::fs::read_dir(dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        // The last good listing of each kind: unchanged files are not read again.
        let previous: BTreeMap<u32, Listing> =
            self.entries().iter().filter_map(|(k, e)| Some((*k, e.on_disk.as_ref()?.as_ref().ok()?.clone()))).collect();
        let mut seen = BTreeMap::new();
        for entry in listing {
            let entry = entry.map_err(|e| format!("{}: {e}", dir.display()))?;
            let Some(kind) = entry.file_name().to_str().and_then(|n| n.parse::<u32>().ok()) else { continue };
            if !entry.file_type().map(|t| t.is_dir()).unwrap_or(false) {
                continue;
            }
            seen.insert(kind, package::list(kind, &entry.path(), &self.settings.limits, previous.get(&kind)));
        }
        let mut report = ScanReport { kinds: seen.len(), ..ScanReport::default() };
        let mut reload = Vec::new();
        {
            let mut entries = self.entries();
            let removed: Vec<u32> = entries.keys().filter(|k| !seen.contains_key(k)).copied().collect();
            for k in &removed {
                entries.remove(k);
            }
            report.removed = removed;
            for (kind, listed) in seen {
                let entry = entries.entry(kind).or_default();
                // Files already refused are not compiled again at every scan.
                if let (Some(current), Ok(new)) = (&entry.in_force, &listed)
                    && current.id.sha256 != new.id.sha256
                    && entry.failed.as_ref().is_none_or(|(sha, _)| *sha != new.id.sha256)
                {
                    reload.push(kind);
                }
                entry.on_disk = Some(listed);
            }
        }
        for kind in reload {
            match self.load(kind) {
                Ok(_) => report.replaced.push(kind),
                Err(why) => report.refused.push((kind, why)),
            }
        }
        Ok(report)
    }

    /// The package of `kind`, compiled now if it was only listed.
    pub fn lookup(&self, kind: u32) -> Lookup {
        {
            let entries = self.entries();
            let Some(entry) = entries.get(&kind) else { return Lookup::None };
            let disk = entry.on_disk.as_ref().map(|d| d.as_ref().map(|l| l.id.sha256.as_str()));
            let failed = entry.failed.as_ref().map(|(sha, why)| (sha.as_str(), why));
            // The files on disk are known not to load: unreadable, or failed before.
            let known_bad = match disk {
                Some(Err(_)) | None => true,
                Some(Ok(sha)) => failed.is_some_and(|(f, _)| f == sha),
            };
            match &entry.in_force {
                // The package in force serves documents while a scan compiles its successor:
                // a document never waits for another package's compilation.
                Some(p) => return Lookup::Ready(Arc::clone(p)),
                None if known_bad => {
                    let why = match (&entry.on_disk, failed) {
                        (Some(Err(e)), _) => e.to_string(),
                        (_, Some((_, why))) => why.clone(),
                        _ => "пакет не прочитан".to_owned(),
                    };
                    return Lookup::Broken(why);
                }
                _ => {}
            }
        }
        match self.load(kind) {
            Ok(p) => Lookup::Ready(p),
            Err(why) => match self.entries().get(&kind).and_then(|e| e.in_force.clone()) {
                Some(p) => Lookup::Ready(p),
                None => Lookup::Broken(why),
            },
        }
    }

    /// Checks and compiles the files on disk of `kind` and puts them in force.
    fn load(&self, kind: u32) -> Result<Arc<Package>, String> {
        let _one_at_a_time = self.loading.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        let listing = {
            let entries = self.entries();
            let entry = entries.get(&kind).ok_or("пакета больше нет")?;
            match &entry.on_disk {
                Some(Ok(l)) => {
                    if let Some(p) = &entry.in_force
                        && p.id.sha256 == l.id.sha256
                    {
                        return Ok(Arc::clone(p));
                    }
                    l.clone()
                }
                Some(Err(e)) => return Err(e.to_string()),
                None => return Err("пакет не прочитан".into()),
            }
        };
        let started = Instant::now();
        let compiled = self.compile(&listing);
        let mut entries = self.entries();
        // A kind whose directory a scan removed meanwhile stays removed.
        let Some(entry) = entries.get_mut(&kind) else { return Err("пакета больше нет".into()) };
        match compiled {
            Ok((copy, schematron, stats)) => {
                let package = Arc::new(Package {
                    id: listing.id.clone(),
                    dir: copy.dir,
                    bytes: listing.bytes,
                    schematron,
                    stats,
                });
                tracing::info!(
                    kind,
                    package = listing.id.short(),
                    compile_ms = started.elapsed().as_millis() as u64,
                    "rule package in force"
                );
                entry.in_force = Some(Arc::clone(&package));
                entry.failed = None;
                Ok(package)
            }
            Err(e) => {
                let why = e.to_string();
                tracing::warn!(kind, package = listing.id.short(), error = %why, kept = entry.in_force.is_some(), "rule package refused");
                entry.failed = Some((listing.id.sha256.clone(), why.clone()));
                Err(why)
            }
        }
    }

    fn compile(&self, listing: &Listing) -> Result<(Listing, Option<Schema>, Option<Stats>), PackageError> {
        let listing = &package::snapshot(listing, &self.snapshots)?;
        package::check_xsd_set(listing)?;
        self.pool
            .compile(listing.id.kind, &listing.id.sha256, &listing.dir.join("CDA.xsd"))
            .map_err(PackageError::Xsd)?;
        if !listing.id.schematron {
            return Ok((listing.clone(), None, None));
        }
        let path = listing.dir.join(format!("{}.sch", listing.id.kind));
        let bytes = std::fs::read(&path).map_err(|e| PackageError::Io(format!("{}: {e}", path.display())))?;
        let schema = Schema::compile(&bytes, egisz_schematron::HL7_NS, &self.settings.compile)
            .map_err(|e| PackageError::Schematron(e.to_string()))?;
        let stats = schema.stats();
        Ok((listing.clone(), Some(schema), Some(stats)))
    }

    /// Every kind's package, as `/readyz` and `check-config` show it.
    pub fn status(&self) -> Vec<PackageStatus> {
        self.entries()
            .iter()
            .map(|(&kind, e)| {
                let disk = e.on_disk.as_ref().and_then(|d| d.as_ref().ok());
                let in_force = e.in_force.as_ref().map(|p| p.id.clone());
                let on_disk = disk.map(|l| l.id.clone()).filter(|d| in_force.as_ref() != Some(d));
                let problem = match (&e.on_disk, &e.failed) {
                    (Some(Err(err)), _) => Some(err.to_string()),
                    (_, Some((sha, why))) if disk.is_some_and(|l| l.id.sha256 == *sha) => Some(why.clone()),
                    _ => None,
                };
                PackageStatus {
                    kind,
                    stats: e.in_force.as_ref().and_then(|p| p.stats),
                    bytes: e.in_force.as_ref().map(|p| p.bytes).or(disk.map(|l| l.bytes)).unwrap_or(0),
                    in_force,
                    on_disk,
                    problem,
                }
            })
            .collect()
    }

    /// Compiles every listed package now (for `check-config` and a start that wants to
    /// know): the kinds that fail, with why.
    pub fn load_all(&self) -> Vec<(u32, String)> {
        let kinds: Vec<u32> = self.entries().keys().copied().collect();
        kinds
            .into_iter()
            .filter_map(|k| match self.lookup(k) {
                Lookup::Broken(why) => Some((k, why)),
                _ => None,
            })
            .collect()
    }

    /// Runs the package of `kind` over `document` (already through the gateway's bounded
    /// parser). `None` when the kind has no package. Blocks: call from a blocking thread.
    pub fn validate(&self, kind: u32, document: &[u8], layers: Layers) -> Option<Validation> {
        if !layers.xsd && !layers.schematron {
            return None;
        }
        let package = match self.lookup(kind) {
            Lookup::None => return None,
            Lookup::Broken(why) => {
                return Some(Validation {
                    not_checked: vec![Violation::new(
                        rules::PKG,
                        "/",
                        format!(
                            "пакет правил вида {kind} не действует ({why}): документ не проверен по XSD и схематрону министерства"
                        ),
                    )],
                    ..Validation::default()
                });
            }
            Lookup::Ready(p) => p,
        };
        let mut out = Validation { package: Some(package.id.clone()), ..Validation::default() };
        if layers.xsd {
            let shared = Arc::new(document.to_vec());
            match self.pool.validate(kind, &package.id.sha256, &package.dir.join("CDA.xsd"), shared) {
                Ok(errors) => {
                    let wanted: Vec<(u32, Option<&str>)> =
                        errors.iter().filter_map(|e| Some((e.line?, xsd::element_of(&e.message)))).collect();
                    let mut located = xsd::locate_all(document, &wanted).into_iter();
                    out.xsd = errors
                        .iter()
                        .map(|e| {
                            let path = e.line.and_then(|_| located.next().flatten()).unwrap_or_else(|| "/".to_owned());
                            let message = match e.line {
                                Some(l) => format!("ошибка валидации XSD (строка {l}): {}", e.message),
                                None => format!("ошибка валидации XSD: {}", e.message),
                            };
                            Violation::new(rules::XSD, path, message)
                        })
                        .collect()
                }
                Err(why) => out.not_checked.push(Violation::new(
                    rules::PKG,
                    "/",
                    format!("проверка по XSD пакета вида {kind} не выполнена: {why}"),
                )),
            }
        }
        if layers.schematron
            && let Some(schema) = &package.schematron
        {
            if !out.xsd.is_empty() && !layers.schematron_after_xsd_errors {
                out.schematron_skipped = true;
                return Some(out);
            }
            self.run_schematron(kind, schema, document, &mut out);
        }
        Some(out)
    }

    fn run_schematron(&self, kind: u32, schema: &Schema, document: &[u8], out: &mut Validation) {
        let doc = match egisz_schematron::Document::parse(document, &TreeLimits::default()) {
            Ok(d) => d,
            Err(e) => {
                out.not_checked.push(Violation::new(
                    rules::PKG,
                    "/",
                    format!("схематрон вида {kind} не применён: {e}"),
                ));
                return;
            }
        };
        let budget = Budget { units: self.settings.units, deadline: Some(Instant::now() + self.settings.time) };
        let outcome = schema.validate(&doc, &budget);
        for f in outcome.findings {
            let v = Violation::new(rules::SCH, f.location, f.message).with_code(f.code);
            match f.kind {
                egisz_schematron::FindingKind::FailedAssert => out.schematron.push(v),
                egisz_schematron::FindingKind::SuccessfulReport => out.reports.push(v),
            }
        }
        match outcome.stopped {
            None => {}
            Some(Stopped::Error { code, message, context, test }) => {
                let test = test.map(|t| format!(", проверка «{t}»")).unwrap_or_default();
                out.schematron.push(
                    Violation::new(
                        rules::SCH,
                        "/",
                        format!(
                            "проверка схематроном остановлена ошибкой XPath {code} (правило «{context}»{test}): {message}; РЭМД не сможет проверить документ"
                        ),
                    )
                    .prevents("XML_VALIDATION_ERROR"),
                );
            }
            Some(Stopped::Exhausted) => out.not_checked.push(Violation::new(
                rules::PKG,
                "/",
                format!(
                    "проверка схематроном вида {kind} не уложилась в отведённое время ({} мс): документ проверен не полностью",
                    self.settings.time.as_millis()
                ),
            )),
        }
    }
}
