//! Wiring: builds the gateway from a [`Config`], runs its listeners and background tasks,
//! and stops them. The binary's `serve` and the integration tests both use [`start`].

use std::collections::BTreeSet;
use std::io::Write;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use anyhow::Context;
use egisz_contract::frmr::FrmrRegistry;
use egisz_contract::remd::RemdRegistry;
use egisz_contract::{CallObserver, Oid};
use egisz_frmr::{FrmrClient, FrmrClientConfig, TokenSource};
use egisz_remd::{RemdClient, RemdClientConfig};
use egisz_sandbox::{FrmrSandbox, FrmrSandboxConfig, RemdSandbox, RemdSandboxConfig};
use tokio::sync::Notify;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;

use crate::api::{self, AppState};
use crate::auth::{self, Authenticator, Role, Scope};
use crate::config::{Config, ServiceMode};
use crate::lifecycle::Lifecycle;
use crate::mappings::Mappings;
use crate::metrics::Metrics;
use crate::relay::Relay;
use crate::remd::RemdCalls;
use crate::remd_listener::{self, ListenerState};
use crate::serve::Admission;
use crate::staff::StaffService;
use crate::store::{self, GroupCommit, Store};

/// Name of the client created for the embedded default.
pub const DEMO_CLIENT_NAME: &str = "sandbox-demo";

/// A running gateway.
pub struct RunningGateway {
    api_addr: SocketAddr,
    shutdown: CancellationToken,
    /// How long shutdown waits for requests in progress.
    drain_for: Duration,
    tasks: Vec<JoinHandle<()>>,
    frmr_sandbox: Option<FrmrSandbox>,
    remd_sandbox: Option<RemdSandbox>,
    nsi_sandbox: Option<egisz_sandbox::NsiSandbox>,
    remd_addr: SocketAddr,
    relay: Arc<Relay>,
    store: Arc<dyn Store>,
    staff: StaffService,
    metrics: Arc<Metrics>,
    intake: GroupCommit,
    /// This process's claim on its `relay.instance_id`, released when it stops.
    _instance: store::InstanceGuard,
}

impl RunningGateway {
    pub fn api_addr(&self) -> SocketAddr {
        self.api_addr
    }

    /// `http://<api addr>`.
    pub fn api_url(&self) -> String {
        format!("http://{}", self.api_addr)
    }

    /// `http://<REMD-facing listener addr>/`.
    pub fn remd_listener_url(&self) -> String {
        format!("http://{}/", self.remd_addr)
    }

    /// The in-process REMD emulator, when `remd.mode = "sandbox"`.
    pub fn remd_sandbox(&self) -> Option<&RemdSandbox> {
        self.remd_sandbox.as_ref()
    }

    /// The relay (tests drive it directly, e.g. to drain the queue).
    pub fn relay(&self) -> &Arc<Relay> {
        &self.relay
    }

    /// The in-process FRMR emulator, when `frmr.mode = "sandbox"`.
    pub fn frmr_sandbox(&self) -> Option<&FrmrSandbox> {
        self.frmr_sandbox.as_ref()
    }

    pub fn store(&self) -> Arc<dyn Store> {
        Arc::clone(&self.store)
    }

    pub fn staff(&self) -> &StaffService {
        &self.staff
    }

    pub fn metrics(&self) -> &Metrics {
        &self.metrics
    }

    /// Commits made by intake's group commit, and the documents they stored.
    pub fn intake_commits(&self) -> (u64, u64) {
        self.intake.stats()
    }

    /// A token that, when cancelled, stops the gateway (used by signal handling).
    pub fn shutdown_token(&self) -> CancellationToken {
        self.shutdown.clone()
    }

    /// Waits until the gateway is told to stop, then stops it.
    pub async fn run_until_stopped(self) {
        self.shutdown.cancelled().await;
        self.shutdown().await;
    }

    /// Stops accepting requests, lets requests in progress finish (up to
    /// `api.request_timeout_ms`), stops background tasks and the emulators.
    pub async fn shutdown(self) {
        self.shutdown.cancel();
        for task in self.tasks {
            if tokio::time::timeout(self.drain_for, task).await.is_err() {
                tracing::warn!(drain_ms = self.drain_for.as_millis() as u64, "a task did not stop in time");
            }
        }
        if let Some(sandbox) = self.remd_sandbox {
            sandbox.shutdown().await;
        }
        if let Some(sandbox) = self.frmr_sandbox {
            sandbox.shutdown().await;
        }
        if let Some(sandbox) = self.nsi_sandbox {
            sandbox.stop().await;
        }
        tracing::info!("stopped");
    }
}

/// Starts the gateway: opens the store and migrates it, starts emulators for services in
/// sandbox mode, binds the API listener and starts background tasks.
pub async fn start(config: &Config) -> anyhow::Result<RunningGateway> {
    start_with(config, None).await
}

