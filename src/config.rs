//! Configuration: three layers merged key by key, then read field by field so that every
//! problem is reported at once.
//!
//! 1. `config/default.toml`, compiled into the binary — the embedded default, and the one
//!    place where defaults and their documentation live;
//! 2. the file given with `--config FILE`;
//! 3. environment variables `EGISZ__<SECTION>__<KEY>` (values are read as TOML literals
//!    when they parse as one — `5000`, `true`, `2.5` — and as strings otherwise).
//!
//! An unknown section or key in any layer is an error: a typo must not silently leave a
//! default in force.

use std::collections::{BTreeMap, HashSet};
use std::fmt;
use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use chrono::FixedOffset;
use serde::de::DeserializeOwned;
use url::Url;

/// Whether a federal service is the in-process emulator or a real remote one.
pub use egisz_contract::ServiceMode;

use crate::api::settings::{ApiConfig, DocumentsConfig, RegionConfig};
use crate::lifecycle::Timing;
use crate::lifecycle::schedule::RetryPolicy;
use crate::ops::OpsConfig;
use crate::quota::Rate;
use crate::relay::RelayConfig;
use crate::staff::FrmrConfig;
use crate::telemetry::{LogConfig, LogFormat};
use crate::validation::settings::{
    AccreditedList, GostSettings, GostTrust, PackagesConfig, RevocationPolicy, ValidationConfig, VerifierChoice,
};

pub use crate::serve::ListenerLimits;
pub use crate::store::DatabaseConfig;

/// The embedded default configuration (also the documentation of every key).
pub const DEFAULT_TOML: &str = include_str!("../config/default.toml");

const ENV_PREFIX: &str = "EGISZ__";

/// The longest duration any setting accepts (a year): longer ones are typos, and would
/// overflow clock arithmetic.
const MAX_DURATION: Duration = Duration::from_secs(366 * 24 * 3600);

/// The most submissions one bulk re-run may put back (`ops.bulk_retry_max`): the console's
/// progress form carries their ids (39 bytes each, form-encoded) within its 64 KiB.
pub const MAX_BULK_RETRY: u32 = 1500;

/// The whole configuration of one gateway process.
#[derive(Debug, Clone)]
pub struct Config {
    /// `[database]`: where durable state lives (SQLite or PostgreSQL) and its connection pool.
    pub database: DatabaseConfig,
    /// `[api]`: the internal API for regional systems: its listener, limits and batches.
    pub api: ApiConfig,
    /// `[remd_listener]`: the listener REMD calls back, and who may call it.
    pub remd_listener: RemdListenerConfig,
    /// `[frmr]`: the federal register of medical workers: where it is, its pace, the cache.
    pub frmr: FrmrConfig,
    /// `[remd]`: the federal register of electronic medical documents: where it is, its pace.
    pub remd: RemdConfig,
    /// `[relay]`: the workers that send submissions to REMD, and when they try again.
    pub relay: RelayConfig,
    /// `[documents]`: the limits of the documents accepted.
    pub documents: DocumentsConfig,
    /// `[ops]`: the operations staff's API and console.
    pub ops: OpsConfig,
    /// `[validation]`: what intake checks beyond the document itself.
    pub validation: ValidationConfig,
    /// `[nsi]`: where the NSI dictionaries are refreshed from, and how often.
    pub nsi: NsiConfig,
    /// `[mappings]`: newer copies of the code tables than those built into the binary.
    pub mappings: MappingsConfig,
    /// `[sandbox]`: the in-process emulators, used when a federal service runs in sandbox mode.
    pub sandbox: SandboxConfig,
    /// `[log]`: how log lines are written, and which.
    pub log: LogConfig,
    /// `[region]`: the region's offset from UTC.
    pub region: RegionConfig,
}

#[derive(Debug, Clone)]
pub struct RemdListenerConfig {
    /// The address the listener REMD calls back binds (`remd_listener.listen`); must differ
    /// from `api.listen`. Default: `127.0.0.1:8091`.
    pub listen: SocketAddr,
    /// Networks REMD's calls may come from (`remd_listener.allow_from`); others get 403.
    /// Default: loopback only (`127.0.0.1/8`, `::1/128`), where the GOST TLS sidecar forwards.
    pub allow_from: Vec<ipnet::IpNet>,
    /// How the listener bounds its callers (`remd_listener.max_connections`,
    /// `header_read_timeout_ms`, `idle_timeout`, `body_read_timeout_ms`, `request_timeout_ms`,
    /// `body_limit_bytes`). Defaults: 256 connections, 10 s, 60 s, 10 s, 30 s, 1 MiB.
    pub limits: ListenerLimits,
    /// Ask REMD (`getRegistryItem`) before a success result registers a submission
    /// (`remd_listener.confirm_success`). Default: false: REMD's signed call is trusted.
    pub confirm_success: bool,
    /// Mutual TLS on the listener, when set (`remd_listener.tls_cert`, `tls_key`,
    /// `tls_client_ca`: all three or none). Default: none: plain HTTP behind the sidecar.
    pub tls: Option<ListenerTls>,
}

/// The files and subjects of the REMD listener's mutual TLS.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ListenerTls {
    /// The listener's certificate chain, PEM (`remd_listener.tls_cert`). Default: empty: no TLS.
    pub cert: PathBuf,
    /// The listener's private key, PEM (`remd_listener.tls_key`). Default: empty: no TLS.
    pub key: PathBuf,
    /// The CA bundle (PEM) REMD's client certificates must chain to; a caller without one is
    /// refused at the handshake (`remd_listener.tls_client_ca`). Default: empty: no TLS.
    pub client_ca: PathBuf,
    /// Client certificate subjects admitted, RFC 4514 (`remd_listener.tls_allowed_subjects`);
    /// others get 403. Default: empty: any certificate of `client_ca`.
    pub allowed_subjects: Vec<String>,
}

#[derive(Debug, Clone)]
pub struct RemdConfig {
    /// The REMD emulator or the real REMD (`remd.mode`). Default: sandbox.
    pub mode: ServiceMode,
    /// The REMD service URL (`remd.endpoint`). Required in remote mode; in sandbox mode the
    /// emulator's is used when empty. Default: empty.
    pub endpoint: Option<Url>,
    /// The GUID REMD issued to this information system (`remd.client_entity_id`). Required in
    /// remote mode; in sandbox mode a fixed id when empty. Default: empty.
    pub client_entity_id: Option<String>,
    /// PEM file of extra root certificates for REMD (`remd.extra_ca_bundle`).
    /// Default: none: the built-in roots only.
    pub extra_ca_bundle: Option<PathBuf>,
    /// Time limit of one SOAP call to REMD (`remd.timeout_ms`). Default: 30 s.
    pub timeout: Duration,
    /// REMD's quota (`remd.rate_per_second`, `remd.burst`): calls per second, for the cluster
    /// on PostgreSQL, and the burst above it. Default: 5 calls per second, burst 5 calls.
    pub quota: Rate,
}

/// Where the dictionaries are refreshed from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NsiMode {
    /// `"off"`: the dictionaries are not refreshed; the shipped copies stay in force.
    Off,
    /// `"sandbox"`: the in-process NSI emulator, seeded with the shipped complete copies (the
    /// default).
    Sandbox,
    /// `"remote"`: the federal NSI service's public REST API at `nsi.base_url` (required).
    Remote(Url),
}

