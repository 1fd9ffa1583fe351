//! Generating the OCI `config.json` the way podman 4.3.1 does.
//!
//! Fill a [`SpecOptions`] (a plain struct, `Default` gives podman's defaults
//! for everything but the id, rootfs and command), then:
//!
//! * [`generate`] validates everything and returns the [`Spec`] without
//!   touching the disk;
//! * [`write_bundle`] does the same, then writes the per-container files
//!   (`hosts`, `hostname`, `resolv.conf`, `.containerenv`) and `config.json`.
//!
//! ```no_run
//! use rpod_oci::spec::{SpecOptions, write_bundle};
//! let opts = SpecOptions {
//!     id: "0123456789abcdef".into(),
//!     rootfs: "/srv/rootfs".into(),
//!     args: vec!["/bin/echo".into(), "hi".into()],
//!     cgroups_path: "/rpod/0123456789abcdef".into(),
//!     ..SpecOptions::default()
//! };
//! let spec = write_bundle(&opts, std::path::Path::new("/run/rpod/bundles/0123"))?;
//! assert_eq!(spec.process.args[0], "/bin/echo");
//! # Ok::<(), rpod_oci::OciError>(())
//! ```

mod caps;
mod hooks;
mod rootpath;
mod seccomp;
mod types;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use rpod_config::CgroupManager;

pub use caps::{host_caps, merge_caps, normalize_cap, ALL_CAPS, DEFAULT_CAPS};
pub use hooks::{load_hooks, HookContext};
pub use rootpath::{find_command, resolve_in_root, resolve_user, ResolvedUser};
pub use seccomp::{default_seccomp_profile, load_profile, DEFAULT_SECCOMP_PATHS};
pub use types::*;

use crate::OciError;

/// The default `PATH` of a container process.
pub const DEFAULT_PATH: &str = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin";
/// Where `--init` puts the init binary inside the container (podman's path).
pub const INIT_PATH_IN_CONTAINER: &str = "/run/podman-init";
/// podman's masked paths (`BlockAccessToKernelFilesystems`).
pub const MASKED_PATHS: &[&str] = &[
    "/proc/acpi",
    "/proc/kcore",
    "/proc/keys",
    "/proc/latency_stats",
    "/proc/timer_list",
    "/proc/timer_stats",
    "/proc/sched_debug",
    "/proc/scsi",
    "/sys/firmware",
    "/sys/fs/selinux",
    "/sys/dev/block",
];
/// podman's read-only paths.
pub const READONLY_PATHS: &[&str] = &[
    "/proc/asound",
    "/proc/bus",
    "/proc/fs",
    "/proc/irq",
    "/proc/sys",
    "/proc/sysrq-trigger",
];
/// podman's default pids limit.
pub const DEFAULT_PIDS_LIMIT: i64 = 2048;

/// Seccomp choice (`--security-opt seccomp=…`).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum SeccompMode {
    /// podman's default profile ([`DEFAULT_SECCOMP_PATHS`]); no filter (with a
    /// warning) when none is installed.
    #[default]
    Default,
    /// No filter.
    Unconfined,
    /// A profile file (containers/common or plain OCI format).
    Path(PathBuf),
}

/// Network namespace choice.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum NetworkMode {
    /// A new, empty network namespace (`--network none`).
    #[default]
    None,
    /// The host's network namespace (`--network host`).
    Host,
    /// Join an existing namespace (e.g. `/run/netns/<name>` set up by a network backend).
    Path(PathBuf),
}

/// A bind mount (`-v /host:/ctr[:ro]`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BindMount {
    /// Host path; must exist.
    pub source: PathBuf,
    /// Absolute path in the container.
    pub destination: String,
    /// Mount read-only.
    pub read_only: bool,
}

