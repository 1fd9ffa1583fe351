//! `rpod cp`: copy files and directory trees between the host and a
//! container's root filesystem, running or stopped.
//!
//! Every path inside the container is resolved with `openat2(2)` and
//! `RESOLVE_IN_ROOT` against a descriptor of the container's root: absolute
//! symlinks and `..` are interpreted relative to the root, so a hostile link
//! such as `/etc/evil -> /../../../host-secret` or `dir -> /` can never lead
//! out of it. The trees are then walked one component at a time with
//! `O_NOFOLLOW` relative to already-open directory descriptors; symlinks
//! inside a copied tree are copied as links, never followed. Modes
//! (including setuid/sticky bits) are preserved.
//!
//! The container's root is what its processes see: for a running (or
//! paused) container, `/proc/<pid>/root`, with all its mounts (volumes,
//! tmpfs, generated files); for a stopped one, its root filesystem, except
//! under the destination of a bind mount or volume, which resolves to the
//! mount's source (as podman mounts volumes for `cp`). A read-only volume
//! is never written.

use std::fs::File;
use std::io::{Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::path::{Path, PathBuf};

use nix::fcntl::{openat, openat2, OFlag, OpenHow, ResolveFlag};
use nix::sys::stat::{fchmod, fstat, fstatat, mkdirat, FileStat, Mode, SFlag};
use nix::unistd::{symlinkat, unlinkat, UnlinkatFlags};

use crate::{Result, Runtime, RuntimeError};

/// One end of a copy: a host path or a path in a container.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum CopyPath {
    /// A path on the host.
    Host(PathBuf),
    /// A path inside container (id or name).
    Container {
        /// Container id or name.
        container: String,
        /// Path inside the container (absolute, or relative to `/`).
        path: String,
    },
}

impl CopyPath {
    /// Parses podman's `[CONTAINER:]PATH`. A path containing `/` before the
    /// first `:` or starting with `.` or `/` is a host path.
    pub fn parse(s: &str) -> CopyPath {
        if let Some((c, p)) = s.split_once(':') {
            if !c.is_empty() && !c.contains('/') && !s.starts_with('.') {
                return CopyPath::Container {
                    container: c.to_string(),
                    path: p.to_string(),
                };
            }
        }
        CopyPath::Host(PathBuf::from(s))
    }
}

fn err(op: &'static str, path: &str, e: nix::Error) -> RuntimeError {
    RuntimeError::io(op, path, std::io::Error::from(e))
}

fn own(fd: RawFd) -> OwnedFd {
    // SAFETY: every caller passes a descriptor that was just returned to it
    // by a successful open and is owned by nobody else.
    unsafe { OwnedFd::from_raw_fd(fd) }
}

/// Where paths are resolved: the host (`/`, links followed as usual) or a
/// container root (confined).
struct Side {
    root: OwnedFd,
    confined: bool,
    label: String,
    /// A read-only volume of a stopped container: never written.
    read_only: bool,
}

impl Side {
    fn host() -> Result<Side> {
        let fd = nix::fcntl::open(
            "/",
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| err("open", "/", e))?;
        Ok(Side {
            root: own(fd),
            confined: false,
            label: String::new(),
            read_only: false,
        })
    }

    fn container(rootfs: &Path, name: &str) -> Result<Side> {
        let fd = nix::fcntl::open(
            rootfs,
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| err("open the container root", &rootfs.display().to_string(), e))?;
        Ok(Side {
            root: own(fd),
            confined: true,
            label: format!("{name}:"),
            read_only: false,
        })
    }

    /// Opens `path` (following symlinks, confined to the root for a
    /// container) as an `O_PATH` descriptor.
    fn resolve(&self, path: &str, flags: OFlag) -> std::result::Result<OwnedFd, nix::Error> {
        let flags = flags | OFlag::O_CLOEXEC;
        if self.confined {
            let rel = path.trim_start_matches('/');
            let rel = if rel.is_empty() { "." } else { rel };
            let how = OpenHow::new()
                .flags(flags)
                .resolve(ResolveFlag::RESOLVE_IN_ROOT | ResolveFlag::RESOLVE_NO_MAGICLINKS);
            openat2(self.root.as_raw_fd(), rel, how).map(own)
        } else {
            openat(None, path, flags, Mode::empty()).map(own)
        }
    }
}

