//! The backends built into the `rpod` binary.
//!
//! Backends register themselves with the registry at link time, but a crate
//! that nothing refers to is not linked. [`link`] refers to each built-in
//! backend crate so that it is; a test checks that each name is registered.

/// `(kind, name)` of every backend built into `rpod`.
#[cfg_attr(not(test), allow(dead_code))]
pub const BUILTIN: &[(&str, &str)] = &[
    ("state.v1", "memory"),
    ("state.v1", "sled"),
    ("state.v1", "bolt"),
    ("lock.v1", "shm"),
    ("lock.v1", "file"),
    ("events.v1", "file"),
    ("events.v1", "journald"),
    ("events.v1", "none"),
];

/// Makes sure every built-in backend crate is linked into the binary.
pub fn link() {
    // Referring to a function of each crate keeps it (and its registration) linked.
    std::hint::black_box(rpod_state_sled::open_sled as *const ());
    std::hint::black_box(rpod_state_bolt::open_bolt as *const ());
    std::hint::black_box(rpod_lock_shm::open_factory as *const ());
    std::hint::black_box(rpod_lock_file::open_factory as *const ());
    std::hint::black_box(rpod_events::open as *const ());
    std::hint::black_box(rpod_state::open as *const ());
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_builtin_backend_is_registered() {
        super::link();
        rpod_registry::check().expect("no duplicate or malformed registrations");
        for (kind, name) in super::BUILTIN {
            let reg = rpod_registry::lookup(kind, name).unwrap_or_else(|e| {
                panic!("built-in backend {kind} {name} is not registered: {e}")
            });
            assert!(!reg.summary.is_empty());
        }
    }
}
