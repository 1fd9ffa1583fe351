//! The state's one error type.

use std::fmt;
use std::path::PathBuf;
use std::time::Duration;

/// What kind of object an error is about.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum ObjectKind {
    /// A container.
    Container,
    /// A pod.
    Pod,
    /// A volume.
    Volume,
    /// A container or a pod (the shared name and id registry).
    ContainerOrPod,
    /// A recorded exit code.
    ExitCode,
}

impl fmt::Display for ObjectKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ObjectKind::Container => "container",
            ObjectKind::Pod => "pod",
            ObjectKind::Volume => "volume",
            ObjectKind::ContainerOrPod => "container or pod",
            ObjectKind::ExitCode => "exit code",
        })
    }
}

/// Why an object is in use and cannot be removed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum InUseBy {
    /// Other containers depend on the container.
    Dependents,
    /// The pod still has member containers.
    PodMembers,
    /// Containers use the volume.
    VolumeUsers,
}

impl fmt::Display for InUseBy {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InUseBy::Dependents => "containers that depend on it",
            InUseBy::PodMembers => "member containers",
            InUseBy::VolumeUsers => "containers that use it",
        })
    }
}

/// Errors of a state backend. Callers branch on the variant; the message
/// names the object, path or backend concerned.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum StateError {
    /// No such object (in the state's namespace).
    #[error("no {kind} {what:?} found")]
    NotFound {
        /// What was looked up: id, name or prefix.
        what: String,
        /// The kind of object looked up.
        kind: ObjectKind,
    },
    /// A prefix matched more than one object.
    #[error("more than one {kind} matches {prefix:?} ({count} matches); give more of the id")]
    Ambiguous {
        /// The prefix.
        prefix: String,
        /// The kind looked up.
        kind: ObjectKind,
        /// How many matched.
        count: usize,
    },
    /// The name is taken (by a container or a pod; by a volume for volumes).
    #[error("name {name:?} is already in use by {kind} {holder}")]
    NameInUse {
        /// The name.
        name: String,
        /// The kind of object holding it.
        kind: ObjectKind,
        /// The id (or volume name) holding it.
        holder: String,
    },
    /// The id is taken by a container or a pod.
    #[error("id {id} is already in use by a {kind}")]
    IdInUse {
        /// The id.
        id: String,
        /// The kind holding it.
        kind: ObjectKind,
    },
    /// The request is invalid (empty id, bad dependency, wrong namespace, …).
    #[error("invalid request: {reason}")]
    Invalid {
        /// Why.
        reason: String,
    },
    /// The object is in use and cannot be removed.
    #[error("{kind} {id} is in use by {what}: {}", by.join(", "))]
    InUse {
        /// The object.
        id: String,
        /// Its kind.
        kind: ObjectKind,
        /// Ids of the users.
        by: Vec<String>,
        /// What kind of use.
        what: InUseBy,
    },
    /// The database is damaged or is not a database of this backend.
    #[error("state database {} is corrupt: {reason}", path.display())]
    Corrupt {
        /// The database path (`<memory>` for the memory backend).
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// The database has a schema version this build does not know.
    #[error("state database {} has schema version {found}, this rpod understands version {expected}; upgrade rpod or use another database", path.display())]
    WrongSchema {
        /// The database path.
        path: PathBuf,
        /// Version found.
        found: String,
        /// Version expected.
        expected: u32,
    },
    /// The database stayed locked by another process for too long.
    #[error("database busy: {} stayed locked by another process for {waited:?}", path.display())]
    Busy {
        /// The database path.
        path: PathBuf,
        /// How long we waited.
        waited: Duration,
    },
    /// The state is read-only.
    #[error("state database {} is open read-only; cannot {op}", path.display())]
    ReadOnly {
        /// The database path.
        path: PathBuf,
        /// The refused operation.
        op: &'static str,
    },
    /// The current configuration does not match the one the database was created with.
    #[error("database {key} {db:?} does not match our {key} {current:?}: database configuration mismatch")]
    DbConfigMismatch {
        /// podman's key name (`static-dir`, `tmp-dir`, `graph-root`, …).
        key: &'static str,
        /// The value in the database.
        db: String,
        /// The current value.
        current: String,
    },
    /// Looking the backend up in the registry failed (unknown name lists the known ones).
    #[error(transparent)]
    Registry(#[from] rpod_registry::RegistryError),
    /// A backend-specific failure (I/O, the database library).
    #[error("{backend} state backend: {source}")]
    Backend {
        /// The backend's name.
        backend: String,
        /// The underlying error.
        #[source]
        source: Box<dyn std::error::Error + Send + Sync + 'static>,
    },
}

impl StateError {
    /// A `NotFound`.
    pub fn not_found(kind: ObjectKind, what: impl Into<String>) -> Self {
        StateError::NotFound {
            what: what.into(),
            kind,
        }
    }

    /// An `Invalid`.
    pub fn invalid(reason: impl Into<String>) -> Self {
        StateError::Invalid {
            reason: reason.into(),
        }
    }

    /// Whether this is a `NotFound`.
    pub fn is_not_found(&self) -> bool {
        matches!(self, StateError::NotFound { .. })
    }
}
