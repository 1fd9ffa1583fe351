//! rpod's runtime configuration.
//!
//! The equivalent of libpod's `RuntimeConfig` and of how libpod's `runtime.go`
//! assembles it. Every libpod key keeps its TOML name, so an existing
//! `libpod.conf` loads unchanged; rpod adds a few keys of its own
//! (`database_backend`, `root`, `runroot`, `plugin_dirs`, …, see [`RuntimeConfig`]).
//!
//! Sources, lowest to highest precedence:
//! 1. built-in defaults ([`RuntimeConfig::defaults`]); paths are rpod's own
//!    (`/var/lib/rpod`, `/run/rpod`, or the XDG dirs for a non-root user) and
//!    never collide with podman's;
//! 2. the system file `/usr/share/rpod/rpod.conf`, or the override file
//!    `/etc/rpod/rpod.conf` *instead* when it exists (replace, not merge);
//! 3. for a non-root user, `~/.config/rpod/rpod.conf` *instead of* the global
//!    file when present; otherwise only the keys libpod cherry-picks from the
//!    global file ([`ROOTLESS_INHERITED_KEYS`]);
//! 4. the file named with `--config`, which must exist;
//! 5. options set by the caller ([`Options`]: CLI flags or the library's builder).
//!
//! The result, [`Config`], remembers where each value came from, so later code
//! can tell explicit settings from defaults ([`Config::is_explicit`]).

mod error;
mod fields;

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

pub use error::{ConfigError, Origin};
pub use fields::{
    CgroupManager, RuntimeConfig, UserDirs, CONMON_PATHS, CRUN_PATHS, KEYS, RUNC_PATHS,
};

/// The system-wide default config file.
pub const SYSTEM_CONFIG_FILE: &str = "/usr/share/rpod/rpod.conf";
/// The administrator's override file; replaces the system file when present.
pub const OVERRIDE_CONFIG_FILE: &str = "/etc/rpod/rpod.conf";

/// Keys a non-root user without a config file of their own inherits from the
/// global file (libpod's cherry-picked subset).
pub const ROOTLESS_INHERITED_KEYS: &[&str] = &[
    "conmon_path",
    "conmon_env_vars",
    "init_path",
    "runtimes",
    "runtime_path",
    "cni_plugin_dir",
    "no_pivot_root",
];

/// Options set by the caller, applied last. Each names a config key.
///
/// ```
/// let opts = rpod_config::Options::new().root("/tmp/x/root").num_locks(64);
/// assert_eq!(opts.len(), 2);
/// ```
#[derive(Debug, Clone, Default)]
pub struct Options {
    values: Vec<(String, toml::Value)>,
}

macro_rules! option_setters {
    ($( $fn:ident($key:literal : $ty:ty) ),* $(,)?) => {
        $(
            #[doc = concat!("Sets `", $key, "`.")]
            pub fn $fn(self, value: $ty) -> Self {
                self.set($key, value)
            }
        )*
    };
}

impl Options {
    /// No options.
    pub fn new() -> Self {
        Self::default()
    }

    /// Sets any key to a value (anything TOML can hold).
    pub fn set(mut self, key: &str, value: impl Into<toml::Value>) -> Self {
        self.values.push((key.to_string(), value.into()));
        self
    }

    /// Sets a path-valued key.
    pub fn set_path(self, key: &str, value: impl AsRef<Path>) -> Self {
        let v = value.as_ref().to_string_lossy().into_owned();
        self.set(key, v)
    }

    /// Sets `conmon_path` to one path (`--conmon`).
    pub fn conmon(self, path: impl AsRef<Path>) -> Self {
        let v = path.as_ref().to_string_lossy().into_owned();
        self.set("conmon_path", toml::Value::Array(vec![v.into()]))
    }

    /// Number of options set.
    pub fn len(&self) -> usize {
        self.values.len()
    }

