//! # egisz-frmr
//!
//! The FRMR REST client: implements [`egisz_contract::frmr::FrmrRegistry`] over HTTP
//! (reqwest with rustls) against the federal register of medical workers, as
//! `/work/shared/federal/FRMR.md` models it.
//!
//! ## What this crate owns
//!
//! - **The FRMR wire format** — paths, query parameters, JSON envelopes and field names,
//!   the token provider's answer — all in one private module, `wire`, and the lenient
//!   mapping of the wire person into the contract's [`FrmrPerson`](egisz_contract::frmr::FrmrPerson).
//! - **Its classification** — what an HTTP status, a transport error or a body means as a
//!   [`CallOutcome`](egisz_contract::CallOutcome) (per attempt, for metrics) and as a
//!   [`Failure`](egisz_contract::Failure) (per lookup) — in one private module, `classify`.
//! - The mechanics needed to call FRMR well: bearer token (static or from a provider
//!   sidecar, cached), rate limit (governor), retries of transient failures (backon).
//!
//! Nothing else: no verdicts (`verified`, `not_employed`, … are decided by the gateway on
//! the returned person), no caching of persons, no metrics types (it reports through
//! [`CallObserver`](egisz_contract::CallObserver)), no configuration file format.
//!
//! ## \[model\] choices (FRMR.md marks these as not confirmed by public code)
//!
//! - the bearer token comes from a [`TokenSource`]: a static token or a provider answering
//!   `POST` with `{"token", "expires_in", "token_type"}`; `expires_in` missing = 300 s;
//! - `person/full` is the call used for a lookup;
//! - `personCard[].oid` is the MO OID, and `personCard[].fedPositionId` a code of NSI
//!   1.2.643.5.1.13.13.11.1002;
//! - lenient parsing: ids as numbers or strings, missing arrays empty, dates with a time
//!   part cut to the date (no time zone conversion);
//! - a 404 without FRMR's error envelope is a configuration failure (wrong base URL), not
//!   "not found"; a 2xx body without a `content` field is unreadable;
//! - no rate limit is published: the default of 2 calls per second follows a vendor
//!   script's 0.5 s pause.
//!
//! See `README.md` next to `Cargo.toml` for the classification table and the retry and
//! token behaviour.
//!
//! ## Logging
//!
//! Spans and events carry the organisation OID, the attempt number and the outcome, never
//! a SNILS, a name or a token: the request URL (whose query holds the SNILS) and
//! reqwest's own error texts (which quote the URL) are never logged, and no free text
//! from FRMR is ever quoted — failure reasons and logs carry only HTTP statuses, FRMR's
//! numeric `code`, its `reasonPhrase` when that is a standard HTTP reason phrase, and our
//! own fixed English text.
//!
//! ## Checking a configuration
//!
//! [`validate`] (also [`FrmrClientConfig::validate`]) runs exactly the checks
//! [`FrmrClient::new`] runs, without building a client; [`TokenSource::parse`] runs all
//! of those that concern the token source.
#![forbid(unsafe_code)]

mod classify;
mod client;
mod config;
mod token;
mod wire;

pub use client::{FrmrClient, validate};
pub use config::{
    DEFAULT_RATE_PER_SECOND, DEFAULT_RETRY_MAX_ATTEMPTS, DEFAULT_RETRY_MAX_DELAY, DEFAULT_RETRY_MIN_DELAY,
    DEFAULT_TIMEOUT, DEFAULT_USER_AGENT, FrmrClientConfig, FrmrClientError, TokenSource,
};

/// The service name this crate reports to the [`CallObserver`](egisz_contract::CallObserver).
pub const SERVICE: &str = "frmr";
