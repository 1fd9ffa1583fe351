//! Containers: create, init, start, stop, kill, wait, cleanup, remove.
//!
//! podman's state machine: configured → created → running → exited (and
//! paused, stopping, removing). Every change goes through a
//! [`LockedContainer`], which exists only while the container's lock is held
//! and whose record was re-read from the database after locking.

use std::cell::Cell;
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::path::{Path, PathBuf};
use std::time::Duration;

use rpod_events::{Event, Status};
use rpod_lock::LockGuard;
use rpod_oci::exit::ExitOutcome;
use rpod_oci::spec::{NetworkMode, SeccompMode, SpecOptions};
use rpod_oci::{AttachSocket, Conmon, ConmonMonitor, CreateRequest, Monitor, OciRuntime};
use rpod_state::{
    ContainerConfig, ContainerRecord, ContainerState, ContainerStatus, RawJson, Timestamp,
};
use serde::{Deserialize, Serialize};

use crate::{names, Result, Runtime, RuntimeError};

/// Key under which the create options are kept in the container config.
pub(crate) const CREATE_KEY: &str = "rpodCreate";

/// A restart policy (`--restart`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum RestartPolicy {
    /// Never restart (`no`).
    #[default]
    No,
    /// Restart on a non-zero exit, at most N times when N > 0.
    OnFailure(u32),
    /// Always restart.
    Always,
    /// Always, unless stopped by the user.
    UnlessStopped,
}

impl RestartPolicy {
    /// Parses podman's `--restart` values.
    pub fn parse(s: &str) -> Result<Self> {
        let bad = || RuntimeError::InvalidInput {
            what: "restart policy",
            value: s.to_string(),
            expected: "no, on-failure[:N], always or unless-stopped".into(),
        };
        Ok(match s {
            "" | "no" => RestartPolicy::No,
            "always" => RestartPolicy::Always,
            "unless-stopped" => RestartPolicy::UnlessStopped,
            "on-failure" => RestartPolicy::OnFailure(0),
            _ => match s.strip_prefix("on-failure:") {
                Some(n) => RestartPolicy::OnFailure(n.parse().map_err(|_| bad())?),
                None => return Err(bad()),
            },
        })
    }

    /// podman's name for the policy.
    pub fn name(self) -> &'static str {
        match self {
            RestartPolicy::No => "",
            RestartPolicy::OnFailure(_) => "on-failure",
            RestartPolicy::Always => "always",
            RestartPolicy::UnlessStopped => "unless-stopped",
        }
    }
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// What a container is created from (`rpod create`/`run` flags). Kept in the
/// container's config so that `init` can regenerate the bundle.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(default, rename_all = "camelCase")]
pub struct CreateOptions {
    /// `--name`; generated when `None`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub name: Option<String>,
    /// `--rootfs DIR`.
    pub rootfs: PathBuf,
    /// Command and arguments.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub command: Vec<String>,
    /// `-e KEY=VALUE`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub env: Vec<String>,
    /// `-w`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub workdir: String,
    /// `-u uid[:gid]`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub user: String,
    /// `--hostname`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub hostname: String,
    /// `--label KEY=VALUE`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub labels: BTreeMap<String, String>,
    /// `--annotation KEY=VALUE`.
    #[serde(skip_serializing_if = "BTreeMap::is_empty")]
    pub annotations: BTreeMap<String, String>,
    /// `-v /host:/ctr[:ro]`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub volumes: Vec<String>,
    /// `--cap-add`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cap_add: Vec<String>,
    /// `--cap-drop`.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub cap_drop: Vec<String>,
    /// `--privileged`.
    #[serde(skip_serializing_if = "is_false")]
    pub privileged: bool,
    /// `--read-only`.
    #[serde(skip_serializing_if = "is_false")]
    pub read_only: bool,
    /// `--security-opt` (`seccomp=unconfined|PATH`, `no-new-privileges`).
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub security_opt: Vec<String>,
    /// `--network none|host` (empty: none).
    #[serde(skip_serializing_if = "String::is_empty")]
    pub network: String,
    /// `--init`.
    #[serde(skip_serializing_if = "is_false")]
    pub init: bool,
    /// `-t`.
    #[serde(skip_serializing_if = "is_false")]
    pub tty: bool,
    /// `-i`.
    #[serde(skip_serializing_if = "is_false")]
    pub interactive: bool,
    /// `--rm`.
    #[serde(skip_serializing_if = "is_false")]
    pub autoremove: bool,
    /// `--runtime NAME|PATH` for this container.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub runtime: Option<String>,
    /// `--stop-signal` as a number.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_signal: Option<i32>,
    /// `--stop-timeout`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub stop_timeout: Option<u32>,
    /// `--restart`.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub restart: String,
    /// The command line that created the container.
    #[serde(skip_serializing_if = "Vec::is_empty")]
    pub create_command: Vec<String>,
}

fn parse_network(s: &str) -> Result<NetworkMode> {
    match s {
        "" | "none" => Ok(NetworkMode::None),
        "host" => Ok(NetworkMode::Host),
        other => Err(RuntimeError::InvalidInput {
            what: "network mode",
            value: other.to_string(),
            expected: "none or host (bridge networking is not available yet)".into(),
        }),
    }
}

impl CreateOptions {
    /// The spec options for container `id` with hostname `hostname`.
    fn spec_options(&self, rt: &Runtime, id: &str, hostname: &str) -> Result<SpecOptions> {
        let mounts = rt.volume_bind_mounts(&self.volumes)?;
        self.spec_options_with(rt.config(), id, hostname, mounts)
    }