impl BindMount {
    /// Parses `SRC:DST[:ro|rw]`.
    pub fn parse(s: &str) -> Result<BindMount, OciError> {
        let bad = || OciError::InvalidSpec {
            field: "volume".into(),
            value: s.into(),
            expected: "/host/path:/container/path[:ro|rw]".into(),
        };
        let parts: Vec<&str> = s.split(':').collect();
        let (src, dst, ro) = match parts.as_slice() {
            [src, dst] => (*src, *dst, false),
            [src, dst, opt] => match *opt {
                "ro" => (*src, *dst, true),
                "rw" => (*src, *dst, false),
                _ => return Err(bad()),
            },
            _ => return Err(bad()),
        };
        if !src.starts_with('/') || !dst.starts_with('/') {
            return Err(bad());
        }
        Ok(BindMount {
            source: src.into(),
            destination: dst.into(),
            read_only: ro,
        })
    }
}

/// A resource limit request (`--ulimit nofile=1024:2048`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RlimitOption {
    /// `nofile`, `RLIMIT_NOFILE`, … (case-insensitive).
    pub name: String,
    /// Soft limit.
    pub soft: u64,
    /// Hard limit.
    pub hard: u64,
}

/// Everything the spec is generated from.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpecOptions {
    /// Container id (64 hex in rpod; any non-empty string is accepted).
    pub id: String,
    /// Command and arguments; `args[0]` must exist in the rootfs.
    pub args: Vec<String>,
    /// Extra `KEY=VALUE` variables (override the defaults `PATH`, `TERM`, `HOSTNAME`).
    pub env: Vec<String>,
    /// Working directory; empty for `/`.
    pub cwd: String,
    /// `uid[:gid]` or `name[:group]` (names from the rootfs); empty for root.
    pub user: String,
    /// Allocate a terminal.
    pub terminal: bool,
    /// Hostname; empty for the first 12 characters of the id.
    pub hostname: String,
    /// Root filesystem (an existing directory).
    pub rootfs: PathBuf,
    /// Mount the rootfs read-only (plus tmpfs on /tmp, /var/tmp, /run, as podman).
    pub read_only: bool,
    /// Bind mounts.
    pub mounts: Vec<BindMount>,
    /// Capabilities added.
    pub cap_add: Vec<String>,
    /// Capabilities dropped.
    pub cap_drop: Vec<String>,
    /// `--privileged`: all capabilities, no seccomp, no masked/read-only paths.
    pub privileged: bool,
    /// Set no_new_privs.
    pub no_new_privileges: bool,
    /// Seccomp choice.
    pub seccomp: SeccompMode,
    /// Network namespace choice.
    pub network: NetworkMode,
    /// `--init`: host path of the init binary (catatonit).
    pub init: Option<PathBuf>,
    /// Value of `linux.cgroupsPath` (see [`cgroups_path`]); empty for none.
    pub cgroups_path: String,
    /// Annotations (added to podman's defaults, overriding them).
    pub annotations: BTreeMap<String, String>,
    /// Directories of OCI hook files.
    pub hooks_dirs: Vec<PathBuf>,
    /// Resource limits; `None` for podman's default (nofile and nproc 1024:1024).
    /// Every value is clamped to the caller's current hard limit.
    pub rlimits: Option<Vec<RlimitOption>>,
    /// pids cgroup limit; `None` for no limit.
    pub pids_limit: Option<i64>,
    /// Extra sysctls.
    pub sysctls: BTreeMap<String, String>,
    /// The stop signal number recorded in the annotations.
    pub stop_signal: i32,
    /// Directory for the generated `hosts`, `hostname`, `resolv.conf` and
    /// `.containerenv` files; `None` for the bundle directory.
    pub run_dir: Option<PathBuf>,
    /// Extra `/etc/hosts` entries (`IP NAME…` lines).
    pub hosts_entries: Vec<String>,
    /// Use this resolv.conf content instead of the host's (network `Host`/`Path`).
    pub resolv_conf: Option<String>,
}

impl Default for SpecOptions {
    fn default() -> Self {
        SpecOptions {
            id: String::new(),
            args: Vec::new(),
            env: Vec::new(),
            cwd: String::new(),
            user: String::new(),
            terminal: false,
            hostname: String::new(),
            rootfs: PathBuf::new(),
            read_only: false,
            mounts: Vec::new(),
            cap_add: Vec::new(),
            cap_drop: Vec::new(),
            privileged: false,
            no_new_privileges: false,
            seccomp: SeccompMode::Default,
            network: NetworkMode::None,
            init: None,
            cgroups_path: String::new(),
            annotations: BTreeMap::new(),
            hooks_dirs: Vec::new(),
            rlimits: None,
            pids_limit: Some(DEFAULT_PIDS_LIMIT),
            sysctls: BTreeMap::new(),
            stop_signal: 15,
            run_dir: None,
            hosts_entries: Vec::new(),
            resolv_conf: None,
        }
    }
}

