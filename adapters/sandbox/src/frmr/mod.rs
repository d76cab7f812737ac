//! The FRMR emulator: the `person/full` REST call of `shared/federal/FRMR.md` and the
//! token provider that issues its bearer tokens, each on its own loopback listener.
//!
//! - **Service listener** ([`FrmrSandbox::base_url`]): `GET /person/full?mo=…&mr=true&snils=…`
//!   with `Authorization: Bearer <token>`. Answers FRMR's success envelope
//!   `{"requestId", "content"}` with the person and all of their cards (whatever `mo`
//!   says), or FRMR's error envelope `{"timestamp", "code", "reasonPhrase", "message"}`
//!   for 400/401/404/405/429/500/503. Error messages never carry the SNILS. [`Faults`]
//!   apply here only.
//! - **Control listener** ([`FrmrSandbox::token_url`], [`FrmrSandbox::admin_url`]):
//!   `POST /token` (also `GET`) issues a token like the production token provider
//!   sidecar (`{"token", "expires_in", "token_type": "Bearer"}`); `/_admin/stats`,
//!   `/_admin/faults` (GET, PUT), `/_admin/revoke-tokens` and `/_admin/reset` (POST) let
//!   a test or an operator of the embedded default steer the emulator over HTTP, as the
//!   methods of [`FrmrSandbox`] do in process.
//!
//! A request to the service listener goes: count it (`person_calls`) → latency → fault
//! (`fail_next`, then `error_rate`) → token → parameters → lookup.

mod control;
mod faults;
mod roster;
mod service;

use std::collections::HashMap;
use std::io;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::Duration;

use axum::http::StatusCode;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio::time::Instant;

pub use faults::{FaultMode, Faults, FrmrStats};
pub use roster::{Roster, RosterError};

use crate::net::{Gate, Stalled, spawn_server};
use faults::Counters;

/// The bearer token the sandbox accepts by default without asking the token provider.
pub const DEFAULT_STATIC_TOKEN: &str = "sandbox-static-token";

/// How to start a [`FrmrSandbox`].
#[derive(Clone, Debug)]
pub struct FrmrSandboxConfig {
    /// Address of the FRMR service listener. Default `127.0.0.1:0` (a free port).
    pub listen: SocketAddr,
    /// Address of the control listener (token provider and `/_admin`). Default
    /// `127.0.0.1:0` (a free port).
    pub control_listen: SocketAddr,
    /// A roster file in FRMR wire form; `None` uses the built-in roster
    /// (`data/frmr-roster.json`, see [`Roster::builtin`]).
    pub roster: Option<PathBuf>,
    /// Bearer tokens accepted at any time, never expiring and never revoked. Default
    /// `["sandbox-static-token"]` ([`DEFAULT_STATIC_TOKEN`]).
    pub static_tokens: Vec<String>,
    /// Lifetime of the tokens the token provider issues. Default 300 s (as FRMR's
    /// five-minute JWT).
    pub token_ttl: Duration,
    /// Faults in force from the start. Default: none.
    pub faults: Faults,
}

impl Default for FrmrSandboxConfig {
    fn default() -> Self {
        let loopback = SocketAddr::from((Ipv4Addr::LOCALHOST, 0));
        Self {
            listen: loopback,
            control_listen: loopback,
            roster: None,
            static_tokens: vec![DEFAULT_STATIC_TOKEN.to_owned()],
            token_ttl: Duration::from_secs(300),
            faults: Faults::default(),
        }
    }
}

/// A running FRMR emulator: two HTTP servers on loopback and the handle that steers them.
///
/// Dropping it stops the servers too (in the background); [`FrmrSandbox::shutdown`]
/// stops them and waits until they have.
#[derive(Debug)]
pub struct FrmrSandbox {
    shared: Arc<Shared>,
    service_addr: SocketAddr,
    control_addr: SocketAddr,
    /// `true` (or dropped) stops both servers.
    shutdown: watch::Sender<bool>,
    servers: Vec<JoinHandle<()>>,
}

