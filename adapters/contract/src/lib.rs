//! # egisz-contract
//!
//! What the gateway owns about the outside world, with no I/O of its own:
//!
//! - value types that are valid once they exist ([`Snils`], [`Oid`]) and personal data
//!   that redacts itself in logs ([`Personal`]);
//! - the closed set of outcomes every adapter call ends in ([`Failure`]): the relay and
//!   the verification service decide on these, never on HTTP codes or SOAP faults;
//! - the traits the adapters implement ([`frmr::FrmrRegistry`]) and the observer through
//!   which they report calls for metrics ([`CallObserver`]);
//! - whether a service is the real one or its emulator ([`ServiceMode`]).
//!
//! Adapters depend on this crate; this crate depends on no adapter and on no transport.
#![forbid(unsafe_code)]

pub mod frmr;
mod mode;
mod observe;
mod oid;
mod outcome;
mod personal;
pub mod remd;
mod snils;

pub use mode::ServiceMode;
pub use observe::{CallObserver, CallOutcome, NoopObserver};
pub use oid::{Oid, OidError};
pub use outcome::Failure;
pub use personal::{Personal, scrub_personal};
pub use snils::{Snils, SnilsError};
