//! # egisz-gateway
//!
//! The regional door to the federal EGISZ services: FRMR staff verification for the TMK
//! portal now, REMD document registration next.
//!
//! ## Layout
//!
//! - [`config`] — the three configuration layers and their checks, read into the sections
//!   their users declare (`relay::RelayConfig`, `staff::FrmrConfig`, `ops::OpsConfig`,
//!   `api::settings`, `validation::settings`, `store::DatabaseConfig`, `telemetry::LogConfig`);
//! - [`telemetry`] — logging setup (personal data never reaches it: see `egisz_contract::Personal`);
//! - [`store`] — durable state behind one trait, with SQLite and PostgreSQL implementations;
//! - [`clients`] — API clients, their keys, roles and organisation scope (the records);
//! - [`auth`] — a presented key checked against the stored clients;
//! - [`staff`] — staff verification: verdict rules, the database cache, coalescing, fair
//!   shares of FRMR between intake and each API client (taken in turns), and the circuit
//!   breaker in front of FRMR;
//! - [`api`] — the internal HTTP API (axum): routing, problems, OpenAPI, service endpoints;
//!   intake checks documents on the blocking pool and stores them through group commit;
//! - [`lifecycle`] — the submission lifecycle: every state × event → transition, pure; and
//!   [`lifecycle::Lifecycle`], the handle the relay, the REMD listener and ops decide through;
//! - [`audit`] — the audit log's records (every operator's action);
//! - [`ops`] — what operators do and see, for the API and the console alike: actions
//!   (through the lifecycle, audited), the summary, the REMD report, the dashboard's days,
//!   what of the audit log a key sees;
//! - [`console`] — the ops console at `/ops`: server-rendered Russian HTML, sessions, CSRF;
//! - [`mappings`] — REMD codes, the gateway's own codes, document kinds with their profiles
//!   and dictionary copies, as data;
//! - [`validation`] — what intake and `validate` check of a signed document: the document
//!   and its signatures (pure), each signer against FRMR and each signature against the
//!   configured verifier (policies `block`/`warn`/`off`; an unreachable service warns);
//! - [`remd_listener`] — REMD's calls to the gateway, and the trust rule of their results;
//! - [`serve`] — how every listener serves connections: the connection cap, header-read
//!   and idle timeouts, admission by address;
//! - [`remd`] — REMD as the gateway calls it: one client, the quota each call takes its slot
//!   from, the calls' health (shared by the relay, the REMD listener and ops);
//! - [`relay`] — the outbox dispatcher: claims with leases taking turns between
//!   organisations, REMD calls paced by REMD's quota, reconciliation;
//! - [`quota`] — an upstream's quota: the token bucket callers reserve slots from (pure;
//!   the cluster's on PostgreSQL) and the one client the relay and the staff service use;
//! - [`metrics`] — the Prometheus registry, also the adapters' call observer;
//! - [`nsi`] — the dictionaries kept current from NSI (schedule, once per cluster; CLI),
//!   the shipped copies the fallback; and [`nsi::frmo`], FRMO, the register of medical
//!   organisations: NSI's two country-sized dictionaries streamed into storage, held in
//!   memory only as the index lookups need (names, the days each organisation and
//!   department is valid);
//! - [`app`] — wiring: builds everything from a [`config::Config`], runs it, shuts it down.
//!
//! Outside systems live in their own crates under `adapters/`, behind traits of
//! `egisz_contract`; this crate never speaks their wire formats.
#![forbid(unsafe_code)]

pub mod api;
pub mod app;
pub mod audit;
pub mod auth;
pub mod circuit;
pub mod clients;
pub mod config;
pub mod console;
pub mod lifecycle;
pub mod mappings;
pub mod memo;
pub mod metrics;
pub mod nsi;
pub mod ops;
pub mod quota;
pub mod relay;
pub mod remd;
pub mod remd_listener;
pub mod serve;
pub mod staff;
pub mod store;
pub mod submission;
pub mod telemetry;
pub mod validation;

/// The current time, to the millisecond (what both databases store exactly).
pub fn now() -> chrono::DateTime<chrono::Utc> {
    let t = chrono::Utc::now();
    chrono::DateTime::from_timestamp_millis(t.timestamp_millis()).unwrap_or(t)
}
