//! The backend registry: how rpod finds a state, lock or events backend by name.
//!
//! A backend announces itself with a [`Registration`]: a versioned *kind*
//! (`state.v1`, `lock.v1`, `events.v1`, see [`kinds`]), a *name* unique within
//! that kind, a one-line summary for `rpod system backends`, and a *factory*.
//! The factory is a plain `fn` pointer whose type is defined by the crate that
//! owns the kind (for example `rpod_state::StateFactory`); the registry stores it
//! type-erased and hands it back with [`Registration::factory`], which checks the
//! type at run time.
//!
//! There are two ways to register:
//!
//! * statically, with [`register_backend!`], which submits the registration at
//!   link time (through `inventory`, which only this crate depends on);
//! * explicitly, with [`register`], for tests;
//! * from shared libraries at run time ([`plugin`]: `plugin_dirs` in the
//!   config, [`declare_plugin!`] in the library).
//!
//! A name registered twice for the same kind is a hard error naming both
//! origins ([`RegistryError::Duplicate`]); an unknown name is an error that
//! lists the names that are known ([`RegistryError::Unknown`]).
//!
//! ```
//! type GreeterFactory = fn(&str) -> String;
//! fn hello(who: &str) -> String { format!("hello, {who}") }
//!
//! rpod_registry::register_backend! {
//!     kind: "greeter.v1",
//!     name: "hello",
//!     summary: "says hello",
//!     factory: hello as GreeterFactory,
//! }
//!
//! let reg = rpod_registry::lookup("greeter.v1", "hello").unwrap();
//! let make = reg.factory::<GreeterFactory>().unwrap();
//! assert_eq!(make("rpod"), "hello, rpod");
//! assert!(rpod_registry::lookup("greeter.v1", "nope").is_err());
//! ```

use std::any::Any;
use std::collections::BTreeMap;
use std::fmt;
use std::sync::{Mutex, OnceLock};

#[doc(hidden)]
pub use inventory as __inventory;

pub mod plugin;

/// The kinds of backend rpod knows, with their interface version.
pub mod kinds {
    /// State backends (`rpod_state::StateFactory`).
    pub const STATE: &str = "state.v1";
    /// Lock backends (`rpod_lock::LockFactory`).
    pub const LOCK: &str = "lock.v1";
    /// Events backends (`rpod_events::EventerFactory`).
    pub const EVENTS: &str = "events.v1";
}

/// One backend's registration.
pub struct Registration {
    /// Versioned kind, e.g. `state.v1`.
    pub kind: &'static str,
    /// Name within the kind, as written in the config (`sled`, `shm`, …).
    pub name: &'static str,
    /// One line for `rpod system backends`.
    pub summary: &'static str,
    /// Where it was registered from (module path or library file), for error messages.
    pub origin: &'static str,
    /// The factory, a `fn` pointer of the kind's factory type, type-erased.
    pub factory: &'static (dyn Any + Send + Sync),
}

impl fmt::Debug for Registration {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Registration")
            .field("kind", &self.kind)
            .field("name", &self.name)
            .field("summary", &self.summary)
            .field("origin", &self.origin)
            .finish_non_exhaustive()
    }
}

impl Registration {
    /// The factory, if it has the type `F` that the kind expects.
    pub fn factory<F: Any + Copy>(&self) -> Result<F, RegistryError> {
        self.factory
            .downcast_ref::<F>()
            .copied()
            .ok_or_else(|| RegistryError::FactoryType {
                kind: self.kind.to_string(),
                name: self.name.to_string(),
                origin: self.origin.to_string(),
                expected: std::any::type_name::<F>(),
            })
    }
}

__inventory::collect!(Registration);

/// Errors of the registry.
#[derive(Debug, thiserror::Error, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum RegistryError {
    /// Two backends of one kind share a name.
    #[error("duplicate {kind} backend {name:?}: registered by both {first} and {second}")]
    Duplicate {
        kind: String,
        name: String,
        first: String,
        second: String,
    },
    /// No backend of that kind has that name.
    #[error("unknown {kind} backend {name:?}; known backends: {}", known_list(.known))]
    Unknown {
        kind: String,
        name: String,
        known: Vec<String>,
    },
    /// The registered factory does not have the type the kind expects.
    #[error("{kind} backend {name:?} (from {origin}) has a factory of the wrong type; expected {expected}")]
    FactoryType {
        kind: String,
        name: String,
        origin: String,
        expected: &'static str,
    },
    /// A registration with an empty or malformed kind or name.
    #[error("invalid registration from {origin}: {reason}")]
    Invalid { origin: String, reason: String },
    /// A plugin library that could not be loaded or was refused.
    #[error("plugin {}: {reason}", path.display())]
    Plugin {
        path: std::path::PathBuf,
        reason: String,
    },
}