impl FrmrSandbox {
    /// Loads the roster, binds both listeners and starts serving. When this returns, both
    /// URLs accept connections.
    ///
    /// Fails when a listener cannot be bound or the roster file cannot be read or is
    /// malformed (`InvalidData`).
    pub async fn start(config: FrmrSandboxConfig) -> io::Result<Self> {
        let roster = match &config.roster {
            None => Roster::builtin(),
            Some(path) => Roster::from_json(&tokio::fs::read_to_string(path).await?)
                .map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))?,
        };
        let service_listener = TcpListener::bind(config.listen).await?;
        let control_listener = TcpListener::bind(config.control_listen).await?;
        let service_addr = reachable(service_listener.local_addr()?);
        let control_addr = reachable(control_listener.local_addr()?);

        let shared = Arc::new(Shared::new(roster, config.static_tokens, config.token_ttl, config.faults));
        let (shutdown, stop) = watch::channel(false);
        let gate = Gate {
            down: shared.down.subscribe(),
            on_drop: {
                let shared = shared.clone();
                Arc::new(move || Counters::bump(&shared.counters.dropped_connections))
            },
        };
        let servers = vec![
            spawn_server(
                "frmr",
                service_listener,
                service::router(shared.clone()),
                Some(gate),
                shared.stalled.clone(),
                stop.clone(),
            ),
            spawn_server(
                "frmr-control",
                control_listener,
                control::router(shared.clone()),
                None,
                Stalled::default(),
                stop,
            ),
        ];
        tracing::debug!(
            service = %service_addr,
            control = %control_addr,
            people = shared.roster.len(),
            "FRMR sandbox started"
        );
        Ok(Self { shared, service_addr, control_addr, shutdown, servers })
    }

    /// The FRMR base URL, with its trailing slash: `http://127.0.0.1:<port>/`.
    pub fn base_url(&self) -> String {
        format!("http://{}/", self.service_addr)
    }

    /// The token provider: `http://127.0.0.1:<control port>/token`.
    pub fn token_url(&self) -> String {
        format!("http://{}/token", self.control_addr)
    }

    /// The admin root: `http://127.0.0.1:<control port>/_admin` (add `/stats`,
    /// `/faults`, `/revoke-tokens`, `/reset`).
    pub fn admin_url(&self) -> String {
        format!("http://{}/_admin", self.control_addr)
    }

    /// Replaces the faults in force (`error_rate` is clamped into `0.0..=1.0`). Setting
    /// [`FaultMode::Down`] also drops the connections already open.
    pub fn set_faults(&self, faults: Faults) {
        self.shared.set_faults(faults);
    }

    /// The faults in force (with `fail_next` as far as it has counted down).
    pub fn faults(&self) -> Faults {
        self.shared.faults()
    }

    /// The counters since start or the last reset.
    pub fn stats(&self) -> FrmrStats {
        self.shared.counters.snapshot()
    }

    /// Sets every counter to zero.
    pub fn reset_stats(&self) {
        self.shared.counters.reset();
    }

    /// Makes every token the token provider has issued so far invalid. Static tokens stay
    /// valid; tokens issued later are valid.
    pub fn revoke_tokens(&self) {
        self.shared.revoke_tokens();
    }

    /// The people this emulator serves.
    pub fn roster(&self) -> &Roster {
        &self.shared.roster
    }

    /// Stops both servers and waits until they have stopped. Requests doing real work
    /// may finish (for up to 5 s); requests stalled by a fault (`Hang`, latency) are
    /// aborted at once.
    pub async fn shutdown(mut self) {
        self.shutdown.send_replace(true);
        for server in std::mem::take(&mut self.servers) {
            if let Err(error) = server.await {
                tracing::warn!(%error, "FRMR sandbox: a server task failed");
            }
        }
    }
}

/// A listener bound to the unspecified address (`0.0.0.0`, `::`) is reached through
/// loopback.
pub(crate) fn reachable(mut addr: SocketAddr) -> SocketAddr {
    if addr.ip().is_unspecified() {
        addr.set_ip(match addr {
            SocketAddr::V4(_) => Ipv4Addr::LOCALHOST.into(),
            SocketAddr::V6(_) => std::net::Ipv6Addr::LOCALHOST.into(),
        });
    }
    addr
}

/// What a request gets when a fault fires.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Injected {
    /// An error envelope with this status, and `Retry-After` seconds when set.
    Status(StatusCode, Option<u64>),
    /// No answer, ever.
    Hang,
    /// The listener is down: the connection is being dropped; no answer.
    Down,
}

