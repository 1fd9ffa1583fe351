//! Backends from shared libraries (`plugin_dirs`).
//!
//! A plugin is a `cdylib` crate that depends on `rpod-registry` and on the
//! crates defining the kinds it implements (e.g. `rpod-state`), and declares
//! its backends with [`declare_plugin!`](crate::declare_plugin):
//!
//! ```ignore
//! rpod_registry::declare_plugin! {
//!     {
//!         kind: rpod_registry::kinds::STATE,
//!         name: "my-db",
//!         summary: "my database",
//!         factory: my_open as rpod_state::StateFactory,
//!     },
//! }
//! ```
//!
//! which exports one static, [`PluginDecl`], under the symbol
//! `RPOD_PLUGIN_V1`. rpod loads every `*.so` file of every directory in
//! `plugin_dirs` (a missing directory is skipped), checks the declaration and
//! registers its backends as if they were built in; a backend is then chosen
//! by name from the config like any other.
//!
//! Rust has no stable ABI, so a plugin must be built by the **same compiler**
//! against the **same versions** of rpod's crates as the `rpod` that loads it.
//! Both are checked: the declaration carries a fingerprint (registry version
//! and `rustc -V`), and every factory is type-checked when it is looked up
//! (a factory type from a different build of `rpod-state` is a different
//! type). A library that fails a check is refused with an error naming the
//! file and the reason; it is never half-registered. A loaded library is
//! never unloaded. Plugins run with rpod's privileges: only directories the
//! administrator controls belong in `plugin_dirs`. A plugin's `tracing` output
//! goes nowhere (it has its own copy of `tracing`, without a subscriber).

use std::collections::BTreeSet;
use std::path::{Path, PathBuf};
use std::sync::{Mutex, OnceLock};

use crate::{register, validate_one, Registration, RegistryError};

/// The symbol a plugin exports its [`PluginDecl`] under.
pub const PLUGIN_SYMBOL: &str = "RPOD_PLUGIN_V1";

/// The first word of every [`PluginDecl`] ("rpodplug").
pub const PLUGIN_MAGIC: u64 = u64::from_be_bytes(*b"rpodplug");

/// The build fingerprint a plugin must match: this registry's version and the
/// compiler that built it.
pub const ABI: &str = concat!(
    "rpod-registry ",
    env!("CARGO_PKG_VERSION"),
    "; ",
    env!("RPOD_RUSTC_VERSION")
);

/// What a plugin exports (see [`declare_plugin!`](crate::declare_plugin)).
#[repr(C)]
#[derive(Debug)]
pub struct PluginDecl {
    /// [`PLUGIN_MAGIC`], read before anything else.
    pub magic: u64,
    /// The [`ABI`] the plugin was built with.
    pub abi: &'static str,
    /// Its backends.
    pub registrations: &'static [Registration],
}

/// Declares a plugin's backends (in a `cdylib` crate): one
/// `{ kind, name, summary, factory }` block per backend, as for
/// [`register_backend!`](crate::register_backend).
#[macro_export]
macro_rules! declare_plugin {
    ($({ kind: $kind:expr, name: $name:expr, summary: $summary:expr, factory: $factory:expr $(,)? }),+ $(,)?) => {
        #[no_mangle]
        pub static RPOD_PLUGIN_V1: $crate::plugin::PluginDecl = $crate::plugin::PluginDecl {
            magic: $crate::plugin::PLUGIN_MAGIC,
            abi: $crate::plugin::ABI,
            registrations: &[$($crate::Registration {
                kind: $kind,
                name: $name,
                summary: $summary,
                origin: ::core::concat!("plugin ", ::core::env!("CARGO_PKG_NAME")),
                factory: &$factory,
            }),+],
        };
    };
}

fn loaded() -> &'static Mutex<BTreeSet<PathBuf>> {
    static LOADED: OnceLock<Mutex<BTreeSet<PathBuf>>> = OnceLock::new();
    LOADED.get_or_init(|| Mutex::new(BTreeSet::new()))
}

