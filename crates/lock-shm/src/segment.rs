//! The segment: layout, creation (race-free), opening and validation, and
//! the allocation bitmaps.
//!
//! Layout (all offsets in bytes, little details fixed by [`LAYOUT_VERSION`]):
//!
//! | offset | size | content |
//! |---|---|---|
//! | 0 | 8 | magic `RPODSHML` |
//! | 8 | 4 | layout version |
//! | 12 | 4 | number of locks (a multiple of 32) |
//! | 16 | 4 | number of bitmaps (locks / 32) |
//! | 20 | 4 | mutex slot size (64) |
//! | 24 | 4 | `sizeof(pthread_mutex_t)` of the creator |
//! | 32 | 8 | total size of the segment |
//! | 64 | 64 | segment mutex (protects the bitmaps) |
//! | 128 | 4 × bitmaps, padded to 64 | allocation bitmaps, bit *i* of word *w* = lock 32*w+i |
//! | … | 64 × locks | one robust process-shared mutex per lock |

use std::fs::{self, File, OpenOptions};
use std::io;
use std::os::unix::fs::{MetadataExt as _, OpenOptionsExt as _};
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use nix::errno::Errno;
use rpod_lock::{check_distinct, LockError};

use crate::sys::{Mapping, MUTEX_SIZE, SLOT};
use crate::BACKEND;

/// The magic number at the start of an rpod lock segment (`RPODSHML`).
pub const MAGIC: u64 = u64::from_le_bytes(*b"RPODSHML");
/// The version of the segment layout.
pub const LAYOUT_VERSION: u32 = 1;
/// The largest number of locks a segment can hold (64 MiB of mutexes).
pub const MAX_LOCKS: u32 = 1 << 20;

const OFF_MAGIC: usize = 0;
const OFF_VERSION: usize = 8;
const OFF_NUM_LOCKS: usize = 12;
const OFF_NUM_BITMAPS: usize = 16;
const OFF_SLOT: usize = 20;
const OFF_MUTEX_SIZE: usize = 24;
const OFF_SIZE: usize = 32;
const HEADER: usize = 64;
const OFF_SEGMENT_MUTEX: usize = 64;
const OFF_BITMAPS: usize = 128;

/// `n` rounded up to a multiple of 32 (libpod's rounding), at least 32.
pub fn round_up_num_locks(n: u32) -> u32 {
    n.max(1).div_ceil(32).saturating_mul(32)
}

fn bitmaps_len(num_bitmaps: u32) -> usize {
    (num_bitmaps as usize * 4).div_ceil(SLOT) * SLOT
}

/// Size in bytes of a segment of `num_locks` locks (a multiple of 32).
pub fn segment_size(num_locks: u32) -> usize {
    OFF_BITMAPS + bitmaps_len(num_locks / 32) + num_locks as usize * SLOT
}

/// An open, validated segment.
#[derive(Debug)]
pub(crate) struct Segment {
    mem: Mapping,
    pub(crate) path: PathBuf,
    pub(crate) num_locks: u32,
    num_bitmaps: u32,
    locks_off: usize,
}

enum Opened {
    Ok(Segment),
    Missing,
}

fn io_err(path: &Path, what: &str, e: io::Error) -> LockError {
    LockError::io(BACKEND, path, what, e)
}

fn errno_err(path: &Path, what: &str, e: Errno) -> LockError {
    io_err(path, what, io::Error::from_raw_os_error(e as i32))
}

