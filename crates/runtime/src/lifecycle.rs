//! The runtime's own lifecycle: the database configuration, the runtime
//! lock, refresh after a reboot, lock renumbering, migration, reset and the
//! store counts of `rpod info`.
//!
//! # Files in the tmp dir
//!
//! - `rpod-runtime.lock`: every runtime holds a shared `flock` on it for its
//!   lifetime; `rpod system renumber` and `rpod system reset` take it
//!   exclusively, so they never run beside another rpod process.
//! - `alive.lck`: taken exclusively by the one process that refreshes after a
//!   reboot; the others wait on it, then find the refresh done.
//! - `alive`: written when a refresh finished. The tmp dir should be a tmpfs,
//!   so a reboot empties it (libpod's alive file).
//! - `boot_id`: `/proc/sys/kernel/random/boot_id` at the last refresh; a
//!   different boot id means a reboot even when the tmp dir survived.

use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use nix::fcntl::{Flock, FlockArg};
use rpod_config::Config;
use rpod_events::{Event, Status};
use rpod_state::{ContainerStatus, DbConfig, State};
use serde::Serialize;

use crate::{Result, Runtime, RuntimeError};

/// The runtime lock's file name in the tmp dir.
pub const RUNTIME_LOCK_FILE: &str = "rpod-runtime.lock";
/// The refresh lock's file name in the tmp dir.
pub const ALIVE_LOCK_FILE: &str = "alive.lck";
/// The file whose existence says the state was refreshed since boot.
pub const ALIVE_FILE: &str = "alive";
/// The boot id recorded at the last refresh.
pub const BOOT_ID_FILE: &str = "boot_id";

const BOOT_ID_SOURCE: &str = "/proc/sys/kernel/random/boot_id";

/// A held `flock` on the runtime lock file.
pub(crate) struct RuntimeLock {
    lock: Flock<File>,
    path: PathBuf,
}

impl std::fmt::Debug for RuntimeLock {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("RuntimeLock")
            .field("path", &self.path)
            .finish()
    }
}

fn flock_err(path: &Path, e: nix::errno::Errno) -> RuntimeError {
    RuntimeError::io("lock", path, std::io::Error::from(e))
}

impl RuntimeLock {
    /// Opens (creating) `path` and locks it, shared or exclusive, waiting
    /// as long as needed (with a warning when it has to wait).
    pub(crate) fn acquire(path: &Path, exclusive: bool) -> Result<RuntimeLock> {
        let file = std::fs::OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(path)
            .map_err(|e| RuntimeError::io("open", path, e))?;
        let (now, wait) = if exclusive {
            (FlockArg::LockExclusiveNonblock, FlockArg::LockExclusive)
        } else {
            (FlockArg::LockSharedNonblock, FlockArg::LockShared)
        };
        let lock = match Flock::lock(file, now) {
            Ok(l) => l,
            Err((file, nix::errno::Errno::EWOULDBLOCK)) => {
                if exclusive {
                    tracing::warn!(
                        "waiting for other rpod processes to finish ({} is in use)",
                        path.display()
                    );
                } else {
                    tracing::info!("waiting for a system operation of rpod to finish");
                }
                Flock::lock(file, wait).map_err(|(_, e)| flock_err(path, e))?
            }
            Err((_, e)) => return Err(flock_err(path, e)),
        };
        Ok(RuntimeLock {
            lock,
            path: path.to_path_buf(),
        })
    }

    /// Converts the lock (not atomically, as `flock(2)`).
    pub(crate) fn relock(&self, exclusive: bool) -> Result<()> {
        if exclusive {
            if self.lock.relock(FlockArg::LockExclusiveNonblock).is_ok() {
                return Ok(());
            }
            tracing::warn!(
                "waiting for other rpod processes to finish ({} is in use)",
                self.path.display()
            );
        }
        let arg = if exclusive {
            FlockArg::LockExclusive
        } else {
            FlockArg::LockShared
        };
        self.lock.relock(arg).map_err(|e| flock_err(&self.path, e))
    }
}

/// The current boot id, empty when the kernel does not say.
pub fn current_boot_id() -> String {
    std::fs::read_to_string(BOOT_ID_SOURCE)
        .map(|s| s.trim().to_string())
        .unwrap_or_default()
}

