//! The relay: the outbox dispatcher that takes submissions to REMD, with its retry schedule
//! and its quota.
//!
//! Layout: `schedule` (the retry schedule, pure); `quota` (the token bucket callers reserve
//! their slots from, pure: PostgreSQL applies it in one statement for the cluster, the
//! workers in memory on SQLite; the margin and the late-caller rule); `worker` (the
//! workers: I/O around the lifecycle).

pub mod quota;
pub mod schedule;
mod worker;

pub use worker::{CUT_CALLS_END_WITHIN, Relay, RelaySettings};