fn known_list(known: &[String]) -> String {
    if known.is_empty() {
        "(none registered)".to_string()
    } else {
        known.join(", ")
    }
}

/// Registers a backend at link time.
///
/// ```ignore
/// rpod_registry::register_backend! {
///     kind: rpod_registry::kinds::STATE,
///     name: "sled",
///     summary: "sled embedded database",
///     factory: open_sled as rpod_state::StateFactory,
/// }
/// ```
#[macro_export]
macro_rules! register_backend {
    (kind: $kind:expr, name: $name:expr, summary: $summary:expr, factory: $factory:expr $(,)?) => {
        $crate::__inventory::submit! {
            $crate::Registration {
                kind: $kind,
                name: $name,
                summary: $summary,
                origin: ::core::module_path!(),
                factory: &$factory,
            }
        }
    };
}

fn explicit() -> &'static Mutex<Vec<&'static Registration>> {
    static EXPLICIT: OnceLock<Mutex<Vec<&'static Registration>>> = OnceLock::new();
    EXPLICIT.get_or_init(|| Mutex::new(Vec::new()))
}

fn validate_one(reg: &Registration) -> Result<(), RegistryError> {
    let bad = |reason: String| RegistryError::Invalid {
        origin: reg.origin.to_string(),
        reason,
    };
    let ok_kind = reg.kind.rsplit_once(".v").is_some_and(|(k, v)| {
        !k.is_empty() && !v.is_empty() && v.bytes().all(|b| b.is_ascii_digit())
    });
    if !ok_kind {
        return Err(bad(format!(
            "kind {:?} is not of the form NAME.vN (e.g. state.v1)",
            reg.kind
        )));
    }
    let ok_name = !reg.name.is_empty()
        && reg
            .name
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_');
    if !ok_name {
        return Err(bad(format!(
            "backend name {:?} must be non-empty ASCII letters, digits, '-' or '_'",
            reg.name
        )));
    }
    Ok(())
}

/// Registers a backend explicitly (tests, shared-library plugins).
///
/// Fails if the kind or name is malformed, or if the name is already taken for
/// that kind, by a static or an explicit registration.
pub fn register(reg: Registration) -> Result<&'static Registration, RegistryError> {
    validate_one(&reg)?;
    let mut list = explicit().lock().unwrap_or_else(|e| e.into_inner());
    if let Some(prev) = inventory::iter::<Registration>
        .into_iter()
        .chain(list.iter().copied())
        .find(|r| r.kind == reg.kind && r.name == reg.name)
    {
        return Err(RegistryError::Duplicate {
            kind: reg.kind.to_string(),
            name: reg.name.to_string(),
            first: prev.origin.to_string(),
            second: reg.origin.to_string(),
        });
    }
    let leaked: &'static Registration = Box::leak(Box::new(reg));
    list.push(leaked);
    Ok(leaked)
}

/// Every registration, static ones first, then explicit ones in order.
pub fn all() -> Vec<&'static Registration> {
    let list = explicit().lock().unwrap_or_else(|e| e.into_inner());
    inventory::iter::<Registration>
        .into_iter()
        .chain(list.iter().copied())
        .collect()
}

/// Checks every registration: well-formed kinds and names, no duplicates.
///
/// Static registrations cannot be refused when they are linked in, so a
/// duplicate between two linked crates is reported here (and by [`lookup`]
/// for the name concerned).
pub fn check() -> Result<(), RegistryError> {
    let mut seen: BTreeMap<(&str, &str), &Registration> = BTreeMap::new();
    for reg in all() {
        validate_one(reg)?;
        if let Some(prev) = seen.insert((reg.kind, reg.name), reg) {
            return Err(RegistryError::Duplicate {
                kind: reg.kind.to_string(),
                name: reg.name.to_string(),
                first: prev.origin.to_string(),
                second: reg.origin.to_string(),
            });
        }
    }
    Ok(())
}

/// The registrations of one kind, sorted by name.
pub fn of_kind(kind: &str) -> Vec<&'static Registration> {
    let mut v: Vec<_> = all().into_iter().filter(|r| r.kind == kind).collect();
    v.sort_by_key(|r| r.name);
    v
}

/// The names registered for one kind, sorted.
pub fn names(kind: &str) -> Vec<String> {
    let mut v: Vec<String> = of_kind(kind).iter().map(|r| r.name.to_string()).collect();
    v.dedup();
    v
}