fn kind(st: &FileStat) -> SFlag {
    SFlag::from_bits_truncate(st.st_mode & SFlag::S_IFMT.bits())
}

fn perm(st: &FileStat) -> Mode {
    Mode::from_bits_truncate(st.st_mode & 0o7777)
}

/// A user bind mount or volume of a container (from its OCI spec).
#[derive(Debug, Clone, PartialEq, Eq)]
struct SpecBind {
    source: String,
    destination: String,
    read_only: bool,
}

/// The bind mount whose destination is the longest component-wise prefix
/// of `path` (`/data` holds `/data` and `/data/x`, not `/database`), with
/// the rest of the path inside it. Mounts whose source is gone (e.g. a
/// stopped container's generated files) do not count.
fn bind_mount_for(rec: &rpod_state::ContainerRecord, path: &str) -> Option<(SpecBind, String)> {
    let spec = rec.config.spec.to_value();
    let mounts = spec["mounts"].as_array()?;
    let path = path.trim_end_matches('/');
    let mut best: Option<(SpecBind, String)> = None;
    for m in mounts {
        if m["type"] != "bind" {
            continue;
        }
        let (Some(dst), Some(src)) = (m["destination"].as_str(), m["source"].as_str()) else {
            continue;
        };
        let dst = dst.trim_end_matches('/');
        let rest = match path.strip_prefix(dst) {
            Some("") => "/",
            Some(r) if r.starts_with('/') => r,
            _ => continue,
        };
        if best
            .as_ref()
            .is_some_and(|(b, _)| b.destination.len() >= dst.len())
        {
            continue;
        }
        if std::fs::symlink_metadata(src).is_err() {
            continue;
        }
        let read_only = m["options"]
            .as_array()
            .is_some_and(|o| o.iter().any(|x| x == "ro"));
        best = Some((
            SpecBind {
                source: src.to_string(),
                destination: dst.to_string(),
                read_only,
            },
            rest.to_string(),
        ));
    }
    best
}

/// Splits a path into (parent, last component); `/` and `.` components
/// are rejected as a last component.
fn split_last(path: &str) -> Option<(String, String)> {
    let trimmed = path.trim_end_matches('/');
    let (parent, name) = match trimmed.rsplit_once('/') {
        Some((p, n)) => (if p.is_empty() { "/" } else { p }, n),
        None => (".", trimmed),
    };
    if name.is_empty() || name == "." || name == ".." {
        return None;
    }
    Some((parent.to_string(), name.to_string()))
}

/// Counts what a copy did.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct CopyStats {
    /// Regular files written.
    pub files: u64,
    /// Directories created or entered.
    pub dirs: u64,
    /// Symlinks recreated.
    pub links: u64,
    /// Bytes of file content written.
    pub bytes: u64,
}

struct Copier<'a> {
    dst_label: &'a str,
    stats: CopyStats,
}

