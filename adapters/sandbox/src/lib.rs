//! # egisz-sandbox
//!
//! In-process emulators of the federal services the gateway talks to, served over real
//! HTTP on loopback, with fault injection. **Not for production**: the emulators hold
//! synthetic people, accept any token they issued themselves and exist so that the
//! embedded default (`egisz-gateway serve` with no federal endpoints configured) and the
//! tests can run the real adapters end to end without the federal network.
//!
//! ## What this crate owns
//!
//! - [`frmr`]: an emulator of FRMR's `person/full` REST call (the contract of
//!   `shared/federal/FRMR.md`) and of the token provider sidecar that in production signs
//!   the FRMR bearer token with GOST keys. It serves a roster of synthetic medical workers
//!   ([`Roster`], built in from `data/frmr-roster.json`), checks bearer tokens, answers in
//!   FRMR's envelopes, and injects faults ([`Faults`]: latency, 429/503/500 answers, hung
//!   requests, a listener that drops every connection) that tests set and whose effect
//!   they read back as call counts ([`FrmrStats`]).
//!
//! ## What it must not do
//!
//! - Depend on the gateway or on its adapters: it speaks only the wire format, so that it
//!   checks the adapters rather than sharing their assumptions.
//! - Log personal data: the roster holds (synthetic) SNILS and names; logs carry only
//!   status codes and counts.
//!
//! ## Layout
//!
//! - `net`: a small HTTP/1 server loop (accept, serve an axum `Router` per connection,
//!   drop connections while a listener is "down", graceful shutdown that aborts stalled
//!   requests);
//! - `frmr::roster`: the roster file, parsed and checked;
//! - `frmr::faults`: the fault settings and the call counters;
//! - `frmr::service`: the FRMR listener (`GET /person/full`);
//! - `frmr::control`: the control listener (`/token`, `/_admin/…`).
#![forbid(unsafe_code)]

pub mod frmr;
mod net;

pub use frmr::{FaultMode, Faults, FrmrSandbox, FrmrSandboxConfig, FrmrStats, Roster, RosterError};
