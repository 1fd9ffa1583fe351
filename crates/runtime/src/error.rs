//! The runtime's error type.

/// Errors of the engine.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum RuntimeError {
    /// The configuration is invalid.
    #[error(transparent)]
    Config(#[from] rpod_config::ConfigError),
    /// A backend could not be found in the registry.
    #[error(transparent)]
    Registry(#[from] rpod_registry::RegistryError),
    /// An I/O error on a path.
    #[error("{op} {}", path.display())]
    Io {
        op: &'static str,
        path: std::path::PathBuf,
        #[source]
        source: std::io::Error,
    },
}