/// [`start`], with `frmr.mode = "sandbox"` served by an FRMR emulator the caller runs
/// (`frmr_emulator`) instead of one started here: for tests that drive the emulator
/// (faults, statistics) and keep it across restarts. No demo client is made for it.
pub async fn start_with(config: &Config, frmr_emulator: Option<&FrmrSandbox>) -> anyhow::Result<RunningGateway> {
    let mixed = config.sandbox_beside_remote();
    if !mixed.is_empty() {
        let list = mixed.iter().map(|(key, message)| format!("  - {key}: {message}")).collect::<Vec<_>>().join("\n");
        anyhow::bail!("the configuration puts a sandbox beside a real service:\n{list}");
    }
    let store = open_store(config).await?;
    let metrics = Arc::new(Metrics::new());

    let frmr_sandbox = match frmr_emulator {
        None => start_frmr_sandbox(config).await?,
        Some(_) => None,
    };
    let frmr =
        frmr_client(config, frmr_emulator.or(frmr_sandbox.as_ref()), Arc::clone(&metrics) as Arc<dyn CallObserver>)?;

    let staff = StaffService::of_config(Arc::clone(&store), frmr, Arc::clone(&metrics), &config.frmr);
    let authenticator = Authenticator::new(Arc::clone(&store), config.api.key_cache_for);

    match &frmr_sandbox {
        // The demo client (every role) only where every service is an emulator.
        Some(sandbox) if config.all_sandbox() => {
            let orgs =
                sandbox.roster().organizations().into_iter().filter_map(|(oid, _)| Oid::parse(&oid).ok()).collect();
            ensure_demo_client(&store, &authenticator, &config.sandbox.api_key_file, orgs).await?;
        }
        _ if !config.all_sandbox() => disable_demo_clients(&store).await?,
        _ => {}
    }

    let mappings = Arc::new(Mappings::load(config.mappings.dir.as_deref()).map_err(|problems| {
        let list = problems.iter().map(|p| format!("  - {p}")).collect::<Vec<_>>().join("\n");
        anyhow::anyhow!("the mappings do not load:\n{list}")
    })?);
    let shutdown = CancellationToken::new();

    // The signature verifier before the REMD emulator, which trusts the same CAs.
    let (verification, gost) = start_verification(config, &shutdown).await?;
    // The rule packages too: the emulator validates with the same files.
    let packages = open_packages(config).await?;

    // REMD: the listener first, so the emulator knows where to call back.
    let remd_listener = tokio::net::TcpListener::bind(config.remd_listener.listen)
        .await
        .with_context(|| format!("binding the REMD listener to {}", config.remd_listener.listen))?;
    let remd_addr = remd_listener.local_addr()?;
    let remd_sandbox = start_remd_sandbox(config, remd_addr, gost.as_deref(), packages.clone()).await?;
    let remd = remd_client(config, remd_sandbox.as_ref(), Arc::clone(&metrics) as Arc<dyn CallObserver>)?;
    let instance = store
        .hold_instance(&config.relay.instance_id, Duration::from_secs(15))
        .await
        .context("claiming relay.instance_id")?;
    // REMD's calls and the lifecycle, shared by the relay, the REMD listener and ops.
    let remd = Arc::new(RemdCalls::new(Arc::clone(&store), remd, config.remd.quota, Arc::clone(&metrics)));
    let lifecycle = Arc::new(Lifecycle::new(
        Arc::clone(&mappings),
        config.relay.timing.clone(),
        Arc::new(Notify::new()),
        Arc::clone(&metrics),
    ));
    let relay = Arc::new(Relay::new(
        Arc::clone(&store),
        Arc::clone(&remd),
        Arc::clone(&lifecycle),
        Arc::clone(&metrics),
        config.relay.clone(),
    ));
    let listener_state = ListenerState {
        store: Arc::clone(&store),
        lifecycle: Arc::clone(&lifecycle),
        remd: Arc::clone(&remd),
        metrics: Arc::clone(&metrics),
        confirm_success: config.remd_listener.confirm_success,
    };
    let remd_task = serve_remd_listener(&config.remd_listener, remd_listener, listener_state, &shutdown)?;
    let relay_task = tokio::spawn(Arc::clone(&relay).run(shutdown.clone()));
    let notify_task = store.spawn_outbox_listener(Arc::clone(lifecycle.bell()), shutdown.clone());

    let intake = GroupCommit::start(Arc::clone(&store), config.database.group_commit_max, store.parallel_writers());
    let dictionaries = Arc::new(crate::mappings::LiveDictionaries::new(mappings.dictionaries().clone()));
    // FRMO's copy in force is the database's, whatever nsi.mode says.
    let frmo = Arc::new(crate::nsi::frmo::Frmo::new());
    if let Err(e) = frmo.load(&*store).await {
        tracing::warn!(error = %e, "FRMO: the stored copy could not be read; organisations are not checked until it is");
    }
    let (nsi, nsi_sandbox) = nsi_for(config, &store, &dictionaries, &mappings, &frmo).await?;
    if let Some(nsi) = &nsi
        && let Err(e) = nsi.load_stored().await
    {
        tracing::warn!(error = %e, "NSI: the stored dictionary copies could not be read; the shipped ones are in force");
    }
    // The emulator's copies (a few rows) are in force before the first request.
    if let (Some(nsi), Some(_)) = (&nsi, &nsi_sandbox) {
        nsi.run_once(config.nsi.refresh_every, &config.relay.instance_id).await;
    }
    let console_key = console_key(&store).await?;
    let state = AppState {
        console_key,
        metrics_figures_read: Arc::default(),
        store: Arc::clone(&store),
        auth: authenticator,
        staff: staff.clone(),
        metrics: Arc::clone(&metrics),
        settings: Arc::new(config.api.clone()),
        documents: config.documents.clone(),
        region: config.region,
        mappings,
        dictionaries,
        validation: Arc::new(config.validation.clone()),
        verification,
        packages: packages.clone(),
        validate_limiter: Arc::new(governor::RateLimiter::keyed(governor::Quota::per_minute(
            std::num::NonZeroU32::new(config.api.validate_per_minute).unwrap_or(std::num::NonZeroU32::MIN),
        ))),
        nsi: nsi.clone(),
        frmo: Arc::clone(&frmo),
        lifecycle: Arc::clone(&lifecycle),
        remd: Arc::clone(&remd),
        intake: intake.clone(),
        intake_permits: Arc::new(tokio::sync::Semaphore::new(config.api.intake_workers)),
        ops: crate::ops::Operations::new(Arc::clone(&store), lifecycle, remd, frmo, config.ops.clone()),
    };

    let listener = tokio::net::TcpListener::bind(config.api.listen)
        .await
        .with_context(|| format!("binding the API listener to {}", config.api.listen))?;
    let api_addr = listener.local_addr()?;
    if !api_addr.ip().is_loopback() {
        tracing::warn!(%api_addr, "the API listens beyond loopback: make sure a firewall or proxy stands in front");
        if !config.ops.secure_cookies {
            tracing::warn!(
                "the ops console's cookies are not marked Secure (ops.secure_cookies = false): serve the console over HTTPS and set it to true"
            );
        }
    }
    let app = api::router(state.clone(), crate::console::routes(state));
    let api_task = tokio::spawn(crate::serve::serve(
        listener,
        app,
        config.api.limits,
        Admission::everyone(),
        shutdown.clone(),
        config.api.limits.request_timeout + Duration::from_secs(1),
    ));
    tracing::info!(%api_addr, "API listening");

    let purge_task = tokio::spawn(purge_expired(
        Arc::clone(&store),
        config.frmr.cache_stale_limit,
        config.relay.callbacks_kept_for,
        shutdown.clone(),
    ));

    let drain_for = config.api.limits.request_timeout + Duration::from_secs(1);
    let mut tasks = vec![api_task, remd_task, relay_task, purge_task];
    if let (Some(catalog), Some(settings)) = (packages, &config.validation.packages) {
        tasks.push(tokio::spawn(rescan_packages(catalog, settings.refresh, shutdown.clone())));
    }
    tasks.extend(notify_task);
    if let Some(nsi) = nsi {
        tasks.push(tokio::spawn(nsi.run(
            config.nsi.refresh_every,
            crate::nsi::RELOAD_EVERY,
            config.relay.instance_id.clone(),
            shutdown.clone(),
        )));
    }
    Ok(RunningGateway {
        api_addr,
        shutdown,
        drain_for,
        tasks,
        frmr_sandbox,
        remd_sandbox,
        nsi_sandbox,
        remd_addr,
        relay,
        store,
        staff,
        metrics,
        intake,
        _instance: instance,
    })
}