/// Whether the state must be refreshed: no alive file in the tmp dir (it
/// was emptied, as by a reboot) or another boot id than at the last refresh.
pub fn needs_refresh(tmp_dir: &Path) -> bool {
    if !tmp_dir.join(ALIVE_FILE).exists() {
        return true;
    }
    let stored = std::fs::read_to_string(tmp_dir.join(BOOT_ID_FILE)).unwrap_or_default();
    stored.trim() != current_boot_id()
}

/// The config key of each database config entry.
fn config_key(db_key: &str) -> &'static str {
    match db_key {
        "static-dir" => "static_dir",
        "tmp-dir" => "tmp_dir",
        "graph-root" => "root",
        "run-root" => "runroot",
        "graph-driver-name" => "graph_driver",
        _ => "volume_path",
    }
}

/// libpod's `ValidateDBConfig`: paths not set explicitly are taken from the
/// database; an explicit one that differs is an error naming both values.
/// On first use the database stores the current paths. Creates the
/// directories of the resulting configuration.
pub fn apply_db_config(mut cfg: Config, state: &dyn State) -> Result<Config> {
    if let Some(db) = state.db_config()? {
        let current = DbConfig::from_config(&cfg);
        for ((db_key, stored), (_, cur)) in db.entries().into_iter().zip(current.entries()) {
            if stored.is_empty() || stored == cur {
                continue;
            }
            let key = config_key(db_key);
            if cfg.is_explicit(key) {
                return Err(RuntimeError::DbConfigMismatch {
                    key,
                    db_key,
                    db: stored.to_string(),
                    current: cur.to_string(),
                });
            }
            tracing::debug!(
                "{key}: using {stored:?} from the database instead of the default {cur:?}"
            );
            cfg.set_default_from(key, toml::Value::String(stored.to_string()))?;
        }
    }
    state.validate_db_config(&DbConfig::from_config(&cfg))?;
    for dir in [&cfg.static_dir, &cfg.tmp_dir, &cfg.root, &cfg.runroot] {
        std::fs::create_dir_all(dir).map_err(|e| RuntimeError::io("create directory", dir, e))?;
    }
    Ok(cfg)
}

/// The runtime lock file of a configuration.
pub(crate) fn runtime_lock_path(cfg: &Config) -> PathBuf {
    cfg.tmp_dir.join(RUNTIME_LOCK_FILE)
}

/// `rpod info`'s container counts.
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
pub struct ContainerStoreCounts {
    /// Containers.
    pub number: usize,
    /// Paused ones.
    pub paused: usize,
    /// Running ones.
    pub running: usize,
    /// The others.
    pub stopped: usize,
}

/// `rpod info`'s store counts (podman's names).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StoreCounts {
    /// Containers by state.
    pub container_store: ContainerStoreCounts,
    /// Named volumes.
    pub volume_count: usize,
}

/// What `rpod system reset` removed.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ResetReport {
    /// Containers removed.
    pub containers: usize,
    /// Pods removed.
    pub pods: usize,
    /// Volumes removed.
    pub volumes: usize,
}

fn remove_path(p: &Path) {
    let r = if p.is_dir() {
        std::fs::remove_dir_all(p)
    } else {
        std::fs::remove_file(p)
    };
    if let Err(e) = r {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!("removing {}: {e}", p.display());
        }
    }
}

impl Runtime {
    /// On the first command after a reboot, refreshes the state (exactly one
    /// process does; the others wait for it on the alive lock).
    pub(crate) fn refresh_if_needed(&self) -> Result<()> {
        let tmp = self.config().tmp_dir.clone();
        if !needs_refresh(&tmp) {
            return Ok(());
        }
        let _alive = RuntimeLock::acquire(&tmp.join(ALIVE_LOCK_FILE), true)?;
        if !needs_refresh(&tmp) {
            return Ok(()); // another process refreshed while we waited
        }
        self.refresh()?;
        let boot = tmp.join(BOOT_ID_FILE);
        std::fs::write(&boot, current_boot_id())
            .map_err(|e| RuntimeError::io("write", &boot, e))?;
        let alive = tmp.join(ALIVE_FILE);
        std::fs::write(&alive, b"").map_err(|e| RuntimeError::io("write", &alive, e))?;
        self.restart_after_refresh();
        Ok(())
    }

