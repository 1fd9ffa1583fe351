//! Records the compiler's version: a plugin must be built by the same
//! compiler as the rpod that loads it (Rust has no stable ABI).

use std::process::Command;

fn main() {
    let rustc = std::env::var("RUSTC").unwrap_or_else(|_| "rustc".into());
    let version = Command::new(&rustc)
        .arg("-V")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown rustc".into());
    println!("cargo:rustc-env=RPOD_RUSTC_VERSION={version}");
    println!("cargo:rerun-if-env-changed=RUSTC");
}
