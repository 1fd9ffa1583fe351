//! Loading a containers/common seccomp profile (`/usr/share/containers/seccomp.json`)
//! and filtering it into the OCI form for one container, like
//! `containers/common/pkg/seccomp` does: rules are kept or dropped by the host
//! architecture, the container's capabilities and the kernel version.

use std::path::{Path, PathBuf};

use serde::Deserialize;

use super::types::{Seccomp, SeccompArg, SeccompSyscall};
use crate::OciError;

/// Where podman looks for the default profile, in order.
pub const DEFAULT_SECCOMP_PATHS: &[&str] = &[
    "/etc/containers/seccomp.json",
    "/usr/share/containers/seccomp.json",
];

/// The first default profile that exists.
pub fn default_seccomp_profile() -> Option<PathBuf> {
    DEFAULT_SECCOMP_PATHS
        .iter()
        .map(PathBuf::from)
        .find(|p| p.is_file())
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Profile {
    default_action: String,
    #[serde(default)]
    default_errno_ret: Option<u32>,
    #[serde(default)]
    architectures: Option<Vec<String>>,
    #[serde(default)]
    arch_map: Option<Vec<ArchMap>>,
    #[serde(default)]
    syscalls: Option<Vec<Rule>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ArchMap {
    architecture: String,
    #[serde(default)]
    sub_architectures: Option<Vec<String>>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Rule {
    #[serde(default)]
    names: Option<Vec<String>>,
    #[serde(default)]
    name: Option<String>,
    action: String,
    #[serde(default)]
    errno_ret: Option<u32>,
    #[serde(default)]
    args: Option<Vec<Arg>>,
    #[serde(default)]
    includes: Option<Filter>,
    #[serde(default)]
    excludes: Option<Filter>,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct Arg {
    index: u32,
    value: u64,
    #[serde(default)]
    value_two: u64,
    op: String,
}

#[derive(Debug, Deserialize, Default)]
#[serde(rename_all = "camelCase")]
struct Filter {
    #[serde(default)]
    caps: Option<Vec<String>>,
    #[serde(default)]
    arches: Option<Vec<String>>,
    #[serde(default)]
    min_kernel: Option<String>,
}

/// Go's `GOARCH` name of the host and the native seccomp architecture.
fn host_arch() -> (&'static str, &'static str) {
    match std::env::consts::ARCH {
        "x86_64" => ("amd64", "SCMP_ARCH_X86_64"),
        "x86" => ("386", "SCMP_ARCH_X86"),
        "aarch64" => ("arm64", "SCMP_ARCH_AARCH64"),
        "arm" => ("arm", "SCMP_ARCH_ARM"),
        "powerpc64" => ("ppc64le", "SCMP_ARCH_PPC64LE"),
        "s390x" => ("s390x", "SCMP_ARCH_S390X"),
        "riscv64" => ("riscv64", "SCMP_ARCH_RISCV64"),
        "mips64" => ("mips64", "SCMP_ARCH_MIPS64"),
        other => (other, "SCMP_ARCH_NATIVE"),
    }
}

fn kernel_version() -> Option<(u32, u32)> {
    let uts = nix::sys::utsname::uname().ok()?;
    parse_kernel(&uts.release().to_string_lossy())
}

fn parse_kernel(s: &str) -> Option<(u32, u32)> {
    let mut it = s.split(|c: char| !c.is_ascii_digit());
    Some((it.next()?.parse().ok()?, it.next()?.parse().ok()?))
}

/// Loads `path` and filters it for a container with capability set `caps`
/// (names with the `CAP_` prefix).
pub fn load_profile(path: &Path, caps: &[String]) -> Result<Seccomp, OciError> {
    let bad = |reason: String| OciError::BadFile {
        what: "seccomp profile",
        path: path.to_path_buf(),
        reason,
    };
    let text = std::fs::read(path).map_err(|e| OciError::io(path, e))?;
    let profile: Profile = serde_json::from_slice(&text).map_err(|e| bad(e.to_string()))?;
    if profile.default_action.is_empty() {
        return Err(bad("empty defaultAction".into()));
    }
    let (goarch, native) = host_arch();
    let kernel = kernel_version();

    let mut architectures = Vec::new();
    if let Some(map) = &profile.arch_map {
        for a in map.iter().filter(|a| a.architecture == native) {
            architectures.push(a.architecture.clone());
            architectures.extend(a.sub_architectures.iter().flatten().cloned());
        }
    }
    if architectures.is_empty() {
        architectures = profile.architectures.clone().unwrap_or_default();
    }

    let has_cap = |c: &String| caps.iter().any(|x| x.eq_ignore_ascii_case(c));
    let kernel_at_least = |min: &str| match (kernel, parse_kernel(min)) {
        (Some(k), Some(m)) => k >= m,
        _ => true,
    };
    let mut syscalls = Vec::new();
    for rule in profile.syscalls.unwrap_or_default() {
        let ex = rule.excludes.unwrap_or_default();
        let inc = rule.includes.unwrap_or_default();
        if ex.arches.iter().flatten().any(|a| a == goarch) {
            continue;
        }
        if ex.caps.iter().flatten().any(has_cap) {
            continue;
        }
        if ex.min_kernel.as_deref().is_some_and(kernel_at_least) {
            continue;
        }
        if let Some(arches) = &inc.arches {
            if !arches.is_empty() && !arches.iter().any(|a| a == goarch) {
                continue;
            }
        }
        if let Some(need) = &inc.caps {
            if !need.iter().all(has_cap) {
                continue;
            }
        }
        if let Some(min) = inc.min_kernel.as_deref() {
            if !kernel_at_least(min) {
                continue;
            }
        }
        let mut names = rule.names.unwrap_or_default();
        if let Some(n) = rule.name {
            if !n.is_empty() {
                names.push(n);
            }
        }
        if names.is_empty() {
            return Err(bad(format!(
                "a rule with action {} has no names",
                rule.action
            )));
        }
        let errno_ret = if rule.action == "SCMP_ACT_ERRNO" || rule.action == "SCMP_ACT_TRACE" {
            rule.errno_ret
        } else {
            None
        };
        syscalls.push(SeccompSyscall {
            names,
            action: rule.action,
            errno_ret,
            args: rule
                .args
                .unwrap_or_default()
                .into_iter()
                .map(|a| SeccompArg {
                    index: a.index,
                    value: a.value,
                    value_two: a.value_two,
                    op: a.op,
                })
                .collect(),
        });
    }
    Ok(Seccomp {
        default_action: profile.default_action,
        default_errno_ret: profile.default_errno_ret,
        architectures,
        syscalls,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kernel_versions_parse() {
        assert_eq!(parse_kernel("6.18.0-1-amd64"), Some((6, 18)));
        assert_eq!(parse_kernel("5.4"), Some((5, 4)));
        assert_eq!(parse_kernel("x"), None);
    }
}
