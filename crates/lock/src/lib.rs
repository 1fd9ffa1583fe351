//! rpod's locks: one multi-process lock per container, pod and volume.
//!
//! Whichever rpod process changes an object holds that object's lock, so
//! concurrent CLI processes never interleave changes to one object (the
//! pattern is: lock, re-read the state, change it, save, unlock). Each object
//! records the *id* of its lock; a [`LockManager`] hands ids out and turns an
//! id back into a [`Lock`].
//!
//! # Using locks
//!
//! ```no_run
//! # fn demo(cfg: &rpod_config::RuntimeConfig) -> Result<(), rpod_lock::LockError> {
//! let manager = rpod_lock::open(cfg)?;           // the backend `cfg.lock_type`
//! let lock = manager.allocate()?;                // a new container gets a lock
//! let id = lock.id();                            // stored in its config
//! // … later, possibly in another process:
//! let lock = manager.retrieve(id)?;
//! {
//!     let guard = lock.lock()?;                  // blocks; unlocks on drop
//!     if guard.previous_owner_died() {
//!         // the last holder crashed mid-change: re-read the state
//!     }
//! }
//! manager.free(id)?;                             // the container is removed
//! # Ok(()) }
//! ```
//!
//! Guarantees, whatever the backend: mutual exclusion between processes and
//! between threads; a thread locking a lock it holds gets
//! [`LockError::WouldDeadlock`] instead of deadlocking; if a holder process
//! dies, the lock frees itself and the next holder is told
//! ([`LockGuard::previous_owner_died`], plus a `tracing` warning). Guards are
//! `!Send`: release a lock on the thread that took it.
//!
//! # Implementing a backend
//!
//! 1. Implement [`RawLock`] for one lock id: block, try, release, with the
//!    guarantees listed on the trait. Per-thread relock detection and the
//!    "owner died" warning are done for you by [`Lock`].
//! 2. Implement [`LockManager`]; wrap each raw lock with
//!    [`Lock::new`]`(Arc::new(raw), scope)`, where `scope` is one
//!    [`LockScope`] per storage location.
//! 3. Write a [`LockFactory`] and register it:
//!
//! ```text
//! fn open_mine(opts: &rpod_lock::LockOptions)
//!     -> Result<Box<dyn rpod_lock::LockManager>, rpod_lock::LockError> { … }
//!
//! rpod_registry::register_backend! {
//!     kind: rpod_registry::kinds::LOCK,
//!     name: "mine",
//!     summary: "my lock backend",
//!     factory: open_mine as rpod_lock::LockFactory,
//! }
//! ```
//!
//! 4. Run the conformance suite from your tests: add
//!    `rpod-lock = { …, features = ["conformance"] }` as a dev-dependency and
//!    expand `lock_conformance_tests!` with a
//!    `conformance::Subject` describing your backend (see the `conformance`
//!    module, built with that feature).
//!
//! A backend reports its failures as [`LockError::Backend`] with its name and
//! the path concerned.

#![forbid(unsafe_code)]

mod error;
mod lock;
mod manager;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use error::LockError;
pub use lock::{Acquired, Lock, LockGuard, LockScope, RawLock};
pub use manager::{
    check_distinct, open, open_backend, open_for_renumber, LockFactory, LockManager, LockOptions,
    DEFAULT_BACKEND,
};
