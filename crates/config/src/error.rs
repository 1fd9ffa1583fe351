use std::fmt;
use std::path::PathBuf;

/// Where a configuration value came from.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
#[serde(tag = "kind", content = "path", rename_all = "lowercase")]
pub enum Origin {
    /// rpod's built-in default (possibly derived from another value).
    Default,
    /// A configuration file.
    File(PathBuf),
    /// An option set by the caller: a CLI flag or the library's builder.
    Option,
}

impl Origin {
    /// Whether the value was set explicitly (by a file or an option).
    pub fn is_explicit(&self) -> bool {
        !matches!(self, Origin::Default)
    }
}

impl fmt::Display for Origin {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Origin::Default => f.write_str("built-in default"),
            Origin::File(p) => write!(f, "{}", p.display()),
            Origin::Option => f.write_str("command-line option"),
        }
    }
}

/// Errors of the config crate.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ConfigError {
    /// A file named with `--config` does not exist or cannot be inspected.
    #[error("cannot stat config file {}", path.display())]
    CannotStat {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// A file exists but cannot be read.
    #[error("cannot read config file {}", path.display())]
    Read {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// TOML syntax error.
    #[error("{}:{line}:{column}: invalid TOML: {message}", path.display())]
    Syntax {
        path: PathBuf,
        line: usize,
        column: usize,
        message: String,
    },
    /// A key holds a value of the wrong type or out of range.
    #[error("{origin}: invalid value {value} for `{key}`: expected {expected}")]
    InvalidValue {
        origin: Origin,
        key: String,
        value: String,
        expected: String,
    },
    /// A backend name that no registered backend has.
    #[error("{origin}: unknown {kind} backend {value:?} for `{key}`; registered backends: {}", if known.is_empty() { "(none)".to_string() } else { known.join(", ") })]
    UnknownBackend {
        origin: Origin,
        key: String,
        kind: String,
        value: String,
        known: Vec<String>,
    },
    /// A library in `plugin_dirs` could not be loaded or was refused.
    #[error("{origin}: cannot use `plugin_dirs`")]
    Plugin {
        origin: Origin,
        #[source]
        source: rpod_registry::RegistryError,
    },
}
