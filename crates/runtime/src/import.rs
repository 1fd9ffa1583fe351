//! `rpod system import-podman`: copying another database's containers, pods
//! and volumes (podman's `bolt_state.db`, read through a state backend) into
//! rpod's own state.
//!
//! What is carried over, per object:
//! * **ids and names** are kept; **locks** are newly allocated from rpod's
//!   lock manager (podman's lock ids index podman's SHM segment);
//! * **states are reset as after a reboot** ([`ContainerState::reset_after_reboot`]):
//!   running or created containers become configured, PIDs, mounts, netns,
//!   exec sessions and the per-boot paths are cleared; exit codes, exit flags
//!   and times are kept; recorded exit codes are copied;
//! * rpod's **per-container paths** (static dir, log, conmon pid file) and its
//!   **exit command** replace podman's, so that conmon calls rpod, not podman;
//! * rpod's **create options** (`rpodCreate` in `extra`, what `rpod start`
//!   regenerates the OCI spec from) are rebuilt from podman's OCI spec:
//!   process args, env, cwd, user, terminal, hostname, bind mounts, read-only
//!   root, labels, privileged, init, `--rm`, stop signal and timeout, restart
//!   policy, named volumes (`NAME:/dest`);
//! * volumes get a `mountPoint` under rpod's `volume_path`, and their data is
//!   **copied** there from the source's mount point when it exists (files,
//!   directories, symlinks as links, device nodes and FIFOs, with owners,
//!   modes and modification times; hard links become separate files; the
//!   source is only read); pods keep their infra container id, their cgroup
//!   path is cleared.
//!
//! What cannot be carried over is reported per object ([`ImportReport`]):
//! containers from an image (rpod runs `--rootfs` containers only), bridge
//! networks, namespaces joined from another container, volume data whose
//! source is missing or unreadable, exec sessions, a missing rootfs. Everything is checked before the
//! first write: an object whose id or name is taken in rpod, or whose pod,
//! dependency or volume is not imported, is skipped with the reason, and so
//! are the containers that need it.

use std::collections::{BTreeMap, BTreeSet};
use std::os::unix::fs::OpenOptionsExt;
use std::path::{Path, PathBuf};

use rpod_state::{
    ContainerConfig, ContainerRecord, ContainerState, ContainerStatus, PodRecord, State,
    StateOptions, VolumeRecord,
};
use serde::Serialize;
use serde_json::Value;

use crate::container::CREATE_KEY;
use crate::{CreateOptions, Result, Runtime, RuntimeError};

/// Options of an import.
#[derive(Debug, Clone, Default)]
pub struct ImportOptions {
    /// Root filesystem rewrites `(old prefix, new prefix)`: a container whose
    /// rootfs is `old/…` gets `new/…` (the first matching pair wins).
    pub rootfs_map: Vec<(PathBuf, PathBuf)>,
}

/// What happened to one container.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ContainerImport {
    /// Full id (kept).
    #[serde(rename = "Id")]
    pub id: String,
    /// Name (kept).
    #[serde(rename = "Name")]
    pub name: String,
    /// Whether it is now in rpod's state.
    #[serde(rename = "Imported")]
    pub imported: bool,
    /// Its state in rpod (`configured`, `exited`), or in the source when not imported.
    #[serde(rename = "State")]
    pub state: String,
    /// Whether `rpod start` can run it as imported.
    #[serde(rename = "Runnable")]
    pub runnable: bool,
    /// What was not carried over, one sentence each.
    #[serde(rename = "NotCarriedOver")]
    pub not_carried_over: Vec<String>,
    /// Why it was not imported.
    #[serde(rename = "Error", skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// Copies a volume's data directory `src` to `dst` (which must not exist):
/// into a hidden sibling first, renamed into place when complete, so a
/// failed copy leaves nothing behind.
fn copy_volume_data(src: &Path, dst: &Path) -> std::io::Result<()> {
    let parent = dst.parent().unwrap_or(Path::new("/"));
    std::fs::create_dir_all(parent)?;
    let staging = parent.join(format!(
        ".{}.importing-{}",
        dst.file_name()
            .map_or("data".into(), |n| n.to_string_lossy()),
        std::process::id()
    ));
    let _ = std::fs::remove_dir_all(&staging);
    let copied = copy_tree(src, &staging).and_then(|()| std::fs::rename(&staging, dst));
    if copied.is_err() {
        let _ = std::fs::remove_dir_all(&staging);
    }
    copied
}