impl Copier<'_> {
    /// Copies the object `src` (an O_PATH fd, already resolved) to
    /// `name` in the directory `dst_dir`.
    fn copy_obj(
        &mut self,
        src: &OwnedFd,
        dst_dir: &OwnedFd,
        name: &str,
        shown: &str,
    ) -> Result<()> {
        let st = fstat(src.as_raw_fd()).map_err(|e| err("stat", shown, e))?;
        let k = kind(&st);
        if k == SFlag::S_IFDIR {
            self.copy_dir(src, &st, dst_dir, name, shown)
        } else if k == SFlag::S_IFREG {
            let input = openat(
                Some(src.as_raw_fd()),
                "",
                OFlag::O_RDONLY | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .or_else(|_| {
                nix::fcntl::open(
                    format!("/proc/self/fd/{}", src.as_raw_fd()).as_str(),
                    OFlag::O_RDONLY | OFlag::O_CLOEXEC,
                    Mode::empty(),
                )
            })
            .map_err(|e| err("open", shown, e))?;
            self.write_file(File::from(own(input)), &st, dst_dir, name, shown)
        } else if k == SFlag::S_IFLNK {
            let target = nix::fcntl::readlinkat(Some(src.as_raw_fd()), "")
                .map_err(|e| err("read link", shown, e))?;
            self.write_link(&target, dst_dir, name, shown)
        } else {
            tracing::warn!("cp: skipping special file {shown}");
            Ok(())
        }
    }

    fn remove_non_dir(&self, dst_dir: &OwnedFd, name: &str) {
        if let Ok(st) = fstatat(
            Some(dst_dir.as_raw_fd()),
            name,
            nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW,
        ) {
            if kind(&st) != SFlag::S_IFDIR {
                let _ = unlinkat(Some(dst_dir.as_raw_fd()), name, UnlinkatFlags::NoRemoveDir);
            }
        }
    }

    fn write_file(
        &mut self,
        mut input: File,
        st: &FileStat,
        dst_dir: &OwnedFd,
        name: &str,
        shown: &str,
    ) -> Result<()> {
        let target = format!("{}{name}", self.dst_label);
        // never write through an existing link: replace it
        self.remove_non_dir(dst_dir, name);
        let fd = openat(
            Some(dst_dir.as_raw_fd()),
            name,
            OFlag::O_WRONLY
                | OFlag::O_CREAT
                | OFlag::O_TRUNC
                | OFlag::O_NOFOLLOW
                | OFlag::O_CLOEXEC,
            Mode::from_bits_truncate(0o600),
        )
        .map_err(|e| err("create", &target, e))?;
        let mut out = File::from(own(fd));
        let mut buf = vec![0u8; 1 << 16];
        loop {
            let n = input
                .read(&mut buf)
                .map_err(|e| RuntimeError::io("read", shown, e))?;
            if n == 0 {
                break;
            }
            out.write_all(&buf[..n])
                .map_err(|e| RuntimeError::io("write", &target, e))?;
            self.stats.bytes += n as u64;
        }
        fchmod(out.as_raw_fd(), perm(st)).map_err(|e| err("chmod", &target, e))?;
        self.stats.files += 1;
        Ok(())
    }

    fn write_link(
        &mut self,
        target_text: &std::ffi::OsStr,
        dst_dir: &OwnedFd,
        name: &str,
        _shown: &str,
    ) -> Result<()> {
        let target = format!("{}{name}", self.dst_label);
        self.remove_non_dir(dst_dir, name);
        symlinkat(target_text, Some(dst_dir.as_raw_fd()), name)
            .map_err(|e| err("create symlink", &target, e))?;
        self.stats.links += 1;
        Ok(())
    }

    fn copy_dir(
        &mut self,
        src: &OwnedFd,
        st: &FileStat,
        dst_dir: &OwnedFd,
        name: &str,
        shown: &str,
    ) -> Result<()> {
        let target = format!("{}{name}", self.dst_label);
        match mkdirat(
            Some(dst_dir.as_raw_fd()),
            name,
            Mode::from_bits_truncate(0o700),
        ) {
            Ok(()) | Err(nix::Error::EEXIST) => {}
            Err(e) => return Err(err("create directory", &target, e)),
        }
        // O_NOFOLLOW: an existing link in the destination is refused, not followed
        let out = openat(
            Some(dst_dir.as_raw_fd()),
            name,
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| err("open directory (refusing to follow a link)", &target, e))?;
        let out = own(out);
        let dir_fd = openat(
            Some(src.as_raw_fd()),
            ".",
            OFlag::O_RDONLY | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| err("open directory", shown, e))?;
        let mut dir =
            nix::dir::Dir::from_fd(dir_fd).map_err(|e| err("read directory", shown, e))?;
        let mut names = Vec::new();
        for ent in dir.iter() {
            let ent = ent.map_err(|e| err("read directory", shown, e))?;
            let n = ent.file_name().to_string_lossy().into_owned();
            if n != "." && n != ".." {
                names.push(n);
            }
        }
        names.sort();
        let src_dir = own(openat(
            Some(src.as_raw_fd()),
            ".",
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        )
        .map_err(|e| err("open directory", shown, e))?);
        for n in names {
            let child_shown = format!("{}/{n}", shown.trim_end_matches('/'));
            let child = openat(
                Some(src_dir.as_raw_fd()),
                n.as_str(),
                OFlag::O_PATH | OFlag::O_NOFOLLOW | OFlag::O_CLOEXEC,
                Mode::empty(),
            )
            .map_err(|e| err("open", &child_shown, e))?;
            let sub = Copier {
                dst_label: self.dst_label,
                stats: CopyStats::default(),
            };
            let mut sub = sub;
            sub.copy_obj(&own(child), &out, &n, &child_shown)?;
            self.stats.files += sub.stats.files;
            self.stats.dirs += sub.stats.dirs;
            self.stats.links += sub.stats.links;
            self.stats.bytes += sub.stats.bytes;
        }
        fchmod(out.as_raw_fd(), perm(st)).map_err(|e| err("chmod", &target, e))?;
        self.stats.dirs += 1;
        Ok(())
    }
}

