//! The crate's one error type.

use std::path::{Path, PathBuf};

/// Everything that can go wrong in the OCI layer.
///
/// Every variant carries the context needed to act on it: the runtime or
/// container it concerns, the path involved, the value that was rejected.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum OciError {
    /// No candidate path of an OCI runtime exists.
    #[error("OCI runtime {name:?} not found: tried {}", list_paths(.tried))]
    RuntimeNotFound {
        /// The runtime's configured name (or the path asked for).
        name: String,
        /// Every path that was looked at.
        tried: Vec<PathBuf>,
    },
    /// No candidate path of conmon exists.
    #[error("conmon not found: tried {}", list_paths(.tried))]
    ConmonNotFound {
        /// Every path that was looked at.
        tried: Vec<PathBuf>,
    },
    /// The container's command does not exist in its root filesystem (exit code 127).
    #[error("command {cmd:?} not found in the container's root filesystem {} (searched $PATH inside it)", .rootfs.display())]
    CommandNotFound {
        /// The command as given.
        cmd: String,
        /// The root filesystem searched.
        rootfs: PathBuf,
    },
    /// The container's command exists but is not executable (exit code 126).
    #[error("command {cmd:?} at {} is not an executable file", .path.display())]
    CommandNotExecutable {
        /// The command as given.
        cmd: String,
        /// The resolved host path of the file.
        path: PathBuf,
    },
    /// The OCI runtime failed an operation; `message` is the runtime's own error.
    #[error("{runtime} {op} failed for container {id}: {message}")]
    RuntimeFailed {
        /// Runtime name (`runc`).
        runtime: String,
        /// The operation (`create`, `start`, `kill`, …).
        op: String,
        /// Container id.
        id: String,
        /// The runtime's error text (stderr or its JSON log message).
        message: String,
    },
    /// conmon misbehaved (exited with an error, closed the sync pipe, timed out…).
    #[error("conmon for container {id}: {reason}")]
    Conmon {
        /// Container id.
        id: String,
        /// What went wrong.
        reason: String,
    },
    /// An I/O error on a path.
    #[error("{}: {source}", .path.display())]
    Io {
        /// The file or directory involved.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A spec option has a bad value.
    #[error("invalid {field} {value:?}: expected {expected}")]
    InvalidSpec {
        /// The option (`cap_add`, `user`, `mount`, …).
        field: String,
        /// The rejected value.
        value: String,
        /// What would be accepted.
        expected: String,
    },
    /// A file the crate reads (seccomp profile, hook, log, exit file…) is malformed.
    #[error("malformed {what} {}: {reason}", .path.display())]
    BadFile {
        /// What kind of file (`seccomp profile`, `OCI hook`, `exit file`, …).
        what: &'static str,
        /// Its path.
        path: PathBuf,
        /// Why it was rejected.
        reason: String,
    },
    /// Waiting for something took too long.
    #[error("timed out after {millis} ms waiting for {what}")]
    Timeout {
        /// What was awaited (includes the container id).
        what: String,
        /// The timeout.
        millis: u128,
    },
    /// Running a helper program failed to even start.
    #[error("cannot run {}: {source}", .program.display())]
    Spawn {
        /// The program.
        program: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
}

impl OciError {
    /// Wraps an I/O error with its path.
    pub(crate) fn io(path: impl AsRef<Path>, source: std::io::Error) -> Self {
        OciError::Io {
            path: path.as_ref().to_path_buf(),
            source,
        }
    }

    /// The exit code podman's CLI uses for this error when it fails a `run`/`start`:
    /// 127 for a missing command, 126 for a non-executable one or a permission
    /// problem, 125 for everything else (`libpod/define/exec_codes.go`).
    pub fn exit_code(&self) -> i32 {
        match self {
            OciError::CommandNotFound { .. } => 127,
            OciError::CommandNotExecutable { .. } => 126,
            OciError::RuntimeFailed { message, .. } => classify_runtime_message(message),
            _ => 125,
        }
    }
}

/// podman's `getOCIRuntimeError` classification of a runtime error message.
pub(crate) fn classify_runtime_message(message: &str) -> i32 {
    let m = message.to_ascii_lowercase();
    if m.contains("permission denied") || m.contains("operation not permitted") {
        126
    } else if m.contains("executable file not found in") || m.contains("no such file or directory")
    {
        127
    } else {
        125
    }
}

fn list_paths(paths: &[PathBuf]) -> String {
    if paths.is_empty() {
        return "(no candidate paths configured)".into();
    }
    paths
        .iter()
        .map(|p| p.display().to_string())
        .collect::<Vec<_>>()
        .join(", ")
}
