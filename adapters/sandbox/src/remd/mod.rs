//! The REMD emulator: a SOAP 1.2 server on the contract of `shared/federal/REMD.md`, on
//! one loopback listener, that calls the gateway back like REMD does.
//!
//! - `POST /port/emdr` ([`RemdSandbox::endpoint`]): `registerDocument`,
//!   `searchRegistryItem`, `getRegistryItem`, told apart by the body element. Every
//!   envelope is read and written with the `egisz-remd` codec. An unknown
//!   `clientEntityId` gets a `Sender` fault `NO_RMIS`; an unreadable request a `Sender`
//!   fault.
//! - `registerDocument` is counted and timestamped, then [`RemdFaults`] decide (a
//!   `Receiver` fault, a bare 503, `RATE_LIMIT`); otherwise it is **accepted** and a
//!   background task, after [`RemdSandboxConfig::processing_delay`], does what REMD does:
//!   refuses a `localUid` the organisation already registered (`NOT_UNIQUE_PROVIDED_ID`,
//!   without pulling), pulls the file from the gateway with `getDocumentFile`
//!   ([`RemdSandboxConfig::callback_url`]), checks its CRC-32, parses its CDA header,
//!   checks the request against it (kind ↔ `ClinicalDocument/code`, organisation ↔
//!   custodian, `localUid` ↔ `id/@extension`, creation time ↔ `effectiveTime`) and each
//!   signer against the FRMR [`Roster`] and every organisation and department against FRMO
//!   ([`crate::Frmo`]) on the creation date, registers it with the next
//!   `emdrId`, and posts `sendRegisterDocumentResult`.
//! - `/_admin/stats`, `/_admin/faults` (GET; PUT replaces the whole fault set — fields left
//!   out take their defaults — and answers with the set now in force), `/_admin/registry`
//!   and `PUT /_admin/roster/persons` (add or replace one person, in the roster's JSON form)
//!   on the same listener, as the methods of [`RemdSandbox`] in process.
//!
//! The codes it can emit are [`EMITTED_CODES`], all from NSI 1.2.643.5.1.13.13.99.2.305,
//! with the dictionary's texts.

mod checks;
pub(crate) mod codes;
mod content;
mod faults;
mod process;
mod registry;
mod service;

use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::http::StatusCode;
use axum::http::header::CONTENT_TYPE;
use chrono::{DateTime, FixedOffset, SubsecRound, Utc};
use egisz_contract::remd::{RegisterDocument, RegistryItem, SearchQuery};
use egisz_remd::SoapVersion;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::{JoinHandle, JoinSet};
use tokio::time::Instant;

pub use checks::{Registers, judge, validate_package};
pub use codes::EMITTED_CODES;
pub use faults::{RemdFaults, RemdStats};
pub use registry::RegistryEntry;

use crate::net::{Stalled, signalled, spawn_server};
use crate::{Frmo, Roster};
use faults::{Counters, draw};
use registry::{EntryView, NewEntry, Registry};

/// The client entity id (the GUID of the registered information system) the emulator
/// accepts; any other gets a `Sender` fault `NO_RMIS`. REMD.md's example.
pub const CLIENT_ENTITY_ID: &str = "1f0e6d3a-0000-4000-8000-000000000042";

/// The path of the SOAP endpoint, as on REMD's test stand.
pub const ENDPOINT_PATH: &str = "/port/emdr";

/// The default `emdrId` prefix, from the id seen in the wild (`16.62.23.09.000014523`).
pub const DEFAULT_EMDR_PREFIX: &str = "16.62.23.09";

/// The offset registration times are given in: +07:00, the reference region's (Kuzbass).
const REGION_OFFSET_SECS: i32 = 7 * 3600;

/// Timeout of each call the emulator makes to the gateway.
const CALLBACK_TIMEOUT: Duration = Duration::from_secs(10);