/// Opens the database, migrated, and says whether its commits are durable.
async fn open_store(config: &Config) -> anyhow::Result<Arc<dyn Store>> {
    let store = store::connect(&config.database)
        .await
        .with_context(|| format!("opening the database {}", crate::config::redact_url(&config.database.url)))?;
    tracing::info!(backend = store.backend().label(), "database ready, migrations applied");
    match store.durability().await {
        Ok(d) if d.durable => tracing::info!(settings = ?d.settings, "commits are durable"),
        Ok(d) => tracing::warn!(
            settings = ?d.settings,
            "commits are NOT durable: an acknowledged document can be lost in a power cut or an OS crash; \
             set synchronous_commit to on (PostgreSQL) and keep fsync on"
        ),
        Err(e) => tracing::warn!(error = %e, "could not read the database's durability settings"),
    }
    Ok(store)
}

/// The FRMR emulator, when `frmr.mode = "sandbox"`.
async fn start_frmr_sandbox(config: &Config) -> anyhow::Result<Option<FrmrSandbox>> {
    Ok(match config.frmr.mode {
        ServiceMode::Sandbox => {
            let sandbox = FrmrSandbox::start(FrmrSandboxConfig {
                listen: config.sandbox.frmr_listen,
                control_listen: config.sandbox.frmr_control_listen,
                roster: config.sandbox.frmr_roster.clone(),
                faults: config.sandbox.frmr_faults.clone(),
                ..FrmrSandboxConfig::default()
            })
            .await
            .context("starting the sandbox FRMR")?;
            tracing::info!(
                base_url = %sandbox.base_url(),
                admin_url = %sandbox.admin_url(),
                "sandbox FRMR started (emulator; faults at PUT <admin_url>/faults)"
            );
            Some(sandbox)
        }
        ServiceMode::Remote => None,
    })
}

/// The REMD emulator, when `remd.mode = "sandbox"`: it calls back the REMD listener at
/// `remd_addr`, trusts the CAs the gateway's verifier trusts (`gost`), and validates with the
/// same rule packages.
async fn start_remd_sandbox(
    config: &Config,
    remd_addr: SocketAddr,
    gost: Option<&egisz_verifier::gost::GostVerifier>,
    packages: Option<Arc<egisz_packages::Catalog>>,
) -> anyhow::Result<Option<RemdSandbox>> {
    Ok(match config.remd.mode {
        ServiceMode::Sandbox => {
            let roster = match &config.sandbox.frmr_roster {
                Some(path) => egisz_sandbox::Roster::from_file(path).context("the sandbox roster")?,
                None => egisz_sandbox::Roster::builtin(),
            };
            let sandbox = RemdSandbox::start(RemdSandboxConfig {
                listen: config.sandbox.remd_listen,
                roster,
                callback_url: Some(format!("http://{remd_addr}/")),
                // The register lives beside the gateway's SQLite file, so that the two agree
                // across restarts (no emdrId given twice); with PostgreSQL, in memory.
                registry_file: sandbox_registry_file(&config.database.url),
                trusted_cas: sandbox_trusted_cas(config, gost),
                packages,
                ..RemdSandboxConfig::default()
            })
            .await
            .context("starting the sandbox REMD")?;
            tracing::info!(endpoint = %sandbox.endpoint(), "sandbox REMD started (emulator; faults at PUT <endpoint host>/_admin/faults)");
            Some(sandbox)
        }
        ServiceMode::Remote => None,
    })
}

