//! The configuration record: every key of libpod's `libpod.conf`, plus rpod's own.

use std::collections::BTreeMap;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};

/// Which cgroup manager containers are placed with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum CgroupManager {
    /// Write the cgroup hierarchy directly (what rpod's tests use).
    Cgroupfs,
    /// Ask systemd for a scope in a slice.
    Systemd,
}

impl CgroupManager {
    /// The name used in the config file.
    pub fn as_str(self) -> &'static str {
        match self {
            CgroupManager::Cgroupfs => "cgroupfs",
            CgroupManager::Systemd => "systemd",
        }
    }
}

macro_rules! config_fields {
    ($( $(#[$m:meta])* $name:ident : $ty:ty ),* $(,)?) => {
        /// The effective runtime configuration.
        ///
        /// Field names are the TOML keys: a libpod `libpod.conf` loads unchanged.
        /// Obtain one through [`crate::ConfigLoader`]; it is a plain value, so a
        /// caller's copy (`Clone`) can never change the engine's own.
        #[derive(Debug, Clone, PartialEq, Serialize)]
        pub struct RuntimeConfig {
            $( $(#[$m])* pub $name: $ty, )*
        }

        /// Every key rpod understands, in declaration order.
        pub const KEYS: &[&str] = &[$(stringify!($name)),*];

        impl RuntimeConfig {
            /// Sets `key` from a TOML value. `Ok(false)` if the key is unknown.
            pub(crate) fn set_toml(&mut self, key: &str, value: toml::Value) -> Result<bool, String> {
                match key {
                    $( stringify!($name) => {
                        self.$name = value.try_into::<$ty>().map_err(|e| e.message().to_string())?;
                        Ok(true)
                    } )*
                    _ => Ok(false),
                }
            }
        }
    };
}

config_fields! {
    // ---- libpod's keys ----
    /// Where named volumes keep their data.
    volume_path: PathBuf,
    /// Transport used when an image name has none.
    image_default_transport: String,
    /// Signature policy file for image pulls.
    signature_policy_path: PathBuf,
    /// Default OCI runtime: a name from `runtimes` or an absolute path.
    runtime: String,
    /// OCI runtimes by name, each with candidate paths (the first existing file wins).
    runtimes: BTreeMap<String, Vec<PathBuf>>,
    /// Runtimes that can print JSON (`--format json`).
    runtime_supports_json: Vec<String>,
    /// Deprecated: candidate paths of the default runtime; when set it wins, with a warning.
    runtime_path: Vec<PathBuf>,
    /// Candidate paths of conmon (the first existing non-directory wins).
    conmon_path: Vec<PathBuf>,
    /// Environment given to conmon.
    conmon_env_vars: Vec<String>,
    /// `cgroupfs` or `systemd`.
    cgroup_manager: CgroupManager,
    /// The init binary for `--init` (catatonit).
    init_path: PathBuf,
    /// Persistent files of rpod: the state database and friends.
    static_dir: PathBuf,
    /// Temporary files that must vanish on reboot (should be a tmpfs).
    tmp_dir: PathBuf,
    /// Maximum container log size in bytes; -1 for unlimited.
    max_log_size: i64,
    /// Use `--no-pivot` with the OCI runtime.
    no_pivot_root: bool,
    /// CNI network configurations.
    cni_config_dir: PathBuf,
    /// Directories searched for CNI plugins.
    cni_plugin_dir: Vec<PathBuf>,
    /// Default CNI network name.
    cni_default_network: String,
    /// Directories of OCI hook definitions.
    hooks_dir: Vec<PathBuf>,
    /// Namespace of containers, pods and volumes; empty sees all.
    namespace: String,
    /// Image of pod infra containers.
    infra_image: String,
    /// Command of pod infra containers.
    infra_command: String,
    /// Hold published ports open on the host.
    enable_port_reservation: bool,
    /// SELinux labelling.
    label: bool,
    /// Path of the rootless network command (slirp4netns).
    network_cmd_path: String,
    /// Number of locks the lock manager provides.
    num_locks: u32,
    /// Lock backend by name (`shm`, `file`).
    lock_type: String,
    /// Events backend by name (`file`, `journald`, `none`).
    events_logger: String,
    /// Key sequence that detaches from a container.
    detach_keys: String,

    // ---- rpod's own keys ----
    /// State backend by name (`bolt`, the default; `sled`; `memory`).
    database_backend: String,
    /// Storage root: persistent data (the equivalent of containers-storage's graph root).
    root: PathBuf,
    /// Run root: per-boot data of containers (bundles, sockets, pid files).
    runroot: PathBuf,
    /// Graph driver recorded in the database (containers run from `--rootfs`).
    graph_driver: String,
    /// Explicit state database path; empty for the backend's default under `static_dir`.
    db_path: PathBuf,
    /// Lock backend location: SHM segment name or lock directory; empty for the default.
    lock_path: String,
    /// Directories searched for backend plugins (shared libraries).
    plugin_dirs: Vec<PathBuf>,
    /// Events log file of the `file` backend; empty for `<tmp_dir>/events/events.log`.
    events_logfile_path: PathBuf,
    /// Rotate the events log past this many bytes; 0 for no limit.
    events_logfile_max_size: u64,
    /// Parent cgroup (cgroupfs path or systemd slice); empty for the manager's default.
    cgroup_parent: String,
    /// Seconds `stop` waits after the stop signal before SIGKILL.
    stop_timeout: u32,
}

/// The runc candidate paths libpod searches.
pub const RUNC_PATHS: &[&str] = &[
    "/usr/bin/runc",
    "/usr/sbin/runc",
    "/usr/local/bin/runc",
    "/usr/local/sbin/runc",
    "/sbin/runc",
    "/bin/runc",
    "/usr/lib/cri-o-runc/sbin/runc",
    "/run/current-system/sw/bin/runc",
];

/// The crun candidate paths libpod searches.
pub const CRUN_PATHS: &[&str] = &[
    "/usr/bin/crun",
    "/usr/sbin/crun",
    "/usr/local/bin/crun",
    "/usr/local/sbin/crun",
    "/sbin/crun",
    "/bin/crun",
    "/run/current-system/sw/bin/crun",
];

/// The conmon candidate paths libpod searches.
pub const CONMON_PATHS: &[&str] = &[
    "/usr/libexec/podman/conmon",
    "/usr/local/libexec/podman/conmon",
    "/usr/local/lib/podman/conmon",
    "/usr/bin/conmon",
    "/usr/sbin/conmon",
    "/usr/local/bin/conmon",
    "/usr/local/sbin/conmon",
    "/run/current-system/sw/bin/conmon",
];

/// Per-user locations, needed to compute defaults.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UserDirs {
    /// Effective uid.
    pub uid: u32,
    /// `$XDG_DATA_HOME` or `~/.local/share`.
    pub data_home: PathBuf,
    /// `$XDG_RUNTIME_DIR`, or `/tmp/rpod-run-<uid>` when unset.
    pub runtime_dir: PathBuf,
    /// `$XDG_CONFIG_HOME` or `~/.config`.
    pub config_home: PathBuf,
}

impl UserDirs {
    /// Reads the current user's directories from the environment.
    pub fn current() -> Self {
        let uid = nix::unistd::geteuid().as_raw();
        let home = std::env::var_os("HOME")
            .map(PathBuf::from)
            .unwrap_or_else(|| PathBuf::from("/"));
        let env_abs = |k: &str| {
            std::env::var_os(k)
                .map(PathBuf::from)
                .filter(|p| p.is_absolute())
        };
        UserDirs {
            uid,
            data_home: env_abs("XDG_DATA_HOME").unwrap_or_else(|| home.join(".local/share")),
            runtime_dir: env_abs("XDG_RUNTIME_DIR")
                .unwrap_or_else(|| PathBuf::from(format!("/tmp/rpod-run-{uid}"))),
            config_home: env_abs("XDG_CONFIG_HOME").unwrap_or_else(|| home.join(".config")),
        }
    }

    /// Whether this is a non-root user.
    pub fn rootless(&self) -> bool {
        self.uid != 0
    }
}

impl RuntimeConfig {
    /// rpod's built-in defaults for a user: libpod's values, with rpod's own paths.
    pub fn defaults(user: &UserDirs) -> Self {
        let (root, runroot) = if user.rootless() {
            (user.data_home.join("rpod"), user.runtime_dir.join("rpod"))
        } else {
            (PathBuf::from("/var/lib/rpod"), PathBuf::from("/run/rpod"))
        };
        let paths = |list: &[&str]| list.iter().map(PathBuf::from).collect::<Vec<_>>();
        let mut runtimes = BTreeMap::new();
        runtimes.insert("runc".to_string(), paths(RUNC_PATHS));
        runtimes.insert("crun".to_string(), paths(CRUN_PATHS));
        let mut c = RuntimeConfig {
            volume_path: PathBuf::new(),
            image_default_transport: "docker://".into(),
            signature_policy_path: "/etc/containers/policy.json".into(),
            runtime: "runc".into(),
            runtimes,
            runtime_supports_json: vec!["crun".into(), "runc".into()],
            runtime_path: Vec::new(),
            conmon_path: paths(CONMON_PATHS),
            conmon_env_vars: vec![
                "PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin".into(),
            ],
            cgroup_manager: CgroupManager::Cgroupfs,
            init_path: "/usr/libexec/podman/catatonit".into(),
            static_dir: PathBuf::new(),
            tmp_dir: PathBuf::new(),
            max_log_size: -1,
            no_pivot_root: false,
            cni_config_dir: "/etc/cni/net.d/".into(),
            cni_plugin_dir: paths(&[
                "/usr/libexec/cni",
                "/usr/lib/cni",
                "/usr/local/lib/cni",
                "/opt/cni/bin",
            ]),
            cni_default_network: "podman".into(),
            hooks_dir: paths(&["/usr/share/containers/oci/hooks.d"]),
            namespace: String::new(),
            infra_image: "k8s.gcr.io/pause:3.1".into(),
            infra_command: "/pause".into(),
            enable_port_reservation: true,
            label: true,
            network_cmd_path: String::new(),
            num_locks: 2048,
            lock_type: "shm".into(),
            events_logger: "file".into(),
            detach_keys: "ctrl-p,ctrl-q".into(),
            database_backend: "bolt".into(),
            root,
            runroot,
            graph_driver: "vfs".into(),
            db_path: PathBuf::new(),
            lock_path: String::new(),
            plugin_dirs: Vec::new(),
            events_logfile_path: PathBuf::new(),
            events_logfile_max_size: 1_000_000,
            cgroup_parent: String::new(),
            stop_timeout: 10,
        };
        c.derive(&|_| false);
        c
    }

    /// Fills the values derived from others, for those not set explicitly.
    pub(crate) fn derive(&mut self, explicit: &dyn Fn(&str) -> bool) {
        if !explicit("static_dir") {
            self.static_dir = self.root.join("static");
        }
        if !explicit("volume_path") {
            self.volume_path = self.root.join("volumes");
        }
        if !explicit("tmp_dir") {
            self.tmp_dir = self.runroot.join("tmp");
        }
        if !explicit("cgroup_parent") {
            self.cgroup_parent = match self.cgroup_manager {
                CgroupManager::Cgroupfs => "/rpod".into(),
                CgroupManager::Systemd => "machine.slice".into(),
            };
        }
    }

    /// The events log of the `file` backend.
    pub fn events_log_file(&self) -> PathBuf {
        if self.events_logfile_path.as_os_str().is_empty() {
            self.tmp_dir.join("events").join("events.log")
        } else {
            self.events_logfile_path.clone()
        }
    }

    /// The lock backend location: `lock_path`, or `None` for the backend's default.
    pub fn lock_location(&self) -> Option<&str> {
        (!self.lock_path.is_empty()).then_some(self.lock_path.as_str())
    }

    /// The database path: `db_path`, or `None` for the backend's default under `static_dir`.
    pub fn database_path(&self) -> Option<&std::path::Path> {
        (!self.db_path.as_os_str().is_empty()).then_some(self.db_path.as_path())
    }
}
