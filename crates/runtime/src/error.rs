//! The runtime's error type.

use std::path::PathBuf;

/// Errors of the engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] rpod_config::ConfigError),
    /// A backend could not be found in the registry.
    #[error(transparent)]
    Registry(#[from] rpod_registry::RegistryError),
    /// The state database failed.
    #[error(transparent)]
    State(#[from] rpod_state::StateError),
    /// A lock operation failed.
    #[error(transparent)]
    Lock(#[from] rpod_lock::LockError),
    /// The events backend failed.
    #[error(transparent)]
    Events(#[from] rpod_events::EventsError),
    /// The OCI layer (runtime, conmon, spec) failed.
    #[error(transparent)]
    Oci(#[from] rpod_oci::OciError),
    /// An invalid name.
    #[error("invalid {what} name {name:?}: expected {}", crate::names::NAME_RULE)]
    InvalidName { what: &'static str, name: String },
    /// Bad input that is not a name.
    #[error("invalid {what} {value:?}: expected {expected}")]
    InvalidInput {
        what: &'static str,
        value: String,
        expected: String,
    },
    /// The operation is not valid in the container's current state.
    #[error("container {id} is {state}: cannot {op} it{hint}")]
    InvalidState {
        id: String,
        state: String,
        op: &'static str,
        hint: String,
    },
    /// A step of create/start failed; everything before it was undone.
    #[error("{op} container {id}: {step} failed: {source}")]
    Step {
        op: &'static str,
        id: String,
        step: &'static str,
        #[source]
        source: Box<RuntimeError>,
    },
    /// An I/O error on a path.
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// Timed out waiting for something.
    #[error("timed out after {seconds}s waiting for {what}")]
    Timeout { what: String, seconds: u64 },
    /// An explicitly configured path differs from the one the database was
    /// created with.
    #[error(
        "database {db_key} is {db:?} but {key} is set to {current:?}: remove the {key} setting \
         to use the database's value, point db_path/static_dir at another database for \
         {current:?}, or run `rpod system reset` to start afresh"
    )]
    DbConfigMismatch {
        /// The config key (`root`, `runroot`, …).
        key: &'static str,
        /// podman's database key (`graph-root`, …).
        db_key: &'static str,
        /// The database's value.
        db: String,
        /// The configured value.
        current: String,
    },
    /// The runtime was shut down.
    #[error("runtime stopped: no further operations are possible on it")]
    Stopped,
    /// The state database refuses writes (e.g. podman's, opened read-only).
    #[error("cannot {op}: database {} {reason}", path.display())]
    ReadOnlyDatabase {
        /// The refused operation.
        op: &'static str,
        /// The database path.
        path: PathBuf,
        /// Why it is read-only, as the state backend says.
        reason: String,
    },
}

impl RuntimeError {
    /// podman's exit code for this error: 127 when the command was not found
    /// in the container, 126 when it cannot be invoked, otherwise 125.
    pub fn exit_code(&self) -> u8 {
        match self {
            RuntimeError::Oci(e) => match e.exit_code() {
                126 => 126,
                127 => 127,
                _ => 125,
            },
            RuntimeError::Step { source, .. } => source.exit_code(),
            _ => 125,
        }
    }

    pub(crate) fn io(op: &'static str, path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        RuntimeError::Io {
            op,
            path: path.into(),
            source,
        }
    }

    /// Whether this is a state "not found".
    pub fn is_not_found(&self) -> bool {
        matches!(
            self,
            RuntimeError::State(rpod_state::StateError::NotFound { .. })
        )
    }
}

/// The runtime's result.
pub type Result<T, E = RuntimeError> = std::result::Result<T, E>;
