//! Finding the OCI runtime and conmon, the way libpod does.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};

use rpod_config::{CgroupManager, RuntimeConfig};

use crate::OciError;

/// An OCI runtime (runc, crun, …) found on this system.
///
/// Every command rpod runs through it gets `--root <state_root>` so rpod's
/// containers live in their own runtime state directory and never collide with
/// podman's (`/run/runc`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OciRuntime {
    /// The configured name (`runc`), or the file name when given by path.
    pub name: String,
    /// Absolute path of the executable.
    pub path: PathBuf,
    /// Whether the runtime can log errors as JSON (`--log-format=json`).
    pub supports_json: bool,
    /// The runtime's state directory, passed as `--root` to every command.
    pub state_root: PathBuf,
    /// Whether containers use the systemd cgroup manager (`--systemd-cgroup`).
    pub systemd_cgroup: bool,
    /// Extra global flags given to every runtime command, before the subcommand.
    pub extra_args: Vec<String>,
}

/// One configured runtime as listed by [`list_runtimes`].
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RuntimeCandidate {
    /// The configured name.
    pub name: String,
    /// Whether this is the default runtime (`runtime`).
    pub is_default: bool,
    /// Every candidate path, in order.
    pub tried: Vec<PathBuf>,
    /// The path that will be used, if any exists.
    pub path: Option<PathBuf>,
    /// Why the runtime is unusable (set exactly when `path` is `None`).
    pub warning: Option<String>,
}

/// The first candidate that exists and is a regular file (symlinks followed).
fn first_regular(paths: &[PathBuf]) -> Option<PathBuf> {
    paths
        .iter()
        .find(|p| std::fs::metadata(p).map(|m| m.is_file()).unwrap_or(false))
        .cloned()
}

fn basename(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_else(|| p.display().to_string())
}

/// The name and candidate paths of the default runtime: the deprecated
/// `runtime_path` when non-empty (as libpod does, with a warning), else `runtime`.
fn default_runtime(cfg: &RuntimeConfig) -> (String, Option<Vec<PathBuf>>) {
    if !cfg.runtime_path.is_empty() {
        tracing::warn!(
            "the configuration uses `runtime_path`, which is deprecated; use `runtimes` and `runtime` (runtime_path wins)"
        );
        let name = basename(&cfg.runtime_path[0]);
        return (name, Some(cfg.runtime_path.clone()));
    }
    (cfg.runtime.clone(), None)
}

impl OciRuntime {
    /// Finds the runtime to use.
    ///
    /// `requested` is `--runtime NAME|PATH` (global or per container); `None`
    /// means the configured default (`runtime`, or the deprecated `runtime_path`
    /// when it is set). A name is looked up in `cfg.runtimes` (first existing
    /// regular file wins); an absolute path is used as is.
    ///
    /// ```no_run
    /// let cfg = rpod_config::RuntimeConfig::defaults(&rpod_config::UserDirs::current());
    /// let rt = rpod_oci::OciRuntime::find(&cfg, None)?;
    /// println!("{} at {}", rt.name, rt.path.display());
    /// # Ok::<(), rpod_oci::OciError>(())
    /// ```
    pub fn find(cfg: &RuntimeConfig, requested: Option<&str>) -> Result<OciRuntime, OciError> {
        let (name, path) = match requested {
            Some(r) if !r.is_empty() => Self::resolve_name(cfg, r, None)?,
            _ => {
                let (name, explicit_paths) = default_runtime(cfg);
                Self::resolve_name(cfg, &name, explicit_paths)?
            }
        };
        Ok(Self::with_config(cfg, name, path))
    }

    fn resolve_name(
        cfg: &RuntimeConfig,
        requested: &str,
        explicit_paths: Option<Vec<PathBuf>>,
    ) -> Result<(String, PathBuf), OciError> {
        if requested.is_empty() {
            return Err(OciError::InvalidSpec {
                field: "runtime".into(),
                value: String::new(),
                expected: "a configured runtime name or an absolute path".into(),
            });
        }
        let (name, tried) = if let Some(paths) = explicit_paths {
            (requested.to_string(), paths)
        } else if requested.starts_with('/') {
            let p = PathBuf::from(requested);
            (basename(&p), vec![p])
        } else if requested.contains('/') {
            return Err(OciError::InvalidSpec {
                field: "runtime".into(),
                value: requested.into(),
                expected: "a configured runtime name or an absolute path".into(),
            });
        } else {
            match cfg.runtimes.get(requested) {
                Some(paths) => (requested.to_string(), paths.clone()),
                None => {
                    return Err(OciError::RuntimeNotFound {
                        name: requested.into(),
                        tried: Vec::new(),
                    })
                }
            }
        };
        match first_regular(&tried) {
            Some(path) => Ok((name, path)),
            None => Err(OciError::RuntimeNotFound { name, tried }),
        }
    }

    /// A runtime at a known path, with settings from `cfg` (JSON support from
    /// `runtime_supports_json`, state root `<runroot>/<name>`, cgroup manager).
    pub fn with_config(cfg: &RuntimeConfig, name: String, path: PathBuf) -> OciRuntime {
        let supports_json = cfg
            .runtime_supports_json
            .iter()
            .any(|s| *s == name || *s == basename(&path));
        OciRuntime {
            state_root: cfg.runroot.join(&name),
            supports_json,
            systemd_cgroup: cfg.cgroup_manager == CgroupManager::Systemd,
            extra_args: Vec::new(),
            name,
            path,
        }
    }