    /// Whether no option is set.
    pub fn is_empty(&self) -> bool {
        self.values.is_empty()
    }

    /// Sets `root`.
    pub fn root(self, p: impl AsRef<Path>) -> Self {
        self.set_path("root", p)
    }
    /// Sets `runroot`.
    pub fn runroot(self, p: impl AsRef<Path>) -> Self {
        self.set_path("runroot", p)
    }
    /// Sets `tmp_dir`.
    pub fn tmp_dir(self, p: impl AsRef<Path>) -> Self {
        self.set_path("tmp_dir", p)
    }
    /// Sets `volume_path`.
    pub fn volume_path(self, p: impl AsRef<Path>) -> Self {
        self.set_path("volume_path", p)
    }
    /// Sets `static_dir`.
    pub fn static_dir(self, p: impl AsRef<Path>) -> Self {
        self.set_path("static_dir", p)
    }
    /// Sets `db_path`.
    pub fn db_path(self, p: impl AsRef<Path>) -> Self {
        self.set_path("db_path", p)
    }
    /// Sets `num_locks`.
    pub fn num_locks(self, n: u32) -> Self {
        self.set("num_locks", i64::from(n))
    }

    option_setters! {
        runtime("runtime": &str),
        cgroup_manager("cgroup_manager": &str),
        events_logger("events_logger": &str),
        namespace("namespace": &str),
        database_backend("database_backend": &str),
        lock_type("lock_type": &str),
        lock_path("lock_path": &str),
        cgroup_parent("cgroup_parent": &str),
    }
}

/// Finds and reads the config sources. [`ConfigLoader::new`] uses the real
/// system locations; tests point the fields at their own files.
#[derive(Debug, Clone)]
pub struct ConfigLoader {
    /// The system default file.
    pub system_file: PathBuf,
    /// The override file, which replaces the system file when present.
    pub override_file: PathBuf,
    /// The user and their directories (decides defaults and rootless handling).
    pub user: UserDirs,
    /// The file from `--config`, if any.
    pub config_file: Option<PathBuf>,
    /// Caller options, applied last.
    pub options: Options,
}

impl Default for ConfigLoader {
    fn default() -> Self {
        Self::new()
    }
}

/// The effective configuration and where each value came from.
#[derive(Debug, Clone, PartialEq)]
pub struct Config {
    values: RuntimeConfig,
    origins: BTreeMap<&'static str, Origin>,
    files: Vec<PathBuf>,
    warnings: Vec<String>,
}

impl std::ops::Deref for Config {
    type Target = RuntimeConfig;
    fn deref(&self) -> &RuntimeConfig {
        &self.values
    }
}

fn static_key(key: &str) -> Option<&'static str> {
    KEYS.iter().copied().find(|k| *k == key)
}

impl Config {
    /// The defaults for `user`, with no file read.
    pub fn defaults(user: &UserDirs) -> Self {
        Config {
            values: RuntimeConfig::defaults(user),
            origins: BTreeMap::new(),
            files: Vec::new(),
            warnings: Vec::new(),
        }
    }

    /// The values.
    pub fn values(&self) -> &RuntimeConfig {
        &self.values
    }

    /// Where `key` came from.
    pub fn origin(&self, key: &str) -> Origin {
        self.origins.get(key).cloned().unwrap_or(Origin::Default)
    }

    /// Whether `key` was set by a file or an option (not a default).
    pub fn is_explicit(&self, key: &str) -> bool {
        self.origin(key).is_explicit()
    }

    /// The keys set explicitly, with their origins.
    pub fn explicit_keys(&self) -> impl Iterator<Item = (&'static str, &Origin)> {
        self.origins.iter().map(|(k, o)| (*k, o))
    }

    /// The config files read, in order.
    pub fn files_read(&self) -> &[PathBuf] {
        &self.files
    }

    /// Warnings raised while loading (unknown keys, deprecated keys).
    pub fn warnings(&self) -> &[String] {
        &self.warnings
    }

