//! A small busybox root filesystem for tests and demos.

use std::os::unix::fs::symlink;
use std::path::Path;

use anyhow::{bail, Context, Result};

const BUSYBOX: &str = "/bin/busybox";

/// Builds a busybox root filesystem in `dir` (created if missing).
pub fn build(dir: &Path) -> Result<()> {
    if !Path::new(BUSYBOX).exists() {
        bail!("{BUSYBOX} not found: install busybox-static (cargo xtask deps)");
    }
    for d in ["bin", "etc", "tmp", "proc", "sys", "dev", "root", "var", "run"] {
        std::fs::create_dir_all(dir.join(d)).with_context(|| format!("mkdir {}", dir.join(d).display()))?;
    }
    std::fs::copy(BUSYBOX, dir.join("bin/busybox")).context("copy busybox")?;
    let list = std::process::Command::new(BUSYBOX)
        .arg("--list")
        .output()
        .context("busybox --list")?;
    for applet in String::from_utf8_lossy(&list.stdout).lines() {
        let link = dir.join("bin").join(applet);
        if applet != "busybox" && !link.exists() {
            symlink("busybox", &link).with_context(|| format!("symlink {}", link.display()))?;
        }
    }
    std::fs::write(dir.join("etc/passwd"), "root:x:0:0:root:/root:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n")?;
    std::fs::write(dir.join("etc/group"), "root:x:0:\nnogroup:x:65534:\n")?;
    Ok(())
}