#[derive(Debug, Clone)]
pub struct NsiConfig {
    /// Where the dictionaries are refreshed from (`nsi.mode`, `nsi.base_url`).
    /// Default: sandbox.
    pub mode: NsiMode,
    /// How often the dictionaries are refreshed; the first refresh runs at start
    /// (`nsi.refresh_every`). Default: 24 h.
    pub refresh_every: Duration,
    /// Time limit of one NSI request (`nsi.timeout_ms`). Default: 10 s.
    pub timeout: Duration,
}

#[derive(Debug, Clone)]
pub struct MappingsConfig {
    /// Directory with newer copies of the mapping tables (`mappings.dir`).
    /// Default: none: the copies built into the binary.
    pub dir: Option<PathBuf>,
}

#[derive(Debug, Clone)]
pub struct SandboxConfig {
    /// Listener of the FRMR emulator (`sandbox.frmr_listen`); port 0: any free port, logged.
    /// Default: `127.0.0.1:0`.
    pub frmr_listen: SocketAddr,
    /// Listener of the emulator's token provider and its admin endpoints
    /// (`sandbox.frmr_control_listen`). Default: `127.0.0.1:0`.
    pub frmr_control_listen: SocketAddr,
    /// JSON roster of FRMR people to serve (`sandbox.frmr_roster`).
    /// Default: none: the built-in roster.
    pub frmr_roster: Option<PathBuf>,
    /// Faults the FRMR emulator starts with (`sandbox.frmr_fault_mode`, `frmr_error_rate`,
    /// `frmr_latency_ms` in ms); changed at run time through `PUT <admin>/faults`.
    /// Default: none: no faults, no added latency.
    pub frmr_faults: egisz_sandbox::Faults,
    /// Listener of the REMD emulator (`sandbox.remd_listen`); port 0: any free port, logged.
    /// Default: `127.0.0.1:0`.
    pub remd_listen: SocketAddr,
    /// Where the demo API key is written on first start, mode 0600 (`sandbox.api_key_file`).
    /// Default: `data/sandbox-api-key`.
    pub api_key_file: PathBuf,
}

/// One thing wrong with the configuration, with where the value came from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigProblem {
    /// `section.key`, or `section` for a whole section.
    pub key: String,
    pub message: String,
    /// "built-in default", "file …", "environment EGISZ__…".
    pub origin: Option<String>,
}

impl fmt::Display for ConfigProblem {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.key, self.message)?;
        if let Some(origin) = &self.origin {
            write!(f, " (from {origin})")?;
        }
        Ok(())
    }
}

/// Every problem found, in a stable order.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConfigErrors(pub Vec<ConfigProblem>);

impl fmt::Display for ConfigErrors {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        writeln!(f, "{} configuration problem(s):", self.0.len())?;
        for p in &self.0 {
            writeln!(f, "  - {p}")?;
        }
        Ok(())
    }
}

impl std::error::Error for ConfigErrors {}

impl Config {
    /// The embedded default with environment overrides from the process environment.
    pub fn from_env_and_file(file: Option<&Path>) -> Result<Config, ConfigErrors> {
        let file_layer = match file {
            None => None,
            Some(path) => match std::fs::read_to_string(path) {
                Ok(text) => Some((format!("file {}", path.display()), text)),
                Err(e) => {
                    return Err(ConfigErrors(vec![ConfigProblem {
                        key: "--config".into(),
                        message: format!("cannot read {}: {e}", path.display()),
                        origin: None,
                    }]));
                }
            },
        };
        let env: Vec<(String, String)> = std::env::vars().collect();
        Self::load(file_layer.as_ref().map(|(o, t)| (o.as_str(), t.as_str())), &env)
    }

    /// Merge the layers and read them. `file` is `(origin description, TOML text)`.
    pub fn load(file: Option<(&str, &str)>, env: &[(String, String)]) -> Result<Config, ConfigErrors> {
        let mut merged = Layers::new();
        let mut problems = Vec::new();
        let default: toml::Table =
            DEFAULT_TOML.parse().expect("the embedded config/default.toml is valid TOML (checked by a unit test)");
        merged.apply(&default, "built-in default", None, &mut problems);
        if let Some((origin, text)) = file {
            match text.parse::<toml::Table>() {
                Ok(table) => merged.apply(&table, origin, Some(&default), &mut problems),
                Err(e) => problems.push(ConfigProblem {
                    key: "--config".into(),
                    message: format!("not valid TOML: {}", e.message()),
                    origin: Some(origin.to_owned()),
                }),
            }
        }
        for (name, value) in env {
            let Some(rest) = name.strip_prefix(ENV_PREFIX) else { continue };
            let origin = format!("environment {name}");
            let Some((section, key)) = rest.split_once("__") else {
                problems.push(ConfigProblem {
                    key: rest.to_lowercase(),
                    message: "expected EGISZ__<SECTION>__<KEY>".into(),
                    origin: Some(origin),
                });
                continue;
            };
            let (section, key) = (section.to_lowercase(), key.to_lowercase());
            let mut table = toml::Table::new();
            let mut inner = toml::Table::new();
            inner.insert(key, env_value(value));
            table.insert(section, toml::Value::Table(inner));
            merged.apply(&table, &origin, Some(&default), &mut problems);
        }
        let mut r = Reader { layers: &merged, default: &default, problems };
        let config = r.read();
        let mut problems = r.problems;
        config.cross_check(&mut problems, &merged);
        if problems.is_empty() { Ok(config) } else { Err(ConfigErrors(problems)) }
    }