/// State shared by the handle and both servers.
struct Shared {
    roster: Roster,
    static_tokens: Vec<String>,
    token_ttl: Duration,
    faults: Mutex<Faults>,
    /// Mirrors `faults.mode == Down` for the listener's gate; written under the `faults`
    /// lock.
    down: watch::Sender<bool>,
    counters: Counters,
    /// Issued, unrevoked tokens and when each expires.
    tokens: Mutex<HashMap<String, Instant>>,
    /// Sequence number in issued tokens.
    token_seq: AtomicU64,
    /// Service requests stalled on purpose (hang, latency): shutdown does not wait for
    /// them.
    stalled: Stalled,
}

impl std::fmt::Debug for Shared {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Shared")
            .field("roster", &self.roster)
            .field("static_tokens", &self.static_tokens.len())
            .field("token_ttl", &self.token_ttl)
            .field("faults", &self.faults())
            .field("counters", &self.counters)
            .finish_non_exhaustive()
    }
}

fn lock<T>(mutex: &Mutex<T>) -> MutexGuard<'_, T> {
    mutex.lock().unwrap_or_else(PoisonError::into_inner)
}

impl Shared {
    fn new(roster: Roster, static_tokens: Vec<String>, token_ttl: Duration, faults: Faults) -> Self {
        let faults = faults.normalized();
        let (down, _) = watch::channel(faults.mode == FaultMode::Down);
        Self {
            roster,
            static_tokens,
            token_ttl,
            faults: Mutex::new(faults),
            down,
            counters: Counters::default(),
            tokens: Mutex::new(HashMap::new()),
            token_seq: AtomicU64::new(0),
            stalled: Stalled::default(),
        }
    }

    fn faults(&self) -> Faults {
        lock(&self.faults).clone()
    }

    fn set_faults(&self, faults: Faults) {
        let faults = faults.normalized();
        let mut current = lock(&self.faults);
        let down = faults.mode == FaultMode::Down;
        *current = faults;
        self.down.send_if_modified(|was| {
            let changed = *was != down;
            *was = down;
            changed
        });
    }

    /// Decides whether this `person/full` request is faulted, counting `fail_next` down.
    fn take_fault(&self) -> Option<Injected> {
        let mut faults = lock(&self.faults);
        let injected = match faults.mode {
            FaultMode::None => return None,
            FaultMode::Down => return Some(Injected::Down),
            FaultMode::TooManyRequests => Injected::Status(StatusCode::TOO_MANY_REQUESTS, faults.retry_after_secs),
            FaultMode::ServerError => Injected::Status(StatusCode::SERVICE_UNAVAILABLE, faults.retry_after_secs),
            FaultMode::InternalError => Injected::Status(StatusCode::INTERNAL_SERVER_ERROR, None),
            FaultMode::Hang => Injected::Hang,
        };
        if faults.fail_next > 0 {
            faults.fail_next -= 1;
            return Some(injected);
        }
        (faults.error_rate > 0.0 && rand::random::<f64>() < faults.error_rate).then_some(injected)
    }

    /// Issues a token valid for `token_ttl`.
    fn issue_token(&self) -> String {
        let n = self.token_seq.fetch_add(1, Ordering::Relaxed) + 1;
        let token = format!("sandbox-{n}-{:016x}", rand::random::<u64>());
        let now = Instant::now();
        let mut tokens = lock(&self.tokens);
        tokens.retain(|_, expires| *expires > now);
        tokens.insert(token.clone(), now + self.token_ttl);
        Counters::bump(&self.counters.tokens_issued);
        token
    }

    /// A static token, or an issued one that is neither revoked nor expired.
    fn token_is_valid(&self, token: &str) -> bool {
        self.static_tokens.iter().any(|t| t == token)
            || lock(&self.tokens).get(token).is_some_and(|expires| *expires > Instant::now())
    }

    fn revoke_tokens(&self) {
        lock(&self.tokens).clear();
    }

    /// Clears counters and faults (the admin `reset`).
    fn reset(&self) {
        self.counters.reset();
        self.set_faults(Faults::default());
    }
}
