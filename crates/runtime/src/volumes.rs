//! Named volumes: create, list, inspect, remove, prune, and their use by
//! containers (`-v NAME:/path[:ro]`, anonymous `-v /path`).
//!
//! A volume is a record in the state ([`rpod_state::VolumeStore`]) that owns a
//! lock like a container, and a directory `volume_path/<name>/_data` that is
//! bind-mounted into the containers using it. Names follow the container name
//! rule ([`crate::names::is_valid`]), so a name is always one plain path
//! component and can never escape `volume_path`.

use std::collections::BTreeMap;
use std::path::PathBuf;

use rpod_events::{Event, Status};
use rpod_oci::spec::BindMount;
use rpod_state::{NamedVolume, Timestamp, VolumeConfig, VolumeRecord, VolumeState};
use serde::Serialize;

use crate::{names, LockedContainer, Result, Runtime, RuntimeError};

/// The only volume driver rpod has.
pub const LOCAL_DRIVER: &str = "local";

/// podman's `VolumeState` key: whether the first mount is still to come.
const NEEDS_COPY_UP: &str = "needsCopyUp";

/// Driver options the `local` driver accepts.
const KNOWN_OPTIONS: &[&str] = &["uid", "gid"];

/// What `rpod volume create` asks for.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VolumeCreateOptions {
    /// The name; generated (64 hex digits) when `None`.
    pub name: Option<String>,
    /// `--label KEY=VALUE`.
    pub labels: BTreeMap<String, String>,
    /// `--opt KEY=VALUE` (`uid`, `gid`).
    pub options: BTreeMap<String, String>,
}

/// `rpod volume inspect`: podman's document for one volume.
#[derive(Debug, Clone, Serialize, PartialEq)]
#[serde(rename_all = "PascalCase")]
pub struct VolumeInspect {
    /// The name.
    pub name: String,
    /// The driver (`local`).
    pub driver: String,
    /// The directory mounted into containers.
    pub mountpoint: String,
    /// Creation time (RFC 3339).
    pub created_at: String,
    /// User labels.
    pub labels: BTreeMap<String, String>,
    /// Always `local`.
    pub scope: String,
    /// Driver options.
    pub options: BTreeMap<String, String>,
    /// UID of the data directory's owner (podman shows it when set).
    #[serde(rename = "UID", skip_serializing_if = "Option::is_none")]
    pub uid: Option<u32>,
    /// GID of the data directory's owner.
    #[serde(rename = "GID", skip_serializing_if = "Option::is_none")]
    pub gid: Option<u32>,
    /// How many containers have it mounted.
    pub mount_count: u32,
    /// Whether the volume was never mounted yet (podman copies the image's
    /// content at the mount point up then; rpod does not copy).
    pub needs_copy_up: bool,
    /// Whether it was created for a container's `-v /path`.
    pub anonymous: bool,
    /// Containers using it (rpod's addition).
    pub containers: Vec<String>,
}

/// One `-v` argument, classified.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) enum VolumeArg {
    /// `/host:/ctr[:opts]`: a bind mount.
    Bind(String),
    /// `NAME:/ctr[:ro|rw]`.
    Named {
        name: String,
        dest: String,
        read_only: bool,
    },
    /// `/ctr`: an anonymous volume.
    Anonymous { dest: String },
}

fn bad_volume_arg(s: &str) -> RuntimeError {
    RuntimeError::InvalidInput {
        what: "volume",
        value: s.to_string(),
        expected:
            "/host/path:/container/path[:ro|rw], NAME:/container/path[:ro|rw] or /container/path"
                .into(),
    }
}

