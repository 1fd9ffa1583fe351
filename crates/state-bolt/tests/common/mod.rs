//! Shared test helpers: the Go bbolt checker (built on demand, as
//! crates/bolt's tests do) and the podman fixtures.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::OnceLock;

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

/// The Go bbolt checker binary, built once per test binary; `None` (with a
/// loud notice) when go or the bbolt sources are missing, a failure when CI=true.
pub fn boltcheck() -> Option<PathBuf> {
    static BIN: OnceLock<Option<PathBuf>> = OnceLock::new();
    BIN.get_or_init(|| {
        let src = shared_dir().join("tools/boltcheck");
        let bbolt = Path::new("/usr/share/gocode/src/go.etcd.io/bbolt");
        let go_ok = Command::new("go").arg("version").output().map(|o| o.status.success()).unwrap_or(false);
        if !go_ok || !bbolt.is_dir() || !src.join("main.go").is_file() {
            let msg = format!(
                "boltcheck oracle unavailable: go found={go_ok}, bbolt source at {} present={}, checker source {} present={}",
                bbolt.display(),
                bbolt.is_dir(),
                src.display(),
                src.join("main.go").is_file()
            );
            assert!(!ci(), "{msg} (required when CI=true: apt-get install golang-go golang-github-coreos-bbolt-dev)");
            eprintln!("!!!!!!!! NOTICE: {msg}; skipping the Go bbolt checks !!!!!!!!");
            return None;
        }
        let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
        let work = tmp.join(format!("state-bolt-boltcheck-src-{}", std::process::id()));
        std::fs::create_dir_all(&work).unwrap();
        std::fs::copy(src.join("main.go"), work.join("main.go")).unwrap();
        let bin = tmp.join(format!("state-bolt-boltcheck-{}", std::process::id()));
        let out = Command::new("go")
            .args(["build", "-o"])
            .arg(&bin)
            .arg(".")
            .current_dir(&work)
            .env("GOPATH", "/usr/share/gocode")
            .env("GO111MODULE", "off")
            .env("GOCACHE", tmp.join("gocache"))
            .env("GOFLAGS", "")
            .output()
            .expect("run go build");
        assert!(out.status.success(), "building boltcheck failed: {}", String::from_utf8_lossy(&out.stderr));
        let _ = std::fs::remove_dir_all(&work);
        let fixed = tmp.join("state-bolt-boltcheck");
        std::fs::rename(&bin, &fixed).unwrap();
        Some(fixed)
    })
    .clone()
}

/// Asserts that real bbolt's checker accepts `file` (exit 0); returns its listing.
pub fn assert_boltcheck_ok(file: &Path) -> Option<String> {
    let bin = boltcheck()?;
    let out = Command::new(&bin)
        .arg(file)
        .output()
        .expect("run boltcheck");
    let stdout = String::from_utf8_lossy(&out.stdout).into_owned();
    assert!(
        out.status.success(),
        "bbolt rejects {}: rc={:?}\nstdout:\n{stdout}\nstderr:\n{}",
        file.display(),
        out.status.code(),
        String::from_utf8_lossy(&out.stderr)
    );
    Some(stdout)
}
