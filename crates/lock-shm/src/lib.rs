//! rpod's default lock backend (`lock_type = "shm"`): one POSIX shared-memory
//! segment holding a robust, process-shared pthread mutex per lock.
//!
//! As in libpod, the segment (under `/dev/shm`) holds a header, allocation
//! bitmaps protected by a segment mutex, and the lock mutexes; allocation
//! takes the lowest free id and `num_locks` is rounded up to a multiple of 32.
//! Unlike libpod:
//!
//! * the default segment is `rpod_lock_<uid>` (never podman's `libpod_lock`),
//!   and `lock_path` names another;
//! * a new segment is initialised under a private name and linked into place,
//!   so a process never sees a half-initialised segment, even when several
//!   create it at once;
//! * mutexes are error-checking and a holder's death is reported to the next
//!   holder ([`rpod_lock::LockGuard::previous_owner_died`]);
//! * the layout is rpod's own (see the `segment` module docs), with a magic
//!   number and a version checked on open.
//!
//! Every process that opens the segment must ask for the same number of locks;
//! otherwise opening fails with [`LockError::CountMismatch`], except for
//! `rpod system renumber` ([`LockOptions::renumber`]), which recreates it.
//!
//! ```no_run
//! use rpod_lock::{LockManager, LockOptions};
//! let mgr = rpod_lock_shm::ShmLockManager::open(
//!     &LockOptions::new(2048, "/run/rpod/tmp").location("my_segment"),
//! )?;
//! let lock = mgr.allocate()?;
//! let guard = lock.lock()?;
//! # drop(guard);
//! # Ok::<(), rpod_lock::LockError>(())
//! ```

#![deny(unsafe_code)]

mod segment;
mod sys;

use std::io;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use nix::errno::Errno;
use rpod_lock::{Acquired, Lock, LockError, LockManager, LockOptions, LockScope, RawLock};

pub use segment::{round_up_num_locks, segment_size, LAYOUT_VERSION, MAGIC, MAX_LOCKS};

use segment::Segment;

/// The backend's registered name.
pub const BACKEND: &str = "shm";

/// Where POSIX shared-memory segments live.
pub const SHM_DIR: &str = "/dev/shm";

rpod_registry::register_backend! {
    kind: rpod_registry::kinds::LOCK,
    name: "shm",
    summary: "robust process-shared mutexes in a POSIX shared-memory segment (default)",
    factory: open_factory as rpod_lock::LockFactory,
}

/// The registered [`rpod_lock::LockFactory`]: [`ShmLockManager::open`], boxed.
pub fn open_factory(options: &LockOptions) -> Result<Box<dyn LockManager>, LockError> {
    Ok(Box::new(ShmLockManager::open(options)?))
}

/// The default segment name for the current user: `rpod_lock_<euid>`.
pub fn default_segment_name() -> String {
    format!("rpod_lock_{}", nix::unistd::geteuid().as_raw())
}

/// The file of segment `name` (`/dev/shm/<name>`). A leading `/` is accepted
/// (libpod style); otherwise the name must be a plain file name.
pub fn segment_path(name: &str) -> Result<PathBuf, LockError> {
    let bare = name.strip_prefix('/').unwrap_or(name);
    let valid = !bare.is_empty()
        && bare.len() <= 200
        && bare != "."
        && bare != ".."
        && !bare.starts_with('.')
        && !bare.contains(['/', '\0']);
    if !valid {
        return Err(LockError::backend(
            BACKEND,
            format!(
                "invalid segment name {name:?}: expected a file name of up to 200 bytes, \
                 not starting with '.', optionally preceded by '/'"
            ),
        ));
    }
    Ok(Path::new(SHM_DIR).join(bare))
}

/// Removes segment `name` (`rpod system reset`); `Ok(false)` if it did not
/// exist. Processes that have it open keep using the old memory.
pub fn remove_segment(name: &str) -> Result<bool, LockError> {
    let path = segment_path(name)?;
    match std::fs::remove_file(&path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(false),
        Err(e) => Err(LockError::io(
            BACKEND,
            &path,
            "removing the lock segment",
            e,
        )),
    }
}

/// A lock manager on one shared-memory segment.
#[derive(Debug)]
pub struct ShmLockManager {
    seg: Arc<Segment>,
    name: String,
    scope: LockScope,
}