    fn cross_check(&self, problems: &mut Vec<ConfigProblem>, layers: &Layers) {
        let mut problem = |key: &str, message: String| {
            problems.push(ConfigProblem { key: key.into(), message, origin: layers.origin_of(key) })
        };
        if self.frmr.mode == ServiceMode::Remote {
            if self.frmr.base_url.is_none() {
                problem("frmr.base_url", "required when frmr.mode = \"remote\"".into());
            }
            if self.frmr.token.is_none() {
                problem(
                    "frmr.token",
                    "required when frmr.mode = \"remote\": \"static:<token>\" or the URL of a token provider".into(),
                );
            }
        }
        if self.remd.mode == ServiceMode::Remote {
            if self.remd.endpoint.is_none() {
                problem("remd.endpoint", "required when remd.mode = \"remote\"".into());
            }
            if self.remd.client_entity_id.is_none() {
                problem("remd.client_entity_id", "required when remd.mode = \"remote\"".into());
            }
        }
        if self.relay.lease_for < Duration::from_secs(3) {
            problem("relay.lease_for", "must be at least 3s (it is renewed every third of it)".into());
        }
        if self.relay.timing.result_check_after >= self.relay.timing.result_deadline {
            problem("relay.result_check_after", "must be shorter than relay.result_deadline".into());
        }
        if self.database.acquire_timeout >= self.api.limits.request_timeout {
            problem(
                "database.acquire_timeout_ms",
                format!(
                    "must be shorter than api.request_timeout_ms ({} ms): a request waiting for the database would \
                     end in 504 instead of a clear 503",
                    self.api.limits.request_timeout.as_millis()
                ),
            );
        }
        if self.relay.lease_for <= self.remd.timeout / 3 {
            problem(
                "relay.lease_for",
                format!(
                    "must be longer than a third of remd.timeout_ms ({} ms): the lease is renewed every third of it \
                     while a call is in flight",
                    self.remd.timeout.as_millis()
                ),
            );
        }
        // The stop: the grace, then the time the calls cut short have to record their end,
        // all within what shutdown waits for the relay (api.request_timeout_ms + 1 s).
        if self.relay.stop_grace + crate::relay::CUT_CALLS_END_WITHIN >= self.api.limits.request_timeout {
            problem(
                "relay.stop_grace",
                format!(
                    "must be more than 5 s shorter than api.request_timeout_ms ({} ms), which bounds the whole stop",
                    self.api.limits.request_timeout.as_millis()
                ),
            );
        }
        // The console's progress page of a bulk re-run posts the ids it re-queued: they must
        // fit its 64 KiB form.
        if self.ops.bulk_retry_max > MAX_BULK_RETRY {
            problem("ops.bulk_retry_max", format!("at most {MAX_BULK_RETRY} (the console's forms are at most 64 KiB)"));
        }
        if self.relay.timing.retry.cap < self.relay.timing.retry.base {
            problem("relay.retry_cap", "must not be shorter than relay.retry_base".into());
        }
        if self.documents.max_bytes.saturating_mul(4) / 3 > self.api.limits.body_limit_bytes {
            problem(
                "documents.max_bytes",
                format!("in base64 it would exceed api.body_limit_bytes ({})", self.api.limits.body_limit_bytes),
            );
        }
        if let Some(dir) = &self.mappings.dir
            && !dir.is_dir()
        {
            problem("mappings.dir", format!("no such directory: {}", dir.display()));
        }
        if self.frmr.intake_reserve >= self.frmr.max_pending_lookups {
            problem(
                "frmr.intake_reserve",
                format!("must be smaller than frmr.max_pending_lookups ({})", self.frmr.max_pending_lookups),
            );
        } else if self.frmr.client_share > self.frmr.max_pending_lookups - self.frmr.intake_reserve {
            problem(
                "frmr.client_share",
                format!(
                    "must not exceed frmr.max_pending_lookups − frmr.intake_reserve ({})",
                    self.frmr.max_pending_lookups - self.frmr.intake_reserve
                ),
            );
        }
        if self.frmr.cache_stale_limit < self.frmr.cache_fresh_for {
            problem(
                "frmr.cache_stale_limit",
                format!(
                    "must not be shorter than frmr.cache_fresh_for ({})",
                    humantime::format_duration(self.frmr.cache_fresh_for)
                ),
            );
        }
        for (key, value) in
            [("frmr.answer_within_ms", self.frmr.answer_within), ("api.batch_deadline_ms", self.api.batch_deadline)]
        {
            if value >= self.api.limits.request_timeout {
                problem(
                    key,
                    format!(
                        "must be shorter than api.request_timeout_ms ({} ms)",
                        self.api.limits.request_timeout.as_millis()
                    ),
                );
            }
        }
        for (key, path) in
            [("frmr.extra_ca_bundle", &self.frmr.extra_ca_bundle), ("sandbox.frmr_roster", &self.sandbox.frmr_roster)]
        {
            if let Some(p) = path
                && !p.is_file()
            {
                problem(key, format!("no such file: {}", p.display()));
            }
        }
        for (section, limits) in [("api", &self.api.limits), ("remd_listener", &self.remd_listener.limits)] {
            // A connection idle for less than a request may take would be closed under a
            // request still being handled, which then gets no answer at all.
            if limits.idle_timeout < limits.request_timeout {
                problem(
                    &format!("{section}.idle_timeout"),
                    format!(
                        "must not be shorter than {section}.request_timeout_ms ({} ms): a request in progress would be \
                         dropped without an answer",
                        limits.request_timeout.as_millis()
                    ),
                );
            }
            if limits.header_read_timeout > limits.request_timeout {
                problem(
                    &format!("{section}.header_read_timeout_ms"),
                    format!(
                        "must not be longer than {section}.request_timeout_ms ({} ms)",
                        limits.request_timeout.as_millis()
                    ),
                );
            }
            if limits.body_read_timeout >= limits.request_timeout {
                problem(
                    &format!("{section}.body_read_timeout_ms"),
                    format!(
                        "must be shorter than {section}.request_timeout_ms ({} ms)",
                        limits.request_timeout.as_millis()
                    ),
                );
            }
        }
        if let Some(tls) = &self.remd_listener.tls
            && let Err(e) =
                crate::serve::TlsGate::from_files(&tls.cert, &tls.key, &tls.client_ca, &tls.allowed_subjects)
        {
            problem("remd_listener.tls_cert", e);
        }
        // The list says whom to trust and is not signed in a way the gateway checks: only
        // over TLS (loopback aside, for tests and a local mirror).
        if let VerifierChoice::Gost(GostSettings { trust: GostTrust::Accredited { list: Some(list), .. }, .. }) =
            &self.validation.verifier
            && list.url.scheme() != "https"
            && !matches!(list.url.host_str(), Some("127.0.0.1" | "localhost" | "[::1]"))
        {
            problem(
                "validation.tsl_url",
                "must be https:// (the list decides which CAs are trusted; plain HTTP lets anyone on the path add one)"
                    .into(),
            );
        }
        if let VerifierChoice::Gost(GostSettings { trust: GostTrust::Accredited { dir: Some(dir), .. }, .. }) =
            &self.validation.verifier
            && !dir.is_dir()
        {
            problem("validation.trust_dir", format!("no such directory: {}", dir.display()));
        }
        for (key, message) in self.sandbox_beside_remote() {
            problem(key, message);
        }
        if self.api.listen == self.remd_listener.listen && self.api.listen.port() != 0 {
            problem("remd_listener.listen", "must differ from api.listen".into());
        }
    }
}

impl Config {
    /// The federal services configured as real (remote) ones, as `setting = value`.
    pub fn remote_services(&self) -> Vec<&'static str> {
        let mut remote = Vec::new();
        if self.frmr.mode == ServiceMode::Remote {
            remote.push("frmr.mode = \"remote\"");
        }
        if self.remd.mode == ServiceMode::Remote {
            remote.push("remd.mode = \"remote\"");
        }
        if matches!(self.nsi.mode, NsiMode::Remote(_)) {
            remote.push("nsi.mode = \"remote\"");
        }
        remote
    }

    /// Every piece of the sandbox in force: the emulators the process would start and the
    /// test PKI, as `(setting, what it is, what to set instead)`.
    pub fn sandbox_pieces(&self) -> Vec<(&'static str, &'static str, &'static str)> {
        [
            (
                self.frmr.mode == ServiceMode::Sandbox,
                "frmr.mode",
                "the FRMR emulator, its unauthenticated /_admin endpoints and the demo API client",
                "set frmr.mode = \"remote\" with frmr.base_url and frmr.token",
            ),
            (
                self.remd.mode == ServiceMode::Sandbox,
                "remd.mode",
                "the REMD emulator, whose registrations are not REMD's",
                "set remd.mode = \"remote\" with remd.endpoint and remd.client_entity_id",
            ),
            (
                self.nsi.mode == NsiMode::Sandbox,
                "nsi.mode",
                "the NSI emulator, whose dictionaries would be stored as NSI's",
                "set nsi.mode = \"remote\" (the NSI service) or \"off\"",
            ),
            (
                matches!(&self.validation.verifier, VerifierChoice::Gost(g) if g.trust == GostTrust::SandboxCa),
                "validation.verifier",
                "\"gost\" without validation.trust_dir, which trusts only the sandbox's GOST test CA",
                "set validation.trust_dir to a directory of the accredited CAs' certificates",
            ),
        ]
        .into_iter()
        .filter(|(in_force, ..)| *in_force)
        .map(|(_, key, what, fix)| (key, what, fix))
        .collect()
    }

    /// The rule that keeps a sandbox out of a gateway that talks to a real service: with any
    /// service remote, each sandbox piece is a problem naming its setting and the remote
    /// services. `check-config` and `serve` refuse them; [`crate::app::start`] checks again.
    pub fn sandbox_beside_remote(&self) -> Vec<(&'static str, String)> {
        let remote = self.remote_services();
        if remote.is_empty() {
            return Vec::new();
        }
        let remote = remote.join(", ");
        self.sandbox_pieces()
            .into_iter()
            .map(|(key, what, fix)| {
                (
                    key,
                    format!(
                        "a sandbox piece beside a real service ({remote}): {what}; no sandbox runs beside a real \
                         service — {fix}"
                    ),
                )
            })
            .collect()
    }

    /// No service is remote: the embedded default, where the demo client may exist.
    pub fn all_sandbox(&self) -> bool {
        self.remote_services().is_empty()
    }
}