impl Segment {
    /// Opens the segment at `path`, creating it with `requested` locks
    /// (rounded up) if it does not exist. A segment with another count is
    /// [`LockError::CountMismatch`], or recreated when `renumber`.
    pub(crate) fn open(path: &Path, requested: u32, renumber: bool) -> Result<Segment, LockError> {
        if requested > MAX_LOCKS {
            return Err(LockError::at(
                BACKEND,
                path,
                format!(
                    "num_locks {requested} is more than the {MAX_LOCKS} an shm segment can hold"
                ),
            ));
        }
        let wanted = round_up_num_locks(requested);
        // Each round either returns or observes a change made by another
        // process (a creation or a removal); give up if they never settle.
        for _ in 0..16 {
            match Self::open_existing(path)? {
                Opened::Ok(seg) if seg.num_locks == wanted => return Ok(seg),
                Opened::Ok(seg) => {
                    if !renumber {
                        return Err(LockError::CountMismatch {
                            location: path.display().to_string(),
                            found: seg.num_locks,
                            configured: wanted,
                        });
                    }
                    Self::replace(path, seg.num_locks, wanted)?;
                }
                Opened::Missing => {
                    if let Some(seg) = Self::create(path, wanted)? {
                        return Ok(seg);
                    }
                }
            }
        }
        Err(LockError::at(
            BACKEND,
            path,
            "the segment keeps being created and removed by other processes",
        ))
    }

    fn replace(path: &Path, found: u32, wanted: u32) -> Result<(), LockError> {
        tracing::info!(
            segment = %path.display(),
            found,
            wanted,
            "renumbering: recreating the lock segment with the configured number of locks"
        );
        match fs::remove_file(path) {
            Ok(()) => Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(()),
            Err(e) => Err(io_err(path, "removing the lock segment to recreate it", e)),
        }
    }

    fn open_existing(path: &Path) -> Result<Opened, LockError> {
        let file = match OpenOptions::new()
            .read(true)
            .write(true)
            .custom_flags(libc::O_NOFOLLOW)
            .open(path)
        {
            Ok(f) => f,
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(Opened::Missing),
            Err(e) => return Err(io_err(path, "opening the lock segment", e)),
        };
        let meta = file
            .metadata()
            .map_err(|e| io_err(path, "examining the lock segment", e))?;
        let me = nix::unistd::geteuid().as_raw();
        if meta.uid() != me {
            return Err(LockError::at(
                BACKEND,
                path,
                format!(
                    "the lock segment is owned by uid {}, not by uid {me}; refusing to use it",
                    meta.uid()
                ),
            ));
        }
        let len = meta.len();
        if len < HEADER as u64 || len > segment_size(MAX_LOCKS) as u64 {
            return Err(LockError::at(
                BACKEND,
                path,
                format!("{len} bytes is not the size of an rpod lock segment; remove it (rpod system reset)"),
            ));
        }
        let seg = Self::map(&file, path, len as usize)?;
        let magic = seg.mem.read_u64(OFF_MAGIC);
        if magic != MAGIC {
            return Err(LockError::at(
                BACKEND,
                path,
                format!(
                    "not an rpod lock segment (magic {magic:#018x}, expected {MAGIC:#018x}); \
                     another program may own it"
                ),
            ));
        }
        let version = seg.mem.read_u32(OFF_VERSION);
        if version != LAYOUT_VERSION {
            return Err(LockError::at(
                BACKEND,
                path,
                format!(
                    "lock segment layout version {version}, this rpod uses {LAYOUT_VERSION}; \
                     stop every rpod process and remove the segment (rpod system reset)"
                ),
            ));
        }
        let (slot, msize) = (seg.mem.read_u32(OFF_SLOT), seg.mem.read_u32(OFF_MUTEX_SIZE));
        if slot as usize != SLOT || msize as usize != MUTEX_SIZE {
            return Err(LockError::at(
                BACKEND,
                path,
                format!(
                    "lock segment made by another architecture or C library \
                     (mutex {msize} bytes in {slot}-byte slots; here {MUTEX_SIZE} in {SLOT})"
                ),
            ));
        }
        let num_locks = seg.mem.read_u32(OFF_NUM_LOCKS);
        let num_bitmaps = seg.mem.read_u32(OFF_NUM_BITMAPS);
        let size = seg.mem.read_u64(OFF_SIZE);
        let consistent = num_locks != 0
            && num_locks <= MAX_LOCKS
            && num_locks % 32 == 0
            && num_bitmaps == num_locks / 32
            && size == len
            && len == segment_size(num_locks) as u64;
        if !consistent {
            return Err(LockError::at(
                BACKEND,
                path,
                format!(
                    "corrupt lock segment header ({num_locks} locks, {num_bitmaps} bitmaps, \
                     size {size}, file {len} bytes); remove it (rpod system reset)"
                ),
            ));
        }
        Ok(Opened::Ok(Segment {
            num_locks,
            num_bitmaps,
            locks_off: OFF_BITMAPS + bitmaps_len(num_bitmaps),
            ..seg
        }))
    }