/// Serves REMD's calls on `listener` as `section` (`[remd_listener]`) says: limits, allowed
/// networks, mutual TLS; until `shutdown`.
fn serve_remd_listener(
    section: &crate::config::RemdListenerConfig,
    listener: tokio::net::TcpListener,
    state: ListenerState,
    shutdown: &CancellationToken,
) -> anyhow::Result<JoinHandle<()>> {
    let remd_addr = listener.local_addr()?;
    let refused_metrics = Arc::clone(&state.metrics);
    let listener_limits = section.limits;
    let listener_app = remd_listener::router(state, &listener_limits);
    let tls = match &section.tls {
        Some(t) => Some(
            crate::serve::TlsGate::from_files(&t.cert, &t.key, &t.client_ca, &t.allowed_subjects)
                .map_err(|e| anyhow::anyhow!("remd_listener TLS: {e}"))?,
        ),
        None => None,
    };
    let admission = Admission {
        tls,
        allow_from: Some(section.allow_from.clone()),
        refusal: Arc::from(remd_listener::refusal()),
        on_refused: Arc::new(move |peer| {
            refused_metrics.remd_listener_refused.inc();
            tracing::warn!(peer = %peer.ip(), "a call to the REMD listener from outside remd_listener.allow_from was refused");
        }),
    };
    let task = tokio::spawn(crate::serve::serve(
        listener,
        listener_app,
        listener_limits,
        admission,
        shutdown.clone(),
        listener_limits.request_timeout + Duration::from_secs(1),
    ));
    tracing::info!(%remd_addr, tls = section.tls.is_some(), "REMD-facing listener up");
    Ok(task)
}

/// The key that signs the console's sign-in form cookie: one for every instance on the
/// database (the first to start makes it).
async fn console_key(store: &Arc<dyn Store>) -> anyhow::Result<Arc<[u8]>> {
    let mut fresh = [0u8; 32];
    rand::RngCore::fill_bytes(&mut rand::rng(), &mut fresh);
    Ok(store.shared_secret(crate::console::SIGN_IN_SECRET, &fresh).await.context("the console's signing key")?.into())
}

fn frmr_client(
    config: &Config,
    sandbox: Option<&FrmrSandbox>,
    observer: Arc<dyn CallObserver>,
) -> anyhow::Result<Arc<dyn FrmrRegistry>> {
    let endpoints = sandbox.map(|s| (s.base_url(), s.token_url()));
    let client_config = frmr_client_config(config, endpoints.as_ref().map(|(b, t)| (b.as_str(), t.as_str())))?;
    let client = FrmrClient::new(client_config, observer).context("building the FRMR client")?;
    Ok(Arc::new(client))
}

/// The FRMR client's settings. `sandbox` gives the emulator's base URL and token provider
/// URL, used where the configuration leaves them empty.
pub fn frmr_client_config(config: &Config, sandbox: Option<(&str, &str)>) -> anyhow::Result<FrmrClientConfig> {
    let base_url = match (&config.frmr.base_url, sandbox) {
        (Some(url), _) => url.clone(),
        (None, Some((base, _))) => url::Url::parse(base).context("sandbox FRMR base URL")?,
        (None, None) => anyhow::bail!("frmr.base_url is required in remote mode"),
    };
    let token = match (&config.frmr.token, sandbox) {
        (Some(t), _) => t.as_str(),
        (None, Some((_, provider))) => provider,
        (None, None) => anyhow::bail!("frmr.token is required in remote mode"),
    };
    let token = TokenSource::parse(token).map_err(|e| anyhow::anyhow!("frmr.token: {e}"))?;
    Ok(FrmrClientConfig {
        base_url,
        token,
        rate_per_second: config.frmr.rate_per_second,
        timeout: config.frmr.timeout,
        retry_max_attempts: config.frmr.retry_max_attempts,
        retry_min_delay: Duration::from_millis(100).min(config.frmr.retry_max_delay),
        retry_max_delay: config.frmr.retry_max_delay,
        extra_ca_bundle: config.frmr.extra_ca_bundle.clone(),
        user_agent: egisz_frmr::DEFAULT_USER_AGENT.to_owned(),
    })
}

/// Runs every check the FRMR client makes when it is built (CA bundle included), without
/// starting anything. For `check-config`.
pub fn check_frmr_client(config: &Config) -> anyhow::Result<()> {
    let placeholders = ("http://127.0.0.1:1/", "http://127.0.0.1:1/token");
    let sandbox = (config.frmr.mode == ServiceMode::Sandbox).then_some(placeholders);
    let client_config = frmr_client_config(config, sandbox)?;
    egisz_frmr::validate(&client_config).context("frmr")?;
    Ok(())
}

fn remd_client(
    config: &Config,
    sandbox: Option<&RemdSandbox>,
    observer: Arc<dyn CallObserver>,
) -> anyhow::Result<Arc<dyn RemdRegistry>> {
    let endpoints = sandbox.map(|s| (s.endpoint(), s.client_entity_id().to_owned()));
    let client_config = remd_client_config(config, endpoints.as_ref().map(|(e, id)| (e.as_str(), id.as_str())))?;
    let client = RemdClient::new(client_config, observer).context("building the REMD client")?;
    Ok(Arc::new(client))
}