/// Copies `src` to `dst` without following symlinks: directories,
/// regular files, symlinks (as links), FIFOs and device nodes, with owner,
/// mode and modification time.
fn copy_tree(src: &Path, dst: &Path) -> std::io::Result<()> {
    use nix::sys::stat::{mknod, Mode, SFlag};
    use std::os::unix::fs::{FileTypeExt, MetadataExt, PermissionsExt};
    let md = std::fs::symlink_metadata(src)?;
    let ft = md.file_type();
    if ft.is_symlink() {
        std::os::unix::fs::symlink(std::fs::read_link(src)?, dst)?;
    } else if ft.is_dir() {
        std::fs::create_dir(dst)?;
        for entry in std::fs::read_dir(src)? {
            let entry = entry?;
            copy_tree(&entry.path(), &dst.join(entry.file_name()))?;
        }
    } else if ft.is_file() {
        let mut from = std::fs::OpenOptions::new()
            .read(true)
            .custom_flags(nix::libc::O_NOFOLLOW)
            .open(src)?;
        let mut to = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(dst)?;
        std::io::copy(&mut from, &mut to)?;
    } else if ft.is_fifo() || ft.is_char_device() || ft.is_block_device() {
        let kind = if ft.is_fifo() {
            SFlag::S_IFIFO
        } else if ft.is_char_device() {
            SFlag::S_IFCHR
        } else {
            SFlag::S_IFBLK
        };
        mknod(
            dst,
            kind,
            Mode::from_bits_truncate(md.mode() & 0o7777),
            md.rdev(),
        )
        .map_err(std::io::Error::from)?;
    } else {
        // sockets belong to the process that made them
        return Ok(());
    }
    let nofollow = nix::fcntl::AtFlags::AT_SYMLINK_NOFOLLOW;
    nix::unistd::fchownat(
        None,
        dst,
        Some(nix::unistd::Uid::from_raw(md.uid())),
        Some(nix::unistd::Gid::from_raw(md.gid())),
        nofollow,
    )
    .map_err(std::io::Error::from)?;
    if !ft.is_symlink() {
        std::fs::set_permissions(dst, std::fs::Permissions::from_mode(md.mode() & 0o7777))?;
    }
    let t = |s: i64, ns: i64| nix::sys::time::TimeSpec::new(s, ns);
    nix::sys::stat::utimensat(
        None,
        dst,
        &t(md.atime(), md.atime_nsec()),
        &t(md.mtime(), md.mtime_nsec()),
        nix::sys::stat::UtimensatFlags::NoFollowSymlink,
    )
    .map_err(std::io::Error::from)?;
    Ok(())
}

/// What happened to one pod or volume.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ObjectImport {
    /// Pod id, or volume name.
    #[serde(rename = "Id")]
    pub id: String,
    /// Name.
    #[serde(rename = "Name")]
    pub name: String,
    /// Whether it is now in rpod's state.
    #[serde(rename = "Imported")]
    pub imported: bool,
    /// What was not carried over.
    #[serde(rename = "NotCarriedOver")]
    pub not_carried_over: Vec<String>,
    /// Why it was not imported.
    #[serde(rename = "Error", skip_serializing_if = "Option::is_none")]
    pub error: Option<String>,
}

/// The outcome of an import, per object.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ImportReport {
    /// The source database.
    #[serde(rename = "Source")]
    pub source: String,
    /// Volumes, by name.
    #[serde(rename = "Volumes")]
    pub volumes: Vec<ObjectImport>,
    /// Pods, by id.
    #[serde(rename = "Pods")]
    pub pods: Vec<ObjectImport>,
    /// Containers, dependencies first.
    #[serde(rename = "Containers")]
    pub containers: Vec<ContainerImport>,
}

impl ImportReport {
    /// How many objects of each kind were imported: `(containers, pods, volumes)`.
    pub fn imported(&self) -> (usize, usize, usize) {
        (
            self.containers.iter().filter(|c| c.imported).count(),
            self.pods.iter().filter(|c| c.imported).count(),
            self.volumes.iter().filter(|c| c.imported).count(),
        )
    }
}

