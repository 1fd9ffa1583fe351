//! Global flags, shared by every command, with podman's names and meanings.

use std::path::PathBuf;

use anyhow::Result;
use clap::Args;
use rpod_config::{Config, ConfigLoader, Options};

/// podman's global flags (and rpod's `--lock-type`, `--db-path`).
#[derive(Debug, Clone, Args)]
pub struct GlobalOpts {
    /// Path of a config file to read after the system ones
    #[arg(long, global = true, value_name = "PATH")]
    pub config: Option<PathBuf>,
    /// Storage root directory
    #[arg(long, global = true, value_name = "PATH")]
    pub root: Option<PathBuf>,
    /// Storage state directory (per-boot data)
    #[arg(long, global = true, value_name = "PATH")]
    pub runroot: Option<PathBuf>,
    /// Directory for temporary files (should be a tmpfs)
    #[arg(long, global = true, value_name = "PATH")]
    pub tmpdir: Option<PathBuf>,
    /// Directory of named volumes' data
    #[arg(long, global = true, value_name = "PATH")]
    pub volumepath: Option<PathBuf>,
    /// OCI runtime: a configured name or an absolute path
    #[arg(long, global = true, value_name = "NAME|PATH")]
    pub runtime: Option<String>,
    /// Path of the conmon binary
    #[arg(long, global = true, value_name = "PATH")]
    pub conmon: Option<PathBuf>,
    /// Cgroup manager: cgroupfs or systemd
    #[arg(long, global = true, value_name = "MANAGER")]
    pub cgroup_manager: Option<String>,
    /// Events backend: file, journald or none
    #[arg(long, global = true, value_name = "BACKEND")]
    pub events_backend: Option<String>,
    /// Namespace of containers, pods and volumes
    #[arg(long, global = true, value_name = "NAME")]
    pub namespace: Option<String>,
    /// Log level: trace, debug, info, warn, error, fatal or panic
    #[arg(long, global = true, default_value = "warn", value_name = "LEVEL")]
    pub log_level: String,
    /// State database backend (registered name)
    #[arg(long, global = true, value_name = "NAME")]
    pub db_backend: Option<String>,
    /// State database path
    #[arg(long, global = true, value_name = "PATH")]
    pub db_path: Option<PathBuf>,
    /// Lock backend (registered name)
    #[arg(long, global = true, value_name = "NAME")]
    pub lock_type: Option<String>,
    /// Lock location: SHM segment name or lock directory
    #[arg(long, global = true, value_name = "NAME|PATH")]
    pub lock_path: Option<String>,
    /// Set any config key, as in a config file: KEY=VALUE (TOML value)
    #[arg(long = "set", global = true, value_name = "KEY=VALUE", hide = true)]
    pub set: Vec<String>,
}

impl GlobalOpts {
    /// The config options these flags set.
    pub fn options(&self) -> Options {
        let mut o = Options::new();
        if let Some(p) = &self.root {
            o = o.root(p);
        }
        if let Some(p) = &self.runroot {
            o = o.runroot(p);
        }
        if let Some(p) = &self.tmpdir {
            o = o.tmp_dir(p);
        }
        if let Some(p) = &self.volumepath {
            o = o.volume_path(p);
        }
        if let Some(v) = &self.runtime {
            o = o.runtime(v);
        }
        if let Some(p) = &self.conmon {
            o = o.conmon(p);
        }
        if let Some(v) = &self.cgroup_manager {
            o = o.cgroup_manager(v);
        }
        if let Some(v) = &self.events_backend {
            o = o.events_logger(v);
        }
        if let Some(v) = &self.namespace {
            o = o.namespace(v);
        }
        if let Some(v) = &self.db_backend {
            o = o.database_backend(v);
        }
        if let Some(p) = &self.db_path {
            o = o.db_path(p);
        }
        if let Some(v) = &self.lock_type {
            o = o.lock_type(v);
        }
        if let Some(v) = &self.lock_path {
            o = o.lock_path(v);
        }
        o
    }

    fn set_options(&self, mut o: Options) -> Result<Options> {
        for kv in &self.set {
            let table: toml::Table = kv.parse().map_err(|e| {
                anyhow::anyhow!("invalid --set {kv:?}: expected KEY=VALUE in TOML syntax ({e})")
            })?;
            for (k, v) in table {
                o = o.set(&k, v);
            }
        }
        Ok(o)
    }

    /// Loads and validates the configuration these flags select.
    pub fn load_config(&self) -> Result<Config> {
        let mut loader = ConfigLoader::new().options(self.set_options(self.options())?);
        if let Some(p) = &self.config {
            loader = loader.config_file(p);
        }
        let cfg = loader.load()?;
        cfg.validate_backends()?;
        Ok(cfg)
    }
}

/// Sets up tracing at `--log-level` (podman's level names).
pub fn init_logging(g: &GlobalOpts) -> Result<()> {
    let level = match g.log_level.as_str() {
        "trace" => "trace",
        "debug" => "debug",
        "info" => "info",
        "warn" | "warning" => "warn",
        "error" | "fatal" | "panic" => "error",
        other => anyhow::bail!(
            "invalid --log-level {other:?}: expected one of trace, debug, info, warn, error, fatal, panic"
        ),
    };
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(tracing_subscriber::EnvFilter::new(level))
        .with_target(false)
        .init();
    Ok(())
}