    fn map(file: &File, path: &Path, len: usize) -> Result<Segment, LockError> {
        let map = memmap2::MmapOptions::new()
            .len(len)
            .map_raw(file)
            .map_err(|e| io_err(path, "mapping the lock segment", e))?;
        Ok(Segment {
            mem: Mapping::new(map),
            path: path.to_path_buf(),
            num_locks: 0,
            num_bitmaps: 0,
            locks_off: 0,
        })
    }

    /// Creates the segment under a private name, initialises it fully, then
    /// links it into place; `None` if another process linked one first.
    fn create(path: &Path, num_locks: u32) -> Result<Option<Segment>, LockError> {
        static COUNTER: AtomicU64 = AtomicU64::new(0);
        let name = path
            .file_name()
            .and_then(|n| n.to_str())
            .unwrap_or("segment");
        let tmp = path.with_file_name(format!(
            ".{name}.init-{}-{}",
            std::process::id(),
            COUNTER.fetch_add(1, Ordering::Relaxed)
        ));
        let file = OpenOptions::new()
            .read(true)
            .write(true)
            .create_new(true)
            .mode(0o600)
            .custom_flags(libc::O_NOFOLLOW)
            .open(&tmp)
            .map_err(|e| io_err(&tmp, "creating the lock segment", e))?;
        let res = Self::init(&file, &tmp, path, num_locks).and_then(|seg| {
            match fs::hard_link(&tmp, path) {
                Ok(()) => Ok(Some(seg)),
                Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(None),
                Err(e) => Err(io_err(path, "publishing the new lock segment", e)),
            }
        });
        if let Err(e) = fs::remove_file(&tmp) {
            tracing::warn!(path = %tmp.display(), "removing the temporary lock segment: {e}");
        }
        if let Ok(Some(_)) = &res {
            tracing::debug!(segment = %path.display(), num_locks, "created lock segment");
        }
        res
    }

    fn init(file: &File, tmp: &Path, path: &Path, num_locks: u32) -> Result<Segment, LockError> {
        let size = segment_size(num_locks);
        // Reserve the memory now: a sparse tmpfs file would fail later with
        // SIGBUS instead of an error.
        nix::fcntl::posix_fallocate(
            std::os::fd::AsRawFd::as_raw_fd(file),
            0,
            size as libc::off_t,
        )
        .map_err(|e| errno_err(tmp, "sizing the lock segment", e))?;
        let mut seg = Self::map(file, tmp, size)?;
        seg.path = path.to_path_buf();
        seg.num_locks = num_locks;
        seg.num_bitmaps = num_locks / 32;
        seg.locks_off = OFF_BITMAPS + bitmaps_len(seg.num_bitmaps);
        let m = &seg.mem;
        m.write_u32(OFF_VERSION, LAYOUT_VERSION);
        m.write_u32(OFF_NUM_LOCKS, num_locks);
        m.write_u32(OFF_NUM_BITMAPS, seg.num_bitmaps);
        m.write_u32(OFF_SLOT, SLOT as u32);
        m.write_u32(OFF_MUTEX_SIZE, MUTEX_SIZE as u32);
        m.write_u64(OFF_SIZE, size as u64);
        let init = |off| {
            m.init_mutex(off)
                .map_err(|e| errno_err(tmp, "initialising a mutex", e))
        };
        init(OFF_SEGMENT_MUTEX)?;
        for id in 0..num_locks {
            init(seg.lock_off(id))?;
        }
        m.write_u64(OFF_MAGIC, MAGIC);
        Ok(seg)
    }

    fn lock_off(&self, id: u32) -> usize {
        self.locks_off + id as usize * SLOT
    }

