//! Lock handles and guards, shared by every backend.
//!
//! A backend implements [`RawLock`] (block, try, release). [`Lock`] wraps it
//! and adds what every backend must behave the same on: per-thread tracking
//! of held locks ([`LockError::WouldDeadlock`]), the "previous owner died"
//! warning, and a `!Send` guard that releases on drop.

use std::cell::RefCell;
use std::collections::HashMap;
use std::fmt;
use std::marker::PhantomData;
use std::sync::{Arc, Mutex, OnceLock};

use crate::LockError;

/// What a successful acquisition found.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct Acquired {
    /// The previous holder died while holding the lock; the object the lock
    /// protects may be half-changed and must be re-read.
    pub previous_owner_died: bool,
    /// What the backend knows about that holder (for example `pid 1234`).
    pub previous_owner: Option<String>,
}

impl Acquired {
    /// A normal acquisition.
    pub fn clean() -> Self {
        Self::default()
    }

    /// The previous holder died while holding the lock.
    pub fn owner_died(previous_owner: Option<String>) -> Self {
        Acquired {
            previous_owner_died: true,
            previous_owner,
        }
    }
}

/// The primitive a backend provides for one lock id.
///
/// Implementations must guarantee:
/// * mutual exclusion between processes, and between threads of one process,
///   including threads using *different* handles of the same id;
/// * when a holder process dies, the lock becomes free by itself and the next
///   acquisition returns [`Acquired::owner_died`];
/// * `unlock` is only called by [`Lock`]'s guard, on the thread that locked,
///   once per successful `lock`/`try_lock`.
///
/// They need not detect a thread relocking what it holds: [`Lock`] does.
pub trait RawLock: Send + Sync + fmt::Debug {
    /// The lock's id.
    fn id(&self) -> u32;
    /// Blocks until the lock is held by the calling thread.
    fn lock(&self) -> Result<Acquired, LockError>;
    /// Takes the lock if it is free; `Ok(None)` if someone else holds it.
    fn try_lock(&self) -> Result<Option<Acquired>, LockError>;
    /// Releases the lock held by the calling thread.
    fn unlock(&self) -> Result<(), LockError>;
}

/// The namespace lock ids live in: two handles with the same scope and id are
/// the same lock. A backend makes one per storage location (for example
/// `shm:/dev/shm/rpod_lock_0`), so that two managers opened on the same
/// storage in one process agree on which locks the thread holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct LockScope(u32);

impl LockScope {
    /// The scope named `name` (interned: equal names give equal scopes).
    pub fn new(name: &str) -> Self {
        static NAMES: OnceLock<Mutex<HashMap<String, u32>>> = OnceLock::new();
        let mut names = NAMES
            .get_or_init(Default::default)
            .lock()
            .unwrap_or_else(|e| e.into_inner());
        let next = u32::try_from(names.len()).unwrap_or(u32::MAX);
        LockScope(*names.entry(name.to_string()).or_insert(next))
    }
}

thread_local! {
    /// The locks the current thread holds, as (scope, id). Rarely more than a few.
    static HELD: RefCell<Vec<(LockScope, u32)>> = const { RefCell::new(Vec::new()) };
}

fn held_here(key: (LockScope, u32)) -> bool {
    HELD.with(|h| h.borrow().contains(&key))
}

fn mark_held(key: (LockScope, u32)) {
    HELD.with(|h| h.borrow_mut().push(key));
}

fn unmark_held(key: (LockScope, u32)) {
    HELD.with(|h| {
        let mut h = h.borrow_mut();
        if let Some(i) = h.iter().rposition(|k| *k == key) {
            h.swap_remove(i);
        }
    });
}

/// A handle to one lock. Cheap to clone, `Send + Sync`; every handle with the
/// same scope and id is the same lock, in this process and in others.
///
/// ```
/// # use rpod_lock::{Acquired, Lock, LockError, LockScope, RawLock};
/// # use std::sync::{Arc, Mutex};
/// # #[derive(Debug, Default)] struct Toy(Mutex<bool>);
/// # impl RawLock for Toy {
/// #     fn id(&self) -> u32 { 3 }
/// #     fn lock(&self) -> Result<Acquired, LockError> { *self.0.lock().unwrap() = true; Ok(Acquired::clean()) }
/// #     fn try_lock(&self) -> Result<Option<Acquired>, LockError> { self.lock().map(Some) }
/// #     fn unlock(&self) -> Result<(), LockError> { *self.0.lock().unwrap() = false; Ok(()) }
/// # }
/// let lock = Lock::new(Arc::new(Toy::default()), LockScope::new("doc"));
/// let guard = lock.lock()?;
/// assert!(!guard.previous_owner_died());
/// assert!(matches!(lock.lock(), Err(LockError::WouldDeadlock { id: 3 })));
/// drop(guard); // unlocks
/// lock.lock()?.unlock()?;
/// # Ok::<(), LockError>(())
/// ```
#[derive(Clone)]
pub struct Lock {
    raw: Arc<dyn RawLock>,
    scope: LockScope,
}