/// This machine's name as an instance id: the kernel's host name, kept to the characters an
/// instance id may have ("gateway" when there is none).
fn host_name() -> String {
    let raw = std::fs::read_to_string("/proc/sys/kernel/hostname")
        .ok()
        .or_else(|| std::env::var("HOSTNAME").ok())
        .unwrap_or_default();
    let name: String =
        raw.trim().chars().filter(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | '_')).take(64).collect();
    if name.is_empty() { "gateway".to_owned() } else { name }
}

/// Parses an environment value as a TOML literal when it is one, else as a string.
fn env_value(raw: &str) -> toml::Value {
    let doc = format!("v = {raw}");
    match doc.parse::<toml::Table>() {
        Ok(mut t) => t.remove("v").unwrap_or_else(|| toml::Value::String(raw.to_owned())),
        Err(_) => toml::Value::String(raw.to_owned()),
    }
}

/// The merged values with the origin of each.
struct Layers {
    values: BTreeMap<(String, String), (toml::Value, String)>,
}

impl Layers {
    fn new() -> Self {
        Self { values: BTreeMap::new() }
    }

    /// Applies one layer. With `known` given, sections and keys absent from it are errors.
    fn apply(
        &mut self,
        table: &toml::Table,
        origin: &str,
        known: Option<&toml::Table>,
        problems: &mut Vec<ConfigProblem>,
    ) {
        for (section, value) in table {
            let Some(section_table) = value.as_table() else {
                problems.push(ConfigProblem {
                    key: section.clone(),
                    message: "expected a [section] table".into(),
                    origin: Some(origin.to_owned()),
                });
                continue;
            };
            let known_section = known.map(|k| k.get(section).and_then(toml::Value::as_table));
            if let Some(None) = known_section {
                problems.push(ConfigProblem {
                    key: section.clone(),
                    message: format!(
                        "unknown section; known sections: {}",
                        known_list(known.into_iter().flat_map(|k| k.keys()))
                    ),
                    origin: Some(origin.to_owned()),
                });
                continue;
            }
            for (key, v) in section_table {
                if let Some(Some(ks)) = known_section
                    && !ks.contains_key(key)
                {
                    problems.push(ConfigProblem {
                        key: format!("{section}.{key}"),
                        message: format!("unknown key; keys of [{section}]: {}", known_list(ks.keys())),
                        origin: Some(origin.to_owned()),
                    });
                    continue;
                }
                self.values.insert((section.clone(), key.clone()), (v.clone(), origin.to_owned()));
            }
        }
    }

    fn origin_of(&self, dotted: &str) -> Option<String> {
        let (s, k) = dotted.split_once('.')?;
        self.values.get(&(s.to_owned(), k.to_owned())).map(|(_, o)| o.clone())
    }
}

fn known_list<'a>(keys: impl Iterator<Item = &'a String>) -> String {
    keys.map(String::as_str).collect::<Vec<_>>().join(", ")
}

struct Reader<'a> {
    layers: &'a Layers,
    default: &'a toml::Table,
    problems: Vec<ConfigProblem>,
}

