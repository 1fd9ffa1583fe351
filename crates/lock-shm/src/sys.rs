//! The only unsafe code of the crate: words and pthread mutexes inside the
//! mapped segment.
//!
//! [`Mapping`] owns the mapping and only hands out operations at offsets it
//! has bounds- and alignment-checked, so the rest of the crate is safe code.
#![allow(unsafe_code)]

use std::sync::atomic::{AtomicU32, AtomicU64, Ordering};

use memmap2::MmapRaw;
use nix::errno::Errno;

/// Bytes reserved for each mutex (one cache line, so neighbouring locks do
/// not share one).
pub(crate) const SLOT: usize = 64;
/// Size of a `pthread_mutex_t` with this libc on this architecture.
pub(crate) const MUTEX_SIZE: usize = std::mem::size_of::<libc::pthread_mutex_t>();
const _: () = assert!(MUTEX_SIZE <= SLOT);
const _: () = assert!(std::mem::align_of::<libc::pthread_mutex_t>() <= SLOT);

/// A shared, writable mapping of a lock segment.
///
/// It must outlive every mutex of it that a thread holds: the thread's
/// robust-mutex list points into the mapping and the kernel writes there when
/// the thread exits. This holds because a held lock's guard owns a handle that
/// keeps the mapping alive (even when the guard is leaked).
pub(crate) struct Mapping {
    map: MmapRaw,
}

impl std::fmt::Debug for Mapping {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mapping")
            .field("len", &self.map.len())
            .finish()
    }
}

impl Mapping {
    pub(crate) fn new(map: MmapRaw) -> Self {
        Mapping { map }
    }

    /// The address of `size` bytes at `off`, aligned to `align`.
    fn at(&self, off: usize, size: usize, align: usize) -> *mut u8 {
        // Offsets come from the layout computed for a segment whose size has
        // been checked; a bad one is a bug in this crate, not bad input.
        assert!(
            off.checked_add(size)
                .is_some_and(|end| end <= self.map.len()),
            "offset {off}+{size} outside the {}-byte lock segment",
            self.map.len()
        );
        let p = self.map.as_mut_ptr().wrapping_add(off);
        assert!((p as usize) % align == 0, "misaligned offset {off}");
        p
    }

    fn word32(&self, off: usize) -> &AtomicU32 {
        let p = self.at(off, 4, std::mem::align_of::<AtomicU32>());
        // SAFETY: `p` is in bounds and aligned (checked above) and the mapping
        // lives as long as `self`. Atomics make concurrent access from other
        // processes well-defined.
        unsafe { AtomicU32::from_ptr(p.cast()) }
    }

    fn word64(&self, off: usize) -> &AtomicU64 {
        let p = self.at(off, 8, std::mem::align_of::<AtomicU64>());
        // SAFETY: as in `word32`.
        unsafe { AtomicU64::from_ptr(p.cast()) }
    }

    pub(crate) fn read_u32(&self, off: usize) -> u32 {
        self.word32(off).load(Ordering::Relaxed)
    }

    pub(crate) fn write_u32(&self, off: usize, v: u32) {
        self.word32(off).store(v, Ordering::Relaxed)
    }

    pub(crate) fn read_u64(&self, off: usize) -> u64 {
        self.word64(off).load(Ordering::Acquire)
    }

    pub(crate) fn write_u64(&self, off: usize, v: u64) {
        self.word64(off).store(v, Ordering::Release)
    }

    fn mutex(&self, off: usize) -> *mut libc::pthread_mutex_t {
        self.at(off, SLOT, SLOT).cast()
    }

    /// Initialises a process-shared, robust, error-checking mutex at `off`.
    /// Only for a segment no other process can see yet.
    pub(crate) fn init_mutex(&self, off: usize) -> Result<(), Errno> {
        let m = self.mutex(off);
        let mut attr = std::mem::MaybeUninit::<libc::pthread_mutexattr_t>::uninit();
        // SAFETY: `attr` is initialised by pthread_mutexattr_init before any
        // other use and destroyed once; `m` points to SLOT writable bytes of
        // the mapping (checked by `mutex`), which no other thread or process
        // uses yet (the segment is still private to its creator).
        unsafe {
            Errno::result(libc::pthread_mutexattr_init(attr.as_mut_ptr()))?;
            let a = attr.as_mut_ptr();
            let res = (|| {
                check(libc::pthread_mutexattr_setpshared(
                    a,
                    libc::PTHREAD_PROCESS_SHARED,
                ))?;
                check(libc::pthread_mutexattr_setrobust(
                    a,
                    libc::PTHREAD_MUTEX_ROBUST,
                ))?;
                check(libc::pthread_mutexattr_settype(
                    a,
                    libc::PTHREAD_MUTEX_ERRORCHECK,
                ))?;
                check(libc::pthread_mutex_init(m, a))
            })();
            libc::pthread_mutexattr_destroy(a);
            res
        }
    }

    /// Locks the mutex at `off`; `Ok(true)` if its previous owner died (the
    /// mutex has been made consistent again).
    pub(crate) fn lock(&self, off: usize) -> Result<bool, Errno> {
        let m = self.mutex(off);
        loop {
            // SAFETY: `m` is an initialised process-shared mutex inside the
            // mapping, which outlives this call.
            let r = unsafe { libc::pthread_mutex_lock(m) };
            match r {
                0 => return Ok(false),
                libc::EOWNERDEAD => return self.make_consistent(m).map(|()| true),
                libc::EAGAIN | libc::EINTR => continue,
                e => return Err(Errno::from_raw(e)),
            }
        }
    }

    /// Tries to lock the mutex at `off`: `Ok(None)` if it is held,
    /// `Ok(Some(died))` if taken.
    pub(crate) fn try_lock(&self, off: usize) -> Result<Option<bool>, Errno> {
        let m = self.mutex(off);
        loop {
            // SAFETY: as in `lock`.
            let r = unsafe { libc::pthread_mutex_trylock(m) };
            match r {
                0 => return Ok(Some(false)),
                libc::EBUSY => return Ok(None),
                libc::EOWNERDEAD => return self.make_consistent(m).map(|()| Some(true)),
                libc::EAGAIN | libc::EINTR => continue,
                e => return Err(Errno::from_raw(e)),
            }
        }
    }

    /// Unlocks the mutex at `off`, held by the calling thread.
    pub(crate) fn unlock(&self, off: usize) -> Result<(), Errno> {
        let m = self.mutex(off);
        loop {
            // SAFETY: as in `lock`; an error-checking mutex refuses (EPERM)
            // an unlock by a thread that does not own it.
            let r = unsafe { libc::pthread_mutex_unlock(m) };
            match r {
                0 => return Ok(()),
                libc::EAGAIN => continue,
                e => return Err(Errno::from_raw(e)),
            }
        }
    }

    fn make_consistent(&self, m: *mut libc::pthread_mutex_t) -> Result<(), Errno> {
        // SAFETY: the calling thread owns `m` (EOWNERDEAD hands it over).
        let r = unsafe { libc::pthread_mutex_consistent(m) };
        if r != 0 {
            // SAFETY: as above; give it back rather than keep a lock we
            // cannot use (the next locker gets ENOTRECOVERABLE).
            unsafe { libc::pthread_mutex_unlock(m) };
            return Err(Errno::from_raw(r));
        }
        Ok(())
    }
}

fn check(r: libc::c_int) -> Result<(), Errno> {
    if r == 0 {
        Ok(())
    } else {
        Err(Errno::from_raw(r))
    }
}
