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
    /// The SHM lock segment name of this environment.
    pub lock_name: String,
    /// The cgroup parent of this environment's containers.
    pub cgroup_parent: String,
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
        Env {
            dir,
            config,
            lock_name: format!("rpod_test_{tag}"),
            cgroup_parent: format!("/rpod-test-{tag}"),
        }
    }

    /// A busybox root filesystem shared by the tests (built once, under the
    /// build's `target/tmp`, so that nothing is left in the system's /tmp).
    pub fn rootfs() -> &'static Path {
        static ROOTFS: std::sync::OnceLock<PathBuf> = std::sync::OnceLock::new();
        ROOTFS.get_or_init(|| {
            let target = rpod_bin()
                .parent()
                .and_then(Path::parent)
                .map(Path::to_path_buf)
                .expect("target directory");
            let dir = target.join("tmp").join("rpod-e2e-rootfs");
            rpod_oci::rootfs::build_busybox_rootfs(&dir, None)
                .expect("busybox rootfs (install busybox-static: cargo xtask deps)");
            dir
        })
    }

    /// The rootfs path as a string argument.
    pub fn rootfs_arg() -> String {
        Self::rootfs().display().to_string()
    }

    /// The cgroup directories of this environment's containers that exist
    /// (in any v1 hierarchy or the unified one): the one of `id`, or with an
    /// empty `id` every container cgroup under the environment's parent.
    pub fn leftover_cgroups(&self, id: &str) -> Vec<PathBuf> {
        let mut found = Vec::new();
        if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
            for h in rd.flatten() {
                let parent = h.path().join(self.cgroup_parent.trim_start_matches('/'));
                if !id.is_empty() {
                    let p = parent.join(id);
                    if p.exists() {
                        found.push(p);
                    }
                } else if let Ok(children) = std::fs::read_dir(&parent) {
                    found.extend(children.flatten().map(|c| c.path()).filter(|p| p.is_dir()));
                }
            }
        }
        found
    }

    /// Mount points under this environment's directory.
    pub fn leftover_mounts(&self) -> Vec<String> {
        let base = self.dir.path().display().to_string();
        std::fs::read_to_string("/proc/self/mountinfo")
            .unwrap_or_default()
            .lines()
            .filter_map(|l| l.split(' ').nth(4).map(String::from))
            .filter(|m| m.starts_with(&base))
            .collect()
    }

    /// The runc state directories of this environment's containers.
    pub fn runc_states(&self) -> Vec<String> {
        std::fs::read_dir(self.path("run/runc"))
            .map(|rd| {
                rd.flatten()
                    .map(|e| e.file_name().to_string_lossy().into_owned())
                    .collect()
            })
            .unwrap_or_default()
    }

    /// A fresh environment for a test that runs real containers, or `None`
    /// when runc, conmon, busybox or root are missing (a failure under CI=true;
    /// see [`have_container_tools`]).
    pub fn for_containers() -> Option<Self> {
        have_container_tools().then(Self::new)
    }

    /// `rpod inspect NAME` as JSON (the first document).
    pub fn inspect(&self, name: &str) -> serde_json::Value {
        json(&self.rpod(&["inspect", name]))[0].clone()
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

/// Asserts that an rpod invocation succeeded, showing its output if not.
pub fn ok(r: &Run) -> &Run {
    assert_eq!(r.code, 0, "rpod failed: {r:?}");
    r
}

/// The JSON output of a successful rpod invocation.
pub fn json(r: &Run) -> serde_json::Value {
    ok(r);
    serde_json::from_str(&r.stdout).unwrap_or_else(|e| panic!("not JSON ({e}): {r:?}"))
}

/// Polls `f` every 100 ms until it holds; fails the test after `secs` seconds.
pub fn wait_until(what: &str, secs: u64, mut f: impl FnMut() -> bool) {
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(secs);
    while !f() {
        assert!(
            std::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        std::thread::sleep(std::time::Duration::from_millis(100));
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

/// Pids of processes whose command line mentions `needle` (other than us).
fn processes_mentioning(needle: &str) -> Vec<u32> {
    let me = std::process::id();
    std::fs::read_dir("/proc")
        .map(|rd| {
            rd.flatten()
                .filter_map(|e| e.file_name().to_str()?.parse::<u32>().ok())
                .filter(|pid| *pid != me)
                .filter(|pid| {
                    std::fs::read(format!("/proc/{pid}/cmdline"))
                        .map(|c| String::from_utf8_lossy(&c).contains(needle))
                        .unwrap_or(false)
                })
                .collect()
        })
        .unwrap_or_default()
}

impl Drop for Env {
    fn drop(&mut self) {
        // Remove every container (stopping it), then wait for the conmon
        // monitors and their exit commands (`rpod container cleanup`), which
        // would otherwise recreate the lock segment and directories after we
        // removed them; then the lock segment and cgroups.
        let _ = self.cmd().args(["rm", "-f", "--all"]).output();
        let base = self.dir.path().display().to_string();
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(15);
        while !processes_mentioning(&base).is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        let _ = std::fs::remove_file(Path::new("/dev/shm").join(&self.lock_name));
        if let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") {
            for h in rd.flatten() {
                let parent = h.path().join(self.cgroup_parent.trim_start_matches('/'));
                if let Ok(children) = std::fs::read_dir(&parent) {
                    for c in children.flatten() {
                        if c.path().is_dir() {
                            let _ = std::fs::remove_dir(c.path());
                        }
                    }
                }
                let _ = std::fs::remove_dir(&parent);
            }
        }
    }
}

/// Fails the test when a system dependency is missing and CI=true; otherwise
/// says loudly that the test cannot run here and returns false.
pub fn have_container_tools() -> bool {
    let missing: Vec<&str> = ["/usr/bin/conmon", "/bin/busybox"]
        .into_iter()
        .filter(|p| !Path::new(p).exists())
        .chain(
            (!["/usr/sbin/runc", "/usr/bin/runc", "/usr/local/bin/runc"]
                .iter()
                .any(|p| Path::new(p).exists()))
            .then_some("runc"),
        )
        .collect();
    let root = unsafe_free_is_root();
    if missing.is_empty() && root {
        return true;
    }
    let why = format!("missing {missing:?}, root: {root}");
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("container tests need runc, conmon, busybox-static and root in CI: {why}");
    }
    eprintln!("NOTICE: container test cannot run on this machine ({why}); install with `cargo xtask deps` and run as root");
    false
}

fn unsafe_free_is_root() -> bool {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("Uid:"))
                .and_then(|l| l.split_whitespace().nth(2).map(|u| u == "0"))
        })
        .unwrap_or(false)
}