/// The `linux.cgroupsPath` for a container: `<parent>/<id>` for cgroupfs
/// (parent defaults to `/rpod`), `<slice>:rpod:<id>` for systemd
/// (slice defaults to `machine.slice`).
pub fn cgroups_path(manager: CgroupManager, parent: &str, id: &str) -> String {
    match manager {
        CgroupManager::Cgroupfs => {
            let parent = if parent.is_empty() { "/rpod" } else { parent };
            format!("/{}/{}", parent.trim_matches('/'), id).replace("//", "/")
        }
        CgroupManager::Systemd => {
            let slice = if parent.is_empty() {
                "machine.slice"
            } else {
                parent
            };
            format!("{slice}:rpod:{id}")
        }
    }
}

fn rlimit_resource(name: &str) -> Option<(String, nix::sys::resource::Resource)> {
    use nix::sys::resource::Resource as R;
    let up = name.to_ascii_uppercase();
    let short = up.strip_prefix("RLIMIT_").unwrap_or(&up).to_string();
    let r = match short.as_str() {
        "AS" => R::RLIMIT_AS,
        "CORE" => R::RLIMIT_CORE,
        "CPU" => R::RLIMIT_CPU,
        "DATA" => R::RLIMIT_DATA,
        "FSIZE" => R::RLIMIT_FSIZE,
        "LOCKS" => R::RLIMIT_LOCKS,
        "MEMLOCK" => R::RLIMIT_MEMLOCK,
        "MSGQUEUE" => R::RLIMIT_MSGQUEUE,
        "NICE" => R::RLIMIT_NICE,
        "NOFILE" => R::RLIMIT_NOFILE,
        "NPROC" => R::RLIMIT_NPROC,
        "RSS" => R::RLIMIT_RSS,
        "RTPRIO" => R::RLIMIT_RTPRIO,
        "RTTIME" => R::RLIMIT_RTTIME,
        "SIGPENDING" => R::RLIMIT_SIGPENDING,
        "STACK" => R::RLIMIT_STACK,
        _ => return None,
    };
    Some((format!("RLIMIT_{short}"), r))
}

/// Builds the rlimits, each clamped to the caller's current hard limit
/// (an rlimit above it makes runc fail without CAP_SYS_RESOURCE).
fn build_rlimits(req: &Option<Vec<RlimitOption>>) -> Result<Vec<Rlimit>, OciError> {
    let defaults = [
        RlimitOption {
            name: "nofile".into(),
            soft: 1024,
            hard: 1024,
        },
        RlimitOption {
            name: "nproc".into(),
            soft: 1024,
            hard: 1024,
        },
    ];
    let list: &[RlimitOption] = match req {
        Some(l) => l,
        None => &defaults,
    };
    let mut out: Vec<Rlimit> = Vec::new();
    for r in list {
        let (kind, res) = rlimit_resource(&r.name).ok_or_else(|| OciError::InvalidSpec {
            field: "ulimit".into(),
            value: r.name.clone(),
            expected: "a resource name such as nofile, nproc, core, memlock, stack (with or without RLIMIT_)".into(),
        })?;
        if r.soft > r.hard {
            return Err(OciError::InvalidSpec {
                field: "ulimit".into(),
                value: format!("{}={}:{}", r.name, r.soft, r.hard),
                expected: "a soft limit not above the hard limit".into(),
            });
        }
        let host_hard = nix::sys::resource::getrlimit(res)
            .map(|(_, h)| h)
            .unwrap_or(u64::MAX);
        let hard = r.hard.min(host_hard);
        let soft = r.soft.min(hard);
        if hard < r.hard {
            tracing::warn!(
                "{kind} hard limit {} is above the current hard limit {host_hard}; clamped",
                r.hard
            );
        }
        out.retain(|x| x.kind != kind);
        out.push(Rlimit { kind, hard, soft });
    }
    Ok(out)
}

