//! The state interface: one object-safe [`State`] made of small sub-traits.

use std::fmt;
use std::path::Path;

use crate::records::*;
use crate::{StateError, Timestamp};

/// Containers: records, dependencies, lookup.
///
/// A container may belong to a pod: set [`ContainerConfig::pod`] and add it
/// with [`add_container`](Self::add_container); removing it removes it from
/// its pod. (This covers libpod's `AddContainerToPod`/`RemoveContainerFromPod`.)
pub trait ContainerStore {
    /// Adds a container with its initial state.
    ///
    /// Fails with `IdInUse`/`NameInUse` if its id or name is taken by a
    /// container or a pod; `Invalid` if its namespace is not the state's (when
    /// the state has one), a dependency is itself, a pod, in another namespace
    /// or another pod, or the pod is in another namespace; `NotFound` if a
    /// dependency, its pod or a named volume does not exist.
    fn add_container(
        &self,
        config: &ContainerConfig,
        state: &ContainerState,
    ) -> Result<(), StateError>;

    /// Removes a container (and its membership of a pod, its volume uses and
    /// its dependency edges). Fails with `InUse` (dependents) if other
    /// containers depend on it. Its recorded exit code is kept.
    fn remove_container(&self, id: &str) -> Result<(), StateError>;

    /// The container with this full id.
    fn container(&self, id: &str) -> Result<ContainerRecord, StateError>;

    /// Whether a container with this full id exists (a pod's id gives `false`).
    fn has_container(&self, id: &str) -> Result<bool, StateError>;

    /// The container with this full id, else this exact name, else this
    /// unique id prefix. An ambiguous prefix gives `Ambiguous` (with the count);
    /// a miss gives `NotFound` naming the input.
    fn lookup_container(&self, id_or_name: &str) -> Result<ContainerRecord, StateError>;

    /// The current state of a container (libpod's `UpdateContainer`, "sync").
    fn container_state(&self, id: &str) -> Result<ContainerState, StateError>;

    /// Replaces a container's state (libpod's `SaveContainer`).
    fn save_container_state(&self, id: &str, state: &ContainerState) -> Result<(), StateError>;

    /// Replaces a container's config, found by `config.id`. The name may change
    /// (rename: the new name must be free); the lock id and unindexed fields
    /// may change; pod, namespace, dependencies and named volumes may not.
    fn rewrite_container_config(&self, config: &ContainerConfig) -> Result<(), StateError>;

    /// Every container in the namespace, ordered by id.
    fn all_containers(&self) -> Result<Vec<ContainerRecord>, StateError>;

    /// Calls `f` on every container in the namespace, ordered by id, without
    /// holding them all in memory at once (`ps` of thousands of containers).
    /// The database may stay busy while `f` runs: `f` must not wait on
    /// anything. An error from `f` stops the walk and is returned. The
    /// default walks [`all_containers`](Self::all_containers).
    fn for_each_container(
        &self,
        f: &mut dyn FnMut(ContainerRecord) -> Result<(), StateError>,
    ) -> Result<(), StateError> {
        for rec in self.all_containers()? {
            f(rec)?;
        }
        Ok(())
    }

    /// Ids of the containers that depend on this one, sorted, no duplicates
    /// (libpod's `ContainerInUse`).
    fn container_dependents(&self, id: &str) -> Result<Vec<String>, StateError>;
}

/// Pods and their member containers.
pub trait PodStore {
    /// Adds a pod. Id and name must be unique across containers and pods.
    fn add_pod(&self, config: &PodConfig, state: &PodState) -> Result<(), StateError>;

    /// Removes an empty pod; `InUse` (pod members) otherwise.
    fn remove_pod(&self, id: &str) -> Result<(), StateError>;

    /// The pod with this full id.
    fn pod(&self, id: &str) -> Result<PodRecord, StateError>;

    /// Whether a pod with this full id exists (a container's id gives `false`).
    fn has_pod(&self, id: &str) -> Result<bool, StateError>;

    /// Like [`ContainerStore::lookup_container`], for pods.
    fn lookup_pod(&self, id_or_name: &str) -> Result<PodRecord, StateError>;

    /// Replaces a pod's state.
    fn save_pod_state(&self, id: &str, state: &PodState) -> Result<(), StateError>;

    /// Replaces a pod's config (by `config.id`); the name may change if free,
    /// the namespace may not.
    fn rewrite_pod_config(&self, config: &PodConfig) -> Result<(), StateError>;

    /// Every pod in the namespace, ordered by id.
    fn all_pods(&self) -> Result<Vec<PodRecord>, StateError>;

    /// Ids of the pod's containers, sorted.
    fn pod_containers(&self, pod_id: &str) -> Result<Vec<String>, StateError>;

    /// Whether the container is a member of the pod.
    fn pod_has_container(&self, pod_id: &str, ctr_id: &str) -> Result<bool, StateError>;

    /// Removes every member of the pod at once and returns their ids. Fails
    /// with `InUse` if a container outside the pod depends on a member.
    fn remove_pod_containers(&self, pod_id: &str) -> Result<Vec<String>, StateError>;
}