/// How to start a [`RemdSandbox`].
#[derive(Clone, Debug)]
pub struct RemdSandboxConfig {
    /// Address of the listener. Default `127.0.0.1:0` (a free port).
    pub listen: SocketAddr,
    /// The FRMR roster signers are checked against. Default [`Roster::builtin`], the
    /// FRMR emulator's.
    pub roster: Roster,
    /// The register of medical organisations the document's organisations and departments
    /// are checked against. Default [`Frmo::builtin`], the NSI emulator's.
    pub frmo: Frmo,
    /// The gateway's REMD-facing listener, where `getDocumentFile` and
    /// `sendRegisterDocumentResult` are posted (e.g. `http://127.0.0.1:8091/`), as is.
    /// Can be set later with [`RemdSandbox::set_callback_url`]. While it is `None`, pulls
    /// fail (`GET_DOCUMENT_FILE_ERROR`) and results are lost. Default `None`.
    pub callback_url: Option<String>,
    /// The `emdrId` prefix: ids are `<prefix>.<9-digit counter>`. Default
    /// [`DEFAULT_EMDR_PREFIX`].
    pub emdr_prefix: String,
    /// Faults in force from the start. Default: none.
    pub faults: RemdFaults,
    /// Time between the sync ack and the processing (the pull, or an early result).
    /// Default 50 ms.
    pub processing_delay: Duration,
    /// Keep the pulled bytes in [`RegistryEntry::document`]. Default `true`; turn it off
    /// for long runs (a backlog of thousands of documents) to keep the sandbox's memory
    /// flat — the checksum and size are kept either way.
    pub keep_documents: bool,
    /// A file (JSON lines, one registration each, without the bytes) that keeps the
    /// register — and so the `emdrId` sequence — across restarts: read at start, appended
    /// to at each registration. Default `None` (in memory only).
    pub registry_file: Option<std::path::PathBuf>,
    /// The CA certificates (DER) the emulator trusts for GOST signatures, as REMD trusts
    /// the accredited CAs. Default: the sandbox's GOST test CA
    /// ([`crate::pki::sandbox_ca_der`]).
    pub trusted_cas: Vec<Vec<u8>>,
    /// The ministry's rule packages the emulator validates documents with (XSD and
    /// schematron), as REMD does with the files it publishes. Default: none.
    pub packages: Option<Arc<egisz_packages::Catalog>>,
}

/// The emulator's signature verifier: the same GOST backend as the gateway's, trusting
/// `trusted_cas`, with the sandbox CA's standing CRL ([`crate::pki::sandbox_crl`]) at hand.
/// A CRL it cannot get is no verdict; a revoked certificate is refused.
pub fn verifier_trusting(trusted_cas: &[Vec<u8>]) -> io::Result<egisz_verifier::gost::GostVerifier> {
    egisz_verifier::gost::GostVerifier::new(
        egisz_verifier::gost::TrustSource::fixed(trusted_cas.to_vec()),
        egisz_verifier::judge::RevocationPolicy::Warn,
        egisz_verifier::gost::CrlSettings {
            timeout: Duration::from_secs(5),
            local: vec![crate::pki::sandbox_crl()],
            ..Default::default()
        },
    )
    .map_err(io::Error::other)
}

impl Default for RemdSandboxConfig {
    fn default() -> Self {
        Self {
            listen: SocketAddr::from((Ipv4Addr::LOCALHOST, 0)),
            roster: Roster::builtin(),
            frmo: Frmo::builtin(),
            callback_url: None,
            emdr_prefix: DEFAULT_EMDR_PREFIX.to_owned(),
            faults: RemdFaults::default(),
            processing_delay: Duration::from_millis(50),
            keep_documents: true,
            registry_file: None,
            trusted_cas: vec![crate::pki::sandbox_ca_der()],
            packages: None,
        }
    }
}

/// A running REMD emulator: an HTTP server on loopback, the background tasks that process
/// accepted requests, and the handle that steers them.
///
/// Dropping it stops the server and the background tasks too (in the background);
/// [`RemdSandbox::shutdown`] stops them and waits until they have.
#[derive(Debug)]
pub struct RemdSandbox {
    shared: Arc<Shared>,
    addr: SocketAddr,
    /// `true` (or dropped) stops the server and the background tasks.
    shutdown: watch::Sender<bool>,
    server: Option<JoinHandle<()>>,
}

