//! A small busybox root filesystem for tests and demos (rpod-oci builds it).

use std::path::Path;

use anyhow::{Context, Result};

/// Builds a busybox root filesystem in `dir` (created if missing).
pub fn build(dir: &Path) -> Result<()> {
    rpod_oci::rootfs::build_busybox_rootfs(dir, None).with_context(|| {
        format!(
            "building a busybox root filesystem in {} (needs busybox-static: cargo xtask deps)",
            dir.display()
        )
    })
}
