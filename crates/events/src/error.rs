//! The one error type of rpod-events.

use std::path::PathBuf;

/// Everything that can go wrong writing, reading or querying events.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EventsError {
    /// A file operation on the events log (or its lock file) failed.
    #[error("events log {path}: cannot {action}: {source}")]
    Io {
        /// The file concerned.
        path: PathBuf,
        /// What was being done (`open`, `append to`, `rotate`, `read`, …).
        action: &'static str,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// A `--filter` value rpod does not understand.
    #[error("invalid event filter {filter:?}: {reason}")]
    BadFilter {
        /// The filter as given (`key=value`).
        filter: String,
        /// What is wrong and what is expected.
        reason: String,
    },
    /// A `--since`/`--until` value rpod does not understand.
    #[error("invalid {flag} time {input:?}: expected {expected}")]
    BadTime {
        /// Which option (`--since`, `--until`, or `time`).
        flag: String,
        /// The value as given.
        input: String,
        /// What is accepted.
        expected: &'static str,
    },
    /// An output format that is not supported.
    #[error("unsupported events format {format:?}: {reason}")]
    BadFormat {
        /// The format as given.
        format: String,
        /// What is wrong and what is accepted.
        reason: &'static str,
    },
    /// No systemd journal is listening on the native socket.
    #[error(
        "no systemd journal is running: cannot send to {}: {source}; start systemd-journald or set events_logger = \"file\"",
        socket.display()
    )]
    NoJournal {
        /// The journal's native socket.
        socket: PathBuf,
        /// The error from `sendto(2)`.
        #[source]
        source: std::io::Error,
    },
    /// The journal refused an event or could not be read.
    #[error("systemd journal: {reason}")]
    Journal {
        /// What went wrong.
        reason: String,
    },
    /// A line of an events log that is not an event.
    ///
    /// Readers skip such lines with a warning; this variant is what the
    /// warning prints, and what [`crate::Event::from_json`] returns
    /// (with an empty path and line 0).
    #[error("corrupt event at {}:{line}: {reason}", path.display())]
    Corrupt {
        /// The log file.
        path: PathBuf,
        /// 1-based line number (0 when not from a file).
        line: usize,
        /// Why it could not be parsed.
        reason: String,
    },
    /// An event field that cannot be written (e.g. a journal field name).
    #[error("cannot encode event: {reason}")]
    Encode {
        /// What is wrong.
        reason: String,
    },
    /// `events_logger` names no registered events backend, or its factory has
    /// the wrong type.
    #[error("events backend {name:?}: {source}")]
    Backend {
        /// The backend name from the config.
        name: String,
        /// The registry's error (lists the known backends).
        #[source]
        source: rpod_registry::RegistryError,
    },
}

impl EventsError {
    pub(crate) fn io(
        path: impl Into<PathBuf>,
        action: &'static str,
        source: std::io::Error,
    ) -> Self {
        EventsError::Io {
            path: path.into(),
            action,
            source,
        }
    }
}
