//! Helpers for rpod end-to-end tests: a hermetic environment per test and a
//! way to run the real `rpod` binary in it.

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The `rpod` binary under test (built by cargo for this workspace).
pub fn rpod_bin() -> PathBuf {
    if let Some(p) = std::env::var_os("RPOD_BIN") {
        return PathBuf::from(p);
    }
    // tests/ → workspace root → target/<profile>/rpod
    let exe = std::env::current_exe().expect("test executable path");
    let profile_dir = exe
        .parent()
        .and_then(Path::parent)
        .expect("target/<profile>/deps/<test>");
    let bin = profile_dir.join("rpod");
    assert!(
        bin.exists(),
        "{} not found: build it first (cargo build -p rpod-cli), as `cargo xtask ci` does",
        bin.display()
    );
    bin
}

/// A hermetic rpod environment: its own root, runroot, tmpdir, lock path,
/// events log and cgroup parent, all removed when dropped.
#[derive(Debug)]
pub struct Env {
    pub dir: tempfile::TempDir,
    /// A config file with every path pointed into `dir`.
    pub config: PathBuf,
}

/// The result of one rpod invocation.
#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl From<Output> for Run {
    fn from(o: Output) -> Self {
        Run {
            code: o.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&o.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&o.stderr).into_owned(),
        }
    }
}

impl Env {
    /// A fresh environment.
    pub fn new() -> Self {
        let dir = tempfile::Builder::new()
            .prefix("rpod-e2e-")
            .tempdir()
            .expect("temp dir");
        let base = dir.path();
        let tag = base
            .file_name()
            .unwrap()
            .to_string_lossy()
            .replace(|c: char| !c.is_ascii_alphanumeric(), "");
        let config = base.join("rpod.conf");
        std::fs::write(
            &config,
            format!(
                "root = \"{b}/root\"\nrunroot = \"{b}/run\"\ntmp_dir = \"{b}/tmp\"\n\
                 lock_path = \"rpod_test_{tag}\"\ncgroup_parent = \"/rpod-test-{tag}\"\n\
                 events_logfile_path = \"{b}/events.log\"\n",
                b = base.display()
            ),
        )
        .expect("write config");
        Env { dir, config }
    }

    /// A path inside the environment.
    pub fn path(&self, rel: &str) -> PathBuf {
        self.dir.path().join(rel)
    }

    /// `rpod --config <env config> ARGS`.
    pub fn cmd(&self) -> Command {
        let mut c = Command::new(rpod_bin());
        c.arg("--config").arg(&self.config);
        c
    }

    /// Runs rpod with `args` and collects its output.
    pub fn rpod(&self, args: &[&str]) -> Run {
        self.cmd().args(args).output().expect("run rpod").into()
    }
}

impl Default for Env {
    fn default() -> Self {
        Self::new()
    }
}

/// Runs the rpod binary with exactly `args` (no config added).
pub fn rpod_raw(args: &[&str]) -> Run {
    Command::new(rpod_bin())
        .args(args)
        .output()
        .expect("run rpod")
        .into()
}
