//! A tiny busybox root filesystem, for tests and `cargo xtask rootfs DIR`.

use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};
use std::process::Command;

use crate::OciError;

/// Where busybox is looked for, in order.
pub const BUSYBOX_PATHS: &[&str] = &["/bin/busybox", "/usr/bin/busybox", "/usr/sbin/busybox"];

/// Applets linked when `busybox --list` is unavailable.
const FALLBACK_APPLETS: &[&str] = &[
    "sh", "true", "false", "echo", "cat", "sleep", "ls", "id", "env", "pwd", "hostname", "stty",
    "kill", "ps", "top", "mkdir", "touch", "rm", "printf", "test", "head", "tail", "grep", "wc",
    "dd", "trap", "uname", "date", "yes", "seq",
];

/// The first existing busybox (a static one is required: nothing else is copied).
pub fn find_busybox() -> Option<PathBuf> {
    BUSYBOX_PATHS
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

/// Builds a busybox rootfs in `dir` (created if missing): `/bin/busybox` and a
/// symlink per applet in `/bin`, `/etc/passwd` (root, nobody, a `test` user
/// 1000), `/etc/group`, and empty `/tmp` (1777), `/proc`, `/dev`, `/sys`,
/// `/root`, `/run`, `/var/tmp`, `/home/test`. `busybox` defaults to
/// [`find_busybox`]. Idempotent.
pub fn build_busybox_rootfs(dir: &Path, busybox: Option<&Path>) -> Result<(), OciError> {
    let bb = match busybox {
        Some(p) => p.to_path_buf(),
        None => find_busybox().ok_or_else(|| OciError::CommandNotFound {
            cmd: "busybox".into(),
            rootfs: PathBuf::from("/"),
        })?,
    };
    let mk = |p: &Path| std::fs::create_dir_all(p).map_err(|e| OciError::io(p, e));
    for d in [
        "bin",
        "sbin",
        "usr/bin",
        "usr/sbin",
        "etc",
        "tmp",
        "proc",
        "dev",
        "sys",
        "root",
        "run",
        "var/tmp",
        "home/test",
    ] {
        mk(&dir.join(d))?;
    }
    for d in ["tmp", "var/tmp"] {
        let p = dir.join(d);
        std::fs::set_permissions(&p, std::fs::Permissions::from_mode(0o1777))
            .map_err(|e| OciError::io(&p, e))?;
    }
    let target = dir.join("bin/busybox");
    if !target.exists() {
        std::fs::copy(&bb, &target).map_err(|e| OciError::io(&target, e))?;
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(0o755))
            .map_err(|e| OciError::io(&target, e))?;
    }
    let listed = Command::new(&bb)
        .arg("--list")
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| {
            String::from_utf8_lossy(&o.stdout)
                .lines()
                .map(str::trim)
                .filter(|l| !l.is_empty() && !l.contains('/'))
                .map(str::to_string)
                .collect::<Vec<_>>()
        })
        .unwrap_or_default();
    let applets: Vec<String> = if listed.is_empty() {
        FALLBACK_APPLETS.iter().map(|s| s.to_string()).collect()
    } else {
        listed
    };
    for a in applets.iter().filter(|a| a.as_str() != "busybox") {
        let link = dir.join("bin").join(a);
        if std::fs::symlink_metadata(&link).is_err() {
            symlink("busybox", &link).map_err(|e| OciError::io(&link, e))?;
        }
    }
    let files = [
        (
            "etc/passwd",
            "root:x:0:0:root:/root:/bin/sh\ntest:x:1000:1000:test:/home/test:/bin/sh\nnobody:x:65534:65534:nobody:/nonexistent:/bin/false\n",
        ),
        (
            "etc/group",
            "root:x:0:\ntty:x:5:\nwheel:x:10:test\ntest:x:1000:\nnogroup:x:65534:\n",
        ),
    ];
    for (f, content) in files {
        let p = dir.join(f);
        std::fs::write(&p, content).map_err(|e| OciError::io(&p, e))?;
    }
    Ok(())
}
