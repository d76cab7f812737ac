//! Staff verification: is this SNILS a medical worker of this organisation, in this
//! position, on this date — answered from FRMR through a shared database cache.
//!
//! - [`verdict`]: the rules (pure);
//! - [`shares`]: fair shares of FRMR between intake and the API's clients (pure): each
//!   client at most its share of the lookups in flight, intake a reserve of its own, and
//!   calls to FRMR taken in turns;
//! - [`StaffService`]: cache first; concurrent identical lookups coalesced into one FRMR
//!   call; a circuit breaker so a dead FRMR is not hammered; a stale cached answer when
//!   FRMR cannot answer;
//! - `settings`: `[frmr]`, as the service uses it.

mod service;
mod settings;
pub mod shares;
pub mod verdict;

pub use service::{CachePolicy, Lookup, LookupError, Source, StaffService};
pub use settings::FrmrConfig;
pub use shares::{Asker, SharePolicy};
pub use verdict::{Decision, Verdict, decide};
