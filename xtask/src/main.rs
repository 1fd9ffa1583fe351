//! rpod's developer tasks, run as `cargo xtask <task>`.
//!
//! - `ci`: exactly what CI runs: install system packages, `cargo fmt --check`,
//!   `cargo clippy --all-targets -- -D warnings`, and the whole test suite.
//! - `deps`: install (idempotently, with apt-get) the system packages rpod and
//!   its tests need.
//! - `rootfs DIR`: build a small busybox root filesystem for tests and demos.
//! - `demo`: the main job, end to end on a fresh machine.
//! - `bench`: rpod and podman side by side (`RPOD_BENCH_N` repetitions, default
//!   10; `RPOD_BENCH_BIG` containers for the large `ps -a`, default 1000).

mod bench;
mod rootfs;

use std::path::{Path, PathBuf};
use std::process::Command;

use anyhow::{bail, Context, Result};

/// Debian packages rpod and its tests need.
pub const PACKAGES: &[&str] = &[
    "runc",
    "crun",
    "conmon",
    "catatonit",
    "busybox-static",
    "containernetworking-plugins",
    "netavark",
    "iptables",
    "uidmap",
    "podman",
    "golang-go",
    "golang-github-coreos-bbolt-dev",
    "python3",
    "procps",
    "systemd",
];

fn workspace_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("xtask lives in the workspace")
        .to_path_buf()
}

fn run(cmd: &mut Command) -> Result<()> {
    eprintln!("xtask: running {cmd:?}");
    let status = cmd
        .status()
        .with_context(|| format!("cannot run {cmd:?}"))?;
    if !status.success() {
        bail!("{cmd:?} failed with {status}");
    }
    Ok(())
}

fn cargo() -> Command {
    let mut c = Command::new(std::env::var("CARGO").unwrap_or_else(|_| "cargo".into()));
    c.current_dir(workspace_root());
    c
}

fn installed(pkg: &str) -> bool {
    Command::new("dpkg-query")
        .args(["-W", "-f=${Status}", pkg])
        .output()
        .map(|o| String::from_utf8_lossy(&o.stdout).contains("install ok installed"))
        .unwrap_or(false)
}

fn deps() -> Result<()> {
    let missing: Vec<&str> = PACKAGES.iter().copied().filter(|p| !installed(p)).collect();
    if missing.is_empty() {
        eprintln!(
            "xtask: all {} system packages are installed",
            PACKAGES.len()
        );
        return Ok(());
    }
    if !nix_is_root() {
        bail!(
            "missing system packages {}; run `cargo xtask deps` as root",
            missing.join(" ")
        );
    }
    run(Command::new("apt-get").arg("update").arg("-q"))?;
    run(Command::new("apt-get")
        .args(["install", "-y", "-q", "--no-install-recommends"])
        .args(&missing)
        .env("DEBIAN_FRONTEND", "noninteractive"))?;
    Ok(())
}

fn nix_is_root() -> bool {
    // SAFETY-free: read the effective uid from /proc.
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}

fn ci() -> Result<()> {
    deps()?;
    run(cargo().args(["fmt", "--all", "--check"]))?;
    run(cargo().args([
        "clippy",
        "--workspace",
        "--all-targets",
        "--",
        "-D",
        "warnings",
    ]))?;
    // libraries too: the e2e tests load the example plugin built with rpod
    run(cargo().args(["build", "--workspace"]))?;
    run(cargo().args(["test", "--workspace", "--no-fail-fast"]))?;
    Ok(())
}

/// The main job on a fresh machine: install what is needed, build rpod and a
/// busybox rootfs, run a real container under runc and conmon, and show it.
fn demo() -> Result<()> {
    deps()?;
    run(cargo().args(["build", "--package", "rpod-cli"]))?;
    let rpod = workspace_root().join("target/debug/rpod");
    let tmp = std::env::temp_dir().join(format!("rpod-demo-{}", std::process::id()));
    let rootfs = tmp.join("rootfs");
    rootfs::build(&rootfs)?;
    let conf = tmp.join("rpod.conf");
    std::fs::write(
        &conf,
        format!(
            "root = \"{t}/root\"\nrunroot = \"{t}/run\"\ntmp_dir = \"{t}/tmp\"\n\
             lock_path = \"rpod_demo_{pid}\"\ncgroup_parent = \"/rpod-demo-{pid}\"\n",
            t = tmp.display(),
            pid = std::process::id()
        ),
    )?;
    let rpod_cmd = |args: &[&str]| -> Result<()> {
        run(Command::new(&rpod).arg("--config").arg(&conf).args(args))
    };
    let r = rootfs.display().to_string();
    let result = (|| -> Result<()> {
        rpod_cmd(&["run", "--name", "demo", "--rootfs", &r, "sh", "-c",
            "echo hello from an rpod container; uname -a; id; hostname; cat /proc/1/cgroup | head -3"])?;
        rpod_cmd(&["ps", "-a"])?;
        rpod_cmd(&["rm", "demo"])?;
        Ok(())
    })();
    let _ = Command::new(&rpod)
        .arg("--config")
        .arg(&conf)
        .args(["rm", "-f", "--all"])
        .status();
    let _ = std::fs::remove_file(format!("/dev/shm/rpod_demo_{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&tmp);
    if let Ok(hierarchies) = std::fs::read_dir("/sys/fs/cgroup") {
        for h in hierarchies.flatten() {
            let _ = std::fs::remove_dir(h.path().join(format!("rpod-demo-{}", std::process::id())));
        }
    }
    result
}

fn main() -> Result<()> {
    let args: Vec<String> = std::env::args().skip(1).collect();
    match args.first().map(String::as_str) {
        Some("ci") => ci(),
        Some("deps") => deps(),
        Some("demo") => demo(),
        Some("bench") => {
            let n = std::env::var("RPOD_BENCH_N")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(10);
            let big = std::env::var("RPOD_BENCH_BIG")
                .ok()
                .and_then(|v| v.parse().ok())
                .unwrap_or(1000);
            run(cargo().args(["build", "--release", "--package", "rpod-cli"]))?;
            bench::run(&bench::release_rpod(&workspace_root()), n, big)
        }
        Some("rootfs") => {
            let dir = args.get(1).context("usage: cargo xtask rootfs DIR")?;
            rootfs::build(Path::new(dir))?;
            eprintln!("xtask: busybox root filesystem ready in {dir}");
            Ok(())
        }
        _ => bail!("usage: cargo xtask ci | deps | demo | bench | rootfs DIR"),
    }
}
