//! The lock manager interface, its options and how a backend is opened.

use std::fmt;
use std::path::PathBuf;

use rpod_config::RuntimeConfig;

use crate::{Lock, LockError};

/// Hands out and keeps track of the locks of one storage (an SHM segment, a
/// directory of lock files, …).
///
/// Contract (every backend, checked by the conformance suite):
/// * [`allocate`](Self::allocate) returns the lowest id that is not
///   allocated and marks it allocated; it never returns an allocated id, even
///   when several processes allocate at once. A limited backend fails with
///   [`LockError::Exhausted`] when none is left.
/// * [`retrieve`](Self::retrieve) returns a handle and changes nothing; every
///   handle with the same id is the same lock, in every process using the
///   same storage.
/// * A handle of a freed id either keeps locking (shm, as in libpod) or fails
///   with [`LockError::NotAllocated`] (file); once the id is allocated again,
///   old and new handles are the same lock.
/// * [`free`](Self::free) of an unallocated id is [`LockError::NotAllocated`];
///   [`allocate_given`](Self::allocate_given) of an allocated id is
///   [`LockError::AlreadyAllocated`]; ids beyond a limited backend's count are
///   [`LockError::OutOfRange`].
pub trait LockManager: Send + Sync + fmt::Debug {
    /// The backend's registered name (`shm`, `file`, …).
    fn backend(&self) -> &str;

    /// Where the locks live (segment name, directory), for messages.
    fn location(&self) -> String;

    /// Allocates the lowest free lock.
    fn allocate(&self) -> Result<Lock, LockError>;

    /// A handle to lock `id`, allocated or not (used whenever an object is
    /// loaded; it never allocates).
    fn retrieve(&self, id: u32) -> Result<Lock, LockError>;

    /// Allocates the given id (after a reboot, or when renumbering).
    fn allocate_given(&self, id: u32) -> Result<Lock, LockError>;

    /// Frees an allocated id.
    fn free(&self, id: u32) -> Result<(), LockError>;

    /// Frees every id. Leaves objects that own locks inconsistent until they
    /// are given new ones: only for renumbering and tests.
    fn free_all(&self) -> Result<(), LockError>;

    /// How many locks can still be allocated; `None` if unlimited.
    fn available(&self) -> Result<Option<u32>, LockError>;

    /// The allocated ids, ascending.
    fn allocated(&self) -> Result<Vec<u32>, LockError>;

    /// Makes exactly `ids` allocated: frees every id, then allocates each of
    /// `ids` (what renumbering and refresh need). Nothing changes if `ids`
    /// holds a duplicate ([`LockError::AlreadyAllocated`]) or an out-of-range
    /// id. Holders and waiters of a lock keep excluding each other throughout.
    ///
    /// The default frees and allocates one by one; backends that can should
    /// do it in one step.
    fn reallocate(&self, ids: &[u32]) -> Result<(), LockError> {
        check_distinct(ids)?;
        self.free_all()?;
        for &id in ids {
            self.allocate_given(id)?;
        }
        Ok(())
    }

    /// Deletes the backing storage (`rpod system reset`). Handles already
    /// obtained keep working within this process; the next open starts
    /// afresh. Removing storage that does not exist is not an error.
    fn destroy(&self) -> Result<(), LockError>;
}

/// Fails with [`LockError::AlreadyAllocated`] naming the first duplicate id.
pub fn check_distinct(ids: &[u32]) -> Result<(), LockError> {
    let mut sorted = ids.to_vec();
    sorted.sort_unstable();
    match sorted.windows(2).find(|w| w[0] == w[1]) {
        Some(w) => Err(LockError::AlreadyAllocated { id: w[0] }),
        None => Ok(()),
    }
}

/// What a backend is opened with.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LockOptions {
    /// Number of locks wanted (a limited backend may round it up).
    pub num_locks: u32,
    /// Backend-specific location (SHM segment name, lock directory); `None`
    /// for the backend's default.
    pub location: Option<String>,
    /// rpod's temporary directory (`tmp_dir`), for backends that keep files there.
    pub tmp_dir: PathBuf,
    /// A lock count that differs from the storage's is allowed: the storage is
    /// recreated with `num_locks` (`rpod system renumber`), dropping every
    /// allocation.
    pub renumber: bool,
}

impl LockOptions {
    /// Options for `num_locks` locks in the backend's default location.
    pub fn new(num_locks: u32, tmp_dir: impl Into<PathBuf>) -> Self {
        LockOptions {
            num_locks,
            location: None,
            tmp_dir: tmp_dir.into(),
            renumber: false,
        }
    }

    /// Sets the location.
    pub fn location(mut self, location: impl Into<String>) -> Self {
        self.location = Some(location.into());
        self
    }

    /// Sets the renumber flag.
    pub fn renumber(mut self, renumber: bool) -> Self {
        self.renumber = renumber;
        self
    }

    /// The options a runtime configuration asks for (`num_locks`,
    /// `lock_path`, `tmp_dir`; renumber off).
    pub fn from_config(cfg: &RuntimeConfig) -> Self {
        LockOptions {
            num_locks: cfg.num_locks,
            location: cfg.lock_location().map(str::to_string),
            tmp_dir: cfg.tmp_dir.clone(),
            renumber: false,
        }
    }
}

/// What a lock backend registers: opens (creating if needed) its storage.
pub type LockFactory = fn(&LockOptions) -> Result<Box<dyn LockManager>, LockError>;

/// The backend used when `lock_type` is empty (as in libpod).
pub const DEFAULT_BACKEND: &str = "shm";

/// Opens the lock backend named `name` (registered under
/// [`rpod_registry::kinds::LOCK`]) with `options`.
pub fn open_backend(name: &str, options: &LockOptions) -> Result<Box<dyn LockManager>, LockError> {
    let name = if name.is_empty() {
        DEFAULT_BACKEND
    } else {
        name
    };
    let unknown = |source| LockError::UnknownBackend {
        name: name.to_string(),
        source,
    };
    let factory = rpod_registry::lookup(rpod_registry::kinds::LOCK, name)
        .map_err(unknown)?
        .factory::<LockFactory>()
        .map_err(unknown)?;
    tracing::debug!(
        backend = name,
        num_locks = options.num_locks,
        "opening lock manager"
    );
    factory(options)
}

/// Opens the lock backend `cfg.lock_type` with the options `cfg` asks for.
pub fn open(cfg: &RuntimeConfig) -> Result<Box<dyn LockManager>, LockError> {
    open_backend(&cfg.lock_type, &LockOptions::from_config(cfg))
}

/// Opens `cfg.lock_type` for `rpod system renumber`: a count mismatch makes
/// the backend recreate its storage with `cfg.num_locks`.
pub fn open_for_renumber(cfg: &RuntimeConfig) -> Result<Box<dyn LockManager>, LockError> {
    open_backend(
        &cfg.lock_type,
        &LockOptions::from_config(cfg).renumber(true),
    )
}
