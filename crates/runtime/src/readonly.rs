//! Databases rpod may only read.
//!
//! A state backend says a database refuses writes through
//! [`rpod_state::State::read_only_reason`]: the `bolt` backend does for a
//! podman `bolt_state.db` (rpod never writes into a database it did not
//! create). [`Runtime::new`](crate::Runtime::new) then:
//! * skips the database-config validation (it would compare podman's paths
//!   with rpod's, and store missing keys);
//! * lists and inspects containers exactly as recorded: no exit-file sync,
//!   no look at conmon or runc processes (a container podman recorded as
//!   running shows as running);
//! * refuses every operation that changes a container (create, start, stop,
//!   kill, rm, cleanup…) with [`RuntimeError::ReadOnlyDatabase`], before
//!   touching any lock, naming the database and why it is read-only (for
//!   podman's: use `rpod system import-podman PATH`).

use std::path::PathBuf;

use crate::{Result, Runtime, RuntimeError};

impl Runtime {
    /// Why the state database refuses writes, if it does (see the module docs).
    pub fn read_only_reason(&self) -> Option<&str> {
        self.read_only.as_deref()
    }

    /// Fails with [`RuntimeError::ReadOnlyDatabase`] when the state is read-only.
    pub(crate) fn check_writable(&self, op: &'static str) -> Result<()> {
        match &self.read_only {
            None => Ok(()),
            Some(reason) => Err(RuntimeError::ReadOnlyDatabase {
                op,
                path: self
                    .state()
                    .path()
                    .map(PathBuf::from)
                    .unwrap_or_else(|| PathBuf::from("<no path>")),
                reason: reason.clone(),
            }),
        }
    }
}
