//! The relay: the outbox dispatcher that takes submissions to REMD. When to try again is the
//! lifecycle's (`crate::lifecycle::schedule`); its calls are paced by REMD's quota
//! (`crate::quota::QuotaClient`).
//!
//! Layout: `worker` (the workers: I/O around the lifecycle).

mod worker;

pub use worker::{CUT_CALLS_END_WITHIN, Relay, RelaySettings};