    /// Replaces a value that was not set explicitly (used when the database
    /// supplies paths). Returns `false`, leaving it unchanged, if it was explicit
    /// or the key is unknown.
    pub fn set_default_from(&mut self, key: &str, value: toml::Value) -> Result<bool, ConfigError> {
        if self.is_explicit(key) || static_key(key).is_none() {
            return Ok(false);
        }
        let shown = value.to_string();
        self.values
            .set_toml(key, value)
            .map_err(|expected| ConfigError::InvalidValue {
                origin: Origin::Default,
                key: key.to_string(),
                value: shown,
                expected,
            })
    }

    fn apply_table(
        &mut self,
        table: toml::Table,
        origin: &Origin,
        only: Option<&[&str]>,
    ) -> Result<(), ConfigError> {
        for (key, value) in table {
            if let Some(only) = only {
                if !only.contains(&key.as_str()) {
                    continue;
                }
            }
            self.apply_one(&key, value, origin)?;
        }
        Ok(())
    }

    fn apply_one(
        &mut self,
        key: &str,
        value: toml::Value,
        origin: &Origin,
    ) -> Result<(), ConfigError> {
        let Some(skey) = static_key(key) else {
            let w = format!("{origin}: unknown config key `{key}` ignored");
            tracing::warn!("{w}");
            self.warnings.push(w);
            return Ok(());
        };
        let shown = value.to_string();
        self.values
            .set_toml(skey, value)
            .map_err(|msg| ConfigError::InvalidValue {
                origin: origin.clone(),
                key: key.to_string(),
                value: shown,
                expected: expected_for(skey, &msg),
            })?;
        self.origins.insert(skey, origin.clone());
        if skey == "runtime_path" {
            let w = format!(
                "{origin}: `runtime_path` is deprecated; use `runtimes` and `runtime` instead"
            );
            tracing::warn!("{w}");
            self.warnings.push(w);
        }
        Ok(())
    }