/// Opens the database at `path` with the state backend `backend`, read-only
/// (the source of an import: never written).
pub fn open_source(backend: &str, path: &Path) -> Result<Box<dyn State>> {
    if !path.is_file() {
        return Err(RuntimeError::InvalidInput {
            what: "database to import",
            value: path.display().to_string(),
            expected: "an existing database file (podman's is <static_dir>/bolt_state.db, e.g. /var/lib/containers/storage/libpod/bolt_state.db)".into(),
        });
    }
    Ok(rpod_state::open_with(
        backend,
        &StateOptions::at(path).read_only(true),
    )?)
}

/// Spec mounts podman generates itself (not the user's binds).
const GENERATED_DESTS: [&str; 5] = [
    "/etc/hosts",
    "/etc/hostname",
    "/etc/resolv.conf",
    "/run/.containerenv",
    "/dev/shm",
];

fn strings(v: &Value) -> Vec<String> {
    v.as_array()
        .map(|a| {
            a.iter()
                .filter_map(|x| x.as_str().map(String::from))
                .collect()
        })
        .unwrap_or_default()
}

fn annotation_true(spec: &Value, key: &str) -> bool {
    spec["annotations"][key]
        .as_str()
        .is_some_and(|v| v.eq_ignore_ascii_case("true"))
}

/// A planned container, validated, not yet written.
struct Planned {
    config: ContainerConfig,
    state: ContainerState,
    exit: Option<rpod_state::ExitCode>,
    report: ContainerImport,
}

impl Runtime {
    /// rpod's exit command for container `id` (as `create_container` sets it).
    fn import_exit_command(&self, id: &str, rm: bool) -> Vec<String> {
        let mut v = self.exit_command.clone();
        v.extend(["container".to_string(), "cleanup".to_string()]);
        if rm {
            v.push("--rm".into());
        }
        v.push(id.to_string());
        v
    }

    fn map_rootfs(&self, rootfs: &str, opts: &ImportOptions) -> String {
        let p = Path::new(rootfs);
        for (old, new) in &opts.rootfs_map {
            if let Ok(rest) = p.strip_prefix(old) {
                let mapped = if rest.as_os_str().is_empty() {
                    new.clone()
                } else {
                    new.join(rest)
                };
                return mapped.display().to_string();
            }
        }
        rootfs.to_string()
    }

    /// Whether the target already holds this id or name (container or pod).
    fn taken(&self, id: &str, name: &str) -> Result<Option<String>> {
        let st = self.state();
        if st.has_container(id)? || st.has_pod(id)? {
            return Ok(Some(format!("id {id} is already used in rpod's database")));
        }
        let by_name = match st.lookup_container(name) {
            Ok(c) => c.config.name == name,
            Err(e) if e.is_not_found() => false,
            Err(rpod_state::StateError::Ambiguous { .. }) => false,
            Err(e) => return Err(e.into()),
        };
        let pod_by_name = st.lookup_pod(name).is_ok_and(|p| p.config.name == name);
        if by_name || pod_by_name {
            return Ok(Some(format!(
                "name {name:?} is already used in rpod's database"
            )));
        }
        Ok(None)
    }