/// Classifies a `-v` argument; a source without a leading `/` is a volume
/// name, which must be valid.
pub(crate) fn parse_volume_arg(s: &str) -> Result<VolumeArg> {
    let parts: Vec<&str> = s.split(':').collect();
    match parts.as_slice() {
        [dest] => {
            if !dest.starts_with('/') {
                return Err(bad_volume_arg(s));
            }
            Ok(VolumeArg::Anonymous {
                dest: dest.to_string(),
            })
        }
        [src, rest @ ..] if src.starts_with('/') => {
            if rest.is_empty() {
                return Err(bad_volume_arg(s));
            }
            Ok(VolumeArg::Bind(s.to_string()))
        }
        [src, dest, opts @ ..] => {
            if !names::is_valid(src) {
                return Err(RuntimeError::InvalidName {
                    what: "volume",
                    name: src.to_string(),
                });
            }
            if !dest.starts_with('/') {
                return Err(bad_volume_arg(s));
            }
            let read_only = match opts {
                [] | ["rw"] => false,
                ["ro"] => true,
                _ => return Err(bad_volume_arg(s)),
            };
            Ok(VolumeArg::Named {
                name: src.to_string(),
                dest: dest.to_string(),
                read_only,
            })
        }
        _ => Err(bad_volume_arg(s)),
    }
}

/// The volumes a new container uses, prepared before it is stored.
#[derive(Debug, Default)]
pub(crate) struct PreparedVolumes {
    /// What goes into `ContainerConfig::named_volumes`.
    pub named: Vec<NamedVolume>,
    /// Volumes created for this container (undone if creating it fails).
    pub created: Vec<VolumeConfig>,
}

fn check_name(name: &str) -> Result<()> {
    if !names::is_valid(name) {
        return Err(RuntimeError::InvalidName {
            what: "volume",
            name: name.to_string(),
        });
    }
    Ok(())
}

fn parse_id(key: &str, v: &str) -> Result<u32> {
    v.parse().map_err(|_| RuntimeError::InvalidInput {
        what: "volume option",
        value: format!("{key}={v}"),
        expected: format!("{key} as a non-negative integer"),
    })
}

impl Runtime {
    /// The directory of a volume (`volume_path/<name>`).
    pub fn volume_dir(&self, name: &str) -> PathBuf {
        self.config().volume_path.join(name)
    }

    /// The data directory of a volume, bind-mounted into containers.
    pub fn volume_data_dir(&self, name: &str) -> PathBuf {
        self.volume_dir(name).join("_data")
    }