/// Named volumes. Volume names are their own name space, separate from
/// containers and pods.
pub trait VolumeStore {
    /// Adds a volume; `NameInUse` if a volume has the name.
    fn add_volume(&self, config: &VolumeConfig, state: &VolumeState) -> Result<(), StateError>;

    /// Removes a volume; `InUse` (volume users) while containers use it.
    fn remove_volume(&self, name: &str) -> Result<(), StateError>;

    /// The volume with this exact name.
    fn volume(&self, name: &str) -> Result<VolumeRecord, StateError>;

    /// Whether a volume with this name exists.
    fn has_volume(&self, name: &str) -> Result<bool, StateError>;

    /// The volume with this exact name, else the one whose name has this
    /// unique prefix.
    fn lookup_volume(&self, name_or_prefix: &str) -> Result<VolumeRecord, StateError>;

    /// Replaces a volume's state.
    fn save_volume_state(&self, name: &str, state: &VolumeState) -> Result<(), StateError>;

    /// Replaces a volume's config (by `config.name`, which cannot change).
    fn rewrite_volume_config(&self, config: &VolumeConfig) -> Result<(), StateError>;

    /// Every volume in the namespace, ordered by name.
    fn all_volumes(&self) -> Result<Vec<VolumeRecord>, StateError>;

    /// Ids of the containers using the volume, sorted.
    fn volume_users(&self, name: &str) -> Result<Vec<String>, StateError>;
}

/// Exit codes of finished containers, kept after the container is removed
/// (so `rpod wait` can still answer after `--rm`), until pruned.
pub trait ExitCodes {
    /// Records (or replaces) a container's exit code with the time given.
    fn record_exit_code(&self, id: &str, exit: ExitCode) -> Result<(), StateError>;

    /// Records a container's exit code, timestamped now.
    fn add_exit_code(&self, id: &str, code: i32) -> Result<(), StateError> {
        self.record_exit_code(
            id,
            ExitCode {
                code,
                time: Timestamp::now(),
            },
        )
    }

    /// The recorded exit code; `NotFound` (kind exit code) if none.
    fn exit_code(&self, id: &str) -> Result<ExitCode, StateError>;

    /// Removes the exit codes recorded before `older_than`; returns how many.
    fn prune_exit_codes(&self, older_than: Timestamp) -> Result<usize, StateError>;
}

/// The configuration a database was created with.
pub trait DbConfigStore {
    /// The stored configuration, or `None` before the first validation.
    fn db_config(&self) -> Result<Option<DbConfig>, StateError>;

    /// On first use stores `current`; later compares it with the stored one
    /// and fails with `DbConfigMismatch` (naming key and both values) on a
    /// difference. Stored empty values are filled from `current`. Returns the
    /// configuration now stored.
    fn validate_db_config(&self, current: &DbConfig) -> Result<DbConfig, StateError>;
}

/// A state backend: where rpod keeps containers, pods, volumes and exit codes
/// between invocations (libpod's `State`).
///
/// Data only: every method takes and returns ids and records, never a
/// runtime handle, so it is object-safe and a backend can live in another
/// crate or a plugin. Implementations must be `Send + Sync`; every method is
/// one atomic operation, durable when it returns (the default of
/// [`State::remove_container_with_exit_code`] is two: backends override it).
pub trait State:
    ContainerStore + PodStore + VolumeStore + ExitCodes + DbConfigStore + Send + Sync + fmt::Debug
{
    /// The backend's registered name (`memory`, `sled`, …).
    fn backend(&self) -> &str;

    /// The database path, if the backend has one.
    fn path(&self) -> Option<&Path>;

    /// The namespace this state sees; empty sees everything.
    fn namespace(&self) -> &str;

    /// Another view of the same database restricted to `namespace` (empty for all).
    fn with_namespace(&self, namespace: &str) -> Result<Box<dyn State>, StateError>;

    /// After a reboot: resets every container's runtime state
    /// ([`ContainerState::reset_after_reboot`]), every pod's cgroup path and
    /// every volume's mount count, in all namespaces. Configs are kept.
    fn refresh(&self) -> Result<(), StateError>;

    /// The schema version of the database.
    fn schema_version(&self) -> u32;

    /// Why every write to this database is refused, when it is: a sentence
    /// to follow the database path, e.g. "was created by podman and is opened
    /// read-only". `None` (the default) for a writable state. The engine asks
    /// at start-up: a read-only state is only listed and inspected, never
    /// validated against the configuration nor changed.
    fn read_only_reason(&self) -> Option<String> {
        None
    }

    /// Records the exit code of container `id` and removes the container, as
    /// one atomic, durable operation where the backend can (what removing an
    /// exited container does: `rpod wait` still answers afterwards). Fails
    /// like [`ContainerStore::remove_container`]; the default records the
    /// exit code, then removes the container, in two operations.
    fn remove_container_with_exit_code(&self, id: &str, exit: ExitCode) -> Result<(), StateError> {
        self.record_exit_code(id, exit)?;
        self.remove_container(id)
    }
}
