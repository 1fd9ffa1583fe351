//! rpod's file lock backend (`lock_type = "file"`): one file per lock in a
//! directory, default `<tmp_dir>/locks`.
//!
//! * A lock is allocated by creating its file, named by the decimal id, with
//!   `O_CREAT|O_EXCL`; freeing removes it. There is no upper limit
//!   ([`LockManager::available`] is `None`); allocation takes the lowest
//!   free id.
//! * Locking opens the file and takes an open-file-description lock
//!   (`F_OFD_SETLKW`) on it; unlocking closes it. Every acquisition uses its
//!   own open file description, so threads of one process exclude each other
//!   like processes do (classic `fcntl` locks would not), and no descriptor
//!   stays open between acquisitions.
//! * The kernel releases the lock of a process that dies. To tell the next
//!   holder, the holder writes its pid and start time into the file while it
//!   holds the lock and zeroes it before releasing: a record found on
//!   acquisition means the previous holder died. (Overwriting in place is
//!   cheaper than truncating, on tmpfs and on disk.)
//! * A freed lock whose file is gone cannot be locked
//!   ([`LockError::NotAllocated`]); once the id is allocated again, old and
//!   new handles are the same lock again. If the file is removed and
//!   recreated while a process waits (renumbering), the waiter notices the
//!   stale file after acquiring it and locks the new one.
//!
//! ```no_run
//! use rpod_lock::{LockManager, LockOptions};
//! let mgr = rpod_lock_file::FileLockManager::open(&LockOptions::new(0, "/run/rpod/tmp"))?;
//! assert_eq!(mgr.dir(), std::path::Path::new("/run/rpod/tmp/locks"));
//! let lock = mgr.allocate()?;
//! let guard = lock.lock()?;
//! # drop(guard);
//! # Ok::<(), rpod_lock::LockError>(())
//! ```

#![forbid(unsafe_code)]

use std::collections::BTreeSet;
use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::fd::AsRawFd as _;
use std::os::unix::fs::{DirBuilderExt as _, FileExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, OnceLock};

use nix::errno::Errno;
use nix::fcntl::{fcntl, FcntlArg};
use rpod_lock::{
    check_distinct, Acquired, Lock, LockError, LockManager, LockOptions, LockScope, RawLock,
};

/// The backend's registered name.
pub const BACKEND: &str = "file";

/// Bytes of the holder record at the start of a held lock file.
pub const RECORD_LEN: usize = 32;

rpod_registry::register_backend! {
    kind: rpod_registry::kinds::LOCK,
    name: "file",
    summary: "one lock file per lock, open-file-description locks; unlimited",
    factory: open_factory as rpod_lock::LockFactory,
}

/// The registered [`rpod_lock::LockFactory`]: [`FileLockManager::open`], boxed.
pub fn open_factory(options: &LockOptions) -> Result<Box<dyn LockManager>, LockError> {
    Ok(Box::new(FileLockManager::open(options)?))
}

/// The default lock directory: `<tmp_dir>/locks`.
pub fn default_dir(tmp_dir: &Path) -> PathBuf {
    tmp_dir.join("locks")
}

fn io_err(path: &Path, what: impl std::fmt::Display, e: io::Error) -> LockError {
    LockError::io(BACKEND, path, what, e)
}

/// A lock manager on a directory of lock files.
#[derive(Debug)]
pub struct FileLockManager {
    dir: PathBuf,
    scope: LockScope,
}

impl FileLockManager {
    /// Opens (creating if needed, mode 0711) the directory
    /// `options.location`, or `<tmp_dir>/locks`. Both must be absolute.
    /// `num_locks` and `renumber` do not apply: the backend is unlimited.
    pub fn open(options: &LockOptions) -> Result<Self, LockError> {
        let dir = match &options.location {
            Some(loc) => PathBuf::from(loc),
            None => default_dir(&options.tmp_dir),
        };
        if !dir.is_absolute() {
            return Err(LockError::at(
                BACKEND,
                &dir,
                "the lock directory must be an absolute path",
            ));
        }
        fs::DirBuilder::new()
            .recursive(true)
            .mode(0o711)
            .create(&dir)
            .map_err(|e| io_err(&dir, "creating the lock directory", e))?;
        let canonical =
            fs::canonicalize(&dir).map_err(|e| io_err(&dir, "resolving the lock directory", e))?;
        if !canonical.is_dir() {
            return Err(LockError::at(
                BACKEND,
                &dir,
                "the lock location is not a directory",
            ));
        }
        let scope = LockScope::new(&format!("file:{}", canonical.display()));
        Ok(FileLockManager { dir, scope })
    }

    /// The lock directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The file of lock `id`.
    pub fn lock_file(&self, id: u32) -> PathBuf {
        self.dir.join(id.to_string())
    }

    fn handle(&self, id: u32) -> Lock {
        Lock::new(
            Arc::new(FileLock {
                id,
                path: self.lock_file(id),
                held: Mutex::new(None),
            }),
            self.scope,
        )
    }

