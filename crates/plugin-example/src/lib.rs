//! An example backend plugin.
//!
//! Built as a `cdylib`, this crate is a shared library that rpod loads from a
//! directory listed in `plugin_dirs`; it adds a state backend named
//! `example-sled` and a lock backend named `example-file`, which a config
//! then selects like built-in ones:
//!
//! ```toml
//! plugin_dirs = ["/usr/lib/rpod/plugins"]
//! database_backend = "example-sled"
//! lock_type = "example-file"
//! ```
//!
//! Its backends reuse rpod's own sled and file-lock code: the point is the
//! packaging. A third-party backend would implement `rpod_state::State` (or
//! `rpod_state::kv::KvStore`) itself and run `rpod_state`'s conformance kit in
//! its tests. The plugin must be built by the same compiler against the same
//! rpod crates as the `rpod` that loads it (see [`rpod_registry::plugin`]).

use rpod_lock::{LockError, LockManager, LockOptions};
use rpod_state::{State, StateError, StateOptions};

/// Opens the `example-sled` state: rpod's sled backend under another name.
pub fn open_state(opts: &StateOptions) -> Result<Box<dyn State>, StateError> {
    rpod_state_sled::open_sled(opts)
}

/// Opens the `example-file` lock manager: rpod's file locks under another name.
pub fn open_locks(opts: &LockOptions) -> Result<Box<dyn LockManager>, LockError> {
    rpod_lock_file::open_factory(opts)
}

rpod_registry::declare_plugin! {
    {
        kind: rpod_registry::kinds::STATE,
        name: "example-sled",
        summary: "example plugin: sled, loaded from a shared library",
        factory: open_state as rpod_state::StateFactory,
    },
    {
        kind: rpod_registry::kinds::LOCK,
        name: "example-file",
        summary: "example plugin: file locks, loaded from a shared library",
        factory: open_locks as rpod_lock::LockFactory,
    },
}
