#![recursion_limit = "256"]
//! rpod's engine.
//!
//! The runtime crate wires the other crates together: it reads the
//! configuration, opens the state, lock and events backends *by name through
//! the registry* (it never names a backend itself), drives the OCI layer, and
//! exposes the operations the CLI calls. It holds the engine logic; the CLI
//! only parses arguments and prints.
//!
//! Every operation that reads and then changes a container goes through a
//! [`LockedContainer`], which can only be obtained by taking the container's
//! lock and re-reading its state from the database after locking.

pub mod container;
pub mod cp;
pub mod ctl;
pub mod error;
pub mod exec;
pub mod import;
pub mod info;
pub mod inspect;
pub mod lifecycle;
pub mod names;
pub mod readonly;
pub mod stats;
pub mod volumes;

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicBool, Ordering};

use rpod_config::Config;
use rpod_events::{Event, Eventer};
use rpod_lock::LockManager;
use rpod_state::State;

pub use container::{CreateOptions, LockedContainer, RestartPolicy};
pub use error::{Result, RuntimeError};

/// The engine: a configuration and the backends it selected.
#[derive(Debug)]
pub struct Runtime {
    cfg: Config,
    state: Box<dyn State>,
    locks: Box<dyn LockManager>,
    events: Box<dyn Eventer>,
    exit_command: Vec<String>,
    stopped: AtomicBool,
    /// Why the state refuses writes (a database rpod did not create); see
    /// [`readonly`].
    read_only: Option<String>,
    /// Shared for the runtime's lifetime; exclusive during renumber/reset.
    runtime_lock: lifecycle::RuntimeLock,
}

impl Runtime {
    /// Opens the backends named in `cfg` and prepares rpod's directories.
    ///
    /// `exit_command` is the argv prefix conmon runs when a container exits,
    /// before `container cleanup [--rm] ID` (the CLI passes its own binary and
    /// global options; see [`Runtime::exit_command_for`]).
    pub fn new(cfg: Config, exit_command: Vec<String>) -> Result<Runtime> {
        cfg.validate_backends()?;
        for dir in [&cfg.static_dir, &cfg.tmp_dir, &cfg.root, &cfg.runroot] {
            std::fs::create_dir_all(dir)
                .map_err(|e| RuntimeError::io("create directory", dir, e))?;
        }
        let state = rpod_state::open(&cfg)?;
        // a read-only database (e.g. podman's) is only listed and inspected:
        // its paths are not compared with ours and nothing is written into it
        let read_only = state.read_only_reason();
        let cfg = if read_only.is_none() {
            lifecycle::apply_db_config(cfg, state.as_ref())?
        } else {
            cfg
        };
        let runtime_lock =
            lifecycle::RuntimeLock::acquire(&lifecycle::runtime_lock_path(&cfg), false)?;
        let state = if cfg.namespace.is_empty() {
            state
        } else {
            state.with_namespace(&cfg.namespace)?
        };
        let locks = rpod_lock::open(&cfg)?;
        let events = rpod_events::open(&cfg)?;
        let rt = Runtime {
            cfg,
            state,
            locks,
            events,
            exit_command,
            stopped: AtomicBool::new(false),
            read_only,
            runtime_lock,
        };
        for dir in [
            rt.exits_dir(),
            rt.cfg.runroot.join("containers"),
            rt.cfg.root.join("containers"),
        ] {
            std::fs::create_dir_all(&dir)
                .map_err(|e| RuntimeError::io("create directory", &dir, e))?;
        }
        if rt.read_only.is_none() {
            rt.refresh_if_needed()?;
        }
        Ok(rt)
    }

    /// The argv prefix of the exit command for a CLI whose binary is `exe`:
    /// the same global options (config file, paths, backends) so that
    /// `rpod container cleanup` sees the same state as the process that
    /// started the container.
    pub fn exit_command_for(exe: &Path, cfg: &Config) -> Vec<String> {
        let mut v = vec![exe.display().to_string()];
        let files = cfg.files_read();
        // The last file read is --config when one was given; passing every
        // file read is harmless only for the last, so pass that one and let
        // the system/user files be found again by the child.
        if let Some(last) = files.last() {
            v.push("--config".into());
            v.push(last.display().to_string());
        }
        for (key, origin) in cfg.explicit_keys() {
            if *origin == rpod_config::Origin::Option {
                if let Some(value) = cfg_value_toml(cfg, key) {
                    v.push("--set".into());
                    v.push(format!("{key}={value}"));
                }
            }
        }
        v
    }