fn plugin_err(path: &Path, reason: impl Into<String>) -> RegistryError {
    RegistryError::Plugin {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// Loads one plugin library and registers its backends; returns
/// `(kind, name)` of each. Loading the same file again does nothing.
pub fn load_file(path: &Path) -> Result<Vec<(String, String)>, RegistryError> {
    let canon = path
        .canonicalize()
        .map_err(|e| plugin_err(path, format!("cannot resolve the path: {e}")))?;
    let mut done = loaded().lock().unwrap_or_else(|e| e.into_inner());
    if done.contains(&canon) {
        return Ok(Vec::new());
    }
    // SAFETY: loading a library runs its initialisers. Plugins are code the
    // administrator installed in `plugin_dirs`; rpod trusts them as it trusts
    // its own binary.
    let lib = unsafe { libloading::Library::new(&canon) }
        .map_err(|e| plugin_err(path, format!("cannot load it: {e}")))?;
    // SAFETY: the symbol is looked up as a pointer to data; nothing is read
    // through it before the magic number is checked below.
    let decl_ptr: *const PluginDecl = unsafe {
        match lib.get::<*const PluginDecl>(PLUGIN_SYMBOL.as_bytes()) {
            Ok(sym) => *sym,
            Err(e) => {
                return Err(plugin_err(
                    path,
                    format!("not an rpod plugin: no {PLUGIN_SYMBOL} symbol ({e})"),
                ))
            }
        }
    };
    if decl_ptr.is_null() {
        return Err(plugin_err(path, format!("{PLUGIN_SYMBOL} is null")));
    }
    // SAFETY: `PluginDecl` is `repr(C)` and starts with a u64 in every
    // version, so the magic can be read before trusting anything else.
    let magic = unsafe { std::ptr::read_unaligned(decl_ptr.cast::<u64>()) };
    if magic != PLUGIN_MAGIC {
        return Err(plugin_err(
            path,
            format!("{PLUGIN_SYMBOL} does not start with rpod's plugin magic number"),
        ));
    }
    // SAFETY: the magic matched: the declaration was made by
    // `declare_plugin!`, whose layout starts with the fingerprint string.
    let decl: &'static PluginDecl = unsafe { &*decl_ptr };
    if decl.abi != ABI {
        return Err(plugin_err(
            path,
            format!(
                "built for {:?}, but this rpod is {ABI:?}; rebuild the plugin with the same \
                 compiler and rpod crates",
                decl.abi
            ),
        ));
    }
    let origin: &'static str = Box::leak(format!("plugin {}", canon.display()).into_boxed_str());
    let regs: Vec<Registration> = decl
        .registrations
        .iter()
        .map(|r| Registration {
            kind: r.kind,
            name: r.name,
            summary: r.summary,
            origin,
            factory: r.factory,
        })
        .collect();
    // all or nothing: check every registration before registering any
    let mut names = BTreeSet::new();
    for r in &regs {
        validate_one(r)?;
        if !names.insert((r.kind, r.name)) {
            return Err(plugin_err(
                path,
                format!("declares {} backend {:?} twice", r.kind, r.name),
            ));
        }
        if let Ok(prev) = crate::lookup(r.kind, r.name) {
            return Err(RegistryError::Duplicate {
                kind: r.kind.to_string(),
                name: r.name.to_string(),
                first: prev.origin.to_string(),
                second: origin.to_string(),
            });
        }
    }
    // The registered factories point into the library: it stays loaded from
    // here on, whatever happens next.
    std::mem::forget(lib);
    done.insert(canon);
    let mut out = Vec::new();
    for r in regs {
        out.push((r.kind.to_string(), r.name.to_string()));
        register(r)?;
    }
    Ok(out)
}

/// Loads every `*.so` file (sorted by name) of every directory in `dirs`;
/// a directory that does not exist is skipped. Stops at the first failure.
pub fn load_dirs(dirs: &[PathBuf]) -> Result<Vec<(String, String)>, RegistryError> {
    let mut out = Vec::new();
    for dir in dirs {
        let entries = match std::fs::read_dir(dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => continue,
            Err(e) => return Err(plugin_err(dir, format!("cannot read the directory: {e}"))),
        };
        let mut files: Vec<PathBuf> = entries
            .filter_map(Result::ok)
            .map(|e| e.path())
            .filter(|p| p.extension().is_some_and(|x| x == "so") && p.is_file())
            .collect();
        files.sort();
        for f in files {
            out.extend(load_file(&f)?);
        }
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reason(e: RegistryError) -> String {
        match e {
            RegistryError::Plugin { reason, .. } => reason,
            other => panic!("expected a plugin error, got {other:?}"),
        }
    }

    #[test]
    fn a_file_that_is_not_a_library_is_refused() {
        let dir = tempfile::tempdir().unwrap();
        let f = dir.path().join("junk.so");
        std::fs::write(&f, b"junk").unwrap();
        let e = load_dirs(&[dir.path().to_path_buf()]).unwrap_err();
        assert!(e.to_string().contains("junk.so"), "{e}");
        assert!(reason(e).starts_with("cannot load it"));
    }

    #[test]
    fn a_library_without_the_declaration_is_not_a_plugin() {
        // a system library this test runs with (libgcc_s, else libc): a real
        // shared library, not rpod's
        let maps = std::fs::read_to_string("/proc/self/maps").unwrap();
        let libs: Vec<&str> = maps
            .lines()
            .filter_map(|l| l.split_whitespace().nth(5))
            .collect();
        let libc = ["/libgcc_s.so", "/libc.so"]
            .iter()
            .find_map(|name| libs.iter().find(|p| p.contains(name)))
            .expect("libgcc_s or libc in /proc/self/maps");
        let dir = tempfile::tempdir().unwrap();
        let copy = dir.path().join("libc-copy.so");
        std::fs::copy(libc, &copy).unwrap();
        let e = load_file(&copy).unwrap_err();
        assert!(reason(e).contains("not an rpod plugin"));
    }

    #[test]
    fn files_without_the_so_suffix_and_missing_directories_are_skipped() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("README"), b"not a plugin").unwrap();
        let got = load_dirs(&[dir.path().to_path_buf(), dir.path().join("missing")]).unwrap();
        assert!(got.is_empty());
    }

    #[test]
    fn the_fingerprint_names_the_registry_and_the_compiler() {
        assert!(ABI.starts_with("rpod-registry "), "{ABI}");
        assert!(ABI.contains("rustc "), "{ABI}");
    }
}