    /// Creates the file of `id`; `Ok(false)` if it exists.
    fn create(&self, id: u32) -> Result<bool, LockError> {
        let path = self.lock_file(id);
        match OpenOptions::new()
            .write(true)
            .create_new(true)
            .mode(0o600)
            .open(&path)
        {
            Ok(_) => Ok(true),
            Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
            Err(e) => Err(io_err(&path, format!("allocating lock {id}"), e)),
        }
    }

    /// The ids whose files exist, ascending. Other files are ignored.
    fn ids(&self) -> Result<Vec<u32>, LockError> {
        let rd = fs::read_dir(&self.dir)
            .map_err(|e| io_err(&self.dir, "listing the lock directory", e))?;
        let mut ids = Vec::new();
        for entry in rd {
            let entry = entry.map_err(|e| io_err(&self.dir, "listing the lock directory", e))?;
            if let Some(id) = entry.file_name().to_str().and_then(parse_id) {
                ids.push(id);
            }
        }
        ids.sort_unstable();
        Ok(ids)
    }
}

/// A lock id as a file name: decimal, no sign, no leading zero.
fn parse_id(name: &str) -> Option<u32> {
    let id: u32 = name.parse().ok()?;
    (id.to_string() == name).then_some(id)
}

impl LockManager for FileLockManager {
    fn backend(&self) -> &str {
        BACKEND
    }

    fn location(&self) -> String {
        self.dir.display().to_string()
    }

    fn allocate(&self) -> Result<Lock, LockError> {
        let taken = self.ids()?;
        let mut next = 0u32;
        for &t in taken.iter().chain(std::iter::once(&u32::MAX)) {
            // Try the gaps before `t` (another process may fill them first).
            while next < t {
                if self.create(next)? {
                    return Ok(self.handle(next));
                }
                next += 1;
            }
            next = t.saturating_add(1);
        }
        if self.create(u32::MAX)? {
            return Ok(self.handle(u32::MAX));
        }
        Err(LockError::Exhausted { limit: u32::MAX })
    }

    fn retrieve(&self, id: u32) -> Result<Lock, LockError> {
        Ok(self.handle(id))
    }

    fn allocate_given(&self, id: u32) -> Result<Lock, LockError> {
        if self.create(id)? {
            Ok(self.handle(id))
        } else {
            Err(LockError::AlreadyAllocated { id })
        }
    }

    fn free(&self, id: u32) -> Result<(), LockError> {
        let path = self.lock_file(id);
        match fs::remove_file(&path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Err(LockError::NotAllocated { id }),
            Err(e) => Err(io_err(&path, format!("freeing lock {id}"), e)),
        }
    }

    fn free_all(&self) -> Result<(), LockError> {
        for id in self.ids()? {
            let path = self.lock_file(id);
            match fs::remove_file(&path) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) => return Err(io_err(&path, format!("freeing lock {id}"), e)),
            }
        }
        Ok(())
    }

    fn available(&self) -> Result<Option<u32>, LockError> {
        Ok(None)
    }

    fn allocated(&self) -> Result<Vec<u32>, LockError> {
        self.ids()
    }

    /// Removes only the files of ids not in `ids` and creates the missing
    /// ones: a lock that stays allocated keeps its file, so its holder and
    /// waiters keep excluding newcomers.
    fn reallocate(&self, ids: &[u32]) -> Result<(), LockError> {
        check_distinct(ids)?;
        let keep: BTreeSet<u32> = ids.iter().copied().collect();
        for id in self.ids()? {
            if !keep.contains(&id) {
                let path = self.lock_file(id);
                match fs::remove_file(&path) {
                    Ok(()) => {}
                    Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                    Err(e) => return Err(io_err(&path, format!("freeing lock {id}"), e)),
                }
            }
        }
        for &id in ids {
            self.create(id)?;
        }
        Ok(())
    }

    fn destroy(&self) -> Result<(), LockError> {
        match fs::metadata(&self.dir) {
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            _ => self.free_all()?,
        }
        match fs::remove_dir(&self.dir) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::ENOTEMPTY) => {
                // Only lock files are ours to delete; leave anything else.
                tracing::warn!(dir = %self.dir.display(), "lock directory holds other files; not removed");
                Ok(())
            }
            Err(e) => Err(io_err(&self.dir, "removing the lock directory", e)),
        }
    }
}

/// One lock file. `held` keeps the descriptor of the current acquisition
/// (at most one: acquisitions through this handle exclude each other).
#[derive(Debug)]
struct FileLock {
    id: u32,
    path: PathBuf,
    held: Mutex<Option<File>>,
}