impl fmt::Debug for Lock {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Lock")
            .field("id", &self.raw.id())
            .field("scope", &self.scope)
            .field("raw", &self.raw)
            .finish()
    }
}

impl Lock {
    /// Wraps a backend's lock. `scope` identifies the backend's storage.
    pub fn new(raw: Arc<dyn RawLock>, scope: LockScope) -> Self {
        Lock { raw, scope }
    }

    /// The lock's id.
    pub fn id(&self) -> u32 {
        self.raw.id()
    }

    /// The scope of the lock.
    pub fn scope(&self) -> LockScope {
        self.scope
    }

    /// Whether the calling thread holds this lock.
    pub fn is_held_by_current_thread(&self) -> bool {
        held_here(self.key())
    }

    fn key(&self) -> (LockScope, u32) {
        (self.scope, self.raw.id())
    }

    fn check_not_held(&self) -> Result<(), LockError> {
        if held_here(self.key()) {
            return Err(LockError::WouldDeadlock { id: self.id() });
        }
        Ok(())
    }

    fn guard(&self, acquired: Acquired) -> LockGuard {
        mark_held(self.key());
        if acquired.previous_owner_died {
            tracing::warn!(
                lock = self.id(),
                previous_owner = acquired.previous_owner.as_deref().unwrap_or("unknown"),
                "the previous holder of lock {} died while holding it; \
                 the object it protects may be half-changed",
                self.id()
            );
        }
        LockGuard {
            lock: self.clone(),
            acquired,
            released: false,
            _not_send: PhantomData,
        }
    }

    /// Blocks until the lock is held; the guard releases it when dropped.
    ///
    /// Fails with [`LockError::WouldDeadlock`] if this thread already holds it.
    pub fn lock(&self) -> Result<LockGuard, LockError> {
        self.check_not_held()?;
        let acquired = self.raw.lock()?;
        Ok(self.guard(acquired))
    }

    /// Takes the lock if no one holds it; `Ok(None)` if another thread or
    /// process does. Fails with [`LockError::WouldDeadlock`] if this thread does.
    pub fn try_lock(&self) -> Result<Option<LockGuard>, LockError> {
        self.check_not_held()?;
        Ok(self.raw.try_lock()?.map(|a| self.guard(a)))
    }
}

/// Proof that the current thread holds a lock; releases it when dropped.
///
/// Not `Send`: a lock must be released by the thread that took it (a pthread
/// mutex requires it), so a guard cannot cross threads or be held across an
/// `.await` of a multi-threaded executor.
#[must_use = "the lock is released as soon as the guard is dropped"]
pub struct LockGuard {
    lock: Lock,
    acquired: Acquired,
    released: bool,
    _not_send: PhantomData<*const ()>,
}

impl fmt::Debug for LockGuard {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("LockGuard")
            .field("id", &self.lock.id())
            .field("acquired", &self.acquired)
            .finish()
    }
}

impl LockGuard {
    /// The id of the held lock.
    pub fn id(&self) -> u32 {
        self.lock.id()
    }

    /// Whether the previous holder died while holding the lock (the protected
    /// object may be half-changed: re-read it before trusting it).
    pub fn previous_owner_died(&self) -> bool {
        self.acquired.previous_owner_died
    }

    /// What the acquisition found, including what is known of a dead holder.
    pub fn acquired(&self) -> &Acquired {
        &self.acquired
    }

    /// Releases the lock, reporting a failure that dropping would only log.
    pub fn unlock(mut self) -> Result<(), LockError> {
        self.release()
    }

    fn release(&mut self) -> Result<(), LockError> {
        if self.released {
            return Ok(());
        }
        self.released = true;
        let res = self.lock.raw.unlock();
        unmark_held(self.lock.key());
        res
    }
}

impl Drop for LockGuard {
    fn drop(&mut self) {
        if let Err(e) = self.release() {
            tracing::error!(
                lock = self.lock.id(),
                "releasing lock {}: {e}",
                self.lock.id()
            );
        }
    }
}

// Compile-time checks: handles are shareable, guards are not `Send`.
const _: () = {
    fn send_sync<T: Send + Sync>() {}
    let _ = send_sync::<Lock>;
    let _ = send_sync::<Box<dyn crate::LockManager>>;

    trait AmbiguousIfSend<A> {
        fn some_item() {}
    }
    impl<T: ?Sized> AmbiguousIfSend<()> for T {}
    impl<T: ?Sized + Send> AmbiguousIfSend<u8> for T {}
    // Ambiguous (a compile error) if `LockGuard: Send`.
    let _ = <LockGuard as AmbiguousIfSend<_>>::some_item;
};