    /// Resets every container's runtime state (containers that were
    /// running are now exited), reallocates every lock by id, recreates the
    /// tmp dirs and emits `refresh`.
    pub fn refresh(&self) -> Result<()> {
        let all = self.state().with_namespace("")?;
        let before = all.all_containers()?;
        all.refresh()?;
        for rec in &before {
            if matches!(
                rec.state.state,
                ContainerStatus::Running
                    | ContainerStatus::Paused
                    | ContainerStatus::Created
                    | ContainerStatus::Stopped
                    | ContainerStatus::Stopping
            ) {
                let id = &rec.config.id;
                let mut s = all.container_state(id)?;
                s.state = ContainerStatus::Exited;
                s.exited = true;
                s.exit_code = -1;
                s.finished_time = rpod_state::Timestamp::now();
                all.save_container_state(id, &s)?;
                all.add_exit_code(id, -1)?;
            }
        }
        let mut ids: Vec<u32> = before.iter().map(|c| c.config.lock_id).collect();
        ids.extend(all.all_pods()?.iter().map(|p| p.config.lock_id));
        ids.extend(all.all_volumes()?.iter().map(|v| v.config.lock_id));
        self.locks().reallocate(&ids)?;
        for dir in [self.exits_dir(), self.config().runroot.join("containers")] {
            std::fs::create_dir_all(&dir)
                .map_err(|e| RuntimeError::io("create directory", &dir, e))?;
        }
        tracing::info!(
            "refreshed the state after a reboot ({} containers)",
            before.len()
        );
        self.emit(Event::system(Status::Refresh));
        Ok(())
    }

    /// Starts the containers whose restart policy is `always` again.
    fn restart_after_refresh(&self) {
        let Ok(all) = self.state().all_containers() else {
            return;
        };
        for rec in all {
            if rec.config.restart_policy != "always" {
                continue;
            }
            let r = self.lock_container(&rec.config.id).and_then(|mut c| {
                if !c.is_running() {
                    c.start()?;
                }
                Ok(())
            });
            if let Err(e) = r {
                tracing::warn!("restarting {} after a reboot: {e}", rec.config.id);
            }
        }
    }

    /// `rpod system renumber`: frees every lock and gives each container,
    /// pod and volume (in every namespace) a fresh one, with the lock storage
    /// recreated for the configured `num_locks` when it changed. Runs with
    /// the runtime lock held exclusively, so no other rpod process runs
    /// meanwhile. Event `renumber`. Returns how many objects were renumbered.
    pub fn renumber(cfg: Config) -> Result<usize> {
        cfg.validate_backends()?;
        std::fs::create_dir_all(&cfg.tmp_dir)
            .map_err(|e| RuntimeError::io("create directory", &cfg.tmp_dir, e))?;
        let _lock = RuntimeLock::acquire(&runtime_lock_path(&cfg), true)?;
        for dir in [&cfg.static_dir, &cfg.root, &cfg.runroot] {
            std::fs::create_dir_all(dir)
                .map_err(|e| RuntimeError::io("create directory", dir, e))?;
        }
        let state = rpod_state::open(&cfg)?;
        let cfg = apply_db_config(cfg, state.as_ref())?;
        let locks = rpod_lock::open_for_renumber(&cfg)?;
        locks.free_all()?;
        let mut n = 0;
        for rec in state.all_containers()? {
            let mut c = rec.config;
            c.lock_id = locks.allocate()?.id();
            state.rewrite_container_config(&c)?;
            n += 1;
        }
        for rec in state.all_pods()? {
            let mut p = rec.config;
            p.lock_id = locks.allocate()?.id();
            state.rewrite_pod_config(&p)?;
            n += 1;
        }
        for rec in state.all_volumes()? {
            let mut v = rec.config;
            v.lock_id = locks.allocate()?.id();
            state.rewrite_volume_config(&v)?;
            n += 1;
        }
        let events = rpod_events::open(&cfg)?;
        if let Err(e) = events.write(&Event::system(Status::Renumber)) {
            tracing::warn!("writing renumber event: {e}");
        }
        Ok(n)
    }