    /// Copies the containers, pods and volumes of `source` (e.g. podman's
    /// database opened with [`open_source`]) into this runtime's state; see
    /// the module docs for what is carried over. Fails only when nothing can
    /// be imported at all (read-only target, unreadable source); per-object
    /// problems are in the report.
    pub fn import_state(
        &self,
        source: &dyn State,
        source_path: &Path,
        opts: &ImportOptions,
    ) -> Result<ImportReport> {
        self.check_alive()?;
        self.check_writable("import into the database rpod is configured with (--db-path)")?;
        if let (Some(a), Some(b)) = (source.path(), self.state().path()) {
            if a == b {
                return Err(RuntimeError::InvalidInput {
                    what: "database to import",
                    value: a.display().to_string(),
                    expected: "another database than rpod's own".into(),
                });
            }
        }
        let ns = self.config().namespace.clone();
        let mut report = ImportReport {
            source: source_path.display().to_string(),
            volumes: Vec::new(),
            pods: Vec::new(),
            containers: Vec::new(),
        };

        // ---- plan: read and validate everything before the first write ----
        let vols = source.all_volumes()?;
        let pods = source.all_pods()?;
        let ctrs = order_by_dependencies(source.all_containers()?);

        let mut vol_plan: Vec<(VolumeRecord, usize)> = Vec::new();
        for v in vols {
            let name = v.config.name.clone();
            let mut r = ObjectImport {
                id: name.clone(),
                name: name.clone(),
                imported: false,
                not_carried_over: Vec::new(),
                error: None,
            };
            if self.state().has_volume(&name)? {
                r.error = Some(format!(
                    "a volume named {name:?} already exists in rpod's database"
                ));
            } else {
                let src = Path::new(&v.config.mount_point);
                if !v.config.mount_point.is_empty() && !src.is_dir() {
                    r.not_carried_over.push(format!(
                        "its data: {} is not a directory here, so rpod's copy starts empty",
                        v.config.mount_point
                    ));
                }
                if v.config.driver != "local" && !v.config.driver.is_empty() {
                    r.not_carried_over
                        .push(format!("volume driver {:?}", v.config.driver));
                }
                vol_plan.push((v, report.volumes.len()));
            }
            report.volumes.push(r);
        }
        let vols_ok: BTreeSet<String> = vol_plan
            .iter()
            .map(|(v, _)| v.config.name.clone())
            .collect();

        let mut pod_plan: Vec<(PodRecord, usize)> = Vec::new();
        for p in pods {
            let mut r = ObjectImport {
                id: p.config.id.clone(),
                name: p.config.name.clone(),
                imported: false,
                not_carried_over: Vec::new(),
                error: None,
            };
            if let Some(why) = self.taken(&p.config.id, &p.config.name)? {
                r.error = Some(why);
            } else {
                if !p.state.infra_container_id.is_empty() {
                    r.not_carried_over.push(format!(
                        "its infra container {} runs from an image: rpod cannot start it, nor share its namespaces with the members",
                        short(&p.state.infra_container_id)
                    ));
                }
                pod_plan.push((p, report.pods.len()));
            }
            report.pods.push(r);
        }
        let pods_ok: BTreeSet<String> = pod_plan.iter().map(|(p, _)| p.config.id.clone()).collect();

        let mut planned: Vec<Planned> = Vec::new();
        let mut ctrs_ok: BTreeSet<String> = BTreeSet::new();
        let mut failed: Vec<ContainerImport> = Vec::new();
        for rec in ctrs {
            let exit = match source.exit_code(&rec.config.id) {
                Ok(x) => Some(x),
                Err(e) if e.is_not_found() => None,
                Err(e) => return Err(e.into()),
            };
            let mut p = self.plan_container(rec, opts, &ns);
            if p.report.error.is_none() {
                p.report.error = self.check_links(&p.config, &pods_ok, &ctrs_ok, &vols_ok)?;
            }
            if p.report.error.is_some() {
                p.report.state = p.state.state.as_str().to_string();
                failed.push(p.report);
                continue;
            }
            p.exit = exit;
            ctrs_ok.insert(p.config.id.clone());
            planned.push(p);
        }

        // ---- write ----
        for (mut v, idx) in vol_plan {
            let r = &mut report.volumes[idx];
            let lock = match self.locks().allocate() {
                Ok(l) => l,
                Err(e) => {
                    r.error = Some(format!("allocating a lock: {e}"));
                    continue;
                }
            };
            let mp = self.volume_data_dir(&v.config.name);
            let source_data = PathBuf::from(&v.config.mount_point);
            v.config.lock_id = lock.id();
            v.config.namespace = ns.clone();
            v.config.mount_point = mp.display().to_string();
            v.state.mount_count = 0;
            v.state.extra.remove("mountPoint");
            match self.state().add_volume(&v.config, &v.state) {
                Ok(()) => {
                    r.imported = true;
                    if source_data.is_dir() && source_data != mp {
                        if let Err(e) = copy_volume_data(&source_data, &mp) {
                            r.not_carried_over.push(format!(
                                "its data: copying {} failed ({e}), so rpod's copy starts empty",
                                source_data.display()
                            ));
                        }
                    }
                    if let Err(e) = std::fs::create_dir_all(&mp) {
                        r.not_carried_over
                            .push(format!("creating {}: {e}", mp.display()));
                    }
                }
                Err(e) => {
                    let _ = self.locks().free(lock.id());
                    r.error = Some(e.to_string());
                }
            }
        }
        for (mut p, idx) in pod_plan {
            let r = &mut report.pods[idx];
            let lock = match self.locks().allocate() {
                Ok(l) => l,
                Err(e) => {
                    r.error = Some(format!("allocating a lock: {e}"));
                    continue;
                }
            };
            p.config.lock_id = lock.id();
            p.config.namespace = ns.clone();
            p.state.cgroup_path.clear();
            match self.state().add_pod(&p.config, &p.state) {
                Ok(()) => r.imported = true,
                Err(e) => {
                    let _ = self.locks().free(lock.id());
                    r.error = Some(e.to_string());
                }
            }
        }
        let pods_in: BTreeSet<String> = report
            .pods
            .iter()
            .filter(|p| p.imported)
            .map(|p| p.id.clone())
            .collect();
        let vols_in: BTreeSet<String> = report
            .volumes
            .iter()
            .filter(|p| p.imported)
            .map(|p| p.id.clone())
            .collect();
        let mut ctrs_in: BTreeSet<String> = BTreeSet::new();
        for mut p in planned {
            // a pod, volume or dependency whose write failed
            if let Some(why) = self.check_links(&p.config, &pods_in, &ctrs_in, &vols_in)? {
                p.report.error = Some(why);
                report.containers.push(p.report);
                continue;
            }
            let lock = match self.locks().allocate() {
                Ok(l) => l,
                Err(e) => {
                    p.report.error = Some(format!("allocating a lock: {e}"));
                    report.containers.push(p.report);
                    continue;
                }
            };
            p.config.lock_id = lock.id();
            match self.state().add_container(&p.config, &p.state) {
                Ok(()) => {
                    p.report.imported = true;
                    ctrs_in.insert(p.config.id.clone());
                    if let Some(x) = p.exit {
                        if let Err(e) = self.state().record_exit_code(&p.config.id, x) {
                            p.report
                                .not_carried_over
                                .push(format!("its recorded exit code: {e}"));
                        }
                    }
                }
                Err(e) => {
                    let _ = self.locks().free(lock.id());
                    p.report.error = Some(e.to_string());
                }
            }
            report.containers.push(p.report);
        }
        report.containers.extend(failed);
        Ok(report)
    }

