//! Reading the workspace's own sources, for the tests that check them (`layering.rs`,
//! `config_fields.rs`).

use std::path::{Path, PathBuf};

/// The crates' source directories, relative to the workspace root.
pub const CRATES: &[&str] = &[
    "src",
    "gost/src",
    "schematron/src",
    "semd/src",
    "adapters/contract/src",
    "adapters/frmr/src",
    "adapters/http/src",
    "adapters/nsi/src",
    "adapters/packages/src",
    "adapters/remd/src",
    "adapters/sandbox/src",
    "adapters/verifier/src",
];

/// Every `.rs` file under `dir`, recursively.
pub fn rust_files(dir: &Path, out: &mut Vec<PathBuf>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            rust_files(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            out.push(path);
        }
    }
}
