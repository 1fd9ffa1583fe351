//! The backends built into the `rpod` binary.
//!
//! Backends register themselves with the registry at link time, but a crate
//! that nothing refers to is not linked. This list refers to each built-in
//! backend crate so that it is; a test checks that each name is registered.

/// `(kind, name)` of every backend built into `rpod`.
pub const BUILTIN: &[(&str, &str)] = &[];

/// Makes sure every built-in backend crate is linked into the binary.
pub fn link() {}