    /// The error when a container's pod, dependencies or named volumes are
    /// not among the imported ones.
    fn check_links(
        &self,
        c: &ContainerConfig,
        pods: &BTreeSet<String>,
        ctrs: &BTreeSet<String>,
        vols: &BTreeSet<String>,
    ) -> Result<Option<String>> {
        if let Some(pod) = &c.pod {
            if !pods.contains(pod) {
                return Ok(Some(format!("its pod {} was not imported", short(pod))));
            }
        }
        for d in &c.dependencies {
            if !ctrs.contains(d) {
                return Ok(Some(format!(
                    "container {} it depends on was not imported",
                    short(d)
                )));
            }
        }
        for v in &c.named_volumes {
            if !vols.contains(&v.name) {
                return Ok(Some(format!("its volume {:?} was not imported", v.name)));
            }
        }
        Ok(None)
    }

    /// Maps one source container onto rpod's records (no write).
    fn plan_container(&self, rec: ContainerRecord, opts: &ImportOptions, ns: &str) -> Planned {
        let ContainerRecord {
            config: src,
            state: src_state,
        } = rec;
        let id = src.id.clone();
        let mut notes = Vec::new();
        let mut report = ContainerImport {
            id: id.clone(),
            name: src.name.clone(),
            imported: false,
            state: String::new(),
            runnable: true,
            not_carried_over: Vec::new(),
            error: None,
        };
        if let Ok(Some(why)) = self.taken(&id, &src.name) {
            report.error = Some(why);
        }
        let spec = src.spec.to_value();
        let process = &spec["process"];
        let mut config = src.clone();
        config.namespace = ns.to_string();
        let static_dir = self.container_static_dir(&id);
        config.static_dir = static_dir.display().to_string();
        config.log_path = static_dir.join("ctr.log").display().to_string();
        config.conmon_pid_file = self
            .bundle_dir(&id)
            .join("conmon.pid")
            .display()
            .to_string();
        config.autoremove =
            src.autoremove || annotation_true(&spec, "io.podman.annotations.autoremove");
        config.init = src.init || annotation_true(&spec, "io.podman.annotations.init");
        config.exit_command = self.import_exit_command(&id, config.autoremove);
        if config.hostname.is_empty() {
            config.hostname = spec["hostname"]
                .as_str()
                .filter(|h| !h.is_empty())
                .map(String::from)
                .unwrap_or_else(|| id.chars().take(12).collect());
        }
        // networks
        let mode = src.network_mode.clone();
        config.network_mode = match mode.as_str() {
            "host" => "host".into(),
            "" | "none" => "none".into(),
            other => {
                notes.push(format!(
                    "network mode {other:?}: rpod has no {other} networking, it runs with --network none"
                ));
                "none".into()
            }
        };
        let legacy_nets = strings(&src.extra.get("networks").cloned().unwrap_or(Value::Null));
        if !legacy_nets.is_empty() {
            notes.push(format!("networks {}", legacy_nets.join(", ")));
        }
        let mut joined = BTreeMap::<String, Vec<&str>>::new();
        for (key, ns_name) in [
            ("netNsCtr", "network"),
            ("ipcNsCtr", "ipc"),
            ("utsNsCtr", "uts"),
            ("pidNsCtr", "pid"),
            ("mountNsCtr", "mount"),
            ("userNsCtr", "user"),
            ("cgroupNsCtr", "cgroup"),
        ] {
            if let Some(other) = src
                .extra
                .get(key)
                .and_then(Value::as_str)
                .filter(|s| !s.is_empty())
            {
                joined.entry(other.to_string()).or_default().push(ns_name);
            }
        }
        for (other, kinds) in joined {
            notes.push(format!(
                "joins the {} namespaces of container {}: rpod gives it its own",
                kinds.join(", "),
                short(&other)
            ));
        }
        // state, as after a reboot
        let mut state = src_state.clone();
        for s in state.exec_sessions.keys() {
            notes.push(format!("exec session {}", short(s)));
        }
        if let Some(old) = state.extra.get("execSessions").and_then(Value::as_object) {
            for s in old.keys() {
                notes.push(format!("exec session {}", short(s)));
            }
        }
        if matches!(
            state.state,
            ContainerStatus::Running | ContainerStatus::Paused | ContainerStatus::Stopping
        ) {
            notes.push(format!(
                "its {} process (it was {} in the source; rpod resets it to configured)",
                src_state.state.as_str(),
                src_state.state.as_str()
            ));
        }
        state.reset_after_reboot();
        if state.state == ContainerStatus::Stopped {
            state.state = ContainerStatus::Exited;
        }
        state.config_path.clear();
        state.run_dir.clear();
        report.state = state.state.as_str().to_string();

        // the root filesystem, and rpod's create options
        let image = src
            .extra
            .get("rootfsImageName")
            .or_else(|| src.extra.get("rootfsImageID"))
            .and_then(Value::as_str)
            .filter(|s| !s.is_empty())
            .map(String::from);
        config.extra.remove(CREATE_KEY);
        if src.rootfs.is_empty() {
            report.runnable = false;
            notes.push(match &image {
                Some(img) => format!(
                    "created from image {img}: rpod runs --rootfs containers only, it cannot start this one"
                ),
                None => "no root filesystem recorded: rpod cannot start it".to_string(),
            });
        } else {
            let rootfs = self.map_rootfs(&src.rootfs, opts);
            config.rootfs = rootfs.clone();
            if !Path::new(&rootfs).is_dir() {
                report.runnable = false;
                notes.push(format!(
                    "rootfs {rootfs} does not exist: rpod start fails until it does (or import again with --rootfs-map OLD=NEW)"
                ));
            }
            let args = strings(&process["args"]);
            if args.is_empty() {
                report.runnable = false;
                notes.push("no command in its OCI spec: rpod cannot start it".to_string());
            }
            let uid = process["user"]["uid"].as_u64().unwrap_or(0);
            let gid = process["user"]["gid"].as_u64().unwrap_or(0);
            let mut volumes = Vec::new();
            for m in spec["mounts"].as_array().into_iter().flatten() {
                let dest = m["destination"].as_str().unwrap_or("");
                if m["type"] != "bind" || GENERATED_DESTS.contains(&dest) {
                    continue;
                }
                let src_path = m["source"].as_str().unwrap_or("");
                let ro = strings(&m["options"]).iter().any(|o| o == "ro");
                volumes.push(format!("{src_path}:{dest}{}", if ro { ":ro" } else { "" }));
            }
            // named volumes: `NAME:/dest[:ro]`, mounted from rpod's copy of the volume
            for v in &src.named_volumes {
                let ro = v.options.iter().any(|o| o == "ro");
                volumes.push(format!(
                    "{}:{}{}",
                    v.name,
                    v.dest,
                    if ro { ":ro" } else { "" }
                ));
            }
            let restart = match (src.restart_policy.as_str(), src.restart_retries) {
                ("on-failure", n) if n > 0 => format!("on-failure:{n}"),
                (p, _) => p.to_string(),
            };
            let privileged = src
                .extra
                .get("privileged")
                .and_then(Value::as_bool)
                .unwrap_or(false)
                || annotation_true(&spec, "io.podman.annotations.privileged");
            let create = CreateOptions {
                name: Some(src.name.clone()),
                rootfs: PathBuf::from(&rootfs),
                command: args,
                env: strings(&process["env"]),
                workdir: process["cwd"].as_str().unwrap_or("").to_string(),
                user: if uid == 0 && gid == 0 {
                    String::new()
                } else {
                    format!("{uid}:{gid}")
                },
                hostname: config.hostname.clone(),
                labels: src.labels.clone(),
                volumes,
                privileged,
                read_only: spec["root"]["readonly"].as_bool().unwrap_or(false),
                network: if config.network_mode == "host" {
                    "host".into()
                } else {
                    String::new()
                },
                init: config.init,
                tty: process["terminal"].as_bool().unwrap_or(false),
                interactive: src
                    .extra
                    .get("stdin")
                    .and_then(Value::as_bool)
                    .unwrap_or(false),
                autoremove: config.autoremove,
                stop_signal: (src.stop_signal > 0).then_some(src.stop_signal as i32),
                stop_timeout: Some(src.stop_timeout),
                restart,
                create_command: src.create_command.clone(),
                ..CreateOptions::default()
            };
            match serde_json::to_value(&create) {
                Ok(v) => {
                    config.extra.insert(CREATE_KEY.into(), v);
                }
                Err(e) => report.error = Some(format!("encoding its create options: {e}")),
            }
        }
        if src.is_infra {
            report.runnable = false;
        }
        let _ = config.extra.insert(
            "rpodImportedFrom".into(),
            serde_json::json!({ "lockID": src.lock_id, "staticDir": src.static_dir }),
        );
        report.not_carried_over = notes;
        Planned {
            config,
            state,
            exit: None,
            report,
        }
    }
}