    /// `rpod info`'s counts of containers (by state) and volumes.
    pub fn store_counts(&self) -> Result<StoreCounts> {
        let mut c = ContainerStoreCounts::default();
        for rec in self.list_containers()? {
            c.number += 1;
            match rec.state.state {
                ContainerStatus::Running => c.running += 1,
                ContainerStatus::Paused => c.paused += 1,
                _ => c.stopped += 1,
            }
        }
        Ok(StoreCounts {
            container_store: c,
            volume_count: self.list_volumes()?.len(),
        })
    }

    /// `rpod system migrate`: rewrites every stored record in the current
    /// schema; with `new_runtime`, moves every container to that OCI runtime
    /// (running ones are stopped first, and a line says so on `out`).
    /// Runs with the runtime lock held exclusively. Event `migrate`.
    /// Returns how many containers were rewritten.
    pub fn migrate(&self, new_runtime: Option<&str>, out: &mut dyn Write) -> Result<usize> {
        self.check_alive()?;
        let target = match new_runtime {
            Some(name) => {
                let rt = rpod_oci::OciRuntime::find(self.config(), Some(name))?;
                Some(if Path::new(name).is_absolute() {
                    rt.path.display().to_string()
                } else {
                    rt.name.clone()
                })
            }
            None => None,
        };
        self.runtime_lock.relock(true)?;
        let result = self.migrate_locked(target.as_deref(), out);
        self.runtime_lock.relock(false)?;
        let n = result?;
        let mut ev = Event::system(Status::Migrate);
        if let Some(t) = &target {
            ev = ev.with_attribute("runtime", t);
        }
        self.emit(ev);
        Ok(n)
    }

    fn migrate_locked(&self, target: Option<&str>, out: &mut dyn Write) -> Result<usize> {
        let mut n = 0;
        for rec in self.state().all_containers()? {
            let id = rec.config.id.clone();
            let mut c = self.lock_container(&id)?;
            let mut config = c.config().clone();
            if let Some(t) = target {
                if config.runtime != t {
                    if c.is_running() || c.state().state == ContainerStatus::Created {
                        c.stop(None)?;
                        let _ = writeln!(
                            out,
                            "stopped container {} ({}) to move it to runtime {t}",
                            &id[..id.len().min(12)],
                            config.name
                        );
                    }
                    config.runtime = t.to_string();
                }
            }
            self.state().rewrite_container_config(&config)?;
            self.state().save_container_state(&id, c.state())?;
            drop(c);
            n += 1;
        }
        for rec in self.state().all_pods()? {
            self.state().rewrite_pod_config(&rec.config)?;
            self.state().save_pod_state(&rec.config.id, &rec.state)?;
        }
        for rec in self.state().all_volumes()? {
            self.state().rewrite_volume_config(&rec.config)?;
            self.state()
                .save_volume_state(&rec.config.name, &rec.state)?;
        }
        Ok(n)
    }