    /// Creates a volume record, its lock and its directories, without an
    /// event. Everything is undone on a failure.
    fn add_volume_quiet(
        &self,
        name: &str,
        labels: BTreeMap<String, String>,
        options: BTreeMap<String, String>,
        anonymous: bool,
    ) -> Result<VolumeConfig> {
        check_name(name)?;
        let mut owner = (None, None);
        for (k, v) in &options {
            match k.as_str() {
                "uid" => owner.0 = Some(parse_id(k, v)?),
                "gid" => owner.1 = Some(parse_id(k, v)?),
                _ => {
                    return Err(RuntimeError::InvalidInput {
                        what: "volume option",
                        value: format!("{k}={v}"),
                        expected: format!(
                            "one of {} (mounting devices is not supported)",
                            KNOWN_OPTIONS.join(", ")
                        ),
                    })
                }
            }
        }
        if self.state().has_volume(name)? {
            return Err(rpod_state::StateError::NameInUse {
                kind: rpod_state::ObjectKind::Volume,
                name: name.to_string(),
                holder: name.to_string(),
            }
            .into());
        }
        let dir = self.volume_dir(name);
        let data = self.volume_data_dir(name);
        let lock = self.locks().allocate()?;
        let config = VolumeConfig {
            name: name.to_string(),
            labels,
            options,
            driver: LOCAL_DRIVER.into(),
            mount_point: data.display().to_string(),
            created_time: Timestamp::now(),
            lock_id: lock.id(),
            namespace: self.config().namespace.clone(),
            anonymous,
            extra: Default::default(),
        };
        let undo = |e: RuntimeError, dirs: bool| -> RuntimeError {
            if dirs {
                let _ = std::fs::remove_dir_all(&dir);
            }
            if let Err(fe) = self.locks().free(config.lock_id) {
                tracing::warn!("freeing lock {} of volume {name}: {fe}", config.lock_id);
            }
            e
        };
        let made = std::fs::create_dir_all(&self.config().volume_path)
            .and_then(|()| std::fs::create_dir(&dir))
            .map_err(|e| {
                if e.kind() == std::io::ErrorKind::AlreadyExists {
                    // a volume of another namespace, or a leftover directory
                    rpod_state::StateError::NameInUse {
                        kind: rpod_state::ObjectKind::Volume,
                        name: name.to_string(),
                        holder: dir.display().to_string(),
                    }
                    .into()
                } else {
                    RuntimeError::io("create volume directory", &dir, e)
                }
            });
        if let Err(e) = made {
            return Err(undo(e, false));
        }
        let prepared = (|| {
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(&dir, std::fs::Permissions::from_mode(0o700))
                .map_err(|e| RuntimeError::io("set permissions of", &dir, e))?;
            std::fs::create_dir(&data).map_err(|e| RuntimeError::io("create", &data, e))?;
            std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o755))
                .map_err(|e| RuntimeError::io("set permissions of", &data, e))?;
            if owner != (None, None) {
                std::os::unix::fs::chown(&data, owner.0, owner.1)
                    .map_err(|e| RuntimeError::io("change the owner of", &data, e))?;
            }
            self.state()
                .add_volume(&config, &VolumeState::default())
                .map_err(RuntimeError::from)
        })();
        if let Err(e) = prepared {
            return Err(undo(e, true));
        }
        Ok(config)
    }

    /// `rpod volume create`: a named volume (name generated when absent).
    /// Event `create`.
    pub fn create_volume(&self, opts: &VolumeCreateOptions) -> Result<VolumeConfig> {
        self.check_alive()?;
        let name = opts.name.clone().unwrap_or_else(names::new_id);
        let cfg = self.add_volume_quiet(&name, opts.labels.clone(), opts.options.clone(), false)?;
        self.emit(Event::volume(Status::Create, &cfg.name));
        Ok(cfg)
    }

    /// Every volume in the namespace, by name.
    pub fn list_volumes(&self) -> Result<Vec<VolumeRecord>> {
        self.check_alive()?;
        Ok(self.state().all_volumes()?)
    }

    /// A volume by name or unique name prefix.
    pub fn lookup_volume(&self, name: &str) -> Result<VolumeRecord> {
        self.check_alive()?;
        Ok(self.state().lookup_volume(name)?)
    }

    /// podman's inspect document of a volume.
    pub fn inspect_volume(&self, rec: &VolumeRecord) -> Result<VolumeInspect> {
        let c = &rec.config;
        let containers = self.state().volume_users(&c.name)?;
        let id = |k: &str| c.options.get(k).and_then(|v| v.parse().ok());
        Ok(VolumeInspect {
            name: c.name.clone(),
            driver: c.driver.clone(),
            mountpoint: c.mount_point.clone(),
            created_at: c.created_time.to_string(),
            labels: c.labels.clone(),
            scope: "local".into(),
            options: c.options.clone(),
            uid: id("uid"),
            gid: id("gid"),
            mount_count: rec.state.mount_count,
            needs_copy_up: rec
                .state
                .extra
                .get(NEEDS_COPY_UP)
                .and_then(|v| v.as_bool())
                .unwrap_or(true),
            anonymous: c.anonymous,
            containers,
        })
    }

    /// `rpod volume rm`: a volume in use is refused unless `force`, which
    /// first removes (stopping) every container using it, as podman.
    /// Event `remove`.
    pub fn remove_volume(&self, name: &str, force: bool) -> Result<()> {
        self.check_alive()?;
        let rec = self.state().lookup_volume(name)?;
        let name = rec.config.name.clone();
        let users = self.state().volume_users(&name)?;
        if !users.is_empty() {
            if !force {
                return Err(rpod_state::StateError::InUse {
                    id: name.clone(),
                    kind: rpod_state::ObjectKind::Volume,
                    what: rpod_state::InUseBy::VolumeUsers,
                    by: users,
                }
                .into());
            }
            for id in users {
                match self.lock_container(&id) {
                    Ok(c) => c.remove(true)?,
                    Err(e) if e.is_not_found() => {}
                    Err(e) => return Err(e),
                }
            }
        }
        self.remove_volume_record(&rec.config)?;
        self.emit(Event::volume(Status::Remove, &name));
        Ok(())
    }

    /// Removes an unused volume under its lock: record, directory, lock.
    fn remove_volume_record(&self, cfg: &VolumeConfig) -> Result<()> {
        let lock = self.locks().retrieve(cfg.lock_id)?;
        let guard = lock.lock()?;
        self.state().remove_volume(&cfg.name)?;
        drop(guard);
        let dir = self.volume_dir(&cfg.name);
        if let Err(e) = std::fs::remove_dir_all(&dir) {
            if e.kind() != std::io::ErrorKind::NotFound {
                tracing::warn!("removing {}: {e}", dir.display());
            }
        }
        if let Err(e) = self.locks().free(cfg.lock_id) {
            tracing::warn!("freeing lock {} of volume {}: {e}", cfg.lock_id, cfg.name);
        }
        Ok(())
    }

    /// `rpod volume prune`: removes every volume no container uses and
    /// returns their names. Event `prune` per volume.
    pub fn prune_volumes(&self) -> Result<Vec<String>> {
        self.check_alive()?;
        let mut pruned = Vec::new();
        for rec in self.state().all_volumes()? {
            if !self.state().volume_users(&rec.config.name)?.is_empty() {
                continue;
            }
            match self.remove_volume_record(&rec.config) {
                Ok(()) => {
                    self.emit(Event::volume(Status::Prune, &rec.config.name));
                    pruned.push(rec.config.name);
                }
                // taken into use meanwhile
                Err(RuntimeError::State(rpod_state::StateError::InUse { .. })) => {}
                Err(e) => return Err(e),
            }
        }
        Ok(pruned)
    }

    /// Resolves the `-v` arguments of a new container: anonymous volumes get
    /// generated names (the argument is rewritten to `NAME:/dest`), missing
    /// named volumes are created (without events until the container exists).
    pub(crate) fn prepare_volumes(&self, volumes: &mut [String]) -> Result<PreparedVolumes> {
        let mut parsed = Vec::new();
        for v in volumes.iter() {
            parsed.push(parse_volume_arg(v)?);
        }
        let mut out = PreparedVolumes::default();
        let result = (|| {
            for (arg, p) in volumes.iter_mut().zip(parsed) {
                let (name, dest, ro, anon) = match p {
                    VolumeArg::Bind(_) => continue,
                    VolumeArg::Named {
                        name,
                        dest,
                        read_only,
                    } => (name, dest, read_only, false),
                    VolumeArg::Anonymous { dest } => (names::new_id(), dest, false, true),
                };
                if anon || !self.state().has_volume(&name)? {
                    let cfg =
                        self.add_volume_quiet(&name, BTreeMap::new(), BTreeMap::new(), anon)?;
                    out.created.push(cfg);
                }
                if anon {
                    *arg = format!("{name}:{dest}");
                }
                let mut options = vec![if ro { "ro" } else { "rw" }.to_string()];
                options.push("rbind".into());
                out.named.push(NamedVolume {
                    name,
                    dest,
                    options,
                });
            }
            Ok(())
        })();
        if let Err(e) = result {
            self.undo_volumes(&out.created);
            return Err(e);
        }
        Ok(out)
    }

    /// Counts a container's mount (`mounted`) or unmount of its volumes in
    /// their `MountCount`, under each volume's lock; the first mount clears
    /// `NeedsCopyUp`. Failures are logged: the count is informational.
    pub(crate) fn count_volume_mounts(&self, vols: &[NamedVolume], mounted: bool) {
        for nv in vols {
            let r = (|| -> Result<()> {
                let rec = self.state().volume(&nv.name)?;
                let lock = self.locks().retrieve(rec.config.lock_id)?;
                let _guard = lock.lock()?;
                let mut st = self.state().volume(&nv.name)?.state;
                if mounted {
                    st.mount_count += 1;
                    st.extra.insert(NEEDS_COPY_UP.into(), false.into());
                } else {
                    st.mount_count = st.mount_count.saturating_sub(1);
                }
                self.state().save_volume_state(&nv.name, &st)?;
                Ok(())
            })();
            if let Err(e) = r {
                tracing::warn!("counting mounts of volume {}: {e}", nv.name);
            }
        }
    }

    /// Removes volumes created for a container whose creation failed.
    pub(crate) fn undo_volumes(&self, created: &[VolumeConfig]) {
        for v in created {
            if let Err(e) = self.remove_volume_record(v) {
                tracing::warn!("removing volume {} after a failed create: {e}", v.name);
            }
        }
    }

    /// Emits the `create` events of volumes created for a new container.
    pub(crate) fn volumes_created(&self, created: &[VolumeConfig]) {
        for v in created {
            self.emit(Event::volume(Status::Create, &v.name));
        }
    }

    /// The bind mounts of stored `-v` arguments: volume names become their
    /// data directories.
    pub(crate) fn volume_bind_mounts(&self, volumes: &[String]) -> Result<Vec<BindMount>> {
        volumes
            .iter()
            .map(|v| match parse_volume_arg(v)? {
                VolumeArg::Bind(s) => Ok(BindMount::parse(&s)?),
                VolumeArg::Named {
                    name,
                    dest,
                    read_only,
                } => Ok(BindMount {
                    source: self.volume_data_dir(&name),
                    destination: dest,
                    read_only,
                }),
                VolumeArg::Anonymous { .. } => Err(bad_volume_arg(v)),
            })
            .collect()
    }
}

