//! The lock conformance suite against the shm backend (real segments under
//! /dev/shm, each test with its own uniquely named segment, removed at the end).

use std::path::Path;
use std::sync::atomic::{AtomicU32, Ordering};

use rpod_lock::conformance::Subject;
use rpod_lock::LockOptions;

fn options(scratch: &Path, num_locks: u32) -> LockOptions {
    static N: AtomicU32 = AtomicU32::new(0);
    let name = format!(
        "rpod_test_conf_{}_{}",
        std::process::id(),
        N.fetch_add(1, Ordering::Relaxed)
    );
    LockOptions::new(num_locks, scratch).location(name)
}

const SUBJECT: Subject = Subject {
    backend: "shm",
    factory: rpod_lock_shm::open_factory as rpod_lock::LockFactory,
    options,
    limited: true,
};

rpod_lock::lock_conformance_tests!(SUBJECT);
