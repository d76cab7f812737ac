//! Shared by the tests and the `mutants` example.
pub mod mutate;
