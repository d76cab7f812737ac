//! # egisz-packages
//!
//! The ministry's validation files for each SEMD kind — its XML Schema set and its ISO
//! Schematron — as rule packages a region keeps in a directory and updates without a
//! restart, and their run over a document: the XSD through the system's libxml2 (no
//! network, no DTDs), the schematron through `egisz-schematron`.
//!
//! A package is data that arrives later: its files are bounded in number and size, its XSD
//! set may not reach outside its directory, its schematron compiles under limits and runs
//! under a budget; a package that fails any of it is refused and the one in force stays.
//!
//! ## Layout
//!
//! - `package`: a package on disk — listing, identity (kind, hash, the schematron's own
//!   description line) and the safety check of its XSD set;
//! - `xsd`: libxml2's XML Schema validation on a pool of threads that keep their compiled
//!   schemas (they are not `Send`), and where in the document an error is;
//! - `catalog`: the directory's packages — lazy loading, rescans that replace a package only
//!   when the new one compiles, status, and [`Catalog::validate`].
//!
//! ## What it must not do
//!
//! - decide what a finding does to a submission (the gateway's policy does that);
//! - fetch anything: a schema location outside the package is refused before libxml2 sees
//!   it, and documents are parsed with network access off.
#![forbid(unsafe_code)]

mod catalog;
pub mod package;
pub mod xsd;

pub use catalog::{Catalog, Layers, Lookup, Package, PackageStatus, ScanReport, Settings, Validation};
pub use package::{PackageError, PackageId, PackageLimits};