impl Reader<'_> {
    /// Reads `section.key` as `T`, then converts it with `conv`. On any error the problem is
    /// recorded and the built-in default is used so that reading can go on and find more.
    fn get<T, U>(&mut self, section: &str, key: &str, expected: &str, conv: impl Fn(T) -> Result<U, String>) -> U
    where
        T: DeserializeOwned,
    {
        let (value, origin) = self
            .layers
            .values
            .get(&(section.to_owned(), key.to_owned()))
            .cloned()
            .expect("every key has a built-in default");
        let result = value
            .clone()
            .try_into::<T>()
            .map_err(|_| format!("expected {expected}, got {}", describe(&value)))
            .and_then(&conv);
        match result {
            Ok(v) => v,
            Err(message) => {
                self.problems.push(ConfigProblem { key: format!("{section}.{key}"), message, origin: Some(origin) });
                let default = self.default[section][key].clone();
                default
                    .try_into::<T>()
                    .map_err(|e| e.to_string())
                    .and_then(conv)
                    .expect("the built-in default of every key is valid (checked by a unit test)")
            }
        }
    }

    fn duration(&mut self, section: &str, key: &str) -> Duration {
        self.get(section, key, "a duration like \"30s\", \"15m\", \"24h\"", |s: String| {
            let d = humantime::parse_duration(&s).map_err(|e| format!("not a duration ({e}): {s:?}"))?;
            if d.is_zero() {
                Err("must be greater than zero".into())
            } else if d > MAX_DURATION {
                Err(format!("must not exceed {}", humantime::format_duration(MAX_DURATION)))
            } else {
                Ok(d)
            }
        })
    }

    fn duration_or_zero(&mut self, section: &str, key: &str) -> Duration {
        self.get(section, key, "a duration like \"10s\" (\"0s\" turns it off)", |s: String| {
            let d = humantime::parse_duration(&s).map_err(|e| format!("not a duration ({e}): {s:?}"))?;
            if d > MAX_DURATION {
                Err(format!("must not exceed {}", humantime::format_duration(MAX_DURATION)))
            } else {
                Ok(d)
            }
        })
    }

    /// A policy (`block`, `warn` or `off`) at `key`, with exceptions by kind at `by_kind`.
    fn kind_policies(&mut self, section: &str, key: &str, by_kind: &str) -> crate::validation::policy::KindPolicies {
        use crate::validation::policy::{KindPolicies, Policy};
        let default = self.get(section, key, "block, warn or off", |s: String| {
            Policy::parse(&s).ok_or_else(|| format!("expected block, warn or off, got {s:?}"))
        });
        let by_kind = self
            .get(section, by_kind, "entries like \"227=warn 119=off\"", |s: String| KindPolicies::parse_exceptions(&s));
        KindPolicies { default, by_kind }
    }

    fn millis(&mut self, section: &str, key: &str) -> Duration {
        self.get(section, key, "a positive integer (milliseconds)", |n: i64| {
            let d = Duration::from_millis(n.max(0) as u64);
            if n <= 0 {
                Err(format!("must be greater than zero, got {n}"))
            } else if d > MAX_DURATION {
                Err(format!("must not exceed {} ms", MAX_DURATION.as_millis()))
            } else {
                Ok(d)
            }
        })
    }

    fn positive(&mut self, section: &str, key: &str, unit: &str) -> u64 {
        self.get(section, key, &format!("a positive integer ({unit})"), |n: i64| {
            if n > 0 { Ok(n as u64) } else { Err(format!("must be greater than zero, got {n}")) }
        })
    }

    fn listener_limits(&mut self, section: &str) -> ListenerLimits {
        ListenerLimits {
            max_connections: self.positive(section, "max_connections", "connections") as usize,
            header_read_timeout: self.millis(section, "header_read_timeout_ms"),
            idle_timeout: self.duration(section, "idle_timeout"),
            body_read_timeout: self.millis(section, "body_read_timeout_ms"),
            request_timeout: self.millis(section, "request_timeout_ms"),
            body_limit_bytes: self.positive(section, "body_limit_bytes", "bytes") as usize,
        }
    }

    fn listen(&mut self, section: &str, key: &str) -> SocketAddr {
        self.get(section, key, "an address like \"127.0.0.1:8080\"", |s: String| {
            s.parse::<SocketAddr>().map_err(|_| format!("not an IP address with a port: {s:?}"))
        })
    }

    fn optional_http_url(&mut self, section: &str, key: &str) -> Option<Url> {
        self.get(section, key, "an http(s) URL (or \"\")", |s: String| {
            if s.trim().is_empty() {
                return Ok(None);
            }
            let url = Url::parse(&s).map_err(|e| format!("not a URL ({e}): {s:?}"))?;
            if url.scheme() != "http" && url.scheme() != "https" {
                return Err(format!("expected an http or https URL, got {s:?}"));
            }
            Ok(Some(url))
        })
    }

    fn optional_path(&mut self, section: &str, key: &str) -> Option<PathBuf> {
        self.get(section, key, "a path (or \"\" for none)", |s: String| {
            Ok(if s.trim().is_empty() { None } else { Some(PathBuf::from(s)) })
        })
    }

    fn mode(&mut self, section: &str) -> ServiceMode {
        self.get(section, "mode", "\"sandbox\" or \"remote\"", |s: String| match s.as_str() {
            "sandbox" => Ok(ServiceMode::Sandbox),
            "remote" => Ok(ServiceMode::Remote),
            other => Err(format!("expected \"sandbox\" or \"remote\", got {other:?}")),
        })
    }

    fn read(&mut self) -> Config {
        let database = DatabaseConfig {
            url: self.get("database", "url", "a database URL", |s: String| {
                if s.starts_with("sqlite:") || s.starts_with("postgres://") || s.starts_with("postgresql://") {
                    Ok(s)
                } else {
                    Err(format!("expected sqlite://<path> or postgres://…, got {:?}", redact_url(&s)))
                }
            }),
            max_connections: self.positive("database", "max_connections", "connections") as u32,
            acquire_timeout: self.millis("database", "acquire_timeout_ms"),
            group_commit_max: self.positive("database", "group_commit_max", "documents") as usize,
        };
        let api = ApiConfig {
            listen: self.listen("api", "listen"),
            max_batch_items: self.positive("api", "max_batch_items", "items") as usize,
            batch_deadline: self.millis("api", "batch_deadline_ms"),
            batch_concurrency: self.positive("api", "batch_concurrency", "lookups") as usize,
            key_cache_for: self.duration_or_zero("api", "key_cache_for"),
            intake_workers: self.get("api", "intake_workers", "a count (0: one per CPU)", |n: i64| match n {
                0 => Ok(std::thread::available_parallelism().map_or(2, usize::from)),
                1..=1024 => Ok(n as usize),
                _ => Err(format!("must be between 0 and 1024, got {n}")),
            }),
            validate_per_minute: self
                .positive("api", "validate_per_minute", "calls per minute")
                .min(u64::from(u32::MAX)) as u32,
            limits: self.listener_limits("api"),
        };
        let remd_listener = RemdListenerConfig {
            listen: self.listen("remd_listener", "listen"),
            allow_from: self.get(
                "remd_listener",
                "allow_from",
                "a list of networks like [\"127.0.0.1/8\", \"10.0.0.0/24\"]",
                |list: Vec<String>| {
                    list.iter()
                        .map(|s| {
                            let s = s.trim();
                            s.parse::<ipnet::IpNet>()
                                .or_else(|_| s.parse::<std::net::IpAddr>().map(ipnet::IpNet::from))
                                .map_err(|_| format!("not a network or an address: {s:?}"))
                        })
                        .collect()
                },
            ),
            limits: self.listener_limits("remd_listener"),
            confirm_success: self.get("remd_listener", "confirm_success", "true or false", Ok::<bool, String>),
            tls: {
                let cert = self.optional_path("remd_listener", "tls_cert");
                let key = self.optional_path("remd_listener", "tls_key");
                let client_ca = self.optional_path("remd_listener", "tls_client_ca");
                let allowed_subjects = self.get(
                    "remd_listener",
                    "tls_allowed_subjects",
                    "a list of RFC 4514 subjects",
                    |list: Vec<String>| match list.iter().find(|s| crate::serve::normalized_subject(s).is_none()) {
                        Some(bad) => Err(format!("not an RFC 4514 subject: {bad:?}")),
                        None => Ok(list),
                    },
                );
                match (cert, key, client_ca) {
                    (Some(cert), Some(key), Some(client_ca)) => {
                        Some(ListenerTls { cert, key, client_ca, allowed_subjects })
                    }
                    (None, None, None) => None,
                    _ => {
                        self.problems.push(ConfigProblem {
                            key: "remd_listener.tls_cert".into(),
                            message: "tls_cert, tls_key and tls_client_ca go together: set all three or none".into(),
                            origin: self.layers.origin_of("remd_listener.tls_cert"),
                        });
                        None
                    }
                }
            },
        };
        let frmr = FrmrConfig {
            mode: self.mode("frmr"),
            base_url: self.optional_http_url("frmr", "base_url"),
            token: self.get("frmr", "token", "\"static:<token>\" or a token provider URL", |s: String| {
                let s = s.trim().to_owned();
                if s.is_empty() {
                    return Ok(None);
                }
                // The FRMR adapter's own parser: what passes here, the adapter accepts.
                egisz_frmr::TokenSource::parse(&s)?;
                Ok(Some(s))
            }),
            extra_ca_bundle: self.optional_path("frmr", "extra_ca_bundle"),
            rate_per_second: self.get("frmr", "rate_per_second", "a number of calls per second", |n: f64| {
                if n > 0.0 && n.is_finite() { Ok(n) } else { Err(format!("must be greater than zero, got {n}")) }
            }),
            answer_within: self.millis("frmr", "answer_within_ms"),
            max_pending_lookups: self.positive("frmr", "max_pending_lookups", "lookups") as usize,
            intake_reserve: self.positive("frmr", "intake_reserve", "lookups") as usize,
            client_share: self.positive("frmr", "client_share", "lookups") as usize,
            timeout: self.millis("frmr", "timeout_ms"),
            retry_max_attempts: self.positive("frmr", "retry_max_attempts", "attempts") as u32,
            retry_max_delay: self.millis("frmr", "retry_max_delay_ms"),
            cache_fresh_for: self.duration("frmr", "cache_fresh_for"),
            cache_stale_limit: self.duration("frmr", "cache_stale_limit"),
            cache_not_found_for: self.duration("frmr", "cache_not_found_for"),
            cache_memory_for: self.duration_or_zero("frmr", "cache_memory_for"),
            circuit_failure_threshold: self.positive("frmr", "circuit_failure_threshold", "failures") as u32,
            circuit_open_for: self.duration("frmr", "circuit_open_for"),
        };
        let remd = RemdConfig {
            mode: self.mode("remd"),
            endpoint: self.optional_http_url("remd", "endpoint"),
            client_entity_id: self.get("remd", "client_entity_id", "a GUID (or \"\")", |s: String| {
                let s = s.trim().to_owned();
                if s.is_empty() {
                    Ok(None)
                } else if uuid::Uuid::parse_str(&s).is_ok() {
                    Ok(Some(s))
                } else {
                    Err(format!("expected a GUID like 1f0e6d3a-0000-4000-8000-000000000042, got {s:?}"))
                }
            }),
            extra_ca_bundle: self.optional_path("remd", "extra_ca_bundle"),
            timeout: self.millis("remd", "timeout_ms"),
            quota: Rate {
                per_second: self.get("remd", "rate_per_second", "a number of calls per second", |n: f64| {
                    if n > 0.0 && n <= 10_000.0 { Ok(n) } else { Err(format!("must be in (0, 10000], got {n}")) }
                }),
                burst: self.positive("remd", "burst", "calls") as u32,
            },
        };
        let relay = RelayConfig {
            instance_id: self.get("relay", "instance_id", "a name of letters, digits, '.', '-', '_'", |s: String| {
                let s = s.trim().to_owned();
                let s = if s.is_empty() { host_name() } else { s };
                if s.len() <= 64 && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b)) && !s.is_empty()
                {
                    Ok(s)
                } else {
                    Err(format!("expected up to 64 letters, digits, '.', '-', '_', got {s:?}"))
                }
            }),
            concurrency: self.positive("relay", "concurrency", "workers") as usize,
            lease_for: self.duration("relay", "lease_for"),
            poll_interval: self.millis("relay", "poll_interval_ms"),
            timing: Timing {
                result_check_after: self.duration("relay", "result_check_after"),
                result_deadline: self.duration("relay", "result_deadline"),
                reconcile_after: self.duration_or_zero("relay", "reconcile_after"),
                retry: RetryPolicy {
                    base: self.duration("relay", "retry_base"),
                    cap: self.duration("relay", "retry_cap"),
                    max_attempts: self.positive("relay", "max_attempts", "attempts") as u32,
                    max_age: self.duration("relay", "max_age"),
                    rate_limited_wait: self.duration_or_zero("relay", "rate_limited_wait"),
                },
            },
            callbacks_kept_for: self.duration("relay", "callbacks_kept_for"),
            stop_grace: self.duration("relay", "stop_grace"),
        };
        let documents = DocumentsConfig { max_bytes: self.positive("documents", "max_bytes", "bytes") as usize };
        let mappings = MappingsConfig { dir: self.optional_path("mappings", "dir") };
        let ops = OpsConfig {
            bulk_retry_max: self.positive("ops", "bulk_retry_max", "submissions") as u32,
            registration_deadline: self.duration("ops", "registration_deadline"),
            session_ttl: self.duration("ops", "session_ttl"),
            secure_cookies: self.get("ops", "secure_cookies", "true or false", |b: bool| Ok(b)),
        };
        let validation = ValidationConfig {
            signers: self.kind_policies("validation", "signers", "signers_by_kind"),
            frmo: self.kind_policies("validation", "frmo", "frmo_by_kind"),
            frmo_max_age: self.duration("validation", "frmo_max_age"),
            verifier: {
                let kind = self.get("validation", "verifier", "gost, external or none", |s: String| match s.as_str() {
                    "gost" | "external" | "none" => Ok(s),
                    other => Err(format!("expected gost, external or none, got {other:?}")),
                });
                let url = self.optional_http_url("validation", "verifier_url");
                let timeout = self.millis("validation", "verifier_timeout_ms");
                let gost = GostSettings {
                    trust: {
                        let dir = self.optional_path("validation", "trust_dir");
                        let url = self.optional_http_url("validation", "tsl_url");
                        let file = self.optional_path("validation", "tsl_file");
                        let refresh = self.duration("validation", "tsl_refresh");
                        let list = url.map(|url| AccreditedList {
                            url,
                            file: file.unwrap_or_else(|| PathBuf::from("data/accredited-cas.xml")),
                            refresh,
                        });
                        match (dir, list) {
                            (None, None) => GostTrust::SandboxCa,
                            (dir, list) => GostTrust::Accredited { dir, list },
                        }
                    },
                    trust_refresh: self.duration("validation", "trust_refresh"),
                    revocation: self.get("validation", "revocation", "warn or block", |s: String| {
                        RevocationPolicy::parse(&s).ok_or_else(|| format!("expected warn or block, got {s:?}"))
                    }),
                    crl_proxy: self.optional_http_url("validation", "crl_proxy"),
                    crl_timeout: self.millis("validation", "crl_timeout_ms"),
                    crl_max_bytes: self.get(
                        "validation",
                        "crl_max_bytes",
                        "a size in bytes, 1 KiB … 1 GiB",
                        |n: i64| {
                            usize::try_from(n)
                                .ok()
                                .filter(|n| (1024..=1 << 30).contains(n))
                                .ok_or_else(|| format!("expected 1024 … {}, got {n}", 1u64 << 30))
                        },
                    ),
                };
                match (kind.as_str(), url) {
                    ("gost", _) => VerifierChoice::Gost(gost),
                    ("external", Some(url)) => VerifierChoice::External { url, timeout },
                    ("external", None) => {
                        self.problems.push(ConfigProblem {
                            key: "validation.verifier_url".into(),
                            message: "required when validation.verifier = \"external\"".into(),
                            origin: None,
                        });
                        VerifierChoice::None
                    }
                    _ => VerifierChoice::None,
                }
            },
            packages: self.optional_path("validation", "packages_dir").map(|dir| PackagesConfig {
                dir,
                refresh: self.duration("validation", "packages_refresh"),
                schematron_time: self.millis("validation", "schematron_time_ms"),
            }),
            xsd: self.kind_policies("validation", "xsd", "xsd_by_kind"),
            schematron: self.kind_policies("validation", "schematron", "schematron_by_kind"),
        };
        let nsi = NsiConfig {
            mode: {
                let mode = self.get("nsi", "mode", "off, sandbox or remote", |s: String| match s.as_str() {
                    "off" | "sandbox" | "remote" => Ok(s),
                    other => Err(format!("expected off, sandbox or remote, got {other:?}")),
                });
                let url = self.optional_http_url("nsi", "base_url");
                match (mode.as_str(), url) {
                    ("sandbox", _) => NsiMode::Sandbox,
                    ("remote", Some(url)) => NsiMode::Remote(url),
                    ("remote", None) => {
                        self.problems.push(ConfigProblem {
                            key: "nsi.base_url".into(),
                            message: "required when nsi.mode = \"remote\"".into(),
                            origin: None,
                        });
                        NsiMode::Off
                    }
                    _ => NsiMode::Off,
                }
            },
            refresh_every: self.duration("nsi", "refresh_every"),
            timeout: self.millis("nsi", "timeout_ms"),
        };
        let sandbox = SandboxConfig {
            frmr_listen: self.listen("sandbox", "frmr_listen"),
            frmr_control_listen: self.listen("sandbox", "frmr_control_listen"),
            frmr_roster: self.optional_path("sandbox", "frmr_roster"),
            frmr_faults: egisz_sandbox::Faults {
                mode: self.get("sandbox", "frmr_fault_mode", "a fault mode", |s: String| {
                    serde_json::from_value(serde_json::Value::String(s.clone())).map_err(|_| {
                        format!(
                            "expected none, too_many_requests, server_error, internal_error, hang or down, got {s:?}"
                        )
                    })
                }),
                error_rate: self.get("sandbox", "frmr_error_rate", "a share from 0.0 to 1.0", |n: f64| {
                    if (0.0..=1.0).contains(&n) { Ok(n) } else { Err(format!("must be from 0.0 to 1.0, got {n}")) }
                }),
                latency_ms: self.get("sandbox", "frmr_latency_ms", "milliseconds (0 or more)", |n: i64| {
                    u64::try_from(n).map_err(|_| format!("must not be negative, got {n}"))
                }),
                ..egisz_sandbox::Faults::default()
            },
            remd_listen: self.listen("sandbox", "remd_listen"),
            api_key_file: self.get("sandbox", "api_key_file", "a path", |s: String| {
                if s.trim().is_empty() { Err("must not be empty".into()) } else { Ok(PathBuf::from(s)) }
            }),
        };
        let log = LogConfig {
            format: self.get("log", "format", "\"human\" or \"json\"", |s: String| match s.as_str() {
                "human" => Ok(LogFormat::Human),
                "json" => Ok(LogFormat::Json),
                other => Err(format!("expected \"human\" or \"json\", got {other:?}")),
            }),
            level: self.get("log", "level", "a log filter like \"info\"", |s: String| {
                tracing_subscriber::EnvFilter::try_new(&s)
                    .map(|_| s.clone())
                    .map_err(|e| format!("not a log filter ({e}): {s:?}"))
            }),
        };
        let region = RegionConfig {
            utc_offset: self.get("region", "utc_offset", "an offset like \"+07:00\"", |s: String| {
                parse_offset(&s).ok_or_else(|| format!("expected an offset like \"+07:00\", got {s:?}"))
            }),
        };
        Config {
            database,
            api,
            remd_listener,
            frmr,
            remd,
            relay,
            documents,
            ops,
            validation,
            nsi,
            mappings,
            sandbox,
            log,
            region,
        }
    }
}