    /// The spec options rpod generates the OCI spec of container `id` from,
    /// under configuration `cfg`, with hostname `hostname` and `mounts` (the
    /// bind mounts `volumes` resolve to; `Runtime` resolves them, creating
    /// named volumes). Public so that tools (the benchmark's floor) run
    /// exactly the container `rpod run` would.
    pub fn spec_options_with(
        &self,
        cfg: &rpod_config::RuntimeConfig,
        id: &str,
        hostname: &str,
        mounts: Vec<rpod_oci::spec::BindMount>,
    ) -> Result<SpecOptions> {
        let mut seccomp = SeccompMode::Default;
        let mut no_new_privileges = false;
        for opt in &self.security_opt {
            match opt.split_once(['=', ':']) {
                Some(("seccomp", "unconfined")) => seccomp = SeccompMode::Unconfined,
                Some(("seccomp", path)) => seccomp = SeccompMode::Path(PathBuf::from(path)),
                None if opt == "no-new-privileges" => no_new_privileges = true,
                Some(("no-new-privileges", "true")) => no_new_privileges = true,
                Some(("no-new-privileges", "false")) => no_new_privileges = false,
                _ => {
                    return Err(RuntimeError::InvalidInput {
                        what: "--security-opt",
                        value: opt.clone(),
                        expected: "seccomp=unconfined, seccomp=PATH or no-new-privileges".into(),
                    })
                }
            }
        }
        let mut annotations = self.annotations.clone();
        annotations.insert("io.container.manager".into(), "rpod".into());
        Ok(SpecOptions {
            id: id.to_string(),
            args: self.command.clone(),
            env: self.env.clone(),
            cwd: self.workdir.clone(),
            user: self.user.clone(),
            terminal: self.tty,
            hostname: hostname.to_string(),
            rootfs: self.rootfs.clone(),
            read_only: self.read_only,
            mounts,
            cap_add: self.cap_add.clone(),
            cap_drop: self.cap_drop.clone(),
            privileged: self.privileged,
            no_new_privileges,
            seccomp,
            network: parse_network(&self.network)?,
            init: self.init.then(|| cfg.init_path.clone()),
            cgroups_path: rpod_oci::spec::cgroups_path(cfg.cgroup_manager, &cfg.cgroup_parent, id),
            annotations,
            hooks_dirs: cfg.hooks_dir.clone(),
            stop_signal: self.stop_signal.unwrap_or(15),
            ..SpecOptions::default()
        })
    }
}

fn now() -> Timestamp {
    Timestamp::now()
}

pub(crate) fn event(status: Status, cfg: &ContainerConfig) -> Event {
    let mut e = Event::container(status, &cfg.id, &cfg.name, &cfg.rootfs);
    for (k, v) in &cfg.labels {
        e = e.with_attribute(k, v);
    }
    if let Some(pod) = &cfg.pod {
        e = e.with_pod_id(pod);
    }
    e
}

/// Whether a process exists.
fn alive(pid: i32) -> bool {
    pid > 0 && rpod_oci::exit::process_alive(pid)
}

impl Runtime {
    pub(crate) fn oci_runtime(&self, requested: Option<&str>) -> Result<OciRuntime> {
        Ok(OciRuntime::find(self.config(), requested)?)
    }

    pub(crate) fn monitor(&self) -> Result<ConmonMonitor> {
        Ok(ConmonMonitor::new(Conmon::find(self.config(), None)?))
    }

    /// How many generated names `create` tries before giving up.
    const NAME_ATTEMPTS: u32 = 100;

    /// Creates a container (state `configured`). Everything is validated
    /// before anything is stored; on a failure nothing is left behind.
    pub fn create_container(&self, opts: &CreateOptions) -> Result<ContainerConfig> {
        self.check_alive()?;
        self.check_writable("create a container")?;
        let mut opts = opts.clone();
        let vols = self.prepare_volumes(&mut opts.volumes)?;
        match self.create_container_with(&opts, vols.named) {
            Ok(c) => {
                self.volumes_created(&vols.created);
                Ok(c)
            }
            Err(e) => {
                self.undo_volumes(&vols.created);
                Err(e)
            }
        }
    }