fn invalid(field: &str, value: impl Into<String>, expected: &str) -> OciError {
    OciError::InvalidSpec {
        field: field.into(),
        value: value.into(),
        expected: expected.into(),
    }
}

fn mount(dst: &str, kind: &str, src: &str, opts: &[&str]) -> Mount {
    Mount {
        destination: dst.into(),
        kind: kind.into(),
        source: src.into(),
        options: opts.iter().map(|s| s.to_string()).collect(),
    }
}

fn now_rfc3339() -> String {
    time::OffsetDateTime::now_utc()
        .format(&time::format_description::well_known::Rfc3339)
        .unwrap_or_default()
}

/// The directory that receives `hosts`, `hostname`, … for a bundle.
fn run_dir_of(opts: &SpecOptions, bundle: &Path) -> PathBuf {
    opts.run_dir.clone().unwrap_or_else(|| bundle.to_path_buf())
}

/// Validates `opts` and builds the spec. Nothing is written; `bundle` only
/// determines the paths of the generated `/etc` files.
pub fn generate_for_bundle(opts: &SpecOptions, bundle: &Path) -> Result<Spec, OciError> {
    // ---- validation ----
    if opts.id.is_empty() || opts.id.contains('/') {
        return Err(invalid(
            "id",
            &opts.id,
            "a non-empty container id without '/'",
        ));
    }
    match std::fs::metadata(&opts.rootfs) {
        Ok(m) if m.is_dir() => {}
        Ok(_) => {
            return Err(invalid(
                "rootfs",
                opts.rootfs.display().to_string(),
                "an existing directory",
            ))
        }
        Err(e) => return Err(OciError::io(&opts.rootfs, e)),
    }
    if opts.args.is_empty() {
        return Err(invalid("command", "", "a command to run in the container"));
    }
    let cwd = if opts.cwd.is_empty() {
        "/"
    } else {
        opts.cwd.as_str()
    };
    if !cwd.starts_with('/') {
        return Err(invalid(
            "workdir",
            cwd,
            "an absolute path inside the container",
        ));
    }
    for e in &opts.env {
        if !e.contains('=') || e.starts_with('=') {
            return Err(invalid("env", e, "KEY=VALUE"));
        }
    }
    let hostname = if opts.hostname.is_empty() {
        opts.id.chars().take(12).collect::<String>()
    } else {
        opts.hostname.clone()
    };
    if hostname.len() > 64 || hostname.contains(['/', ' ', '\n']) {
        return Err(invalid(
            "hostname",
            &hostname,
            "a host name of at most 64 characters",
        ));
    }

    // Environment: podman's defaults, then the user's (replacing by key).
    let mut env: Vec<String> = vec![
        format!("PATH={DEFAULT_PATH}"),
        "TERM=xterm".into(),
        format!("HOSTNAME={hostname}"),
    ];
    for e in &opts.env {
        let key = e.split('=').next().unwrap_or("");
        match env.iter_mut().find(|x| x.split('=').next() == Some(key)) {
            Some(slot) => *slot = e.clone(),
            None => env.push(e.clone()),
        }
    }
    let path_env = env
        .iter()
        .find_map(|e| e.strip_prefix("PATH="))
        .unwrap_or(DEFAULT_PATH)
        .to_string();
    find_command(&opts.rootfs, &opts.args[0], &path_env, cwd)?;
    // HOME is left to the runtime (runc sets it from the rootfs /etc/passwd), as podman does.
    let user = resolve_user(&opts.rootfs, &opts.user)?;

    let mut binds = Vec::new();
    for b in &opts.mounts {
        if !b.destination.starts_with('/') {
            return Err(invalid(
                "volume",
                &b.destination,
                "an absolute destination path inside the container",
            ));
        }
        if b.destination.split('/').any(|c| c == "..") {
            return Err(invalid(
                "volume",
                &b.destination,
                "a destination without '..'",
            ));
        }
        if !b.source.is_absolute() || std::fs::symlink_metadata(&b.source).is_err() {
            return Err(invalid(
                "volume",
                b.source.display().to_string(),
                "an existing absolute host path as the bind mount source",
            ));
        }
        let mut o = vec!["rbind", "rprivate"];
        if b.read_only {
            o.push("ro");
        }
        binds.push(mount(
            &b.destination,
            "bind",
            &b.source.to_string_lossy(),
            &o,
        ));
    }

    let mut args = opts.args.clone();
    if let Some(init) = &opts.init {
        if !init.is_file() {
            return Err(invalid(
                "init_path",
                init.display().to_string(),
                "an existing init binary on the host (catatonit)",
            ));
        }
        args.splice(0..0, [INIT_PATH_IN_CONTAINER.to_string(), "--".to_string()]);
    }

    // Capabilities.
    let caps = if opts.privileged {
        let mut c = host_caps();
        let drops = opts
            .cap_drop
            .iter()
            .map(|d| normalize_cap("cap_drop", d))
            .collect::<Result<Vec<_>, _>>()?;
        opts.cap_add
            .iter()
            .try_for_each(|a| normalize_cap("cap_add", a).map(|_| ()))?;
        c.retain(|x| !drops.contains(x));
        c
    } else {
        merge_caps(DEFAULT_CAPS, &opts.cap_add, &opts.cap_drop)?
    };
    // As podman: a non-root user only gets the explicitly added capabilities
    // in its effective, permitted and ambient sets (never inheritable).
    let capabilities = if user.uid == 0 {
        Capabilities {
            bounding: caps.clone(),
            effective: caps.clone(),
            inheritable: Vec::new(),
            permitted: caps.clone(),
            ambient: Vec::new(),
        }
    } else {
        let added: Vec<String> = merge_caps(&[], &opts.cap_add, &[])?
            .into_iter()
            .filter(|c| caps.contains(c))
            .collect();
        Capabilities {
            bounding: caps.clone(),
            effective: added.clone(),
            inheritable: Vec::new(),
            permitted: added.clone(),
            ambient: added,
        }
    };
    let rlimits = build_rlimits(&opts.rlimits)?;

    // Seccomp.
    let seccomp = match (&opts.seccomp, opts.privileged) {
        (SeccompMode::Unconfined, _) | (SeccompMode::Default, true) => None,
        (SeccompMode::Path(p), _) => Some(load_profile(p, &caps)?),
        (SeccompMode::Default, false) => match default_seccomp_profile() {
            Some(p) => Some(load_profile(&p, &caps)?),
            None => {
                tracing::warn!(
                    "no default seccomp profile in {:?}; container {} runs without seccomp",
                    DEFAULT_SECCOMP_PATHS,
                    opts.id
                );
                None
            }
        },
    };

    // Mounts, in podman's order.
    let run_dir = run_dir_of(opts, bundle);
    let f = |n: &str| run_dir.join(n).to_string_lossy().into_owned();
    let mut mounts = vec![
        mount("/proc", "proc", "proc", &["nosuid", "noexec", "nodev"]),
        mount(
            "/dev",
            "tmpfs",
            "tmpfs",
            &["nosuid", "noexec", "strictatime", "mode=755", "size=65536k"],
        ),
    ];
    let ro_sys = if opts.privileged { "rw" } else { "ro" };
    if opts.network == NetworkMode::Host {
        mounts.push(mount(
            "/sys",
            "bind",
            "/sys",
            &["rprivate", "nosuid", "noexec", "nodev", ro_sys, "rbind"],
        ));
    } else {
        mounts.push(mount(
            "/sys",
            "sysfs",
            "sysfs",
            &["nosuid", "noexec", "nodev", ro_sys],
        ));
    }
    mounts.push(mount(
        "/dev/pts",
        "devpts",
        "devpts",
        &[
            "nosuid",
            "noexec",
            "newinstance",
            "ptmxmode=0666",
            "mode=0620",
            "gid=5",
        ],
    ));
    mounts.push(mount(
        "/dev/mqueue",
        "mqueue",
        "mqueue",
        &["nosuid", "noexec", "nodev"],
    ));
    if opts.network != NetworkMode::None {
        mounts.push(mount(
            "/etc/resolv.conf",
            "bind",
            &f("resolv.conf"),
            &["bind", "rprivate"],
        ));
    }
    mounts.push(mount(
        "/etc/hosts",
        "bind",
        &f("hosts"),
        &["bind", "rprivate"],
    ));
    mounts.push(mount(
        "/dev/shm",
        "tmpfs",
        "shm",
        &["nosuid", "noexec", "nodev", "mode=1777", "size=65536k"],
    ));
    mounts.push(mount(
        "/run/.containerenv",
        "bind",
        &f(".containerenv"),
        &["bind", "rprivate"],
    ));
    mounts.push(mount(
        "/etc/hostname",
        "bind",
        &f("hostname"),
        &["bind", "rprivate"],
    ));
    mounts.push(mount(
        "/sys/fs/cgroup",
        "cgroup",
        "cgroup",
        &["rprivate", "nosuid", "noexec", "nodev", "relatime", ro_sys],
    ));
    if opts.read_only {
        for d in ["/tmp", "/var/tmp", "/run"] {
            mounts.push(mount(
                d,
                "tmpfs",
                "tmpfs",
                &["rw", "rprivate", "nosuid", "nodev", "tmpcopyup"],
            ));
        }
    }
    if let Some(init) = &opts.init {
        mounts.push(mount(
            INIT_PATH_IN_CONTAINER,
            "bind",
            &init.to_string_lossy(),
            &["bind", "rprivate", "ro"],
        ));
    }
    // User mounts replace defaults with the same destination.
    for b in binds {
        mounts.retain(|m| m.destination != b.destination);
        mounts.push(b);
    }

    // Namespaces.
    let mut namespaces = vec![Namespace {
        kind: "pid".into(),
        path: None,
    }];
    match &opts.network {
        NetworkMode::Host => {}
        NetworkMode::None => namespaces.push(Namespace {
            kind: "network".into(),
            path: None,
        }),
        NetworkMode::Path(p) => namespaces.push(Namespace {
            kind: "network".into(),
            path: Some(p.to_string_lossy().into_owned()),
        }),
    }
    for k in ["ipc", "uts", "mount"] {
        namespaces.push(Namespace {
            kind: k.into(),
            path: None,
        });
    }

    let mut sysctl = BTreeMap::new();
    if opts.network != NetworkMode::Host {
        sysctl.insert("net.ipv4.ping_group_range".to_string(), "0 0".to_string());
    }
    for (k, v) in &opts.sysctls {
        if opts.network == NetworkMode::Host && k.starts_with("net.") {
            return Err(invalid(
                "sysctl",
                k,
                "no net.* sysctl with the host network",
            ));
        }
        sysctl.insert(k.clone(), v.clone());
    }

    let b = |x: bool| if x { "TRUE" } else { "FALSE" }.to_string();
    let mut annotations = BTreeMap::new();
    annotations.insert("io.container.manager".into(), "libpod".into());
    annotations.insert("io.kubernetes.cri-o.Created".into(), now_rfc3339());
    annotations.insert("io.kubernetes.cri-o.TTY".into(), opts.terminal.to_string());
    annotations.insert("io.podman.annotations.autoremove".into(), b(false));
    annotations.insert("io.podman.annotations.init".into(), b(opts.init.is_some()));
    annotations.insert(
        "io.podman.annotations.privileged".into(),
        b(opts.privileged),
    );
    annotations.insert("io.podman.annotations.publish-all".into(), b(false));
    annotations.insert(
        "org.opencontainers.image.stopSignal".into(),
        opts.stop_signal.to_string(),
    );
    for (k, v) in &opts.annotations {
        annotations.insert(k.clone(), v.clone());
    }

    let hooks = load_hooks(
        &opts.hooks_dirs,
        &HookContext {
            annotations: &annotations,
            command: &args[0],
            has_bind_mounts: !opts.mounts.is_empty(),
        },
    )?;

    let (masked_paths, readonly_paths) = if opts.privileged {
        (Vec::new(), Vec::new())
    } else {
        (
            MASKED_PATHS.iter().map(|s| s.to_string()).collect(),
            READONLY_PATHS.iter().map(|s| s.to_string()).collect(),
        )
    };

    Ok(Spec {
        oci_version: "1.0.2-dev".into(),
        process: Process {
            terminal: opts.terminal,
            user: User {
                uid: user.uid,
                gid: user.gid,
                umask: Some(0o022),
                additional_gids: user.additional_gids,
            },
            args,
            env,
            cwd: cwd.into(),
            capabilities: Some(capabilities),
            rlimits,
            no_new_privileges: opts.no_new_privileges,
        },
        root: Root {
            path: opts.rootfs.to_string_lossy().into_owned(),
            readonly: opts.read_only,
        },
        hostname,
        mounts,
        hooks,
        annotations,
        linux: Linux {
            sysctl,
            resources: Some(Resources {
                devices: vec![DeviceRule {
                    allow: false,
                    access: "rwm".into(),
                }],
                pids: opts.pids_limit.map(|limit| Pids { limit }),
            }),
            cgroups_path: opts.cgroups_path.clone(),
            namespaces,
            seccomp,
            masked_paths,
            readonly_paths,
        },
    })
}

