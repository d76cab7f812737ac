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
//! - [`remd`]: an emulator of REMD ([`RemdSandbox`]): a SOAP 1.2 server for
//!   `registerDocument`, `searchRegistryItem` and `getRegistryItem` (the contract of
//!   `shared/federal/REMD.md`) that, like REMD, acknowledges a registration at once, pulls
//!   the file from the gateway (`getDocumentFile`), checks its CRC-32, its CDA header
//!   against the request and its signers against the same [`Roster`], registers it once
//!   with an `emdrId`, and posts `sendRegisterDocumentResult`. Signatures are judged with
//!   the gateway's own GOST backend (`egisz-verifier`), trusting the CAs it is configured
//!   with ([`RemdSandboxConfig::trusted_cas`]; default the sandbox's GOST test CA). Faults ([`RemdFaults`]:
//!   sync faults and 503s, `RATE_LIMIT`, accepted-then-silent calls, lost, duplicated and
//!   delayed results, forced error codes), counters ([`RemdStats`]) and the register
//!   ([`RegistryEntry`]) are readable by tests.
//! - [`nsi`]: an emulator of the federal NSI service's REST API ([`NsiSandbox`]): dictionary
//!   versions and their rows, published by tests, with faults ([`NsiFault`]).
//! - [`Balancer`]: a round-robin TCP balancer on loopback in front of several gateway
//!   instances (as nginx would be), for the tests and benchmarks that run a cluster.
//! - [`verifier`]: an emulator of the signature verification service a deployment puts in
//!   front of its certified GOST provider ([`VerifierSandbox`]), verifying GOST signatures
//!   with the same backend, with faults ([`VerifierFault`]) and counters ([`VerifierStats`]).
//! - [`pki`]: the sandbox's GOST test CA and its standing CRL.
//!
//! ## What it must not do
//!
//! - Depend on the gateway. The FRMR emulator speaks only the wire format, so that it
//!   checks the FRMR adapter rather than sharing its assumptions. The REMD emulator reads
//!   and writes its envelopes with the `egisz-remd` codec on purpose: both ends of every
//!   REMD message are then one codec, pinned by that crate's snapshot tests; what it
//!   checks (the document, the roster, the uniqueness) is its own.
//! - Log personal data: the roster holds (synthetic) SNILS and names, documents and
//!   requests hold patients' data; logs carry only status codes, counts, message ids,
//!   OIDs, kinds, `emdrId`s and REMD codes.
//!
//! ## Layout
//!
//! - `net`: a small HTTP/1 server loop (accept, serve an axum `Router` per connection,
//!   drop connections while a listener is "down", graceful shutdown that aborts stalled
//!   requests);
//! - `frmr::roster`: the roster file, parsed and checked;
//! - `frmr::faults`: the fault settings and the call counters;
//! - `frmr::service`: the FRMR listener (`GET /person/full`);
//! - `frmr::control`: the control listener (`/token`, `/_admin/…`);
//! - `remd::service`: the REMD listener (`POST /port/emdr`, `/_admin/…`) and the sync
//!   decisions; `remd::process`: pull, checks, registration and result posting;
//!   `remd::checks`: the request against the document and the roster; `remd::registry`:
//!   the register; `remd::codes`: the NSI 305 codes and texts, the known kinds;
//!   `remd::faults`: the fault settings and the counters;
//! - `balancer`: the TCP balancer;
//! - `verifier`: the verification service emulator (`POST /verify`);
//! - `nsi`: the NSI emulator (`GET /versions`, `GET /data`);
//! - `frmo`: the register of medical organisations the NSI emulator publishes and the REMD
//!   emulator checks against;
//! - `pki`: the sandbox CA.
#![forbid(unsafe_code)]

mod balancer;
pub mod frmo;
pub mod frmr;
mod net;
pub mod nsi;
pub mod pki;
pub mod remd;
pub mod verifier;

pub use balancer::Balancer;
pub use frmo::Frmo;
pub use frmr::{FaultMode, Faults, FrmrSandbox, FrmrSandboxConfig, FrmrStats, Roster, RosterError};
pub use nsi::{HOSTILE_VERSION, NsiFault, NsiSandbox};
pub use remd::{RegistryEntry, RemdFaults, RemdSandbox, RemdSandboxConfig, RemdStats};
pub use verifier::{VerifierFault, VerifierSandbox, VerifierStats};