    fn create_container_with(
        &self,
        opts: &CreateOptions,
        named_volumes: Vec<rpod_state::NamedVolume>,
    ) -> Result<ContainerConfig> {
        if opts.command.is_empty() {
            return Err(RuntimeError::InvalidInput {
                what: "command",
                value: String::new(),
                expected: "a command to run (rpod runs containers from --rootfs, which has no default command)".into(),
            });
        }
        let restart = RestartPolicy::parse(&opts.restart)?;
        if restart != RestartPolicy::No && opts.autoremove {
            return Err(RuntimeError::InvalidInput {
                what: "--restart with --rm",
                value: opts.restart.clone(),
                expected: "no restart policy when the container is removed on exit".into(),
            });
        }
        let rootfs =
            std::fs::canonicalize(&opts.rootfs).map_err(|e| RuntimeError::InvalidInput {
                what: "--rootfs",
                value: opts.rootfs.display().to_string(),
                expected: format!("an existing directory ({e})"),
            })?;
        let mut opts = opts.clone();
        opts.rootfs = rootfs;
        if let Some(n) = opts.name.as_deref().filter(|n| !names::is_valid(n)) {
            return Err(RuntimeError::InvalidName {
                what: "container",
                name: n.to_string(),
            });
        }
        let id = names::new_id();
        let runtime = self.oci_runtime(opts.runtime.as_deref())?;
        // conmon is needed to start it: fail now rather than after storing it
        Conmon::find(self.config(), None)?;
        let hostname = if opts.hostname.is_empty() {
            id[..12].to_string()
        } else {
            opts.hostname.clone()
        };
        let spec_opts = opts.spec_options(self, &id, &hostname)?;
        let spec = rpod_oci::spec::generate_for_bundle(&spec_opts, &self.bundle_dir(&id))?;
        // The spec is validated now but not stored: it is regenerated from the
        // create options when needed (see `Runtime::hydrate`), which keeps the
        // records small so that listing thousands of containers stays cheap.
        drop(spec);
        let lock = self.locks().allocate()?;
        let mut extra = serde_json::Map::new();
        extra.insert(
            CREATE_KEY.into(),
            serde_json::to_value(&opts).unwrap_or(serde_json::Value::Null),
        );
        let (restart_policy, restart_retries) = match restart {
            RestartPolicy::OnFailure(n) => ("on-failure".to_string(), n),
            other => (other.name().to_string(), 0),
        };
        let static_dir = self.container_static_dir(&id);
        let mut config = ContainerConfig {
            id: id.clone(),
            name: opts.name.clone().unwrap_or_else(|| names::generate(0)),
            namespace: self.config().namespace.clone(),
            lock_id: lock.id(),
            created_time: now(),
            rootfs: opts.rootfs.display().to_string(),
            spec: RawJson::null(),
            labels: opts.labels.clone(),
            runtime: if opts.runtime.is_some() {
                runtime.path.display().to_string()
            } else {
                runtime.name.clone()
            },
            static_dir: static_dir.display().to_string(),
            log_path: static_dir.join("ctr.log").display().to_string(),
            conmon_pid_file: self
                .bundle_dir(&id)
                .join("conmon.pid")
                .display()
                .to_string(),
            stop_signal: opts.stop_signal.unwrap_or(15) as u32,
            stop_timeout: opts.stop_timeout.unwrap_or(self.config().stop_timeout),
            restart_policy,
            restart_retries,
            exit_command: self.exit_command_args(&id, opts.autoremove),
            create_command: opts.create_command.clone(),
            network_mode: if opts.network.is_empty() {
                "none".into()
            } else {
                opts.network.clone()
            },
            hostname,
            init: opts.init,
            autoremove: opts.autoremove,
            named_volumes,
            extra,
            ..ContainerConfig::default()
        };
        // A generated name is checked by the store itself, atomically with
        // the add: on a clash, another name is tried (numbered after 10 tries).
        let mut attempt = 1;
        let added = loop {
            match self
                .state()
                .add_container(&config, &ContainerState::configured())
            {
                Err(rpod_state::StateError::NameInUse { .. })
                    if opts.name.is_none() && attempt < Self::NAME_ATTEMPTS =>
                {
                    config.name = names::generate(attempt / 10);
                    attempt += 1;
                }
                Err(rpod_state::StateError::NameInUse { .. }) if opts.name.is_none() => {
                    break Err(RuntimeError::InvalidInput {
                        what: "generated name",
                        value: config.name.clone(),
                        expected: format!(
                            "a free name ({} attempts collided; pass --name)",
                            Self::NAME_ATTEMPTS
                        ),
                    })
                }
                other => break other.map_err(RuntimeError::from),
            }
        };
        if let Err(e) = added {
            if let Err(fe) = self.locks().free(lock.id()) {
                tracing::warn!("freeing lock {} after a failed create: {fe}", lock.id());
            }
            return Err(e);
        }
        self.emit(event(Status::Create, &config));
        Ok(config)
    }

    pub(crate) fn exit_command_args(&self, id: &str, rm: bool) -> Vec<String> {
        let mut v = self.exit_command.clone();
        v.extend(["container".to_string(), "cleanup".to_string()]);
        if rm {
            v.push("--rm".into());
        }
        v.push(id.to_string());
        v
    }

    /// Finds a container by id, name or id prefix (no lock taken).
    pub fn lookup_container(&self, id_or_name: &str) -> Result<ContainerRecord> {
        self.check_alive()?;
        let mut rec = self.state().lookup_container(id_or_name)?;
        self.hydrate(&mut rec);
        Ok(rec)
    }

    /// Fills `config.spec` of a container rpod created (which stores only its
    /// create options) with the OCI spec generated from them. Records from
    /// elsewhere (podman) keep the spec they carry.
    pub fn hydrate(&self, rec: &mut ContainerRecord) {
        if let Some(spec) = self.regenerated_spec(rec) {
            rec.config.spec = RawJson::from_value(&spec);
        }
    }

    /// The OCI spec of a container: the one its record carries, or the one
    /// generated from its create options (see [`Runtime::hydrate`]).
    pub fn container_spec(&self, rec: &ContainerRecord) -> serde_json::Value {
        self.regenerated_spec(rec)
            .unwrap_or_else(|| rec.config.spec.to_value())
    }

    /// The spec generated from the create options of a record that carries
    /// none; `None` when it carries one or has no create options.
    fn regenerated_spec(&self, rec: &ContainerRecord) -> Option<serde_json::Value> {
        if !rec.config.spec.is_null() {
            return None;
        }
        let opts = rec
            .config
            .extra
            .get(CREATE_KEY)
            .and_then(|v| serde_json::from_value::<CreateOptions>(v.clone()).ok())?;
        let id = rec.config.id.clone();
        let spec = opts
            .spec_options(self, &id, &rec.config.hostname)
            .and_then(|so| {
                Ok(rpod_oci::spec::generate_for_bundle(
                    &so,
                    &self.bundle_dir(&id),
                )?)
            });
        match spec.map(|s| serde_json::to_value(&s)) {
            Ok(Ok(v)) => Some(v),
            Ok(Err(e)) => {
                tracing::warn!("serialising the spec of {id}: {e}");
                None
            }
            Err(e) => {
                tracing::warn!("regenerating the spec of {id}: {e}");
                None
            }
        }
    }