/// [`generate_for_bundle`] with the generated files placed in `run_dir` (or
/// nowhere in particular: the bundle path used is `.`).
pub fn generate(opts: &SpecOptions) -> Result<Spec, OciError> {
    generate_for_bundle(opts, Path::new("."))
}

fn write_file(path: &Path, data: &[u8]) -> Result<(), OciError> {
    let tmp = path.with_extension("rpod-tmp");
    std::fs::write(&tmp, data).map_err(|e| OciError::io(&tmp, e))?;
    std::fs::rename(&tmp, path).map_err(|e| OciError::io(path, e))
}

/// Validates and generates the spec, then writes `config.json` into `bundle`
/// (created if missing) and the per-container `hosts`, `hostname`,
/// `resolv.conf` (when networked) and `.containerenv` into the run directory.
pub fn write_bundle(opts: &SpecOptions, bundle: &Path) -> Result<Spec, OciError> {
    let spec = generate_for_bundle(opts, bundle)?;
    let run_dir = run_dir_of(opts, bundle);
    for d in [bundle, run_dir.as_path()] {
        std::fs::create_dir_all(d).map_err(|e| OciError::io(d, e))?;
    }
    write_file(
        &run_dir.join("hostname"),
        format!("{}\n", spec.hostname).as_bytes(),
    )?;
    let mut hosts = String::new();
    if opts.network == NetworkMode::Host {
        hosts.push_str(&std::fs::read_to_string("/etc/hosts").unwrap_or_default());
        if !hosts.is_empty() && !hosts.ends_with('\n') {
            hosts.push('\n');
        }
    } else {
        hosts.push_str(
            "127.0.0.1\tlocalhost localhost.localdomain localhost4 localhost4.localdomain4\n",
        );
        hosts.push_str("::1\tlocalhost localhost.localdomain localhost6 localhost6.localdomain6\n");
    }
    for e in &opts.hosts_entries {
        hosts.push_str(e.trim_end());
        hosts.push('\n');
    }
    hosts.push_str(&format!("127.0.1.1\t{}\n", spec.hostname));
    write_file(&run_dir.join("hosts"), hosts.as_bytes())?;
    if opts.network != NetworkMode::None {
        let resolv = match &opts.resolv_conf {
            Some(s) => s.clone(),
            None => std::fs::read_to_string("/etc/resolv.conf").unwrap_or_default(),
        };
        write_file(&run_dir.join("resolv.conf"), resolv.as_bytes())?;
    }
    let containerenv = if opts.privileged {
        format!(
            "engine=\"rpod\"\nname=\"{}\"\nid=\"{}\"\nprivileged=1\n",
            spec.hostname, opts.id
        )
    } else {
        String::new()
    };
    write_file(&run_dir.join(".containerenv"), containerenv.as_bytes())?;
    let json = serde_json::to_vec_pretty(&spec).map_err(|e| OciError::BadFile {
        what: "generated OCI config",
        path: bundle.join("config.json"),
        reason: e.to_string(),
    })?;
    write_file(&bundle.join("config.json"), &json)?;
    Ok(spec)
}
