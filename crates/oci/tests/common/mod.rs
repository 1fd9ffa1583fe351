//! Shared helpers of the integration tests: real runc + conmon, every path in a
//! temp dir, a unique cgroup parent, and a Drop guard that cleans up.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::Duration;

use rpod_oci::spec::{self, SpecOptions};
use rpod_oci::{Conmon, ConmonMonitor, CreateRequest, OciRuntime};

pub const RUNC: &str = "/usr/sbin/runc";
pub const CONMON: &str = "/usr/bin/conmon";

fn in_ci() -> bool {
    std::env::var("CI").map(|v| v == "true").unwrap_or(false)
}

/// Whether the system can run real containers. Outside CI a missing
/// dependency makes the caller return early (with a message); under
/// `CI=true` it fails the test loudly.
pub fn have_container_deps() -> bool {
    let mut missing = Vec::new();
    for p in [RUNC, CONMON] {
        if !Path::new(p).is_file() {
            missing.push(p.to_string());
        }
    }
    if rpod_oci::rootfs::find_busybox().is_none() {
        missing.push("busybox (static)".into());
    }
    if !nix::unistd::geteuid().is_root() {
        missing.push("root privileges".into());
    }
    if missing.is_empty() {
        return true;
    }
    if in_ci() {
        panic!("CI=true but the container tests' dependencies are missing: {missing:?}");
    }
    eprintln!("NOT RUN (missing {missing:?}); set CI=true to make this a failure");
    false
}

/// A fresh 64-hex id.
pub fn new_id() -> String {
    use rand::Rng;
    let mut r = rand::thread_rng();
    (0..64)
        .map(|_| format!("{:x}", r.gen_range(0..16u8)))
        .collect()
}

/// Builds a busybox rootfs in `dir`.
pub fn rootfs(dir: &Path) -> PathBuf {
    let r = dir.join("rootfs");
    rpod_oci::rootfs::build_busybox_rootfs(&r, None).expect("building the busybox rootfs");
    r
}

/// One test's world.
pub struct TestEnv {
    pub dir: tempfile::TempDir,
    pub rootfs: PathBuf,
    pub runtime: OciRuntime,
    pub monitor: ConmonMonitor,
    pub exit_dir: PathBuf,
    pub cgroup_parent: String,
    ids: Mutex<Vec<String>>,
}

impl TestEnv {
    pub fn new() -> TestEnv {
        let dir = tempfile::Builder::new()
            .prefix("rpod-oci-")
            .tempdir()
            .unwrap();
        let rootfs = rootfs(dir.path());
        let mut cfg = rpod_config::RuntimeConfig::defaults(&rpod_config::UserDirs::current());
        cfg.runroot = dir.path().join("run");
        let runtime = OciRuntime::find(&cfg, Some(RUNC)).unwrap();
        assert_eq!(runtime.state_root, dir.path().join("run/runc"));
        let monitor = ConmonMonitor::new(Conmon::find(&cfg, Some(Path::new(CONMON))).unwrap());
        let suffix: String = new_id()[..12].to_string();
        TestEnv {
            exit_dir: dir.path().join("exits"),
            cgroup_parent: format!("/rpod-test-{suffix}"),
            rootfs,
            runtime,
            monitor,
            dir,
            ids: Mutex::new(Vec::new()),
        }
    }

    pub fn bundle(&self, id: &str) -> PathBuf {
        self.dir.path().join("bundles").join(&id[..12])
    }

    /// Options for a container running `args`, registered for cleanup.
    pub fn opts(&self, id: &str, args: &[&str]) -> SpecOptions {
        self.ids.lock().unwrap().push(id.to_string());
        SpecOptions {
            id: id.into(),
            rootfs: self.rootfs.clone(),
            args: args.iter().map(|s| s.to_string()).collect(),
            cgroups_path: spec::cgroups_path(
                rpod_config::CgroupManager::Cgroupfs,
                &self.cgroup_parent,
                id,
            ),
            ..SpecOptions::default()
        }
    }

    pub fn request(&self, id: &str) -> CreateRequest {
        CreateRequest::new(id, self.bundle(id), &self.exit_dir)
    }

    /// Writes the bundle for `opts` and returns the create request for it.
    pub fn prepare(&self, opts: &SpecOptions) -> CreateRequest {
        spec::write_bundle(opts, &self.bundle(&opts.id)).expect("writing the bundle");
        self.request(&opts.id)
    }
}

/// Removes `<hierarchy>/<parent>` (and leftover children) in every cgroup hierarchy.
fn remove_cgroup_parent(parent: &str) {
    let rel = parent.trim_start_matches('/');
    let Ok(rd) = std::fs::read_dir("/sys/fs/cgroup") else {
        return;
    };
    for h in rd.flatten() {
        let p = h.path().join(rel);
        if !p.is_dir() {
            continue;
        }
        if let Ok(children) = std::fs::read_dir(&p) {
            for c in children.flatten() {
                if c.path().is_dir() {
                    let _ = std::fs::remove_dir(c.path());
                }
            }
        }
        for _ in 0..50 {
            if std::fs::remove_dir(&p).is_ok() || !p.exists() {
                break;
            }
            std::thread::sleep(Duration::from_millis(20));
        }
    }
}

/// Whether `<hierarchy>/<parent>` exists in any cgroup hierarchy.
pub fn cgroup_parent_exists(parent: &str) -> bool {
    let rel = parent.trim_start_matches('/');
    std::fs::read_dir("/sys/fs/cgroup")
        .map(|rd| rd.flatten().any(|h| h.path().join(rel).exists()))
        .unwrap_or(false)
}

impl Drop for TestEnv {
    fn drop(&mut self) {
        let ids = self.ids.lock().map(|v| v.clone()).unwrap_or_default();
        for id in &ids {
            let _ = self.runtime.kill(id, 9, false);
            if let Err(e) = self.runtime.delete(id, true) {
                eprintln!("cleanup: runc delete {id}: {e}");
            }
            // Let the monitor finish (it runs the exit command, then exits).
            if let Ok(p) = std::fs::read_to_string(self.bundle(id).join("conmon.pid")) {
                if let Ok(pid) = p.trim().parse::<i32>() {
                    let _ = rpod_oci::exit::wait_for_pid(pid, Duration::from_secs(5));
                }
            }
        }
        remove_cgroup_parent(&self.cgroup_parent);
    }
}