    /// The command of a container: from its spec, or its create options.
    pub fn container_command(rec: &ContainerRecord) -> Vec<String> {
        #[derive(serde::Deserialize)]
        struct Spec {
            process: Option<Process>,
        }
        #[derive(serde::Deserialize)]
        struct Process {
            #[serde(default)]
            args: Vec<String>,
        }
        if let Ok(Spec {
            process: Some(Process { args }),
        }) = rec.config.spec.parse::<Spec>()
        {
            return args;
        }
        rec.config
            .extra
            .get(CREATE_KEY)
            .and_then(|o| o.get("command"))
            .and_then(|c| c.as_array())
            .map(|a| {
                a.iter()
                    .filter_map(|x| x.as_str().map(String::from))
                    .collect()
            })
            .unwrap_or_default()
    }

    /// Every container in the namespace, with the state shown as it is now
    /// (a running container whose exit file exists shows as exited), without
    /// writing to the database.
    pub fn list_containers(&self) -> Result<Vec<ContainerRecord>> {
        self.check_alive()?;
        let mut all = self.state().all_containers()?;
        for rec in &mut all {
            // a read-only (foreign) database's containers are not ours to sync
            if self.read_only_reason().is_none() {
                self.apply_exit_file(rec);
            }
        }
        Ok(all)
    }

    /// Like [`list_containers`](Self::list_containers), one container at a
    /// time (`ps` of thousands of containers without holding them all).
    /// `f` runs while the database is read, so it must not wait on anything.
    pub fn for_each_container(
        &self,
        mut f: impl FnMut(ContainerRecord) -> Result<()>,
    ) -> Result<()> {
        self.check_alive()?;
        let sync = self.read_only_reason().is_none();
        let mut failed = None;
        let walked = self.state().for_each_container(&mut |mut rec| {
            if sync {
                self.apply_exit_file(&mut rec);
            }
            f(rec).map_err(|e| {
                failed = Some(e);
                rpod_state::StateError::invalid("listing stopped")
            })
        });
        match (failed, walked) {
            (Some(e), _) => Err(e),
            (None, r) => Ok(r?),
        }
    }

    /// A container as `inspect` shows it: found by id, name or prefix, its
    /// spec filled in and its state as it is now (without the lock, without
    /// writing).
    pub fn inspect_container(&self, id_or_name: &str) -> Result<ContainerRecord> {
        let mut rec = self.lookup_container(id_or_name)?;
        if self.read_only_reason().is_none() {
            self.apply_exit_file(&mut rec);
        }
        Ok(rec)
    }

    /// Updates `rec.state` in memory from the exit file; returns whether it
    /// changed (the container exited since the state was saved).
    fn apply_exit_file(&self, rec: &mut ContainerRecord) -> bool {
        let s = &mut rec.state;
        if !matches!(
            s.state,
            ContainerStatus::Running
                | ContainerStatus::Paused
                | ContainerStatus::Created
                | ContainerStatus::Stopping
        ) {
            return false;
        }
        let exit_dir = self.exits_dir();
        let code = match rpod_oci::exit::read_exit_code(&exit_dir, &rec.config.id) {
            Ok(Some(code)) => Some(code),
            Ok(None) if s.conmon_pid > 0 && !alive(s.conmon_pid) && !alive(s.pid) => {
                // The monitor died without writing the exit file (killed):
                // the process is gone, its code unknown.
                match rpod_oci::exit::read_exit_code(&exit_dir, &rec.config.id) {
                    Ok(Some(code)) => Some(code),
                    _ => Some(-1),
                }
            }
            _ => None,
        };
        let Some(code) = code else { return false };
        let finished = std::fs::metadata(rpod_oci::exit::exit_file(&exit_dir, &rec.config.id))
            .and_then(|m| m.modified())
            .map(|t| Timestamp::from_datetime(time::OffsetDateTime::from(t)))
            .unwrap_or_else(|_| now());
        s.state = ContainerStatus::Stopped;
        s.exit_code = code;
        s.exited = true;
        s.finished_time = finished;
        s.oom_killed = rpod_oci::exit::oom_killed(&self.bundle_dir(&rec.config.id));
        s.pid = 0;
        true
    }