    /// The configuration in use (a copy is the caller's to keep).
    pub fn config(&self) -> &Config {
        &self.cfg
    }

    /// The state backend.
    pub fn state(&self) -> &dyn State {
        self.state.as_ref()
    }

    /// The lock manager.
    pub fn locks(&self) -> &dyn LockManager {
        self.locks.as_ref()
    }

    /// The events backend.
    pub fn events(&self) -> &dyn Eventer {
        self.events.as_ref()
    }

    pub(crate) fn check_alive(&self) -> Result<()> {
        if self.stopped.load(Ordering::SeqCst) {
            return Err(RuntimeError::Stopped);
        }
        Ok(())
    }

    /// Writes an event; a failure is logged, never fatal to the operation.
    pub(crate) fn emit(&self, event: Event) {
        if let Err(e) = self.events.write(&event) {
            tracing::warn!("writing {} event: {e}", event.status);
        }
    }

    /// Where conmon writes exit codes.
    pub fn exits_dir(&self) -> PathBuf {
        self.cfg.tmp_dir.join("exits")
    }

    /// The per-boot directory of a container (its OCI bundle).
    pub fn bundle_dir(&self, id: &str) -> PathBuf {
        self.cfg.runroot.join("containers").join(id)
    }

    /// The persistent directory of a container (its log).
    pub fn container_static_dir(&self, id: &str) -> PathBuf {
        self.cfg.root.join("containers").join(id)
    }

    /// Shuts the runtime down; with `force`, stops every running container
    /// first (with its stop timeout). Later calls fail with `Stopped`.
    pub fn shutdown(&self, force: bool) -> Result<()> {
        self.check_alive()?;
        let mut first_err = None;
        if force {
            for rec in self.state.all_containers()? {
                let r = self.lock_container(&rec.config.id).and_then(|mut c| {
                    if c.is_running() {
                        let t = c.config().stop_timeout;
                        c.stop(Some(t))?;
                    }
                    Ok(())
                });
                if let Err(e) = r {
                    tracing::warn!("stopping {} at shutdown: {e}", rec.config.id);
                    first_err.get_or_insert(e);
                }
            }
        }
        self.stopped.store(true, Ordering::SeqCst);
        first_err.map_or(Ok(()), Err)
    }
}

fn cfg_value_toml(cfg: &Config, key: &str) -> Option<String> {
    let v = toml::Value::try_from(cfg.values()).ok()?;
    v.get(key).map(|x| x.to_string())
}

/// Parses podman's `--since` values: an RFC 3339 time, unix seconds, or a
/// duration before now such as `10m` or `1h30m`.
pub fn parse_since(s: &str) -> Result<time::OffsetDateTime> {
    let bad = || RuntimeError::InvalidInput {
        what: "time",
        value: s.to_string(),
        expected: "an RFC 3339 time, unix seconds, or a duration such as 10m or 1h30m".into(),
    };
    if let Ok(t) = time::OffsetDateTime::parse(s, &time::format_description::well_known::Rfc3339) {
        return Ok(t);
    }
    if let Ok(secs) = s.parse::<i64>() {
        return time::OffsetDateTime::from_unix_timestamp(secs).map_err(|_| bad());
    }
    let mut total = 0f64;
    let mut num = String::new();
    let mut chars = s.chars().peekable();
    let mut any = false;
    while let Some(c) = chars.next() {
        if c.is_ascii_digit() || c == '.' {
            num.push(c);
            continue;
        }
        let mut unit = c.to_string();
        if c == 'm' && chars.peek() == Some(&'s') {
            unit.push(chars.next().unwrap_or('s'));
        }
        let n: f64 = num.parse().map_err(|_| bad())?;
        num.clear();
        total += n * match unit.as_str() {
            "h" => 3600.0,
            "m" => 60.0,
            "s" => 1.0,
            "ms" => 0.001,
            _ => return Err(bad()),
        };
        any = true;
    }
    if !any || !num.is_empty() {
        return Err(bad());
    }
    Ok(time::OffsetDateTime::now_utc() - time::Duration::seconds_f64(total))
}