fn parse_offset(s: &str) -> Option<FixedOffset> {
    let (sign, rest) = match s.as_bytes().first()? {
        b'+' => (1, &s[1..]),
        b'-' => (-1, &s[1..]),
        _ => return None,
    };
    let (h, m) = rest.split_once(':')?;
    let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
    if h > 14 || m > 59 || h < 0 || m < 0 {
        return None;
    }
    FixedOffset::east_opt(sign * (h * 3600 + m * 60))
}

fn describe(v: &toml::Value) -> String {
    match v {
        toml::Value::String(s) => format!("the string {s:?}"),
        toml::Value::Integer(i) => format!("the integer {i}"),
        toml::Value::Float(f) => format!("the number {f}"),
        toml::Value::Boolean(b) => format!("{b}"),
        toml::Value::Datetime(d) => format!("the date {d}"),
        toml::Value::Array(_) => "an array".into(),
        toml::Value::Table(_) => "a table".into(),
    }
}

/// A database URL with its password masked, for messages and logs.
pub fn redact_url(url: &str) -> String {
    match Url::parse(url) {
        Ok(mut u) if u.password().is_some() => {
            let _ = u.set_password(Some("***"));
            u.to_string()
        }
        _ => url.to_owned(),
    }
}

/// The keys of the configuration, `section.key`, as documented in the embedded default.
pub fn known_keys() -> Vec<String> {
    let default: toml::Table = DEFAULT_TOML.parse().expect("valid embedded default");
    let mut keys = Vec::new();
    let mut seen = HashSet::new();
    for (s, t) in &default {
        if let Some(t) = t.as_table() {
            for k in t.keys() {
                if seen.insert((s.clone(), k.clone())) {
                    keys.push(format!("{s}.{k}"));
                }
            }
        }
    }
    keys
}