    /// Checks the values: each error names where the bad value came from, the
    /// key, the value and what is accepted. Backend names are checked separately
    /// by [`Config::validate_backends`], once the backends are registered.
    pub fn validate(&self) -> Result<(), ConfigError> {
        let v = &self.values;
        let bad = |key: &str, value: String, expected: &str| ConfigError::InvalidValue {
            origin: self.origin(key),
            key: key.to_string(),
            value,
            expected: expected.to_string(),
        };
        if v.num_locks == 0 {
            return Err(bad(
                "num_locks",
                "0".into(),
                "a number of locks of at least 1",
            ));
        }
        for (name, paths) in &v.runtimes {
            if paths.is_empty() {
                return Err(bad(
                    "runtimes",
                    format!("{name} = []"),
                    "at least one candidate path for each runtime",
                ));
            }
            if let Some(p) = paths.iter().find(|p| !p.is_absolute()) {
                return Err(bad(
                    "runtimes",
                    format!("{name} = {:?}", p.display().to_string()),
                    "absolute paths",
                ));
            }
        }
        if v.runtime.is_empty()
            || !(v.runtimes.contains_key(&v.runtime) || Path::new(&v.runtime).is_absolute())
        {
            let names: Vec<&str> = v.runtimes.keys().map(String::as_str).collect();
            return Err(bad(
                "runtime",
                format!("{:?}", v.runtime),
                &format!(
                    "the name of a configured runtime ({}) or an absolute path",
                    names.join(", ")
                ),
            ));
        }
        let single_paths: [(&str, &Path); 9] = [
            ("root", &v.root),
            ("runroot", &v.runroot),
            ("static_dir", &v.static_dir),
            ("tmp_dir", &v.tmp_dir),
            ("volume_path", &v.volume_path),
            ("init_path", &v.init_path),
            ("signature_policy_path", &v.signature_policy_path),
            ("cni_config_dir", &v.cni_config_dir),
            ("db_path", &v.db_path),
        ];
        for (key, p) in single_paths {
            let optional = key == "db_path";
            if !(p.is_absolute() || optional && p.as_os_str().is_empty()) {
                return Err(bad(
                    key,
                    format!("{:?}", p.display().to_string()),
                    "an absolute path",
                ));
            }
        }
        if !v.events_logfile_path.as_os_str().is_empty() && !v.events_logfile_path.is_absolute() {
            return Err(bad(
                "events_logfile_path",
                format!("{:?}", v.events_logfile_path.display().to_string()),
                "an absolute path",
            ));
        }
        let lists: [(&str, &[PathBuf]); 5] = [
            ("conmon_path", &v.conmon_path),
            ("runtime_path", &v.runtime_path),
            ("cni_plugin_dir", &v.cni_plugin_dir),
            ("hooks_dir", &v.hooks_dir),
            ("plugin_dirs", &v.plugin_dirs),
        ];
        for (key, list) in lists {
            if let Some(p) = list.iter().find(|p| !p.is_absolute()) {
                return Err(bad(
                    key,
                    format!("{:?}", p.display().to_string()),
                    "absolute paths",
                ));
            }
        }
        if v.conmon_path.is_empty() {
            return Err(bad(
                "conmon_path",
                "[]".into(),
                "at least one candidate path",
            ));
        }
        if v.max_log_size == 0 || v.max_log_size < -1 {
            return Err(bad(
                "max_log_size",
                v.max_log_size.to_string(),
                "a size in bytes greater than 0, or -1 for unlimited",
            ));
        }
        if let Err(why) = parse_detach_keys(&v.detach_keys) {
            return Err(bad("detach_keys", format!("{:?}", v.detach_keys), &why));
        }
        if let Some(e) = v.conmon_env_vars.iter().find(|e| !e.contains('=')) {
            return Err(bad(
                "conmon_env_vars",
                format!("{e:?}"),
                "entries of the form NAME=VALUE",
            ));
        }
        Ok(())
    }

    /// Loads the backend plugins of `plugin_dirs` (see
    /// [`rpod_registry::plugin`]), then checks `database_backend`,
    /// `lock_type` and `events_logger` against the registered backends.
    pub fn validate_backends(&self) -> Result<(), ConfigError> {
        use rpod_registry::kinds;
        let v = &self.values;
        rpod_registry::plugin::load_dirs(&v.plugin_dirs).map_err(|source| ConfigError::Plugin {
            origin: self.origin("plugin_dirs"),
            source,
        })?;
        for (key, kind, value) in [
            ("database_backend", kinds::STATE, &v.database_backend),
            ("lock_type", kinds::LOCK, &v.lock_type),
            ("events_logger", kinds::EVENTS, &v.events_logger),
        ] {
            let known = rpod_registry::names(kind);
            if !known.iter().any(|k| k == value) {
                return Err(ConfigError::UnknownBackend {
                    origin: self.origin(key),
                    key: key.to_string(),
                    kind: kind.to_string(),
                    value: value.clone(),
                    known,
                });
            }
        }
        Ok(())
    }
}

fn expected_for(key: &str, msg: &str) -> String {
    match key {
        "cgroup_manager" => "\"cgroupfs\" or \"systemd\"".to_string(),
        "num_locks" => "a whole number from 1 to 4294967295".to_string(),
        "runtimes" => "a table of runtime names to lists of paths".to_string(),
        _ => msg.to_string(),
    }
}

