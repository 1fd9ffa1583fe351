//! Options every backend factory receives.

use std::path::{Path, PathBuf};
use std::time::Duration;

/// The default time to wait for a database locked by another process.
pub const DEFAULT_BUSY_TIMEOUT: Duration = Duration::from_secs(5);

/// What a [`crate::StateFactory`] is given: where the database is, which
/// namespace to see, and how long to wait for a busy database.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StateOptions {
    /// Explicit database path (`db_path`); `None` for the backend's default
    /// file under [`static_dir`](Self::static_dir) (see [`Self::path_or_default`]).
    pub path: Option<PathBuf>,
    /// rpod's static dir.
    pub static_dir: PathBuf,
    /// Namespace to see; empty for all.
    pub namespace: String,
    /// Refuse every write.
    pub read_only: bool,
    /// How long to wait for a database locked by another process before `Busy`.
    pub busy_timeout: Duration,
}

impl StateOptions {
    /// The options for a runtime configuration: `db_path` if set, `static_dir`,
    /// `namespace`, writable, [`DEFAULT_BUSY_TIMEOUT`].
    pub fn from_config(cfg: &rpod_config::RuntimeConfig) -> Self {
        StateOptions {
            path: cfg.database_path().map(Path::to_path_buf),
            static_dir: cfg.static_dir.clone(),
            namespace: cfg.namespace.clone(),
            read_only: false,
            busy_timeout: DEFAULT_BUSY_TIMEOUT,
        }
    }

    /// Options for a database at exactly `path` (tests, tools).
    pub fn at(path: impl Into<PathBuf>) -> Self {
        let path = path.into();
        StateOptions {
            static_dir: path.parent().map(Path::to_path_buf).unwrap_or_default(),
            path: Some(path),
            namespace: String::new(),
            read_only: false,
            busy_timeout: DEFAULT_BUSY_TIMEOUT,
        }
    }

    /// The database path: [`path`](Self::path), else `static_dir/file_name`.
    pub fn path_or_default(&self, file_name: &str) -> PathBuf {
        self.path
            .clone()
            .unwrap_or_else(|| self.static_dir.join(file_name))
    }

    /// Sets the namespace.
    pub fn namespace(mut self, ns: impl Into<String>) -> Self {
        self.namespace = ns.into();
        self
    }

    /// Sets read-only.
    pub fn read_only(mut self, ro: bool) -> Self {
        self.read_only = ro;
        self
    }

    /// Sets the busy timeout.
    pub fn busy_timeout(mut self, t: Duration) -> Self {
        self.busy_timeout = t;
        self
    }
}