    /// `rpod system reset`: removes every container (stopping it), pod and
    /// volume, then the state database, the lock storage, the events log and
    /// rpod's directories (root, run root, static dir, tmp dir, volume path).
    /// Takes the runtime lock exclusively. The runtime is stopped afterwards.
    pub fn reset(&self) -> Result<ResetReport> {
        self.check_alive()?;
        let mut report = ResetReport::default();
        let mut monitors = Vec::new();
        for rec in self.state().all_containers()? {
            if rec.state.conmon_pid > 0 {
                monitors.push(rec.state.conmon_pid);
            }
            match self.lock_container(&rec.config.id) {
                Ok(c) => match c.remove(true) {
                    Ok(()) => report.containers += 1,
                    Err(e) => tracing::warn!("removing container {}: {e}", rec.config.id),
                },
                Err(e) => tracing::warn!("locking container {}: {e}", rec.config.id),
            }
        }
        // conmon runs `container cleanup` when a container stops: let those
        // finish (they need the runtime lock shared) before removing the
        // storage they would otherwise recreate.
        let deadline = std::time::Instant::now() + std::time::Duration::from_secs(10);
        while monitors.iter().any(|&p| rpod_oci::exit::process_alive(p))
            && std::time::Instant::now() < deadline
        {
            std::thread::sleep(std::time::Duration::from_millis(50));
        }
        self.runtime_lock.relock(true)?;
        let all = self.state().with_namespace("")?;
        for rec in all.all_pods()? {
            let id = &rec.config.id;
            let r = all
                .remove_pod_containers(id)
                .and_then(|_| all.remove_pod(id));
            match r {
                Ok(()) => report.pods += 1,
                Err(e) => tracing::warn!("removing pod {id}: {e}"),
            }
        }
        for rec in self.state().all_volumes()? {
            match self.remove_volume(&rec.config.name, true) {
                Ok(()) => report.volumes += 1,
                Err(e) => tracing::warn!("removing volume {}: {e}", rec.config.name),
            }
        }
        self.emit(Event::system(Status::Reset));
        if let Some(db) = self.state().path() {
            remove_path(db);
        }
        self.locks().destroy()?;
        let cfg = self.config();
        remove_path(&cfg.events_log_file());
        for dir in [
            &cfg.volume_path,
            &cfg.static_dir,
            &cfg.runroot,
            &cfg.root,
            &cfg.tmp_dir,
        ] {
            remove_path(dir);
        }
        self.stopped
            .store(true, std::sync::atomic::Ordering::SeqCst);
        Ok(report)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rpod_config::{ConfigLoader, Options, UserDirs};

    fn load(tmp: &Path, opts: Options) -> Config {
        ConfigLoader {
            system_file: "/nonexistent".into(),
            override_file: "/nonexistent".into(),
            user: UserDirs::current(),
            config_file: None,
            options: opts
                .root(tmp.join("root"))
                .runroot(tmp.join("run"))
                .database_backend("memory"),
        }
        .load()
        .unwrap()
    }

    #[test]
    fn db_config_fills_defaults_and_refuses_explicit_differences() {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path();
        let first = load(t, Options::new().volume_path(t.join("vols1")));
        let state = rpod_state::open(&first).unwrap();
        let first = apply_db_config(first, state.as_ref()).unwrap();
        assert_eq!(first.volume_path, t.join("vols1"));
        assert_eq!(
            state.db_config().unwrap().unwrap().volume_path,
            t.join("vols1").display().to_string()
        );
        // not explicit: taken from the database
        let second = load(t, Options::new());
        assert_eq!(second.volume_path, t.join("root/volumes"));
        let second = apply_db_config(second, state.as_ref()).unwrap();
        assert_eq!(second.volume_path, t.join("vols1"));
        // explicit and different: an error naming both values and the way out
        let third = load(t, Options::new().volume_path(t.join("vols2")));
        let err = apply_db_config(third, state.as_ref()).unwrap_err();
        match &err {
            RuntimeError::DbConfigMismatch {
                key,
                db_key,
                db,
                current,
            } => {
                assert_eq!((*key, *db_key), ("volume_path", "volume-path"));
                assert_eq!(db, &t.join("vols1").display().to_string());
                assert_eq!(current, &t.join("vols2").display().to_string());
            }
            other => panic!("unexpected {other:?}"),
        }
        let msg = err.to_string();
        assert!(msg.contains("vols1") && msg.contains("vols2") && msg.contains("system reset"));
        // explicit and equal: fine
        let fourth = load(t, Options::new().volume_path(t.join("vols1")));
        apply_db_config(fourth, state.as_ref()).unwrap();
    }

    #[test]
    fn reboot_detection_uses_the_alive_file_and_the_boot_id() {
        let tmp = tempfile::tempdir().unwrap();
        let t = tmp.path();
        assert!(needs_refresh(t), "no alive file");
        std::fs::write(t.join(ALIVE_FILE), "").unwrap();
        std::fs::write(t.join(BOOT_ID_FILE), current_boot_id()).unwrap();
        assert!(!needs_refresh(t));
        std::fs::write(t.join(BOOT_ID_FILE), "another boot").unwrap();
        assert!(needs_refresh(t), "another boot id");
    }
}
