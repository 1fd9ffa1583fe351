//! Looking things up *inside* a container's root filesystem from the host:
//! symlinks are resolved as if the rootfs were `/` (an absolute link target
//! restarts at the rootfs, `..` never climbs above it), so a hostile rootfs
//! cannot make rpod read host files.

use std::collections::VecDeque;
use std::io::Read;
use std::os::unix::fs::PermissionsExt;
use std::path::{Path, PathBuf};

use crate::OciError;

const MAX_SYMLINKS: u32 = 40;
const MAX_DB_FILE: u64 = 4 << 20;

/// Resolves `path` (interpreted inside the container, relative paths from `/`)
/// to a host path under `root`, following symlinks within the root.
/// Components that do not exist are kept literally. `None` on a symlink loop.
pub fn resolve_in_root(root: &Path, path: &str) -> Option<PathBuf> {
    let mut todo: VecDeque<String> = path
        .split('/')
        .filter(|c| !c.is_empty())
        .map(str::to_string)
        .collect();
    let mut cur: Vec<String> = Vec::new();
    let mut hops = 0u32;
    while let Some(c) = todo.pop_front() {
        match c.as_str() {
            "." => continue,
            ".." => {
                cur.pop();
                continue;
            }
            _ => {}
        }
        let mut candidate = root.to_path_buf();
        candidate.extend(cur.iter());
        candidate.push(&c);
        match std::fs::symlink_metadata(&candidate) {
            Ok(m) if m.file_type().is_symlink() => {
                hops += 1;
                if hops > MAX_SYMLINKS {
                    return None;
                }
                let target = std::fs::read_link(&candidate).ok()?;
                let t = target.to_string_lossy();
                if t.starts_with('/') {
                    cur.clear();
                }
                for part in t.split('/').filter(|p| !p.is_empty()).rev() {
                    todo.push_front(part.to_string());
                }
            }
            _ => cur.push(c),
        }
    }
    let mut out = root.to_path_buf();
    out.extend(cur.iter());
    Some(out)
}

fn is_executable(p: &Path) -> Option<bool> {
    let m = std::fs::metadata(p).ok()?;
    Some(m.is_file() && m.permissions().mode() & 0o111 != 0)
}

/// Finds the container command `cmd` in `rootfs` like runc does: a name
/// containing `/` is used as is (relative to `cwd`), any other name is searched
/// in the container's `PATH` (non-executable matches are skipped).
/// Returns the host path of the file.
pub fn find_command(
    rootfs: &Path,
    cmd: &str,
    path_env: &str,
    cwd: &str,
) -> Result<PathBuf, OciError> {
    let not_found = || OciError::CommandNotFound {
        cmd: cmd.into(),
        rootfs: rootfs.to_path_buf(),
    };
    if cmd.is_empty() {
        return Err(not_found());
    }
    if cmd.contains('/') {
        let inside = if cmd.starts_with('/') {
            cmd.to_string()
        } else {
            format!("{}/{}", cwd.trim_end_matches('/'), cmd)
        };
        let host = resolve_in_root(rootfs, &inside).ok_or_else(not_found)?;
        return match is_executable(&host) {
            None => Err(not_found()),
            Some(true) => Ok(host),
            Some(false) => Err(OciError::CommandNotExecutable {
                cmd: cmd.into(),
                path: host,
            }),
        };
    }
    for dir in path_env.split(':') {
        let dir = if dir.is_empty() { "." } else { dir };
        let inside = if dir.starts_with('/') {
            format!("{dir}/{cmd}")
        } else {
            format!("{}/{dir}/{cmd}", cwd.trim_end_matches('/'))
        };
        if let Some(host) = resolve_in_root(rootfs, &inside) {
            if is_executable(&host) == Some(true) {
                return Ok(host);
            }
        }
    }
    Err(not_found())
}

/// Reads a small regular file inside the rootfs (`/etc/passwd`, …); `None` if
/// it is missing, not a regular file (a FIFO would hang us), or too large.
fn read_db_file(rootfs: &Path, inside: &str) -> Option<String> {
    let host = resolve_in_root(rootfs, inside)?;
    let m = std::fs::symlink_metadata(&host).ok()?;
    if !m.is_file() || m.len() > MAX_DB_FILE {
        return None;
    }
    let mut s = String::new();
    std::fs::File::open(&host)
        .ok()?
        .take(MAX_DB_FILE)
        .read_to_string(&mut s)
        .ok()?;
    Some(s)
}

/// A resolved `--user`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ResolvedUser {
    /// uid.
    pub uid: u32,
    /// gid.
    pub gid: u32,
    /// Supplementary groups from the rootfs `/etc/group`.
    pub additional_gids: Vec<u32>,
    /// Home directory from `/etc/passwd`, if listed.
    pub home: Option<String>,
}