    /// Takes the lock of a container and re-reads (and syncs) its state.
    pub fn lock_container(&self, id_or_name: &str) -> Result<LockedContainer<'_>> {
        self.lock_container_with(id_or_name, true)
    }

    /// [`Runtime::lock_container`]; with `save_sync` false, a state brought up
    /// to date from the exit file is not written back at once but by the next
    /// save, or when the container is unlocked (for a caller that removes
    /// the container next, which makes that write useless).
    pub(crate) fn lock_container_with(
        &self,
        id_or_name: &str,
        save_sync: bool,
    ) -> Result<LockedContainer<'_>> {
        self.check_alive()?;
        self.check_writable("change a container")?;
        let rec = self.state().lookup_container(id_or_name)?;
        // Another process may remove the container (and free its lock)
        // between the lookup and the lock: that is "not found", as if the
        // lookup had come a moment later.
        let gone = |e: RuntimeError| match self.state().has_container(&rec.config.id) {
            Ok(false) => rpod_state::StateError::not_found(
                rpod_state::ObjectKind::Container,
                rec.config.id.clone(),
            )
            .into(),
            _ => e,
        };
        let lock = self
            .locks()
            .retrieve(rec.config.lock_id)
            .map_err(|e| gone(e.into()))?;
        let guard = lock.lock().map_err(|e| gone(e.into()))?;
        if guard.previous_owner_died() {
            tracing::warn!(
                "the previous holder of container {}'s lock died while holding it",
                rec.config.id
            );
        }
        // Re-read after locking: another process may have changed or removed it.
        let state = self.state().container_state(&rec.config.id)?;
        // the spec is not regenerated here: few operations need it (see
        // `LockedContainer::spec`)
        let rec = ContainerRecord {
            config: rec.config,
            state,
        };
        let mut c = LockedContainer {
            rt: self,
            _guard: guard,
            rec,
            unsaved: Cell::new(false),
        };
        c.sync(save_sync)?;
        Ok(c)
    }

    /// Waits for a container to exit and returns its exit code. The lock is
    /// not held while waiting. Works after the container was removed (`--rm`)
    /// through the recorded exit codes.
    pub fn wait_container(&self, id_or_name: &str) -> Result<i32> {
        Ok(self.wait_container_then(id_or_name, false)?.0)
    }

    /// [`Runtime::wait_container`]; with `remove`, the container is removed
    /// (with its anonymous volumes) under the same lock that records its
    /// exit, and the flag returned says whether that happened.
    fn wait_container_then(&self, id_or_name: &str, remove: bool) -> Result<(i32, bool)> {
        self.check_alive()?;
        let rec = match self.state().lookup_container(id_or_name) {
            Ok(r) => r,
            Err(e) => {
                // a full id of a removed container still has an exit code
                if let Ok(code) = self.state().exit_code(id_or_name) {
                    return Ok((code.code, false));
                }
                return Err(e.into());
            }
        };
        let id = rec.config.id.clone();
        loop {
            let state = match self.state().container_state(&id) {
                Ok(s) => s,
                Err(e) if e.is_not_found() => {
                    return Ok((self.state().exit_code(&id)?.code, false));
                }
                Err(e) => return Err(e.into()),
            };
            match state.state {
                ContainerStatus::Exited | ContainerStatus::Stopped => {
                    return Ok((state.exit_code, false))
                }
                ContainerStatus::Configured => {
                    if state.exited {
                        return Ok((state.exit_code, false));
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
                _ => {
                    let monitor = (state.conmon_pid > 0).then_some(state.conmon_pid);
                    match rpod_oci::exit::wait_for_exit(
                        &self.exits_dir(),
                        &id,
                        monitor,
                        Duration::from_secs(1),
                    ) {
                        Ok(_) => {
                            // let the lock holder (cleanup) record it, then re-read
                            match self.lock_container_with(&id, !remove) {
                                Ok(c) => {
                                    if c.state().exited {
                                        let code = c.state().exit_code;
                                        if remove {
                                            c.remove_with_volumes(true, true)?;
                                        }
                                        return Ok((code, remove));
                                    }
                                }
                                Err(e) if e.is_not_found() => {
                                    return Ok((self.state().exit_code(&id)?.code, false))
                                }
                                Err(e) => return Err(e),
                            }
                        }
                        Err(rpod_oci::OciError::Timeout { .. }) => {}
                        Err(e) => return Err(e.into()),
                    }
                }
            }
        }
    }

    /// Creates, starts and (unless `detach`) attaches to a container, like
    /// `rpod run`: output goes to `stdout`/`stderr`, `stdin` (with `-i`) to
    /// the container. Returns the container's config and, when attached, its
    /// exit code.
    pub fn run_container(
        &self,
        opts: &CreateOptions,
        detach: bool,
        stdin: Option<Box<dyn Read + Send>>,
        stdout: &mut dyn Write,
        stderr: &mut dyn Write,
    ) -> Result<(ContainerConfig, Option<i32>)> {
        let config = self.create_container(opts)?;
        let id = config.id.clone();
        // Any failure before the container runs removes it again. The lock
        // must be released before undoing, so each step runs in its own scope.
        let undo = |e: RuntimeError| -> RuntimeError {
            match self.lock_container(&id) {
                Ok(c) => {
                    if let Err(re) = c.remove(true) {
                        tracing::warn!("removing {id} after a failed run: {re}");
                    }
                }
                Err(le) => tracing::warn!("locking {id} to undo a failed run: {le}"),
            }
            e
        };
        if detach {
            let started = self.lock_container(&id).and_then(|mut c| c.start());
            started.map_err(undo)?;
            return Ok((config, None));
        }
        let attached = self.lock_container(&id).and_then(|mut c| {
            // `start` saves the state: `created` need not be written before
            c.init_with(false)?;
            let sock = AttachSocket::connect(&self.bundle_dir(&id))?;
            c.start()?;
            Ok(sock)
        });
        let attach = attached.map_err(undo)?;
        // The lock is released while the container runs.
        let stdin = if opts.interactive { stdin } else { None };
        if let Err(e) = attach.stream(stdin, stdout, stderr) {
            tracing::warn!("attach to {id} ended: {e}");
        }
        let (code, removed) = self.wait_container_then(&id, opts.autoremove)?;
        if opts.autoremove && !removed {
            match self.lock_container(&id) {
                Ok(c) => c.remove_with_volumes(true, true)?,
                Err(e) if e.is_not_found() => {}
                Err(e) => return Err(e),
            }
        }
        Ok((config, Some(code)))
    }

    /// `rpod container cleanup [--rm] ID`: what conmon's exit command runs.
    pub fn cleanup_container(&self, id_or_name: &str, rm: bool) -> Result<()> {
        // with `rm`, the exited state is not saved: removing records the exit code
        let mut c = match self.lock_container_with(id_or_name, !rm) {
            Ok(c) => c,
            // removed meanwhile (by `run --rm` or `rm -f`): nothing to do
            Err(e) if e.is_not_found() => return Ok(()),
            Err(e) => return Err(e),
        };
        if rm && !c.is_running() {
            // cleans up (OCI runtime state, exit code) as it removes
            return c.remove_with_volumes(false, true);
        }
        c.cleanup()?;
        if !rm && c.should_restart() {
            let count = c.rec.state.restart_count + 1;
            c.start()?;
            c.rec.state.restart_count = count;
            c.save()?;
            self.emit(event(Status::Restart, &c.rec.config));
        }
        Ok(())
    }
}

/// A container whose lock is held by this thread. Dropping it unlocks.
#[derive(Debug)]
pub struct LockedContainer<'r> {
    pub(crate) rt: &'r Runtime,
    _guard: LockGuard,
    pub(crate) rec: ContainerRecord,
    /// `rec.state` was synced from the exit file but not saved yet (see
    /// [`Runtime::lock_container_with`]); saved on drop, before unlocking.
    unsaved: Cell<bool>,
}

