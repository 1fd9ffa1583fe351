//! Capability names and podman's merge rules.

use crate::OciError;

/// Every capability runc 1.1 knows, in kernel number order (0..=40).
pub const ALL_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_DAC_READ_SEARCH",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_SETGID",
    "CAP_SETUID",
    "CAP_SETPCAP",
    "CAP_LINUX_IMMUTABLE",
    "CAP_NET_BIND_SERVICE",
    "CAP_NET_BROADCAST",
    "CAP_NET_ADMIN",
    "CAP_NET_RAW",
    "CAP_IPC_LOCK",
    "CAP_IPC_OWNER",
    "CAP_SYS_MODULE",
    "CAP_SYS_RAWIO",
    "CAP_SYS_CHROOT",
    "CAP_SYS_PTRACE",
    "CAP_SYS_PACCT",
    "CAP_SYS_ADMIN",
    "CAP_SYS_BOOT",
    "CAP_SYS_NICE",
    "CAP_SYS_RESOURCE",
    "CAP_SYS_TIME",
    "CAP_SYS_TTY_CONFIG",
    "CAP_MKNOD",
    "CAP_LEASE",
    "CAP_AUDIT_WRITE",
    "CAP_AUDIT_CONTROL",
    "CAP_SETFCAP",
    "CAP_MAC_OVERRIDE",
    "CAP_MAC_ADMIN",
    "CAP_SYSLOG",
    "CAP_WAKE_ALARM",
    "CAP_BLOCK_SUSPEND",
    "CAP_AUDIT_READ",
    "CAP_PERFMON",
    "CAP_BPF",
    "CAP_CHECKPOINT_RESTORE",
];

/// podman's default set (Debian's `containers.conf` `default_capabilities`),
/// in podman's order.
pub const DEFAULT_CAPS: &[&str] = &[
    "CAP_CHOWN",
    "CAP_DAC_OVERRIDE",
    "CAP_FOWNER",
    "CAP_FSETID",
    "CAP_KILL",
    "CAP_NET_BIND_SERVICE",
    "CAP_SETFCAP",
    "CAP_SETGID",
    "CAP_SETPCAP",
    "CAP_SETUID",
    "CAP_SYS_CHROOT",
];

/// Capabilities the running kernel supports (`/proc/sys/kernel/cap_last_cap`)
/// and that this process may pass on (its bounding set, `CapBnd` in
/// `/proc/self/status`), as podman's `--privileged` uses: a capability the
/// caller lacks (e.g. `CAP_SYS_RESOURCE` in a restricted VM) cannot be given.
pub fn host_caps() -> Vec<String> {
    let last = std::fs::read_to_string("/proc/sys/kernel/cap_last_cap")
        .ok()
        .and_then(|s| s.trim().parse::<usize>().ok())
        .unwrap_or(ALL_CAPS.len() - 1);
    let bounding = std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find_map(|l| l.strip_prefix("CapBnd:"))
                .and_then(|v| u64::from_str_radix(v.trim(), 16).ok())
        })
        .unwrap_or(u64::MAX);
    ALL_CAPS
        .iter()
        .enumerate()
        .take(last.saturating_add(1).min(ALL_CAPS.len()))
        .filter(|(bit, _)| *bit >= 64 || bounding & (1u64 << bit) != 0)
        .map(|(_, s)| s.to_string())
        .collect()
}

/// Normalises a capability name: case-insensitive, with or without `CAP_`.
/// `ALL` is returned as `ALL`.
pub fn normalize_cap(field: &str, name: &str) -> Result<String, OciError> {
    let up = name.trim().to_ascii_uppercase();
    if up == "ALL" {
        return Ok(up);
    }
    let full = if up.starts_with("CAP_") {
        up
    } else {
        format!("CAP_{up}")
    };
    if ALL_CAPS.contains(&full.as_str()) {
        Ok(full)
    } else {
        Err(OciError::InvalidSpec {
            field: field.into(),
            value: name.into(),
            expected:
                "a capability name such as NET_ADMIN or CAP_NET_ADMIN (case-insensitive), or ALL"
                    .into(),
        })
    }
}

/// podman's `MergeCapabilities`: start from `base`, drop `drops`, add `adds`.
/// `ALL` in `drops` empties the base; `ALL` in `adds` means every host capability.
pub fn merge_caps(
    base: &[&str],
    adds: &[String],
    drops: &[String],
) -> Result<Vec<String>, OciError> {
    let adds = adds
        .iter()
        .map(|c| normalize_cap("cap_add", c))
        .collect::<Result<Vec<_>, _>>()?;
    let drops = drops
        .iter()
        .map(|c| normalize_cap("cap_drop", c))
        .collect::<Result<Vec<_>, _>>()?;
    let drop_all = drops.iter().any(|c| c == "ALL");
    let add_all = adds.iter().any(|c| c == "ALL");
    if add_all && drop_all {
        return Err(OciError::InvalidSpec {
            field: "cap_add".into(),
            value: "ALL".into(),
            expected: "not both --cap-add=ALL and --cap-drop=ALL".into(),
        });
    }
    for a in &adds {
        if a != "ALL" && drops.contains(a) {
            return Err(OciError::InvalidSpec {
                field: "cap_add".into(),
                value: a.clone(),
                expected: "a capability that is not also dropped".into(),
            });
        }
    }
    let mut caps: Vec<String> = if add_all {
        host_caps()
    } else if drop_all {
        Vec::new()
    } else {
        base.iter().map(|s| s.to_string()).collect()
    };
    caps.retain(|c| !drops.contains(c));
    for a in adds {
        if a != "ALL" && !caps.contains(&a) {
            caps.push(a);
        }
    }
    Ok(caps)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn names_normalise() {
        assert_eq!(
            normalize_cap("cap_add", "net_admin").unwrap(),
            "CAP_NET_ADMIN"
        );
        assert_eq!(normalize_cap("cap_add", "CAP_kill").unwrap(), "CAP_KILL");
        assert_eq!(normalize_cap("cap_add", "all").unwrap(), "ALL");
        let e = normalize_cap("cap_add", "FLY").unwrap_err().to_string();
        assert!(e.contains("FLY") && e.contains("cap_add"), "{e}");
    }

    #[test]
    fn merge_rules() {
        let c = merge_caps(DEFAULT_CAPS, &["net_raw".into()], &["chown".into()]).unwrap();
        assert!(c.contains(&"CAP_NET_RAW".to_string()));
        assert!(!c.contains(&"CAP_CHOWN".to_string()));
        let c = merge_caps(DEFAULT_CAPS, &["kill".into()], &["all".into()]).unwrap();
        assert_eq!(c, vec!["CAP_KILL".to_string()]);
        let c = merge_caps(DEFAULT_CAPS, &["all".into()], &["sys_admin".into()]).unwrap();
        assert!(c.len() > 30 && !c.contains(&"CAP_SYS_ADMIN".to_string()));
        assert!(merge_caps(DEFAULT_CAPS, &["kill".into()], &["kill".into()]).is_err());
    }
}
