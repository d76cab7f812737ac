//! The relay: the outbox dispatcher that takes submissions to REMD. When to try again is the
//! lifecycle's (`crate::lifecycle::schedule`); its calls are paced by REMD's quota
//! (`crate::quota::QuotaClient`).
//!
//! Layout: `settings` (`[relay]`, as the relay uses it), `worker` (the workers: I/O around
//! the lifecycle).

mod settings;
mod worker;

pub use settings::RelayConfig;
pub use worker::{CUT_CALLS_END_WITHIN, Relay};
