//! Shared by the tests and the `mutants` example.
#![allow(dead_code, reason = "each test binary uses part of the generator")]
pub mod mutate;