    pub(crate) fn check_range(&self, id: u32) -> Result<(), LockError> {
        if id >= self.num_locks {
            return Err(LockError::OutOfRange {
                id,
                limit: self.num_locks,
            });
        }
        Ok(())
    }

    pub(crate) fn lock(&self, id: u32) -> Result<bool, Errno> {
        self.mem.lock(self.lock_off(id))
    }

    pub(crate) fn try_lock(&self, id: u32) -> Result<Option<bool>, Errno> {
        self.mem.try_lock(self.lock_off(id))
    }

    pub(crate) fn unlock(&self, id: u32) -> Result<(), Errno> {
        self.mem.unlock(self.lock_off(id))
    }

    /// Runs `f` on the bitmaps with the segment mutex held.
    pub(crate) fn with_bitmaps<T>(
        &self,
        f: impl FnOnce(&mut Bitmaps<'_>) -> Result<T, LockError>,
    ) -> Result<T, LockError> {
        let died = self
            .mem
            .lock(OFF_SEGMENT_MUTEX)
            .map_err(|e| errno_err(&self.path, "locking the segment mutex", e))?;
        if died {
            tracing::warn!(
                segment = %self.path.display(),
                "a process died while changing the lock allocation bitmaps; continuing"
            );
        }
        struct Unlock<'a>(&'a Segment);
        impl Drop for Unlock<'_> {
            fn drop(&mut self) {
                if let Err(e) = self.0.mem.unlock(OFF_SEGMENT_MUTEX) {
                    tracing::error!(segment = %self.0.path.display(), "unlocking the segment mutex: {e}");
                }
            }
        }
        let _unlock = Unlock(self);
        f(&mut Bitmaps { seg: self })
    }
}

/// The allocation bitmaps, reachable only with the segment mutex held.
pub(crate) struct Bitmaps<'a> {
    seg: &'a Segment,
}

impl Bitmaps<'_> {
    fn word(&self, i: u32) -> u32 {
        self.seg.mem.read_u32(OFF_BITMAPS + i as usize * 4)
    }

    fn set_word(&mut self, i: u32, v: u32) {
        self.seg.mem.write_u32(OFF_BITMAPS + i as usize * 4, v)
    }

    /// Marks the lowest free id; `None` when all are allocated.
    pub(crate) fn allocate(&mut self) -> Option<u32> {
        for i in 0..self.seg.num_bitmaps {
            let w = self.word(i);
            if w != u32::MAX {
                let bit = (!w).trailing_zeros();
                self.set_word(i, w | 1 << bit);
                return Some(i * 32 + bit);
            }
        }
        None
    }

    pub(crate) fn is_set(&self, id: u32) -> bool {
        self.word(id / 32) & (1 << (id % 32)) != 0
    }

    pub(crate) fn set(&mut self, id: u32) {
        let w = self.word(id / 32);
        self.set_word(id / 32, w | 1 << (id % 32));
    }

    pub(crate) fn clear(&mut self, id: u32) {
        let w = self.word(id / 32);
        self.set_word(id / 32, w & !(1 << (id % 32)));
    }

    pub(crate) fn clear_all(&mut self) {
        for i in 0..self.seg.num_bitmaps {
            self.set_word(i, 0);
        }
    }

    pub(crate) fn free_count(&self) -> u32 {
        (0..self.seg.num_bitmaps)
            .map(|i| self.word(i).count_zeros())
            .sum()
    }

    pub(crate) fn allocated(&self) -> Vec<u32> {
        let mut out = Vec::new();
        for i in 0..self.seg.num_bitmaps {
            let mut w = self.word(i);
            while w != 0 {
                let bit = w.trailing_zeros();
                out.push(i * 32 + bit);
                w &= w - 1;
            }
        }
        out
    }

    /// Makes exactly `ids` allocated, or changes nothing on error.
    pub(crate) fn reallocate(&mut self, ids: &[u32]) -> Result<(), LockError> {
        for &id in ids {
            self.seg.check_range(id)?;
        }
        check_distinct(ids)?;
        self.clear_all();
        for &id in ids {
            self.set(id);
        }
        Ok(())
    }
}
