//! `rpod info`: what the host is, what rpod found, and where it keeps things.

use std::path::Path;

use rpod_config::Config;
use serde::Serialize;

/// Everything `rpod info` shows. Field names follow podman's `info` JSON where
/// podman has the same field; rpod's own additions live under `rpod`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Info {
    /// The host.
    pub host: HostInfo,
    /// Where containers and volumes are stored.
    pub store: StoreInfo,
    /// rpod's own view: config files, registered backends, effective config.
    pub rpod: RpodInfo,
}

/// The host section.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct HostInfo {
    /// `linux`.
    pub os: String,
    /// Kernel release.
    pub kernel: String,
    /// CPU architecture as Go names it (`amd64`, `arm64`).
    pub arch: String,
    /// Host name.
    pub hostname: String,
    /// `v1` or `v2`.
    pub cgroup_version: String,
    /// `cgroupfs` or `systemd`.
    pub cgroup_manager: String,
    /// The events backend.
    pub event_logger: String,
    /// Security facts.
    pub security: SecurityInfo,
    /// The default OCI runtime, or why none was found.
    pub oci_runtime: ComponentInfo,
    /// conmon, or why none was found.
    pub conmon: ComponentInfo,
}

/// `host.security`.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct SecurityInfo {
    /// Running as a non-root user.
    pub rootless: bool,
}

/// A program rpod runs (OCI runtime, conmon).
#[derive(Debug, Clone, Default, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ComponentInfo {
    /// Its name.
    pub name: String,
    /// Where it was found.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub path: String,
    /// Its version line.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub version: String,
    /// Why it was not found or could not be queried.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub error: String,
}

/// The store section.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreInfo {
    /// Storage root.
    pub graph_root: String,
    /// Run root.
    pub run_root: String,
    /// Named volumes' data.
    pub volume_path: String,
    /// Graph driver recorded in the database.
    pub graph_driver_name: String,
    /// The config files read, in order (podman shows one; rpod shows all).
    pub config_files: Vec<String>,
    /// Container and volume counts (`containerStore`, `volumeCount`), when
    /// the state could be opened.
    #[serde(flatten, skip_serializing_if = "Option::is_none")]
    pub counts: Option<crate::lifecycle::StoreCounts>,
}

/// rpod's own section.
#[derive(Debug, Clone, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RpodInfo {
    /// rpod's version.
    pub version: String,
    /// Persistent files (the state database).
    pub static_dir: String,
    /// Per-boot temporary files.
    pub tmp_dir: String,
    /// Selected state backend.
    pub database_backend: String,
    /// Selected lock backend.
    pub lock_type: String,
    /// Namespace in use.
    pub namespace: String,
    /// Every registered backend.
    pub backends: Vec<BackendInfo>,
    /// Warnings raised while loading the config.
    pub config_warnings: Vec<String>,
    /// The whole effective configuration, keyed as in the config file.
    pub config: rpod_config::RuntimeConfig,
}

/// One registered backend.
#[derive(Debug, Clone, Serialize, PartialEq, Eq)]
pub struct BackendInfo {
    /// Versioned kind (`state.v1`).
    pub kind: String,
    /// Name as written in the config.
    pub name: String,
    /// One line.
    pub summary: String,
    /// Where it comes from: a module of rpod, or `plugin <library path>`.
    pub origin: String,
}

/// Every registered backend, by kind then name.
pub fn backends() -> Vec<BackendInfo> {
    let mut v: Vec<BackendInfo> = rpod_registry::all()
        .into_iter()
        .map(|r| BackendInfo {
            kind: r.kind.to_string(),
            name: r.name.to_string(),
            summary: r.summary.to_string(),
            origin: r.origin.to_string(),
        })
        .collect();
    v.sort_by(|a, b| (&a.kind, &a.name).cmp(&(&b.kind, &b.name)));
    v
}

fn cgroup_version() -> &'static str {
    match nix::sys::statfs::statfs("/sys/fs/cgroup") {
        Ok(s) if s.filesystem_type() == nix::sys::statfs::CGROUP2_SUPER_MAGIC => "v2",
        _ => "v1",
    }
}

fn go_arch(arch: &str) -> String {
    match arch {
        "x86_64" => "amd64",
        "aarch64" => "arm64",
        "x86" | "i686" => "386",
        "powerpc64" => "ppc64le",
        other => other,
    }
    .to_string()
}

fn path_str(p: &Path) -> String {
    p.display().to_string()
}

fn runtime_component(cfg: &Config) -> ComponentInfo {
    match rpod_oci::OciRuntime::find(cfg, None) {
        Ok(rt) => {
            let (version, error) = match rt.version() {
                Ok(v) => (v, String::new()),
                Err(e) => (String::new(), e.to_string()),
            };
            ComponentInfo {
                name: rt.name.clone(),
                path: path_str(&rt.path),
                version,
                error,
            }
        }
        Err(e) => ComponentInfo {
            name: cfg.runtime.clone(),
            error: e.to_string(),
            ..ComponentInfo::default()
        },
    }
}

fn conmon_component(cfg: &Config) -> ComponentInfo {
    match rpod_oci::Conmon::find(cfg, None) {
        Ok(c) => {
            let (version, error) = match c.version() {
                Ok(v) => (v, String::new()),
                Err(e) => (String::new(), e.to_string()),
            };
            ComponentInfo {
                name: "conmon".into(),
                path: path_str(&c.path),
                version,
                error,
            }
        }
        Err(e) => ComponentInfo {
            name: "conmon".into(),
            error: e.to_string(),
            ..ComponentInfo::default()
        },
    }
}

/// Gathers `rpod info` for `cfg`, including the OCI runtime and conmon found
/// (or why none was).
pub fn gather(cfg: &Config) -> Info {
    let oci_runtime = runtime_component(cfg);
    let conmon = conmon_component(cfg);
    let uts = nix::sys::utsname::uname().ok();
    let field = |f: fn(&nix::sys::utsname::UtsName) -> &std::ffi::OsStr| {
        uts.as_ref()
            .map(|u| f(u).to_string_lossy().into_owned())
            .unwrap_or_default()
    };
    Info {
        host: HostInfo {
            os: std::env::consts::OS.to_string(),
            kernel: field(|u| u.release()),
            arch: go_arch(std::env::consts::ARCH),
            hostname: field(|u| u.nodename()),
            cgroup_version: cgroup_version().to_string(),
            cgroup_manager: cfg.cgroup_manager.as_str().to_string(),
            event_logger: cfg.events_logger.clone(),
            security: SecurityInfo {
                rootless: !nix::unistd::geteuid().is_root(),
            },
            oci_runtime,
            conmon,
        },
        store: StoreInfo {
            graph_root: path_str(&cfg.root),
            run_root: path_str(&cfg.runroot),
            volume_path: path_str(&cfg.volume_path),
            graph_driver_name: cfg.graph_driver.clone(),
            config_files: cfg.files_read().iter().map(|p| path_str(p)).collect(),
            counts: None,
        },
        rpod: RpodInfo {
            version: env!("CARGO_PKG_VERSION").to_string(),
            static_dir: path_str(&cfg.static_dir),
            tmp_dir: path_str(&cfg.tmp_dir),
            database_backend: cfg.database_backend.clone(),
            lock_type: cfg.lock_type.clone(),
            namespace: cfg.namespace.clone(),
            backends: backends(),
            config_warnings: cfg.warnings().to_vec(),
            config: cfg.values().clone(),
        },
    }
}