impl RemdSandbox {
    /// Binds the listener and starts serving. When this returns, [`RemdSandbox::endpoint`]
    /// accepts connections.
    pub async fn start(config: RemdSandboxConfig) -> io::Result<Self> {
        let listener = TcpListener::bind(config.listen).await?;
        let addr = crate::frmr::reachable(listener.local_addr()?);
        let http = reqwest::Client::builder()
            .no_proxy()
            .timeout(CALLBACK_TIMEOUT)
            .user_agent("egisz-sandbox-remd")
            .build()
            .map_err(io::Error::other)?;
        let (shutdown, stop) = watch::channel(false);
        let mut registry = Registry::new(config.emdr_prefix, config.keep_documents);
        if let Some(path) = &config.registry_file {
            match std::fs::read_to_string(path) {
                Ok(text) => {
                    for (n, line) in text.lines().enumerate().filter(|(_, l)| !l.trim().is_empty()) {
                        match serde_json::from_str(line) {
                            Ok(p) => registry.restore(p),
                            Err(e) => {
                                return Err(io::Error::other(format!(
                                    "{}:{}: not a registration ({e})",
                                    path.display(),
                                    n + 1
                                )));
                            }
                        }
                    }
                }
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(e),
            }
        }
        let verifier = Arc::new(verifier_trusting(&config.trusted_cas)?);
        let shared = Arc::new(Shared {
            verifier,
            packages: config.packages.clone(),
            revoked: Mutex::new(Vec::new()),
            registry_file: config.registry_file.clone(),
            roster: std::sync::RwLock::new(config.roster),
            frmo: std::sync::RwLock::new(config.frmo),
            processing_delay: config.processing_delay,
            callback_url: Mutex::new(config.callback_url),
            faults: Mutex::new(config.faults.normalized()),
            counters: Counters::default(),
            registry: Mutex::new(registry),
            calls: Mutex::new(Calls::default()),
            stalled: Stalled::default(),
            http,
            tasks: Mutex::new(JoinSet::new()),
            stop: stop.clone(),
        });
        let server =
            spawn_server("remd", listener, service::router(shared.clone()), None, shared.stalled.clone(), stop);
        tracing::debug!(listen = %addr, people = shared.roster().len(), "REMD sandbox started");
        Ok(Self { shared, addr, shutdown, server: Some(server) })
    }

    /// The SOAP endpoint: `http://127.0.0.1:<port>/port/emdr`.
    pub fn endpoint(&self) -> String {
        format!("http://{}{ENDPOINT_PATH}", self.addr)
    }

    /// The admin root on the same listener: `http://127.0.0.1:<port>/_admin` (add
    /// `/stats`, `/faults`, `/registry`).
    pub fn admin_url(&self) -> String {
        format!("http://{}/_admin", self.addr)
    }

    /// The client entity id the emulator accepts ([`CLIENT_ENTITY_ID`]).
    pub fn client_entity_id(&self) -> &str {
        CLIENT_ENTITY_ID
    }

    /// Sets where `getDocumentFile` and `sendRegisterDocumentResult` go from now on
    /// (requests already being processed pick it up at their next call).
    pub fn set_callback_url(&self, url: String) {
        *lock(&self.shared.callback_url) = Some(url);
    }

    /// The callback URL in force.
    pub fn callback_url(&self) -> Option<String> {
        self.shared.callback_url()
    }

    /// Replaces the faults in force (rates are clamped into `0.0..=1.0`).
    pub fn set_faults(&self, faults: RemdFaults) {
        self.shared.set_faults(faults);
    }

    /// The faults in force (with `fail_next_sync` as far as it has counted down).
    pub fn faults(&self) -> RemdFaults {
        self.shared.faults()
    }

    /// The counters since start.
    pub fn stats(&self) -> RemdStats {
        self.shared.counters.snapshot()
    }

    /// Every registered document, in registration order.
    pub fn registry(&self) -> Vec<RegistryEntry> {
        lock(&self.shared.registry).entries()
    }

    /// When each `registerDocument` call arrived (those counted in
    /// [`RemdStats::register_calls`]), in arrival order: for asserting the rate a client
    /// kept to in any window.
    pub fn register_call_times(&self) -> Vec<Instant> {
        lock(&self.shared.calls).times.clone()
    }

    /// When each call a client's quota covers arrived — `registerDocument` (as in
    /// [`RemdSandbox::register_call_times`]), `searchRegistryItem` and `getRegistryItem`
    /// with the right client entity id — in arrival order: for asserting the rate a
    /// cluster of gateways kept to over all of REMD's methods.
    pub fn call_times(&self) -> Vec<Instant> {
        lock(&self.shared.calls).all.clone()
    }

    /// The roster signers are checked against (a copy: it may change).
    pub fn roster(&self) -> Roster {
        self.shared.roster()
    }

    /// Adds a person to the roster, or replaces the one with the same SNILS: the next
    /// documents are checked against the new card (as FRMR fixed by its operator). The
    /// same as `PUT /_admin/roster/persons` with the person's JSON.
    pub fn upsert_person(&self, person: serde_json::Value) -> Result<(), crate::frmr::RosterError> {
        self.shared.roster.write().unwrap_or_else(|p| p.into_inner()).upsert(person)
    }

