//! rpod's state: where containers, pods, volumes and exit codes are remembered
//! between CLI invocations (libpod's `State`).
//!
//! # The interface
//!
//! [`State`] is object-safe and data-only: it takes and returns ids and
//! records ([`ContainerConfig`], [`ContainerState`], [`PodConfig`], …), never
//! runtime handles. It is split into small sub-traits, one per concern —
//! [`ContainerStore`], [`PodStore`], [`VolumeStore`], [`ExitCodes`],
//! [`DbConfigStore`] — plus a few methods of its own (namespace views,
//! refresh, schema version). Every one of them is something the engine needs
//! on every backend, so they are supertraits rather than optional extras: a
//! `Box<dyn State>` can do all of it, while each trait stays small enough to
//! read, implement and test on its own (the conformance tests are grouped the
//! same way). All methods take `&self`; implementations are `Send + Sync`.
//!
//! Semantics follow libpod (podman 1.5 → 4.3):
//! * ids are unique, and names are unique across containers **and** pods
//!   (volumes have their own names);
//! * lookup is by full id, then exact name, then unique id prefix; an
//!   ambiguous prefix is [`StateError::Ambiguous`] with the count;
//! * a container cannot be removed while another depends on it, a pod only
//!   when empty, a volume only when unused ([`StateError::InUse`]);
//! * every record has a namespace: a state seeing namespace `N` finds only
//!   `N`'s records, the empty namespace sees everything;
//! * [`State::refresh`] resets runtime state after a reboot;
//! * exit codes outlive their containers until pruned;
//! * the database remembers the paths it was created with
//!   ([`DbConfigStore::validate_db_config`]) and its schema version.
//!
//! # Backends
//!
//! Backends are found by name in [`rpod_registry`] (kind
//! [`rpod_registry::kinds::STATE`]); [`open`] looks up
//! `database_backend` from the configuration. This crate provides `memory`
//! (everything vanishes when the process ends); `rpod-state-sled` provides
//! `sled`, the default.
//!
//! ## Writing a backend
//!
//! 1. Write a factory `fn(&StateOptions) -> Result<Box<dyn State>, StateError>`
//!    ([`StateFactory`]).
//! 2. Either implement the traits directly, or — if your storage is an
//!    ordered key-value store — implement [`kv::KvStore`] (one `transact`
//!    method: run a closure on a consistent view, then apply a batch
//!    atomically and durably) and wrap it in [`kv::KvState`], which implements
//!    all the semantics.
//! 3. Register it:
//!    ```text
//!    rpod_registry::register_backend! {
//!        kind: rpod_registry::kinds::STATE,
//!        name: "mydb",
//!        summary: "my database",
//!        factory: open_mydb as rpod_state::StateFactory,
//!    }
//!    ```
//!    (or `rpod_registry::register` from a plugin).
//! 4. Run the conformance kit: add
//!    `rpod-state = { version = "…", features = ["conformance"] }` to your
//!    `[dev-dependencies]`, and in a test file:
//!    ```text
//!    fn fresh() -> rpod_state::conformance::Fresh {
//!        let dir = tempfile::tempdir().unwrap();
//!        let state = open_mydb(&rpod_state::StateOptions::at(dir.path().join("db"))).unwrap();
//!        rpod_state::conformance::Fresh::new(state, dir)
//!    }
//!    rpod_state::conformance_tests!(fresh);
//!    rpod_state::model_test!(fresh);
//!    ```
//!    This expands into one `#[test]` per behaviour (200 of them) and a
//!    proptest that runs random operation sequences against your backend and
//!    the memory reference, comparing every result.
//!
//! # Example
//!
//! ```
//! use rpod_state::*;
//! let state = open_memory(&StateOptions::at("/nonexistent/unused")).unwrap();
//! let cfg = ContainerConfig { id: "a".repeat(64), name: "web".into(), ..Default::default() };
//! state.add_container(&cfg, &ContainerState::configured()).unwrap();
//! assert_eq!(state.lookup_container("aaaa").unwrap().config.name, "web");
//! assert!(state.lookup_container("nope").unwrap_err().is_not_found());
//! ```

mod error;
pub mod kv;
mod memory;
mod options;
mod records;
mod timestamp;
mod traits;

#[cfg(feature = "conformance")]
pub mod conformance;

pub use error::{InUseBy, ObjectKind, StateError};
pub use kv::SCHEMA_VERSION;
pub use memory::{new_memory, open_memory, MemoryKv, MemoryState, MEMORY_BACKEND};
pub use options::{StateOptions, DEFAULT_BUSY_TIMEOUT};
pub use records::*;
pub use timestamp::Timestamp;
pub use traits::{ContainerStore, DbConfigStore, ExitCodes, PodStore, State, VolumeStore};

/// The factory type of state backends, registered under
/// [`rpod_registry::kinds::STATE`].
pub type StateFactory = fn(&StateOptions) -> Result<Box<dyn State>, StateError>;

/// Opens the state backend named by `cfg.database_backend`. An unknown name
/// gives the registry's error, which lists the known backends.
pub fn open(cfg: &rpod_config::RuntimeConfig) -> Result<Box<dyn State>, StateError> {
    open_with(&cfg.database_backend, &StateOptions::from_config(cfg))
}

/// Opens the state backend `name` with explicit options.
pub fn open_with(name: &str, opts: &StateOptions) -> Result<Box<dyn State>, StateError> {
    let reg = rpod_registry::lookup(rpod_registry::kinds::STATE, name)?;
    let factory = reg.factory::<StateFactory>()?;
    tracing::debug!(backend = name, path = ?opts.path, "opening state");
    factory(opts)
}