/// The REMD client's settings. `sandbox` gives the emulator's endpoint and client id, used
/// where the configuration leaves them empty.
fn remd_client_config(config: &Config, sandbox: Option<(&str, &str)>) -> anyhow::Result<RemdClientConfig> {
    let endpoint = match (&config.remd.endpoint, sandbox) {
        (Some(url), _) => url.clone(),
        (None, Some((endpoint, _))) => url::Url::parse(endpoint).context("sandbox REMD endpoint")?,
        (None, None) => anyhow::bail!("remd.endpoint is required in remote mode"),
    };
    let client_entity_id = match (&config.remd.client_entity_id, sandbox) {
        (Some(id), _) => id.clone(),
        (None, Some((_, id))) => id.to_owned(),
        (None, None) => anyhow::bail!("remd.client_entity_id is required in remote mode"),
    };
    Ok(RemdClientConfig {
        endpoint,
        client_entity_id,
        timeout: config.remd.timeout,
        extra_ca_bundle: config.remd.extra_ca_bundle.clone(),
        user_agent: egisz_remd::DEFAULT_USER_AGENT.to_owned(),
    })
}

/// Runs every check the REMD client makes when it is built (CA bundle included), without
/// starting anything. For `check-config`.
pub fn check_remd_client(config: &Config) -> anyhow::Result<()> {
    let placeholders = ("http://127.0.0.1:1/port/emdr", "1f0e6d3a-0000-4000-8000-000000000042");
    let sandbox = (config.remd.mode == ServiceMode::Sandbox).then_some(placeholders);
    egisz_remd::validate(&remd_client_config(config, sandbox)?).context("remd")?;
    Ok(())
}

/// On the embedded default, makes sure a demo client exists whose key is in `path`
/// (mode 0600), creating one on first start or when the file is gone or no longer valid.
async fn ensure_demo_client(
    store: &Arc<dyn Store>,
    authenticator: &Authenticator,
    path: &Path,
    organizations: BTreeSet<Oid>,
) -> anyhow::Result<()> {
    if let Ok(existing) = std::fs::read_to_string(path)
        && authenticator.authenticate_key(existing.trim()).await.is_ok()
    {
        tracing::info!(key_file = %path.display(), "sandbox demo client ready; its API key is in the key file");
        return Ok(());
    }
    let now = crate::now();
    for old in store.list_clients().await? {
        if old.name == DEMO_CLIENT_NAME && old.revoked_at.is_none() {
            store.revoke_client(&old.id.to_string(), now).await?;
        }
    }
    let issued = auth::issue(DEMO_CLIENT_NAME, Role::ALL.into_iter().collect(), Scope::Only(organizations), now);
    store.insert_client(&issued.client).await?;
    write_secret_file(path, &issued.key).with_context(|| format!("writing the demo API key to {}", path.display()))?;
    tracing::info!(
        key_file = %path.display(),
        client_id = %issued.client.id,
        "created the sandbox demo client with every role for the sandbox organisations; its API key is in the key file"
    );
    Ok(())
}

/// A gateway that talks to a real service keeps no demo client: one left in its database
/// by a sandbox run (the same database, or a copy of it) is revoked, with a log line.
async fn disable_demo_clients(store: &Arc<dyn Store>) -> anyhow::Result<()> {
    let now = crate::now();
    for client in store.list_clients().await? {
        if client.name == DEMO_CLIENT_NAME && client.revoked_at.is_none() {
            store.revoke_client(&client.id.to_string(), now).await?;
            tracing::warn!(
                client_id = %client.id,
                "revoked the sandbox demo client found in the database: it has every role, and this gateway talks \
                 to a real service"
            );
        }
    }
    Ok(())
}

/// Writes `secret` to `path` readable by the owner only.
pub fn write_secret_file(path: &Path, secret: &str) -> std::io::Result<()> {
    if let Some(dir) = path.parent()
        && !dir.as_os_str().is_empty()
    {
        std::fs::create_dir_all(dir)?;
    }
    // A temporary name of this process's own: instances started together on one host (a
    // sandbox cluster) each write theirs and rename it into place, the last one winning.
    let tmp: PathBuf = path.with_extension(format!("tmp.{}", std::process::id()));
    // A leftover from an interrupted write would keep its old permissions.
    let _ = std::fs::remove_file(&tmp);
    {
        let mut options = std::fs::OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        std::os::unix::fs::OpenOptionsExt::mode(&mut options, 0o600);
        let mut f = options.open(&tmp)?;
        writeln!(f, "{secret}")?;
        f.sync_all()?;
    }
    std::fs::rename(&tmp, path)
}

/// The file of an SQLite database URL (`sqlite://<path>[?…]`); `None` for another engine or
/// an in-memory database.
fn sqlite_file(url: &str) -> Option<&str> {
    let path = url.strip_prefix("sqlite://")?.split('?').next()?;
    (!path.is_empty() && !path.contains(":memory:")).then_some(path)
}

/// Where the sandbox REMD keeps its register: beside the SQLite file (`<db>.sandbox-remd.jsonl`).
fn sandbox_registry_file(url: &str) -> Option<std::path::PathBuf> {
    sqlite_file(url).map(|path| std::path::PathBuf::from(format!("{path}.sandbox-remd.jsonl")))
}

/// Deletes what is kept no longer than useful, at start and then hourly: FRMR cache entries
/// past the stale limit, REMD's recorded calls past their retention (both may hold
/// personal data), and expired console sign-ins.
async fn purge_expired(store: Arc<dyn Store>, stale_limit: Duration, callbacks_for: Duration, stop: CancellationToken) {
    let mut tick = tokio::time::interval(Duration::from_secs(3600));
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let now = crate::now();
        if let Ok(limit) = chrono::Duration::from_std(stale_limit) {
            match store.staff_cache_purge(now - limit).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(entries = n, "purged expired FRMR cache entries"),
                Err(e) => tracing::warn!(error = %e, "purging the FRMR cache failed"),
            }
        }
        if let Ok(limit) = chrono::Duration::from_std(callbacks_for) {
            match store.purge_callbacks(now - limit).await {
                Ok(0) => {}
                Ok(n) => tracing::info!(calls = n, "purged old REMD calls"),
                Err(e) => tracing::warn!(error = %e, "purging REMD calls failed"),
            }
        }
        match store.purge_sessions(now).await {
            Ok(0) => {}
            Ok(n) => tracing::info!(sessions = n, "purged expired console sign-ins"),
            Err(e) => tracing::warn!(error = %e, "purging console sign-ins failed"),
        }
    }
}

