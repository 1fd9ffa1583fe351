//! The crate's single error type.

use std::path::PathBuf;
use std::time::Duration;

/// Result alias used throughout the crate.
pub type Result<T, E = BoltError> = std::result::Result<T, E>;

/// Every failure this crate reports.
///
/// Errors that concern the database file carry its `path`; corruption errors also name the
/// page id where the problem was found.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum BoltError {
    /// An I/O operation on the database file failed.
    #[error("{path}: I/O error: {source}")]
    Io {
        /// Database file.
        path: PathBuf,
        /// Underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file is not a valid bbolt database or a page failed validation.
    #[error("{path}: corrupt database at page {page}: {reason}")]
    Corrupt {
        /// Database file.
        path: PathBuf,
        /// The page (pgid) where the problem was detected.
        page: u64,
        /// What was wrong.
        reason: String,
    },
    /// The file is empty (0 bytes). It is never silently initialised.
    #[error("{path}: database file is empty (0 bytes); refusing to initialise an existing file")]
    EmptyFile {
        /// Database file.
        path: PathBuf,
    },
    /// The database file does not exist and `create` was not requested.
    #[error("{path}: database file does not exist")]
    NotFound {
        /// Database file.
        path: PathBuf,
    },
    /// The `flock` on the file could not be taken before the timeout expired: another
    /// process (or another `Db` handle in this process) holds it.
    #[error("{path}: timed out after {waited:?} waiting for the database lock (held by another process or handle)")]
    Timeout {
        /// Database file.
        path: PathBuf,
        /// How long we waited.
        waited: Duration,
    },
    /// The bucket does not exist (or was deleted in this transaction).
    #[error("bucket not found")]
    BucketNotFound,
    /// A bucket with that name already exists.
    #[error("bucket already exists")]
    BucketExists,
    /// The key holds a value where a bucket was expected, or the other way round.
    #[error("incompatible value: key is a bucket where a value was expected, or vice versa")]
    IncompatibleValue,
    /// Keys and bucket names must be non-empty.
    #[error("key required: keys and bucket names must not be empty")]
    KeyRequired,
    /// Key (or bucket name) larger than [`crate::MAX_KEY_SIZE`].
    #[error("key too large: {len} bytes (max {max})", max = crate::MAX_KEY_SIZE)]
    KeyTooLarge {
        /// Length of the rejected key.
        len: usize,
    },
    /// Value larger than [`crate::MAX_VALUE_SIZE`].
    #[error("value too large: {len} bytes (max {max})", max = crate::MAX_VALUE_SIZE)]
    ValueTooLarge {
        /// Length of the rejected value.
        len: usize,
    },
    /// A write was attempted in a read-only transaction or on a read-only database.
    #[error("database or transaction is read-only")]
    ReadOnly,
    /// An invalid option was passed to [`crate::OpenOptions`].
    #[error("invalid option: {0}")]
    InvalidOption(String),
}

impl BoltError {
    pub(crate) fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        BoltError::Io {
            path: path.into(),
            source,
        }
    }

    pub(crate) fn corrupt(path: impl Into<PathBuf>, page: u64, reason: impl Into<String>) -> Self {
        BoltError::Corrupt {
            path: path.into(),
            page,
            reason: reason.into(),
        }
    }

    /// True for [`BoltError::Corrupt`].
    pub fn is_corrupt(&self) -> bool {
        matches!(self, BoltError::Corrupt { .. })
    }
}
