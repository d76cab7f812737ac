//! The relay: the outbox dispatcher that takes submissions to REMD, with its retry schedule
//! and its quota.
//!
//! Layout: `schedule` (the retry schedule, pure); `quota` (the cluster-wide token bucket,
//! pure; PostgreSQL applies it in one statement); `worker` (the workers: I/O around the
//! lifecycle).

pub mod quota;
pub mod schedule;
mod worker;

pub use worker::{Relay, RelaySettings};