/// The ministry's rule packages of `validation.packages_dir`, listed (each is compiled when
/// its kind's first document arrives). `None` when no directory is configured.
pub async fn open_packages(config: &Config) -> anyhow::Result<Option<Arc<egisz_packages::Catalog>>> {
    let Some(settings) = &config.validation.packages else { return Ok(None) };
    let catalog_settings = packages_settings(config, settings);
    let catalog = tokio::task::spawn_blocking(move || egisz_packages::Catalog::open(catalog_settings))
        .await
        .context("listing the rule packages")?
        .map_err(|e| anyhow::anyhow!("validation.packages_dir: {e}"))?;
    let status = catalog.status();
    tracing::info!(
        dir = %settings.dir.display(),
        kinds = %status.iter().map(|s| s.kind.to_string()).collect::<Vec<_>>().join(" "),
        "rule packages listed (each compiled at its kind's first document)"
    );
    Ok(Some(Arc::new(catalog)))
}

/// The catalog's settings from the configuration.
pub fn packages_settings(
    config: &Config,
    settings: &crate::validation::settings::PackagesConfig,
) -> egisz_packages::Settings {
    egisz_packages::Settings {
        dir: settings.dir.clone(),
        xsd_threads: config.api.intake_workers,
        limits: egisz_packages::PackageLimits::default(),
        compile: egisz_schematron::CompileLimits::default(),
        units: SCHEMATRON_UNITS,
        time: settings.schematron_time,
    }
}

/// The schematron's evaluation units per document: about 300 times what kind 119's rules
/// spend on a 30 KB document (about 70,000), so that only a hostile package or document
/// reaches it; with `validation.schematron_time_ms` it bounds a run's time and memory.
const SCHEMATRON_UNITS: u64 = 20_000_000;

/// Reads the packages' directory again every `every` until `stop`: new kinds are listed,
/// changed packages replace the old once they compile.
async fn rescan_packages(catalog: Arc<egisz_packages::Catalog>, every: Duration, stop: CancellationToken) {
    let mut tick = tokio::time::interval(every);
    tick.tick().await;
    loop {
        tokio::select! {
            _ = stop.cancelled() => return,
            _ = tick.tick() => {}
        }
        let scan = {
            let catalog = Arc::clone(&catalog);
            tokio::task::spawn_blocking(move || catalog.scan()).await
        };
        match scan {
            Ok(Ok(report)) => {
                for kind in &report.replaced {
                    tracing::info!(kind, "rule package replaced by the new files");
                }
                for (kind, why) in &report.refused {
                    tracing::warn!(kind, error = %why, "new rule package refused; the one in force stays");
                }
                for kind in &report.removed {
                    tracing::info!(kind, "rule package removed from the directory; no longer applied");
                }
            }
            Ok(Err(e)) => {
                tracing::warn!(error = %e, "the rule packages' directory could not be read; the packages in force stay")
            }
            Err(e) => tracing::warn!(error = %e, "reading the rule packages' directory failed"),
        }
    }
}

/// The CAs the sandbox REMD trusts: the sandbox's GOST test CA, and every accredited CA the
/// gateway's own verifier trusts (`trust_dir`, the ministry's list) — so that a MIS
/// developer who trusts their own test CA there registers documents signed under it end to
/// end.
fn sandbox_trusted_cas(config: &Config, gost: Option<&egisz_verifier::gost::GostVerifier>) -> Vec<Vec<u8>> {
    let mut cas = vec![egisz_sandbox::pki::sandbox_ca_der()];
    if let (Some(gost), crate::validation::settings::VerifierChoice::Gost(settings)) =
        (gost, &config.validation.verifier)
        && settings.trust != crate::validation::settings::GostTrust::SandboxCa
    {
        cas.extend(gost.trust_store().anchors().iter().map(egisz_gost::Certificate::der));
    }
    cas
}

/// The configured signature verifier, ready: for `gost`, the ministry's list fetched first
/// when no copy is kept yet, and the verifier's upkeep running until `shutdown`.
async fn start_verification(
    config: &Config,
    shutdown: &CancellationToken,
) -> anyhow::Result<(crate::validation::services::Verification, Option<Arc<egisz_verifier::gost::GostVerifier>>)> {
    let crate::validation::settings::VerifierChoice::Gost(settings) = &config.validation.verifier else {
        return verifier_for(&config.validation.verifier);
    };
    let list = match &settings.trust {
        crate::validation::settings::GostTrust::Accredited { list, .. } => list.as_ref(),
        crate::validation::settings::GostTrust::SandboxCa => None,
    };
    if let Some(list) = list
        && !list.file.exists()
    {
        first_list(list, settings.crl_proxy.as_ref()).await;
    }
    let (verification, gost) = verifier_for(&config.validation.verifier)?;
    if let Some(gost) = &gost {
        tracing::info!(trusted = gost.trusted(), "GOST signature verifier ready");
        let fetcher = list
            .map(|l| {
                egisz_verifier::gost::ListFetcher::new(l.url.clone(), l.file.clone(), settings.crl_proxy.as_ref())
                    .map(|f| (f, l.refresh))
            })
            .transpose()
            .map_err(|e| anyhow::anyhow!("validation.tsl_url: {e}"))?;
        tokio::spawn(gost_upkeep(Arc::clone(gost), settings.trust_refresh, fetcher, shutdown.clone()));
    }
    Ok((verification, gost))
}