impl ShmLockManager {
    /// Opens the segment `options.location` (default
    /// [`default_segment_name`]), creating it with `options.num_locks`
    /// (rounded up to a multiple of 32) if needed.
    pub fn open(options: &LockOptions) -> Result<Self, LockError> {
        let name = options
            .location
            .clone()
            .unwrap_or_else(default_segment_name);
        let path = segment_path(&name)?;
        let seg = Segment::open(&path, options.num_locks, options.renumber)?;
        let scope = LockScope::new(&format!("shm:{}", path.display()));
        Ok(ShmLockManager {
            seg: Arc::new(seg),
            name,
            scope,
        })
    }

    /// The segment's name.
    pub fn segment_name(&self) -> &str {
        &self.name
    }

    /// The segment's file.
    pub fn path(&self) -> &Path {
        &self.seg.path
    }

    /// The number of locks in the segment.
    pub fn num_locks(&self) -> u32 {
        self.seg.num_locks
    }

    fn handle(&self, id: u32) -> Lock {
        Lock::new(
            Arc::new(ShmLock {
                seg: self.seg.clone(),
                id,
            }),
            self.scope,
        )
    }
}

impl LockManager for ShmLockManager {
    fn backend(&self) -> &str {
        BACKEND
    }

    fn location(&self) -> String {
        self.seg.path.display().to_string()
    }

    fn allocate(&self) -> Result<Lock, LockError> {
        let id = self.seg.with_bitmaps(|b| {
            b.allocate().ok_or(LockError::Exhausted {
                limit: self.seg.num_locks,
            })
        })?;
        Ok(self.handle(id))
    }

    fn retrieve(&self, id: u32) -> Result<Lock, LockError> {
        self.seg.check_range(id)?;
        Ok(self.handle(id))
    }

    fn allocate_given(&self, id: u32) -> Result<Lock, LockError> {
        self.seg.check_range(id)?;
        self.seg.with_bitmaps(|b| {
            if b.is_set(id) {
                return Err(LockError::AlreadyAllocated { id });
            }
            b.set(id);
            Ok(())
        })?;
        Ok(self.handle(id))
    }

    fn free(&self, id: u32) -> Result<(), LockError> {
        self.seg.check_range(id)?;
        self.seg.with_bitmaps(|b| {
            if !b.is_set(id) {
                return Err(LockError::NotAllocated { id });
            }
            b.clear(id);
            Ok(())
        })
    }

    fn free_all(&self) -> Result<(), LockError> {
        self.seg.with_bitmaps(|b| {
            b.clear_all();
            Ok(())
        })
    }

    fn available(&self) -> Result<Option<u32>, LockError> {
        self.seg.with_bitmaps(|b| Ok(Some(b.free_count())))
    }

    fn allocated(&self) -> Result<Vec<u32>, LockError> {
        self.seg.with_bitmaps(|b| Ok(b.allocated()))
    }

    fn reallocate(&self, ids: &[u32]) -> Result<(), LockError> {
        self.seg.with_bitmaps(|b| b.reallocate(ids))
    }

    fn destroy(&self) -> Result<(), LockError> {
        remove_segment(&self.name).map(drop)
    }
}

/// One lock of a segment.
#[derive(Debug)]
struct ShmLock {
    seg: Arc<Segment>,
    id: u32,
}

impl ShmLock {
    fn error(&self, what: &str, e: Errno) -> LockError {
        match e {
            Errno::EDEADLK => LockError::WouldDeadlock { id: self.id },
            Errno::ENOTRECOVERABLE => LockError::at(
                BACKEND,
                &self.seg.path,
                format!(
                    "lock {} is unrecoverable: a process died while recovering it from a dead \
                     holder; stop every rpod process and remove the segment (rpod system reset)",
                    self.id
                ),
            ),
            e => LockError::io(
                BACKEND,
                &self.seg.path,
                format!("{what} lock {}", self.id),
                io::Error::from_raw_os_error(e as i32),
            ),
        }
    }
}

fn acquired(died: bool) -> Acquired {
    if died {
        Acquired::owner_died(None)
    } else {
        Acquired::clean()
    }
}

impl RawLock for ShmLock {
    fn id(&self) -> u32 {
        self.id
    }

    fn lock(&self) -> Result<Acquired, LockError> {
        self.seg
            .lock(self.id)
            .map(acquired)
            .map_err(|e| self.error("locking", e))
    }

    fn try_lock(&self) -> Result<Option<Acquired>, LockError> {
        self.seg
            .try_lock(self.id)
            .map(|r| r.map(acquired))
            .map_err(|e| self.error("trying to lock", e))
    }

    fn unlock(&self) -> Result<(), LockError> {
        self.seg
            .unlock(self.id)
            .map_err(|e| self.error("unlocking", e))
    }
}