/// Resolves `user[:group]` (numbers or names) against the rootfs's
/// `/etc/passwd` and `/etc/group`. Empty means root.
pub fn resolve_user(rootfs: &Path, spec: &str) -> Result<ResolvedUser, OciError> {
    let bad = |expected: &str| OciError::InvalidSpec {
        field: "user".into(),
        value: spec.into(),
        expected: expected.into(),
    };
    let (u, g) = match spec.split_once(':') {
        Some((u, g)) => (u, Some(g)),
        None => (spec, None),
    };
    let u = if u.is_empty() { "0" } else { u };
    let passwd = read_db_file(rootfs, "/etc/passwd").unwrap_or_default();
    let entries: Vec<Vec<&str>> = passwd
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 4)
        .collect();
    let entry = match u.parse::<u32>() {
        Ok(uid) => entries.iter().find(|f| f[2].parse() == Ok(uid)),
        Err(_) => entries.iter().find(|f| f[0] == u),
    };
    let uid = match u.parse::<u32>() {
        Ok(n) => n,
        Err(_) => entry.and_then(|f| f[2].parse().ok()).ok_or_else(|| {
            bad("a numeric uid or a user name listed in the container's /etc/passwd")
        })?,
    };
    let user_name = entry.map(|f| f[0].to_string());
    let group = read_db_file(rootfs, "/etc/group").unwrap_or_default();
    let groups: Vec<Vec<&str>> = group
        .lines()
        .filter(|l| !l.starts_with('#'))
        .map(|l| l.split(':').collect::<Vec<_>>())
        .filter(|f| f.len() >= 3)
        .collect();
    let gid = match g {
        Some("") => return Err(bad("uid[:gid] with a non-empty group")),
        Some(g) => match g.parse::<u32>() {
            Ok(n) => n,
            Err(_) => groups
                .iter()
                .find(|f| f[0] == g)
                .and_then(|f| f[2].parse().ok())
                .ok_or_else(|| {
                    bad("a numeric gid or a group name listed in the container's /etc/group")
                })?,
        },
        None => entry.and_then(|f| f[3].parse().ok()).unwrap_or(0),
    };
    let mut additional_gids = Vec::new();
    if let (Some(name), None) = (&user_name, g) {
        for f in &groups {
            let members = f.get(3).copied().unwrap_or("");
            if members.split(',').any(|m| m == name) {
                if let Ok(n) = f[2].parse::<u32>() {
                    if n != gid && !additional_gids.contains(&n) {
                        additional_gids.push(n);
                    }
                }
            }
        }
    }
    Ok(ResolvedUser {
        uid,
        gid,
        additional_gids,
        home: entry.and_then(|f| f.get(5)).map(|s| s.to_string()),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    #[test]
    fn symlinks_stay_inside_root() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        std::fs::create_dir_all(r.join("bin")).unwrap();
        std::fs::create_dir_all(r.join("usr/bin")).unwrap();
        symlink("/etc/passwd", r.join("escape")).unwrap();
        symlink("../../../../etc", r.join("bin/up")).unwrap();
        symlink("/usr/bin", r.join("sbin")).unwrap();
        assert_eq!(resolve_in_root(r, "/escape").unwrap(), r.join("etc/passwd"));
        assert_eq!(resolve_in_root(r, "/bin/up/x").unwrap(), r.join("etc/x"));
        assert_eq!(
            resolve_in_root(r, "/sbin/ls").unwrap(),
            r.join("usr/bin/ls")
        );
        symlink("loop", r.join("loop")).unwrap();
        assert!(resolve_in_root(r, "/loop").is_none());
    }

    #[test]
    fn users_resolve_from_rootfs() {
        let t = tempfile::tempdir().unwrap();
        let r = t.path();
        std::fs::create_dir_all(r.join("etc")).unwrap();
        std::fs::write(
            r.join("etc/passwd"),
            "root:x:0:0:root:/root:/bin/sh\nbob:x:1000:1001:Bob:/home/bob:/bin/sh\n",
        )
        .unwrap();
        std::fs::write(
            r.join("etc/group"),
            "root:x:0:\nbob:x:1001:\nwheel:x:10:bob,alice\n",
        )
        .unwrap();
        let u = resolve_user(r, "bob").unwrap();
        assert_eq!(
            (u.uid, u.gid, u.additional_gids.clone()),
            (1000, 1001, vec![10])
        );
        assert_eq!(u.home.as_deref(), Some("/home/bob"));
        let u = resolve_user(r, "1000:wheel").unwrap();
        assert_eq!((u.uid, u.gid), (1000, 10));
        let u = resolve_user(r, "4242").unwrap();
        assert_eq!((u.uid, u.gid), (4242, 0));
        let e = resolve_user(r, "nobody-here").unwrap_err().to_string();
        assert!(
            e.contains("nobody-here") && e.contains("/etc/passwd"),
            "{e}"
        );
        assert!(resolve_user(r, "bob:nogroup").is_err());
    }
}