impl Drop for LockedContainer<'_> {
    fn drop(&mut self) {
        if self.unsaved.get() {
            if let Err(e) = self.save() {
                tracing::warn!("saving the state of container {}: {e}", self.id());
            }
        }
    }
}

impl<'r> LockedContainer<'r> {
    pub(crate) fn runtime(&self) -> &'r Runtime {
        self.rt
    }

    /// The container's config. Its `spec` is the stored one, which is null
    /// for containers rpod created: see [`LockedContainer::spec`].
    pub fn config(&self) -> &ContainerConfig {
        &self.rec.config
    }

    /// The container's OCI spec (regenerated from its create options when
    /// the record does not carry one, see [`Runtime::hydrate`]).
    pub fn spec(&self) -> serde_json::Value {
        self.rt.container_spec(&self.rec)
    }

    /// The container's state, as of the lock.
    pub fn state(&self) -> &ContainerState {
        &self.rec.state
    }

    /// The whole record (its config's `spec` as in [`LockedContainer::config`]).
    pub fn record(&self) -> &ContainerRecord {
        &self.rec
    }

    /// The full id.
    pub fn id(&self) -> &str {
        &self.rec.config.id
    }

    /// Running or paused.
    pub fn is_running(&self) -> bool {
        matches!(
            self.rec.state.state,
            ContainerStatus::Running | ContainerStatus::Paused
        )
    }

    pub(crate) fn status(&self) -> ContainerStatus {
        self.rec.state.state
    }

    pub(crate) fn save(&self) -> Result<()> {
        self.rt
            .state()
            .save_container_state(self.id(), &self.rec.state)?;
        self.unsaved.set(false);
        Ok(())
    }

    pub(crate) fn invalid(&self, op: &'static str, hint: &str) -> RuntimeError {
        RuntimeError::InvalidState {
            id: self.id().to_string(),
            state: self.status().as_str().to_string(),
            op,
            hint: hint.to_string(),
        }
    }

    fn create_options(&self) -> Result<CreateOptions> {
        let v = self
            .rec
            .config
            .extra
            .get(CREATE_KEY)
            .cloned()
            .unwrap_or_default();
        serde_json::from_value(v).map_err(|e| RuntimeError::InvalidInput {
            what: "stored create options",
            value: e.to_string(),
            expected: "a container created by this version of rpod".into(),
        })
    }

    pub(crate) fn oci(&self) -> Result<OciRuntime> {
        let name = &self.rec.config.runtime;
        self.rt
            .oci_runtime((!name.is_empty()).then_some(name.as_str()))
    }

    /// Brings the state up to date with the exit file, saving it unless
    /// `save` is false (then it is saved later, see `unsaved`).
    fn sync(&mut self, save: bool) -> Result<()> {
        if self.rt.apply_exit_file(&mut self.rec) {
            if save {
                self.save()?;
            } else {
                self.unsaved.set(true);
            }
            let c = &self.rec.config;
            let mut ev =
                rpod_events::Event::died(&c.id, &c.name, &c.rootfs, self.rec.state.exit_code);
            for (k, v) in &c.labels {
                ev = ev.with_attribute(k, v);
            }
            self.rt.emit(ev);
        }
        Ok(())
    }

    /// Creates the container in the OCI runtime under conmon (`created`).
    pub fn init(&mut self) -> Result<()> {
        self.init_with(true)
    }

    /// [`LockedContainer::init`]; with `save` false, for a caller that starts
    /// the container next under the same lock, the `created` state is not
    /// written at once: the start writes `running` (or, when the start fails,
    /// `configured`); otherwise it is written on unlock. (A `configured`
    /// container whose bundle exists may thus be known to the OCI runtime:
    /// [`LockedContainer::remove`] deletes it there.)
    pub(crate) fn init_with(&mut self, save: bool) -> Result<()> {
        match self.status() {
            ContainerStatus::Configured | ContainerStatus::Exited | ContainerStatus::Stopped => {}
            _ => {
                return Err(
                    self.invalid("initialize", " (it must be configured, stopped or exited)")
                )
            }
        }
        if self.status() == ContainerStatus::Stopped {
            self.cleanup()?;
        }
        let id = self.id().to_string();
        let step = |step: &'static str, e: RuntimeError| RuntimeError::Step {
            op: "init",
            id: id.clone(),
            step,
            source: Box::new(e),
        };
        let opts = self.create_options()?;
        let bundle = self.rt.bundle_dir(&id);
        let static_dir = self.rt.container_static_dir(&id);
        let oci = self.oci().map_err(|e| step("finding the OCI runtime", e))?;
        let monitor = self.rt.monitor().map_err(|e| step("finding conmon", e))?;
        let spec_opts = opts
            .spec_options(self.rt, &id, &self.rec.config.hostname)
            .map_err(|e| step("generating the OCI spec", e))?;
        std::fs::create_dir_all(&static_dir).map_err(|e| {
            step(
                "creating the container directory",
                RuntimeError::io("create", &static_dir, e),
            )
        })?;
        let undo_bundle = |e: RuntimeError| {
            let _ = std::fs::remove_dir_all(&bundle);
            e
        };
        rpod_oci::spec::write_bundle(&spec_opts, &bundle)
            .map_err(|e| undo_bundle(step("writing the bundle", e.into())))?;
        let exit_file = rpod_oci::exit::exit_file(&self.rt.exits_dir(), &id);
        let _ = std::fs::remove_file(&exit_file);
        let cfg = self.rt.config();
        let mut req = CreateRequest::new(&id, &bundle, self.rt.exits_dir());
        req.name = self.rec.config.name.clone();
        req.log_path = PathBuf::from(&self.rec.config.log_path);
        req.log_size_max = cfg.max_log_size;
        req.terminal = opts.tty;
        req.stdin = opts.interactive;
        req.exit_command = self.rt.exit_command_args(&id, self.rec.config.autoremove);
        req.no_pivot = cfg.no_pivot_root;
        req.env = cfg.conmon_env_vars.clone();
        req.log_level = match tracing::level_filters::LevelFilter::current() {
            l if l >= tracing::Level::DEBUG => "debug".into(),
            _ => "warning".into(),
        };
        let created = match monitor.create(&oci, &req) {
            Ok(c) => c,
            Err(e) => {
                let _ = oci.delete(&id, true);
                return Err(undo_bundle(step(
                    "creating the container in the OCI runtime",
                    e.into(),
                )));
            }
        };
        let s = &mut self.rec.state;
        s.state = ContainerStatus::Created;
        s.pid = created.pid;
        s.conmon_pid = created.monitor_pid;
        s.config_path = bundle.join("config.json").display().to_string();
        s.run_dir = bundle.display().to_string();
        s.exited = false;
        s.exit_code = 0;
        s.oom_killed = false;
        s.finished_time = Timestamp::default();
        if !save {
            self.unsaved.set(true);
        } else if let Err(e) = self.save() {
            let _ = oci.kill(&id, 9, false);
            let _ = oci.delete(&id, true);
            return Err(undo_bundle(step("saving the state", e)));
        }
        self.rt
            .count_volume_mounts(&self.rec.config.named_volumes, true);
        self.rt.emit(event(Status::Init, &self.rec.config));
        Ok(())
    }

    /// Starts the container (initialising it first when needed).
    pub fn start(&mut self) -> Result<()> {
        match self.status() {
            ContainerStatus::Configured | ContainerStatus::Exited | ContainerStatus::Stopped => {
                self.init_with(false)?
            }
            ContainerStatus::Created => {}
            ContainerStatus::Running | ContainerStatus::Paused => {
                return Err(self.invalid("start", " (it is already running)"))
            }
            _ => return Err(self.invalid("start", "")),
        }
        let id = self.id().to_string();
        let oci = self.oci()?;
        if let Err(e) = oci.start(&id) {
            // undo: the container was created but never ran
            let _ = oci.kill(&id, 9, false);
            let _ = oci.delete(&id, true);
            self.rec.state.state = ContainerStatus::Configured;
            self.rec.state.pid = 0;
            self.save()?;
            return Err(RuntimeError::Step {
                op: "start",
                id,
                step: "starting the container in the OCI runtime",
                source: Box::new(e.into()),
            });
        }
        self.rec.state.state = ContainerStatus::Running;
        self.rec.state.started_time = now();
        self.rec.state.stopped_by_user = false;
        self.save()?;
        self.rt.emit(event(Status::Start, &self.rec.config));
        Ok(())
    }

    /// Sends `signal` to the container's process.
    pub fn kill(&mut self, signal: i32) -> Result<()> {
        if !self.is_running() {
            return Err(self.invalid("kill", " (it is not running)"));
        }
        self.oci()?.kill(self.id(), signal, false)?;
        if signal == 9 || signal == 15 {
            self.rec.state.stopped_by_user = true;
            self.save()?;
        }
        self.rt.emit(
            event(Status::Kill, &self.rec.config).with_attribute("signal", &signal.to_string()),
        );
        Ok(())
    }

    fn wait_exit(&mut self, timeout: Duration) -> Result<bool> {
        let monitor = (self.rec.state.conmon_pid > 0).then_some(self.rec.state.conmon_pid);
        match rpod_oci::exit::wait_for_exit(&self.rt.exits_dir(), self.id(), monitor, timeout) {
            Ok(ExitOutcome::Exited(_)) | Ok(ExitOutcome::MonitorGone) => {
                self.sync(true)?;
                Ok(true)
            }
            Err(rpod_oci::OciError::Timeout { .. }) => Ok(false),
            Err(e) => Err(e.into()),
        }
    }

    /// Stops the container: its stop signal, then SIGKILL after `timeout`
    /// seconds (the container's own stop timeout when `None`).
    pub fn stop(&mut self, timeout: Option<u32>) -> Result<()> {
        match self.status() {
            ContainerStatus::Running | ContainerStatus::Paused => {}
            ContainerStatus::Created => {}
            _ => return Err(self.invalid("stop", " (it is not running)")),
        }
        let timeout = timeout.unwrap_or(self.rec.config.stop_timeout);
        let oci = self.oci()?;
        let id = self.id().to_string();
        self.rec.state.stopped_by_user = true;
        self.save()?;
        if self.status() == ContainerStatus::Paused {
            let _ = oci.resume(&id);
        }
        let mut exited = false;
        if timeout > 0 {
            let sig = self.rec.config.stop_signal.max(1) as i32;
            if let Err(e) = oci.kill(&id, sig, false) {
                tracing::debug!("stop signal to {id}: {e}");
            }
            exited = self.wait_exit(Duration::from_secs(u64::from(timeout)))?;
            if !exited {
                tracing::warn!("container {id} did not stop within {timeout}s of signal {sig}; sending SIGKILL");
            }
        }
        if !exited {
            if let Err(e) = oci.kill(&id, 9, false) {
                tracing::debug!("SIGKILL to {id}: {e}");
            }
            if !self.wait_exit(Duration::from_secs(30))? {
                return Err(RuntimeError::Timeout {
                    what: format!("container {id} to exit after SIGKILL"),
                    seconds: 30,
                });
            }
        }
        self.cleanup()?;
        self.rt.emit(event(Status::Stop, &self.rec.config));
        Ok(())
    }

    /// Releases what the runtime holds for a stopped container (OCI runtime
    /// state, cgroup) and records the exit code. Idempotent.
    pub fn cleanup(&mut self) -> Result<()> {
        if self.status() != ContainerStatus::Stopped {
            return Ok(());
        }
        let id = self.id().to_string();
        let oci = self.oci()?;
        if let Err(e) = oci.delete(&id, true) {
            tracing::debug!("runtime delete of {id}: {e}");
        }
        self.rt
            .state()
            .add_exit_code(&id, self.rec.state.exit_code)?;
        self.rec.state.state = ContainerStatus::Exited;
        self.rec.state.pid = 0;
        self.rec.state.conmon_pid = 0;
        self.save()?;
        self.rt
            .count_volume_mounts(&self.rec.config.named_volumes, false);
        self.rt.emit(event(Status::Cleanup, &self.rec.config));
        Ok(())
    }

    /// Whether the restart policy asks for a restart now.
    fn should_restart(&self) -> bool {
        let s = &self.rec.state;
        if s.state != ContainerStatus::Exited || s.stopped_by_user {
            return false;
        }
        match self.rec.config.restart_policy.as_str() {
            "always" | "unless-stopped" => true,
            "on-failure" => {
                s.exit_code != 0
                    && (self.rec.config.restart_retries == 0
                        || s.restart_count < self.rec.config.restart_retries)
            }
            _ => false,
        }
    }

    /// Removes the container: with `force`, a running one is killed first.
    pub fn remove(mut self, force: bool) -> Result<()> {
        if let Err(e) = self.check_exec_sessions(force) {
            if self.unsaved.get() {
                // locked for removal, which fails: clean up as the exit command would
                self.cleanup()?;
            }
            return Err(e);
        }
        if self.is_running() || self.status() == ContainerStatus::Created {
            if !force && self.status() != ContainerStatus::Created {
                return Err(RuntimeError::InvalidState {
                    id: self.id().to_string(),
                    state: self.status().as_str().to_string(),
                    op: "remove",
                    hint: " (running or paused containers cannot be removed without force)".into(),
                });
            }
            self.stop(Some(0))?;
        }
        let id = self.id().to_string();
        let dependents = self.rt.state().container_dependents(&id)?;
        if !dependents.is_empty() {
            self.cleanup()?;
            return Err(rpod_state::StateError::InUse {
                id: id.clone(),
                kind: rpod_state::ObjectKind::Container,
                what: rpod_state::InUseBy::Dependents,
                by: dependents,
            }
            .into());
        }
        // A configured container never reached the OCI runtime (unless its
        // bundle exists: its `init` may not have saved `created`, see
        // `init_with`) and an exited one was deleted from it by cleanup; a
        // stopped one is cleaned up now (as `cleanup` would), its exit code
        // recorded in the same database operation as the removal; anything
        // else may still be in the runtime.
        let stopped = self.status() == ContainerStatus::Stopped;
        let configured = self.status() == ContainerStatus::Configured;
        if stopped {
            let oci = self.oci()?;
            if let Err(e) = oci.delete(&id, true) {
                tracing::debug!("runtime delete of {id}: {e}");
            }
        } else if (configured && self.rt.bundle_dir(&id).join("config.json").exists())
            || !matches!(
                self.status(),
                ContainerStatus::Configured | ContainerStatus::Exited
            )
        {
            if let Ok(oci) = self.oci() {
                let _ = oci.delete(&id, true);
            }
        }
        if stopped {
            let exit = rpod_state::ExitCode {
                code: self.rec.state.exit_code,
                time: now(),
            };
            self.rt.state().remove_container_with_exit_code(&id, exit)?;
            self.unsaved.set(false);
            self.rt
                .count_volume_mounts(&self.rec.config.named_volumes, false);
            self.rt.emit(event(Status::Cleanup, &self.rec.config));
        } else {
            self.rt.state().remove_container(&id)?;
            self.unsaved.set(false);
        }
        for dir in [self.rt.bundle_dir(&id), self.rt.container_static_dir(&id)] {
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                if e.kind() != std::io::ErrorKind::NotFound {
                    tracing::warn!("removing {}: {e}", dir.display());
                }
            }
        }
        let _ = std::fs::remove_file(rpod_oci::exit::exit_file(&self.rt.exits_dir(), &id));
        if let Err(e) = self.rt.locks().free(self.rec.config.lock_id) {
            tracing::warn!("freeing lock {} of {id}: {e}", self.rec.config.lock_id);
        }
        self.rt.emit(event(Status::Remove, &self.rec.config));
        Ok(())
    }

    /// The log file (k8s-file format).
    pub fn log_path(&self) -> &Path {
        Path::new(&self.rec.config.log_path)
    }
}