    /// Replaces the state directory passed as `--root`.
    pub fn state_root(mut self, root: impl Into<PathBuf>) -> Self {
        self.state_root = root.into();
        self
    }

    /// The first line of `<runtime> --version` (e.g. `runc version 1.1.5`).
    pub fn version(&self) -> Result<String, OciError> {
        first_line_of_version(&self.path)
    }
}

/// Lists every configured runtime with the path it resolves to, or a warning
/// saying why it cannot be used. A missing non-default runtime is only a
/// warning (libpod ships configs that name optional runtimes); the caller decides
/// what a missing default means ([`OciRuntime::find`] makes it an error).
pub fn list_runtimes(cfg: &RuntimeConfig) -> Vec<RuntimeCandidate> {
    let (default_name, explicit) = default_runtime(cfg);
    let mut out = Vec::new();
    let mut push = |name: &str, tried: Vec<PathBuf>, is_default: bool| {
        let path = first_regular(&tried);
        let warning = path.is_none().then(|| {
            format!(
                "no valid executable found for OCI runtime {name}: tried {}",
                if tried.is_empty() {
                    "(none)".to_string()
                } else {
                    tried
                        .iter()
                        .map(|p| p.display().to_string())
                        .collect::<Vec<_>>()
                        .join(", ")
                }
            )
        });
        out.push(RuntimeCandidate {
            name: name.to_string(),
            is_default,
            tried,
            path,
            warning,
        });
    };
    let mut default_listed = false;
    if let Some(paths) = explicit {
        push(&default_name, paths, true);
        default_listed = true;
    } else if default_name.starts_with('/') {
        let p = PathBuf::from(&default_name);
        push(&basename(&p), vec![p.clone()], true);
        default_listed = true;
    }
    for (name, paths) in &cfg.runtimes {
        let is_default = !default_listed && *name == default_name;
        if default_listed && *name == default_name {
            continue;
        }
        push(name, paths.clone(), is_default);
    }
    if !default_listed && !cfg.runtimes.contains_key(&default_name) {
        push(&default_name, Vec::new(), true);
    }
    out
}

/// The conmon binary.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Conmon {
    /// Absolute path of the executable.
    pub path: PathBuf,
}

/// The oldest conmon rpod drives (podman's `probeConmon` minimum).
pub const CONMON_MIN_VERSION: (u32, u32, u32) = (2, 0, 1);

impl Conmon {
    /// Finds conmon: the first existing non-directory among `requested`
    /// (`--conmon PATH`) or else `cfg.conmon_path`.
    pub fn find(cfg: &RuntimeConfig, requested: Option<&Path>) -> Result<Conmon, OciError> {
        let tried: Vec<PathBuf> = match requested {
            Some(p) => vec![p.to_path_buf()],
            None => cfg.conmon_path.clone(),
        };
        tried
            .iter()
            .find(|p| std::fs::metadata(p).map(|m| !m.is_dir()).unwrap_or(false))
            .map(|p| Conmon { path: p.clone() })
            .ok_or(OciError::ConmonNotFound { tried })
    }

    /// The first line of `conmon --version` (e.g. `conmon version 2.1.6`).
    pub fn version(&self) -> Result<String, OciError> {
        first_line_of_version(&self.path)
    }

    /// Parses the version and checks it against [`CONMON_MIN_VERSION`].
    pub fn check_version(&self) -> Result<(u32, u32, u32), OciError> {
        let line = self.version()?;
        let parsed = parse_version(&line).ok_or_else(|| OciError::BadFile {
            what: "conmon --version output",
            path: self.path.clone(),
            reason: format!("no version number in {line:?}"),
        })?;
        if parsed < CONMON_MIN_VERSION {
            let (a, b, c) = CONMON_MIN_VERSION;
            return Err(OciError::InvalidSpec {
                field: "conmon version".into(),
                value: line,
                expected: format!("conmon {a}.{b}.{c} or newer"),
            });
        }
        Ok(parsed)
    }
}

/// Finds `X.Y.Z` in a version line.
pub(crate) fn parse_version(line: &str) -> Option<(u32, u32, u32)> {
    line.split(|c: char| c.is_whitespace() || c == '-' || c == '+')
        .find_map(|word| {
            let word = word.trim_start_matches('v');
            let mut it = word.split('.');
            let a = it.next()?.parse().ok()?;
            let b = it.next()?.parse().ok()?;
            let c = it.next().and_then(|s| s.parse().ok()).unwrap_or(0);
            Some((a, b, c))
        })
}

fn first_line_of_version(path: &Path) -> Result<String, OciError> {
    let out = Command::new(path)
        .arg("--version")
        .stdin(Stdio::null())
        .output()
        .map_err(|source| OciError::Spawn {
            program: path.to_path_buf(),
            source,
        })?;
    let text = String::from_utf8_lossy(&out.stdout);
    let line = text.lines().next().unwrap_or("").trim().to_string();
    if !out.status.success() || line.is_empty() {
        return Err(OciError::BadFile {
            what: "--version output",
            path: path.to_path_buf(),
            reason: format!(
                "{} (stderr: {})",
                out.status,
                String::from_utf8_lossy(&out.stderr).trim()
            ),
        });
    }
    Ok(line)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_versions() {
        assert_eq!(parse_version("conmon version 2.1.6"), Some((2, 1, 6)));
        assert_eq!(parse_version("runc version 1.1.5"), Some((1, 1, 5)));
        assert_eq!(parse_version("crun version 1.8.1"), Some((1, 8, 1)));
        assert_eq!(parse_version("no numbers"), None);
    }
}