fn short(id: &str) -> &str {
    id.get(..12).unwrap_or(id)
}

/// Containers ordered so that every dependency comes before its dependents
/// (ties by id); a cycle or a missing dependency keeps the remaining order.
fn order_by_dependencies(mut ctrs: Vec<ContainerRecord>) -> Vec<ContainerRecord> {
    ctrs.sort_by(|a, b| a.config.id.cmp(&b.config.id));
    let ids: BTreeSet<String> = ctrs.iter().map(|c| c.config.id.clone()).collect();
    let mut done: BTreeSet<String> = BTreeSet::new();
    let mut out = Vec::with_capacity(ctrs.len());
    while !ctrs.is_empty() {
        let ready = ctrs.iter().position(|c| {
            c.config
                .dependencies
                .iter()
                .all(|d| done.contains(d) || !ids.contains(d))
        });
        let i = ready.unwrap_or(0);
        let c = ctrs.remove(i);
        done.insert(c.config.id.clone());
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn rec(id: &str, deps: &[&str]) -> ContainerRecord {
        ContainerRecord {
            config: ContainerConfig {
                id: id.into(),
                name: format!("n{id}"),
                dependencies: deps.iter().map(|d| d.to_string()).collect(),
                ..Default::default()
            },
            state: ContainerState::configured(),
        }
    }

    #[test]
    fn dependencies_come_first() {
        let out = order_by_dependencies(vec![rec("a", &["c"]), rec("b", &[]), rec("c", &["b"])]);
        let ids: Vec<&str> = out.iter().map(|c| c.config.id.as_str()).collect();
        assert_eq!(ids, ["b", "c", "a"]);
        // a cycle still yields every container once
        let out = order_by_dependencies(vec![rec("x", &["y"]), rec("y", &["x"])]);
        assert_eq!(out.len(), 2);
    }

    #[test]
    fn annotations_read_as_podman_writes_them() {
        let spec = serde_json::json!({"annotations": {"io.podman.annotations.autoremove": "TRUE", "io.podman.annotations.init": "FALSE"}});
        assert!(annotation_true(&spec, "io.podman.annotations.autoremove"));
        assert!(!annotation_true(&spec, "io.podman.annotations.init"));
        assert!(!annotation_true(&spec, "missing"));
    }
}