    /// Adds an organisation to FRMO (a row in NSI's columns, [`Frmo::organization_row`]), or
    /// replaces the one with the same OID.
    pub fn upsert_organization(&self, row: serde_json::Value) {
        self.shared.frmo.write().unwrap_or_else(|p| p.into_inner()).upsert_organization(row);
    }

    /// Where the sandbox CA's CRL is served: the distribution point to put in sandbox
    /// certificates (`TestCa::with_crl_url`).
    pub fn crl_url(&self) -> String {
        format!("http://{}{CRL_PATH}", self.addr)
    }

    /// Revokes the sandbox CA's certificate with `serial` (hex, as `Certificate::serial_hex`
    /// gives it) now: the served list names it from the next fetch. The same as
    /// `POST /_admin/pki/revoked` with `{"serial": "<hex>"}`.
    pub fn revoke(&self, serial: &str) {
        let now = chrono::Utc::now().timestamp();
        lock(&self.shared.revoked).push((serial.to_owned(), now));
    }

    /// Stops the server and the background work, and waits until they have stopped.
    /// Held (silent) connections are aborted at once, requests doing real work may finish
    /// (for up to 5 s), and pending processing (pulls, results not yet posted) is
    /// abandoned.
    pub async fn shutdown(mut self) {
        self.shutdown.send_replace(true);
        if let Some(server) = self.server.take()
            && let Err(error) = server.await
        {
            tracing::warn!(%error, "REMD sandbox: the server task failed");
        }
        let mut tasks = std::mem::take(&mut *lock(&self.shared.tasks));
        tasks.shutdown().await;
    }
}

/// What the admission of a `registerDocument` call decided.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Admission {
    /// A SOAP `Receiver` fault.
    Fault,
    /// A bare HTTP 503.
    Unavailable,
    /// `status=error` with `RATE_LIMIT`.
    RateLimited,
    /// Accepted; `silent`: the answer is withheld.
    Accept { silent: bool },
}

/// Arrival times and the rate window, under one lock so that both see calls in the same
/// order.
#[derive(Debug, Default)]
struct Calls {
    times: Vec<Instant>,
    /// Every call against the quota: `registerDocument`, `searchRegistryItem`,
    /// `getRegistryItem`.
    all: Vec<Instant>,
    /// Start of the current 1-second window.
    window_start: Option<Instant>,
    /// `registerDocument` calls in it so far.
    in_window: u64,
}

/// The path of the sandbox CA's CRL on the emulator's listener.
pub const CRL_PATH: &str = "/pki/sandbox-ca.crl";

/// State shared by the handle, the server and the background tasks.
struct Shared {
    /// Signatures: value, chain and revocation.
    verifier: Arc<egisz_verifier::gost::GostVerifier>,
    /// The rule packages documents are validated with.
    packages: Option<Arc<egisz_packages::Catalog>>,
    /// Serials (hex) the sandbox CA has revoked, with when: served at `/pki/sandbox-ca.crl`.
    revoked: Mutex<Vec<(String, i64)>>,
    roster: std::sync::RwLock<Roster>,
    frmo: std::sync::RwLock<Frmo>,
    registry_file: Option<std::path::PathBuf>,
    processing_delay: Duration,
    callback_url: Mutex<Option<String>>,
    faults: Mutex<RemdFaults>,
    counters: Counters,
    registry: Mutex<Registry>,
    calls: Mutex<Calls>,
    /// Requests held on purpose (accepted-then-silent): shutdown does not wait for them.
    stalled: Stalled,
    /// For the calls back to the gateway.
    http: reqwest::Client,
    /// Background processing of accepted requests.
    tasks: Mutex<JoinSet<()>>,
    /// Becomes `true` (or closed) on shutdown; background tasks stop on it.
    stop: watch::Receiver<bool>,
}

impl Shared {
    fn roster(&self) -> Roster {
        self.roster.read().unwrap_or_else(|p| p.into_inner()).clone()
    }

    fn frmo(&self) -> Frmo {
        self.frmo.read().unwrap_or_else(|p| p.into_inner()).clone()
    }
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("roster", &self.roster())
            .field("faults", &self.faults())
            .field("counters", &self.counters)
            .field("registered", &lock(&self.registry).len())
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Now, in +07:00, to the millisecond.
fn region_now() -> DateTime<FixedOffset> {
    let offset = FixedOffset::east_opt(REGION_OFFSET_SECS).expect("+07:00 is a valid offset");
    Utc::now().with_timezone(&offset).trunc_subsecs(3)
}

impl Shared {
    fn faults(&self) -> RemdFaults {
        lock(&self.faults).clone()
    }