impl LockedContainer<'_> {
    /// Removes the container like [`LockedContainer::remove`]; with
    /// `volumes`, also its anonymous volumes (`rm -v`, `run --rm`).
    pub fn remove_with_volumes(self, force: bool, volumes: bool) -> Result<()> {
        let rt = self.runtime();
        let named = self.config().named_volumes.clone();
        self.remove(force)?;
        if !volumes {
            return Ok(());
        }
        for nv in named {
            let rec = match rt.state().volume(&nv.name) {
                Ok(r) => r,
                Err(e) if e.is_not_found() => continue,
                Err(e) => return Err(e.into()),
            };
            if !rec.config.anonymous {
                continue;
            }
            match rt.remove_volume(&nv.name, false) {
                Ok(()) => {}
                // another container still uses it
                Err(RuntimeError::State(rpod_state::StateError::InUse { .. })) => {}
                Err(e) => tracing::warn!("removing anonymous volume {}: {e}", nv.name),
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn volume_args_are_classified() {
        assert_eq!(
            parse_volume_arg("/a:/b").unwrap(),
            VolumeArg::Bind("/a:/b".into())
        );
        assert_eq!(
            parse_volume_arg("data:/b:ro").unwrap(),
            VolumeArg::Named {
                name: "data".into(),
                dest: "/b".into(),
                read_only: true
            }
        );
        assert_eq!(
            parse_volume_arg("/only").unwrap(),
            VolumeArg::Anonymous {
                dest: "/only".into()
            }
        );
        for bad in ["rel", "data:rel", "data:/b:xx", "/a"] {
            if bad == "/a" {
                continue;
            }
            assert!(parse_volume_arg(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn volume_names_cannot_escape() {
        let long = "a".repeat(300);
        for bad in ["../x", "a/b", ".", "..", "", long.as_str()] {
            let arg = format!("{bad}:/dst");
            assert!(
                matches!(
                    parse_volume_arg(&arg),
                    Err(RuntimeError::InvalidName { .. }) | Err(RuntimeError::InvalidInput { .. })
                ),
                "{bad:?} accepted"
            );
            assert!(check_name(bad).is_err(), "{bad:?}");
        }
    }
}