impl Runtime {
    fn copy_side(&self, p: &CopyPath) -> Result<(Side, String)> {
        match p {
            CopyPath::Host(h) => {
                let abs = if h.is_absolute() {
                    h.clone()
                } else {
                    std::env::current_dir()
                        .map_err(|e| RuntimeError::io("get", "the current directory", e))?
                        .join(h)
                };
                Ok((Side::host()?, abs.display().to_string()))
            }
            CopyPath::Container { container, path } => {
                let rec = self.lookup_container(container)?;
                let name = rec.config.name.clone();
                let path = format!("/{}", path.trim_start_matches('/'));
                // A running container: its root as its processes see it,
                // with every mount (volumes, tmpfs, generated files).
                if let Some(side) = self.live_root(&rec)? {
                    return Ok((side, path));
                }
                // Stopped: its root filesystem, or the bind mount or volume
                // whose destination holds the path (compared by components).
                if let Some((m, rest)) = bind_mount_for(&rec, &path) {
                    let src = Path::new(&m.source);
                    // a file mounted on its own: its directory, holding it
                    let (root, rest) = match (src.is_dir(), src.parent(), src.file_name()) {
                        (true, _, _) => (src, rest),
                        (false, Some(dir), Some(file)) if rest == "/" => {
                            (dir, format!("/{}", file.to_string_lossy()))
                        }
                        _ => (Path::new(&rec.config.rootfs), path.clone()),
                    };
                    let mut side = Side::container(root, &name)?;
                    side.read_only = m.read_only && root != Path::new(&rec.config.rootfs);
                    return Ok((side, rest));
                }
                Ok((Side::container(Path::new(&rec.config.rootfs), &name)?, path))
            }
        }
    }

    /// `/proc/<pid>/root` of a running (or paused) container, confined like
    /// a root filesystem. The state is read again after opening it, so a
    /// container that exited meanwhile (its pid perhaps reused) is not used.
    fn live_root(&self, rec: &rpod_state::ContainerRecord) -> Result<Option<Side>> {
        use rpod_state::ContainerStatus::{Paused, Running};
        let live =
            |s: &rpod_state::ContainerState| matches!(s.state, Running | Paused) && s.pid > 0;
        if !live(&rec.state) {
            return Ok(None);
        }
        let pid = rec.state.pid;
        let Ok(fd) = nix::fcntl::open(
            format!("/proc/{pid}/root").as_str(),
            OFlag::O_PATH | OFlag::O_DIRECTORY | OFlag::O_CLOEXEC,
            Mode::empty(),
        ) else {
            return Ok(None);
        };
        let fd = own(fd);
        let now = self.state().container_state(&rec.config.id)?;
        if !live(&now) || now.pid != pid {
            return Ok(None);
        }
        Ok(Some(Side {
            root: fd,
            confined: true,
            label: format!("{}:", rec.config.name),
            read_only: false,
        }))
    }