/// The signature verifier `validation.verifier` names.
pub fn verification_for(
    choice: &crate::validation::settings::VerifierChoice,
) -> anyhow::Result<crate::validation::services::Verification> {
    verifier_for(choice).map(|(verification, _)| verification)
}

/// Where the accredited CAs are read from; `None` for the sandbox CA.
fn trust_source(trust: &crate::validation::settings::GostTrust) -> Option<egisz_verifier::gost::TrustSource> {
    match trust {
        crate::validation::settings::GostTrust::Accredited { dir, list } => Some(egisz_verifier::gost::TrustSource {
            dir: dir.clone(),
            list_file: list.as_ref().map(|l| l.file.clone()),
            fixed: Vec::new(),
        }),
        crate::validation::settings::GostTrust::SandboxCa => None,
    }
}

/// The GOST verifier of `settings`: the engine loaded, the trusted CAs read.
pub fn gost_verifier_for(
    settings: &crate::validation::settings::GostSettings,
) -> anyhow::Result<egisz_verifier::gost::GostVerifier> {
    use egisz_verifier::gost::{CrlSettings, GostVerifier, TrustSource};
    egisz_gost::Gost::load().map_err(|e| anyhow::anyhow!("validation.verifier = \"gost\": {e}"))?;
    // The sandbox CA's standing CRL is held locally: it publishes its list nowhere.
    let (source, local) = match trust_source(&settings.trust) {
        Some(source) => (source, Vec::new()),
        None => {
            (TrustSource::fixed(vec![egisz_sandbox::pki::sandbox_ca_der()]), vec![egisz_sandbox::pki::sandbox_crl()])
        }
    };
    let crl = CrlSettings {
        timeout: settings.crl_timeout,
        max_bytes: settings.crl_max_bytes,
        proxy: settings.crl_proxy.clone(),
        local,
        ..CrlSettings::default()
    };
    GostVerifier::new(source, settings.revocation, crl)
        .map_err(|e| anyhow::anyhow!("validation.verifier = \"gost\": {e}"))
}

/// The verifier, and the GOST verifier again when it is the one (its CRLs and trusted CAs
/// are kept fresh by [`gost_upkeep`]).
pub fn verifier_for(
    choice: &crate::validation::settings::VerifierChoice,
) -> anyhow::Result<(crate::validation::services::Verification, Option<Arc<egisz_verifier::gost::GostVerifier>>)> {
    use crate::validation::services::Verification;
    use crate::validation::settings::VerifierChoice;
    if let VerifierChoice::Gost(settings) = choice {
        let gost = Arc::new(gost_verifier_for(settings)?);
        return Ok((Verification::with(gost.clone()), Some(gost)));
    }
    let verification = match choice {
        VerifierChoice::Gost(_) => unreachable!("handled above"),
        VerifierChoice::None => Verification::none(),
        VerifierChoice::External { url, timeout } => Verification::with(Arc::new(
            egisz_verifier::HttpVerifier::new(url.clone(), *timeout).context("the signature verifier's HTTP client")?,
        )),
    };
    Ok((verification, None))
}

/// Reads the trusted CAs again on a blocking thread: the ministry's list is tens of
/// megabytes of XML and thousands of certificates.
async fn reload_off_the_runtime(gost: &Arc<egisz_verifier::gost::GostVerifier>) -> Result<usize, String> {
    let gost = Arc::clone(gost);
    tokio::task::spawn_blocking(move || gost.reload_trust())
        .await
        .unwrap_or_else(|_| Err("reading the trusted CAs was cut short".to_owned()))
}

/// The first copy of the ministry's list, fetched before the verifier reads its CAs (a
/// failure is logged; the CAs of `trust_dir` are in force meanwhile, and the upkeep tries
/// again).
async fn first_list(list: &crate::validation::settings::AccreditedList, proxy: Option<&url::Url>) {
    let fetcher = match egisz_verifier::gost::ListFetcher::new(list.url.clone(), list.file.clone(), proxy) {
        Ok(f) => f,
        Err(e) => return tracing::warn!(error = %e, "the list of accredited CAs: no HTTP client"),
    };
    match fetcher.fetch().await {
        Ok(n) => tracing::info!(certificates = n, "the list of accredited CAs fetched"),
        Err(e) => tracing::warn!(error = %e, "the list of accredited CAs not fetched; trust_dir's CAs in force"),
    }
}

/// Keeps the GOST verifier's CRLs fetched ahead of their `nextUpdate` (checked each
/// minute), its trusted CAs read again every `trust_refresh`, and the ministry's list
/// fetched every `list.refresh` (a failed fetch keeps the copy in force), until shutdown.
async fn gost_upkeep(
    gost: Arc<egisz_verifier::gost::GostVerifier>,
    trust_refresh: Duration,
    list: Option<(egisz_verifier::gost::ListFetcher, Duration)>,
    shutdown: tokio_util::sync::CancellationToken,
) {
    let mut crl_tick = tokio::time::interval(Duration::from_secs(60));
    let mut trust_tick = tokio::time::interval(trust_refresh);
    let mut list_tick = tokio::time::interval(list.as_ref().map_or(Duration::from_secs(86_400), |(_, every)| *every));
    crl_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    trust_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    list_tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    trust_tick.tick().await;
    list_tick.tick().await;
    loop {
        tokio::select! {
            () = shutdown.cancelled() => return,
            _ = list_tick.tick(), if list.is_some() => {
                let Some((fetcher, _)) = &list else { continue };
                match fetcher.fetch().await {
                    Ok(n) => match reload_off_the_runtime(&gost).await {
                        Ok(trusted) => tracing::info!(listed = n, trusted, "the list of accredited CAs fetched"),
                        Err(e) => tracing::warn!(error = %e, "the fetched list not put in force; the CAs in force are kept"),
                    },
                    Err(e) => tracing::warn!(error = %e, "the list of accredited CAs not fetched; the copy in force is kept"),
                }
            }
            _ = crl_tick.tick() => {
                let fetched = gost.refresh_crls().await;
                if fetched > 0 {
                    tracing::info!(fetched, "CRLs fetched ahead of their nextUpdate");
                }
            }
            _ = trust_tick.tick() => match reload_off_the_runtime(&gost).await {
                Ok(n) => tracing::debug!(trusted = n, "trusted CAs read again"),
                Err(e) => tracing::warn!(error = %e, "trusted CAs not read again; the ones in force are kept"),
            },
        }
    }
}