/// Finds the backend `name` of `kind`.
pub fn lookup(kind: &str, name: &str) -> Result<&'static Registration, RegistryError> {
    let matches: Vec<_> = all()
        .into_iter()
        .filter(|r| r.kind == kind && r.name == name)
        .collect();
    match matches.as_slice() {
        [one] => Ok(one),
        [] => Err(RegistryError::Unknown {
            kind: kind.to_string(),
            name: name.to_string(),
            known: names(kind),
        }),
        [first, second, ..] => Err(RegistryError::Duplicate {
            kind: kind.to_string(),
            name: name.to_string(),
            first: first.origin.to_string(),
            second: second.origin.to_string(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    type TestFactory = fn(u32) -> u32;
    fn double(x: u32) -> u32 {
        x * 2
    }
    fn triple(x: u32) -> u32 {
        x * 3
    }

    register_backend! {
        kind: "test-static.v1",
        name: "double",
        summary: "doubles",
        factory: double as TestFactory,
    }
    // Two static registrations of one name: only detectable at lookup/check.
    register_backend! {
        kind: "test-dup.v1",
        name: "twice",
        summary: "first",
        factory: double as TestFactory,
    }
    register_backend! {
        kind: "test-dup.v1",
        name: "twice",
        summary: "second",
        factory: triple as TestFactory,
    }

    fn reg(kind: &'static str, name: &'static str, origin: &'static str) -> Registration {
        Registration {
            kind,
            name,
            summary: "test",
            origin,
            factory: &(triple as TestFactory),
        }
    }

    #[test]
    fn static_registration_is_found_and_factory_runs() {
        let r = lookup("test-static.v1", "double").unwrap();
        assert_eq!(r.summary, "doubles");
        assert!(r.origin.contains("rpod_registry"));
        assert_eq!(r.factory::<TestFactory>().unwrap()(21), 42);
    }

    #[test]
    fn wrong_factory_type_is_an_error() {
        let r = lookup("test-static.v1", "double").unwrap();
        let err = r.factory::<fn(u8) -> u8>().unwrap_err();
        assert!(matches!(err, RegistryError::FactoryType { .. }));
        assert!(err.to_string().contains("wrong type"), "{err}");
    }

    #[test]
    fn unknown_name_lists_known_names() {
        register(reg("test-unknown.v1", "alpha", "a")).unwrap();
        register(reg("test-unknown.v1", "beta", "b")).unwrap();
        let err = lookup("test-unknown.v1", "gamma").unwrap_err();
        assert_eq!(
            err.to_string(),
            "unknown test-unknown.v1 backend \"gamma\"; known backends: alpha, beta"
        );
        let err = lookup("test-nothing.v1", "x").unwrap_err();
        assert!(err.to_string().contains("(none registered)"), "{err}");
    }

    #[test]
    fn explicit_duplicate_is_refused_naming_both() {
        register(reg("test-explicit.v1", "one", "first-origin")).unwrap();
        let err = register(reg("test-explicit.v1", "one", "second-origin")).unwrap_err();
        let msg = err.to_string();
        assert!(
            msg.contains("first-origin") && msg.contains("second-origin"),
            "{msg}"
        );
        // the same name under another kind is fine
        register(reg("test-explicit2.v1", "one", "third")).unwrap();
    }

    #[test]
    fn explicit_registration_cannot_shadow_static_one() {
        let err = register(reg("test-static.v1", "double", "plugin.so")).unwrap_err();
        assert!(matches!(err, RegistryError::Duplicate { .. }));
        assert!(err.to_string().contains("plugin.so"));
    }

    #[test]
    fn static_duplicate_is_reported_by_lookup_and_check() {
        let err = lookup("test-dup.v1", "twice").unwrap_err();
        assert!(matches!(err, RegistryError::Duplicate { .. }), "{err}");
        let err = check().unwrap_err();
        assert!(err.to_string().contains("twice"), "{err}");
    }

    #[test]
    fn malformed_registrations_are_refused() {
        let err = register(reg("nokind", "x", "o")).unwrap_err();
        assert!(err.to_string().contains("NAME.vN"), "{err}");
        let err = register(reg("ok.v1", "bad name", "o")).unwrap_err();
        assert!(err.to_string().contains("backend name"), "{err}");
        let err = register(reg("ok.v1", "", "o")).unwrap_err();
        assert!(matches!(err, RegistryError::Invalid { .. }));
    }

    #[test]
    fn names_and_of_kind_are_sorted() {
        register(reg("test-sort.v1", "zeta", "z")).unwrap();
        register(reg("test-sort.v1", "eta", "e")).unwrap();
        assert_eq!(names("test-sort.v1"), vec!["eta", "zeta"]);
        assert_eq!(of_kind("test-sort.v1")[1].origin, "z");
    }
}