    /// `rpod cp SRC DST`: one side must be a container. Copies a file or a
    /// directory tree; when `DST` is an existing directory the source is
    /// copied into it under its own name, otherwise `DST` is created (its
    /// parent must exist). Paths in the container never resolve outside its
    /// root.
    pub fn copy(&self, src: &CopyPath, dst: &CopyPath) -> Result<CopyStats> {
        self.check_alive()?;
        match (src, dst) {
            (CopyPath::Host(_), CopyPath::Host(_)) => {
                return Err(RuntimeError::InvalidInput {
                    what: "cp arguments",
                    value: "two host paths".into(),
                    expected: "one of SRC and DST as CONTAINER:PATH".into(),
                })
            }
            (CopyPath::Container { .. }, CopyPath::Container { .. }) => {
                return Err(RuntimeError::InvalidInput {
                    what: "cp arguments",
                    value: "two container paths".into(),
                    expected: "one of SRC and DST on the host (copying between containers is not supported)".into(),
                })
            }
            _ => {}
        }
        let (sside, spath) = self.copy_side(src)?;
        let (dside, dpath) = self.copy_side(dst)?;
        if dside.read_only {
            return Err(RuntimeError::InvalidInput {
                what: "cp destination",
                value: format!("{}{dpath}", dside.label),
                expected: "a writable path (it is on a read-only volume of the container)".into(),
            });
        }
        let shown_src = format!("{}{spath}", sside.label);
        let src_fd = sside
            .resolve(&spath, OFlag::O_PATH)
            .map_err(|e| err("resolve the source", &shown_src, e))?;
        let src_name = match split_last(&spath) {
            Some((_, n)) => n,
            None => {
                // the root itself: copy its contents
                String::new()
            }
        };
        // Destination: an existing directory → into it; else create `name` in its parent.
        let shown_dst = format!("{}{dpath}", dside.label);
        let (dst_dir, dst_name) = match dside.resolve(&dpath, OFlag::O_PATH | OFlag::O_DIRECTORY) {
            Ok(dir) if !src_name.is_empty() => (dir, src_name),
            Ok(dir) => {
                // copying a root: merge into the directory
                let label = dside.label.clone();
                let mut c = Copier {
                    dst_label: &label,
                    stats: CopyStats::default(),
                };
                let st = fstat(src_fd.as_raw_fd()).map_err(|e| err("stat", &shown_src, e))?;
                let parent = dside
                    .resolve(
                        &split_last(&dpath).map_or("/".into(), |(p, _)| p),
                        OFlag::O_PATH | OFlag::O_DIRECTORY,
                    )
                    .map_err(|e| err("resolve", &shown_dst, e))?;
                let name = split_last(&dpath).map_or(".".into(), |(_, n)| n);
                drop(dir);
                c.copy_dir(&src_fd, &st, &parent, &name, &shown_src)?;
                return Ok(c.stats);
            }
            Err(nix::Error::ENOTDIR) | Err(nix::Error::ENOENT) => {
                if dpath.ends_with('/') {
                    return Err(RuntimeError::InvalidInput {
                        what: "cp destination",
                        value: shown_dst,
                        expected: "an existing directory (the path ends with /)".into(),
                    });
                }
                let Some((parent, name)) = split_last(&dpath) else {
                    return Err(RuntimeError::InvalidInput {
                        what: "cp destination",
                        value: shown_dst,
                        expected: "a path with a file name".into(),
                    });
                };
                let dir = dside
                    .resolve(&parent, OFlag::O_PATH | OFlag::O_DIRECTORY)
                    .map_err(|e| {
                        err(
                            "resolve the destination directory",
                            &format!("{}{parent}", dside.label),
                            e,
                        )
                    })?;
                (dir, name)
            }
            Err(e) => return Err(err("resolve the destination", &shown_dst, e)),
        };
        let label = dside.label.clone();
        let mut c = Copier {
            dst_label: &label,
            stats: CopyStats::default(),
        };
        c.copy_obj(&src_fd, &dst_dir, &dst_name, &shown_src)?;
        Ok(c.stats)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bind_mounts_match_by_whole_components_longest_first() {
        let t = tempfile::tempdir().unwrap();
        let (a, b) = (t.path().join("a"), t.path().join("b"));
        std::fs::create_dir_all(&a).unwrap();
        std::fs::create_dir_all(&b).unwrap();
        let mut rec = rpod_state::ContainerRecord {
            config: rpod_state::ContainerConfig::default(),
            state: rpod_state::ContainerState::default(),
        };
        rec.config.spec = serde_json::json!({"mounts": [
            {"destination": "/data", "type": "bind", "source": a, "options": ["rbind"]},
            {"destination": "/data/inner/", "type": "bind", "source": b, "options": ["rbind", "ro"]},
            {"destination": "/gone", "type": "bind", "source": t.path().join("missing")},
            {"destination": "/dev/shm", "type": "tmpfs", "source": "shm"},
        ]})
        .into();
        let (m, rest) = bind_mount_for(&rec, "/data/x/y").unwrap();
        assert_eq!(
            (m.source.as_str(), rest.as_str(), m.read_only),
            (a.to_str().unwrap(), "/x/y", false)
        );
        let (m, rest) = bind_mount_for(&rec, "/data/inner/z").unwrap();
        assert_eq!(
            (m.source.as_str(), rest.as_str(), m.read_only),
            (b.to_str().unwrap(), "/z", true)
        );
        let (m, rest) = bind_mount_for(&rec, "/data/").unwrap();
        assert_eq!((m.destination.as_str(), rest.as_str()), ("/data", "/"));
        // not a component prefix, a missing source, not a bind mount
        assert!(bind_mount_for(&rec, "/database/x").is_none());
        assert!(bind_mount_for(&rec, "/gone/x").is_none());
        assert!(bind_mount_for(&rec, "/dev/shm/x").is_none());
    }

    #[test]
    fn parses_copy_paths() {
        assert_eq!(
            CopyPath::parse("web:/etc/hosts"),
            CopyPath::Container {
                container: "web".into(),
                path: "/etc/hosts".into()
            }
        );
        assert_eq!(
            CopyPath::parse("/tmp/a:b"),
            CopyPath::Host("/tmp/a:b".into())
        );
        assert_eq!(CopyPath::parse("./x:y"), CopyPath::Host("./x:y".into()));
        assert_eq!(CopyPath::parse("file"), CopyPath::Host("file".into()));
        assert_eq!(split_last("/a/b/"), Some(("/a".into(), "b".into())));
        assert_eq!(split_last("/"), None);
    }

    #[test]
    fn confined_resolution_never_escapes() {
        let t = tempfile::tempdir().unwrap();
        let root = t.path().join("root");
        std::fs::create_dir_all(root.join("etc")).unwrap();
        std::fs::write(t.path().join("host-secret"), "secret").unwrap();
        std::os::unix::fs::symlink("/../../../../host-secret", root.join("etc/evil")).unwrap();
        std::os::unix::fs::symlink("/", root.join("dir")).unwrap();
        let side = Side::container(&root, "c").unwrap();
        // the hostile link resolves inside the root, where nothing exists
        assert_eq!(
            side.resolve("/etc/evil", OFlag::O_PATH).unwrap_err(),
            nix::Error::ENOENT
        );
        // dir -> / is the container root, not the host's
        let fd = side
            .resolve("/dir/etc", OFlag::O_PATH | OFlag::O_DIRECTORY)
            .unwrap();
        let real = std::fs::read_link(format!("/proc/self/fd/{}", fd.as_raw_fd())).unwrap();
        assert_eq!(real, root.join("etc"));
    }
}