#[cfg(test)]
mod tests {
    use super::*;

    fn env(pairs: &[(&str, &str)]) -> Vec<(String, String)> {
        pairs.iter().map(|(a, b)| (a.to_string(), b.to_string())).collect()
    }

    #[test]
    fn embedded_default_loads_cleanly() {
        let c = Config::load(None, &[]).expect("default is valid");
        assert_eq!(c.api.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(c.remd_listener.listen, "127.0.0.1:8091".parse().unwrap());
        assert_eq!(c.frmr.mode, ServiceMode::Sandbox);
        assert_eq!(c.frmr.cache_fresh_for, Duration::from_secs(24 * 3600));
        assert_eq!(c.region.utc_offset, FixedOffset::east_opt(7 * 3600).unwrap());
        assert!(c.database.url.starts_with("sqlite://data/"));
    }

    #[test]
    fn every_listener_defaults_to_loopback() {
        let c = Config::load(None, &[]).unwrap();
        for addr in [c.api.listen, c.remd_listener.listen, c.sandbox.frmr_listen, c.sandbox.frmr_control_listen] {
            assert!(addr.ip().is_loopback(), "{addr}");
        }
    }

    #[test]
    fn environment_overrides_file_overrides_default() {
        let file = "[frmr]\nmode = \"remote\"\nbase_url = \"https://file.example/x/\"\ntoken = \"static:abc\"\ntimeout_ms = 1000\n";
        let c = Config::load(
            Some(("file test.toml", file)),
            &env(&[
                ("EGISZ__REMD__MODE", "remote"),
                ("EGISZ__REMD__ENDPOINT", "http://127.0.0.1:9444/port/emdr"),
                ("EGISZ__REMD__CLIENT_ENTITY_ID", "0f0e0d0c-0b0a-4909-8807-060504030201"),
                ("EGISZ__NSI__MODE", "off"),
                ("EGISZ__VALIDATION__VERIFIER", "none"),
                ("EGISZ__FRMR__BASE_URL", "https://env.example/y/"),
                ("EGISZ__FRMR__TIMEOUT_MS", "2500"),
                ("OTHER", "x"),
            ]),
        )
        .unwrap();
        assert_eq!(c.frmr.base_url.unwrap().as_str(), "https://env.example/y/");
        assert_eq!(c.frmr.timeout, Duration::from_millis(2500));
        assert_eq!(c.frmr.mode, ServiceMode::Remote);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let file = "[api]\nlisten = \"nowhere\"\nlistem = 1\n[frmr]\nmode = \"live\"\ntimeout_ms = -5\ncache_fresh_for = \"soon\"\n[nope]\nx = 1\n";
        let errs =
            Config::load(Some(("file bad.toml", file)), &env(&[("EGISZ__FRMR__RATE_PER_SECOND", "fast")])).unwrap_err();
        let keys: Vec<&str> = errs.0.iter().map(|p| p.key.as_str()).collect();
        for expected in [
            "api.listem",
            "nope",
            "api.listen",
            "frmr.mode",
            "frmr.timeout_ms",
            "frmr.cache_fresh_for",
            "frmr.rate_per_second",
        ] {
            assert!(keys.contains(&expected), "{expected} missing from {keys:?}");
        }
        let text = errs.to_string();
        assert!(text.contains("environment EGISZ__FRMR__RATE_PER_SECOND"), "{text}");
        assert!(text.contains("file bad.toml"), "{text}");
    }

    #[test]
    fn remote_mode_needs_an_endpoint_and_a_token() {
        let errs = Config::load(None, &env(&[("EGISZ__FRMR__MODE", "remote")])).unwrap_err();
        let keys: Vec<&str> = errs.0.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["frmr.base_url", "frmr.token", "remd.mode", "nsi.mode", "validation.verifier"]);
    }

    #[test]
    fn the_list_of_accredited_cas_comes_over_tls() {
        let keys = |url: &str| -> Vec<String> {
            match Config::load(None, &env(&[("EGISZ__VALIDATION__TSL_URL", url)])) {
                Ok(c) => {
                    assert!(matches!(
                        c.validation.verifier,
                        VerifierChoice::Gost(GostSettings { trust: GostTrust::Accredited { list: Some(_), .. }, .. })
                    ));
                    Vec::new()
                }
                Err(errs) => errs.0.into_iter().map(|p| p.key).collect(),
            }
        };
        assert_eq!(keys("http://e-trust.example/getxml"), ["validation.tsl_url"]);
        assert_eq!(keys("https://e-trust.example/getxml"), Vec::<String>::new());
        assert_eq!(keys("http://127.0.0.1:9/getxml"), Vec::<String>::new(), "a local mirror");
    }

