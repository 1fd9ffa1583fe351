//! rpod's engine.
//!
//! The runtime crate wires the other crates together: it reads the
//! configuration, opens the state, lock and events backends *by name through
//! the registry* (it never names a backend itself), drives the OCI layer, and
//! exposes the operations the CLI calls. It holds the engine logic; the CLI
//! only parses arguments and prints.

pub mod error;
pub mod info;

pub use error::RuntimeError;
