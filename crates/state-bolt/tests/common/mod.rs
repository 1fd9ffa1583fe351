//! Shared test helpers: the Go bbolt checker (built on demand, as
//! crates/bolt's tests do) and the podman fixtures.
#![allow(dead_code)]

use std::path::{Path, PathBuf};

/// `shared/` beside the checkout.
pub fn shared_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../../shared")
}

pub fn ci() -> bool {
    std::env::var("CI").map(|v| v == "true").unwrap_or(false)
}

/// The podman 4.3.1 fixture directories (each with `bolt_state.db` and the JSON podman printed).
pub fn fixture_dirs() -> Vec<PathBuf> {
    let root = shared_dir().join("fixtures/podman-4.3.1");
    let mut out: Vec<PathBuf> = match std::fs::read_dir(&root) {
        Ok(rd) => rd
            .flatten()
            .map(|e| e.path())
            .filter(|p| p.join("bolt_state.db").is_file())
            .collect(),
        Err(e) => panic!("podman fixtures missing at {}: {e}", root.display()),
    };
    out.sort();
    assert!(
        out.len() >= 4,
        "expected the 4 podman 4.3.1 fixtures in {}",
        root.display()
    );
    out
}

/// The Go bbolt checker and its build live with rpod-bolt's tests; reuse them.
#[path = "../../../bolt/tests/common/mod.rs"]
mod bolt_common;

/// The Go bbolt checker binary, built once per test binary; `None` (with a
/// loud notice) when go or the bbolt sources are missing, a failure when CI=true.
pub fn boltcheck() -> Option<PathBuf> {
    bolt_common::boltcheck()
}

/// Asserts that real bbolt's checker accepts `file` (exit 0); returns its listing.
pub fn assert_boltcheck_ok(file: &Path) -> Option<String> {
    let bin = boltcheck()?;
    let (code, stdout, stderr) = bolt_common::run_boltcheck(&bin, file);
    assert_eq!(
        code,
        0,
        "bbolt rejects {}:\nstdout:\n{stdout}\nstderr:\n{stderr}",
        file.display()
    );
    Some(stdout)
}