    #[test]
    fn no_sandbox_piece_beside_a_real_service() {
        let remd = [
            ("EGISZ__REMD__MODE", "remote"),
            ("EGISZ__REMD__ENDPOINT", "http://127.0.0.1:9444/port/emdr"),
            ("EGISZ__REMD__CLIENT_ENTITY_ID", "0f0e0d0c-0b0a-4909-8807-060504030201"),
        ];
        let keys = |extra: &[(&str, &str)]| -> Vec<String> {
            let all: Vec<(&str, &str)> = remd.iter().chain(extra).copied().collect();
            match Config::load(None, &env(&all)) {
                Ok(_) => Vec::new(),
                Err(errs) => errs.0.into_iter().map(|p| p.key).collect(),
            }
        };
        assert_eq!(keys(&[]), ["frmr.mode", "nsi.mode", "validation.verifier"], "every piece named");
        assert_eq!(keys(&[("EGISZ__NSI__MODE", "off"), ("EGISZ__VALIDATION__VERIFIER", "none")]), ["frmr.mode"]);
        let all_real = [
            ("EGISZ__NSI__MODE", "off"),
            ("EGISZ__VALIDATION__VERIFIER", "none"),
            ("EGISZ__FRMR__MODE", "remote"),
            ("EGISZ__FRMR__BASE_URL", "https://frmr.example/"),
            ("EGISZ__FRMR__TOKEN", "static:abc"),
        ];
        assert_eq!(keys(&all_real), Vec::<String>::new());
        let c = Config::load(None, &env(&all_real.iter().chain(&remd).copied().collect::<Vec<_>>())).unwrap();
        assert!(!c.all_sandbox());
        let embedded = Config::load(None, &[]).unwrap();
        assert!(embedded.all_sandbox() && embedded.sandbox_beside_remote().is_empty(), "the embedded default");
        let message = Config::load(None, &env(&remd)).unwrap_err().to_string();
        assert!(message.contains("remd.mode = \"remote\"") && message.contains("frmr.base_url"), "{message}");
    }

    #[test]
    fn pairs_that_would_bite_are_refused() {
        let key_of = |pairs: &[(&str, &str)]| -> Vec<String> {
            Config::load(None, &env(pairs)).err().map(|e| e.0.into_iter().map(|p| p.key).collect()).unwrap_or_default()
        };
        for (pairs, key) in [
            (&[("EGISZ__API__IDLE_TIMEOUT", "10s")][..], "api.idle_timeout"),
            (&[("EGISZ__REMD_LISTENER__IDLE_TIMEOUT", "5s")][..], "remd_listener.idle_timeout"),
            (&[("EGISZ__API__HEADER_READ_TIMEOUT_MS", "40000")][..], "api.header_read_timeout_ms"),
            (&[("EGISZ__DATABASE__ACQUIRE_TIMEOUT_MS", "30000")][..], "database.acquire_timeout_ms"),
            (&[("EGISZ__RELAY__STOP_GRACE", "25s")][..], "relay.stop_grace"),
            (&[("EGISZ__OPS__BULK_RETRY_MAX", "5000")][..], "ops.bulk_retry_max"),
            (&[("EGISZ__RELAY__LEASE_FOR", "5s"), ("EGISZ__REMD__TIMEOUT_MS", "15000")][..], "relay.lease_for"),
            (&[("EGISZ__FRMR__INTAKE_RESERVE", "100")][..], "frmr.intake_reserve"),
            (&[("EGISZ__FRMR__CLIENT_SHARE", "81")][..], "frmr.client_share"),
        ] {
            assert_eq!(key_of(pairs), [key], "{pairs:?}");
        }
        // Equal idle and request timeouts, and the defaults, are fine.
        assert_eq!(key_of(&[("EGISZ__API__IDLE_TIMEOUT", "30s")]), Vec::<String>::new());
        assert_eq!(key_of(&[("EGISZ__FRMR__CLIENT_SHARE", "80")]), Vec::<String>::new());
    }

    #[test]
    fn token_sources() {
        let ok = |t: &str| Config::load(None, &env(&[("EGISZ__FRMR__TOKEN", t)])).map(|c| c.frmr.token);
        assert_eq!(ok("static:abc").unwrap().as_deref(), Some("static:abc"));
        assert!(ok("https://tokens.local/token").is_ok());
        assert!(ok("static:").is_err());
        assert!(ok("\"static:a b\"").is_err(), "what the FRMR adapter would refuse is refused here");
        assert!(ok("abc").is_err());
    }

    #[test]
    fn stale_limit_not_shorter_than_freshness() {
        let errs = Config::load(None, &env(&[("EGISZ__FRMR__CACHE_STALE_LIMIT", "1h")])).unwrap_err();
        assert_eq!(errs.0[0].key, "frmr.cache_stale_limit");
    }

    #[test]
    fn durations_are_bounded_and_deadlines_fit_the_request_timeout() {
        let errs = Config::load(
            None,
            &env(&[("EGISZ__FRMR__CIRCUIT_OPEN_FOR", "500000000000years"), ("EGISZ__FRMR__ANSWER_WITHIN_MS", "60000")]),
        )
        .unwrap_err();
        let keys: Vec<&str> = errs.0.iter().map(|p| p.key.as_str()).collect();
        assert_eq!(keys, ["frmr.circuit_open_for", "frmr.answer_within_ms"], "{errs}");
    }

    #[test]
    fn sandbox_faults_from_configuration() {
        let c = Config::load(
            None,
            &env(&[("EGISZ__SANDBOX__FRMR_FAULT_MODE", "server_error"), ("EGISZ__SANDBOX__FRMR_ERROR_RATE", "0.3")]),
        )
        .unwrap();
        assert_eq!(c.sandbox.frmr_faults.mode, egisz_sandbox::FaultMode::ServerError);
        assert!(Config::load(None, &env(&[("EGISZ__SANDBOX__FRMR_FAULT_MODE", "explode")])).is_err());
        assert!(Config::load(None, &env(&[("EGISZ__SANDBOX__FRMR_ERROR_RATE", "2")])).is_err());
    }

    #[test]
    fn malformed_env_name() {
        let errs = Config::load(None, &env(&[("EGISZ__FRMR", "x")])).unwrap_err();
        assert_eq!(errs.0.len(), 1);
    }

    #[test]
    fn database_password_is_masked_in_messages() {
        assert_eq!(redact_url("postgres://u:secret@h:5432/db"), "postgres://u:***@h:5432/db");
    }

    #[test]
    fn offsets() {
        assert_eq!(parse_offset("-03:30"), FixedOffset::west_opt(3 * 3600 + 1800));
        assert_eq!(parse_offset("07:00"), None);
    }

    #[test]
    fn readme_documents_every_key() {
        let readme = include_str!("../README.md");
        for key in known_keys() {
            assert!(readme.contains(&format!("| `{key}` |")), "README's configuration table lacks {key}");
        }
    }

    #[test]
    fn production_example_is_valid() {
        let text = include_str!("../config/production.example.toml");
        Config::load(Some(("file production.example.toml", text)), &[]).expect("example is valid");
    }
}