/// A certificate file's DER: the body of the first PEM block, or the bytes as they are.
pub fn pem_or_der(bytes: &[u8]) -> Vec<u8> {
    use base64::Engine;
    let Ok(text) = std::str::from_utf8(bytes) else { return bytes.to_vec() };
    let Some(start) = text.find("-----BEGIN") else { return bytes.to_vec() };
    let body: String =
        text[start..].lines().skip(1).take_while(|l| !l.starts_with("-----END")).collect::<Vec<_>>().concat();
    base64::engine::general_purpose::STANDARD.decode(body.trim()).unwrap_or_else(|_| bytes.to_vec())
}

/// The FRMO copy in force in the configured database, for a one-off command (`validate`):
/// `None` when there is none — or no database yet (an SQLite file that does not exist is not
/// created for this).
pub async fn frmo_for_command(config: &Config) -> anyhow::Result<Option<Arc<crate::nsi::frmo::FrmoIndex>>> {
    if let Some(path) = sqlite_file(&config.database.url)
        && !std::path::Path::new(path).exists()
    {
        return Ok(None);
    }
    let store = store::connect(&config.database).await.context("the database (the FRMO copy)")?;
    let frmo = crate::nsi::frmo::Frmo::new();
    frmo.load(&*store).await.context("reading the FRMO copy")?;
    Ok(frmo.current())
}

/// The configured FRMR for a one-off command (`validate --frmr`): the remote client, or in
/// sandbox mode an emulator of its own on free loopback ports (so that it does not clash
/// with a running gateway). Keep the returned sandbox alive while asking.
pub async fn frmr_for_command(config: &Config) -> anyhow::Result<(Arc<dyn FrmrRegistry>, Option<FrmrSandbox>)> {
    let sandbox = match config.frmr.mode {
        ServiceMode::Sandbox => Some(
            FrmrSandbox::start(FrmrSandboxConfig {
                listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
                control_listen: std::net::SocketAddr::from(([127, 0, 0, 1], 0)),
                roster: config.sandbox.frmr_roster.clone(),
                ..FrmrSandboxConfig::default()
            })
            .await
            .context("starting the sandbox FRMR")?,
        ),
        ServiceMode::Remote => None,
    };
    let frmr = frmr_client(config, sandbox.as_ref(), Arc::new(egisz_contract::NoopObserver))?;
    Ok((frmr, sandbox))
}

/// The NSI refresher `nsi.mode` names, with the emulator it talks to in sandbox mode
/// (seeded with the shipped complete dictionary copies, the document kinds and the sandbox's
/// FRMO register, `egisz_sandbox::Frmo::builtin`).
pub async fn nsi_for(
    config: &Config,
    store: &Arc<dyn Store>,
    live: &Arc<crate::mappings::LiveDictionaries>,
    mappings: &Mappings,
    frmo: &Arc<crate::nsi::frmo::Frmo>,
) -> anyhow::Result<(Option<Arc<crate::nsi::NsiService>>, Option<egisz_sandbox::NsiSandbox>)> {
    use crate::config::NsiMode;
    let (url, sandbox) = match &config.nsi.mode {
        NsiMode::Off => return Ok((None, None)),
        NsiMode::Remote(url) => (url.clone(), None),
        NsiMode::Sandbox => {
            let sandbox = egisz_sandbox::NsiSandbox::start(0).await.context("starting the sandbox NSI")?;
            for (oid, version, coverage, _) in mappings.dictionaries().summary() {
                if coverage == crate::mappings::Coverage::Complete
                    && let Some(copy) = mappings.dictionaries().get(&oid, &version)
                {
                    let mut rows: Vec<(String, String)> = copy.names.clone().into_iter().collect();
                    rows.sort();
                    sandbox.publish(&oid, &version, rows);
                }
            }
            let kinds = mappings.kinds().iter().map(|k| (k.kind.to_string(), k.name.clone())).collect();
            sandbox.publish("1.2.643.5.1.13.13.11.1520", "sandbox.1", kinds);
            sandbox.publish_frmo("sandbox.1", &egisz_sandbox::Frmo::builtin());
            let url = url::Url::parse(&sandbox.base_url()).context("sandbox NSI URL")?;
            tracing::info!(base_url = %url, "sandbox NSI started (emulator)");
            (url, Some(sandbox))
        }
    };
    let client = egisz_nsi::NsiClient::new(url, config.nsi.timeout).context("the NSI client")?;
    let service = crate::nsi::NsiService::new(
        client,
        Arc::clone(store),
        Arc::clone(live),
        mappings.dictionaries().clone(),
        Arc::clone(frmo),
    );
    Ok((Some(Arc::new(service)), sandbox))
}
