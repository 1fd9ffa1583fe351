//! The one error type of the lock crates.

use std::error::Error as StdError;
use std::fmt;
use std::path::{Path, PathBuf};

/// Errors of lock managers and locks, for every backend.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum LockError {
    /// Every lock of a limited backend is allocated.
    #[error("allocation failed; exceeded num_locks ({limit})")]
    Exhausted {
        /// How many locks the manager has.
        limit: u32,
    },
    /// The lock was expected to be allocated (freeing it, or locking a lock
    /// whose backing storage does not exist).
    #[error("lock {id} is not allocated")]
    NotAllocated {
        /// The lock id.
        id: u32,
    },
    /// The lock is already allocated (allocating a given id twice).
    #[error("lock {id} is already allocated")]
    AlreadyAllocated {
        /// The lock id.
        id: u32,
    },
    /// The id is beyond the number of locks the manager has.
    #[error("lock {id} is out of range: the lock manager has {limit} locks (ids 0 to {})", .limit.saturating_sub(1))]
    OutOfRange {
        /// The lock id.
        id: u32,
        /// How many locks the manager has.
        limit: u32,
    },
    /// The existing lock storage was made for another number of locks.
    #[error(
        "lock storage {location} holds {found} locks but num_locks is {configured}; \
         run `rpod system renumber` to recreate it with the configured number"
    )]
    CountMismatch {
        /// The segment or directory.
        location: String,
        /// Locks in the existing storage.
        found: u32,
        /// Locks configured (after rounding).
        configured: u32,
    },
    /// The calling thread already holds this lock: locking it again would
    /// deadlock (or silently succeed), so it is refused.
    #[error("lock {id} is already held by this thread; locking it again would deadlock")]
    WouldDeadlock {
        /// The lock id.
        id: u32,
    },
    /// `lock_type` names no registered lock backend.
    #[error("cannot open lock backend {name:?}: {source}")]
    UnknownBackend {
        /// The configured name.
        name: String,
        /// What the registry said (lists the known backends).
        source: rpod_registry::RegistryError,
    },
    /// A backend-specific failure: a system call, a corrupt or foreign file.
    #[error("{backend} lock backend: {reason}{}", at_path(.path))]
    Backend {
        /// The backend's name (`shm`, `file`, …).
        backend: String,
        /// The file, segment or directory concerned, if any.
        path: Option<PathBuf>,
        /// What went wrong, in words.
        reason: String,
        /// The underlying error, if any.
        #[source]
        source: Option<Box<dyn StdError + Send + Sync + 'static>>,
    },
}

fn at_path(path: &Option<PathBuf>) -> String {
    match path {
        Some(p) => format!(" ({})", p.display()),
        None => String::new(),
    }
}

impl LockError {
    /// A [`LockError::Backend`] with a reason only.
    pub fn backend(backend: &str, reason: impl fmt::Display) -> Self {
        LockError::Backend {
            backend: backend.to_string(),
            path: None,
            reason: reason.to_string(),
            source: None,
        }
    }

    /// A [`LockError::Backend`] for a failed operation on `path`.
    pub fn io(
        backend: &str,
        path: &Path,
        reason: impl fmt::Display,
        source: impl StdError + Send + Sync + 'static,
    ) -> Self {
        LockError::Backend {
            backend: backend.to_string(),
            path: Some(path.to_path_buf()),
            reason: reason.to_string(),
            source: Some(Box::new(source)),
        }
    }

    /// A [`LockError::Backend`] about `path`, with no underlying error.
    pub fn at(backend: &str, path: &Path, reason: impl fmt::Display) -> Self {
        LockError::Backend {
            backend: backend.to_string(),
            path: Some(path.to_path_buf()),
            reason: reason.to_string(),
            source: None,
        }
    }
}
