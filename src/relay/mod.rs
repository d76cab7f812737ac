//! The relay: the outbox dispatcher that takes submissions to REMD, with its retry schedule.

pub mod schedule;
mod worker;

pub use worker::{Relay, RelaySettings};