    fn set_faults(&self, faults: RemdFaults) {
        *lock(&self.faults) = faults.normalized();
    }

    /// Timestamps a look-up call (`searchRegistryItem`, `getRegistryItem`).
    fn note_lookup(&self) {
        lock(&self.calls).all.push(Instant::now());
    }

    fn callback_url(&self) -> Option<String> {
        lock(&self.callback_url).clone()
    }

    /// Counts and timestamps a `registerDocument` call and decides its fate, in the order
    /// of [`RemdFaults`]: `fail_next_sync`, `sync_fault_rate`, `sync_5xx_rate`, the rate
    /// window, then accept (silently with `accept_then_silent_rate`).
    fn admit(&self) -> Admission {
        Counters::bump(&self.counters.register_calls);
        let in_window = {
            let now = Instant::now();
            let mut calls = lock(&self.calls);
            calls.times.push(now);
            calls.all.push(now);
            if calls.window_start.is_none_or(|start| now.duration_since(start) >= Duration::from_secs(1)) {
                calls.window_start = Some(now);
                calls.in_window = 0;
            }
            calls.in_window += 1;
            calls.in_window
        };
        let mut faults = lock(&self.faults);
        if faults.fail_next_sync > 0 {
            faults.fail_next_sync -= 1;
            return Admission::Fault;
        }
        if draw(faults.sync_fault_rate) {
            return Admission::Fault;
        }
        if draw(faults.sync_5xx_rate) {
            return Admission::Unavailable;
        }
        if faults.rate_limit_per_second.is_some_and(|limit| in_window > u64::from(limit)) {
            return Admission::RateLimited;
        }
        Admission::Accept { silent: draw(faults.accept_then_silent_rate) }
    }

    /// Runs the processing of an accepted request in the background, until it ends or the
    /// sandbox stops.
    fn spawn_processing(self: &Arc<Self>, request: RegisterDocument) {
        let work = process::process(self.clone(), request);
        let mut stop = self.stop.clone();
        let mut tasks = lock(&self.tasks);
        while tasks.try_join_next().is_some() {}
        tasks.spawn(async move {
            tokio::select! {
                () = signalled(&mut stop) => {}
                () = work => {}
            }
        });
    }

    fn is_registered(&self, organization: &str, local_uid: &str) -> bool {
        lock(&self.registry).contains(organization, local_uid)
    }

    fn register(&self, new: NewEntry, now: DateTime<FixedOffset>) -> Option<RegistryItem> {
        let mut registry = lock(&self.registry);
        let item = registry.register(new, now)?;
        // Appended under the register's lock, so the file holds them in their order.
        if let (Some(path), Some(p)) = (&self.registry_file, registry.last_persisted()) {
            let line = serde_json::to_string(&p).unwrap_or_default();
            let appended = std::fs::OpenOptions::new()
                .create(true)
                .append(true)
                .open(path)
                .and_then(|mut f| std::io::Write::write_all(&mut f, format!("{line}\n").as_bytes()));
            if let Err(error) = appended {
                tracing::warn!(%error, "REMD sandbox: the register's file could not be appended to");
            }
        }
        Some(item)
    }

    fn search(&self, query: &SearchQuery) -> Vec<RegistryItem> {
        lock(&self.registry).search(query)
    }

    fn get(&self, emdr_id: &str) -> Option<RegistryItem> {
        lock(&self.registry).get(emdr_id)
    }

    fn registry_views(&self) -> Vec<EntryView> {
        lock(&self.registry).views()
    }

    /// POSTs a SOAP 1.2 call to the gateway: the status and body of its answer, or `None`
    /// when no answer came (the error is logged by kind only).
    async fn post(&self, url: &str, action: &str, body: Vec<u8>) -> Option<(StatusCode, Vec<u8>)> {
        let sent = self
            .http
            .post(url)
            .header(CONTENT_TYPE, SoapVersion::Soap12.content_type(Some(action)))
            .body(body)
            .send()
            .await;
        let response = match sent {
            Ok(response) => response,
            Err(error) => {
                tracing::debug!(
                    action,
                    timeout = error.is_timeout(),
                    connect = error.is_connect(),
                    "REMD sandbox: call to the gateway failed"
                );
                return None;
            }
        };
        let status = StatusCode::from_u16(response.status().as_u16()).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
        match response.bytes().await {
            Ok(bytes) => Some((status, bytes.to_vec())),
            Err(error) => {
                tracing::debug!(action, timeout = error.is_timeout(), "REMD sandbox: answer from the gateway cut off");
                None
            }
        }
    }
}