/// Parses a detach-key sequence such as `ctrl-p,ctrl-q` into bytes.
/// An empty string disables detaching.
pub fn parse_detach_keys(keys: &str) -> Result<Vec<u8>, String> {
    const EXPECTED: &str =
        "comma-separated keys, each a single character or ctrl-<letter, @, [, \\, ], ^ or _>";
    if keys.is_empty() {
        return Ok(Vec::new());
    }
    let mut out = Vec::new();
    for part in keys.split(',') {
        if let Some(c) = part.strip_prefix("ctrl-") {
            let b = match c.as_bytes() {
                [b] if b.is_ascii_lowercase() => b - b'a' + 1,
                [b'@'] => 0,
                [b'['] => 27,
                [b'\\'] => 28,
                [b']'] => 29,
                [b'^'] => 30,
                [b'_'] => 31,
                _ => return Err(EXPECTED.to_string()),
            };
            out.push(b);
        } else if part.len() == 1 {
            out.push(part.as_bytes()[0]);
        } else {
            return Err(EXPECTED.to_string());
        }
    }
    Ok(out)
}

fn line_col(text: &str, offset: usize) -> (usize, usize) {
    let before = &text[..offset.min(text.len())];
    let line = before.matches('\n').count() + 1;
    let col = before.rsplit('\n').next().map_or(0, |l| l.chars().count()) + 1;
    (line, col)
}

fn read_table(path: &Path) -> Result<toml::Table, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|source| ConfigError::Read {
        path: path.to_path_buf(),
        source,
    })?;
    text.parse::<toml::Table>().map_err(|e| {
        let (line, column) = e.span().map_or((0, 0), |s| line_col(&text, s.start));
        ConfigError::Syntax {
            path: path.to_path_buf(),
            line,
            column,
            message: e.message().to_string(),
        }
    })
}

impl ConfigLoader {
    /// A loader for the current user with the real system locations.
    pub fn new() -> Self {
        ConfigLoader {
            system_file: SYSTEM_CONFIG_FILE.into(),
            override_file: OVERRIDE_CONFIG_FILE.into(),
            user: UserDirs::current(),
            config_file: None,
            options: Options::new(),
        }
    }

    /// Sets the `--config` file.
    pub fn config_file(mut self, path: impl Into<PathBuf>) -> Self {
        self.config_file = Some(path.into());
        self
    }

    /// Sets the caller's options.
    pub fn options(mut self, options: Options) -> Self {
        self.options = options;
        self
    }

    /// The global file in effect: the override file if it exists, else the
    /// system file if it exists.
    pub fn global_file(&self) -> Option<&Path> {
        [&self.override_file, &self.system_file]
            .into_iter()
            .find(|p| p.exists())
            .map(PathBuf::as_path)
    }

    /// The user's own file (non-root users only).
    pub fn user_file(&self) -> Option<PathBuf> {
        self.user
            .rootless()
            .then(|| self.user.config_home.join("rpod").join("rpod.conf"))
    }

    /// Reads every source and returns the validated configuration.
    pub fn load(&self) -> Result<Config, ConfigError> {
        let mut cfg = Config::defaults(&self.user);
        let global = self.global_file().map(Path::to_path_buf);
        match (self.user_file().filter(|p| p.exists()), global) {
            (Some(user_file), _) => {
                let t = read_table(&user_file)?;
                cfg.apply_table(t, &Origin::File(user_file.clone()), None)?;
                cfg.files.push(user_file);
            }
            (None, Some(global)) => {
                let t = read_table(&global)?;
                let only = self.user.rootless().then_some(ROOTLESS_INHERITED_KEYS);
                cfg.apply_table(t, &Origin::File(global.clone()), only)?;
                cfg.files.push(global);
            }
            (None, None) => {}
        }
        if let Some(path) = &self.config_file {
            std::fs::metadata(path).map_err(|source| ConfigError::CannotStat {
                path: path.clone(),
                source,
            })?;
            let t = read_table(path)?;
            cfg.apply_table(t, &Origin::File(path.clone()), None)?;
            cfg.files.push(path.clone());
        }
        for (key, value) in &self.options.values {
            cfg.apply_one(key, value.clone(), &Origin::Option)?;
        }
        let origins = cfg.origins.clone();
        cfg.values.derive(&|k| origins.contains_key(k));
        cfg.validate()?;
        Ok(cfg)
    }
}