/// This process's record: pid and start time (clock ticks since boot).
fn own_record() -> &'static [u8; RECORD_LEN] {
    static RECORD: OnceLock<[u8; RECORD_LEN]> = OnceLock::new();
    RECORD.get_or_init(|| {
        let start = fs::read_to_string("/proc/self/stat")
            .ok()
            .and_then(|s| {
                let rest = s.rsplit_once(')')?.1;
                // Fields after the command: state is field 3, starttime field 22.
                rest.split_whitespace().nth(19).map(str::to_string)
            })
            .unwrap_or_else(|| "0".into());
        let text = format!("{} {start}\n", std::process::id());
        let mut rec = [b' '; RECORD_LEN];
        let n = text.len().min(RECORD_LEN);
        rec[..n].copy_from_slice(&text.as_bytes()[..n]);
        rec
    })
}

/// What the record of a dead holder says.
fn dead_holder(record: &[u8]) -> Acquired {
    let text = String::from_utf8_lossy(record);
    let mut fields = text
        .trim_matches(|c: char| c == '\0' || c.is_ascii_whitespace())
        .split_whitespace();
    let pid = fields.next().unwrap_or("?");
    let start = fields.next().unwrap_or("?");
    Acquired::owner_died(Some(format!("pid {pid} (start time {start})")))
}

fn whole_file(kind: libc::c_int) -> libc::flock {
    libc::flock {
        l_type: kind as libc::c_short,
        l_whence: libc::SEEK_SET as libc::c_short,
        l_start: 0,
        l_len: 0,
        l_pid: 0,
    }
}

impl FileLock {
    fn err(&self, what: &str, e: io::Error) -> LockError {
        io_err(&self.path, format!("{what} lock {}", self.id), e)
    }

    /// Takes an OFD write lock on `f`; `Ok(false)` if busy and not `wait`.
    fn ofd_lock(&self, f: &File, wait: bool) -> Result<bool, LockError> {
        let fl = whole_file(libc::F_WRLCK);
        loop {
            let arg = if wait {
                FcntlArg::F_OFD_SETLKW(&fl)
            } else {
                FcntlArg::F_OFD_SETLK(&fl)
            };
            match fcntl(f.as_raw_fd(), arg) {
                Ok(_) => return Ok(true),
                Err(Errno::EINTR) => continue,
                Err(Errno::EAGAIN | Errno::EACCES) if !wait => return Ok(false),
                Err(e) => return Err(self.err("locking", io::Error::from(e))),
            }
        }
    }

    fn acquire(&self, wait: bool) -> Result<Option<Acquired>, LockError> {
        // Each round ends with the lock, or after finding that the file we
        // locked had been removed (freed, maybe reallocated) meanwhile.
        for _ in 0..1000 {
            let f = match OpenOptions::new()
                .read(true)
                .write(true)
                .custom_flags(libc::O_NOFOLLOW)
                .open(&self.path)
            {
                Ok(f) => f,
                Err(e) if e.kind() == io::ErrorKind::NotFound => {
                    return Err(LockError::NotAllocated { id: self.id })
                }
                Err(e) => return Err(self.err("opening", e)),
            };
            if !self.ofd_lock(&f, wait)? {
                return Ok(None);
            }
            let meta = nix::sys::stat::fstat(f.as_raw_fd())
                .map_err(|e| self.err("examining", io::Error::from(e)))?;
            if meta.st_nlink == 0 {
                continue; // stale: closing `f` releases it
            }
            // A released lock file is empty or zeroed: a record means its
            // holder died.
            let mut buf = [0u8; RECORD_LEN];
            let n = f.read_at(&mut buf, 0).map_err(|e| self.err("reading", e))?;
            let acquired = if buf[..n].iter().all(|&b| b == 0) {
                Acquired::clean()
            } else {
                dead_holder(&buf[..n])
            };
            f.write_all_at(own_record(), 0)
                .map_err(|e| self.err("recording the holder of", e))?;
            *self.held.lock().unwrap_or_else(|e| e.into_inner()) = Some(f);
            return Ok(Some(acquired));
        }
        Err(LockError::at(
            BACKEND,
            &self.path,
            format!(
                "lock {} keeps being freed and reallocated while locking it",
                self.id
            ),
        ))
    }
}

impl RawLock for FileLock {
    fn id(&self) -> u32 {
        self.id
    }

    fn lock(&self) -> Result<Acquired, LockError> {
        match self.acquire(true)? {
            Some(a) => Ok(a),
            None => Err(LockError::at(
                BACKEND,
                &self.path,
                "blocking lock returned without the lock",
            )),
        }
    }

    fn try_lock(&self) -> Result<Option<Acquired>, LockError> {
        self.acquire(false)
    }

    fn unlock(&self) -> Result<(), LockError> {
        let f = self
            .held
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
            .ok_or_else(|| {
                LockError::at(BACKEND, &self.path, format!("lock {} is not held", self.id))
            })?;
        let cleared = f.write_all_at(&[0u8; RECORD_LEN], 0);
        // Closing the only descriptor of this open file description releases
        // the lock, whether or not clearing worked.
        drop(f);
        cleared.map_err(|e| self.err("clearing the holder of", e))
    }
}
